//! The plugin host: the only code that knows wasmtime.
//!
//! [`PluginHost`] keeps a registry of loaded plugins (provider id -> [`LoadedPlugin`]) and runs
//! every call in a **fresh instance** with a memory cap, a CPU deadline and a wall-clock
//! timeout; the guest gets WASI with nothing granted and reaches the network only through
//! [`egress`]. A trap, a timeout, a blown memory cap or malformed output is a [`PluginError`]
//! for that call; the host keeps serving.
//!
//! Replacing a plugin swaps one `Arc` in the registry: calls already running keep the old
//! version alive until they finish, new calls get the new one.

pub mod bounds;
mod budget;
pub mod cache;
pub mod check;
mod conditional;
pub mod egress;
mod engine;
pub mod headroom;
pub mod imports;
pub mod model;
mod ready;
pub mod redact;
pub mod registry;
mod snapshot;
#[cfg(test)]
mod test_plugins;
mod tiers;
mod v1;

use schemars::JsonSchema;
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use egress::Egress;
pub use headroom::Headroom;
pub use model::{
    CommentInfo, CommentsInfo, ConnectionInfo, Event, EventChange, EventScheme, Issue,
    ProviderError, ProviderInfo, SourceConfig,
};
use redact::{Redact, Redactor};
pub use registry::{CallCounts, CallStats, CompileCounts};
pub use tiers::Tier;

/// The contract versions this host runs, for listings and error messages.
pub const SUPPORTED_CONTRACTS: &[&str] = &["1.x"];

/// Where the plugin size limit is raised, for the messages that refuse a plugin.
pub const PLUGIN_SIZE_SETTING: &str = "the admin setting max_plugin_bytes, for all plugins \
     or per plugin: PUT /api/v1/plugin-settings; its start-up default is the operator's \
     --max-plugin-bytes, INTEGRATION_MAX_PLUGIN_BYTES or limits.max_plugin_bytes in the config file";

/// Per-call resource limits. Defaults suit a small service; all are configurable.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Cap on each linear memory, in bytes (default 64 MiB).
    pub memory_bytes: usize,
    /// Guest CPU time per call (default 2 s), enforced by epoch interruption.
    pub cpu_time: Duration,
    /// Wall-clock time per call including HTTP (default 15 s).
    pub wall_time: Duration,
    /// HTTP requests per call (default 50).
    pub max_requests: u32,
    /// Bytes per HTTP response body (default 4 MiB).
    pub max_response_bytes: usize,
    /// Calls running at once; more wait for a slot (default 64).
    pub max_concurrent_calls: u32,
    /// Calls into one plugin running at once; more wait in that plugin's queue, holding no
    /// host slot (default 16). See [`budget`].
    pub max_calls_per_plugin: u32,
    /// Calls on behalf of one stored source running at once; more wait in that source's
    /// queue (default 8).
    pub max_calls_per_source: u32,
    /// Linear memory all running calls may hold together, in bytes (default 1 GiB); one
    /// plugin's calls get the same share of it as of the call slots, at least
    /// `memory_bytes`. A growth past it traps that call. The host's own state per running
    /// call (stacks, instance data: about 150 KiB) comes on top.
    pub memory_budget_bytes: usize,
    /// Largest plugin binary accepted, in bytes (default 32 MiB, which admits the ~18.5 MB
    /// Python example): the default of the admin's setting, see [`registry::SizeLimits`].
    pub max_plugin_bytes: usize,
    /// Instances of each loaded version made ahead, off the request path, for its next calls
    /// (default 2; 0: each call instantiates on its own path; at most
    /// [`MAX_INSTANCES_READY`]). Each still serves one call only: see [`ready`].
    pub instances_ready: u32,
}

/// The most instances a loaded version keeps ready ([`Limits::instances_ready`]).
pub const MAX_INSTANCES_READY: u32 = 8;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            cpu_time: Duration::from_secs(2),
            wall_time: Duration::from_secs(15),
            max_requests: 50,
            max_response_bytes: 4 << 20,
            max_concurrent_calls: 64,
            max_calls_per_plugin: 16,
            max_calls_per_source: 8,
            memory_budget_bytes: 1 << 30,
            max_plugin_bytes: 32 << 20,
            instances_ready: 2,
        }
    }
}

/// Why a plugin call or load failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// No plugin with that provider id is loaded.
    #[error("no plugin is loaded for provider {0:?}")]
    NotLoaded(String),
    /// A binary was refused at load time (not a component, wrong world, bad `describe`, ...).
    #[error("plugin rejected: {0}")]
    Rejected(String),
    /// The guest used up its CPU time.
    #[error("the plugin used more than its CPU time limit ({0:?}) and was stopped")]
    CpuLimit(Duration),
    /// The whole call (HTTP included) took too long; `waiting_for` names the tracker
    /// (provider name and origin) whose answer the call was waiting for, if it was.
    #[error("{}", timeout_message(*limit, waiting_for.as_deref()))]
    Timeout {
        /// The wall-clock limit.
        limit: Duration,
        /// The tracker a request was waiting on when time ran out.
        waiting_for: Option<String>,
    },
    /// The guest tried to grow its memory past the cap.
    #[error("the plugin exceeded its memory limit ({0} bytes) and was stopped")]
    MemoryLimit(usize),
    /// The guest tried to grow its memory past what the memory budget had left.
    #[error("the plugin call was stopped: {0}")]
    MemoryBudget(String),
    /// The call waited in a queue (of its plugin, its source or the host) for longer than
    /// its wall-clock limit and did not run.
    #[error("the plugin call did not run: {0}")]
    Busy(String),
    /// The guest trapped (panic, unreachable, out-of-bounds access, ...).
    #[error("the plugin crashed: {0}")]
    Trap(String),
    /// The guest answered something the contract forbids.
    #[error("the plugin returned malformed output: {0}")]
    Malformed(String),
    /// The guest answered with a contract error (bad key, unauthorized, ...).
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl PluginError {
    /// A stable kebab-case code for APIs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotLoaded(_) => "plugin-missing",
            Self::Rejected(_) => "plugin-rejected",
            Self::CpuLimit(_) => "plugin-cpu-limit",
            Self::Timeout { .. } => "plugin-timeout",
            Self::MemoryLimit(_) => "plugin-memory-limit",
            Self::MemoryBudget(_) => "plugin-memory-budget",
            Self::Busy(_) => "plugin-busy",
            Self::Trap(_) => "plugin-trap",
            Self::Malformed(_) => "plugin-malformed-output",
            Self::Provider(e) => e.code(),
        }
    }

    /// True when the plugin itself misbehaved (as opposed to answering with an error, or
    /// not getting to run).
    pub fn is_fault(&self) -> bool {
        !matches!(self, Self::Provider(_) | Self::NotLoaded(_) | Self::Busy(_))
    }
}

