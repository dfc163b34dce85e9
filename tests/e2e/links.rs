//! Links and sync through the real router, the real GitLab plugin and a GitLab stand-in on
//! 127.0.0.1 whose issues can change, disappear and rate-limit between syncs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use integration_tests::{StandIn, TestApp};
use serde_json::{Value, json};

const TOKEN: &str = "glpat-links-test-token";

/// The stand-in's issues (iid -> (title, state, assignee)) and whether it rate-limits.
#[derive(Default)]
struct Tracker {
    issues: BTreeMap<u64, (String, String, Option<String>)>,
    rate_limited: bool,
}

type Shared = Arc<Mutex<Tracker>>;

fn issue_json(
    base: &str,
    iid: u64,
    (title, state, assignee): &(String, String, Option<String>),
) -> Value {
    let assignees: Vec<Value> = assignee
        .iter()
        .map(|a| json!({"name": a, "username": a.to_lowercase()}))
        .collect();
    json!({
        "id": 1000 + iid, "iid": iid, "project_id": 7, "title": title, "state": state,
        "assignees": assignees, "assignee": assignees.first(), "labels": [],
        "web_url": format!("{base}/group/shop/-/issues/{iid}")
    })
}

fn guard(headers: &HeaderMap, tracker: &Shared) -> Option<Response> {
    if headers.get("private-token").and_then(|v| v.to_str().ok()) != Some(TOKEN) {
        return Some(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"message": "401 Unauthorized"})),
            )
                .into_response(),
        );
    }
    if tracker.lock().unwrap().rate_limited {
        return Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "120"), ("ratelimit-remaining", "0")],
                "Retry later",
            )
                .into_response(),
        );
    }
    None
}

/// A GitLab stand-in: `GET /api/v4/projects/:id/issues/:iid` and the `iids[]` list.
async fn gitlab(tracker: Shared) -> StandIn {
    let base = Arc::new(Mutex::new(String::new()));
    let (b1, b2) = (base.clone(), base.clone());
    let router = Router::new()
        .route(
            "/api/v4/projects/{id}/issues/{iid}",
            get(
                move |State(t): State<Shared>,
                      Path((id, iid)): Path<(String, u64)>,
                      headers: HeaderMap| {
                    let base = b1.lock().unwrap().clone();
                    async move {
                        if let Some(r) = guard(&headers, &t) {
                            return r;
                        }
                        assert_eq!(id, "group/shop");
                        match t.lock().unwrap().issues.get(&iid) {
                            Some(i) => Json(issue_json(&base, iid, i)).into_response(),
                            None => (
                                StatusCode::NOT_FOUND,
                                Json(json!({"message": "404 Not found"})),
                            )
                                .into_response(),
                        }
                    }
                },
            ),
        )
        .route(
            "/api/v4/projects/{id}/issues",
            get(
                move |State(t): State<Shared>, RawQuery(query): RawQuery, headers: HeaderMap| {
                    let base = b2.lock().unwrap().clone();
                    async move {
                        if let Some(r) = guard(&headers, &t) {
                            return r;
                        }
                        let query = query.unwrap_or_default();
                        let wanted: Vec<u64> = query
                            .split('&')
                            .filter_map(|p| {
                                p.strip_prefix("iids%5B%5D=")
                                    .or_else(|| p.strip_prefix("iids[]="))
                            })
                            .filter_map(|v| v.parse().ok())
                            .collect();
                        let t = t.lock().unwrap();
                        let items: Vec<Value> = wanted
                            .iter()
                            .filter_map(|iid| t.issues.get(iid).map(|i| issue_json(&base, *iid, i)))
                            .collect();
                        Json(items).into_response()
                    }
                },
            ),
        )
        .route(
            "/api/v4/projects/{id}",
            get(|| async { Json(json!({"id": 7, "path_with_namespace": "group/shop"})) }),
        )
        .with_state(tracker);
    let stand_in = StandIn::start(router).await;
    *base.lock().unwrap() = stand_in.url.clone();
    stand_in
}

