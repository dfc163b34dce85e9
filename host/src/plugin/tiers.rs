//! Two compilation tiers, so a large plugin serves within seconds of its upload.
//!
//! Cranelift (the optimising compiler) takes ~13 s on a release host for the 12 MB JavaScript
//! example (a minute or more on a debug host). Winch, wasmtime's baseline compiler, compiles
//! the same component several times faster, into slower code. A binary of at least
//! [`Tiers::min_bytes`] that is not in the compile cache is therefore compiled by Winch first
//! and serves as the `baseline` tier; Cranelift then compiles it again in the background, on
//! one dedicated thread at the lowest priority ([`optimise`]), and the optimised code is
//! swapped in under the same loaded version (calls running finish on the code they started
//! on; the next call gets the new code). Only the optimised code goes to the compile cache, so
//! a restart loads it at once. A background compile that fails is logged and shown as the
//! version's `optimise_error`; the baseline code keeps serving. What Cranelift compiles is the
//! version's warm-up snapshot when one was taken at admission (see [`super::snapshot`]).
//!
//! Winch code needs its own engine (another calling convention), so its own [`Linker`] and its
//! own stores; that engine allocates on demand instead of reserving a second instance pool
//! (its code serves only until the optimised code is ready). On x86_64 Winch lacks tail calls,
//! exceptions, GC, function references, relaxed SIMD and stack switching: a component using
//! one (none of the shipped ones does) fails the Winch compile and goes straight to Cranelift.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};

use super::{CallState, LoadedPlugin, PluginError, PluginHost, first_line, snapshot, v1};

/// The smallest binary that counts as large (see [`Tiers::large`]), by default: the shipped
/// Rust plugins (a few hundred KB) compile with Cranelift in well under a second; the
/// JavaScript and Python examples (12 and 18 MB) take many seconds.
pub const DEFAULT_MIN_BYTES: usize = 4 << 20;

/// Which compiler made the code a version runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// Winch: ready fast, runs slower; the optimised code is being compiled.
    Baseline,
    /// Cranelift: what every version runs in the end.
    Optimised,
}

/// The compiled code of a loaded version, as calls instantiate it.
pub(super) struct Code {
    /// The component linked to the host's imports, on the engine that compiled it.
    pub(super) pre: InstancePre<CallState>,
    /// The exports, found and type-checked once.
    pub(super) exports: v1::ExportIndices,
    /// Which compiler made it.
    pub(super) tier: Tier,
}

impl Code {
    /// Links `component` with `linker` (of the engine that compiled it) and finds its exports.
    pub(super) fn link(
        linker: &Linker<CallState>,
        component: &Component,
        tier: Tier,
    ) -> Result<Code, PluginError> {
        let pre = linker.instantiate_pre(component).map_err(|e| {
            PluginError::Rejected(format!("the plugin's imports cannot be satisfied: {e:#}"))
        })?;
        let exports = v1::ExportIndices::new(&pre).map_err(|e| {
            PluginError::Rejected(format!("the plugin does not fit the provider world: {e}"))
        })?;
        Ok(Code { pre, exports, tier })
    }

    /// The engine whose stores run this code.
    pub(super) fn engine(&self) -> &Engine {
        self.pre.engine()
    }
}

/// The baseline tier of a host: Winch's linker, and which binaries it compiles.
pub(super) struct Tiers {
    /// The linker of the Winch engine; `None` when this host compiles with Cranelift only.
    baseline: Option<Linker<CallState>>,
    /// Binaries at least this large are compiled by Winch first (when not in the compile
    /// cache) and warmed up (see [`Tiers::large`]).
    pub(super) min_bytes: usize,
}

impl Tiers {
    /// A Winch engine with the host's imports, for binaries of at least `min_bytes`. Where
    /// Winch cannot run (another architecture), Cranelift only, with a warning.
    pub(super) fn new(
        min_bytes: usize,
        link: impl FnOnce(&mut Linker<CallState>) -> anyhow::Result<()>,
    ) -> Tiers {
        let linker = super::engine::build_baseline().and_then(|engine| {
            let mut linker = Linker::new(&engine);
            link(&mut linker)?;
            Ok(linker)
        });
        let baseline = linker
            .inspect_err(|e| tracing::warn!(error = %e, "no baseline compiler; large plugins compile with Cranelift only"))
            .ok();
        Tiers {
            baseline,
            min_bytes,
        }
    }