/// The store data of one call: WASI (nothing granted), limits, and the egress state.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: budget::Meter,
    /// What the HTTP import sends through; for an offline call, the operation's name.
    egress: Result<Egress, &'static str>,
    plugin_id: Arc<str>,
    /// Removes the call's secrets from the guest's log lines.
    redactor: Arc<Redactor>,
    log_budget: usize,
    cpu_ticks: u64,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl CallState {
    /// The state of a call into `plugin_id`: WASI with nothing granted but capped stdio
    /// `pipes`, the per-call limits metered by `meter`, and `egress`. No redactor yet.
    fn new(
        limits: &Limits,
        meter: impl FnOnce(wasmtime::StoreLimits) -> budget::Meter,
        egress: Result<Egress, &'static str>,
        plugin_id: &str,
        pipes: &Pipes,
    ) -> CallState {
        // No env, no args, no preopened directories, no sockets: only capped stdio pipes.
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stdout(pipes.stdout.clone())
            .stderr(pipes.stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .instances(16)
            .tables(32)
            .memories(8)
            .trap_on_grow_failure(true)
            .build();
        CallState {
            wasi,
            table: ResourceTable::new(),
            limits: meter(store_limits),
            egress,
            plugin_id: Arc::from(plugin_id),
            redactor: Arc::default(),
            log_budget: LOG_BUDGET,
            cpu_ticks: 0,
        }
    }

    /// Writes a guest log line to the host log, tagged, within the per-call budget.
    fn guest_log(&mut self, level: tracing::Level, message: &str) {
        if self.log_budget == 0 {
            return;
        }
        let line: String = message.chars().take(self.log_budget.min(2048)).collect();
        self.log_budget = self.log_budget.saturating_sub(line.len().max(1));
        let line = self.redactor.text(line);
        match level {
            tracing::Level::ERROR => tracing::error!(plugin = %self.plugin_id, "{line}"),
            tracing::Level::WARN => tracing::warn!(plugin = %self.plugin_id, "{line}"),
            tracing::Level::INFO => tracing::info!(plugin = %self.plugin_id, "{line}"),
            _ => tracing::debug!(plugin = %self.plugin_id, "{line}"),
        }
    }
}

/// What the host compiles from an uploaded binary, in the compile cache's artifact names: a
/// change here (large binaries now compiled from their warm-up snapshot, see [`snapshot`])
/// makes a host ignore the artifacts an older one cached under the same digest.
const ARTIFACT_SCHEME: &[u8] = b"large binaries from their warm-up snapshot";

/// Bytes of log lines one call may write to the host log.
const LOG_BUDGET: usize = 16 << 10;

/// The stdout and stderr of one call, captured (up to 16 KiB each) and logged after it.
struct Pipes {
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl Pipes {
    fn new() -> Pipes {
        Pipes {
            stdout: MemoryOutputPipe::new(16 << 10),
            stderr: MemoryOutputPipe::new(16 << 10),
        }
    }
}

/// The store of one call into `plugin_id` on `engine`: `state`, its memory limiter, and its
/// CPU deadline (the call's budget of epoch ticks, and a turn at each tick).
fn call_store(
    engine: &Engine,
    state: CallState,
    budget: &budget::Budget,
    limits: &Limits,
    plugin_id: &str,
) -> Store<CallState> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    // Every tick the guest spends running counts against its CPU budget; between ticks
    // it yields to tokio so one busy guest cannot hold a worker thread.
    let budget_ticks = (limits.cpu_time.as_millis() / engine::EPOCH_TICK.as_millis()).max(1) as u64;
    // Past a tick, it also takes turns with the plugin's other calls (see `budget`).
    let turn = budget.turn(plugin_id, engine::EPOCH_TICK);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut ctx| {
        let state = ctx.data_mut();
        state.cpu_ticks += 1;
        if state.cpu_ticks > budget_ticks {
            Ok(wasmtime::UpdateDeadline::Interrupt)
        } else {
            Ok(wasmtime::UpdateDeadline::YieldCustom(1, turn.next()))
        }
    });
    store
}

/// One loaded plugin version.
pub struct LoadedPlugin {
    /// What `describe` said.
    pub info: ProviderInfo,
    /// The contract version it was built against, e.g. `1.0.0`.
    pub contract: String,
    /// sha-256 of the `.wasm`, hex.
    pub digest: String,
    /// When it was loaded.
    pub loaded_at: SystemTime,
    /// Where it came from (a path or "upload").
    pub origin: String,
    /// The file in the plugins directory that holds this version, when there is one (set by
    /// [`PluginHost::load_file`] and by uploads, which are saved there).
    pub file: Option<PathBuf>,
    /// Size of the `.wasm`, in bytes.
    pub size_bytes: usize,
    /// True when the compiled code came from the on-disk compile cache.
    pub from_cache: bool,
    /// How long compiling (or loading from the cache), linking and `describe` took.
    pub prepare_time: Duration,
    /// Calls into this version and how they ended.
    pub stats: CallStats,
    /// The compiled code calls run: the baseline tier's until the optimised code replaces it
    /// (see [`tiers`]).
    code: arc_swap::ArcSwap<tiers::Code>,
    /// The binary, while the optimised compile of a baseline version has not started.
    unoptimised: Mutex<Option<Arc<[u8]>>>,
    /// Why the optimised compile failed, if it did (the baseline code keeps serving).
    optimise_error: OnceLock<String>,
    /// Who signed this version, when its signature was checked against a trusted key (see
    /// [`crate::plugin_registry::signatures`]); `None`: unsigned.
    pub signer: Option<crate::plugin_registry::signatures::Signer>,
    /// Instances made ahead for this version's next calls (see [`ready`]).
    ready: Arc<ready::Ready>,
}

/// A capability a plugin may lack, for [`LoadedPlugin::unsupported`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// "Add comments": `comments` (contract 1.1).
    AddComments,
    /// "Process webhooks": `events` (contract 1.1).
    ProcessWebhooks,
}

