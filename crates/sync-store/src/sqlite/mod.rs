//! The SQLite store: one file (or memory), nothing to install.
//!
//! Writes go through a pool of exactly one connection and every multi-statement write opens
//! with `BEGIN IMMEDIATE`, taking the database's write lock up front: transactions never
//! upgrade a read lock to a write lock, so two writers (tasks here or another process on the
//! same file) wait for each other under the busy timeout instead of deadlocking. Reads go to
//! a separate pool and, in WAL mode, never block the writer nor wait for it.

// The table implementations, shared with PostgreSQL (see `crate::tables`): each file is
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
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, SqliteConnection};
use sync_core::{Error, TenantId};

use crate::db_error::classify;

/// The names the shared table files (`crate::tables`) use.
type Store = SqliteStore;
type Db = sqlx::Sqlite;
type Sql = crate::tables::SqliteSql;

/// How hard SQLite works to make a commit survive a power failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous = NORMAL` (the default, recommended with WAL): a commit survives the
    /// process crashing; a power failure may lose the last commits, never corrupt the file.
    #[default]
    Normal,
    /// `synchronous = FULL`: every commit is synced to disk before it returns.
    Full,
}

#[derive(Debug, Clone)]
enum Location {
    File(PathBuf),
    Memory,
}

/// Options for [`SqliteStore::connect`].
///
/// ```no_run
/// use std::time::Duration;
/// use sync_store::{SqliteOptions, SqliteStore};
/// # async fn run() -> Result<(), sync_core::Error> {
/// let store = SqliteStore::connect(
///     SqliteOptions::file("/var/lib/my-service/sync.db").busy_timeout(Duration::from_secs(10)),
/// )
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    location: Location,
    busy_timeout: Duration,
    read_connections: u32,
    acquire_timeout: Duration,
    durability: Durability,
    create_if_missing: bool,
    migrate: bool,
}

impl SqliteOptions {
    fn new(location: Location) -> Self {
        Self {
            location,
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
            acquire_timeout: Duration::from_secs(30),
            durability: Durability::default(),
            create_if_missing: true,
            migrate: true,
        }
    }

    /// A database file (created if missing, with its schema).
    pub fn file(path: impl AsRef<Path>) -> Self {
        Self::new(Location::File(path.as_ref().to_path_buf()))
    }

    /// A private in-memory database: gone when the store is dropped. For tests and
    /// deployments that can afford to lose state on restart.
    pub fn in_memory() -> Self {
        Self::new(Location::Memory)
    }

    /// How long a write waits for another writer (e.g. another process) before failing with
    /// a retryable error. Default 5 s.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Size of the read pool (file databases). Default 4; at least 1.
    pub fn read_connections(mut self, connections: u32) -> Self {
        self.read_connections = connections.max(1);
        self
    }

    /// How long a call waits for a free connection before failing with a retryable error.
    /// Default 30 s.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Commit durability. Default [`Durability::Normal`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Whether to create the file if it does not exist. Default `true`.
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    /// Whether to apply pending schema migrations on connect. Default `true`; turn it off
    /// when migrations are applied by a deploy step (see [`SqliteStore::migrate`]).
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    fn connect_options(&self) -> Result<SqliteConnectOptions, Error> {
        let base = match &self.location {
            Location::File(path) => SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(self.create_if_missing)
                .journal_mode(SqliteJournalMode::Wal),
            // A uniquely named shared-cache memory database: every connection of this store
            // (and only of this store) sees the same data.
            Location::Memory => SqliteConnectOptions::from_str("sqlite::memory:")
                .map_err(|e| classify("open SQLite", None, e))?,
        };
        Ok(base
            .busy_timeout(self.busy_timeout)
            .foreign_keys(true)
            .synchronous(match self.durability {
                Durability::Normal => SqliteSynchronous::Normal,
                Durability::Full => SqliteSynchronous::Full,
            }))
    }
}

/// The Sqlite [`CredentialStore`](sync_core::ports::CredentialStore): tokens sealed at rest
/// (see [`CredentialKeys`](crate::CredentialKeys)); made by
/// [`SqliteStore::credential_store`].
pub type SqliteCredentialStore = credentials::CredentialVault;

/// The SQLite implementation of every store trait ([`sync_core::ports::Store`]).
///
/// Cheap to clone: clones share the connection pools.
///
/// ```no_run
/// use std::sync::Arc;
/// use sync_core::ports::Store;
/// use sync_store::SqliteStore;
/// # async fn run() -> Result<(), sync_core::Error> {
/// let store: Arc<dyn Store> = Arc::new(SqliteStore::open("sync.db").await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    location: Arc<str>,
    // Keeps an in-memory database alive while the pool recycles its connection.
    _anchor: Option<Arc<Mutex<SqliteConnection>>>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) a database file with default options.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::connect(SqliteOptions::file(path)).await
    }

    /// A private in-memory database with default options.
    pub async fn open_in_memory() -> Result<Self, Error> {
        Self::connect(SqliteOptions::in_memory()).await
    }

    /// Opens a database with `options`, applying migrations unless told not to.
    pub async fn connect(options: SqliteOptions) -> Result<Self, Error> {
        let connect = options.connect_options()?;
        let open_err = |e| classify("open SQLite", None, e);
        // No ping before each acquire (sqlx's default): a SQLite connection is a file handle
        // on this host, not a socket that can die idle, and the ping is one more round trip to
        // the connection's worker thread on every store call.
        let writer_options = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .test_before_acquire(false)
            .acquire_timeout(options.acquire_timeout);
        let (writer, reader, anchor, location) = match &options.location {
            Location::File(path) => {
                let writer = writer_options
                    .connect_with(connect.clone())
                    .await
                    .map_err(open_err)?;
                let reader = SqlitePoolOptions::new()
                    .max_connections(options.read_connections)
                    .test_before_acquire(false)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect.create_if_missing(false))
                    .await
                    .map_err(open_err)?;
                (writer, reader, None, path.display().to_string())
            }
            Location::Memory => {
                let anchor = connect.connect().await.map_err(open_err)?;
                // Shared-cache connections lock whole tables, so one connection serves both
                // reads and writes.
                let pool = writer_options
                    .connect_with(connect)
                    .await
                    .map_err(open_err)?;
                (
                    pool.clone(),
                    pool,
                    Some(Arc::new(Mutex::new(anchor))),
                    ":memory:".to_owned(),
                )
            }
        };
        let store = Self {
            writer,
            reader,
            location: location.into(),
            _anchor: anchor,
        };
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Applies pending schema migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), Error> {
        let fail =
            |e: sqlx::migrate::MigrateError| classify("migrate SQLite schema", None, e.into());
        crate::migrations::Embedded(crate::migrations::SQLITE)
            .migrator()
            .await
            .map_err(fail)?
            .run(&self.writer)
            .await
            .map_err(fail)
    }

    /// Closes the connection pools; later calls fail with a non-retryable error.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// The pool reads go to (in WAL mode, never blocked by the writer).
    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// The one-connection pool single-statement writes go to.
    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Starts a multi-statement write holding the database's write lock from the start
    /// (`BEGIN IMMEDIATE`), so it never has to upgrade a read lock and waits for another
    /// writer under the busy timeout instead of failing.
    async fn begin_write(
        &self,
        operation: &'static str,
        tenant: &TenantId,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, Error> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| classify(operation, Some(tenant), e))
    }
}
