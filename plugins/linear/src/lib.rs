//! Linear provider plugin: keys `TEAM-123`, web URLs under `https://linear.app/{workspace}`,
//! and the GraphQL API at `https://api.linear.app/graphql` (see `../shared/providers.md` §4).
//!
//! Owns: key grammar, Linear's URLs, the GraphQL requests and the reading of Linear's errors,
//! which arrive inside HTTP 200 answers as well as 400/401/429 ones (`errors[].extensions`).
//! Must not: hold state between calls, or use the network in `normalize-key`/`issue-url`.

mod events;

use std::time::{SystemTime, UNIX_EPOCH};

use testorchestrator_provider_sdk::serde_json::{Value, json};
use testorchestrator_provider_sdk::*;

mod comments;

/// The public GraphQL endpoint; the `api-url` setting replaces it.
const API_URL: &str = "https://api.linear.app/graphql";
/// The host of Linear's web UI (`https://linear.app/{workspace}/...`).
const WEB_HOST: &str = "linear.app";
/// Longest team key accepted (the UI limit was 5 in 2024; 6-character keys are observed).
const MAX_TEAM_KEY: usize = 10;
/// Keys per `issues(filter:)` request: the filter and `first` stay far below the complexity cap.
const BATCH_CHUNK: usize = 100;
/// Keys the batch query did not return that are looked up one by one (moved issues, renamed
/// team keys: `issue(id:)` resolves old identifiers, a filter on team key + number cannot).
const MAX_SINGLE_LOOKUPS: usize = 10;

/// The issue fields every fetch reads.
const ISSUE_FIELDS: &str =
    "id identifier title url state { name type } assignee { name displayName }";

struct Plugin;

