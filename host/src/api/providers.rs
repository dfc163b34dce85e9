//! `/providers`: what each loaded plugin says about itself, for the source editor.

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::Serialize;

use super::error::ApiError;
use super::extract::{Caller, Path};
use crate::app::AppState;
use crate::plugin::{CapabilitySupport, ProviderInfo};

/// A provider as the editor needs it: the plugin's description and its version facts.
#[derive(Serialize, JsonSchema)]
pub struct ProviderView {
    /// What `describe` said.
    #[serde(flatten)]
    pub info: ProviderInfo,
    /// The contract version the plugin was built against.
    pub contract: String,
    /// The capabilities the plugin serves, and why not the others.
    pub capabilities: CapabilitySupport,
    /// sha-256 of the plugin binary.
    pub digest: String,
}

/// `GET /providers`: every loaded provider.
pub async fn list(State(state): State<AppState>, _caller: Caller) -> Json<Vec<ProviderView>> {
    Json(state.plugins.list().iter().map(|p| view(p)).collect())
}

/// `GET /providers/{id}`.
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ProviderView>, ApiError> {
    let plugin = state
        .plugins
        .get(&id)
        .map_err(|_| ApiError::not_found(format!("no provider {id:?} is loaded")))?;
    Ok(Json(view(&plugin)))
}

fn view(p: &crate::plugin::LoadedPlugin) -> ProviderView {
    ProviderView {
        info: p.info.clone(),
        contract: p.contract.clone(),
        capabilities: p.capabilities(),
        digest: p.digest.clone(),
    }
}
