//! HTTP handlers under `/api/v1`, one module per resource. A handler extracts its inputs,
//! makes one call into `store` or `plugin` (through a small domain function when there are
//! rules to apply), and returns a wire type. Errors are [`error::ApiError`].

pub mod admission;
pub mod audit;
pub mod error;
pub mod extract;
pub mod health;
pub mod links;
pub mod names;
pub mod plugin_settings;
pub mod plugins;
pub mod projects;
pub mod providers;
pub mod routes;
pub mod server;
pub mod sources;
pub mod tokens;
pub mod transfer;
pub mod wording;

use rand::RngCore;

use error::ApiError;

/// A new random id with a readable prefix, e.g. `src_5f2c0e9a7b1d4c3e`.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
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
