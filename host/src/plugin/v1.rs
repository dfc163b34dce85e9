//! Contract version 1.x (`plugins/sdk/wit/provider/v1`): the generated bindings, the host side of its
//! imports, and conversions between its types and the host's own ([`super::model`]).
//!
//! Minor versions: a plugin may be built against any 1.x up to [`VERSION`]. Before linking,
//! [`check_contract`] reads the names and versions of the component's imports and exports
//! and refuses a newer minor, or an import this host lacks, with a message naming both
//! versions. The exports are then looked up one interface at a time ([`ExportIndices`]):
//! `tracker` is required, `comments` and `events` (since 1.1) are optional, so a 1.0 plugin
//! loads and serves all it did.
//!
//! A future 2.0 gets a `v2.rs` beside this one; nothing outside `plugin/` changes.

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, HasSelf, Instance, InstancePre, Lift,
    Lower, TypedFunc,
};
use wasmtime::{Engine, Store};

use super::CallState;
use super::bounds;
use super::egress::{Outgoing, SendError};
use super::model;

wasmtime::component::bindgen!({
    path: "../plugins/sdk/wit/provider/v1",
    world: "provider",
    imports: { default: async | trappable },
    exports: { default: async },
});

use exports::testorchestrator::provider::{comments, events};
use testorchestrator::provider::{http, log, types as wit};

/// The package's version range this module serves.
pub const MAJOR: u64 = 1;

/// The newest minor version of the package this host implements.
pub const MINOR: u64 = 1;

/// The version of the contract package this host implements (`plugins/sdk/wit/provider/v1/world.wit`).
pub const VERSION: &str = "1.1.0";

/// The package every contract interface belongs to.
const PACKAGE: &str = "testorchestrator:provider/";

/// The export name a v1 plugin must have (without its `@version` suffix).
pub const EXPORT: &str = "testorchestrator:provider/tracker";

/// The interfaces of the package this host implements for plugins to import, with their
/// functions (`contract` since 1.1). A minor version that adds one adds it here.
const IMPORTS: &[(&str, &[&str])] = &[
    ("types", &[]),
    ("http", &["send"]),
    ("log", &["write"]),
    ("contract", &["version"]),
];

/// The contract version a component is built against, e.g. `1.0.0`: the newest version among
/// its imports and exports of the contract package. Refuses, naming both versions, a
/// component built for another major or a newer minor than [`VERSION`], or one that imports
/// an interface or function of the package this host does not implement. Nothing is linked
/// yet, so the messages are the contract's, not the linker's.
pub fn check_contract(engine: &Engine, component: &Component) -> Result<String, String> {
    let ty = component.component_type();
    let mut newest: Option<(u64, u64, String)> = None;
    let mut tracker = false;
    let items = ty
        .imports(engine)
        .map(|(name, item)| (name, item.ty, true))
        .chain(
            ty.exports(engine)
                .map(|(name, item)| (name, item.ty, false)),
        );
    for (name, item, imported) in items {
        let Some((interface, version)) = name.strip_prefix(PACKAGE).and_then(|r| r.split_once('@'))
        else {
            continue;
        };
        let (major, minor) = major_minor(version)
            .ok_or_else(|| format!("the plugin names {name:?}, which is not a contract version"))?;
        if major != MAJOR {
            return Err(format!(
                "the plugin is built for contract {version}; this host supports {MAJOR}.x (up to {MAJOR}.{MINOR})"
            ));
        }
        if minor > MINOR {
            return Err(format!(
                "the plugin is built for contract {version} (it {} {PACKAGE}{interface}): it needs {major}.{minor}; \
                 this host supports up to {MAJOR}.{MINOR}",
                if imported { "imports" } else { "exports" }
            ));
        }
        if imported {
            check_import(engine, interface, version, &item)?;
        } else if interface == "tracker" {
            tracker = true;
        }
        if newest
            .as_ref()
            .is_none_or(|(a, b, _)| (major, minor) > (*a, *b))
        {
            newest = Some((major, minor, version.to_string()));
        }
    }
    match newest {
        Some((_, _, version)) if tracker => Ok(version),
        _ => Err(format!(
            "not a provider plugin: it does not export {EXPORT}@{MAJOR}.x"
        )),
    }
}

