//! Whether a stored source still fits the plugin version loaded for its provider.
//!
//! A source was checked against its plugin's `describe` when it was saved. A later version may
//! drop the auth type it uses, drop an auth field or setting it has a value for, or require a
//! field or setting it lacks: the source is then *incompatible*. That is derived here, from
//! the source and the plugin loaded now, every time it is asked (never stored, so it cannot go
//! stale): it clears as soon as the source is edited to fit or a fitting version is loaded.
//!
//! Uploads that would make sources incompatible are refused unless forced
//! (`plugin_registry::install`); the source view shows `plugin_status: "incompatible"` with the reason; sync skips such a
//! source and link fetches answer `plugin-incompatible` instead of calling the plugin.

use serde::Serialize;

use crate::plugin::{PluginHost, ProviderInfo};
use crate::store::records::SourceRecord;

/// The error code of a call refused because the source does not fit its plugin.
pub const CODE: &str = "plugin-incompatible";

/// How a source stands with the plugin of its provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginStatus {
    /// Loaded, and the source fits it.
    Loaded,
    /// No plugin is loaded for the provider.
    Missing,
    /// Loaded, but the source does not fit it; why, for a person.
    Incompatible(String),
}

impl PluginStatus {
    /// `loaded`, `missing` or `incompatible`, as the API shows it.
    pub fn name(&self) -> &'static str {
        match self {
            PluginStatus::Loaded => "loaded",
            PluginStatus::Missing => "missing",
            PluginStatus::Incompatible(_) => "incompatible",
        }
    }

    /// Why the source is incompatible, if it is.
    pub fn reason(&self) -> Option<&str> {
        match self {
            PluginStatus::Incompatible(reason) => Some(reason),
            _ => None,
        }
    }
}

/// How `source` stands with the plugin loaded now for its provider.
pub fn status(plugins: &PluginHost, source: &SourceRecord) -> PluginStatus {
    match plugins.get(&source.provider) {
        Err(_) => PluginStatus::Missing,
        Ok(plugin) => match misfit(&plugin.info, source) {
            Some(reason) => PluginStatus::Incompatible(reason),
            None => PluginStatus::Loaded,
        },
    }
}

/// A call refused because the source does not fit its plugin (answered as 409
/// `plugin-incompatible`): why, and how an admin gets out of it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}; {}", incompatible(.0), fix_hint())]
pub struct Incompatible(pub String);

/// The refusal of a call for `source`, if it does not fit its plugin.
pub fn refusal(plugins: &PluginHost, source: &SourceRecord) -> Option<Incompatible> {
    status(plugins, source)
        .reason()
        .map(|reason| Incompatible(reason.to_string()))
}

/// What a refused call says: the source does not fit the plugin, and why.
pub fn incompatible(reason: &str) -> String {
    format!("the source does not fit the loaded plugin version: {reason}")
}

/// How an admin gets out of it.
pub fn fix_hint() -> &'static str {
    "edit the source to fit, or load a version of the plugin it fits"
}

/// A source a plugin version would break, as a swap lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Affected {
    /// The source's id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Why it does not fit.
    pub reason: String,
}

/// The sources of `info`'s provider among `sources` that do not fit `info`.
pub fn affected<'a>(
    info: &ProviderInfo,
    sources: impl IntoIterator<Item = &'a (String, SourceRecord)>,
) -> Vec<Affected> {
    sources
        .into_iter()
        .filter(|(_, s)| s.provider == info.id)
        .filter_map(|(id, s)| {
            misfit(info, s).map(|reason| Affected {
                id: id.clone(),
                name: s.display_name.clone(),
                reason,
            })
        })
        .collect()
}

