//! The HTTP surface, the only code that knows axum: the router ([`router`]), the handlers
//! under `/api/v1` (one module per resource), the admin page's assets and `/metrics`. A
//! handler extracts its inputs, makes one call into a domain module (`sources`, `links`,
//! `sync`, `sources_as_code`, ...) or, where there is no rule to apply, `store` or `plugin`,
//! and returns a wire type. Errors are [`error::ApiError`], which maps every domain error.

pub mod audit;
pub mod comments;
pub mod error;
pub mod extract;
pub mod health;
pub mod links;
pub mod metrics;
pub mod page;
pub mod paging;
pub mod plugin_settings;
pub mod plugins;
pub mod preconditions;
pub mod projects;
pub mod providers;
pub mod routes;
pub mod schemas;
pub mod server;
pub mod sources;
pub mod tokens;
pub mod transfer;
pub mod webhooks;
pub mod wording;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;
use error::ApiError;

/// The whole HTTP surface: `/api/v1/...`, the admin page and health checks.
pub fn router(state: AppState) -> Router {
    let api = routes::api_router();
    Router::new()
        .nest("/api/v1", api)
        .route("/api/docs", get(routes::docs))
        .route("/", get(page::index))
        .route("/assets/app.css", get(page::css))
        .route("/assets/app.js", get(page::js))
        .route("/hooks/{source}/{token}", post(webhooks::receive))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(metrics::serve))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track_http,
        ))
        .with_state(state)
}

/// The API's answer to an unknown route.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such API route")
}

/// The API's answer to a known route called with a method it does not serve.
pub async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        format!("this route does not serve {method}"),
    )
}
