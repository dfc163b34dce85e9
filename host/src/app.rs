//! The application state and the router: the seam tests drive with real requests.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::api;
use crate::crypto::MasterKey;
use crate::links::{IssueUrls, KeyPatterns, LinkWriter};
use crate::metrics::Metrics;
use crate::plugin::PluginHost;
use crate::store::Store;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Loaded plugins and the sandbox.
    pub plugins: Arc<PluginHost>,
    /// Seals and opens credentials.
    pub key: MasterKey,
    /// Where plugin files live (uploads are written here).
    pub plugins_dir: PathBuf,
    /// Compiled key patterns of sources.
    pub patterns: Arc<KeyPatterns>,
    /// Issue URLs of links, derived from their source's current configuration.
    pub issue_urls: Arc<IssueUrls>,
    /// Group-commit writer of new links.
    pub link_writer: Arc<LinkWriter>,
    /// Counters for `/metrics` and the per-source health (in memory).
    pub metrics: Arc<Metrics>,
    /// Draft connection tests that passed, for the source saved right after (in memory).
    pub draft_tests: Arc<crate::api::sources::DraftTests>,
    /// Plugin admissions (uploads being compiled and checked, and the latest finished ones).
    pub admissions: Arc<crate::api::admission::Admissions>,
}

impl AppState {
    /// The state of a service on `store` with these plugins and this master key. Starts the
    /// link writer task, so it must be called within a tokio runtime.
    pub fn new(
        store: Store,
        plugins: Arc<PluginHost>,
        key: MasterKey,
        plugins_dir: PathBuf,
    ) -> AppState {
        AppState {
            link_writer: Arc::new(LinkWriter::start(store.clone())),
            store,
            plugins,
            key,
            plugins_dir,
            patterns: Arc::default(),
            issue_urls: Arc::default(),
            metrics: Arc::default(),
            draft_tests: Arc::default(),
            admissions: Arc::default(),
        }
    }
}

/// The whole HTTP surface: `/api/v1/...`, the admin page and health checks.
pub fn router(state: AppState) -> Router {
    let api = api::routes::api_router();
    Router::new()
        .nest("/api/v1", api)
        .route("/api/docs", get(api::routes::docs))
        .route("/", get(crate::page::index))
        .route("/assets/app.css", get(crate::page::css))
        .route("/assets/app.js", get(crate::page::js))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(api::health::ready))
        .route("/metrics", get(crate::metrics::serve))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track_http,
        ))
        .with_state(state)
}
