//! Secrets are write-only, even when a tracker echoes them back.
//!
//! A stand-in that echoes the credential it received (in the body as JSON or text, and in
//! headers, with every status from 200 to 500, and in every encoding a tracker or a proxy may
//! use) serves every shipped provider under every auth type that carries a secret. Everything
//! the API answers (admins and members), everything stored in the redb file and everything
//! logged at trace level (text and JSON) must be free of each secret in each derived form; and
//! a test plugin proves the guest itself never got to see one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use integration_tests::{LogSink, StandIn, TestApp};
use serde_json::{Value, json};

/// The non-secret value every plain auth field gets (it is the user of HTTP Basic).
const USER: &str = "robot-user@example.com";

/// How the echo stand-in answers: the status, and JSON or text.
const MODES: [(u16, bool); 8] = [
    (200, true),
    (200, false),
    (401, true),
    (401, false),
    (404, true),
    (429, false),
    (500, true),
    (502, false),
];

/// A stand-in that answers every request with the credentials it carried, in every form.
struct Echo {
    mode: AtomicUsize,
}

/// The user (empty unless HTTP Basic) and the secret inside a credential header value.
fn secret_in(value: &str) -> Option<(String, String)> {
    if let Some(b64) = value.strip_prefix("Basic ") {
        let plain = String::from_utf8(STANDARD.decode(b64).ok()?).ok()?;
        let (user, secret) = plain.split_once(':')?;
        return Some((user.to_string(), secret.to_string()));
    }
    let secret = ["Bearer ", "token ", "Token "]
        .iter()
        .find_map(|p| value.strip_prefix(p))
        .unwrap_or(value);
    Some((String::new(), secret.to_string()))
}

/// Every form in which a tracker might echo the credential header `value` that carried
/// `user` and `secret`.
fn echo_forms(value: &str, user: &str, secret: &str) -> Vec<String> {
    vec![
        value.to_string(),
        secret.to_string(),
        percent(secret),
        STANDARD.encode(format!(":{secret}")),
        STANDARD.encode(secret),
        URL_SAFE_NO_PAD.encode(format!("{user}:{secret}")),
        secret.replace('/', "\\/"),
    ]
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn echo(
    axum::extract::State(echo): axum::extract::State<Arc<Echo>>,
    headers: HeaderMap,
) -> Response {
    let mut forms = Vec::new();
    for name in ["authorization", "private-token", "x-api-key"] {
        for value in headers.get_all(name) {
            let value = value.to_str().unwrap_or_default();
            if let Some((user, secret)) = secret_in(value) {
                forms.extend(echo_forms(value, &user, &secret));
            }
        }
    }
    let (status, json) = MODES[echo.mode.load(Ordering::SeqCst) % MODES.len()];
    let said = format!("bad request, got Authorization: {}", forms.join(" | "));
    let mut response = if json {
        axum::Json(json!({
            "message": said,
            "errorMessages": forms,
            "errors": forms.iter().map(|f| json!({"message": f})).collect::<Vec<_>>(),
            "error": said,
            "error_description": said,
            "data": null,
        }))
        .into_response()
    } else {
        format!("{said}\n{}\n", forms.join("\n")).into_response()
    };
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    let headers = response.headers_mut();
    for (i, form) in forms.iter().enumerate() {
        if let Ok(value) = HeaderValue::from_str(form) {
            headers.insert(HeaderName::try_from(format!("x-echo-{i}")).unwrap(), value);
        }
    }
    if let Some(first) = forms.first() {
        let challenge = format!("Bearer realm=\"{first}\"");
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            headers.insert("www-authenticate", value);
        }
    }
    if status == 429 {
        headers.insert("retry-after", HeaderValue::from_static("1"));
    }
    response
}

/// What must never come out: each secret in every form the host could send or a tracker echo.
fn leaked_forms(secret: &str) -> Vec<String> {
    let mut forms = vec![
        secret.to_string(),
        percent(secret),
        form_encoded(secret),
        secret.replace('/', "\\/"),
    ];
    for plain in [
        secret.to_string(),
        format!(":{secret}"),
        format!("{USER}:{secret}"),
    ] {
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            forms.push(engine.encode(&plain));
        }
    }
    forms
}

fn form_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b' ' => "+".to_string(),
            b if b.is_ascii_alphanumeric() || b"-._*".contains(&b) => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The part of the base URL after the stand-in's origin that each provider expects, and a key
