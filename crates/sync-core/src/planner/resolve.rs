//! Pass 1 for one live canonical contact: which mapping row it belongs to, by CRM id, by a
//! merge it survived, by email or by alternate email, and the link that makes it so.

use super::batch::Batch;
use super::identity::MatchedBy;
use super::{Builder, Resolution};
use crate::domain::{CrmContact, CrmRecordId, Email, Mapping};
use crate::plan::{ActionKind, ConflictKind, PlanMode, Reason};

impl Builder<'_, '_> {
    /// `None` when the contact is a conflict (already reported).
    pub(super) fn resolve(
        &mut self,
        c: &CrmContact,
        email: &Email,
        b: &Batch<'_, '_>,
    ) -> Option<Resolution> {
        if let Some(r) = b.view.index_of_crm(&c.id) {
            return Some(self.resolve_by_crm_id(c, email, r, b));
        }
        if let Some(&(r, loser)) = b.merged_rows.get(&c.id) {
            return Some(resolve_by_merge(c, email, r, loser, b));
        }
        self.resolve_by_email(c, email, b)
    }

    /// Linked by CRM id to row `r`: the row, renamed to the contact's new email when that
    /// email is free and uncontested.
    fn resolve_by_crm_id(
        &mut self,
        c: &CrmContact,
        email: &Email,
        r: usize,
        b: &Batch<'_, '_>,
    ) -> Resolution {
        let keep = Resolution::Row {
            row: r as u32,
            by: MatchedBy::CrmId,
            link: None,
        };
        let row = b.view.row(r);
        if row.email == *email || c.alternate_email.as_ref() == Some(&row.email) {
            return keep;
        }
        let taken = b
            .view
            .index_of_email(email)
            .filter(|&o| o != r && !b.moves_away(b.view.row(o)));
        // Another contact of this batch wants the same email: neither rename wins by policy
        // over a contact that keeps its own row, so the row keeps its email.
        let contested =
            b.canon.get(email).is_some() || b.renaming.get(email).is_some_and(|&n| n > 1);
        if contested && taken.is_none() {
            let others = b.renaming_rivals(c, email);
            self.conflict(
                ConflictKind::DuplicateEmail,
                Some(email.clone()),
                std::iter::once(c.id.clone()).chain(others).collect(),
                format!(
                    "another CRM contact of this batch has the contact's new email; its row keeps the old email {}",
                    row.email
                ),
            );
            return keep;
        }
        if let Some(other) = taken {
            let holder = b.view.row(other);
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
            return keep;
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
        Resolution::Row {
            row: r as u32,
            by: MatchedBy::CrmId,
            link: Some(Box::new((kind, reason))),
        }
    }

    /// No row by CRM id, no merge: the row of the contact's email, else of its alternate
    /// email, taken over from the record it was linked to when that record is gone.
    fn resolve_by_email(
        &mut self,
        c: &CrmContact,
        email: &Email,
        b: &Batch<'_, '_>,
    ) -> Option<Resolution> {
        // A row whose own contact is renaming it in this plan is no longer found by its old
        // email: matching it would conflict now and stop conflicting after the rename.
        let lookup = |e: &Email| {
            b.view
                .index_of_email(e)
                .filter(|&r| !b.moves_away(b.view.row(r)))
        };
        let (r, by) = match lookup(email) {
            Some(r) => (r, MatchedBy::Email),
            None => match c.alternate_email.as_ref().and_then(lookup) {
                Some(r) => (r, MatchedBy::AlternateEmail),
                None => return Some(Resolution::Unmapped),
            },
        };
        let row = b.view.row(r);
        let (previous_crm_id, reason) = match &row.crm_id {
            None => (
                None,
                Reason::FirstMatch {
                    by: by.label().to_owned(),
                },
            ),
            Some(other) => match self.takeover_reason(c, row, other, b) {
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
            },
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

    /// Why `c` may take over a row linked to record `other`, or `None` when `other` may still
    /// hold it.
    fn takeover_reason(
        &self,
        c: &CrmContact,
        row: &Mapping,
        other: &CrmRecordId,
        b: &Batch<'_, '_>,
    ) -> Option<Reason> {
        match b.get(other) {
            Some(o) if o.archived => Some(match &o.merged_into {
                Some(into) => Reason::ContactMerged { into: into.clone() },
                None => Reason::ContactArchived,
            }),
            Some(o) => {
                // The row's own contact loses it only when it competes for it (same email)
                // and the policy ranked another contact first; a contact whose email moved
                // on keeps its row by CRM id.
                let o_is_loser = o.email.as_ref() == Some(&row.email)
                    && b.canon
                        .get(&row.email)
                        .is_some_and(|&w| b.contact(w).id != *other);
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
        }
    }
}

/// A live survivor without a row of its own takes the row of the record merged into it,
/// renamed to the survivor's email when that is free.
fn resolve_by_merge(
    c: &CrmContact,
    email: &Email,
    r: usize,
    loser: &CrmRecordId,
    b: &Batch<'_, '_>,
) -> Resolution {
    let row = b.view.row(r);
    // The survivor keeps the row's email when it carries it as its alternate email, as a
    // contact matched by CRM id does (and as `moves_away` assumes).
    let keeps_email = c.alternate_email.as_ref() == Some(&row.email);
    let free = b
        .view
        .index_of_email(email)
        .is_none_or(|o| o == r || b.moves_away(b.view.row(o)));
    let new_email = if free && !keeps_email {
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
    Resolution::Row {
        row: r as u32,
        by: MatchedBy::Merge,
        link: Some(Box::new((kind, reason))),
    }
}
