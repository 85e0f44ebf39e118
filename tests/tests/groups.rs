//! Groups as lists, end to end on the sandbox:
//! - a `user_joined_group` delivery from a group's own listener (the payload names no group;
//!   the receiver maps the listener's automation id to the group) puts the user's contact
//!   in the group's HubSpot MANUAL list, created on request, and records the group in the
//!   contact's `cativa_groups` provenance;
//! - a member the CRM owner added to the list by hand stays after a full reconcile;
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
use secrecy::SecretString;
use sync_core::config::{GroupsConfig, SyncConfig};
use sync_core::ports::Store;
use sync_core::{ActionType, DeliveryOutcome, PlanMode, TenantId};
use sync_engine::SyncEngine;
use sync_sandbox::SandboxServer;
use sync_sandbox::cativa::{SignatureMode, WebhookDelivery};

const GROUP: &str = "VIP";
const LIST: &str = "Cativa: VIP";
const PROVENANCE: &str = "cativa_groups";
const MEMBERS_PATH: &str = "/social/v1/groups/{group}/members";

fn groups_config() -> sync_core::ValidatedConfig {
    let mut config = SyncConfig::default();
    config.groups = Some(GroupsConfig::default().with_list(GROUP, LIST));
    config.validate().unwrap()
}

struct World {
    sandbox: SandboxServer,
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    tenant: TenantId,
}

impl World {
    async fn start() -> Self {
        let sandbox = SandboxServer::start(unlimited_sandbox()).await.unwrap();
        let client = hubspot_client(sandbox.hubspot().base_url()).unwrap();
        client
            .create_contact_property(&PropertyCreate::cativa_groups(
                "contactinformation",
                PROVENANCE,
            ))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = sync_store::connect(&dir.path().join("sync.db").to_string_lossy())
            .await
            .unwrap();
        Self {
            sandbox,
            _dir: dir,
            store,
            tenant: TenantId::new("groups"),
        }
    }

    /// An engine on HubSpot; with the Cativa group members source when `members`.
    fn hubspot_engine(&self, members: bool) -> SyncEngine {
        let client = hubspot_client(self.sandbox.hubspot().base_url()).unwrap();
        let mapping = ContactMapping::default().with_properties([PROVENANCE]);
        let source = HubSpotSource::new(client.clone(), SourceConfig::new(mapping));
        let mut sink_config = SinkConfig::default();
        // The sandbox has no cativa_user_id property: no user id stamp.
        sink_config.user_id_property = None;
        let sink = HubSpotSink::new(client, sink_config);
        let mut builder = SyncEngine::builder(groups_config(), self.store.clone())
            .source(Arc::new(source))
            .crm_sink(Arc::new(sink))
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

    /// A HubSpot contact and its community user, linked by a `user_created` delivery.
    async fn member(&self, engine: &SyncEngine, email: &str) -> (u64, String) {
        let id = self
            .sandbox
            .hubspot()
            .insert_contact(BTreeMap::from([("email".to_owned(), email.to_owned())]))
            .unwrap();
        let user = self.sandbox.cativa().sign_up(email, "Some", "One");
        let d = self.sandbox.cativa().user_created_delivery(&user.id).unwrap();
        let outcome = self.deliver(engine, &d).await;
        assert!(matches!(outcome, DeliveryOutcome::Accepted { .. }), "{outcome:?}");
        (id, user.id)
    }

    fn list_members(&self) -> Vec<u64> {
        self.sandbox
            .hubspot()
            .lists()
            .into_iter()
            .find(|l| l.name == LIST)
            .map(|l| l.members.keys().copied().collect())
            .unwrap_or_default()
    }

    fn provenance(&self, id: u64) -> String {
        let c = self.sandbox.hubspot().contact(id).unwrap();
        c.properties.get(PROVENANCE).cloned().unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_lists_follow_group_listeners_and_the_reconcile_removes_only_the_syncs_members()
{
    let w = World::start().await;
    let engine = w.hubspot_engine(true);
    let (alice, alice_user) = w.member(&engine, "alice@example.com").await;
    let (carol, carol_user) = w.member(&engine, "carol@example.com").await;
    let bob = w
        .sandbox
        .hubspot()
        .insert_contact(BTreeMap::from([(
            "email".to_owned(),
            "bob@example.com".to_owned(),
        )]))
        .unwrap();
    assert!(w.sandbox.hubspot().lists().is_empty());

    // Joining from the group's listener: the list is created and the contact added.
    for user in [&alice_user, &carol_user] {
        let d = w.sandbox.cativa().join_group(user, GROUP).unwrap();
        let DeliveryOutcome::Accepted { report } = w.deliver(&engine, &d).await else {
            panic!("not accepted");
        };
        assert_eq!(report.applied.get("add_to_list"), Some(&1), "{report:?}");
        assert_eq!(report.failed, 0, "{report:?}");
    }
    let lists = w.sandbox.hubspot().lists();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].processing_type, "MANUAL");
    assert_eq!(w.list_members(), vec![alice, carol]);
    assert_eq!(w.provenance(alice), GROUP);
    assert_eq!(w.provenance(carol), GROUP);

    // The CRM owner adds bob by hand; carol leaves the group (Cativa sends no event).
    w.sandbox
        .hubspot()
        .add_to_list(lists[0].list_id, bob)
        .unwrap();
    w.sandbox.cativa().leave_group(&carol_user, GROUP);

    // Without a members source nothing is removed, and the report says why.
    let blind = w.hubspot_engine(false);
    let report = blind.run_full_reconcile(&w.tenant).await.unwrap();
    assert!(
        report.notes.iter().any(|n| n.contains("group VIP")),
        "{report:?}"
    );
    assert_eq!(w.list_members(), vec![alice, carol, bob]);

    // A dry run shows the removal with its reason and writes nothing.
    let dry = engine
        .plan(&w.tenant, PlanMode::FullReconcile { scan_complete: false })
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
    assert_eq!(w.list_members(), vec![alice, carol, bob]);

    // The reconcile removes carol (the sync's membership) and keeps bob (the owner's).
    let report = engine.run_full_reconcile(&w.tenant).await.unwrap();
    assert_eq!(report.applied.get("remove_from_list"), Some(&1), "{report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(w.list_members(), vec![alice, bob]);
    assert_eq!(w.provenance(carol), "");
    assert_eq!(w.provenance(alice), GROUP);

    // Settled: the next reconcile changes no list.
    let again = engine.run_full_reconcile(&w.tenant).await.unwrap();
    assert_eq!(again.applied.get("remove_from_list"), None, "{again:?}");
    assert_eq!(again.applied.get("add_to_list"), None, "{again:?}");
    assert_eq!(w.list_members(), vec![alice, bob]);
}
