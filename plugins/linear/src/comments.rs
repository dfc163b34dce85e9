//! "Add comments" (contract 1.1): the GraphQL mutation `commentCreate(input: {issueId, body,
//! doNotSubscribeToIssue})` with the Markdown as `body` (Linear stores Markdown). Facts from
//! `../shared/providers-events.md` section 4.A: `issueId` takes the identifier (`ENG-123`);
//! the payload is `{success, comment {id url}}`; errors come in `errors[]` whatever the HTTP
//! status (`Entity not found`, `forbidden`, `RATELIMITED`), read by [`graphql`]; Linear has no
//! locked issue and documents no size limit.

use testorchestrator_provider_sdk::serde_json::json;
use testorchestrator_provider_sdk::*;

use super::{graphql, invalid, parse_identifier};

/// A conservative limit: Linear documents none for comments.
const MAX_LENGTH: u32 = 50_000;

const MUTATION: &str = "mutation AddComment($input: CommentCreateInput!) { \
    commentCreate(input: $input) { success comment { id url } } }";

/// How this plugin comments.
pub fn describe() -> Option<CommentsInfo> {
    Some(CommentsInfo {
        format: "Markdown".into(),
        max_length: MAX_LENGTH,
    })
}

/// Posts `markdown` on issue `key`, without subscribing the key's user to the issue.
pub fn add(source: &Source, key: &str, markdown: &str) -> Result<CommentInfo, ProviderError> {
    let key = parse_identifier(key).map_err(invalid)?;
    let input = json!({ "issueId": key, "body": markdown, "doNotSubscribeToIssue": true });
    let body = json!({ "query": MUTATION, "variables": { "input": input } });
    let data = graphql(source, body, &format!("Linear issue {key}"))?;
    let payload = &data["commentCreate"];
    if payload["success"] != true {
        return Err(ProviderError::Provider(format!(
            "Linear did not create the comment on {key} (success is not true)"
        )));
    }
    let id = str_at(payload, "/comment/id")
        .ok_or_else(|| ProviderError::Provider("Linear's answer carries no comment id".into()))?;
    Ok(CommentInfo {
        id: id.to_string(),
        web_url: str_at(payload, "/comment/url").map(String::from),
    })
}
