//! In-memory operational figures: Prometheus counters for `/metrics` and per-source health for
//! `GET /api/v1/sources/{id}/health`.
//!
//! The counters describe this process since it started. A source's health is shared: every
//! replica on the database (and a restarted process) shows the same, because each records its
//! calls in memory and `crate::health_store` merges them into the database every half second
//! (one write for all sources, not one per call). Every plugin
//! call made on behalf of a source (connection test, issue fetches) goes through ONE function,
//! [`Metrics::record_call`], which updates both the provider counters and the latency
//! histogram and that source's [`Health`]. HTTP requests are counted by `api::metrics::track_http`, a
//! middleware layer on the whole router, labelled by the matched route (never the raw path, so
//! ids do not multiply the series).
//!
//! The text format is Prometheus exposition format 0.0.4, hand-rolled: a few counters under
//! mutexes are all a service of this size needs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::plugin::{Headroom, Issue, PluginError, ProviderError};
use crate::store::records::{Millis, now};

/// Upper bounds (seconds) of the plugin-call latency histogram buckets; `+Inf` is implied.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How many of a source's most recent calls its error rate is computed over.
pub const HEALTH_WINDOW: usize = 50;

/// The longest error message kept in a source's health, in characters.
const MAX_MESSAGE: usize = 500;

/// How one plugin call ended, as far as metrics and health are concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The call succeeded.
    Ok,
    /// The tracker answered, but about one key only (`not-found`, `invalid-input` of a
    /// fetch): the source itself is fine, so this counts as a success for its health.
    KeyError {
        /// The error code.
        code: &'static str,
    },
    /// The call failed for the source (credentials, rate limit, network, plugin fault, ...).
    Failed {
        /// The error code (`unauthorized`, `rate-limited`, `plugin-timeout`, ...).
        code: &'static str,
        /// What went wrong (never a secret: plugins never see one).
        message: String,
        /// For `rate-limited`: the seconds the tracker asked us to wait.
        retry_after_secs: Option<u32>,
        /// True when the plugin misbehaved rather than answered with an error.
        fault: bool,
    },
}

impl Outcome {
    /// The outcome of a call where every error counts against the source (a connection test).
    pub fn of<T>(result: &Result<T, PluginError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::failed(e),
        }
    }

    /// The outcome of a one-issue fetch: `not-found` and `invalid-input` concern the key.
    pub fn of_fetch(result: &Result<Issue, PluginError>) -> Outcome {
        match result {
            Err(PluginError::Provider(e)) if key_level(e) => Outcome::KeyError { code: e.code() },
            other => Outcome::of(other),
        }
    }

    /// The outcome of a batch fetch: the call's own error, else the first per-key error that
    /// concerns the source (e.g. a rate limit hit half-way), else success.
    pub fn of_batch(result: &Result<Vec<Result<Issue, ProviderError>>, PluginError>) -> Outcome {
        match result {
            Err(e) => Outcome::failed(e),
            Ok(results) => {
                let mut out = Outcome::Ok;
                for r in results {
                    match r {
                        Err(e) if !key_level(e) => return Outcome::from_provider(e),
                        Err(e) if out == Outcome::Ok => out = Outcome::KeyError { code: e.code() },
                        _ => {}
                    }
                }
                out
            }
        }
    }

    fn failed(e: &PluginError) -> Outcome {
        match e {
            PluginError::Provider(p) => Outcome::from_provider(p),
            other => Outcome::Failed {
                code: other.code(),
                message: other.to_string(),
                retry_after_secs: None,
                fault: other.is_fault(),
            },
        }
    }

    fn from_provider(e: &ProviderError) -> Outcome {
        Outcome::Failed {
            code: e.code(),
            message: e.to_string(),
            retry_after_secs: match e {
                ProviderError::RateLimited {
                    retry_after_secs, ..
                } => Some(*retry_after_secs),
                _ => None,
            },
            fault: false,
        }
    }

    /// The `outcome` label: `ok` or the error code.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::KeyError { code } | Outcome::Failed { code, .. } => code,
        }
    }
}

