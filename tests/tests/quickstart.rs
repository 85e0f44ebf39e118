//! The quickstart example, run as a newcomer runs it (`cargo run --example quickstart`): it
//! says on its first line that it runs on sandboxes, prints the plan and the report, and
//! what it prints is what happened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod example_process;

use std::time::Duration;

use example_process::Process;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_runs_and_tells_the_truth() {
    let mut run = Process::start("quickstart", &[], &[]);
    let code = run.exit_code(Duration::from_secs(300)).await;
    let text = run.stdout();
    assert_eq!(code, Some(0), "{text}\n{}", run.stderr());
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("Sandbox mode:"), "{}", lines[0]);
    assert!(text.contains("Seeded 1000 HubSpot contacts"), "{text}");

    // Every community user was recorded from its signed webhook, over HTTP.
    let recorded = lines
        .iter()
        .find(|l| l.starts_with("Recorded "))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>();
    let (accepted, sent): (usize, usize) =
        (recorded[1].parse().unwrap(), recorded[5].parse().unwrap());
    assert_eq!(accepted, sent, "{text}");
    assert!(accepted > 400, "{text}");

    // The plan is printed, cut, with its summary line; the report is the last line (JSON).
    assert!(text.contains("Plan (dry run, nothing written):"));
    assert!(
        text.contains("more lines"),
        "1,000 contacts make a long plan"
    );
    let report: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(report["read"], 1_000, "{report}");
    assert_eq!(report["scan_complete"], true);
    assert_eq!(
        (report["failed"].as_u64(), report["retrying"].as_u64()),
        (Some(0), Some(0)),
        "{report}"
    );
    let granted = report["applied"]["assign_badge"].as_u64().unwrap();
    assert!(granted > 50, "{report}");
    // What Cativa shows is what the report says was done.
    assert!(
        text.contains(&format!("Cativa now shows {granted} users holding Premium")),
        "{text}"
    );
    // And the dry run announced exactly that.
    let summary = lines
        .iter()
        .find(|l| l.starts_with("plan for tenant quickstart"))
        .unwrap();
    assert!(
        summary.contains(&format!("assign_badge {granted}")),
        "{summary}"
    );
}

/// `--serve` keeps serving after the run: the printed status URL answers 401 without the
/// token and the status JSON with it; Ctrl-C (SIGINT) stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_serves_its_status_until_ctrl_c() {
    let env = [("STATUS_TOKEN", "quickstart-test-token".to_owned())];
    let mut run = Process::start("quickstart", &["--serve"], &env);
    let line = run
        .wait_for_line("Status page: http://", Duration::from_secs(300))
        .await;
    let page = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    let base = page.trim_end_matches("/status/page");
    assert!(line.contains("quickstart-test-token"), "{line}");
    let http = sync_http::tls::client().unwrap();
    let anonymous = http.get(format!("{base}/status")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let status: serde_json::Value = http
        .get(format!("{base}/status/quickstart"))
        .bearer_auth("quickstart-test-token")
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["tenant"], "quickstart", "{status}");
    assert_eq!(status["outbox"]["failed"], 0, "{status}");
    run.signal("INT");
    assert_eq!(run.exit_code(Duration::from_secs(60)).await, Some(0));
}
