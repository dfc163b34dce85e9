//! Source administration through the real router on a real redb file: every field, every
//! validation rule, write-only credentials, roles, projects, connection tests and restarts.
//! The `misbehave` test plugin serves as a generic provider (auth type `api-token` with a plain
//! `user` and a secret `token`, applied as Basic); its `egress` mode makes an authenticated
//! request to the URL in its `forbidden-url` setting, which lets a stand-in see what the host
//! applied.

mod api_contract;

use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::routing::get;
use integration_tests::{LogSink, StandIn, TestApp};
use serde_json::{Value, json};

const CANARY: &str = "canary-3b8e1f6d0c2a4957b7e3d1f0a9c8b6e4-TOKEN";

/// Everything the test process logs, to check no secret is ever logged.
fn log_buffer() -> Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER
        .get_or_init(|| {
            let buffer = Arc::new(Mutex::new(Vec::new()));
            let sink = buffer.clone();
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_writer(move || LogSink(sink.clone()))
                .init();
            buffer
        })
        .clone()
}

/// A change to a valid source body that makes it invalid.
type Mutation = Box<dyn Fn(&mut Value)>;

fn source(name: &str, base_url: &str) -> Value {
    json!({
        "provider": "misbehave",
        "display_name": name,
        "base_url": base_url,
        "auth": {"type": "api-token", "fields": {"user": "robot", "token": CANARY}},
        "issue_url_template": "{baseUrl}/issue/{key}",
        "create_url_template": "{baseUrl}/new",
        "key_pattern": "^[A-Z]+-\\d+$",
        "enabled": true,
        "capabilities": {"read_issue_details": true, "create_issues": true, "add_comments": true, "process_webhooks": false},
        "projects": {"mode": "all"},
        "settings": {"mode": "egress", "forbidden-url": format!("{base_url}/whoami")}
    })
}

async fn count_sources(app: &TestApp) -> usize {
    app.admin("GET", "/api/v1/sources", None)
        .await
        .expect(200)
        .as_array()
        .unwrap()
        .len()
}

