//! Large plugins snapshotted after a warm-up call, so that their fresh instances start warm.
//!
//! Every call runs in a fresh instance, and for the JavaScript and Python examples most of a
//! call's cost is the guest's FIRST call on a new instance (SpiderMonkey and CPython compile
//! functions, regular expressions and caches lazily, and fault their heaps in), not
//! instantiation (`docs/benchmarks.md`). componentize-js and componentize-py already snapshot
//! the guest after its own start-up, but not after a call. So a large binary (one the baseline
//! tier compiles first, see [`super::tiers`]) is pre-initialised at admission, Wizer-style:
//!
//! 1. it is instrumented by `wasmtime-wizer` (every core module's memories and globals
//!    exported, read through an added `wasmtime:wizer/access` instance), and it is this
//!    instrumented binary the baseline tier compiles and serves;
//! 2. after `describe`, a fresh instance of it runs the warm-up: `normalize-key` and
//!    `issue-url` (offline, pure exports) with a synthetic source made of the plugin's own
//!    examples (`base-url-example`, its first auth type, `key-example`): no tenant's
//!    configuration, no secret, no network, under the normal call limits;
//! 3. the state of that instance (every memory and global) becomes the initial state of a new
//!    component, which the optimising tier compiles, caches under the uploaded binary's digest
//!    and swaps in. The version's digest and everything shown stay those of the upload.
//!
//! What must not survive a snapshot is refused, not snapshotted: a warm-up that wrote to
//! stdout or stderr, or whose guest still holds a host resource (a WASI stream: its handle
//! would mean nothing in a new instance). A warm-up that fails (a trap, an error answer, a
//! limit), a binary Wizer cannot instrument (nested components, table mutations) or a refused
//! snapshot is logged, and the plugin serves its unsnapshotted code: this never refuses a
//! plugin. Clocks and random numbers are read through WASI imports at each call.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::Store;
use wasmtime::component::{Instance, Lift, WasmList};
use wasmtime_wizer::Wizer;
use wasmtime_wizer::{ComponentContext, ComponentInstanceState};

use super::{
    CallState, LoadedPlugin, PluginHost, ProviderError, ProviderInfo, SourceConfig, first_line, v1,
};

/// A binary instrumented for a snapshot: the instrumented bytes (what the baseline tier
/// compiles) and what Wizer needs to read the state back.
pub(super) struct Instrumented<'a> {
    /// The instrumented component.
    pub(super) bytes: Vec<u8>,
    context: ComponentContext<'a>,
}

/// Instruments `bytes` for a snapshot; none (logged) when Wizer cannot.
pub(super) fn instrument(bytes: &[u8]) -> Option<Instrumented<'_>> {
    let started = Instant::now();
    match off_the_worker(|| Wizer::new().instrument_component(bytes)) {
        Ok((context, bytes)) => {
            let ms = started.elapsed().as_millis() as u64;
            tracing::info!(ms, "plugin instrumented for a warm-up snapshot");
            Some(Instrumented { bytes, context })
        }
        Err(e) => {
            let error = first_line(&format!("{e:#}"));
            tracing::info!(%error, "the plugin cannot be snapshotted; it serves without a warm-up snapshot");
            None
        }
    }
}

