//! What an edit of a source changes: the fields named in the audit log, whether it points the
//! source at another tracker or account, and whether the last connection test still holds.

use std::collections::BTreeMap;

use serde_json::json;

use crate::store::records::{SourceRecord, TestResult};

/// True when an edit points a source at another tracker or another account, so that what its
/// calls reported (the rate-limit headroom) no longer applies.
pub fn other_account(
    current: &SourceRecord,
    record: &SourceRecord,
    stored: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, String>,
) -> bool {
    current.provider != record.provider
        || current.base_url != record.base_url
        || current.auth_type != record.auth_type
        || current.auth_fields != record.auth_fields
        || stored != secrets
}

/// The last connection test result an edit keeps: none once the edit changes how the tracker
/// is reached (provider, base URL, auth, settings, network), since the result may no longer
/// hold; the page then says "not tested since the last change".
pub fn kept_test(
    current: &SourceRecord,
    record: &SourceRecord,
    stored: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, String>,
) -> Option<TestResult> {
    let same_connection = !other_account(current, record, stored, secrets)
        && current.settings == record.settings
        && current.network == record.network;
    current.last_test.clone().filter(|_| same_connection)
}

/// Names of the fields an edit changed; secrets appear as `auth.fields.<name>: replaced`.
pub fn changed_fields(
    old: &SourceRecord,
    new: &SourceRecord,
    old_secrets: &BTreeMap<String, String>,
    new_secrets: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut cmp = |name: &str, a: serde_json::Value, b: serde_json::Value| {
        if a != b {
            out.push(name.to_string());
        }
    };
    cmp("provider", json!(old.provider), json!(new.provider));
    cmp(
        "display_name",
        json!(old.display_name),
        json!(new.display_name),
    );
    cmp("base_url", json!(old.base_url), json!(new.base_url));
    cmp("auth.type", json!(old.auth_type), json!(new.auth_type));
    cmp(
        "auth.fields",
        json!(old.auth_fields),
        json!(new.auth_fields),
    );
    cmp(
        "issue_url_template",
        json!(old.issue_url_template),
        json!(new.issue_url_template),
    );
    cmp(
        "create_url_template",
        json!(old.create_url_template),
        json!(new.create_url_template),
    );
    cmp(
        "key_pattern",
        json!(old.key_pattern),
        json!(new.key_pattern),
    );
    cmp("enabled", json!(old.enabled), json!(new.enabled));
    cmp(
        "capabilities",
        json!(old.capabilities),
        json!(new.capabilities),
    );
    cmp("projects", json!(old.projects), json!(new.projects));
    cmp("settings", json!(old.settings), json!(new.settings));
    cmp("network", json!(old.network), json!(new.network));
    for (name, value) in new_secrets {
        if old_secrets.get(name) != Some(value) {
            out.push(format!("auth.fields.{name}: replaced"));
        }
    }
    out
}
