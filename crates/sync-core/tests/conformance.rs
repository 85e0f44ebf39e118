//! The connector conformance suite on the in-memory fakes of `testkit` (`MemoryCrm`,
//! `RecordingBadgeSink`, `RecordingInviter`), and proof that it catches broken connectors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sync_core::conformance::{
    CommunityHarness, CrmHarness, InjectedFault, community_cases, crm_cases,
};
use sync_core::ports::{
    Activity, BadgeSink, ContactDraft, ContactPage, CrmSink, CrmSource, Inviter, ItemResult,
    PageToken, PropertyUpdate, Provisioned,
};
use sync_core::testkit::{MemoryCrm, RecordingBadgeSink, RecordingInviter};
use sync_core::{
    BadgeId, CativaUserId, CrmContact, CrmKind, CrmRecordId, Cursor, Email, Error, TenantId,
};

/// `MemoryCrm` with a clock the suite moves.
struct MemoryHarness {
    crm: Arc<MemoryCrm>,
    source: Arc<dyn CrmSource>,
    sink: Arc<dyn CrmSink>,
    now: Mutex<DateTime<Utc>>,
    next: AtomicU64,
}

impl MemoryHarness {
    fn new() -> Self {
        let crm = Arc::new(MemoryCrm::new(CrmKind::Hubspot, 4));
        Self::over(crm.clone(), crm.clone(), crm)
    }