/// Runs `work`, which keeps a core busy for a while (instrumenting validates the whole binary:
/// ~0.1 s a megabyte on a debug host), with the other tasks of this tokio worker moved to
/// another where the runtime allows it.
fn off_the_worker<T>(work: impl FnOnce() -> T) -> T {
    let flavor = tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor());
    match flavor {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

impl PluginHost {
    /// Warms up a baseline version compiled from `instrumented` and makes its snapshot what
    /// the optimising tier compiles; on a failure (logged) the uploaded binary stays that.
    pub(super) async fn pre_initialise(
        &self,
        plugin: &mut LoadedPlugin,
        instrumented: &Instrumented<'_>,
    ) {
        let (id, started) = (plugin.info.id.clone(), Instant::now());
        match self.warm_up_and_snapshot(plugin, instrumented).await {
            Ok(snapshot) => {
                tracing::info!(plugin = %id, ms = started.elapsed().as_millis() as u64,
                    "plugin snapshotted after a warm-up call");
                let unoptimised = plugin.unoptimised.get_mut().expect("unoptimised lock");
                *unoptimised = Some(snapshot.into());
            }
            Err(error) => tracing::warn!(plugin = %id, %error,
                "no warm-up snapshot; the plugin serves without one"),
        }
    }

    /// Runs the warm-up on a fresh instance of `plugin`'s code (compiled from `instrumented`)
    /// and answers the snapshot of that instance: a component whose instances start warm.
    /// Refuses (with the reason) a warm-up that failed or left state a new instance cannot use.
    pub(super) async fn warm_up_and_snapshot(
        &self,
        plugin: &LoadedPlugin,
        instrumented: &Instrumented<'_>,
    ) -> Result<Vec<u8>, String> {
        let wall = self.limits.wall_time;
        let _permit =
            (self.budget.admit(&plugin.info.id, None, wall).await).map_err(|e| e.to_string())?;
        let pipes = super::Pipes::new();
        let code = plugin.code.load_full();
        let mut store = self.new_store(
            code.engine(),
            plugin,
            Err("warm-up"),
            Arc::default(),
            &pipes,
        );
        let warm_up = async {
            let instance = code.pre.instantiate_async(&mut store).await?;
            let exports = code.exports.load(&instance);
            WarmUp::new(&plugin.info).run(&mut store, &exports).await?;
            wasmtime::Result::Ok(instance)
        };
        let instance = match tokio::time::timeout(wall, warm_up).await {
            Err(_) => return Err(format!("the warm-up took longer than {wall:?}")),
            Ok(Err(e)) => return Err(self.classify(e, store.data().cpu_ticks).to_string()),
            Ok(Ok(instance)) => instance,
        };
        if !pipes.stdout.contents().is_empty() || !pipes.stderr.contents().is_empty() {
            return Err("the warm-up wrote to stdout or stderr".into());
        }
        if !store.data().table.is_empty() {
            return Err("the guest still holds a host resource after the warm-up".into());
        }
        // Reading the state back runs only the instrumentation's accessors, which do not loop
        // (but copy the whole memory: past this point the CPU deadline would interrupt them).
        store.set_epoch_deadline(u64::MAX / 2);
        let mut state = InstanceState {
            store: &mut store,
            instance,
            failed: None,
        };
        let wizer = Wizer::new();
        let snapshot = (wizer
            .snapshot_component(&instrumented.context, &mut state)
            .await)
            .map_err(|e| first_line(&format!("{e:#}")))?;
        match state.failed {
            Some(failed) => Err(failed),
            None => Ok(snapshot),
        }
    }
}

/// A plugin's warm-up: `normalize-key` of its `key-example`, then `issue-url` of what that
/// answered, on a source made of the plugin's own examples (`base-url-example`, its first auth
/// type): no tenant's configuration, no secret, no network (both exports are offline). It runs
/// before a snapshot is taken, and on every instance made ahead (see [`super::ready`]).
pub(super) struct WarmUp {
    plugin: String,
    source: v1::testorchestrator::provider::types::Source,
    key: String,
}

impl WarmUp {
    pub(super) fn new(info: &ProviderInfo) -> WarmUp {
        let source = SourceConfig {
            provider: info.id.clone(),
            base_url: info.base_url_example.trim_end_matches('/').to_string(),
            auth_type: (info.auth_types.first()).map_or_else(String::new, |a| a.id.clone()),
            ..SourceConfig::default()
        };
        WarmUp {
            plugin: info.id.clone(),
            source: v1::source(info, &source),
            key: info.key_example.clone(),
        }
    }

    /// The id of the plugin this warms up.
    pub(super) fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Runs the warm-up on `exports`' instance; an error answer fails it.
    pub(super) async fn run(
        &self,
        store: &mut Store<CallState>,
        exports: &v1::Exports<'_>,
    ) -> wasmtime::Result<()> {
        let tracker = exports.testorchestrator_provider_tracker();
        let refused = |what: &str, error: ProviderError| {
            wasmtime::format_err!("{what} of the key example answered an error: {error}")
        };
        let key = (tracker
            .call_normalize_key(&mut *store, &self.source, &self.key)
            .await?)
            .map_err(|e| refused("normalize-key", e.into()))?;
        (tracker
            .call_issue_url(&mut *store, &self.source, &key)
            .await?)
            .map_err(|e| refused("issue-url", e.into()))?;
        Ok(())
    }
}

/// The warmed-up instance, read by Wizer through the `wasmtime:wizer/access` exports the
/// instrumentation added. (`wasmtime-wizer` has the same adapter behind its `wasmtime`
/// feature, which would turn on wasmtime features the host does not use: GC, threads, a cache.)
///
/// Wizer's reads cannot fail, but an accessor can: reading a memory grows it by a page, which
/// the call's memory limits may refuse. The first failure is kept in `failed` (the snapshot is
/// then refused) and the reads after it answer nothing.
struct InstanceState<'a> {
    store: &'a mut Store<CallState>,
    instance: Instance,
    failed: Option<String>,
}

