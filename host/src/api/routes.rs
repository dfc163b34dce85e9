//! The route table of `/api/v1`: one list that both builds the router and generates the
//! OpenAPI document (`GET /api/v1/openapi.json`) and its readable rendering (`GET /api/docs`),
//! so the description cannot drift from the routes.

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use serde_json::{Value, json};

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
    /// Its query parameters for the document, built from the tables the checks use.
    pub query: Option<fn() -> Vec<Value>>,
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

macro_rules! routes {
    ($( $method:ident $path:literal $who:ident => $handler:expr $(, layer = $layer:expr)? $(, query = $query:expr)? ; $summary:literal )*) => {
        /// Every `/api/v1` route, in documentation order.
        pub const API_ROUTES: &[ApiRoute] = &[
            $( ApiRoute { method: stringify!($method), path: $path, who: stringify!($who), summary: $summary, query: query!($($query)?) } ),*
        ];

        /// The `/api/v1` router built from the same table.
        pub fn api_router() -> Router<AppState> {
            Router::new()
                $( .route($path, axum::routing::$method($handler)$(.layer($layer))?) )*
                .route("/openapi.json", axum::routing::get(openapi))
                .fallback(not_found)
                .method_not_allowed_fallback(method_not_allowed)
                .layer(DefaultBodyLimit::max(extract::MAX_JSON_BYTES))
        }
    };
}

routes! {
    get "/providers" any => providers::list; "Loaded provider plugins and what they describe (auth types and fields, settings, key format, URL templates)"
    get "/providers/{id}" any => providers::get; "One provider's description"
    get "/sources" any => sources::list, query = sources::list_parameters; "List sources: admins get all; members get the enabled sources of their projects; searched, filtered, sorted and paged (`limit`, `page` or `cursor`) by the query parameters"
    post "/sources" admin => sources::create; "Create a source (body: provider, display_name, base_url, auth {type, fields}, templates, key_pattern, enabled, capabilities, projects, settings, network); answers with its `ETag`"
    post "/sources/test" admin => sources::test_draft; "Test a draft source configuration without saving it"
    post "/key-patterns/check" admin => sources::check_pattern; "Check a key pattern by the server's rules (body: pattern, optional key): {valid, matches} or {valid: false, message}"
    get "/sources/export" admin => transfer::export; "Export all sources as TOML, secrets as ${SRC_...} references"
    post "/sources/import" admin => transfer::import, layer = DefaultBodyLimit::max(crate::sources_as_code::MAX_IMPORT_BYTES); "Import sources from TOML (create or update by name, all or nothing); `?dry_run=true` answers what would change and changes nothing"
    get "/sources/{id}" admin => sources::get; "One source (secret values never included; `secrets_set` names them), with its version as `ETag`"
    put "/sources/{id}" admin => sources::update; "Edit a source; omitted secrets are kept, a new value replaces, switching provider or auth type drops them; `If-Match` with the `ETag` refuses (412) an edit of a source someone else changed meanwhile"
    patch "/sources/{id}" admin => sources::patch; "Edit some fields of a source by JSON merge patch (application/merge-patch+json or application/json; null removes a field or a secret), checked and saved as PUT; `If-Match` as for PUT"
    delete "/sources/{id}" admin => sources::delete; "Delete a source; its links stay, marked not syncing"
    post "/sources/{id}/enable" admin => sources::enable; "Enable a source (answers with its new `ETag`)"
    post "/sources/{id}/disable" admin => sources::disable; "Disable a source: hidden from members, no new links, links stop syncing (answers with its new `ETag`)"
    post "/sources/{id}/test" admin => sources::test; "Run the connection test with the stored configuration (enabled or not) and record the result"
    post "/sources/{id}/test-edit" admin => sources::test_edit; "Test an edit of a source before saving it (body as for PUT; omitted secrets are the stored ones); nothing is stored"
    get "/sources/{id}/webhook" admin => webhooks::get; "A source's webhook set-up: the plugin's schemes and set-up steps, the chosen scheme, the URL path, whether a secret is set, and the event counters"
    put "/sources/{id}/webhook" admin => webhooks::set_up; "Set up a source's webhooks (body: scheme, and secret to paste or generate_secret: true; a generated secret is shown once)"
    get "/sources/{id}/health" admin => health::source; "Last success, last error, error rate and rate limit (requests left, reset, wait) of a source"
    get "/sources/{id}/links" admin => links::list_by_source, query = paging::parameters; "Every link through a source, oldest first (paged by `limit`, `page` or `cursor`)"
    get "/sources/{id}/impact" admin => links::impact; "How many links in how many projects a disable or delete leaves without sync"
    post "/sources/{id}/refresh" admin => links::refresh_source; "Sync every link of a source now"
    get "/projects" any => projects::list, query = paging::parameters; "Projects (members: theirs), by id (paged by `limit`, `page` or `cursor`)"
    post "/projects" admin => projects::create; "Create a project"
    get "/projects/{id}" member => projects::get; "One project"
    put "/projects/{id}" admin => projects::rename; "Rename a project"
    delete "/projects/{id}" admin => projects::delete; "Delete a project (removed from specific assignments)"
    get "/projects/{project}/links" member => links::list, query = links::list_parameters; "Links of a project (`?test_object=`, `?source_id=`; `?limit=`, `?page=` or `?cursor=` asks for a page: {items, total, page, limit, pages, next_page, next_cursor})"
    post "/projects/{project}/links" member => links::create; "Link a test object to an issue key through an enabled source"
    post "/projects/{project}/links/bulk" member => links::create_bulk; "Link many keys to one test object, reported key by key"
    delete "/projects/{project}/links/{id}" member => links::delete; "Remove a link"
    post "/projects/{project}/links/{id}/refresh" member => links::refresh; "Fetch a link's issue details now"
    post "/projects/{project}/links/{id}/comments" member => comments::add; "Post a Markdown comment on the link's issue (body: body), through a source with \"Add comments\""
    get "/projects/{project}/sources/{source}/create-url" member => links::create_url; "The create-issue shortcut, when the source offers one"
    get "/plugins" admin => plugins::list, query = paging::parameters; "Plugin registry: versions, digests, contract versions, call counts, who signed each version (signed_by, null: unsigned), refused plugin files (problems), the signing policy (`plugins` paged by `limit`, `page` or `cursor`)"
    get "/plugins/{id}" admin => plugins::get; "One plugin with its describe output"
    get "/plugin-settings" admin => plugin_settings::get; "The plugin size limits: what the admin set, what is in force, the operator's default"
    put "/plugin-settings" admin => plugin_settings::put; "Set the plugin size limits (body: max_plugin_bytes, per_plugin {id: bytes}); stored, in force at once"
    get "/plugins/jobs/{id}" admin => plugins::job; "An admission job: queued, compiling, checking, active, or failed with the reason"
    put "/plugins/{id}" admin => plugins::upload; "Upload or replace a plugin (application/wasm; its minisign signature, the base64 of its .minisig, in the X-Plugin-Signature header, required when the operator requires signed plugins); 202 with an admission job (compiled and checked in the background, then hot-swapped; ?wait=true answers when it ends); refused when stored sources do not fit it, unless ?force=true"
    delete "/plugins/{id}" admin => plugins::remove; "Remove a plugin (409 while sources use it, unless ?force=true)"
    get "/tokens" admin => tokens::list, query = paging::parameters; "API tokens (never their values), oldest first (paged by `limit`, `page` or `cursor`)"
    post "/tokens" admin => tokens::create; "Create a token (admin, or member of projects); its value is shown once"
    delete "/tokens/{id}" admin => tokens::revoke; "Revoke a token"
    get "/me" any => tokens::me; "The caller's own token record"
    get "/audit" admin => audit::list, query = audit::parameters; "The audit log, newest first (`?source=`, `?before=` or `?cursor=`, `?limit=`)"
}

