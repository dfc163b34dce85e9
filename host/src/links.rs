//! Links between test objects and issues: the checks a new link must pass, the view members
//! see, and applying fetched issue details to stored links.
//!
//! A link outlives its source: disabling a source stops its sync, deleting it leaves the link
//! with its last snapshot; both are shown as "not syncing" ([`SyncState`]), derived at read
//! time from the source as it is now.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use regex::Regex;
use schemars::JsonSchema;
use serde::Serialize;

use crate::app::AppState;
use crate::field::FieldError;
use crate::ids::new_id;
use crate::link_sources::SeenSource;
use crate::paging::{self, Listed, PageRequest};
use crate::plugin::{Issue, PluginError, ProviderError};
use crate::sources::SourceError;
use crate::store::records::{
    LinkError, LinkRecord, Millis, ProjectRecord, Snapshot, SourceRecord, now,
};
use crate::store::{LINK_IDENTITIES, LINKS, PROJECTS, Read, SOURCES, StoreError, Writer};

/// Why a link could not be created, stored or updated.
#[derive(Debug, thiserror::Error)]
pub enum LinksError {
    /// What the member gave is wrong (the test object, the key).
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The chosen source does not exist.
    #[error("no source {0:?}")]
    SourceNotFound(String),
    /// The chosen source (named) is disabled.
    #[error("{0} is disabled: it cannot be used for new links")]
    SourceDisabled(String),
    /// The chosen source (named) is not assigned to the link's project.
    #[error("{0} is not available in this project")]
    SourceNotAssigned(String),
    /// The plugin could not check the key (missing, busy or failed; not a refusal of the
    /// key itself, which is [`LinksError::Invalid`]).
    #[error(transparent)]
    KeyNotChecked(PluginError),
    /// The test object is already linked to this issue through this source.
    #[error("{key} is already linked to {test_object} through this source")]
    Duplicate {
        /// The canonical key.
        key: String,
        /// The test object.
        test_object: String,
    },
    /// The source could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No link with this id in the project.
    #[error("no link {0:?} in this project")]
    LinkNotFound(String),
    /// The source does not exist, is disabled or is not assigned to the project.
    #[error("no usable source {0:?} in this project")]
    NoUsableSource(String),
    /// The source has no "Create issues" capability or no create URL template.
    #[error("this source offers no create-issue shortcut")]
    NoCreateShortcut,
    /// The plugin failed.
    #[error(transparent)]
    Plugin(PluginError),
    /// The link writer's task is gone, or its transaction failed (the detail).
    #[error("{0}")]
    Writer(String),
    /// The source (named) changed again and again while the link was being created.
    #[error("{0} changed while the link was being created; try again")]
    SourceChanged(String),
    /// The link's project does not exist (or no longer).
    #[error(transparent)]
    Project(#[from] crate::projects::ProjectError),
}

/// Whether a link's details are kept fresh, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SyncState {
    /// The source is enabled and reads issue details.
    Syncing,
    /// The source is disabled: the link shows its last snapshot until re-enabled.
    NotSyncingDisabled,
    /// The source was deleted: the link keeps its last snapshot for good.
    NotSyncingDeleted,
    /// The source does not have the "Read issue details" capability.
    NoDetails,
}

impl SyncState {
    /// The state's kebab-case code, as on the wire.
    pub fn code(self) -> &'static str {
        match self {
            SyncState::Syncing => "syncing",
            SyncState::NotSyncingDisabled => "not-syncing-disabled",
            SyncState::NotSyncingDeleted => "not-syncing-deleted",
            SyncState::NoDetails => "no-details",
        }
    }

    /// The state of links of `source` (None = deleted).
    pub fn of(source: Option<&SourceRecord>) -> SyncState {
        match source {
            None => SyncState::NotSyncingDeleted,
            Some(s) if !s.enabled => SyncState::NotSyncingDisabled,
            Some(s) if !s.capabilities.read_issue_details => SyncState::NoDetails,
            Some(_) => SyncState::Syncing,
        }
    }
}

/// A link on the wire.
#[derive(Serialize, JsonSchema)]
pub struct LinkView {
    /// Id.
    pub id: String,
    /// The stored link.
    #[serde(flatten)]
    pub record: LinkRecord,
    /// Sync state, derived from the source as it is now.
    pub sync_state: SyncState,
}

