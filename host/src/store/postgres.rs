//! The server engine: PostgreSQL (15 in the tests), for several replicas on one database.
//!
//! A bounded pool of connections (deadpool-postgres over tokio-postgres). The store's closures
//! are synchronous and run on the blocking pool, so each statement here drives the async client
//! with `Handle::block_on`, which the blocking pool allows.
//!
//! Transactions: a write begins with `pg_advisory_xact_lock(WRITE_LOCK)`, so writes are
//! serialised exactly as redb's single writer serialises them, across every replica on the
//! database, and each statement after it (READ COMMITTED) sees every earlier commit: the
//! checks a closure makes (unique names, link identities) stay true until it commits. A read
//! is one `REPEATABLE READ READ ONLY` transaction, a consistent snapshot.
//!
//! Portability: the SQL is plain (tables of `(id text, body bytea)`, `INSERT ... ON CONFLICT`,
//! `max(seq) + 1`), so PostgreSQL-compatible engines (CockroachDB, YugabyteDB) need no other
//! dialect. The PostgreSQL-only pieces are marked *PostgreSQL-only* where they are used: the
//! advisory lock (an engine without it can take a row lock on a one-row table instead) and
//! the `COLLATE "C"` of ids (byte order, as redb's).
//!
//! Records are stored as the same JSON bytes as in redb (`bytea`, not `jsonb`, which would
//! reorder keys and refuse `\u0000`), so a migrated table is byte for byte its source.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio::runtime::Handle;
use tokio_postgres::NoTls;

use super::{StoreError, Table};

/// The advisory lock key every write transaction (and the schema migration) takes first.
const WRITE_LOCK: i64 = 0x696e_7465_6772; // "integr"

/// Versioned schema migrations, applied in order at start-up; the last one is the schema
/// version this build knows. Append, never edit a released one.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        // PostgreSQL-only: COLLATE "C" (byte order of ids, as redb; CockroachDB and YugabyteDB
        // compare strings bytewise by default and accept it too).
        r#"
    CREATE TABLE sources (id text COLLATE "C" PRIMARY KEY, body bytea NOT NULL);
    CREATE TABLE secrets (id text COLLATE "C" PRIMARY KEY, body bytea NOT NULL);
    CREATE TABLE projects (id text COLLATE "C" PRIMARY KEY, body bytea NOT NULL);
    CREATE TABLE tokens (id text COLLATE "C" PRIMARY KEY, body bytea NOT NULL);
    CREATE TABLE links (id text COLLATE "C" PRIMARY KEY, body bytea NOT NULL);
    CREATE TABLE link_identities (id text COLLATE "C" PRIMARY KEY, body bytea NOT NULL);
    CREATE TABLE key_check (id text COLLATE "C" PRIMARY KEY, body bytea NOT NULL);
    CREATE TABLE audit (seq bigint PRIMARY KEY, body bytea NOT NULL);
    "#,
    ),
    (
        2,
        // What replicas coordinate through: who syncs a source until when (the database's
        // clock, in milliseconds, so replicas' clocks do not matter), and rate-limit pauses.
        r#"
    CREATE TABLE leases (name text COLLATE "C" PRIMARY KEY, holder text NOT NULL,
                         expires_at bigint NOT NULL);
    CREATE TABLE pauses (source_id text COLLATE "C" PRIMARY KEY, until_ms bigint NOT NULL);
    "#,
    ),
    (
        3,
        // Uploaded plugin binaries, the version each provider serves, for every replica.
        r#"
    CREATE TABLE plugins (id text COLLATE "C" PRIMARY KEY, digest text NOT NULL,
                          wasm bytea NOT NULL, uploaded_at bigint NOT NULL);
    "#,
    ),
    (
        4,
        // What admins set at run time (plugin size limits), like the other record tables.
        r#"
    CREATE TABLE settings (id text COLLATE "C" PRIMARY KEY, body bytea NOT NULL);
    "#,
    ),
    (
        5,
        // The minisign signature an uploaded plugin came with (null: unsigned), checked again
        // by every replica that installs it.
        r#"
    ALTER TABLE plugins ADD COLUMN signature text;
    "#,
    ),
    (
        6,
        // Each source's health, merged from every replica's calls; webhook delivery ids seen; a
        // removed plugin stays as a row marked `removed` (its digest: the version every replica
        // removes).
        r#"
    CREATE TABLE health (id text COLLATE "C" PRIMARY KEY, body bytea NOT NULL);
    CREATE TABLE deliveries (id text COLLATE "C" PRIMARY KEY, body bytea NOT NULL);
    ALTER TABLE plugins ADD COLUMN removed boolean NOT NULL DEFAULT false;
    "#,
    ),
];

