//! The application state and the router: the seam tests drive with real requests.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::api;
use crate::crypto::MasterKey;
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
}

/// The whole HTTP surface: `/api/v1/...`, the admin page and health checks.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route(
            "/sources",
            get(api::sources::list).post(api::sources::create),
        )
        .route("/sources/test", post(api::sources::test_draft))
        .route(
            "/sources/{id}",
            get(api::sources::get)
                .put(api::sources::update)
                .delete(api::sources::delete),
        )
        .route("/sources/{id}/enable", post(api::sources::enable))
        .route("/sources/{id}/disable", post(api::sources::disable))
        .route("/sources/{id}/test", post(api::sources::test))
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
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}
