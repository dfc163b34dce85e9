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
//! Every row is measured in the same alternating rounds in one process (rust fresh, rust warm,
//! native, python fresh, python warm, javascript fresh, javascript warm, then again), with the
//! same input per plugin, so the ratios hold on a busy machine even when the absolute figures
//! drift; compare ratios, not microseconds, across machines and runs. A bench binary rather than
//! criterion: the figures we want are per-call percentiles of the real path, and it needs no
//! extra dependency.
//!
//! The Python and JavaScript examples are measured as the service serves them in the end, their
//! warm-up snapshot (see `host/src/plugin/snapshot.rs`), and as the uploaded binaries
//! (`python-unsnapshotted`, `javascript-unsnapshotted`).
//!
//! `NORMALIZE_BENCH_ONLY=rust|python|javascript|...-unsnapshotted` measures only that plugin's fresh calls
//! (`NORMALIZE_BENCH_CALLS` of them), for a profiler: `perf record -g` on the bench binary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use host::plugin::{Limits, PluginHost, SourceConfig};

/// Calls per row for the Rust plugin and native `regex`, split over [`ROUNDS`].
const N: usize = 20_000;
/// Calls per row for the Python and JavaScript plugins (slower calls: fewer of them).
const N_BIG: usize = 2_000;
/// The rows alternate in this many rounds.
const ROUNDS: usize = 10;

/// One plugin under measurement: its own host (the Python and JavaScript examples both claim
/// the provider id `redmine`), a source of its provider, and the key every call normalises.
struct Subject {
    name: &'static str,
    host: PluginHost,
    source: SourceConfig,
    key: &'static str,
    calls: usize,
    fresh: Vec<Duration>,
    warm: Vec<Duration>,
    ahead: Vec<Duration>,
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
        let host = new_host(snapshot);
        let started = Instant::now();
        let plugin = host.load_file(file).await.expect("the plugin loads");
        // A large binary serves on baseline code first; what is measured is what it serves
        // in the end: its warm-up snapshot, compiled by Cranelift (see plugin/snapshot.rs).
        while plugin.tier() != host::plugin::Tier::Optimised {
            assert!(
                plugin.optimise_error().is_none(),
                "{:?}",
                plugin.optimise_error()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "{name}: {} ({} bytes), loaded in {:.1?} (from the compile cache: {})",
            file.display(),
            plugin.size_bytes,
            started.elapsed(),
            plugin.from_cache
        );
        assert_eq!(host.normalize_key(&source, key).await.unwrap(), expected);
        for _ in 0..10 {
            host.normalize_key(&source, key).await.unwrap();
        }
        Some(Subject {
            name,
            host,
            source,
            key,
            calls,
            fresh: Vec::with_capacity(calls),
            warm: Vec::with_capacity(calls),
            ahead: Vec::with_capacity(calls),
        })
    }

    /// One round: a share of the fresh-instance calls, then as many calls on one warm instance.
    async fn round(&mut self) {
        for _ in 0..self.calls / ROUNDS {
            let started = Instant::now();
            (self.host.normalize_key(&self.source, self.key).await).unwrap();
            self.fresh.push(started.elapsed());
        }
        let warm = self
            .host
            .bench_warm_normalize(&self.source, self.key, self.calls / ROUNDS)
            .await
            .unwrap();
        self.warm.extend(warm);
        let ahead = self
            .host
            .bench_preinstantiated_normalize(&self.source, self.key, self.calls / ROUNDS)
            .await
            .unwrap();
        self.ahead.extend(ahead);
    }
}

/// A host for one subject. Without `snapshot`, large binaries are compiled by Cranelift at once
/// (no baseline tier, so no warm-up snapshot), cached in a directory of their own (a compiled
/// snapshot is cached under the uploaded binary's digest).
fn new_host(snapshot: bool) -> PluginHost {
    let target = target_dir();
    let limits = Limits {
        max_plugin_bytes: 64 << 20,
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
        "{name:<52} {:>7} calls   p50 {:>9.2} us   p99 {:>9.2} us",
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
        // Only the fresh path, for a profiler.
        let subject = subjects.iter_mut().find(|s| s.name == only).expect("known");
        let calls = (std::env::var("NORMALIZE_BENCH_CALLS").ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(subject.calls * 5);
        let started = Instant::now();
        for _ in 0..calls {
            (subject
                .host
                .normalize_key(&subject.source, subject.key)
                .await)
                .unwrap();
        }
        let took = started.elapsed();
        println!(
            "{only}: {calls} fresh calls in {took:.2?} ({:.2?} each)",
            took / calls as u32
        );
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

    println!("normalize-key, fresh and warm rows alternating in {ROUNDS} rounds");
    let mut p50 = Vec::new();
    for subject in &mut subjects {
        let fresh = report(
            &format!("{}: fresh instance per call", subject.name),
            &mut subject.fresh,
        );
        let warm = report(
            &format!("{}: warm instance (reused)", subject.name),
            &mut subject.warm,
        );
        report(
            &format!("{}: fresh, instantiated ahead", subject.name),
            &mut subject.ahead,
        );
        p50.push((subject.name, fresh, warm));
    }
    let native = report("native Rust + regex", &mut native);
    let rust_fresh = p50[0].1;
    for (name, fresh, warm) in p50 {
        println!(
            "ratios {name:<24}: fresh/warm {:>5.1}x   fresh / rust fresh {:>5.1}x   fresh/native {:>6.0}x",
            ratio(fresh, warm),
            ratio(fresh, rust_fresh),
            ratio(fresh, native),
        );
    }
}
