//! The domain model: identities, contacts, users, mappings and cursors.

mod contact;
mod cursor;
mod email;
mod ids;
mod mapping;
mod user;

pub use contact::CrmContact;
pub use cursor::{Cursor, next_checkpoint};
pub use email::{Email, EmailError, MAX_EMAIL_LEN};
pub use ids::{BadgeId, CativaUserId, CrmKind, CrmRecordId, RuleId, TenantId};
pub use mapping::{BadgeGrant, Mapping, Provenance};
pub use user::{CommunityProfile, CommunityUser};