/// Checks that this host implements an imported interface of the package and each function
/// the plugin imports from it.
fn check_import(
    engine: &Engine,
    interface: &str,
    version: &str,
    item: &ComponentItem,
) -> Result<(), String> {
    let missing = |what: String| {
        format!(
            "the plugin is built for contract {version} and imports {what}, which this host \
             (contract {VERSION}) does not implement; it needs a newer host"
        )
    };
    let Some((_, functions)) = IMPORTS.iter().find(|(name, _)| *name == interface) else {
        return Err(missing(format!("{PACKAGE}{interface}")));
    };
    if let ComponentItem::ComponentInstance(instance) = item {
        for (function, item) in instance.exports(engine) {
            let known = functions.contains(&function);
            if matches!(item.ty, ComponentItem::ComponentFunc(_)) && !known {
                return Err(missing(format!("{PACKAGE}{interface}#{function}")));
            }
        }
    }
    Ok(())
}

/// `1.2.0` -> `(1, 2)`.
fn major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Where each contract interface a plugin exports is, found once at load: `tracker` always,
/// `comments` and `events` when the plugin has them (1.1 or newer).
///
/// Every function is found by name and type-checked once, here; a call then fetches its one
/// function from the fresh instance by index ([`Exports`]), with no name lookup and no type
/// check per call (bindgen's `GuestIndices::load` would repeat both for every function of
/// every interface on each instance).
#[derive(Clone)]
pub struct ExportIndices {
    tracker: TrackerIndices,
    comments: Option<CommentsIndices>,
    events: Option<EventsIndices>,
}

impl ExportIndices {
    /// Looks up and type-checks the exports of a linked component, one interface at a time.
    pub fn new(pre: &InstancePre<CallState>) -> Result<ExportIndices, String> {
        let interface = |name: &str| {
            (pre.component()).get_export_index(None, format!("{PACKAGE}{name}@{VERSION}"))
        };
        let fit = |e: wasmtime::Error| format!("{e:#}");
        let tracker =
            interface("tracker").ok_or_else(|| format!("no exported instance named `{EXPORT}`"))?;
        Ok(ExportIndices {
            tracker: TrackerIndices::new(pre, &tracker).map_err(fit)?,
            comments: (interface("comments"))
                .map(|i| CommentsIndices::new(pre, &i))
                .transpose()
                .map_err(fit)?,
            events: (interface("events"))
                .map(|i| EventsIndices::new(pre, &i))
                .transpose()
                .map_err(fit)?,
        })
    }

    /// True when the plugin exports `comments` (contract 1.1).
    pub fn has_comments(&self) -> bool {
        self.comments.is_some()
    }

    /// True when the plugin exports `events` (contract 1.1).
    pub fn has_events(&self) -> bool {
        self.events.is_some()
    }

    /// The exported functions of one instance (nothing is looked up until a call).
    pub fn load<'a>(&'a self, instance: &'a Instance) -> Exports<'a> {
        Exports {
            instance,
            indices: self,
        }
    }
}

/// The exported functions of one plugin instance.
pub struct Exports<'a> {
    instance: &'a Instance,
    indices: &'a ExportIndices,
}

impl<'a> Exports<'a> {
    /// `tracker`, which every plugin exports.
    pub fn testorchestrator_provider_tracker(&self) -> Tracker<'a> {
        Tracker {
            instance: self.instance,
            indices: &self.indices.tracker,
        }
    }

    /// `comments`; an error for a plugin without it (callers check first).
    pub fn testorchestrator_provider_comments(&self) -> wasmtime::Result<Comments<'a>> {
        let indices = (self.indices.comments.as_ref())
            .ok_or_else(|| wasmtime::format_err!("the plugin has no comments"))?;
        Ok(Comments {
            instance: self.instance,
            indices,
        })
    }

    /// `events`; an error for a plugin without it (callers check first).
    pub fn testorchestrator_provider_events(&self) -> wasmtime::Result<Events<'a>> {
        let indices = (self.indices.events.as_ref())
            .ok_or_else(|| wasmtime::format_err!("the plugin has no events"))?;
        Ok(Events {
            instance: self.instance,
            indices,
        })
    }
}

/// Finds the function `name` of an exported interface and checks it has the signature
/// `(Params) -> Return` (bindgen's, for the contract's types).
fn checked<Params, Return>(
    pre: &InstancePre<CallState>,
    interface: &ComponentExportIndex,
    name: &str,
) -> wasmtime::Result<ComponentExportIndex>
where
    Params: ComponentNamedList + Lower,
    Return: ComponentNamedList + Lift,
{
    let (item, index) = (pre.component().get_export(Some(interface), name))
        .ok_or_else(|| wasmtime::format_err!("no exported function `{name}`"))?;
    let ComponentItem::ComponentFunc(func) = item else {
        wasmtime::bail!("export `{name}` is not a function");
    };
    func.typecheck::<Params, Return>(&pre.instance_type())
        .map_err(|e| wasmtime::format_err!("type-checking export func `{name}`: {e:#}"))?;
    Ok(index)
}

