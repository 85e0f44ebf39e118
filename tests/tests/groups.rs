//! Groups as lists, end to end on the HubSpot and the Salesforce sandbox:
//! - a `user_joined_group` delivery from a group's own listener (the payload names no group;
//!   the receiver maps the listener's automation id to the group) puts the user's contact
//!   in the group's HubSpot MANUAL list or Salesforce campaign, created on request, and
//!   records the group in the contact's provenance (`cativa_groups`, `Cativa_Groups__c`);
//! - a member the CRM owner added to the list by hand stays after a full reconcile, even
//!   when the user also joined the group and left it again (Salesforce answers
//!   `DUPLICATE_VALUE` for the existing member: success, but not the sync's membership);
//! - a user who left the group (the sandbox's group members, read through the Cativa
//!   client's preview path) is removed by the full reconcile, which a dry run shows first
//!   and writes nothing;
//! - without a group members source, a reconcile removes nothing and its report says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use cativa_client::PreviewPaths;
use cativa_client::webhook::{EventType, SignatureVerifier, WebhookReceiver};
use cativa_crm_sync_tests::{cativa_headers, fast_options, hubspot_client, unlimited_sandbox};
use crm_hubspot::model::PropertyCreate;
use crm_hubspot::{ContactMapping, HubSpotSink, HubSpotSource, SinkConfig, SourceConfig};
use crm_salesforce::{
    ContactSchema, OAuthFlow, SalesforceClient, SalesforceSink, SalesforceSource,
};
use secrecy::SecretString;
use serde_json::json;
use sync_core::config::{GroupsConfig, SyncConfig};
use sync_core::ports::{CrmSink, CrmSource, Store};
use sync_core::{ActionType, DeliveryOutcome, PlanMode, TenantId};
use sync_engine::SyncEngine;
use sync_sandbox::SandboxServer;
use sync_sandbox::cativa::{SignatureMode, WebhookDelivery};
use sync_sandbox::salesforce::FieldType;

const GROUP: &str = "VIP";
const LIST: &str = "Cativa: VIP";
const HS_PROVENANCE: &str = "cativa_groups";
const SF_PROVENANCE: &str = "Cativa_Groups__c";
const MEMBERS_PATH: &str = "/social/v1/groups/{group}/members";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Crm {
    HubSpot,
    Salesforce,
}

impl Crm {
    fn provenance(self) -> &'static str {
        match self {
            Crm::HubSpot => HS_PROVENANCE,
            Crm::Salesforce => SF_PROVENANCE,
        }
    }
}

fn groups_config(crm: Crm) -> sync_core::ValidatedConfig {
    let mut config = SyncConfig::default();
    config.groups = Some(
        GroupsConfig::default()
            .with_list(GROUP, LIST)
            .with_provenance_property(crm.provenance()),
    );
    config.validate().unwrap()
}

struct World {
    crm: Crm,
    sandbox: SandboxServer,
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    tenant: TenantId,
}

impl World {
    async fn start(crm: Crm) -> Self {
        let mut config = unlimited_sandbox();
        config.salesforce = config
            .salesforce
            .with_field("Contact", SF_PROVENANCE, FieldType::Text);
        let sandbox = SandboxServer::start(config).await.unwrap();
        let client = hubspot_client(sandbox.hubspot().base_url()).unwrap();
        client
            .create_contact_property(&PropertyCreate::cativa_groups(
                "contactinformation",
                HS_PROVENANCE,
            ))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = sync_store::connect(&dir.path().join("sync.db").to_string_lossy())
            .await
            .unwrap();
        Self {
            crm,
            sandbox,
            _dir: dir,
            store,
            tenant: TenantId::new("groups"),
        }
    }

