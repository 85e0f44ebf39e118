//! Conformance cases of [`DeliveryCommitter`](sync_core::ports::DeliveryCommitter): one
//! delivery's mapping rows, outbox items and ledger row in one call.

use std::sync::Arc;

use sync_core::Mapping;
use sync_core::ports::{DeliveryCommit, DeliveryWrite, Store};
use tokio::sync::Barrier;

use super::{actions, all_rows, email, full_mapping, secs, tenant};

fn write(t: &str, id: &str, mappings: Vec<Mapping>, n: std::ops::Range<usize>) -> DeliveryWrite {
    let mut w = DeliveryWrite::new(tenant(t), id, secs(10));
    w.mappings = mappings;
    w.actions = actions(n);
    w
}

/// A new delivery writes its rows, its items and its ledger row; the same delivery again
/// (alone, or twice in one batch) is a duplicate and, on an atomic store, writes nothing;
/// another tenant's ledger is its own.
pub async fn delivery_commit_writes_rows_items_and_ledger(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let row = full_mapping("a@example.com", "1", "ua");
    let batch = [
        write("acme", "exec-1", vec![row.clone()], 0..3),
        write("acme", "exec-2", Vec::new(), 2..4),
        write("acme", "exec-1", Vec::new(), 0..0),
    ];
    let done = store.commit_deliveries(&batch).await.unwrap();
    assert_eq!(
        done,
        vec![
            DeliveryCommit::Recorded { enqueued: 3 },
            DeliveryCommit::Recorded { enqueued: 1 },
            DeliveryCommit::Duplicate,
        ],
        "an action already queued is not new; a copy in the same batch is a duplicate"
    );
    assert!(store.has_delivery(&t, "exec-1").await.unwrap());
    assert!(store.has_delivery(&t, "exec-2").await.unwrap());
    assert_eq!(all_rows(&store, &t).await, vec![row.clone()]);
    let counts = store.outbox_counts(&t).await.unwrap();
    assert_eq!(counts.pending, 4, "{counts:?}");

    let mut changed = row.clone();
    changed.generation += 1;
    let again = store
        .commit_deliveries(&[write("acme", "exec-1", vec![changed], 20..22)])
        .await
        .unwrap();
    assert_eq!(again, vec![DeliveryCommit::Duplicate]);
    if store.atomic_delivery_commits() {
        assert_eq!(
            all_rows(&store, &t).await,
            vec![row],
            "a duplicate writes no row"
        );
        assert_eq!(store.outbox_counts(&t).await.unwrap(), counts, "nor items");
    }

    let other = store
        .commit_deliveries(&[write("globex", "exec-1", Vec::new(), 0..1)])
        .await
        .unwrap();
    assert_eq!(other, vec![DeliveryCommit::Recorded { enqueued: 1 }]);
}

/// On an atomic store, a batch with one failing delivery commits none of it.
pub async fn atomic_delivery_commit_is_all_or_nothing(store: Arc<dyn Store>) {
    if !store.atomic_delivery_commits() {
        return;
    }
    let t = tenant("acme");
    let a = full_mapping("a@example.com", "1", "ua");
    let b = Mapping::new(email("b@example.com"), secs(1))
        .with_crm(sync_core::CrmRecordId::hubspot("2"));
    store
        .put_mappings(&t, &[a.clone(), b.clone()])
        .await
        .unwrap();
    // The email of one row with the CRM record of another: refused.
    let bad = Mapping::new(email("a@example.com"), secs(2))
        .with_crm(sync_core::CrmRecordId::hubspot("2"));
    let batch = [
        write("acme", "exec-ok", Vec::new(), 0..2),
        write("acme", "exec-bad", vec![bad], 2..3),
    ];
    let r = store.commit_deliveries(&batch).await;
    assert!(
        matches!(r, Err(sync_core::Error::UniqueViolation { .. })),
        "{r:?}"
    );
    assert!(
        !store.has_delivery(&t, "exec-ok").await.unwrap(),
        "rolled back"
    );
    assert!(!store.has_delivery(&t, "exec-bad").await.unwrap());
    assert_eq!(store.outbox_counts(&t).await.unwrap().pending, 0);
    assert_eq!(all_rows(&store, &t).await, vec![a, b]);
    // Alone, the good one commits.
    let ok = store.commit_deliveries(&batch[..1]).await.unwrap();
    assert_eq!(ok, vec![DeliveryCommit::Recorded { enqueued: 2 }]);
}

/// Sixteen copies of one delivery committing at once: one is recorded, the items once.
pub async fn delivery_commits_racing_record_once(store: Arc<dyn Store>) {
    let t = tenant("acme");
    for round in 0..3 {
        let id = format!("exec-race-{round}");
        let barrier = Arc::new(Barrier::new(16));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (store, barrier) = (store.clone(), barrier.clone());
            let w = write("acme", &id, Vec::new(), round * 10..round * 10 + 2);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.commit_deliveries(&[w]).await.unwrap()
            }));
        }
        let mut recorded = 0;
        for task in tasks {
            if task.await.unwrap() != vec![DeliveryCommit::Duplicate] {
                recorded += 1;
            }
        }
        assert_eq!(recorded, 1, "round {round}: exactly one copy is recorded");
    }
    assert_eq!(store.outbox_counts(&t).await.unwrap().pending, 6);
}
