//! Helpers shared by all plugins: sources, templates, HTTP + JSON, and error mapping.

use crate::bindings::testorchestrator::provider::{http, log};
use crate::{
    AuthType, CredentialScheme, HttpError, HttpResponse, Method, ProviderError, RateLimit, Source,
};

/// The value of a provider setting, if the admin set a non-empty one.
pub fn setting<'a>(source: &'a Source, name: &str) -> Option<&'a str> {
    lookup(&source.settings, name)
}

/// The value of a non-secret auth field (e.g. the account email), if set.
pub fn auth_field<'a>(source: &'a Source, name: &str) -> Option<&'a str> {
    lookup(&source.auth_fields, name)
}

fn lookup<'a>(pairs: &'a [crate::Pair], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.value.trim())
        .filter(|v| !v.is_empty())
}

/// Renders a URL template: `{baseUrl}` becomes the base URL without its trailing slash and
/// `{key}` the key (percent-encoded where a URL needs it). Unknown text is kept as is.
pub fn render_template(template: &str, base_url: &str, key: Option<&str>) -> String {
    let base = base_url.trim_end_matches('/');
    let out = template.replace("{baseUrl}", base);
    match key {
        Some(key) => out.replace("{key}", &encode_component(key)),
        None => out,
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Writes a line to the host's log, tagged with this plugin's id.
pub fn log_info(message: &str) {
    log::write(log::Level::Info, message);
}

/// A request under construction; see [`get`] and [`post_json`].
pub struct RequestBuilder(http::Request);

/// Starts an authenticated GET with `Accept: application/json`.
pub fn get(url: impl Into<String>) -> RequestBuilder {
    RequestBuilder(http::Request {
        method: Method::Get,
        url: url.into(),
        headers: vec![("accept".into(), "application/json".into())],
        body: None,
        authenticated: true,
    })
}

/// Starts an authenticated POST of a JSON body.
pub fn post_json(url: impl Into<String>, body: &serde_json::Value) -> RequestBuilder {
    RequestBuilder(http::Request {
        method: Method::Post,
        url: url.into(),
        headers: vec![
            ("accept".into(), "application/json".into()),
            ("content-type".into(), "application/json".into()),
        ],
        body: Some(body.to_string().into_bytes()),
        authenticated: true,
    })
}

impl RequestBuilder {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.0.headers.push((name.into(), value.into()));
        self
    }

    /// Sends the request without credentials.
    pub fn anonymous(mut self) -> Self {
        self.0.authenticated = false;
        self
    }

    /// Sends the request through the host. Transport failures become
    /// [`ProviderError::Unreachable`] (or `Provider` for a refused or oversized request).
    pub fn send(self) -> Result<HttpResponse, ProviderError> {
        http::send(&self.0).map_err(transport_error)
    }
}

/// Maps a transport failure to the error an admin can act on, naming the tracker (the
/// plugin's `describe().name`, registered by [`export_provider!`](crate::export_provider)).
pub fn transport_error(e: HttpError) -> ProviderError {
    let tracker = tracker_name();
    match e {
        HttpError::Denied(m) => {
            ProviderError::Unreachable(format!("request refused by the host: {m}"))
        }
        HttpError::InvalidRequest(m) => {
            ProviderError::InvalidInput(format!("invalid request: {m}"))
        }
        HttpError::Unreachable(m) => {
            ProviderError::Unreachable(format!("{tracker} could not be reached: {m}"))
        }
        HttpError::Timeout => ProviderError::Unreachable(format!(
            "{tracker} did not answer within the time limit (connecting or waiting for the response)"
        )),
        HttpError::TooLarge => {
            ProviderError::Provider(format!("{tracker}'s response was too large"))
        }
        HttpError::BudgetExhausted => ProviderError::Provider(BUDGET_EXHAUSTED.into()),
    }
}

/// The message of the error a request gets once its call has made the most requests it may.
pub const BUDGET_EXHAUSTED: &str = "too many requests for one call";

/// True for the error of a request refused because its call used up its request budget.
pub fn is_budget_exhausted(e: &ProviderError) -> bool {
    matches!(e, ProviderError::Provider(m) if m == BUDGET_EXHAUSTED)
}

/// How to get the tracker's name for messages; see [`transport_error`].
static TRACKER_NAME: std::sync::OnceLock<fn() -> String> = std::sync::OnceLock::new();

/// Registers how to get the tracker's name (done by [`export_provider!`](crate::export_provider)).
#[doc(hidden)]
pub fn register_tracker_name(name: fn() -> String) {
    let _ = TRACKER_NAME.set(name);
}

fn tracker_name() -> String {
    TRACKER_NAME
        .get()
        .map(|name| name())
        .unwrap_or_else(|| "the tracker".into())
}

/// Reads keys one at a time, for a batch the tracker refused (`cause` says how). Stops on
/// errors that would fail every other key too (see [`is_batch_fatal`]); once the call's request
/// budget is spent, the keys left get an error naming the cause, to be read on a later refresh.
pub fn fetch_each(
    keys: &[String],
    cause: &str,
    mut fetch: impl FnMut(&str) -> Result<crate::Issue, ProviderError>,
) -> Result<Vec<Result<crate::Issue, ProviderError>>, ProviderError> {
    log::write(
        log::Level::Warn,
        &format!("batch read refused ({cause}); reading the issues one by one"),
    );
    let mut out = Vec::with_capacity(keys.len());
    let mut spent = false;
    for key in keys {
        if !spent {
            match fetch(key) {
                Err(e) if is_batch_fatal(&e) => return Err(e),
                Err(e) if is_budget_exhausted(&e) => spent = true,
                other => {
                    out.push(other);
                    continue;
                }
            }
        }
        out.push(Err(ProviderError::Provider(format!(
            "not read this time: {cause}, and reading the issues one by one used up this call's \
             request budget; it is read again on the next refresh"
        ))));
    }
    Ok(out)
}

impl HttpResponse {
    /// The first value of a header (names are lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; a parse failure is a `provider` error naming the status and
    /// where the JSON broke, with an [`excerpt`] only of a body that does not look like JSON (an
    /// HTML error page): a broken JSON body may hold other issues' data.
    pub fn json(&self) -> Result<serde_json::Value, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let text = self.text();
            let start = text.trim_start();
            let detail = if start.is_empty() {
                "an empty body".to_string()
            } else if start.starts_with(['{', '[']) {
                format!("malformed JSON ({e})")
            } else {
                format!("a body that is not JSON: {}", excerpt(&text))
            };
            ProviderError::Provider(format!(
                "{} answered HTTP {} with {detail}",
                tracker_name(),
                self.status
            ))
        })
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Seconds to wait if this response says we are rate limited: a 429, or a 403 with
    /// `X-RateLimit-Remaining: 0` (GitHub). Reads `Retry-After` (seconds), then
    /// `X-RateLimit-Reset` / `RateLimit-Reset` (epoch seconds or delta), default 60.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        let remaining_zero = ["x-ratelimit-remaining", "ratelimit-remaining"]
            .iter()
            .any(|h| self.header(h).map(str::trim) == Some("0"));
        if self.status != 429 && !(self.status == 403 && remaining_zero) {
            return None;
        }
        let wait = self
            .header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .or_else(|| {
                ["x-ratelimit-reset", "ratelimit-reset"]
                    .iter()
                    .find_map(|h| self.header(h)?.trim().parse::<u64>().ok())
                    .map(reset_to_delta)
            })
            .unwrap_or(60);
        Some(RateLimit {
            retry_after_secs: wait.clamp(1, u32::MAX as u64) as u32,
            message: format!("the tracker answered HTTP {}: rate limited", self.status),
        })
    }
}

