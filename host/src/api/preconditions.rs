//! Optimistic concurrency on the wire: a source's answers carry `ETag: "<version>"` (strong,
//! quoted; the version is the source's `updated_at`), and edits honour `If-Match` (RFC 9110):
//! an edit of a source at another version is a 412, so two admins cannot overwrite each
//! other's changes unseen.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::header::{ETAG, HeaderName, IF_MATCH};
use axum::http::request::Parts;

use super::error::ApiError;
use crate::app::AppState;
use crate::store::records::Millis;

/// An answer with its `ETag`.
pub type Tagged<T> = ([(HeaderName, String); 1], Json<T>);

/// `body`, tagged with `version`.
pub fn tagged<T>(version: Millis, body: T) -> Tagged<T> {
    ([(ETAG, format!("\"{version}\""))], Json(body))
}

/// `If-Match`: `None` when absent or `*` (any existing source), else the versions its entity
/// tags name. A weak tag (`W/"..."`) or one that is not a version of ours never matches
/// (strong comparison), so it is left out: an edit sending only such tags gets a 412.
pub struct IfMatch(pub Option<Vec<Millis>>);

impl FromRequestParts<AppState> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let mut versions = Vec::new();
        let mut sent = false;
        for value in parts.headers.get_all(IF_MATCH) {
            sent = true;
            let text = value.to_str().map_err(|_| malformed())?;
            for tag in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if tag == "*" {
                    return Ok(IfMatch(None));
                }
                let quoted = tag.strip_prefix("W/").unwrap_or(tag);
                let inner = (quoted.strip_prefix('"'))
                    .and_then(|t| t.strip_suffix('"'))
                    .ok_or_else(malformed)?;
                if !tag.starts_with("W/")
                    && let Ok(version) = inner.parse()
                {
                    versions.push(version);
                }
            }
        }
        Ok(IfMatch(sent.then_some(versions)))
    }
}

/// The `If-Match` request header of a source's edits, as a parameter of the OpenAPI document.
pub fn if_match_parameter() -> Vec<serde_json::Value> {
    vec![serde_json::json!({
        "name": "If-Match",
        "in": "header",
        "required": false,
        "description": "The source's `ETag` (or several, or `*`): the edit applies only to a source still at one of those versions, else 412 `precondition-failed`; a value that is not entity tags is a 400",
        "schema": {"type": "string"},
    })]
}

/// The `ETag` response header of a source's answers, for the OpenAPI document.
pub fn etag_header() -> serde_json::Value {
    serde_json::json!({
        "description": "The source's version as a strong entity tag (`\"<updated_at>\"`), for `If-Match`",
        "schema": {"type": "string"},
    })
}

fn malformed() -> ApiError {
    ApiError::invalid(
        "If-Match",
        "If-Match holds entity tags in double quotes, as ETag gives them (e.g. \"1733550000000\"), or *",
    )
}
