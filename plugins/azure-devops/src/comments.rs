//! "Add comments" (contract 1.1): `POST {project}/_apis/wit/workItems/{id}/comments` with
//! `{"text": ...}`. Facts from `../shared/providers-events.md` section 3.A: the comments API is
//! a preview (`api-version=7.1-preview.4`); it answers `200` (not 201) with the comment, whose
//! id is `id` (the documentation's example says `commentId`: both are read); the comment text
//! is HTML (a request-side Markdown format is not documented), so the Markdown is converted to
//! escaped HTML here ([`html`]); `404` "TF401232" for a work item that does not exist or cannot
//! be read. No URL of the comment comes back: the work item's page stands for it.

use testorchestrator_provider_sdk::markdown::{self, Block, Inline, Span};
use testorchestrator_provider_sdk::serde_json::{Value, json};
use testorchestrator_provider_sdk::*;

use super::{AzureDevOps, Project, canonical, request};

/// The comments API version (a preview in 7.1).
const COMMENTS_API_VERSION: &str = "api-version=7.1-preview.4";

/// A conservative limit: Azure DevOps documents none for comments.
const MAX_LENGTH: u32 = 32_000;

/// How this plugin comments.
pub fn describe() -> Option<CommentsInfo> {
    Some(CommentsInfo {
        format: "HTML (converted from Markdown)".into(),
        max_length: MAX_LENGTH,
    })
}

/// Posts `markdown` on work item `key`.
pub fn add(source: &Source, key: &str, markdown: &str) -> Result<CommentInfo, ProviderError> {
    let project = Project::of(source)?;
    let id = canonical(key)?;
    let url = format!(
        "{}/_apis/wit/workItems/{id}/comments?{COMMENTS_API_VERSION}",
        project.url()
    );
    let builder = request(post_json(url, &json!({ "text": html(markdown) })));
    let created = project
        .read(source, builder, Some(id))
        .map_err(|e| match e {
            ProviderError::Forbidden(m) => ProviderError::Forbidden(format!(
                "{m}; commenting needs the \"Edit work items in this node\" permission and, for a \
             token, the Work Items (Read & write) scope"
            )),
            other => other,
        })?;
    let comment_id = ["id", "commentId"]
        .iter()
        .find_map(|k| match &created[k] {
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .ok_or_else(|| {
            ProviderError::Provider("Azure DevOps' answer carries no comment id".into())
        })?;
    Ok(CommentInfo {
        id: comment_id,
        web_url: Some(<AzureDevOps as Provider>::issue_url(
            source,
            &id.to_string(),
        )?),
    })
}

/// The escaped HTML of a Markdown comment.
pub fn html(markdown: &str) -> String {
    markdown::parse(markdown).iter().map(block).collect()
}

fn block(b: &Block) -> String {
    let list = |tag: &str, items: &[Vec<Inline>]| {
        let items: String = items
            .iter()
            .map(|i| format!("<li>{}</li>", inlines(i)))
            .collect();
        format!("<{tag}>{items}</{tag}>")
    };
    match b {
        Block::Paragraph(content) => format!("<p>{}</p>", inlines(content)),
        Block::Code { text, .. } => format!("<pre><code>{}</code></pre>", escape(text)),
        Block::Bullets(items) => list("ul", items),
        Block::Numbered(items) => list("ol", items),
    }
}

fn inlines(content: &[Inline]) -> String {
    content
        .iter()
        .map(|inline| match inline {
            Inline::Break => "<br>".to_string(),
            Inline::Text(span) => span_html(span),
        })
        .collect()
}

fn span_html(span: &Span) -> String {
    let mut out = escape(&span.text);
    if span.code {
        out = format!("<code>{out}</code>");
    }
    if span.em {
        out = format!("<em>{out}</em>");
    }
    if span.strong {
        out = format!("<strong>{out}</strong>");
    }
    if let Some(href) = &span.link {
        out = format!("<a href=\"{}\">{out}</a>", escape(href));
    }
    out
}

/// Text safe inside HTML elements and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
