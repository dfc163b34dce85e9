//! Azure DevOps Boards provider plugin (work items; facts in `../shared/providers.md` §3).
//!
//! A source is one project: its base URL is `https://dev.azure.com/{org}/{project}`, the legacy
//! `https://{org}.visualstudio.com/{project}`, or an Azure DevOps Server
//! `https://tfs.example.com[/tfs]/{collection}/{project}`. The last path segment is the project;
//! everything before it is the organization or collection URL, which is also where the REST
//! API lives (same origin, so no API URL setting). Every request carries `api-version=7.1`.
//!
//! Keys are work item ids (`123`, `#123`, `AB#123`, or a pasted work item link). Work item ids
//! are unique across an organization, so a link from another project of the same organization
//! names the same item and is accepted; a link into another organization is not.
//! The plugin keeps no state and must stay small: every call runs in a fresh instance.

mod events;

use serde_json::{Value, json};
use testorchestrator_provider_sdk::*;

mod comments;

struct AzureDevOps;

const API_VERSION: &str = "api-version=7.1";
/// Work item ids are int32 (spec: `type: integer, format: int32`).
const MAX_ID: u64 = i32::MAX as u64;
/// `workitemsbatch` takes at most 200 ids.
const BATCH: usize = 200;
/// The fields read for an issue; empty fields (an unassigned item's `System.AssignedTo`) are
/// omitted from the answer, not null.
const FIELDS: [&str; 4] = [
    "System.Title",
    "System.State",
    "System.AssignedTo",
    "System.WorkItemType",
];

impl Provider for AzureDevOps {
    fn describe() -> ProviderInfo {
        let secret = |name: &str, label: &str, help: &str| AuthField {
            name: name.into(),
            label: label.into(),
            secret: true,
            required: true,
            help: Some(help.into()),
        };
        ProviderInfo {
            id: "azure-devops".into(),
            version: "1.0.0".into(),
            name: "Azure DevOps".into(),
            key_hint: "Work item ID: 123, #123 or a pasted work item link".into(),
            key_example: "123".into(),
            default_key_pattern: Some("^[1-9][0-9]{0,9}$".into()),
            default_issue_url_template: "{baseUrl}/_workitems/edit/{key}".into(),
            default_create_url_template: Some("{baseUrl}/_workitems/create/Bug".into()),
            base_url_example: "https://dev.azure.com/fabrikam/Fabrikam-Fiber".into(),
            auth_types: vec![
                AuthType {
                    id: "api-token".into(),
                    label: "API Token".into(),
                    fields: vec![secret(
                        "pat",
                        "Personal access token",
                        "A PAT of this organization with the Work Items (Read) scope (Read & write to post comments).",
                    )],
                    // "Use any value for the user name and the token as the password."
                    scheme: CredentialScheme::Basic(BasicScheme {
                        user_field: None,
                        password_field: "pat".into(),
                    }),
                },
                AuthType {
                    id: "oauth2".into(),
                    label: "OAuth 2.0".into(),
                    fields: vec![secret(
                        "access-token",
                        "Access token",
                        "A Microsoft Entra ID access token for Azure DevOps \
                         (resource 499b84ac-1321-427f-aa17-267ca6975798, scope vso.work).",
                    )],
                    scheme: CredentialScheme::Bearer("access-token".into()),
                },
                AuthType {
                    id: "none".into(),
                    label: "None".into(),
                    fields: vec![],
                    scheme: CredentialScheme::None,
                },
            ],
            settings: vec![],
            extra_origins: vec![],
        }
    }

    fn describe_comments() -> Option<CommentsInfo> {
        comments::describe()
    }

    fn add_comment(
        source: &Source,
        key: &str,
        markdown: &str,
    ) -> Result<CommentInfo, ProviderError> {
        comments::add(source, key, markdown)
    }

    fn normalize_key(source: &Source, key: &str) -> Result<String, ProviderError> {
        normalize(source, key).map(|id| id.to_string())
    }

