//! The status page (`GET /status/page`) and its sign-in form, rendered on the server: plain
//! HTML with inline CSS, no script and no external asset, so it works offline and on a
//! phone. Every value shown is escaped. Its actions are HTML forms posting to
//! `/status/{tenant}/requeue` and `/status/{tenant}/dismiss` with relative URLs, so the page
//! also works when the router is nested under a prefix.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use sync_core::ports::{LastRun, RunOutcome};
use sync_core::status::{FailureGroup, SyncStatus};

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment (a tenant id in a form's action).
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;padding:1rem;\
line-height:1.4;color:#1a1a1a;background:#f6f6f4;max-width:72rem;margin:auto}\
section{background:#fff;border:1px solid #ddd;border-radius:.5rem;padding:1rem;margin:1rem 0}\
h1{font-size:1.5rem}h2{font-size:1.3rem;margin-top:0}h3{font-size:1.05rem;margin-bottom:.3rem}\
.badge{display:inline-block;padding:.2rem .7rem;border-radius:1rem;font-weight:700;border:2px solid}\
.green{background:#e3f5e6;border-color:#1b7f34;color:#0f4d1f}\
.amber{background:#fff3d6;border-color:#a86b00;color:#5c3a00}\
.red{background:#fde4e4;border-color:#b3261e;color:#6e1410}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}dt{font-weight:600}\
dd{margin:0;overflow-wrap:anywhere}.scroll{overflow-x:auto}\
table{border-collapse:collapse;width:100%;font-size:.95rem}caption{text-align:left;font-weight:600;padding:.3rem 0}\
th,td{border:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}\
th{background:#f0f0ee}button{font:inherit;padding:.3rem .8rem;margin:.15rem 0;cursor:pointer}\
input{font:inherit;padding:.3rem;max-width:100%}form.inline{display:inline-block}\
label{display:block;font-size:.9rem}.muted{color:#555}";

fn head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    )
}

/// The sign-in form, with `error` above it after a wrong token.
pub(crate) fn login(error: Option<&str>) -> String {
    let mut out = head("Sign in: sync status");
    out.push_str("<main><h1>Sync status</h1>");
    if let Some(error) = error {
        let _ = write!(
            out,
            "<p role=\"alert\" class=\"badge red\">{}</p>",
            escape(error)
        );
    }
    out.push_str(
        "<section><h2>Sign in</h2><form method=\"post\" action=\"login\">\
<label for=\"token\">Status token (<code>STATUS_TOKEN</code>)</label>\
<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required> \
<button id=\"sign-in\" type=\"submit\">Sign in</button></form></section></main></body></html>",
    );
    out
}

/// The page: one section per tenant.
pub(crate) fn page(statuses: &[SyncStatus]) -> String {
    let mut out = head("Sync status");
    out.push_str("<header><h1>Sync status</h1>");
    if let Some(first) = statuses.first() {
        let _ = write!(
            out,
            "<p class=\"muted\">Read at {} UTC. <a href=\"page\">Reload</a></p>",
            time(first.generated_at)
        );
    }
    out.push_str("</header><main>");
    for status in statuses {
        tenant(&mut out, status);
    }
    out.push_str("</main></body></html>");
    out
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "none".to_owned(), time)
}

fn tenant(out: &mut String, s: &SyncStatus) {
    let t = escape(s.tenant.as_str());
    let state = s.health.state.as_str();
    let _ = write!(
        out,
        "<section id=\"tenant-{t}\" data-health=\"{state}\" aria-labelledby=\"title-{t}\">\
<h2 id=\"title-{t}\">Tenant {t}</h2>\
<p><span class=\"badge {state}\" data-testid=\"health\">Health: {state}</span></p>"
    );
    if !s.health.reasons.is_empty() {
        out.push_str("<ul class=\"reasons\">");
        for r in &s.health.reasons {
            let _ = write!(out, "<li>{}</li>", escape(r));
        }
        out.push_str("</ul>");
    }
    connection(out, s);
    runs(out, &s.last_runs);
    timing_and_backlog(out, s);
    failures(out, s);
    conflicts(out, s);
    webhooks(out, s);
    schedule(out, s);
    out.push_str("</section>");
}

fn connection(out: &mut String, s: &SyncStatus) {
    let c = &s.connection;
    let result = match (c.ok, &c.error) {
        (Some(true), _) => "accepted".to_owned(),
        (Some(false), Some(e)) => format!("refused: {e}"),
        (Some(false), None) => "refused".to_owned(),
        (None, _) => "not checked yet".to_owned(),
    };
    let _ = write!(
        out,
        "<h3>Connection</h3><dl><dt>Credentials</dt><dd>{}</dd><dt>Checked</dt><dd>{}</dd>\
<dt>CRM account</dt><dd>{}</dd></dl>",
        escape(&result),
        opt_time(c.checked_at),
        escape(s.account_id.as_deref().unwrap_or("unknown"))
    );
}

fn outcome(o: RunOutcome) -> &'static str {
    match o {
        RunOutcome::Ok => "ok",
        RunOutcome::Stopped => "stopped",
        _ => "failed",
    }
}

fn runs(out: &mut String, runs: &[LastRun]) {
    out.push_str("<h3>Last runs</h3>");
    if runs.is_empty() {
        out.push_str("<p>No run recorded yet.</p>");
        return;
    }
    out.push_str(
        "<div class=\"scroll\"><table><caption>The last run of each mode</caption><thead><tr>\
<th scope=\"col\">Mode</th><th scope=\"col\">Started</th><th scope=\"col\">Ended</th>\
<th scope=\"col\">Outcome</th><th scope=\"col\">Counts</th></tr></thead><tbody>",
    );
    for last in runs {
        let r = &last.run;
        let mut counts = format!(
            "read {}, failed {}, retrying {}",
            r.read, r.failed, r.retrying
        );
        for (kind, n) in &r.applied {
            let _ = write!(counts, ", {kind} {n}");
        }
        let why = r
            .reason
            .as_deref()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>",
            r.mode.as_str(),
            time(r.started_at),
            time(r.finished_at),
            outcome(r.outcome),
            escape(&why),
            escape(&counts)
        );
    }
    out.push_str("</tbody></table></div>");
}

fn timing_and_backlog(out: &mut String, s: &SyncStatus) {
    let lag = s.timing.lag_ms.map_or_else(
        || "unknown".to_owned(),
        |ms| format!("{:.1} s", ms as f64 / 1000.0),
    );
    let checkpoint = s.timing.checkpoint.as_ref().map_or_else(
        || "none".to_owned(),
        |c| match &c.last_id {
            Some(id) => format!("{} (after record {id})", time(c.modified_at)),
            None => time(c.modified_at),
        },
    );
    let _ = write!(
        out,
        "<h3>Timing</h3><dl><dt>Last success</dt><dd>{}</dd><dt>Lag</dt><dd>{}</dd>\
<dt>Checkpoint</dt><dd>{}</dd></dl>",
        opt_time(s.timing.last_success_at),
        escape(&lag),
        escape(&checkpoint)
    );
    let o = &s.outbox;
    let _ = write!(
        out,
        "<h3>Backlog</h3><dl><dt>Pending</dt><dd>{}</dd><dt>In flight</dt><dd>{}</dd>\
<dt>Retrying</dt><dd>{}</dd><dt>Failed</dt><dd>{}</dd><dt>Dismissed</dt><dd>{}</dd></dl>",
        o.pending, o.in_flight, o.retrying, o.failed, o.dismissed
    );
}

fn failures(out: &mut String, s: &SyncStatus) {
    let t = escape(s.tenant.as_str());
    let action = segment(s.tenant.as_str());
    out.push_str("<h3>Failures</h3>");
    if s.failures.is_empty() {
        out.push_str("<p data-testid=\"no-failures\">No failed work.</p>");
        return;
    }
    let _ = write!(
        out,
        "<form method=\"post\" action=\"{action}/requeue\"><input type=\"hidden\" name=\"all\" value=\"true\">\
<button id=\"requeue-all-{t}\" type=\"submit\">Requeue all failed work</button></form>\
<div class=\"scroll\"><table id=\"failures-{t}\"><caption>Failed work by kind and reason \
(requeue once the cause is fixed)</caption><thead><tr><th scope=\"col\">Kind</th>\
<th scope=\"col\">Reason</th><th scope=\"col\">Count</th><th scope=\"col\">Advice</th>\
<th scope=\"col\">Sample record</th><th scope=\"col\">Actions</th></tr></thead><tbody>"
    );
    let mut n = 0usize;
    for group in &s.failures {
        for sample in &group.samples {
            n += 1;
            failure_row(out, &action, group, sample, n);
        }
    }
    out.push_str("</tbody></table></div>");
}

fn failure_row(
    out: &mut String,
    action: &str,
    group: &FailureGroup,
    sample: &sync_core::status::FailureRecord,
    n: usize,
) {
    let key = escape(&sample.key);
    let _ = write!(
        out,
        "<tr class=\"failure\"><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td class=\"advice\">{}</td>\
<td>{} <span class=\"muted\">failed {}: {}</span></td><td>\
<form class=\"inline\" method=\"post\" action=\"{action}/requeue\"><input type=\"hidden\" name=\"id\" value=\"{key}\">\
<button class=\"requeue\" type=\"submit\">Requeue</button></form>\
<form method=\"post\" action=\"{action}/dismiss\"><input type=\"hidden\" name=\"id\" value=\"{key}\">\
<label for=\"note-{n}\">Note for dismissing</label><input id=\"note-{n}\" name=\"note\" type=\"text\" maxlength=\"1000\">\
<button class=\"dismiss\" type=\"submit\">Dismiss</button></form></td></tr>",
        escape(&group.kind),
        escape(&group.reason),
        group.count,
        escape(&group.advice),
        escape(&sample.target),
        time(sample.failed_at),
        escape(&sample.error),
    );
}

fn conflicts(out: &mut String, s: &SyncStatus) {
    out.push_str("<h3>Open conflicts</h3>");
    if s.conflicts.is_empty() {
        out.push_str("<p>None.</p>");
        return;
    }
    out.push_str("<ul>");
    for c in &s.conflicts {
        let _ = write!(out, "<li>{}</li>", escape(&c.to_string()));
    }
    out.push_str("</ul>");
}

fn webhooks(out: &mut String, s: &SyncStatus) {
    out.push_str(
        "<h3>Webhook deliveries</h3><div class=\"scroll\"><table><caption>Deliveries received</caption>\
<thead><tr><th scope=\"col\">Window</th><th scope=\"col\">Accepted</th><th scope=\"col\">Duplicate</th>\
<th scope=\"col\">Refused</th></tr></thead><tbody>",
    );
    for (name, w) in [
        ("Last hour", &s.webhooks.last_hour),
        ("Last day", &s.webhooks.last_day),
    ] {
        let refused: Vec<String> = w.refused.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let refused = if refused.is_empty() {
            "0".to_owned()
        } else {
            refused.join(", ")
        };
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{name}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            w.accepted,
            w.duplicate,
            escape(&refused)
        );
    }
    out.push_str("</tbody></table></div>");
}

fn schedule(out: &mut String, s: &SyncStatus) {
    let sc = &s.schedule;
    let every = sc
        .interval_secs
        .map_or_else(|| "not scheduled".to_owned(), |n| format!("every {n} s"));
    let _ = write!(
        out,
        "<h3>Schedule</h3><dl><dt>Delta pulls</dt><dd>{}</dd><dt>Next delta</dt><dd>{}</dd>\
<dt>Next full reconcile</dt><dd>{}</dd></dl>",
        escape(&every),
        opt_time(sc.next_delta),
        opt_time(sc.next_full_reconcile)
    );
}

#[cfg(test)]
#[path = "status_page_tests.rs"]
mod tests;
