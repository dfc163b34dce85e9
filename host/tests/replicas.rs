//! The real binary on PostgreSQL (a server the test starts itself, see `tests/src/postgres.rs`):
//! `migrate` from a redb data directory, and several replicas on one database behind clients
//! that spread their requests across them.

mod support;

#[path = "../../tests/src/postgres.rs"]
#[allow(dead_code)]
mod pg_server;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::*;

/// Tests that time the replicas' exchanges (an upload, a removal or a source's health seen by
/// the others within 2 s) hold this exclusively, the others shared: three replicas and
/// PostgreSQL per test on a 2-core machine, two tests at once, could otherwise take those
/// seconds from each other.
static CPU: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The master key every replica shares (base64 of 32 bytes).
fn shared_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([42u8; 32])
}

/// `serve` on the PostgreSQL database `url`, with the shared master key, a data directory of
/// its own (compile cache), and `extra` arguments.
fn replica(data: &Path, url: &str, extra: &[&str]) -> Running {
    share_compile_cache(data);
    let mut cmd = host_command(data);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--admin-token", ADMIN])
        .args(["--database-url", url])
        .args(extra)
        .env("INTEGRATION_MASTER_KEY", shared_key())
        // Each sync of a source is logged ("synced source=..."), to tell who synced what.
        .env("RUST_LOG", "info,host::sync=debug");
    spawn(cmd)
}

/// Points the compile cache of `data` at the one the tests share, so a replica started by a
/// test does not compile every plugin again (real replicas each keep their own).
fn share_compile_cache(data: &Path) {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-compile-cache");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::create_dir_all(data).unwrap();
    let link = data.join("compile-cache");
    if !link.exists() {
        std::os::unix::fs::symlink(&shared, link).unwrap();
    }
}

/// Three replicas on the database `url`; their data directories live in `dirs`.
fn three_replicas(dirs: &tempfile::TempDir, url: &str, extra: &[&str]) -> Vec<Running> {
    (0..3)
        .map(|n| {
            let data = dirs.path().join(format!("replica-{n}"));
            replica(&data, url, extra)
        })
        .collect()
}

/// Everything a list answers, by id (so two reads compare independent of order).
async fn by_id(url: &str, path: &str) -> Vec<(String, Value)> {
    let (status, list) = call(&client(), url, ADMIN, "GET", path, None).await;
    assert_eq!(status, 200, "{list}");
    let mut items: Vec<(String, Value)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|item| (item["id"].as_str().unwrap().to_string(), item.clone()))
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items
}

/// Listed items less their `field` (what changes on its own: a source's health moves with calls,
/// and a link's last error is renewed by every sync).
fn without(mut items: Vec<(String, Value)>, field: &str) -> Vec<(String, Value)> {
    for (_, item) in &mut items {
        item.as_object_mut().unwrap().remove(field);
    }
    items
}

/// Sources and links made on redb, `migrate --to`, then the service on PostgreSQL serves the
/// same sources and links, and a sealed credential still opens (the stand-in tracker checks
/// it). A second migrate into the now full database is refused.
#[tokio::test(flavor = "multi_thread")]
async fn migrate_moves_a_redb_directory_to_postgres_with_working_credentials() {
    let _cpu = CPU.read().await;
    let data = tempfile::tempdir().unwrap();
    let ids = sources_with_credentials(data.path()).await;
    let (project, before_links, before_sources) = {
        let host = start(data.path(), Some(ADMIN));
        let project = setup(&client(), &host.url, ADMIN).await;
        for (n, source) in ids.iter().enumerate() {
            let body = json!({"test_object": format!("test-case:{n}"), "source_id": source, "key": format!("BUG-{n}")});
            let path = format!("/api/v1/projects/{project}/links");
            let (status, link) = call(&client(), &host.url, ADMIN, "POST", &path, Some(body)).await;
            assert_eq!(status, 201, "{link}");
        }
        let links = by_id(&host.url, &format!("/api/v1/projects/{project}/links")).await;
        let sources = by_id(&host.url, "/api/v1/sources").await;
        (project, links, sources)
    };
    assert_eq!(before_links.len(), 3);

    let url = pg_server::database();
    let mut migrate = host_command(data.path());
    migrate.args(["migrate", "--to", &url]);
    let (ok, out) = run(migrate);
    assert_eq!(ok, Some(true), "{out}");
    assert!(
        out.contains("sources: 3") && out.contains("links: 3"),
        "{out}"
    );

    // The same data directory, so the same master key file as on redb.
    let mut cmd = host_command(data.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--admin-token", ADMIN])
        .args(["--database-url", &url]);
    let host = spawn(cmd);
    let links = by_id(&host.url, &format!("/api/v1/projects/{project}/links")).await;
    // The sync pass at start may have tried the links again (a new `last_error.at`).
    assert_eq!(
        without(links, "last_error"),
        without(before_links, "last_error")
    );
    let sources = by_id(&host.url, "/api/v1/sources").await;
    assert_eq!(
        without(sources, "health"),
        without(before_sources, "health")
    );
    assert_credentials_open(&host, &ids, "migrate").await;

    let mut again = host_command(data.path());
    again.args(["migrate", "--to", &url]);
    let (ok, out) = run(again);
    assert_eq!(ok, Some(false), "{out}");
    assert!(out.contains("not empty"), "{out}");
}

/// A copy that fails half-way (here the target refuses audit events) leaves the target as
/// empty as it was, and the migrate can simply be run again.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_migrate_leaves_the_target_empty() {
    let _cpu = CPU.read().await;
    let data = tempfile::tempdir().unwrap();
    sources_with_credentials(data.path()).await;
    let url = pg_server::database();
    let name = url.rsplit('/').next().unwrap().to_string();
    // The schema, then a trigger that makes the last table copied refuse every row.
    drop(
        host::store::Store::connect(&url.parse().unwrap(), 1)
            .await
            .unwrap(),
    );
    let server = pg_server::server();
    server.sql_in(
        &name,
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse();",
    );
    let mut migrate = host_command(data.path());
    migrate.args(["migrate", "--to", &url]);
    let (ok, out) = run(migrate);
    assert_eq!(ok, Some(false), "{out}");
    assert!(out.contains("refused by the test"), "{out}");
    let counts = server.sql_in(
        &name,
        "SELECT (SELECT count(*) FROM sources) + (SELECT count(*) FROM secrets) \
         + (SELECT count(*) FROM tokens) + (SELECT count(*) FROM key_check)",
    );
    assert_eq!(counts.trim(), "0", "the target kept part of a failed copy");

    server.sql_in(&name, "DROP TRIGGER refuse ON audit");
    let mut migrate = host_command(data.path());
    migrate.args(["migrate", "--to", &url]);
    let (ok, out) = run(migrate);
    assert_eq!(ok, Some(true), "{out}");
}

