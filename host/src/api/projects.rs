//! `/projects`: the routes of [`crate::projects`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{Body, Caller, Path, Query};
use crate::app::AppState;
use crate::paging::{self, Listed, PageQuery};
use crate::projects;
use crate::store::records::ProjectRecord;

/// A project on the wire.
#[derive(Serialize, JsonSchema)]
pub struct ProjectView {
    /// Id.
    pub id: String,
    /// Record.
    #[serde(flatten)]
    pub record: ProjectRecord,
}

/// Body of create and rename.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"name": "Checkout"}))]
pub struct ProjectInput {
    /// Unique, 1-100 characters.
    pub name: String,
}

/// `GET /projects`: admins see all; members see theirs; by id, paged by `limit`, `page` and
/// `cursor` (see [`crate::paging`]).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> Result<Json<Listed<ProjectView>>, ApiError> {
    let page = query.check()?;
    let views: Vec<ProjectView> = projects::list(&state)
        .await?
        .into_iter()
        .filter(|(id, _)| caller.require_project(id).is_ok())
        .map(|(id, record)| ProjectView { id, record })
        .collect();
    Ok(Json(paging::cut(views, page, |p| vec![p.id.clone()])))
}

/// `GET /projects/{id}`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ProjectView>, ApiError> {
    caller.require_project(&id)?;
    let record = projects::get(&state, &id).await?;
    Ok(Json(ProjectView { id, record }))
}

/// `POST /projects` (admin).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(input): Body<ProjectInput>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    caller.require_admin()?;
    let (id, record) = projects::create(&state, &caller.who(), &input.name).await?;
    Ok((StatusCode::CREATED, Json(ProjectView { id, record })))
}

/// `PUT /projects/{id}` (admin): rename.
pub async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(input): Body<ProjectInput>,
) -> Result<Json<ProjectView>, ApiError> {
    caller.require_admin()?;
    let record = projects::rename(&state, &caller.who(), &id, &input.name).await?;
    Ok(Json(ProjectView { id, record }))
}

/// `DELETE /projects/{id}` (admin): also removes the project from specific assignments.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    projects::delete(&state, &caller.who(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
