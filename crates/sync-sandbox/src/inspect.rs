//! The inspection API: request counts per endpoint, so tests assert on what a client
//! did ("upserting 1,000 contacts took exactly 10 batch calls"), not only on results.
//!
//! Every server exposes the same data over HTTP (`GET /__sandbox/requests`) and
//! through Rust methods on its handle; state endpoints are per server
//! (`GET /__sandbox/state`, and the ones listed on each handle).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::faults::Fault;
use crate::lock;

/// Counts for one endpoint, keyed `"<METHOD> <route template>"`, e.g.
/// `"POST /crm/v3/objects/contacts/batch/upsert"` or
/// `"GET /crm/v3/objects/contacts/{contactId}"`. Requests that matched no route are
/// keyed `"<METHOD> <path> (unmatched)"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Requests received (including refused and faulted ones).
    pub requests: u64,
    /// Responses by HTTP status (dropped connections are not in here).
    pub by_status: BTreeMap<u16, u64>,
    /// Requests refused by the rate limiter or the daily budget.
    pub rate_limited: u64,
    /// Faults injected, by kind (`"429"`, `"500"`, `"drop"`, `"reset"`, `"truncated"`,
    /// `"slow"`).
    pub faults: BTreeMap<String, u64>,
}

/// Per-endpoint request log of one server.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    endpoints: Mutex<BTreeMap<String, EndpointStats>>,
}

impl RequestLog {
    pub(crate) fn record(
        &self,
        key: &str,
        status: Option<u16>,
        rate_limited: bool,
        fault: Option<Fault>,
    ) {
        let mut map = lock(&self.endpoints);
        let stats = map.entry(key.to_owned()).or_default();
        stats.requests += 1;
        if let Some(s) = status {
            *stats.by_status.entry(s).or_insert(0) += 1;
        }
        if rate_limited {
            stats.rate_limited += 1;
        }
        if let Some(f) = fault {
            *stats.faults.entry(fault_name(f)).or_insert(0) += 1;
        }
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, EndpointStats> {
        lock(&self.endpoints).clone()
    }

    pub(crate) fn reset(&self) {
        lock(&self.endpoints).clear();
    }
}

fn fault_name(f: Fault) -> String {
    match f {
        Fault::TooManyRequests => "429".into(),
        Fault::Status(s) => s.to_string(),
        Fault::DropConnection => "drop".into(),
        Fault::ResetConnection => "reset".into(),
        Fault::TruncatedBody => "truncated".into(),
        Fault::Slow => "slow".into(),
    }
}

/// A read-only view of a server's request counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts(pub BTreeMap<String, EndpointStats>);

impl RequestCounts {
    /// Requests received for `"<METHOD> <route template>"` (0 when never called).
    pub fn count(&self, key: &str) -> u64 {
        self.0.get(key).map_or(0, |s| s.requests)
    }

    /// Requests whose key contains `needle` (e.g. `"batch/upsert"`), summed; handy when
    /// both the `/crm/v3/...` and the date-versioned paths are in use.
    pub fn count_matching(&self, needle: &str) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| k.contains(needle))
            .map(|(_, s)| s.requests)
            .sum()
    }

    /// Requests whose method is one that writes (POST, PUT, PATCH, DELETE), excluding
    /// token endpoints; for "a second run makes zero write calls" assertions.
    pub fn writes(&self) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| {
                let method = k.split(' ').next().unwrap_or("");
                matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
                    && !k.contains("token")
                    && !k.ends_with("/search")
                    && !k.contains("/batch/read")
            })
            .map(|(_, s)| s.requests)
            .sum()
    }

    /// All requests received.
    pub fn total(&self) -> u64 {
        self.0.values().map(|s| s.requests).sum()
    }

    /// Stats of one endpoint.
    pub fn get(&self, key: &str) -> Option<&EndpointStats> {
        self.0.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_matching_and_writes() {
        let log = RequestLog::default();
        log.record(
            "POST /crm/v3/objects/contacts/batch/upsert",
            Some(200),
            false,
            None,
        );
        log.record(
            "POST /crm/v3/objects/contacts/batch/upsert",
            Some(500),
            false,
            Some(Fault::Status(500)),
        );
        log.record(
            "POST /crm/objects/{version}/contacts/batch/upsert",
            Some(200),
            false,
            None,
        );
        log.record(
            "POST /crm/v3/objects/contacts/search",
            Some(429),
            true,
            None,
        );
        log.record(
            "POST /crm/v3/objects/contacts/batch/read",
            Some(200),
            false,
            None,
        );
        log.record("POST /oauth/v1/token", Some(200), false, None);
        log.record(
            "GET /crm/v3/objects/contacts",
            None,
            false,
            Some(Fault::DropConnection),
        );
        log.record(
            "PUT /crm/v3/lists/{listId}/memberships/add",
            Some(200),
            false,
            None,
        );
        let c = RequestCounts(log.snapshot());
        assert_eq!(c.count("POST /crm/v3/objects/contacts/batch/upsert"), 2);
        assert_eq!(c.count("GET /nowhere"), 0);
        assert_eq!(c.count_matching("batch/upsert"), 3);
        assert_eq!(
            c.writes(),
            4,
            "upserts and the list change; not search, reads or tokens"
        );
        assert_eq!(c.total(), 8);
        let up = c.get("POST /crm/v3/objects/contacts/batch/upsert").unwrap();
        assert_eq!(up.by_status.get(&500), Some(&1));
        assert_eq!(up.faults.get("500"), Some(&1));
        let dropped = c.get("GET /crm/v3/objects/contacts").unwrap();
        assert!(dropped.by_status.is_empty());
        assert_eq!(
            c.get("POST /crm/v3/objects/contacts/search")
                .unwrap()
                .rate_limited,
            1
        );
        log.reset();
        assert!(log.snapshot().is_empty());
    }
}
