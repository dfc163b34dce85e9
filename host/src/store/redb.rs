//! The embedded engine: one redb file. The default, and the only one that needs no server.
//!
//! Writes are serialised by redb itself (one write transaction at a time); a read is a
//! snapshot. Every page's checksum is verified when an existing file is opened.

use std::path::Path;
use std::sync::OnceLock;

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};

use super::{SCHEMA_VERSION, StoreError, Table};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

/// The redb definition of a record table.
fn def(table: Table) -> TableDefinition<'static, &'static str, &'static [u8]> {
    TableDefinition::new(table.name())
}

/// Opens or creates the database file, creating every table and recording the schema version
/// on first use; refuses a file written by a newer build.
pub(super) fn open(path: &Path) -> Result<Database, StoreError> {
    let db = open_checked(path)?;
    let tx = db.begin_write()?;
    {
        let mut meta = tx.open_table(META)?;
        let found = meta.get("schema_version")?.map(|v| v.value());
        match found {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::TooNew {
                    found: v,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(_) => {}
            None => {
                meta.insert("schema_version", SCHEMA_VERSION)?;
            }
        }
        for table in super::ALL_TABLES {
            tx.open_table(def(table))?;
        }
        tx.open_table(AUDIT)?;
    }
    tx.commit()?;
    Ok(db)
}

/// The schema version recorded in the file.
pub(super) fn schema_version(db: &Database) -> Result<u64, StoreError> {
    let tx = db.begin_read()?;
    let meta = tx.open_table(META)?;
    Ok(meta.get("schema_version")?.map_or(0, |v| v.value()))
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
        Err(panic) => Err(damaged(super::panic_message(&*panic))),
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
                    super::panic_message(&*panic)
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

/// A redb transaction: a snapshot to read, or the one write transaction.
pub(super) enum Tx {
    /// A read snapshot.
    Read(ReadTransaction),
    /// The write transaction.
    Write(Box<WriteTransaction>),
}

/// Runs `$body` with `$t` bound to the open table `$def` of either kind of transaction.
macro_rules! with_table {
    ($tx:expr, $def:expr, |$t:ident| $body:expr) => {
        match $tx {
            Tx::Read(tx) => {
                let $t = tx.open_table($def)?;
                $body
            }
            Tx::Write(tx) => {
                let $t = tx.open_table($def)?;
                $body
            }
        }
    };
}

impl Tx {
    /// Begins a read snapshot.
    pub(super) fn read(db: &Database) -> Result<Tx, StoreError> {
        Ok(Tx::Read(db.begin_read()?))
    }

    /// Begins the write transaction (waits for the one in progress).
    pub(super) fn write(db: &Database) -> Result<Tx, StoreError> {
        Ok(Tx::Write(Box::new(db.begin_write()?)))
    }

    /// Commits a write transaction (durably); a read snapshot just ends.
    pub(super) fn commit(self) -> Result<(), StoreError> {
        if let Tx::Write(tx) = self {
            tx.commit()?;
        }
        Ok(())
    }

    /// One record's bytes.
    pub(super) fn get(
        &self,
        damage: &OnceLock<String>,
        table: Table,
        id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        guarded(damage, table.name(), id, || {
            with_table!(self, def(table), |t| Ok(t
                .get(id)?
                .map(|v| v.value().to_vec())))
        })
    }

    /// Every record's bytes, in id order.
    pub(super) fn all(
        &self,
        damage: &OnceLock<String>,
        table: Table,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        with_table!(self, def(table), |t| all_in(&t, damage, table))
    }

    /// Audit events below `before`, newest first, at most `limit`.
    pub(super) fn audit_page(
        &self,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        with_table!(self, AUDIT, |t| {
            let mut out = Vec::new();
            for entry in t.range(..before)?.rev().take(limit) {
                let (k, v) = entry?;
                out.push((k.value(), v.value().to_vec()));
            }
            Ok(out)
        })
    }

    fn writing(&mut self) -> &mut WriteTransaction {
        match self {
            Tx::Write(tx) => tx,
            Tx::Read(_) => unreachable!("a Writer holds a write transaction"),
        }
    }

    /// Inserts or replaces a record.
    pub(super) fn put(&mut self, table: Table, id: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.writing().open_table(def(table))?.insert(id, bytes)?;
        Ok(())
    }

    /// Inserts the records whose id is not taken; returns the (id, bytes) it stored.
    pub(super) fn insert_new(
        &mut self,
        table: Table,
        records: &[(String, Vec<u8>)],
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut t = self.writing().open_table(def(table))?;
        let mut stored = Vec::new();
        for (id, bytes) in records {
            if t.get(id.as_str())?.is_none() {
                t.insert(id.as_str(), bytes.as_slice())?;
                stored.push((id.clone(), bytes.clone()));
            }
        }
        Ok(stored)
    }

    /// Removes a record; true if it existed.
    pub(super) fn delete(&mut self, table: Table, id: &str) -> Result<bool, StoreError> {
        Ok(self.writing().open_table(def(table))?.remove(id)?.is_some())
    }

    /// Appends an audit event under `seq`, or under the next sequence number; returns it.
    pub(super) fn audit(&mut self, seq: Option<u64>, bytes: &[u8]) -> Result<u64, StoreError> {
        let mut t = self.writing().open_table(AUDIT)?;
        let seq = match seq {
            Some(seq) => seq,
            None => t.last()?.map_or(1, |(k, _)| k.value() + 1),
        };
        t.insert(seq, bytes)?;
        Ok(seq)
    }
}

/// Reads a whole table; a damaged key is named by the one before it.
fn all_in(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    damage: &OnceLock<String>,
    table: Table,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut entries = t.iter()?;
    loop {
        let at = out.last().map_or("(the first key)".to_string(), |(id, _)| {
            format!("(the key after {id:?})")
        });
        let next = guarded(damage, table.name(), &at, || {
            let Some(entry) = entries.next() else {
                return Ok(None);
            };
            let (k, v) = entry?;
            Ok(Some((k.value().to_string(), v.value().to_vec())))
        })?;
        match next {
            Some(pair) => out.push(pair),
            None => return Ok(out),
        }
    }
}
