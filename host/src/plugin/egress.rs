//! The plugins' only way out: an allow-listed HTTP client that applies credentials.
//!
//! Invariants:
//! - a request leaves only for an origin (scheme, host, port) on the call's allow-list, and a
//!   redirect is followed only while it stays on the list;
//! - credentials are added here, from the source's secrets, to requests the guest marks
//!   authenticated, and only for origins the admin named (base URL, URL settings) or the plugin
//!   declared credentialed ([`super::model::CREDENTIALED`]): never to another declared origin,
//!   never across a redirect to another origin; the guest's own `Authorization`-like headers
//!   are dropped;
//! - the call's secrets, in every form a tracker may echo them, are redacted ([`Redactor`])
//!   from response headers and bodies before the guest sees them, and from egress errors;
//! - private, loopback and link-local addresses are reached only through origins the admin
//!   named (the base URL, URL settings): a plugin's declared extra origins resolve to public
//!   addresses only ([`Reach::Public`]), whatever their DNS says;
//! - even through origins the admin named, loopback and link-local addresses (the host itself,
//!   the cloud metadata service) are reached only when the operator allows it
//!   (`--allow-loopback-targets`, [`Reach::NotLoopback`] otherwise); private networks are;
//! - these address rules hold for names (checked by the clients' DNS resolver, [`Restricted`])
//!   and for IP literals in a URL (checked before connecting: a resolver never sees those);
//! - every call has a request budget, a response-size cap and a deadline;
//! - every response's rate-limit headers are read here ([`Headroom`]), whatever the plugin;
//! - a source's network settings (extra CA certificates, a proxy) change how a request
//!   travels, never where it may go: the allow-list is checked on the target URL.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

use super::conditional::Validators;
use super::headroom::Headroom;
use super::model::{AuthType, CredentialScheme, ProviderInfo, SettingKind, SourceConfig};
use super::redact::{Redact, Redactor};

/// The most redirects one request may follow.
const MAX_REDIRECTS: usize = 5;

/// Headers only the host may set. `accept-encoding` and `range` among them: a reply is redacted
/// as the bytes it is, so a compressed or partial reply could carry a secret the tracker echoed
/// past the redactor; the host asks for `identity` and refuses any other encoding.
const RESERVED_HEADERS: [&str; 7] = [
    "authorization",
    "cookie",
    "host",
    "proxy-authorization",
    "content-length",
    "accept-encoding",
    "range",
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
#[derive(Clone, Debug)]
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
    /// The source's clients, or why they could not be built (every request then fails with it).
    clients: Result<SourceClients, String>,
    /// Origins the admin named (base URL, URL settings): reached at any address.
    admin_named: Vec<Origin>,
    /// Origins the plugin declared: reached at public addresses only.
    declared: Vec<Origin>,
    /// Origins that receive the credential: the admin's, and those declared credentialed.
    credentialed: Vec<Origin>,
    credential: Option<(HeaderName, HeaderValue)>,
    /// Removes the call's secrets from what comes back.
    redactor: std::sync::Arc<Redactor>,
    /// The origin a request is waiting on right now (set while one is in flight, so a call
    /// stopped by its deadline can say which tracker did not answer).
    waiting_on: Option<Origin>,
    /// The validators of the stored source this call is for (none for a draft).
    validators: Option<(std::sync::Arc<Validators>, String)>,
    deadline: Instant,
    requests_left: u32,
    max_body: usize,
    /// The rate-limit headroom the latest response of this call announced.
    headroom: Option<Headroom>,
}

impl Egress {
    /// Builds the state for one call on `source` by a plugin described by `info`, with the
    /// clients `clients` keeps for the source's network settings; `redactor` is the call's
    /// (see [`redactor`]).
    pub fn new(
        clients: &Clients,
        info: &ProviderInfo,
        source: &SourceConfig,
        redactor: std::sync::Arc<Redactor>,
        deadline: Instant,
        max_requests: u32,
        max_body: usize,
    ) -> Egress {
        let admin_named: Vec<Origin> = admin_origins(info, source).collect();
        let declared = info
            .declared_origins()
            .filter_map(|(url, credentialed)| Some((Origin::parse(url)?, credentialed)));
        let (credentialed, anonymous): (Vec<_>, Vec<_>) = declared.partition(|(_, c)| *c);
        let credentialed: Vec<Origin> = credentialed.into_iter().map(|(o, _)| o).collect();
        Egress {
            clients: clients.for_source(source),
            declared: (credentialed.iter().cloned())
                .chain(anonymous.into_iter().map(|(o, _)| o))
                .collect(),
            credentialed: admin_named.iter().cloned().chain(credentialed).collect(),
            admin_named,
            credential: credential_header(info, source),
            redactor,
            waiting_on: None,
            validators: (source.source_id.clone()).map(|id| (clients.validators.clone(), id)),
            deadline,
            requests_left: max_requests,
            max_body,
            headroom: None,
        }
    }

