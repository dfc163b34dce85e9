//! End-to-end tests of the GitHub Issues plugin (`github`) through the real host runtime,
//! against a stand-in GitHub (REST + GraphQL) on 127.0.0.1.
//!
//! The REST side follows `../shared/providers.md` section 2 (basic-error bodies, 401 "Bad
//! credentials", 404 for private repositories without access, 410 for deleted issues, 301 for
//! transferred ones, `x-ratelimit-*` headers on every answer, app installation tokens refused on
//! `/user`). The GraphQL side (`POST /graphql`, GHES `/api/graphql`) answers the documented
//! partial-success shape: an alias whose number no issue or pull request holds comes back `null`
//! with an `errors[]` entry `{"type": "NOT_FOUND", "path": ["repository", "<alias>"], "message":
//! "Could not resolve to an issue or pull request with the number of N."}` while the other
//! aliases resolve (shape as captured by `gh` and the resolvers found by the code search, e.g.
//! cli/cli#157), and an anonymous request gets 401 "This endpoint requires you to be
//! authenticated.".

use integration_tests::{issue, provider_error};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use host::plugin::model::{CredentialScheme, SettingKind, StatusCategory};
use host::plugin::{Issue, PluginError, ProviderError, SourceConfig};
use integration_tests::{StandIn, map, plugin_host, source};
use serde_json::{Value, json};

const ID: &str = "github";
const USER_TOKEN: &str = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
const APP_TOKEN: &str = "ghs_installation_token";
/// A fine-grained token with Metadata but without the Issues permission.
const NO_ISSUES_TOKEN: &str = "github_pat_11A_metadata_only";
const BASE: &str = "https://github.com/acme/shop";

// ---------------------------------------------------------------------------------------------
// The stand-in

struct GitHub {
    /// Path of the REST root: "" (api.github.com) or "/api/v3" (Enterprise Server).
    rest: String,
    /// Path of the GraphQL endpoint: "/graphql" or "/api/graphql".
    graphql: String,
    /// Web root used in `html_url`.
    web: String,
    private: bool,
    has_issues: bool,
    /// An older Enterprise Server whose GraphQL schema lacks `Issue.stateReason`.
    no_state_reason: bool,
    /// When set, `POST /graphql` answers this status and body (GraphQL missing or failing).
    graphql_refusal: Option<(u16, Value)>,
    issues: Vec<Value>,
}

/// A REST issue (shape per providers.md 2.4, API version 2022-11-28).
fn gh_issue(
    web: &str,
    n: u64,
    title: &str,
    state: &str,
    reason: Option<&str>,
    assignees: &[&str],
    pr: Option<bool>,
) -> Value {
    let user = |login: &str| {
        json!({
            "login": login, "id": 1, "node_id": "MDQ6VXNlcjE=",
            "avatar_url": "https://github.com/images/error/octocat_happy.gif",
            "html_url": format!("https://github.com/{login}"), "type": "User", "site_admin": false
        })
    };
    let kind = if pr.is_some() { "pull" } else { "issues" };
    let mut issue = json!({
        "id": 1000 + n,
        "node_id": "MDU6SXNzdWUx",
        "url": format!("https://api.github.com/repos/acme/shop/issues/{n}"),
        "repository_url": "https://api.github.com/repos/acme/shop",
        "html_url": format!("{web}/acme/shop/{kind}/{n}"),
        "number": n,
        "state": state,
        "state_reason": reason,
        "title": title,
        "user": user("monalisa"),
        "labels": [],
        "assignee": assignees.first().map(|a| user(a)),
        "assignees": assignees.iter().map(|a| user(a)).collect::<Vec<_>>(),
        "locked": false,
        "comments": 0,
        "closed_at": if state == "closed" { json!("2011-04-23T10:00:00Z") } else { Value::Null },
        "created_at": "2011-04-22T13:33:48Z",
        "updated_at": "2011-04-23T10:00:00Z",
        "author_association": "COLLABORATOR"
    });
    if let Some(merged) = pr {
        issue["pull_request"] = json!({
            "url": format!("https://api.github.com/repos/acme/shop/pulls/{n}"),
            "html_url": format!("{web}/acme/shop/pull/{n}"),
            "merged_at": if merged { json!("2011-04-23T10:00:00Z") } else { Value::Null }
        });
    }
    issue
}

impl GitHub {
    fn new() -> GitHub {
        GitHub::with("", "/graphql", "https://github.com")
    }

    fn with(rest: &str, graphql: &str, web: &str) -> GitHub {
        GitHub {
            rest: rest.into(),
            graphql: graphql.into(),
            web: web.into(),
            private: true,
            has_issues: true,
            no_state_reason: false,
            graphql_refusal: None,
            issues: vec![
                gh_issue(web, 1, "Crash on start", "open", None, &[], None),
                gh_issue(
                    web,
                    2,
                    "Typo in README",
                    "closed",
                    Some("completed"),
                    &["octocat"],
                    None,
                ),
                gh_issue(
                    web,
                    3,
                    "Dark mode",
                    "closed",
                    Some("not_planned"),
                    &[],
                    None,
                ),
                gh_issue(
                    web,
                    4,
                    "Crash on start (again)",
                    "closed",
                    Some("duplicate"),
                    &["hubot"],
                    None,
                ),
                gh_issue(
                    web,
                    5,
                    "Flaky test",
                    "open",
                    Some("reopened"),
                    &["octocat", "hubot"],
                    None,
                ),
                gh_issue(web, 7, "Add CI", "closed", None, &["octocat"], Some(true)),
                gh_issue(
                    web,
                    11,
                    "Draft: new checkout",
                    "open",
                    None,
                    &[],
                    Some(false),
                ),
            ],
        }
    }

