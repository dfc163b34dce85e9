//! Integration sources: the rules a configuration passes ([`check`]), its secrets (sealed in
//! the store, opened for a plugin call: [`load_with_secrets`], [`config`]), and the changes an
//! admin makes (create, edit, enable/disable, delete, connection tests), each in one write
//! transaction with its audit event; and what a list of sources holds ([`listing`]).
//!
//! Rules (the spec's, plus what keeps data clean): every input is checked against the
//! provider's own description (auth types and their fields, settings), URLs and templates must
//! render to absolute http(s) URLs, and a failed check stores nothing. Secrets are write-only:
//! an edit that omits one keeps it, one that sends it replaces it, and switching provider or
//! auth type drops the old ones.
//!
//! A source's version is its `updated_at`, which every edit moves forward (at least by one):
//! the API's `ETag`, and what an edit may expect ([`Edit::versions`], from `If-Match`). A merge
//! patch is turned into a whole configuration by [`patch`], then edited like any other.

mod changes;
mod check;
mod draft_tests;
pub mod listing;
pub mod patch;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use changes::{changed_fields, kept_test, other_account};
pub use check::{MAX_KEY_PATTERN, MAX_URL_BYTES, check, check_in_store, check_key_pattern};
pub use draft_tests::DraftTests;
pub use listing::{ListError, ListQuery, ListRequest, Listing, Viewer, list};

use crate::app::AppState;
use crate::audit::audit;
use crate::crypto::MasterKey;
use crate::field::FieldError;
use crate::ids::new_id;
use crate::plugin::{PluginError, ProviderInfo, SourceConfig};
use crate::store::records::{
    Capabilities, Millis, ProjectAssignment, SourceRecord, TestResult, now,
};
use crate::store::{Read, SECRETS, SOURCES, StoreError};

/// Why a source could not be read, checked, changed or tested.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// What the admin gave is wrong: every problem found, the first the most important.
    #[error("{}", .0.first().map(ToString::to_string).unwrap_or_default())]
    Invalid(Vec<FieldError>),
    /// No source has this id.
    #[error("no source {0:?}")]
    NotFound(String),
    /// Another source already has this display name (compared by [`crate::names::key`]).
    #[error("a source named {0:?} already exists; choose a name that tells them apart")]
    DuplicateName(String),
    /// The source was changed by someone else between reading it for an edit and saving.
    #[error("the source changed while you edited it; reload and try again")]
    ChangedMeanwhile,
    /// The stored source is not at a version the edit expected ([`Edit::versions`]).
    #[error(
        "someone else changed this source since you read it (it is now at version {current}); \
         GET it again, make your change on what it holds now, and send If-Match with its new ETag"
    )]
    VersionMismatch {
        /// The stored source's version.
        current: Millis,
    },
    /// The source's sealed secrets do not open with the master key.
    #[error("source {id}: {detail}")]
    Unsealed {
        /// The source.
        id: String,
        /// Why they do not open.
        detail: String,
    },
    /// The provider's plugin is missing or failed (a provider's own answer included).
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The source no longer fits its loaded plugin (see [`crate::compat`]): nothing was asked
    /// of the plugin.
    #[error(transparent)]
    Incompatible(#[from] crate::compat::Incompatible),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug: something that cannot happen did.
    #[error("{0}")]
    Internal(&'static str),
}

/// Body of create, update and draft test.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({
    "provider": "github",
    "display_name": "Shop issues",
    "base_url": "https://github.com/acme/shop",
    "auth": {"type": "api-token", "fields": {"token": "ghp_..."}},
    "capabilities": {"read_issue_details": true, "create_issues": true},
    "projects": {"mode": "all"}
}))]
pub struct SourceInput {
    /// Provider (plugin) id.
    pub provider: String,
    /// Label members see; unique.
    pub display_name: String,
    /// Root URL of the tracker instance.
    pub base_url: String,
    /// Auth type and its fields (secret and non-secret together).
    #[serde(deserialize_with = "crate::objects::object")]
    pub auth: AuthInput,
    /// Optional issue URL template (`{baseUrl}`, `{key}`).
    #[serde(default)]
    pub issue_url_template: Option<String>,
    /// Optional create URL template (`{baseUrl}`).
    #[serde(default)]
    pub create_url_template: Option<String>,
    /// Optional key pattern (regular expression).
    #[serde(default)]
    pub key_pattern: Option<String>,
    /// Available to members (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Capabilities (default, as on the admin page: "Read issue details" only).
    #[serde(default, deserialize_with = "crate::objects::object")]
    pub capabilities: Capabilities,
    /// Project assignment.
    pub projects: ProjectAssignment,
    /// Provider settings.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Network settings (CA bundle, proxy); none by default.
    #[serde(default, deserialize_with = "crate::objects::optional_object")]
    pub network: Option<NetworkInput>,
}

