//! `integration-host check plugin.wasm`: a conformance check a plugin author runs before
//! uploading. It loads the plugin in the same sandbox the service uses (a [`PluginHost`] with
//! the given limits) and calls every export with sample inputs: against a throwaway local
//! stand-in tracker that answers `404` to everything, and against a base URL where nothing
//! listens. Every export must answer with a value or a contract error within the limits,
//! never trap, stall or answer malformed output. One [`CheckLine`] per check.
//!
//! Beyond "does not crash", it checks what the service relies on: the key example matches the
//! default key pattern; typed, padded and pasted-URL forms of the example normalise to its
//! canonical key; `issue-url` honours a template; fetched issues carry the canonical key. With
//! recorded tracker answers ([`Fixtures`], `--fixtures FILE`) the stand-in serves them and the
//! happy path must succeed; against a real tracker (`--base-url`), a refused credential fails.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper::http::header::CONTENT_TYPE;
use hyper::http::{HeaderName, HeaderValue, Request, Response, StatusCode};

use super::model::{Authenticity, Locator, SignedContent};
use super::{
    Capability, Event, Issue, Limits, LoadedPlugin, PluginError, PluginHost, ProviderError,
    ProviderInfo, SourceConfig,
};

/// What to check with. Defaults: the host's default limits, the plugin's first auth type,
/// sample values for every required field and setting.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Per-call limits (default: [`Limits::default`], what the service runs with).
    pub limits: Limits,
    /// Auth type to use instead of the first one.
    pub auth_type: Option<String>,
    /// Non-secret auth field values, over the samples.
    pub fields: BTreeMap<String, String>,
    /// Secret auth field values, over the samples.
    pub secrets: BTreeMap<String, String>,
    /// Setting values, over the samples (e.g. `mode=loop` for the misbehave test plugin).
    pub settings: BTreeMap<String, String>,
    /// Also run `test-connection` and `fetch-issue` against this real tracker.
    pub base_url: Option<String>,
    /// A compile cache to use (default: none, the plugin is compiled afresh).
    pub cache_dir: Option<PathBuf>,
    /// Recorded tracker answers for the stand-in; with them the happy path must succeed.
    pub fixtures: Option<Fixtures>,
}

/// Recorded tracker answers (`check --fixtures FILE`, JSON): the stand-in serves them, so a
/// vendor proves the happy path offline. In `base_path`, `settings` and response bodies,
/// `{standIn}` stands for the stand-in's own origin (`http://127.0.0.1:PORT`).
///
/// ```json
/// {
///   "base_path": "/acme/shop",
///   "settings": {"api-url": "{standIn}"},
///   "responses": [
///     {"method": "GET", "path": "/user", "body": {"login": "octocat"}},
///     {"path": "/repos/acme/shop/issues/12", "status": 200, "headers": {"etag": "x"},
///      "body": {"number": 12, "title": "Login fails", "state": "open"}}
///   ]
/// }
/// ```
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    /// The base URL's path on the stand-in, e.g. `/acme/shop` (default: none).
    #[serde(default)]
    pub base_path: String,
    /// Settings of the sample source, over the samples.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// The answers, matched in order by method (any, when absent) and path (with the query
    /// when the recorded path has one, else without).
    pub responses: Vec<Recorded>,
    /// Recorded webhook events (contract 1.1): `parse-event` must map each to changes whose
    /// keys are canonical.
    #[serde(default)]
    pub events: Vec<RecordedEvent>,
}

/// One recorded webhook event, as the host hands it to `parse-event` once verified.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedEvent {
    /// The scheme id (default: the plugin's first).
    #[serde(default)]
    pub scheme: Option<String>,
    /// Request headers (names are lower-cased).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body: JSON, or a string sent as it is.
    pub body: serde_json::Value,
}