impl InstanceState<'_> {
    /// Calls `func` of the exported instance `interface`, which takes nothing and answers `R`;
    /// none once a read failed.
    async fn call<R: Lift + Send + Sync + 'static, A>(
        &mut self,
        interface: &str,
        func: &str,
        answer: impl FnOnce(&Store<CallState>, R) -> A,
    ) -> Option<A> {
        if self.failed.is_some() {
            return None;
        }
        match self.try_call(interface, func).await {
            Ok(value) => Some(answer(self.store, value)),
            Err(e) => {
                self.failed = Some(format!("reading the warmed-up state failed: {e:#}"));
                None
            }
        }
    }

    async fn try_call<R: Lift + Send + Sync + 'static>(
        &mut self,
        interface: &str,
        func: &str,
    ) -> wasmtime::Result<R> {
        let store = &mut *self.store;
        let missing = || wasmtime::format_err!("the instrumented binary lacks {interface}#{func}");
        let (_, interface) =
            (self.instance.get_export(&mut *store, None, interface)).ok_or_else(missing)?;
        let (_, func) = (self
            .instance
            .get_export(&mut *store, Some(&interface), func))
        .ok_or_else(missing)?;
        let func = self
            .instance
            .get_typed_func::<(), (R,)>(&mut *store, func)?;
        Ok(func.call_async(&mut *store, ()).await?.0)
    }
}

