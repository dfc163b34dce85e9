//! The admin page and the members' links view in a real headless Chromium (through
//! chromedriver), against the real router, real redb and the real compiled plugins, with a
//! stand-in Jira on 127.0.0.1.
//!
//! Needs `chromium` and `chromium-driver` (Debian); a missing browser fails the tests. Each test
//! saves screenshots to `target/screenshots/`; a wait that times out saves `failed-*.png`.

use axum::Router;
use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use integration_tests::webdriver::{Browser, keys};
use integration_tests::{StandIn, TestApp};
use serde_json::{Value, json};

const EMAIL: &str = "mia@example.com";
const TOKEN: &str = "ATATT3-browser-secret-7f3a9c1e55d0";
const WRONG: &str = "ATATT3-revoked-token-000000";

/// One browser at a time: the machine is small and Chromium is not.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------------
// A stand-in Jira Cloud: `/myself`, issue reads and the JQL search, Basic email:token auth.

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn issue(key: &str, summary: &str, status: &str, category: &str, assignee: Option<&str>) -> Value {
    let id = match category {
        "new" => 2,
        "indeterminate" => 4,
        _ => 3,
    };
    json!({
        "id": "10002",
        "key": key,
        "self": format!("https://acme.atlassian.net/rest/api/3/issue/{key}"),
        "fields": {
            "summary": summary,
            "status": {
                "name": status,
                "id": "10001",
                "statusCategory": {"id": id, "key": category, "name": status}
            },
            "assignee": assignee.map(|name| json!({
                "accountId": "5b10a2844c20165700ede21g",
                "displayName": name,
                "active": true
            }))
        }
    })
}

fn issues() -> Vec<Value> {
    vec![
        issue("PROJ-1", "Login fails on Safari", "To Do", "new", None),
        issue(
            "PROJ-2",
            "Checkout button misaligned",
            "In Review",
            "indeterminate",
            Some("Mia Krystof"),
        ),
        issue("PROJ-3", "Release 2.0", "Done", "done", Some("Jon Doe")),
    ]
}

