//! Field planning: each mapping writes only the side its owner allows, and a blank source
//! never clears the other side.

use super::{Builder, Props, millis};
use crate::config::{FieldMapping, FieldRule, NullGuard};
use crate::domain::{CativaUserId, CrmContact, Mapping};
use crate::plan::{ActionKind, ConflictKind, Reason};
use crate::transform::{TransformContext, from_crm, to_crm};

fn blank(v: &str) -> bool {
    v.trim().is_empty()
}

/// Which way a mapping flows for one record, before null guards. Pure.
pub(crate) fn decide(
    field: &FieldMapping,
    crm_value: Option<&str>,
    community_value: Option<&str>,
    crm_newer: bool,
) -> (bool, bool, &'static str) {
    // (write community from CRM, write CRM from community, why)
    let (crm_has, com_has) = (crm_value.is_some(), community_value.is_some());
    match field.rule {
        FieldRule::Never => (false, false, "never synced"),
        FieldRule::FromCrm => (crm_has, false, "crm owns it"),
        FieldRule::ToCrm => (false, com_has, "community owns it"),
        FieldRule::PreferCrmUnlessBlank => {
            if crm_has {
                (true, false, "crm preferred")
            } else {
                (false, com_has, "crm blank, community fills it")
            }
        }
        FieldRule::PreferCommunityUnlessBlank => {
            if com_has {
                (false, true, "community preferred")
            } else {
                (crm_has, false, "community blank, crm fills it")
            }
        }
        FieldRule::Bidirectional => match (crm_has, com_has) {
            (true, true) if crm_newer => (true, false, "crm newer"),
            (true, true) => (false, true, "community newer"),
            (true, false) => (true, false, "community blank, crm fills it"),
            (false, true) => (false, true, "crm blank, community fills it"),
            (false, false) => (false, false, "both blank"),
        },
    }
}

