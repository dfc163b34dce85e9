//! Custom Tracker provider plugin: any issue tracker, described by the source itself.
//!
//! Owns: the light key checks every tracker shares (trimmed, not empty, no whitespace or
//! control characters inside; the source's key pattern is applied by the HOST), the source's
//! URL templates (the only way to build links: there is no default), a connection test that
//! the base URL answers over HTTP, and an optional issue reader configured by settings: an
//! issue API URL template plus JSON pointers to the title, status and assignee.
//! Must not: guess URLs, reach anything but the base URL's origin, or keep state between calls.

mod events;

use testorchestrator_provider_sdk::serde_json::Value;
use testorchestrator_provider_sdk::*;

mod comments;

/// The host refuses canonical keys longer than this.
const MAX_KEY_BYTES: usize = 256;

struct Plugin;

impl Provider for Plugin {
    fn describe() -> ProviderInfo {
        let setting = |name: &str, label: &str, help: &str| Setting {
            name: name.into(),
            label: label.into(),
            help: help.into(),
            kind: SettingKind::Text,
            required: false,
        };
        let secret = |name: &str, label: &str, help: &str| AuthField {
            name: name.into(),
            label: label.into(),
            secret: true,
            required: true,
            help: Some(help.into()),
        };
        ProviderInfo {
            id: "custom".into(),
            version: "1.0.0".into(),
            name: "Custom Tracker".into(),
            key_hint: "Any format; set a key pattern on the source to validate it".into(),
            key_example: "REQ-42".into(),
            default_key_pattern: None,
            // A Custom Tracker has no default: links need the source's own issue URL template
            // (`issue-url` answers `unsupported` without it). The WIT field is not optional,
            // so it is empty here: nothing to suggest.
            default_issue_url_template: String::new(),
            default_create_url_template: None,
            base_url_example: "https://tracker.example.com".into(),
            auth_types: vec![
                AuthType {
                    id: "none".into(),
                    label: "None".into(),
                    fields: vec![],
                    scheme: CredentialScheme::None,
                },
                AuthType {
                    id: "api-token".into(),
                    label: "API Token".into(),
                    fields: vec![secret(
                        "api-token",
                        "API token",
                        "Sent as Authorization: Bearer <token>.",
                    )],
                    scheme: CredentialScheme::Bearer("api-token".into()),
                },
                AuthType {
                    id: "basic".into(),
                    label: "Basic Auth".into(),
                    fields: vec![
                        AuthField {
                            name: "username".into(),
                            label: "Username".into(),
                            secret: false,
                            required: true,
                            help: None,
                        },
                        secret(
                            "password",
                            "Password",
                            "Sent as Authorization: Basic base64(username:password).",
                        ),
                    ],
                    scheme: CredentialScheme::Basic(BasicScheme {
                        user_field: Some("username".into()),
                        password_field: "password".into(),
                    }),
                },
                AuthType {
                    id: "oauth2".into(),
                    label: "OAuth 2.0".into(),
                    fields: vec![secret(
                        "access-token",
                        "Access token",
                        "Sent as Authorization: Bearer <token>.",
                    )],
                    scheme: CredentialScheme::Bearer("access-token".into()),
                },
            ],
            settings: vec![
                setting(
                    "issue-api-url",
                    "Issue API URL",
                    "To read issue status: the URL of one issue as JSON, with {baseUrl} and {key}, e.g. \
                     {baseUrl}/api/issues/{key}. It must be on the base URL's host.",
                ),
                setting(
                    "title-pointer",
                    "Title pointer",
                    "JSON pointer to the title in that JSON, e.g. /fields/summary.",
                ),
                setting(
                    "status-pointer",
                    "Status pointer",
                    "JSON pointer to the status name, e.g. /fields/status/name.",
                ),
                setting(
                    "assignee-pointer",
                    "Assignee pointer",
                    "JSON pointer to the assignee's name, e.g. /fields/assignee/name (optional).",
                ),
                setting(
                    "status-done-values",
                    "Done statuses",
                    "Comma-separated status names that count as done, e.g. Closed, Resolved, Won't fix.",
                ),
                setting(
                    "status-in-progress-values",
                    "In-progress statuses",
                    "Comma-separated status names that count as in progress. Any other status is to do.",
                ),
            ]
            .into_iter()
            .chain(comments::settings())
            .chain(events::settings())
            .collect(),
            extra_origins: vec![],
        }
    }

    fn describe_events() -> Vec<EventScheme> {
        events::schemes()
    }

