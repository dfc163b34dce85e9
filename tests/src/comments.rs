//! Stand-ins of the five trackers' comment APIs ("Add comments", contract 1.1), per
//! `../shared/providers-events.md` sections 1.A-5.A, and of a Custom Tracker's comment API.
//!
//! Each checks the real request shape (method, path, credentials, media types, body) and
//! answers a request of another shape with the tracker's own 4xx, so a plugin that sends the
//! wrong thing fails its test. Issue "1" (`PROJ-1`, `ENG-1`) takes comments; issue "2" refuses
//! them (a locked GitHub conversation, a GitLab or Jira 403, a Linear `forbidden`); issue "3"
//! does not exist; GitHub's issue "4" is in a repository with issues disabled (`410`), its issue
//! "5" meets a secondary rate limit (`429`, `Retry-After: 60`). The
//! GitLab stand-in runs quick actions as GitLab does: a line starting with `/` outside a fenced
//! code block closes the issue (and answers `202` when the note holds nothing else), so a test
//! can prove a comment never runs one.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::StandIn;

/// GitHub's token, GitLab's `PRIVATE-TOKEN`, Jira's API token, Azure DevOps' PAT, Linear's key.
pub const TOKEN: &str = "comment-token-0123456789";
/// Jira's account email.
pub const EMAIL: &str = "qa@acme.example";

