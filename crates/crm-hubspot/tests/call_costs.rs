#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What HubSpot reads and writes cost in calls, counted on the sandbox: a delta window where
//! more than 10,000 contacts share one millisecond, the archived-contacts read with and
//! without `archived_min_interval_secs`, and find-or-create by email.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crm_hubspot::{
    ContactMapping, HubSpotClient, HubSpotSink, HubSpotSource, RateLimitTier, SinkConfig,
    SourceConfig,
};
use secrecy::SecretString;
use sync_core::plan::IdempotencyKey;
use sync_core::ports::{ContactDraft, CrmSink, CrmSource};
use sync_core::{CrmContact, Cursor, Email, TenantId};
use sync_http::RateLimit;
use sync_sandbox::hubspot::{DEFAULT_ACCESS_TOKEN, HubSpotConfig, HubSpotSandbox};
use sync_sandbox::ratelimit::RateLimits;
use sync_sandbox::{Clock, ManualClock};

const SEARCH: &str = "POST /crm/v3/objects/contacts/search";
const ARCHIVED: &str = "GET /crm/v3/objects/contacts?archived=true";

/// A sandbox on a frozen clock (every change made without advancing it shares one
/// millisecond), without rate limits.
async fn sandbox() -> (HubSpotSandbox, Arc<ManualClock>) {
    let clock = ManualClock::shared();
    let config = HubSpotConfig::default().with_rate_limits(RateLimits::unlimited());
    let sandbox = HubSpotSandbox::start_with_clock(config, clock.clone())
        .await
        .unwrap();
    (sandbox, clock)
}

fn client(sandbox: &HubSpotSandbox) -> HubSpotClient {
    HubSpotClient::builder()
        .base_url(sandbox.base_url())
        .access_token(SecretString::from(DEFAULT_ACCESS_TOKEN))
        .tier(RateLimitTier::Custom {
            requests: 100_000,
            window_ms: 1_000,
        })
        .learn_rate_limit(false)
        .search_limit(RateLimit::new(100_000, Duration::from_secs(1)))
        .build()
        .unwrap()
}

fn source(sandbox: &HubSpotSandbox, config: SourceConfig) -> HubSpotSource {
    HubSpotSource::new(client(sandbox), config)
}

fn insert(sandbox: &HubSpotSandbox, n: usize, tag: &str) -> Vec<u64> {
    (0..n)
        .map(|i| {
            sandbox
                .insert_contact(BTreeMap::from([(
                    "email".to_owned(),
                    format!("{tag}{i}@example.com"),
                )]))
                .unwrap()
        })
        .collect()
}

async fn run_delta(source: &HubSpotSource, since: &Cursor) -> Vec<CrmContact> {
    let tenant = TenantId::new("t");
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let page = source
            .changed_since(&tenant, since, token.as_ref())
            .await
            .unwrap();
        all.extend(page.contacts);
        match page.next {
            Some(t) => token = Some(t),
            None => return all,
        }
    }
}

