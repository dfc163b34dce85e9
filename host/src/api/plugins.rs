//! `/plugins` (admin only): the plugin registry. List and inspect loaded plugins (version,
//! contract, digest, origin, call and error counts), upload a new version (`PUT`, raw
//! `application/wasm`; compiled and checked before an atomic swap, saved to the plugins
//! directory; refused while stored sources do not fit it, unless `?force=true`: see
//! [`crate::compat`]), and remove one (`DELETE`, refused while sources use it unless `?force=true`).
//! Every change, including those the directory watcher picks up, is logged and audited
//! (`plugin.uploaded`, `plugin.swapped`, `plugin.removed`). An upload's minisign signature
//! rides in the [`SIGNATURE_HEADER`] (see [`crate::plugin_registry::signatures`]).

use std::time::{Duration, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::ApiError;
use super::extract::{Caller, Path, Query, has_media_type};
use crate::app::AppState;
use crate::audit::audit;
use crate::compat;
use crate::paging::{self, Listed, PageQuery};
use crate::plugin::registry::{FileProblem, Swap, UploadError, watch_dir};
use crate::plugin::{
    CallCounts, CapabilitySupport, CompileCounts, LoadedPlugin, ProviderInfo, SUPPORTED_CONTRACTS,
    Tier,
};
use crate::plugin_registry::admission::{self, Admitted, Job, JobState};
use crate::plugin_registry::signatures::{SignatureError, Signer};
use crate::plugin_registry::{self, AdmissionError};
use crate::store::records::{Millis, SourceRecord};
use crate::store::{Read, SOURCES};

/// The media type of an upload.
pub const WASM: &str = "application/wasm";

/// The header carrying an upload's signature: the base64 of its `.minisig` file.
pub const SIGNATURE_HEADER: &str = "x-plugin-signature";

/// One loaded plugin version as the registry listing shows it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PluginView {
    /// Provider id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The plugin's own version (from `describe`).
    pub version: String,
    /// The contract version it was built against, e.g. `1.0.0`.
    pub contract: String,
    /// The capabilities it serves, and why not the others.
    pub capabilities: CapabilitySupport,
    /// sha-256 of the `.wasm`, hex.
    pub digest: String,
    /// Size of the `.wasm` in bytes.
    pub size_bytes: usize,
    /// When this version was loaded (ms since the Unix epoch).
    pub loaded_at: Millis,
    /// Where it came from: a file path, or `upload`.
    pub origin: String,
    /// The file in the plugins directory holding it, if any.
    pub file: Option<String>,
    /// True when its compiled code came from the compile cache.
    pub from_cache: bool,
    /// Milliseconds spent compiling (or loading from the cache), linking and describing it.
    pub prepare_ms: u64,
    /// Which compiler made the code calls run: `baseline` (a large plugin, serving at once
    /// while its optimised code compiles in the background) or `optimised`.
    pub tier: Tier,
    /// Why the optimised compile of a baseline version failed, if it did.
    pub optimise_error: Option<String>,
    /// Calls into this version and how they ended.
    pub calls: CallCounts,
    /// How many sources use this provider.
    pub sources: usize,
    /// Who signed this version (`key_name`, `key_id`, `trusted_comment`); null: unsigned.
    pub signed_by: Option<Signer>,
}

/// `GET /plugins`.
#[derive(Serialize, JsonSchema)]
pub struct PluginList {
    /// Contract versions this host runs, e.g. `["1.x"]`.
    pub supported_contracts: &'static [&'static str],
    /// Compilations and compile-cache hits since the host started.
    pub compile: CompileCounts,
    /// Loaded plugins, by id: the array, or with `limit`, `page` or `cursor` one page of it
    /// (see [`crate::paging`]).
    pub plugins: Listed<PluginView>,
    /// Files of the plugins directory that were refused and do not serve, with the reason.
    pub problems: Vec<FileProblem>,
    /// Whether plugins must be signed, and by which keys.
    pub signing: SigningView,
}

/// The operator's signing policy, as the listing shows it.
#[derive(Serialize, JsonSchema)]
pub struct SigningView {
    /// True when every plugin must carry a signature by a trusted key.
    pub required: bool,
    /// The trusted vendor keys.
    pub trusted_keys: Vec<TrustedKeyView>,
}

