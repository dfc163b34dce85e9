//! Asynchronous plugin admission: the jobs that run [`super::install`] one at a time.
//!
//! An upload that passed the cheap checks (media type, size, an empty body: the API's) becomes
//! a job whose state a client polls: `queued` (waiting for the admission slot), `compiling`
//! (compiling, or loading from the compile cache, and running `describe`), `checking` (the id
//! and the stored sources it would break), then `active` (swapped in; [`Job::ended`] holds what
//! was [`Admitted`]) or `failed` (the [`AdmissionError`]; the version that was serving keeps
//! serving).
//! `api::plugins` answers the upload `202` with the job, shows it at `GET /plugins/jobs/{id}`
//! and, for `?wait=true`, awaits its end; it only maps what this module says to HTTP.
//!
//! Jobs run one at a time ([`Admissions`] has one slot): compiling a large component keeps
//! the cores busy for seconds (a debug host: a minute), so admissions queue behind each other,
//! and the compilation itself runs on lower-priority threads (see `plugin::engine`), so
//! request handling wins a core when it needs one. Every refusal is audited as
//! `plugin.rejected` (the accepted ones by [`super::record`]). Jobs are kept in memory, the
//! latest [`KEPT`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};

use serde_json::Value;

use super::AdmissionError;
use crate::app::AppState;
use crate::audit::audit;
use crate::plugin::LoadedPlugin;
use crate::plugin::registry::Swap;
use crate::store::records::{Millis, now};

/// How many jobs are remembered (the oldest finished ones are forgotten first).
pub const KEPT: usize = 100;

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// Waiting for the admission slot.
    Queued,
    /// Compiling (or loading from the compile cache) and describing.
    Compiling,
    /// Checking the description: the provider id, the stored sources it would break.
    Checking,
    /// Swapped in and serving.
    Active,
    /// Refused; the job's error says why. The version that was serving keeps serving.
    Failed,
}

impl JobState {
    /// True once the job will not change any more.
    pub fn finished(self) -> bool {
        matches!(self, JobState::Active | JobState::Failed)
    }
}

/// Why a job's version was refused, shared by the job and whoever awaits it.
pub type Refusal = Arc<AdmissionError>;

/// An accepted admission, as its job keeps it: the version only by a weak reference, so a
/// finished job does not keep a replaced version's compiled code in memory.
#[derive(Clone, Debug)]
pub struct Admitted {
    /// False when this exact binary was already serving (nothing was swapped).
    pub changed: bool,
    /// The version admitted, while it is loaded (or a call still runs on it).
    pub plugin: Weak<LoadedPlugin>,
    /// Its version and digest, for when it is gone.
    pub version: String,
    /// sha-256 of its binary, hex.
    pub digest: String,
    /// The version it replaced: its version and digest.
    pub previous: Option<(String, String)>,
}

impl Admitted {
    fn of(swap: &Swap) -> Admitted {
        Admitted {
            changed: swap.changed,
            plugin: Arc::downgrade(&swap.plugin),
            version: swap.plugin.info.version.clone(),
            digest: swap.plugin.digest.clone(),
            previous: (swap.previous.as_ref()).map(|p| (p.info.version.clone(), p.digest.clone())),
        }
    }
}

/// One admission.
#[derive(Clone, Debug)]
pub struct Job {
    /// The job's id.
    pub id: String,
    /// The provider id the binary was uploaded to.
    pub plugin: String,
    /// Where it stands.
    pub state: JobState,
    /// Whether the upload was forced past stored sources it breaks.
    pub forced: bool,
    /// Size of the uploaded binary, in bytes.
    pub size_bytes: usize,
    /// When it was uploaded (ms since the Unix epoch).
    pub created_at: Millis,
    /// When it finished, if it has.
    pub finished_at: Option<Millis>,
    /// Once finished: what was admitted, or the refusal.
    pub ended: Option<Result<Admitted, Refusal>>,
}

/// The audit details of a refusal, as whoever answers the uploader words it (the API: the
/// status and the message it answered), so the audit log says what the uploader was told.
pub type RefusalDetails = fn(plugin: &str, error: &AdmissionError) -> Value;

/// The admission jobs of a running service, and the one slot they take turns on.
pub struct Admissions {
    jobs: Mutex<VecDeque<Job>>,
    slot: tokio::sync::Semaphore,
}

impl Default for Admissions {
    fn default() -> Self {
        Admissions {
            jobs: Mutex::new(VecDeque::new()),
            slot: tokio::sync::Semaphore::new(1),
        }
    }
}

impl Admissions {
    /// A job by id.
    pub fn get(&self, id: &str) -> Option<Job> {
        let jobs = self.jobs.lock().expect("admission jobs lock");
        jobs.iter().find(|j| j.id == id).cloned()
    }

    fn add(&self, job: Job) {
        let mut jobs = self.jobs.lock().expect("admission jobs lock");
        if jobs.len() >= KEPT
            && let Some(at) = jobs.iter().position(|j| j.state.finished())
        {
            jobs.remove(at);
        }
        jobs.push_back(job);
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Job)) {
        let mut jobs = self.jobs.lock().expect("admission jobs lock");
        if let Some(job) = jobs.iter_mut().find(|j| j.id == id) {
            f(job);
        }
    }
}

/// Starts the admission of `bytes` (with its minisign `signature`, if any) as provider
/// `plugin` on behalf of `who`; returns the job (queued) and the task that runs it, whose
/// result is the job's end. A refusal is audited with the details `refusal` gives, before the
/// job shows `failed`.
pub fn start(
    state: &AppState,
    who: String,
    plugin: &str,
    bytes: bytes::Bytes,
    signature: Option<String>,
    force: bool,
    refusal: RefusalDetails,
) -> (Job, tokio::task::JoinHandle<Result<Swap, Refusal>>) {
    let job = Job {
        id: crate::ids::new_id("job"),
        plugin: plugin.to_string(),
        state: JobState::Queued,
        forced: force,
        size_bytes: bytes.len(),
        created_at: now(),
        finished_at: None,
        ended: None,
    };
    state.admissions.add(job.clone());
    let (state, id, plugin) = (state.clone(), job.id.clone(), plugin.to_string());
    let task = tokio::spawn(async move {
        let admissions = state.admissions.clone();
        let _slot = admissions.slot.acquire().await;
        admissions.update(&id, |j| j.state = JobState::Compiling);
        let checking = || admissions.update(&id, |j| j.state = JobState::Checking);
        let signature = signature.as_deref();
        let result =
            super::install(&state, &who, &plugin, &bytes, signature, force, checking).await;
        if let Err(e) = &result {
            audit_refusal(&state, &who, &plugin, refusal(&plugin, e)).await;
        }
        let result = result.map_err(Arc::new);
        admissions.update(&id, |j| {
            j.finished_at = Some(now());
            j.state = match &result {
                Ok(_) => JobState::Active,
                Err(_) => JobState::Failed,
            };
            j.ended = Some(result.as_ref().map(Admitted::of).map_err(Arc::clone));
        });
        result
    });
    (job, task)
}

/// Audits a refused upload as `plugin.rejected` with `details`: every admission outcome is
/// audited (the accepted ones by [`super::record`]), including the refusals of the body the
/// API answers before a job exists.
pub async fn audit_refusal(state: &AppState, who: &str, plugin: &str, details: Value) {
    let (who, target) = (who.to_string(), plugin.to_string());
    let audited = state
        .store
        .write(move |w| audit(w, &who, "plugin.rejected", &target, details))
        .await;
    if let Err(err) = audited {
        tracing::error!(plugin = %plugin, error = %err, "could not audit a refused upload");
    }
}