/// One recorded tracker answer.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    /// `GET`, `POST`, ... (any, when absent).
    pub method: Option<String>,
    /// The request path, e.g. `/rest/api/3/myself`, optionally with `?query`.
    pub path: String,
    /// The status (default 200).
    #[serde(default = "ok")]
    pub status: u16,
    /// Response headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body: JSON, or a string sent as it is.
    #[serde(default)]
    pub body: serde_json::Value,
}

fn ok() -> u16 {
    200
}

impl Fixtures {
    /// Reads a fixtures file; the error says what is wrong with it.
    pub fn load(path: &Path) -> Result<Fixtures, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The outcome of one check.
#[derive(Clone, Debug)]
pub struct CheckLine {
    /// What was checked, e.g. `normalize-key`.
    pub name: String,
    /// True when it passed.
    pub passed: bool,
    /// What happened, one line.
    pub detail: String,
    /// How long it took.
    pub took: Duration,
}

/// Every check's outcome, in order.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// One line per check.
    pub lines: Vec<CheckLine>,
}

impl CheckReport {
    /// True when every check passed (and there was at least one).
    pub fn passed(&self) -> bool {
        !self.lines.is_empty() && self.lines.iter().all(|l| l.passed)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &CheckLine> {
        self.lines.iter().filter(|l| !l.passed)
    }

    fn push(&mut self, name: &str, started: Instant, outcome: Result<String, String>) {
        let (passed, detail) = match outcome {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        self.lines.push(CheckLine {
            name: name.into(),
            passed,
            detail,
            took: started.elapsed(),
        });
    }
}

impl fmt::Display for CheckReport {
    /// `PASS  name  detail (12 ms)` per line, then a verdict line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.lines.iter().map(|l| l.name.len()).max().unwrap_or(0);
        for line in &self.lines {
            writeln!(
                f,
                "{}  {:width$}  {} ({} ms)",
                if line.passed { "PASS" } else { "FAIL" },
                line.name,
                line.detail,
                line.took.as_millis()
            )?;
        }
        let failed = self.failures().count();
        if self.passed() {
            write!(f, "result: PASS (all {} checks)", self.lines.len())
        } else {
            write!(
                f,
                "result: FAIL ({failed} of {} checks failed)",
                self.lines.len()
            )
        }
    }
}

/// Checks the plugin in `path`. Never panics on a bad plugin: every problem is a FAIL line.
pub async fn check_file(path: &Path, options: &CheckOptions) -> CheckReport {
    let mut report = CheckReport::default();
    let started = Instant::now();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            report.push(
                "load",
                started,
                Err(format!("cannot read {}: {e}", path.display())),
            );
            return report;
        }
    };
    check_bytes(&bytes, options, report).await
}

/// Checks a plugin binary, as [`check_file`] checks a file.
pub async fn check_binary(bytes: &[u8], options: &CheckOptions) -> CheckReport {
    check_bytes(bytes, options, CheckReport::default()).await
}