/// A trusted vendor key, as the listing shows it (fields in the order they were always
/// written).
#[derive(Serialize, JsonSchema)]
pub struct TrustedKeyView {
    /// The minisign key id (16 hex digits).
    pub key_id: String,
    /// The name the operator gave the key.
    pub name: String,
}

/// `GET /plugins/{id}`: the listing entry and the full `describe` answer.
#[derive(Serialize, JsonSchema)]
pub struct PluginDetail {
    /// The listing entry.
    #[serde(flatten)]
    pub plugin: PluginView,
    /// What `describe` said.
    pub describe: ProviderInfo,
}

/// What an upload did.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct UploadOutcome {
    /// False when this exact binary was already serving (nothing changed).
    pub changed: bool,
    /// The version now serving.
    pub plugin: PluginView,
    /// The version it replaced, or null for a new provider.
    pub previous: Option<PreviousVersion>,
}

/// The version an upload replaced.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PreviousVersion {
    /// sha-256 of its `.wasm`, hex.
    pub digest: String,
    /// The plugin's own version.
    pub version: String,
}

/// Query of `PUT /plugins/{id}`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Swap in a version that stored sources do not fit (see [`crate::compat`]); they are
    /// then marked `plugin_status: "incompatible"` and not synced until fixed.
    #[serde(default)]
    pub force: bool,
    /// Answer when the admission job ends (201/200 or its refusal) instead of `202` at once.
    #[serde(default)]
    pub wait: bool,
}

/// Query of `DELETE /plugins/{id}`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    /// Remove even though sources use the provider (they then show `plugin_status: missing`).
    #[serde(default)]
    pub force: bool,
}

/// `GET /plugins` (admin).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> Result<Json<PluginList>, ApiError> {
    caller.require_admin()?;
    let page = query.check()?;
    let sources = sources_by_provider(&state).await?;
    let plugins = state
        .plugins
        .list()
        .iter()
        .map(|p| view(p, count(&sources, &p.info.id)))
        .collect();
    let plugins = paging::cut(plugins, page, |p: &PluginView| vec![p.id.clone()]);
    let signing = state.plugins.signing();
    Ok(Json(PluginList {
        supported_contracts: SUPPORTED_CONTRACTS,
        compile: state.plugins.compile_counts(),
        plugins,
        problems: state.plugins.file_problems(),
        signing: SigningView {
            required: signing.required(),
            trusted_keys: (signing.keys().iter())
                .map(|k| TrustedKeyView {
                    key_id: k.id().to_string(),
                    name: k.name().to_string(),
                })
                .collect(),
        },
    }))
}

/// `GET /plugins/{id}` (admin).
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PluginDetail>, ApiError> {
    caller.require_admin()?;
    let plugin = loaded(&state, &id)?;
    let sources = sources_by_provider(&state).await?;
    Ok(Json(PluginDetail {
        plugin: view(&plugin, count(&sources, &id)),
        describe: plugin.info.clone(),
    }))
}

/// `PUT /plugins/{id}` (admin): uploads a plugin binary (`Content-Type: application/wasm`, at
/// most the host's plugin size limit), with its minisign signature, if it has one, in the
/// [`SIGNATURE_HEADER`]. A body refused as such (media type, size, empty, an unreadable
/// signature header) is a 4xx at once; otherwise `202` with an admission job (see
/// [`admission`]), or, with
/// `?wait=true`, the job's end: 201 for a new provider, 200 for a replacement, 4xx (and the
/// current version keeps serving) when the binary is refused.
pub async fn upload(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<String>,
    query: Result<Query<UploadQuery>, ApiError>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let limit = state.plugins.size_limits().for_plugin(&id);
    let body = body.into_data_stream();
    // Every refusal before the body is read still reads (and drops) it, within bounds, so
    // the client gets the answer instead of a connection reset mid-upload.
    let caller = match caller.and_then(|c| c.require_admin().map(|()| c)) {
        Ok(c) => c,
        Err(e) => return Err(drain(body, limit, e).await),
    };
    let received = match (query, signature_header(&headers)) {
        (Ok(Query(query)), Ok(signature)) => receive(&headers, body, limit)
            .await
            .map(|b| (query, b, signature)),
        (Err(e), _) | (_, Err(e)) => Err(drain(body, limit, e).await),
    };
    let (query, bytes, signature) = match received {
        Ok(received) => received,
        Err(e) => {
            audit_refusal(&state, &caller.who(), &id, &e).await;
            return Err(e);
        }
    };
    let (job, task) = admission::start(
        &state,
        caller.who(),
        &id,
        bytes,
        signature,
        query.force,
        refusal_details,
    );
    if query.wait {
        let (status, outcome) = match task.await.map_err(ApiError::internal)? {
            Ok(swap) => accepted(&state, &id, &swap).await?,
            Err(e) => return Err(refusal(&id, &e)),
        };
        return Ok((status, Json(outcome)).into_response());
    }
    let location = format!("/api/v1/plugins/jobs/{}", job.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(job_view(&state, job).await?),
    )
        .into_response())
}

