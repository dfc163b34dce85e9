//! GitHub Issues provider plugin (REST + GraphQL).
//!
//! Facts from `../shared/providers.md` section 2:
//! - the base URL is the repository page, `https://github.com/{owner}/{repo}` (GitHub Enterprise
//!   Server: `https://HOST/{owner}/{repo}`); the REST API is `https://api.github.com`, or
//!   `https://HOST/api/v3` with GraphQL at `https://HOST/api/graphql`; the "api-url" setting
//!   overrides the REST root;
//! - every request sends `Accept: application/vnd.github+json` and pins
//!   `X-GitHub-Api-Version: 2022-11-28`, which every GitHub (GHES 3.9+ included) accepts; the
//!   assignee is read from `assignees[]` only, so the `2026-03-10` version (which drops
//!   `assignee`) changes nothing here;
//! - pull requests share the issues' number sequence, and `GET /issues/{n}` answers a pull
//!   request's number with an issue object carrying `pull_request`. This plugin accepts them:
//!   people do paste `#123` or `/pull/123` of a pull request, and the issue URL of a pull request
//!   number redirects to it. A pull request reads as `open`, `closed` or `merged`;
//! - rate limits: 403 or 429 with `x-ratelimit-remaining: 0` wait until `x-ratelimit-reset`
//!   (epoch seconds); secondary limits send `retry-after`, else wait a minute;
//! - the batch read is one GraphQL query with one alias per number
//!   (`i12: issueOrPullRequest(number: 12)`); an unknown number comes back `null` with an error
//!   of type `NOT_FOUND` whose path names the alias. GraphQL refuses anonymous requests, so
//!   the "none" auth type reads one issue at a time over REST. GraphQL does not follow a
//!   transferred issue, so every `NOT_FOUND` is confirmed over REST (which follows the 301);
//!   a refused query (404, an error without data) falls back on REST reads within the call's
//!   request budget;
//! - a spent GraphQL budget is HTTP 200 with `x-ratelimit-remaining: 0`; the headers decide,
//!   whatever the error's `type` (`RATE_LIMITED`, `RATE_LIMIT`, none);
//! - the connection test also lists one issue: a fine-grained token without the Issues
//!   permission reads the repository but gets 403 on its issues.

use std::collections::HashMap;

mod events;

use testorchestrator_provider_sdk::bindings::testorchestrator::provider::http;
use testorchestrator_provider_sdk::serde_json::{Value, json};
use testorchestrator_provider_sdk::*;

mod comments;

struct GitHub;

/// The REST API version this plugin is written against.
const API_VERSION: &str = "2022-11-28";

/// Numbers per GraphQL query.
const CHUNK: usize = 100;

/// GraphQL `Int` is 32-bit: a larger number would fail the whole query.
const MAX_NUMBER: u64 = i32::MAX as u64;

/// The fields read per issue or pull request in the batch query.
const FRAGMENT: &str = "fragment F on IssueOrPullRequest { __typename \
    ... on Issue { number title state stateReason url assignees(first: 20) { nodes { login } } } \
    ... on PullRequest { number title state url assignees(first: 20) { nodes { login } } } }";