    /// The origin a request of this call was waiting on when it was stopped, if any.
    pub fn waiting_on(&self) -> Option<String> {
        self.waiting_on.as_ref().map(Origin::to_string)
    }

    /// The rate-limit headroom the latest response of this call announced, if any did.
    pub fn headroom(&self) -> Option<Headroom> {
        self.headroom
    }

    /// Sends one request, following redirects that stay on the allow-list. The reply (see
    /// [`Egress::read`]) and any error are redacted of the call's secrets.
    pub async fn send(&mut self, req: Outgoing) -> Result<Reply, SendError> {
        let result = self.send_unredacted(req).await;
        // Only a call stopped mid-request (this future dropped) leaves it set.
        self.waiting_on = None;
        result.map_err(|e| e.redact(&self.redactor))
    }

    async fn send_unredacted(&mut self, req: Outgoing) -> Result<Reply, SendError> {
        if self.requests_left == 0 {
            return Err(SendError::BudgetExhausted);
        }
        self.requests_left -= 1;

        let mut url = url::Url::parse(&req.url)
            .map_err(|e| SendError::InvalidRequest(format!("bad URL {:?}: {e}", req.url)))?;
        let mut origin = self.check(&url)?;
        let first_origin = origin.clone();
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
        headers.insert(
            reqwest::header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        let mut method = req.method;
        let mut body = req.body;
        // A GET this source made before, answered with an ETag: ask whether it changed.
        let kept = match &self.validators {
            Some((validators, source))
                if method == reqwest::Method::GET
                    && body.is_none()
                    && !headers.contains_key(reqwest::header::IF_NONE_MATCH) =>
            {
                validators.lookup(source, &req.url, req.authenticated)
            }
            _ => None,
        };
        if let Some((etag, _)) = &kept
            && let Ok(value) = HeaderValue::from_str(etag)
        {
            headers.insert(reqwest::header::IF_NONE_MATCH, value);
        }

        for hop in 0..=MAX_REDIRECTS {
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(SendError::Timeout);
            }
            let clients = self.clients.as_ref().map_err(|e| {
                SendError::Unreachable(format!("this source's network settings are unusable: {e}"))
            })?;
            let client = if self.admin_named.contains(&origin) {
                &clients.any
            } else {
                &clients.public
            };
            let mut builder = client
                .request(method.clone(), url.clone())
                .headers(headers.clone())
                .timeout(remaining);
            if req.authenticated
                && let Some((name, value)) = self.credential_for(&origin, &first_origin)
            {
                builder = builder.header(name, value);
            }
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            self.waiting_on = Some(origin.clone());
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
                origin = self.check(&next).map_err(|_| {
                    SendError::Denied(format!(
                        "{url} redirected to {}, which this source may not reach",
                        Origin::of(&next).map_or_else(|| next.to_string(), |o| o.to_string())
                    ))
                })?;
                // Only "See Other" turns a write into a read; any other redirect repeats the
                // request as it was (GitHub's API: "the request should be repeated verbatim"),
                // never silently a GET that would answer a write with what the URL reads.
                if status == reqwest::StatusCode::SEE_OTHER && method != reqwest::Method::HEAD {
                    method = reqwest::Method::GET;
                    body = None;
                }
                url = next;
                continue;
            }
            let reply = self.read(resp).await?;
            return Ok(self.revalidated(reply, &req.url, req.authenticated, kept, hop == 0));
        }
        Err(SendError::Unreachable(format!(
            "more than {MAX_REDIRECTS} redirects from {}",
            req.url
        )))
    }

    /// `reply` to a GET of `url`, after conditional-request bookkeeping: a `304` to the
    /// `If-None-Match` this host added is the `kept` reply again; a fresh `200` with an `ETag`
    /// (not redirected) is kept for next time.
    fn revalidated(
        &self,
        reply: Reply,
        url: &str,
        authenticated: bool,
        kept: Option<(String, Reply)>,
        first_hop: bool,
    ) -> Reply {
        let Some((validators, source)) = &self.validators else {
            return reply;
        };
        if let (304, Some((_, kept))) = (reply.status, kept) {
            return kept;
        }
        let etag = reply.headers.iter().find(|(n, _)| n == "etag");
        if reply.status == 200
            && first_hop
            && let Some((_, etag)) = etag
        {
            validators.store(source, url, authenticated, etag, &reply);
        }
        reply
    }

    /// The credential header for a request to `origin` that started at `first`: only on an
    /// origin the admin named or the plugin declared credentialed, never after a redirect to
    /// another origin.
    fn credential_for(
        &self,
        origin: &Origin,
        first: &Origin,
    ) -> Option<&(HeaderName, HeaderValue)> {
        let credential = self.credential.as_ref()?;
        (origin == first && self.credentialed.contains(origin)).then_some(credential)
    }

    fn check(&self, url: &url::Url) -> Result<Origin, SendError> {
        let origin = Origin::of(url)
            .ok_or_else(|| SendError::InvalidRequest(format!("{url} is not an http(s) URL")))?;
        let admin_named = self.admin_named.contains(&origin);
        if !admin_named && !self.declared.contains(&origin) {
            return Err(SendError::Denied(format!(
                "{origin} is not an allowed destination for this source"
            )));
        }
        if let Ok(clients) = &self.clients {
            clients
                .check_ip_literal(url, admin_named)
                .map_err(|e| SendError::Denied(e.to_string()))?;
        }
        Ok(origin)
    }

    async fn read(&mut self, mut resp: reqwest::Response) -> Result<Reply, SendError> {
        let status = resp.status().as_u16();
        if let Some(headroom) = Headroom::from_headers(resp.headers(), crate::store::records::now())
        {
            self.headroom = Some(headroom);
        }
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
        let encoding = resp.headers().get(reqwest::header::CONTENT_ENCODING);
        if let Some(encoding) = encoding.filter(|e| !e.as_bytes().eq_ignore_ascii_case(b"identity"))
        {
            return Err(SendError::Unreachable(format!(
                "the tracker answered with Content-Encoding {:?} although asked for identity",
                String::from_utf8_lossy(encoding.as_bytes())
            )));
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
        // Redacted where it is read, so that nothing (the guest, the kept replies of
        // conditional requests) ever holds the unredacted one.
        Ok(Reply {
            status,
            headers,
            body,
        }
        .redact(&self.redactor))
    }
}

