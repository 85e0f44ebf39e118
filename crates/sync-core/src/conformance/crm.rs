//! The CRM connector contracts ([`CrmSource`](crate::ports::CrmSource) and
//! [`CrmSink`](crate::ports::CrmSink)).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::{CrmHarness, InjectedFault};
use crate::domain::{CrmContact, CrmRecordId, Cursor, Email};
use crate::error::{Error, RemoteErrorKind};
use crate::plan::IdempotencyKey;
use crate::ports::{ContactDraft, PageToken};

/// More pages than any case needs: a source that never ends its pages is broken.
const MAX_PAGES: usize = 1_000;

fn email(i: usize, case: &str) -> String {
    format!("{case}.{i}@conformance.example")
}

async fn must<T>(what: &str, r: Result<T, String>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("harness: {what} failed: {e}"),
    }
}

/// What to read: a delta from a cursor, or a full scan.
#[derive(Clone, Copy)]
enum Read<'a> {
    Delta(&'a Cursor),
    Scan,
}

/// Every page of a read, in order.
async fn pages(h: &Arc<dyn CrmHarness>, read: Read<'_>) -> Vec<Vec<CrmContact>> {
    let source = h.source();
    let tenant = h.tenant();
    let (what, mut token) = match read {
        Read::Delta(_) => ("changed_since", None::<PageToken>),
        Read::Scan => ("scan", None),
    };
    let mut out = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = match read {
            Read::Delta(since) => source.changed_since(&tenant, since, token.as_ref()).await,
            Read::Scan => source.scan(&tenant, token.as_ref()).await,
        }
        .unwrap_or_else(|e| panic!("{what} failed: {e}"));
        out.push(page.contacts);
        match page.next {
            Some(next) => token = Some(next),
            None => return out,
        }
    }
    panic!("{what} returned more than {MAX_PAGES} pages: it must end with `next: None`")
}

async fn delta(h: &Arc<dyn CrmHarness>, since: &Cursor) -> Vec<Vec<CrmContact>> {
    pages(h, Read::Delta(since)).await
}

async fn scan(h: &Arc<dyn CrmHarness>) -> Vec<Vec<CrmContact>> {
    pages(h, Read::Scan).await
}

fn ids(contacts: &[CrmContact]) -> BTreeSet<CrmRecordId> {
    contacts.iter().map(|c| c.id.clone()).collect()
}

/// Delta pages come in modification order, ties broken by record id, so the engine can
/// checkpoint between pages and resume without losing a record.
pub async fn delta_pages_come_in_modification_order_ties_by_id(h: Arc<dyn CrmHarness>) {
    let n = h.page_size() * 3 + 2;
    h.advance(Duration::seconds(1)).await;
    let start = h.now();
    let mut seeded = BTreeSet::new();
    for i in 0..n {
        // Three records share each instant, so ties fall on page edges too.
        if i % 3 == 0 {
            h.advance(Duration::seconds(1)).await;
        }
        seeded.insert(must("create", h.create(&email(i, "order")).await).await);
    }
    let pages = delta(&h, &Cursor::at(start)).await;
    let all: Vec<CrmContact> = pages.iter().flatten().cloned().collect();
    let seen = ids(&all);
    let missing: Vec<_> = seeded.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "changed_since missed records created after the cursor: {missing:?}"
    );
    for pair in all.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let in_order = a.updated_at < b.updated_at
            || (a.updated_at == b.updated_at && h.tie_order(&a.id, &b.id).is_le());
        assert!(
            in_order,
            "delta records must come in modification order, ties by id, across pages: {} at {} came before {} at {}",
            a.id, a.updated_at, b.id, b.updated_at
        );
    }
    for (i, page) in pages.iter().enumerate() {
        assert!(
            i + 1 == pages.len() || !page.is_empty(),
            "page {i} is empty but not the last: an empty page with a next token stalls the engine"
        );
    }
}