/// A reset header holds either a delta in seconds or a Unix time; values above a year are
/// taken as Unix time and turned into a delta from the guest's clock.
fn reset_to_delta(reset: u64) -> u64 {
    const YEAR: u64 = 365 * 24 * 3600;
    if reset < YEAR {
        return reset;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    reset.saturating_sub(now).max(1)
}

/// The common mapping of an unsuccessful response to an error, for statuses a provider has no
/// special reading of. `what` names the thing asked for, e.g. "issue PROJ-7".
pub fn status_error(resp: &HttpResponse, what: &str) -> ProviderError {
    if let Some(limit) = resp.rate_limit() {
        return ProviderError::RateLimited(limit);
    }
    let body = excerpt(&resp.text());
    match resp.status {
        400 => ProviderError::InvalidInput(format!(
            "the tracker rejected the request for {what}: {body}"
        )),
        401 => ProviderError::Unauthorized(
            "the tracker rejected the credentials (HTTP 401); check the token and that it has not expired"
                .to_string(),
        ),
        403 => ProviderError::Forbidden(format!(
            "the credentials are valid but have no access to {what} (HTTP 403)"
        )),
        404 => ProviderError::NotFound(format!("{what} was not found (HTTP 404)")),
        s if s >= 500 => {
            ProviderError::Provider(format!("the tracker failed with HTTP {s}: {body}"))
        }
        s => ProviderError::Provider(format!("unexpected HTTP {s} for {what}: {body}")),
    }
}

/// Errors after which asking for the next key of a batch is pointless.
pub fn is_batch_fatal(e: &ProviderError) -> bool {
    matches!(
        e,
        ProviderError::Unauthorized(_)
            | ProviderError::RateLimited(_)
            | ProviderError::Unreachable(_)
    )
}

/// Errors of a batch request after which reading the keys one by one may still work: the
/// tracker refused or garbled the batch query itself (not the credentials, the rate limit, the
/// network or access, which single reads would meet too).
pub fn is_batch_refusal(e: &ProviderError) -> bool {
    !is_batch_fatal(e) && !matches!(e, ProviderError::Forbidden(_)) && !is_budget_exhausted(e)
}

/// The text of an error, without its category.
pub fn error_message(e: &ProviderError) -> &str {
    match e {
        ProviderError::InvalidInput(m)
        | ProviderError::Unauthorized(m)
        | ProviderError::Forbidden(m)
        | ProviderError::NotFound(m)
        | ProviderError::Unreachable(m)
        | ProviderError::Unsupported(m)
        | ProviderError::Provider(m) => m,
        ProviderError::RateLimited(limit) => &limit.message,
    }
}

/// The first 200 characters of a body, on one line, for error messages.
pub fn snippet(text: &str) -> String {
    one_line(text, 200)
}

/// The first 80 characters of a raw body, on one line: enough to recognise an HTML error page,
/// too little to carry much of what the body holds.
pub fn excerpt(text: &str) -> String {
    one_line(text, 80)
}

/// `text` on one line, cut after `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    }
}

