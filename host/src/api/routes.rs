//! The route table of `/api/v1`: one list that both builds the router and generates the
//! OpenAPI document (`GET /api/v1/openapi.json`) and its readable rendering (`GET /api/docs`),
//! so the description cannot drift from the routes.

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Value, json};

use super::schemas::query_parameters;
use super::*;
use crate::app::AppState;

/// One documented route.
#[derive(Debug)]
pub struct ApiRoute {
    /// `get`, `post`, `put`, `patch` or `delete`.
    pub method: &'static str,
    /// Path under `/api/v1`, with `{name}` parameters.
    pub path: &'static str,
    /// Who may call it: `admin`, `member` (members of the project in the path, and admins) or
    /// `any` (any valid token).
    pub who: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Its query parameters for the document, built from the types or tables the checks use.
    pub query: Option<fn() -> Vec<Value>>,
    /// The request headers it reads (`If-Match`, `X-Plugin-Signature`), as parameters.
    pub headers: Option<fn() -> Vec<Value>>,
    /// What its request body is, when it takes one.
    pub body: Option<Content>,
    /// Its success answers: status, and what the body is (none for a `204`).
    pub ok: &'static [(u16, Option<Content>)],
    /// The route's own refusals beyond those every route of its kind may answer (see
    /// [`ApiRoute::error_statuses`]), e.g. `409` for a conflict.
    pub errors: &'static [u16],
    /// Whether its success answers carry the source's `ETag` (see [`super::preconditions`]).
    pub etag: bool,
}

/// The `content` object of a body (its media types, each with its JSON Schema), from the
/// generator of its direction (requests are described as they are read, answers as they are
/// written).
pub type Content = fn(&mut SchemaGenerator) -> Value;

/// A body the document describes: a Rust type that derives `JsonSchema` is JSON; [`Toml`],
/// [`TomlExport`] and [`Wasm`] stand for the bodies that are not.
pub trait Described {
    /// The `content` object: media type to `{"schema": ...}` (a `$ref` into
    /// `components/schemas` for a named type).
    fn content(generator: &mut SchemaGenerator) -> Value;
}

impl<T: JsonSchema> Described for T {
    fn content(generator: &mut SchemaGenerator) -> Value {
        json!({"application/json": {"schema": generator.subschema_for::<T>()}})
    }
}

/// A sources file to import (see [`crate::sources_as_code`]), in any of the media types
/// the import reads.
pub struct Toml;

impl Described for Toml {
    fn content(_: &mut SchemaGenerator) -> Value {
        let text = json!({"schema": {"type": "string"}});
        (transfer::TOML_TYPES.iter())
            .map(|media| (media.to_string(), text.clone()))
            .collect()
    }
}

/// The sources file an export writes (`text/toml`).
pub struct TomlExport;

impl Described for TomlExport {
    fn content(_: &mut SchemaGenerator) -> Value {
        json!({"text/toml": {"schema": {"type": "string"}}})
    }
}

/// A JSON merge patch of a source (RFC 7396, `application/merge-patch+json` or
/// `application/json`): an object of the fields of [`crate::sources::SourceInput`] to change,
/// `null` removing one (a secret too, as `auth.fields.<name>: null`). Nested objects are
/// patches too, so only their being objects is said; the result is checked as a `PUT` body.
pub struct SourcePatch;

