//! The ports: async traits (object-safe, via `async-trait`) that connectors and stores
//! implement and the engine drives as `Arc<dyn Trait>`. Every method takes a [`TenantId`].
//!
//! [`TenantId`]: crate::TenantId

mod commit;
mod community;
mod companies;
mod connections;
mod credentials;
mod crm;
mod delivery;
mod from_action;
mod lists;
mod purge;
mod revoke;
mod status;
mod store;

pub use commit::{DeliveryCommit, DeliveryCommitter, DeliveryWrite};
pub use community::{BadgeChange, BadgeOp, BadgeSink, CommunitySink, FieldUpdate, Invite, Inviter};
pub use companies::CompanyLink;
pub use connections::{
    MemoryConnections, StaticConnections, TenantConnections, TenantParts, TenantRoutes,
};
pub use credentials::{CredentialStore, TenantCredentials, TokenRefresher};
pub use crm::{
    Activity, CUSTOMER_ID_FIELD, ConnectionFacts, ContactDraft, ContactPage, ContactRef, CrmSink,
    CrmSource, ItemResult, PageToken, PropertyUpdate, Provisioned, ProvisioningFields, freshest,
};
pub use delivery::{CommunityEvent, DeliveryOutcome};
pub use from_action::WrongAction;
pub use lists::{CommunityGroups, ListMembership};
pub use purge::{PURGE_ACTION, PurgeCounts, PurgeMode, TenantPurge};
pub use revoke::{Revoked, TokenRevoker};
pub use status::{
    CredentialsCheck, Dismissal, FailedFilter, FailedItem, LastRun, OperatorAction, Requeue,
    RunMode, RunOutcome, RunRecord, StatusStore, WebhookCounts, WebhookOutcome, hour_bucket,
};
pub use store::{
    AuditEntry, AuditLog, AuditOutcome, CheckpointStore, DeliveryLedger, LeaderLease, LeaseHolder,
    MappingStore, Outbox, OutboxBacklog, OutboxCounts, OutboxItem, OutboxStatus, Registration,
    Store,
};
