//! The compile cache's bound: for each provider, the compiled artifacts of its current and
//! previous version are kept (the previous one makes a swap back instant); every other
//! artifact is deleted, on each swap or removal and at start-up. A JavaScript or Python
//! version leaves ~35 MB of compiled code, so an unbounded cache grows by that much per upload.
//!
//! Which versions a provider had is kept in `versions.json` in the cache directory (provider
//! id -> digests, newest first), so the previous version survives a restart. Files this host
//! did not write (another engine's artifacts, leftovers of an interrupted write) go too.
//!
//! Off unless [`super::PluginHost::bounded_compile_cache`] turns it on (the service does): a
//! cache directory several hosts share, as the tests' is, must not be pruned by each of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How many versions of each provider keep their compiled artifact.
pub const KEPT_VERSIONS: usize = 2;

const INDEX: &str = "versions.json";

/// The versions whose artifacts are kept, by provider id, newest first.
pub(super) struct Bound {
    dir: PathBuf,
    versions: Mutex<BTreeMap<String, Vec<String>>>,
    /// False until the first [`Bound::prune`]: while the plugins directory loads at start-up,
    /// swaps are recorded but prune nothing (a plugin not loaded yet keeps its artifact).
    pruning: std::sync::atomic::AtomicBool,
}

impl Bound {
    /// The bound of the cache in `dir`, with the versions it recorded before.
    pub(super) fn open(dir: &Path) -> Bound {
        let versions = std::fs::read(dir.join(INDEX))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Bound {
            dir: dir.to_path_buf(),
            versions: Mutex::new(versions),
            pruning: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Records `digest` as the current version of `provider` (the one before becomes the
    /// previous one), then prunes. `artifact` names a digest's file in the cache.
    pub(super) fn swapped(&self, provider: &str, digest: &str, artifact: impl Fn(&str) -> String) {
        let mut versions = self.versions.lock().expect("compile cache lock");
        let list = versions.entry(provider.to_string()).or_default();
        if list.first().map(String::as_str) == Some(digest) {
            return;
        }
        list.retain(|d| d != digest);
        list.insert(0, digest.to_string());
        list.truncate(KEPT_VERSIONS);
        self.save_and_prune(&versions, artifact);
    }

    /// Forgets a removed provider's versions, then prunes.
    pub(super) fn removed(&self, provider: &str, artifact: impl Fn(&str) -> String) {
        let mut versions = self.versions.lock().expect("compile cache lock");
        if versions.remove(provider).is_some() {
            self.save_and_prune(&versions, artifact);
        }
    }

    /// Deletes every file of the cache but the kept versions' artifacts and the index; from
    /// now on every swap and removal prunes too.
    pub(super) fn prune(&self, artifact: impl Fn(&str) -> String) {
        let versions = self.versions.lock().expect("compile cache lock");
        self.pruning
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.save_and_prune(&versions, artifact);
    }

    fn save_and_prune(
        &self,
        versions: &BTreeMap<String, Vec<String>>,
        artifact: impl Fn(&str) -> String,
    ) {
        if let Err(e) = save(&self.dir.join(INDEX), versions) {
            // Without the index, a restart could not tell the previous versions: keep all.
            tracing::warn!(error = %e, "cannot write the compile cache index; not pruning");
            return;
        }
        if !self.pruning.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let mut keep: Vec<String> = versions.values().flatten().map(|d| artifact(d)).collect();
        keep.push(INDEX.into());
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if keep.contains(&name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(file = %name, "compile cache: deleted an artifact no kept version uses")
                }
                Err(e) => tracing::warn!(file = %name, error = %e, "compile cache: cannot delete"),
            }
        }
    }
}

fn save(path: &Path, versions: &BTreeMap<String, Vec<String>>) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(versions)?)?;
    std::fs::rename(&tmp, path)
}