impl LoadedPlugin {
    /// Why this plugin cannot serve `capability`, or none when it can: "not supported by
    /// this plugin (contract 1.0)" when it was built before the contract had it, "not
    /// supported by this provider" when it has the export but says it cannot.
    pub fn unsupported(&self, capability: Capability) -> Option<String> {
        let exports = &self.code.load().exports;
        let (exported, described) = match capability {
            Capability::AddComments => (exports.has_comments(), self.info.comments.is_some()),
            Capability::ProcessWebhooks => (exports.has_events(), !self.info.events.is_empty()),
        };
        if !exported {
            let minor = self
                .contract
                .rsplit_once('.')
                .map_or(&*self.contract, |(mm, _)| mm);
            Some(format!("not supported by this plugin (contract {minor})"))
        } else if !described {
            Some("not supported by this provider".to_string())
        } else {
            None
        }
    }

    /// Which capabilities (named as a source stores them, e.g. `add_comments`) this plugin
    /// serves, and why not the others.
    pub fn capabilities(&self) -> CapabilitySupport {
        let mut support = CapabilitySupport {
            supported: vec!["read_issue_details", "create_issues"],
            unsupported: std::collections::BTreeMap::new(),
        };
        for (name, capability) in [
            ("add_comments", Capability::AddComments),
            ("process_webhooks", Capability::ProcessWebhooks),
        ] {
            match self.unsupported(capability) {
                None => support.supported.push(name),
                Some(why) => {
                    support.unsupported.insert(name, why);
                }
            }
        }
        support
    }
}

/// What [`LoadedPlugin::capabilities`] answers, as listings show it.
#[derive(Clone, Debug, Default, serde::Serialize, JsonSchema)]
pub struct CapabilitySupport {
    /// The capabilities the plugin serves.
    pub supported: Vec<&'static str>,
    /// The others, each with the reason, e.g. "not supported by this plugin (contract 1.0)".
    pub unsupported: std::collections::BTreeMap<&'static str, String>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("id", &self.info.id)
            .field("version", &self.info.version)
            .field("contract", &self.contract)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// What a call may reach over HTTP.
#[derive(Clone, Copy)]
enum Network<'a> {
    /// Nothing: the contract says this operation (`describe`, `normalize-key`, `issue-url`,
    /// `create-url`, and since 1.1 `describe-comments`, `describe-events`, `parse-event`) must
    /// not use the network, and the host holds it to that.
    Offline(&'static str),
    /// What this source allows (see [`egress`]), with the call's secrets redacted from all
    /// that comes back (see [`redact`]).
    Source(&'a SourceConfig, &'a Arc<Redactor>),
}

impl<'a> Network<'a> {
    /// The stored source a call is made for, which has its own queue (see [`budget`]).
    fn source_id(&self) -> Option<&'a str> {
        match self {
            Network::Offline(_) => None,
            Network::Source(source, _) => source.source_id.as_deref(),
        }
    }
}

type CallFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

/// Loads plugins and runs calls into them. Cheap to share behind an `Arc`.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<CallState>,
    http: egress::Clients,
    limits: Limits,
    budget: Arc<budget::Budget>,
    /// The instances all loaded versions keep ready (see [`ready`]).
    ready_count: ready::Count,
    cache_dir: Option<PathBuf>,
    plugins: RwLock<HashMap<String, Arc<LoadedPlugin>>>,
    /// The rate-limit headroom trackers last announced, per stored source.
    headroom: headroom::Board,
    /// Components compiled from source, and loaded from the compile cache instead.
    compiles: AtomicU64,
    cache_hits: AtomicU64,
    /// Serialises registry changes made by uploads, removals and the directory watcher
    /// (calls never take it).
    swap_lock: tokio::sync::Mutex<()>,
    /// The largest binaries admitted, which an admin may change at run time.
    size_limits: RwLock<registry::SizeLimits>,
    /// The trusted vendor keys, and whether a signature is required (checked before compiling).
    signing: RwLock<Arc<crate::plugin_registry::signatures::SigningPolicy>>,
    /// The latest refusal of each file in the plugins directory that does not serve.
    file_problems: std::sync::Mutex<std::collections::BTreeMap<PathBuf, registry::FileProblem>>,
    /// Keeps the compile cache to the current and previous version of each plugin, when on.
    cache_bound: Option<cache::Bound>,
    /// The baseline compiler large plugins are compiled by first (see [`tiers`]).
    tiers: tiers::Tiers,
}

