//! End-to-end tests of the Azure DevOps plugin through the real host runtime, against a
//! stand-in of the Azure DevOps REST API on 127.0.0.1 (the base URL is the stand-in's
//! `/{org}/{project}` or, for Azure DevOps Server, `/tfs/{collection}/{project}`).
//!
//! The stand-in checks what Azure DevOps checks: `api-version=7.1` on every work item call,
//! the PAT as `Authorization: Basic base64(":" + PAT)` (empty user name) or an Entra ID token
//! as `Bearer`, the project path segment, and the request bodies. It answers the shapes of
//! providers.md §3: work items whose empty fields are omitted (no `System.AssignedTo` key when
//! unassigned), the six-key JSON error envelope (`TF200016` project, `TF401232` work item),
//! bad credentials as `203` + HTML sign-in page (organization `fabrikam`), as `401` +
//! `WWW-Authenticate` (organization `contoso`, and the Server collection) or as a redirect to
//! the sign-in site (organization `redirecting`), and `429` with `Retry-After` /
//! `X-RateLimit-*` (organizations `throttled` and `delayed`).
//!
//! The batch endpoint is "Work Items - Get Work Items Batch"
//! (learn.microsoft.com/rest/api/azure/devops/wit/work-items/get-work-items-batch):
//! `POST {org}/{project}/_apis/wit/workitemsbatch` with `{"ids":[…],"fields":[…],
//! "errorPolicy":"omit"}`, at most 200 ids, answered `{"count":n,"value":[work item…]}`;
//! with `omit` an unreadable id comes back as `null` (our reading; the plugin also copes with
//! it being left out), with the default `fail` the whole request fails with TF401232.

use integration_tests::provider_error;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use host::plugin::model::{CredentialScheme, StatusCategory};
use host::plugin::{ProviderError, SourceConfig};
use integration_tests::{StandIn, map, plugin_host, source};
use serde_json::{Value, json};

const PAT: &str = "ado-pat-4xk2m9q7w1e5r8t3y6u0i2o4p6a8s0d";
const ENTRA_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.entra.token";
const PROJECT: &str = "Fabrikam-Fiber";

// ---------------------------------------------------------------------------------------------
// The stand-in
// ---------------------------------------------------------------------------------------------

/// How an organization (or collection) of the stand-in answers bad or missing credentials,
/// or whether it throttles everything.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Org {
    /// 203 with the HTML sign-in page (Services, GET and POST).
    SignInPage,
    /// 401 with `WWW-Authenticate: Basic` and the JSON envelope.
    Challenge,
    /// 302 to the sign-in site on another origin.
    Redirect,
    /// 429, `Retry-After: 17` and the `X-RateLimit-*` set.
    Throttled,
    /// 429 with `X-RateLimit-Reset` (Unix time, 30 s ahead) only.
    ResetOnly,
    /// Behind a read-only proxy: POST answers 405, and the undocumented `connectionData` is
    /// not passed on (404); otherwise like `Challenge`.
    ReadOnlyProxy,
}

fn org(name: &str) -> Option<Org> {
    match name.to_ascii_lowercase().as_str() {
        "fabrikam" => Some(Org::SignInPage),
        "contoso" | "defaultcollection" => Some(Org::Challenge),
        "redirecting" => Some(Org::Redirect),
        "throttled" => Some(Org::Throttled),
        "delayed" => Some(Org::ResetOnly),
        "proxied" => Some(Org::ReadOnlyProxy),
        _ => None,
    }
}

struct Proj {
    name: &'static str,
    public: bool,
    types: &'static [&'static str],
}

const AGILE: &[&str] = &[
    "Bug",
    "Epic",
    "Feature",
    "Issue",
    "Task",
    "Test Case",
    "User Story",
    "Incident",
];
const PROJECTS: &[Proj] = &[
    Proj {
        name: PROJECT,
        public: false,
        types: AGILE,
    },
    Proj {
        name: "Public Project",
        public: true,
        types: &["Epic", "Issue", "Task"],
    },
    Proj {
        name: "Basic-Proj",
        public: false,
        types: &["Epic", "Issue", "Task"],
    },
];

struct Item {
    id: u64,
    kind: &'static str,
    title: &'static str,
    state: &'static str,
    assignee: Option<(&'static str, &'static str)>,
}

const ITEMS: &[Item] = &[
    Item {
        id: 12,
        kind: "User Story",
        title: "Epic 2",
        state: "Active",
        assignee: Some(("Jamal Hartnett", "fabrikamfiber4@hotmail.com")),
    },
    Item {
        id: 13,
        kind: "Bug",
        title: "Login fails on Safari",
        state: "New",
        assignee: None,
    },
    Item {
        id: 14,
        kind: "Bug",
        title: "Crash on save",
        state: "Closed",
        assignee: Some(("Mia Krystof", "mia@fabrikam.com")),
    },
    Item {
        id: 15,
        kind: "Task",
        title: "Old idea",
        state: "Removed",
        assignee: None,
    },
    Item {
        id: 16,
        kind: "Bug",
        title: "Fixed, awaiting verification",
        state: "Resolved",
        assignee: None,
    },
    // A custom work item type with custom states: categories come from the states endpoint.
    Item {
        id: 20,
        kind: "Incident",
        title: "Outage in EU",
        state: "Investigating",
        assignee: Some(("Sam Lee", "sam@fabrikam.com")),
    },
    Item {
        id: 21,
        kind: "Incident",
        title: "Outage in US",
        state: "Mitigated",
        assignee: None,
    },
    Item {
        id: 22,
        kind: "Incident",
        title: "Pager noise",
        state: "Triage",
        assignee: None,
    },
    Item {
        id: 40,
        kind: "Issue",
        title: "Public roadmap item",
        state: "Doing",
        assignee: None,
    },
];

