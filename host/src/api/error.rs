//! The one error shape of the API: `{"error": {"code", "message", "field"?}}`.
//!
//! 4xx errors say what is wrong and, where one field is at fault, name it (a JSON path such as
//! `auth.fields.email`). A 5xx says only "internal error"; the detail goes to the log.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::plugin::PluginError;
use crate::store::StoreError;

/// An API failure.
#[derive(Clone, Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable kebab-case code.
    pub code: &'static str,
    /// What to tell the caller.
    pub message: String,
    /// The request field at fault, if one is.
    pub field: Option<String>,
}

impl ApiError {
    /// A 400 naming the field at fault.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid",
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// A 404.
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not-found",
            message: what.into(),
            field: None,
        }
    }

    /// A 409 (e.g. a duplicate), optionally naming a field.
    pub fn conflict(field: Option<&str>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
            field: field.map(str::to_string),
        }
    }

    /// Any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// Names the field at fault.
    pub fn at(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    /// A 500; `detail` is logged, never sent.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "message": self.message});
        if let Some(field) = self.field {
            body["field"] = field.into();
        }
        (self.status, Json(json!({ "error": body }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<PluginError> for ApiError {
    /// A plugin that is missing or misbehaved is the server's problem (409/502), not the
    /// caller's; a provider's own error keeps its category as the code.
    fn from(e: PluginError) -> Self {
        match &e {
            PluginError::NotLoaded(_) => {
                ApiError::new(StatusCode::CONFLICT, e.code(), e.to_string())
            }
            PluginError::Provider(p) => {
                ApiError::new(StatusCode::BAD_GATEWAY, p.code(), p.to_string())
            }
            PluginError::Rejected(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, e.code(), e.to_string())
            }
            PluginError::Busy(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string())
            }
            _ => {
                tracing::warn!(error = %e, "plugin fault");
                ApiError::new(StatusCode::BAD_GATEWAY, e.code(), e.to_string())
            }
        }
    }
}
