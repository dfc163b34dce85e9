//! The records kept in the database. They hold no secret: credentials live sealed in the
//! `secrets` table (see `crypto`), and a source records only the *names* of the secret
//! fields that are set.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// Now, in [`Millis`].
pub fn now() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What the host may do with a source (the spec's CAPABILITIES tab). An omitted capability
/// takes the admin page's default: "Read issue details" on, the others off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Capabilities {
    /// Fetch and cache issue status and assignee.
    pub read_issue_details: bool,
    /// Offer a shortcut to the tracker's new-issue form (needs a create URL template).
    pub create_issues: bool,
    /// Stored and shown; not active yet (a future release).
    pub add_comments: bool,
    /// Stored and shown; not active yet (a future release).
    pub process_webhooks: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            read_issue_details: true,
            create_issues: false,
            add_comments: false,
            process_webhooks: false,
        }
    }
}

/// Which projects may use a source (the spec's PROJECTS tab).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProjectAssignment {
    /// Every project, including projects created later. (A struct variant, so that
    /// `deny_unknown_fields` refuses `{"mode": "all", "ids": [...]}`: serde ignores the other
    /// fields of a unit variant of an internally tagged enum.)
    All {},
    /// Only these project ids (at least one when saved; may become empty when projects are
    /// deleted, which leaves the source usable by no project).
    Specific {
        /// Project ids.
        ids: Vec<String>,
    },
}

impl ProjectAssignment {
    /// True if the project may use the source.
    pub fn includes(&self, project: &str) -> bool {
        match self {
            ProjectAssignment::All {} => true,
            ProjectAssignment::Specific { ids } => ids.iter().any(|id| id == project),
        }
    }
}

/// The outcome of the last connection test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TestResult {
    /// True on success.
    pub ok: bool,
    /// "connected as ..." or the error's category code.
    pub code: String,
    /// What to show the admin.
    pub message: String,
    /// When it ran.
    pub at: Millis,
}

/// A source's stored configuration (no secret values).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SourceRecord {
    /// Provider (plugin) id.
    pub provider: String,
    /// Label members see.
    pub display_name: String,
    /// Root URL, absolute http(s), no trailing slash.
    pub base_url: String,
    /// Chosen auth type id.
    pub auth_type: String,
    /// Non-secret auth field values.
    pub auth_fields: BTreeMap<String, String>,
    /// Names of the secret fields that are set (their values are sealed elsewhere).
    pub secrets_set: Vec<String>,
    /// Provider settings.
    pub settings: BTreeMap<String, String>,
    /// Issue URL template.
    pub issue_url_template: Option<String>,
    /// Create URL template.
    pub create_url_template: Option<String>,
    /// Key pattern (regular expression).
    pub key_pattern: Option<String>,
    /// Available to members.
    pub enabled: bool,
    /// Capabilities.
    pub capabilities: Capabilities,
    /// Project assignment.
    pub projects: ProjectAssignment,
    /// Last connection test.
    pub last_test: Option<TestResult>,
    /// Created.
    pub created_at: Millis,
    /// Last changed.
    pub updated_at: Millis,
    /// How the host reaches the tracker (CA bundle, proxy); none set by default, and absent
    /// in records written before it existed.
    #[serde(default)]
    pub network: NetworkSettings,
    /// How the tracker's webhooks reach this source ("Process webhooks"), once an admin set
    /// them up; absent before. The webhook secret is sealed with the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSettings>,
}

/// A source's webhook set-up (see `crate::webhooks`). Not secret: the path token only makes
/// the URL unguessable; an event proves itself with the sealed webhook secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookSettings {
    /// The id of the plugin's event scheme that verifies events (`describe-events`).
    pub scheme: String,
    /// The random path segment of the source's webhook URL, `/hooks/{source}/{token}`.
    pub path_token: String,
}

/// A source's network settings, used by the plugins' HTTP client for this source only.
/// Neither is secret: a CA bundle holds public certificates, and a proxy URL has no
/// credentials (refused when saved).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct NetworkSettings {
    /// PEM certificates trusted in addition to the system's roots, for a tracker whose
    /// certificate a private authority signed.
    pub ca_bundle_pem: Option<String>,
    /// An `http://` or `https://` proxy every request of this source goes through.
    pub proxy_url: Option<String>,
}

impl NetworkSettings {
    /// True when neither setting is set.
    pub fn is_empty(&self) -> bool {
        self.ca_bundle_pem.is_none() && self.proxy_url.is_none()
    }
}

/// A project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProjectRecord {
    /// Name, unique.
    pub name: String,
    /// Created.
    pub created_at: Millis,
}

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Use enabled sources of its projects for links.
    Member,
}

/// An API token (stored under the sha-256 of its value, never the value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenRecord {
    /// Public id, used to revoke it.
    pub id: String,
    /// A label ("CI", "Alice").
    pub name: String,
    /// Role.
    pub role: Role,
    /// For members: the projects it may use.
    pub projects: Vec<String>,
    /// Created.
    pub created_at: Millis,
}

/// The cached details of a linked issue, as last fetched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Snapshot {
    /// Title.
    pub title: String,
    /// The tracker's status name.
    pub status: String,
    /// `to-do`, `in-progress` or `done`.
    pub status_category: crate::plugin::model::StatusCategory,
    /// Assignee display name.
    pub assignee: Option<String>,
    /// The issue's web page.
    pub web_url: String,
    /// When it was fetched.
    pub fetched_at: Millis,
}

/// Why the last fetch of a link's issue failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LinkError {
    /// Category (`not-found`, `unauthorized`, `rate-limited`, `plugin-trap`, ...).
    pub code: String,
    /// What to show.
    pub message: String,
    /// When it happened.
    pub at: Millis,
}

/// A link between a test object and an issue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LinkRecord {
    /// Project id.
    pub project: String,
    /// The test object as the caller names it, e.g. `test-case:TC-42`.
    pub test_object: String,
    /// Source id (the source may since have been deleted).
    pub source_id: String,
    /// The source's display name when the link was made (shown if the source is deleted).
    pub source_name: String,
    /// Provider id.
    pub provider: String,
    /// Canonical issue key.
    pub key: String,
    /// The issue's browser URL, if the source could build one.
    pub url: Option<String>,
    /// Last fetched details.
    pub snapshot: Option<Snapshot>,
    /// Last fetch failure (cleared by a successful fetch).
    pub last_error: Option<LinkError>,
    /// Created.
    pub created_at: Millis,
    /// Who created it.
    pub created_by: String,
    /// The version (`event-change.version`) of the last webhook payload applied to the
    /// snapshot: an older or equal one is never applied over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_version: Option<u64>,
}

impl LinkRecord {
    /// The uniqueness key: one link per project, test object, source and issue key.
    pub fn identity(&self) -> String {
        link_identity(&self.project, &self.test_object, &self.source_id, &self.key)
    }
}

/// See [`LinkRecord::identity`].
pub fn link_identity(project: &str, test_object: &str, source_id: &str, key: &str) -> String {
    format!("{project}\u{1f}{test_object}\u{1f}{source_id}\u{1f}{key}")
}
