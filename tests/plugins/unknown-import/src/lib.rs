//! A test-only provider that claims `testorchestrator:provider@1.1.0` but imports a host
//! function the real 1.1.0 lacks (`contract.features`; the WIT copy is in `wit/`), using
//! wit-bindgen directly. `describe` calls it, so the component really imports it. The host
//! must refuse it before linking, naming the versions, not with the linker's text.

wit_bindgen::generate!({
    path: "wit",
    world: "provider",
});

use exports::testorchestrator::provider::tracker::Guest;
use testorchestrator::provider::types::{
    AuthType, ConnectionInfo, CredentialScheme, Issue, ProviderError, ProviderInfo, Source,
    StatusCategory,
};

struct UnknownImport;

impl Guest for UnknownImport {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            id: "unknown-import".into(),
            version: "1.1.0".into(),
            // Calling the 1.2 import keeps it in the component's imports.
            name: format!(
                "Unknown import (test only, {} features)",
                testorchestrator::provider::contract::features().len()
            ),
            key_hint: "Anything".into(),
            key_example: "M-1".into(),
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
        // A pasted issue URL gives its last path segment.
        let key = key.trim();
        let key = key.rsplit('/').next().unwrap_or(key);
        Ok(key.to_ascii_uppercase())
    }

    fn issue_url(source: Source, key: String) -> Result<String, ProviderError> {
        let template = source
            .issue_url_template
            .unwrap_or_else(|| "{baseUrl}/issue/{key}".into());
        Ok(template
            .replace("{baseUrl}", &source.base_url)
            .replace("{key}", &key))
    }

    fn create_url(_source: Source) -> Result<String, ProviderError> {
        Err(ProviderError::Unsupported("no new-issue page".into()))
    }

    fn test_connection(_source: Source) -> Result<ConnectionInfo, ProviderError> {
        Ok(ConnectionInfo {
            account: "unknown import".into(),
            detail: None,
        })
    }

    fn fetch_issue(source: Source, key: String) -> Result<Issue, ProviderError> {
        Ok(Issue {
            web_url: format!("{}/issue/{key}", source.base_url),
            key,
            title: "from an unknown import".into(),
            status: "Open".into(),
            status_category: StatusCategory::ToDo,
            assignee: None,
        })
    }

    fn fetch_issues(
        source: Source,
        keys: Vec<String>,
    ) -> Result<Vec<Result<Issue, ProviderError>>, ProviderError> {
        Ok(keys
            .into_iter()
            .map(|k| Self::fetch_issue(source.clone(), k))
            .collect())
    }
}

export!(UnknownImport);
