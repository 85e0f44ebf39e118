//! The health rules, one by one, and the stable JSON form of a status.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::TenantId;
use crate::plan::{Conflict, ConflictKind};
use crate::ports::{LastRun, RunMode, RunOutcome, RunRecord};
use crate::status::{
    FailureRecord, HealthState, HealthThresholds, Schedule, SyncStatus, assess, failure_reason,
    group_failures,
};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
}

fn ago(minutes: i64) -> DateTime<Utc> {
    now() - Duration::minutes(minutes)
}

fn ok_delta(ended_minutes_ago: i64) -> LastRun {
    let end = ago(ended_minutes_ago);
    let run = RunRecord::new(
        RunMode::Delta,
        end - Duration::seconds(5),
        end,
        RunOutcome::Ok,
    );
    LastRun::new(run, Some(end))
}

/// A healthy status: a delta ended ok five minutes ago, every 15 minutes.
fn healthy() -> SyncStatus {
    let mut s = SyncStatus::new(TenantId::new("acme"), now());
    s.last_runs = vec![ok_delta(5)];
    s.schedule = Schedule::every(900);
    s
}

fn health(s: &SyncStatus) -> (HealthState, Vec<String>) {
    let h = assess(s, now(), &HealthThresholds::default());
    (h.state, h.reasons)
}

#[test]
fn a_recent_successful_run_and_nothing_failed_is_green() {
    assert_eq!(health(&healthy()), (HealthState::Green, vec![]));
}

#[test]
fn rejected_credentials_are_red() {
    let mut s = healthy();
    s.connection.checked_at = Some(ago(1));
    s.connection.ok = Some(false);
    s.connection.error = Some("hubspot Auth error (HTTP 401): token expired".to_owned());
    let (state, reasons) = health(&s);
    assert_eq!(state, HealthState::Red);
    assert!(
        reasons[0].starts_with("credentials rejected"),
        "{reasons:?}"
    );
}

#[test]
fn a_run_stopped_on_credentials_is_red_until_a_later_check_passes() {
    let mut s = healthy();
    let mut run = RunRecord::new(RunMode::Drain, ago(3), ago(2), RunOutcome::Stopped);
    run.credentials_rejected = true;
    run.reason = Some("hubspot Forbidden error (HTTP 403): missing scope".to_owned());
    s.last_runs.push(LastRun::new(run, None));
    assert_eq!(health(&s).0, HealthState::Red);
    s.connection.checked_at = Some(ago(1));
    s.connection.ok = Some(true);
    assert_eq!(health(&s).0, HealthState::Green);
}

#[test]
fn an_exhausted_quota_is_red_until_it_resets() {
    let mut s = healthy();
    let mut run = RunRecord::new(RunMode::Drain, ago(3), ago(2), RunOutcome::Stopped);
    run.resume_after = Some(now() + Duration::hours(3));
    s.last_runs.push(LastRun::new(run.clone(), None));
    let (state, reasons) = health(&s);
    assert_eq!(state, HealthState::Red);
    assert!(reasons[0].starts_with("quota exhausted"), "{reasons:?}");
    let later = now() + Duration::hours(4);
    s.last_runs[0] = ok_delta(0);
    s.last_runs[0].last_ok_at = Some(later);
    assert_eq!(
        assess(&s, later, &HealthThresholds::default()).state,
        HealthState::Green,
        "the reset time has passed"
    );
}

#[test]
fn no_successful_run_within_two_intervals_is_red() {
    let mut s = healthy();
    s.last_runs = vec![ok_delta(29)];
    assert_eq!(health(&s).0, HealthState::Green, "29 minutes < 2 x 15");
    s.last_runs = vec![ok_delta(31)];
    let (state, reasons) = health(&s);
    assert_eq!(state, HealthState::Red);
    assert!(
        reasons[0].starts_with("no successful run since"),
        "{reasons:?}"
    );
    s.schedule = Schedule::default();
    assert_eq!(
        health(&s).0,
        HealthState::Green,
        "no interval: the rule is off"
    );
}

#[test]
fn never_a_successful_run_is_amber_then_red_after_two_intervals() {
    let mut s = healthy();
    s.last_runs.clear();
    assert_eq!(health(&s).0, HealthState::Amber);
    let run = RunRecord::new(RunMode::Delta, ago(40), ago(39), RunOutcome::Failed);
    s.last_runs = vec![LastRun::new(run, None)];
    assert_eq!(health(&s).0, HealthState::Red);
}

