//! Partial edits of a source by JSON merge patch (RFC 7396, `PATCH /sources/{id}`): the patch
//! applies to the stored source's editable view, the body a `PUT` would send, and the result is
//! then checked and saved exactly as a `PUT` ([`super::update`]).
//!
//! Secrets are not in the view, so a patch that leaves them out keeps them, as a `PUT` does;
//! `auth.fields.<name>: "value"` replaces one, and `auth.fields.<name>: null` removes it (a
//! required one is then a mistake naming the field).

use serde_json::{Map, Value, json};

use crate::field::FieldError;
use crate::store::records::SourceRecord;

/// What a merge patch makes of a stored source: the whole configuration (a `PUT` body) and
/// the secret fields it removes.
#[derive(Debug)]
pub struct Patched {
    /// The configuration after the patch, to be read as a [`super::SourceInput`].
    pub input: Value,
    /// The secret fields the patch set to `null`.
    pub remove_secrets: Vec<String>,
}

/// Applies merge patch `patch` to the editable view of `record`. A patch that is not a JSON
/// object is a [`FieldError`] naming the body.
pub fn apply(record: &SourceRecord, patch: &Value) -> Result<Patched, FieldError> {
    if !patch.is_object() {
        return Err(FieldError::new(
            "body",
            "a merge patch is a JSON object of the fields to change, e.g. {\"base_url\": \"https://jira.example.com\"}; null removes a field",
        ));
    }
    let mut input = editable(record);
    merge(&mut input, patch);
    Ok(Patched {
        input,
        remove_secrets: removed_secrets(record, patch),
    })
}

/// The configuration of a stored source as a `PUT` body holds it, without its secrets.
pub fn editable(record: &SourceRecord) -> Value {
    json!({
        "provider": record.provider,
        "display_name": record.display_name,
        "base_url": record.base_url,
        "auth": {"type": record.auth_type, "fields": record.auth_fields},
        "issue_url_template": record.issue_url_template,
        "create_url_template": record.create_url_template,
        "key_pattern": record.key_pattern,
        "enabled": record.enabled,
        "capabilities": record.capabilities,
        "projects": record.projects,
        "settings": record.settings,
        "network": {
            "ca_bundle_pem": record.network.ca_bundle_pem,
            "proxy_url": record.network.proxy_url,
        },
    })
}

/// RFC 7396: an object patch merges member by member (`null` removes one); anything else
/// replaces the target.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(members) = target else {
        return;
    };
    for (name, change) in changes {
        if change.is_null() {
            members.remove(name);
        } else {
            merge(members.entry(name.clone()).or_insert(Value::Null), change);
        }
    }
}

/// The secret fields of `record` that `patch` removes: each one set to `null` in
/// `auth.fields`, or all of them when `auth.fields` (or `auth`) is `null`.
fn removed_secrets(record: &SourceRecord, patch: &Value) -> Vec<String> {
    let fields = patch.get("auth").map(|auth| auth.get("fields"));
    match fields {
        Some(None) if patch["auth"].is_null() => record.secrets_set.clone(),
        Some(Some(Value::Null)) => record.secrets_set.clone(),
        Some(Some(Value::Object(fields))) => (record.secrets_set.iter())
            .filter(|name| fields.get(*name).is_some_and(Value::is_null))
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_follows_rfc_7396() {
        // The examples of RFC 7396, appendix A.
        for (target, patch, result) in [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ] {
            let mut merged = target.clone();
            merge(&mut merged, &patch);
            assert_eq!(merged, result, "{target} + {patch}");
        }
    }
}
