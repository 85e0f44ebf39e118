//! Companies and accounts, end to end on the HubSpot sandbox:
//! - a full reconcile of 10,000 contacts over 250 company domains finds or creates each
//!   company once (at most ceil(250/100) company searches and as many batch creates), then
//!   associates the contacts in v4 batches of 100 and records the provenance; free-mail
//!   contacts get no company; a second reconcile plans nothing;
//! - ownership: a contact the CRM owner placed in another company is never moved, a
//!   contact the sync placed moves when its domain changes, and a dry run shows the
//!   actions and writes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cativa_crm_sync_tests::{fast_options, hubspot_client, unlimited_sandbox};
use crm_hubspot::model::PropertyCreate;
use crm_hubspot::{ContactMapping, HubSpotSink, HubSpotSource, SinkConfig, SourceConfig};
use sync_core::config::{CompanyConfig, SyncConfig};
use sync_core::{ActionType, PlanMode, TenantId};
use sync_engine::SyncEngine;
use sync_sandbox::SandboxServer;
use sync_sandbox::hubspot::HubSpotSandbox;

const CURRENT: &str = "associatedcompanyid";
const PROVENANCE: &str = "cativa_company";

fn companies_config() -> sync_core::ValidatedConfig {
    let mut config = SyncConfig::default();
    config.companies = Some(CompanyConfig::new(CURRENT, PROVENANCE));
    config.validate().unwrap()
}

struct Setup {
    sandbox: SandboxServer,
    _dir: tempfile::TempDir,
    engine: SyncEngine,
    tenant: TenantId,
}

impl Setup {
    fn hubspot(&self) -> &HubSpotSandbox {
        self.sandbox.hubspot()
    }
}