    fn ports(&self) -> (Arc<dyn CrmSource>, Arc<dyn CrmSink>) {
        match self.crm {
            Crm::HubSpot => {
                let client = hubspot_client(self.sandbox.hubspot().base_url()).unwrap();
                let mapping = ContactMapping::default().with_properties([HS_PROVENANCE]);
                let source = HubSpotSource::new(client.clone(), SourceConfig::new(mapping));
                let mut sink_config = SinkConfig::default();
                // The sandbox has no cativa_user_id property: no user id stamp.
                sink_config.user_id_property = None;
                (
                    Arc::new(source),
                    Arc::new(HubSpotSink::new(client, sink_config)),
                )
            }
            Crm::Salesforce => {
                let client = SalesforceClient::builder()
                    .login_url(self.sandbox.salesforce().base_url())
                    .flow(OAuthFlow::refresh_token(
                        sync_sandbox::salesforce::DEFAULT_CLIENT_ID,
                        None,
                        SecretString::from(sync_sandbox::salesforce::DEFAULT_REFRESH_TOKEN),
                    ))
                    .build()
                    .unwrap();
                let schema = ContactSchema::contact().with_property(SF_PROVENANCE);
                (
                    Arc::new(SalesforceSource::new(client.clone(), schema.clone()).unwrap()),
                    Arc::new(SalesforceSink::new(client, schema).unwrap()),
                )
            }
        }
    }

    /// An engine; with the Cativa group members source when `members`.
    fn engine(&self, members: bool) -> SyncEngine {
        let (source, sink) = self.ports();
        let mut builder = SyncEngine::builder(groups_config(self.crm), self.store.clone())
            .source(source)
            .crm_sink(sink)
            .options(fast_options());
        if members {
            let cativa = cativa_client::CativaClient::builder(SecretString::from(
                sync_sandbox::cativa::DEFAULT_API_KEY,
            ))
            .base_url(self.sandbox.cativa().base_url())
            .preview_paths(PreviewPaths::default().with_group_members(MEMBERS_PATH))
            .build()
            .unwrap();
            builder = builder.community_groups(Arc::new(cativa));
        }
        builder.build()
    }

    /// Verifies `delivery` as the service's receiver would (user_created by its route, the
    /// group's listener by its automation id) and hands it to `engine`.
    async fn deliver(&self, engine: &SyncEngine, delivery: &WebhookDelivery) -> DeliveryOutcome {
        let cativa = self.sandbox.cativa();
        let secret = cativa.webhook_secret().clone();
        let mut receiver = WebhookReceiver::new(SignatureVerifier::new(secret.clone()).unwrap())
            .with_group_automation(cativa.group_automation_id(GROUP), GROUP);
        if delivery.event == "user_created" {
            receiver = receiver.with_event_type(EventType::UserCreated);
        }
        let (headers, body) = cativa_headers(delivery, &secret, &SignatureMode::Valid);
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.headers = headers;
        let verified = receiver.receive_now(&parts, body.as_bytes()).unwrap();
        let event = verified.to_community_event().unwrap();
        engine
            .handle_community_event(&self.tenant, verified.execution_id.as_str(), event)
            .await
            .unwrap()
    }

    /// A CRM contact (its id).
    fn contact(&self, email: &str) -> String {
        match self.crm {
            Crm::HubSpot => self
                .sandbox
                .hubspot()
                .insert_contact(BTreeMap::from([("email".to_owned(), email.to_owned())]))
                .unwrap()
                .to_string(),
            Crm::Salesforce => {
                let fields = json!({"LastName": "One", "Email": email});
                self.sandbox
                    .salesforce()
                    .insert_record("Contact", fields.as_object().unwrap().clone())
                    .unwrap()
            }
        }
    }

    /// A CRM contact and its community user, linked by a `user_created` delivery.
    async fn member(&self, engine: &SyncEngine, email: &str) -> (String, String) {
        let id = self.contact(email);
        let user = self.sandbox.cativa().sign_up(email, "Some", "One");
        let d = self
            .sandbox
            .cativa()
            .user_created_delivery(&user.id)
            .unwrap();
        let outcome = self.deliver(engine, &d).await;
        assert!(
            matches!(outcome, DeliveryOutcome::Accepted { .. }),
            "{outcome:?}"
        );
        (id, user.id)
    }

