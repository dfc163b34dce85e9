//! End-to-end tests of the Linear plugin through the real host runtime, against a stand-in of
//! Linear's GraphQL endpoint on 127.0.0.1 (reached through the `api-url` setting).
//!
//! The stand-in checks what the real API needs (POST, JSON body with `query`/`variables`, the
//! `Authorization` header exactly as Linear wants it: the personal key bare, an OAuth token
//! with `Bearer`) and answers the shapes of providers.md §4: `data` on success, `errors[]` with
//! `extensions.type`/`code` otherwise, under 200, 400, 401, 403, 429 or 500 as configured.
//! The batch query is `issues(filter: { or: [{ team: { key: { eq } }, number: { in } }] })`
//! (IssueFilter.team: TeamFilter, TeamFilter.key: StringComparator, IssueFilter.number:
//! NumberComparator, IssueFilter.or: [IssueFilter!], Query.issues(filter, first,
//! includeArchived): IssueConnection!; linear/linear packages/sdk/src/schema.graphql).

use integration_tests::provider_error;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use host::plugin::{PluginError, ProviderError, SourceConfig};
use integration_tests::{StandIn, map, plugin_host, source};
use serde_json::{Value, json};

const API_KEY: &str = "lin_api_0123456789abcdef";
const OAUTH_TOKEN: &str = "lin_oauth_fedcba9876543210";
/// A personal key restricted to creating issues: it signs in but reads no issue.
const CREATE_ONLY_KEY: &str = "lin_api_create_only_0000";
const BASE: &str = "https://linear.app/acme";

/// How the stand-in behaves.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    /// A working Linear.
    Normal,
    /// Bad credentials answered as HTTP 200 with `errors[]` (as a GraphQL server may).
    Auth200,
    /// Bad credentials answered as HTTP 400.
    Auth400,
    /// Every call rate limited: HTTP 400, RATELIMITED, request bucket exhausted for 30 s.
    RateLimitedRequests,
    /// Complexity bucket exhausted (45 s) while the request bucket is not.
    RateLimitedComplexity,
    /// HTTP 429 with `Retry-After: 17`.
    RateLimited429,
    /// HTTP 403 with a `forbidden` error.
    Forbidden,
    /// HTTP 500 with an `internal error`.
    Internal,
    /// HTTP 502 with an HTML page (a proxy in front of Linear).
    BadGateway,
    /// Refuses the batch query `issues(filter:)` with a validation error, while `issue(id:)`
    /// works (a schema change, or a filter the server no longer accepts).
    BatchRefused,
}

struct Fixture {
    identifier: &'static str,
    previous: &'static [&'static str],
    title: &'static str,
    state: (&'static str, &'static str),
    assignee: Option<(&'static str, &'static str)>,
}

const ISSUES: &[Fixture] = &[
    Fixture {
        identifier: "ENG-1",
        previous: &[],
        title: "Login fails on Safari",
        state: ("In Progress", "started"),
        assignee: Some(("Mia Krystof", "mia")),
    },
    Fixture {
        identifier: "ENG-2",
        previous: &[],
        title: "Dark mode",
        state: ("Backlog", "backlog"),
        assignee: None,
    },
    Fixture {
        identifier: "ENG-3",
        previous: &[],
        title: "Crash on save",
        state: ("Done", "completed"),
        assignee: Some(("Sam Lee", "sam")),
    },
    Fixture {
        identifier: "ENG-4",
        previous: &[],
        title: "Old idea",
        state: ("Canceled", "canceled"),
        assignee: None,
    },
    Fixture {
        identifier: "ENG-5",
        previous: &[],
        title: "Reported by support",
        state: ("Triage", "triage"),
        assignee: None,
    },
    Fixture {
        identifier: "ENG-6",
        previous: &[],
        title: "Write docs",
        state: ("Todo", "unstarted"),
        assignee: Some(("Mia Krystof", "mia")),
    },
    Fixture {
        identifier: "ENG-7",
        previous: &[],
        title: "Same as ENG-1",
        state: ("Duplicate", "duplicate"),
        assignee: None,
    },
    Fixture {
        identifier: "2OPS-8",
        previous: &[],
        title: "Deploy pipeline",
        state: ("In Review", "started"),
        assignee: Some(("Ola Nordmann", "ola")),
    },
    // Moved from team ENG to PLAT: `issue(id: "ENG-9")` still finds it (previousIdentifiers).
    Fixture {
        identifier: "PLAT-9",
        previous: &["ENG-9"],
        title: "Moved between teams",
        state: ("Todo", "unstarted"),
        assignee: None,
    },
];