    fn issue(&self, n: u64) -> Option<&Value> {
        self.issues.iter().find(|i| i["number"] == n)
    }
}

enum Caller {
    Anonymous,
    User,
    App,
    /// A user token that may read the repository's metadata but not its issues.
    NoIssues,
    Bad,
}

fn caller(headers: &HeaderMap) -> Caller {
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        None => Caller::Anonymous,
        Some(a) if a == format!("Bearer {USER_TOKEN}") || a == format!("token {USER_TOKEN}") => {
            Caller::User
        }
        Some(a) if a == format!("Bearer {APP_TOKEN}") => Caller::App,
        Some(a) if a == format!("Bearer {NO_ISSUES_TOKEN}") => Caller::NoIssues,
        Some(_) => Caller::Bad,
    }
}

fn reply(status: u16, body: Value) -> Response {
    let reset = now() + 3600;
    (
        StatusCode::from_u16(status).unwrap(),
        [
            (
                "content-type",
                "application/json; charset=utf-8".to_string(),
            ),
            ("x-ratelimit-limit", "5000".into()),
            ("x-ratelimit-remaining", "4999".into()),
            ("x-ratelimit-used", "1".into()),
            ("x-ratelimit-reset", reset.to_string()),
            ("x-ratelimit-resource", "core".into()),
            ("x-github-media-type", "github.v3; format=json".into()),
        ],
        body.to_string(),
    )
        .into_response()
}

fn error(status: u16, message: &str, doc: &str) -> Response {
    reply(
        status,
        json!({"message": message, "documentation_url": doc, "status": status.to_string()}),
    )
}

fn not_found() -> Response {
    error(
        404,
        "Not Found",
        "https://docs.github.com/rest/issues/issues#get-an-issue",
    )
}

fn bad_credentials() -> Response {
    error(401, "Bad credentials", "https://docs.github.com/rest")
}

async fn serve_github(State(gh): State<Arc<GitHub>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap();
    let headers = &parts.headers;
    // The plugin must ask for GitHub's media type and pin the API version.
    let accept: Vec<&str> = headers
        .get_all("accept")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if accept != ["application/vnd.github+json"] {
        return error(
            415,
            &format!("stand-in: expected one Accept: application/vnd.github+json, got {accept:?}"),
            "",
        );
    }
    match headers
        .get("x-github-api-version")
        .and_then(|v| v.to_str().ok())
    {
        Some("2022-11-28") => {}
        other => {
            return error(
                400,
                &format!("API version '{other:?}' is not supported."),
                "",
            );
        }
    }
    if headers.get("user-agent").is_none() {
        return error(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
            "",
        );
    }
    let path = parts.uri.path();
    let who = caller(headers);
    if matches!(who, Caller::Bad) {
        return bad_credentials();
    }
    if parts.method == "POST" && path == gh.graphql {
        if let Some((status, body)) = &gh.graphql_refusal {
            return reply(*status, body.clone());
        }
        return graphql(&gh, who, &body);
    }
    if matches!(who, Caller::NoIssues) && path.starts_with("/repos/acme/shop/issues") {
        return error(
            403,
            "Resource not accessible by personal access token",
            "https://docs.github.com/rest/issues/issues#get-an-issue",
        );
    }
    let Some(rest) = path.strip_prefix(gh.rest.as_str()) else {
        return not_found();
    };
    let can_read = !gh.private || !matches!(who, Caller::Anonymous);
    match (parts.method.as_str(), rest) {
        ("GET", "/user") => match who {
            Caller::User | Caller::NoIssues => reply(
                200,
                json!({
                    "login": "octocat", "id": 1, "node_id": "MDQ6VXNlcjE=",
                    "avatar_url": "https://github.com/images/error/octocat_happy.gif",
                    "url": "https://api.github.com/users/octocat", "html_url": "https://github.com/octocat",
                    "type": "User", "site_admin": false, "name": "monalisa octocat", "email": "octocat@github.com"
                }),
            ),
            Caller::App => error(
                403,
                "Resource not accessible by integration",
                "https://docs.github.com/rest/users/users#get-the-authenticated-user",
            ),
            _ => error(
                401,
                "Requires authentication",
                "https://docs.github.com/rest/users/users#get-the-authenticated-user",
            ),
        },
        ("GET", "/repos/acme/shop") if can_read => reply(
            200,
            json!({
                "id": 4242, "node_id": "R_kgDOA", "name": "shop", "full_name": "acme/shop",
                "private": gh.private, "visibility": if gh.private { "private" } else { "public" },
                "owner": { "login": "acme", "type": "Organization" },
                "html_url": format!("{}/acme/shop", gh.web), "has_issues": gh.has_issues, "open_issues_count": 3
            }),
        ),
        // "List repository issues": an array, newest first.
        ("GET", "/repos/acme/shop/issues") if can_read => {
            let per_page: usize = parts
                .uri
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|p| p.strip_prefix("per_page="))
                .map_or(30, |n| n.parse().unwrap());
            let newest: Vec<Value> = gh.issues.iter().rev().take(per_page).cloned().collect();
            reply(200, json!(newest))
        }
        ("GET", "/repos/acme/shop/issues/8") if can_read => error(
            410,
            "This issue was deleted",
            "https://docs.github.com/rest/issues/issues#get-an-issue",
        ),
        ("GET", "/repos/acme/shop/issues/9") if can_read => {
            let location = format!("{}/repositories/5151/issues/3", gh.rest);
            let mut resp = error(
                301,
                "Moved Permanently",
                "https://docs.github.com/rest/issues/issues#get-an-issue",
            );
            *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
            resp.headers_mut()
                .insert("location", location.parse().unwrap());
            resp
        }
        ("GET", "/repositories/5151/issues/3") => {
            let mut moved = gh_issue(
                &gh.web,
                3,
                "Transferred issue",
                "open",
                None,
                &["hubot"],
                None,
            );
            moved["html_url"] = json!(format!("{}/acme/new-home/issues/3", gh.web));
            reply(200, moved)
        }
        ("GET", r) if can_read && r.starts_with("/repos/acme/shop/issues/") => {
            let n: u64 = r.rsplit('/').next().unwrap().parse().unwrap_or(0);
            match gh.issue(n) {
                Some(issue) => reply(200, issue.clone()),
                None => not_found(),
            }
        }
        _ => not_found(),
    }
}

