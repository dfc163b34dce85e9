//! Jira Cloud provider plugin (REST API v3).
//!
//! Facts from `../shared/providers.md` section 1:
//! - the API root is `{baseUrl}/rest/api/3` (a path prefix such as `https://jira.example.com/jira`
//!   is kept), or `{api-url}/rest/api/3` when the "api-url" setting is set: OAuth 2.0 (3LO)
//!   access tokens and scoped API tokens only work through the gateway
//!   `https://api.atlassian.com/ex/jira/{cloudId}`;
//! - Jira treats rejected or missing credentials as *anonymous* on most endpoints: an issue
//!   answers 404 and a search answers an empty list, only `/myself` answers 401. So every
//!   "not found" is double-checked against `/myself` before it is reported;
//! - the batch read is one JQL search, `POST /rest/api/3/search/jql` with `key in (...)`
//!   (the enhanced search that replaced `/rest/api/3/search`); JQL rejects keys of issues that
//!   do not exist (or are invisible) with a 400 naming them, so those keys are dropped and the
//!   search is retried;
//! - 429 carries `Retry-After` (seconds) and `X-RateLimit-Reset` as an ISO-8601 timestamp
//!   (not epoch seconds, so the SDK's reader cannot parse it); some 503s carry `Retry-After`.

use std::collections::HashMap;

mod events;

use testorchestrator_provider_sdk::serde_json::{Value, json};
use testorchestrator_provider_sdk::*;

mod comments;

struct Jira;

/// The fields a link shows: title, status (with its category) and assignee.
const FIELDS: [&str; 3] = ["summary", "status", "assignee"];

/// Keys per JQL search. The enhanced search returns at most 100 issues per page when fields
/// other than `id`/`key` are asked for; larger pages are still followed via `nextPageToken`.
const CHUNK: usize = 100;

/// The gateway OAuth 2.0 and scoped tokens must use.
const GATEWAY: &str = "https://api.atlassian.com";

