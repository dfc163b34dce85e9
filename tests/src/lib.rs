//! Shared harness for the end-to-end tests: where the compiled plugins are, a plugin host
//! loaded with them, and stand-in trackers (real HTTP servers on 127.0.0.1) that record
//! every request they receive.

pub mod comments;
pub mod postgres;
pub mod webdriver;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;

/// The workspace's `target/` directory.
pub fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// Where `scripts/build-plugins.sh` puts the shipped plugins.
pub fn plugins_dir() -> PathBuf {
    target_dir().join("plugins")
}

/// Where `scripts/build-plugins.sh` puts the misbehaving test plugins.
pub fn test_plugins_dir() -> PathBuf {
    target_dir().join("test-plugins")
}

/// A compiled-artifact cache shared by all tests, so each plugin is compiled once per run.
pub fn compile_cache_dir() -> PathBuf {
    target_dir().join("test-compile-cache")
}

/// One request a stand-in received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query, e.g. `/rest/api/3/myself?x=1`.
    pub uri: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (panics if it is not: a test helper).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

/// A stand-in tracker: an axum router served on 127.0.0.1, recording every request.
pub struct StandIn {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl StandIn {
    /// Serves `router` on a free port until the test's runtime ends.
    pub async fn start(router: axum::Router) -> StandIn {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let router = router.layer(middleware::from_fn(move |req: Request, next: Next| {
            let log = log.clone();
            async move { record(log, req, next).await }
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        StandIn { url, requests }
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Forgets the requests received so far.
    pub fn clear(&self) {
        self.requests.lock().unwrap().clear();
    }
}

async fn record(log: Arc<Mutex<Vec<Recorded>>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 16 << 20).await.unwrap_or_default();
    log.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: body.to_vec(),
    });
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// A `std::io::Write` into a shared buffer, for capturing what a test process logs.
pub struct LogSink(pub Arc<Mutex<Vec<u8>>>);

impl LogSink {
    /// Everything this test process logs from the first call on (every level, through both
    /// formatters the service offers: text and JSON). The first call installs the process's
    /// one global subscriber; every call returns the same sink.
    pub fn capture() -> &'static LogSink {
        static SINK: std::sync::OnceLock<LogSink> = std::sync::OnceLock::new();
        SINK.get_or_init(|| {
            use tracing_subscriber::layer::SubscriberExt as _;
            let sink = LogSink(Arc::default());
            let (text, json) = (sink.0.clone(), sink.0.clone());
            let subscriber = tracing_subscriber::registry()
                .with(tracing_subscriber::filter::LevelFilter::TRACE)
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .with_writer(move || LogSink(text.clone())),
                )
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .with_writer(move || LogSink(json.clone())),
                );
            tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
            sink
        })
    }
}

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A plugin host with every shipped plugin loaded (panics, naming the file, if one fails).
pub async fn plugin_host() -> std::sync::Arc<host::plugin::PluginHost> {
    plugin_host_with(host::plugin::Limits::default(), &[plugins_dir()]).await
}

/// A plugin host with the given limits and every plugin of the given directories loaded,
/// allowed to reach loopback targets (the stand-ins listen on 127.0.0.1).
pub async fn plugin_host_with(
    limits: host::plugin::Limits,
    dirs: &[PathBuf],
) -> std::sync::Arc<host::plugin::PluginHost> {
    loaded_plugin_host(limits, dirs, true).await
}

/// [`plugin_host_with`], reaching loopback and link-local targets only if
/// `allow_loopback_targets` (the operator's `--allow-loopback-targets`).
async fn loaded_plugin_host(
    limits: host::plugin::Limits,
    dirs: &[PathBuf],
    allow_loopback_targets: bool,
) -> std::sync::Arc<host::plugin::PluginHost> {
    let host = host::plugin::PluginHost::new(limits, Some(compile_cache_dir()))
        .and_then(|host| host.allow_loopback_targets(allow_loopback_targets))
        .expect("plugin host");
    for dir in dirs {
        let loaded = host.load_dir(dir).await;
        assert!(
            !loaded.is_empty(),
            "no plugins in {} (run scripts/build-plugins.sh)",
            dir.display()
        );
        for (path, result) in loaded {
            if let Err(e) = result {
                panic!("{} did not load: {e}", path.display());
            }
        }
    }
    std::sync::Arc::new(host)
}

/// A source of `provider` at `base_url` with no credentials and no settings; fill in the rest
/// with struct update syntax.
pub fn source(provider: &str, base_url: &str) -> host::plugin::SourceConfig {
    host::plugin::SourceConfig {
        provider: provider.into(),
        base_url: base_url.trim_end_matches('/').into(),
        auth_type: "none".into(),
        ..Default::default()
    }
}

