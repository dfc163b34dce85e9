//! Custom Tracker webhooks ("Process webhooks"): a generic HMAC-SHA256 over the raw body, in
//! the header and with the prefix the source's settings name (the host fills in
//! `{setting:NAME}`), written in hex or base64 (one scheme each), and a JSON pointer to the
//! issue key. The issue is then read again through the source's issue API, if it has one.

use testorchestrator_provider_sdk::*;

use super::Plugin;

/// The settings the schemes and `parse` read.
pub const HEADER_SETTING: &str = "webhook-signature-header";
/// See [`HEADER_SETTING`].
pub const PREFIX_SETTING: &str = "webhook-signature-prefix";
/// See [`HEADER_SETTING`].
pub const KEY_POINTER_SETTING: &str = "webhook-key-pointer";

/// The settings of the webhook schemes, for `describe`.
pub fn settings() -> Vec<Setting> {
    let text = |name: &str, label: &str, help: &str| Setting {
        name: name.into(),
        label: label.into(),
        help: help.into(),
        kind: SettingKind::Text,
        required: false,
    };
    vec![
        text(
            HEADER_SETTING,
            "Webhook signature header",
            "For \"Process webhooks\": the request header carrying the HMAC-SHA256 of the raw \
             body, keyed with the webhook secret, e.g. X-Signature-256.",
        ),
        text(
            PREFIX_SETTING,
            "Webhook signature prefix",
            "Text before the digest in that header, e.g. sha256= (empty for none).",
        ),
        text(
            KEY_POINTER_SETTING,
            "Webhook key pointer",
            "JSON pointer to the issue key in the webhook's body, e.g. /issue/key.",
        ),
    ]
}

/// HMAC in hex and in base64, in the header and with the prefix of the source's settings.
pub fn schemes() -> Vec<EventScheme> {
    let scheme = |id: &str, label: &str, encoding| EventScheme {
        id: id.into(),
        label: label.into(),
        authenticity: Authenticity::HmacSha256(HmacScheme {
            header: format!("{{setting:{HEADER_SETTING}}}"),
            prefix: format!("{{setting:{PREFIX_SETTING}}}"),
            encoding,
            content: SignedContent::Body,
        }),
        replay: None,
        delivery_id: None,
        setup:
            "Set the Webhook signature header, prefix and key pointer settings of this source.\n\
                In your tracker, send issue changes as JSON to {webhookUrl}\n\
                signed with HMAC-SHA256 of the raw body keyed with this source's webhook secret.\n\
                The issue named by the key pointer is then read again through the Issue API URL."
                .into(),
    };
    vec![
        scheme("hmac-hex", "HMAC-SHA256, hex digest", DigestEncoding::Hex),
        scheme(
            "hmac-base64",
            "HMAC-SHA256, base64 digest",
            DigestEncoding::Base64,
        ),
    ]
}

/// The key at the source's key pointer, to be read again; unsupported without the setting.
pub fn parse(source: &Source, event: &Event) -> Result<Vec<EventChange>, ProviderError> {
    let Some(pointer) = setting(source, KEY_POINTER_SETTING).filter(|p| !p.is_empty()) else {
        return Err(ProviderError::Unsupported(format!(
            "set this source's \"Webhook key pointer\" setting ({KEY_POINTER_SETTING}) to the \
             JSON pointer of the issue key in the webhook's body"
        )));
    };
    let body: serde_json::Value = serde_json::from_slice(&event.body)
        .map_err(|e| ProviderError::InvalidInput(format!("the event is not JSON: {e}")))?;
    let raw = match body.pointer(pointer) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return Ok(Vec::new()),
    };
    let key = Plugin::normalize_key(source, &raw)?;
    Ok(vec![EventChange {
        key,
        issue: None,
        version: None,
    }])
}