    /// True when a binary of `size` bytes (not in the compile cache) is compiled by Winch first.
    fn takes(&self, size: usize) -> bool {
        self.baseline.is_some() && self.large(size)
    }

    /// True when a binary of `size` bytes is a large one: a big runtime (the JavaScript and
    /// Python examples) whose first call on a new instance is much slower than its next ones.
    /// Its warm-up runs before its snapshot is taken (when Winch compiled it first, see
    /// [`super::snapshot`]) and on each of its instances made ahead (see [`super::ready`]).
    /// A small plugin's is not worth it: the Rust plugins' first call costs ~2 us more than
    /// the next, and a warm-up ahead made their calls slower (`docs/benchmarks.md`).
    pub(super) fn large(&self, size: usize) -> bool {
        size >= self.min_bytes
    }

    /// Compiles `bytes` with Winch when they are large enough; `None` when they are not, or
    /// when Winch refuses them (a feature it lacks), so the caller compiles with Cranelift.
    async fn compile_baseline(&self, bytes: &[u8]) -> Option<Component> {
        let linker = self.baseline.as_ref().filter(|_| self.takes(bytes.len()))?;
        let (engine, owned, started) = (linker.engine().clone(), bytes.to_vec(), Instant::now());
        let compiled = tokio::task::spawn_blocking(move || Component::from_binary(&engine, &owned))
            .await
            .ok()?;
        match compiled {
            Ok(component) => {
                let ms = started.elapsed().as_millis() as u64;
                tracing::info!(ms, "plugin compiled by the baseline compiler");
                Some(component)
            }
            Err(e) => {
                let error = first_line(&format!("{e:#}"));
                tracing::info!(%error, "the baseline compiler refused the plugin; compiling with Cranelift");
                None
            }
        }
    }
}

impl PluginHost {
    /// Compiles a binary, or loads it from the compile cache: by Winch first when it is large
    /// and not cached (see [`Tiers::min_bytes`]), else by Cranelift. Answers the component,
    /// its tier, whether it came from the cache and, for a baseline version, the binary
    /// instrumented for its warm-up snapshot, which is what Winch compiled (see [`snapshot`]).
    pub(super) async fn compile_tiered<'a>(
        &self,
        bytes: &'a [u8],
        digest: &str,
    ) -> Result<(Component, Tier, bool, Option<snapshot::Instrumented<'a>>), PluginError> {
        let cached = (self.cache_dir.as_ref())
            .is_some_and(|dir| dir.join(self.artifact_name(digest)).exists());
        if !cached && self.tiers.takes(bytes.len()) {
            let instrumented = snapshot::instrument(bytes);
            let baseline = instrumented.as_ref().map_or(bytes, |i| &i.bytes);
            if let Some(component) = self.tiers.compile_baseline(baseline).await {
                self.compiles.fetch_add(1, Ordering::Relaxed);
                return Ok((component, Tier::Baseline, false, instrumented));
            }
        }
        let (component, from_cache) = self.compile(bytes, digest).await?;
        Ok((component, Tier::Optimised, from_cache, None))
    }

    /// The linker of the engine that compiles `tier`.
    pub(super) fn linker_of(&self, tier: Tier) -> &Linker<CallState> {
        match (tier, &self.tiers.baseline) {
            (Tier::Baseline, Some(linker)) => linker,
            _ => &self.linker,
        }
    }

    /// Starts the optimised compile of a baseline version just installed (see [`optimise`]);
    /// a no-op for an optimised one, or once started.
    pub(super) fn optimise_later(&self, plugin: &Arc<LoadedPlugin>) {
        let bytes = plugin.unoptimised.lock().expect("unoptimised lock").take();
        let Some(bytes) = bytes else {
            return;
        };
        let (engine, linker) = (self.engine.clone(), self.linker.clone());
        let cached =
            (self.cache_dir.as_ref()).map(|dir| dir.join(self.artifact_name(&plugin.digest)));
        optimise(
            Arc::downgrade(plugin),
            bytes,
            move |bytes| super::compile_optimised(&engine, bytes, cached.as_deref()),
            move |component| Code::link(&linker, component, Tier::Optimised),
        );
    }
}

impl LoadedPlugin {
    /// Which compiler made the code new calls run.
    pub fn tier(&self) -> Tier {
        self.code.load().tier
    }

    /// Why the optimised compile of this baseline version failed, if it did.
    pub fn optimise_error(&self) -> Option<&str> {
        self.optimise_error.get().map(String::as_str)
    }
}