/// What round-robin clients got acknowledged.
#[derive(Debug, Default)]
struct RoundRobin {
    sources: Vec<String>,
    links: Vec<String>,
    /// Requests that got no answer (sent to the killed replica).
    unanswered: usize,
}

/// Writes from 6 clients until `stop` ends, each request to the next replica in turn: a
/// source, then links through it (made on other replicas than the source: a write acknowledged
/// by one replica is visible to the others at once), a new source every 6 links.
async fn write_round_robin(
    urls: Vec<String>,
    project: String,
    stop: impl std::future::Future<Output = ()>,
) -> RoundRobin {
    let acked = Arc::new(Mutex::new(RoundRobin::default()));
    let running = Arc::new(AtomicBool::new(true));
    let mut tasks = Vec::new();
    for worker in 0..6 {
        let (urls, project) = (urls.clone(), project.clone());
        let (acked, running) = (acked.clone(), running.clone());
        tasks.push(tokio::spawn(async move {
            let client = client();
            let (mut source, mut n, mut turn) = (None::<String>, 0, worker);
            while running.load(Ordering::Relaxed) {
                turn += 1;
                let url = &urls[turn % urls.len()];
                let (path, body) = match &source {
                    Some(source) if n % 6 != 0 => (
                        format!("/api/v1/projects/{project}/links"),
                        json!({"test_object": format!("test-case:W{worker}"), "source_id": source, "key": format!("BUG-{n}")}),
                    ),
                    _ => (
                        "/api/v1/sources".to_string(),
                        json!({
                            "provider": "custom", "display_name": format!("Tracker {worker}-{n}"),
                            "base_url": "http://127.0.0.1:1", "auth": {"type": "none"},
                            "issue_url_template": "{baseUrl}/issues/{key}",
                            "key_pattern": "^BUG-\\d+$", "projects": {"mode": "all"},
                        }),
                    ),
                };
                let (status, created) = call(&client, url, ADMIN, "POST", &path, Some(body)).await;
                let mut acked = acked.lock().unwrap();
                match (status, created["id"].as_str()) {
                    (201, Some(id)) => {
                        if path.ends_with("/sources") {
                            source = Some(id.to_string());
                            acked.sources.push(id.to_string());
                        } else {
                            acked.links.push(id.to_string());
                        }
                    }
                    // The killed replica may have committed it before dying: the next request
                    // takes a fresh key and name rather than conflict with what it may have left.
                    (0 | 201, _) => acked.unanswered += 1,
                    _ => panic!("POST {path} on {url} failed: {status} {created}"),
                }
                n += 1;
            }
        }));
    }
    stop.await;
    running.store(false, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

/// Three replicas on one database; clients spread sources and links across them; one replica
/// is killed with SIGKILL in the middle. Every acknowledged write is there, once, through each
/// survivor, and the survivors kept serving.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_one_replica_loses_no_acknowledged_write() {
    let _cpu = CPU.read().await;
    let dirs = tempfile::tempdir().unwrap();
    // Trust authentication ignores the password: here it is a canary for the logs.
    let url = pg_server::database().replace("postgres@", "postgres:pw-canary-7d1@");
    let mut replicas = three_replicas(&dirs, &url, &[]);
    let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
    let mut labels = Vec::new();
    for url in &urls {
        let text = client().get(format!("{url}/metrics")).send().await.unwrap();
        let text = text.text().await.unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("integration_replica_info{"))
            .unwrap_or_else(|| panic!("no replica label: {text}"));
        assert!(line.contains("database=\"postgres\""), "{line}");
        labels.push(line.to_string());
    }
    labels.sort();
    labels.dedup();
    assert_eq!(labels.len(), 3, "each replica its own label: {labels:?}");
    let project = setup(&client(), &urls[0], ADMIN).await;
    let pid = replicas[0].child.id();
    let load = write_round_robin(urls.clone(), project.clone(), async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        signal(pid, "-9");
        tokio::time::sleep(Duration::from_millis(1500)).await;
    })
    .await;
    let _ = replicas.remove(0).child.wait();
    assert!(
        load.unanswered > 0,
        "the killed replica was in the rotation"
    );
    assert!(
        load.sources.len() > 3 && load.links.len() > 20,
        "too little load to prove anything: {} sources, {} links",
        load.sources.len(),
        load.links.len()
    );
    for survivor in &replicas {
        let links = stored_link_ids(&survivor.url, ADMIN, &project).await;
        let mut unique = links.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), links.len(), "duplicate links");
        for id in &load.links {
            assert!(links.contains(id), "acknowledged link {id} lost");
        }
        let sources = by_id(&survivor.url, "/api/v1/sources").await;
        for id in &load.sources {
            assert!(
                sources.iter().any(|(s, _)| s == id),
                "acknowledged source {id} lost"
            );
        }
        // Still serving writes.
        let body = json!({"test_object": "test-case:after", "source_id": load.sources[0], "key": "BUG-999"});
        let path = format!("/api/v1/projects/{project}/links");
        let (status, link) = call(&client(), &survivor.url, ADMIN, "POST", &path, Some(body)).await;
        assert!(status == 201 || status == 409, "{status} {link}");
        let output = survivor.output.lock().unwrap().clone();
        assert!(output.contains("[redacted]@127.0.0.1"), "{output}");
        assert!(
            !output.contains("pw-canary-7d1"),
            "the log shows the password"
        );
    }
}

