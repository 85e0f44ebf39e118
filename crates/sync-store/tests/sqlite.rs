//! The conformance suite against SQLite, on a temporary file and in memory, plus
//! SQLite-specific behaviour: persistence across reopen, corrupted rows, concurrent handles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sync_core::ports::Store;
use sync_store::SqliteStore;

/// A store on a fresh file in a temporary directory that lives as long as the process (the
/// directory is leaked on purpose: the store outlives this function).
async fn fresh_file() -> Option<Arc<dyn Store>> {
    let dir = tempfile::tempdir().unwrap().keep();
    Some(Arc::new(
        SqliteStore::open(dir.join("sync.db")).await.unwrap(),
    ))
}

async fn fresh_memory() -> Option<Arc<dyn Store>> {
    Some(Arc::new(SqliteStore::open_in_memory().await.unwrap()))
}

mod file {
    use super::*;
    sync_store::conformance_tests!(fresh_file);
}

mod memory {
    use super::*;
    sync_store::conformance_tests!(fresh_memory);
}
