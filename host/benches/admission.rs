//! `cargo bench -p integration-host --bench admission` (after `scripts/build-plugins.sh`): how
//! soon a large uploaded plugin serves, and what its compilation does to other requests.
//!
//! For the JavaScript (componentize-js, 12 MB) and Python (componentize-py, 18 MB) Redmine
//! examples, each uploaded through the real router into an empty compile cache, once compiled
//! by Cranelift only and once by Winch first (the baseline tier, then Cranelift in the
//! background): the time from the upload to the first served call, to the optimised code,
//! the latency of that call on each tier, and the p50 of unrelated requests (`GET
//! /api/v1/sources` and a `normalize-key` call into the Rust GitHub plugin) idle and while
//! the plugin compiles.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use host::app::{AppState, router};
use host::plugin::{Limits, PluginHost, SourceConfig, Tier};

const TOKEN: &str = "its_bench-admin";
const IDLE_REQUESTS: usize = 200;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The service on a real port with the GitHub plugin, compiling into an empty cache.
struct App {
    url: String,
    state: AppState,
    client: reqwest::Client,
    _data: tempfile::TempDir,
}

impl App {
    async fn start(baseline_from: usize) -> App {
        let data = tempfile::tempdir().unwrap();
        let host = PluginHost::new(Limits::default(), Some(data.path().join("cache")))
            .unwrap()
            .baseline_tier_from(baseline_from);
        let plugins = data.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        std::fs::copy(
            root().join("target/plugins/github.wasm"),
            plugins.join("github.wasm"),
        )
        .expect("target/plugins/github.wasm (run scripts/build-plugins.sh)");
        for (path, result) in host.load_dir(&plugins).await {
            result.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let store = host::store::Store::open(&data.path().join("integration.redb")).unwrap();
        let key = host::crypto::MasterKey::load_or_create(&data.path().join("master.key")).unwrap();
        host::api::tokens::bootstrap_admin(&store, Some(TOKEN.into()))
            .await
            .unwrap();
        let state = AppState::new(store, Arc::new(host), key, plugins);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(axum::serve(listener, router(state.clone())).into_future());
        App {
            url,
            state,
            client: reqwest::Client::new(),
            _data: data,
        }
    }

    /// One `GET /api/v1/sources`; how long it took.
    async fn list_sources(&self) -> Duration {
        let started = Instant::now();
        let resp = (self.client.get(format!("{}/api/v1/sources", self.url)))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.bytes().await.unwrap();
        started.elapsed()
    }

    /// One `normalize-key` into the GitHub plugin; how long it took.
    async fn rust_call(&self) -> Duration {
        let started = Instant::now();
        let key = self.state.plugins.normalize_key(&github(), "#42").await;
        assert_eq!(key.unwrap(), "42");
        started.elapsed()
    }

    /// `PUT /api/v1/plugins/redmine?wait=true`.
    async fn upload(&self, bytes: Vec<u8>) -> Value {
        let resp = (self
            .client
            .put(format!("{}/api/v1/plugins/redmine?wait=true", self.url)))
        .bearer_auth(TOKEN)
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        resp.json().await.unwrap()
    }
}

fn github() -> SourceConfig {
    SourceConfig {
        provider: "github".into(),
        base_url: "https://github.com/acme/widgets".into(),
        auth_type: "none".into(),
        ..Default::default()
    }
}

fn redmine() -> SourceConfig {
    SourceConfig {
        provider: "redmine".into(),
        base_url: "https://redmine.example.com".into(),
        auth_type: "api-token".into(),
        ..Default::default()
    }
}

fn p50(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The p50 of `GET /sources` and of a Rust plugin call, over `n` of each, one after another.
async fn idle(app: &App, n: usize) -> (Duration, Duration) {
    let (mut list, mut call) = (Vec::new(), Vec::new());
    for _ in 0..n {
        list.push(app.list_sources().await);
        call.push(app.rust_call().await);
    }
    (p50(list), p50(call))
}

/// Unrelated requests, one after another, until `stop`: their times.
fn unrelated(
    app: &Arc<App>,
    stop: &Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(Vec<Duration>, Vec<Duration>)> {
    let (app, stop) = (app.clone(), stop.clone());
    tokio::spawn(async move {
        let (mut list, mut call) = (Vec::new(), Vec::new());
        while !stop.load(Ordering::Relaxed) {
            list.push(app.list_sources().await);
            call.push(app.rust_call().await);
        }
        (list, call)
    })
}

/// The p50 of `normalize-key` into the uploaded plugin over `n` calls.
async fn redmine_call_p50(app: &App, n: usize) -> Duration {
    let mut times = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        let key = app.state.plugins.normalize_key(&redmine(), "#42").await;
        assert_eq!(key.unwrap(), "42");
        times.push(started.elapsed());
    }
    p50(times)
}

async fn measure(file: &str, label: &str, baseline_from: usize) {
    let bytes = std::fs::read(root().join("target/example-plugins").join(file))
        .unwrap_or_else(|e| panic!("{file}: {e} (run scripts/build-plugins.sh)"));
    let app = Arc::new(App::start(baseline_from).await);
    let (idle_list, idle_call) = idle(&app, IDLE_REQUESTS).await;

    let stop = Arc::new(AtomicBool::new(false));
    let during = unrelated(&app, &stop);
    let started = Instant::now();
    let answer = app.upload(bytes).await;
    let key = app.state.plugins.normalize_key(&redmine(), "#42").await;
    let serving = started.elapsed();
    assert_eq!(key.unwrap(), "42");
    let tier = answer["plugin"]["tier"].clone();
    let first_tier_call = redmine_call_p50(&app, 50).await;
    while app.state.plugins.get("redmine").unwrap().tier() != Tier::Optimised {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let optimised = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (list, call) = during.await.unwrap();
    let optimised_call = redmine_call_p50(&app, 50).await;
    let (busy_list, busy_call) = (p50(list), p50(call));
    println!(
        "{file}, {label}: serving after {:.2} s (tier {tier}), optimised after {:.2} s; \
         its normalize-key p50 {} on that tier, {} optimised; unrelated p50 idle -> while \
         compiling: GET /sources {} -> {} ({:.2}x), Rust plugin call {} -> {} ({:.2}x)",
        serving.as_secs_f64(),
        optimised.as_secs_f64(),
        ms(first_tier_call),
        ms(optimised_call),
        ms(idle_list),
        ms(busy_list),
        busy_list.as_secs_f64() / idle_list.as_secs_f64(),
        ms(idle_call),
        ms(busy_call),
        busy_call.as_secs_f64() / idle_call.as_secs_f64(),
    );
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // `cargo bench ... -- js` measures only the plugins whose file names contain `js`.
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let files = ["redmine-js.wasm", "redmine-py.wasm"];
    for file in files
        .into_iter()
        .filter(|f| only.as_ref().is_none_or(|o| f.contains(o.as_str())))
    {
        measure(file, "Cranelift only", usize::MAX).await;
        measure(file, "Winch first, Cranelift in the background", 0).await;
    }
    // A background compile may still run (a superseded one): exit without waiting for it.
    std::process::exit(0);
}
