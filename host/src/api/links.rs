//! Links: `/projects/{project}/links` for members (and admins), plus the admin's per-source
//! views (`/sources/{id}/links`, `/impact`, `/refresh`) and the create-issue shortcut.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::ApiError;
use super::extract::{Body, Caller, Path, Query};
use super::new_id;
use super::paging::{self, Listed, PageRequest};
use crate::app::AppState;
use crate::links::{self, LinkView, SyncState};
use crate::store::records::{LinkRecord, ProjectRecord, SourceRecord};
use crate::store::{LINKS, PROJECTS, Read, SOURCES};
use crate::sync::{self, RefreshReport};

/// Body of `POST /projects/{project}/links`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkInput {
    /// The test object, e.g. `test-case:TC-42`.
    pub test_object: String,
    /// The source to link through.
    pub source_id: String,
    /// The issue key as typed or pasted.
    pub key: String,
}

/// Body of `POST /projects/{project}/links/bulk`.
#[derive(Deserialize)]
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
#[derive(Serialize)]
pub struct BulkResult {
    /// The key as sent.
    pub key: String,
    /// The created link.
    pub link: Option<LinkView>,
    /// Why it was not created: `{code, message, field}`.
    pub error: Option<serde_json::Value>,
}

/// Query of the link listings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkQuery {
    /// Only links of this test object.
    pub test_object: Option<String>,
    /// Only links through this source.
    pub source_id: Option<String>,
    /// Links per page (1 to 500); asks for the paged answer (see [`super::paging`]).
    pub limit: Option<String>,
    /// Page number from 1; asks for the paged answer.
    pub page: Option<String>,
}

/// The most links one page of `GET /projects/{project}/links` holds.
pub const MAX_LINKS_PAGE: usize = 500;

/// `POST /projects/{project}/links`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    Body(input): Body<LinkInput>,
) -> Result<(StatusCode, Json<LinkView>), ApiError> {
    check_project(&state, &caller, &project).await?;
    let link = links::prepare(
        &state,
        &project,
        &input.test_object,
        &input.source_id,
        &input.key,
        &caller.who(),
    )
    .await?;
    let view = store_link(&state, link).await?;
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
        let outcome = match links::prepare(
            &state,
            &project,
            &input.test_object,
            &input.source_id,
            &key,
            &caller.who(),
        )
        .await
        {
            Ok(link) => store_link(&state, link).await,
            Err(e) => Err(e),
        };
        results.push(match outcome {
            Ok(link) => BulkResult { key, link: Some(link), error: None },
            Err(e) => BulkResult {
                key,
                link: None,
                error: Some(json!({"status": e.status.as_u16(), "code": e.code, "message": e.message, "field": e.field})),
            },
        });
    }
    Ok(Json(results))
}

async fn store_link(state: &AppState, link: links::NewLink) -> Result<LinkView, ApiError> {
    let id = new_id("lnk");
    let record = link.record.clone();
    let source = state.link_writer.insert(id.clone(), link).await?;
    Ok(LinkView {
        id,
        sync_state: SyncState::of(source.as_ref()),
        record,
    })
}

/// `GET /projects/{project}/links`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    Query(query): Query<LinkQuery>,
) -> Result<Json<Listed<LinkView>>, ApiError> {
    let page = PageRequest::parse(query.limit, query.page, 50, MAX_LINKS_PAGE)?;
    check_project(&state, &caller, &project).await?;
    let views = load_views(&state, move |l| {
        l.project == project
            && query
                .test_object
                .as_ref()
                .is_none_or(|t| *t == l.test_object)
            && query.source_id.as_ref().is_none_or(|s| *s == l.source_id)
    })
    .await?;
    Ok(Json(paging::cut(views, page)))
}

