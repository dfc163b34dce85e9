//! Sources as code through the real router: `GET /api/v1/sources/export` writes every source as
//! TOML with secrets as `${ENV_VAR}` references, and `POST /api/v1/sources/import` reproduces
//! them in another (empty) data directory, secrets read from the environment; a file with one
//! bad source among good ones changes nothing and names the source and the field.
//!
//! Every test uses its own display names, so the environment variables an export names
//! (`SRC_<NAME>_<FIELD>`) are unique to it even though tests share the process environment.

use integration_tests::TestApp;
use serde_json::{Value, json};

const JIRA_TOKEN: &str = "canary-jira-5d1c9e0b7a3f4e21-TOKEN";
const TRACKER_TOKEN: &str = "canary-tracker-8f2a6c4d0e1b3957-TOKEN";

/// Sets an environment variable for the imports of this test (names are unique per test).
fn set_env(name: &str, value: &str) {
    // SAFETY: each test sets only variables no other test reads or writes, and the host reads
    // them with `std::env::var` only.
    unsafe { std::env::set_var(name, value) };
}

async fn create_project(app: &TestApp, name: &str) -> String {
    app.create("/api/v1/projects", json!({ "name": name }))
        .await
}

/// Sends a sources file to `POST /api/v1/sources/import`; returns the status and the body.
async fn import(app: &TestApp, text: &str, content_type: &str) -> (u16, Value) {
    let body = Some((content_type, text.as_bytes().to_vec()));
    let r = app
        .call_raw("POST", "/api/v1/sources/import", Some(&app.admin), body)
        .await;
    (r.status, r.body)
}

/// `GET /api/v1/sources/export` as the admin; checks the media type; returns the text.
async fn export(app: &TestApp) -> String {
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/sources/export", app.url))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let media = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(media.starts_with("text/toml"), "{media}");
    resp.text().await.unwrap()
}

