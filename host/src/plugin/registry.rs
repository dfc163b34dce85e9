//! Registry operations: per-version call counters, hot swap (by upload or by a file change in
//! the plugins directory) and removal.
//!
//! A new binary is compiled and checked by [`PluginHost::prepare`] (a component, a supported
//! contract major, a valid `describe`) before the one atomic swap in
//! [`PluginHost::replace`]; anything that fails leaves the current version serving. Calls
//! already running hold their own `Arc` of the version they started on and finish on it.
//! Registry changes are serialised by one lock; calls never take it. A provider id belongs to
//! the first file that claims it: another file claiming it is refused ([`PluginHost::check_claim`]).
//!
//! This module knows files and wasmtime, not the store: whoever drives it (the API) audits.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{LoadedPlugin, PluginError, PluginHost, ProviderError};
use crate::plugin_registry::signatures::{self, SignatureError, Signer, SigningPolicy};

/// Counters of the calls into one plugin version. Cheap: a few relaxed atomics per call.
#[derive(Debug, Default)]
pub struct CallStats {
    calls: AtomicU64,
    provider_errors: AtomicU64,
    faults: AtomicU64,
    in_flight: AtomicU64,
}

/// A snapshot of [`CallStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CallCounts {
    /// Calls started.
    pub calls: u64,
    /// Calls that answered a value.
    pub ok: u64,
    /// Calls that answered a contract error on purpose (bad key, unauthorized, ...).
    pub provider_errors: u64,
    /// Calls where the plugin misbehaved: trap, CPU or memory limit, timeout, malformed output.
    pub faults: u64,
    /// Calls running now.
    pub in_flight: u64,
}

/// Marks one call as running until dropped.
pub(super) struct InFlight<'a>(&'a CallStats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl CallStats {
    /// Counts a call as started and running until the guard drops.
    pub(super) fn start(&self) -> InFlight<'_> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Counts a contract error the plugin answered; converts it.
    pub(super) fn provider_error(&self, e: impl Into<ProviderError>) -> ProviderError {
        self.provider_errors.fetch_add(1, Ordering::Relaxed);
        e.into()
    }

    /// Counts a fault if `result` is one; passes it through.
    pub(super) fn malformed<T>(&self, result: Result<T, PluginError>) -> Result<T, PluginError> {
        if let Err(e) = &result
            && e.is_fault()
        {
            self.faults.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// The counters now. `ok` is derived, so it is exact once no call is running.
    pub fn counts(&self) -> CallCounts {
        let calls = self.calls.load(Ordering::Relaxed);
        let provider_errors = self.provider_errors.load(Ordering::Relaxed);
        let faults = self.faults.load(Ordering::Relaxed);
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        CallCounts {
            calls,
            ok: calls
                .saturating_sub(provider_errors)
                .saturating_sub(faults)
                .saturating_sub(in_flight),
            provider_errors,
            faults,
            in_flight,
        }
    }
}

/// How plugins were compiled since the host started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CompileCounts {
    /// Components compiled from their `.wasm` (slow: ~0.1-1 s each, tens of seconds for a
    /// Python component).
    pub compiled: u64,
    /// Components loaded from the on-disk compile cache instead (about a millisecond).
    pub from_cache: u64,
}

/// The outcome of an upload or a file change that was accepted.
#[derive(Clone, Debug)]
pub struct Swap {
    /// The version now serving.
    pub plugin: Arc<LoadedPlugin>,
    /// The version it replaced, if the provider was loaded.
    pub previous: Option<Arc<LoadedPlugin>>,
    /// False when the binary was already the current version (nothing was swapped).
    pub changed: bool,
}

/// Why an upload was refused. The current version keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The binary did not load (not a component, unsupported contract, bad `describe`, ...).
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// `describe` names another provider than the one uploaded to.
    #[error(
        "the plugin describes itself as {found:?}, not {expected:?}; upload it to /plugins/{found}"
    )]
    IdMismatch {
        /// The id in the request.
        expected: String,
        /// The id `describe` answered.
        found: String,
    },
    /// The new version would break stored sources (see `crate::compat`) and the upload was
    /// not forced; each entry names one source and why.
    #[error("{} source(s) do not fit this version", .0.len())]
    Incompatible(Vec<crate::compat::Affected>),
    /// The signature is missing, malformed, by a key the operator does not trust, or does not
    /// match the bytes (see [`signatures`]); checked before anything compiles the binary.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Saving the file to the plugins directory failed.
    #[error("cannot save the plugin to {path}: {error}")]
    Save {
        /// Where it was going.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// The largest plugin binaries admitted: for every plugin, and per provider id where an admin
/// set one (`PUT /api/v1/plugin-settings`). Changed at run time; the start-up value is the
/// operator's [`super::Limits::max_plugin_bytes`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SizeLimits {
    /// For every plugin without a limit of its own, in bytes.
    pub max_plugin_bytes: usize,
    /// Per provider id, in bytes.
    pub per_plugin: BTreeMap<String, usize>,
}