/// Records changed at exactly the checkpoint's instant are returned (`>=`, not `>`): the
/// engine's checkpoint may sit on an instant other records still share.
pub async fn cursor_includes_records_changed_at_the_checkpoint_instant(h: Arc<dyn CrmHarness>) {
    h.advance(Duration::seconds(1)).await;
    let at = h.now();
    let mut seeded = BTreeSet::new();
    for i in 0..3 {
        seeded.insert(must("create", h.create(&email(i, "instant")).await).await);
    }
    let first: Vec<CrmContact> = delta(&h, &Cursor::at(at)).await.concat();
    assert!(
        seeded.is_subset(&ids(&first)),
        "records modified exactly at the cursor's instant must be returned: got {:?}",
        ids(&first)
    );
    // A record stamped with the same instant after the read: the next delta from that
    // checkpoint must still see it.
    let late = must("create", h.create(&email(9, "instant")).await).await;
    let again: Vec<CrmContact> = delta(&h, &Cursor::at(at)).await.concat();
    assert!(
        ids(&again).contains(&late),
        "a record changed at the checkpoint's instant after a read was skipped by the next delta"
    );
}

/// Deletions are reported by the delta (`archived = true`), so a deleted contact's badges
/// come off without waiting for a full reconcile.
pub async fn deletions_are_reported_by_delta(h: Arc<dyn CrmHarness>) {
    h.advance(Duration::seconds(1)).await;
    let since = h.now();
    let keep = must("create", h.create(&email(0, "delete")).await).await;
    let gone = must("create", h.create(&email(1, "delete")).await).await;
    h.advance(Duration::seconds(1)).await;
    must("delete", h.delete(&gone).await).await;
    let all: Vec<CrmContact> = delta(&h, &Cursor::at(since)).await.concat();
    let deleted = all.iter().find(|c| c.id == gone);
    assert!(
        deleted.is_some_and(|c| c.archived),
        "a contact deleted after the cursor must be reported with archived = true, got {deleted:?}"
    );
    assert!(
        all.iter().any(|c| c.id == keep && !c.archived),
        "the live contact must still be reported live"
    );
}

/// Merges are reported: the loser comes back archived with `merged_into` naming the
/// survivor, so identity moves instead of badges being removed.
pub async fn merges_are_reported_by_delta(h: Arc<dyn CrmHarness>) {
    h.advance(Duration::seconds(1)).await;
    let since = h.now();
    let winner = must("create", h.create(&email(0, "merge")).await).await;
    let loser = must("create", h.create(&email(1, "merge")).await).await;
    h.advance(Duration::seconds(1)).await;
    if !must("merge", h.merge(&winner, &loser).await).await {
        println!("skipped: the CRM under test has no merges");
        return;
    }
    let all: Vec<CrmContact> = delta(&h, &Cursor::at(since)).await.concat();
    let reported = all.iter().find(|c| c.id == loser);
    assert!(
        reported.is_some_and(|c| c.archived && c.merged_into.as_ref() == Some(&winner)),
        "the merged-away contact must be reported archived with merged_into = {winner}, got {reported:?}"
    );
    assert!(
        all.iter().any(|c| c.id == winner && !c.archived),
        "the surviving contact must be reported live"
    );
}

/// A full scan returns every live record exactly once across pages and no deleted one: a
/// full reconcile removes badges by absence only because of this.
pub async fn scan_covers_every_live_record_exactly_once(h: Arc<dyn CrmHarness>) {
    let n = h.page_size() * 2 + 1;
    let mut live = BTreeSet::new();
    for i in 0..n {
        h.advance(Duration::seconds(1)).await;
        live.insert(must("create", h.create(&email(i, "scan")).await).await);
    }
    let gone = must("create", h.create(&email(n, "scan")).await).await;
    must("delete", h.delete(&gone).await).await;
    let pages = scan(&h).await;
    let mut seen = BTreeMap::new();
    for c in pages.iter().flatten() {
        assert!(!c.archived, "scan returned a deleted record: {}", c.id);
        *seen.entry(c.id.clone()).or_insert(0u32) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "scan returned records twice: {twice:?}");
    let seen: BTreeSet<CrmRecordId> = seen.into_keys().collect();
    assert_eq!(seen, live, "scan must return exactly the live records");
    assert!(
        pages.len() >= 2,
        "with page size {} and {n} records the scan must take several pages",
        h.page_size()
    );
}

