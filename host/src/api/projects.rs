//! `/projects`: a minimal project list, so "all projects" and "specific projects" mean
//! something. Deleting a project removes it from every source's specific assignment.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::ApiError;
use super::extract::{Body, Caller, Path};
use crate::app::AppState;
use crate::audit::audit;
use crate::ids::new_id;
use crate::names;
use crate::store::records::{ProjectAssignment, ProjectRecord, SourceRecord, now};
use crate::store::{PROJECTS, Read, SOURCES, Writer};

/// A project on the wire.
#[derive(Serialize)]
pub struct ProjectView {
    /// Id.
    pub id: String,
    /// Record.
    #[serde(flatten)]
    pub record: ProjectRecord,
}

/// Body of create and rename.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectInput {
    /// Unique, 1-100 characters.
    pub name: String,
}

/// `GET /projects`: admins see all; members see theirs.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ProjectView>>, ApiError> {
    let all: Vec<(String, ProjectRecord)> = state.store.read(|r| r.all(PROJECTS)).await?;
    Ok(Json(
        all.into_iter()
            .filter(|(id, _)| caller.require_project(id).is_ok())
            .map(|(id, record)| ProjectView { id, record })
            .collect(),
    ))
}

/// `GET /projects/{id}`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ProjectView>, ApiError> {
    caller.require_project(&id)?;
    let key = id.clone();
    let record: Option<ProjectRecord> = state.store.read(move |r| r.get(PROJECTS, &key)).await?;
    let record = record.ok_or_else(|| ApiError::not_found(format!("no project {id:?}")))?;
    Ok(Json(ProjectView { id, record }))
}

/// `POST /projects` (admin).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(input): Body<ProjectInput>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    caller.require_admin()?;
    let name = valid_name(&input.name)?;
    let id = new_id("prj");
    let record = ProjectRecord {
        name,
        created_at: now(),
    };
    let (key, value, who) = (id.clone(), record.clone(), caller.who());
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
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(ProjectView { id, record })))
}

/// `PUT /projects/{id}` (admin): rename.
pub async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(input): Body<ProjectInput>,
) -> Result<Json<ProjectView>, ApiError> {
    caller.require_admin()?;
    let name = valid_name(&input.name)?;
    let (key, who) = (id.clone(), caller.who());
    let record = state
        .store
        .write(move |w| {
            let mut record: ProjectRecord = w
                .get(PROJECTS, &key)?
                .ok_or_else(|| ApiError::not_found(format!("no project {key:?}")))?;
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
            Ok::<_, ApiError>(record)
        })
        .await?;
    Ok(Json(ProjectView { id, record }))
}

/// `DELETE /projects/{id}` (admin): also removes the project from specific assignments.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let who = caller.who();
    state
        .store
        .write(move |w| {
            let project: ProjectRecord = w
                .get(PROJECTS, &id)?
                .ok_or_else(|| ApiError::not_found(format!("no project {id:?}")))?;
            w.delete(PROJECTS, &id)?;
            let mut unassigned = Vec::new();
            let sources: Vec<(String, SourceRecord)> = w.all(SOURCES)?;
            for (source_id, mut source) in sources {
                if let ProjectAssignment::Specific { ids } = &mut source.projects
                    && ids.contains(&id)
                {
                    ids.retain(|p| *p != id);
                    source.updated_at = now();
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
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn valid_name(name: &str) -> Result<String, ApiError> {
    Ok(names::check(
        "name",
        name,
        "a project name",
        "Web shop",
        100,
    )?)
}

fn unique_name(w: &Writer, name: &str, except: Option<&str>) -> Result<(), ApiError> {
    let all: Vec<(String, ProjectRecord)> = w.all(PROJECTS)?;
    let wanted = names::key(name);
    if all
        .iter()
        .any(|(id, p)| Some(id.as_str()) != except && names::key(&p.name) == wanted)
    {
        return Err(ApiError::conflict(
            Some("name"),
            format!("a project named {name:?} already exists"),
        ));
    }
    Ok(())
}
