//! The real `integration-host` binary: the README's run path (it prints where to open it and a
//! one-time admin token), durability across `kill -9`, and a clean exit on SIGTERM under load.
//! Needs the shipped plugins in `target/plugins` (`scripts/build-plugins.sh`).

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::*;

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

    let default = [("INTEGRATION_ALLOW_LOOPBACK_TARGETS", "false")];
    let mut host = start_with_env(data.path(), Some(token), &default);
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

    let mut host = start(data.path(), Some(token));
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

fn other_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([7u8; 32])
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `rotate-key` used to commit the credentials re-sealed under the new key before writing the
/// key: when that write failed, every credential was sealed under a key kept nowhere.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn rotate_key_that_cannot_write_the_new_key_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let ids = sources_with_credentials(data.path()).await;
    let key = std::fs::read_to_string(data.path().join("master.key")).unwrap();
    // /proc takes no new file, even from root: the new key cannot be written there.
    let mut cmd = host_command(data.path());
    cmd.env("INTEGRATION_MASTER_KEY", key.trim())
        .args(["--master-key-file", "/proc/integration-test/master.key"])
        .arg("rotate-key");
    let (ok, output) = run(cmd);
    assert_eq!(ok, Some(false), "{output}");
    assert!(output.contains("nothing was changed"), "{output}");
    let host = start(data.path(), Some(ADMIN));
    assert_credentials_open(&host, &ids, "a rotation that could not write its key").await;
}

/// A rotation killed (SIGKILL, through the test-only hook) after writing the new key, and
/// after committing the re-sealed credentials: the next start finishes or undoes it.
#[tokio::test(flavor = "multi_thread")]
async fn rotate_key_killed_after_each_step_leaves_every_credential_readable() {
    let data = tempfile::tempdir().unwrap();
    let ids = sources_with_credentials(data.path()).await;
    let key_file = data.path().join("master.key");
    let next = data.path().join("master.key.next");
    for (step, replaced) in [("staged", false), ("committed", true)] {
        let before = std::fs::read(&key_file).unwrap();
        let mut cmd = host_command(data.path());
        cmd.env(host::keys::ROTATE_ABORT_ENV, step)
            .arg("rotate-key");
        let (ok, output) = run(cmd);
        assert_eq!(
            ok,
            Some(false),
            "rotate-key not killed after {step}: {output}"
        );
        assert!(next.exists(), "the new key is staged beside the old one");
        let host = start(data.path(), Some(ADMIN));
        assert_credentials_open(&host, &ids, &format!("a rotation killed after {step}")).await;
        drop(host);
        assert!(!next.exists(), "the staged key is resolved at start");
        let after = std::fs::read(&key_file).unwrap();
        assert_eq!(
            after != before,
            replaced,
            "key file after a kill after {step}"
        );
        #[cfg(unix)]
        assert_eq!(mode(&key_file), 0o600);
    }
    let before = std::fs::read(&key_file).unwrap();
    let mut cmd = host_command(data.path());
    cmd.arg("rotate-key");
    let (ok, output) = run(cmd);
    assert_eq!(ok, Some(true), "{output}");
    assert!(
        output.contains("Re-encrypted the credentials of 3 sources"),
        "{output}"
    );
    assert_ne!(std::fs::read(&key_file).unwrap(), before);
    let host = start(data.path(), Some(ADMIN));
    assert_credentials_open(&host, &ids, "a complete rotation").await;
}

/// A wrong key used to start, report ready and answer 500 to every connection test.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_master_key_is_refused_at_start_naming_its_source() {
    let data = tempfile::tempdir().unwrap();
    let ids = sources_with_credentials(data.path()).await;
    let mut cmd = serve_command(data.path());
    cmd.env("INTEGRATION_MASTER_KEY", other_key());
    let (ok, output) = run(cmd);
    assert_eq!(ok, Some(false), "{output}");
    assert!(
        output.contains("INTEGRATION_MASTER_KEY is not the key"),
        "{output}"
    );

    let key_file = data.path().join("master.key");
    let right = std::fs::read(&key_file).unwrap();
    std::fs::write(&key_file, other_key()).unwrap();
    let (ok, output) = run(serve_command(data.path()));
    assert_eq!(ok, Some(false), "{output}");
    let named = format!("the master key file {} is not the key", key_file.display());
    assert!(output.contains(&named), "{output}");

    std::fs::write(&key_file, right).unwrap();
    let host = start(data.path(), Some(ADMIN));
    assert_credentials_open(&host, &ids, "restoring the key").await;
}

