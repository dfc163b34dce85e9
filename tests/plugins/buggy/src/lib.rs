//! A test-only provider with three bugs that a plugin can easily ship with, and that
//! `integration-host check` must catch (each passes a "does it crash" check):
//!
//! 1. its default key pattern does not match its own example key (`BUG-7` against
//!    `^[A-Z]+_[0-9]+$`), so every source created with the default refuses every key;
//! 2. `fetch-issue` answers the key as it was asked, lower-cased, instead of the canonical key;
//! 3. `normalize-key` panics on a pasted issue URL (the service would answer 502).

use testorchestrator_provider_sdk::*;

struct Buggy;

impl Provider for Buggy {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            id: "buggy".into(),
            version: "0.0.1".into(),
            name: "Buggy (test only)".into(),
            key_hint: "Project key and number, e.g. BUG-7".into(),
            key_example: "BUG-7".into(),
            default_key_pattern: Some("^[A-Z]+_[0-9]+$".into()),
            default_issue_url_template: "{baseUrl}/issue/{key}".into(),
            default_create_url_template: None,
            base_url_example: "https://bugs.example.com".into(),
            auth_types: vec![no_auth()],
            settings: vec![],
            extra_origins: vec![],
        }
    }

    fn normalize_key(_source: &Source, key: &str) -> Result<String, ProviderError> {
        let key = key.trim();
        if key.contains("://") {
            let segments = url_path_segments(key).expect("a URL has segments");
            panic!("cannot read {segments:?} yet");
        }
        if key.is_empty() {
            return Err(ProviderError::InvalidInput("the key is empty".into()));
        }
        Ok(key.to_ascii_uppercase())
    }

    fn test_connection(_source: &Source) -> Result<ConnectionInfo, ProviderError> {
        Ok(ConnectionInfo {
            account: "buggy".into(),
            detail: None,
        })
    }

    fn fetch_issue(source: &Source, key: &str) -> Result<Issue, ProviderError> {
        Ok(Issue {
            key: key.to_lowercase(),
            title: "A bug".into(),
            status: "Open".into(),
            status_category: StatusCategory::ToDo,
            assignee: None,
            web_url: Self::issue_url(source, key)?,
        })
    }
}

export_provider!(Buggy);
