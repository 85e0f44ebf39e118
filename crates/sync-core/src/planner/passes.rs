//! The passes over one batch: live contacts to rows (pass 1), the rows' claims settled and
//! each live contact planned (pass 2), then archived and deleted contacts (pass 3).

use super::batch::Batch;
use super::identity::{FastMap, MatchedBy, fast_map};
use super::{Builder, Resolution, link_key_parts};
use crate::domain::{CrmContact, CrmRecordId, Email, Mapping};
use crate::plan::{ActionKind, ConflictKind, PlanMode, Reason};

/// Per row claimed by a non-CRM-id match: the best claim (how, which contact).
pub(super) type Claims = FastMap<usize, (MatchedBy, u32)>;

/// What pass 1 leaves for the next steps.
pub(super) struct LivePass<'c> {
    /// Live contacts that lost their email's duplicate ranking, by email.
    pub(super) losers: FastMap<&'c Email, Vec<u32>>,
    /// Live canonical contacts resolved to a row (or to none) but not planned yet.
    pub(super) resolved: Vec<(u32, Resolution)>,
}

impl Builder<'_, '_> {
    /// Pass 1: resolve live canonical contacts to rows and collect duplicate losers. The
    /// common cases (fast path, matched by CRM id with nothing to relink) cannot collide with
    /// another claim, so they are planned at once, while the contact and its row are in cache.
    pub(super) fn pass_live<'c>(
        &mut self,
        b: &Batch<'c, '_>,
        row_taken: &mut [bool],
    ) -> LivePass<'c> {
        let view = b.view;
        let mut out = LivePass {
            losers: fast_map(0),
            resolved: Vec::new(),
        };
        for i in b.kept() {
            let c = b.contact(i);
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
            if let Some(r) = b.unique.fast_row(i) {
                // Linked, same email, no duplicate: what resolve() would find, without the
                // batch-wide tables.
                row_taken[r] = true;
                let row = view.row(r);
                self.mapped(c, row, &row.email, row.generation);
                continue;
            }
            if !b.is_canonical[i as usize] {
                out.losers.entry(email).or_default().push(i);
                continue;
            }
            match self.resolve(c, email, b) {
                Some(Resolution::Row {
                    row,
                    by: MatchedBy::CrmId,
                    link: None,
                }) => {
                    row_taken[row as usize] = true;
                    let row = view.row(row as usize);
                    self.mapped(c, row, &row.email, row.generation);
                }
                Some(res) => out.resolved.push((i, res)),
                None => {}
            }
        }
        out
    }

    /// Reports the duplicate losers of each email, canonical contact first.
    pub(super) fn report_duplicates(
        &mut self,
        b: &Batch<'_, '_>,
        losers: FastMap<&Email, Vec<u32>>,
    ) {
        for (email, mut idx) in losers {
            self.plan.counts.skipped_duplicate += idx.len() as u64;
            idx.sort_by(|x, y| b.contact(*x).id.cmp(&b.contact(*y).id));
            let winner = b.canon.get(email).map(|&w| b.contact(w).id.clone());
            let mut ids: Vec<CrmRecordId> = winner.into_iter().collect();
            ids.extend(idx.iter().map(|&l| b.contact(l).id.clone()));
            self.conflict(
                ConflictKind::DuplicateEmail,
                Some(email.clone()),
                ids,
                format!("{} CRM contacts share this email; the first is canonical by the duplicates policy, the others are skipped", idx.len() + 1),
            );
        }
    }

    /// Pass 2: plans each resolved live contact; a contact that lost its row's claim is
    /// reported and skipped.
    pub(super) fn pass_resolved(
        &mut self,
        b: &Batch<'_, '_>,
        resolved: Vec<(u32, Resolution)>,
        claims: &Claims,
        row_taken: &mut [bool],
    ) {
        for (i, res) in resolved {
            let c = b.contact(i);
            let (row, link, by) = match res {
                Resolution::Unmapped => {
                    self.unmapped(c);
                    continue;
                }
                Resolution::Row { row, link, by } => (row as usize, link, by),
            };
            row_taken[row] = true;
            if by != MatchedBy::CrmId && claims.get(&row).map(|(_, w)| *w) != Some(i) {
                let other = claims.get(&row).map(|(_, w)| b.contact(*w).id.clone());
                self.conflict(
                    ConflictKind::EmailLinkedToOtherRecord,
                    c.email.clone(),
                    std::iter::once(c.id.clone()).chain(other).collect(),
                    "another contact matched the same mapping row better; this one is skipped",
                );
                continue;
            }
            let row = b.view.row(row);
            // The email the row will have once this plan's link is applied (cloned only when
            // a link renames it: this loop runs once per contact).
            let renamed = match link.as_deref() {
                Some((ActionKind::LinkMapping { email, .. }, _)) if *email != row.email => {
                    Some(email.clone())
                }
                _ => None,
            };
            // The generation the row will have once the link is applied (the effect bumps it
            // when the row moves to this record): a re-plan after the link keys grants alike.
            let mut generation = row.generation;
            if let Some(link) = link {
                let (kind, reason) = *link;
                if let ActionKind::LinkMapping { crm_id, .. } = &kind
                    && row.moves_to_other_record(crm_id)
                {
                    generation += 1;
                }
                let parts = link_key_parts(&kind, c.updated_at, row.generation);
                let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
                self.push(kind, reason, &refs);
            }
            self.mapped(c, row, renamed.as_ref().unwrap_or(&row.email), generation);
        }
    }

    /// Pass 3: archived and deleted contacts whose row no live contact took over.
    pub(super) fn pass_archived(&mut self, b: &Batch<'_, '_>, claims: &Claims) {
        for i in b.kept() {
            // Fast contacts are live: skipping them spares reading them.
            if b.unique.is_fast(i) {
                continue;
            }
            let c = b.contact(i);
            if !c.archived {
                continue;
            }
            let Some(r) = b.view.index_of_crm(&c.id) else {
                continue;
            };
            if claims.contains_key(&r) {
                continue;
            }
            let row = b.view.row(r);
            match c.merged_into.as_ref().map(|w| b.final_winner(w)) {
                Some(winner) => self.archived_merged(b, c, row, winner),
                None => self.remove_all_sync_badges(row, &Reason::ContactArchived),
            }
        }
    }

    /// An archived contact merged into `winner` (the end of the merge chain).
    fn archived_merged(
        &mut self,
        b: &Batch<'_, '_>,
        c: &CrmContact,
        row: &Mapping,
        winner: &CrmRecordId,
    ) {
        // The survivor is gone: deleted in this batch, or not seen by a complete scan. The row
        // cannot follow the merge to a record that no longer exists; it stays, and its user
        // loses what this sync granted. (Following it would also decide differently once this
        // plan hands the survivor's own row to another contact.)
        let complete = self.plan.mode
            == (PlanMode::FullReconcile {
                scan_complete: true,
            });
        match b.get(winner) {
            Some(w) if w.archived => {
                return self.remove_all_sync_badges(row, &Reason::ContactArchived);
            }
            None if complete => {
                return self.remove_all_sync_badges(row, &Reason::ContactVanished);
            }
            _ => {}
        }
        // A survivor with a row of its own keeps it, even when this plan hands that row to a
        // canonical duplicate: a merge re-read later must not move the loser's row to a
        // survivor that no longer decides any row (a full reconcile, which never sees that
        // tombstone, would not either).
        let winner_row_kept = b.view.index_of_crm(winner).is_some();
        let merge_reason = Reason::ContactMerged {
            into: winner.clone(),
        };
        // The survivor is live in this batch but did not take this row (another merged
        // record's row went to it, it lost its email's duplicate ranking, or it has no email):
        // the row cannot follow its record, so its user has no CRM record any more and loses
        // what this sync granted, as a full reconcile decides by absence.
        if b.is_live(winner) && !winner_row_kept {
            self.conflict(
                ConflictKind::EmailLinkedToOtherRecord,
                Some(row.email.clone()),
                vec![winner.clone(), c.id.clone()],
                "merged into a record that takes no row here (it keeps another merged record's row, or lost its email to a duplicate); this row keeps its user but loses the badges this sync granted",
            );
            self.remove_all_sync_badges(row, &merge_reason);
            return;
        }
        if !self.merged(c, row, winner, winner_row_kept) {
            self.remove_all_sync_badges(row, &merge_reason);
        }
    }

    /// An archived contact merged into `winner`: re-point the row to the survivor, unless the
    /// survivor keeps a row of its own (then a conflict is reported and `false` returned).
    fn merged(
        &mut self,
        loser: &CrmContact,
        row: &Mapping,
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
        // Two merged records (a chain, 2 -> 3 -> 4) may each have a row and lead to one
        // survivor: the first row re-pointed takes it, as the row kept would in the next plan.
        if let Some(first) = self.merge_links.get(winner) {
            if *first == row.email {
                return true;
            }
            {
                let detail = format!(
                    "merged into a record this plan links to {first}; both rows are kept, and this one loses the badges this sync granted"
                );
                self.conflict(
                    ConflictKind::EmailLinkedToOtherRecord,
                    Some(row.email.clone()),
                    vec![winner.clone(), loser.id.clone()],
                    detail,
                );
            }
            return false;
        }
        self.merge_links.insert(winner.clone(), row.email.clone());
        let kind = ActionKind::LinkMapping {
            email: row.email.clone(),
            crm_id: winner.clone(),
            user: row.cativa_user_id.clone(),
            previous_email: None,
            previous_crm_id: Some(loser.id.clone()),
        };
        let parts = link_key_parts(&kind, loser.updated_at, row.generation);
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
}

/// Two contacts may claim one row (an email match and an alternate-email match): the better
/// match wins (crm id > email > alternate email, then the smaller record id). A match by CRM
/// id cannot collide (one record, one row), so only the others are tracked, which keeps this
/// map small.
pub(super) fn best_claims(b: &Batch<'_, '_>, resolved: &[(u32, Resolution)]) -> Claims {
    let mut claims: Claims = fast_map(0);
    for (i, res) in resolved {
        let Resolution::Row { row, by, .. } = res else {
            continue;
        };
        if *by == MatchedBy::CrmId {
            continue;
        }
        let cand = (*by, *i);
        claims
            .entry(*row as usize)
            .and_modify(|cur| {
                let better = (cand.0, &b.contact(cand.1).id) < (cur.0, &b.contact(cur.1).id);
                if better {
                    *cur = cand;
                }
            })
            .or_insert(cand);
    }
    claims
}