impl PluginHost {
    /// A host with no plugins. `cache_dir`, if given, keeps compiled artifacts keyed by the
    /// plugin's digest and the engine's compatibility hash, so restarts skip compilation.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> anyhow::Result<PluginHost> {
        let engine = engine::build(&limits)?;
        let mut linker = Linker::new(&engine);
        link_imports(&mut linker)?;
        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir)?;
        }
        Ok(PluginHost {
            size_limits: RwLock::new(registry::SizeLimits::new(limits.max_plugin_bytes)),
            cache_bound: None,
            signing: RwLock::default(),
            file_problems: std::sync::Mutex::default(),
            budget: Arc::new(budget::Budget::new(&limits)),
            ready_count: ready::Count::default(),
            http: egress::Clients::new(false)?,
            engine,
            linker,
            limits,
            cache_dir,
            plugins: RwLock::new(HashMap::new()),
            headroom: headroom::Board::default(),
            compiles: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            swap_lock: tokio::sync::Mutex::new(()),
            tiers: tiers::Tiers::new(tiers::DEFAULT_MIN_BYTES, link_imports),
        })
    }

    /// This host treating binaries of at least `min_bytes` as large (default
    /// [`tiers::DEFAULT_MIN_BYTES`]; `usize::MAX`: none): compiled with the baseline compiler
    /// first when not in the compile cache, see [`tiers`], and warmed up, see [`snapshot`]
    /// and [`ready`].
    pub fn baseline_tier_from(mut self, min_bytes: usize) -> PluginHost {
        self.tiers.min_bytes = min_bytes;
        self
    }

    /// This host with origins the admin named allowed to reach loopback and link-local
    /// addresses too (the operator's `--allow-loopback-targets`); off by default, see
    /// [`egress::Reach`].
    pub fn allow_loopback_targets(mut self, allow: bool) -> anyhow::Result<PluginHost> {
        self.http = egress::Clients::new(allow)?;
        Ok(self)
    }

    /// This host keeping its compile cache to the current and previous version of each
    /// plugin (see [`cache`]); the service turns it on. Call [`PluginHost::prune_compile_cache`]
    /// once the plugins directory is loaded.
    pub fn bounded_compile_cache(mut self) -> PluginHost {
        self.cache_bound = self.cache_dir.as_deref().map(cache::Bound::open);
        self
    }

    /// Deletes the compile cache's artifacts of versions that are neither the current nor the
    /// previous one of a plugin; from now on each swap and removal does too. A no-op unless
    /// [`PluginHost::bounded_compile_cache`].
    pub fn prune_compile_cache(&self) {
        if let Some(bound) = &self.cache_bound {
            bound.prune(|d| self.artifact_name(d));
        }
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bytes of linear memory the calls running now hold together, charged against
    /// [`Limits::memory_budget_bytes`].
    pub fn memory_in_use(&self) -> usize {
        self.budget.memory_in_use()
    }

    /// The rate-limit headroom the tracker of `source_id` last announced, read from the
    /// response headers of any call made for it (see [`headroom`]).
    pub fn headroom(&self, source_id: &str) -> Option<Headroom> {
        self.headroom.get(source_id)
    }

    /// The rate-limit headroom of every source whose tracker announced one, by source id.
    pub fn all_headroom(&self) -> Vec<(String, Headroom)> {
        self.headroom.all()
    }

    /// Forgets what calls learnt of a source: it was deleted, or now points at another
    /// tracker or account.
    pub fn forget_source(&self, source_id: &str) {
        self.headroom.forget(source_id);
        self.http.forget(source_id);
    }

    /// Loads every `*.wasm` in `dir`; returns each file with its outcome. A bad file is
    /// reported and skipped; the others load.
    pub async fn load_dir(
        &self,
        dir: &Path,
    ) -> Vec<(PathBuf, Result<Arc<LoadedPlugin>, PluginError>)> {
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .collect(),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot read the plugins directory");
                Vec::new()
            }
        };
        paths.sort();
        let mut out = Vec::new();
        for path in paths {
            let result = self.load_file(&path).await;
            self.note_file_outcome(&path, result.as_ref().err());
            match &result {
                Ok(p) => {
                    tracing::info!(plugin = %p.info.id, version = %p.info.version, path = %path.display(), "plugin loaded")
                }
                Err(e) => tracing::error!(path = %path.display(), error = %e, "plugin not loaded"),
            }
            out.push((path, result));
        }
        out
    }

    /// Loads (or replaces) the plugin in one file, once the signature beside it passes the
    /// signing policy (see [`PluginHost::set_signing`]). A provider already served from another
    /// file is refused (see [`PluginHost::check_claim`]).
    pub async fn load_file(&self, path: &Path) -> Result<Arc<LoadedPlugin>, PluginError> {
        let bytes = std::fs::read(path)
            .map_err(|e| PluginError::Rejected(format!("cannot read {}: {e}", path.display())))?;
        let signer = self.check_file_signature(path, &bytes)?;
        let mut plugin = self.prepare(&bytes, path.display().to_string()).await?;
        self.check_claim(&plugin.info.id, path)?;
        plugin.file = Some(path.to_path_buf());
        plugin.signer = signer;
        Ok(self.install(plugin))
    }

    /// Compiles and checks a plugin binary without installing it: the component must export
    /// a supported contract version and answer `describe` with a valid description.
    pub async fn prepare(&self, bytes: &[u8], origin: String) -> Result<LoadedPlugin, PluginError> {
        self.check_size(bytes.len(), None)?;
        imports::check(bytes).map_err(PluginError::Rejected)?;
        let started = Instant::now();
        let digest = hex::encode(Sha256::digest(bytes));
        let (component, tier, from_cache, instrumented) =
            self.compile_tiered(bytes, &digest).await?;
        let contract = contract_version(component.engine(), &component)?;
        let code = tiers::Code::link(self.linker_of(tier), &component, tier)?;
        let unoptimised = (tier == Tier::Baseline).then(|| Arc::from(bytes));

        // `describe` runs in the same sandbox as every other call, before the plugin is used.
        let mut plugin = LoadedPlugin {
            info: ProviderInfo::default(),
            contract,
            digest,
            loaded_at: SystemTime::now(),
            origin,
            file: None,
            size_bytes: bytes.len(),
            from_cache,
            prepare_time: Duration::ZERO,
            stats: CallStats::default(),
            code: arc_swap::ArcSwap::from_pointee(code),
            unoptimised: Mutex::new(unoptimised),
            optimise_error: OnceLock::new(),
            signer: None,
            ready: Arc::default(),
        };
        let info = self
            .run(&plugin, Network::Offline("describe"), |store, p| {
                Box::pin(async move {
                    p.testorchestrator_provider_tracker()
                        .call_describe(store)
                        .await
                })
            })
            .await
            .map_err(|e| PluginError::Rejected(format!("describe failed: {e}")))?;
        let mut info = ProviderInfo::from(info);
        // The 1.1 descriptions are part of what the plugin says about itself.
        (info.comments, info.events) = self.describe_1_1(&plugin).await?;
        validate_info(&info).map_err(PluginError::Rejected)?;
        self.check_size(bytes.len(), Some(&info.id))?;
        plugin.info = info;
        if let Some(instrumented) = &instrumented {
            self.pre_initialise(&mut plugin, instrumented).await;
        }
        // `describe` above is part of loading, not a call anyone made.
        plugin.stats = CallStats::default();
        plugin.prepare_time = started.elapsed();
        Ok(plugin)
    }

    /// `describe-comments` and `describe-events` (contract 1.1) of a plugin being loaded;
    /// nothing for a plugin without those exports.
    async fn describe_1_1(
        &self,
        plugin: &LoadedPlugin,
    ) -> Result<(Option<CommentsInfo>, Vec<EventScheme>), PluginError> {
        let (has_comments, has_events) = {
            let exports = &plugin.code.load().exports;
            (exports.has_comments(), exports.has_events())
        };
        let comments = if has_comments {
            self.run(plugin, Network::Offline("describe-comments"), |store, p| {
                Box::pin(async move {
                    p.testorchestrator_provider_comments()?
                        .call_describe_comments(store)
                        .await
                })
            })
            .await
            .map_err(|e| PluginError::Rejected(format!("describe-comments failed: {e}")))?
            .map(Into::into)
        } else {
            None
        };
        let events = if has_events {
            self.run(plugin, Network::Offline("describe-events"), |store, p| {
                Box::pin(async move {
                    p.testorchestrator_provider_events()?
                        .call_describe_events(store)
                        .await
                })
            })
            .await
            .map_err(|e| PluginError::Rejected(format!("describe-events failed: {e}")))?
            .into_iter()
            .map(Into::into)
            .collect()
        } else {
            Vec::new()
        };
        Ok((comments, events))
    }

    /// Makes a prepared plugin the current version of its provider; returns it.
    pub fn install(&self, plugin: LoadedPlugin) -> Arc<LoadedPlugin> {
        let plugin = Arc::new(plugin);
        self.replace(plugin.clone());
        plugin
    }

    /// Makes `plugin` the current version of its provider in one atomic swap; returns the
    /// version it replaced. Calls already running keep their own `Arc` of the old version.
    pub fn replace(&self, plugin: Arc<LoadedPlugin>) -> Option<Arc<LoadedPlugin>> {
        let previous = self
            .plugins
            .write()
            .expect("plugin registry lock")
            .insert(plugin.info.id.clone(), plugin.clone());
        let large = self.tiers.large(plugin.size_bytes);
        (plugin.ready).arm(large.then(|| snapshot::WarmUp::new(&plugin.info)));
        if let Some(old) = &previous
            && !Arc::ptr_eq(old, &plugin)
        {
            old.ready.disarm();
        }
        self.optimise_later(&plugin);
        if let Some(bound) = &self.cache_bound {
            bound.swapped(&plugin.info.id, &plugin.digest, |d| self.artifact_name(d));
        }
        match &previous {
            Some(old) if old.digest != plugin.digest => tracing::info!(
                plugin = %plugin.info.id, from = %old.info.version, to = %plugin.info.version,
                digest = %plugin.digest, "plugin swapped"
            ),
            _ => {}
        }
        previous
    }

    /// Removes a provider's plugin; calls already running finish on it.
    pub fn remove(&self, provider: &str) -> Option<Arc<LoadedPlugin>> {
        let removed = self
            .plugins
            .write()
            .expect("plugin registry lock")
            .remove(provider);
        if let Some(plugin) = &removed {
            plugin.ready.disarm();
        }
        if let Some(bound) = &self.cache_bound {
            bound.removed(provider, |d| self.artifact_name(d));
        }
        removed
    }

    /// The current plugin of a provider.
    pub fn get(&self, provider: &str) -> Result<Arc<LoadedPlugin>, PluginError> {
        self.plugins
            .read()
            .expect("plugin registry lock")
            .get(provider)
            .cloned()
            .ok_or_else(|| PluginError::NotLoaded(provider.to_string()))
    }

    /// All loaded plugins, sorted by id.
    pub fn list(&self) -> Vec<Arc<LoadedPlugin>> {
        let mut all: Vec<_> = self
            .plugins
            .read()
            .expect("plugin registry lock")
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.info.id.cmp(&b.info.id));
        all
    }

    /// `normalize-key`: the canonical form of a key as typed or pasted.
    pub async fn normalize_key(
        &self,
        source: &SourceConfig,
        key: &str,
    ) -> Result<String, PluginError> {
        let plugin = self.get(&source.provider)?;
        let (wsrc, key) = (v1::source(&plugin.info, source), key.to_string());
        let canonical = self
            .run(&plugin, Network::Offline("normalize-key"), |store, p| {
                Box::pin(async move {
                    p.testorchestrator_provider_tracker()
                        .call_normalize_key(store, &wsrc, &key)
                        .await
                })
            })
            .await?
            .map_err(|e| plugin.stats.provider_error(e))?;
        plugin
            .stats
            .malformed(check_text("normalize-key", &canonical, 256))?;
        Ok(canonical)
    }

    /// Benchmark support: `n` `normalize-key` calls on ONE warm instance, timing each, one
    /// `every` so long if given (else back to back). The service never does this (every call
    /// gets a fresh instance); the benchmark compares.
    #[doc(hidden)]
    pub async fn bench_warm_normalize(
        &self,
        source: &SourceConfig,
        key: &str,
        n: usize,
        every: Option<Duration>,
    ) -> Result<Vec<Duration>, PluginError> {
        let plugin = self.get(&source.provider)?;
        let (wsrc, key) = (v1::source(&plugin.info, source), key.to_string());
        self.run(&plugin, Network::Offline("normalize-key"), |store, p| {
            Box::pin(async move {
                let mut times = Vec::with_capacity(n);
                let mut ticks = every.map(tokio::time::interval);
                for _ in 0..n {
                    if let Some(ticks) = &mut ticks {
                        ticks.tick().await;
                        // The time waited is not the guest's: a CPU deadline from now on.
                        store.set_epoch_deadline(1);
                    }
                    let started = Instant::now();
                    let _ = p
                        .testorchestrator_provider_tracker()
                        .call_normalize_key(&mut *store, &wsrc, &key)
                        .await?;
                    times.push(started.elapsed());
                }
                Ok(times)
            })
        })
        .await
    }

    /// `issue-url`: the issue's browser URL.
    pub async fn issue_url(&self, source: &SourceConfig, key: &str) -> Result<String, PluginError> {
        let plugin = self.get(&source.provider)?;
        let (wsrc, key) = (v1::source(&plugin.info, source), key.to_string());
        let url = self
            .run(&plugin, Network::Offline("issue-url"), |store, p| {
                Box::pin(async move {
                    p.testorchestrator_provider_tracker()
                        .call_issue_url(store, &wsrc, &key)
                        .await
                })
            })
            .await?
            .map_err(|e| plugin.stats.provider_error(e))?;
        plugin.stats.malformed(check_url("issue-url", &url))?;
        Ok(url)
    }

    /// `create-url`: the tracker's new-issue page.
    pub async fn create_url(&self, source: &SourceConfig) -> Result<String, PluginError> {
        let plugin = self.get(&source.provider)?;
        let wsrc = v1::source(&plugin.info, source);
        let url = self
            .run(&plugin, Network::Offline("create-url"), |store, p| {
                Box::pin(async move {
                    p.testorchestrator_provider_tracker()
                        .call_create_url(store, &wsrc)
                        .await
                })
            })
            .await?
            .map_err(|e| plugin.stats.provider_error(e))?;
        plugin.stats.malformed(check_url("create-url", &url))?;
        Ok(url)
    }

    /// `test-connection`: who the source is connected as.
    pub async fn test_connection(
        &self,
        source: &SourceConfig,
    ) -> Result<ConnectionInfo, PluginError> {
        let plugin = self.get(&source.provider)?;
        let wsrc = v1::source(&plugin.info, source);
        self.run_online(
            &plugin,
            source,
            |store, p| {
                Box::pin(async move {
                    p.testorchestrator_provider_tracker()
                        .call_test_connection(store, &wsrc)
                        .await
                })
            },
            |info| {
                check_connection(&info)?;
                Ok(info.into())
            },
        )
        .await
    }

    /// `fetch-issue`: one issue's details.
    pub async fn fetch_issue(
        &self,
        source: &SourceConfig,
        key: &str,
    ) -> Result<Issue, PluginError> {
        let plugin = self.get(&source.provider)?;
        let (wsrc, key) = (v1::source(&plugin.info, source), key.to_string());
        self.run_online(
            &plugin,
            source,
            |store, p| {
                Box::pin(async move {
                    p.testorchestrator_provider_tracker()
                        .call_fetch_issue(store, &wsrc, &key)
                        .await
                })
            },
            |issue| check_issue(issue.into()),
        )
        .await
    }

    /// `fetch-issues`: many issues, one result per key in order.
    pub async fn fetch_issues(
        &self,
        source: &SourceConfig,
        keys: &[String],
    ) -> Result<Vec<Result<Issue, ProviderError>>, PluginError> {
        let plugin = self.get(&source.provider)?;
        let (wsrc, owned) = (v1::source(&plugin.info, source), keys.to_vec());
        self.run_online(
            &plugin,
            source,
            |store, p| {
                Box::pin(async move {
                    p.testorchestrator_provider_tracker()
                        .call_fetch_issues(store, &wsrc, &owned)
                        .await
                })
            },
            |results| {
                if results.len() != keys.len() {
                    return Err(PluginError::Malformed(format!(
                        "fetch-issues answered {} results for {} keys",
                        results.len(),
                        keys.len()
                    )));
                }
                results
                    .into_iter()
                    .map(|r| match r {
                        Ok(issue) => check_issue(issue.into()).map(Ok),
                        Err(e) => Ok(Err(e.into())),
                    })
                    .collect()
            },
        )
        .await
    }

    /// Runs an export that may use the network (`call`) for `source`: through the source's
    /// egress, the answer checked by `check` (a failed check counts as a fault), and the
    /// call's secrets redacted from all it returns, answer or error. The one path of
    /// `test-connection`, `fetch-issue`, `fetch-issues` and `add-comment`.
    async fn run_online<W, E, R>(
        &self,
        plugin: &LoadedPlugin,
        source: &SourceConfig,
        call: impl for<'a> FnOnce(
            &'a mut Store<CallState>,
            &'a v1::Exports,
        ) -> CallFuture<'a, Result<W, E>>,
        check: impl FnOnce(W) -> Result<R, PluginError>,
    ) -> Result<R, PluginError>
    where
        E: Into<ProviderError>,
        Result<R, PluginError>: Redact,
    {
        let redactor = Arc::new(egress::redactor(&plugin.info, source));
        let result = async {
            let answer = self
                .run(plugin, Network::Source(source, &redactor), call)
                .await?
                .map_err(|e| plugin.stats.provider_error(e))?;
            plugin.stats.malformed(check(answer))
        };
        result.await.redact(&redactor)
    }

    /// `add-comment` (contract 1.1): posts `markdown` on the issue `key` (canonical). Refused
    /// before any call when the plugin cannot comment ([`LoadedPlugin::unsupported`]) or the
    /// comment is longer than the plugin's `max-length`.
    pub async fn add_comment(
        &self,
        source: &SourceConfig,
        key: &str,
        markdown: &str,
    ) -> Result<CommentInfo, PluginError> {
        let plugin = self.get(&source.provider)?;
        if let Some(why) = plugin.unsupported(Capability::AddComments) {
            return Err(ProviderError::Unsupported(format!("Add comments is {why}")).into());
        }
        let max = plugin.info.comments.as_ref().map_or(0, |c| c.max_length);
        let length = markdown.chars().count();
        if length > max as usize {
            return Err(ProviderError::InvalidInput(format!(
                "the comment is {length} characters; {} accepts at most {max}",
                plugin.info.name
            ))
            .into());
        }
        let (wsrc, key, text) = (
            v1::source(&plugin.info, source),
            key.to_string(),
            markdown.to_string(),
        );
        self.run_online(
            &plugin,
            source,
            |store, p| {
                Box::pin(async move {
                    p.testorchestrator_provider_comments()?
                        .call_add_comment(store, &wsrc, &key, &text)
                        .await
                })
            },
            |comment| check_comment(comment.into()),
        )
        .await
    }

    /// `parse-event` (contract 1.1): the issues a verified webhook event concerns. Runs
    /// offline, like `normalize-key`.
    pub async fn parse_event(
        &self,
        source: &SourceConfig,
        event: Event,
    ) -> Result<Vec<EventChange>, PluginError> {
        let plugin = self.get(&source.provider)?;
        if let Some(why) = plugin.unsupported(Capability::ProcessWebhooks) {
            return Err(ProviderError::Unsupported(format!("Process webhooks is {why}")).into());
        }
        let (wsrc, event) = (v1::source(&plugin.info, source), v1::event(event));
        let changes = self
            .run(&plugin, Network::Offline("parse-event"), |store, p| {
                Box::pin(async move {
                    p.testorchestrator_provider_events()?
                        .call_parse_event(store, &wsrc, &event)
                        .await
                })
            })
            .await?
            .map_err(|e| plugin.stats.provider_error(e))?;
        plugin.stats.malformed(check_changes(changes))
    }

    /// Runs `f` against a fresh instance of `plugin`, under the call limits, reaching what
    /// `network` allows.
    async fn run<R>(
        &self,
        plugin: &LoadedPlugin,
        network: Network<'_>,
        f: impl for<'a> FnOnce(&'a mut Store<CallState>, &'a v1::Exports<'a>) -> CallFuture<'a, R>,
    ) -> Result<R, PluginError> {
        let permit = self
            .budget
            .admit(&plugin.info.id, network.source_id(), self.limits.wall_time)
            .await?;
        let counted = plugin.stats.start();
        let started = Instant::now();
        let wall = self.limits.wall_time;
        let (egress, redactor) = match network {
            Network::Offline(operation) => (Err(operation), Arc::default()),
            Network::Source(source, redactor) => (
                Ok(Egress::new(
                    &self.http,
                    &plugin.info,
                    source,
                    redactor.clone(),
                    // A little past the call's own timer, so that a call stopped while it waits
                    // on the tracker is always stopped by that timer, which names the tracker.
                    started + wall + Duration::from_millis(250),
                    self.limits.max_requests,
                    self.limits.max_response_bytes,
                )),
                redactor.clone(),
            ),
        };
        // One code for the whole call: an optimised swap meanwhile changes the next call's.
        let code = plugin.code.load_full();
        let (mut store, pipes, made_ahead) = match plugin.ready.take(&code) {
            Some(ready) => {
                let ready::Prepared {
                    mut store,
                    instance,
                    pipes,
                    ..
                } = ready;
                let state = store.data_mut();
                (state.egress, state.redactor) = (egress, redactor.clone());
                (state.cpu_ticks, state.log_budget) = (0, LOG_BUDGET);
                state
                    .limits
                    .start_charging()
                    .map_err(|refused| self.classify(wasmtime::Error::new(refused), 0))?;
                store.set_epoch_deadline(1);
                (store, pipes, Some(instance))
            }
            None => {
                let pipes = Pipes::new();
                let store = self.new_store(code.engine(), plugin, egress, redactor.clone(), &pipes);
                (store, pipes, None)
            }
        };

        // One span per plugin call: everything logged inside carries the plugin and version.
        let span = tracing::info_span!("plugin_call", plugin = %plugin.info.id, version = %plugin.info.version);
        let outcome = tokio::time::timeout(
            wall,
            tracing::Instrument::instrument(
                async {
                    let instance = match made_ahead {
                        Some(instance) => instance,
                        None => code.pre.instantiate_async(&mut store).await?,
                    };
                    let exports = code.exports.load(&instance);
                    f(&mut store, &exports).await
                },
                span,
            ),
        )
        .await;

        for (pipe, stream) in [(&pipes.stdout, "stdout"), (&pipes.stderr, "stderr")] {
            let text = pipe.contents();
            for line in String::from_utf8_lossy(&text)
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                let line = redactor.str(line);
                tracing::info!(plugin = %plugin.info.id, stream, "{line}");
            }
        }
        if let Network::Source(
            SourceConfig {
                source_id: Some(id),
                ..
            },
            _,
        ) = network
            && let Ok(egress) = &store.data().egress
            && let Some(headroom) = egress.headroom()
        {
            self.headroom.report(id, headroom);
        }
        let result = match outcome {
            Err(_) => Err(PluginError::Timeout {
                limit: wall,
                waiting_for: (store.data().egress.as_ref().ok())
                    .and_then(|e| e.waiting_on())
                    .map(|origin| format!("{} ({origin})", plugin.info.name)),
            }),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.classify(e, store.data().cpu_ticks)),
        };
        // The call has answered: it is no longer counted, nor charged to the memory budget.
        // Dropping its store (the memory reset, about half a small call) and making instances
        // for the next calls happen after the answer, on a task of their own, which keeps the
        // call's slots until the store is gone.
        drop(counted);
        store.data_mut().limits.stop_charging();
        let refill = self.refill(plugin, &code);
        tokio::spawn(async move {
            drop((store, permit));
            if let Some(refill) = refill {
                refill.await;
            }
        });
        plugin.stats.malformed(result)
    }

    /// What leaves instances of `code` ready for the plugin's next calls, if it keeps too few.
    fn refill(
        &self,
        plugin: &LoadedPlugin,
        code: &Arc<tiers::Code>,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        let (budget, limits) = (self.budget.clone(), self.limits.clone());
        let plugin_id: Arc<str> = Arc::from(plugin.info.id.as_str());
        ready::refill(
            self.limits.instances_ready as usize,
            plugin.ready.clone(),
            code.clone(),
            self.ready_count.clone(),
            self.limits.wall_time,
            move |code, pipes| {
                let meter = |limits| budget.meter_ahead(&plugin_id, limits);
                let state = CallState::new(&limits, meter, Err("ahead"), &plugin_id, pipes);
                call_store(code.engine(), state, &budget, &limits, &plugin_id)
            },
        )
    }

    fn new_store(
        &self,
        engine: &Engine,
        plugin: &LoadedPlugin,
        egress: Result<Egress, &'static str>,
        redactor: Arc<Redactor>,
        pipes: &Pipes,
    ) -> Store<CallState> {
        let id = plugin.info.id.as_str();
        let meter = |limits| self.budget.meter(id, limits);
        let mut state = CallState::new(&self.limits, meter, egress, id, pipes);
        state.redactor = redactor;
        call_store(engine, state, &self.budget, &self.limits, id)
    }

    fn classify(&self, e: wasmtime::Error, cpu_ticks: u64) -> PluginError {
        let budget_ticks = self.limits.cpu_time.as_millis() / engine::EPOCH_TICK.as_millis();
        if let Some(trap) = e.downcast_ref::<wasmtime::Trap>()
            && *trap == wasmtime::Trap::Interrupt
            && u128::from(cpu_ticks) > budget_ticks
        {
            return PluginError::CpuLimit(self.limits.cpu_time);
        }
        if let Some(refused) = e.downcast_ref::<budget::MemoryRefused>() {
            return PluginError::MemoryBudget(refused.0.clone());
        }
        let text = format!("{e:#}");
        if text.contains("forcing trap when growing memory") || text.contains("memory minimum size")
        {
            return PluginError::MemoryLimit(self.limits.memory_bytes);
        }
        if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
            return PluginError::Trap(format!("{trap}"));
        }
        // Lifting errors (invalid UTF-8, bad discriminant, out-of-bounds pointers) and
        // instantiation failures end up here.
        PluginError::Trap(first_line(&text))
    }

    /// The file name of the compiled artifact of the plugin with `digest`, keyed by this
    /// engine's compatibility hash too (another wasmtime or configuration never loads it).
    fn artifact_name(&self, digest: &str) -> String {
        let mut h = Sha256::new();
        std::hash::Hash::hash(
            &self.engine.precompile_compatibility_hash(),
            &mut HashWriter(&mut h),
        );
        h.update(ARTIFACT_SCHEME);
        format!("{digest}-{}.cwasm", &hex::encode(h.finalize())[..16])
    }

    /// Compiles a component, or loads it from the compile cache; true when it was cached.
    async fn compile(&self, bytes: &[u8], digest: &str) -> Result<(Component, bool), PluginError> {
        let cached = (self.cache_dir.as_ref()).map(|dir| dir.join(self.artifact_name(digest)));
        if let Some(path) = &cached
            && path.exists()
        {
            // SAFETY: the file is our own `Component::serialize` output, written under a name
            // keyed by the source digest and this engine's compatibility hash; vendor-supplied
            // precompiled artifacts are never loaded.
            match unsafe { Component::deserialize_file(&self.engine, path) } {
                Ok(component) => {
                    self.cache_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok((component, true));
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "stale compile cache entry; recompiling")
                }
            }
        }
        let engine = self.engine.clone();
        let owned = bytes.to_vec();
        self.compiles.fetch_add(1, Ordering::Relaxed);
        let component = tokio::task::spawn_blocking(move || {
            compile_optimised(&engine, &owned, cached.as_deref())
        })
        .await
        .map_err(|e| PluginError::Rejected(format!("compilation panicked: {e}")))??;
        Ok((component, false))
    }
}

