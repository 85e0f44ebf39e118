//! Identity and checkpoints end to end, on the HubSpot and the Salesforce sandbox:
//! - a holder whose email a contact linked to another user takes keeps its own row (matched
//!   by CRM id), so removing its tag removes its badge;
//! - a full reconcile leaves a checkpoint, so the first delta after it reads only what changed.
//!
//! The sandboxes share a manual clock with the engine, so "what changed since" is exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use cativa_client::sink::ApiBadgeSink;
use cativa_crm_sync_tests::{
    TAG, World, config, fast_options, salesforce_schema, unlimited_sandbox,
};
use chrono::{DateTime, Utc};
use crm_salesforce::{OAuthFlow, SalesforceClient, SalesforceSource};
use secrecy::SecretString;
use sync_core::ports::CrmSource;
use sync_core::{CrmRecordId, Mapping};
use sync_engine::SyncEngine;
use sync_sandbox::datagen::{DataGenConfig, GeneratedContact};
use sync_sandbox::{Clock, ManualClock};

/// The engine reads the sandboxes' clock.
struct SharedClock(Arc<ManualClock>);

impl sync_engine::Clock for SharedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.now_utc()
    }
}

#[derive(Clone, Copy, Debug)]
enum Crm {
    HubSpot,
    Salesforce,
}

async fn start(contacts: usize, seed: u64) -> (World, Arc<ManualClock>) {
    // Starts at the real time: the signed user_created deliveries are checked for age.
    let clock = Arc::new(ManualClock::starting_at_epoch_ms(
        Utc::now().timestamp_millis(),
    ));
    let data = DataGenConfig::default()
        .with_contacts(contacts)
        .with_seed(seed)
        .with_duplicate_email_share(0.0);
    let world = World::start_with(unlimited_sandbox().with_clock(clock.clone()), data)
        .await
        .unwrap();
    world.record_users().await.unwrap();
    (world, clock)
}

fn source(world: &World, crm: Crm) -> Arc<dyn CrmSource> {
    match crm {
        Crm::HubSpot => world.source(),
        Crm::Salesforce => {
            let client = SalesforceClient::builder()
                .login_url(world.sandbox.salesforce().base_url())
                .flow(OAuthFlow::refresh_token(
                    sync_sandbox::salesforce::DEFAULT_CLIENT_ID,
                    None,
                    SecretString::from(sync_sandbox::salesforce::DEFAULT_REFRESH_TOKEN),
                ))
                .build()
                .unwrap();
            Arc::new(
                SalesforceSource::new(
                    client,
                    salesforce_schema(world.sandbox.salesforce().tags_field()),
                )
                .unwrap(),
            )
        }
    }
}

fn engine(world: &World, crm: Crm, clock: &Arc<ManualClock>) -> SyncEngine {
    SyncEngine::builder(config().unwrap(), world.store.clone())
        .source(source(world, crm))
        .badge_sink(Arc::new(ApiBadgeSink::new(
            world.tenant.clone(),
            world.cativa.clone(),
        )))
        .clock(Arc::new(SharedClock(clock.clone())))
        .options(fast_options())
        .build()
}

/// The CRM record of a generated person.
fn record_of(world: &World, crm: Crm, person: &GeneratedContact) -> String {
    match crm {
        Crm::HubSpot => world
            .sandbox
            .hubspot()
            .contacts_by_email(&person.email)
            .first()
            .map(|c| c.id.to_string())
            .unwrap(),
        Crm::Salesforce => world
            .sandbox
            .salesforce()
            .records_by_email("Contact", &person.email)
            .first()
            .map(|r| r.id.clone())
            .unwrap(),
    }
}

fn add_tag(world: &World, crm: Crm, id: &str, tag: &str) {
    match crm {
        Crm::HubSpot => world
            .sandbox
            .hubspot()
            .add_tag(id.parse().unwrap(), tag)
            .unwrap(),
        Crm::Salesforce => world.sandbox.salesforce().add_tag(id, tag).unwrap(),
    }
}

fn remove_tag(world: &World, crm: Crm, id: &str, tag: &str) {
    match crm {
        Crm::HubSpot => world
            .sandbox
            .hubspot()
            .remove_tag(id.parse().unwrap(), tag)
            .unwrap(),
        Crm::Salesforce => world.sandbox.salesforce().remove_tag(id, tag).unwrap(),
    }
}

/// Two community members with their own contacts: a Premium holder and an untagged one.
fn holder_and_other(world: &World) -> (GeneratedContact, GeneratedContact) {
    let tagged = |p: &GeneratedContact| p.tags.iter().any(|t| t == TAG);
    let mut members = world.people.iter().filter(|p| p.in_community);
    let a = members.clone().find(|p| tagged(p)).unwrap().clone();
    let b = members
        .find(|p| !tagged(p) && p.tags.is_empty())
        .unwrap()
        .clone();
    (a, b)
}

