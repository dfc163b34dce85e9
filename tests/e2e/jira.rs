//! End-to-end tests of the Jira Cloud plugin (`jira-cloud`) through the real host runtime,
//! against a stand-in Jira on 127.0.0.1.
//!
//! The stand-in follows `../shared/providers.md` section 1: `/rest/api/3/myself` answers 401
//! with a plain-text body to missing or wrong credentials, while issue reads treat them as an
//! anonymous user (404 with the ErrorCollection body) and the search answers them an empty list.
//! The search endpoint is the enhanced JQL search, `POST /rest/api/3/search/jql`: body
//! `{jql, fields, maxResults, nextPageToken}` (no `startAt`), answer `{issues, isLast,
//! nextPageToken}`, per the Jira Cloud platform OpenAPI (`SearchAndReconcileRequestBean` /
//! `SearchAndReconcileResults`, as mirrored in `ilpanich/jirust-cli`
//! `jira_v3_openapi/docs/SearchAndReconcileRequestBean.md` and the jira.js models). JQL refuses
//! unknown keys in `key in (...)` with 400 and one `errorMessages` entry per key,
//! `An issue with key 'X' does not exist for field 'key'.` (messages as captured in many client
//! projects, e.g. the Go and PHP clients found by the code search).

use integration_tests::{issue, provider_error};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use host::plugin::model::{CredentialScheme, SettingKind, StatusCategory};
use host::plugin::{PluginError, ProviderError, SourceConfig};
use integration_tests::{StandIn, map, plugin_host, source};
use serde_json::{Value, json};

const ID: &str = "jira-cloud";
const EMAIL: &str = "mia@example.com";
const TOKEN: &str = "ATATT3xFfGF0-token";
const OAUTH: &str = "eyJ-oauth-access-token";
const NOT_AUTHENTICATED: &str = "Client must be authenticated to access this resource.";

// ---------------------------------------------------------------------------------------------
// The stand-in

/// A stand-in Jira: the issues it holds, where its REST API lives and which credentials it takes.
struct Jira {
    /// Path before `/rest/api/3`: "" (site), "/jira" (context path), "/ex/jira/{cloudId}" (gateway).
    prefix: String,
    /// `Authorization` header values it accepts.
    accepted: Vec<String>,
    issues: Vec<Value>,
    /// Old key -> current key of issues moved to another project.
    moved: Vec<(String, String)>,
    /// Issues per search page.
    page_size: usize,
    /// Keys anonymous users may see (a public project).
    public: Vec<String>,
    /// `Authorization` values of OAuth tokens granted `read:jira-user` but not `read:jira-work`:
    /// `/myself` answers them, every issue read answers the gateway's 401 "scope does not match".
    user_scope_only: Vec<String>,
    /// Whether the account holds Browse projects in some project (`/mypermissions`).
    browse: bool,
    /// Refuses every issue search with 503, as an overloaded or broken search does.
    search_down: bool,
    /// Has no `/mypermissions` route (a 404, as a stand-in of only the cited endpoints would).
    no_permissions_route: bool,
    /// Every JQL it was asked.
    jqls: Mutex<Vec<String>>,
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// An issue bean as `GET /rest/api/3/issue/{key}` answers it (shape per providers.md 1.4).
fn bean(
    id: u32,
    key: &str,
    summary: &str,
    status: &str,
    category: (&str, u64),
    assignee: Option<&str>,
) -> Value {
    let (cat_key, cat_id) = category;
    let (color, cat_name) = match cat_key {
        "new" => ("blue-gray", "To Do"),
        "indeterminate" => ("yellow", "In Progress"),
        "done" => ("green", "Done"),
        _ => ("medium-gray", "No Category"),
    };
    json!({
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
        "id": id.to_string(),
        "self": format!("https://acme.atlassian.net/rest/api/3/issue/{id}"),
        "key": key,
        "fields": {
            "summary": summary,
            "status": {
                "self": "https://acme.atlassian.net/rest/api/3/status/10001",
                "description": "",
                "iconUrl": "https://acme.atlassian.net/images/icons/statuses/generic.png",
                "name": status,
                "id": "10001",
                "statusCategory": {
                    "self": format!("https://acme.atlassian.net/rest/api/3/statuscategory/{cat_id}"),
                    "id": cat_id,
                    "key": cat_key,
                    "colorName": color,
                    "name": cat_name
                }
            },
            "assignee": assignee.map(|name| json!({
                "self": "https://acme.atlassian.net/rest/api/3/user?accountId=5b10a2844c20165700ede21g",
                "accountId": "5b10a2844c20165700ede21g",
                "emailAddress": "someone@example.com",
                "avatarUrls": { "48x48": "https://avatar-management.example/initials/MK-5.png?size=48&s=48" },
                "displayName": name,
                "active": true,
                "timeZone": "Australia/Sydney",
                "accountType": "atlassian"
            })),
            "priority": { "name": "Medium", "id": "3" },
            "description": { "type": "doc", "version": 1, "content": [] }
        }
    })
}

fn sample_issues() -> Vec<Value> {
    vec![
        bean(
            10001,
            "PROJ-1",
            "Login fails on Safari",
            "To Do",
            ("new", 2),
            None,
        ),
        bean(
            10002,
            "PROJ-2",
            "Checkout button misaligned",
            "In Review",
            ("indeterminate", 4),
            Some("Mia Krystof"),
        ),
        bean(
            10003,
            "PROJ-3",
            "Release 2.0",
            "Done",
            ("done", 3),
            Some("Jon Doe"),
        ),
        bean(
            10004,
            "OPS_2-15",
            "Rotate keys",
            "Parked",
            ("undefined", 1),
            None,
        ),
        bean(
            10009,
            "PROJ-9",
            "Moved from the old project",
            "In Progress",
            ("indeterminate", 4),
            Some("Mia Krystof"),
        ),
    ]
}

impl Jira {
    fn new(prefix: &str, accepted: &[String]) -> Jira {
        Jira {
            prefix: prefix.into(),
            accepted: accepted.to_vec(),
            issues: sample_issues(),
            moved: vec![("OLD-5".into(), "PROJ-9".into())],
            page_size: 100,
            public: Vec::new(),
            user_scope_only: Vec::new(),
            browse: true,
            search_down: false,
            no_permissions_route: false,
            jqls: Mutex::new(Vec::new()),
        }
    }