fn key_level(e: &ProviderError) -> bool {
    matches!(
        e,
        ProviderError::NotFound(_) | ProviderError::InvalidInput(_)
    )
}

/// The last error of a source.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct LastError {
    /// The error code.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// When, in milliseconds since the epoch.
    pub at: Millis,
}

/// What is known of a source's rate limit: the headroom its tracker announces in response
/// headers, and the last time it told us to wait.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RateLimit {
    /// Requests left in the tracker's current window, as its latest response said.
    pub remaining: Option<u64>,
    /// Requests allowed per window, when the tracker says.
    pub limit: Option<u64>,
    /// When the window resets (milliseconds since the epoch), when the tracker says.
    pub resets_at: Option<Millis>,
    /// When the tracker last announced these figures.
    pub reported_at: Option<Millis>,
    /// The `Retry-After` of the last rate-limited answer, in seconds.
    pub retry_after_secs: Option<u32>,
    /// Until when the tracker asked us to wait (milliseconds since the epoch).
    pub limited_until: Option<Millis>,
    /// Until when no request is sent to the tracker for this source (milliseconds since the
    /// epoch): the latest of `limited_until` and, when no request is left, `resets_at`. Sync,
    /// manual refreshes and link fetches all wait for it.
    pub paused_until: Option<Millis>,
    /// True while the source must wait (`paused_until` is set).
    pub active: bool,
}

impl RateLimit {
    fn new(
        headroom: Option<Headroom>,
        told_to_wait: Option<(u32, Millis)>,
        paused_until: Option<Millis>,
    ) -> Self {
        RateLimit {
            remaining: headroom.map(|h| h.remaining),
            limit: headroom.and_then(|h| h.limit),
            resets_at: headroom.and_then(|h| h.resets_at),
            reported_at: headroom.map(|h| h.reported_at),
            retry_after_secs: told_to_wait.map(|(secs, _)| secs),
            limited_until: told_to_wait.map(|(_, until)| until),
            paused_until,
            active: paused_until.is_some(),
        }
    }
}

/// The health of one source, as the API shows it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Health {
    /// `unknown` (no call yet), `ok`, `degraded` (errors in the window, last call fine),
    /// `failing` (the last call failed) or `rate-limited` (told to wait, still waiting).
    pub status: &'static str,
    /// Calls recorded since the service started.
    pub calls: u64,
    /// When a call last succeeded.
    pub last_success_at: Option<Millis>,
    /// The last failure.
    pub last_error: Option<LastError>,
    /// Calls in the window (the last [`HEALTH_WINDOW`]).
    pub window_calls: usize,
    /// Failed calls in the window.
    pub window_errors: usize,
    /// `window_errors / window_calls` (0 when there was no call).
    pub error_rate: f64,
    /// The source's rate limit, when its tracker announced one or told us to wait.
    pub rate_limit: Option<RateLimit>,
}

/// What is recorded of a source's calls: the stored record of its health (table `health`),
/// and the changes a replica has not stored yet (merged into it with [`SourceHealth::merge`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceHealth {
    calls: u64,
    last_success_at: Option<Millis>,
    last_error: Option<LastError>,
    last_failed: bool,
    /// When the last call ended (decides `last_failed` when replicas' calls are merged).
    last_call_at: Option<Millis>,
    /// Whether each of the last calls failed (merged in the order replicas store them).
    window: VecDeque<bool>,
    rate_limit: Option<(u32, Millis)>,
    /// The headroom the source's tracker last announced, to whichever replica.
    headroom: Option<Headroom>,
    /// When the source's headroom was forgotten (it now points at another account): any
    /// headroom reported before then is dropped.
    headroom_forgotten_at: Option<Millis>,
}

