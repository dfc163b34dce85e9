//! Size bounds on what plugins answer: every string and list of a `describe` answer, and the
//! free texts of the other answers, so that a plugin cannot make the host store, list or serve
//! megabytes (`GET /providers` is open to every member).
//!
//! A `describe` over a bound refuses the plugin, and an answer over a bound is malformed
//! output; both messages name the field and the bound. At these bounds one provider's
//! description is at most about 200 KB (a real one is a few KB). A provider error's message is the one
//! text that is cut instead (with a note saying so): it is still the error the plugin meant.

use super::model::AuthType;
use super::model::{Authenticity, EventScheme, Locator, ProviderInfo, Setting, SignedContent};

/// Bytes of a name or id (provider id, version, auth type, field and setting names).
pub const NAME: usize = 64;
/// Bytes of a label shown in a form or a list (display name, labels).
pub const LABEL: usize = 200;
/// Bytes of a help text or a hint.
pub const HELP: usize = 1000;
/// Bytes of a URL, a URL template or a key pattern.
pub const URL: usize = 2048;
/// Bytes of a free text in an answer: a connection's detail, an issue's assignee.
pub const TEXT: usize = 4096;
/// Bytes of a provider error's message; longer ones are cut.
pub const ERROR_MESSAGE: usize = 4096;
/// Auth types one plugin may declare.
pub const AUTH_TYPES: usize = 8;
/// Fields one auth type may declare.
pub const FIELDS: usize = 16;
/// Settings one plugin may declare.
pub const SETTINGS: usize = 32;
/// Extra origins one plugin may declare.
pub const ORIGINS: usize = 16;
/// Webhook schemes one plugin may declare.
pub const EVENT_SCHEMES: usize = 8;
/// Bytes of a webhook scheme's set-up steps.
pub const SETUP: usize = 4000;

/// Checks every string and list of a `describe` answer against its bound; the error names
/// the first field over its bound, e.g. `describe: auth_types[0].fields has 20001 entries;
/// the limit is 16`.
pub fn check_info(info: &ProviderInfo) -> Result<(), String> {
    let texts = [
        ("id", info.id.as_str(), NAME),
        ("version", &info.version, NAME),
        ("name", &info.name, LABEL),
        ("key_hint", &info.key_hint, HELP),
        ("key_example", &info.key_example, LABEL),
        (
            "default_issue_url_template",
            &info.default_issue_url_template,
            URL,
        ),
        ("base_url_example", &info.base_url_example, URL),
    ];
    for (field, value, max) in texts {
        text(field, value, max)?;
    }
    let optional = [
        ("default_key_pattern", &info.default_key_pattern),
        (
            "default_create_url_template",
            &info.default_create_url_template,
        ),
    ];
    for (field, value) in optional {
        text(field, value.as_deref().unwrap_or(""), URL)?;
    }
    list("auth_types", info.auth_types.len(), AUTH_TYPES)?;
    for (i, auth) in info.auth_types.iter().enumerate() {
        check_auth_type(&format!("auth_types[{i}]"), auth)?;
    }
    list("settings", info.settings.len(), SETTINGS)?;
    for (i, setting) in info.settings.iter().enumerate() {
        check_setting(&format!("settings[{i}]"), setting)?;
    }
    list("extra_origins", info.extra_origins.len(), ORIGINS)?;
    for (i, origin) in info.extra_origins.iter().enumerate() {
        text(&format!("extra_origins[{i}]"), origin, URL)?;
    }
    if let Some(comments) = &info.comments {
        text("comments.format", &comments.format, LABEL)?;
        if comments.max_length == 0 {
            return Err("describe-comments: max_length must be at least 1".into());
        }
    }
    list("events", info.events.len(), EVENT_SCHEMES)?;
    for (i, scheme) in info.events.iter().enumerate() {
        check_event_scheme(&format!("events[{i}]"), scheme)?;
    }
    Ok(())
}

