//! Printing plans and reports for people.

use std::fmt::Write as _;

use sync_core::{ActionKind, Plan};

/// The plan's reviewable diff, cut to its first `max_lines` lines plus a count of the
/// rest, then the summary line ([`Plan`]'s `Display` has them all). Effects come first
/// (badges, invites, field writes), then conflicts, then the mapping links that only
/// record who is who, so the lines worth reviewing are the ones shown.
pub fn truncated_plan(plan: &Plan, max_lines: usize) -> String {
    let is_link = |a: &&sync_core::Action| matches!(a.kind, ActionKind::LinkMapping { .. });
    let lines: Vec<String> = plan
        .actions
        .iter()
        .filter(|a| !is_link(a))
        .map(|a| plan.describe(a))
        .chain(plan.conflicts.iter().map(ToString::to_string))
        .chain(
            plan.actions
                .iter()
                .filter(is_link)
                .map(|a| plan.describe(a)),
        )
        .collect();
    let mut out = String::new();
    for line in lines.iter().take(max_lines) {
        let _ = writeln!(out, "{line}");
    }
    if lines.len() > max_lines {
        let _ = writeln!(out, "... and {} more lines", lines.len() - max_lines);
    }
    let full = plan.to_string();
    out.push_str(full.lines().last().unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use sync_core::config::SyncConfig;
    use sync_core::planner::{PlanInput, StateView, plan};
    use sync_core::{CrmContact, CrmRecordId, Email, Mapping, PlanMode, TenantId};

    use super::*;

    #[test]
    fn long_plans_are_cut_with_a_count_and_keep_their_summary() {
        let config = SyncConfig::from_toml_str(
            "[[badge_rules]]\nid = \"a\"\ngrant = \"Premium\"\nwhen = { tag = \"Pago Anual\" }\n",
        )
        .unwrap()
        .validate()
        .unwrap();
        let now = Utc::now();
        let mut rows = Vec::new();
        let mut contacts = Vec::new();
        for i in 0..5 {
            let email: Email = format!("p{i}@example.com").parse().unwrap();
            rows.push(Mapping::new(email.clone(), now).with_user(format!("u-{i}").into()));
            contacts.push(
                CrmContact::new(CrmRecordId::hubspot(i.to_string()), Some(email), now)
                    .with_tag("Pago Anual"),
            );
        }
        let tenant = TenantId::new("t");
        let view = StateView::new(rows);
        let p = plan(
            &PlanInput::new(&tenant, &config, &view, now),
            &contacts,
            PlanMode::Delta,
        );
        let full_lines = p.to_string().lines().count();
        assert!(full_lines > 4, "{p}");
        let cut = truncated_plan(&p, 2);
        let lines: Vec<&str> = cut.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2], format!("... and {} more lines", full_lines - 3));
        assert!(lines[3].starts_with("plan for tenant t"));
        let all = truncated_plan(&p, 100);
        assert_eq!(all.lines().count(), full_lines);
        assert!(
            all.lines().next().unwrap().contains("badge"),
            "effects before links: {all}"
        );
    }
}
