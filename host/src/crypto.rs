//! Credentials at rest: AES-256-GCM with a random nonce per write and the source id as
//! associated data (so a sealed blob copied to another source does not open). The master key
//! comes from `INTEGRATION_MASTER_KEY` (base64 of 32 bytes) or a key file created with mode
//! 0600 on first run. Nothing here logs or formats a secret.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

/// The environment variable that may hold the master key.
pub const MASTER_KEY_ENV: &str = "INTEGRATION_MASTER_KEY";

/// The 256-bit key that seals every source's credentials.
#[derive(Clone)]
pub struct MasterKey(Aes256Gcm);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// A sealed secret set could not be opened (wrong key, or tampered with).
#[derive(Debug, thiserror::Error)]
#[error("credentials could not be decrypted (wrong master key or tampered record)")]
pub struct OpenError;

impl MasterKey {
    /// A key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> MasterKey {
        MasterKey(Aes256Gcm::new_from_slice(bytes).expect("32-byte key"))
    }

    /// A new random key and its bytes.
    pub fn generate() -> (MasterKey, [u8; 32]) {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        (MasterKey::from_bytes(&bytes), bytes)
    }

    /// The key from the environment if set, else from `path`, creating that file (mode 0600)
    /// with a new random key if it does not exist. For tests and tools on a store of their own:
    /// the service uses `keys::unlock`, which also checks the key against the database.
    pub fn load_or_create(path: &Path) -> anyhow::Result<MasterKey> {
        if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
            return decode_key(&text).map_err(|e| anyhow::anyhow!("{MASTER_KEY_ENV}: {e}"));
        }
        match std::fs::read_to_string(path) {
            Ok(text) => decode_key(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (key, bytes) = MasterKey::generate();
                write_key_file(path, &bytes)?;
                tracing::info!(path = %path.display(), "created a new master key file");
                Ok(key)
            }
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
    }

    /// Seals a map of secret field values for `source_id`: nonce (12 bytes) || ciphertext.
    pub fn seal(&self, source_id: &str, secrets: &BTreeMap<String, String>) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let plaintext = serde_json::to_vec(secrets).expect("a string map serializes");
        let ciphertext = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &plaintext,
                    aad: source_id.as_bytes(),
                },
            )
            .expect("AES-GCM encryption does not fail for small inputs");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Opens what [`MasterKey::seal`] sealed for the same `source_id`.
    pub fn open(
        &self,
        source_id: &str,
        sealed: &[u8],
    ) -> Result<BTreeMap<String, String>, OpenError> {
        if sealed.len() < 12 {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = sealed.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| OpenError)?;
        let plaintext = self
            .0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: source_id.as_bytes(),
                },
            )
            .map_err(|_| OpenError)?;
        serde_json::from_slice(&plaintext).map_err(|_| OpenError)
    }
}

/// Decodes a key as written in a key file or `INTEGRATION_MASTER_KEY` (base64 of 32 bytes).
pub fn decode_key(text: &str) -> Result<MasterKey, String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| "not valid base64".to_string())?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "a master key is 32 bytes (44 base64 characters)".to_string())?;
    Ok(MasterKey::from_bytes(&bytes))
}

/// Writes a key file readable by the owner only, atomically and durably: a fresh temporary file
/// beside it (a stale one is removed first, so its mode cannot leak into the key), created
/// exclusively with mode 0600, synced, renamed over `path`, and the directory synced.
pub fn write_key_file(path: &Path, bytes: &[u8; 32]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    match std::fs::remove_file(&tmp) {
        Ok(()) => tracing::info!(path = %tmp.display(), "removed a stale temporary key file"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot remove the stale {}: {e}", tmp.display()),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(STANDARD.encode(bytes).as_bytes())?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        anyhow::bail!("cannot write the key file {}: {e}", tmp.display());
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    sync_parent(path)
}

/// Makes a rename or removal in `path`'s directory durable.
pub fn sync_parent(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync the directory {}", dir.display()))
}

/// Reads a key file written by [`write_key_file`]; errors name the file.
pub fn read_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    decode_key(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The associated data of the key check, a value no source id can take (they start `src_`).
const KEY_CHECK_AAD: &str = "key-check";

impl MasterKey {
    /// A sealed known value the database keeps to recognise its key: it opens with this key
    /// only, and tells nothing about the key.
    pub fn key_check(&self) -> Vec<u8> {
        let known = BTreeMap::from([("check".to_string(), "integration-sources".to_string())]);
        self.seal(KEY_CHECK_AAD, &known)
    }

    /// True if `check` was made by [`MasterKey::key_check`] with this key.
    pub fn matches(&self, check: &[u8]) -> bool {
        self.open(KEY_CHECK_AAD, check).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_the_same_key_and_source() {
        let (key, _) = MasterKey::generate();
        let secrets = BTreeMap::from([("api-token".to_string(), "s3cret-value".to_string())]);
        let sealed = key.seal("src-1", &secrets);
        assert!(!sealed.windows(12).any(|w| w == b"s3cret-value"));
        assert_eq!(key.open("src-1", &sealed).unwrap(), secrets);
        assert!(
            key.open("src-2", &sealed).is_err(),
            "bound to the source id"
        );
        let (other, _) = MasterKey::generate();
        assert!(other.open("src-1", &sealed).is_err());
        assert_ne!(
            key.seal("src-1", &secrets),
            sealed,
            "a fresh nonce per write"
        );
    }

    #[test]
    fn a_key_check_matches_its_key_only() {
        let (key, _) = MasterKey::generate();
        let (other, _) = MasterKey::generate();
        assert!(key.matches(&key.key_check()));
        assert!(!other.matches(&key.key_check()));
    }

    /// A stale `master.tmp` with mode 0644 used to be reopened (keeping its mode) and renamed
    /// into place, leaving a key readable by everyone.
    #[cfg(unix)]
    #[test]
    fn a_stale_world_readable_temp_file_does_not_make_a_readable_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let tmp = dir.path().join("master.tmp");
        std::fs::write(&tmp, "stale").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (_, bytes) = MasterKey::generate();
        write_key_file(&path, &bytes).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!tmp.exists());
        read_key_file(&path).unwrap();
    }
}