/// A deleted key file used to be replaced by a new key, orphaning every stored credential.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_key_file_is_not_replaced_while_credentials_are_stored() {
    let data = tempfile::tempdir().unwrap();
    let ids = sources_with_credentials(data.path()).await;
    let key_file = data.path().join("master.key");
    let kept = std::fs::read(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let (ok, output) = run(serve_command(data.path()));
    assert_eq!(ok, Some(false), "{output}");
    assert!(output.contains("is missing"), "{output}");
    assert!(!key_file.exists(), "no new key was created");

    std::fs::write(&key_file, kept).unwrap();
    let host = start(data.path(), Some(ADMIN));
    assert_credentials_open(&host, &ids, "restoring the key file").await;
}

/// 64 flipped bytes used to start (and `/readyz` say 200) until a request panicked in redb;
/// an emptied file started as an empty store.
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_or_emptied_database_is_refused_at_start() {
    let data = tempfile::tempdir().unwrap();
    let host = start(data.path(), Some(ADMIN));
    for n in 0..20 {
        let body = json!({"name": format!("needle project {n}")});
        let (status, _) = call(
            &client(),
            &host.url,
            ADMIN,
            "POST",
            "/api/v1/projects",
            Some(body),
        )
        .await;
        assert_eq!(status, 201);
    }
    // A clean stop: a file shut down cleanly is trusted by a plain open.
    let mut host = host;
    signal(host.child.id(), "-TERM");
    assert!(host.child.wait().unwrap().success());
    let db = data.path().join("integration.redb");
    let mut bytes = std::fs::read(&db).unwrap();
    let at: Vec<usize> = bytes
        .windows(6)
        .enumerate()
        .filter(|(_, w)| w == b"needle")
        .map(|(i, _)| i)
        .collect();
    assert!(!at.is_empty());
    for i in at {
        bytes[i..i + 64].iter_mut().for_each(|b| *b ^= 0x5a);
    }
    std::fs::write(&db, &bytes).unwrap();
    let (ok, output) = run(serve_command(data.path()));
    assert_eq!(ok, Some(false), "{output}");
    assert!(
        output.contains("is damaged") && output.contains("restore"),
        "{output}"
    );

    std::fs::write(&db, b"").unwrap();
    let (ok, output) = run(serve_command(data.path()));
    assert_eq!(ok, Some(false), "{output}");
    assert!(output.contains("empty (0 bytes)"), "{output}");
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);
}

/// New files are private; a key file or database others can read draws a warning.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_key_file_or_database_readable_by_others_draws_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    let host = start(data.path(), Some(ADMIN));
    let (key_file, db) = (
        data.path().join("master.key"),
        data.path().join("integration.redb"),
    );
    assert_eq!((mode(&key_file), mode(&db)), (0o600, 0o600));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !host
            .output
            .lock()
            .unwrap()
            .contains("can be read by other users")
    );
    drop(host);
    for path in [&key_file, &db] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let host = start(data.path(), Some(ADMIN));
    std::thread::sleep(Duration::from_millis(300));
    let output = host.output.lock().unwrap().clone();
    assert_eq!(
        output.matches("can be read by other users").count(),
        2,
        "{output}"
    );
}

/// Starts `serve` on a new data directory with `args` (e.g. `--header-timeout 1`).
fn start_with(data: &Path, args: &[&str]) -> Running {
    let mut cmd = serve_command(data);
    cmd.args(["--admin-token", ADMIN]).args(args);
    spawn(cmd)
}