/// `GET /plugins/jobs/{id}` (admin): an admission job (see [`admission`]).
pub async fn job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    caller.require_admin()?;
    let job = state.admissions.get(&id).ok_or_else(|| {
        ApiError::not_found(format!(
            "no admission job {id:?} (the latest {} are kept)",
            admission::KEPT
        ))
    })?;
    Ok(Json(job_view(&state, job).await?))
}

/// One admission job, as `GET /plugins/jobs/{id}` shows it (named `Job` in the document).
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[schemars(rename = "Job")]
pub struct JobView {
    /// The job's id.
    pub id: String,
    /// The provider id the binary was uploaded to.
    pub plugin: String,
    /// `queued`, `compiling`, `checking`, `active` or `failed`.
    pub state: JobState,
    /// Whether the upload was forced past stored sources it breaks.
    pub forced: bool,
    /// Size of the uploaded binary, in bytes.
    pub size_bytes: usize,
    /// When it was uploaded (ms since the Unix epoch).
    pub created_at: Millis,
    /// When it finished, if it has.
    pub finished_at: Option<Millis>,
    /// When `active`: what the upload did, as a waiting upload answers it (once that version
    /// is unloaded, its `plugin` is only `{id, version, digest, loaded: false}`).
    pub outcome: Option<serde_json::Value>,
    /// When `failed`: `{status, error, errors}`, the answer a waiting upload gets.
    pub error: Option<serde_json::Value>,
}

async fn job_view(state: &AppState, job: Job) -> Result<JobView, ApiError> {
    let (mut outcome, mut error) = (None, None);
    match &job.ended {
        Some(Ok(admitted)) => outcome = Some(admitted_outcome(state, &job.plugin, admitted).await?),
        Some(Err(e)) => {
            let e = refusal(&job.plugin, e);
            let mut body = e.body();
            body["status"] = e.status.as_u16().into();
            error = Some(body);
        }
        None => {}
    }
    Ok(JobView {
        id: job.id,
        plugin: job.plugin,
        state: job.state,
        forced: job.forced,
        size_bytes: job.size_bytes,
        created_at: job.created_at,
        finished_at: job.finished_at,
        outcome,
        error,
    })
}

/// Audits a refused upload as `plugin.rejected`, with its status and reason: every admission
/// outcome is audited (the accepted ones by [`plugin_registry::record`]).
async fn audit_refusal(state: &AppState, who: &str, id: &str, e: &ApiError) {
    admission::audit_refusal(state, who, id, audit_details(e)).await;
}

fn audit_details(e: &ApiError) -> serde_json::Value {
    json!({"status": e.status.as_u16(), "code": e.code, "reason": e.message})
}

/// The audit details of an admission's refusal: the status and message its answer has.
fn refusal_details(id: &str, e: &AdmissionError) -> serde_json::Value {
    audit_details(&refusal(id, e))
}

/// The upload's request headers, for the OpenAPI document: the [`SIGNATURE_HEADER`].
pub fn upload_headers() -> Vec<serde_json::Value> {
    vec![json!({
        "name": "X-Plugin-Signature",
        "in": "header",
        "required": false,
        "description": "The plugin's minisign signature: the base64 of its .minisig file (`base64 -w0 plugin.wasm.minisig`); required when the operator requires signed plugins. Missing (when required) or unreadable is a 400, by an untrusted key or not matching the binary a 422",
        "schema": {"type": "string"},
    })]
}

/// The text of the `.minisig` whose base64 the [`SIGNATURE_HEADER`] carries, if it is there.
fn signature_header(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    use base64::Engine as _;
    let Some(value) = headers.get(SIGNATURE_HEADER) else {
        return Ok(None);
    };
    let malformed = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "signature-malformed",
            "X-Plugin-Signature must be the base64 of the plugin's .minisig file, e.g. \
             $(base64 -w0 plugin.wasm.minisig)",
        )
        .at("X-Plugin-Signature")
    };
    let bytes = value
        .to_str()
        .ok()
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
        .ok_or_else(malformed)?;
    String::from_utf8(bytes).map(Some).map_err(|_| malformed())
}

