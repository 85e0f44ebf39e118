//! Classification of database driver errors into [`sync_core::Error`].

use sync_core::{Error, TenantId};

/// Maps a sqlx error raised during `operation` into the port's error type: busy, locked,
/// connection and pool errors are retryable; decoding errors mean a corrupted row; a unique
/// constraint is a [`Error::UniqueViolation`] of `tenant`.
pub(crate) fn classify(operation: &str, tenant: Option<&TenantId>, err: sqlx::Error) -> Error {
    match err {
        sqlx::Error::Database(db) => {
            if let Some(tenant) = tenant.filter(|_| db.is_unique_violation()) {
                return Error::UniqueViolation {
                    tenant: tenant.clone(),
                    detail: format!("{operation}: {}", db.message()),
                };
            }
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            Error::store(
                operation,
                format!("database error {code}: {}", db.message()),
                retryable_code(&code),
            )
        }
        sqlx::Error::ColumnDecode { index, source } => Error::CorruptRow {
            table: operation.to_owned(),
            detail: format!("column {index}: {source}"),
        },
        sqlx::Error::Decode(source) => Error::CorruptRow {
            table: operation.to_owned(),
            detail: source.to_string(),
        },
        sqlx::Error::ColumnNotFound(column) => Error::CorruptRow {
            table: operation.to_owned(),
            detail: format!("column {column} missing: is the schema migrated?"),
        },
        sqlx::Error::Io(e) => Error::store(operation, format!("I/O error: {e}"), true),
        sqlx::Error::PoolTimedOut => Error::store(
            operation,
            "timed out waiting for a database connection",
            true,
        ),
        sqlx::Error::WorkerCrashed => {
            Error::store(operation, "the database worker thread stopped", true)
        }
        sqlx::Error::Protocol(m) => Error::store(operation, format!("protocol error: {m}"), true),
        sqlx::Error::Tls(e) => Error::store(operation, format!("TLS error: {e}"), true),
        sqlx::Error::PoolClosed => Error::store(operation, "the store was closed", false),
        sqlx::Error::Migrate(e) => Error::store(operation, format!("migration failed: {e}"), false),
        sqlx::Error::Configuration(e) => {
            Error::store(operation, format!("invalid configuration: {e}"), false)
        }
        other => Error::store(operation, other.to_string(), false),
    }
}

/// Maps a sqlx error of `operation` for `tenant` (for `map_err`).
pub(crate) fn db<'a>(
    operation: &'static str,
    tenant: &'a TenantId,
) -> impl FnOnce(sqlx::Error) -> Error + 'a {
    move |e| classify(operation, Some(tenant), e)
}

/// Runs a multi-statement write on its own task, so that it runs to completion (commit or
/// rollback) even when the caller's future is dropped: a cancelled request or a timed-out
/// handler never leaves a connection inside an open transaction, and a write either happened
/// whole or not at all.
pub(crate) async fn run_to_completion<T, F>(operation: &'static str, write: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, Error>> + Send + 'static,
{
    match tokio::spawn(write).await {
        Ok(result) => result,
        Err(e) => Err(Error::store(
            operation,
            format!("the write task failed: {e}"),
            false,
        )),
    }
}

/// SQLite extended result codes (numeric) and PostgreSQL SQLSTATEs worth retrying.
fn retryable_code(code: &str) -> bool {
    // PostgreSQL: serialization failure, deadlock, lock not available, too many connections,
    // admin / crash shutdown, cannot connect now, connection exceptions (class 08).
    if matches!(
        code,
        "40001" | "40P01" | "55P03" | "53300" | "57P01" | "57P02" | "57P03"
    ) || code.starts_with("08")
    {
        return true;
    }
    // SQLite extended result codes are plain numbers (PostgreSQL's SQLSTATEs have 5
    // characters): SQLITE_BUSY (5), SQLITE_LOCKED (6), SQLITE_IOERR (10) and their variants.
    code.len() < 5
        && code
            .parse::<i64>()
            .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_locked_and_connection_errors_are_retryable() {
        assert!(retryable_code("5"));
        assert!(retryable_code("517")); // SQLITE_BUSY_SNAPSHOT
        assert!(retryable_code("262")); // SQLITE_LOCKED_SHAREDCACHE
        assert!(retryable_code("40001"));
        assert!(retryable_code("08006"));
        assert!(!retryable_code("19")); // SQLITE_CONSTRAINT
        assert!(!retryable_code("23505"));
        assert!(classify("claim", None, sqlx::Error::PoolTimedOut).is_retryable());
        assert!(!classify("claim", None, sqlx::Error::PoolClosed).is_retryable());
    }

    #[test]
    fn decode_errors_are_corrupt_rows() {
        let e = classify(
            "mappings",
            None,
            sqlx::Error::ColumnNotFound("email".into()),
        );
        assert!(matches!(e, Error::CorruptRow { .. }), "{e}");
    }
}
