//! Audit rows and run reports show badges by the name the configuration gives them.

use std::sync::Arc;

use super::*;
use sync_core::MemoryStore;
use sync_core::RemoteErrorKind;
use sync_core::config::SyncConfig;
use sync_core::ports::{AuditLog, MappingStore};
use sync_core::testkit::{MemoryCrm, RecordingBadgeSink};
use sync_core::{CrmContact, CrmKind, CrmRecordId, Email, Mapping, TenantId};

const PREMIUM: &str = "b0000000-0000-4000-8000-000000000001";
const LABEL: &str = "Premium (b0000000-0000-4000-8000-000000000001)";

#[tokio::test]
async fn audit_rows_and_failure_samples_name_the_badge() {
    let config = SyncConfig::from_toml_str(&format!(
        "[badges]\nPremium = \"{PREMIUM}\"\n\n[[badge_rules]]\nid = \"annual\"\ngrant = \"Premium\"\nwhen = {{ tag = \"Pago Anual\" }}\n"
    ))
    .unwrap()
    .validate()
    .unwrap();
    let tenant = TenantId::new("acme");
    let store = Arc::new(MemoryStore::new());
    let crm = Arc::new(MemoryCrm::new(CrmKind::Hubspot, 10));
    let badges = Arc::new(RecordingBadgeSink::new());
    let now = chrono::Utc::now();
    for i in 0..2 {
        let email = Email::parse(&format!("user{i}@example.com")).unwrap();
        crm.put(
            CrmContact::new(
                CrmRecordId::hubspot(i.to_string()),
                Some(email.clone()),
                now,
            )
            .with_tag("Pago Anual"),
        );
        store
            .put_mapping(
                &tenant,
                &Mapping::new(email, now).with_user(format!("u{i}").into()),
            )
            .await
            .unwrap();
    }
    badges.fail_user("u1".into(), RemoteErrorKind::Invalid, 1);
    let engine = SyncEngine::builder(config, store.clone())
        .source(crm.clone())
        .badge_sink(badges.clone())
        .build();
    let report = engine.run_delta(&tenant).await.unwrap();
    assert_eq!(report.applied.get("assign_badge"), Some(&1), "{report}");

    let failure = report
        .failures
        .iter()
        .find(|f| f.action == "assign_badge")
        .expect("the refused grant is sampled");
    assert_eq!(failure.badge.as_deref(), Some(LABEL));
    let text = report.to_string();
    assert!(
        text.contains(&format!("! assign_badge {LABEL} -> user1@example.com")),
        "{text}"
    );
    assert!(report.to_json_line().contains(LABEL));

    let audit = store.recent_audit(&tenant, 50).await.unwrap();
    let applied = audit
        .iter()
        .find(|e| e.action == "assign_badge" && e.target == "user0@example.com")
        .expect("an audit row for the grant");
    assert_eq!(applied.detail.as_deref(), Some(LABEL));
    let refused = audit
        .iter()
        .find(|e| e.action == "assign_badge" && e.target == "user1@example.com")
        .expect("an audit row for the refusal");
    assert!(
        refused
            .detail
            .as_deref()
            .is_some_and(|d| d.starts_with(&format!("{LABEL}: "))),
        "{refused:?}"
    );
}
