//! The sources link creation checks new links against, kept in memory between creations so
//! that a creation neither reads the source nor opens its sealed credentials again.
//!
//! A kept source may be stale (edited on another replica, or here a moment ago): it is only
//! ever a guess. The link writer compares it with the source as stored inside the transaction
//! that stores the link ([`SeenSource::unchanged`]), and a creation checked against a source
//! that has changed since is checked again against the stored one (`links::create`); a
//! refusal (a disabled or unassigned source, a key the plugin or the pattern refuses) is
//! likewise given only after a check against the source read just then. So no link is stored
//! or refused on the strength of an outdated source.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::app::AppState;
use crate::plugin::SourceConfig;
use crate::sources::SourceError;
use crate::store::records::SourceRecord;
use crate::store::{Read, SECRETS, SOURCES, StoreError, Writer};

/// A source as the checks of a new link saw it.
pub struct SeenSource {
    /// The source's id.
    pub id: String,
    /// Its stored record.
    pub record: SourceRecord,
    /// Its sealed credentials as stored (none for a source without secrets).
    sealed: Option<Vec<u8>>,
    /// What plugin calls for it get (credentials opened).
    pub config: SourceConfig,
}

impl SeenSource {
    /// True when the source stored now (record and sealed credentials, read in the writing
    /// transaction) is the one the checks saw: a source edited, disabled, re-sealed or deleted
    /// since is not.
    pub fn unchanged(&self, w: &Writer) -> Result<bool, StoreError> {
        let record: Option<SourceRecord> = w.get(SOURCES, &self.id)?;
        if record.as_ref() != Some(&self.record) {
            return Ok(false);
        }
        let sealed: Option<Vec<u8>> = w.get(SECRETS, &self.id)?;
        Ok(sealed == self.sealed)
    }
}

/// Sources link creation saw, by id (see the module documentation).
#[derive(Default)]
pub struct LinkSources(Mutex<HashMap<String, Arc<SeenSource>>>);

impl LinkSources {
    /// The most sources kept; the cache starts over beyond it.
    const MAX: usize = 10_000;

    /// The kept source `id`, if any.
    pub fn kept(&self, id: &str) -> Option<Arc<SeenSource>> {
        self.0.lock().expect("link sources lock").get(id).cloned()
    }

    /// Forgets source `id` (it changed).
    pub fn forget(&self, id: &str) {
        self.0.lock().expect("link sources lock").remove(id);
    }

    /// Reads source `id` from the store and opens its credentials, keeping the result.
    pub async fn load(&self, state: &AppState, id: &str) -> Result<Arc<SeenSource>, SourceError> {
        let key = id.to_string();
        let (record, sealed): (Option<SourceRecord>, Option<Vec<u8>>) = state
            .store
            .read(move |r| Ok::<_, SourceError>((r.get(SOURCES, &key)?, r.get(SECRETS, &key)?)))
            .await?;
        let record = record.ok_or_else(|| SourceError::NotFound(id.to_string()))?;
        let secrets = match &sealed {
            Some(sealed) => crate::sources::open(&state.key, id, sealed)?,
            None => BTreeMap::new(),
        };
        let seen = Arc::new(SeenSource {
            id: id.to_string(),
            config: crate::sources::config(Some(id), &record, secrets),
            record,
            sealed,
        });
        let mut kept = self.0.lock().expect("link sources lock");
        if kept.len() >= Self::MAX {
            kept.clear();
        }
        kept.insert(id.to_string(), seen.clone());
        Ok(seen)
    }
}
