//! GitLab Issues provider plugin (REST API v4; facts in `../shared/providers.md` §5).
//!
//! A source is one project: its base URL is the project's web URL, e.g.
//! `https://gitlab.com/group/subgroup/project` (nested groups) or a self-managed
//! `https://git.example.com/group/project`. The API root is `{origin}/api/v4` unless the
//! `api-url` setting says otherwise (a GitLab under a relative URL root such as
//! `https://example.com/gitlab` needs it, because nothing in the base URL tells where the root
//! ends and the project path begins). The project is addressed by its URL-encoded full path.
//!
//! Keys are project-scoped issue numbers (`iid`): `123`, `#123`, `group/project#123` or a
//! pasted `…/-/issues/123` URL all become `123`. The plugin keeps no state and must not grow
//! heavy dependencies: every call runs in a fresh instance.

mod events;

use serde_json::Value;
use testorchestrator_provider_sdk::*;

mod comments;

struct GitLab;

/// GitLab stores `iid` as a 32-bit integer column.
const MAX_IID: u64 = i32::MAX as u64;
/// The list endpoint's largest page; one batch request asks for at most this many iids.
const BATCH: usize = 100;

impl Provider for GitLab {
    fn describe() -> ProviderInfo {
        let secret = |name: &str, label: &str, help: &str| AuthField {
            name: name.into(),
            label: label.into(),
            secret: true,
            required: true,
            help: Some(help.into()),
        };
        ProviderInfo {
            id: "gitlab".into(),
            version: "1.0.0".into(),
            name: "GitLab Issues".into(),
            key_hint: "Project issue number: #123, 123 or a pasted issue URL".into(),
            key_example: "123".into(),
            default_key_pattern: Some("^[1-9][0-9]{0,9}$".into()),
            default_issue_url_template: "{baseUrl}/-/issues/{key}".into(),
            default_create_url_template: Some("{baseUrl}/-/issues/new".into()),
            base_url_example: "https://gitlab.com/group/subgroup/project".into(),
            auth_types: vec![
                AuthType {
                    id: "api-token".into(),
                    label: "API Token".into(),
                    fields: vec![secret(
                        "token",
                        "Access token",
                        "A personal, project or group access token with the read_api scope (the api scope to post comments).",
                    )],
                    scheme: CredentialScheme::Header(HeaderScheme {
                        name: "PRIVATE-TOKEN".into(),
                        prefix: String::new(),
                        field: "token".into(),
                    }),
                },
                AuthType {
                    id: "oauth2".into(),
                    label: "OAuth 2.0".into(),
                    fields: vec![secret(
                        "access-token",
                        "Access token",
                        "An OAuth 2.0 access token with the read_api scope (GitLab's expire after 2 hours).",
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
            settings: vec![
                Setting {
                    name: "api-url".into(),
                    label: "API URL".into(),
                    help: "The REST API root, when it is not {origin}/api/v4: e.g. \
                           https://example.com/gitlab/api/v4 for a GitLab under a relative URL root."
                        .into(),
                    kind: SettingKind::Url,
                    required: false,
                },
                Setting {
                    name: "in-progress-labels".into(),
                    label: "In-progress labels".into(),
                    help: "Comma-separated labels that mark an open issue as in progress, e.g. \
                           'workflow::in progress, Doing'. GitLab itself only knows opened and closed."
                        .into(),
                    kind: SettingKind::Text,
                    required: false,
                },
            ],
            extra_origins: vec![],
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
        normalize(source, key).map(|iid| iid.to_string())
    }

    fn describe_events() -> Vec<EventScheme> {
        events::schemes()
    }

    fn parse_event(source: &Source, event: &Event) -> Result<Vec<EventChange>, ProviderError> {
        events::parse(source, event)
    }

    fn test_connection(source: &Source) -> Result<ConnectionInfo, ProviderError> {
        let project = Project::of(source)?;
        let resp = get(project.api_url("")).send()?;
        if !resp.is_success() {
            return Err(project.error(source, &resp, None));
        }
        let body = resp.json()?;
        let path = str_at(&body, "/path_with_namespace").unwrap_or(&project.path);
        let issues_off = body.get("issues_enabled") == Some(&Value::Bool(false))
            || str_at(&body, "/issues_access_level") == Some("disabled");
        if issues_off {
            return Err(ProviderError::Unsupported(format!(
                "issues are turned off in project {path}; enable them under Settings > General > \
                 Visibility, project features, permissions"
            )));
        }
        let issue_note = check_issue_access(source, &project)?;
        let mut detail = format!("project {path}");
        if let Some(visibility) = str_at(&body, "/visibility") {
            detail.push_str(&format!(" ({visibility})"));
        }
        if let Some(note) = issue_note {
            detail.push_str(&format!("; {note}"));
        }
        if !path.eq_ignore_ascii_case(&project.path) {
            // GitLab answers a renamed or transferred project's old path with a redirect.
            detail.push_str(&format!(
                "; the project moved from {} to {path}: update the base URL",
                project.path
            ));
        }
        Ok(ConnectionInfo {
            account: whoami(source, &project)?,
            detail: Some(detail),
        })
    }

    fn fetch_issue(source: &Source, key: &str) -> Result<Issue, ProviderError> {
        let project = Project::of(source)?;
        let iid = canonical(key)?;
        let resp = get(project.api_url(&format!("/issues/{iid}"))).send()?;
        if !resp.is_success() {
            return Err(project.error(source, &resp, Some(iid)));
        }
        to_issue(source, &resp.json()?, iid)
    }

    fn fetch_issues(
        source: &Source,
        keys: &[String],
    ) -> Result<Vec<Result<Issue, ProviderError>>, ProviderError> {
        let project = Project::of(source)?;
        let parsed: Vec<Result<u64, ProviderError>> = keys.iter().map(|k| canonical(k)).collect();
        let mut wanted: Vec<u64> = parsed
            .iter()
            .filter_map(|p| p.as_ref().ok().copied())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();

        let mut found: Vec<(u64, Value)> = Vec::new();
        for chunk in wanted.chunks(BATCH) {
            // One list request per 100 iids (GitLab docs, "List project issues": `iids[]`,
            // `scope` defaults to `all` for a project, `state` to all states).
            let mut url = project.api_url(&format!("/issues?scope=all&per_page={BATCH}"));
            for iid in chunk {
                url.push_str(&format!("&iids[]={iid}"));
            }
            let list = match list_issues(source, &project, &url) {
                // A 404 included: a GitLab (or proxy) without the list route may still answer
                // the single-issue read of link creation, and if the project itself is missing
                // each single read says so for its own issue.
                Err(e) if is_batch_refusal(&e) => {
                    let cause = format!("the issue list failed: {}", error_message(&e));
                    return fetch_each(keys, &cause, |key| Self::fetch_issue(source, key));
                }
                other => other?,
            };
            for item in list {
                if let Some(iid) = item.get("iid").and_then(Value::as_u64) {
                    found.push((iid, item.clone()));
                }
            }
        }

        Ok(parsed
            .into_iter()
            .map(|p| {
                let iid = p?;
                match found.iter().find(|(i, _)| *i == iid) {
                    Some((_, item)) => to_issue(source, item, iid),
                    None => Err(ProviderError::NotFound(format!(
                        "issue #{iid} was not found in {} (it may have been deleted or moved, or it \
                         is confidential and hidden from these credentials)",
                        project.path
                    ))),
                }
            })
            .collect())
    }
}

/// One page of "List project issues".
fn list_issues(source: &Source, project: &Project, url: &str) -> Result<Vec<Value>, ProviderError> {
    let resp = get(url).send()?;
    if !resp.is_success() {
        return Err(project.error(source, &resp, None));
    }
    match resp.json()? {
        Value::Array(list) => Ok(list),
        _ => Err(ProviderError::Provider(
            "GitLab answered the issue list with something other than a list".into(),
        )),
    }
}

/// Checks the credentials can read the project's issues, not only the project: issues limited
/// to members ("Issues: Only Project Members") refuse everyone else. One issue is enough. The
/// project read proved the connection, so this probe is advisory: only a refusal of the
/// credentials (401/403) fails the test; any other failure is a note for the detail.
fn check_issue_access(source: &Source, project: &Project) -> Result<Option<String>, ProviderError> {
    let url = project.api_url("/issues?scope=all&per_page=1");
    match list_issues(source, project, &url) {
        Ok(_) => Ok(None),
        Err(e @ (ProviderError::Unauthorized(_) | ProviderError::Forbidden(_))) => Err(e),
        Err(e) => Ok(Some(format!(
            "reading the issue list was not checked ({})",
            error_message(&e)
        ))),
    }
}

/// The project a source points at, and where its API lives.
struct Project {
    /// The web host (`host[:port]`, lower case), for matching pasted URLs.
    host: String,
    /// The web path segments before the project path (a relative URL root), lower case.
    root: Vec<String>,
    /// The project's full path, e.g. `group/subgroup/project`.
    path: String,
    /// The API root without trailing slash, e.g. `https://gitlab.com/api/v4`.
    api: String,
}

impl Project {
    fn of(source: &Source) -> Result<Project, ProviderError> {
        let base = source.base_url.trim().trim_end_matches('/');
        let (scheme, host, segments) = split_url(base).ok_or_else(|| {
            ProviderError::InvalidInput(format!("the base URL {base:?} is not an http(s) URL"))
        })?;
        let api_setting = setting(source, "api-url").map(|a| a.trim_end_matches('/').to_string());

        // With an API URL such as https://example.com/gitlab/api/v4, the part before /api/v4
        // is the relative URL root, which the project's web URL starts with too.
        let mut root: Vec<String> = Vec::new();
        if let Some((_, _, api_segments)) = api_setting.as_deref().and_then(split_url)
            && api_segments.len() >= 2
            && api_segments[api_segments.len() - 2..] == ["api", "v4"]
        {
            let prefix = &api_segments[..api_segments.len() - 2];
            if segments.len() > prefix.len()
                && prefix
                    .iter()
                    .zip(&segments)
                    .all(|(a, b)| a.eq_ignore_ascii_case(b))
            {
                root = prefix.to_vec();
            }
        }
        let project: Vec<&String> = segments[root.len()..].iter().collect();
        if let Some(dash) = project.iter().position(|s| *s == "-") {
            return Err(ProviderError::InvalidInput(format!(
                "the base URL must be the project's URL, without /-/{}: use {scheme}://{host}/{}",
                project[dash + 1..]
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("/"),
                segments[..root.len() + dash].join("/")
            )));
        }
        if project.len() < 2 {
            return Err(ProviderError::InvalidInput(format!(
                "the base URL {base} does not name a project: use the project's URL, e.g. \
                 https://gitlab.com/group/project (a GitLab under a relative URL root also needs \
                 the API URL setting, e.g. https://example.com/gitlab/api/v4)"
            )));
        }
        let path = project
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("/");
        let api = api_setting.unwrap_or_else(|| format!("{scheme}://{host}/api/v4"));
        Ok(Project {
            host: host.to_ascii_lowercase(),
            root: root.iter().map(|s| s.to_ascii_lowercase()).collect(),
            path,
            api,
        })
    }

    /// `{api}/projects/{url-encoded path}{rest}`.
    fn api_url(&self, rest: &str) -> String {
        format!(
            "{}/projects/{}{rest}",
            self.api,
            encode_component(&self.path)
        )
    }

    /// Maps an unsuccessful answer to an error, telling GitLab's different 404s apart.
    fn error(&self, source: &Source, resp: &HttpResponse, iid: Option<u64>) -> ProviderError {
        if let Some(limit) = rate_limit(resp) {
            return ProviderError::RateLimited(limit);
        }
        let body: Option<Value> = serde_json::from_slice(&resp.body).ok();
        let message = body
            .as_ref()
            .and_then(|b| str_at(b, "/message"))
            .unwrap_or("");
        let error = body
            .as_ref()
            .and_then(|b| str_at(b, "/error"))
            .unwrap_or("");
        let anonymous = source.auth_type == "none";
        match resp.status {
            401 if anonymous => ProviderError::Unauthorized(
                "GitLab requires sign-in for this project (HTTP 401): choose the access token auth type"
                    .into(),
            ),
            // OAuth failures say why: `{"error":"invalid_token","error_description":"Token is
            // expired. …"}`.
            401 => ProviderError::Unauthorized(format!(
                "GitLab rejected the token (HTTP 401{}): check that it is valid, has not expired \
                 and has not been revoked",
                body.as_ref()
                    .and_then(|b| str_at(b, "/error_description"))
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )),
            403 if error == "insufficient_scope" => ProviderError::Forbidden(format!(
                "the token lacks a scope GitLab needs here (HTTP 403 insufficient_scope{}): give it \
                 the read_api scope",
                body.as_ref()
                    .and_then(|b| str_at(b, "/scope"))
                    .map(|s| format!(", required: {s}"))
                    .unwrap_or_default()
            )),
            403 => ProviderError::Forbidden(format!(
                "GitLab refused access to {} in project {} (HTTP 403{}): the account may lack a role \
                 in the project, or its issues are limited to members",
                iid.map(|i| format!("issue #{i}")).unwrap_or_else(|| "the issues".into()),
                self.path,
                if message.is_empty() { String::new() } else { format!(" {message}") }
            )),
            404 if message.eq_ignore_ascii_case("404 Project Not Found") => {
                ProviderError::NotFound(format!(
                    "project {} was not found: check the base URL{} (GitLab answers 404, not 403, \
                     for a private project the account is not a member of)",
                    self.path,
                    if anonymous { " or use an access token" } else { " and the token's access" }
                ))
            }
            404 if !error.is_empty() || body.is_none() => ProviderError::NotFound(format!(
                "{} answered 404 for a GitLab API route ({}): the API root looks wrong (a GitLab \
                 under a relative URL root needs the API URL setting) or a proxy decodes the %2F in \
                 the project path",
                self.api,
                if error.is_empty() { excerpt(&resp.text()) } else { error.to_string() }
            )),
            404 => match iid {
                Some(i) => ProviderError::NotFound(format!(
                    "issue #{i} was not found in {} (it may have been deleted, or it is confidential \
                     and hidden from these credentials)",
                    self.path
                )),
                None => ProviderError::NotFound(format!(
                    "GitLab answered 404 ({message}) for project {}",
                    self.path
                )),
            },
            _ => status_error(resp, &format!("project {}", self.path)),
        }
    }
}

/// Who the credentials belong to, from `GET /user` (anonymous sources have nobody).
fn whoami(source: &Source, project: &Project) -> Result<String, ProviderError> {
    if source.auth_type == "none" {
        return Ok("anonymous (public access)".into());
    }
    let resp = get(format!("{}/user", project.api)).send()?;
    if resp.status == 403 && resp.rate_limit().is_none() {
        // A token may read the project without the scope `GET /user` wants.
        return Ok("an access token whose owner cannot be read (HTTP 403 on /user)".into());
    }
    if !resp.is_success() {
        return Err(project.error(source, &resp, None));
    }
    let body = resp.json()?;
    let name = str_at(&body, "/name").filter(|n| !n.trim().is_empty());
    Ok(match (name, str_at(&body, "/username")) {
        (Some(name), Some(user)) => format!("{name} (@{user})"),
        (None, Some(user)) => format!("@{user}"),
        (Some(name), None) => name.to_string(),
        (None, None) => "an unnamed GitLab account".into(),
    })
}

/// GitLab's rate-limit answer: 429 with `Retry-After` / `RateLimit-*` headers (sometimes none).
fn rate_limit(resp: &HttpResponse) -> Option<RateLimit> {
    let mut limit = resp.rate_limit()?;
    let mut message = format!("GitLab rate limit reached (HTTP {})", resp.status);
    if let Some(name) = resp.header("ratelimit-name") {
        message.push_str(&format!(": {name}"));
    }
    if let (Some(observed), Some(max)) = (
        resp.header("ratelimit-observed"),
        resp.header("ratelimit-limit"),
    ) {
        message.push_str(&format!(", {observed} of {max} requests"));
    }
    let text = resp.text();
    if !text.trim().is_empty() {
        message.push_str(&format!(" ({})", excerpt(&text)));
    }
    limit.message = message;
    Some(limit)
}

/// Turns an issue object into the contract's issue.
fn to_issue(source: &Source, item: &Value, iid: u64) -> Result<Issue, ProviderError> {
    let title = str_at(item, "/title").ok_or_else(|| {
        ProviderError::Provider(format!("GitLab's answer for issue #{iid} has no title"))
    })?;
    let state = str_at(item, "/state").unwrap_or("opened");
    let (status, category) = match state {
        "closed" => ("closed".to_string(), StatusCategory::Done),
        other => match in_progress_label(source, item) {
            Some(label) => (label, StatusCategory::InProgress),
            None => (other.to_string(), StatusCategory::ToDo),
        },
    };
    // `assignees` is current; the singular `assignee` is deprecated but kept as a fallback.
    let mut names: Vec<&str> = item
        .get("assignees")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(person).collect())
        .unwrap_or_default();
    if names.is_empty()
        && let Some(one) = item.get("assignee").and_then(person)
    {
        names.push(one);
    }
    let assignee = (!names.is_empty()).then(|| names.join(", "));
    let web_url = match (&source.issue_url_template, str_at(item, "/web_url")) {
        (None, Some(url)) if url.starts_with("https://") || url.starts_with("http://") => {
            url.to_string()
        }
        _ => GitLab::issue_url(source, &iid.to_string())?,
    };
    Ok(Issue {
        key: iid.to_string(),
        title: title.to_string(),
        status,
        status_category: category,
        assignee,
        web_url,
    })
}

/// A user's display name, else username.
fn person(user: &Value) -> Option<&str> {
    str_at(user, "/name")
        .filter(|n| !n.trim().is_empty())
        .or_else(|| str_at(user, "/username"))
}

/// The first of the issue's labels listed in the `in-progress-labels` setting.
fn in_progress_label(source: &Source, item: &Value) -> Option<String> {
    let wanted: Vec<&str> = setting(source, "in-progress-labels")?
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    item.get("labels")?
        .as_array()?
        .iter()
        .filter_map(|l| l.as_str().or_else(|| str_at(l, "/name")))
        .find(|l| wanted.iter().any(|w| w.eq_ignore_ascii_case(l)))
        .map(str::to_string)
}

/// A canonical key (as `normalize-key` returns it) as a number.
fn canonical(key: &str) -> Result<u64, ProviderError> {
    parse_issue_number(key)
        .filter(|n| *n <= MAX_IID)
        .ok_or_else(|| ProviderError::InvalidInput(format!("{key:?} is not a GitLab issue number")))
}

/// Parses a key as typed or pasted.
fn normalize(source: &Source, raw: &str) -> Result<u64, ProviderError> {
    let key = raw.trim();
    if key.is_empty() {
        return Err(invalid(
            "the key is empty: enter an issue number such as #123",
        ));
    }
    let lower = key.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return from_url(source, key);
    }
    if key.starts_with('!') {
        return Err(invalid(&format!(
            "{key} is a merge request reference; link an issue (#123) instead"
        )));
    }
    let number = match key.rsplit_once('#') {
        Some(("", number)) => number,
        Some((reference, number)) => {
            // A full reference as GitLab prints it: `group/project#123` (or `project#123`).
            let project = Project::of(source)?;
            let same = reference.eq_ignore_ascii_case(&project.path)
                || project
                    .path
                    .rsplit('/')
                    .next()
                    .is_some_and(|name| reference.eq_ignore_ascii_case(name));
            if !same {
                return Err(invalid(&format!(
                    "{key} refers to project {reference}, but this source is project {}",
                    project.path
                )));
            }
            number
        }
        None => key,
    };
    parse_number(number, key)
}

/// Parses the number part of a key, saying precisely what is wrong with it.
fn parse_number(number: &str, key: &str) -> Result<u64, ProviderError> {
    if let Some(n) = parse_issue_number(number) {
        if n <= MAX_IID {
            return Ok(n);
        }
        return Err(invalid(&format!(
            "{key} is larger than any GitLab issue number"
        )));
    }
    let why = if number.is_empty() {
        "an issue number must follow the #, e.g. #123".to_string()
    } else if number.chars().any(char::is_whitespace) {
        "it contains a space".to_string()
    } else if number.starts_with('-') || number.starts_with('+') {
        "issue numbers are positive whole numbers without a sign".to_string()
    } else if number.bytes().all(|b| b.is_ascii_digit()) && number.starts_with('0') {
        "issue numbers start at 1 and have no leading zeros".to_string()
    } else if number.bytes().all(|b| b.is_ascii_digit()) {
        "it is larger than any GitLab issue number".to_string()
    } else if number
        .chars()
        .any(|c| c.is_numeric() && !c.is_ascii_digit())
    {
        "use the digits 0-9".to_string()
    } else {
        "expected an issue number such as #123, 123 or an issue URL".to_string()
    };
    Err(invalid(&format!(
        "{key:?} is not a GitLab issue key: {why}"
    )))
}

/// Reads the issue number out of a pasted `…/group/project/-/issues/123` URL of this project.
fn from_url(source: &Source, url: &str) -> Result<u64, ProviderError> {
    let (_, host, segments) =
        split_url(url).ok_or_else(|| invalid(&format!("{url:?} is not a valid URL")))?;
    let not_issue = || {
        invalid(&format!(
            "{url} is not a GitLab issue URL (expected …/-/issues/123)"
        ))
    };
    // Current URLs put `/-/` between the project and the page; old ones did not.
    let (project, rest) = match segments.iter().position(|s| s == "-") {
        Some(dash) => (&segments[..dash], &segments[dash + 1..]),
        None if segments.len() >= 2 && segments[segments.len() - 2] == "issues" => {
            segments.split_at(segments.len() - 2)
        }
        None => return Err(not_issue()),
    };
    let number = match rest {
        [kind, number, ..] if kind == "issues" || kind == "work_items" => number,
        [kind, ..] if kind == "merge_requests" => {
            return Err(invalid(&format!("{url} is a merge request, not an issue")));
        }
        _ => return Err(not_issue()),
    };
    let this = Project::of(source)?;
    let web_path: Vec<String> = project.iter().map(|s| s.to_ascii_lowercase()).collect();
    let expected: Vec<String> = this
        .root
        .iter()
        .cloned()
        .chain(this.path.split('/').map(str::to_ascii_lowercase))
        .collect();
    if !host.eq_ignore_ascii_case(&this.host) || web_path != expected {
        return Err(invalid(&format!(
            "{url} is an issue of {host}/{}, but this source is the project {}/{}",
            project.join("/"),
            this.host,
            expected.join("/")
        )));
    }
    parse_number(number, url)
}

fn invalid(message: &str) -> ProviderError {
    ProviderError::InvalidInput(message.to_string())
}

export_provider!(GitLab);
