//! "Add comments": a project member posts a Markdown comment on the issue of a link, through
//! the link's source (`POST /projects/{project}/links/{id}/comments`, handler in
//! `api/comments.rs`).
//!
//! A comment is posted only when every rule holds, each refusal saying what to fix: the link
//! is in the project; its source exists, is enabled, assigned to the project and has the "Add
//! comments" capability; the source's plugin supports comments (a contract 1.0 plugin does
//! not); the body is not empty and no longer than the host's [`MAX_CHARS`] and the plugin's
//! `max-length`. The tracker's refusals keep their category (no permission or a locked issue,
//! an issue not found) and the plugin's words. Every comment posted is audited with a short
//! excerpt of its text, never the whole of it.

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;

use crate::api::error::ApiError;
use crate::app::AppState;
use crate::metrics::Outcome;
use crate::plugin::{Capability, CommentInfo, PluginError, ProviderError};
use crate::store::records::{LinkRecord, SourceRecord, now};
use crate::store::{LINKS, Read, SOURCES};

/// The longest comment the host accepts, in characters (a plugin may accept fewer).
pub const MAX_CHARS: usize = 16_000;

/// Characters of a comment kept in the audit log.
const EXCERPT_CHARS: usize = 60;

/// A comment the tracker created, as the API answers it.
#[derive(Debug, Serialize)]
pub struct Posted {
    /// The tracker's id of the comment.
    pub id: String,
    /// The comment's web page, when the tracker has one.
    pub url: Option<String>,
    /// The link it was posted through.
    pub link_id: String,
    /// The canonical key.
    pub key: String,
}

/// Posts `markdown` on the issue of link `link_id` of `project`, as `who`; audits it.
pub async fn add(
    state: &AppState,
    who: &str,
    project: &str,
    link_id: &str,
    markdown: &str,
) -> Result<Posted, ApiError> {
    let (link, source) = usable_link(state, project, link_id).await?;
    let plugin = state.plugins.get(&source.provider)?;
    if let Some(why) = plugin.unsupported(Capability::AddComments) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "comments-unsupported",
            format!(
                "comments cannot be posted through {:?}: \"Add comments\" is {why}",
                source.display_name
            ),
        ));
    }
    let max = (plugin.info.comments.as_ref()).map_or(MAX_CHARS, |c| c.max_length as usize);
    check_body(markdown, max.min(MAX_CHARS), &plugin.info.name)?;

    let (_, secrets) = crate::api::sources::load_with_secrets(state, &link.source_id).await?;
    let config = crate::api::sources::config(Some(&link.source_id), &source, secrets);
    let result = state
        .metrics
        .observe(
            Some(&link.source_id),
            &source.provider,
            "add-comment",
            outcome,
            state.plugins.add_comment(&config, &link.key, markdown),
        )
        .await;
    let comment = result.map_err(|e| refused(e, &link))?;
    audit(state, who, link_id, &link, &comment, markdown).await?;
    Ok(Posted {
        id: comment.id,
        url: comment.web_url,
        link_id: link_id.to_string(),
        key: link.key,
    })
}

/// How a comment call counts for its source's health: an unknown issue or a refused text
/// concern that comment, not the source.
fn outcome(result: &Result<CommentInfo, PluginError>) -> Outcome {
    match result {
        Err(PluginError::Provider(
            e @ (ProviderError::NotFound(_) | ProviderError::InvalidInput(_)),
        )) => Outcome::KeyError { code: e.code() },
        other => Outcome::of(other),
    }
}

/// The link, in this project, and its source, which must be enabled, assigned to the project
/// and have "Add comments" on.
async fn usable_link(
    state: &AppState,
    project: &str,
    link_id: &str,
) -> Result<(LinkRecord, SourceRecord), ApiError> {
    let id = link_id.to_string();
    let link: Option<LinkRecord> = state.store.read(move |r| r.get(LINKS, &id)).await?;
    let link = link
        .filter(|l| l.project == project)
        .ok_or_else(|| ApiError::not_found(format!("no link {link_id:?} in this project")))?;
    let id = link.source_id.clone();
    let source: Option<SourceRecord> = state.store.read(move |r| r.get(SOURCES, &id)).await?;
    let unusable = |why: &str| {
        ApiError::new(
            StatusCode::CONFLICT,
            "source-unavailable",
            format!(
                "comments cannot be posted through {:?}: {why}",
                link.source_name
            ),
        )
    };
    let source = source.ok_or_else(|| unusable("the source was deleted"))?;
    if !source.enabled {
        return Err(unusable("the source is disabled"));
    }
    if !source.projects.includes(project) {
        return Err(unusable("the source is not assigned to this project"));
    }
    if !source.capabilities.add_comments {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "capability-off",
            format!(
                "the source {:?} does not have the \"Add comments\" capability; an admin can \
                 turn it on in the source's CAPABILITIES",
                source.display_name
            ),
        ));
    }
    Ok((link, source))
}

/// The body must hold text and fit both the host's and the tracker's limit.
fn check_body(markdown: &str, max: usize, tracker: &str) -> Result<(), ApiError> {
    if markdown.trim().is_empty() {
        return Err(ApiError::invalid("body", "write the comment's text"));
    }
    let length = markdown.chars().count();
    if length > max {
        return Err(ApiError::invalid(
            "body",
            format!(
                "the comment is {length} characters; {tracker} comments here may have at most {max}"
            ),
        ));
    }
    Ok(())
}

/// The tracker's refusals keep their category and the plugin's words, with a status that
/// says whose problem it is.
fn refused(e: PluginError, link: &LinkRecord) -> ApiError {
    let PluginError::Provider(p) = &e else {
        return e.into();
    };
    let key = &link.key;
    match p {
        // No permission to comment, or a locked issue: nothing the caller can retry.
        ProviderError::Forbidden(m) => ApiError::new(
            StatusCode::FORBIDDEN,
            "tracker-forbidden",
            format!("the tracker refused the comment on {key}: {m}"),
        ),
        ProviderError::NotFound(m) => ApiError::new(
            StatusCode::NOT_FOUND,
            "issue-not-found",
            format!(
                "the tracker has no issue {key} (or it is hidden from the source's credentials): {m}"
            ),
        ),
        ProviderError::InvalidInput(m) => {
            ApiError::invalid("body", format!("the tracker refused the comment: {m}"))
        }
        ProviderError::Unsupported(m) => {
            ApiError::new(StatusCode::CONFLICT, "comments-unsupported", m.clone())
        }
        ProviderError::RateLimited {
            retry_after_secs, ..
        } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            format!("the tracker asked to wait {retry_after_secs} s before the next comment"),
        ),
        _ => e.into(),
    }
}

/// Records the comment in the audit log: who, where, the tracker's id, the length and the
/// first [`EXCERPT_CHARS`] characters only.
async fn audit(
    state: &AppState,
    who: &str,
    link_id: &str,
    link: &LinkRecord,
    comment: &CommentInfo,
    markdown: &str,
) -> Result<(), ApiError> {
    let excerpt: String = markdown.chars().take(EXCERPT_CHARS).collect();
    let event = json!({
        "at": now(),
        "who": who,
        "action": "link.commented",
        "target": link_id,
        "details": {
            "project": link.project,
            "source_id": link.source_id,
            "key": link.key,
            "comment_id": comment.id,
            "length": markdown.chars().count(),
            "excerpt": excerpt,
        },
    });
    state
        .store
        .write(move |w| w.audit(&event).map_err(ApiError::from))
        .await?;
    Ok(())
}