fn json_response(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

async fn serve_jira(req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let authed = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(basic(EMAIL, TOKEN).as_str());
    let path = parts.uri.path().to_string();
    match (parts.method.as_str(), path.as_str()) {
        ("GET", "/rest/api/3/myself") if authed => {
            let mut response = json_response(
                200,
                json!({"accountId": "5b10a2844c20165700ede21g", "displayName": "Mia Krystof",
                       "emailAddress": EMAIL, "active": true}),
            );
            // Near its limit, Jira says how much is left [providers.md 1.6].
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", 100.into());
            headers.insert("x-ratelimit-remaining", 12.into());
            headers.insert("x-ratelimit-nearlimit", "true".parse().unwrap());
            headers.insert("x-ratelimit-reset", "2099-01-01T00:00Z".parse().unwrap());
            response
        }
        // getMyPermissions, which the connection test asks to prove issues can be read.
        ("GET", "/rest/api/3/mypermissions") if authed => json_response(
            200,
            json!({"permissions": {"BROWSE_PROJECTS": {
                "id": "10", "key": "BROWSE_PROJECTS", "name": "Browse Projects",
                "type": "PROJECT", "havePermission": true
            }}}),
        ),
        ("GET", "/rest/api/3/myself") => (
            StatusCode::UNAUTHORIZED,
            [("content-type", "text/plain;charset=UTF-8")],
            "Client must be authenticated to access this resource.",
        )
            .into_response(),
        ("GET", p) if p.starts_with("/rest/api/3/issue/") => {
            let key = p.trim_start_matches("/rest/api/3/issue/");
            match issues().into_iter().find(|i| i["key"] == key) {
                Some(found) if authed => json_response(200, found),
                _ => json_response(
                    404,
                    json!({"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}),
                ),
            }
        }
        ("POST", "/rest/api/3/search/jql") => {
            let query: Value = serde_json::from_slice(&body).unwrap_or_default();
            let jql = query["jql"].as_str().unwrap_or_default().to_string();
            let found: Vec<Value> = if authed {
                issues()
                    .into_iter()
                    .filter(|i| {
                        jql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                            .any(|word| i["key"] == word)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            json_response(200, json!({"issues": found, "isLast": true}))
        }
        _ => (
            StatusCode::NOT_FOUND,
            [("content-type", "text/html")],
            "<html>Oops, you've found a dead link.</html>",
        )
            .into_response(),
    }
}

async fn jira() -> StandIn {
    StandIn::start(Router::new().fallback(serve_jira)).await
}

// ---------------------------------------------------------------------------------------------
// Helpers

async fn create_project(app: &TestApp, name: &str) -> String {
    app.create("/api/v1/projects", json!({ "name": name }))
        .await
}

/// Opens the page and signs in with `token` through the token prompt.
async fn sign_in(b: &Browser, app: &TestApp, token: &str) {
    b.goto(&format!("{}/", app.url)).await;
    let input = b.find("#token").await;
    assert_eq!(
        b.focused_id().await,
        "token",
        "the token prompt takes the focus"
    );
    input.send_keys(token).await;
    input.send_keys(keys::ENTER).await;
    b.find("#who-name").await;
}

async fn sign_out(b: &Browser) {
    b.find("#sign-out").await.click().await;
    b.find("#token").await;
}

/// A full-page screenshot without the transient toasts.
async fn shot(b: &Browser, name: &str) {
    b.execute(
        "document.getElementById('toasts').replaceChildren();",
        vec![],
    )
    .await;
    b.screenshot_full(name).await;
}

/// Every input and select on the page has a label (or an aria-label).
async fn assert_every_input_labelled(b: &Browser, where_: &str) {
    let unlabelled = b
        .execute(
            "return [...document.querySelectorAll('input, select, textarea')]
                .filter(e => e.type !== 'hidden' && e.labels.length === 0
                    && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
                .map(e => e.id || e.name || e.outerHTML);",
            vec![],
        )
        .await;
    assert_eq!(unlabelled, json!([]), "inputs without a label on {where_}");
}

/// No script error happened on the page (failed requests are expected: they are how the API
/// reports invalid input).
async fn assert_no_script_errors(b: &Browser) {
    let errors: Vec<String> = b
        .severe_logs()
        .await
        .into_iter()
        .filter(|m| !m.contains("Failed to load resource"))
        .collect();
    assert!(errors.is_empty(), "script errors: {errors:#?}");
}

/// The error shown next to the field `data-field` names, once it appears.
async fn field_error(b: &Browser, field: &str) -> String {
    b.find(&format!("[data-field=\"{field}\"] > .field-error"))
        .await
        .text()
        .await
}

async fn tab_selected(b: &Browser, tab: &str) -> bool {
    b.find(&format!("#tab-{tab}"))
        .await
        .attr("aria-selected")
        .await
        .as_deref()
        == Some("true")
}

async fn label_of(b: &Browser, id: &str) -> String {
    b.find(&format!("label[for=\"{id}\"]")).await.text().await
}

async fn source_json(app: &TestApp, name: &str) -> Value {
    let list = app.admin("GET", "/api/v1/sources", None).await;
    list.expect(200)
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["display_name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no source {name:?}: {}", list.text))
}

fn row(name: &str) -> String {
    format!("tr[data-name=\"{name}\"]")
}

/// Clicks the row's wrench and returns the result's text once it is `ok` or `fail`.
async fn test_row(b: &Browser, name: &str, outcome: &str) -> String {
    b.find(&format!("{} button.test", row(name)))
        .await
        .click()
        .await;
    b.find(&format!("{} .test-result.{outcome}", row(name)))
        .await
        .text()
        .await
}

// ---------------------------------------------------------------------------------------------
// The admin's walk through the spec

#[tokio::test(flavor = "multi_thread")]
async fn admin_creates_tests_toggles_and_edits_a_jira_source() {
    let _serial = SERIAL.lock().await;
    let app = TestApp::start().await;
    let jira = jira().await;
    let web = create_project(&app, "Web shop").await;
    create_project(&app, "Mobile app").await;
    let b = Browser::start().await;

    // The token prompt, then who we are.
    sign_in(&b, &app, &app.admin).await;
    assert_eq!(b.find("#who-role").await.content().await, "admin");
    assert!(
        b.find_text("#mainnav a", "Sources")
            .await
            .attr("aria-current")
            .await
            .as_deref()
            == Some("page")
    );

    // No source yet: an empty state that says what to do.
    let empty = b.find("#sources-empty").await;
    assert!(empty.text().await.contains("No sources yet"));
    b.screenshot("sources-empty").await;
    assert_every_input_labelled(&b, "the empty list").await;

    // Add Source: three tabs, SOURCE first.
    b.find("#add-source").await.click().await;
    b.find("#source-editor").await;
    assert_eq!(b.find("#source-editor h1").await.text().await, "Add Source");
    for tab in ["SOURCE", "CAPABILITIES", "PROJECTS"] {
        b.find_text("[role=tab]", tab).await;
    }
    assert!(tab_selected(&b, "source").await);
    assert_eq!(b.find("#f-provider").await.value().await, "jira-cloud");

    // Jira Cloud with an API token asks for an email and the token (secret, so a password box).
    assert_eq!(b.find("#f-auth_type").await.value().await, "api-token");
    assert!(label_of(&b, "f-auth-email").await.contains("Email"));
    assert!(label_of(&b, "f-auth-api-token").await.contains("API token"));
    assert_eq!(
        b.find("#f-auth-api-token")
            .await
            .attr("type")
            .await
            .as_deref(),
        Some("password")
    );
    assert_eq!(
        b.find("#f-base_url")
            .await
            .attr("placeholder")
            .await
            .as_deref(),
        Some("https://your-site.atlassian.net")
    );

    b.find("#f-display_name").await.send_keys("Our Jira").await;
    b.find("#f-base_url").await.send_keys(&jira.url).await;
    b.find("#f-auth-email").await.send_keys(EMAIL).await;
    b.find("#f-auth-api-token").await.send_keys(TOKEN).await;

    // Switching to GitHub changes the fields: a personal access token, GitHub's templates.
    b.find("#f-provider").await.select("github").await;
    b.find("#f-auth-token").await;
    b.gone("#f-auth-email").await;
    assert!(
        label_of(&b, "f-auth-token")
            .await
            .contains("Personal access token")
    );
    assert_eq!(
        b.find("#f-issue_url_template").await.value().await,
        "{baseUrl}/issues/{key}"
    );
    assert_eq!(
        b.find("#f-base_url")
            .await
            .attr("placeholder")
            .await
            .as_deref(),
        Some("https://github.com/your-org/your-repo")
    );
    // ... and OAuth 2.0 asks for an access token instead.
    b.find("#f-auth_type").await.select("oauth2").await;
    b.find("#f-auth-access-token").await;
    b.gone("#f-auth-token").await;
    assert!(
        label_of(&b, "f-auth-access-token")
            .await
            .contains("Access token")
    );
    assert!(
        b.find("#auth-fields")
            .await
            .content()
            .await
            .contains("OAuth 2.0"),
        "the credentials box names the auth type"
    );
    shot(&b, "editor-github-oauth").await;

    // Back to Jira with an API token: what was typed is still there.
    b.find("#f-provider").await.select("jira-cloud").await;
    b.find("#f-auth_type").await.select("api-token").await;
    assert_eq!(b.find("#f-auth-email").await.value().await, EMAIL);
    assert_eq!(b.find("#f-auth-api-token").await.value().await, TOKEN);
    assert_eq!(
        b.find("#f-issue_url_template").await.value().await,
        "{baseUrl}/browse/{key}"
    );

    // The draft can be tested before saving.
    b.find("#test-draft").await.click().await;
    let draft = b.find("#draft-result .test-result.ok").await.text().await;
    assert!(draft.contains("Connected as Mia Krystof"), "{draft}");
    assert_eq!(count_sources(&app).await, 0, "testing saves nothing");

    // Live previews from the sample key, and the key pattern check.
    let preview = b
        .find_text(
            "#issue-url-preview",
            &format!("{}/browse/PROJ-123", jira.url),
        )
        .await;
    assert!(preview.text().await.starts_with("Preview:"));
    b.find_text("#key-match.yes", "matches").await;
    let sample = b.find("#f-sample_key").await;
    sample.fill("proj-7").await;
    b.find_text("#key-match.no", "“proj-7” does not match")
        .await;
    b.find_text("#issue-url-preview", "/browse/proj-7").await;
    sample.fill("PROJ-7").await;
    b.find_text("#key-match.yes", "“PROJ-7” matches").await;
    let pattern = b.find("#f-key_pattern").await;
    let jira_pattern = pattern.value().await;
    pattern.fill("^[A-Z+-\\d+$").await;
    b.find_text("#key-match.no", "not a valid regular expression")
        .await;
    // The check is the server's: look-around, which a browser's RegExp accepts, is refused
    // here as Save refuses it.
    pattern.fill("^(?!TEST)[A-Z]+-\\d+$").await;
    b.find_text("#key-match.no", "look-around").await;
    pattern.fill(&jira_pattern).await;
    b.find_text("#key-match.yes", "matches").await;
    shot(&b, "editor-source").await;

    // CAPABILITIES: four toggles, each marked when the provider's plugin cannot serve it
    // (none is "for a future release" any more); "Create issues" needs a create URL template.
    b.find("#tab-capabilities").await.click().await;
    assert!(tab_selected(&b, "capabilities").await);
    let caps = b.find("#panel-capabilities").await.text().await;
    for label in [
        "Read issue details",
        "Create issues",
        "Add comments",
        "Process webhooks",
    ] {
        assert!(caps.contains(label), "{label} missing from {caps}");
    }
    assert!(!caps.contains("Coming in a future release"), "{caps}");
    // Jira's plugin posts comments: nothing marks "Add comments" as unsupported.
    let support = b.present("#f-cap-add_comments-support").await;
    assert_eq!(support.prop("hidden").await, true);
    assert!(b.find("#f-cap-read_issue_details").await.checked().await);
    assert!(
        b.find("#create-requirement")
            .await
            .text()
            .await
            .contains("create URL template")
    );
    b.find("label[for=\"f-cap-create_issues\"]")
        .await
        .click()
        .await;
    assert!(b.find("#f-cap-create_issues").await.checked().await);
    b.find("label[for=\"f-cap-add_comments\"]")
        .await
        .click()
        .await;
    shot(&b, "editor-capabilities").await;

    // Keyboard: arrows move between the tabs.
    b.find("#tab-capabilities").await.click().await;
    b.keys(keys::LEFT).await;
    assert!(tab_selected(&b, "source").await);
    assert_eq!(b.focused_id().await, "tab-source");
    b.keys(keys::RIGHT).await;
    b.keys(keys::RIGHT).await;
    assert!(tab_selected(&b, "projects").await);

    // Remove the create URL template: saving is refused, and the error shows at that field
    // on the SOURCE tab.
    b.find("#tab-source").await.click().await;
    b.find("#f-create_url_template").await.clear().await;
    b.find_text("#create-url-preview", "no “create issue” shortcut")
        .await;
    b.find("#tab-projects").await.click().await;
    b.find("label[for=\"f-projects-specific\"]")
        .await
        .click()
        .await;
    b.find("#project-options").await;
    shot(&b, "editor-projects").await;
    assert_every_input_labelled(&b, "the editor").await;
    b.find("#save-source").await.click().await;
    let error = field_error(&b, "create_url_template").await;
    assert!(error.contains("create URL template"), "{error}");
    assert!(
        tab_selected(&b, "source").await,
        "switched to the SOURCE tab"
    );
    assert_eq!(b.focused_id().await, "f-create_url_template");
    assert!(
        b.find("#tab-source .tab-dot").await.displayed().await,
        "the tab shows it holds an error"
    );
    // Nothing typed was lost.
    assert_eq!(b.find("#f-display_name").await.value().await, "Our Jira");
    assert_eq!(b.find("#f-auth-email").await.value().await, EMAIL);
    assert_eq!(b.find("#f-auth-api-token").await.value().await, TOKEN);
    assert!(b.present("#f-projects-specific").await.checked().await);
    b.screenshot("editor-error-create-template").await;

    // Fix it; now zero specific projects is refused at the project list.
    b.find("#f-create_url_template")
        .await
        .send_keys("{baseUrl}/secure/CreateIssue!default.jspa")
        .await;
    b.gone("[data-field=\"create_url_template\"] > .field-error")
        .await;
    b.find("#save-source").await.click().await;
    let error = field_error(&b, "projects.ids").await;
    assert!(error.contains("at least one project"), "{error}");
    assert!(tab_selected(&b, "projects").await);
    b.screenshot("editor-error-projects").await;
    assert_eq!(count_sources(&app).await, 0, "nothing was stored");

    // Pick a project and save.
    b.find("#project-options input[data-project-name=\"Web shop\"]")
        .await
        .click()
        .await;
    assert_eq!(b.find("#projects-count").await.text().await, "1 selected");
    b.find("#save-source").await.click().await;
    let tr = b.find(&row("Our Jira")).await;
    let text = tr.text().await;
    assert!(text.contains("Jira Cloud"), "{text}");
    assert!(text.contains(&jira.url), "{text}");
    assert!(text.contains("Web shop"), "{text}");
    // The draft's passed test before the first save is kept on the new row.
    assert!(text.contains("Connected as Mia Krystof"), "{text}");
    assert!(
        b.find(&format!("{} .enabled-toggle", row("Our Jira")))
            .await
            .checked()
            .await
    );

    // The token is stored, but never shown: not in the page, not in the API.
    let stored = source_json(&app, "Our Jira").await;
    assert_eq!(stored["secrets_set"], json!(["api-token"]));
    assert_eq!(stored["auth_fields"], json!({ "email": EMAIL }));
    assert_eq!(
        stored["projects"],
        json!({"mode": "specific", "ids": [web]})
    );
    assert_eq!(stored["capabilities"]["create_issues"], true);
    assert_eq!(stored["capabilities"]["add_comments"], true);
    assert!(!b.page_html().await.contains(TOKEN));
    b.find_text(&format!("{} .health", row("Our Jira")), "No calls yet")
        .await;
    shot(&b, "sources-list").await;

    // Test: success, in the row.
    let ok = test_row(&b, "Our Jira", "ok").await;
    assert!(
        ok.contains("Connected as Mia Krystof (mia@example.com)"),
        "{ok}"
    );
    assert_eq!(source_json(&app, "Our Jira").await["last_test"]["ok"], true);
    // The health column follows the test, with the headroom the tracker announced.
    let health = format!("{} .health", row("Our Jira"));
    b.find_text(&health, "Healthy").await;
    b.find_text(&health, "12 of 100 requests left").await;
    b.screenshot("sources-list-tested").await;

    // Edit: the secret shows as set, blank, and can be replaced.
    b.find(&format!("{} a.edit", row("Our Jira")))
        .await
        .click()
        .await;
    assert_eq!(
        b.find("#source-editor h1").await.text().await,
        "Edit “Our Jira”"
    );
    let secret = b.find("#f-auth-api-token").await;
    assert_eq!(secret.value().await, "");
    assert_eq!(
        secret.attr("placeholder").await.as_deref(),
        Some("set — leave blank to keep")
    );
    b.find("[data-secret-set=\"api-token\"]").await;
    assert_eq!(b.find("#f-auth-email").await.value().await, EMAIL);
    assert!(!b.page_html().await.contains(TOKEN));
    b.find("#tab-projects").await.click().await;
    assert!(b.find("#f-projects-specific").await.checked().await);
    assert!(
        b.find("#project-options input[data-project-name=\"Web shop\"]")
            .await
            .checked()
            .await
    );
    assert!(
        !b.find("#project-options input[data-project-name=\"Mobile app\"]")
            .await
            .checked()
            .await
    );
    b.find("#tab-source").await.click().await;
    shot(&b, "editor-edit").await;
    // A required field left empty is refused at that field.
    b.find("#f-auth-email").await.clear().await;
    b.find("#save-source").await.click().await;
    let error = field_error(&b, "auth.fields.email").await;
    assert!(error.contains("Email is required"), "{error}");
    assert_eq!(b.focused_id().await, "f-auth-email");
    b.find("#f-auth-email").await.send_keys(EMAIL).await;
    // Replace the token with a wrong one; leave everything else.
    secret.send_keys(WRONG).await;
    b.find("#save-source").await.click().await;
    b.find(&row("Our Jira")).await;
    let failed = test_row(&b, "Our Jira", "fail").await;
    assert!(failed.contains("rejected the credentials"), "{failed}");
    b.find_text(&health, "Failing").await;
    b.find_text(&health, "Last call failed: unauthorized").await;
    b.screenshot("sources-list-test-failed").await;

    // Disable: the toggle asks first, with the links it stops; cancelled, nothing changes and
    // the focus stays on the toggle.
    let toggle = format!("{} .enabled-toggle", row("Our Jira"));
    b.find(&toggle).await.click().await;
    b.find_text("#disable-impact", "No links use this source")
        .await;
    b.find("#confirm-cancel").await.click().await;
    assert!(b.find(&toggle).await.checked().await);
    assert_eq!(source_json(&app, "Our Jira").await["enabled"], true);
    let focused = "return document.activeElement.classList.contains('enabled-toggle');";
    assert_eq!(b.execute(focused, vec![]).await, json!(true), "focus kept");
    // Confirmed, the source is disabled, and the test still runs on a disabled source.
    b.find(&toggle).await.click().await;
    b.find_text("#disable-impact", "No links").await;
    b.find("#confirm-ok").await.click().await;
    b.find_text(&format!("{} .switch-text", row("Our Jira")), "Disabled")
        .await;
    assert_eq!(source_json(&app, "Our Jira").await["enabled"], false);
    let failed = test_row(&b, "Our Jira", "fail").await;
    assert!(failed.contains("rejected the credentials"), "{failed}");
    // Put the right token back (edit, while disabled) and test again.
    b.find(&format!("{} a.edit", row("Our Jira")))
        .await
        .click()
        .await;
    assert!(!b.find("#f-enabled").await.checked().await);
    b.find("#f-auth-api-token").await.send_keys(TOKEN).await;
    // The edit can be tried before it is saved: the new token works (the row still says the
    // old one failed until the edit is saved).
    b.find("#test-draft").await.click().await;
    b.find_text("#draft-result .test-result.ok", "Connected as Mia Krystof")
        .await;
    assert_eq!(
        source_json(&app, "Our Jira").await["last_test"]["ok"],
        false
    );
    b.find("#f-auth-api-token")
        .await
        .send_keys(keys::ENTER)
        .await;
    b.find(&row("Our Jira")).await;
    let ok = test_row(&b, "Our Jira", "ok").await;
    assert!(ok.contains("Connected as Mia Krystof"), "{ok}");
    b.find(&format!("{} .enabled-toggle", row("Our Jira")))
        .await
        .click()
        .await;
    b.find_text(&format!("{} .switch-text", row("Our Jira")), "Enabled")
        .await;
    assert_eq!(source_json(&app, "Our Jira").await["enabled"], true);

    // A name another source has is refused at the display name field, after a reload too.
    app.admin(
        "POST",
        "/api/v1/sources",
        Some(json!({
            "provider": "github", "display_name": "GitHub Issues",
            "base_url": "https://github.com/acme/shop",
            "auth": {"type": "none"}, "projects": {"mode": "all"}
        })),
    )
    .await
    .expect(201);
    b.refresh().await;
    b.find(&row("GitHub Issues")).await;
    b.find(&format!("{} a.edit", row("Our Jira")))
        .await
        .click()
        .await;
    let name = b.find("#f-display_name").await;
    name.fill("github issues").await;
    b.find("#tab-capabilities").await.click().await;
    b.find("#save-source").await.click().await;
    let error = field_error(&b, "display_name").await;
    assert!(error.contains("already exists"), "{error}");
    assert!(tab_selected(&b, "source").await);
    assert_eq!(b.focused_id().await, "f-display_name");
    assert_eq!(
        b.find("#f-display_name")
            .await
            .attr("aria-invalid")
            .await
            .as_deref(),
        Some("true")
    );
    // Typing clears the error.
    name.fill("Our Jira Cloud").await;
    b.gone("[data-field=\"display_name\"] > .field-error").await;
    // Cancel: the edit is not saved, so the page asks before discarding it.
    b.find("#cancel-edit").await.click().await;
    b.find_text("#confirm-title", "Discard your changes?").await;
    b.find("#confirm-ok").await.click().await;
    b.find(&row("Our Jira")).await;
    assert_eq!(
        source_json(&app, "Our Jira").await["display_name"],
        "Our Jira"
    );

    // Deleting a source nobody linked says so; cancel keeps it, confirm removes it.
    b.find(&format!("{} button.delete", row("GitHub Issues")))
        .await
        .click()
        .await;
    b.find_text("#delete-impact", "No links use this source")
        .await;
    b.find("#confirm-cancel").await.click().await;
    assert!(b.find(&row("GitHub Issues")).await.displayed().await);
    b.find(&format!("{} button.delete", row("GitHub Issues")))
        .await
        .click()
        .await;
    b.find_text("#delete-impact", "No links").await;
    b.find("#confirm-ok").await.click().await;
    b.gone(&row("GitHub Issues")).await;
    assert_eq!(count_sources(&app).await, 1);
    assert_every_input_labelled(&b, "the list").await;
    assert_no_script_errors(&b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_save_shows_every_error_and_the_list_shows_an_untested_edit_and_a_pause() {
    let _serial = SERIAL.lock().await;
    let app = TestApp::start().await;
    let jira = jira().await;
    let b = Browser::start().await;
    sign_in(&b, &app, &app.admin).await;
    b.find("#add-source").await.click().await;
    b.find("#source-editor").await;
    b.find("#save-source").await.click().await;
    for field in [
        "display_name",
        "base_url",
        "auth.fields.email",
        "auth.fields.api-token",
    ] {
        let error = field_error(&b, field).await;
        assert!(!error.is_empty(), "{field}");
    }
    assert_eq!(b.focused_id().await, "f-display_name", "the first one");
    shot(&b, "editor-every-error").await;
    assert_eq!(count_sources(&app).await, 0);

    // A tested source whose token is replaced is no longer shown as tested.
    let body = json!({
        "provider": "jira-cloud", "display_name": "Our Jira", "base_url": jira.url,
        "auth": {"type": "api-token", "fields": {"email": EMAIL, "api-token": TOKEN}},
        "projects": {"mode": "all"},
    });
    let id = app.create("/api/v1/sources", body.clone()).await;
    app.admin("POST", &format!("/api/v1/sources/{id}/test"), None)
        .await
        .expect(200);
    b.find("#cancel-edit").await.click().await;
    b.find_text(&format!("{} .test-result", row("Our Jira")), "Succeeded")
        .await;
    let mut wrong = body;
    wrong["auth"]["fields"]["api-token"] = json!("a-wrong-token");
    app.admin("PUT", &format!("/api/v1/sources/{id}"), Some(wrong))
        .await
        .expect(200);
    b.refresh().await;
    b.find_text(
        &format!("{} .test-result", row("Our Jira")),
        "Not tested since the last change",
    )
    .await;

    // A source whose tracker asked us to wait shows until when.
    let busy = StandIn::start(Router::new().fallback(|| async {
        (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "120")], "").into_response()
    }))
    .await;
    let limited = json!({
        "provider": "jira-cloud", "display_name": "Busy Jira", "base_url": busy.url,
        "auth": {"type": "api-token", "fields": {"email": EMAIL, "api-token": TOKEN}},
        "projects": {"mode": "all"},
    });
    let id = app.create("/api/v1/sources", limited).await;
    app.admin("POST", &format!("/api/v1/sources/{id}/test"), None)
        .await
        .expect(200);
    b.refresh().await;
    b.find_text(&format!("{} .health", row("Busy Jira")), "Paused until")
        .await;
    assert_no_script_errors(&b).await;
}

async fn count_sources(app: &TestApp) -> usize {
    app.admin("GET", "/api/v1/sources", None)
        .await
        .expect(200)
        .as_array()
        .unwrap()
        .len()
}

// ---------------------------------------------------------------------------------------------
// A member links an issue; the admin disables, then deletes the source

#[tokio::test(flavor = "multi_thread")]
async fn member_links_an_issue_and_sees_it_stop_syncing() {
    let _serial = SERIAL.lock().await;
    let app = TestApp::start().await;
    let jira = jira().await;
    let web = create_project(&app, "Web shop").await;
    let other = create_project(&app, "Back office").await;
    let source = app
        .create(
            "/api/v1/sources",
            json!({
                "provider": "jira-cloud",
                "display_name": "Our Jira",
                "base_url": jira.url,
                "auth": {"type": "api-token", "fields": {"email": EMAIL, "api-token": TOKEN}},
                "issue_url_template": "{baseUrl}/browse/{key}",
                "create_url_template": "{baseUrl}/secure/CreateIssue!default.jspa",
                "key_pattern": "^[A-Z][A-Z0-9_]+-[1-9][0-9]*$",
                "capabilities": {"read_issue_details": true, "create_issues": true},
                "projects": {"mode": "specific", "ids": [web]}
            }),
        )
        .await;
    let member = app
        .admin(
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "Mia", "role": "member", "projects": [web, other]})),
        )
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let b = Browser::start().await;

    // A wrong token is refused at the prompt.
    b.goto(&format!("{}/", app.url)).await;
    let input = b.find("#token").await;
    input.send_keys("its_not-a-token").await;
    input.send_keys(keys::ENTER).await;
    b.find_text("#token-error", "not accepted").await;
    input.fill(&member).await;
    input.send_keys(keys::ENTER).await;

    // Members see the links view only.
    assert_eq!(b.find("#who-role").await.content().await, "member");
    assert_eq!(b.find("#who-name").await.text().await, "Mia");
    assert_eq!(b.find_all("#mainnav a").await.len(), 1);
    b.find("#m-project").await.select(&web).await;
    let object = b.find("#m-object").await;
    object.fill("test-case:TC-42").await;
    object.send_keys(keys::ENTER).await;
    b.find_text("#m-links-title", "Links of test-case:TC-42")
        .await;
    b.find("#m-links-empty").await;

    // The enabled source of the project, its key format and its create-issue shortcut.
    b.find_text("#m-source option", "Our Jira").await;
    assert_eq!(
        b.find("#m-key").await.attr("placeholder").await.as_deref(),
        Some("PROJ-123")
    );
    let create = b.find("#m-create").await;
    assert_eq!(
        create.attr("href").await.unwrap_or_default(),
        format!("{}/secure/CreateIssue!default.jspa", jira.url)
    );
    assert!(create.text().await.contains("Create issue in Our Jira"));
    assert_every_input_labelled(&b, "the links view").await;

    // A key the source's pattern refuses: the error is at the key.
    let key = b.find("#m-key").await;
    key.send_keys("proj 2").await;
    b.find("#m-link").await.click().await;
    let error = field_error(&b, "key").await;
    assert!(!error.is_empty());
    assert_eq!(b.focused_id().await, "m-key");
    assert_eq!(key.value().await, "proj 2", "the input is kept");

    // Link PROJ-2: status, category, assignee, age and the issue's link.
    key.fill("PROJ-2").await;
    key.send_keys(keys::ENTER).await;
    let link = b.find(".link[data-key=\"PROJ-2\"]").await;
    b.find_text(".link[data-key=\"PROJ-2\"] .status", "In Review")
        .await;
    assert_eq!(
        link.find(".status-category").await.text().await,
        "In progress"
    );
    assert_eq!(link.find(".assignee").await.text().await, "Mia Krystof");
    assert_eq!(link.find(".fetched").await.text().await, "fetched just now");
    assert_eq!(
        link.find(".link-summary").await.text().await,
        "Checkout button misaligned"
    );
    assert_eq!(
        link.find("a.link-key")
            .await
            .attr("href")
            .await
            .unwrap_or_default(),
        format!("{}/browse/PROJ-2", jira.url)
    );
    assert_eq!(
        link.find(".link-key").await.attr("target").await.as_deref(),
        Some("_blank")
    );
    assert!(
        b.try_find(".link[data-key=\"PROJ-2\"] .chip.not-syncing")
            .await
            .is_none()
    );

    // A second one, done and unassigned: its status "Done" is its category too, said once.
    key.send_keys("PROJ-3").await;
    key.send_keys(keys::ENTER).await;
    b.find_text(".link[data-key=\"PROJ-3\"] .status", "Done")
        .await;
    assert!(
        b.try_find(".link[data-key=\"PROJ-3\"] .status-category")
            .await
            .is_none()
    );
    assert_eq!(b.find("#m-links-count").await.text().await, "2 links");

    // Refresh asks the tracker again.
    jira.clear();
    b.find(".link[data-key=\"PROJ-2\"] button.refresh")
        .await
        .click()
        .await;
    b.until("the refresh to reach Jira", async || {
        jira.requests()
            .iter()
            .any(|r| r.uri.contains("PROJ-2") || r.method == "POST")
            .then_some(())
    })
    .await;
    b.find_text(".link[data-key=\"PROJ-2\"] .fetched", "fetched just now")
        .await;
    shot(&b, "member-links").await;

    // A key the tracker does not know is linked (the test object may come first), and says so.
    key.send_keys("PROJ-404").await;
    key.send_keys(keys::ENTER).await;
    let missing = b
        .find_text(
            ".link[data-key=\"PROJ-404\"] .link-error",
            "Not found in the tracker",
        )
        .await;
    assert!(missing.text().await.contains("every sync checks again"));
    let id = b
        .find(".link[data-key=\"PROJ-404\"]")
        .await
        .attr("data-link-id")
        .await
        .unwrap();
    app.admin(
        "DELETE",
        &format!("/api/v1/projects/{web}/links/{id}"),
        None,
    )
    .await
    .expect(204);

    // The admin disables the source: the links stay, marked not syncing, and the source is
    // no longer offered.
    app.admin("POST", &format!("/api/v1/sources/{source}/disable"), None)
        .await
        .expect(200);
    b.refresh().await;
    let chip = b
        .find(".link[data-key=\"PROJ-2\"][data-sync-state=\"not-syncing-disabled\"] .chip")
        .await;
    assert_eq!(chip.text().await, "Not syncing — source disabled");
    assert!(
        !b.find(".link[data-key=\"PROJ-2\"] button.refresh")
            .await
            .enabled()
            .await
    );
    b.find("#m-no-sources").await;
    assert!(
        !b.present("#m-link").await.displayed().await,
        "nothing to link through"
    );
    assert_eq!(
        b.find(".link[data-key=\"PROJ-2\"] .status")
            .await
            .text()
            .await,
        "In Review",
        "the last known status stays"
    );
    app.admin("POST", &format!("/api/v1/sources/{source}/enable"), None)
        .await
        .expect(200);

    // The admin deletes it from the list; the confirmation counts the links left without sync.
    sign_out(&b).await;
    sign_in(&b, &app, &app.admin).await;
    b.find(&format!("{} button.delete", row("Our Jira")))
        .await
        .click()
        .await;
    let impact = b
        .find_text(
            "#delete-impact",
            "2 links in 1 project will be left without sync",
        )
        .await;
    assert!(impact.text().await.contains("stay visible"));
    b.screenshot("delete-confirmation").await;
    b.find("#confirm-ok").await.click().await;
    b.find("#sources-empty").await;

    // Back as the member: the links are still there, marked as not syncing.
    sign_out(&b).await;
    sign_in(&b, &app, &member).await;
    let chip = b
        .find(".link[data-key=\"PROJ-2\"][data-sync-state=\"not-syncing-deleted\"] .chip")
        .await;
    assert_eq!(chip.text().await, "Not syncing — source deleted");
    let link = b.find(".link[data-key=\"PROJ-2\"]").await;
    assert!(link.text().await.contains("via Our Jira"));
    assert_eq!(link.find(".status").await.text().await, "In Review");
    assert_eq!(link.find(".assignee").await.text().await, "Mia Krystof");
    b.find("#m-no-sources").await;
    shot(&b, "member-links-not-syncing").await;

    // The other project has no link and no source.
    b.find("#m-project").await.select(&other).await;
    b.find_text("#m-links-count", "0 links").await;
    b.find("#m-no-sources").await;
    assert_no_script_errors(&b).await;
}

// ---------------------------------------------------------------------------------------------
// The editor is driven by what each plugin describes

#[tokio::test(flavor = "multi_thread")]
async fn editor_fields_follow_every_provider_description() {
    let _serial = SERIAL.lock().await;
    let app = TestApp::start().await;
    let providers = app.admin("GET", "/api/v1/providers", None).await;
    let providers = providers.expect(200).as_array().unwrap().clone();
    assert!(providers.len() >= 6, "every shipped plugin is loaded");
    let b = Browser::start().await;
    sign_in(&b, &app, &app.admin).await;
    b.goto(&format!("{}/#/sources/new", app.url)).await;
    b.find("#source-editor").await;

    for p in &providers {
        let id = p["id"].as_str().unwrap();
        b.find("#f-provider").await.select(id).await;
        b.find_text("#f-base_url-help", p["base_url_example"].as_str().unwrap())
            .await;
        assert_eq!(
            b.find("#f-base_url")
                .await
                .attr("placeholder")
                .await
                .unwrap_or_default(),
            p["base_url_example"].as_str().unwrap(),
            "{id}"
        );
        // The auth types are the provider's, in its order.
        let options: Vec<String> = {
            let mut out = Vec::new();
            for o in b.find_all("#f-auth_type option").await {
                out.push(o.attr("value").await.unwrap_or_default());
            }
            out
        };
        let declared: Vec<String> = p["auth_types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(options, declared, "{id}");
        for auth in p["auth_types"].as_array().unwrap() {
            let auth_id = auth["id"].as_str().unwrap();
            b.find("#f-auth_type").await.select(auth_id).await;
            b.find_content("#auth-fields .auth-title", auth["label"].as_str().unwrap())
                .await;
            let fields = auth["fields"].as_array().unwrap();
            let shown = b.find_all("#auth-fields input[data-auth-field]").await;
            assert_eq!(shown.len(), fields.len(), "{id}/{auth_id}");
            for (input, field) in shown.iter().zip(fields) {
                let name = field["name"].as_str().unwrap();
                assert_eq!(input.attr("data-auth-field").await.as_deref(), Some(name));
                let kind = if field["secret"] == true {
                    "password"
                } else {
                    "text"
                };
                assert_eq!(
                    input.attr("type").await.as_deref(),
                    Some(kind),
                    "{id}/{auth_id}/{name}"
                );
                let label = label_of(&b, &format!("f-auth-{name}")).await;
                assert!(
                    label.contains(field["label"].as_str().unwrap()),
                    "{id}/{auth_id}/{name}: {label}"
                );
                if let Some(help) = field["help"].as_str() {
                    let text = b.find(&format!("#f-auth-{name}-help")).await.text().await;
                    assert!(text.contains(help), "{id}/{auth_id}/{name}: {text}");
                }
            }
            if fields.is_empty() {
                b.find("#auth-none").await;
            }
        }
        // Settings, and the provider's suggested templates and pattern.
        for setting in p["settings"].as_array().unwrap() {
            let name = setting["name"].as_str().unwrap();
            let label = label_of(&b, &format!("f-setting-{name}")).await;
            assert!(
                label.contains(setting["label"].as_str().unwrap()),
                "{label}"
            );
        }
        assert_eq!(
            b.find("#f-issue_url_template").await.value().await,
            p["default_issue_url_template"].as_str().unwrap(),
            "{id}"
        );
        assert_eq!(
            b.find("#f-key_pattern").await.value().await,
            p["default_key_pattern"].as_str().unwrap_or_default(),
            "{id}"
        );
        assert_eq!(
            b.find("#f-sample_key").await.value().await,
            p["key_example"].as_str().unwrap(),
            "{id}"
        );
        if p["default_key_pattern"].is_string() {
            b.find("#key-match.yes").await;
        }
        // The capabilities its plugin does not serve say why (e.g. "not supported by this
        // plugin (contract 1.0)"); the others say nothing.
        for cap in ["add_comments", "process_webhooks"] {
            let why = p["capabilities"]["unsupported"][cap].as_str().unwrap_or("");
            let support = b.present(&format!("#f-cap-{cap}-support")).await;
            let shown = support.content().await;
            assert_eq!(shown.to_lowercase(), why.to_lowercase(), "{id}/{cap}");
        }
    }
    assert_every_input_labelled(&b, "the editor").await;
    assert_no_script_errors(&b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn page_and_assets_are_served_with_their_types() {
    let app = TestApp::start().await;
    for (path, kind, needle) in [
        ("/", "text/html", "/assets/app.js"),
        ("/assets/app.css", "text/css", ".editor"),
        ("/assets/app.js", "text/javascript", "/api/v1"),
    ] {
        let resp = app.call("GET", path, None, None).await;
        assert_eq!(resp.status, 200, "{path}");
        assert!(
            resp.headers
                .contains(&format!("\"content-type\": \"{kind}")),
            "{path}: {}",
            resp.headers
        );
        assert!(resp.text.contains(needle), "{path}");
    }
    // The page loads nothing from elsewhere.
    let html = app.call("GET", "/", None, None).await.text;
    for external in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!html.contains(external), "{external}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_revoked_mid_session_returns_to_sign_in_with_the_reason() {
    let _serial = SERIAL.lock().await;
    let app = TestApp::start().await;
    let created = app
        .admin(
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "Second admin", "role": "admin"})),
        )
        .await;
    let created = created.expect(201).clone();
    let b = Browser::start().await;
    sign_in(&b, &app, created["token"].as_str().unwrap()).await;
    b.find("#mainnav a[data-nav=\"links\"]").await;

    // Another admin revokes the token; the next view this one opens meets the revocation.
    let id = created["id"].as_str().unwrap();
    app.admin("DELETE", &format!("/api/v1/tokens/{id}"), None)
        .await
        .expect(204);
    b.find("#mainnav a[data-nav=\"links\"]").await.click().await;
    let error = b.find_text("#token-error", "no longer accepted").await;
    assert!(error.text().await.contains("Sign in again"));
    assert!(
        b.try_find(".empty h2").await.is_none(),
        "no 'Something went wrong' over the sign-in form"
    );
    assert!(!b.present("#topbar").await.displayed().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn leaving_an_editor_with_unsaved_changes_asks_first() {
    let _serial = SERIAL.lock().await;
    let app = TestApp::start().await;
    let b = Browser::start().await;
    sign_in(&b, &app, &app.admin).await;
    b.find("#add-source").await.click().await;
    b.find("#f-display_name").await.send_keys("Half done").await;

    // Cancel asks; keeping the changes stays in the editor with them.
    b.find("#cancel-edit").await.click().await;
    b.find_text("#confirm-title", "Discard your changes?").await;
    b.find("#confirm-cancel").await.click().await;
    assert_eq!(b.find("#f-display_name").await.value().await, "Half done");
    assert!(b.execute("return location.hash;", vec![]).await == json!("#/sources/new"));

    // Discarding leaves; an untouched editor leaves without asking.
    b.find("#cancel-edit").await.click().await;
    b.find_text("#confirm-title", "Discard your changes?").await;
    b.find("#confirm-ok").await.click().await;
    b.find("#add-source").await.click().await;
    b.find("#f-display_name").await;
    b.find("#cancel-edit").await.click().await;
    b.find("#add-source").await;
    assert!(!b.present("#confirm").await.displayed().await);
}

// ---------------------------------------------------------------------------------------------
// Many sources, phone width

/// Stores `n` GitHub sources, "Source 01"..., every third one disabled, all projects, with
/// long base URLs.
async fn store_sources(app: &TestApp, n: usize) {
    let template = json!({"provider": "github", "display_name": "Template",
        "base_url": "https://github.com/acme/shop", "auth": {"type": "none"},
        "projects": {"mode": "all"}});
    app.store_copies(template, n, |i, record| {
        record["display_name"] = json!(format!("Source {i:02}"));
        record["base_url"] = json!(format!(
            "https://github.com/acme-corporation-engineering/a-repository-with-a-rather-long-name-{i:02}"
        ));
        record["enabled"] = json!(i % 3 != 0);
        true
    })
    .await;
}

async fn rows(b: &Browser) -> Vec<String> {
    let names = b
        .execute(
            "return [...document.querySelectorAll('#sources tbody tr')].map(r => r.dataset.name);",
            vec![],
        )
        .await;
    serde_json::from_value(names).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_searches_filters_sorts_and_pages_many_sources() {
    let _serial = SERIAL.lock().await;
    let app = TestApp::start().await;
    store_sources(&app, 60).await;
    let b = Browser::start().await;
    sign_in(&b, &app, &app.admin).await;

    // One page of 25, with where it is and the way on.
    b.find_text("#sources-range", "1–25 of 60 sources").await;
    assert_eq!(rows(&b).await.len(), 25);
    assert_eq!(rows(&b).await[0], "Source 01");
    assert!(!b.find("#sources-prev").await.enabled().await);
    b.find("#sources-next").await.click().await;
    b.find_text("#sources-range", "26–50 of 60").await;
    assert_eq!(rows(&b).await[0], "Source 26");
    assert_eq!(
        b.focused_id().await,
        "sources-next",
        "the focus stays on Next"
    );
    b.find_text("#sources-page", "Page 2 of 3").await;
    shot(&b, "sources-many").await;

    // Search (by name or base URL) and filters start again at page 1.
    b.find("#s-q").await.send_keys("source 4").await;
    b.find_text("#sources-range", "10 sources").await;
    assert!(!b.present("#sources-next").await.displayed().await);
    b.find("#s-enabled").await.select("false").await;
    b.find_text("#sources-range", "3 sources").await;
    assert_eq!(rows(&b).await, ["Source 42", "Source 45", "Source 48"]);
    b.find("#s-q").await.clear().await;
    b.find("#s-q").await.send_keys("NAME-07").await;
    b.find_text("#sources-range", "No source matches").await;
    b.find("#sources-no-match").await;
    shot(&b, "sources-no-match").await;

    // Clearing shows everything again; the sort reverses; an edit and back keeps the query.
    b.find("#s-clear").await.click().await;
    b.find_text("#sources-range", "1–25 of 60 sources").await;
    b.find("#s-sort").await.select("-name").await;
    b.until_js(
        "the list sorted Z to A",
        "const r = document.querySelector('#sources tbody tr'); return r && r.dataset.name === 'Source 60';",
    )
    .await;
    b.find(&format!("{} a.edit", row("Source 60")))
        .await
        .click()
        .await;
    b.find("#cancel-edit").await.click().await;
    b.find_text("#sources-range", "1–25 of 60").await;
    assert_eq!(b.find("#s-sort").await.value().await, "-name");
    assert_eq!(rows(&b).await[0], "Source 60");
    assert_every_input_labelled(&b, "the sources list").await;

    // The audit log's source filter finds one among many.
    b.find("#mainnav a[data-nav=\"audit\"]").await.click().await;
    b.find("#a-source-q").await.send_keys("source 42").await;
    b.until_js(
        "the audit's source choices narrowed to Source 42",
        "const o = [...document.querySelectorAll('#a-source option')].map(o => o.textContent);
         return o.join() === 'All changes,Source 42';",
    )
    .await;
    assert_every_input_labelled(&b, "the audit log").await;

    // A project member picks among many sources by searching, and sees links 50 at a time.
    let (project, member) = app.project_with_member("Many").await;
    let offline = app
        .create(
            "/api/v1/sources",
            json!({"provider": "github", "display_name": "No details", "auth": {"type": "none"},
                   "base_url": "https://github.com/acme/shop", "projects": {"mode": "all"},
                   "capabilities": {"read_issue_details": false}}),
        )
        .await;
    let keys: Vec<String> = (1..=55).map(|n| n.to_string()).collect();
    app.call(
        "POST",
        &format!("/api/v1/projects/{project}/links/bulk"),
        Some(&member),
        Some(json!({"test_object": "test-case:TC-1", "source_id": offline, "keys": keys})),
    )
    .await
    .expect(200);
    sign_out(&b).await;
    sign_in(&b, &app, &member).await;
    let search = b.find("#m-source-q").await;
    assert!(
        search.displayed().await,
        "40 sources: the picker offers a search"
    );
    b.find_text("#m-links-count", "55 links").await;
    assert_eq!(b.find_all("#m-links > li.link").await.len(), 50);
    let more = b.find("#m-more-links").await;
    assert!(more.text().await.contains("50 of 55 shown"));
    more.click().await;
    b.until_js(
        "the next page of links",
        "return document.querySelectorAll('#m-links > li.link').length === 55;",
    )
    .await;
    assert!(!b.present("#m-more-links").await.displayed().await);
    let focused = "return document.activeElement.closest('li').dataset.key;";
    assert_eq!(
        b.execute(focused, vec![]).await,
        json!("55"),
        "on the last link"
    );
    search.send_keys("source 07").await;
    b.until_js(
        "the picker narrowed to Source 07",
        "const o = [...document.querySelectorAll('#m-source option')].map(o => o.textContent);
         return o.length === 1 && o[0].startsWith('Source 07');",
    )
    .await;
    b.find("#m-source-q").await.send_keys("9").await;
    b.find_text("#m-source-help", "No source matches").await;
    shot(&b, "links-source-search").await;
    assert_every_input_labelled(&b, "the links view").await;
    assert_no_script_errors(&b).await;
}

/// Fails naming every visible element whose right edge passes the viewport's, or that breaks
/// words anywhere (`word-break: break-all`) instead of only a word too long for its line.
async fn assert_nothing_off_screen(b: &Browser, where_: &str) {
    let breaking = b
        .execute(
            "return [...document.querySelectorAll('body *')]
               .filter(e => ['break-all', 'break-word'].includes(getComputedStyle(e).wordBreak))
               .map(e => e.tagName + '.' + e.className);",
            vec![],
        )
        .await;
    assert_eq!(breaking, json!([]), "mid-word breaks on {where_}");
    let off = b
        .execute(
            "const width = document.documentElement.clientWidth;
             return [...document.querySelectorAll('body *')]
               .filter(e => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden')
               .filter(e => !e.closest('.visually-hidden, thead, dialog:not([open])'))
               .filter(e => e.getBoundingClientRect().right > width + 0.5)
               .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className
                    + ' right=' + Math.round(e.getBoundingClientRect().right) + ' > ' + width);",
            vec![],
        )
        .await;
    assert_eq!(off, json!([]), "off-screen on {where_}");
}

#[tokio::test(flavor = "multi_thread")]
async fn at_phone_width_rows_are_cards_and_nothing_is_off_screen() {
    let _serial = SERIAL.lock().await;
    let app = TestApp::start().await;
    store_sources(&app, 4).await;
    let (_, member) = app.project_with_member("Phone").await;
    let b = Browser::start().await;
    b.phone().await;
    b.goto(&format!("{}/", app.url)).await;
    b.find("#token").await;
    assert_nothing_off_screen(&b, "sign-in").await;
    shot(&b, "phone-sign-in").await;
    sign_in(&b, &app, &app.admin).await;
    b.find_text("#sources-range", "4 sources").await;
    assert_nothing_off_screen(&b, "the sources list").await;
    assert_accessible(&b, "the sources list at phone width").await;
    let sign_out_button = b.find("#sign-out").await;
    assert!(sign_out_button.displayed().await);
    let actions = b
        .execute(
            "const width = document.documentElement.clientWidth;
             return [...document.querySelectorAll('#sources tbody tr')].flatMap(r =>
               [...r.querySelectorAll('.test, .edit, .delete, .enabled-toggle')].map(e => {
                 const box = e.getBoundingClientRect();
                 return box.width > 0 && box.left >= 0 && box.right <= width;
               }));",
            vec![],
        )
        .await;
    assert_eq!(
        actions,
        json!(vec![true; 16]),
        "every row's actions are on screen"
    );
    // A long base URL is cut, whole in its title and when it has the focus.
    let url = b.find(&format!("{} .base-url", row("Source 01"))).await;
    assert!(url.attr("title").await.unwrap().ends_with("long-name-01"));
    let cut = "const e = document.querySelector('tr[data-name=\"Source 01\"] .base-url');
               return e.scrollWidth > e.clientWidth;";
    assert_eq!(
        b.execute(cut, vec![]).await,
        json!(true),
        "cut with an ellipsis"
    );
    b.execute(
        "document.querySelector('tr[data-name=\"Source 01\"] .base-url').focus();",
        vec![],
    )
    .await;
    assert_eq!(b.execute(cut, vec![]).await, json!(false), "whole on focus");
    shot(&b, "phone-sources").await;

    b.execute("window.scrollTo(0, 0);", vec![]).await;
    b.find("#add-source").await.click().await;
    b.find("#f-display_name").await;
    assert_nothing_off_screen(&b, "the editor").await;
    shot(&b, "phone-editor").await;
    b.find("#cancel-edit").await.click().await;
    for (screen, ready) in [
        ("tokens", "#tokens tbody tr"),
        ("audit", "#audit tbody tr"),
        ("plugins", "#plugins tbody tr"),
        ("sources-as-code", "#x-file"),
    ] {
        b.goto(&format!("{}/#/{screen}", app.url)).await;
        b.find(ready).await;
        assert_nothing_off_screen(&b, screen).await;
        assert_accessible(&b, &format!("{screen} at phone width")).await;
        assert!(b.find("#sign-out").await.displayed().await);
        shot(&b, &format!("phone-{screen}")).await;
    }
    sign_out(&b).await;
    sign_in(&b, &app, &member).await;
    b.find("#m-source").await;
    assert_nothing_off_screen(&b, "the links view").await;
    assert!(b.find("#sign-out").await.displayed().await);
    shot(&b, "phone-links").await;
    assert_no_script_errors(&b).await;
}

// ---------------------------------------------------------------------------------------------
// Accessibility: axe-core on every view

/// axe-core's version, as `scripts/test.sh` installs it into `target/axe`.
const AXE: &str = "axe/node_modules/axe-core/axe.min.js";

/// Runs axe-core (from npm, installed by `scripts/test.sh`) in the page as it is now and
/// fails listing every violation with the elements at fault.
async fn assert_accessible(b: &Browser, where_: &str) {
    let path = integration_tests::target_dir().join(AXE);
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is not installed ({}: {e}): `bash scripts/test.sh` installs it, or run \
             `npm install --prefix target/axe axe-core@4.14.1`",
            path.display()
        )
    });
    let run = "window.__axe = null;
        axe.run(document).then(
          r => { window.__axe = r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help
                   + ' at ' + v.nodes.slice(0, 6).map(n => n.target.join(' ')).join(', ')); },
          e => { window.__axe = ['axe-core failed: ' + e]; });";
    b.execute(&format!("{source}\n{run}"), vec![]).await;
    let found = b
        .until_js("axe-core's results", "return window.__axe;")
        .await;
    assert_eq!(found, json!([]), "axe-core violations on {where_}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_view_has_no_axe_core_violation() {
    let _serial = SERIAL.lock().await;
    let app = TestApp::start().await;
    let jira = jira().await;
    let (project, member) = app.project_with_member("Web shop").await;
    let b = Browser::start().await;

    // Sign-in, plain and with an error; the empty sources list.
    b.goto(&format!("{}/", app.url)).await;
    b.find("#token").await;
    assert_accessible(&b, "sign-in").await;
    let input = b.find("#token").await;
    input.send_keys("its_not-a-token").await;
    input.send_keys(keys::ENTER).await;
    b.find_text("#token-error", "not accepted").await;
    assert_accessible(&b, "sign-in with an error").await;
    input.fill(&app.admin).await;
    input.send_keys(keys::ENTER).await;
    b.find("#sources-empty").await;
    assert_accessible(&b, "the empty sources list").await;

    // The editor: every tab, and a save with errors.
    b.find("#add-source").await.click().await;
    b.find("#f-display_name").await;
    assert_accessible(&b, "the editor's source tab").await;
    for tab in ["capabilities", "projects"] {
        b.find(&format!("#tab-{tab}")).await.click().await;
        assert!(tab_selected(&b, tab).await);
        assert_accessible(&b, &format!("the editor's {tab} tab")).await;
    }
    b.find("input[name=\"projects-mode\"][value=\"specific\"]")
        .await
        .click()
        .await;
    assert_accessible(&b, "the project picker").await;
    b.find("#save-source").await.click().await;
    b.find(".field-error").await;
    assert_accessible(&b, "the editor with errors").await;
    b.find("#cancel-edit").await.click().await;
    b.find_text("#confirm-title", "Discard").await;
    assert_accessible(&b, "the discard dialog").await;
    b.find("#confirm-ok").await.click().await;

    // The list with sources: tested, failing, disabled; the delete dialog; no match.
    let source = app
        .create(
            "/api/v1/sources",
            json!({
                "provider": "jira-cloud", "display_name": "Our Jira", "base_url": jira.url,
                "auth": {"type": "api-token", "fields": {"email": EMAIL, "api-token": TOKEN}},
                "capabilities": {"read_issue_details": true, "create_issues": true},
                "create_url_template": "{baseUrl}/secure/CreateIssue!default.jspa",
                "projects": {"mode": "specific", "ids": [project]}
            }),
        )
        .await;
    store_sources(&app, 3).await;
    b.refresh().await;
    b.find_text("#sources-range", "4 sources").await;
    // Enter on the wrench: the focus stays on it through the test, for a second press.
    let wrench = format!("{} button.test", row("Our Jira"));
    b.execute(
        &format!("document.querySelector('{wrench}').focus();"),
        vec![],
    )
    .await;
    b.keys(keys::ENTER).await;
    b.find(&format!("{} .test-result.ok", row("Our Jira")))
        .await;
    let focused = format!("return document.activeElement.matches('{wrench}');");
    assert_eq!(b.execute(&focused, vec![]).await, json!(true));
    // Its focus ring: a white ring inside a solid indigo one (6.3:1 on white, and the white
    // ring 17:1 on the dark top bar), where a 35% tint was 1.7:1.
    let ring = b
        .execute(
            "return getComputedStyle(document.activeElement).boxShadow;",
            vec![],
        )
        .await;
    let ring = ring.as_str().unwrap_or_default();
    assert!(
        ring.contains("rgb(255, 255, 255)") && ring.contains("rgb(79, 70, 229)"),
        "{ring}"
    );
    assert_accessible(&b, "the sources list").await;
    b.find(&format!("{} button.delete", row("Source 02")))
        .await
        .click()
        .await;
    b.find("#delete-impact[data-links]").await;
    assert_accessible(&b, "the delete dialog").await;
    b.find("#confirm-cancel").await.click().await;
    b.find("#s-q").await.send_keys("nothing like it").await;
    b.find("#sources-no-match").await;
    assert_accessible(&b, "no matching source").await;

    // The members' view with links in every state.
    for key in ["PROJ-1", "PROJ-2", "PROJ-404"] {
        app.call(
            "POST",
            &format!("/api/v1/projects/{project}/links"),
            Some(&member),
            Some(json!({"test_object": "test-case:TC-1", "source_id": source, "key": key})),
        )
        .await
        .expect(201);
    }
    sign_out(&b).await;
    sign_in(&b, &app, &member).await;
    b.find(".link[data-key=\"PROJ-2\"] .status").await;
    b.find(".link[data-key=\"PROJ-404\"] .link-error").await;
    assert_accessible(&b, "the members' links").await;

    // A key's focus shows the issue's details, as its description.
    b.execute(
        "document.querySelector('.link[data-key=\"PROJ-2\"] .link-key').focus();",
        vec![],
    )
    .await;
    let tip = b.find(".link[data-key=\"PROJ-2\"] .issue-tip").await;
    assert!(tip.displayed().await);
    let text = tip.text().await;
    for part in [
        "Checkout button misaligned",
        "Status In Review (In progress)",
        "Assignee Mia Krystof",
        "Linked just now by Web shop member",
        "Opens in Our Jira",
    ] {
        assert!(text.contains(part), "{part:?} in {text:?}");
    }
    assert_accessible(&b, "an issue's details on focus").await;
    shot(&b, "member-links-issue-details").await;
    b.keys(keys::ESCAPE).await;
    assert!(!tip.displayed().await, "Escape dismisses the details");
    b.phone().await;
    b.refresh().await;
    b.find(".link[data-key=\"PROJ-2\"] .status").await;
    assert_accessible(&b, "the members' links at phone width").await;
    assert_no_script_errors(&b).await;
}

// ---------------------------------------------------------------------------------------------
// What an admin does without curl: tokens, the audit log, plugins, sources as code

#[tokio::test(flavor = "multi_thread")]
async fn admin_manages_tokens_audit_plugins_and_sources_as_code_in_the_page() {
    let _serial = SERIAL.lock().await;
    let app = TestApp::start().await;
    let web = create_project(&app, "Web shop").await;
    let b = Browser::start().await;
    sign_in(&b, &app, &app.admin).await;

    // Tokens: errors at their field; a member token of a project, shown once, works.
    b.find("#mainnav a[data-nav=\"tokens\"]")
        .await
        .click()
        .await;
    b.find_text("h1", "API tokens").await;
    b.find(&format!("{} .you", row("preset admin"))).await;
    b.find("#t-create").await.click().await;
    assert!(!field_error(&b, "name").await.is_empty());
    b.find("#t-name").await.send_keys("CI pipeline").await;
    b.find("#t-create").await.click().await;
    assert!(field_error(&b, "projects").await.contains("project"));
    b.find(&format!("#t-project-{web}")).await.click().await;
    b.find("#t-create").await.click().await;
    let value = b.find("#t-value").await.value().await;
    assert_eq!(
        b.focused_id().await,
        "t-value",
        "the value is focused to copy"
    );
    let me = app.call("GET", "/api/v1/me", Some(&value), None).await;
    let me = me.expect(200);
    assert_eq!(
        (&me["name"], &me["role"]),
        (&json!("CI pipeline"), &json!("member"))
    );
    assert_eq!(me["projects"], json!([web]));
    b.find(&row("CI pipeline")).await;
    assert_accessible(&b, "the tokens screen with a new token").await;
    shot(&b, "tokens").await;

    // An admin token has no projects; revoking one stops it at once.
    b.find("#t-done").await.click().await;
    b.find("#t-name").await.send_keys("Second admin").await;
    b.find("#t-role-admin").await.click().await;
    assert!(!b.present("#t-projects").await.displayed().await);
    b.find("#t-create").await.click().await;
    b.find(&format!("{} .role-tag", row("Second admin"))).await;
    b.find(&format!("{} button.revoke", row("CI pipeline")))
        .await
        .click()
        .await;
    b.find_text("#confirm-title", "Revoke “CI pipeline”?").await;
    b.find("#confirm-ok").await.click().await;
    b.gone(&row("CI pipeline")).await;
    let revoked = app.call("GET", "/api/v1/me", Some(&value), None).await;
    assert_eq!(revoked.status, 401);

    // The audit log: newest first, filtered by source, older pages on request.
    let source = app
        .create(
            "/api/v1/sources",
            json!({"provider": "github", "display_name": "Shop GitHub",
                   "base_url": "https://github.com/acme/shop", "auth": {"type": "none"},
                   "projects": {"mode": "all"}}),
        )
        .await;
    app.admin("POST", &format!("/api/v1/sources/{source}/disable"), None)
        .await
        .expect(200);
    for i in 0..55 {
        create_project(&app, &format!("Project {i:02}")).await;
    }
    b.find("#mainnav a[data-nav=\"audit\"]").await.click().await;
    b.find_text("#a-count", "50 changes shown").await;
    let first = b.find("#audit tbody tr").await;
    assert_eq!(
        first.attr("data-action").await.as_deref(),
        Some("project.created")
    );
    b.find("#a-more").await.click().await;
    b.find_text("#a-count", "61 changes shown").await;
    assert_eq!(
        b.focused_id().await,
        "a-end",
        "the end of the log takes the focus"
    );
    assert_accessible(&b, "the audit log").await;
    b.find("#a-source").await.select(&source).await;
    b.until_js(
        "the log of Shop GitHub only",
        "const rows = [...document.querySelectorAll('#audit tbody tr')].map(r => r.dataset.action);
         return rows.join() === 'source.disabled,source.created';",
    )
    .await;
    assert!(
        b.find("#audit tbody tr")
            .await
            .text()
            .await
            .contains("Shop GitHub")
    );
    shot(&b, "audit").await;

    // Plugins: versions, digests and calls; a broken upload is refused with the reason and
    // removing asks first, with the sources it leaves without a plugin.
    b.find("#mainnav a[data-nav=\"plugins\"]")
        .await
        .click()
        .await;
    let github = b.find("tr[data-plugin-id=\"github\"]").await;
    let digest = github.find(".digest").await.attr("title").await.unwrap();
    assert!(
        digest.starts_with("sha-256 ") && digest.len() == 8 + 64,
        "{digest}"
    );
    assert!(github.text().await.contains("calls"));
    assert_eq!(github.find(".signer").await.text().await, "unsigned");
    let broken = app.dir.path().join("broken.wasm");
    std::fs::write(&broken, b"\0asm not really a plugin").unwrap();
    b.find("tr[data-plugin-id=\"github\"] button.upload")
        .await
        .click()
        .await;
    assert_eq!(b.find("#p-id").await.value().await, "github");
    assert_eq!(b.focused_id().await, "p-file");
    b.find("#p-file")
        .await
        .send_keys(broken.to_str().unwrap())
        .await;
    b.find("#p-upload").await.click().await;
    let refusal = b.find("#p-form .banner:not([hidden])").await.text().await;
    assert!(!refusal.is_empty());
    // (Centred first: scrolled to the top edge, the sticky bar would take the click.)
    let remove = "tr[data-plugin-id=\"github\"] button.remove";
    b.execute(
        &format!("document.querySelector('{remove}').scrollIntoView({{block: 'center'}});"),
        vec![],
    )
    .await;
    b.find(remove).await.click().await;
    b.find_text("#plugin-impact", "1 source use it").await;
    assert_accessible(&b, "the remove-plugin dialog").await;
    b.find("#confirm-cancel").await.click().await;
    assert_accessible(&b, "the plugins screen").await;
    shot(&b, "plugins").await;

    // Sources as code: a file's preview says what changes; importing applies it.
    b.find("#mainnav a[data-nav=\"sources\"]")
        .await
        .click()
        .await;
    b.find("#sources-as-code").await.click().await;
    b.find("#x-export").await;
    let file = app.dir.path().join("sources.toml");
    std::fs::write(
        &file,
        "[[sources]]\ndisplay_name = \"Shop GitHub\"\nprovider = \"github\"\n\
         base_url = \"https://github.com/acme/store\"\nprojects = \"all\"\nenabled = false\n\
         auth = { type = \"none\" }\n\n[[sources]]\ndisplay_name = \"New GitHub\"\n\
         provider = \"github\"\nbase_url = \"https://github.com/acme/new\"\nprojects = \"all\"\n\
         auth = { type = \"none\" }\n",
    )
    .unwrap();
    b.find("#x-file")
        .await
        .send_keys(file.to_str().unwrap())
        .await;
    b.find_text("#x-created", "New GitHub").await;
    b.find_text("#x-updated", "Shop GitHub · base_url").await;
    assert_eq!(count_sources(&app).await, 1, "a preview stores nothing");
    assert_accessible(&b, "the import preview").await;
    shot(&b, "sources-as-code").await;
    b.find("#x-apply").await.click().await;
    b.find(&row("New GitHub")).await;
    assert_eq!(count_sources(&app).await, 2);
    assert_no_script_errors(&b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn member_posts_a_comment_from_the_links_view() {
    use integration_tests::comments;
    let _serial = SERIAL.lock().await;
    let app = TestApp::start().await;
    let github = comments::github().await;
    let (project, member) = app.project_with_member("Web shop").await;
    let source = app
        .create(
            "/api/v1/sources",
            json!({
                "provider": "github",
                "display_name": "Shop repo",
                "base_url": "https://github.com/acme/shop",
                "auth": {"type": "api-token", "fields": {"token": comments::TOKEN}},
                "capabilities": {"read_issue_details": false, "add_comments": true},
                "projects": {"mode": "all"},
                "settings": {"api-url": github.url},
            }),
        )
        .await;
    let link = json!({"test_object": "test-case:TC-7", "source_id": source, "key": "#1"});
    let path = format!("/api/v1/projects/{project}/links");
    app.call("POST", &path, Some(&member), Some(link))
        .await
        .expect(201);

    let b = Browser::start().await;
    sign_in(&b, &app, &member).await;
    b.find("#m-project").await.select(&project).await;
    let button = b.find(".link[data-key=\"1\"] .comment").await;
    assert_eq!(
        button.attr("aria-label").await.as_deref(),
        Some("Comment on 1")
    );
    button.click().await;
    let text = b.find("#m-comment").await;
    assert_eq!(label_of(&b, "m-comment").await, "Comment (Markdown)");
    text.send_keys("Run 42 **failed**").await;
    b.find("#confirm-ok").await.click().await;
    b.find_text(".toast", "Comment posted on 1").await;
    assert_no_script_errors(&b).await;
    let sent: Vec<Value> = (github.requests().iter())
        .filter(|r| r.method == "POST")
        .map(|r| r.json())
        .collect();
    assert_eq!(sent, [json!({"body": "Run 42 **failed**"})]);
}

/// With signed plugins required, the plugins screen sends the chosen `.minisig` with an
/// upload: without one, or with another file's, the refusal shows at the signature field; with
/// the right one the upload passes the check.
#[tokio::test(flavor = "multi_thread")]
async fn the_plugins_screen_uploads_a_plugin_with_its_signature() {
    let _serial = SERIAL.lock().await;
    let app = TestApp::start().await;
    let minisign::KeyPair { pk, sk } = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let keys = app.dir.path().join("trusted-keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("acme.pub"), pk.to_box().unwrap().into_string()).unwrap();
    let policy = host::plugin_registry::signatures::SigningPolicy::load(Some(&keys), true);
    app.state.plugins.set_signing(policy.unwrap());
    let wasm = std::fs::canonicalize(integration_tests::plugins_dir().join("github.wasm")).unwrap();
    let sign = |data: &[u8]| {
        let signature = minisign::sign(Some(&pk), &sk, data, None, None).unwrap();
        signature.into_string()
    };
    let (right, wrong) = (
        app.dir.path().join("github.wasm.minisig"),
        app.dir.path().join("other.wasm.minisig"),
    );
    std::fs::write(&right, sign(&std::fs::read(&wasm).unwrap())).unwrap();
    std::fs::write(&wrong, sign(b"another file")).unwrap();

    let b = Browser::start().await;
    sign_in(&b, &app, &app.admin).await;
    b.find("#mainnav a[data-nav=\"plugins\"]")
        .await
        .click()
        .await;
    b.find_text("#p-signature-help", "admits only plugins signed")
        .await;
    b.find("tr[data-plugin-id=\"github\"] button.upload")
        .await
        .click()
        .await;
    b.find("#p-file")
        .await
        .send_keys(wasm.to_str().unwrap())
        .await;
    let signature_error = "[data-field=\"X-Plugin-Signature\"] > .field-error";
    b.find("#p-upload").await.click().await;
    b.find_text(signature_error, "not signed").await;
    b.find("#p-signature")
        .await
        .send_keys(wrong.to_str().unwrap())
        .await;
    b.find("#p-upload").await.click().await;
    b.find_text(signature_error, "does not match").await;
    assert_accessible(&b, "the plugins screen with a signature refused").await;
    b.find("#p-signature")
        .await
        .send_keys(right.to_str().unwrap())
        .await;
    b.find("#p-upload").await.click().await;
    b.find_text(".toast", "already serving").await;
}
