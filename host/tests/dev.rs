//! `integration-host dev DIR`, the real binary: each new build of a plugin project's output is
//! checked and swapped into the local host it serves; a broken build is refused and the
//! served version stays; the project's recorded answers are the checks' fixtures. Needs `target/test-plugins/hotswap.wasm` (`scripts/build-plugins.sh`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::*;

/// The hotswap test plugin's version marker (see tests/plugins/hotswap).
const MARKER: &str = "1.0.0-hotswap.00000000";
const V2: &str = "2.0.0-hotswap.00000002";

/// The hotswap test plugin, with `version` in place of its marker (same length: still valid).
fn hotswap(version: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugins/hotswap.wasm");
    let mut bytes = std::fs::read(path).expect("target/test-plugins/hotswap.wasm");
    let at = bytes
        .windows(MARKER.len())
        .position(|w| w == MARKER.as_bytes())
        .expect("the version marker");
    bytes[at..at + MARKER.len()].copy_from_slice(version.as_bytes());
    bytes
}

/// `dev` on `dir` (extra arguments after it), on a free port, started and printing its URL.
fn start_dev(dir: &Path, extra: &[&str]) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_integration-host"));
    cmd.arg("dev")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env_remove("INTEGRATION_MASTER_KEY")
        .env_remove("INTEGRATION_CONFIG")
        .env_remove("RUST_LOG");
    spawn(cmd)
}

/// Waits until `output` holds `text` `times` times; panics with the output after 60 s.
fn wait_for(output: &Arc<Mutex<String>>, text: &str, times: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = output.lock().unwrap().clone();
        if now.matches(text).count() >= times {
            return now;
        }
        assert!(Instant::now() < deadline, "no {text:?} in:\n{now}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The version the dev host serves for `hotswap`, through its API.
async fn served_version(host: &Running) -> String {
    let token = host.token.as_deref().expect("dev prints an admin token");
    let (status, plugin) = call(
        &client(),
        &host.url,
        token,
        "GET",
        "/api/v1/plugins/hotswap",
        None,
    )
    .await;
    assert_eq!(status, 200, "{plugin}");
    plugin["version"].as_str().unwrap().to_string()
}

/// Writes `bytes` to a temporary name beside `path`, then renames it over `path`.
fn write_then_rename(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_checks_and_serves_each_new_build_and_refuses_a_broken_one() {
    let project = tempfile::tempdir().unwrap();
    // A JavaScript project: its build script names the output.
    let manifest =
        r#"{"name": "probe", "scripts": {"build": "componentize-js app.js -o dist/probe.wasm"}}"#;
    std::fs::write(project.path().join("package.json"), manifest).unwrap();
    std::fs::create_dir(project.path().join("dist")).unwrap();
    // The project's recorded answers, which the checks use unless told otherwise.
    let fixtures = r#"{"responses": [{"path": "/whoami", "body": "probe"}]}"#;
    std::fs::write(project.path().join("fixtures.json"), fixtures).unwrap();
    let wasm: PathBuf = project.path().join("dist/probe.wasm");
    let host = start_dev(project.path(), &[]);
    wait_for(&host.output, "Waiting for", 1);

    // A first build, written in place: checked once it holds still, then served.
    std::fs::write(&wasm, hotswap(MARKER)).unwrap();
    let output = wait_for(&host.output, "serving hotswap", 1);
    assert!(output.contains("result: PASS"), "{output}");
    assert!(
        output
            .lines()
            .any(|l| l.starts_with("PASS  test-connection (fixtures)")
                && l.contains(&format!("hotswap {MARKER}"))),
        "{output}"
    );
    assert!(
        output.contains(&format!("serving hotswap {MARKER}")),
        "{output}"
    );
    assert_eq!(served_version(&host).await, MARKER);

    // A broken build: FAIL, refused, the served version stays.
    std::fs::write(&wasm, b"not a WebAssembly component").unwrap();
    let output = wait_for(&host.output, "refused: ", 1);
    assert!(output.contains("FAIL  load"), "{output}");
    assert!(output.contains("result: FAIL"), "{output}");
    assert!(
        output.contains("the previous version keeps serving"),
        "{output}"
    );
    assert_eq!(served_version(&host).await, MARKER);

    // A fixed build, written to a temporary name and renamed: served at once.
    write_then_rename(&wasm, &hotswap(V2));
    let output = wait_for(&host.output, "serving hotswap", 2);
    assert!(
        output.contains(&format!("serving hotswap {V2}")),
        "{output}"
    );
    assert_eq!(output.matches("result: PASS").count(), 2, "{output}");
    assert_eq!(served_version(&host).await, V2);
    assert!(!output.contains("panicked"), "{output}");

    stop(host);
}

/// Ctrl-C: a clean exit, and the temporary data directory is gone.
fn stop(mut host: Running) {
    let output = host.output.lock().unwrap().clone();
    let data = output
        .lines()
        .find_map(|l| l.strip_prefix("Data (deleted at exit): "))
        .map(PathBuf::from)
        .expect("dev names its data directory");
    assert!(data.is_dir(), "{}", data.display());
    signal(host.child.id(), "-INT");
    let status = host.child.wait().unwrap();
    let output = host.output.lock().unwrap().clone();
    assert!(status.success(), "{status:?}: {output}");
    assert!(output.contains("Stopped"), "{output}");
    assert!(!data.exists(), "{} is left behind", data.display());
}

/// With `--build`, `dev` runs the project's build at the start and again on a source change,
/// and serves what it built.
#[tokio::test(flavor = "multi_thread")]
async fn dev_build_rebuilds_on_a_source_change() {
    if Command::new("npm").arg("--version").output().is_err() {
        eprintln!("npm is not installed: skipped");
        return;
    }
    let project = tempfile::tempdir().unwrap();
    // The "build" copies a source file into the plugin file; --wasm names it.
    let manifest = r#"{"name": "probe", "scripts": {"build": "cp plugin.bin out.wasm"}}"#;
    std::fs::write(project.path().join("package.json"), manifest).unwrap();
    std::fs::write(project.path().join("plugin.bin"), hotswap(MARKER)).unwrap();
    let wasm = project.path().join("out.wasm");
    let host = start_dev(
        project.path(),
        &["--build", "--wasm", wasm.to_str().unwrap()],
    );
    let output = wait_for(&host.output, "serving hotswap", 1);
    assert!(output.contains("building: npm run build"), "{output}");
    assert_eq!(served_version(&host).await, MARKER);

    std::fs::write(project.path().join("plugin.bin"), hotswap(V2)).unwrap();
    let output = wait_for(&host.output, "serving hotswap", 2);
    assert_eq!(
        output.matches("building: npm run build").count(),
        2,
        "{output}"
    );
    assert_eq!(served_version(&host).await, V2);
    stop(host);
}
