//! Badge planning: grant what the rules imply, remove only what this sync granted.

use super::{Builder, generation_part, millis};
use crate::config::ValidatedConfig;
use crate::domain::{BadgeId, CativaUserId, CrmContact, Mapping, Provenance};
use crate::plan::{ActionKind, Reason};

/// Managed badges the contact qualifies for, in rule order.
pub(super) fn qualifying(config: &ValidatedConfig, c: &CrmContact) -> Vec<BadgeId> {
    config
        .badge_rules_by_badge()
        .iter()
        .filter(|(_, rules)| rules.iter().any(|&r| config.rules()[r].when.holds(c)))
        .map(|(b, _)| b.clone())
        .collect()
}

pub(super) fn plan_badges(
    b: &mut Builder<'_, '_>,
    c: &CrmContact,
    row: &Mapping,
    user: &CativaUserId,
    generation: u64,
) {
    let config = b.input.config;
    for (badge, rules) in config.badge_rules_by_badge() {
        let holding = rules
            .iter()
            .copied()
            .find(|&r| config.rules()[r].when.holds(c));
        let grant = row.grant(badge);
        match (holding, grant) {
            (Some(index), None) => {
                let rule = &config.rules()[index];
                let kind = ActionKind::AssignBadge {
                    user: user.clone(),
                    email: row.email.clone(),
                    badge: badge.clone(),
                    rule: rule.id.clone(),
                };
                let reason = Reason::RuleHolds {
                    rule: rule.id.clone(),
                    condition: config.rule_description(index).to_owned(),
                };
                // The row's generation too: a grant removed because another record took the
                // row is granted again by a new action when the row comes back, even if this
                // contact did not change (the first grant's key is already done).
                let at = millis(c.updated_at);
                let generation = generation_part(generation);
                let mut parts = vec!["assign_badge", user.as_str(), badge.as_str(), &at];
                parts.extend(generation.as_deref());
                b.push(kind, reason, &parts);
            }
            (None, Some(grant)) => {
                // Provenance, not just the managed set: a badge from a paywall, a course or an
                // admin is never removed by the sync.
                let Provenance::Sync { rule } = &grant.provenance else {
                    continue;
                };
                let reason = if c.archived {
                    Reason::ContactArchived
                } else {
                    Reason::RuleNoLongerHolds { rule: rule.clone() }
                };
                let kind = ActionKind::RemoveBadge {
                    user: user.clone(),
                    email: row.email.clone(),
                    badge: badge.clone(),
                    rule: rule.clone(),
                };
                let at = millis(grant.granted_at);
                b.push(
                    kind,
                    reason,
                    &["remove_badge", user.as_str(), badge.as_str(), &at],
                );
            }
            _ => {}
        }
    }
}