impl Provider for GitHub {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            id: "github".into(),
            version: "1.0.0".into(),
            name: "GitHub Issues".into(),
            key_hint: "Issue number, e.g. #123 (or paste the issue's link)".into(),
            key_example: "123".into(),
            default_key_pattern: Some("^[1-9][0-9]*$".into()),
            default_issue_url_template: "{baseUrl}/issues/{key}".into(),
            default_create_url_template: Some("{baseUrl}/issues/new".into()),
            base_url_example: "https://github.com/your-org/your-repo".into(),
            auth_types: vec![
                AuthType {
                    id: "api-token".into(),
                    label: "API Token".into(),
                    fields: vec![field(
                        "token",
                        "Personal access token",
                        Some(
                            "A fine-grained token with read access to Issues (and Pull requests) of this \
                             repository (read and write to post comments), or a classic token with the repo \
                             scope (public_repo for public ones).",
                        ),
                    )],
                    scheme: CredentialScheme::Bearer("token".into()),
                },
                AuthType {
                    id: "oauth2".into(),
                    label: "OAuth 2.0".into(),
                    fields: vec![field(
                        "access-token",
                        "Access token",
                        Some("An OAuth app or GitHub App token that can read this repository's issues."),
                    )],
                    scheme: CredentialScheme::Bearer("access-token".into()),
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
                help: "The REST API root when it is not derived from the base URL (https://api.github.com \
                       for github.com, https://HOST/api/v3 for GitHub Enterprise Server), e.g. \
                       https://api.SUBDOMAIN.ghe.com for GitHub Enterprise Cloud with data residency."
                    .into(),
                kind: SettingKind::Url,
                required: false,
            }],
            extra_origins: vec![credentialed("https://api.github.com")],
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
            return Err(invalid("enter an issue number such as #123"));
        }
        if strip_scheme(input).is_some() {
            return key_from_url(source, input);
        }
        if let Some((repo, number)) = input.split_once('#')
            && !repo.is_empty()
        {
            // `owner/repo#123`
            let own = Repo::of(source)?;
            if !repo.eq_ignore_ascii_case(&own.full_name()) {
                return Err(invalid(format!(
                    "{input:?} is an issue of {repo}, but this source is the repository {}",
                    own.full_name()
                )));
            }
            return parse_number(number);
        }
        parse_number(input.strip_prefix('#').unwrap_or(input))
    }

    fn describe_events() -> Vec<EventScheme> {
        events::schemes()
    }

    fn parse_event(source: &Source, event: &Event) -> Result<Vec<EventChange>, ProviderError> {
        events::parse(source, event)
    }

    fn test_connection(source: &Source) -> Result<ConnectionInfo, ProviderError> {
        let repo = Repo::of(source)?;
        let api = api_root(source, &repo)?;
        let resp = send(
            http::Method::Get,
            &format!("{api}/repos/{}", repo.path()),
            None,
        )?;
        if !resp.is_success() {
            return Err(match resp.status {
                404 => ProviderError::NotFound(format!(
                    "the repository {} was not found{} (GitHub answers 404 for a private repository the \
                     credentials cannot see): check the base URL{}",
                    repo.full_name(),
                    if source.auth_type == "none" {
                        ", or it is private"
                    } else {
                        ", or the token has no access to it"
                    },
                    if source.auth_type == "none" {
                        " or choose an auth type with a token"
                    } else {
                        " and the token's repository access"
                    },
                )),
                _ => github_error(
                    source,
                    &resp,
                    &format!("the repository {}", repo.full_name()),
                ),
            });
        }
        let info = resp.json()?;
        let full_name = str_at(&info, "/full_name")
            .unwrap_or(&repo.full_name())
            .to_string();
        let visibility = str_at(&info, "/visibility")
            .map(String::from)
            .unwrap_or_else(|| {
                if info.get("private").and_then(Value::as_bool) == Some(true) {
                    "private".into()
                } else {
                    "public".into()
                }
            });
        let mut detail = format!("repository {full_name}, {visibility}");
        if info.get("has_issues").and_then(Value::as_bool) == Some(false) {
            detail.push_str(
                "; issues are disabled in this repository, only pull requests can be read",
            );
        }
        let account = if source.auth_type == "none" {
            detail.push_str("; anonymous access is limited to 60 requests per hour");
            "anonymous".to_string()
        } else {
            if info.get("has_issues").and_then(Value::as_bool) != Some(false)
                && let Some(note) = check_issue_access(source, &repo, &api)?
            {
                detail.push_str(&format!("; {note}"));
            }
            whoami(&api)?
        };
        Ok(ConnectionInfo {
            account,
            detail: Some(detail),
        })
    }

    fn fetch_issue(source: &Source, key: &str) -> Result<Issue, ProviderError> {
        let number = parse_number(key.trim().strip_prefix('#').unwrap_or(key.trim()))?;
        let repo = Repo::of(source)?;
        let api = api_root(source, &repo)?;
        let resp = send(
            http::Method::Get,
            &format!("{api}/repos/{}/issues/{number}", repo.path()),
            None,
        )?;
        if !resp.is_success() {
            return Err(issue_error(source, &repo, &resp, &number));
        }
        issue_from_rest(source, &resp.json()?, &number)
    }

    fn fetch_issues(
        source: &Source,
        keys: &[String],
    ) -> Result<Vec<Result<Issue, ProviderError>>, ProviderError> {
        if source.auth_type == "none" {
            // GitHub's GraphQL API answers 401 to anonymous requests.
            return fetch_one_by_one(source, keys);
        }
        let repo = Repo::of(source)?;
        let api = api_root(source, &repo)?;
        let numbers: Vec<Result<String, ProviderError>> = keys
            .iter()
            .map(|k| parse_number(k.trim().strip_prefix('#').unwrap_or(k.trim())))
            .collect();
        let mut wanted: Vec<String> = Vec::new();
        for n in numbers.iter().flatten() {
            if !wanted.contains(n) {
                wanted.push(n.clone());
            }
        }
        let mut read: HashMap<String, Result<Issue, ProviderError>> = HashMap::new();
        for chunk in wanted.chunks(CHUNK) {
            if let Chunk::Refused(cause) = graphql_chunk(source, &repo, &api, chunk, &mut read)? {
                // GraphQL is missing or refused the query (an older GitHub Enterprise Server, a
                // proxy, a query error without data): the REST read of link creation still works.
                return fetch_each(keys, &cause, |key| GitHub::fetch_issue(source, key));
            }
        }
        confirm_not_found(source, &mut read);
        Ok(numbers
            .into_iter()
            .map(|n| {
                let n = n?;
                read.get(&n).cloned().unwrap_or_else(|| {
                    Err(ProviderError::Provider(format!(
                        "GitHub's answer did not mention issue #{n}"
                    )))
                })
            })
            .collect())
    }
}

