//! Moving over: a copy of a whole store (every table, the audit log, sealed credentials as
//! they are) into an empty one, in one write transaction that verifies what it wrote before
//! committing. Behind `integration-host migrate --to postgres://...`.

use sha2::{Digest, Sha256};

use super::{ALL_TABLES, Store, StoreError};

/// A table's records as stored: (id, bytes) in id order.
type Records = Vec<(String, Vec<u8>)>;

/// What a store holds, as stored: each table's records and the audit log (oldest first).
struct Contents {
    tables: Vec<(&'static str, Records)>,
    audit: Vec<(u64, Vec<u8>)>,
}

impl Contents {
    /// A digest of everything, in a fixed order (lengths included, so no two contents share
    /// one by concatenation).
    fn digest(&self) -> String {
        let mut hash = Sha256::new();
        let mut part = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_be_bytes());
            hash.update(bytes);
        };
        for (name, records) in &self.tables {
            part(name.as_bytes());
            for (id, body) in records {
                part(id.as_bytes());
                part(body);
            }
        }
        for (seq, body) in &self.audit {
            part(&seq.to_be_bytes());
            part(body);
        }
        hex::encode(hash.finalize())
    }

    /// Records per table, then `audit`.
    fn counts(&self) -> Vec<(&'static str, usize)> {
        let mut counts: Vec<_> = self.tables.iter().map(|(n, r)| (*n, r.len())).collect();
        counts.push(("audit", self.audit.len()));
        counts
    }
}

/// What [`copy`] copied.
#[derive(Debug)]
pub struct Copied {
    /// Records per table (the audit log as `audit`), as counted in the source and, identical,
    /// in the target.
    pub counts: Vec<(&'static str, usize)>,
    /// The sha-256 of everything copied, the same on both sides.
    pub digest: String,
}

/// Why a copy did not happen; the target is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The target holds data already.
    #[error(
        "the target database is not empty (its {table} table holds {count} records): migrate \
         into a new, empty database"
    )]
    NotEmpty {
        /// A table holding data.
        table: &'static str,
        /// How many records it holds.
        count: usize,
    },
    /// What was written does not read back the same.
    #[error("verification failed: {0}; nothing was committed")]
    Mismatch(String),
    /// Reading or writing failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Copies everything in `from` into `to`, which must be empty, in one transaction of `to`
/// that commits only once the counts and the digest read back from `to` match `from`'s.
pub async fn copy(from: &Store, to: &Store) -> Result<Copied, CopyError> {
    let source = from
        .read(|r| {
            let mut tables = Vec::new();
            for table in ALL_TABLES {
                tables.push((table.name(), r.all_raw(table)?));
            }
            Ok::<_, StoreError>(Contents {
                tables,
                audit: r.audit_raw()?,
            })
        })
        .await?;
    let (counts, digest) = (source.counts(), source.digest());
    let expected = (counts.clone(), digest.clone());
    to.write(move |w| {
        for table in ALL_TABLES {
            let count = w.all_raw(table)?.len();
            if count > 0 {
                return Err(CopyError::NotEmpty {
                    table: table.name(),
                    count,
                });
            }
        }
        let audit = w.audit_all_raw()?.len();
        if audit > 0 {
            return Err(CopyError::NotEmpty {
                table: "audit",
                count: audit,
            });
        }
        for (table, (_, records)) in ALL_TABLES.into_iter().zip(&source.tables) {
            for (id, body) in records {
                w.put_raw(table, id, body)?;
            }
        }
        for (seq, body) in &source.audit {
            w.audit_raw(*seq, body)?;
        }
        let mut tables = Vec::new();
        for table in ALL_TABLES {
            tables.push((table.name(), w.all_raw(table)?));
        }
        let written = Contents {
            tables,
            audit: w.audit_all_raw()?,
        };
        let (counts, digest) = (written.counts(), written.digest());
        if counts != expected.0 {
            return Err(CopyError::Mismatch(format!(
                "counts {counts:?} instead of {:?}",
                expected.0
            )));
        }
        if digest != expected.1 {
            return Err(CopyError::Mismatch(format!(
                "digest {digest} instead of {}",
                expected.1
            )));
        }
        Ok(())
    })
    .await?;
    Ok(Copied { counts, digest })
}
