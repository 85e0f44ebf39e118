//! The conformance suite against sync-core's in-memory store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sync_core::MemoryStore;
use sync_core::ports::Store;

async fn fresh() -> Option<Arc<dyn Store>> {
    Some(Arc::new(MemoryStore::new()))
}

sync_store::conformance_tests!(fresh);

#[tokio::test]
async fn run_all_runs_every_case() {
    assert!(sync_store::conformance::cases().len() >= 24);
    sync_store::conformance::run_all(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> })
        .await;
}
