//! `integration-host new-plugin`: a ready provider project in any directory, from the
//! template embedded in the binary (`docs/plugin-template`, or the Python or JavaScript
//! example), with the provider id and name replaced and a README saying how to build and check
//! it.

use std::path::{Path, PathBuf};

/// The languages a project can be made in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, with the SDK (`docs/plugin-template`).
    Rust,
    /// Python, built with componentize-py (`examples/redmine-py`, against the contract 1.0).
    Python,
    /// JavaScript, built with componentize-js (`examples/redmine-js`, against the contract 1.0).
    Js,
}

/// The componentize-js version a JavaScript project pins: the one `scripts/build-plugins.sh`
/// builds the example with.
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";

/// The template's files, as `(path in the project, text)`.
const RUST_FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../docs/plugin-template/Cargo.toml"),
    ),
    (
        "Cargo.lock",
        include_str!("../../docs/plugin-template/Cargo.lock"),
    ),
    (
        "src/lib.rs",
        include_str!("../../docs/plugin-template/src/lib.rs"),
    ),
    (
        ".cargo/config.toml",
        include_str!("../../docs/plugin-template/.cargo/config.toml"),
    ),
    (
        "fixtures.json",
        include_str!("../../docs/plugin-template/fixtures.json"),
    ),
    (
        ".gitignore",
        include_str!("../../docs/plugin-template/.gitignore"),
    ),
];

/// The frozen 1.0 contract the Python and JavaScript projects build against.
const CONTRACT_1_0_FILES: &[(&str, &str)] = &[
    (
        "wit/world.wit",
        include_str!("../../plugins/sdk/wit/provider/v1.0/world.wit"),
    ),
    (
        "wit/types.wit",
        include_str!("../../plugins/sdk/wit/provider/v1.0/types.wit"),
    ),
    (
        "wit/host.wit",
        include_str!("../../plugins/sdk/wit/provider/v1.0/host.wit"),
    ),
];

/// The Python example's files (and [`CONTRACT_1_0_FILES`]).
const PYTHON_FILES: &[(&str, &str)] = &[
    ("app.py", include_str!("../../examples/redmine-py/app.py")),
    (
        ".gitignore",
        include_str!("../../examples/redmine-py/.gitignore"),
    ),
];

/// The JavaScript example's files (and [`CONTRACT_1_0_FILES`]; package.json and the README are
/// written by [`package_json`] and [`readme`]).
const JS_FILES: &[(&str, &str)] = &[
    ("app.js", include_str!("../../examples/redmine-js/app.js")),
    (
        "fixtures.json",
        include_str!("../../examples/redmine-js/fixtures.json"),
    ),
    (".gitignore", "node_modules/\n*.wasm\n"),
];

/// The SDK dependency line of the template, replaced in a new project.
const SDK_DEPENDENCY: &str =
    r#"testorchestrator-provider-sdk = { version = "0.1.0", path = "../../plugins/sdk" }"#;

/// Checks a provider id: kebab-case (lowercase letters and digits, words joined by single
/// hyphens, starting with a letter), at most 64 characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let words_ok = name.split('-').all(|word| {
        !word.is_empty()
            && word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    let starts_ok = name.starts_with(|c: char| c.is_ascii_lowercase());
    if !(words_ok && starts_ok) || name.len() > 64 {
        return Err(format!(
            "{name:?} is not a provider id: use kebab-case, lowercase letters and digits in \
             words joined by hyphens, starting with a letter, at most 64 characters (e.g. \
             `redmine`, `acme-tracker`)"
        ));
    }
    Ok(())
}

