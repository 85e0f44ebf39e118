//! Echo detection: a property change HubSpot reports back after this SDK wrote it.
//!
//! HubSpot tags changes made through the API with a `changeSource` such as `API` or
//! `INTEGRATION`; that alone does not prove the change was ours (another integration writes
//! through the API too), so the filter also remembers what the sink wrote and calls an event
//! an echo only when both agree.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

use super::event::{EventKind, WebhookEvent};

/// The `changeSource` values HubSpot uses for API writes.
pub const DEFAULT_ECHO_SOURCES: [&str; 3] = ["API", "INTEGRATION", "INTEGRATIONS_PLATFORM"];

#[derive(Debug, Clone)]
struct Written {
    value: String,
    at_ms: i64,
}

#[derive(Debug, Default)]
struct State {
    last: HashMap<(u64, String), Written>,
    order: VecDeque<(u64, String)>,
}

/// Remembers the values the SDK wrote, per (object, property), and recognises their echoes.
///
/// Shared across tasks (`&self` methods, internally locked); bounded in size and age.
///
/// ```
/// use crm_hubspot::webhook::{EchoFilter, parse_batch};
/// let filter = EchoFilter::new();
/// filter.record_write(123, "cativa_badges", "vip;speaker", 1_000);
/// let ev = parse_batch(br#"[{"portalId":1,"occurredAt":2000,"subscriptionType":"contact.propertyChange",
///     "objectId":123,"propertyName":"cativa_badges","propertyValue":"speaker;vip","changeSource":"API"}]"#)?;
/// assert!(filter.is_echo(&ev[0]));
/// # Ok::<(), crm_hubspot::webhook::WebhookError>(())
/// ```
#[derive(Debug)]
pub struct EchoFilter {
    state: Mutex<State>,
    sources: BTreeSet<String>,
    capacity: usize,
    max_age_ms: i64,
}

impl Default for EchoFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl EchoFilter {
    /// A filter remembering up to 100,000 writes for 24 hours (HubSpot retries deliveries for
    /// up to a day), matching the [`DEFAULT_ECHO_SOURCES`].
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            sources: DEFAULT_ECHO_SOURCES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            capacity: 100_000,
            max_age_ms: 24 * 3600 * 1000,
        }
    }

    /// Remembers at most `capacity` writes (oldest forgotten first).
    #[must_use]
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Forgets writes older than `max_age_ms` when judging an event.
    #[must_use]
    pub fn with_max_age_ms(mut self, max_age_ms: i64) -> Self {
        self.max_age_ms = max_age_ms;
        self
    }

    /// The `changeSource` values that may be echoes (replaces the defaults).
    #[must_use]
    pub fn with_sources<I: IntoIterator<Item = S>, S: Into<String>>(mut self, sources: I) -> Self {
        self.sources = sources.into_iter().map(Into::into).collect();
        self
    }

    /// Records that the SDK wrote `value` to `property` of `object_id` at `at_ms` (epoch ms).
    pub fn record_write(&self, object_id: u64, property: &str, value: &str, at_ms: i64) {
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (object_id, property.to_owned());
        let fresh = st
            .last
            .insert(
                key.clone(),
                Written {
                    value: value.to_owned(),
                    at_ms,
                },
            )
            .is_none();
        if fresh {
            st.order.push_back(key);
        }
        while st.last.len() > self.capacity {
            match st.order.pop_front() {
                Some(old) => {
                    st.last.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Records every property of a write.
    pub fn record_properties<'a>(
        &self,
        object_id: u64,
        properties: impl IntoIterator<Item = (&'a String, &'a String)>,
        at_ms: i64,
    ) {
        for (k, v) in properties {
            self.record_write(object_id, k, v, at_ms);
        }
    }

    /// Whether `event` is the echo of a write this SDK made: a property change from an
    /// API-like `changeSource`, at or after the write, carrying the value written (a
    /// multi-checkbox value compares as a set of `;`-separated options).
    pub fn is_echo(&self, event: &WebhookEvent) -> bool {
        let EventKind::PropertyChange {
            property_name,
            property_value,
        } = &event.kind
        else {
            return false;
        };
        let (Some(object_id), Some(source)) = (event.object_id, event.change_source.as_deref())
        else {
            return false;
        };
        if !self.sources.contains(source) {
            return false;
        }
        let st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(w) = st.last.get(&(object_id, property_name.clone())) else {
            return false;
        };
        if event.occurred_at < w.at_ms.saturating_sub(60_000)
            || event.occurred_at - w.at_ms > self.max_age_ms
        {
            return false;
        }
        same_value(&w.value, property_value.as_deref().unwrap_or(""))
    }
}

fn same_value(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if !a.contains(';') && !b.contains(';') {
        return false;
    }
    let set = |s: &str| {
        s.split(';')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect::<BTreeSet<_>>()
    };
    set(a) == set(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::parse_batch;

    fn change(obj: u64, prop: &str, value: &str, source: &str, at: i64) -> WebhookEvent {
        let body = format!(
            r#"[{{"portalId":1,"occurredAt":{at},"subscriptionType":"contact.propertyChange","objectId":{obj},"propertyName":"{prop}","propertyValue":"{value}","changeSource":"{source}"}}]"#
        );
        parse_batch(body.as_bytes()).unwrap().remove(0)
    }

    #[test]
    fn echo_needs_api_source_and_same_value() {
        let f = EchoFilter::new();
        f.record_write(1, "plan", "annual", 1000);
        assert!(f.is_echo(&change(1, "plan", "annual", "API", 2000)));
        assert!(
            !f.is_echo(&change(1, "plan", "annual", "CRM", 2000)),
            "a user in the CRM set the same value"
        );
        assert!(
            !f.is_echo(&change(1, "plan", "monthly", "API", 2000)),
            "another integration changed it"
        );
        assert!(!f.is_echo(&change(2, "plan", "annual", "API", 2000)));
        assert!(!f.is_echo(&change(1, "other", "annual", "API", 2000)));
    }

    #[test]
    fn latest_write_wins_and_old_writes_expire() {
        let f = EchoFilter::new().with_max_age_ms(10_000);
        f.record_write(1, "plan", "a", 1000);
        f.record_write(1, "plan", "b", 2000);
        assert!(!f.is_echo(&change(1, "plan", "a", "API", 3000)));
        assert!(f.is_echo(&change(1, "plan", "b", "API", 3000)));
        assert!(!f.is_echo(&change(1, "plan", "b", "API", 50_000)));
    }

    #[test]
    fn capacity_is_bounded() {
        let f = EchoFilter::new().with_capacity(2);
        f.record_write(1, "p", "v", 0);
        f.record_write(2, "p", "v", 0);
        f.record_write(3, "p", "v", 0);
        assert!(!f.is_echo(&change(1, "p", "v", "API", 1)));
        assert!(f.is_echo(&change(3, "p", "v", "API", 1)));
    }

    #[test]
    fn checkbox_values_compare_as_sets_and_sources_configurable() {
        let f = EchoFilter::new().with_sources(["CUSTOM"]);
        f.record_write(1, "cativa_badges", "a;b", 0);
        assert!(f.is_echo(&change(1, "cativa_badges", "b;a", "CUSTOM", 1)));
        assert!(!f.is_echo(&change(1, "cativa_badges", "b;a", "API", 1)));
        assert!(!f.is_echo(&change(1, "cativa_badges", "a", "CUSTOM", 1)));
    }
}
