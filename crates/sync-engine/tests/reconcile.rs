//! Delta and full reconcile must agree: the checkpoint a full reconcile leaves, and the
//! property that after any sequence of CRM changes, each followed by a delta run, a full
//! reconcile plans no badge action. Over the in-memory CRM, store and sinks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default
)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use sync_core::config::{BadgeRule, Condition, SyncConfig};
use sync_core::ports::{CheckpointStore, MappingStore};
use sync_core::testkit::{MemoryCrm, RecordingBadgeSink};
use sync_core::{
    ActionKind, BadgeGrant, CativaUserId, CrmContact, CrmKind, CrmRecordId, Email, Mapping,
    MemoryStore, Plan, PlanMode, Provenance, TenantId,
};
use sync_engine::Clock;
use sync_engine::{EngineOptions, SyncEngine};

const TAG: &str = "Pago Anual";

struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).single().unwrap()
}

fn email(i: usize) -> Email {
    Email::parse(&format!("person{i}@example.com")).unwrap()
}

fn id(i: usize) -> CrmRecordId {
    CrmRecordId::hubspot(i.to_string())
}

fn user(i: usize) -> CativaUserId {
    format!("u{i}").into()
}

struct World {
    tenant: TenantId,
    store: Arc<MemoryStore>,
    crm: Arc<MemoryCrm>,
    clock: Arc<ManualClock>,
    engine: SyncEngine,
}

fn world(page_size: usize) -> World {
    let mut raw = SyncConfig::default();
    raw.badge_rules = vec![BadgeRule::new(
        "annual",
        "Premium",
        Condition::Tag(TAG.into()),
    )];
    let config = raw.validate().unwrap();
    let store = Arc::new(MemoryStore::new());
    let crm = Arc::new(MemoryCrm::new(CrmKind::Hubspot, page_size));
    let clock = Arc::new(ManualClock(Mutex::new(t(10_000))));
    let mut options = EngineOptions::default();
    options.overlap = Duration::seconds(1);
    let engine = SyncEngine::builder(config, store.clone())
        .source(crm.clone())
        .crm_sink(crm.clone())
        .badge_sink(Arc::new(RecordingBadgeSink::new()))
        .clock(clock.clone())
        .options(options)
        .build();
    World {
        tenant: TenantId::new("acme"),
        store,
        crm,
        clock,
        engine,
    }
}