    fn describe_events() -> Vec<EventScheme> {
        events::schemes()
    }

    fn parse_event(source: &Source, event: &Event) -> Result<Vec<EventChange>, ProviderError> {
        events::parse(source, event)
    }

    fn test_connection(source: &Source) -> Result<ConnectionInfo, ProviderError> {
        let project = Project::of(source)?;
        // Project-scoped and needs only the Work Items (Read) scope the plugin needs anyway
        // (listing projects would need vso.project too).
        let url = format!("{}/_apis/wit/workitemtypes?{API_VERSION}", project.url());
        let body = project.read(source, request(get(url)), None)?;
        let types: Vec<&str> = body
            .get("value")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(|t| str_at(t, "/name")).collect())
            .unwrap_or_default();
        let mut detail = format!("project {}", project.name);
        if !types.is_empty() {
            detail.push_str(&format!("; work item types: {}", types.join(", ")));
        }
        if let Some(kind) = create_type(source)
            && !types.is_empty()
            && !types.iter().any(|t| t.eq_ignore_ascii_case(&kind))
        {
            detail.push_str(&format!(
                "; note: the create URL opens the type {kind:?}, which this project does not have"
            ));
        }
        Ok(ConnectionInfo {
            account: whoami(source, &project)?,
            detail: Some(detail),
        })
    }

    fn fetch_issue(source: &Source, key: &str) -> Result<Issue, ProviderError> {
        let project = Project::of(source)?;
        let id = canonical(key)?;
        let url = format!(
            "{}/_apis/wit/workitems/{id}?fields={}&{API_VERSION}",
            project.url(),
            FIELDS.join(",")
        );
        let item = project.read(source, request(get(url)), Some(id))?;
        let mut states = StateCache::default();
        to_issue(source, &project, &item, id, &mut states)
    }

    fn fetch_issues(
        source: &Source,
        keys: &[String],
    ) -> Result<Vec<Result<Issue, ProviderError>>, ProviderError> {
        let project = Project::of(source)?;
        let parsed: Vec<Result<u64, ProviderError>> = keys.iter().map(|k| canonical(k)).collect();
        let mut wanted: Vec<u64> = parsed
            .iter()
            .filter_map(|p| p.as_ref().ok().copied())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();

        let mut found: Vec<Value> = Vec::new();
        for chunk in wanted.chunks(BATCH) {
            // "Work Items - Get Work Items Batch": POST {org}/{project}/_apis/wit/workitemsbatch
            // with {"ids","fields","errorPolicy"}; answers {"count","value":[work item...]}.
            // With errorPolicy "omit" an id that does not exist (or cannot be read) does not
            // fail the request; it comes back as null or not at all, so match items by id.
            let body = json!({ "ids": chunk, "fields": FIELDS, "errorPolicy": "omit" });
            let url = format!("{}/_apis/wit/workitemsbatch?{API_VERSION}", project.url());
            let answer = match project.read(source, request(post_json(url, &body)), None) {
                // A 404 included: a server (or proxy) without the batch route may still answer
                // the single reads, and if the project itself is missing each single read says so
                // for its own work item.
                Err(e) if is_batch_refusal(&e) => {
                    let cause = format!("the batch read failed: {}", error_message(&e));
                    return fetch_each(keys, &cause, |key| Self::fetch_issue(source, key));
                }
                other => other?,
            };
            let items = answer
                .get("value")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    ProviderError::Provider(
                        "Azure DevOps answered the batch without a value list".into(),
                    )
                })?;
            found.extend(items.iter().filter(|i| !i.is_null()).cloned());
        }

        let mut states = StateCache::default();
        let mut out = Vec::with_capacity(keys.len());
        for p in parsed {
            let result = p.and_then(|id| {
                match found
                    .iter()
                    .find(|i| i.get("id").and_then(Value::as_u64) == Some(id))
                {
                    Some(item) => to_issue(source, &project, item, id, &mut states),
                    None => Err(ProviderError::NotFound(format!(
                        "work item {id} does not exist, or these credentials may not read it"
                    ))),
                }
            });
            match result {
                Err(e) if is_batch_fatal(&e) => return Err(e),
                other => out.push(other),
            }
        }
        Ok(out)
    }
}

