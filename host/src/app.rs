//! The application state, and the router built on it (assembled in `api/`, the only code that
//! knows axum): the seam tests drive with real requests.

use std::path::PathBuf;
use std::sync::Arc;

pub use crate::api::router;
use crate::crypto::MasterKey;
use crate::links::{IssueUrls, KeyPatterns, LinkWriter};
use crate::metrics::Metrics;
use crate::plugin::PluginHost;
use crate::store::Store;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Loaded plugins and the sandbox.
    pub plugins: Arc<PluginHost>,
    /// Seals and opens credentials.
    pub key: MasterKey,
    /// Where plugin files live (uploads are written here).
    pub plugins_dir: PathBuf,
    /// Compiled key patterns of sources.
    pub patterns: Arc<KeyPatterns>,
    /// Issue URLs of links, derived from their source's current configuration.
    pub issue_urls: Arc<IssueUrls>,
    /// Group-commit writer of new links.
    pub link_writer: Arc<LinkWriter>,
    /// The sources link creation last saw (see `link_sources`).
    pub link_sources: Arc<crate::link_sources::LinkSources>,
    /// Projects link creation found (see `links::KnownProjects`).
    pub known_projects: Arc<crate::links::KnownProjects>,
    /// Tokens found valid a moment ago (see `tokens::TokenCache`).
    pub token_cache: Arc<crate::tokens::TokenCache>,
    /// Counters for `/metrics` (in memory) and the per-source health (in memory, exchanged
    /// with the database by `crate::health_store`).
    pub metrics: Arc<Metrics>,
    /// Draft connection tests that passed, for the source saved right after (in memory).
    pub draft_tests: Arc<crate::sources::DraftTests>,
    /// The webhook receiver: delivery ids seen (in the database), the queue, counters (in memory).
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// Plugin admissions (uploads being compiled and checked, and the latest finished ones).
    pub admissions: Arc<crate::plugin_registry::admission::Admissions>,
}

impl AppState {
    /// The state of a service on `store` with these plugins and this master key. Starts the
    /// link writer task and the health exchange, so it must be called within a tokio runtime.
    pub fn new(
        store: Store,
        plugins: Arc<PluginHost>,
        key: MasterKey,
        plugins_dir: PathBuf,
    ) -> AppState {
        let metrics = Arc::default();
        crate::health_store::spawn(store.clone(), &metrics, plugins.clone());
        AppState {
            link_writer: Arc::new(LinkWriter::start(store.clone())),
            store,
            plugins,
            key,
            plugins_dir,
            patterns: Arc::default(),
            issue_urls: Arc::default(),
            link_sources: Arc::default(),
            known_projects: Arc::default(),
            token_cache: Arc::default(),
            metrics,
            draft_tests: Arc::default(),
            webhooks: Arc::default(),
            admissions: Arc::default(),
        }
    }
}
