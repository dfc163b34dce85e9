//! `cargo bench -p integration-host --bench fairness` (after `scripts/build-plugins.sh`): what
//! a hostile plugin does to the others.
//!
//! 1. The p50 of a normal source's link creation through the HTTP API (real router, real redb
//!    file, GitLab plugin normalising), idle and while 80 clients hammer a source of the
//!    `misbehave` test plugin whose `normalize-key` loops until its CPU limit; with the default
//!    limits, and with a per-plugin cap as large as the host's pool (CPU turns only).
//! 2. The process's peak RSS while 80 `misbehave` calls allocate until they are stopped,
//!    against the memory budget plus the RSS before they started; with the default limits
//!    (one plugin gets a quarter of the budget) and with one plugin allowed the whole budget.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use host::app::{AppState, router};
use host::plugin::{Limits, PluginHost, SourceConfig};

const TOKEN: &str = "its_bench-admin";
const HOSTILE_CLIENTS: usize = 80;
const IDLE_CALLS: usize = 100;
const LOADED_CALLS: usize = 100;
const LOADED_SECONDS: u64 = 20;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn plugin_host(limits: Limits) -> Arc<PluginHost> {
    let host = PluginHost::new(limits, Some(root().join("target/bench-cache"))).unwrap();
    for dir in ["target/plugins", "target/test-plugins"] {
        for (path, result) in host.load_dir(&root().join(dir)).await {
            result.unwrap_or_else(|e| {
                panic!("{}: {e} (run scripts/build-plugins.sh)", path.display())
            });
        }
    }
    Arc::new(host)
}

