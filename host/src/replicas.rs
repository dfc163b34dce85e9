//! What replicas on one database share beyond the records: who syncs which source (leases,
//! taken in `sync`) and the rate-limit pauses trackers announced. On redb one process owns
//! the file and nothing here runs.
//!
//! Pauses: every [`SHARE_EVERY`], each replica publishes the pauses it observed (a `429` with
//! `Retry-After`, a window with no request left) and takes in those of the others, which
//! `sync::paused_until` then obeys like its own: a 429 seen by one replica stops sync, manual
//! refreshes and link fetches of that source on all of them within [`SHARE_EVERY`].

use std::time::Duration;

use crate::app::AppState;

/// How often pauses are exchanged between replicas.
pub const SHARE_EVERY: Duration = Duration::from_millis(500);

/// Starts the exchange of pauses, when the database is shared (call within a tokio runtime).
pub fn spawn(state: &AppState) {
    if !state.store.is_shared() {
        return;
    }
    tracing::info!(
        replica = state.store.replica_id(),
        "replica on a shared database"
    );
    let state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SHARE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = share_pauses(&state).await {
                tracing::warn!(error = %e, "could not exchange rate-limit pauses with the other replicas");
            }
        }
    });
}

/// One exchange: publishes this replica's pauses, keeps everyone's.
pub async fn share_pauses(state: &AppState) -> Result<(), crate::store::StoreError> {
    let local = state
        .metrics
        .local_pauses(|source| state.plugins.headroom(source));
    let all = state.store.share_pauses(local).await?;
    state.metrics.set_shared_pauses(all);
    Ok(())
}
