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

mod salesforce {
    use super::*;
    use crm_salesforce::{
        ContactSchema, OAuthFlow, SalesforceClient, SalesforceSink, SalesforceSource,
    };
    use secrecy::SecretString;
    use serde_json::{Map, Value, json};
    use sync_sandbox::salesforce::FieldType;

    const SF_PROVENANCE: &str = "Cativa_Company__c";
    const SF_KEY: &str = "Cativa_Domain__c";

    fn fields(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn accounts_are_found_or_created_by_key_and_the_owners_account_is_kept() {
        let mut config = unlimited_sandbox();
        config.salesforce = config
            .salesforce
            .with_field("Contact", SF_PROVENANCE, FieldType::Text)
            .with_field("Account", SF_KEY, FieldType::Text);
        let sandbox = SandboxServer::start(config).await.unwrap();
        let sf = sandbox.salesforce();
        let existing = sf
            .insert_record(
                "Account",
                fields(&[("Name", "Org 3"), (SF_KEY, "org3.example.org")]),
            )
            .unwrap();
        let owners = sf
            .insert_record(
                "Account",
                fields(&[("Name", "Partner"), (SF_KEY, "partner.org")]),
            )
            .unwrap();
        let mut ids = Vec::new();
        for i in 0..300 {
            let email = format!("p{i}@org{}.example.org", i % 30);
            ids.push(
                sf.insert_record(
                    "Contact",
                    fields(&[("LastName", "Person"), ("Email", &email)]),
                )
                .unwrap(),
            );
        }
        let gmail = sf
            .insert_record(
                "Contact",
                fields(&[("LastName", "Free"), ("Email", "free@gmail.com")]),
            )
            .unwrap();
        sf.set_field(&ids[0], "AccountId", json!(owners)).unwrap();

        let client = SalesforceClient::builder()
            .login_url(sf.base_url())
            .flow(OAuthFlow::refresh_token(
                sync_sandbox::salesforce::DEFAULT_CLIENT_ID,
                None,
                SecretString::from(sync_sandbox::salesforce::DEFAULT_REFRESH_TOKEN),
            ))
            .build()
            .unwrap();
        let schema = ContactSchema::contact()
            .with_property("AccountId")
            .with_property(SF_PROVENANCE);
        let source = SalesforceSource::new(client.clone(), schema.clone()).unwrap();
        let sink = SalesforceSink::new(client, schema)
            .unwrap()
            .with_account_key_field(SF_KEY);
        let mut rules = SyncConfig::default();
        rules.companies = Some(CompanyConfig::new("AccountId", SF_PROVENANCE));
        let dir = tempfile::tempdir().unwrap();
        let store = sync_store::connect(&dir.path().join("sync.db").to_string_lossy())
            .await
            .unwrap();
        let engine = SyncEngine::builder(rules.validate().unwrap(), store)
            .source(Arc::new(source))
            .crm_sink(Arc::new(sink))
            .options(fast_options())
            .build();
        let tenant = TenantId::new("sf-companies");
        sf.reset_requests();

        let report = engine.run_full_reconcile(&tenant).await.unwrap();
        assert_eq!(report.failed, 0, "{report:?}");
        assert_eq!(report.applied.get("associate_company"), Some(&299));
        let accounts = sf.records("Account");
        let keys: BTreeSet<String> = accounts
            .iter()
            .filter_map(|a| {
                a.fields
                    .get(SF_KEY)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(
            accounts.len(),
            31,
            "30 domains (one existed) and the owner's, no duplicate"
        );
        assert_eq!(keys.len(), 31);
        let account_of = |id: &str| {
            sf.record(id).and_then(|r| {
                r.fields
                    .get("AccountId")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
        };
        assert_eq!(
            account_of(&ids[0]),
            Some(owners.clone()),
            "the owner's account is kept"
        );
        assert_eq!(
            account_of(&ids[3]),
            Some(existing.clone()),
            "found by key, not created"
        );
        assert_eq!(account_of(&gmail), None);
        let provenance = sf.record(&ids[3]).unwrap().fields[SF_PROVENANCE].clone();
        assert_eq!(provenance, json!(format!("{existing}|org3.example.org")));
        println!(
            "salesforce requests: {:?}",
            sf.requests().0.keys().collect::<Vec<_>>()
        );

        // The sync's own account follows the email; the owner's never does.
        sf.set_field(&ids[3], "Email", json!("p3@moved.example.net"))
            .unwrap();
        sf.set_field(&ids[0], "Email", json!("p0@moved.example.net"))
            .unwrap();
        engine.run_full_reconcile(&tenant).await.unwrap();
        let moved = sf
            .records("Account")
            .into_iter()
            .find(|a| a.fields.get(SF_KEY) == Some(&json!("moved.example.net")))
            .unwrap()
            .id;
        assert_eq!(account_of(&ids[3]), Some(moved));
        assert_eq!(account_of(&ids[0]), Some(owners));
        let again = engine
            .plan(
                &tenant,
                PlanMode::FullReconcile {
                    scan_complete: true,
                },
            )
            .await
            .unwrap();
        assert_eq!(again.count_of(ActionType::AssociateCompany), 0, "{again}");
    }
}