async fn check_bytes(bytes: &[u8], options: &CheckOptions, mut report: CheckReport) -> CheckReport {
    let started = Instant::now();
    // The checks' own stand-in tracker listens on 127.0.0.1, and an operator's --base-url
    // may well be on this machine.
    let host = PluginHost::new(options.limits.clone(), options.cache_dir.clone())
        .and_then(|host| host.allow_loopback_targets(true));
    let host = match host {
        Ok(h) => h,
        Err(e) => {
            report.push(
                "load",
                started,
                Err(format!("cannot start the sandbox: {e:#}")),
            );
            return report;
        }
    };
    let plugin = match host.prepare(bytes, "check".into()).await {
        Ok(p) => host.install(p),
        Err(e) => {
            report.push("load", started, Err(e.to_string()));
            return report;
        }
    };
    report.push(
        "load",
        started,
        Ok(format!(
            "{} KiB, compiled and described in {} ms, contract {}",
            bytes.len() / 1024,
            plugin.prepare_time.as_millis(),
            plugin.contract
        )),
    );
    let info = plugin.info.clone();
    let started = Instant::now();
    report.push("describe", started, lint(&info));

    let stand_in = match StandIn::start(options.fixtures.clone().unwrap_or_default()).await {
        Ok(s) => s,
        Err(e) => {
            report.push(
                "stand-in",
                Instant::now(),
                Err(format!("cannot start the local stand-in tracker: {e}")),
            );
            return report;
        }
    };
    let base_path = match &options.fixtures {
        Some(f) => f.base_path.clone(),
        None => "/acme/shop".into(),
    };
    let stand_in_base = format!("{}{base_path}", stand_in.url);
    let source = sample_source(&info, options, &stand_in_base, &stand_in.url);

    // Offline exports: the plugin's own key example must be accepted, in every form a person
    // types or pastes it.
    let started = Instant::now();
    let key = host.normalize_key(&source, &info.key_example).await;
    report.push(
        "normalize-key",
        started,
        match &key {
            Ok(k) => Ok(format!("{:?} -> {k:?}", info.key_example)),
            Err(PluginError::Provider(e)) => Err(format!(
                "rejects its own key example {:?}: {e}",
                info.key_example
            )),
            Err(e) => Err(e.to_string()),
        },
    );
    let key = key.unwrap_or_else(|_| info.key_example.clone());
    let started = Instant::now();
    report.push("default-key-pattern", started, pattern_check(&info, &key));
    let started = Instant::now();
    let again = host.normalize_key(&source, &key).await;
    report.push(
        "normalize-key twice",
        started,
        match again {
            Ok(k) if k == key => Ok(format!("{key:?} stays {k:?}")),
            Ok(k) => Err(format!(
                "not idempotent: {key:?} -> {k:?}; a canonical key must normalise to itself"
            )),
            Err(e) => Err(format!("rejects its own canonical key {key:?}: {e}")),
        },
    );
    let lower = key.to_lowercase();
    let started = Instant::now();
    report.push(
        "normalize-key lower-case",
        started,
        match host.normalize_key(&source, &lower).await {
            Ok(k) if k == key || k == lower => Ok(format!("{lower:?} -> {k:?}")),
            Ok(k) => Err(format!(
                "{lower:?} -> {k:?}: neither the canonical key {key:?} nor the key as typed"
            )),
            other => answered(other),
        },
    );
    let padded = format!("  {key}\t");
    let started = Instant::now();
    let normalized = host.normalize_key(&source, &padded).await;
    report.push(
        "normalize-key padded",
        started,
        canonical(normalized, &padded, &key),
    );
    let started = Instant::now();
    let pasted = match host.issue_url(&source, &key).await {
        Ok(url) => {
            let normalized = host.normalize_key(&source, &url).await;
            canonical(normalized, &url, &key)
        }
        Err(e) => Ok(format!("no issue URL to paste ({e})")),
    };
    report.push("normalize-key pasted URL", started, pasted);
    let started = Instant::now();
    let garbage = host.normalize_key(&source, " ?? not a key ?? ").await;
    report.push("normalize-key garbage", started, answered(garbage));
    let started = Instant::now();
    let url = host.issue_url(&source, &key).await;
    report.push("issue-url", started, answered(url));
    let started = Instant::now();
    let mut templated = source.clone();
    templated.issue_url_template = Some("{baseUrl}/custom/{key}".into());
    templated.create_url_template = Some("{baseUrl}/custom/new".into());
    report.push(
        "issue-url template",
        started,
        match host.issue_url(&templated, &key).await {
            Ok(u) if u.starts_with(&format!("{}/custom/", templated.base_url)) => {
                Ok(format!("{u:?}"))
            }
            Ok(u) => Err(format!(
                "ignores the source's issue URL template: answered {u:?}"
            )),
            Err(e) => Err(format!(
                "fails with the issue URL template {{baseUrl}}/custom/{{key}}: {e}"
            )),
        },
    );
    let started = Instant::now();
    let create = host.create_url(&source).await;
    report.push("create-url", started, answered(create));

    // Network exports: the stand-in (404 to everything, or the recorded answers, which must
    // then succeed), nothing listening, and the real tracker if given (which must accept the
    // credentials).
    let keys = vec![key.clone(), key.clone()];
    let (stand_in_label, stand_in_expects) = match options.fixtures {
        Some(_) => ("fixtures", Expect::Success),
        None => ("stand-in", Expect::Answer),
    };
    for (label, base, expect) in [
        (stand_in_label, stand_in_base.clone(), stand_in_expects),
        (
            "unreachable",
            "http://127.0.0.1:1/acme/shop".to_string(),
            Expect::Answer,
        ),
    ]
    .into_iter()
    .chain((options.base_url.clone()).map(|b| ("tracker", b, Expect::Authorized)))
    {
        let source = sample_source(&info, options, &base, &stand_in.url);
        let started = Instant::now();
        let test = host.test_connection(&source).await;
        report.push(
            &format!("test-connection ({label})"),
            started,
            expect.judge(test, |c| Ok(c.account.clone())),
        );
        let started = Instant::now();
        let issue = host.fetch_issue(&source, &key).await;
        report.push(
            &format!("fetch-issue ({label})"),
            started,
            expect.judge(issue, |i| carries(i, &key)),
        );
        let started = Instant::now();
        let batch = host.fetch_issues(&source, &keys).await;
        report.push(
            &format!("fetch-issues ({label})"),
            started,
            expect.judge(batch, |results| {
                for result in results {
                    match result {
                        Ok(issue) => {
                            carries(issue, &key)?;
                        }
                        Err(e) if expect == Expect::Success => {
                            return Err(format!("a key of the batch failed: {e}"));
                        }
                        Err(_) => {}
                    }
                }
                Ok(format!("{} results", results.len()))
            }),
        );
    }
    check_1_1(&host, &plugin, &source, options, &mut report).await;
    report
}

