//! A source's webhook set-up: the chosen scheme and URL token (in the source record), and the
//! webhook secret, sealed with the source's credentials under a reserved name that no plugin
//! call ever gets.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore;

use crate::plugin::model::{Authenticity, EventScheme, SignedContent};
use crate::store::records::{SourceRecord, WebhookSettings};

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