impl ComponentInstanceState for InstanceState<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        interface: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        let mut contents = Some(contents);
        let read = |store: &Store<CallState>, list: WasmList<u8>| {
            (contents.take().expect("called once"))(list.as_le_slice(store))
        };
        self.call(interface, func, read).await;
        if let Some(contents) = contents {
            contents(&[]);
        }
    }

    async fn call_func_ret_s32(&mut self, interface: &str, func: &str) -> i32 {
        (self.call(interface, func, |_, value| value).await).unwrap_or_default()
    }

    async fn call_func_ret_s64(&mut self, interface: &str, func: &str) -> i64 {
        (self.call(interface, func, |_, value| value).await).unwrap_or_default()
    }

    async fn call_func_ret_f32(&mut self, interface: &str, func: &str) -> u32 {
        (self
            .call(interface, func, |_, value: f32| value.to_bits())
            .await)
            .unwrap_or_default()
    }

    async fn call_func_ret_f64(&mut self, interface: &str, func: &str) -> u64 {
        (self
            .call(interface, func, |_, value: f64| value.to_bits())
            .await)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::plugin::test_plugins::{built, hotswap, hotswap_source, patched};
    use crate::plugin::tiers::{Code, Tier, optimise};
    use crate::plugin::{Limits, Network, PluginError};
    use wasmtime::component::Component;

    fn host() -> PluginHost {
        let limits = Limits {
            max_plugin_bytes: 64 << 20,
            ..Limits::default()
        };
        PluginHost::new(limits, None).unwrap()
    }

    /// What the offline exports answer, on fresh instances: `describe`, and `normalize-key`,
    /// `issue-url` and `create-url` of several keys on two sources.
    async fn answers(host: &PluginHost, plugin: &LoadedPlugin) -> Vec<String> {
        let info = host
            .run(plugin, Network::Offline("describe"), |store, p| {
                Box::pin(async move {
                    p.testorchestrator_provider_tracker()
                        .call_describe(store)
                        .await
                })
            })
            .await
            .unwrap();
        let mut answers = vec![format!("{:?}", ProviderInfo::from(info))];
        for base_url in ["https://redmine.example.com", "http://tracker.test/sub"] {
            let source = SourceConfig {
                provider: plugin.info.id.clone(),
                base_url: base_url.into(),
                auth_type: plugin.info.auth_types[0].id.clone(),
                ..Default::default()
            };
            for key in [
                " #42 ",
                "7",
                "not a key",
                "",
                "https://redmine.example.com/issues/99",
            ] {
                let normalized = host.normalize_key(&source, key).await;
                answers.push(format!("{normalized:?}"));
                answers.push(format!("{:?}", host.issue_url(&source, key.trim()).await));
            }
            answers.push(format!("{:?}", host.create_url(&source).await));
        }
        answers
    }

    async fn optimised(plugin: &LoadedPlugin) {
        for _ in 0..3000 {
            if plugin.tier() == Tier::Optimised {
                return;
            }
            if let Some(e) = plugin.optimise_error() {
                panic!("{e}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the optimised code was never swapped in");
    }

    async fn fresh_call_time(host: &PluginHost, plugin: &LoadedPlugin) -> Duration {
        let source = SourceConfig {
            provider: plugin.info.id.clone(),
            base_url: "https://redmine.example.com".into(),
            auth_type: plugin.info.auth_types[0].id.clone(),
            ..Default::default()
        };
        let started = Instant::now();
        for _ in 0..20 {
            host.normalize_key(&source, " #42 ").await.unwrap();
        }
        started.elapsed() / 20
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_plugin_whose_warm_up_traps_serves_its_unsnapshotted_code() {
        // The buggy test plugin panics on a key with `://`: its key example becomes one.
        let bytes = patched(built("contract-plugins/buggy.wasm"), b"BUG-7", b"a://b");
        let host = host().baseline_tier_from(0);
        let plugin = host.prepare(&bytes, "test".into()).await.unwrap();
        assert_eq!(plugin.tier(), Tier::Baseline);
        let unoptimised = plugin.unoptimised.lock().unwrap().clone().unwrap();
        assert_eq!(&*unoptimised, &bytes[..], "the uploaded binary is compiled");
        let plugin = host.install(plugin);
        optimised(&plugin).await;
        let source = SourceConfig {
            provider: "buggy".into(),
            base_url: "https://bugs.example.com".into(),
            auth_type: "none".into(),
            ..Default::default()
        };
        assert_eq!(
            host.normalize_key(&source, " bug-8 ").await.unwrap(),
            "BUG-8"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_warm_up_at_its_memory_cap_is_not_snapshotted_and_the_plugin_serves() {
        // Reading a memory back grows it by a page: at the smallest cap the plugin loads
        // under, that growth is refused, and the snapshot with it.
        let bytes = hotswap();
        for pages in 1..64 {
            let limits = Limits {
                memory_bytes: pages << 16,
                ..Limits::default()
            };
            let host = PluginHost::new(limits, None).unwrap().baseline_tier_from(0);
            let Ok(plugin) = host.prepare(&bytes, "test".into()).await else {
                continue;
            };
            let unoptimised = plugin.unoptimised.lock().unwrap().clone().unwrap();
            assert_eq!(&*unoptimised, &bytes[..], "at {pages} pages");
            let plugin = host.install(plugin);
            optimised(&plugin).await;
            let source = hotswap_source();
            assert_eq!(host.normalize_key(&source, "hs-3").await.unwrap(), "HS-3");
            return;
        }
        panic!("the plugin never loaded");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_baseline_version_is_optimised_from_its_warm_up_snapshot_and_answers_as_before() {
        let bytes = hotswap();
        let host = host().baseline_tier_from(0);
        let plugin = host.prepare(&bytes, "test".into()).await.unwrap();
        let unoptimised = plugin.unoptimised.lock().unwrap().clone().unwrap();
        assert_ne!(&*unoptimised, &bytes[..], "the snapshot is compiled");
        let plugin = host.install(plugin);
        optimised(&plugin).await;
        let source = hotswap_source();
        for (key, canonical) in [(" hs-1 ", "HS-1"), ("hs-2", "HS-2")] {
            assert_eq!(host.normalize_key(&source, key).await.unwrap(), canonical);
        }
        assert_eq!(
            host.normalize_key(&source, " ")
                .await
                .unwrap_err()
                .to_string(),
            "invalid input: the key is empty"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_compiled_snapshot_is_cached_under_the_uploads_digest_and_a_restart_serves_it() {
        let (cache, bytes) = (tempfile::tempdir().unwrap(), hotswap());
        let new_host = || {
            PluginHost::new(Limits::default(), Some(cache.path().to_path_buf()))
                .unwrap()
                .baseline_tier_from(0)
        };
        let host = new_host();
        let plugin = host.prepare(&bytes, "test".into()).await.unwrap();
        let snapshot = plugin.unoptimised.lock().unwrap().clone().unwrap();
        assert_ne!(&*snapshot, &bytes[..], "snapshotted");
        let plugin = host.install(plugin);
        optimised(&plugin).await;
        let cached = cache.path().join(host.artifact_name(&plugin.digest));
        let compiled = super::super::compile_optimised(&host.engine, &snapshot, None).unwrap();
        assert!(
            std::fs::read(&cached).unwrap() == compiled.serialize().unwrap(),
            "the cache holds the snapshot's code"
        );

        let restarted = new_host();
        let plugin = restarted.prepare(&bytes, "test".into()).await.unwrap();
        assert!(plugin.from_cache);
        assert_eq!(plugin.tier(), Tier::Optimised);
        assert_eq!(plugin.digest, host.list()[0].digest);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn large_examples_are_swapped_to_their_warm_snapshot_and_answer_as_before() {
        for file in ["redmine-js.wasm", "redmine-py.wasm"] {
            let (host, bytes) = (host(), built(&format!("example-plugins/{file}")));
            let started = Instant::now();
            let plugin = host.prepare(&bytes, "test".into()).await.unwrap();
            eprintln!("{file}: prepared in {:?}", started.elapsed());
            assert_eq!(plugin.tier(), Tier::Baseline);
            let snapshot = plugin.unoptimised.lock().unwrap().take().unwrap();
            assert_ne!(&*snapshot, &bytes[..], "{file} was not snapshotted");
            let plugin = host.install(plugin);
            let before = answers(&host, &plugin).await;
            eprintln!(
                "{file}: baseline call {:?}",
                fresh_call_time(&host, &plugin).await
            );

            let (engine, linker) = (host.engine.clone(), host.linker.clone());
            let compile = move |bytes: &[u8]| -> Result<Component, PluginError> {
                super::super::compile_optimised(&engine, bytes, None)
            };
            optimise(Arc::downgrade(&plugin), snapshot, compile, move |c| {
                Code::link(&linker, c, Tier::Optimised)
            });
            optimised(&plugin).await;
            assert_eq!(answers(&host, &plugin).await, before, "{file}");
            eprintln!(
                "{file}: snapshot call {:?}",
                fresh_call_time(&host, &plugin).await
            );
        }
    }
}
