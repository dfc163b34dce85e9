//! `cargo bench -p integration-host --bench normalize` (after `scripts/build-plugins.sh`).
//!
//! One `normalize-key` call through a fresh sandboxed instance (what the service does for every
//! call) and the same call on one warm instance, for the Rust `jira` plugin, the Python example
//! (`target/example-plugins/redmine-py.wasm`, componentize-py) and the JavaScript example
//! (`target/example-plugins/redmine-js.wasm`, componentize-js); and the same validation natively
//! with `regex`. An example that is missing is skipped with a note. Prints p50/p99 of each row
//! side by side and the ratios the runtime-speed targets are stated in:
//!
//! - `fresh/warm`: what a fresh instance costs over calling an instance already set up
//!   (instantiation, memory reset, the guest's own start-up); the target for Rust is at most 4x;
//! - `fresh / rust fresh`: how much a big interpreter runtime costs per call over a small Rust
//!   plugin; the target is at most 10x.
//!
//! The fresh-instance path is measured three ways:
//!
//! - `fresh, 1 call/ms`: the service's path with calls arriving one per millisecond, so the
//!   instances it makes ahead (`Limits::instances_ready`) are ready when a call comes: what a
//!   request waits for in a service that is not saturated;
//! - `fresh, back to back`: the same path with calls one right after the other, faster than
//!   instances are made ahead: most calls instantiate on their own path (CPU-bound);
//! - `fresh, instantiated on the path`: a host keeping no instance ready (`instances_ready = 0`),
//!   each call instantiating its own (what every call did before instances were made ahead).
//!
//! Every row is measured in the same alternating rounds in one process (rust fresh, rust warm,
//! native, python fresh, python warm, javascript fresh, javascript warm, then again), with the
//! same input per plugin, so the ratios hold on a busy machine even when the absolute figures
//! drift; compare ratios, not microseconds, across machines and runs. A bench binary rather than
//! criterion: the figures we want are per-call percentiles of the real path, and it needs no
//! extra dependency.
//!
//! The Python and JavaScript examples are measured as the service serves them in the end (their
//! warm-up snapshot, see `host/src/plugin/snapshot.rs`, and instances made ahead warmed up by
//! the same warm-up, see `host/src/plugin/ready.rs`), and as the uploaded binaries would serve
//! without either (`python-unsnapshotted`, `javascript-unsnapshotted`).
//!
//! `NORMALIZE_BENCH_ONLY=rust|python|javascript|...-unsnapshotted` measures only that plugin's fresh calls at
//! 1 call/ms (`NORMALIZE_BENCH_CALLS` of them; `NORMALIZE_BENCH_ON_PATH=1`: on the host that
//! keeps no instance ready), for a profiler: `perf record -g` on the bench binary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use host::plugin::{Limits, PluginHost, SourceConfig};

/// Calls per row for the Rust plugin and native `regex`, split over [`ROUNDS`].
const N: usize = 20_000;
/// Calls per row for the Python and JavaScript plugins (slower calls: fewer of them).
const N_BIG: usize = 2_000;
/// The rows alternate in this many rounds.
const ROUNDS: usize = 10;
/// How often calls arrive in the paced row.
const PACE: Duration = Duration::from_millis(1);

/// One plugin under measurement: its own host (the Python and JavaScript examples both claim
/// the provider id `redmine`), a source of its provider, and the key every call normalises.
struct Subject {
    name: &'static str,
    host: PluginHost,
    /// A host that keeps no instance ready.
    on_path: PluginHost,
    source: SourceConfig,
    key: &'static str,
    calls: usize,
    paced: Vec<Duration>,
    back_to_back: Vec<Duration>,
    instantiating: Vec<Duration>,
    warm: Vec<Duration>,
    warm_paced: Vec<Duration>,
}