export_provider!(GitHub);

fn field(name: &str, label: &str, help: Option<&str>) -> AuthField {
    AuthField {
        name: name.into(),
        label: label.into(),
        secret: true,
        required: true,
        help: help.map(Into::into),
    }
}

fn invalid(message: impl Into<String>) -> ProviderError {
    ProviderError::InvalidInput(message.into())
}

// ---------------------------------------------------------------------------------------------
// Repository and keys

/// The repository a source points at.
struct Repo {
    /// `https://github.com` or `https://ghe.example.com`.
    web_root: String,
    /// Lower-case host.
    host: String,
    owner: String,
    name: String,
}

impl Repo {
    /// Reads `https://HOST/{owner}/{repo}` (a trailing `.git` is tolerated).
    fn of(source: &Source) -> Result<Repo, ProviderError> {
        let base = source.base_url.trim_end_matches('/');
        let bad = || {
            invalid(format!(
                "the base URL {base} does not name a repository: use https://github.com/OWNER/REPO \
                 (or https://YOUR-GHES-HOST/OWNER/REPO)"
            ))
        };
        let rest = strip_scheme(base).ok_or_else(bad)?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let segments = url_path_segments(base).ok_or_else(bad)?;
        if segments.len() < 2 {
            return Err(bad());
        }
        let name = segments[1]
            .strip_suffix(".git")
            .unwrap_or(&segments[1])
            .to_string();
        Ok(Repo {
            web_root: format!("{}{authority}", &base[..base.len() - rest.len()]),
            host: host_of(base),
            owner: segments[0].clone(),
            name,
        })
    }

    fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// `owner/repo` for a REST path.
    fn path(&self) -> String {
        format!(
            "{}/{}",
            encode_component(&self.owner),
            encode_component(&self.name)
        )
    }
}

/// Parses an issue number as typed after an optional `#`: a positive integer in ASCII digits.
fn parse_number(text: &str) -> Result<String, ProviderError> {
    if text.is_empty() {
        return Err(invalid("the issue number is missing: enter e.g. #123"));
    }
    if text.chars().any(char::is_whitespace) {
        return Err(invalid(format!(
            "{text:?} contains a space: an issue number is written like #123"
        )));
    }
    if let Some(rest) = text.strip_prefix('-')
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid(format!(
            "{text} is negative: issue numbers start at 1"
        )));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        if text.chars().all(char::is_numeric) {
            return Err(invalid(format!(
                "the issue number {text:?} must be written with the digits 0-9"
            )));
        }
        return Err(invalid(format!(
            "{text:?} is not a GitHub issue number: enter a number such as #123, or paste the issue's link"
        )));
    }
    if text.bytes().all(|b| b == b'0') {
        return Err(invalid(format!(
            "#{text} cannot exist: issue numbers start at 1"
        )));
    }
    if text.starts_with('0') {
        return Err(invalid(format!(
            "the issue number {text:?} has a leading zero: write #{}",
            text.trim_start_matches('0')
        )));
    }
    match text.parse::<u64>() {
        Ok(n) if n <= MAX_NUMBER => Ok(n.to_string()),
        _ => Err(invalid(format!(
            "{text} is too large to be a GitHub issue number"
        ))),
    }
}