/// Compiles a component with Cranelift (the engine's optimising compiler) and writes it to the
/// compile cache at `cached`, when given.
fn compile_optimised(
    engine: &Engine,
    bytes: &[u8],
    cached: Option<&Path>,
) -> Result<Component, PluginError> {
    let component = Component::from_binary(engine, bytes).map_err(|e| {
        PluginError::Rejected(format!(
            "not a valid WebAssembly component: {}",
            first_line(&format!("{e:#}"))
        ))
    })?;
    if let Some(path) = cached
        && let Ok(serialized) = component.serialize()
    {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, serialized)
            .and_then(|()| std::fs::rename(&tmp, path))
            .is_err()
        {
            tracing::warn!(path = %path.display(), "could not write the compile cache");
        }
    }
    Ok(component)
}

/// Adds the host's imports (WASI with nothing granted, contract 1.x) to a linker.
fn link_imports(linker: &mut Linker<CallState>) -> anyhow::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    v1::add_to_linker(linker)?;
    Ok(())
}

/// Bridges `std::hash::Hash` into a sha-256 (the compatibility hash only implements `Hash`).
struct HashWriter<'a>(&'a mut Sha256);

impl std::hash::Hasher for HashWriter<'_> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Reads the contract version from the component's imports and exports and checks this host
/// runs it (see [`v1::check_contract`]).
fn contract_version(engine: &Engine, component: &Component) -> Result<String, PluginError> {
    v1::check_contract(engine, component).map_err(PluginError::Rejected)
}

