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
mod effects;
mod fields;
mod identity;
mod view;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

pub(crate) use effects::{RowKey, row_keys};
pub use effects::{apply_to_mapping, apply_to_view};
pub use view::StateView;

use crate::config::{MissingUserPolicy, ValidatedConfig};
use crate::domain::{BadgeId, CrmContact, CrmKind, CrmRecordId, Email, TenantId};
use crate::plan::{
    Action, ActionKind, Conflict, ConflictKind, IdempotencyKey, Plan, PlanMode, Reason,
};
use identity::{FastMap, MatchedBy, canonical_by_email, dedupe_by_id, fast_map};

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
}

impl<'a, 'i> Builder<'a, 'i> {
    fn new(input: &'a PlanInput<'i>, mode: PlanMode) -> Self {
        Self {
            input,
            plan: Plan::empty(input.tenant.clone(), mode, input.now),
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

    fn contacts(&mut self, contacts: &[CrmContact]) {
        let view = self.input.view;
        let config = self.input.config;
        self.plan.counts.contacts += contacts.len() as u64;

        let unique = dedupe_by_id(contacts, view);
        let canon = canonical_by_email(contacts, &unique, config.duplicates());

        // Merges move identity: a live winner takes the row of the record merged into it.
        let mut merged_rows: FastMap<&CrmRecordId, (usize, &CrmRecordId)> = fast_map(0);
        for i in identity::kept(contacts, &unique) {
            let c = &contacts[i as usize];
            if !c.archived || c.merged_into.is_none() {
                continue;
            }
            let winner = c
                .merged_into
                .as_ref()
                .map(|w| final_winner(w, contacts, &unique));
            if let (true, Some(winner), Some(r)) = (c.archived, winner, view.index_of_crm(&c.id)) {
                let live_winner = unique
                    .get(winner)
                    .is_some_and(|&w| !contacts[w as usize].archived);
                if live_winner && view.index_of_crm(winner).is_none() {
                    // Several records merged into one winner: the smallest loser's row wins.
                    merged_rows
                        .entry(winner)
                        .and_modify(|cur| {
                            if c.id < *cur.1 {
                                *cur = (r, &c.id);
                            }
                        })
                        .or_insert((r, &c.id));
                }
            }
        }

        // Flags instead of map lookups in the hot loops below.
        let mut is_canonical = vec![false; contacts.len()];
        for &i in canon.values() {
            is_canonical[i as usize] = true;
        }
        // Contacts linked by CRM id to a row other than their email's keep that row: they are
        // not ranked against the contacts of their email (see `ById::linked_elsewhere`).
        // Those that rename their row are counted per new email: two renames to one email in
        // a batch, or a rename to an email another contact of the batch has, are held back.
        let mut renaming: FastMap<&Email, u32> = fast_map(0);
        for (i, flag) in is_canonical.iter_mut().enumerate() {
            *flag |= unique.is_fast(i as u32);
            let c = &contacts[i];
            if !*flag && unique.linked_elsewhere(c) {
                *flag = true;
                if let (Some(e), Some(r)) = (&c.email, view.index_of_crm(&c.id))
                    && c.alternate_email.as_ref() != Some(&view.row(r).email)
                    && unique.get(&c.id) == Some(&(i as u32))
                {
                    *renaming.entry(e).or_default() += 1;
                }
            }
        }
        let mut row_taken = vec![false; view.len()];

        // Pass 1: resolve live canonical contacts to rows; collect duplicate losers.
        let mut losers: FastMap<&Email, Vec<u32>> = fast_map(0);
        let mut resolved: Vec<(u32, Resolution)> = Vec::new();
        for i in identity::kept(contacts, &unique) {
            let c = &contacts[i as usize];
            if c.archived {
                continue;
            }
            let Some(email) = &c.email else {
                self.plan.counts.skipped_no_email += 1;
                self.conflict(
                    ConflictKind::MissingEmail,
                    None,
                    vec![c.id.clone()],
                    "the contact has no valid email, so it cannot be matched",
                );
                continue;
            };
            if let Some(r) = unique.fast_row(i) {
                // Linked, same email, no duplicate: what resolve() would find, without the
                // batch-wide tables.
                row_taken[r] = true;
                let row = view.row(r);
                self.mapped(c, row, &row.email);
                continue;
            }
            if !is_canonical[i as usize] {
                losers.entry(email).or_default().push(i);
                continue;
            }
            match self.resolve(c, email, contacts, &unique, &canon, &merged_rows, &renaming) {
                // The common case (matched by CRM id, nothing to relink) cannot collide with
                // another claim: plan it now, while the contact and its row are in cache.
                Some(Resolution::Row {
                    row,
                    by: MatchedBy::CrmId,
                    link: None,
                }) => {
                    row_taken[row as usize] = true;
                    let row = view.row(row as usize);
                    self.mapped(c, row, &row.email);
                }
                Some(res) => resolved.push((i, res)),
                None => {}
            }
        }
        for (email, mut idx) in losers {
            self.plan.counts.skipped_duplicate += idx.len() as u64;
            idx.sort_by(|a, b| contacts[*a as usize].id.cmp(&contacts[*b as usize].id));
            let winner = canon.get(email).map(|&w| contacts[w as usize].id.clone());
            let mut ids: Vec<CrmRecordId> = winner.into_iter().collect();
            ids.extend(idx.iter().map(|&l| contacts[l as usize].id.clone()));
            self.conflict(
                ConflictKind::DuplicateEmail,
                Some(email.clone()),
                ids,
                format!("{} CRM contacts share this email; the first is canonical by the duplicates policy, the others are skipped", idx.len() + 1),
            );
        }

        // Two contacts may claim one row (an email match and an alternate-email match): the
        // better match wins (crm id > email > alternate email, then the smaller record id).
        // A match by CRM id cannot collide (one record, one row), so only the others are
        // tracked, which keeps this map small.
        let mut claims: FastMap<usize, (MatchedBy, u32)> = fast_map(0);
        for (i, res) in &resolved {
            if let Resolution::Row { row, by, .. } = res {
                if *by == MatchedBy::CrmId {
                    continue;
                }
                let cand = (*by, *i);
                claims
                    .entry(*row as usize)
                    .and_modify(|cur| {
                        let better = (cand.0, &contacts[cand.1 as usize].id)
                            < (cur.0, &contacts[cur.1 as usize].id);
                        if better {
                            *cur = cand;
                        }
                    })
                    .or_insert(cand);
            }
        }

        // Pass 2: plan each live contact.
        for (i, res) in resolved {
            let c = &contacts[i as usize];
            match res {
                Resolution::Unmapped => self.unmapped(c),
                Resolution::Row { row, link, by } => {
                    let row = row as usize;
                    row_taken[row] = true;
                    if by != MatchedBy::CrmId && claims.get(&row).map(|(_, w)| *w) != Some(i) {
                        let other = claims
                            .get(&row)
                            .map(|(_, w)| contacts[*w as usize].id.clone());
                        self.conflict(
                            ConflictKind::EmailLinkedToOtherRecord,
                            c.email.clone(),
                            std::iter::once(c.id.clone()).chain(other).collect(),
                            "another contact matched the same mapping row better; this one is skipped",
                        );
                        continue;
                    }
                    let row = view.row(row);
                    // The email the row will have once this plan's link is applied (cloned
                    // only when a link renames it: this loop runs once per contact).
                    let renamed = match link.as_deref() {
                        Some((ActionKind::LinkMapping { email, .. }, _)) if *email != row.email => {
                            Some(email.clone())
                        }
                        _ => None,
                    };
                    if let Some(link) = link {
                        let (kind, reason) = *link;
                        let parts = link_key_parts(&kind, c.updated_at);
                        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
                        self.push(kind, reason, &refs);
                    }
                    self.mapped(c, row, renamed.as_ref().unwrap_or(&row.email));
                }
            }
        }

        // Pass 3: archived and deleted contacts not taken over by a live one.
        for i in identity::kept(contacts, &unique) {
            let c = &contacts[i as usize];
            if !c.archived {
                continue;
            }
            let Some(r) = view.index_of_crm(&c.id) else {
                continue;
            };
            if claims.contains_key(&r) {
                continue;
            }
            let row = view.row(r);
            match c
                .merged_into
                .as_ref()
                .map(|w| final_winner(w, contacts, &unique))
            {
                // A complete scan that did not see the survivor proves it gone: the row
                // cannot follow the merge, and keeping the survivor's own row in the picture
                // would decide differently once this plan hands that row to another contact.
                Some(winner)
                    if unique.get(winner).is_none()
                        && self.plan.mode
                            == (PlanMode::FullReconcile {
                                scan_complete: true,
                            }) =>
                {
                    self.remove_all_sync_badges(row, &Reason::ContactVanished);
                }
                Some(winner) => {
                    // A survivor with a row of its own keeps it, even when this plan hands that
                    // row to a canonical duplicate: a merge re-read later must not move the
                    // loser's row to a survivor that no longer decides any row (a full
                    // reconcile, which never sees that tombstone, would not either).
                    let winner_row_kept = view.index_of_crm(winner).is_some();
                    let merge_reason = Reason::ContactMerged {
                        into: winner.clone(),
                    };
                    // The survivor is live in this batch but did not take this row (another
                    // merged record's row went to it, it lost its email's duplicate ranking,
                    // or it has no email): the row cannot follow its record, so its user has
                    // no CRM record any more and loses what this sync granted, as a full
                    // reconcile decides by absence.
                    let winner_live = unique
                        .get(winner)
                        .is_some_and(|&w| !contacts[w as usize].archived);
                    if winner_live && !winner_row_kept {
                        self.conflict(
                            ConflictKind::EmailLinkedToOtherRecord,
                            Some(row.email.clone()),
                            vec![winner.clone(), c.id.clone()],
                            "merged into a record that takes no row here (it keeps another merged record's row, or lost its email to a duplicate); this row keeps its user but loses the badges this sync granted",
                        );
                        self.remove_all_sync_badges(row, &merge_reason);
                        continue;
                    }
                    let relinked = self.merged(c, row, winner, winner_row_kept);
                    if !relinked {
                        self.remove_all_sync_badges(row, &merge_reason);
                    }
                    // Merged into a record that is itself deleted in this batch: the person's
                    // CRM record is gone, so the badges this sync granted go too.
                    let winner_deleted = unique
                        .get(winner)
                        .is_some_and(|&w| contacts[w as usize].archived);
                    if relinked && winner_deleted {
                        self.remove_all_sync_badges(row, &Reason::ContactArchived);
                    }
                }
                None => self.remove_all_sync_badges(row, &Reason::ContactArchived),
            }
        }

        if let PlanMode::FullReconcile {
            scan_complete: true,
        } = self.plan.mode
        {
            let seen = |id: &CrmRecordId| {
                unique
                    .get(id)
                    .is_some_and(|&i| !contacts[i as usize].archived)
            };
            let crm = contacts.first().map(|c| c.id.crm.clone());
            self.absences(crm.as_ref(), &seen, &|r| {
                row_taken[r] || claims.contains_key(&r)
            });
        }
    }

    /// Pass 1 for one live canonical contact. `None` when it is a conflict (already reported).
    // The batch-wide tables are borrowed separately: a struct of them would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn resolve(
        &mut self,
        c: &CrmContact,
        email: &Email,
        contacts: &[CrmContact],
        unique: &identity::ById<'_, '_>,
        canon: &identity::ByEmail<'_>,
        merged_rows: &FastMap<&CrmRecordId, (usize, &CrmRecordId)>,
        renaming: &FastMap<&Email, u32>,
    ) -> Option<Resolution> {
        let view = self.input.view;
        if let Some(r) = view.index_of_crm(&c.id) {
            let row = view.row(r);
            let same = row.email == *email || c.alternate_email.as_ref() == Some(&row.email);
            if same {
                return Some(Resolution::Row {
                    row: r as u32,
                    by: MatchedBy::CrmId,
                    link: None,
                });
            }
            let taken = view.index_of_email(email).filter(|&o| {
                o != r && !moves_away(view, view.row(o), contacts, unique, merged_rows, 0)
            });
            // Another contact of this batch wants the same email: neither rename wins by
            // policy over a contact that keeps its own row, so the row keeps its email.
            let contested =
                canon.get(email).is_some() || renaming.get(email).is_some_and(|&n| n > 1);
            if contested && taken.is_none() {
                let others = renaming_rivals(c, email, contacts, unique, canon);
                self.conflict(
                    ConflictKind::DuplicateEmail,
                    Some(email.clone()),
                    std::iter::once(c.id.clone()).chain(others).collect(),
                    format!(
                        "another CRM contact of this batch has the contact's new email; its row keeps the old email {}",
                        row.email
                    ),
                );
                return Some(Resolution::Row {
                    row: r as u32,
                    by: MatchedBy::CrmId,
                    link: None,
                });
            }
            if let Some(other) = taken {
                let holder = view.row(other);
                self.conflict(
                    ConflictKind::EmailLinkedToOtherRecord,
                    Some(email.clone()),
                    std::iter::once(c.id.clone()).chain(holder.crm_id.clone()).collect(),
                    format!(
                        "the contact's new email is already mapped to another row{}; its row keeps the old email {}",
                        holder.cativa_user_id.as_ref().map(|u| format!(" (user {u})")).unwrap_or_default(),
                        row.email
                    ),
                );
                return Some(Resolution::Row {
                    row: r as u32,
                    by: MatchedBy::CrmId,
                    link: None,
                });
            }
            let kind = ActionKind::LinkMapping {
                email: email.clone(),
                crm_id: c.id.clone(),
                user: row.cativa_user_id.clone(),
                previous_email: Some(row.email.clone()),
                previous_crm_id: None,
            };
            let reason = Reason::EmailChanged {
                from: row.email.clone(),
            };
            return Some(Resolution::Row {
                row: r as u32,
                by: MatchedBy::CrmId,
                link: Some(Box::new((kind, reason))),
            });
        }

        if let Some(&(r, loser)) = merged_rows.get(&c.id) {
            let row = view.row(r);
            let free = view.index_of_email(email).is_none_or(|o| {
                o == r || moves_away(view, view.row(o), contacts, unique, merged_rows, 0)
            });
            let new_email = if free {
                email.clone()
            } else {
                row.email.clone()
            };
            let kind = ActionKind::LinkMapping {
                previous_email: (new_email != row.email).then(|| row.email.clone()),
                email: new_email,
                crm_id: c.id.clone(),
                user: row.cativa_user_id.clone(),
                previous_crm_id: Some(loser.clone()),
            };
            let reason = Reason::ContactMerged { into: c.id.clone() };
            return Some(Resolution::Row {
                row: r as u32,
                by: MatchedBy::Merge,
                link: Some(Box::new((kind, reason))),
            });
        }

        // A row whose own contact is renaming it in this plan is no longer found by its old
        // email: matching it would conflict now and stop conflicting after the rename.
        let lookup = |e: &Email| {
            view.index_of_email(e)
                .filter(|&r| !moves_away(view, view.row(r), contacts, unique, merged_rows, 0))
        };
        let (r, by) = match lookup(email) {
            Some(r) => (r, MatchedBy::Email),
            None => match c.alternate_email.as_ref().and_then(lookup) {
                Some(r) => (r, MatchedBy::AlternateEmail),
                None => return Some(Resolution::Unmapped),
            },
        };
        let row = view.row(r);
        let (previous_crm_id, reason) = match &row.crm_id {
            None => (
                None,
                Reason::FirstMatch {
                    by: by.label().to_owned(),
                },
            ),
            Some(other) => {
                let other_state = unique.get(other).map(|&o| &contacts[o as usize]);
                let takeover = match other_state {
                    Some(o) if o.archived => Some(match &o.merged_into {
                        Some(into) => Reason::ContactMerged { into: into.clone() },
                        None => Reason::ContactArchived,
                    }),
                    Some(o) => {
                        // The row's own contact loses it only when it competes for it (same
                        // email) and the policy ranked another contact first; a contact whose
                        // email moved on keeps its row by CRM id.
                        let o_is_loser = o.email.as_ref() == Some(&row.email)
                            && canon
                                .get(&row.email)
                                .is_some_and(|&w| contacts[w as usize].id != *other);
                        o_is_loser.then_some(Reason::CanonicalDuplicate)
                    }
                    None if other.crm == c.id.crm
                        && self.plan.mode
                            == (PlanMode::FullReconcile {
                                scan_complete: true,
                            }) =>
                    {
                        Some(Reason::ContactVanished)
                    }
                    None => None,
                };
                match takeover {
                    Some(reason) => (Some(other.clone()), reason),
                    None => {
                        self.conflict(
                            ConflictKind::EmailLinkedToOtherRecord,
                            Some(row.email.clone()),
                            vec![c.id.clone(), other.clone()],
                            "the email is already linked to another CRM record that may still be live; merge the duplicates in the CRM or run a complete full reconcile",
                        );
                        return None;
                    }
                }
            }
        };
        let kind = ActionKind::LinkMapping {
            email: row.email.clone(),
            crm_id: c.id.clone(),
            user: row.cativa_user_id.clone(),
            previous_email: None,
            previous_crm_id,
        };
        Some(Resolution::Row {
            row: r as u32,
            by,
            link: Some(Box::new((kind, reason))),
        })
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

    /// A live contact matched to a row.
    fn mapped(&mut self, c: &CrmContact, row: &crate::domain::Mapping, row_email: &Email) {
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
        badges::plan_badges(self, c, row, user);
        fields::plan_fields(self, c, row, user);
    }

    /// An archived contact merged into `winner`: re-point the row to the survivor, unless the
    /// survivor keeps a row of its own (then a conflict is reported and `false` returned).
    fn merged(
        &mut self,
        loser: &CrmContact,
        row: &crate::domain::Mapping,
        winner: &CrmRecordId,
        winner_row_kept: bool,
    ) -> bool {
        if let Some(w) = self
            .input
            .view
            .by_crm_id(winner)
            .filter(|_| winner_row_kept)
        {
            if w.email != row.email {
                self.conflict(
                    ConflictKind::EmailLinkedToOtherRecord,
                    Some(row.email.clone()),
                    vec![winner.clone(), loser.id.clone()],
                    format!("merged into a record already mapped to {}; both rows are kept, and this one loses the badges this sync granted", w.email),
                );
            }
            return false;
        }
        let kind = ActionKind::LinkMapping {
            email: row.email.clone(),
            crm_id: winner.clone(),
            user: row.cativa_user_id.clone(),
            previous_email: None,
            previous_crm_id: Some(loser.id.clone()),
        };
        let parts = link_key_parts(&kind, loser.updated_at);
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        self.push(
            kind,
            Reason::ContactMerged {
                into: winner.clone(),
            },
            &refs,
        );
        true
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
            let Some(id) = &row.crm_id else { continue };
            if crm.is_some_and(|k| *k != id.crm) || row.cativa_user_id.is_none() || taken(r) {
                continue;
            }
            self.plan.counts.absent_checked += 1;
            if !is_seen(id) {
                self.remove_all_sync_badges(row, &Reason::ContactVanished);
            }
        }
    }
}

/// The other live contacts of the batch that want `email`: its canonical contact and other
/// contacts renaming their rows to it, in record order.
fn renaming_rivals(
    c: &CrmContact,
    email: &Email,
    contacts: &[CrmContact],
    unique: &identity::ById<'_, '_>,
    canon: &identity::ByEmail<'_>,
) -> Vec<CrmRecordId> {
    let mut ids: Vec<CrmRecordId> = identity::kept(contacts, unique)
        .map(|i| &contacts[i as usize])
        .filter(|o| {
            o.id != c.id
                && !o.archived
                && o.email.as_ref() == Some(email)
                && (unique.linked_elsewhere(o)
                    || canon
                        .get(email)
                        .is_some_and(|&w| contacts[w as usize].id == o.id))
        })
        .map(|o| o.id.clone())
        .collect();
    ids.sort();
    ids
}

/// Follows a chain of merges inside the batch (A into B, B into C) to the last record.
fn final_winner<'c>(
    first: &'c CrmRecordId,
    contacts: &'c [CrmContact],
    unique: &identity::ById<'_, '_>,
) -> &'c CrmRecordId {
    let mut current = first;
    // Bounded: a malformed cycle (A into B, B into A) must not loop forever.
    for _ in 0..16 {
        match unique.get(current).map(|&i| &contacts[i as usize]) {
            Some(c) if c.archived => match &c.merged_into {
                Some(next) if next != current => current = next,
                _ => break,
            },
            _ => break,
        }
    }
    current
}

