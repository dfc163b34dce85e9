//! End-to-end tests of the GitLab Issues plugin through the real host runtime, against a
//! stand-in of GitLab's REST API v4 on 127.0.0.1 (the base URL is the stand-in's project URL,
//! so the plugin derives `{origin}/api/v4` itself; the relative-URL-root case uses `api-url`).
//!
//! The stand-in checks what GitLab checks: the credentials exactly as the host applies them
//! (`PRIVATE-TOKEN` for access tokens, `Authorization: Bearer` for OAuth), the project as one
//! URL-encoded path segment (`group%2Fsubgroup%2Fproject`, anything else misses the route),
//! and answers the shapes of providers.md §5: `401 {"message":"401 Unauthorized"}`,
//! `403 insufficient_scope`, the three different 404 bodies (`404 Project Not Found`,
//! `404 Not found` for an issue, `{"error":"404 Not Found"}` for an unknown route), 429 with
//! `Retry-After` / `RateLimit-*`, and a 301 for a moved project.
//! The batch endpoint is "List project issues" with `iids[]` (GitLab `doc/api/issues.md`:
//! `GET /projects/:id/issues?iids[]=42&iids[]=43`, `scope` defaults to `all` for a project).

use integration_tests::provider_error;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use host::plugin::model::StatusCategory;
use host::plugin::{ProviderError, SourceConfig};
use integration_tests::{StandIn, map, plugin_host, source};
use serde_json::{Value, json};

const TOKEN: &str = "glpat-0123456789abcdefABCD";
/// A token that only has `read_repository`: GitLab answers 403 insufficient_scope.
const NO_SCOPE_TOKEN: &str = "glpat-readrepository-only";
const OAUTH_TOKEN: &str = "gloas-0f1e2d3c4b5a69788796";
/// An OAuth token past its 2 hours: `API::APIGuard` answers `invalid_token` with a reason.
const EXPIRED_OAUTH_TOKEN: &str = "gloas-expired-1234567890";
const PROJECT: &str = "group/subgroup/project";

// ---------------------------------------------------------------------------------------------
// The stand-in
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Caller {
    Anonymous,
    User,
    NoScope,
    Bad,
    Expired,
}

