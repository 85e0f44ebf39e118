//! The plan: ordered actions, conflicts and counts. Printable (`Display`, a reviewable diff)
//! and serializable (a stable JSON form).

mod action;
mod key;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use action::{Action, ActionKind, ActionType, Reason};
pub use key::IdempotencyKey;

use crate::domain::{BadgeId, CrmRecordId, Email, TenantId};

/// How people see a badge: `Premium (b0000000-...)` when it has a name, else its id.
pub fn badge_label(badge: &BadgeId, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{name} ({badge})"),
        None => badge.to_string(),
    }
}

/// How the contacts given to the planner were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PlanMode {
    /// Contacts changed since a checkpoint: removals only on explicit signals.
    Delta,
    /// A full scan. Badges of contacts absent from the scan are removed only when the caller
    /// states the scan was complete.
    FullReconcile {
        /// Whether every page of the CRM was read successfully.
        scan_complete: bool,
    },
}

/// Kinds of conflict the planner reports instead of acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConflictKind {
    /// Several CRM contacts share an email; the non-canonical ones are skipped.
    DuplicateEmail,
    /// The email is already linked to another CRM record that is still live.
    EmailLinkedToOtherRecord,
    /// The contact has no usable email.
    MissingEmail,
    /// A field value could not be transformed (e.g. an invalid phone number).
    InvalidFieldValue,
}

/// A situation the planner will not resolve by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Conflict {
    /// What kind.
    pub kind: ConflictKind,
    /// The email involved, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    /// The CRM records involved (the canonical one first, when there is one).
    #[serde(default)]
    pub crm_ids: Vec<CrmRecordId>,
    /// A human explanation.
    pub detail: String,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "! conflict {:?}", self.kind)?;
        if let Some(email) = &self.email {
            write!(f, " {email}")?;
        }
        if !self.crm_ids.is_empty() {
            let ids: Vec<_> = self.crm_ids.iter().map(ToString::to_string).collect();
            write!(f, " [{}]", ids.join(", "))?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// What the planner saw and decided, in numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PlanCounts {
    /// Contacts given to the planner.
    pub contacts: u64,
    /// Contacts skipped: no community user and the policy says skip.
    pub skipped_no_user: u64,
    /// Contacts skipped because another contact with the same email is canonical.
    pub skipped_duplicate: u64,
    /// Contacts without a usable email.
    pub skipped_no_email: u64,
    /// Mapped users checked for absence (full reconcile).
    pub absent_checked: u64,
    /// Actions by kind name.
    pub actions: BTreeMap<String, u64>,
    /// Conflicts reported.
    pub conflicts: u64,
}

/// The output of the planner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Plan {
    /// The tenant.
    pub tenant: TenantId,
    /// How the input was read.
    pub mode: PlanMode,
    /// The `now` the planner was given.
    pub generated_at: DateTime<Utc>,
    /// Ordered actions.
    pub actions: Vec<Action>,
    /// Conflicts, in a deterministic order.
    pub conflicts: Vec<Conflict>,
    /// Counts.
    pub counts: PlanCounts,
    /// Names of the badges the configuration names (id -> name), so a person reading the
    /// plan, as text or JSON, sees `Premium (b0000000-...)` rather than a bare id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub badge_names: BTreeMap<BadgeId, String>,
}

impl Plan {
    /// An empty plan.
    pub fn empty(tenant: TenantId, mode: PlanMode, generated_at: DateTime<Utc>) -> Self {
        Self {
            tenant,
            mode,
            generated_at,
            actions: Vec::new(),
            conflicts: Vec::new(),
            counts: PlanCounts::default(),
            badge_names: BTreeMap::new(),
        }
    }

    /// How this plan shows a badge: `Premium (b0000000-...)` when it is named.
    pub fn badge_label(&self, badge: &BadgeId) -> String {
        badge_label(badge, self.badge_names.get(badge).map(String::as_str))
    }

    /// One action as a line a person can review, badges shown by name.
    pub fn describe(&self, action: &Action) -> String {
        action.describe_with(&self.badge_names)
    }

    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Number of actions of a type (`plan.count_of(ActionType::AssignBadge)`).
    pub fn count_of(&self, kind: ActionType) -> u64 {
        self.counts.actions.get(kind.name()).copied().unwrap_or(0)
    }

    /// Appends another plan's actions, conflicts and counts (pages of one run). Re-sorts.
    pub fn merge(&mut self, other: Plan) {
        self.actions.extend(other.actions);
        self.conflicts.extend(other.conflicts);
        let c = other.counts;
        self.counts.contacts += c.contacts;
        self.counts.skipped_no_user += c.skipped_no_user;
        self.counts.skipped_duplicate += c.skipped_duplicate;
        self.counts.skipped_no_email += c.skipped_no_email;
        self.counts.absent_checked += c.absent_checked;
        self.badge_names.extend(other.badge_names);
        self.finish();
    }

