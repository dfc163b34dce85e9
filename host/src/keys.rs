//! The master key against the database: which key opens this store, its first creation, and
//! crash-safe rotation. Sealing itself is `crypto`'s.
//!
//! The database keeps a key check (a known value sealed under the master key, see
//! `MasterKey::key_check`). [`unlock`] refuses to start with a key that does not open it, and
//! never creates a new key for a database that already holds a check or sealed credentials:
//! a wrong or lost key is found at start-up, naming its source, not as a 500 later.
//!
//! [`rotate`] moves through states a crash can interrupt at any point, each of which [`unlock`]
//! recognises and finishes or undoes:
//!
//! 1. the new key is written and synced to a side file, `<key file>.next`;
//! 2. one write transaction re-seals every credential and the key check under the new key;
//! 3. the side file is renamed over the key file.
//!
//! A side file whose key opens the check is a rotation that committed (step 3 is redone); one
//! whose key does not is a rotation that did not (the side file is removed).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::crypto::{self, MASTER_KEY_ENV, MasterKey};
use crate::store::{KEY_CHECK, KEY_CHECK_ID, Read, SECRETS, Store, StoreError};

/// Test-only: `rotate-key` kills its own process with SIGKILL right after the named step,
/// `staged` (1) or `committed` (2), as a crash there would. Read by [`rotate`] only.
pub const ROTATE_ABORT_ENV: &str = "INTEGRATION_TEST_ROTATE_ABORT_AFTER";

/// Where the master key comes from, for messages.
enum Source<'a> {
    Env,
    File(&'a Path),
}

impl std::fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Env => write!(f, "the master key in {MASTER_KEY_ENV}"),
            Source::File(path) => write!(f, "the master key file {}", path.display()),
        }
    }
}

/// The side file a rotation writes its new key to before committing.
pub fn next_key_file(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

/// The master key of `store`: `INTEGRATION_MASTER_KEY` if set, else `key_file`, after finishing
/// or undoing an interrupted rotation. Fails, naming the key's source, if the key does not open
/// the store's key check (or, in a store from before key checks, its credentials). Creates a
/// key file (mode 0600) only when neither is set and the store holds no sealed credentials;
/// records the check when missing.
pub async fn unlock(store: &Store, key_file: &Path) -> anyhow::Result<MasterKey> {
    let check = key_check(store).await?;
    recover(key_file, check.as_deref())?;
    let (key, source) = match std::env::var(MASTER_KEY_ENV) {
        Ok(text) => (
            crypto::decode_key(&text).map_err(|e| anyhow::anyhow!("{MASTER_KEY_ENV}: {e}"))?,
            Source::Env,
        ),
        Err(_) if key_file.exists() => (crypto::read_key_file(key_file)?, Source::File(key_file)),
        Err(_) => return create(store, key_file).await,
    };
    match check {
        Some(check) if key.matches(&check) => Ok(key),
        Some(_) => Err(wrong_key(&source, key_file)),
        None => {
            adopt(store, &key).await.map_err(|e| match e {
                Adopt::Wrong => wrong_key(&source, key_file),
                Adopt::Store(e) => e.into(),
            })?;
            Ok(key)
        }
    }
}

/// Re-seals every credential under a new key, crash-safely (see the module docs); returns how
/// many sources were re-sealed. The new key ends up in `key_file`.
pub async fn rotate(store: &Store, key_file: &Path) -> anyhow::Result<usize> {
    let old = unlock(store, key_file).await?;
    let (new, bytes) = MasterKey::generate();
    let next = next_key_file(key_file);
    crypto::write_key_file(&next, &bytes)
        .context("the new key could not be written; nothing was changed")?;
    abort_after("staged");
    let count = match crate::store::rotate_secrets(store, old, new).await {
        Ok(count) => count,
        Err(e) => {
            // The key check says whether the transaction committed, and so which key stays;
            // if the store cannot tell now, the next start decides the same way.
            if let Ok(check) = key_check(store).await {
                let _ = recover(key_file, check.as_deref());
            }
            return Err(e);
        }
    };
    abort_after("committed");
    install(&next, key_file)?;
    Ok(count)
}

/// Finishes (the side file's key opens `check`) or undoes an interrupted rotation.
fn recover(key_file: &Path, check: Option<&[u8]>) -> anyhow::Result<()> {
    let next = next_key_file(key_file);
    if !next.exists() {
        return Ok(());
    }
    let staged = crypto::read_key_file(&next)?;
    if check.is_some_and(|check| staged.matches(check)) {
        install(&next, key_file)?;
        tracing::warn!(path = %key_file.display(), "finished an interrupted key rotation: the new key is now in the key file");
    } else {
        std::fs::remove_file(&next).with_context(|| format!("cannot remove {}", next.display()))?;
        crypto::sync_parent(&next)?;
        tracing::warn!(path = %next.display(), "removed the new key of a key rotation that did not commit: the old key stays");
    }
    Ok(())
}

/// Step 3 of a rotation: the side file becomes the key file, durably.
fn install(next: &Path, key_file: &Path) -> anyhow::Result<()> {
    std::fs::rename(next, key_file).with_context(|| {
        format!(
            "the credentials are sealed under the new key in {}, but it could not be renamed to \
             {}: rename it by hand",
            next.display(),
            key_file.display()
        )
    })?;
    crypto::sync_parent(key_file)
}

/// A first start: a new key file and its check, unless the store holds sealed credentials.
async fn create(store: &Store, key_file: &Path) -> anyhow::Result<MasterKey> {
    let secrets = sealed_count(store).await?;
    if secrets > 0 {
        anyhow::bail!(
            "the master key file {} is missing, but the database holds credentials sealed under \
             a master key ({secrets} sources): restore the key file or set {MASTER_KEY_ENV}. No \
             new key is created, as it would leave those credentials unreadable",
            key_file.display()
        );
    }
    let (key, bytes) = MasterKey::generate();
    crypto::write_key_file(key_file, &bytes)?;
    tracing::info!(path = %key_file.display(), "created a new master key file");
    let check = key.key_check();
    store
        .write(move |w| w.put(KEY_CHECK, KEY_CHECK_ID, &check))
        .await?;
    Ok(key)
}

enum Adopt {
    Wrong,
    Store(StoreError),
}

/// A store without a key check (new, or from before checks): records `key`'s check if every
/// sealed credential opens with it.
async fn adopt(store: &Store, key: &MasterKey) -> Result<(), Adopt> {
    let key = key.clone();
    store
        .write(move |w| {
            let sealed: Vec<(String, Vec<u8>)> = w.all(SECRETS)?;
            if sealed.iter().any(|(id, blob)| key.open(id, blob).is_err()) {
                return Err(Adopt::Wrong);
            }
            Ok(w.put(KEY_CHECK, KEY_CHECK_ID, &key.key_check())?)
        })
        .await
}

impl From<StoreError> for Adopt {
    fn from(e: StoreError) -> Adopt {
        Adopt::Store(e)
    }
}

fn wrong_key(source: &Source<'_>, key_file: &Path) -> anyhow::Error {
    let hint = match source {
        Source::Env => format!(
            " (after a rotate-key, the new key is in {}: put it in {MASTER_KEY_ENV})",
            key_file.display()
        ),
        Source::File(_) => String::new(),
    };
    anyhow::anyhow!(
        "{source} is not the key this database's credentials are sealed with{hint}. The service \
         will not start with a wrong key: restore the right one"
    )
}

async fn key_check(store: &Store) -> Result<Option<Vec<u8>>, StoreError> {
    store.read(|r| r.get(KEY_CHECK, KEY_CHECK_ID)).await
}

async fn sealed_count(store: &Store) -> Result<usize, StoreError> {
    store
        .read(|r| r.all::<Vec<u8>>(SECRETS).map(|all| all.len()))
        .await
}

/// Logs a warning if `path` can be read by its group or by others.
pub fn warn_if_exposed(path: &Path, what: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the {what} can be read by other users: chmod 600 it"
            );
        }
    }
}