#[test]
fn failures_are_amber_below_the_threshold_and_red_at_it() {
    let mut s = healthy();
    s.outbox.failed = 3;
    let (state, reasons) = health(&s);
    assert_eq!(state, HealthState::Amber);
    assert_eq!(reasons, vec!["3 failed items: fix the cause, then requeue"]);
    s.outbox.failed = 25;
    assert_eq!(health(&s).0, HealthState::Red);
    let strict = HealthThresholds {
        failed_red: 2,
        ..HealthThresholds::default()
    };
    s.outbox.failed = 2;
    assert_eq!(assess(&s, now(), &strict).state, HealthState::Red);
    s.outbox.dismissed = 40;
    s.outbox.failed = 0;
    assert_eq!(
        health(&s).0,
        HealthState::Green,
        "dismissed items do not count"
    );
}

#[test]
fn a_large_or_growing_backlog_is_amber() {
    let mut s = healthy();
    s.outbox.pending = 1000;
    assert_eq!(health(&s).0, HealthState::Amber);
    s.outbox.pending = 150;
    s.last_runs[0].run.backlog = Some(100);
    assert_eq!(health(&s).0, HealthState::Green, "grew by 50 < 100");
    s.last_runs[0].run.backlog = Some(10);
    let (state, reasons) = health(&s);
    assert_eq!(state, HealthState::Amber);
    assert!(reasons[0].starts_with("backlog growing"), "{reasons:?}");
}

#[test]
fn open_conflicts_and_a_failed_run_are_amber() {
    let mut s = healthy();
    s.conflicts.push(Conflict {
        kind: ConflictKind::DuplicateEmail,
        email: None,
        crm_ids: vec![],
        detail: "two contacts share an email".to_owned(),
    });
    assert_eq!(
        health(&s),
        (HealthState::Amber, vec!["1 open conflicts".to_owned()])
    );
    s.conflicts.clear();
    let mut run = RunRecord::new(RunMode::Drain, ago(2), ago(1), RunOutcome::Failed);
    run.reason = Some("store unavailable".to_owned());
    s.last_runs.push(LastRun::new(run, None));
    let (state, reasons) = health(&s);
    assert_eq!(state, HealthState::Amber);
    assert_eq!(
        reasons,
        vec!["the last drain run failed: store unavailable"]
    );
}

#[test]
fn red_reasons_come_before_amber_ones() {
    let mut s = healthy();
    s.outbox.failed = 1;
    s.connection.ok = Some(false);
    let (state, reasons) = health(&s);
    assert_eq!(state, HealthState::Red);
    assert!(reasons[0].starts_with("credentials rejected"));
    assert!(reasons[1].starts_with("1 failed items"));
}

#[test]
fn failures_group_by_kind_and_reason_with_five_latest_samples() {
    let mut records = Vec::new();
    for n in 0..7 {
        let error = format!("hubspot Invalid error (HTTP 400): property cativa_tier missing ({n})");
        records.push((
            "update_crm_properties".to_owned(),
            FailureRecord::new(format!("k{n}"), "a@x.io", ago(60 - n), error),
        ));
    }
    records.push((
        "assign_badge".to_owned(),
        FailureRecord::new(
            "b",
            "b@x.io",
            ago(1),
            "cativa NotFound error: no such badge",
        ),
    ));
    let groups = group_failures(records);
    assert_eq!(groups.len(), 2);
    assert_eq!(
        (groups[0].kind.as_str(), groups[0].count),
        ("update_crm_properties", 7)
    );
    assert_eq!(groups[0].reason, "hubspot Invalid error (HTTP 400)");
    assert_eq!(groups[0].samples.len(), 5);
    assert_eq!(groups[0].samples[0].key, "k6", "the latest first");
    assert!(
        groups[0]
            .advice
            .contains("property cativa_tier missing (6)")
    );
    assert_eq!(failure_reason("no colon here"), "no colon here");
}

#[test]
fn the_status_json_has_stable_snake_case_fields() {
    let mut s = healthy();
    s.health = assess(&s, now(), &HealthThresholds::default());
    let json = serde_json::to_value(&s).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = vec![
        "tenant",
        "generated_at",
        "connection",
        "account_id",
        "last_runs",
        "timing",
        "outbox",
        "failures",
        "conflicts",
        "webhooks",
        "schedule",
        "health",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(json["health"]["state"], "green");
    assert_eq!(json["last_runs"][0]["run"]["mode"], "delta");
    assert_eq!(json["last_runs"][0]["run"]["outcome"], "ok");
    assert_eq!(json["schedule"]["interval_secs"], 900);
    let back: SyncStatus = serde_json::from_value(json).unwrap();
    assert_eq!(back, s);
}
