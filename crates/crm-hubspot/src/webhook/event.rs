//! Typed HubSpot webhook events, parsed leniently: an event type this SDK does not know is
//! kept raw instead of failing the batch.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::WebhookError;

/// Most events HubSpot puts in one delivery.
pub const MAX_EVENTS_PER_DELIVERY: usize = 100;

/// The object type id of contacts (`0-1`).
pub const CONTACT_TYPE_ID: &str = "0-1";

/// What happened, by the verb of `subscriptionType` (`contact.propertyChange` ->
/// [`EventKind::PropertyChange`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The object was created.
    Creation,
    /// A property changed.
    PropertyChange {
        /// Internal property name.
        property_name: String,
        /// The new value (HubSpot sends it as a string; absent when cleared).
        property_value: Option<String>,
    },
    /// The object was deleted (archived).
    Deletion,
    /// Objects were merged.
    Merge {
        /// The record kept.
        primary_object_id: Option<u64>,
        /// The records merged into it.
        merged_object_ids: Vec<u64>,
        /// The id of the merged record (can differ from the primary).
        new_object_id: Option<u64>,
        /// Properties moved by the merge.
        number_of_properties_moved: Option<u64>,
    },
    /// A deleted object was restored.
    Restore,
    /// The object was deleted for privacy (GDPR): erase what you hold about it.
    PrivacyDeletion,
    /// An association was added or removed.
    AssociationChange {
        /// e.g. `CONTACT_TO_COMPANY`.
        association_type: Option<String>,
        /// Source record.
        from_object_id: Option<u64>,
        /// Target record.
        to_object_id: Option<u64>,
        /// Whether it was removed (false: added).
        association_removed: bool,
        /// Whether it is the primary association.
        is_primary_association: bool,
    },
    /// A subscription type this SDK does not model; see [`WebhookEvent::raw`].
    Other,
}

/// One event of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebhookEvent {
    /// HubSpot's event id (not guaranteed unique: use [`WebhookEvent::dedupe_key`]).
    pub event_id: Option<u64>,
    /// The subscription that fired.
    pub subscription_id: Option<u64>,
    /// The customer's HubSpot account.
    pub portal_id: u64,
    /// Your app.
    pub app_id: Option<u64>,
    /// When it happened, epoch milliseconds.
    pub occurred_at: i64,
    /// e.g. `contact.propertyChange` or `object.creation`.
    pub subscription_type: String,
    /// Delivery attempt (starts at 0).
    pub attempt_number: u32,
    /// The record, when the event concerns one.
    pub object_id: Option<u64>,
    /// The object type id (`0-1` for contacts), from the payload or the subscription prefix.
    pub object_type_id: Option<String>,
    /// Who made the change (`CRM`, `IMPORT`, `API`, `INTEGRATION`, ...).
    pub change_source: Option<String>,
    /// e.g. `NEW` on creation.
    pub change_flag: Option<String>,
    /// The parsed verb and its fields.
    pub kind: EventKind,
    /// The event as received, kept only for [`EventKind::Other`] so nothing is lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<Value>,
}

/// The delivery's dedupe key: HubSpot's `eventId` alone is not unique, this tuple is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventKey {
    /// Account.
    pub portal_id: u64,
    /// Subscription type.
    pub subscription_type: String,
    /// Record.
    pub object_id: Option<u64>,
    /// Epoch ms.
    pub occurred_at: i64,
    /// Property, for property changes.
    pub property_name: Option<String>,
}

impl WebhookEvent {
    /// The deduplication key `(portalId, subscriptionType, objectId, occurredAt, propertyName)`.
    pub fn dedupe_key(&self) -> EventKey {
        EventKey {
            portal_id: self.portal_id,
            subscription_type: self.subscription_type.clone(),
            object_id: self.object_id,
            occurred_at: self.occurred_at,
            property_name: self.property_name().map(str::to_owned),
        }
    }

