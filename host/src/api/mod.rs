//! HTTP handlers under `/api/v1`, one module per resource. A handler extracts its inputs,
//! makes one call into `store` or `plugin` (through a small domain function when there are
//! rules to apply), and returns a wire type. Errors are [`error::ApiError`].

pub mod audit;
pub mod error;
pub mod extract;
pub mod health;
pub mod links;
pub mod plugins;
pub mod projects;
pub mod providers;
pub mod routes;
pub mod server;
pub mod sources;
pub mod tokens;
pub mod transfer;
pub mod wording;

use error::ApiError;

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