/// A raw connection to the host.
fn connect(host: &Running) -> std::net::TcpStream {
    let addr = host.url.trim_start_matches("http://");
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection (or 10 s pass); returns what it sent and
/// how long that took.
fn read_to_close(mut stream: std::net::TcpStream) -> (String, Duration) {
    use std::io::Read;
    let started = std::time::Instant::now();
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
    (
        String::from_utf8_lossy(&text).to_string(),
        started.elapsed(),
    )
}

/// 300 slowloris connections used to stay open indefinitely: no header read timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_slow_to_send_its_headers_is_disconnected() {
    use std::io::Write;
    let data = tempfile::tempdir().unwrap();
    let host = start_with(data.path(), &["--header-timeout", "1"]);
    let silent = connect(&host);
    let mut partial = connect(&host);
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    for stream in [silent, partial] {
        let (_, took) = read_to_close(stream);
        assert!(took < Duration::from_secs(5), "closed after {took:?}");
    }
    // A client that sends its request in time is served.
    let ok = client()
        .get(format!("{}/healthz", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// A request body that trickles in is answered 408 once its time is up, and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_body_that_does_not_arrive_in_time_is_answered_408() {
    use std::io::Write;
    let data = tempfile::tempdir().unwrap();
    let host = start_with(data.path(), &["--body-timeout", "1"]);
    let mut stream = connect(&host);
    let head = format!(
        "POST /api/v1/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\": "
    );
    stream.write_all(head.as_bytes()).unwrap();
    let (answer, took) = read_to_close(stream);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""field":"body""#), "{answer}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    let (status, projects) =
        call(&client(), &host.url, ADMIN, "GET", "/api/v1/projects", None).await;
    assert_eq!((status, projects), (200, json!([])));
}

/// Connections beyond the cap wait for a slot instead of being served (or exhausting the
/// process's file descriptors).
#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let data = tempfile::tempdir().unwrap();
    let host = start_with(
        data.path(),
        &["--max-connections", "4", "--header-timeout", "30"],
    );
    let mut idle: Vec<_> = (0..4).map(|_| connect(&host)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let url = format!("{}/healthz", host.url);
    let held = client()
        .get(&url)
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    assert!(held.is_err(), "a fifth connection was served: {held:?}");
    idle.pop();
    let served = client()
        .get(&url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
}

/// `--admin-token` used to only add tokens: a restart with a new value left the old one valid.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_preset_admin_token_revokes_the_previous_one() {
    let data = tempfile::tempdir().unwrap();
    let old = "its_old-preset-admin-token";
    let host = start(data.path(), Some(old));
    let (status, _) = call(&client(), &host.url, old, "GET", "/api/v1/me", None).await;
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(300));
    assert!(host.output.lock().unwrap().contains("in the process list"));
    let body = json!({"name": "CI", "role": "admin"});
    let (status, made) = call(
        &client(),
        &host.url,
        old,
        "POST",
        "/api/v1/tokens",
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let api_token = made["token"].as_str().unwrap().to_string();
    drop(host);

    let new = "its_new-preset-admin-token";
    let file = data.path().join("admin-token");
    std::fs::write(&file, format!("{new}\n")).unwrap();
    let mut cmd = serve_command(data.path());
    cmd.args(["--admin-token-file", file.to_str().unwrap()]);
    let host = spawn(cmd);
    for (token, expected) in [(new, 200), (old, 401), (api_token.as_str(), 200)] {
        let (status, _) = call(&client(), &host.url, token, "GET", "/api/v1/me", None).await;
        assert_eq!(status, expected, "{token}");
    }
    assert!(!host.output.lock().unwrap().contains("in the process list"));
}

/// Requiring signed plugins without a trusted key (no `--trusted-plugin-keys`, or a file with
/// no key in it) is refused at start, saying what to set; so is a keys file that holds
/// something else than a key, naming the file and the line.
#[test]
fn requiring_signed_plugins_without_a_trusted_key_is_refused_at_start_saying_what_to_set() {
    let data = tempfile::tempdir().unwrap();
    let refused = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = serve_command(data.path());
        cmd.args(args).envs(env.iter().copied());
        let (ok, out) = run(cmd);
        assert_eq!(ok, Some(false), "{out}");
        out
    };
    let out = refused(&["--require-signed-plugins"], &[]);
    assert!(out.contains("set --trusted-plugin-keys"), "{out}");
    let out = refused(&[], &[("INTEGRATION_REQUIRE_SIGNED_PLUGINS", "true")]);
    assert!(out.contains("set --trusted-plugin-keys"), "{out}");
    let keys = data.path().join("vendor-keys");
    std::fs::write(&keys, "# none yet\n").unwrap();
    let keys = keys.to_str().unwrap();
    let out = refused(
        &["--require-signed-plugins", "--trusted-plugin-keys", keys],
        &[],
    );
    assert!(out.contains("no key is trusted"), "{out}");
    std::fs::write(keys, "# acme\nnot-a-key\n").unwrap();
    let out = refused(&["--trusted-plugin-keys", keys], &[]);
    assert!(
        out.contains("vendor-keys") && out.contains("line 2"),
        "{out}"
    );
}

/// `check --help` lists the options `check` uses (its own and the plugin limits), not the
/// service's; a service option after `check` is refused, while `serve` still takes it.
#[test]
fn check_help_lists_only_the_options_check_uses() {
    let help = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_integration-host"))
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), text)
    };
    let (ok, text) = help(&["check", "--help"]);
    assert!(ok, "{text}");
    for used in [
        "--fixtures",
        "--base-url",
        "--setting",
        "--plugin-cpu-ms",
        "--config",
    ] {
        assert!(text.contains(used), "check --help lacks {used}: {text}");
    }
    for unused in [
        "--database-url",
        "--max-connections",
        "--listen",
        "--master-key-file",
        "--sync-interval",
    ] {
        assert!(
            !text.contains(unused),
            "check --help lists {unused}: {text}"
        );
    }
    let (ok, text) = help(&["check", "--database-url", "postgres://a@b/c", "x.wasm"]);
    assert!(!ok && text.contains("--database-url"), "{text}");
    let (ok, text) = help(&["serve", "--help"]);
    assert!(
        ok && text.contains("--database-url") && text.contains("--listen"),
        "{text}"
    );
}

