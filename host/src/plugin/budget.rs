//! Fair shares of the plugin host, so one plugin (or one source) cannot starve the others.
//!
//! Every call takes a [`Permit`] before it starts: a slot of its plugin (at most
//! [`Limits::max_calls_per_plugin`] at once), a slot of its stored source
//! ([`Limits::max_calls_per_source`]) and a slot of the host ([`Limits::max_concurrent_calls`]),
//! in that order, so calls queued behind a busy plugin or source hold no host slot. A call that
//! waits longer than its wall-clock limit for them fails with [`PluginError::Busy`], naming the
//! cap it waited for.
//!
//! A call's linear memory is charged, as it grows, to the host's memory budget
//! ([`Limits::memory_budget_bytes`]) and to its plugin's share of it (the plugin's share of the
//! call slots, at least one call's cap): see [`Meter`]. A growth past either is refused and
//! traps that call ([`PluginError::MemoryBudget`]); nothing ever allocates past the budget.
//!
//! A guest that computes for longer than one epoch tick takes turns ([`Turn`]): at each tick
//! it waits for its plugin's one CPU turn and one of the host's (one fewer than the cores, at
//! least one), each lasting a tick. However many calls a plugin has looping, they use one core
//! between them, and a core stays free for the API and the calls that finish within a tick.
//!
//! This module hands out permits and counts bytes; it knows nothing of what calls do.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{ResourceLimiter, StoreLimits};

use super::{Limits, PluginError};