    /// Sorts actions and conflicts into their canonical order and recomputes the counts
    /// derived from them. Called by the planner; callers who build plans by hand call it too.
    pub fn finish(&mut self) {
        // Keys are unique per action, so an unstable sort is still deterministic.
        self.actions.sort_unstable_by(|a, b| {
            (a.kind.rank(), a.kind.email(), &a.key).cmp(&(b.kind.rank(), b.kind.email(), &b.key))
        });
        self.actions.dedup_by(|a, b| a.key == b.key);
        order_links(&mut self.actions);
        self.conflicts
            .sort_by(|a, b| (a.kind, &a.email, &a.crm_ids).cmp(&(b.kind, &b.email, &b.crm_ids)));
        // Counted by the kind's static name, then owned once per kind (not once per action).
        let mut by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
        for a in &self.actions {
            *by_kind.entry(a.kind.name()).or_insert(0) += 1;
        }
        self.counts.actions = by_kind
            .into_iter()
            .map(|(k, n)| (k.to_owned(), n))
            .collect();
        self.counts.conflicts = self.conflicts.len() as u64;
    }

    /// The stable JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Orders the mapping links (rank 0, at the front) so that a link taking a CRM record
/// comes after the link that frees it from another row: applied one by one, every link then
/// keeps the one-row-per-record rule. Kahn's algorithm, ties in the existing order.
fn order_links(actions: &mut [Action]) {
    let n = actions
        .iter()
        .take_while(|a| matches!(a.kind, ActionKind::LinkMapping { .. }))
        .count();
    let mut frees_crm: std::collections::HashMap<&CrmRecordId, usize> =
        std::collections::HashMap::new();
    let mut frees_email: std::collections::HashMap<&Email, usize> =
        std::collections::HashMap::new();
    for (i, a) in actions[..n].iter().enumerate() {
        if let ActionKind::LinkMapping {
            previous_crm_id,
            previous_email,
            ..
        } = &a.kind
        {
            if let Some(prev) = previous_crm_id {
                frees_crm.insert(prev, i);
            }
            if let Some(prev) = previous_email {
                frees_email.insert(prev, i);
            }
        }
    }
    if frees_crm.is_empty() && frees_email.is_empty() {
        return;
    }
    // depends_on[i] = the links that must run before link i (one freeing its record, one
    // freeing its email).
    let depends_on: Vec<[Option<usize>; 2]> = actions[..n]
        .iter()
        .enumerate()
        .map(|(i, a)| match &a.kind {
            ActionKind::LinkMapping { crm_id, email, .. } => [
                frees_crm.get(crm_id).copied().filter(|&j| j != i),
                frees_email.get(email).copied().filter(|&j| j != i),
            ],
            _ => [None, None],
        })
        .collect();
    let mut order = Vec::with_capacity(n);
    let mut placed = vec![false; n];
    while order.len() < n {
        let before = order.len();
        for i in 0..n {
            if !placed[i] && depends_on[i].iter().all(|d| d.is_none_or(|j| placed[j])) {
                placed[i] = true;
                order.push(i);
            }
        }
        if order.len() == before {
            // A cycle (two rows swapping records) cannot be ordered: keep the rest as is.
            order.extend((0..n).filter(|&i| !placed[i]));
            break;
        }
    }
    let links: Vec<Action> = order.iter().map(|&i| actions[i].clone()).collect();
    actions[..n].clone_from_slice(&links);
}

impl fmt::Display for Plan {
    /// A reviewable diff: one line per action and conflict, then a summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for action in &self.actions {
            writeln!(f, "{}", self.describe(action))?;
        }
        for conflict in &self.conflicts {
            writeln!(f, "{conflict}")?;
        }
        let kinds: Vec<String> = self
            .counts
            .actions
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        write!(
            f,
            "plan for tenant {}: {} contacts, {} actions ({}), {} conflicts, skipped {} (no user {}, duplicate {}, no email {})",
            self.tenant,
            self.counts.contacts,
            self.actions.len(),
            if kinds.is_empty() {
                "none".to_owned()
            } else {
                kinds.join(", ")
            },
            self.conflicts.len(),
            self.counts.skipped_no_user
                + self.counts.skipped_duplicate
                + self.counts.skipped_no_email,
            self.counts.skipped_no_user,
            self.counts.skipped_duplicate,
            self.counts.skipped_no_email,
        )
    }
}
