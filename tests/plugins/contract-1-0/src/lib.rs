//! A test-only provider built against the released contract 1.0.0 as frozen in
//! `plugins/sdk/wit/provider/v1.0` (with wit-bindgen directly, not the SDK, which follows the living
//! contract). It exports `tracker` only: no `comments`, no `events`, no `contract` import.
//! Every 1.x host must load it and serve all of it; it claims the id of the `hotswap` test
//! provider, so a test can swap a 1.0 and a 1.1 plugin of one provider both ways.

wit_bindgen::generate!({
    path: "../../../plugins/sdk/wit/provider/v1.0",
    world: "provider",
});

use exports::testorchestrator::provider::tracker::Guest;
use testorchestrator::provider::types::{
    AuthType, ConnectionInfo, CredentialScheme, Issue, ProviderError, ProviderInfo, Source,
    StatusCategory,
};

struct Contract10;

impl Guest for Contract10 {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            id: "hotswap".into(),
            version: "1.0.0-contract-1.0".into(),
            name: "Hot swap probe, contract 1.0 (test only)".into(),
            key_hint: "Anything, e.g. HS-1".into(),
            key_example: "HS-1".into(),
            default_key_pattern: None,
            default_issue_url_template: "{baseUrl}/issue/{key}".into(),
            default_create_url_template: Some("{baseUrl}/new".into()),
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
        if key.is_empty() {
            return Err(ProviderError::InvalidInput("the key is empty".into()));
        }
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

    fn create_url(source: Source) -> Result<String, ProviderError> {
        let template = source
            .create_url_template
            .unwrap_or_else(|| "{baseUrl}/new".into());
        Ok(template.replace("{baseUrl}", &source.base_url))
    }

    fn test_connection(_source: Source) -> Result<ConnectionInfo, ProviderError> {
        Ok(ConnectionInfo {
            account: "contract 1.0".into(),
            detail: None,
        })
    }

    fn fetch_issue(source: Source, key: String) -> Result<Issue, ProviderError> {
        Ok(Issue {
            web_url: format!("{}/issue/{key}", source.base_url),
            key,
            title: "served by a 1.0 plugin".into(),
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

export!(Contract10);
