//! `/sources`: create, read, list, edit, enable/disable, delete and test integration sources.
//!
//! Rules (the spec's, plus what keeps data clean): every input is checked against the
//! provider's own description (auth types and their fields, settings), URLs and templates must
//! render to absolute http(s) URLs, and a failed check stores nothing. Secrets are write-only:
//! an edit that omits one keeps it, one that sends it replaces it, and switching provider or
//! auth type drops the old ones.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::ApiError;
use super::extract::{Body, Caller, Path, Query};
use super::{names, new_id};
use crate::app::AppState;
use crate::crypto::MasterKey;
use crate::metrics::Health;
use crate::plugin::model::SettingKind;
use crate::plugin::{PluginError, ProviderInfo, SourceConfig};
use crate::store::records::{
    Capabilities, NetworkSettings, ProjectAssignment, ProjectRecord, SourceRecord, TestResult, now,
};
use crate::store::{PROJECTS, Read, SECRETS, SOURCES, Writer};

/// The longest key pattern accepted, in characters.
pub const MAX_KEY_PATTERN: usize = 512;

/// The longest URL (base URL, URL setting, proxy URL) and URL template accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// Body of create, update and draft test.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceInput {
    /// Provider (plugin) id.
    pub provider: String,
    /// Label members see; unique.
    pub display_name: String,
    /// Root URL of the tracker instance.
    pub base_url: String,
    /// Auth type and its fields (secret and non-secret together).
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
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Project assignment.
    pub projects: ProjectAssignment,
    /// Provider settings.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Network settings (CA bundle, proxy); none by default.
    #[serde(default)]
    pub network: Option<NetworkInput>,
}

/// The network part of [`SourceInput`]: how the host reaches this tracker.
#[derive(Clone, Default, Deserialize)]
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
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthInput {
    /// Auth type id, one of the provider's.
    #[serde(rename = "type")]
    pub kind: String,
    /// Field values; secret ones may be omitted on edit to keep the stored value.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// A source as admins see it. Secret values never appear: `secrets_set` names the set ones.
#[derive(Serialize)]
pub struct SourceView {
    /// Id.
    pub id: String,
    /// The stored configuration.
    #[serde(flatten)]
    pub record: SourceRecord,
    /// The provider's display name, or none when its plugin is missing.
    pub provider_name: Option<String>,
    /// `loaded`, `missing` or `incompatible`: a source whose plugin is not loaded cannot be
    /// tested or synced; one that no longer fits the loaded version (see [`crate::compat`])
    /// is not synced until it is edited to fit or a fitting version is loaded.
    pub plugin_status: &'static str,
    /// Why the source is `incompatible`; null otherwise.
    pub plugin_problem: Option<String>,
    /// Capabilities that are stored but not active in this release.
    pub inactive_capabilities: Vec<&'static str>,
    /// How its recent calls went (the same as `GET /sources/{id}/health`).
    pub health: Health,
}

/// A source as project members see it.
#[derive(Serialize)]
pub struct MemberSourceView {
    /// Id.
    pub id: String,
    /// Provider id.
    pub provider: String,
    /// Provider display name.
    pub provider_name: Option<String>,
    /// Label.
    pub display_name: String,
    /// Base URL.
    pub base_url: String,
    /// How keys look.
    pub key_hint: Option<String>,
    /// A sample key.
    pub key_example: Option<String>,
    /// Whether issue details are read.
    pub read_issue_details: bool,
    /// Whether a create-issue shortcut is offered.
    pub create_issues: bool,
}

/// The outcome of a connection test.
#[derive(Serialize)]
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

/// Query of `GET /sources`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only sources usable in this project.
    pub project: Option<String>,
}

