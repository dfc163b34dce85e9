//! A test-only, well-behaved provider whose answers name its version, so a test can tell
//! which version served a call while it swaps versions under load.
//!
//! The version string is [`VERSION`], a fixed-width marker: the plugin-ops tests make
//! "version 2" by replacing those bytes in the compiled `.wasm` (same length, so the binary
//! stays valid), which gives a second, different binary without a second build.
//!
//! - `test-connection` asks `GET {baseUrl}/whoami` (anonymously; a stand-in may hold the
//!   answer to keep the call in flight) and answers the account `hotswap <version>`;
//! - `fetch-issue` answers an issue whose title is `served by <version>`, without network;
//! - `normalize-key` trims and upper-cases (a pasted issue URL gives its last segment); an
//!   empty key is invalid input; the key `?calls` answers `CALLS-<n>`, `n` the `normalize-key`
//!   calls this instance answered before (a warm-up's among them), so a test can tell what
//!   ran in an instance before its call;
//! - `describe-comments` names the host's contract version (the `contract` import);
//! - `add-comment` (contract 1.1) answers the comment id `<version>`, without network;
//! - `parse-event` (contract 1.1) reads a JSON body `{"keys": [...], "status": "..."}` into one
//!   change per key (with the issue's state when `status` is given, version 7); a body
//!   `{"network": true}` tries the network (which `parse-event` may not use) and answers what
//!   happened as a provider error.
//!
//! Letters in the marker's last segment change what `describe` offers, so a patched binary is
//! a version that breaks sources (see [`has`]): `N` replaces the `none` auth type by `token` (a
//! required secret `api-token`), `S` adds a required setting `space`. The digits-only markers
//! keep the plain shape: auth type `none`, no setting.

use std::sync::atomic::{AtomicU32, Ordering};

use testorchestrator_provider_sdk::*;

/// The version marker the tests patch. Keep it unique in the binary and fixed-width.
const VERSION: &str = "1.0.0-hotswap.00000000";

struct Hotswap;

/// The `normalize-key` calls this instance answered.
static NORMALIZED: AtomicU32 = AtomicU32::new(0);

impl Provider for Hotswap {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            id: "hotswap".into(),
            version: VERSION.into(),
            name: "Hot swap probe (test only)".into(),
            key_hint: "Anything, e.g. HS-1".into(),
            key_example: "HS-1".into(),
            default_key_pattern: None,
            default_issue_url_template: "{baseUrl}/issue/{key}".into(),
            default_create_url_template: Some("{baseUrl}/new".into()),
            base_url_example: "http://127.0.0.1:8080".into(),
            auth_types: if has('N') {
                vec![token_auth()]
            } else {
                vec![no_auth()]
            },
            settings: if has('S') {
                vec![Setting {
                    name: "space".into(),
                    label: "Space".into(),
                    help: "Required from the versions marked S".into(),
                    kind: SettingKind::Text,
                    required: true,
                }]
            } else {
                vec![]
            },
            extra_origins: vec![],
        }
    }

    fn normalize_key(_source: &Source, key: &str) -> Result<String, ProviderError> {
        let before = NORMALIZED.fetch_add(1, Ordering::Relaxed);
        let key = key.trim();
        if key == "?calls" {
            return Ok(format!("CALLS-{before}"));
        }
        let key = match url_path_segments(key) {
            Some(segments) => segments.last().cloned().unwrap_or_default(),
            None => key.to_string(),
        };
        if key.is_empty() {
            return Err(ProviderError::InvalidInput("the key is empty".into()));
        }
        Ok(key.to_ascii_uppercase())
    }

    fn test_connection(source: &Source) -> Result<ConnectionInfo, ProviderError> {
        let url = format!("{}/whoami", source.base_url.trim_end_matches('/'));
        let resp = get(url).anonymous().send()?;
        if !resp.is_success() {
            return Err(status_error(&resp, "the stand-in"));
        }
        Ok(ConnectionInfo {
            account: format!("hotswap {VERSION}"),
            detail: Some(resp.text()),
        })
    }

    fn fetch_issue(source: &Source, key: &str) -> Result<Issue, ProviderError> {
        Ok(Issue {
            key: key.into(),
            title: format!("served by {VERSION}"),
            status: "Open".into(),
            status_category: StatusCategory::ToDo,
            assignee: None,
            web_url: Self::issue_url(source, key)?,
        })
    }

    fn describe_events() -> Vec<EventScheme> {
        vec![EventScheme {
            id: "hmac".into(),
            label: "HMAC-SHA256 (X-Probe-Signature)".into(),
            authenticity: Authenticity::HmacSha256(HmacScheme {
                header: "X-Probe-Signature".into(),
                prefix: "sha256=".into(),
                encoding: DigestEncoding::Hex,
                content: SignedContent::Body,
            }),
            replay: None,
            delivery_id: Some(Locator::Header("X-Probe-Delivery".into())),
            setup: "Paste {webhookUrl} into the probe.".into(),
        }]
    }

    fn parse_event(source: &Source, event: &Event) -> Result<Vec<EventChange>, ProviderError> {
        let body: serde_json::Value = serde_json::from_slice(&event.body)
            .map_err(|e| ProviderError::InvalidInput(format!("not JSON: {e}")))?;
        if body["network"] == true {
            let outcome = get(format!("{}/whoami", source.base_url))
                .anonymous()
                .send();
            return Err(ProviderError::Provider(format!("network: {outcome:?}")));
        }
        let status = body["status"].as_str();
        let keys = body["keys"].as_array().cloned().unwrap_or_default();
        keys.iter()
            .filter_map(|k| k.as_str())
            .map(|key| {
                let issue = match status {
                    Some(status) => Some(Issue {
                        key: key.into(),
                        title: format!("served by {VERSION}"),
                        status: status.into(),
                        status_category: StatusCategory::Done,
                        assignee: None,
                        web_url: Self::issue_url(source, key)?,
                    }),
                    None => None,
                };
                Ok(EventChange {
                    key: key.into(),
                    issue,
                    version: Some(7),
                })
            })
            .collect()
    }

    fn describe_comments() -> Option<CommentsInfo> {
        Some(CommentsInfo {
            // Asks the host which contract it implements (the `contract` import, since 1.1).
            format: format!("Markdown (host contract {})", host_contract_version()),
            max_length: 1000,
        })
    }

    fn add_comment(
        source: &Source,
        key: &str,
        _markdown: &str,
    ) -> Result<CommentInfo, ProviderError> {
        Ok(CommentInfo {
            id: VERSION.into(),
            web_url: Some(format!("{}#comment", Self::issue_url(source, key)?)),
        })
    }
}

export_provider!(Hotswap);

/// True when the version marker's last segment holds `flag`. Read through `black_box`, so the
/// compiler cannot fold it and a patched marker takes effect.
fn has(flag: char) -> bool {
    let version = std::hint::black_box(VERSION);
    version.rsplit('.').next().unwrap_or("").contains(flag)
}

/// A bearer-token auth type, offered instead of `none` by the versions marked `N`.
fn token_auth() -> AuthType {
    AuthType {
        id: "token".into(),
        label: "Token".into(),
        fields: vec![AuthField {
            name: "api-token".into(),
            label: "API token".into(),
            secret: true,
            required: true,
            help: None,
        }],
        scheme: CredentialScheme::Bearer("api-token".into()),
    }
}
