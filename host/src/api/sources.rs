//! `/sources`: create, read, list, edit, enable/disable, delete and test integration sources.
//! The rules and the changes are in [`crate::sources`]; here are the routes and the views.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{self, Body, Caller, MergePatch, Path, Query};
use super::preconditions::{IfMatch, Tagged, tagged};
use crate::app::AppState;
use crate::metrics::Health;
use crate::paging::Listed;
use crate::plugin::{Capability, ProviderInfo};
use crate::sources::listing::{DEFAULT_LIMIT, HEALTH_STATUSES, MAX_LIMIT, MAX_SEARCH, SORT_KEYS};
use crate::sources::{self, Edit, ListQuery, Listing, SourceInput, TestOutcome, Viewer};
use crate::store::records::SourceRecord;

/// A source as admins see it. Secret values never appear: `secrets_set` names the set ones.
#[derive(Serialize, JsonSchema)]
pub struct SourceView {
    /// Id.
    pub id: String,
    /// The stored configuration.
    #[serde(flatten)]
    pub record: SourceRecord,
    /// The provider's display name, or none when its plugin is missing.
    pub provider_name: Option<String>,
    /// `loaded`, `missing` or `incompatible`: a source whose plugin is not loaded cannot be
    /// tested or synced; one that no longer fits the loaded version (see [`crate::compat`])
    /// is not synced until it is edited to fit or a fitting version is loaded.
    pub plugin_status: &'static str,
    /// Why the source is `incompatible`; null otherwise.
    pub plugin_problem: Option<String>,
    /// The capabilities its plugin does not serve, each with the reason, e.g.
    /// `{"add_comments": "not supported by this plugin (contract 1.0)"}`; empty when the
    /// plugin is missing (`plugin_status` says so).
    pub unsupported_capabilities: BTreeMap<&'static str, String>,
    /// How its recent calls went (the same as `GET /sources/{id}/health`).
    pub health: Health,
}

/// A source as project members see it.
#[derive(Serialize, JsonSchema)]
pub struct MemberSourceView {
    /// Id.
    pub id: String,
    /// Provider id.
    pub provider: String,
    /// Provider display name.
    pub provider_name: Option<String>,
    /// Label.
    pub display_name: String,
    /// Base URL.
    pub base_url: String,
    /// How keys look.
    pub key_hint: Option<String>,
    /// A sample key.
    pub key_example: Option<String>,
    /// Whether issue details are read.
    pub read_issue_details: bool,
    /// Whether a create-issue shortcut is offered.
    pub create_issues: bool,
    /// Whether comments can be posted on its links: "Add comments" is on and its plugin
    /// supports it.
    pub add_comments: bool,
}

/// `GET /sources`: admins get every source; members get the enabled sources assigned to
/// their projects (or to `?project=`), in the member view. Search, filters, sort and paging
/// are [`ListQuery`]'s; without `limit` or `page` the answer is the plain array.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let request = query.check(caller.is_admin())?;
    if let Some(project) = &request.project {
        caller.require_project(project)?;
    }
    if caller.is_admin() {
        let listed = sources::list(&state, &request, Viewer::Admin).await?;
        return sorted(SourceList::Admin(listed.map(|l| match l.health {
            Some(health) => view_with(&state, l.id, l.record, health),
            None => view(&state, l.id, l.record),
        })));
    }
    let viewer = Viewer::Member(&caller.token.projects);
    let listed = sources::list(&state, &request, viewer).await?;
    sorted(SourceList::Member(listed.map(
        |Listing { id, record, .. }| member_view(&state, id, record),
    )))
}

/// The list as a `serde_json::Value`, whose objects write their keys in alphabetical order:
/// the bytes this answer has always had (a [`SourceView`] alone keeps its field order).
fn sorted(list: SourceList) -> Result<Json<serde_json::Value>, ApiError> {
    serde_json::to_value(list)
        .map(Json)
        .map_err(ApiError::internal)
}

/// The answer of `GET /sources`: admins get [`SourceView`]s, members [`MemberSourceView`]s;
/// each the plain array, or a page when `limit` or `page` is given.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum SourceList {
    /// What an admin sees.
    Admin(Listed<SourceView>),
    /// What a member sees.
    Member(Listed<MemberSourceView>),
}

