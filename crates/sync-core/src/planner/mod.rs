//! The planner: a pure function from (tenant, configuration, CRM contacts, the store's view,
//! `now`, mode) to a [`Plan`].
//!
//! It does no I/O and reads no clock: the same input always gives the same plan, whatever the
//! order of the contacts. It implements the conflict table (also in the README's Concepts section):
//!
//! | situation | what the planner does |
//! |---|---|
//! | CRM email changed, Cativa unchanged | matches by CRM id first and plans a `LinkMapping` that updates the row's email; the cached Cativa user id is kept |
//! | CRM contact has no community user | `Invite` (once per email) when the contact qualifies for a badge and the policy says invite; otherwise counted as skipped; never a forced user creation |
//! | same email on two CRM contacts | among the contacts competing for one mapping row, the canonical contact by policy is planned; the others are reported as a `DuplicateEmail` conflict. A contact linked by CRM id to another row keeps that row: it is planned on it, and its new email is refused while another row or contact has it |
//! | tag removed / churn / contact deleted | the badge is removed if this sync granted it (provenance `Sync`) |
//! | badge granted by another source | never removed, even when in the managed set |
//! | different emails on the two sides | matched by the configured alternate email property |
//! | field changed on both sides | per-mapping rule: owner wins (`to_crm`/`from_crm`), newest wins (`bidirectional`), or prefer non-blank |
//! | holder merged into a contact with no mapping row | the row moves to the survivor, whose tags decide its badges at once (an untagged survivor: `remove_badge`, rule no longer holds) |
//! | holder merged into a contact linked to another row (another user) | both rows are kept and a conflict reported; the holder's row has no CRM record left, so it loses the badges this sync granted (`contact_merged`), as a full reconcile would by absence |
//!
//! Removal by absence happens only in a full reconcile whose scan the caller states was
//! complete.

mod badges;
mod batch;
mod companies;
mod effects;
mod fields;
mod groups;
mod identity;
mod passes;
mod resolve;
mod view;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

pub use companies::CompanyProvenance;
pub use effects::{RowKey, row_keys};
pub use effects::{apply_to_mapping, apply_to_view};
pub use groups::{GroupMembers, plan_groups};
pub use view::StateView;

use crate::config::{MissingUserPolicy, ValidatedConfig};
use crate::domain::{BadgeId, CrmContact, CrmKind, CrmRecordId, Email, TenantId};
use crate::plan::{
    Action, ActionKind, Conflict, ConflictKind, IdempotencyKey, Plan, PlanMode, Reason,
};
use batch::Batch;
use identity::MatchedBy;

/// Everything the planner reads besides the contacts.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The tenant.
    pub tenant: &'a TenantId,
    /// The validated configuration.
    pub config: &'a ValidatedConfig,
    /// The store's view of the mapping rows the contacts touch.
    pub view: &'a StateView,
    /// The time the plan is made at (recorded on the plan; never read from a clock).
    pub now: DateTime<Utc>,
}

impl<'a> PlanInput<'a> {
    /// Bundles the planner's inputs.
    pub fn new(
        tenant: &'a TenantId,
        config: &'a ValidatedConfig,
        view: &'a StateView,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            tenant,
            config,
            view,
            now,
        }
    }
}

/// Plans a batch of contacts. In [`PlanMode::FullReconcile`] with `scan_complete: true`, the
/// contacts are the whole CRM and mapped users whose contact is absent lose the badges this
/// sync granted them.
///
/// ```
/// use chrono::Utc;
/// use sync_core::config::{BadgeRule, Condition, SyncConfig};
/// use sync_core::planner::{PlanInput, StateView, plan};
/// use sync_core::{
///     ActionType, BadgeGrant, CrmContact, CrmRecordId, Email, Mapping, PlanMode, Provenance, TenantId,
/// };
///
/// let mut config = SyncConfig::default();
/// config.badge_rules.push(BadgeRule::new("annual", "Premium", Condition::Tag("Pago Anual".into())));
/// let config = config.validate()?;
/// let now = Utc::now();
/// let jane: Email = "jane@example.com".parse()?;
/// let view = StateView::new(vec![Mapping::new(jane.clone(), now).with_user("u-1".into())]);
/// let contact = CrmContact::new(CrmRecordId::hubspot("101"), Some(jane), now).with_tag("Pago Anual");
/// let tenant = TenantId::new("acme");
/// let plan = plan(&PlanInput::new(&tenant, &config, &view, now), &[contact], PlanMode::Delta);
/// assert_eq!(plan.count_of(ActionType::AssignBadge), 1);
/// assert_eq!(plan.count_of(ActionType::LinkMapping), 1);
/// println!("{plan}");
/// # Ok::<(), sync_core::Error>(())
/// ```
pub fn plan(input: &PlanInput<'_>, contacts: &[CrmContact], mode: PlanMode) -> Plan {
    let mut builder = Builder::new(input, mode);
    builder.contacts(contacts);
    builder.finish()
}