impl World {
    async fn add_user(&self, i: usize) {
        self.store
            .put_mapping(
                &self.tenant,
                &Mapping::new(email(i), t(0)).with_user(user(i)),
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_full_reconcile_leaves_a_checkpoint_so_the_next_delta_reads_only_what_changed() {
    let w = world(7);
    for i in 0..20 {
        let mut c = CrmContact::new(id(i), Some(email(i)), t(i as i64));
        if i % 2 == 0 {
            c = c.with_tag(TAG);
        }
        w.crm.put(c);
        w.add_user(i).await;
    }
    let started = w.clock.now();
    let full = w.engine.run_full_reconcile(&w.tenant).await.unwrap();
    assert_eq!(full.scan_complete, Some(true), "{full}");
    let expected = sync_core::Cursor::at(started - Duration::seconds(1));
    assert_eq!(
        full.checkpoint.as_ref(),
        Some(&expected),
        "scan start minus overlap"
    );
    let stored = w
        .store
        .checkpoint(&w.tenant, CrmKind::Hubspot.as_str(), "contacts")
        .await
        .unwrap();
    assert_eq!(stored, Some(expected), "the checkpoint is stored");

    w.clock.advance(Duration::minutes(1));
    for i in [3, 4] {
        w.crm.update(&id(i), |c| {
            c.tags.insert(TAG.into());
            c.updated_at = t(10_030);
        });
    }
    w.clock.advance(Duration::minutes(1));
    let delta = w.engine.run_delta(&w.tenant).await.unwrap();
    assert_eq!(delta.read, 2, "only the two changed contacts: {delta}");
    assert_eq!(delta.applied.get("assign_badge"), Some(&1), "{delta}");
}

/// A full reconcile over pages of 2. The row of `u3` (linked to record 3, granted Premium) has
/// email person3; record 3 now carries person1 and is still tagged, but record 0, on a later
/// page, carries person1 too. As in one batch, the rename is refused while another contact
/// has the email, so the row keeps its email, its record and its badge, and record 0 (no row
/// of its own) is not handed `u3`'s row by the duplicate ranking.
#[tokio::test]
async fn a_full_reconcile_does_not_rename_a_row_onto_an_email_a_later_page_holds() {
    let w = world(2);
    let granted = Mapping::new(email(3), t(0))
        .with_user(user(3))
        .with_crm(id(3))
        .with_badge(BadgeGrant::new(
            "Premium",
            Provenance::sync("annual"),
            t(100),
        ));
    w.store.put_mapping(&w.tenant, &granted).await.unwrap();
    let other = Mapping::new(email(0), t(0))
        .with_user(user(1))
        .with_crm(id(1));
    w.store.put_mapping(&w.tenant, &other).await.unwrap();
    // Scan order is by modification time: [4, 3] then [1, 0].
    w.crm.put(CrmContact::new(id(4), Some(email(4)), t(4)));
    w.crm
        .put(CrmContact::new(id(3), Some(email(1)), t(200)).with_tag(TAG));
    w.crm.put(CrmContact::new(id(1), Some(email(0)), t(300)));
    w.crm.put(CrmContact::new(id(0), Some(email(1)), t(400)));

    let full = w
        .engine
        .plan(
            &w.tenant,
            PlanMode::FullReconcile {
                scan_complete: true,
            },
        )
        .await
        .unwrap();
    assert!(badge_actions(&full).is_empty(), "{full}");
    assert!(
        !full
            .actions
            .iter()
            .any(|a| matches!(a.kind, ActionKind::LinkMapping { .. })),
        "no row is renamed or handed over: {full}"
    );

    let report = w.engine.run_full_reconcile(&w.tenant).await.unwrap();
    assert_eq!(report.scan_complete, Some(true), "{report}");
    let row = w
        .store
        .mapping_by_user(&w.tenant, &user(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.email, email(3), "the row keeps its email");
    assert_eq!(row.crm_id, Some(id(3)), "and its record");
    assert!(row.grant(&"Premium".into()).is_some(), "and its badge");
}

/// A delta that reads a contact whose new email an unchanged contact already has refuses the
/// rename, as a full reconcile holding both would.
#[tokio::test]
async fn a_delta_does_not_rename_a_row_onto_an_email_an_unread_contact_holds() {
    let w = world(50);
    w.store
        .put_mapping(
            &w.tenant,
            &Mapping::new(email(3), t(0))
                .with_user(user(3))
                .with_crm(id(3)),
        )
        .await
        .unwrap();
    w.crm.put(CrmContact::new(id(0), Some(email(1)), t(10)));
    w.crm.put(CrmContact::new(id(3), Some(email(3)), t(20)));
    w.engine.run_delta(&w.tenant).await.unwrap();
    w.clock.advance(Duration::minutes(1));
    let at = w.clock.now();
    w.crm.update(&id(3), |c| {
        c.email = Some(email(1));
        c.updated_at = at;
    });
    w.clock.advance(Duration::minutes(1));
    let delta = w.engine.plan(&w.tenant, PlanMode::Delta).await.unwrap();
    assert!(
        !delta
            .actions
            .iter()
            .any(|a| matches!(a.kind, ActionKind::LinkMapping { .. })),
        "the rename is refused: {delta}"
    );
    let full = w
        .engine
        .plan(
            &w.tenant,
            PlanMode::FullReconcile {
                scan_complete: true,
            },
        )
        .await
        .unwrap();
    assert!(
        !full
            .actions
            .iter()
            .any(|a| matches!(a.kind, ActionKind::LinkMapping { .. })),
        "as a full reconcile refuses it: {full}"
    );
}

/// The regression seed of the property, replayed as a plain test (an email change onto
/// another person's email, collisions and a merge, over pages of 2).
#[tokio::test]
async fn the_known_rename_and_collision_sequence_over_pages_of_two_agrees() {
    use Change::*;
    let users = vec![false, true, false, true, false, false];
    let changes = vec![
        Tag(3, true),
        Collide(3, 1),
        Merge(2, 0, false),
        Email(1, 0),
        Collide(0, 3),
    ];
    delta_then_full_agree(vec![false; CONTACTS], users, changes, 2)
        .await
        .unwrap();
}

/// A regression seed of the property: a contact takes the email of a badge holder and its row
/// (the holder's badge is removed), is merged into another linked contact, which then takes
/// the same email. The holder, tagged all along, must get its row and badge back (the assign
/// repeated the first one's key, so the outbox dropped it, until keys carried the row's
/// generation).
#[tokio::test]
async fn a_holder_whose_row_came_back_after_a_merge_gets_its_badge_back() {
    use Change::*;
    let users = vec![false, false, false, true, true, false];
    let changes = vec![Collide(0, 4), Merge(0, 3, false), Email(3, 4)];
    let tagged = vec![false, false, false, false, true];
    delta_then_full_agree(tagged, users, changes, 50)
        .await
        .unwrap();
}

/// A regression seed of the property: a row handed back and forth between two records, then
/// taken back by the one that did not change when the other is merged away. The link taking
/// it back must apply (it had the key of the earlier identical link, so the outbox dropped it
/// and the full reconcile removed the badge by absence, until keys carried the row's
/// generation).
#[tokio::test]
async fn a_row_taken_back_by_an_unchanged_record_is_relinked() {
    use Change::*;
    let users = vec![false, false, true, true, true, false];
    let changes = vec![
        Collide(1, 2),
        Collide(3, 1),
        Tag(2, true),
        Tag(1, false),
        Merge(1, 3, false),
        Tag(0, false),
    ];
    let tagged = vec![false, true, false, false, false];
    delta_then_full_agree(tagged, users, changes, 50)
        .await
        .unwrap();
}

/// One CRM change of the generated sequences.
#[derive(Debug, Clone)]
enum Change {
    Tag(usize, bool),
    /// Contact takes email number `n` (maybe another contact's, maybe a fresh one).
    Email(usize, usize),
    /// Contact takes the current email of another contact (both usually linked).
    Collide(usize, usize),
    Archive(usize),
    Restore(usize),
    /// The first contact is merged into the second (the survivor is touched, as CRMs do).
    Merge(usize, usize, bool),
}

const CONTACTS: usize = 5;
const EMAILS: usize = 8;

fn arb_change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (0..CONTACTS, any::<bool>()).prop_map(|(i, on)| Change::Tag(i, on)),
        2 => (0..CONTACTS, 0..EMAILS).prop_map(|(i, n)| Change::Email(i, n)),
        2 => (0..CONTACTS, 0..CONTACTS).prop_map(|(i, j)| Change::Collide(i, j)),
        1 => (0..CONTACTS).prop_map(Change::Archive),
        1 => (0..CONTACTS).prop_map(Change::Restore),
        2 => (0..CONTACTS, 0..CONTACTS, any::<bool>()).prop_map(|(i, j, union)| Change::Merge(i, j, union)),
    ]
}

/// Applies a change to the CRM at time `at`; `false` when it does not apply (no effect).
fn apply(crm: &MemoryCrm, change: &Change, at: DateTime<Utc>) -> bool {
    let get = |i: usize| crm.get(&id(i));
    let live = |i: usize| get(i).is_some_and(|c| !c.archived);
    match *change {
        Change::Tag(i, on) if live(i) => crm.update(&id(i), |c| {
            if on {
                c.tags.insert(TAG.into());
            } else {
                c.tags.remove(TAG);
            }
            c.updated_at = at;
        }),
        Change::Email(i, n) if live(i) => crm.update(&id(i), |c| {
            c.email = Some(email(n));
            c.updated_at = at;
        }),
        Change::Collide(i, j) if i != j && live(i) => {
            let Some(other) = get(j).and_then(|c| c.email) else {
                return false;
            };
            crm.update(&id(i), |c| {
                c.email = Some(other);
                c.updated_at = at;
            })
        }
        Change::Archive(i) if live(i) => crm.update(&id(i), |c| {
            c.archived = true;
            c.updated_at = at;
        }),
        Change::Restore(i) if get(i).is_some_and(|c| c.archived && c.merged_into.is_none()) => crm
            .update(&id(i), |c| {
                c.archived = false;
                c.updated_at = at;
            }),
        Change::Merge(i, j, union) if i != j && live(i) && live(j) => {
            let loser_tagged = get(i).is_some_and(|c| c.tags.contains(TAG));
            crm.update(&id(i), |c| {
                c.archived = true;
                c.merged_into = Some(id(j));
                c.updated_at = at;
            });
            crm.update(&id(j), |c| {
                if union && loser_tagged {
                    c.tags.insert(TAG.into());
                }
                c.updated_at = at;
            });
        }
        _ => return false,
    }
    true
}

fn badge_actions(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter(|a| {
            matches!(
                a.kind,
                ActionKind::AssignBadge { .. } | ActionKind::RemoveBadge { .. }
            )
        })
        .map(ToString::to_string)
        .collect()
}

async fn delta_then_full_agree(
    tagged: Vec<bool>,
    users: Vec<bool>,
    changes: Vec<Change>,
    page_size: usize,
) -> Result<(), TestCaseError> {
    let w = world(page_size);
    for (i, tagged) in tagged.iter().enumerate() {
        let mut c = CrmContact::new(id(i), Some(email(i)), t(i as i64));
        if *tagged {
            c = c.with_tag(TAG);
        }
        w.crm.put(c);
    }
    // Users: one per flag, some without a contact (their email may be taken later).
    for (i, has) in users.iter().enumerate() {
        if *has {
            w.add_user(i).await;
        }
    }
    w.engine.run_delta(&w.tenant).await.unwrap();
    let mut log = Vec::new();
    for change in &changes {
        w.clock.advance(Duration::minutes(1));
        let at = w.clock.now();
        if !apply(&w.crm, change, at) {
            continue;
        }
        w.clock.advance(Duration::minutes(1));
        let report = w.engine.run_delta(&w.tenant).await.unwrap();
        prop_assert!(report.stopped.is_none(), "{report}");
        log.push(format!("{change:?}\n{report}"));
    }
    let full = w
        .engine
        .plan(
            &w.tenant,
            PlanMode::FullReconcile {
                scan_complete: true,
            },
        )
        .await
        .unwrap();
    let actions = badge_actions(&full);
    prop_assert!(
        actions.is_empty(),
        "the full reconcile plans badge actions {:?}\nafter:\n{}\nfull plan:\n{}",
        actions,
        log.join("\n"),
        full
    );
    Ok(())
}

proptest! {
    // 2,000 sequences of up to 10 changes; a few seconds in a debug build.
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn after_any_changes_each_followed_by_a_delta_a_full_reconcile_plans_no_badge_action(
        tagged in prop::collection::vec(any::<bool>(), CONTACTS),
        users in prop::collection::vec(prop::bool::weighted(0.8), CONTACTS + 1),
        changes in prop::collection::vec(arb_change(), 1..10),
        page_size in prop_oneof![3 => Just(50usize), 1 => Just(2usize)],
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(delta_then_full_agree(tagged, users, changes, page_size))?;
    }
}

#[test]
fn generated_changes_cover_every_kind() {
    // Guards the generator: every kind of change is produced and can apply.
    let crm = MemoryCrm::new(CrmKind::Hubspot, 10);
    for i in 0..CONTACTS {
        crm.put(CrmContact::new(id(i), Some(email(i)), t(0)));
    }
    let mut applied = BTreeSet::new();
    for (n, change) in [
        Change::Tag(0, true),
        Change::Email(1, 7),
        Change::Collide(2, 0),
        Change::Archive(3),
        Change::Restore(3),
        Change::Merge(4, 0, true),
    ]
    .iter()
    .enumerate()
    {
        assert!(apply(&crm, change, t(n as i64 + 1)), "{change:?}");
        applied.insert(format!("{change:?}").split('(').next().unwrap().to_owned());
    }
    assert_eq!(applied.len(), 6);
    assert!(
        !apply(&crm, &Change::Restore(4), t(10)),
        "a merged record is not restored"
    );
}
