//! End-to-end tests of the Custom Tracker plugin through the real host runtime, against a
//! stand-in "any tracker" on 127.0.0.1: a web root per situation (open, private behind Bearer or
//! Basic credentials, 403, 404, 429, 503, redirects) and a JSON issue API under `/api/issues/`.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use host::plugin::{PluginError, ProviderError, SourceConfig};
use integration_tests::provider_error;
use integration_tests::{StandIn, map, plugin_host, source};
use serde_json::json;

const TOKEN: &str = "tok-good-123";
const USER: &str = "ana";
const PASSWORD: &str = "pw-good";

/// True when the request carries the stand-in's Bearer token or Basic user and password.
fn authorized(headers: &HeaderMap) -> bool {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    auth == format!("Bearer {TOKEN}") || auth == format!("Basic {basic}")
}

fn challenge() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"tracker\"")],
        "Unauthorized",
    )
        .into_response()
}

async fn private(headers: HeaderMap) -> Response {
    if authorized(&headers) {
        "<html><h1>Tracker</h1></html>".into_response()
    } else {
        challenge()
    }
}

async fn issue(Path(key): Path<String>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return challenge();
    }
    let body = match key.as_str() {
        "REQ-1" => {
            json!({"id": "REQ-1", "fields": {"summary": "Export fails", "status": {"name": "In Progress"}, "assignee": {"name": "Ana Lima"}}})
        }
        "REQ-2" => {
            json!({"id": "REQ-2", "fields": {"summary": "Old report", "status": {"name": "closed"}, "assignee": null}})
        }
        "REQ-3" => {
            json!({"id": "REQ-3", "fields": {"summary": "New idea", "status": {"name": "New"}}})
        }
        "REQ-4" => {
            json!({"id": "REQ-4", "fields": {"summary": "Numeric status", "status": {"name": 3}, "assignee": {"name": "Bo"}}})
        }
        "REQ-5" => {
            json!({"id": "REQ-5", "fields": {"summary": {"text": "an object"}, "status": {"name": "New"}}})
        }
        "REQ-6" => json!({"id": "REQ-6", "fields": {"status": {"name": "New"}}}),
        "QA#5" => {
            json!({"id": "QA#5", "fields": {"summary": "Key with a hash", "status": {"name": "Resolved"}, "assignee": {"name": "Cy"}}})
        }
        "REQ-429" => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "9")],
                "slow down",
            )
                .into_response();
        }
        "REQ-500" => return (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": "no such issue"})),
            )
                .into_response();
        }
    };
    axum::Json(body).into_response()
}

async fn tracker() -> StandIn {
    let router = Router::new()
        .route(
            "/open",
            get(|| async { "<html><h1>Open tracker</h1></html>" }),
        )
        .route("/private", get(private))
        .route(
            "/forbidden",
            get(|| async { (StatusCode::FORBIDDEN, "Forbidden") }),
        )
        .route(
            "/boom",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "maintenance") }),
        )
        .route(
            "/busy",
            get(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "7")],
                    "busy",
                )
            }),
        )
        .route(
            "/moved-here",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/open")]) }),
        )
        .route(
            "/moved-away",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "https://sso.example.com/login?next=/")],
                )
            }),
        )
        .route("/api/issues/{key}", get(issue));
    StandIn::start(router).await
}