impl Described for SourcePatch {
    fn content(generator: &mut SchemaGenerator) -> Value {
        let input = generator.subschema_for::<crate::sources::SourceInput>();
        let name = input
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.rsplit('/').next())
            .unwrap_or_default()
            .to_string();
        let fields = (generator.definitions().get(&name))
            .and_then(|schema| schema.get("properties"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let properties: serde_json::Map<String, Value> = fields
            .into_iter()
            .map(|(field, schema)| {
                let nested = schema.get("$ref").is_some()
                    || schema.get("type") == Some(&json!("object"))
                    || schema.get("additionalProperties").is_some();
                let mut patched = if nested {
                    json!({"type": ["object", "null"]})
                } else {
                    json!({"anyOf": [schema, {"type": "null"}]})
                };
                if let Some(description) = schema.get("description") {
                    patched["description"] = description.clone();
                }
                (field, patched)
            })
            .collect();
        let schema = json!({
            "type": "object",
            "description": "A JSON merge patch (RFC 7396) of the source: the fields to change, null removing one (a secret as `auth.fields.<name>: null`); nested objects are patches too. The result is checked as a PUT body.",
            "properties": properties,
            "examples": [{"base_url": "https://jira.example.com"}],
        });
        json!({
            "application/merge-patch+json": {"schema": schema},
            "application/json": {"schema": schema},
        })
    }
}

/// A plugin binary (`application/wasm`, a WebAssembly component).
pub struct Wasm;

impl Described for Wasm {
    fn content(_: &mut SchemaGenerator) -> Value {
        json!({"application/wasm": {"schema": {"type": "string", "contentMediaType": "application/wasm"}}})
    }
}

/// `Some(f)` for a route that names its query parameters, `None` for one that does not.
macro_rules! query {
    () => {
        None
    };
    ($f:expr) => {
        Some($f as fn() -> Vec<Value>)
    };
}

/// `Some(content)` of a body type, `None` without one.
macro_rules! content {
    () => {
        None
    };
    ($t:ty) => {
        Some(<$t as Described>::content as Content)
    };
}

/// The route table. Each entry: method, path, who may call it, `=>` the handler, then
/// optionally `layer = ...`, `query = ...` and `headers = ...` (the request headers it
/// reads), then `body = Type` when it takes one, one `ok = STATUS Type` per success answer
/// (`ok = 204` without a body), optionally `errors = [...]` (its own refusals) and
/// `etag = true` (its answers carry an `ETag`), `;` and the summary.
macro_rules! routes {
    ($( $method:ident $path:literal $who:ident => $handler:expr
        $(, layer = $layer:expr)? $(, query = $query:expr)? $(, headers = $headers:expr)?
        $(, body = $body:ty)?
        $(, ok = $status:literal $($ok:ty)?)+
        $(, errors = [$($error:literal),*])? $(, etag = $etag:literal)? ;
        $summary:literal )*) => {
        /// Every `/api/v1` route, in documentation order.
        pub const API_ROUTES: &[ApiRoute] = &[
            $( ApiRoute {
                method: stringify!($method),
                path: $path,
                who: stringify!($who),
                summary: $summary,
                query: query!($($query)?),
                headers: query!($($headers)?),
                body: content!($($body)?),
                ok: &[$( ($status, content!($($ok)?)) ),+],
                errors: &[$($($error),*)?],
                etag: false $(|| $etag)?,
            } ),*
        ];

        /// The `/api/v1` router built from the same table.
        pub fn api_router() -> Router<AppState> {
            Router::new()
                $( .route($path, axum::routing::$method($handler)$(.layer($layer))?) )*
                .route("/openapi.json", axum::routing::get(openapi))
                .fallback(not_found)
                .method_not_allowed_fallback(method_not_allowed)
                .layer(DefaultBodyLimit::max(extract::MAX_JSON_BYTES))
                .layer(axum::middleware::map_response(not_stored))
        }
    };
}

/// Every API answer: never stored by a browser or proxy cache (some carry a token or a secret
/// shown once), and read only as the type it declares.
async fn not_stored(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(axum::http::HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    response
}

routes! {
    get "/providers" any => providers::list,
        ok = 200 Vec<providers::ProviderView>;
        "Loaded provider plugins and what they describe (auth types and fields, settings, key format, URL templates)"
    get "/providers/{id}" any => providers::get,
        ok = 200 providers::ProviderView;
        "One provider's description"
    get "/sources" any => sources::list, query = sources::list_parameters,
        ok = 200 sources::SourceList,
        errors = [403];
        "List sources: admins get all; members get the enabled sources of their projects; searched, filtered, sorted and paged (`limit`, `page` or `cursor`) by the query parameters"
    post "/sources" admin => sources::create,
        body = crate::sources::SourceInput,
        ok = 201 sources::SourceView,
        errors = [409],
        etag = true;
        "Create a source (body: provider, display_name, base_url, auth {type, fields}, templates, key_pattern, enabled, capabilities, projects, settings, network); answers with its `ETag`"
    post "/sources/test" admin => sources::test_draft,
        body = crate::sources::SourceInput,
        ok = 200 crate::sources::TestOutcome;
        "Test a draft source configuration without saving it"
    post "/key-patterns/check" admin => sources::check_pattern,
        body = sources::PatternCheck,
        ok = 200 sources::PatternVerdict;
        "Check a key pattern by the server's rules (body: pattern, optional key): {valid, matches} or {valid: false, message}"
    get "/sources/export" admin => transfer::export,
        ok = 200 TomlExport;
        "Export all sources as TOML, secrets as ${SRC_...} references"
    post "/sources/import" admin => transfer::import, layer = DefaultBodyLimit::max(crate::sources_as_code::MAX_IMPORT_BYTES), query = query_parameters::<transfer::ImportQuery>,
        body = Toml,
        ok = 200 crate::sources_as_code::ImportReport,
        errors = [409];
        "Import sources from TOML (create or update by name, all or nothing); `?dry_run=true` answers what would change and changes nothing"
    get "/sources/{id}" admin => sources::get,
        ok = 200 sources::SourceView,
        etag = true;
        "One source (secret values never included; `secrets_set` names them), with its version as `ETag`"
    put "/sources/{id}" admin => sources::update, headers = preconditions::if_match_parameter,
        body = crate::sources::SourceInput,
        ok = 200 sources::SourceView,
        errors = [409, 412],
        etag = true;
        "Edit a source; omitted secrets are kept, a new value replaces, switching provider or auth type drops them; `If-Match` with the `ETag` refuses (412) an edit of a source someone else changed meanwhile"
    patch "/sources/{id}" admin => sources::patch, headers = preconditions::if_match_parameter,
        body = SourcePatch,
        ok = 200 sources::SourceView,
        errors = [409, 412],
        etag = true;
        "Edit some fields of a source by JSON merge patch (application/merge-patch+json or application/json; null removes a field or a secret), checked and saved as PUT; `If-Match` as for PUT"
    delete "/sources/{id}" admin => sources::delete,
        ok = 204;
        "Delete a source; its links stay, marked not syncing"
    post "/sources/{id}/enable" admin => sources::enable,
        ok = 200 sources::SourceView,
        errors = [409],
        etag = true;
        "Enable a source (answers with its new `ETag`)"
    post "/sources/{id}/disable" admin => sources::disable,
        ok = 200 sources::SourceView,
        etag = true;
        "Disable a source: hidden from members, no new links, links stop syncing (answers with its new `ETag`)"
    post "/sources/{id}/test" admin => sources::test,
        ok = 200 crate::sources::TestOutcome,
        errors = [409];
        "Run the connection test with the stored configuration (enabled or not) and record the result"
    post "/sources/{id}/test-edit" admin => sources::test_edit,
        body = crate::sources::SourceInput,
        ok = 200 crate::sources::TestOutcome,
        errors = [409];
        "Test an edit of a source before saving it (body as for PUT; omitted secrets are the stored ones); nothing is stored"
    get "/sources/{id}/webhook" admin => webhooks::get,
        ok = 200 webhooks::WebhookView;
        "A source's webhook set-up: the plugin's schemes and set-up steps, the chosen scheme, the URL path, whether a secret is set, and the event counters"
    put "/sources/{id}/webhook" admin => webhooks::set_up,
        body = crate::webhooks::settings::WebhookInput,
        ok = 200 webhooks::WebhookView,
        errors = [409];
        "Set up a source's webhooks (body: scheme, and secret to paste or generate_secret: true; a generated secret is shown once)"
    get "/sources/{id}/health" admin => health::source,
        ok = 200 health::SourceHealth;
        "Last success, last error, error rate and rate limit (requests left, reset, wait) of a source"
    get "/sources/{id}/links" admin => links::list_by_source, query = paging::parameters,
        ok = 200 crate::paging::Listed<crate::links::LinkView>;
        "Every link through a source, oldest first (paged by `limit`, `page` or `cursor`)"
    get "/sources/{id}/impact" admin => links::impact,
        ok = 200 links::Impact;
        "How many links in how many projects a disable or delete leaves without sync"
    post "/sources/{id}/refresh" admin => links::refresh_source,
        ok = 200 crate::sync::RefreshReport,
        errors = [409, 429];
        "Sync every link of a source now (409 `source-syncing` while a sync of the source on another replica holds it past the wait)"
    get "/projects" any => projects::list, query = paging::parameters,
        ok = 200 crate::paging::Listed<projects::ProjectView>;
        "Projects (members: theirs), by id (paged by `limit`, `page` or `cursor`)"
    post "/projects" admin => projects::create,
        body = projects::ProjectInput,
        ok = 201 projects::ProjectView,
        errors = [409];
        "Create a project"
    get "/projects/{id}" member => projects::get,
        ok = 200 projects::ProjectView;
        "One project"
    put "/projects/{id}" admin => projects::rename,
        body = projects::ProjectInput,
        ok = 200 projects::ProjectView,
        errors = [409];
        "Rename a project"
    delete "/projects/{id}" admin => projects::delete,
        ok = 204;
        "Delete a project (removed from specific assignments)"
    get "/projects/{project}/links" member => links::list, query = links::list_parameters,
        ok = 200 crate::paging::Listed<crate::links::LinkView>;
        "Links of a project (`?test_object=`, `?source_id=`; `?limit=`, `?page=` or `?cursor=` asks for a page: {items, total, page, limit, pages, next_page, next_cursor})"
    post "/projects/{project}/links" member => links::create,
        body = links::LinkInput,
        ok = 201 crate::links::LinkView,
        errors = [409];
        "Link a test object to an issue key through an enabled source"
    post "/projects/{project}/links/bulk" member => links::create_bulk,
        body = links::BulkInput,
        ok = 200 Vec<links::BulkResult>;
        "Link many keys to one test object, reported key by key"
    delete "/projects/{project}/links/{id}" member => links::delete,
        ok = 204;
        "Remove a link"
    post "/projects/{project}/links/{id}/refresh" member => links::refresh,
        ok = 200 crate::links::LinkView,
        errors = [409, 429];
        "Fetch a link's issue details now (409 `source-syncing` while a sync of its source on another replica holds it past the wait)"
    post "/projects/{project}/links/{id}/comments" member => comments::add,
        body = comments::CommentInput,
        ok = 201 crate::comments::Posted,
        errors = [409, 429];
        "Post a Markdown comment on the link's issue (body: body), through a source with \"Add comments\""
    get "/projects/{project}/sources/{source}/create-url" member => links::create_url,
        ok = 200 links::CreateUrl,
        errors = [409];
        "The create-issue shortcut, when the source offers one"
    get "/plugins" admin => plugins::list, query = paging::parameters,
        ok = 200 plugins::PluginList;
        "Plugin registry: versions, digests, contract versions, call counts, who signed each version (signed_by, null: unsigned), refused plugin files (problems), the signing policy (`plugins` paged by `limit`, `page` or `cursor`)"
    get "/plugins/{id}" admin => plugins::get,
        ok = 200 plugins::PluginDetail;
        "One plugin with its describe output"
    get "/plugin-settings" admin => plugin_settings::get,
        ok = 200 plugin_settings::SettingsView;
        "The plugin size limits: what the admin set, what is in force, the operator's default"
    put "/plugin-settings" admin => plugin_settings::put,
        body = crate::plugin_registry::settings::PluginSettings,
        ok = 200 plugin_settings::SettingsView;
        "Set the plugin size limits (body: max_plugin_bytes, per_plugin {id: bytes}); stored, in force at once"
    get "/plugins/jobs/{id}" admin => plugins::job,
        ok = 200 plugins::JobView;
        "An admission job: queued, compiling, checking, active, or failed with the reason"
    put "/plugins/{id}" admin => plugins::upload, query = query_parameters::<plugins::UploadQuery>, headers = plugins::upload_headers,
        body = Wasm,
        ok = 202 plugins::JobView,
        ok = 201 plugins::UploadOutcome,
        ok = 200 plugins::UploadOutcome,
        errors = [409, 422];
        "Upload or replace a plugin (application/wasm; its minisign signature, the base64 of its .minisig, in the X-Plugin-Signature header, required when the operator requires signed plugins); 202 with an admission job (compiled and checked in the background, then hot-swapped; ?wait=true answers when it ends); refused when stored sources do not fit it, unless ?force=true"
    delete "/plugins/{id}" admin => plugins::remove, query = query_parameters::<plugins::RemoveQuery>,
        ok = 204,
        errors = [409];
        "Remove a plugin (409 while sources use it, unless ?force=true)"
    get "/tokens" admin => tokens::list, query = paging::parameters,
        ok = 200 crate::paging::Listed<crate::store::records::TokenRecord>;
        "API tokens (never their values), oldest first (paged by `limit`, `page` or `cursor`)"
    post "/tokens" admin => tokens::create,
        body = tokens::TokenInput,
        ok = 201 tokens::CreatedToken;
        "Create a token (admin, or member of projects); its value is shown once"
    delete "/tokens/{id}" admin => tokens::revoke,
        ok = 204,
        errors = [409];
        "Revoke a token"
    get "/me" any => tokens::me,
        ok = 200 crate::store::records::TokenRecord;
        "The caller's own token record"
    get "/audit" admin => audit::list, query = audit::parameters,
        ok = 200 audit::AuditPage;
        "The audit log, newest first (`?source=`, `?before=` or `?cursor=`, `?limit=`)"
}

impl ApiRoute {
    /// The 4xx statuses the route may answer: `401` (every route takes a token), `403` for
    /// a route not open to any token, `404` for a path with an id, `400` for a body or query
    /// to check, `413` and `415` for a body, and the route's own [`ApiRoute::errors`].
    pub fn error_statuses(&self) -> Vec<u16> {
        let mut statuses = vec![401];
        if self.body.is_some() || self.query.is_some() || self.headers.is_some() {
            statuses.push(400);
        }
        if self.who != "any" {
            statuses.push(403);
        }
        if self.path.contains('{') {
            statuses.push(404);
        }
        if self.body.is_some() {
            statuses.extend([413, 415]);
        }
        statuses.extend(self.errors);
        statuses.sort_unstable();
        statuses.dedup();
        statuses
    }
}

/// The OpenAPI 3.1 document of [`API_ROUTES`]: paths from the table, schemas generated from
/// the Rust types of the bodies (see [`super::schemas`]).
pub fn document() -> Value {
    let mut schemas = super::schemas::Schemas::new();
    let mut paths = serde_json::Map::new();
    for route in API_ROUTES {
        let entry = paths
            .entry(format!("/api/v1{}", route.path))
            .or_insert_with(|| json!({}));
        entry[route.method] = operation(route, &mut schemas);
    }
    let (components, renamed) = schemas.finish();
    for op in paths.values_mut().filter_map(Value::as_object_mut) {
        for body in op.values_mut().filter_map(|op| op.get_mut("requestBody")) {
            super::schemas::rename_refs(body, &renamed);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Integration sources API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": components,
        },
    })
}

/// One route's operation object.
fn operation(route: &ApiRoute, schemas: &mut super::schemas::Schemas) -> Value {
    let mut params: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    params.extend(route.query.map(|query| query()).unwrap_or_default());
    params.extend(route.headers.map(|headers| headers()).unwrap_or_default());
    let mut responses = serde_json::Map::new();
    for (status, content) in route.ok {
        let mut answer = json!({"description": success(*status)});
        if let Some(content) = content {
            answer["content"] = content(&mut schemas.responses);
        }
        if route.etag {
            answer["headers"] = json!({"ETag": super::preconditions::etag_header()});
        }
        responses.insert(status.to_string(), answer);
    }
    let error = schemas.responses.subschema_for::<super::error::ErrorBody>();
    for status in route.error_statuses() {
        responses.insert(
            status.to_string(),
            json!({"description": refusal(status), "content": {"application/json": {"schema": error}}}),
        );
    }
    let mut op = json!({
        "operationId": operation_id(route),
        "summary": route.summary,
        "security": [{"bearer": []}],
        "x-role": route.who,
        "responses": responses,
    });
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    if let Some(content) = route.body {
        op["requestBody"] = json!({"required": true, "content": content(&mut schemas.requests)});
    }
    op
}

/// A stable name for the operation, e.g. `post_projects_project_links`, which generated
/// clients use as the function's name.
fn operation_id(route: &ApiRoute) -> String {
    let path: Vec<&str> = route
        .path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .collect();
    format!("{}_{}", route.method, path.join("_"))
}

fn success(status: u16) -> &'static str {
    match status {
        201 => "Created",
        202 => "Accepted: the work goes on in the background",
        204 => "Done; no body",
        _ => "Success",
    }
}

