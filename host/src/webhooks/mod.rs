//! "Process webhooks": the tracker's events, received on a per-source URL
//! (`/hooks/{source}/{token}`), checked by the scheme the source's plugin declares with the
//! source's webhook secret before anything reads them (`verify`), answered at once and
//! processed by a bounded queue (`process`), with per-source counters for health.
//!
//! Answers (`../shared/providers-events.md` section 7: GitLab disables a hook after 4xx, Azure
//! DevOps puts one on probation after 5xx and disables it on 410, Jira retries 408/409/425/429
//! and 5xx, Linear counts anything but 200 as failed): 200 for an event taken (`accepted`), and
//! for one taken no further on purpose (a repeated delivery, a disabled source, "Process
//! webhooks" off, a source that no longer fits its plugin), so a correctly configured hook stays
//! alive; 4xx only for what the tracker must show its admin: 401 when the event is not proven
//! (a wrong signature or token, or a signed time missing or outside the scheme's replay
//! window), 404 unknown URL or webhooks not set up, 408 a body not sent in time, 413 too large,
//! 415 a body that is not JSON (nor GitHub's form-encoded `payload`); 503 with `Retry-After`
//! for our own transient trouble (queue full, plugin being replaced), which every tracker
//! retries. Never 410 or 500.

pub mod deliveries;
pub mod process;
pub mod settings;
pub mod verify;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use schemars::JsonSchema;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::app::AppState;
use crate::field::FieldError;
use crate::plugin::PluginError;
use crate::plugin::model::EventScheme;
use crate::sources::SourceError;
use crate::store::records::{Millis, SourceRecord, now};
use crate::store::{Read, SECRETS, SOURCES, StoreError};
use deliveries::Deliveries;
use verify::Rejection;

/// The largest body accepted, in bytes; a larger one is refused (413) before it is read whole.
/// Issue events are a few kilobytes; trackers cap theirs at 25 MB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Events waiting to be processed, at most; past it the tracker is told to retry (503).
pub const QUEUE_CAPACITY: usize = 1024;

/// Events processed at once.
pub const WORKERS: usize = 4;

/// The seconds a tracker is asked to wait before retrying a 503.
pub const RETRY_AFTER_SECS: u32 = 5;

/// Why a source's webhooks could not be set up, or an event not processed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// What the admin gave is wrong (the scheme, the secret).
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The source's plugin (this provider's) is not loaded.
    #[error("the {0} plugin is not loaded")]
    PluginMissing(String),
    /// The source's plugin cannot receive webhooks: why.
    #[error("Process webhooks is {0}")]
    Unsupported(String),
    /// The source was changed by someone else between reading it and saving the set-up.
    #[error("the source changed meanwhile; reload and try again")]
    ChangedMeanwhile,
    /// The source could not be read (or does not exist).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The plugin failed, or refused the event.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One verified event waiting to be processed.
pub struct Job {
    /// The source it came for.
    pub source_id: String,
    /// The id of the scheme that verified it.
    pub scheme: String,
    /// Headers for the plugin (without the proof).
    pub headers: Vec<(String, String)>,
    /// The event's JSON body.
    pub body: Vec<u8>,
    /// When it arrived.
    pub received_at: Millis,
    /// Its delivery id, claimed when it was taken, released if processing fails (so that the
    /// tracker's redelivery is processed rather than dropped as a repeat).
    pub delivery_id: Option<String>,
}

/// The receiver's state: delivery ids seen, the queue and the per-source counters.
pub struct Webhooks {
    deliveries: Deliveries,
    sender: mpsc::Sender<Job>,
    receiver: Mutex<Option<mpsc::Receiver<Job>>>,
    health: Mutex<HashMap<String, WebhookHealth>>,
}

impl Default for Webhooks {
    fn default() -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        Webhooks {
            deliveries: Deliveries::default(),
            sender,
            receiver: Mutex::new(Some(receiver)),
            health: Mutex::default(),
        }
    }
}

