//! `integration-host check plugin.wasm`: a conformance check a plugin author runs before
//! uploading. It loads the plugin in the same sandbox the service uses (a [`PluginHost`] with
//! the given limits) and calls every export with sample inputs: against a throwaway local
//! stand-in tracker that answers `404` to everything, and against a base URL where nothing
//! listens. Every export must answer with a value or a contract error within the limits,
//! never trap, stall or answer malformed output. One [`CheckLine`] per check.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Limits, PluginError, PluginHost, ProviderInfo, SourceConfig};

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

    let stand_in = match StandIn::start().await {
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
    let source = sample_source(&info, options, &format!("{}/acme/shop", stand_in.url));

    // Offline exports: the plugin's own key example must be accepted.
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
            Err(PluginError::Provider(e)) => Ok(format!("provider error ({}): {e}", e.code())),
            Err(e) => Err(e.to_string()),
        },
    );
    let started = Instant::now();
    let create = host.create_url(&source).await;
    report.push("create-url", started, answered(create));

    // Network exports: a stand-in answering 404 to everything, then nothing listening.
    let keys = vec![key.clone(), key.clone()];
    for (label, base) in [
        ("stand-in", format!("{}/acme/shop", stand_in.url)),
        ("unreachable", "http://127.0.0.1:1/acme/shop".to_string()),
    ]
    .into_iter()
    .chain(options.base_url.clone().map(|b| ("tracker", b)))
    {
        let source = sample_source(&info, options, &base);
        let started = Instant::now();
        let test = host.test_connection(&source).await;
        report.push(
            &format!("test-connection ({label})"),
            started,
            answered(test.map(|c| c.account)),
        );
        let started = Instant::now();
        let issue = host.fetch_issue(&source, &key).await;
        report.push(
            &format!("fetch-issue ({label})"),
            started,
            answered(issue.map(|i| format!("{} [{}] {}", i.key, i.status, i.title))),
        );
        let started = Instant::now();
        let batch = host.fetch_issues(&source, &keys).await;
        report.push(
            &format!("fetch-issues ({label})"),
            started,
            answered(batch.map(|r| format!("{} results", r.len()))),
        );
    }
    report
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
/// setting, then the caller's own values.
fn sample_source(info: &ProviderInfo, options: &CheckOptions, base_url: &str) -> SourceConfig {
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
    source.fields.extend(options.fields.clone());
    source.secrets.extend(options.secrets.clone());
    source.settings.extend(options.settings.clone());
    source
}

/// A throwaway tracker on 127.0.0.1 that answers every request with a JSON 404.
struct StandIn {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl StandIn {
    async fn start() -> std::io::Result<StandIn> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = axum::Router::new().fallback(|| async {
            (
                axum::http::StatusCode::NOT_FOUND,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                r#"{"message":"Not Found","errors":["no such thing on the check's stand-in"]}"#,
            )
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(StandIn { url, task })
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}