/// Calls the function at `index` of `instance`, which [`checked`] found with exactly these
/// `Params` and `Return` (the declarations below name each signature once, for both).
async fn call<Params, Return>(
    store: &mut Store<CallState>,
    instance: &Instance,
    index: &ComponentExportIndex,
    params: Params,
) -> wasmtime::Result<Return>
where
    Params: ComponentNamedList + Lower + Send + Sync,
    Return: ComponentNamedList + Lift + Send + Sync + 'static,
{
    let func = (instance.get_func(&mut *store, index))
        .ok_or_else(|| wasmtime::format_err!("the plugin's export is missing"))?;
    // SAFETY: `index` is an export of this instance's component that `checked` type-checked
    // at load against `Params` and `Return`; types belong to the component, so they hold for
    // every instance of it.
    let typed = unsafe { TypedFunc::<Params, Return>::new_unchecked(func) };
    typed.call_async(&mut *store, params).await
}

/// Declares one exported interface: its function indices (found and type-checked by
/// [`checked`]) and a view of one instance with a `call_*` method per function (through
/// [`call`]), each signature written once for both.
macro_rules! exported_interface {
    (
        $(#[$doc:meta])* $Indices:ident, $Calls:ident {
            $( $method:ident = $name:literal ($($arg:ident: $ty:ty),*) -> $ret:ty; )*
        }
    ) => {
        #[derive(Clone)]
        struct $Indices {
            $( $method: ComponentExportIndex, )*
        }

        impl $Indices {
            fn new(
                pre: &InstancePre<CallState>,
                interface: &ComponentExportIndex,
            ) -> wasmtime::Result<Self> {
                Ok(Self {
                    $( $method: checked::<($($ty,)*), ($ret,)>(pre, interface, $name)?, )*
                })
            }
        }

        $(#[$doc])*
        pub struct $Calls<'a> {
            instance: &'a Instance,
            indices: &'a $Indices,
        }

        impl $Calls<'_> {
            $(
                #[doc = concat!("Calls `", $name, "`.")]
                pub async fn $method(
                    &self,
                    store: &mut Store<CallState>,
                    $($arg: $ty),*
                ) -> wasmtime::Result<$ret> {
                    let (ret,) = call::<($($ty,)*), ($ret,)>(
                        store,
                        self.instance,
                        &self.indices.$method,
                        ($($arg,)*),
                    )
                    .await?;
                    Ok(ret)
                }
            )*
        }
    };
}

exported_interface! {
    /// `tracker` of one instance.
    TrackerIndices, Tracker {
        call_describe = "describe"() -> wit::ProviderInfo;
        call_normalize_key = "normalize-key"(source: &wit::Source, key: &str)
            -> Result<String, wit::ProviderError>;
        call_issue_url = "issue-url"(source: &wit::Source, key: &str)
            -> Result<String, wit::ProviderError>;
        call_create_url = "create-url"(source: &wit::Source) -> Result<String, wit::ProviderError>;
        call_test_connection = "test-connection"(source: &wit::Source)
            -> Result<wit::ConnectionInfo, wit::ProviderError>;
        call_fetch_issue = "fetch-issue"(source: &wit::Source, key: &str)
            -> Result<wit::Issue, wit::ProviderError>;
        call_fetch_issues = "fetch-issues"(source: &wit::Source, keys: &[String])
            -> Result<Vec<Result<wit::Issue, wit::ProviderError>>, wit::ProviderError>;
    }
}

exported_interface! {
    /// `comments` (contract 1.1) of one instance.
    CommentsIndices, Comments {
        call_describe_comments = "describe-comments"() -> Option<comments::CommentsInfo>;
        call_add_comment = "add-comment"(source: &wit::Source, key: &str, markdown: &str)
            -> Result<comments::CommentInfo, wit::ProviderError>;
    }
}

exported_interface! {
    /// `events` (contract 1.1) of one instance.
    EventsIndices, Events {
        call_describe_events = "describe-events"() -> Vec<events::EventScheme>;
        call_parse_event = "parse-event"(source: &wit::Source, event: &events::Event)
            -> Result<Vec<events::EventChange>, wit::ProviderError>;
    }
}

/// Adds the v1 imports (`http`, `log`) to a linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<CallState>) -> wasmtime::Result<()> {
    Provider::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)
}

impl wit::Host for CallState {}