impl Provider for Plugin {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            id: "linear".into(),
            version: "1.0.0".into(),
            name: "Linear".into(),
            key_hint: "Team key + issue number, e.g. ENG-123".into(),
            key_example: "ENG-123".into(),
            default_key_pattern: Some("^[A-Z0-9]{1,10}-[1-9][0-9]*$".into()),
            default_issue_url_template: "{baseUrl}/issue/{key}".into(),
            // `https://linear.app/{workspace}/new` opens the new-issue form in that workspace
            // (PARTIAL in providers.md §4.5: `/team/{TEAMKEY}/new` preselects a team; an admin
            // who wants that sets it as the source's create URL template).
            default_create_url_template: Some("{baseUrl}/new".into()),
            base_url_example: "https://linear.app/your-workspace".into(),
            auth_types: vec![
                AuthType {
                    id: "api-token".into(),
                    label: "API Token".into(),
                    fields: vec![AuthField {
                        name: "api-key".into(),
                        label: "API key".into(),
                        secret: true,
                        required: true,
                        help: Some(
                            "Linear → Settings → Security & access → Personal API keys (starts with lin_api_). \
                             Sent as the Authorization header without a Bearer prefix."
                                .into(),
                        ),
                    }],
                    // Linear wants `Authorization: <API_KEY>`, no `Bearer` (providers.md §4.2).
                    scheme: CredentialScheme::Header(HeaderScheme {
                        name: "Authorization".into(),
                        prefix: String::new(),
                        field: "api-key".into(),
                    }),
                },
                AuthType {
                    id: "oauth2".into(),
                    label: "OAuth 2.0".into(),
                    fields: vec![AuthField {
                        name: "access-token".into(),
                        label: "Access token".into(),
                        secret: true,
                        required: true,
                        help: Some("An access token of a Linear OAuth application (read scope).".into()),
                    }],
                    scheme: CredentialScheme::Bearer("access-token".into()),
                },
            ],
            settings: vec![Setting {
                name: "api-url".into(),
                label: "API URL".into(),
                help: "Leave empty for Linear's API (https://api.linear.app/graphql). Set it only to \
                       reach Linear through a proxy; a URL without /graphql gets it appended."
                    .into(),
                kind: SettingKind::Url,
                required: false,
            }],
            extra_origins: vec![credentialed("https://api.linear.app")],
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
        let text = key.trim();
        if text.is_empty() {
            return Err(invalid("enter a Linear issue key such as ENG-123"));
        }
        if text.starts_with("https://") || text.starts_with("http://") {
            return key_from_url(source, text);
        }
        parse_identifier(text).map_err(invalid)
    }

    fn describe_events() -> Vec<EventScheme> {
        events::schemes()
    }

    fn parse_event(source: &Source, event: &Event) -> Result<Vec<EventChange>, ProviderError> {
        events::parse(source, event)
    }

    fn test_connection(source: &Source) -> Result<ConnectionInfo, ProviderError> {
        let data = graphql(
            source,
            json!({"query": "query Viewer { viewer { id name displayName email } organization { id name urlKey } }"}),
            "the connection test",
        )?;
        let name = str_at(&data, "/viewer/name").or_else(|| str_at(&data, "/viewer/displayName"));
        let account = match (name, str_at(&data, "/viewer/email")) {
            (Some(n), Some(e)) => format!("{n} ({e})"),
            (Some(n), None) => n.to_string(),
            (None, Some(e)) => e.to_string(),
            (None, None) => {
                return Err(ProviderError::Provider(
                    "Linear answered the viewer query without a user".into(),
                ));
            }
        };
        let org = str_at(&data, "/organization/name").unwrap_or("?");
        let url_key = str_at(&data, "/organization/urlKey");
        check_workspace(source, url_key)?;
        check_issue_access(source, &account)?;
        let detail = match url_key {
            Some(k) => format!("workspace {org} (https://{WEB_HOST}/{k})"),
            None => format!("workspace {org}"),
        };
        Ok(ConnectionInfo {
            account,
            detail: Some(detail),
        })
    }

    fn fetch_issue(source: &Source, key: &str) -> Result<Issue, ProviderError> {
        let key = parse_identifier(key).map_err(invalid)?;
        let query =
            format!("query IssueStatus($id: String!) {{ issue(id: $id) {{ {ISSUE_FIELDS} }} }}");
        let what = format!("Linear issue {key}");
        let data = graphql(
            source,
            json!({"query": query, "variables": {"id": key}}),
            &what,
        )?;
        match data.get("issue") {
            Some(node) if node.is_object() => to_issue(source, &key, node),
            _ => Err(ProviderError::NotFound(format!(
                "{what} was not found (or this account cannot see it)"
            ))),
        }
    }

    /// One `issues(filter: { or: [{ team: { key: { eq } }, number: { in } }, ...] })` request per
    /// 100 keys. Aliased `issue(id:)` lookups cannot batch: `Query.issue` is non-null, so one
    /// unknown key nulls the whole `data` (GraphQL null propagation) and fails every key. Keys
    /// the filter misses are looked up singly (few): a moved issue or a renamed team keeps its
    /// old identifier as an alias that only `issue(id:)` resolves. A refused batch query falls
    /// back on `issue(id:)` reads within the call's request budget.
    fn fetch_issues(
        source: &Source,
        keys: &[String],
    ) -> Result<Vec<Result<Issue, ProviderError>>, ProviderError> {
        let mut out: Vec<Option<Result<Issue, ProviderError>>> = vec![None; keys.len()];
        let mut parsed: Vec<(usize, String, String, u64)> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            match parse_identifier(key) {
                Ok(canonical) => {
                    let (team, number) = canonical
                        .split_once('-')
                        .expect("canonical key has a hyphen");
                    let number = number.parse().expect("canonical number");
                    parsed.push((i, canonical.clone(), team.to_string(), number));
                }
                Err(m) => out[i] = Some(Err(invalid(m))),
            }
        }

        for chunk in parsed.chunks(BATCH_CHUNK) {
            let nodes = match batch_query(source, chunk) {
                Err(e) if is_batch_refusal(&e) => {
                    // The `issue(id:)` read of link creation may still work.
                    let cause = format!("the batch query failed: {}", error_message(&e));
                    return fetch_each(keys, &cause, |key| Self::fetch_issue(source, key));
                }
                other => other?,
            };
            for (i, canonical, _, _) in chunk {
                if let Some(node) = nodes
                    .iter()
                    .find(|n| str_at(n, "/identifier") == Some(canonical))
                {
                    out[*i] = Some(to_issue(source, canonical, node));
                }
            }
        }

        let mut lookups = 0;
        let mut fatal: Option<ProviderError> = None;
        for (i, canonical, _, _) in &parsed {
            if out[*i].is_some() {
                continue;
            }
            if let Some(e) = &fatal {
                out[*i] = Some(Err(e.clone()));
                continue;
            }
            if lookups == MAX_SINGLE_LOOKUPS {
                out[*i] = Some(Err(ProviderError::NotFound(format!(
                    "Linear issue {canonical} was not found by team key and number (not looked up \
                     by old identifiers: too many unknown keys in one batch)"
                ))));
                continue;
            }
            lookups += 1;
            let result = Self::fetch_issue(source, canonical);
            if let Err(e) = &result
                && is_batch_fatal(e)
            {
                fatal = Some(e.clone());
            }
            out[*i] = Some(result);
        }
        Ok(out
            .into_iter()
            .map(|r| r.expect("every key has a result"))
            .collect())
    }
}

