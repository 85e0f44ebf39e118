//! The planner's read-only snapshot of the mapping table.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};

use crate::domain::{CativaUserId, CrmRecordId, Email, Mapping};

/// A snapshot of mapping rows with lookups by email, CRM record and user.
///
/// Stores build it for the rows a page of contacts touches (or all rows, for a full
/// reconcile); the planner only reads it. Each lookup table holds only 4-byte row indices
/// (the keys live in the rows), so a million-row view's tables stay small enough for the
/// cache; hashing is `foldhash`, randomly seeded per view.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "Vec<Mapping>", into = "Vec<Mapping>")]
pub struct StateView {
    rows: Vec<Mapping>,
    hasher: RandomState,
    by_email: HashTable<u32>,
    by_crm: HashTable<u32>,
    by_user: HashTable<u32>,
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
            hasher: RandomState::default(),
            by_email: HashTable::with_capacity(rows.len()),
            by_crm: HashTable::with_capacity(rows.len()),
            by_user: HashTable::with_capacity(rows.len()),
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
        self.index_of_email(email).map(|i| &self.rows[i])
    }

    /// The row linked to this CRM record.
    pub fn by_crm_id(&self, id: &CrmRecordId) -> Option<&Mapping> {
        self.index_of_crm(id).map(|i| &self.rows[i])
    }

    /// The row of this user.
    pub fn by_user(&self, user: &CativaUserId) -> Option<&Mapping> {
        let h = self.hasher.hash_one(user);
        self.by_user
            .find(h, |&i| {
                self.rows[i as usize].cativa_user_id.as_ref() == Some(user)
            })
            .map(|&i| &self.rows[i as usize])
    }

    /// Every row, in insertion order.
    pub fn rows(&self) -> impl Iterator<Item = &Mapping> {
        self.rows.iter()
    }

    pub(crate) fn index_of_email(&self, email: &Email) -> Option<usize> {
        let h = self.hasher.hash_one(email);
        self.by_email
            .find(h, |&i| self.rows[i as usize].email == *email)
            .map(|&i| i as usize)
    }

    pub(crate) fn index_of_crm(&self, id: &CrmRecordId) -> Option<usize> {
        let h = crm_hash(&self.hasher, id);
        self.by_crm
            .find(h, |&i| self.rows[i as usize].crm_id.as_ref() == Some(id))
            .map(|&i| i as usize)
    }

    fn index_of_user(&self, user: &CativaUserId) -> Option<usize> {
        let h = self.hasher.hash_one(user);
        self.by_user
            .find(h, |&i| {
                self.rows[i as usize].cativa_user_id.as_ref() == Some(user)
            })
            .map(|&i| i as usize)
    }

    pub(crate) fn row(&self, index: usize) -> &Mapping {
        &self.rows[index]
    }

    /// Inserts or replaces a row with the store's rule: the row with the same email, else the
    /// same CRM record, else the same user, is replaced. Returns `false` (and changes nothing)
    /// when those keys point at different rows.
    pub fn put(&mut self, row: Mapping) -> bool {
        let hits = [
            self.index_of_email(&row.email),
            row.crm_id.as_ref().and_then(|c| self.index_of_crm(c)),
            row.cativa_user_id
                .as_ref()
                .and_then(|u| self.index_of_user(u)),
        ];
        let mut target: Option<usize> = None;
        for hit in hits.into_iter().flatten() {
            match target {
                None => target = Some(hit),
                Some(t) if t != hit => return false,
                Some(_) => {}
            }
        }
        match target {
            Some(i) => self.replace_at(i, row),
            None => {
                self.rows.push(row);
                self.index(self.rows.len() - 1);
            }
        }
        true
    }

    /// Replaces the row that has email `before` (when given and present) by `row`, even if
    /// `row` changes both its email and its CRM record; otherwise behaves like
    /// [`StateView::put`]. Returns `false` (and changes nothing) when `row`'s keys belong to
    /// another row.
    pub fn replace(&mut self, before: Option<&Email>, row: Mapping) -> bool {
        let Some(i) = before.and_then(|e| self.index_of_email(e)) else {
            return self.put(row);
        };
        let clash = |hit: Option<usize>| hit.is_some_and(|j| j != i);
        if clash(self.index_of_email(&row.email))
            || clash(row.crm_id.as_ref().and_then(|c| self.index_of_crm(c)))
            || clash(
                row.cativa_user_id
                    .as_ref()
                    .and_then(|u| self.index_of_user(u)),
            )
        {
            return false;
        }
        self.replace_at(i, row);
        true
    }

    fn replace_at(&mut self, i: usize, row: Mapping) {
        self.unindex(i);
        self.rows[i] = row;
        self.index(i);
    }

    fn unindex(&mut self, i: usize) {
        let Self {
            rows,
            hasher,
            by_email,
            by_crm,
            by_user,
        } = self;
        let row = &rows[i];
        let idx = i as u32;
        if let Ok(e) = by_email.find_entry(hasher.hash_one(&row.email), |&j| j == idx) {
            e.remove();
        }
        if let Some(c) = &row.crm_id
            && let Ok(e) = by_crm.find_entry(crm_hash(hasher, c), |&j| j == idx)
        {
            e.remove();
        }
        if let Some(u) = &row.cativa_user_id
            && let Ok(e) = by_user.find_entry(hasher.hash_one(u), |&j| j == idx)
        {
            e.remove();
        }
    }

    fn index(&mut self, i: usize) {
        let Self {
            rows,
            hasher,
            by_email,
            by_crm,
            by_user,
        } = self;
        let row = &rows[i];
        let idx = i as u32;
        by_email.insert_unique(hasher.hash_one(&row.email), idx, |&j| {
            hasher.hash_one(&rows[j as usize].email)
        });
        if let Some(c) = &row.crm_id {
            // Entries of this table always have a CRM id: rehash by it.
            by_crm.insert_unique(crm_hash(hasher, c), idx, |&j| {
                rows[j as usize]
                    .crm_id
                    .as_ref()
                    .map_or(0, |c| crm_hash(hasher, c))
            });
        }
        if let Some(u) = &row.cativa_user_id {
            by_user.insert_unique(hasher.hash_one(u), idx, |&j| {
                rows[j as usize]
                    .cativa_user_id
                    .as_ref()
                    .map_or(0, |u| hasher.hash_one(u))
            });
        }
    }
}