/// `https://` or `http://` stripped (case-insensitively), if the text is a URL.
fn strip_scheme(text: &str) -> Option<&str> {
    ["https://", "http://"].iter().find_map(|scheme| {
        text.get(..scheme.len())
            .filter(|head| head.eq_ignore_ascii_case(scheme))
            .map(|_| &text[scheme.len()..])
    })
}

/// The lower-case host (without user info and port) of an absolute URL; `www.` dropped.
fn host_of(url: &str) -> String {
    let rest = strip_scheme(url).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = host_port
        .split(':')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    host.strip_prefix("www.").map(String::from).unwrap_or(host)
}

/// Reads the number out of `https://HOST/{owner}/{repo}/issues/{n}` or `.../pull/{n}` (with
/// anything after it: `/files`, `#issuecomment-1`, `?q=`). Another repository is an error.
fn key_from_url(source: &Source, url: &str) -> Result<String, ProviderError> {
    let own = Repo::of(source)?;
    let host = host_of(url);
    let segments = url_path_segments(&format!("https://{}", strip_scheme(url).unwrap_or(url)))
        .unwrap_or_default();
    let not_issue = || {
        invalid(format!(
            "{url} is not an issue link: paste e.g. {}/{}/issues/123",
            own.web_root,
            own.full_name()
        ))
    };
    if segments.len() < 4 || !matches!(segments[2].as_str(), "issues" | "pull") {
        return Err(if host != own.host {
            invalid(format!(
                "that link is to {host}, but this source is the repository {} on {}",
                own.full_name(),
                own.host
            ))
        } else {
            not_issue()
        });
    }
    let (owner, name, number) = (&segments[0], &segments[1], &segments[3]);
    let number = parse_number(number).map_err(|_| not_issue())?;
    if host != own.host
        || !owner.eq_ignore_ascii_case(&own.owner)
        || !name.eq_ignore_ascii_case(&own.name)
    {
        let place = if host != own.host {
            format!(" on {host}")
        } else {
            String::new()
        };
        return Err(invalid(format!(
            "that link is to {owner}/{name}#{number}{place}, but this source is the repository {}{}",
            own.full_name(),
            if host != own.host {
                format!(" on {}", own.host)
            } else {
                String::new()
            }
        )));
    }
    Ok(number)
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// The REST API root: the "api-url" setting, `https://api.github.com` for github.com, else
/// GitHub Enterprise Server's `https://HOST/api/v3`.
fn api_root(source: &Source, repo: &Repo) -> Result<String, ProviderError> {
    if let Some(api) = setting(source, "api-url") {
        return Ok(api.trim_end_matches('/').to_string());
    }
    if repo.host == "github.com" {
        return Ok("https://api.github.com".into());
    }
    if repo.host.ends_with(".ghe.com") {
        // GitHub Enterprise Cloud with data residency keeps its API on another host, which the
        // admin must allow by naming it.
        return Err(invalid(format!(
            "set API URL to https://api.{} for this GitHub Enterprise Cloud site",
            repo.host
        )));
    }
    Ok(format!("{}/api/v3", repo.web_root))
}

/// The GraphQL endpoint next to a REST root.
fn graphql_url(api: &str) -> String {
    match api.strip_suffix("/api/v3") {
        Some(root) => format!("{root}/api/graphql"),
        None => format!("{api}/graphql"),
    }
}

/// Sends an authenticated request with GitHub's media type and a pinned API version. (The SDK's
/// builders start with `Accept: application/json` and can only add headers; GitHub documents
/// `application/vnd.github+json`, so the request is built here.)
fn send(
    method: http::Method,
    url: &str,
    body: Option<&Value>,
) -> Result<HttpResponse, ProviderError> {
    let mut headers = vec![
        (
            "accept".to_string(),
            "application/vnd.github+json".to_string(),
        ),
        ("x-github-api-version".to_string(), API_VERSION.to_string()),
    ];
    if body.is_some() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    let request = HttpRequest {
        method,
        url: url.to_string(),
        headers,
        body: body.map(|b| b.to_string().into_bytes()),
        authenticated: true,
    };
    http::send(&request).map_err(transport_error)
}

/// Who the token belongs to: `GET /user`, which GitHub App installation tokens may not call.
fn whoami(api: &str) -> Result<String, ProviderError> {
    let resp = send(http::Method::Get, &format!("{api}/user"), None)?;
    if resp.is_success() {
        let user = resp.json()?;
        let login = str_at(&user, "/login").unwrap_or("unknown user");
        return Ok(match str_at(&user, "/name").filter(|n| !n.is_empty()) {
            Some(name) => format!("{login} ({name})"),
            None => login.to_string(),
        });
    }
    if let Some(limit) = rate_limit(&resp) {
        return Err(ProviderError::RateLimited(limit));
    }
    Ok(if resp.status == 403 {
        // "Resource not accessible by integration": an installation token, not a user.
        "a GitHub App installation".into()
    } else {
        "a token without access to its user".into()
    })
}

/// GitHub's `message` (basic-error), else the body.
fn error_text(resp: &HttpResponse) -> String {
    resp.json()
        .ok()
        .and_then(|v| str_at(&v, "/message").map(String::from))
        .unwrap_or_else(|| excerpt(&resp.text()))
}

/// Maps an unsuccessful REST answer to an error.
fn github_error(source: &Source, resp: &HttpResponse, what: &str) -> ProviderError {
    if let Some(limit) = rate_limit(resp) {
        return ProviderError::RateLimited(limit);
    }
    let message = error_text(resp);
    match resp.status {
        401 => ProviderError::Unauthorized(format!(
            "GitHub rejected the token ({message}, HTTP 401): check it is complete and has not expired or been revoked"
        )),
        // After several bad attempts GitHub refuses every authentication for a while.
        403 if message.to_ascii_lowercase().contains("login attempts") => {
            ProviderError::Unauthorized(format!("GitHub refused the credentials: {message}"))
        }
        403 => ProviderError::Forbidden(format!(
            "GitHub refused access to {what} ({message}, HTTP 403){}",
            if source.auth_type == "none" {
                ""
            } else {
                ": the token needs read access to this repository's issues"
            }
        )),
        404 => ProviderError::NotFound(format!("{what} was not found (HTTP 404): {message}")),
        s if s >= 500 => ProviderError::Provider(format!("GitHub failed with HTTP {s}: {message}")),
        s => ProviderError::Provider(format!("GitHub answered HTTP {s} for {what}: {message}")),
    }
}

/// Maps an unsuccessful `GET /repos/{o}/{r}/issues/{n}`.
fn issue_error(source: &Source, repo: &Repo, resp: &HttpResponse, number: &str) -> ProviderError {
    match resp.status {
        404 => ProviderError::NotFound(format!(
            "issue #{number} does not exist in {}, or the credentials cannot see the repository (GitHub answers 404 for both)",
            repo.full_name()
        )),
        // Deleted from a repository we can read, or issues disabled in it.
        410 => ProviderError::NotFound(format!(
            "issue #{number} of {} is gone: {}",
            repo.full_name(),
            error_text(resp)
        )),
        _ => github_error(
            source,
            resp,
            &format!("issue #{number} of {}", repo.full_name()),
        ),
    }
}

/// Rate limits: 403 or 429 with `x-ratelimit-remaining: 0` (primary: wait until
/// `x-ratelimit-reset`), or with `retry-after` or a "secondary rate limit" message (secondary:
/// `retry-after`, else a minute).
fn rate_limit(resp: &HttpResponse) -> Option<RateLimit> {
    if resp.status != 403 && resp.status != 429 {
        return None;
    }
    let retry_after = resp
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok());
    let exhausted = resp.header("x-ratelimit-remaining").map(str::trim) == Some("0");
    let message = error_text(resp);
    let secondary = message
        .to_ascii_lowercase()
        .contains("secondary rate limit");
    if resp.status != 429 && !exhausted && retry_after.is_none() && !secondary {
        return None;
    }
    let wait = retry_after
        .or_else(|| {
            if exhausted {
                resp.header("x-ratelimit-reset")
                    .and_then(|r| r.trim().parse::<u64>().ok())
                    .map(until)
            } else {
                None
            }
        })
        .unwrap_or(60);
    let resource = resp
        .header("x-ratelimit-resource")
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    Some(RateLimit {
        retry_after_secs: wait.clamp(1, u32::MAX as u64) as u32,
        message: format!(
            "GitHub rate limit{resource}, HTTP {}: {}",
            resp.status,
            snippet(&message)
        ),
    })
}