impl Redact for Reply {
    fn redact(self, r: &Redactor) -> Self {
        Reply {
            status: self.status,
            headers: self
                .headers
                .into_iter()
                .map(|(name, value)| (name, r.text(value)))
                .collect(),
            body: r.bytes(self.body),
        }
    }
}

impl Redact for SendError {
    fn redact(self, r: &Redactor) -> Self {
        match self {
            SendError::Denied(m) => SendError::Denied(r.text(m)),
            SendError::InvalidRequest(m) => SendError::InvalidRequest(r.text(m)),
            SendError::Unreachable(m) => SendError::Unreachable(r.text(m)),
            other => other,
        }
    }
}

/// The origins the admin named for `source`: its base URL's and those of its URL settings.
fn admin_origins<'a>(
    info: &'a ProviderInfo,
    source: &'a SourceConfig,
) -> impl Iterator<Item = Origin> + 'a {
    let url_settings = info
        .settings
        .iter()
        .filter(|s| s.kind == SettingKind::Url)
        .filter_map(|s| source.settings.get(&s.name));
    std::iter::once(&source.base_url)
        .chain(url_settings)
        .filter_map(|u| Origin::parse(u))
}

/// The header that carries `source`'s credentials under its auth type, if its fields are set.
fn credential_header(
    info: &ProviderInfo,
    source: &SourceConfig,
) -> Option<(HeaderName, HeaderValue)> {
    let auth = info.auth_type(&source.auth_type)?;
    auth_header(auth, &source.fields, &source.secrets)
}

/// The redactor of one call on `source`: its secret values (a secret field misfiled among the
/// plain ones included), as themselves, as HTTP Basic passwords of any of its plain field
/// values, and the whole credential header.
pub fn redactor(info: &ProviderInfo, source: &SourceConfig) -> Redactor {
    let header = credential_header(info, source);
    let applied = header.as_ref().and_then(|(_, v)| v.to_str().ok());
    let secret_names = info.secret_fields(&source.auth_type);
    let misfiled = (source.fields.iter())
        .filter(|(name, _)| secret_names.contains(&name.as_str()))
        .map(|(_, value)| value.as_str());
    Redactor::new(
        source.secrets.values().map(String::as_str).chain(misfiled),
        source.fields.values().map(String::as_str),
        applied,
    )
}

/// The header that carries this auth type's credentials, if its fields are set.
fn auth_header(
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
    if let Some(tls) = find_cause::<rustls::Error>(&e) {
        return SendError::Unreachable(tls_message(url.host_str().unwrap_or("?"), &origin, tls));
    }
    if let Some(refused) = find_cause::<AddressRefused>(&e) {
        return SendError::Denied(refused.to_string());
    }
    // The innermost cause names the real problem (refused, DNS).
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

/// The `T` somewhere in the chain of causes. An `io::Error` hides the error it wraps from
/// `source()` (it returns that error's own source), so it is unwrapped by hand.
fn find_cause<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut next: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = next {
        if let Some(found) = cause.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            let inner: &(dyn std::error::Error + 'static) = inner;
            if let Some(found) = find_cause::<T>(inner) {
                return Some(found);
            }
        }
        next = cause.source();
    }
    None
}

