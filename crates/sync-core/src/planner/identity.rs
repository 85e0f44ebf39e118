//! Identity resolution: dedupe re-read records, pick canonical contacts among duplicates,
//! and match each contact to a mapping row (by CRM id, email, then alternate email).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use foldhash::fast::RandomState;

use super::StateView;
use crate::config::DuplicatePolicy;
use crate::domain::{CrmContact, CrmRecordId, Email};

pub(crate) type FastMap<K, V> = HashMap<K, V, RandomState>;

pub(crate) fn fast_map<K, V>(capacity: usize) -> FastMap<K, V> {
    HashMap::with_capacity_and_hasher(capacity, RandomState::default())
}

/// No contact owns the row.
const NONE: u32 = u32::MAX;

/// Contacts by record id: one copy per id, the newest (an archived copy wins a tie, since
/// deletion is the later event).
///
/// Most contacts of a batch are already linked rows with an unchanged email: the *fast*
/// ones. They cannot be duplicates of anything (one row per email, one row per record), so
/// they are indexed by the view's own row table (`owner`), and only the others go through a
/// hash table of their own. The tables hold 4-byte indices, so a million-contact batch stays
/// cache-friendly.
pub(crate) struct ById<'c, 'v> {
    contacts: &'c [CrmContact],
    view: &'v StateView,
    /// Per view row: the fast contact that owns it, or `NONE`.
    owner: Vec<u32>,
    /// Per contact: its row when it takes the fast path, or `NONE`.
    fast: Vec<u32>,
    fast_count: usize,
    hasher: RandomState,
    table: HashTable<u32>,
}

impl ById<'_, '_> {
    /// The kept copy of a record.
    pub(crate) fn get(&self, id: &CrmRecordId) -> Option<&u32> {
        if let Some(r) = self.view.index_of_crm(id) {
            let o = &self.owner[r];
            if *o != NONE {
                return Some(o);
            }
        }
        self.table.find(self.hasher.hash_one(id), |&j| {
            self.contacts[j as usize].id == *id
        })
    }

    /// Number of distinct records.
    pub(crate) fn len(&self) -> usize {
        self.fast_count + self.table.len()
    }

    /// Whether the contact takes the fast path.
    pub(crate) fn is_fast(&self, i: u32) -> bool {
        self.fast[i as usize] != NONE
    }

    /// Whether a live contact is linked by CRM id to a row that is not its email's row: its
    /// email changed, or it matches its row through its alternate email. Its identity is that
    /// row, so it never competes in the duplicate ranking of its (new) email: the policy
    /// ranks only contacts competing for the same row.
    pub(crate) fn linked_elsewhere(&self, c: &CrmContact) -> bool {
        let (false, Some(email)) = (c.archived, &c.email) else {
            return false;
        };
        self.view
            .index_of_crm(&c.id)
            .is_some_and(|r| self.view.row(r).email != *email)
    }

    /// The row of a fast-path contact.
    pub(crate) fn fast_row(&self, i: u32) -> Option<usize> {
        let r = self.fast[i as usize];
        (r != NONE).then_some(r as usize)
    }
}

/// Keeps one contact per record id (see [`ById`]).
pub(crate) fn dedupe_by_id<'c, 'v>(
    contacts: &'c [CrmContact],
    view: &'v StateView,
) -> ById<'c, 'v> {
    const CONTESTED: u32 = u32::MAX - 1;
    let mut owner = vec![NONE; view.len()];
    let mut fast = vec![NONE; contacts.len()];
    for (i, c) in contacts.iter().enumerate() {
        let (false, Some(email)) = (c.archived, &c.email) else {
            continue;
        };
        let Some(r) = view.index_of_crm(&c.id) else {
            continue;
        };
        if view.row(r).email != *email {
            continue;
        }
        match owner[r] {
            NONE => {
                owner[r] = i as u32;
                fast[i] = r as u32;
            }
            CONTESTED => {}
            j => {
                // The same record twice (a re-read): both go the slow way.
                fast[j as usize] = NONE;
                owner[r] = CONTESTED;
            }
        }
    }
    for o in &mut owner {
        if *o == CONTESTED {
            *o = NONE;
        }
    }
    // A slow contact sharing a fast one's record id or email makes it slow too: then the
    // duplicate rules (newest copy, duplicates policy) decide between them.
    for (i, c) in contacts.iter().enumerate() {
        if fast[i] != NONE {
            continue;
        }
        let by_id = view.index_of_crm(&c.id);
        let by_email = if c.archived {
            None
        } else {
            c.email.as_ref().and_then(|e| view.index_of_email(e))
        };
        for r in [by_id, by_email].into_iter().flatten() {
            let j = owner[r];
            if j != NONE && j as usize != i {
                fast[j as usize] = NONE;
                owner[r] = NONE;
            }
        }
    }
    let fast_count = fast.iter().filter(|&&r| r != NONE).count();
    let hasher = RandomState::default();
    let mut table: HashTable<u32> = HashTable::with_capacity(contacts.len() - fast_count);
    for (i, c) in contacts.iter().enumerate() {
        if fast[i] != NONE {
            continue;
        }
        let i = i as u32;
        let h = hasher.hash_one(&c.id);
        match table.entry(
            h,
            |&j| contacts[j as usize].id == c.id,
            |&j| hasher.hash_one(&contacts[j as usize].id),
        ) {
            Entry::Occupied(mut e) => {
                if newer_copy(c, &contacts[*e.get() as usize]) {
                    *e.get_mut() = i;
                }
            }
            Entry::Vacant(v) => {
                v.insert(i);
            }
        }
    }
    ById {
        contacts,
        view,
        owner,
        fast,
        fast_count,
        hasher,
        table,
    }
}