impl Provider for Jira {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            id: "jira-cloud".into(),
            version: "1.0.0".into(),
            name: "Jira Cloud".into(),
            key_hint: "Project key + issue number, e.g. PROJ-123 (or paste the issue's link)".into(),
            key_example: "PROJ-123".into(),
            default_key_pattern: Some("^[A-Z][A-Z0-9_]+-[1-9][0-9]*$".into()),
            default_issue_url_template: "{baseUrl}/browse/{key}".into(),
            default_create_url_template: Some("{baseUrl}/secure/CreateIssue!default.jspa".into()),
            base_url_example: "https://your-site.atlassian.net".into(),
            auth_types: vec![
                AuthType {
                    id: "api-token".into(),
                    label: "API Token".into(),
                    fields: vec![
                        field("email", "Email", false, Some("The Atlassian account the token belongs to.")),
                        field(
                            "api-token",
                            "API token",
                            true,
                            Some(
                                "Create one at id.atlassian.com > Security > API tokens. A scoped token \
                                 only works through the API gateway: also set API URL.",
                            ),
                        ),
                    ],
                    scheme: CredentialScheme::Basic(BasicScheme {
                        user_field: Some("email".into()),
                        password_field: "api-token".into(),
                    }),
                },
                AuthType {
                    id: "oauth2".into(),
                    label: "OAuth 2.0".into(),
                    fields: vec![field(
                        "access-token",
                        "Access token",
                        true,
                        Some(
                            "An OAuth 2.0 (3LO) access token with the read:jira-user and read:jira-work \
                             scopes. Requires API URL https://api.atlassian.com/ex/jira/{cloudId}.",
                        ),
                    )],
                    scheme: CredentialScheme::Bearer("access-token".into()),
                },
                AuthType {
                    id: "basic".into(),
                    label: "Basic Auth".into(),
                    fields: vec![
                        field("username", "Username", false, None),
                        field(
                            "password",
                            "Password",
                            true,
                            Some("Self-managed Jira only: Jira Cloud does not accept passwords, use an API token."),
                        ),
                    ],
                    scheme: CredentialScheme::Basic(BasicScheme {
                        user_field: Some("username".into()),
                        password_field: "password".into(),
                    }),
                },
                AuthType {
                    id: "none".into(),
                    label: "None".into(),
                    fields: vec![],
                    scheme: CredentialScheme::None,
                },
            ],
            settings: vec![Setting {
                name: "api-url".into(),
                label: "API URL".into(),
                help: "Where the REST API lives when it is not the base URL: \
                       https://api.atlassian.com/ex/jira/{cloudId} for OAuth 2.0 and scoped API tokens. \
                       Issue links still use the base URL."
                    .into(),
                kind: SettingKind::Url,
                required: false,
            }],
            extra_origins: vec![credentialed(GATEWAY)],
        }
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
        let input = key.trim();
        if input.is_empty() {
            return Err(invalid("enter a Jira issue key such as PROJ-123"));
        }
        if strip_scheme(input).is_some() {
            return key_from_url(source, input);
        }
        parse_key(input)
    }

    fn describe_events() -> Vec<EventScheme> {
        events::schemes()
    }

    fn parse_event(source: &Source, event: &Event) -> Result<Vec<EventChange>, ProviderError> {
        events::parse(source, event)
    }

    fn test_connection(source: &Source) -> Result<ConnectionInfo, ProviderError> {
        let api = api_root(source)?;
        if source.auth_type == "none" {
            return anonymous_connection(source, &api);
        }
        let resp = get(format!("{api}/myself")).send()?;
        if resp.status == 404 {
            return Err(ProviderError::NotFound(format!(
                "there is no Jira REST API at {api} (HTTP 404 for /myself): check the base URL{}",
                if setting(source, "api-url").is_some() {
                    " and the API URL"
                } else {
                    ""
                }
            )));
        }
        if !resp.is_success() {
            return Err(jira_error(source, &resp, "the current user (/myself)"));
        }
        let me = resp.json().map_err(|_| {
            ProviderError::Provider(format!(
                "{api}/myself answered HTTP {} with something that is not Jira's JSON: check the base URL",
                resp.status
            ))
        })?;
        let account = account_name(&me).ok_or_else(|| {
            ProviderError::Provider(format!(
                "{api}/myself answered JSON without an account: check the base URL"
            ))
        })?;
        let mut detail = format!("Jira site {}", source.base_url);
        if setting(source, "api-url").is_some() {
            detail.push_str(&format!(", API {api}"));
        }
        if me.get("active").and_then(Value::as_bool) == Some(false) {
            detail.push_str("; the account is deactivated");
        }
        if let Some(note) = check_issue_access(source, &api, &account)? {
            detail.push_str(&format!("; {note}"));
        }
        Ok(ConnectionInfo {
            account,
            detail: Some(detail),
        })
    }

    fn fetch_issue(source: &Source, key: &str) -> Result<Issue, ProviderError> {
        let key = parse_key(key.trim())?;
        let api = api_root(source)?;
        match get_issue(source, &api, &key)? {
            Some(issue) => Ok(issue),
            None => Err(not_found(&key, &whoami(source, &api)?)),
        }
    }

    fn fetch_issues(
        source: &Source,
        keys: &[String],
    ) -> Result<Vec<Result<Issue, ProviderError>>, ProviderError> {
        let api = api_root(source)?;
        // Canonical key per input (or why it is not one), and the distinct keys to search for.
        let canonical: Vec<Result<String, ProviderError>> =
            keys.iter().map(|k| parse_key(k.trim())).collect();
        let mut wanted: Vec<String> = Vec::new();
        for key in canonical.iter().flatten() {
            if !wanted.contains(key) {
                wanted.push(key.clone());
            }
        }
        let mut found: HashMap<String, Issue> = HashMap::new();
        for chunk in wanted.chunks(CHUNK) {
            match search_chunk(source, &api, chunk, &mut found) {
                Err(e) if is_batch_refusal(&e) => {
                    let cause = format!("the issue search failed: {}", error_message(&e));
                    return fetch_each(keys, &cause, |key| Jira::fetch_issue(source, key));
                }
                other => other?,
            }
        }
        // Anything missing may be a real 404 or the credentials being ignored (anonymous).
        let who = if wanted.iter().any(|k| !found.contains_key(k)) {
            Some(whoami(source, &api)?)
        } else {
            None
        };
        Ok(canonical
            .into_iter()
            .map(|key| {
                let key = key?;
                match found.get(&key) {
                    Some(issue) => Ok(issue.clone()),
                    None => Err(not_found(&key, who.as_deref().unwrap_or("this account"))),
                }
            })
            .collect())
    }
}

