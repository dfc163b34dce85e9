//! What replicas on one database share beyond the records: who syncs which source (leases,
//! taken in `sync`), the rate-limit pauses trackers announced, and uploaded plugins. On redb
//! one process owns the file and nothing here runs.
//!
//! Plugins: an upload to any replica is stored in the database (by provider, with its
//! digest); every [`SHARE_EVERY`] each replica compares the digests there with what it serves
//! and installs a new one as an upload of its own (compiled and checked, saved to its plugins
//! directory, swapped in: calls in flight finish on the old version), at once when the upload
//! is announced (PostgreSQL's LISTEN/NOTIFY), else at the next round of polling. A removal
//! (`DELETE /plugins/{id}`) is stored and announced the same way, as the removed digest: a
//! replica serving that version removes it (and its file) too.
//!
//! Pauses: every [`SHARE_EVERY`], each replica publishes the pauses it observed (a `429` with
//! `Retry-After`, a window with no request left) and takes in those of the others, which
//! `sync::paused_until` then obeys like its own: a 429 seen by one replica stops sync, manual
//! refreshes and link fetches of that source on all of them within [`SHARE_EVERY`].

use std::collections::HashSet;
use std::time::Duration;

use crate::app::AppState;
use crate::plugin::LoadedPlugin;
use crate::store::postgres::Uploads;

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
        let mut refused = HashSet::new();
        let mut uploads = state.store.listen_uploads().await;
        let mut tick = tokio::time::interval(SHARE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = share_pauses(&state).await {
                        tracing::warn!(error = %e, "could not exchange rate-limit pauses with the other replicas");
                    }
                }
                notice = next_upload(&mut uploads) => {
                    if notice.is_none() {
                        tracing::warn!("the LISTEN connection for plugin uploads closed: polling for them");
                        uploads = None;
                    }
                }
            }
            if let Err(e) = follow_uploads(&state, &mut refused).await {
                tracing::warn!(error = %e, "could not read the plugins uploaded to other replicas");
            }
        }
    });
}

/// The next upload announced, or never when nothing listens.
async fn next_upload(uploads: &mut Option<Uploads>) -> Option<String> {
    match uploads {
        Some(uploads) => uploads.next().await,
        None => std::future::pending().await,
    }
}

/// Stores an upload this replica accepted, with its signature, for the others to install.
pub async fn publish_upload(
    state: &AppState,
    plugin: &LoadedPlugin,
    wasm: &[u8],
    signature: Option<&str>,
) {
    let published = state
        .store
        .publish_plugin(&plugin.info.id, &plugin.digest, wasm, signature)
        .await;
    if let Err(e) = published {
        tracing::error!(plugin = %plugin.info.id, error = %e, "the upload serves on this replica only: it could not be stored for the others");
    }
}

/// Installs the uploads of other replicas this one does not serve yet. A binary this replica
/// refused (`refused`: digests) is not tried again.
pub async fn follow_uploads(
    state: &AppState,
    refused: &mut HashSet<String>,
) -> Result<(), crate::store::StoreError> {
    for (id, digest, removed) in state.store.plugin_digests().await? {
        let serving = state.plugins.get(&id).is_ok_and(|p| p.digest == digest);
        if removed {
            if serving {
                follow_removal(state, &id, &digest).await;
            }
            continue;
        }
        if serving || refused.contains(&digest) {
            continue;
        }
        let Some((wasm, signature)) = state.store.plugin_binary(&id, &digest).await? else {
            continue; // replaced meanwhile: the next round takes the newer one
        };
        // The replica that took the upload checked it against the sources (or was told to
        // force it): this one installs it as it is, its signature checked again here.
        let no_check = |_: &crate::plugin::ProviderInfo| Vec::new();
        let (dir, signature) = (&state.plugins_dir, signature.as_deref());
        match (state.plugins)
            .upload_signed(&id, &wasm, signature, dir, no_check, false)
            .await
        {
            Ok(swap) => {
                tracing::info!(plugin = %id, version = %swap.plugin.info.version, %digest, "plugin uploaded to another replica installed")
            }
            Err(e) => {
                tracing::warn!(plugin = %id, %digest, error = %e, "plugin uploaded to another replica refused here");
                refused.insert(digest);
            }
        }
    }
    Ok(())
}

/// Stores a removal this replica made, for the others to follow.
pub async fn publish_removal(state: &AppState, plugin: &LoadedPlugin) {
    let published = state
        .store
        .publish_removal(&plugin.info.id, &plugin.digest)
        .await;
    if let Err(e) = published {
        tracing::error!(plugin = %plugin.info.id, error = %e, "the plugin is removed from this replica only: the removal could not be stored for the others");
    }
}

/// Removes version `digest` of provider `id`, which another replica removed (a version loaded
/// since, from the plugins directory or an upload, has another digest and stays).
async fn follow_removal(state: &AppState, id: &str, digest: &str) {
    match state.plugins.unload(id, &state.plugins_dir).await {
        Ok(_) => {
            tracing::info!(plugin = %id, %digest, "plugin removed on another replica removed here")
        }
        Err(e) => {
            tracing::warn!(plugin = %id, %digest, error = %e, "plugin removed on another replica: its file could not be deleted here")
        }
    }
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
