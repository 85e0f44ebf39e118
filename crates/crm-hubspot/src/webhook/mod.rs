//! HubSpot webhooks: signature verification ([`SignatureVerifier`]), batch parsing
//! ([`parse_batch`]), deduplication and per-object grouping ([`dedupe`],
//! [`group_by_object`]) and echo detection ([`EchoFilter`]).
//!
//! A receiver verifies first (on the raw body, before parsing), answers 2xx quickly, then
//! parses, dedupes, drops echoes and hands each object's events, oldest first, to the engine:
//! [`HubSpotSource::contacts_for`](crate::HubSpotSource::contacts_for) reads the contacts a
//! delivery names and [`Delivery::ledger_ids`] gives its ledger ids, the two inputs of
//! `sync_engine::SyncEngine::handle_crm_contacts`.

mod batch;
mod echo;
mod error;
mod event;
mod receiver;
mod signature;
mod to_engine;

pub use batch::{ObjectEvents, dedupe, group_by_object};
pub use echo::{DEFAULT_ECHO_SOURCES, EchoFilter};
pub use error::WebhookError;
pub use event::{
    CONTACT_TYPE_ID, EventKey, EventKind, MAX_EVENTS_PER_DELIVERY, WebhookEvent, parse_batch,
    parse_event,
};
pub use receiver::{ContactSignals, DEFAULT_MAX_BODY, Delivery, WebhookReceiver, contact_signals};
pub use signature::{
    DEFAULT_TOLERANCE, SIGNATURE_HEADER, SIGNATURE_V3_HEADER, SIGNATURE_VERSION_HEADER,
    SignatureVerifier, SignatureVersion, TIMESTAMP_HEADER, decode_uri_for_v3, v1_signature,
    v2_signature, v3_signature,
};