/// Adds the header that asks Azure DevOps for a 401 instead of a sign-in redirect (used by
/// Microsoft's own tools; unverified, harmless where ignored).
fn request(builder: RequestBuilder) -> RequestBuilder {
    builder.header("X-TFS-FedAuthRedirect", "Suppress")
}

/// The organization (or collection) and project of a source.
struct Project {
    /// Organization or collection URL without trailing slash, e.g. `https://dev.azure.com/fabrikam`.
    collection: String,
    /// The project name, decoded, e.g. `Fabrikam Fiber`.
    name: String,
    /// Which organization or collection this is, for comparing pasted links.
    org: Org,
}

/// An organization's identity: Services organizations are the same on `dev.azure.com/{org}`
/// and `{org}.visualstudio.com`; a Server collection is its host and collection path.
#[derive(PartialEq, Debug)]
struct Org {
    /// `dev.azure.com/{org}` or the server's `host[:port]`, lower case.
    id: String,
    /// The collection path segments (Server only), lower case.
    path: Vec<String>,
}

/// Where a URL points: its organization, and the path segments after the organization.
fn locate(host: &str, segments: &[String]) -> Option<(Org, Vec<String>)> {
    let host = host.to_ascii_lowercase();
    let services = |org: &str| Org {
        id: format!("dev.azure.com/{}", org.to_ascii_lowercase()),
        path: vec![],
    };
    if host == "dev.azure.com" {
        let (org, rest) = segments.split_first()?;
        return Some((services(org), rest.to_vec()));
    }
    if let Some(org) = host.strip_suffix(".visualstudio.com") {
        let rest = match segments.first() {
            Some(first) if first.eq_ignore_ascii_case("DefaultCollection") => &segments[1..],
            _ => segments,
        };
        return Some((services(org), rest.to_vec()));
    }
    Some((
        Org {
            id: host,
            path: vec![],
        },
        segments.to_vec(),
    ))
}

impl Project {
    fn of(source: &Source) -> Result<Project, ProviderError> {
        let base = source.base_url.trim().trim_end_matches('/');
        let example = "e.g. https://dev.azure.com/fabrikam/Fabrikam-Fiber";
        let (scheme, host, segments) = split_url(base)
            .ok_or_else(|| invalid(&format!("the base URL {base:?} is not an http(s) URL")))?;
        if let Some(i) = segments.iter().position(|s| s.starts_with('_')) {
            return Err(invalid(&format!(
                "the base URL must end at the project: remove /{} ({example})",
                segments[i..].join("/")
            )));
        }
        let (mut org, rest) = locate(&host, &segments).ok_or_else(|| {
            invalid(&format!(
                "the base URL {base} names no organization ({example})"
            ))
        })?;
        let services = org.id.starts_with("dev.azure.com/");
        let project = match (services, rest.as_slice()) {
            (true, [project]) => project,
            (false, [collection @ .., project]) if !collection.is_empty() => {
                org.path = collection.iter().map(|s| s.to_ascii_lowercase()).collect();
                project
            }
            (_, []) => {
                return Err(invalid(&format!(
                    "the base URL {base} names no project: add it ({example})"
                )));
            }
            (true, _) => {
                return Err(invalid(&format!(
                    "the base URL {base} must be the organization followed by the project ({example})"
                )));
            }
            (false, _) => {
                return Err(invalid(&format!(
                    "the base URL {base} needs the collection and the project, e.g. \
                     {scheme}://{host}/tfs/DefaultCollection/MyProject"
                )));
            }
        };
        let collection = &base[..base.len() - base.rsplit('/').next().map_or(0, str::len) - 1];
        Ok(Project {
            collection: collection.to_string(),
            name: percent_decode(project),
            org,
        })
    }

