//! Per-source health in the database, so every replica (and a restarted process) shows the
//! same last success, last error, error rate and rate-limit headroom.
//!
//! Cheap to write: a plugin call only updates memory (`Metrics::record_call`). Every
//! [`EXCHANGE_EVERY`] one task per process stores the changes recorded since the last round,
//! for all sources at once, in ONE write transaction that merges them into the stored records
//! (so the calls of several replicas add up) and reads every source's health back; a round
//! with nothing recorded is a read only. A replica thus shows another's calls within
//! [`EXCHANGE_EVERY`], and its own at once. The same code runs on redb and on PostgreSQL.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::metrics::{Metrics, SourceHealth};
use crate::plugin::PluginHost;
use crate::store::{HEALTH, Read, SOURCES, Store, StoreError};

/// How often a process stores its health changes and reads everyone's.
pub const EXCHANGE_EVERY: Duration = Duration::from_millis(500);

/// Starts the exchange, which ends once `metrics` is dropped (call within a tokio runtime).
pub fn spawn(store: Store, metrics: &Arc<Metrics>, plugins: Arc<PluginHost>) {
    let metrics = Arc::downgrade(metrics);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EXCHANGE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(metrics) = Weak::upgrade(&metrics) else {
                return;
            };
            if let Err(e) = exchange(&store, &metrics, &plugins).await {
                tracing::warn!(error = %e, "could not store the sources' health");
            }
        }
    });
}

/// One round: merges the changes recorded here into the stored health of their sources (those
/// that still exist), then replaces this process's view with every stored record. Changes that
/// could not be stored are kept for the next round.
pub async fn exchange(
    store: &Store,
    metrics: &Metrics,
    plugins: &PluginHost,
) -> Result<(), StoreError> {
    let mut changes = metrics.take_pending();
    for (id, change) in &mut changes {
        change.note_headroom(plugins.headroom(id));
    }
    let stored = if changes.is_empty() {
        store.read(|r| r.all::<SourceHealth>(HEALTH)).await
    } else {
        let written = changes.clone();
        store.write(move |w| store_changes(w, written)).await
    };
    match stored {
        Ok(all) => {
            metrics.replace_health(all);
            Ok(())
        }
        Err(e) => {
            metrics.restore_pending(changes);
            Err(e)
        }
    }
}

/// Merges `changes` into the stored records (skipping deleted sources); every stored record.
fn store_changes(
    w: &mut crate::store::Writer,
    changes: std::collections::HashMap<String, SourceHealth>,
) -> Result<Vec<(String, SourceHealth)>, StoreError> {
    for (id, change) in changes {
        if w.get::<serde::de::IgnoredAny>(SOURCES, &id)?.is_none() {
            continue;
        }
        let mut health: SourceHealth = w.get(HEALTH, &id)?.unwrap_or_default();
        health.merge(&change);
        w.put(HEALTH, &id, &health)?;
    }
    w.all(HEALTH)
}