/// `DELETE /projects/{project}/links/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    check_project(&state, &caller, &project).await?;
    state
        .store
        .write(move |w| match w.get::<LinkRecord>(LINKS, &id)? {
            Some(link) if link.project == project => {
                links::remove(w, &id)?;
                Ok(())
            }
            _ => Err(ApiError::not_found(format!(
                "no link {id:?} in this project"
            ))),
        })
        .await?;
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
    let key = id.clone();
    let link: Option<LinkRecord> = state.store.read(move |r| r.get(LINKS, &key)).await?;
    let link = link
        .filter(|l| l.project == project)
        .ok_or_else(|| ApiError::not_found(format!("no link {id:?} in this project")))?;
    sync::refresh_source(&state, &link.source_id, Some(vec![id.clone()])).await?;
    let views = load_views(&state, move |l| {
        l.project == link.project && l.identity() == link.identity()
    })
    .await?;
    views
        .into_iter()
        .next()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("the link was deleted meanwhile"))
}

/// `GET /projects/{project}/sources/{source}/create-url`: the create-issue shortcut, only for
/// a source with the "Create issues" capability and a create URL template.
pub async fn create_url(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, source_id)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_project(&state, &caller, &project).await?;
    let (source, secrets) = crate::api::sources::load_with_secrets(&state, &source_id).await?;
    if !source.enabled || !source.projects.includes(&project) {
        return Err(ApiError::not_found(format!(
            "no usable source {source_id:?} in this project"
        )));
    }
    if !source.capabilities.create_issues || source.create_url_template.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no-create-shortcut",
            "this source offers no create-issue shortcut",
        ));
    }
    let url = state
        .plugins
        .create_url(&crate::api::sources::config(
            Some(&source_id),
            &source,
            secrets,
        ))
        .await?;
    Ok(Json(json!({ "url": url })))
}

/// `GET /sources/{id}/links` (admin): every link through a source.
pub async fn list_by_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<LinkView>>, ApiError> {
    caller.require_admin()?;
    Ok(Json(load_views(&state, move |l| l.source_id == id).await?))
}

/// `GET /sources/{id}/impact` (admin): how many links, in how many projects, a disable or a
/// delete would leave without sync.
pub async fn impact(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_admin()?;
    let links: Vec<(String, LinkRecord)> = state.store.read(|r| r.all(LINKS)).await?;
    let mine: Vec<&LinkRecord> = links
        .iter()
        .map(|(_, l)| l)
        .filter(|l| l.source_id == id)
        .collect();
    let mut projects: Vec<&str> = mine.iter().map(|l| l.project.as_str()).collect();
    projects.sort();
    projects.dedup();
    Ok(Json(
        json!({"links": mine.len(), "projects": projects.len()}),
    ))
}

/// `POST /sources/{id}/refresh` (admin): syncs every link of a source now; 409 when it does not
/// sync, 429 while the tracker asked us to wait.
pub async fn refresh_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RefreshReport>, ApiError> {
    caller.require_admin()?;
    let key = id.clone();
    let found: Option<SourceRecord> = state.store.read(move |r| r.get(SOURCES, &key)).await?;
    if found.is_none() {
        return Err(ApiError::not_found(format!("no source {id:?}")));
    }
    Ok(Json(sync::refresh_source(&state, &id, None).await?))
}

async fn check_project(state: &AppState, caller: &Caller, project: &str) -> Result<(), ApiError> {
    caller.require_project(project)?;
    let key = project.to_string();
    let found: Option<ProjectRecord> = state.store.read(move |r| r.get(PROJECTS, &key)).await?;
    found
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found(format!("no project {project:?}")))
}

async fn load_views(
    state: &AppState,
    keep: impl Fn(&LinkRecord) -> bool + Send + 'static,
) -> Result<Vec<LinkView>, ApiError> {
    let (links, sources) = state
        .store
        .read(move |r| {
            let links: Vec<(String, LinkRecord)> = r.all(LINKS)?;
            let sources: Vec<(String, SourceRecord)> = r.all(SOURCES)?;
            Ok::<_, ApiError>((
                links
                    .into_iter()
                    .filter(|(_, l)| keep(l))
                    .collect::<Vec<_>>(),
                sources,
            ))
        })
        .await?;
    let sources: HashMap<String, SourceRecord> = sources.into_iter().collect();
    let mut views = links::views(links, &sources);
    links::current_urls(state, &mut views, &sources).await;
    views.sort_by_key(|v| v.record.created_at);
    Ok(views)
}
