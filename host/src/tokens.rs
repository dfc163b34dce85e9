//! Bearer tokens with roles. A token's value is shown once, when created; only its sha-256
//! is stored. An admin can always get in: a preset admin token, or a first one made at start
//! ([`bootstrap_admin`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::app::AppState;
use crate::audit::audit;
use crate::field::FieldError;
use crate::ids::new_id;
use crate::names;
use crate::store::records::{ProjectRecord, Role, TokenRecord, now};
use crate::store::{PROJECTS, Read, Store, StoreError, TOKENS, Writer};

/// Why a token could not be made or revoked.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// What the admin gave is wrong.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No token has this id.
    #[error("no token {0:?}")]
    NotFound(String),
    /// Revoking it would leave no admin token.
    #[error("this is the last admin token; create another first")]
    LastAdmin,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The hex sha-256 under which a token is stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The record of the token `token`, if it is a known, unrevoked one: from the store, or from
/// [`TokenCache`] when it was found there less than [`TOKEN_CACHE_TTL`] ago.
pub async fn find(state: &AppState, token: &str) -> Result<Option<TokenRecord>, StoreError> {
    let hash = token_hash(token);
    if let Some(record) = state.token_cache.get(&hash) {
        return Ok(Some(record));
    }
    let generation = state.token_cache.generation();
    let key = hash.clone();
    let found: Option<TokenRecord> = state.store.read(move |r| r.get(TOKENS, &key)).await?;
    if let Some(record) = &found {
        state.token_cache.put(generation, hash, record.clone());
    }
    Ok(found)
}

/// How long a token found valid is taken for valid without reading the store again. A token
/// revoked on this replica is refused at once (the revocation empties the cache); one revoked on
/// another replica on the same database is refused by this one within this time.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(1);

/// Tokens found valid in the store a moment ago, by hash, so that a burst of requests with one
/// token reads it once (see [`TOKEN_CACHE_TTL`]). Unknown tokens are never kept.
#[derive(Default)]
pub struct TokenCache(Mutex<KeptTokens>);

#[derive(Default)]
struct KeptTokens {
    /// Moves on at every revocation: a lookup that began before one keeps nothing.
    generation: u64,
    found: HashMap<String, (TokenRecord, Instant)>,
}

impl TokenCache {
    /// The most tokens kept; the cache starts over beyond it.
    const MAX: usize = 10_000;

    fn get(&self, hash: &str) -> Option<TokenRecord> {
        let kept = self.0.lock().expect("token cache lock");
        let (record, at) = kept.found.get(hash)?;
        (at.elapsed() < TOKEN_CACHE_TTL).then(|| record.clone())
    }

    fn generation(&self) -> u64 {
        self.0.lock().expect("token cache lock").generation
    }

    /// Keeps `record`, read after `generation` began, unless a revocation came since.
    fn put(&self, generation: u64, hash: String, record: TokenRecord) {
        let mut kept = self.0.lock().expect("token cache lock");
        if kept.generation != generation {
            return;
        }
        if kept.found.len() >= Self::MAX {
            kept.found.clear();
        }
        kept.found.insert(hash, (record, Instant::now()));
    }

    /// Forgets every token (one was revoked).
    fn clear(&self) {
        let mut kept = self.0.lock().expect("token cache lock");
        kept.generation += 1;
        kept.found.clear();
    }
}

/// A new random token value.
pub fn new_token_value() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "its_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Makes a token named `name` with `role` (and, for a member, its `projects`) for `who`;
/// returns its value, the only time it is known, and its record.
pub async fn create(
    state: &AppState,
    who: &str,
    name: &str,
    role: Role,
    projects: Vec<String>,
) -> Result<(String, TokenRecord), TokenError> {
    let name = names::check("name", name, "a token name", "CI pipeline", 100)?;
    if name == PRESET_NAME {
        return Err(FieldError::new(
            "name",
            format!("{PRESET_NAME:?} is reserved for the admin token given at start-up"),
        )
        .into());
    }
    if role == Role::Member && projects.is_empty() {
        return Err(
            FieldError::new("projects", "a member token needs at least one project").into(),
        );
    }
    let token = new_token_value();
    let record = TokenRecord {
        id: new_id("tok"),
        name,
        role,
        projects: if role == Role::Admin {
            Vec::new()
        } else {
            projects
        },
        created_at: now(),
    };
    let (hash, value, who) = (token_hash(&token), record.clone(), who.to_string());
    state
        .store
        .write(move |w| {
            for (i, project) in value.projects.iter().enumerate() {
                if w.get::<ProjectRecord>(PROJECTS, project)?.is_none() {
                    return Err(TokenError::Invalid(FieldError::new(
                        format!("projects[{i}]"),
                        format!("no project {project:?}"),
                    )));
                }
            }
            w.put(TOKENS, &hash, &value)?;
            // The record only: never the token's value or hash.
            audit(
                w,
                &who,
                "token.created",
                &value.id,
                json!({"name": value.name, "role": value.role, "projects": value.projects}),
            )?;
            Ok::<_, TokenError>(())
        })
        .await?;
    Ok((token, record))
}