/// Which addresses a client may connect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Any address: origins the admin named, when the operator allows loopback targets.
    Any,
    /// Any address but loopback and link-local ones ([`is_loopback_or_link_local`]): origins
    /// the admin named, by default. Private networks (self-hosted trackers) stay reachable.
    NotLoopback,
    /// Public addresses only ([`is_public`]): origins a plugin declared.
    Public,
}

impl Reach {
    /// The reach of origins the admin named, given the operator's setting.
    pub fn admin_named(allow_loopback_targets: bool) -> Reach {
        if allow_loopback_targets {
            Reach::Any
        } else {
            Reach::NotLoopback
        }
    }

    /// True when `ip` is within this reach.
    pub fn allows(self, ip: std::net::IpAddr) -> bool {
        match self {
            Reach::Any => true,
            Reach::NotLoopback => !is_loopback_or_link_local(ip),
            Reach::Public => is_public(ip),
        }
    }

    /// The error for `host`, which is (`literal`) or resolves to an address out of reach.
    fn refusal(self, host: &str, literal: bool) -> AddressRefused {
        let is = if literal { "is" } else { "resolves to" };
        AddressRefused(match self {
            Reach::NotLoopback => format!(
                "{host} {is} a loopback or link-local address (this machine, or a cloud \
                 metadata service), which a source may reach only when the operator starts the \
                 service with --allow-loopback-targets (INTEGRATION_ALLOW_LOOPBACK_TARGETS=true)"
            ),
            Reach::Any | Reach::Public => format!(
                "{host} {is} a private, loopback or link-local address, which only an origin \
                 the admin configured may reach"
            ),
        })
    }

    /// An error if `url`'s host is an IP literal out of reach. A DNS resolver never sees
    /// those, so they are checked before connecting.
    fn check_ip_literal(self, url: &url::Url) -> Result<(), AddressRefused> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => std::net::IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => std::net::IpAddr::V6(v6),
            _ => return Ok(()),
        };
        if self.allows(ip) {
            Ok(())
        } else {
            Err(self.refusal(url.host_str().unwrap_or_default(), true))
        }
    }
}

/// A DNS resolver that keeps only the addresses within its [`Reach`], so that a name cannot
/// lead where its origin may not go, whatever its DNS says.
struct Restricted(Reach);

impl reqwest::dns::Resolve for Restricted {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let reach = self.0;
        Box::pin(async move {
            let all: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<_> = all.into_iter().filter(|a| reach.allows(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(reach.refusal(&host, false)) as Box<_>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A destination out of a client's [`Reach`]; the message says who may allow it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct AddressRefused(String);

/// True for loopback (127/8, ::1), link-local (169.254/16, fe80::/10, where cloud metadata
/// services live) and unspecified addresses (0.0.0.0/8 and ::, which reach this machine), and
/// their IPv4-mapped IPv6 forms.
fn is_loopback_or_link_local(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local() || v4.octets()[0] == 0,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_loopback_or_link_local(IpAddr::V4(v4)),
            None => {
                v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80
            }
        },
    }
}

/// True for addresses on the public internet: not loopback, private, link-local, shared
/// (carrier-grade NAT), unique-local, multicast, documentation, unspecified or broadcast.
fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
                    || first == 0x2001 && v6.segments()[1] == 0x0db8)
            }
        },
    }
}

/// What a TLS failure means for the admin, and what to do about it.
fn tls_message(host: &str, origin: &str, e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let problem = match e {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => format!(
                "the server's certificate for {host} is signed by an unknown authority (set the \
                 source's CA bundle to the authority's certificate)"
            ),
            C::Expired | C::ExpiredContext { .. } => {
                format!("the server's certificate for {host} has expired")
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                format!("the server's certificate for {host} is not valid yet (check the clocks)")
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                format!("the server's certificate is not valid for host {host}")
            }
            C::Revoked => format!("the server's certificate for {host} has been revoked"),
            C::BadSignature
            | C::UnsupportedSignatureAlgorithmContext { .. }
            | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => format!(
                "the server's certificate for {host} has a signature that cannot be verified"
            ),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                format!("the server's certificate for {host} is not meant for a TLS server")
            }
            C::BadEncoding => format!("the server's certificate for {host} is malformed"),
            other => format!("the server's certificate for {host} was rejected ({other:?})"),
        },
        other => format!("the handshake with {origin} failed: {other}"),
    };
    format!("TLS: {problem}")
}