impl SizeLimits {
    /// `max_plugin_bytes` for all, nothing per plugin.
    pub fn new(max_plugin_bytes: usize) -> SizeLimits {
        SizeLimits {
            max_plugin_bytes,
            per_plugin: BTreeMap::new(),
        }
    }

    /// The limit of provider `id`.
    pub fn for_plugin(&self, id: &str) -> usize {
        self.per_plugin
            .get(id)
            .copied()
            .unwrap_or(self.max_plugin_bytes)
    }

    /// The largest of all limits: what a binary whose provider is not known yet may be.
    fn ceiling(&self) -> usize {
        let most = self.per_plugin.values().copied().max().unwrap_or(0);
        most.max(self.max_plugin_bytes)
    }
}

/// A file of the plugins directory that was refused and does not serve, as the listing shows
/// it until the file loads or is gone.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct FileProblem {
    /// The file.
    pub file: String,
    /// Why it was refused.
    pub error: String,
    /// When (ms since the Unix epoch).
    pub at: u64,
}

impl PluginHost {
    /// The signing policy in force: the trusted vendor keys, and whether a signature is
    /// required.
    pub fn signing(&self) -> Arc<SigningPolicy> {
        self.signing.read().expect("signing lock").clone()
    }

    /// Sets the signing policy for every binary admitted from now on (uploads and files);
    /// loaded plugins stay. Set it before loading the plugins directory.
    pub fn set_signing(&self, policy: SigningPolicy) {
        *self.signing.write().expect("signing lock") = Arc::new(policy);
    }

