//! `cargo bench -p integration-host --bench normalize` (after `scripts/build-plugins.sh`).
//!
//! One `normalize-key` call through a fresh sandboxed instance (what the service does for every
//! call), the same call on one warm instance, and the same validation natively with `regex`,
//! for the Rust `jira` plugin; then fresh and warm calls of the Python example
//! (`target/example-plugins/redmine-py.wasm`, built by componentize-py; skipped with a note
//! when it is missing). Prints p50/p90 of each and the ratios the runtime-speed targets are
//! stated in:
//!
//! - `rust fresh/warm`: what a fresh instance costs over calling an instance already set up
//!   (instantiation, memory reset, the guest's own start-up); the target is at most 4x;
//! - `python fresh / rust fresh`: how much a big interpreter runtime costs per call over a
//!   small Rust plugin; the target is at most 10x.
//!
//! Fresh and warm calls are measured in alternating rounds in one process, so the ratios hold
//! on a busy machine even when the absolute figures drift; compare ratios, not microseconds,
//! across machines and runs. A bench binary rather than criterion: the figures we want are
//! per-call percentiles of the real path, and it needs no extra dependency.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use host::plugin::{Limits, PluginHost, SourceConfig};

/// Calls per figure for the Rust plugin, split over [`ROUNDS`].
const N: usize = 20_000;
/// Calls per figure for the Python plugin (a call takes milliseconds).
const N_PY: usize = 500;
/// Fresh and warm calls alternate in this many rounds.
const ROUNDS: usize = 5;

fn percentile(times: &mut [Duration], p: f64) -> Duration {
    times.sort();
    times[((times.len() as f64 - 1.0) * p) as usize]
}

fn report(name: &str, times: &mut [Duration]) -> Duration {
    let p50 = percentile(times, 0.5);
    let p90 = percentile(times, 0.9);
    println!(
        "{name:<40} p50 {:>9.2} us   p90 {:>9.2} us",
        p50.as_nanos() as f64 / 1e3,
        p90.as_nanos() as f64 / 1e3
    );
    p50
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_nanos() as f64 / b.as_nanos().max(1) as f64
}

/// `n` fresh-instance calls and `n` warm-instance calls, alternating in [`ROUNDS`] rounds.
async fn fresh_and_warm(
    host: &PluginHost,
    source: &SourceConfig,
    key: &str,
    n: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut fresh, mut warm) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..ROUNDS {
        for _ in 0..n / ROUNDS {
            let started = Instant::now();
            host.normalize_key(source, key).await.unwrap();
            fresh.push(started.elapsed());
        }
        warm.extend(
            host.bench_warm_normalize(source, key, n / ROUNDS)
                .await
                .unwrap(),
        );
    }
    (fresh, warm)
}

/// Loads `file` and checks `source`'s provider normalises `key` to `expected`, then warms up.
async fn load(host: &PluginHost, file: &Path, source: &SourceConfig, key: &str, expected: &str) {
    let started = Instant::now();
    let plugin = host
        .load_file(file)
        .await
        .expect("run scripts/build-plugins.sh first");
    println!(
        "{}: {} bytes, loaded in {:.1?} (from the compile cache: {})",
        file.display(),
        plugin.size_bytes,
        started.elapsed(),
        plugin.from_cache
    );
    assert_eq!(host.normalize_key(source, key).await.unwrap(), expected);
    for _ in 0..50 {
        host.normalize_key(source, key).await.unwrap();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    let limits = Limits {
        max_plugin_bytes: 64 << 20,
        ..Limits::default()
    };
    let host = PluginHost::new(limits, Some(target.join("bench-cache"))).expect("plugin host");

    let jira = SourceConfig {
        provider: "jira-cloud".into(),
        base_url: "https://acme.atlassian.net".into(),
        auth_type: "api-token".into(),
        ..Default::default()
    };
    let key = " proj-123 ";
    load(
        &host,
        &target.join("plugins/jira.wasm"),
        &jira,
        key,
        "PROJ-123",
    )
    .await;
    for _ in 0..1_000 {
        host.normalize_key(&jira, key).await.unwrap();
    }
    let (mut fresh, mut warm) = fresh_and_warm(&host, &jira, key, N).await;

    let re = regex::Regex::new(r"^[A-Z][A-Z0-9_]+-[1-9][0-9]*$").unwrap();
    let mut native = Vec::with_capacity(N);
    for _ in 0..N {
        let started = Instant::now();
        let canonical = std::hint::black_box(key).trim().to_ascii_uppercase();
        assert!(re.is_match(&canonical));
        std::hint::black_box(canonical);
        native.push(started.elapsed());
    }

    let python_file = target.join("example-plugins/redmine-py.wasm");
    let python = if python_file.exists() {
        let redmine = SourceConfig {
            provider: "redmine".into(),
            base_url: "https://redmine.example.com".into(),
            auth_type: "api-token".into(),
            ..Default::default()
        };
        load(&host, &python_file, &redmine, " #42 ", "42").await;
        Some(fresh_and_warm(&host, &redmine, " #42 ", N_PY).await)
    } else {
        None
    };

    println!("normalize-key, {N} calls each, jira-cloud plugin (Rust)");
    let f = report("rust: fresh sandboxed instance per call", &mut fresh);
    let w = report("rust: warm instance (reused)", &mut warm);
    let n = report("native Rust + regex", &mut native);
    println!(
        "ratios: rust fresh/warm {:.1}x, fresh/native {:.0}x, warm/native {:.0}x",
        ratio(f, w),
        ratio(f, n),
        ratio(w, n)
    );
    match python {
        Some((mut py_fresh, mut py_warm)) => {
            println!("normalize-key, {N_PY} calls each, redmine plugin (Python, componentize-py)");
            let pf = report("python: fresh sandboxed instance per call", &mut py_fresh);
            let pw = report("python: warm instance (reused)", &mut py_warm);
            println!(
                "ratios: python fresh / rust fresh {:.1}x, python fresh/warm {:.1}x",
                ratio(pf, f),
                ratio(pf, pw)
            );
        }
        None => println!(
            "python: {} is missing (scripts/build-plugins.sh builds it with componentize-py)",
            python_file.display()
        ),
    }
}
