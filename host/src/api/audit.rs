//! `GET /api/v1/audit` (admin): pages through the audit log, newest first.
//!
//! The log is written, in the transaction of each change, by `crate::audit::audit`: sources
//! (created, edited with the names of the changed fields, enabled, disabled, tested, deleted,
//! webhooks set up), tokens (created, revoked), projects (created, renamed, deleted), and
//! comments posted on links (once the tracker took them, with a short excerpt only). An event
//! never holds a secret value: a replaced credential shows as `auth.fields.<name>: replaced`,
//! a webhook secret as `generated`, `replaced` or `kept`.
//!
//! Query: `source` (only events whose target is that id), `before` (only events with a
//! sequence number below it: pass the previous page's `next_before`) and `limit` (1 to
//! [`MAX_LIMIT`], default [`DEFAULT_LIMIT`]). `next_before` is null on the last page.

use axum::Json;
use axum::extract::{RawQuery, State};
use schemars::JsonSchema;
use serde::Serialize;

use super::error::ApiError;
use super::extract::Caller;
use crate::app::AppState;
use crate::store::Read;

/// Events per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 50;

/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 500;

/// Events read from the store per step while filtering.
const SCAN_STEP: usize = 500;

/// One audit event.
#[derive(Serialize, JsonSchema)]
pub struct AuditEvent {
    /// Sequence number (increasing).
    pub seq: u64,
    /// When, in milliseconds since the epoch.
    pub at: serde_json::Value,
    /// Who did it (token name and id).
    pub who: serde_json::Value,
    /// What, e.g. `source.edited`.
    pub action: serde_json::Value,
    /// The id of the thing changed.
    pub target: serde_json::Value,
    /// Action-specific details (never a secret).
    pub details: serde_json::Value,
}

/// A page of events.
#[derive(Serialize, JsonSchema)]
pub struct AuditPage {
    /// Newest first.
    pub events: Vec<AuditEvent>,
    /// Pass as `before` for the next page; null when there is none.
    pub next_before: Option<u64>,
}

/// The query of `GET /audit`, for the OpenAPI document (read by hand by `parse_query`, which
/// names an unknown parameter).
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct AuditParams {
    /// Only events whose target is this id (a source, project, token or plugin).
    source: Option<String>,
    /// Only events with a sequence number below this one: the previous page's `next_before`.
    before: Option<u64>,
    /// Events per page.
    #[schemars(range(min = 1, max = MAX_LIMIT))]
    limit: Option<usize>,
}

struct AuditQuery {
    source: Option<String>,
    before: u64,
    limit: usize,
}

fn parse_query(raw: Option<&str>) -> Result<AuditQuery, ApiError> {
    let mut query = AuditQuery {
        source: None,
        before: u64::MAX,
        limit: DEFAULT_LIMIT,
    };
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "source" => query.source = Some(value.into_owned()),
            "before" => {
                query.before = value
                    .parse()
                    .map_err(|_| ApiError::invalid("before", "a sequence number (next_before)"))?;
            }
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid("limit", format!("a number from 1 to {MAX_LIMIT}"))
                    })?;
            }
            other => {
                return Err(ApiError::invalid(
                    other,
                    "unknown parameter; use source, before and limit",
                ));
            }
        }
    }
    Ok(query)
}

/// `GET /audit?source=&before=&limit=` (admin).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require_admin()?;
    let query = parse_query(raw.as_deref())?;
    let page = state
        .store
        .read(move |r| {
            // One snapshot: read newest first in steps, keep the matching events, stop one
            // past the page to know whether another page exists.
            let mut events = Vec::new();
            let mut before = query.before;
            loop {
                let step = r.audit_page(before, SCAN_STEP)?;
                let exhausted = step.len() < SCAN_STEP;
                for (seq, event) in step {
                    before = seq;
                    let matches = query
                        .source
                        .as_ref()
                        .is_none_or(|s| event["target"].as_str() == Some(s.as_str()));
                    if matches {
                        events.push(to_event(seq, event));
                        if events.len() > query.limit {
                            break;
                        }
                    }
                }
                if exhausted || events.len() > query.limit {
                    break;
                }
            }
            let next_before = if events.len() > query.limit {
                events.truncate(query.limit);
                events.last().map(|e| e.seq)
            } else {
                None
            };
            Ok::<_, ApiError>(AuditPage {
                events,
                next_before,
            })
        })
        .await?;
    Ok(Json(page))
}

fn to_event(seq: u64, mut event: serde_json::Value) -> AuditEvent {
    let mut take = |name: &str| event.get_mut(name).map(serde_json::Value::take);
    AuditEvent {
        seq,
        at: take("at").unwrap_or_default(),
        who: take("who").unwrap_or_default(),
        action: take("action").unwrap_or_default(),
        target: take("target").unwrap_or_default(),
        details: take("details").unwrap_or_else(|| serde_json::json!({})),
    }
}