/// `GET …/workitemtypes/Incident/states` (shape: spec example GET__workitem_type_states.json).
const INCIDENT_STATES: &[(&str, &str)] = &[
    ("Triage", "Proposed"),
    ("Investigating", "InProgress"),
    ("Mitigated", "Resolved"),
    ("Closed", "Completed"),
];

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn reply(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

/// The JSON error envelope of every Azure DevOps error (providers.md §3.3).
fn envelope(status: u16, message: &str, type_key: &str, namespace: &str) -> Response {
    reply(
        status,
        json!({
            "$id": "1", "innerException": null, "message": message,
            "typeName": format!("{namespace}.{type_key}, {namespace}"),
            "typeKey": type_key, "errorCode": 0, "eventId": 3000
        }),
    )
}

fn html(status: u16, text: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!DOCTYPE html><html><head><title>{text}</title></head><body>{text}</body></html>"
        ),
    )
        .into_response()
}

fn basic(pat: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(":{pat}"))
    )
}

fn bad_credentials(org: Org) -> Response {
    match org {
        Org::Challenge => {
            let mut r = envelope(
                401,
                "TF400813: The user '' is not authorized to access this resource.",
                "UnauthorizedRequestException",
                "Microsoft.TeamFoundation.Framework.Server",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"https://dev.azure.com/\"".parse().unwrap(),
            );
            r
        }
        Org::Redirect => {
            let mut r = StatusCode::FOUND.into_response();
            r.headers_mut().insert(
                header::LOCATION,
                "https://app.vssps.visualstudio.com/_signin?realm=dev.azure.com&reply_to=x"
                    .parse()
                    .unwrap(),
            );
            r
        }
        _ => html(203, "Azure DevOps Services | Sign In"),
    }
}

fn throttled(org: Org) -> Option<Response> {
    let mut r = match org {
        Org::Throttled | Org::ResetOnly => envelope(
            429,
            "TF400733: The request has been canceled: Request was blocked due to exceeding usage of resource 'WorkItemTrackingResource' in namespace 'User'.",
            "RequestBlockedException",
            "Microsoft.TeamFoundation.Framework.Server",
        ),
        _ => return None,
    };
    let h = r.headers_mut();
    h.insert(
        "x-ratelimit-reset",
        (now() + 30).to_string().parse().unwrap(),
    );
    h.insert("x-ratelimit-remaining", "0".parse().unwrap());
    if org == Org::Throttled {
        h.insert("retry-after", "17".parse().unwrap());
        h.insert(
            "x-ratelimit-resource",
            "WorkItemTrackingResource".parse().unwrap(),
        );
        h.insert("x-ratelimit-delay", "0.5".parse().unwrap());
        h.insert("x-ratelimit-limit", "200".parse().unwrap());
    }
    Some(r)
}

fn decode(segment: &str) -> String {
    segment.replace("%20", " ")
}