    /// The project's URL for API calls: `{collection}/{encoded project}`.
    fn url(&self) -> String {
        format!("{}/{}", self.collection, encode_component(&self.name))
    }

    /// Sends a request and reads a JSON answer, mapping Azure DevOps' failures.
    fn read(
        &self,
        source: &Source,
        builder: RequestBuilder,
        item: Option<u64>,
    ) -> Result<Value, ProviderError> {
        let resp = builder.send().map_err(signin_redirect)?;
        if let Some(delay) = resp.header("x-ratelimit-delay") {
            log_info(&format!(
                "Azure DevOps is delaying requests ({delay} s, X-RateLimit-Delay)"
            ));
        }
        if !resp.is_success() {
            return Err(self.error(source, &resp, item));
        }
        // Missing or rejected credentials on a GET often get "203 Non-Authoritative
        // Information" with the HTML sign-in page rather than a 401.
        let parsed: Option<Value> = serde_json::from_slice(&resp.body).ok();
        match parsed {
            Some(value) if resp.status != 203 => Ok(value),
            _ if resp.status == 203 || resp.text().trim_start().starts_with('<') => {
                Err(ProviderError::Unauthorized(format!(
                    "Azure DevOps answered with its sign-in page (HTTP {}) instead of data: {}",
                    resp.status,
                    credentials_hint(source, self)
                )))
            }
            _ => resp.json(),
        }
    }

    fn error(&self, source: &Source, resp: &HttpResponse, item: Option<u64>) -> ProviderError {
        let body: Option<Value> = serde_json::from_slice(&resp.body).ok();
        let message = body
            .as_ref()
            .and_then(|b| str_at(b, "/message"))
            .unwrap_or("");
        let type_key = body
            .as_ref()
            .and_then(|b| str_at(b, "/typeKey"))
            .unwrap_or("");
        let said = if message.is_empty() {
            String::new()
        } else {
            format!(": {message}")
        };
        if let Some(mut limit) = resp.rate_limit() {
            limit.message = format!(
                "Azure DevOps is throttling these credentials (HTTP {}{said}){}",
                resp.status,
                resp.header("x-ratelimit-resource")
                    .map(|r| format!("; resource {r}"))
                    .unwrap_or_default()
            );
            return ProviderError::RateLimited(limit);
        }
        match resp.status {
            401 => ProviderError::Unauthorized(format!(
                "Azure DevOps rejected the credentials (HTTP 401{said}): {}",
                credentials_hint(source, self)
            )),
            403 => ProviderError::Forbidden(format!(
                "the credentials may not read work items of project {} (HTTP 403{said})",
                self.name
            )),
            404 if type_key == "ProjectDoesNotExistWithNameException"
                || message.starts_with("TF200016") =>
            {
                ProviderError::NotFound(format!(
                    "project {} does not exist in {} (HTTP 404{said}): check the base URL",
                    self.name, self.collection
                ))
            }
            404 if body.is_none() => ProviderError::NotFound(format!(
                "no Azure DevOps organization or collection answers at {} (HTTP 404): check the base URL",
                self.collection
            )),
            404 => match item {
                Some(id) => ProviderError::NotFound(format!(
                    "work item {id} does not exist, or these credentials may not read it (HTTP 404{said})"
                )),
                None => ProviderError::NotFound(format!("Azure DevOps answered HTTP 404{said}")),
            },
            400 => ProviderError::InvalidInput(format!(
                "Azure DevOps rejected the request (HTTP 400{said})"
            )),
            _ => status_error(resp, &format!("project {}", self.name)),
        }
    }
}

/// What to check when the credentials are refused.
fn credentials_hint(source: &Source, project: &Project) -> String {
    match source.auth_type.as_str() {
        "none" => "this project is not public: choose the personal access token auth type".into(),
        "oauth2" => "the access token is missing, wrong or expired".into(),
        _ => format!(
            "check that the personal access token is valid, has not expired, belongs to the \
             organization at {} and has the Work Items (Read) scope",
            project.collection
        ),
    }
}

