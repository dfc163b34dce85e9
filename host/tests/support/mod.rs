//! What the tests of the real binary share: starting it and reading what it prints, calling
//! its API, loads of writes, a stand-in tracker that checks a credential.
#![allow(dead_code)] // each test binary uses its share

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// A running host process and what it printed.
pub struct Running {
    pub child: Child,
    pub url: String,
    pub token: Option<String>,
    pub output: Arc<Mutex<String>>,
}

impl Drop for Running {
    /// A failing test must not leave a server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client for the host's plain-HTTP port (reqwest is built without a default TLS provider).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub fn plugins_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins")
}

/// The binary on `data` with the shipped plugins, without the environment's key or token.
pub fn host_command(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_integration-host"));
    cmd.args([
        "--data-dir",
        data.to_str().unwrap(),
        "--plugins-dir",
        plugins_dir().to_str().unwrap(),
    ])
    .env_remove("INTEGRATION_ADMIN_TOKEN")
    .env_remove("INTEGRATION_MASTER_KEY")
    // The stand-in trackers of these tests are on this machine.
    .env("INTEGRATION_ALLOW_LOOPBACK_TARGETS", "true")
    .env("RUST_LOG", "info");
    cmd
}

/// Starts the binary on `data` and waits for the line saying where to open it.
pub fn start(data: &Path, admin_token: Option<&str>) -> Running {
    start_with_env(data, admin_token, &[])
}

/// [`start`] with extra environment variables.
pub fn start_with_env(data: &Path, admin_token: Option<&str>, env: &[(&str, &str)]) -> Running {
    let mut cmd = host_command(data);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .envs(env.iter().copied());
    if let Some(token) = admin_token {
        cmd.args(["--admin-token", token]);
    }
    spawn(cmd)
}

/// Runs `cmd` (a `serve`) and waits for the line saying where to open it.
pub fn spawn(mut cmd: Command) -> Running {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
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

pub async fn call(
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
pub async fn setup(client: &reqwest::Client, url: &str, token: &str) -> String {
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
pub fn custom_source(name: &str) -> Value {
    json!({
        "provider": "custom", "display_name": name, "base_url": "http://127.0.0.1:1",
        "auth": {"type": "none"}, "issue_url_template": "{baseUrl}/issues/{key}",
        "key_pattern": "^BUG-\\d+$", "projects": {"mode": "all"},
    })
}

/// The writes a load acknowledged.
#[derive(Debug, Default)]
pub struct Acked {
    pub sources: Vec<String>,
    pub links: Vec<String>,
}

/// Writes in a loop from 4 clients until `stop` ends: each creates a source, then links
/// through it, and a new source every 8 links. Returns every acknowledged write.
pub async fn write_until(
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
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}: {status:?}");
}

/// Asserts every acknowledged write is stored, after `what`.
pub async fn assert_kept(url: &str, token: &str, project: &str, acked: &Acked, what: &str) {
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

pub async fn stored_link_ids(url: &str, token: &str, project: &str) -> Vec<String> {
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

/// The admin token of the tests below.
pub const ADMIN: &str = "its_binary-test-admin-token";

/// The API token the stand-in tracker accepts, sealed in the sources' credentials.
pub const TRACKER_TOKEN: &str = "tracker-secret-9f1c";

/// Runs `cmd` until it exits (killed after 20 s): whether it succeeded (`None`: still running
/// after 20 s), and everything it printed.
pub fn run(mut cmd: Command) -> (Option<bool>, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the host binary");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status.success());
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (status, text)
}

/// `serve` on `data`, for starts expected to be refused.
pub fn serve_command(data: &Path) -> Command {
    let mut cmd = host_command(data);
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    cmd
}

/// A stand-in Custom Tracker on 127.0.0.1: 200 to a request bearing
/// `Authorization: Bearer TRACKER_TOKEN`, 401 to any other. Returns its base URL.
pub fn tracker() -> String {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let expected = format!("authorization: bearer {}", TRACKER_TOKEN.to_lowercase());
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(&stream);
            let (mut line, mut authorized) = (String::new(), false);
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                authorized |= line.trim().to_lowercase() == expected;
                line.clear();
            }
            let status = if authorized {
                "200 OK"
            } else {
                "401 Unauthorized"
            };
            let _ = (&stream).write_all(
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    url
}

/// Starts the host on `data`, creates three sources whose sealed credentials the stand-in
/// tracker checks, and stops it. Returns the sources' ids.
pub async fn sources_with_credentials(data: &Path) -> Vec<String> {
    let base_url = tracker();
    let host = start(data, Some(ADMIN));
    let mut ids = Vec::new();
    for n in 0..3 {
        let body = json!({
            "provider": "custom", "display_name": format!("Sealed {n}"), "base_url": base_url,
            "auth": {"type": "api-token", "fields": {"api-token": TRACKER_TOKEN}},
            "issue_url_template": "{baseUrl}/issues/{key}", "projects": {"mode": "all"},
        });
        let (status, created) = call(
            &client(),
            &host.url,
            ADMIN,
            "POST",
            "/api/v1/sources",
            Some(body),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    assert_credentials_open(&host, &ids, "creation").await;
    ids
}

/// Asserts each source's credentials open: its connection test reaches the stand-in tracker
/// with the right token.
pub async fn assert_credentials_open(host: &Running, ids: &[String], after: &str) {
    for id in ids {
        let path = format!("/api/v1/sources/{id}/test");
        let (status, outcome) = call(&client(), &host.url, ADMIN, "POST", &path, None).await;
        assert_eq!(
            (status, &outcome["ok"]),
            (200, &json!(true)),
            "source {id} after {after}: {outcome}\n{}",
            host.output.lock().unwrap()
        );
    }
}