fn graphql(gh: &GitHub, who: Caller, body: &[u8]) -> Response {
    if matches!(who, Caller::Anonymous) {
        return error(
            401,
            "This endpoint requires you to be authenticated.",
            "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql",
        );
    }
    let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let query = req["query"].as_str().unwrap_or("").to_string();
    for needed in [
        "... on Issue",
        "stateReason",
        "assignees(first:",
        "... on PullRequest",
        "repository(owner: $owner, name: $name)",
    ] {
        if !query.contains(needed) {
            return reply(
                200,
                json!({"errors": [{"message": format!("stand-in: the query lacks {needed:?}: {query}")}]}),
            );
        }
    }
    if gh.no_state_reason {
        return reply(
            200,
            json!({"errors": [{
                "path": ["fragment F", "... on Issue", "stateReason"],
                "extensions": {"code": "undefinedField", "typeName": "Issue", "fieldName": "stateReason"},
                "locations": [{"line": 1, "column": 200}],
                "message": "Field 'stateReason' doesn't exist on type 'Issue'"
            }]}),
        );
    }
    let (owner, name) = (
        req["variables"]["owner"].as_str().unwrap_or(""),
        req["variables"]["name"].as_str().unwrap_or(""),
    );
    if !(owner.eq_ignore_ascii_case("acme") && name.eq_ignore_ascii_case("shop")) {
        return reply(
            200,
            json!({
                "data": {"repository": null},
                "errors": [{"type": "NOT_FOUND", "path": ["repository"], "locations": [{"line": 1, "column": 45}],
                            "message": format!("Could not resolve to a Repository with the name '{owner}/{name}'.")}]
            }),
        );
    }
    // Every alias must be `i<N>: issueOrPullRequest(number: <N>)`.
    let pieces: Vec<&str> = query.split("issueOrPullRequest(number: ").collect();
    let mut repository = serde_json::Map::new();
    let mut errors = Vec::new();
    for k in 1..pieces.len() {
        let digits: String = pieces[k].chars().take_while(char::is_ascii_digit).collect();
        let alias = format!("i{digits}");
        if !pieces[k - 1].trim_end().ends_with(&format!("{alias}:")) {
            return reply(
                200,
                json!({"errors": [{"message": format!("stand-in: bad alias before number {digits}")}]}),
            );
        }
        let n: u64 = digits.parse().unwrap();
        match gh.issue(n) {
            Some(issue) => {
                let logins: Vec<Value> = issue["assignees"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| json!({"login": u["login"]}))
                    .collect();
                let upper = |v: &Value| {
                    v.as_str()
                        .map(|s| json!(s.to_uppercase()))
                        .unwrap_or(Value::Null)
                };
                let node = if issue.get("pull_request").is_some() {
                    let merged = !issue["pull_request"]["merged_at"].is_null();
                    json!({"__typename": "PullRequest", "number": n, "title": issue["title"],
                           "state": if merged { json!("MERGED") } else { upper(&issue["state"]) },
                           "url": issue["html_url"], "assignees": {"nodes": logins}})
                } else {
                    json!({"__typename": "Issue", "number": n, "title": issue["title"], "state": upper(&issue["state"]),
                           "stateReason": upper(&issue["state_reason"]), "url": issue["html_url"],
                           "assignees": {"nodes": logins}})
                };
                repository.insert(alias, node);
            }
            None => {
                repository.insert(alias.clone(), Value::Null);
                errors.push(json!({
                    "type": "NOT_FOUND", "path": ["repository", alias], "locations": [{"line": 1, "column": 80}],
                    "message": format!("Could not resolve to an issue or pull request with the number of {n}.")
                }));
            }
        }
    }
    let mut answer = json!({"data": {"repository": repository}});
    if !errors.is_empty() {
        answer["errors"] = json!(errors);
    }
    reply(200, answer)
}

async fn start(gh: GitHub) -> StandIn {
    let router = Router::new()
        .fallback(serve_github)
        .with_state(Arc::new(gh));
    StandIn::start(router).await
}

/// A stand-in answering every request with the same response.
async fn start_fixed(status: u16, headers: &[(&str, String)], body: &'static str) -> StandIn {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    let router = Router::new().fallback(move || {
        let headers = headers.clone();
        async move {
            let mut resp = Response::builder()
                .status(status)
                .header("content-type", "application/json");
            for (n, v) in &headers {
                resp = resp.header(n, v);
            }
            resp.body(Body::from(body)).unwrap()
        }
    });
    StandIn::start(router).await
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// github.com, with the API pointed at the stand-in.
fn token_source(api: &str, token: &str) -> SourceConfig {
    SourceConfig {
        auth_type: "api-token".into(),
        secrets: map(&[("token", token)]),
        settings: map(&[("api-url", api)]),
        ..source(ID, BASE)
    }
}

fn anonymous_source(api: &str) -> SourceConfig {
    SourceConfig {
        settings: map(&[("api-url", api)]),
        ..source(ID, BASE)
    }
}