/// Proves the credentials can read issues, not only the viewer: a key restricted to creating
/// issues, or an OAuth token without the `read` scope, signs in but cannot list issues.
fn check_issue_access(source: &Source, account: &str) -> Result<(), ProviderError> {
    let probe = json!({"query": "query IssueAccess { issues(first: 1) { nodes { id } } }"});
    match graphql(source, probe, "the issues") {
        Err(ProviderError::Forbidden(message)) => Err(ProviderError::Forbidden(format!(
            "connected as {account}, but the credentials cannot read issues ({message}): give the \
             API key the Read permission (or the OAuth token the read scope) and access to the \
             teams whose issues are linked"
        ))),
        other => other.map(|_| ()),
    }
}

/// Sends one batch query and returns the issue nodes.
fn batch_query(
    source: &Source,
    chunk: &[(usize, String, String, u64)],
) -> Result<Vec<Value>, ProviderError> {
    // One `or` branch per team: { team: { key: { eq: "ENG" } }, number: { in: [1, 2] } }.
    let mut teams: Vec<(&str, Vec<u64>)> = Vec::new();
    for (_, _, team, number) in chunk {
        match teams.iter_mut().find(|(t, _)| t == team) {
            Some((_, numbers)) if !numbers.contains(number) => numbers.push(*number),
            Some(_) => {}
            None => teams.push((team, vec![*number])),
        }
    }
    let branches: Vec<Value> = teams
        .iter()
        .map(|(team, numbers)| json!({"team": {"key": {"eq": team}}, "number": {"in": numbers}}))
        .collect();
    let first: usize = teams.iter().map(|(_, n)| n.len()).sum();
    let query = format!(
        "query IssuesByKey($filter: IssueFilter!, $first: Int!) {{ issues(filter: $filter, first: $first, includeArchived: true) {{ nodes {{ {ISSUE_FIELDS} }} }} }}"
    );
    let body = json!({"query": query, "variables": {"filter": {"or": branches}, "first": first}});
    let data = graphql(source, body, "the Linear issues")?;
    match data.pointer("/issues/nodes").and_then(Value::as_array) {
        Some(nodes) => Ok(nodes.clone()),
        None => Err(ProviderError::Provider(
            "Linear answered the issues query without issues.nodes".into(),
        )),
    }
}

/// Maps an issue node to the contract's issue; `key` is the key asked for (an old identifier
/// of a moved issue stays the link's key).
fn to_issue(source: &Source, key: &str, node: &Value) -> Result<Issue, ProviderError> {
    let title = str_at(node, "/title").ok_or_else(|| {
        ProviderError::Provider(format!("Linear answered issue {key} without a title"))
    })?;
    let status = str_at(node, "/state/name").unwrap_or("Unknown");
    // WorkflowState.type is a String: triage, backlog, unstarted, started, completed, canceled,
    // duplicate (providers.md §4.4). Unknown future types count as not started.
    let status_category = match str_at(node, "/state/type").unwrap_or("") {
        "started" => StatusCategory::InProgress,
        "completed" | "canceled" | "duplicate" => StatusCategory::Done,
        _ => StatusCategory::ToDo,
    };
    // `name` is the full name, `displayName` the nickname; prefer what people recognise.
    let assignee = str_at(node, "/assignee/name")
        .or_else(|| str_at(node, "/assignee/displayName"))
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string);
    let web_url = match (&source.issue_url_template, str_at(node, "/url")) {
        (None, Some(url)) if url.starts_with("https://") || url.starts_with("http://") => {
            url.to_string()
        }
        _ => Plugin::issue_url(source, key)?,
    };
    Ok(Issue {
        key: key.to_string(),
        title: title.to_string(),
        status: status.to_string(),
        status_category,
        assignee,
        web_url,
    })
}

