//! Health: `GET /api/v1/sources/{id}/health` (admin), the recent health of one source as the
//! plugin calls made for it saw it, and `/readyz`, the readiness probe of the service.
//!
//! A source's health is kept by [`crate::metrics::Metrics`] and stored by
//! `crate::health_store`, so every replica shows the same: it moves with every connection
//! test and issue fetch.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::{Caller, Path};
use crate::app::AppState;
use crate::metrics::Health;
use crate::store::records::SourceRecord;
use crate::store::{Read, SOURCES};
use crate::webhooks::WebhookHealth;

/// `GET /sources/{id}/health` (admin): last success, last error, error rate over the last
/// calls and the rate limit (headroom left, last wait asked for) of a stored source.
pub async fn source(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_admin()?;
    let key = id.clone();
    let found: Option<SourceRecord> = state.store.read(move |r| r.get(SOURCES, &key)).await?;
    if found.is_none() {
        return Err(ApiError::not_found(format!("no source {id:?}")));
    }
    let health: Health = state.metrics.health(&id, state.plugins.headroom(&id));
    let webhooks = state.webhooks.health(&id);
    let body = SourceHealth {
        health,
        source_id: id,
        webhooks,
    };
    // As a `Value`, the keys come out in alphabetical order: the bytes this answer has
    // always had.
    let body = serde_json::to_value(body).map_err(ApiError::internal)?;
    Ok(Json(body))
}

/// The answer of `GET /sources/{id}/health`.
#[derive(Serialize, JsonSchema)]
pub struct SourceHealth {
    /// How the source's recent calls went.
    #[serde(flatten)]
    pub health: Health,
    /// The source's id.
    pub source_id: String,
    /// Its webhook events: received, accepted, processed, refused by reason.
    pub webhooks: WebhookHealth,
}

/// `GET /readyz`: 200 `{"status":"ready","plugins":N}` once at least one plugin is loaded
/// and the database opens a read transaction and has shown no damaged record since the start;
/// 503 `{"status":"not-ready","reason":...}` otherwise. (`/healthz` only says the process
/// answers.)
pub async fn ready(State(state): State<AppState>) -> Response {
    let plugins = state.plugins.list().len();
    let store = state
        .store
        .read(|r| r.get::<serde_json::Value>(SOURCES, "").map(|_| ()))
        .await;
    let damaged = state.store.damage().is_some();
    let reason = match (&store, plugins) {
        _ if damaged => Some("the database holds a damaged record: restart to check the file"),
        (Err(e), _) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            Some("the database does not answer")
        }
        (Ok(()), 0) => Some("no provider plugin is loaded"),
        (Ok(()), _) => None,
    };
    match reason {
        None => (
            StatusCode::OK,
            Json(json!({"status": "ready", "plugins": plugins, "database": state.store.engine()})),
        )
            .into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "not-ready", "plugins": plugins, "database": state.store.engine(), "reason": reason}),
            ),
        )
            .into_response(),
    }
}
