//! "Add comments" (contract 1.1): `POST /projects/:id/issues/:iid/notes` with the Markdown as
//! `body`. Facts from `../shared/providers-events.md` section 5.A: `201` with the note (`id`);
//! no web URL comes back, the issue's URL plus `#note_{id}` is the note's anchor; `403` when
//! the account may not comment (a locked discussion is members-only); `404` for an unknown
//! issue.
//!
//! **Quick actions:** GitLab runs the lines of a note that start with `/` (`/close`,
//! `/assign @x`, `/label ~y`) as commands, and a note of commands only comes back `202`. A
//! comment must never close, reassign or relabel an issue, so [`neutralise`] escapes every such
//! line (`\/close` shows as "/close" and runs nothing); fenced code blocks, where GitLab runs
//! nothing, are left as they are.

use testorchestrator_provider_sdk::serde_json::{Value, json};
use testorchestrator_provider_sdk::*;

use super::{GitLab, Project, canonical};

/// GitLab's limit on a note's body.
const MAX_LENGTH: u32 = 1_000_000;

/// How this plugin comments.
pub fn describe() -> Option<CommentsInfo> {
    Some(CommentsInfo {
        format: "Markdown (GitLab Flavored Markdown; quick actions are not run)".into(),
        max_length: MAX_LENGTH,
    })
}

/// Posts `markdown` as a note on issue `key`.
pub fn add(source: &Source, key: &str, markdown: &str) -> Result<CommentInfo, ProviderError> {
    let project = Project::of(source)?;
    let iid = canonical(key)?;
    let url = project.api_url(&format!("/issues/{iid}/notes"));
    let resp = post_json(url, &json!({ "body": neutralise(markdown) })).send()?;
    if resp.status == 202 {
        return Err(ProviderError::Provider(
            "GitLab read the comment as quick actions only and created no note".into(),
        ));
    }
    if resp.status == 403 && super::rate_limit(&resp).is_none() {
        return Err(ProviderError::Forbidden(format!(
            "GitLab refused the comment on issue #{iid} of {} (HTTP 403): the account needs at \
             least the Guest role and, for a token, the api scope (read_api cannot write); a locked discussion takes \
             comments from project members only",
            project.path
        )));
    }
    if !resp.is_success() {
        return Err(project.error(source, &resp, Some(iid)));
    }
    let created = resp.json()?;
    let id = match &created["id"] {
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(ProviderError::Provider(
                "GitLab's answer carries no note id".into(),
            ));
        }
    };
    let issue = <GitLab as Provider>::issue_url(source, &iid.to_string())?;
    Ok(CommentInfo {
        web_url: Some(format!("{issue}#note_{id}")),
        id,
    })
}

/// Escapes every line outside fenced code blocks that would start a quick action.
pub fn neutralise(markdown: &str) -> String {
    let mut fenced = false;
    let lines: Vec<String> = markdown
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("```") {
                fenced = !fenced;
            }
            match trimmed.strip_prefix('/') {
                Some(rest) if !fenced => {
                    let indent = &line[..line.len() - trimmed.len()];
                    format!("{indent}\\/{rest}")
                }
                _ => line.to_string(),
            }
        })
        .collect();
    lines.join("\n")
}
