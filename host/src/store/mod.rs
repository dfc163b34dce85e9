//! The only code that knows the storage engine: redb (an embedded file, the default) or
//! PostgreSQL (a server, for several replicas on one database), behind one interface.
//!
//! Every table maps a string id to a JSON record (see [`records`]), except `audit` (sequence
//! number -> event). Callers get a transaction through [`Store::read`] or [`Store::write`]: a
//! write closure runs inside one write transaction that commits only if the closure returns
//! `Ok`, so every API mutation is all or nothing, validation reads included; writes are
//! serialised (redb's single writer; PostgreSQL's write lock, see [`postgres`]). A read is a
//! consistent snapshot. Both run on the blocking pool.

pub mod migrate;
pub mod postgres;
pub mod records;
mod redb;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use postgres::DatabaseUrl;

/// The schema version of the redb file this build writes. Bump it with a migration in
/// `redb::open`. (PostgreSQL's schema has its own versioned migrations, see [`postgres`].)
pub const SCHEMA_VERSION: u64 = 1;

/// A table of JSON records keyed by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table(&'static str);

impl Table {
    /// The table's name (the same in every engine).
    pub fn name(self) -> &'static str {
        self.0
    }
}

/// Sources (non-secret configuration), by source id.
pub const SOURCES: Table = Table("sources");
/// Sealed credentials, by source id (see `crypto`).
pub const SECRETS: Table = Table("secrets");
/// Projects, by project id.
pub const PROJECTS: Table = Table("projects");
/// API tokens, by the hex sha-256 of the token.
pub const TOKENS: Table = Table("tokens");
/// Links between test objects and issues, by link id.
pub const LINKS: Table = Table("links");

/// Link ids by [`records::LinkRecord::identity`], to refuse duplicates.
pub const LINK_IDENTITIES: Table = Table("link_identities");

/// The master key's check (see `crypto::MasterKey::key_check`), under [`KEY_CHECK_ID`].
pub const KEY_CHECK: Table = Table("key_check");
/// The one id in [`KEY_CHECK`].
pub const KEY_CHECK_ID: &str = "current";

/// Settings admins change at run time, by name (e.g. `plugins`: the plugin size limits).
pub const SETTINGS: Table = Table("settings");

/// Each source's health as every replica's calls left it, by source id (see
/// `crate::health_store`).
pub const HEALTH: Table = Table("health");

/// Webhook delivery ids seen, by source id and delivery id, with until when they are
/// remembered (see `crate::webhooks::deliveries`).
pub const DELIVERIES: Table = Table("deliveries");

/// Every record table (the audit log aside).
pub const ALL_TABLES: [Table; 10] = [
    SOURCES,
    SECRETS,
    PROJECTS,
    TOKENS,
    LINKS,
    LINK_IDENTITIES,
    KEY_CHECK,
    SETTINGS,
    HEALTH,
    DELIVERIES,
];

/// Storage failures. Only `Corrupt`, `Db` and `Postgres` are unexpected; they become a 500
/// upstream.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed (I/O, corruption detected by redb, ...).
    #[error("database error: {0}")]
    Db(#[from] ::redb::Error),
    /// PostgreSQL failed or cannot be reached (the text never holds the URL's password).
    #[error("database error: {0}")]
    Postgres(String),
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
    /// The database was written by a newer build.
    #[error(
        "the database has schema version {found}; this build supports up to {supported}: run \
         the newer build (or restore a backup made for this one)"
    )]
    TooNew {
        /// Version in the database.
        found: u64,
        /// The newest version this build knows.
        supported: u64,
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
    ::redb::TransactionError,
    ::redb::TableError,
    ::redb::StorageError,
    ::redb::CommitError,
    ::redb::DatabaseError
);