/// `GET /sources`: admins get every source; members get the enabled sources assigned to
/// their projects (or to `?project=`), in the member view.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if let Some(project) = &query.project {
        caller.require_project(project)?;
    }
    let mut all: Vec<(String, SourceRecord)> = state.store.read(|r| r.all(SOURCES)).await?;
    all.sort_by(|a, b| {
        a.1.display_name
            .to_lowercase()
            .cmp(&b.1.display_name.to_lowercase())
    });
    let usable = |s: &SourceRecord| match &query.project {
        Some(p) => s.projects.includes(p),
        None => true,
    };
    if caller.is_admin() {
        let views: Vec<SourceView> = all
            .into_iter()
            .filter(|(_, s)| usable(s))
            .map(|(id, s)| view(&state, id, s))
            .collect();
        return Ok(Json(json!(views)));
    }
    let views: Vec<MemberSourceView> = all
        .into_iter()
        .filter(|(_, s)| s.enabled && usable(s))
        .filter(|(_, s)| caller.token.projects.iter().any(|p| s.projects.includes(p)))
        .map(|(id, s)| member_view(&state, id, s))
        .collect();
    Ok(Json(json!(views)))
}

/// `GET /sources/{id}` (admin).
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SourceView>, ApiError> {
    caller.require_admin()?;
    let record = load(&state, &id).await?;
    Ok(Json(view(&state, id, record)))
}

/// `POST /sources` (admin).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(input): Body<SourceInput>,
) -> Result<(StatusCode, Json<SourceView>), ApiError> {
    caller.require_admin()?;
    let info = provider_info(&state, &input.provider)?;
    let (mut record, secrets) = check(&input, &info, None)?;
    // A draft of this very connection tested well just before: the new row says so.
    record.last_test = state.draft_tests.passed(&record, &secrets);
    let id = new_id("src");
    let sealed = state.key.seal(&id, &secrets);
    let (key, value, who) = (id.clone(), record.clone(), caller.who());
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
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(view(&state, id, record))))
}

