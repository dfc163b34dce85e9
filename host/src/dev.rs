//! `integration-host dev DIR`: the vendor's edit-build-try loop. It watches the `.wasm` file a
//! plugin project's build writes and, on every new build that has held still, runs the
//! conformance checks on it ([`crate::plugin::check`], printed as `check` prints them) and
//! swaps it into a local host ([`crate::plugin_registry::install`], as an upload), which the
//! binary serves with the admin page. With `--build` it also runs the project's build command
//! whenever a source file changes.
//!
//! The project's kind says where its build writes the plugin: a Rust crate (`Cargo.toml`)
//! `target/wasm32-wasip2/release/<crate>.wasm`, a JavaScript project (`package.json`) the
//! `-o` of its `build` script, a Python one (`pyproject.toml`) `<name>.wasm`, as the projects
//! `new-plugin` makes do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::plugin::check::{self, CheckOptions};

/// What `dev` needs to know about a plugin project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    /// The project's directory.
    pub dir: PathBuf,
    /// The `.wasm` file its build writes.
    pub wasm: PathBuf,
    /// Its build command (program and arguments), run in `dir`.
    pub build: Vec<String>,
}

impl Project {
    /// Reads the project in `dir` (`Cargo.toml`, `package.json` or `pyproject.toml`); `wasm`,
    /// when given, is the build output instead of the one the project's kind implies. The
    /// error says what is missing, for a person.
    pub fn find(dir: &Path, wasm: Option<&Path>) -> Result<Project, String> {
        if !dir.is_dir() {
            return Err(format!("{} is not a directory", dir.display()));
        }
        let (output, build) = if dir.join("Cargo.toml").is_file() {
            cargo_project(dir)?
        } else if dir.join("package.json").is_file() {
            npm_project(dir)?
        } else if dir.join("pyproject.toml").is_file() {
            python_project(dir)?
        } else {
            (None, Vec::new())
        };
        let wasm = match (wasm, output) {
            (Some(wasm), _) => wasm.to_path_buf(),
            (None, Some(output)) => dir.join(output),
            (None, None) if build.is_empty() => {
                return Err(format!(
                    "{} has no Cargo.toml, package.json or pyproject.toml: give the plugin file \
                     the project's build writes with --wasm PATH",
                    dir.display()
                ));
            }
            (None, None) => {
                return Err(format!(
                    "{}: its \"build\" script names no output (-o FILE): give the plugin file \
                     it writes with --wasm PATH",
                    dir.join("package.json").display()
                ));
            }
        };
        Ok(Project {
            dir: dir.to_path_buf(),
            wasm,
            build,
        })
    }
}

/// A project's build output (when its manifest says) and build command.
type Kind = (Option<PathBuf>, Vec<String>);

/// A Rust crate: `target/wasm32-wasip2/release/<crate name with underscores>.wasm`.
fn cargo_project(dir: &Path) -> Result<Kind, String> {
    let manifest: toml::Table = read(dir, "Cargo.toml", |t| {
        toml::from_str(t).map_err(|e| e.to_string())
    })?;
    let lib = manifest.get("lib").and_then(|l| l.get("name"));
    let name = lib
        .or_else(|| manifest.get("package").and_then(|p| p.get("name")))
        .and_then(|n| n.as_str())
        .ok_or_else(|| format!("{}: no [package] name", dir.join("Cargo.toml").display()))?;
    let file = format!(
        "target/wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    );
    let build = "cargo build --release --target wasm32-wasip2";
    Ok((Some(file.into()), words(build)))
}

/// A JavaScript project: the `-o` (or `--out`) of its `build` script, run by `npm run build`.
fn npm_project(dir: &Path) -> Result<Kind, String> {
    let manifest: serde_json::Value = read(dir, "package.json", |t| {
        serde_json::from_str(t).map_err(|e| e.to_string())
    })?;
    let script = manifest["scripts"]["build"].as_str().unwrap_or_default();
    let out = (script.split_whitespace())
        .skip_while(|a| !matches!(*a, "-o" | "--out"))
        .nth(1);
    Ok((out.map(PathBuf::from), words("npm run build")))
}

/// A Python project: `<name>.wasm`, built by componentize-py from `app.py` and `wit/`.
fn python_project(dir: &Path) -> Result<Kind, String> {
    let manifest: toml::Table = read(dir, "pyproject.toml", |t| {
        toml::from_str(t).map_err(|e| e.to_string())
    })?;
    let name = manifest
        .get("project")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| {
            format!(
                "{}: no [project] name",
                dir.join("pyproject.toml").display()
            )
        })?;
    let out = format!("{name}.wasm");
    let build = format!("componentize-py -d wit -w provider componentize app -o {out}");
    Ok((Some(out.into()), words(&build)))
}