/// A stand-in Custom Tracker serving `GET /api/issues/{key}` as JSON (or, once told, `429`
/// with `Retry-After: 60`), counting the requests it gets, each answered on its own thread
/// after `delay_ms`; `most_at_once` is the most requests it had in hand at the same time.
struct IssueTracker {
    url: String,
    requests: Arc<std::sync::atomic::AtomicUsize>,
    limited: Arc<AtomicBool>,
    failing: Arc<AtomicBool>,
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
    most_at_once: Arc<std::sync::atomic::AtomicUsize>,
}

impl IssueTracker {
    fn start() -> IssueTracker {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let limited = Arc::new(AtomicBool::new(false));
        let failing = Arc::new(AtomicBool::new(false));
        let delay_ms = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let most_at_once = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let at_once = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (count, limit, fail) = (requests.clone(), limited.clone(), failing.clone());
        let (delay, most) = (delay_ms.clone(), most_at_once.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (count, limit, fail) = (count.clone(), limit.clone(), fail.clone());
                let (delay, most, at_once) = (delay.clone(), most.clone(), at_once.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(&stream);
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                        line.clear();
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    most.fetch_max(at_once.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(delay.load(Ordering::SeqCst)));
                    at_once.fetch_sub(1, Ordering::SeqCst);
                    let reply = if fail.load(Ordering::SeqCst) {
                        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\
                     connection: close\r\n\r\n"
                            .to_string()
                    } else if limit.load(Ordering::SeqCst) {
                        "HTTP/1.1 429 Too Many Requests\r\nretry-after: 60\r\ncontent-length: 0\r\n\
                     connection: close\r\n\r\n"
                            .to_string()
                    } else {
                        let body = r#"{"fields":{"summary":"An issue","status":{"name":"Open"}}}"#;
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         x-ratelimit-remaining: 4999\r\nx-ratelimit-limit: 5000\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    let _ = (&stream).write_all(reply.as_bytes());
                });
            }
        });
        IssueTracker {
            url,
            requests,
            limited,
            failing,
            delay_ms,
            most_at_once,
        }
    }

    fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A source reading issues from `tracker`, a project and `links` links through it, made on
/// `url`: (source id, project id).
async fn synced_source(url: &str, tracker: &IssueTracker, links: usize) -> (String, String) {
    let body = json!({
        "provider": "custom", "display_name": "Synced", "base_url": tracker.url,
        "auth": {"type": "none"}, "issue_url_template": "{baseUrl}/browse/{key}",
        "projects": {"mode": "all"},
        "settings": {"issue-api-url": "{baseUrl}/api/issues/{key}",
                     "title-pointer": "/fields/summary", "status-pointer": "/fields/status/name"},
    });
    let (status, source) = call(&client(), url, ADMIN, "POST", "/api/v1/sources", Some(body)).await;
    assert_eq!(status, 201, "{source}");
    let source = source["id"].as_str().unwrap().to_string();
    let project = setup(&client(), url, ADMIN).await;
    for n in 0..links {
        let body = json!({"test_object": format!("test-case:{n}"), "source_id": source, "key": format!("BUG-{n}")});
        let path = format!("/api/v1/projects/{project}/links");
        let (status, link) = call(&client(), url, ADMIN, "POST", &path, Some(body)).await;
        assert_eq!(status, 201, "{link}");
    }
    (source, project)
}

/// How many syncs of `source` each replica logged.
fn syncs_by_replica(replicas: &[Running], source: &str) -> Vec<usize> {
    replicas
        .iter()
        .map(|r| {
            let output = r.output.lock().unwrap();
            output
                .lines()
                .filter(|l| l.contains("synced") && l.contains(source))
                .count()
        })
        .collect()
}

