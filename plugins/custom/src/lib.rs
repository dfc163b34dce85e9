//! Custom Tracker provider plugin (skeleton: being written).

use testorchestrator_provider_sdk::*;

struct Plugin;

impl Provider for Plugin {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            id: "custom".into(),
            version: "0.1.0".into(),
            name: "Custom Tracker".into(),
            key_hint: "Issue key".into(),
            key_example: "1".into(),
            default_key_pattern: None,
            default_issue_url_template: "{baseUrl}/{key}".into(),
            default_create_url_template: None,
            base_url_example: "https://example.com".into(),
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

    fn normalize_key(_source: &Source, key: &str) -> Result<String, ProviderError> {
        Ok(key.trim().to_string())
    }
}

export_provider!(Plugin);