/// A source reading issues from the stand-in's JSON API with a Bearer token.
fn reader(t: &StandIn) -> SourceConfig {
    SourceConfig {
        auth_type: "api-token".into(),
        secrets: map(&[("api-token", TOKEN)]),
        issue_url_template: Some("{baseUrl}/browse/{key}".into()),
        settings: map(&[
            ("issue-api-url", "{baseUrl}/api/issues/{key}"),
            ("title-pointer", "/fields/summary"),
            ("status-pointer", "/fields/status/name"),
            ("assignee-pointer", "/fields/assignee/name"),
            ("status-done-values", "Closed, Resolved ,Won't fix"),
            ("status-in-progress-values", "In Progress,In Review"),
        ]),
        ..source("custom", &t.url)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_offers_the_four_auth_types_and_no_default_urls() {
    let host = plugin_host().await;
    let info = host.get("custom").unwrap().info.clone();
    assert_eq!(info.name, "Custom Tracker");
    let ids: Vec<&str> = info.auth_types.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["none", "api-token", "basic", "oauth2"]);
    assert_eq!(info.default_key_pattern, None);
    assert_eq!(info.default_create_url_template, None);
    assert!(info.extra_origins.is_empty());
    let settings: Vec<&str> = info.settings.iter().map(|s| s.name.as_str()).collect();
    for name in [
        "issue-api-url",
        "title-pointer",
        "status-pointer",
        "assignee-pointer",
        "status-done-values",
        "status-in-progress-values",
    ] {
        assert!(settings.contains(&name), "{name}");
    }
    // The issue API URL is a template, so it cannot widen the allow-list.
    assert!(
        info.settings
            .iter()
            .all(|s| s.kind == host::plugin::model::SettingKind::Text)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn normalize_key_only_trims_and_keeps_the_keys_own_form() {
    let host = plugin_host().await;
    let src = SourceConfig {
        key_pattern: Some("^[A-Z]+-\\d+$".into()),
        ..source("custom", "https://tracker.example.com")
    };
    let cases = [
        (" REQ-42 ", "REQ-42"),
        ("req-42", "req-42"),
        ("#12", "#12"),
        ("12", "12"),
        ("ÄÖ-1", "ÄÖ-1"),
        ("ops/7", "ops/7"),
        ("\tBUG_77\n", "BUG_77"),
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
async fn normalize_key_rejects_empty_keys_and_inner_whitespace_or_control_characters() {
    let host = plugin_host().await;
    let src = source("custom", "https://tracker.example.com");
    let long = "a".repeat(300);
    let cases = [
        ("", "enter an issue key"),
        ("  \n ", "enter an issue key"),
        ("REQ 42", "whitespace (U+0020)"),
        ("REQ\t42", "whitespace (U+0009)"),
        ("REQ\u{a0}42", "whitespace (U+00A0)"),
        ("REQ\u{3000}42", "whitespace (U+3000)"),
        ("REQ\u{7}42", "control character U+0007"),
        ("REQ\u{200b}42", "invisible or control character U+200B"),
        (long.as_str(), "longer than 256 bytes"),
        (
            "https://tracker.example.com/browse/REQ-1",
            "no issue URL template",
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
async fn normalize_key_reads_pasted_links_through_the_issue_url_template() {
    let host = plugin_host().await;
    let with = |template: &str| SourceConfig {
        issue_url_template: Some(template.into()),
        ..source("custom", "https://tracker.example.com")
    };
    let browse = with("{baseUrl}/browse/{key}");
    let ok = [
        (&browse, "https://tracker.example.com/browse/REQ-7", "REQ-7"),
        (
            &browse,
            " https://tracker.example.com/browse/REQ-7?focus=1#c3 ",
            "REQ-7",
        ),
        (
            &browse,
            "https://TRACKER.example.com/browse/REQ-7/",
            "REQ-7",
        ),
        (&browse, "https://tracker.example.com/browse/QA%235", "QA#5"),
    ];
    for (src, input, want) in ok {
        assert_eq!(
            host.normalize_key(src, input).await.unwrap(),
            want,
            "input {input:?}"
        );
    }
    let suffixed = with("{baseUrl}/issues/{key}/view");
    assert_eq!(
        host.normalize_key(&suffixed, "https://tracker.example.com/issues/REQ-9/view")
            .await
            .unwrap(),
        "REQ-9"
    );
    let query = with("{baseUrl}/show?id={key}&tab=main");
    assert_eq!(
        host.normalize_key(&query, "https://tracker.example.com/show?id=REQ-3&tab=main")
            .await
            .unwrap(),
        "REQ-3"
    );

    let bad = [
        (
            &browse,
            "https://other.example.com/browse/REQ-7",
            "does not match",
        ),
        (
            &browse,
            "https://tracker.example.com/browse/",
            "does not match",
        ),
        (
            &browse,
            "https://tracker.example.com/browse/a%20b",
            "whitespace",
        ),
        (
            &suffixed,
            "https://tracker.example.com/issues/REQ-9",
            "does not match",
        ),
    ];
    for (src, input, want) in bad {
        match host.normalize_key(src, input).await {
            Err(PluginError::Provider(ProviderError::InvalidInput(m))) => {
                assert!(m.contains(want), "{input:?}: {m}")
            }
            other => panic!("input {input:?}: expected invalid input, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn urls_come_only_from_the_sources_templates() {
    let host = plugin_host().await;
    let bare = source("custom", "https://tracker.example.com/");
    match provider_error(host.issue_url(&bare, "REQ-1").await) {
        ProviderError::Unsupported(m) => assert!(m.contains("issue URL template"), "{m}"),
        e => panic!("expected unsupported, got {e:?}"),
    }
    match provider_error(host.create_url(&bare).await) {
        ProviderError::Unsupported(m) => assert!(m.contains("create URL template"), "{m}"),
        e => panic!("expected unsupported, got {e:?}"),
    }
    let src = SourceConfig {
        issue_url_template: Some("{baseUrl}/browse/{key}".into()),
        create_url_template: Some("{baseUrl}/issues/new?type=bug".into()),
        ..bare
    };
    assert_eq!(
        host.issue_url(&src, "REQ-1").await.unwrap(),
        "https://tracker.example.com/browse/REQ-1"
    );
    assert_eq!(
        host.issue_url(&src, "QA#5").await.unwrap(),
        "https://tracker.example.com/browse/QA%235"
    );
    assert_eq!(
        host.create_url(&src).await.unwrap(),
        "https://tracker.example.com/issues/new?type=bug"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn members_see_the_sources_key_pattern_not_advice_for_admins() {
    let app = integration_tests::TestApp::start().await;
    let project = app.create("/api/v1/projects", json!({"name": "Web"})).await;
    for (name, pattern) in [
        ("Requirements", Some("^REQ-[0-9]+$")),
        ("Tickets", Some("^T[0-9]+$")),
        ("Anything", None),
    ] {
        let body = json!({
            "provider": "custom", "display_name": name, "base_url": "https://tracker.example.com",
            "auth": {"type": "none"}, "issue_url_template": "{baseUrl}/issues/{key}",
            "key_pattern": pattern, "projects": {"mode": "all"},
        });
        app.admin("POST", "/api/v1/sources", Some(body))
            .await
            .expect(201);
    }
    let member = app
        .admin(
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "M", "role": "member", "projects": [project]})),
        )
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let list = app
        .call(
            "GET",
            &format!("/api/v1/sources?project={project}"),
            Some(&member),
            None,
        )
        .await
        .expect(200)
        .clone();
    let of = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["display_name"] == name)
            .unwrap()
            .clone()
    };
    let req = of("Requirements");
    assert_eq!(
        req["key_hint"],
        "Keys of this source match ^REQ-[0-9]+$, e.g. REQ-42"
    );
    assert_eq!(req["key_example"], "REQ-42");
    let tickets = of("Tickets");
    assert_eq!(tickets["key_hint"], "Keys of this source match ^T[0-9]+$");
    assert!(
        tickets["key_example"].is_null(),
        "REQ-42 would be refused: {tickets}"
    );
    let hint = of("Anything")["key_hint"].as_str().unwrap().to_string();
    assert!(!hint.contains("match"), "{hint}");
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_reports_the_http_answer_for_each_auth_type() {
    let host = plugin_host().await;
    let t = tracker().await;

    let open = source("custom", &format!("{}/open", t.url));
    let info = host.test_connection(&open).await.unwrap();
    assert_eq!(info.account, "anonymous");
    assert_eq!(info.detail, Some(format!("HTTP 200 from {}/open", t.url)));
    assert_eq!(t.requests()[0].header("authorization"), None);

    let private = format!("{}/private", t.url);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let cases = [
        (
            "api-token",
            map(&[]),
            map(&[("api-token", TOKEN)]),
            "API token",
            format!("Bearer {TOKEN}"),
        ),
        (
            "oauth2",
            map(&[]),
            map(&[("access-token", TOKEN)]),
            "OAuth 2.0 access token",
            format!("Bearer {TOKEN}"),
        ),
        (
            "basic",
            map(&[("username", USER)]),
            map(&[("password", PASSWORD)]),
            USER,
            format!("Basic {basic}"),
        ),
    ];
    for (auth_type, fields, secrets, account, header) in cases {
        t.clear();
        let src = SourceConfig {
            auth_type: auth_type.into(),
            fields,
            secrets,
            ..source("custom", &private)
        };
        let info = host.test_connection(&src).await.unwrap();
        assert_eq!(info.account, account);
        assert_eq!(info.detail, Some(format!("HTTP 200 from {private}")));
        let reqs = t.requests();
        assert_eq!(
            (reqs[0].method.as_str(), reqs[0].uri.as_str()),
            ("GET", "/private")
        );
        assert_eq!(
            reqs[0].header("authorization"),
            Some(header.as_str()),
            "{auth_type}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_maps_each_failure_to_what_the_admin_must_fix() {
    let host = plugin_host().await;
    let t = tracker().await;
    let at = |path: &str| source("custom", &format!("{}{path}", t.url));

    match provider_error(host.test_connection(&at("/private")).await) {
        ProviderError::Unauthorized(m) => assert!(
            m.contains("requires credentials") && m.contains("Basic"),
            "{m}"
        ),
        e => panic!("{e:?}"),
    }
    let wrong = SourceConfig {
        auth_type: "api-token".into(),
        secrets: map(&[("api-token", "nope")]),
        ..at("/private")
    };
    match provider_error(host.test_connection(&wrong).await) {
        ProviderError::Unauthorized(m) => assert!(
            m.contains("rejected the credentials") && m.contains("HTTP 401"),
            "{m}"
        ),
        e => panic!("{e:?}"),
    }
    assert!(
        matches!(provider_error(host.test_connection(&at("/forbidden")).await), ProviderError::Forbidden(m) if m.contains("HTTP 403"))
    );
    match provider_error(host.test_connection(&at("/missing")).await) {
        ProviderError::NotFound(m) => {
            assert!(m.contains("HTTP 404") && m.contains("base URL"), "{m}")
        }
        e => panic!("{e:?}"),
    }
    assert!(
        matches!(provider_error(host.test_connection(&at("/boom")).await), ProviderError::Provider(m) if m.contains("HTTP 503"))
    );
    assert!(matches!(
        provider_error(host.test_connection(&at("/busy")).await),
        ProviderError::RateLimited {
            retry_after_secs: 7,
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_follows_same_origin_redirects_and_names_foreign_ones() {
    let host = plugin_host().await;
    let t = tracker().await;
    let info = host
        .test_connection(&source("custom", &format!("{}/moved-here", t.url)))
        .await
        .unwrap();
    assert_eq!(
        info.detail,
        Some(format!("HTTP 200 from {}/moved-here", t.url))
    );
    let uris: Vec<String> = t.requests().into_iter().map(|r| r.uri).collect();
    assert_eq!(uris, ["/moved-here", "/open"]);

    match provider_error(
        host.test_connection(&source("custom", &format!("{}/moved-away", t.url)))
            .await,
    ) {
        ProviderError::InvalidInput(m) => {
            assert!(m.contains("redirects to https://sso.example.com"), "{m}")
        }
        e => panic!("expected the redirect named, got {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_says_when_the_tracker_is_unreachable_or_tls_fails() {
    let host = plugin_host().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    match provider_error(
        host.test_connection(&source("custom", &format!("http://127.0.0.1:{port}")))
            .await,
    ) {
        ProviderError::Unreachable(m) => assert!(m.starts_with("cannot reach"), "{m}"),
        e => panic!("{e:?}"),
    }
    // https to a plain-HTTP server: the TLS handshake fails.
    let t = tracker().await;
    let https = t.url.replace("http://", "https://");
    match provider_error(
        host.test_connection(&source("custom", &format!("{https}/open")))
            .await,
    ) {
        ProviderError::Unreachable(m) => assert!(m.starts_with("TLS failure"), "{m}"),
        e => panic!("{e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_is_unsupported_until_the_issue_api_is_configured() {
    let host = plugin_host().await;
    let t = tracker().await;
    let src = SourceConfig {
        settings: map(&[("issue-api-url", "{baseUrl}/api/issues/{key}")]),
        ..source("custom", &t.url)
    };
    match provider_error(host.fetch_issue(&src, "REQ-1").await) {
        ProviderError::Unsupported(m) => assert!(
            m.contains("title-pointer") && m.contains("status-pointer"),
            "{m}"
        ),
        e => panic!("{e:?}"),
    }
    let keys = vec!["REQ-1".to_string(), "REQ-2".to_string()];
    assert!(matches!(
        host.fetch_issues(&src, &keys).await,
        Err(PluginError::Provider(ProviderError::Unsupported(_)))
    ));
    assert!(t.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_reads_the_configured_pointers_and_maps_categories() {
    let host = plugin_host().await;
    let t = tracker().await;
    let src = reader(&t);
    use host::plugin::model::StatusCategory::*;
    let cases = [
        (
            "REQ-1",
            "Export fails",
            "In Progress",
            InProgress,
            Some("Ana Lima"),
        ),
        ("REQ-2", "Old report", "closed", Done, None),
        ("REQ-3", "New idea", "New", ToDo, None),
        ("REQ-4", "Numeric status", "3", ToDo, Some("Bo")),
        ("QA#5", "Key with a hash", "Resolved", Done, Some("Cy")),
    ];
    for (key, title, status, category, assignee) in cases {
        let issue = host.fetch_issue(&src, key).await.unwrap();
        assert_eq!(issue.key, key);
        assert_eq!(issue.title, title, "{key}");
        assert_eq!(issue.status, status, "{key}");
        assert_eq!(issue.status_category, category, "{key}");
        assert_eq!(issue.assignee.as_deref(), assignee, "{key}");
    }
    let issue = host.fetch_issue(&src, "REQ-1").await.unwrap();
    assert_eq!(issue.web_url, format!("{}/browse/REQ-1", t.url));
    let uris: Vec<String> = t.requests().into_iter().map(|r| r.uri).collect();
    assert!(uris.contains(&"/api/issues/QA%235".to_string()), "{uris:?}");
    assert!(
        t.requests()
            .iter()
            .all(|r| r.header("authorization") == Some(format!("Bearer {TOKEN}").as_str()))
    );

    // Without an issue URL template the web link is the tracker itself.
    let no_template = SourceConfig {
        issue_url_template: None,
        ..reader(&t)
    };
    assert_eq!(
        host.fetch_issue(&no_template, "REQ-1")
            .await
            .unwrap()
            .web_url,
        t.url
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_maps_errors_and_unreadable_answers() {
    let host = plugin_host().await;
    let t = tracker().await;
    let src = reader(&t);
    assert!(
        matches!(provider_error(host.fetch_issue(&src, "REQ-404").await), ProviderError::NotFound(m) if m.contains("REQ-404"))
    );
    assert!(
        matches!(provider_error(host.fetch_issue(&src, "REQ-500").await), ProviderError::Provider(m) if m.contains("500"))
    );
    assert!(matches!(
        provider_error(host.fetch_issue(&src, "REQ-429").await),
        ProviderError::RateLimited {
            retry_after_secs: 9,
            ..
        }
    ));
    match provider_error(host.fetch_issue(&src, "REQ-5").await) {
        ProviderError::Provider(m) => assert!(
            m.contains("/fields/summary") && m.contains("not at text"),
            "{m}"
        ),
        e => panic!("{e:?}"),
    }
    match provider_error(host.fetch_issue(&src, "REQ-6").await) {
        ProviderError::Provider(m) => assert!(m.contains("no title at /fields/summary"), "{m}"),
        e => panic!("{e:?}"),
    }
    let anonymous = SourceConfig {
        auth_type: "none".into(),
        secrets: map(&[]),
        ..reader(&t)
    };
    assert!(matches!(
        provider_error(host.fetch_issue(&anonymous, "REQ-1").await),
        ProviderError::Unauthorized(_)
    ));
    let basic = SourceConfig {
        auth_type: "basic".into(),
        fields: map(&[("username", USER)]),
        secrets: map(&[("password", PASSWORD)]),
        ..reader(&t)
    };
    assert_eq!(
        host.fetch_issue(&basic, "REQ-1").await.unwrap().title,
        "Export fails"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_refuses_an_issue_api_off_the_base_urls_origin() {
    let host = plugin_host().await;
    let t = tracker().await;
    let port = t.url.rsplit(':').next().unwrap();
    let cases = [
        (
            "https://api.other.example.com/issues/{key}",
            "https://api.other.example.com:443",
        ),
        (
            &*format!("http://localhost:{port}/api/issues/{{key}}"),
            "http://localhost",
        ),
        ("/api/issues/{key}", "not an absolute http(s) URL"),
    ];
    for (template, want) in cases {
        let mut src = reader(&t);
        src.settings.insert("issue-api-url".into(), template.into());
        match provider_error(host.fetch_issue(&src, "REQ-1").await) {
            ProviderError::InvalidInput(m) => assert!(m.contains(want), "{template}: {m}"),
            e => panic!("{template}: {e:?}"),
        }
    }
    let mut src = reader(&t);
    src.settings
        .insert("title-pointer".into(), "fields.summary".into());
    assert!(
        matches!(provider_error(host.fetch_issue(&src, "REQ-1").await), ProviderError::InvalidInput(m) if m.contains("title-pointer"))
    );
    assert!(
        t.requests().is_empty(),
        "nothing is sent for a misconfigured source"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_gives_each_key_its_result_and_stops_on_bad_credentials() {
    let host = plugin_host().await;
    let t = tracker().await;
    let keys: Vec<String> = ["REQ-1", "REQ-404", "REQ-2"].map(String::from).to_vec();
    let results = host.fetch_issues(&reader(&t), &keys).await.unwrap();
    assert_eq!(results[0].as_ref().unwrap().title, "Export fails");
    assert!(matches!(&results[1], Err(ProviderError::NotFound(_))));
    assert_eq!(
        results[2].as_ref().unwrap().status_category,
        host::plugin::model::StatusCategory::Done
    );
    assert_eq!(
        t.requests().len(),
        3,
        "one request per key: a generic tracker has no batch endpoint"
    );

    t.clear();
    let wrong = SourceConfig {
        secrets: map(&[("api-token", "nope")]),
        ..reader(&t)
    };
    assert!(matches!(
        host.fetch_issues(&wrong, &keys).await,
        Err(PluginError::Provider(ProviderError::Unauthorized(_)))
    ));
    assert_eq!(t.requests().len(), 1, "a 401 fails the batch at once");
}