/// Three replicas syncing every second: one of them syncs the source (a lease), the others
/// leave it alone; once that one is killed, its lease expires and another replica takes the
/// source over.
#[tokio::test(flavor = "multi_thread")]
async fn one_replica_syncs_a_source_and_another_takes_over_when_its_lease_expires() {
    let _cpu = CPU.read().await;
    let tracker = IssueTracker::start();
    let dirs = tempfile::tempdir().unwrap();
    let url = pg_server::database();
    let mut replicas = three_replicas(&dirs, &url, &["--sync-interval", "1"]);
    let (source, _) = synced_source(&replicas[0].url, &tracker, 3).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let syncs = syncs_by_replica(&replicas, &source);
    assert_eq!(
        syncs.iter().filter(|n| **n > 0).count(),
        1,
        "one replica syncs the source: {syncs:?}"
    );
    assert!(syncs.iter().sum::<usize>() >= 2, "{syncs:?}");
    let holder = syncs.iter().position(|n| *n > 0).unwrap();

    let killed = replicas.remove(holder);
    signal(killed.child.id(), "-9");
    drop(killed);
    let before = syncs_by_replica(&replicas, &source);
    assert_eq!(before, [0, 0]);
    let requests = tracker.count();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = syncs_by_replica(&replicas, &source);
    assert_eq!(
        after.iter().filter(|n| **n > 0).count(),
        1,
        "one survivor took the source over: {after:?}"
    );
    assert!(tracker.count() > requests, "the tracker is asked again");
}

/// A source whose tracker keeps failing backs off (2 s, 4 s, ... at a 1 s interval) on the
/// replica that syncs it; the others do not take it over meanwhile: the lease lasts the
/// back-off.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_source_backs_off_on_one_replica_and_is_not_taken_over_meanwhile() {
    let _cpu = CPU.read().await;
    let tracker = IssueTracker::start();
    tracker.failing.store(true, Ordering::SeqCst);
    let dirs = tempfile::tempdir().unwrap();
    let url = pg_server::database();
    let replicas = three_replicas(&dirs, &url, &["--sync-interval", "1"]);
    let (source, _) = synced_source(&replicas[0].url, &tracker, 2).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let syncs = syncs_by_replica(&replicas, &source);
    assert_eq!(
        syncs.iter().filter(|n| **n > 0).count(),
        1,
        "one replica syncs the failing source: {syncs:?}"
    );
    assert!(
        syncs.iter().sum::<usize>() <= 4,
        "the back-off holds: {syncs:?}"
    );
}

/// A 429 that one replica gets pauses the source on the other replicas too: their manual
/// refreshes are refused `source-paused` without a request to the tracker.
#[tokio::test(flavor = "multi_thread")]
async fn a_429_seen_by_one_replica_pauses_the_source_on_all_of_them() {
    let _cpu = CPU.read().await;
    let tracker = IssueTracker::start();
    let dirs = tempfile::tempdir().unwrap();
    let url = pg_server::database();
    let replicas = three_replicas(&dirs, &url, &[]);
    let (source, _) = synced_source(&replicas[0].url, &tracker, 2).await;
    tracker.limited.store(true, Ordering::SeqCst);
    let path = format!("/api/v1/sources/{source}/refresh");
    let (status, report) = call(&client(), &replicas[0].url, ADMIN, "POST", &path, None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["retry_after_secs"], 60, "{report}");
    let requests = tracker.count();
    tokio::time::sleep(replica_exchange() * 3).await;
    for other in &replicas[1..] {
        let (status, refused) = call(&client(), &other.url, ADMIN, "POST", &path, None).await;
        assert_eq!(status, 429, "{refused}");
        assert_eq!(refused["error"]["code"], "source-paused", "{refused}");
    }
    assert_eq!(tracker.count(), requests, "a paused source got a request");
}

/// How often replicas exchange pauses.
fn replica_exchange() -> Duration {
    host::replicas::SHARE_EVERY
}

/// The `hotswap` test plugin with its version string replaced by `version` (same width): a
/// different binary that behaves the same.
fn hotswap(version: &str) -> Vec<u8> {
    const MARKER: &str = "1.0.0-hotswap.00000000";
    assert_eq!(version.len(), MARKER.len(), "the marker is fixed-width");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugins/hotswap.wasm");
    let mut bytes = std::fs::read(&path).expect("run scripts/build-plugins.sh");
    let at = bytes
        .windows(MARKER.len())
        .position(|w| w == MARKER.as_bytes())
        .expect("the version marker is in hotswap.wasm");
    bytes[at..at + MARKER.len()].copy_from_slice(version.as_bytes());
    bytes
}

/// Uploads `wasm` as provider `id` to the replica at `url`: the status.
async fn upload(url: &str, id: &str, wasm: Vec<u8>) -> (u16, Value) {
    upload_signed(url, id, wasm, None).await
}