/// Emails are compared case-insensitively and every duplicate is returned, so the planner
/// can apply the duplicate policy and provisioning never creates another duplicate.
pub async fn find_by_email_is_case_insensitive_and_returns_every_duplicate(h: Arc<dyn CrmHarness>) {
    h.advance(Duration::seconds(1)).await;
    let a = must("create", h.create("Dup.Person@Conformance.Example").await).await;
    let b = must("create", h.create("dup.person@conformance.example").await).await;
    let other = must("create", h.create("someone.else@conformance.example").await).await;
    let wanted = Email::parse("DUP.person@conformance.EXAMPLE").unwrap_or_else(|e| panic!("{e}"));
    let found = h
        .source()
        .find_by_email(&h.tenant(), &wanted)
        .await
        .unwrap_or_else(|e| panic!("find_by_email failed: {e}"));
    let found = ids(&found);
    assert!(
        found.contains(&a) && found.contains(&b),
        "find_by_email must match case-insensitively and return every duplicate: got {found:?}, want {a} and {b}"
    );
    assert!(
        !found.contains(&other),
        "find_by_email returned another email's contact"
    );
}

/// `get_by_ids` returns the records that exist and leaves the others out (no error, no
/// placeholder).
pub async fn get_by_ids_leaves_missing_ids_out(h: Arc<dyn CrmHarness>) {
    h.advance(Duration::seconds(1)).await;
    let a = must("create", h.create(&email(0, "ids")).await).await;
    let b = must("create", h.create(&email(1, "ids")).await).await;
    let gone = must("create", h.create(&email(2, "ids")).await).await;
    must("delete", h.delete(&gone).await).await;
    let got = h
        .source()
        .get_by_ids(&h.tenant(), &[a.clone(), gone.clone(), b.clone()])
        .await
        .unwrap_or_else(|e| panic!("get_by_ids with a deleted id must not fail: {e}"));
    let got: BTreeSet<CrmRecordId> = got
        .into_iter()
        .filter(|c| !c.archived)
        .map(|c| c.id)
        .collect();
    assert_eq!(
        got,
        BTreeSet::from([a, b]),
        "get_by_ids must return exactly the live ids asked for"
    );
}

fn draft(email: &str, key: &str) -> ContactDraft {
    ContactDraft::new(
        Email::parse(email).unwrap_or_else(|e| panic!("{e}")),
        None,
        BTreeMap::new(),
        IdempotencyKey::derive(&["conformance", key]),
    )
}

/// A batch upsert finds by email or creates, never a duplicate, and repeating it (a retry
/// after a timeout) changes nothing.
pub async fn upsert_is_idempotent_by_email_and_never_duplicates(h: Arc<dyn CrmHarness>) {
    h.advance(Duration::seconds(1)).await;
    let existing = must(
        "create",
        h.create("Existing.Person@Conformance.Example").await,
    )
    .await;
    let drafts = vec![
        draft("new.one@conformance.example", "a"),
        draft("existing.person@conformance.example", "b"),
        draft("new.two@conformance.example", "c"),
    ];
    let sink = h.sink();
    let tenant = h.tenant();
    let first = sink
        .upsert_contacts(&tenant, &drafts)
        .await
        .unwrap_or_else(|e| panic!("upsert_contacts failed: {e}"));
    assert_eq!(first.len(), drafts.len(), "one result per draft, in order");
    let first: Vec<_> = first
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("a valid draft failed: {e}")))
        .collect();
    assert!(
        first[0].created && first[2].created,
        "new emails are created: {first:?}"
    );
    assert!(
        !first[1].created,
        "an existing email is found, not created: {first:?}"
    );
    assert_eq!(
        first[1].id, existing,
        "the existing contact's id is returned"
    );

    h.advance(Duration::seconds(1)).await;
    let second = sink
        .upsert_contacts(&tenant, &drafts)
        .await
        .unwrap_or_else(|e| panic!("repeated upsert_contacts failed: {e}"));
    for (i, r) in second.into_iter().enumerate() {
        let r = r.unwrap_or_else(|e| panic!("repeated draft {i} failed: {e}"));
        assert_eq!(
            r.id, first[i].id,
            "a repeated upsert returns the same record"
        );
        assert!(
            !r.created,
            "a repeated upsert must not create draft {i} again"
        );
    }
    for d in &drafts {
        let found = h
            .source()
            .find_by_email(&tenant, &d.email)
            .await
            .unwrap_or_else(|e| panic!("find_by_email failed: {e}"));
        assert_eq!(
            found.len(),
            1,
            "{} exists {} times: upserts made a duplicate",
            d.email,
            found.len()
        );
    }
}

