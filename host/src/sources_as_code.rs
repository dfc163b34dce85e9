//! Sources as code: every source exported to one TOML file without secrets, and such a file
//! imported back (created or updated by display name), all or nothing.
//!
//! The file is a list of `[[sources]]` tables in the API's input shape (`display_name`,
//! `provider`, `base_url`, `enabled`, templates, `key_pattern`, `[sources.auth]` with `type`
//! and `fields`, `[sources.capabilities]`, `[sources.settings]`, `[sources.network]`), except
//! that `projects` is `"all"` or a list of project *names*, and a secret auth field is a
//! reference, never a value: `"${ENV_VAR}"` (an environment variable of the importing process)
//! or `{ file = "/path" }` (a file's contents, trailing newline trimmed); a plain field takes
//! its value as it is, and a reference there is refused. An export writes
//! generated names such as `${SRC_OUR_JIRA_API_TOKEN}` and lists them in its header. Through
//! the API only `SRC_*` variables may be referenced and no files ([`References`]); the
//! `integration-host import` command may reference any.
//!
//! An import validates each source exactly like the API (`sources::check`, then
//! `sources::check_in_store`) inside one write transaction: any error leaves the store as it
//! was and names the source and the field (`sources[1].base_url`). On update a secret left out
//! of the file keeps its stored value, as in the API. Each import is audited
//! (`sources.imported`, plus `source.created`/`source.edited` per source).

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::audit::audit;
use crate::crypto::MasterKey;
use crate::field::FieldError;
use crate::ids::new_id;
use crate::names;
use crate::plugin::{PluginHost, ProviderInfo};
use crate::sources::{
    SourceError, SourceInput, changed_fields, check, check_in_store, kept_test, other_account,
};
use crate::store::records::{ProjectAssignment, ProjectRecord, SourceRecord};
use crate::store::{PROJECTS, Read, SECRETS, SOURCES, Store, StoreError};

/// Why an export or an import failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The file, or a source in it, is wrong: every problem found, the first the most
    /// important, each naming where (`sources[1].base_url`).
    #[error("{}", .0.first().map(ToString::to_string).unwrap_or_default())]
    Invalid(Vec<FileProblem>),
    /// A source of the file is named like another stored source it is not.
    #[error("{0}")]
    DuplicateName(FileProblem),
    /// A source could not be read or stored (not a mistake in the file).
    #[error(transparent)]
    Source(SourceError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored source could not be written as TOML.
    #[error("cannot write the export: {0}")]
    Export(String),
}

/// What is wrong with a sources file: where (`sources[1].base_url`; none for the file as a
/// whole) and what, naming the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProblem {
    /// The place in the file, if there is one.
    pub field: Option<String>,
    /// What is wrong, for a person.
    pub message: String,
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl From<FileProblem> for TransferError {
    fn from(p: FileProblem) -> Self {
        TransferError::Invalid(vec![p])
    }
}

/// The prefix of the environment variables an API import may read (see [`References`]).
pub const API_ENV_PREFIX: &str = "SRC_";

/// Which secret references an import may resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum References {
    /// Any environment variable and any readable file: the command line, which runs with the
    /// operator's own rights.
    Any,
    /// Only environment variables named `SRC_*` (as an export writes them), and no files: the
    /// API, so that an admin cannot read the service's other environment variables or files
    /// (such as the master key) by sending them to a tracker as a source's credentials.
    Restricted,
}

/// The largest file an import accepts, in bytes.
pub const MAX_IMPORT_BYTES: usize = 1 << 20;

/// What an import did, by display name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ImportReport {
    /// Sources that did not exist and were created.
    pub created: Vec<String>,
    /// Existing sources that changed.
    pub updated: Vec<String>,
    /// Existing sources the file left as they were.
    pub unchanged: Vec<String>,
    /// For each updated source (by display name), the fields that changed (a secret only
    /// as `auth.fields.<name>: replaced`).
    pub changes: BTreeMap<String, Vec<String>>,
    /// Ids of updated sources now on another tracker or account (see
    /// [`other_account`]).
    #[serde(skip)]
    pub other_account: Vec<String>,
}