/// Builds views of links, looking up each source once.
pub fn views(
    links: Vec<(String, LinkRecord)>,
    sources: &HashMap<String, SourceRecord>,
) -> Vec<LinkView> {
    links
        .into_iter()
        .map(|(id, mut record)| {
            let source = sources.get(&record.source_id);
            if let Some(s) = source {
                record.source_name = s.display_name.clone();
            }
            LinkView {
                id,
                sync_state: SyncState::of(source),
                record,
            }
        })
        .collect()
}

/// Issue URLs derived from sources' configuration, by (source id, the source's `updated_at`,
/// the plugin's digest, key). Every edit moves `updated_at` and a new plugin version has a new
/// digest, so after either the links' URLs are derived anew.
#[derive(Default)]
pub struct IssueUrls(Mutex<HashMap<UrlEntry, String>>);

/// (source id, source `updated_at`, plugin digest, key).
type UrlEntry = (String, Millis, String, String);

impl IssueUrls {
    /// The most URLs kept; the cache starts over beyond it.
    const MAX: usize = 100_000;

    fn get(&self, entry: &UrlEntry) -> Option<String> {
        self.0.lock().expect("URL cache lock").get(entry).cloned()
    }

    fn put(&self, entry: UrlEntry, url: String) {
        let mut cache = self.0.lock().expect("URL cache lock");
        if cache.len() >= Self::MAX {
            cache.clear();
        }
        cache.insert(entry, url);
    }
}

/// Sets each view's `url` to the one its source's configuration gives now (the plugin's
/// `issue-url`, which runs offline), so that an edit of the base URL or the issue URL template
/// takes effect at once on existing links, with or without "Read issue details". A link of a
/// deleted source, of a missing plugin, or one the plugin cannot render keeps its stored URL.
pub async fn current_urls(
    state: &AppState,
    views: &mut [LinkView],
    sources: &HashMap<String, SourceRecord>,
) {
    for view in views {
        let link = &mut view.record;
        let Some(source) = sources.get(&link.source_id) else {
            continue;
        };
        let Ok(plugin) = state.plugins.get(&source.provider) else {
            continue;
        };
        let entry = (
            link.source_id.clone(),
            source.updated_at,
            plugin.digest.clone(),
            link.key.clone(),
        );
        if let Some(url) = state.issue_urls.get(&entry) {
            link.url = Some(url);
            continue;
        }
        let config = crate::sources::config(Some(&link.source_id), source, BTreeMap::new());
        if let Ok(url) = state.plugins.issue_url(&config, &link.key).await {
            state.issue_urls.put(entry, url.clone());
            link.url = Some(url);
        }
    }
}

/// Compiled key patterns, by pattern text: a source's pattern is compiled once, not per link.
#[derive(Default)]
pub struct KeyPatterns(Mutex<HashMap<String, Regex>>);

impl KeyPatterns {
    /// True if `key` matches `pattern` (patterns are validated when a source is saved; one
    /// that no longer compiles matches nothing).
    pub fn matches(&self, pattern: &str, key: &str) -> bool {
        let mut cache = self.0.lock().expect("pattern cache lock");
        if !cache.contains_key(pattern) {
            if cache.len() > 1024 {
                cache.clear();
            }
            match regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
            {
                Ok(re) => {
                    cache.insert(pattern.to_string(), re);
                }
                Err(_) => return false,
            }
        }
        cache[pattern].is_match(key)
    }
}

/// Projects link creation found in the store: a creation in one of them reads it no more (the
/// link writer checks it is still there when it stores the link).
#[derive(Default)]
pub struct KnownProjects(Mutex<HashSet<String>>);

impl KnownProjects {
    /// The most projects kept; the set starts over beyond it.
    const MAX: usize = 10_000;

    /// Refuses a project that does not exist ([`crate::projects::ProjectError::NotFound`]),
    /// reading the store only for a project not seen before.
    pub async fn check(&self, state: &AppState, project: &str) -> Result<(), LinksError> {
        if self.0.lock().expect("projects lock").contains(project) {
            return Ok(());
        }
        crate::projects::get(state, project).await?;
        let mut known = self.0.lock().expect("projects lock");
        if known.len() >= Self::MAX {
            known.clear();
        }
        known.insert(project.to_string());
        Ok(())
    }

    /// Forgets `project` (it is gone).
    fn forget(&self, project: &str) {
        self.0.lock().expect("projects lock").remove(project);
    }
}

/// A link that passed every check and is ready to store.
pub struct NewLink {
    /// The record.
    pub record: LinkRecord,
    /// The source as the checks saw it: the link is stored only if it is still so.
    pub source: Arc<SeenSource>,
}

