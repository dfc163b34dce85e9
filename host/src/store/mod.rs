//! The only code that touches redb.
//!
//! One database file; every table maps a string id to a JSON record (see [`records`]), except
//! `meta` (schema version) and `audit` (sequence number -> event). Callers get a transaction
//! through [`Store::read`] or [`Store::write`]: a write closure runs inside one redb write
//! transaction that commits only if the closure returns `Ok`, so every API mutation is all or
//! nothing, validation reads included. Both run on the blocking pool.

pub mod records;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The schema version this build writes. Bump it with a migration in [`Store::open`].
pub const SCHEMA_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

/// A table of JSON records keyed by id.
#[derive(Clone, Copy)]
pub struct Table(TableDefinition<'static, &'static str, &'static [u8]>);

/// Sources (non-secret configuration), by source id.
pub const SOURCES: Table = Table(TableDefinition::new("sources"));
/// Sealed credentials, by source id (see `crypto`).
pub const SECRETS: Table = Table(TableDefinition::new("secrets"));
/// Projects, by project id.
pub const PROJECTS: Table = Table(TableDefinition::new("projects"));
/// API tokens, by the hex sha-256 of the token.
pub const TOKENS: Table = Table(TableDefinition::new("tokens"));
/// Links between test objects and issues, by link id.
pub const LINKS: Table = Table(TableDefinition::new("links"));

/// Link ids by [`records::LinkRecord::identity`], to refuse duplicates.
pub const LINK_IDENTITIES: Table = Table(TableDefinition::new("link_identities"));

/// The master key's check (see `crypto::MasterKey::key_check`), under [`KEY_CHECK_ID`].
pub const KEY_CHECK: Table = Table(TableDefinition::new("key_check"));
/// The one id in [`KEY_CHECK`].
pub const KEY_CHECK_ID: &str = "current";

/// Settings admins change at run time, by name (e.g. `plugins`: the plugin size limits).
pub const SETTINGS: Table = Table(TableDefinition::new("settings"));

const ALL_TABLES: [Table; 8] = [
    SOURCES,
    SECRETS,
    PROJECTS,
    TOKENS,
    LINKS,
    LINK_IDENTITIES,
    KEY_CHECK,
    SETTINGS,
];

/// Storage failures. Only `Corrupt` and `Db` are unexpected; both become a 500 upstream.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed (I/O, corruption detected by redb, ...).
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
    /// A record did not decode.
    #[error("corrupt record in {table}/{id}: {error}")]
    Corrupt {
        /// Table name.
        table: String,
        /// Record id.
        id: String,
        /// Decode error.
        error: String,
    },
    /// The database file is unusable: damaged, truncated or not a database. Found at open,
    /// when every page's checksum is verified; the service refuses to start on it.
    #[error(
        "the database {path} is damaged: {detail}. The service will not serve from it: restore \
         the file from a backup (or move it away to start with an empty store)"
    )]
    Damaged {
        /// The database file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The file was written by a newer build.
    #[error("the database has schema version {found}; this build supports up to {SCHEMA_VERSION}")]
    TooNew {
        /// Version in the file.
        found: u64,
    },
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.into()) }
        }
    )*};
}
db_err!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError
);

/// The database handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    /// The first damaged record a read met, for `/readyz` (see [`Store::damage`]).
    damage: Arc<OnceLock<String>>,
}

