//! Signed plugins: the operator's trusted vendor keys and the check of a plugin's detached
//! minisign signature, before anything compiles it.
//!
//! A vendor signs the `.wasm` with `minisign -S -m PLUGIN.wasm` (prehashed: the signature is
//! over the file's BLAKE2b-512 digest), which writes `PLUGIN.wasm.minisig`. The operator
//! trusts the vendor's public key (`--trusted-plugin-keys`: a file of keys or a directory of
//! `.pub` files) and may require a signature on every plugin (`--require-signed-plugins`).
//! A file in the plugins directory brings its signature beside it ([`signature_path`]); an
//! upload in a header. With keys configured, a signature that is there is always checked
//! (a wrong one is refused even when signatures are not required: the file is not what the
//! vendor shipped); without keys, signatures are not looked at.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine as _;
use minisign_verify::{PublicKey, Signature};
use serde::Serialize;

/// The extension a signature file adds to the plugin's file name.
pub const SIGNATURE_EXTENSION: &str = "minisig";

/// Who signed an admitted plugin version, as the listing shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Signer {
    /// The name the operator gave the key (its file name or comment).
    pub key_name: String,
    /// The minisign key id, as minisign prints it (16 hex digits).
    pub key_id: String,
    /// The signature's trusted comment (signed too; minisign puts a timestamp and the file
    /// name there).
    pub trusted_comment: String,
}

/// One vendor key the operator trusts.
#[derive(Clone, Debug)]
pub struct TrustedKey {
    name: String,
    id: String,
    key: PublicKey,
}

impl TrustedKey {
    /// Parses a minisign public key (its base64 line) and gives it `name`.
    pub fn parse(name: &str, base64_key: &str) -> Result<TrustedKey, String> {
        let key = PublicKey::from_base64(base64_key.trim())
            .map_err(|e| format!("not a minisign public key ({e})"))?;
        let id = key_id(base64_key.trim()).ok_or("not a minisign public key")?;
        Ok(TrustedKey {
            name: name.to_string(),
            id,
            key,
        })
    }

    /// The key id, as minisign prints it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The name the operator gave it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What the operator asked for: the keys trusted to sign plugins, and whether every plugin
/// must carry a signature by one of them. The default trusts no key and requires nothing.
#[derive(Clone, Debug, Default)]
pub struct SigningPolicy {
    required: bool,
    keys: Vec<TrustedKey>,
}

/// Why a plugin's signature was refused. The version that was serving keeps serving.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature, and signatures are required.
    #[error(
        "the plugin is not signed, and this service admits only plugins signed by a key it \
         trusts (--require-signed-plugins)"
    )]
    Missing,
    /// The signature is not a minisign signature this host verifies.
    #[error(
        "the signature is not a minisign signature ({0}); use the .minisig file `minisign -S` \
         wrote, unchanged"
    )]
    Malformed(String),
    /// Signed by a key the operator does not trust.
    #[error(
        "the plugin is signed by key {key_id}, which this service does not trust; the operator \
         adds the vendor's public key to --trusted-plugin-keys, or the vendor signs with a \
         trusted key"
    )]
    Untrusted {
        /// The key id the signature names.
        key_id: String,
    },
    /// The signature by a trusted key does not match the bytes.
    #[error(
        "the signature by {key_name} ({key_id}) does not match the plugin's bytes: the file \
         was changed after it was signed, or the signature is another file's; get the \
         matching .minisig from the vendor"
    )]
    Mismatch {
        /// The trusted key's name.
        key_name: String,
        /// Its id.
        key_id: String,
    },
}

impl SignatureError {
    /// A stable kebab-case code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => "signature-required",
            SignatureError::Malformed(_) => "signature-malformed",
            SignatureError::Untrusted { .. } => "signature-untrusted",
            SignatureError::Mismatch { .. } => "signature-mismatch",
        }
    }
}

impl SigningPolicy {
    /// A policy trusting `keys`, requiring a signature when `required`.
    pub fn new(keys: Vec<TrustedKey>, required: bool) -> SigningPolicy {
        SigningPolicy { required, keys }
    }

    /// The operator's policy: the keys in `keys` (a file or a directory of `.pub` files, see
    /// [`read_keys`]), required or not. Requiring signatures without a key is an error saying
    /// what to set.
    pub fn load(keys: Option<&Path>, required: bool) -> anyhow::Result<SigningPolicy> {
        let keys = match keys {
            Some(path) => read_keys(path)?,
            None => Vec::new(),
        };
        if required && keys.is_empty() {
            anyhow::bail!(
                "--require-signed-plugins is on but no key is trusted: set --trusted-plugin-keys \
                 (INTEGRATION_TRUSTED_PLUGIN_KEYS, trusted_plugin_keys in the configuration file) \
                 to the vendors' minisign public keys"
            );
        }
        Ok(SigningPolicy { required, keys })
    }

