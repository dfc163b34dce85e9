//! A test-only provider built against a hypothetical `testorchestrator:provider@1.2.0` (a copy
//! of the contract in `wit/` whose `contract` import has one function more, `features`), using
//! wit-bindgen directly. `describe` calls `features`, so the component really imports it. A
//! host that runs contract 1.1 must refuse it before linking, naming both versions.

wit_bindgen::generate!({
    path: "wit",
    world: "provider",
});

use exports::testorchestrator::provider::tracker::Guest;
use testorchestrator::provider::types::{
    AuthType, ConnectionInfo, CredentialScheme, Issue, ProviderError, ProviderInfo, Source,
    StatusCategory,
};

struct Minor;

impl Guest for Minor {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            id: "minor-contract".into(),
            version: "1.2.0".into(),
            // Calling the 1.2 import keeps it in the component's imports.
            name: format!(
                "Minor contract (test only, {} features)",
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
            account: "minor 1.2".into(),
            detail: None,
        })
    }

    fn fetch_issue(source: Source, key: String) -> Result<Issue, ProviderError> {
        Ok(Issue {
            web_url: format!("{}/issue/{key}", source.base_url),
            key,
            title: "from a 1.2 plugin".into(),
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

export!(Minor);
