//! Recognising the SDK's own writes when a delta reads them back.
//!
//! `Sforce-Call-Options: client=` only reaches Change Data Capture (`changeOrigin`), and
//! sObject Collections, which the sink writes through, do not honour it. What a polled
//! record does carry is `LastModifiedById`: the integration user for the sink's writes
//! (the token response's identity URL names that user). Other integrations may share the
//! user, and a person may have edited the record between the sync's read and its write, so
//! the user alone proves nothing. A record is an echo only when both hold:
//!
//! - its `LastModifiedById` is the integration user, and
//! - every field the source reads has the value the SDK's own write left: the values the
//!   source last delivered for it, with what the sink wrote on top (for a record the sink
//!   created, only what it wrote).
//!
//! Any other change, even one made before the SDK's write, leaves a difference, and the
//! record is delivered as usual.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::Value;

use crate::contact::{ContactSchema, Fields, TagSource, value_text};
use crate::models::Record;

/// Field values as compared: text, multi-select options sorted, blanks as `None`.
pub(crate) type Snapshot = BTreeMap<String, Option<String>>;

/// How many records the log remembers (oldest forgotten first).
const CAPACITY: usize = 100_000;

#[derive(Debug, Default)]
struct Bounded {
    map: HashMap<String, Snapshot>,
    order: VecDeque<String>,
}

impl Bounded {
    fn insert(&mut self, id: &str, snap: Snapshot) {
        if self.map.insert(id.to_owned(), snap).is_none() {
            self.order.push_back(id.to_owned());
        }
        while self.map.len() > CAPACITY {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }
}

/// What the source last delivered and what the sink's writes should have left, per record
/// id. Shared by every clone of a client.
#[derive(Debug, Default)]
pub(crate) struct EchoLog {
    state: Mutex<(Bounded, Bounded)>,
}

impl EchoLog {
    fn with<R>(&self, f: impl FnOnce(&mut Bounded, &mut Bounded) -> R) -> R {
        let mut g = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (seen, expected) = &mut *g;
        f(seen, expected)
    }

    /// The source delivered `id` with these values.
    pub(crate) fn seen(&self, id: &str, snap: Snapshot) {
        self.with(|seen, _| seen.insert(id, snap));
    }

    /// The sink wrote `written` to `id`; `created` when the write created the record.
    pub(crate) fn wrote(&self, schema: &ContactSchema, id: &str, written: &Record, created: bool) {
        self.with(|seen, expected| {
            let base = if created {
                Some(
                    schema
                        .echo_fields()
                        .map(|f| (f, None))
                        .collect::<Snapshot>(),
                )
            } else {
                // Without the state the write landed on, its result is unknown.
                seen.map.get(id).cloned()
            };
            if let Some(mut snap) = base {
                for (field, value) in written {
                    if let Some(slot) = snap.get_mut(field) {
                        *slot = normalize(schema, field, value);
                    }
                }
                expected.insert(id, snap);
            }
        });
    }

    /// Whether the record with these values is the echo of the SDK's own write.
    pub(crate) fn is_echo(&self, id: &str, snap: &Snapshot) -> bool {
        self.with(|_, expected| expected.map.get(id).is_some_and(|e| e == snap))
    }
}

/// A field's value as compared.
fn normalize(schema: &ContactSchema, field: &str, value: &Value) -> Option<String> {
    normalize_text(schema, field, value_text(value).map(Cow::Owned))
}

/// A field's text (see [`value_text`]) as compared.
fn normalize_text(
    schema: &ContactSchema,
    field: &str,
    text: Option<Cow<'_, str>>,
) -> Option<String> {
    let text = text.filter(|s| !s.trim().is_empty())?;
    let multi = schema
        .tags
        .iter()
        .any(|t| matches!(t, TagSource::MultiSelect { field: f } if f == field));
    if multi {
        let mut options: Vec<&str> = text
            .split(';')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .collect();
        options.sort_unstable();
        return (!options.is_empty()).then(|| options.join(";"));
    }
    Some(text.into_owned())
}

/// The compared values of a record as read.
pub(crate) fn snapshot<F: Fields + ?Sized>(schema: &ContactSchema, record: &F) -> Snapshot {
    schema
        .echo_fields()
        .map(|f| {
            let n = normalize_text(schema, &f, record.text(&f));
            (f, n)
        })
        .collect()
}

/// Whether two user ids name the same user (15- and 18-character forms).
pub(crate) fn same_user(a: &str, b: &str) -> bool {
    a.len() >= 15 && b.len() >= 15 && a.get(..15) == b.get(..15)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rec(v: Value) -> Record {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn schema() -> ContactSchema {
        ContactSchema::contact()
            .with_property("Title")
            .with_tags(TagSource::MultiSelect {
                field: "Tags__c".into(),
            })
    }

    #[test]
    fn only_the_state_the_write_left_is_an_echo() {
        let s = schema();
        let log = EchoLog::default();
        let read = rec(json!({"Id": "003A", "Email": "a@x.com", "Title": "Dev", "Tags__c": "b;a"}));
        log.seen("003A", snapshot(&s, &read));
        log.wrote(&s, "003A", &rec(json!({"Title": "CTO"})), false);
        let echo = rec(json!({"Id": "003A", "Email": "a@x.com", "Title": "CTO", "Tags__c": "a;b"}));
        assert!(log.is_echo("003A", &snapshot(&s, &echo)));
        // A tag changed by a person before or after the write: not an echo.
        let mixed = rec(json!({"Id": "003A", "Email": "a@x.com", "Title": "CTO", "Tags__c": "a"}));
        assert!(!log.is_echo("003A", &snapshot(&s, &mixed)));
        // A record the source never delivered: its prior state is unknown.
        log.wrote(&s, "003B", &rec(json!({"Title": "CTO"})), false);
        assert!(!log.is_echo("003B", &snapshot(&s, &echo)));
    }

    #[test]
    fn a_created_record_is_an_echo_when_it_holds_only_what_was_written() {
        let s = schema();
        let log = EchoLog::default();
        log.wrote(
            &s,
            "003C",
            &rec(json!({"Email": "c@x.com", "LastName": "C"})),
            true,
        );
        let read = rec(json!({"Id": "003C", "Email": "c@x.com", "Title": null, "Tags__c": ""}));
        assert!(log.is_echo("003C", &snapshot(&s, &read)));
        let tagged = rec(json!({"Id": "003C", "Email": "c@x.com", "Tags__c": "VIP"}));
        assert!(!log.is_echo("003C", &snapshot(&s, &tagged)));
    }

    #[test]
    fn user_ids_compare_in_both_lengths() {
        assert!(same_user("005SB0000000001AAA", "005SB0000000001"));
        assert!(!same_user("005SB0000000001AAA", "005SB0000000002AAA"));
        assert!(!same_user("", ""));
    }
}