    /// Checks the signature beside the plugin file `path` (see [`signatures::signature_path`]).
    pub(super) fn check_file_signature(
        &self,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Option<Signer>, PluginError> {
        self.signing()
            .check_file(path, bytes)
            .map_err(PluginError::Rejected)
    }

    /// The files of the plugins directory refused at start-up or by the watcher, which do not
    /// serve, by file name.
    pub fn file_problems(&self) -> Vec<FileProblem> {
        let problems = self.file_problems.lock().expect("file problems lock");
        problems.values().cloned().collect()
    }

    /// Remembers why the file `path` was refused, or forgets it once it loaded.
    pub(super) fn note_file_outcome(&self, path: &Path, error: Option<&PluginError>) {
        let mut problems = self.file_problems.lock().expect("file problems lock");
        match error {
            Some(e) => {
                let at = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let problem = FileProblem {
                    file: path.display().to_string(),
                    error: e.to_string(),
                    at,
                };
                problems.insert(path.to_path_buf(), problem);
            }
            None => {
                problems.remove(path);
            }
        }
    }

    /// Forgets the problems of files no longer in the directory.
    fn forget_problems_except(&self, present: &HashMap<PathBuf, FileState>) {
        let mut problems = self.file_problems.lock().expect("file problems lock");
        problems.retain(|path, _| present.contains_key(path));
    }

    /// The size limits in force.
    pub fn size_limits(&self) -> SizeLimits {
        self.size_limits.read().expect("size limits lock").clone()
    }

    /// Changes the size limits for every binary admitted from now on (uploads and files);
    /// loaded plugins stay.
    pub fn set_size_limits(&self, limits: SizeLimits) {
        *self.size_limits.write().expect("size limits lock") = limits;
    }

    /// Refuses a binary of `len` bytes over the limit of provider `id`, or, before its id is
    /// known, over the largest limit.
    pub(super) fn check_size(&self, len: usize, id: Option<&str>) -> Result<(), PluginError> {
        let limits = self.size_limits.read().expect("size limits lock");
        let limit = id.map_or_else(|| limits.ceiling(), |id| limits.for_plugin(id));
        if len <= limit {
            return Ok(());
        }
        let whose = id.map_or(String::new(), |id| format!(" of {id:?}"));
        Err(PluginError::Rejected(format!(
            "the plugin is {len} bytes; the limit{whose} is {limit} ({})",
            super::PLUGIN_SIZE_SETTING
        )))
    }

    /// How many components were compiled, and how many came from the compile cache.
    pub fn compile_counts(&self) -> CompileCounts {
        CompileCounts {
            compiled: self.compiles.load(Ordering::Relaxed),
            from_cache: self.cache_hits.load(Ordering::Relaxed),
        }
    }

    /// [`PluginHost::upload_signed`] without a signature.
    pub async fn upload(
        &self,
        expected_id: &str,
        bytes: &[u8],
        dir: &Path,
        breaks: impl FnOnce(&super::ProviderInfo) -> Vec<crate::compat::Affected>,
        force: bool,
    ) -> Result<Swap, UploadError> {
        self.upload_signed(expected_id, bytes, None, dir, breaks, force)
            .await
    }

    /// Installs an uploaded binary as provider `expected_id`: checks its `signature` (the text
    /// of its `.minisig`) against the signing policy, compiles and checks it, asks `breaks`
    /// which stored sources its `describe` would break (refused unless `force`), saves it to
    /// `dir` with its signature beside it (atomically, so it survives a restart), then swaps
    /// it in. The file is the one the current version was loaded from when that is in `dir`,
    /// else `<id>.wasm`. On any error nothing changes.
    pub async fn upload_signed(
        &self,
        expected_id: &str,
        bytes: &[u8],
        signature: Option<&str>,
        dir: &Path,
        breaks: impl FnOnce(&super::ProviderInfo) -> Vec<crate::compat::Affected>,
        force: bool,
    ) -> Result<Swap, UploadError> {
        let _guard = self.swap_lock.lock().await;
        let signer = self.signing().check(bytes, signature)?;
        let mut plugin = self.prepare(bytes, "upload".into()).await?;
        plugin.signer = signer;
        if plugin.info.id != expected_id {
            return Err(UploadError::IdMismatch {
                expected: expected_id.into(),
                found: plugin.info.id,
            });
        }
        let current = self.get(expected_id).ok();
        if let Some(current) = current.as_ref().filter(|c| c.digest == plugin.digest) {
            return Ok(Swap {
                plugin: current.clone(),
                previous: None,
                changed: false,
            });
        }
        let broken = breaks(&plugin.info);
        if !broken.is_empty() && !force {
            return Err(UploadError::Incompatible(broken));
        }
        let path = current
            .and_then(|c| c.file.clone())
            .filter(|f| same_dir(f, dir))
            .unwrap_or_else(|| dir.join(format!("{expected_id}.wasm")));
        let (target, owned) = (path.clone(), bytes.to_vec());
        let signature = signature.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            write_signature(&target, signature.as_deref())?;
            write_atomically(&target, &owned)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
        .map_err(|error| UploadError::Save {
            path: path.clone(),
            error,
        })?;
        plugin.file = Some(path);
        let plugin = Arc::new(plugin);
        let previous = self.replace(plugin.clone());
        tracing::info!(
            plugin = %plugin.info.id, version = %plugin.info.version, digest = %plugin.digest,
            previous = ?previous.as_ref().map(|p| &p.info.version), "plugin uploaded"
        );
        Ok(Swap {
            plugin,
            previous,
            changed: true,
        })
    }

    /// Unloads a provider and deletes its file from `dir` (so it stays gone after a restart);
    /// calls already running finish on it. `None` when it was not loaded.
    pub async fn unload(
        &self,
        provider: &str,
        dir: &Path,
    ) -> Result<Option<Arc<LoadedPlugin>>, std::io::Error> {
        let _guard = self.swap_lock.lock().await;
        let Ok(current) = self.get(provider) else {
            return Ok(None);
        };
        if let Some(file) = current.file.as_ref().filter(|f| same_dir(f, dir)) {
            match std::fs::remove_file(file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            write_signature(file, None)?;
        }
        let removed = self.remove(provider);
        tracing::info!(plugin = %provider, version = %current.info.version, "plugin removed");
        Ok(removed)
    }

    /// Refuses a plugin file that claims provider `id` while another file serves it: which
    /// file won would depend on file names and timing. The first claimant keeps the id; a
    /// version is swapped by replacing that same file or by an upload through the API.
    pub(super) fn check_claim(&self, id: &str, path: &Path) -> Result<(), PluginError> {
        let Ok(current) = self.get(id) else {
            return Ok(());
        };
        match &current.file {
            Some(serving) if !same_file(serving, path) => Err(PluginError::Rejected(format!(
                "provider {id:?} is already served by {}; a second file cannot take it over \
                 (to swap versions, replace that file or upload through the API)",
                serving.display()
            ))),
            _ => Ok(()),
        }
    }

    /// Loads a changed file of the plugins directory, unless its binary is already loaded.
    /// `Ok(None)`: nothing to do.
    async fn load_changed(&self, path: &Path) -> Result<Option<Swap>, PluginError> {
        let _guard = self.swap_lock.lock().await;
        let bytes = std::fs::read(path)
            .map_err(|e| PluginError::Rejected(format!("cannot read {}: {e}", path.display())))?;
        let digest = hex::encode(Sha256::digest(&bytes));
        if self.list().iter().any(|p| p.digest == digest) {
            return Ok(None);
        }
        let signer = self.check_file_signature(path, &bytes)?;
        let mut plugin = self.prepare(&bytes, path.display().to_string()).await?;
        self.check_claim(&plugin.info.id, path)?;
        plugin.file = Some(path.to_path_buf());
        plugin.signer = signer;
        let plugin = Arc::new(plugin);
        let previous = self.replace(plugin.clone());
        Ok(Some(Swap {
            plugin,
            previous,
            changed: true,
        }))
    }
}

/// Watches `dir` for new or changed `*.wasm` files, polling every `every` (no dependency, no
/// inotify limits). A changed file is loaded once it has held still for one interval (a copy
/// in progress keeps changing, so a half-written file is never loaded; writing to a temporary
/// name and renaming is instant), then like an upload: compiled, checked, swapped in; a bad
/// file is logged and the loaded version keeps serving. Deleting a file does not unload a running plugin (use the API's `DELETE`, which
/// checks for sources first). Each accepted swap is passed to `on_swap`. Files present when
/// the watcher starts count as loaded (`load_dir` ran before).
pub fn watch_dir<F, Fut>(
    host: Arc<PluginHost>,
    dir: PathBuf,
    every: Duration,
    on_swap: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(Swap) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let mut seen = scan(&dir);
    // Changed files and their state at the last scan, until they hold still.
    let mut settling: HashMap<PathBuf, FileState> = HashMap::new();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let now = scan(&dir);
            settling.retain(|path, _| now.contains_key(path));
            for (path, state) in &now {
                if seen.get(path) == Some(state) {
                    settling.remove(path);
                    continue;
                }
                if settling.insert(path.clone(), *state) != Some(*state) {
                    continue;
                }
                settling.remove(path);
                seen.insert(path.clone(), *state);
                let loaded = host.load_changed(path).await;
                host.note_file_outcome(path, loaded.as_ref().err());
                match loaded {
                    Ok(Some(swap)) => {
                        tracing::info!(
                            plugin = %swap.plugin.info.id, version = %swap.plugin.info.version,
                            previous = ?swap.previous.as_ref().map(|p| &p.info.version),
                            path = %path.display(), "plugin file changed; swapped in"
                        );
                        on_swap(swap).await;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(
                        path = %path.display(), error = %e,
                        "plugin file rejected; the loaded version keeps serving"
                    ),
                }
            }
            seen.retain(|path, _| now.contains_key(path));
            host.forget_problems_except(&now);
        }
    })
}