/// The environment variable an export names for a secret field of a source, e.g.
/// `SRC_OUR_JIRA_API_TOKEN` for field `api_token` of "Our Jira".
pub fn secret_env_name(display_name: &str, field: &str) -> String {
    let mut out = String::from("SRC");
    for part in [display_name, field] {
        out.push('_');
        let mut last_underscore = true;
        for c in part.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_uppercase());
                last_underscore = false;
            } else if !last_underscore {
                out.push('_');
                last_underscore = true;
            }
        }
        while out.ends_with('_') {
            out.pop();
        }
    }
    out
}

/// Sources and projects read together for an export.
type ExportSnapshot = (Vec<(String, SourceRecord)>, Vec<(String, ProjectRecord)>);

/// Every source as TOML, secrets replaced by `${ENV_VAR}` references.
pub async fn export(store: &Store) -> Result<String, TransferError> {
    // One snapshot, so project names match the sources' assignments.
    let (sources, projects): ExportSnapshot = store
        .read(|r| Ok::<_, StoreError>((r.all(SOURCES)?, r.all(PROJECTS)?)))
        .await?;
    render(sources, &projects.into_iter().collect())
}

/// Renders sources as the export file; `projects` maps project ids to their records.
fn render(
    mut sources: Vec<(String, SourceRecord)>,
    projects: &BTreeMap<String, ProjectRecord>,
) -> Result<String, TransferError> {
    sources.sort_by_key(|(_, s)| s.display_name.to_lowercase());
    let mut used_names = BTreeSet::new();
    let mut env_names = Vec::new();
    let mut list = Vec::new();
    for (_, record) in &sources {
        let mut rest = match serde_json::to_value(record) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(TransferError::Export(
                    "a source record is not an object".into(),
                ));
            }
            Err(e) => return Err(TransferError::Export(e.to_string())),
        };
        for gone in [
            "secrets_set",
            "last_test",
            "created_at",
            "updated_at",
            "auth_type",
            "auth_fields",
            "projects",
            // The webhook's URL token and scheme are set up again on the service imported into:
            // the token is a credential of this service's URL.
            "webhook",
        ] {
            rest.remove(gone);
        }
        let mut out = toml::Table::new();
        // The identifying keys first, then the other plain values, then the tables.
        for key in ["display_name", "provider", "base_url", "enabled"] {
            if let Some(value) = rest.remove(key).and_then(to_toml) {
                out.insert(key.into(), value);
            }
        }
        let (tables, plain): (Vec<_>, Vec<_>) = rest.into_iter().partition(|(_, v)| v.is_object());
        for (key, value) in plain {
            if let Some(value) = to_toml(value) {
                out.insert(key, value);
            }
        }
        out.insert(
            "projects".into(),
            match &record.projects {
                ProjectAssignment::All {} => toml::Value::String("all".into()),
                ProjectAssignment::Specific { ids } => toml::Value::Array(
                    ids.iter()
                        .filter_map(|id| projects.get(id))
                        .map(|p| toml::Value::String(p.name.clone()))
                        .collect(),
                ),
            },
        );
        let mut fields = toml::Table::new();
        for (name, value) in &record.auth_fields {
            fields.insert(name.clone(), toml::Value::String(value.clone()));
        }
        for name in &record.secrets_set {
            let base = secret_env_name(&record.display_name, name);
            let mut env = base.clone();
            let mut n = 2;
            while !used_names.insert(env.clone()) {
                env = format!("{base}_{n}");
                n += 1;
            }
            fields.insert(name.clone(), toml::Value::String(format!("${{{env}}}")));
            env_names.push((env, record.display_name.clone(), name.clone()));
        }
        let mut auth = toml::Table::new();
        auth.insert("type".into(), toml::Value::String(record.auth_type.clone()));
        if !fields.is_empty() {
            auth.insert("fields".into(), toml::Value::Table(fields));
        }
        out.insert("auth".into(), toml::Value::Table(auth));
        for (key, value) in tables {
            if let Some(value) = to_toml(value) {
                out.insert(key, value);
            }
        }
        list.push(toml::Value::Table(out));
    }
    let mut doc = toml::Table::new();
    doc.insert("sources".into(), toml::Value::Array(list));
    let body = toml::to_string_pretty(&doc).map_err(|e| TransferError::Export(e.to_string()))?;
    let mut header = String::from(
        "# Integration sources (import with `integration-host import FILE` or\n\
         # POST /api/v1/sources/import). Secret fields are references, never values: before an\n\
         # import, set these environment variables, or replace a reference with\n\
         # { file = \"/path/to/secret\" }.\n",
    );
    for (env, source, field) in &env_names {
        header.push_str(&format!("#   {env}: {field} of {source:?}\n"));
    }
    Ok(format!("{header}\n{body}"))
}

