//! Instances made ahead of their calls, off the request path.
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
//! Bounds: at most [`Limits::instances_ready`] per loaded version and [`MAX_READY`] in the
//! whole host, for which the engine's instance pool reserves its own slots (see
//! `engine::build`), so ready instances never take a slot a call needs. Their memory is not
//! charged to the budget while they wait: it is their initial memory only (no guest code has
//! run but the component's start functions), mapped copy-on-write from the compiled image. A
//! version that fails to instantiate ahead is not tried again (its calls instantiate on their
//! path and report the failure); a replaced or removed version, or one whose optimised code
//! was swapped in, drops what it kept.
//!
//! [`Meter::start_charging`]: super::budget::Meter::start_charging
//! [`Limits::instances_ready`]: super::Limits::instances_ready

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::Store;
use wasmtime::component::Instance;

use super::tiers::Code;
use super::{CallState, Pipes};

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
    /// Calls that ran on an instance made ahead.
    served: AtomicU64,
}

impl Ready {
    /// From now on, calls leave instances ready for the next ones.
    pub(super) fn arm(&self) {
        self.armed.store(true, Ordering::Release);
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
/// one, charging nothing to the budget.
pub(super) fn refill(
    depth: usize,
    ready: Arc<Ready>,
    code: Arc<Code>,
    count: Count,
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::plugin::test_plugins::{hotswap, hotswap_source};
    use crate::plugin::{Limits, LoadedPlugin, PluginHost};

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
}
