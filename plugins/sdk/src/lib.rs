//! The guest-side kit for writing a provider plugin.
//!
//! A plugin implements [`Provider`] for a unit struct and calls [`export_provider!`]; this crate
//! holds the generated bindings of `plugins/sdk/wit/provider/v1` and the small helpers every tracker needs
//! (HTTP with JSON, URL templates, rate-limit headers, mapping HTTP statuses to
//! [`ProviderError`]). It must stay free of heavy dependencies: every call runs in a fresh
//! instance, so anything initialised per call (a regex, a big table) is paid on every call.
#![deny(missing_docs)]

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit/provider/v1",
        world: "provider",
        pub_export_macro: true,
        export_macro_name: "__export_plugin",
        default_bindings_module: "testorchestrator_provider_sdk::bindings",
    });
}

mod helpers;
pub mod markdown;
mod time;

pub use bindings::exports::testorchestrator::provider::comments::{CommentInfo, CommentsInfo};
pub use bindings::exports::testorchestrator::provider::events::{
    Authenticity, DigestEncoding, Event, EventChange, EventScheme, HmacScheme, IdTimestampHeaders,
    Locator, ReplayWindow, SignedContent, TimeUnit,
};
pub use bindings::testorchestrator::provider::http::{
    HttpError, Method, Request as HttpRequest, Response as HttpResponse,
};
pub use bindings::testorchestrator::provider::log::Level as LogLevel;
pub use bindings::testorchestrator::provider::types::{
    AuthField, AuthType, BasicScheme, ConnectionInfo, CredentialScheme, HeaderScheme, Issue, Pair,
    ProviderError, ProviderInfo, RateLimit, Setting, SettingKind, Source, StatusCategory,
};
pub use helpers::*;
pub use serde_json;
pub use time::timestamp_millis;

/// The contract version the host implements, e.g. "1.1.0" (`contract.version`, since 1.1).
/// A plugin that calls it needs a 1.1 host or newer.
pub fn host_contract_version() -> String {
    bindings::testorchestrator::provider::contract::version()
}

/// One tracker's knowledge. Every method but [`Provider::describe`] and
/// [`Provider::normalize_key`] has a default; the contract's doc comments in
/// `plugins/sdk/wit/provider/v1/world.wit` say what each must do.
pub trait Provider {
    /// The plugin's self-description (`describe` in the WIT).
    fn describe() -> ProviderInfo;

    /// Canonicalises a key as typed or pasted (`normalize-key`).
    fn normalize_key(source: &Source, key: &str) -> Result<String, ProviderError>;

    /// The issue's browser URL: the source's template, else the plugin's default template.
    fn issue_url(source: &Source, key: &str) -> Result<String, ProviderError> {
        let template = match &source.issue_url_template {
            Some(t) => t.clone(),
            None => Self::describe().default_issue_url_template,
        };
        Ok(render_template(&template, &source.base_url, Some(key)))
    }

    /// The new-issue URL: the source's template, else the plugin's default, else unsupported.
    fn create_url(source: &Source) -> Result<String, ProviderError> {
        let template = source
            .create_url_template
            .clone()
            .or_else(|| Self::describe().default_create_url_template)
            .ok_or_else(|| {
                ProviderError::Unsupported("this tracker has no new-issue page".into())
            })?;
        Ok(render_template(&template, &source.base_url, None))
    }

    /// Proves the connection works and says who we are (`test-connection`).
    fn test_connection(_source: &Source) -> Result<ConnectionInfo, ProviderError> {
        Err(ProviderError::Unsupported(
            "connection tests are not supported".into(),
        ))
    }

    /// Reads one issue (`fetch-issue`).
    fn fetch_issue(_source: &Source, _key: &str) -> Result<Issue, ProviderError> {
        Err(ProviderError::Unsupported(
            "reading issues is not supported".into(),
        ))
    }