impl Store {
    /// Opens or creates the database file, creating every table and recording the schema
    /// version on first use. An existing file is checked whole first (every page's checksum,
    /// redb's integrity check), so a damaged or empty file is refused here, with
    /// [`StoreError::Damaged`], instead of failing or panicking in a request later. A new file
    /// is created with mode 0600.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = open_checked(path)?;
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta.get("schema_version")?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA_VERSION => return Err(StoreError::TooNew { found: v }),
                Some(_) => {}
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
            }
            for table in ALL_TABLES {
                tx.open_table(table.0)?;
            }
            tx.open_table(AUDIT)?;
        }
        tx.commit()?;
        Ok(Store {
            db: Arc::new(db),
            damage: Arc::default(),
        })
    }

    /// The first damaged record met since the store was opened, if any: the file changed
    /// under the service (the check at open passed), so it should not be trusted until a
    /// restart checks it again.
    pub fn damage(&self) -> Option<&str> {
        self.damage.get().map(String::as_str)
    }

    /// Runs `f` in a read transaction (a consistent snapshot) on the blocking pool.
    pub async fn read<R, E>(
        &self,
        f: impl FnOnce(&Reader) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (db, damage) = (self.db.clone(), self.damage.clone());
        blocking(move || {
            let tx = db.begin_read().map_err(StoreError::from)?;
            f(&Reader { tx, damage })
        })
        .await
    }

    /// Runs `f` in one write transaction on the blocking pool; commits (durably) if `f`
    /// returns `Ok`, aborts otherwise.
    pub async fn write<R, E>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (db, damage) = (self.db.clone(), self.damage.clone());
        blocking(move || {
            let tx = db.begin_write().map_err(StoreError::from)?;
            let mut writer = Writer { tx, damage };
            let out = f(&mut writer)?;
            writer.tx.commit().map_err(StoreError::from)?;
            Ok(out)
        })
        .await
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(META)?;
        Ok(meta.get("schema_version")?.map_or(0, |v| v.value()))
    }
}

/// Opens an existing database with redb's integrity check, or creates a new one (mode 0600).
fn open_checked(path: &Path) -> Result<Database, StoreError> {
    let damaged = |detail: String| StoreError::Damaged {
        path: path.display().to_string(),
        detail,
    };
    let mut builder = Database::builder();
    builder.set_check_integrity_on_open(true);
    let exists = match std::fs::metadata(path) {
        // redb would initialise an empty file as a new database; an empty file where a
        // database was is a truncated one, and starting empty would hide the loss.
        Ok(meta) if meta.len() == 0 => return Err(damaged("the file is empty (0 bytes)".into())),
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(StoreError::Db(redb::StorageError::Io(e).into())),
    };
    if !exists {
        create_private(path).map_err(|e| StoreError::Db(redb::StorageError::Io(e).into()))?;
    }
    // A plain open may panic on a damaged file; the checked one should not, but a panic here
    // must still become a refusal to start, not a crash without a word.
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if exists {
            builder.open(path)
        } else {
            builder.create(path)
        }
    }));
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) if is_damage(&e) => Err(damaged(e.to_string())),
        Ok(Err(e)) => Err(e.into()),
        Err(panic) => Err(damaged(panic_message(&*panic))),
    }
}

/// True for the open errors that mean the file's contents are bad (not, say, a lock).
fn is_damage(e: &redb::DatabaseError) -> bool {
    match e {
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(_)) => true,
        // redb's "not a redb database".
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) => {
            io.kind() == std::io::ErrorKind::InvalidData
        }
        _ => false,
    }
}

/// Creates an empty file readable by the owner only (redb then initialises it).
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unreadable data".to_string())
}

/// Runs a read of `table` that redb may panic in when a record's bytes are damaged (its
/// decoders unwrap), turning the panic into [`StoreError::Corrupt`] naming the table and key.
/// The first damage met is kept in `damage`.
fn guarded<R>(
    damage: &OnceLock<String>,
    table: &str,
    id: &str,
    read: impl FnOnce() -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|panic| {
            Err(StoreError::Corrupt {
                table: table.to_string(),
                id: id.to_string(),
                error: format!(
                    "the stored bytes do not decode ({})",
                    panic_message(&*panic)
                ),
            })
        });
    if let Err(e @ (StoreError::Corrupt { .. } | StoreError::Db(redb::Error::Corrupted(_)))) =
        &result
    {
        let _ = damage.set(e.to_string());
    }
    result
}

async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn decode<T: DeserializeOwned>(table: Table, id: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table: table.0.name().to_string(),
        id: id.to_string(),
        error: e.to_string(),
    })
}

/// Reads within a snapshot.
pub struct Reader {
    tx: redb::ReadTransaction,
    damage: Arc<OnceLock<String>>,
}