fn calls(source: &HubSpotSource, key: &str) -> u64 {
    source.api_calls().get(key).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_contacts_in_one_millisecond_cost_at_most_a_tenth_over_the_floor() {
    let (sandbox, clock) = sandbox().await;
    let since = Cursor::at(clock.now_utc());
    insert(&sandbox, 100, "before");
    clock.advance(Duration::from_secs(1));
    // A bulk import: 10,300 contacts modified in the same millisecond.
    insert(&sandbox, 10_300, "tie");
    clock.advance(Duration::from_secs(1));
    insert(&sandbox, 100, "after");

    let source = source(&sandbox, SourceConfig::new(ContactMapping::default()));
    let got = run_delta(&source, &since).await;
    let ids: HashSet<&str> = got.iter().map(|c| c.id.id.as_str()).collect();
    assert_eq!(ids.len(), 10_500, "every contact read");
    assert_eq!(got.len(), 10_500, "each contact once");

    // The floor: 10,500 contacts at 200 a page.
    let floor = 10_500u64.div_ceil(200);
    let searched = calls(&source, SEARCH);
    assert!(
        searched * 10 <= floor * 11,
        "{searched} search calls for a floor of {floor}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_delta_pays_for_the_archived_list_unless_an_interval_is_set() {
    let (sandbox, clock) = sandbox().await;
    let since = Cursor::at(clock.now_utc());
    let ids = insert(&sandbox, 260, "c");
    clock.advance(Duration::from_secs(1));
    for id in &ids[..250] {
        sandbox.archive_contact(*id).unwrap();
    }
    clock.advance(Duration::from_secs(1));

    // Default: every delta pages through the whole archived list, 100 a page.
    let every = source(&sandbox, SourceConfig::new(ContactMapping::default()));
    run_delta(&every, &since).await;
    run_delta(&every, &since).await;
    assert_eq!(
        calls(&every, ARCHIVED),
        6,
        "3 calls per delta for 250 archived"
    );

    // With an interval: the second delta within it reads no archives.
    let mut config = SourceConfig::new(ContactMapping::default());
    config.archived_min_interval_secs = Some(3_600);
    let sparse = source(&sandbox, config);
    let first = run_delta(&sparse, &since).await;
    assert_eq!(first.iter().filter(|c| c.archived).count(), 250);
    assert_eq!(calls(&sparse, ARCHIVED), 3);
    let second = run_delta(&sparse, &since).await;
    assert_eq!(
        calls(&sparse, ARCHIVED),
        3,
        "no archived read within the interval"
    );
    assert!(second.iter().all(|c| !c.archived));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skipped_archived_read_loses_no_deletion() {
    let (sandbox, clock) = sandbox().await;
    let start = Cursor::at(clock.now_utc());
    let ids = insert(&sandbox, 3, "c");
    let mut config = SourceConfig::new(ContactMapping::default());
    config.archived_min_interval_secs = Some(1);
    let source = source(&sandbox, config);
    let first = run_delta(&source, &start).await;
    assert_eq!(first.len(), 3);

    // Contact 0 is archived, then contact 1 changes an hour later: the next delta's
    // cursor passes the archiving, and that delta skips the archived read.
    clock.advance(Duration::from_secs(3_600));
    sandbox.archive_contact(ids[0]).unwrap();
    clock.advance(Duration::from_secs(3_600));
    sandbox
        .set_property(ids[1], "firstname", "Changed")
        .unwrap();
    let since = Cursor::at(first.iter().map(|c| c.updated_at).max().unwrap());
    let second = run_delta(&source, &since).await;
    assert!(second.iter().all(|c| !c.archived), "read skipped");
    let checkpoint = Cursor::at(second.iter().map(|c| c.updated_at).max().unwrap());

    // Once the interval has passed, the read starts from where the last read did.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let third = run_delta(&source, &checkpoint).await;
    let archived: Vec<&str> = third
        .iter()
        .filter(|c| c.archived)
        .map(|c| c.id.id.as_str())
        .collect();
    assert_eq!(archived, vec![ids[0].to_string().as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_or_create_by_email_reads_nothing_before_creating() {
    let (sandbox, _clock) = sandbox().await;
    let existing = insert(&sandbox, 1, "old")[0];
    let sink = HubSpotSink::new(client(&sandbox), SinkConfig::default());
    let draft = |email: &str| {
        ContactDraft::new(
            Email::parse(email).unwrap(),
            None,
            BTreeMap::from([("firstname".to_owned(), "Ana".to_owned())]),
            IdempotencyKey::from_raw(email),
        )
    };
    // A new user's contact, and one whose email HubSpot already has.
    let out = sink
        .upsert_contacts(
            &TenantId::new("t"),
            &[draft("new@example.com"), draft("old0@example.com")],
        )
        .await
        .unwrap();
    let new = out[0].as_ref().unwrap();
    let old = out[1].as_ref().unwrap();
    assert!(new.created);
    assert_eq!(
        (old.id.id.clone(), old.created),
        (existing.to_string(), false)
    );
    let counts = sandbox.requests();
    assert_eq!(
        counts.count("POST /crm/v3/objects/contacts/batch/read"),
        0,
        "no lookup: the engine's search already was one"
    );
    assert_eq!(
        counts.count("POST /crm/v3/objects/contacts/batch/create"),
        1
    );
    assert_eq!(sandbox.contacts_by_email("old0@example.com").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_lists_the_contact_properties_once() {
    let (sandbox, _clock) = sandbox().await;
    let client = client(&sandbox);
    // What a receiver does at start-up: ensure its property, then provision with validation.
    client
        .ensure_contact_properties(&[crm_hubspot::model::PropertyCreate::cativa_user_id(
            "contactinformation",
        )])
        .await
        .unwrap();
    let sink = HubSpotSink::new(client, SinkConfig::default());
    let out = sink
        .upsert_contacts(
            &TenantId::new("t"),
            &[ContactDraft::new(
                Email::parse("first@example.com").unwrap(),
                Some(sync_core::CativaUserId::new("u-1")),
                BTreeMap::new(),
                IdempotencyKey::from_raw("k1"),
            )],
        )
        .await
        .unwrap();
    assert!(out[0].is_ok(), "{out:?}");
    assert_eq!(
        sandbox.requests().count("GET /crm/v3/properties/contacts"),
        1,
        "one listing serves the ensure and the validation"
    );
}