export_provider!(Jira);

fn field(name: &str, label: &str, secret: bool, help: Option<&str>) -> AuthField {
    AuthField {
        name: name.into(),
        label: label.into(),
        secret,
        required: true,
        help: help.map(Into::into),
    }
}

fn invalid(message: impl Into<String>) -> ProviderError {
    ProviderError::InvalidInput(message.into())
}

// ---------------------------------------------------------------------------------------------
// Keys

/// Parses `PROJ-123` (any case) into its canonical form. Project keys start with a letter and
/// hold letters, digits and `_` (Cloud: uppercase alphanumerics, 2-10 characters; Data Center
/// and migrated sites also allow `_` and longer keys); the number is a positive integer.
fn parse_key(text: &str) -> Result<String, ProviderError> {
    if text.chars().any(char::is_whitespace) {
        return Err(invalid(format!(
            "{text:?} contains a space: a Jira key is written without spaces, e.g. PROJ-123"
        )));
    }
    let Some((project, number)) = text.rsplit_once('-') else {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(format!(
                "{text:?} is only a number: a Jira key is the project key, a dash and the number, e.g. PROJ-{text}"
            )));
        }
        return Err(invalid(format!(
            "{text:?} is not a Jira key: expected the project key, a dash and the issue number, e.g. PROJ-123"
        )));
    };
    if project.is_empty() {
        return Err(invalid(format!(
            "{text:?} has no project key before \"-{number}\", e.g. PROJ-{number}"
        )));
    }
    if !project.is_ascii() {
        return Err(invalid(format!(
            "the project key {project:?} contains characters outside A-Z, 0-9 and _ \
             (a look-alike letter from another alphabet?)"
        )));
    }
    if !project.as_bytes()[0].is_ascii_alphabetic() {
        return Err(invalid(format!(
            "the project key {project:?} must start with a letter"
        )));
    }
    if let Some(bad) = project
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(invalid(format!(
            "the project key {project:?} contains {bad:?}: project keys hold only letters, digits and _"
        )));
    }
    if project.len() < 2 {
        return Err(invalid(format!(
            "the project key {project:?} is too short: Jira project keys have at least 2 characters"
        )));
    }
    if project.len() > 255 {
        return Err(invalid("the project key is too long"));
    }
    let project = project.to_ascii_uppercase();
    if number.is_empty() {
        return Err(invalid(format!(
            "the issue number is missing after \"{project}-\", e.g. {project}-123"
        )));
    }
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        if number.chars().all(char::is_numeric) {
            return Err(invalid(format!(
                "the issue number {number:?} must be written with the digits 0-9"
            )));
        }
        return Err(invalid(format!(
            "{number:?} is not an issue number: expected e.g. {project}-123"
        )));
    }
    if number.bytes().all(|b| b == b'0') {
        return Err(invalid(format!(
            "{project}-{number} cannot exist: issue numbers start at 1"
        )));
    }
    if number.starts_with('0') {
        return Err(invalid(format!(
            "the issue number {number:?} has a leading zero: write {project}-{}",
            number.trim_start_matches('0')
        )));
    }
    let n: u64 = number
        .parse()
        .map_err(|_| invalid(format!("the issue number {number} is too large")))?;
    Ok(format!("{project}-{n}"))
}