/// Reads an upload's body: the media type must be `application/wasm`, the size within `limit`,
/// the body not empty.
async fn receive(
    headers: &HeaderMap,
    mut body: axum::body::BodyDataStream,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    if !has_media_type(headers, &[WASM]) {
        let e = ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!("send the plugin's .wasm as the raw body with Content-Type: {WASM}"),
        );
        return Err(drain(body, limit, e).await);
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!(
                "the plugin is larger than the limit of {limit} bytes ({})",
                crate::plugin::PLUGIN_SIZE_SETTING
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(drain(body, limit, too_large()).await);
    }
    let mut bytes = bytes::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| ApiError::invalid("body", "the upload was interrupted"))?;
        if bytes.len() + chunk.len() > limit {
            return Err(drain(body, limit, too_large()).await);
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "the body is empty; send the .wasm",
        ));
    }
    Ok(bytes.freeze())
}

/// A finished job's outcome: as the waiting upload was answered, with the version as it is
/// now (its tier, its calls) while it is loaded.
async fn admitted_outcome(
    state: &AppState,
    id: &str,
    admitted: &Admitted,
) -> Result<serde_json::Value, ApiError> {
    let plugin = match admitted.plugin.upgrade() {
        Some(plugin) => {
            let sources = sources_by_provider(state).await?;
            serde_json::to_value(view(&plugin, count(&sources, id))).map_err(ApiError::internal)?
        }
        None => {
            json!({"id": id, "version": admitted.version, "digest": admitted.digest, "loaded": false})
        }
    };
    let previous = (admitted.previous.as_ref())
        .map(|(version, digest)| json!({"version": version, "digest": digest}));
    Ok(json!({"changed": admitted.changed, "plugin": plugin, "previous": previous}))
}

/// The answer to an accepted upload.
async fn accepted(
    state: &AppState,
    id: &str,
    swap: &Swap,
) -> Result<(StatusCode, UploadOutcome), ApiError> {
    let sources = sources_by_provider(state).await?;
    let status = if swap.changed && swap.previous.is_none() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        UploadOutcome {
            changed: swap.changed,
            previous: swap.previous.as_ref().map(|p| PreviousVersion {
                version: p.info.version.clone(),
                digest: p.digest.clone(),
            }),
            plugin: view(&swap.plugin, count(&sources, id)),
        },
    ))
}

/// The answer to a refused upload.
fn refusal(id: &str, e: &AdmissionError) -> ApiError {
    match e {
        AdmissionError::Upload(UploadError::Plugin(e)) => ApiError::from(e),
        AdmissionError::Upload(e @ UploadError::IdMismatch { .. }) => {
            ApiError::invalid("id", e.to_string())
        }
        AdmissionError::Upload(UploadError::Incompatible(affected)) => incompatible(id, affected),
        AdmissionError::Upload(UploadError::Signature(e)) => signature_refusal(e),
        AdmissionError::Upload(e @ UploadError::Save { .. }) => ApiError::internal(e),
        AdmissionError::Store(e) => ApiError::internal(e),
    }
}

