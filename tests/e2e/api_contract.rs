//! The API contract of issue 14 through the real router: `PATCH /sources/{id}` by JSON merge
//! patch, `ETag` and `If-Match` on sources, and cursor paging on every list.

use integration_tests::TestApp;
use serde_json::{Value, json};

use super::{CANARY, source};

/// What an answer holds for these tests: status, `ETag` and body.
struct Answer {
    status: u16,
    etag: Option<String>,
    body: Value,
}

impl Answer {
    #[track_caller]
    fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        &self.body
    }

    #[track_caller]
    fn etag(&self) -> String {
        self.etag.clone().expect("an ETag header")
    }
}

/// Sends a request as the admin with `headers` and, if given, a body of `content_type`.
async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, String)>,
) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", app.url))
        .bearer_auth(&app.admin);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some((content_type, text)) = body {
        request = request.header("content-type", content_type).body(text);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let etag = (response.headers().get("etag")).map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, etag, body }
}

/// `PATCH` with a merge patch body (`application/merge-patch+json`).
async fn patch(app: &TestApp, path: &str, headers: &[(&str, &str)], body: Value) -> Answer {
    let body = Some(("application/merge-patch+json", body.to_string()));
    send(app, "PATCH", path, headers, body).await
}

/// The stored secrets of source `id`, opened.
async fn secrets(app: &TestApp, id: &str) -> std::collections::BTreeMap<String, String> {
    let (_, secrets) = host::sources::load_with_secrets(&app.state, id)
        .await
        .unwrap();
    secrets
}