/// The certificates of a PEM bundle, each checked to be usable as a trust anchor. An error
/// says what is wrong, for the admin.
pub fn parse_ca_bundle(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certs = Vec::new();
    for (i, cert) in CertificateDer::pem_slice_iter(pem.as_bytes()).enumerate() {
        let cert = cert.map_err(|e| format!("certificate {} is not valid PEM: {e}", i + 1))?;
        rustls::RootCertStore::empty()
            .add(cert.clone())
            .map_err(|e| format!("certificate {} is not a usable certificate: {e}", i + 1))?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err("no certificate found: paste one or more PEM blocks \
                    (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)"
            .into());
    }
    Ok(certs)
}

/// The most per-source clients kept; past it the cache starts over (a client is cheap to
/// rebuild, and a deployment has far fewer distinct network settings than this).
const MAX_CUSTOM_CLIENTS: usize = 64;

/// What tells two sources' network settings apart: the CA bundle's sha-256 and the proxy URL.
type NetworkKey = (Option<[u8; 32]>, Option<String>);

/// The two clients of one network setting: `any` for origins the admin named (within
/// `admin_reach`: loopback and link-local addresses only if the operator allows them),
/// `public` to public addresses only ([`Reach::Public`], for origins a plugin declared).
/// Through a proxy both are the same client: the proxy resolves the target, and an admin's
/// proxy may well be on a private address itself.
#[derive(Clone, Debug)]
pub struct SourceClients {
    any: reqwest::Client,
    public: reqwest::Client,
    admin_reach: Reach,
}

impl SourceClients {
    /// An error if `url`'s host is an IP literal the origin may not reach: `admin_named`
    /// origins within `admin_reach`, others public addresses only.
    fn check_ip_literal(&self, url: &url::Url, admin_named: bool) -> Result<(), AddressRefused> {
        let reach = if admin_named {
            self.admin_reach
        } else {
            Reach::Public
        };
        reach.check_ip_literal(url)
    }
}

/// The HTTP clients egress uses: the shared pair for sources without network settings, and a
/// pair per distinct (CA bundle, proxy), built on first use and kept so that connections are
/// pooled and the system roots are not reloaded on every call.
pub struct Clients {
    shared: SourceClients,
    custom: Mutex<HashMap<NetworkKey, SourceClients>>,
    /// The `ETag`s and replies of stored sources' GETs ([`Validators`]).
    validators: std::sync::Arc<Validators>,
}

impl Clients {
    /// The shared pair (see [`builder`]) and an empty cache. Origins the admin named reach
    /// loopback and link-local addresses only if `allow_loopback_targets` (the operator's
    /// setting).
    pub fn new(allow_loopback_targets: bool) -> anyhow::Result<Clients> {
        let admin_reach = Reach::admin_named(allow_loopback_targets);
        Ok(Clients {
            shared: SourceClients {
                any: restricted(builder(), admin_reach).build()?,
                public: restricted(builder(), Reach::Public).build()?,
                admin_reach,
            },
            custom: Mutex::new(HashMap::new()),
            validators: Default::default(),
        })
    }

    /// Forgets the replies kept for conditional requests of `source_id`.
    pub fn forget(&self, source_id: &str) {
        self.validators.forget(source_id);
    }

    /// The clients for `source`: the shared pair without network settings, else the cached
    /// pair for its settings. An error (a bundle or proxy that no longer parses) is for the
    /// admin.
    pub fn for_source(&self, source: &SourceConfig) -> Result<SourceClients, String> {
        let pem = source
            .ca_bundle_pem
            .as_deref()
            .filter(|p| !p.trim().is_empty());
        let proxy = source.proxy_url.as_deref().filter(|p| !p.trim().is_empty());
        if pem.is_none() && proxy.is_none() {
            return Ok(self.shared.clone());
        }
        let key = (
            pem.map(|p| Sha256::digest(p.as_bytes()).into()),
            proxy.map(str::to_string),
        );
        let mut cache = self.custom.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(clients) = cache.get(&key) {
            return Ok(clients.clone());
        }
        let admin_reach = self.shared.admin_reach;
        let any = custom_client(pem, proxy, admin_reach)?;
        let clients = SourceClients {
            public: match proxy {
                Some(_) => any.clone(),
                None => custom_client(pem, None, Reach::Public)?,
            },
            any,
            admin_reach,
        };
        if cache.len() >= MAX_CUSTOM_CLIENTS {
            cache.clear();
        }
        cache.insert(key, clients.clone());
        Ok(clients)
    }
}