/// The writes one contact's field mappings plan, per side, with why each was made.
#[derive(Default)]
struct Writes {
    crm: Props,
    community: Props,
    crm_why: Vec<(String, FieldRule, &'static str)>,
    community_why: Vec<(String, FieldRule, &'static str)>,
}

pub(super) fn plan_fields(
    b: &mut Builder<'_, '_>,
    c: &CrmContact,
    row: &Mapping,
    user: &CativaUserId,
) {
    let config = b.input.config;
    if config.fields().is_empty() {
        return;
    }
    let ctx = config.transform_context();
    let profile = row.profile.as_ref();
    let crm_newer = profile
        .and_then(|p| p.updated_at)
        .is_none_or(|p| c.updated_at > p);
    let mut writes = Writes::default();
    for field in config.fields() {
        if !field.writes_crm() && !field.writes_community() {
            continue;
        }
        let Ok(crm_value) = crm_value(b, c, row, field, ctx) else {
            continue;
        };
        let community = profile.and_then(|p| p.field(&field.community));
        let (write_community, write_crm, why) =
            decide(field, crm_value.as_deref(), community, crm_newer);
        if write_community
            && field.writes_community()
            && let Some(value) = &crm_value
        {
            writes.community_field(field, community, value, why);
        }
        if write_crm
            && field.writes_crm()
            && let Some(value) = community
        {
            crm_fields(b, c, row, field, value, why, &mut writes);
        }
    }
    push_writes(b, c, row, user, writes);
}

/// The CRM side's value of a mapping, joined and transformed for the community; `None` when
/// blank. `Err` when a transform rejects it (reported as a conflict).
fn crm_value(
    b: &mut Builder<'_, '_>,
    c: &CrmContact,
    row: &Mapping,
    field: &FieldMapping,
    ctx: &TransformContext,
) -> Result<Option<String>, ()> {
    let crm_raw: Vec<&str> = field
        .crm
        .names()
        .iter()
        .map(|n| c.properties.get(n).map_or("", String::as_str))
        .collect();
    if crm_raw.iter().all(|v| blank(v)) {
        return Ok(None);
    }
    match from_crm(&field.transforms, &crm_raw, ctx) {
        Ok(v) => Ok((!blank(&v)).then_some(v)),
        Err(e) => {
            b.conflict(
                ConflictKind::InvalidFieldValue,
                Some(row.email.clone()),
                vec![c.id.clone()],
                format!("{}: {e}", field.community),
            );
            Err(())
        }
    }
}

impl Writes {
    /// Writes the CRM's value to the community, unless unchanged or guarded.
    fn community_field(
        &mut self,
        field: &FieldMapping,
        community: Option<&str>,
        value: &str,
        why: &'static str,
    ) {
        let current = community.unwrap_or("");
        let allowed = field.null_guard != NullGuard::SetOnlyIfEmpty || blank(current);
        if allowed && current != value {
            self.community
                .insert(field.community.clone(), value.to_owned());
            self.community_why
                .push((field.community.clone(), field.rule, why));
        }
    }
}

/// Writes the community's value to the mapping's CRM properties (a name split writes two).
fn crm_fields(
    b: &mut Builder<'_, '_>,
    c: &CrmContact,
    row: &Mapping,
    field: &FieldMapping,
    value: &str,
    why: &'static str,
    writes: &mut Writes,
) {
    let ctx = b.input.config.transform_context();
    let out = match to_crm(&field.transforms, value, ctx) {
        Ok(out) => out,
        Err(e) => {
            b.conflict(
                ConflictKind::InvalidFieldValue,
                Some(row.email.clone()),
                vec![c.id.clone()],
                format!("{}: {e}", field.community),
            );
            return;
        }
    };
    for (name, new) in field.crm.names().iter().zip(out) {
        let current = c.properties.get(name).map_or("", String::as_str);
        // A blank part (the last name of a one-word name) never clears the CRM.
        if blank(&new) || current == new {
            continue;
        }
        if field.null_guard == NullGuard::SetOnlyIfEmpty && !blank(current) {
            continue;
        }
        writes.crm.insert(name.clone(), new);
        writes
            .crm_why
            .push((field.community.clone(), field.rule, why));
    }
}

/// One action per side with writes; the key covers both sides' change times and the values.
fn push_writes(
    b: &mut Builder<'_, '_>,
    c: &CrmContact,
    row: &Mapping,
    user: &CativaUserId,
    writes: Writes,
) {
    let crm_at = millis(c.updated_at);
    let profile_at = row
        .profile
        .as_ref()
        .and_then(|p| p.updated_at)
        .map(millis)
        .unwrap_or_default();
    if !writes.community.is_empty() {
        let mut parts = vec![
            "update_community".to_owned(),
            user.to_string(),
            crm_at.clone(),
            profile_at.clone(),
        ];
        parts.extend(writes.community.iter().map(|(k, v)| format!("{k}={v}")));
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        let kind = ActionKind::UpdateCommunityFields {
            user: user.clone(),
            email: row.email.clone(),
            fields: writes.community,
        };
        b.push(kind, reason(&writes.community_why), &refs);
    }
    if !writes.crm.is_empty() {
        let mut parts = vec![
            "update_crm".to_owned(),
            c.id.to_string(),
            crm_at,
            profile_at,
        ];
        parts.extend(writes.crm.iter().map(|(k, v)| format!("{k}={v}")));
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        let kind = ActionKind::UpdateCrmProperties {
            crm_id: c.id.clone(),
            email: row.email.clone(),
            properties: writes.crm,
        };
        b.push(kind, reason(&writes.crm_why), &refs);
    }
}

fn reason(why: &[(String, FieldRule, &'static str)]) -> Reason {
    let Some((field, rule, detail)) = why.first() else {
        return Reason::Field {
            field: String::new(),
            rule: FieldRule::Never,
            detail: String::new(),
        };
    };
    Reason::Field {
        field: if why.len() > 1 {
            format!("{field} (+{} more)", why.len() - 1)
        } else {
            field.clone()
        },
        rule: *rule,
        detail: (*detail).to_owned(),
    }
}
