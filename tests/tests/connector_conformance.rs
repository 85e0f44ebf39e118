//! The connector conformance suite (`sync_core::conformance`) on the real connectors, each
//! against its sandbox: HubSpot (`HubSpotSource`/`HubSpotSink`), Salesforce
//! (`SalesforceSource`/`SalesforceSink`), and Cativa (`ApiBadgeSink`). The in-memory fakes run
//! it in `crates/sync-core/tests/conformance.rs`, the example CRM in `examples/custom_crm.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sync_core::conformance::{CommunityHarness, CrmHarness, InjectedFault};
use sync_core::ports::{BadgeSink, CrmSink, CrmSource, Inviter};
use sync_core::{BadgeId, CativaUserId, CrmRecordId, Email, TenantId};
use sync_http::RetryPolicy;
use sync_sandbox::faults::{Fault, FaultConfig, FaultRates};
use sync_sandbox::{Clock, ManualClock};

const PAGE: usize = 5;
/// Salesforce's smallest query batch.
const SF_PAGE: usize = 200;

fn clock_now() -> Arc<ManualClock> {
    // The CRM's clock starts at the real time: Salesforce's delete log only serves recent
    // windows.
    Arc::new(ManualClock::starting_at_epoch_ms(
        Utc::now().timestamp_millis() / 1000 * 1000,
    ))
}

fn always(fault: Fault) -> FaultConfig {
    FaultConfig::seeded(7)
        .with_rates(FaultRates::only(fault, 1.0))
        .with_retry_after(Some(std::time::Duration::from_secs(3)))
}

/// The sandboxes' fault switch for a fault, if they have one (none for a lasting 4xx).
fn sandbox_faults(fault: InjectedFault) -> Option<FaultConfig> {
    match fault {
        InjectedFault::Server => Some(always(Fault::Status(503))),
        InjectedFault::RateLimited => Some(always(Fault::TooManyRequests)),
        _ => None,
    }
}

fn tenant() -> TenantId {
    TenantId::new("conformance")
}

// --- HubSpot ----------------------------------------------------------------------------

mod hubspot {
    use std::collections::BTreeMap;

    use crm_hubspot::{HubSpotClient, HubSpotSink, HubSpotSource, SinkConfig, SourceConfig};
    use secrecy::SecretString;
    use sync_sandbox::hubspot::{DEFAULT_ACCESS_TOKEN, HubSpotConfig, HubSpotSandbox};

    use super::*;

    struct Harness {
        sandbox: HubSpotSandbox,
        clock: Arc<ManualClock>,
        source: Arc<HubSpotSource>,
        sink: Arc<HubSpotSink>,
    }

    fn id(crm: &CrmRecordId) -> u64 {
        crm.id.parse().unwrap()
    }

    #[async_trait]
    impl CrmHarness for Harness {
        fn tenant(&self) -> TenantId {
            tenant()
        }
        fn source(&self) -> Arc<dyn CrmSource> {
            self.source.clone()
        }
        fn sink(&self) -> Arc<dyn CrmSink> {
            self.sink.clone()
        }
        fn page_size(&self) -> usize {
            PAGE
        }
        fn now(&self) -> DateTime<Utc> {
            self.clock.now_utc()
        }
        async fn advance(&self, by: Duration) {
            self.clock.advance(by.to_std().unwrap());
        }
        async fn create(&self, email: &str) -> Result<CrmRecordId, String> {
            let props = BTreeMap::from([("email".to_owned(), email.to_owned())]);
            self.sandbox
                .insert_contact(props)
                .map(|id| CrmRecordId::hubspot(id.to_string()))
                .map_err(|e| e.to_string())
        }
        async fn touch(&self, crm: &CrmRecordId) -> Result<(), String> {
            self.sandbox
                .set_property(id(crm), "firstname", "Touched")
                .map_err(|e| e.to_string())
        }
        async fn delete(&self, crm: &CrmRecordId) -> Result<(), String> {
            self.sandbox
                .archive_contact(id(crm))
                .map_err(|e| e.to_string())
        }
        async fn merge(&self, winner: &CrmRecordId, loser: &CrmRecordId) -> Result<bool, String> {
            self.sandbox
                .merge_contacts(id(winner), id(loser))
                .map(|()| true)
                .map_err(|e| e.to_string())
        }
        async fn inject(&self, fault: InjectedFault) -> bool {
            sandbox_faults(fault).is_some_and(|f| self.sandbox.set_faults(f).is_ok())
        }
        async fn clear_faults(&self) {
            self.sandbox.set_faults(FaultConfig::default()).unwrap();
        }
    }