/// The exports contract 1.1 added: `describe-comments` and `describe-events` (their shape),
/// `parse-event` of the fixtures' events and of an irrelevant one, and `add-comment` against
/// the real tracker only (`--base-url`: it posts a real comment).
async fn check_1_1(
    host: &PluginHost,
    plugin: &LoadedPlugin,
    source: &SourceConfig,
    options: &CheckOptions,
    report: &mut CheckReport,
) {
    let info = &plugin.info;
    let started = Instant::now();
    let comments = match (&info.comments, plugin.unsupported(Capability::AddComments)) {
        (Some(c), None) => Ok(format!("{}, at most {} characters", c.format, c.max_length)),
        (_, why) => Ok(why.unwrap_or_default()),
    };
    report.push("describe-comments", started, comments);
    let started = Instant::now();
    report.push("describe-events", started, lint_events(plugin));

    if let Some(first) = info.events.first() {
        check_parse_event(host, source, options, &first.id, report).await;
    }

    if let (Some(base), None) = (
        &options.base_url,
        plugin.unsupported(Capability::AddComments),
    ) {
        let source = sample_source(info, options, base, base);
        let key = host.normalize_key(&source, &info.key_example).await;
        let key = key.unwrap_or_else(|_| info.key_example.clone());
        let started = Instant::now();
        let text = "Posted by `integration-host check`.";
        let comment = host.add_comment(&source, &key, text).await;
        report.push(
            "add-comment (tracker)",
            started,
            Expect::Authorized.judge(comment, |c| Ok(format!("comment {} {:?}", c.id, c.web_url))),
        );
    }
}

