//! The checks a source's configuration passes before it is stored: against the provider's own
//! description (auth types and their fields, settings), URLs and templates that must render to
//! absolute http(s) URLs, key patterns, network settings; then, inside the write transaction,
//! a unique display name and existing projects. A failed check stores nothing.

use std::collections::BTreeMap;

use super::{NetworkInput, SourceError, SourceInput};
use crate::field::FieldError;
use crate::names;
use crate::plugin::ProviderInfo;
use crate::plugin::model::SettingKind;
use crate::store::records::{NetworkSettings, ProjectAssignment, ProjectRecord, SourceRecord, now};
use crate::store::{PROJECTS, Read, SOURCES, Writer};

/// The longest key pattern accepted, in characters.
pub const MAX_KEY_PATTERN: usize = 512;

/// The longest URL (base URL, URL setting, proxy URL) and URL template accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// Checks that need the database: a unique display name and existing projects.
pub fn check_in_store(
    w: &Writer,
    record: &SourceRecord,
    except: Option<&str>,
) -> Result<(), SourceError> {
    let all: Vec<(String, SourceRecord)> = w.all(SOURCES)?;
    let name = names::key(&record.display_name);
    if all
        .iter()
        .any(|(id, s)| Some(id.as_str()) != except && names::key(&s.display_name) == name)
    {
        return Err(SourceError::DuplicateName(record.display_name.clone()));
    }
    if let ProjectAssignment::Specific { ids } = &record.projects {
        for (i, project) in ids.iter().enumerate() {
            if w.get::<ProjectRecord>(PROJECTS, project)?.is_none() {
                return Err(SourceError::Invalid(vec![FieldError::new(
                    format!("projects.ids[{i}]"),
                    format!("no project {project:?}"),
                )]));
            }
        }
    }
    Ok(())
}

/// Checks an input against the provider's description; returns the record to store and the
/// secrets to seal. `existing` is the stored source and its secrets, for edits. Every field is
/// checked: the error lists all problems at once, the first as the answer.
pub fn check(
    input: &SourceInput,
    info: &ProviderInfo,
    existing: Option<(&SourceRecord, &BTreeMap<String, String>)>,
) -> Result<(SourceRecord, BTreeMap<String, String>), SourceError> {
    let mut errors = Vec::new();
    let display_name = names::check(
        "display_name",
        &input.display_name,
        "a display name",
        "Jira (web team)",
        100,
    );
    let display_name = noted(&mut errors, display_name).unwrap_or_default();
    let base_url = noted(&mut errors, check_base_url(&input.base_url));
    let optional = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let issue_url_template = optional(&input.issue_url_template);
    let create_url_template = optional(&input.create_url_template);
    let key_pattern = optional(&input.key_pattern);
    // Templates are checked against the base URL, or a stand-in one while it is wrong.
    let base_for_templates = base_url.as_deref().unwrap_or("https://tracker.example.com");
    if let Some(t) = &issue_url_template {
        let checked = check_template(
            "issue_url_template",
            t,
            base_for_templates,
            &["baseUrl", "key"],
        );
        noted(&mut errors, checked);
    }
    if let Some(t) = &create_url_template {
        let checked = check_template("create_url_template", t, base_for_templates, &["baseUrl"]);
        noted(&mut errors, checked);
    }
    if input.capabilities.create_issues && create_url_template.is_none() {
        // Suggest the provider's own new-issue page, not another tracker's.
        let example = info
            .default_create_url_template
            .as_deref()
            .unwrap_or("{baseUrl}/issues/new");
        errors.push(FieldError::new(
            "create_url_template",
            format!("\"Create issues\" needs a create URL template (e.g. {example})"),
        ));
    }
    if let Some(p) = &key_pattern {
        noted(&mut errors, check_key_pattern(p).map(drop));
    }
    if let ProjectAssignment::Specific { ids } = &input.projects
        && ids.is_empty()
    {
        errors.push(FieldError::new(
            "projects.ids",
            "choose at least one project, or all projects",
        ));
    }
    let auth = check_auth(&mut errors, input, info, existing);
    let settings = check_settings(&mut errors, input, info);
    let network = noted(&mut errors, check_network(input.network.as_ref()));
    if !errors.is_empty() {
        return Err(SourceError::Invalid(errors));
    }
    let (Some(base_url), Some((auth_type, fields, secrets)), Some(network)) =
        (base_url, auth, network)
    else {
        return Err(SourceError::Internal("a check failed without an error"));
    };

    let at = now();
    let record = SourceRecord {
        provider: input.provider.clone(),
        display_name,
        base_url,
        auth_type,
        auth_fields: fields,
        secrets_set: secrets.keys().cloned().collect(),
        settings,
        issue_url_template,
        create_url_template,
        key_pattern,
        enabled: input.enabled,
        capabilities: input.capabilities,
        projects: input.projects.clone(),
        last_test: None,
        created_at: at,
        updated_at: at,
        network,
        webhook: None,
    };
    Ok((record, secrets))
}

