//! The guest-side kit for writing a provider plugin.
//!
//! A plugin implements [`Provider`] for a unit struct and calls [`export_provider!`]; this crate
//! holds the generated bindings of `wit/provider/v1` and the small helpers every tracker needs
//! (HTTP with JSON, URL templates, rate-limit headers, mapping HTTP statuses to
//! [`ProviderError`]). It must stay free of heavy dependencies: every call runs in a fresh
//! instance, so anything initialised per call (a regex, a big table) is paid on every call.
#![deny(missing_docs)]

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/provider/v1",
        world: "provider",
        pub_export_macro: true,
        export_macro_name: "__export_plugin",
        default_bindings_module: "testorchestrator_provider_sdk::bindings",
    });
}

mod helpers;

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

/// One tracker's knowledge. Every method but [`Provider::describe`] and
/// [`Provider::normalize_key`] has a default; the contract's doc comments in
/// `wit/provider/v1/world.wit` say what each must do.
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

            $crate::bindings::__export_plugin!(Export);
        };
    };
}