/// Checks a `describe` answer: what the host relies on must hold.
fn validate_info(info: &ProviderInfo) -> Result<(), String> {
    bounds::check_info(info)?;
    let kebab = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !kebab(&info.id) {
        return Err(format!(
            "describe: id {:?} must be 1-64 characters of a-z, 0-9 and '-'",
            info.id
        ));
    }
    if info.name.trim().is_empty() {
        return Err("describe: name is empty".into());
    }
    if info.auth_types.is_empty() {
        return Err(
            "describe: no auth types (use one with id \"none\" for public trackers)".into(),
        );
    }
    for auth in &info.auth_types {
        let field = |name: &str| auth.fields.iter().find(|f| f.name == name);
        let needs_secret: Vec<&str> = match &auth.scheme {
            model::CredentialScheme::None => vec![],
            model::CredentialScheme::Basic { password_field, .. } => vec![password_field],
            model::CredentialScheme::Bearer { field }
            | model::CredentialScheme::Header { field, .. } => vec![field],
        };
        for name in needs_secret {
            if !field(name).is_some_and(|f| f.secret) {
                return Err(format!(
                    "describe: auth type {:?} applies {name:?}, which is not a secret field",
                    auth.id
                ));
            }
        }
        if let model::CredentialScheme::Header { name, .. } = &auth.scheme
            && reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
        {
            return Err(format!(
                "describe: auth type {:?} names an invalid header {name:?}",
                auth.id
            ));
        }
    }
    for (origin, _) in info.declared_origins() {
        // Extra origins are granted without an admin naming them, so they must be public
        // https names: never an IP literal, never plain http.
        let ok = url::Url::parse(origin).is_ok_and(|u| {
            u.scheme() == "https" && matches!(u.host(), Some(url::Host::Domain(d)) if d.contains('.') && !d.ends_with(".localhost"))
        });
        if !ok {
            return Err(format!(
                "describe: extra origin {origin:?} must be an https URL with a DNS name \
                 (optionally after \"{}\")",
                model::CREDENTIALED
            ));
        }
    }
    Ok(())
}