    /// Reads many issues (`fetch-issues`). The default asks one key at a time and stops early
    /// on errors that would fail every other key too (see [`is_batch_fatal`]).
    fn fetch_issues(
        source: &Source,
        keys: &[String],
    ) -> Result<Vec<Result<Issue, ProviderError>>, ProviderError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match Self::fetch_issue(source, key) {
                Err(e) if is_batch_fatal(&e) => return Err(e),
                other => out.push(other),
            }
        }
        Ok(out)
    }

    /// Whether and how this provider posts comments (`describe-comments`, contract 1.1).
    /// The default: not supported.
    fn describe_comments() -> Option<CommentsInfo> {
        None
    }

    /// Posts a Markdown comment on an issue (`add-comment`, contract 1.1).
    fn add_comment(
        _source: &Source,
        _key: &str,
        _markdown: &str,
    ) -> Result<CommentInfo, ProviderError> {
        Err(ProviderError::Unsupported(
            "posting comments is not supported by this provider".into(),
        ))
    }

    /// How this tracker's webhooks are verified (`describe-events`, contract 1.1). The
    /// default, an empty list: webhooks are not supported.
    fn describe_events() -> Vec<EventScheme> {
        Vec::new()
    }

    /// Maps a verified webhook event to the issues it concerns (`parse-event`, contract 1.1).
    fn parse_event(_source: &Source, _event: &Event) -> Result<Vec<EventChange>, ProviderError> {
        Err(ProviderError::Unsupported(
            "webhooks are not supported by this provider".into(),
        ))
    }
}

/// Exports a [`Provider`] implementation as the plugin's `tracker` interface.
///
/// ```ignore
/// struct Redmine;
/// impl testorchestrator_provider_sdk::Provider for Redmine { /* ... */ }
/// testorchestrator_provider_sdk::export_provider!(Redmine);
/// ```
#[macro_export]
macro_rules! export_provider {
    ($provider:ty) => {
        const _: () = {
            use $crate::bindings::exports::testorchestrator::provider::tracker::Guest;
            use $crate::{ConnectionInfo, Issue, Provider, ProviderError, ProviderInfo, Source};

            struct Export;

            /// Lets the SDK's messages name the tracker (see `transport_error`).
            fn register() {
                $crate::register_tracker_name(|| <$provider as Provider>::describe().name);
            }

            impl Guest for Export {
                fn describe() -> ProviderInfo {
                    <$provider as Provider>::describe()
                }
                fn normalize_key(source: Source, key: String) -> Result<String, ProviderError> {
                    <$provider as Provider>::normalize_key(&source, &key)
                }
                fn issue_url(source: Source, key: String) -> Result<String, ProviderError> {
                    <$provider as Provider>::issue_url(&source, &key)
                }
                fn create_url(source: Source) -> Result<String, ProviderError> {
                    <$provider as Provider>::create_url(&source)
                }
                fn test_connection(source: Source) -> Result<ConnectionInfo, ProviderError> {
                    register();
                    <$provider as Provider>::test_connection(&source)
                }
                fn fetch_issue(source: Source, key: String) -> Result<Issue, ProviderError> {
                    register();
                    <$provider as Provider>::fetch_issue(&source, &key)
                }
                fn fetch_issues(
                    source: Source,
                    keys: Vec<String>,
                ) -> Result<Vec<Result<Issue, ProviderError>>, ProviderError> {
                    register();
                    <$provider as Provider>::fetch_issues(&source, &keys)
                }
            }

            impl $crate::bindings::exports::testorchestrator::provider::comments::Guest for Export {
                fn describe_comments() -> Option<$crate::CommentsInfo> {
                    <$provider as Provider>::describe_comments()
                }
                fn add_comment(
                    source: Source,
                    key: String,
                    markdown: String,
                ) -> Result<$crate::CommentInfo, ProviderError> {
                    register();
                    <$provider as Provider>::add_comment(&source, &key, &markdown)
                }
            }

            impl $crate::bindings::exports::testorchestrator::provider::events::Guest for Export {
                fn describe_events() -> Vec<$crate::EventScheme> {
                    <$provider as Provider>::describe_events()
                }
                fn parse_event(
                    source: Source,
                    event: $crate::Event,
                ) -> Result<Vec<$crate::EventChange>, ProviderError> {
                    register();
                    <$provider as Provider>::parse_event(&source, &event)
                }
            }

            $crate::bindings::__export_plugin!(Export);
        };
    };
}