/// A redirect to another origin (Azure DevOps sends the browser sign-in redirect that way)
/// is refused by the host; say what it most likely means.
fn signin_redirect(e: ProviderError) -> ProviderError {
    match e {
        ProviderError::Unreachable(m) if m.contains("redirected to") => {
            ProviderError::Unauthorized(format!(
                "Azure DevOps redirected the request elsewhere, usually to its sign-in page: the \
             credentials are missing, wrong or expired ({m})"
            ))
        }
        other => other,
    }
}

/// Who the credentials belong to. `connectionData` is undocumented (used by Microsoft's
/// clients) and reportedly wants a preview api-version, so this is best effort.
fn whoami(source: &Source, project: &Project) -> Result<String, ProviderError> {
    // `connectionData` is undocumented: without it, say what the credentials reached.
    let fallback = match source.auth_type.as_str() {
        "none" => return Ok("anonymous (public project)".into()),
        "oauth2" => format!(
            "an OAuth access token that reads project {} of {}",
            project.name, project.collection
        ),
        _ => format!(
            "a personal access token that reads project {} of {}",
            project.name, project.collection
        ),
    };
    let url = format!(
        "{}/_apis/connectionData?api-version=7.1-preview",
        project.collection
    );
    let Ok(resp) = request(get(url)).send() else {
        return Ok(fallback);
    };
    if resp.status == 429 {
        return Err(project.error(source, &resp, None));
    }
    let body: Option<Value> = (resp.status == 200)
        .then(|| serde_json::from_slice(&resp.body).ok())
        .flatten();
    let user = body.as_ref().and_then(|b| b.get("authenticatedUser"));
    let name = user
        .and_then(|u| str_at(u, "/providerDisplayName").or_else(|| str_at(u, "/customDisplayName")))
        .filter(|n| !n.trim().is_empty());
    let mail = user
        .and_then(|u| str_at(u, "/properties/Account/$value"))
        .filter(|m| m.contains('@'));
    Ok(match (name, mail) {
        (Some(name), Some(mail)) if name != mail => format!("{name} ({mail})"),
        (Some(name), _) => name.to_string(),
        (None, Some(mail)) => mail.to_string(),
        (None, None) => fallback,
    })
}

/// The work item type the create URL opens (`…/_workitems/create/{type}`), if any.
fn create_type(source: &Source) -> Option<String> {
    let template = source
        .create_url_template
        .clone()
        .or_else(|| AzureDevOps::describe().default_create_url_template)?;
    let (_, rest) = template.split_once("/_workitems/create/")?;
    let kind = rest.split(['/', '?', '#']).next()?;
    (!kind.is_empty() && !kind.contains('{')).then(|| percent_decode(kind))
}

/// A work item type's states as `(name, category)`, or none when they could not be read.
type TypeStates = Option<Vec<(String, String)>>;

/// State categories learned from the tracker during one call, per work item type.
#[derive(Default)]
struct StateCache(Vec<(String, TypeStates)>);

/// Maps a work item to the contract's issue.
fn to_issue(
    source: &Source,
    project: &Project,
    item: &Value,
    id: u64,
    states: &mut StateCache,
) -> Result<Issue, ProviderError> {
    let fields = item.get("fields").ok_or_else(|| {
        ProviderError::Provider(format!(
            "Azure DevOps answered work item {id} without fields"
        ))
    })?;
    let field = |name: &str| fields.get(name).and_then(Value::as_str);
    let title = field("System.Title").unwrap_or_default();
    let state = field("System.State").unwrap_or_default();
    let kind = field("System.WorkItemType").unwrap_or_default();
    // An identity object (`displayName`, `uniqueName`); very old versions sent "Name <mail>".
    let assignee = match fields.get("System.AssignedTo") {
        Some(Value::String(s)) => Some(s.split(" <").next().unwrap_or(s).trim().to_string()),
        Some(user) => str_at(user, "/displayName")
            .or_else(|| str_at(user, "/uniqueName"))
            .map(str::to_string),
        None => None,
    }
    .filter(|a| !a.is_empty());
    let category = match category_by_name(state) {
        Some(c) => c,
        None => states.category(source, project, kind, state)?,
    };
    Ok(Issue {
        key: id.to_string(),
        title: title.to_string(),
        status: state.to_string(),
        status_category: category,
        assignee,
        web_url: AzureDevOps::issue_url(source, &id.to_string())?,
    })
}