    async fn fresh() -> Option<Arc<dyn CrmHarness>> {
        let clock = clock_now();
        let sandbox = HubSpotSandbox::start_with_clock(HubSpotConfig::default(), clock.clone())
            .await
            .unwrap();
        let client = HubSpotClient::builder()
            .base_url(sandbox.base_url())
            .access_token(SecretString::from(DEFAULT_ACCESS_TOKEN))
            .retry_policy(RetryPolicy::none())
            .build()
            .unwrap();
        let mut config = SourceConfig::default();
        config.search_page_size = PAGE as u32;
        config.list_page_size = PAGE as u32;
        Some(Arc::new(Harness {
            source: Arc::new(HubSpotSource::new(client.clone(), config)),
            sink: Arc::new(HubSpotSink::new(client, SinkConfig::default())),
            sandbox,
            clock,
        }))
    }

    sync_core::connector_conformance_tests!(fresh);
}

// --- Salesforce -------------------------------------------------------------------------

mod salesforce {
    use crm_salesforce::{
        ContactSchema, OAuthFlow, SalesforceClient, SalesforceSink, SalesforceSource,
    };
    use secrecy::SecretString;
    use serde_json::{Map, Value, json};
    use sync_sandbox::salesforce::{
        DEFAULT_CLIENT_ID, DEFAULT_REFRESH_TOKEN, SalesforceConfig, SalesforceSandbox,
    };

    use super::*;

    struct Harness {
        sandbox: SalesforceSandbox,
        clock: Arc<ManualClock>,
        source: Arc<SalesforceSource>,
        sink: Arc<SalesforceSink>,
    }

    #[async_trait]
    impl CrmHarness for Harness {
        fn tenant(&self) -> TenantId {
            tenant()
        }
        fn source(&self) -> Arc<dyn CrmSource> {
            self.source.clone()
        }
        fn sink(&self) -> Arc<dyn CrmSink> {
            self.sink.clone()
        }
        fn page_size(&self) -> usize {
            SF_PAGE
        }
        fn now(&self) -> DateTime<Utc> {
            self.clock.now_utc()
        }
        async fn advance(&self, by: Duration) {
            self.clock.advance(by.to_std().unwrap());
        }
        async fn create(&self, email: &str) -> Result<CrmRecordId, String> {
            let mut fields = Map::new();
            fields.insert("Email".into(), json!(email));
            fields.insert("LastName".into(), json!("Conformance"));
            self.sandbox
                .insert_record("Contact", fields)
                .map(CrmRecordId::salesforce)
                .map_err(|e| e.to_string())
        }
        async fn touch(&self, crm: &CrmRecordId) -> Result<(), String> {
            self.sandbox
                .set_field(&crm.id, "FirstName", Value::from("Touched"))
                .map_err(|e| e.to_string())
        }
        async fn delete(&self, crm: &CrmRecordId) -> Result<(), String> {
            self.sandbox
                .delete_record(&crm.id)
                .map_err(|e| e.to_string())
        }
        async fn merge(&self, winner: &CrmRecordId, loser: &CrmRecordId) -> Result<bool, String> {
            self.sandbox
                .merge(&winner.id, &loser.id)
                .map(|()| true)
                .map_err(|e| e.to_string())
        }
        async fn inject(&self, fault: InjectedFault) -> bool {
            sandbox_faults(fault).is_some_and(|f| self.sandbox.set_faults(f).is_ok())
        }
        async fn clear_faults(&self) {
            self.sandbox.set_faults(FaultConfig::default()).unwrap();
        }
        fn rejected_property(&self) -> Option<(String, String)> {
            // A field the org does not have: Salesforce rejects that record alone.
            Some(("No_Such_Field__c".into(), "x".into()))
        }
    }