/// The answer to an upload whose signature was refused: 400 when it is missing or unreadable,
/// 422 when it is by an untrusted key or does not match; the message says what to do.
fn signature_refusal(e: &SignatureError) -> ApiError {
    let (status, message) = match e {
        SignatureError::Missing => (
            StatusCode::BAD_REQUEST,
            format!(
                "{e}; send the base64 of its .minisig in the X-Plugin-Signature header \
                 (sign it with `minisign -S -m PLUGIN.wasm`)"
            ),
        ),
        SignatureError::Malformed(_) => (StatusCode::BAD_REQUEST, e.to_string()),
        _ => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    ApiError::new(status, e.code(), message).at("X-Plugin-Signature")
}

/// `DELETE /plugins/{id}[?force=true]` (admin): unloads the plugin and deletes its file.
/// Refused (409) while sources use the provider, unless forced.
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<RemoveQuery>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let plugin = loaded(&state, &id)?;
    let using = count(&sources_by_provider(&state).await?, &id);
    if using > 0 && !query.force {
        return Err(ApiError::conflict(
            None,
            format!(
                "{using} source(s) use provider {id:?}; delete them first, or remove with \
                 ?force=true (they stay, marked plugin_status \"missing\", until a plugin \
                 for {id:?} is loaded again)"
            ),
        ));
    }
    let removed = state
        .plugins
        .unload(&id, &state.plugins_dir)
        .await
        .map_err(ApiError::internal)?;
    let Some(removed) = removed else {
        return Err(ApiError::not_found(format!("no plugin {id:?} is loaded")));
    };
    crate::replicas::publish_removal(&state, &removed).await;
    let (who, target) = (caller.who(), id.clone());
    let details = json!({
        "version": plugin.info.version,
        "digest": plugin.digest,
        "sources": using,
        "forced": query.force,
    });
    state
        .store
        .write(move |w| audit(w, &who, "plugin.removed", &target, details))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts the plugins-directory watcher of a running service: a new or changed `*.wasm` in
/// `state.plugins_dir` is compiled, checked and swapped in (a bad one is logged and ignored),
/// and audited as done by the `plugins-directory` watcher. Call after the initial load.
pub fn spawn_watcher(state: &AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    let audit_state = state.clone();
    watch_dir(
        state.plugins.clone(),
        state.plugins_dir.clone(),
        every,
        move |swap| {
            let state = audit_state.clone();
            async move {
                let who = "plugins-directory watcher";
                if let Err(e) = plugin_registry::record(&state, who, "file", &swap).await {
                    tracing::error!(error = %e, "could not audit a plugin swap");
                }
            }
        },
    )
}

/// The 409 of an upload that stored sources do not fit: the first error says what happened and
/// how to force it; one more error per source, its field `sources.<id>`, says which and why.
fn incompatible(id: &str, affected: &[compat::Affected]) -> ApiError {
    let first = ApiError::new(
        StatusCode::CONFLICT,
        compat::CODE,
        format!(
            "{} source(s) of provider {id:?} do not fit this version; edit them first, or upload \
             with ?force=true (they are then marked plugin_status \"incompatible\" and not \
             synced until they fit)",
            affected.len()
        ),
    );
    let each = affected.iter().map(|a| {
        ApiError::new(
            StatusCode::CONFLICT,
            compat::CODE,
            format!("{} ({}): {}", a.name, a.id, a.reason),
        )
        .at(format!("sources.{}", a.id))
    });
    ApiError::all(std::iter::once(first).chain(each).collect())
        .unwrap_or_else(|| ApiError::internal("no error"))
}

/// Reads and drops what is left of a refused upload (at most twice the size limit, for at
/// most 5 s: "lingering close"), then answers `error`.
async fn drain(mut body: axum::body::BodyDataStream, limit: usize, error: ApiError) -> ApiError {
    let cap = limit.saturating_mul(2);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let mut read = 0usize;
        while let Some(Ok(chunk)) = body.next().await {
            read += chunk.len();
            if read > cap {
                break;
            }
        }
    })
    .await;
    error
}

fn loaded(state: &AppState, id: &str) -> Result<std::sync::Arc<LoadedPlugin>, ApiError> {
    state
        .plugins
        .get(id)
        .map_err(|_| ApiError::not_found(format!("no plugin {id:?} is loaded")))
}

async fn sources_by_provider(state: &AppState) -> Result<Vec<String>, ApiError> {
    let all: Vec<(String, SourceRecord)> = state.store.read(|r| r.all(SOURCES)).await?;
    Ok(all.into_iter().map(|(_, s)| s.provider).collect())
}

fn count(providers: &[String], id: &str) -> usize {
    providers.iter().filter(|p| *p == id).count()
}

fn view(p: &LoadedPlugin, sources: usize) -> PluginView {
    PluginView {
        id: p.info.id.clone(),
        name: p.info.name.clone(),
        version: p.info.version.clone(),
        contract: p.contract.clone(),
        capabilities: p.capabilities(),
        digest: p.digest.clone(),
        size_bytes: p.size_bytes,
        loaded_at: p
            .loaded_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        origin: p.origin.clone(),
        file: p.file.as_ref().map(|f| f.display().to_string()),
        from_cache: p.from_cache,
        prepare_ms: p.prepare_time.as_millis() as u64,
        tier: p.tier(),
        optimise_error: p.optimise_error().map(str::to_string),
        calls: p.stats.counts(),
        sources,
        signed_by: p.signer.clone(),
    }
}
