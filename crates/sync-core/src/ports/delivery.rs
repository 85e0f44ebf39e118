//! The engine's push inputs and outputs, in CRM-neutral terms: connector crates build a
//! [`CommunityEvent`] from a verified webhook, and the engine answers each delivery with a
//! [`DeliveryOutcome`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{BadgeId, CativaUserId, CommunityUser, Email};
use crate::report::RunReport;

/// A community event, in CRM-neutral terms. `cativa-client` turns its typed webhook events
/// into these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CommunityEvent {
    /// A user joined the community.
    UserCreated {
        /// The new user.
        user: CommunityUser,
    },
    /// A user received a badge (from anything: paywall, course, admin, or this sync).
    BadgeReceived {
        /// The user.
        user: CativaUserId,
        /// The user's email, when the payload has it.
        email: Option<Email>,
        /// The badge.
        badge: BadgeId,
        /// When.
        at: DateTime<Utc>,
    },
    /// A user received a badge, known only by the badges the user holds afterwards (what
    /// Cativa's `user_received_badge` payload documents: its nested `User` with `Badges`).
    /// Badges not yet recorded are recorded as granted elsewhere, and logged as received.
    BadgesHeld {
        /// The user.
        user: CativaUserId,
        /// The user's email, when the payload has it.
        email: Option<Email>,
        /// Every badge the user holds.
        badges: Vec<BadgeId>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A user joined a group.
    JoinedGroup {
        /// The user.
        user: CativaUserId,
        /// The user's email, when the payload has it.
        email: Option<Email>,
        /// The group (id or name), when the payload names it.
        group: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What became of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// New: processed.
    Accepted {
        /// The run report.
        report: Box<RunReport>,
    },
    /// Already processed (a retry or a duplicate): nothing done.
    Duplicate,
    /// Another copy of this delivery is being processed right now: nothing done here.
    /// Answer so that the sender retries (HTTP 409 with `Retry-After`): if that copy fails,
    /// the retry processes it; if it succeeds, the retry is a `Duplicate`.
    InProgress,
}