/// The schema version this build knows (the last migration).
pub fn latest_version() -> u64 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v as u64)
}

/// A `postgres://` URL. It may hold a password: `Display` and `Debug` show it redacted, so it
/// can be logged and put in errors; only [`DatabaseUrl::expose`] gives the real text.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL as given, password included: for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The passwords in the URL: its user info's, and any `password` or `sslpassword` query
    /// parameter (libpq's and tokio-postgres's other way of giving one), as written.
    fn passwords(&self) -> Vec<String> {
        let Ok(url) = url::Url::parse(&self.0) else {
            return Vec::new();
        };
        let in_query = (url.query().into_iter())
            .flat_map(|q| q.split('&'))
            .filter_map(password_parameter)
            .map(|(_, value)| value.to_string());
        url.password()
            .map(String::from)
            .into_iter()
            .chain(in_query)
            .filter(|p| !p.is_empty())
            .collect()
    }

    /// `text` with every occurrence of the URL's passwords (as written, and percent-decoded)
    /// replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for raw in self.passwords() {
            let decoded = percent_decode(&raw);
            out = out.replace(&raw, "[redacted]");
            if !decoded.is_empty() {
                out = out.replace(&decoded, "[redacted]");
            }
        }
        out
    }
}

/// A query pair `name=value` that gives a password (`password` or `sslpassword`), as its name
/// and value.
fn password_parameter(pair: &str) -> Option<(&str, &str)> {
    let (name, value) = pair.split_once('=')?;
    let decoded = percent_decode(name);
    (decoded.eq_ignore_ascii_case("password") || decoded.eq_ignore_ascii_case("sslpassword"))
        .then_some((name, value))
}

fn percent_decode(text: &str) -> String {
    form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl DatabaseUrl {
    /// Refuses a URL that is not `postgres://` (the error shows it with its password
    /// redacted).
    pub fn check(&self) -> Result<(), String> {
        if self.0.starts_with("postgres://") || self.0.starts_with("postgresql://") {
            return Ok(());
        }
        Err(format!(
            "the database URL must start with postgres:// (got {self}); without one the \
             service keeps its data in a redb file in the data directory"
        ))
    }
}

/// Takes any text: [`DatabaseUrl::check`] refuses a bad one later, because a parse error
/// here would be shown by the command-line parser with the text as given, password included.
impl FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(DatabaseUrl(text.trim().to_string()))
    }
}

impl<'de> serde::Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let url = DatabaseUrl(String::deserialize(de)?.trim().to_string());
        url.check().map_err(serde::de::Error::custom)?;
        Ok(url)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(_) if self.passwords().is_empty() => f.write_str(&self.0),
            Ok(mut url) => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("[redacted]"));
                }
                if let Some(query) = url.query() {
                    let query: Vec<String> = (query.split('&'))
                        .map(|pair| match password_parameter(pair) {
                            Some((name, _)) => format!("{name}=[redacted]"),
                            None => pair.to_string(),
                        })
                        .collect();
                    url.set_query(Some(&query.join("&")));
                }
                f.write_str(&url.to_string().replace("%5Bredacted%5D", "[redacted]"))
            }
            // Not parseable as a URL: show only the scheme, a password could be anywhere.
            Err(_) => f.write_str("postgres://[unparseable URL]"),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// The connection pool.
#[derive(Clone)]
pub(super) struct Pg {
    pool: Pool,
    url: DatabaseUrl,
    /// For connections outside the pool (LISTEN).
    config: std::sync::Arc<tokio_postgres::Config>,
}

/// The channel `NOTIFY` announces uploaded plugins on (payload: the provider id).
const PLUGINS_CHANNEL: &str = "integration_plugins";

