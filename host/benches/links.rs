//! `cargo bench -p integration-host --bench links` (after `scripts/build-plugins.sh`; needs
//! Debian's `postgresql` package for the PostgreSQL rows). Starts everything itself:
//!
//! 1. durable link creations per second through the HTTP API of the real binary (this
//!    profile's `integration-host`), from [`CLIENTS`] concurrent clients, each creation
//!    acknowledged only once durable: on redb (one process), on PostgreSQL with one replica and
//!    with three replicas (three processes on one database, the clients spread over them). The
//!    PostgreSQL server is started here with its durable defaults (`fsync`,
//!    `synchronous_commit`, `full_page_writes` on) and shares this machine's cores. A table
//!    with creations/s and p50/p99 latency;
//! 2. where one creation's time goes: each part of the creation path run alone, in this
//!    process, on redb and on PostgreSQL;
//! 3. the tracker requests one sync pass makes for 10,000 links (a GitLab stand-in counts them).
//!
//! `BENCH_SECONDS` sets each run's length (default 5); `BENCH_PERF=1` records each run's host
//! process with `perf record --call-graph dwarf` into `target/perf/links-<run>.data`.

#[path = "../../tests/src/postgres.rs"]
#[allow(dead_code)]
mod pg_server;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, RawQuery};
use axum::routing::get;
use serde_json::{Value, json};

use host::app::{AppState, router};
use host::plugin::{Limits, PluginHost};
use host::store::{Read as _, Store};

const TOKEN: &str = "its_bench-admin";
const CLIENTS: usize = 16;
const SYNC_LINKS: usize = 10_000;
/// Sequential repetitions of each part in the breakdown.
const PARTS_ROUNDS: u32 = 300;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run_seconds() -> u64 {
    std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

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

/// A running host process (killed when dropped).
struct Host {
    child: Child,
    url: String,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on `data` (redb there, or the PostgreSQL `database`), with the shipped
/// plugins, the bench's admin token and a master key all replicas share; waits until it serves.
fn start_host(data: &Path, database: Option<&str>) -> Host {
    use base64::Engine as _;
    std::fs::create_dir_all(data).unwrap();
    // One compile cache for every process of the bench: a replica does not compile again.
    let cache = root().join("target/bench-compile-cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::os::unix::fs::symlink(&cache, data.join("compile-cache")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_integration-host"));
    cmd.arg("serve")
        .args(["--data-dir", data.to_str().unwrap()])
        .args([
            "--plugins-dir",
            root().join("target/plugins").to_str().unwrap(),
        ])
        .args(["--listen", "127.0.0.1:0", "--admin-token", TOKEN])
        .env(
            "INTEGRATION_MASTER_KEY",
            base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
        )
        .env("INTEGRATION_ALLOW_LOOPBACK_TARGETS", "true")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(url) = database {
        cmd.args(["--database-url", url]);
    }
    let mut child = cmd.spawn().expect("the host binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the host exited before serving")
            .unwrap();
        if let Some(url) = line
            .trim()
            .strip_prefix("Integration sources is running: open ")
        {
            break url.trim_end_matches('/').to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    Host { child, url }
}

/// A GitLab stand-in that answers the `iids[]` list and counts requests; its URL.
async fn gitlab_stand_in(requests: Arc<AtomicUsize>) -> String {
    let tracker = axum::Router::new().route(
        "/api/v4/projects/{id}/issues",
        get(move |UrlPath(_id): UrlPath<String>, RawQuery(q): RawQuery| {
            requests.fetch_add(1, Ordering::Relaxed);
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, tracker).into_future());
    url
}

/// The body of the bench's GitLab source on `tracker`.
fn source_body(tracker: &str, read_issue_details: bool) -> Value {
    json!({
        "provider": "gitlab", "display_name": "Bench GitLab",
        "base_url": format!("{tracker}/group/project"),
        "auth": {"type": "api-token", "fields": {"token": "glpat-bench"}},
        "key_pattern": "^\\d+$",
        "capabilities": {"read_issue_details": read_issue_details}, "projects": {"mode": "all"},
    })
}

/// Makes a project and the GitLab source through `url`: (project id, source id).
async fn setup(url: &str, tracker: &str) -> (String, String) {
    let client = reqwest::Client::new();
    let (status, project) = call(
        &client,
        url,
        "POST",
        "/api/v1/projects",
        json!({"name": "Bench"}),
    )
    .await;
    assert_eq!(status, 201, "{project}");
    let (status, source) = call(
        &client,
        url,
        "POST",
        "/api/v1/sources",
        source_body(tracker, false),
    )
    .await;
    assert_eq!(status, 201, "{source}");
    (
        project["id"].as_str().unwrap().to_string(),
        source["id"].as_str().unwrap().to_string(),
    )
}

/// What one run measured.
struct Run {
    label: &'static str,
    created: usize,
    seconds: f64,
    latencies: Vec<Duration>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.created as f64 / self.seconds
    }

    /// The `q` quantile of the creations' latencies, in milliseconds.
    fn quantile(&self, q: f64) -> f64 {
        let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies
            .get(i)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }
}

/// Creates links from [`CLIENTS`] clients for `seconds`, client `i` on host `i % hosts`; every
/// creation must be acknowledged (201). Keys start at `first`.
async fn load(
    label: &'static str,
    urls: &[String],
    project: &str,
    source: &str,
    first: usize,
    seconds: u64,
) -> Run {
    let next = Arc::new(AtomicUsize::new(first));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for client_no in 0..CLIENTS {
        let url = urls[client_no % urls.len()].clone();
        let (project, source, next) = (project.to_string(), source.to_string(), next.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let path = format!("/api/v1/projects/{project}/links");
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let body = json!({"test_object": "test-case:bench", "source_id": source, "key": format!("#{n}")});
                let started = Instant::now();
                let (status, answer) = call(&client, &url, "POST", &path, body).await;
                assert_eq!(status, 201, "{answer}");
                latencies.push(started.elapsed());
            }
            latencies
        }));
    }
    let started = Instant::now();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort();
    Run {
        label,
        created: latencies.len(),
        seconds,
        latencies,
    }
}