async fn holder_keeps_its_row_when_a_linked_contact_takes_its_email(crm: Crm) {
    let (world, clock) = start(40, 22).await;
    let engine = engine(&world, crm, &clock);
    let users = world.users_by_email();
    let (a, b) = holder_and_other(&world);
    let ua = users[&a.normalized_email()].clone();
    let ub = users[&b.normalized_email()].clone();

    let full = engine.run_full_reconcile(&world.tenant).await.unwrap();
    assert_eq!(full.failed, 0, "{full}");
    assert!(world.premium_holders().contains(&ua), "A holds Premium");
    let a_id = record_of(&world, crm, &a);
    let b_before = record_of(&world, crm, &b);

    // B, linked to UB, comes to carry A's email; then A's tag is removed and B is edited
    // again, so B is the newest contact with that email.
    clock.advance(Duration::from_secs(60));
    match crm {
        Crm::Salesforce => {
            world
                .sandbox
                .salesforce()
                .set_field(
                    &b_before,
                    "Email",
                    serde_json::Value::String(a.email.clone()),
                )
                .unwrap();
        }
        Crm::HubSpot => {
            // HubSpot refuses to give a contact an email another contact has; an imported
            // duplicate carries it instead, linked to UB's row as an earlier link left it.
            let b_id = world
                .sandbox
                .hubspot()
                .insert_contact([("email".to_owned(), a.email.clone())].into())
                .unwrap();
            let row = world
                .store
                .mapping_by_user(&world.tenant, &sync_core::CativaUserId::from(ub.clone()))
                .await
                .unwrap()
                .unwrap();
            let mut row: Mapping = row;
            // The row moves to the imported duplicate, as linking it would have.
            row.crm_id = Some(CrmRecordId::hubspot(b_id.to_string()));
            world.store.put_mapping(&world.tenant, &row).await.unwrap();
        }
    }
    clock.advance(Duration::from_secs(60));
    remove_tag(&world, crm, &a_id, TAG);
    clock.advance(Duration::from_secs(60));
    let b_now = match crm {
        Crm::Salesforce => b_before,
        Crm::HubSpot => world
            .sandbox
            .hubspot()
            .contacts_by_email(&a.email)
            .into_iter()
            .map(|c| c.id.to_string())
            .find(|id| *id != a_id)
            .unwrap(),
    };
    add_tag(&world, crm, &b_now, "VIP");
    clock.advance(Duration::from_secs(60));

    let delta = engine.run_delta(&world.tenant).await.unwrap();
    assert_eq!(delta.failed, 0, "{delta}");
    assert_eq!(delta.applied.get("remove_badge"), Some(&1), "{delta}");
    let holders = world.premium_holders();
    assert!(!holders.contains(&ua), "A is untagged: UA loses Premium");
    assert!(!holders.contains(&ub), "B is untagged: UB gets nothing");

    // A full reconcile agrees: nothing left to do.
    clock.advance(Duration::from_secs(60));
    let full = engine.run_full_reconcile(&world.tenant).await.unwrap();
    assert_eq!(full.applied_total(), 0, "{full}");
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_holder_keeps_its_row_when_a_linked_contact_takes_its_email() {
    holder_keeps_its_row_when_a_linked_contact_takes_its_email(Crm::HubSpot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_holder_keeps_its_row_when_a_linked_contact_takes_its_email() {
    holder_keeps_its_row_when_a_linked_contact_takes_its_email(Crm::Salesforce).await;
}

async fn first_delta_after_a_full_reads_only_what_changed(crm: Crm) {
    let (world, clock) = start(120, 23).await;
    let engine = engine(&world, crm, &clock);
    clock.advance(Duration::from_secs(3600));
    let full = engine.run_full_reconcile(&world.tenant).await.unwrap();
    assert_eq!((full.read, full.failed), (120, 0), "{full}");
    let checkpoint = full
        .checkpoint
        .clone()
        .expect("a full run leaves a checkpoint");
    assert_eq!(
        checkpoint.modified_at,
        clock.now_utc() - fast_options().overlap,
        "the scan's start minus the overlap"
    );

    clock.advance(Duration::from_secs(3600));
    let (a, b) = holder_and_other(&world);
    let a_id = record_of(&world, crm, &a);
    let b_id = record_of(&world, crm, &b);
    remove_tag(&world, crm, &a_id, TAG);
    add_tag(&world, crm, &b_id, TAG);
    clock.advance(Duration::from_secs(60));

    let delta = engine.run_delta(&world.tenant).await.unwrap();
    assert_eq!(delta.read, 2, "only the two changed contacts: {delta}");
    assert_eq!(delta.applied.get("remove_badge"), Some(&1), "{delta}");
    assert_eq!(delta.applied.get("assign_badge"), Some(&1), "{delta}");
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_first_delta_after_a_full_reconcile_reads_only_what_changed() {
    first_delta_after_a_full_reads_only_what_changed(Crm::HubSpot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_first_delta_after_a_full_reconcile_reads_only_what_changed() {
    first_delta_after_a_full_reads_only_what_changed(Crm::Salesforce).await;
}
