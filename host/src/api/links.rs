//! Links: `/projects/{project}/links` for members (and admins), plus the admin's per-source
//! views (`/sources/{id}/links`, `/impact`, `/refresh`) and the create-issue shortcut.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{Body, Caller, Path, Query};
use crate::app::AppState;
use crate::links::{self, LinkFilter, LinkView};
use crate::paging::{self, Listed, PageQuery, PageRequest};
use crate::sync::{self, RefreshReport};

/// Body of `POST /projects/{project}/links`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"test_object": "test-case:TC-42", "source_id": "src_...", "key": "#42"}))]
pub struct LinkInput {
    /// The test object, e.g. `test-case:TC-42`.
    pub test_object: String,
    /// The source to link through.
    pub source_id: String,
    /// The issue key as typed or pasted.
    pub key: String,
}

/// Body of `POST /projects/{project}/links/bulk`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkInput {
    /// The test object.
    pub test_object: String,
    /// The source.
    pub source_id: String,
    /// Keys as typed or pasted; each is checked and reported on its own (at most 200).
    pub keys: Vec<String>,
}

/// One key's outcome in a bulk create.
#[derive(Serialize, JsonSchema)]
pub struct BulkResult {
    /// The key as sent.
    pub key: String,
    /// The created link.
    pub link: Option<LinkView>,
    /// Why it was not created.
    pub error: Option<BulkError>,
}

/// Why one key of a bulk create was not created: the error a single create would answer.
/// (Fields in alphabetical order, as this answer has always had them.)
#[derive(Serialize, JsonSchema)]
pub struct BulkError {
    /// Stable kebab-case code.
    pub code: &'static str,
    /// The request field at fault, if one is.
    pub field: Option<String>,
    /// What to tell the caller.
    pub message: String,
    /// The HTTP status a single create would answer.
    pub status: u16,
}

/// The answer of `GET /projects/{project}/sources/{source}/create-url`.
#[derive(Serialize, JsonSchema)]
pub struct CreateUrl {
    /// The tracker's new-issue form.
    pub url: String,
}

/// The answer of `GET /sources/{id}/impact`: what a disable or delete leaves without sync.
#[derive(Serialize, JsonSchema)]
pub struct Impact {
    /// Links through the source.
    pub links: usize,
    /// Projects those links are in.
    pub projects: usize,
}

/// Query of the link listings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkQuery {
    /// Only links of this test object.
    pub test_object: Option<String>,
    /// Only links through this source.
    pub source_id: Option<String>,
    /// Links per page (1 to [`links::MAX_PAGE`]); asks for the paged answer (see
    /// [`crate::paging`]).
    pub limit: Option<String>,
    /// Page number from 1; asks for the paged answer.
    pub page: Option<String>,
    /// The `next_cursor` of the previous page; asks for the page after it.
    pub cursor: Option<String>,
}

