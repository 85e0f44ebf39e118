//! The planner's read-only snapshot of the mapping table.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use serde::{Deserialize, Serialize};

use crate::domain::{CativaUserId, CrmRecordId, Email, Mapping};

/// A snapshot of mapping rows with lookups by email, CRM record and user.
///
/// Stores build it for the rows a page of contacts touches (or all rows, for a full
/// reconcile); the planner only reads it. The lookup maps use a fast non-cryptographic hash
/// (`foldhash`), randomly seeded per view.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "Vec<Mapping>", into = "Vec<Mapping>")]
pub struct StateView {
    rows: Vec<Mapping>,
    by_email: HashMap<Email, usize, RandomState>,
    by_crm: HashMap<CrmRecordId, usize, RandomState>,
    by_user: HashMap<CativaUserId, usize, RandomState>,
}

impl From<Vec<Mapping>> for StateView {
    fn from(rows: Vec<Mapping>) -> Self {
        Self::new(rows)
    }
}

impl From<StateView> for Vec<Mapping> {
    fn from(view: StateView) -> Self {
        view.rows
    }
}

impl StateView {
    /// Builds a view. Rows repeating an email (a store would never return that) keep the last.
    pub fn new(rows: Vec<Mapping>) -> Self {
        let mut view = Self {
            rows: Vec::with_capacity(rows.len()),
            by_email: HashMap::with_capacity_and_hasher(rows.len(), RandomState::default()),
            by_crm: HashMap::with_capacity_and_hasher(rows.len(), RandomState::default()),
            by_user: HashMap::with_capacity_and_hasher(rows.len(), RandomState::default()),
        };
        for row in rows {
            view.put(row);
        }
        view
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the view has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row with this email.
    pub fn by_email(&self, email: &Email) -> Option<&Mapping> {
        self.by_email.get(email).map(|&i| &self.rows[i])
    }

    /// The row linked to this CRM record.
    pub fn by_crm_id(&self, id: &CrmRecordId) -> Option<&Mapping> {
        self.by_crm.get(id).map(|&i| &self.rows[i])
    }

    /// The row of this user.
    pub fn by_user(&self, user: &CativaUserId) -> Option<&Mapping> {
        self.by_user.get(user).map(|&i| &self.rows[i])
    }

    /// Every row, in insertion order.
    pub fn rows(&self) -> impl Iterator<Item = &Mapping> {
        self.rows.iter()
    }

    pub(crate) fn index_of_email(&self, email: &Email) -> Option<usize> {
        self.by_email.get(email).copied()
    }

    pub(crate) fn index_of_crm(&self, id: &CrmRecordId) -> Option<usize> {
        self.by_crm.get(id).copied()
    }

    pub(crate) fn row(&self, index: usize) -> &Mapping {
        &self.rows[index]
    }

    /// Inserts or replaces a row with the store's rule: the row with the same email, else the
    /// same CRM record, else the same user, is replaced. Returns `false` (and changes nothing)
    /// when those keys point at different rows.
    pub fn put(&mut self, row: Mapping) -> bool {
        let hits = [
            self.by_email.get(&row.email).copied(),
            row.crm_id
                .as_ref()
                .and_then(|c| self.by_crm.get(c).copied()),
            row.cativa_user_id
                .as_ref()
                .and_then(|u| self.by_user.get(u).copied()),
        ];
        let mut target: Option<usize> = None;
        for hit in hits.into_iter().flatten() {
            match target {
                None => target = Some(hit),
                Some(t) if t != hit => return false,
                Some(_) => {}
            }
        }
        if let Some(i) = target {
            let old = std::mem::replace(&mut self.rows[i], row);
            self.by_email.remove(&old.email);
            if let Some(c) = &old.crm_id {
                self.by_crm.remove(c);
            }
            if let Some(u) = &old.cativa_user_id {
                self.by_user.remove(u);
            }
            self.index(i);
        } else {
            self.rows.push(row);
            self.index(self.rows.len() - 1);
        }
        true
    }

    /// Replaces the row that has email `before` (when given and present) by `row`, even if
    /// `row` changes both its email and its CRM record; otherwise behaves like
    /// [`StateView::put`]. Returns `false` (and changes nothing) when `row`'s keys belong to
    /// another row.
    pub fn replace(&mut self, before: Option<&Email>, row: Mapping) -> bool {
        let Some(i) = before.and_then(|e| self.by_email.get(e).copied()) else {
            return self.put(row);
        };
        let clash = |hit: Option<&usize>| hit.is_some_and(|&j| j != i);
        if clash(self.by_email.get(&row.email))
            || clash(row.crm_id.as_ref().and_then(|c| self.by_crm.get(c)))
            || clash(
                row.cativa_user_id
                    .as_ref()
                    .and_then(|u| self.by_user.get(u)),
            )
        {
            return false;
        }
        let old = std::mem::replace(&mut self.rows[i], row);
        self.by_email.remove(&old.email);
        if let Some(c) = &old.crm_id {
            self.by_crm.remove(c);
        }
        if let Some(u) = &old.cativa_user_id {
            self.by_user.remove(u);
        }
        self.index(i);
        true
    }

    fn index(&mut self, i: usize) {
        let row = &self.rows[i];
        self.by_email.insert(row.email.clone(), i);
        if let Some(c) = &row.crm_id {
            self.by_crm.insert(c.clone(), i);
        }
        if let Some(u) = &row.cativa_user_id {
            self.by_user.insert(u.clone(), i);
        }
    }
}
