//! Crash safety: a 5,000-contact sync (HubSpot sandbox -> engine -> Cativa sandbox, SQLite
//! file store) killed at 50 seeded random points, restarted on the same file each time, and
//! checked after each kill: no lost action, no duplicate effect on the sandbox, checkpoint
//! never ahead of durable work. One more test kills a child process with SIGKILL.
//!
//! Kill points are counted in operations (source pages and sink calls, before or after the
//! call returns: "after" means the effect happened but was not recorded) or, one time in
//! five, a random wall-clock instant (anywhere, SQLite writes included). The future is
//! dropped there, as a crash would drop it.
//!
//! `CRASH_CONTACTS` (default 5000), `CRASH_POINTS` (default 50) and `CRASH_SEED` scale it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod rel_support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cativa_client::sink::ApiBadgeSink;
use chrono::{DateTime, Utc};
use rel_support::*;
use sync_core::ports::{
    BadgeChange, BadgeSink, CheckpointStore, ContactPage, CrmSource, ItemResult, PageToken, Store,
};
use sync_core::{CrmContact, CrmKind, CrmRecordId, Cursor, Email, Error, TenantId};
use sync_engine::Clock;
use sync_engine::SyncEngine;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// splitmix64: a tiny seeded generator, so a failing seed replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Counts operations; at the armed count, the operation never returns and the test drops
/// the run.
#[derive(Default)]
struct KillSwitch {
    ops: AtomicU64,
    kill_at: AtomicU64,
    tripped: AtomicBool,
}