async fn call(client: &reqwest::Client, url: &str, path: &str, body: Value) -> (u16, Value) {
    let resp = client
        .post(format!("{url}{path}"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The service on a real port, with one project, a normal GitLab source and a hostile one.
struct App {
    url: String,
    links: String,
    normal: String,
    hostile: String,
    _data: tempfile::TempDir,
}

impl App {
    async fn start(limits: Limits) -> App {
        let data = tempfile::tempdir().unwrap();
        let store = host::store::Store::open(&data.path().join("integration.redb")).unwrap();
        let key = host::crypto::MasterKey::load_or_create(&data.path().join("master.key")).unwrap();
        host::api::tokens::bootstrap_admin(&store, Some(TOKEN.into()))
            .await
            .unwrap();
        let state = AppState::new(store, plugin_host(limits).await, key, data.path().join("p"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(axum::serve(listener, router(state)).into_future());
        let client = reqwest::Client::new();
        let (_, project) = call(&client, &url, "/api/v1/projects", json!({"name": "Bench"})).await;
        let links = format!("/api/v1/projects/{}/links", project["id"].as_str().unwrap());
        let source = |body: Value| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let (status, source) = call(&client, &url, "/api/v1/sources", body).await;
                assert_eq!(status, 201, "{source}");
                source["id"].as_str().unwrap().to_string()
            }
        };
        let normal = source(json!({
            "provider": "gitlab", "display_name": "Normal GitLab",
            "base_url": "http://127.0.0.1:1/group/project",
            "auth": {"type": "api-token", "fields": {"token": "glpat-bench"}},
            "key_pattern": "^\\d+$", "projects": {"mode": "all"},
        }))
        .await;
        let hostile = source(json!({
            "provider": "misbehave", "display_name": "Hostile",
            "base_url": "http://127.0.0.1:1",
            "auth": {"type": "api-token", "fields": {"user": "robot", "token": "t"}},
            "settings": {"mode": "loop"}, "projects": {"mode": "all"},
        }))
        .await;
        App {
            url,
            links,
            normal,
            hostile,
            _data: data,
        }
    }

    /// Creates one link through the normal source; returns how long it took.
    async fn normal_link(&self, client: &reqwest::Client, n: usize) -> Duration {
        let body = json!({"test_object": "test-case:bench", "source_id": self.normal, "key": format!("#{n}")});
        let started = Instant::now();
        let (status, body) = call(client, &self.url, &self.links, body).await;
        assert_eq!(status, 201, "{body}");
        started.elapsed()
    }

    /// Starts clients that create links through the hostile source until `stop` is set.
    fn hammer(&self, stop: &Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<usize>> {
        (0..HOSTILE_CLIENTS)
            .map(|_| {
                let (url, links, source, stop) = (
                    self.url.clone(),
                    self.links.clone(),
                    self.hostile.clone(),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let mut calls = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let body = json!({"test_object": "test-case:bench", "source_id": source, "key": "OK-1"});
                        let (status, _) = call(&client, &url, &links, body).await;
                        assert!(status >= 500, "a looping call answered {status}");
                        calls += 1;
                    }
                    calls
                })
            })
            .collect()
    }
}

fn p50(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Phase 1 with `limits`: idle p50, loaded p50, their ratio. Leaves the hostile clients
/// running when `drain` is false (the last phase: the process exits).
async fn starvation(label: &str, limits: Limits, drain: bool) {
    let app = App::start(limits).await;
    let client = reqwest::Client::new();
    let n = AtomicUsize::new(1);
    let next = || n.fetch_add(1, Ordering::Relaxed);
    for _ in 0..10 {
        app.normal_link(&client, next()).await;
    }
    let mut idle = Vec::new();
    for _ in 0..IDLE_CALLS {
        idle.push(app.normal_link(&client, next()).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let hostile = app.hammer(&stop);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut loaded = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(LOADED_SECONDS);
    while loaded.len() < LOADED_CALLS && (Instant::now() < deadline || loaded.len() < 5) {
        loaded.push(app.normal_link(&client, next()).await);
    }
    let count = loaded.len();
    let (idle, loaded) = (p50(idle), p50(loaded));
    println!(
        "{label}: normal link creation p50 idle {}, under {HOSTILE_CLIENTS} looping clients {} \
         ({count} calls) = {:.1}x",
        ms(idle),
        ms(loaded),
        loaded.as_secs_f64() / idle.as_secs_f64()
    );
    stop.store(true, Ordering::Relaxed);
    if drain {
        let started = Instant::now();
        let mut calls = 0;
        for client in hostile {
            calls += client.await.unwrap();
        }
        println!(
            "  ({calls} hostile calls; the queue drained {:.1} s after they stopped)",
            started.elapsed().as_secs_f64()
        );
    }
}

/// The process's resident set, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn mib(bytes: usize) -> String {
    format!("{:.0} MiB", bytes as f64 / (1 << 20) as f64)
}

/// Phase 2 with `limits`: the peak RSS while 80 calls allocate until stopped.
async fn memory(label: &str, limits: Limits) {
    let budget = limits.memory_budget_bytes;
    let host = plugin_host(limits).await;
    let bomb = SourceConfig {
        provider: "misbehave".into(),
        base_url: "http://127.0.0.1:1".into(),
        auth_type: "api-token".into(),
        settings: [("mode".to_string(), "bomb".to_string())].into(),
        ..Default::default()
    };
    let baseline = rss();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(rss());
                std::thread::sleep(Duration::from_millis(1));
            }
            peak
        })
    };
    let started = Instant::now();
    let calls: Vec<_> = (0..HOSTILE_CLIENTS)
        .map(|_| {
            let (host, bomb) = (host.clone(), bomb.clone());
            tokio::spawn(async move { host.test_connection(&bomb).await })
        })
        .collect();
    let (mut capped, mut budgeted, mut other) = (0, 0, 0);
    for call in calls {
        match call.await.unwrap() {
            Err(host::plugin::PluginError::MemoryLimit(_)) => capped += 1,
            Err(host::plugin::PluginError::MemoryBudget(_)) => budgeted += 1,
            _ => other += 1,
        }
    }
    done.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    println!(
        "{label}: {HOSTILE_CLIENTS} memory bombs in {:.1} s ({capped} at the per-call cap, \
         {budgeted} at the budget, {other} other): peak RSS {} = baseline {} + {}; budget {} \
         ({})",
        started.elapsed().as_secs_f64(),
        mib(peak),
        mib(baseline),
        mib(peak.saturating_sub(baseline)),
        mib(budget),
        if peak <= baseline + budget {
            "within"
        } else {
            "OVER"
        }
    );
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let unfair = Limits {
        max_calls_per_plugin: Limits::default().max_concurrent_calls,
        ..Limits::default()
    };
    starvation("default limits", Limits::default(), true).await;
    memory("default limits", Limits::default()).await;
    memory("one plugin may use the whole budget", unfair.clone()).await;
    starvation("no per-plugin cap (CPU turns only)", unfair, false).await;
    // The hostile clients of the last phase are still running: exit without waiting for them.
    std::process::exit(0);
}
