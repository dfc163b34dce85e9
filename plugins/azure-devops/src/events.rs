//! Azure DevOps service hooks ("Process webhooks"), from `../shared/providers-events.md`
//! section 3.B: no signature; a Web Hooks subscription sends Basic credentials (over HTTPS),
//! whose password is this source's webhook secret, or a custom header `X-Hook-Token` holding it. The body's `id` (the event's GUID) names
//! the delivery. `workitem.updated` carries the work item after the change in
//! `resource.revision`, with `resource.rev` as its version, and the changed fields' new values in
//! `resource.fields`.

use serde_json::Value;
use testorchestrator_provider_sdk::*;

use super::{AzureDevOps, Project, category_by_name};

const SETUP_HEAD: &str = "In Azure DevOps: Project settings → Service hooks → Create subscription → Web Hooks → Next.\n\
    Trigger: Work item updated (create more subscriptions for Work item created, deleted \
    and restored if you want them); leave the filters empty or narrow them.\n\
    URL: {webhookUrl}\n";

const SETUP_TAIL: &str = "Resource details to send: All (Minimal works too: the issue is then read again).\n\
    Test, then Finish.";

/// A Web Hooks subscription proves itself with Basic authentication (the default) or with a
/// custom header (`httpHeaders`), whichever the admin fills in.
pub fn schemes() -> Vec<EventScheme> {
    let scheme = |id: &str, label: &str, authenticity, proof: &str| EventScheme {
        id: id.into(),
        label: label.into(),
        authenticity,
        replay: None,
        delivery_id: Some(Locator::BodyPointer("/id".into())),
        setup: format!("{SETUP_HEAD}{proof}{SETUP_TAIL}"),
    };
    vec![
        scheme(
            "basic",
            "Basic authentication (service hook)",
            Authenticity::Basic,
            "Basic authentication username: any name, e.g. integration.\n\
             Basic authentication password: paste this source's webhook secret.\n",
        ),
        scheme(
            "header",
            "Custom header X-Hook-Token (service hook)",
            Authenticity::TokenHeader("X-Hook-Token".into()),
            "HTTP headers: X-Hook-Token:<this source's webhook secret> (one header per line).\n",
        ),
    ]
}

/// The work item a `workitem.*` event of this source's project concerns; nothing for other
/// events or projects.
pub fn parse(source: &Source, event: &Event) -> Result<Vec<EventChange>, ProviderError> {
    let body: Value = serde_json::from_slice(&event.body)
        .map_err(|e| ProviderError::InvalidInput(format!("the event is not JSON: {e}")))?;
    let kind = str_at(&body, "/eventType").unwrap_or_default();
    let resource = &body["resource"];
    let id = match kind {
        "workitem.updated" => resource
            .get("workItemId")
            .and_then(Value::as_u64)
            .filter(|id| *id > 0)
            .or_else(|| resource.pointer("/revision/id").and_then(Value::as_u64)),
        "workitem.created" | "workitem.deleted" | "workitem.restored" => {
            resource.get("id").and_then(Value::as_u64)
        }
        _ => None,
    };
    let Some(id) = id else {
        return Ok(Vec::new());
    };
    let project = Project::of(source)?;
    let fields = if kind == "workitem.updated" {
        updated_fields(resource)
    } else {
        resource.get("fields").cloned()
    };
    let fields = fields.as_ref();
    let team_project = fields.and_then(|f| str_at(f, "/System.TeamProject"));
    if team_project.is_some_and(|p| !p.eq_ignore_ascii_case(&project.name)) {
        return Ok(Vec::new());
    }
    let issue = if kind == "workitem.deleted" {
        None
    } else {
        fields.and_then(|f| issue_of(source, f, id))
    };
    let version = match kind {
        "workitem.updated" => resource.get("rev").and_then(Value::as_u64),
        _ => fields
            .and_then(|f| f.get("System.Rev"))
            .and_then(Value::as_u64),
    };
    Ok(vec![EventChange {
        key: id.to_string(),
        version: version.filter(|_| issue.is_some()),
        issue,
    }])
}

/// A `workitem.updated` event's fields: the work item after the change (`revision.fields`)
/// with the update's changed fields (`fields`, `{"oldValue","newValue"}` each) laid over it,
/// since a changed field (e.g. `System.AssignedTo`) may appear only there.
fn updated_fields(resource: &Value) -> Option<Value> {
    let mut fields = resource.pointer("/revision/fields").cloned();
    let Some(changes) = resource.get("fields").and_then(Value::as_object) else {
        return fields;
    };
    let merged = fields.get_or_insert_with(|| Value::Object(Default::default()));
    if let Some(merged) = merged.as_object_mut() {
        for (name, change) in changes {
            if let Some(new) = change.get("newValue") {
                merged.insert(name.clone(), new.clone());
            }
        }
    }
    fields
}

/// The work item's state from its fields, when they hold a state of a system process (a custom
/// state's category needs a request, which events may not make).
fn issue_of(source: &Source, fields: &Value, id: u64) -> Option<Issue> {
    // A payload without the title leaves it empty: the host keeps the one the link shows.
    let title = str_at(fields, "/System.Title").unwrap_or("");
    let state = str_at(fields, "/System.State")?;
    let category = category_by_name(state)?;
    let assignee = match fields.get("System.AssignedTo") {
        Some(Value::String(s)) => Some(s.split(" <").next().unwrap_or(s).trim().to_string()),
        Some(user) => str_at(user, "/displayName").map(str::to_string),
        None => None,
    }
    .filter(|a| !a.is_empty());
    Some(Issue {
        key: id.to_string(),
        title: title.to_string(),
        status: state.to_string(),
        status_category: category,
        assignee,
        web_url: AzureDevOps::issue_url(source, &id.to_string()).ok()?,
    })
}