    /// The key as one string (for a processed-delivery ledger).
    pub fn dedupe_string(&self) -> String {
        format!(
            "hubspot:{}:{}:{}:{}:{}",
            self.portal_id,
            self.subscription_type,
            self.object_id.map(|i| i.to_string()).unwrap_or_default(),
            self.occurred_at,
            self.property_name().unwrap_or_default()
        )
    }

    /// The changed property, for property changes.
    pub fn property_name(&self) -> Option<&str> {
        match &self.kind {
            EventKind::PropertyChange { property_name, .. } => Some(property_name),
            _ => None,
        }
    }

    /// Whether the event concerns a contact (`contact.*`, or `object.*` with type `0-1`).
    pub fn is_contact(&self) -> bool {
        self.object_type_id.as_deref() == Some(CONTACT_TYPE_ID)
    }
}

/// The payload fields, all optional: HubSpot adds fields over time and older docs named some
/// differently (`eventType`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    event_id: Option<u64>,
    subscription_id: Option<u64>,
    portal_id: Option<u64>,
    app_id: Option<u64>,
    occurred_at: Option<i64>,
    subscription_type: Option<String>,
    event_type: Option<String>,
    #[serde(default)]
    attempt_number: u32,
    object_id: Option<u64>,
    object_type_id: Option<String>,
    change_source: Option<String>,
    change_flag: Option<String>,
    property_name: Option<String>,
    property_value: Option<Value>,
    primary_object_id: Option<u64>,
    #[serde(default)]
    merged_object_ids: Vec<u64>,
    new_object_id: Option<u64>,
    number_of_properties_moved: Option<u64>,
    association_type: Option<String>,
    from_object_id: Option<u64>,
    to_object_id: Option<u64>,
    #[serde(default)]
    association_removed: bool,
    #[serde(default)]
    is_primary_association: bool,
}

/// Object type id by the legacy subscription prefix.
fn type_id_for_prefix(prefix: &str) -> Option<&'static str> {
    Some(match prefix {
        "contact" => "0-1",
        "company" => "0-2",
        "deal" => "0-3",
        "ticket" => "0-5",
        "line_item" => "0-8",
        "product" => "0-7",
        _ => return None,
    })
}

