//! The application state and the router: the seam tests drive with real requests.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::api;
use crate::crypto::MasterKey;
use crate::links::{KeyPatterns, LinkWriter};
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
    /// Group-commit writer of new links.
    pub link_writer: Arc<LinkWriter>,
    /// Counters for `/metrics` and the per-source health (in memory).
    pub metrics: Arc<Metrics>,
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
            metrics: Arc::default(),
        }
    }
}

/// The whole HTTP surface: `/api/v1/...`, the admin page and health checks.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route(
            "/sources",
            get(api::sources::list).post(api::sources::create),
        )
        .route("/sources/test", post(api::sources::test_draft))
        .route("/sources/export", get(api::transfer::export))
        .route(
            "/sources/import",
            post(api::transfer::import).layer(DefaultBodyLimit::max(
                crate::sources_as_code::MAX_IMPORT_BYTES,
            )),
        )
        .route(
            "/sources/{id}",
            get(api::sources::get)
                .put(api::sources::update)
                .delete(api::sources::delete),
        )
        .route("/sources/{id}/enable", post(api::sources::enable))
        .route("/sources/{id}/disable", post(api::sources::disable))
        .route("/sources/{id}/test", post(api::sources::test))
        .route("/sources/{id}/health", get(api::health::source))
        .route("/audit", get(api::audit::list))
        .route("/sources/{id}/links", get(api::links::list_by_source))
        .route("/sources/{id}/impact", get(api::links::impact))
        .route("/sources/{id}/refresh", post(api::links::refresh_source))
        .route(
            "/projects/{project}/links",
            get(api::links::list).post(api::links::create),
        )
        .route(
            "/projects/{project}/links/bulk",
            post(api::links::create_bulk),
        )
        .route(
            "/projects/{project}/links/{id}",
            axum::routing::delete(api::links::delete),
        )
        .route(
            "/projects/{project}/links/{id}/refresh",
            post(api::links::refresh),
        )
        .route(
            "/projects/{project}/sources/{source}/create-url",
            get(api::links::create_url),
        )
        .route("/plugins", get(api::plugins::list))
        .route(
            "/plugins/{id}",
            get(api::plugins::get)
                .put(api::plugins::upload)
                .delete(api::plugins::remove),
        )
        .route("/providers", get(api::providers::list))
        .route("/providers/{id}", get(api::providers::get))
        .route(
            "/projects",
            get(api::projects::list).post(api::projects::create),
        )
        .route(
            "/projects/{id}",
            get(api::projects::get)
                .put(api::projects::rename)
                .delete(api::projects::delete),
        )
        .route("/tokens", get(api::tokens::list).post(api::tokens::create))
        .route("/tokens/{id}", axum::routing::delete(api::tokens::revoke))
        .route("/me", get(api::tokens::me))
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(api::extract::MAX_JSON_BYTES));
    Router::new()
        .nest("/api/v1", api)
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
