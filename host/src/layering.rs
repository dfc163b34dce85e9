//! The layering ARCHITECTURE.md promises, checked on the source: only `api/` knows axum and
//! `ApiError`, only `store/` the storage engine, only `plugin/` wasmtime, and nothing below
//! `api/` reaches into it (`app.rs` re-exports the router, the seam tests drive; `main.rs`,
//! the binary, wires everything).

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// `file:line` of each code line (comments left out) outside `allowed` (paths under
/// `src/`, a trailing `/` for a directory) that contains `needle`.
fn uses_outside(needle: &str, allowed: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for path in sources(&src) {
        let name = path.strip_prefix(&src).expect("under src");
        let name = name.to_string_lossy().replace('\\', "/");
        if ["main.rs", "layering.rs"].contains(&name.as_str())
            || allowed.iter().any(|a| name.starts_with(a))
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a readable source file");
        for (i, line) in text.lines().enumerate() {
            if !line.trim_start().starts_with("//") && line.contains(needle) {
                found.push(format!("src/{name}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn only_api_knows_axum_and_nothing_reaches_into_api() {
    assert_eq!(uses_outside("axum", &["api/"]), Vec::<String>::new());
    assert_eq!(uses_outside("ApiError", &["api/"]), Vec::<String>::new());
    assert_eq!(
        uses_outside("crate::api", &["api/", "app.rs"]),
        Vec::<String>::new()
    );
}

#[test]
fn only_store_knows_the_storage_engine() {
    for engine in ["redb::", "tokio_postgres", "deadpool_postgres", "sqlx"] {
        assert_eq!(uses_outside(engine, &["store/"]), Vec::<String>::new());
    }
}

#[test]
fn only_plugin_knows_wasmtime() {
    assert_eq!(uses_outside("wasmtime", &["plugin/"]), Vec::<String>::new());
}
