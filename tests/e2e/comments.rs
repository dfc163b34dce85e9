//! "Add comments" end to end: a project member posts `POST /projects/{p}/links/{id}/comments`
//! through the real router and the real compiled plugins, to stand-ins of the five trackers and
//! of a Custom Tracker that check the real request shapes (`integration_tests::comments`).

use std::sync::atomic::{AtomicUsize, Ordering};

use host::store::Read;
use integration_tests::TestApp;
use integration_tests::comments::{self, EMAIL, QuickActions, TOKEN, adf_valid};
use serde_json::{Value, json};

/// A Markdown comment with every construct the plugins convert.
const RICH: &str = "Test run **42** _failed_ on `login`:\nsee [the log](https://ci.example/42).\n\n\
    - step one\n- step <two>\n\n1. first\n2. second\n\n```\nassert!(ok);\n```";

/// One tracker's source and the keys its stand-in treats as "takes comments", "refuses" and
/// "missing".
struct Tracker {
    provider: &'static str,
    base_path: &'static str,
    auth: Value,
    settings: Value,
    ok: &'static str,
    refused: &'static str,
    missing: &'static str,
}

fn trackers() -> Vec<Tracker> {
    let token = json!({"type": "api-token", "fields": {"token": TOKEN}});
    vec![
        Tracker {
            provider: "github",
            base_path: "",
            auth: token.clone(),
            settings: json!({"api-url": "{standIn}"}),
            ok: "1",
            refused: "2",
            missing: "3",
        },
        Tracker {
            provider: "gitlab",
            base_path: "/acme/shop",
            auth: token,
            settings: json!({}),
            ok: "1",
            refused: "2",
            missing: "3",
        },
        Tracker {
            provider: "jira-cloud",
            base_path: "",
            auth: json!({"type": "api-token", "fields": {"email": EMAIL, "api-token": TOKEN}}),
            settings: json!({}),
            ok: "PROJ-1",
            refused: "PROJ-2",
            missing: "PROJ-3",
        },
        Tracker {
            provider: "azure-devops",
            base_path: "/DefaultCollection/Fabrikam",
            auth: json!({"type": "api-token", "fields": {"pat": TOKEN}}),
            settings: json!({}),
            ok: "1",
            refused: "",
            missing: "3",
        },
        Tracker {
            provider: "linear",
            base_path: "",
            auth: json!({"type": "api-token", "fields": {"api-key": TOKEN}}),
            settings: json!({"api-url": "{standIn}"}),
            ok: "ENG-1",
            refused: "ENG-2",
            missing: "ENG-3",
        },
        Tracker {
            provider: "custom",
            base_path: "",
            auth: json!({"type": "none"}),
            settings: json!({
                "comment-api-url": "{baseUrl}/api/issues/{key}/comments",
                "comment-id-pointer": "/comment/id",
                "comment-url-pointer": "/comment/html_url",
            }),
            ok: "REQ-1",
            refused: "REQ-2",
            missing: "REQ-3",
        },
    ]
}

async fn stand_in(provider: &str, quick: &QuickActions) -> integration_tests::StandIn {
    match provider {
        "github" => comments::github().await,
        "gitlab" => comments::gitlab(quick.clone()).await,
        "jira-cloud" => comments::jira().await,
        "azure-devops" => comments::azure_devops().await,
        "linear" => comments::linear().await,
        _ => comments::custom().await,
    }
}

/// A project with a member, and a source of `t` at `stand_in` with "Add comments" on.
struct Setup {
    project: String,
    member: String,
    source: String,
}

async fn setup(app: &TestApp, t: &Tracker, stand_in: &str, capabilities: Value) -> Setup {
    static SETUPS: AtomicUsize = AtomicUsize::new(0);
    let n = SETUPS.fetch_add(1, Ordering::Relaxed);
    let (project, member) = app
        .project_with_member(&format!("{} tests {n}", t.provider))
        .await;
    let settings: String = t.settings.to_string().replace("{standIn}", stand_in);
    let base_url = match t.provider {
        "github" => "https://github.com/acme/shop".to_string(),
        "linear" => "https://linear.app/acme".to_string(),
        _ => format!("{stand_in}{}", t.base_path),
    };
    let source = app
        .create(
            "/api/v1/sources",
            json!({
                "provider": t.provider,
                "display_name": format!("{} source {n}", t.provider),
                "base_url": base_url,
                "auth": t.auth,
                "issue_url_template": if t.provider == "custom" { json!("{baseUrl}/browse/{key}") } else { Value::Null },
                "capabilities": capabilities,
                "projects": {"mode": "all"},
                "settings": serde_json::from_str::<Value>(&settings).unwrap(),
            }),
        )
        .await;
    Setup {
        project,
        member,
        source,
    }
}

