//! Shared harness for the end-to-end tests: where the compiled plugins are, a plugin host
//! loaded with them, and stand-in trackers (real HTTP servers on 127.0.0.1) that record
//! every request they receive.

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

/// A plugin host with every shipped plugin loaded (panics, naming the file, if one fails).
pub async fn plugin_host() -> std::sync::Arc<host::plugin::PluginHost> {
    plugin_host_with(host::plugin::Limits::default(), &[plugins_dir()]).await
}

/// A plugin host with the given limits and every plugin of the given directories loaded.
pub async fn plugin_host_with(
    limits: host::plugin::Limits,
    dirs: &[PathBuf],
) -> std::sync::Arc<host::plugin::PluginHost> {
    let host =
        host::plugin::PluginHost::new(limits, Some(compile_cache_dir())).expect("plugin host");
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