/// A JSON value as TOML; `None` for null and for empty tables (TOML has no null, and every
/// table of a source has a default).
fn to_toml(value: Value) -> Option<toml::Value> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => toml::Value::Boolean(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        Value::String(s) => toml::Value::String(s),
        Value::Array(items) => toml::Value::Array(items.into_iter().filter_map(to_toml).collect()),
        Value::Object(map) => {
            let table: toml::Table = map
                .into_iter()
                .filter_map(|(k, v)| to_toml(v).map(|v| (k, v)))
                .collect();
            if table.is_empty() {
                return None;
            }
            toml::Value::Table(table)
        }
    })
}

/// One source of the file, checked for shape and with its secrets resolved.
struct Entry {
    index: usize,
    input: SourceInput,
    /// Project names; `None` for all projects.
    project_names: Option<Vec<String>>,
    /// The auth fields whose value was a reference (see [`check_references`]).
    references: Vec<String>,
}

/// Imports a sources file: creates or updates each source by display name, in one write
/// transaction (any error changes nothing). Secret references are resolved from the process
/// environment and the file system, as far as `references` allows; `who` is recorded in the
/// audit log.
pub async fn import(
    store: &Store,
    plugins: &PluginHost,
    key: &MasterKey,
    text: &str,
    who: &str,
    references: References,
) -> Result<ImportReport, TransferError> {
    import_or_preview(store, plugins, key, text, who, references, false).await
}

/// Why an import's transaction ended without a commit: a problem, or a preview done.
enum Abort {
    Failed(TransferError),
    Preview(ImportReport),
}

impl From<TransferError> for Abort {
    fn from(e: TransferError) -> Abort {
        Abort::Failed(e)
    }
}

impl From<StoreError> for Abort {
    fn from(e: StoreError) -> Abort {
        Abort::Failed(e.into())
    }
}