    fn parse_event(source: &Source, event: &Event) -> Result<Vec<EventChange>, ProviderError> {
        events::parse(source, event)
    }

    fn describe_comments() -> Option<CommentsInfo> {
        comments::describe()
    }

    fn add_comment(
        source: &Source,
        key: &str,
        markdown: &str,
    ) -> Result<CommentInfo, ProviderError> {
        comments::add(source, key, markdown)
    }

    fn normalize_key(source: &Source, key: &str) -> Result<String, ProviderError> {
        let text = key.trim();
        if text.is_empty() {
            return Err(invalid("enter an issue key"));
        }
        let key = if text.starts_with("https://") || text.starts_with("http://") {
            key_from_url(source, text)?
        } else {
            text.to_string()
        };
        check_key(&key)?;
        Ok(key)
    }

    fn issue_url(source: &Source, key: &str) -> Result<String, ProviderError> {
        let template = source.issue_url_template.as_deref().ok_or_else(|| {
            ProviderError::Unsupported(
                "this Custom Tracker source has no issue URL template: set one on the source, \
                 e.g. {baseUrl}/issues/{key}"
                    .into(),
            )
        })?;
        Ok(render_template(template, &source.base_url, Some(key)))
    }

    fn create_url(source: &Source) -> Result<String, ProviderError> {
        let template = source.create_url_template.as_deref().ok_or_else(|| {
            ProviderError::Unsupported(
                "this Custom Tracker source has no create URL template: set one on the source, \
                 e.g. {baseUrl}/issues/new"
                    .into(),
            )
        })?;
        Ok(render_template(template, &source.base_url, None))
    }

    /// GETs the base URL (with the credentials of the auth type, if any) and reports what
    /// answered. Redirects within the base URL's origin are followed by the host.
    fn test_connection(source: &Source) -> Result<ConnectionInfo, ProviderError> {
        let url = source.base_url.clone();
        let mut request = get(url.as_str()).header("accept", "*/*");
        if source.auth_type == "none" {
            request = request.anonymous();
        }
        let resp = request.send().map_err(|e| connection_error(&url, e))?;
        let status = resp.status;
        match status {
            200..=399 => {
                let mut detail = format!("HTTP {status} from {url}");
                if let Some(location) = resp.header("location") {
                    detail.push_str(&format!(", redirecting to {location}"));
                }
                Ok(ConnectionInfo {
                    account: account(source),
                    detail: Some(detail),
                })
            }
            401 => {
                let asks = resp
                    .header("www-authenticate")
                    .and_then(|v| v.split_whitespace().next())
                    .map(|scheme| format!("; it asks for {scheme} authentication"))
                    .unwrap_or_default();
                Err(ProviderError::Unauthorized(if source.auth_type == "none" {
                    format!(
                        "HTTP 401 from {url}: the tracker requires credentials{asks}; choose an auth type and enter them"
                    )
                } else {
                    format!("HTTP 401 from {url}: the tracker rejected the credentials{asks}")
                }))
            }
            403 => Err(ProviderError::Forbidden(format!(
                "HTTP 403 from {url}: the tracker refused access; check the account's permissions"
            ))),
            404 => Err(ProviderError::NotFound(format!(
                "HTTP 404 from {url}: nothing is at the base URL; check it"
            ))),
            _ => Err(match resp.rate_limit() {
                Some(limit) => ProviderError::RateLimited(limit),
                None if status >= 500 => {
                    ProviderError::Provider(format!("HTTP {status} from {url}: the tracker failed"))
                }
                None => ProviderError::Provider(format!("unexpected HTTP {status} from {url}")),
            }),
        }
    }

    fn fetch_issue(source: &Source, key: &str) -> Result<Issue, ProviderError> {
        let config = ReadConfig::of(source)?;
        config.fetch(source, key.trim())
    }

    /// One request per key (a generic tracker has no batch endpoint we could know of); an
    /// unconfigured source fails the whole batch once instead of every key.
    fn fetch_issues(
        source: &Source,
        keys: &[String],
    ) -> Result<Vec<Result<Issue, ProviderError>>, ProviderError> {
        let config = ReadConfig::of(source)?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match config.fetch(source, key.trim()) {
                Err(e) if is_batch_fatal(&e) => return Err(e),
                other => out.push(other),
            }
        }
        Ok(out)
    }
}