impl Subject {
    /// Loads `file` in a host of its own and checks it normalises `key` to `expected`, then
    /// warms up; none when the file was not built.
    async fn load(
        name: &'static str,
        file: &Path,
        source: SourceConfig,
        (key, expected): (&'static str, &str),
        calls: usize,
        snapshot: bool,
    ) -> Option<Subject> {
        if !file.exists() {
            println!(
                "{name}: {} is missing (scripts/build-plugins.sh builds it)",
                file.display()
            );
            return None;
        }
        let (host, on_path) = (new_host(2, snapshot), new_host(0, snapshot));
        let started = Instant::now();
        let plugin = host.load_file(file).await.expect("the plugin loads");
        // A large binary serves on baseline code first; what is measured is what it serves
        // in the end: its warm-up snapshot, compiled by Cranelift (see plugin/snapshot.rs).
        for plugin in [
            plugin.clone(),
            on_path.load_file(file).await.expect("loads"),
        ] {
            while plugin.tier() != host::plugin::Tier::Optimised {
                let error = plugin.optimise_error();
                assert!(error.is_none(), "{error:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        println!(
            "{name}: {} ({} bytes), loaded in {:.1?} (from the compile cache: {})",
            file.display(),
            plugin.size_bytes,
            started.elapsed(),
            plugin.from_cache
        );
        for host in [&host, &on_path] {
            assert_eq!(host.normalize_key(&source, key).await.unwrap(), expected);
            for _ in 0..10 {
                host.normalize_key(&source, key).await.unwrap();
            }
        }
        Some(Subject {
            name,
            host,
            on_path,
            source,
            key,
            calls,
            paced: Vec::with_capacity(calls),
            back_to_back: Vec::with_capacity(calls),
            instantiating: Vec::with_capacity(calls),
            warm: Vec::with_capacity(calls),
            warm_paced: Vec::with_capacity(calls),
        })
    }

    /// One round: a share of each row's calls.
    async fn round(&mut self) {
        let n = self.calls / ROUNDS;
        let mut ticks = pace();
        for _ in 0..n {
            ticks.tick().await;
            self.paced.push(self.fresh_call(&self.host).await);
        }
        for _ in 0..n {
            let took = self.fresh_call(&self.host).await;
            self.back_to_back.push(took);
        }
        let mut ticks = pace();
        for _ in 0..n {
            ticks.tick().await;
            let took = self.fresh_call(&self.on_path).await;
            self.instantiating.push(took);
        }
        let warm = self
            .host
            .bench_warm_normalize(&self.source, self.key, n, None)
            .await
            .unwrap();
        self.warm.extend(warm);
        let warm = self
            .host
            .bench_warm_normalize(&self.source, self.key, n, Some(PACE))
            .await
            .unwrap();
        self.warm_paced.extend(warm);
    }

    /// The time of one `normalize-key` call on a fresh instance of `host`.
    async fn fresh_call(&self, host: &PluginHost) -> Duration {
        let started = Instant::now();
        (host.normalize_key(&self.source, self.key).await).unwrap();
        started.elapsed()
    }
}

/// A call every [`PACE`]: the worker thread waits in between as a service's does between
/// requests (parked, woken by the timer), and the runtime makes instances ahead meanwhile.
fn pace() -> tokio::time::Interval {
    let mut pace = tokio::time::interval(PACE);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    pace
}

/// A plugin host keeping `instances_ready` instances of each plugin ready. Without
/// `snapshot`, no binary counts as large: compiled by Cranelift at once (no baseline tier, so
/// no warm-up snapshot), instances made ahead without a warm-up, cached in a directory of their
/// own (a compiled snapshot is cached under the uploaded binary's digest).
fn new_host(instances_ready: u32, snapshot: bool) -> PluginHost {
    let target = target_dir();
    let limits = Limits {
        max_plugin_bytes: 64 << 20,
        instances_ready,
        ..Limits::default()
    };
    let cache = target.join(if snapshot {
        "bench-cache"
    } else {
        "bench-cache-plain"
    });
    let host = PluginHost::new(limits, Some(cache)).expect("plugin host");
    if snapshot {
        host
    } else {
        host.baseline_tier_from(usize::MAX)
    }
}

fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// The same check the Jira plugin makes, natively: trim, upper-case, match the key pattern.
fn native_regex(re: &regex::Regex, key: &str, times: &mut Vec<Duration>, n: usize) {
    for _ in 0..n {
        let started = Instant::now();
        let canonical = std::hint::black_box(key).trim().to_ascii_uppercase();
        assert!(re.is_match(&canonical));
        std::hint::black_box(canonical);
        times.push(started.elapsed());
    }
}

fn percentile(times: &mut [Duration], p: f64) -> Duration {
    times.sort();
    times[((times.len() as f64 - 1.0) * p) as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e3
}

/// Prints one row; answers its p50.
fn report(name: &str, times: &mut [Duration]) -> Duration {
    let p50 = percentile(times, 0.5);
    let p99 = percentile(times, 0.99);
    println!(
        "{name:<56} {:>7} calls   p50 {:>9.2} us   p99 {:>9.2} us",
        times.len(),
        micros(p50),
        micros(p99)
    );
    p50
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_nanos() as f64 / b.as_nanos().max(1) as f64
}

fn redmine() -> SourceConfig {
    SourceConfig {
        provider: "redmine".into(),
        base_url: "https://redmine.example.com".into(),
        auth_type: "api-token".into(),
        ..Default::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // On a worker thread of the runtime, as the service's request handlers run (the main
    // thread only waits): the tasks that make instances ahead are spawned where they would be.
    tokio::spawn(measure()).await.unwrap();
}

async fn measure() {
    let target = target_dir();
    let only = std::env::var("NORMALIZE_BENCH_ONLY").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let jira = SourceConfig {
        provider: "jira-cloud".into(),
        base_url: "https://acme.atlassian.net".into(),
        auth_type: "api-token".into(),
        ..Default::default()
    };
    let examples = target.join("example-plugins");
    let mut subjects = Vec::new();
    if wanted("rust") {
        let file = target.join("plugins/jira.wasm");
        let rust = Subject::load("rust", &file, jira, (" proj-123 ", "PROJ-123"), N, true).await;
        subjects.push(rust.expect("run scripts/build-plugins.sh first"));
    }
    for (name, file, snapshot) in [
        ("python", "redmine-py.wasm", true),
        ("python-unsnapshotted", "redmine-py.wasm", false),
        ("javascript", "redmine-js.wasm", true),
        ("javascript-unsnapshotted", "redmine-js.wasm", false),
    ] {
        if wanted(name) {
            let file = examples.join(file);
            let key = (" #42 ", "42");
            let subject = Subject::load(name, &file, redmine(), key, N_BIG, snapshot).await;
            subjects.extend(subject);
        }
    }

    if let Some(only) = &only {
        // Only the fresh path (on the host keeping instances ready, or with
        // `NORMALIZE_BENCH_ON_PATH=1` the one that does not), calls paced like the row's, for
        // a profiler.
        let subject = subjects.iter().find(|s| s.name == only).expect("known");
        let calls = (std::env::var("NORMALIZE_BENCH_CALLS").ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(subject.calls);
        let host = match std::env::var("NORMALIZE_BENCH_ON_PATH").as_deref() {
            Ok("1") => &subject.on_path,
            _ => &subject.host,
        };
        let mut times = Vec::with_capacity(calls);
        let mut ticks = pace();
        for _ in 0..calls {
            ticks.tick().await;
            times.push(subject.fresh_call(host).await);
        }
        report(&format!("{only}: fresh, 1 call/ms"), &mut times);
        return;
    }

    let re = regex::Regex::new(r"^[A-Z][A-Z0-9_]+-[1-9][0-9]*$").unwrap();
    let mut native = Vec::with_capacity(N);
    for _ in 0..ROUNDS {
        for subject in &mut subjects {
            subject.round().await;
        }
        native_regex(&re, " proj-123 ", &mut native, N / ROUNDS);
    }

    println!("normalize-key, all rows alternating in {ROUNDS} rounds");
    let mut p50 = Vec::new();
    for s in &mut subjects {
        let name = s.name;
        let fresh = report(&format!("{name}: fresh, 1 call/ms"), &mut s.paced);
        report(&format!("{name}: fresh, back to back"), &mut s.back_to_back);
        let on_path = report(
            &format!("{name}: fresh, instantiated on the path"),
            &mut s.instantiating,
        );
        let warm_paced = report(
            &format!("{name}: warm instance, 1 call/ms"),
            &mut s.warm_paced,
        );
        let warm = report(&format!("{name}: warm instance, back to back"), &mut s.warm);
        p50.push((name, fresh, on_path, warm_paced, warm));
    }
    let native = report("native Rust + regex", &mut native);
    let (rust_fresh, rust_on_path) = (p50[0].1, p50[0].2);
    println!(
        "ratios of p50s at 1 call/ms: fresh (in brackets: instantiated on the path) over warm,\n\
         and over the Rust plugin's; fresh at 1 call/ms over warm back to back"
    );
    for (name, fresh, on_path, warm_paced, warm) in p50 {
        println!(
            "  {name:<24}  fresh/warm {:>5.1}x ({:>5.1}x)   / rust fresh {:>5.1}x ({:>5.1}x)   \
             / warm back to back {:>5.1}x   / native {:>6.0}x",
            ratio(fresh, warm_paced),
            ratio(on_path, warm_paced),
            ratio(fresh, rust_fresh),
            ratio(on_path, rust_on_path),
            ratio(fresh, warm),
            ratio(fresh, native),
        );
    }
}