impl testorchestrator::provider::contract::Host for CallState {
    async fn version(&mut self) -> wasmtime::Result<String> {
        Ok(VERSION.to_string())
    }
}

impl http::Host for CallState {
    async fn send(
        &mut self,
        req: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        let method = match req.method {
            http::Method::Get => reqwest::Method::GET,
            http::Method::Head => reqwest::Method::HEAD,
            http::Method::Post => reqwest::Method::POST,
            http::Method::Put => reqwest::Method::PUT,
            http::Method::Patch => reqwest::Method::PATCH,
            http::Method::Delete => reqwest::Method::DELETE,
        };
        let outgoing = Outgoing {
            method,
            url: req.url,
            headers: req.headers,
            body: req.body,
            authenticated: req.authenticated,
        };
        let result = match &mut self.egress {
            Ok(egress) => egress.send(outgoing).await,
            Err(operation) => Err(SendError::Denied(format!(
                "{operation} must not use the network"
            ))),
        };
        if let Err(e) = &result {
            tracing::debug!(plugin = %self.plugin_id, error = ?e, "plugin HTTP request failed");
        }
        Ok(result
            .map(|r| http::Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            })
            .map_err(|e| match e {
                SendError::Denied(m) => http::HttpError::Denied(m),
                SendError::InvalidRequest(m) => http::HttpError::InvalidRequest(m),
                SendError::Unreachable(m) => http::HttpError::Unreachable(m),
                SendError::Timeout => http::HttpError::Timeout,
                SendError::TooLarge => http::HttpError::TooLarge,
                SendError::BudgetExhausted => http::HttpError::BudgetExhausted,
            }))
    }
}

impl log::Host for CallState {
    async fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Debug => tracing::Level::DEBUG,
            log::Level::Info => tracing::Level::INFO,
            log::Level::Warn => tracing::Level::WARN,
            log::Level::Error => tracing::Level::ERROR,
        };
        self.guest_log(level, &message);
        Ok(())
    }
}

/// The guest's view of a source: non-secret fields only. Fields the auth type declares
/// secret are dropped here even if a caller put them among the plain fields.
pub fn source(info: &model::ProviderInfo, s: &model::SourceConfig) -> wit::Source {
    let secret_names = info.secret_fields(&s.auth_type);
    let pairs = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .filter(|(k, _)| !secret_names.contains(&k.as_str()))
            .map(|(name, value)| wit::Pair {
                name: name.clone(),
                value: value.clone(),
            })
            .collect()
    };
    wit::Source {
        base_url: s.base_url.clone(),
        auth_type: s.auth_type.clone(),
        auth_fields: pairs(&s.fields),
        settings: pairs(&s.settings),
        issue_url_template: s.issue_url_template.clone(),
        create_url_template: s.create_url_template.clone(),
        key_pattern: s.key_pattern.clone(),
    }
}

impl From<wit::ProviderError> for model::ProviderError {
    /// Converts, cutting an overlong message (see [`bounds::error_message`]).
    fn from(e: wit::ProviderError) -> Self {
        use model::ProviderError as E;
        let cut = bounds::error_message;
        match e {
            wit::ProviderError::InvalidInput(m) => E::InvalidInput(cut(m)),
            wit::ProviderError::Unauthorized(m) => E::Unauthorized(cut(m)),
            wit::ProviderError::Forbidden(m) => E::Forbidden(cut(m)),
            wit::ProviderError::NotFound(m) => E::NotFound(cut(m)),
            wit::ProviderError::RateLimited(r) => E::RateLimited {
                retry_after_secs: r.retry_after_secs.max(1),
                message: cut(r.message),
            },
            wit::ProviderError::Unreachable(m) => E::Unreachable(cut(m)),
            wit::ProviderError::Unsupported(m) => E::Unsupported(cut(m)),
            wit::ProviderError::Provider(m) => E::Provider(cut(m)),
        }
    }
}

impl From<wit::Issue> for model::Issue {
    fn from(i: wit::Issue) -> Self {
        model::Issue {
            key: i.key,
            title: i.title,
            status: i.status,
            status_category: match i.status_category {
                wit::StatusCategory::ToDo => model::StatusCategory::ToDo,
                wit::StatusCategory::InProgress => model::StatusCategory::InProgress,
                wit::StatusCategory::Done => model::StatusCategory::Done,
            },
            assignee: i.assignee,
            web_url: i.web_url,
        }
    }
}

impl From<wit::ConnectionInfo> for model::ConnectionInfo {
    fn from(c: wit::ConnectionInfo) -> Self {
        model::ConnectionInfo {
            account: c.account,
            detail: c.detail,
        }
    }
}

