//! Linear webhooks ("Process webhooks"), from `../shared/providers-events.md` section 4.B:
//! `Linear-Signature` is the hex HMAC-SHA256 of the raw body, without prefix; the body's
//! `webhookTimestamp` (milliseconds, signed) must be within 60 seconds, as Linear's SDK checks;
//! `Linear-Delivery` names the delivery. An `Issue` event carries the issue after the change,
//! with `data.updatedAt` as its version.

use testorchestrator_provider_sdk::serde_json::Value;
use testorchestrator_provider_sdk::*;

use super::{base_workspace, to_issue, url_host};

/// The one scheme: a workspace webhook, whose signing secret Linear generates.
pub fn schemes() -> Vec<EventScheme> {
    vec![EventScheme {
        id: "hmac".into(),
        label: "Signing secret (Linear-Signature)".into(),
        authenticity: Authenticity::HmacSha256(HmacScheme {
            header: "Linear-Signature".into(),
            prefix: String::new(),
            encoding: DigestEncoding::Hex,
            content: SignedContent::Body,
        }),
        replay: Some(ReplayWindow {
            timestamp: Locator::BodyPointer("/webhookTimestamp".into()),
            unit: TimeUnit::Milliseconds,
            tolerance_secs: 60,
        }),
        delivery_id: Some(Locator::Header("Linear-Delivery".into())),
        setup: "In Linear, as a workspace admin: Settings → API → Webhooks → New webhook.\n\
                URL: {webhookUrl}\n\
                Data change events: tick Issues; choose all public teams or the team you link.\n\
                Create it, then copy the signing secret Linear shows and paste it here as this \
                source's webhook secret."
            .into(),
    }]
}

/// The issue an `Issue` event concerns, under its identifier and its previous ones (a link
/// made before the issue moved team keeps its old key); nothing for other events or another
/// workspace.
pub fn parse(source: &Source, event: &Event) -> Result<Vec<EventChange>, ProviderError> {
    let body: Value = serde_json::from_slice(&event.body)
        .map_err(|e| ProviderError::InvalidInput(format!("the event is not JSON: {e}")))?;
    if str_at(&body, "/type") != Some("Issue") {
        return Ok(Vec::new());
    }
    if let (Some(ours), Some(url)) = (base_workspace(source), str_at(&body, "/url"))
        && url_host(url).as_deref() == url_host(&source.base_url).as_deref()
        && url_path_segments(url)
            .and_then(|s| s.into_iter().next())
            .is_some_and(|theirs| !theirs.eq_ignore_ascii_case(&ours))
    {
        return Ok(Vec::new());
    }
    let data = &body["data"];
    let Some(identifier) = str_at(data, "/identifier") else {
        return Ok(Vec::new());
    };
    let mut keys = vec![identifier.to_ascii_uppercase()];
    for old in data
        .get("previousIdentifiers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        keys.push(old.to_ascii_uppercase());
    }
    let removed = str_at(&body, "/action") == Some("remove");
    // A payload without the title leaves it empty: the host keeps the one the link shows.
    let mut data = data.clone();
    if let Some(fields) = data.as_object_mut() {
        fields.entry("title").or_insert(Value::from(""));
    }
    let version = str_at(&data, "/updatedAt").and_then(timestamp_millis);
    Ok(keys
        .into_iter()
        .map(|key| EventChange {
            issue: if removed {
                None
            } else {
                to_issue(source, &key, &data).ok()
            },
            version: version.filter(|_| !removed),
            key,
        })
        .collect())
}