/// `parse-event` of every event of the fixtures (each must succeed with canonical keys) and of
/// an irrelevant one (an answer, not a fault); `first` is the default scheme id.
async fn check_parse_event(
    host: &PluginHost,
    source: &SourceConfig,
    options: &CheckOptions,
    first: &str,
    report: &mut CheckReport,
) {
    let fixtures = options.fixtures.iter().flat_map(|f| &f.events);
    let irrelevant = RecordedEvent {
        scheme: None,
        headers: BTreeMap::new(),
        body: serde_json::json!({"irrelevant": true}),
    };
    for (i, recorded) in fixtures.chain([&irrelevant]).enumerate() {
        let label = match std::ptr::eq(recorded, &irrelevant) {
            true => "parse-event (irrelevant)".to_string(),
            false => format!("parse-event (fixtures event {i})"),
        };
        let event = Event {
            scheme: recorded.scheme.clone().unwrap_or_else(|| first.to_string()),
            headers: (recorded.headers.iter())
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
            body: match &recorded.body {
                serde_json::Value::String(text) => text.clone().into_bytes(),
                json => json.to_string().into_bytes(),
            },
        };
        let started = Instant::now();
        let outcome = host.parse_event(source, event).await;
        let judged = match (std::ptr::eq(recorded, &irrelevant), outcome) {
            (true, outcome) => answered(outcome),
            (false, Ok(changes)) => canonical_changes(host, source, &changes).await,
            (false, Err(e)) => Err(format!("the recorded event failed: {e}")),
        };
        report.push(&label, started, judged);
    }
}

/// Each change's key must be canonical (normalise to itself), and its issue carry that key.
async fn canonical_changes(
    host: &PluginHost,
    source: &SourceConfig,
    changes: &[super::EventChange],
) -> Result<String, String> {
    for change in changes {
        match host.normalize_key(source, &change.key).await {
            Ok(k) if k == change.key => {}
            other => {
                return Err(format!(
                    "the change's key {:?} is not canonical (normalize-key: {other:?})",
                    change.key
                ));
            }
        }
        if let Some(issue) = &change.issue {
            carries(issue, &change.key)?;
        }
    }
    Ok(format!("{} changes", changes.len()))
}

/// The webhook schemes must have distinct ids, valid header names, JSON pointers, and set-up
/// steps that say where the webhook URL goes.
fn lint_events(plugin: &LoadedPlugin) -> Result<String, String> {
    let schemes = &plugin.info.events;
    if let Some(why) = plugin.unsupported(Capability::ProcessWebhooks) {
        return Ok(why);
    }
    let mut problems = Vec::new();
    // A `{setting:NAME}` placeholder stands for the header the source's setting names.
    let header = |name: &str| {
        (name.starts_with("{setting:") && name.ends_with('}'))
            || reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
    };
    for (i, scheme) in schemes.iter().enumerate() {
        let at = format!("events[{i}] ({:?})", scheme.id);
        if scheme.id.trim().is_empty() || schemes[..i].iter().any(|s| s.id == scheme.id) {
            problems.push(format!("{at}: the id is empty or used twice"));
        }
        if !scheme.setup.contains("{webhookUrl}") {
            problems.push(format!(
                "{at}: the set-up steps never say where {{webhookUrl}} goes"
            ));
        }
        let mut headers = Vec::new();
        match &scheme.authenticity {
            Authenticity::HmacSha256(h) => {
                headers.push(&h.header);
                if let SignedContent::IdTimestampBody(ids) = &h.content {
                    headers.extend([&ids.id, &ids.timestamp]);
                }
            }
            Authenticity::TokenHeader(name) => headers.push(name),
            Authenticity::Basic => {}
        }
        let locators = [
            scheme.replay.as_ref().map(|r| &r.timestamp),
            scheme.delivery_id.as_ref(),
        ];
        for locator in locators.into_iter().flatten() {
            match locator {
                Locator::Header(name) => headers.push(name),
                Locator::BodyPointer(p) if !p.is_empty() && !p.starts_with('/') => {
                    problems.push(format!("{at}: {p:?} is not a JSON pointer"));
                }
                Locator::BodyPointer(_) => {}
            }
        }
        for name in headers.into_iter().filter(|name| !header(name)) {
            problems.push(format!("{at}: {name:?} is not a header name"));
        }
    }
    if problems.is_empty() {
        let ids: Vec<&str> = schemes.iter().map(|s| s.id.as_str()).collect();
        Ok(format!("schemes {ids:?}"))
    } else {
        Err(problems.join("; "))
    }
}