/// Runs the checks for a new link, in order: the source exists, is enabled, is assigned to the
/// project; the provider's `normalize-key` accepts the key; the key matches the source's key
/// pattern. Then builds the issue URL and, with "Read issue details", fetches the issue (a
/// failed fetch is recorded on the link, not thrown).
///
/// The pattern is checked on the canonical key, after normalisation, so `proj-7` and a pasted
/// issue URL pass a pattern like `^[A-Z]+-\d+$` once the plugin has made them `PROJ-7`; and on
/// the key as typed (trimmed), so a pattern written for what members type, like GitHub's
/// `^#\d+$`, passes `#123` although the plugin stores `123`.
///
/// The checks run against the source as creation last saw it (see [`crate::link_sources`]);
/// a link that fails them there is checked again against the source as stored now, which
/// alone decides a refusal.
pub async fn prepare(
    state: &AppState,
    project: &str,
    test_object: &str,
    source_id: &str,
    key: &str,
    who: &str,
) -> Result<NewLink, LinksError> {
    let test_object = test_object.trim();
    if test_object.is_empty()
        || test_object.chars().count() > 200
        || test_object.chars().any(char::is_control)
    {
        return Err(LinksError::Invalid(FieldError::new(
            "test_object",
            "name the test object, e.g. test-case:TC-42 (1 to 200 characters, no control characters)",
        )));
    }
    if key.trim().is_empty() {
        return Err(FieldError::new("key", "enter an issue key").into());
    }
    if key.len() > 2048 {
        return Err(FieldError::new("key", "an issue key or URL is at most 2048 bytes").into());
    }
    if let Some(kept) = state.link_sources.kept(source_id)
        && let Ok(link) = prepare_against(state, project, test_object, kept, key, who).await
    {
        return Ok(link);
    }
    let seen = match state.link_sources.load(state, source_id).await {
        Ok(seen) => seen,
        Err(SourceError::NotFound(_)) => {
            return Err(LinksError::SourceNotFound(source_id.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    prepare_against(state, project, test_object, seen, key, who).await
}

/// The checks of [`prepare`] (after those of its input) against the source `seen`.
async fn prepare_against(
    state: &AppState,
    project: &str,
    test_object: &str,
    seen: Arc<SeenSource>,
    key: &str,
    who: &str,
) -> Result<NewLink, LinksError> {
    let (source, config, source_id) = (&seen.record, &seen.config, seen.id.as_str());
    if !source.enabled {
        return Err(LinksError::SourceDisabled(source.display_name.clone()));
    }
    if !source.projects.includes(project) {
        return Err(LinksError::SourceNotAssigned(source.display_name.clone()));
    }
    let canonical = match state.plugins.normalize_key(config, key).await {
        Ok(k) => k,
        Err(PluginError::Provider(ProviderError::InvalidInput(message))) => {
            return Err(FieldError::new("key", message).into());
        }
        Err(e) => return Err(LinksError::KeyNotChecked(e)),
    };
    if let Some(pattern) = &source.key_pattern
        && !state.patterns.matches(pattern, &canonical)
        && !state.patterns.matches(pattern, key.trim())
    {
        return Err(FieldError::new(
            "key",
            format!("{canonical:?} does not match this source's key pattern {pattern}"),
        )
        .into());
    }
    let url = state.plugins.issue_url(config, &canonical).await.ok();
    let mut record = LinkRecord {
        project: project.to_string(),
        test_object: test_object.to_string(),
        source_id: source_id.to_string(),
        source_name: source.display_name.clone(),
        provider: source.provider.clone(),
        key: canonical.clone(),
        url,
        snapshot: None,
        last_error: None,
        created_at: now(),
        created_by: who.to_string(),
        event_version: None,
    };
    if source.capabilities.read_issue_details {
        let status = crate::compat::status(&state.plugins, source);
        let fetched = match crate::sync::paused_until(state, source_id) {
            // The source does not fit the loaded plugin: nothing is asked of it.
            _ if status.reason().is_some() => Err(FetchError {
                code: crate::compat::CODE.into(),
                message: format!(
                    "not fetched: {}; {}",
                    crate::compat::incompatible(status.reason().unwrap_or_default()),
                    crate::compat::fix_hint()
                ),
            }),
            // The tracker asked us to wait: the link is stored, its details come with a sync.
            Some(until) => Err(FetchError {
                code: "source-paused".into(),
                message: format!(
                    "not fetched yet: {}; a sync after that fetches it",
                    crate::sync::pause_text(until)
                ),
            }),
            None => state
                .metrics
                .observe(
                    Some(source_id),
                    &config.provider,
                    "fetch-issue",
                    crate::metrics::Outcome::of_fetch,
                    state.plugins.fetch_issue(config, &canonical),
                )
                .await
                .map_err(FetchError::from),
        };
        apply(&mut record, fetched, now());
    }
    Ok(NewLink {
        record,
        source: seen,
    })
}

/// How many times a creation is checked again when its source changed before it was stored.
const CHANGED_SOURCE_RETRIES: usize = 2;

/// Creates a link of `test_object` in `project` to the issue `key` of source `source_id`
/// ([`prepare`], then stored by the [`LinkWriter`]); returns it as members see it. A source
/// that changed between the checks and the commit has the checks run again on it as it is.
pub async fn create(
    state: &AppState,
    project: &str,
    test_object: &str,
    source_id: &str,
    key: &str,
    who: &str,
) -> Result<LinkView, LinksError> {
    state.known_projects.check(state, project).await?;
    let mut retries = 0;
    loop {
        let link = prepare(state, project, test_object, source_id, key, who).await?;
        let id = new_id("lnk");
        let (record, source) = (link.record.clone(), link.source.clone());
        match state.link_writer.insert(id.clone(), link).await {
            Ok(()) => {
                return Ok(LinkView {
                    id,
                    sync_state: SyncState::of(Some(&source.record)),
                    record,
                });
            }
            Err(LinksError::SourceChanged(_)) if retries < CHANGED_SOURCE_RETRIES => {
                state.link_sources.forget(source_id);
                retries += 1;
            }
            Err(e @ LinksError::Project(_)) => {
                state.known_projects.forget(project);
                return Err(e);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Deletes link `id` of `project`.
pub async fn delete(state: &AppState, project: &str, id: &str) -> Result<(), LinksError> {
    let (project, id) = (project.to_string(), id.to_string());
    state
        .store
        .write(move |w| match w.get::<LinkRecord>(LINKS, &id)? {
            Some(link) if link.project == project => {
                remove(w, &id)?;
                Ok(())
            }
            _ => Err(LinksError::LinkNotFound(id)),
        })
        .await
}

/// The most links one page of a project's links holds.
pub const MAX_PAGE: usize = 500;

/// The page size of a project's links when a page is asked for without a size.
pub const PAGE_SIZE: usize = 50;

/// Which of a project's links to list.
#[derive(Clone, Debug, Default)]
pub struct LinkFilter {
    /// Only links of this test object.
    pub test_object: Option<String>,
    /// Only links through this source.
    pub source_id: Option<String>,
}

/// The links of `project` that `filter` keeps, oldest first: all of them, or the page asked
/// for (see [`crate::paging`]).
pub async fn list(
    state: &AppState,
    project: String,
    filter: LinkFilter,
    page: Option<PageRequest>,
) -> Result<Listed<LinkView>, StoreError> {
    let views = load_views(state, move |l| {
        l.project == project
            && filter
                .test_object
                .as_ref()
                .is_none_or(|t| *t == l.test_object)
            && filter.source_id.as_ref().is_none_or(|s| *s == l.source_id)
    })
    .await?;
    Ok(paging::cut(views, page, position))
}

/// Where a link stands in a list of links (oldest first): its creation time and id, what a
/// cursor holds.
pub fn position(view: &LinkView) -> Vec<String> {
    vec![format!("{:020}", view.record.created_at), view.id.clone()]
}

/// The views of the links `keep` selects, oldest first, with their current URLs.
pub async fn load_views(
    state: &AppState,
    keep: impl Fn(&LinkRecord) -> bool + Send + 'static,
) -> Result<Vec<LinkView>, StoreError> {
    let (links, sources) = state
        .store
        .read(move |r| {
            let links: Vec<(String, LinkRecord)> = r.all(LINKS)?;
            let sources: Vec<(String, SourceRecord)> = r.all(SOURCES)?;
            Ok::<_, StoreError>((
                links
                    .into_iter()
                    .filter(|(_, l)| keep(l))
                    .collect::<Vec<_>>(),
                sources,
            ))
        })
        .await?;
    let sources: HashMap<String, SourceRecord> = sources.into_iter().collect();
    let mut views = views(links, &sources);
    current_urls(state, &mut views, &sources).await;
    views.sort_by_cached_key(position);
    Ok(views)
}

/// How many links, in how many projects, go through source `source_id`: what a disable or a
/// delete would leave without sync.
pub async fn impact(state: &AppState, source_id: &str) -> Result<(usize, usize), StoreError> {
    let links: Vec<(String, LinkRecord)> = state.store.read(|r| r.all(LINKS)).await?;
    let mine: Vec<&LinkRecord> = links
        .iter()
        .map(|(_, l)| l)
        .filter(|l| l.source_id == source_id)
        .collect();
    let mut projects: Vec<&str> = mine.iter().map(|l| l.project.as_str()).collect();
    projects.sort();
    projects.dedup();
    Ok((mine.len(), projects.len()))
}

/// The create-issue shortcut of source `source_id` in `project`: only for an enabled source
/// assigned to it with the "Create issues" capability and a create URL template.
pub async fn create_url(
    state: &AppState,
    project: &str,
    source_id: &str,
) -> Result<String, LinksError> {
    let (source, secrets) = crate::sources::load_with_secrets(state, source_id).await?;
    if !source.enabled || !source.projects.includes(project) {
        return Err(LinksError::NoUsableSource(source_id.to_string()));
    }
    if !source.capabilities.create_issues || source.create_url_template.is_none() {
        return Err(LinksError::NoCreateShortcut);
    }
    state
        .plugins
        .create_url(&crate::sources::config(Some(source_id), &source, secrets))
        .await
        .map_err(LinksError::Plugin)
}

/// Stores new links by group commit: creations arriving together share one durable write
/// transaction, and each is acknowledged only after that transaction commits. A duplicate, or
/// a link whose source changed since its checks ([`LinksError::SourceChanged`]), is refused
/// on its own without failing the others; any other failure aborts the batch and every
/// creation in it gets the error.
pub struct LinkWriter {
    queue: tokio::sync::mpsc::Sender<Pending>,
}

struct Pending {
    id: String,
    link: NewLink,
    reply: tokio::sync::oneshot::Sender<Result<(), LinksError>>,
}

/// The most links committed in one transaction.
const MAX_GROUP: usize = 512;

impl LinkWriter {
    /// Starts the writer task (call within a tokio runtime); it ends when the last sender is
    /// dropped.
    pub fn start(store: crate::store::Store) -> LinkWriter {
        let (queue, mut incoming) = tokio::sync::mpsc::channel::<Pending>(4 * MAX_GROUP);
        tokio::spawn(async move {
            while let Some(first) = incoming.recv().await {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match incoming.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let (replies, items): (Vec<_>, Vec<_>) =
                    group.into_iter().map(|p| (p.reply, (p.id, p.link))).unzip();
                let outcome = store
                    .write_additions(move |w| insert_group(w, &items))
                    .await;
                match outcome {
                    Ok(results) => {
                        for (reply, result) in replies.into_iter().zip(results) {
                            let _ = reply.send(result);
                        }
                    }
                    Err(e) => {
                        for reply in replies {
                            let _ = reply.send(Err(LinksError::Writer(e.to_string())));
                        }
                    }
                }
            }
        });
        LinkWriter { queue }
    }

    /// Stores one link durably, if its source is still as its checks saw it.
    pub async fn insert(&self, id: String, link: NewLink) -> Result<(), LinksError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue
            .send(Pending { id, link, reply })
            .await
            .map_err(|_| LinksError::Writer("the link writer stopped".into()))?;
        answer
            .await
            .map_err(|_| LinksError::Writer("the link writer dropped a request".into()))?
    }
}

/// Stores a group of links in one transaction (a statement for all their identities, one for
/// all the links): each is refused alone when its project is gone, when its source changed
/// since its checks (each project and source read once), or when a duplicate, of a stored link
/// or of one before it in the group.
fn insert_group(
    w: &mut Writer,
    items: &[(String, NewLink)],
) -> Result<Vec<Result<(), LinksError>>, LinksError> {
    let duplicate = |link: &NewLink| {
        Err(LinksError::Duplicate {
            key: link.record.key.clone(),
            test_object: link.record.test_object.clone(),
        })
    };
    // By the address of the source a link was checked against.
    let mut unchanged: HashMap<usize, bool> = HashMap::new();
    let mut projects: HashMap<&str, bool> = HashMap::new();
    let mut results = Vec::with_capacity(items.len());
    // Identity -> the link claiming it first.
    let mut claims: HashMap<String, usize> = HashMap::new();
    let mut identities = Vec::new();
    for (n, (id, link)) in items.iter().enumerate() {
        let seen = Arc::as_ptr(&link.source) as usize;
        let still = match unchanged.get(&seen) {
            Some(still) => *still,
            None => {
                let still = link.source.unchanged(w)?;
                unchanged.insert(seen, still);
                still
            }
        };
        let project = link.record.project.as_str();
        let project_exists = match projects.get(project) {
            Some(exists) => *exists,
            None => {
                let exists = w.get::<ProjectRecord>(PROJECTS, project)?.is_some();
                projects.insert(project, exists);
                exists
            }
        };
        let identity = link.record.identity();
        results.push(if !project_exists {
            let gone = crate::projects::ProjectError::NotFound(project.to_string());
            Err(LinksError::Project(gone))
        } else if !still {
            let name = link.source.record.display_name.clone();
            Err(LinksError::SourceChanged(name))
        } else {
            match claims.entry(identity) {
                Entry::Occupied(_) => duplicate(link),
                Entry::Vacant(free) => {
                    identities.push((free.key().clone(), json_bytes(id)));
                    free.insert(n);
                    Ok(())
                }
            }
        });
    }
    let stored: HashSet<String> = w
        .insert_new(LINK_IDENTITIES, &identities)?
        .into_iter()
        .map(|(identity, _)| identity)
        .collect();
    let mut records = Vec::with_capacity(claims.len());
    for (identity, n) in claims {
        let (id, link) = &items[n];
        if stored.contains(&identity) {
            records.push((id.clone(), json_bytes(&link.record)));
        } else {
            results[n] = duplicate(link);
        }
    }
    w.put_all(LINKS, &records)?;
    Ok(results)
}

/// A record as stored.
fn json_bytes(record: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(record).expect("records serialize")
}

/// Removes a link and its identity.
pub fn remove(w: &mut Writer, id: &str) -> Result<Option<LinkRecord>, StoreError> {
    let Some(record) = w.get::<LinkRecord>(LINKS, id)? else {
        return Ok(None);
    };
    w.delete(LINKS, id)?;
    w.delete(LINK_IDENTITIES, &record.identity())?;
    Ok(Some(record))
}

/// A fetch failure in the terms a link records.
#[derive(Clone, Debug)]
pub struct FetchError {
    /// Category code.
    pub code: String,
    /// Message.
    pub message: String,
}

impl From<PluginError> for FetchError {
    fn from(e: PluginError) -> Self {
        FetchError {
            code: e.code().to_string(),
            message: e.to_string(),
        }
    }
}

impl From<ProviderError> for FetchError {
    fn from(e: ProviderError) -> Self {
        FetchError {
            code: e.code().to_string(),
            message: e.to_string(),
        }
    }
}

/// Applies one fetch outcome to a link: a success replaces the snapshot and clears the error;
/// a failure records the error and keeps the last snapshot.
pub fn apply(record: &mut LinkRecord, outcome: Result<Issue, FetchError>, at: Millis) {
    match outcome {
        Ok(issue) => {
            record.url = Some(issue.web_url.clone());
            record.snapshot = Some(Snapshot {
                title: issue.title,
                status: issue.status,
                status_category: issue.status_category,
                assignee: issue.assignee,
                web_url: issue.web_url,
                fetched_at: at,
            });
            record.last_error = None;
        }
        Err(e) => {
            record.last_error = Some(LinkError {
                code: e.code,
                message: e.message,
                at,
            })
        }
    }
}

/// Applies fetch outcomes by key to the given links of one source, in one write transaction.
/// Links deleted meanwhile are skipped.
pub async fn store_outcomes(
    state: &AppState,
    link_ids: Vec<String>,
    outcomes: BTreeMap<String, Result<Issue, FetchError>>,
) -> Result<usize, StoreError> {
    let at = now();
    state
        .store
        .write(move |w| {
            let mut updated = 0;
            for id in link_ids {
                let Some(mut record) = w.get::<LinkRecord>(LINKS, &id)? else {
                    continue;
                };
                if let Some(outcome) = outcomes.get(&record.key) {
                    apply(&mut record, outcome.clone(), at);
                    w.put(LINKS, &id, &record)?;
                    updated += 1;
                }
            }
            Ok::<_, StoreError>(updated)
        })
        .await
}
