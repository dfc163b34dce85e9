//! Projects: a minimal list, so "all projects" and "specific projects" mean something.
//! Deleting a project removes it from every source's specific assignment.

use serde_json::json;

use crate::app::AppState;
use crate::audit::audit;
use crate::field::FieldError;
use crate::ids::new_id;
use crate::names;
use crate::store::records::{ProjectAssignment, ProjectRecord, SourceRecord, now};
use crate::store::{PROJECTS, Read, SOURCES, StoreError, Writer};

/// Why a project could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The name given is not a valid name.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No project has this id.
    #[error("no project {0:?}")]
    NotFound(String),
    /// Another project already has this name (compared by [`names::key`]).
    #[error("a project named {0:?} already exists")]
    DuplicateName(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Every project.
pub async fn list(state: &AppState) -> Result<Vec<(String, ProjectRecord)>, ProjectError> {
    Ok(state.store.read(|r| r.all(PROJECTS)).await?)
}

/// Project `id`.
pub async fn get(state: &AppState, id: &str) -> Result<ProjectRecord, ProjectError> {
    let key = id.to_string();
    let record: Option<ProjectRecord> = state.store.read(move |r| r.get(PROJECTS, &key)).await?;
    record.ok_or_else(|| ProjectError::NotFound(id.to_string()))
}

/// Creates a project named `name` for `who`; returns its id and record.
pub async fn create(
    state: &AppState,
    who: &str,
    name: &str,
) -> Result<(String, ProjectRecord), ProjectError> {
    let name = valid_name(name)?;
    let id = new_id("prj");
    let record = ProjectRecord {
        name,
        created_at: now(),
    };
    let (key, value, who) = (id.clone(), record.clone(), who.to_string());
    state
        .store
        .write(move |w| {
            unique_name(w, &value.name, None)?;
            w.put(PROJECTS, &key, &value)?;
            audit(
                w,
                &who,
                "project.created",
                &key,
                json!({"name": value.name}),
            )?;
            Ok::<_, ProjectError>(())
        })
        .await?;
    Ok((id, record))
}

/// Renames project `id` to `name`; returns its record.
pub async fn rename(
    state: &AppState,
    who: &str,
    id: &str,
    name: &str,
) -> Result<ProjectRecord, ProjectError> {
    let name = valid_name(name)?;
    let (key, who) = (id.to_string(), who.to_string());
    state
        .store
        .write(move |w| {
            let mut record: ProjectRecord = w
                .get(PROJECTS, &key)?
                .ok_or_else(|| ProjectError::NotFound(key.clone()))?;
            unique_name(w, &name, Some(&key))?;
            let from = std::mem::replace(&mut record.name, name);
            w.put(PROJECTS, &key, &record)?;
            if from != record.name {
                audit(
                    w,
                    &who,
                    "project.renamed",
                    &key,
                    json!({"from": from, "to": record.name}),
                )?;
            }
            Ok::<_, ProjectError>(record)
        })
        .await
}

/// Deletes project `id`, and removes it from the sources assigned to it specifically.
pub async fn delete(state: &AppState, who: &str, id: &str) -> Result<(), ProjectError> {
    let (who, id) = (who.to_string(), id.to_string());
    state
        .store
        .write(move |w| {
            let project: ProjectRecord = w
                .get(PROJECTS, &id)?
                .ok_or_else(|| ProjectError::NotFound(id.clone()))?;
            w.delete(PROJECTS, &id)?;
            let mut unassigned = Vec::new();
            let sources: Vec<(String, SourceRecord)> = w.all(SOURCES)?;
            for (source_id, mut source) in sources {
                if let ProjectAssignment::Specific { ids } = &mut source.projects
                    && ids.contains(&id)
                {
                    ids.retain(|p| *p != id);
                    source.updated_at = crate::sources::next_version(source.updated_at);
                    w.put(SOURCES, &source_id, &source)?;
                    // The source's own history shows the reassignment too.
                    audit(
                        w,
                        &who,
                        "source.edited",
                        &source_id,
                        json!({"changed": ["projects"], "reason": format!("project {id} deleted")}),
                    )?;
                    unassigned.push(source_id);
                }
            }
            audit(
                w,
                &who,
                "project.deleted",
                &id,
                json!({"name": project.name, "unassigned_sources": unassigned}),
            )?;
            Ok::<_, ProjectError>(())
        })
        .await
}

fn valid_name(name: &str) -> Result<String, FieldError> {
    names::check("name", name, "a project name", "Web shop", 100)
}

fn unique_name(w: &Writer, name: &str, except: Option<&str>) -> Result<(), ProjectError> {
    let all: Vec<(String, ProjectRecord)> = w.all(PROJECTS)?;
    let wanted = names::key(name);
    if all
        .iter()
        .any(|(id, p)| Some(id.as_str()) != except && names::key(&p.name) == wanted)
    {
        return Err(ProjectError::DuplicateName(name.to_string()));
    }
    Ok(())
}