fn reply(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// The request's parts the stand-ins check.
struct Seen {
    method: String,
    path: String,
    query: String,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<String> {
        (self.headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    }
}

async fn seen(req: Request) -> Seen {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, 16 << 20).await.unwrap_or_default();
    Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// The JSON body must be an object with exactly these keys.
fn keys_are(body: &Value, keys: &[&str]) -> bool {
    body.as_object()
        .is_some_and(|o| o.len() == keys.len() && keys.iter().all(|k| o.contains_key(*k)))
}

fn json_request(s: &Seen) -> bool {
    s.header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
}

// ---------------------------------------------------------------------------------------------
// GitHub (2.A)

/// GitHub: `POST /repos/acme/shop/issues/{n}/comments` with `{"body": markdown}`.
pub async fn github() -> StandIn {
    StandIn::start(Router::new().fallback(|req: Request| async move {
        let s = seen(req).await;
        if s.header("authorization").as_deref() != Some(&format!("Bearer {TOKEN}")) {
            return reply(401, json!({"message": "Bad credentials", "status": "401"}));
        }
        if s.header("accept").as_deref() != Some("application/vnd.github+json")
            || s.header("x-github-api-version").as_deref() != Some("2022-11-28")
            || !json_request(&s)
        {
            return reply(415, json!({"message": "stand-in: wrong media type or API version"}));
        }
        let Some(n) = (s.path.strip_prefix("/repos/acme/shop/issues/"))
            .and_then(|r| r.strip_suffix("/comments"))
        else {
            return reply(404, json!({"message": "Not Found"}));
        };
        if s.method != "POST" || !keys_are(&s.body, &["body"]) || !s.body["body"].is_string() {
            return reply(422, json!({"message": "Invalid request.\n\n\"body\" wasn't supplied."}));
        }
        let text = s.body["body"].as_str().unwrap();
        match n {
            "2" => reply(403, json!({
                "message": "Unable to create comment because issue is locked.",
                "documentation_url": "https://help.github.com/articles/locking-conversations/"
            })),
            "3" => reply(404, json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment"})),
            "4" => reply(410, json!({"message": "Issues are disabled for this repo", "documentation_url": "https://docs.github.com/v3/issues/"})),
            // A secondary rate limit (providers.md 2.2): wait as Retry-After says.
            "5" => {
                let mut limited = reply(429, json!({
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
                }));
                limited.headers_mut().insert("retry-after", "60".parse().unwrap());
                limited
            }
            _ if text.chars().count() > 65_536 => reply(422, json!({
                "message": "Validation Failed",
                "errors": [{"resource": "IssueComment", "code": "custom", "field": "body",
                            "message": "body is too long (maximum is 65536 characters)"}],
                "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment"
            })),
            n => reply(201, json!({
                "id": 492700400, "node_id": "MDEyOklzc3VlQ29tbWVudDQ5MjcwMDQwMA==",
                "url": format!("https://api.github.com/repos/acme/shop/issues/comments/492700400"),
                "html_url": format!("https://github.com/acme/shop/issues/{n}#issuecomment-492700400"),
                "issue_url": format!("https://api.github.com/repos/acme/shop/issues/{n}"),
                "user": {"login": "octocat", "id": 1}, "author_association": "OWNER",
                "created_at": "2026-12-07T01:00:00Z", "updated_at": "2026-12-07T01:00:00Z",
                "body": text
            })),
        }
    }))
    .await
}

// ---------------------------------------------------------------------------------------------
// GitLab (5.A)

/// What the GitLab stand-in's quick actions did: the issues they closed.
#[derive(Clone, Default)]
pub struct QuickActions(pub Arc<Mutex<Vec<String>>>);

/// GitLab: `POST /api/v4/projects/acme%2Fshop/issues/{iid}/notes` with `{"body": markdown}`.
pub async fn gitlab(ran: QuickActions) -> StandIn {
    StandIn::start(Router::new().fallback(move |req: Request| {
        let ran = ran.clone();
        async move {
            // The project path stays encoded, as GitLab requires.
            let raw_path = req.uri().path().to_string();
            let s = seen(req).await;
            if s.header("private-token").as_deref() != Some(TOKEN) {
                return reply(401, json!({"message": "401 Unauthorized"}));
            }
            let Some(iid) = (raw_path.strip_prefix("/api/v4/projects/acme%2Fshop/issues/"))
                .and_then(|r| r.strip_suffix("/notes"))
            else {
                return reply(404, json!({"error": "404 Not Found"}));
            };
            if s.method != "POST" || !json_request(&s) || !keys_are(&s.body, &["body"]) {
                return reply(400, json!({"error": "body is missing"}));
            }
            let text = s.body["body"].as_str().unwrap_or_default();
            match iid {
                "2" => return reply(403, json!({"message": "403 Forbidden"})),
                "3" => return reply(404, json!({"message": "404 Issue Not Found"})),
                _ => {}
            }
            let commands = quick_actions(text);
            if !commands.is_empty() {
                ran.0.lock().unwrap().push(format!("#{iid}: {}", commands.join(", ")));
                if commands.len() == text.lines().filter(|l| !l.trim().is_empty()).count() {
                    return reply(202, json!({"commands_changes": {"state_event": "close"}, "summary": ["Closed this issue."]}));
                }
            }
            reply(201, json!({
                "id": 305, "type": null, "body": text, "attachment": null,
                "author": {"id": 1, "username": "pipin", "name": "Pip"},
                "created_at": "2026-12-07T01:00:00Z", "updated_at": "2026-12-07T01:00:00Z",
                "system": false, "noteable_id": 121, "noteable_type": "Issue",
                "noteable_iid": iid.parse::<u64>().unwrap_or(0), "internal": false, "resolvable": false
            }))
        }
    }))
    .await
}

/// The lines GitLab would run as quick actions: starting with `/`, outside fenced code.
pub fn quick_actions(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('/') {
            out.push(line.to_string());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Jira Cloud (1.A)

/// Jira: `POST /rest/api/3/issue/{key}/comment` with `{"body": <valid ADF>}`.
pub async fn jira() -> StandIn {
    StandIn::start(Router::new().fallback(|req: Request| async move {
        let s = seen(req).await;
        if s.header("authorization").as_deref() != Some(&basic(EMAIL, TOKEN)) {
            return (StatusCode::UNAUTHORIZED, "Client must be authenticated to access this resource.").into_response();
        }
        let Some(key) = (s.path.strip_prefix("/rest/api/3/issue/"))
            .and_then(|r| r.strip_suffix("/comment"))
        else {
            return reply(404, json!({"errorMessages": ["null for uri"], "errors": {}}));
        };
        if s.method != "POST" || !json_request(&s) || !keys_are(&s.body, &["body"]) {
            return reply(400, json!({"errorMessages": ["Comment body can not be empty!"], "errors": {}}));
        }
        if let Err(problems) = adf_valid(&s.body["body"]) {
            return reply(400, json!({"errorMessages": ["INVALID_INPUT"], "errors": {"comment": problems.join("; ")}}));
        }
        match key {
            "PROJ-2" => reply(403, json!({"errorMessages": ["You do not have the permission to comment on this issue."], "errors": {}})),
            "PROJ-3" => reply(404, json!({"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}})),
            // `/myself`, asked after a 404 to name the account.
            _ => reply(201, json!({
                "self": format!("https://acme.atlassian.net/rest/api/3/issue/10010/comment/10000"),
                "id": "10000",
                "author": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Mia Krystof"},
                "body": s.body["body"],
                "created": "2026-12-07T01:00:00.000+0000", "updated": "2026-12-07T01:00:00.000+0000"
            })),
        }
    })
    .route("/rest/api/3/myself", axum::routing::get(|| async {
        reply(200, json!({"accountId": "5b10a2844c20165700ede21g", "displayName": "Mia Krystof", "emailAddress": EMAIL}))
    })))
    .await
}

/// Checks an Atlassian Document Format document against the rules Jira applies: a `doc` of
/// version 1; known block and inline node types in allowed places; no empty text node; marks
/// among `strong`, `em`, `code`, `link` (with an `href`), `code` only beside `link`.
pub fn adf_valid(doc: &Value) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    if doc["type"] != "doc" || doc["version"] != 1 {
        problems.push("the root must be {\"type\":\"doc\",\"version\":1}".to_string());
    }
    for node in doc["content"].as_array().into_iter().flatten() {
        adf_block(node, &mut problems);
    }
    if doc["content"].as_array().is_none() {
        problems.push("doc has no content array".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn adf_block(node: &Value, problems: &mut Vec<String>) {
    let children = node["content"].as_array().cloned().unwrap_or_default();
    match node["type"].as_str().unwrap_or("") {
        "paragraph" => children.iter().for_each(|c| adf_inline(c, problems)),
        "codeBlock" => {
            for c in &children {
                if c["type"] != "text" || c.get("marks").is_some() {
                    problems.push("codeBlock holds unmarked text only".into());
                }
                adf_inline(c, problems);
            }
        }
        "bulletList" | "orderedList" => {
            if children.is_empty() {
                problems.push("a list needs items".into());
            }
            for item in &children {
                if item["type"] != "listItem" {
                    problems.push(format!("a list holds listItems, not {}", item["type"]));
                }
                let inner = item["content"].as_array().cloned().unwrap_or_default();
                if inner.is_empty() {
                    problems.push("a listItem needs content".into());
                }
                inner.iter().for_each(|c| adf_block(c, problems));
            }
        }
        other => problems.push(format!("unknown or misplaced block node {other:?}")),
    }
}

fn adf_inline(node: &Value, problems: &mut Vec<String>) {
    match node["type"].as_str().unwrap_or("") {
        "hardBreak" => {}
        "text" => {
            if node["text"].as_str().is_none_or(str::is_empty) {
                problems.push("empty text node".into());
            }
            let marks: Vec<&str> = (node["marks"].as_array().into_iter().flatten())
                .map(|m| {
                    if m["type"] == "link" && m["attrs"]["href"].as_str().is_none() {
                        problems.push("a link mark needs attrs.href".into());
                    }
                    m["type"].as_str().unwrap_or("")
                })
                .collect();
            for m in &marks {
                if !["strong", "em", "code", "link"].contains(m) {
                    problems.push(format!("unknown mark {m:?}"));
                }
            }
            if marks.contains(&"code") && marks.iter().any(|m| *m != "code" && *m != "link") {
                problems.push("code combines with link only".into());
            }
        }
        other => problems.push(format!("unknown or misplaced inline node {other:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Azure DevOps (3.A)

/// Azure DevOps Server: `POST /DefaultCollection/Fabrikam/_apis/wit/workItems/{id}/comments`
/// `?api-version=7.1-preview.4` with `{"text": html}`; `200` with the comment.
pub async fn azure_devops() -> StandIn {
    StandIn::start(Router::new().fallback(|req: Request| async move {
        let s = seen(req).await;
        if s.header("authorization").as_deref() != Some(&basic("", TOKEN)) {
            return (StatusCode::UNAUTHORIZED, "").into_response();
        }
        let Some(id) = (s.path.strip_prefix("/DefaultCollection/Fabrikam/_apis/wit/workItems/"))
            .and_then(|r| r.strip_suffix("/comments"))
        else {
            return reply(404, json!({"message": "stand-in: no such route", "typeKey": "RouteNotFound"}));
        };
        if s.query != "api-version=7.1-preview.4" {
            return reply(400, json!({"message": "VS800071: the requested version is not a preview version", "typeKey": "VssInvalidPreviewVersionException"}));
        }
        if s.method != "POST" || !json_request(&s) || !keys_are(&s.body, &["text"]) {
            return reply(400, json!({"message": "The comment text is missing.", "typeKey": "ArgumentException"}));
        }
        match id {
            "3" => reply(404, json!({
                "message": "TF401232: Work item 3 does not exist, or you do not have permissions to read it.",
                "typeKey": "WorkItemUnauthorizedAccessException", "errorCode": 0
            })),
            id => reply(200, json!({
                "workItemId": id.parse::<u64>().unwrap_or(0), "id": 50, "version": 1,
                "text": s.body["text"], "format": "html",
                "createdBy": {"displayName": "Jamal Hartnett"}, "createdDate": "2026-12-07T01:00:00Z",
                "isDeleted": false,
                "url": format!("https://dev.azure.com/fabrikam/6ce954b1/_apis/wit/workItems/{id}/comments/50")
            })),
        }
    }))
    .await
}

// ---------------------------------------------------------------------------------------------
// Linear (4.A)

/// Linear: `POST /graphql` with the `commentCreate` mutation and `{issueId, body}` input.
pub async fn linear() -> StandIn {
    StandIn::start(Router::new().fallback(|req: Request| async move {
        let s = seen(req).await;
        if s.header("authorization").as_deref() != Some(TOKEN) {
            return reply(400, json!({"errors": [{"message": "Authentication required, not authenticated",
                "extensions": {"type": "authentication error", "code": "AUTHENTICATION_ERROR"}}]}));
        }
        let query = s.body["query"].as_str().unwrap_or("");
        let input = &s.body["variables"]["input"];
        if s.method != "POST" || s.path != "/graphql" || !query.contains("commentCreate(input:")
            || !input["body"].is_string() || !input["issueId"].is_string()
        {
            return reply(400, json!({"errors": [{"message": "stand-in: not a commentCreate mutation",
                "extensions": {"type": "graphql error", "code": "GRAPHQL_VALIDATION_FAILED"}}]}));
        }
        match input["issueId"].as_str().unwrap() {
            "ENG-2" => reply(200, json!({"data": null, "errors": [{"message": "Forbidden",
                "extensions": {"type": "forbidden", "code": "FORBIDDEN", "userPresentableMessage": "You don't have access to this team."}}]})),
            "ENG-3" => reply(200, json!({"data": null, "errors": [{"message": "Entity not found: Issue",
                "extensions": {"type": "invalid input", "code": "INPUT_ERROR", "userPresentableMessage": "Could not find referenced Issue."}}]})),
            key => reply(200, json!({"data": {"commentCreate": {"success": true, "lastSyncId": 1,
                "comment": {"id": "2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9",
                            "url": format!("https://linear.app/acme/issue/{}#comment-2174add1", key.to_lowercase())}}}})),
        }
    }))
    .await
}

// ---------------------------------------------------------------------------------------------
// Custom Tracker

/// A tracker with `POST /api/issues/{key}/comments` taking `{"body": markdown}` and answering
/// `{"comment": {"id": ..., "html_url": ...}}`; `REQ-2` is locked (`423`).
pub async fn custom() -> StandIn {
    StandIn::start(Router::new().fallback(|req: Request| async move {
        let s = seen(req).await;
        let Some(key) = (s.path.strip_prefix("/api/issues/")).and_then(|r| r.strip_suffix("/comments"))
        else {
            return (StatusCode::NOT_FOUND, Body::empty()).into_response();
        };
        if s.method != "POST" || !json_request(&s) || !keys_are(&s.body, &["body"]) {
            return reply(400, json!({"error": "expected {\"body\": ...}"}));
        }
        match key {
            "REQ-2" => reply(423, json!({"error": "the issue is locked"})),
            "REQ-3" => reply(404, json!({"error": "no such issue"})),
            key => reply(201, json!({"comment": {"id": 77, "html_url": format!("https://tracker.example/issues/{key}#c77")}})),
        }
    }))
    .await
}