/// Plans removals for mapped users whose CRM record (of CRM `crm`) was not seen by a full
/// scan. Use it when the engine plans a full reconcile page by page: pass the ids seen over
/// all pages. Returns an empty plan unless `scan_complete` is true: after a failed or partial
/// scan nothing is removed by absence.
pub fn plan_absences(
    input: &PlanInput<'_>,
    crm: &CrmKind,
    is_seen: &dyn Fn(&CrmRecordId) -> bool,
    scan_complete: bool,
) -> Plan {
    let mode = PlanMode::FullReconcile { scan_complete };
    let mut builder = Builder::new(input, mode);
    if scan_complete {
        builder.absences(Some(crm), is_seen, &|_| false);
    }
    builder.finish()
}

pub(crate) fn millis(t: DateTime<Utc>) -> String {
    t.timestamp_millis().to_string()
}

/// What pass 1 decided for a live canonical contact.
#[derive(Debug, Clone)]
enum Resolution {
    /// Matched a row; maybe with a link action to plan.
    Row {
        row: u32,
        by: MatchedBy,
        // Boxed: most contacts match without a link, and a million of these are held at once.
        link: Option<Box<(ActionKind, Reason)>>,
    },
    /// No row: a person with no community user and no mapping yet.
    Unmapped,
}

struct Builder<'a, 'i> {
    input: &'a PlanInput<'i>,
    plan: Plan,
    /// Survivors of merges that a row was re-pointed to in this plan, and that row's email:
    /// a second row following a merge chain to the same survivor must not take it too.
    merge_links: std::collections::HashMap<CrmRecordId, Email>,
}

impl<'a, 'i> Builder<'a, 'i> {
    fn new(input: &'a PlanInput<'i>, mode: PlanMode) -> Self {
        Self {
            input,
            plan: Plan::empty(input.tenant.clone(), mode, input.now),
            merge_links: std::collections::HashMap::new(),
        }
    }

    fn key(&self, parts: &[&str]) -> IdempotencyKey {
        IdempotencyKey::derive_with(self.input.tenant.as_str(), parts)
    }

    fn push(&mut self, kind: ActionKind, reason: Reason, key_parts: &[&str]) {
        let key = self.key(key_parts);
        self.plan.actions.push(Action::new(key, kind, reason));
    }

    fn conflict(
        &mut self,
        kind: ConflictKind,
        email: Option<Email>,
        crm_ids: Vec<CrmRecordId>,
        detail: impl Into<String>,
    ) {
        self.plan.conflicts.push(Conflict {
            kind,
            email,
            crm_ids,
            detail: detail.into(),
        });
    }

    fn finish(mut self) -> Plan {
        self.plan.finish();
        self.plan.badge_names = badge_names_used(&self.plan.actions, self.input.config);
        self.plan
    }

    /// Plans a batch: pass 1 resolves live contacts to rows, the rows' claims are settled,
    /// pass 2 plans the live contacts, pass 3 the archived ones, then absences when the scan
    /// was complete.
    fn contacts(&mut self, contacts: &[CrmContact]) {
        self.plan.counts.contacts += contacts.len() as u64;
        let b = Batch::new(contacts, self.input.view, self.input.config.duplicates());
        let mut row_taken = vec![false; b.view.len()];
        let live = self.pass_live(&b, &mut row_taken);
        self.report_duplicates(&b, live.losers);
        let claims = passes::best_claims(&b, &live.resolved);
        self.pass_resolved(&b, live.resolved, &claims, &mut row_taken);
        self.pass_archived(&b, &claims);
        self.pass_companies(contacts);
        if self.plan.mode
            == (PlanMode::FullReconcile {
                scan_complete: true,
            })
        {
            let crm = contacts.first().map(|c| c.id.crm.clone());
            self.absences(crm.as_ref(), &|id| b.is_live(id), &|r| {
                row_taken[r] || claims.contains_key(&r)
            });
        }
    }

    /// A live contact with no mapping row.
    fn unmapped(&mut self, c: &CrmContact) {
        let qualifying = badges::qualifying(self.input.config, c);
        let Some(email) = &c.email else { return };
        if qualifying.is_empty() || self.input.config.missing_user() == MissingUserPolicy::Skip {
            self.plan.counts.skipped_no_user += 1;
            return;
        }
        self.invite(c, email, qualifying);
    }