/// The database handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    engine: Engine,
    /// The first damaged record a read met, for `/readyz` (see [`Store::damage`]).
    damage: Arc<OnceLock<String>>,
    /// This process's name among the replicas on the database (random), its leases' holder.
    replica: Arc<str>,
    /// Write transactions this process committed (see [`Store::write_commits`]).
    commits: Arc<std::sync::atomic::AtomicU64>,
}

/// The storage engines.
#[derive(Clone)]
enum Engine {
    Redb(Arc<::redb::Database>),
    Postgres(postgres::Pg),
}

impl Store {
    /// Opens or creates the redb database file, creating every table and recording the schema
    /// version on first use. An existing file is checked whole first (every page's checksum,
    /// redb's integrity check), so a damaged or empty file is refused here, with
    /// [`StoreError::Damaged`], instead of failing or panicking in a request later. A new file
    /// is created with mode 0600.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::on(Engine::Redb(Arc::new(redb::open(path)?))))
    }

    /// Connects to PostgreSQL with at most `pool_size` connections, and applies the schema
    /// migrations the database lacks; refuses one whose schema is newer than this build
    /// ([`StoreError::TooNew`]).
    pub async fn connect(url: &DatabaseUrl, pool_size: usize) -> Result<Store, StoreError> {
        Ok(Store::on(Engine::Postgres(
            postgres::Pg::connect(url, pool_size).await?,
        )))
    }

    fn on(engine: Engine) -> Store {
        Store {
            engine,
            damage: Arc::default(),
            replica: hex::encode(rand::random::<[u8; 6]>()).into(),
            commits: Arc::default(),
        }
    }

    /// True when other processes may share the database (PostgreSQL): what replicas must
    /// agree on goes through it then ([`Store::take_lease`], [`Store::share_pauses`]).
    pub fn is_shared(&self) -> bool {
        matches!(self.engine, Engine::Postgres(_))
    }

    /// This process's name among the replicas on the database (random at start).
    pub fn replica_id(&self) -> &str {
        &self.replica
    }

    /// Takes or renews the lease `name` (e.g. "sync of a source") for `hold`: true if this
    /// replica holds it now, false while another replica's lease runs. A replica that dies
    /// loses its leases when they expire. On redb (one process owns the file) every lease is
    /// granted.
    pub async fn take_lease(&self, name: &str, hold: Duration) -> Result<bool, StoreError> {
        self.take_lease_as(name, &self.replica, hold).await
    }

    /// [`Store::take_lease`] for `holder` (e.g. one operation of this replica, so that two
    /// operations of the same replica exclude each other too).
    pub async fn take_lease_as(
        &self,
        name: &str,
        holder: &str,
        hold: Duration,
    ) -> Result<bool, StoreError> {
        match &self.engine {
            Engine::Redb(_) => Ok(true),
            Engine::Postgres(pg) => {
                let hold_ms = hold.as_millis().min(i64::MAX as u128) as i64;
                pg.take_lease(name, holder, hold_ms).await
            }
        }
    }

    /// Gives up lease `name` if `holder` holds it, so another may take it at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Redb(_) => Ok(()),
            Engine::Postgres(pg) => pg.release_lease(name, holder).await,
        }
    }

    /// Rate-limit pauses across replicas: publishes this replica's (source id, paused until in
    /// milliseconds since the epoch) and returns every pause any replica published that is
    /// still running. On redb (one process) it returns `local`.
    pub async fn share_pauses(
        &self,
        local: Vec<(String, records::Millis)>,
    ) -> Result<Vec<(String, records::Millis)>, StoreError> {
        match &self.engine {
            Engine::Redb(_) => Ok(local),
            Engine::Postgres(pg) => pg.share_pauses(&local, records::now()).await,
        }
    }

    /// The engine's name, for `/readyz` and logs: `redb` or `postgres`.
    pub fn engine(&self) -> &'static str {
        match self.engine {
            Engine::Redb(_) => "redb",
            Engine::Postgres(_) => "postgres",
        }
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
        let damage = self.damage.clone();
        let begin = self.begin(Begin::Read).await?;
        blocking(move || {
            let reader = Reader(Txn {
                tx: begin()?,
                damage,
            });
            let out = f(&reader)?;
            reader.0.tx.commit()?;
            Ok(out)
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
        self.write_as(Begin::Write, f).await
    }

    /// How many write transactions this process committed since the store was opened (what
    /// group commit saves is visible in it).
    pub fn write_commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Like [`Store::write`], for a closure whose only writes are new records added with
    /// [`Writer::insert_new`] (and records under ids no one else can know yet, such as new
    /// random ids): on PostgreSQL such writes run beside each other, on every replica (the
    /// write lock taken shared; a conflicting `insert_new` waits for the other's end), but
    /// never beside any other write, so what they read of other tables holds until they
    /// commit. On redb, the same as [`Store::write`]. (Link creation's group commit.)
    pub async fn write_additions<R, E>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.write_as(Begin::Additions, f).await
    }

    /// [`Store::write`] and [`Store::write_additions`]: `f` in a transaction begun as `kind`,
    /// committed if it returns `Ok`.
    async fn write_as<R, E>(
        &self,
        kind: Begin,
        f: impl FnOnce(&mut Writer) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (damage, commits) = (self.damage.clone(), self.commits.clone());
        let begin = self.begin(kind).await?;
        blocking(move || {
            let mut writer = Writer(Txn {
                tx: begin()?,
                damage,
            });
            let out = f(&mut writer)?;
            writer.0.tx.commit()?;
            commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(out)
        })
        .await
    }

    /// What begins a transaction on the blocking pool (a pooled connection is taken here,
    /// asynchronously).
    async fn begin(
        &self,
        kind: Begin,
    ) -> Result<impl FnOnce() -> Result<Tx, StoreError> + Send + 'static, StoreError> {
        let engine = match &self.engine {
            Engine::Redb(db) => Ok(db.clone()),
            Engine::Postgres(pg) => Err(pg.client().await?),
        };
        Ok(move || match (engine, kind) {
            (Ok(db), Begin::Read) => redb::Tx::read(&db).map(Tx::Redb),
            (Ok(db), Begin::Write | Begin::Additions) => redb::Tx::write(&db).map(Tx::Redb),
            (Err(client), Begin::Read) => postgres::Tx::read(client).map(Tx::Postgres),
            (Err(client), Begin::Write) => postgres::Tx::write(client).map(Tx::Postgres),
            (Err(client), Begin::Additions) => postgres::Tx::write_shared(client).map(Tx::Postgres),
        })
    }

    /// Makes an uploaded plugin binary (sha-256 `digest`), with its minisign `signature` if it
    /// has one, the version provider `id` serves on every replica (see `crate::replicas`). Nothing to do on redb: the upload is in the
    /// plugins directory of the one process.
    pub async fn publish_plugin(
        &self,
        id: &str,
        digest: &str,
        wasm: &[u8],
        signature: Option<&str>,
    ) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Redb(_) => Ok(()),
            Engine::Postgres(pg) => pg.publish_plugin(id, digest, wasm, signature, false).await,
        }
    }

    /// Makes every replica remove version `digest` of provider `id` (see `crate::replicas`).
    /// Nothing to do on redb.
    pub async fn publish_removal(&self, id: &str, digest: &str) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Redb(_) => Ok(()),
            Engine::Postgres(pg) => pg.publish_plugin(id, digest, &[], None, true).await,
        }
    }

    /// Notifications of plugins uploaded to any replica (PostgreSQL's LISTEN); `None` on
    /// redb, or where the engine has no LISTEN (the replicas poll then).
    pub async fn listen_uploads(&self) -> Option<postgres::Uploads> {
        match &self.engine {
            Engine::Redb(_) => None,
            Engine::Postgres(pg) => match pg.listen_uploads().await {
                Ok(uploads) => Some(uploads),
                Err(e) => {
                    tracing::warn!(error = %e, "no LISTEN for plugin uploads: polling for them");
                    None
                }
            },
        }
    }

    /// (provider id, digest, removed) of every plugin uploaded to (or removed from) a replica;
    /// none on redb.
    pub async fn plugin_digests(&self) -> Result<Vec<(String, String, bool)>, StoreError> {
        match &self.engine {
            Engine::Redb(_) => Ok(Vec::new()),
            Engine::Postgres(pg) => pg.plugin_digests().await,
        }
    }

    /// The uploaded binary of provider `id` and its signature, if it is still the one with
    /// `digest`.
    pub async fn plugin_binary(
        &self,
        id: &str,
        digest: &str,
    ) -> Result<Option<(Vec<u8>, Option<String>)>, StoreError> {
        match &self.engine {
            Engine::Redb(_) => Ok(None),
            Engine::Postgres(pg) => pg.plugin_binary(id, digest).await,
        }
    }

    /// The schema version recorded in the database.
    pub async fn schema_version(&self) -> Result<u64, StoreError> {
        match &self.engine {
            Engine::Redb(db) => redb::schema_version(db),
            Engine::Postgres(pg) => pg.schema_version().await,
        }
    }
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unreadable data".to_string())
}

