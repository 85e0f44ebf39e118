//! Resolving a batch of mapping upserts against the rows it touches, database-neutral.
//!
//! The stores load every existing row sharing a key (email, CRM record, user) with the batch,
//! replay the batch over them in memory with the exact rule of
//! [`sync_core::ports::MappingStore::put_mapping`], and then write the outcome in a few bulk
//! statements. Replaying in memory gives the in-memory store's semantics for any batch,
//! including rows that move keys between each other within one batch.

use std::collections::HashMap;

use serde_json::json;
use sync_core::{Error, Mapping, Provenance, TenantId};

use crate::rows::{KeyRow, to_json};
use crate::time::{opt_to_ns, to_ns};

/// A row's identity keys, as stored strings.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Keys {
    email: String,
    crm: Option<(String, String)>,
    user: Option<String>,
}

impl Keys {
    fn of(m: &Mapping) -> Self {
        Self {
            email: m.email.as_str().to_owned(),
            crm: m
                .crm_id
                .as_ref()
                .map(|c| (c.crm.as_str().to_owned(), c.id.clone())),
            user: m.cativa_user_id.as_ref().map(|u| u.as_str().to_owned()),
        }
    }

    fn of_row(r: &KeyRow) -> Self {
        Self {
            email: r.email.clone(),
            crm: r.crm_kind.clone().zip(r.crm_id.clone()),
            user: r.cativa_user_id.clone(),
        }
    }
}

#[derive(Debug)]
struct Slot {
    db_id: Option<i64>,
    original: Option<Keys>,
    keys: Keys,
    content: Option<usize>,
}

/// The keys a batch touches, as JSON arrays for the lookup query.
#[derive(Debug)]
pub(crate) struct Lookup {
    /// `["a@x.io", ...]`
    pub emails: String,
    /// `[["hubspot","1"], ...]`
    pub crm_ids: String,
    /// `["u1", ...]`
    pub users: String,
}

impl Lookup {
    pub(crate) fn of(mappings: &[Mapping]) -> Result<Self, Error> {
        let emails: Vec<&str> = mappings.iter().map(|m| m.email.as_str()).collect();
        let crm_ids: Vec<[&str; 2]> = mappings
            .iter()
            .filter_map(|m| m.crm_id.as_ref().map(|c| [c.crm.as_str(), c.id.as_str()]))
            .collect();
        let users: Vec<&str> = mappings
            .iter()
            .filter_map(|m| m.cativa_user_id.as_ref().map(|u| u.as_str()))
            .collect();
        Ok(Self {
            emails: to_json(&emails, "lookup emails")?,
            crm_ids: to_json(&crm_ids, "lookup crm ids")?,
            users: to_json(&users, "lookup users")?,
        })
    }
}

/// What to write for a batch.
#[derive(Debug, Default)]
pub(crate) struct UpsertPlan {
    /// Existing rows whose keys change: their keys are cleared first so that rows trading
    /// keys within the batch never collide on a unique index mid-way.
    pub park: Vec<i64>,
    /// Existing rows to overwrite: (row id, index of the mapping in the batch).
    pub updates: Vec<(i64, usize)>,
    /// New rows: index of the mapping in the batch.
    pub inserts: Vec<usize>,
}

impl UpsertPlan {
    /// Replays `mappings` over `existing` with the store's replacement rule.
    pub(crate) fn resolve(
        tenant: &TenantId,
        existing: &[KeyRow],
        mappings: &[Mapping],
    ) -> Result<Self, Error> {
        let mut replay = Replay::with_capacity(existing.len() + mappings.len());
        for row in existing {
            let keys = Keys::of_row(row);
            replay.push(Slot {
                db_id: Some(row.id),
                original: Some(keys.clone()),
                keys,
                content: None,
            });
        }
        for (i, m) in mappings.iter().enumerate() {
            let keys = Keys::of(m);
            let slot = match replay.target(&keys).ok_or_else(|| conflict(tenant, m))? {
                Some(t) => {
                    replay.unindex(t);
                    t
                }
                None => replay.push(Slot {
                    db_id: None,
                    original: None,
                    keys: keys.clone(),
                    content: None,
                }),
            };
            replay.slots[slot].keys = keys;
            replay.slots[slot].content = Some(i);
            replay.index(slot);
        }
        Ok(replay.into_plan())
    }
}