/// [`import`], or with `dry_run` what it would do, changing nothing: the same checks in the
/// same kind of transaction, rolled back at the end (so the audit log records nothing either).
pub async fn import_or_preview(
    store: &Store,
    plugins: &PluginHost,
    key: &MasterKey,
    text: &str,
    who: &str,
    references: References,
    dry_run: bool,
) -> Result<ImportReport, TransferError> {
    let entries = parse(text, references, &|name| std::env::var(name).ok())?;
    let mut infos: BTreeMap<String, ProviderInfo> = BTreeMap::new();
    for entry in &entries {
        let provider = &entry.input.provider;
        if infos.contains_key(provider) {
            continue;
        }
        let info = plugins.get(provider).map(|p| p.info.clone()).map_err(|_| {
            at_source(
                entry,
                invalid("provider", format!("unknown provider {provider:?}")),
            )
        })?;
        infos.insert(provider.clone(), info);
    }
    for entry in &entries {
        check_references(entry, &infos[&entry.input.provider])?;
    }
    let (key, who) = (key.clone(), who.to_string());
    let outcome = store
        .write(move |w| {
            let projects: Vec<(String, ProjectRecord)> = w.all(PROJECTS)?;
            let mut report = ImportReport::default();
            for mut entry in entries {
                if let Some(names) = &entry.project_names {
                    let mut ids = Vec::new();
                    for (j, name) in names.iter().enumerate() {
                        let found = projects
                            .iter()
                            .find(|(_, p)| p.name == *name)
                            .or_else(|| {
                                projects
                                    .iter()
                                    .find(|(_, p)| names::key(&p.name) == names::key(name))
                            })
                            .ok_or_else(|| {
                                at_source(
                                    &entry,
                                    invalid(
                                        format!("projects[{j}]"),
                                        format!("no project named {name:?}"),
                                    ),
                                )
                            })?;
                        ids.push(found.0.clone());
                    }
                    entry.input.projects = ProjectAssignment::Specific { ids };
                }
                let info = &infos[&entry.input.provider];
                let wanted = names::key(&entry.input.display_name);
                let existing: Option<(String, SourceRecord)> = w
                    .all::<SourceRecord>(SOURCES)?
                    .into_iter()
                    .find(|(_, s)| names::key(&s.display_name) == wanted);
                match existing {
                    None => {
                        let (record, secrets) =
                            check(&entry.input, info, None).map_err(|e| at_source(&entry, e))?;
                        let id = new_id("src");
                        check_in_store(w, &record, None).map_err(|e| at_source(&entry, e))?;
                        w.put(SOURCES, &id, &record)?;
                        w.put(SECRETS, &id, &key.seal(&id, &secrets))?;
                        audit(
                            w,
                            &who,
                            "source.created",
                            &id,
                            json!({"display_name": record.display_name, "provider": record.provider, "via": "import"}),
                        )?;
                        report.created.push(record.display_name);
                    }
                    Some((id, current)) => {
                        let stored = match w.get::<Vec<u8>>(SECRETS, &id)? {
                            Some(sealed) => key
                                .open(&id, &sealed)
                                .map_err(|e| {
                                    TransferError::Source(SourceError::Unsealed {
                                        id: id.clone(),
                                        detail: e.to_string(),
                                    })
                                })?,
                            None => BTreeMap::new(),
                        };
                        let (mut record, mut secrets) = check(&entry.input, info, Some((&current, &stored)))
                            .map_err(|e| at_source(&entry, e))?;
                        crate::webhooks::settings::keep(&current, &stored, &mut record, &mut secrets);
                        record.created_at = current.created_at;
                        record.updated_at = crate::sources::next_version(current.updated_at);
                        record.last_test = kept_test(&current, &record, &stored, &secrets);
                        let same = SourceRecord {
                            updated_at: current.updated_at,
                            ..record.clone()
                        } == current
                            && secrets == stored;
                        if same {
                            report.unchanged.push(current.display_name);
                            continue;
                        }
                        check_in_store(w, &record, Some(&id)).map_err(|e| at_source(&entry, e))?;
                        let changed = changed_fields(&current, &record, &stored, &secrets);
                        report
                            .changes
                            .insert(record.display_name.clone(), changed.clone());
                        if other_account(&current, &record, &stored, &secrets) {
                            report.other_account.push(id.clone());
                        }
                        w.put(SOURCES, &id, &record)?;
                        w.put(SECRETS, &id, &key.seal(&id, &secrets))?;
                        audit(
                            w,
                            &who,
                            "source.edited",
                            &id,
                            json!({"changed": changed, "via": "import"}),
                        )?;
                        report.updated.push(record.display_name);
                    }
                }
            }
            audit(
                w,
                &who,
                "sources.imported",
                "sources",
                json!({
                    "created": report.created,
                    "updated": report.updated,
                    "unchanged": report.unchanged,
                }),
            )?;
            if dry_run {
                return Err(Abort::Preview(report));
            }
            Ok::<_, Abort>(report)
        })
        .await;
    match outcome {
        Ok(report) => {
            for id in &report.other_account {
                plugins.forget_source(id);
            }
            Ok(report)
        }
        Err(Abort::Preview(report)) => Ok(report),
        Err(Abort::Failed(e)) => Err(e),
    }
}

