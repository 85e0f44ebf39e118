//! A connector for a CRM the SDK does not ship, written only against the public traits:
//! `CrmSource` and `CrmSink` for a small JSON-over-HTTP CRM (served here in-process by axum,
//! so the example runs alone). Its test runs the connector conformance suite on it.
//!
//! ```text
//! cargo run --example custom_crm
//! ```
//!
//! Copy `custom_crm/connector.rs` (`JsonCrmConnector`) as the start of yours; the
//! repository's `docs/writing-a-connector.md` explains each contract, and
//! `custom_crm/fake_crm.rs` documents the example CRM's API.

#[path = "custom_crm/connector.rs"]
mod connector;
#[path = "custom_crm/fake_crm.rs"]
pub mod fake_crm;

use cativa_crm_sync::core::ports::CrmSource;
use cativa_crm_sync::core::{Email, TenantId};
use connector::JsonCrmConnector;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let crm = fake_crm::FakeCrm::start().await?;
    for email in ["ana@example.com", "Bruno@Example.com", "carla@example.com"] {
        crm.create(email);
    }
    let connector = JsonCrmConnector::new(crm.base_url());
    let tenant = TenantId::new("demo");
    let page = connector.scan(&tenant, None).await?;
    println!(
        "The JSON CRM at {} holds {} contacts:",
        crm.base_url(),
        page.contacts.len()
    );
    for c in &page.contacts {
        println!("  {} {}", c.id, c.email.as_ref().map_or("-", Email::as_str));
    }
    let found = connector
        .find_by_email(&tenant, &Email::parse("bruno@example.com")?)
        .await?;
    println!(
        "find_by_email(bruno@example.com): {} contact(s)",
        found.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use async_trait::async_trait;
    use cativa_crm_sync::chrono::{DateTime, Utc};
    use cativa_crm_sync::core::CrmRecordId;
    use cativa_crm_sync::core::ports::CrmSink;

    use cativa_crm_sync::core::conformance::{CrmHarness, InjectedFault};

    #[async_trait]
    impl CrmHarness for fake_crm::Harness {
        fn tenant(&self) -> TenantId {
            TenantId::new("conformance")
        }
        fn source(&self) -> Arc<dyn CrmSource> {
            Arc::new(JsonCrmConnector::new(self.crm.base_url()))
        }
        fn sink(&self) -> Arc<dyn CrmSink> {
            Arc::new(JsonCrmConnector::new(self.crm.base_url()))
        }
        fn page_size(&self) -> usize {
            fake_crm::PAGE
        }
        fn now(&self) -> DateTime<Utc> {
            self.crm.now()
        }
        async fn advance(&self, by: cativa_crm_sync::chrono::Duration) {
            self.crm.advance(by);
        }
        async fn create(&self, email: &str) -> Result<CrmRecordId, String> {
            Ok(JsonCrmConnector::new("").id(&self.crm.create(email)))
        }
        async fn touch(&self, id: &CrmRecordId) -> Result<(), String> {
            self.crm.touch(&id.id)
        }
        async fn delete(&self, id: &CrmRecordId) -> Result<(), String> {
            self.crm.delete(&id.id)
        }
        async fn merge(&self, winner: &CrmRecordId, loser: &CrmRecordId) -> Result<bool, String> {
            self.crm.merge(&winner.id, &loser.id).map(|()| true)
        }
        async fn inject(&self, fault: InjectedFault) -> bool {
            let status = match fault {
                InjectedFault::Server => 503,
                InjectedFault::RateLimited => 429,
                InjectedFault::Permanent => 401,
                _ => return false,
            };
            self.crm.fail_with(Some(status));
            true
        }
        async fn clear_faults(&self) {
            self.crm.fail_with(None);
        }
        fn rejected_property(&self) -> Option<(String, String)> {
            Some(("no_such_property".into(), "x".into()))
        }
    }

    async fn fresh() -> Option<Arc<dyn CrmHarness>> {
        Some(Arc::new(fake_crm::Harness {
            crm: fake_crm::FakeCrm::start().await.ok()?,
        }))
    }

    cativa_crm_sync::core::connector_conformance_tests!(fresh);
}
