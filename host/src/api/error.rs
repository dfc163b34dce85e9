//! The one error shape of the API: `{"error": {"code", "message", "field"?}, "errors": [...]}`.
//!
//! 4xx errors say what is wrong and, where one field is at fault, name it (a JSON path such as
//! `auth.fields.email`). When several fields are wrong, `errors` lists them all, `error` being
//! the first, so a form can show every problem after one save. A 5xx says only "internal
//! error"; the detail goes to the log.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

use crate::comments::CommentError;
use crate::compat::Incompatible;
use crate::field::FieldError;
use crate::links::LinksError;
use crate::plugin::PluginError;
use crate::plugin_registry::settings::SettingsError;
use crate::projects::ProjectError;
use crate::sources::{ListError, SourceError};
use crate::sources_as_code::{FileProblem, TransferError};
use crate::store::StoreError;
use crate::sync::SyncError;
use crate::tokens::TokenError;
use crate::webhooks::WebhookError;

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
    /// For a 429 or 503: seconds to wait, sent as `Retry-After`.
    pub retry_after: Option<u32>,
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
            retry_after: None,
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
            retry_after: None,
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
            retry_after: None,
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
            retry_after: None,
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

/// The JSON body of every 4xx and 5xx: the first problem, and all of them.
#[derive(Serialize, JsonSchema)]
#[schemars(example = ErrorBody::example())]
pub struct ErrorBody {
    /// The first problem (the one a client that shows one message shows).
    pub error: ErrorItem,
    /// Every problem found in the request, `error` first.
    pub errors: Vec<ErrorItem>,
}

/// One problem of a request.
#[derive(Clone, Serialize, JsonSchema)]
pub struct ErrorItem {
    /// Stable kebab-case code, e.g. `invalid`, `not-found`, `conflict`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// The request field at fault, as a path (`auth.fields.email`, `projects.ids[0]`), when
    /// one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ErrorBody {
    fn example() -> ErrorBody {
        let item = ErrorItem {
            code: "invalid".into(),
            message: "must be an absolute http(s) URL".into(),
            field: Some("base_url".into()),
        };
        ErrorBody {
            error: item.clone(),
            errors: vec![item],
        }
    }
}

impl ApiError {
    /// The JSON body of this error: `{"error": {...}, "errors": [...]}`.
    pub fn body(&self) -> serde_json::Value {
        let one = |e: &ApiError| ErrorItem {
            code: e.code.to_string(),
            message: e.message.clone(),
            field: e.field.clone(),
        };
        let first = one(self);
        let mut errors = vec![first.clone()];
        errors.extend(self.more.iter().map(one));
        let body = ErrorBody {
            error: first,
            errors,
        };
        serde_json::to_value(body).expect("an error body serializes")
    }
}

impl ApiError {
    /// This error, telling the caller to wait `seconds` (`Retry-After`).
    pub fn retry_after(self, seconds: u32) -> ApiError {
        ApiError {
            retry_after: Some(seconds.max(1)),
            ..self
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::invalid(e.field, e.message)
    }
}

impl From<SourceError> for ApiError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Invalid(problems) => invalid(problems),
            SourceError::NotFound(_) => ApiError::not_found(e.to_string()),
            SourceError::DuplicateName(_) => {
                ApiError::conflict(Some("display_name"), e.to_string())
            }
            SourceError::ChangedMeanwhile => ApiError::conflict(None, e.to_string()),
            SourceError::VersionMismatch { .. } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                e.to_string(),
            ),
            SourceError::Plugin(e) => e.into(),
            SourceError::Incompatible(e) => e.into(),
            SourceError::Store(e) => e.into(),
            SourceError::Unsealed { .. } | SourceError::Internal(_) => ApiError::internal(e),
        }
    }
}

impl From<ListError> for ApiError {
    /// A bad query parameter is a 400 naming it; a member asking about health a 403 naming
    /// the parameter.
    fn from(e: ListError) -> Self {
        match e {
            ListError::Invalid(e) => e.into(),
            ListError::HealthIsAdmins(field) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()).at(field)
            }
            ListError::Store(e) => e.into(),
        }
    }
}

impl From<LinksError> for ApiError {
    fn from(e: LinksError) -> Self {
        let message = e.to_string();
        match e {
            LinksError::Invalid(e) => e.into(),
            LinksError::SourceNotFound(_) => ApiError::not_found(message).at("source_id"),
            LinksError::SourceDisabled(_) => {
                ApiError::new(StatusCode::CONFLICT, "source-disabled", message).at("source_id")
            }
            LinksError::SourceNotAssigned(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "source-not-assigned", message).at("source_id")
            }
            LinksError::KeyNotChecked(e) => ApiError::from(e).at("key"),
            LinksError::Duplicate { .. } => ApiError::conflict(Some("key"), message),
            LinksError::LinkNotFound(_) | LinksError::NoUsableSource(_) => {
                ApiError::not_found(message)
            }
            LinksError::NoCreateShortcut => {
                ApiError::new(StatusCode::NOT_FOUND, "no-create-shortcut", message)
            }
            LinksError::Plugin(e) => e.into(),
            LinksError::Source(e) => e.into(),
            LinksError::Store(e) => e.into(),
            LinksError::Writer(_) => ApiError::internal(message),
            LinksError::Project(e) => e.into(),
            LinksError::SourceChanged(_) => {
                ApiError::new(StatusCode::CONFLICT, "source-changed", message).at("source_id")
            }
        }
    }
}

