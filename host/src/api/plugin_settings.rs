//! `/plugin-settings` (admin only): the plugin size limits an admin sets at run time, for every
//! plugin and per provider id, in force at once. The rules are in
//! `crate::plugin_registry::settings`.

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::Serialize;

use super::error::ApiError;
use super::extract::{Body, Caller};
use crate::app::AppState;
use crate::plugin::PluginHost;
use crate::plugin::registry::SizeLimits;
use crate::plugin_registry::settings::{self, PluginSettings};

/// `GET /plugin-settings`.
#[derive(Serialize, JsonSchema)]
pub struct SettingsView {
    /// What the admin set (`max_plugin_bytes` null: the operator's default).
    pub settings: PluginSettings,
    /// The limits in force.
    pub effective: SizeLimits,
    /// The operator's default of `max_plugin_bytes`.
    pub operator_default: usize,
}

/// `GET /plugin-settings` (admin).
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SettingsView>, ApiError> {
    caller.require_admin()?;
    let settings = settings::get(&state.store).await?;
    Ok(Json(view(&state.plugins, settings)))
}

/// `PUT /plugin-settings` (admin): replaces the settings; in force at once.
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Body(input): Body<PluginSettings>,
) -> Result<Json<SettingsView>, ApiError> {
    caller.require_admin()?;
    settings::set(&state, &caller.who(), input.clone()).await?;
    Ok(Json(view(&state.plugins, input)))
}

fn view(plugins: &PluginHost, settings: PluginSettings) -> SettingsView {
    SettingsView {
        settings,
        effective: plugins.size_limits(),
        operator_default: plugins.limits().max_plugin_bytes,
    }
}
