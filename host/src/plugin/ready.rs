//! Instances made ahead of their calls, off the request path, and warmed up.
//!
//! Every call still runs in an instance no other call touched: made from the version's code
//! in a store of its own, with no source, no secrets and no network, and dropped after that
//! one call. What changes is *when* it is made. Instantiating takes most of a small plugin's
//! call (a Rust plugin: ~13 of ~15 us; the call itself ~2 us), so each loaded version keeps
//! up to [`Limits::instances_ready`] (default 2) instances ready; a call takes one if there is
//! one (else it instantiates on its own path, as before) and, after its answer, a task drops
//! its store and makes the next. Only when the call begins does its instance get its network,
//! its redactor, a CPU deadline and its memory charged to the budget (see
//! [`Meter::start_charging`]).
//!
//! Before it is kept, an instance of a large plugin (a big runtime, see [`Tiers::large`]) runs
//! the plugin's own warm-up ([`WarmUp`]: `normalize-key` of its key example and `issue-url`,
//! offline, on a source made of its examples), the same one its snapshot is taken after. Such
//! a plugin's first call on an instance is its slowest (the guest's lazy start-up, table
//! entries filled on first use, its heap pages faulted in: a `normalize-key` of the Python
//! example took ~80 us on an instance just made, ~40 us on one warmed up,
//! `docs/benchmarks.md`), and this moves that work off the request path. So what a call's
//! instance has run before it is the component's start functions and, for a large plugin,
//! that warm-up: nothing a source or another call gave it. An instance whose warm-up fails,
//! times out or writes to stdout or stderr is not kept, and the version's instances are made
//! ahead without it from then on (logged).
//!
//! Bounds: at most [`Limits::instances_ready`] per loaded version and [`MAX_READY`] in the
//! whole host, for which the engine's instance pool reserves its own slots (see
//! `engine::build`), so ready instances never take a slot a call needs. Their memory is not
//! charged to the budget while they wait (it is charged, with what the warm-up grew, when
//! their call begins): their initial memory, mapped copy-on-write from the compiled image,
//! and the pages the warm-up wrote, within the per-call memory cap. A version that fails to
//! instantiate ahead is not tried again (its calls instantiate on their path and report the
//! failure); a replaced or removed version, or one whose optimised code was swapped in, drops
//! what it kept.
//!
//! [`Meter::start_charging`]: super::budget::Meter::start_charging
//! [`Tiers::large`]: super::tiers::Tiers::large
//! [`Limits::instances_ready`]: super::Limits::instances_ready

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use wasmtime::Store;
use wasmtime::component::Instance;

use super::snapshot::WarmUp;
use super::tiers::Code;
use super::{CallState, Pipes, first_line};

/// Instances kept ready in the whole host, whatever the number of plugins (the engine's
/// instance pool reserves as many slots for them).
pub const MAX_READY: u32 = 16;

/// One instance made ahead, waiting for its call.
pub(super) struct Prepared {
    pub(super) store: Store<CallState>,
    pub(super) instance: Instance,
    pub(super) pipes: Pipes,
    code: Arc<Code>,
    _counted: Counted,
}

/// The ready instances of one loaded version.
#[derive(Default)]
pub(super) struct Ready {
    queue: Mutex<Vec<Prepared>>,
    /// A refill task runs: at most one per version.
    refilling: AtomicBool,
    /// Set when the version is installed: a version only being prepared (its `describe`)
    /// keeps nothing.
    armed: AtomicBool,
    /// Set when instantiating ahead failed: this version is not tried again.
    failed: AtomicBool,
    /// The warm-up each instance runs before it is kept, set when a large version is
    /// installed.
    warm_up: OnceLock<WarmUp>,
    /// Set when a warm-up ahead failed or wrote output: this version's instances are made
    /// ahead without it from then on.
    cold: AtomicBool,
    /// Calls that ran on an instance made ahead.
    served: AtomicU64,
}

impl Ready {
    /// From now on, calls leave instances ready for the next ones, each warmed up by
    /// `warm_up` if there is one (the first one given stays).
    pub(super) fn arm(&self, warm_up: Option<WarmUp>) {
        if let Some(warm_up) = warm_up {
            let _ = self.warm_up.set(warm_up);
        }
        self.armed.store(true, Ordering::Release);
    }

    /// The warm-up instances made ahead run, unless one failed.
    fn warm_up(&self) -> Option<&WarmUp> {
        self.warm_up
            .get()
            .filter(|_| !self.cold.load(Ordering::Acquire))
    }

    /// Drops what is kept and keeps nothing more: the version was replaced or removed.
    pub(super) fn disarm(&self) {
        self.armed.store(false, Ordering::Release);
        self.clear();
    }

    /// Drops what is kept (made from code no longer current).
    pub(super) fn clear(&self) {
        let dropped = std::mem::take(&mut *self.queue.lock().expect("ready lock"));
        drop(dropped);
    }