fn check_event_scheme(at: &str, scheme: &EventScheme) -> Result<(), String> {
    text(&format!("{at}.id"), &scheme.id, NAME)?;
    text(&format!("{at}.label"), &scheme.label, LABEL)?;
    text(&format!("{at}.setup"), &scheme.setup, SETUP)?;
    let mut names = Vec::new();
    match &scheme.authenticity {
        Authenticity::HmacSha256(h) => {
            names.extend([
                ("authenticity.header", &h.header),
                ("authenticity.prefix", &h.prefix),
            ]);
            if let SignedContent::IdTimestampBody(headers) = &h.content {
                names.push(("authenticity.content.id", &headers.id));
                names.push(("authenticity.content.timestamp", &headers.timestamp));
            }
        }
        Authenticity::TokenHeader(header) => names.push(("authenticity.header", header)),
        Authenticity::Basic => {}
    }
    let locators = [
        (
            "replay.timestamp",
            scheme.replay.as_ref().map(|r| &r.timestamp),
        ),
        ("delivery_id", scheme.delivery_id.as_ref()),
    ];
    for (field, locator) in locators {
        if let Some(Locator::Header(name) | Locator::BodyPointer(name)) = locator {
            names.push((field, name));
        }
    }
    for (field, value) in names {
        text(&format!("{at}.{field}"), value, LABEL)?;
    }
    Ok(())
}

fn check_auth_type(at: &str, auth: &AuthType) -> Result<(), String> {
    text(&format!("{at}.id"), &auth.id, NAME)?;
    text(&format!("{at}.label"), &auth.label, LABEL)?;
    list(&format!("{at}.fields"), auth.fields.len(), FIELDS)?;
    for (i, field) in auth.fields.iter().enumerate() {
        let at = format!("{at}.fields[{i}]");
        text(&format!("{at}.name"), &field.name, NAME)?;
        text(&format!("{at}.label"), &field.label, LABEL)?;
        text(
            &format!("{at}.help"),
            field.help.as_deref().unwrap_or(""),
            HELP,
        )?;
    }
    // The scheme only names fields (checked above to exist) and a header.
    if let super::model::CredentialScheme::Header { name, prefix, .. } = &auth.scheme {
        text(&format!("{at}.scheme.name"), name, NAME)?;
        text(&format!("{at}.scheme.prefix"), prefix, NAME)?;
    }
    Ok(())
}

fn check_setting(at: &str, setting: &Setting) -> Result<(), String> {
    text(&format!("{at}.name"), &setting.name, NAME)?;
    text(&format!("{at}.label"), &setting.label, LABEL)?;
    text(&format!("{at}.help"), &setting.help, HELP)
}

/// `Err` naming `field` and `max` when `value` is longer than `max` bytes.
fn text(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!(
            "describe: {field} is {} bytes; the limit is {max}",
            value.len()
        ));
    }
    Ok(())
}

fn list(field: &str, len: usize, max: usize) -> Result<(), String> {
    if len > max {
        return Err(format!(
            "describe: {field} has {len} entries; the limit is {max}"
        ));
    }
    Ok(())
}

/// A provider error's message, cut to [`ERROR_MESSAGE`] bytes (at a character boundary) with a
/// note naming the bound when it was longer.
pub fn error_message(message: String) -> String {
    if message.len() <= ERROR_MESSAGE {
        return message;
    }
    let mut end = ERROR_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… (cut: the plugin's message was {} bytes; the limit is {ERROR_MESSAGE})",
        &message[..end],
        message.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_error_message_is_cut_at_a_character_boundary_with_a_note() {
        assert_eq!(error_message("short".into()), "short");
        let long = "é".repeat(ERROR_MESSAGE);
        let cut = error_message(long.clone());
        assert!(cut.len() < ERROR_MESSAGE + 100, "{} bytes", cut.len());
        assert!(long.starts_with(cut.split('…').next().unwrap()));
        assert!(
            cut.ends_with(&format!(
                "was {} bytes; the limit is {ERROR_MESSAGE})",
                long.len()
            )),
            "{cut:.100}"
        );
    }
}