fn refusal(status: u16) -> &'static str {
    match status {
        400 => "A field of the request is invalid (`field` names it)",
        401 => "No valid bearer token",
        403 => "The token may not do this",
        404 => "Not found",
        409 => "In conflict with the stored state",
        413 => "The body is too large",
        412 => "`If-Match` names none of the resource's current versions: it changed meanwhile",
        415 => "The body's media type is not the one expected",
        422 => {
            "Understood but refused, e.g. a plugin signed by a key that is not trusted, or whose signature does not match it"
        }
        429 => "The tracker asked us to wait",
        _ => "Refused",
    }
}

/// `GET /api/v1/openapi.json` (no token needed: it holds no data).
pub async fn openapi() -> Json<Value> {
    Json(document())
}

/// `GET /api/docs`: the same document as a readable page.
pub async fn docs() -> impl IntoResponse {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let doc = document();
    let rows: String = API_ROUTES
        .iter()
        .map(|r| {
            let op = &doc["paths"][format!("/api/v1{}", r.path)][r.method];
            let answers: Vec<String> = (op["responses"].as_object().into_iter().flatten())
                .map(|(status, answer)| match schema_name(&answer["content"]) {
                    Some(name) if !status.starts_with('4') => format!("{status} {name}"),
                    _ => status.clone(),
                })
                .collect();
            format!(
                "<tr><td><code>{}</code></td><td><code>/api/v1{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                r.method.to_uppercase(),
                escape(r.path),
                r.who,
                escape(r.summary),
                escape(&schema_name(&op["requestBody"]["content"]).unwrap_or_default()),
                escape(&answers.join(", ")),
            )
        })
        .collect();
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Integration sources API</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:2rem;color:#1d2330}}table{{border-collapse:collapse}}\
         td,th{{border-bottom:1px solid #dde;padding:6px 10px;text-align:left;vertical-align:top}}code{{font-size:13px}}</style>\
         </head><body><h1>Integration sources API</h1><p>Bearer tokens (<code>Authorization: Bearer its_...</code>). \
         Errors: <code>{{\"error\": {{\"code\", \"message\", \"field\"}}, \"errors\": [...]}}</code> (every problem found, <code>error</code> first). Machine-readable: \
         <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p>\
         <table><thead><tr><th>Method</th><th>Path</th><th>Who</th><th>What</th><th>Body</th><th>Answers (4xx: the error shape)</th></tr></thead><tbody>{rows}</tbody></table></body></html>"
    );
    ([(header::CACHE_CONTROL, "no-cache")], Html(page))
}

/// A readable name for a `content` object's schema: the schema's name, `[Name]` for an array
/// of them, or the media type of a body that is not JSON.
fn schema_name(content: &Value) -> Option<String> {
    let (media, described) = content.as_object()?.iter().next()?;
    let schema = &described["schema"];
    let named = |s: &Value| Some(s["$ref"].as_str()?.rsplit('/').next()?.to_string());
    named(schema)
        .or_else(|| named(&schema["items"]).map(|n| format!("[{n}]")))
        .or_else(|| Some(media.clone()))
}