/// What a failed connection test tells the admin: a redirect leaving the origin (where it
/// points), a TLS failure, a refused connection, a timeout.
fn connection_error(url: &str, e: ProviderError) -> ProviderError {
    // The SDK turns the host's `denied` (a redirect off the allow-list) into `unreachable`
    // with the host's text, which names the redirect's target origin.
    match e {
        ProviderError::Unreachable(m) if m.contains("redirected to") => {
            let target = m
                .split("redirected to ")
                .nth(1)
                .and_then(|rest| rest.split(", which").next())
                .unwrap_or("another origin");
            ProviderError::InvalidInput(format!(
                "{url} redirects to {target}, outside this source's base URL: if the tracker lives \
                 there, use that as the base URL (a redirect to a sign-in page means the request was \
                 not authenticated)"
            ))
        }
        ProviderError::Unreachable(m) => {
            let lower = m.to_ascii_lowercase();
            let tls = [
                "certificate",
                "tls",
                "ssl",
                "handshake",
                "corrupt message",
                "peer",
            ]
            .iter()
            .any(|w| lower.contains(w));
            if tls {
                ProviderError::Unreachable(format!("TLS failure talking to {url}: {m}"))
            } else {
                ProviderError::Unreachable(format!("cannot reach {url}: {m}"))
            }
        }
        other => other,
    }
}

/// Who a connection is made as, for the connection test.
fn account(source: &Source) -> String {
    match source.auth_type.as_str() {
        "none" => "anonymous".into(),
        "basic" => auth_field(source, "username")
            .unwrap_or("basic auth")
            .to_string(),
        "api-token" => "API token".into(),
        "oauth2" => "OAuth 2.0 access token".into(),
        other => other.to_string(),
    }
}

/// The issue reader's settings, checked.
struct ReadConfig<'a> {
    api_template: &'a str,
    title: &'a str,
    status: &'a str,
    assignee: Option<&'a str>,
    done: Vec<&'a str>,
    in_progress: Vec<&'a str>,
}

