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

use schemars::JsonSchema;
use serde::Serialize;

use crate::app::AppState;
use crate::links::{FetchError, LinkView, SyncState};
use crate::plugin::{PluginError, ProviderError};
use crate::sources::SourceError;
use crate::store::records::{LinkRecord, Millis, SourceRecord, now};
use crate::store::{LINKS, Read, SOURCES, StoreError};

/// Why links could not be refreshed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The tracker asked us to wait until then (milliseconds since the epoch): nothing was
    /// sent.
    #[error("{}; try again then", pause_text(*.0))]
    Paused(Millis),
    /// The links' source does not sync (disabled, deleted, or without "Read issue details").
    #[error("nothing to refresh: {}", not_syncing_reason(*.0))]
    NotSyncing(SyncState),
    /// Another replica (or task) is fetching this source's issues now and did not finish
    /// within [`REFRESH_WAIT`]: nothing was sent.
    #[error(
        "the links of this source are being refreshed now (a sync is running); they will be \
         fresh when it ends: try again in a few seconds"
    )]
    Busy,
    /// The source no longer fits its loaded plugin: nothing was asked of it.
    #[error(transparent)]
    Incompatible(crate::compat::Incompatible),
    /// No link with this id in the project.
    #[error("no link {0:?} in this project")]
    NoLink(String),
    /// The link was deleted while it was refreshed.
    #[error("the link was deleted meanwhile")]
    LinkGone,
    /// The source could not be read (or does not exist).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Keys per `fetch-issues` call.
pub const BATCH_SIZE: usize = 50;

/// Sources synced at the same time.
const SOURCE_CONCURRENCY: usize = 4;

/// How long a replica's lease on a source lasts while it syncs it (see [`take_sync_lease`]).
pub const SYNC_LEASE: Duration = Duration::from_secs(300);

/// How long a manual refresh waits for a sync of the same source (on any replica) to end
/// before it answers [`SyncError::Busy`].
pub const REFRESH_WAIT: Duration = Duration::from_secs(5);

/// The longest back-off after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What one refresh of a source did.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
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
    /// How long until `source` may be synced again (zero when it may now).
    fn wait(&self, source: &str) -> Duration {
        let map = self.sources.lock().expect("pacing lock");
        map.get(source).map_or(Duration::ZERO, |p| {
            p.not_before.saturating_duration_since(Instant::now())
        })
    }

    fn ready(&self, source: &str) -> bool {
        let map = self.sources.lock().expect("pacing lock");
        map.get(source)
            .is_none_or(|p| Instant::now() >= p.not_before)
    }

    fn record(&self, source: &str, report: &Result<RefreshReport, SyncError>, interval: Duration) {
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
) -> Result<(), SyncError> {
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
            if !take_sync_lease(&state, &id, SYNC_LEASE).await {
                return;
            }
            let report = refresh_exclusively(&state, &id, links, Duration::ZERO).await;
            match &report {
                Ok(r) => tracing::debug!(source = %id, refreshed = r.refreshed, failed = r.failed, batches = r.batches, "synced"),
                // The next pass syncs it.
                Err(SyncError::Busy) => tracing::debug!(source = %id, "sync skipped: a manual refresh runs"),
                Err(e) => tracing::warn!(source = %id, error = ?e, "sync failed"),
            }
            if !matches!(report, Err(SyncError::Busy)) {
                pacing.record(&id, &report, interval);
            }
            // Kept until this replica's first pass after its back-off (none after a success),
            // so no other replica syncs it meanwhile.
            take_sync_lease(&state, &id, pacing.wait(&id) + interval).await;
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Replicas on one database: takes (or renews) this replica's lease on syncing `source_id`
/// for `hold`; false while another replica's runs (it syncs the source) or when the database
/// cannot say. A replica that dies loses its leases when they expire. Always true on redb.
pub async fn take_sync_lease(state: &AppState, source_id: &str, hold: Duration) -> bool {
    match state
        .store
        .take_lease(&format!("sync:{source_id}"), hold)
        .await
    {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(source = %source_id, error = %e, "sync lease not taken");
            false
        }
    }
}