/// Why `source` does not fit `info` (every reason, joined), or `None` when it fits: its auth
/// type is offered, each auth field and setting it has a value for still exists (with the
/// same secrecy), and each required one has a value.
pub fn misfit(info: &ProviderInfo, source: &SourceRecord) -> Option<String> {
    let mut reasons = Vec::new();
    let Some(auth) = info.auth_type(&source.auth_type) else {
        let offered: Vec<&str> = info.auth_types.iter().map(|a| a.id.as_str()).collect();
        return Some(format!(
            "{} {} no longer offers auth type {:?} (it offers {offered:?})",
            info.name, info.version, source.auth_type
        ));
    };
    let plain = source.auth_fields.keys().map(|n| (n, false));
    let secret = source.secrets_set.iter().map(|n| (n, true));
    for (name, was_secret) in plain.chain(secret) {
        match auth.fields.iter().find(|f| &f.name == name) {
            None => reasons.push(format!(
                "auth type {:?} has no field {name:?} any more",
                auth.id
            )),
            Some(f) if f.secret != was_secret => reasons.push(format!(
                "auth field {name:?} is now {}",
                if f.secret { "secret" } else { "not secret" }
            )),
            Some(_) => {}
        }
    }
    for field in auth.fields.iter().filter(|f| f.required) {
        let set = source.auth_fields.contains_key(&field.name)
            || source.secrets_set.contains(&field.name);
        if !set {
            reasons.push(format!(
                "auth type {:?} now requires {:?} ({}), which the source lacks",
                auth.id, field.name, field.label
            ));
        }
    }
    for name in source.settings.keys() {
        if !info.settings.iter().any(|s| &s.name == name) {
            reasons.push(format!("setting {name:?} no longer exists"));
        }
    }
    for setting in info.settings.iter().filter(|s| s.required) {
        if !source.settings.contains_key(&setting.name) {
            reasons.push(format!(
                "setting {:?} ({}) is now required, and the source has none",
                setting.name, setting.label
            ));
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::model::{AuthField, AuthType, CredentialScheme, Setting, SettingKind};

    fn info(auth: Vec<AuthType>, settings: Vec<Setting>) -> ProviderInfo {
        ProviderInfo {
            id: "p".into(),
            version: "2.0".into(),
            name: "P".into(),
            auth_types: auth,
            settings,
            ..ProviderInfo::default()
        }
    }

    fn token(fields: &[(&str, bool, bool)]) -> AuthType {
        AuthType {
            id: "token".into(),
            label: "Token".into(),
            fields: fields
                .iter()
                .map(|(name, secret, required)| AuthField {
                    name: (*name).into(),
                    label: name.to_uppercase(),
                    secret: *secret,
                    required: *required,
                    help: None,
                })
                .collect(),
            scheme: CredentialScheme::None,
        }
    }

    fn setting(name: &str, required: bool) -> Setting {
        Setting {
            name: name.into(),
            label: name.into(),
            help: String::new(),
            kind: SettingKind::Text,
            required,
        }
    }

    fn source(fields: &[&str], secrets: &[&str], settings: &[&str]) -> SourceRecord {
        let json = serde_json::json!({
            "provider": "p", "display_name": "S", "base_url": "https://t.example",
            "auth_type": "token",
            "auth_fields": fields.iter().map(|f| (f.to_string(), "v")).collect::<std::collections::BTreeMap<_, _>>(),
            "secrets_set": secrets,
            "settings": settings.iter().map(|f| (f.to_string(), "v")).collect::<std::collections::BTreeMap<_, _>>(),
            "issue_url_template": null, "create_url_template": null, "key_pattern": null,
            "enabled": true, "capabilities": {}, "projects": {"mode": "all"},
            "last_test": null, "created_at": 0, "updated_at": 0,
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_source_fits_the_version_it_was_checked_against() {
        let i = info(
            vec![token(&[("email", false, true), ("key", true, true)])],
            vec![setting("space", false)],
        );
        assert_eq!(misfit(&i, &source(&["email"], &["key"], &["space"])), None);
        assert_eq!(misfit(&i, &source(&["email"], &["key"], &[])), None);
    }

    #[test]
    fn every_breaking_change_is_named() {
        let s = source(&["email"], &["key"], &["space"]);
        let gone = info(
            vec![AuthType {
                id: "oauth".into(),
                ..token(&[])
            }],
            vec![],
        );
        assert!(
            misfit(&gone, &s)
                .unwrap()
                .contains("no longer offers auth type \"token\"")
        );

        let changed = info(
            vec![token(&[("key", false, true), ("org", false, true)])],
            vec![setting("region", true)],
        );
        let why = misfit(&changed, &s).unwrap();
        for part in [
            "has no field \"email\"",
            "\"key\" is now not secret",
            "now requires \"org\"",
            "setting \"space\" no longer exists",
            "setting \"region\" (region) is now required",
        ] {
            assert!(why.contains(part), "{part} in {why}");
        }
    }
}