fn node(f: &Fixture) -> Value {
    let slug = f.title.to_lowercase().replace(' ', "-");
    json!({
        "id": format!("uuid-{}", f.identifier),
        "identifier": f.identifier,
        "title": f.title,
        "url": format!("https://linear.app/acme/issue/{}/{slug}", f.identifier),
        "state": {"name": f.state.0, "type": f.state.1},
        "assignee": f.assignee.map(|(name, nick)| json!({"name": name, "displayName": nick})),
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn gql_error(status: StatusCode, message: &str, kind: &str, code: &str, user: &str) -> Response {
    let body = json!({"errors": [{"message": message, "extensions": {
        "type": kind, "code": code, "userError": true, "userPresentableMessage": user}}]});
    (status, axum::Json(body)).into_response()
}

fn auth_error(status: StatusCode) -> Response {
    gql_error(
        status,
        "Authentication required, not authenticated",
        "authentication error",
        "AUTHENTICATION_ERROR",
        "You need to authenticate to access this operation.",
    )
}

fn validation_error(why: &str) -> Response {
    gql_error(
        StatusCode::BAD_REQUEST,
        why,
        "graphql error",
        "GRAPHQL_VALIDATION_FAILED",
        why,
    )
}

fn ratelimit_headers(mode: Mode) -> Vec<(&'static str, String)> {
    let now = now_ms();
    match mode {
        Mode::RateLimitedRequests => vec![
            ("x-ratelimit-requests-limit", "1500".into()),
            ("x-ratelimit-requests-remaining", "0".into()),
            ("x-ratelimit-requests-reset", (now + 30_000).to_string()),
            ("x-ratelimit-complexity-remaining", "240000".into()),
            (
                "x-ratelimit-complexity-reset",
                (now + 3_600_000).to_string(),
            ),
        ],
        Mode::RateLimitedComplexity => vec![
            ("x-ratelimit-requests-remaining", "1200".into()),
            ("x-ratelimit-requests-reset", (now + 3_600_000).to_string()),
            ("x-ratelimit-complexity-limit", "250000".into()),
            ("x-ratelimit-complexity-remaining", "0".into()),
            ("x-ratelimit-complexity-reset", (now + 45_000).to_string()),
        ],
        Mode::RateLimited429 => vec![("retry-after", "17".into())],
        _ => vec![],
    }
}

async fn graphql(State(mode): State<Mode>, headers: HeaderMap, body: Bytes) -> Response {
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
        return validation_error("POST body must be JSON (content-type: application/json)");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return validation_error("body is not JSON");
    };
    let Some(query) = body["query"].as_str() else {
        return validation_error("Must provide query string.");
    };
    // Credentials: the personal key bare, an OAuth token as Bearer (providers.md §4.2).
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let viewer = if auth == API_KEY {
        json!({"id": "2c9c1ff8", "name": "Mia Krystof", "displayName": "mia", "email": "mia@example.com"})
    } else if auth == format!("Bearer {OAUTH_TOKEN}") {
        json!({"id": "7d1e0c2a", "name": "Acme Sync", "displayName": "acme-sync", "email": "sync@acme.example"})
    } else if auth == CREATE_ONLY_KEY {
        if !query.contains("viewer") {
            return gql_error(
                StatusCode::OK,
                "Invalid scope: `read` required",
                "forbidden",
                "FORBIDDEN",
                "You don't have permission to access this resource.",
            );
        }
        json!({"id": "5e6f7a8b", "name": "Issue Bot", "displayName": "bot", "email": "bot@acme.example"})
    } else {
        return match mode {
            Mode::Auth200 => auth_error(StatusCode::OK),
            Mode::Auth400 => auth_error(StatusCode::BAD_REQUEST),
            _ => auth_error(StatusCode::UNAUTHORIZED),
        };
    };
    let limited = |status: StatusCode| {
        let mut resp = gql_error(
            status,
            "Rate limit exceeded",
            "ratelimited",
            "RATELIMITED",
            "Too many requests, slow down.",
        );
        for (name, value) in ratelimit_headers(mode) {
            resp.headers_mut().insert(name, value.parse().unwrap());
        }
        resp
    };
    match mode {
        Mode::RateLimitedRequests | Mode::RateLimitedComplexity => {
            return limited(StatusCode::BAD_REQUEST);
        }
        Mode::RateLimited429 => return limited(StatusCode::TOO_MANY_REQUESTS),
        Mode::Forbidden => {
            return gql_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "forbidden",
                "FORBIDDEN",
                "You don't have access to this team.",
            );
        }
        Mode::Internal => {
            return gql_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
                "internal error",
                "INTERNAL_SERVER_ERROR",
                "Something went wrong.",
            );
        }
        Mode::BadGateway => {
            return (
                StatusCode::BAD_GATEWAY,
                "<html><body><h1>502 Bad Gateway</h1></body></html>",
            )
                .into_response();
        }
        _ => {}
    }

    if query.contains("viewer") {
        let data = json!({"viewer": viewer, "organization": {"id": "8b1f3b2a", "name": "Acme", "urlKey": "acme"}});
        return axum::Json(json!({"data": data})).into_response();
    }
    if query.contains("issues(") && body["variables"]["filter"].is_null() {
        // The connection test's probe: `issues(first: 1)`.
        return axum::Json(json!({"data": {"issues": {"nodes": [{"id": "uuid-ENG-1"}]}}}))
            .into_response();
    }
    if query.contains("issues(") {
        if mode == Mode::BatchRefused {
            return validation_error("Field \"number\" is not defined by type \"IssueFilter\".");
        }
        return batch(&body);
    }
    if query.contains("issue(") {
        let Some(id) = body["variables"]["id"].as_str() else {
            return validation_error(
                "Variable \"$id\" of required type \"String!\" was not provided.",
            );
        };
        let found = ISSUES
            .iter()
            .find(|f| f.identifier == id || f.previous.contains(&id));
        return match found {
            Some(f) => axum::Json(json!({"data": {"issue": node(f)}})).into_response(),
            // `Query.issue` is non-null, so a missing issue nulls `data` (providers.md §4.4).
            None => axum::Json(
                json!({"errors": [{"message": "Entity not found", "path": ["issue"], "extensions": {
                "type": "invalid input", "code": "INPUT_ERROR", "userError": true,
                "userPresentableMessage": "Could not find referenced Issue."}}], "data": null}),
            )
            .into_response(),
        };
    }
    validation_error("unexpected query")
}