/// The states of the system processes (Agile, Scrum, CMMI, Basic), whose categories are
/// fixed; inherited processes cannot rename them. Anything else is looked up.
fn category_by_name(state: &str) -> Option<StatusCategory> {
    let known: [(&str, StatusCategory); 12] = [
        ("New", StatusCategory::ToDo),
        ("Proposed", StatusCategory::ToDo),
        ("To Do", StatusCategory::ToDo),
        ("Approved", StatusCategory::ToDo),
        ("Active", StatusCategory::InProgress),
        ("Committed", StatusCategory::InProgress),
        ("In Progress", StatusCategory::InProgress),
        ("Doing", StatusCategory::InProgress),
        ("Resolved", StatusCategory::Done),
        ("Closed", StatusCategory::Done),
        ("Done", StatusCategory::Done),
        ("Removed", StatusCategory::Done),
    ];
    known
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(state))
        .map(|(_, c)| *c)
}

/// A state category as Azure DevOps names it (Proposed, InProgress, Resolved, Completed,
/// Removed). Resolved counts as done, as the contract says.
fn category_of(name: &str) -> StatusCategory {
    match name {
        "InProgress" => StatusCategory::InProgress,
        "Resolved" | "Completed" | "Removed" => StatusCategory::Done,
        _ => StatusCategory::ToDo,
    }
}

