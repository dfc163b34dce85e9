//! "Add comments": a project member posts a Markdown comment on the issue of a link, through
//! the link's source (`POST /projects/{project}/links/{id}/comments`, handler in
//! `api/comments.rs`).
//!
//! A comment is posted only when every rule holds, each refusal saying what to fix: the link
//! is in the project; its source exists, is enabled, assigned to the project and has the "Add
//! comments" capability; the source's plugin supports comments (a contract 1.0 plugin does
//! not) and the source still fits it (see [`crate::compat`]); the body is not empty and no longer than the host's [`MAX_CHARS`] and the plugin's
//! `max-length`. The tracker's refusals keep their category (no permission or a locked issue,
//! an issue not found) and the plugin's words. Every comment posted is audited with a short
//! excerpt of its text, never the whole of it.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;

use crate::app::AppState;
use crate::audit::audit;
use crate::field::FieldError;
use crate::metrics::Outcome;
use crate::plugin::{Capability, CommentInfo, PluginError, ProviderError};
use crate::sources::{self, SourceError};
use crate::store::records::{LinkRecord, SourceRecord};
use crate::store::{LINKS, Read, SOURCES, StoreError};

/// The longest comment the host accepts, in characters (a plugin may accept fewer).
pub const MAX_CHARS: usize = 16_000;

/// Characters of a comment kept in the audit log.
const EXCERPT_CHARS: usize = 60;

/// Why a comment was not posted.
#[derive(Debug, thiserror::Error)]
pub enum CommentError {
    /// The comment's text is wrong (empty, too long, or refused by the tracker as invalid).
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No link with this id in the project.
    #[error("no link {0:?} in this project")]
    LinkNotFound(String),
    /// The link's source (named as the link knows it) is deleted, disabled or not assigned
    /// to the project: why.
    #[error("comments cannot be posted through {source_name:?}: {why}")]
    SourceUnavailable {
        /// The source's name, as the link knows it.
        source_name: String,
        /// Why it cannot be used.
        why: &'static str,
    },
    /// The source (named) does not have the "Add comments" capability.
    #[error(
        "the source {0:?} does not have the \"Add comments\" capability; an admin can turn it \
         on in the source's CAPABILITIES"
    )]
    CapabilityOff(String),
    /// The source's plugin cannot post comments, or the tracker said it cannot: why.
    #[error("{0}")]
    Unsupported(String),
    /// The source no longer fits its loaded plugin (see [`crate::compat`]): nothing was asked
    /// of the plugin.
    #[error(transparent)]
    Incompatible(#[from] crate::compat::Incompatible),
    /// The tracker refused the comment on this issue: no permission, or a locked issue.
    #[error("the tracker refused the comment on {key}: {message}")]
    TrackerForbidden {
        /// The issue's canonical key.
        key: String,
        /// The plugin's words.
        message: String,
    },
    /// The tracker has no such issue, or hides it from the source's credentials.
    #[error(
        "the tracker has no issue {key} (or it is hidden from the source's credentials): {message}"
    )]
    IssueNotFound {
        /// The issue's canonical key.
        key: String,
        /// The plugin's words.
        message: String,
    },
    /// The tracker asked to wait this many seconds.
    #[error("the tracker asked to wait {0} s before the next comment")]
    RateLimited(u32),
    /// The plugin is missing or failed (a provider's other answers included).
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The source could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A comment the tracker created, as the API answers it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Posted {
    /// The tracker's id of the comment.
    pub id: String,
    /// The comment's web page, when the tracker has one.
    pub url: Option<String>,
    /// The link it was posted through.
    pub link_id: String,
    /// The issue's canonical key.
    pub key: String,
}

