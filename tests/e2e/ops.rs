//! Running it for real: the audit API, per-source health, `/metrics` and `/readyz`, through
//! the real router, the real GitLab plugin and a GitLab stand-in on 127.0.0.1 that can be
//! told to work, fail (HTTP 500) or rate-limit (HTTP 429 with `Retry-After`), and that sends
//! GitLab's `RateLimit-*` headers on every authenticated answer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use integration_tests::{StandIn, TestApp};
use serde_json::{Value, json};

/// The credential of the first source: must never appear in the audit log.
const CANARY: &str = "glpat-CANARY-7f3a9c1e5b";
/// The credential it is replaced with: must never appear either.
const CANARY2: &str = "glpat-CANARY-REPLACED-42d8";

/// Requests the stand-in allows per window (GitLab's `RateLimit-Limit`).
const LIMIT: u64 = 2000;

/// How the stand-in answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Working,
    Failing,
    RateLimited,
}

/// The stand-in's state: how it answers, and its rate-limit window.
struct Tracker {
    mode: Mode,
    /// Authenticated requests served in the window.
    served: u64,
    /// When the window resets, in Unix seconds.
    reset: u64,
}

type Shared = Arc<Mutex<Tracker>>;

/// A GitLab stand-in for project `group/shop` with issues 1 to 99.
async fn gitlab(tracker: Shared) -> StandIn {
    let router = Router::new()
        .fallback(|State(tracker): State<Shared>, req: Request| async move {
            answer(&mut tracker.lock().unwrap(), &req)
        })
        .with_state(tracker);
    StandIn::start(router).await
}

fn answer(tracker: &mut Tracker, req: &Request) -> Response {
    let token = req
        .headers()
        .get("private-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !token.starts_with("glpat-") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "401 Unauthorized"})),
        )
            .into_response();
    }
    let mut response = match tracker.mode {
        Mode::Failing => (StatusCode::INTERNAL_SERVER_ERROR, "upstream is down").into_response(),
        Mode::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "120")],
            "Retry later",
        )
            .into_response(),
        Mode::Working => {
            tracker.served += 1;
            issues(req)
        }
    };
    // GitLab's rate-limit headers [providers.md 5.6]: limit, remaining, reset in Unix time.
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", LIMIT.into());
    headers.insert("ratelimit-observed", tracker.served.into());
    let remaining = match tracker.mode {
        Mode::RateLimited => 0,
        _ => LIMIT.saturating_sub(tracker.served),
    };
    headers.insert("ratelimit-remaining", remaining.into());
    headers.insert("ratelimit-reset", tracker.reset.into());
    response
}

fn issues(req: &Request) -> Response {
    let path = req.uri().path();
    let issue = |iid: u64| {
        json!({
            "id": 1000 + iid, "iid": iid, "project_id": 7, "title": format!("Issue {iid}"),
            "state": "opened", "assignees": [], "assignee": null, "labels": [],
            "web_url": format!("http://gitlab.test/group/shop/-/issues/{iid}")
        })
    };
    if path == "/api/v4/user" {
        Json(json!({"name": "Ops Bot", "username": "ops"})).into_response()
    } else if let Some((_, iid)) = path.rsplit_once("/issues/") {
        Json(issue(iid.parse().unwrap_or(1))).into_response()
    } else if path.ends_with("/issues") {
        let query = req.uri().query().unwrap_or("");
        let items: Vec<Value> = query
            .split('&')
            .filter_map(|p| {
                p.strip_prefix("iids%5B%5D=")
                    .or_else(|| p.strip_prefix("iids[]="))
            })
            .filter_map(|v| v.parse().ok())
            .map(issue)
            .collect();
        Json(items).into_response()
    } else {
        Json(json!({"id": 7, "path_with_namespace": "group/shop", "visibility": "private"}))
            .into_response()
    }
}

struct World {
    app: TestApp,
    tracker: Shared,
    gitlab: StandIn,
}

