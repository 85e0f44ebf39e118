//! The quickstart example's code (`run_quickstart`), run as CI runs it: it starts its
//! sandboxes, says so on its first line, prints the plan and the report, and what it prints
//! is what happened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cativa_crm_sync_examples::quickstart::{QuickstartOptions, run_quickstart};
use cativa_crm_sync_examples::settings::Settings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_runs_and_tells_the_truth() {
    let settings = Settings::from_lookup(|_| None).unwrap();
    let mut out = Vec::new();
    let outcome = run_quickstart(&settings, &QuickstartOptions::default(), &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("Sandbox mode:"), "{}", lines[0]);
    assert_eq!(outcome.contacts, 1_000);
    assert!(outcome.users.accepted > 400, "{:?}", outcome.users);
    assert_eq!(outcome.users.duplicate, 0);
    assert!(text.contains(&format!(
        "Recorded {} community users from {} signed user_created webhooks",
        outcome.users.accepted, outcome.users.accepted
    )));

    // The plan is printed, cut, with its summary line.
    assert!(text.contains("Plan (dry run, nothing written):"));
    assert!(
        text.contains("more lines"),
        "1,000 contacts make a long plan"
    );
    let summary = outcome.plan.to_string();
    assert!(text.contains(summary.lines().last().unwrap()));
    assert!(outcome.plan.count_of(sync_core::ActionType::AssignBadge) > 50);

    // The report is printed and matches what Cativa shows.
    let report = &outcome.report;
    assert!(text.contains(&report.to_string()));
    assert_eq!(report.read, 1_000);
    assert_eq!(report.scan_complete, Some(true));
    assert_eq!((report.failed, report.retrying), (0, 0), "{report}");
    assert_eq!(
        report.applied.get("assign_badge").copied().unwrap_or(0) as usize,
        outcome.premium_holders
    );
    assert_eq!(
        outcome.plan.count_of(sync_core::ActionType::AssignBadge) as usize,
        outcome.premium_holders,
        "the dry run announced exactly what the run did"
    );
    assert!(text.contains(&format!(
        "Cativa now shows {} users holding Premium",
        outcome.premium_holders
    )));
}
