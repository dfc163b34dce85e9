//! The real `integration-host` binary: the README's run path (it prints where to open it and a
//! one-time admin token), durability across `kill -9`, and a clean exit on SIGTERM under load.
//! Needs the shipped plugins in `target/plugins` (`scripts/build-plugins.sh`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// A running host process and what it printed.
struct Running {
    child: Child,
    url: String,
    token: Option<String>,
    output: Arc<Mutex<String>>,
}

impl Drop for Running {
    /// A failing test must not leave a server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client for the host's plain-HTTP port (reqwest is built without a default TLS provider).
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn plugins_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins")
}

/// Starts the binary on `data` and waits for the line saying where to open it.
fn start(data: &Path, admin_token: Option<&str>) -> Running {
    start_with_env(data, admin_token, &[])
}

/// [`start`] with extra environment variables.
fn start_with_env(data: &Path, admin_token: Option<&str>, env: &[(&str, &str)]) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_integration-host"));
    cmd.args([
        "--data-dir",
        data.to_str().unwrap(),
        "--plugins-dir",
        plugins_dir().to_str().unwrap(),
    ])
    .args(["serve", "--listen", "127.0.0.1:0"])
    .env_remove("INTEGRATION_ADMIN_TOKEN")
    .env_remove("INTEGRATION_MASTER_KEY")
    .env_remove("INTEGRATION_ALLOW_LOOPBACK_TARGETS")
    .envs(env.iter().copied())
    .env("RUST_LOG", "info")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some(token) = admin_token {
        cmd.args(["--admin-token", token]);
    }
    let mut child = cmd.spawn().expect("start the host binary");
    let output = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let log = output.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            log.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut url, mut token) = (None, None);
    let mut line = String::new();
    while url.is_none() {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the host exited early: {}",
            output.lock().unwrap()
        );
        output.lock().unwrap().push_str(&line);
        if let Some(t) = line
            .trim()
            .strip_prefix("Admin token (shown once, keep it): ")
        {
            token = Some(t.to_string());
        }
        if let Some(rest) = line
            .trim()
            .strip_prefix("Integration sources is running: open ")
        {
            url = Some(rest.trim_end_matches('/').to_string());
        }
    }
    let log = output.clone();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            log.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    Running {
        child,
        url: url.unwrap(),
        token,
        output,
    }
}