/// Notifications of plugin uploads, on a connection of their own: [`Uploads::next`] answers
/// `None` once that connection is gone (then the replicas fall back on polling alone).
pub struct Uploads {
    _client: tokio_postgres::Client,
    notices: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Uploads {
    /// The provider id of the next upload announced, or `None` when the connection is gone.
    pub async fn next(&mut self) -> Option<String> {
        self.notices.recv().await
    }
}

impl From<tokio_postgres::Error> for StoreError {
    /// The driver's error with its cause ("db error" alone says nothing).
    fn from(e: tokio_postgres::Error) -> Self {
        match std::error::Error::source(&e) {
            Some(cause) => StoreError::Postgres(format!("{e}: {cause}")),
            None => StoreError::Postgres(e.to_string()),
        }
    }
}

impl Pg {
    /// Connects (at most `pool_size` connections at once) and applies the migrations this
    /// database lacks; refuses a database whose schema is newer than this build.
    pub(super) async fn connect(url: &DatabaseUrl, pool_size: usize) -> Result<Pg, StoreError> {
        url.check().map_err(StoreError::Postgres)?;
        let mut config = tokio_postgres::Config::from_str(url.expose()).map_err(|e| {
            StoreError::Postgres(format!(
                "the database URL {url} is not valid: {}",
                url.scrub(&e.to_string())
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("integration-host");
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(15)))
            .build()
            .map_err(|e| StoreError::Postgres(format!("connection pool: {e}")))?;
        let pg = Pg {
            pool,
            url: url.clone(),
            config: std::sync::Arc::new(config),
        };
        let mut client = pg.client().await?;
        migrate(&mut client).await?;
        Ok(pg)
    }

    /// A connection from the pool; the error names the database (password redacted).
    pub(super) async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| {
            StoreError::Postgres(format!(
                "cannot connect to the database {}: {}",
                self.url,
                self.url.scrub(&e.to_string())
            ))
        })
    }

    /// The schema version recorded in the database.
    pub(super) async fn schema_version(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT max(version) FROM schema_migrations", &[])
            .await?;
        Ok(row.get::<_, Option<i64>>(0).unwrap_or(0) as u64)
    }
}

/// The database's clock in milliseconds since the epoch (portable SQL).
const DB_NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

impl Pg {
    /// Takes or renews lease `name` for `holder` for `hold_ms`: true if `holder` holds it now
    /// (it was free, expired, or already `holder`'s). One statement, no lock held after it.
    pub(super) async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        hold_ms: i64,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, {DB_NOW_MS} + $3) \
                 ON CONFLICT (name) DO UPDATE \
                 SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE leases.expires_at < {DB_NOW_MS} OR leases.holder = excluded.holder \
                 RETURNING holder"
            ))
            .await?;
        let row = client
            .query_opt(&statement, &[&name, &holder, &hold_ms])
            .await?;
        Ok(row.is_some())
    }

    /// Gives up lease `name` if `holder` holds it.
    pub(super) async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM leases WHERE name = $1 AND holder = $2",
                &[&name, &holder],
            )
            .await?;
        Ok(())
    }

    /// Publishes `local` pauses (source id, until) and returns every pause any replica
    /// published that runs after `now`.
    pub(super) async fn share_pauses(
        &self,
        local: &[(String, u64)],
        now: u64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let client = self.client().await?;
        let publish = client
            .prepare_cached(
                "INSERT INTO pauses (source_id, until_ms) VALUES ($1, $2) \
                 ON CONFLICT (source_id) DO UPDATE \
                 SET until_ms = GREATEST(pauses.until_ms, excluded.until_ms)",
            )
            .await?;
        for (source, until) in local {
            client
                .execute(&publish, &[source, &(*until as i64)])
                .await?;
        }
        let rows = client
            .query(
                "SELECT source_id, until_ms FROM pauses WHERE until_ms > $1",
                &[&(now as i64)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
    }
}

impl Pg {
    /// Records `wasm` (sha-256 `digest`) and its `signature` as the version provider `id`
    /// serves, or, `removed`, version `digest` as removed (`wasm` empty); announces it.
    pub(super) async fn publish_plugin(
        &self,
        id: &str,
        digest: &str,
        wasm: &[u8],
        signature: Option<&str>,
        removed: bool,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO plugins (id, digest, wasm, uploaded_at, signature, removed) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (id) DO UPDATE SET digest = excluded.digest, wasm = excluded.wasm, \
                 uploaded_at = excluded.uploaded_at, signature = excluded.signature, \
                 removed = excluded.removed",
                &[
                    &id,
                    &digest,
                    &wasm,
                    &(super::records::now() as i64),
                    &signature,
                    &removed,
                ],
            )
            .await?;
        // PostgreSQL-only: NOTIFY (an engine without it leaves the replicas to their polling).
        let notified = client
            .execute("SELECT pg_notify($1, $2)", &[&PLUGINS_CHANNEL, &id])
            .await;
        if let Err(e) = notified {
            tracing::debug!(error = %e, "no NOTIFY of the upload: the replicas poll for it");
        }
        Ok(())
    }

    /// Listens for plugin uploads on a connection of its own.
    pub(super) async fn listen_uploads(&self) -> Result<Uploads, StoreError> {
        let (client, mut connection) = self.config.connect(NoTls).await?;
        let (send, notices) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(message)) =
                std::future::poll_fn(|cx| connection.poll_message(cx)).await
            {
                if let tokio_postgres::AsyncMessage::Notification(n) = message
                    && send.send(n.payload().to_string()).is_err()
                {
                    return;
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {PLUGINS_CHANNEL}"))
            .await?;
        Ok(Uploads {
            _client: client,
            notices,
        })
    }

    /// (provider id, digest, removed) of every uploaded or removed plugin.
    pub(super) async fn plugin_digests(&self) -> Result<Vec<(String, String, bool)>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT id, digest, removed FROM plugins ORDER BY id")
            .await?;
        let rows = client.query(&statement, &[]).await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// The binary provider `id` serves, if it is still the one with `digest`.
    pub(super) async fn plugin_binary(
        &self,
        id: &str,
        digest: &str,
    ) -> Result<Option<(Vec<u8>, Option<String>)>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT wasm, signature FROM plugins WHERE id = $1 AND digest = $2 AND NOT removed",
                &[&id, &digest],
            )
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }
}