impl SourceHealth {
    /// Adds one call that ended at `at` with `outcome`.
    fn apply(&mut self, at: Millis, outcome: &Outcome) {
        self.calls += 1;
        let failed = matches!(outcome, Outcome::Failed { .. });
        self.push_window(failed);
        self.last_failed = failed;
        self.last_call_at = Some(at);
        match outcome {
            Outcome::Ok | Outcome::KeyError { .. } => self.last_success_at = Some(at),
            Outcome::Failed {
                code,
                message,
                retry_after_secs,
                ..
            } => {
                self.last_error = Some(LastError {
                    code: (*code).to_string(),
                    message: message.chars().take(MAX_MESSAGE).collect(),
                    at,
                });
                if let Some(secs) = retry_after_secs {
                    self.rate_limit = Some((*secs, at + u64::from(*secs) * 1000));
                }
            }
        }
    }

    fn push_window(&mut self, failed: bool) {
        if self.window.len() == HEALTH_WINDOW {
            self.window.pop_front();
        }
        self.window.push_back(failed);
    }

    /// Adds `later`, the calls recorded (by any replica) after those in `self`.
    pub fn merge(&mut self, later: &SourceHealth) {
        self.calls += later.calls;
        later
            .window
            .iter()
            .for_each(|failed| self.push_window(*failed));
        if later.last_call_at >= self.last_call_at && later.calls > 0 {
            self.last_failed = later.last_failed;
            self.last_call_at = later.last_call_at;
        }
        self.last_success_at = self.last_success_at.max(later.last_success_at);
        if later.last_error.as_ref().map(|e| e.at) > self.last_error.as_ref().map(|e| e.at) {
            self.last_error = later.last_error.clone();
        }
        if later.rate_limit.map(|(_, until)| until) > self.rate_limit.map(|(_, until)| until) {
            self.rate_limit = later.rate_limit;
        }
        self.headroom_forgotten_at = self.headroom_forgotten_at.max(later.headroom_forgotten_at);
        self.headroom = self.newest_headroom(later.headroom);
    }

    /// The newer of the kept headroom and `other`, unless reported before it was forgotten.
    fn newest_headroom(&self, other: Option<Headroom>) -> Option<Headroom> {
        let newest = match (self.headroom, other) {
            (Some(a), Some(b)) => Some(if b.reported_at > a.reported_at { b } else { a }),
            (a, b) => a.or(b),
        };
        newest.filter(|h| {
            self.headroom_forgotten_at
                .is_none_or(|forgotten| h.reported_at > forgotten)
        })
    }

    /// Keeps `headroom` (what this replica's tracker responses said) if it is the newest.
    pub fn note_headroom(&mut self, headroom: Option<Headroom>) {
        self.headroom = self.newest_headroom(headroom);
    }

    fn forget_headroom(&mut self, at: Millis) {
        self.headroom = None;
        self.headroom_forgotten_at = Some(at);
    }

    fn view(&self, at: Millis, headroom: Option<Headroom>) -> Health {
        let headroom = self.newest_headroom(headroom);
        let window_errors = self.window.iter().filter(|failed| **failed).count();
        let paused_until = self.paused_until(at, headroom);
        let rate_limit = (headroom.is_some() || self.rate_limit.is_some())
            .then(|| RateLimit::new(headroom, self.rate_limit, paused_until));
        let status = if self.calls == 0 {
            "unknown"
        } else if rate_limit.as_ref().is_some_and(|r| r.active) {
            "rate-limited"
        } else if self.last_failed {
            "failing"
        } else if window_errors > 0 {
            "degraded"
        } else {
            "ok"
        };
        Health {
            status,
            calls: self.calls,
            last_success_at: self.last_success_at,
            last_error: self.last_error.clone(),
            window_calls: self.window.len(),
            window_errors,
            error_rate: if self.window.is_empty() {
                0.0
            } else {
                window_errors as f64 / self.window.len() as f64
            },
            rate_limit,
        }
    }