fn caller(h: &HeaderMap) -> Caller {
    let private = h.get("private-token").and_then(|v| v.to_str().ok());
    let auth = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match (private, auth) {
        (None, None) => Caller::Anonymous,
        (Some(TOKEN), None) => Caller::User,
        (Some(NO_SCOPE_TOKEN), None) => Caller::NoScope,
        (None, Some(a)) if a == format!("Bearer {OAUTH_TOKEN}") => Caller::User,
        (None, Some(a)) if a == format!("Bearer {EXPIRED_OAUTH_TOKEN}") => Caller::Expired,
        _ => Caller::Bad,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Throttle {
    None,
    /// 429 with `Retry-After: 42` and the full `RateLimit-*` set.
    RetryAfter,
    /// 429 with `RateLimit-Reset` (Unix time, 30 s ahead) only.
    ResetOnly,
    /// 429 from an application limit: JSON body, no headers (gitlab#365728).
    Bare,
}

struct Proj {
    id: u64,
    path: &'static str,
    visibility: &'static str,
    issues_enabled: bool,
    throttle: Throttle,
}

const PROJECTS: &[Proj] = &[
    Proj {
        id: 4,
        path: PROJECT,
        visibility: "private",
        issues_enabled: true,
        throttle: Throttle::None,
    },
    Proj {
        id: 5,
        path: "public/project",
        visibility: "public",
        issues_enabled: true,
        throttle: Throttle::None,
    },
    Proj {
        id: 6,
        path: "group/no-issues",
        visibility: "private",
        issues_enabled: false,
        throttle: Throttle::None,
    },
    // Moved from old-group/project (see `MOVED`).
    Proj {
        id: 81,
        path: "new-group/project",
        visibility: "internal",
        issues_enabled: true,
        throttle: Throttle::None,
    },
    Proj {
        id: 7,
        path: "busy/retry-after",
        visibility: "private",
        issues_enabled: true,
        throttle: Throttle::RetryAfter,
    },
    Proj {
        id: 8,
        path: "busy/reset",
        visibility: "private",
        issues_enabled: true,
        throttle: Throttle::ResetOnly,
    },
    Proj {
        id: 9,
        path: "busy/bare",
        visibility: "private",
        issues_enabled: true,
        throttle: Throttle::Bare,
    },
];
const MOVED: (&str, u64) = ("old-group/project", 81);
/// A public project whose issues are limited to members ("Issues: Only Project Members",
/// `issues_access_level: private`); the token's user is not a member.
const MEMBERS_ONLY: &str = "public/members-only-issues";
/// A relative URL root behind a proxy that refuses the batch list (`iids[]`) with 414.
const PROXIED: &str = "/proxied";
/// A relative URL root whose GitLab (or stand-in) has no "List project issues" route: Grape's
/// catch-all 404.
const NO_LIST: &str = "/no-list";

struct Fixture {
    project: u64,
    iid: u64,
    title: &'static str,
    state: &'static str,
    labels: &'static [&'static str],
    assignees: &'static [(&'static str, &'static str)],
}

const ISSUES: &[Fixture] = &[
    Fixture {
        project: 4,
        iid: 1,
        title: "Login fails on Safari",
        state: "opened",
        labels: &["bug"],
        assignees: &[("Dr. Luella Kovacek", "lennie")],
    },
    Fixture {
        project: 4,
        iid: 2,
        title: "Crash on save",
        state: "closed",
        labels: &[],
        assignees: &[],
    },
    Fixture {
        project: 4,
        iid: 3,
        title: "Dark mode",
        state: "opened",
        labels: &["frontend", "workflow::In Progress"],
        assignees: &[("Mia Krystof", "mia"), ("Sam Lee", "sam")],
    },
    Fixture {
        project: 5,
        iid: 1,
        title: "Public roadmap",
        state: "opened",
        labels: &[],
        assignees: &[],
    },
    Fixture {
        project: 81,
        iid: 1,
        title: "Moved along",
        state: "opened",
        labels: &[],
        assignees: &[],
    },
];

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn reply(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn user_json(username: &str, name: &str, origin: &str) -> Value {
    json!({
        "id": 9, "username": username, "name": name, "state": "active",
        "avatar_url": null, "web_url": format!("{origin}/{username}")
    })
}

fn origin(h: &HeaderMap) -> String {
    format!(
        "http://{}",
        h.get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost")
    )
}

/// The issue entity of `GET /projects/:id/issues/:iid` (providers.md §5.4).
fn issue_json(h: &HeaderMap, root: &str, p: &Proj, f: &Fixture) -> Value {
    let origin = origin(h);
    let people: Vec<Value> = f
        .assignees
        .iter()
        .map(|(name, user)| user_json(user, name, &origin))
        .collect();
    json!({
        "id": 1000 + f.iid, "iid": f.iid, "project_id": p.id, "title": f.title,
        "description": "…", "state": f.state,
        "created_at": "2016-01-04T15:31:46.176Z", "updated_at": "2016-01-04T15:31:46.176Z",
        "closed_at": if f.state == "closed" { json!("2016-01-05T15:31:46.176Z") } else { Value::Null },
        "labels": f.labels,
        "assignees": people,
        "assignee": people.first().cloned().unwrap_or(Value::Null),
        "author": user_json("root", "Administrator", &origin),
        "type": "ISSUE", "issue_type": "issue",
        "web_url": format!("{origin}{root}/{}/-/issues/{}", p.path, f.iid),
        "references": { "short": format!("#{}", f.iid), "relative": format!("#{}", f.iid), "full": format!("{}#{}", p.path, f.iid) },
        "confidential": false, "moved_to_id": null,
        "_links": {
            "self": format!("{origin}/api/v4/projects/{}/issues/{}", p.id, f.iid),
            "project": format!("{origin}/api/v4/projects/{}", p.id),
            "closed_as_duplicate_of": null
        }
    })
}

fn throttled(t: Throttle) -> Option<Response> {
    let reset = now() + 30;
    let mut resp = match t {
        Throttle::None => return None,
        Throttle::Bare => {
            return Some(reply(
                429,
                json!({"message": {"error": "This endpoint has been requested too many times. Try again later."}}),
            ));
        }
        _ => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::CONTENT_TYPE, "text/plain")],
            "Retry later\n",
        )
            .into_response(),
    };
    let h = resp.headers_mut();
    h.insert("ratelimit-remaining", "0".parse().unwrap());
    h.insert("ratelimit-reset", reset.to_string().parse().unwrap());
    if t == Throttle::RetryAfter {
        h.insert("retry-after", "42".parse().unwrap());
        h.insert(
            "ratelimit-name",
            "throttle_authenticated_api".parse().unwrap(),
        );
        h.insert("ratelimit-limit", "7200".parse().unwrap());
        h.insert("ratelimit-observed", "7201".parse().unwrap());
        h.insert(
            "ratelimit-resettime",
            "Tue, 05 Aug 2025 10:00:42 GMT".parse().unwrap(),
        );
    }
    Some(resp)
}

