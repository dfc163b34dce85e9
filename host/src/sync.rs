//! The sync worker: keeps the issue details of links fresh.
//!
//! Every interval it refreshes the links of each enabled source with "Read issue details",
//! asking the plugin for issues in batches (`fetch-issues`, one tracker request per batch where
//! the tracker allows it). Sources run concurrently up to a limit; within a source, batches run
//! one after another. A rate-limited source is paused while the others go on: nothing is sent
//! to it, manual refreshes and link fetches included, before the latest time its tracker
//! announced (`Retry-After`, or the reset of a window with no request left; see
//! [`paused_until`]); a source that keeps failing backs off exponentially. The configuration is read
//! afresh on every run, so an edit takes effect on the next execution.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde::Serialize;

use crate::api::error::ApiError;
use crate::app::AppState;
use crate::links::{FetchError, SyncState};
use crate::plugin::{PluginError, ProviderError};
use crate::store::records::{LinkRecord, Millis, SourceRecord, now};
use crate::store::{LINKS, Read, SOURCES};

/// Keys per `fetch-issues` call.
pub const BATCH_SIZE: usize = 50;

/// Sources synced at the same time.
const SOURCE_CONCURRENCY: usize = 4;

/// The longest back-off after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What one refresh of a source did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RefreshReport {
    /// Links whose issue was fetched successfully.
    pub refreshed: usize,
    /// Links whose fetch failed (the error is on the link).
    pub failed: usize,
    /// `fetch-issues` calls made.
    pub batches: usize,
    /// Set when the tracker rate-limited us: seconds until the source is tried again.
    pub retry_after_secs: Option<u32>,
    /// Set with `retry_after_secs`: until when the source is paused (milliseconds since the
    /// epoch), the same pause its health shows.
    pub paused_until: Option<Millis>,
}

/// Per-source pacing: when a source may be synced next, and how often it failed in a row.
#[derive(Default)]
pub struct Pacing {
    sources: Mutex<HashMap<String, Pace>>,
}

#[derive(Clone, Copy)]
struct Pace {
    not_before: Instant,
    failures: u32,
}

impl Pacing {
    fn ready(&self, source: &str) -> bool {
        let map = self.sources.lock().expect("pacing lock");
        map.get(source)
            .is_none_or(|p| Instant::now() >= p.not_before)
    }

    fn record(&self, source: &str, report: &Result<RefreshReport, ApiError>, interval: Duration) {
        let mut map = self.sources.lock().expect("pacing lock");
        let pace = map.entry(source.to_string()).or_insert(Pace {
            not_before: Instant::now(),
            failures: 0,
        });
        match report {
            // A rate limit is no failure: the source's pause (see `paused_until`) holds it.
            Ok(r) if r.retry_after_secs.is_some() => {}
            Ok(r) if r.refreshed > 0 || r.failed == 0 => {
                pace.failures = 0;
                pace.not_before = Instant::now();
            }
            _ => {
                pace.failures = pace.failures.saturating_add(1);
                let backoff = interval
                    .saturating_mul(1 << pace.failures.min(10))
                    .min(MAX_BACKOFF);
                pace.not_before = Instant::now() + backoff;
            }
        }
    }
}

/// Runs the worker until the process ends: one pass over all sources every `interval`.
pub async fn run(state: AppState, interval: Duration) {
    let pacing = Arc::new(Pacing::default());
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = pass(&state, &pacing, interval).await {
            tracing::warn!(error = ?e, "sync pass failed");
        }
    }
}