/// The admin list of sources without what differs between two data directories: ids,
/// timestamps, the last test; project ids are replaced by names.
async fn comparable_sources(app: &TestApp) -> Value {
    let projects = app.admin("GET", "/api/v1/projects", None).await;
    let names: std::collections::BTreeMap<String, String> = projects
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                p["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut list = app
        .admin("GET", "/api/v1/sources", None)
        .await
        .expect(200)
        .clone();
    for source in list.as_array_mut().unwrap() {
        let map = source.as_object_mut().unwrap();
        for gone in ["id", "created_at", "updated_at", "last_test"] {
            map.remove(gone);
        }
        if let Some(ids) = map["projects"].get_mut("ids") {
            for id in ids.as_array_mut().unwrap() {
                *id = json!(names[id.as_str().unwrap()]);
            }
        }
    }
    list
}

async fn source_id(app: &TestApp, name: &str) -> String {
    let list = app.admin("GET", "/api/v1/sources", None).await;
    list.expect(200)
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["display_name"] == name)
        .unwrap_or_else(|| panic!("no source {name:?}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn secrets_of(app: &TestApp, name: &str) -> std::collections::BTreeMap<String, String> {
    let id = source_id(app, name).await;
    host::sources::load_with_secrets(&app.state, &id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .1
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    let page = app.admin("GET", "/api/v1/audit?limit=500", None).await;
    let body = page.expect(200);
    let events = body
        .get("events")
        .and_then(Value::as_array)
        .or_else(|| body.as_array())
        .unwrap_or_else(|| panic!("audit page: {body}"));
    events
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Creates the sources of the round-trip test in `app`: every kind of field set somewhere.
async fn seed(app: &TestApp, prefix: &str) {
    let alpha = create_project(app, "Alpha").await;
    let beta = create_project(app, "Beta").await;
    let sources = [
        json!({
            "provider": "jira-cloud",
            "display_name": format!("{prefix} Jira"),
            "base_url": "https://acme.atlassian.net/",
            "auth": {"type": "api-token", "fields": {"email": "bot@acme.test", "api-token": JIRA_TOKEN}},
            "issue_url_template": "{baseUrl}/browse/{key}",
            "create_url_template": "{baseUrl}/secure/CreateIssue!default.jspa",
            "key_pattern": "^[A-Z][A-Z0-9]+-\\d+$",
            "enabled": true,
            "capabilities": {"read_issue_details": true, "create_issues": true},
            "projects": {"mode": "specific", "ids": [alpha, beta]},
        }),
        json!({
            "provider": "misbehave",
            "display_name": format!("{prefix} Tracker"),
            "base_url": "https://tracker.example.com",
            "auth": {"type": "api-token", "fields": {"user": "robot", "token": TRACKER_TOKEN}},
            "enabled": false,
            "capabilities": {"add_comments": true},
            "projects": {"mode": "all"},
            "settings": {"mode": "egress", "forbidden-url": "https://tracker.example.com/whoami"},
            "network": {"proxy_url": "http://proxy.example.com:3128"},
        }),
        json!({
            "provider": "github",
            "display_name": format!("{prefix} GitHub"),
            "base_url": "https://github.com/acme/shop",
            "auth": {"type": "none"},
            "projects": {"mode": "all"},
        }),
    ];
    for source in sources {
        app.admin("POST", "/api/v1/sources", Some(source))
            .await
            .expect(201);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn export_then_import_into_an_empty_data_directory_reproduces_the_sources() {
    let first = TestApp::start().await;
    seed(&first, "Roundtrip").await;
    let text = export(&first).await;
    assert!(
        !text.contains(JIRA_TOKEN) && !text.contains(TRACKER_TOKEN),
        "{text}"
    );
    assert!(
        text.contains("\"${SRC_ROUNDTRIP_JIRA_API_TOKEN}\""),
        "{text}"
    );
    assert!(
        text.contains("\"${SRC_ROUNDTRIP_TRACKER_TOKEN}\""),
        "{text}"
    );
    assert!(text.contains("Alpha") && text.contains("Beta"), "{text}");

    // The second service has the projects (by name, with other ids) but no source.
    let second = TestApp::start().await;
    create_project(&second, "Beta").await;
    create_project(&second, "Alpha").await;
    set_env("SRC_ROUNDTRIP_JIRA_API_TOKEN", JIRA_TOKEN);
    set_env("SRC_ROUNDTRIP_TRACKER_TOKEN", TRACKER_TOKEN);
    let (status, report) = import(&second, &text, "application/toml").await;
    assert_eq!(status, 200, "{report}");
    let mut created: Vec<String> = serde_json::from_value(report["created"].clone()).unwrap();
    created.sort();
    assert_eq!(
        created,
        ["Roundtrip GitHub", "Roundtrip Jira", "Roundtrip Tracker"]
    );
    assert_eq!(report["updated"], json!([]));

    assert_eq!(
        comparable_sources(&second).await,
        comparable_sources(&first).await
    );
    assert_eq!(
        secrets_of(&second, "Roundtrip Jira").await["api-token"],
        JIRA_TOKEN
    );
    assert_eq!(
        secrets_of(&second, "Roundtrip Tracker").await["token"],
        TRACKER_TOKEN
    );
    assert!(
        audit_actions(&second)
            .await
            .contains(&"sources.imported".to_string())
    );

    // Importing the same file again changes nothing; a second export is the same file.
    let (status, report) = import(&second, &text, "application/toml").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], json!([]));
    assert_eq!(report["updated"], json!([]));
    assert_eq!(report["unchanged"].as_array().unwrap().len(), 3);
    assert_eq!(export(&second).await, text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_file_changes_nothing_and_names_the_source_and_field() {
    let app = TestApp::start().await;
    create_project(&app, "Gamma").await;
    app.admin(
        "POST",
        "/api/v1/sources",
        Some(json!({
            "provider": "misbehave",
            "display_name": "Broken Keep",
            "base_url": "https://keep.example.com",
            "auth": {"type": "api-token", "fields": {"user": "robot", "token": TRACKER_TOKEN}},
            "projects": {"mode": "all"},
        })),
    )
    .await
    .expect(201);
    let before = app.admin("GET", "/api/v1/sources", None).await.text;
    let audit_before = audit_actions(&app).await;
    set_env("SRC_BROKEN_NEW_TOKEN", "a-new-token");

    let good = r#"
[[sources]]
display_name = "Broken Keep"
provider = "misbehave"
base_url = "https://moved.example.com"
projects = ["Gamma"]
auth = { type = "api-token", fields = { user = "robot" } }

[[sources]]
display_name = "Broken New"
provider = "misbehave"
base_url = "https://new.example.com"
projects = "all"
auth = { type = "api-token", fields = { user = "bot", token = "${SRC_BROKEN_NEW_TOKEN}" } }
"#;
    let cases = [
        (
            "base_url = \"ftp://bad.example.com\"\nprojects = \"all\"\nauth = { type = \"api-token\", fields = { token = \"${SRC_BROKEN_NEW_TOKEN}\" } }",
            "sources[2].base_url",
            None,
        ),
        (
            "base_url = \"https://bad.example.com\"\nprojects = \"all\"\nauth = { type = \"api-token\", fields = { token = \"${SRC_BROKEN_UNSET_TOKEN}\" } }",
            "sources[2].auth.fields.token",
            Some("SRC_BROKEN_UNSET_TOKEN"),
        ),
        (
            "base_url = \"https://bad.example.com\"\nprojects = [\"Gamma\", \"Nope\"]\nauth = { type = \"api-token\", fields = { token = \"${SRC_BROKEN_NEW_TOKEN}\" } }",
            "sources[2].projects[1]",
            Some("Nope"),
        ),
        (
            "base_url = \"https://bad.example.com\"\nprojects = \"all\"\nauth = { type = \"api-token\", fields = { token = \"${SRC_BROKEN_NEW_TOKEN}\", pin = \"1\" } }",
            "sources[2].auth.fields.pin",
            None,
        ),
        (
            "base_url = \"https://bad.example.com\"\nprojects = \"all\"\nauth = { type = \"api-token\", fields = { token = \"${SRC_BROKEN_NEW_TOKEN}\" } }\nnetwork = { proxy_url = \"socks5://proxy\" }",
            "sources[2].network.proxy_url",
            None,
        ),
        // Through the API, only SRC_* variables and no files: the service's own secrets stay
        // out of reach.
        (
            "base_url = \"https://bad.example.com\"\nprojects = \"all\"\nauth = { type = \"api-token\", fields = { token = \"${INTEGRATION_MASTER_KEY}\" } }",
            "sources[2].auth.fields.token",
            Some("SRC_"),
        ),
        (
            "base_url = \"https://bad.example.com\"\nprojects = \"all\"\nauth = { type = \"api-token\", fields = { token = { file = \"/etc/hostname\" } } }",
            "sources[2].auth.fields.token",
            Some("files"),
        ),
    ];
    for (bad, field, mentions) in cases {
        let text = format!(
            "{good}\n[[sources]]\ndisplay_name = \"Broken Bad\"\nprovider = \"misbehave\"\n{bad}\n"
        );
        let (status, body) = import(&app, &text, "application/toml").await;
        assert!((400..500).contains(&status), "{status} {body}");
        assert_eq!(body["error"]["field"], field, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("Broken Bad"), "{message}");
        if let Some(word) = mentions {
            assert!(message.contains(word), "{message}");
        }
        assert_eq!(
            app.admin("GET", "/api/v1/sources", None).await.text,
            before,
            "nothing changed"
        );
    }
    // A name given twice, and a file that is not TOML.
    let twice = format!(
        "{good}\n{}",
        &good[good
            .find("[[sources]]\ndisplay_name = \"Broken New\"")
            .unwrap()..]
    );
    let (status, body) = import(&app, &twice, "application/toml").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "sources[2].display_name", "{body}");
    let (status, _) = import(&app, "[[sources]\n", "application/toml").await;
    assert_eq!(status, 400);
    // A syntax error is placed by line and column; the line itself, which may hold a secret
    // written in the file, is not quoted.
    let typo =
        "[[sources]]\ndisplay_name = \"Typo\"\nauth = { fields = { token = \"tok-4c1d9\" }\n";
    let (status, body) = import(&app, typo, "application/toml").await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("line 3"), "{message}");
    assert!(!body.to_string().contains("tok-4c1d9"), "{body}");
    let (status, _) = import(&app, good, "application/json").await;
    assert_eq!(status, 415);
    assert_eq!(app.admin("GET", "/api/v1/sources", None).await.text, before);
    assert_eq!(audit_actions(&app).await, audit_before, "nothing audited");

    // A file larger than a JSON body (64 KiB) is accepted.
    let big = format!("# {}\nsources = []\n", "x".repeat(100_000));
    let (status, report) = import(&app, &big, "application/toml").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], json!([]));

    // The good part alone imports; the update left out the secret, which is kept.
    let (status, report) = import(&app, good, "application/toml").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["updated"], json!(["Broken Keep"]));
    assert_eq!(report["created"], json!(["Broken New"]));
    assert_eq!(
        secrets_of(&app, "Broken Keep").await["token"],
        TRACKER_TOKEN
    );
    assert_eq!(secrets_of(&app, "Broken New").await["token"], "a-new-token");
    let id = source_id(&app, "Broken Keep").await;
    let kept = app
        .admin("GET", &format!("/api/v1/sources/{id}"), None)
        .await;
    assert_eq!(kept.expect(200)["base_url"], "https://moved.example.com");
    assert!(
        audit_actions(&app)
            .await
            .contains(&"sources.imported".to_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_value_appears_in_an_export() {
    let app = TestApp::start().await;
    seed(&app, "Leak").await;
    // Webhooks set up: neither their URL's token nor their secret is exported.
    let github = source_id(&app, "Leak GitHub").await;
    let hook = app
        .admin(
            "PUT",
            &format!("/api/v1/sources/{github}/webhook"),
            Some(json!({"scheme": "hmac", "generate_secret": true})),
        )
        .await;
    let hook = hook.expect(200).clone();
    let (path, secret) = (
        hook["path"].as_str().unwrap(),
        hook["secret"].as_str().unwrap(),
    );
    let url_token = path.rsplit('/').next().unwrap();
    let text = export(&app).await;
    for secret in [JIRA_TOKEN, TRACKER_TOKEN, secret, url_token] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(
        !text.contains("path_token") && !text.contains("sources.webhook"),
        "{text}"
    );
    // And the file imports where it came from.
    set_env("SRC_LEAK_JIRA_API_TOKEN", JIRA_TOKEN);
    set_env("SRC_LEAK_TRACKER_TOKEN", TRACKER_TOKEN);
    let (status, report) = import(&app, &text, "application/toml").await;
    assert_eq!(status, 200, "{report}");
    // The references stand where the values were, and the header lists them.
    for name in ["SRC_LEAK_JIRA_API_TOKEN", "SRC_LEAK_TRACKER_TOKEN"] {
        assert!(text.contains(&format!("#   {name}: ")), "{text}");
        assert_eq!(
            text.matches(&format!("\"${{{name}}}\"")).count(),
            1,
            "{text}"
        );
    }
    // Members may not export.
    let projects = app.admin("GET", "/api/v1/projects", None).await;
    let alpha = projects.expect(200)[0]["id"].clone();
    let member = app
        .admin(
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "m", "role": "member", "projects": [alpha]})),
        )
        .await;
    let token = member.expect(201)["token"].as_str().unwrap().to_string();
    let denied = app
        .call("GET", "/api/v1/sources/export", Some(&token), None)
        .await;
    assert_eq!(denied.status, 403);
    assert!(!denied.text.contains(JIRA_TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reference_in_a_plain_field_is_refused_and_reveals_nothing() {
    let app = TestApp::start().await;
    let secret = "canary-plain-field-4c7d2e9a1b0f3865-SECRET";
    set_env("SRC_PLAIN_PROBE_TOKEN", secret);
    // `user` is a plain field of the misbehave plugin's api-token auth; `token` is secret.
    let file = |user: &str| {
        format!(
            "[[sources]]\ndisplay_name = \"Plain Probe\"\nprovider = \"misbehave\"\n\
             base_url = \"https://probe.example.com\"\nprojects = \"all\"\n\
             auth = {{ type = \"api-token\", fields = {{ user = {user}, token = \"${{SRC_PLAIN_PROBE_TOKEN}}\" }} }}\n"
        )
    };
    let (status, body) = import(
        &app,
        &file("\"${SRC_PLAIN_PROBE_TOKEN}\""),
        "application/toml",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["field"], "sources[0].auth.fields.user",
        "{body}"
    );
    assert!(!body.to_string().contains(secret), "{body}");
    let listed = app.admin("GET", "/api/v1/sources", None).await;
    assert_eq!(listed.expect(200), &json!([]), "nothing stored");

    // The same file with a plain value imports, the reference filling the secret field.
    let (status, body) = import(&app, &file("\"robot\""), "application/toml").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(secrets_of(&app, "Plain Probe").await["token"], secret);
    let listed = app.admin("GET", "/api/v1/sources", None).await;
    assert!(!listed.text.contains(secret), "{}", listed.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_import_says_what_would_change_and_changes_nothing() {
    let app = TestApp::start().await;
    seed(&app, "Ours").await;
    let file = export(&app).await.replace(
        "https://github.com/acme/shop",
        "https://github.com/acme/store",
    ) + "\n[[sources]]\ndisplay_name = \"New GitHub\"\nprovider = \"github\"\n\
           base_url = \"https://github.com/acme/new\"\nprojects = \"all\"\n\
           auth = { type = \"none\" }\n";
    set_env("SRC_OURS_JIRA_API_TOKEN", JIRA_TOKEN);
    set_env("SRC_OURS_TRACKER_TOKEN", TRACKER_TOKEN);
    let before = app.admin("GET", "/api/v1/sources", None).await.text;
    let audited = audit_actions(&app).await;

    let body = Some(("application/toml", file.as_bytes().to_vec()));
    let path = "/api/v1/sources/import?dry_run=true";
    let preview = app.call_raw("POST", path, Some(&app.admin), body).await;
    let report = preview.expect(200).clone();
    assert_eq!(report["created"], json!(["New GitHub"]), "{report}");
    assert_eq!(report["updated"], json!(["Ours GitHub"]));
    assert_eq!(report["changes"]["Ours GitHub"], json!(["base_url"]));
    assert_eq!(report["unchanged"], json!(["Ours Jira", "Ours Tracker"]));
    assert_eq!(
        app.admin("GET", "/api/v1/sources", None).await.text,
        before,
        "a preview changes no source"
    );
    assert_eq!(audit_actions(&app).await, audited, "and audits nothing");

    // The import itself does what the preview said; a bad file fails the preview alike.
    let (status, done) = import(&app, &file, "application/toml").await;
    assert_eq!((status, &done), (200, &report));
    let broken = file.replace("https://github.com/acme/new", "ftp://github.com/acme/new");
    let body = Some(("application/toml", broken.into_bytes()));
    let refused = app.call_raw("POST", path, Some(&app.admin), body).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused.body["error"]["field"]
            .as_str()
            .unwrap()
            .ends_with("base_url")
    );
    app.admin("POST", "/api/v1/sources/import?dry_run=maybe", None)
        .await
        .expect_error(400, "dry_run");
}