fn query(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// A work item as `GET _apis/wit/workitems/{id}?fields=…` answers it: only the asked fields,
/// and empty ones omitted.
fn item_json(origin: &str, org: &str, item: &Item, fields: &[String]) -> Value {
    let mut all = serde_json::Map::new();
    all.insert("System.Id".into(), json!(item.id));
    all.insert("System.AreaPath".into(), json!(PROJECT));
    all.insert("System.TeamProject".into(), json!(PROJECT));
    all.insert("System.WorkItemType".into(), json!(item.kind));
    all.insert("System.State".into(), json!(item.state));
    all.insert("System.Title".into(), json!(item.title));
    if let Some((name, mail)) = item.assignee {
        all.insert(
            "System.AssignedTo".into(),
            json!({
                "displayName": name,
                "url": "https://vssps.dev.azure.com/fabrikam/_apis/Identities/d291b0c4-a05c-4ea6-8df1-4b41d5f39eff",
                "id": "d291b0c4-a05c-4ea6-8df1-4b41d5f39eff",
                "uniqueName": mail,
                "descriptor": "aad.YTkzODFkODYtNTYxYS03ZDdiLWJjM2QtZDUzMjllMjM5OTAz"
            }),
        );
    }
    let fields: serde_json::Map<String, Value> = all
        .into_iter()
        .filter(|(k, _)| fields.is_empty() || fields.iter().any(|f| f == k))
        .collect();
    json!({ "id": item.id, "rev": 3, "fields": fields, "url": format!("{origin}/{org}/_apis/wit/workItems/{}", item.id) })
}

fn not_found_item(id: &str) -> Response {
    envelope(
        404,
        &format!(
            "TF401232: Work item {id} does not exist, or you do not have permissions to read it."
        ),
        "WorkItemUnauthorizedAccessException",
        "Microsoft.TeamFoundation.WorkItemTracking.Server",
    )
}

/// One handler for the whole API: the path is `/{org}/{project}/_apis/…` or
/// `/tfs/{collection}/{project}/_apis/…`.
async fn ado(method: Method, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let Some(apis) = segments.iter().position(|s| *s == "_apis") else {
        return html(404, "Page not found");
    };
    let (prefix, api) = (&segments[..apis], &segments[apis + 1..]);
    let server = prefix.first() == Some(&"tfs");
    let (org_name, project) = match (server, prefix) {
        (true, [_, coll, rest @ ..]) => (*coll, rest.first().map(|p| decode(p))),
        (false, [org, rest @ ..]) => (*org, rest.first().map(|p| decode(p))),
        _ => return html(404, "Page not found"),
    };
    // An organization that does not exist: a web page, not the JSON envelope.
    let Some(org) = org(org_name) else {
        return html(404, "The resource cannot be found.");
    };
    let origin = format!(
        "http://{}",
        headers.get(header::HOST).unwrap().to_str().unwrap()
    );
    let version = query(&uri, "api-version");

    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let signed_in =
        auth == Some(basic(PAT).as_str()) || auth == Some(format!("Bearer {ENTRA_TOKEN}").as_str());
    if let Some(r) = throttled(org) {
        return r;
    }

    if org == Org::ReadOnlyProxy {
        if method == Method::POST {
            return html(405, "Method Not Allowed");
        }
        if api == ["connectionData"] {
            return html(404, "Not Found");
        }
    }
    if api == ["connectionData"] {
        // Reportedly rejects a released api-version; takes a preview one or none.
        if version.as_deref() == Some("7.1") {
            return envelope(
                400,
                "The -preview flag must be supplied.",
                "VssInvalidPreviewVersionException",
                "GitHub.Services.WebApi",
            );
        }
        let user = if signed_in {
            json!({"id": "d291b0c4", "providerDisplayName": "Jamal Hartnett", "isActive": true,
                   "properties": {"Account": {"$type": "System.String", "$value": "fabrikamfiber4@hotmail.com"}}})
        } else {
            json!({"id": "aa442bc4", "providerDisplayName": "Anonymous", "isActive": true, "properties": {}})
        };
        return reply(
            200,
            json!({"authenticatedUser": user, "authorizedUser": user, "instanceId": "20cda608"}),
        );
    }

    if version.as_deref() != Some("7.1") {
        return envelope(
            400,
            "VS800006: No api-version was supplied for the request. The version must be supplied as a query parameter.",
            "VssVersionNotSpecifiedException",
            "Microsoft.VisualStudio.Services.WebApi",
        );
    }
    let Some(project_name) = project else {
        return html(404, "Page not found");
    };
    let Some(project) = PROJECTS
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(&project_name))
    else {
        return envelope(
            404,
            &format!(
                "TF200016: The following project does not exist: {project_name}. Verify that the name of the project is correct and that the project exists on the specified Azure DevOps Server."
            ),
            "ProjectDoesNotExistWithNameException",
            "Microsoft.TeamFoundation.Core.WebApi",
        );
    };
    let allowed = signed_in || (project.public && auth.is_none());
    if !allowed {
        return bad_credentials(org);
    }

    match (&method, api) {
        (&Method::GET, ["wit", "workitemtypes"]) => {
            let value: Vec<Value> = project
                .types
                .iter()
                .map(|t| json!({"name": t, "referenceName": format!("Microsoft.VSTS.WorkItemTypes.{}", t.replace(' ', "")), "isDisabled": false, "xmlForm": "<FORM>…</FORM>"}))
                .collect();
            reply(200, json!({"count": value.len(), "value": value}))
        }
        (&Method::GET, ["wit", "workitemtypes", kind, "states"]) => {
            if decode(kind) != "Incident" {
                return envelope(
                    404,
                    "TF51535: Cannot find work item type.",
                    "WorkItemTypeNotFoundException",
                    "Microsoft.TeamFoundation.WorkItemTracking.Server",
                );
            }
            let value: Vec<Value> = INCIDENT_STATES
                .iter()
                .map(|(name, category)| json!({"name": name, "color": "b2b2b2", "category": category}))
                .collect();
            reply(200, json!({"count": value.len(), "value": value}))
        }
        (&Method::GET, ["wit", "workitems", id]) => {
            let fields: Vec<String> = query(&uri, "fields")
                .map(|f| f.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            match ITEMS.iter().find(|i| i.id.to_string() == *id) {
                Some(item) => reply(200, item_json(&origin, org_name, item, &fields)),
                None => not_found_item(id),
            }
        }
        (&Method::POST, ["wit", "workitemsbatch"]) => {
            if headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                != Some("application/json")
            {
                return envelope(
                    415,
                    "Unsupported media type",
                    "UnsupportedMediaTypeException",
                    "System.Web.Http",
                );
            }
            let Ok(request) = serde_json::from_slice::<Value>(&body) else {
                return envelope(
                    400,
                    "VS402987: the request body is not valid JSON",
                    "InvalidArgumentValueException",
                    "Microsoft.VisualStudio.Services.Common",
                );
            };
            let ids: Vec<u64> = request["ids"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            if ids.is_empty() || ids.len() > 200 {
                return envelope(
                    400,
                    "VS402337: The number of work items requested exceeds the limit of 200.",
                    "VssServiceException",
                    "Microsoft.VisualStudio.Services.Common",
                );
            }
            let fields: Vec<String> = request["fields"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let omit = request["errorPolicy"]
                .as_str()
                .is_some_and(|p| p.eq_ignore_ascii_case("omit"));
            let mut value = Vec::new();
            for id in &ids {
                match ITEMS.iter().find(|i| i.id == *id) {
                    Some(item) => value.push(item_json(&origin, org_name, item, &fields)),
                    None if omit => value.push(Value::Null),
                    None => return not_found_item(&id.to_string()),
                }
            }
            reply(200, json!({"count": value.len(), "value": value}))
        }
        _ => html(404, "Page not found"),
    }
}

async fn azure() -> StandIn {
    StandIn::start(Router::new().fallback(ado)).await
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A source for `/{path}` on the stand-in with a PAT.
fn src(stand: &StandIn, path: &str) -> SourceConfig {
    SourceConfig {
        auth_type: "api-token".into(),
        secrets: map(&[("pat", PAT)]),
        ..source("azure-devops", &format!("{}/{path}", stand.url))
    }
}

fn fabrikam(stand: &StandIn) -> SourceConfig {
    src(stand, &format!("fabrikam/{PROJECT}"))
}

fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const FIELDS_QUERY: &str =
    "fields=System.Title,System.State,System.AssignedTo,System.WorkItemType&api-version=7.1";

// ---------------------------------------------------------------------------------------------
// describe, keys, URLs
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn describes_a_pat_as_basic_with_an_empty_user() {
    let host = plugin_host().await;
    let info = host.get("azure-devops").unwrap().info.clone();
    assert_eq!(info.name, "Azure DevOps");
    let ids: Vec<&str> = info.auth_types.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["api-token", "oauth2", "none"]);
    assert_eq!(
        info.auth_types[0].scheme,
        CredentialScheme::Basic {
            user_field: None,
            password_field: "pat".into()
        }
    );
    assert!(
        info.auth_types[0]
            .fields
            .iter()
            .any(|f| f.name == "pat" && f.secret && f.required)
    );
    assert_eq!(
        info.auth_types[1].scheme,
        CredentialScheme::Bearer {
            field: "access-token".into()
        }
    );
    assert_eq!(
        info.default_issue_url_template,
        "{baseUrl}/_workitems/edit/{key}"
    );
    assert_eq!(
        info.default_create_url_template.as_deref(),
        Some("{baseUrl}/_workitems/create/Bug")
    );
    assert!(info.extra_origins.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn normalizes_work_item_ids_as_typed_or_pasted() {
    let host = plugin_host().await;
    let src = source(
        "azure-devops",
        "https://dev.azure.com/fabrikam/Fabrikam-Fiber",
    );
    let ok = [
        ("123", "123"),
        ("#123", "123"),
        ("  42 ", "42"),
        ("AB#7", "7"),
        ("ab#7", "7"),
        ("2147483647", "2147483647"),
        (
            "https://dev.azure.com/fabrikam/Fabrikam-Fiber/_workitems/edit/12",
            "12",
        ),
        (
            "https://dev.azure.com/fabrikam/Fabrikam-Fiber/_workitems/edit/12/",
            "12",
        ),
        (
            "https://dev.azure.com/Fabrikam/fabrikam-fiber/_workitems/edit/12?fullScreen=true",
            "12",
        ),
        (
            "https://fabrikam.visualstudio.com/Fabrikam-Fiber/_workitems/edit/12",
            "12",
        ),
        (
            "https://fabrikam.visualstudio.com/DefaultCollection/Fabrikam-Fiber/_workitems/edit/12",
            "12",
        ),
        // Ids are unique in the organization: another project's link names the same item.
        (
            "https://dev.azure.com/fabrikam/Other%20Project/_workitems/edit/30",
            "30",
        ),
        ("https://dev.azure.com/fabrikam/_workitems/edit/31", "31"),
        (
            "https://dev.azure.com/fabrikam/Fabrikam-Fiber/_boards/board/t/Fabrikam-Fiber%20Team/Stories?workitem=44",
            "44",
        ),
        (
            "https://dev.azure.com/fabrikam/Fabrikam-Fiber/_backlogs/backlog/Team/Stories/?showParents=false&workitem=45",
            "45",
        ),
        (
            "https://dev.azure.com/fabrikam/web/wi.aspx?pcguid=20cda608-32f0-4e6e-9b7c-8def7b38d15a&id=12",
            "12",
        ),
    ];
    for (input, want) in ok {
        assert_eq!(
            host.normalize_key(&src, input).await.unwrap(),
            want,
            "{input:?}"
        );
    }
    let bad = [
        ("", "empty"),
        ("#", "must follow"),
        ("AB#", "must follow"),
        ("0", "start at 1"),
        ("007", "leading zeros"),
        ("-1", "positive"),
        ("１２", "digits 0-9"),
        ("1 2", "space"),
        ("12a", "expected a work item ID"),
        ("PROJ-12", "expected a work item ID"),
        ("Ⅻ", "digits 0-9"),
        ("2147483648", "larger than any"),
        (
            "https://dev.azure.com/contoso/Fabrikam-Fiber/_workitems/edit/12",
            "another organization",
        ),
        (
            "https://contoso.visualstudio.com/Fabrikam-Fiber/_workitems/edit/12",
            "another organization",
        ),
        (
            "https://dev.azure.com/fabrikam/Fabrikam-Fiber/_workitems/create/Bug",
            "new work item form",
        ),
        (
            "https://dev.azure.com/fabrikam/Fabrikam-Fiber/_boards/board",
            "does not point to a work item",
        ),
        (
            "https://dev.azure.com/fabrikam/Fabrikam-Fiber",
            "does not point to a work item",
        ),
        (
            "https://dev.azure.com/fabrikam/Fabrikam-Fiber/_workitems/edit/0",
            "start at 1",
        ),
        (
            "https://github.com/o/r/issues/1",
            "does not point to a work item",
        ),
    ];
    for (input, fragment) in bad {
        match provider_error(host.normalize_key(&src, input).await) {
            ProviderError::InvalidInput(m) => assert!(m.contains(fragment), "{input:?}: {m}"),
            other => panic!("{input:?}: {other:?}"),
        }
    }

    // Azure DevOps Server: the collection is part of the identity.
    let server = source(
        "azure-devops",
        "https://tfs.example.com/tfs/DefaultCollection/Fabrikam",
    );
    for (input, want) in [
        (
            "https://tfs.example.com/tfs/DefaultCollection/Fabrikam/_workitems/edit/5",
            "5",
        ),
        (
            "https://TFS.example.com/tfs/defaultcollection/Other/_workitems/edit/6",
            "6",
        ),
        (
            "https://tfs.example.com/tfs/DefaultCollection/Fabrikam/Team%20A/_workitems/edit/7",
            "7",
        ),
    ] {
        assert_eq!(
            host.normalize_key(&server, input).await.unwrap(),
            want,
            "{input:?}"
        );
    }
    for input in [
        "https://tfs.example.com/tfs/OtherCollection/Fabrikam/_workitems/edit/5",
        "https://tfs2.example.com/tfs/DefaultCollection/Fabrikam/_workitems/edit/5",
    ] {
        let err = provider_error(host.normalize_key(&server, input).await);
        assert!(
            matches!(&err, ProviderError::InvalidInput(m) if m.contains("another organization or collection")),
            "{err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_and_create_urls() {
    let host = plugin_host().await;
    let src = source(
        "azure-devops",
        "https://dev.azure.com/fabrikam/Fabrikam-Fiber/",
    );
    assert_eq!(
        host.issue_url(&src, "123").await.unwrap(),
        "https://dev.azure.com/fabrikam/Fabrikam-Fiber/_workitems/edit/123"
    );
    assert_eq!(
        host.create_url(&src).await.unwrap(),
        "https://dev.azure.com/fabrikam/Fabrikam-Fiber/_workitems/create/Bug"
    );
    let legacy = source(
        "azure-devops",
        "https://fabrikam.visualstudio.com/Fabrikam-Fiber",
    );
    assert_eq!(
        host.issue_url(&legacy, "5").await.unwrap(),
        "https://fabrikam.visualstudio.com/Fabrikam-Fiber/_workitems/edit/5"
    );
    let custom = SourceConfig {
        issue_url_template: Some("{baseUrl}/_workitems?id={key}".into()),
        create_url_template: Some("{baseUrl}/_workitems/create/User%20Story".into()),
        ..src
    };
    assert_eq!(
        host.issue_url(&custom, "9").await.unwrap(),
        "https://dev.azure.com/fabrikam/Fabrikam-Fiber/_workitems?id=9"
    );
    assert_eq!(
        host.create_url(&custom).await.unwrap(),
        "https://dev.azure.com/fabrikam/Fabrikam-Fiber/_workitems/create/User%20Story"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn base_urls_that_name_no_project_are_refused() {
    let host = plugin_host().await;
    for (base, fragment) in [
        ("https://dev.azure.com/fabrikam", "names no project"),
        ("https://fabrikam.visualstudio.com", "names no project"),
        (
            "https://dev.azure.com/fabrikam/Fabrikam-Fiber/_workitems",
            "must end at the project",
        ),
        (
            "https://dev.azure.com/fabrikam/Fabrikam-Fiber/Team",
            "organization followed by the project",
        ),
        (
            "https://tfs.example.com/Fabrikam",
            "needs the collection and the project",
        ),
        ("ftp://dev.azure.com/fabrikam/p", "not an http(s) URL"),
    ] {
        let src = SourceConfig {
            auth_type: "api-token".into(),
            secrets: map(&[("pat", PAT)]),
            ..source("azure-devops", base)
        };
        match provider_error(host.test_connection(&src).await) {
            ProviderError::InvalidInput(m) => assert!(m.contains(fragment), "{base}: {m}"),
            other => panic!("{base}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// test-connection
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_with_a_pat() {
    let (host, stand) = (plugin_host().await, azure().await);
    let info = host.test_connection(&fabrikam(&stand)).await.unwrap();
    assert_eq!(info.account, "Jamal Hartnett (fabrikamfiber4@hotmail.com)");
    let detail = info.detail.unwrap();
    assert!(
        detail.contains("project Fabrikam-Fiber; work item types: Bug, Epic"),
        "{detail}"
    );
    assert!(!detail.contains("note"), "{detail}");
    let reqs = stand.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(
        reqs[0].uri,
        "/fabrikam/Fabrikam-Fiber/_apis/wit/workitemtypes?api-version=7.1"
    );
    assert_eq!(
        reqs[1].uri,
        "/fabrikam/_apis/connectionData?api-version=7.1-preview"
    );
    for r in &reqs {
        // Basic with an EMPTY user name: base64(":" + PAT).
        assert_eq!(r.header("authorization"), Some(basic(PAT).as_str()));
        assert_eq!(r.header("x-tfs-fedauthredirect"), Some("Suppress"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_with_an_entra_token() {
    let (host, stand) = (plugin_host().await, azure().await);
    let src = SourceConfig {
        auth_type: "oauth2".into(),
        secrets: map(&[("access-token", ENTRA_TOKEN)]),
        ..source("azure-devops", &format!("{}/fabrikam/{PROJECT}", stand.url))
    };
    assert_eq!(
        host.test_connection(&src).await.unwrap().account,
        "Jamal Hartnett (fabrikamfiber4@hotmail.com)"
    );
    assert_eq!(
        stand.requests()[0].header("authorization"),
        Some(format!("Bearer {ENTRA_TOKEN}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_warns_when_the_create_url_type_is_missing() {
    let (host, stand) = (plugin_host().await, azure().await);
    // The Basic process has no "Bug": the default create URL would open a missing type.
    let info = host
        .test_connection(&src(&stand, "fabrikam/Basic-Proj"))
        .await
        .unwrap();
    let detail = info.detail.unwrap();
    assert!(
        detail.contains("work item types: Epic, Issue, Task"),
        "{detail}"
    );
    assert!(
        detail.contains("the create URL opens the type \"Bug\""),
        "{detail}"
    );
    let fixed = SourceConfig {
        create_url_template: Some("{baseUrl}/_workitems/create/Issue".into()),
        ..src(&stand, "fabrikam/Basic-Proj")
    };
    assert!(
        !host
            .test_connection(&fixed)
            .await
            .unwrap()
            .detail
            .unwrap()
            .contains("note")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_in_each_shape_are_unauthorized() {
    let (host, stand) = (plugin_host().await, azure().await);
    let wrong = |path: &str| SourceConfig {
        secrets: map(&[("pat", "expired-pat")]),
        ..src(&stand, path)
    };

    // 203 Non-Authoritative Information + the HTML sign-in page is NOT a success.
    let err = provider_error(
        host.test_connection(&wrong(&format!("fabrikam/{PROJECT}")))
            .await,
    );
    assert!(
        matches!(&err, ProviderError::Unauthorized(m) if m.contains("sign-in page") && m.contains("203")),
        "{err:?}"
    );
    assert_eq!(stand.requests().len(), 1, "stops at the first refusal");

    let err = provider_error(
        host.test_connection(&wrong(&format!("contoso/{PROJECT}")))
            .await,
    );
    assert!(
        matches!(&err, ProviderError::Unauthorized(m) if m.contains("401") && m.contains("TF400813") && m.contains("Work Items (Read)")),
        "{err:?}"
    );

    let err = provider_error(
        host.test_connection(&wrong(&format!("redirecting/{PROJECT}")))
            .await,
    );
    assert!(
        matches!(&err, ProviderError::Unauthorized(m) if m.contains("redirected")),
        "{err:?}"
    );

    // No credentials on a private project.
    let anonymous = source("azure-devops", &format!("{}/fabrikam/{PROJECT}", stand.url));
    let err = provider_error(host.fetch_issue(&anonymous, "12").await);
    assert!(
        matches!(&err, ProviderError::Unauthorized(m) if m.contains("not public")),
        "{err:?}"
    );

    // The batch (a POST) gets the sign-in page too.
    let err = provider_error(
        host.fetch_issues(&wrong(&format!("fabrikam/{PROJECT}")), &keys(&["12", "13"]))
            .await,
    );
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_project_and_organization_are_not_found() {
    let (host, stand) = (plugin_host().await, azure().await);
    let err = provider_error(
        host.test_connection(&src(&stand, "fabrikam/NoSuchProject"))
            .await,
    );
    assert!(
        matches!(&err, ProviderError::NotFound(m) if m.contains("project NoSuchProject does not exist") && m.contains("TF200016")),
        "{err:?}"
    );
    let err = provider_error(
        host.test_connection(&src(&stand, "nosuchorg/Fabrikam-Fiber"))
            .await,
    );
    assert!(
        matches!(&err, ProviderError::NotFound(m) if m.contains("no Azure DevOps organization or collection")),
        "{err:?}"
    );
    let err = provider_error(
        host.fetch_issue(&src(&stand, "fabrikam/NoSuchProject"), "12")
            .await,
    );
    assert!(
        matches!(&err, ProviderError::NotFound(m) if m.contains("TF200016")),
        "{err:?}"
    );
    let unreachable = source("azure-devops", "http://127.0.0.1:1/fabrikam/Fabrikam-Fiber");
    assert!(matches!(
        provider_error(host.test_connection(&unreachable).await),
        ProviderError::Unreachable(_)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn public_project_without_credentials() {
    let (host, stand) = (plugin_host().await, azure().await);
    let src = source(
        "azure-devops",
        &format!("{}/fabrikam/Public%20Project", stand.url),
    );
    let info = host.test_connection(&src).await.unwrap();
    assert_eq!(info.account, "anonymous (public project)");
    assert!(info.detail.unwrap().contains("project Public Project"));
    let issue = host.fetch_issue(&src, "40").await.unwrap();
    assert_eq!(
        (issue.status.as_str(), issue.status_category),
        ("Doing", StatusCategory::InProgress)
    );
    assert_eq!(
        issue.web_url,
        format!("{}/fabrikam/Public%20Project/_workitems/edit/40", stand.url)
    );
    for r in stand.requests() {
        assert!(
            r.uri.starts_with("/fabrikam/Public%20Project/_apis/"),
            "{}",
            r.uri
        );
        assert_eq!(r.header("authorization"), None);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_devops_server_collection_urls() {
    let (host, stand) = (plugin_host().await, azure().await);
    let src = src(&stand, &format!("tfs/DefaultCollection/{PROJECT}"));
    let info = host.test_connection(&src).await.unwrap();
    assert!(info.detail.unwrap().contains("project Fabrikam-Fiber"));
    let issue = host.fetch_issue(&src, "12").await.unwrap();
    assert_eq!(
        issue.web_url,
        format!(
            "{}/tfs/DefaultCollection/{PROJECT}/_workitems/edit/12",
            stand.url
        )
    );
    let uris: Vec<String> = stand.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        uris,
        [
            "/tfs/DefaultCollection/Fabrikam-Fiber/_apis/wit/workitemtypes?api-version=7.1"
                .to_string(),
            "/tfs/DefaultCollection/_apis/connectionData?api-version=7.1-preview".to_string(),
            format!("/tfs/DefaultCollection/Fabrikam-Fiber/_apis/wit/workitems/12?{FIELDS_QUERY}"),
        ]
    );
    // The Server collection answers bad credentials with a 401 challenge.
    let wrong = SourceConfig {
        secrets: map(&[("pat", "nope")]),
        ..src
    };
    assert!(matches!(
        provider_error(host.fetch_issue(&wrong, "12").await),
        ProviderError::Unauthorized(_)
    ));
}

// ---------------------------------------------------------------------------------------------
// fetch-issue
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn fetches_each_status_category() {
    let (host, stand) = (plugin_host().await, azure().await);
    let src = fabrikam(&stand);

    let active = host.fetch_issue(&src, "12").await.unwrap();
    assert_eq!(active.key, "12");
    assert_eq!(active.title, "Epic 2");
    assert_eq!(
        (active.status.as_str(), active.status_category),
        ("Active", StatusCategory::InProgress)
    );
    assert_eq!(active.assignee.as_deref(), Some("Jamal Hartnett"));
    assert_eq!(
        active.web_url,
        format!("{}/fabrikam/{PROJECT}/_workitems/edit/12", stand.url)
    );
    let req = &stand.requests()[0];
    assert_eq!(
        req.uri,
        format!("/fabrikam/Fabrikam-Fiber/_apis/wit/workitems/12?{FIELDS_QUERY}")
    );
    assert_eq!(req.header("authorization"), Some(basic(PAT).as_str()));

    // Unassigned: the stand-in omits System.AssignedTo entirely, as Azure DevOps does.
    let new = host.fetch_issue(&src, "13").await.unwrap();
    assert_eq!(
        (new.status.as_str(), new.status_category, new.assignee),
        ("New", StatusCategory::ToDo, None)
    );

    for (id, state) in [("14", "Closed"), ("15", "Removed"), ("16", "Resolved")] {
        let done = host.fetch_issue(&src, id).await.unwrap();
        assert_eq!(
            (done.status.as_str(), done.status_category),
            (state, StatusCategory::Done),
            "{id}"
        );
    }
    assert_eq!(stand.requests().len(), 5, "known states need no lookup");
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_states_are_categorised_by_the_tracker() {
    let (host, stand) = (plugin_host().await, azure().await);
    let src = fabrikam(&stand);
    let issue = host.fetch_issue(&src, "20").await.unwrap();
    assert_eq!(
        (issue.status.as_str(), issue.status_category),
        ("Investigating", StatusCategory::InProgress)
    );
    assert_eq!(issue.assignee.as_deref(), Some("Sam Lee"));
    let uris: Vec<String> = stand.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        uris[1],
        "/fabrikam/Fabrikam-Fiber/_apis/wit/workitemtypes/Incident/states?api-version=7.1"
    );
    assert_eq!(
        host.fetch_issue(&src, "21").await.unwrap().status_category,
        StatusCategory::Done
    );
    assert_eq!(
        host.fetch_issue(&src, "22").await.unwrap().status_category,
        StatusCategory::ToDo
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issue_errors_and_templates() {
    let (host, stand) = (plugin_host().await, azure().await);
    let err = provider_error(host.fetch_issue(&fabrikam(&stand), "999").await);
    assert!(
        matches!(&err, ProviderError::NotFound(m) if m.contains("work item 999") && m.contains("TF401232")),
        "{err:?}"
    );
    let err = provider_error(host.fetch_issue(&fabrikam(&stand), "#12").await);
    assert!(matches!(err, ProviderError::InvalidInput(_)), "{err:?}");
    let custom = SourceConfig {
        issue_url_template: Some("https://boards.example.com/wi/{key}".into()),
        ..fabrikam(&stand)
    };
    assert_eq!(
        host.fetch_issue(&custom, "12").await.unwrap().web_url,
        "https://boards.example.com/wi/12"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_map_to_retry_after() {
    let (host, stand) = (plugin_host().await, azure().await);
    match provider_error(
        host.fetch_issue(&src(&stand, &format!("throttled/{PROJECT}")), "12")
            .await,
    ) {
        ProviderError::RateLimited {
            retry_after_secs,
            message,
        } => {
            assert_eq!(retry_after_secs, 17);
            assert!(
                message.contains("TF400733") && message.contains("WorkItemTrackingResource"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    match provider_error(
        host.test_connection(&src(&stand, &format!("delayed/{PROJECT}")))
            .await,
    ) {
        ProviderError::RateLimited {
            retry_after_secs, ..
        } => {
            assert!(
                (25..=31).contains(&retry_after_secs),
                "X-RateLimit-Reset: {retry_after_secs}"
            )
        }
        other => panic!("{other:?}"),
    }
    let err = provider_error(
        host.fetch_issues(
            &src(&stand, &format!("throttled/{PROJECT}")),
            &keys(&["12", "13"]),
        )
        .await,
    );
    assert!(
        matches!(
            err,
            ProviderError::RateLimited {
                retry_after_secs: 17,
                ..
            }
        ),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// fetch-issues
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn batch_is_one_post_and_unknown_ids_fail_alone() {
    let (host, stand) = (plugin_host().await, azure().await);
    let results = host
        .fetch_issues(&fabrikam(&stand), &keys(&["14", "999", "12", "13", "12"]))
        .await
        .unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(
        results[0].as_ref().unwrap().status_category,
        StatusCategory::Done
    );
    assert!(
        matches!(&results[1], Err(ProviderError::NotFound(m)) if m.contains("999")),
        "{:?}",
        results[1]
    );
    assert_eq!(
        results[2].as_ref().unwrap().assignee.as_deref(),
        Some("Jamal Hartnett")
    );
    assert_eq!(results[3].as_ref().unwrap().assignee, None);
    assert_eq!(results[4].as_ref().unwrap().key, "12");

    let reqs = stand.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(
        reqs[0].uri,
        "/fabrikam/Fabrikam-Fiber/_apis/wit/workitemsbatch?api-version=7.1"
    );
    assert_eq!(reqs[0].header("authorization"), Some(basic(PAT).as_str()));
    assert_eq!(
        reqs[0].json(),
        json!({
            "ids": [12, 13, 14, 999],
            "fields": ["System.Title", "System.State", "System.AssignedTo", "System.WorkItemType"],
            "errorPolicy": "omit"
        })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_looks_up_custom_states_once_per_type() {
    let (host, stand) = (plugin_host().await, azure().await);
    let results = host
        .fetch_issues(&fabrikam(&stand), &keys(&["20", "21", "22", "12"]))
        .await
        .unwrap();
    let categories: Vec<StatusCategory> = results
        .iter()
        .map(|r| r.as_ref().unwrap().status_category)
        .collect();
    assert_eq!(
        categories,
        [
            StatusCategory::InProgress,
            StatusCategory::Done,
            StatusCategory::ToDo,
            StatusCategory::InProgress
        ]
    );
    let uris: Vec<String> = stand.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        uris,
        [
            "/fabrikam/Fabrikam-Fiber/_apis/wit/workitemsbatch?api-version=7.1",
            "/fabrikam/Fabrikam-Fiber/_apis/wit/workitemtypes/Incident/states?api-version=7.1",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_of_more_than_200_ids_is_split() {
    let (host, stand) = (plugin_host().await, azure().await);
    let ids: Vec<String> = (1..=250).map(|n| n.to_string()).collect();
    let results = host.fetch_issues(&fabrikam(&stand), &ids).await.unwrap();
    assert_eq!(results.len(), 250);
    assert!(results[11].is_ok() && results[0].is_err());
    let posts: Vec<usize> = stand
        .requests()
        .iter()
        .filter(|r| r.uri.contains("workitemsbatch"))
        .map(|r| r.json()["ids"].as_array().unwrap().len())
        .collect();
    assert_eq!(posts, [200, 50]);
    // A malformed key fails alone.
    let results = host
        .fetch_issues(&fabrikam(&stand), &keys(&["x", "13"]))
        .await
        .unwrap();
    assert!(matches!(results[0], Err(ProviderError::InvalidInput(_))));
    assert_eq!(results[1].as_ref().unwrap().title, "Login fails on Safari");
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_without_connection_data_names_organization_and_project() {
    let (host, stand) = (plugin_host().await, azure().await);
    let src = src(&stand, &format!("proxied/{PROJECT}"));
    let info = host.test_connection(&src).await.unwrap();
    assert!(
        info.account.contains(PROJECT) && info.account.contains("/proxied"),
        "{info:?}"
    );
    assert!(!info.account.contains("could not be read"), "{info:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_issues_falls_back_to_single_reads_when_the_batch_is_refused() {
    let (host, stand) = (plugin_host().await, azure().await);
    let src = src(&stand, &format!("proxied/{PROJECT}"));
    let keys: Vec<String> = keys(&["12", "13"]);
    let results = host.fetch_issues(&src, &keys).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let posts = stand
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1, "one refused batch, then single reads");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_updated_event_lays_the_changed_fields_over_the_revision() {
    let host = plugin_host().await;
    let src = source(
        "azure-devops",
        &format!("https://dev.azure.com/fabrikam/{PROJECT}"),
    );
    // As in providers-events.md §3.B: `System.AssignedTo` only among the changed fields.
    let body = json!({"id": "27646e0e-b520-4d2b-9411-bba7524947cd", "eventType": "workitem.updated",
        "resource": {"id": 2, "workItemId": 5, "rev": 2,
            "fields": {"System.State": {"oldValue": "New", "newValue": "Active"},
                       "System.AssignedTo": {"newValue": "Jamal Hartnett <jamal@example.com>"}},
            "revision": {"id": 5, "rev": 2, "fields": {"System.TeamProject": PROJECT,
                "System.WorkItemType": "Bug", "System.Title": "Crash on save",
                "System.State": "Active"}}}});
    let event = host::plugin::Event {
        scheme: "basic".into(),
        headers: vec![],
        body: body.to_string().into_bytes(),
    };
    let changes = host.parse_event(&src, event).await.unwrap();
    assert_eq!(changes[0].key, "5");
    assert_eq!(changes[0].version, Some(2));
    let issue = changes[0].issue.as_ref().unwrap();
    assert_eq!(
        (issue.status.as_str(), issue.assignee.as_deref()),
        ("Active", Some("Jamal Hartnett"))
    );
}
