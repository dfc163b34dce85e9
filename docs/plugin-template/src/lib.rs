//! Provider plugin template: "Acme Tracker", a made-up tracker with a small REST API.
//! Replace every `TODO` with your tracker's facts; the contract's doc comments in
//! `plugins/sdk/wit/provider/v1/*.wit` say exactly what each export must do.
//!
//! The made-up API this template talks to:
//! - `GET {baseUrl}/api/v1/me` -> `{"name": "Mia", "email": "mia@example.com"}`
//! - `GET {baseUrl}/api/v1/issues/{key}` ->
//!   `{"key": "ACME-7", "title": "...", "state": "open|in_progress|closed", "assignee": {"name": "..."} | null}`
//! - both need `Authorization: Bearer <token>`, which the HOST adds: the plugin never sees
//!   the token, it only marks requests as authenticated (the SDK's `get` does).
//!
//! Rules of the sandbox: every call runs in a fresh instance (keep no state, and keep
//! per-call work small: parse keys by hand, no `regex`); the network is reachable only through
//! the host's HTTP import and only to the source's base URL origin (plus `extra-origins`);
//! no files, no environment, no clock you can trust for more than rate-limit maths.

use testorchestrator_provider_sdk::*;

/// The plugin's own version, shown in the service's plugins listing. Bump it on every upload.
const VERSION: &str = "0.1.0";

struct MyTracker;

impl Provider for MyTracker {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            // TODO: a stable, unique kebab-case id. An upload to /api/v1/plugins/{id} replaces
            // the loaded plugin with this id.
            id: "acme-tracker".into(),
            version: VERSION.into(),
            name: "Acme Tracker".into(),
            key_hint: "Project key and number, e.g. ACME-7".into(),
            key_example: "ACME-7".into(),
            default_key_pattern: Some("^[A-Z][A-Z0-9]*-[1-9][0-9]*$".into()),
            default_issue_url_template: "{baseUrl}/browse/{key}".into(),
            default_create_url_template: Some("{baseUrl}/issues/new".into()),
            base_url_example: "https://acme.example.com".into(),
            auth_types: vec![AuthType {
                id: "api-token".into(),
                label: "API token".into(),
                fields: vec![AuthField {
                    name: "api-token".into(),
                    label: "API token".into(),
                    // Secret fields are stored encrypted and never reach the plugin.
                    secret: true,
                    required: true,
                    help: Some("Profile -> API tokens".into()),
                }],
                // How the host applies the secret to requests marked authenticated.
                scheme: CredentialScheme::Bearer("api-token".into()),
            }],
            settings: vec![],
            // Origins besides the base URL's, e.g. "https://api.acme.example.com".
            extra_origins: vec![],
        }
    }

    /// `acme-7`, ` ACME-7 `, and a pasted `https://.../browse/ACME-7` all become `ACME-7`.
    fn normalize_key(_source: &Source, key: &str) -> Result<String, ProviderError> {
        let text = key.trim();
        // A pasted issue URL: take its last path segment.
        let text = match url_path_segments(text) {
            Some(segments) => segments.last().cloned().unwrap_or_default(),
            None => text.to_string(),
        };
        let upper = text.to_ascii_uppercase();
        let invalid = || {
            ProviderError::InvalidInput(format!(
                "{:?} is not an Acme key: use PROJECT-NUMBER, e.g. ACME-7",
                key.trim()
            ))
        };
        let (project, number) = upper.split_once('-').ok_or_else(invalid)?;
        let project_ok = project
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase())
            && project
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !project_ok || parse_issue_number(number).is_none() {
            return Err(invalid());
        }
        Ok(upper)
    }

    // `issue_url` and `create_url` come from the SDK: the source's template, else the
    // defaults above. Override them when your tracker needs more than `{baseUrl}`/`{key}`.

    fn test_connection(source: &Source) -> Result<ConnectionInfo, ProviderError> {
        let resp = get(format!("{}/api/v1/me", source.base_url)).send()?;
        if !resp.is_success() {
            return Err(status_error(&resp, "the current user"));
        }
        let body = resp.json()?;
        let name = str_at(&body, "/name").unwrap_or("unknown user");
        Ok(ConnectionInfo {
            account: match str_at(&body, "/email") {
                Some(email) => format!("{name} ({email})"),
                None => name.to_string(),
            },
            detail: None,
        })
    }

    fn fetch_issue(source: &Source, key: &str) -> Result<Issue, ProviderError> {
        let what = format!("issue {key}");
        let url = format!(
            "{}/api/v1/issues/{}",
            source.base_url,
            encode_component(key)
        );
        let resp = get(url).send()?;
        if !resp.is_success() {
            return Err(status_error(&resp, &what));
        }
        let body = resp.json()?;
        let state = str_at(&body, "/state").unwrap_or("unknown");
        Ok(Issue {
            key: key.to_string(),
            title: str_at(&body, "/title").unwrap_or_default().to_string(),
            status: state.replace('_', " "),
            // TODO: map your tracker's states to the three categories.
            status_category: match state {
                "closed" | "done" | "rejected" => StatusCategory::Done,
                "in_progress" | "review" => StatusCategory::InProgress,
                _ => StatusCategory::ToDo,
            },
            assignee: str_at(&body, "/assignee/name").map(str::to_string),
            web_url: Self::issue_url(source, key)?,
        })
    }

    // `fetch_issues` defaults to one `fetch_issue` per key; override it if your tracker can
    // read many issues in one request (one result per key, in order).

    // Contract 1.1: "Add comments" (`describe_comments`, `add_comment`) and "Process webhooks"
    // (`describe_events`, `parse_event`) default to "not supported by this provider".
    // Override them when your tracker can (see `plugins/sdk/wit/provider/v1/world.wit`).
}

export_provider!(MyTracker);