/// With `BENCH_PERF` set, records `pid` with perf for `seconds` into
/// `target/perf/links-<label>.data`.
fn perf(label: &str, pid: u32, seconds: u64) -> Option<Child> {
    std::env::var_os("BENCH_PERF")?;
    let dir = root().join("target/perf");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("links-{}.data", label.replace([' ', '×'], "")));
    Command::new("perf")
        .args([
            "record",
            "-q",
            "-F",
            "299",
            "--call-graph",
            "dwarf,16384",
            "-p",
        ])
        .arg(pid.to_string())
        .arg("-o")
        .arg(out)
        .args(["--", "sleep", &seconds.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .ok()
}

/// One run on `hosts` started on redb or the PostgreSQL `database`: a short warm-up, then the
/// measured load.
async fn run_on(
    label: &'static str,
    dir: &Path,
    database: Option<&str>,
    replicas: usize,
    tracker: &str,
) -> Run {
    let hosts: Vec<Host> = (0..replicas)
        .map(|n| start_host(&dir.join(format!("replica-{n}")), database))
        .collect();
    let urls: Vec<String> = hosts.iter().map(|h| h.url.clone()).collect();
    let (project, source) = setup(&urls[0], tracker).await;
    load(label, &urls, &project, &source, 1_000_000, 1).await;
    let seconds = run_seconds();
    let recording = perf(label, hosts[0].child.id(), seconds);
    let run = load(label, &urls, &project, &source, 1, seconds).await;
    if let Some(mut perf) = recording {
        let _ = perf.wait();
    }
    run
}

/// The mean time of `part`, run [`PARTS_ROUNDS`] times one after the other, in microseconds.
async fn mean_micros<F: Future>(mut part: impl FnMut(u32) -> F) -> f64 {
    part(PARTS_ROUNDS + 1).await;
    let started = Instant::now();
    for n in 1..=PARTS_ROUNDS {
        part(n).await;
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(PARTS_ROUNDS)
}

/// An in-process service on `store`, serving on 127.0.0.1: its state and URL.
async fn service(store: Store, data: &Path) -> (AppState, String) {
    let key = host::crypto::MasterKey::load_or_create(&data.join("master.key")).unwrap();
    // The stand-in tracker is on this machine.
    let plugins = PluginHost::new(Limits::default(), Some(root().join("target/bench-cache")))
        .and_then(|host| host.allow_loopback_targets(true))
        .map(Arc::new)
        .unwrap();
    for (path, result) in plugins.load_dir(&root().join("target/plugins")).await {
        result.unwrap_or_else(|e| panic!("{}: {e} (run scripts/build-plugins.sh)", path.display()));
    }
    host::tokens::bootstrap_admin(&store, Some(TOKEN.into()))
        .await
        .unwrap();
    let state = AppState::new(store, plugins, key, root().join("target/plugins"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, router(state.clone())).into_future());
    (state, url)
}

/// The parts of one creation, each run alone, one after the other (microseconds each).
async fn breakdown(state: &AppState, url: &str, tracker: &str) -> Vec<(&'static str, f64)> {
    use host::links::{LinkView, NewLink, SyncState};
    let (project, source) = setup(url, tracker).await;
    let seen = state.link_sources.load(state, &source).await.unwrap();
    let config = &seen.config;
    let body =
        json!({"test_object": "test-case:bench", "source_id": source, "key": "#1"}).to_string();
    let link = host::links::prepare(state, &project, "test-case:bench", &source, "#1", "bench")
        .await
        .unwrap()
        .record;
    let hash = host::tokens::token_hash(TOKEN);
    let client = reqwest::Client::new();
    let path = format!("/api/v1/projects/{project}/links");
    vec![
        (
            "token lookup in the store",
            mean_micros(|_| {
                let hash = hash.clone();
                async move {
                    let found: Option<host::store::records::TokenRecord> = state
                        .store
                        .read(move |r| r.get(host::store::TOKENS, &hash))
                        .await
                        .unwrap();
                    found.unwrap()
                }
            })
            .await,
        ),
        (
            "project check in the store",
            mean_micros(|_| async { host::projects::get(state, &project).await.unwrap() }).await,
        ),
        (
            "source load + secret decrypt",
            mean_micros(|_| async { state.link_sources.load(state, &source).await.unwrap() })
                .await,
        ),
        (
            "plugin normalize-key",
            mean_micros(|n| {
                let key = format!("#{n}");
                async move { state.plugins.normalize_key(config, &key).await.unwrap() }
            })
            .await,
        ),
        (
            "plugin issue-url",
            mean_micros(|n| {
                let key = n.to_string();
                async move { state.plugins.issue_url(config, &key).await.unwrap() }
            })
            .await,
        ),
        (
            "JSON (body in, link out)",
            mean_micros(|n| {
                let (body, link) = (&body, &link);
                async move {
                    let _: host::api::links::LinkInput = serde_json::from_str(body).unwrap();
                    let view = LinkView {
                        id: format!("lnk_{n}"),
                        record: link.clone(),
                        sync_state: SyncState::NoDetails,
                    };
                    serde_json::to_vec(&view).unwrap()
                }
            })
            .await,
        ),
        (
            "durable commit of one link alone",
            mean_micros(|n| {
                let mut record = link.clone();
                record.key = format!("{}", 2_000_000 + n);
                let source = seen.clone();
                async move {
                    let id = host::ids::new_id("lnk");
                    let link = NewLink { record, source };
                    state.link_writer.insert(id, link).await.unwrap()
                }
            })
            .await,
        ),
        (
            "whole creation over HTTP, one client",
            mean_micros(|n| {
                let body = json!({"test_object": "test-case:bench", "source_id": source, "key": format!("#{}", 3_000_000 + n)});
                let (client, path) = (&client, &path);
                async move {
                    let (status, _) = call(client, url, "POST", path, body).await;
                    assert_eq!(status, 201);
                }
            })
            .await,
        ),
    ]
}

/// Prints the runs side by side.
fn print_runs(runs: &[Run]) {
    println!("\n{CLIENTS} clients, durable creations through POST /api/v1/projects/{{p}}/links:");
    println!(
        "| {:<16} | {:>11} | {:>9} | {:>9} | {:>9} |",
        "engine", "creations/s", "p50 ms", "p99 ms", "created"
    );
    println!(
        "|{:-<18}|{:->13}|{:->11}|{:->11}|{:->11}|",
        "", "", "", "", ""
    );
    for run in runs {
        println!(
            "| {:<16} | {:>11.0} | {:>9.2} | {:>9.2} | {:>9} |",
            run.label,
            run.rate(),
            run.quantile(0.5),
            run.quantile(0.99),
            run.created
        );
    }
}

/// Prints the breakdowns side by side.
fn print_parts(redb: &[(&str, f64)], pg: &[(&str, f64)]) {
    println!("\nOne creation's parts, each alone, mean µs ({PARTS_ROUNDS} rounds, one at a time):");
    println!("| {:<38} | {:>9} | {:>10} |", "part", "redb", "postgres");
    println!("|{:-<40}|{:->11}|{:->12}|", "", "", "");
    for ((part, r), (_, p)) in redb.iter().zip(pg) {
        println!("| {part:<38} | {r:>9.0} | {p:>10.0} |");
    }
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let requests = Arc::new(AtomicUsize::new(0));
    let tracker = gitlab_stand_in(requests.clone()).await;
    let pg = pg_server::start_durable();
    let pg_database = |name: &str| {
        pg.sql(&format!("CREATE DATABASE {name}"));
        pg.url(name)
    };
    let dirs = tempfile::tempdir().unwrap();

    // 1. Durable creations per second, through the real binary.
    let runs = vec![
        run_on("redb", &dirs.path().join("redb"), None, 1, &tracker).await,
        run_on(
            "postgres ×1",
            &dirs.path().join("pg1"),
            Some(&pg_database("bench_one")),
            1,
            &tracker,
        )
        .await,
        run_on(
            "postgres ×3",
            &dirs.path().join("pg3"),
            Some(&pg_database("bench_three")),
            3,
            &tracker,
        )
        .await,
    ];
    print_runs(&runs);

    // 2. Where one creation's time goes, in this process.
    let data = dirs.path().join("parts-redb");
    std::fs::create_dir_all(&data).unwrap();
    let (state, url) = service(Store::open(&data.join("integration.redb")).unwrap(), &data).await;
    let redb_parts = breakdown(&state, &url, &tracker).await;
    let pg_data = dirs.path().join("parts-pg");
    std::fs::create_dir_all(&pg_data).unwrap();
    let pg_store = Store::connect(&pg_database("bench_parts").parse().unwrap(), 16)
        .await
        .unwrap();
    let (pg_state, pg_url) = service(pg_store, &pg_data).await;
    let pg_parts = breakdown(&pg_state, &pg_url, &tracker).await;
    print_parts(&redb_parts, &pg_parts);

    // 3. Top up to SYNC_LINKS links on redb, switch on "Read issue details", count one pass's
    //    requests.
    sync_pass(&state, &url, &tracker, &requests).await;
}

/// The tracker requests one sync pass makes for [`SYNC_LINKS`] links of one source.
async fn sync_pass(state: &AppState, url: &str, tracker: &str, requests: &AtomicUsize) {
    let client = reqwest::Client::new();
    let (_, project) = call(
        &client,
        url,
        "POST",
        "/api/v1/projects",
        json!({"name": "Sync"}),
    )
    .await;
    let project = project["id"].as_str().unwrap().to_string();
    let mut body = source_body(tracker, false);
    body["display_name"] = json!("Sync GitLab");
    let (status, source) = call(&client, url, "POST", "/api/v1/sources", body.clone()).await;
    assert_eq!(status, 201, "{source}");
    let source = source["id"].as_str().unwrap().to_string();
    let (mut n, mut total) = (1, 0);
    while total < SYNC_LINKS {
        let keys: Vec<String> = (n..n + 200).map(|i: usize| i.to_string()).collect();
        n += 200;
        let body = json!({"test_object": "test-case:bench", "source_id": source, "keys": keys});
        let (status, results) = call(
            &client,
            url,
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
    body["capabilities"]["read_issue_details"] = json!(true);
    let (status, _) = call(
        &client,
        url,
        "PUT",
        &format!("/api/v1/sources/{source}"),
        body,
    )
    .await;
    assert_eq!(status, 200);
    requests.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let pacing = Arc::new(host::sync::Pacing::default());
    host::sync::pass(state, &pacing, Duration::from_secs(60))
        .await
        .unwrap();
    let (_, links) = call(
        &client,
        url,
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
        "\nsync of {total} links: {} tracker requests ({} keys per fetch-issues call), {} links refreshed, {:.2} s",
        requests.load(Ordering::Relaxed),
        host::sync::BATCH_SIZE,
        fresh.len(),
        started.elapsed().as_secs_f64()
    );
}
