//! The plugins' only way out: an allow-listed HTTP client that applies credentials.
//!
//! Invariants:
//! - a request leaves only for an origin (scheme, host, port) on the call's allow-list, and a
//!   redirect is followed only while it stays on the list;
//! - credentials are added here, from the source's secrets, to requests the guest marks
//!   authenticated, and only for the origin the guest asked for (never across a redirect to
//!   another origin); the guest's own `Authorization`-like headers are dropped;
//! - every call has a request budget, a response-size cap and a deadline.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::model::{AuthType, CredentialScheme, ProviderInfo, SettingKind, SourceConfig};

/// The most redirects one request may follow.
const MAX_REDIRECTS: usize = 5;

/// Headers only the host may set.
const RESERVED_HEADERS: [&str; 5] = [
    "authorization",
    "cookie",
    "host",
    "proxy-authorization",
    "content-length",
];

/// An origin: scheme, lower-case host and port, the unit of the allow-list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of an absolute http(s) URL.
    pub fn of(url: &url::Url) -> Option<Origin> {
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        Some(Origin {
            scheme: url.scheme().to_string(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }

    /// Parses `https://host[:port]` (a path, if any, is ignored).
    pub fn parse(text: &str) -> Option<Origin> {
        Origin::of(&url::Url::parse(text).ok()?)
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// Outcome of a request that got no response, in the WIT's terms.
#[derive(Debug)]
pub enum SendError {
    /// Not on the allow-list.
    Denied(String),
    /// Malformed URL or header.
    InvalidRequest(String),
    /// DNS, connect or TLS failure.
    Unreachable(String),
    /// Out of time.
    Timeout,
    /// Body over the cap.
    TooLarge,
    /// Out of requests for this call.
    BudgetExhausted,
}

/// A response, status included whatever it is.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers, names lower case.
    pub headers: Vec<(String, String)>,
    /// Body, at most the cap.
    pub body: Vec<u8>,
}

/// A request as the guest asked for it.
pub struct Outgoing {
    /// Method name, upper case.
    pub method: reqwest::Method,
    /// Absolute URL.
    pub url: String,
    /// Guest headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Option<Vec<u8>>,
    /// Apply credentials.
    pub authenticated: bool,
}

/// The per-call egress state: what may be reached, with which credentials, until when.
pub struct Egress {
    client: reqwest::Client,
    allow: Vec<Origin>,
    credential: Option<(HeaderName, HeaderValue)>,
    deadline: Instant,
    requests_left: u32,
    max_body: usize,
}

impl Egress {
    /// Builds the state for one call on `source` by a plugin described by `info`.
    pub fn new(
        client: reqwest::Client,
        info: &ProviderInfo,
        source: &SourceConfig,
        deadline: Instant,
        max_requests: u32,
        max_body: usize,
    ) -> Egress {
        Egress {
            client,
            allow: allow_list(info, source),
            credential: info
                .auth_type(&source.auth_type)
                .and_then(|auth| credential_header(auth, &source.fields, &source.secrets)),
            deadline,
            requests_left: max_requests,
            max_body,
        }
    }

    /// Sends one request, following redirects that stay on the allow-list.
    pub async fn send(&mut self, req: Outgoing) -> Result<Reply, SendError> {
        if self.requests_left == 0 {
            return Err(SendError::BudgetExhausted);
        }
        self.requests_left -= 1;

        let mut url = url::Url::parse(&req.url)
            .map_err(|e| SendError::InvalidRequest(format!("bad URL {:?}: {e}", req.url)))?;
        let first_origin = self.check(&url)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &req.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| SendError::InvalidRequest(format!("bad header name {name:?}")))?;
            if RESERVED_HEADERS.contains(&name.as_str()) {
                continue;
            }
            let value = HeaderValue::from_str(value)
                .map_err(|_| SendError::InvalidRequest(format!("bad value for header {name}")))?;
            headers.append(name, value);
        }
        let mut method = req.method;
        let mut body = req.body;

        for _ in 0..=MAX_REDIRECTS {
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(SendError::Timeout);
            }
            let mut builder = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone())
                .timeout(remaining);
            if req.authenticated
                && let Some((name, value)) = &self.credential
                && Origin::of(&url).as_ref() == Some(&first_origin)
            {
                builder = builder.header(name, value);
            }
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            let resp = builder.send().await.map_err(|e| transport_error(&url, e))?;
            let status = resp.status();
            if status.is_redirection()
                && let Some(location) = resp.headers().get(reqwest::header::LOCATION)
            {
                let next = location
                    .to_str()
                    .ok()
                    .and_then(|l| url.join(l).ok())
                    .ok_or_else(|| {
                        SendError::InvalidRequest("unreadable redirect location".into())
                    })?;
                self.check(&next).map_err(|_| {
                    SendError::Denied(format!(
                        "{url} redirected to {}, which this source may not reach",
                        Origin::of(&next).map_or_else(|| next.to_string(), |o| o.to_string())
                    ))
                })?;
                if matches!(status.as_u16(), 301..=303) && method != reqwest::Method::HEAD {
                    method = reqwest::Method::GET;
                    body = None;
                }
                url = next;
                continue;
            }
            return self.read(resp).await;
        }
        Err(SendError::Unreachable(format!(
            "more than {MAX_REDIRECTS} redirects from {}",
            req.url
        )))
    }

    fn check(&self, url: &url::Url) -> Result<Origin, SendError> {
        let origin = Origin::of(url)
            .ok_or_else(|| SendError::InvalidRequest(format!("{url} is not an http(s) URL")))?;
        if self.allow.contains(&origin) {
            Ok(origin)
        } else {
            Err(SendError::Denied(format!(
                "{origin} is not an allowed destination for this source"
            )))
        }
    }

    async fn read(&self, mut resp: reqwest::Response) -> Result<Reply, SendError> {
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(SendError::TooLarge);
        }
        let mut body = Vec::new();
        loop {
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(remaining, resp.chunk())
                .await
                .map_err(|_| SendError::Timeout)?
                .map_err(|e| SendError::Unreachable(format!("reading the response failed: {e}")))?;
            let Some(chunk) = chunk else { break };
            if body.len() + chunk.len() > self.max_body {
                return Err(SendError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// The origins a call on `source` may reach: the base URL's, those of URL settings the admin
/// set, and the plugin's declared extra origins.
pub fn allow_list(info: &ProviderInfo, source: &SourceConfig) -> Vec<Origin> {
    let url_settings = info
        .settings
        .iter()
        .filter(|s| s.kind == SettingKind::Url)
        .filter_map(|s| source.settings.get(&s.name));
    std::iter::once(&source.base_url)
        .chain(url_settings)
        .chain(info.extra_origins.iter())
        .filter_map(|u| Origin::parse(u))
        .collect()
}

/// The header that carries this auth type's credentials, if its fields are set.
fn credential_header(
    auth: &AuthType,
    fields: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, String>,
) -> Option<(HeaderName, HeaderValue)> {
    let value_of = |name: &str| {
        secrets
            .get(name)
            .or_else(|| fields.get(name))
            .map(String::as_str)
    };
    let (name, value) = match &auth.scheme {
        CredentialScheme::None => return None,
        CredentialScheme::Basic {
            user_field,
            password_field,
        } => {
            let user = user_field.as_deref().and_then(value_of).unwrap_or("");
            let password = value_of(password_field)?;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            (reqwest::header::AUTHORIZATION, format!("Basic {token}"))
        }
        CredentialScheme::Bearer { field } => (
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", value_of(field)?),
        ),
        CredentialScheme::Header {
            name,
            prefix,
            field,
        } => (
            HeaderName::from_bytes(name.as_bytes()).ok()?,
            format!("{prefix}{}", value_of(field)?),
        ),
    };
    let mut value = HeaderValue::from_str(&value).ok()?;
    value.set_sensitive(true);
    Some((name, value))
}

fn transport_error(url: &url::Url, e: reqwest::Error) -> SendError {
    let origin = Origin::of(url).map_or_else(|| url.to_string(), |o| o.to_string());
    if e.is_timeout() {
        return SendError::Timeout;
    }
    // The innermost cause names the real problem (refused, DNS, certificate).
    let mut cause: &dyn std::error::Error = &e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let what = if e.is_connect() {
        "could not connect to"
    } else {
        "request failed for"
    };
    SendError::Unreachable(format!("{what} {origin}: {cause}"))
}

/// The shared HTTP client: no automatic redirects (followed by hand, see [`Egress::send`]),
/// rustls with the webpki roots, short connect timeout, pooled connections.
pub fn client() -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(8)
        .user_agent(concat!("integration-sources/", env!("CARGO_PKG_VERSION")))
        .build()?)
}
