//! Webhooks: the receiver `POST /hooks/{source}/{token}` (outside `/api/v1`: trackers call it,
//! with no token of ours), and the admin's set-up of a source's webhooks,
//! `GET`/`PUT /sources/{id}/webhook`. The rules are in `crate::webhooks`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::ApiError;
use super::extract::{Body, Caller, Path};
use crate::app::AppState;
use crate::store::records::{SourceRecord, now};
use crate::store::{Read, SECRETS, SOURCES};
use crate::webhooks::settings::{self, MAX_SECRET_BYTES, WEBHOOK_SECRET};
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
    respond(webhooks::receive(&state, admitted, headers, body))
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
    let mut response = ApiError::new(status, answer.code, answer.message).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, RETRY_AFTER_SECS.into());
    }
    response
}

/// A scheme as the editor shows it.
#[derive(Serialize)]
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
#[derive(Serialize)]
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

/// Body of `PUT /sources/{id}/webhook`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// A scheme id of the plugin's; the first when omitted.
    #[serde(default)]
    pub scheme: Option<String>,
    /// The secret to paste (e.g. the one Linear generated); omitted keeps the stored one.
    #[serde(default)]
    pub secret: Option<String>,
    /// Generate a new secret (shown once in the answer) instead.
    #[serde(default)]
    pub generate_secret: bool,
}

/// `GET /sources/{id}/webhook` (admin).
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    caller.require_admin()?;
    let (record, secrets) = crate::api::sources::load_with_secrets(&state, &id).await?;
    Ok(Json(view(&state, &id, &record, &secrets, None)))
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
    let (record, mut secrets) = crate::api::sources::load_with_secrets(&state, &id).await?;
    let plugin = state.plugins.get(&record.provider).map_err(|_| {
        ApiError::conflict(
            None,
            format!("the {} plugin is not loaded", record.provider),
        )
    })?;
    if let Some(why) = plugin.unsupported(crate::plugin::Capability::ProcessWebhooks) {
        return Err(ApiError::conflict(
            None,
            format!("Process webhooks is {why}"),
        ));
    }
    let schemes = &plugin.info.events;
    let scheme = match input.scheme.as_deref() {
        None => &schemes[0],
        Some(wanted) => schemes.iter().find(|s| s.id == wanted).ok_or_else(|| {
            let known: Vec<&str> = schemes.iter().map(|s| s.id.as_str()).collect();
            ApiError::invalid(
                "scheme",
                format!(
                    "{} has no webhook scheme {wanted:?}; use one of {known:?}",
                    plugin.info.name
                ),
            )
        })?,
    };
    let (generated, secret_change) = match (
        input.secret.as_deref().map(str::trim),
        input.generate_secret,
    ) {
        (Some(_), true) => {
            return Err(ApiError::invalid(
                "generate_secret",
                "either paste a secret or generate one, not both",
            ));
        }
        (None, true) => (Some(settings::generate_secret(scheme)), "generated"),
        (Some(pasted), false) => (None, check_secret(pasted)?),
        (None, false) if secrets.contains_key(WEBHOOK_SECRET) => (None, "kept"),
        (None, false) => {
            return Err(ApiError::invalid(
                "secret",
                "paste the secret the tracker shows, or generate one",
            ));
        }
    };
    if let Some(new) = generated
        .clone()
        .or_else(|| input.secret.as_deref().map(|s| s.trim().to_string()))
    {
        secrets.insert(WEBHOOK_SECRET.to_string(), new);
    }
    let mut updated = record.clone();
    updated.webhook = Some(settings::with_scheme(record.webhook.as_ref(), &scheme.id));
    updated.updated_at = now();
    let sealed = state.key.seal(&id, &secrets);
    let (key, value, who, scheme_id) =
        (id.clone(), updated.clone(), caller.who(), scheme.id.clone());
    state
        .store
        .write(move |w| {
            let stored: SourceRecord = w
                .get(SOURCES, &key)?
                .ok_or_else(|| ApiError::not_found(format!("no source {key:?}")))?;
            if stored.updated_at != record.updated_at {
                return Err(ApiError::conflict(
                    None,
                    "the source changed meanwhile; reload and try again",
                ));
            }
            w.put(SOURCES, &key, &value)?;
            w.put(SECRETS, &key, &sealed)?;
            crate::api::sources::audit(
                w,
                &who,
                "source.webhook-set-up",
                &key,
                json!({"scheme": scheme_id, "secret": secret_change}),
            )
        })
        .await?;
    Ok(Json(view(&state, &id, &updated, &secrets, generated)))
}

/// A pasted secret: not empty, at most [`MAX_SECRET_BYTES`], no control characters.
fn check_secret(secret: &str) -> Result<&'static str, ApiError> {
    if secret.is_empty() {
        return Err(ApiError::invalid(
            "secret",
            "the secret is empty: paste it, or generate one",
        ));
    }
    if secret.len() > MAX_SECRET_BYTES {
        return Err(ApiError::invalid(
            "secret",
            format!("at most {MAX_SECRET_BYTES} bytes"),
        ));
    }
    if secret.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "secret",
            "the secret holds a control character (a line break?): paste it on one line",
        ));
    }
    Ok("replaced")
}

fn view(
    state: &AppState,
    id: &str,
    record: &SourceRecord,
    secrets: &BTreeMap<String, String>,
    secret: Option<String>,
) -> WebhookView {
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
        secret_set: secrets.contains_key(WEBHOOK_SECRET),
        capability_on: record.capabilities.process_webhooks,
        max_body_bytes: MAX_BODY_BYTES,
        health: state.webhooks.health(id),
        secret,
    }
}