/// The call slots and memory every plugin call draws from.
pub(super) struct Budget {
    host_slots: Arc<Semaphore>,
    host_turns: Arc<Semaphore>,
    host_memory: Arc<Pool>,
    per_plugin: u32,
    per_source: u32,
    plugin_memory: usize,
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
    sources: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// One plugin's call slots, memory share and CPU turn.
struct Lane {
    slots: Arc<Semaphore>,
    memory: Pool,
    turn: Arc<Semaphore>,
}

/// Bytes in use against a limit.
struct Pool {
    used: AtomicUsize,
    limit: usize,
}

impl Pool {
    fn new(limit: usize) -> Pool {
        Pool {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// Takes `bytes` if they fit under the limit.
    fn charge(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// What a call holds while it runs: its slots, given back when dropped.
pub(super) struct Permit {
    _plugin: OwnedSemaphorePermit,
    _source: Option<OwnedSemaphorePermit>,
    _host: OwnedSemaphorePermit,
}

impl Budget {
    /// A budget sized by `limits`.
    pub(super) fn new(limits: &Limits) -> Budget {
        let share = limits.memory_budget_bytes as u128 * u128::from(limits.max_calls_per_plugin)
            / u128::from(limits.max_concurrent_calls.max(1));
        let plugin_memory = usize::try_from(share)
            .unwrap_or(usize::MAX)
            .max(limits.memory_bytes)
            .min(limits.memory_budget_bytes);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Budget {
            host_slots: Arc::new(Semaphore::new(limits.max_concurrent_calls as usize)),
            host_turns: Arc::new(Semaphore::new(cores.saturating_sub(1).max(1))),
            host_memory: Arc::new(Pool::new(limits.memory_budget_bytes)),
            per_plugin: limits.max_calls_per_plugin,
            per_source: limits.max_calls_per_source,
            plugin_memory,
            lanes: Mutex::new(HashMap::new()),
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a slot of `plugin`, of `source` (a stored source's id, if any) and of the
    /// host, in that order; fails naming the cap when that takes longer than `wait`.
    pub(super) async fn admit(
        &self,
        plugin: &str,
        source: Option<&str>,
        wait: Duration,
    ) -> Result<Permit, PluginError> {
        let deadline = tokio::time::Instant::now() + wait;
        let busy = |cap: String| {
            PluginError::Busy(format!(
                "it waited {wait:?} for a free slot: {cap}; try again later"
            ))
        };
        let plugin_slot = take(self.lane(plugin).slots.clone(), deadline)
            .await
            .ok_or_else(|| {
                busy(format!(
                    "plugin {plugin:?} already runs {} calls at once, its limit \
                     (max_calls_per_plugin)",
                    self.per_plugin
                ))
            })?;
        let source_slot = match source {
            Some(id) => Some(take(self.source(id), deadline).await.ok_or_else(|| {
                busy(format!(
                    "source {id} already runs {} calls at once, its limit \
                     (max_calls_per_source)",
                    self.per_source
                ))
            })?),
            None => None,
        };
        let host_slot = take(self.host_slots.clone(), deadline)
            .await
            .ok_or_else(|| {
                busy("all plugin call slots of the host are in use (max_concurrent_calls)".into())
            })?;
        Ok(Permit {
            _plugin: plugin_slot,
            _source: source_slot,
            _host: host_slot,
        })
    }

    /// The memory meter of one call into `plugin`, enforcing `limits` per call.
    pub(super) fn meter(&self, plugin: &str, limits: StoreLimits) -> Meter {
        Meter {
            limits,
            host: self.host_memory.clone(),
            lane: self.lane(plugin),
            charged: 0,
            deferred: None,
        }
    }

    /// The meter of an instance made ahead of its call (see `ready`): it enforces `limits`
    /// but charges nothing to the budget until [`Meter::start_charging`], when the instance
    /// is taken by a call.
    pub(super) fn meter_ahead(&self, plugin: &str, limits: StoreLimits) -> Meter {
        let mut meter = self.meter(plugin, limits);
        meter.deferred = Some(0);
        meter
    }

    /// The CPU turns of one call into `plugin`, each lasting `tick`.
    pub(super) fn turn(&self, plugin: &str, tick: Duration) -> Turn {
        Turn {
            plugin: self.lane(plugin).turn.clone(),
            host: self.host_turns.clone(),
            tick,
        }
    }

    /// Bytes of linear memory the calls running now hold, host-wide.
    pub(super) fn memory_in_use(&self) -> usize {
        self.host_memory.used.load(Ordering::Acquire)
    }

    fn lane(&self, plugin: &str) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().expect("budget lock");
        lanes
            .entry(plugin.to_string())
            .or_insert_with(|| {
                Arc::new(Lane {
                    slots: Arc::new(Semaphore::new(self.per_plugin as usize)),
                    memory: Pool::new(self.plugin_memory),
                    turn: Arc::new(Semaphore::new(1)),
                })
            })
            .clone()
    }

    fn source(&self, id: &str) -> Arc<Semaphore> {
        let mut sources = self.sources.lock().expect("budget lock");
        sources
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_source as usize)))
            .clone()
    }
}

/// A slot of `slots`, unless `deadline` passes first.
async fn take(
    slots: Arc<Semaphore>,
    deadline: tokio::time::Instant,
) -> Option<OwnedSemaphorePermit> {
    tokio::time::timeout_at(deadline, slots.acquire_owned())
        .await
        .ok()
        .map(|permit| permit.expect("budget semaphores are never closed"))
}

/// How a call that computes past an epoch tick gets back on the CPU: its plugin's turn, then
/// a host turn, both held for one tick (the longest the guest then runs before the next).
pub(super) struct Turn {
    plugin: Arc<Semaphore>,
    host: Arc<Semaphore>,
    tick: Duration,
}

impl Turn {
    /// What a guest awaits at an epoch tick before it runs on.
    pub(super) fn next(&self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let (plugin, host, tick) = (self.plugin.clone(), self.host.clone(), self.tick);
        Box::pin(async move {
            tokio::task::yield_now().await;
            let plugin = plugin.acquire_owned().await;
            let host = host.acquire_owned().await;
            // Given back after a tick even if the guest went to wait for HTTP meanwhile.
            tokio::spawn(async move {
                tokio::time::sleep(tick).await;
                drop((plugin, host));
            });
        })
    }
}

/// Why a memory growth was refused although the call was under its own cap.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct MemoryRefused(pub String);

/// The resource limiter of one call: the per-call limits, and every byte of linear memory
/// charged to the host's budget and the plugin's share until the call answers.
pub(super) struct Meter {
    limits: StoreLimits,
    host: Arc<Pool>,
    lane: Arc<Lane>,
    charged: usize,
    /// Bytes grown before the instance's call began, not charged yet (see
    /// [`Budget::meter_ahead`]); `None` once charging.
    deferred: Option<usize>,
}

impl Meter {
    /// Charges what an instance made ahead grew to before its call, and everything from now
    /// on; refused like a growth when the budget or the plugin's share has no room for it.
    pub(super) fn start_charging(&mut self) -> Result<(), MemoryRefused> {
        if let Some(bytes) = self.deferred {
            self.charge(bytes)?;
            self.deferred = None;
        }
        Ok(())
    }

    /// Gives back everything charged, once the call has answered: its memory is reset and
    /// its pool slot freed when the store is dropped, off the caller's path, while the call's
    /// [`Permit`] is still held (so no more stores live than the slots admit).
    pub(super) fn stop_charging(&mut self) {
        self.host.release(self.charged);
        self.lane.memory.release(self.charged);
        self.charged = 0;
    }

    fn charge(&mut self, bytes: usize) -> Result<(), MemoryRefused> {
        if !self.host.charge(bytes) {
            return Err(MemoryRefused(format!(
                "the plugin calls running now use the host's whole memory budget ({} bytes, \
                 memory_budget_bytes)",
                self.host.limit
            )));
        }
        if !self.lane.memory.charge(bytes) {
            self.host.release(bytes);
            return Err(MemoryRefused(format!(
                "the calls of this plugin running now use its whole share of the memory \
                 budget ({} bytes)",
                self.lane.memory.limit
            )));
        }
        self.charged += bytes;
        Ok(())
    }
}

impl ResourceLimiter for Meter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if !self.limits.memory_growing(current, desired, maximum)? {
            return Ok(false);
        }
        let bytes = desired.saturating_sub(current);
        match &mut self.deferred {
            Some(deferred) => *deferred += bytes,
            None => self.charge(bytes)?,
        }
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.stop_charging();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(calls: u32, per_plugin: u32, per_source: u32) -> Limits {
        Limits {
            max_concurrent_calls: calls,
            max_calls_per_plugin: per_plugin,
            max_calls_per_source: per_source,
            ..Limits::default()
        }
    }

    const WAIT: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn a_busy_plugin_leaves_host_slots_to_the_others() {
        let budget = Budget::new(&limits(3, 2, 8));
        let _a = budget.admit("hostile", None, WAIT).await.unwrap();
        let _b = budget.admit("hostile", None, WAIT).await.unwrap();
        let err = budget.admit("hostile", None, WAIT).await.err().unwrap();
        assert!(matches!(err, PluginError::Busy(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("\"hostile\"") && text.contains("max_calls_per_plugin"),
            "{text}"
        );
        // The queued call held no host slot: another plugin still gets the third one.
        budget.admit("jira-cloud", None, WAIT).await.unwrap();
    }

    #[tokio::test]
    async fn calls_of_one_source_queue_behind_its_cap_and_run_when_a_slot_frees() {
        let budget = Arc::new(Budget::new(&limits(64, 16, 2)));
        let first = budget
            .admit("jira-cloud", Some("src-1"), WAIT)
            .await
            .unwrap();
        let _second = budget
            .admit("jira-cloud", Some("src-1"), WAIT)
            .await
            .unwrap();
        // Another source of the same plugin is not held up.
        budget
            .admit("jira-cloud", Some("src-2"), WAIT)
            .await
            .unwrap();
        let queued = tokio::spawn({
            let budget = budget.clone();
            async move {
                budget
                    .admit("jira-cloud", Some("src-1"), Duration::from_secs(5))
                    .await
                    .map(drop)
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!queued.is_finished(), "the third call must wait");
        drop(first);
        queued.await.unwrap().unwrap();

        let _third = budget
            .admit("jira-cloud", Some("src-1"), WAIT)
            .await
            .unwrap();
        let err = budget
            .admit("jira-cloud", Some("src-1"), WAIT)
            .await
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(
            text.contains("src-1") && text.contains("max_calls_per_source"),
            "{text}"
        );
    }

    #[test]
    fn memory_is_charged_to_the_host_and_the_plugin_share_and_given_back() {
        let limits = Limits {
            memory_bytes: 10,
            memory_budget_bytes: 100,
            max_concurrent_calls: 4,
            max_calls_per_plugin: 2,
            ..Limits::default()
        };
        let budget = Budget::new(&limits);
        let store = || StoreLimits::default();
        // A plugin's share is half the budget here (2 of 4 slots).
        let mut a = budget.meter("bomb", store());
        assert!(a.memory_growing(0, 50, None).unwrap());
        let mut b = budget.meter("bomb", store());
        let err = b.memory_growing(0, 1, None).unwrap_err();
        assert!(err.to_string().contains("share"), "{err}");
        // Another plugin gets the rest of the host's budget, and no more.
        let mut c = budget.meter("jira-cloud", store());
        assert!(c.memory_growing(0, 50, None).unwrap());
        let err = c.memory_growing(50, 51, None).unwrap_err();
        assert!(err.to_string().contains("memory_budget_bytes"), "{err}");
        assert_eq!(budget.memory_in_use(), 100);
        drop((a, b, c));
        assert_eq!(budget.memory_in_use(), 0);
    }

    /// Two calls at once, of up to 60 bytes each, in a budget of 100.
    fn budget_of_two_calls() -> Budget {
        Budget::new(&Limits {
            memory_bytes: 60,
            memory_budget_bytes: 100,
            max_concurrent_calls: 2,
            max_calls_per_plugin: 2,
            ..Limits::default()
        })
    }

    #[test]
    fn an_instance_made_ahead_is_charged_when_its_call_begins() {
        let budget = budget_of_two_calls();
        let mut ahead = budget.meter_ahead("jira-cloud", StoreLimits::default());
        assert!(ahead.memory_growing(0, 50, None).unwrap());
        assert_eq!(budget.memory_in_use(), 0, "nothing runs yet");
        let mut running = budget.meter("jira-cloud", StoreLimits::default());
        assert!(running.memory_growing(0, 60, None).unwrap());
        let err = ahead.start_charging().unwrap_err();
        assert!(err.0.contains("memory_budget_bytes"), "{}", err.0);
        drop(running);
        ahead.start_charging().unwrap();
        assert_eq!(budget.memory_in_use(), 50);
        assert!(ahead.memory_growing(50, 60, None).unwrap());
        drop(ahead);
        assert_eq!(budget.memory_in_use(), 0);
    }

    #[test]
    fn a_call_that_answered_gives_its_memory_back_before_its_store_is_dropped() {
        let budget = budget_of_two_calls();
        let mut answered = budget.meter("jira-cloud", StoreLimits::default());
        assert!(answered.memory_growing(0, 60, None).unwrap());
        answered.stop_charging();
        assert_eq!(budget.memory_in_use(), 0);
        let mut next = budget.meter("jira-cloud", StoreLimits::default());
        assert!(next.memory_growing(0, 60, None).unwrap());
        drop(answered);
        assert_eq!(budget.memory_in_use(), 60, "given back once, not again");
        drop(next);
        assert_eq!(budget.memory_in_use(), 0);
    }
}