impl StateCache {
    /// The category of a custom state, from
    /// `GET {project}/_apis/wit/workitemtypes/{type}/states` (one request per type per call).
    fn category(
        &mut self,
        source: &Source,
        project: &Project,
        kind: &str,
        state: &str,
    ) -> Result<StatusCategory, ProviderError> {
        if !self.0.iter().any(|(k, _)| k == kind) {
            let url = format!(
                "{}/_apis/wit/workitemtypes/{}/states?{API_VERSION}",
                project.url(),
                encode_component(kind)
            );
            let states = match project.read(source, request(get(url)), None) {
                Ok(body) => Some(
                    body.get("value")
                        .and_then(Value::as_array)
                        .map(|v| {
                            v.iter()
                                .filter_map(|s| {
                                    Some((
                                        str_at(s, "/name")?.to_string(),
                                        str_at(s, "/category")?.to_string(),
                                    ))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                Err(e) if is_batch_fatal(&e) => return Err(e),
                Err(e) => {
                    log_info(&format!(
                        "state categories of {kind:?} could not be read: {e:?}"
                    ));
                    None
                }
            };
            self.0.push((kind.to_string(), states));
        }
        let known = self
            .0
            .iter()
            .find(|(k, _)| k == kind)
            .and_then(|(_, s)| s.as_ref());
        Ok(known
            .and_then(|s| s.iter().find(|(name, _)| name.eq_ignore_ascii_case(state)))
            .map(|(_, category)| category_of(category))
            .unwrap_or(StatusCategory::ToDo))
    }
}

/// A canonical key as a number.
fn canonical(key: &str) -> Result<u64, ProviderError> {
    parse_issue_number(key)
        .filter(|n| *n <= MAX_ID)
        .ok_or_else(|| invalid(&format!("{key:?} is not an Azure DevOps work item ID")))
}

/// Parses a key as typed or pasted.
fn normalize(source: &Source, raw: &str) -> Result<u64, ProviderError> {
    let key = raw.trim();
    if key.is_empty() {
        return Err(invalid(
            "the key is empty: enter a work item ID such as 123",
        ));
    }
    let lower = key.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return from_url(source, key);
    }
    // `AB#123` is how GitHub commits and pull requests mention Azure Boards work items.
    let number = if lower.starts_with("ab#") {
        &key[3..]
    } else {
        key.strip_prefix('#').unwrap_or(key)
    };
    parse_number(number, key)
}

/// Parses the number part of a key, saying precisely what is wrong with it.
fn parse_number(number: &str, key: &str) -> Result<u64, ProviderError> {
    if let Some(n) = parse_issue_number(number) {
        if n <= MAX_ID {
            return Ok(n);
        }
        return Err(invalid(&format!(
            "{key} is larger than any Azure DevOps work item ID (at most {MAX_ID})"
        )));
    }
    let why = if number.is_empty() {
        "a work item ID must follow the #, e.g. #123"
    } else if number.chars().any(char::is_whitespace) {
        "it contains a space"
    } else if number.starts_with('-') || number.starts_with('+') {
        "work item IDs are positive whole numbers without a sign"
    } else if number.bytes().all(|b| b.is_ascii_digit()) && number.starts_with('0') {
        "work item IDs start at 1 and have no leading zeros"
    } else if number.bytes().all(|b| b.is_ascii_digit()) {
        "it is larger than any Azure DevOps work item ID"
    } else if number
        .chars()
        .any(|c| c.is_numeric() && !c.is_ascii_digit())
    {
        "use the digits 0-9"
    } else {
        "expected a work item ID such as 123, #123 or a work item link"
    };
    Err(invalid(&format!(
        "{key:?} is not an Azure DevOps work item ID: {why}"
    )))
}

/// Reads the work item id out of a pasted link: `…/_workitems/edit/123`, a board or backlog
/// link with `?workitem=123`, or the API's `…/web/wi.aspx?…&id=123`.
fn from_url(source: &Source, url: &str) -> Result<u64, ProviderError> {
    let (_, host, segments) =
        split_url(url).ok_or_else(|| invalid(&format!("{url:?} is not a valid URL")))?;
    let query = |name: &str| -> Option<String> {
        let q = url.split_once('?')?.1.split('#').next()?;
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            k.eq_ignore_ascii_case(name).then(|| v.to_string())
        })
    };
    let not_item = || {
        invalid(&format!(
            "{url} does not point to a work item: paste the work item's link (…/_workitems/edit/123)"
        ))
    };
    let (org, rest) = locate(&host, &segments).ok_or_else(not_item)?;
    let page = rest
        .iter()
        .position(|s| s.starts_with('_') || s.eq_ignore_ascii_case("web"))
        .ok_or_else(not_item)?;
    let number = match &rest[page..] {
        [area, edit, id, ..] if area == "_workitems" && edit == "edit" => id.clone(),
        [area, create, ..] if area == "_workitems" && create == "create" => {
            return Err(invalid(&format!(
                "{url} is the new work item form, not a work item"
            )));
        }
        [web, page, ..]
            if web.eq_ignore_ascii_case("web") && page.eq_ignore_ascii_case("wi.aspx") =>
        {
            query("id").ok_or_else(not_item)?
        }
        [area, ..] if area.starts_with('_') => query("workitem").ok_or_else(not_item)?,
        _ => return Err(not_item()),
    };
    // Same organization (or collection): the link may name the project, and a team after it.
    let this = Project::of(source)?;
    let prefix: Vec<String> = rest[..page]
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let same_org = org.id == this.org.id
        && prefix.len() >= this.org.path.len()
        && prefix.len() <= this.org.path.len() + 2
        && prefix[..this.org.path.len()] == this.org.path[..];
    if !same_org {
        return Err(invalid(&format!(
            "{url} is a work item of another organization or collection; this source is {}",
            this.collection
        )));
    }
    parse_number(&number, url)
}

fn invalid(message: &str) -> ProviderError {
    ProviderError::InvalidInput(message.to_string())
}

export_provider!(AzureDevOps);