/// A client like the shared one, trusting `pem`'s certificates besides the system roots,
/// sending everything through `proxy` (which must be within `reach` too), and connecting to
/// addresses within `reach` only.
fn custom_client(
    pem: Option<&str>,
    proxy: Option<&str>,
    reach: Reach,
) -> Result<reqwest::Client, String> {
    let mut builder = restricted(builder(), reach);
    if let Some(pem) = pem {
        let certs = parse_ca_bundle(pem).map_err(|e| format!("CA bundle: {e}"))?;
        let certs = certs
            .iter()
            .map(|der| reqwest::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("CA bundle: {e}"))?;
        builder = builder.tls_certs_merge(certs);
    }
    if let Some(proxy) = proxy {
        if let Ok(url) = url::Url::parse(proxy) {
            reach
                .check_ip_literal(&url)
                .map_err(|e| format!("proxy URL: {e}"))?;
        }
        let proxy = reqwest::Proxy::all(proxy).map_err(|e| format!("proxy URL: {e}"))?;
        builder = builder.proxy(proxy);
    }
    builder.build().map_err(|e| {
        let mut cause: &dyn std::error::Error = &e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        format!("cannot set up the HTTP client: {cause}")
    })
}

/// `builder` resolving names to addresses within `reach` only ([`Restricted`]).
fn restricted(builder: reqwest::ClientBuilder, reach: Reach) -> reqwest::ClientBuilder {
    match reach {
        Reach::Any => builder,
        Reach::NotLoopback | Reach::Public => builder.dns_resolver(Restricted(reach)),
    }
}