impl From<wit::ProviderInfo> for model::ProviderInfo {
    fn from(p: wit::ProviderInfo) -> Self {
        model::ProviderInfo {
            id: p.id,
            version: p.version,
            name: p.name,
            key_hint: p.key_hint,
            key_example: p.key_example,
            default_key_pattern: p.default_key_pattern,
            default_issue_url_template: p.default_issue_url_template,
            default_create_url_template: p.default_create_url_template,
            base_url_example: p.base_url_example,
            auth_types: p.auth_types.into_iter().map(auth_type).collect(),
            settings: p
                .settings
                .into_iter()
                .map(|s| model::Setting {
                    name: s.name,
                    label: s.label,
                    help: s.help,
                    kind: match s.kind {
                        wit::SettingKind::Text => model::SettingKind::Text,
                        wit::SettingKind::Url => model::SettingKind::Url,
                    },
                    required: s.required,
                })
                .collect(),
            extra_origins: p.extra_origins,
            comments: None,
            events: Vec::new(),
        }
    }
}

fn auth_type(a: wit::AuthType) -> model::AuthType {
    model::AuthType {
        id: a.id,
        label: a.label,
        fields: a
            .fields
            .into_iter()
            .map(|f| model::AuthField {
                name: f.name,
                label: f.label,
                secret: f.secret,
                required: f.required,
                help: f.help,
            })
            .collect(),
        scheme: match a.scheme {
            wit::CredentialScheme::None => model::CredentialScheme::None,
            wit::CredentialScheme::Basic(b) => model::CredentialScheme::Basic {
                user_field: b.user_field,
                password_field: b.password_field,
            },
            wit::CredentialScheme::Bearer(field) => model::CredentialScheme::Bearer { field },
            wit::CredentialScheme::Header(h) => model::CredentialScheme::Header {
                name: h.name,
                prefix: h.prefix,
                field: h.field,
            },
        },
    }
}

impl From<comments::CommentsInfo> for model::CommentsInfo {
    fn from(c: comments::CommentsInfo) -> Self {
        model::CommentsInfo {
            format: c.format,
            max_length: c.max_length,
        }
    }
}

impl From<comments::CommentInfo> for model::CommentInfo {
    fn from(c: comments::CommentInfo) -> Self {
        model::CommentInfo {
            id: c.id,
            web_url: c.web_url,
        }
    }
}

impl From<events::EventScheme> for model::EventScheme {
    fn from(s: events::EventScheme) -> Self {
        model::EventScheme {
            id: s.id,
            label: s.label,
            authenticity: match s.authenticity {
                events::Authenticity::HmacSha256(h) => {
                    model::Authenticity::HmacSha256(model::HmacScheme {
                        header: h.header,
                        prefix: h.prefix,
                        encoding: match h.encoding {
                            events::DigestEncoding::Hex => model::DigestEncoding::Hex,
                            events::DigestEncoding::Base64 => model::DigestEncoding::Base64,
                        },
                        content: match h.content {
                            events::SignedContent::Body => model::SignedContent::Body,
                            events::SignedContent::IdTimestampBody(h) => {
                                model::SignedContent::IdTimestampBody(model::IdTimestampHeaders {
                                    id: h.id,
                                    timestamp: h.timestamp,
                                })
                            }
                        },
                    })
                }
                events::Authenticity::TokenHeader(name) => model::Authenticity::TokenHeader(name),
                events::Authenticity::Basic => model::Authenticity::Basic,
            },
            replay: s.replay.map(|r| model::ReplayWindow {
                timestamp: locator(r.timestamp),
                unit: match r.unit {
                    events::TimeUnit::Seconds => model::TimeUnit::Seconds,
                    events::TimeUnit::Milliseconds => model::TimeUnit::Milliseconds,
                },
                tolerance_secs: r.tolerance_secs,
            }),
            delivery_id: s.delivery_id.map(locator),
            setup: s.setup,
        }
    }
}

fn locator(l: events::Locator) -> model::Locator {
    match l {
        events::Locator::Header(name) => model::Locator::Header(name),
        events::Locator::BodyPointer(pointer) => model::Locator::BodyPointer(pointer),
    }
}

/// The guest's view of an event.
pub fn event(e: model::Event) -> events::Event {
    events::Event {
        scheme: e.scheme,
        headers: e.headers,
        body: e.body,
    }
}

impl From<events::EventChange> for model::EventChange {
    fn from(c: events::EventChange) -> Self {
        model::EventChange {
            key: c.key,
            issue: c.issue.map(Into::into),
            version: c.version,
        }
    }
}