/// Reads and writes within one write transaction.
pub struct Writer {
    tx: redb::WriteTransaction,
    damage: Arc<OnceLock<String>>,
}

/// Read access, shared by [`Reader`] and [`Writer`].
pub trait Read {
    /// One record.
    fn get<T: DeserializeOwned>(&self, table: Table, id: &str) -> Result<Option<T>, StoreError>;
    /// Every record of a table, in id order.
    fn all<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<(String, T)>, StoreError>;
    /// Audit events with sequence number below `before` (newest first), at most `limit`.
    fn audit_page(
        &self,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(u64, serde_json::Value)>, StoreError>;
}

macro_rules! impl_read {
    ($t:ty) => {
        impl Read for $t {
            fn get<T: DeserializeOwned>(
                &self,
                table: Table,
                id: &str,
            ) -> Result<Option<T>, StoreError> {
                guarded(&self.damage, table.0.name(), id, || {
                    let t = self.tx.open_table(table.0)?;
                    let value = t.get(id)?;
                    value.map(|v| decode(table, id, v.value())).transpose()
                })
            }

            fn all<T: DeserializeOwned>(
                &self,
                table: Table,
            ) -> Result<Vec<(String, T)>, StoreError> {
                let t = self.tx.open_table(table.0)?;
                let mut out: Vec<(String, T)> = Vec::new();
                let mut entries = t.iter()?;
                loop {
                    // A damaged key is named by the one before it.
                    let at = out.last().map_or("(the first key)".to_string(), |(id, _)| {
                        format!("(the key after {id:?})")
                    });
                    let next = guarded(&self.damage, table.0.name(), &at, || {
                        let Some(entry) = entries.next() else {
                            return Ok(None);
                        };
                        let (k, v) = entry?;
                        let id = k.value().to_string();
                        let record = decode(table, &id, v.value())?;
                        Ok(Some((id, record)))
                    })?;
                    match next {
                        Some(pair) => out.push(pair),
                        None => return Ok(out),
                    }
                }
            }

            fn audit_page(
                &self,
                before: u64,
                limit: usize,
            ) -> Result<Vec<(u64, serde_json::Value)>, StoreError> {
                let t = self.tx.open_table(AUDIT)?;
                let mut out = Vec::new();
                for entry in t.range(..before)?.rev().take(limit) {
                    let (k, v) = entry?;
                    let seq = k.value();
                    let event =
                        serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                            table: "audit".into(),
                            id: seq.to_string(),
                            error: e.to_string(),
                        })?;
                    out.push((seq, event));
                }
                Ok(out)
            }
        }
    };
}
impl_read!(Reader);
impl_read!(Writer);

impl Writer {
    /// Inserts or replaces a record.
    pub fn put<T: Serialize>(
        &mut self,
        table: Table,
        id: &str,
        record: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(record).expect("records serialize");
        self.tx.open_table(table.0)?.insert(id, bytes.as_slice())?;
        Ok(())
    }

    /// Removes a record; true if it existed.
    pub fn delete(&mut self, table: Table, id: &str) -> Result<bool, StoreError> {
        Ok(self.tx.open_table(table.0)?.remove(id)?.is_some())
    }

    /// Appends an audit event; returns its sequence number.
    pub fn audit<T: Serialize>(&mut self, event: &T) -> Result<u64, StoreError> {
        let mut t = self.tx.open_table(AUDIT)?;
        let next = t.last()?.map_or(1, |(k, _)| k.value() + 1);
        let bytes = serde_json::to_vec(event).expect("events serialize");
        t.insert(next, bytes.as_slice())?;
        Ok(next)
    }
}