/// One bad record fails alone: the batch call succeeds and the other records are written.
pub async fn upsert_reports_per_record_failures_without_failing_the_batch(h: Arc<dyn CrmHarness>) {
    let Some((property, value)) = h.rejected_property() else {
        println!("skipped: the harness names no property the CRM rejects per record");
        return;
    };
    let good = draft("good.record@conformance.example", "good");
    let mut bad = draft("bad.record@conformance.example", "bad");
    bad.properties.insert(property, value);
    let results = h
        .sink()
        .upsert_contacts(&h.tenant(), &[good, bad])
        .await
        .unwrap_or_else(|e| panic!("one bad record must not fail the whole batch: {e}"));
    assert_eq!(results.len(), 2, "one result per draft");
    assert!(
        results[0].is_ok(),
        "the good record must be written: {:?}",
        results[0]
    );
    match &results[1] {
        Err(e) => assert!(
            !e.is_retryable(),
            "a rejected record is a permanent failure, not retryable: {e}"
        ),
        Ok(p) => panic!("the rejected record was reported written: {p:?}"),
    }
}

/// Errors are classified the way the engine acts on them: a server failure is retryable, a
/// throttle is rate limited and carries the wait when the CRM gave one, a refusal is
/// permanent.
pub async fn errors_are_classified(h: Arc<dyn CrmHarness>) {
    let tenant = h.tenant();
    for fault in [
        InjectedFault::Server,
        InjectedFault::RateLimited,
        InjectedFault::Permanent,
    ] {
        if !h.inject(fault).await {
            println!("skipped {fault:?}: the harness cannot inject it");
            continue;
        }
        let result = h.source().scan(&tenant, None).await;
        h.clear_faults().await;
        let err = match result {
            Err(e) => e,
            Ok(_) => panic!("an injected {fault:?} fault must fail the call"),
        };
        match fault {
            InjectedFault::Server => assert!(
                err.is_retryable() && !err.stops_run(),
                "a server failure must be retryable: {err}"
            ),
            InjectedFault::RateLimited => {
                assert!(err.is_retryable(), "a throttle must be retryable: {err}");
                assert!(
                    matches!(&err, Error::Remote(r) if matches!(r.kind, RemoteErrorKind::RateLimited | RemoteErrorKind::QuotaExhausted)),
                    "a throttle must be classified rate limited: {err}"
                );
            }
            InjectedFault::Permanent => assert!(
                !err.is_retryable(),
                "a refusal must not be retryable: {err}"
            ),
        }
    }
    // And the connector recovers once the CRM does.
    h.source()
        .scan(&tenant, None)
        .await
        .unwrap_or_else(|e| panic!("the source must work again after faults stop: {e}"));
}

fn total(calls: &BTreeMap<String, u64>) -> u64 {
    calls.values().sum()
}

fn assert_monotonic(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, what: &str) {
    for (endpoint, n) in before {
        let now = after.get(endpoint).copied().unwrap_or(0);
        assert!(
            now >= *n,
            "{what}: api_calls for {endpoint} went down from {n} to {now}: counts are cumulative"
        );
    }
}

/// `api_calls` counts are cumulative: they never go down, so the engine can report a run's
/// calls as the difference.
pub async fn api_call_counts_are_monotonic(h: Arc<dyn CrmHarness>) {
    let source = h.source();
    let sink = h.sink();
    let tenant = h.tenant();
    let s0 = source.api_calls();
    let k0 = sink.api_calls();
    h.advance(Duration::seconds(1)).await;
    must("create", h.create(&email(0, "calls")).await).await;
    let _ = scan(&h).await;
    let _ = delta(&h, &Cursor::at(DateTime::<Utc>::UNIX_EPOCH)).await;
    let s1 = source.api_calls();
    assert_monotonic(&s0, &s1, "source");
    if !s0.is_empty() || !s1.is_empty() {
        assert!(
            total(&s1) > total(&s0),
            "a connector that counts calls must count reads"
        );
    }
    let _ = sink
        .upsert_contacts(&tenant, &[draft("calls.new@conformance.example", "calls")])
        .await
        .unwrap_or_else(|e| panic!("upsert_contacts failed: {e}"));
    let k1 = sink.api_calls();
    assert_monotonic(&k0, &k1, "sink");
    assert_monotonic(&s1, &source.api_calls(), "source");
}
