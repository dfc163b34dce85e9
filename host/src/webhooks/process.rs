//! Processing a verified event: the plugin maps it to keys (`parse-event`), and only the
//! links of that source with those keys change. A payload's state is applied only when its
//! version is greater than the last one applied to the link (trackers do not promise order;
//! a payload without the title keeps the link's);
//! otherwise the keys are read again, in one batched `fetch-issues` (when the source has "Read
//! issue details" and its tracker has not asked us to wait; else the next sync reads them). A
//! key nobody linked costs nothing. The source is read anew for every event, so an edit
//! applies to the next.
//!
//! Known limit: a sync's read does not move a link's `event_version` (a read carries no
//! version), so a payload newer than the last one applied but older than what a sync read
//! since can still be applied; the next event or sync corrects it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};

use super::{Job, WORKERS, WebhookError};
use crate::app::AppState;
use crate::links::{FetchError, SyncState};
use crate::metrics::Outcome;
use crate::plugin::model::{Event, EventChange, Issue};
use crate::sources::{self, SourceError};
use crate::store::records::{LinkRecord, now};
use crate::store::{LINKS, Read, StoreError};

/// Takes events off the queue, [`WORKERS`] at a time, for as long as the service runs.
pub async fn run(state: AppState, mut receiver: mpsc::Receiver<Job>) {
    let slots = Arc::new(Semaphore::new(WORKERS));
    while let Some(job) = receiver.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let (source_id, delivery) = (job.source_id.clone(), job.delivery_id.clone());
            let failure = match process(&state, job).await {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!(source = %source_id, error = %e, "webhook event not processed");
                    if let Some(delivery) = &delivery {
                        super::release(&state, &source_id, delivery).await;
                    }
                    Some(failure(&e))
                }
            };
            state.webhooks.processed(&source_id, failure);
            drop(slot);
        });
    }
}

/// How a failure shows in the source's webhook health: the error's code and sentence; a
/// failure of our own (the store, the secrets) says only "internal error" (the detail is
/// logged).
fn failure(e: &WebhookError) -> (String, String) {
    match e {
        WebhookError::Plugin(p) | WebhookError::Source(SourceError::Plugin(p)) => {
            (p.code().to_string(), p.to_string())
        }
        WebhookError::Source(SourceError::NotFound(_)) => ("not-found".into(), e.to_string()),
        _ => ("internal".into(), "internal error".into()),
    }
}

/// Processes one event (see the module's doc).
pub async fn process(state: &AppState, job: Job) -> Result<(), WebhookError> {
    let (record, secrets) = sources::load_with_secrets(state, &job.source_id).await?;
    if !record.enabled || !record.capabilities.process_webhooks {
        return Ok(());
    }
    // It stopped fitting its plugin since the event was queued: like sync, leave it alone.
    if let Some(incompatible) = crate::compat::refusal(&state.plugins, &record) {
        tracing::warn!(source = %job.source_id, reason = %incompatible, "webhook event dropped: the source does not fit its plugin");
        return Ok(());
    }
    let config = sources::config(Some(&job.source_id), &record, secrets);
    let event = Event {
        scheme: job.scheme,
        headers: job.headers,
        body: job.body,
    };
    let changes = state
        .metrics
        .observe(
            Some(&job.source_id),
            &config.provider,
            "parse-event",
            Outcome::of,
            state.plugins.parse_event(&config, event),
        )
        .await?;
    let changes = latest_by_key(changes);
    let wanted = job.source_id.clone();
    let keys: BTreeSet<String> = changes.keys().cloned().collect();
    let links: Vec<(String, LinkRecord)> = state
        .store
        .read(move |r| {
            let all: Vec<(String, LinkRecord)> = r.all(LINKS)?;
            Ok::<_, StoreError>(
                all.into_iter()
                    .filter(|(_, l)| l.source_id == wanted && keys.contains(&l.key))
                    .collect(),
            )
        })
        .await?;
    if links.is_empty() {
        return Ok(());
    }
    let reread = apply_payloads(state, &links, &changes).await?;
    if !reread.is_empty() && SyncState::of(Some(&record)) == SyncState::Syncing {
        refetch(state, &job.source_id, &config, &links, reread).await?;
    }
    Ok(())
}