/// The query parameters of `GET /sources` for the OpenAPI document, built from the same
/// tables and bounds the checks use ([`crate::sources::listing`]).
pub fn list_parameters() -> Vec<serde_json::Value> {
    use serde_json::json;
    let text = json!({"type": "string"});
    // An empty value is the same as none (a form's empty select), so each enum holds "".
    let sorts: Vec<String> = (SORT_KEYS.iter())
        .flat_map(|(n, _)| [n.to_string(), format!("-{n}")])
        .chain([String::new()])
        .collect();
    let healths: Vec<&str> = HEALTH_STATUSES.iter().copied().chain([""]).collect();
    let parameters = [
        ("q", format!("Search text (at most {MAX_SEARCH} characters), matched ignoring case in the display name and the base URL"), text.clone()),
        ("provider", "Only sources of this provider id".into(), text.clone()),
        ("enabled", "Only enabled (`true`) or disabled (`false`) sources".into(), json!({"type": "string", "enum": ["true", "false", ""]})),
        ("health", "Only sources whose health has this status (admins only)".into(), json!({"type": "string", "enum": healths})),
        ("project", "Only sources usable in this project".into(), text),
        ("sort", "The order (default `name`; `health` is worst first, admins only); a leading `-` reverses it".into(), json!({"type": "string", "enum": sorts})),
    ];
    let mut parameters: Vec<serde_json::Value> = parameters
        .into_iter()
        .map(|(name, description, schema)| super::paging::query(name, &description, schema))
        .collect();
    parameters.extend(super::paging::page_parameters(DEFAULT_LIMIT, MAX_LIMIT));
    parameters
}

/// `GET /sources/{id}` (admin), with its version as `ETag`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Tagged<SourceView>, ApiError> {
    caller.require_admin()?;
    let record = sources::load(&state, &id).await?;
    Ok(tagged_view(&state, id, record))
}

/// `POST /sources` (admin), answered with the new source's `ETag`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(input): Body<SourceInput>,
) -> Result<(StatusCode, Tagged<SourceView>), ApiError> {
    caller.require_admin()?;
    let (id, record) = sources::create(&state, &caller.who(), &input).await?;
    Ok((StatusCode::CREATED, tagged_view(&state, id, record)))
}

/// `PUT /sources/{id}` (admin): replaces the configuration; omitted secrets are kept. With
/// `If-Match`, only a source still at one of its versions is changed (else 412).
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(versions): IfMatch,
    Body(input): Body<SourceInput>,
) -> Result<Tagged<SourceView>, ApiError> {
    caller.require_admin()?;
    let edit = Edit {
        versions,
        ..Edit::default()
    };
    let record = sources::update(&state, &caller.who(), &id, &input, &edit).await?;
    Ok(tagged_view(&state, id, record))
}

/// `PATCH /sources/{id}` (admin): a JSON merge patch (RFC 7396) of the source's editable view
/// (see [`sources::patch`]), then checked and saved as a `PUT` of the result. `If-Match` as for
/// `PUT` (checked after the patch itself, so a bad patch is a 400 as a bad `PUT` body is);
/// without it, the patch still applies only to the version it was merged into.
pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(versions): IfMatch,
    MergePatch(patch): MergePatch,
) -> Result<Tagged<SourceView>, ApiError> {
    caller.require_admin()?;
    let current = sources::load(&state, &id).await?;
    // A patch that is not one, or leaves a body that is not a source's, is a 400 whatever
    // If-Match says, as a PUT's body is.
    let patched = sources::patch::apply(&current, &patch)?;
    let input: SourceInput = extract::decode(patched.input.to_string().as_bytes())?;
    let expected = Edit {
        versions,
        ..Edit::default()
    };
    expected.allows(&current)?;
    let edit = Edit {
        versions: Some(vec![current.updated_at]),
        remove_secrets: patched.remove_secrets,
    };
    let record = sources::update(&state, &caller.who(), &id, &input, &edit).await?;
    Ok(tagged_view(&state, id, record))
}

/// `DELETE /sources/{id}` (admin). Links to it stay, marked not syncing.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    sources::delete(&state, &caller.who(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /sources/{id}/enable` (admin).
pub async fn enable(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
) -> Result<Tagged<SourceView>, ApiError> {
    set_enabled(state, caller, id, true).await
}

/// `POST /sources/{id}/disable` (admin).
pub async fn disable(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
) -> Result<Tagged<SourceView>, ApiError> {
    set_enabled(state, caller, id, false).await
}

async fn set_enabled(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    enabled: bool,
) -> Result<Tagged<SourceView>, ApiError> {
    caller.require_admin()?;
    let record = sources::set_enabled(&state, &caller.who(), &id, enabled).await?;
    Ok(tagged_view(&state, id, record))
}

/// `POST /sources/{id}/test` (admin): runs the plugin's connection test with the stored
/// configuration, enabled or not, and records the result on the source.
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TestOutcome>, ApiError> {
    caller.require_admin()?;
    Ok(Json(sources::test(&state, &caller.who(), &id).await?))
}

/// `POST /sources/test` (admin): tests a draft configuration without saving it.
pub async fn test_draft(
    State(state): State<AppState>,
    caller: Caller,
    Body(input): Body<SourceInput>,
) -> Result<Json<TestOutcome>, ApiError> {
    caller.require_admin()?;
    Ok(Json(sources::test_draft(&state, &input).await?))
}