/// Resolves `:id` (already percent-decoded by the router) the way GitLab does, or answers the
/// error GitLab would.
fn access(h: &HeaderMap, root: &str, id: &str, rest: &str) -> Result<&'static Proj, Box<Response>> {
    match caller(h) {
        Caller::Bad => return Err(Box::new(reply(401, json!({"message": "401 Unauthorized"})))),
        Caller::Expired => {
            let mut resp = reply(
                401,
                json!({
                    "error": "invalid_token",
                    "error_description": "Token is expired. You can either do re-authorization or token refresh."
                }),
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"\", error=\"invalid_token\""
                    .parse()
                    .unwrap(),
            );
            return Err(Box::new(resp));
        }
        Caller::NoScope => {
            return Err(Box::new(reply(
                403,
                json!({
                    "error": "insufficient_scope",
                    "error_description": "The request requires higher privileges than provided by the access token.",
                    "scope": "api read_api"
                }),
            )));
        }
        _ => {}
    }
    if id.eq_ignore_ascii_case(MOVED.0) {
        let to = format!("{root}/api/v4/projects/{}{rest}", MOVED.1);
        let mut resp = (
            StatusCode::MOVED_PERMANENTLY,
            format!("This resource has been moved permanently to {to}"),
        )
            .into_response();
        resp.headers_mut()
            .insert(header::LOCATION, to.parse().unwrap());
        return Err(Box::new(resp));
    }
    let project = PROJECTS
        .iter()
        .find(|p| p.path.eq_ignore_ascii_case(id) || p.id.to_string() == id)
        .filter(|p| p.visibility == "public" || caller(h) == Caller::User);
    let Some(project) = project else {
        return Err(Box::new(reply(
            404,
            json!({"message": "404 Project Not Found"}),
        )));
    };
    if let Some(resp) = throttled(project.throttle) {
        return Err(Box::new(resp));
    }
    Ok(project)
}

fn get_user(h: HeaderMap) -> Response {
    match caller(&h) {
        Caller::User => reply(200, user_json("mia", "Mia Krystof", &origin(&h))),
        Caller::NoScope => reply(
            403,
            json!({"error": "insufficient_scope", "error_description": "The request requires higher privileges than provided by the access token.", "scope": "read_user api read_api"}),
        ),
        _ => reply(401, json!({"message": "401 Unauthorized"})),
    }
}

