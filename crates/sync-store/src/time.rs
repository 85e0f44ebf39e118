//! Timestamps as stored: signed nanoseconds since the Unix epoch in a 64-bit integer column.
//!
//! Nanoseconds keep `DateTime<Utc>` values exact (a row read back equals the row written,
//! as with the in-memory store) and compare as plain integers in SQL on both databases. The
//! range is the years 1677 to 2262; a time outside it is refused with a typed error, except
//! lease deadlines, which saturate (a lease "until 2262" is a lease forever).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sync_core::Error;

/// Encodes a timestamp, refusing one outside the storable range.
pub(crate) fn to_ns(at: DateTime<Utc>, what: &str) -> Result<i64, Error> {
    at.timestamp_nanos_opt().ok_or_else(|| {
        Error::store(
            format!("encode {what}"),
            format!("timestamp {at} is outside the storable range (years 1677 to 2262): pass a realistic time"),
            false,
        )
    })
}

/// Encodes an optional timestamp.
pub(crate) fn opt_to_ns(at: Option<DateTime<Utc>>, what: &str) -> Result<Option<i64>, Error> {
    at.map(|at| to_ns(at, what)).transpose()
}

/// Decodes a stored timestamp (every `i64` is a valid instant).
pub(crate) fn from_ns(ns: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_nanos(ns)
}

/// Decodes an optional stored timestamp.
pub(crate) fn opt_from_ns(ns: Option<i64>) -> Option<DateTime<Utc>> {
    ns.map(from_ns)
}

/// `now + ttl` as a stored deadline, saturating at the end of the storable range.
pub(crate) fn deadline_ns(now: DateTime<Utc>, ttl: Duration) -> Result<i64, Error> {
    let start = to_ns(now, "now")?;
    let ttl_ns = i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX);
    Ok(start.saturating_add(ttl_ns))
}

/// A row count or limit as SQL wants it.
pub(crate) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_nanoseconds() {
        let at = DateTime::<Utc>::from_timestamp(1_750_000_000, 123_456_789).unwrap();
        assert_eq!(from_ns(to_ns(at, "t").unwrap()), at);
        assert_eq!(opt_from_ns(opt_to_ns(None, "t").unwrap()), None);
    }

    #[test]
    fn refuses_out_of_range_and_saturates_deadlines() {
        let far = DateTime::<Utc>::MAX_UTC;
        let err = to_ns(far, "updated_at").unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("updated_at"), "{err}");
        let now = DateTime::<Utc>::from_timestamp(1_750_000_000, 0).unwrap();
        assert_eq!(deadline_ns(now, Duration::MAX).unwrap(), i64::MAX);
        assert_eq!(
            deadline_ns(now, Duration::from_secs(1)).unwrap(),
            to_ns(now, "t").unwrap() + 1_000_000_000
        );
    }
}