    /// The list's (campaign's) members, sorted.
    fn list_members(&self) -> Vec<String> {
        let mut out: Vec<String> = match self.crm {
            Crm::HubSpot => self
                .sandbox
                .hubspot()
                .lists()
                .into_iter()
                .find(|l| l.name == LIST)
                .map(|l| l.members.keys().map(ToString::to_string).collect())
                .unwrap_or_default(),
            Crm::Salesforce => {
                let sf = self.sandbox.salesforce();
                let Some(campaign) = self.campaign_id() else {
                    return Vec::new();
                };
                sf.records("CampaignMember")
                    .into_iter()
                    .filter(|r| r.deleted.is_none())
                    .filter(|r| r.fields.get("CampaignId") == Some(&json!(campaign)))
                    .filter_map(|r| r.fields.get("ContactId")?.as_str().map(str::to_owned))
                    .collect()
            }
        };
        out.sort();
        out
    }

    fn campaign_id(&self) -> Option<String> {
        let campaigns: Vec<_> = self
            .sandbox
            .salesforce()
            .records("Campaign")
            .into_iter()
            .filter(|r| r.deleted.is_none())
            .collect();
        assert!(campaigns.len() <= 1, "one campaign, never a duplicate");
        campaigns.first().map(|r| r.id.clone())
    }

    /// How many lists (campaigns) exist, and whether the first is one the API may edit.
    fn lists(&self) -> (usize, bool) {
        match self.crm {
            Crm::HubSpot => {
                let lists = self.sandbox.hubspot().lists();
                let manual = lists.first().is_some_and(|l| l.processing_type == "MANUAL");
                (lists.len(), manual)
            }
            Crm::Salesforce => (usize::from(self.campaign_id().is_some()), true),
        }
    }

    /// The CRM owner adds `id` to the list (campaign) by hand.
    fn add_by_hand(&self, id: &str) {
        match self.crm {
            Crm::HubSpot => {
                let list = self.sandbox.hubspot().lists()[0].list_id;
                self.sandbox
                    .hubspot()
                    .add_to_list(list, id.parse().unwrap())
                    .unwrap();
            }
            Crm::Salesforce => {
                let fields = json!({"CampaignId": self.campaign_id().unwrap(), "ContactId": id});
                self.sandbox
                    .salesforce()
                    .insert_record("CampaignMember", fields.as_object().unwrap().clone())
                    .unwrap();
            }
        }
    }