    fn invite(&mut self, c: &CrmContact, email: &Email, badges: Vec<crate::domain::BadgeId>) {
        let kind = ActionKind::Invite {
            email: email.clone(),
            crm_id: c.id.clone(),
            badges,
        };
        self.push(kind, Reason::NoCommunityUser, &["invite", email.as_str()]);
    }

    /// A live contact matched to a row. `generation` is the row's generation once this
    /// plan's link (if any) is applied: the grants planned here are keyed by it.
    fn mapped(
        &mut self,
        c: &CrmContact,
        row: &crate::domain::Mapping,
        row_email: &Email,
        generation: u64,
    ) {
        let Some(user) = &row.cativa_user_id else {
            let qualifying = badges::qualifying(self.input.config, c);
            if !qualifying.is_empty()
                && self.input.config.missing_user() == MissingUserPolicy::Invite
                && row.invited_at.is_none()
            {
                self.invite(c, row_email, qualifying);
            } else {
                self.plan.counts.skipped_no_user += 1;
            }
            return;
        };
        badges::plan_badges(self, c, row, user, generation);
        fields::plan_fields(self, c, row, user);
    }

    fn remove_all_sync_badges(&mut self, row: &crate::domain::Mapping, reason: &Reason) {
        let Some(user) = &row.cativa_user_id else {
            return;
        };
        for grant in &row.badges {
            let crate::domain::Provenance::Sync { rule } = &grant.provenance else {
                continue;
            };
            if !self.input.config.is_managed(&grant.badge) {
                continue;
            }
            let kind = ActionKind::RemoveBadge {
                user: user.clone(),
                email: row.email.clone(),
                badge: grant.badge.clone(),
                rule: rule.clone(),
            };
            let at = millis(grant.granted_at);
            self.push(
                kind,
                reason.clone(),
                &["remove_badge", user.as_str(), grant.badge.as_str(), &at],
            );
        }
    }

    fn absences(
        &mut self,
        crm: Option<&CrmKind>,
        is_seen: &dyn Fn(&CrmRecordId) -> bool,
        taken: &dyn Fn(usize) -> bool,
    ) {
        let view = self.input.view;
        for (r, row) in view.rows().enumerate() {
            // Taken first: most rows of a full reconcile are, and this skips reading them.
            if taken(r) {
                continue;
            }
            let Some(id) = &row.crm_id else { continue };
            if crm.is_some_and(|k| *k != id.crm) || row.cativa_user_id.is_none() {
                continue;
            }
            self.plan.counts.absent_checked += 1;
            if !is_seen(id) {
                self.remove_all_sync_badges(row, &Reason::ContactVanished);
            }
        }
    }
}

/// The key part naming a row's generation, if any: none for generation 0, so the keys of a
/// row that never moved between CRM records are those of the releases before the counter
/// (outbox items enqueued before an upgrade keep matching; nothing is sent twice).
fn generation_part(generation: u64) -> Option<String> {
    (generation > 0).then(|| format!("g{generation}"))
}

/// Key parts of a link: what it writes, the time of the change that triggered it and the
/// row's generation before the link, so the same link planned again after a later change
/// (a row handed back and forth between two records, even when the record taking it back
/// did not change) is a new action, while re-planning one change repeats its key.
fn link_key_parts(kind: &ActionKind, at: DateTime<Utc>, generation: u64) -> Vec<String> {
    let mut parts = link_parts(kind, at);
    parts.extend(generation_part(generation));
    parts
}

fn link_parts(kind: &ActionKind, at: DateTime<Utc>) -> Vec<String> {
    match kind {
        ActionKind::LinkMapping {
            email,
            crm_id,
            user,
            previous_email,
            previous_crm_id,
        } => vec![
            "link".to_owned(),
            email.to_string(),
            crm_id.to_string(),
            user.as_ref().map(ToString::to_string).unwrap_or_default(),
            previous_email
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            previous_crm_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            millis(at),
        ],
        other => vec![other.name().to_owned(), millis(at)],
    }
}

pub(crate) type Props = BTreeMap<String, String>;

/// The names of the badges a plan's actions mention (id -> name), from the configuration.
fn badge_names_used(actions: &[Action], config: &ValidatedConfig) -> BTreeMap<BadgeId, String> {
    let mut names = BTreeMap::new();
    if config.badge_names().is_empty() {
        return names;
    }
    for action in actions {
        let badges: &[BadgeId] = match &action.kind {
            ActionKind::AssignBadge { badge, .. } | ActionKind::RemoveBadge { badge, .. } => {
                std::slice::from_ref(badge)
            }
            ActionKind::Invite { badges, .. } => badges,
            _ => &[],
        };
        for badge in badges {
            if let Some(name) = config.badge_name(badge) {
                names.insert(badge.clone(), name.to_owned());
            }
        }
    }
    names
}

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod tests;