/// Refreshes the links of one source now (all of them, or only `only`), whatever its back-off
/// after failures, but never while the tracker asked us to wait (a 429 `source-paused` saying
/// until when: [`SyncError::Paused`]). A source that is disabled, deleted or without "Read
/// issue details" is refused saying which ([`SyncError::NotSyncing`]); one that no longer fits
/// its loaded plugin is refused saying why ([`SyncError::Incompatible`]).
pub async fn refresh_source(
    state: &AppState,
    source_id: &str,
    only: Option<Vec<String>>,
) -> Result<RefreshReport, SyncError> {
    let key = source_id.to_string();
    let source: Option<SourceRecord> = state.store.read(move |r| r.get(SOURCES, &key)).await?;
    match SyncState::of(source.as_ref()) {
        SyncState::Syncing => {}
        refused => return Err(SyncError::NotSyncing(refused)),
    }
    if let Some(refused) = source
        .as_ref()
        .and_then(|s| crate::compat::refusal(&state.plugins, s))
    {
        return Err(SyncError::Incompatible(refused));
    }
    if let Some(until) = paused_until(state, source_id) {
        return Err(SyncError::Paused(until));
    }
    let wanted = source_id.to_string();
    let links: Vec<(String, LinkRecord)> = state.store.read(|r| r.all(LINKS)).await?;
    let links: Vec<(String, LinkRecord)> = links
        .into_iter()
        .filter(|(id, l)| l.source_id == wanted && only.as_ref().is_none_or(|o| o.contains(id)))
        .collect();
    refresh_exclusively(state, source_id, links, REFRESH_WAIT).await
}

/// [`refresh_links`] holding the source's fetch lease, so that the tracker requests of a source
/// never run twice at once, whichever replica or task makes them (a sync, a manual refresh of
/// the source or of a link). Waits up to `wait` for the lease (polling), else
/// [`SyncError::Busy`]. The lease is released when done; one whose holder died expires after
/// [`SYNC_LEASE`]. On redb (one process) every lease is granted.
async fn refresh_exclusively(
    state: &AppState,
    source_id: &str,
    links: Vec<(String, LinkRecord)>,
    wait: Duration,
) -> Result<RefreshReport, SyncError> {
    let name = format!("fetch:{source_id}");
    let holder = format!(
        "{}/{}",
        state.store.replica_id(),
        hex::encode(rand::random::<[u8; 6]>())
    );
    let deadline = Instant::now() + wait;
    while !state
        .store
        .take_lease_as(&name, &holder, SYNC_LEASE)
        .await?
    {
        if Instant::now() >= deadline {
            return Err(SyncError::Busy);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = refresh_links(state, source_id, links).await;
    if let Err(e) = state.store.release_lease(&name, &holder).await {
        tracing::warn!(source = %source_id, error = %e, "fetch lease not released: it expires");
    }
    report
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

/// Refreshes every link of stored source `source_id` now, as [`refresh_source`] does; a
/// source that does not exist is [`SourceError::NotFound`].
pub async fn refresh_stored_source(
    state: &AppState,
    source_id: &str,
) -> Result<RefreshReport, SyncError> {
    crate::sources::load(state, source_id).await?;
    refresh_source(state, source_id, None).await
}

/// Fetches the issue of link `id` of `project` now, as [`refresh_source`] does for one link;
/// returns the link as members see it.
pub async fn refresh_link(
    state: &AppState,
    project: &str,
    id: &str,
) -> Result<LinkView, SyncError> {
    let key = id.to_string();
    let link: Option<LinkRecord> = state.store.read(move |r| r.get(LINKS, &key)).await?;
    let link = link
        .filter(|l| l.project == project)
        .ok_or_else(|| SyncError::NoLink(id.to_string()))?;
    refresh_source(state, &link.source_id, Some(vec![id.to_string()])).await?;
    let views = crate::links::load_views(state, move |l| {
        l.project == link.project && l.identity() == link.identity()
    })
    .await?;
    views.into_iter().next().ok_or(SyncError::LinkGone)
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

/// Why links of a source in sync state `state` cannot be refreshed, for a person.
fn not_syncing_reason(state: SyncState) -> &'static str {
    match state {
        SyncState::Syncing => "its source syncs",
        SyncState::NotSyncingDisabled => "its source is disabled; an admin can enable it again",
        SyncState::NotSyncingDeleted => "its source was deleted; the link keeps its last snapshot",
        SyncState::NoDetails => "its source does not have \"Read issue details\"",
    }
}

/// Refreshes the given links, all of `source_id`.
async fn refresh_links(
    state: &AppState,
    source_id: &str,
    links: Vec<(String, LinkRecord)>,
) -> Result<RefreshReport, SyncError> {
    let (source, secrets) = crate::sources::load_with_secrets(state, source_id).await?;
    if SyncState::of(Some(&source)) != SyncState::Syncing {
        return Ok(RefreshReport::default());
    }
    let mut keys: Vec<String> = links.iter().map(|(_, l)| l.key.clone()).collect();
    keys.sort();
    keys.dedup();
    let config = crate::sources::config(Some(source_id), &source, secrets);
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
