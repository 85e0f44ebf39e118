//! Delta cursors and the rule that computes the next checkpoint without missing changes.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// A position in a CRM's modification order: records modified at or after `modified_at`
/// (ties broken by record id) have not all been processed yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cursor {
    /// Modification time of the position.
    pub modified_at: DateTime<Utc>,
    /// The last record id processed at exactly `modified_at`, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_id: Option<String>,
}

impl Cursor {
    /// A cursor at `modified_at` with no tie-break id.
    pub fn at(modified_at: DateTime<Utc>) -> Self {
        Self {
            modified_at,
            last_id: None,
        }
    }

    /// The very beginning: a first delta run reads everything.
    pub fn beginning() -> Self {
        Self::at(DateTime::<Utc>::UNIX_EPOCH)
    }
}

/// The checkpoint to store after a delta run (the README's "Security and reliability" rule):
/// `min(run start, newest modification seen) - overlap`.
///
/// Taking the minimum with the run start protects against records the CRM stamps in the past
/// (clock skew, slow indexing); the overlap re-reads a margin on purpose. Re-read records are
/// deduplicated by id and planning them again is a no-op, so overlap costs reads, never effects.
/// The result never moves before `previous`.
pub fn next_checkpoint(
    previous: &Cursor,
    run_started_at: DateTime<Utc>,
    newest_seen: Option<DateTime<Utc>>,
    overlap: Duration,
) -> Cursor {
    let Some(newest) = newest_seen else {
        return previous.clone();
    };
    let candidate = newest.min(run_started_at) - overlap;
    if candidate <= previous.modified_at {
        previous.clone()
    } else {
        Cursor::at(candidate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().unwrap()
    }

    #[test]
    fn takes_min_of_run_start_and_newest_minus_overlap() {
        let prev = Cursor::at(t(100));
        let next = next_checkpoint(&prev, t(1000), Some(t(900)), Duration::seconds(60));
        assert_eq!(next, Cursor::at(t(840)));
        let skewed = next_checkpoint(&prev, t(1000), Some(t(5000)), Duration::seconds(60));
        assert_eq!(skewed, Cursor::at(t(940)));
    }

    #[test]
    fn never_moves_backwards_or_without_data() {
        let prev = Cursor::at(t(1000));
        assert_eq!(
            next_checkpoint(&prev, t(2000), None, Duration::zero()),
            prev
        );
        assert_eq!(
            next_checkpoint(&prev, t(2000), Some(t(1010)), Duration::seconds(60)),
            prev
        );
    }
}