/// Reads and parses `dir/file`; the error names the file and what is wrong with it.
fn read<T>(
    dir: &Path,
    file: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, String> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn words(command: &str) -> Vec<String> {
    command.split_whitespace().map(str::to_string).collect()
}

/// What `dev` does besides watching the plugin file.
#[derive(Clone, Debug)]
pub struct DevOptions {
    /// How the checks run (the fixtures, the limits, the compile cache shared with the host).
    pub check: CheckOptions,
    /// Run the project's build command when a source file changes.
    pub build: bool,
    /// How often the files are looked at.
    pub every: Duration,
}

/// A file's size, modification time and inode: a build in progress changes them, a rename
/// over the file changes the inode.
type Stamp = (u64, Option<SystemTime>, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    Some((meta.len(), meta.modified().ok(), meta.ino()))
}

/// Notices changes that have held still for one look: [`Settle::settled`] answers a value
/// once it is the same as at the previous look and differs from the one last handled.
#[derive(Debug, Default)]
struct Settle<T> {
    last_seen: Option<T>,
    handled: Option<T>,
}

impl<T: PartialEq + Clone> Settle<T> {
    fn settled(&mut self, now: Option<T>) -> Option<T> {
        let still = now.is_some() && now == self.last_seen && now != self.handled;
        self.last_seen = now.clone();
        if still {
            self.handled = now.clone();
            return now;
        }
        None
    }
}

/// Watches the project until the task is dropped: loads the plugin file now if it is there,
/// then each new build of it; with `build`, rebuilds on source changes. Everything it says is
/// printed for the vendor at the terminal.
pub async fn run(state: AppState, project: Project, options: DevOptions) {
    let mut plugin = Settle::default();
    let mut sources = Settle::default();
    // The first look counts as settled: what is there at the start is loaded (or built) at once.
    plugin.last_seen = stamp(&project.wasm);
    if options.build {
        sources.handled = Some(source_stamps(&project));
        sources.last_seen = sources.handled.clone();
        build(&project).await;
    } else if plugin.last_seen.is_none() {
        let how = match project.build.is_empty() {
            true => String::new(),
            false => format!(" (build the project: {})", project.build.join(" ")),
        };
        println!("Waiting for {}{how}", project.wasm.display());
    }
    let mut served = None;
    let mut ticker = tokio::time::interval(options.every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if plugin.settled(stamp(&project.wasm)).is_some() {
            reload(&state, &project.wasm, &options.check, &mut served).await;
        }
        if options.build && sources.settled(Some(source_stamps(&project))).is_some() {
            build(&project).await;
        }
        ticker.tick().await;
    }
}

/// The version `dev` serves: its provider id and digest.
#[derive(Debug)]
struct Served {
    id: String,
    digest: String,
}

/// Checks the plugin file, prints the report, and swaps it in when the host admits it (as an
/// upload would be: a binary that does not load is refused, the served version stays). A
/// build that describes another provider id replaces the one served before.
async fn reload(
    state: &AppState,
    path: &Path,
    options: &CheckOptions,
    served: &mut Option<Served>,
) {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return println!("cannot read {}: {e}", path.display()),
    };
    let digest = hex::encode(Sha256::digest(&bytes));
    if served.as_ref().is_some_and(|s| s.digest == digest) {
        return println!("{} rebuilt, unchanged", path.display());
    }
    println!("\n{} changed: checking", path.display());
    let report = check::check_binary(&bytes, options).await;
    println!("{report}");
    let keeps = match served {
        Some(_) => "the previous version keeps serving",
        None => "nothing is served yet",
    };
    let id = match state
        .plugins
        .prepare(&bytes, path.display().to_string())
        .await
    {
        Ok(plugin) => plugin.info.id,
        Err(e) => return println!("refused: {e}; {keeps}"),
    };
    let swap =
        match crate::plugin_registry::install(state, "dev", &id, &bytes, None, true, || {}).await {
            Ok(swap) => swap,
            Err(e) => return println!("refused: {e}; {keeps}"),
        };
    let plugin = &swap.plugin.info;
    let failed = match report.failures().count() {
        0 => String::new(),
        n => format!(", with {n} failed checks"),
    };
    println!(
        "serving {} {} ({}{failed})",
        plugin.id, plugin.version, plugin.name
    );
    let before = served.replace(Served { id, digest });
    if let Some(before) = before.filter(|b| b.id != plugin.id)
        && let Ok(Some(_)) = state.plugins.unload(&before.id, &state.plugins_dir).await
    {
        println!("{} is no longer served", before.id);
    }
}

