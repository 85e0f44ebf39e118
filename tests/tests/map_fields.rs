//! The map_fields example, run as a partner runs it (`cargo run --example map_fields`): it
//! reads both live schemas from the sandboxes and prints the suggestions with their
//! confidence and reasons.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod example_process;

use std::time::Duration;

use example_process::Process;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_fields_prints_suggestions_from_both_live_schemas() {
    let mut run = Process::start("map_fields", &[], &[]);
    let code = run.exit_code(Duration::from_secs(300)).await;
    let text = run.stdout();
    assert_eq!(code, Some(0), "{text}\n{}", run.stderr());
    assert!(text.starts_with("Sandbox mode:"), "{text}");
    assert!(text.contains("HubSpot: 5 suggestions"), "{text}");
    assert!(text.contains("Salesforce: 5 suggestions"), "{text}");
    assert!(
        text.contains("  email -> email  (confidence 1.00)"),
        "{text}"
    );
    assert!(
        text.contains("  jobTitle -> Title  (confidence 0.80)"),
        "{text}"
    );
    assert!(
        text.contains("\"jobTitle\" and \"Title\" are known synonyms"),
        "{text}"
    );
    assert!(
        text.contains("Salesforce: every suggested mapping fits the live schema."),
        "{text}"
    );
}