/// The GraphQL endpoint: the `api-url` setting (with `/graphql` appended if missing) or Linear's.
fn api_url(source: &Source) -> String {
    match setting(source, "api-url") {
        Some(url) => {
            let url = url.trim_end_matches('/');
            if url.ends_with("/graphql") {
                url.to_string()
            } else {
                format!("{url}/graphql")
            }
        }
        None => API_URL.to_string(),
    }
}

/// Posts a GraphQL request and returns `data`, or the error Linear's answer means. `what`
/// names the thing asked for in messages.
fn graphql(source: &Source, body: Value, what: &str) -> Result<Value, ProviderError> {
    let resp = post_json(api_url(source), &body).send()?;
    let parsed: Option<Value> = serde_json::from_slice(&resp.body).ok();
    // Linear reports errors in `errors[]` whatever the HTTP status (200, 400, 401, 429):
    // always read them first (providers.md §4.3).
    if let Some(errors) = parsed
        .as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(Value::as_array)
        && !errors.is_empty()
    {
        return Err(graphql_error(&resp, errors, what));
    }
    if resp.status == 429 {
        return Err(rate_limited(
            &resp,
            "Linear answered HTTP 429 (rate limited)".into(),
        ));
    }
    if !resp.is_success() {
        return Err(match resp.status {
            401 => unauthorized("Linear answered HTTP 401"),
            400 => ProviderError::Provider(format!(
                "Linear rejected the request for {what} (HTTP 400): {}",
                excerpt(&resp.text())
            )),
            _ => status_error(&resp, what),
        });
    }
    // Not JSON: the SDK's error says so without echoing the body.
    let value = match parsed {
        Some(value) => value,
        None => resp.json()?,
    };
    match value.get("data") {
        Some(data) if data.is_object() => Ok(data.clone()),
        _ => Err(ProviderError::Provider(
            "Linear answered without data or errors".into(),
        )),
    }
}

/// Reads Linear's typed errors (`extensions.type`, `extensions.code`; providers.md §4.3).
/// The most telling error wins: credentials, then rate limit, then access, then the first.
fn graphql_error(resp: &HttpResponse, errors: &[Value], what: &str) -> ProviderError {
    let kind = |e: &Value| -> String {
        let t = str_at(e, "/extensions/type")
            .unwrap_or("")
            .to_ascii_lowercase();
        if !t.is_empty() {
            return t;
        }
        match str_at(e, "/extensions/code").unwrap_or("") {
            "AUTHENTICATION_ERROR" => "authentication error",
            "RATELIMITED" => "ratelimited",
            "FORBIDDEN" => "forbidden",
            "INPUT_ERROR" | "BAD_USER_INPUT" => "invalid input",
            "GRAPHQL_VALIDATION_FAILED" | "GRAPHQL_PARSE_FAILED" => "graphql error",
            _ => "unknown",
        }
        .to_string()
    };
    let pick = ["authentication error", "ratelimited", "forbidden"]
        .iter()
        .find_map(|k| errors.iter().find(|e| kind(e) == *k))
        .unwrap_or(&errors[0]);
    let message = error_text(pick);
    match kind(pick).as_str() {
        "authentication error" => unauthorized(&format!("Linear: {message}")),
        "ratelimited" => rate_limited(resp, format!("Linear: {message}")),
        "forbidden" => ProviderError::Forbidden(format!(
            "Linear refused access to {what}: {message}; check the key's scopes and team access"
        )),
        "feature not accessible" => ProviderError::Forbidden(format!(
            "Linear: {message} (the workspace's plan or the key's scopes do not allow this)"
        )),
        "invalid input"
            if str_at(pick, "/message")
                .unwrap_or("")
                .starts_with("Entity not found") =>
        {
            ProviderError::NotFound(format!(
                "{what} was not found (or this account cannot see it): {message}"
            ))
        }
        "invalid input" | "user error" => {
            ProviderError::InvalidInput(format!("Linear rejected {what}: {message}"))
        }
        "graphql error" => {
            ProviderError::Provider(format!("Linear rejected the query for {what}: {message}"))
        }
        "usage limit exceeded" => ProviderError::Provider(format!(
            "Linear: {message} (the workspace's usage limit is reached)"
        )),
        _ => ProviderError::Provider(format!(
            "Linear failed on {what} (HTTP {}): {message}",
            resp.status
        )),
    }
}