impl KillSwitch {
    fn arm(&self, at: u64) {
        self.ops.store(0, Ordering::SeqCst);
        self.tripped.store(false, Ordering::SeqCst);
        self.kill_at.store(at, Ordering::SeqCst);
    }
    /// Resolves once an operation has hit the kill point of this arming.
    async fn tripped(&self) {
        while !self.tripped.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    fn disarm(&self) {
        self.kill_at.store(u64::MAX, Ordering::SeqCst);
    }
    async fn point(&self) {
        let n = self.ops.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.kill_at.load(Ordering::SeqCst) {
            self.tripped.store(true, Ordering::SeqCst);
            futures::future::pending::<()>().await;
        }
    }
}

/// The Cativa API badge sink behind kill points; counts sends per idempotency key.
struct KillableSink {
    inner: ApiBadgeSink,
    kill: Arc<KillSwitch>,
    sent: Mutex<HashMap<String, u32>>,
}

#[async_trait]
impl BadgeSink for KillableSink {
    fn max_batch(&self) -> usize {
        self.inner.max_batch()
    }
    async fn apply_badges(
        &self,
        tenant: &TenantId,
        changes: &[BadgeChange],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        self.kill.point().await;
        // Counted before sending: a run dropped mid-request may still have had its effect.
        {
            let mut sent = self.sent.lock().unwrap();
            for c in changes {
                *sent.entry(c.key.as_str().to_owned()).or_default() += 1;
            }
        }
        let results = self.inner.apply_badges(tenant, changes).await?;
        // The effect is on the sandbox; dying here loses only the record of it.
        self.kill.point().await;
        Ok(results)
    }
    fn api_calls(&self) -> BTreeMap<String, u64> {
        self.inner.api_calls()
    }
}

/// The HubSpot source behind kill points.
struct KillableSource<S: ?Sized> {
    inner: Arc<S>,
    kill: Arc<KillSwitch>,
}

#[async_trait]
impl<S: CrmSource + ?Sized> CrmSource for KillableSource<S> {
    fn crm(&self) -> CrmKind {
        self.inner.crm()
    }
    async fn changed_since(
        &self,
        tenant: &TenantId,
        since: &Cursor,
        page: Option<&PageToken>,
    ) -> Result<ContactPage, Error> {
        self.kill.point().await;
        let p = self.inner.changed_since(tenant, since, page).await?;
        self.kill.point().await;
        Ok(p)
    }
    async fn scan(
        &self,
        tenant: &TenantId,
        page: Option<&PageToken>,
    ) -> Result<ContactPage, Error> {
        self.kill.point().await;
        self.inner.scan(tenant, page).await
    }
    async fn get_by_ids(
        &self,
        tenant: &TenantId,
        ids: &[CrmRecordId],
    ) -> Result<Vec<CrmContact>, Error> {
        self.kill.point().await;
        self.inner.get_by_ids(tenant, ids).await
    }
    async fn find_by_email(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<CrmContact>, Error> {
        self.kill.point().await;
        self.inner.find_by_email(tenant, email).await
    }
}

/// Real time plus an offset: a restart "takes" longer than the outbox lease, so items a
/// killed worker had claimed are claimable again at once.
#[derive(Default)]
struct ShiftedClock(Mutex<chrono::Duration>);

impl ShiftedClock {
    fn advance(&self, by: chrono::Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.0.lock().unwrap()
    }
}

struct Harness {
    w: World,
    kill: Arc<KillSwitch>,
    sink: Arc<KillableSink>,
    clock: Arc<ShiftedClock>,
}

impl Harness {
    /// A fresh process: a new store on the same file, a new engine.
    async fn restart(&self, db: &Path) -> (SyncEngine, Arc<sync_store::SqliteStore>) {
        self.clock.advance(chrono::Duration::minutes(10));
        let store = sqlite(db).await;
        let source = Arc::new(KillableSource {
            inner: Arc::new(source(&self.w, hubspot_client(&self.w))),
            kill: self.kill.clone(),
        });
        let mut options = options();
        options.lease = Duration::from_secs(300);
        options.claim_batch = 200;
        // No overlap: the checkpoint sits right at the newest change it covers, so the
        // check below has contacts behind it even when all were seeded within a second.
        options.overlap = chrono::Duration::zero();
        let engine = SyncEngine::builder(config(), store.clone() as Arc<dyn Store>)
            .source(source)
            .badge_sink(self.sink.clone())
            .clock(self.clock.clone())
            .options(options)
            .build();
        (engine, store)
    }
}

/// After a crash: the work the checkpoint claims is durable. A worker that only drains the
/// outbox must bring every contact last changed before the checkpoint to its right state.
async fn assert_checkpoint_covered_by_durable_work(h: &Harness, db: &Path, label: &str) -> usize {
    let (engine, store) = h.restart(db).await;
    h.kill.disarm();
    let drained = engine.drain_outbox(&h.w.tenant).await.unwrap();
    assert_eq!(drained.failed, 0, "{label}: {drained:?}");
    let Some(cp) = store
        .checkpoint(&h.w.tenant, "hubspot", "contacts")
        .await
        .unwrap()
    else {
        return 0;
    };
    let expected = expected(&h.w);
    let actual = actual(&h.w);
    let users: HashMap<String, String> =
        h.w.cativa
            .users()
            .into_iter()
            .map(|u| (u.email.trim().to_lowercase(), u.id))
            .collect();
    let mut checked = 0;
    for c in h.w.hubspot.contacts() {
        if c.updated_at >= cp.modified_at {
            continue;
        }
        let Some(user) = c
            .properties
            .get("email")
            .and_then(|e| users.get(&e.trim().to_lowercase()))
        else {
            continue;
        };
        checked += 1;
        assert_eq!(
            actual.get(user),
            expected.get(user),
            "{label}: contact {} changed at {} before the checkpoint {} but its change is not durable",
            c.id,
            c.updated_at,
            cp.modified_at
        );
    }
    assert_effects_alternate(&h.w);
    checked
}

fn assert_effects_within_keys(h: &Harness, label: &str) {
    // Every effect on the sandbox came from a distinct idempotency key: replays after a
    // crash (the same key sent again) had no effect.
    let effects =
        h.w.cativa
            .effects()
            .into_iter()
            .filter(|e| !matches!(e, sync_sandbox::cativa::Effect::UserCreated { .. }))
            .count();
    let keys = h.sink.sent.lock().unwrap().len();
    assert!(
        effects <= keys,
        "{label}: {effects} effects from {keys} distinct keys"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_at_50_random_points_ends_exactly_right() {
    let contacts = env_or("CRASH_CONTACTS", 5000) as usize;
    let points = env_or("CRASH_POINTS", 50);
    let seed = env_or("CRASH_SEED", 0x5eed);
    let mut rng = Rng(seed);
    let w = world(contacts, seed).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let kill = Arc::new(KillSwitch::default());
    let sink = Arc::new(KillableSink {
        inner: ApiBadgeSink::new(w.tenant.clone(), cativa_client(&w)),
        kill: kill.clone(),
        sent: Mutex::new(HashMap::new()),
    });
    let h = Harness {
        w,
        kill,
        sink,
        clock: Arc::new(ShiftedClock::default()),
    };
    {
        let store = sqlite(&db).await;
        seed_mappings(&h.w, store.as_ref()).await;
    }
    assert!(expected(&h.w).values().filter(|b| !b.is_empty()).count() > contacts / 20);
    // Seeding stamps every contact with one instant; spread them over 50 instants so the
    // checkpoint moves page by page (and the checks below have contacts behind it).
    for chunk in h.w.ids.chunks(contacts.div_ceil(50).max(1)) {
        for id in chunk {
            h.w.hubspot
                .set_property(*id, "firstname", &format!("Member {id}"))
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }

    // Contacts whose tag is flipped between crashes (each once), so every restart has new
    // work to die in.
    let mut flippable: Vec<u64> = h.w.ids.clone();
    let (mut kills, mut op_kills, mut completed) = (0, 0, 0);
    // Contacts checked against the checkpoint, over all checks.
    let mut checked = 0;
    // Kill points are drawn within the length of the last complete run (in operations and
    // in time), so each lands inside a run rather than after it.
    let mut run_ops = 40u64;
    let mut run_time = Duration::from_millis(400);
    let mut i = 0u64;
    while kills < points {
        assert!(i < points * 4, "{kills} kills in {i} runs");
        let label = format!("seed {seed:#x} run {i}");
        let (engine, store) = h.restart(&db).await;
        let run = engine.run_delta(&h.w.tenant);
        let started = std::time::Instant::now();
        let killed = if i % 5 == 4 {
            // Anywhere, by the clock (SQLite writes and HTTP reads included).
            h.kill.arm(u64::MAX);
            let micros = u64::try_from(run_time.as_micros()).unwrap_or(u64::MAX);
            let after = Duration::from_micros(1 + rng.below(micros));
            tokio::time::timeout(after, run).await.is_err()
        } else {
            h.kill.arm(1 + rng.below(run_ops));
            tokio::select! {
                r = run => {
                    let r = r.unwrap();
                    assert!(r.stopped.is_none(), "{label}: {r:?}");
                    false
                }
                () = h.kill.tripped() => true,
            }
        };
        if !killed {
            run_ops = h.kill.ops.load(Ordering::SeqCst).max(2);
            run_time = started.elapsed().max(Duration::from_millis(1));
        }
        i += 1;
        drop(engine);
        drop(store);
        if killed {
            kills += 1;
            op_kills += u64::from(h.kill.tripped.load(Ordering::SeqCst));
        } else {
            completed += 1;
        }
        assert_effects_alternate(&h.w);
        assert_effects_within_keys(&h, &label);
        if i.is_multiple_of(3) {
            checked += assert_checkpoint_covered_by_durable_work(&h, &db, &label).await;
        }
        // New work: flip the tag of a few contacts not flipped before.
        for _ in 0..10 {
            if flippable.is_empty() {
                break;
            }
            let id = flippable.swap_remove(rng.below(flippable.len() as u64) as usize);
            let c = h.w.hubspot.contact(id).unwrap();
            let tagged = c
                .properties
                .get(h.w.hubspot.tags_property())
                .is_some_and(|v| v.split(';').any(|t| t == TAG));
            if tagged {
                h.w.hubspot.remove_tag(id, TAG).unwrap();
            } else {
                h.w.hubspot.add_tag(id, TAG).unwrap();
            }
        }
    }
    let effects_before_last = h.w.cativa.effects().len();
    eprintln!(
        "{kills} kills ({op_kills} at an operation), {completed} runs completed, {effects_before_last} effects before the last restart"
    );
    assert!(effects_before_last > 0, "killed runs made progress");
    assert!(checked > 0, "the checkpoint checks covered contacts");
    assert!(
        op_kills > 0 && op_kills < kills,
        "both kinds of kill happened: {op_kills} of {kills} at an operation"
    );

    // The last restart runs to the end: exactly the state the rules imply.
    h.kill.disarm();
    let (engine, store) = h.restart(&db).await;
    let report = engine.run_delta(&h.w.tenant).await.unwrap();
    assert!(report.stopped.is_none(), "{report:?}");
    let drained = engine.drain_outbox(&h.w.tenant).await.unwrap();
    assert_eq!(drained.failed, 0);
    let counts = sync_core::ports::Outbox::outbox_counts(store.as_ref(), &h.w.tenant)
        .await
        .unwrap();
    assert_eq!(counts.pending + counts.in_flight, 0, "{counts:?}");
    assert_eq!(counts.failed, 0, "{counts:?}");
    assert_eq!(actual(&h.w), expected(&h.w), "final state");
    assert_effects_alternate(&h.w);
    assert_effects_within_keys(&h, "final");

    // And nothing is left to do: another run writes nothing.
    let effects = h.w.cativa.effects().len();
    let again = engine.run_full_reconcile(&h.w.tenant).await.unwrap();
    assert_eq!(again.applied.get("assign_badge"), None, "{again:?}");
    assert_eq!(h.w.cativa.effects().len(), effects);
}

/// The child side of the SIGKILL test: runs a full reconcile against the sandboxes the
/// parent started, until killed. Not a test on its own (it returns at once without the
/// parent's environment).
#[test]
#[ignore = "run by sigkill_child_process_then_restart as a child process"]
fn sigkill_child() {
    let (Ok(hubspot), Ok(cativa), Ok(db), Ok(tags)) = (
        std::env::var("CRASH_CHILD_HUBSPOT"),
        std::env::var("CRASH_CHILD_CATIVA"),
        std::env::var("CRASH_CHILD_DB"),
        std::env::var("CRASH_CHILD_TAGS"),
    ) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = sqlite(Path::new(&db)).await;
        let tenant = TenantId::new("acme");
        let mut options = options();
        options.claim_batch = 50;
        let engine = SyncEngine::builder(config(), store as Arc<dyn Store>)
            .source(Arc::new(source_with(&tags, hubspot_client_at(&hubspot))))
            .badge_sink(Arc::new(ApiBadgeSink::new(
                tenant.clone(),
                cativa_client_at(&cativa),
            )))
            .options(options)
            .build();
        println!("CHILD STARTED");
        engine.run_full_reconcile(&tenant).await.unwrap();
        println!("CHILD FINISHED");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_child_process_then_restart() {
    let contacts = env_or("CRASH_CONTACTS", 5000) as usize;
    let w = world(contacts, 77).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    {
        let store = sqlite(&db).await;
        seed_mappings(&w, store.as_ref()).await;
    }
    let grants = expected(&w).values().filter(|b| !b.is_empty()).count();
    let exe = std::env::current_exe().unwrap();
    let mut child = tokio::process::Command::new(exe)
        .args(["--exact", "sigkill_child", "--ignored", "--nocapture"])
        .env("CRASH_CHILD_HUBSPOT", w.hubspot.base_url())
        .env("CRASH_CHILD_CATIVA", w.cativa.base_url())
        .env("CRASH_CHILD_DB", &db)
        .env("CRASH_CHILD_TAGS", w.hubspot.tags_property())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Kill it mid-apply: once about a third of the grants have reached the sandbox.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let effects = w.cativa.effects().len();
        if effects >= grants / 3 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child exited before it was killed ({effects} effects)"
        );
        assert!(tokio::time::Instant::now() < deadline, "child too slow");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.start_kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "killed: {status:?}");
    let at_kill = w.cativa.effects().len();
    assert!(
        at_kill < grants,
        "killed before the end ({at_kill}/{grants})"
    );

    // Restart in this process on the same file (after the child's lease has expired).
    let clock = Arc::new(ShiftedClock::default());
    clock.advance(chrono::Duration::minutes(10));
    let store = sqlite(&db).await;
    let engine = SyncEngine::builder(config(), store.clone() as Arc<dyn Store>)
        .source(Arc::new(source(&w, hubspot_client(&w))))
        .badge_sink(Arc::new(ApiBadgeSink::new(
            w.tenant.clone(),
            cativa_client(&w),
        )))
        .clock(clock)
        .options(options())
        .build();
    let report = engine.run_full_reconcile(&w.tenant).await.unwrap();
    assert!(report.stopped.is_none(), "{report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(actual(&w), expected(&w));
    assert_effects_alternate(&w);
    let grant_effects = w
        .cativa
        .effects()
        .into_iter()
        .filter(|e| matches!(e, sync_sandbox::cativa::Effect::BadgeGranted { .. }))
        .count();
    assert_eq!(grant_effects, grants, "one grant per user, none twice");
}

/// A receiver whose CRM lookup can be made to never return (the process dies there), on a
/// SQLite file that survives the "crash".
struct DeliveryWorld {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    tenant: TenantId,
    crm: Arc<sync_core::testkit::MemoryCrm>,
    kill: Arc<KillSwitch>,
}

impl DeliveryWorld {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            db: dir.path().join("sync.db"),
            _dir: dir,
            tenant: TenantId::new("acme"),
            crm: Arc::new(sync_core::testkit::MemoryCrm::new(CrmKind::Hubspot, 10)),
            kill: Arc::new(KillSwitch::default()),
        }
    }

    fn event() -> sync_core::CommunityEvent {
        sync_core::CommunityEvent::UserCreated {
            user: sync_core::CommunityUser::new(
                sync_core::CativaUserId::new("u-1"),
                Email::parse("new.member@example.com").unwrap(),
            ),
        }
    }

    /// A receiver engine under instance id `id`, with delivery leases of `lease`.
    async fn engine(&self, id: &str, lease: Duration) -> SyncEngine {
        let mut options = options();
        options.worker_id = id.into();
        options.lease = lease;
        SyncEngine::builder(config(), sqlite(&self.db).await as Arc<dyn Store>)
            .source(Arc::new(KillableSource {
                inner: self.crm.clone(),
                kill: self.kill.clone(),
            }))
            .crm_sink(self.crm.clone())
            .options(options)
            .build()
    }

    /// Handles the delivery under `id` until its CRM lookup "kills the process".
    async fn kill_mid_delivery(&self, id: &str, lease: Duration) {
        self.kill.arm(1);
        let first = self.engine(id, lease).await;
        let killed = tokio::select! {
            r = first.handle_community_event(&self.tenant, "exec-1", Self::event()) => { r.unwrap(); false }
            () = self.kill.tripped() => true,
        };
        assert!(killed, "the handler must die mid-delivery");
        self.kill.disarm();
    }

    async fn redeliver(&self, engine: &SyncEngine) -> sync_core::DeliveryOutcome {
        engine
            .handle_community_event(&self.tenant, "exec-1", Self::event())
            .await
            .unwrap()
    }
}

/// A crash while a webhook delivery is being handled (after the ledger write, before the
/// outbox write) must not lose it: the sender's retry of the same delivery id is processed.
/// The receiver runs under a configured instance id, as a restarted service does: the
/// restart takes back the delivery's lease at once instead of answering `InProgress`.
#[tokio::test]
async fn a_delivery_killed_mid_handling_is_processed_when_redelivered() {
    let w = DeliveryWorld::new();
    w.kill_mid_delivery("receiver-1", Duration::from_secs(300))
        .await;
    let restarted = w.engine("receiver-1", Duration::from_secs(300)).await;
    let outcome = w.redeliver(&restarted).await;
    assert!(
        matches!(outcome, sync_core::DeliveryOutcome::Accepted { .. }),
        "the retried delivery was dropped as {outcome:?}"
    );
    assert_eq!(
        w.crm.all().len(),
        1,
        "the retry provisioned the contact, once"
    );
}

/// Another instance (a different id) retrying a delivery whose handler died is told
/// `InProgress` (the sender retries) until the dead holder's lease expires, then processes it.
#[tokio::test]
async fn a_delivery_whose_handler_died_is_processed_by_another_instance_after_its_lease() {
    let w = DeliveryWorld::new();
    let lease = Duration::from_secs(1);
    w.kill_mid_delivery("receiver-1", lease).await;
    let other = w.engine("receiver-2", lease).await;
    let early = w.redeliver(&other).await;
    assert!(
        matches!(early, sync_core::DeliveryOutcome::InProgress),
        "the dead holder's lease still runs: {early:?}"
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let later = w.redeliver(&other).await;
    assert!(
        matches!(later, sync_core::DeliveryOutcome::Accepted { .. }),
        "after the lease the delivery is processed: {later:?}"
    );
    assert_eq!(w.crm.all().len(), 1, "provisioned once");
}
