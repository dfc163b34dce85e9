//! "Add comments" (contract 1.1): `POST /rest/api/3/issue/{key}/comment` whose `body` is an
//! Atlassian Document Format document converted from the comment's Markdown (paragraphs with
//! line breaks, strong, emphasis, inline code, links, code blocks, bullet and numbered lists;
//! see [`markdown`]). Facts from `../shared/providers-events.md` section 1.A: `201` with the
//! comment (`id`, `self`); `404` when the issue does not exist or the account cannot see it;
//! `400` for a body Jira refuses (over 32,767 characters); Jira has no "locked" issue; its
//! browser URL of a comment is `{site}/browse/{KEY}?focusedCommentId={id}`.

use testorchestrator_provider_sdk::markdown::{self, Block, Inline, Span};
use testorchestrator_provider_sdk::serde_json::{Value, json};
use testorchestrator_provider_sdk::*;

use super::{api_root, error_text, jira_error, not_found, parse_key, rate_limit, whoami};

/// Jira's limit on a comment's text.
const MAX_LENGTH: u32 = 32_767;

/// How this plugin comments.
pub fn describe() -> Option<CommentsInfo> {
    Some(CommentsInfo {
        format: "Atlassian Document Format (converted from Markdown)".into(),
        max_length: MAX_LENGTH,
    })
}

/// Posts `markdown` on issue `key`.
pub fn add(source: &Source, key: &str, markdown: &str) -> Result<CommentInfo, ProviderError> {
    let key = parse_key(key.trim())?;
    let api = api_root(source)?;
    let url = format!("{api}/issue/{}/comment", encode_component(&key));
    let resp = post_json(url, &json!({ "body": adf(markdown) })).send()?;
    if resp.status == 404 {
        return Err(not_found(&key, &whoami(source, &api)?));
    }
    if resp.status == 403 && rate_limit(&resp).is_none() {
        return Err(ProviderError::Forbidden(format!(
            "Jira refused the comment on {key} (HTTP 403: {}): the account needs the Browse \
             projects and Add comments permissions in this project",
            error_text(&resp)
        )));
    }
    if !resp.is_success() {
        return Err(jira_error(source, &resp, &format!("a comment on {key}")));
    }
    let created = resp.json()?;
    let id = str_at(&created, "/id")
        .ok_or_else(|| ProviderError::Provider("Jira's answer carries no comment id".into()))?;
    let site = source.base_url.trim_end_matches('/');
    Ok(CommentInfo {
        web_url: Some(format!(
            "{site}/browse/{}?focusedCommentId={}",
            encode_component(&key),
            encode_component(id)
        )),
        id: id.to_string(),
    })
}

/// The Atlassian Document Format document of a Markdown comment.
pub fn adf(markdown: &str) -> Value {
    let content: Vec<Value> = markdown::parse(markdown).iter().map(block).collect();
    json!({ "type": "doc", "version": 1, "content": content })
}

fn block(b: &Block) -> Value {
    let list = |kind: &str, items: &[Vec<Inline>]| {
        let items: Vec<Value> = items
            .iter()
            .map(|item| json!({ "type": "listItem", "content": [paragraph(item)] }))
            .collect();
        json!({ "type": kind, "content": items })
    };
    match b {
        Block::Paragraph(inlines) => paragraph(inlines),
        Block::Code { language, text } => {
            let mut node = json!({ "type": "codeBlock" });
            if let Some(language) = language {
                node["attrs"] = json!({ "language": language });
            }
            // ADF refuses empty text nodes.
            if !text.is_empty() {
                node["content"] = json!([{ "type": "text", "text": text }]);
            }
            node
        }
        Block::Bullets(items) => list("bulletList", items),
        Block::Numbered(items) => list("orderedList", items),
    }
}

fn paragraph(inlines: &[Inline]) -> Value {
    let content: Vec<Value> = inlines
        .iter()
        .map(|inline| match inline {
            Inline::Break => json!({ "type": "hardBreak" }),
            Inline::Text(span) => text(span),
        })
        .collect();
    json!({ "type": "paragraph", "content": content })
}

/// A text node with its marks. ADF allows `code` only with `link`.
fn text(span: &Span) -> Value {
    let mut marks = Vec::new();
    if span.code {
        marks.push(json!({ "type": "code" }));
    } else {
        if span.strong {
            marks.push(json!({ "type": "strong" }));
        }
        if span.em {
            marks.push(json!({ "type": "em" }));
        }
    }
    if let Some(href) = &span.link {
        marks.push(json!({ "type": "link", "attrs": { "href": href } }));
    }
    let mut node = json!({ "type": "text", "text": span.text });
    if !marks.is_empty() {
        node["marks"] = Value::Array(marks);
    }
    node
}