/// `message` plus `userPresentableMessage` when it adds something.
fn error_text(e: &Value) -> String {
    let message = str_at(e, "/message").unwrap_or("unknown error");
    match str_at(e, "/extensions/userPresentableMessage") {
        Some(extra) if !extra.is_empty() && extra != message => {
            snippet(&format!("{message} - {extra}"))
        }
        _ => snippet(message),
    }
}

fn unauthorized(prefix: &str) -> ProviderError {
    let prefix = prefix.trim_end_matches('.');
    ProviderError::Unauthorized(format!(
        "{prefix}. Check the API key (it is sent without \"Bearer\") or the OAuth access token, \
         and that it has not been revoked or expired"
    ))
}

/// A rate-limit error with the wait Linear's headers ask for (providers.md §4.6): `Retry-After`
/// seconds, else the reset (epoch milliseconds) of the exhausted bucket, else 60 s.
fn rate_limited(resp: &HttpResponse, message: String) -> ProviderError {
    ProviderError::RateLimited(RateLimit {
        retry_after_secs: retry_after_secs(resp),
        message,
    })
}

fn retry_after_secs(resp: &HttpResponse) -> u32 {
    let num = |name: &str| resp.header(name).and_then(|v| v.trim().parse::<f64>().ok());
    if let Some(secs) = num("retry-after").filter(|s| *s >= 0.0) {
        return (secs.ceil() as u64).clamp(1, u32::MAX as u64) as u32;
    }
    let buckets = [
        (
            "x-ratelimit-requests-remaining",
            "x-ratelimit-requests-reset",
        ),
        (
            "x-ratelimit-complexity-remaining",
            "x-ratelimit-complexity-reset",
        ),
        (
            "x-ratelimit-endpoint-requests-remaining",
            "x-ratelimit-endpoint-requests-reset",
        ),
    ];
    let exhausted: Vec<u64> = buckets
        .iter()
        .filter(|(remaining, _)| num(remaining).is_some_and(|r| r <= 0.0))
        .filter_map(|(_, reset)| num(reset).map(reset_to_secs))
        .collect();
    let waits = if exhausted.is_empty() {
        buckets
            .iter()
            .filter_map(|(_, reset)| num(reset).map(reset_to_secs))
            .collect()
    } else {
        exhausted
    };
    waits
        .into_iter()
        .max()
        .unwrap_or(60)
        .clamp(1, u32::MAX as u64) as u32
}

/// A reset header: epoch milliseconds (Linear), epoch seconds, or a delta in seconds.
fn reset_to_secs(reset: f64) -> u64 {
    const YEAR: f64 = 365.0 * 24.0 * 3600.0;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let wait = if reset > 1e11 {
        reset / 1000.0 - now
    } else if reset > YEAR {
        reset - now
    } else {
        reset
    };
    wait.ceil().max(1.0) as u64
}

fn invalid(message: impl Into<String>) -> ProviderError {
    ProviderError::InvalidInput(message.into())
}