/// `PUT /sources/{id}` (admin): replaces the configuration; omitted secrets are kept.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(input): Body<SourceInput>,
) -> Result<Json<SourceView>, ApiError> {
    caller.require_admin()?;
    let info = provider_info(&state, &input.provider)?;
    let (current, stored) = load_with_secrets(&state, &id).await?;
    let (mut record, secrets) = check(&input, &info, Some((&current, &stored)))?;
    record.created_at = current.created_at;
    record.last_test = kept_test(&current, &record, &stored, &secrets);
    let sealed = state.key.seal(&id, &secrets);
    let changed = changed_fields(&current, &record, &stored, &secrets);
    let other_account = other_account(&current, &record, &stored, &secrets);
    let (key, value, who) = (id.clone(), record.clone(), caller.who());
    state
        .store
        .write(move |w| {
            let now_stored: SourceRecord = w
                .get(SOURCES, &key)?
                .ok_or_else(|| ApiError::not_found(format!("no source {key:?}")))?;
            if now_stored.updated_at != current.updated_at {
                return Err(ApiError::conflict(
                    None,
                    "the source changed while you edited it; reload and try again",
                ));
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
            Ok::<_, ApiError>(())
        })
        .await?;
    if other_account {
        state.plugins.forget_source(&id);
    }
    Ok(Json(view(&state, id, record)))
}

/// `DELETE /sources/{id}` (admin). Links to it stay, marked not syncing.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let (who, gone) = (caller.who(), id.clone());
    state
        .store
        .write(move |w| {
            let record: SourceRecord = w
                .get(SOURCES, &id)?
                .ok_or_else(|| ApiError::not_found(format!("no source {id:?}")))?;
            w.delete(SOURCES, &id)?;
            w.delete(SECRETS, &id)?;
            audit(
                w,
                &who,
                "source.deleted",
                &id,
                json!({"display_name": record.display_name}),
            )?;
            Ok::<_, ApiError>(())
        })
        .await?;
    state.metrics.forget(&gone);
    state.plugins.forget_source(&gone);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /sources/{id}/enable` (admin).
pub async fn enable(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
) -> Result<Json<SourceView>, ApiError> {
    set_enabled(state, caller, id, true).await
}

/// `POST /sources/{id}/disable` (admin).
pub async fn disable(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
) -> Result<Json<SourceView>, ApiError> {
    set_enabled(state, caller, id, false).await
}

async fn set_enabled(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    enabled: bool,
) -> Result<Json<SourceView>, ApiError> {
    caller.require_admin()?;
    let (key, who) = (id.clone(), caller.who());
    let record = state
        .store
        .write(move |w| {
            let mut record: SourceRecord = w
                .get(SOURCES, &key)?
                .ok_or_else(|| ApiError::not_found(format!("no source {key:?}")))?;
            if record.enabled != enabled {
                record.enabled = enabled;
                record.updated_at = now();
                w.put(SOURCES, &key, &record)?;
                let action = if enabled {
                    "source.enabled"
                } else {
                    "source.disabled"
                };
                audit(w, &who, action, &key, json!({}))?;
            }
            Ok::<_, ApiError>(record)
        })
        .await?;
    Ok(Json(view(&state, id, record)))
}

/// `POST /sources/{id}/test` (admin): runs the plugin's connection test with the stored
/// configuration, enabled or not, and records the result on the source.
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TestOutcome>, ApiError> {
    caller.require_admin()?;
    let (record, secrets) = load_with_secrets(&state, &id).await?;
    if let Some(refused) = crate::compat::refusal(&state.plugins, &record) {
        return Err(refused);
    }
    let outcome = run_test(&state, &config(Some(&id), &record, secrets)).await?;
    let result = TestResult {
        ok: outcome.ok,
        code: outcome.code.clone(),
        message: outcome.message.clone(),
        at: now(),
    };
    let who = caller.who();
    state
        .store
        .write(move |w| {
            // The source may have been deleted meanwhile; then there is nothing to record on.
            if let Some(mut record) = w.get::<SourceRecord>(SOURCES, &id)? {
                record.last_test = Some(result.clone());
                w.put(SOURCES, &id, &record)?;
                audit(
                    w,
                    &who,
                    "source.tested",
                    &id,
                    json!({"ok": result.ok, "code": result.code}),
                )?;
            }
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(Json(outcome))
}

/// `POST /sources/test` (admin): tests a draft configuration without saving it.
pub async fn test_draft(
    State(state): State<AppState>,
    caller: Caller,
    Body(input): Body<SourceInput>,
) -> Result<Json<TestOutcome>, ApiError> {
    caller.require_admin()?;
    let info = provider_info(&state, &input.provider)?;
    let (record, secrets) = check(&input, &info, None)?;
    let outcome = run_test(&state, &config(None, &record, secrets.clone())).await?;
    if outcome.ok {
        state.draft_tests.remember(&record, &secrets, &outcome);
    }
    Ok(Json(outcome))
}

/// Successful draft tests of the last minutes, by connection, so that a source saved right
/// after its draft passed starts with that result instead of "not tested yet". A connection is
/// told by a salted sha-256 of everything that decides how the tracker is reached (provider,
/// base URL, auth type and fields, secrets, settings, network); nothing else is kept, and
/// only in memory.
pub struct DraftTests {
    salt: [u8; 32],
    passed: std::sync::Mutex<std::collections::HashMap<[u8; 32], (std::time::Instant, TestResult)>>,
}

impl Default for DraftTests {
    fn default() -> Self {
        DraftTests {
            salt: rand::random(),
            passed: Default::default(),
        }
    }
}

impl DraftTests {
    /// How long a passed draft test counts for a save.
    const FRESH: std::time::Duration = std::time::Duration::from_secs(15 * 60);
    /// The most remembered; past it the list starts over.
    const MAX: usize = 256;

    fn fingerprint(&self, record: &SourceRecord, secrets: &BTreeMap<String, String>) -> [u8; 32] {
        use sha2::Digest as _;
        let connection = json!([
            record.provider,
            record.base_url,
            record.auth_type,
            record.auth_fields,
            secrets,
            record.settings,
            record.network,
        ]);
        let mut hash = sha2::Sha256::new();
        hash.update(self.salt);
        hash.update(connection.to_string());
        hash.finalize().into()
    }

    fn remember(
        &self,
        record: &SourceRecord,
        secrets: &BTreeMap<String, String>,
        outcome: &TestOutcome,
    ) {
        let key = self.fingerprint(record, secrets);
        let result = TestResult {
            ok: outcome.ok,
            code: outcome.code.clone(),
            message: outcome.message.clone(),
            at: now(),
        };
        let mut passed = self.passed.lock().unwrap_or_else(|e| e.into_inner());
        if passed.len() >= Self::MAX {
            passed.clear();
        }
        passed.insert(key, (std::time::Instant::now(), result));
    }

    /// The passed draft test of this connection, if one ran in the last minutes.
    fn passed(
        &self,
        record: &SourceRecord,
        secrets: &BTreeMap<String, String>,
    ) -> Option<TestResult> {
        let key = self.fingerprint(record, secrets);
        let passed = self.passed.lock().unwrap_or_else(|e| e.into_inner());
        let (at, result) = passed.get(&key)?;
        (at.elapsed() < Self::FRESH).then(|| result.clone())
    }
}

/// `POST /sources/{id}/test-edit`: tests an edit of a stored source before it is saved. The
/// body is the edited configuration (as for `PUT`); secrets it omits are the stored ones.
/// Nothing is stored, not even the result, so replaced credentials can be tried first.
pub async fn test_edit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(input): Body<SourceInput>,
) -> Result<Json<TestOutcome>, ApiError> {
    caller.require_admin()?;
    let info = provider_info(&state, &input.provider)?;
    let (current, stored) = load_with_secrets(&state, &id).await?;
    let (record, secrets) = check(&input, &info, Some((&current, &stored)))?;
    Ok(Json(
        run_test(&state, &config(None, &record, secrets)).await?,
    ))
}

/// Runs a connection test; the result is recorded in the health of the stored source, if
/// `config` is one's (not a draft's).
async fn run_test(state: &AppState, config: &SourceConfig) -> Result<TestOutcome, ApiError> {
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
) -> Result<(SourceRecord, BTreeMap<String, String>), ApiError> {
    let key = id.to_string();
    let (record, sealed): (Option<SourceRecord>, Option<Vec<u8>>) = state
        .store
        .read(move |r| Ok::<_, ApiError>((r.get(SOURCES, &key)?, r.get(SECRETS, &key)?)))
        .await?;
    let record = record.ok_or_else(|| ApiError::not_found(format!("no source {id:?}")))?;
    let secrets = match sealed {
        Some(sealed) => open(&state.key, id, &sealed)?,
        None => BTreeMap::new(),
    };
    Ok((record, secrets))
}

fn open(key: &MasterKey, id: &str, sealed: &[u8]) -> Result<BTreeMap<String, String>, ApiError> {
    key.open(id, sealed)
        .map_err(|e| ApiError::internal(format!("source {id}: {e}")))
}

async fn load(state: &AppState, id: &str) -> Result<SourceRecord, ApiError> {
    let key = id.to_string();
    let record: Option<SourceRecord> = state.store.read(move |r| r.get(SOURCES, &key)).await?;
    record.ok_or_else(|| ApiError::not_found(format!("no source {id:?}")))
}

fn provider_info(state: &AppState, provider: &str) -> Result<ProviderInfo, ApiError> {
    state
        .plugins
        .get(provider)
        .map(|p| p.info.clone())
        .map_err(|_| ApiError::invalid("provider", format!("unknown provider {provider:?}")))
}

fn view(state: &AppState, id: String, record: SourceRecord) -> SourceView {
    let plugin = state.plugins.get(&record.provider).ok();
    let mut inactive = Vec::new();
    if record.capabilities.add_comments {
        inactive.push("add_comments");
    }
    if record.capabilities.process_webhooks {
        inactive.push("process_webhooks");
    }
    let status = crate::compat::status(&state.plugins, &record);
    SourceView {
        health: state.metrics.health(&id, state.plugins.headroom(&id)),
        id,
        provider_name: plugin.as_ref().map(|p| p.info.name.clone()),
        plugin_status: status.name(),
        plugin_problem: status.reason().map(str::to_string),
        inactive_capabilities: inactive,
        record,
    }
}

fn member_view(state: &AppState, id: String, s: SourceRecord) -> MemberSourceView {
    let plugin = state.plugins.get(&s.provider).ok();
    let (key_hint, key_example) = match &plugin {
        Some(p) => member_key_hint(state, &p.info, &s),
        None => (None, None),
    };
    MemberSourceView {
        id,
        provider_name: plugin.as_ref().map(|p| p.info.name.clone()),
        key_hint,
        key_example,
        provider: s.provider,
        display_name: s.display_name,
        base_url: s.base_url,
        read_issue_details: s.capabilities.read_issue_details,
        create_issues: s.capabilities.create_issues && s.create_url_template.is_some(),
    }
}

/// The key hint and example members see. A source with a key pattern states it instead of
/// the provider's general hint (which, for a free-form tracker, may say "any format"), and
/// keeps the provider's example only if the pattern accepts it.
fn member_key_hint(
    state: &AppState,
    info: &ProviderInfo,
    s: &SourceRecord,
) -> (Option<String>, Option<String>) {
    let Some(pattern) = &s.key_pattern else {
        return (Some(info.key_hint.clone()), Some(info.key_example.clone()));
    };
    let example = Some(info.key_example.clone()).filter(|e| state.patterns.matches(pattern, e));
    let hint = match &example {
        Some(e) => format!("Keys of this source match {pattern}, e.g. {e}"),
        None => format!("Keys of this source match {pattern}"),
    };
    (Some(hint), example)
}

/// Records an admin change in the audit log (never with a secret value).
pub fn audit(
    w: &mut Writer,
    who: &str,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    w.audit(
        &json!({"at": now(), "who": who, "action": action, "target": target, "details": details}),
    )?;
    Ok(())
}

/// True when an edit points a source at another tracker or another account, so that what its
/// calls reported (the rate-limit headroom) no longer applies.
pub fn other_account(
    current: &SourceRecord,
    record: &SourceRecord,
    stored: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, String>,
) -> bool {
    current.provider != record.provider
        || current.base_url != record.base_url
        || current.auth_type != record.auth_type
        || current.auth_fields != record.auth_fields
        || stored != secrets
}

/// The last connection test result an edit keeps: none once the edit changes how the tracker
/// is reached (provider, base URL, auth, settings, network), since the result may no longer
/// hold; the page then says "not tested since the last change".
pub fn kept_test(
    current: &SourceRecord,
    record: &SourceRecord,
    stored: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, String>,
) -> Option<TestResult> {
    let same_connection = !other_account(current, record, stored, secrets)
        && current.settings == record.settings
        && current.network == record.network;
    current.last_test.clone().filter(|_| same_connection)
}

/// Names of the fields an edit changed; secrets appear as `auth.fields.<name>: replaced`.
pub fn changed_fields(
    old: &SourceRecord,
    new: &SourceRecord,
    old_secrets: &BTreeMap<String, String>,
    new_secrets: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut cmp = |name: &str, a: serde_json::Value, b: serde_json::Value| {
        if a != b {
            out.push(name.to_string());
        }
    };
    cmp("provider", json!(old.provider), json!(new.provider));
    cmp(
        "display_name",
        json!(old.display_name),
        json!(new.display_name),
    );
    cmp("base_url", json!(old.base_url), json!(new.base_url));
    cmp("auth.type", json!(old.auth_type), json!(new.auth_type));
    cmp(
        "auth.fields",
        json!(old.auth_fields),
        json!(new.auth_fields),
    );
    cmp(
        "issue_url_template",
        json!(old.issue_url_template),
        json!(new.issue_url_template),
    );
    cmp(
        "create_url_template",
        json!(old.create_url_template),
        json!(new.create_url_template),
    );
    cmp(
        "key_pattern",
        json!(old.key_pattern),
        json!(new.key_pattern),
    );
    cmp("enabled", json!(old.enabled), json!(new.enabled));
    cmp(
        "capabilities",
        json!(old.capabilities),
        json!(new.capabilities),
    );
    cmp("projects", json!(old.projects), json!(new.projects));
    cmp("settings", json!(old.settings), json!(new.settings));
    cmp("network", json!(old.network), json!(new.network));
    for (name, value) in new_secrets {
        if old_secrets.get(name) != Some(value) {
            out.push(format!("auth.fields.{name}: replaced"));
        }
    }
    out
}

/// Checks that need the database: a unique display name and existing projects.
pub fn check_in_store(
    w: &Writer,
    record: &SourceRecord,
    except: Option<&str>,
) -> Result<(), ApiError> {
    let all: Vec<(String, SourceRecord)> = w.all(SOURCES)?;
    let name = names::key(&record.display_name);
    if all
        .iter()
        .any(|(id, s)| Some(id.as_str()) != except && names::key(&s.display_name) == name)
    {
        return Err(ApiError::conflict(
            Some("display_name"),
            format!(
                "a source named {:?} already exists; choose a name that tells them apart",
                record.display_name
            ),
        ));
    }
    if let ProjectAssignment::Specific { ids } = &record.projects {
        for (i, project) in ids.iter().enumerate() {
            if w.get::<ProjectRecord>(PROJECTS, project)?.is_none() {
                return Err(ApiError::invalid(
                    format!("projects.ids[{i}]"),
                    format!("no project {project:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// Checks an input against the provider's description; returns the record to store and the
/// secrets to seal. `existing` is the stored source and its secrets, for edits. Every field is
/// checked: the error lists all problems at once ([`ApiError::all`]), the first as the answer.
pub fn check(
    input: &SourceInput,
    info: &ProviderInfo,
    existing: Option<(&SourceRecord, &BTreeMap<String, String>)>,
) -> Result<(SourceRecord, BTreeMap<String, String>), ApiError> {
    let mut errors = Vec::new();
    let display_name = names::check(
        "display_name",
        &input.display_name,
        "a display name",
        "Jira (web team)",
        100,
    );
    let display_name = noted(&mut errors, display_name).unwrap_or_default();
    let base_url = noted(&mut errors, check_base_url(&input.base_url));
    let optional = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let issue_url_template = optional(&input.issue_url_template);
    let create_url_template = optional(&input.create_url_template);
    let key_pattern = optional(&input.key_pattern);
    // Templates are checked against the base URL, or a stand-in one while it is wrong.
    let base_for_templates = base_url.as_deref().unwrap_or("https://tracker.example.com");
    if let Some(t) = &issue_url_template {
        let checked = check_template(
            "issue_url_template",
            t,
            base_for_templates,
            &["baseUrl", "key"],
        );
        noted(&mut errors, checked);
    }
    if let Some(t) = &create_url_template {
        let checked = check_template("create_url_template", t, base_for_templates, &["baseUrl"]);
        noted(&mut errors, checked);
    }
    if input.capabilities.create_issues && create_url_template.is_none() {
        // Suggest the provider's own new-issue page, not another tracker's.
        let example = info
            .default_create_url_template
            .as_deref()
            .unwrap_or("{baseUrl}/issues/new");
        errors.push(ApiError::invalid(
            "create_url_template",
            format!("\"Create issues\" needs a create URL template (e.g. {example})"),
        ));
    }
    if let Some(p) = &key_pattern {
        noted(&mut errors, check_key_pattern(p).map(drop));
    }
    if let ProjectAssignment::Specific { ids } = &input.projects
        && ids.is_empty()
    {
        errors.push(ApiError::invalid(
            "projects.ids",
            "choose at least one project, or all projects",
        ));
    }
    let auth = check_auth(&mut errors, input, info, existing);
    let settings = check_settings(&mut errors, input, info);
    let network = noted(&mut errors, check_network(input.network.as_ref()));
    if let Some(all) = ApiError::all(errors) {
        return Err(all);
    }
    let (Some(base_url), Some((auth_type, fields, secrets)), Some(network)) =
        (base_url, auth, network)
    else {
        return Err(ApiError::internal("a check failed without an error"));
    };

    let at = now();
    let record = SourceRecord {
        provider: input.provider.clone(),
        display_name,
        base_url,
        auth_type,
        auth_fields: fields,
        secrets_set: secrets.keys().cloned().collect(),
        settings,
        issue_url_template,
        create_url_template,
        key_pattern,
        enabled: input.enabled,
        capabilities: input.capabilities,
        projects: input.projects.clone(),
        last_test: None,
        created_at: at,
        updated_at: at,
        network,
    };
    Ok((record, secrets))
}

/// The value of a check that passed; a failed one's error joins `errors`.
fn noted<T>(errors: &mut Vec<ApiError>, checked: Result<T, ApiError>) -> Option<T> {
    checked.map_err(|e| errors.push(e)).ok()
}

/// The auth type must be the provider's; fields split into plain and secret by its
/// description; unknown fields are refused. Returns the type id, the plain fields and the
/// secrets, unless the type is unknown; each problem joins `errors`.
#[allow(clippy::type_complexity)]
fn check_auth(
    errors: &mut Vec<ApiError>,
    input: &SourceInput,
    info: &ProviderInfo,
    existing: Option<(&SourceRecord, &BTreeMap<String, String>)>,
) -> Option<(String, BTreeMap<String, String>, BTreeMap<String, String>)> {
    let Some(auth) = info.auth_type(&input.auth.kind) else {
        let known: Vec<&str> = info.auth_types.iter().map(|a| a.id.as_str()).collect();
        errors.push(ApiError::invalid(
            "auth.type",
            format!(
                "{} does not support auth type {:?}; use one of {known:?}",
                info.name, input.auth.kind
            ),
        ));
        return None;
    };
    for name in input.auth.fields.keys() {
        if !auth.fields.iter().any(|f| &f.name == name) {
            errors.push(ApiError::invalid(
                format!("auth.fields.{name}"),
                format!("auth type {:?} has no field {name:?}", auth.id),
            ));
        }
    }
    let keep_secrets = existing
        .filter(|(old, _)| old.provider == input.provider && old.auth_type == auth.id)
        .map(|(_, secrets)| secrets);
    let mut fields = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    for field in &auth.fields {
        let given = input
            .auth
            .fields
            .get(&field.name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty());
        let value = match (given, field.secret) {
            (Some(v), _) => Some(v.to_string()),
            (None, true) => keep_secrets.and_then(|s| s.get(&field.name)).cloned(),
            (None, false) => None,
        };
        let at = format!("auth.fields.{}", field.name);
        match value {
            Some(v) if v.len() > 8192 => errors.push(ApiError::invalid(at, "at most 8192 bytes")),
            Some(v) if field.secret => {
                secrets.insert(field.name.clone(), v);
            }
            Some(v) => {
                fields.insert(field.name.clone(), v);
            }
            None if field.required => {
                errors.push(ApiError::invalid(
                    at,
                    format!("{} is required", field.label),
                ));
            }
            None => {}
        }
    }
    Some((auth.id.clone(), fields, secrets))
}

/// The provider settings to store: known names only, URL settings absolute, required ones
/// present, blank values none; each problem joins `errors`.
fn check_settings(
    errors: &mut Vec<ApiError>,
    input: &SourceInput,
    info: &ProviderInfo,
) -> BTreeMap<String, String> {
    let mut settings = BTreeMap::new();
    for (name, value) in &input.settings {
        let at = format!("settings.{name}");
        let Some(setting) = info.settings.iter().find(|s| &s.name == name) else {
            errors.push(ApiError::invalid(
                at,
                format!("{} has no setting {name:?}", info.name),
            ));
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        if value.len() > 4096 {
            errors.push(ApiError::invalid(at, "at most 4096 bytes"));
            continue;
        }
        let value = match setting.kind {
            SettingKind::Url => noted(
                errors,
                check_url_length(&at, value).and_then(|()| check_url(&at, value)),
            ),
            SettingKind::Text => Some(value.to_string()),
        };
        if let Some(value) = value {
            settings.insert(name.clone(), value);
        }
    }
    for missing in info.settings.iter().filter(|s| {
        s.required
            && input
                .settings
                .get(&s.name)
                .is_none_or(|v| v.trim().is_empty())
    }) {
        errors.push(ApiError::invalid(
            format!("settings.{}", missing.name),
            format!("{} is required", missing.label),
        ));
    }
    settings
}

/// The network settings to store: a CA bundle of valid certificates, a proxy URL without
/// credentials; blank values are none.
fn check_network(input: Option<&NetworkInput>) -> Result<NetworkSettings, ApiError> {
    let Some(input) = input else {
        return Ok(NetworkSettings::default());
    };
    let blank_is_none = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let ca_bundle_pem = blank_is_none(&input.ca_bundle_pem);
    if let Some(pem) = &ca_bundle_pem {
        crate::plugin::egress::parse_ca_bundle(pem)
            .map_err(|e| ApiError::invalid("network.ca_bundle_pem", e))?;
    }
    let proxy_url = blank_is_none(&input.proxy_url);
    if let Some(proxy) = &proxy_url {
        check_url_length("network.proxy_url", proxy)?;
        let url = url::Url::parse(proxy).map_err(|e| {
            ApiError::invalid(
                "network.proxy_url",
                format!("{proxy:?} is not an absolute URL ({e})"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ApiError::invalid(
                "network.proxy_url",
                "use an http:// or https:// proxy URL, e.g. http://proxy.example.com:3128",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ApiError::invalid(
                "network.proxy_url",
                "a proxy URL with credentials is not supported; remove user and password",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ApiError::invalid(
                "network.proxy_url",
                "a proxy URL has no query (?...) or fragment (#...)",
            ));
        }
    }
    Ok(NetworkSettings {
        ca_bundle_pem,
        proxy_url,
    })
}

fn check_base_url(text: &str) -> Result<String, ApiError> {
    let trimmed = text.trim().trim_end_matches('/');
    check_url_length("base_url", trimmed)?;
    let url = check_url("base_url", trimmed)?;
    let parsed = url::Url::parse(&url).expect("checked");
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ApiError::invalid(
            "base_url",
            "a base URL has no query (?...) or fragment (#...)",
        ));
    }
    Ok(url)
}

/// An absolute http(s) URL without credentials in it, as given (trimmed).
fn check_url(field: &str, text: &str) -> Result<String, ApiError> {
    let url = url::Url::parse(text).map_err(|e| {
        ApiError::invalid(
            field,
            format!("{text:?} is not an absolute URL ({e}); e.g. https://tracker.example.com"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ApiError::invalid(
            field,
            "use an http:// or https:// URL, e.g. https://tracker.example.com",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::invalid(
            field,
            "put credentials in the auth fields, not in the URL",
        ));
    }
    Ok(text.to_string())
}

/// At most [`MAX_URL_BYTES`].
fn check_url_length(field: &str, text: &str) -> Result<(), ApiError> {
    if text.len() > MAX_URL_BYTES {
        return Err(ApiError::invalid(
            field,
            format!("at most {MAX_URL_BYTES} bytes; this is {}", text.len()),
        ));
    }
    Ok(())
}

/// A template may use only `allowed` placeholders and must render to an absolute http(s) URL.
fn check_template(
    field: &str,
    template: &str,
    base_url: &str,
    allowed: &[&str],
) -> Result<(), ApiError> {
    check_url_length(field, template)?;
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| ApiError::invalid(field, "a '{' is not closed"))?;
        let name = &rest[open + 1..open + close];
        if !allowed.contains(&name) {
            let list: Vec<String> = allowed.iter().map(|a| format!("{{{a}}}")).collect();
            return Err(ApiError::invalid(
                field,
                format!("unknown placeholder {{{name}}}; use {}", list.join(" and ")),
            ));
        }
        rest = &rest[open + close + 1..];
    }
    let rendered = template
        .replace("{baseUrl}", base_url)
        .replace("{key}", "KEY-1");
    check_url(field, &rendered).map_err(|_| {
        ApiError::invalid(
            field,
            format!("the template must yield an absolute http(s) URL; it yields {rendered:?}"),
        )
    })?;
    Ok(())
}

/// A key pattern compiled by the rules Save and link creation use.
fn check_key_pattern(pattern: &str) -> Result<regex::Regex, ApiError> {
    if pattern.chars().count() > MAX_KEY_PATTERN {
        return Err(ApiError::invalid(
            "key_pattern",
            format!("at most {MAX_KEY_PATTERN} characters"),
        ));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            ApiError::invalid(
                "key_pattern",
                format!(
                    "not a valid regular expression ({}); e.g. ^[A-Z]+-[0-9]+$",
                    e.to_string().lines().last().unwrap_or("").trim()
                ),
            )
        })
}

/// Body of `POST /key-patterns/check`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternCheck {
    /// The pattern as the admin typed it.
    pub pattern: String,
    /// A sample key to match, if any.
    #[serde(default)]
    pub key: Option<String>,
}

/// `POST /key-patterns/check`: whether a key pattern is valid by the server's own rules (the
/// ones Save applies) and, given a sample key, whether it matches; the editor's live check asks
/// here so that it never disagrees with Save (a browser's `RegExp` accepts look-around, which
/// the server refuses).
pub async fn check_pattern(
    caller: Caller,
    Body(input): Body<PatternCheck>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_admin()?;
    Ok(Json(match check_key_pattern(input.pattern.trim()) {
        Ok(re) => json!({"valid": true, "matches": input.key.map(|k| re.is_match(&k))}),
        Err(e) => json!({"valid": false, "message": e.message}),
    }))
}