    async fn fresh() -> Option<Arc<dyn CrmHarness>> {
        let clock = clock_now();
        let sandbox = SalesforceSandbox::start_with_clock(
            SalesforceConfig::default().with_query_batch_size(SF_PAGE),
            clock.clone(),
        )
        .await
        .unwrap();
        let client = SalesforceClient::builder()
            .login_url(sandbox.base_url())
            .flow(OAuthFlow::refresh_token(
                DEFAULT_CLIENT_ID,
                None,
                SecretString::from(DEFAULT_REFRESH_TOKEN),
            ))
            .retry_policy(RetryPolicy::none())
            .build()
            .unwrap();
        let schema = ContactSchema::contact();
        Some(Arc::new(Harness {
            source: Arc::new(SalesforceSource::new(client.clone(), schema.clone()).unwrap()),
            sink: Arc::new(SalesforceSink::new(client, schema).unwrap()),
            sandbox,
            clock,
        }))
    }

    sync_core::connector_conformance_tests!(fresh);
}

// --- Cativa -----------------------------------------------------------------------------

mod cativa {
    use cativa_client::CativaClient;
    use cativa_client::sink::{ApiBadgeSink, InviteOutput, SignupInviter};
    use secrecy::SecretString;
    use sync_sandbox::cativa::{CativaConfig, CativaSandbox, DEFAULT_API_KEY, Effect};

    use super::*;

    const PREMIUM: &str = "b0000000-0000-4000-8000-000000000001";

    struct Harness {
        sandbox: CativaSandbox,
        sink: Arc<ApiBadgeSink>,
        inviter: Arc<SignupInviter>,
        users: Vec<(CativaUserId, Email)>,
    }

    #[async_trait]
    impl CommunityHarness for Harness {
        fn tenant(&self) -> TenantId {
            tenant()
        }
        fn badge_sink(&self) -> Arc<dyn BadgeSink> {
            self.sink.clone()
        }
        fn inviter(&self) -> Option<Arc<dyn Inviter>> {
            Some(self.inviter.clone())
        }
        fn users(&self) -> Vec<(CativaUserId, Email)> {
            self.users.clone()
        }
        fn badge(&self) -> BadgeId {
            PREMIUM.into()
        }
        fn unknown_user(&self) -> CativaUserId {
            "00000000-0000-4000-8000-00000000dead".into()
        }
        async fn badges_of(&self, user: &CativaUserId) -> Vec<BadgeId> {
            self.sandbox
                .badges_by_user()
                .get(user.as_str())
                .map(|grants| grants.iter().map(|g| g.badge_id.as_str().into()).collect())
                .unwrap_or_default()
        }
        async fn grant_effects(&self, user: &CativaUserId, badge: &BadgeId) -> u64 {
            self.sandbox
                .effects()
                .iter()
                .filter(|e| {
                    matches!(e, Effect::BadgeGranted { user_id, badge_id }
                        if user_id == user.as_str() && badge_id == badge.as_str())
                })
                .count() as u64
        }
        async fn invites_for(&self, email: &Email) -> u64 {
            // Taken once: the harness is used by one case.
            self.inviter
                .take_invites()
                .iter()
                .filter(|i| &i.email == email)
                .count() as u64
        }
    }

    async fn fresh() -> Option<Arc<dyn CommunityHarness>> {
        let sandbox = CativaSandbox::start(CativaConfig::default()).await.unwrap();
        let users = ["ana", "bruno"]
            .iter()
            .map(|name| {
                let u =
                    sandbox.sign_up(&format!("{name}@conformance.example"), name, "Conformance");
                (
                    CativaUserId::from(u.id.clone()),
                    Email::parse(&u.email).unwrap(),
                )
            })
            .collect();
        let client = CativaClient::builder(SecretString::from(DEFAULT_API_KEY))
            .base_url(sandbox.base_url())
            .build()
            .unwrap();
        let inviter = SignupInviter::new(InviteOutput::Memory).with_signup_link(
            tenant(),
            url::Url::parse("https://community.example/signup").unwrap(),
        );
        Some(Arc::new(Harness {
            sink: Arc::new(ApiBadgeSink::new(tenant(), client)),
            inviter: Arc::new(inviter),
            sandbox,
            users,
        }))
    }

    sync_core::community_conformance_tests!(fresh);
}
