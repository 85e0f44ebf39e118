//! The PostgreSQL store: several service instances sharing one database.
//!
//! Concurrency is the database's: outbox claims use `FOR UPDATE SKIP LOCKED`, the delivery
//! ledger `INSERT ... ON CONFLICT DO NOTHING`, checkpoints a conditional `UPDATE`, leader
//! leases a conditional upsert of a lease row, and mapping batches a per-tenant transaction
//! advisory lock (so two instances upserting the same person serialize instead of failing).

// The table implementations, shared with SQLite (see `crate::tables`): each file is
// compiled under both backends on purpose, which `duplicate_mod` would flag.
#[allow(clippy::duplicate_mod)]
#[path = "../tables/audit.rs"]
mod audit;
#[allow(clippy::duplicate_mod)]
#[path = "../tables/checkpoints.rs"]
mod checkpoints;
#[allow(clippy::duplicate_mod)]
#[path = "../tables/commit.rs"]
mod commit;
#[allow(clippy::duplicate_mod)]
#[path = "../tables/credentials.rs"]
mod credentials;
#[allow(clippy::duplicate_mod)]
#[path = "../tables/deliveries.rs"]
mod deliveries;
#[allow(clippy::duplicate_mod)]
#[path = "../tables/leases.rs"]
mod leases;
#[allow(clippy::duplicate_mod)]
#[path = "../tables/mappings.rs"]
mod mappings;
#[allow(clippy::duplicate_mod)]
#[path = "../tables/outbox.rs"]
mod outbox;
#[allow(clippy::duplicate_mod)]
#[path = "../tables/purge.rs"]
mod purge;
#[allow(clippy::duplicate_mod)]
#[path = "../tables/status.rs"]
mod status;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sync_core::{Error, TenantId};

use crate::db_error::{classify, db};

/// The names the shared table files (`crate::tables`) use.
type Store = PostgresStore;
type Db = sqlx::Postgres;
type Sql = crate::tables::PostgresSql;

/// Options for [`PostgresStore::connect`]. The URL may carry a password: it is kept as a
/// secret and never appears in `Debug` output or errors.
///
/// ```no_run
/// use sync_store::{PostgresOptions, PostgresStore};
/// # async fn run() -> Result<(), sync_core::Error> {
/// let url = std::env::var("SYNC_DATABASE_URL").unwrap_or_default();
/// let store = PostgresStore::connect(PostgresOptions::new(url).schema("cativa_sync").max_connections(20)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresOptions {
    url: SecretString,
    schema: Option<String>,
    max_connections: u32,
    acquire_timeout: Duration,
    migrate: bool,
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &"[redacted]")
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("migrate", &self.migrate)
            .finish()
    }
}

impl PostgresOptions {
    /// Options for the database at `url` (`postgres://user:password@host:port/database`).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            schema: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(30),
            migrate: true,
        }
    }

    /// Keeps the store's tables in this schema (created if missing) instead of the
    /// connection's default `search_path`. A plain identifier: letters, digits and `_`,
    /// not starting with a digit, at most 63 bytes.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Pool size. Default 10; at least 1.
    pub fn max_connections(mut self, connections: u32) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// How long a call waits for a free connection before failing with a retryable error.
    /// Default 30 s.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Whether to apply pending schema migrations on connect (default `true`). Migrations
    /// take an advisory lock, so instances starting together apply them once.
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }
}

/// Checks a schema name is a plain identifier that needs no quoting rules beyond `"..."`.
fn valid_schema(schema: &str) -> Result<(), Error> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::store(
            "open PostgreSQL",
            format!(
                "schema name {schema:?} is not a plain identifier (letters, digits, '_', at most 63 bytes, no leading digit)"
            ),
            false,
        ))
    }
}

/// The Postgres [`CredentialStore`](sync_core::ports::CredentialStore): tokens sealed at rest
/// (see [`CredentialKeys`](crate::CredentialKeys)); made by
/// [`PostgresStore::credential_store`].
pub type PostgresCredentialStore = credentials::CredentialVault;

/// The PostgreSQL implementation of every store trait ([`sync_core::ports::Store`]).
///
/// Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    schema: Option<Arc<str>>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects with `options`, creating the schema and applying migrations unless told not to.
    pub async fn connect(options: PostgresOptions) -> Result<Self, Error> {
        let open_err = |e| classify("open PostgreSQL", None, e);
        // Parse errors must not echo the URL (it may hold a password).
        let mut connect =
            PgConnectOptions::from_str(options.url.expose_secret()).map_err(|_| {
                Error::store(
                    "open PostgreSQL",
                    "the database URL is not a valid postgres:// URL",
                    false,
                )
            })?;
        if let Some(schema) = &options.schema {
            valid_schema(schema)?;
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(open_err)?;
        let store = Self {
            pool,
            schema: options.schema.as_deref().map(Arc::from),
        };
        if let Some(schema) = &options.schema
            && let Err(e) = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&store.pool)
                .await
        {
            // Two instances creating the schema at once: one of them loses a race that
            // `IF NOT EXISTS` does not cover. The schema exists either way.
            let raced = matches!(&e, sqlx::Error::Database(d) if d.code().is_some_and(|c| c == "23505" || c == "42P06"));
            if !raced {
                return Err(classify("create schema", None, e));
            }
        }
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Applies pending schema migrations (idempotent, safe to run from several instances).
    pub async fn migrate(&self) -> Result<(), Error> {
        let fail =
            |e: sqlx::migrate::MigrateError| classify("migrate PostgreSQL schema", None, e.into());
        crate::migrations::Embedded(crate::migrations::POSTGRES)
            .migrator()
            .await
            .map_err(fail)?
            .run(&self.pool)
            .await
            .map_err(fail)
    }

    /// Closes the pool; later calls fail with a non-retryable error.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool reads go to (the one pool).
    fn reader(&self) -> &PgPool {
        &self.pool
    }

    /// The pool writes go to (the one pool).
    fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// Starts a multi-statement write. Concurrency is left to the statements: row locks
    /// (`FOR UPDATE SKIP LOCKED`, `FOR SHARE`) and the mapping writes' tenant lock.
    async fn begin_write(
        &self,
        operation: &'static str,
        tenant: &TenantId,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, Error> {
        self.pool.begin().await.map_err(db(operation, tenant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_url() {
        let options = PostgresOptions::new("postgres://sync:hunter2-secret@db.internal:5432/sync")
            .schema("s1");
        let shown = format!("{options:?}");
        assert!(
            !shown.contains("hunter2-secret") && !shown.contains("db.internal"),
            "{shown}"
        );
        assert!(shown.contains("s1"));
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(valid_schema("sync_test_01").is_ok());
        for bad in ["", "1abc", "a-b", "a\"; DROP TABLE x; --", &"a".repeat(64)] {
            assert!(valid_schema(bad).is_err(), "{bad}");
        }
    }
}