/// The settings every egress client shares: no automatic redirects (followed by hand, see
/// [`Egress::send`]), rustls verifying against the system's roots, short connect timeout,
/// pooled connections.
fn builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(8)
        .user_agent(concat!("integration-sources/", env!("CARGO_PKG_VERSION")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(pem: Option<&str>, proxy: Option<&str>) -> SourceConfig {
        SourceConfig {
            ca_bundle_pem: pem.map(str::to_string),
            proxy_url: proxy.map(str::to_string),
            ..SourceConfig::default()
        }
    }

    fn cached(clients: &Clients) -> usize {
        clients.custom.lock().unwrap().len()
    }

    #[test]
    fn clients_are_built_once_per_distinct_network_settings() {
        let clients = Clients::new(true).unwrap();
        clients.for_source(&source(None, None)).unwrap();
        clients.for_source(&source(Some("  "), Some(""))).unwrap();
        assert_eq!(cached(&clients), 0, "no settings: the shared client");
        let proxy = Some("http://127.0.0.1:3128");
        clients.for_source(&source(None, proxy)).unwrap();
        clients.for_source(&source(None, proxy)).unwrap();
        assert_eq!(cached(&clients), 1);
        clients
            .for_source(&source(None, Some("http://127.0.0.1:3129")))
            .unwrap();
        assert_eq!(cached(&clients), 2);
        let err = clients
            .for_source(&source(Some("not a certificate"), None))
            .unwrap_err();
        assert!(err.contains("no certificate found"), "{err}");
        assert_eq!(cached(&clients), 2, "a failure is not cached");
    }

    #[test]
    fn only_public_addresses_are_public() {
        let public = |ip: &str| is_public(ip.parse().unwrap());
        for ip in ["93.184.215.14", "140.82.112.3", "2606:4700::6810:84e5"] {
            assert!(public(ip), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!public(ip), "{ip}");
        }
    }

    #[test]
    fn only_loopback_and_link_local_addresses_need_the_operator_setting() {
        let reachable = |ip: &str| Reach::NotLoopback.allows(ip.parse().unwrap());
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "93.184.215.14",
            "fd00::1",
            "::ffff:10.0.0.1",
            "2606:4700::6810:84e5",
        ] {
            assert!(reachable(ip), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "febf::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!reachable(ip), "{ip}");
            assert!(Reach::Any.allows(ip.parse().unwrap()), "{ip}");
        }
    }

    /// A live HTTP server on 127.0.0.1 answering 204; returns its port and how many
    /// connections it accepted.
    async fn loopback_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let _ = socket.read(&mut [0; 4096]).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        (port, accepted)
    }

    #[tokio::test]
    async fn an_admin_named_loopback_or_link_local_origin_needs_the_operator_setting() {
        let (port, accepted) = loopback_server().await;
        for base in [
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
            format!("http://[::ffff:127.0.0.1]:{port}"),
            "http://169.254.169.254".to_string(),
            "http://[fe80::1]".to_string(),
        ] {
            let mut off = egress_with(false, &base, &["https://api.example.com"]);
            match off.send(get(&format!("{base}/latest/meta-data/"))).await {
                Err(SendError::Denied(message)) => assert!(
                    message.contains("--allow-loopback-targets")
                        && message.contains("INTEGRATION_ALLOW_LOOPBACK_TARGETS"),
                    "{base}: {message}"
                ),
                other => panic!("{base}: expected a denial, got {other:?}"),
            }
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);

        let base = format!("http://127.0.0.1:{port}");
        let mut on = egress_with(true, &base, &["https://api.example.com"]);
        assert_eq!(
            on.send(get(&format!("{base}/x"))).await.unwrap().status,
            204
        );
    }

    #[tokio::test]
    async fn a_declared_ip_literal_never_reaches_a_private_address() {
        let (port, accepted) = loopback_server().await;
        let declared = format!("http://127.0.0.1:{port}");
        let mut by_plugin = egress_with(true, "https://tracker.example.com", &[&declared]);
        match by_plugin.send(get(&format!("{declared}/x"))).await {
            Err(SendError::Denied(message)) => {
                assert!(
                    message.contains("private, loopback or link-local"),
                    "{message}"
                )
            }
            other => panic!("expected a denial, got {other:?}"),
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn a_loopback_proxy_needs_the_operator_setting_too() {
        let proxy = Some("http://127.0.0.1:3128");
        let err = Clients::new(false)
            .unwrap()
            .for_source(&source(None, proxy))
            .unwrap_err();
        assert!(err.contains("--allow-loopback-targets"), "{err}");
        let private = Some("http://10.0.0.8:3128");
        Clients::new(false)
            .unwrap()
            .for_source(&source(None, private))
            .unwrap();
    }

    /// A source on `base_url` of a plugin that declares `extra` as extra origins, with a bearer
    /// token, on a host that allows loopback targets.
    fn egress(base_url: &str, extra: &[&str]) -> Egress {
        egress_with(true, base_url, extra)
    }

    /// [`egress`] with the operator's loopback setting as given.
    fn egress_with(allow_loopback_targets: bool, base_url: &str, extra: &[&str]) -> Egress {
        let info = ProviderInfo {
            extra_origins: extra.iter().map(|e| e.to_string()).collect(),
            auth_types: vec![AuthType {
                id: "api-token".into(),
                label: "API token".into(),
                fields: Vec::new(),
                scheme: CredentialScheme::Bearer {
                    field: "token".into(),
                },
            }],
            ..ProviderInfo::default()
        };
        let source = SourceConfig {
            base_url: base_url.into(),
            auth_type: "api-token".into(),
            secrets: [("token".to_string(), "tok-123456".to_string())].into(),
            ..SourceConfig::default()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let clients = Clients::new(allow_loopback_targets).unwrap();
        Egress::new(
            &clients,
            &info,
            &source,
            Default::default(),
            deadline,
            5,
            1024,
        )
    }

    fn get(url: &str) -> Outgoing {
        Outgoing {
            method: reqwest::Method::GET,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            authenticated: false,
        }
    }

    #[tokio::test]
    async fn a_declared_origin_never_reaches_a_private_address_an_admin_named_one_may() {
        // A live server on loopback, named by the admin in one case, by the plugin in the other.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let _ = socket.read(&mut [0; 4096]).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        let admin = format!("http://localhost:{port}");
        let declared = format!("https://localhost:{port}");

        let mut by_admin = egress(&admin, &["https://api.example.com"]);
        let reply = by_admin.send(get(&format!("{admin}/x"))).await.unwrap();
        assert_eq!(reply.status, 204);

        let mut by_plugin = egress("https://tracker.example.com", &[&declared]);
        match by_plugin.send(get(&format!("{declared}/x"))).await {
            Err(SendError::Denied(message)) => {
                assert!(
                    message.contains("private, loopback or link-local"),
                    "{message}"
                )
            }
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    #[test]
    fn credentials_go_only_to_the_admins_and_the_credentialed_origins_never_across_origins() {
        let e = egress(
            "https://tracker.example.com",
            &[
                "https://cdn.example.com",
                "credentialed https://api.example.com",
            ],
        );
        let o = |u: &str| Origin::parse(u).unwrap();
        let (site, api, cdn) = (
            o("https://tracker.example.com"),
            o("https://api.example.com"),
            o("https://cdn.example.com"),
        );
        let sent = |to: &Origin, first: &Origin| e.credential_for(to, first).is_some();
        assert!(sent(&site, &site), "the base URL's origin");
        assert!(sent(&api, &api), "a declared credentialed origin");
        assert!(
            !sent(&cdn, &cdn),
            "a plain declared origin is reached anonymously"
        );
        assert!(
            !sent(&api, &site),
            "never after a redirect to another origin"
        );
        assert!(
            !sent(&site, &api),
            "never after a redirect to another origin"
        );
        assert!(
            e.check(&url::Url::parse("https://cdn.example.com/x").unwrap())
                .is_ok()
        );
        assert!(
            e.check(&url::Url::parse("https://api.example.com/x").unwrap())
                .is_ok()
        );
    }

    /// A live HTTP server on 127.0.0.1 answering each request with what `answer` makes of its
    /// path; returns its port and the requests it got, whole (head and declared body).
    async fn recording_server(
        answer: fn(&str) -> &'static str,
    ) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let complete = |r: &[u8]| {
                    let text = String::from_utf8_lossy(r);
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        return false;
                    };
                    let declared = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")?
                                .parse()
                                .ok()
                        })
                        .unwrap_or(0);
                    body.len() >= declared
                };
                let (mut request, mut chunk) = (Vec::new(), [0; 4096]);
                while !complete(&request) {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request).to_string();
                let path = request.split(' ').nth(1).unwrap_or_default().to_string();
                log.lock().unwrap().push(request);
                let _ = socket.write_all(answer(&path).as_bytes()).await;
            }
        });
        (port, seen)
    }

    #[tokio::test]
    async fn replies_are_asked_for_and_taken_only_whole_and_uncompressed() {
        // Compressed or partial, a tracker's echo of the token would pass the redactor unseen.
        let (port, requests) = recording_server(|_| {
            "HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc"
        })
        .await;
        let base = format!("http://127.0.0.1:{port}");
        let mut e = egress(&base, &[]);
        let mut req = get(&format!("{base}/x"));
        req.headers = vec![
            ("Accept-Encoding".into(), "gzip, br".into()),
            ("Range".into(), "bytes=0-3".into()),
            ("Accept".into(), "application/json".into()),
        ];
        match e.send(req).await {
            Err(SendError::Unreachable(message)) => {
                assert!(message.contains("Content-Encoding \"gzip\""), "{message}")
            }
            other => panic!("expected a refusal of the compressed reply, got {other:?}"),
        }
        let head = requests.lock().unwrap()[0].to_ascii_lowercase();
        assert!(head.contains("accept-encoding: identity\r\n"), "{head}");
        assert!(!head.contains("gzip") && !head.contains("range"), "{head}");
        assert!(head.contains("accept: application/json"), "{head}");

        let (port, _) = recording_server(|_| {
            "HTTP/1.1 200 OK\r\ncontent-encoding: identity\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
        })
        .await;
        let base = format!("http://127.0.0.1:{port}");
        let reply = egress(&base, &[]).send(get(&format!("{base}/x"))).await;
        assert_eq!(reply.unwrap().body, b"ok");
    }

    #[tokio::test]
    async fn a_redirected_write_is_repeated_as_it_was_except_after_see_other() {
        let (port, requests) = recording_server(|path| match path {
            "/moved" => "HTTP/1.1 301 Moved Permanently\r\nlocation: /comments\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            "/see" => "HTTP/1.1 303 See Other\r\nlocation: /comments/7\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            _ => "HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        })
        .await;
        let base = format!("http://127.0.0.1:{port}");
        for path in ["/moved", "/see"] {
            let mut req = get(&format!("{base}{path}"));
            (req.method, req.body) = (reqwest::Method::POST, Some(b"{\"body\":\"hi\"}".to_vec()));
            egress(&base, &[]).send(req).await.unwrap();
        }
        let seen: Vec<String> = (requests.lock().unwrap().iter())
            .map(|r| {
                let (head, body) = r.split_once("\r\n\r\n").unwrap();
                format!("{} {body}", head.lines().next().unwrap())
            })
            .collect();
        assert_eq!(
            seen,
            [
                "POST /moved HTTP/1.1 {\"body\":\"hi\"}",
                "POST /comments HTTP/1.1 {\"body\":\"hi\"}",
                "POST /see HTTP/1.1 {\"body\":\"hi\"}",
                "GET /comments/7 HTTP/1.1 ",
            ]
        );
    }

    #[test]
    fn a_bundle_must_hold_usable_certificates() {
        assert!(parse_ca_bundle("").unwrap_err().contains("no certificate"));
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = parse_ca_bundle(garbage).unwrap_err();
        assert!(err.starts_with("certificate 1 "), "{err}");
    }

    #[test]
    fn certificate_errors_say_what_is_wrong() {
        let msg = |e| tls_message("t.example.com", "https://t.example.com:443", &e);
        let cert = rustls::Error::InvalidCertificate;
        assert!(msg(cert(rustls::CertificateError::UnknownIssuer)).contains("unknown authority"));
        assert!(msg(cert(rustls::CertificateError::Expired)).ends_with("has expired"));
        assert!(
            msg(cert(rustls::CertificateError::NotValidForName))
                .ends_with("is not valid for host t.example.com")
        );
        assert!(
            msg(rustls::Error::HandshakeNotComplete)
                .starts_with("TLS: the handshake with https://t.example.com:443 failed")
        );
    }
}
