//! A test-only provider built against `testorchestrator:provider@2.0.0` (a copy of the v1
//! contract in `wit/` with only the package version raised), using wit-bindgen directly
//! instead of the SDK. A host that runs contract 1.x must refuse it at load time with a
//! message naming both versions. The build script moves it from `target/test-plugins/` (where
//! every plugin must load) to `target/contract-plugins/` (see `KEEP-OUT`).

wit_bindgen::generate!({
    path: "wit",
    world: "provider",
});

use exports::testorchestrator::provider::tracker::Guest;
use testorchestrator::provider::types::{
    AuthType, ConnectionInfo, CredentialScheme, Issue, ProviderError, ProviderInfo, Source,
};

struct Future;

impl Guest for Future {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            id: "future-contract".into(),
            version: "2.0.0".into(),
            name: "Future contract (test only)".into(),
            key_hint: "Anything".into(),
            key_example: "F-1".into(),
            default_key_pattern: None,
            default_issue_url_template: "{baseUrl}/issue/{key}".into(),
            default_create_url_template: None,
            base_url_example: "http://127.0.0.1:8080".into(),
            auth_types: vec![AuthType {
                id: "none".into(),
                label: "None".into(),
                fields: vec![],
                scheme: CredentialScheme::None,
            }],
            settings: vec![],
            extra_origins: vec![],
        }
    }

    fn normalize_key(_source: Source, key: String) -> Result<String, ProviderError> {
        Ok(key.trim().to_string())
    }

    fn issue_url(source: Source, key: String) -> Result<String, ProviderError> {
        Ok(format!("{}/issue/{key}", source.base_url))
    }

    fn create_url(_source: Source) -> Result<String, ProviderError> {
        Err(ProviderError::Unsupported("no new-issue page".into()))
    }

    fn test_connection(_source: Source) -> Result<ConnectionInfo, ProviderError> {
        Err(ProviderError::Unsupported("test only".into()))
    }

    fn fetch_issue(_source: Source, _key: String) -> Result<Issue, ProviderError> {
        Err(ProviderError::Unsupported("test only".into()))
    }

    fn fetch_issues(
        _source: Source,
        _keys: Vec<String>,
    ) -> Result<Vec<Result<Issue, ProviderError>>, ProviderError> {
        Err(ProviderError::Unsupported("test only".into()))
    }
}

export!(Future);
