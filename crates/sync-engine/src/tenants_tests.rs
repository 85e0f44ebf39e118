//! One engine over two tenants through `TenantConnections`: each tenant's run reads its own
//! CRM and grants through its own badge sink, and an unknown tenant is refused.

use std::sync::Arc;

use chrono::{TimeZone, Utc};

use super::*;
use sync_core::config::{BadgeRule, Condition, SyncConfig};
use sync_core::ports::{MappingStore, MemoryConnections, TenantParts};
use sync_core::testkit::{MemoryCrm, RecordingBadgeSink};
use sync_core::{CrmContact, CrmKind, CrmRecordId, Email, Mapping, MemoryStore};

struct Tenant {
    id: TenantId,
    crm: Arc<MemoryCrm>,
    badges: Arc<RecordingBadgeSink>,
}

fn email(i: usize) -> Email {
    Email::parse(&format!("user{i}@example.com")).unwrap()
}

fn tenant(name: &str, ids: std::ops::Range<usize>) -> Tenant {
    let crm = Arc::new(MemoryCrm::new(CrmKind::Hubspot, 10));
    let at = Utc.timestamp_opt(1_700_000_000, 0).single().unwrap();
    for i in ids {
        crm.put(
            CrmContact::new(CrmRecordId::hubspot(format!("{i}")), Some(email(i)), at)
                .with_tag("Pago Anual"),
        );
    }
    Tenant {
        id: TenantId::new(name),
        crm,
        badges: Arc::new(RecordingBadgeSink::new()),
    }
}

fn config() -> ValidatedConfig {
    let mut raw = SyncConfig::default();
    raw.badge_rules = vec![BadgeRule::new(
        "annual",
        "Premium",
        Condition::Tag("Pago Anual".into()),
    )];
    raw.validate().unwrap()
}

#[tokio::test]
async fn each_tenant_runs_on_its_own_parts_and_an_unknown_tenant_is_refused() {
    let store = Arc::new(MemoryStore::new());
    let (a, b) = (tenant("a", 0..3), tenant("b", 10..12));
    let registry = Arc::new(MemoryConnections::new());
    for t in [&a, &b] {
        registry.insert(
            t.id.clone(),
            TenantParts::new()
                .with_source(t.crm.clone())
                .with_crm_sink(t.crm.clone())
                .with_badge_sink(t.badges.clone()),
        );
    }
    let engine = SyncEngine::builder(config(), store.clone())
        .connections(registry.clone())
        .build();
    assert!(engine.is_multi_tenant() && engine.has_source());
    for (t, users) in [(&a, 0..3), (&b, 10..12)] {
        for i in users {
            store
                .put_mapping(
                    &t.id,
                    &Mapping::new(email(i), Utc::now()).with_user(format!("u{i}").into()),
                )
                .await
                .unwrap();
        }
    }

    let report = engine.run_delta(&a.id).await.unwrap();
    assert_eq!(report.read, 3, "tenant a reads only its own CRM");
    assert_eq!(a.badges.effects(), 3);
    assert_eq!(b.badges.effects(), 0, "nothing granted through b's sink");

    let report = engine.run_delta(&b.id).await.unwrap();
    assert_eq!(report.read, 2);
    assert_eq!(b.badges.effects(), 2);
    assert_eq!(a.badges.effects(), 3);

    let unknown = TenantId::new("nobody");
    let err = engine.run_delta(&unknown).await.unwrap_err();
    assert!(
        matches!(&err, Error::Core(sync_core::Error::UnknownTenant(t)) if *t == unknown),
        "{err}"
    );
    // Forgetting a tenant unroutes it: its work is refused from then on.
    assert!(registry.forget(&a.id).await.unwrap());
    assert!(engine.drain_outbox(&a.id).await.is_err());
}