/// Builds a string map from pairs, for `fields`, `secrets` and `settings`.
pub fn map(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The real router on a real port, with a fresh data directory (redb file, key file), every
/// shipped plugin and the test plugins loaded, and a known admin token.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// An admin bearer token.
    pub admin: String,
    /// The application state (store, plugins, key), for assertions on what is stored.
    pub state: host::app::AppState,
    /// The data directory; kept until the app is dropped.
    pub dir: std::sync::Arc<tempfile::TempDir>,
    /// The PostgreSQL database, when the tests run on it (see [`on_postgres`]).
    pub database: Option<host::store::DatabaseUrl>,
    client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// The admin token every [`TestApp`] accepts.
pub const ADMIN_TOKEN: &str = "its_test-admin-token-0123456789abcdef";

/// The environment variable choosing the storage engine of the tests: `postgres`, or unset
/// (or `redb`) for the redb file.
pub const ENGINE_ENV: &str = "INTEGRATION_TEST_ENGINE";

/// True when the tests run on PostgreSQL (`INTEGRATION_TEST_ENGINE=postgres`; see
/// [`postgres`]): every [`TestApp`] then gets a fresh database on the test server.
pub fn on_postgres() -> bool {
    match std::env::var(ENGINE_ENV).as_deref() {
        Ok("postgres") => true,
        Ok("redb") | Ok("") | Err(_) => false,
        Ok(other) => panic!("{ENGINE_ENV}={other:?}: use postgres or redb"),
    }
}

/// A new database for a test app on the engine the tests run on: `None` for redb (the file in
/// the data directory), else a fresh PostgreSQL database.
pub fn new_database() -> Option<host::store::DatabaseUrl> {
    on_postgres().then(|| postgres::database().parse().unwrap())
}

/// Opens the store of a test app: the redb file in `dir`, or the PostgreSQL `database`.
pub async fn open_store(
    dir: &std::path::Path,
    database: Option<&host::store::DatabaseUrl>,
) -> host::store::Store {
    if let Some(url) = database {
        return host::store::Store::connect(url, 8)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    }
    // After a restart, background tasks of the previous app (the link writer) may need a
    // moment to notice they are done and close the database.
    let path = dir.join("integration.redb");
    let mut attempts = 0;
    loop {
        match host::store::Store::open(&path) {
            Ok(store) => return store,
            Err(_) if attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot reopen the database: {e}"),
        }
    }
}

impl TestApp {
    /// Starts an app on a new data directory (and a new database, on PostgreSQL).
    pub async fn start() -> TestApp {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        TestApp::start_with(dir, new_database(), true).await
    }

    /// Starts an app on an existing data directory and database (a restart).
    pub async fn start_in(
        dir: std::sync::Arc<tempfile::TempDir>,
        database: Option<host::store::DatabaseUrl>,
    ) -> TestApp {
        TestApp::start_with(dir, database, true).await
    }

    /// Starts an app on a new data directory as the operator runs it by default: sources may
    /// not reach loopback and link-local addresses (every other app may, to reach the
    /// stand-ins).
    pub async fn start_refusing_loopback_targets() -> TestApp {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        TestApp::start_with(dir, new_database(), false).await
    }

    async fn start_with(
        dir: std::sync::Arc<tempfile::TempDir>,
        database: Option<host::store::DatabaseUrl>,
        allow_loopback_targets: bool,
    ) -> TestApp {
        let store = open_store(dir.path(), database.as_ref()).await;
        let key = host::crypto::MasterKey::load_or_create(&dir.path().join("master.key")).unwrap();
        let plugins = loaded_plugin_host(
            host::plugin::Limits::default(),
            &[plugins_dir(), test_plugins_dir()],
            allow_loopback_targets,
        )
        .await;
        host::api::tokens::bootstrap_admin(&store, Some(ADMIN_TOKEN.into()))
            .await
            .unwrap();
        let state = host::app::AppState::new(store, plugins, key, plugins_dir());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = host::app::router(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        TestApp {
            url,
            admin: ADMIN_TOKEN.into(),
            state,
            dir,
            database,
            client,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// Stops the server, closes the database and starts again on the same directory.
    pub async fn restart(mut self) -> TestApp {
        let (dir, database) = (self.dir.clone(), self.database.clone());
        self.stop().await;
        drop(self);
        TestApp::start_in(dir, database).await
    }

    async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
    }

    /// Sends a request; returns the status, the headers and the body (JSON, or a JSON string
    /// holding the text when the body is not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Response2 {
        let body = body.map(|b| ("application/json", serde_json::to_vec(&b).unwrap()));
        self.call_raw(method, path, token, body).await
    }

    /// Like [`TestApp::call`] with a body of any type: `(content type, bytes)`.
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Response2 {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some((content_type, bytes)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = format!("{:?}", resp.headers());
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text.clone()));
        Response2 {
            status,
            headers,
            body,
            text,
        }
    }

    /// Creates something as the admin (`path` such as `/api/v1/sources`) and returns its id;
    /// panics, showing the answer, unless it was created.
    pub async fn create(&self, path: &str, body: serde_json::Value) -> String {
        let created = self.admin("POST", path, Some(body)).await;
        created.expect(201)["id"].as_str().unwrap().to_string()
    }

    /// A new project and a member token for it: `(project id, token)`.
    pub async fn project_with_member(&self, name: &str) -> (String, String) {
        let project = self
            .create("/api/v1/projects", serde_json::json!({"name": name}))
            .await;
        let body = serde_json::json!({"name": format!("{name} member"), "role": "member", "projects": [project]});
        let member = self.admin("POST", "/api/v1/tokens", Some(body)).await;
        let member = member.expect(201)["token"].as_str().unwrap().to_string();
        (project, member)
    }

    /// Creates `template` (a source's body) through the API, then writes copies of it
    /// straight to the store in one transaction: for each `i` in `1..=n`, `change(i, record)`
    /// edits the copy (name, base URL, ...) and says whether to keep it. The template itself
    /// is deleted again. For lists of a thousand sources: creating each through the API checks
    /// its name against all the others, which takes minutes in a debug build.
    pub async fn store_copies(
        &self,
        template: serde_json::Value,
        n: usize,
        change: impl Fn(usize, &mut serde_json::Value) -> bool,
    ) {
        let id = self.create("/api/v1/sources", template).await;
        let path = format!("/api/v1/sources/{id}");
        let mut stored = self.admin("GET", &path, None).await.expect(200).clone();
        self.admin("DELETE", &path, None).await.expect(204);
        let object = stored.as_object_mut().unwrap();
        for view_only in [
            "id",
            "provider_name",
            "plugin_status",
            "unsupported_capabilities",
            "health",
        ] {
            object.remove(view_only);
        }
        let mut copies = Vec::new();
        for i in 1..=n {
            let mut record = stored.clone();
            if change(i, &mut record) {
                copies.push((host::ids::new_id("src"), record));
            }
        }
        self.state
            .store
            .write(move |w| {
                for (id, record) in &copies {
                    w.put(host::store::SOURCES, id, record)?;
                }
                Ok::<_, host::store::StoreError>(())
            })
            .await
            .unwrap();
    }

    /// Everything the app's database holds, as stored: the redb file, or on PostgreSQL every
    /// record and audit event (bytes as they are, in PostgreSQL's `escape` text form, where
    /// printable bytes stay themselves): for checking that no secret is stored in clear.
    pub fn stored_bytes(&self) -> Vec<u8> {
        let Some(url) = &self.database else {
            return std::fs::read(self.dir.path().join("integration.redb")).unwrap();
        };
        let name = url.expose().rsplit('/').next().unwrap().to_string();
        let tables: Vec<String> = host::store::ALL_TABLES
            .iter()
            .map(|t| t.name().to_string())
            .chain(["audit".to_string()])
            .map(|t| format!("SELECT encode(body, 'escape') FROM {t}"))
            .collect();
        postgres::server()
            .sql_in(&name, &tables.join(" UNION ALL "))
            .into_bytes()
    }

    /// `call` as the admin.
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Response2 {
        self.call(method, path, Some(&self.admin.clone()), body)
            .await
    }
}

/// What [`TestApp::call`] got back.
#[derive(Debug)]
pub struct Response2 {
    /// Status code.
    pub status: u16,
    /// Headers, debug-formatted (for leak checks).
    pub headers: String,
    /// Body as JSON.
    pub body: serde_json::Value,
    /// Body as text.
    pub text: String,
}

impl Response2 {
    /// Asserts the status, printing the body if it differs; returns the body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &serde_json::Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        &self.body
    }

    /// Asserts a 4xx error naming `field`; returns the error's message.
    #[track_caller]
    pub fn expect_error(&self, status: u16, field: &str) -> String {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(self.body["error"]["field"], field, "body: {}", self.text);
        self.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// The provider error a plugin call answered with; panics (naming what came instead) on a
/// value or a plugin fault.
#[track_caller]
pub fn provider_error<T: std::fmt::Debug>(
    result: Result<T, host::plugin::PluginError>,
) -> host::plugin::ProviderError {
    match result {
        Err(host::plugin::PluginError::Provider(e)) => e,
        other => panic!("expected a provider error, got {other:?}"),
    }
}

/// An expected issue, for comparing with what a plugin fetched.
pub fn issue(
    key: &str,
    title: &str,
    status: &str,
    category: host::plugin::model::StatusCategory,
    assignee: Option<&str>,
    web_url: &str,
) -> host::plugin::Issue {
    host::plugin::Issue {
        key: key.into(),
        title: title.into(),
        status: status.into(),
        status_category: category,
        assignee: assignee.map(String::from),
        web_url: web_url.into(),
    }
}