    fn find(&self, key: &str) -> Option<Value> {
        let key = key.to_ascii_uppercase();
        let key = self
            .moved
            .iter()
            .find(|(old, _)| *old == key)
            .map(|(_, new)| new.clone())
            .unwrap_or(key);
        self.issues
            .iter()
            .find(|i| i["key"] == key.as_str())
            .cloned()
    }
}

/// Keeps only the requested fields of a bean, as Jira does.
fn only_fields(mut issue: Value, wanted: &[String]) -> Value {
    if let Some(fields) = issue["fields"].as_object_mut() {
        fields.retain(|name, _| wanted.iter().any(|w| w == name));
    }
    issue
}

fn json_response(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

fn issue_missing() -> Response {
    json_response(
        404,
        json!({"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}),
    )
}

async fn serve_jira(State(jira): State<Arc<Jira>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap();
    let path = parts.uri.path().to_string();
    let Some(rest) = path
        .strip_prefix(jira.prefix.as_str())
        .and_then(|p| p.strip_prefix("/rest/api/3"))
    else {
        return (
            StatusCode::NOT_FOUND,
            [("content-type", "text/html")],
            "<html>Oops, you've found a dead link.</html>",
        )
            .into_response();
    };
    let auth = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let user_scope_only = auth.is_some_and(|a| jira.user_scope_only.iter().any(|t| t == a));
    let authenticated =
        user_scope_only || auth.is_some_and(|a| jira.accepted.iter().any(|ok| ok == a));
    if user_scope_only && rest != "/myself" {
        // The API gateway's answer to a token without the operation's scope.
        return json_response(
            401,
            json!({"code": 401, "message": "Unauthorized; scope does not match"}),
        );
    }
    match (parts.method.as_str(), rest) {
        // getMyPermissions: the `permissions` parameter is required (since February 2019).
        ("GET", "/mypermissions") if jira.no_permissions_route => StatusCode::NOT_FOUND.into_response(),
        ("GET", "/mypermissions") => match parts.uri.query().unwrap_or("") {
            "permissions=BROWSE_PROJECTS" => json_response(
                200,
                json!({"permissions": {"BROWSE_PROJECTS": {
                    "id": "10", "key": "BROWSE_PROJECTS", "name": "Browse Projects", "type": "PROJECT",
                    "description": "Ability to browse projects and the issues within them.",
                    "havePermission": authenticated && jira.browse
                }}}),
            ),
            other => json_response(
                400,
                json!({"errorMessages": [format!("stand-in: unexpected permissions query {other:?}")], "errors": {}}),
            ),
        },
        ("POST", "/search/jql") if jira.search_down => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "text/html")],
            "<html><body><h1>Service Unavailable</h1><p>PROJ-1 Login fails on Safari; PROJ-2 Checkout button misaligned</p></body></html>",
        )
            .into_response(),
        // "This operation can be accessed anonymously." (getServerInfo)
        ("GET", "/serverInfo") => json_response(
            200,
            json!({
                "baseUrl": "https://acme.atlassian.net",
                "displayUrl": "https://acme.atlassian.net",
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "buildNumber": 100282,
                "buildDate": "2026-11-20T00:00:00.000+0000",
                "serverTime": "2026-11-27T10:00:00.000+0000",
                "scmInfo": "4b8d1fd5b0a2d4a0f1b46f0b9e0b5a0d2c8e7f11",
                "serverTitle": "Acme Jira",
                "defaultLocale": { "locale": "en_US" },
                "serverTimeZone": "Etc/UTC"
            }),
        ),
        ("GET", "/myself") => {
            if !authenticated {
                let mut resp = (
                    StatusCode::UNAUTHORIZED,
                    [
                        ("content-type", "text/plain;charset=UTF-8"),
                        (
                            "www-authenticate",
                            "OAuth realm=\"https%3A%2F%2Facme.atlassian.net\"",
                        ),
                    ],
                    NOT_AUTHENTICATED,
                )
                    .into_response();
                if auth.is_some() {
                    resp.headers_mut().insert(
                        "x-seraph-loginreason",
                        "AUTHENTICATED_FAILED".parse().unwrap(),
                    );
                }
                return resp;
            }
            json_response(
                200,
                json!({
                    "self": "https://acme.atlassian.net/rest/api/3/user?accountId=5b10a2844c20165700ede21g",
                    "key": "", "name": "",
                    "accountId": "5b10a2844c20165700ede21g",
                    "accountType": "atlassian",
                    "emailAddress": EMAIL,
                    "avatarUrls": { "48x48": "https://avatar-management.example/initials/MK-5.png?size=48&s=48" },
                    "displayName": "Mia Krystof",
                    "active": true,
                    "timeZone": "Australia/Sydney",
                    "groups": { "size": 3, "items": [] },
                    "applicationRoles": { "size": 1, "items": [] }
                }),
            )
        }
        ("GET", r) if r.starts_with("/issue/") => {
            // Rejected credentials read as anonymous: no issue is visible.
            let key = &r["/issue/".len()..];
            let wanted: Vec<String> = parts
                .uri
                .query()
                .unwrap_or("")
                .split('&')
                .filter_map(|p| p.strip_prefix("fields="))
                .flat_map(|f| f.split(',').map(String::from).collect::<Vec<_>>())
                .collect();
            let visible =
                |i: &Value| authenticated || jira.public.iter().any(|p| i["key"] == p.as_str());
            match jira.find(key).filter(visible) {
                Some(issue) if wanted.is_empty() => json_response(200, issue),
                Some(issue) => json_response(200, only_fields(issue, &wanted)),
                None => issue_missing(),
            }
        }
        ("POST", "/search/jql") => {
            let Ok(req) = serde_json::from_slice::<Value>(&body) else {
                return json_response(
                    400,
                    json!({"errorMessages": ["Invalid request payload. Refer to the REST API documentation and try again."]}),
                );
            };
            // The enhanced search pages with nextPageToken; startAt is not part of its payload.
            if req.get("startAt").is_some() || !req["jql"].is_string() {
                return json_response(
                    400,
                    json!({"errorMessages": ["Invalid request payload. Refer to the REST API documentation and try again."]}),
                );
            }
            let jql = req["jql"].as_str().unwrap().to_string();
            jira.jqls.lock().unwrap().push(jql.clone());
            let Some(list) = jql
                .strip_prefix("key in (")
                .and_then(|l| l.strip_suffix(')'))
            else {
                return json_response(
                    400,
                    json!({"errorMessages": [format!("stand-in: unexpected JQL {jql:?}")], "errors": {}}),
                );
            };
            let keys: Vec<String> = list
                .split(',')
                .map(|k| k.trim().trim_matches('"').to_string())
                .collect();
            let fields: Vec<String> = req["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str().map(String::from))
                .collect();
            if !authenticated {
                // providers.md 1.2: an anonymous JQL search answers 200 with what anonymous users
                // may see (nothing on a private site).
                let public: Vec<Value> = keys
                    .iter()
                    .filter_map(|k| jira.find(k))
                    .filter(|i| jira.public.iter().any(|p| i["key"] == p.as_str()))
                    .map(|i| only_fields(i, &fields))
                    .collect();
                return json_response(200, json!({"issues": public, "isLast": true}));
            }
            let unknown: Vec<Value> = keys
                .iter()
                .filter(|k| jira.find(k).is_none())
                .map(|k| {
                    json!(format!(
                        "An issue with key '{k}' does not exist for field 'key'."
                    ))
                })
                .collect();
            if !unknown.is_empty() {
                return json_response(
                    400,
                    json!({"errorMessages": unknown, "errors": {}, "warningMessages": []}),
                );
            }
            let all: Vec<Value> = keys
                .iter()
                .filter_map(|k| jira.find(k))
                .map(|i| only_fields(i, &fields))
                .collect();
            let start: usize = req["nextPageToken"]
                .as_str()
                .and_then(|t| t.strip_prefix("page-"))
                .map_or(0, |n| n.parse().unwrap());
            let size = jira
                .page_size
                .min(req["maxResults"].as_u64().unwrap_or(50) as usize);
            let end = (start + size).min(all.len());
            let mut answer = json!({"issues": all[start..end], "isLast": end == all.len()});
            if end < all.len() {
                answer["nextPageToken"] = json!(format!("page-{end}"));
            }
            json_response(200, answer)
        }
        _ => json_response(
            404,
            json!({"errorMessages": ["stand-in: no such resource"], "errors": {}}),
        ),
    }
}

async fn start(jira: Jira) -> (StandIn, Arc<Jira>) {
    let jira = Arc::new(jira);
    let router = Router::new().fallback(serve_jira).with_state(jira.clone());
    (StandIn::start(router).await, jira)
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
            let mut resp = Response::builder().status(status);
            for (n, v) in &headers {
                resp = resp.header(n, v);
            }
            resp.body(Body::from(body)).unwrap()
        }
    });
    StandIn::start(router).await
}