/// A source's problem with one field, as [`at_source`] takes it.
fn invalid(field: impl Into<String>, message: impl Into<String>) -> SourceError {
    SourceError::Invalid(vec![FieldError::new(field, message)])
}

/// Puts a source's error in the context of the file: the field becomes `sources[i].<field>`
/// (with the API's `projects.ids[k]` written as the file's `projects[k]`) and the message
/// names the source. An error that is no mistake in the file stays as it is.
fn at_source(entry: &Entry, e: SourceError) -> TransferError {
    let name = Some(entry.input.display_name.trim());
    let at = |field: &str, message: String| at_index(entry.index, name, Some(field), message);
    match e {
        SourceError::Invalid(problems) => TransferError::Invalid(
            problems
                .into_iter()
                .map(|p| at(&p.field, p.message))
                .collect(),
        ),
        SourceError::DuplicateName(_) => {
            TransferError::DuplicateName(at("display_name", e.to_string()))
        }
        other => TransferError::Source(other),
    }
}

/// A problem at `field` (none: the whole entry) of entry `index` of the file, named `name`.
fn at_index(
    index: usize,
    name: Option<&str>,
    field: Option<&str>,
    message: impl std::fmt::Display,
) -> FileProblem {
    let field = match field {
        Some(f) => {
            let f = if let Some(rest) = f.strip_prefix("projects.ids") {
                format!("projects{rest}")
            } else {
                f.to_string()
            };
            format!("sources[{index}].{f}")
        }
        None => format!("sources[{index}]"),
    };
    let message = match name {
        Some(name) => format!("source {name:?} (sources[{index}]): {message}"),
        None => format!("sources[{index}]: {message}"),
    };
    FileProblem {
        field: Some(field),
        message,
    }
}

/// A problem of the file as a whole, or at a top-level `field`.
fn bad_file(field: Option<&str>, message: impl Into<String>) -> FileProblem {
    FileProblem {
        field: field.map(str::to_string),
        message: message.into(),
    }
}