/// Parses `TEAM-123` (any case) into the canonical upper-case identifier.
/// Team key: 1-10 ASCII letters/digits with at least one letter (it may start with a digit,
/// `2ENG-1`); number: positive, no leading zeros (providers.md §4.7).
fn parse_identifier(text: &str) -> Result<String, String> {
    let shown = shorten(text);
    let expected = "expected the team key, a hyphen and the issue number, e.g. ENG-123";
    let Some((team, number)) = text.split_once('-') else {
        return Err(format!("{shown} is not a Linear issue key: {expected}"));
    };
    if team.is_empty() {
        return Err(format!(
            "{shown} is not a Linear issue key: the team key before \"-\" is missing ({expected})"
        ));
    }
    if !team.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "{shown} is not a Linear issue key: the team key may only contain the letters A-Z and digits 0-9 ({expected})"
        ));
    }
    if team.len() > MAX_TEAM_KEY {
        return Err(format!(
            "{shown} is not a Linear issue key: the team key is longer than {MAX_TEAM_KEY} characters"
        ));
    }
    if !team.bytes().any(|b| b.is_ascii_alphabetic()) {
        return Err(format!(
            "{shown} is not a Linear issue key: the team key must contain a letter ({expected})"
        ));
    }
    if number.is_empty() {
        return Err(format!(
            "{shown} is not a Linear issue key: the issue number after \"-\" is missing ({expected})"
        ));
    }
    let n = parse_issue_number(number).filter(|n| *n <= (1 << 53)).ok_or_else(|| {
        format!(
            "{shown} is not a Linear issue key: the issue number must be a positive whole number without leading zeros ({expected})"
        )
    })?;
    Ok(format!("{}-{n}", team.to_ascii_uppercase()))
}

/// The key in a pasted issue URL: `https://linear.app/{workspace}/issue/ENG-7/optional-slug`.
fn key_from_url(source: &Source, text: &str) -> Result<String, ProviderError> {
    let shown = shorten(text);
    let host = url_host(text).unwrap_or_default();
    let base_host = url_host(&source.base_url).unwrap_or_default();
    if host != WEB_HOST && host != base_host {
        return Err(invalid(format!(
            "{shown} is not a Linear issue URL (expected https://linear.app/<workspace>/issue/ENG-123)"
        )));
    }
    let segments = url_path_segments(text).unwrap_or_default();
    let Some(at) = segments
        .iter()
        .position(|s| s == "issue")
        .filter(|i| i + 1 < segments.len())
    else {
        return Err(invalid(format!(
            "{shown} is not a link to a Linear issue (expected https://linear.app/<workspace>/issue/ENG-123)"
        )));
    };
    let key = parse_identifier(&segments[at + 1]).map_err(invalid)?;
    if host == WEB_HOST
        && at == 1
        && let Some(ours) = base_workspace(source)
        && !segments[0].eq_ignore_ascii_case(&ours)
    {
        return Err(invalid(format!(
            "this link is to an issue of the Linear workspace \"{}\", but this source is the workspace \"{ours}\"",
            segments[0]
        )));
    }
    Ok(key)
}

/// The lower-case host of an http(s) URL.
fn url_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next()?;
    Some(host.to_ascii_lowercase())
}

/// The workspace (`urlKey`) named by a `https://linear.app/{workspace}` base URL.
fn base_workspace(source: &Source) -> Option<String> {
    if url_host(&source.base_url)? != WEB_HOST {
        return None;
    }
    url_path_segments(&source.base_url)?.into_iter().next()
}

/// A base URL on linear.app must name the API key's workspace, or every issue link is wrong.
/// Other hosts (a proxy, a stand-in) are not checked.
fn check_workspace(source: &Source, url_key: Option<&str>) -> Result<(), ProviderError> {
    let Some(url_key) = url_key else {
        return Ok(());
    };
    if url_host(&source.base_url).as_deref() != Some(WEB_HOST) {
        return Ok(());
    }
    match base_workspace(source) {
        None => Err(invalid(format!(
            "the credentials work, but the base URL must name the workspace: set it to https://{WEB_HOST}/{url_key}"
        ))),
        Some(ours) if !ours.eq_ignore_ascii_case(url_key) => Err(invalid(format!(
            "the credentials belong to the workspace \"{url_key}\", but the base URL names \"{ours}\": \
             set the base URL to https://{WEB_HOST}/{url_key} or use a key of that workspace"
        ))),
        Some(_) => Ok(()),
    }
}

/// The input quoted for a message, at most 60 characters.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((i, _)) => format!("\"{}…\"", &text[..i]),
        None => format!("\"{text}\""),
    }
}

export_provider!(Plugin);
