//! GitHub webhooks ("Process webhooks"), from `../shared/providers-events.md` section 2.B:
//! `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`, nothing time-bound
//! signed, `X-GitHub-Delivery` the same on every redelivery; the `issues` event carries the
//! whole issue after the change, with `updated_at` as its version.

use testorchestrator_provider_sdk::serde_json::Value;
use testorchestrator_provider_sdk::*;

use super::{Repo, issue_from_rest};

/// The one scheme: a repository (or organisation) webhook with a secret.
pub fn schemes() -> Vec<EventScheme> {
    vec![EventScheme {
        id: "hmac".into(),
        label: "Webhook secret (X-Hub-Signature-256)".into(),
        authenticity: Authenticity::HmacSha256(HmacScheme {
            header: "X-Hub-Signature-256".into(),
            prefix: "sha256=".into(),
            encoding: DigestEncoding::Hex,
            content: SignedContent::Body,
        }),
        replay: None,
        delivery_id: Some(Locator::Header("X-GitHub-Delivery".into())),
        setup: "In the repository on GitHub, open Settings → Webhooks → Add webhook \
                (an organisation's Settings → Webhooks covers all its repositories).\n\
                Payload URL: {webhookUrl}\n\
                Content type: application/json.\n\
                Secret: paste this source's webhook secret.\n\
                Which events: \"Let me select individual events\", then tick Issues only.\n\
                Keep Active ticked and press Add webhook; GitHub sends a ping, which is accepted."
            .into(),
    }]
}

/// The issue an `issues` event concerns, with its state; nothing for other events (`ping`
/// included), other repositories or pull requests' own events.
pub fn parse(source: &Source, event: &Event) -> Result<Vec<EventChange>, ProviderError> {
    let kind = event
        .headers
        .iter()
        .find(|(name, _)| name == "x-github-event")
        .map(|(_, value)| value.as_str());
    if kind != Some("issues") {
        return Ok(Vec::new());
    }
    let body: Value = serde_json::from_slice(&event.body)
        .map_err(|e| ProviderError::InvalidInput(format!("the event is not JSON: {e}")))?;
    let repo = Repo::of(source)?;
    let same_repo = str_at(&body, "/repository/full_name")
        .is_some_and(|name| name.eq_ignore_ascii_case(&repo.full_name()));
    let Some(number) = body.pointer("/issue/number").and_then(Value::as_u64) else {
        return Ok(Vec::new());
    };
    if !same_repo {
        return Ok(Vec::new());
    }
    let key = number.to_string();
    let issue_json = &body["issue"];
    // A deleted or transferred issue is read again: the read says where it is now.
    let gone = matches!(str_at(&body, "/action"), Some("deleted" | "transferred"));
    let issue = if gone {
        None
    } else {
        issue_from_rest(source, issue_json, &key).ok()
    };
    let version = str_at(issue_json, "/updated_at").and_then(timestamp_millis);
    Ok(vec![EventChange {
        key,
        issue,
        version: version.filter(|_| !gone),
    }])
}