/// Re-seals every source's credentials from `old` to `new` and replaces the key check with
/// `new`'s, in one write transaction; returns how many sources were re-sealed. Nothing changes
/// if any of them fails to open.
pub async fn rotate_secrets(
    store: &Store,
    old: crate::crypto::MasterKey,
    new: crate::crypto::MasterKey,
) -> anyhow::Result<usize> {
    store
        .write(move |w| {
            let all: Vec<(String, Vec<u8>)> = w.all(SECRETS)?;
            for (id, sealed) in &all {
                let secrets = old
                    .open(id, sealed)
                    .map_err(|e| anyhow::anyhow!("source {id}: {e}"))?;
                w.put(SECRETS, id, &new.seal(id, &secrets))?;
            }
            w.put(KEY_CHECK, KEY_CHECK_ID, &new.key_check())?;
            Ok::<_, anyhow::Error>(all.len())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_write_leaves_nothing_and_a_reopen_keeps_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let store = Store::open(&path).unwrap();
        store
            .write(|w| w.put(PROJECTS, "p1", &serde_json::json!({"name": "one"})))
            .await
            .unwrap();
        let failed: Result<(), StoreError> = store
            .write(|w| {
                w.put(PROJECTS, "p2", &serde_json::json!({"name": "two"}))?;
                Err(StoreError::TooNew { found: 99 })
            })
            .await;
        assert!(failed.is_err());
        drop(store);
        let store = Store::open(&path).unwrap();
        let all: Vec<(String, serde_json::Value)> = store.read(|r| r.all(PROJECTS)).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, "p1");
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    }

    /// Puts `n` projects whose names contain `needle`, then closes the store.
    async fn stored_with(path: &Path, needle: &str, n: usize) {
        let store = Store::open(path).unwrap();
        let needle = needle.to_string();
        store
            .write(move |w| {
                for i in 0..n {
                    w.put(
                        PROJECTS,
                        &format!("{needle}-{i}"),
                        &serde_json::json!({"name": needle}),
                    )?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
    }

    /// Applies `change` to every place `needle` occurs in the file.
    fn tamper(path: &Path, needle: &[u8], change: impl Fn(&mut [u8])) -> usize {
        let mut bytes = std::fs::read(path).unwrap();
        let mut found = 0;
        let mut i = 0;
        while i + needle.len() <= bytes.len() {
            if &bytes[i..i + needle.len()] == needle {
                change(&mut bytes[i..]);
                found += 1;
                i += needle.len();
            } else {
                i += 1;
            }
        }
        std::fs::write(path, bytes).unwrap();
        found
    }

    #[tokio::test]
    async fn flipped_bytes_are_refused_at_open_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        stored_with(&path, "needle", 40).await;
        let flipped = tamper(&path, b"needle-1", |b| {
            b[..64].iter_mut().for_each(|x| *x ^= 0x5a)
        });
        assert!(flipped > 0);
        match Store::open(&path) {
            Err(e @ StoreError::Damaged { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains("t.redb") && text.contains("restore"),
                    "{text}"
                );
            }
            Err(e) => panic!("not reported as damage: {e}"),
            Ok(_) => panic!("a tampered database opened"),
        }
    }

    #[tokio::test]
    async fn an_empty_file_is_refused_not_taken_for_a_new_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        std::fs::write(&path, b"").unwrap();
        let err = Store::open(&path).err().expect("an empty file opened");
        assert!(err.to_string().contains("empty (0 bytes)"), "{err}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left as found");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_database_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        drop(Store::open(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    /// Bytes damaged after the start-up check (a key no longer UTF-8) made redb's decoder
    /// panic inside a request; now the read fails with an error naming the table and key.
    #[tokio::test]
    async fn a_record_damaged_at_run_time_is_an_error_naming_table_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        stored_with(&path, "needle", 3).await;
        let store = Store::open(&path).unwrap();
        let damaged = tamper(&path, b"needle-1", |b| b[0] = 0xff);
        assert!(damaged > 0);
        let all: Result<Vec<(String, serde_json::Value)>, StoreError> =
            store.read(|r| r.all(PROJECTS)).await;
        match all {
            Err(StoreError::Corrupt { table, id, .. }) => {
                assert_eq!(table, "projects");
                assert!(id.contains("needle-0"), "{id}");
            }
            other => panic!("{other:?}"),
        }
        assert!(store.damage().unwrap().contains("projects"));
    }
}
