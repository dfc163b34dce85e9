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
//! sequence number below it: pass the previous page's `next_before`), or `cursor` (the same as
//! the previous page's opaque `next_cursor`, as every list takes it, see [`crate::paging`]),
//! and `limit` (1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`]). `next_before` and
//! `next_cursor` are null on the last page.

use axum::Json;
use axum::extract::{RawQuery, State};
use schemars::JsonSchema;
use serde::Serialize;

use super::error::ApiError;
use super::extract::Caller;
use crate::app::AppState;
use crate::paging::Cursor;
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
    /// The same, opaque, as every list's cursor: pass as `cursor`; null when there is none.
    pub next_cursor: Option<String>,
}

struct AuditQuery {
    source: Option<String>,
    before: u64,
    after: Option<Cursor>,
    limit: usize,
}

/// The sequence number an audit cursor holds.
fn cursor_seq(cursor: &Cursor) -> Option<u64> {
    match cursor.0.as_slice() {
        [seq] => seq.parse().ok(),
        _ => None,
    }
}

fn parse_query(raw: Option<&str>) -> Result<AuditQuery, ApiError> {
    let mut query = AuditQuery {
        source: None,
        before: u64::MAX,
        after: None,
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
            "cursor" => query.after = Some(Cursor::decode("cursor", &value)?),
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
                    "unknown parameter; use source, before or cursor, and limit",
                ));
            }
        }
    }
    if let Some(cursor) = query.after.take() {
        if query.before != u64::MAX {
            return Err(ApiError::invalid(
                "cursor",
                "give either before or cursor, not both",
            ));
        }
        query.before = cursor_seq(&cursor)
            .ok_or_else(|| ApiError::invalid("cursor", "not a cursor of the audit log"))?;
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
                next_cursor: next_before.map(|seq| Cursor(vec![seq.to_string()]).encode()),
            })
        })
        .await?;
    Ok(Json(page))
}

/// The query parameters of `GET /audit` for the OpenAPI document.
pub fn parameters() -> Vec<serde_json::Value> {
    use super::paging::query;
    use serde_json::json;
    vec![
        query(
            "source",
            "Only events about this id",
            json!({"type": "string"}),
        ),
        query(
            "before",
            "Only events with a sequence number below this one (the previous page's `next_before`)",
            json!({"type": "integer", "minimum": 0}),
        ),
        query(
            "cursor",
            "The previous page's `next_cursor` (opaque), instead of `before`",
            json!({"type": "string"}),
        ),
        query(
            "limit",
            &format!("Events per page (default {DEFAULT_LIMIT})"),
            json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
        ),
    ]
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