/// [`upload`] with the base64 of a `.minisig` in `X-Plugin-Signature`, if given.
async fn upload_signed(
    url: &str,
    id: &str,
    wasm: Vec<u8>,
    signature: Option<String>,
) -> (u16, Value) {
    let mut req = client()
        .put(format!("{url}/api/v1/plugins/{id}?wait=true"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/wasm")
        .body(wasm);
    if let Some(signature) = signature {
        req = req.header("X-Plugin-Signature", signature);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Waits until every replica at `urls` serves provider `id` at `version`: how long it took
/// (panics after 10 s).
async fn until_served(urls: &[String], id: &str, version: &str) -> Duration {
    let started = std::time::Instant::now();
    for url in urls {
        loop {
            let path = format!("/api/v1/plugins/{id}");
            let (status, plugin) = call(&client(), url, ADMIN, "GET", &path, None).await;
            if status == 200 && plugin["version"] == version {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{url} does not serve {id} {version}: {status} {plugin}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    started.elapsed()
}

/// A plugin uploaded to replica A is served by B and C within 2 s, and its next version
/// replaces it there under load without a failed request.
#[tokio::test(flavor = "multi_thread")]
async fn an_upload_on_one_replica_is_served_by_the_others_within_2_s() {
    let _cpu = CPU.write().await;
    let dirs = tempfile::tempdir().unwrap();
    let url = pg_server::database();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins/custom.wasm");
    let replicas: Vec<Running> = (0..3)
        .map(|n| {
            // Each replica its own plugins directory (an upload is saved there).
            let plugins = dirs.path().join(format!("plugins-{n}"));
            std::fs::create_dir_all(&plugins).unwrap();
            std::fs::copy(&shipped, plugins.join("custom.wasm")).unwrap();
            let data = dirs.path().join(format!("replica-{n}"));
            replica(&data, &url, &["--plugins-dir", plugins.to_str().unwrap()])
        })
        .collect();
    let others: Vec<String> = replicas[1..].iter().map(|r| r.url.clone()).collect();

    let (status, uploaded) = upload(
        &replicas[0].url,
        "hotswap",
        hotswap("1.0.0-hotswap.00000001"),
    )
    .await;
    assert_eq!(status, 201, "{uploaded}");
    let took = until_served(&others, "hotswap", "1.0.0-hotswap.00000001").await;
    assert!(
        took < Duration::from_secs(2),
        "installed on the others after {took:?}"
    );

    let running = Arc::new(AtomicBool::new(true));
    let mut load = Vec::new();
    for n in 0..4 {
        let (url, running) = (others[n % 2].clone(), running.clone());
        load.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while running.load(Ordering::Relaxed) {
                let (status, _) = call(
                    &client(),
                    &url,
                    ADMIN,
                    "GET",
                    "/api/v1/providers/hotswap",
                    None,
                )
                .await;
                statuses.push(status);
            }
            statuses
        }));
    }
    let (status, swapped) = upload(
        &replicas[0].url,
        "hotswap",
        hotswap("2.0.0-hotswap.00000002"),
    )
    .await;
    assert_eq!(status, 200, "{swapped}");
    let took = until_served(&others, "hotswap", "2.0.0-hotswap.00000002").await;
    running.store(false, Ordering::Relaxed);
    assert!(
        took < Duration::from_secs(2),
        "swapped on the others after {took:?}"
    );
    let mut answered = 0;
    for task in load {
        let statuses = task.await.unwrap();
        answered += statuses.len();
        assert!(
            statuses.iter().all(|s| *s == 200),
            "failed requests during the swap: {statuses:?}"
        );
    }
    assert!(answered > 10, "too little load: {answered}");
}

/// With signed plugins required on every replica, a signed upload to one is stored with its
/// signature, and the others install it (checking the signature again) and list its signer.
#[tokio::test(flavor = "multi_thread")]
async fn a_signed_upload_is_installed_by_the_other_replicas_with_its_signer() {
    let _cpu = CPU.read().await;
    use base64::Engine as _;
    let dirs = tempfile::tempdir().unwrap();
    let url = pg_server::database();
    let minisign::KeyPair { pk, sk } = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let keys = dirs.path().join("trusted-keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("acme.pub"), pk.to_box().unwrap().into_string()).unwrap();
    let replicas: Vec<Running> = (0..2)
        .map(|n| {
            let plugins = dirs.path().join(format!("plugins-{n}"));
            std::fs::create_dir_all(&plugins).unwrap();
            let data = dirs.path().join(format!("replica-{n}"));
            let (plugins, keys) = (plugins.to_str().unwrap(), keys.to_str().unwrap());
            let signing = ["--require-signed-plugins", "--trusted-plugin-keys", keys];
            replica(
                &data,
                &url,
                &[&["--plugins-dir", plugins][..], &signing].concat(),
            )
        })
        .collect();

    let wasm = hotswap("1.0.0-hotswap.00000001");
    let signature = minisign::sign(Some(&pk), &sk, &wasm[..], None, None)
        .unwrap()
        .into_string();
    let header = base64::engine::general_purpose::STANDARD.encode(&signature);
    let (status, unsigned) = upload(&replicas[0].url, "hotswap", wasm.clone()).await;
    assert_eq!(status, 400, "{unsigned}");
    let (status, uploaded) = upload_signed(&replicas[0].url, "hotswap", wasm, Some(header)).await;
    assert_eq!(status, 201, "{uploaded}");
    let other = [replicas[1].url.clone()];
    until_served(&other, "hotswap", "1.0.0-hotswap.00000001").await;
    let (_, plugin) = call(
        &client(),
        &other[0],
        ADMIN,
        "GET",
        "/api/v1/plugins/hotswap",
        None,
    )
    .await;
    assert_eq!(plugin["signed_by"]["key_name"], "acme", "{plugin}");
    let saved = dirs.path().join("plugins-1/hotswap.wasm.minisig");
    assert_eq!(std::fs::read_to_string(saved).unwrap(), signature);
}

/// The health of `source` as the replica at `url` shows it.
async fn health(url: &str, source: &str) -> Value {
    let path = format!("/api/v1/sources/{source}/health");
    let (status, health) = call(&client(), url, ADMIN, "GET", &path, None).await;
    assert_eq!(status, 200, "{health}");
    health
}

/// A source's health is stored, not each replica's own memory: a connection test that passes
/// on A and one that fails on B, and A, B and C all show both calls, the last success, the
/// last error, the error rate and the headroom the tracker announced to A.
#[tokio::test(flavor = "multi_thread")]
async fn a_sources_health_is_the_same_on_every_replica() {
    let _cpu = CPU.write().await;
    let tracker = IssueTracker::start();
    let dirs = tempfile::tempdir().unwrap();
    let url = pg_server::database();
    let replicas = three_replicas(&dirs, &url, &[]);
    let (source, _) = synced_source(&replicas[0].url, &tracker, 0).await;
    let test = format!("/api/v1/sources/{source}/test");
    let (status, tested) = call(&client(), &replicas[0].url, ADMIN, "POST", &test, None).await;
    assert_eq!(status, 200, "{tested}");
    tracker.failing.store(true, Ordering::SeqCst);
    let (status, tested) = call(&client(), &replicas[1].url, ADMIN, "POST", &test, None).await;
    assert!(status < 500, "{status} {tested}");

    let started = std::time::Instant::now();
    for replica in &replicas {
        let seen = loop {
            let seen = health(&replica.url, &source).await;
            if seen["calls"] == 2 || started.elapsed() > Duration::from_secs(5) {
                break seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(seen["calls"], 2, "{} shows {seen}", replica.url);
        assert_eq!(seen["status"], "failing", "{seen}");
        assert_eq!(seen["error_rate"], 0.5, "{seen}");
        assert!(seen["last_success_at"].is_u64(), "{seen}");
        assert!(seen["last_error"]["code"].is_string(), "{seen}");
        assert_eq!(seen["rate_limit"]["remaining"], 4999, "{seen}");
        assert_eq!(seen["rate_limit"]["limit"], 5000, "{seen}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shared after {:?}",
        started.elapsed()
    );
}

/// A manual refresh never runs the tracker requests of a source at the same time as a sync of
/// it on another replica: three replicas sync a slow tracker every second while admins keep
/// refreshing the source on all of them, with short pauses so that syncs get their turns too,
/// until syncs have run; the tracker never has two requests in hand at once. A refresh waits
/// for a running sync (up to `REFRESH_WAIT`), else answers 409 `source-syncing`.
#[tokio::test(flavor = "multi_thread")]
async fn manual_refreshes_wait_for_a_sync_of_the_source_on_another_replica() {
    let _cpu = CPU.read().await;
    let tracker = IssueTracker::start();
    let dirs = tempfile::tempdir().unwrap();
    let url = pg_server::database();
    let replicas = three_replicas(&dirs, &url, &["--sync-interval", "1"]);
    let (source, _) = synced_source(&replicas[0].url, &tracker, 3).await;
    tracker.delay_ms.store(60, Ordering::SeqCst);
    let path = format!("/api/v1/sources/{source}/refresh");
    let running = Arc::new(AtomicBool::new(true));
    let mut refreshes = Vec::new();
    for (n, replica) in replicas.iter().enumerate() {
        let (url, path, running) = (replica.url.clone(), path.clone(), running.clone());
        refreshes.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while statuses.len() < 3 || running.load(Ordering::Relaxed) {
                let (status, report) = call(&client(), &url, ADMIN, "POST", &path, None).await;
                match status {
                    200 => {}
                    409 => assert_eq!(report["error"]["code"], "source-syncing", "{report}"),
                    _ => panic!("{status} {report}"),
                }
                statuses.push(status);
                tokio::time::sleep(Duration::from_millis(400 * (n as u64 + 1))).await;
            }
            statuses
        }));
    }
    let started = std::time::Instant::now();
    while syncs_by_replica(&replicas, &source).iter().sum::<usize>() == 0
        && started.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.store(false, Ordering::Relaxed);
    let mut statuses = Vec::new();
    for refresh in refreshes {
        statuses.extend(refresh.await.unwrap());
    }
    let syncs = syncs_by_replica(&replicas, &source);
    assert!(syncs.iter().sum::<usize>() > 0, "no sync ran in 30 s");
    assert!(statuses.contains(&200), "no refresh ran: {statuses:?}");
    assert_eq!(
        tracker.most_at_once.load(Ordering::SeqCst),
        1,
        "the tracker got requests for the source at the same time ({statuses:?}, syncs {syncs:?})"
    );
}

/// `DELETE /plugins/{id}` on replica A removes the plugin from B and C too within 2 s (their
/// own copies of the shipped file included), and an upload afterwards brings it back everywhere.
#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_removed_on_one_replica_is_removed_from_the_others_within_2_s() {
    let _cpu = CPU.write().await;
    let dirs = tempfile::tempdir().unwrap();
    let url = pg_server::database();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins/custom.wasm");
    let mut plugin_dirs = Vec::new();
    let replicas: Vec<Running> = (0..3)
        .map(|n| {
            let plugins = dirs.path().join(format!("plugins-{n}"));
            std::fs::create_dir_all(&plugins).unwrap();
            std::fs::copy(&shipped, plugins.join("custom.wasm")).unwrap();
            plugin_dirs.push(plugins.clone());
            let data = dirs.path().join(format!("replica-{n}"));
            replica(&data, &url, &["--plugins-dir", plugins.to_str().unwrap()])
        })
        .collect();
    let (status, _) = call(
        &client(),
        &replicas[1].url,
        ADMIN,
        "GET",
        "/api/v1/plugins/custom",
        None,
    )
    .await;
    assert_eq!(status, 200);

    let (status, removed) = call(
        &client(),
        &replicas[0].url,
        ADMIN,
        "DELETE",
        "/api/v1/plugins/custom",
        None,
    )
    .await;
    assert_eq!(status, 204, "{removed}");
    let started = std::time::Instant::now();
    for replica in &replicas[1..] {
        loop {
            let (status, plugin) = call(
                &client(),
                &replica.url,
                ADMIN,
                "GET",
                "/api/v1/plugins/custom",
                None,
            )
            .await;
            if status == 404 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} still serves custom: {status} {plugin}",
                replica.url
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "removed from the others after {took:?}"
    );
    for dir in &plugin_dirs {
        assert!(
            !dir.join("custom.wasm").exists(),
            "{} kept its file",
            dir.display()
        );
    }

    let wasm = std::fs::read(&shipped).unwrap();
    let (status, uploaded) = upload(&replicas[2].url, "custom", wasm).await;
    assert_eq!(status, 201, "{uploaded}");
    let (_, plugin) = call(
        &client(),
        &replicas[2].url,
        ADMIN,
        "GET",
        "/api/v1/plugins/custom",
        None,
    )
    .await;
    let version = plugin["version"].as_str().unwrap().to_string();
    let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
    until_served(&urls, "custom", &version).await;
}

/// A signed GitHub delivery `delivery` of `body` to the webhook `path` of the replica at
/// `url`: (status, the answer's status word).
async fn deliver(url: &str, path: &str, secret: &str, body: &[u8], delivery: &str) -> (u16, Value) {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let resp = client()
        .post(format!("{url}{path}"))
        .header("content-type", "application/json")
        .header("X-GitHub-Event", "issues")
        .header("X-GitHub-Delivery", delivery)
        .header("X-Hub-Signature-256", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    (status, answer["status"].clone())
}

/// A tracker's retry of a webhook delivery that lands on another replica is recognised by its
/// delivery id: the same signed delivery posted to A, then to B and C, is taken once (200) and
/// answered `duplicate` (200) by the others; another delivery id is taken again.
#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_delivery_is_taken_once_whichever_replica_it_reaches() {
    let _cpu = CPU.read().await;
    let dirs = tempfile::tempdir().unwrap();
    let url = pg_server::database();
    let replicas = three_replicas(&dirs, &url, &[]);
    let body = json!({
        "provider": "github", "display_name": "GitHub hooks",
        "base_url": "http://127.0.0.1:1/acme/shop",
        "auth": {"type": "api-token", "fields": {"token": "ghp_not_used"}},
        "capabilities": {"read_issue_details": false, "process_webhooks": true},
        "projects": {"mode": "all"},
    });
    let (status, source) = call(
        &client(),
        &replicas[0].url,
        ADMIN,
        "POST",
        "/api/v1/sources",
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{source}");
    let set_up = format!("/api/v1/sources/{}/webhook", source["id"].as_str().unwrap());
    let (status, hook) = call(
        &client(),
        &replicas[0].url,
        ADMIN,
        "PUT",
        &set_up,
        Some(json!({"generate_secret": true})),
    )
    .await;
    assert_eq!(status, 200, "{hook}");
    let (path, secret) = (
        hook["path"].as_str().unwrap(),
        hook["secret"].as_str().unwrap(),
    );
    let event = serde_json::to_vec(&json!({
        "action": "closed",
        "issue": {"number": 1, "title": "Login fails", "state": "closed", "state_reason": "completed",
                  "html_url": "https://github.com/acme/shop/issues/1", "assignees": [],
                  "updated_at": "2026-12-07T01:00:00Z"},
        "repository": {"id": 186853002, "full_name": "acme/shop"},
        "sender": {"login": "octocat", "id": 1},
    }))
    .unwrap();

    let taken = deliver(&replicas[0].url, path, secret, &event, "d-1").await;
    assert_eq!(taken, (200, json!("accepted")));
    for other in &replicas[1..] {
        let again = deliver(&other.url, path, secret, &event, "d-1").await;
        assert_eq!(again, (200, json!("duplicate")), "{}", other.url);
    }
    let next = deliver(&replicas[1].url, path, secret, &event, "d-2").await;
    assert_eq!(next, (200, json!("accepted")));
}

/// A stand-in Jira Cloud answering the enhanced JQL search (`POST /rest/api/3/search/jql`,
/// body `{jql, fields, maxResults}`, answer `{issues, isLast}`, as `tests/e2e/jira.rs` details)
/// for `key in ("A-1", ...)`: every key found, Open. Logs the keys of each search.
struct JiraSearch {
    url: String,
    searches: Arc<Mutex<Vec<Vec<String>>>>,
}

impl JiraSearch {
    fn start() -> JiraSearch {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let searches: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let log = searches.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(&stream);
                    let (mut line, mut request, mut length) = (String::new(), String::new(), 0);
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                        let lower = line.to_ascii_lowercase();
                        if let Some(value) = lower.strip_prefix("content-length:") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                        if request.is_empty() {
                            request = line.clone();
                        }
                        line.clear();
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    let (status, answer) = if request.starts_with("POST /rest/api/3/search/jql ") {
                        let asked: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let jql = asked["jql"].as_str().unwrap_or_default();
                        let keys: Vec<String> = jql
                            .split('"')
                            .skip(1)
                            .step_by(2)
                            .map(String::from)
                            .collect();
                        let issues: Vec<Value> = keys
                            .iter()
                            .map(|key| {
                                json!({"id": "1", "key": key, "fields": {
                                "summary": "An issue",
                                "status": {"name": "Open", "statusCategory": {"key": "new"}}}})
                            })
                            .collect();
                        log.lock().unwrap().push(keys);
                        ("200 OK", json!({"issues": issues, "isLast": true}))
                    } else {
                        (
                            "404 Not Found",
                            json!({"errorMessages": ["stand-in: not served"]}),
                        )
                    };
                    let answer = answer.to_string();
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = (&stream).write_all(reply.as_bytes());
                });
            }
        });
        JiraSearch { url, searches }
    }
}