async fn call(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client
        .request(method.parse().unwrap(), format!("{url}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// Creates a project; returns its id.
async fn setup(client: &reqwest::Client, url: &str, token: &str) -> String {
    let (status, project) = call(
        client,
        url,
        token,
        "POST",
        "/api/v1/projects",
        Some(json!({"name": "Durable"})),
    )
    .await;
    assert_eq!(status, 201, "{project}");
    project["id"].as_str().unwrap().into()
}

/// A Custom Tracker source named `name`, usable in every project.
fn custom_source(name: &str) -> Value {
    json!({
        "provider": "custom", "display_name": name, "base_url": "http://127.0.0.1:1",
        "auth": {"type": "none"}, "issue_url_template": "{baseUrl}/issues/{key}",
        "key_pattern": "^BUG-\\d+$", "projects": {"mode": "all"},
    })
}

/// The writes a load acknowledged.
#[derive(Debug, Default)]
struct Acked {
    sources: Vec<String>,
    links: Vec<String>,
}

/// Writes in a loop from 4 clients until `stop` ends: each creates a source, then links
/// through it, and a new source every 8 links. Returns every acknowledged write.
async fn write_until(
    url: &str,
    token: &str,
    project: &str,
    stop: impl std::future::Future<Output = ()>,
) -> Acked {
    let acked = Arc::new(Mutex::new(Acked::default()));
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let (url, token, project) = (url.to_string(), token.to_string(), project.to_string());
        let (acked, running) = (acked.clone(), running.clone());
        tasks.push(tokio::spawn(async move {
            let client = client();
            let mut source = String::new();
            let mut n = 0;
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                let (path, body) = if n % 8 == 0 {
                    ("/api/v1/sources".to_string(), custom_source(&format!("Tracker {worker}-{n}")))
                } else {
                    let body = json!({"test_object": format!("test-case:W{worker}"), "source_id": source, "key": format!("BUG-{n}")});
                    (format!("/api/v1/projects/{project}/links"), body)
                };
                let (status, created) = call(&client, &url, &token, "POST", &path, Some(body)).await;
                match status {
                    201 => {
                        let id = created["id"].as_str().unwrap().to_string();
                        let mut acked = acked.lock().unwrap();
                        if n % 8 == 0 {
                            source = id.clone();
                            acked.sources.push(id);
                        } else {
                            acked.links.push(id);
                        }
                    }
                    0 => break, // the server is gone
                    _ => panic!("POST {path} failed: {status} {created}"),
                }
                n += 1;
            }
        }));
    }
    stop.await;
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

/// Sends `signal` (as `kill` spells it, e.g. `-9`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}: {status:?}");
}

/// Asserts every acknowledged write is stored, after `what`.
async fn assert_kept(url: &str, token: &str, project: &str, acked: &Acked, what: &str) {
    let stored = stored_link_ids(url, token, project).await;
    for id in &acked.links {
        assert!(
            stored.contains(id),
            "acknowledged link {id} lost after {what}"
        );
    }
    let client = client();
    for id in &acked.sources {
        let (status, _) = call(
            &client,
            url,
            token,
            "GET",
            &format!("/api/v1/sources/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "acknowledged source {id} lost after {what}");
    }
}

async fn stored_link_ids(url: &str, token: &str, project: &str) -> Vec<String> {
    let client = client();
    let (status, links) = call(
        &client,
        url,
        token,
        "GET",
        &format!("/api/v1/projects/{project}/links"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_prints_where_to_open_it_and_a_one_time_admin_token() {
    let data = tempfile::tempdir().unwrap();
    let mut host = start(data.path(), None);
    let token = host
        .token
        .clone()
        .expect("the first start prints an admin token");
    let page = client().get(format!("{}/", host.url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<html"));
    let client = client();
    let (status, providers) =
        call(&client, &host.url, &token, "GET", "/api/v1/providers", None).await;
    assert_eq!(status, 200);
    assert!(providers.as_array().unwrap().len() >= 6, "{providers}");
    host.child.kill().unwrap();
    host.child.wait().unwrap();
    // Only the hash is stored: the token never appears in the data directory, and a restart
    // prints no new one.
    let db = std::fs::read(data.path().join("integration.redb")).unwrap();
    assert!(!db.windows(token.len()).any(|w| w == token.as_bytes()));
    let mut again = start(data.path(), None);
    assert!(again.token.is_none(), "a second admin token was printed");
    let (status, _) = call(&client, &again.url, &token, "GET", "/api/v1/me", None).await;
    assert_eq!(status, 200);
    again.child.kill().unwrap();
    again.child.wait().unwrap();
    let key_file = data.path().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_write_survives_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let token = "its_binary-test-admin-token";
    let mut host = start(data.path(), Some(token));
    let project = setup(&client(), &host.url, token).await;
    let pid = host.child.id();
    let acked = write_until(&host.url, token, &project, async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // SIGKILL: no chance to flush anything.
        signal(pid, "-9");
    })
    .await;
    host.child.wait().unwrap();
    assert!(
        acked.links.len() > 10 && acked.sources.len() > 4,
        "the load ran: {} sources, {} links",
        acked.sources.len(),
        acked.links.len()
    );
    eprintln!(
        "acknowledged {} sources and {} links in 1.5 s from 4 clients before kill -9",
        acked.sources.len(),
        acked.links.len()
    );

    // The file opens cleanly, holds every acknowledged write, and takes new ones.
    let mut again = start(data.path(), Some(token));
    assert_kept(&again.url, token, &project, &acked, "kill -9").await;
    let (status, created) = call(
        &client(),
        &again.url,
        token,
        "POST",
        "/api/v1/sources",
        Some(custom_source("After the crash")),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    again.child.kill().unwrap();
    again.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_exits_cleanly_and_loses_no_acknowledged_request() {
    let data = tempfile::tempdir().unwrap();
    let token = "its_binary-test-admin-token";
    let mut host = start(data.path(), Some(token));
    let project = setup(&client(), &host.url, token).await;
    let pid = host.child.id();
    let acked = write_until(&host.url, token, &project, async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        signal(pid, "-TERM");
        tokio::time::sleep(Duration::from_millis(300)).await;
    })
    .await;
    let status = host.child.wait().unwrap();
    assert!(
        status.success(),
        "exit status {status:?}; output:\n{}",
        host.output.lock().unwrap()
    );
    assert!(!acked.links.is_empty() && !acked.sources.is_empty());
    let mut again = start(data.path(), Some(token));
    assert_kept(&again.url, token, &project, &acked, "SIGTERM").await;
    again.child.kill().unwrap();
    again.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_targets_are_refused_unless_the_operator_allows_them() {
    // A tracker on this machine that counts the connections it gets.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tracker = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = socket.read(&mut [0; 4096]).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                .await;
        }
    });
    let mut draft = custom_source("Local");
    draft["base_url"] = json!(tracker);
    let token = "its_binary-loopback-test-token-0123456789";
    let data = tempfile::tempdir().unwrap();
    let client = client();

    let mut host = start(data.path(), Some(token));
    let (status, outcome) = call(
        &client,
        &host.url,
        token,
        "POST",
        "/api/v1/sources/test",
        Some(draft.clone()),
    )
    .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["ok"], false, "{outcome}");
    let message = outcome["message"].as_str().unwrap_or_default();
    assert!(message.contains("--allow-loopback-targets"), "{message}");
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0);
    host.child.kill().unwrap();
    host.child.wait().unwrap();

    let env = [("INTEGRATION_ALLOW_LOOPBACK_TARGETS", "true")];
    let mut host = start_with_env(data.path(), Some(token), &env);
    let (status, outcome) = call(
        &client,
        &host.url,
        token,
        "POST",
        "/api/v1/sources/test",
        Some(draft),
    )
    .await;
    assert_eq!(status, 200, "{outcome}");
    assert!(
        connections.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the tracker was reached: {outcome}"
    );
    host.child.kill().unwrap();
    host.child.wait().unwrap();
}
