//! The plugin size limits an admin sets at run time (`/plugin-settings`), for every plugin and
//! per provider id: stored in [`SETTINGS`] (so they hold across restarts) and in force at once,
//! for uploads and for files in the plugins directory. Unset, the limit is the operator's
//! `--max-plugin-bytes` (32 MiB by default, which admits the shipped examples).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::AppState;
use crate::audit::audit;
use crate::field::FieldError;
use crate::plugin::PluginHost;
use crate::plugin::registry::SizeLimits;
use crate::store::{Read, SETTINGS, Store, StoreError};

/// The id of the record in [`SETTINGS`].
const RECORD: &str = "plugins";

/// The smallest and largest limit an admin may set.
const RANGE: std::ops::RangeInclusive<usize> = (64 << 10)..=(1 << 30);

/// What an admin set; stored as is. Unset fields take the operator's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// The largest plugin binary admitted, in bytes, for every plugin without a limit of its
    /// own; null for the operator's default.
    #[serde(default)]
    pub max_plugin_bytes: Option<usize>,
    /// Limits of single plugins, by provider id, in bytes.
    #[serde(default)]
    pub per_plugin: BTreeMap<String, usize>,
}

/// Why settings were not changed.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// What the admin gave is wrong: every problem found.
    #[error("{}", .0.first().map(ToString::to_string).unwrap_or_default())]
    Invalid(Vec<FieldError>),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the admin set (the defaults when nothing was).
pub async fn get(store: &Store) -> Result<PluginSettings, StoreError> {
    Ok(stored(store).await?.unwrap_or_default())
}

/// Replaces the settings on behalf of `who` (checked, stored with its audit event), and puts
/// them in force at once.
pub async fn set(state: &AppState, who: &str, input: PluginSettings) -> Result<(), SettingsError> {
    check(&input)?;
    let (who, record) = (who.to_string(), input.clone());
    state
        .store
        .write(move |w| {
            w.put(SETTINGS, RECORD, &record)?;
            let details = serde_json::to_value(&record).unwrap_or_default();
            audit(w, &who, "plugin.settings-changed", RECORD, details)
        })
        .await?;
    apply(&state.plugins, &input);
    tracing::info!(settings = %json!(input), "plugin size limits changed");
    Ok(())
}

/// Puts the stored settings, if any, in force: call at start-up, before plugins load.
pub async fn apply_stored(store: &Store, plugins: &PluginHost) -> Result<(), StoreError> {
    if let Some(settings) = stored(store).await? {
        apply(plugins, &settings);
    }
    Ok(())
}

async fn stored(store: &Store) -> Result<Option<PluginSettings>, StoreError> {
    store.read(|r| r.get(SETTINGS, RECORD)).await
}

fn apply(plugins: &PluginHost, settings: &PluginSettings) {
    plugins.set_size_limits(SizeLimits {
        max_plugin_bytes: settings
            .max_plugin_bytes
            .unwrap_or(plugins.limits().max_plugin_bytes),
        per_plugin: settings.per_plugin.clone(),
    });
}

/// Every limit within [`RANGE`], every key a provider id; all problems at once.
fn check(input: &PluginSettings) -> Result<(), SettingsError> {
    let in_range = |field: String, n: usize| {
        (!RANGE.contains(&n)).then(|| {
            FieldError::new(
                field,
                format!("a size limit is {} to {} bytes", RANGE.start(), RANGE.end()),
            )
        })
    };
    let mut errors: Vec<FieldError> = Vec::new();
    errors.extend((input.max_plugin_bytes).and_then(|n| in_range("max_plugin_bytes".into(), n)));
    for (id, n) in &input.per_plugin {
        let field = format!("per_plugin.{id}");
        let kebab = !id.is_empty()
            && id.len() <= 64
            && (id.bytes()).all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !kebab {
            errors.push(FieldError::new(
                field.clone(),
                "a provider id is 1-64 characters of a-z, 0-9 and '-'",
            ));
        }
        errors.extend(in_range(field, *n));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(SettingsError::Invalid(errors))
    }
}
