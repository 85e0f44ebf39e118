//! The batch-wide tables the planner's passes share, built once per batch: contacts kept by
//! record id, the canonical contact of each email, merge takeovers and pending renames.

use super::StateView;
use super::identity::{self, ByEmail, ById, FastMap, canonical_by_email, dedupe_by_id, fast_map};
use crate::config::DuplicatePolicy;
use crate::domain::{CrmContact, CrmRecordId, Email, Mapping};

/// One batch of contacts and what the planner derived from it before planning any of them.
pub(super) struct Batch<'c, 'v> {
    pub(super) contacts: &'c [CrmContact],
    pub(super) view: &'v StateView,
    pub(super) unique: ById<'c, 'v>,
    pub(super) canon: ByEmail<'c>,
    /// Merges move identity: a live winner takes the row of the record merged into it
    /// (winner -> (row, loser)).
    pub(super) merged_rows: FastMap<&'c CrmRecordId, (usize, &'c CrmRecordId)>,
    /// Per contact: planned on its own (canonical for its email, fast path, or linked by CRM
    /// id to another row). Flags instead of map lookups in the hot loops.
    pub(super) is_canonical: Vec<bool>,
    /// Per new email: how many linked contacts rename their row to it.
    pub(super) renaming: FastMap<&'c Email, u32>,
}

impl<'c, 'v> Batch<'c, 'v> {
    pub(super) fn new(
        contacts: &'c [CrmContact],
        view: &'v StateView,
        policy: &DuplicatePolicy,
    ) -> Self {
        let unique = dedupe_by_id(contacts, view);
        let canon = canonical_by_email(contacts, &unique, policy);
        let merged_rows = merge_takeovers(contacts, view, &unique);
        let (is_canonical, renaming) = canonical_flags(contacts, view, &unique, &canon);
        Self {
            contacts,
            view,
            unique,
            canon,
            merged_rows,
            is_canonical,
            renaming,
        }
    }

    /// Indices of the kept copies, in input order.
    pub(super) fn kept(&self) -> impl Iterator<Item = u32> + '_ {
        identity::kept(self.contacts, &self.unique)
    }

    pub(super) fn contact(&self, i: u32) -> &'c CrmContact {
        &self.contacts[i as usize]
    }

    /// The kept copy of a record, if the batch has it.
    pub(super) fn get(&self, id: &CrmRecordId) -> Option<&'c CrmContact> {
        self.unique.get(id).map(|&i| self.contact(i))
    }

    /// Whether the batch has the record, live.
    pub(super) fn is_live(&self, id: &CrmRecordId) -> bool {
        self.get(id).is_some_and(|c| !c.archived)
    }

    /// Follows a chain of merges inside the batch (A into B, B into C) to the last record.
    pub(super) fn final_winner(&self, first: &'c CrmRecordId) -> &'c CrmRecordId {
        final_winner(first, self.contacts, &self.unique)
    }

    /// Whether the row's linked contact is live in this batch with a new email that is free,
    /// so the planner renames the row.
    pub(super) fn moves_away(&self, row: &Mapping) -> bool {
        moves_away(self, row, 0)
    }

    /// The other live contacts of the batch that want `email`: its canonical contact and other
    /// contacts renaming their rows to it, in record order.
    pub(super) fn renaming_rivals(&self, c: &CrmContact, email: &Email) -> Vec<CrmRecordId> {
        let mut ids: Vec<CrmRecordId> = self
            .kept()
            .map(|i| self.contact(i))
            .filter(|o| {
                o.id != c.id
                    && !o.archived
                    && o.email.as_ref() == Some(email)
                    && (self.unique.linked_elsewhere(o)
                        || self
                            .canon
                            .get(email)
                            .is_some_and(|&w| self.contact(w).id == o.id))
            })
            .map(|o| o.id.clone())
            .collect();
        ids.sort();
        ids
    }
}

/// For every live survivor without a row of its own: the row of a record merged into it (the
/// smallest loser's when several were).
fn merge_takeovers<'c>(
    contacts: &'c [CrmContact],
    view: &StateView,
    unique: &ById<'c, '_>,
) -> FastMap<&'c CrmRecordId, (usize, &'c CrmRecordId)> {
    let mut merged_rows: FastMap<&'c CrmRecordId, (usize, &'c CrmRecordId)> = fast_map(0);
    for i in identity::kept(contacts, unique) {
        // Fast contacts are live: skipping them spares reading them.
        if unique.is_fast(i) {
            continue;
        }
        let c = &contacts[i as usize];
        let (true, Some(into)) = (c.archived, &c.merged_into) else {
            continue;
        };
        let Some(r) = view.index_of_crm(&c.id) else {
            continue;
        };
        let winner = final_winner(into, contacts, unique);
        let live_winner = unique
            .get(winner)
            .is_some_and(|&w| !contacts[w as usize].archived);
        if live_winner && view.index_of_crm(winner).is_none() {
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
    merged_rows
}

/// Which contacts are planned on their own, and how many linked contacts rename their row to
/// each new email.
///
/// Contacts linked by CRM id to a row other than their email's keep that row: they are not
/// ranked against the contacts of their email (see `ById::linked_elsewhere`). Those that
/// rename their row are counted per new email: two renames to one email in a batch, or a
/// rename to an email another contact of the batch has, are held back.
fn canonical_flags<'c>(
    contacts: &'c [CrmContact],
    view: &StateView,
    unique: &ById<'c, '_>,
    canon: &ByEmail<'c>,
) -> (Vec<bool>, FastMap<&'c Email, u32>) {
    let mut is_canonical = vec![false; contacts.len()];
    for &i in canon.values() {
        is_canonical[i as usize] = true;
    }
    let mut renaming: FastMap<&'c Email, u32> = fast_map(0);
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
    (is_canonical, renaming)
}

fn final_winner<'c>(
    first: &'c CrmRecordId,
    contacts: &'c [CrmContact],
    unique: &ById<'_, '_>,
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

fn moves_away(b: &Batch<'_, '_>, row: &Mapping, depth: u8) -> bool {
    let Some(id) = &row.crm_id else { return false };
    let Some(mut c) = b.get(id) else {
        return false;
    };
    if c.archived {
        // A merged-away record: its winner may take the row and rename it.
        let Some(winner) = &c.merged_into else {
            return false;
        };
        if b.merged_rows
            .get(winner)
            .is_none_or(|(_, loser)| *loser != id)
        {
            return false;
        }
        let Some(w) = b.get(winner) else {
            return false;
        };
        c = w;
    }
    match &c.email {
        Some(e) => {
            *e != row.email
                && c.alternate_email.as_ref() != Some(&row.email)
                // The new email must be free, or held by a row that itself moves away (a chain
                // of renames); bounded so a cycle cannot recurse forever.
                && match b.view.index_of_email(e) {
                    None => true,
                    Some(o) => depth < 8 && moves_away(b, b.view.row(o), depth + 1),
                }
        }
        None => false,
    }
}
