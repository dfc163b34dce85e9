//! The one wasmtime `Engine` of the process: its configuration, the pooling allocator and
//! the epoch ticker that drives CPU deadlines.

use std::time::Duration;

use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy,
};

use super::Limits;

/// How often the epoch advances: the granularity of CPU deadlines and of the timeslices a
/// busy guest gives back to tokio.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Builds the engine: component model, epoch interruption, and the pooling allocator sized to
/// `limits.max_concurrent_calls` and the instances kept ready (falling back to on-demand
/// allocation where the machine cannot reserve the pool's address space).
pub fn build(limits: &Limits) -> anyhow::Result<Engine> {
    start_compile_threads();
    let mut config = base_config();
    // The calls' slots, and the instances kept ready for the next calls (see `ready`).
    let n = limits.max_concurrent_calls + super::ready::MAX_READY;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        // A std guest uses ~3 core instances (the guest, wasi adapters); leave headroom.
        .total_core_instances(n * 6)
        .total_memories(n * 2)
        .total_tables(n * 4)
        .total_stacks(n)
        .max_memory_size(limits.memory_bytes)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20)
        .table_keep_resident(64 << 10)
        // Reset a finished call's memory by copying back only the pages it wrote, where Linux
        // says which (`PAGEMAP_SCAN`, 6.7+). Without it, the first `keep_resident` bytes are
        // reset by `memset` whether written or not (a Rust guest writes near the top of its
        // stack region, at 1 MiB, and above), and the pages it did write are unmapped and
        // faulted in again by the next call.
        .pagemap_scan(Enabled::Auto);
    keep_call_memory_resident(&mut pool);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&config) {
        Ok(engine) => Ok(start_ticker(engine)),
        Err(e) => {
            tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand allocation");
            Ok(start_ticker(Engine::new(&base_config())?))
        }
    }
}

/// How much of a finished call's linear memory stays mapped in its pool slot for the next
/// call (reset by copying back the pages the call wrote, see `pagemap_scan` above) instead of
/// being unmapped and faulted in again. 1 MiB covers what a `normalize-key` call of the
/// JavaScript example writes (between 384 and 512 KiB: at the former 256 KiB, each of its
/// fresh instances took ~60 more page faults); a Rust plugin writes far less. It is resident
/// memory per used slot, at most `total_memories` of them.
fn keep_call_memory_resident(pool: &mut PoolingAllocationConfig) {
    pool.linear_memory_keep_resident(1 << 20);
}

fn base_config() -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(512 << 10)
        .async_stack_size(2 << 20)
        .memory_init_cow(true);
    config
}

/// Builds the engine of the baseline tier (see `tiers`): the same configuration compiled by
/// Winch, wasmtime's fast baseline compiler, allocating on demand (its code serves only until
/// the optimised code is ready, so it reserves no second instance pool).
pub fn build_baseline() -> anyhow::Result<Engine> {
    start_compile_threads();
    let mut config = base_config();
    config.strategy(Strategy::Winch);
    Ok(start_ticker(Engine::new(&config)?))
}

/// How much lower than request handling compilation runs (a nice value, 0-19).
pub const COMPILE_NICENESS: i32 = 10;

/// Starts the threads wasmtime compiles on (rayon's global pool: its parallel compilation) at
/// a lower scheduling priority: compiling a large plugin keeps every core busy for seconds (a
/// minute on a debug host), and when request handling wants a core too, it must win. A no-op
/// once the pool runs (the first engine of the process starts it).
fn start_compile_threads() {
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("wasm-compile-{i}"))
        .start_handler(|_| lower_this_thread())
        .build_global();
}

fn lower_this_thread() {
    lower_this_thread_to(COMPILE_NICENESS);
}

/// Sets the calling thread's nice value (0-19) on Linux; a no-op elsewhere.
#[cfg(target_os = "linux")]
pub(super) fn lower_this_thread_to(niceness: i32) {
    // SAFETY: setpriority on the calling thread's own id only raises its nice value, which
    // any thread may do; a failure leaves it at the normal priority.
    let tid = unsafe { libc::gettid() };
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, niceness) };
}

#[cfg(not(target_os = "linux"))]
pub(super) fn lower_this_thread_to(_niceness: i32) {}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a plain thread, which exits once the
/// engine is dropped (the thread only holds a weak reference).
fn start_ticker(engine: Engine) -> Engine {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn the epoch thread");
    engine
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn compilation_runs_at_a_lower_priority_than_request_handling() {
        build(&Limits::default()).unwrap();
        let nice = |_: rayon::BroadcastContext<'_>| {
            // SAFETY: reads the calling thread's own nice value.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
        };
        let niceness = rayon::broadcast(nice);
        assert!(!niceness.is_empty());
        assert!(
            niceness.iter().all(|n| *n == COMPILE_NICENESS),
            "{niceness:?}"
        );
    }
}