    fn provenance(&self, id: &str) -> String {
        match self.crm {
            Crm::HubSpot => {
                let c = self.sandbox.hubspot().contact(id.parse().unwrap()).unwrap();
                c.properties.get(HS_PROVENANCE).cloned().unwrap_or_default()
            }
            Crm::Salesforce => {
                let r = self.sandbox.salesforce().record(id).unwrap();
                r.fields
                    .get(SF_PROVENANCE)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            }
        }
    }
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// The whole story on one CRM.
async fn lists_follow_group_listeners(crm: Crm) {
    let w = World::start(crm).await;
    let engine = w.engine(true);
    let (alice, alice_user) = w.member(&engine, "alice@example.com").await;
    let (carol, carol_user) = w.member(&engine, "carol@example.com").await;
    let bob = w.contact("bob@example.com");
    assert_eq!(w.lists().0, 0);

    // Joining from the group's listener: the list is created and the contact added.
    for user in [&alice_user, &carol_user] {
        let d = w.sandbox.cativa().join_group(user, GROUP).unwrap();
        let DeliveryOutcome::Accepted { report } = w.deliver(&engine, &d).await else {
            panic!("not accepted");
        };
        assert_eq!(report.applied.get("add_to_list"), Some(&1), "{report:?}");
        assert_eq!(report.failed, 0, "{report:?}");
    }
    assert_eq!(w.lists(), (1, true));
    assert_eq!(w.list_members(), sorted(vec![alice.clone(), carol.clone()]));
    assert_eq!(w.provenance(&alice), GROUP);
    assert_eq!(w.provenance(&carol), GROUP);

    // The CRM owner adds bob and dave by hand; dave then joins the group: already a
    // member, so the membership stays the owner's (no provenance).
    w.add_by_hand(&bob);
    let (dave, dave_user) = w.member(&engine, "dave@example.com").await;
    w.add_by_hand(&dave);
    let d = w.sandbox.cativa().join_group(&dave_user, GROUP).unwrap();
    let DeliveryOutcome::Accepted { report } = w.deliver(&engine, &d).await else {
        panic!("not accepted");
    };
    assert_eq!(report.applied.get("add_to_list"), Some(&1), "{report:?}");
    assert_eq!(w.provenance(&dave), "");

    // Carol and dave leave the group (Cativa sends no event).
    w.sandbox.cativa().leave_group(&carol_user, GROUP);
    w.sandbox.cativa().leave_group(&dave_user, GROUP);
    let everyone = sorted(vec![
        alice.clone(),
        bob.clone(),
        carol.clone(),
        dave.clone(),
    ]);

    // Without a members source nothing is removed, and the report says why.
    let blind = w.engine(false);
    let report = blind.run_full_reconcile(&w.tenant).await.unwrap();
    assert!(
        report.notes.iter().any(|n| n.contains("group VIP")),
        "{report:?}"
    );
    assert_eq!(w.list_members(), everyone);

    // A dry run shows the removal with its reason and writes nothing.
    let dry = engine
        .plan(
            &w.tenant,
            PlanMode::FullReconcile {
                scan_complete: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(dry.count_of(ActionType::RemoveFromList), 1, "{dry}");
    assert_eq!(dry.count_of(ActionType::AddToList), 0, "{dry}");
    let line = dry
        .actions
        .iter()
        .map(|a| dry.describe(a))
        .find(|l| l.starts_with("- list"))
        .unwrap();
    assert!(line.contains("carol@example.com"), "{line}");
    assert!(line.contains("no longer a member of group VIP"), "{line}");
    assert_eq!(w.list_members(), everyone);

    // The reconcile removes carol (the sync's membership) and keeps bob and dave (the
    // owner's).
    let report = engine.run_full_reconcile(&w.tenant).await.unwrap();
    assert_eq!(
        report.applied.get("remove_from_list"),
        Some(&1),
        "{report:?}"
    );
    assert_eq!(report.failed, 0, "{report:?}");
    let kept = sorted(vec![alice.clone(), bob.clone(), dave.clone()]);
    assert_eq!(w.list_members(), kept);
    assert_eq!(w.provenance(&carol), "");
    assert_eq!(w.provenance(&alice), GROUP);

    // Settled: the next reconcile changes no list.
    let again = engine.run_full_reconcile(&w.tenant).await.unwrap();
    assert_eq!(again.applied.get("remove_from_list"), None, "{again:?}");
    assert_eq!(again.applied.get("add_to_list"), None, "{again:?}");
    assert_eq!(w.list_members(), kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_lists_follow_group_listeners_and_the_reconcile_removes_only_the_syncs_members() {
    lists_follow_group_listeners(Crm::HubSpot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_campaigns_follow_group_listeners_and_the_reconcile_removes_only_the_syncs_members()
 {
    lists_follow_group_listeners(Crm::Salesforce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_list_is_not_created_unless_allowed_and_the_error_says_what_to_do() {
    let w = World::start(Crm::HubSpot).await;
    let mut config = SyncConfig::default();
    let mut groups = GroupsConfig::default().with_list(GROUP, LIST);
    groups.create_lists = false;
    config.groups = Some(groups);
    let (source, sink) = w.ports();
    let engine = SyncEngine::builder(config.validate().unwrap(), w.store.clone())
        .source(source)
        .crm_sink(sink)
        .options(fast_options())
        .build();
    let (_, user) = w.member(&engine, "dora@example.com").await;
    let d = w.sandbox.cativa().join_group(&user, GROUP).unwrap();
    let DeliveryOutcome::Accepted { report } = w.deliver(&engine, &d).await else {
        panic!("not accepted");
    };
    assert_eq!(report.failed, 1, "{report:?}");
    let message = &report.failures[0].error;
    assert!(message.contains("create_lists"), "{message}");
    assert!(w.sandbox.hubspot().lists().is_empty());

    // An unlinked user's join adds nothing and the report says why.
    let stranger = w.sandbox.cativa().sign_up("eve@example.com", "Eve", "Two");
    let d = w.sandbox.cativa().join_group(&stranger.id, GROUP).unwrap();
    let DeliveryOutcome::Accepted { report } = w.deliver(&engine, &d).await else {
        panic!("not accepted");
    };
    assert_eq!(report.planned.get("add_to_list"), None, "{report:?}");
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("no linked CRM contact")),
        "{report:?}"
    );
}