/// A source's webhook counters since the service started.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct WebhookHealth {
    /// Requests that reached the source's URL.
    pub received: u64,
    /// Events verified and queued.
    pub accepted: u64,
    /// Requests refused or dropped, by reason (`signature`, `replay`, `duplicate`,
    /// `too-large`, `source-disabled`, `capability-off`, `plugin-incompatible`, `not-set-up`,
    /// `unsupported`,
    /// `unknown-url`, `plugin-missing`, `queue-full`, `unavailable`).
    pub rejected: BTreeMap<&'static str, u64>,
    /// When an event was last accepted.
    pub last_event_at: Option<Millis>,
    /// The last refusal.
    pub last_rejection: Option<LastRejection>,
    /// Events the plugin mapped and the links were updated for.
    pub processed: u64,
    /// Events whose processing failed (the plugin refused the event, the store failed).
    pub failed: u64,
    /// The last processing failure.
    pub last_failure: Option<LastRejection>,
}

/// A refusal or failure: why, and when.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct LastRejection {
    /// The reason code, or the error's code.
    pub reason: String,
    /// A person's sentence (never the secret or the body).
    pub message: String,
    /// When.
    pub at: Millis,
}

/// The receiver's answer to a tracker.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `accepted`, `duplicate`, `ignored`, or the error code.
    pub code: &'static str,
    /// What the tracker's delivery log shows the admin.
    pub message: String,
}

impl Answer {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Answer {
        Answer {
            status,
            code,
            message: message.into(),
        }
    }

    /// True for a 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A source whose URL was matched, with what checking its events needs.
pub struct Admitted {
    /// Source id.
    pub source_id: String,
    /// The source as stored now.
    pub record: SourceRecord,
    /// The scheme chosen for it.
    pub scheme: EventScheme,
    secret: String,
}

impl Webhooks {
    fn count(&self, source_id: &str, f: impl FnOnce(&mut WebhookHealth)) {
        let mut all = self.health.lock().unwrap_or_else(|e| e.into_inner());
        f(all.entry(source_id.to_string()).or_default());
    }

    /// Counts a refusal of an event for `source_id`.
    pub fn reject(&self, source_id: &str, answer: &Answer) {
        tracing::info!(source = %source_id, reason = answer.code, status = answer.status, "webhook event refused");
        self.count(source_id, |h| {
            *h.rejected.entry(answer.code).or_default() += 1;
            h.last_rejection = Some(LastRejection {
                reason: answer.code.to_string(),
                message: answer.message.clone(),
                at: now(),
            });
        });
    }

    /// Counts the outcome of processing one event.
    pub fn processed(&self, source_id: &str, failure: Option<(String, String)>) {
        self.count(source_id, |h| match failure {
            None => h.processed += 1,
            Some((reason, message)) => {
                h.failed += 1;
                h.last_failure = Some(LastRejection {
                    reason,
                    message,
                    at: now(),
                });
            }
        });
    }

    /// The webhook counters of a source.
    pub fn health(&self, source_id: &str) -> WebhookHealth {
        let all = self.health.lock().unwrap_or_else(|e| e.into_inner());
        all.get(source_id).cloned().unwrap_or_default()
    }

    /// Forgets a deleted source's counters.
    pub fn forget(&self, source_id: &str) {
        let mut all = self.health.lock().unwrap_or_else(|e| e.into_inner());
        all.remove(source_id);
    }