/// `new-plugin` makes a Rust project in any directory that builds for wasm32-wasip2 and passes
/// `check` (with its recorded answers); a non-empty directory and a bad id are refused.
#[test]
fn new_plugin_makes_a_project_that_builds_and_passes_check() {
    let run_host = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_integration-host"))
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(!text.contains("panicked"), "{text}");
        (output.status.success(), text)
    };
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("probe");
    let project_arg = project.to_str().unwrap();
    let (ok, text) = run_host(&["new-plugin", "scaffold-probe", "--dir", project_arg]);
    assert!(ok, "{text}");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let build = std::process::Command::new(cargo)
        .current_dir(&project)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let wasm = target.join("wasm32-wasip2/release/scaffold_probe_plugin.wasm");
    let fixtures = project.join("fixtures.json");
    let (ok, text) = run_host(&[
        "check",
        wasm.to_str().unwrap(),
        "--fixtures",
        fixtures.to_str().unwrap(),
    ]);
    assert!(ok && text.contains("result: PASS"), "{text}");
    assert!(
        text.contains("Scaffold Probe"),
        "the name is put in: {text}"
    );

    let (ok, text) = run_host(&["new-plugin", "other", "--dir", project_arg]);
    assert!(!ok && text.contains("not empty"), "{text}");
    let (ok, text) = run_host(&["new-plugin", "Bad_Name", "--dir", project_arg]);
    assert!(!ok && text.contains("kebab-case"), "{text}");
    // `check` without service options runs (and fails readably on a missing file).
    let (ok, text) = run_host(&["check", "/nonexistent/plugin.wasm"]);
    assert!(!ok && text.contains("FAIL"), "{text}");
}