/// Applies the missing migrations in one transaction, under the write lock (replicas starting
/// together migrate once).
async fn migrate(client: &mut Object) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    // PostgreSQL-only: the advisory lock (see the module doc).
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
        .await?;
    let exists: i64 = tx
        .query_one(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'schema_migrations'",
            &[],
        )
        .await?
        .get(0);
    if exists == 0 {
        tx.batch_execute(
            "CREATE TABLE schema_migrations \
             (version bigint PRIMARY KEY, applied_at bigint NOT NULL)",
        )
        .await?;
    }
    let found: i64 = tx
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .await?
        .get::<_, Option<i64>>(0)
        .unwrap_or(0);
    if found as u64 > latest_version() {
        return Err(StoreError::TooNew {
            found: found as u64,
            supported: latest_version(),
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[version, &(super::records::now() as i64)],
        )
        .await?;
        tracing::info!(version, "database schema migrated");
    }
    tx.commit().await?;
    Ok(())
}

/// One transaction on one pooled connection, driven from a blocking-pool thread. Dropped
/// without [`Tx::commit`] (an `Err` from the closure, a panic), it rolls back.
pub(super) struct Tx {
    client: Option<Object>,
    handle: Handle,
}

impl Tx {
    /// Begins a read snapshot (call on a blocking-pool thread).
    pub(super) fn read(client: Object) -> Result<Tx, StoreError> {
        Tx::begin(client, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    }

    /// Begins a write transaction holding the write lock (call on a blocking-pool thread).
    pub(super) fn write(client: Object) -> Result<Tx, StoreError> {
        // PostgreSQL-only: the advisory lock (see the module doc).
        Tx::begin(
            client,
            &format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"),
        )
    }

    /// Begins a write transaction holding the write lock shared: beside other shared holders
    /// (on every replica), never beside a [`Tx::write`] (call on a blocking-pool thread).
    pub(super) fn write_shared(client: Object) -> Result<Tx, StoreError> {
        // PostgreSQL-only: the advisory lock (see the module doc).
        Tx::begin(
            client,
            &format!("BEGIN; SELECT pg_advisory_xact_lock_shared({WRITE_LOCK})"),
        )
    }

    fn begin(client: Object, sql: &str) -> Result<Tx, StoreError> {
        let tx = Tx {
            client: Some(client),
            handle: Handle::current(),
        };
        tx.run(|c| async move { c.batch_execute(sql).await })?;
        Ok(tx)
    }

    /// Runs one async step on the connection, waiting for it on this (blocking) thread.
    fn run<'a, R, F>(&'a self, step: impl FnOnce(&'a Object) -> F) -> Result<R, StoreError>
    where
        F: Future<Output = Result<R, tokio_postgres::Error>> + 'a,
    {
        let client = self.client.as_ref().expect("an open transaction");
        Ok(self.handle.block_on(step(client))?)
    }

    /// Commits (durably, as the server's `synchronous_commit` says: on by default).
    pub(super) fn commit(mut self) -> Result<(), StoreError> {
        let client = self.client.take().expect("an open transaction");
        let done = self.handle.block_on(client.batch_execute("COMMIT"));
        if done.is_err() {
            // The connection's state is unknown: do not hand it to the next caller.
            drop(Object::take(client));
        }
        Ok(done?)
    }

    /// One record's bytes.
    pub(super) fn get(&self, table: Table, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let sql = format!("SELECT body FROM {} WHERE id = $1", table.name());
        self.run(|c| async move {
            let statement = c.prepare_cached(&sql).await?;
            let row = c.query_opt(&statement, &[&id]).await?;
            Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
        })
    }

    /// Every record's bytes, in id order.
    pub(super) fn all(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let sql = format!("SELECT id, body FROM {} ORDER BY id", table.name());
        self.run(|c| async move {
            let statement = c.prepare_cached(&sql).await?;
            let rows = c.query(&statement, &[]).await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// Audit events below `before`, newest first, at most `limit`.
    pub(super) fn audit_page(
        &self,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let before = before.min(i64::MAX as u64) as i64;
        let limit = limit.min(i64::MAX as usize) as i64;
        self.run(|c| async move {
            let statement = c
                .prepare_cached(
                    "SELECT seq, body FROM audit WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
                )
                .await?;
            let rows = c.query(&statement, &[&before, &limit]).await?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
                .collect())
        })
    }

    /// Inserts or replaces a record.
    pub(super) fn put(&mut self, table: Table, id: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO {} (id, body) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            table.name()
        );
        self.run(|c| async move {
            let statement = c.prepare_cached(&sql).await?;
            c.execute(&statement, &[&id, &bytes]).await.map(drop)
        })
    }

    /// Inserts or replaces records, in one statement.
    pub(super) fn put_all(
        &mut self,
        table: Table,
        records: &[(String, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO {} (id, body) SELECT * FROM unnest($1::text[], $2::bytea[]) \
             ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            table.name()
        );
        let (ids, bodies): (Vec<&str>, Vec<&[u8]>) = records
            .iter()
            .map(|(id, b)| (id.as_str(), b.as_slice()))
            .unzip();
        self.run(|c| async move {
            let statement = c.prepare_cached(&sql).await?;
            c.execute(&statement, &[&ids, &bodies]).await.map(drop)
        })
    }

    /// Inserts the records whose id is not taken, in one statement; returns the (id, bytes) it
    /// stored. A concurrent transaction inserting the same id makes this one wait for its end.
    pub(super) fn insert_new(
        &mut self,
        table: Table,
        records: &[(String, Vec<u8>)],
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let sql = format!(
            "INSERT INTO {} (id, body) SELECT * FROM unnest($1::text[], $2::bytea[]) \
             ON CONFLICT (id) DO NOTHING RETURNING id, body",
            table.name()
        );
        let (ids, bodies): (Vec<&str>, Vec<&[u8]>) = records
            .iter()
            .map(|(id, b)| (id.as_str(), b.as_slice()))
            .unzip();
        self.run(|c| async move {
            let statement = c.prepare_cached(&sql).await?;
            let rows = c.query(&statement, &[&ids, &bodies]).await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// Removes a record; true if it existed.
    pub(super) fn delete(&mut self, table: Table, id: &str) -> Result<bool, StoreError> {
        let sql = format!("DELETE FROM {} WHERE id = $1", table.name());
        self.run(|c| async move {
            let statement = c.prepare_cached(&sql).await?;
            Ok(c.execute(&statement, &[&id]).await? > 0)
        })
    }

    /// Appends an audit event under `seq`, or under the next sequence number (the write lock
    /// makes `max + 1` safe); returns it.
    pub(super) fn audit(&mut self, seq: Option<u64>, bytes: &[u8]) -> Result<u64, StoreError> {
        let seq = seq.map(|s| s as i64);
        self.run(|c| async move {
            let statement = c
                .prepare_cached(
                    "INSERT INTO audit (seq, body) \
                     SELECT coalesce($1, coalesce(max(seq), 0) + 1), $2 FROM audit RETURNING seq",
                )
                .await?;
            let row = c.query_one(&statement, &[&seq, &bytes]).await?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && self
                .handle
                .block_on(client.batch_execute("ROLLBACK"))
                .is_err()
        {
            drop(Object::take(client));
        }
    }
}