    /// A ready instance of `code`, if one is kept. One made from other code (the baseline
    /// tier's, before the optimised code came in) is dropped instead.
    pub(super) fn take(&self, code: &Arc<Code>) -> Option<Prepared> {
        let mut queue = self.queue.lock().expect("ready lock");
        let prepared = queue.pop()?;
        if Arc::ptr_eq(&prepared.code, code) {
            self.served.fetch_add(1, Ordering::Relaxed);
            return Some(prepared);
        }
        let stale = std::mem::take(&mut *queue);
        drop(queue);
        drop((prepared, stale));
        None
    }

    /// Instances kept now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.queue.lock().expect("ready lock").len()
    }

    /// Calls that ran on an instance made ahead so far.
    #[cfg(test)]
    fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// True when this version's instances are made ahead without a warm-up.
    #[cfg(test)]
    fn cold(&self) -> bool {
        self.warm_up().is_none()
    }

    /// Claims the refill of this version when it is armed, keeps fewer than `depth` and no
    /// other refill runs; the claimant calls [`Ready::refilled`] when done.
    fn claim_refill(&self, depth: usize) -> bool {
        self.armed.load(Ordering::Acquire)
            && !self.failed.load(Ordering::Acquire)
            && self.queue.lock().expect("ready lock").len() < depth
            && !self.refilling.swap(true, Ordering::AcqRel)
    }

    fn refilled(&self) {
        self.refilling.store(false, Ordering::Release);
    }

    /// Keeps `prepared`, unless the version was disarmed meanwhile or keeps `depth`; true
    /// when there is room for more.
    fn keep(&self, prepared: Prepared, depth: usize) -> bool {
        let mut queue = self.queue.lock().expect("ready lock");
        if !self.armed.load(Ordering::Acquire) || queue.len() >= depth {
            return false;
        }
        queue.push(prepared);
        queue.len() < depth
    }
}

/// How many ready instances the host keeps in all, against [`MAX_READY`].
#[derive(Clone, Default)]
pub(super) struct Count(Arc<AtomicUsize>);

impl Count {
    /// One more ready instance, if under [`MAX_READY`].
    fn add(&self) -> Option<Counted> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_READY as usize).then_some(n + 1)
            })
            .ok()
            .map(|_| Counted(self.0.clone()))
    }
}

#[cfg(test)]
impl Count {
    /// Ready instances in the host now.
    fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// One ready instance counted in the host's [`Count`], until dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What makes instances of `code` until `ready` keeps `depth` (or the host [`MAX_READY`]),
/// when this version keeps fewer and no other refill runs; `new_store` makes the store of
/// one, charging nothing to the budget. Each runs the version's warm-up within `wall`.
pub(super) fn refill(
    depth: usize,
    ready: Arc<Ready>,
    code: Arc<Code>,
    count: Count,
    wall: Duration,
    new_store: impl Fn(&Code, &Pipes) -> Store<CallState> + Send + 'static,
) -> Option<impl Future<Output = ()> + Send + 'static> {
    if !ready.claim_refill(depth) {
        return None;
    }
    Some(async move {
        loop {
            let Some(counted) = count.add() else { break };
            let pipes = Pipes::new();
            let mut store = new_store(&code, &pipes);
            let instance = match code.pre.instantiate_async(&mut store).await {
                Ok(instance) => instance,
                Err(e) => {
                    tracing::debug!(error = %format!("{e:#}"), "instantiating ahead failed");
                    ready.failed.store(true, Ordering::Release);
                    break;
                }
            };
            if let Some(warm_up) = ready.warm_up()
                && let Err(error) =
                    warm_up_ahead(warm_up, &mut store, instance, &code, &pipes, wall).await
            {
                tracing::info!(plugin = %warm_up.plugin(), %error,
                    "an instance made ahead failed its warm-up; the next ones are made without it");
                ready.cold.store(true, Ordering::Release);
                continue;
            }
            let prepared = Prepared {
                store,
                instance,
                pipes,
                code: code.clone(),
                _counted: counted,
            };
            if !ready.keep(prepared, depth) {
                break;
            }
        }
        ready.refilled();
    })
}

