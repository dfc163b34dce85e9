//! `/sources/export` and `/sources/import`: sources as code over the API (admin only). The
//! file format and the import's rules are in [`crate::sources_as_code`].

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{Caller, Query, has_media_type};
use crate::app::AppState;
use crate::sources_as_code::{self, ImportReport, MAX_IMPORT_BYTES, References};

/// The media types an import accepts.
pub const TOML_TYPES: [&str; 3] = ["application/toml", "text/toml", "text/plain"];

/// `GET /sources/export` (admin): every source as TOML (`text/toml`), secrets as references.
pub async fn export(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let text = sources_as_code::export(&state.store).await?;
    Ok(([(header::CONTENT_TYPE, "text/toml; charset=utf-8")], text).into_response())
}

/// Query of `POST /sources/import`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Check the file and answer what the import would do, changing nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /sources/import` (admin): the body is a sources file (`application/toml`); creates or
/// updates each source by display name, all or nothing. Answers the names created, updated
/// (with the fields that changed) and left unchanged; a 4xx names the field
/// (`sources[1].base_url`). With `?dry_run=true` it answers the same and changes nothing.
/// Secret references may name only `SRC_*` environment variables of the service, and no files
/// (see [`References`]).
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ImportQuery>,
    req: Request,
) -> Result<Json<ImportReport>, ApiError> {
    caller.require_admin()?;
    if !has_media_type(req.headers(), &TOML_TYPES) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the sources file as application/toml",
        ));
    }
    let bytes = axum::body::Bytes::from_request(req, &state)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("the file is larger than {MAX_IMPORT_BYTES} bytes"),
            )
        })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "invalid", "the file is not UTF-8"))?;
    let report = sources_as_code::import_or_preview(
        &state.store,
        &state.plugins,
        &state.key,
        text,
        &caller.who(),
        References::Restricted,
        query.dry_run,
    )
    .await?;
    if !query.dry_run {
        // The shared health's headroom too (the import forgot this process's own).
        for id in &report.other_account {
            state.metrics.forget_headroom(id);
        }
    }
    Ok(Json(report))
}