/// The value of a check that passed; a failed one's error joins `errors`.
fn noted<T>(errors: &mut Vec<FieldError>, checked: Result<T, FieldError>) -> Option<T> {
    checked.map_err(|e| errors.push(e)).ok()
}

/// The auth type must be the provider's; fields split into plain and secret by its
/// description; unknown fields are refused. Returns the type id, the plain fields and the
/// secrets, unless the type is unknown; each problem joins `errors`.
#[allow(clippy::type_complexity)]
fn check_auth(
    errors: &mut Vec<FieldError>,
    input: &SourceInput,
    info: &ProviderInfo,
    existing: Option<(&SourceRecord, &BTreeMap<String, String>)>,
) -> Option<(String, BTreeMap<String, String>, BTreeMap<String, String>)> {
    let Some(auth) = info.auth_type(&input.auth.kind) else {
        let known: Vec<&str> = info.auth_types.iter().map(|a| a.id.as_str()).collect();
        errors.push(FieldError::new(
            "auth.type",
            format!(
                "{} does not support auth type {:?}; use one of {known:?}",
                info.name, input.auth.kind
            ),
        ));
        return None;
    };
    for name in input.auth.fields.keys() {
        if !auth.fields.iter().any(|f| &f.name == name) {
            errors.push(FieldError::new(
                format!("auth.fields.{name}"),
                format!("auth type {:?} has no field {name:?}", auth.id),
            ));
        }
    }
    let keep_secrets = existing
        .filter(|(old, _)| old.provider == input.provider && old.auth_type == auth.id)
        .map(|(_, secrets)| secrets);
    let mut fields = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    for field in &auth.fields {
        let given = input
            .auth
            .fields
            .get(&field.name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty());
        let value = match (given, field.secret) {
            (Some(v), _) => Some(v.to_string()),
            (None, true) => keep_secrets.and_then(|s| s.get(&field.name)).cloned(),
            (None, false) => None,
        };
        let at = format!("auth.fields.{}", field.name);
        match value {
            Some(v) if v.len() > 8192 => errors.push(FieldError::new(at, "at most 8192 bytes")),
            Some(v) if field.secret => {
                secrets.insert(field.name.clone(), v);
            }
            Some(v) => {
                fields.insert(field.name.clone(), v);
            }
            None if field.required => {
                errors.push(FieldError::new(at, format!("{} is required", field.label)));
            }
            None => {}
        }
    }
    Some((auth.id.clone(), fields, secrets))
}