impl<'a> ReadConfig<'a> {
    fn of(source: &'a Source) -> Result<ReadConfig<'a>, ProviderError> {
        let (Some(api_template), Some(title), Some(status)) = (
            setting(source, "issue-api-url"),
            setting(source, "title-pointer"),
            setting(source, "status-pointer"),
        ) else {
            return Err(ProviderError::Unsupported(
                "reading issues from this Custom Tracker source needs the settings issue-api-url \
                 (e.g. {baseUrl}/api/issues/{key}), title-pointer and status-pointer"
                    .into(),
            ));
        };
        let assignee = setting(source, "assignee-pointer");
        for (name, pointer) in [
            ("title-pointer", Some(title)),
            ("status-pointer", Some(status)),
            ("assignee-pointer", assignee),
        ] {
            if let Some(p) = pointer
                && !p.starts_with('/')
            {
                return Err(invalid(format!(
                    "the setting {name} must be a JSON pointer starting with \"/\", e.g. /fields/status/name (got {p:?})"
                )));
            }
        }
        if !api_template.contains("{key}") {
            return Err(invalid(
                "the setting issue-api-url must contain {key}, e.g. {baseUrl}/api/issues/{key}",
            ));
        }
        let list = |name| {
            setting(source, name)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(ReadConfig {
            api_template,
            title,
            status,
            assignee,
            done: list("status-done-values"),
            in_progress: list("status-in-progress-values"),
        })
    }

    fn fetch(&self, source: &Source, key: &str) -> Result<Issue, ProviderError> {
        let url = render_template(self.api_template, &source.base_url, Some(key));
        let base_origin = origin(&source.base_url).ok_or_else(|| {
            invalid(format!(
                "the base URL {} is not an http(s) URL",
                source.base_url
            ))
        })?;
        match origin(&url) {
            None => {
                return Err(invalid(format!(
                    "the issue API URL renders to {url:?}, which is not an absolute http(s) URL; start the setting issue-api-url with {{baseUrl}}"
                )));
            }
            Some(o) if o != base_origin => {
                return Err(invalid(format!(
                    "the issue API URL {url} is on {o}, but this source may only call its base URL's origin {base_origin}; \
                     put the issue API on the base URL's host (start issue-api-url with {{baseUrl}})"
                )));
            }
            Some(_) => {}
        }
        let mut request = get(url.as_str());
        if source.auth_type == "none" {
            request = request.anonymous();
        }
        let resp = request.send()?;
        if !resp.is_success() {
            return Err(match resp.status {
                404 => ProviderError::NotFound(format!(
                    "issue {key} was not found (HTTP 404 from {url})"
                )),
                401 => ProviderError::Unauthorized(format!(
                    "HTTP 401 from {url}: the tracker rejected the credentials (or requires some)"
                )),
                403 => ProviderError::Forbidden(format!(
                    "HTTP 403 from {url}: no access to issue {key}"
                )),
                _ => status_error(&resp, &format!("issue {key} ({url})")),
            });
        }
        let doc = resp.json()?;
        let text = |pointer: &str, what: &str| -> Result<Option<String>, ProviderError> {
            match doc.pointer(pointer) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
                Some(_) => Err(ProviderError::Provider(format!(
                    "the {what} pointer {pointer} points at an object or list in the answer for issue {key}, \
                     not at text; point at a field inside it (e.g. {pointer}/name)"
                ))),
            }
        };
        let missing = |what: &str, pointer: &str| {
            ProviderError::Provider(format!(
                "the answer for issue {key} from {url} has no {what} at {pointer}: {}",
                excerpt(&resp.text())
            ))
        };
        let title = text(self.title, "title")?.ok_or_else(|| missing("title", self.title))?;
        let status = text(self.status, "status")?.ok_or_else(|| missing("status", self.status))?;
        let assignee = match self.assignee {
            Some(p) => text(p, "assignee")?.filter(|s| !s.trim().is_empty()),
            None => None,
        };
        let is = |list: &[&str]| list.iter().any(|v| v.eq_ignore_ascii_case(status.trim()));
        let status_category = if is(&self.done) {
            StatusCategory::Done
        } else if is(&self.in_progress) {
            StatusCategory::InProgress
        } else {
            StatusCategory::ToDo
        };
        // Without an issue URL template the best web link is the tracker itself.
        let web_url = match &source.issue_url_template {
            Some(t) => render_template(t, &source.base_url, Some(key)),
            None => source.base_url.clone(),
        };
        Ok(Issue {
            key: key.to_string(),
            title,
            status,
            status_category,
            assignee,
            web_url,
        })
    }
}

fn invalid(message: impl Into<String>) -> ProviderError {
    ProviderError::InvalidInput(message.into())
}

/// A key is anything without whitespace, control or invisible characters, at most 256 bytes.
fn check_key(key: &str) -> Result<(), ProviderError> {
    if key.is_empty() {
        return Err(invalid("enter an issue key"));
    }
    if let Some(c) = key.chars().find(|c| c.is_whitespace()) {
        return Err(invalid(format!(
            "{key:?} is not an issue key: it contains whitespace (U+{:04X}); keys have none inside",
            c as u32
        )));
    }
    if let Some(c) = key
        .chars()
        .find(|c| c.is_control() || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'))
    {
        return Err(invalid(format!(
            "{key:?} is not an issue key: it contains the invisible or control character U+{:04X}",
            c as u32
        )));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(invalid(format!(
            "the issue key is longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Reads the key out of a pasted issue URL by matching the source's issue URL template.
fn key_from_url(source: &Source, url: &str) -> Result<String, ProviderError> {
    let Some(template) = source
        .issue_url_template
        .as_deref()
        .filter(|t| t.contains("{key}"))
    else {
        return Err(invalid(
            "this looks like a link, not an issue key: enter the key itself (this source has no \
             issue URL template to read keys from links)",
        ));
    };
    let rendered = render_template(template, &source.base_url, Some("\u{0}"));
    let (prefix, suffix) = rendered
        .split_once("%00")
        .expect("the placeholder is rendered");
    let mismatch = || {
        invalid(format!(
            "this link does not match this source's issue URL template ({}); enter the issue key itself",
            render_template(template, &source.base_url, Some("KEY"))
        ))
    };
    if url.len() < prefix.len()
        || !url.is_char_boundary(prefix.len())
        || !url[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        return Err(mismatch());
    }
    let rest = &url[prefix.len()..];
    let raw = if suffix.is_empty() {
        // The key runs to the next path, query or fragment delimiter.
        let stops: &[char] = if prefix.contains('?') {
            &['&', '#']
        } else {
            &['/', '?', '#']
        };
        rest.split(stops).next().unwrap_or("")
    } else {
        match rest.find(suffix) {
            Some(end) => &rest[..end],
            None => return Err(mismatch()),
        }
    };
    if raw.is_empty() {
        return Err(mismatch());
    }
    Ok(percent_decode(raw))
}

/// `scheme://host:port` of an absolute http(s) URL, host lower-cased, default ports filled in.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (format!("[{h}]"), after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (host_port.to_string(), None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port: u16 = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    Some(format!("{scheme}://{}:{port}", host.to_ascii_lowercase()))
}

export_provider!(Plugin);