/// in its format.
fn shape(provider: &str) -> (&'static str, &'static str) {
    match provider {
        "github" => ("/acme/shop", "12"),
        "gitlab" => ("/group/shop", "12"),
        "azure-devops" => ("/fabrikam/Fiber", "12"),
        "linear" => ("/acme", "ENG-12"),
        "jira-cloud" => ("", "PROJ-12"),
        _ => ("", "ABC-12"),
    }
}

/// Everything the API answered, for the leak check at the end.
#[derive(Default, Clone)]
struct Seen(Arc<Mutex<String>>);

impl Seen {
    fn add(&self, r: &integration_tests::Response2) {
        let mut all = self.0.lock().unwrap();
        all.push_str(&r.headers);
        all.push_str(&r.text);
        all.push('\n');
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn echoed_secrets_never_leave_the_host() {
    let logs = LogSink::capture();
    let state = Arc::new(Echo {
        mode: AtomicUsize::new(0),
    });
    let tracker = StandIn::start(Router::new().fallback(echo).with_state(state.clone())).await;
    let app = TestApp::start().await;
    let seen = Seen::default();

    let (project, member) = app.project_with_member("Shop").await;

    let providers = app.admin("GET", "/api/v1/providers", None).await;
    let providers = providers.expect(200).as_array().unwrap().clone();
    let mut secrets = Vec::new();
    let mut combos = 0;
    for provider in &providers {
        let id = provider["id"].as_str().unwrap();
        if id == "misbehave" || id == "hotswap" || provider["auth_types"].is_null() {
            continue;
        }
        for auth in provider["auth_types"].as_array().unwrap() {
            let fields = auth["fields"].as_array().unwrap();
            if !fields.iter().any(|f| f["secret"] == true) {
                continue;
            }
            combos += 1;
            let auth_id = auth["id"].as_str().unwrap();
            let mut values = serde_json::Map::new();
            for field in fields {
                let name = field["name"].as_str().unwrap();
                let value = if field["secret"] == true {
                    let secret = format!("cnry{combos}/{name}+Zq=7w{}", "k".repeat(combos));
                    secrets.push(secret.clone());
                    secret
                } else {
                    USER.to_string()
                };
                values.insert(name.into(), Value::String(value));
            }
            let (path, key) = shape(id);
            let mut settings = serde_json::Map::new();
            for setting in provider["settings"].as_array().unwrap() {
                if setting["kind"] == "url" {
                    let name = setting["name"].as_str().unwrap();
                    settings.insert(name.into(), Value::String(tracker.url.clone()));
                }
            }
            if id == "custom" {
                settings.insert("issue-api-url".into(), json!("{baseUrl}/api/issues/{key}"));
                settings.insert("title-pointer".into(), json!("/title"));
                settings.insert("status-pointer".into(), json!("/status"));
                let comments = "{baseUrl}/api/issues/{key}/comments";
                settings.insert("comment-api-url".into(), json!(comments));
            }
            let body = json!({
                "provider": id,
                "display_name": format!("{id} {auth_id}"),
                "base_url": format!("{}{path}", tracker.url),
                "auth": {"type": auth_id, "fields": values},
                "settings": settings,
                "capabilities": {"read_issue_details": true, "add_comments": true},
                "projects": {"mode": "all"},
            });
            let created = app
                .admin("POST", "/api/v1/sources", Some(body.clone()))
                .await;
            seen.add(&created);
            let source = created.expect(201)["id"].as_str().unwrap().to_string();
            let links = format!("/api/v1/projects/{project}/links");
            for mode in 0..MODES.len() {
                state.mode.store(mode, Ordering::SeqCst);
                let calls = [
                    (
                        "POST",
                        "/api/v1/sources/test".to_string(),
                        Some(body.clone()),
                    ),
                    ("POST", format!("/api/v1/sources/{source}/test"), None),
                    ("POST", format!("/api/v1/sources/{source}/refresh"), None),
                    ("GET", "/api/v1/sources".to_string(), None),
                    ("GET", format!("/api/v1/sources/{source}"), None),
                    ("GET", format!("/api/v1/sources/{source}/health"), None),
                    ("GET", format!("/api/v1/sources/{source}/links"), None),
                ];
                for (method, path, body) in calls {
                    seen.add(&app.admin(method, &path, body).await);
                }
                let link =
                    json!({"test_object": format!("case-{mode}"), "source_id": source, "key": key});
                let r = app.call("POST", &links, Some(&member), Some(link)).await;
                seen.add(&r);
                if let Some(link) = r.body["id"].as_str() {
                    let refresh = format!("{links}/{link}/refresh");
                    seen.add(&app.call("POST", &refresh, Some(&member), None).await);
                    // "Add comments": the tracker's answer (echoing credentials) is redacted too.
                    let comment = format!("{links}/{link}/comments");
                    let body = Some(json!({"body": "Run failed"}));
                    seen.add(&app.call("POST", &comment, Some(&member), body).await);
                }
                seen.add(&app.call("GET", &links, Some(&member), None).await);
                seen.add(
                    &app.call("GET", "/api/v1/sources", Some(&member), None)
                        .await,
                );
            }
        }
    }
    seen.add(&app.admin("GET", "/api/v1/audit?limit=500", None).await);
    seen.add(&app.admin("GET", "/api/v1/sources/export", None).await);
    seen.add(&app.call("GET", "/metrics", None, None).await);
    assert!(
        combos >= 14,
        "every provider's secret-bearing auth types: {combos}"
    );

    // The stand-in did get every credential, and echoed it: the host saw it come back.
    let requests = tracker.requests();
    for secret in &secrets {
        assert!(
            requests.iter().any(|r| r
                .headers
                .iter()
                .any(|(_, v)| secret_in(v).is_some_and(|(_, s)| s == *secret))),
            "{secret} was never sent: the test would prove nothing for it"
        );
    }
    let comments = (requests.iter())
        .filter(|r| r.method == "POST")
        .filter(|r| {
            r.uri.contains("comment")
                || r.uri.contains("/notes")
                || r.body.windows(13).any(|w| w == b"commentCreate")
        })
        .count();
    assert!(comments >= 14, "comments reached the tracker: {comments}");
    let answered = seen.text();

    let stored = app.stored_bytes();
    let stored = String::from_utf8_lossy(&stored);
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("\"level\":\"TRACE\"") && logged.contains(" TRACE "),
        "trace-level text and JSON logs were captured"
    );
    for secret in &secrets {
        for form in leaked_forms(secret) {
            for (place, text) in [
                ("an API answer", &answered),
                ("the database file", &stored.to_string()),
                ("the log", &logged),
            ] {
                if let Some(at) = text.find(&form) {
                    let context =
                        &text[at.saturating_sub(200)..(at + form.len() + 50).min(text.len())];
                    panic!("{form:?} (a form of {secret:?}) leaked into {place}: ...{context}...");
                }
            }
        }
    }
    assert!(
        answered.contains(host::plugin::redact::MARKER),
        "no echo reached an answer, redacted: the test would prove nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guest_never_sees_an_echoed_secret() {
    let state = Arc::new(Echo {
        mode: AtomicUsize::new(0),
    });
    let tracker = StandIn::start(Router::new().fallback(echo).with_state(state.clone())).await;
    let host = integration_tests::plugin_host_with(
        host::plugin::Limits::default(),
        &[integration_tests::test_plugins_dir()],
    )
    .await;
    let secret = "guest-canary/7Zq+w=9e1c";
    for mode in 0..MODES.len() {
        state.mode.store(mode, Ordering::SeqCst);
        let source = host::plugin::SourceConfig {
            provider: "misbehave".into(),
            base_url: tracker.url.clone(),
            auth_type: "api-token".into(),
            fields: integration_tests::map(&[("user", USER)]),
            secrets: integration_tests::map(&[("token", secret)]),
            settings: integration_tests::map(&[
                ("mode", "echo-hex"),
                ("echo-url", &format!("{}/echo", tracker.url)),
            ]),
            ..Default::default()
        };
        let hex = match host.test_connection(&source).await {
            Err(host::plugin::PluginError::Provider(host::plugin::ProviderError::Provider(m))) => m,
            other => panic!("{other:?}"),
        };
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let guest_saw = String::from_utf8(bytes).unwrap();
        for form in leaked_forms(secret) {
            assert!(
                !guest_saw.contains(&form),
                "the guest saw {form:?} (mode {mode}): {guest_saw}"
            );
        }
        assert!(
            guest_saw.contains(host::plugin::redact::MARKER),
            "the echo reached the guest, redacted (mode {mode}): {guest_saw}"
        );
    }
    assert!(!tracker.requests().is_empty());
}