/// The provider settings to store: known names only, URL settings absolute, required ones
/// present, blank values none; each problem joins `errors`.
fn check_settings(
    errors: &mut Vec<FieldError>,
    input: &SourceInput,
    info: &ProviderInfo,
) -> BTreeMap<String, String> {
    let mut settings = BTreeMap::new();
    for (name, value) in &input.settings {
        let at = format!("settings.{name}");
        let Some(setting) = info.settings.iter().find(|s| &s.name == name) else {
            errors.push(FieldError::new(
                at,
                format!("{} has no setting {name:?}", info.name),
            ));
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        if value.len() > 4096 {
            errors.push(FieldError::new(at, "at most 4096 bytes"));
            continue;
        }
        let value = match setting.kind {
            SettingKind::Url => noted(
                errors,
                check_url_length(&at, value).and_then(|()| check_url(&at, value)),
            ),
            SettingKind::Text => Some(value.to_string()),
        };
        if let Some(value) = value {
            settings.insert(name.clone(), value);
        }
    }
    for missing in info.settings.iter().filter(|s| {
        s.required
            && input
                .settings
                .get(&s.name)
                .is_none_or(|v| v.trim().is_empty())
    }) {
        errors.push(FieldError::new(
            format!("settings.{}", missing.name),
            format!("{} is required", missing.label),
        ));
    }
    settings
}

/// The network settings to store: a CA bundle of valid certificates, a proxy URL without
/// credentials; blank values are none.
fn check_network(input: Option<&NetworkInput>) -> Result<NetworkSettings, FieldError> {
    let Some(input) = input else {
        return Ok(NetworkSettings::default());
    };
    let blank_is_none = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let ca_bundle_pem = blank_is_none(&input.ca_bundle_pem);
    if let Some(pem) = &ca_bundle_pem {
        crate::plugin::egress::parse_ca_bundle(pem)
            .map_err(|e| FieldError::new("network.ca_bundle_pem", e))?;
    }
    let proxy_url = blank_is_none(&input.proxy_url);
    if let Some(proxy) = &proxy_url {
        check_url_length("network.proxy_url", proxy)?;
        let url = url::Url::parse(proxy).map_err(|e| {
            FieldError::new(
                "network.proxy_url",
                format!("{} is not an absolute URL ({e})", quoted_url(proxy)),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(FieldError::new(
                "network.proxy_url",
                "use an http:// or https:// proxy URL, e.g. http://proxy.example.com:3128",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FieldError::new(
                "network.proxy_url",
                "a proxy URL with credentials is not supported; remove user and password",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(FieldError::new(
                "network.proxy_url",
                "a proxy URL has no query (?...) or fragment (#...)",
            ));
        }
    }
    Ok(NetworkSettings {
        ca_bundle_pem,
        proxy_url,
    })
}

fn check_base_url(text: &str) -> Result<String, FieldError> {
    let trimmed = text.trim().trim_end_matches('/');
    check_url_length("base_url", trimmed)?;
    let url = check_url("base_url", trimmed)?;
    let parsed = url::Url::parse(&url).expect("checked");
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(FieldError::new(
            "base_url",
            "a base URL has no query (?...) or fragment (#...)",
        ));
    }
    Ok(url)
}

/// `text` quoted for an error message, unless it may hold credentials (`user:password@`): an
/// answer never repeats a secret, even one typed in the wrong field.
fn quoted_url(text: &str) -> String {
    if text.contains('@') {
        "the URL".to_string()
    } else {
        format!("{text:?}")
    }
}

/// An absolute http(s) URL without credentials in it, as given (trimmed).
fn check_url(field: &str, text: &str) -> Result<String, FieldError> {
    let url = url::Url::parse(text).map_err(|e| {
        FieldError::new(
            field,
            format!(
                "{} is not an absolute URL ({e}); e.g. https://tracker.example.com",
                quoted_url(text)
            ),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(FieldError::new(
            field,
            "use an http:// or https:// URL, e.g. https://tracker.example.com",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FieldError::new(
            field,
            "put credentials in the auth fields, not in the URL",
        ));
    }
    Ok(text.to_string())
}

/// At most [`MAX_URL_BYTES`].
fn check_url_length(field: &str, text: &str) -> Result<(), FieldError> {
    if text.len() > MAX_URL_BYTES {
        return Err(FieldError::new(
            field,
            format!("at most {MAX_URL_BYTES} bytes; this is {}", text.len()),
        ));
    }
    Ok(())
}

/// A template may use only `allowed` placeholders and must render to an absolute http(s) URL.
fn check_template(
    field: &str,
    template: &str,
    base_url: &str,
    allowed: &[&str],
) -> Result<(), FieldError> {
    check_url_length(field, template)?;
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| FieldError::new(field, "a '{' is not closed"))?;
        let name = &rest[open + 1..open + close];
        if !allowed.contains(&name) {
            let list: Vec<String> = allowed.iter().map(|a| format!("{{{a}}}")).collect();
            return Err(FieldError::new(
                field,
                format!("unknown placeholder {{{name}}}; use {}", list.join(" and ")),
            ));
        }
        rest = &rest[open + close + 1..];
    }
    let rendered = template
        .replace("{baseUrl}", base_url)
        .replace("{key}", "KEY-1");
    check_url(field, &rendered).map_err(|_| {
        FieldError::new(
            field,
            format!("the template must yield an absolute http(s) URL; it yields {rendered:?}"),
        )
    })?;
    Ok(())
}

/// A key pattern compiled by the rules Save and link creation use.
pub fn check_key_pattern(pattern: &str) -> Result<regex::Regex, FieldError> {
    if pattern.chars().count() > MAX_KEY_PATTERN {
        return Err(FieldError::new(
            "key_pattern",
            format!("at most {MAX_KEY_PATTERN} characters"),
        ));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            FieldError::new(
                "key_pattern",
                format!(
                    "not a valid regular expression ({}); e.g. ^[A-Z]+-[0-9]+$",
                    e.to_string().lines().last().unwrap_or("").trim()
                ),
            )
        })
}
