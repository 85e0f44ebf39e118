//! Community ports: badges ([`BadgeSink`]), invites ([`Inviter`]) and profile fields
//! ([`CommunitySink`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::ItemResult;
use crate::domain::{BadgeId, CativaUserId, CrmRecordId, Email, TenantId};
use crate::error::Error;
use crate::plan::IdempotencyKey;

/// Assign or remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadgeOp {
    /// Grant the badge.
    Assign,
    /// Take it away.
    Remove,
}

/// One badge change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BadgeChange {
    /// The user.
    pub user: CativaUserId,
    /// The user's email.
    pub email: Email,
    /// The badge.
    pub badge: BadgeId,
    /// Assign or remove.
    pub op: BadgeOp,
    /// The action's idempotency key: applying the same key twice must have one effect.
    pub key: IdempotencyKey,
}

impl BadgeChange {
    /// Builds a change.
    pub fn new(
        user: CativaUserId,
        email: Email,
        badge: BadgeId,
        op: BadgeOp,
        key: IdempotencyKey,
    ) -> Self {
        Self {
            user,
            email,
            badge,
            op,
            key,
        }
    }
}

/// Applies badge changes in the community.
#[async_trait]
pub trait BadgeSink: Send + Sync {
    /// The largest batch the sink takes at once.
    fn max_batch(&self) -> usize {
        100
    }

    /// Applies changes; one result per change, in order.
    async fn apply_badges(
        &self,
        tenant: &TenantId,
        changes: &[BadgeChange],
    ) -> Result<Vec<ItemResult<()>>, Error>;

    /// API calls made so far, by endpoint (cumulative, for run reports: the engine reports
    /// the difference over a run). The default reports nothing.
    fn api_calls(&self) -> std::collections::BTreeMap<String, u64> {
        std::collections::BTreeMap::new()
    }
}

/// An invite for a person who qualifies for badges but has no community user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Invite {
    /// Who to invite.
    pub email: Email,
    /// The CRM record.
    pub crm_id: CrmRecordId,
    /// Badges they will receive once they join.
    pub badges: Vec<BadgeId>,
    /// The action's idempotency key.
    pub key: IdempotencyKey,
}

impl Invite {
    /// Builds an invite.
    pub fn new(
        email: Email,
        crm_id: CrmRecordId,
        badges: Vec<BadgeId>,
        key: IdempotencyKey,
    ) -> Self {
        Self {
            email,
            crm_id,
            badges,
            key,
        }
    }
}

/// Sends invites (e.g. sets a CRM property a workflow turns into the invite email, or
/// writes the tenant's sign-up link to a file for a mailing).
#[async_trait]
pub trait Inviter: Send + Sync {
    /// Sends invites; one result per invite, in order.
    async fn invite(
        &self,
        tenant: &TenantId,
        invites: &[Invite],
    ) -> Result<Vec<ItemResult<()>>, Error>;
}

/// Profile field values to write on a community user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FieldUpdate {
    /// The user.
    pub user: CativaUserId,
    /// The user's email.
    pub email: Email,
    /// Field -> value.
    pub fields: BTreeMap<String, String>,
    /// The action's idempotency key.
    pub key: IdempotencyKey,
}

impl FieldUpdate {
    /// Builds an update.
    pub fn new(
        user: CativaUserId,
        email: Email,
        fields: BTreeMap<String, String>,
        key: IdempotencyKey,
    ) -> Self {
        Self {
            user,
            email,
            fields,
            key,
        }
    }
}

/// Writes community profile fields.
#[async_trait]
pub trait CommunitySink: Send + Sync {
    /// Writes fields; one result per update, in order.
    async fn update_fields(
        &self,
        tenant: &TenantId,
        updates: &[FieldUpdate],
    ) -> Result<Vec<ItemResult<()>>, Error>;
}