/// A source's view without what moves on its own (health) or with every edit.
fn settled(view: &Value) -> Value {
    let mut view = view.clone();
    for moving in ["health", "updated_at"] {
        view.as_object_mut().unwrap().remove(moving);
    }
    view
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merge_patch_edits_one_field_and_keeps_the_rest_and_the_secrets() {
    let app = TestApp::start().await;
    let id = app
        .create(
            "/api/v1/sources",
            source("Patched", "https://t.example.com"),
        )
        .await;
    let path = format!("/api/v1/sources/{id}");
    let before = send(&app, "GET", &path, &[], None).await;
    let before = before.expect(200).clone();

    let renamed = patch(
        &app,
        &path,
        &[],
        json!({"display_name": "Patched (renamed)"}),
    )
    .await;
    let mut expected = settled(&before);
    expected["display_name"] = json!("Patched (renamed)");
    assert_eq!(settled(renamed.expect(200)), expected);
    let stored = send(&app, "GET", &path, &[], None).await;
    assert_eq!(settled(stored.expect(200)), expected);
    assert_eq!(secrets(&app, &id).await["token"], CANARY);
    let audit = app
        .admin("GET", &format!("/api/v1/audit?source={id}"), None)
        .await;
    let event = &audit.expect(200)["events"][0];
    assert_eq!(
        (&event["action"], &event["details"]["changed"]),
        (&json!("source.edited"), &json!(["display_name"]))
    );

    // A nested field, sent as plain application/json: only it changes.
    let body = json!({"capabilities": {"add_comments": false}}).to_string();
    let nested = send(&app, "PATCH", &path, &[], Some(("application/json", body))).await;
    let capabilities = &nested.expect(200)["capabilities"];
    assert_eq!(
        capabilities,
        &json!({"read_issue_details": true, "create_issues": true, "add_comments": false, "process_webhooks": false})
    );

    // A new value of a secret replaces it; the plain field beside it stays.
    let replaced = patch(
        &app,
        &path,
        &[],
        json!({"auth": {"fields": {"token": "second-secret-value"}}}),
    )
    .await;
    let replaced = replaced.expect(200);
    assert_eq!(replaced["auth_fields"], json!({"user": "robot"}));
    assert_eq!(replaced["secrets_set"], json!(["token"]));
    assert_eq!(secrets(&app, &id).await["token"], "second-secret-value");
    assert!(!replaced.to_string().contains("second-secret-value"));

    // Switching provider and auth type drops the secrets, as PUT does.
    let switched = patch(
        &app,
        &path,
        &[],
        json!({"provider": "github", "base_url": "https://github.com/acme/shop",
               "auth": {"type": "none", "fields": null}, "settings": null,
               "issue_url_template": null, "create_url_template": null, "key_pattern": null,
               "capabilities": {"create_issues": false, "add_comments": false}}),
    )
    .await;
    assert_eq!(switched.expect(200)["secrets_set"], json!([]));
    assert!(secrets(&app, &id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn null_in_a_merge_patch_removes_an_optional_field_but_not_a_required_secret() {
    let app = TestApp::start().await;
    let id = app
        .create("/api/v1/sources", source("Nulls", "https://t.example.com"))
        .await;
    let path = format!("/api/v1/sources/{id}");

    let removed = patch(&app, &path, &[], json!({"key_pattern": null})).await;
    let removed = removed.expect(200);
    assert_eq!(removed["key_pattern"], Value::Null);
    assert_eq!(removed["issue_url_template"], "{baseUrl}/issue/{key}");
    let stored = send(&app, "GET", &path, &[], None).await;
    assert_eq!(stored.expect(200)["key_pattern"], Value::Null);

    // The token is required: removing it is a mistake naming it, and nothing changes.
    let etag = stored.etag();
    let refused = patch(
        &app,
        &path,
        &[],
        json!({"auth": {"fields": {"token": null}}}),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["error"]["field"], "auth.fields.token");
    assert_eq!(secrets(&app, &id).await["token"], CANARY);
    assert_eq!(send(&app, "GET", &path, &[], None).await.etag(), etag);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patch_with_a_bad_value_changes_nothing_and_names_the_field() {
    let app = TestApp::start().await;
    let id = app
        .create(
            "/api/v1/sources",
            source("Guarded", "https://t.example.com"),
        )
        .await;
    let path = format!("/api/v1/sources/{id}");
    let before = send(&app, "GET", &path, &[], None).await;
    let before_etag = before.etag();
    let json = |v: Value| Some(("application/merge-patch+json", v.to_string()));
    for (body, field) in [
        (json(json!({"base_url": "not a url"})), "base_url"),
        (json(json!({"enabled": "yes"})), "enabled"),
        (
            json(json!({"auth": {"fields": {"pin": "1234"}}})),
            "auth.fields.pin",
        ),
        (
            json(json!({"projects": {"mode": "specific", "ids": ["prj_none"]}})),
            "projects.ids[0]",
        ),
        (json(json!({"colour": "blue"})), "colour"),
        (json(json!([{"op": "replace"}])), "body"),
        (json(json!("text")), "body"),
    ] {
        let answer = send(&app, "PATCH", &path, &[], body.clone()).await;
        assert!(
            (400..500).contains(&answer.status),
            "{body:?}: {}",
            answer.body
        );
        assert_eq!(
            answer.body["error"]["field"], field,
            "{body:?}: {}",
            answer.body
        );
    }
    let not_json = Some(("application/merge-patch+json", "{".to_string()));
    assert_eq!(send(&app, "PATCH", &path, &[], not_json).await.status, 400);
    let text = Some(("text/plain", "{}".to_string()));
    assert_eq!(send(&app, "PATCH", &path, &[], text).await.status, 415);
    let after = send(&app, "GET", &path, &[], None).await;
    assert_eq!(after.etag(), before_etag);
    assert_eq!(settled(&after.body), settled(&before.body));
    let missing = patch(&app, "/api/v1/sources/src_none", &[], json!({})).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn if_match_guards_edits_and_the_etag_moves_with_every_edit() {
    let app = TestApp::start().await;
    let body = source("Versioned", "https://t.example.com").to_string();
    let body = Some(("application/json", body));
    let created = send(&app, "POST", "/api/v1/sources", &[], body).await;
    let id = created.expect(201)["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/sources/{id}");
    let read = send(&app, "GET", &path, &[], None).await;
    let first = read.etag();
    assert!(first.starts_with('"') && first.ends_with('"'), "{first}");
    assert_eq!(created.etag(), first);

    // Every edit gives a new ETag, even several within one millisecond's reach.
    let mut seen = vec![first.clone()];
    for n in 0..4 {
        let name = json!({"display_name": format!("Versioned {n}")});
        let edited = patch(&app, &path, &[("if-match", seen.last().unwrap())], name).await;
        edited.expect(200);
        assert!(!seen.contains(&edited.etag()), "{seen:?}");
        seen.push(edited.etag());
    }
    for action in ["disable", "enable"] {
        let toggled = send(&app, "POST", &format!("{path}/{action}"), &[], None).await;
        toggled.expect(200);
        assert!(!seen.contains(&toggled.etag()), "{seen:?}");
        seen.push(toggled.etag());
    }
    let current = seen.last().unwrap().clone();
    assert_eq!(send(&app, "GET", &path, &[], None).await.etag(), current);

    // A stale ETag: 412, and nothing changes.
    let stale = [("if-match", first.as_str())];
    let put = Some((
        "application/json",
        source("Overwritten", "https://t.example.com").to_string(),
    ));
    let refused = send(&app, "PUT", &path, &stale, put.clone()).await;
    assert_eq!(refused.status, 412, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "precondition-failed");
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("someone else changed") && message.contains("If-Match"),
        "{message}"
    );
    let refused = patch(&app, &path, &stale, json!({"display_name": "Overwritten"})).await;
    assert_eq!(refused.status, 412, "{}", refused.body);
    let weak = format!("W/{current}");
    let refused = patch(&app, &path, &[("if-match", &weak)], json!({})).await;
    assert_eq!(
        refused.status, 412,
        "a weak tag never matches: {}",
        refused.body
    );
    let unchanged = send(&app, "GET", &path, &[], None).await;
    assert_eq!(unchanged.etag(), current);
    assert_eq!(unchanged.body["display_name"], "Versioned 3");

    // The current ETag, among others, or `*` matches; a malformed header names itself.
    let list = format!("{first}, {current}");
    let put_now = send(&app, "PUT", &path, &[("if-match", &list)], put).await;
    assert_eq!(put_now.expect(200)["display_name"], "Overwritten");
    assert!(!seen.contains(&put_now.etag()), "{seen:?}");
    let any = patch(
        &app,
        &path,
        &[("if-match", "*")],
        json!({"display_name": "Any"}),
    )
    .await;
    any.expect(200);
    let malformed = patch(&app, &path, &[("if-match", "12345")], json!({})).await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.body["error"]["field"], "If-Match");
    let gone = patch(
        &app,
        "/api/v1/sources/src_none",
        &[("if-match", "*")],
        json!({}),
    )
    .await;
    assert_eq!(gone.status, 404);
}

/// The ids of a list answer's items: `items` of a page, or the array (`plugins` and `events`
/// are the lists of `GET /plugins` and `GET /audit`).
fn ids(answer: &Value) -> Vec<String> {
    let items = match answer {
        Value::Array(_) => answer,
        _ if answer["events"].is_array() => &answer["events"],
        _ if answer["plugins"].is_array() => &answer["plugins"],
        _ if answer["plugins"]["items"].is_array() => &answer["plugins"]["items"],
        _ => &answer["items"],
    };
    let id = |item: &Value| match &item["seq"] {
        Value::Null => item["id"].as_str().unwrap().to_string(),
        seq => seq.to_string(),
    };
    items
        .as_array()
        .unwrap_or_else(|| panic!("a list: {answer}"))
        .iter()
        .map(id)
        .collect()
}

/// The `next_cursor` of a page (of `plugins` in `GET /plugins`).
fn next_cursor(answer: &Value) -> Option<String> {
    let cursor = match &answer["plugins"] {
        Value::Object(page) => &page["next_cursor"],
        _ => &answer["next_cursor"],
    };
    cursor.as_str().map(str::to_string)
}

/// Walks `list` `limit` items at a time by cursor, calling `insert(n)` between pages; returns
/// the ids seen, in order.
async fn walk<F: std::future::Future<Output = ()>>(
    app: &TestApp,
    list: &str,
    limit: usize,
    mut insert: impl FnMut(usize) -> F,
) -> Vec<String> {
    let join = if list.contains('?') { '&' } else { '?' };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for round in 0.. {
        assert!(round < 50, "{list}: the walk does not end");
        let path = match &cursor {
            None => format!("{list}{join}limit={limit}"),
            Some(c) => format!("{list}{join}limit={limit}&cursor={c}"),
        };
        let page = app.admin("GET", &path, None).await;
        seen.extend(ids(page.expect(200)));
        insert(round).await;
        cursor = match next_cursor(&page.body) {
            Some(next) => Some(next),
            None => break,
        };
    }
    seen
}

/// Asserts that `seen` holds each of `before` exactly once, and nothing twice.
#[track_caller]
fn once_each(list: &str, before: &[String], seen: &[String]) {
    for id in before {
        let times = seen.iter().filter(|s| *s == id).count();
        assert_eq!(times, 1, "{list}: {id} seen {times} times in {seen:?}");
    }
    let mut unique = seen.to_vec();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "{list}: {seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cursor_paging_walks_every_list_once_while_items_are_added() {
    let app = TestApp::start().await;
    let (project, _member) = app.project_with_member("Walked").await;
    let shop = json!({"provider": "github", "display_name": "Shop", "auth": {"type": "none"},
        "base_url": "https://github.com/acme/shop", "projects": {"mode": "all"},
        "capabilities": {"read_issue_details": false}});
    let source_id = app.create("/api/v1/sources", shop.clone()).await;
    for name in ["Beta", "Delta", "Kappa", "Omega"] {
        let mut body = shop.clone();
        body["display_name"] = json!(name);
        app.create("/api/v1/sources", body).await;
    }
    for name in ["One", "Two", "Three", "Four"] {
        app.create("/api/v1/projects", json!({"name": name})).await;
        let token = json!({"name": format!("{name} token"), "role": "admin"});
        app.admin("POST", "/api/v1/tokens", Some(token))
            .await
            .expect(201);
    }
    let link = |key: String| {
        let body = json!({"test_object": "test-case:TC-1", "source_id": source_id, "key": key});
        let path = format!("/api/v1/projects/{project}/links");
        let app = &app;
        async move {
            app.admin("POST", &path, Some(body))
                .await
                .expect(201)
                .clone()
        }
    };
    for n in 1..=5 {
        link(format!("{n}")).await;
    }

    let lists = [
        "/api/v1/sources".to_string(),
        "/api/v1/sources?sort=-name".to_string(),
        format!("/api/v1/projects/{project}/links"),
        format!("/api/v1/sources/{source_id}/links"),
        "/api/v1/projects".to_string(),
        "/api/v1/tokens".to_string(),
        "/api/v1/audit".to_string(),
        "/api/v1/plugins".to_string(),
    ];
    let added = std::cell::Cell::new(0);
    for list in &lists {
        let everything = if list.ends_with("/audit") {
            format!("{list}?limit=500")
        } else {
            list.clone()
        };
        let before = ids(app.admin("GET", &everything, None).await.expect(200));
        assert!(before.len() > 4, "{list}: {before:?}");
        // About four pages; between pages, one item is added to the list walked (before and
        // after the cursor, by name, for the sources) and to the others.
        let limit = before.len().div_ceil(4).max(2);
        let seen = walk(&app, list, limit, |round| {
            added.set(added.get() + 1);
            let n = added.get();
            let app = &app;
            let link = &link;
            let shop = shop.clone();
            async move {
                let first = if round % 2 == 0 { "Aa" } else { "Zz" };
                let mut body = shop;
                body["display_name"] = json!(format!("{first} added {n}"));
                app.create("/api/v1/sources", body).await;
                let project = json!({"name": format!("Added {n}")});
                app.create("/api/v1/projects", project).await;
                let token = json!({"name": format!("Added {n}"), "role": "admin"});
                app.admin("POST", "/api/v1/tokens", Some(token))
                    .await
                    .expect(201);
                link(format!("{}", 100 + n)).await;
            }
        })
        .await;
        once_each(list, &before, &seen);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_list_refuses_a_bad_cursor_naming_it_and_keeps_its_shape_without_paging() {
    let app = TestApp::start().await;
    let (project, _member) = app.project_with_member("Shapes").await;
    let id = app
        .create("/api/v1/sources", source("Shapes", "https://t.example.com"))
        .await;
    let lists = [
        "/api/v1/sources".to_string(),
        format!("/api/v1/projects/{project}/links"),
        format!("/api/v1/sources/{id}/links"),
        "/api/v1/projects".to_string(),
        "/api/v1/tokens".to_string(),
        "/api/v1/audit".to_string(),
        "/api/v1/plugins".to_string(),
    ];
    for list in &lists {
        for bad in ["cursor=not-a-cursor", "cursor=W10", "limit=0", "limit=x"] {
            let field = bad.split('=').next().unwrap();
            let answer = app.admin("GET", &format!("{list}?{bad}"), None).await;
            answer.expect_error(400, field);
        }
        let whole = app.admin("GET", list, None).await;
        let whole = whole.expect(200);
        match list.as_str() {
            "/api/v1/audit" => assert!(whole["events"].is_array(), "{whole}"),
            "/api/v1/plugins" => assert!(whole["plugins"].is_array(), "{whole}"),
            _ => assert!(whole.is_array(), "{list}: {whole}"),
        }
    }
    // A cursor of one page and a page number together are refused.
    let first = app.admin("GET", "/api/v1/tokens?limit=1", None).await;
    let cursor = first.expect(200)["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let both = format!("/api/v1/tokens?page=2&cursor={cursor}");
    app.admin("GET", &both, None)
        .await
        .expect_error(400, "cursor");

    // The document lists the new parameters and the PATCH route.
    let doc = app.call("GET", "/api/v1/openapi.json", None, None).await;
    let paths = &doc.expect(200)["paths"];
    for path in [
        "/api/v1/sources",
        "/api/v1/projects/{project}/links",
        "/api/v1/sources/{id}/links",
        "/api/v1/projects",
        "/api/v1/tokens",
        "/api/v1/audit",
        "/api/v1/plugins",
    ] {
        let names: Vec<&str> = (paths[path]["get"]["parameters"].as_array())
            .unwrap_or_else(|| panic!("{path} has parameters"))
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"cursor") && names.contains(&"limit"),
            "{path}: {names:?}"
        );
    }
    assert!(paths["/api/v1/sources/{id}"]["patch"]["summary"].is_string());
}
