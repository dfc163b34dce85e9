//! `cargo bench -p integration-host --bench normalize` (after `scripts/build-plugins.sh`):
//! one `normalize-key` call through a fresh sandboxed instance (what the service does), the same
//! call on a warm instance, and the same validation natively with `regex`. Prints p50/p90 and
//! the ratios. A bench binary rather than criterion: the figures we want are per-call
//! percentiles of the real path, and it needs no extra dependency.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use host::plugin::{Limits, PluginHost, SourceConfig};

const N: usize = 20_000;

fn percentile(times: &mut [Duration], p: f64) -> Duration {
    times.sort();
    times[((times.len() as f64 - 1.0) * p) as usize]
}

fn report(name: &str, times: &mut [Duration]) -> Duration {
    let p50 = percentile(times, 0.5);
    let p90 = percentile(times, 0.9);
    println!(
        "{name:<34} p50 {:>9.2} us   p90 {:>9.2} us",
        p50.as_nanos() as f64 / 1e3,
        p90.as_nanos() as f64 / 1e3
    );
    p50
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins");
    let host = PluginHost::new(
        Limits::default(),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-cache")),
    )
    .expect("plugin host");
    host.load_file(&dir.join("jira.wasm"))
        .await
        .expect("run scripts/build-plugins.sh first");
    let source = SourceConfig {
        provider: "jira-cloud".into(),
        base_url: "https://acme.atlassian.net".into(),
        auth_type: "api-token".into(),
        ..Default::default()
    };
    let key = " proj-123 ";
    assert_eq!(host.normalize_key(&source, key).await.unwrap(), "PROJ-123");

    // Warm up, then measure one call at a time (latency, not throughput).
    for _ in 0..1_000 {
        host.normalize_key(&source, key).await.unwrap();
    }
    let mut fresh = Vec::with_capacity(N);
    for _ in 0..N {
        let started = Instant::now();
        host.normalize_key(&source, key).await.unwrap();
        fresh.push(started.elapsed());
    }
    let mut warm = host.bench_warm_normalize(&source, key, N).await.unwrap();

    let re = regex::Regex::new(r"^[A-Z][A-Z0-9_]+-[1-9][0-9]*$").unwrap();
    let mut native = Vec::with_capacity(N);
    for _ in 0..N {
        let started = Instant::now();
        let canonical = std::hint::black_box(key).trim().to_ascii_uppercase();
        assert!(re.is_match(&canonical));
        std::hint::black_box(canonical);
        native.push(started.elapsed());
    }

    println!("normalize-key, {N} calls each, jira-cloud plugin");
    let f = report("fresh sandboxed instance per call", &mut fresh);
    let w = report("warm instance (reused)", &mut warm);
    let n = report("native Rust + regex", &mut native);
    let ratio = |a: Duration, b: Duration| a.as_nanos() as f64 / b.as_nanos().max(1) as f64;
    println!(
        "ratios: fresh/warm {:.1}x, fresh/native {:.0}x, warm/native {:.0}x",
        ratio(f, w),
        ratio(f, n),
        ratio(w, n)
    );
}