async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The kinds of transaction.
#[derive(Clone, Copy)]
enum Begin {
    Read,
    Write,
    Additions,
}

/// A transaction of either engine.
enum Tx {
    Redb(redb::Tx),
    Postgres(postgres::Tx),
}

impl Tx {
    fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Redb(tx) => tx.commit(),
            Tx::Postgres(tx) => tx.commit(),
        }
    }
}

/// A transaction and where to note the first damaged record it meets.
struct Txn {
    tx: Tx,
    damage: Arc<OnceLock<String>>,
}

impl Txn {
    /// Decodes a record; a record that does not decode is noted as damage.
    fn decode<T: DeserializeOwned>(
        &self,
        table: &str,
        id: &str,
        bytes: &[u8],
    ) -> Result<T, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| {
            let e = StoreError::Corrupt {
                table: table.to_string(),
                id: id.to_string(),
                error: e.to_string(),
            };
            let _ = self.damage.set(e.to_string());
            e
        })
    }

    fn get_bytes(&self, table: Table, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.tx {
            Tx::Redb(tx) => tx.get(&self.damage, table, id),
            Tx::Postgres(tx) => tx.get(table, id),
        }
    }

    fn all_bytes(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        match &self.tx {
            Tx::Redb(tx) => tx.all(&self.damage, table),
            Tx::Postgres(tx) => tx.all(table),
        }
    }

    fn audit_bytes(&self, before: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        match &self.tx {
            Tx::Redb(tx) => tx.audit_page(before, limit),
            Tx::Postgres(tx) => tx.audit_page(before, limit),
        }
    }
}