/// The test-only crash point of [`ROTATE_ABORT_ENV`].
fn abort_after(step: &str) {
    if std::env::var(ROTATE_ABORT_ENV).is_ok_and(|s| s == step) {
        eprintln!("{ROTATE_ABORT_ENV}={step}: killing the process");
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status();
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A store from before key checks: credentials sealed, no check.
    async fn legacy_store(dir: &Path, key: &MasterKey) -> Store {
        let store = Store::open(&dir.join("t.redb")).unwrap();
        let secrets = BTreeMap::from([("api-token".to_string(), "s3cret".to_string())]);
        let sealed = key.seal("src_1", &secrets);
        store
            .write(move |w| w.put(SECRETS, "src_1", &sealed))
            .await
            .unwrap();
        store
    }

    #[tokio::test]
    async fn a_store_without_a_key_check_adopts_the_key_its_credentials_open_with() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("master.key");
        let (key, bytes) = MasterKey::generate();
        let store = legacy_store(dir.path(), &key).await;

        let (_, wrong) = MasterKey::generate();
        crypto::write_key_file(&key_file, &wrong).unwrap();
        let err = unlock(&store, &key_file).await.unwrap_err().to_string();
        assert!(err.contains("is not the key"), "{err}");
        assert_eq!(key_check(&store).await.unwrap(), None, "nothing recorded");

        crypto::write_key_file(&key_file, &bytes).unwrap();
        unlock(&store, &key_file).await.unwrap();
        let check = key_check(&store)
            .await
            .unwrap()
            .expect("the check is recorded");
        assert!(key.matches(&check));
    }

    #[tokio::test]
    async fn a_new_store_gets_a_new_key_and_its_check() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("master.key");
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let key = unlock(&store, &key_file).await.unwrap();
        assert!(key.matches(&key_check(&store).await.unwrap().unwrap()));
        assert!(
            crypto::read_key_file(&key_file)
                .unwrap()
                .matches(&key.key_check())
        );
    }

    #[tokio::test]
    async fn a_rotation_that_fails_to_commit_keeps_the_old_key_and_no_side_file() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("master.key");
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        unlock(&store, &key_file).await.unwrap();
        let before = std::fs::read(&key_file).unwrap();
        // A credential that does not open under the key: re-sealing it fails.
        let (stranger, _) = MasterKey::generate();
        let sealed = stranger.seal("src_1", &BTreeMap::new());
        store
            .write(move |w| w.put(SECRETS, "src_1", &sealed))
            .await
            .unwrap();
        let err = rotate(&store, &key_file).await.unwrap_err();
        assert!(format!("{err:#}").contains("src_1"), "{err:#}");
        assert_eq!(std::fs::read(&key_file).unwrap(), before);
        assert!(!next_key_file(&key_file).exists());
        unlock(&store, &key_file).await.unwrap();
    }
}