/// `POST /sources/{id}/test-edit`: tests an edit of a stored source before it is saved. The
/// body is the edited configuration (as for `PUT`); secrets it omits are the stored ones.
/// Nothing is stored, not even the result, so replaced credentials can be tried first.
pub async fn test_edit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(input): Body<SourceInput>,
) -> Result<Json<TestOutcome>, ApiError> {
    caller.require_admin()?;
    Ok(Json(sources::test_edit(&state, &id, &input).await?))
}

/// [`view`] with the source's version as `ETag`.
fn tagged_view(state: &AppState, id: String, record: SourceRecord) -> Tagged<SourceView> {
    tagged(record.updated_at, view(state, id, record))
}

fn view(state: &AppState, id: String, record: SourceRecord) -> SourceView {
    let health = state.metrics.health(&id, state.plugins.headroom(&id));
    view_with(state, id, record, health)
}

/// [`view`] with the source's health already read.
fn view_with(state: &AppState, id: String, record: SourceRecord, health: Health) -> SourceView {
    let plugin = state.plugins.get(&record.provider).ok();
    let status = crate::compat::status(&state.plugins, &record);
    SourceView {
        health,
        id,
        provider_name: plugin.as_ref().map(|p| p.info.name.clone()),
        plugin_status: status.name(),
        plugin_problem: status.reason().map(str::to_string),
        unsupported_capabilities: (plugin.as_ref())
            .map(|p| p.capabilities().unsupported)
            .unwrap_or_default(),
        record,
    }
}

fn member_view(state: &AppState, id: String, s: SourceRecord) -> MemberSourceView {
    let plugin = state.plugins.get(&s.provider).ok();
    let (key_hint, key_example) = match &plugin {
        Some(p) => member_key_hint(state, &p.info, &s),
        None => (None, None),
    };
    MemberSourceView {
        id,
        provider_name: plugin.as_ref().map(|p| p.info.name.clone()),
        key_hint,
        key_example,
        provider: s.provider,
        display_name: s.display_name,
        base_url: s.base_url,
        read_issue_details: s.capabilities.read_issue_details,
        create_issues: s.capabilities.create_issues && s.create_url_template.is_some(),
        add_comments: s.capabilities.add_comments
            && (plugin.as_ref()).is_some_and(|p| p.unsupported(Capability::AddComments).is_none()),
    }
}

/// The key hint and example members see. A source with a key pattern states it instead of
/// the provider's general hint (which, for a free-form tracker, may say "any format"), and
/// keeps the provider's example only if the pattern accepts it.
fn member_key_hint(
    state: &AppState,
    info: &ProviderInfo,
    s: &SourceRecord,
) -> (Option<String>, Option<String>) {
    let Some(pattern) = &s.key_pattern else {
        return (Some(info.key_hint.clone()), Some(info.key_example.clone()));
    };
    let example = Some(info.key_example.clone()).filter(|e| state.patterns.matches(pattern, e));
    let hint = match &example {
        Some(e) => format!("Keys of this source match {pattern}, e.g. {e}"),
        None => format!("Keys of this source match {pattern}"),
    };
    (Some(hint), example)
}

/// Body of `POST /key-patterns/check`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatternCheck {
    /// The pattern as the admin typed it.
    pub pattern: String,
    /// A sample key to match, if any.
    #[serde(default)]
    pub key: Option<String>,
}

/// `POST /key-patterns/check`: whether a key pattern is valid by the server's own rules (the
/// ones Save applies) and, given a sample key, whether it matches; the editor's live check asks
/// here so that it never disagrees with Save (a browser's `RegExp` accepts look-around, which
/// the server refuses).
pub async fn check_pattern(
    caller: Caller,
    Body(input): Body<PatternCheck>,
) -> Result<Json<PatternVerdict>, ApiError> {
    caller.require_admin()?;
    Ok(Json(
        match sources::check_key_pattern(input.pattern.trim()) {
            Ok(re) => PatternVerdict::Valid {
                valid: true,
                matches: input.key.map(|k| re.is_match(&k)),
            },
            Err(e) => PatternVerdict::Invalid {
                valid: false,
                message: e.message,
            },
        },
    ))
}

/// The answer of `POST /key-patterns/check`.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum PatternVerdict {
    /// The pattern is valid.
    Valid {
        /// Whether the sample key matches; null without a sample key.
        matches: Option<bool>,
        /// Always `true`.
        valid: bool,
    },
    /// The pattern is refused.
    Invalid {
        /// Why, for a person.
        message: String,
        /// Always `false`.
        valid: bool,
    },
}
