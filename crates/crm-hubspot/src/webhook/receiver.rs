//! [`WebhookReceiver`]: verify, parse, dedupe and drop echoes in one call, then turn the
//! events into what the sync needs ([`ContactSignals`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeZone, Utc};
use http::request::Parts;
use sync_core::{CrmContact, CrmRecordId};

use super::batch::{ObjectEvents, dedupe, group_by_object};
use super::echo::EchoFilter;
use super::error::WebhookError;
use super::event::{EventKind, WebhookEvent, parse_batch};
use super::signature::{SignatureVerifier, SignatureVersion};

/// Default largest body accepted (HubSpot sends at most 100 events; 1 MiB is ample).
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// Verifies and parses HubSpot webhook deliveries.
///
/// ```
/// use crm_hubspot::webhook::{SignatureVerifier, WebhookReceiver, v3_signature};
/// use secrecy::SecretString;
///
/// let url = "https://hooks.example.com/webhooks/hubspot";
/// let receiver = WebhookReceiver::new(SignatureVerifier::new(SecretString::from("secret")).with_public_url(url));
/// let body = br#"[{"portalId":1,"occurredAt":1700000000000,"subscriptionType":"contact.creation","objectId":7}]"#;
/// let ts = "1700000000000";
/// let (parts, ()) = http::Request::post("/webhooks/hubspot")
///     .header("x-hubspot-signature-v3", v3_signature("secret", "POST", url, body, ts))
///     .header("x-hubspot-request-timestamp", ts)
///     .body(())?
///     .into_parts();
/// let now = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_001_000);
/// let delivery = receiver.receive(&parts, body, now)?;
/// let signals = delivery.contact_signals();
/// assert_eq!(signals.refetch, vec![sync_core::CrmRecordId::hubspot("7")]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct WebhookReceiver {
    verifier: SignatureVerifier,
    echo: Option<Arc<EchoFilter>>,
    max_body: usize,
}

/// A verified delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The signature scheme it was verified with.
    pub version: SignatureVersion,
    /// The events to act on: duplicates and echoes removed, in delivery order.
    pub events: Vec<WebhookEvent>,
    /// Echoes of the SDK's own writes (dropped from `events`).
    pub echoes: Vec<WebhookEvent>,
    /// How many duplicates were dropped.
    pub duplicates: usize,
}

/// What a batch of events means for the sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContactSignals {
    /// Contacts created, changed, restored or that won a merge: read them again
    /// (`CrmSource::get_by_ids`) and plan them.
    pub refetch: Vec<CrmRecordId>,
    /// Contacts deleted (archived), deleted for privacy, or merged away (`merged_into` the
    /// survivor): plan them as archived.
    pub tombstones: Vec<CrmContact>,
    /// Contacts deleted for privacy (GDPR): erase what you keep about them.
    pub privacy_deleted: Vec<CrmRecordId>,
    /// The newest `occurredAt`, for lag reporting.
    pub newest_at: Option<DateTime<Utc>>,
}

