//! What a sync service needs, in one import: `use cativa_crm_sync::prelude::*;`.
//!
//! Only names that are unambiguous across the SDK are here; configuration types of one
//! connector (`hubspot::SinkConfig`, ...) stay under their module.

pub use secrecy::{ExposeSecret, SecretString};

pub use sync_core::ports::{BadgeSink, CommunitySink, CrmSink, CrmSource, Inviter, Store};
pub use sync_core::{
    Action, ActionKind, CommunityEvent, DeliveryOutcome, Email, Plan, PlanMode, SyncConfig,
    TenantId, ValidatedConfig,
};
pub use sync_engine::{EngineOptions, RunReport, StopSignal, SyncEngine};

pub use cativa_client::CativaClient;
pub use cativa_client::sink::{ApiBadgeSink, ApiCommunitySink, SignupInviter};

#[cfg(feature = "hubspot")]
pub use crm_hubspot::{HubSpotClient, HubSpotSink, HubSpotSource};
#[cfg(feature = "salesforce")]
pub use crm_salesforce::{SalesforceClient, SalesforceSink, SalesforceSource};
#[cfg(feature = "service")]
pub use sync_service::{Service, ServiceOptions, shutdown_signal};
#[cfg(feature = "postgres")]
pub use sync_store::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sync_store::SqliteStore;
