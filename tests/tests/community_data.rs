//! Community data in the CRM, end to end on the HubSpot and the Salesforce sandbox:
//! - `user_created` provisions the contact with the names the CRM sink is configured with
//!   (HubSpot `firstname`, Salesforce `FirstName`), the Cativa user id (HubSpot property,
//!   Salesforce External ID) and the tenant's `CustomerId`, and links both ids; a second
//!   delivery for the same email, and a contact that exists with another email case, never
//!   make a duplicate;
//! - the badge mirror property holds exactly the badges a user holds as the sync grants
//!   and removes them, and is left alone when a field mapping gives it to another owner;
//! - a full reconcile over a `CsvSource` (a HubSpot export of the sandbox's contacts)
//!   grants what the same reconcile over the API grants, with no HubSpot call;
//! - `sync_contact` reads one contact by email or record id, plans it, and applies the plan
//!   or (dry run) changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use cativa_client::sink::ApiBadgeSink;
use cativa_client::webhook::{EventType, SignatureVerifier, WebhookReceiver};
use cativa_crm_sync_tests::{
    PREMIUM, TAG, World, cativa_headers, config, fast_options, salesforce_schema, unlimited_sandbox,
};
use crm_hubspot::{HubSpotSink, SinkConfig};
use crm_salesforce::{OAuthFlow, SalesforceClient, SalesforceSink, SalesforceSource};
use secrecy::SecretString;
use sync_core::CrmRecordId;
use sync_core::ports::{CrmSink, CrmSource};
use sync_core::{CativaUserId, DeliveryOutcome};
use sync_engine::{ContactRef, DEFAULT_BADGES_PROPERTY, EngineOptions, SyncEngine, SyncMode};
use sync_sandbox::cativa::{SignatureMode, WebhookDelivery};
use sync_sandbox::datagen::DataGenConfig;
use sync_sandbox::salesforce::FieldType;

/// The Salesforce External ID field holding the Cativa user id (in the sandbox's schema).
const SF_EXTERNAL_ID: &str = "Cativa_Member_Id__c";
/// The Salesforce field the `CustomerId` goes to (added to the sandbox's schema).
const SF_CUSTOMER_ID: &str = "Cativa_Customer_Id__c";
/// The HubSpot property the `CustomerId` goes to (created by `ensure_sdk_properties`).
const HS_CUSTOMER_ID: &str = "cativa_customer_id";
/// The Salesforce multi-select picklist mirroring badges (added to the sandbox's schema).
const SF_BADGES: &str = "Cativa_Badges__c";
/// The sandbox's Speaker badge.
const SPEAKER: &str = "b0000000-0000-4000-8000-000000000002";

#[derive(Clone, Copy, Debug)]
enum Crm {
    HubSpot,
    Salesforce,
}

async fn start(contacts: usize) -> World {
    let mut sandbox = unlimited_sandbox();
    sandbox.salesforce = sandbox
        .salesforce
        .with_field("Contact", SF_CUSTOMER_ID, FieldType::Text)
        .with_field("Contact", SF_BADGES, FieldType::MultiPicklist);
    let data = DataGenConfig::default()
        .with_contacts(contacts)
        .with_seed(71)
        .with_duplicate_email_share(0.0);
    World::start_with(sandbox, data).await.unwrap()
}

fn salesforce_client(world: &World) -> SalesforceClient {
    SalesforceClient::builder()
        .login_url(world.sandbox.salesforce().base_url())
        .flow(OAuthFlow::refresh_token(
            sync_sandbox::salesforce::DEFAULT_CLIENT_ID,
            None,
            SecretString::from(sync_sandbox::salesforce::DEFAULT_REFRESH_TOKEN),
        ))
        .build()
        .unwrap()
}

