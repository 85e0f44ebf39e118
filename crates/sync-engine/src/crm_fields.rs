//! What the engine writes to CRM properties on its own account (not through field
//! mappings): the contact provisioned for a new community user, and the mirror of the
//! badges a user holds. Property names come from the CRM sink's configuration
//! ([`sync_core::ports::CrmSink::provisioning_fields`]) and the engine options; a property
//! the configuration's field mappings leave to another owner is never written (the
//! ownership invariant of ARCHITECTURE.md).

use std::collections::BTreeMap;

use sync_core::config::ValidatedConfig;
use sync_core::plan::{Action, ActionKind, IdempotencyKey, Reason};
use sync_core::ports::ProvisioningFields;
use sync_core::{CommunityUser, Mapping, TenantId};

use crate::SyncEngine;

/// Whether the sync may write CRM property `property`: no field mapping names it, or the
/// mappings naming it let the sync write the CRM (CRM field names compare without case, as
/// Salesforce's do).
pub(crate) fn crm_writable(config: &ValidatedConfig, property: &str) -> bool {
    config
        .fields()
        .iter()
        .filter(|m| {
            m.crm
                .names()
                .iter()
                .any(|n| n.eq_ignore_ascii_case(property))
        })
        .all(sync_core::config::FieldMapping::writes_crm)
}

/// The action that creates the CRM contact of a new community user: the profile fields the
/// sink names, except those another owner holds.
pub(crate) fn provision_action(
    tenant: &TenantId,
    user: &CommunityUser,
    fields: &ProvisioningFields,
    config: &ValidatedConfig,
) -> Action {
    let mut properties = BTreeMap::new();
    for (community, crm) in &fields.profile {
        if let Some(v) = user.profile.field(community)
            && crm_writable(config, crm)
        {
            properties.insert(crm.clone(), v.to_owned());
        }
    }
    let key = IdempotencyKey::derive(&[tenant.as_str(), "provision", user.id.as_str()]);
    Action::new(
        key,
        ActionKind::ProvisionCrmContact {
            user: user.id.clone(),
            email: user.email.clone(),
            properties,
        },
        Reason::CommunityEvent {
            event: "user_created".to_owned(),
        },
    )
}

impl SyncEngine {
    /// The CRM property the Cativa user id is stamped on: the options' override, else the
    /// sink's own; `None` without a sink.
    pub(crate) fn user_id_property(&self) -> Option<String> {
        let sink = self.parts.crm_sink.as_ref()?;
        self.options
            .crm_user_id_property
            .clone()
            .or_else(|| sink.provisioning_fields().user_id)
            .filter(|p| crm_writable(&self.config, p))
    }

    /// The badge mirror property, when one is configured, a CRM sink writes it and no field
    /// mapping leaves it to another owner.
    fn badges_property(&self) -> Option<&str> {
        let prop = self.options.crm_badges_property.as_deref()?;
        self.parts.crm_sink.as_ref()?;
        if !crm_writable(&self.config, prop) {
            tracing::debug!(
                property = prop,
                "the badge mirror property is owned elsewhere; not written"
            );
            return None;
        }
        Some(prop)
    }

    /// The write that makes the badge mirror property of `row`'s contact hold exactly the
    /// badges the row holds (`;`-joined ids, sorted; empty clears it). `None` without a
    /// mirror property or a linked contact. The key carries the row's revision, so the same
    /// set written again after a change in between is a new write, not a repeat.
    pub(crate) fn badges_mirror(
        &self,
        tenant: &TenantId,
        row: &Mapping,
        event: &str,
    ) -> Option<Action> {
        let prop = self.badges_property()?;
        let crm_id = row.crm_id.as_ref()?;
        let mut badges: Vec<&str> = row.badges.iter().map(|g| g.badge.as_str()).collect();
        badges.sort_unstable();
        badges.dedup();
        let value = badges.join(";");
        let revision = row.updated_at.timestamp_micros().to_string();
        let key = IdempotencyKey::derive(&[
            tenant.as_str(),
            "badges_property",
            crm_id.to_string().as_str(),
            &value,
            &revision,
        ]);
        let mut properties = BTreeMap::new();
        properties.insert(prop.to_owned(), value);
        Some(Action::new(
            key,
            ActionKind::UpdateCrmProperties {
                crm_id: crm_id.clone(),
                email: row.email.clone(),
                properties,
            },
            Reason::CommunityEvent {
                event: event.to_owned(),
            },
        ))
    }
}