/// Posts `markdown` on the issue of link `link_id` of `project`, as `who`; audits it.
pub async fn add(
    state: &AppState,
    who: &str,
    project: &str,
    link_id: &str,
    markdown: &str,
) -> Result<Posted, CommentError> {
    let (link, source) = usable_link(state, project, link_id).await?;
    let plugin = state.plugins.get(&source.provider)?;
    if let Some(refused) = crate::compat::refusal(&state.plugins, &source) {
        return Err(refused.into());
    }
    if let Some(why) = plugin.unsupported(Capability::AddComments) {
        return Err(CommentError::Unsupported(format!(
            "comments cannot be posted through {:?}: \"Add comments\" is {why}",
            source.display_name
        )));
    }
    let max = (plugin.info.comments.as_ref()).map_or(MAX_CHARS, |c| c.max_length as usize);
    check_body(markdown, max.min(MAX_CHARS), &plugin.info.name)?;
    // The tracker asked this source to wait (a 429, or its rate limit spent): the pause that
    // sync and link fetches obey holds for comments too.
    if let Some(until) = crate::sync::paused_until(state, &link.source_id) {
        return Err(CommentError::RateLimited(crate::sync::seconds_until(until)));
    }

    let (_, secrets) = sources::load_with_secrets(state, &link.source_id).await?;
    let config = sources::config(Some(&link.source_id), &source, secrets);
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
    record(state, who, link_id, &link, &comment, markdown).await?;
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
) -> Result<(LinkRecord, SourceRecord), CommentError> {
    let id = link_id.to_string();
    let link: Option<LinkRecord> = state.store.read(move |r| r.get(LINKS, &id)).await?;
    let link = link
        .filter(|l| l.project == project)
        .ok_or_else(|| CommentError::LinkNotFound(link_id.to_string()))?;
    let id = link.source_id.clone();
    let source: Option<SourceRecord> = state.store.read(move |r| r.get(SOURCES, &id)).await?;
    let unusable = |why: &'static str| CommentError::SourceUnavailable {
        source_name: link.source_name.clone(),
        why,
    };
    let source = source.ok_or_else(|| unusable("the source was deleted"))?;
    if !source.enabled {
        return Err(unusable("the source is disabled"));
    }
    if !source.projects.includes(project) {
        return Err(unusable("the source is not assigned to this project"));
    }
    if !source.capabilities.add_comments {
        return Err(CommentError::CapabilityOff(source.display_name));
    }
    Ok((link, source))
}

/// The body must hold text and fit both the host's and the tracker's limit.
fn check_body(markdown: &str, max: usize, tracker: &str) -> Result<(), FieldError> {
    if markdown.trim().is_empty() {
        return Err(FieldError::new("body", "write the comment's text"));
    }
    let length = markdown.chars().count();
    if length > max {
        return Err(FieldError::new(
            "body",
            format!(
                "the comment is {length} characters; {tracker} comments here may have at most {max}"
            ),
        ));
    }
    Ok(())
}

/// The tracker's refusals keep their category and the plugin's words, so that the answer
/// says whose problem it is.
fn refused(e: PluginError, link: &LinkRecord) -> CommentError {
    let PluginError::Provider(p) = &e else {
        return e.into();
    };
    let key = link.key.clone();
    match p {
        // No permission to comment, or a locked issue: nothing the caller can retry.
        ProviderError::Forbidden(m) => CommentError::TrackerForbidden {
            key,
            message: m.clone(),
        },
        ProviderError::NotFound(m) => CommentError::IssueNotFound {
            key,
            message: m.clone(),
        },
        ProviderError::InvalidInput(m) => {
            FieldError::new("body", format!("the tracker refused the comment: {m}")).into()
        }
        ProviderError::Unsupported(m) => CommentError::Unsupported(m.clone()),
        ProviderError::RateLimited {
            retry_after_secs, ..
        } => CommentError::RateLimited(*retry_after_secs),
        _ => e.into(),
    }
}

/// Records the comment in the audit log: who, where, the tracker's id, the length and the
/// first [`EXCERPT_CHARS`] characters only.
async fn record(
    state: &AppState,
    who: &str,
    link_id: &str,
    link: &LinkRecord,
    comment: &CommentInfo,
    markdown: &str,
) -> Result<(), StoreError> {
    let excerpt: String = markdown.chars().take(EXCERPT_CHARS).collect();
    let details = json!({
        "project": link.project,
        "source_id": link.source_id,
        "key": link.key,
        "comment_id": comment.id,
        "length": markdown.chars().count(),
        "excerpt": excerpt,
    });
    let (who, target) = (who.to_string(), link_id.to_string());
    state
        .store
        .write(move |w| audit(w, &who, "link.commented", &target, details))
        .await
}