/// Seconds from now until a Unix time (at least 1).
fn until(epoch: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    epoch.saturating_sub(now).max(1)
}

// ---------------------------------------------------------------------------------------------
// Issues

/// Display status and category of `state` (+ `state_reason`, or merged for pull requests).
fn status_of(state: &str, reason: Option<&str>, merged: bool) -> (String, StatusCategory) {
    let state = state.to_ascii_lowercase();
    let reason = reason.map(str::to_ascii_lowercase);
    match state.as_str() {
        "open" => ("open".into(), StatusCategory::ToDo),
        "merged" => ("merged".into(), StatusCategory::Done),
        "closed" if merged => ("merged".into(), StatusCategory::Done),
        "closed" => (
            match reason.as_deref() {
                Some("not_planned") => "closed as not planned".into(),
                Some("duplicate") => "closed as duplicate".into(),
                _ => "closed".into(),
            },
            StatusCategory::Done,
        ),
        other => (other.to_string(), StatusCategory::ToDo),
    }
}

/// The logins of `assignees` (an array of users, or a GraphQL connection's `nodes`), joined.
fn assignees(list: Option<&Value>) -> Option<String> {
    let logins: Vec<&str> = list
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|u| str_at(u, "/login"))
        .collect();
    if logins.is_empty() {
        None
    } else {
        Some(logins.join(", "))
    }
}