fn check_text(what: &str, text: &str, max: usize) -> Result<(), PluginError> {
    if text.trim().is_empty() || text.len() > max {
        return Err(PluginError::Malformed(format!(
            "{what} must be 1 to {max} bytes, got {}",
            text.len()
        )));
    }
    Ok(())
}

fn check_url(what: &str, url: &str) -> Result<(), PluginError> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && url.len() <= 4096 => Ok(()),
        _ => Err(PluginError::Malformed(format!(
            "{what} is not an absolute http(s) URL: {:?}",
            first_line(url)
        ))),
    }
}

fn check_connection(
    info: &v1::testorchestrator::provider::types::ConnectionInfo,
) -> Result<(), PluginError> {
    check_text("test-connection account", &info.account, 1024)?;
    check_optional(
        "test-connection detail",
        info.detail.as_deref(),
        bounds::TEXT,
    )
}

/// Like [`check_text`] for a text that may be absent or empty.
fn check_optional(what: &str, text: Option<&str>, max: usize) -> Result<(), PluginError> {
    match text {
        Some(text) if text.len() > max => Err(PluginError::Malformed(format!(
            "{what} must be at most {max} bytes, got {}",
            text.len()
        ))),
        _ => Ok(()),
    }
}

fn check_issue(issue: Issue) -> Result<Issue, PluginError> {
    check_text("issue key", &issue.key, 256)?;
    if issue.title.len() > 64 << 10 || issue.status.len() > 1024 {
        return Err(PluginError::Malformed(
            "issue title or status is too long".into(),
        ));
    }
    check_optional("issue assignee", issue.assignee.as_deref(), bounds::TEXT)?;
    check_url("issue web URL", &issue.web_url)?;
    Ok(issue)
}