/// The rows of a batch being replayed, with the slot each key currently points at.
#[derive(Debug, Default)]
struct Replay {
    slots: Vec<Slot>,
    by_email: HashMap<String, usize>,
    by_crm: HashMap<(String, String), usize>,
    by_user: HashMap<String, usize>,
}

impl Replay {
    fn with_capacity(n: usize) -> Self {
        Self {
            slots: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    /// Adds a slot and indexes its keys; returns its position.
    fn push(&mut self, slot: Slot) -> usize {
        self.slots.push(slot);
        let at = self.slots.len() - 1;
        self.index(at);
        at
    }

    /// Points the slot's current keys at it.
    fn index(&mut self, slot: usize) {
        let keys = &self.slots[slot].keys;
        self.by_email.insert(keys.email.clone(), slot);
        if let Some(crm) = &keys.crm {
            self.by_crm.insert(crm.clone(), slot);
        }
        if let Some(user) = &keys.user {
            self.by_user.insert(user.clone(), slot);
        }
    }

    /// Forgets the slot's current keys (it is about to take new ones).
    fn unindex(&mut self, slot: usize) {
        let old = &self.slots[slot].keys;
        self.by_email.remove(&old.email);
        if let Some(c) = &old.crm {
            self.by_crm.remove(c);
        }
        if let Some(u) = &old.user {
            self.by_user.remove(u);
        }
    }

    /// The one slot `keys` hit (`Some(None)` when none), or `None` when they hit
    /// different slots.
    fn target(&self, keys: &Keys) -> Option<Option<usize>> {
        let hits = [
            self.by_email.get(&keys.email).copied(),
            keys.crm.as_ref().and_then(|c| self.by_crm.get(c).copied()),
            keys.user
                .as_ref()
                .and_then(|u| self.by_user.get(u).copied()),
        ];
        let mut target: Option<usize> = None;
        for hit in hits.into_iter().flatten() {
            match target {
                None => target = Some(hit),
                Some(t) if t != hit => return None,
                Some(_) => {}
            }
        }
        Some(target)
    }

    /// What to write: rows the batch touched, parked first when their keys changed.
    fn into_plan(self) -> UpsertPlan {
        let mut plan = UpsertPlan::default();
        for slot in self.slots {
            let Some(content) = slot.content else {
                continue;
            };
            match slot.db_id {
                Some(id) => {
                    if slot.original.as_ref() != Some(&slot.keys) {
                        plan.park.push(id);
                    }
                    plan.updates.push((id, content));
                }
                None => plan.inserts.push(content),
            }
        }
        plan
    }
}

fn conflict(tenant: &TenantId, m: &Mapping) -> Error {
    Error::UniqueViolation {
        tenant: tenant.clone(),
        detail: format!(
            "email {}, crm id {:?} and user {:?} belong to different mapping rows",
            m.email,
            m.crm_id.as_ref().map(ToString::to_string),
            m.cativa_user_id.as_ref().map(ToString::to_string)
        ),
    }
}

/// One mapping's columns as a JSON object (with its row id when it has one).
fn row_json(id: Option<i64>, m: &Mapping) -> Result<serde_json::Value, Error> {
    Ok(json!({
        "id": id,
        "email": m.email.as_str(),
        "user": m.cativa_user_id.as_ref().map(|u| u.as_str()),
        "crm_kind": m.crm_id.as_ref().map(|c| c.crm.as_str()),
        "crm_id": m.crm_id.as_ref().map(|c| c.id.as_str()),
        "profile": m.profile.as_ref().map(|p| to_json(p, "mapping profile")).transpose()?,
        "invited": opt_to_ns(m.invited_at, "mapping invited_at")?,
        "updated": to_ns(m.updated_at, "mapping updated_at")?,
        "generation": m.generation,
    }))
}

/// The rows to update, as a JSON array.
pub(crate) fn updates_payload(plan: &UpsertPlan, mappings: &[Mapping]) -> Result<String, Error> {
    let rows = plan
        .updates
        .iter()
        .map(|&(id, i)| row_json(Some(id), &mappings[i]))
        .collect::<Result<Vec<_>, _>>()?;
    to_json(&rows, "mapping updates")
}

/// The rows to insert, as a JSON array.
pub(crate) fn inserts_payload(plan: &UpsertPlan, mappings: &[Mapping]) -> Result<String, Error> {
    let rows = plan
        .inserts
        .iter()
        .map(|&i| row_json(None, &mappings[i]))
        .collect::<Result<Vec<_>, _>>()?;
    to_json(&rows, "mapping inserts")
}

/// The badge grants of written rows, as a JSON array: (row id, mapping).
pub(crate) fn grants_payload<'a>(
    rows: impl Iterator<Item = (i64, &'a Mapping)>,
) -> Result<String, Error> {
    let mut out = Vec::new();
    for (id, m) in rows {
        for (position, g) in m.badges.iter().enumerate() {
            let (kind, rule, source) = match &g.provenance {
                Provenance::Sync { rule } => ("sync", Some(rule.as_str()), None),
                Provenance::External { source } => ("external", None, Some(source.as_str())),
                other => {
                    return Err(Error::store(
                        "encode badge grant",
                        format!(
                            "provenance {other:?} is not supported by this version of sync-store"
                        ),
                        false,
                    ));
                }
            };
            out.push(json!({
                "m": id,
                "p": position,
                "b": g.badge.as_str(),
                "k": kind,
                "r": rule,
                "s": source,
                "g": to_ns(g.granted_at, "badge granted_at")?,
            }));
        }
    }
    to_json(&out, "badge grants")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use sync_core::{CativaUserId, CrmRecordId, Email};

    fn at() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_750_000_000, 0).unwrap()
    }

