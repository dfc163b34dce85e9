//! The plugin binaries the plugin modules' own tests load (built by `scripts/build-plugins.sh`),
//! and the source their offline calls use.

use super::SourceConfig;

/// A plugin binary by its path under `target/`, e.g. `test-plugins/hotswap.wasm`.
pub(super) fn built(path: &str) -> Vec<u8> {
    let path = format!("{}/../target/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (run scripts/build-plugins.sh)"))
}

/// The `hotswap` test plugin.
pub(super) fn hotswap() -> Vec<u8> {
    built("test-plugins/hotswap.wasm")
}

/// A source of the `hotswap` plugin, for its offline calls (nothing listens at its URL).
pub(super) fn hotswap_source() -> SourceConfig {
    SourceConfig {
        provider: "hotswap".into(),
        base_url: "http://127.0.0.1:1".into(),
        auth_type: "none".into(),
        ..Default::default()
    }
}

/// `bytes` with every `from` replaced by `to`, of the same length (a test plugin's string
/// patched in its binary, which stays valid).
pub(super) fn patched(mut bytes: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at: Vec<usize> = (bytes.windows(from.len()).enumerate())
        .filter_map(|(i, w)| (w == from).then_some(i))
        .collect();
    assert!(!at.is_empty());
    for i in at {
        bytes[i..i + to.len()].copy_from_slice(to);
    }
    bytes
}