/// Whether `a` should replace `b`, two copies of one record: the newer wins; the rest of the
/// comparison only makes the choice independent of input order.
fn newer_copy(a: &CrmContact, b: &CrmContact) -> bool {
    let key = |c: &'_ CrmContact| {
        (
            c.updated_at,
            c.archived,
            c.email.clone(),
            c.alternate_email.clone(),
            c.lifecycle_stage.clone(),
            c.merged_into.clone(),
        )
    };
    match key(a).cmp(&key(b)) {
        Ordering::Equal => (&a.tags, &a.properties) > (&b.tags, &b.properties),
        other => other == Ordering::Greater,
    }
}

/// Indices of the copies kept by [`dedupe_by_id`], in input order (sequential access keeps
/// the contacts in cache; iterating the table would visit them at random).
pub(crate) fn kept<'a>(
    contacts: &'a [CrmContact],
    unique: &'a ById<'_, '_>,
) -> impl Iterator<Item = u32> + 'a {
    let all_unique = unique.len() == contacts.len();
    (0..contacts.len() as u32)
        // A fast contact is the only copy of its record: kept without a lookup.
        .filter(move |&i| {
            all_unique || unique.is_fast(i) || unique.get(&contacts[i as usize].id) == Some(&i)
        })
}

/// Total order of "more canonical" under the policy: greater wins.
pub(crate) fn canonical_order(
    policy: &DuplicatePolicy,
    a: &CrmContact,
    b: &CrmContact,
) -> Ordering {
    let rank = |c: &CrmContact| -> i64 {
        match policy {
            DuplicatePolicy::MostAdvancedLifecycleStage(order) => c
                .lifecycle_stage
                .as_deref()
                .and_then(|s| order.iter().position(|o| o.trim() == s.trim()))
                .map_or(-1, |p| p as i64),
            DuplicatePolicy::MostRecentlyUpdated => 0,
        }
    };
    rank(a)
        .cmp(&rank(b))
        .then(a.updated_at.cmp(&b.updated_at))
        // The smaller record id wins a full tie: reverse the comparison.
        .then_with(|| b.id.cmp(&a.id))
}

/// The canonical live contact of every email.
pub(crate) struct ByEmail<'c> {
    contacts: &'c [CrmContact],
    hasher: RandomState,
    table: HashTable<u32>,
}

impl ByEmail<'_> {
    /// The canonical contact with this email.
    pub(crate) fn get(&self, email: &Email) -> Option<&u32> {
        self.table.find(self.hasher.hash_one(email), |&j| {
            self.contacts[j as usize].email.as_ref() == Some(email)
        })
    }

    /// Every canonical contact.
    pub(crate) fn values(&self) -> impl Iterator<Item = &u32> {
        self.table.iter()
    }
}

/// For every email shared by live contacts, the canonical contact's index.
pub(crate) fn canonical_by_email<'c>(
    contacts: &'c [CrmContact],
    unique: &ById<'_, '_>,
    policy: &DuplicatePolicy,
) -> ByEmail<'c> {
    let hasher = RandomState::default();
    let mut table: HashTable<u32> = HashTable::with_capacity(unique.len());
    let email_hash = |j: u32| {
        contacts[j as usize]
            .email
            .as_ref()
            .map_or(0, |e| hasher.hash_one(e))
    };
    for i in kept(contacts, unique) {
        let c = &contacts[i as usize];
        // The fast flag first: it spares reading the (mostly fast) contacts themselves.
        if unique.is_fast(i) || c.archived || unique.linked_elsewhere(c) {
            continue;
        }
        let Some(email) = &c.email else { continue };
        match table.entry(
            hasher.hash_one(email),
            |&j| contacts[j as usize].email.as_ref() == Some(email),
            |&j| email_hash(j),
        ) {
            Entry::Occupied(mut e) => {
                if canonical_order(policy, c, &contacts[*e.get() as usize]) == Ordering::Greater {
                    *e.get_mut() = i;
                }
            }
            Entry::Vacant(v) => {
                v.insert(i);
            }
        }
    }
    ByEmail {
        contacts,
        hasher,
        table,
    }
}

/// How a live contact was matched to a mapping row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum MatchedBy {
    CrmId,
    Merge,
    Email,
    AlternateEmail,
}

impl MatchedBy {
    pub(crate) fn label(self) -> &'static str {
        match self {
            MatchedBy::CrmId => "crm_id",
            MatchedBy::Merge => "merge",
            MatchedBy::Email => "email",
            MatchedBy::AlternateEmail => "alternate_email",
        }
    }
}