fn comments_on() -> Value {
    json!({"read_issue_details": false, "add_comments": true})
}

impl Setup {
    /// Links `key` as the member; returns the link id.
    async fn link(&self, app: &TestApp, key: &str) -> String {
        let body = json!({"test_object": "test-case:TC-1", "source_id": self.source, "key": key});
        let path = format!("/api/v1/projects/{}/links", self.project);
        let created = app
            .call("POST", &path, Some(&self.member), Some(body))
            .await;
        created.expect(201)["id"].as_str().unwrap().to_string()
    }

    async fn comment(&self, app: &TestApp, link: &str, text: &str) -> integration_tests::Response2 {
        let path = format!("/api/v1/projects/{}/links/{link}/comments", self.project);
        app.call(
            "POST",
            &path,
            Some(&self.member),
            Some(json!({ "body": text })),
        )
        .await
    }
}

/// The body each tracker received for the comment [`RICH`].
fn check_sent(provider: &str, body: &Value) {
    match provider {
        "github" | "custom" => assert_eq!(body, &json!({ "body": RICH })),
        "gitlab" => assert_eq!(body["body"], RICH, "nothing to neutralise here"),
        "jira-cloud" => {
            let doc = &body["body"];
            adf_valid(doc).unwrap();
            let text = doc.to_string();
            for needle in [
                r#"{"marks":[{"type":"strong"}],"text":"42","type":"text"}"#,
                r#"{"marks":[{"type":"em"}],"text":"failed","type":"text"}"#,
                r#"{"marks":[{"type":"code"}],"text":"login","type":"text"}"#,
                r#""href":"https://ci.example/42""#,
                r#""type":"hardBreak""#,
                r#""type":"bulletList""#,
                r#""type":"orderedList""#,
                r#"{"content":[{"text":"assert!(ok);","type":"text"}],"type":"codeBlock"}"#,
            ] {
                assert!(text.contains(needle), "{needle} missing from {text}");
            }
        }
        "azure-devops" => {
            let html = body["text"].as_str().unwrap();
            assert!(
                html.starts_with(
                    "<p>Test run <strong>42</strong> <em>failed</em> on <code>login</code>:<br>"
                ),
                "{html}"
            );
            assert!(
                html.contains("<a href=\"https://ci.example/42\">the log</a>"),
                "{html}"
            );
            assert!(
                html.contains("<ul><li>step one</li><li>step &lt;two&gt;</li></ul>"),
                "{html}"
            );
            assert!(
                html.contains("<ol><li>first</li><li>second</li></ol>"),
                "{html}"
            );
            assert!(
                html.ends_with("<pre><code>assert!(ok);</code></pre>"),
                "{html}"
            );
        }
        "linear" => {
            let input = &body["variables"]["input"];
            assert_eq!(input["body"], RICH);
            assert_eq!(input["issueId"], "ENG-1");
            assert_eq!(input["doNotSubscribeToIssue"], true);
        }
        other => panic!("{other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_tracker_takes_a_comment_through_the_api_in_its_own_shape() {
    let app = TestApp::start().await;
    let quick = QuickActions::default();
    for t in trackers() {
        let tracker = stand_in(t.provider, &quick).await;
        let s = setup(&app, &t, &tracker.url, comments_on()).await;
        let link = s.link(&app, t.ok).await;
        let posted = s.comment(&app, &link, RICH).await;
        let body = posted.expect(201);
        let (id, url) = (body["id"].as_str().unwrap(), body["url"].as_str());
        let expected = match t.provider {
            "github" => (
                "492700400",
                "https://github.com/acme/shop/issues/1#issuecomment-492700400".to_string(),
            ),
            "gitlab" => (
                "305",
                format!("{}/acme/shop/-/issues/1#note_305", tracker.url),
            ),
            "jira-cloud" => (
                "10000",
                format!("{}/browse/PROJ-1?focusedCommentId=10000", tracker.url),
            ),
            "azure-devops" => (
                "50",
                format!(
                    "{}/DefaultCollection/Fabrikam/_workitems/edit/1",
                    tracker.url
                ),
            ),
            "linear" => (
                "2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9",
                "https://linear.app/acme/issue/eng-1#comment-2174add1".to_string(),
            ),
            _ => ("77", "https://tracker.example/issues/REQ-1#c77".to_string()),
        };
        assert_eq!(
            (id, url),
            (expected.0, Some(expected.1.as_str())),
            "{}",
            t.provider
        );
        assert_eq!(body["link_id"], link);
        let sent: Vec<_> = tracker
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect();
        assert_eq!(sent.len(), 1, "{}: one POST", t.provider);
        check_sent(t.provider, &sent[0].json());
    }
    assert!(quick.0.lock().unwrap().is_empty());

    // Audited with a short excerpt, never the whole text.
    let events: Vec<Value> = (app.state.store)
        .read(|r| r.audit_page(u64::MAX, 10_000))
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| e["action"] == "link.commented")
        .collect();
    assert_eq!(events.len(), 6);
    for e in &events {
        let excerpt = e["details"]["excerpt"].as_str().unwrap();
        assert_eq!(excerpt, RICH.chars().take(60).collect::<String>());
        assert_eq!(e["details"]["length"], RICH.chars().count());
        assert!(!e.to_string().contains("assert!(ok)"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trackers_refusals_say_what_to_fix() {
    let app = TestApp::start().await;
    let quick = QuickActions::default();
    for t in trackers() {
        let tracker = stand_in(t.provider, &quick).await;
        let s = setup(&app, &t, &tracker.url, comments_on()).await;
        if !t.refused.is_empty() {
            let link = s.link(&app, t.refused).await;
            let refused = s.comment(&app, &link, "Test failed").await;
            assert_eq!(refused.status, 403, "{}: {}", t.provider, refused.text);
            assert_eq!(refused.body["error"]["code"], "tracker-forbidden");
            let message = refused.body["error"]["message"].as_str().unwrap();
            let says = match t.provider {
                "github" | "custom" => "locked",
                "gitlab" => "api scope",
                "jira-cloud" => "Add comments permission",
                _ => "access",
            };
            assert!(message.contains(says), "{}: {message}", t.provider);
        }
        let link = s.link(&app, t.missing).await;
        let missing = s.comment(&app, &link, "Test failed").await;
        assert_eq!(missing.status, 404, "{}: {}", t.provider, missing.text);
        assert_eq!(
            missing.body["error"]["code"], "issue-not-found",
            "{}",
            t.provider
        );
    }

    // GitHub: a repository with issues disabled.
    let github = &trackers()[0];
    let tracker = comments::github().await;
    let s = setup(&app, github, &tracker.url, comments_on()).await;
    let link = s.link(&app, "4").await;
    let gone = s.comment(&app, &link, "Test failed").await;
    assert_eq!(gone.status, 403, "{}", gone.text);
    assert!(gone.text.contains("issues are disabled"), "{}", gone.text);

    // A rate limit: the tracker's wait is passed on, and the source waits it out, the next
    // comment included, without asking the tracker.
    let s = setup(&app, github, &tracker.url, comments_on()).await;
    let (limited, other) = (s.link(&app, "5").await, s.link(&app, "1").await);
    let first = s.comment(&app, &limited, "Test failed").await;
    assert_eq!(first.status, 429, "{}", first.text);
    let asked = tracker.requests().len();
    let next = s.comment(&app, &other, "Test failed").await;
    assert_eq!(next.status, 429, "{}", next.text);
    assert_eq!(next.body["error"]["code"], "rate-limited", "{}", next.text);
    assert!(
        next.headers.contains("\"retry-after\": \""),
        "{}",
        next.headers
    );
    assert_eq!(
        tracker.requests().len(),
        asked,
        "the paused source asked the tracker"
    );

    // An unknown issue concerns that comment, not the source: its health shows no error.
    let s = setup(&app, github, &tracker.url, comments_on()).await;
    let link = s.link(&app, "3").await;
    assert_eq!(s.comment(&app, &link, "Test failed").await.status, 404);
    let health = app
        .admin("GET", &format!("/api/v1/sources/{}/health", s.source), None)
        .await;
    assert!(
        health.expect(200)["last_error"].is_null(),
        "{}",
        health.text
    );

    // A Custom Tracker without a comment API says which setting it needs.
    let bare = Tracker {
        settings: json!({}),
        ..trackers().pop().unwrap()
    };
    let tracker = comments::custom().await;
    let s = setup(&app, &bare, &tracker.url, comments_on()).await;
    let link = s.link(&app, "REQ-1").await;
    let unsupported = s.comment(&app, &link, "Test failed").await;
    assert_eq!(unsupported.status, 409, "{}", unsupported.text);
    assert_eq!(unsupported.body["error"]["code"], "comments-unsupported");
    assert!(
        unsupported.text.contains("comment-api-url"),
        "{}",
        unsupported.text
    );
    assert!(tracker.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gitlab_comment_never_runs_a_quick_action() {
    let app = TestApp::start().await;
    let quick = QuickActions::default();
    let gitlab = &trackers()[1];
    let tracker = comments::gitlab(quick.clone()).await;
    let s = setup(&app, gitlab, &tracker.url, comments_on()).await;
    let link = s.link(&app, "1").await;
    for text in [
        "/close",
        "Test failed.\n/close\n/assign @me\n  /label ~bug",
        "```\n/close stays code\n```\n/unassign",
    ] {
        let posted = s.comment(&app, &link, text).await;
        posted.expect(201);
    }
    assert_eq!(*quick.0.lock().unwrap(), Vec::<String>::new());
    let sent: Vec<String> = (tracker.requests().iter())
        .map(|r| r.json()["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sent[0], "\\/close");
    assert_eq!(
        sent[1],
        "Test failed.\n\\/close\n\\/assign @me\n  \\/label ~bug"
    );
    assert_eq!(sent[2], "```\n/close stays code\n```\n\\/unassign");
    // The stand-in does run an unescaped command (so the check above means something).
    assert_eq!(comments::quick_actions("ok\n/close"), ["/close"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_checks_the_comment_before_any_tracker_call() {
    let app = TestApp::start().await;
    let quick = QuickActions::default();
    let jira = &trackers()[2];
    let tracker = comments::jira().await;
    let s = setup(&app, jira, &tracker.url, comments_on()).await;
    let link = s.link(&app, "PROJ-1").await;

    let empty = s.comment(&app, &link, "  \n ").await;
    assert!(empty.expect_error(400, "body").contains("write"));
    // The host's limit (below Jira's 32,767; a plugin's lower one: see plugin_ops).
    let long = "x".repeat(16_001);
    let message = s
        .comment(&app, &link, &long)
        .await
        .expect_error(400, "body");
    assert!(message.contains("at most 16000"), "{message}");
    let missing = app
        .call(
            "POST",
            &format!("/api/v1/projects/{}/links/{link}/comments", s.project),
            Some(&s.member),
            Some(json!({"text": "hi"})),
        )
        .await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    let unknown = s.comment(&app, "lnk_nope", "hi").await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    let (_, stranger) = app.project_with_member("other").await;
    let path = format!("/api/v1/projects/{}/links/{link}/comments", s.project);
    let forbidden = app
        .call("POST", &path, Some(&stranger), Some(json!({"body": "hi"})))
        .await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.text);
    assert!(tracker.requests().is_empty(), "nothing reached the tracker");

    let github = &trackers()[0];
    let gh = stand_in("github", &quick).await;
    let g = setup(&app, github, &gh.url, comments_on()).await;
    let glink = g.link(&app, "1").await;
    let message = g
        .comment(&app, &glink, &"y".repeat(16_001))
        .await
        .expect_error(400, "body");
    assert!(message.contains("16000"), "{message}");

    // The capability off, the source disabled.
    let off = setup(&app, github, &gh.url, json!({"read_issue_details": false})).await;
    let off_link = off.link(&app, "1").await;
    // Members' source list says which sources take comments (the page's "Comment" action).
    for (setup, takes) in [(&off, false), (&g, true)] {
        let path = format!("/api/v1/sources?project={}", setup.project);
        let listed = app.call("GET", &path, Some(&setup.member), None).await;
        let all = listed.expect(200).as_array().unwrap().clone();
        let mine = all
            .iter()
            .find(|x| x["id"] == setup.source.as_str())
            .unwrap();
        assert_eq!(mine["add_comments"], takes);
    }
    let refused = off.comment(&app, &off_link, "hi").await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "capability-off");
    assert!(refused.text.contains("Add comments"), "{}", refused.text);
    app.admin(
        "POST",
        &format!("/api/v1/sources/{}/disable", g.source),
        None,
    )
    .await
    .expect(200);
    let disabled = g.comment(&app, &glink, "hi").await;
    assert_eq!(disabled.status, 409, "{}", disabled.text);
    assert!(disabled.text.contains("disabled"), "{}", disabled.text);
    assert!(gh.requests().is_empty(), "nothing reached the tracker");
}
