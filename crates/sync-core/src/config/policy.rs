//! Policies for identity conflicts: duplicate emails and contacts without a community user.

use serde::{Deserialize, Serialize};

/// Which contact is canonical when the same email appears on several CRM contacts.
///
/// The others are reported as conflicts and planned nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum DuplicatePolicy {
    /// The most recently updated contact wins (ties: the smaller record id).
    #[default]
    MostRecentlyUpdated,
    /// The contact with the most advanced lifecycle stage wins, by the configured order from
    /// least to most advanced; stages not listed rank lowest. Ties: most recently updated,
    /// then the smaller record id. TOML:
    /// `duplicates = { most_advanced_lifecycle_stage = ["subscriber", "lead", "customer"] }`.
    MostAdvancedLifecycleStage(Vec<String>),
}

/// What to do with a CRM contact that qualifies for a badge but has no community user yet.
///
/// The SDK never force-creates community users: the public endpoint is not available to
/// partner keys, and a person should choose to join.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MissingUserPolicy {
    /// Plan an `Invite` (once per email); the badge is granted when `user_created` arrives.
    Invite,
    /// Skip the contact until the person signs up on their own.
    #[default]
    Skip,
}