/// The network part of [`SourceInput`]: how the host reaches this tracker.
#[derive(Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkInput {
    /// PEM certificates (one or more `BEGIN CERTIFICATE` blocks) trusted for this source
    /// besides the system's roots; empty or absent for none.
    #[serde(default)]
    pub ca_bundle_pem: Option<String>,
    /// An absolute `http://` or `https://` proxy URL without credentials; empty or absent for
    /// a direct connection.
    #[serde(default)]
    pub proxy_url: Option<String>,
}

fn yes() -> bool {
    true
}

/// The auth part of [`SourceInput`].
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthInput {
    /// Auth type id, one of the provider's.
    #[serde(rename = "type")]
    pub kind: String,
    /// Field values; secret ones may be omitted on edit to keep the stored value.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// The outcome of a connection test.
#[derive(Serialize, JsonSchema)]
pub struct TestOutcome {
    /// True on success.
    pub ok: bool,
    /// `connected` or the error category (`unauthorized`, `not-found`, ...).
    pub code: String,
    /// What to show the admin.
    pub message: String,
    /// On success: who we are connected as.
    pub account: Option<String>,
    /// On success: more detail.
    pub detail: Option<String>,
    /// On rate limiting: seconds to wait.
    pub retry_after_secs: Option<u32>,
}

/// Creates a source from `input` for `who`; returns its id and the stored record.
pub async fn create(
    state: &AppState,
    who: &str,
    input: &SourceInput,
) -> Result<(String, SourceRecord), SourceError> {
    let info = provider_info(state, &input.provider)?;
    let (mut record, secrets) = check(input, &info, None)?;
    // A draft of this very connection tested well just before: the new row says so.
    record.last_test = state.draft_tests.passed(&record, &secrets);
    let id = new_id("src");
    let sealed = state.key.seal(&id, &secrets);
    let (key, value, who) = (id.clone(), record.clone(), who.to_string());
    state
        .store
        .write(move |w| {
            check_in_store(w, &value, None)?;
            w.put(SOURCES, &key, &value)?;
            w.put(SECRETS, &key, &sealed)?;
            audit(
                w,
                &who,
                "source.created",
                &key,
                json!({"display_name": value.display_name, "provider": value.provider}),
            )?;
            Ok::<_, SourceError>(())
        })
        .await?;
    Ok((id, record))
}

/// What an edit expects of the stored source and removes from it, besides the configuration
/// it gives.
#[derive(Clone, Debug, Default)]
pub struct Edit {
    /// The versions (`updated_at`) the stored source may be at for the edit to go ahead
    /// (`If-Match`); any when `None`.
    pub versions: Option<Vec<Millis>>,
    /// Secret fields to remove (a merge patch's `null`s); the others the input omits are kept.
    pub remove_secrets: Vec<String>,
}

impl Edit {
    /// A [`SourceError::VersionMismatch`] unless `current` is at a version the edit expects.
    pub fn allows(&self, current: &SourceRecord) -> Result<(), SourceError> {
        match &self.versions {
            Some(versions) if !versions.contains(&current.updated_at) => {
                Err(SourceError::VersionMismatch {
                    current: current.updated_at,
                })
            }
            _ => Ok(()),
        }
    }
}

/// Replaces the configuration of source `id` by `input`; omitted secrets are kept, except
/// those `edit` removes. Returns the stored record.
pub async fn update(
    state: &AppState,
    who: &str,
    id: &str,
    input: &SourceInput,
    edit: &Edit,
) -> Result<SourceRecord, SourceError> {
    let info = provider_info(state, &input.provider)?;
    let (current, stored) = load_with_secrets(state, id).await?;
    edit.allows(&current)?;
    let mut kept = stored.clone();
    kept.retain(|name, _| !edit.remove_secrets.contains(name));
    let (mut record, mut secrets) = check(input, &info, Some((&current, &kept)))?;
    crate::webhooks::settings::keep(&current, &stored, &mut record, &mut secrets);
    record.created_at = current.created_at;
    record.updated_at = next_version(current.updated_at);
    record.last_test = kept_test(&current, &record, &stored, &secrets);
    let sealed = state.key.seal(id, &secrets);
    let changed = changed_fields(&current, &record, &stored, &secrets);
    let other_account = other_account(&current, &record, &stored, &secrets);
    let (key, value, who) = (id.to_string(), record.clone(), who.to_string());
    state
        .store
        .write(move |w| {
            let now_stored: SourceRecord = w
                .get(SOURCES, &key)?
                .ok_or_else(|| SourceError::NotFound(key.clone()))?;
            if now_stored.updated_at != current.updated_at {
                return Err(SourceError::ChangedMeanwhile);
            }
            check_in_store(w, &value, Some(&key))?;
            w.put(SOURCES, &key, &value)?;
            w.put(SECRETS, &key, &sealed)?;
            audit(
                w,
                &who,
                "source.edited",
                &key,
                json!({ "changed": changed }),
            )?;
            Ok::<_, SourceError>(())
        })
        .await?;
    if other_account {
        state.plugins.forget_source(id);
        state.metrics.forget_headroom(id);
    }
    Ok(record)
}

/// The version (`updated_at`) of a source changed now: the time, or one more than `previous`
/// when the clock has not moved past it, so that every change is a new version (and `ETag`).
pub fn next_version(previous: Millis) -> Millis {
    now().max(previous + 1)
}

/// Deletes source `id`. Links to it stay, marked not syncing.
pub async fn delete(state: &AppState, who: &str, id: &str) -> Result<(), SourceError> {
    let (who, key) = (who.to_string(), id.to_string());
    state
        .store
        .write(move |w| {
            let record: SourceRecord = w
                .get(SOURCES, &key)?
                .ok_or_else(|| SourceError::NotFound(key.clone()))?;
            w.delete(SOURCES, &key)?;
            w.delete(SECRETS, &key)?;
            w.delete(crate::store::HEALTH, &key)?;
            audit(
                w,
                &who,
                "source.deleted",
                &key,
                json!({"display_name": record.display_name}),
            )?;
            Ok::<_, SourceError>(())
        })
        .await?;
    state.metrics.forget(id);
    state.webhooks.forget(id);
    state.plugins.forget_source(id);
    Ok(())
}

/// Enables or disables source `id`; returns the stored record.
pub async fn set_enabled(
    state: &AppState,
    who: &str,
    id: &str,
    enabled: bool,
) -> Result<SourceRecord, SourceError> {
    let (key, who) = (id.to_string(), who.to_string());
    state
        .store
        .write(move |w| {
            let mut record: SourceRecord = w
                .get(SOURCES, &key)?
                .ok_or_else(|| SourceError::NotFound(key.clone()))?;
            if record.enabled != enabled {
                record.enabled = enabled;
                record.updated_at = next_version(record.updated_at);
                w.put(SOURCES, &key, &record)?;
                let action = if enabled {
                    "source.enabled"
                } else {
                    "source.disabled"
                };
                audit(w, &who, action, &key, json!({}))?;
            }
            Ok::<_, SourceError>(record)
        })
        .await
}

/// Runs the plugin's connection test of source `id` with its stored configuration, enabled
/// or not, and records the result on the source, unless an edit came in meanwhile.
pub async fn test(state: &AppState, who: &str, id: &str) -> Result<TestOutcome, SourceError> {
    let (record, secrets) = load_with_secrets(state, id).await?;
    if let Some(refused) = crate::compat::refusal(&state.plugins, &record) {
        return Err(refused.into());
    }
    let outcome = run_test(state, &config(Some(id), &record, secrets)).await?;
    let tested = record.updated_at;
    let result = TestResult {
        ok: outcome.ok,
        code: outcome.code.clone(),
        message: outcome.message.clone(),
        at: now(),
    };
    let (key, who) = (id.to_string(), who.to_string());
    state
        .store
        .write(move |w| {
            // The source may have been deleted or edited meanwhile; then the result is not
            // its configuration's, and is not recorded on it.
            if let Some(mut record) = w.get::<SourceRecord>(SOURCES, &key)?
                && record.updated_at == tested
            {
                record.last_test = Some(result.clone());
                w.put(SOURCES, &key, &record)?;
                audit(
                    w,
                    &who,
                    "source.tested",
                    &key,
                    json!({"ok": result.ok, "code": result.code}),
                )?;
            }
            Ok::<_, SourceError>(())
        })
        .await?;
    Ok(outcome)
}

/// Tests a draft configuration without saving it; a pass is remembered for a save right after
/// ([`DraftTests`]).
pub async fn test_draft(state: &AppState, input: &SourceInput) -> Result<TestOutcome, SourceError> {
    let info = provider_info(state, &input.provider)?;
    let (record, secrets) = check(input, &info, None)?;
    let outcome = run_test(state, &config(None, &record, secrets.clone())).await?;
    if outcome.ok {
        state.draft_tests.remember(&record, &secrets, &outcome);
    }
    Ok(outcome)
}

/// Tests an edit of stored source `id` before it is saved; secrets `input` omits are the
/// stored ones. Nothing is stored, not even the result, so replaced credentials can be tried
/// first.
pub async fn test_edit(
    state: &AppState,
    id: &str,
    input: &SourceInput,
) -> Result<TestOutcome, SourceError> {
    let info = provider_info(state, &input.provider)?;
    let (current, stored) = load_with_secrets(state, id).await?;
    let (record, secrets) = check(input, &info, Some((&current, &stored)))?;
    run_test(state, &config(None, &record, secrets)).await
}

/// Runs a connection test; the result is recorded in the health of the stored source, if
/// `config` is one's (not a draft's).
async fn run_test(state: &AppState, config: &SourceConfig) -> Result<TestOutcome, SourceError> {
    let result = state
        .metrics
        .observe(
            config.source_id.as_deref(),
            &config.provider,
            "test-connection",
            crate::metrics::Outcome::of,
            state.plugins.test_connection(config),
        )
        .await;
    match result {
        Ok(info) => Ok(TestOutcome {
            ok: true,
            code: "connected".into(),
            message: format!("Connected as {}", info.account),
            account: Some(info.account),
            detail: info.detail,
            retry_after_secs: None,
        }),
        Err(PluginError::Provider(e)) => Ok(TestOutcome {
            ok: false,
            code: e.code().into(),
            retry_after_secs: match &e {
                crate::plugin::ProviderError::RateLimited {
                    retry_after_secs, ..
                } => Some(*retry_after_secs),
                _ => None,
            },
            message: e.to_string(),
            account: None,
            detail: None,
        }),
        // The test ran and failed: the tracker did not answer in time, or the plugin broke
        // down on what it got. A failure result, recorded like the tracker's own refusals.
        Err(
            e @ (PluginError::Timeout { .. }
            | PluginError::CpuLimit(_)
            | PluginError::MemoryLimit(_)
            | PluginError::Trap(_)
            | PluginError::Malformed(_)),
        ) => Ok(TestOutcome {
            ok: false,
            code: e.code().into(),
            message: e.to_string(),
            account: None,
            detail: None,
            retry_after_secs: None,
        }),
        // Not run: no plugin, the call slots full, the host refused the call.
        Err(e) => Err(e.into()),
    }
}

/// The plugin-call view of a source and its opened secrets; `id` is the stored source's
/// (none for a draft).
pub fn config(
    id: Option<&str>,
    record: &SourceRecord,
    secrets: BTreeMap<String, String>,
) -> SourceConfig {
    let secrets = crate::webhooks::settings::without_webhook_secret(secrets);
    SourceConfig {
        source_id: id.map(str::to_string),
        provider: record.provider.clone(),
        base_url: record.base_url.clone(),
        auth_type: record.auth_type.clone(),
        fields: record.auth_fields.clone(),
        secrets,
        settings: record.settings.clone(),
        issue_url_template: record.issue_url_template.clone(),
        create_url_template: record.create_url_template.clone(),
        key_pattern: record.key_pattern.clone(),
        ca_bundle_pem: record.network.ca_bundle_pem.clone(),
        proxy_url: record.network.proxy_url.clone(),
    }
}

/// Loads a source and opens its secrets.
pub async fn load_with_secrets(
    state: &AppState,
    id: &str,
) -> Result<(SourceRecord, BTreeMap<String, String>), SourceError> {
    let key = id.to_string();
    let (record, sealed): (Option<SourceRecord>, Option<Vec<u8>>) = state
        .store
        .read(move |r| Ok::<_, SourceError>((r.get(SOURCES, &key)?, r.get(SECRETS, &key)?)))
        .await?;
    let record = record.ok_or_else(|| SourceError::NotFound(id.to_string()))?;
    let secrets = match sealed {
        Some(sealed) => open(&state.key, id, &sealed)?,
        None => BTreeMap::new(),
    };
    Ok((record, secrets))
}

/// Opens the sealed credentials of source `id`.
pub(crate) fn open(
    key: &MasterKey,
    id: &str,
    sealed: &[u8],
) -> Result<BTreeMap<String, String>, SourceError> {
    key.open(id, sealed).map_err(|e| SourceError::Unsealed {
        id: id.to_string(),
        detail: e.to_string(),
    })
}

/// Loads a source.
pub async fn load(state: &AppState, id: &str) -> Result<SourceRecord, SourceError> {
    let key = id.to_string();
    let record: Option<SourceRecord> = state.store.read(move |r| r.get(SOURCES, &key)).await?;
    record.ok_or_else(|| SourceError::NotFound(id.to_string()))
}

fn provider_info(state: &AppState, provider: &str) -> Result<ProviderInfo, SourceError> {
    state
        .plugins
        .get(provider)
        .map(|p| p.info.clone())
        .map_err(|_| {
            SourceError::Invalid(vec![FieldError::new(
                "provider",
                format!("unknown provider {provider:?}"),
            )])
        })
}