/// Every token's record, oldest first (never a value).
pub async fn list(state: &AppState) -> Result<Vec<TokenRecord>, StoreError> {
    let all: Vec<(String, TokenRecord)> = state.store.read(|r| r.all(TOKENS)).await?;
    let mut tokens: Vec<TokenRecord> = all.into_iter().map(|(_, t)| t).collect();
    tokens.sort_by_cached_key(position);
    Ok(tokens)
}

/// Where a token stands in the list (oldest first): its creation time and id, what a cursor
/// holds.
pub fn position(token: &TokenRecord) -> Vec<String> {
    vec![format!("{:020}", token.created_at), token.id.clone()]
}

/// Revokes token `id`; revoking the last admin token is refused. It is refused by this
/// replica at once, by others within [`TOKEN_CACHE_TTL`].
pub async fn revoke(state: &AppState, who: &str, id: &str) -> Result<(), TokenError> {
    let (who, id) = (who.to_string(), id.to_string());
    // Before and after: a lookup in between finds the token gone or keeps nothing.
    state.token_cache.clear();
    let revoked = state
        .store
        .write(move |w| {
            let all: Vec<(String, TokenRecord)> = w.all(TOKENS)?;
            let (hash, record) = all
                .iter()
                .find(|(_, t)| t.id == id)
                .ok_or_else(|| TokenError::NotFound(id.clone()))?;
            let admins = all.iter().filter(|(_, t)| t.role == Role::Admin).count();
            if record.role == Role::Admin && admins == 1 {
                return Err(TokenError::LastAdmin);
            }
            w.delete(TOKENS, hash)?;
            audit(
                w,
                &who,
                "token.revoked",
                &record.id,
                json!({"name": record.name, "role": record.role}),
            )?;
            Ok::<_, TokenError>(())
        })
        .await;
    state.token_cache.clear();
    revoked
}

/// The name of the admin token given at start-up (`--admin-token-file`, `--admin-token`,
/// `INTEGRATION_ADMIN_TOKEN`); reserved, so that API tokens are never taken for it.
pub const PRESET_NAME: &str = "preset admin";

/// Makes sure an admin can get in: stores `preset` as an admin token if given, or creates one
/// if no token exists yet. Returns a newly created value, to be shown once.
///
/// A preset is the one preset token: a start with a new value revokes the previous preset
/// (audited), so rotating it is a restart. Tokens made through the API are left alone.
pub async fn bootstrap_admin(
    store: &Store,
    preset: Option<String>,
) -> Result<Option<String>, StoreError> {
    store
        .write(move |w| {
            let record = |name: &str| TokenRecord {
                id: new_id("tok"),
                name: name.to_string(),
                role: Role::Admin,
                projects: Vec::new(),
                created_at: now(),
            };
            if let Some(token) = preset {
                let hash = token_hash(&token);
                revoke_other_presets(w, &hash)?;
                if w.get::<TokenRecord>(TOKENS, &hash)?.is_none() {
                    w.put(TOKENS, &hash, &record(PRESET_NAME))?;
                }
                return Ok(None);
            }
            if !w.all::<TokenRecord>(TOKENS)?.is_empty() {
                return Ok(None);
            }
            let token = new_token_value();
            w.put(TOKENS, &token_hash(&token), &record("first admin"))?;
            Ok(Some(token))
        })
        .await
}

/// Deletes every preset admin token but the one hashed `keep`.
fn revoke_other_presets(w: &mut Writer, keep: &str) -> Result<(), StoreError> {
    let all: Vec<(String, TokenRecord)> = w.all(TOKENS)?;
    for (hash, old) in all {
        if hash != keep && old.name == PRESET_NAME && old.role == Role::Admin {
            w.delete(TOKENS, &hash)?;
            w.audit(&json!({
                "at": now(), "who": "start-up", "action": "token.revoked", "target": old.id,
                "details": {"name": old.name, "role": old.role, "reason": "replaced by a new preset admin token"},
            }))?;
            tracing::info!(token = %old.id, "revoked the previous preset admin token");
        }
    }
    Ok(())
}