async fn world() -> World {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let tracker: Shared = Arc::new(Mutex::new(Tracker {
        mode: Mode::Working,
        served: 0,
        reset: now.as_secs() + 3600,
    }));
    let gitlab = gitlab(tracker.clone()).await;
    World {
        app: TestApp::start().await,
        tracker,
        gitlab,
    }
}

impl World {
    fn set(&self, mode: Mode) {
        self.tracker.lock().unwrap().mode = mode;
    }

    /// The stand-in's (remaining while working, reset in Unix milliseconds).
    fn window(&self) -> (u64, u64) {
        let t = self.tracker.lock().unwrap();
        (LIMIT.saturating_sub(t.served), t.reset * 1000)
    }

    fn source_body(&self, name: &str, token: Option<&str>, projects: Value) -> Value {
        let mut fields = serde_json::Map::new();
        if let Some(token) = token {
            fields.insert("token".into(), json!(token));
        }
        json!({
            "provider": "gitlab",
            "display_name": name,
            "base_url": format!("{}/group/shop", self.gitlab.url),
            "auth": {"type": "api-token", "fields": fields},
            "capabilities": {"read_issue_details": true},
            "projects": projects,
        })
    }

    async fn create_source(&self, name: &str, projects: Value) -> String {
        let body = self.source_body(name, Some(CANARY), projects);
        id(self
            .app
            .admin("POST", "/api/v1/sources", Some(body))
            .await
            .expect(201))
    }

    async fn project(&self, name: &str) -> String {
        id(self
            .app
            .admin("POST", "/api/v1/projects", Some(json!({"name": name})))
            .await
            .expect(201))
    }

    async fn audit(&self, query: &str) -> Value {
        self.app
            .admin("GET", &format!("/api/v1/audit{query}"), None)
            .await
            .expect(200)
            .clone()
    }

    async fn health(&self, source: &str) -> Value {
        self.app
            .admin("GET", &format!("/api/v1/sources/{source}/health"), None)
            .await
            .expect(200)
            .clone()
    }

    async fn test(&self, source: &str) -> Value {
        self.app
            .admin("POST", &format!("/api/v1/sources/{source}/test"), None)
            .await
            .expect(200)
            .clone()
    }

    async fn metrics(&self) -> (String, Vec<Sample>) {
        let r = self.app.call("GET", "/metrics", None, None).await;
        r.expect(200);
        assert!(
            r.headers.contains("text/plain; version=0.0.4"),
            "{}",
            r.headers
        );
        let samples = parse_prometheus(&r.text);
        (r.text.clone(), samples)
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

fn actions(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_records_every_change_without_a_secret_and_pages_by_source() {
    let w = world().await;
    let shop = w.project("Shop").await;
    let other = w.project("Other").await;
    w.app
        .admin(
            "PUT",
            &format!("/api/v1/projects/{shop}"),
            Some(json!({"name": "Web shop"})),
        )
        .await
        .expect(200);
    let member = w
        .app
        .admin(
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "CI", "role": "member", "projects": [shop]})),
        )
        .await
        .expect(201)
        .clone();
    let member_value = member["token"].as_str().unwrap().to_string();
    let member_id = id(&member);

    let source = w.create_source("GitLab", json!({"mode": "all"})).await;
    // An edit that replaces the credential, renames and reassigns projects.
    let edit = w.source_body(
        "GitLab shop",
        Some(CANARY2),
        json!({"mode": "specific", "ids": [shop, other]}),
    );
    w.app
        .admin("PUT", &format!("/api/v1/sources/{source}"), Some(edit))
        .await
        .expect(200);
    w.app
        .admin("POST", &format!("/api/v1/sources/{source}/disable"), None)
        .await
        .expect(200);
    w.app
        .admin("POST", &format!("/api/v1/sources/{source}/enable"), None)
        .await
        .expect(200);
    assert_eq!(w.test(&source).await["ok"], true);
    // Deleting a project assigned to the source reassigns it: the source's history says so.
    w.app
        .admin("DELETE", &format!("/api/v1/projects/{other}"), None)
        .await
        .expect(204);
    let second = w.create_source("Second", json!({"mode": "all"})).await;
    w.app
        .admin("DELETE", &format!("/api/v1/tokens/{member_id}"), None)
        .await
        .expect(204);
    w.app
        .admin("DELETE", &format!("/api/v1/sources/{source}"), None)
        .await
        .expect(204);

