//! Asynchronous plugin admission: the jobs behind `PUT /plugins/{id}` and
//! `GET /plugins/jobs/{id}`.
//!
//! The upload request itself only reads the body and refuses what is cheap to refuse (media
//! type, size, an empty body); it then answers `202` with a job, whose state a client polls:
//! `queued` (waiting for the admission slot), `compiling` (compiling, or loading from the
//! compile cache, and running `describe`), `checking` (the id and the stored sources it would
//! break), then `active` (swapped in; `outcome` as a synchronous upload answers it) or `failed`
//! (`error`: the status and the error body a synchronous upload would have answered). With
//! `?wait=true` the request waits for its job and answers like a synchronous upload.
//!
//! Jobs run one at a time ([`Admissions`] has one slot): compiling a large component keeps
//! the cores busy for seconds (a debug host: a minute), so admissions queue behind each other,
//! and the compilation itself runs on lower-priority threads (see `plugin::engine`), so
//! request handling wins a core when it needs one. Each job's outcome is audited (by
//! [`super::plugins::install`]). Finished jobs are kept in memory, the latest [`KEPT`].

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::error::ApiError;
use super::plugins::UploadOutcome;
use crate::app::AppState;
use crate::store::records::{Millis, now};

/// How many jobs are remembered (the oldest finished ones are forgotten first).
pub const KEPT: usize = 100;

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
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
    /// Refused; `error` says why. The version that was serving keeps serving.
    Failed,
}

impl JobState {
    /// True once the job will not change any more.
    pub fn finished(self) -> bool {
        matches!(self, JobState::Active | JobState::Failed)
    }
}

/// One admission, as `GET /plugins/jobs/{id}` shows it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
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
    /// When `active`: what the upload did (`changed`, `plugin`, `previous`).
    #[schemars(with = "Option<super::plugins::UploadOutcome>")]
    pub outcome: Option<Value>,
    /// When `failed`: `{status, error, errors}`, the answer a synchronous upload would give.
    pub error: Option<Value>,
}

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

/// What a job ends with: the status and body of an accepted upload, or the refusal.
pub type Finished = Result<(StatusCode, UploadOutcome), ApiError>;

/// Starts the admission of `bytes` (with its minisign `signature`, if any) as provider
/// `plugin` on behalf of `who`; returns the job (queued) and the task that runs it, whose
/// result is the job's end.
pub fn start(
    state: &AppState,
    who: String,
    plugin: &str,
    bytes: bytes::Bytes,
    signature: Option<String>,
    force: bool,
) -> (Job, tokio::task::JoinHandle<Finished>) {
    let job = Job {
        id: crate::ids::new_id("job"),
        plugin: plugin.to_string(),
        state: JobState::Queued,
        forced: force,
        size_bytes: bytes.len(),
        created_at: now(),
        finished_at: None,
        outcome: None,
        error: None,
    };
    state.admissions.add(job.clone());
    let (state, id, plugin) = (state.clone(), job.id.clone(), plugin.to_string());
    let task = tokio::spawn(async move {
        let admissions = state.admissions.clone();
        let _slot = admissions.slot.acquire().await;
        admissions.update(&id, |j| j.state = JobState::Compiling);
        let checking = || admissions.update(&id, |j| j.state = JobState::Checking);
        let signature = signature.as_deref();
        let finished =
            super::plugins::install(&state, &who, &plugin, &bytes, signature, force, checking)
                .await;
        admissions.update(&id, |j| {
            j.finished_at = Some(now());
            match &finished {
                Ok((_, outcome)) => {
                    j.state = JobState::Active;
                    j.outcome = serde_json::to_value(outcome).ok();
                }
                Err(e) => {
                    j.state = JobState::Failed;
                    let mut body = e.body();
                    body["status"] = e.status.as_u16().into();
                    j.error = Some(body);
                }
            }
        });
        finished
    });
    (job, task)
}