fn set_issue(tracker: &Shared, iid: u64, title: &str, state: &str, assignee: Option<&str>) {
    tracker.lock().unwrap().issues.insert(
        iid,
        (title.into(), state.into(), assignee.map(str::to_string)),
    );
}

struct World {
    app: TestApp,
    tracker: Shared,
    gitlab: StandIn,
    project: String,
    other_project: String,
    member: String,
}

async fn world() -> World {
    let tracker: Shared = Arc::default();
    set_issue(&tracker, 7, "Login fails", "opened", Some("Mia"));
    set_issue(&tracker, 8, "Crash on save", "closed", None);
    let gitlab = gitlab(tracker.clone()).await;
    let app = TestApp::start().await;
    let project = app
        .create("/api/v1/projects", json!({"name": "Shop"}))
        .await;
    let other_project = app
        .create("/api/v1/projects", json!({"name": "Other"}))
        .await;
    let member = app
        .admin(
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "Member", "role": "member", "projects": [project]})),
        )
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    World {
        app,
        tracker,
        gitlab,
        project,
        other_project,
        member,
    }
}

impl World {
    async fn source(&self, name: &str, read: bool, projects: Value) -> String {
        let body = json!({
            "provider": "gitlab",
            "display_name": name,
            "base_url": format!("{}/group/shop", self.gitlab.url),
            "auth": {"type": "api-token", "fields": {"token": TOKEN}},
            "create_url_template": "{baseUrl}/-/issues/new",
            "key_pattern": "^\\d+$",
            "capabilities": {"read_issue_details": read, "create_issues": true},
            "projects": projects,
        });
        self.app.create("/api/v1/sources", body).await
    }

    async fn link(&self, source: &str, object: &str, key: &str) -> integration_tests::Response2 {
        let body = json!({"test_object": object, "source_id": source, "key": key});
        self.app
            .call(
                "POST",
                &format!("/api/v1/projects/{}/links", self.project),
                Some(&self.member),
                Some(body),
            )
            .await
    }