/// The issue's page: the source's template when set, else GitHub's own URL (a pull request's
/// is `/pull/{n}`, a transferred issue's is in its new repository), else the default template.
fn web_url(source: &Source, html_url: Option<&str>, number: &str) -> Result<String, ProviderError> {
    match html_url {
        Some(url) if source.issue_url_template.is_none() && strip_scheme(url).is_some() => {
            Ok(url.to_string())
        }
        _ => GitHub::issue_url(source, number),
    }
}

/// Builds an [`Issue`] from a REST issue object.
fn issue_from_rest(source: &Source, raw: &Value, number: &str) -> Result<Issue, ProviderError> {
    let state = str_at(raw, "/state").ok_or_else(|| {
        ProviderError::Provider(format!("GitHub's answer for issue #{number} has no state"))
    })?;
    let merged = raw
        .pointer("/pull_request/merged_at")
        .is_some_and(|m| !m.is_null());
    let (status, category) = status_of(state, str_at(raw, "/state_reason"), merged);
    Ok(Issue {
        key: number.to_string(),
        title: str_at(raw, "/title").unwrap_or_default().to_string(),
        status,
        status_category: category,
        assignee: assignees(raw.get("assignees")),
        web_url: web_url(source, str_at(raw, "/html_url"), number)?,
    })
}

/// Builds an [`Issue`] from a GraphQL `Issue` or `PullRequest` node.
fn issue_from_graphql(source: &Source, node: &Value, number: &str) -> Result<Issue, ProviderError> {
    let state = str_at(node, "/state").ok_or_else(|| {
        ProviderError::Provider(format!("GitHub's answer for issue #{number} has no state"))
    })?;
    let (status, category) = status_of(state, str_at(node, "/stateReason"), false);
    Ok(Issue {
        key: number.to_string(),
        title: str_at(node, "/title").unwrap_or_default().to_string(),
        status,
        status_category: category,
        assignee: assignees(node.pointer("/assignees/nodes")),
        web_url: web_url(source, str_at(node, "/url"), number)?,
    })
}

/// The SDK's one-at-a-time batch: stops on errors that would fail every other key too.
fn fetch_one_by_one(
    source: &Source,
    keys: &[String],
) -> Result<Vec<Result<Issue, ProviderError>>, ProviderError> {
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        match GitHub::fetch_issue(source, key) {
            Err(e) if is_batch_fatal(&e) => return Err(e),
            other => out.push(other),
        }
    }
    Ok(out)
}

/// What became of one GraphQL batch query.
enum Chunk {
    /// Every number of the chunk has its result.
    Read,
    /// GitHub refused the query itself (why, for the admin): read the numbers over REST.
    Refused(String),
}

