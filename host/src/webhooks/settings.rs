//! A source's webhook set-up: the chosen scheme and URL token (in the source record), and the
//! webhook secret, sealed with the source's credentials under a reserved name that no plugin
//! call ever gets. The admin's set-up (`GET`/`PUT /sources/{id}/webhook`) reads and changes
//! them here ([`load`], [`set_up`]), in one write transaction with its audit event.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::WebhookError;
use crate::app::AppState;
use crate::audit::audit;
use crate::field::FieldError;
use crate::plugin::Capability;
use crate::plugin::model::{Authenticity, EventScheme, SignedContent};
use crate::sources::{self, SourceError};
use crate::store::records::{SourceRecord, WebhookSettings};
use crate::store::{Read, SECRETS, SOURCES};

/// The reserved name of the webhook secret among a source's sealed secrets.
pub const WEBHOOK_SECRET: &str = "webhook_secret";

/// The longest webhook secret accepted, in bytes.
pub const MAX_SECRET_BYTES: usize = 1024;

/// The source's secrets without the webhook secret: what plugin calls get (it never enters a
/// plugin or egress).
pub fn without_webhook_secret(mut secrets: BTreeMap<String, String>) -> BTreeMap<String, String> {
    secrets.remove(WEBHOOK_SECRET);
    secrets
}

/// Carries the webhook set-up and secret of `current` over to an edit of it (the source form
/// does not hold them), unless the edit switches provider, whose schemes differ.
pub fn keep(
    current: &SourceRecord,
    stored: &BTreeMap<String, String>,
    record: &mut SourceRecord,
    secrets: &mut BTreeMap<String, String>,
) {
    if current.provider != record.provider {
        return;
    }
    record.webhook = current.webhook.clone();
    if let Some(secret) = stored.get(WEBHOOK_SECRET) {
        secrets.insert(WEBHOOK_SECRET.to_string(), secret.clone());
    }
}

/// A new webhook set-up with scheme `scheme`, keeping the URL token of `current` if any.
pub fn with_scheme(current: Option<&WebhookSettings>, scheme: &str) -> WebhookSettings {
    WebhookSettings {
        scheme: scheme.to_string(),
        path_token: current.map_or_else(random_token, |c| c.path_token.clone()),
    }
}

/// 128 random bits, hex: the URL's unguessable segment.
fn random_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A new random secret for `scheme`: 32 bytes, as a Standard Webhooks `whsec_` secret when
/// the scheme signs that way, else as 64 hex digits.
pub fn generate_secret(scheme: &EventScheme) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    match &scheme.authenticity {
        Authenticity::HmacSha256(h) if matches!(h.content, SignedContent::IdTimestampBody(_)) => {
            format!("whsec_{}", BASE64.encode(bytes))
        }
        _ => hex::encode(bytes),
    }
}

/// The path of a source's webhook URL.
pub fn path(source_id: &str, settings: &WebhookSettings) -> String {
    format!("/hooks/{source_id}/{}", settings.path_token)
}

/// What an admin asks of a source's webhooks (body of `PUT /sources/{id}/webhook`).
#[derive(Deserialize, JsonSchema)]
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

/// A source's webhook set-up as stored: the source, whether a webhook secret is set, and a
/// secret just generated (to be shown once, never again).
pub struct SetUp {
    /// The source as stored.
    pub record: SourceRecord,
    /// Whether a webhook secret is set.
    pub secret_set: bool,
    /// The secret [`set_up`] generated, if it did.
    pub generated: Option<String>,
}

/// The webhook set-up of source `id`.
pub async fn load(state: &AppState, id: &str) -> Result<SetUp, SourceError> {
    let (record, secrets) = sources::load_with_secrets(state, id).await?;
    Ok(SetUp {
        record,
        secret_set: secrets.contains_key(WEBHOOK_SECRET),
        generated: None,
    })
}

/// Sets up the webhooks of source `id` for `who`: chooses the scheme and sets (pastes or
/// generates) the secret; the URL's token is made the first time and kept after.
pub async fn set_up(
    state: &AppState,
    who: &str,
    id: &str,
    input: &WebhookInput,
) -> Result<SetUp, WebhookError> {
    let (record, mut secrets) = sources::load_with_secrets(state, id).await?;
    let plugin = (state.plugins.get(&record.provider))
        .map_err(|_| WebhookError::PluginMissing(record.provider.clone()))?;
    if let Some(why) = plugin.unsupported(Capability::ProcessWebhooks) {
        return Err(WebhookError::Unsupported(why));
    }
    let schemes = &plugin.info.events;
    let scheme = match input.scheme.as_deref() {
        None => &schemes[0],
        Some(wanted) => schemes.iter().find(|s| s.id == wanted).ok_or_else(|| {
            let known: Vec<&str> = schemes.iter().map(|s| s.id.as_str()).collect();
            FieldError::new(
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
            return Err(FieldError::new(
                "generate_secret",
                "either paste a secret or generate one, not both",
            )
            .into());
        }
        (None, true) => (Some(generate_secret(scheme)), "generated"),
        (Some(pasted), false) => (None, check_secret(pasted)?),
        (None, false) if secrets.contains_key(WEBHOOK_SECRET) => (None, "kept"),
        (None, false) => {
            return Err(FieldError::new(
                "secret",
                "paste the secret the tracker shows, or generate one",
            )
            .into());
        }
    };
    if let Some(new) = generated
        .clone()
        .or_else(|| input.secret.as_deref().map(|s| s.trim().to_string()))
    {
        secrets.insert(WEBHOOK_SECRET.to_string(), new);
    }
    let mut updated = record.clone();
    updated.webhook = Some(with_scheme(record.webhook.as_ref(), &scheme.id));
    updated.updated_at = sources::next_version(record.updated_at);
    let sealed = state.key.seal(id, &secrets);
    let (key, value, who, scheme_id) = (
        id.to_string(),
        updated.clone(),
        who.to_string(),
        scheme.id.clone(),
    );
    state
        .store
        .write(move |w| {
            let stored: SourceRecord = w
                .get(SOURCES, &key)?
                .ok_or_else(|| SourceError::NotFound(key.clone()))?;
            if stored.updated_at != record.updated_at {
                return Err(WebhookError::ChangedMeanwhile);
            }
            w.put(SOURCES, &key, &value)?;
            w.put(SECRETS, &key, &sealed)?;
            audit(
                w,
                &who,
                "source.webhook-set-up",
                &key,
                json!({"scheme": scheme_id, "secret": secret_change}),
            )?;
            Ok(())
        })
        .await?;
    Ok(SetUp {
        record: updated,
        secret_set: true,
        generated,
    })
}

/// A pasted secret: not empty, at most [`MAX_SECRET_BYTES`], no control characters. Says how
/// the audit log names the change.
fn check_secret(secret: &str) -> Result<&'static str, FieldError> {
    if secret.is_empty() {
        return Err(FieldError::new(
            "secret",
            "the secret is empty: paste it, or generate one",
        ));
    }
    if secret.len() > MAX_SECRET_BYTES {
        return Err(FieldError::new(
            "secret",
            format!("at most {MAX_SECRET_BYTES} bytes"),
        ));
    }
    if secret.chars().any(char::is_control) {
        return Err(FieldError::new(
            "secret",
            "the secret holds a control character (a line break?): paste it on one line",
        ));
    }
    Ok("replaced")
}
