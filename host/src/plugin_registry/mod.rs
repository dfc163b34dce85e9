//! The plugin registry's rules (the runtime itself is `plugin/`): admitting an uploaded
//! version (compiled and described, checked against the stored sources it would break, see
//! [`crate::compat`], then swapped in and saved) and the audit of every accepted swap, uploaded
//! or picked up from the plugins directory; the plugin size limits an admin sets
//! ([`settings`]); the operator's trusted vendor keys, which signed plugins are checked
//! against ([`signatures`]); and the admission jobs that run [`install`] one at a time
//! ([`admission`]). `api::plugins` maps their outcomes to answers.

pub mod admission;
pub mod settings;
pub mod signatures;

use serde_json::json;

use crate::app::AppState;
use crate::audit::audit;
use crate::compat;
use crate::plugin::ProviderInfo;
use crate::plugin::registry::{Swap, UploadError};
use crate::store::records::SourceRecord;
use crate::store::{Read, SOURCES, StoreError};

/// Why a version was not admitted. The version that was serving keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The binary was refused: it did not load, names another provider, breaks stored sources
    /// (and the upload was not forced), or could not be saved.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks the `signature` of `bytes` (see [`signatures`]), then compiles, checks and swaps
/// them in as provider `id` on behalf of `who`: refused when stored sources do not fit the
/// new version, unless `force`; `checking` is called once it is
/// compiled and described, before those checks. An accepted change is audited ([`record`]) and
/// stored for the other replicas (a no-op on redb).
pub async fn install(
    state: &AppState,
    who: &str,
    id: &str,
    bytes: &[u8],
    signature: Option<&str>,
    force: bool,
    checking: impl FnOnce(),
) -> Result<Swap, AdmissionError> {
    let sources: Vec<(String, SourceRecord)> = state.store.read(|r| r.all(SOURCES)).await?;
    let breaks = |info: &ProviderInfo| {
        checking();
        compat::affected(info, &sources)
    };
    let swap = state
        .plugins
        .upload_signed(id, bytes, signature, &state.plugins_dir, breaks, force)
        .await
        .inspect_err(|e| {
            if let UploadError::Plugin(_) | UploadError::Signature(_) = e {
                tracing::warn!(plugin = %id, error = %e, "plugin upload rejected; the loaded version keeps serving");
            }
        })?;
    if swap.changed {
        record(state, who, "upload", &swap).await?;
        crate::replicas::publish_upload(state, &swap.plugin, bytes, signature).await;
    }
    Ok(swap)
}

/// Audits an accepted swap: `plugin.uploaded` for a new provider, `plugin.swapped` when it
/// replaced a version; `via` says how it arrived (`upload` or `file`). Stored sources the new
/// version does not fit (a forced upload, or a file, which nobody could be asked about) are
/// listed in the event and logged.
pub async fn record(state: &AppState, who: &str, via: &str, swap: &Swap) -> Result<(), StoreError> {
    let plugin = &swap.plugin;
    let sources: Vec<(String, SourceRecord)> = state.store.read(|r| r.all(SOURCES)).await?;
    let affected = compat::affected(&plugin.info, &sources);
    for a in &affected {
        tracing::warn!(
            plugin = %plugin.info.id, version = %plugin.info.version, source = %a.id,
            reason = %a.reason, "the swapped-in version does not fit this source; it is not synced until it fits"
        );
    }
    let action = if swap.previous.is_some() {
        "plugin.swapped"
    } else {
        "plugin.uploaded"
    };
    let details = json!({
        "via": via,
        "version": plugin.info.version,
        "digest": plugin.digest,
        "contract": plugin.contract,
        "file": plugin.file.as_ref().map(|f| f.display().to_string()),
        "signed_by": plugin.signer,
        "previous": swap.previous.as_ref().map(|p| json!({"version": p.info.version, "digest": p.digest})),
        "incompatible_sources": affected,
    });
    let (who, target) = (who.to_string(), plugin.info.id.clone());
    state
        .store
        .write(move |w| audit(w, &who, action, &target, details))
        .await
}