/// The most changes one `parse-event` may answer.
const MAX_EVENT_CHANGES: usize = 1000;

fn check_comment(comment: CommentInfo) -> Result<CommentInfo, PluginError> {
    check_text("add-comment id", &comment.id, 256)?;
    if let Some(url) = &comment.web_url {
        check_url("add-comment web URL", url)?;
    }
    Ok(comment)
}

fn check_changes(
    changes: Vec<v1::exports::testorchestrator::provider::events::EventChange>,
) -> Result<Vec<EventChange>, PluginError> {
    if changes.len() > MAX_EVENT_CHANGES {
        return Err(PluginError::Malformed(format!(
            "parse-event answered {} changes; the limit is {MAX_EVENT_CHANGES}",
            changes.len()
        )));
    }
    (changes.into_iter())
        .map(|change| {
            let change = EventChange::from(change);
            check_text("parse-event key", &change.key, 256)?;
            let issue = change.issue.map(check_issue).transpose()?;
            Ok(EventChange { issue, ..change })
        })
        .collect()
}

/// What a timed-out call says: the tracker and the stage when a request was waiting on one.
fn timeout_message(limit: Duration, waiting_for: Option<&str>) -> String {
    let secs = limit.as_secs_f64();
    match waiting_for {
        Some(tracker) => format!(
            "{tracker} did not answer within {secs} s (waiting for the response); the call was stopped"
        ),
        None => format!("the plugin call took longer than {secs} s and was stopped"),
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}