/// Parses the file into entries, resolving secret references through `env` and the file
/// system. Checks only the shape; the rules are applied by [`import`].
fn parse(
    text: &str,
    references: References,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Entry>, FileProblem> {
    // The parser's message and where, without its quote of the line: a line may hold a
    // secret written in the file.
    let doc: toml::Table = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or_else(String::new, |span| {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!(" at line {line}, column {column}")
        });
        bad_file(
            None,
            format!("not a valid TOML file{at}: {}", e.message().trim()),
        )
    })?;
    let mut sources = None;
    for (k, v) in doc {
        match k.as_str() {
            "sources" => sources = Some(v),
            _ => {
                return Err(bad_file(
                    Some(&k),
                    format!("unknown key {k:?}; a sources file has only [[sources]] tables"),
                ));
            }
        }
    }
    let sources = match sources {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items,
        Some(_) => {
            return Err(bad_file(
                Some("sources"),
                "write each source as a [[sources]] table",
            ));
        }
    };
    let mut entries: Vec<Entry> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (index, item) in sources.into_iter().enumerate() {
        let toml::Value::Table(table) = item else {
            return Err(bad_file(
                Some(&format!("sources[{index}]")),
                "a source is a table",
            ));
        };
        let mut value = serde_json::to_value(&table)
            .map_err(|e| at_index(index, None, None, format!("cannot read it: {e}")))?;
        let map = value.as_object_mut().expect("a table is an object");
        let name = map
            .get("display_name")
            .and_then(Value::as_str)
            .map(str::to_string);
        let err = |e: FieldError| at_index(index, name.as_deref(), Some(&e.field), e.message);
        let project_names = match map.remove("projects") {
            Some(Value::String(s)) if s == "all" => None,
            Some(Value::Array(items)) => Some(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(j, v)| match v {
                        Value::String(s) => Ok(s),
                        _ => Err(err(FieldError::new(
                            format!("projects[{j}]"),
                            "a project is named by a string",
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => {
                return Err(err(FieldError::new(
                    "projects",
                    "use \"all\" or a list of project names",
                )));
            }
            None => {
                return Err(err(FieldError::new(
                    "projects",
                    "missing: use \"all\" or a list of project names",
                )));
            }
        };
        // Placeholder; the names become ids inside the import's transaction.
        map.insert("projects".into(), json!({"mode": "all"}));
        let mut referenced = Vec::new();
        if let Some(Value::Object(auth)) = map.get_mut("auth")
            && let Some(Value::Object(fields)) = auth.get_mut("fields")
        {
            referenced = resolve_fields(fields, references, env).map_err(err)?;
        }
        let input: SourceInput = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            let field = Some(path.as_str()).filter(|p| *p != ".");
            at_index(index, name.as_deref(), field, message)
        })?;
        if let Some(first) = seen.insert(names::key(&input.display_name), index) {
            return Err(err(FieldError::new(
                "display_name",
                format!("the same display name as sources[{first}]; each source appears once"),
            )));
        }
        entries.push(Entry {
            index,
            input,
            project_names,
            references: referenced,
        });
    }
    Ok(entries)
}

/// Replaces `"${NAME}"` and `{ file = "/path" }` references among auth fields by their values;
/// returns the names of the fields that held one.
fn resolve_fields(
    fields: &mut Map<String, Value>,
    references: References,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, FieldError> {
    let mut resolved_fields = Vec::new();
    for (name, value) in fields.iter_mut() {
        let field = format!("auth.fields.{name}");
        let resolved = match &*value {
            Value::String(s) => match s.strip_prefix("${").and_then(|s| s.strip_suffix('}')) {
                Some(var)
                    if references == References::Restricted && !var.starts_with(API_ENV_PREFIX) =>
                {
                    return Err(FieldError::new(
                        &field,
                        format!(
                            "an import through the API reads only environment variables named \
                             {API_ENV_PREFIX}*, not {var}"
                        ),
                    ));
                }
                Some(var) => env(var).ok_or_else(|| {
                    FieldError::new(&field, format!("the environment variable {var} is not set"))
                })?,
                None => continue,
            },
            Value::Object(_) if references == References::Restricted => {
                return Err(FieldError::new(
                    &field,
                    "an import through the API cannot read files; use \"${SRC_...}\" or the \
                     import command",
                ));
            }
            Value::Object(reference) => {
                let path = match (reference.len(), reference.get("file")) {
                    (1, Some(Value::String(path))) => path.clone(),
                    _ => {
                        return Err(FieldError::new(
                            &field,
                            "a reference is \"${ENV_VAR}\" or { file = \"/path\" }",
                        ));
                    }
                };
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    FieldError::new(&field, format!("cannot read the secret file {path}: {e}"))
                })?;
                text.trim_end_matches(['\r', '\n']).to_string()
            }
            _ => continue,
        };
        *value = Value::String(resolved);
        resolved_fields.push(name.clone());
    }
    Ok(resolved_fields)
}

/// A reference may stand only for a secret field of the source's auth type: in a plain field
/// the value it reads would be stored and shown as it is. Unknown auth types and fields are
/// left to `sources::check`, which names them.
fn check_references(entry: &Entry, info: &ProviderInfo) -> Result<(), TransferError> {
    let Some(auth) = info.auth_type(&entry.input.auth.kind) else {
        return Ok(());
    };
    for name in &entry.references {
        if let Some(field) = auth.fields.iter().find(|f| &f.name == name && !f.secret) {
            return Err(at_source(
                entry,
                invalid(
                    format!("auth.fields.{name}"),
                    format!(
                        "{} is not a secret field, so it takes its value as it is, not a \
                         reference (\"${{...}}\" or {{ file = ... }})",
                        field.label
                    ),
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_upper_snake_case() {
        assert_eq!(
            secret_env_name("Our Jira", "api_token"),
            "SRC_OUR_JIRA_API_TOKEN"
        );
        assert_eq!(secret_env_name("  Ärger--42 ", "pat"), "SRC_RGER_42_PAT");
    }

    #[test]
    fn references_resolve_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-file\n").unwrap();
        let text = format!(
            r#"
[[sources]]
display_name = "A"
provider = "p"
base_url = "https://a.example.com"
projects = "all"
auth = {{ type = "t", fields = {{ user = "u", token = "${{A_TOKEN}}", other = {{ file = "{}" }} }} }}

[[sources]]
display_name = "B"
provider = "p"
base_url = "https://b.example.com"
projects = ["Alpha"]
auth = {{ type = "t", fields = {{ token = "${{B_TOKEN}}" }} }}
"#,
            path.display()
        );
        let env = |name: &str| (name == "A_TOKEN").then(|| "from-env".to_string());
        let err = match parse(&text, References::Any, &env) {
            Err(e) => e,
            Ok(_) => panic!("B_TOKEN is not set"),
        };
        assert_eq!(err.field.as_deref(), Some("sources[1].auth.fields.token"));
        assert!(err.message.contains("B_TOKEN"), "{}", err.message);
        assert!(err.message.contains("\"B\""), "{}", err.message);

        let env = |name: &str| Some(format!("value-of-{name}"));
        let entries =
            parse(&text, References::Any, &env).unwrap_or_else(|e| panic!("{}", e.message));
        let a = &entries[0].input.auth.fields;
        assert_eq!(a["token"], "value-of-A_TOKEN");
        assert_eq!(a["other"], "from-file");
        assert_eq!(a["user"], "u");
        assert_eq!(entries[0].project_names, None);
        assert_eq!(entries[1].project_names, Some(vec!["Alpha".to_string()]));
    }

    #[test]
    fn the_api_reads_only_src_variables_and_no_files() {
        let env = |name: &str| Some(format!("value-of-{name}"));
        let source = |token: &str| {
            format!(
                "[[sources]]\ndisplay_name = \"A\"\nprovider = \"p\"\nbase_url = \"https://a.test\"\n\
                 projects = \"all\"\nauth = {{ type = \"t\", fields = {{ token = {token} }} }}\n"
            )
        };
        for token in [
            "\"${INTEGRATION_MASTER_KEY}\"",
            "{ file = \"/etc/hostname\" }",
        ] {
            let err = parse(&source(token), References::Restricted, &env)
                .err()
                .expect("refused");
            assert_eq!(err.field.as_deref(), Some("sources[0].auth.fields.token"));
        }
        let ok = parse(&source("\"${SRC_A_TOKEN}\""), References::Restricted, &env)
            .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(ok[0].input.auth.fields["token"], "value-of-SRC_A_TOKEN");
    }

    #[test]
    fn shape_errors_name_the_field() {
        let env = |_: &str| None;
        let text = "[[sources]]\ndisplay_name = \"A\"\nprovider = \"p\"\nbase_url = 3\nprojects = \"all\"\nauth = { type = \"t\" }\n";
        let err = parse(text, References::Any, &env)
            .err()
            .expect("base_url is a number");
        assert_eq!(err.field.as_deref(), Some("sources[0].base_url"));
        let err = parse("[[sources]]\ndisplay_name = \"A\"\n", References::Any, &env)
            .err()
            .expect("no projects");
        assert_eq!(err.field.as_deref(), Some("sources[0].projects"));
        let err = parse("source = 1\n", References::Any, &env)
            .err()
            .expect("unknown key");
        assert_eq!(err.field.as_deref(), Some("source"));
    }
}
