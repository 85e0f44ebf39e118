//! Deduplication and per-object grouping of webhook events.

use std::collections::{BTreeMap, HashSet};

use super::event::{EventKey, WebhookEvent};

/// Drops events whose [`EventKey`] was already seen in this batch (HubSpot delivers
/// duplicates). Keeps the first occurrence and the original order.
pub fn dedupe(events: Vec<WebhookEvent>) -> Vec<WebhookEvent> {
    let mut seen: HashSet<EventKey> = HashSet::with_capacity(events.len());
    events
        .into_iter()
        .filter(|e| seen.insert(e.dedupe_key()))
        .collect()
}

/// The events of one record, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectEvents {
    /// The account.
    pub portal_id: u64,
    /// The object type id (`0-1` for contacts), when known.
    pub object_type_id: Option<String>,
    /// The record.
    pub object_id: u64,
    /// Its events ordered by `occurredAt` (stable for equal times).
    pub events: Vec<WebhookEvent>,
}

/// Groups events by record and orders each group by `occurredAt`, since HubSpot does not
/// guarantee delivery order. Events without an `objectId` (some association changes) are
/// returned separately, in their original order. Groups come ordered by (portal, type, id).
pub fn group_by_object(events: Vec<WebhookEvent>) -> (Vec<ObjectEvents>, Vec<WebhookEvent>) {
    let mut groups: BTreeMap<(u64, Option<String>, u64), Vec<WebhookEvent>> = BTreeMap::new();
    let mut loose = Vec::new();
    for e in events {
        match e.object_id {
            Some(id) => groups
                .entry((e.portal_id, e.object_type_id.clone(), id))
                .or_default()
                .push(e),
            None => loose.push(e),
        }
    }
    let grouped = groups
        .into_iter()
        .map(|((portal_id, object_type_id, object_id), mut events)| {
            events.sort_by_key(|e| e.occurred_at);
            ObjectEvents {
                portal_id,
                object_type_id,
                object_id,
                events,
            }
        })
        .collect();
    (grouped, loose)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::parse_batch;

    #[test]
    fn duplicates_removed_by_key_not_event_id() {
        let ev = parse_batch(
            br#"[
            {"eventId":1,"portalId":1,"occurredAt":10,"subscriptionType":"contact.propertyChange","objectId":5,"propertyName":"a","propertyValue":"x"},
            {"eventId":1,"portalId":1,"occurredAt":10,"subscriptionType":"contact.propertyChange","objectId":5,"propertyName":"b","propertyValue":"x"},
            {"eventId":2,"portalId":1,"occurredAt":10,"subscriptionType":"contact.propertyChange","objectId":5,"propertyName":"a","propertyValue":"x","attemptNumber":1},
            {"eventId":3,"portalId":2,"occurredAt":10,"subscriptionType":"contact.propertyChange","objectId":5,"propertyName":"a","propertyValue":"x"}
        ]"#,
        )
        .unwrap();
        let d = dedupe(ev);
        assert_eq!(
            d.iter().map(|e| e.event_id.unwrap()).collect::<Vec<_>>(),
            vec![1, 1, 3]
        );
    }

    #[test]
    fn grouped_per_object_and_ordered_by_occurred_at() {
        let ev = parse_batch(
            br#"[
            {"eventId":1,"portalId":1,"occurredAt":30,"subscriptionType":"contact.deletion","objectId":5},
            {"eventId":2,"portalId":1,"occurredAt":10,"subscriptionType":"contact.creation","objectId":5},
            {"eventId":3,"portalId":1,"occurredAt":20,"subscriptionType":"contact.creation","objectId":4},
            {"eventId":4,"portalId":1,"occurredAt":20,"subscriptionType":"contact.propertyChange","objectId":5,"propertyName":"a"},
            {"eventId":5,"portalId":1,"occurredAt":5,"subscriptionType":"company.creation","objectId":5},
            {"eventId":6,"portalId":1,"occurredAt":1,"subscriptionType":"contact.associationChange","fromObjectId":5,"toObjectId":9}
        ]"#,
        )
        .unwrap();
        let (groups, loose) = group_by_object(ev);
        assert_eq!(loose.len(), 1);
        let summary: Vec<(Option<&str>, u64, Vec<u64>)> = groups
            .iter()
            .map(|g| {
                (
                    g.object_type_id.as_deref(),
                    g.object_id,
                    g.events.iter().map(|e| e.event_id.unwrap()).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (Some("0-1"), 4, vec![3]),
                (Some("0-1"), 5, vec![2, 4, 1]),
                (Some("0-2"), 5, vec![5])
            ]
        );
    }
}
