//! Webhooks: the receiver `POST /hooks/{source}/{token}` (outside `/api/v1`: trackers call it,
//! with no token of ours), and the admin's set-up of a source's webhooks,
//! `GET`/`PUT /sources/{id}/webhook`. The rules are in `crate::webhooks`.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::{Body, Caller, Path};
use crate::app::AppState;
use crate::webhooks::settings::{self, SetUp, WebhookInput};
use crate::webhooks::{self, Answer, MAX_BODY_BYTES, RETRY_AFTER_SECS, WebhookHealth};

/// `POST /hooks/{source}/{token}`: one event from the tracker. See `crate::webhooks` for the
/// answers.
pub async fn receive(
    State(state): State<AppState>,
    Path((source_id, token)): Path<(String, String)>,
    request: Request,
) -> Response {
    let admitted = match webhooks::admit(&state, &source_id, &token).await {
        Ok(admitted) => admitted,
        Err(answer) => return respond(answer),
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return respond(webhooks::too_large(&state, &source_id));
    }
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = match axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES).await {
        Ok(body) => body.to_vec(),
        Err(_) => return respond(webhooks::too_large(&state, &source_id)),
    };
    respond(webhooks::receive(&state, admitted, headers, body).await)
}

/// The receiver's answer: `{"status", "message"}` for a 2xx, the API's error shape otherwise,
/// with `Retry-After` on a 503.
fn respond(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    if answer.is_success() {
        return (
            status,
            Json(json!({"status": answer.code, "message": answer.message})),
        )
            .into_response();
    }
    let error = ApiError::new(status, answer.code, answer.message);
    match status {
        StatusCode::SERVICE_UNAVAILABLE => error.retry_after(RETRY_AFTER_SECS).into_response(),
        _ => error.into_response(),
    }
}

/// A scheme as the editor shows it.
#[derive(Serialize, JsonSchema)]
pub struct SchemeView {
    /// Id.
    pub id: String,
    /// Label.
    pub label: String,
    /// Set-up steps; `{webhookUrl}` stands for the source's webhook URL.
    pub setup: String,
}

/// A source's webhook set-up as admins see it. The secret never appears, except once in the
/// answer that generated it.
#[derive(Serialize, JsonSchema)]
pub struct WebhookView {
    /// Source id.
    pub source_id: String,
    /// Why the plugin cannot receive webhooks, when it cannot.
    pub unsupported: Option<String>,
    /// The plugin's schemes, the default first.
    pub schemes: Vec<SchemeView>,
    /// The chosen scheme, once set up.
    pub scheme: Option<String>,
    /// The webhook URL's path (append it to this service's public address), once set up.
    pub path: Option<String>,
    /// Whether a webhook secret is set.
    pub secret_set: bool,
    /// Whether the source has "Process webhooks" on (events are ignored while it is off).
    pub capability_on: bool,
    /// The largest body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Events received, refused by reason, processed.
    pub health: WebhookHealth,
    /// The generated secret, in the answer that generated it only: shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `GET /sources/{id}/webhook` (admin).
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    caller.require_admin()?;
    let set_up = settings::load(&state, &id).await?;
    Ok(Json(view(&state, &id, set_up)))
}

/// `PUT /sources/{id}/webhook` (admin): chooses the scheme and sets (pastes or generates) the
/// secret; the URL's token is made the first time and kept after.
pub async fn set_up(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(input): Body<WebhookInput>,
) -> Result<Json<WebhookView>, ApiError> {
    caller.require_admin()?;
    let set_up = settings::set_up(&state, &caller.who(), &id, &input).await?;
    Ok(Json(view(&state, &id, set_up)))
}

fn view(state: &AppState, id: &str, set_up: SetUp) -> WebhookView {
    let record = &set_up.record;
    let plugin = state.plugins.get(&record.provider).ok();
    let unsupported = match &plugin {
        None => Some(format!(
            "unavailable: the {} plugin is not loaded",
            record.provider
        )),
        Some(p) => p.unsupported(crate::plugin::Capability::ProcessWebhooks),
    };
    let schemes = plugin
        .iter()
        .flat_map(|p| p.info.events.iter())
        .map(|s| SchemeView {
            id: s.id.clone(),
            label: s.label.clone(),
            setup: s.setup.clone(),
        })
        .collect();
    WebhookView {
        source_id: id.to_string(),
        unsupported,
        schemes,
        scheme: record.webhook.as_ref().map(|w| w.scheme.clone()),
        path: record.webhook.as_ref().map(|w| settings::path(id, w)),
        secret_set: set_up.secret_set,
        capability_on: record.capabilities.process_webhooks,
        max_body_bytes: MAX_BODY_BYTES,
        health: state.webhooks.health(id),
        secret: set_up.generated,
    }
}