/// Reads within a snapshot.
pub struct Reader(Txn);

/// Reads and writes within one write transaction.
pub struct Writer(Txn);

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
                let bytes = self.0.get_bytes(table, id)?;
                bytes
                    .map(|b| self.0.decode(table.name(), id, &b))
                    .transpose()
            }

            fn all<T: DeserializeOwned>(
                &self,
                table: Table,
            ) -> Result<Vec<(String, T)>, StoreError> {
                let all = self.0.all_bytes(table)?;
                all.into_iter()
                    .map(|(id, b)| {
                        let record = self.0.decode(table.name(), &id, &b)?;
                        Ok((id, record))
                    })
                    .collect()
            }

            fn audit_page(
                &self,
                before: u64,
                limit: usize,
            ) -> Result<Vec<(u64, serde_json::Value)>, StoreError> {
                let page = self.0.audit_bytes(before, limit)?;
                page.into_iter()
                    .map(|(seq, b)| Ok((seq, self.0.decode("audit", &seq.to_string(), &b)?)))
                    .collect()
            }
        }
    };
}
impl_read!(Reader);
impl_read!(Writer);

impl Reader {
    /// Every record of a table as stored (bytes), in id order: for copying between engines.
    pub fn all_raw(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.0.all_bytes(table)
    }