    /// Whether every plugin must be signed.
    pub fn required(&self) -> bool {
        self.required
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    /// Checks `signature` (the text of a `.minisig` file, if there is one) over `wasm`: who
    /// signed it, `None` for an unsigned plugin this policy admits.
    pub fn check(
        &self,
        wasm: &[u8],
        signature: Option<&str>,
    ) -> Result<Option<Signer>, SignatureError> {
        let Some(text) = signature else {
            return if self.required {
                Err(SignatureError::Missing)
            } else {
                Ok(None)
            };
        };
        if self.keys.is_empty() && !self.required {
            return Ok(None);
        }
        let signature =
            Signature::decode(text).map_err(|e| SignatureError::Malformed(e.to_string()))?;
        let key_id = text
            .lines()
            .nth(1)
            .and_then(key_id)
            .ok_or_else(|| SignatureError::Malformed("no key id".into()))?;
        let Some(key) = self.keys.iter().find(|k| k.id == key_id) else {
            return Err(SignatureError::Untrusted { key_id });
        };
        match key.key.verify(wasm, &signature, false) {
            Ok(()) => Ok(Some(Signer {
                key_name: key.name.clone(),
                key_id,
                trusted_comment: signature.trusted_comment().to_string(),
            })),
            Err(minisign_verify::Error::UnexpectedAlgorithm) => Err(SignatureError::Malformed(
                "a legacy signature over the whole file; sign with a current minisign, whose \
                 -S signs the file's digest"
                    .into(),
            )),
            Err(_) => Err(SignatureError::Mismatch {
                key_name: key.name.clone(),
                key_id,
            }),
        }
    }

    /// Checks the plugin file at `path` (its bytes `wasm`) with the signature beside it
    /// ([`signature_path`]). A refusal says which file to put there.
    pub fn check_file(&self, path: &Path, wasm: &[u8]) -> Result<Option<Signer>, String> {
        let beside = signature_path(path);
        let text = match std::fs::read_to_string(&beside) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read {}: {e}", beside.display())),
        };
        self.check(wasm, text.as_deref()).map_err(|e| match e {
            SignatureError::Missing => {
                format!(
                    "{e}: put its minisign signature beside it as {}",
                    beside.display()
                )
            }
            e => format!("{}: {e}", beside.display()),
        })
    }
}

/// Where the signature of the plugin file `wasm` lives: `NAME.wasm.minisig` beside it.
pub fn signature_path(wasm: &Path) -> PathBuf {
    let mut name = wasm.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(SIGNATURE_EXTENSION);
    wasm.with_file_name(name)
}

/// Reads the trusted keys in `path`: a directory of minisign `.pub` files (each key named by
/// its file name without `.pub`), or one file of keys. In a file, each key is a line holding
/// its base64 (as the second line of a `.pub` file), optionally followed by a name; a key
/// without one is named by the `untrusted comment:` line before it, else by its id. Empty
/// lines and lines starting with `#` are skipped. Errors name the file and the line.
pub fn read_keys(path: &Path) -> anyhow::Result<Vec<TrustedKey>> {
    if !path.is_dir() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the trusted plugin keys {}", path.display()))?;
        return parse_keys(&text, None)
            .with_context(|| format!("trusted plugin keys {}", path.display()));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read the trusted plugin keys {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pub") && p.is_file())
        .collect();
    files.sort();
    let mut keys = Vec::new();
    for file in files {
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read the trusted plugin key {}", file.display()))?;
        let parsed = parse_keys(&text, Some(&name))
            .with_context(|| format!("trusted plugin key {}", file.display()))?;
        keys.extend(parsed);
    }
    Ok(keys)
}

/// Parses the keys of one file (see [`read_keys`]); `name` names every key in it when given.
pub fn parse_keys(text: &str, name: Option<&str>) -> anyhow::Result<Vec<TrustedKey>> {
    let mut keys = Vec::new();
    let mut comment: Option<String> = None;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("untrusted comment:") {
            comment = Some(rest.trim().to_string());
            continue;
        }
        let (key, own_name) = match line.split_once(char::is_whitespace) {
            Some((key, own)) => (key, Some(own.trim())),
            None => (line, None),
        };
        let id = key_id(key).unwrap_or_default();
        let name = own_name
            .or(name)
            .map(str::to_string)
            .or(comment.take())
            .unwrap_or_else(|| id.clone());
        let key = TrustedKey::parse(&name, key)
            .map_err(|e| anyhow::anyhow!("line {}: {e}", number + 1))?;
        keys.push(key);
    }
    Ok(keys)
}

/// The key id in the base64 of a minisign public key or signature line (bytes 2..10, shown
/// as minisign shows it: the little-endian number in upper-case hex).
fn key_id(base64_line: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_line.trim())
        .ok()?;
    let id: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
    Some(format!("{:016X}", u64::from_le_bytes(id)))
}