/// `new-plugin --lang python` makes a project that componentize-py builds (with the
/// contract in its `wit/`) and that passes `check` with the provider id put in.
#[test]
fn new_plugin_makes_a_python_project_that_builds_and_passes_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let componentize = root.join("target/py-venv/bin/componentize-py");
    if !componentize.is_file() {
        eprintln!(
            "componentize-py is not installed (scripts/build-plugins.sh installs it): skipped"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("py");
    let host = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_integration-host"))
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), text)
    };
    let args = ["new-plugin", "py-probe", "--lang", "python", "--dir"];
    let (ok, text) = host(&[&args[..], &[project.to_str().unwrap()]].concat());
    assert!(ok, "{text}");
    let build = std::process::Command::new(&componentize)
        .current_dir(&project)
        .args([
            "-d",
            "wit",
            "-w",
            "provider",
            "componentize",
            "app",
            "-o",
            "py-probe.wasm",
        ])
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let wasm = project.join("py-probe.wasm");
    let (ok, text) = host(&[
        "check",
        wasm.to_str().unwrap(),
        "--max-plugin-bytes",
        "67108864",
    ]);
    assert!(ok && text.contains("result: PASS"), "{text}");
    assert!(text.contains("py-probe"), "the id is put in: {text}");
}

/// `new-plugin --help` lists its own options only: it uses none of the configuration ones,
/// and refuses one given after it.
#[test]
fn new_plugin_help_lists_only_its_own_options() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_integration-host"))
        .args(["new-plugin", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{text}");
    for used in ["--lang", "--dir", "<NAME>", "js"] {
        assert!(
            text.contains(used),
            "new-plugin --help lacks {used}: {text}"
        );
    }
    for unused in [
        "--config",
        "--data-dir",
        "--log-format",
        "--plugin-cpu-ms",
        "--max-plugin-bytes",
        "--listen",
    ] {
        assert!(
            !text.contains(unused),
            "new-plugin --help lists {unused}: {text}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_integration-host"))
        .args(["new-plugin", "probe", "--plugin-cpu-ms", "5", "--dir"])
        .arg(&project)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("--plugin-cpu-ms") && text.contains("takes no configuration options"),
        "{text}"
    );
    assert!(!project.exists(), "nothing is written");
    // Configuration options before it, and in the environment, still apply to everything.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_integration-host"))
        .args(["--log-format", "json", "new-plugin", "probe", "--dir"])
        .arg(&project)
        .env("INTEGRATION_PLUGIN_CPU_MS", "5")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `new-plugin --lang js` makes a project that `npm run build` builds with the componentize-js
/// it pins (here the one `scripts/build-plugins.sh` installed into `target/js-tools`, laid
/// out as `npm install` would) and that passes `check` with its recorded answers.
#[test]
fn new_plugin_makes_a_js_project_that_builds_and_passes_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tools = root.join("target/js-tools/node_modules");
    let cli = tools.join("@bytecodealliance/componentize-js/src/cli.js");
    if !cli.is_file() {
        eprintln!(
            "componentize-js is not installed (scripts/build-plugins.sh installs it): skipped"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("js");
    let host = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_integration-host"))
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), text)
    };
    let args = ["new-plugin", "js-probe", "--lang", "js", "--dir"];
    let (ok, text) = host(&[&args[..], &[project.to_str().unwrap()]].concat());
    assert!(ok, "{text}");
    let modules = project.join("node_modules");
    std::fs::create_dir_all(modules.join(".bin")).unwrap();
    std::os::unix::fs::symlink(
        tools.join("@bytecodealliance"),
        modules.join("@bytecodealliance"),
    )
    .unwrap();
    std::os::unix::fs::symlink(cli, modules.join(".bin/componentize-js")).unwrap();
    let build = std::process::Command::new("npm")
        .current_dir(&project)
        .args(["run", "build"])
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    let wasm = project.join("js-probe.wasm");
    let fixtures = project.join("fixtures.json");
    let (ok, text) = host(&[
        "check",
        wasm.to_str().unwrap(),
        "--fixtures",
        fixtures.to_str().unwrap(),
    ]);
    assert!(ok && text.contains("result: PASS"), "{text}");
    assert!(text.contains("js-probe"), "the id is put in: {text}");
    assert!(text.contains("fetch-issue (fixtures)"), "{text}");
}