/// One GraphQL query for up to [`CHUNK`] numbers. A spent rate limit is told by the headers
/// (`x-ratelimit-remaining: 0`), whatever the body says; GitHub does not promise the error's
/// `type` (`RATE_LIMITED` and `RATE_LIMIT` with `code: graphql_rate_limit` are both seen).
fn graphql_chunk(
    source: &Source,
    repo: &Repo,
    api: &str,
    chunk: &[String],
    read: &mut HashMap<String, Result<Issue, ProviderError>>,
) -> Result<Chunk, ProviderError> {
    let aliases: String = chunk
        .iter()
        .map(|n| format!("i{n}: issueOrPullRequest(number: {n}) {{ ...F }} "))
        .collect();
    let query = format!(
        "query($owner: String!, $name: String!) {{ repository(owner: $owner, name: $name) {{ {aliases}}} }} {FRAGMENT}"
    );
    let body = json!({ "query": query, "variables": { "owner": repo.owner, "name": repo.name } });
    let resp = send(http::Method::Post, &graphql_url(api), Some(&body))?;
    let spent = budget_spent(&resp);
    if !resp.is_success() {
        return match github_error(source, &resp, "the GraphQL batch query") {
            _ if spent => Err(graphql_rate_limited(&resp, &error_text(&resp))),
            e if is_batch_refusal(&e) => Ok(Chunk::Refused(format!(
                "GitHub's GraphQL API answered HTTP {}: {}",
                resp.status,
                excerpt(&error_text(&resp))
            ))),
            e => Err(e),
        };
    }
    let answer = match resp.json() {
        Ok(answer) => answer,
        Err(_) if spent => return Err(graphql_rate_limited(&resp, "no usable answer")),
        Err(e) => return Ok(Chunk::Refused(error_message(&e).to_string())),
    };
    let errors: Vec<&Value> = answer
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let error_type = |e: &Value| str_at(e, "/type").unwrap_or_default().to_ascii_uppercase();
    let message_of = |e: &Value| str_at(e, "/message").unwrap_or("no message").to_string();
    // A path such as ["repository", "i12"]: which alias an error is about.
    let path_of = |e: &Value| -> Vec<String> {
        e.get("path")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(String::from))
            .collect()
    };
    let no_data = answer
        .pointer("/data/repository")
        .is_none_or(Value::is_null);
    if let Some(limited) = errors.iter().find(|e| is_rate_limit_error(e)) {
        return Err(graphql_rate_limited(&resp, &message_of(limited)));
    }
    if spent && no_data {
        let message = errors.first().map(|e| message_of(e));
        return Err(graphql_rate_limited(
            &resp,
            message.as_deref().unwrap_or("no data"),
        ));
    }
    let repository = answer.pointer("/data/repository");
    let Some(nodes) = repository.and_then(Value::as_object) else {
        if let Some(e) = errors.iter().find(|e| path_of(e).len() == 1) {
            // The repository itself is unknown or refused: a failure of the whole batch.
            return Err(match error_type(e).as_str() {
                "NOT_FOUND" => ProviderError::NotFound(format!(
                    "the repository {} was not found, or the token has no access to it: {}",
                    repo.full_name(),
                    message_of(e)
                )),
                "FORBIDDEN" => ProviderError::Forbidden(format!(
                    "GitHub refused access to {}: {}",
                    repo.full_name(),
                    message_of(e)
                )),
                _ => ProviderError::Provider(format!("GitHub GraphQL error: {}", message_of(e))),
            });
        }
        let messages: Vec<String> = errors.iter().map(|e| message_of(e)).collect();
        return Ok(Chunk::Refused(if messages.is_empty() {
            "GitHub's GraphQL answer has no data.repository".into()
        } else {
            format!(
                "GitHub's GraphQL API failed the batch query: {}",
                snippet(&messages.join("; "))
            )
        }));
    };
    for n in chunk {
        let alias = format!("i{n}");
        let result = match nodes.get(&alias) {
            Some(node) if node.is_object() => issue_from_graphql(source, node, n),
            _ => {
                let error = errors.iter().find(|e| path_of(e).last() == Some(&alias));
                Err(match error.map(|e| (error_type(e), message_of(e))) {
                    Some((kind, message)) if kind == "FORBIDDEN" => {
                        ProviderError::Forbidden(format!("issue #{n}: {message}"))
                    }
                    Some((kind, message)) if kind != "NOT_FOUND" => ProviderError::Provider(
                        format!("GitHub could not read issue #{n}: {message}"),
                    ),
                    _ => ProviderError::NotFound(format!(
                        "issue #{n} does not exist in {} (no issue or pull request has that number)",
                        repo.full_name()
                    )),
                })
            }
        };
        read.insert(n.clone(), result);
    }
    Ok(Chunk::Read)
}