    /// Every audit event as stored, oldest first: for copying between engines.
    pub fn audit_raw(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut all = self.0.audit_bytes(u64::MAX, usize::MAX)?;
        all.reverse();
        Ok(all)
    }
}

impl Writer {
    /// Inserts or replaces a record.
    pub fn put<T: Serialize>(
        &mut self,
        table: Table,
        id: &str,
        record: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(record).expect("records serialize");
        self.put_raw(table, id, &bytes)
    }

    /// Inserts or replaces a record given as stored (bytes): for copying between engines.
    pub fn put_raw(&mut self, table: Table, id: &str, bytes: &[u8]) -> Result<(), StoreError> {
        match &mut self.0.tx {
            Tx::Redb(tx) => tx.put(table, id, bytes),
            Tx::Postgres(tx) => tx.put(table, id, bytes),
        }
    }

    /// Inserts or replaces records (as stored, bytes), in one statement on PostgreSQL.
    pub fn put_all(
        &mut self,
        table: Table,
        records: &[(String, Vec<u8>)],
    ) -> Result<(), StoreError> {
        match &mut self.0.tx {
            Tx::Redb(tx) => records.iter().try_for_each(|(id, b)| tx.put(table, id, b)),
            Tx::Postgres(tx) => tx.put_all(table, records),
        }
    }

    /// Adds the records (as stored, bytes) whose id is not taken, in one statement on
    /// PostgreSQL; returns the (id, bytes) it stored. Of records sharing an id, the
    /// first is stored. Under [`Store::write_additions`], two transactions adding one id store
    /// it once: the later waits for the earlier to end.
    pub fn insert_new(
        &mut self,
        table: Table,
        records: &[(String, Vec<u8>)],
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        match &mut self.0.tx {
            Tx::Redb(tx) => tx.insert_new(table, records),
            Tx::Postgres(tx) => tx.insert_new(table, records),
        }
    }

    /// Removes a record; true if it existed.
    pub fn delete(&mut self, table: Table, id: &str) -> Result<bool, StoreError> {
        match &mut self.0.tx {
            Tx::Redb(tx) => tx.delete(table, id),
            Tx::Postgres(tx) => tx.delete(table, id),
        }
    }

    /// Appends an audit event; returns its sequence number.
    pub fn audit<T: Serialize>(&mut self, event: &T) -> Result<u64, StoreError> {
        let bytes = serde_json::to_vec(event).expect("events serialize");
        self.audit_bytes(None, &bytes)
    }

    /// Stores an audit event as stored elsewhere, under its sequence number: for copying
    /// between engines.
    pub fn audit_raw(&mut self, seq: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.audit_bytes(Some(seq), bytes).map(drop)
    }

    fn audit_bytes(&mut self, seq: Option<u64>, bytes: &[u8]) -> Result<u64, StoreError> {
        match &mut self.0.tx {
            Tx::Redb(tx) => tx.audit(seq, bytes),
            Tx::Postgres(tx) => tx.audit(seq, bytes),
        }
    }

    /// Every audit event as stored, oldest first.
    pub fn audit_all_raw(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut all = self.0.audit_bytes(u64::MAX, usize::MAX)?;
        all.reverse();
        Ok(all)
    }

    /// Every record of a table as stored (bytes), in id order.
    pub fn all_raw(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.0.all_bytes(table)
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
                Err(StoreError::TooNew {
                    found: 99,
                    supported: 1,
                })
            })
            .await;
        assert!(failed.is_err());
        drop(store);
        let store = Store::open(&path).unwrap();
        let all: Vec<(String, serde_json::Value)> = store.read(|r| r.all(PROJECTS)).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, "p1");
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
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