    // The whole log, through the API and straight from the store: no secret anywhere.
    let all = w.audit("?limit=500").await;
    let raw: Vec<(u64, Value)> = w
        .app
        .state
        .store
        .read(|r| {
            use host::store::Read;
            r.audit_page(u64::MAX, 100_000)
        })
        .await
        .unwrap();
    let dump = format!("{all} {}", serde_json::to_string(&raw).unwrap());
    for secret in [CANARY, CANARY2, member_value.as_str()] {
        assert!(
            !dump.contains(secret),
            "a secret leaked into the audit log: {dump}"
        );
    }
    assert_eq!(all["events"].as_array().unwrap().len(), raw.len());
    assert!(all["next_before"].is_null());

    // Every kind of change is there, newest first, with who did it.
    let events = all["events"].as_array().unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|p| p[0] > p[1]), "{seqs:?}");
    for e in events {
        assert!(e["at"].as_u64().unwrap() > 0);
        assert!(e["who"].as_str().unwrap().contains("tok_"), "{e}");
    }
    let find = |action: &str, target: &str| -> Value {
        events
            .iter()
            .find(|e| e["action"] == action && e["target"] == target)
            .unwrap_or_else(|| panic!("no {action} of {target} in {all}"))
            .clone()
    };
    assert_eq!(find("project.created", &shop)["details"]["name"], "Shop");
    let renamed = find("project.renamed", &shop);
    assert_eq!(
        renamed["details"],
        json!({"from": "Shop", "to": "Web shop"})
    );
    let deleted = find("project.deleted", &other);
    assert_eq!(deleted["details"]["unassigned_sources"], json!([source]));
    let created = find("token.created", &member_id);
    assert_eq!(created["details"]["role"], "member");
    assert_eq!(created["details"]["projects"], json!([shop]));
    find("token.revoked", &member_id);
    assert_eq!(
        find("source.created", &second)["details"]["provider"],
        "gitlab"
    );

    // The source's own history, filtered: newest first, only its events.
    let mine = w.audit(&format!("?source={source}")).await;
    assert_eq!(
        actions(&mine),
        [
            "source.deleted",
            "source.edited",
            "source.tested",
            "source.enabled",
            "source.disabled",
            "source.edited",
            "source.created"
        ]
    );
    let mine_events = mine["events"].as_array().unwrap();
    assert!(mine_events.iter().all(|e| e["target"] == source.as_str()));
    let changed = &mine_events[5]["details"]["changed"];
    for field in ["display_name", "projects", "auth.fields.token: replaced"] {
        assert!(
            changed.as_array().unwrap().contains(&json!(field)),
            "{field} in {changed}"
        );
    }
    assert_eq!(mine_events[1]["details"]["changed"], json!(["projects"]));
    assert_eq!(
        mine_events[2]["details"],
        json!({"ok": true, "code": "connected"})
    );

    // Paging: pages of two, following next_before, give the same events.
    let mut paged = Vec::new();
    let mut query = format!("?source={source}&limit=2");
    loop {
        let page = w.audit(&query).await;
        let events = page["events"].as_array().unwrap().clone();
        assert!(events.len() <= 2);
        paged.extend(events);
        match page["next_before"].as_u64() {
            Some(before) => query = format!("?source={source}&limit=2&before={before}"),
            None => break,
        }
    }
    assert_eq!(Value::Array(paged), mine["events"]);
    let last_page = w.audit(&format!("?source={source}&limit=7")).await;
    assert!(last_page["next_before"].is_null(), "{last_page}");

    // Admins only; bad parameters name the parameter.
    let viewer = w
        .app
        .admin(
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "Viewer", "role": "member", "projects": [shop]})),
        )
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = w
        .app
        .call("GET", "/api/v1/audit", Some(&viewer), None)
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    w.app
        .admin("GET", "/api/v1/audit?limit=0", None)
        .await
        .expect_error(400, "limit");
    w.app
        .admin("GET", "/api/v1/audit?before=x", None)
        .await
        .expect_error(400, "before");
    w.app
        .admin("GET", "/api/v1/audit?sauce=1", None)
        .await
        .expect_error(400, "sauce");
    let r = w.app.call("GET", "/api/v1/audit", None, None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_waits_for_the_reset_when_the_tracker_says_no_request_is_left() {
    let w = world().await;
    let shop = w.project("Shop").await;
    let source = w.create_source("GitLab", json!({"mode": "all"})).await;
    let keys: Vec<String> = (1..=60).map(|n| n.to_string()).collect();
    w.app
        .admin(
            "POST",
            &format!("/api/v1/projects/{shop}/links/bulk"),
            Some(json!({"test_object": "test-case:TC-1", "source_id": source, "keys": keys})),
        )
        .await
        .expect(200);

    // One request left in the window: the first batch of 50 spends it, the second waits.
    w.tracker.lock().unwrap().served = LIMIT - 1;
    let report = host::sync::refresh_source(&w.app.state, &source, None)
        .await
        .unwrap();
    assert_eq!(w.window().0, 0);
    assert_eq!(
        w.tracker.lock().unwrap().served,
        LIMIT,
        "no request past the limit"
    );
    assert_eq!(report.batches, 1, "{report:?}");
    assert_eq!((report.refreshed, report.failed), (50, 0), "{report:?}");
    let wait = report.retry_after_secs.expect("the source waits");
    assert!(
        (3590..=3600).contains(&wait),
        "until the reset, an hour away: {wait}"
    );
    let h = w.health(&source).await;
    assert_eq!(h["status"], "rate-limited", "{h}");
    assert_eq!(h["rate_limit"]["active"], true);

    // A new window: the sync goes on.
    w.tracker.lock().unwrap().served = 0;
    w.test(&source).await;
    let report = host::sync::refresh_source(&w.app.state, &source, None)
        .await
        .unwrap();
    assert_eq!((report.batches, report.refreshed), (2, 60), "{report:?}");
    assert_eq!(report.retry_after_secs, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_to_how_the_tracker_is_reached_clears_the_last_test_result() {
    let w = world().await;
    let source = w.create_source("GitLab", json!({"mode": "all"})).await;
    let path = format!("/api/v1/sources/{source}");
    let last_test = async || w.app.admin("GET", &path, None).await.expect(200)["last_test"].clone();
    let edit = async |body: Value| {
        w.app.admin("PUT", &path, Some(body)).await.expect(200)["last_test"].clone()
    };
    let body = || w.source_body("GitLab", None, json!({"mode": "all"}));

    assert_eq!(w.test(&source).await["ok"], true);
    assert_eq!(last_test().await["ok"], true);
    // A new name or new capabilities keep it.
    let mut renamed = body();
    renamed["display_name"] = json!("GitLab (shop)");
    assert_eq!(edit(renamed).await["ok"], true);

    // A wrong token, another base URL, auth field or network setting: not tested since.
    let mut token = body();
    token["auth"]["fields"]["token"] = json!("glpat-wrong");
    let mut base = body();
    base["base_url"] = json!(format!("{}/group/other", w.gitlab.url));
    let mut network = body();
    network["network"] = json!({"proxy_url": "http://127.0.0.1:9"});
    for changed in [token, base, network] {
        assert_eq!(w.test(&source).await["ok"], true);
        assert!(last_test().await.is_object());
        assert!(edit(changed.clone()).await.is_null(), "{changed}");
        assert!(last_test().await.is_null(), "stored too");
        edit(body()).await;
    }
    // Sources as code follows the same rule.
    assert_eq!(w.test(&source).await["ok"], true);
    let file = format!(
        "[[sources]]\ndisplay_name = \"GitLab\"\nprovider = \"gitlab\"\nbase_url = \"{}/group/other\"\nprojects = \"all\"\nauth = {{ type = \"api-token\", fields = {{}} }}\n",
        w.gitlab.url
    );
    let toml = Some(("application/toml", file.into_bytes()));
    w.app
        .call_raw("POST", "/api/v1/sources/import", Some(&w.app.admin), toml)
        .await
        .expect(200);
    assert!(last_test().await.is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn source_health_moves_when_the_tracker_fails_or_sends_rate_limit_headers() {
    let w = world().await;
    let shop = w.project("Shop").await;
    let source = w.create_source("GitLab", json!({"mode": "all"})).await;

    let h = w.health(&source).await;
    assert_eq!(h["status"], "unknown", "{h}");
    assert_eq!(h["calls"], 0);
    assert!(h["last_success_at"].is_null() && h["last_error"].is_null());
    assert!(h["rate_limit"].is_null());

    // A working tracker: a success, no error.
    assert_eq!(w.test(&source).await["ok"], true);
    let h = w.health(&source).await;
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["source_id"], source.as_str());
    assert_eq!(
        (h["calls"].as_u64(), h["window_errors"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(h["error_rate"], 0.0);
    let first_success = h["last_success_at"].as_u64().unwrap();
    // The headroom the tracker announced in its headers.
    let (remaining, resets_at) = w.window();
    assert!(remaining < LIMIT, "the test made requests");
    let rate = &h["rate_limit"];
    assert_eq!(rate["remaining"].as_u64(), Some(remaining), "{h}");
    assert_eq!(rate["limit"].as_u64(), Some(LIMIT));
    assert_eq!(rate["resets_at"].as_u64(), Some(resets_at));
    assert!(rate["reported_at"].as_u64().unwrap() >= first_success - 5_000);
    assert_eq!(rate["active"], false);
    assert!(rate["retry_after_secs"].is_null() && rate["limited_until"].is_null());

    // A link fetch counts too (fetch-issue through links).
    w.app
        .admin(
            "POST",
            &format!("/api/v1/projects/{shop}/links"),
            Some(json!({"test_object": "test-case:TC-1", "source_id": source, "key": "7"})),
        )
        .await
        .expect(201);
    let h = w.health(&source).await;
    assert_eq!(h["calls"], 2, "{h}");
    assert!(h["last_success_at"].as_u64().unwrap() >= first_success);
    let used = remaining - w.window().0;
    assert!(used >= 1, "the fetch made a request");
    assert_eq!(
        h["rate_limit"]["remaining"].as_u64(),
        Some(remaining - used)
    );
    // The admin list carries the same health, for the page.
    let list = w
        .app
        .admin("GET", "/api/v1/sources", None)
        .await
        .expect(200)
        .clone();
    assert_eq!(list[0]["health"]["status"], "ok", "{list}");
    assert_eq!(list[0]["health"]["rate_limit"], h["rate_limit"]);

    // The tracker starts failing: the last error and the error rate move.
    w.set(Mode::Failing);
    let outcome = w.test(&source).await;
    assert_eq!(outcome["ok"], false);
    let h = w.health(&source).await;
    assert_eq!(h["status"], "failing", "{h}");
    assert_eq!(h["last_error"]["code"], outcome["code"]);
    assert!(
        h["last_error"]["message"].as_str().unwrap().contains("500"),
        "{h}"
    );
    assert!(h["last_error"]["at"].as_u64().unwrap() >= first_success);
    assert_eq!(
        (h["window_calls"].as_u64(), h["window_errors"].as_u64()),
        (Some(3), Some(1))
    );
    assert!((h["error_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);

    // It rate-limits a sync: no request left until the window resets, and a Retry-After.
    w.set(Mode::RateLimited);
    let pacing = Arc::new(host::sync::Pacing::default());
    host::sync::pass(&w.app.state, &pacing, Duration::from_millis(10))
        .await
        .unwrap();
    let h = w.health(&source).await;
    assert_eq!(h["status"], "rate-limited", "{h}");
    assert_eq!(h["last_error"]["code"], "rate-limited");
    assert_eq!(h["rate_limit"]["retry_after_secs"], 120);
    assert_eq!(h["rate_limit"]["active"], true);
    assert_eq!(h["rate_limit"]["remaining"], 0);
    assert_eq!(h["rate_limit"]["resets_at"].as_u64(), Some(w.window().1));
    let until = h["rate_limit"]["limited_until"].as_u64().unwrap();
    assert!(until >= h["last_error"]["at"].as_u64().unwrap() + 119_000);
    assert_eq!(
        (h["window_calls"].as_u64(), h["window_errors"].as_u64()),
        (Some(4), Some(2))
    );

    // Back to work: the last call succeeded, earlier errors still weigh in the window.
    w.set(Mode::Working);
    assert_eq!(w.test(&source).await["ok"], true);
    let h = w.health(&source).await;
    assert_eq!(
        h["last_error"]["code"], "rate-limited",
        "the last error is kept"
    );
    assert_eq!(h["window_errors"], 2);
    assert_eq!(h["calls"], 5);
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["rate_limit"]["active"], false, "a success ends the wait");
    assert_eq!(h["rate_limit"]["remaining"].as_u64(), Some(w.window().0));

    // The same calls in /metrics, by provider, operation and outcome.
    let (_, samples) = w.metrics().await;
    let calls = |operation: &str, outcome: &str| {
        value(
            &samples,
            "integration_plugin_calls_total",
            &[
                ("provider", "gitlab"),
                ("operation", operation),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(calls("test-connection", "ok"), Some(2.0));
    assert_eq!(calls("test-connection", "provider-error"), Some(1.0));
    assert_eq!(calls("fetch-issue", "ok"), Some(1.0));
    assert_eq!(calls("fetch-issues", "rate-limited"), Some(1.0));
    assert_eq!(
        value(
            &samples,
            "integration_plugin_call_duration_seconds_count",
            &[("provider", "gitlab")]
        ),
        Some(5.0)
    );
    assert_eq!(
        value(&samples, "integration_sync_sources_due", &[]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "integration_source_rate_limit_remaining",
            &[("source_id", &source)]
        ),
        Some(w.window().0 as f64)
    );

    // An edit that changes nothing about the account keeps the headroom; a new token (another
    // account, with its own limit) forgets it.
    let mut body = w.source_body("GitLab", None, json!({"mode": "all"}));
    w.app
        .admin(
            "PUT",
            &format!("/api/v1/sources/{source}"),
            Some(body.clone()),
        )
        .await
        .expect(200);
    assert!(w.health(&source).await["rate_limit"]["remaining"].is_u64());
    body["auth"]["fields"]["token"] = json!(CANARY2);
    w.app
        .admin("PUT", &format!("/api/v1/sources/{source}"), Some(body))
        .await
        .expect(200);
    let h = w.health(&source).await;
    assert!(h["rate_limit"]["remaining"].is_null(), "{h}");
    assert_eq!(
        h["rate_limit"]["retry_after_secs"], 120,
        "the wait history stays"
    );
    // The same through sources as code: an import that moves it to another project.
    w.test(&source).await;
    assert!(w.health(&source).await["rate_limit"]["remaining"].is_u64());
    let file = format!(
        "[[sources]]\ndisplay_name = \"GitLab\"\nprovider = \"gitlab\"\nbase_url = \"{}/group/other\"\nprojects = \"all\"\nauth = {{ type = \"api-token\", fields = {{}} }}\n",
        w.gitlab.url
    );
    let toml = Some(("application/toml", file.into_bytes()));
    w.app
        .call_raw("POST", "/api/v1/sources/import", Some(&w.app.admin), toml)
        .await
        .expect(200);
    let h = w.health(&source).await;
    assert!(h["rate_limit"]["remaining"].is_null(), "{h}");

    // Admins only; an unknown source is a 404; a deleted one forgets its health.
    let member = w
        .app
        .admin(
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "M", "role": "member", "projects": [shop]})),
        )
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = w
        .app
        .call(
            "GET",
            &format!("/api/v1/sources/{source}/health"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    let r = w
        .app
        .admin("GET", "/api/v1/sources/src_nope/health", None)
        .await;
    assert_eq!(r.status, 404);
    w.app
        .admin("DELETE", &format!("/api/v1/sources/{source}"), None)
        .await
        .expect(204);
    let r = w
        .app
        .admin("GET", &format!("/api/v1/sources/{source}/health"), None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(w.app.state.metrics.health(&source, None).status, "unknown");
    assert_eq!(w.app.state.plugins.headroom(&source), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_as_prometheus_text_and_move_with_requests() {
    let w = world().await;
    let (text, before) = w.metrics().await;
    for family in [
        "integration_http_requests_total",
        "integration_plugin_calls_total",
        "integration_plugin_call_duration_seconds",
        "integration_sync_sources_due",
        "integration_plugins_loaded",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} in {text}"
        );
    }
    assert!(value(&before, "integration_plugins_loaded", &[]).unwrap() >= 6.0);

    let requests = |samples: &[Sample], route: &str, status: &str| {
        value(
            samples,
            "integration_http_requests_total",
            &[("method", "GET"), ("route", route), ("status", status)],
        )
        .unwrap_or(0.0)
    };
    w.app
        .admin("GET", "/api/v1/sources", None)
        .await
        .expect(200);
    w.app
        .admin("GET", "/api/v1/sources", None)
        .await
        .expect(200);
    w.app
        .admin("GET", "/api/v1/sources/src_0123456789abcdef", None)
        .await
        .expect(404);
    w.app
        .call("GET", "/api/v1/sources", None, None)
        .await
        .expect(401);
    w.app.call("GET", "/healthz", None, None).await.expect(200);
    w.app
        .admin("GET", "/api/v1/no/such/route", None)
        .await
        .expect(404);

    let (text, after) = w.metrics().await;
    assert_eq!(
        requests(&after, "/api/v1/sources", "200") - requests(&before, "/api/v1/sources", "200"),
        2.0
    );
    assert_eq!(requests(&after, "/api/v1/sources", "401"), 1.0);
    assert_eq!(requests(&after, "/api/v1/sources/{id}", "404"), 1.0);
    assert_eq!(requests(&after, "/healthz", "200"), 1.0);
    assert_eq!(
        requests(&after, "unmatched", "404"),
        1.0,
        "an unknown path is one series, whatever the path"
    );
    assert_eq!(
        requests(&after, "/metrics", "200"),
        1.0,
        "the first scrape is counted"
    );
    assert!(
        !text.contains("src_0123456789abcdef") && !text.contains("no/such"),
        "labels carry routes, never ids or raw paths"
    );

    // A plugin call fills the latency histogram: buckets rise to +Inf, which equals the count.
    let source = w.create_source("GitLab", json!({"mode": "all"})).await;
    w.test(&source).await;
    let (_, samples) = w.metrics().await;
    let buckets: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == "integration_plugin_call_duration_seconds_bucket")
        .collect();
    assert_eq!(buckets.len(), 13, "{buckets:?}");
    assert!(buckets.windows(2).all(|p| p[0].value <= p[1].value));
    assert_eq!(buckets.last().unwrap().labels["le"], "+Inf");
    assert_eq!(buckets.last().unwrap().value, 1.0);
    assert!(
        value(
            &samples,
            "integration_plugin_call_duration_seconds_sum",
            &[("provider", "gitlab")]
        )
        .unwrap()
            > 0.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_ready_with_plugins_and_a_database_and_503_without_plugins() {
    let app = TestApp::start().await;
    let r = app.call("GET", "/readyz", None, None).await;
    let body = r.expect(200);
    assert_eq!(body["status"], "ready");
    assert!(body["plugins"].as_u64().unwrap() >= 6, "{body}");
    let engine = match integration_tests::on_postgres() {
        true => "postgres",
        false => "redb",
    };
    assert_eq!(body["database"], engine, "{body}");
    assert_eq!(app.call("GET", "/healthz", None, None).await.status, 200);

    // The same service with no plugin loaded is not ready.
    let dir = tempfile::tempdir().unwrap();
    let store = host::store::Store::open(&dir.path().join("integration.redb")).unwrap();
    let key = host::crypto::MasterKey::load_or_create(&dir.path().join("master.key")).unwrap();
    let plugins =
        Arc::new(host::plugin::PluginHost::new(host::plugin::Limits::default(), None).unwrap());
    let state = host::app::AppState::new(store, plugins, key, dir.path().join("plugins"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, host::app::router(state))
            .await
            .unwrap();
    });
    let resp = reqwest::get(format!("{url}/readyz")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "not-ready");
    assert_eq!(body["plugins"], 0);
}

/// A record damaged while the service runs (after the check at start) used to panic in redb
/// inside the handler, dropping the connection, while `/readyz` kept answering 200.
#[tokio::test(flavor = "multi_thread")]
async fn a_record_damaged_at_run_time_is_a_500_and_makes_readyz_not_ready() {
    if integration_tests::on_postgres() {
        return; // about the bytes of a redb file
    }
    let app = TestApp::start().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let made = app
            .admin(
                "POST",
                "/api/v1/projects",
                Some(json!({"name": format!("Damaged {n}")})),
            )
            .await;
        ids.push(id(made.expect(201)));
    }
    // A fresh process reads the file, not what it wrote.
    let app = app.restart().await;
    let path = app.dir.path().join("integration.redb");
    let mut bytes = std::fs::read(&path).unwrap();
    let needle = ids[1].as_bytes();
    let at: Vec<usize> = (0..bytes.len() - needle.len())
        .filter(|&i| &bytes[i..i + needle.len()] == needle)
        .collect();
    assert!(!at.is_empty());
    for i in at {
        bytes[i] = 0xff; // no longer UTF-8: redb's key decoder unwraps
    }
    std::fs::write(&path, bytes).unwrap();

    let listed = app.admin("GET", "/api/v1/projects", None).await;
    assert_eq!(listed.status, 500, "{}", listed.text);
    assert_eq!(listed.body["error"]["message"], "internal error");
    let ready = app.call("GET", "/readyz", None, None).await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert!(ready.text.contains("damaged"), "{}", ready.text);
}

/// One sample of the text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The value of the sample `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// Parses Prometheus text format 0.0.4 strictly enough for a test: every line is a comment
/// or `name{labels} value`; `# HELP` then `# TYPE` come before a family's samples; a family
/// is declared once; histogram samples end in `_bucket`, `_sum` or `_count`.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helped: Vec<String> = Vec::new();
    let mut samples = Vec::new();
    assert!(text.ends_with('\n'), "the text ends with a newline");
    for line in text.lines() {
        assert!(!line.is_empty(), "no blank lines expected");
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(valid_name(name) && !help.is_empty(), "{line}");
            assert!(!helped.contains(&name.to_string()), "HELP twice: {line}");
            helped.push(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert_eq!(
                helped.last().map(String::as_str),
                Some(name),
                "HELP before TYPE: {line}"
            );
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "{line}"
            );
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line}");
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let close = line.rfind('}').expect("closing brace");
                (
                    &line[..open],
                    parse_labels(&line[open + 1..close]),
                    &line[close + 1..],
                )
            }
            None => {
                let (name, rest) = line.split_once(' ').expect("name value");
                (name, BTreeMap::new(), rest)
            }
        };
        assert!(valid_name(name), "{line}");
        let value: f64 = rest
            .trim()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("a number: {line}"));
        let family = match types.get(name) {
            Some(_) => name.to_string(),
            None => ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| types.get(*base).map(String::as_str) == Some("histogram"))
                .unwrap_or_else(|| panic!("no TYPE before {line}"))
                .to_string(),
        };
        assert_eq!(
            family,
            *helped.last().unwrap(),
            "samples follow their family: {line}"
        );
        if name.ends_with("_bucket") {
            assert!(labels.contains_key("le"), "{line}");
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    samples
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").expect("name=\"value\"");
        assert!(valid_name(name), "label name {name:?}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next().expect("a closing quote");
            match c {
                '\\' => match chars.next().expect("an escape").1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        assert!(
            labels.insert(name.to_string(), value).is_none(),
            "label twice"
        );
        rest = after[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&after[end + 1..]);
    }
    labels
}