/// One pass: refreshes every source that is due.
pub async fn pass(
    state: &AppState,
    pacing: &Arc<Pacing>,
    interval: Duration,
) -> Result<(), ApiError> {
    let sources: Vec<(String, SourceRecord)> = state.store.read(|r| r.all(SOURCES)).await?;
    let due: Vec<String> = sources
        .into_iter()
        .filter(|(id, s)| {
            SyncState::of(Some(s)) == SyncState::Syncing
                && compatible(state, id, s)
                && pacing.ready(id)
                && paused_until(state, id).is_none()
        })
        .map(|(id, _)| id)
        .collect();
    state.metrics.record_sync_pass(due.len());
    // One read of the links for the whole pass, grouped by source.
    let all: Vec<(String, LinkRecord)> = state.store.read(|r| r.all(LINKS)).await?;
    let mut by_source: HashMap<String, Vec<(String, LinkRecord)>> = HashMap::new();
    for (id, link) in all {
        by_source
            .entry(link.source_id.clone())
            .or_default()
            .push((id, link));
    }
    let gate = Arc::new(tokio::sync::Semaphore::new(SOURCE_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for id in due {
        let (state, pacing, gate) = (state.clone(), pacing.clone(), gate.clone());
        let links = by_source.remove(&id).unwrap_or_default();
        tasks.spawn(async move {
            let _permit = gate.acquire().await;
            let report = refresh_links(&state, &id, links).await;
            match &report {
                Ok(r) => tracing::debug!(source = %id, refreshed = r.refreshed, failed = r.failed, batches = r.batches, "synced"),
                Err(e) => tracing::warn!(source = %id, error = ?e, "sync failed"),
            }
            pacing.record(&id, &report, interval);
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Refreshes the links of one source now (all of them, or only `only`), whatever its back-off
/// after failures, but never while the tracker asked us to wait (a 429 `source-paused` saying
/// until when). A source that is disabled, deleted or without "Read issue details" is a 409
/// saying which (see [`refusal`]).
pub async fn refresh_source(
    state: &AppState,
    source_id: &str,
    only: Option<Vec<String>>,
) -> Result<RefreshReport, ApiError> {
    let key = source_id.to_string();
    let source: Option<SourceRecord> = state.store.read(move |r| r.get(SOURCES, &key)).await?;
    if let Some(refused) = refusal(source.as_ref()) {
        return Err(refused);
    }
    if let Some(refused) = source
        .as_ref()
        .and_then(|s| crate::compat::refusal(&state.plugins, s))
    {
        return Err(refused);
    }
    if let Some(until) = paused_until(state, source_id) {
        return Err(paused(until));
    }
    let wanted = source_id.to_string();
    let links: Vec<(String, LinkRecord)> = state.store.read(|r| r.all(LINKS)).await?;
    let links: Vec<(String, LinkRecord)> = links
        .into_iter()
        .filter(|(id, l)| l.source_id == wanted && only.as_ref().is_none_or(|o| o.contains(id)))
        .collect();
    refresh_links(state, source_id, links).await
}

/// False (and logged) when the source no longer fits its loaded plugin: sync skips it, without
/// counting a failure, until it is edited to fit or a fitting version is loaded.
fn compatible(state: &AppState, id: &str, source: &SourceRecord) -> bool {
    match crate::compat::status(&state.plugins, source).reason() {
        None => true,
        Some(reason) => {
            tracing::warn!(source = %id, reason, "sync skips a source that does not fit its plugin");
            false
        }
    }
}

/// Until when no request may be sent for `source_id`, if it is paused now: the one pause
/// health shows, which sync, manual refreshes and link fetches all obey (the latest of the
/// tracker's `Retry-After` and, when no request is left, its window's reset).
pub fn paused_until(state: &AppState, source_id: &str) -> Option<Millis> {
    state
        .metrics
        .paused_until(source_id, state.plugins.headroom(source_id))
}

/// Whole seconds from now until `until` (milliseconds since the epoch), at least 1.
pub fn seconds_until(until: Millis) -> u32 {
    let wait = Duration::from_millis(until.saturating_sub(now())).min(MAX_BACKOFF);
    (wait.as_secs_f64().ceil() as u32).max(1)
}

/// Says that the source is paused until `until` (milliseconds since the epoch), for a person.
pub fn pause_text(until: Millis) -> String {
    let secs = until / 1000 % 86_400;
    format!(
        "the tracker asked us to wait: nothing is sent to it until {:02}:{:02}:{:02} UTC (in {} s)",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        seconds_until(until)
    )
}

/// The 429 a manual refresh of a paused source gets: nothing was sent, and until when.
pub fn paused(until: Millis) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "source-paused",
        format!("{}; try again then", pause_text(until)),
    )
}

/// Why links of `source` (None = deleted) cannot be refreshed, if they cannot: a 409 whose
/// code is the link's sync state (`not-syncing-disabled`, `not-syncing-deleted`,
/// `no-details`).
pub fn refusal(source: Option<&SourceRecord>) -> Option<ApiError> {
    let (code, why) = match SyncState::of(source) {
        SyncState::Syncing => return None,
        SyncState::NotSyncingDisabled => (
            "not-syncing-disabled",
            "its source is disabled; an admin can enable it again",
        ),
        SyncState::NotSyncingDeleted => (
            "not-syncing-deleted",
            "its source was deleted; the link keeps its last snapshot",
        ),
        SyncState::NoDetails => (
            "no-details",
            "its source does not have \"Read issue details\"",
        ),
    };
    Some(ApiError::new(
        StatusCode::CONFLICT,
        code,
        format!("nothing to refresh: {why}"),
    ))
}

/// Refreshes the given links, all of `source_id`.
async fn refresh_links(
    state: &AppState,
    source_id: &str,
    links: Vec<(String, LinkRecord)>,
) -> Result<RefreshReport, ApiError> {
    let (source, secrets) = crate::api::sources::load_with_secrets(state, source_id).await?;
    if SyncState::of(Some(&source)) != SyncState::Syncing {
        return Ok(RefreshReport::default());
    }
    let mut keys: Vec<String> = links.iter().map(|(_, l)| l.key.clone()).collect();
    keys.sort();
    keys.dedup();
    let config = crate::api::sources::config(Some(source_id), &source, secrets);
    let link_ids: Vec<String> = links.iter().map(|(id, _)| id.clone()).collect();

    let mut report = RefreshReport::default();
    let mut outcomes: BTreeMap<String, Result<crate::plugin::Issue, FetchError>> = BTreeMap::new();
    for batch in keys.chunks(BATCH_SIZE) {
        if let Some(until) = paused_until(state, source_id) {
            // The tracker asked us to wait, or said no request is left in its window: wait
            // rather than spend the next batch on a rate-limit error.
            report.retry_after_secs = Some(seconds_until(until));
            report.paused_until = Some(until);
            break;
        }
        report.batches += 1;
        let fetched = state
            .metrics
            .observe(
                Some(source_id),
                &config.provider,
                "fetch-issues",
                crate::metrics::Outcome::of_batch,
                state.plugins.fetch_issues(&config, batch),
            )
            .await;
        match fetched {
            Ok(results) => {
                for (key, result) in batch.iter().zip(results) {
                    if let Err(ProviderError::RateLimited {
                        retry_after_secs, ..
                    }) = &result
                    {
                        report.retry_after_secs = Some(*retry_after_secs);
                    }
                    outcomes.insert(key.clone(), result.map_err(FetchError::from));
                }
            }
            Err(e) => {
                if let PluginError::Provider(ProviderError::RateLimited {
                    retry_after_secs, ..
                }) = &e
                {
                    report.retry_after_secs = Some(*retry_after_secs);
                }
                let failure = FetchError::from(e);
                for key in batch {
                    outcomes.insert(key.clone(), Err(failure.clone()));
                }
            }
        }
        if report.retry_after_secs.is_some() {
            // The rest waits for the next pass after the pause (it includes this delay).
            report.paused_until = paused_until(state, source_id);
            report.retry_after_secs = report
                .paused_until
                .map(seconds_until)
                .or(report.retry_after_secs);
            break;
        }
    }
    for outcome in outcomes.values() {
        match outcome {
            Ok(_) => report.refreshed += 1,
            Err(_) => report.failed += 1,
        }
    }
    crate::links::store_outcomes(state, link_ids, outcomes).await?;
    Ok(report)
}
