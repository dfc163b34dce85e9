//! A first look at what a component imports, before it is compiled: an import this host
//! never provides is refused at once, naming the import and the fix, instead of after a
//! compilation that takes a minute for a JavaScript or Python component and then failing
//! with wasmtime's "matching implementation was not found in the linker".
//!
//! The host links the contract's imports (`testorchestrator:provider/http`, `log`) and WASI
//! preview 2 with nothing granted; it never links `wasi:http` (a plugin reaches the network
//! only through the contract's `http` import). componentize-js imports `wasi:http` unless its
//! `http` and `fetch-event` features are disabled.

/// The fix for a component that imports `wasi:http`.
const WASI_HTTP_FIX: &str = "a plugin reaches the network only through the contract's \
     testorchestrator:provider/http import; with componentize-js, build with \
     --disable http --disable fetch-event (jco componentize: the same flags); in other \
     languages, do not use a WASI HTTP client";

/// The names of the component's own imports (not those of components nested in it), or
/// none when it does not parse (compiling it then says why).
pub fn top_level(bytes: &[u8]) -> Vec<String> {
    use wasmparser::{Parser, Payload};
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(Payload::Version { .. }) => depth += 1,
            Ok(Payload::End(_)) => depth = depth.saturating_sub(1),
            Ok(Payload::ComponentImportSection(reader)) if depth == 1 => {
                names.extend(
                    reader
                        .into_iter()
                        .flatten()
                        .map(|i| i.name.name.to_string()),
                );
            }
            Ok(_) => {}
            Err(_) => return Vec::new(),
        }
    }
    names
}

/// Refuses a component that imports what this host never provides, naming it and the fix.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let http: Vec<String> = top_level(bytes)
        .into_iter()
        .filter(|name| name.starts_with("wasi:http/"))
        .collect();
    if http.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the plugin imports {}, which this host does not provide: {WASI_HTTP_FIX}",
        http.join(", ")
    ))
}