/// `POST /projects/{project}/links`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    Body(input): Body<LinkInput>,
) -> Result<(StatusCode, Json<LinkView>), ApiError> {
    // The project's existence: checked by `links::create`.
    caller.require_project(&project)?;
    let view = links::create(
        &state,
        &project,
        &input.test_object,
        &input.source_id,
        &input.key,
        &caller.who(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `POST /projects/{project}/links/bulk`: many keys for one test object, each reported.
pub async fn create_bulk(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    Body(input): Body<BulkInput>,
) -> Result<Json<Vec<BulkResult>>, ApiError> {
    check_project(&state, &caller, &project).await?;
    if input.keys.is_empty() || input.keys.len() > 200 {
        return Err(ApiError::invalid("keys", "send 1 to 200 keys"));
    }
    let mut results = Vec::with_capacity(input.keys.len());
    for key in input.keys {
        let outcome = links::create(
            &state,
            &project,
            &input.test_object,
            &input.source_id,
            &key,
            &caller.who(),
        )
        .await
        .map_err(ApiError::from);
        results.push(match outcome {
            Ok(link) => BulkResult {
                key,
                link: Some(link),
                error: None,
            },
            Err(e) => BulkResult {
                key,
                link: None,
                error: Some(BulkError {
                    status: e.status.as_u16(),
                    code: e.code,
                    message: e.message,
                    field: e.field,
                }),
            },
        });
    }
    Ok(Json(results))
}

/// `GET /projects/{project}/links`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    Query(query): Query<LinkQuery>,
) -> Result<Json<Listed<LinkView>>, ApiError> {
    let page = PageRequest::parse(
        query.limit,
        query.page,
        query.cursor,
        links::PAGE_SIZE,
        links::MAX_PAGE,
    )?;
    check_project(&state, &caller, &project).await?;
    let filter = LinkFilter {
        test_object: query.test_object,
        source_id: query.source_id,
    };
    Ok(Json(links::list(&state, project, filter, page).await?))
}

/// The query parameters of `GET /projects/{project}/links` for the OpenAPI document.
pub fn list_parameters() -> Vec<serde_json::Value> {
    let text = serde_json::json!({"type": "string"});
    let mut parameters = vec![
        super::paging::query(
            "test_object",
            "Only links of this test object",
            text.clone(),
        ),
        super::paging::query("source_id", "Only links through this source", text),
    ];
    parameters.extend(super::paging::page_parameters(
        links::PAGE_SIZE,
        links::MAX_PAGE,
    ));
    parameters
}

/// `DELETE /projects/{project}/links/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    check_project(&state, &caller, &project).await?;
    links::delete(&state, &project, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /projects/{project}/links/{id}/refresh`: fetches the issue now. A 409 when its source
/// does not sync (disabled, deleted, no "Read issue details"), a 429 while the tracker asked us
/// to wait.
pub async fn refresh(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<LinkView>, ApiError> {
    check_project(&state, &caller, &project).await?;
    Ok(Json(sync::refresh_link(&state, &project, &id).await?))
}

/// `GET /projects/{project}/sources/{source}/create-url`: the create-issue shortcut, only for
/// a source with the "Create issues" capability and a create URL template.
pub async fn create_url(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, source_id)): Path<(String, String)>,
) -> Result<Json<CreateUrl>, ApiError> {
    check_project(&state, &caller, &project).await?;
    let url = links::create_url(&state, &project, &source_id).await?;
    Ok(Json(CreateUrl { url }))
}

/// `GET /sources/{id}/links` (admin): every link through a source, oldest first; paged by
/// `limit`, `page` and `cursor` (see [`crate::paging`]).
pub async fn list_by_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<Listed<LinkView>>, ApiError> {
    caller.require_admin()?;
    let page = query.check()?;
    let wanted = id.clone();
    let views = links::load_views(&state, move |l| l.source_id == wanted).await?;
    // A deleted source's links are still listed; an id that names nothing is a 404.
    if views.is_empty() {
        crate::sources::load(&state, &id).await?;
    }
    Ok(Json(paging::cut(views, page, links::position)))
}

/// `GET /sources/{id}/impact` (admin): how many links, in how many projects, a disable or a
/// delete would leave without sync.
pub async fn impact(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Impact>, ApiError> {
    caller.require_admin()?;
    crate::sources::load(&state, &id).await?;
    let (links, projects) = links::impact(&state, &id).await?;
    Ok(Json(Impact { links, projects }))
}

/// `POST /sources/{id}/refresh` (admin): syncs every link of a source now; 409 when it does not
/// sync, 429 while the tracker asked us to wait.
pub async fn refresh_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RefreshReport>, ApiError> {
    caller.require_admin()?;
    Ok(Json(sync::refresh_stored_source(&state, &id).await?))
}

async fn check_project(state: &AppState, caller: &Caller, project: &str) -> Result<(), ApiError> {
    caller.require_project(project)?;
    crate::projects::get(state, project).await?;
    Ok(())
}