    /// THE pause rule: until when no request may be sent for this source, if that is after
    /// `at`. It is the latest of the times the tracker announced: the end of its last
    /// `Retry-After` wait (unless a call succeeded since it was told, which only an admin's
    /// connection test may make during a pause) and, when its headers said no request is left,
    /// the reset of its window. Trackers round resets (Jira's `X-RateLimit-Reset` is to the
    /// minute), so a reset already past never shortens a `Retry-After`.
    fn paused_until(&self, at: Millis, headroom: Option<Headroom>) -> Option<Millis> {
        let headroom = self.newest_headroom(headroom);
        let told = self.rate_limit.and_then(|(secs, until)| {
            let told_at = until - u64::from(secs) * 1000;
            let waiting = at < until && self.last_success_at.is_none_or(|ok| ok < told_at);
            waiting.then_some(until)
        });
        let exhausted = headroom.and_then(|h| h.exhausted_until(at));
        told.max(exhausted)
    }
}

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Every counter of the process; one per [`AppState`](crate::app::AppState), cheap to share behind an `Arc`.
#[derive(Default)]
pub struct Metrics {
    /// (method, route, status) -> requests.
    http: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// (provider, operation, outcome) -> calls.
    calls: Mutex<BTreeMap<(String, &'static str, &'static str), u64>>,
    /// provider -> call latency.
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// source id -> health: as stored at the last exchange with the database, plus the calls
    /// recorded here since.
    health: Mutex<HashMap<String, SourceHealth>>,
    /// source id -> the calls recorded here and not stored yet (see `crate::health_store`).
    pending: Mutex<HashMap<String, SourceHealth>>,
    /// Sources due in the last sync pass.
    sync_due: AtomicU64,
    /// Sync passes run.
    sync_passes: AtomicU64,
    /// Pauses other replicas on the database observed: source id -> until (see
    /// `crate::replicas`).
    shared_pauses: Mutex<HashMap<String, Millis>>,
}

