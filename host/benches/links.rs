//! `cargo bench -p integration-host --bench links` (after `scripts/build-plugins.sh`):
//! 1. durable link creations per second through the HTTP API (real router on 127.0.0.1, real
//!    redb file with durable commits, or PostgreSQL with `BENCH_DATABASE_URL=postgres://...`,
//!    plugin normalisation and issue URL in the path), from concurrent clients;
//! 2. the tracker requests one sync pass makes for 10,000 links (a GitLab stand-in counts them).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Path, RawQuery};
use axum::routing::get;
use serde_json::{Value, json};

use host::app::{AppState, router};
use host::plugin::{Limits, PluginHost};

const TOKEN: &str = "its_bench-admin";
const CLIENTS: usize = 16;
const SECONDS: u64 = 5;
const SYNC_LINKS: usize = 10_000;

async fn call(
    client: &reqwest::Client,
    url: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let resp = client
        .request(method.parse().unwrap(), format!("{url}{path}"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = tempfile::tempdir().unwrap();
    // BENCH_DATABASE_URL=postgres://... measures PostgreSQL instead of the redb file.
    let store = match std::env::var("BENCH_DATABASE_URL") {
        Ok(url) => host::store::Store::connect(&url.parse().unwrap(), 16)
            .await
            .unwrap(),
        Err(_) => host::store::Store::open(&data.path().join("integration.redb")).unwrap(),
    };
    println!("engine: {}", store.engine());
    let key = host::crypto::MasterKey::load_or_create(&data.path().join("master.key")).unwrap();
    let plugins = Arc::new(
        PluginHost::new(Limits::default(), Some(root.join("target/bench-cache"))).unwrap(),
    );
    for (path, result) in plugins.load_dir(&root.join("target/plugins")).await {
        result.unwrap_or_else(|e| panic!("{}: {e} (run scripts/build-plugins.sh)", path.display()));
    }
    host::api::tokens::bootstrap_admin(&store, Some(TOKEN.into()))
        .await
        .unwrap();
    let state = AppState::new(store, plugins, key, root.join("target/plugins"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, router(state.clone())).into_future());

    // A GitLab stand-in that answers the iids[] list and counts requests.
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let tracker = axum::Router::new().route(
        "/api/v4/projects/{id}/issues",
        get(move |Path(_id): Path<String>, RawQuery(q): RawQuery| {
            counter.fetch_add(1, Ordering::Relaxed);
            async move {
                let items: Vec<Value> = q
                    .unwrap_or_default()
                    .split('&')
                    .filter_map(|p| p.strip_prefix("iids%5B%5D=").or_else(|| p.strip_prefix("iids[]=")))
                    .filter_map(|v| v.parse::<u64>().ok())
                    .map(|iid| json!({"iid": iid, "title": format!("Issue {iid}"), "state": "opened", "assignees": [], "web_url": format!("http://t/g/p/-/issues/{iid}")}))
                    .collect();
                axum::Json(items)
            }
        }),
    );
    let tracker_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tracker_url = format!("http://{}", tracker_listener.local_addr().unwrap());
    tokio::spawn(axum::serve(tracker_listener, tracker).into_future());

    let client = reqwest::Client::new();
    let (_, project) = call(
        &client,
        &url,
        "POST",
        "/api/v1/projects",
        json!({"name": "Bench"}),
    )
    .await;
    let project = project["id"].as_str().unwrap().to_string();
    let source_body = |read: bool| {
        json!({
            "provider": "gitlab", "display_name": "Bench GitLab",
            "base_url": format!("{tracker_url}/group/project"),
            "auth": {"type": "api-token", "fields": {"token": "glpat-bench"}},
            "key_pattern": "^\\d+$",
            "capabilities": {"read_issue_details": read}, "projects": {"mode": "all"},
        })
    };
    let (status, source) = call(&client, &url, "POST", "/api/v1/sources", source_body(false)).await;
    assert_eq!(status, 201, "{source}");
    let source = source["id"].as_str().unwrap().to_string();

    // 1. Durable creations per second.
    let next = Arc::new(AtomicUsize::new(1));
    let acked = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (url, project, source, next, acked) = (
            url.clone(),
            project.clone(),
            source.clone(),
            next.clone(),
            acked.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let body = json!({"test_object": "test-case:bench", "source_id": source, "key": format!("#{n}")});
                let (status, _) = call(&client, &url, "POST", &format!("/api/v1/projects/{project}/links"), body).await;
                assert_eq!(status, 201);
                acked.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    let created = acked.load(Ordering::Relaxed);
    let rate = created as f64 / started.elapsed().as_secs_f64();
    println!(
        "durable link creations: {created} in {:.1} s from {CLIENTS} clients = {rate:.0} links/s",
        started.elapsed().as_secs_f64()
    );

    // 2. Top up to SYNC_LINKS links, switch on "Read issue details", count one pass's requests.
    let mut n = next.load(Ordering::Relaxed);
    let mut total = created;
    while total < SYNC_LINKS {
        let keys: Vec<String> = (n..n + 200).map(|i| i.to_string()).collect();
        n += 200;
        let body = json!({"test_object": "test-case:bench", "source_id": source, "keys": keys});
        let (status, results) = call(
            &client,
            &url,
            "POST",
            &format!("/api/v1/projects/{project}/links/bulk"),
            body,
        )
        .await;
        assert_eq!(status, 200);
        total += results
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["error"].is_null())
            .count();
    }
    let (status, _) = call(
        &client,
        &url,
        "PUT",
        &format!("/api/v1/sources/{source}"),
        source_body(true),
    )
    .await;
    assert_eq!(status, 200);
    requests.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let pacing = Arc::new(host::sync::Pacing::default());
    host::sync::pass(&state, &pacing, Duration::from_secs(60))
        .await
        .unwrap();
    let (_, links) = call(
        &client,
        &url,
        "GET",
        &format!("/api/v1/projects/{project}/links"),
        json!(null),
    )
    .await;
    let fresh: BTreeSet<&str> = links
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| !l["snapshot"].is_null())
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    println!(
        "sync of {total} links: {} tracker requests ({} keys per fetch-issues call), {} links refreshed, {:.2} s",
        requests.load(Ordering::Relaxed),
        host::sync::BATCH_SIZE,
        fresh.len(),
        started.elapsed().as_secs_f64()
    );
}
