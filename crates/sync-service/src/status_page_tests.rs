use chrono::TimeZone;
use sync_core::TenantId;
use sync_core::status::{FailureRecord, HealthState, group_failures};

use super::*;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn red_status(tenant: &str, error: &str) -> SyncStatus {
    let mut s = SyncStatus::new(TenantId::new(tenant), at());
    s.health.state = HealthState::Red;
    s.health.reasons = vec!["1 failed item <b>".to_owned()];
    s.failures = group_failures(vec![(
        "assign_badge".to_owned(),
        FailureRecord::new("k<1>", "ana@example.com", at(), error),
    )]);
    s.outbox.failed = 1;
    s
}

#[test]
fn escape_covers_every_special_character() {
    assert_eq!(
        escape(r#"<a href="x">'&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
    assert_eq!(segment("a b/c"), "a%20b%2Fc");
}

#[test]
fn every_value_is_escaped() {
    let html = page(&[red_status(
        "acme\"><script>",
        "User <script>alert(1)</script> not found",
    )]);
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("1 failed item &lt;b&gt;"));
    assert!(html.contains("k&lt;1&gt;"));
    // The tenant in a form's action is percent-encoded.
    assert!(html.contains("action=\"acme%22%3E%3Cscript%3E/requeue\""));
}

#[test]
fn a_tenant_section_has_its_health_failures_and_actions() {
    let html = page(&[red_status("acme", "User 42 not found: grant refused")]);
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<meta name=\"viewport\""));
    assert!(html.contains("<section id=\"tenant-acme\" data-health=\"red\""));
    assert!(html.contains("<h2 id=\"title-acme\">Tenant acme</h2>"));
    // The badge says its state in words, not only in colour.
    assert!(html.contains(">Health: red</span>"));
    assert!(html.contains("<caption>Failed work by kind and reason"));
    assert!(html.contains("<th scope=\"col\">Advice</th>"));
    assert!(html.contains("<th scope=\"row\">assign_badge</th>"));
    assert!(html.contains("id=\"requeue-all-acme\""));
    assert!(html.contains("<button class=\"requeue\""));
    assert!(html.contains("<label for=\"note-1\">"));
    assert!(html.contains("<input id=\"note-1\" name=\"note\""));
    for heading in [
        "Connection",
        "Last runs",
        "Timing",
        "Backlog",
        "Failures",
        "Open conflicts",
        "Webhook deliveries",
        "Schedule",
    ] {
        assert!(html.contains(&format!("<h3>{heading}</h3>")), "{heading}");
    }
    // No external asset, no script.
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(!html.contains("<script"));
}

#[test]
fn a_green_tenant_shows_no_failure_table() {
    let s = SyncStatus::new(TenantId::new("acme"), at());
    let html = page(&[s]);
    assert!(html.contains("data-health=\"green\""));
    assert!(html.contains("No failed work."));
    assert!(!html.contains("requeue-all-acme"));
}

#[test]
fn the_sign_in_form_is_labelled_and_posts_to_login() {
    let html = login(None);
    assert!(html.contains("<label for=\"token\">"));
    assert!(html.contains("<input id=\"token\" name=\"token\" type=\"password\""));
    assert!(html.contains("<button id=\"sign-in\" type=\"submit\">"));
    assert!(html.contains("action=\"login\""));
    assert!(!html.contains("role=\"alert\""));
    let wrong = login(Some("That token is <not> right."));
    assert!(wrong.contains("role=\"alert\""));
    assert!(wrong.contains("&lt;not&gt;"));
}