/// Writes a new project for provider `name` into `dir` (created; refused if it exists and is
/// not empty). `sdk` is this repository's SDK, when there is one, used as the dependency's
/// path besides its version. Returns the files written.
pub fn create(
    name: &str,
    lang: Lang,
    dir: &Path,
    sdk: Option<&Path>,
) -> Result<Vec<PathBuf>, String> {
    check_name(name)?;
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(format!(
            "{} exists and is not empty: choose a new or empty directory (--dir)",
            dir.display()
        ));
    }
    let mut files: Vec<(String, String)> = match lang {
        Lang::Rust => RUST_FILES
            .iter()
            .map(|(path, text)| (path.to_string(), rust_file(path, text, name, sdk)))
            .collect(),
        Lang::Python => PYTHON_FILES
            .iter()
            .chain(CONTRACT_1_0_FILES)
            .map(|(path, text)| (path.to_string(), python_file(text, name)))
            .chain([("pyproject.toml".into(), pyproject(name))])
            .collect(),
        Lang::Js => js_files(name),
    };
    files.push(("README.md".into(), readme(name, lang)));
    let mut written = Vec::new();
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// One template file with the provider's id, name and crate name put in.
fn rust_file(path: &str, text: &str, name: &str, sdk: Option<&Path>) -> String {
    let text = text
        .replace("my-tracker-plugin", &format!("{name}-plugin"))
        .replace("\"acme-tracker\"", &format!("{name:?}"))
        .replace("\"Acme Tracker\"", &format!("{:?}", title(name)));
    if path != "Cargo.toml" {
        return text;
    }
    let dependency = match sdk {
        Some(sdk) => format!(
            "testorchestrator-provider-sdk = {{ version = \"0.1.0\", path = {:?} }}",
            sdk.display().to_string()
        ),
        None => r#"testorchestrator-provider-sdk = "0.1.0""#.to_string(),
    };
    text.replace(SDK_DEPENDENCY, &dependency)
}

/// One Python example file with the provider's id and name put in.
fn python_file(text: &str, name: &str) -> String {
    text.replace("id=\"redmine\"", &format!("id={name:?}"))
        .replace("name=\"Redmine\"", &format!("name={:?}", title(name)))
}

/// A Python project's `pyproject.toml`: its name, which names the built `NAME.wasm` (what
/// `integration-host dev` watches).
fn pyproject(name: &str) -> String {
    format!(
        "# Build: componentize-py -d wit -w provider componentize app -o {name}.wasm\n\
         [project]\nname = {name:?}\nversion = \"0.1.0\"\n"
    )
}

/// The JavaScript example's files with the provider's id and name put in, and its
/// `package.json`.
fn js_files(name: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = JS_FILES
        .iter()
        .chain(CONTRACT_1_0_FILES)
        .map(|(path, text)| {
            let text = text
                .replace("id: 'redmine'", &format!("id: {name:?}"))
                .replace("name: 'Redmine'", &format!("name: {:?}", title(name)));
            (path.to_string(), text)
        })
        .collect();
    files.push(("package.json".into(), package_json(name)));
    files
}

/// A JavaScript project's `package.json`: componentize-js pinned, and `npm run build` writing
/// `NAME.wasm` without the `http` and `fetch-event` WASI features (the host grants no
/// `wasi:http`: a plugin reaches the network only through the contract's `http` import).
fn package_json(name: &str) -> String {
    format!(
        r#"{{
  "name": "{name}",
  "version": "0.1.0",
  "private": true,
  "type": "module",
  "scripts": {{
    "build": "componentize-js app.js --wit wit --world-name provider --disable http --disable fetch-event -o {name}.wasm"
  }},
  "devDependencies": {{
    "@bytecodealliance/componentize-js": "{COMPONENTIZE_JS_VERSION}"
  }}
}}
"#
    )
}