fn basic(user: &str, token: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"))
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn create_get_list_roundtrip_every_field_without_secrets() {
    let app = TestApp::start().await;
    let created = app
        .admin(
            "POST",
            "/api/v1/sources",
            Some(source("Our Tracker", "https://t.example.com/")),
        )
        .await;
    let body = created.expect(201).clone();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(
        body["base_url"], "https://t.example.com",
        "trailing slash trimmed"
    );
    assert_eq!(body["display_name"], "Our Tracker");
    assert_eq!(body["provider"], "misbehave");
    assert_eq!(body["provider_name"], "Misbehave (test only)");
    assert_eq!(body["auth_type"], "api-token");
    assert_eq!(body["auth_fields"], json!({"user": "robot"}));
    assert_eq!(body["secrets_set"], json!(["token"]));
    assert_eq!(body["issue_url_template"], "{baseUrl}/issue/{key}");
    assert_eq!(body["create_url_template"], "{baseUrl}/new");
    assert_eq!(body["key_pattern"], "^[A-Z]+-\\d+$");
    assert_eq!(body["enabled"], true);
    assert_eq!(body["capabilities"]["add_comments"], true);
    // The misbehave plugin is a 1.1 plugin that declares neither comments nor webhooks.
    assert_eq!(
        body["unsupported_capabilities"],
        json!({"add_comments": "not supported by this provider",
               "process_webhooks": "not supported by this provider"})
    );
    assert_eq!(body["projects"], json!({"mode": "all"}));
    assert_eq!(body["settings"]["mode"], "egress");
    assert!(!created.text.contains(CANARY));

    let got = app
        .admin("GET", &format!("/api/v1/sources/{id}"), None)
        .await;
    assert_eq!(got.expect(200), &body);
    let list = app.admin("GET", "/api/v1/sources", None).await;
    assert_eq!(list.expect(200).as_array().unwrap().len(), 1);
    assert!(!list.text.contains(CANARY));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_invalid_input_is_a_4xx_naming_the_field_and_stores_nothing() {
    let app = TestApp::start().await;
    app.admin(
        "POST",
        "/api/v1/sources",
        Some(source("Taken", "https://t.example.com")),
    )
    .await
    .expect(201);

    let cases: Vec<(&str, Mutation, u16, &str)> = vec![
        (
            "unknown provider",
            Box::new(|s| s["provider"] = json!("nope")),
            400,
            "provider",
        ),
        (
            "empty name",
            Box::new(|s| s["display_name"] = json!("  ")),
            400,
            "display_name",
        ),
        (
            "duplicate name",
            Box::new(|s| s["display_name"] = json!("taken")),
            409,
            "display_name",
        ),
        (
            "relative base URL",
            Box::new(|s| s["base_url"] = json!("/jira")),
            400,
            "base_url",
        ),
        (
            "ftp base URL",
            Box::new(|s| s["base_url"] = json!("ftp://t.example.com")),
            400,
            "base_url",
        ),
        (
            "credentials in URL",
            Box::new(|s| s["base_url"] = json!("https://u:p@t.example.com")),
            400,
            "base_url",
        ),
        (
            "unknown placeholder",
            Box::new(|s| s["issue_url_template"] = json!("{baseUrl}/{id}")),
            400,
            "issue_url_template",
        ),
        (
            "template not a URL",
            Box::new(|s| s["issue_url_template"] = json!("browse/{key}")),
            400,
            "issue_url_template",
        ),
        (
            "key in create template",
            Box::new(|s| s["create_url_template"] = json!("{baseUrl}/new/{key}")),
            400,
            "create_url_template",
        ),
        (
            "create issues without template",
            Box::new(|s| s["create_url_template"] = json!(null)),
            400,
            "create_url_template",
        ),
        (
            "bad regex",
            Box::new(|s| s["key_pattern"] = json!("^[A-Z+$")),
            400,
            "key_pattern",
        ),
        (
            "huge regex",
            Box::new(|s| s["key_pattern"] = json!("a".repeat(600))),
            400,
            "key_pattern",
        ),
        (
            "unsupported auth type",
            Box::new(|s| s["auth"]["type"] = json!("oauth2")),
            400,
            "auth.type",
        ),
        (
            "missing secret",
            Box::new(|s| s["auth"]["fields"] = json!({"user": "robot"})),
            400,
            "auth.fields.token",
        ),
        (
            "unknown auth field",
            Box::new(|s| s["auth"]["fields"]["pin"] = json!("1")),
            400,
            "auth.fields.pin",
        ),
        (
            "zero projects",
            Box::new(|s| s["projects"] = json!({"mode": "specific", "ids": []})),
            400,
            "projects.ids",
        ),
        (
            "unknown project",
            Box::new(|s| s["projects"] = json!({"mode": "specific", "ids": ["prj_nope"]})),
            400,
            "projects.ids[0]",
        ),
        (
            "unknown setting",
            Box::new(|s| s["settings"]["colour"] = json!("red")),
            400,
            "settings.colour",
        ),
        (
            "url setting not a URL",
            Box::new(|s| s["settings"]["echo-url"] = json!("nope")),
            400,
            "settings.echo-url",
        ),
        (
            "unknown top-level field",
            Box::new(|s| s["colour"] = json!("red")),
            400,
            "colour",
        ),
        (
            "unknown capability",
            Box::new(|s| s["capabilities"]["teleport"] = json!(true)),
            400,
            "capabilities.teleport",
        ),
        (
            "wrong type",
            Box::new(|s| s["enabled"] = json!("yes")),
            400,
            "enabled",
        ),
    ];
    for (what, mutate, status, field) in cases {
        let mut body = source("Fresh", "https://t.example.com");
        mutate(&mut body);
        let response = app.admin("POST", "/api/v1/sources", Some(body)).await;
        assert_eq!(response.status, status, "{what}: {}", response.text);
        assert_eq!(
            response.body["error"]["field"], field,
            "{what}: {}",
            response.text
        );
        assert!(
            !response.body["error"]["message"]
                .as_str()
                .unwrap()
                .is_empty(),
            "{what}"
        );
        assert_eq!(count_sources(&app).await, 1, "{what} stored something");
    }

    // A URL that does not parse is not quoted when it may hold credentials.
    for (field, mutate) in [
        (
            "base_url",
            Box::new(|s: &mut Value| s["base_url"] = json!("https://bot:pw-77e1@[::1")) as Mutation,
        ),
        (
            "network.proxy_url",
            Box::new(|s: &mut Value| {
                s["network"] = json!({"proxy_url": "http://bot:pw-77e1@[::1"})
            }),
        ),
    ] {
        let mut body = source("Fresh", "https://t.example.com");
        mutate(&mut body);
        let response = app.admin("POST", "/api/v1/sources", Some(body)).await;
        assert_eq!(response.status, 400, "{}", response.text);
        assert_eq!(response.body["error"]["field"], field, "{}", response.text);
        assert!(!response.text.contains("pw-77e1"), "{}", response.text);
    }

    // Oversized and non-JSON bodies.
    let mut huge = source("Huge", "https://t.example.com");
    huge["settings"]["mode"] = json!("x".repeat(100_000));
    assert_eq!(
        app.admin("POST", "/api/v1/sources", Some(huge))
            .await
            .status,
        413
    );
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/api/v1/sources", app.url))
        .bearer_auth(&app.admin)
        .body("provider=jira")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    assert_eq!(count_sources(&app).await, 1);

    // Edits are validated the same way and change nothing on failure.
    let list = app.admin("GET", "/api/v1/sources", None).await;
    let id = list.body[0]["id"].as_str().unwrap().to_string();
    let mut bad = source("Taken", "https://t.example.com");
    bad["key_pattern"] = json!("(");
    app.admin("PUT", &format!("/api/v1/sources/{id}"), Some(bad))
        .await
        .expect_error(400, "key_pattern");
    let after = app
        .admin("GET", &format!("/api/v1/sources/{id}"), None)
        .await;
    assert_eq!(after.body["key_pattern"], "^[A-Z]+-\\d+$");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_oversized_urls_and_look_alike_content_types_are_refused() {
    let app = TestApp::start().await;
    let created = app
        .admin(
            "POST",
            "/api/v1/sources",
            Some(source("Our Jira", "https://t.example.com")),
        )
        .await;
    created.expect(201);

    // Control, bidi and zero-width characters: refused, naming the field and the position.
    for (name, position) in [
        ("Our\0Jira", 4),
        ("Our\nJira", 4),
        ("\u{202e}ariJ ruO", 1),
        ("Jira \u{2066}x\u{2069}", 6),
        ("\u{200b}\u{200b}\u{200b}", 1),
        ("\u{feff}", 1),
    ] {
        let r = app
            .admin(
                "POST",
                "/api/v1/sources",
                Some(source(name, "https://t.example.com")),
            )
            .await;
        let message = r.expect_error(400, "display_name");
        assert!(
            message.starts_with(&format!("character {position} is ")),
            "{name:?}: {message}"
        );
    }
    // Names that only look different are the same name.
    for name in [
        "our jira",
        "Our\u{a0}Jira",
        "OUR \u{3000} JIRA",
        "Our\u{202f}Jira",
    ] {
        app.admin(
            "POST",
            "/api/v1/sources",
            Some(source(name, "https://t.example.com")),
        )
        .await
        .expect_error(409, "display_name");
    }
    // A name is stored in NFC, so its decomposed and composed spellings are one name.
    let cafe = app
        .admin(
            "POST",
            "/api/v1/sources",
            Some(source("Cafe\u{301}", "https://t.example.com")),
        )
        .await;
    assert_eq!(cafe.expect(201)["display_name"], "Caf\u{e9}");
    app.admin(
        "POST",
        "/api/v1/sources",
        Some(source("CAF\u{c9}", "https://t.example.com")),
    )
    .await
    .expect_error(409, "display_name");

    // URLs and templates are bounded (2,048 bytes).
    let long: &'static str = format!("https://t.example.com/{}", "a".repeat(10_000)).leak();
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(move |s| s["base_url"] = json!(long)), "base_url"),
        (
            Box::new(move |s| s["issue_url_template"] = json!(format!("{long}/{{key}}"))),
            "issue_url_template",
        ),
        (
            Box::new(|s| {
                s["create_url_template"] = json!(format!("{{baseUrl}}/{}", "n".repeat(10_000)))
            }),
            "create_url_template",
        ),
        (
            Box::new(move |s| s["settings"]["echo-url"] = json!(&long[..3000])),
            "settings.echo-url",
        ),
        (
            Box::new(|s| {
                s["network"] =
                    json!({"proxy_url": format!("http://proxy.example.com/{}", "p".repeat(3000))})
            }),
            "network.proxy_url",
        ),
    ];
    for (mutate, field) in cases {
        let mut body = source("Long", "https://t.example.com");
        mutate(&mut body);
        let message = app
            .admin("POST", "/api/v1/sources", Some(body))
            .await
            .expect_error(400, field);
        assert!(message.contains("2048 bytes"), "{field}: {message}");
    }
    assert_eq!(count_sources(&app).await, 2, "only the two good names");

    // Projects and tokens follow the same name rule.
    app.admin(
        "POST",
        "/api/v1/projects",
        Some(json!({"name": "Team One"})),
    )
    .await
    .expect(201);
    app.admin(
        "POST",
        "/api/v1/projects",
        Some(json!({"name": "team\u{a0}one"})),
    )
    .await
    .expect_error(409, "name");
    app.admin(
        "POST",
        "/api/v1/projects",
        Some(json!({"name": "Team\u{202e}Two"})),
    )
    .await
    .expect_error(400, "name");
    let token = json!({"name": "ci\nbot", "role": "admin"});
    app.admin("POST", "/api/v1/tokens", Some(token))
        .await
        .expect_error(400, "name");

    // The media type must be JSON itself, not a type that starts like it.
    let body = serde_json::to_vec(&source("Typed", "https://t.example.com")).unwrap();
    for content_type in [
        "application/jsonx-not-json",
        "application/json-seq",
        "text/json",
    ] {
        let r = app
            .call_raw(
                "POST",
                "/api/v1/sources",
                Some(&app.admin),
                Some((content_type, body.clone())),
            )
            .await;
        assert_eq!(r.status, 415, "{content_type}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "unsupported-media-type");
    }
    let toml = "sources = []\n".as_bytes().to_vec();
    let r = app
        .call_raw(
            "POST",
            "/api/v1/sources/import",
            Some(&app.admin),
            Some(("application/tomlfoo", toml)),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.text);
    assert_eq!(count_sources(&app).await, 2);
    app.call_raw(
        "POST",
        "/api/v1/sources",
        Some(&app.admin),
        Some(("Application/JSON; charset=utf-8", body)),
    )
    .await
    .expect(201);
}

#[tokio::test(flavor = "multi_thread")]
async fn omitted_capabilities_take_the_pages_defaults() {
    let app = TestApp::start().await;
    let mut none = source("None given", "https://t.example.com");
    none.as_object_mut().unwrap().remove("capabilities");
    let mut some = source("Some given", "https://t.example.com");
    some["capabilities"] = json!({"add_comments": true});
    for (body, add_comments) in [(none, false), (some, true)] {
        let created = app.admin("POST", "/api/v1/sources", Some(body)).await;
        let caps = &created.expect(201)["capabilities"];
        assert_eq!(
            caps,
            &json!({"read_issue_details": true, "create_issues": false, "add_comments": add_comments, "process_webhooks": false}),
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_form_gets_every_field_error_at_once() {
    let app = TestApp::start().await;
    let empty = json!({
        "provider": "misbehave", "display_name": " ", "base_url": "",
        "auth": {"type": "api-token", "fields": {"pin": "1"}},
        "issue_url_template": "{baseUrl}/{id}", "key_pattern": "(",
        "capabilities": {"create_issues": true},
        "projects": {"mode": "specific", "ids": []},
        "settings": {"colour": "blue"},
        "network": {"proxy_url": "ftp://proxy"},
    });
    for (method, path) in [
        ("POST", "/api/v1/sources"),
        ("POST", "/api/v1/sources/test"),
    ] {
        let r = app.admin(method, path, Some(empty.clone())).await;
        assert_eq!(r.status, 400, "{}", r.text);
        let errors = r.body["errors"].as_array().expect("errors").clone();
        assert_eq!(errors[0], r.body["error"], "error is the first of errors");
        let fields: Vec<&str> = errors
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        for expected in [
            "display_name",
            "base_url",
            "issue_url_template",
            "create_url_template",
            "key_pattern",
            "projects.ids",
            "auth.fields.pin",
            "auth.fields.token",
            "settings.colour",
            "network.proxy_url",
        ] {
            assert!(
                fields.contains(&expected),
                "{expected} missing from {fields:?}"
            );
        }
        assert!(
            errors
                .iter()
                .all(|e| e["code"] == "invalid" && e["message"].is_string())
        );
        // Each says what is expected, with an example.
        for field in [
            "display_name",
            "base_url",
            "key_pattern",
            "network.proxy_url",
        ] {
            let e = errors.iter().find(|e| e["field"] == field).unwrap();
            assert!(e["message"].as_str().unwrap().contains("e.g. "), "{e}");
        }
    }
    // One error is a list of one.
    let mut one = source("One", "https://t.example.com");
    one["display_name"] = json!("");
    let r = app.admin("POST", "/api/v1/sources", Some(one)).await;
    assert_eq!(
        r.body["errors"],
        json!([r.body["error"].clone()]),
        "{}",
        r.text
    );
    assert_eq!(count_sources(&app).await, 0, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_json_errors_naming_the_parameter() {
    let app = TestApp::start().await;
    // (method, path, JSON body text, status, error code, field or "" for none, message part)
    let no_type = r#"{"provider":"misbehave","display_name":"x","base_url":"https://t.example.com","auth":{"fields":{}},"projects":{"mode":"all"}}"#;
    let projects_text = no_type
        .replace(r#"{"fields":{}}"#, r#"{"type":"none"}"#)
        .replace(r#"{"mode":"all"}"#, r#""all""#);
    let capability_number = no_type
        .replace(r#"{"fields":{}}"#, r#"{"type":"none"}"#)
        .replace(
            r#""projects""#,
            r#""capabilities":{"create_issues":1},"projects""#,
        );
    let nul_name = projects_text
        .replace(r#""all""#, r#"{"mode":"all"}"#)
        .replace(r#""x""#, r#""x\u0000y""#);
    #[rustfmt::skip]
    let cases = [
        ("POST", "/api/v1/sources", "{bad json", 400, "invalid", "", "not valid JSON"),
        ("POST", "/api/v1/sources", "", 400, "invalid", "", "not valid JSON"),
        ("POST", "/api/v1/sources", "[]", 400, "invalid", "", "must be a JSON object"),
        ("POST", "/api/v1/sources", "{}", 400, "invalid", "provider", "provider is required"),
        ("POST", "/api/v1/sources", no_type, 400, "invalid", "auth.type", "type is required"),
        ("POST", "/api/v1/sources", &projects_text, 400, "invalid", "projects", r#"expected {"mode": "all"} or {"mode": "specific", "ids": ["prj_1"]}; got the text "all""#),
        ("POST", "/api/v1/sources", &capability_number, 400, "invalid", "capabilities.create_issues", "expected true or false; got the number 1"),
        ("GET", "/api/v1/sources/%FF%FE", "", 400, "invalid", "id", "UTF-8"),
        ("GET", "/api/v1/projects/%FF/links", "", 400, "invalid", "project", "UTF-8"),
        // PostgreSQL refuses a NUL in text: each is refused before any query.
        ("GET", "/api/v1/sources/src_%00", "", 404, "not-found", "id", "control character"),
        ("GET", "/api/v1/projects/%00/links", "", 404, "not-found", "project", "control character"),
        ("POST", "/api/v1/sources", &nul_name, 400, "invalid", "display_name", "NUL"),
        ("POST", "/api/v1/projects/prj_1/links", r#"{"test_object":"tc\u0000","source_id":"src_1","key":"A-1"}"#, 400, "invalid", "test_object", "NUL"),
        ("GET", "/api/v1/sources?bogus=1", "", 400, "invalid", "bogus", "there is no field \"bogus\""),
        ("GET", "/api/v1/sources/src_nope/links", "", 404, "not-found", "", "no source \"src_nope\""),
        ("GET", "/api/v1/sources/src_nope/impact", "", 404, "not-found", "", "no source \"src_nope\""),
        ("DELETE", "/api/v1/plugins/misbehave?force=maybe", "", 400, "invalid", "force", "true"),
        ("PATCH", "/api/v1/sources", "", 405, "method-not-allowed", "", "PATCH"),
        ("GET", "/api/v1/no-such-route", "", 404, "not-found", "", "no such API route"),
    ];
    for (method, path, body, status, code, field, part) in cases {
        let raw = (method == "POST").then(|| ("application/json", body.as_bytes().to_vec()));
        let r = app.call_raw(method, path, Some(&app.admin), raw).await;
        let case = format!("{method} {path} {body:?}: {}", r.text);
        assert_eq!(r.status, status, "{case}");
        let json: Value =
            serde_json::from_str(&r.text).unwrap_or_else(|_| panic!("not JSON: {case}"));
        assert_eq!(json["error"]["code"], code, "{case}");
        match field {
            "" => assert!(json["error"]["field"].is_null(), "{case}"),
            field => assert_eq!(json["error"]["field"], field, "{case}"),
        }
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.contains(part), "{case}");
        for rust in ["SourceInput", "enum ", "struct ", "ProjectAssignment"] {
            assert!(!message.contains(rust), "no Rust type names: {case}");
        }
    }
    assert_eq!(count_sources(&app).await, 0, "nothing was stored");
    assert!(
        app.state.plugins.get("misbehave").is_ok(),
        "nothing was removed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_write_only_kept_replaced_and_dropped() {
    let tracker = StandIn::start(Router::new().route("/whoami", get(|| async { "ok" }))).await;
    let app = TestApp::start().await;
    let id = app
        .create("/api/v1/sources", source("Keep", &tracker.url))
        .await;
    let path = format!("/api/v1/sources/{id}");

    // No API answer is kept by a cache: a token or a generated secret is shown once.
    let token = app
        .admin(
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "ci", "role": "admin"})),
        )
        .await;
    for answer in [&token, &app.admin("GET", &path, None).await] {
        let headers = answer.headers.to_ascii_lowercase();
        assert!(
            headers.contains("\"cache-control\": \"no-store\""),
            "{headers}"
        );
        assert!(
            headers.contains("\"x-content-type-options\": \"nosniff\""),
            "{headers}"
        );
    }

    // An edit without the secret keeps it: the tracker still receives it.
    let mut edit = source("Keep (renamed)", &tracker.url);
    edit["auth"]["fields"] = json!({"user": "robot2"});
    let edited = app.admin("PUT", &path, Some(edit)).await;
    assert_eq!(edited.expect(200)["secrets_set"], json!(["token"]));
    let outcome = app.admin("POST", &format!("{path}/test"), None).await;
    assert_eq!(outcome.expect(200)["ok"], true, "{}", outcome.text);
    assert_eq!(
        tracker.requests()[0].header("authorization").unwrap(),
        basic("robot2", CANARY)
    );

    // An edit with a new secret replaces it.
    let mut edit = source("Keep (renamed)", &tracker.url);
    edit["auth"]["fields"] = json!({"user": "robot2", "token": "second-secret-value"});
    app.admin("PUT", &path, Some(edit)).await.expect(200);
    app.admin("POST", &format!("{path}/test"), None)
        .await
        .expect(200);
    assert_eq!(
        tracker.requests()[1].header("authorization").unwrap(),
        basic("robot2", "second-secret-value")
    );

    // Switching provider (and so auth type) drops the stored secrets: they are required again.
    let mut other = source("Keep (renamed)", &tracker.url);
    other["provider"] = json!("custom");
    other["auth"] = json!({"type": "none", "fields": {}});
    other["settings"] = json!({});
    let switched = app.admin("PUT", &path, Some(other)).await;
    assert_eq!(
        switched.expect(200)["secrets_set"],
        json!([]),
        "{}",
        switched.text
    );
    let mut back = source("Keep (renamed)", &tracker.url);
    back["auth"]["fields"] = json!({"user": "robot"});
    app.admin("PUT", &path, Some(back))
        .await
        .expect_error(400, "auth.fields.token");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_source_can_be_tested_and_the_result_is_recorded() {
    let tracker = StandIn::start(Router::new().route("/whoami", get(|| async { "ok" }))).await;
    let app = TestApp::start().await;
    let mut body = source("Disabled", &tracker.url);
    body["enabled"] = json!(false);
    let id = app.create("/api/v1/sources", body).await;
    let outcome = app
        .admin("POST", &format!("/api/v1/sources/{id}/test"), None)
        .await;
    let outcome = outcome.expect(200);
    assert_eq!(outcome["ok"], true);
    assert!(
        outcome["message"]
            .as_str()
            .unwrap()
            .starts_with("Connected as"),
        "{outcome}"
    );
    assert_eq!(
        tracker.requests()[0].header("authorization").unwrap(),
        basic("robot", CANARY)
    );
    let stored = app
        .admin("GET", &format!("/api/v1/sources/{id}"), None)
        .await;
    assert_eq!(stored.body["last_test"]["ok"], true);
    assert!(stored.body["last_test"]["at"].as_u64().unwrap() > 0);

    // A failing test is a result, not an API error: the admin sees the category and message.
    let mut bad = source("Disabled", "http://127.0.0.1:1");
    bad["enabled"] = json!(false);
    app.admin("PUT", &format!("/api/v1/sources/{id}"), Some(bad))
        .await
        .expect(200);
    let failed = app
        .admin("POST", &format!("/api/v1/sources/{id}/test"), None)
        .await;
    assert_eq!(failed.expect(200)["ok"], false);
    assert_eq!(failed.body["code"], "unreachable", "{}", failed.text);
    let stored = app
        .admin("GET", &format!("/api/v1/sources/{id}"), None)
        .await;
    assert_eq!(stored.body["last_test"]["code"], "unreachable");

    // So is a plugin breaking down during the test: the test ran, and failed.
    let mut broken = source("Disabled", &tracker.url);
    (broken["enabled"], broken["settings"]["mode"]) = (json!(false), json!("panic"));
    app.admin("PUT", &format!("/api/v1/sources/{id}"), Some(broken))
        .await
        .expect(200);
    let failed = app
        .admin("POST", &format!("/api/v1/sources/{id}/test"), None)
        .await;
    assert_eq!(failed.expect(200)["ok"], false, "{}", failed.text);
    let code = failed.body["code"].clone();
    let stored = app
        .admin("GET", &format!("/api/v1/sources/{id}"), None)
        .await;
    assert_eq!(stored.body["last_test"]["code"], code, "{}", stored.text);

    // A draft can be tested before it is saved.
    let draft = app
        .admin(
            "POST",
            "/api/v1/sources/test",
            Some(source("Draft", &tracker.url)),
        )
        .await;
    assert_eq!(draft.expect(200)["ok"], true, "{}", draft.text);
    assert_eq!(count_sources(&app).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn enable_disable_and_delete() {
    let app = TestApp::start().await;
    let id = app
        .create("/api/v1/sources", source("Toggle", "https://t.example.com"))
        .await;
    let off = app
        .admin("POST", &format!("/api/v1/sources/{id}/disable"), None)
        .await;
    assert_eq!(off.expect(200)["enabled"], false);
    let on = app
        .admin("POST", &format!("/api/v1/sources/{id}/enable"), None)
        .await;
    assert_eq!(on.expect(200)["enabled"], true);
    app.admin("DELETE", &format!("/api/v1/sources/{id}"), None)
        .await
        .expect(204);
    app.admin("GET", &format!("/api/v1/sources/{id}"), None)
        .await
        .expect(404);
    app.admin("DELETE", &format!("/api/v1/sources/{id}"), None)
        .await
        .expect(404);
    // The sealed credentials went with it.
    let secrets: Vec<(String, Vec<u8>)> = app
        .state
        .store
        .read(|r| host::store::Read::all(r, host::store::SECRETS))
        .await
        .unwrap();
    assert!(secrets.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn projects_and_specific_assignment() {
    let app = TestApp::start().await;
    let a = app
        .admin("POST", "/api/v1/projects", Some(json!({"name": "Alpha"})))
        .await
        .expect(201)["id"]
        .clone();
    let b = app
        .admin("POST", "/api/v1/projects", Some(json!({"name": "Beta"})))
        .await
        .expect(201)["id"]
        .clone();
    app.admin("POST", "/api/v1/projects", Some(json!({"name": "alpha"})))
        .await
        .expect_error(409, "name");
    app.admin(
        "PUT",
        &format!("/api/v1/projects/{}", a.as_str().unwrap()),
        Some(json!({"name": "Alpha 2"})),
    )
    .await
    .expect(200);

    let mut body = source("Specific", "https://t.example.com");
    body["projects"] = json!({"mode": "specific", "ids": [a, b]});
    let id = app.create("/api/v1/sources", body).await;

    // Deleting a project removes it from the assignment; deleting the last leaves a clear,
    // empty assignment rather than a broken source.
    app.admin(
        "DELETE",
        &format!("/api/v1/projects/{}", a.as_str().unwrap()),
        None,
    )
    .await
    .expect(204);
    let s = app
        .admin("GET", &format!("/api/v1/sources/{id}"), None)
        .await;
    assert_eq!(s.body["projects"], json!({"mode": "specific", "ids": [b]}));
    app.admin(
        "DELETE",
        &format!("/api/v1/projects/{}", b.as_str().unwrap()),
        None,
    )
    .await
    .expect(204);
    let s = app
        .admin("GET", &format!("/api/v1/sources/{id}"), None)
        .await;
    assert_eq!(
        s.expect(200)["projects"],
        json!({"mode": "specific", "ids": []})
    );
    // ...and saving it again asks for at least one project.
    let mut again = source("Specific", "https://t.example.com");
    again["projects"] = json!({"mode": "specific", "ids": []});
    app.admin("PUT", &format!("/api/v1/sources/{id}"), Some(again))
        .await
        .expect_error(400, "projects.ids");
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_members_see_only_enabled_sources_of_their_projects() {
    let app = TestApp::start().await;
    let alpha = app
        .admin("POST", "/api/v1/projects", Some(json!({"name": "Alpha"})))
        .await
        .expect(201)["id"]
        .clone();
    let beta = app
        .admin("POST", "/api/v1/projects", Some(json!({"name": "Beta"})))
        .await
        .expect(201)["id"]
        .clone();
    let member = app
        .admin(
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "Alice", "role": "member", "projects": [alpha]})),
        )
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string();

    let all = source("All projects", "https://a.example.com");
    let mut only_beta = source("Beta only", "https://b.example.com");
    only_beta["projects"] = json!({"mode": "specific", "ids": [beta]});
    let mut disabled = source("Disabled", "https://c.example.com");
    disabled["enabled"] = json!(false);
    for body in [all, only_beta, disabled] {
        app.admin("POST", "/api/v1/sources", Some(body))
            .await
            .expect(201);
    }

    let seen = app
        .call("GET", "/api/v1/sources", Some(&member), None)
        .await;
    let names: Vec<&str> = seen
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["All projects"]);
    assert!(seen.body[0].get("auth_fields").is_none() && seen.body[0].get("secrets_set").is_none());
    assert!(
        !seen.text.contains("robot"),
        "members see no auth details: {}",
        seen.text
    );

    // Everything else is admin-only; no token or a bad one is 401.
    let id = app.admin("GET", "/api/v1/sources", None).await.body[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (method, path) in [
        ("GET", format!("/api/v1/sources/{id}")),
        ("POST", format!("/api/v1/sources/{id}/test")),
        ("POST", format!("/api/v1/sources/{id}/disable")),
        ("DELETE", format!("/api/v1/sources/{id}")),
        ("GET", "/api/v1/tokens".to_string()),
    ] {
        assert_eq!(
            app.call(method, &path, Some(&member), None).await.status,
            403,
            "{method} {path}"
        );
    }
    assert_eq!(
        app.call(
            "POST",
            "/api/v1/sources",
            Some(&member),
            Some(source("X", "https://x.example.com"))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        app.call("GET", "/api/v1/sources", None, None).await.status,
        401
    );
    assert_eq!(
        app.call("GET", "/api/v1/sources", Some("its_wrong"), None)
            .await
            .status,
        401
    );
    assert_eq!(
        app.call(
            "GET",
            &format!("/api/v1/sources?project={}", beta.as_str().unwrap()),
            Some(&member),
            None
        )
        .await
        .status,
        403
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_loses_nothing_acknowledged() {
    let app = TestApp::start().await;
    let project = app
        .admin("POST", "/api/v1/projects", Some(json!({"name": "Alpha"})))
        .await
        .expect(201)["id"]
        .clone();
    let mut body = source("Persistent", "https://t.example.com");
    body["projects"] = json!({"mode": "specific", "ids": [project]});
    let before = app
        .admin("POST", "/api/v1/sources", Some(body))
        .await
        .expect(201)
        .clone();
    let app = app.restart().await;
    let after = app
        .admin(
            "GET",
            &format!("/api/v1/sources/{}", before["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(after.expect(200), &before);
    let latest = match integration_tests::on_postgres() {
        true => host::store::postgres::latest_version(),
        false => host::store::SCHEMA_VERSION,
    };
    assert_eq!(app.state.store.schema_version().await.unwrap(), latest);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_canary_secret_never_leaves_in_responses_logs_or_the_file() {
    let logs = log_buffer();
    let tracker = StandIn::start(Router::new().route("/whoami", get(|| async { "ok" }))).await;
    let app = TestApp::start().await;
    let mut responses = Vec::new();
    let created = app
        .admin(
            "POST",
            "/api/v1/sources",
            Some(source("Canary", &tracker.url)),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_string();
    responses.push(created);
    responses.push(app.admin("GET", "/api/v1/sources", None).await);
    responses.push(
        app.admin("GET", &format!("/api/v1/sources/{id}"), None)
            .await,
    );
    responses.push(
        app.admin("POST", &format!("/api/v1/sources/{id}/test"), None)
            .await,
    );
    let mut bad = source("Canary", &tracker.url);
    bad["key_pattern"] = json!("(");
    responses.push(
        app.admin("PUT", &format!("/api/v1/sources/{id}"), Some(bad))
            .await,
    );
    responses.push(
        app.admin(
            "POST",
            "/api/v1/sources/test",
            Some(source("Draft", "http://127.0.0.1:1")),
        )
        .await,
    );
    for r in &responses {
        assert!(!r.text.contains(CANARY), "response body leaks: {}", r.text);
        assert!(
            !r.headers.contains(CANARY),
            "response headers leak: {}",
            r.headers
        );
    }
    // The tracker did receive it (so the canary was really in play).
    assert_eq!(
        tracker.requests()[0].header("authorization").unwrap(),
        basic("robot", CANARY)
    );
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(!logged.is_empty(), "the log capture works");
    assert!(!logged.contains(CANARY), "the log leaks the secret");
    let file = app.stored_bytes();
    assert!(
        !file.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
        "the database holds the secret in clear"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_matches_the_routes_the_server_serves() {
    let app = TestApp::start().await;
    let doc = app.call("GET", "/api/v1/openapi.json", None, None).await;
    let doc = doc.expect(200).clone();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{}", paths.len());
    let mut operations = 0;
    for (path, methods) in paths {
        for (method, op) in methods.as_object().unwrap() {
            operations += 1;
            assert!(
                !op["summary"].as_str().unwrap().is_empty(),
                "{method} {path}"
            );
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| ps.iter().map(|p| p["name"].as_str().unwrap()).collect())
                .unwrap_or_default();
            let concrete: String = path
                .split('/')
                .map(
                    |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => {
                            assert!(
                                declared.contains(&name),
                                "{method} {path}: parameter {name} undeclared"
                            );
                            "x-unknown"
                        }
                        None => segment,
                    },
                )
                .collect::<Vec<_>>()
                .join("/");
            let body = matches!(method.as_str(), "post" | "put").then(|| json!({}));
            let response = app.admin(&method.to_uppercase(), &concrete, body).await;
            // Served means the router knows the route: not the API's fallback, not 405.
            assert_ne!(response.status, 405, "{method} {path}: {}", response.text);
            assert_ne!(
                response.body["error"]["message"], "no such API route",
                "{method} {path} is documented but not served"
            );
        }
    }
    assert!(operations >= 30, "{operations}");
    // An undocumented route is not served.
    let unknown = app.admin("GET", "/api/v1/not-a-route", None).await;
    assert_eq!(unknown.body["error"]["message"], "no such API route");
    // The readable rendering lists every path.
    let page = app.call("GET", "/api/docs", None, None).await;
    assert_eq!(page.status, 200);
    for path in paths.keys() {
        assert!(
            page.text.contains(&path.replace('&', "&amp;")),
            "{path} missing from /api/docs"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn key_patterns_are_checked_by_the_rules_save_applies() {
    let app = TestApp::start().await;
    let check = |pattern: &str, key: Option<&str>| {
        let body = json!({"pattern": pattern, "key": key});
        let app = &app;
        async move {
            app.admin("POST", "/api/v1/key-patterns/check", Some(body))
                .await
                .expect(200)
                .clone()
        }
    };
    assert_eq!(
        check("^[A-Z]+-\\d+$", Some("PROJ-7")).await,
        json!({"valid": true, "matches": true})
    );
    assert_eq!(
        check("^[A-Z]+-\\d+$", Some("proj-7")).await,
        json!({"valid": true, "matches": false})
    );
    assert_eq!(
        check("^[A-Z]+-\\d+$", None).await,
        json!({"valid": true, "matches": null})
    );
    // Look-around: a browser accepts it, Save does not, and neither does the check.
    let lookaround = check("^(?!TEST)[A-Z]+-\\d+$", Some("PROJ-7")).await;
    assert_eq!(lookaround["valid"], false);
    assert!(
        lookaround["message"]
            .as_str()
            .unwrap()
            .contains("look-around"),
        "{lookaround}"
    );
    let mut body = source("Look-around", "https://t.example.com");
    body["key_pattern"] = json!("^(?!TEST)[A-Z]+-\\d+$");
    let saved = app.admin("POST", "/api/v1/sources", Some(body)).await;
    assert_eq!(
        saved.expect_error(400, "key_pattern"),
        lookaround["message"].as_str().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_can_be_tested_before_it_is_saved_with_the_stored_secrets() {
    let tracker = StandIn::start(Router::new().route("/whoami", get(|| async { "ok" }))).await;
    let app = TestApp::start().await;
    let created = app
        .admin(
            "POST",
            "/api/v1/sources",
            Some(source("Edited", &tracker.url)),
        )
        .await;
    let id = created.expect(201)["id"].as_str().unwrap().to_string();
    let before = app
        .admin("GET", &format!("/api/v1/sources/{id}"), None)
        .await
        .expect(200)
        .clone();

    // The edit renames the user and omits the token: the test uses the stored token.
    let mut edit = source("Edited", &tracker.url);
    edit["auth"] = json!({"type": "api-token", "fields": {"user": "robot-2"}});
    let tested = app
        .admin(
            "POST",
            &format!("/api/v1/sources/{id}/test-edit"),
            Some(edit),
        )
        .await;
    assert_eq!(tested.expect(200)["ok"], true, "{}", tested.text);
    let sent = tracker.requests().last().unwrap().clone();
    assert_eq!(
        sent.header("authorization"),
        Some(basic("robot-2", CANARY).as_str())
    );
    assert!(!tested.text.contains(CANARY));
    // Nothing was stored: not the edit, not the test result.
    let after = app
        .admin("GET", &format!("/api/v1/sources/{id}"), None)
        .await
        .expect(200)
        .clone();
    assert_eq!(after, before);
    // A bad edit is refused at its field, as a save would be.
    let mut bad = source("Edited", "not a url");
    bad["auth"] = json!({"type": "api-token", "fields": {"user": "robot"}});
    app.admin(
        "POST",
        &format!("/api/v1/sources/{id}/test-edit"),
        Some(bad),
    )
    .await
    .expect_error(400, "base_url");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_draft_that_passed_its_test_is_saved_as_tested() {
    let tracker = StandIn::start(Router::new().route("/whoami", get(|| async { "ok" }))).await;
    let app = TestApp::start().await;
    let draft = source("Tested first", &tracker.url);
    let tested = app
        .admin("POST", "/api/v1/sources/test", Some(draft.clone()))
        .await;
    assert_eq!(tested.expect(200)["ok"], true, "{}", tested.text);
    let created = app.admin("POST", "/api/v1/sources", Some(draft)).await;
    let last = &created.expect(201)["last_test"];
    assert_eq!(last["ok"], true, "{}", created.text);
    assert_eq!(last["message"], tested.body["message"]);

    // Another token than the one tested: not tested yet.
    let mut other = source("Tested with another token", &tracker.url);
    other["auth"]["fields"]["token"] = json!("another-token-0123456789");
    let created = app.admin("POST", "/api/v1/sources", Some(other)).await;
    assert_eq!(created.expect(201)["last_test"], Value::Null);
}

/// Stores `n` sources: "Source 0001"... on `https://tNNNN.example.com`, every third one
/// disabled, every fifth a GitHub one, the even ones assigned to `project` only.
async fn store_many(app: &TestApp, n: usize, project: &str) {
    let github = json!({"provider": "github", "display_name": "Template GitHub",
        "base_url": "https://github.com/acme/shop", "auth": {"type": "none"},
        "projects": {"mode": "all"}});
    let misbehave = source("Template", "https://t.example.com");
    for (template, fifth) in [(github, true), (misbehave, false)] {
        app.store_copies(template, n, |i, record| {
            record["display_name"] = json!(format!("Source {i:04}"));
            record["base_url"] = json!(format!("https://t{i:04}.example.com"));
            record["enabled"] = json!(i % 3 != 0);
            record["projects"] = if i % 2 == 0 {
                json!({"mode": "specific", "ids": [project]})
            } else {
                json!({"mode": "all"})
            };
            (i % 5 == 0) == fifth
        })
        .await;
    }
}

fn names(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {page}"))
        .iter()
        .map(|s| s["display_name"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_sources_are_searched_filtered_sorted_and_paged_on_the_server() {
    let app = TestApp::start().await;
    let (alpha, member) = app.project_with_member("Alpha").await;
    store_many(&app, 1200, &alpha).await;
    let get = |query: String| {
        let app = &app;
        async move {
            let r = app
                .admin("GET", &format!("/api/v1/sources?{query}"), None)
                .await;
            r.expect(200).clone()
        }
    };

    // Without paging parameters: the plain array, as before.
    assert_eq!(count_sources(&app).await, 1200);

    // A page carries the total and the next page; walking the pages sees each source once.
    let started = std::time::Instant::now();
    let first = get("limit=25".into()).await;
    println!(
        "first page of 25 of 1,200 sources in {:?}",
        started.elapsed()
    );
    assert_eq!(names(&first)[..2], ["Source 0001", "Source 0002"]);
    assert_eq!(
        (
            &first["total"],
            &first["page"],
            &first["pages"],
            &first["next_page"]
        ),
        (&json!(1200), &json!(1), &json!(48), &json!(2))
    );
    let mut seen = std::collections::BTreeSet::new();
    let mut page = Some(1);
    while let Some(n) = page {
        let body = get(format!("limit=500&page={n}")).await;
        for item in body["items"].as_array().unwrap() {
            assert!(seen.insert(item["id"].as_str().unwrap().to_string()));
        }
        page = body["next_page"].as_u64();
    }
    assert_eq!(seen.len(), 1200);

    // Search over the name and the base URL, ignoring case.
    let found = get("q=source%20012&limit=50".into()).await;
    assert_eq!(found["total"], 10, "Source 0120 to 0129");
    let found = get("q=T0777.EXAMPLE&limit=50".into()).await;
    assert_eq!(names(&found), ["Source 0777"]);

    // Filters combine: provider, enabled, project, health.
    assert_eq!(get("provider=github&limit=1".into()).await["total"], 240);
    assert_eq!(get("enabled=false&limit=1".into()).await["total"], 400);
    let both = get("provider=github&enabled=false&limit=1".into()).await;
    assert_eq!(both["total"], 80, "multiples of 15");
    let other = app
        .create("/api/v1/projects", json!({"name": "Beta"}))
        .await;
    assert_eq!(get(format!("project={other}&limit=1")).await["total"], 600);
    assert_eq!(get(format!("project={alpha}&limit=1")).await["total"], 1200);
    assert_eq!(get("health=unknown&limit=1".into()).await["total"], 1200);
    assert_eq!(get("health=failing&limit=1".into()).await["total"], 0);
    // Filters without paging keep the array shape.
    let filtered = get("provider=github&q=source%2000".into()).await;
    assert_eq!(filtered.as_array().map(Vec::len), Some(19), "0005 to 0095");

    // Sorting, reversed with a leading '-'.
    let last = get("sort=-name&limit=2".into()).await;
    assert_eq!(names(&last), ["Source 1200", "Source 1199"]);
    let by_provider = get("sort=provider&limit=1".into()).await;
    assert_eq!(by_provider["items"][0]["provider"], "github");
    let disabled_first = get("sort=-enabled&limit=1".into()).await;
    assert_eq!(names(&disabled_first), ["Source 0003"]);

    // A bad value is a 400 naming its parameter, and a member cannot ask about health.
    for (query, field) in [
        ("enabled=yes", "enabled"),
        ("health=green", "health"),
        ("sort=colour", "sort"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("page=-1", "page"),
        ("provider=nope", "provider"),
        ("colour=red", "colour"),
    ] {
        app.admin("GET", &format!("/api/v1/sources?{query}"), None)
            .await
            .expect_error(400, field);
    }
    let members = app
        .call(
            "GET",
            "/api/v1/sources?q=source%2001&limit=5",
            Some(&member),
            None,
        )
        .await;
    let members = members.expect(200);
    assert_eq!(members["total"], 67, "the enabled ones of 0100 to 0199");
    assert!(members["items"][0].get("health").is_none());
    let health = app
        .call("GET", "/api/v1/sources?health=ok", Some(&member), None)
        .await;
    assert_eq!(health.status, 403, "{}", health.text);
    assert_eq!(health.body["error"]["field"], "health");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_sources_list_parameters_are_the_ones_the_server_accepts() {
    let app = TestApp::start().await;
    let project = app
        .create("/api/v1/projects", json!({"name": "Docs"}))
        .await;
    let doc = app.call("GET", "/api/v1/openapi.json", None, None).await;
    let parameters = doc.expect(200)["paths"]["/api/v1/sources"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .clone();
    let names: Vec<&str> = parameters
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "q", "provider", "enabled", "health", "project", "sort", "limit", "page", "cursor"
        ]
    );
    for parameter in &parameters {
        let name = parameter["name"].as_str().unwrap();
        let schema = &parameter["schema"];
        let mut values: Vec<String> = match schema["enum"].as_array() {
            Some(values) => values.iter().map(|v| v.as_str().unwrap().into()).collect(),
            None if schema["type"] == "integer" => vec![schema["minimum"].to_string()],
            None if name == "project" => vec![project.clone()],
            None if name == "provider" => vec!["github".into()],
            // Only a `next_cursor` of ours is a cursor (see `api_contract`).
            None if name == "cursor" => Vec::new(),
            None => vec!["anything".into()],
        };
        if let Some(max) = schema["maximum"].as_u64() {
            values.push(max.to_string());
            let over = app
                .admin("GET", &format!("/api/v1/sources?{name}={}", max + 1), None)
                .await;
            over.expect_error(400, name);
        }
        for value in values {
            let query = format!("/api/v1/sources?{name}={value}");
            let answer = app.admin("GET", &query, None).await;
            assert_eq!(answer.status, 200, "{query}: {}", answer.text);
        }
    }
    assert!(
        parameters[5]["schema"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("-updated"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_projects_links_come_in_pages_when_asked() {
    let app = TestApp::start().await;
    let (project, member) = app.project_with_member("Paged").await;
    let source = app
        .create(
            "/api/v1/sources",
            json!({"provider": "github", "display_name": "Shop", "auth": {"type": "none"},
                   "base_url": "https://github.com/acme/shop", "projects": {"mode": "all"},
                   "capabilities": {"read_issue_details": false}}),
        )
        .await;
    let keys: Vec<String> = (1..=120).map(|n| n.to_string()).collect();
    let bulk = format!("/api/v1/projects/{project}/links/bulk");
    let body = json!({"test_object": "test-case:TC-1", "source_id": source, "keys": keys});
    app.call("POST", &bulk, Some(&member), Some(body))
        .await
        .expect(200);
    let list = |query: &str| {
        let path = format!("/api/v1/projects/{project}/links{query}");
        let member = member.clone();
        let app = &app;
        async move { app.call("GET", &path, Some(&member), None).await }
    };

    // Without paging parameters: the plain array, as before.
    assert_eq!(list("").await.expect(200).as_array().unwrap().len(), 120);
    let first = list("?limit=50").await;
    let first = first.expect(200);
    assert_eq!(first["items"].as_array().unwrap().len(), 50);
    assert_eq!(
        (&first["total"], &first["pages"], &first["next_page"]),
        (&json!(120), &json!(3), &json!(2))
    );
    let last = list("?limit=50&page=3&test_object=test-case:TC-1").await;
    let last = last.expect(200);
    assert_eq!(last["items"].as_array().unwrap().len(), 20);
    assert_eq!(last["next_page"], Value::Null);
    let mut seen: Vec<String> = Vec::new();
    for page in [
        first,
        &last.clone(),
        list("?limit=50&page=2").await.expect(200),
    ] {
        for link in page["items"].as_array().unwrap() {
            seen.push(link["key"].as_str().unwrap().to_string());
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 120, "each link on one page");
    list("?limit=0").await.expect_error(400, "limit");
    list("?page=x").await.expect_error(400, "page");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_refusals_keep_their_status_code_and_field() {
    let app = TestApp::start().await;
    let me = app.admin("GET", "/api/v1/me", None).await;
    let id = me.expect(200)["id"].as_str().unwrap().to_string();

    let last = app
        .admin("DELETE", &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(last.expect(409)["error"]["code"], "conflict");
    assert_eq!(last.body["error"]["field"], Value::Null, "{}", last.text);
    assert!(last.text.contains("last admin token"), "{}", last.text);
    let unknown = app.admin("DELETE", "/api/v1/tokens/tok_nope", None).await;
    assert_eq!(unknown.expect(404)["error"]["code"], "not-found");

    for (body, field) in [
        (json!({"name": "preset admin", "role": "admin"}), "name"),
        (json!({"name": "ci", "role": "member"}), "projects"),
        (
            json!({"name": "ci", "role": "member", "projects": ["prj_nope"]}),
            "projects[0]",
        ),
    ] {
        app.admin("POST", "/api/v1/tokens", Some(body))
            .await
            .expect_error(400, field);
    }
    app.admin("GET", "/api/v1/me", None).await.expect(200);
}

/// The schema the document gives the answer `status` of `method path` (`path` as in the
/// document, e.g. `/api/v1/sources/{id}`), with the document's components beside it so that
/// its `$ref`s resolve.
fn answer_schema(doc: &Value, method: &str, path: &str, status: u16) -> Value {
    let answer = &doc["paths"][path][method]["responses"][status.to_string()];
    let schema = &answer["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path}: no schema for {status}"
    );
    let mut schema = schema.clone();
    schema["components"] = doc["components"].clone();
    schema
}

/// Panics, naming every violation, unless `answer` fits the documented schema.
fn assert_fits(doc: &Value, method: &str, path: &str, answer: &integration_tests::Response2) {
    assert_body_fits(doc, method, path, answer.status, &answer.body);
}

/// Panics, naming every violation, unless `body` fits the schema documented for `status`.
#[track_caller]
fn assert_body_fits(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let schema = answer_schema(doc, method, path, status);
    let validator = jsonschema::draft202012::new(&schema).expect("a valid JSON Schema");
    let problems: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        problems.is_empty(),
        "{method} {path} {status}: the answer does not fit its schema: {problems:#?}\n{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_describes_merge_patch_etags_paging_and_signed_uploads() {
    let app = TestApp::start().await;
    let doc = app.call("GET", "/api/v1/openapi.json", None, None).await;
    let doc = doc.expect(200).clone();
    let paths = &doc["paths"];
    let header_names = |op: &Value| -> Vec<String> {
        (op["parameters"].as_array().into_iter().flatten())
            .filter(|p| p["in"] == "header")
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };

    // PATCH /sources/{id}: a merge patch body in its own media type (and JSON), 412 and
    // If-Match as for PUT, the source's ETag on its answers.
    let patch = &paths["/api/v1/sources/{id}"]["patch"];
    let content = patch["requestBody"]["content"].as_object().unwrap();
    for media in ["application/merge-patch+json", "application/json"] {
        let schema = &content[media]["schema"];
        assert_eq!(schema["type"], "object", "{media}: {schema}");
        assert!(schema["properties"]["display_name"].is_object(), "{schema}");
    }
    for method in ["put", "patch"] {
        let op = &paths["/api/v1/sources/{id}"][method];
        for status in ["200", "400", "404", "409", "412", "415"] {
            assert!(op["responses"][status].is_object(), "{method} {status}");
        }
        assert_eq!(header_names(op), ["If-Match"], "{method}");
        assert!(op["responses"]["200"]["headers"]["ETag"].is_object());
    }
    assert!(
        paths["/api/v1/sources/{id}"]["get"]["responses"]["200"]["headers"]["ETag"].is_object()
    );
    assert!(paths["/api/v1/sources"]["post"]["responses"]["201"]["headers"]["ETag"].is_object());
    for action in ["enable", "disable"] {
        let op = &paths[format!("/api/v1/sources/{{id}}/{action}")]["post"];
        assert!(
            op["responses"]["200"]["headers"]["ETag"].is_object(),
            "{action}"
        );
    }
    // The refreshes answer 409 (source-syncing); an upload reads X-Plugin-Signature.
    assert!(paths["/api/v1/sources/{id}/refresh"]["post"]["responses"]["409"].is_object());
    let refresh = &paths["/api/v1/projects/{project}/links/{id}/refresh"]["post"];
    assert!(refresh["responses"]["409"].is_object());
    let upload = &paths["/api/v1/plugins/{id}"]["put"];
    assert_eq!(header_names(upload), ["X-Plugin-Signature"]);
    assert!(upload["responses"]["422"].is_object());
    // A list is the array or a page with next_cursor, one or the other.
    let tokens = answer_schema(&doc, "get", "/api/v1/tokens", 200);
    let list =
        &doc["components"]["schemas"][tokens["$ref"].as_str().unwrap().rsplit('/').next().unwrap()];
    assert_eq!(list["oneOf"].as_array().map(Vec::len), Some(2), "{list}");
    assert!(
        doc["components"]["schemas"]
            .to_string()
            .contains("next_cursor")
    );

    // Real answers fit: PATCH, its 412, every list paged and not, the plugin listing.
    let created = app
        .admin(
            "POST",
            "/api/v1/sources",
            Some(source("Patched", "https://t.example.com")),
        )
        .await;
    let id = created.expect(201)["id"].as_str().unwrap().to_string();
    let patch = |if_match: &'static str| {
        let url = format!("{}/api/v1/sources/{id}", app.url);
        let admin = app.admin.clone();
        async move {
            let response = reqwest::Client::new()
                .patch(url)
                .bearer_auth(admin)
                .header("content-type", "application/merge-patch+json")
                .header("if-match", if_match)
                .body(json!({"display_name": "Patched again"}).to_string())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, stale) = patch("\"1\"").await;
    assert_eq!(status, 412, "{stale}");
    assert_body_fits(&doc, "patch", "/api/v1/sources/{id}", 412, &stale);
    let (status, patched) = patch("*").await;
    assert_eq!(status, 200, "{patched}");
    assert_body_fits(&doc, "patch", "/api/v1/sources/{id}", 200, &patched);
    app.admin("POST", "/api/v1/projects", Some(json!({"name": "Paged"})))
        .await
        .expect(201);
    for (path, documented) in [
        ("/api/v1/projects", "/api/v1/projects"),
        ("/api/v1/tokens", "/api/v1/tokens"),
        ("/api/v1/plugins", "/api/v1/plugins"),
        ("/api/v1/audit", "/api/v1/audit"),
        (
            &*format!("/api/v1/sources/{id}/links"),
            "/api/v1/sources/{id}/links",
        ),
    ] {
        for query in ["", "?limit=1", "?page=1"] {
            if path.ends_with("audit") && query == "?page=1" {
                continue;
            }
            let answer = app.admin("GET", &format!("{path}{query}"), None).await;
            assert_eq!(answer.status, 200, "{path}{query}: {}", answer.text);
            assert_fits(&doc, "get", documented, &answer);
        }
    }
}

/// Every `$ref` in `value`.
fn refs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match item {
                    Value::String(target) if key == "$ref" => found.push(target.clone()),
                    _ => refs(item, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_describes_every_body_and_answer_of_the_route_table() {
    let app = TestApp::start().await;
    let doc = app.call("GET", "/api/v1/openapi.json", None, None).await;
    let doc = doc.expect(200).clone();
    for route in host::api::routes::API_ROUTES {
        let (method, path) = (route.method, format!("/api/v1{}", route.path));
        let op = &doc["paths"][&path][method];
        let body = &op["requestBody"]["content"];
        assert_eq!(
            route.body.is_some(),
            body.as_object()
                .is_some_and(|b| b.values().all(|c| c["schema"].is_object())),
            "{method} {path}: request body"
        );
        for (status, content) in route.ok {
            let answer = &op["responses"][status.to_string()];
            let schema = answer["content"]
                .as_object()
                .and_then(|c| c.values().next());
            assert_eq!(
                content.is_some(),
                schema.is_some(),
                "{method} {path} {status}"
            );
        }
        assert!(
            op["responses"]["401"].is_object(),
            "{method} {path}: no 401"
        );
        for (status, answer) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') {
                let schema = &answer["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
    }
    // No request body is a bare `{"type": "object"}` any more.
    let sources_body = &doc["paths"]["/api/v1/sources"]["post"]["requestBody"];
    let schema = &sources_body["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(schema, "#/components/schemas/SourceInput");
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 100, "{}", found.len());
    for target in found {
        let pointer = target.strip_prefix('#').expect("a local $ref");
        assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
    }
    // The sorts of `GET /sources` and the roles of a token are enums.
    let role = &doc["components"]["schemas"]["Role"];
    assert!(role.to_string().contains("member"), "{role}");
}

#[tokio::test(flavor = "multi_thread")]
async fn real_answers_fit_the_schemas_the_document_gives_them() {
    let app = TestApp::start().await;
    let doc = app.call("GET", "/api/v1/openapi.json", None, None).await;
    let doc = doc.expect(200).clone();

    let project = app
        .admin("POST", "/api/v1/projects", Some(json!({"name": "Schemas"})))
        .await;
    assert_fits(&doc, "post", "/api/v1/projects", &project);
    let project = project.body["id"].as_str().unwrap().to_string();
    let got = app
        .admin("GET", &format!("/api/v1/projects/{project}"), None)
        .await;
    assert_fits(&doc, "get", "/api/v1/projects/{id}", &got);

    let mut body = source("Schema source", "http://127.0.0.1:9");
    body["capabilities"]["read_issue_details"] = json!(false);
    body["settings"] = json!({});
    let created = app
        .admin("POST", "/api/v1/sources", Some(body.clone()))
        .await;
    assert_fits(&doc, "post", "/api/v1/sources", &created);
    let source_id = created.body["id"].as_str().unwrap().to_string();
    let listed = app.admin("GET", "/api/v1/sources", None).await;
    assert_fits(&doc, "get", "/api/v1/sources", &listed);
    let paged = app.admin("GET", "/api/v1/sources?limit=1", None).await;
    assert_fits(&doc, "get", "/api/v1/sources", &paged);
    let health = app
        .admin("GET", &format!("/api/v1/sources/{source_id}/health"), None)
        .await;
    assert_fits(&doc, "get", "/api/v1/sources/{id}/health", &health);

    let token = json!({"name": "Schema member", "role": "member", "projects": [project]});
    let token = app.admin("POST", "/api/v1/tokens", Some(token)).await;
    assert_fits(&doc, "post", "/api/v1/tokens", &token);
    let member = token.body["token"].as_str().unwrap().to_string();
    let me = app.call("GET", "/api/v1/me", Some(&member), None).await;
    assert_fits(&doc, "get", "/api/v1/me", &me);
    let member_list = app
        .call("GET", "/api/v1/sources", Some(&member), None)
        .await;
    assert_fits(&doc, "get", "/api/v1/sources", &member_list);

    let links = format!("/api/v1/projects/{project}/links");
    let link = json!({"test_object": "test-case:TC-1", "source_id": source_id, "key": "ABC-1"});
    let link = app.call("POST", &links, Some(&member), Some(link)).await;
    assert_fits(&doc, "post", "/api/v1/projects/{project}/links", &link);
    let listed = app.call("GET", &links, Some(&member), None).await;
    assert_fits(&doc, "get", "/api/v1/projects/{project}/links", &listed);

    body["display_name"] = json!("Schema source");
    let duplicate = app.admin("POST", "/api/v1/sources", Some(body)).await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.text);
    assert_fits(&doc, "post", "/api/v1/sources", &duplicate);
    let invalid = app
        .admin("POST", "/api/v1/sources", Some(json!({"provider": 1})))
        .await;
    assert_eq!(invalid.status, 400, "{}", invalid.text);
    assert_fits(&doc, "post", "/api/v1/sources", &invalid);
    let missing = app
        .admin("GET", "/api/v1/sources/no-such-source", None)
        .await;
    assert_fits(&doc, "get", "/api/v1/sources/{id}", &missing);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_sent_as_an_array_of_its_fields_or_with_extra_fields_is_refused() {
    // serde reads a struct from an array of its fields in order, and takes any field beside
    // the tag of a unit variant; the schemas allow neither.
    let app = TestApp::start().await;
    let project = app
        .admin("POST", "/api/v1/projects", Some(json!(["Arrays"])))
        .await;
    assert_eq!(project.status, 400, "{}", project.text);
    let mut body = source("Arrays", "http://127.0.0.1:9");
    body["network"] = json!([null, null]);
    app.admin("POST", "/api/v1/sources", Some(body.clone()))
        .await
        .expect_error(400, "network");
    body["network"] = json!(null);
    body["capabilities"] = json!([true, false, false, false]);
    app.admin("POST", "/api/v1/sources", Some(body.clone()))
        .await
        .expect_error(400, "capabilities");
    body["capabilities"] = json!({});
    body["auth"] = json!(["api-token", {"user": "robot", "token": CANARY}]);
    app.admin("POST", "/api/v1/sources", Some(body.clone()))
        .await
        .expect_error(400, "auth");
    assert_eq!(count_sources(&app).await, 0);
    assert!(
        app.admin("GET", "/api/v1/projects", None)
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .is_empty()
    );
}