/// True when a response says the rate-limit budget is spent (`x-ratelimit-remaining: 0`).
fn budget_spent(resp: &HttpResponse) -> bool {
    resp.header("x-ratelimit-remaining").map(str::trim) == Some("0")
}

/// A GraphQL error meaning the rate limit: `type` `RATE_LIMITED` or `RATE_LIMIT`, or a `code`
/// (top level or in `extensions`) such as `graphql_rate_limit`.
fn is_rate_limit_error(e: &Value) -> bool {
    let kind = str_at(e, "/type").unwrap_or_default().to_ascii_uppercase();
    let code = str_at(e, "/code")
        .or_else(|| str_at(e, "/extensions/code"))
        .unwrap_or_default()
        .to_ascii_lowercase();
    kind.starts_with("RATE_LIMIT") || code.contains("rate_limit")
}

/// The rate-limit error of a GraphQL answer: wait `retry-after`, else until
/// `x-ratelimit-reset`, else a minute.
fn graphql_rate_limited(resp: &HttpResponse, message: &str) -> ProviderError {
    let wait = rate_limit_reset(resp).unwrap_or(60);
    ProviderError::RateLimited(RateLimit {
        retry_after_secs: wait.clamp(1, u32::MAX as u64) as u32,
        message: format!("GitHub GraphQL rate limit: {message}"),
    })
}

/// Checks a batch's "not found" through REST, which follows a transferred issue's 301 to its
/// new repository (GraphQL does not). Stops when the call's requests or the rate limit run out:
/// the batch's answer stands for those.
fn confirm_not_found(source: &Source, read: &mut HashMap<String, Result<Issue, ProviderError>>) {
    let mut missing: Vec<String> = read
        .iter()
        .filter(|(_, r)| matches!(r, Err(ProviderError::NotFound(_))))
        .map(|(n, _)| n.clone())
        .collect();
    missing.sort();
    for n in missing {
        match GitHub::fetch_issue(source, &n) {
            Err(e) if is_batch_fatal(&e) || is_budget_exhausted(&e) => return,
            result => {
                read.insert(n, result);
            }
        }
    }
}

/// Proves the token can read the repository's issues, not only see the repository: a
/// fine-grained token without the Issues permission reads `/repos/{o}/{r}` but gets 403 on
/// issues. One issue of the list is enough (`per_page=1`). The repository read proved the
/// connection, so this probe is advisory: only a refusal of the credentials (401/403) fails the
/// test; any other failure (a 404 or 5xx, a server without the route) is a note for the detail.
fn check_issue_access(
    source: &Source,
    repo: &Repo,
    api: &str,
) -> Result<Option<String>, ProviderError> {
    let resp = send(
        http::Method::Get,
        &format!("{api}/repos/{}/issues?per_page=1&state=all", repo.path()),
        None,
    );
    let resp = match resp {
        Ok(resp) if resp.is_success() => return Ok(None),
        Ok(resp) => resp,
        Err(e) => return Ok(Some(unchecked_issues(&e))),
    };
    match github_error(source, &resp, "the issue list") {
        ProviderError::Forbidden(_) => Err(ProviderError::Forbidden(format!(
            "the token can see the repository {} but not its issues ({}, HTTP 403): give it read \
             access to Issues (fine-grained tokens and GitHub Apps: Repository permissions > Issues: Read)",
            repo.full_name(),
            error_text(&resp)
        ))),
        e @ ProviderError::Unauthorized(_) => Err(e),
        other => Ok(Some(unchecked_issues(&other))),
    }
}

/// The detail's note when the issue-list probe failed in a way that does not fail the test.
fn unchecked_issues(e: &ProviderError) -> String {
    format!(
        "reading the issue list was not checked ({})",
        error_message(e)
    )
}

/// Seconds until `x-ratelimit-reset`, when GitHub says the budget is spent.
fn rate_limit_reset(resp: &HttpResponse) -> Option<u64> {
    resp.header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or_else(|| {
            resp.header("x-ratelimit-reset")
                .and_then(|r| r.trim().parse::<u64>().ok())
                .map(until)
        })
}
