//! The host's own view of what plugins say, independent of any WIT version.
//!
//! Each `vN` module converts its generated bindings into these types, so the rest of the host
//! (API, store, sync) never sees a `bindgen!` type and a future `v2` world can live beside `v1`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Everything a plugin call needs to know about a source. Built by the caller (the API or
/// the sync worker) from a stored source; `secrets` never reach the guest: only the HTTP import
/// reads them, to apply them to requests the guest marks authenticated.
#[derive(Clone, Default)]
pub struct SourceConfig {
    /// The stored source's id, under which the host keeps what calls learn of it (its
    /// rate-limit headroom); none for a draft or a check.
    pub source_id: Option<String>,
    /// Provider id, e.g. `jira-cloud`.
    pub provider: String,
    /// Base URL without trailing slash.
    pub base_url: String,
    /// The chosen auth type id.
    pub auth_type: String,
    /// Non-secret auth field values (e.g. `email`).
    pub fields: BTreeMap<String, String>,
    /// Secret auth field values (e.g. `api-token`). Write-only: never logged, never shown.
    pub secrets: BTreeMap<String, String>,
    /// Provider setting values.
    pub settings: BTreeMap<String, String>,
    /// The admin's issue URL template, if any.
    pub issue_url_template: Option<String>,
    /// The admin's create URL template, if any.
    pub create_url_template: Option<String>,
    /// The admin's key pattern, if any.
    pub key_pattern: Option<String>,
    /// PEM certificates the HTTP import trusts for this source, besides the system's roots.
    pub ca_bundle_pem: Option<String>,
    /// The `http(s)://` proxy the HTTP import sends this source's requests through.
    pub proxy_url: Option<String>,
}

impl std::fmt::Debug for SourceConfig {
    /// Prints secret names only, never their values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("source_id", &self.source_id)
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("auth_type", &self.auth_type)
            .field("fields", &self.fields)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("settings", &self.settings)
            .field("ca_bundle_pem", &self.ca_bundle_pem.as_ref().map(|_| "set"))
            .field("proxy_url", &self.proxy_url)
            .finish_non_exhaustive()
    }
}

/// The coarse state of an issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StatusCategory {
    /// Not started.
    ToDo,
    /// Started.
    InProgress,
    /// Finished or abandoned.
    Done,
}

/// An issue as a plugin read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// Canonical key.
    pub key: String,
    /// Title.
    pub title: String,
    /// The tracker's status name.
    pub status: String,
    /// The status mapped to a category.
    pub status_category: StatusCategory,
    /// Assignee display name.
    pub assignee: Option<String>,
    /// The issue's web page.
    pub web_url: String,
}

/// Who a connection test is connected as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// Human-readable identity.
    pub account: String,
    /// Anything else worth showing.
    pub detail: Option<String>,
}

/// An error a plugin returned on purpose (as opposed to a fault of the plugin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "message", rename_all = "kebab-case")]
pub enum ProviderError {
    /// Bad input (e.g. a malformed key).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Credentials rejected.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// No access.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Slow down.
    #[error("rate limited, retry after {retry_after_secs} s: {message}")]
    RateLimited {
        /// Seconds to wait.
        retry_after_secs: u32,
        /// What the tracker said.
        message: String,
    },
    /// Network failure.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Not supported by this provider or source.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Unexpected tracker answer.
    #[error("provider error: {0}")]
    Provider(String),
}

impl ProviderError {
    /// A stable, kebab-case name of the category, used in API error codes and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "invalid-input",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::RateLimited { .. } => "rate-limited",
            Self::Unreachable(_) => "unreachable",
            Self::Unsupported(_) => "unsupported",
            Self::Provider(_) => "provider-error",
        }
    }
}

/// One input field of an auth type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuthField {
    /// Field name.
    pub name: String,
    /// Label.
    pub label: String,
    /// Write-only and never given to the plugin.
    pub secret: bool,
    /// Must be set.
    pub required: bool,
    /// Hint.
    pub help: Option<String>,
}