/// The CRM table's hash: the record id's text alone. One CRM's ids rarely equal another's,
/// and the probe compares the whole id, so leaving the CRM out only saves hashing it (this
/// runs once per contact of a full reconcile).
fn crm_hash(hasher: &RandomState, id: &CrmRecordId) -> u64 {
    hasher.hash_one(id.id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn lookups_put_and_replace_keep_the_indexes_consistent() {
        let now = Utc::now();
        let a = Email::parse("a@x.io").unwrap();
        let b = Email::parse("b@x.io").unwrap();
        let mut view = StateView::new(vec![
            Mapping::new(a.clone(), now)
                .with_user("u1".into())
                .with_crm(CrmRecordId::hubspot("1")),
            Mapping::new(b.clone(), now),
        ]);
        assert_eq!(view.by_user(&"u1".into()).map(|m| &m.email), Some(&a));
        assert!(view.by_crm_id(&CrmRecordId::hubspot("1")).is_some());
        // Rename a@ to c@ through its CRM id.
        let c = Email::parse("c@x.io").unwrap();
        assert!(
            view.put(
                Mapping::new(c.clone(), now)
                    .with_user("u1".into())
                    .with_crm(CrmRecordId::hubspot("1"))
            )
        );
        assert!(view.by_email(&a).is_none());
        assert_eq!(view.by_user(&"u1".into()).map(|m| &m.email), Some(&c));
        assert_eq!(view.len(), 2);
        // A row whose keys hit two different rows is refused.
        assert!(!view.put(Mapping::new(b.clone(), now).with_user("u1".into())));
        // Replace changes email and CRM record at once.
        assert!(
            view.replace(
                Some(&c),
                Mapping::new(a.clone(), now)
                    .with_user("u1".into())
                    .with_crm(CrmRecordId::hubspot("2"))
            )
        );
        assert!(view.by_crm_id(&CrmRecordId::hubspot("1")).is_none());
        assert_eq!(
            view.by_crm_id(&CrmRecordId::hubspot("2")).map(|m| &m.email),
            Some(&a)
        );
        // Serde round trip rebuilds the indexes.
        let json = serde_json::to_string(&view).unwrap();
        let back: StateView = serde_json::from_str(&json).unwrap();
        assert_eq!(back.by_user(&"u1".into()).map(|m| &m.email), Some(&a));
    }
}
