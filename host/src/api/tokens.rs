//! `/tokens`: the routes of [`crate::tokens`]. (`bootstrap_admin` is re-exported here for the
//! callers that know it by this path.)

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{Body, Caller, Path, Query};
use crate::app::AppState;
use crate::paging::{self, Listed, PageQuery};
use crate::store::records::{Role, TokenRecord};
use crate::tokens;
pub use crate::tokens::bootstrap_admin;

/// Body of `POST /tokens`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"name": "CI", "role": "member", "projects": ["prj_..."]}))]
pub struct TokenInput {
    /// A label.
    pub name: String,
    /// `admin` or `member`.
    pub role: Role,
    /// For members: at least one existing project id.
    #[serde(default)]
    pub projects: Vec<String>,
}

/// A created token: the only time its value is sent.
#[derive(Serialize, JsonSchema)]
pub struct CreatedToken {
    /// The bearer token. Store it now; it cannot be shown again.
    pub token: String,
    /// The record.
    #[serde(flatten)]
    pub record: TokenRecord,
}

/// `POST /tokens` (admin).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(input): Body<TokenInput>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    caller.require_admin()?;
    let (token, record) = tokens::create(
        &state,
        &caller.who(),
        &input.name,
        input.role,
        input.projects,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, record })))
}

/// `GET /tokens` (admin): records only, never values; oldest first, paged by `limit`, `page`
/// and `cursor` (see [`crate::paging`]).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> Result<Json<Listed<TokenRecord>>, ApiError> {
    caller.require_admin()?;
    let page = query.check()?;
    let all = tokens::list(&state).await?;
    Ok(Json(paging::cut(all, page, tokens::position)))
}

/// `DELETE /tokens/{id}` (admin). Revoking the last admin token is refused.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    tokens::revoke(&state, &caller.who(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /me`: the caller's own token record.
pub async fn me(caller: Caller) -> Json<TokenRecord> {
    Json(caller.token)
}