    fn over(crm: Arc<MemoryCrm>, source: Arc<dyn CrmSource>, sink: Arc<dyn CrmSink>) -> Self {
        Self {
            crm,
            source,
            sink,
            now: Mutex::new(Utc::now()),
            next: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl CrmHarness for MemoryHarness {
    fn tenant(&self) -> TenantId {
        TenantId::new("conformance")
    }
    fn source(&self) -> Arc<dyn CrmSource> {
        self.source.clone()
    }
    fn sink(&self) -> Arc<dyn CrmSink> {
        self.sink.clone()
    }
    fn page_size(&self) -> usize {
        4
    }
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }
    async fn advance(&self, by: Duration) {
        *self.now.lock().unwrap() += by;
    }
    async fn create(&self, email: &str) -> Result<CrmRecordId, String> {
        // Zero-padded, so text order is creation order.
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let id = CrmRecordId::hubspot(format!("c{n:06}"));
        let email = Email::parse(email).map_err(|e| e.to_string())?;
        self.crm
            .put(CrmContact::new(id.clone(), Some(email), self.now()));
        Ok(id)
    }
    async fn touch(&self, id: &CrmRecordId) -> Result<(), String> {
        let now = self.now();
        self.crm.update(id, |c| c.updated_at = now);
        Ok(())
    }
    async fn delete(&self, id: &CrmRecordId) -> Result<(), String> {
        let now = self.now();
        self.crm.update(id, |c| {
            c.archived = true;
            c.updated_at = now;
        });
        Ok(())
    }
    async fn merge(&self, winner: &CrmRecordId, loser: &CrmRecordId) -> Result<bool, String> {
        let now = self.now();
        let winner = winner.clone();
        self.crm.update(loser, |c| {
            c.archived = true;
            c.merged_into = Some(winner);
            c.updated_at = now;
        });
        Ok(true)
    }
    async fn inject(&self, fault: InjectedFault) -> bool {
        match fault {
            InjectedFault::Server => {
                self.crm.fail_next_reads(u32::MAX);
                true
            }
            _ => false,
        }
    }
    async fn clear_faults(&self) {
        self.crm.fail_next_reads(0);
    }
}

async fn fresh_memory_crm() -> Option<Arc<dyn CrmHarness>> {
    Some(Arc::new(MemoryHarness::new()))
}

sync_core::connector_conformance_tests!(fresh_memory_crm);

struct RecordingHarness {
    sink: Arc<RecordingBadgeSink>,
    inviter: Arc<RecordingInviter>,
}

const UNKNOWN: &str = "no-such-user";

#[async_trait]
impl CommunityHarness for RecordingHarness {
    fn tenant(&self) -> TenantId {
        TenantId::new("conformance")
    }
    fn badge_sink(&self) -> Arc<dyn BadgeSink> {
        self.sink.clone()
    }
    fn inviter(&self) -> Option<Arc<dyn Inviter>> {
        Some(self.inviter.clone())
    }
    fn users(&self) -> Vec<(CativaUserId, Email)> {
        (0..2)
            .map(|i| {
                (
                    CativaUserId::from(format!("u{i}")),
                    Email::parse(&format!("u{i}@conformance.example")).unwrap(),
                )
            })
            .collect()
    }
    fn badge(&self) -> BadgeId {
        "Premium".into()
    }
    fn unknown_user(&self) -> CativaUserId {
        UNKNOWN.into()
    }
    async fn badges_of(&self, user: &CativaUserId) -> Vec<BadgeId> {
        self.sink.badges_of(user).into_iter().collect()
    }
    async fn grant_effects(&self, user: &CativaUserId, badge: &BadgeId) -> u64 {
        self.sink.grants(user, badge)
    }
    async fn invites_for(&self, email: &Email) -> u64 {
        self.inviter
            .invites()
            .iter()
            .filter(|i| &i.email == email)
            .count() as u64
    }
}

async fn fresh_recording_community() -> Option<Arc<dyn CommunityHarness>> {
    let sink = Arc::new(RecordingBadgeSink::new());
    // The recording sink knows no users: an unknown one is modelled as a permanent refusal.
    sink.fail_user(
        UNKNOWN.into(),
        sync_core::RemoteErrorKind::Invalid,
        u32::MAX,
    );
    Some(Arc::new(RecordingHarness {
        sink,
        inviter: Arc::new(RecordingInviter::new()),
    }))
}

mod community {
    use super::*;
    sync_core::community_conformance_tests!(fresh_recording_community);
}

// --- Broken connectors fail the suite ---------------------------------------------------

/// Drops the first record of every page after the first when it ties with the previous
/// page's last record: the classic bug of a cursor that pages by `>` on the timestamp.
struct TieDroppingSource {
    inner: Arc<MemoryCrm>,
}

#[async_trait]
impl CrmSource for TieDroppingSource {
    fn crm(&self) -> CrmKind {
        CrmKind::Hubspot
    }
    async fn changed_since(
        &self,
        tenant: &TenantId,
        since: &Cursor,
        page: Option<&PageToken>,
    ) -> Result<ContactPage, Error> {
        let mut p = self.inner.changed_since(tenant, since, page).await?;
        if page.is_some() && !p.contacts.is_empty() {
            p.contacts.remove(0);
        }
        Ok(p)
    }
    async fn scan(
        &self,
        tenant: &TenantId,
        page: Option<&PageToken>,
    ) -> Result<ContactPage, Error> {
        self.inner.scan(tenant, page).await
    }
    async fn get_by_ids(
        &self,
        t: &TenantId,
        ids: &[CrmRecordId],
    ) -> Result<Vec<CrmContact>, Error> {
        self.inner.get_by_ids(t, ids).await
    }
    async fn find_by_email(&self, t: &TenantId, e: &Email) -> Result<Vec<CrmContact>, Error> {
        self.inner.find_by_email(t, e).await
    }
}

/// Creates a new contact on every upsert, even when the email exists: a retry duplicates.
struct DuplicatingSink {
    inner: Arc<MemoryCrm>,
    next: AtomicU64,
}

#[async_trait]
impl CrmSink for DuplicatingSink {
    fn crm(&self) -> CrmKind {
        CrmKind::Hubspot
    }
    fn max_batch(&self) -> usize {
        100
    }
    async fn upsert_contacts(
        &self,
        _tenant: &TenantId,
        drafts: &[ContactDraft],
    ) -> Result<Vec<ItemResult<Provisioned>>, Error> {
        Ok(drafts
            .iter()
            .map(|d| {
                let n = self.next.fetch_add(1, Ordering::SeqCst);
                let id = CrmRecordId::hubspot(format!("dup{n:06}"));
                self.inner.put(CrmContact::new(
                    id.clone(),
                    Some(d.email.clone()),
                    Utc::now(),
                ));
                Ok(Provisioned::new(id, true))
            })
            .collect())
    }
    async fn update_properties(
        &self,
        t: &TenantId,
        u: &[PropertyUpdate],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        self.inner.update_properties(t, u).await
    }
    async fn log_activities(
        &self,
        t: &TenantId,
        a: &[Activity],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        self.inner.log_activities(t, a).await
    }
    fn api_calls(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }
}

/// Runs one named case against a harness and says whether it failed (panicked).
async fn case_fails(name: &str, harness: Arc<dyn CrmHarness>) -> bool {
    let (_, case) = crm_cases()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no case {name}"));
    match tokio::spawn(case(harness)).await {
        Ok(()) => false,
        Err(e) => e.is_panic(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_drops_ties_at_page_edges_fails_the_suite() {
    let crm = Arc::new(MemoryCrm::new(CrmKind::Hubspot, 4));
    let broken = Arc::new(TieDroppingSource { inner: crm.clone() });
    let harness = Arc::new(MemoryHarness::over(crm.clone(), broken, crm));
    assert!(
        case_fails("delta_pages_come_in_modification_order_ties_by_id", harness).await,
        "the suite must catch a source that loses records at page edges"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_duplicates_on_retry_fails_the_suite() {
    let crm = Arc::new(MemoryCrm::new(CrmKind::Hubspot, 4));
    let broken = Arc::new(DuplicatingSink {
        inner: crm.clone(),
        next: AtomicU64::new(0),
    });
    let harness = Arc::new(MemoryHarness::over(crm.clone(), crm, broken));
    assert!(
        case_fails(
            "upsert_is_idempotent_by_email_and_never_duplicates",
            harness
        )
        .await,
        "the suite must catch a sink that creates duplicates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_correct_fakes_pass_every_case_run_by_hand() {
    for (name, case) in crm_cases() {
        let harness: Arc<dyn CrmHarness> = Arc::new(MemoryHarness::new());
        assert!(
            tokio::spawn(case(harness)).await.is_ok(),
            "case {name} failed on MemoryCrm"
        );
    }
    for (name, case) in community_cases() {
        let harness = fresh_recording_community().await.unwrap();
        assert!(
            tokio::spawn(case(harness)).await.is_ok(),
            "community case {name} failed on the recording fakes"
        );
    }
}
