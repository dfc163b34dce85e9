//! Jira Cloud admin webhooks ("Process webhooks"), from `../shared/providers-events.md`
//! section 1.B: a webhook with a secret signs the raw body as
//! `X-Hub-Signature: sha256=<hex HMAC-SHA256>`; `X-Atlassian-Webhook-Identifier` is the same on
//! every retry; retries come up to 30 minutes late, so no replay window is declared (the body's
//! `timestamp` is signed, but a retry may keep it). `jira:issue_*` events carry the issue
//! after the change, with `fields.updated` as its version (the body's `timestamp` when absent).

use testorchestrator_provider_sdk::serde_json::Value;
use testorchestrator_provider_sdk::*;

use super::issue_from_json;

/// The one scheme for an email + API-token integration: an admin webhook with a secret.
pub fn schemes() -> Vec<EventScheme> {
    vec![EventScheme {
        id: "hmac".into(),
        label: "Admin webhook with a secret (X-Hub-Signature)".into(),
        authenticity: Authenticity::HmacSha256(HmacScheme {
            header: "X-Hub-Signature".into(),
            prefix: "sha256=".into(),
            encoding: DigestEncoding::Hex,
            content: SignedContent::Body,
        }),
        replay: None,
        delivery_id: Some(Locator::Header("X-Atlassian-Webhook-Identifier".into())),
        setup: "In Jira, as a Jira administrator: Settings (cog) → System → WebHooks → Create a WebHook.\n\
                URL: {webhookUrl}\n\
                Secret: paste this source's webhook secret.\n\
                Events: under Issue, tick created, updated and deleted.\n\
                Optionally narrow it with JQL, e.g. project = PROJ.\n\
                Save: Jira signs every event with the secret."
            .into(),
    }]
}

/// The issue a `jira:issue_created`, `jira:issue_updated` or `jira:issue_deleted` event
/// concerns; nothing for other events.
pub fn parse(source: &Source, event: &Event) -> Result<Vec<EventChange>, ProviderError> {
    let body: Value = serde_json::from_slice(&event.body)
        .map_err(|e| ProviderError::InvalidInput(format!("the event is not JSON: {e}")))?;
    let kind = str_at(&body, "/webhookEvent").unwrap_or_default();
    if !matches!(
        kind,
        "jira:issue_created" | "jira:issue_updated" | "jira:issue_deleted"
    ) {
        return Ok(Vec::new());
    }
    let Some(key) = str_at(&body, "/issue/key").map(str::to_ascii_uppercase) else {
        return Ok(Vec::new());
    };
    if kind == "jira:issue_deleted" {
        // Read again: the read records the issue as not found.
        return Ok(vec![EventChange {
            key,
            issue: None,
            version: None,
        }]);
    }
    let raw = &body["issue"];
    // A payload without the summary leaves the title empty: the host keeps the one the link
    // shows.
    let issue = issue_from_json(source, raw, &key).ok();
    // The issue's updated time; else the event's own time (`timestamp`, already Unix ms).
    let version = str_at(raw, "/fields/updated")
        .and_then(timestamp_millis)
        .or_else(|| body.get("timestamp").and_then(Value::as_u64));
    Ok(vec![EventChange {
        key,
        issue,
        version,
    }])
}