/// One change per key: the one with the greatest version (a change without a version, which
/// must be read anyway, wins over none).
fn latest_by_key(changes: Vec<EventChange>) -> BTreeMap<String, EventChange> {
    let mut out: BTreeMap<String, EventChange> = BTreeMap::new();
    for change in changes {
        let newer = out.get(&change.key).is_none_or(|old| {
            change.version.is_none() || old.version.is_some_and(|v| Some(v) < change.version)
        });
        if newer {
            out.insert(change.key.clone(), change);
        }
    }
    out
}

/// Applies each change's payload to the links of its key whose last applied version is
/// older, in one write transaction; returns the keys to read instead (no payload or version,
/// or a payload not newer than what a link holds).
async fn apply_payloads(
    state: &AppState,
    links: &[(String, LinkRecord)],
    changes: &BTreeMap<String, EventChange>,
) -> Result<BTreeSet<String>, StoreError> {
    let mut reread = BTreeSet::new();
    let mut apply: Vec<(String, Issue, u64)> = Vec::new();
    for (id, link) in links {
        let Some(change) = changes.get(&link.key) else {
            continue;
        };
        match (&change.issue, change.version) {
            (Some(issue), Some(version)) if link.event_version.is_none_or(|v| v < version) => {
                apply.push((id.clone(), issue.clone(), version));
            }
            _ => {
                reread.insert(link.key.clone());
            }
        }
    }
    if apply.is_empty() {
        return Ok(reread);
    }
    let stale = state
        .store
        .write(move |w| {
            let at = now();
            let mut stale = BTreeSet::new();
            for (id, mut issue, version) in apply {
                let Some(mut record) = w.get::<LinkRecord>(LINKS, &id)? else {
                    continue;
                };
                // Checked again inside the transaction: another event may have come first.
                if record.event_version.is_some_and(|v| v >= version) {
                    stale.insert(record.key.clone());
                    continue;
                }
                // A payload without the title keeps the one the link shows; with none shown,
                // the issue is read.
                if issue.title.is_empty() {
                    match record.snapshot.as_ref().filter(|s| !s.title.is_empty()) {
                        Some(shown) => issue.title = shown.title.clone(),
                        None => {
                            stale.insert(record.key.clone());
                            continue;
                        }
                    }
                }
                crate::links::apply(&mut record, Ok(issue), at);
                record.event_version = Some(version);
                w.put(LINKS, &id, &record)?;
            }
            Ok::<_, StoreError>(stale)
        })
        .await?;
    reread.extend(stale);
    Ok(reread)
}

/// Reads `keys` again through batched `fetch-issues` and stores the outcomes on the links of
/// those keys, unless the tracker asked us to wait (the next sync reads them then).
async fn refetch(
    state: &AppState,
    source_id: &str,
    config: &crate::plugin::SourceConfig,
    links: &[(String, LinkRecord)],
    keys: BTreeSet<String>,
) -> Result<(), StoreError> {
    if crate::sync::paused_until(state, source_id).is_some() {
        return Ok(());
    }
    let keys: Vec<String> = keys.into_iter().collect();
    let mut outcomes: BTreeMap<String, Result<Issue, FetchError>> = BTreeMap::new();
    for batch in keys.chunks(crate::sync::BATCH_SIZE) {
        let fetched = state
            .metrics
            .observe(
                Some(source_id),
                &config.provider,
                "fetch-issues",
                Outcome::of_batch,
                state.plugins.fetch_issues(config, batch),
            )
            .await;
        match fetched {
            Ok(results) => {
                for (key, result) in batch.iter().zip(results) {
                    outcomes.insert(key.clone(), result.map_err(FetchError::from));
                }
            }
            Err(e) => {
                let failure = FetchError::from(e);
                for key in batch {
                    outcomes.insert(key.clone(), Err(failure.clone()));
                }
            }
        }
    }
    let wanted: HashMap<&str, ()> = keys.iter().map(|k| (k.as_str(), ())).collect();
    let link_ids: Vec<String> = links
        .iter()
        .filter(|(_, l)| wanted.contains_key(l.key.as_str()))
        .map(|(id, _)| id.clone())
        .collect();
    crate::links::store_outcomes(state, link_ids, outcomes).await?;
    Ok(())
}
