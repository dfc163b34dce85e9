//! GitLab webhooks ("Process webhooks"), from `../shared/providers-events.md` section 5.B: a
//! secret token sent as it is in `X-Gitlab-Token`, or (newer GitLab) a signing token per the
//! Standard Webhooks specification (`webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{webhook-id}.{webhook-timestamp}.{body}">`); `Idempotency-Key` (= `webhook-id`) is the same on
//! every retry. An `Issue Hook` carries the issue's state, title and assignees after the change,
//! with `object_attributes.updated_at` as its version.

use serde_json::{Value, json};
use testorchestrator_provider_sdk::*;

use super::{Project, to_issue};

const SETUP_HEAD: &str = "In the project on GitLab (Maintainer role): Settings → Webhooks → Add new webhook \
    (a group's Settings → Webhooks covers all its projects).\n\
    URL: {webhookUrl}\n";

const SETUP_TAIL: &str = "Trigger: tick Issues events (and Confidential issues events if you link those).\n\
    Keep SSL verification on, press Add webhook, then Test → Issues events: the answer is 200.";

/// The secret token (every GitLab) and the signing token (GitLab with webhook signing).
pub fn schemes() -> Vec<EventScheme> {
    vec![
        EventScheme {
            id: "token".into(),
            label: "Secret token (X-Gitlab-Token)".into(),
            authenticity: Authenticity::TokenHeader("X-Gitlab-Token".into()),
            replay: None,
            delivery_id: Some(Locator::Header("Idempotency-Key".into())),
            setup: format!(
                "{SETUP_HEAD}Secret token: paste this source's webhook secret.\n{SETUP_TAIL}"
            ),
        },
        EventScheme {
            id: "signing".into(),
            label: "Signing token (webhook-signature, Standard Webhooks)".into(),
            authenticity: Authenticity::HmacSha256(HmacScheme {
                header: "webhook-signature".into(),
                prefix: "v1,".into(),
                encoding: DigestEncoding::Base64,
                content: SignedContent::IdTimestampBody(IdTimestampHeaders {
                    id: "webhook-id".into(),
                    timestamp: "webhook-timestamp".into(),
                }),
            }),
            replay: Some(ReplayWindow {
                timestamp: Locator::Header("webhook-timestamp".into()),
                unit: TimeUnit::Seconds,
                tolerance_secs: 300,
            }),
            delivery_id: Some(Locator::Header("webhook-id".into())),
            setup: format!(
                "{SETUP_HEAD}Signing token: paste this source's webhook secret (a whsec_ token).\n{SETUP_TAIL}"
            ),
        },
    ]
}

/// The issue an `Issue Hook` of this source's project concerns; nothing for other events or
/// projects.
pub fn parse(source: &Source, event: &Event) -> Result<Vec<EventChange>, ProviderError> {
    let body: Value = serde_json::from_slice(&event.body)
        .map_err(|e| ProviderError::InvalidInput(format!("the event is not JSON: {e}")))?;
    if !matches!(str_at(&body, "/object_kind"), Some("issue" | "work_item")) {
        return Ok(Vec::new());
    }
    let project = Project::of(source)?;
    let same_project = str_at(&body, "/project/path_with_namespace")
        .is_some_and(|p| p.eq_ignore_ascii_case(&project.path));
    let Some(iid) = body
        .pointer("/object_attributes/iid")
        .and_then(Value::as_u64)
    else {
        return Ok(Vec::new());
    };
    if !same_project {
        return Ok(Vec::new());
    }
    let attributes = &body["object_attributes"];
    // The shape `to_issue` reads from the REST API, from the hook's parts.
    let labels: Vec<&str> = body
        .get("labels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| str_at(l, "/title"))
        .collect();
    // A hook without the title leaves it empty: the host keeps the one the link shows.
    let item = json!({
        "title": attributes.get("title").cloned().unwrap_or(json!("")),
        "state": attributes.get("state"),
        "web_url": attributes.get("url"),
        "assignees": body.get("assignees").cloned().unwrap_or(json!([])),
        "labels": labels,
    });
    let issue = to_issue(source, &item, iid).ok();
    let version = str_at(attributes, "/updated_at").and_then(timestamp_millis);
    Ok(vec![EventChange {
        key: iid.to_string(),
        issue,
        version,
    }])
}
