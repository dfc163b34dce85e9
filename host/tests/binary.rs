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

/// Creates a project and a Custom Tracker source; returns (project id, source id).
async fn setup(client: &reqwest::Client, url: &str, token: &str) -> (String, String) {
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
    let source = json!({
        "provider": "custom", "display_name": "Internal tracker", "base_url": "http://127.0.0.1:1",
        "auth": {"type": "none"}, "issue_url_template": "{baseUrl}/issues/{key}",
        "key_pattern": "^BUG-\\d+$", "projects": {"mode": "all"},
    });
    let (status, source) = call(client, url, token, "POST", "/api/v1/sources", Some(source)).await;
    assert_eq!(status, 201, "{source}");
    (
        project["id"].as_str().unwrap().into(),
        source["id"].as_str().unwrap().into(),
    )
}

/// Creates links in a loop from 4 tasks until stopped; returns the acknowledged link ids.
async fn create_links_until(
    url: &str,
    token: &str,
    project: &str,
    source: &str,
    stop: impl std::future::Future<Output = ()>,
) -> Vec<String> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let (url, token, project, source) = (
            url.to_string(),
            token.to_string(),
            project.to_string(),
            source.to_string(),
        );
        let (acked, running) = (acked.clone(), running.clone());
        tasks.push(tokio::spawn(async move {
            let client = client();
            let mut n = 0;
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let body = json!({"test_object": format!("test-case:W{worker}"), "source_id": source, "key": format!("BUG-{n}")});
                let (status, link) = call(&client, &url, &token, "POST", &format!("/api/v1/projects/{project}/links"), Some(body)).await;
                if status == 201 {
                    acked.lock().unwrap().push(link["id"].as_str().unwrap().to_string());
                } else if status == 0 {
                    break; // the server is gone
                } else {
                    panic!("link creation failed: {status} {link}");
                }
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
    let client = client();
    let (project, source) = setup(&client, &host.url, token).await;
    let pid = host.child.id();
    let acked = create_links_until(&host.url, token, &project, &source, async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // SIGKILL: no chance to flush anything.
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    })
    .await;
    host.child.wait().unwrap();
    assert!(acked.len() > 10, "the load ran: {} links", acked.len());
    eprintln!(
        "acknowledged {} durable link creations in 1.5 s from 4 clients before kill -9",
        acked.len()
    );

    let mut again = start(data.path(), Some(token));
    let stored = stored_link_ids(&again.url, token, &project).await;
    for id in &acked {
        assert!(
            stored.contains(id),
            "acknowledged link {id} lost after kill -9"
        );
    }
    again.child.kill().unwrap();
    again.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_exits_cleanly_and_loses_no_acknowledged_request() {
    let data = tempfile::tempdir().unwrap();
    let token = "its_binary-test-admin-token";
    let mut host = start(data.path(), Some(token));
    let client = client();
    let (project, source) = setup(&client, &host.url, token).await;
    let pid = host.child.id();
    let acked = create_links_until(&host.url, token, &project, &source, async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    })
    .await;
    let status = host.child.wait().unwrap();
    assert!(
        status.success(),
        "exit status {status:?}; output:\n{}",
        host.output.lock().unwrap()
    );
    let mut again = start(data.path(), Some(token));
    let stored = stored_link_ids(&again.url, token, &project).await;
    assert!(!acked.is_empty());
    for id in &acked {
        assert!(
            stored.contains(id),
            "acknowledged link {id} lost after SIGTERM"
        );
    }
    again.child.kill().unwrap();
    again.child.wait().unwrap();
}