/// How the host applies an auth type's secrets to authenticated requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum CredentialScheme {
    /// Nothing.
    None,
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// Field holding the user name; none = empty user.
        user_field: Option<String>,
        /// Field holding the password.
        password_field: String,
    },
    /// `Authorization: Bearer <field>`.
    Bearer {
        /// Field holding the token.
        field: String,
    },
    /// `<name>: <prefix><field>`.
    Header {
        /// Header name.
        name: String,
        /// Prefix before the value.
        prefix: String,
        /// Field holding the value.
        field: String,
    },
}

/// One way to authenticate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuthType {
    /// Stable id.
    pub id: String,
    /// Label.
    pub label: String,
    /// Fields in display order.
    pub fields: Vec<AuthField>,
    /// How secrets are applied.
    pub scheme: CredentialScheme,
}

/// What a setting holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SettingKind {
    /// Free text.
    Text,
    /// Absolute http(s) URL; its origin joins the egress allow-list.
    Url,
}

/// A provider-specific setting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Setting {
    /// Name.
    pub name: String,
    /// Label.
    pub label: String,
    /// Help text.
    pub help: String,
    /// Kind.
    pub kind: SettingKind,
    /// Must be set.
    pub required: bool,
}

/// A plugin's self-description.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderInfo {
    /// Unique id.
    pub id: String,
    /// Plugin version.
    pub version: String,
    /// Display name.
    pub name: String,
    /// Key format hint.
    pub key_hint: String,
    /// Sample key.
    pub key_example: String,
    /// Suggested key pattern.
    pub default_key_pattern: Option<String>,
    /// Default issue URL template.
    pub default_issue_url_template: String,
    /// Suggested create URL template.
    pub default_create_url_template: Option<String>,
    /// Sample base URL.
    pub base_url_example: String,
    /// Auth types; the first is the default.
    pub auth_types: Vec<AuthType>,
    /// Settings.
    pub settings: Vec<Setting>,
    /// Extra origins the plugin may reach, as declared: an origin URL, or
    /// [`CREDENTIALED`] followed by one when the source's credentials go there too.
    pub extra_origins: Vec<String>,
    /// What `describe-comments` said (contract 1.1): how it posts comments, none when it
    /// cannot (or, for a 1.0 plugin, cannot know how).
    #[serde(default)]
    pub comments: Option<CommentsInfo>,
    /// What `describe-events` said (contract 1.1): how its tracker's webhooks are verified;
    /// empty when it has none (or is a 1.0 plugin).
    #[serde(default)]
    pub events: Vec<EventScheme>,
}

/// The prefix of a declared extra origin that receives the source's credentials, e.g.
/// `"credentialed https://api.github.com"`. Without it, an extra origin is reached anonymously.
pub const CREDENTIALED: &str = "credentialed ";

impl ProviderInfo {
    /// The auth type with this id.
    pub fn auth_type(&self, id: &str) -> Option<&AuthType> {
        self.auth_types.iter().find(|a| a.id == id)
    }