/// Runs `warm_up` on `instance`, silently (its log lines are dropped), within `wall`. Fails
/// when the warm-up does, or writes to stdout or stderr (what the call would then log).
async fn warm_up_ahead(
    warm_up: &WarmUp,
    store: &mut Store<CallState>,
    instance: Instance,
    code: &Code,
    pipes: &Pipes,
    wall: Duration,
) -> Result<(), String> {
    store.data_mut().log_budget = 0;
    let exports = code.exports.load(&instance);
    match tokio::time::timeout(wall, warm_up.run(store, &exports)).await {
        Err(_) => Err(format!("it took longer than {wall:?}")),
        Ok(Err(e)) => Err(first_line(&format!("{e:#}"))),
        Ok(Ok(()))
            if !pipes.stdout.contents().is_empty() || !pipes.stderr.contents().is_empty() =>
        {
            Err("it wrote to stdout or stderr".into())
        }
        Ok(Ok(())) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::plugin::test_plugins::{built, hotswap, hotswap_source, patched};
    use crate::plugin::tiers::Tier;
    use crate::plugin::{Limits, LoadedPlugin, PluginHost, SourceConfig};

    async fn until_kept(plugin: &LoadedPlugin, n: usize) {
        for _ in 0..500 {
            if plugin.ready.len() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} instances kept, not {n}", plugin.ready.len());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn calls_run_on_instances_made_ahead_each_used_once_and_charged_only_while_used() {
        let host = PluginHost::new(Limits::default(), None).unwrap();
        let prepared = host.prepare(&hotswap(), "test".into()).await.unwrap();
        assert_eq!(
            prepared.ready.len(),
            0,
            "a version being prepared keeps none"
        );
        let plugin = host.install(prepared);
        for round in 0..5 {
            assert_eq!(
                host.normalize_key(&hotswap_source(), &format!(" hs-{round} "))
                    .await
                    .unwrap(),
                format!("HS-{round}")
            );
            until_kept(&plugin, 2).await;
            assert_eq!(host.memory_in_use(), 0, "waiting instances are not charged");
        }
        // The first call instantiated on its path; each later one took an instance made ahead.
        assert_eq!(plugin.ready.served(), 4);
        assert_eq!(host.ready_count.get(), 2);

        // A new version: the old one's instances are dropped, the new one's made on use.
        let newer = host.install(host.prepare(&hotswap(), "test".into()).await.unwrap());
        assert_eq!((plugin.ready.len(), host.ready_count.get()), (0, 0));
        host.normalize_key(&hotswap_source(), "hs-9").await.unwrap();
        until_kept(&newer, 2).await;
        host.remove("hotswap");
        assert_eq!(host.ready_count.get(), 0, "a removed version keeps nothing");
    }

    /// What `normalize-key` of `?calls` answers on the next instance: how many `normalize-key`
    /// calls that instance answered before (see the hotswap test plugin).
    async fn calls_before(host: &PluginHost) -> String {
        host.normalize_key(&hotswap_source(), "?calls")
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_large_plugins_instances_made_ahead_ran_its_warm_up_and_nothing_else() {
        // Every binary counts as large here: compiled by Winch first, then snapshotted.
        let host = PluginHost::new(Limits::default(), None)
            .unwrap()
            .baseline_tier_from(0);
        let plugin = host.install(host.prepare(&hotswap(), "test".into()).await.unwrap());
        for _ in 0..600 {
            if plugin.tier() == Tier::Optimised {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            plugin.tier(),
            Tier::Optimised,
            "{:?}",
            plugin.optimise_error()
        );
        // No call has left an instance of the snapshot ready: this one is made on its path,
        // from the snapshot, taken after one warm-up `normalize-key`.
        assert_eq!(calls_before(&host).await, "CALLS-1");
        for _ in 0..4 {
            until_kept(&plugin, 2).await;
            // One more: the warm-up each instance made ahead runs; no call ran in it.
            assert_eq!(calls_before(&host).await, "CALLS-2");
        }
        assert_eq!(plugin.ready.served(), 4);
        assert!(!plugin.ready.cold());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_small_plugins_instances_made_ahead_are_not_warmed_up() {
        let host = PluginHost::new(Limits::default(), None).unwrap();
        let plugin = host.install(host.prepare(&hotswap(), "test".into()).await.unwrap());
        assert_eq!(calls_before(&host).await, "CALLS-0");
        until_kept(&plugin, 2).await;
        assert_eq!(calls_before(&host).await, "CALLS-0");
        assert_eq!(plugin.ready.served(), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn instances_made_ahead_whose_warm_up_fails_are_made_without_it() {
        // The buggy test plugin panics on a key with `://`: its key example becomes one, so
        // its warm-up traps (and no snapshot is taken, see `snapshot`'s tests).
        let bytes = patched(built("contract-plugins/buggy.wasm"), b"BUG-7", b"a://b");
        let host = PluginHost::new(Limits::default(), None)
            .unwrap()
            .baseline_tier_from(0);
        let plugin = host.install(host.prepare(&bytes, "test".into()).await.unwrap());
        let source = SourceConfig {
            provider: "buggy".into(),
            base_url: "https://bugs.example.com".into(),
            auth_type: "none".into(),
            ..Default::default()
        };
        for n in 1..=3 {
            let key = format!(" bug-{n} ");
            assert_eq!(
                host.normalize_key(&source, &key).await.unwrap(),
                format!("BUG-{n}")
            );
            until_kept(&plugin, 2).await;
        }
        assert!(plugin.ready.cold());
        assert_eq!(
            plugin.ready.served(),
            2,
            "calls still run on instances made ahead"
        );
    }
}