/// The CRM's source and sink, configured to store the user id and the `CustomerId`.
async fn crm_ports(world: &World, crm: Crm) -> (Arc<dyn CrmSource>, Arc<dyn CrmSink>) {
    match crm {
        Crm::HubSpot => {
            let sink = HubSpotSink::new(
                world.hubspot.clone(),
                SinkConfig::default()
                    .with_customer_id_property(HS_CUSTOMER_ID)
                    .adding_options_to(DEFAULT_BADGES_PROPERTY),
            );
            sink.ensure_sdk_properties(
                "contactinformation",
                &[PREMIUM.to_owned(), SPEAKER.to_owned()],
            )
            .await
            .unwrap();
            (world.source(), Arc::new(sink))
        }
        Crm::Salesforce => {
            let schema = salesforce_schema(world.sandbox.salesforce().tags_field())
                .with_external_id_field(SF_EXTERNAL_ID)
                .with_customer_id_field(SF_CUSTOMER_ID);
            let client = salesforce_client(world);
            (
                Arc::new(SalesforceSource::new(client.clone(), schema.clone()).unwrap()),
                Arc::new(SalesforceSink::new(client, schema).unwrap()),
            )
        }
    }
}

async fn engine(world: &World, crm: Crm, options: EngineOptions) -> SyncEngine {
    engine_with(world, crm, options, config().unwrap()).await
}

async fn engine_with(
    world: &World,
    crm: Crm,
    options: EngineOptions,
    rules: sync_core::ValidatedConfig,
) -> SyncEngine {
    let (source, sink) = crm_ports(world, crm).await;
    SyncEngine::builder(rules, world.store.clone())
        .source(source)
        .crm_sink(sink)
        .badge_sink(Arc::new(ApiBadgeSink::new(
            world.tenant.clone(),
            world.cativa.clone(),
        )))
        .options(options)
        .build()
}

/// Verifies `delivery` as a receiver would and hands it to `engine`.
async fn deliver(
    world: &World,
    engine: &SyncEngine,
    delivery: &WebhookDelivery,
    event: EventType,
) -> DeliveryOutcome {
    let secret = world.sandbox.cativa().webhook_secret().clone();
    let receiver = WebhookReceiver::new(SignatureVerifier::new(secret.clone()).unwrap())
        .with_event_type(event);
    let (headers, body) = cativa_headers(delivery, &secret, &SignatureMode::Valid);
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.headers = headers;
    let verified = receiver.receive_now(&parts, body.as_bytes()).unwrap();
    let event = verified.to_community_event().unwrap();
    engine
        .handle_community_event(&world.tenant, verified.execution_id.as_str(), event)
        .await
        .unwrap()
}

/// The live CRM contacts with this email (any case): id and fields.
fn contacts(world: &World, crm: Crm, email: &str) -> Vec<(String, BTreeMap<String, String>)> {
    match crm {
        Crm::HubSpot => world
            .sandbox
            .hubspot()
            .contacts_by_email(email)
            .into_iter()
            .map(|c| {
                let props = c
                    .properties
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                (c.id.to_string(), props)
            })
            .collect(),
        Crm::Salesforce => world
            .sandbox
            .salesforce()
            .records_by_email("Contact", email)
            .into_iter()
            .map(|r| {
                let fields = r
                    .fields
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                    .collect();
                (r.id.clone(), fields)
            })
            .collect(),
    }
}

/// The names of the fields under test, per CRM: first name, user id, customer id.
fn names(crm: Crm) -> (&'static str, &'static str, &'static str) {
    match crm {
        Crm::HubSpot => ("firstname", "cativa_user_id", HS_CUSTOMER_ID),
        Crm::Salesforce => ("FirstName", SF_EXTERNAL_ID, SF_CUSTOMER_ID),
    }
}

async fn linked_crm_id(world: &World, user: &str) -> Option<String> {
    world
        .store
        .mapping_by_user(&world.tenant, &CativaUserId::from(user))
        .await
        .unwrap()
        .and_then(|m| m.crm_id)
        .map(|id| id.id)
}