/// Whether the row's linked contact is live in this batch with a new email that is free, so
/// the planner renames the row.
fn moves_away(
    view: &StateView,
    row: &crate::domain::Mapping,
    contacts: &[CrmContact],
    unique: &identity::ById<'_, '_>,
    merged_rows: &FastMap<&CrmRecordId, (usize, &CrmRecordId)>,
    depth: u8,
) -> bool {
    let Some(id) = &row.crm_id else { return false };
    let Some(&i) = unique.get(id) else {
        return false;
    };
    let mut c = &contacts[i as usize];
    if c.archived {
        // A merged-away record: its winner may take the row and rename it.
        let Some(winner) = &c.merged_into else {
            return false;
        };
        if merged_rows
            .get(winner)
            .is_none_or(|(_, loser)| *loser != id)
        {
            return false;
        }
        let Some(&w) = unique.get(winner) else {
            return false;
        };
        c = &contacts[w as usize];
    }
    match &c.email {
        Some(e) => {
            *e != row.email
                && c.alternate_email.as_ref() != Some(&row.email)
                // The new email must be free, or held by a row that itself moves away (a chain
                // of renames); bounded so a cycle cannot recurse forever.
                && match view.index_of_email(e) {
                    None => true,
                    Some(o) => depth < 8 && moves_away(view, view.row(o), contacts, unique, merged_rows, depth + 1),
                }
        }
        None => false,
    }
}

/// Key parts of a link: what it writes and the time of the change that triggered it, so the
/// same link planned again after a later change (a row handed back and forth between two
/// records) is a new action, while re-planning one change repeats its key.
fn link_key_parts(kind: &ActionKind, at: DateTime<Utc>) -> Vec<String> {
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
mod tests;
