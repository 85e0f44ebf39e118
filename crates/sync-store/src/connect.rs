//! Choosing a store from one configuration string.

use std::sync::Arc;

use sync_core::Error;
use sync_core::ports::Store;

/// Opens the store a URL names, migrating its schema:
///
/// - `postgres://...` or `postgresql://...`: a [`crate::PostgresStore`] (feature `postgres`);
/// - `sqlite::memory:` or `:memory:`: a private in-memory [`crate::SqliteStore`];
/// - `sqlite://path`, `sqlite:path` or a plain file path: a [`crate::SqliteStore`] on that
///   file (feature `sqlite`).
///
/// A store whose feature is off gives a non-retryable [`Error::Store`] that names the feature.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, Error> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        {
            let options = crate::PostgresOptions::new(url);
            return Ok(Arc::new(crate::PostgresStore::connect(options).await?));
        }
        #[cfg(not(feature = "postgres"))]
        return Err(Error::store(
            "connect",
            "a PostgreSQL URL needs sync-store's `postgres` feature",
            false,
        ));
    }
    if url.is_empty() {
        return Err(Error::store(
            "connect",
            "empty database URL: give a SQLite file path or a postgres:// URL",
            false,
        ));
    }
    #[cfg(feature = "sqlite")]
    {
        if matches!(url, "sqlite::memory:" | ":memory:" | "sqlite://:memory:") {
            return Ok(Arc::new(crate::SqliteStore::open_in_memory().await?));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        Ok(Arc::new(crate::SqliteStore::open(path).await?))
    }
    #[cfg(not(feature = "sqlite"))]
    Err(Error::store(
        "connect",
        "a SQLite path needs sync-store's `sqlite` feature",
        false,
    ))
}
