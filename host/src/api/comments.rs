//! `POST /projects/{project}/links/{id}/comments`: "Add comments" on a link's issue. The rules
//! live in [`crate::comments`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{Body, Caller, Path};
use crate::app::AppState;
use crate::comments::{self, Posted};

/// Body of `POST /projects/{project}/links/{id}/comments`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"body": "Fails on **staging**: see run 118."}))]
pub struct CommentInput {
    /// The comment, in Markdown (at most [`comments::MAX_CHARS`] characters, and the
    /// tracker's own limit).
    pub body: String,
}

/// Posts a comment on the issue of a link (a member of the project); 201 with the tracker's
/// comment id and URL.
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, id)): Path<(String, String)>,
    Body(input): Body<CommentInput>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    caller.require_project(&project)?;
    let posted = comments::add(&state, &caller.who(), &project, &id, &input.body).await?;
    Ok((StatusCode::CREATED, Json(posted)))
}
