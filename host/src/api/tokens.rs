//! `/tokens`: bearer tokens with roles. A token's value is shown once, when created; only its
//! sha-256 is stored.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::ApiError;
use super::extract::{Body, Caller, Path, token_hash};
use crate::app::AppState;
use crate::audit::audit;
use crate::ids::new_id;
use crate::names;
use crate::store::records::{ProjectRecord, Role, TokenRecord, now};
use crate::store::{PROJECTS, Read, Store, StoreError, TOKENS, Writer};

/// Body of `POST /tokens`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenInput {
    /// A label.
    pub name: String,
    /// `admin` or `member`.
    pub role: Role,
    /// For members: at least one existing project id.
    #[serde(default)]
    pub projects: Vec<String>,
}

/// A created token: the only time its value is sent.
#[derive(Serialize)]
pub struct CreatedToken {
    /// The bearer token. Store it now; it cannot be shown again.
    pub token: String,
    /// The record.
    #[serde(flatten)]
    pub record: TokenRecord,
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

/// `POST /tokens` (admin).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(input): Body<TokenInput>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    caller.require_admin()?;
    let name = names::check("name", &input.name, "a token name", "CI pipeline", 100)?;
    if name == PRESET_NAME {
        return Err(ApiError::invalid(
            "name",
            format!("{PRESET_NAME:?} is reserved for the admin token given at start-up"),
        ));
    }
    if input.role == Role::Member && input.projects.is_empty() {
        return Err(ApiError::invalid(
            "projects",
            "a member token needs at least one project",
        ));
    }
    let token = new_token_value();
    let record = TokenRecord {
        id: new_id("tok"),
        name,
        role: input.role,
        projects: if input.role == Role::Admin {
            Vec::new()
        } else {
            input.projects
        },
        created_at: now(),
    };
    let (hash, value, who) = (token_hash(&token), record.clone(), caller.who());
    state
        .store
        .write(move |w| {
            for (i, project) in value.projects.iter().enumerate() {
                if w.get::<ProjectRecord>(PROJECTS, project)?.is_none() {
                    return Err(ApiError::invalid(
                        format!("projects[{i}]"),
                        format!("no project {project:?}"),
                    ));
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
            Ok(())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, record })))
}

/// `GET /tokens` (admin): records only, never values.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<TokenRecord>>, ApiError> {
    caller.require_admin()?;
    let all: Vec<(String, TokenRecord)> = state.store.read(|r| r.all(TOKENS)).await?;
    let mut tokens: Vec<TokenRecord> = all.into_iter().map(|(_, t)| t).collect();
    tokens.sort_by_key(|t| t.created_at);
    Ok(Json(tokens))
}

/// `DELETE /tokens/{id}` (admin). Revoking the last admin token is refused.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let who = caller.who();
    state
        .store
        .write(move |w| {
            let all: Vec<(String, TokenRecord)> = w.all(TOKENS)?;
            let (hash, record) = all
                .iter()
                .find(|(_, t)| t.id == id)
                .ok_or_else(|| ApiError::not_found(format!("no token {id:?}")))?;
            let admins = all.iter().filter(|(_, t)| t.role == Role::Admin).count();
            if record.role == Role::Admin && admins == 1 {
                return Err(ApiError::conflict(
                    None,
                    "this is the last admin token; create another first",
                ));
            }
            w.delete(TOKENS, hash)?;
            audit(
                w,
                &who,
                "token.revoked",
                &record.id,
                json!({"name": record.name, "role": record.role}),
            )?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /me`: the caller's own token record.
pub async fn me(caller: Caller) -> Json<TokenRecord> {
    Json(caller.token)
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
