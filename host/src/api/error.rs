//! The one error shape of the API: `{"error": {"code", "message", "field"?}, "errors": [...]}`.
//!
//! 4xx errors say what is wrong and, where one field is at fault, name it (a JSON path such as
//! `auth.fields.email`). When several fields are wrong, `errors` lists them all, `error` being
//! the first, so a form can show every problem after one save. A 5xx says only "internal
//! error"; the detail goes to the log.

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
    /// Further errors found in the same request, after this one (see [`ApiError::all`]).
    pub more: Vec<ApiError>,
}

impl ApiError {
    /// A 400 naming the field at fault.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid",
            message: message.into(),
            field: Some(field.into()),
            more: Vec::new(),
        }
    }

    /// A 404.
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not-found",
            message: what.into(),
            field: None,
            more: Vec::new(),
        }
    }

    /// A 409 (e.g. a duplicate), optionally naming a field.
    pub fn conflict(field: Option<&str>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
            field: field.map(str::to_string),
            more: Vec::new(),
        }
    }

    /// Any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            more: Vec::new(),
        }
    }

    /// Names the field at fault.
    pub fn at(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    /// Every error of a request: the first is the answer, the others ride along in
    /// `errors`. `None` when there is none.
    pub fn all(mut errors: Vec<ApiError>) -> Option<ApiError> {
        if errors.is_empty() {
            return None;
        }
        let mut first = errors.remove(0);
        first.more = errors;
        Some(first)
    }

    /// Applies `f` to this error and every further one.
    pub fn each(mut self, f: impl Fn(ApiError) -> ApiError) -> ApiError {
        let more = std::mem::take(&mut self.more);
        let mut first = f(self);
        first.more = more.into_iter().map(&f).collect();
        first
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

impl ApiError {
    /// The JSON body of this error: `{"error": {...}, "errors": [...]}`.
    pub fn body(&self) -> serde_json::Value {
        let one = |e: &ApiError| {
            let mut body = json!({"code": e.code, "message": e.message});
            if let Some(field) = &e.field {
                body["field"] = field.clone().into();
            }
            body
        };
        let first = one(self);
        let mut all = vec![first.clone()];
        all.extend(self.more.iter().map(one));
        json!({ "error": first, "errors": all })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
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
