//! "Add comments" (contract 1.1) for a Custom Tracker, configured by the source: with the
//! setting `comment-api-url` (a URL template with `{baseUrl}` and `{key}`, on the base URL's
//! origin) the plugin POSTs `{"body": "<markdown>"}` there and reads the created comment's id
//! (and, optionally, its web URL) by JSON pointers; without it, "Add comments" is `unsupported`
//! with a message naming the setting.

use testorchestrator_provider_sdk::serde_json::{Value, json};
use testorchestrator_provider_sdk::*;

use super::{invalid, origin};

/// The limit this plugin applies; the tracker may refuse fewer.
const MAX_LENGTH: u32 = 65_536;

/// How this plugin comments (only on sources with a comment API URL).
pub fn describe() -> Option<CommentsInfo> {
    Some(CommentsInfo {
        format: "Markdown, sent as {\"body\": ...} to the source's comment API URL".into(),
        max_length: MAX_LENGTH,
    })
}

/// The settings that configure comments.
pub fn settings() -> Vec<Setting> {
    let setting = |name: &str, label: &str, help: &str| Setting {
        name: name.into(),
        label: label.into(),
        help: help.into(),
        kind: SettingKind::Text,
        required: false,
    };
    vec![
        setting(
            "comment-api-url",
            "Comment API URL",
            "To post comments (\"Add comments\"): the URL that creates a comment on an issue, with \
             {baseUrl} and {key}, e.g. {baseUrl}/api/issues/{key}/comments. It receives a POST of \
             {\"body\": \"<Markdown>\"} and must be on the base URL's host.",
        ),
        setting(
            "comment-id-pointer",
            "Comment id pointer",
            "JSON pointer to the created comment's id in the answer (default /id).",
        ),
        setting(
            "comment-url-pointer",
            "Comment URL pointer",
            "JSON pointer to the created comment's web URL in the answer, e.g. /html_url (optional).",
        ),
    ]
}

/// Posts `markdown` on issue `key` through the source's comment API.
pub fn add(source: &Source, key: &str, markdown: &str) -> Result<CommentInfo, ProviderError> {
    let Some(template) = setting(source, "comment-api-url") else {
        return Err(ProviderError::Unsupported(
            "this Custom Tracker source has no comment API: set comment-api-url (e.g. \
             {baseUrl}/api/issues/{key}/comments) to post comments"
                .into(),
        ));
    };
    let id_pointer = setting(source, "comment-id-pointer").unwrap_or("/id");
    let url_pointer = setting(source, "comment-url-pointer");
    for (name, pointer) in [
        ("comment-id-pointer", Some(id_pointer)),
        ("comment-url-pointer", url_pointer),
    ] {
        if let Some(p) = pointer
            && !p.starts_with('/')
        {
            return Err(invalid(format!(
                "the setting {name} must be a JSON pointer starting with \"/\", e.g. /id (got {p:?})"
            )));
        }
    }
    let url = render_template(template, &source.base_url, Some(key));
    if origin(&url).is_none() || origin(&url) != origin(&source.base_url) {
        return Err(invalid(format!(
            "the comment API URL renders to {url:?}, which is not on the base URL's origin; start \
             the setting comment-api-url with {{baseUrl}}"
        )));
    }
    let mut request = post_json(url.as_str(), &json!({ "body": markdown }));
    if source.auth_type == "none" {
        request = request.anonymous();
    }
    let resp = request.send()?;
    if !resp.is_success() {
        return Err(match resp.status {
            404 => {
                ProviderError::NotFound(format!("issue {key} was not found (HTTP 404 from {url})"))
            }
            401 => ProviderError::Unauthorized(format!(
                "HTTP 401 from {url}: the tracker rejected the credentials (or requires some)"
            )),
            403 | 423 => ProviderError::Forbidden(format!(
                "HTTP {} from {url}: the tracker refused the comment on issue {key} (no permission, or the issue is locked): {}",
                resp.status,
                excerpt(&resp.text())
            )),
            _ => status_error(&resp, &format!("a comment on issue {key} ({url})")),
        });
    }
    let doc = resp.json()?;
    let id = match doc.pointer(id_pointer) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(ProviderError::Provider(format!(
                "the answer of {url} has no comment id at {id_pointer}: {}",
                excerpt(&resp.text())
            )));
        }
    };
    let web_url = url_pointer
        .and_then(|p| doc.pointer(p))
        .and_then(Value::as_str)
        .map(String::from);
    Ok(CommentInfo { id, web_url })
}