impl From<SyncError> for ApiError {
    /// A paused source is a 429 `source-paused`; one that does not sync a 409 whose code is
    /// the links' sync state (`not-syncing-disabled`, `not-syncing-deleted`, `no-details`);
    /// one whose sync runs on another replica past the wait a 409 `source-syncing`.
    fn from(e: SyncError) -> Self {
        let message = e.to_string();
        match e {
            SyncError::Paused(until) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "source-paused", message)
                    .retry_after(crate::sync::seconds_until(until))
            }
            SyncError::NotSyncing(state) => {
                ApiError::new(StatusCode::CONFLICT, state.code(), message)
            }
            SyncError::Busy => ApiError::new(StatusCode::CONFLICT, "source-syncing", message),
            SyncError::Incompatible(e) => e.into(),
            SyncError::NoLink(_) | SyncError::LinkGone => ApiError::not_found(message),
            SyncError::Source(e) => e.into(),
            SyncError::Store(e) => e.into(),
        }
    }
}

impl From<TransferError> for ApiError {
    fn from(e: TransferError) -> Self {
        match e {
            TransferError::Invalid(problems) => {
                let all = problems.into_iter().map(ApiError::from).collect();
                ApiError::all(all)
                    .unwrap_or_else(|| ApiError::internal("a file was refused without a reason"))
            }
            TransferError::DuplicateName(p) => ApiError {
                field: p.field,
                ..ApiError::conflict(None, p.message)
            },
            TransferError::Source(e) => e.into(),
            TransferError::Store(e) => e.into(),
            TransferError::Export(_) => ApiError::internal(e),
        }
    }
}

impl From<FileProblem> for ApiError {
    /// A 400 naming the place in the file, if there is one.
    fn from(p: FileProblem) -> Self {
        ApiError {
            field: p.field,
            ..ApiError::new(StatusCode::BAD_REQUEST, "invalid", p.message)
        }
    }
}

impl From<ProjectError> for ApiError {
    fn from(e: ProjectError) -> Self {
        match e {
            ProjectError::Invalid(e) => e.into(),
            ProjectError::NotFound(_) => ApiError::not_found(e.to_string()),
            ProjectError::DuplicateName(_) => ApiError::conflict(Some("name"), e.to_string()),
            ProjectError::Store(e) => e.into(),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid(e) => e.into(),
            TokenError::NotFound(_) => ApiError::not_found(e.to_string()),
            TokenError::LastAdmin => ApiError::conflict(None, e.to_string()),
            TokenError::Store(e) => e.into(),
        }
    }
}

impl From<CommentError> for ApiError {
    /// The tracker's refusals keep their category, with a status that says whose problem it
    /// is: a forbidden comment or locked issue 403, an unknown issue 404, a wait 429.
    fn from(e: CommentError) -> Self {
        let message = e.to_string();
        match e {
            CommentError::Invalid(e) => e.into(),
            CommentError::LinkNotFound(_) => ApiError::not_found(message),
            CommentError::SourceUnavailable { .. } => {
                ApiError::new(StatusCode::CONFLICT, "source-unavailable", message)
            }
            CommentError::CapabilityOff(_) => {
                ApiError::new(StatusCode::CONFLICT, "capability-off", message)
            }
            CommentError::Unsupported(_) => {
                ApiError::new(StatusCode::CONFLICT, "comments-unsupported", message)
            }
            CommentError::Incompatible(e) => e.into(),
            CommentError::TrackerForbidden { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "tracker-forbidden", message)
            }
            CommentError::IssueNotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "issue-not-found", message)
            }
            CommentError::RateLimited(seconds) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", message)
                    .retry_after(seconds)
            }
            CommentError::Plugin(e) => e.into(),
            CommentError::Source(e) => e.into(),
            CommentError::Store(e) => e.into(),
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Invalid(e) => e.into(),
            WebhookError::PluginMissing(_)
            | WebhookError::Unsupported(_)
            | WebhookError::ChangedMeanwhile => ApiError::conflict(None, e.to_string()),
            WebhookError::Source(e) => e.into(),
            WebhookError::Plugin(e) => e.into(),
            WebhookError::Store(e) => e.into(),
        }
    }
}

impl From<Incompatible> for ApiError {
    /// A call refused because the source no longer fits its loaded plugin: a 409
    /// `plugin-incompatible` saying why and how to get out of it.
    fn from(e: Incompatible) -> Self {
        ApiError::new(StatusCode::CONFLICT, crate::compat::CODE, e.to_string())
    }
}

impl From<SettingsError> for ApiError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::Invalid(problems) => invalid(problems),
            SettingsError::Store(e) => e.into(),
        }
    }
}

/// A 400 listing every problem, the first as the answer.
fn invalid(problems: Vec<FieldError>) -> ApiError {
    let all = problems.into_iter().map(ApiError::from).collect();
    ApiError::all(all)
        .unwrap_or_else(|| ApiError::internal("an input was refused without a reason"))
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> Self {
        ApiError::from(&e)
    }
}

impl From<&PluginError> for ApiError {
    /// A plugin that is missing or misbehaved is the server's problem (409/502), not the
    /// caller's; a provider's own error keeps its category as the code.
    fn from(e: &PluginError) -> Self {
        match e {
            PluginError::NotLoaded(_) => {
                ApiError::new(StatusCode::CONFLICT, e.code(), e.to_string())
            }
            PluginError::Provider(p) => {
                ApiError::new(StatusCode::BAD_GATEWAY, p.code(), p.to_string())
            }
            PluginError::Rejected(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, e.code(), e.to_string())
            }
            // The call slots are full: they free up within a call's time.
            PluginError::Busy(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string())
                    .retry_after(1)
            }
            _ => {
                tracing::warn!(error = %e, "plugin fault");
                ApiError::new(StatusCode::BAD_GATEWAY, e.code(), e.to_string())
            }
        }
    }
}