/// What issues 1-5, 7 and 11 of the stand-in read as.
fn expected(web: &str) -> Vec<Issue> {
    let url = |kind: &str, n: u32| format!("{web}/acme/shop/{kind}/{n}");
    vec![
        issue(
            "1",
            "Crash on start",
            "open",
            StatusCategory::ToDo,
            None,
            &url("issues", 1),
        ),
        issue(
            "2",
            "Typo in README",
            "closed",
            StatusCategory::Done,
            Some("octocat"),
            &url("issues", 2),
        ),
        issue(
            "3",
            "Dark mode",
            "closed as not planned",
            StatusCategory::Done,
            None,
            &url("issues", 3),
        ),
        issue(
            "4",
            "Crash on start (again)",
            "closed as duplicate",
            StatusCategory::Done,
            Some("hubot"),
            &url("issues", 4),
        ),
        issue(
            "5",
            "Flaky test",
            "open",
            StatusCategory::ToDo,
            Some("octocat, hubot"),
            &url("issues", 5),
        ),
        issue(
            "7",
            "Add CI",
            "merged",
            StatusCategory::Done,
            Some("octocat"),
            &url("pull", 7),
        ),
        issue(
            "11",
            "Draft: new checkout",
            "open",
            StatusCategory::ToDo,
            None,
            &url("pull", 11),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// describe, keys, URLs

#[tokio::test(flavor = "multi_thread")]
async fn describe_declares_github_auth_types_and_api_origin() {
    let host = plugin_host().await;
    let info = host.get(ID).unwrap().info.clone();
    assert_eq!(info.name, "GitHub Issues");
    assert_eq!(info.default_issue_url_template, "{baseUrl}/issues/{key}");
    assert_eq!(
        info.default_create_url_template.as_deref(),
        Some("{baseUrl}/issues/new")
    );
    assert_eq!(info.default_key_pattern.as_deref(), Some("^[1-9][0-9]*$"));
    assert_eq!(
        info.extra_origins,
        vec!["credentialed https://api.github.com".to_string()]
    );
    let ids: Vec<&str> = info.auth_types.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["api-token", "oauth2", "none"]);
    assert_eq!(
        info.auth_type("api-token").unwrap().scheme,
        CredentialScheme::Bearer {
            field: "token".into()
        }
    );
    assert!(info.auth_type("api-token").unwrap().fields[0].secret);
    assert_eq!(
        info.auth_type("oauth2").unwrap().scheme,
        CredentialScheme::Bearer {
            field: "access-token".into()
        }
    );
    assert_eq!(
        info.auth_type("none").unwrap().scheme,
        CredentialScheme::None
    );
    let api_url = info
        .settings
        .iter()
        .find(|s| s.name == "api-url")
        .expect("api-url setting");
    assert_eq!(api_url.kind, SettingKind::Url);
}

#[tokio::test(flavor = "multi_thread")]
async fn normalize_key_accepts_numbers_and_links_of_this_repository() {
    let host = plugin_host().await;
    let src = source(ID, BASE);
    let cases = [
        ("123", "123"),
        ("#123", "123"),
        ("  #7 ", "7"),
        ("acme/shop#12", "12"),
        ("Acme/Shop#12", "12"),
        ("https://github.com/acme/shop/issues/123", "123"),
        (
            "https://github.com/acme/shop/issues/123#issuecomment-4567",
            "123",
        ),
        (
            "https://www.github.com/Acme/Shop/issues/5?notification_referrer_id=x",
            "5",
        ),
        // Pull requests share the issues' numbers; their links are accepted too.
        ("https://github.com/acme/shop/pull/45", "45"),
        ("https://github.com/acme/shop/pull/45/files", "45"),
        ("2147483647", "2147483647"),
    ];
    for (input, want) in cases {
        let got = host.normalize_key(&src, input).await;
        assert_eq!(
            got.as_ref().ok().map(String::as_str),
            Some(want),
            "{input:?} -> {got:?}"
        );
    }
    let ghes = source(ID, "https://ghe.example.com/acme/shop");
    assert_eq!(
        host.normalize_key(&ghes, "https://ghe.example.com/acme/shop/issues/9")
            .await
            .unwrap(),
        "9"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn normalize_key_rejects_near_misses_and_other_repositories() {
    let host = plugin_host().await;
    let src = source(ID, BASE);
    let cases = [
        ("", "enter an issue number"),
        ("#", "missing"),
        ("0", "start at 1"),
        ("#0", "start at 1"),
        ("-1", "negative"),
        ("012", "leading zero"),
        ("\u{FF11}\u{FF12}", "digits 0-9"), // fullwidth １２
        ("\u{661}\u{662}", "digits 0-9"),   // Arabic-Indic ١٢
        ("12 3", "contains a space"),
        ("# 12", "contains a space"),
        ("abc", "not a GitHub issue number"),
        ("PROJ-1", "not a GitHub issue number"),
        ("##12", "not a GitHub issue number"),
        ("1.5", "not a GitHub issue number"),
        ("2147483648", "too large"),
        ("other/repo#3", "other/repo"),
        ("https://github.com/other/repo/issues/12", "other/repo#12"),
        (
            "https://github.com/acme/shop-fork/pull/12",
            "acme/shop-fork#12",
        ),
        (
            "https://ghe.example.com/acme/shop/issues/12",
            "ghe.example.com",
        ),
        ("https://gitlab.com/acme/shop/-/issues/1", "gitlab.com"),
        (
            "https://github.com/acme/shop/commit/1a2b3c",
            "not an issue link",
        ),
        ("https://github.com/acme/shop/issues/0", "not an issue link"),
        ("https://github.com/acme/shop", "not an issue link"),
    ];
    for (input, want) in cases {
        match host.normalize_key(&src, input).await {
            Err(PluginError::Provider(ProviderError::InvalidInput(message))) => {
                assert!(
                    message.contains(want),
                    "{input:?}: {message:?} should mention {want:?}"
                )
            }
            other => panic!("{input:?} should be invalid input, got {other:?}"),
        }
    }
    // A base URL without a repository cannot read pasted links.
    let bare = source(ID, "https://github.com/acme");
    match provider_error(host.normalize_key(&bare, "acme/shop#1").await) {
        ProviderError::InvalidInput(message) => {
            assert!(message.contains("does not name a repository"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_and_create_urls_use_templates() {
    let host = plugin_host().await;
    let src = source(ID, "https://github.com/acme/shop/");
    assert_eq!(
        host.issue_url(&src, "123").await.unwrap(),
        "https://github.com/acme/shop/issues/123"
    );
    assert_eq!(
        host.create_url(&src).await.unwrap(),
        "https://github.com/acme/shop/issues/new"
    );
    let custom = SourceConfig {
        issue_url_template: Some("{baseUrl}/pull/{key}".into()),
        create_url_template: Some("{baseUrl}/issues/new?template=bug_report.md&labels=bug".into()),
        ..source(ID, BASE)
    };
    assert_eq!(
        host.issue_url(&custom, "5").await.unwrap(),
        "https://github.com/acme/shop/pull/5"
    );
    assert_eq!(
        host.create_url(&custom).await.unwrap(),
        "https://github.com/acme/shop/issues/new?template=bug_report.md&labels=bug"
    );
}

// ---------------------------------------------------------------------------------------------
// test-connection

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_with_a_token_names_user_and_repository() {
    let stand = start(GitHub::new()).await;
    let host = plugin_host().await;
    let info = host
        .test_connection(&token_source(&stand.url, USER_TOKEN))
        .await
        .unwrap();
    assert_eq!(info.account, "octocat (monalisa octocat)");
    assert_eq!(
        info.detail.as_deref(),
        Some("repository acme/shop, private")
    );
    let requests = stand.requests();
    let uris: Vec<&str> = requests.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "/repos/acme/shop",
            "/repos/acme/shop/issues?per_page=1&state=all",
            "/user"
        ]
    );
    for r in &requests {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {USER_TOKEN}").as_str())
        );
        assert_eq!(r.header("x-github-api-version"), Some("2022-11-28"));
        assert_eq!(r.header("accept"), Some("application/vnd.github+json"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_with_an_app_installation_token() {
    let stand = start(GitHub {
        has_issues: false,
        ..GitHub::new()
    })
    .await;
    let host = plugin_host().await;
    let src = SourceConfig {
        auth_type: "oauth2".into(),
        secrets: map(&[("access-token", APP_TOKEN)]),
        ..token_source(&stand.url, "")
    };
    let info = host.test_connection(&src).await.unwrap();
    assert_eq!(info.account, "a GitHub App installation");
    assert!(info.detail.unwrap().contains("issues are disabled"));
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_errors_say_what_to_fix() {
    let stand = start(GitHub::new()).await;
    let host = plugin_host().await;
    match provider_error(
        host.test_connection(&token_source(&stand.url, "ghp_revoked"))
            .await,
    ) {
        ProviderError::Unauthorized(message) => {
            assert!(message.contains("Bad credentials"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // Anonymous on a private repository: GitHub answers 404, not 403.
    match provider_error(host.test_connection(&anonymous_source(&stand.url)).await) {
        ProviderError::NotFound(message) => {
            assert!(message.contains("acme/shop"), "{message}");
            assert!(message.contains("private"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A repository the token cannot see.
    let other = SourceConfig {
        base_url: "https://github.com/acme/secret".into(),
        ..token_source(&stand.url, USER_TOKEN)
    };
    match provider_error(host.test_connection(&other).await) {
        ProviderError::NotFound(message) => assert!(message.contains("acme/secret"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_anonymous_on_a_public_repository() {
    let stand = start(GitHub {
        private: false,
        ..GitHub::new()
    })
    .await;
    let host = plugin_host().await;
    let info = host
        .test_connection(&anonymous_source(&stand.url))
        .await
        .unwrap();
    assert_eq!(info.account, "anonymous");
    assert!(
        info.detail
            .unwrap()
            .starts_with("repository acme/shop, public")
    );
    let requests = stand.requests();
    assert_eq!(requests.len(), 1, "no /user call without a token");
    assert_eq!(requests[0].header("authorization"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_says_when_the_token_cannot_read_issues() {
    let stand = start(GitHub::new()).await;
    let host = plugin_host().await;
    match provider_error(
        host.test_connection(&token_source(&stand.url, NO_ISSUES_TOKEN))
            .await,
    ) {
        ProviderError::Forbidden(message) => {
            assert!(message.contains("acme/shop"), "{message}");
            assert!(message.contains("Issues: Read"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// fetch-issue

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_maps_states_reasons_assignees_and_pull_requests() {
    let stand = start(GitHub::new()).await;
    let host = plugin_host().await;
    let src = token_source(&stand.url, USER_TOKEN);
    for want in expected("https://github.com") {
        let got = host.fetch_issue(&src, &want.key).await.unwrap();
        assert_eq!(got, want);
    }
    for r in stand.requests() {
        assert_eq!(r.method, "GET");
        assert!(r.uri.starts_with("/repos/acme/shop/issues/"), "{}", r.uri);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_gone_missing_and_transferred() {
    let stand = start(GitHub::new()).await;
    let host = plugin_host().await;
    let src = token_source(&stand.url, USER_TOKEN);
    match provider_error(host.fetch_issue(&src, "404").await) {
        ProviderError::NotFound(message) => assert!(
            message.contains("#404") && message.contains("acme/shop"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    match provider_error(host.fetch_issue(&src, "8").await) {
        ProviderError::NotFound(message) => assert!(message.contains("deleted"), "{message}"),
        other => panic!("{other:?}"),
    }
    // 301 to the new repository: the host follows it on the same origin; the link follows GitHub.
    let moved = host.fetch_issue(&src, "9").await.unwrap();
    assert_eq!(moved.key, "9");
    assert_eq!(moved.title, "Transferred issue");
    assert_eq!(moved.web_url, "https://github.com/acme/new-home/issues/3");
    assert_eq!(moved.assignee.as_deref(), Some("hubot"));

    // The source's own template wins over GitHub's html_url.
    let templated = SourceConfig {
        issue_url_template: Some("{baseUrl}/issues/{key}?ref=to".into()),
        ..src.clone()
    };
    assert_eq!(
        host.fetch_issue(&templated, "7").await.unwrap().web_url,
        "https://github.com/acme/shop/issues/7?ref=to"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_with_bad_or_missing_credentials() {
    let stand = start(GitHub::new()).await;
    let host = plugin_host().await;
    assert!(matches!(
        provider_error(
            host.fetch_issue(&token_source(&stand.url, "ghp_wrong"), "1")
                .await
        ),
        ProviderError::Unauthorized(_)
    ));
    assert!(matches!(
        provider_error(host.fetch_issue(&anonymous_source(&stand.url), "1").await),
        ProviderError::NotFound(_)
    ));
    let forbidden = start_fixed(
        403,
        &[("x-ratelimit-remaining", "4000".into())],
        r#"{"message":"Resource not accessible by personal access token","documentation_url":"https://docs.github.com/rest/issues/issues#get-an-issue","status":"403"}"#,
    )
    .await;
    match provider_error(
        host.fetch_issue(&token_source(&forbidden.url, USER_TOKEN), "1")
            .await,
    ) {
        ProviderError::Forbidden(message) => {
            assert!(message.contains("Resource not accessible"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let locked_out = start_fixed(
        403,
        &[],
        r#"{"message":"Maximum number of login attempts exceeded. Please try again later.","documentation_url":"https://docs.github.com/rest"}"#,
    )
    .await;
    assert!(matches!(
        provider_error(
            host.fetch_issue(&token_source(&locked_out.url, USER_TOKEN), "1")
                .await
        ),
        ProviderError::Unauthorized(_)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_primary_and_secondary() {
    let host = plugin_host().await;
    let limited = |e: ProviderError| match e {
        ProviderError::RateLimited {
            retry_after_secs,
            message,
        } => (retry_after_secs, message),
        other => panic!("{other:?}"),
    };
    // Primary: 403 with x-ratelimit-remaining 0, wait until x-ratelimit-reset.
    let primary = start_fixed(
        403,
        &[
            ("x-ratelimit-limit", "5000".into()),
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-used", "5000".into()),
            ("x-ratelimit-reset", (now() + 120).to_string()),
            ("x-ratelimit-resource", "core".into()),
        ],
        r#"{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}"#,
    )
    .await;
    let (secs, message) = limited(provider_error(
        host.fetch_issue(&token_source(&primary.url, USER_TOKEN), "1")
            .await,
    ));
    assert!((110..=121).contains(&secs), "{secs}");
    assert!(message.contains("core"), "{message}");

    // The same as 429.
    let primary429 = start_fixed(
        429,
        &[
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", (now() + 600).to_string()),
        ],
        r#"{"message":"API rate limit exceeded"}"#,
    )
    .await;
    let (secs, _) = limited(provider_error(
        host.test_connection(&token_source(&primary429.url, USER_TOKEN))
            .await,
    ));
    assert!((590..=601).contains(&secs), "{secs}");

    // Secondary: retry-after wins.
    let secondary = start_fixed(
        403,
        &[("retry-after", "30".into()), ("x-ratelimit-remaining", "4000".into())],
        r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}"#,
    )
    .await;
    let (secs, _) = limited(provider_error(
        host.fetch_issue(&token_source(&secondary.url, USER_TOKEN), "1")
            .await,
    ));
    assert_eq!(secs, 30);

    // Secondary without retry-after: at least a minute.
    let secondary_bare = start_fixed(
        403,
        &[("x-ratelimit-remaining", "4000".into())],
        r#"{"message":"You have exceeded a secondary rate limit and have been temporarily blocked from content creation."}"#,
    )
    .await;
    let (secs, _) = limited(provider_error(
        host.fetch_issue(&token_source(&secondary_bare.url, USER_TOKEN), "1")
            .await,
    ));
    assert_eq!(secs, 60);
}

// ---------------------------------------------------------------------------------------------
// fetch-issues

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_is_one_graphql_query_with_per_key_not_found() {
    let stand = start(GitHub::new()).await;
    let host = plugin_host().await;
    let keys: Vec<String> = ["1", "2", "999", "3", "4", "5", "7", "11", "#x", "2"]
        .map(String::from)
        .to_vec();
    let results = host
        .fetch_issues(&token_source(&stand.url, USER_TOKEN), &keys)
        .await
        .unwrap();
    assert_eq!(results.len(), keys.len());
    let want = expected("https://github.com");
    assert_eq!(results[0].as_ref().unwrap(), &want[0]);
    assert_eq!(results[1].as_ref().unwrap(), &want[1]);
    match &results[2] {
        Err(ProviderError::NotFound(message)) => assert!(message.contains("#999"), "{message}"),
        other => panic!("{other:?}"),
    }
    for (got, want) in results[3..8].iter().zip(&want[2..7]) {
        assert_eq!(got.as_ref().unwrap(), want);
    }
    assert!(
        matches!(&results[8], Err(ProviderError::InvalidInput(_))),
        "{:?}",
        results[8]
    );
    assert_eq!(
        results[9].as_ref().unwrap(),
        &want[1],
        "a repeated key reads the same"
    );

    let requests = stand.requests();
    assert_eq!(
        requests.len(),
        2,
        "one GraphQL query for the batch, one REST read confirming #999: {requests:?}"
    );
    assert_eq!(requests[1].uri, "/repos/acme/shop/issues/999");
    assert_eq!(
        (requests[0].method.as_str(), requests[0].uri.as_str()),
        ("POST", "/graphql")
    );
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {USER_TOKEN}").as_str())
    );
    let body = requests[0].json();
    assert_eq!(body["variables"], json!({"owner": "acme", "name": "shop"}));
    let query = body["query"].as_str().unwrap();
    assert_eq!(
        query.matches("issueOrPullRequest(number: ").count(),
        8,
        "one alias per distinct number: {query}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_whole_batch_failures() {
    let stand = start(GitHub::new()).await;
    let host = plugin_host().await;
    let keys: Vec<String> = ["1", "2"].map(String::from).to_vec();
    assert!(matches!(
        provider_error(
            host.fetch_issues(&token_source(&stand.url, "ghp_wrong"), &keys)
                .await
        ),
        ProviderError::Unauthorized(_)
    ));
    let elsewhere = SourceConfig {
        base_url: "https://github.com/acme/gone".into(),
        ..token_source(&stand.url, USER_TOKEN)
    };
    match provider_error(host.fetch_issues(&elsewhere, &keys).await) {
        ProviderError::NotFound(message) => assert!(message.contains("acme/gone"), "{message}"),
        other => panic!("{other:?}"),
    }
    let limited = start_fixed(
        200,
        &[("x-ratelimit-remaining", "0".into()), ("x-ratelimit-reset", (now() + 200).to_string())],
        r#"{"errors":[{"type":"RATE_LIMITED","message":"API rate limit exceeded for user ID 1."}]}"#,
    )
    .await;
    match provider_error(
        host.fetch_issues(&token_source(&limited.url, USER_TOKEN), &keys)
            .await,
    ) {
        ProviderError::RateLimited {
            retry_after_secs, ..
        } => assert!((190..=201).contains(&retry_after_secs)),
        other => panic!("{other:?}"),
    }
    let secondary = start_fixed(
        403,
        &[("retry-after", "90".into())],
        r#"{"message":"You have exceeded a secondary rate limit."}"#,
    )
    .await;
    match provider_error(
        host.fetch_issues(&token_source(&secondary.url, USER_TOKEN), &keys)
            .await,
    ) {
        ProviderError::RateLimited {
            retry_after_secs, ..
        } => assert_eq!(retry_after_secs, 90),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_spent_graphql_budget_is_a_rate_limit_whatever_the_body_says() {
    let host = plugin_host().await;
    let keys: Vec<String> = ["1", "2"].map(String::from).to_vec();
    let reset = now() + 300;
    // GitHub documents the headers, not the error's type: other types and no type are seen.
    for body in [
        r#"{"errors":[{"type":"RATE_LIMIT","code":"graphql_rate_limit","message":"API rate limit already exceeded for user ID 1."}]}"#,
        r#"{"data":null,"errors":[{"message":"API rate limit exceeded for user ID 1."}]}"#,
        r#"{"message":"API rate limit exceeded"}"#,
        "<html>rate limited</html>",
    ] {
        let limited = start_fixed(
            200,
            &[
                ("x-ratelimit-limit", "5000".into()),
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset", reset.to_string()),
                ("x-ratelimit-resource", "graphql".into()),
            ],
            body,
        )
        .await;
        match provider_error(
            host.fetch_issues(&token_source(&limited.url, USER_TOKEN), &keys)
                .await,
        ) {
            ProviderError::RateLimited {
                retry_after_secs, ..
            } => assert!((290..=301).contains(&retry_after_secs), "{body}"),
            other => panic!("{body}: {other:?}"),
        }
        assert_eq!(limited.requests().len(), 1, "no REST fallback: {body}");
    }
    // A Retry-After wins over the reset.
    let retry = start_fixed(
        200,
        &[
            ("x-ratelimit-remaining", "0".into()),
            ("retry-after", "45".into()),
        ],
        r#"{"errors":[{"type":"RATE_LIMIT","message":"API rate limit exceeded"}]}"#,
    )
    .await;
    match provider_error(
        host.fetch_issues(&token_source(&retry.url, USER_TOKEN), &keys)
            .await,
    ) {
        ProviderError::RateLimited {
            retry_after_secs, ..
        } => assert_eq!(retry_after_secs, 45),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_falls_back_to_rest_when_graphql_is_refused() {
    let host = plugin_host().await;
    let keys: Vec<String> = ["1", "7", "404"].map(String::from).to_vec();
    for refusal in [
        (
            404,
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/graphql"}),
        ),
        (
            200,
            json!({"data": null, "errors": [{"message": "Something went wrong while executing your query. Please include `C0DE:1234` when reporting this issue."}]}),
        ),
        (502, json!({"message": "Server Error"})),
    ] {
        let stand = start(GitHub {
            graphql_refusal: Some(refusal.clone()),
            ..GitHub::new()
        })
        .await;
        let results = host
            .fetch_issues(&token_source(&stand.url, USER_TOKEN), &keys)
            .await
            .unwrap();
        assert_eq!(
            results[0].as_ref().unwrap().title,
            "Crash on start",
            "{refusal:?}"
        );
        assert_eq!(results[1].as_ref().unwrap().status, "merged");
        match &results[2] {
            Err(ProviderError::NotFound(message)) => {
                assert!(message.contains("#404"), "{message}");
                assert!(!message.contains("the issues of"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let uris: Vec<String> = stand.requests().iter().map(|r| r.uri.clone()).collect();
        assert_eq!(
            uris,
            [
                "/graphql",
                "/repos/acme/shop/issues/1",
                "/repos/acme/shop/issues/7",
                "/repos/acme/shop/issues/404"
            ]
        );
    }

    // 50 keys: the refused query plus 50 reads is one request over the call's budget; the key
    // left over says why it was not read.
    let stand = start(GitHub {
        graphql_refusal: Some((404, json!({"message": "Not Found"}))),
        ..GitHub::new()
    })
    .await;
    let keys: Vec<String> = (0..50)
        .map(|i| ["1", "2", "5"][i % 3].to_string())
        .collect();
    let results = host
        .fetch_issues(&token_source(&stand.url, USER_TOKEN), &keys)
        .await
        .unwrap();
    assert!(results[..49].iter().all(Result::is_ok), "{results:?}");
    match &results[49] {
        Err(ProviderError::Provider(message)) => {
            assert!(message.contains("not read this time"), "{message}");
            assert!(
                message.contains("GraphQL API answered HTTP 404"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_confirms_not_found_through_rest_so_transferred_issues_resolve() {
    // #9 was transferred: GraphQL says NOT_FOUND, REST answers 301 to its new home.
    let stand = start(GitHub::new()).await;
    let host = plugin_host().await;
    let keys: Vec<String> = ["1", "9"].map(String::from).to_vec();
    let results = host
        .fetch_issues(&token_source(&stand.url, USER_TOKEN), &keys)
        .await
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap().title, "Crash on start");
    let moved = results[1].as_ref().unwrap();
    assert_eq!(moved.key, "9");
    assert_eq!(moved.web_url, "https://github.com/acme/new-home/issues/3");
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_anonymous_reads_one_by_one_over_rest() {
    let stand = start(GitHub {
        private: false,
        ..GitHub::new()
    })
    .await;
    let host = plugin_host().await;
    let keys: Vec<String> = ["1", "404", "7"].map(String::from).to_vec();
    let results = host
        .fetch_issues(&anonymous_source(&stand.url), &keys)
        .await
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap().title, "Crash on start");
    assert!(matches!(&results[1], Err(ProviderError::NotFound(_))));
    assert_eq!(results[2].as_ref().unwrap().status, "merged");
    let uris: Vec<String> = stand.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        uris,
        [
            "/repos/acme/shop/issues/1",
            "/repos/acme/shop/issues/404",
            "/repos/acme/shop/issues/7"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_falls_back_to_rest_when_graphql_lacks_a_field() {
    let stand = start(GitHub {
        no_state_reason: true,
        ..GitHub::new()
    })
    .await;
    let host = plugin_host().await;
    let keys: Vec<String> = ["3", "5"].map(String::from).to_vec();
    let results = host
        .fetch_issues(&token_source(&stand.url, USER_TOKEN), &keys)
        .await
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap().status, "closed as not planned");
    assert_eq!(
        results[1].as_ref().unwrap().assignee.as_deref(),
        Some("octocat, hubot")
    );
    let uris: Vec<String> = stand.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        uris,
        [
            "/graphql",
            "/repos/acme/shop/issues/3",
            "/repos/acme/shop/issues/5"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_splits_large_batches() {
    let mut gh = GitHub::new();
    gh.issues = (1..=150)
        .map(|n| {
            gh_issue(
                "https://github.com",
                n,
                &format!("Issue {n}"),
                "open",
                None,
                &[],
                None,
            )
        })
        .collect();
    let stand = start(gh).await;
    let host = plugin_host().await;
    let keys: Vec<String> = (1..=150).map(|n| n.to_string()).collect();
    let results = host
        .fetch_issues(&token_source(&stand.url, USER_TOKEN), &keys)
        .await
        .unwrap();
    for (n, r) in (1..=150).zip(&results) {
        assert_eq!(r.as_ref().unwrap().title, format!("Issue {n}"));
    }
    assert_eq!(stand.requests().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// GitHub Enterprise Server

#[tokio::test(flavor = "multi_thread")]
async fn enterprise_server_derives_api_v3_and_api_graphql_from_the_base_url() {
    let stand = start(GitHub::with(
        "/api/v3",
        "/api/graphql",
        "https://ghe.example.com",
    ))
    .await;
    let host = plugin_host().await;
    let src = SourceConfig {
        auth_type: "api-token".into(),
        secrets: map(&[("token", USER_TOKEN)]),
        ..source(ID, &format!("{}/acme/shop", stand.url))
    };
    let info = host.test_connection(&src).await.unwrap();
    assert_eq!(info.account, "octocat (monalisa octocat)");
    assert_eq!(
        host.fetch_issue(&src, "2").await.unwrap(),
        expected("https://ghe.example.com")[1]
    );
    let batch = host
        .fetch_issues(&src, &["1".into(), "999".into()])
        .await
        .unwrap();
    assert_eq!(batch[0].as_ref().unwrap().title, "Crash on start");
    assert!(matches!(&batch[1], Err(ProviderError::NotFound(_))));
    assert_eq!(
        host.issue_url(&src, "2").await.unwrap(),
        format!("{}/acme/shop/issues/2", stand.url)
    );

    let uris: Vec<String> = stand.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        uris,
        [
            "/api/v3/repos/acme/shop",
            "/api/v3/repos/acme/shop/issues?per_page=1&state=all",
            "/api/v3/user",
            "/api/v3/repos/acme/shop/issues/2",
            "/api/graphql",
            "/api/v3/repos/acme/shop/issues/999"
        ]
    );

    // An explicit API URL on the same server keeps GraphQL beside it.
    let explicit = SourceConfig {
        base_url: "https://ghe.example.com/acme/shop".into(),
        settings: map(&[("api-url", &format!("{}/api/v3", stand.url))]),
        ..src.clone()
    };
    stand.clear();
    host.fetch_issues(&explicit, &["1".into()]).await.unwrap();
    assert_eq!(stand.requests()[0].uri, "/api/graphql");
}