impl Metrics {
    /// THE recording point of plugin calls: counts the call by provider, operation and
    /// outcome, adds its latency to the provider's histogram and, when the call was made for
    /// a stored source, updates that source's health.
    pub fn record_call(
        &self,
        source_id: Option<&str>,
        provider: &str,
        operation: &'static str,
        elapsed: Duration,
        outcome: &Outcome,
    ) {
        *lock(&self.calls)
            .entry((provider.to_string(), operation, outcome.label()))
            .or_default() += 1;
        {
            let mut latency = lock(&self.latency);
            let h = latency.entry(provider.to_string()).or_default();
            let secs = elapsed.as_secs_f64();
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.buckets[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
        let Some(source_id) = source_id else { return };
        let at = now();
        let mut health = lock(&self.health);
        let mut pending = lock(&self.pending);
        for h in [&mut health, &mut pending] {
            h.entry(source_id.to_string())
                .or_default()
                .apply(at, outcome);
        }
    }

    /// Runs a plugin call for `source_id`, timing it, and records it with [`record_call`]
    /// (`classify` turns the result into an [`Outcome`]).
    ///
    /// [`record_call`]: Metrics::record_call
    pub async fn observe<T>(
        &self,
        source_id: Option<&str>,
        provider: &str,
        operation: &'static str,
        classify: impl FnOnce(&Result<T, PluginError>) -> Outcome,
        call: impl Future<Output = Result<T, PluginError>>,
    ) -> Result<T, PluginError> {
        let started = Instant::now();
        let result = call.await;
        let outcome = classify(&result);
        self.record_call(source_id, provider, operation, started.elapsed(), &outcome);
        result
    }

    /// The health of a source (`unknown` when no call was recorded for it), with the
    /// rate-limit headroom its tracker last announced (see [`PluginHost::headroom`]).
    ///
    /// [`PluginHost::headroom`]: crate::plugin::PluginHost::headroom
    pub fn health(&self, source_id: &str, headroom: Option<Headroom>) -> Health {
        let at = now();
        let health = lock(&self.health);
        match health.get(source_id) {
            Some(h) => h.view(at, headroom),
            None => SourceHealth::default().view(at, headroom),
        }
    }

    /// Until when no request may be sent for `source_id` (milliseconds since the epoch), if
    /// it is paused now; `headroom` is what its tracker last announced (see
    /// [`PluginHost::headroom`]). Health shows the same pause.
    ///
    /// [`PluginHost::headroom`]: crate::plugin::PluginHost::headroom
    pub fn paused_until(&self, source_id: &str, headroom: Option<Headroom>) -> Option<Millis> {
        let at = now();
        let here = {
            let health = lock(&self.health);
            match health.get(source_id) {
                Some(h) => h.paused_until(at, headroom),
                None => SourceHealth::default().paused_until(at, headroom),
            }
        };
        let elsewhere = lock(&self.shared_pauses)
            .get(source_id)
            .copied()
            .filter(|until| *until > at);
        here.max(elsewhere)
    }

    /// The pauses this process observed that run now: (source id, until), for the other
    /// replicas; `headroom` gives a source's last announced headroom.
    pub fn local_pauses(
        &self,
        headroom: impl Fn(&str) -> Option<Headroom>,
    ) -> Vec<(String, Millis)> {
        let at = now();
        let health = lock(&self.health);
        health
            .iter()
            .filter_map(|(id, h)| Some((id.clone(), h.paused_until(at, headroom(id))?)))
            .collect()
    }

    /// Replaces the pauses other replicas observed (see [`Metrics::local_pauses`]).
    pub fn set_shared_pauses(&self, pauses: Vec<(String, Millis)>) {
        *lock(&self.shared_pauses) = pauses.into_iter().collect();
    }

    /// Forgets a deleted source's health.
    pub fn forget(&self, source_id: &str) {
        lock(&self.health).remove(source_id);
        lock(&self.pending).remove(source_id);
    }

    /// Forgets the headroom a source's tracker announced (it now points at another tracker
    /// or account), here and, at the next exchange, in the database.
    pub fn forget_headroom(&self, source_id: &str) {
        let at = now();
        let mut health = lock(&self.health);
        let mut pending = lock(&self.pending);
        for h in [&mut health, &mut pending] {
            h.entry(source_id.to_string())
                .or_default()
                .forget_headroom(at);
        }
    }

    /// Takes the health changes recorded since the last call, to be stored.
    pub fn take_pending(&self) -> HashMap<String, SourceHealth> {
        std::mem::take(&mut *lock(&self.pending))
    }

    /// Puts back changes [`Metrics::take_pending`] took that could not be stored.
    pub fn restore_pending(&self, changes: HashMap<String, SourceHealth>) {
        let mut pending = lock(&self.pending);
        for (id, mut change) in changes {
            if let Some(later) = pending.remove(&id) {
                change.merge(&later);
            }
            pending.insert(id, change);
        }
    }

    /// Replaces every source's health by what the database holds, plus the changes recorded
    /// here since they were taken for storing.
    pub fn replace_health(&self, stored: Vec<(String, SourceHealth)>) {
        let mut health = lock(&self.health);
        let pending = lock(&self.pending);
        *health = stored.into_iter().collect();
        for (id, change) in pending.iter() {
            health.entry(id.clone()).or_default().merge(change);
        }
    }

    /// Counts one HTTP request.
    pub fn record_http(&self, method: &str, route: &str, status: u16) {
        *lock(&self.http)
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
    }

    /// Records a sync pass and how many sources were due in it.
    pub fn record_sync_pass(&self, due: usize) {
        self.sync_due.store(due as u64, Ordering::Relaxed);
        self.sync_passes.fetch_add(1, Ordering::Relaxed);
    }

    /// Everything, in Prometheus text format 0.0.4. `plugins` is the number of loaded plugins,
    /// `headroom` the rate-limit headroom trackers announced, by source id.
    pub fn render(&self, plugins: usize, headroom: &[(String, Headroom)]) -> String {
        let mut out = String::new();
        family(
            &mut out,
            "integration_http_requests_total",
            "counter",
            "HTTP requests by method, matched route and status.",
        );
        for ((method, route, status), n) in lock(&self.http).iter() {
            let _ = writeln!(
                out,
                "integration_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        family(
            &mut out,
            "integration_plugin_calls_total",
            "counter",
            "Plugin calls made for sources, by provider, operation and outcome (ok or the error code).",
        );
        for ((provider, operation, outcome), n) in lock(&self.calls).iter() {
            let _ = writeln!(
                out,
                "integration_plugin_calls_total{{provider=\"{}\",operation=\"{operation}\",outcome=\"{outcome}\"}} {n}",
                escape(provider)
            );
        }
        family(
            &mut out,
            "integration_plugin_call_duration_seconds",
            "histogram",
            "Wall-clock time of plugin calls made for sources, HTTP included, by provider.",
        );
        for (provider, h) in lock(&self.latency).iter() {
            let p = escape(provider);
            for (bound, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
                let _ = writeln!(
                    out,
                    "integration_plugin_call_duration_seconds_bucket{{provider=\"{p}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "integration_plugin_call_duration_seconds_bucket{{provider=\"{p}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "integration_plugin_call_duration_seconds_sum{{provider=\"{p}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "integration_plugin_call_duration_seconds_count{{provider=\"{p}\"}} {}",
                h.count
            );
        }
        family(
            &mut out,
            "integration_sync_sources_due",
            "gauge",
            "Sources due for a sync in the last pass (the sync queue depth).",
        );
        let _ = writeln!(
            out,
            "integration_sync_sources_due {}",
            self.sync_due.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "integration_sync_passes_total",
            "counter",
            "Sync passes run.",
        );
        let _ = writeln!(
            out,
            "integration_sync_passes_total {}",
            self.sync_passes.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "integration_source_rate_limit_remaining",
            "gauge",
            "Requests left in the tracker's rate-limit window, as its latest response said, by source.",
        );
        for (source, h) in headroom {
            let _ = writeln!(
                out,
                "integration_source_rate_limit_remaining{{source_id=\"{}\"}} {}",
                escape(source),
                h.remaining
            );
        }
        family(
            &mut out,
            "integration_plugins_loaded",
            "gauge",
            "Provider plugins loaded.",
        );
        let _ = writeln!(out, "integration_plugins_loaded {plugins}");
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped for the text format (backslash, double quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a counter lock leaves consistent-enough counters.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which replica these figures are from (a random id per process) and on which database
/// engine, appended to `/metrics`: join on `replica` to tell replicas apart behind one scrape
/// target.
pub fn replica_info(store: &crate::store::Store) -> String {
    format!(
        "# HELP integration_replica_info This process among the replicas on its database.\n\
         # TYPE integration_replica_info gauge\n\
         integration_replica_info{{replica=\"{}\",database=\"{}\"}} 1\n",
        store.replica_id(),
        store.engine()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_796_000_000_000;

    fn exhausted(resets_at: Millis) -> Option<Headroom> {
        Some(Headroom {
            remaining: 0,
            limit: None,
            resets_at: Some(resets_at),
            reported_at: NOW,
        })
    }

    #[test]
    fn the_pause_is_the_latest_announced_time() {
        let told = || SourceHealth {
            calls: 1,
            rate_limit: Some((30, NOW + 30_000)),
            ..Default::default()
        };
        // A reset to the minute, already past, does not shorten Retry-After.
        assert_eq!(
            told().paused_until(NOW, exhausted(NOW - 20_000)),
            Some(NOW + 30_000)
        );
        // A later reset of an exhausted window extends it.
        assert_eq!(
            told().paused_until(NOW, exhausted(NOW + 90_000)),
            Some(NOW + 90_000)
        );
        // Once both are past, nothing holds the source.
        assert_eq!(told().paused_until(NOW + 30_000, exhausted(NOW)), None);
        // A call that succeeded after the wait was asked for ends it.
        let answered = SourceHealth {
            last_success_at: Some(NOW + 1),
            ..told()
        };
        assert_eq!(answered.paused_until(NOW + 2, None), None);
        // Health shows the same pause.
        let h = told().view(NOW, exhausted(NOW - 20_000));
        let rate = h.rate_limit.unwrap();
        assert_eq!((h.status, rate.active), ("rate-limited", true));
        assert_eq!(rate.paused_until, Some(NOW + 30_000));
    }
}