fn value_to_string(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// Parses one event. Fails only when the element is not an object or lacks `portalId`,
/// `occurredAt` or the subscription type, which every HubSpot event carries.
pub fn parse_event(value: Value, index: usize) -> Result<WebhookEvent, WebhookError> {
    if !value.is_object() {
        return Err(WebhookError::MalformedEvent {
            index,
            reason: "event is not a JSON object".into(),
        });
    }
    let raw = RawEvent::deserialize(&value).map_err(|e| WebhookError::MalformedEvent {
        index,
        reason: e.to_string(),
    })?;
    let missing = |field: &str| WebhookError::MalformedEvent {
        index,
        reason: format!("missing `{field}`"),
    };
    let subscription_type = raw
        .subscription_type
        .or(raw.event_type)
        .ok_or_else(|| missing("subscriptionType"))?;
    let portal_id = raw.portal_id.ok_or_else(|| missing("portalId"))?;
    let occurred_at = raw.occurred_at.ok_or_else(|| missing("occurredAt"))?;
    let (prefix, verb) = subscription_type
        .split_once('.')
        .unwrap_or((subscription_type.as_str(), ""));
    let object_type_id = raw
        .object_type_id
        .or_else(|| type_id_for_prefix(prefix).map(str::to_owned));
    let kind = match verb {
        "creation" => EventKind::Creation,
        "deletion" => EventKind::Deletion,
        "restore" => EventKind::Restore,
        "privacyDeletion" => EventKind::PrivacyDeletion,
        "propertyChange" => match raw.property_name {
            Some(property_name) => EventKind::PropertyChange {
                property_name,
                property_value: raw.property_value.and_then(value_to_string),
            },
            None => return Err(missing("propertyName")),
        },
        "merge" => EventKind::Merge {
            primary_object_id: raw.primary_object_id,
            merged_object_ids: raw.merged_object_ids,
            new_object_id: raw.new_object_id,
            number_of_properties_moved: raw.number_of_properties_moved,
        },
        "associationChange" => EventKind::AssociationChange {
            association_type: raw.association_type,
            from_object_id: raw.from_object_id,
            to_object_id: raw.to_object_id,
            association_removed: raw.association_removed,
            is_primary_association: raw.is_primary_association,
        },
        _ => EventKind::Other,
    };
    let keep_raw = matches!(kind, EventKind::Other);
    Ok(WebhookEvent {
        event_id: raw.event_id,
        subscription_id: raw.subscription_id,
        portal_id,
        app_id: raw.app_id,
        occurred_at,
        subscription_type,
        attempt_number: raw.attempt_number,
        object_id: raw.object_id,
        object_type_id,
        change_source: raw.change_source,
        change_flag: raw.change_flag,
        kind,
        raw: keep_raw.then_some(value),
    })
}

/// Parses a delivery body: a JSON array of at most [`MAX_EVENTS_PER_DELIVERY`] events.
///
/// ```
/// let body = br#"[{"eventId":1,"portalId":62515,"occurredAt":1564113600000,
///   "subscriptionType":"contact.creation","objectId":123,"changeSource":"CRM"}]"#;
/// let events = crm_hubspot::webhook::parse_batch(body)?;
/// assert_eq!(events[0].object_id, Some(123));
/// assert!(events[0].is_contact());
/// # Ok::<(), crm_hubspot::webhook::WebhookError>(())
/// ```
pub fn parse_batch(body: &[u8]) -> Result<Vec<WebhookEvent>, WebhookError> {
    let values: Vec<Value> =
        serde_json::from_slice(body).map_err(|e| WebhookError::MalformedBatch(e.to_string()))?;
    if values.len() > MAX_EVENTS_PER_DELIVERY {
        return Err(WebhookError::MalformedBatch(format!(
            "{} events in one delivery; HubSpot sends at most {MAX_EVENTS_PER_DELIVERY}",
            values.len()
        )));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| parse_event(v, i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_contact_verb() {
        let body = br#"[
          {"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321},
          {"eventId":100,"subscriptionId":2902227,"portalId":44237313,"appId":4210286,"occurredAt":1731612210994,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":123,"changeSource":"CRM","propertyName":"message","propertyValue":"sample-value"},
          {"portalId":1,"occurredAt":3,"subscriptionType":"contact.deletion","objectId":5},
          {"portalId":1,"occurredAt":4,"subscriptionType":"contact.merge","objectId":5,"primaryObjectId":5,"mergedObjectIds":[6,7],"newObjectId":5,"numberOfPropertiesMoved":3},
          {"portalId":1,"occurredAt":5,"subscriptionType":"contact.restore","objectId":5},
          {"portalId":1,"occurredAt":6,"subscriptionType":"contact.privacyDeletion","objectId":5},
          {"portalId":1,"occurredAt":7,"subscriptionType":"contact.associationChange","associationType":"CONTACT_TO_COMPANY","fromObjectId":5,"toObjectId":9,"associationRemoved":true,"isPrimaryAssociation":false},
          {"portalId":1,"occurredAt":8,"subscriptionType":"object.propertyChange","objectTypeId":"0-1","objectId":5,"propertyName":"lifecyclestage","propertyValue":"customer"},
          {"portalId":1,"occurredAt":9,"subscriptionType":"conversation.newMessage","objectId":77,"messageId":"m1"}
        ]"#;
        let ev = parse_batch(body).unwrap();
        assert_eq!(ev.len(), 9);
        assert_eq!(ev[0].kind, EventKind::Creation);
        assert_eq!(ev[0].change_flag.as_deref(), Some("NEW"));
        assert!(ev[0].is_contact() && ev[0].raw.is_none());
        assert_eq!(
            ev[1].kind,
            EventKind::PropertyChange {
                property_name: "message".into(),
                property_value: Some("sample-value".into())
            }
        );
        assert_eq!(ev[2].kind, EventKind::Deletion);
        assert!(
            matches!(&ev[3].kind, EventKind::Merge { merged_object_ids, primary_object_id: Some(5), .. } if merged_object_ids == &[6, 7])
        );
        assert_eq!(ev[4].kind, EventKind::Restore);
        assert_eq!(ev[5].kind, EventKind::PrivacyDeletion);
        assert!(matches!(
            &ev[6].kind,
            EventKind::AssociationChange {
                association_removed: true,
                to_object_id: Some(9),
                ..
            }
        ));
        assert!(ev[7].is_contact());
        assert_eq!(ev[7].property_name(), Some("lifecyclestage"));
        assert_eq!(ev[8].kind, EventKind::Other);
        assert_eq!(ev[8].raw.as_ref().unwrap()["messageId"], "m1");
        assert!(!ev[8].is_contact());
    }

    #[test]
    fn older_event_type_field_and_company_prefix() {
        let ev = parse_batch(
            br#"[{"portalId":1,"occurredAt":1,"eventType":"company.creation","objectId":2}]"#,
        )
        .unwrap();
        assert_eq!(ev[0].subscription_type, "company.creation");
        assert_eq!(ev[0].object_type_id.as_deref(), Some("0-2"));
    }

    #[test]
    fn malformed_bodies_are_typed() {
        assert!(matches!(
            parse_batch(b"{}"),
            Err(WebhookError::MalformedBatch(_))
        ));
        assert!(matches!(
            parse_batch(b"not json"),
            Err(WebhookError::MalformedBatch(_))
        ));
        assert!(matches!(
            parse_batch(b"[1]"),
            Err(WebhookError::MalformedEvent { index: 0, .. })
        ));
        let e = parse_batch(br#"[{"occurredAt":1,"subscriptionType":"contact.creation"}]"#)
            .unwrap_err();
        assert!(e.to_string().contains("portalId"), "{e}");
        let e = parse_batch(
            br#"[{"portalId":1,"occurredAt":1,"subscriptionType":"contact.propertyChange"}]"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("propertyName"), "{e}");
        let many = format!(
            "[{}]",
            vec![r#"{"portalId":1,"occurredAt":1,"subscriptionType":"contact.creation"}"#; 101]
                .join(",")
        );
        assert!(matches!(
            parse_batch(many.as_bytes()),
            Err(WebhookError::MalformedBatch(_))
        ));
        let hundred = format!(
            "[{}]",
            vec![r#"{"portalId":1,"occurredAt":1,"subscriptionType":"contact.creation"}"#; 100]
                .join(",")
        );
        assert_eq!(parse_batch(hundred.as_bytes()).unwrap().len(), 100);
    }

    #[test]
    fn non_string_property_value_is_stringified_and_null_is_none() {
        let ev = parse_batch(br#"[{"portalId":1,"occurredAt":1,"subscriptionType":"contact.propertyChange","objectId":1,"propertyName":"n","propertyValue":5},
            {"portalId":1,"occurredAt":1,"subscriptionType":"contact.propertyChange","objectId":1,"propertyName":"n","propertyValue":null}]"#).unwrap();
        assert!(
            matches!(&ev[0].kind, EventKind::PropertyChange { property_value: Some(v), .. } if v == "5")
        );
        assert!(matches!(
            &ev[1].kind,
            EventKind::PropertyChange {
                property_value: None,
                ..
            }
        ));
    }

    #[test]
    fn dedupe_key_includes_property_name() {
        let ev = parse_batch(br#"[{"portalId":1,"occurredAt":1,"subscriptionType":"contact.propertyChange","objectId":1,"propertyName":"a","propertyValue":"x"}]"#).unwrap();
        assert_eq!(
            ev[0].dedupe_string(),
            "hubspot:1:contact.propertyChange:1:1:a"
        );
        assert_eq!(ev[0].dedupe_key().property_name.as_deref(), Some("a"));
    }
}