/// Evaluates `{ or: [{ team: { key: { eq } }, number: { in } }] }` over the fixtures.
fn batch(body: &Value) -> Response {
    let vars = &body["variables"];
    let (Some(branches), Some(first)) = (vars["filter"]["or"].as_array(), vars["first"].as_u64())
    else {
        return validation_error("expected variables.filter.or and variables.first");
    };
    let mut nodes = Vec::new();
    for branch in branches {
        let (Some(team), Some(numbers)) = (
            branch["team"]["key"]["eq"].as_str(),
            branch["number"]["in"].as_array(),
        ) else {
            return validation_error("each or-branch needs team.key.eq and number.in");
        };
        for f in ISSUES {
            let (t, n) = f.identifier.split_once('-').unwrap();
            let n: f64 = n.parse().unwrap();
            if t == team && numbers.iter().any(|v| v.as_f64() == Some(n)) {
                nodes.push(node(f));
            }
        }
    }
    nodes.truncate(first as usize);
    axum::Json(json!({"data": {"issues": {"nodes": nodes}}})).into_response()
}

async fn linear(mode: Mode) -> StandIn {
    StandIn::start(
        Router::new()
            .route("/graphql", post(graphql))
            .with_state(mode),
    )
    .await
}

fn src(stand_in: &StandIn) -> SourceConfig {
    SourceConfig {
        auth_type: "api-token".into(),
        secrets: map(&[("api-key", API_KEY)]),
        settings: map(&[("api-url", &stand_in.url)]),
        ..source("linear", BASE)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_declares_linear_auth_and_api_origin() {
    let host = plugin_host().await;
    let info = host.get("linear").unwrap().info.clone();
    assert_eq!(info.name, "Linear");
    assert_eq!(info.key_example, "ENG-123");
    assert_eq!(
        info.extra_origins,
        vec!["credentialed https://api.linear.app".to_string()]
    );
    let ids: Vec<&str> = info.auth_types.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["api-token", "oauth2"]);
    assert_eq!(
        info.auth_type("api-token").unwrap().scheme,
        host::plugin::model::CredentialScheme::Header {
            name: "Authorization".into(),
            prefix: String::new(),
            field: "api-key".into()
        }
    );
    assert_eq!(
        info.auth_type("oauth2").unwrap().scheme,
        host::plugin::model::CredentialScheme::Bearer {
            field: "access-token".into()
        }
    );
    let api = info
        .settings
        .iter()
        .find(|s| s.name == "api-url")
        .expect("api-url setting");
    assert_eq!(api.kind, host::plugin::model::SettingKind::Url);
}

#[tokio::test(flavor = "multi_thread")]
async fn normalize_key_accepts_typed_and_pasted_keys() {
    let host = plugin_host().await;
    let src = source("linear", BASE);
    let cases = [
        ("ENG-123", "ENG-123"),
        ("eng-123", "ENG-123"),
        ("  team-7 \n", "TEAM-7"),
        ("2eng-42", "2ENG-42"),
        ("1PASS-42", "1PASS-42"),
        ("pla4-16916", "PLA4-16916"),
        ("DEVOPS-471", "DEVOPS-471"),
        ("https://linear.app/acme/issue/TEAM-7/some-slug", "TEAM-7"),
        ("https://linear.app/acme/issue/eng-12", "ENG-12"),
        (
            "https://linear.app/acme/issue/ENG-12/title-slug?foo=1#comment-3",
            "ENG-12",
        ),
        (" https://linear.app/ACME/issue/ENG-5/ ", "ENG-5"),
    ];
    for (input, want) in cases {
        assert_eq!(
            host.normalize_key(&src, input).await.unwrap(),
            want,
            "input {input:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn normalize_key_rejects_near_misses_precisely() {
    let host = plugin_host().await;
    let src = source("linear", BASE);
    let cases = [
        ("", "enter a Linear issue key"),
        ("   ", "enter a Linear issue key"),
        ("ENG-0", "positive whole number"),
        ("ENG-007", "without leading zeros"),
        ("ENG-", "issue number after \"-\" is missing"),
        ("-1", "team key before \"-\" is missing"),
        ("#", "expected the team key"),
        ("#12", "expected the team key"),
        ("0", "expected the team key"),
        ("123", "expected the team key"),
        ("ENG", "expected the team key"),
        ("123-4", "must contain a letter"),
        ("ENG 12", "expected the team key"),
        ("ENG -12", "only contain the letters"),
        ("ENG- 12", "positive whole number"),
        ("EN G-12", "only contain the letters"),
        ("ENG_12", "expected the team key"),
        ("ENG-1-2", "positive whole number"),
        ("ENG-+1", "positive whole number"),
        ("ENG-1.5", "positive whole number"),
        ("ＥＮＧ-1", "only contain the letters"),
        ("ENG-１２", "positive whole number"),
        ("ЕNG-1", "only contain the letters"),
        ("TOOLONGTEAMKEY-1", "longer than 10"),
        ("ENG-99999999999999999999", "positive whole number"),
        (
            "https://github.com/acme/shop/issues/5",
            "not a Linear issue URL",
        ),
        (
            "https://linear.app/acme/project/launch-1234",
            "not a link to a Linear issue",
        ),
        (
            "https://linear.app/acme/issue/",
            "not a link to a Linear issue",
        ),
        (
            "https://linear.app/acme/issue/ENG-0/x",
            "positive whole number",
        ),
        (
            "https://linear.app/other/issue/ENG-5/slug",
            "workspace \"other\"",
        ),
    ];
    for (input, want) in cases {
        match host.normalize_key(&src, input).await {
            Err(PluginError::Provider(ProviderError::InvalidInput(m))) => {
                assert!(
                    m.contains(want),
                    "input {input:?}: message {m:?} lacks {want:?}"
                )
            }
            other => panic!("input {input:?}: expected invalid input, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_and_create_urls_use_the_workspace_or_the_sources_templates() {
    let host = plugin_host().await;
    let src = source("linear", BASE);
    assert_eq!(
        host.issue_url(&src, "ENG-123").await.unwrap(),
        "https://linear.app/acme/issue/ENG-123"
    );
    assert_eq!(
        host.create_url(&src).await.unwrap(),
        "https://linear.app/acme/new"
    );

    let custom = SourceConfig {
        issue_url_template: Some("{baseUrl}/issue/{key}/details".into()),
        create_url_template: Some("{baseUrl}/team/ENG/new".into()),
        ..source("linear", "https://linear.app/acme/")
    };
    assert_eq!(
        host.issue_url(&custom, "ENG-5").await.unwrap(),
        "https://linear.app/acme/issue/ENG-5/details"
    );
    assert_eq!(
        host.create_url(&custom).await.unwrap(),
        "https://linear.app/acme/team/ENG/new"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_sends_the_api_key_bare_and_names_user_and_workspace() {
    let host = plugin_host().await;
    let linear = linear(Mode::Normal).await;
    let info = host.test_connection(&src(&linear)).await.unwrap();
    assert_eq!(info.account, "Mia Krystof (mia@example.com)");
    assert_eq!(
        info.detail.as_deref(),
        Some("workspace Acme (https://linear.app/acme)")
    );

    let reqs = linear.requests();
    assert_eq!(reqs.len(), 2, "the viewer, then a one-issue probe");
    assert!(
        reqs[1].json()["query"]
            .as_str()
            .unwrap()
            .contains("issues(first: 1)")
    );
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].uri, "/graphql");
    assert_eq!(
        reqs[0].header("authorization"),
        Some(API_KEY),
        "personal API keys go without Bearer"
    );
    assert!(reqs[0].json()["query"].as_str().unwrap().contains("viewer"));
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_with_oauth_sends_a_bearer_token() {
    let host = plugin_host().await;
    let linear = linear(Mode::Normal).await;
    let src = SourceConfig {
        auth_type: "oauth2".into(),
        secrets: map(&[("access-token", OAUTH_TOKEN)]),
        // An API URL that already ends in /graphql is used as is.
        settings: map(&[("api-url", &format!("{}/graphql", linear.url))]),
        ..source("linear", BASE)
    };
    let info = host.test_connection(&src).await.unwrap();
    assert_eq!(info.account, "Acme Sync (sync@acme.example)");
    let reqs = linear.requests();
    assert_eq!(reqs[0].uri, "/graphql");
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Bearer {OAUTH_TOKEN}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_reports_rejected_credentials_whatever_the_http_status() {
    let host = plugin_host().await;
    for mode in [Mode::Normal, Mode::Auth200, Mode::Auth400] {
        let linear = linear(mode).await;
        for secrets in [map(&[("api-key", "lin_api_wrong")]), map(&[])] {
            let src = SourceConfig {
                secrets,
                ..src(&linear)
            };
            match provider_error(host.test_connection(&src).await) {
                ProviderError::Unauthorized(m) => {
                    assert!(m.contains("Authentication required"), "{mode:?}: {m}");
                    assert!(m.contains("You need to authenticate"), "{mode:?}: {m}");
                }
                other => panic!("{mode:?}: expected unauthorized, got {other:?}"),
            }
        }
        assert!(
            linear
                .requests()
                .iter()
                .all(|r| r.header("authorization") != Some(API_KEY))
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_checks_the_base_url_names_the_keys_workspace() {
    let host = plugin_host().await;
    let linear = linear(Mode::Normal).await;
    let other = SourceConfig {
        base_url: "https://linear.app/other".into(),
        ..src(&linear)
    };
    match provider_error(host.test_connection(&other).await) {
        ProviderError::InvalidInput(m) => {
            assert!(
                m.contains("\"acme\"")
                    && m.contains("\"other\"")
                    && m.contains("https://linear.app/acme"),
                "{m}"
            )
        }
        e => panic!("expected invalid input, got {e:?}"),
    }
    let bare = SourceConfig {
        base_url: "https://linear.app".into(),
        ..src(&linear)
    };
    match provider_error(host.test_connection(&bare).await) {
        ProviderError::InvalidInput(m) => assert!(
            m.contains("must name the workspace: set it to https://linear.app/acme"),
            "{m}"
        ),
        e => panic!("expected invalid input, got {e:?}"),
    }
    // The workspace slug is case-insensitive.
    let upper = SourceConfig {
        base_url: "https://linear.app/ACME".into(),
        ..src(&linear)
    };
    host.test_connection(&upper).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_maps_forbidden_server_errors_and_unreachable() {
    let host = plugin_host().await;
    let forbidden = linear(Mode::Forbidden).await;
    assert!(
        matches!(provider_error(host.test_connection(&src(&forbidden)).await), ProviderError::Forbidden(m) if m.contains("don't have access"))
    );

    let internal = linear(Mode::Internal).await;
    assert!(
        matches!(provider_error(host.test_connection(&src(&internal)).await), ProviderError::Provider(m) if m.contains("HTTP 500") && m.contains("Internal server error"))
    );

    let gateway = linear(Mode::BadGateway).await;
    assert!(
        matches!(provider_error(host.test_connection(&src(&gateway)).await), ProviderError::Provider(m) if m.contains("502"))
    );

    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let src = SourceConfig {
        settings: map(&[("api-url", &url)]),
        ..source("linear", BASE)
    };
    assert!(matches!(
        provider_error(host.test_connection(&src).await),
        ProviderError::Unreachable(_)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_maps_every_state_type_and_the_assignee() {
    let host = plugin_host().await;
    let linear = linear(Mode::Normal).await;
    let src = src(&linear);
    use host::plugin::model::StatusCategory::*;
    let cases = [
        ("ENG-1", "In Progress", InProgress, Some("Mia Krystof")),
        ("ENG-2", "Backlog", ToDo, None),
        ("ENG-3", "Done", Done, Some("Sam Lee")),
        ("ENG-4", "Canceled", Done, None),
        ("ENG-5", "Triage", ToDo, None),
        ("ENG-6", "Todo", ToDo, Some("Mia Krystof")),
        ("ENG-7", "Duplicate", Done, None),
        ("2OPS-8", "In Review", InProgress, Some("Ola Nordmann")),
    ];
    for (key, status, category, assignee) in cases {
        let issue = host.fetch_issue(&src, key).await.unwrap();
        assert_eq!(issue.key, key);
        assert_eq!(issue.status, status, "{key}");
        assert_eq!(issue.status_category, category, "{key}");
        assert_eq!(issue.assignee.as_deref(), assignee, "{key}");
    }
    let issue = host.fetch_issue(&src, "ENG-1").await.unwrap();
    assert_eq!(issue.title, "Login fails on Safari");
    assert_eq!(
        issue.web_url,
        "https://linear.app/acme/issue/ENG-1/login-fails-on-safari"
    );

    let last = linear.requests().pop().unwrap();
    assert_eq!(last.header("authorization"), Some(API_KEY));
    let body = last.json();
    assert_eq!(body["variables"]["id"], "ENG-1");
    assert!(body["query"].as_str().unwrap().contains("issue(id: $id)"));
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_honours_the_sources_issue_url_template() {
    let host = plugin_host().await;
    let linear = linear(Mode::Normal).await;
    let src = SourceConfig {
        issue_url_template: Some("{baseUrl}/issue/{key}".into()),
        ..src(&linear)
    };
    let issue = host.fetch_issue(&src, "ENG-3").await.unwrap();
    assert_eq!(issue.web_url, "https://linear.app/acme/issue/ENG-3");
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_finds_a_moved_issue_by_its_old_identifier() {
    let host = plugin_host().await;
    let linear = linear(Mode::Normal).await;
    let issue = host.fetch_issue(&src(&linear), "ENG-9").await.unwrap();
    assert_eq!(issue.key, "ENG-9");
    assert_eq!(issue.title, "Moved between teams");
    assert_eq!(
        issue.web_url,
        "https://linear.app/acme/issue/PLAT-9/moved-between-teams"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_maps_entity_not_found_to_not_found() {
    let host = plugin_host().await;
    let linear = linear(Mode::Normal).await;
    match provider_error(host.fetch_issue(&src(&linear), "ENG-404").await) {
        ProviderError::NotFound(m) => assert!(
            m.contains("ENG-404") && m.contains("Entity not found"),
            "{m}"
        ),
        e => panic!("expected not found, got {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_with_bad_credentials_is_unauthorized() {
    let host = plugin_host().await;
    let linear = linear(Mode::Auth200).await;
    let src = SourceConfig {
        secrets: map(&[("api-key", "lin_api_revoked")]),
        ..src(&linear)
    };
    assert!(matches!(
        provider_error(host.fetch_issue(&src, "ENG-1").await),
        ProviderError::Unauthorized(_)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_wait_for_the_exhausted_bucket_or_retry_after() {
    let host = plugin_host().await;
    let cases = [
        (Mode::RateLimitedRequests, 28..=31),
        (Mode::RateLimitedComplexity, 43..=46),
        (Mode::RateLimited429, 17..=17),
    ];
    for (mode, expected) in cases {
        let linear = linear(mode).await;
        match provider_error(host.fetch_issue(&src(&linear), "ENG-1").await) {
            ProviderError::RateLimited {
                retry_after_secs,
                message,
            } => {
                assert!(
                    expected.contains(&retry_after_secs),
                    "{mode:?}: {retry_after_secs}"
                );
                assert!(message.contains("Rate limit exceeded"), "{message}");
            }
            e => panic!("{mode:?}: expected rate limited, got {e:?}"),
        }
        let keys = vec!["ENG-1".to_string(), "ENG-2".to_string()];
        match host.fetch_issues(&src(&linear), &keys).await {
            Err(PluginError::Provider(ProviderError::RateLimited {
                retry_after_secs, ..
            })) => {
                assert!(
                    expected.contains(&retry_after_secs),
                    "{mode:?} batch: {retry_after_secs}"
                )
            }
            other => panic!("{mode:?}: expected the whole batch rate limited, got {other:?}"),
        }
        assert_eq!(
            linear.requests().len(),
            2,
            "{mode:?}: one request per call, no retries"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_reads_a_batch_in_one_request() {
    let host = plugin_host().await;
    let linear = linear(Mode::Normal).await;
    let keys: Vec<String> = ["ENG-3", "2OPS-8", "ENG-1", "ENG-2", "ENG-3"]
        .map(String::from)
        .to_vec();
    let results = host.fetch_issues(&src(&linear), &keys).await.unwrap();
    let got: Vec<(String, String)> = results
        .iter()
        .map(|r| {
            r.as_ref()
                .map(|i| (i.key.clone(), i.title.clone()))
                .unwrap()
        })
        .collect();
    assert_eq!(
        got,
        [
            ("ENG-3", "Crash on save"),
            ("2OPS-8", "Deploy pipeline"),
            ("ENG-1", "Login fails on Safari"),
            ("ENG-2", "Dark mode"),
            ("ENG-3", "Crash on save")
        ]
        .map(|(k, t)| (k.to_string(), t.to_string()))
    );

    let reqs = linear.requests();
    assert_eq!(reqs.len(), 1, "one GraphQL request for the batch");
    let body = reqs[0].json();
    assert!(
        body["query"]
            .as_str()
            .unwrap()
            .contains("issues(filter: $filter")
    );
    assert_eq!(
        body["variables"]["filter"],
        json!({"or": [
            {"team": {"key": {"eq": "ENG"}}, "number": {"in": [3, 1, 2]}},
            {"team": {"key": {"eq": "2OPS"}}, "number": {"in": [8]}},
        ]})
    );
    assert_eq!(body["variables"]["first"], 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_gives_an_unknown_key_its_own_not_found_and_resolves_moved_keys() {
    let host = plugin_host().await;
    let linear = linear(Mode::Normal).await;
    let keys: Vec<String> = ["ENG-1", "ENG-404", "ENG-9", "ENG-6"]
        .map(String::from)
        .to_vec();
    let results = host.fetch_issues(&src(&linear), &keys).await.unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].as_ref().unwrap().title, "Login fails on Safari");
    assert!(
        matches!(&results[1], Err(ProviderError::NotFound(m)) if m.contains("ENG-404")),
        "{:?}",
        results[1]
    );
    let moved = results[2].as_ref().unwrap();
    assert_eq!(
        (moved.key.as_str(), moved.title.as_str()),
        ("ENG-9", "Moved between teams")
    );
    assert_eq!(results[3].as_ref().unwrap().status, "Todo");

    // The batch query, then one `issue(id:)` per key it missed (old identifiers resolve there).
    let reqs = linear.requests();
    assert_eq!(reqs.len(), 3, "{reqs:#?}");
    assert!(
        reqs[0].json()["query"]
            .as_str()
            .unwrap()
            .contains("issues(")
    );
    assert_eq!(reqs[1].json()["variables"]["id"], "ENG-404");
    assert_eq!(reqs[2].json()["variables"]["id"], "ENG-9");
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_fails_the_whole_batch_on_bad_credentials_after_one_request() {
    let host = plugin_host().await;
    let linear = linear(Mode::Normal).await;
    let src = SourceConfig {
        secrets: map(&[("api-key", "lin_api_wrong")]),
        ..src(&linear)
    };
    let keys: Vec<String> = ["ENG-1", "ENG-2", "ENG-404"].map(String::from).to_vec();
    assert!(matches!(
        host.fetch_issues(&src, &keys).await,
        Err(PluginError::Provider(ProviderError::Unauthorized(_)))
    ));
    assert_eq!(linear.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_of_an_empty_list_sends_nothing() {
    let host = plugin_host().await;
    let linear = linear(Mode::Normal).await;
    assert!(
        host.fetch_issues(&src(&linear), &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(linear.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_looks_up_at_most_ten_missed_keys_singly() {
    let host = plugin_host().await;
    let linear = linear(Mode::Normal).await;
    let mut keys = vec!["ENG-1".to_string()];
    keys.extend((500..512).map(|n| format!("ENG-{n}")));
    let results = host.fetch_issues(&src(&linear), &keys).await.unwrap();
    assert_eq!(results.len(), 13);
    assert!(results[0].is_ok());
    for r in &results[1..11] {
        assert!(
            matches!(r, Err(ProviderError::NotFound(m)) if m.contains("Entity not found")),
            "{r:?}"
        );
    }
    for r in &results[11..] {
        assert!(
            matches!(r, Err(ProviderError::NotFound(m)) if m.contains("too many unknown keys")),
            "{r:?}"
        );
    }
    assert_eq!(
        linear.requests().len(),
        11,
        "the batch query and ten single lookups"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_says_when_the_key_cannot_read_issues() {
    let host = plugin_host().await;
    let linear = linear(Mode::Normal).await;
    let restricted = SourceConfig {
        secrets: map(&[("api-key", CREATE_ONLY_KEY)]),
        ..src(&linear)
    };
    match provider_error(host.test_connection(&restricted).await) {
        ProviderError::Forbidden(message) => {
            assert!(message.contains("Issue Bot"), "{message}");
            assert!(message.contains("cannot read issues"), "{message}");
            assert!(message.contains("Read permission"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_falls_back_to_single_reads_when_the_batch_query_is_refused() {
    let host = plugin_host().await;
    let linear = linear(Mode::BatchRefused).await;
    let keys: Vec<String> = ["ENG-1", "ENG-3", "ENG-404"].map(String::from).to_vec();
    let results = host.fetch_issues(&src(&linear), &keys).await.unwrap();
    assert_eq!(results[0].as_ref().unwrap().title, "Login fails on Safari");
    assert_eq!(results[1].as_ref().unwrap().status, "Done");
    assert!(
        matches!(&results[2], Err(ProviderError::NotFound(m)) if m.contains("ENG-404")),
        "{:?}",
        results[2]
    );
    assert_eq!(
        linear.requests().len(),
        4,
        "the refused batch, then three reads"
    );

    // Within the call's request budget: 50 keys, the last one says why it was not read.
    let keys: Vec<String> = (0..50).map(|i| format!("ENG-{}", 1 + i % 3)).collect();
    let results = host.fetch_issues(&src(&linear), &keys).await.unwrap();
    assert!(results[..49].iter().all(Result::is_ok), "{results:?}");
    assert!(
        matches!(&results[49], Err(ProviderError::Provider(m)) if m.contains("not read this time") && m.contains("IssueFilter")),
        "{:?}",
        results[49]
    );
}