/// `line` without its terminal colour codes (`ESC [ ... m`).
fn without_colours(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find('\u{1b}') {
        out.push_str(&rest[..at]);
        rest = rest[at..].split_once('m').map_or("", |(_, after)| after);
    }
    out + rest
}

/// Links of the scale test.
const MANY_LINKS: usize = 10_000;

/// 10,000 links of one Jira source, three replicas starting together: one of them syncs the
/// source, in batches of `BATCH_SIZE` keys, one tracker request per batch; the tracker gets
/// exactly 10,000 / 50 = 200 searches, each key in one of them, not three times as many. (The
/// links are written straight into the database, as a bulk import would: through the API they
/// would take minutes in a debug build.)
#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_links_on_three_replicas_cost_one_tracker_request_per_batch() {
    let _cpu = CPU.read().await;
    let tracker = JiraSearch::start();
    let dirs = tempfile::tempdir().unwrap();
    let url = pg_server::database();
    let source = {
        let first = replica(
            &dirs.path().join("set-up"),
            &url,
            &["--sync-interval", "3600"],
        );
        let body = json!({
            "provider": "jira-cloud", "display_name": "Big Jira", "base_url": tracker.url,
            "auth": {"type": "api-token", "fields": {"email": "mia@example.com", "api-token": "t0ken"}},
            "projects": {"mode": "all"},
        });
        let (status, source) = call(
            &client(),
            &first.url,
            ADMIN,
            "POST",
            "/api/v1/sources",
            Some(body),
        )
        .await;
        assert_eq!(status, 201, "{source}");
        source["id"].as_str().unwrap().to_string()
    };
    let store = host::store::Store::connect(&url.parse().unwrap(), 2)
        .await
        .unwrap();
    let (id, started) = (source.clone(), std::time::Instant::now());
    store
        .write(move |w| {
            for n in 0..MANY_LINKS {
                let record: host::store::records::LinkRecord = serde_json::from_value(json!({
                    "project": "prj_bulk", "test_object": format!("test-case:{n}"),
                    "source_id": id, "source_name": "Big Jira", "provider": "jira-cloud",
                    "key": format!("PROJ-{}", n + 1), "url": null, "snapshot": null,
                    "last_error": null, "created_at": 1, "created_by": "test",
                }))
                .unwrap();
                let id = format!("lnk_{n:05}");
                w.put(host::store::LINK_IDENTITIES, &record.identity(), &id)?;
                w.put(host::store::LINKS, &id, &record)?;
            }
            Ok::<_, host::store::StoreError>(())
        })
        .await
        .unwrap();
    eprintln!("{MANY_LINKS} links stored in {:?}", started.elapsed());

    // Each replica's first pass runs at its start; the next one an hour later.
    let started = std::time::Instant::now();
    let replicas = three_replicas(&dirs, &url, &["--sync-interval", "3600"]);
    let synced = loop {
        let logged: Vec<String> = replicas
            .iter()
            .flat_map(|r| {
                let output = r.output.lock().unwrap();
                let lines = output
                    .lines()
                    .filter(|l| l.contains("synced") && l.contains(&source));
                lines.map(without_colours).collect::<Vec<_>>()
            })
            .collect();
        if !logged.is_empty() {
            break logged;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no sync after 2 min"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "synced by three replicas in {:?}: {synced:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let batches = MANY_LINKS.div_ceil(host::sync::BATCH_SIZE);
    assert_eq!(synced.len(), 1, "one replica syncs: {synced:?}");
    assert!(
        synced[0].contains(&format!("refreshed={MANY_LINKS}")),
        "{synced:?}"
    );
    assert!(
        synced[0].contains(&format!("batches={batches}")),
        "{synced:?}"
    );
    let searches = tracker.searches.lock().unwrap().clone();
    assert_eq!(searches.len(), batches, "one request per batch");
    let mut keys: Vec<String> = searches.concat();
    keys.sort();
    let asked = keys.len();
    keys.dedup();
    assert_eq!(
        (asked, keys.len()),
        (MANY_LINKS, MANY_LINKS),
        "each key fetched once"
    );
}