async fn provisions_once(crm: Crm) {
    let world = start(5).await;
    let engine = engine(&world, crm, fast_options()).await;
    let cativa = world.sandbox.cativa();
    let (first_name, user_id, customer_id) = names(crm);

    // A new user: the contact appears with the sink's field names and both ids.
    let user = cativa.sign_up("new.member@provision.example.org", "Nova", "Member");
    let delivery = cativa.user_created_delivery(&user.id).unwrap();
    let outcome = deliver(&world, &engine, &delivery, EventType::UserCreated).await;
    assert!(
        matches!(outcome, DeliveryOutcome::Accepted { .. }),
        "{outcome:?}"
    );
    let found = contacts(&world, crm, "new.member@provision.example.org");
    assert_eq!(found.len(), 1, "{crm:?}: one contact: {found:?}");
    let (id, fields) = &found[0];
    assert_eq!(fields.get(first_name).map(String::as_str), Some("Nova"));
    assert_eq!(fields.get(user_id), Some(&user.id), "{fields:?}");
    assert_eq!(
        fields.get(customer_id).map(String::as_str),
        Some(cativa.customer_id())
    );
    assert_eq!(linked_crm_id(&world, &user.id).await.as_ref(), Some(id));

    // The same sign-up delivered again (a new execution): still one contact.
    let again = cativa.user_created_delivery(&user.id).unwrap();
    deliver(&world, &engine, &again, EventType::UserCreated).await;
    assert_eq!(
        contacts(&world, crm, "new.member@provision.example.org").len(),
        1
    );

    // A contact that exists with another email case is linked and stamped, not copied.
    let existing = match crm {
        Crm::HubSpot => world
            .sandbox
            .hubspot()
            .insert_contact(BTreeMap::from([
                (
                    "email".to_owned(),
                    "Old.Timer@Provision.Example.org".to_owned(),
                ),
                ("firstname".to_owned(), "Old".to_owned()),
            ]))
            .unwrap()
            .to_string(),
        Crm::Salesforce => {
            let mut fields = serde_json::Map::new();
            fields.insert("Email".into(), "Old.Timer@Provision.Example.org".into());
            fields.insert("LastName".into(), "Timer".into());
            world
                .sandbox
                .salesforce()
                .insert_record("Contact", fields)
                .unwrap()
        }
    };
    let user = cativa.sign_up("old.timer@provision.example.org", "Old", "Timer");
    let delivery = cativa.user_created_delivery(&user.id).unwrap();
    deliver(&world, &engine, &delivery, EventType::UserCreated).await;
    let found = contacts(&world, crm, "old.timer@provision.example.org");
    assert_eq!(found.len(), 1, "{crm:?}: no duplicate: {found:?}");
    assert_eq!(found[0].0, existing);
    assert_eq!(found[0].1.get(user_id), Some(&user.id), "{:?}", found[0].1);
    assert_eq!(linked_crm_id(&world, &user.id).await, Some(existing));
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_provisioning_uses_the_sinks_names_and_never_duplicates() {
    provisions_once(Crm::HubSpot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_provisioning_uses_the_sinks_names_and_never_duplicates() {
    provisions_once(Crm::Salesforce).await;
}

fn badges_property(crm: Crm) -> &'static str {
    match crm {
        Crm::HubSpot => DEFAULT_BADGES_PROPERTY,
        Crm::Salesforce => SF_BADGES,
    }
}

fn mirror_options(crm: Crm) -> EngineOptions {
    let mut options = fast_options();
    options.crm_badges_property = Some(badges_property(crm).to_owned());
    options
}

/// A community member with a CRM contact and no tags: (user id, email, contact id).
async fn member(world: &World, crm: Crm) -> (String, String, String) {
    world.record_users().await.unwrap();
    let users = world.users_by_email();
    let person = world
        .people
        .iter()
        .find(|p| p.in_community && p.tags.is_empty() && users.contains_key(&p.normalized_email()))
        .unwrap();
    let email = person.normalized_email();
    let (id, _) = contacts(world, crm, &email).remove(0);
    (users[&email].clone(), email, id)
}

fn set_tag(world: &World, crm: Crm, id: &str, on: bool) {
    match (crm, on) {
        (Crm::HubSpot, true) => world.sandbox.hubspot().add_tag(id.parse().unwrap(), TAG),
        (Crm::HubSpot, false) => world.sandbox.hubspot().remove_tag(id.parse().unwrap(), TAG),
        (Crm::Salesforce, true) => world.sandbox.salesforce().add_tag(id, TAG),
        (Crm::Salesforce, false) => world.sandbox.salesforce().remove_tag(id, TAG),
    }
    .unwrap();
}

/// The mirror property's badges on the member's contact, sorted.
fn mirrored(world: &World, crm: Crm, email: &str) -> Vec<String> {
    let (_, fields) = contacts(world, crm, email).remove(0);
    let mut held: Vec<String> = fields
        .get(badges_property(crm))
        .map(|v| {
            v.split(';')
                .filter(|b| !b.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    held.sort();
    held
}

async fn mirror_follows_the_held_badges(crm: Crm) {
    let world = start(20).await;
    let (user, email, id) = member(&world, crm).await;
    let engine = engine(&world, crm, mirror_options(crm)).await;
    assert!(mirrored(&world, crm, &email).is_empty());

    // The sync grants Premium: the mirror shows it.
    set_tag(&world, crm, &id, true);
    engine.run_full_reconcile(&world.tenant).await.unwrap();
    assert_eq!(mirrored(&world, crm, &email), vec![PREMIUM.to_owned()]);

    // A badge granted elsewhere arrives by webhook: the mirror holds both.
    let cativa = world.sandbox.cativa();
    cativa.grant_badge_elsewhere(&user, SPEAKER).unwrap();
    let delivery = cativa.user_received_badge_delivery(&user, SPEAKER).unwrap();
    deliver(&world, &engine, &delivery, EventType::UserReceivedBadge).await;
    assert_eq!(
        mirrored(&world, crm, &email),
        vec![PREMIUM.to_owned(), SPEAKER.to_owned()]
    );

    // The sync removes Premium: the mirror keeps only what the user still holds.
    set_tag(&world, crm, &id, false);
    engine.run_full_reconcile(&world.tenant).await.unwrap();
    assert_eq!(mirrored(&world, crm, &email), vec![SPEAKER.to_owned()]);
    let counts = world.store.outbox_counts(&world.tenant).await.unwrap();
    assert_eq!(counts.failed, 0, "{counts:?}");
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_badge_mirror_holds_exactly_the_held_badges() {
    mirror_follows_the_held_badges(Crm::HubSpot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_badge_mirror_holds_exactly_the_held_badges() {
    mirror_follows_the_held_badges(Crm::Salesforce).await;
}

/// A field mapping that leaves the mirror property to a CRM administrator: the sync grants
/// the badge but never writes the property, so the administrator's value stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_property_owned_elsewhere_is_not_clobbered() {
    let crm = Crm::HubSpot;
    let world = start(20).await;
    let (user, email, id) = member(&world, crm).await;
    let toml = format!(
        "{}\n[[fields]]\ncommunity = \"crm_badges\"\ncrm = \"{DEFAULT_BADGES_PROPERTY}\"\nrule = \"never\"\nowner = {{ external = \"crm-admin\" }}\n",
        cativa_crm_sync_tests::DEFAULT_CONFIG
    );
    let rules = sync_core::SyncConfig::from_toml_str(&toml)
        .unwrap()
        .validate()
        .unwrap();
    let engine = engine_with(&world, crm, mirror_options(crm), rules).await;
    world
        .sandbox
        .hubspot()
        .set_property(id.parse().unwrap(), DEFAULT_BADGES_PROPERTY, SPEAKER)
        .unwrap();
    set_tag(&world, crm, &id, true);
    engine.run_full_reconcile(&world.tenant).await.unwrap();
    assert!(
        world.premium_holders().contains(&user),
        "the badge is granted"
    );
    assert_eq!(mirrored(&world, crm, &email), vec![SPEAKER.to_owned()]);
    world.shutdown().await;
}

async fn one_contact_syncs_on_request(crm: Crm) {
    let world = start(20).await;
    let (user, email, id) = member(&world, crm).await;
    let engine = engine(&world, crm, fast_options()).await;
    set_tag(&world, crm, &id, true);
    let before = world.store.outbox_counts(&world.tenant).await.unwrap();

    // Test mapping: the plan grants Premium, and nothing is written anywhere.
    let email_ref = ContactRef::Email(email.parse().unwrap());
    let dry = engine
        .sync_contact(&world.tenant, email_ref, SyncMode::DryRun)
        .await
        .unwrap();
    assert_eq!(
        dry.contact.as_ref().map(|c| c.id.id.as_str()),
        Some(id.as_str())
    );
    let kinds: Vec<&str> = dry.plan.actions.iter().map(|a| a.kind.name()).collect();
    assert!(kinds.contains(&"assign_badge"), "{kinds:?}");
    assert_eq!(dry.report.read, 1);
    assert_eq!(dry.report.applied_total(), 0);
    assert!(!world.premium_holders().contains(&user));
    assert_eq!(
        world.store.outbox_counts(&world.tenant).await.unwrap(),
        before
    );

    // Sync now, by record id: the badge is granted.
    let record = match crm {
        Crm::HubSpot => CrmRecordId::hubspot(id.clone()),
        Crm::Salesforce => CrmRecordId::salesforce(id.clone()),
    };
    let done = engine
        .sync_contact(&world.tenant, ContactRef::CrmId(record), SyncMode::Apply)
        .await
        .unwrap();
    assert_eq!(
        done.report.applied.get("assign_badge"),
        Some(&1),
        "{:?}",
        done.report
    );
    assert!(world.premium_holders().contains(&user));

    // Again: nothing left to do. And an unknown contact is found missing, not an error.
    let again = engine
        .sync_contact(
            &world.tenant,
            ContactRef::Email(email.parse().unwrap()),
            SyncMode::Apply,
        )
        .await
        .unwrap();
    assert!(
        !again
            .plan
            .actions
            .iter()
            .any(|a| a.kind.name() == "assign_badge"),
        "{:?}",
        again.plan.actions
    );
    let nobody = engine
        .sync_contact(
            &world.tenant,
            ContactRef::Email("nobody@single.example.org".parse().unwrap()),
            SyncMode::DryRun,
        )
        .await
        .unwrap();
    assert!(nobody.contact.is_none() && nobody.plan.actions.is_empty());
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_sync_contact_dry_runs_and_applies() {
    one_contact_syncs_on_request(Crm::HubSpot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_sync_contact_dry_runs_and_applies() {
    one_contact_syncs_on_request(Crm::Salesforce).await;
}

/// A quoted CSV field.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_from_a_hubspot_export_grants_what_the_api_would() {
    let world = start(60).await;
    world.record_users().await.unwrap();
    let tags = world.sandbox.hubspot().tags_property().to_owned();
    let mut export = String::from("\u{feff}Record ID,Email,Community Tags,Last Modified Date\n");
    for c in world.sandbox.hubspot().contacts() {
        if c.archived {
            continue;
        }
        export.push_str(&format!(
            "{},{},{},{}\n",
            c.id,
            quoted(c.email().unwrap_or_default()),
            quoted(c.property(&tags).unwrap_or_default()),
            c.updated_at.format("%Y-%m-%d %H:%M:%S")
        ));
    }
    let layout = sync_core::csv_source::CsvLayout::hubspot().with_tags("Community Tags", ';');
    let source = sync_core::csv_source::CsvSource::from_reader(&layout, export.as_bytes()).unwrap();
    assert!(source.issues().is_empty(), "{:?}", source.issues());
    let engine = SyncEngine::builder(config().unwrap(), world.store.clone())
        .source(Arc::new(source))
        .badge_sink(Arc::new(ApiBadgeSink::new(
            world.tenant.clone(),
            world.cativa.clone(),
        )))
        .options(fast_options())
        .build();
    world.sandbox.reset_requests();
    let report = engine.run_full_reconcile(&world.tenant).await.unwrap();
    assert_eq!(report.scan_complete, Some(true));
    assert_eq!(
        world.sandbox.hubspot().requests().total(),
        0,
        "no HubSpot call"
    );
    let expected = world.expected_premium();
    assert!(!expected.is_empty());
    cativa_crm_sync_tests::assert_same_users("premium", &world.premium_holders(), &expected);
    world.shutdown().await;
}
