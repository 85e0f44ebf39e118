//! Crash-safe pull workers: a one-shot pull job (`sync_service::jobs::run_once`, as a cron
//! job runs it, with `SIGTERM` raising the engine's stop signal) in a child process, killed from outside with SIGKILL or stopped with SIGTERM, while the HubSpot and
//! Cativa sandboxes live in this test process, so their state survives every kill.
//!
//! Leases are short (2 s) so a test never waits more than a few seconds for a dead
//! worker's claims. `LEASE_CONTACTS` (default 3000) scales the world.
//!
//! 1. kill -9 at five points of a full sync, restart with the same instance id at once: every
//!    grant exactly once, the restart finishes the work.
//! 2. The same with a different instance id: the restart waits out the dead worker's lease
//!    (bounded by `SYNC_ONCE_WAIT_SECS`) and finishes, no duplicate effect.
//! 3. kill -9 mid-removal: every removal done after a restart, other badges untouched.
//! 4. SIGTERM mid-apply: exit 0, a report on stdout, and the next run applies exactly the rest.
//! 5. Two workers racing on one PostgreSQL database, one killed (skipped without
//!    `SYNC_TEST_POSTGRES_URL`, failed without it when `SYNC_TEST_POSTGRES_REQUIRED=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod rel_support;

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cativa_client::sink::ApiBadgeSink;
use rel_support::*;
use sync_core::ports::{Outbox, Store};
use sync_core::{RunReport, TenantId};
use sync_engine::SyncEngine;
use sync_sandbox::cativa::Effect;
use sync_service::jobs::{Pull, exit_code, run_once};
use tokio::io::{AsyncBufReadExt, BufReader};

const LEASE_SECS: &str = "2";

fn contacts() -> usize {
    std::env::var("LEASE_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

/// The child's settings, from the environment the parent sets: `SYNC_INSTANCE_ID` (the
/// engine's worker id: a restart with the same id takes back its predecessor's claims at
/// once), `SYNC_LEASE_SECS` (the outbox lease) and `SYNC_ONCE_WAIT_SECS` (how long the run
/// waits for work held elsewhere; default two leases).
fn child_settings() -> (Option<String>, Duration, Duration) {
    let number = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().parse::<u64>().unwrap())
    };
    let instance = std::env::var("SYNC_INSTANCE_ID")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let lease = number("SYNC_LEASE_SECS").unwrap_or(15);
    let wait = number("SYNC_ONCE_WAIT_SECS").unwrap_or(2 * lease);
    (
        instance,
        Duration::from_secs(lease),
        Duration::from_secs(wait),
    )
}

/// The child side: one full-reconcile job against the parent's sandboxes and store
/// (SIGTERM stops it early: the batch in flight finishes, the rest is released), printing
/// its report as a JSON line; exits with the job's exit code. Not a test on its own.
#[test]
#[ignore = "run by the tests below as a child process"]
fn lease_worker_child() {
    let (Ok(hubspot), Ok(cativa), Ok(db), Ok(tags)) = (
        std::env::var("LEASE_CHILD_HUBSPOT"),
        std::env::var("LEASE_CHILD_CATIVA"),
        std::env::var("LEASE_CHILD_DB"),
        std::env::var("LEASE_CHILD_TAGS"),
    ) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let code = rt.block_on(async {
        let store: Arc<dyn Store> = match std::env::var("LEASE_CHILD_SCHEMA") {
            Ok(schema) => Arc::new(
                sync_store::PostgresStore::connect(
                    sync_store::PostgresOptions::new(db).schema(schema),
                )
                .await
                .unwrap(),
            ),
            Err(_) => sqlite(Path::new(&db)).await,
        };
        let tenant = TenantId::new("acme");
        let (instance, lease, once_wait) = child_settings();
        let mut o = options();
        if let Some(id) = instance {
            o.worker_id = id;
        }
        o.lease = lease;
        let engine = SyncEngine::builder(config(), store)
            .source(Arc::new(source_with(&tags, hubspot_client_at(&hubspot))))
            .badge_sink(Arc::new(ApiBadgeSink::new(
                tenant.clone(),
                cativa_client_at(&cativa),
            )))
            .options(o)
            .build();
        let stop = engine.stop_signal().clone();
        tokio::spawn(async move {
            sync_service::shutdown_signal().await;
            stop.stop();
        });
        println!("CHILD STARTED");
        let report = run_once(&engine, &tenant, Pull::FullReconcile, once_wait)
            .await
            .unwrap();
        println!("{}", report.to_json_line());
        exit_code(&report)
    });
    std::process::exit(code);
}