fn get_project(root: &str, h: HeaderMap, id: String) -> Response {
    if id == MEMBERS_ONLY {
        return reply(
            200,
            json!({
                "id": 10, "name": "members-only-issues", "path": "members-only-issues",
                "path_with_namespace": MEMBERS_ONLY, "visibility": "public",
                "issues_enabled": true, "issues_access_level": "private",
                "web_url": format!("{}{root}/{MEMBERS_ONLY}", origin(&h)),
            }),
        );
    }
    let p = match access(&h, root, &id, "") {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    reply(
        200,
        json!({
            "id": p.id, "name": p.path.rsplit('/').next(), "path": p.path.rsplit('/').next(),
            "path_with_namespace": p.path, "name_with_namespace": p.path.replace('/', " / "),
            "visibility": p.visibility, "issues_enabled": p.issues_enabled,
            "issues_access_level": if p.issues_enabled { "enabled" } else { "disabled" },
            "web_url": format!("{}{root}/{}", origin(&h), p.path),
        }),
    )
}

fn get_issue(root: &str, h: HeaderMap, id: String, iid: String) -> Response {
    let p = match access(&h, root, &id, &format!("/issues/{iid}")) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    match ISSUES
        .iter()
        .find(|f| f.project == p.id && f.iid.to_string() == iid)
    {
        Some(f) => reply(200, issue_json(&h, root, p, f)),
        // `ActiveRecord::RecordNotFound` handler in lib/api/api.rb: lower-case "found".
        None => reply(404, json!({"message": "404 Not found"})),
    }
}

fn list_issues(root: &str, h: HeaderMap, id: String, uri: Uri) -> Response {
    if id == MEMBERS_ONLY {
        return reply(403, json!({"message": "403 Forbidden"}));
    }
    if root == NO_LIST {
        return reply(404, json!({"error": "404 Not Found"}));
    }
    if root == PROXIED && uri.query().unwrap_or("").contains("iids") {
        return (
            StatusCode::URI_TOO_LONG,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><head><title>414 Request-URI Too Large</title></head><body>nginx</body></html>",
        )
            .into_response();
    }
    let p = match access(&h, root, &id, "/issues") {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    let mut iids: Vec<String> = Vec::new();
    for pair in uri.query().unwrap_or("").split('&') {
        if let Some((k, v)) = pair.split_once('=')
            && (k == "iids[]" || k == "iids%5B%5D")
        {
            iids.push(v.to_string());
        }
    }
    let list: Vec<Value> = ISSUES
        .iter()
        .filter(|f| f.project == p.id && (iids.is_empty() || iids.contains(&f.iid.to_string())))
        .map(|f| issue_json(&h, root, p, f))
        .collect();
    reply(200, Value::Array(list))
}

fn routes(router: Router, root: &'static str) -> Router {
    router
        .route(&format!("{root}/api/v4/user"), get(get_user_handler))
        .route(
            &format!("{root}/api/v4/projects/{{id}}"),
            get(
                move |h: HeaderMap, Path(id): Path<String>| async move { get_project(root, h, id) },
            ),
        )
        .route(
            &format!("{root}/api/v4/projects/{{id}}/issues"),
            get(
                move |h: HeaderMap, Path(id): Path<String>, uri: Uri| async move {
                    list_issues(root, h, id, uri)
                },
            ),
        )
        .route(
            &format!("{root}/api/v4/projects/{{id}}/issues/{{iid}}"),
            get(
                move |h: HeaderMap, Path((id, iid)): Path<(String, String)>| async move {
                    get_issue(root, h, id, iid)
                },
            ),
        )
}

async fn get_user_handler(h: HeaderMap) -> Response {
    get_user(h)
}

async fn gitlab() -> StandIn {
    let router = routes(routes(routes(Router::new(), ""), "/gitlab"), PROXIED);
    let router = routes(router, NO_LIST)
        // Any other route: Grape's catch-all (`error!('404 Not Found', 404)` in lib/api/api.rb).
        .fallback(|| async { reply(404, json!({"error": "404 Not Found"})) });
    StandIn::start(router).await
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A source for `path` on the stand-in, with an access token.
fn src(stand: &StandIn, path: &str) -> SourceConfig {
    SourceConfig {
        auth_type: "api-token".into(),
        secrets: map(&[("token", TOKEN)]),
        ..source("gitlab", &format!("{}/{path}", stand.url))
    }
}

fn offline(base: &str) -> SourceConfig {
    source("gitlab", base)
}

// ---------------------------------------------------------------------------------------------
// describe, keys, URLs
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn describes_auth_types_and_settings() {
    let host = plugin_host().await;
    let info = host.get("gitlab").unwrap().info.clone();
    assert_eq!(info.name, "GitLab Issues");
    let ids: Vec<&str> = info.auth_types.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["api-token", "oauth2", "none"]);
    assert_eq!(info.default_issue_url_template, "{baseUrl}/-/issues/{key}");
    assert_eq!(
        info.default_create_url_template.as_deref(),
        Some("{baseUrl}/-/issues/new")
    );
    let api = info
        .settings
        .iter()
        .find(|s| s.name == "api-url")
        .expect("api-url setting");
    assert_eq!(api.kind, host::plugin::model::SettingKind::Url);
    assert!(info.extra_origins.is_empty());
    let key = host
        .normalize_key(&offline("https://gitlab.com/a/b"), &info.key_example)
        .await
        .unwrap();
    assert_eq!(key, info.key_example);
}

#[tokio::test(flavor = "multi_thread")]
async fn normalizes_keys_as_typed_or_pasted() {
    let host = plugin_host().await;
    let src = offline("https://gitlab.com/group/subgroup/project");
    let ok = [
        ("123", "123"),
        (" #123 ", "123"),
        ("#7", "7"),
        ("\t42\n", "42"),
        ("2147483647", "2147483647"),
        ("group/subgroup/project#45", "45"),
        ("Group/SubGroup/Project#45", "45"),
        ("project#45", "45"),
        (
            "https://gitlab.com/group/subgroup/project/-/issues/123",
            "123",
        ),
        (
            "https://gitlab.com/group/subgroup/project/-/issues/123#note_9876",
            "123",
        ),
        (
            "https://gitlab.com/group/subgroup/project/-/issues/123?show=x",
            "123",
        ),
        ("HTTPS://GitLab.com/Group/subgroup/PROJECT/-/issues/9/", "9"),
        ("http://gitlab.com/group/subgroup/project/-/issues/5", "5"),
        ("https://gitlab.com/group/subgroup/project/issues/12", "12"),
        (
            "https://gitlab.com/group/subgroup/project/-/work_items/77",
            "77",
        ),
    ];
    for (input, want) in ok {
        assert_eq!(
            host.normalize_key(&src, input).await.unwrap(),
            want,
            "{input:?}"
        );
    }
    let bad = [
        ("", "empty"),
        ("   ", "empty"),
        ("#", "must follow"),
        ("0", "start at 1"),
        ("#0", "start at 1"),
        ("012", "leading zeros"),
        ("-1", "positive"),
        ("+1", "positive"),
        ("#-3", "positive"),
        ("１２", "digits 0-9"),
        ("#1٢", "digits 0-9"),
        ("1 2", "space"),
        ("# 12", "space"),
        ("PROJ-12", "expected an issue number"),
        ("12a", "expected an issue number"),
        ("#12О", "expected an issue number"), // Cyrillic O
        ("2147483648", "larger than any"),
        ("99999999999999999999999", "larger than any"),
        ("!5", "merge request"),
        (
            "https://gitlab.com/group/subgroup/project/-/merge_requests/5",
            "merge request",
        ),
        (
            "https://gitlab.com/other/project/-/issues/5",
            "other/project",
        ),
        (
            "https://gitlab.com/group/subgroup/project2/-/issues/5",
            "group/subgroup/project2",
        ),
        (
            "https://gitlab.example.com/group/subgroup/project/-/issues/5",
            "gitlab.example.com",
        ),
        ("other/project#5", "other/project"),
        (
            "https://gitlab.com/group/subgroup/project/-/issues",
            "not a GitLab issue URL",
        ),
        (
            "https://gitlab.com/group/subgroup/project/-/issues/new",
            "expected an issue number",
        ),
        (
            "https://gitlab.com/group/subgroup/project/-/milestones/3",
            "not a GitLab issue URL",
        ),
        ("https://gitlab.com/", "not a GitLab issue URL"),
    ];
    for (input, fragment) in bad {
        match provider_error(host.normalize_key(&src, input).await) {
            ProviderError::InvalidInput(m) => assert!(m.contains(fragment), "{input:?}: {m}"),
            other => panic!("{input:?}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pasted_urls_under_a_relative_url_root() {
    let host = plugin_host().await;
    let src = SourceConfig {
        settings: map(&[("api-url", "https://example.com/gitlab/api/v4")]),
        ..offline("https://example.com/gitlab/group/project")
    };
    let key = host
        .normalize_key(&src, "https://example.com/gitlab/group/project/-/issues/3")
        .await;
    assert_eq!(key.unwrap(), "3");
    assert_eq!(
        host.normalize_key(&src, "group/project#4").await.unwrap(),
        "4"
    );
    let err = provider_error(
        host.normalize_key(&src, "https://example.com/group/project/-/issues/3")
            .await,
    );
    assert!(
        matches!(&err, ProviderError::InvalidInput(m) if m.contains("example.com/gitlab/group/project")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_and_create_urls_use_templates() {
    let host = plugin_host().await;
    let src = offline("https://gitlab.com/group/subgroup/project/");
    assert_eq!(
        host.issue_url(&src, "123").await.unwrap(),
        "https://gitlab.com/group/subgroup/project/-/issues/123"
    );
    assert_eq!(
        host.create_url(&src).await.unwrap(),
        "https://gitlab.com/group/subgroup/project/-/issues/new"
    );
    let custom = SourceConfig {
        issue_url_template: Some("{baseUrl}/issues/{key}".into()),
        create_url_template: Some("{baseUrl}/-/issues/new?issue[issue_type]=incident".into()),
        ..src
    };
    assert_eq!(
        host.issue_url(&custom, "9").await.unwrap(),
        "https://gitlab.com/group/subgroup/project/issues/9"
    );
    assert_eq!(
        host.create_url(&custom).await.unwrap(),
        "https://gitlab.com/group/subgroup/project/-/issues/new?issue[issue_type]=incident"
    );
}

// ---------------------------------------------------------------------------------------------
// test-connection
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_with_an_access_token() {
    let (host, stand) = (plugin_host().await, gitlab().await);
    let info = host.test_connection(&src(&stand, PROJECT)).await.unwrap();
    assert_eq!(info.account, "Mia Krystof (@mia)");
    let detail = info.detail.unwrap();
    assert!(
        detail.contains("project group/subgroup/project (private)"),
        "{detail}"
    );
    let reqs = stand.requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].uri, "/api/v4/projects/group%2Fsubgroup%2Fproject");
    assert_eq!(
        reqs[1].uri,
        "/api/v4/projects/group%2Fsubgroup%2Fproject/issues?scope=all&per_page=1"
    );
    assert_eq!(reqs[2].uri, "/api/v4/user");
    for r in &reqs {
        assert_eq!(r.header("private-token"), Some(TOKEN));
        assert_eq!(r.header("authorization"), None);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_with_oauth_sends_a_bearer_token() {
    let (host, stand) = (plugin_host().await, gitlab().await);
    let src = SourceConfig {
        auth_type: "oauth2".into(),
        secrets: map(&[("access-token", OAUTH_TOKEN)]),
        ..source("gitlab", &format!("{}/{PROJECT}", stand.url))
    };
    let info = host.test_connection(&src).await.unwrap();
    assert_eq!(info.account, "Mia Krystof (@mia)");
    let reqs = stand.requests();
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Bearer {OAUTH_TOKEN}").as_str())
    );
    assert_eq!(reqs[0].header("private-token"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_to_a_public_project_without_credentials() {
    let (host, stand) = (plugin_host().await, gitlab().await);
    let src = source("gitlab", &format!("{}/public/project", stand.url));
    let info = host.test_connection(&src).await.unwrap();
    assert!(info.account.contains("anonymous"), "{info:?}");
    assert!(info.detail.unwrap().contains("public/project (public)"));
    let reqs = stand.requests();
    assert_eq!(
        reqs.len(),
        2,
        "the project, one issue, no /user call without credentials"
    );
    assert!(
        reqs[1].uri.ends_with("/issues?scope=all&per_page=1"),
        "{reqs:?}"
    );
    for r in &reqs {
        assert_eq!(r.header("private-token"), None);
        assert_eq!(r.header("authorization"), None);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_errors_say_what_to_fix() {
    let (host, stand) = (plugin_host().await, gitlab().await);

    let wrong_token = SourceConfig {
        secrets: map(&[("token", "glpat-wrong")]),
        ..src(&stand, PROJECT)
    };
    let err = provider_error(host.test_connection(&wrong_token).await);
    assert!(
        matches!(&err, ProviderError::Unauthorized(m) if m.contains("401")),
        "{err:?}"
    );

    let no_scope = SourceConfig {
        secrets: map(&[("token", NO_SCOPE_TOKEN)]),
        ..src(&stand, PROJECT)
    };
    let err = provider_error(host.test_connection(&no_scope).await);
    assert!(
        matches!(&err, ProviderError::Forbidden(m) if m.contains("read_api") && m.contains("insufficient_scope")),
        "{err:?}"
    );

    let err = provider_error(host.test_connection(&src(&stand, "group/missing")).await);
    assert!(
        matches!(&err, ProviderError::NotFound(m) if m.contains("project group/missing was not found") && m.contains("member")),
        "{err:?}"
    );

    // A private project without credentials: GitLab says 404, not 403.
    let anonymous = source("gitlab", &format!("{}/{PROJECT}", stand.url));
    let err = provider_error(host.test_connection(&anonymous).await);
    assert!(
        matches!(&err, ProviderError::NotFound(m) if m.contains("use an access token")),
        "{err:?}"
    );

    // An API root that is not GitLab's: the catch-all route's `{"error":"404 Not Found"}`.
    let wrong_root = SourceConfig {
        settings: map(&[("api-url", &format!("{}/wrong/api/v4", stand.url))]),
        ..src(&stand, PROJECT)
    };
    let err = provider_error(host.test_connection(&wrong_root).await);
    assert!(
        matches!(&err, ProviderError::NotFound(m) if m.contains("API root")),
        "{err:?}"
    );

    let err = provider_error(host.test_connection(&src(&stand, "group/no-issues")).await);
    assert!(
        matches!(&err, ProviderError::Unsupported(m) if m.contains("issues are turned off")),
        "{err:?}"
    );

    let err = provider_error(host.test_connection(&src(&stand, "group")).await);
    assert!(
        matches!(&err, ProviderError::InvalidInput(m) if m.contains("does not name a project")),
        "{err:?}"
    );

    let err = provider_error(
        host.test_connection(&src(&stand, "group/subgroup/project/-/issues"))
            .await,
    );
    assert!(
        matches!(&err, ProviderError::InvalidInput(m) if m.contains("without /-/issues")),
        "{err:?}"
    );

    let unreachable = SourceConfig {
        base_url: format!("http://127.0.0.1:1/{PROJECT}"),
        ..src(&stand, PROJECT)
    };
    let err = provider_error(host.test_connection(&unreachable).await);
    assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_reports_a_moved_project() {
    let (host, stand) = (plugin_host().await, gitlab().await);
    let info = host
        .test_connection(&src(&stand, "old-group/project"))
        .await
        .unwrap();
    let detail = info.detail.unwrap();
    assert!(
        detail.contains("moved from old-group/project to new-group/project"),
        "{detail}"
    );
    let uris: Vec<String> = stand.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        uris[..2],
        [
            "/api/v4/projects/old-group%2Fproject",
            "/api/v4/projects/81"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn self_managed_under_a_relative_url_root() {
    let (host, stand) = (plugin_host().await, gitlab().await);
    let src = SourceConfig {
        settings: map(&[("api-url", &format!("{}/gitlab/api/v4/", stand.url))]),
        ..src(&stand, &format!("gitlab/{PROJECT}"))
    };
    let info = host.test_connection(&src).await.unwrap();
    assert!(info.detail.unwrap().contains(PROJECT));
    let issue = host.fetch_issue(&src, "1").await.unwrap();
    assert_eq!(
        issue.web_url,
        format!("{}/gitlab/{PROJECT}/-/issues/1", stand.url)
    );
    assert!(
        stand
            .requests()
            .iter()
            .all(|r| r.uri.starts_with("/gitlab/api/v4/")),
        "{:?}",
        stand.requests()
    );
    assert_eq!(
        stand.requests()[3].uri,
        "/gitlab/api/v4/projects/group%2Fsubgroup%2Fproject/issues/1"
    );
}

// ---------------------------------------------------------------------------------------------
// fetch-issue
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn fetches_open_closed_and_in_progress_issues() {
    let (host, stand) = (plugin_host().await, gitlab().await);
    let src = src(&stand, PROJECT);

    let open = host.fetch_issue(&src, "1").await.unwrap();
    assert_eq!(open.key, "1");
    assert_eq!(open.title, "Login fails on Safari");
    assert_eq!(open.status, "opened");
    assert_eq!(open.status_category, StatusCategory::ToDo);
    assert_eq!(open.assignee.as_deref(), Some("Dr. Luella Kovacek"));
    assert_eq!(open.web_url, format!("{}/{PROJECT}/-/issues/1", stand.url));
    let req = &stand.requests()[0];
    assert_eq!(
        req.uri,
        "/api/v4/projects/group%2Fsubgroup%2Fproject/issues/1"
    );
    assert_eq!(req.header("private-token"), Some(TOKEN));

    let closed = host.fetch_issue(&src, "2").await.unwrap();
    assert_eq!(
        (closed.status.as_str(), closed.status_category),
        ("closed", StatusCategory::Done)
    );
    assert_eq!(closed.assignee, None);

    // Without the setting an open issue is "to do" whatever its labels.
    let labelled = host.fetch_issue(&src, "3").await.unwrap();
    assert_eq!(
        (labelled.status.as_str(), labelled.status_category),
        ("opened", StatusCategory::ToDo)
    );
    assert_eq!(labelled.assignee.as_deref(), Some("Mia Krystof, Sam Lee"));

    let with_labels = SourceConfig {
        settings: map(&[("in-progress-labels", "Doing, workflow::in progress")]),
        ..src.clone()
    };
    let started = host.fetch_issue(&with_labels, "3").await.unwrap();
    assert_eq!(
        (started.status.as_str(), started.status_category),
        ("workflow::In Progress", StatusCategory::InProgress)
    );
    let not_started = host.fetch_issue(&with_labels, "1").await.unwrap();
    assert_eq!(not_started.status_category, StatusCategory::ToDo);
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_honours_the_issue_url_template() {
    let (host, stand) = (plugin_host().await, gitlab().await);
    let src = SourceConfig {
        issue_url_template: Some("https://proxy.example.com/i/{key}".into()),
        ..src(&stand, PROJECT)
    };
    assert_eq!(
        host.fetch_issue(&src, "1").await.unwrap().web_url,
        "https://proxy.example.com/i/1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_errors() {
    let (host, stand) = (plugin_host().await, gitlab().await);
    let err = provider_error(host.fetch_issue(&src(&stand, PROJECT), "99").await);
    assert!(
        matches!(&err, ProviderError::NotFound(m) if m.contains("issue #99") && m.contains(PROJECT)),
        "{err:?}"
    );

    let err = provider_error(host.fetch_issue(&src(&stand, "group/missing"), "1").await);
    assert!(
        matches!(&err, ProviderError::NotFound(m) if m.contains("project group/missing")),
        "{err:?}"
    );

    let wrong = SourceConfig {
        secrets: map(&[("token", "nope")]),
        ..src(&stand, PROJECT)
    };
    assert!(matches!(
        provider_error(host.fetch_issue(&wrong, "1").await),
        ProviderError::Unauthorized(_)
    ));

    let err = provider_error(host.fetch_issue(&src(&stand, PROJECT), "#1").await);
    assert!(
        matches!(err, ProviderError::InvalidInput(_)),
        "fetch takes canonical keys: {err:?}"
    );

    // A public project needs no credentials.
    let public = source("gitlab", &format!("{}/public/project", stand.url));
    assert_eq!(
        host.fetch_issue(&public, "1").await.unwrap().title,
        "Public roadmap"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_map_to_retry_after() {
    let (host, stand) = (plugin_host().await, gitlab().await);

    match provider_error(
        host.fetch_issue(&src(&stand, "busy/retry-after"), "1")
            .await,
    ) {
        ProviderError::RateLimited {
            retry_after_secs,
            message,
        } => {
            assert_eq!(retry_after_secs, 42);
            assert!(
                message.contains("throttle_authenticated_api") && message.contains("7201 of 7200"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    match provider_error(host.fetch_issue(&src(&stand, "busy/reset"), "1").await) {
        ProviderError::RateLimited {
            retry_after_secs, ..
        } => {
            assert!((25..=31).contains(&retry_after_secs), "{retry_after_secs}");
        }
        other => panic!("{other:?}"),
    }
    match provider_error(host.test_connection(&src(&stand, "busy/bare")).await) {
        ProviderError::RateLimited {
            retry_after_secs,
            message,
        } => {
            assert_eq!(retry_after_secs, 60, "no headers: default back-off");
            assert!(message.contains("too many times"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// fetch-issues
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn batch_is_one_request_and_unknown_keys_fail_alone() {
    let (host, stand) = (plugin_host().await, gitlab().await);
    let keys: Vec<String> = ["3", "99", "1", "2", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let results = host
        .fetch_issues(&src(&stand, PROJECT), &keys)
        .await
        .unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(results[0].as_ref().unwrap().title, "Dark mode");
    assert!(
        matches!(&results[1], Err(ProviderError::NotFound(m)) if m.contains("#99")),
        "{:?}",
        results[1]
    );
    assert_eq!(
        results[2].as_ref().unwrap().assignee.as_deref(),
        Some("Dr. Luella Kovacek")
    );
    assert_eq!(
        results[3].as_ref().unwrap().status_category,
        StatusCategory::Done
    );
    assert_eq!(results[4].as_ref().unwrap().key, "1");

    let reqs = stand.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(
        reqs[0].uri,
        "/api/v4/projects/group%2Fsubgroup%2Fproject/issues?scope=all&per_page=100&iids[]=1&iids[]=2&iids[]=3&iids[]=99"
    );
    assert_eq!(reqs[0].header("private-token"), Some(TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_of_more_than_a_page_is_split() {
    let (host, stand) = (plugin_host().await, gitlab().await);
    let keys: Vec<String> = (1..=150).map(|n| n.to_string()).collect();
    let results = host
        .fetch_issues(&src(&stand, PROJECT), &keys)
        .await
        .unwrap();
    assert_eq!(results.len(), 150);
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    assert_eq!(stand.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_failures_of_the_whole_batch_are_the_outer_error() {
    let (host, stand) = (plugin_host().await, gitlab().await);
    let keys = vec!["1".to_string(), "2".to_string()];
    let wrong = SourceConfig {
        secrets: map(&[("token", "nope")]),
        ..src(&stand, PROJECT)
    };
    assert!(matches!(
        provider_error(host.fetch_issues(&wrong, &keys).await),
        ProviderError::Unauthorized(_)
    ));
    let err = provider_error(
        host.fetch_issues(&src(&stand, "busy/retry-after"), &keys)
            .await,
    );
    assert!(
        matches!(
            err,
            ProviderError::RateLimited {
                retry_after_secs: 42,
                ..
            }
        ),
        "{err:?}"
    );
    // A missing project: the list's 404 falls back to single reads, each of which says so.
    let results = host
        .fetch_issues(&src(&stand, "group/missing"), &keys)
        .await
        .unwrap();
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(ProviderError::NotFound(m)) if m.contains("group/missing"))),
        "{results:?}"
    );

    // A malformed key fails alone.
    let results = host
        .fetch_issues(&src(&stand, PROJECT), &["x".to_string(), "2".to_string()])
        .await
        .unwrap();
    assert!(matches!(results[0], Err(ProviderError::InvalidInput(_))));
    assert_eq!(results[1].as_ref().unwrap().title, "Crash on save");
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_says_when_issues_are_limited_to_members() {
    let (host, stand) = (plugin_host().await, gitlab().await);
    let err = provider_error(host.test_connection(&src(&stand, MEMBERS_ONLY)).await);
    assert!(
        matches!(&err, ProviderError::Forbidden(m) if m.contains(MEMBERS_ONLY) && m.contains("limited to members")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_falls_back_to_single_reads_when_the_list_is_refused() {
    let (host, stand) = (plugin_host().await, gitlab().await);
    let src = SourceConfig {
        settings: map(&[("api-url", &format!("{}{PROXIED}/api/v4", stand.url))]),
        ..src(&stand, PROJECT)
    };
    let keys: Vec<String> = ["1", "2", "99"].map(String::from).to_vec();
    let results = host.fetch_issues(&src, &keys).await.unwrap();
    assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
    assert!(
        matches!(&results[2], Err(ProviderError::NotFound(_))),
        "{:?}",
        results[2]
    );
    let uris: Vec<String> = stand.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        uris.len(),
        4,
        "the refused list, then three reads: {uris:?}"
    );
    assert!(uris[1].ends_with("/issues/1"), "{uris:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_issue_list_route_reads_fall_back_and_the_connection_test_passes() {
    let (host, stand) = (plugin_host().await, gitlab().await);
    let src = SourceConfig {
        settings: map(&[("api-url", &format!("{}{NO_LIST}/api/v4", stand.url))]),
        ..src(&stand, PROJECT)
    };
    let keys: Vec<String> = ["1", "99"].map(String::from).to_vec();
    let results = host.fetch_issues(&src, &keys).await.unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    assert!(
        matches!(&results[1], Err(ProviderError::NotFound(_))),
        "{results:?}"
    );
    assert_eq!(
        stand.requests().len(),
        3,
        "the missing list, then two reads"
    );

    let info = host.test_connection(&src).await.unwrap();
    assert_eq!(info.account, "Mia Krystof (@mia)");
    let detail = info.detail.unwrap();
    assert!(detail.contains("issue list was not checked"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_issue_is_revalidated_with_its_etag_and_costs_no_transfer() {
    // GitLab answers `If-None-Match` with the issue's current ETag by 304 Not Modified.
    let stand = StandIn::start(Router::new().route(
        "/api/v4/projects/{project}/issues/{iid}",
        get(|headers: HeaderMap| async move {
            let etag = "W/\"3f2a\"";
            if headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                == Some(etag)
            {
                return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
            }
            let issue = json!({"iid": 12, "title": "Login fails", "state": "opened",
                               "assignees": [{"name": "Mia", "username": "mia"}],
                               "web_url": "https://gitlab.example.com/group/shop/-/issues/12"});
            ([(header::ETAG, etag)], axum::Json(issue)).into_response()
        }),
    ))
    .await;
    let host = plugin_host().await;
    let stored = SourceConfig {
        source_id: Some("src_etag".into()),
        auth_type: "api-token".into(),
        secrets: map(&[("token", "glpat-etag-test-token")]),
        ..source("gitlab", &format!("{}/group/shop", stand.url))
    };
    let first = host.fetch_issue(&stored, "12").await.unwrap();
    let second = host.fetch_issue(&stored, "12").await.unwrap();
    assert_eq!(first, second, "a 304 serves the kept answer");
    assert_eq!(second.title, "Login fails");
    let conditional = |i: usize| {
        stand.requests()[i]
            .header("if-none-match")
            .map(str::to_string)
    };
    assert_eq!(conditional(0), None);
    assert_eq!(conditional(1).as_deref(), Some("W/\"3f2a\""));

    // A draft keeps nothing, and a source whose account changed starts over.
    let draft = SourceConfig {
        source_id: None,
        ..stored.clone()
    };
    host.fetch_issue(&draft, "12").await.unwrap();
    assert_eq!(conditional(2), None);
    host.forget_source("src_etag");
    host.fetch_issue(&stored, "12").await.unwrap();
    assert_eq!(conditional(3), None);
}