fn api_token(base_url: &str) -> SourceConfig {
    SourceConfig {
        auth_type: "api-token".into(),
        fields: map(&[("email", EMAIL)]),
        secrets: map(&[("api-token", TOKEN)]),
        ..source(ID, base_url)
    }
}

fn accepted() -> Vec<String> {
    vec![basic(EMAIL, TOKEN)]
}

// ---------------------------------------------------------------------------------------------
// describe, keys, URLs

#[tokio::test(flavor = "multi_thread")]
async fn describe_declares_jira_auth_types_and_gateway() {
    let host = plugin_host().await;
    let info = host.get(ID).unwrap().info.clone();
    assert_eq!(info.name, "Jira Cloud");
    assert_eq!(info.key_example, "PROJ-123");
    assert_eq!(info.default_issue_url_template, "{baseUrl}/browse/{key}");
    assert_eq!(
        info.default_create_url_template.as_deref(),
        Some("{baseUrl}/secure/CreateIssue!default.jspa")
    );
    assert_eq!(
        info.extra_origins,
        vec!["credentialed https://api.atlassian.com".to_string()]
    );
    let ids: Vec<&str> = info.auth_types.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["api-token", "oauth2", "basic", "none"]);

    let token = info.auth_type("api-token").unwrap();
    assert_eq!(
        token.scheme,
        CredentialScheme::Basic {
            user_field: Some("email".into()),
            password_field: "api-token".into()
        }
    );
    let secret = |name: &str| token.fields.iter().find(|f| f.name == name).unwrap().secret;
    assert!(!secret("email"), "the email is not a secret");
    assert!(secret("api-token"));
    assert_eq!(
        info.auth_type("oauth2").unwrap().scheme,
        CredentialScheme::Bearer {
            field: "access-token".into()
        }
    );

    let api_url = info
        .settings
        .iter()
        .find(|s| s.name == "api-url")
        .expect("api-url setting");
    assert_eq!(api_url.kind, SettingKind::Url);
    assert!(!api_url.required);

    // The suggested pattern accepts what normalize-key produces.
    let pattern = info.default_key_pattern.unwrap();
    assert_eq!(pattern, "^[A-Z][A-Z0-9_]+-[1-9][0-9]*$");
}