/// A sandbox seeded with `emails`, the provenance property created, an engine with
/// companies on.
async fn setup(emails: &[String]) -> (Setup, Vec<u64>) {
    let sandbox = SandboxServer::start(unlimited_sandbox()).await.unwrap();
    let ids = emails
        .iter()
        .map(|e| {
            sandbox
                .hubspot()
                .insert_contact(BTreeMap::from([("email".to_owned(), e.clone())]))
                .unwrap()
        })
        .collect();
    let client = hubspot_client(sandbox.hubspot().base_url()).unwrap();
    client
        .create_contact_property(&PropertyCreate::cativa_company(
            "contactinformation",
            PROVENANCE,
        ))
        .await
        .unwrap();
    let mapping = ContactMapping::default().with_properties([CURRENT, PROVENANCE]);
    let source = HubSpotSource::new(client.clone(), SourceConfig::new(mapping));
    let sink = HubSpotSink::new(client, SinkConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let store = sync_store::connect(&dir.path().join("sync.db").to_string_lossy())
        .await
        .unwrap();
    let engine = SyncEngine::builder(companies_config(), store)
        .source(Arc::new(source))
        .crm_sink(Arc::new(sink))
        .options(fast_options())
        .build();
    let setup = Setup {
        sandbox,
        _dir: dir,
        engine,
        tenant: TenantId::new("companies"),
    };
    (setup, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_reconcile_of_10000_contacts_finds_or_creates_each_company_once() {
    const CONTACTS: usize = 10_000;
    const COMPANIES: usize = 250;
    let mut emails: Vec<String> = (0..CONTACTS)
        .map(|i| format!("person{i}@company{}.example.com", i % COMPANIES))
        .collect();
    // Free mail never becomes a company.
    emails.extend((0..50).map(|i| format!("someone{i}@gmail.com")));
    let (s, ids) = setup(&emails).await;
    // One company exists already: found, not created again.
    let existing = s
        .hubspot()
        .insert_company("company7.example.com", "Company Seven");
    s.hubspot().reset_requests();

    let report = s.engine.run_full_reconcile(&s.tenant).await.unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(
        report.applied.get("associate_company"),
        Some(&(CONTACTS as u64))
    );

    let calls = s.hubspot().requests();
    let batches = COMPANIES.div_ceil(100) as u64;
    let searches = calls.count_matching("companies/search");
    let creates = calls.count_matching("companies/batch/create");
    let associations =
        calls.count_matching("associations/{fromObjectType}/{toObjectType}/batch/create");
    println!(
        "companies: {searches} searches, {creates} batch creates, {associations} association batches, {} contact batch updates",
        calls.count_matching("contacts/batch/update")
    );
    assert!(
        searches <= batches,
        "{searches} company searches for {COMPANIES} companies"
    );
    assert!(
        creates <= batches,
        "{creates} company batch creates for {COMPANIES} companies"
    );
    assert_eq!(associations, CONTACTS.div_ceil(100) as u64);

    let companies = s.hubspot().companies();
    let domains: BTreeSet<_> = companies.iter().filter_map(|c| c.domain()).collect();
    assert_eq!(
        companies.len(),
        COMPANIES,
        "one company per domain, never a duplicate"
    );
    assert_eq!(domains.len(), COMPANIES);
    assert!(!domains.iter().any(|d| d.contains("gmail")));
    // Contact 7 joins the company that existed.
    assert_eq!(s.hubspot().contact_companies(ids[7]), vec![(existing, 1)]);
    let seven = s.hubspot().contact(ids[7]).unwrap();
    assert_eq!(seven.property(CURRENT), Some(existing.to_string().as_str()));
    assert_eq!(
        seven.property(PROVENANCE),
        Some(format!("{existing}|company7.example.com").as_str())
    );
    assert!(s.hubspot().contact_companies(ids[CONTACTS]).is_empty());

    // Fixpoint: nothing left to do.
    let again = s
        .engine
        .plan(
            &s.tenant,
            PlanMode::FullReconcile {
                scan_complete: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(again.count_of(ActionType::AssociateCompany), 0, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_company_is_never_replaced_and_the_syncs_own_moves_with_the_domain() {
    let emails = vec![
        "owned@acme.com".to_owned(),
        "free@acme.com".to_owned(),
        "mover@acme.com".to_owned(),
    ];
    let (s, ids) = setup(&emails).await;
    let owners = s.hubspot().insert_company("partner.org", "Partner");
    s.hubspot().set_primary_company(ids[0], owners).unwrap();

    // A dry run shows the actions and writes nothing.
    let dry = s
        .engine
        .plan(
            &s.tenant,
            PlanMode::FullReconcile {
                scan_complete: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(dry.count_of(ActionType::AssociateCompany), 2, "{dry}");
    let text = dry.to_string();
    assert!(
        text.contains("+ company free@acme.com -> acme.com"),
        "{text}"
    );
    assert!(text.contains("no company set"), "{text}");
    assert!(
        s.hubspot().companies().len() == 1,
        "a dry run creates nothing"
    );

    s.engine.run_full_reconcile(&s.tenant).await.unwrap();
    let acme = s
        .hubspot()
        .companies()
        .into_iter()
        .find(|c| c.domain() == Some("acme.com"))
        .unwrap()
        .id;
    assert_eq!(s.hubspot().contact_companies(ids[0]), vec![(owners, 1)]);
    assert_eq!(s.hubspot().contact_companies(ids[1]), vec![(acme, 1)]);
    assert_eq!(s.hubspot().contact_companies(ids[2]), vec![(acme, 1)]);

    // The sync's own company follows the email; the owner's never does.
    s.hubspot().set_email(ids[2], "mover@beta.io").unwrap();
    s.hubspot().set_email(ids[0], "owned@beta.io").unwrap();
    s.engine.run_full_reconcile(&s.tenant).await.unwrap();
    let beta = s
        .hubspot()
        .companies()
        .into_iter()
        .find(|c| c.domain() == Some("beta.io"))
        .unwrap()
        .id;
    assert_eq!(s.hubspot().contact_companies(ids[2]), vec![(beta, 1)]);
    assert_eq!(s.hubspot().contact_companies(ids[0]), vec![(owners, 1)]);
    let mover = s.hubspot().contact(ids[2]).unwrap();
    assert_eq!(
        mover.property(PROVENANCE),
        Some(format!("{beta}|beta.io").as_str())
    );
}