/// `https://` or `http://` stripped (case-insensitively), if the text is a URL.
fn strip_scheme(text: &str) -> Option<&str> {
    ["https://", "http://"].iter().find_map(|scheme| {
        text.get(..scheme.len())
            .filter(|head| head.eq_ignore_ascii_case(scheme))
            .map(|_| &text[scheme.len()..])
    })
}

/// The lower-case host (without user info and port) of an absolute URL.
fn host_of(url: &str) -> String {
    let rest = strip_scheme(url).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if host_port.starts_with('[') {
        host_port
            .split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or("").to_string()
    };
    host.to_ascii_lowercase()
}

/// Reads the key out of a pasted issue link: `.../browse/PROJ-7`, `...?selectedIssue=PROJ-7`
/// (boards, backlogs, the issue navigator) or `.../issues/PROJ-7`.
fn key_from_url(source: &Source, url: &str) -> Result<String, ProviderError> {
    let (host, own) = (host_of(url), host_of(&source.base_url));
    if host != own {
        return Err(invalid(format!(
            "that link is to {host}, but this source is the Jira site {own}"
        )));
    }
    let query = url
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(""))
        .unwrap_or("");
    for pair in query.split('&') {
        if let Some((name, value)) = pair.split_once('=')
            && name == "selectedIssue"
            && !value.is_empty()
        {
            return parse_key(value);
        }
    }
    let segments = url_path_segments(&format!("https://{}", strip_scheme(url).unwrap_or(url)))
        .unwrap_or_default();
    for pair in segments.windows(2) {
        if pair[0] == "browse" || pair[0] == "issues" {
            return parse_key(&pair[1]);
        }
    }
    Err(invalid(format!(
        "no issue key found in {url}: paste the issue's own link ({}/browse/PROJ-123) or its key",
        source.base_url
    )))
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// The REST API root (`.../rest/api/3`): the "api-url" setting if set, else the base URL.
fn api_root(source: &Source) -> Result<String, ProviderError> {
    if let Some(api) = setting(source, "api-url") {
        let api = api.trim_end_matches('/');
        return Ok(if api.ends_with("/rest/api/3") {
            api.to_string()
        } else {
            format!("{api}/rest/api/3")
        });
    }
    if source.auth_type == "oauth2" && host_of(&source.base_url).ends_with(".atlassian.net") {
        return Err(invalid(
            "OAuth 2.0 access tokens only work through the Atlassian API gateway: set API URL to \
             https://api.atlassian.com/ex/jira/{cloudId} (GET https://api.atlassian.com/oauth/token/accessible-resources \
             lists the cloudId of each site the token can reach)",
        ));
    }
    Ok(format!(
        "{}/rest/api/3",
        source.base_url.trim_end_matches('/')
    ))
}

/// Reads one issue; `None` for Jira's 404 (which also means "invisible to this account").
fn get_issue(source: &Source, api: &str, key: &str) -> Result<Option<Issue>, ProviderError> {
    let resp = get(format!(
        "{api}/issue/{}?fields={}",
        encode_component(key),
        FIELDS.join(",")
    ))
    .send()?;
    if resp.status == 404 {
        return Ok(None);
    }
    if !resp.is_success() {
        return Err(jira_error(source, &resp, &format!("issue {key}")));
    }
    issue_from_json(source, &resp.json()?, key).map(Some)
}