/// Runs the project's build command in its directory, its output going to the terminal.
async fn build(project: &Project) {
    let Some((program, args)) = project.build.split_first() else {
        return;
    };
    println!("\nbuilding: {}", project.build.join(" "));
    let status = tokio::process::Command::new(program)
        .args(args)
        .current_dir(&project.dir)
        .kill_on_drop(true)
        .status()
        .await;
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => println!("build failed ({status}): the served version stays"),
        Err(e) => println!("cannot run {program}: {e}"),
    }
}

/// The stamps of the project's source files: everything but build output, dependencies,
/// hidden files and `.wasm` files.
fn source_stamps(project: &Project) -> BTreeMap<PathBuf, Stamp> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![project.dir.clone()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let skipped = name.starts_with('.')
                || ["target", "node_modules", "__pycache__"].contains(&name.as_ref())
                || path.extension().is_some_and(|x| x == "wasm");
            if skipped {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if let Some(stamp) = stamp(&path) {
                found.insert(path, stamp);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_project_kind_names_its_build_output() {
        let dir = tempfile::tempdir().unwrap();
        let at = |file: &str, text: &str| {
            let project = dir.path().join(file.replace('.', "-"));
            std::fs::create_dir_all(&project).unwrap();
            std::fs::write(project.join(file), text).unwrap();
            Project::find(&project, None).map(|p| {
                let wasm = p.wasm.strip_prefix(&project).unwrap().to_path_buf();
                (wasm, p.build.join(" "))
            })
        };
        let cargo = at("Cargo.toml", "[package]\nname = \"acme-plugin\"\n").unwrap();
        assert_eq!(
            cargo,
            (
                "target/wasm32-wasip2/release/acme_plugin.wasm".into(),
                "cargo build --release --target wasm32-wasip2".into()
            )
        );
        let npm = r#"{"scripts": {"build": "componentize-js app.js -o out/acme.wasm"}}"#;
        let npm = at("package.json", npm).unwrap();
        assert_eq!(npm, ("out/acme.wasm".into(), "npm run build".into()));
        let py = at("pyproject.toml", "[project]\nname = \"acme\"\n").unwrap();
        assert_eq!(py.0, PathBuf::from("acme.wasm"));
        let err = at("package.json", r#"{"scripts": {"build": "tsc"}}"#).unwrap_err();
        assert!(err.contains("--wasm"), "{err}");
        let err = at("Cargo.toml", "[package\n").unwrap_err();
        assert!(err.contains("Cargo.toml: "), "{err}");
    }

    #[test]
    fn a_directory_without_a_project_needs_wasm() {
        let dir = tempfile::tempdir().unwrap();
        let err = Project::find(dir.path(), None).unwrap_err();
        assert!(err.contains("--wasm PATH"), "{err}");
        let given = dir.path().join("out.wasm");
        let project = Project::find(dir.path(), Some(&given)).unwrap();
        assert_eq!(project.wasm, given);
    }

    #[test]
    fn a_change_counts_once_it_held_still() {
        let mut settle = Settle::default();
        assert_eq!(settle.settled(Some(1)), None);
        assert_eq!(settle.settled(Some(2)), None, "still changing");
        assert_eq!(settle.settled(Some(2)), Some(2));
        assert_eq!(settle.settled(Some(2)), None, "handled");
        assert_eq!(settle.settled(None), None);
    }
}