    fn m(email: &str) -> Mapping {
        Mapping::new(Email::parse(email).unwrap(), at())
    }

    fn row(id: i64, email: &str, crm: Option<&str>, user: Option<&str>) -> KeyRow {
        KeyRow {
            id,
            email: email.into(),
            cativa_user_id: user.map(Into::into),
            crm_kind: crm.map(|_| "hubspot".into()),
            crm_id: crm.map(Into::into),
        }
    }

    #[test]
    fn new_rows_are_inserted_and_same_keys_updated_without_parking() {
        let t = TenantId::new("t");
        let existing = [row(7, "a@x.io", Some("1"), None)];
        let batch = [m("a@x.io").with_crm(CrmRecordId::hubspot("1")), m("b@x.io")];
        let plan = UpsertPlan::resolve(&t, &existing, &batch).unwrap();
        assert_eq!(plan.updates, vec![(7, 0)]);
        assert_eq!(plan.inserts, vec![1]);
        assert!(plan.park.is_empty());
    }

    #[test]
    fn email_change_through_crm_id_parks_the_row() {
        let t = TenantId::new("t");
        let existing = [row(7, "a@x.io", Some("1"), None)];
        let batch = [m("new@x.io").with_crm(CrmRecordId::hubspot("1"))];
        let plan = UpsertPlan::resolve(&t, &existing, &batch).unwrap();
        assert_eq!(plan.park, vec![7]);
        assert_eq!(plan.updates, vec![(7, 0)]);
    }

    #[test]
    fn keys_of_different_rows_conflict() {
        let t = TenantId::new("t");
        let existing = [
            row(1, "a@x.io", None, None),
            row(2, "b@x.io", None, Some("u2")),
        ];
        let batch = [m("a@x.io").with_user(CativaUserId::new("u2"))];
        assert!(matches!(
            UpsertPlan::resolve(&t, &existing, &batch),
            Err(Error::UniqueViolation { .. })
        ));
    }

    #[test]
    fn later_puts_in_a_batch_see_earlier_ones() {
        let t = TenantId::new("t");
        let batch = [
            m("a@x.io").with_user(CativaUserId::new("u")),
            m("b@x.io").with_user(CativaUserId::new("u")),
        ];
        let plan = UpsertPlan::resolve(&t, &[], &batch).unwrap();
        assert_eq!(
            plan.inserts,
            vec![1],
            "the second put replaced the first row"
        );
    }
}