/// Where the children keep their state.
enum Db<'a> {
    Sqlite(&'a Path),
    Postgres { url: &'a str, schema: &'a str },
}

/// A running child worker, its stdout collected line by line.
struct Child {
    process: tokio::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: tokio::task::JoinHandle<()>,
}

fn spawn(w: &World, db: &Db<'_>, instance: &str, once_wait_secs: u64) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(["--exact", "lease_worker_child", "--ignored", "--nocapture"])
        .env("LEASE_CHILD_HUBSPOT", w.hubspot.base_url())
        .env("LEASE_CHILD_CATIVA", w.cativa.base_url())
        .env("LEASE_CHILD_TAGS", w.hubspot.tags_property())
        .env("SYNC_INSTANCE_ID", instance)
        .env("SYNC_LEASE_SECS", LEASE_SECS)
        .env("SYNC_ONCE_WAIT_SECS", once_wait_secs.to_string())
        .env_remove("LEASE_CHILD_SCHEMA")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    match db {
        Db::Sqlite(path) => cmd.env("LEASE_CHILD_DB", path),
        Db::Postgres { url, schema } => cmd
            .env("LEASE_CHILD_DB", url)
            .env("LEASE_CHILD_SCHEMA", schema),
    };
    let mut process = cmd.spawn().unwrap();
    let stdout = process.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let reader = tokio::spawn(async move {
        let mut reader = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    Child {
        process,
        lines,
        reader,
    }
}

impl Child {
    fn started(&self) -> bool {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l == "CHILD STARTED")
    }

    /// Waits (bounded) for `ready`, then kills the child with SIGKILL.
    async fn kill_when(&mut self, label: &str, ready: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
        while !ready(self) {
            assert!(
                self.process.try_wait().unwrap().is_none(),
                "{label}: the child exited before its kill point"
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: kill point never reached"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        self.process.start_kill().unwrap(); // SIGKILL
        let status = self.process.wait().await.unwrap();
        assert!(!status.success(), "{label}: killed: {status:?}");
    }

    /// Waits (bounded) for the child to exit; returns its exit code and its report.
    async fn finish(mut self, label: &str) -> (i32, RunReport) {
        let status = tokio::time::timeout(Duration::from_secs(300), self.process.wait())
            .await
            .unwrap_or_else(|_| panic!("{label}: the worker did not finish"))
            .unwrap();
        let _ = self.reader.await;
        let lines = self.lines.lock().unwrap().clone();
        let json = lines
            .iter()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("{label}: no JSON report on stdout: {lines:?}"));
        let report: RunReport = serde_json::from_str(json).unwrap();
        (status.code().unwrap_or(-1), report)
    }
}

fn grants(w: &World) -> usize {
    w.cativa
        .effects()
        .iter()
        .filter(|e| matches!(e, Effect::BadgeGranted { .. }))
        .count()
}

fn removals(w: &World) -> usize {
    w.cativa
        .effects()
        .iter()
        .filter(|e| matches!(e, Effect::BadgeRemoved { .. }))
        .count()
}

fn hubspot_requests(w: &World) -> u64 {
    w.hubspot.requests().0.values().map(|s| s.requests).sum()
}

/// After the restart: the rule's exact state, each grant made once, nothing left queued.
async fn assert_converged(w: &World, store: &dyn Store, label: &str) {
    assert_eq!(actual(w), expected(w), "{label}: final state");
    assert_effects_alternate(w);
    let wanted = expected(w).values().filter(|b| !b.is_empty()).count();
    assert_eq!(grants(w), wanted, "{label}: every grant exactly once");
    let counts = store.outbox_counts(&w.tenant).await.unwrap();
    assert_eq!(
        (counts.pending, counts.in_flight, counts.failed),
        (0, 0, 0),
        "{label}: nothing stranded: {counts:?}"
    );
}

#[derive(Clone, Copy, Debug)]
enum KillPoint {
    BeforeReading,
    MidRead,
    StartOfApply,
    MidApply,
    Late,
}

const KILL_POINTS: [KillPoint; 5] = [
    KillPoint::BeforeReading,
    KillPoint::MidRead,
    KillPoint::StartOfApply,
    KillPoint::MidApply,
    KillPoint::Late,
];

fn at_kill_point(point: KillPoint, w: &World, child: &Child, wanted: usize) -> bool {
    match point {
        KillPoint::BeforeReading => child.started(),
        KillPoint::MidRead => hubspot_requests(w) >= 8,
        KillPoint::StartOfApply => grants(w) >= 1,
        KillPoint::MidApply => grants(w) >= wanted / 2,
        KillPoint::Late => grants(w) >= wanted * 9 / 10,
    }
}

/// Kills a full sync at each point, restarts at once with `restart_id`, and checks the end
/// state. The restart's `--once` wait is one lease plus a margin: with another instance id
/// it must finish within about one lease of the kill.
async fn kill_and_restart(restart_id: &str) {
    for (i, point) in KILL_POINTS.into_iter().enumerate() {
        let label = format!("{point:?}, restart as {restart_id}");
        let w = world(contacts(), 100 + i as u64).await;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sync.db");
        let store = sqlite(&db).await;
        seed_mappings(&w, store.as_ref()).await;
        let wanted = expected(&w).values().filter(|b| !b.is_empty()).count();
        assert!(wanted > 100, "the world has grants to make");

        let mut first = spawn(&w, &Db::Sqlite(&db), "pod-a", 60);
        first
            .kill_when(&label, |c| at_kill_point(point, &w, c, wanted))
            .await;
        let at_kill = grants(&w);
        assert!(at_kill < wanted, "{label}: killed before the end");

        // Restarted at once, without waiting out any lease.
        let wait = LEASE_SECS.parse::<u64>().unwrap() + 3;
        let (code, report) = spawn(&w, &Db::Sqlite(&db), restart_id, wait)
            .finish(&label)
            .await;
        assert_eq!(code, 0, "{label}: {report:?}");
        assert!(report.stopped.is_none(), "{label}: {report:?}");
        assert_eq!(
            report.backlog.map(|b| b.outstanding()),
            Some(0),
            "{label}: {report:?}"
        );
        assert_converged(&w, store.as_ref(), &label).await;
        eprintln!(
            "{label}: killed after {at_kill} of {wanted} grants; the restart applied {}",
            report.applied.get("assign_badge").copied().unwrap_or(0)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_five_points_then_a_restart_with_the_same_instance_id_finishes_the_work() {
    kill_and_restart("pod-a").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_five_points_then_another_instance_finishes_within_one_lease() {
    kill_and_restart("pod-b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_removal_then_a_restart_removes_every_badge_and_keeps_other_sources() {
    let w = world(contacts(), 7).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let store = sqlite(&db).await;
    seed_mappings(&w, store.as_ref()).await;
    // A complete first sync grants every Premium.
    let (code, _) = spawn(&w, &Db::Sqlite(&db), "pod-a", 10)
        .finish("first sync")
        .await;
    assert_eq!(code, 0);
    assert_eq!(actual(&w), expected(&w));
    // 200 tagged contacts lose their tag; their users also hold a badge from elsewhere.
    let users: std::collections::HashMap<String, String> = w
        .cativa
        .users()
        .into_iter()
        .map(|u| (u.email.trim().to_lowercase(), u.id))
        .collect();
    let other_badge = sync_sandbox::cativa::DEFAULT_BADGES[1].0;
    let mut untagged = Vec::new();
    for c in w.hubspot.contacts() {
        if untagged.len() == 200 {
            break;
        }
        let tagged = c
            .properties
            .get(w.hubspot.tags_property())
            .is_some_and(|v| v.split(';').any(|t| t.trim() == TAG));
        let user = c
            .properties
            .get("email")
            .and_then(|e| users.get(&e.trim().to_lowercase()));
        if let (true, Some(user)) = (tagged, user) {
            w.hubspot.remove_tag(c.id, TAG).unwrap();
            w.cativa.grant_badge_elsewhere(user, other_badge).unwrap();
            untagged.push(user.clone());
        }
    }
    assert_eq!(untagged.len(), 200);

    let mut first = spawn(&w, &Db::Sqlite(&db), "pod-a", 10);
    first.kill_when("mid-removal", |_| removals(&w) >= 88).await;
    let at_kill = removals(&w);
    assert!(at_kill < 200, "killed mid-removal ({at_kill})");
    let (code, report) = spawn(&w, &Db::Sqlite(&db), "pod-a", 10)
        .finish("restart")
        .await;
    assert_eq!(code, 0, "{report:?}");
    assert_eq!(removals(&w), 200, "every removal done, each once");
    assert_eq!(actual(&w).len(), expected(&w).len());
    for user in &untagged {
        let held = w
            .cativa
            .users()
            .into_iter()
            .find(|u| u.id == *user)
            .unwrap();
        assert!(!held.has_badge(BADGE), "{user} kept Premium");
        assert!(
            held.has_badge(other_badge),
            "{user} lost a badge from elsewhere"
        );
    }
    assert_effects_alternate(&w);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_apply_exits_cleanly_with_a_report_and_the_next_run_applies_the_rest() {
    let w = world(contacts(), 11).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let store = sqlite(&db).await;
    seed_mappings(&w, store.as_ref()).await;
    let wanted = expected(&w).values().filter(|b| !b.is_empty()).count();

    let child = spawn(&w, &Db::Sqlite(&db), "pod-a", 10);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while grants(&w) < wanted / 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "apply never started"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let pid = child.process.id().unwrap();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let (code, report) = child.finish("SIGTERM").await;
    assert_eq!(code, 0, "{report:?}");
    assert!(report.interrupted, "{report:?}");
    let applied_before = grants(&w);
    assert!(applied_before < wanted, "stopped before the end");
    assert_eq!(
        report.applied.get("assign_badge").copied().unwrap_or(0) as usize,
        applied_before,
        "the report accounts for every grant made"
    );
    // Nothing stays claimed: the next run (another instance) need not wait for a lease.
    let counts = store.outbox_counts(&w.tenant).await.unwrap();
    assert_eq!(counts.in_flight, 0, "{counts:?}");

    let (code, next) = spawn(&w, &Db::Sqlite(&db), "pod-b", 0)
        .finish("next run")
        .await;
    assert_eq!(code, 0, "{next:?}");
    assert_eq!(
        next.applied.get("assign_badge").copied().unwrap_or(0) as usize,
        wanted - applied_before,
        "exactly the remainder"
    );
    assert_converged(&w, store.as_ref(), "after SIGTERM").await;
}

fn postgres_url() -> Option<String> {
    match std::env::var("SYNC_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("SYNC_TEST_POSTGRES_REQUIRED").as_deref() != Ok("1"),
                "SYNC_TEST_POSTGRES_REQUIRED=1 but SYNC_TEST_POSTGRES_URL is not set: run under scripts/with-postgres.sh"
            );
            println!("skipped: SYNC_TEST_POSTGRES_URL not set");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_racing_on_postgres_one_killed_strand_nothing_and_duplicate_nothing() {
    let Some(url) = postgres_url() else { return };
    let schema = format!("lease_race_{}", std::process::id());
    let store: Arc<dyn Store> = Arc::new(
        sync_store::PostgresStore::connect(
            sync_store::PostgresOptions::new(url.clone()).schema(schema.clone()),
        )
        .await
        .unwrap(),
    );
    let w = world(contacts(), 21).await;
    seed_mappings(&w, store.as_ref()).await;
    let wanted = expected(&w).values().filter(|b| !b.is_empty()).count();
    let db = Db::Postgres {
        url: &url,
        schema: &schema,
    };
    let wait = LEASE_SECS.parse::<u64>().unwrap() + 3;
    let mut doomed = spawn(&w, &db, "pod-a", wait);
    let survivor = spawn(&w, &db, "pod-b", wait);
    doomed.kill_when("race", |_| grants(&w) >= wanted / 3).await;
    let (code, report) = survivor.finish("survivor").await;
    assert_eq!(code, 0, "{report:?}");
    assert_eq!(
        report.backlog.map(|b| b.outstanding()),
        Some(0),
        "{report:?}"
    );
    assert_converged(&w, store.as_ref(), "postgres race").await;
}
