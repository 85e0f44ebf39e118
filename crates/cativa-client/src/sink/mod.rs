//! Implementations of sync-core's community ports: badge sinks (API and bulk-import CSV),
//! a profile-field sink, and a sign-up inviter.

mod api;
mod csv;
mod invite;
mod keyed_csv;

pub use api::{ApiBadgeSink, ApiCommunitySink, DEFAULT_CONCURRENCY};
pub use csv::{BADGE_CSV_HEADER, CsvBadgeSink};
pub use invite::{INVITE_CSV_HEADER, InviteOutput, SignupInvite, SignupInviter};