/// What identifies a file's content without reading it: modification time, size, inode; and
/// the same of its signature file, if there is one (a signature put beside a refused file
/// retries it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileState {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
    signature: Option<(Option<SystemTime>, u64, u64)>,
}

fn scan(dir: &Path) -> HashMap<PathBuf, FileState> {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "wasm")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .filter_map(|p| {
            let meta = std::fs::metadata(&p).ok()?;
            meta.is_file().then(|| {
                let signature = std::fs::metadata(signatures::signature_path(&p))
                    .ok()
                    .map(|m| (m.modified().ok(), m.len(), m.ino()));
                let state = FileState {
                    modified: meta.modified().ok(),
                    len: meta.len(),
                    inode: meta.ino(),
                    signature,
                };
                (p, state)
            })
        })
        .collect()
}

fn same_file(a: &Path, b: &Path) -> bool {
    canonical(a) == canonical(b)
}

fn same_dir(file: &Path, dir: &Path) -> bool {
    file.parent().map(canonical) == Some(canonical(dir))
}

/// The path with links and `..` resolved, or as given when it does not exist.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Writes the signature of the plugin file `wasm` beside it, or removes a stale one when the
/// new version has none (it would not match).
fn write_signature(wasm: &Path, signature: Option<&str>) -> std::io::Result<()> {
    let path = signatures::signature_path(wasm);
    match signature {
        Some(text) => write_atomically(&path, text.as_bytes()),
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

/// Writes `bytes` to a hidden temporary file beside `path`, syncs it, then renames it over
/// `path`: readers (and the watcher) see the old file or the whole new one, never a part.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