/// Compiles a version the baseline tier serves with Cranelift, on the optimising thread, and
/// swaps the optimised code in. `compile` is the host's Cranelift compile (which writes the
/// compile cache); `link` links its result. A failure is logged and kept as the version's
/// `optimise_error`; a version no longer loaded by then is skipped.
pub(super) fn optimise(
    plugin: Weak<LoadedPlugin>,
    bytes: Arc<[u8]>,
    compile: impl FnOnce(&[u8]) -> Result<Component, PluginError> + Send + 'static,
    link: impl FnOnce(&Component) -> Result<Code, PluginError> + Send + 'static,
) {
    optimiser().spawn(move || {
        if plugin.strong_count() == 0 {
            return;
        }
        let started = Instant::now();
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            compile(&bytes).and_then(|component| link(&component))
        }))
        .unwrap_or_else(|_| Err(PluginError::Rejected("the optimising compiler panicked".into())));
        let Some(plugin) = plugin.upgrade() else {
            return;
        };
        let (id, version) = (&plugin.info.id, &plugin.info.version);
        match code {
            Ok(code) => {
                plugin.code.store(Arc::new(code));
                plugin.ready.clear();
                tracing::info!(plugin = %id, version = %version, ms = started.elapsed().as_millis() as u64,
                    "optimised code swapped in");
            }
            Err(e) => {
                tracing::error!(plugin = %id, version = %version, error = %e,
                    "optimising compile failed; the baseline code keeps serving");
                let _ = plugin.optimise_error.set(e.to_string());
            }
        }
    });
}

/// The one thread the optimising compiles of a process run on, one at a time, at the lowest
/// priority: wasmtime's parallel compilation uses the rayon pool it runs in, so a background
/// compile takes one core at most and request handling wins it whenever it wants it.
fn optimiser() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "wasm-optimise".into())
            .start_handler(|_| super::engine::lower_this_thread_to(OPTIMISE_NICENESS))
            .build()
            .expect("start the optimising thread")
    })
}

/// The nice value of the optimising thread: the lowest priority.
pub const OPTIMISE_NICENESS: i32 = 19;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::plugin::Limits;
    use crate::plugin::test_plugins::{hotswap, hotswap_source};

    /// A baseline version of the hotswap test plugin, serving, whose optimised compile has
    /// not started (the test starts it).
    async fn baseline_version() -> (PluginHost, Arc<LoadedPlugin>, Arc<[u8]>) {
        let bytes = hotswap();
        let host = PluginHost::new(Limits::default(), None)
            .unwrap()
            .baseline_tier_from(0);
        let plugin = host.prepare(&bytes, "test".into()).await.unwrap();
        assert_eq!(plugin.tier(), Tier::Baseline);
        let unoptimised = plugin.unoptimised.lock().unwrap().take().unwrap();
        let plugin = host.install(plugin);
        (host, plugin, unoptimised)
    }

    async fn optimise_error(plugin: &LoadedPlugin) -> String {
        // Long: the process's one optimising thread may first finish the large examples' compiles
        // other tests of this binary queued (see `snapshot`'s tests).
        for _ in 0..60_000 {
            if let Some(e) = plugin.optimise_error() {
                return e.to_string();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the failed optimising compile was never reported");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failed_or_panicking_optimising_compile_is_reported_and_baseline_code_serves_on() {
        let source = hotswap_source();
        type Compile = fn(&[u8]) -> Result<Component, PluginError>;
        let failures: [Compile; 2] = [
            |_| Err(PluginError::Rejected("out of memory".into())),
            |_| panic!("a compiler bug"),
        ];
        for (compile, reported) in failures.into_iter().zip(["out of memory", "panicked"]) {
            let (host, plugin, bytes) = baseline_version().await;
            let linker = host.linker.clone();
            optimise(Arc::downgrade(&plugin), bytes, compile, move |c| {
                Code::link(&linker, c, Tier::Optimised)
            });
            let error = optimise_error(&plugin).await;
            assert!(error.contains(reported), "{error}");
            assert_eq!(plugin.tier(), Tier::Baseline);
            assert_eq!(host.normalize_key(&source, " hs-1 ").await.unwrap(), "HS-1");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn optimising_compiles_run_on_one_thread_at_the_lowest_priority() {
        let nice = |_: rayon::BroadcastContext<'_>| {
            // SAFETY: reads the calling thread's own nice value.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
        };
        assert_eq!(optimiser().broadcast(nice), vec![OPTIMISE_NICENESS]);
    }
}