/// One JQL search for up to [`CHUNK`] keys; puts what it finds into `found` by requested key.
fn search_chunk(
    source: &Source,
    api: &str,
    chunk: &[String],
    found: &mut HashMap<String, Issue>,
) -> Result<(), ProviderError> {
    let mut pending: Vec<String> = chunk.to_vec();
    // Keys JQL refused as moved: read one by one (GET /issue follows a moved key).
    let mut one_by_one: Vec<String> = Vec::new();
    let mut returned: Vec<Issue> = Vec::new();
    let mut retries = 0;
    'search: while !pending.is_empty() {
        let jql = format!(
            "key in ({})",
            pending
                .iter()
                .map(|k| format!("\"{k}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut page_token: Option<String> = None;
        loop {
            let mut body = json!({ "jql": jql, "fields": FIELDS, "maxResults": pending.len() });
            if let Some(token) = &page_token {
                body["nextPageToken"] = json!(token);
            }
            let resp = post_json(format!("{api}/search/jql"), &body).send()?;
            if resp.status == 400 && page_token.is_none() && retries < 3 {
                let (missing, moved) = keys_named_in_jql_errors(&resp, &pending);
                if !missing.is_empty() || !moved.is_empty() {
                    // Jira names every key it refuses at once; drop them and search again.
                    pending.retain(|k| !missing.contains(k) && !moved.contains(k));
                    one_by_one.extend(moved);
                    retries += 1;
                    continue 'search;
                }
            }
            if !resp.is_success() {
                return Err(jira_error(source, &resp, "the issue search"));
            }
            let page = resp.json()?;
            for raw in page
                .get("issues")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let key = str_at(raw, "/key").unwrap_or_default().to_ascii_uppercase();
                returned.push(issue_from_json(source, raw, &key)?);
            }
            page_token = str_at(&page, "/nextPageToken")
                .filter(|t| !t.is_empty())
                .map(String::from);
            let last = page
                .get("isLast")
                .and_then(Value::as_bool)
                .unwrap_or(page_token.is_none());
            if last || page_token.is_none() {
                break 'search;
            }
        }
    }
    let mut unmatched: Vec<Issue> = Vec::new();
    for issue in returned {
        if pending.contains(&issue.key) {
            found.insert(issue.key.clone(), issue);
        } else {
            unmatched.push(issue);
        }
    }
    // An issue moved to another project keeps answering to its old key, under its new one: the
    // search returns it with a key we did not ask for. Those keys are read one by one.
    if !unmatched.is_empty() {
        one_by_one.extend(pending.iter().filter(|k| !found.contains_key(*k)).cloned());
    }
    for key in one_by_one {
        if let Some(issue) = get_issue(source, api, &key)? {
            found.insert(key, issue);
        }
    }
    Ok(())
}

/// Keys of `pending` that a JQL 400 names: `(does not exist or invalid, moved)`.
fn keys_named_in_jql_errors(resp: &HttpResponse, pending: &[String]) -> (Vec<String>, Vec<String>) {
    let (mut missing, mut moved) = (Vec::new(), Vec::new());
    let Ok(body) = resp.json() else {
        return (missing, moved);
    };
    let messages = body
        .get("errorMessages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    for message in messages {
        // "An issue with key 'PROJ-9' does not exist for field 'key'."
        // "The issue key 'PROJ-9' for field 'key' is invalid."
        // "Operator 'in' cannot be applied to moved issue key 'PROJ-9'."
        let Some(named) = message.split('\'').nth(1).map(str::to_ascii_uppercase) else {
            continue;
        };
        let named = if message.contains("moved issue key") {
            message
                .rsplit('\'')
                .nth(1)
                .map(str::to_ascii_uppercase)
                .unwrap_or(named)
        } else {
            named
        };
        if !pending.contains(&named) {
            continue;
        }
        if message.contains("moved issue key") {
            moved.push(named);
        } else if message.contains("does not exist") || message.contains("is invalid") {
            missing.push(named);
        }
    }
    (missing, moved)
}

/// Builds an [`Issue`] from an issue bean (`GET /issue/{key}` or one search hit).
fn issue_from_json(source: &Source, raw: &Value, asked: &str) -> Result<Issue, ProviderError> {
    // A moved issue answers under its new key: that is the key that is canonical now.
    let key = str_at(raw, "/key")
        .map(str::to_ascii_uppercase)
        .unwrap_or_else(|| asked.to_string());
    let status = str_at(raw, "/fields/status/name").ok_or_else(|| {
        ProviderError::Provider(format!(
            "Jira's answer for issue {key} has no fields.status.name"
        ))
    })?;
    let category = match str_at(raw, "/fields/status/statusCategory/key") {
        Some("new") => StatusCategory::ToDo,
        Some("indeterminate") => StatusCategory::InProgress,
        Some("done") => StatusCategory::Done,
        // "undefined" (No Category) or a missing key: fall back on the category id.
        _ => match raw
            .pointer("/fields/status/statusCategory/id")
            .and_then(Value::as_u64)
        {
            Some(4) => StatusCategory::InProgress,
            Some(3) => StatusCategory::Done,
            _ => StatusCategory::ToDo,
        },
    };
    Ok(Issue {
        title: str_at(raw, "/fields/summary")
            .unwrap_or_default()
            .to_string(),
        status: status.to_string(),
        status_category: category,
        assignee: str_at(raw, "/fields/assignee/displayName")
            .filter(|n| !n.trim().is_empty())
            .map(String::from),
        web_url: Jira::issue_url(source, &key)?,
        key,
    })
}

/// "Mia Krystof (mia@example.com)", "Mia Krystof" or the account id.
fn account_name(me: &Value) -> Option<String> {
    let name = str_at(me, "/displayName").filter(|n| !n.is_empty());
    let email = str_at(me, "/emailAddress").filter(|e| !e.is_empty());
    match (name, email) {
        (Some(n), Some(e)) => Some(format!("{n} ({e})")),
        (Some(n), None) => Some(n.to_string()),
        (None, Some(e)) => Some(e.to_string()),
        (None, None) => str_at(me, "/accountId")
            .or_else(|| str_at(me, "/name"))
            .map(String::from),
    }
}

/// The connection test of a public site: `GET /serverInfo` "can be accessed anonymously"
/// (Jira Cloud platform OpenAPI, operation `getServerInfo`); `/myself` would answer 401.
fn anonymous_connection(source: &Source, api: &str) -> Result<ConnectionInfo, ProviderError> {
    let resp = get(format!("{api}/serverInfo")).send()?;
    if resp.status == 404 {
        return Err(ProviderError::NotFound(format!(
            "there is no Jira REST API at {api} (HTTP 404 for /serverInfo): check the base URL"
        )));
    }
    if !resp.is_success() {
        return Err(jira_error(
            source,
            &resp,
            "the server information (/serverInfo)",
        ));
    }
    let info = resp.json().map_err(|_| {
        ProviderError::Provider(format!(
            "{api}/serverInfo answered HTTP {} with something that is not Jira's JSON: check the base URL",
            resp.status
        ))
    })?;
    let title = str_at(&info, "/serverTitle").unwrap_or("Jira");
    let kind = str_at(&info, "/deploymentType").unwrap_or("Jira");
    let version = str_at(&info, "/version").unwrap_or("unknown version");
    Ok(ConnectionInfo {
        account: "anonymous".into(),
        detail: Some(format!(
            "{title} ({kind} {version}); only issues visible to anonymous users can be read"
        )),
    })
}

/// Proves the credentials can read issues, not only the user: `GET /mypermissions` with
/// `BROWSE_PROJECTS` (operation `getMyPermissions`, OAuth scope `read:jira-work`, the scope
/// issue reads need; without a project it says whether the account may browse any project).
/// `/myself` proved the connection, so this probe is advisory: only a refusal (401/403, or an
/// answer that the account may browse no project) fails the test; any other failure (a 404 or
/// 5xx, a server without the route) is a note for the detail.
fn check_issue_access(
    source: &Source,
    api: &str,
    account: &str,
) -> Result<Option<String>, ProviderError> {
    let unchecked = |e: &ProviderError| {
        Some(format!(
            "the Browse projects permission was not checked ({})",
            error_message(e)
        ))
    };
    let resp = match get(format!("{api}/mypermissions?permissions=BROWSE_PROJECTS")).send() {
        Ok(resp) => resp,
        Err(e) => return Ok(unchecked(&e)),
    };
    if !resp.is_success() {
        return match jira_error(source, &resp, "the account's permissions (/mypermissions)") {
            e @ (ProviderError::Unauthorized(_) | ProviderError::Forbidden(_)) => Err(e),
            other => Ok(unchecked(&other)),
        };
    }
    let allowed = match resp.json() {
        Ok(body) => body
            .pointer("/permissions/BROWSE_PROJECTS/havePermission")
            .and_then(Value::as_bool),
        Err(e) => return Ok(unchecked(&e)),
    };
    if allowed == Some(false) {
        return Err(ProviderError::Forbidden(format!(
            "connected as {account}, but the account has the Browse projects permission in no \
             project, so it cannot read any issue: grant it Browse projects in the projects to link"
        )));
    }
    Ok(None)
}

/// A 401 from the API gateway for a token that is valid but lacks the scope of the operation
/// (`{"code":401,"message":"Unauthorized; scope does not match"}`).
fn scope_mismatch(resp: &HttpResponse) -> bool {
    resp.status == 401
        && error_text(resp)
            .to_ascii_lowercase()
            .contains("scope does not match")
}

/// What to do about a token whose scopes do not cover issue reads.
fn missing_scope_message(source: &Source, what: &str) -> String {
    let token = if source.auth_type == "oauth2" {
        "OAuth 2.0 access token"
    } else {
        "scoped API token"
    };
    format!(
        "the {token} lacks the read:jira-work scope (Jira answered \"scope does not match\" for \
         {what}): it can sign in but not read issues; create it again with read:jira-work and \
         read:jira-user"
    )
}

/// After a "not found": checks the credentials are being accepted, since Jira answers 404 (and
/// empty searches) to anonymous requests. Returns who we are, or the real problem.
fn whoami(source: &Source, api: &str) -> Result<String, ProviderError> {
    if source.auth_type == "none" {
        return Ok("anonymous users".into());
    }
    let resp = get(format!("{api}/myself")).send()?;
    if resp.status == 401 {
        return Err(ProviderError::Unauthorized(format!(
            "{} Jira answered the issue request as an anonymous user, which is why it looked not found.",
            unauthorized_message(source, &resp)
        )));
    }
    if !resp.is_success() {
        if let Some(limit) = rate_limit(&resp) {
            return Err(ProviderError::RateLimited(limit));
        }
        return Ok("this account".into());
    }
    Ok(resp
        .json()
        .ok()
        .and_then(|me| account_name(&me))
        .map(|name| format!("the account {name}"))
        .unwrap_or_else(|| "this account".into()))
}

fn not_found(key: &str, who: &str) -> ProviderError {
    ProviderError::NotFound(format!(
        "issue {key} does not exist, or it is hidden from {who} (Jira does not say which)"
    ))
}

/// Maps an unsuccessful Jira answer to an error.
fn jira_error(source: &Source, resp: &HttpResponse, what: &str) -> ProviderError {
    if let Some(limit) = rate_limit(resp) {
        return ProviderError::RateLimited(limit);
    }
    if scope_mismatch(resp) {
        return ProviderError::Forbidden(missing_scope_message(source, what));
    }
    let message = error_text(resp);
    match resp.status {
        401 => ProviderError::Unauthorized(unauthorized_message(source, resp)),
        403 => ProviderError::Forbidden(format!(
            "Jira refused access to {what} (HTTP 403): {message}. The account needs the Browse projects permission{}",
            if source.auth_type == "oauth2" {
                " and the token the read:jira-work and read:jira-user scopes"
            } else {
                ""
            }
        )),
        404 => ProviderError::NotFound(format!("{what} was not found (HTTP 404): {message}")),
        400 => ProviderError::InvalidInput(format!(
            "Jira rejected the request for {what} (HTTP 400): {message}"
        )),
        s if s >= 500 => ProviderError::Provider(format!("Jira failed with HTTP {s}: {message}")),
        s => ProviderError::Provider(format!("Jira answered HTTP {s} for {what}: {message}")),
    }
}

/// What the admin should check after a 401, by auth type.
fn unauthorized_message(source: &Source, resp: &HttpResponse) -> String {
    let reason = resp.header("x-seraph-loginreason").unwrap_or_default();
    let mut text = format!(
        "Jira rejected the credentials (HTTP 401: {})",
        error_text(resp)
    );
    if reason.contains("AUTHENTICATION_DENIED") {
        text.push_str(
            "; Jira wants a CAPTCHA after too many failed logins: sign in once in a browser, then retry",
        );
        return text;
    }
    let gateway = setting(source, "api-url").is_some();
    match source.auth_type.as_str() {
        // A scoped API token is refused on the site URL exactly like a wrong one.
        "api-token" if !gateway => text.push_str(
            "; if it is a scoped API token, set API URL to https://api.atlassian.com/ex/jira/{cloudId} \
             (scoped tokens only work through that gateway); otherwise check the email and the API \
             token (tokens created since December 2024 expire within a year)",
        ),
        "api-token" => text.push_str(
            "; check the email and the API token (tokens created since December 2024 expire \
             within a year) and that API URL names this site's cloudId",
        ),
        "oauth2" => text.push_str(
            "; the access token is invalid or expired, or the API URL names another site",
        ),
        "basic" => {
            text.push_str("; check the username and password (Jira Cloud accepts only API tokens)")
        }
        _ => {}
    }
    text
}

/// Jira's error text: `errorMessages` and `errors` of an ErrorCollection, or the plain body
/// (`/myself` answers 401 with plain text).
fn error_text(resp: &HttpResponse) -> String {
    if let Ok(body) = resp.json() {
        let mut parts: Vec<String> = body
            .get("errorMessages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect();
        if let Some(errors) = body.get("errors").and_then(Value::as_object) {
            parts.extend(
                errors
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}: {v}"))),
            );
        }
        if let Some(message) = str_at(&body, "/message") {
            parts.push(message.to_string());
        }
        if !parts.is_empty() {
            return snippet(&parts.join("; "));
        }
    }
    let text = excerpt(&resp.text());
    if text.is_empty() {
        format!("HTTP {}", resp.status)
    } else {
        text
    }
}

// ---------------------------------------------------------------------------------------------
// Rate limits

/// A 429, or a 503 with `Retry-After`: wait `Retry-After` seconds, else until
/// `X-RateLimit-Reset` (ISO-8601), else a minute.
fn rate_limit(resp: &HttpResponse) -> Option<RateLimit> {
    let retry_after = resp
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if resp.status != 429 && !(resp.status == 503 && retry_after.is_some()) {
        return None;
    }
    let wait = retry_after
        .or_else(|| resp.header("x-ratelimit-reset").and_then(seconds_until))
        .unwrap_or(60);
    let reason = resp
        .header("ratelimit-reason")
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    Some(RateLimit {
        retry_after_secs: wait.clamp(1, u32::MAX as u64) as u32,
        message: format!("Jira answered HTTP {}: rate limited{reason}", resp.status),
    })
}

/// Seconds from now until an ISO-8601 UTC time such as `2026-03-02T10:15Z` or
/// `2026-03-02T10:15:30.000+00:00` (at least 1).
fn seconds_until(text: &str) -> Option<u64> {
    let t = text.trim();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = t.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute) = (num(11..13)?, num(14..16)?);
    let mut rest = t.get(16..)?;
    let mut second = 0;
    if let Some(after) = rest.strip_prefix(':') {
        second = after.get(..2)?.parse().ok()?;
        rest = after.get(2..)?;
        if let Some(frac) = rest.strip_prefix('.') {
            rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
        }
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        zone => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = zone[1..].chars().filter(char::is_ascii_digit).collect();
            let (h, m) = (
                digits.get(..2)?.parse::<i64>().ok()?,
                digits.get(2..4).unwrap_or("0").parse::<i64>().ok()?,
            );
            sign * (h * 3600 + m * 60)
        }
    };
    let epoch =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Some((epoch - now).max(1) as u64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