impl WebhookReceiver {
    /// A receiver with this verifier, no echo filter, and a 1 MiB body limit.
    pub fn new(verifier: SignatureVerifier) -> Self {
        Self {
            verifier,
            echo: None,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// Drops events that echo the SDK's own writes (share the filter with the sink).
    #[must_use]
    pub fn with_echo_filter(mut self, filter: Arc<EchoFilter>) -> Self {
        self.echo = Some(filter);
        self
    }

    /// The largest body accepted.
    #[must_use]
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Verifies the signature on the raw body (refusing oversized bodies before anything
    /// else), parses the events, removes duplicates and echoes. `parts` is the request
    /// without its body (method, URI with its query, headers); `at` is the time to check
    /// the v3 timestamp against (inject it in tests; [`receive_now`](Self::receive_now)
    /// uses the clock).
    ///
    /// # Errors
    /// See [`WebhookError`]; [`WebhookError::http_status`] gives the answer to send and
    /// [`WebhookError::code`] a stable code.
    pub fn receive(
        &self,
        parts: &Parts,
        body: &[u8],
        at: SystemTime,
    ) -> Result<Delivery, WebhookError> {
        if body.len() > self.max_body {
            return Err(WebhookError::PayloadTooLarge {
                size: body.len(),
                limit: self.max_body,
            });
        }
        let version = self.verifier.verify(
            parts.method.as_str(),
            parts.uri.query(),
            &parts.headers,
            body,
            unix_millis(at),
        )?;
        let parsed = parse_batch(body)?;
        let total = parsed.len();
        let unique = dedupe(parsed);
        let duplicates = total - unique.len();
        let (echoes, events) = match &self.echo {
            Some(f) => unique.into_iter().partition(|e| f.is_echo(e)),
            None => (Vec::new(), unique),
        };
        Ok(Delivery {
            version,
            events,
            echoes,
            duplicates,
        })
    }

    /// [`receive`](Self::receive) at the current time.
    ///
    /// # Errors
    /// See [`WebhookError`].
    pub fn receive_now(&self, parts: &Parts, body: &[u8]) -> Result<Delivery, WebhookError> {
        self.receive(parts, body, SystemTime::now())
    }
}

/// Epoch milliseconds of `at` (negative before 1970), saturating.
fn unix_millis(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

impl Delivery {
    /// The events grouped per object, oldest first, plus those without an object id.
    pub fn groups(&self) -> (Vec<ObjectEvents>, Vec<WebhookEvent>) {
        group_by_object(self.events.clone())
    }

    /// What the contact events mean: which contacts to read again, which are gone.
    pub fn contact_signals(&self) -> ContactSignals {
        contact_signals(&self.events)
    }
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// Reduces contact events to signals. Per contact the latest lifecycle event wins (a
/// creation after a deletion means restored); merges re-point the losers to the survivor.
pub fn contact_signals(events: &[WebhookEvent]) -> ContactSignals {
    let contacts: Vec<WebhookEvent> = events.iter().filter(|e| e.is_contact()).cloned().collect();
    let mut out = ContactSignals {
        newest_at: contacts.iter().map(|e| e.occurred_at).max().map(at),
        ..ContactSignals::default()
    };
    let (groups, _) = group_by_object(contacts);
    let mut refetch = BTreeSet::new();
    let mut merged_away = BTreeSet::new();
    for g in &groups {
        for e in &g.events {
            if let EventKind::Merge {
                primary_object_id,
                merged_object_ids,
                new_object_id,
                ..
            } = &e.kind
            {
                let Some(winner) = new_object_id.or(*primary_object_id).or(e.object_id) else {
                    continue;
                };
                refetch.insert(winner);
                for loser in merged_object_ids
                    .iter()
                    .chain(primary_object_id.iter())
                    .filter(|id| **id != winner)
                {
                    if merged_away.insert(*loser) {
                        out.tombstones.push(
                            CrmContact::new(
                                CrmRecordId::hubspot(loser.to_string()),
                                None,
                                at(e.occurred_at),
                            )
                            .merged_into(CrmRecordId::hubspot(winner.to_string())),
                        );
                    }
                }
            }
        }
    }
    for g in &groups {
        if merged_away.contains(&g.object_id) {
            // Its deletion is the merge's doing: the survivor keeps the badges.
            continue;
        }
        let latest = g.events.iter().rev().find(|e| {
            !matches!(
                e.kind,
                EventKind::Merge { .. } | EventKind::AssociationChange { .. } | EventKind::Other
            )
        });
        let privacy = g
            .events
            .iter()
            .any(|e| matches!(e.kind, EventKind::PrivacyDeletion));
        let id = CrmRecordId::hubspot(g.object_id.to_string());
        if privacy {
            out.privacy_deleted.push(id.clone());
        }
        match latest.map(|e| (&e.kind, e.occurred_at)) {
            Some((EventKind::Deletion | EventKind::PrivacyDeletion, t)) => {
                refetch.remove(&g.object_id);
                out.tombstones
                    .push(CrmContact::new(id, None, at(t)).archived());
            }
            Some(_) if !privacy => {
                refetch.insert(g.object_id);
            }
            _ => {}
        }
    }
    out.refetch = refetch
        .into_iter()
        .map(|id| CrmRecordId::hubspot(id.to_string()))
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::v3_signature;
    use secrecy::SecretString;

    const URL: &str = "https://hooks.example.com/hubspot";

    fn request(headers: &[(&str, String)]) -> Parts {
        let mut b = http::Request::post("/hubspot");
        for (name, value) in headers {
            b = b.header(*name, value);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn signed(body: &[u8], ts: &str) -> Parts {
        request(&[
            (
                "x-hubspot-signature-v3",
                v3_signature("s", "POST", URL, body, ts),
            ),
            ("x-hubspot-request-timestamp", ts.to_owned()),
        ])
    }

    fn ms(ms: u64) -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_millis(ms)
    }

    fn receiver() -> WebhookReceiver {
        WebhookReceiver::new(SignatureVerifier::new(SecretString::from("s")).with_public_url(URL))
    }

    #[test]
    fn verifies_dedupes_and_drops_echoes() {
        let body = br#"[
          {"eventId":1,"portalId":1,"occurredAt":1000,"subscriptionType":"contact.propertyChange","objectId":5,"propertyName":"cativa_badges","propertyValue":"vip","changeSource":"API"},
          {"eventId":1,"portalId":1,"occurredAt":1000,"subscriptionType":"contact.propertyChange","objectId":5,"propertyName":"cativa_badges","propertyValue":"vip","changeSource":"API"},
          {"eventId":2,"portalId":1,"occurredAt":1001,"subscriptionType":"contact.propertyChange","objectId":5,"propertyName":"plan","propertyValue":"annual","changeSource":"CRM"}
        ]"#;
        let echo = Arc::new(EchoFilter::new());
        echo.record_write(5, "cativa_badges", "vip", 900);
        let r = receiver().with_echo_filter(echo);
        let d = r.receive(&signed(body, "1000"), body, ms(2000)).unwrap();
        assert_eq!(d.duplicates, 1);
        assert_eq!(d.echoes.len(), 1);
        assert_eq!(d.events.len(), 1);
        assert_eq!(d.events[0].property_name(), Some("plan"));
    }

    #[test]
    fn refuses_oversized_bodies_before_verifying() {
        let r = receiver().with_max_body(10);
        let e = r.receive(&request(&[]), &[b' '; 11], ms(0)).unwrap_err();
        assert!(matches!(
            e,
            WebhookError::PayloadTooLarge {
                size: 11,
                limit: 10
            }
        ));
        let e = receiver()
            .receive(&signed(b"[]", "1000"), b"[1]", ms(1000))
            .unwrap_err();
        assert!(
            matches!(e, WebhookError::BadSignature),
            "tampered body refused before parsing"
        );
    }

    #[test]
    fn signals_follow_the_latest_event_and_merges() {
        let events = parse_batch(
            br#"[
          {"portalId":1,"occurredAt":30,"subscriptionType":"contact.creation","objectId":1},
          {"portalId":1,"occurredAt":20,"subscriptionType":"contact.deletion","objectId":1},
          {"portalId":1,"occurredAt":10,"subscriptionType":"contact.propertyChange","objectId":2,"propertyName":"a"},
          {"portalId":1,"occurredAt":40,"subscriptionType":"contact.deletion","objectId":2},
          {"portalId":1,"occurredAt":50,"subscriptionType":"contact.merge","objectId":3,"primaryObjectId":3,"mergedObjectIds":[4],"newObjectId":3},
          {"portalId":1,"occurredAt":51,"subscriptionType":"contact.deletion","objectId":4},
          {"portalId":1,"occurredAt":60,"subscriptionType":"contact.privacyDeletion","objectId":6},
          {"portalId":1,"occurredAt":61,"subscriptionType":"contact.deletion","objectId":6},
          {"portalId":1,"occurredAt":70,"subscriptionType":"company.creation","objectId":9}
        ]"#,
        )
        .unwrap();
        let s = contact_signals(&events);
        let ids = |v: &[CrmRecordId]| v.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(&s.refetch),
            vec!["1", "3"],
            "1 was re-created after its deletion"
        );
        let tomb: Vec<(String, Option<String>)> = s
            .tombstones
            .iter()
            .map(|c| {
                (
                    c.id.id.clone(),
                    c.merged_into.as_ref().map(|m| m.id.clone()),
                )
            })
            .collect();
        assert_eq!(
            tomb,
            vec![
                ("4".into(), Some("3".into())),
                ("2".into(), None),
                ("6".into(), None)
            ]
        );
        assert!(s.tombstones.iter().all(|c| c.archived));
        assert_eq!(ids(&s.privacy_deleted), vec!["6"]);
        assert_eq!(s.newest_at.unwrap().timestamp_millis(), 61);
    }

    #[test]
    fn times_before_the_epoch_are_negative_milliseconds() {
        assert_eq!(unix_millis(ms(1500)), 1500);
        assert_eq!(
            unix_millis(UNIX_EPOCH - std::time::Duration::from_millis(20)),
            -20
        );
    }
}
