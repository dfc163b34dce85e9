//! "Add comments" (contract 1.1): `POST /repos/{owner}/{repo}/issues/{number}/comments` with
//! the Markdown as `body` (GitHub stores Markdown as it is). Facts from
//! `../shared/providers-events.md` section 2.A: `201` with the comment (`id`, `html_url`); a
//! locked conversation is `403` "Unable to create comment because issue is locked."; a body
//! over 65,536 characters is `422`; a missing issue or a private repository without access is
//! `404`; a repository with issues disabled is `410`.

use testorchestrator_provider_sdk::bindings::testorchestrator::provider::http;
use testorchestrator_provider_sdk::serde_json::{Value, json};
use testorchestrator_provider_sdk::*;

use super::{
    Repo, api_root, error_text, github_error, issue_error, parse_number, rate_limit, send,
};

/// GitHub's limit on a comment's body.
const MAX_LENGTH: u32 = 65_536;

/// How this plugin comments.
pub fn describe() -> Option<CommentsInfo> {
    Some(CommentsInfo {
        format: "Markdown (GitHub Flavored Markdown)".into(),
        max_length: MAX_LENGTH,
    })
}

/// Posts `markdown` on issue (or pull request) `key`.
pub fn add(source: &Source, key: &str, markdown: &str) -> Result<CommentInfo, ProviderError> {
    let number = parse_number(key.trim().strip_prefix('#').unwrap_or(key.trim()))?;
    let repo = Repo::of(source)?;
    let api = api_root(source, &repo)?;
    let url = format!("{api}/repos/{}/issues/{number}/comments", repo.path());
    let resp = send(http::Method::Post, &url, Some(&json!({ "body": markdown })))?;
    if !resp.is_success() {
        return Err(refusal(source, &repo, &resp, &number));
    }
    let created = resp.json()?;
    let id = match &created["id"] {
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(ProviderError::Provider(
                "GitHub's answer carries no comment id".into(),
            ));
        }
    };
    Ok(CommentInfo {
        id,
        web_url: str_at(&created, "/html_url").map(String::from),
    })
}

/// Why GitHub refused the comment, in words that say what to fix.
fn refusal(source: &Source, repo: &Repo, resp: &HttpResponse, number: &str) -> ProviderError {
    if let Some(limit) = rate_limit(resp) {
        return ProviderError::RateLimited(limit);
    }
    let message = error_text(resp);
    match resp.status {
        403 if message.to_ascii_lowercase().contains("locked") => {
            ProviderError::Forbidden(format!(
                "issue #{number} of {} is locked: only collaborators can comment ({message})",
                repo.full_name()
            ))
        }
        403 if source.auth_type != "none"
            && !message.to_ascii_lowercase().contains("login attempts") =>
        {
            ProviderError::Forbidden(format!(
                "GitHub refused the comment on #{number} ({message}, HTTP 403): the token needs write \
                 access to this repository's issues (Issues: read and write, or the repo scope)"
            ))
        }
        410 => ProviderError::Forbidden(format!(
            "issues are disabled in {}, or #{number} was deleted: {message}",
            repo.full_name()
        )),
        422 => ProviderError::InvalidInput(format!(
            "GitHub refused the comment: {}",
            validation_text(resp).unwrap_or(message)
        )),
        404 => issue_error(source, repo, resp, number),
        _ => github_error(
            source,
            resp,
            &format!("a comment on #{number} of {}", repo.full_name()),
        ),
    }
}

/// The messages of a `422 Validation Failed` (e.g. "body is too long (maximum is 65536
/// characters)").
fn validation_text(resp: &HttpResponse) -> Option<String> {
    let body = resp.json().ok()?;
    let messages: Vec<&str> = body["errors"]
        .as_array()?
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    (!messages.is_empty()).then(|| messages.join("; "))
}