/// A string field of a JSON object by pointer (`/fields/status/name`), if present and a string.
pub fn str_at<'a>(value: &'a serde_json::Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(|v| v.as_str())
}

/// Strips the base URL (or any http(s) origin) off a pasted issue URL and returns the path
/// segments after it, or `None` if `input` is not a URL.
pub fn url_path_segments(input: &str) -> Option<Vec<String>> {
    let rest = input
        .strip_prefix("https://")
        .or_else(|| input.strip_prefix("http://"))?;
    let path = rest.split_once('/').map(|(_, p)| p).unwrap_or("");
    let path = path.split(['?', '#']).next().unwrap_or("");
    Some(
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

/// Splits `scheme://host[:port]/a/b?q#f` into the lower-case scheme (http or https only), the
/// authority and the non-empty path segments; `None` if `url` is not an absolute http(s) URL.
pub fn split_url(url: &str) -> Option<(String, String, Vec<String>)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return None;
    }
    let segments = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Some((scheme, host.to_string(), segments))
}

/// Decodes `%XX` escapes (e.g. `My%20Project`); malformed escapes or a result that is not UTF-8
/// leave the text as it was.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

/// Parses a positive issue number (`1`..), rejecting signs, zero, leading zeros and
/// non-ASCII digits.
pub fn parse_issue_number(text: &str) -> Option<u64> {
    if text.is_empty() || text.starts_with('0') || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_trims_base_and_encodes_key() {
        assert_eq!(
            render_template(
                "{baseUrl}/browse/{key}",
                "https://a.atlassian.net/",
                Some("PROJ-1")
            ),
            "https://a.atlassian.net/browse/PROJ-1"
        );
        assert_eq!(
            render_template("{baseUrl}/x?q={key}", "http://h", Some("a b")),
            "http://h/x?q=a%20b"
        );
    }

    #[test]
    fn issue_numbers() {
        assert_eq!(parse_issue_number("12"), Some(12));
        for bad in ["", "0", "012", "-1", "+1", "1.0", "١٢"] {
            assert_eq!(parse_issue_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn url_segments() {
        assert_eq!(
            url_path_segments("https://github.com/o/r/issues/5?x#y").unwrap(),
            vec!["o", "r", "issues", "5"]
        );
        assert!(url_path_segments("PROJ-1").is_none());
    }
}

/// An extra origin that receives the source's credentials, for `ProviderInfo::extra_origins`
/// (a plain origin there is reached without them). See `provider-info.extra-origins`.
pub fn credentialed(origin: &str) -> String {
    format!("credentialed {origin}")
}

/// The auth type of a public tracker: id `none`, no fields, nothing applied.
pub fn no_auth() -> AuthType {
    AuthType {
        id: "none".into(),
        label: "None".into(),
        fields: vec![],
        scheme: CredentialScheme::None,
    }
}