    async fn links(&self) -> Vec<Value> {
        let r = self
            .app
            .call(
                "GET",
                &format!("/api/v1/projects/{}/links", self.project),
                Some(&self.member),
                None,
            )
            .await;
        r.expect(200).as_array().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn creating_a_link_checks_each_rule_in_order_and_stores_the_canonical_key() {
    let w = world().await;
    let source = w.source("GitLab", true, json!({"mode": "all"})).await;
    let elsewhere = w
        .source(
            "Elsewhere",
            true,
            json!({"mode": "specific", "ids": [w.other_project]}),
        )
        .await;
    let disabled = w.source("Disabled", true, json!({"mode": "all"})).await;
    w.app
        .admin("POST", &format!("/api/v1/sources/{disabled}/disable"), None)
        .await
        .expect(200);

    w.link("src_missing", "test-case:TC-1", "7")
        .await
        .expect_error(404, "source_id");
    let r = w.link(&disabled, "test-case:TC-1", "7").await;
    assert_eq!(r.body["error"]["code"], "source-disabled", "{}", r.text);
    r.expect_error(409, "source_id");
    w.link(&elsewhere, "test-case:TC-1", "7")
        .await
        .expect_error(403, "source_id");
    let message = w
        .link(&source, "test-case:TC-1", "seven")
        .await
        .expect_error(400, "key");
    assert!(!message.is_empty());
    w.link(&source, "", "7")
        .await
        .expect_error(400, "test_object");
    assert!(
        w.links().await.is_empty(),
        "nothing stored by failed checks"
    );

    // `#7` and a pasted issue URL both store the canonical key `7`.
    let created = w.link(&source, "test-case:TC-1", " #7 ").await;
    let link = created.expect(201);
    assert_eq!(link["key"], "7");
    assert_eq!(link["sync_state"], "syncing");
    assert_eq!(link["snapshot"]["title"], "Login fails");
    assert_eq!(link["snapshot"]["status_category"], "to-do");
    assert_eq!(link["snapshot"]["assignee"], "Mia");
    assert!(link["snapshot"]["fetched_at"].as_u64().unwrap() > 0);
    let pasted = format!("{}/group/shop/-/issues/7", w.gitlab.url);
    let dup = w.link(&source, "test-case:TC-1", &pasted).await;
    assert_eq!(dup.status, 409, "{}", dup.text);
    w.link(&source, "test-case:TC-2", &pasted).await.expect(201);

    // A pattern written for what members type (`#7`) passes the key as typed, although the
    // canonical key is `7`; a key matching neither way is refused.
    let typed = w
        .app
        .create(
            "/api/v1/sources",
            json!({
                "provider": "gitlab", "display_name": "Typed",
                "base_url": format!("{}/group/shop", w.gitlab.url),
                "auth": {"type": "api-token", "fields": {"token": TOKEN}},
                "key_pattern": "^#\\d+$", "projects": {"mode": "all"},
            }),
        )
        .await;
    let hashed = w.link(&typed, "test-case:TC-4", "#7").await;
    assert_eq!(hashed.expect(201)["key"], "7");
    let message = w
        .link(&typed, "test-case:TC-5", "7")
        .await
        .expect_error(400, "key");
    assert!(message.contains("key pattern"), "{message}");

    // A key the tracker does not know is linked, with the error shown rather than thrown.
    let missing = w.link(&source, "test-case:TC-3", "999").await;
    assert_eq!(
        missing.expect(201)["last_error"]["code"],
        "not-found",
        "{}",
        missing.text
    );
    assert!(missing.body["snapshot"].is_null());

    // Listing by test object and by source.
    let by_object = w
        .app
        .call(
            "GET",
            &format!(
                "/api/v1/projects/{}/links?test_object=test-case:TC-1",
                w.project
            ),
            Some(&w.member),
            None,
        )
        .await;
    assert_eq!(by_object.expect(200).as_array().unwrap().len(), 1);
    let by_source = w
        .app
        .admin("GET", &format!("/api/v1/sources/{source}/links"), None)
        .await;
    assert_eq!(by_source.expect(200).as_array().unwrap().len(), 3);
    // Delete.
    let id = by_object.body[0]["id"].as_str().unwrap();
    w.app
        .call(
            "DELETE",
            &format!("/api/v1/projects/{}/links/{id}", w.project),
            Some(&w.member),
            None,
        )
        .await
        .expect(204);
    assert_eq!(
        w.links().await.len(),
        3,
        "the other two, and the one through Typed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_read_capability_a_link_has_only_its_key_and_url() {
    let w = world().await;
    let source = w.source("No details", false, json!({"mode": "all"})).await;
    let link = w.link(&source, "test-run:R-1", "8").await;
    let link = link.expect(201);
    assert_eq!(link["sync_state"], "no-details");
    assert!(link["snapshot"].is_null());
    assert_eq!(
        link["url"],
        format!("{}/group/shop/-/issues/8", w.gitlab.url)
    );
    assert!(
        w.gitlab.requests().is_empty(),
        "no tracker call without the capability"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_snapshot_follows_the_tracker_between_syncs_and_batches_requests() {
    let w = world().await;
    let source = w.source("GitLab", true, json!({"mode": "all"})).await;
    for iid in 1..=120u64 {
        set_issue(&w.tracker, iid, &format!("Issue {iid}"), "opened", None);
    }
    let keys: Vec<String> = (1..=120).map(|i| i.to_string()).collect();
    let bulk = w
        .app
        .call(
            "POST",
            &format!("/api/v1/projects/{}/links/bulk", w.project),
            Some(&w.member),
            Some(json!({"test_object": "test-case:TC-9", "source_id": source, "keys": keys})),
        )
        .await;
    let results = bulk.expect(200).as_array().unwrap().clone();
    assert_eq!(results.len(), 120);
    assert!(
        results.iter().all(|r| r["error"].is_null()),
        "{}",
        bulk.text
    );

    set_issue(&w.tracker, 7, "Login fails", "closed", Some("Noah"));
    w.gitlab.clear();
    // One pass of the real worker.
    let pacing = Arc::new(host::sync::Pacing::default());
    host::sync::pass(&w.app.state, &pacing, Duration::from_secs(60))
        .await
        .unwrap();
    let requests = w.gitlab.requests();
    assert_eq!(
        requests.len(),
        120usize.div_ceil(host::sync::BATCH_SIZE),
        "batched: {}",
        requests.len()
    );
    let link = w
        .links()
        .await
        .into_iter()
        .find(|l| l["key"] == "7")
        .unwrap();
    assert_eq!(link["snapshot"]["status"], "closed");
    assert_eq!(link["snapshot"]["status_category"], "done");
    assert_eq!(link["snapshot"]["assignee"], "Noah");

    // A manual refresh of one link asks the tracker again.
    set_issue(&w.tracker, 7, "Login fails again", "opened", None);
    let id = link["id"].as_str().unwrap();
    let refreshed = w
        .app
        .call(
            "POST",
            &format!("/api/v1/projects/{}/links/{id}/refresh", w.project),
            Some(&w.member),
            None,
        )
        .await;
    assert_eq!(
        refreshed.expect(200)["snapshot"]["title"],
        "Login fails again"
    );
    assert!(refreshed.body["snapshot"]["assignee"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_source_waits_while_others_sync() {
    let w = world().await;
    let limited_tracker: Shared = Arc::default();
    set_issue(&limited_tracker, 7, "Slow down", "opened", None);
    let limited_gitlab = gitlab(limited_tracker.clone()).await;
    let fine = w.source("Fine", true, json!({"mode": "all"})).await;
    let body = json!({
        "provider": "gitlab", "display_name": "Limited",
        "base_url": format!("{}/group/shop", limited_gitlab.url),
        "auth": {"type": "api-token", "fields": {"token": TOKEN}},
        "capabilities": {"read_issue_details": true}, "projects": {"mode": "all"},
    });
    let limited = w.app.create("/api/v1/sources", body).await;
    w.link(&fine, "test-case:TC-1", "7").await.expect(201);
    w.link(&limited, "test-case:TC-1", "7").await.expect(201);

    limited_tracker.lock().unwrap().rate_limited = true;
    set_issue(&w.tracker, 7, "Changed", "closed", None);
    let pacing = Arc::new(host::sync::Pacing::default());
    host::sync::pass(&w.app.state, &pacing, Duration::from_millis(10))
        .await
        .unwrap();
    let links = w.links().await;
    let of = |source: &str| {
        links
            .iter()
            .find(|l| l["source_id"] == source)
            .unwrap()
            .clone()
    };
    assert_eq!(
        of(&fine)["snapshot"]["title"],
        "Changed",
        "the other source synced"
    );
    assert_eq!(of(&limited)["last_error"]["code"], "rate-limited");
    assert_eq!(
        of(&limited)["snapshot"]["title"],
        "Slow down",
        "the last snapshot is kept"
    );

    // The next pass leaves the limited source alone (it asked for 120 s) but syncs the other.
    let before = limited_gitlab.requests().len();
    set_issue(&w.tracker, 7, "Changed twice", "closed", None);
    host::sync::pass(&w.app.state, &pacing, Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(
        limited_gitlab.requests().len(),
        before,
        "the rate-limited source was asked again"
    );
    let links = w.links().await;
    assert_eq!(
        links.iter().find(|l| l["source_id"] == fine).unwrap()["snapshot"]["title"],
        "Changed twice"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_and_deleting_keep_links_visible_and_not_syncing() {
    let w = world().await;
    let source = w.source("GitLab", true, json!({"mode": "all"})).await;
    w.link(&source, "test-case:TC-1", "7").await.expect(201);
    w.link(&source, "test-case:TC-2", "8").await.expect(201);
    let impact = w
        .app
        .admin("GET", &format!("/api/v1/sources/{source}/impact"), None)
        .await;
    assert_eq!(impact.expect(200), &json!({"links": 2, "projects": 1}));

    // Disabled: hidden from members, no new links, existing ones visible and not syncing.
    w.app
        .admin("POST", &format!("/api/v1/sources/{source}/disable"), None)
        .await
        .expect(200);
    let visible = w
        .app
        .call("GET", "/api/v1/sources", Some(&w.member), None)
        .await;
    assert!(visible.expect(200).as_array().unwrap().is_empty());
    w.link(&source, "test-case:TC-3", "7")
        .await
        .expect_error(409, "source_id");
    let links = w.links().await;
    assert_eq!(links.len(), 2);
    assert!(
        links
            .iter()
            .all(|l| l["sync_state"] == "not-syncing-disabled")
    );
    set_issue(&w.tracker, 7, "Changed while disabled", "closed", None);
    w.gitlab.clear();
    let pacing = Arc::new(host::sync::Pacing::default());
    host::sync::pass(&w.app.state, &pacing, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        w.gitlab.requests().is_empty(),
        "a disabled source does not sync"
    );

    // Re-enabled: syncing again.
    w.app
        .admin("POST", &format!("/api/v1/sources/{source}/enable"), None)
        .await
        .expect(200);
    host::sync::pass(&w.app.state, &pacing, Duration::from_secs(60))
        .await
        .unwrap();
    let links = w.links().await;
    assert!(links.iter().all(|l| l["sync_state"] == "syncing"));
    assert!(
        links
            .iter()
            .any(|l| l["snapshot"]["title"] == "Changed while disabled")
    );

    // Deleted: links stay with their last snapshot, marked not syncing.
    w.app
        .admin("DELETE", &format!("/api/v1/sources/{source}"), None)
        .await
        .expect(204);
    let links = w.links().await;
    assert_eq!(links.len(), 2);
    assert!(
        links
            .iter()
            .all(|l| l["sync_state"] == "not-syncing-deleted")
    );
    assert!(
        links
            .iter()
            .any(|l| l["snapshot"]["title"] == "Changed while disabled")
    );
    assert_eq!(links[0]["source_name"], "GitLab");
    let id = links[0]["id"].as_str().unwrap();
    let path = format!("/api/v1/projects/{}/links/{id}/refresh", w.project);
    let refused = w.app.call("POST", &path, Some(&w.member), None).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "not-syncing-deleted");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deleted")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refreshing_a_link_that_does_not_sync_is_a_409_saying_why() {
    let w = world().await;
    let source = w.source("GitLab", true, json!({"mode": "all"})).await;
    let plain = w.source("Plain", false, json!({"mode": "all"})).await;
    let id = w.link(&source, "test-case:TC-1", "7").await.expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let plain_id = w.link(&plain, "test-case:TC-1", "8").await.expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    w.app
        .admin("POST", &format!("/api/v1/sources/{source}/disable"), None)
        .await
        .expect(200);
    let before = w.gitlab.requests().len();
    for (link, code) in [(&id, "not-syncing-disabled"), (&plain_id, "no-details")] {
        let path = format!("/api/v1/projects/{}/links/{link}/refresh", w.project);
        let r = w.app.call("POST", &path, Some(&w.member), None).await;
        assert_eq!(
            (r.status, &r.body["error"]["code"]),
            (409, &json!(code)),
            "{}",
            r.text
        );
    }
    let r = w
        .app
        .admin("POST", &format!("/api/v1/sources/{source}/refresh"), None)
        .await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (409, &json!("not-syncing-disabled")),
        "{}",
        r.text
    );
    let r = w
        .app
        .admin("POST", "/api/v1/sources/src_gone/refresh", None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(w.gitlab.requests().len(), before, "no tracker call");
}

/// The body that created `w.source(name, read, all projects)`, for edits (the token is kept).
fn source_body(w: &World, name: &str, read: bool) -> Value {
    json!({
        "provider": "gitlab",
        "display_name": name,
        "base_url": format!("{}/group/shop", w.gitlab.url),
        "auth": {"type": "api-token", "fields": {}},
        "create_url_template": "{baseUrl}/-/issues/new",
        "key_pattern": "^\\d+$",
        "capabilities": {"read_issue_details": read, "create_issues": true},
        "projects": {"mode": "all"},
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_of_the_base_url_or_issue_url_template_moves_existing_links_at_once() {
    let w = world().await;
    let plain = w.source("Plain", false, json!({"mode": "all"})).await;
    let detailed = w.source("Detailed", true, json!({"mode": "all"})).await;
    w.link(&plain, "test-case:TC-1", "8").await.expect(201);
    w.link(&detailed, "test-case:TC-1", "7").await.expect(201);
    let url_of = |links: &[Value], source: &str| {
        let link = links.iter().find(|l| l["source_id"] == source).unwrap();
        link["url"].as_str().unwrap().to_string()
    };
    let links = w.links().await;
    assert_eq!(
        url_of(&links, &plain),
        format!("{}/group/shop/-/issues/8", w.gitlab.url)
    );

    // The base URL of one, the issue URL template of the other.
    let mut body = source_body(&w, "Plain", false);
    body["base_url"] = json!(format!("{}/group/moved", w.gitlab.url));
    w.app
        .admin("PUT", &format!("/api/v1/sources/{plain}"), Some(body))
        .await
        .expect(200);
    let mut body = source_body(&w, "Detailed", true);
    body["issue_url_template"] = json!("{baseUrl}/-/work_items/{key}");
    w.app
        .admin("PUT", &format!("/api/v1/sources/{detailed}"), Some(body))
        .await
        .expect(200);
    let moved = format!("{}/group/moved/-/issues/8", w.gitlab.url);
    let templated = format!("{}/group/shop/-/work_items/7", w.gitlab.url);
    let links = w.links().await;
    assert_eq!(url_of(&links, &plain), moved);
    assert_eq!(url_of(&links, &detailed), templated);
    let admin_view = w
        .app
        .admin("GET", &format!("/api/v1/sources/{plain}/links"), None)
        .await
        .expect(200)
        .clone();
    assert_eq!(url_of(admin_view.as_array().unwrap(), &plain), moved);

    // And after a restart.
    let (project, member) = (w.project.clone(), w.member.clone());
    let app = w.app.restart().await;
    let r = app
        .call(
            "GET",
            &format!("/api/v1/projects/{project}/links"),
            Some(&member),
            None,
        )
        .await;
    let links = r.expect(200).as_array().unwrap().clone();
    assert_eq!(url_of(&links, &plain), moved);
    assert_eq!(url_of(&links, &detailed), templated);
}

#[tokio::test(flavor = "multi_thread")]
async fn assignment_changes_affect_only_new_links_and_the_create_shortcut_needs_the_capability() {
    let w = world().await;
    let source = w.source("GitLab", true, json!({"mode": "all"})).await;
    w.link(&source, "test-case:TC-1", "7").await.expect(201);
    let url = w
        .app
        .call(
            "GET",
            &format!("/api/v1/projects/{}/sources/{source}/create-url", w.project),
            Some(&w.member),
            None,
        )
        .await;
    assert_eq!(
        url.expect(200)["url"],
        format!("{}/group/shop/-/issues/new", w.gitlab.url)
    );

    // Reassign to the other project only: the existing link stays, new ones are refused.
    let mut body = w
        .app
        .admin("GET", &format!("/api/v1/sources/{source}"), None)
        .await
        .body
        .clone();
    let edit = json!({
        "provider": body["provider"], "display_name": body["display_name"], "base_url": body["base_url"],
        "auth": {"type": "api-token", "fields": {}},
        "key_pattern": body["key_pattern"],
        "capabilities": {"read_issue_details": true, "create_issues": false},
        "projects": {"mode": "specific", "ids": [w.other_project]},
    });
    body = w
        .app
        .admin("PUT", &format!("/api/v1/sources/{source}"), Some(edit))
        .await
        .expect(200)
        .clone();
    assert_eq!(body["secrets_set"], json!(["token"]));
    assert_eq!(w.links().await.len(), 1);
    w.link(&source, "test-case:TC-2", "8")
        .await
        .expect_error(403, "source_id");
    let none = w
        .app
        .admin(
            "GET",
            &format!(
                "/api/v1/projects/{}/sources/{source}/create-url",
                w.other_project
            ),
            None,
        )
        .await;
    assert_eq!(none.status, 404, "{}", none.text);
    assert_eq!(none.body["error"]["code"], "no-create-shortcut");
}

/// Changes source `id` in the store directly, as another replica on the same database does:
/// nothing in this process hears of it.
async fn change_behind_the_back(app: &TestApp, id: &str, change: fn(&mut Value)) {
    use host::store::{Read as _, SOURCES};
    let id = id.to_string();
    app.state
        .store
        .write(move |w| {
            let mut record: Value = w.get(SOURCES, &id)?.unwrap();
            change(&mut record);
            w.put(SOURCES, &id, &record)
        })
        .await
        .unwrap();
}

/// Link creation keeps the sources it saw in memory; a link checked against one that was
/// disabled before the link was stored is not stored, and an answer is given on the source as
/// stored then.
#[tokio::test(flavor = "multi_thread")]
async fn a_link_whose_source_is_disabled_before_its_commit_is_not_stored() {
    let w = world().await;
    let source = w.source("GitLab", false, json!({"mode": "all"})).await;
    w.link(&source, "test-case:TC-1", "7").await.expect(201);
    let state = &w.app.state;
    let checked = host::links::prepare(state, &w.project, "test-case:TC-2", &source, "8", "me")
        .await
        .unwrap();
    w.app
        .admin("POST", &format!("/api/v1/sources/{source}/disable"), None)
        .await
        .expect(200);
    let stored = state
        .link_writer
        .insert(host::ids::new_id("lnk"), checked)
        .await;
    assert!(
        matches!(stored, Err(host::links::LinksError::SourceChanged(_))),
        "{stored:?}"
    );

    // Disabled on another replica: the next creation here is refused all the same.
    w.app
        .admin("POST", &format!("/api/v1/sources/{source}/enable"), None)
        .await
        .expect(200);
    w.link(&source, "test-case:TC-3", "9").await.expect(201);
    change_behind_the_back(&w.app, &source, |s| s["enabled"] = json!(false)).await;
    let refused = w.link(&source, "test-case:TC-4", "10").await;
    assert_eq!(
        refused.body["error"]["code"], "source-disabled",
        "{}",
        refused.text
    );
    assert_eq!(w.links().await.len(), 2);
}

/// A source changed on another replica is what the next creation here is checked against,
/// whether the change refuses what the kept source allowed or allows what it refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_source_changed_on_another_replica_decides_the_next_link_here() {
    let w = world().await;
    let source = w.source("GitLab", false, json!({"mode": "all"})).await;
    w.link(&source, "test-case:TC-1", "7").await.expect(201);
    change_behind_the_back(&w.app, &source, |s| s["key_pattern"] = json!("^1\\d*$")).await;
    w.link(&source, "test-case:TC-2", "8")
        .await
        .expect_error(400, "key");
    w.link(&source, "test-case:TC-2", "18").await.expect(201);
    change_behind_the_back(&w.app, &source, |s| s["key_pattern"] = json!("^\\d+$")).await;
    w.link(&source, "test-case:TC-3", "8").await.expect(201);
    change_behind_the_back(&w.app, &source, |s| s["enabled"] = json!(false)).await;
    w.link(&source, "test-case:TC-4", "9")
        .await
        .expect_error(409, "source_id");
    change_behind_the_back(&w.app, &source, |s| s["enabled"] = json!(true)).await;
    w.link(&source, "test-case:TC-4", "9").await.expect(201);
    assert_eq!(w.links().await.len(), 4);
}

/// Tokens found valid are kept for a moment: one revoked here is refused at once, one revoked
/// on another replica (deleted from the store behind this process's back) within
/// `TOKEN_CACHE_TTL`.
#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_token_is_refused_here_at_once_and_after_a_revocation_elsewhere_within_a_second()
{
    use host::store::{Read as _, TOKENS};
    let w = world().await;
    let me = |token: String| {
        let app = &w.app;
        async move {
            app.call("GET", "/api/v1/me", Some(&token), None)
                .await
                .status
        }
    };
    let token = |name: &str| {
        let body = json!({"name": name, "role": "member", "projects": [w.project]});
        let app = &w.app;
        async move {
            let made = app.admin("POST", "/api/v1/tokens", Some(body)).await;
            let made = made.expect(201);
            let value = made["token"].as_str().unwrap().to_string();
            let id = made["id"].as_str().unwrap().to_string();
            (value, id)
        }
    };
    let (here, here_id) = token("Here").await;
    assert_eq!(me(here.clone()).await, 200);
    w.app
        .admin("DELETE", &format!("/api/v1/tokens/{here_id}"), None)
        .await
        .expect(204);
    assert_eq!(me(here).await, 401, "revoked here: refused at once");

    let (elsewhere, _) = token("Elsewhere").await;
    assert_eq!(me(elsewhere.clone()).await, 200);
    let hash = host::tokens::token_hash(&elsewhere);
    w.app
        .state
        .store
        .write(move |w| {
            let found: Option<Value> = w.get(TOKENS, &hash)?;
            assert!(found.is_some());
            w.delete(TOKENS, &hash)
        })
        .await
        .unwrap();
    tokio::time::sleep(host::tokens::TOKEN_CACHE_TTL + Duration::from_millis(100)).await;
    assert_eq!(
        me(elsewhere).await,
        401,
        "revoked elsewhere: refused within the TTL"
    );
}

/// The same link asked for by many clients at once (committed together by the link writer's
/// group commit): stored once, every other answer a 409.
#[tokio::test(flavor = "multi_thread")]
async fn the_same_link_asked_for_at_once_is_stored_once() {
    let w = Arc::new(world().await);
    let source = w.source("GitLab", false, json!({"mode": "all"})).await;
    let mut asks = Vec::new();
    for _ in 0..12 {
        let (w, source) = (w.clone(), source.clone());
        asks.push(tokio::spawn(async move {
            w.link(&source, "test-case:TC-1", "#7").await.status
        }));
    }
    let mut statuses = Vec::new();
    for ask in asks {
        statuses.push(ask.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [vec![201], vec![409; 11]].concat());
    assert_eq!(w.links().await.len(), 1);
}

/// Link creation remembers the projects it found; a project deleted on another replica (here:
/// from the store behind this process's back) takes no new link all the same.
#[tokio::test(flavor = "multi_thread")]
async fn a_project_deleted_on_another_replica_takes_no_new_link() {
    use host::store::{LINKS, PROJECTS, Read as _};
    let w = world().await;
    let source = w.source("GitLab", false, json!({"mode": "all"})).await;
    w.link(&source, "test-case:TC-1", "7").await.expect(201);
    let project = w.project.clone();
    w.app
        .state
        .store
        .write(move |w| w.delete(PROJECTS, &project))
        .await
        .unwrap();
    let refused = w
        .app
        .admin(
            "POST",
            &format!("/api/v1/projects/{}/links", w.project),
            Some(json!({"test_object": "test-case:TC-2", "source_id": source, "key": "8"})),
        )
        .await;
    assert_eq!(refused.status, 404, "{}", refused.text);
    let links: Vec<(String, Value)> = w.app.state.store.read(|r| r.all(LINKS)).await.unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
}