#[tokio::test(flavor = "multi_thread")]
async fn normalize_key_accepts_typed_and_pasted_keys() {
    let host = plugin_host().await;
    let src = source(ID, "https://acme.atlassian.net");
    let cases = [
        ("PROJ-123", "PROJ-123"),
        ("  proj-7 \t", "PROJ-7"),
        ("Proj-7", "PROJ-7"),
        ("ops_2-15", "OPS_2-15"),
        ("R2D2-1", "R2D2-1"),
        ("AB-99999999", "AB-99999999"),
        ("https://acme.atlassian.net/browse/PROJ-7", "PROJ-7"),
        (
            "https://acme.atlassian.net/browse/proj-7?focusedCommentId=10010",
            "PROJ-7",
        ),
        ("HTTPS://ACME.atlassian.net/browse/PROJ-7", "PROJ-7"),
        (
            "https://acme.atlassian.net/jira/software/c/projects/PROJ/boards/1?selectedIssue=PROJ-7",
            "PROJ-7",
        ),
        (
            "https://acme.atlassian.net/jira/software/c/projects/PROJ/issues/?jql=project%3DPROJ&selectedIssue=proj-8",
            "PROJ-8",
        ),
        (
            "https://acme.atlassian.net/jira/software/projects/PROJ/issues/PROJ-9",
            "PROJ-9",
        ),
    ];
    for (input, want) in cases {
        let got = host.normalize_key(&src, input).await;
        assert_eq!(
            got.as_ref().ok().map(String::as_str),
            Some(want),
            "{input:?} -> {got:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn normalize_key_rejects_near_misses_precisely() {
    let host = plugin_host().await;
    let src = source(ID, "https://acme.atlassian.net");
    let cases = [
        ("", "enter a Jira issue key"),
        ("   ", "enter a Jira issue key"),
        ("PROJ-0", "start at 1"),
        ("PROJ-000", "start at 1"),
        ("PROJ-007", "leading zero"),
        ("PROJ-", "issue number is missing"),
        ("-1", "no project key"),
        ("PROJ", "is not a Jira key"),
        ("123", "only a number"),
        ("PROJ 7", "contains a space"),
        ("PROJ- 7", "contains a space"),
        ("PROJ-\u{FF11}\u{FF12}", "digits 0-9"), // fullwidth １２
        ("\u{420}ROJ-1", "look-alike"),          // Cyrillic Р
        ("PR\u{41E}J-1", "look-alike"),          // Cyrillic О
        ("1PROJ-1", "must start with a letter"),
        ("P-1", "too short"),
        ("PROJ-7a", "not an issue number"),
        ("PR.OJ-1", "only letters, digits and _"),
        ("PROJ--1", "only letters, digits and _"),
        ("PROJ-99999999999999999999999", "too large"),
        (
            "https://other.atlassian.net/browse/PROJ-7",
            "other.atlassian.net",
        ),
        (
            "https://acme.atlassian.net/jira/your-work",
            "no issue key found",
        ),
        ("https://acme.atlassian.net/browse/PROJ-0", "start at 1"),
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
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_and_create_urls_use_templates() {
    let host = plugin_host().await;
    let site = source(ID, "https://acme.atlassian.net/");
    assert_eq!(
        host.issue_url(&site, "PROJ-7").await.unwrap(),
        "https://acme.atlassian.net/browse/PROJ-7"
    );
    assert_eq!(
        host.create_url(&site).await.unwrap(),
        "https://acme.atlassian.net/secure/CreateIssue!default.jspa"
    );

    let prefixed = source(ID, "https://jira.example.com/jira");
    assert_eq!(
        host.issue_url(&prefixed, "OPS-9").await.unwrap(),
        "https://jira.example.com/jira/browse/OPS-9"
    );
    assert_eq!(
        host.normalize_key(&prefixed, "https://jira.example.com/jira/browse/ops-9")
            .await
            .unwrap(),
        "OPS-9"
    );

    let custom = SourceConfig {
        issue_url_template: Some(
            "{baseUrl}/jira/servicedesk/projects/HELP/queues/issue/{key}".into(),
        ),
        create_url_template: Some(
            "{baseUrl}/secure/CreateIssueDetails!init.jspa?pid=10000&issuetype=10001".into(),
        ),
        ..source(ID, "https://acme.atlassian.net")
    };
    assert_eq!(
        host.issue_url(&custom, "HELP-3").await.unwrap(),
        "https://acme.atlassian.net/jira/servicedesk/projects/HELP/queues/issue/HELP-3"
    );
    assert_eq!(
        host.create_url(&custom).await.unwrap(),
        "https://acme.atlassian.net/secure/CreateIssueDetails!init.jspa?pid=10000&issuetype=10001"
    );
}

// ---------------------------------------------------------------------------------------------
// test-connection

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_reports_the_account_with_basic_email_token() {
    let (stand, _) = start(Jira::new("", &accepted())).await;
    let host = plugin_host().await;
    let info = host.test_connection(&api_token(&stand.url)).await.unwrap();
    assert_eq!(info.account, "Mia Krystof (mia@example.com)");
    assert!(info.detail.unwrap().contains(&stand.url));

    let requests = stand.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].uri, "/rest/api/3/myself");
    assert_eq!(
        requests[1].uri,
        "/rest/api/3/mypermissions?permissions=BROWSE_PROJECTS"
    );
    assert_eq!(
        requests[0].header("authorization"),
        Some(basic(EMAIL, TOKEN).as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_passes_when_the_permission_probe_is_missing() {
    let (stand, _) = start(Jira {
        no_permissions_route: true,
        ..Jira::new("", &accepted())
    })
    .await;
    let host = plugin_host().await;
    let info = host.test_connection(&api_token(&stand.url)).await.unwrap();
    assert_eq!(info.account, "Mia Krystof (mia@example.com)");
    let detail = info.detail.unwrap();
    assert!(detail.contains("permission was not checked"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_with_a_wrong_token_is_unauthorized() {
    let (stand, _) = start(Jira::new("", &accepted())).await;
    let host = plugin_host().await;
    let wrong = SourceConfig {
        secrets: map(&[("api-token", "revoked")]),
        ..api_token(&stand.url)
    };
    match provider_error(host.test_connection(&wrong).await) {
        ProviderError::Unauthorized(message) => {
            assert!(message.contains(NOT_AUTHENTICATED), "{message}");
            assert!(message.contains("email and the API token"), "{message}");
            // A scoped token is refused on the site URL in the same words: say what fixes it.
            assert!(
                message.contains(
                    "scoped API token, set API URL to https://api.atlassian.com/ex/jira/"
                ),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        stand.requests()[0].header("authorization"),
        Some(basic(EMAIL, "revoked").as_str())
    );

    // No token at all (the admin never saved one): the same 401.
    let missing = SourceConfig {
        secrets: map(&[]),
        ..api_token(&stand.url)
    };
    assert!(matches!(
        provider_error(host.test_connection(&missing).await),
        ProviderError::Unauthorized(_)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_explains_captcha_lockout() {
    let stand = start_fixed(
        401,
        &[
            ("x-seraph-loginreason", "AUTHENTICATION_DENIED".into()),
            ("content-type", "text/plain".into()),
        ],
        NOT_AUTHENTICATED,
    )
    .await;
    let host = plugin_host().await;
    match provider_error(host.test_connection(&api_token(&stand.url)).await) {
        ProviderError::Unauthorized(message) => assert!(message.contains("CAPTCHA"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_on_a_wrong_base_url_says_so() {
    // Not Jira at all: a 404 HTML page.
    let (stand, _) = start(Jira::new("/jira", &accepted())).await;
    let host = plugin_host().await;
    match provider_error(host.test_connection(&api_token(&stand.url)).await) {
        ProviderError::NotFound(message) => {
            assert!(message.contains("check the base URL"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // A web server answering 200 with HTML.
    let html = start_fixed(
        200,
        &[("content-type", "text/html".into())],
        "<html>Welcome</html>",
    )
    .await;
    match provider_error(host.test_connection(&api_token(&html.url)).await) {
        ProviderError::Provider(message) => {
            assert!(message.contains("check the base URL"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // Nothing listening: the message names the tracker.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    match provider_error(host.test_connection(&api_token(&closed)).await) {
        ProviderError::Unreachable(message) => {
            assert!(
                message.starts_with("Jira Cloud could not be reached"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_goes_through_the_gateway_and_links_stay_on_the_site() {
    let (stand, _) = start(Jira::new(
        "/ex/jira/cloud-123",
        &[format!("Bearer {OAUTH}")],
    ))
    .await;
    let host = plugin_host().await;
    let src = SourceConfig {
        auth_type: "oauth2".into(),
        secrets: map(&[("access-token", OAUTH)]),
        settings: map(&[("api-url", &format!("{}/ex/jira/cloud-123/", stand.url))]),
        ..source(ID, "https://acme.atlassian.net")
    };
    let info = host.test_connection(&src).await.unwrap();
    assert_eq!(info.account, "Mia Krystof (mia@example.com)");
    let got = host.fetch_issue(&src, "PROJ-2").await.unwrap();
    assert_eq!(got.web_url, "https://acme.atlassian.net/browse/PROJ-2");

    let requests = stand.requests();
    assert_eq!(requests[0].uri, "/ex/jira/cloud-123/rest/api/3/myself");
    assert_eq!(
        requests[2].uri,
        "/ex/jira/cloud-123/rest/api/3/issue/PROJ-2?fields=summary,status,assignee"
    );
    for r in &requests {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {OAUTH}").as_str())
        );
    }

    // Without the gateway URL an OAuth token cannot reach a Cloud site.
    let no_gateway = SourceConfig {
        settings: map(&[]),
        ..src.clone()
    };
    match provider_error(host.test_connection(&no_gateway).await) {
        ProviderError::InvalidInput(message) => assert!(
            message.contains("https://api.atlassian.com/ex/jira/"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scoped_api_token_through_the_gateway_uses_basic() {
    let (stand, _) = start(Jira::new("/ex/jira/cloud-9", &accepted())).await;
    let host = plugin_host().await;
    let src = SourceConfig {
        settings: map(&[(
            "api-url",
            &format!("{}/ex/jira/cloud-9/rest/api/3", stand.url),
        )]),
        ..api_token("https://acme.atlassian.net")
    };
    host.test_connection(&src).await.unwrap();
    let r = &stand.requests()[0];
    assert_eq!(r.uri, "/ex/jira/cloud-9/rest/api/3/myself");
    assert_eq!(
        r.header("authorization"),
        Some(basic(EMAIL, TOKEN).as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_and_a_context_path_work() {
    let (stand, _) = start(Jira::new("/jira", &[basic("mia", "s3cret")])).await;
    let host = plugin_host().await;
    let src = SourceConfig {
        auth_type: "basic".into(),
        fields: map(&[("username", "mia")]),
        secrets: map(&[("password", "s3cret")]),
        ..source(ID, &format!("{}/jira", stand.url))
    };
    host.test_connection(&src).await.unwrap();
    let got = host.fetch_issue(&src, "PROJ-3").await.unwrap();
    assert_eq!(got.web_url, format!("{}/jira/browse/PROJ-3", stand.url));
    let uris: Vec<String> = stand.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        uris,
        [
            "/jira/rest/api/3/myself",
            "/jira/rest/api/3/mypermissions?permissions=BROWSE_PROJECTS",
            "/jira/rest/api/3/issue/PROJ-3?fields=summary,status,assignee"
        ]
    );
    assert_eq!(
        stand.requests()[2].header("authorization"),
        Some(basic("mia", "s3cret").as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_proves_issues_can_be_read_and_names_the_missing_scope() {
    // An OAuth token granted read:jira-user only: /myself works, every issue read is refused.
    let (stand, _) = start(Jira {
        user_scope_only: vec![format!("Bearer {OAUTH}")],
        ..Jira::new("/ex/jira/cloud-123", &[])
    })
    .await;
    let host = plugin_host().await;
    let src = SourceConfig {
        auth_type: "oauth2".into(),
        secrets: map(&[("access-token", OAUTH)]),
        settings: map(&[("api-url", &format!("{}/ex/jira/cloud-123", stand.url))]),
        ..source(ID, "https://acme.atlassian.net")
    };
    for error in [
        provider_error(host.test_connection(&src).await),
        provider_error(host.fetch_issue(&src, "PROJ-2").await),
        provider_error(
            host.fetch_issues(&src, &["PROJ-1".into(), "PROJ-2".into()])
                .await,
        ),
    ] {
        match error {
            ProviderError::Forbidden(message) => {
                assert!(
                    message.contains("lacks the read:jira-work scope"),
                    "{message}"
                );
                assert!(!message.contains("invalid or expired"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    // Valid credentials of an account that may browse no project.
    let (stand, _) = start(Jira {
        browse: false,
        ..Jira::new("", &accepted())
    })
    .await;
    match provider_error(host.test_connection(&api_token(&stand.url)).await) {
        ProviderError::Forbidden(message) => {
            assert!(message.contains("Mia Krystof"), "{message}");
            assert!(message.contains("Browse projects"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// fetch-issue

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_maps_status_categories_and_assignees() {
    let (stand, _) = start(Jira::new("", &accepted())).await;
    let host = plugin_host().await;
    let src = api_token(&stand.url);
    let browse = |k: &str| format!("{}/browse/{k}", stand.url);
    let cases = [
        issue(
            "PROJ-1",
            "Login fails on Safari",
            "To Do",
            StatusCategory::ToDo,
            None,
            &browse("PROJ-1"),
        ),
        issue(
            "PROJ-2",
            "Checkout button misaligned",
            "In Review",
            StatusCategory::InProgress,
            Some("Mia Krystof"),
            &browse("PROJ-2"),
        ),
        issue(
            "PROJ-3",
            "Release 2.0",
            "Done",
            StatusCategory::Done,
            Some("Jon Doe"),
            &browse("PROJ-3"),
        ),
        // statusCategory "undefined" (No Category) reads as not started.
        issue(
            "OPS_2-15",
            "Rotate keys",
            "Parked",
            StatusCategory::ToDo,
            None,
            &browse("OPS_2-15"),
        ),
    ];
    for want in cases {
        let got = host.fetch_issue(&src, &want.key).await.unwrap();
        assert_eq!(got, want);
    }
    for r in stand.requests() {
        assert_eq!(r.method, "GET");
        assert!(
            r.uri.ends_with("?fields=summary,status,assignee"),
            "{}",
            r.uri
        );
        assert_eq!(
            r.header("authorization"),
            Some(basic(EMAIL, TOKEN).as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_honours_the_source_issue_url_template() {
    let (stand, _) = start(Jira::new("", &accepted())).await;
    let host = plugin_host().await;
    let src = SourceConfig {
        issue_url_template: Some("https://jira.internal.example/browse/{key}?src=to".into()),
        ..api_token(&stand.url)
    };
    let got = host.fetch_issue(&src, "PROJ-1").await.unwrap();
    assert_eq!(
        got.web_url,
        "https://jira.internal.example/browse/PROJ-1?src=to"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_of_a_moved_issue_answers_under_its_new_key() {
    let (stand, _) = start(Jira::new("", &accepted())).await;
    let host = plugin_host().await;
    let got = host
        .fetch_issue(&api_token(&stand.url), "OLD-5")
        .await
        .unwrap();
    assert_eq!(got.key, "PROJ-9");
    assert_eq!(got.web_url, format!("{}/browse/PROJ-9", stand.url));
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_not_found_names_the_account() {
    let (stand, _) = start(Jira::new("", &accepted())).await;
    let host = plugin_host().await;
    match provider_error(host.fetch_issue(&api_token(&stand.url), "PROJ-404").await) {
        ProviderError::NotFound(message) => {
            assert!(message.contains("PROJ-404"), "{message}");
            assert!(message.contains("Mia Krystof"), "{message}");
            assert!(message.contains("hidden from"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let uris: Vec<String> = stand.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        uris,
        [
            "/rest/api/3/issue/PROJ-404?fields=summary,status,assignee",
            "/rest/api/3/myself"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_with_bad_credentials_is_unauthorized_not_not_found() {
    let (stand, _) = start(Jira::new("", &accepted())).await;
    let host = plugin_host().await;
    let wrong = SourceConfig {
        secrets: map(&[("api-token", "expired")]),
        ..api_token(&stand.url)
    };
    // The issue exists, but Jira answers the rejected credentials as anonymous: 404.
    match provider_error(host.fetch_issue(&wrong, "PROJ-1").await) {
        ProviderError::Unauthorized(message) => assert!(message.contains("anonymous"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(stand.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_rejects_a_malformed_key_without_a_request() {
    let (stand, _) = start(Jira::new("", &accepted())).await;
    let host = plugin_host().await;
    for key in ["PROJ-0", "../myself", "PROJ-1?x=1"] {
        assert!(matches!(
            provider_error(host.fetch_issue(&api_token(&stand.url), key).await),
            ProviderError::InvalidInput(_)
        ));
    }
    assert!(stand.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_forbidden_is_forbidden() {
    let stand = start_fixed(
        403,
        &[("content-type", "application/json".into())],
        r#"{"errorMessages":["You do not have the permission to see the specified issue."],"errors":{}}"#,
    )
    .await;
    let host = plugin_host().await;
    match provider_error(host.fetch_issue(&api_token(&stand.url), "PROJ-1").await) {
        ProviderError::Forbidden(message) => assert!(
            message.contains("permission to see the specified issue"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// rate limits

fn iso_in(secs: u64) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + secs;
    let (days, rem) = ((t / 86_400) as i64, t % 86_400);
    // civil_from_days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_read_retry_after_and_the_iso_reset() {
    let host = plugin_host().await;
    let limited = |e: ProviderError| match e {
        ProviderError::RateLimited {
            retry_after_secs,
            message,
        } => (retry_after_secs, message),
        other => panic!("{other:?}"),
    };

    let burst = start_fixed(
        429,
        &[
            ("retry-after", "17".into()),
            ("x-ratelimit-reset", iso_in(3600)),
            ("ratelimit-reason", "jira-burst-based".into()),
            ("content-type", "application/json".into()),
        ],
        r#"{"errorMessages":["Rate limit exceeded."]}"#,
    )
    .await;
    let (secs, message) = limited(provider_error(
        host.fetch_issue(&api_token(&burst.url), "PROJ-1").await,
    ));
    assert_eq!(secs, 17);
    assert!(message.contains("jira-burst-based"), "{message}");

    // No Retry-After: wait until X-RateLimit-Reset, an ISO-8601 timestamp.
    let reset = start_fixed(429, &[("x-ratelimit-reset", iso_in(300))], "").await;
    let (secs, _) = limited(provider_error(
        host.test_connection(&api_token(&reset.url)).await,
    ));
    assert!((290..=301).contains(&secs), "{secs}");

    // Some 503s carry Retry-After too.
    let busy = start_fixed(503, &[("retry-after", "5".into())], "Service Unavailable").await;
    let (secs, _) = limited(provider_error(
        host.fetch_issues(&api_token(&busy.url), &["PROJ-1".into()])
            .await,
    ));
    assert_eq!(secs, 5);

    // A 503 without it is a tracker failure.
    let down = start_fixed(503, &[], "Service Unavailable").await;
    assert!(matches!(
        provider_error(host.fetch_issue(&api_token(&down.url), "PROJ-1").await),
        ProviderError::Provider(_)
    ));
}

/// A Jira that answers every request like Jira Cloud over its burst limit: 429 with
/// `Retry-After: 30` and an `X-RateLimit-Reset` to the minute, already past.
async fn start_over_the_limit() -> StandIn {
    let minute = format!("{}Z", &iso_in(0)[..16]);
    start_fixed(
        429,
        &[
            ("retry-after", "30".into()),
            ("x-ratelimit-reset", minute),
            ("x-ratelimit-remaining", "0".into()),
            ("content-type", "application/json".into()),
        ],
        r#"{"errorMessages":["Rate limit exceeded."]}"#,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_429_nothing_is_sent_before_retry_after_even_with_a_past_reset() {
    let jira = start_over_the_limit().await;
    let app = integration_tests::TestApp::start().await;
    let project = app.create("/api/v1/projects", json!({"name": "Web"})).await;
    let body = json!({
        "provider": ID, "display_name": "Our Jira", "base_url": jira.url,
        "auth": {"type": "api-token", "fields": {"email": EMAIL, "api-token": TOKEN}},
        "capabilities": {"read_issue_details": true}, "projects": {"mode": "all"},
    });
    let source = app.create("/api/v1/sources", body).await;
    let links = format!("/api/v1/projects/{project}/links");
    let link = |key: &str| {
        let body = json!({"test_object": "test-case:TC-1", "source_id": source, "key": key});
        app.admin("POST", &links, Some(body))
    };
    // The link's first fetch meets the limit.
    let first = link("PROJ-1").await.expect(201).clone();
    assert_eq!(first["last_error"]["code"], "rate-limited", "{first}");
    let sent = jira.requests().len();
    assert!(sent >= 1);

    // Manual refreshes answer without calling Jira, saying until when.
    let r = app
        .admin(
            "POST",
            &format!(
                "/api/v1/projects/{project}/links/{}/refresh",
                first["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (429, &json!("source-paused")),
        "{}",
        r.text
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(" UTC (in "),
        "{}",
        r.text
    );
    assert!(r.headers.contains("\"retry-after\": \""), "{}", r.headers);
    let r = app
        .admin("POST", &format!("/api/v1/sources/{source}/refresh"), None)
        .await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (429, &json!("source-paused")),
        "{}",
        r.text
    );
    assert!(r.headers.contains("\"retry-after\": \""), "{}", r.headers);
    // A new link is stored without a fetch; the periodic sync waits too.
    let second = link("PROJ-2").await.expect(201).clone();
    assert_eq!(second["last_error"]["code"], "source-paused", "{second}");
    let pacing = Arc::new(host::sync::Pacing::default());
    host::sync::pass(&app.state, &pacing, std::time::Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(jira.requests().len(), sent, "a paused source was called");

    // Health shows the same pause: the whole Retry-After, not the past reset.
    let h = app
        .admin("GET", &format!("/api/v1/sources/{source}/health"), None)
        .await
        .expect(200)
        .clone();
    let rate = &h["rate_limit"];
    assert_eq!(
        (&h["status"], &rate["active"]),
        (&json!("rate-limited"), &json!(true)),
        "{h}"
    );
    assert_eq!(rate["paused_until"], rate["limited_until"], "{h}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        rate["paused_until"].as_u64().unwrap() >= now + 25_000,
        "{h}"
    );
}

// ---------------------------------------------------------------------------------------------
// fetch-issues

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_is_one_jql_search() {
    let (stand, jira) = start(Jira::new("", &accepted())).await;
    let host = plugin_host().await;
    let keys: Vec<String> = ["PROJ-3", "PROJ-1", "OPS_2-15", "PROJ-2"]
        .map(String::from)
        .to_vec();
    let results = host
        .fetch_issues(&api_token(&stand.url), &keys)
        .await
        .unwrap();
    let got: Vec<(String, String, StatusCategory)> = results
        .into_iter()
        .map(|r| r.unwrap())
        .map(|i| (i.key, i.status, i.status_category))
        .collect();
    assert_eq!(
        got,
        [
            (
                "PROJ-3".to_string(),
                "Done".to_string(),
                StatusCategory::Done
            ),
            (
                "PROJ-1".to_string(),
                "To Do".to_string(),
                StatusCategory::ToDo
            ),
            (
                "OPS_2-15".to_string(),
                "Parked".to_string(),
                StatusCategory::ToDo
            ),
            (
                "PROJ-2".to_string(),
                "In Review".to_string(),
                StatusCategory::InProgress
            ),
        ]
    );
    let requests = stand.requests();
    assert_eq!(requests.len(), 1, "one search for the batch: {requests:?}");
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].uri, "/rest/api/3/search/jql");
    assert_eq!(
        requests[0].header("authorization"),
        Some(basic(EMAIL, TOKEN).as_str())
    );
    let body = requests[0].json();
    assert_eq!(body["fields"], json!(["summary", "status", "assignee"]));
    assert!(body["maxResults"].as_u64().unwrap() >= 4);
    assert_eq!(
        jira.jqls.lock().unwrap().clone(),
        [r#"key in ("PROJ-3","PROJ-1","OPS_2-15","PROJ-2")"#]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_drops_keys_jql_refuses_and_retries_once() {
    let (stand, jira) = start(Jira::new("", &accepted())).await;
    let host = plugin_host().await;
    let keys: Vec<String> = ["PROJ-1", "NOPE-9", "PROJ-2", "not a key", "PROJ-1"]
        .map(String::from)
        .to_vec();
    let results = host
        .fetch_issues(&api_token(&stand.url), &keys)
        .await
        .unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(results[0].as_ref().unwrap().title, "Login fails on Safari");
    match &results[1] {
        Err(ProviderError::NotFound(message)) => {
            assert!(message.contains("NOPE-9"), "{message}");
            assert!(message.contains("Mia Krystof"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        results[2].as_ref().unwrap().assignee.as_deref(),
        Some("Mia Krystof")
    );
    assert!(
        matches!(&results[3], Err(ProviderError::InvalidInput(_))),
        "{:?}",
        results[3]
    );
    assert_eq!(results[4].as_ref().unwrap().key, "PROJ-1");

    assert_eq!(
        jira.jqls.lock().unwrap().clone(),
        [
            r#"key in ("PROJ-1","NOPE-9","PROJ-2")"#,
            r#"key in ("PROJ-1","PROJ-2")"#
        ]
    );
    // Two searches (refused, retried) and the credentials check behind the "not found".
    let uris: Vec<String> = stand.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        uris,
        [
            "/rest/api/3/search/jql",
            "/rest/api/3/search/jql",
            "/rest/api/3/myself"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_of_only_unknown_keys_makes_no_second_search() {
    let (stand, _) = start(Jira::new("", &accepted())).await;
    let host = plugin_host().await;
    let keys: Vec<String> = ["NOPE-1", "NOPE-2"].map(String::from).to_vec();
    let results = host
        .fetch_issues(&api_token(&stand.url), &keys)
        .await
        .unwrap();
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(ProviderError::NotFound(_)))),
        "{results:?}"
    );
    let uris: Vec<String> = stand.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(uris, ["/rest/api/3/search/jql", "/rest/api/3/myself"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_with_bad_credentials_fails_the_whole_batch() {
    let (stand, _) = start(Jira::new("", &accepted())).await;
    let host = plugin_host().await;
    let wrong = SourceConfig {
        secrets: map(&[("api-token", "expired")]),
        ..api_token(&stand.url)
    };
    let keys: Vec<String> = ["PROJ-1", "PROJ-2"].map(String::from).to_vec();
    // The anonymous search answers 200 with no issues; /myself tells why.
    match provider_error(host.fetch_issues(&wrong, &keys).await) {
        ProviderError::Unauthorized(message) => {
            assert!(message.contains(NOT_AUTHENTICATED), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_follows_next_page_tokens() {
    let (stand, _) = start(Jira {
        page_size: 2,
        ..Jira::new("", &accepted())
    })
    .await;
    let host = plugin_host().await;
    let keys: Vec<String> = ["PROJ-1", "PROJ-2", "PROJ-3"].map(String::from).to_vec();
    let results = host
        .fetch_issues(&api_token(&stand.url), &keys)
        .await
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let requests = stand.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].json().get("nextPageToken").is_none());
    assert_eq!(requests[1].json()["nextPageToken"], "page-2");
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_resolves_moved_keys() {
    let (stand, _) = start(Jira::new("", &accepted())).await;
    let host = plugin_host().await;
    let keys: Vec<String> = ["PROJ-1", "OLD-5"].map(String::from).to_vec();
    let results = host
        .fetch_issues(&api_token(&stand.url), &keys)
        .await
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap().key, "PROJ-1");
    let moved = results[1].as_ref().unwrap();
    assert_eq!(
        (moved.key.as_str(), moved.title.as_str()),
        ("PROJ-9", "Moved from the old project")
    );
    let uris: Vec<String> = stand.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        uris,
        [
            "/rest/api/3/search/jql",
            "/rest/api/3/issue/OLD-5?fields=summary,status,assignee"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_rate_limited_is_the_outer_error() {
    let stand = start_fixed(429, &[("retry-after", "42".into())], "").await;
    let host = plugin_host().await;
    let keys: Vec<String> = ["PROJ-1", "PROJ-2"].map(String::from).to_vec();
    match provider_error(host.fetch_issues(&api_token(&stand.url), &keys).await) {
        ProviderError::RateLimited {
            retry_after_secs, ..
        } => assert_eq!(retry_after_secs, 42),
        other => panic!("{other:?}"),
    }
    assert_eq!(stand.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_falls_back_to_single_reads_when_the_search_fails() {
    let (stand, _) = start(Jira {
        search_down: true,
        ..Jira::new("", &accepted())
    })
    .await;
    let host = plugin_host().await;
    let keys: Vec<String> = ["PROJ-1", "PROJ-3"].map(String::from).to_vec();
    let results = host
        .fetch_issues(&api_token(&stand.url), &keys)
        .await
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap().title, "Login fails on Safari");
    assert_eq!(results[1].as_ref().unwrap().status, "Done");
    let uris: Vec<String> = stand.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        uris,
        [
            "/rest/api/3/search/jql",
            "/rest/api/3/issue/PROJ-1?fields=summary,status,assignee",
            "/rest/api/3/issue/PROJ-3?fields=summary,status,assignee"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_fallback_stays_within_the_request_budget() {
    let (stand, _) = start(Jira {
        search_down: true,
        ..Jira::new("", &accepted())
    })
    .await;
    let host = plugin_host().await;
    // 50 keys: the failed search plus 50 single reads would be one request too many.
    let keys: Vec<String> = (0..50)
        .map(|i| format!("PROJ-{}", [1, 2, 3][i % 3]))
        .collect();
    let results = host
        .fetch_issues(&api_token(&stand.url), &keys)
        .await
        .unwrap();
    assert_eq!(results.len(), 50);
    assert!(results[..49].iter().all(Result::is_ok), "{results:?}");
    match &results[49] {
        Err(ProviderError::Provider(message)) => {
            assert!(message.contains("not read this time"), "{message}");
            assert!(message.contains("HTTP 503"), "{message}");
            // The cause names the failure, not the body of another issue.
            assert!(!message.contains("Checkout"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(stand.requests().len(), 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_splits_large_batches_into_chunks_of_100() {
    let mut jira = Jira::new("", &accepted());
    jira.issues = (1..=150)
        .map(|n| {
            bean(
                20000 + n,
                &format!("BULK-{n}"),
                &format!("Issue {n}"),
                "To Do",
                ("new", 2),
                None,
            )
        })
        .collect();
    let (stand, _) = start(jira).await;
    let host = plugin_host().await;
    let keys: Vec<String> = (1..=150).map(|n| format!("BULK-{n}")).collect();
    let results = host
        .fetch_issues(&api_token(&stand.url), &keys)
        .await
        .unwrap();
    for (n, r) in (1..=150).zip(&results) {
        assert_eq!(r.as_ref().unwrap().title, format!("Issue {n}"));
    }
    assert_eq!(stand.requests().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// public sites

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_access_to_a_public_site() {
    let (stand, _) = start(Jira {
        public: vec!["PROJ-1".into()],
        ..Jira::new("", &accepted())
    })
    .await;
    let host = plugin_host().await;
    let src = source(ID, &stand.url);
    assert_eq!(src.auth_type, "none");

    let info = host.test_connection(&src).await.unwrap();
    assert_eq!(info.account, "anonymous");
    assert!(info.detail.unwrap().contains("Acme Jira (Cloud"));

    assert_eq!(
        host.fetch_issue(&src, "PROJ-1").await.unwrap().title,
        "Login fails on Safari"
    );
    match provider_error(host.fetch_issue(&src, "PROJ-2").await) {
        ProviderError::NotFound(message) => {
            assert!(message.contains("hidden from anonymous users"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let batch = host
        .fetch_issues(&src, &["PROJ-1".into(), "PROJ-2".into()])
        .await
        .unwrap();
    assert!(batch[0].is_ok());
    assert!(matches!(&batch[1], Err(ProviderError::NotFound(_))));

    // No /myself check: there are no credentials to doubt.
    let requests = stand.requests();
    let uris: Vec<&str> = requests.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "/rest/api/3/serverInfo",
            "/rest/api/3/issue/PROJ-1?fields=summary,status,assignee",
            "/rest/api/3/issue/PROJ-2?fields=summary,status,assignee",
            "/rest/api/3/search/jql",
        ]
    );
    assert!(requests.iter().all(|r| r.header("authorization").is_none()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_body_is_described_without_echoing_it() {
    // Cut off mid-body, as a proxy or a dropped connection leaves it.
    let stand = start_fixed(
        200,
        &[("content-type", "application/json".into())],
        r#"{"key":"PROJ-2","fields":{"summary":"Secret roadmap for the Q3 acquisition","status":{"name":"In"#,
    )
    .await;
    let host = plugin_host().await;
    match provider_error(host.fetch_issue(&api_token(&stand.url), "PROJ-2").await) {
        ProviderError::Provider(message) => {
            assert!(
                message.contains("Jira Cloud answered HTTP 200 with malformed JSON"),
                "{message}"
            );
            assert!(!message.contains("Secret roadmap"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn create_issues_without_a_template_suggests_jiras_own_new_issue_page() {
    let app = integration_tests::TestApp::start().await;
    let body = json!({
        "provider": ID,
        "display_name": "Acme Jira",
        "base_url": "https://acme.atlassian.net",
        "auth": {"type": "api-token", "fields": {"email": EMAIL, "api-token": TOKEN}},
        "enabled": true,
        "capabilities": {"read_issue_details": true, "create_issues": true, "add_comments": false, "process_webhooks": false},
        "projects": {"mode": "all"}
    });
    let message = app
        .admin("POST", "/api/v1/sources", Some(body))
        .await
        .expect_error(400, "create_url_template");
    assert!(
        message.contains("{baseUrl}/secure/CreateIssue!default.jspa"),
        "{message}"
    );
    assert!(!message.contains("/issues/new"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_without_fields_updated_is_versioned_by_its_timestamp() {
    let host = plugin_host().await;
    let src = source(ID, "https://acme.atlassian.net");
    let event = |fields: Value| host::plugin::Event {
        scheme: "hmac".into(),
        headers: vec![],
        body: json!({"timestamp": 1718000000000u64, "webhookEvent": "jira:issue_updated",
                     "issue": {"id": "10010", "key": "PROJ-123", "fields": fields}})
        .to_string()
        .into_bytes(),
    };
    let status = json!({"name": "In Progress", "statusCategory": {"key": "indeterminate"}});
    // providers-events.md §1.B's sample: no `updated`, and no `summary` either: the state is
    // taken, with the title left empty (the host keeps the one the link shows).
    let changes = host
        .parse_event(&src, event(json!({"status": status})))
        .await
        .unwrap();
    assert_eq!(changes[0].version, Some(1718000000000));
    let issue = changes[0].issue.as_ref().unwrap();
    assert_eq!(
        (issue.title.as_str(), issue.status.as_str()),
        ("", "In Progress")
    );
    let changes = host
        .parse_event(
            &src,
            event(json!({"status": status, "summary": "Login fails"})),
        )
        .await
        .unwrap();
    assert_eq!(changes[0].version, Some(1718000000000));
    assert_eq!(changes[0].issue.as_ref().unwrap().title, "Login fails");
    // `fields.updated`, when present, stays the version.
    let fields = json!({"status": status, "summary": "Login fails",
                        "updated": "2026-12-07T01:00:00.000+0000"});
    let changes = host.parse_event(&src, event(fields)).await.unwrap();
    assert_eq!(changes[0].version, Some(1796605200000));
}