/// What a network check accepts besides a value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Any contract error (the tracker is a 404 stand-in, or unreachable).
    Answer,
    /// Nothing but success (the stand-in serves recorded answers of the happy path).
    Success,
    /// Any contract error but a refused credential (a real tracker, real credentials).
    Authorized,
}

impl Expect {
    /// Judges `outcome`: a value by `check`, a contract error by `self`, a fault fails.
    fn judge<T>(
        self,
        outcome: Result<T, PluginError>,
        check: impl FnOnce(&T) -> Result<String, String>,
    ) -> Result<String, String> {
        match outcome {
            Ok(value) => check(&value),
            Err(PluginError::Provider(e)) => match (self, &e) {
                (Expect::Success, _) => Err(format!(
                    "failed on the recorded answers ({}): {e}",
                    e.code()
                )),
                (
                    Expect::Authorized,
                    ProviderError::Unauthorized(_) | ProviderError::Forbidden(_),
                ) => Err(format!("the tracker refused the credentials: {e}")),
                _ => Ok(format!("provider error ({}): {e}", e.code())),
            },
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A fetched issue must carry the canonical key it was asked for.
fn carries(issue: &Issue, key: &str) -> Result<String, String> {
    if issue.key == key {
        Ok(format!("{} [{}] {}", issue.key, issue.status, issue.title))
    } else {
        Err(format!(
            "answered key {:?} for {key:?}: fetched issues must carry the canonical key",
            issue.key
        ))
    }
}

/// `input` must normalise to the canonical `key`.
fn canonical(
    normalized: Result<String, PluginError>,
    input: &str,
    key: &str,
) -> Result<String, String> {
    match normalized {
        Ok(k) if k == key => Ok(format!("{input:?} -> {k:?}")),
        Ok(k) => Err(format!("{input:?} -> {k:?}, not the canonical key {key:?}")),
        Err(e) => Err(format!("{input:?} is refused ({e}); it must give {key:?}")),
    }
}

/// The canonical form of the key example must match the default key pattern, compiled by
/// the host's rules, or every source created with the default refuses every key.
fn pattern_check(info: &ProviderInfo, key: &str) -> Result<String, String> {
    let Some(pattern) = &info.default_key_pattern else {
        return Ok("none".into());
    };
    let regex = regex::Regex::new(pattern)
        .map_err(|e| format!("{pattern:?} is not a pattern the host accepts: {e}"))?;
    if regex.is_match(key) {
        Ok(format!("{key:?} matches {pattern:?}"))
    } else {
        Err(format!(
            "the example's canonical key {key:?} does not match {pattern:?}: sources created \
             with the default pattern would refuse it"
        ))
    }
}

/// A value or a contract error passes; a fault fails.
fn answered<T: fmt::Debug>(outcome: Result<T, PluginError>) -> Result<String, String> {
    match outcome {
        Ok(v) => Ok(format!("{v:?}")),
        Err(PluginError::Provider(e)) => Ok(format!("provider error ({}): {e}", e.code())),
        Err(e) => Err(e.to_string()),
    }
}

/// What the host cannot check at load time but a vendor should get right.
fn lint(info: &ProviderInfo) -> Result<String, String> {
    let mut problems = Vec::new();
    if info.version.trim().is_empty() {
        problems.push("version is empty".to_string());
    }
    if info.key_example.trim().is_empty() {
        problems.push("key-example is empty".into());
    }
    // Empty means "no default" (Custom Tracker); otherwise it must place the key.
    let template = &info.default_issue_url_template;
    if !template.is_empty() && !template.contains("{key}") {
        problems.push("default-issue-url-template has no {key}".into());
    }
    let example_ok = url::Url::parse(&info.base_url_example)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if !example_ok {
        problems.push(format!(
            "base-url-example {:?} is not an http(s) URL",
            info.base_url_example
        ));
    }
    let mut ids: Vec<&str> = info.auth_types.iter().map(|a| a.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    if ids.len() != info.auth_types.len() {
        problems.push("two auth types share an id".into());
    }
    let mut names: Vec<&str> = info.settings.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    names.dedup();
    if names.len() != info.settings.len() {
        problems.push("two settings share a name".into());
    }
    if problems.is_empty() {
        Ok(format!(
            "{} {} {:?}: {} auth types, {} settings",
            info.id,
            info.version,
            info.name,
            info.auth_types.len(),
            info.settings.len()
        ))
    } else {
        Err(problems.join("; "))
    }
}

/// A source of the plugin at `base_url` with sample values in every required field and
/// setting, then the fixtures' settings (`{standIn}` is `stand_in`), then the caller's own
/// values.
fn sample_source(
    info: &ProviderInfo,
    options: &CheckOptions,
    base_url: &str,
    stand_in: &str,
) -> SourceConfig {
    let auth = options
        .auth_type
        .as_deref()
        .and_then(|id| info.auth_type(id))
        .or(info.auth_types.first());
    let mut source = SourceConfig {
        provider: info.id.clone(),
        base_url: base_url.trim_end_matches('/').into(),
        auth_type: auth.map(|a| a.id.clone()).unwrap_or_default(),
        ..Default::default()
    };
    for field in auth.iter().flat_map(|a| &a.fields) {
        if field.secret {
            source
                .secrets
                .insert(field.name.clone(), "check-sample-secret".into());
        } else if field.required {
            source.fields.insert(field.name.clone(), "sample".into());
        }
    }
    for setting in info.settings.iter().filter(|s| s.required) {
        let value = match setting.kind {
            super::model::SettingKind::Url => source.base_url.clone(),
            super::model::SettingKind::Text => "sample".into(),
        };
        source.settings.insert(setting.name.clone(), value);
    }
    for (name, value) in options.fixtures.iter().flat_map(|f| &f.settings) {
        let value = value.replace("{standIn}", stand_in);
        source.settings.insert(name.clone(), value);
    }
    source.fields.extend(options.fields.clone());
    source.secrets.extend(options.secrets.clone());
    source.settings.extend(options.settings.clone());
    source
}

/// A throwaway tracker on 127.0.0.1 that answers the recorded answers, and a JSON 404 to
/// everything else.
struct StandIn {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl StandIn {
    async fn start(fixtures: Fixtures) -> std::io::Result<StandIn> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let responses = std::sync::Arc::new((fixtures.responses, url.clone()));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let responses = responses.clone();
                let answer = hyper::service::service_fn(move |req| {
                    let (responses, url) = &*responses;
                    let response = match responses.iter().find(|r| r.answers(&req)) {
                        Some(recorded) => recorded.response(url),
                        None => not_found(),
                    };
                    std::future::ready(Ok::<_, std::convert::Infallible>(response))
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), answer);
                tokio::spawn(connection);
            }
        });
        Ok(StandIn { url, task })
    }
}

/// The stand-in's answer to what no recorded answer matches.
fn not_found() -> Response<String> {
    let body = r#"{"message":"Not Found","errors":["no such thing on the check's stand-in"]}"#;
    let mut response = Response::new(body.to_string());
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

impl Recorded {
    fn answers<B>(&self, req: &Request<B>) -> bool {
        let uri = req.uri();
        let path = match self.path.contains('?') {
            true => uri.path_and_query().map_or(uri.path(), |p| p.as_str()),
            false => uri.path(),
        };
        path == self.path
            && (self.method.as_ref()).is_none_or(|m| m.eq_ignore_ascii_case(req.method().as_str()))
    }

    fn response(&self, stand_in: &str) -> Response<String> {
        let (body, content_type) = match &self.body {
            serde_json::Value::String(text) => (text.clone(), "text/plain"),
            serde_json::Value::Null => (String::new(), "text/plain"),
            json => (json.to_string(), "application/json"),
        };
        let mut response = Response::new(body.replace("{standIn}", stand_in));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                headers.insert(name, value);
            }
        }
        response
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}
