//! A real PostgreSQL server for the tests, started by the tests themselves: the Debian package's
//! `initdb` and `pg_ctl` (`/usr/lib/postgresql/<version>/bin`, or `INTEGRATION_PG_BIN`) in a
//! temporary directory, on a free port of 127.0.0.1, with its unix socket in that directory.
//! `initdb` refuses to run as root, so as root the server runs as the `postgres` user (which
//! the package creates) through `runuser`, with the directory owned by it.
//!
//! One server per test binary, started on first use; a watchdog process stops it and removes
//! its directory when the test binary exits (however it exits). Each test gets a fresh
//! database ([`database`]). The server is tuned for tests (`fsync=off`): the tests kill the
//! service, never the database server. A benchmark of durable writes starts its own server
//! with PostgreSQL's durable defaults instead ([`start_durable`]).
//!
//! Only the standard library and `tempfile`, so `host/tests` can include this file too.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The running test server.
pub struct Server {
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    bin: PathBuf,
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// The test binary's server, started on first use (panics saying what to install if the
/// PostgreSQL binaries are missing).
pub fn server() -> &'static Server {
    SERVER.get_or_init(start)
}

/// A new, empty database on the test server: its `postgres://` URL (user `postgres`, trust
/// authentication, so any password in the URL is accepted and ignored).
pub fn database() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let server = server();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    server.sql(&format!("CREATE DATABASE {name}"));
    server.url(&name)
}

impl Server {
    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs SQL in the `postgres` database; panics with psql's output if it fails.
    pub fn sql(&self, sql: &str) -> String {
        self.sql_in("postgres", sql)
    }

    /// Runs SQL in database `name` (unaligned, tuples only); panics with psql's output if it
    /// fails; returns what it printed.
    pub fn sql_in(&self, name: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url(name))
            .args(["-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The directory of the PostgreSQL server binaries.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("INTEGRATION_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.flatten().map(|d| d.path().join("bin")).collect())
        .unwrap_or_default();
    versions.retain(|dir| dir.join("initdb").is_file());
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!(
            "the PostgreSQL tests need the server binaries (initdb, pg_ctl): install Debian's \
             postgresql package (sudo apt-get install -y postgresql), or set INTEGRATION_PG_BIN"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `program` from the server binaries, run as the `postgres` user when we are root.
fn server_command(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(bin.join(program));
        cmd
    } else {
        Command::new(bin.join(program))
    }
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd.stdin(Stdio::null()).output().expect(what);
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn start() -> Server {
    start_tuned("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
}

/// Starts another server, stopped when this process exits, with PostgreSQL's durable settings
/// (`fsync`, `synchronous_commit` and `full_page_writes` on): a commit it acknowledges is on
/// disk. For measuring durable writes; the tests use the faster [`server`].
pub fn start_durable() -> Server {
    start_tuned("")
}

/// Starts a server with `tuning` (`-c name=value` options) besides the port and limits.
fn start_tuned(tuning: &str) -> Server {
    let bin = bin_dir();
    let dir = tempfile::Builder::new()
        .prefix("integration-pg-")
        .tempdir()
        .unwrap()
        .keep();
    let data = dir.join("data");
    if is_root() {
        run(
            {
                let mut cmd = Command::new("chown");
                cmd.args(["postgres:", dir.to_str().unwrap()]);
                cmd
            },
            "chown of the server directory",
        );
    }
    let mut initdb = server_command(&bin, "initdb");
    initdb
        .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
        .args(["--locale=C", "-D"])
        .arg(&data);
    run(initdb, "initdb");
    watch(&bin, &dir);
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        let options = format!(
            "-c port={port} -c listen_addresses=127.0.0.1 -k {} {tuning} -c max_connections=400",
            dir.display()
        );
        let mut pg_ctl = server_command(&bin, "pg_ctl");
        pg_ctl
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-o", &options, "start"]);
        let out = pg_ctl.stdin(Stdio::null()).output().expect("pg_ctl runs");
        if out.status.success() {
            return Server { port, bin };
        }
        last = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    }
    panic!("the PostgreSQL test server did not start: {last}");
}

/// Starts a process that stops the server and removes `dir` once this test binary has exited.
fn watch(bin: &Path, dir: &Path) {
    let pg_ctl = bin.join("pg_ctl");
    let stop = format!(
        "{} {} -D {}/data -m immediate stop",
        if is_root() {
            "runuser -u postgres --"
        } else {
            ""
        },
        pg_ctl.display(),
        dir.display()
    );
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    // Started in the background by a shell that exits at once, so it outlives us unwaited.
    let started = Command::new("sh")
        .args(["-c", &format!("( {script} ) >/dev/null 2>&1 &")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the server's watchdog starts");
    assert!(started.success(), "the server's watchdog did not start");
}