/// `acme-tracker` -> `Acme Tracker`.
fn title(name: &str) -> String {
    name.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The project's README: how to build and check it.
fn readme(name: &str, lang: Lang) -> String {
    let (intro, build, wasm, flags) = match lang {
        Lang::Rust => (
            "Every `TODO` in `src/lib.rs` marks a tracker-specific fact.",
            "Build (needs `rustup target add wasm32-wasip2`):\n\n```sh\n\
             cargo build --release --target wasm32-wasip2\n```"
                .to_string(),
            format!(
                "target/wasm32-wasip2/release/{}_plugin.wasm",
                name.replace('-', "_")
            ),
            " --fixtures fixtures.json",
        ),
        Lang::Python => (
            "`app.py` starts as the Redmine example: change the requests and the answers' \
             shapes to your tracker's. `wit/` is the contract (1.0) it is built against.",
            format!(
                "Build (needs `pip install componentize-py==0.25.1`):\n\n```sh\n\
                 componentize-py -d wit -w provider componentize app -o {name}.wasm\n```"
            ),
            format!("{name}.wasm"),
            " --max-plugin-bytes 67108864",
        ),
        Lang::Js => (
            "`app.js` starts as the Redmine example: change the requests and the answers' \
             shapes to your tracker's, and `fixtures.json` to its recorded answers. `wit/` is \
             the contract (1.0) it is built against.",
            "Build (needs Node.js 20 or newer and npm):\n\n```sh\n\
             npm install\nnpm run build\n```"
                .to_string(),
            format!("{name}.wasm"),
            " --fixtures fixtures.json",
        ),
    };
    format!(
        "# {title} provider plugin\n\n\
         A provider plugin for integration sources. {intro}\n\n{build}\n\n\
         Check it in the service's sandbox:\n\n\
         ```sh\n\
         integration-host check {wasm}{flags}\n\
         ```\n\n\
         While you work, `integration-host dev .` checks every new build the same way and \
         serves it in a local host with the admin page, to try it there (`--build` also \
         rebuilds when you save a source file).\n\n\
         Then upload it: `PUT /api/v1/plugins/{name}` with the `.wasm` file \
         (`Content-Type: application/wasm`).\n",
        title = title(name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_kebab_case() {
        for good in ["redmine", "acme-tracker", "you-track2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Redmine",
            "acme_tracker",
            "-acme",
            "acme-",
            "a--b",
            "2fa",
            "a b",
        ] {
            let err = check_name(bad).unwrap_err();
            assert!(err.contains("kebab-case"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_python_project_gets_its_id_name_and_contract() {
        let dir = tempfile::tempdir().unwrap();
        create("you-track", Lang::Python, dir.path(), None).unwrap();
        let app = std::fs::read_to_string(dir.path().join("app.py")).unwrap();
        assert!(app.contains("id=\"you-track\"") && app.contains("name=\"You Track\""));
        assert!(dir.path().join("wit/world.wit").is_file());
        let readme = std::fs::read_to_string(dir.path().join("README.md")).unwrap();
        assert!(readme.contains("componentize-py -d wit"), "{readme}");
    }

    #[test]
    fn a_js_project_gets_its_id_name_contract_and_pinned_build() {
        let dir = tempfile::tempdir().unwrap();
        create("you-track", Lang::Js, dir.path(), None).unwrap();
        let app = std::fs::read_to_string(dir.path().join("app.js")).unwrap();
        assert!(app.contains("id: \"you-track\"") && app.contains("name: \"You Track\""));
        assert!(dir.path().join("wit/world.wit").is_file());
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("package.json")).unwrap(),
        )
        .unwrap();
        let build = manifest["scripts"]["build"].as_str().unwrap();
        assert!(
            build.contains("--disable http --disable fetch-event -o you-track.wasm"),
            "{build}"
        );
        let pinned = &manifest["devDependencies"]["@bytecodealliance/componentize-js"];
        assert_eq!(pinned, COMPONENTIZE_JS_VERSION);
        // The version the repository's own example is built with.
        let script = include_str!("../../scripts/build-plugins.sh");
        assert!(
            script.contains(&format!(
                "COMPONENTIZE_JS_VERSION={COMPONENTIZE_JS_VERSION}\n"
            )),
            "scripts/build-plugins.sh pins another componentize-js"
        );
        let readme = std::fs::read_to_string(dir.path().join("README.md")).unwrap();
        assert!(readme.contains("npm run build"), "{readme}");
    }

    #[test]
    fn dev_finds_the_plugin_file_each_project_builds() {
        let dir = tempfile::tempdir().unwrap();
        for (lang, wasm) in [
            (
                Lang::Rust,
                "target/wasm32-wasip2/release/you_track_plugin.wasm",
            ),
            (Lang::Python, "you-track.wasm"),
            (Lang::Js, "you-track.wasm"),
        ] {
            let project = dir.path().join(format!("{lang:?}"));
            create("you-track", lang, &project, None).unwrap();
            let found = crate::dev::Project::find(&project, None).unwrap();
            assert_eq!(found.wasm, project.join(wasm), "{lang:?}");
            let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
            assert!(readme.contains(wasm), "{lang:?}: {readme}");
        }
    }

    #[test]
    fn a_non_empty_directory_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let err = create("redmine", Lang::Rust, dir.path(), None).unwrap_err();
        assert!(err.contains("not empty"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_id_name_and_sdk_are_put_in() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("p");
        create("you-track", Lang::Rust, &project, None).unwrap();
        let lib = std::fs::read_to_string(project.join("src/lib.rs")).unwrap();
        assert!(lib.contains("id: \"you-track\".into()") && lib.contains("\"You Track\""));
        let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("name = \"you-track-plugin\""),
            "{manifest}"
        );
        assert!(
            manifest.contains("testorchestrator-provider-sdk = \"0.1.0\""),
            "{manifest}"
        );
        let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
        assert!(readme.contains("cargo build --release --target wasm32-wasip2"));
    }
}