    /// Starts the workers on the first event (they need the whole state).
    fn ensure_workers(&self, state: &AppState) {
        let taken = self
            .receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(receiver) = taken {
            tokio::spawn(process::run(state.clone(), receiver));
        }
    }
}

/// Matches `/hooks/{source_id}/{token}` to a source set up for webhooks whose plugin can
/// verify them. Every refusal is counted on the source when there is one.
pub async fn admit(state: &AppState, source_id: &str, token: &str) -> Result<Admitted, Answer> {
    let key = source_id.to_string();
    let (record, sealed): (Option<SourceRecord>, Option<Vec<u8>>) = state
        .store
        .read(move |r| {
            Ok::<_, crate::store::StoreError>((r.get(SOURCES, &key)?, r.get(SECRETS, &key)?))
        })
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "webhook: the store does not answer");
            Answer::new(
                503,
                "unavailable",
                "the service cannot read its store; retry later",
            )
        })?;
    let unknown = || {
        Answer::new(
            404,
            "unknown-url",
            "no webhook at this URL: copy the URL from the source's editor again",
        )
    };
    let Some(record) = record else {
        return Err(unknown());
    };
    let refuse = |answer: Answer| {
        state.webhooks.reject(source_id, &answer);
        answer
    };
    // Without the URL's token nothing tells whether the source exists or is set up.
    let Some(settings) = record
        .webhook
        .as_ref()
        .filter(|w| verify::token_matches(&w.path_token, token))
    else {
        return Err(refuse(unknown()));
    };
    let secrets = match sealed.map(|sealed| state.key.open(source_id, &sealed)) {
        None => Default::default(),
        Some(Ok(secrets)) => secrets,
        Some(Err(e)) => {
            tracing::error!(source = %source_id, error = %e, "webhook: the source's secrets do not open");
            return Err(refuse(Answer::new(
                503,
                "unavailable",
                "the service cannot open this source's secrets; retry later",
            )));
        }
    };
    let Some(secret) = secrets.get(settings::WEBHOOK_SECRET).cloned() else {
        return Err(refuse(Answer::new(
            404,
            "not-set-up",
            "this source has no webhook secret: set one in the source's editor",
        )));
    };
    let plugin = match state.plugins.get(&record.provider) {
        Ok(plugin) => plugin,
        Err(_) => {
            return Err(refuse(Answer::new(
                503,
                "plugin-missing",
                format!(
                    "the {} plugin is not loaded right now; retry later",
                    record.provider
                ),
            )));
        }
    };
    let scheme = plugin
        .info
        .events
        .iter()
        .find(|s| s.id == settings.scheme)
        .cloned();
    let Some(scheme) = scheme else {
        let why = plugin
            .unsupported(crate::plugin::Capability::ProcessWebhooks)
            .unwrap_or_else(|| {
                format!(
                    "the plugin has no webhook scheme {:?} any more",
                    settings.scheme
                )
            });
        return Err(refuse(Answer::new(
            404,
            "unsupported",
            format!("Process webhooks is {why}: choose a scheme again in the source's editor"),
        )));
    };
    Ok(Admitted {
        source_id: source_id.to_string(),
        record,
        scheme,
        secret,
    })
}

