//! Identity resolution: dedupe re-read records, pick canonical contacts among duplicates,
//! and match each contact to a mapping row (by CRM id, email, then alternate email).

use std::cmp::Ordering;
use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::config::DuplicatePolicy;
use crate::domain::{CrmContact, CrmRecordId, Email};

pub(crate) type FastMap<K, V> = HashMap<K, V, RandomState>;

pub(crate) fn fast_map<K, V>(capacity: usize) -> FastMap<K, V> {
    HashMap::with_capacity_and_hasher(capacity, RandomState::default())
}

/// Keeps one contact per record id: the newest (an archived copy wins a tie, since deletion
/// is the later event). Returns the map id -> index into `contacts`.
pub(crate) fn dedupe_by_id(contacts: &[CrmContact]) -> FastMap<&CrmRecordId, u32> {
    let mut latest: FastMap<&CrmRecordId, u32> = fast_map(contacts.len());
    for (i, c) in contacts.iter().enumerate() {
        let i = i as u32;
        latest
            .entry(&c.id)
            .and_modify(|cur| {
                if newer_copy(c, &contacts[*cur as usize]) {
                    *cur = i;
                }
            })
            .or_insert(i);
    }
    latest
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
/// the contacts in cache; iterating the map would visit them at random).
pub(crate) fn kept<'a>(
    contacts: &'a [CrmContact],
    unique: &'a FastMap<&CrmRecordId, u32>,
) -> impl Iterator<Item = u32> + 'a {
    let all_unique = unique.len() == contacts.len();
    (0..contacts.len() as u32)
        .filter(move |&i| all_unique || unique.get(&contacts[i as usize].id) == Some(&i))
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

/// For every email shared by live contacts, the canonical contact's index.
pub(crate) fn canonical_by_email<'c>(
    contacts: &'c [CrmContact],
    unique: &FastMap<&'c CrmRecordId, u32>,
    policy: &DuplicatePolicy,
) -> FastMap<&'c Email, u32> {
    let mut canon: FastMap<&Email, u32> = fast_map(unique.len());
    for i in kept(contacts, unique) {
        let c = &contacts[i as usize];
        if c.archived {
            continue;
        }
        let Some(email) = &c.email else { continue };
        canon
            .entry(email)
            .and_modify(|cur| {
                if canonical_order(policy, c, &contacts[*cur as usize]) == Ordering::Greater {
                    *cur = i;
                }
            })
            .or_insert(i);
    }
    canon
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
