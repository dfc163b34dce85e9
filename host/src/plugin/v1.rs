//! Contract version 1.x (`wit/provider/v1`): the generated bindings, the host side of its
//! imports, and conversions between its types and the host's own ([`super::model`]).
//!
//! A future 2.0 gets a `v2.rs` beside this one; nothing outside `plugin/` changes.

use wasmtime::component::HasSelf;

use super::CallState;
use super::bounds;
use super::egress::{Outgoing, SendError};
use super::model;

wasmtime::component::bindgen!({
    path: "../wit/provider/v1",
    world: "provider",
    imports: { default: async | trappable },
    exports: { default: async },
});

use testorchestrator::provider::{http, log, types as wit};

/// The package's version range this module serves.
pub const MAJOR: u64 = 1;

/// The version of the contract package this host implements (`wit/provider/v1/world.wit`).
pub const VERSION: &str = "1.1.0";

/// The export name a v1 plugin must have (without its `@version` suffix).
pub const EXPORT: &str = "testorchestrator:provider/tracker";

/// Adds the v1 imports (`http`, `log`) to a linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<CallState>) -> wasmtime::Result<()> {
    Provider::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)
}

impl wit::Host for CallState {}

impl testorchestrator::provider::contract::Host for CallState {
    async fn version(&mut self) -> wasmtime::Result<String> {
        Ok(VERSION.to_string())
    }
}

impl http::Host for CallState {
    async fn send(
        &mut self,
        req: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        let method = match req.method {
            http::Method::Get => reqwest::Method::GET,
            http::Method::Head => reqwest::Method::HEAD,
            http::Method::Post => reqwest::Method::POST,
            http::Method::Put => reqwest::Method::PUT,
            http::Method::Patch => reqwest::Method::PATCH,
            http::Method::Delete => reqwest::Method::DELETE,
        };
        let outgoing = Outgoing {
            method,
            url: req.url,
            headers: req.headers,
            body: req.body,
            authenticated: req.authenticated,
        };
        let result = match &mut self.egress {
            Ok(egress) => egress.send(outgoing).await,
            Err(operation) => Err(SendError::Denied(format!(
                "{operation} must not use the network"
            ))),
        };
        if let Err(e) = &result {
            tracing::debug!(plugin = %self.plugin_id, error = ?e, "plugin HTTP request failed");
        }
        Ok(result
            .map(|r| http::Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            })
            .map_err(|e| match e {
                SendError::Denied(m) => http::HttpError::Denied(m),
                SendError::InvalidRequest(m) => http::HttpError::InvalidRequest(m),
                SendError::Unreachable(m) => http::HttpError::Unreachable(m),
                SendError::Timeout => http::HttpError::Timeout,
                SendError::TooLarge => http::HttpError::TooLarge,
                SendError::BudgetExhausted => http::HttpError::BudgetExhausted,
            }))
    }
}

impl log::Host for CallState {
    async fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Debug => tracing::Level::DEBUG,
            log::Level::Info => tracing::Level::INFO,
            log::Level::Warn => tracing::Level::WARN,
            log::Level::Error => tracing::Level::ERROR,
        };
        self.guest_log(level, &message);
        Ok(())
    }
}

/// The guest's view of a source: non-secret fields only. Fields the auth type declares
/// secret are dropped here even if a caller put them among the plain fields.
pub fn source(info: &model::ProviderInfo, s: &model::SourceConfig) -> wit::Source {
    let secret_names = info.secret_fields(&s.auth_type);
    let pairs = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .filter(|(k, _)| !secret_names.contains(&k.as_str()))
            .map(|(name, value)| wit::Pair {
                name: name.clone(),
                value: value.clone(),
            })
            .collect()
    };
    wit::Source {
        base_url: s.base_url.clone(),
        auth_type: s.auth_type.clone(),
        auth_fields: pairs(&s.fields),
        settings: pairs(&s.settings),
        issue_url_template: s.issue_url_template.clone(),
        create_url_template: s.create_url_template.clone(),
        key_pattern: s.key_pattern.clone(),
    }
}

impl From<wit::ProviderError> for model::ProviderError {
    /// Converts, cutting an overlong message (see [`bounds::error_message`]).
    fn from(e: wit::ProviderError) -> Self {
        use model::ProviderError as E;
        let cut = bounds::error_message;
        match e {
            wit::ProviderError::InvalidInput(m) => E::InvalidInput(cut(m)),
            wit::ProviderError::Unauthorized(m) => E::Unauthorized(cut(m)),
            wit::ProviderError::Forbidden(m) => E::Forbidden(cut(m)),
            wit::ProviderError::NotFound(m) => E::NotFound(cut(m)),
            wit::ProviderError::RateLimited(r) => E::RateLimited {
                retry_after_secs: r.retry_after_secs.max(1),
                message: cut(r.message),
            },
            wit::ProviderError::Unreachable(m) => E::Unreachable(cut(m)),
            wit::ProviderError::Unsupported(m) => E::Unsupported(cut(m)),
            wit::ProviderError::Provider(m) => E::Provider(cut(m)),
        }
    }
}

impl From<wit::Issue> for model::Issue {
    fn from(i: wit::Issue) -> Self {
        model::Issue {
            key: i.key,
            title: i.title,
            status: i.status,
            status_category: match i.status_category {
                wit::StatusCategory::ToDo => model::StatusCategory::ToDo,
                wit::StatusCategory::InProgress => model::StatusCategory::InProgress,
                wit::StatusCategory::Done => model::StatusCategory::Done,
            },
            assignee: i.assignee,
            web_url: i.web_url,
        }
    }
}

impl From<wit::ConnectionInfo> for model::ConnectionInfo {
    fn from(c: wit::ConnectionInfo) -> Self {
        model::ConnectionInfo {
            account: c.account,
            detail: c.detail,
        }
    }
}

impl From<wit::ProviderInfo> for model::ProviderInfo {
    fn from(p: wit::ProviderInfo) -> Self {
        model::ProviderInfo {
            id: p.id,
            version: p.version,
            name: p.name,
            key_hint: p.key_hint,
            key_example: p.key_example,
            default_key_pattern: p.default_key_pattern,
            default_issue_url_template: p.default_issue_url_template,
            default_create_url_template: p.default_create_url_template,
            base_url_example: p.base_url_example,
            auth_types: p.auth_types.into_iter().map(auth_type).collect(),
            settings: p
                .settings
                .into_iter()
                .map(|s| model::Setting {
                    name: s.name,
                    label: s.label,
                    help: s.help,
                    kind: match s.kind {
                        wit::SettingKind::Text => model::SettingKind::Text,
                        wit::SettingKind::Url => model::SettingKind::Url,
                    },
                    required: s.required,
                })
                .collect(),
            extra_origins: p.extra_origins,
        }
    }
}

fn auth_type(a: wit::AuthType) -> model::AuthType {
    model::AuthType {
        id: a.id,
        label: a.label,
        fields: a
            .fields
            .into_iter()
            .map(|f| model::AuthField {
                name: f.name,
                label: f.label,
                secret: f.secret,
                required: f.required,
                help: f.help,
            })
            .collect(),
        scheme: match a.scheme {
            wit::CredentialScheme::None => model::CredentialScheme::None,
            wit::CredentialScheme::Basic(b) => model::CredentialScheme::Basic {
                user_field: b.user_field,
                password_field: b.password_field,
            },
            wit::CredentialScheme::Bearer(field) => model::CredentialScheme::Bearer { field },
            wit::CredentialScheme::Header(h) => model::CredentialScheme::Header {
                name: h.name,
                prefix: h.prefix,
                field: h.field,
            },
        },
    }
}