    /// The names of the secret fields of auth type `auth_type` (none for an unknown one).
    pub fn secret_fields(&self, auth_type: &str) -> Vec<&str> {
        self.auth_type(auth_type)
            .map(|a| {
                (a.fields.iter())
                    .filter(|f| f.secret)
                    .map(|f| f.name.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The declared extra origins as `(url, credentialed)`.
    pub fn declared_origins(&self) -> impl Iterator<Item = (&str, bool)> {
        self.extra_origins
            .iter()
            .map(|entry| match entry.strip_prefix(CREDENTIALED) {
                Some(url) => (url.trim(), true),
                None => (entry.trim(), false),
            })
    }
}

/// How a plugin posts comments (`comments-info`, contract 1.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommentsInfo {
    /// The format the tracker stores, e.g. "Markdown".
    pub format: String,
    /// The longest comment the tracker accepts, in Unicode scalar values.
    pub max_length: u32,
}

/// A comment the tracker created (`comment-info`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentInfo {
    /// The tracker's id of the comment.
    pub id: String,
    /// The comment's page (or its anchor on the issue's page), when the tracker has one.
    pub web_url: Option<String>,
}

/// How the bytes an HMAC covers are formed (`signed-content`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "headers", rename_all = "kebab-case")]
pub enum SignedContent {
    /// The raw request body.
    Body,
    /// Standard Webhooks: `{id}.{timestamp}.{body}`, id and timestamp from these headers.
    IdTimestampBody(IdTimestampHeaders),
}

/// The headers of the Standard Webhooks signed content (`id-timestamp-headers`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IdTimestampHeaders {
    /// The header holding the delivery id.
    pub id: String,
    /// The header holding the send time in seconds.
    pub timestamp: String,
}

/// How a digest is written in its header (`digest-encoding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DigestEncoding {
    /// Lower-case hexadecimal.
    Hex,
    /// Standard base64.
    Base64,
}

/// HMAC-SHA256 keyed with the source's webhook secret (`hmac-scheme`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HmacScheme {
    /// The header carrying the signature.
    pub header: String,
    /// Text before the digest, e.g. "sha256=".
    pub prefix: String,
    /// How the digest is written.
    pub encoding: DigestEncoding,
    /// What the HMAC covers.
    pub content: SignedContent,
}

/// How an event proves it comes from the tracker (`authenticity`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "scheme", rename_all = "kebab-case")]
pub enum Authenticity {
    /// An HMAC-SHA256 signature in a header (one of several space-separated ones matching
    /// is enough).
    HmacSha256(HmacScheme),
    /// A header (named here) whose value is the webhook secret itself.
    TokenHeader(String),
    /// HTTP Basic credentials whose password is the webhook secret.
    Basic,
}

/// Where a value of the event is found (`locator`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "name", rename_all = "kebab-case")]
pub enum Locator {
    /// A request header, by name.
    Header(String),
    /// A JSON pointer (RFC 6901) into the body.
    BodyPointer(String),
}

/// The unit of a timestamp (`time-unit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TimeUnit {
    /// Unix seconds.
    Seconds,
    /// Unix milliseconds.
    Milliseconds,
}

/// A replay window (`replay-window`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReplayWindow {
    /// Where the send time is.
    pub timestamp: Locator,
    /// Its unit.
    pub unit: TimeUnit,
    /// The largest difference from the host's clock accepted, in seconds.
    pub tolerance_secs: u32,
}

/// One way a tracker's webhooks can be set up and verified (`event-scheme`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventScheme {
    /// Stable id; the first scheme is the default.
    pub id: String,
    /// The label shown to admins.
    pub label: String,
    /// How an event proves where it comes from.
    pub authenticity: Authenticity,
    /// The replay window, when the tracker signs a timestamp.
    pub replay: Option<ReplayWindow>,
    /// Where the tracker's delivery id is, for dropping repeated deliveries.
    pub delivery_id: Option<Locator>,
    /// Set-up steps for the admin, one per line; `{webhookUrl}` stands for the source's URL.
    pub setup: String,
}

/// One verified event, as the plugin gets it (`event`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The id of the scheme that verified it.
    pub scheme: String,
    /// Request headers, names in lower case, without those carrying the signature, token or
    /// credentials.
    pub headers: Vec<(String, String)>,
    /// The raw body, exactly as received.
    pub body: Vec<u8>,
}

/// An issue an event concerns (`event-change`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventChange {
    /// The canonical key.
    pub key: String,
    /// The issue's new state when the payload carries all of it; none means "read it".
    pub issue: Option<Issue>,
    /// A number that grows with every change of the issue, when the payload carries one;
    /// apply `issue` only when it is greater than the last version applied.
    pub version: Option<u64>,
}