/// The OpenAPI 3.1 document of [`API_ROUTES`].
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for route in API_ROUTES {
        let mut params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(route.query.map(|query| query()).unwrap_or_default());
        let mut op = json!({
            "summary": route.summary,
            "security": [{"bearer": []}],
            "x-role": route.who,
            "responses": {
                "2XX": {"description": "Success (JSON)"},
                "4XX": {"description": "The request was refused", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if matches!(route.method, "post" | "put") {
            op["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        let entry = paths
            .entry(format!("/api/v1{}", route.path))
            .or_insert_with(|| json!({}));
        entry[route.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Integration sources API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {"$ref": "#/components/schemas/FieldError"},
                    "errors": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/FieldError"},
                        "description": "Every problem found in the request, `error` first",
                    },
                },
            },
            "FieldError": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": "string", "description": "The request field at fault, as a path"},
                },
            }},
        },
    })
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
    let rows: String = API_ROUTES
        .iter()
        .map(|r| {
            format!(
                "<tr><td><code>{}</code></td><td><code>/api/v1{}</code></td><td>{}</td><td>{}</td></tr>",
                r.method.to_uppercase(),
                escape(r.path),
                r.who,
                escape(r.summary)
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
         <table><thead><tr><th>Method</th><th>Path</th><th>Who</th><th>What</th></tr></thead><tbody>{rows}</tbody></table></body></html>"
    );
    ([(header::CACHE_CONTROL, "no-cache")], Html(page))
}