/// Checks and queues one event of an admitted source: the proof first, then the source's
/// state, then the delivery id (in the database, shared by the replicas); answers at once.
pub async fn receive(
    state: &AppState,
    admitted: Admitted,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> Answer {
    let webhooks = &state.webhooks;
    let id = admitted.source_id.as_str();
    webhooks.count(id, |h| h.received += 1);
    let at = now();
    let settings = &admitted.record.settings;
    let refused = |answer: Answer| {
        webhooks.reject(id, &answer);
        answer
    };
    let verified = match verify::check_event(
        &admitted.scheme,
        settings,
        &admitted.secret,
        &headers,
        &body,
        at,
    ) {
        Ok(verified) => verified,
        Err(Rejection::Signature) => {
            return refused(Answer::new(
                401,
                "signature",
                "the signature (or token) does not match this source's webhook secret: paste the same secret in the tracker and in the source's editor",
            ));
        }
        Err(Rejection::Replay) => {
            return refused(Answer::new(
                401,
                "replay",
                "the event's signed time is missing or outside the replay window (an old event sent again, or a clock far off)",
            ));
        }
    };
    let body = match event_json(&headers, body) {
        Ok(body) => body,
        Err(answer) => return refused(answer),
    };
    if !admitted.record.enabled {
        return refused(Answer::new(
            200,
            "source-disabled",
            "ignored: this source is disabled",
        ));
    }
    if !admitted.record.capabilities.process_webhooks {
        return refused(Answer::new(
            200,
            "capability-off",
            "ignored: \"Process webhooks\" is off for this source",
        ));
    }
    if let Some(incompatible) = crate::compat::refusal(&state.plugins, &admitted.record) {
        return refused(Answer::new(
            200,
            crate::compat::CODE,
            format!("ignored: {incompatible}"),
        ));
    }
    if let Some(delivery) = &verified.delivery_id
        && !claim(state, id, delivery, at).await
    {
        return refused(Answer::new(
            200,
            "duplicate",
            "ignored: this delivery was received before",
        ));
    }
    webhooks.ensure_workers(state);
    let job = Job {
        source_id: id.to_string(),
        scheme: admitted.scheme.id.clone(),
        headers: verify::plugin_headers(&admitted.scheme, settings, &headers),
        body,
        received_at: at,
        delivery_id: verified.delivery_id.clone(),
    };
    if webhooks.sender.try_send(job).is_err() {
        if let Some(delivery) = &verified.delivery_id {
            release(state, id, delivery).await;
        }
        return refused(Answer::new(
            503,
            "queue-full",
            "too many events are waiting; retry later",
        ));
    }
    webhooks.count(id, |h| {
        h.accepted += 1;
        h.last_event_at = Some(at);
    });
    Answer::new(200, "accepted", "accepted")
}

/// The event's JSON, from a proven body: a JSON body as it is, or the `payload` field of a
/// form-encoded one (GitHub's "application/x-www-form-urlencoded" content type). Anything else
/// is a hook set up wrong: 415 for another content type, 400 for a body that is not JSON.
fn event_json(headers: &[(String, String)], body: Vec<u8>) -> Result<Vec<u8>, Answer> {
    let media_type = verify::header(headers, "content-type")
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let json = match media_type.as_deref() {
        None | Some("application/json") => body,
        Some(other) if other.ends_with("+json") => body,
        Some("application/x-www-form-urlencoded") => {
            let payload = form_urlencoded::parse(&body)
                .find(|(name, _)| name == "payload")
                .map(|(_, value)| value.into_owned().into_bytes());
            payload.ok_or_else(|| {
                Answer::new(
                    400,
                    "not-json",
                    "the form-encoded body has no `payload` field: choose the content type application/json in the tracker's webhook settings",
                )
            })?
        }
        Some(other) => {
            return Err(Answer::new(
                415,
                "unsupported-media-type",
                format!(
                    "events must be JSON, not {other}: choose the content type application/json in the tracker's webhook settings"
                ),
            ));
        }
    };
    match serde_json::from_slice::<serde::de::IgnoredAny>(&json) {
        Ok(_) => Ok(json),
        Err(e) => Err(Answer::new(
            400,
            "not-json",
            format!("the body is not JSON ({e})"),
        )),
    }
}

/// Forgets delivery `delivery` of `source_id`, which was not processed (the queue was full,
/// or processing failed): a retry or redelivery of it is taken, not dropped as a repeat.
async fn release(state: &AppState, source_id: &str, delivery: &str) {
    let released = (state.webhooks.deliveries)
        .release(&state.store, source_id, delivery)
        .await;
    if let Err(e) = released {
        tracing::warn!(source = %source_id, error = %e, "delivery id not released: a retry of it is ignored");
    }
}

/// Claims delivery `delivery` of `source_id`: false for a repeat. When the database cannot
/// say, the event is taken (processing is idempotent: a repeat costs tracker calls, never
/// wrong data).
async fn claim(state: &AppState, source_id: &str, delivery: &str, at: Millis) -> bool {
    let claimed = (state.webhooks.deliveries)
        .claim(&state.store, source_id, delivery, at)
        .await;
    claimed.unwrap_or_else(|e| {
        tracing::warn!(source = %source_id, error = %e, "delivery id not checked: the event is taken");
        true
    })
}

/// Counts a body refused as too large (413) on an admitted source.
pub fn too_large(state: &AppState, source_id: &str) -> Answer {
    let answer = Answer::new(
        413,
        "too-large",
        format!("the body is larger than {MAX_BODY_BYTES} bytes; an issue event is far smaller"),
    );
    state.webhooks.count(source_id, |h| h.received += 1);
    state.webhooks.reject(source_id, &answer);
    answer
}
