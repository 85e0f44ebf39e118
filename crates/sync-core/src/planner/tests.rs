//! Planner tests: one per row of the conflict table, edge cases, and property tests.

// `SyncConfig` is non-exhaustive for users; tests build it the way users must.
#![allow(clippy::field_reassign_with_default)]

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::config::{
    BadgeRule, Condition, DuplicatePolicy, FieldMapping, FieldOwner, FieldRule, NullGuard,
    SyncConfig,
};
use crate::domain::{BadgeGrant, BadgeId, CommunityProfile, Mapping, Provenance};
#[cfg(feature = "phone")]
use crate::transform::Transform;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).single().unwrap()
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn hs(id: &str) -> CrmRecordId {
    CrmRecordId::hubspot(id)
}

fn base_config() -> SyncConfig {
    let mut c = SyncConfig::default();
    c.badge_rules = vec![
        BadgeRule::new("annual", "Premium", Condition::Tag("Pago Anual".into())),
        BadgeRule::new(
            "customers",
            "Customer",
            Condition::LifecycleStageIn(vec!["customer".into()]),
        ),
    ];
    c
}

fn cfg() -> ValidatedConfig {
    base_config().validate().unwrap()
}

fn contact(id: &str, mail: &str, at: i64) -> CrmContact {
    CrmContact::new(hs(id), Some(email(mail)), t(at))
}

fn row(mail: &str, user: &str, crm: Option<&str>) -> Mapping {
    let mut m = Mapping::new(email(mail), t(0)).with_user(user.into());
    m.crm_id = crm.map(hs);
    m
}

fn sync_grant(badge: &str, rule: &str) -> BadgeGrant {
    BadgeGrant::new(badge, Provenance::sync(rule), t(1))
}

fn external_grant(badge: &str) -> BadgeGrant {
    BadgeGrant::new(badge, Provenance::external("paywall"), t(1))
}

fn run(
    config: &ValidatedConfig,
    view: &StateView,
    contacts: &[CrmContact],
    mode: PlanMode,
) -> Plan {
    let tenant = TenantId::new("acme");
    plan(
        &PlanInput::new(&tenant, config, view, t(10_000)),
        contacts,
        mode,
    )
}

fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.actions.iter().map(|a| a.kind.name()).collect()
}

// --- Conflict table, row 1 -------------------------------------------------------------

#[test]
fn crm_email_changed_cativa_unchanged() {
    let view = StateView::new(vec![
        row("old@example.com", "u1", Some("1")).with_badge(sync_grant("Premium", "annual")),
    ]);
    let c = contact("1", "New@Example.com", 100).with_tag("Pago Anual");
    let plan = run(&cfg(), &view, &[c], PlanMode::Delta);
    assert_eq!(kinds(&plan), ["link_mapping"]);
    match &plan.actions[0].kind {
        ActionKind::LinkMapping {
            email: e,
            user,
            previous_email,
            crm_id,
            ..
        } => {
            assert_eq!(e.as_str(), "new@example.com");
            assert_eq!(
                user.as_ref().map(|u| u.as_str()),
                Some("u1"),
                "the cached Cativa user id is kept"
            );
            assert_eq!(
                previous_email.as_ref().map(Email::as_str),
                Some("old@example.com")
            );
            assert_eq!(crm_id, &hs("1"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        plan.actions[0].reason,
        Reason::EmailChanged { .. }
    ));
    let mut after = view.clone();
    assert_eq!(apply_to_view(&plan, &mut after, t(10_000)), 0);
    assert_eq!(
        after
            .by_email(&email("new@example.com"))
            .and_then(|m| m.cativa_user_id.clone()),
        Some("u1".into())
    );
    assert!(after.by_email(&email("old@example.com")).is_none());
}

#[test]
fn crm_email_changed_to_an_email_mapped_elsewhere_is_a_conflict() {
    let view = StateView::new(vec![
        row("old@example.com", "u1", Some("1")),
        row("taken@example.com", "u2", None),
    ]);
    let plan = run(
        &cfg(),
        &view,
        &[contact("1", "taken@example.com", 100)],
        PlanMode::Delta,
    );
    assert!(plan.actions.is_empty());
    assert_eq!(
        plan.conflicts[0].kind,
        ConflictKind::EmailLinkedToOtherRecord
    );
}

// --- Row 2 --------------------------------------------------------------------------------

#[test]
fn crm_contact_has_no_community_user_invites_per_policy() {
    let mut raw = base_config();
    raw.missing_user = MissingUserPolicy::Invite;
    let config = raw.validate().unwrap();
    let qualifying = contact("1", "lead@example.com", 100).with_tag("Pago Anual");
    let not_qualifying = contact("2", "other@example.com", 100);
    let mut view = StateView::default();
    let plan = run(
        &config,
        &view,
        &[qualifying.clone(), not_qualifying.clone()],
        PlanMode::Delta,
    );
    assert_eq!(kinds(&plan), ["invite"]);
    assert_eq!(plan.counts.skipped_no_user, 1);
    match &plan.actions[0].kind {
        ActionKind::Invite {
            email: e,
            badges,
            crm_id,
        } => {
            assert_eq!(e.as_str(), "lead@example.com");
            assert_eq!(badges, &vec![BadgeId::from("Premium")]);
            assert_eq!(crm_id, &hs("1"));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Invited once: planning again after the invite was applied plans nothing.
    apply_to_view(&plan, &mut view, t(10_000));
    let again = run(
        &config,
        &view,
        &[qualifying, not_qualifying],
        PlanMode::Delta,
    );
    assert!(again.actions.is_empty(), "{again}");
}

#[test]
fn crm_contact_has_no_community_user_skips_per_policy() {
    let view = StateView::default();
    let plan = run(
        &cfg(),
        &view,
        &[contact("1", "lead@example.com", 100).with_tag("Pago Anual")],
        PlanMode::Delta,
    );
    assert!(plan.actions.is_empty());
    assert_eq!(plan.counts.skipped_no_user, 1);
}

#[test]
fn community_user_joins_after_invite_then_gets_the_badge() {
    // user_created filled the row's user id after the invite: the next run grants the badge.
    let mut invited = Mapping::new(email("lead@example.com"), t(0)).with_crm(hs("1"));
    invited.invited_at = Some(t(5));
    invited.cativa_user_id = Some("u9".into());
    let view = StateView::new(vec![invited]);
    let plan = run(
        &cfg(),
        &view,
        &[contact("1", "lead@example.com", 100).with_tag("Pago Anual")],
        PlanMode::Delta,
    );
    assert_eq!(kinds(&plan), ["assign_badge"]);
}

// --- Row 3 --------------------------------------------------------------------------------

#[test]
fn same_email_on_two_crm_contacts_most_recently_updated_wins() {
    let view = StateView::new(vec![row("dup@example.com", "u1", None)]);
    let older = contact("1", "dup@example.com", 100).with_tag("Pago Anual");
    let newer = contact("2", "DUP@example.com", 200);
    let plan = run(&cfg(), &view, &[older, newer], PlanMode::Delta);
    assert_eq!(
        kinds(&plan),
        ["link_mapping"],
        "the canonical contact (newer, no tag) is linked, nothing granted"
    );
    assert!(
        matches!(&plan.actions[0].kind, ActionKind::LinkMapping { crm_id, .. } if *crm_id == hs("2"))
    );
    assert_eq!(plan.conflicts.len(), 1);
    assert_eq!(plan.conflicts[0].kind, ConflictKind::DuplicateEmail);
    assert_eq!(
        plan.conflicts[0].crm_ids,
        vec![hs("2"), hs("1")],
        "canonical first"
    );
    assert_eq!(plan.counts.skipped_duplicate, 1);
}

#[test]
fn same_email_on_two_crm_contacts_most_advanced_lifecycle_stage_wins() {
    let mut raw = base_config();
    raw.duplicates = DuplicatePolicy::MostAdvancedLifecycleStage(vec![
        "subscriber".into(),
        "lead".into(),
        "customer".into(),
    ]);
    let config = raw.validate().unwrap();
    let view = StateView::new(vec![row("dup@example.com", "u1", None)]);
    let customer = contact("1", "dup@example.com", 100).with_lifecycle_stage("customer");
    let lead = contact("2", "dup@example.com", 200).with_lifecycle_stage("lead");
    let plan = run(&config, &view, &[lead, customer], PlanMode::Delta);
    assert!(
        matches!(&plan.actions[0].kind, ActionKind::LinkMapping { crm_id, .. } if *crm_id == hs("1"))
    );
    assert_eq!(kinds(&plan), ["link_mapping", "assign_badge"]);
    assert_eq!(plan.conflicts[0].crm_ids, vec![hs("1"), hs("2")]);
}

#[test]
fn duplicate_loser_hands_its_row_to_the_canonical_contact() {
    let view = StateView::new(vec![row("dup@example.com", "u1", Some("1"))]);
    let plan = run(
        &cfg(),
        &view,
        &[
            contact("1", "dup@example.com", 100),
            contact("2", "dup@example.com", 200),
        ],
        PlanMode::Delta,
    );
    assert!(matches!(
        &plan.actions[0].kind,
        ActionKind::LinkMapping { crm_id, previous_crm_id: Some(prev), .. } if *crm_id == hs("2") && *prev == hs("1")
    ));
}

// --- Row 4 --------------------------------------------------------------------------------

#[test]
fn tag_removed_churn_or_contact_deleted_removes_a_sync_granted_badge() {
    let view = StateView::new(vec![
        row("jane@example.com", "u1", Some("1")).with_badge(sync_grant("Premium", "annual")),
    ]);
    // Tag removed (churn).
    let plan = run(
        &cfg(),
        &view,
        &[contact("1", "jane@example.com", 100)],
        PlanMode::Delta,
    );
    assert_eq!(kinds(&plan), ["remove_badge"]);
    assert!(matches!(
        plan.actions[0].reason,
        Reason::RuleNoLongerHolds { .. }
    ));
    // Contact deleted (archived), even with the tag still on it.
    let archived = contact("1", "jane@example.com", 100)
        .with_tag("Pago Anual")
        .archived();
    let plan = run(&cfg(), &view, &[archived], PlanMode::Delta);
    assert_eq!(kinds(&plan), ["remove_badge"]);
    assert_eq!(plan.actions[0].reason, Reason::ContactArchived);
    // Contact vanished: removed only by a complete full scan.
    let complete = run(
        &cfg(),
        &view,
        &[],
        PlanMode::FullReconcile {
            scan_complete: true,
        },
    );
    assert_eq!(kinds(&complete), ["remove_badge"]);
    assert_eq!(complete.actions[0].reason, Reason::ContactVanished);
    let partial = run(
        &cfg(),
        &view,
        &[],
        PlanMode::FullReconcile {
            scan_complete: false,
        },
    );
    assert!(
        partial.actions.is_empty(),
        "a partial scan removes nothing by absence"
    );
    let delta = run(&cfg(), &view, &[], PlanMode::Delta);
    assert!(
        delta.actions.is_empty(),
        "a delta removes only on explicit signals"
    );
}

#[test]
fn tag_still_present_keeps_the_badge_and_is_a_no_op() {
    let view = StateView::new(vec![
        row("jane@example.com", "u1", Some("1")).with_badge(sync_grant("Premium", "annual")),
    ]);
    let plan = run(
        &cfg(),
        &view,
        &[contact("1", "jane@example.com", 100).with_tag("Pago Anual")],
        PlanMode::Delta,
    );
    assert!(plan.is_empty(), "{plan}");
}

// --- Row 5 --------------------------------------------------------------------------------

#[test]
fn badge_granted_by_another_source_is_never_removed() {
    let view = StateView::new(vec![
        row("jane@example.com", "u1", Some("1")).with_badge(external_grant("Premium")),
    ]);
    for (contacts, mode) in [
        (vec![contact("1", "jane@example.com", 100)], PlanMode::Delta),
        (
            vec![contact("1", "jane@example.com", 100).archived()],
            PlanMode::Delta,
        ),
        (
            vec![],
            PlanMode::FullReconcile {
                scan_complete: true,
            },
        ),
    ] {
        let plan = run(&cfg(), &view, &contacts, mode);
        assert!(!kinds(&plan).contains(&"remove_badge"), "{plan}");
    }
    // And an externally granted badge is not granted again either.
    let plan = run(
        &cfg(),
        &view,
        &[contact("1", "jane@example.com", 100).with_tag("Pago Anual")],
        PlanMode::Delta,
    );
    assert!(plan.is_empty());
}

#[test]
fn sync_grant_of_a_badge_no_longer_managed_is_kept() {
    let view = StateView::new(vec![
        row("jane@example.com", "u1", Some("1")).with_badge(sync_grant("Legacy", "old-rule")),
    ]);
    let plan = run(
        &cfg(),
        &view,
        &[contact("1", "jane@example.com", 100).archived()],
        PlanMode::Delta,
    );
    assert!(
        plan.is_empty(),
        "only managed badges are ever removed: {plan}"
    );
}

// --- Row 6 --------------------------------------------------------------------------------

#[test]
fn different_emails_on_the_two_sides_match_by_alternate_email() {
    let view = StateView::new(vec![row("jane@corp.example", "u1", None)]);
    let c = contact("7", "jane.personal@example.com", 100)
        .with_alternate_email(email("Jane@Corp.example"))
        .with_tag("Pago Anual");
    let plan = run(&cfg(), &view, std::slice::from_ref(&c), PlanMode::Delta);
    assert_eq!(kinds(&plan), ["link_mapping", "assign_badge"]);
    assert_eq!(
        plan.actions[0].reason,
        Reason::FirstMatch {
            by: "alternate_email".into()
        }
    );
    let mut after = view.clone();
    apply_to_view(&plan, &mut after, t(10_000));
    // Linked by CRM id now; the row keeps the community email, no email-change churn.
    assert!(run(&cfg(), &after, &[c], PlanMode::Delta).is_empty());
}

// --- Row 7 --------------------------------------------------------------------------------

fn field_config(field: FieldMapping) -> ValidatedConfig {
    let mut raw = base_config();
    raw.fields = vec![field];
    raw.validate().unwrap()
}

fn profiled(value: Option<&str>, at: i64) -> StateView {
    let mut p = CommunityProfile::new().updated(t(at));
    if let Some(v) = value {
        p = p.with_field("company", v);
    }
    StateView::new(vec![
        row("jane@example.com", "u1", Some("1")).with_profile(p),
    ])
}

fn with_company(value: Option<&str>, at: i64) -> CrmContact {
    let c = contact("1", "jane@example.com", at);
    match value {
        Some(v) => c.with_property("company", v),
        None => c,
    }
}

#[test]
fn field_changed_on_both_sides_owner_wins() {
    let crm_owned = field_config(FieldMapping::new(
        "company",
        "company",
        FieldRule::FromCrm,
        FieldOwner::Crm,
    ));
    // Community edited it later, but the CRM owns the field.
    let plan = run(
        &crm_owned,
        &profiled(Some("Community Co"), 500),
        &[with_company(Some("Crm Co"), 100)],
        PlanMode::Delta,
    );
    assert_eq!(kinds(&plan), ["update_community_fields"]);
    assert!(
        matches!(&plan.actions[0].kind, ActionKind::UpdateCommunityFields { fields, .. } if fields["company"] == "Crm Co")
    );

    let community_owned = field_config(FieldMapping::new(
        "company",
        "company",
        FieldRule::ToCrm,
        FieldOwner::Community,
    ));
    let plan = run(
        &community_owned,
        &profiled(Some("Community Co"), 100),
        &[with_company(Some("Crm Co"), 500)],
        PlanMode::Delta,
    );
    assert_eq!(kinds(&plan), ["update_crm_properties"]);
    assert!(
        matches!(&plan.actions[0].kind, ActionKind::UpdateCrmProperties { properties, .. } if properties["company"] == "Community Co")
    );
}

#[test]
fn field_changed_on_both_sides_newest_wins() {
    let config = field_config(FieldMapping::new(
        "company",
        "company",
        FieldRule::Bidirectional,
        FieldOwner::Shared,
    ));
    let crm_newer = run(
        &config,
        &profiled(Some("Old"), 100),
        &[with_company(Some("New"), 500)],
        PlanMode::Delta,
    );
    assert_eq!(kinds(&crm_newer), ["update_community_fields"]);
    let community_newer = run(
        &config,
        &profiled(Some("New"), 500),
        &[with_company(Some("Old"), 100)],
        PlanMode::Delta,
    );
    assert_eq!(kinds(&community_newer), ["update_crm_properties"]);
    let same = run(
        &config,
        &profiled(Some("Same"), 500),
        &[with_company(Some("Same"), 100)],
        PlanMode::Delta,
    );
    assert!(same.is_empty());
}

#[test]
fn field_changed_on_both_sides_prefer_non_blank() {
    let config = field_config(FieldMapping::new(
        "company",
        "company",
        FieldRule::PreferCrmUnlessBlank,
        FieldOwner::Shared,
    ));
    let crm_blank = run(
        &config,
        &profiled(Some("Community Co"), 100),
        &[with_company(Some("  "), 500)],
        PlanMode::Delta,
    );
    assert_eq!(
        kinds(&crm_blank),
        ["update_crm_properties"],
        "blank CRM is filled from the community"
    );
    let crm_set = run(
        &config,
        &profiled(Some("Community Co"), 900),
        &[with_company(Some("Crm Co"), 100)],
        PlanMode::Delta,
    );
    assert_eq!(
        kinds(&crm_set),
        ["update_community_fields"],
        "a non-blank CRM value is preferred even if older"
    );

    let config = field_config(FieldMapping::new(
        "company",
        "company",
        FieldRule::PreferCommunityUnlessBlank,
        FieldOwner::Shared,
    ));
    let com_blank = run(
        &config,
        &profiled(None, 900),
        &[with_company(Some("Crm Co"), 100)],
        PlanMode::Delta,
    );
    assert_eq!(kinds(&com_blank), ["update_community_fields"]);
}

#[test]
fn a_blank_source_never_clears_the_other_side() {
    for rule in [FieldRule::FromCrm, FieldRule::Bidirectional] {
        let owner = if rule == FieldRule::FromCrm {
            FieldOwner::Crm
        } else {
            FieldOwner::Shared
        };
        let config = field_config(FieldMapping::new("company", "company", rule, owner));
        let plan = run(
            &config,
            &profiled(Some("Keep Me"), 100),
            &[with_company(None, 500)],
            PlanMode::Delta,
        );
        assert!(
            !kinds(&plan).contains(&"update_community_fields"),
            "{rule:?}: {plan}"
        );
    }
    let config = field_config(FieldMapping::new(
        "company",
        "company",
        FieldRule::ToCrm,
        FieldOwner::Community,
    ));
    let plan = run(
        &config,
        &profiled(Some(""), 500),
        &[with_company(Some("Keep Me"), 100)],
        PlanMode::Delta,
    );
    assert!(plan.is_empty(), "{plan}");
}

#[test]
fn set_only_if_empty_fills_gaps_but_never_overwrites() {
    let config = field_config(
        FieldMapping::new("company", "company", FieldRule::FromCrm, FieldOwner::Crm)
            .with_null_guard(NullGuard::SetOnlyIfEmpty),
    );
    let fills = run(
        &config,
        &profiled(None, 100),
        &[with_company(Some("Crm Co"), 500)],
        PlanMode::Delta,
    );
    assert_eq!(kinds(&fills), ["update_community_fields"]);
    let keeps = run(
        &config,
        &profiled(Some("Mine"), 100),
        &[with_company(Some("Crm Co"), 500)],
        PlanMode::Delta,
    );
    assert!(keeps.is_empty());
}

#[test]
fn externally_owned_fields_are_never_written() {
    let mut raw = base_config();
    raw.fields = vec![FieldMapping::new(
        "company",
        "company",
        FieldRule::Never,
        FieldOwner::External("billing".into()),
    )];
    let config = raw.validate().unwrap();
    let plan = run(
        &config,
        &profiled(Some("A"), 100),
        &[with_company(Some("B"), 500)],
        PlanMode::Delta,
    );
    assert!(plan.is_empty());
}

#[test]
fn name_split_writes_both_crm_properties_and_skips_a_blank_last_name() {
    let mut raw = base_config();
    raw.fields = vec![FieldMapping::name(
        "name",
        "firstname",
        "lastname",
        FieldRule::ToCrm,
        FieldOwner::Community,
    )];
    let config = raw.validate().unwrap();
    let view = |name: &str| {
        StateView::new(vec![
            row("jane@example.com", "u1", Some("1")).with_profile(
                CommunityProfile::new()
                    .with_field("name", name)
                    .updated(t(900)),
            ),
        ])
    };
    let c = contact("1", "jane@example.com", 100).with_property("lastname", "Keep");
    let plan = run(
        &config,
        &view("Mary Jane Watson"),
        std::slice::from_ref(&c),
        PlanMode::Delta,
    );
    assert!(
        matches!(&plan.actions[0].kind, ActionKind::UpdateCrmProperties { properties, .. }
        if properties["firstname"] == "Mary Jane" && properties["lastname"] == "Watson")
    );
    let single = run(&config, &view("Madonna"), &[c], PlanMode::Delta);
    assert!(
        matches!(&single.actions[0].kind, ActionKind::UpdateCrmProperties { properties, .. }
        if properties.len() == 1 && properties["firstname"] == "Madonna")
    );
}

#[cfg(feature = "phone")]
#[test]
fn invalid_field_values_are_reported_not_written() {
    let mut raw = base_config();
    raw.default_phone_region = Some("US".into());
    raw.fields = vec![
        FieldMapping::new("phone", "phone", FieldRule::FromCrm, FieldOwner::Crm)
            .with_transform(Transform::PhoneE164),
    ];
    let config = raw.validate().unwrap();
    let plan = run(
        &config,
        &StateView::new(vec![row("jane@example.com", "u1", Some("1"))]),
        &[contact("1", "jane@example.com", 1).with_property("phone", "n/a")],
        PlanMode::Delta,
    );
    assert!(plan.is_empty());
    assert_eq!(plan.conflicts[0].kind, ConflictKind::InvalidFieldValue);
}

// --- Merges and relinks ---------------------------------------------------------------------

#[test]
fn merged_contact_repoints_the_mapping_and_keeps_badges() {
    let view = StateView::new(vec![
        row("jane@example.com", "u1", Some("1")).with_badge(sync_grant("Premium", "annual")),
    ]);
    let loser = contact("1", "jane@example.com", 100).merged_into(hs("2"));
    let plan = run(&cfg(), &view, std::slice::from_ref(&loser), PlanMode::Delta);
    assert_eq!(kinds(&plan), ["link_mapping"], "no removal: {plan}");
    assert_eq!(
        plan.actions[0].reason,
        Reason::ContactMerged { into: hs("2") }
    );
    // Winner and loser in one page: the winner takes the row, the loser's deletion is ignored.
    let winner = contact("2", "jane@example.com", 200).with_tag("Pago Anual");
    let plan = run(&cfg(), &view, &[loser, winner], PlanMode::Delta);
    assert_eq!(kinds(&plan), ["link_mapping"], "{plan}");
}

#[test]
fn two_rows_following_one_merge_chain_do_not_both_take_the_survivor() {
    // Found by the replanning property: record 3 was merged into 4 and record 2 into 3, each
    // with a row; 4 is not in this delta and has no row. Both rows lead to 4: the first takes
    // it, the other keeps its user, is reported and loses what this sync granted, exactly as
    // the next plan would decide once 4 has the first row.
    let view = StateView::new(vec![
        row("e@x.io", "u4", Some("3")),
        row("f@x.io", "u5", Some("2")).with_badge(sync_grant("Customer", "customers")),
    ]);
    let mut contacts = vec![
        CrmContact::new(hs("3"), None, t(100)).merged_into(hs("4")),
        CrmContact::new(hs("2"), None, t(100)).merged_into(hs("3")),
    ];
    for c in &mut contacts {
        c.archived = true;
    }
    let first = run(&cfg(), &view, &contacts, PlanMode::Delta);
    let links: Vec<_> = first
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::LinkMapping { .. }))
        .collect();
    assert_eq!(links.len(), 1, "{first}");
    assert_eq!(
        first.count_of(crate::plan::ActionType::RemoveBadge),
        1,
        "{first}"
    );
    assert!(
        first
            .conflicts
            .iter()
            .any(|c| c.kind == ConflictKind::EmailLinkedToOtherRecord),
        "{first}"
    );
    let mut view = view;
    apply_to_view(&first, &mut view, t(10_000));
    let second = run(&cfg(), &view, &contacts, PlanMode::Delta);
    assert!(
        second.actions.is_empty(),
        "first:\n{first}\nsecond:\n{second}"
    );
}

const FULL: PlanMode = PlanMode::FullReconcile {
    scan_complete: true,
};

#[test]
fn merged_into_a_record_a_complete_scan_did_not_see_keeps_the_row_and_loses_sync_badges() {
    // Found by the replanning property: jane's record 7 was merged into 0, but a complete
    // scan no longer has 0 (deleted since), and 0's own row moves to 4 by alternate email in
    // the same plan. The row cannot follow the merge either way, so it stays, loses what
    // this sync granted, and the plan is a fixpoint.
    let view = StateView::new(vec![
        row("jane@example.com", "u1", Some("7")).with_badge(sync_grant("Premium", "annual")),
        row("eve@example.com", "u2", Some("0")),
    ]);
    let mut eve = contact("4", "dan@example.com", 100);
    eve.alternate_email = Some(email("eve@example.com"));
    let jane = contact("7", "jane@example.com", 100).merged_into(hs("0"));
    let plan = run(&cfg(), &view, &[eve, jane], FULL);
    assert_eq!(
        removals(&plan),
        [("u1".to_owned(), Reason::ContactVanished)],
        "{plan}"
    );
    assert!(plan.conflicts.is_empty(), "{plan}");
    assert!(
        plan.actions.iter().all(|a| !matches!(
            &a.kind,
            ActionKind::LinkMapping { crm_id, .. } if *crm_id == hs("0")
        )),
        "{plan}"
    );
}

#[test]
fn a_merge_survivor_carrying_the_row_email_as_alternate_email_keeps_it() {
    // The replanning property found this: 2 merged into 3, whose alternate email is the
    // row's. Renaming the row to 3's primary email would free eve@ for another contact only
    // on the next run (a plan that is not a fixpoint); matched by CRM id, 3 keeps it too.
    let view = StateView::new(vec![row("eve@example.com", "u1", Some("2"))]);
    let loser = contact("2", "eve@example.com", 100).merged_into(hs("3"));
    let mut survivor = contact("3", "ann@example.com", 100);
    survivor.alternate_email = Some(email("eve@example.com"));
    let plan = run(&cfg(), &view, &[loser, survivor], PlanMode::Delta);
    let links: Vec<_> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::LinkMapping {
                email,
                crm_id,
                previous_email,
                ..
            } => Some((email.to_string(), crm_id.clone(), previous_email.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        links,
        [("eve@example.com".to_owned(), hs("3"), None)],
        "{plan}"
    );
}

#[test]
fn merged_into_a_record_deleted_in_the_same_batch_keeps_the_row_and_loses_sync_badges() {
    // Delta twin of the case above: 0 is deleted in the batch (no merge of its own) and its
    // row goes to 1, which now has its email. Jane's row stays on 7 either way.
    let view = StateView::new(vec![
        row("eve@example.com", "u2", Some("0")),
        row("jane@example.com", "u1", Some("7")).with_badge(sync_grant("Premium", "annual")),
    ]);
    let mut gone = contact("0", "eve@example.com", 100);
    gone.archived = true;
    let eve = contact("1", "eve@example.com", 100);
    let jane = contact("7", "jane@example.com", 100).merged_into(hs("0"));
    let plan = run(&cfg(), &view, &[gone, eve, jane], PlanMode::Delta);
    assert_eq!(
        removals(&plan),
        [("u1".to_owned(), Reason::ContactArchived)],
        "{plan}"
    );
    assert!(plan.conflicts.is_empty(), "{plan}");
    assert_eq!(kinds(&plan), ["link_mapping", "remove_badge"], "{plan}");
}

fn removals(plan: &Plan) -> Vec<(String, Reason)> {
    plan.actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::RemoveBadge { user, .. } => Some((user.to_string(), a.reason.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_holder_whose_email_a_linked_contact_takes_keeps_its_row_and_loses_its_badge() {
    // A holds Premium through its own row; B, linked to another user, is edited to carry A's
    // email and is the newest. A's tag is gone: A's row must be planned (by CRM id), not
    // skipped as B's duplicate.
    let view = StateView::new(vec![
        row("a@example.com", "ua", Some("1")).with_badge(sync_grant("Premium", "annual")),
        row("b@example.com", "ub", Some("2")),
    ]);
    let a = contact("1", "a@example.com", 100);
    let b = contact("2", "a@example.com", 200);
    for mode in [PlanMode::Delta, FULL] {
        let plan = run(&cfg(), &view, &[a.clone(), b.clone()], mode);
        assert_eq!(
            removals(&plan),
            [(
                "ua".to_owned(),
                Reason::RuleNoLongerHolds {
                    rule: "annual".into()
                }
            )],
            "{mode:?}: {plan}"
        );
        assert_eq!(kinds(&plan), ["remove_badge"], "{mode:?}: {plan}");
        assert_eq!(plan.counts.skipped_duplicate, 0, "{mode:?}: {plan}");
        assert!(
            plan.conflicts
                .iter()
                .any(|c| c.kind == ConflictKind::EmailLinkedToOtherRecord
                    && c.crm_ids.first() == Some(&hs("2"))),
            "B's new email is reported: {plan}"
        );
    }
    // B tagged: B's own user gets the badge on B's own row.
    let plan = run(
        &cfg(),
        &view,
        &[a.clone().with_tag("Pago Anual"), b.with_tag("Pago Anual")],
        PlanMode::Delta,
    );
    assert!(
        plan.actions.iter().any(|x| matches!(&x.kind,
            ActionKind::AssignBadge { user, .. } if user.as_str() == "ub")),
        "{plan}"
    );
    assert!(removals(&plan).is_empty(), "{plan}");
}

#[test]
fn two_linked_contacts_renamed_to_one_email_both_keep_their_rows() {
    let view = StateView::new(vec![
        row("a@example.com", "ua", Some("1")),
        row("b@example.com", "ub", Some("2")).with_badge(sync_grant("Premium", "annual")),
    ]);
    let a = contact("1", "new@example.com", 100).with_tag("Pago Anual");
    let b = contact("2", "new@example.com", 200);
    for mode in [PlanMode::Delta, FULL] {
        let plan = run(&cfg(), &view, &[a.clone(), b.clone()], mode);
        let mut got = kinds(&plan);
        got.sort_unstable();
        assert_eq!(
            got,
            ["assign_badge", "remove_badge"],
            "neither row is renamed, both are planned: {plan}"
        );
        assert_eq!(plan.counts.skipped_duplicate, 0);
        assert!(
            plan.conflicts
                .iter()
                .any(|c| c.kind == ConflictKind::DuplicateEmail),
            "{plan}"
        );
    }
}

#[test]
fn holder_merged_into_an_untagged_contact_without_a_row_moves_the_row_and_the_survivor_decides() {
    let view = StateView::new(vec![
        row("h@example.com", "uh", Some("1")).with_badge(sync_grant("Premium", "annual")),
    ]);
    let loser = contact("1", "h@example.com", 100).merged_into(hs("2"));
    let winner = contact("2", "w@example.com", 200);
    for mode in [PlanMode::Delta, FULL] {
        let plan = run(&cfg(), &view, &[loser.clone(), winner.clone()], mode);
        assert_eq!(kinds(&plan), ["link_mapping", "remove_badge"], "{plan}");
        assert_eq!(
            plan.actions[0].reason,
            Reason::ContactMerged { into: hs("2") }
        );
        assert_eq!(
            removals(&plan),
            [(
                "uh".to_owned(),
                Reason::RuleNoLongerHolds {
                    rule: "annual".into()
                }
            )]
        );
        // Once applied, the survivor is planned on the moved row: nothing more to do, in
        // either mode, with or without the tombstone.
        let mut after = view.clone();
        apply_to_view(&plan, &mut after, t(10_000));
        for again in [vec![winner.clone()], vec![loser.clone(), winner.clone()]] {
            for mode in [PlanMode::Delta, FULL] {
                let p = run(&cfg(), &after, &again, mode);
                assert!(p.actions.is_empty(), "{mode:?}: {p}");
            }
        }
    }
    // A tagged survivor keeps the badge.
    let plan = run(
        &cfg(),
        &view,
        &[loser, winner.with_tag("Pago Anual")],
        PlanMode::Delta,
    );
    assert_eq!(kinds(&plan), ["link_mapping"], "{plan}");
}

#[test]
fn holder_merged_into_a_contact_of_another_user_loses_sync_badges_in_delta_and_full() {
    let view = StateView::new(vec![
        row("h@example.com", "uh", Some("1"))
            .with_badge(sync_grant("Premium", "annual"))
            .with_badge(external_grant("Customer")),
        row("w@example.com", "uw", Some("2")),
    ]);
    let loser = contact("1", "h@example.com", 100).merged_into(hs("2"));
    let winner = contact("2", "w@example.com", 200).with_tag("Pago Anual");
    let delta = run(
        &cfg(),
        &view,
        &[loser.clone(), winner.clone()],
        PlanMode::Delta,
    );
    let merged = Reason::ContactMerged { into: hs("2") };
    let mut got = removals(&delta);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, [("uh".to_owned(), merged.clone())], "{delta}");
    assert!(
        delta.actions.iter().any(|x| matches!(&x.kind,
            ActionKind::AssignBadge { user, .. } if user.as_str() == "uw")),
        "the survivor's own user follows the survivor's tags: {delta}"
    );
    assert!(
        delta
            .conflicts
            .iter()
            .any(|c| c.kind == ConflictKind::EmailLinkedToOtherRecord),
        "{delta}"
    );
    // The full reconcile reaches the same badges, with or without the tombstone.
    for contacts in [vec![winner.clone()], vec![loser.clone(), winner.clone()]] {
        let full = run(&cfg(), &view, &contacts, FULL);
        let users: Vec<String> = removals(&full).into_iter().map(|r| r.0).collect();
        assert_eq!(users, ["uh"], "{full}");
        let mut after = view.clone();
        apply_to_view(&delta, &mut after, t(10_000));
        let settled = run(&cfg(), &after, &contacts, FULL);
        assert!(settled.actions.is_empty(), "after the delta: {settled}");
    }
}

#[test]
fn email_linked_to_another_live_record_is_a_conflict_in_delta_and_relinked_after_complete_scan() {
    let view = StateView::new(vec![row("jane@example.com", "u1", Some("1"))]);
    let newcomer = contact("2", "jane@example.com", 100).with_tag("Pago Anual");
    let delta = run(
        &cfg(),
        &view,
        std::slice::from_ref(&newcomer),
        PlanMode::Delta,
    );
    assert!(delta.is_empty());
    assert_eq!(
        delta.conflicts[0].kind,
        ConflictKind::EmailLinkedToOtherRecord
    );
    let full = run(
        &cfg(),
        &view,
        &[newcomer],
        PlanMode::FullReconcile {
            scan_complete: true,
        },
    );
    assert_eq!(kinds(&full), ["link_mapping", "assign_badge"]);
}

#[test]
fn contacts_without_email_are_reported() {
    let c = CrmContact::new(hs("9"), None, t(1));
    let plan = run(&cfg(), &StateView::default(), &[c], PlanMode::Delta);
    assert_eq!(plan.counts.skipped_no_email, 1);
    assert_eq!(plan.conflicts[0].kind, ConflictKind::MissingEmail);
}

#[test]
fn re_read_records_are_deduplicated_by_id_keeping_the_newest() {
    let view = StateView::new(vec![row("jane@example.com", "u1", Some("1"))]);
    let old = contact("1", "jane@example.com", 100).with_tag("Pago Anual");
    let new = contact("1", "jane@example.com", 200);
    let plan = run(&cfg(), &view, &[old, new], PlanMode::Delta);
    assert!(plan.is_empty() && plan.conflicts.is_empty(), "{plan}");
}

// --- Output -----------------------------------------------------------------------------------

#[test]
fn plan_renders_a_reviewable_diff_and_stable_json() {
    let view = StateView::new(vec![
        row("jane@example.com", "u1", Some("1")),
        row("joe@example.com", "u2", Some("2")).with_badge(sync_grant("Premium", "annual")),
    ]);
    let plan = run(
        &cfg(),
        &view,
        &[
            contact("1", "jane@example.com", 100).with_tag("Pago Anual"),
            contact("2", "joe@example.com", 100),
            contact("3", "x@example.com", 1),
            contact("4", "x@example.com", 2),
        ],
        PlanMode::Delta,
    );
    let text = plan.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "- badge Premium -> joe@example.com (rule annual no longer holds)"
    );
    assert_eq!(
        lines[1],
        "+ badge Premium -> jane@example.com (tag \"Pago Anual\")"
    );
    assert!(
        lines[2].starts_with("! conflict DuplicateEmail x@example.com [hubspot:4, hubspot:3]"),
        "{text}"
    );
    assert!(lines[3].starts_with("plan for tenant acme: 4 contacts, 2 actions (assign_badge 1, remove_badge 1), 1 conflicts"), "{text}");
    let json = plan.to_json();
    let back: Plan = serde_json::from_str(&json).unwrap();
    assert_eq!(back, plan);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["actions"][0]["kind"]["type"], "remove_badge");
    assert_eq!(value["actions"][0]["reason"]["why"], "rule_no_longer_holds");
}

#[test]
fn keys_are_deterministic_and_change_with_the_triggering_change() {
    let view = StateView::new(vec![row("jane@example.com", "u1", Some("1"))]);
    let a = run(
        &cfg(),
        &view,
        &[contact("1", "jane@example.com", 100).with_tag("Pago Anual")],
        PlanMode::Delta,
    );
    let b = run(
        &cfg(),
        &view,
        &[contact("1", "jane@example.com", 100).with_tag("Pago Anual")],
        PlanMode::Delta,
    );
    let c = run(
        &cfg(),
        &view,
        &[contact("1", "jane@example.com", 300).with_tag("Pago Anual")],
        PlanMode::Delta,
    );
    assert_eq!(a.actions[0].key, b.actions[0].key);
    assert_ne!(a.actions[0].key, c.actions[0].key);
}

fn keys_of(p: &Plan, ty: crate::plan::ActionType) -> Vec<IdempotencyKey> {
    p.actions
        .iter()
        .filter(|a| a.kind.action_type() == ty)
        .map(|a| a.key.clone())
        .collect()
}

#[test]
fn a_grant_planned_again_after_the_row_came_back_has_a_new_key() {
    // The holder's contact did not change, but another record took its row (its grant was
    // removed) and gave it back: the row's generation moved, so the assign is a new action,
    // not a repeat of the first one, which the outbox already applied.
    use crate::plan::ActionType::AssignBadge;
    let holder = [contact("1", "jane@example.com", 100).with_tag("Pago Anual")];
    let first = StateView::new(vec![row("jane@example.com", "u1", Some("1"))]);
    let mut back = row("jane@example.com", "u1", Some("1"));
    back.generation = 2;
    back.updated_at = t(500);
    let again = StateView::new(vec![back.clone()]);
    let a = run(&cfg(), &first, &holder, PlanMode::Delta);
    let b = run(&cfg(), &again, &holder, PlanMode::Delta);
    assert_eq!(keys_of(&a, AssignBadge).len(), 1, "{a}");
    assert_eq!(keys_of(&b, AssignBadge).len(), 1, "{b}");
    assert_ne!(keys_of(&a, AssignBadge), keys_of(&b, AssignBadge));
    // Any other change of the row (its time, its profile) leaves the key alone: a grant still
    // in the outbox is not planned twice.
    back.updated_at = t(900);
    let later = run(
        &cfg(),
        &StateView::new(vec![back]),
        &holder,
        PlanMode::Delta,
    );
    assert_eq!(keys_of(&b, AssignBadge), keys_of(&later, AssignBadge));
}

#[test]
fn a_link_planned_again_after_the_row_moved_has_a_new_key() {
    // Record 2 takes back a row it held before, from record 1 (archived): record 2 did not
    // change, but the row moved meanwhile (generation 1), so the link is a new action.
    use crate::plan::ActionType::LinkMapping;
    let contacts = [
        contact("2", "jane@example.com", 100),
        contact("1", "jane@example.com", 200).archived(),
    ];
    let before = StateView::new(vec![row("jane@example.com", "u1", Some("1"))]);
    let mut moved = row("jane@example.com", "u1", Some("1"));
    moved.generation = 1;
    let after = StateView::new(vec![moved]);
    let a = run(&cfg(), &before, &contacts, PlanMode::Delta);
    let b = run(&cfg(), &after, &contacts, PlanMode::Delta);
    assert_eq!(keys_of(&a, LinkMapping).len(), 1, "{a}");
    assert_eq!(keys_of(&b, LinkMapping).len(), 1, "{b}");
    assert_eq!(
        keys_of(&a, LinkMapping),
        keys_of(
            &run(&cfg(), &before, &contacts, PlanMode::Delta),
            LinkMapping
        )
    );
    assert_ne!(keys_of(&a, LinkMapping), keys_of(&b, LinkMapping));
}

#[test]
fn a_grant_planned_with_the_link_that_moves_its_row_keeps_its_key_once_the_link_applied() {
    // One plan moves the row to record 2 and grants its badge. If the link is applied and the
    // grant is still in the outbox (retrying), planning again must repeat the grant's key,
    // not enqueue a second grant: the grant is keyed by the generation after the link.
    use crate::plan::ActionType::{AssignBadge, LinkMapping};
    let contacts = [
        contact("2", "jane@example.com", 100).with_tag("Pago Anual"),
        contact("1", "jane@example.com", 200).archived(),
    ];
    let view = StateView::new(vec![row("jane@example.com", "u1", Some("1"))]);
    let first = run(&cfg(), &view, &contacts, PlanMode::Delta);
    assert_eq!(keys_of(&first, LinkMapping).len(), 1, "{first}");
    assert_eq!(keys_of(&first, AssignBadge).len(), 1, "{first}");
    let mut links_only = first.clone();
    links_only
        .actions
        .retain(|a| a.kind.action_type() == LinkMapping);
    let mut linked = view.clone();
    assert_eq!(apply_to_view(&links_only, &mut linked, t(300)), 0);
    assert_eq!(linked.by_crm_id(&hs("2")).map(|m| m.generation), Some(1));
    let again = run(&cfg(), &linked, &contacts, PlanMode::Delta);
    assert!(keys_of(&again, LinkMapping).is_empty(), "{again}");
    assert_eq!(
        keys_of(&again, AssignBadge),
        keys_of(&first, AssignBadge),
        "{again}"
    );
}

#[test]
fn keys_of_a_row_that_never_moved_are_those_of_earlier_releases() {
    // Generation 0 adds nothing to a key, so outbox items enqueued before the generation
    // existed keep matching after an upgrade (nothing is sent twice or dropped).
    use crate::plan::ActionType::{AssignBadge, LinkMapping};
    let tenant = "acme";
    let holder = [contact("1", "jane@example.com", 100).with_tag("Pago Anual")];
    let view = StateView::new(vec![row("jane@example.com", "u1", Some("1"))]);
    let p = run(&cfg(), &view, &holder, PlanMode::Delta);
    let at = millis(t(100));
    assert_eq!(
        keys_of(&p, AssignBadge),
        vec![IdempotencyKey::derive_with(
            tenant,
            &["assign_badge", "u1", "Premium", &at]
        )]
    );
    let contacts = [
        contact("2", "jane@example.com", 100),
        contact("1", "jane@example.com", 200).archived(),
    ];
    let p = run(&cfg(), &view, &contacts, PlanMode::Delta);
    assert_eq!(
        keys_of(&p, LinkMapping),
        vec![IdempotencyKey::derive_with(
            tenant,
            &[
                "link",
                "jane@example.com",
                &hs("2").to_string(),
                "u1",
                "",
                &hs("1").to_string(),
                &at
            ]
        )]
    );
}

#[test]
fn applying_a_link_counts_the_rows_moves_between_records() {
    let linked = row("jane@example.com", "u1", Some("1"));
    let link = |crm: &str, mail: &str| {
        Action::new(
            IdempotencyKey::derive(&["link", crm, mail]),
            ActionKind::LinkMapping {
                email: email(mail),
                crm_id: hs(crm),
                user: Some("u1".into()),
                previous_email: None,
                previous_crm_id: None,
            },
            Reason::CanonicalDuplicate,
        )
    };
    let moved = apply_to_mapping(&link("2", "jane@example.com"), Some(&linked), t(5)).unwrap();
    assert_eq!(moved.generation, 1, "moved to another record");
    let renamed = apply_to_mapping(&link("2", "j@example.com"), Some(&moved), t(6)).unwrap();
    assert_eq!(renamed.generation, 1, "a rename keeps the record");
    let unlinked = row("new@example.com", "u2", None);
    let first = apply_to_mapping(&link("3", "new@example.com"), Some(&unlinked), t(7)).unwrap();
    assert_eq!(first.generation, 0, "a first link moves nothing");
}

// --- Property tests ---------------------------------------------------------------------------

const EMAILS: [&str; 6] = ["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io", "f@x.io"];
const WORDS: [&str; 4] = ["Ann", "Bo", "Cy", "Di"];

fn arb_contact() -> impl Strategy<Value = CrmContact> {
    (
        0usize..8,
        prop::option::weighted(0.9, 0usize..EMAILS.len()),
        prop::option::of(0usize..EMAILS.len()),
        any::<(bool, bool)>(),
        prop::option::of(0usize..3),
        0i64..50,
        prop::option::weighted(0.1, any::<bool>()),
        prop::option::of(0usize..WORDS.len()),
        prop::option::of((0usize..WORDS.len(), 0usize..WORDS.len())),
    )
        .prop_map(
            |(id, mail, alt, (tag_a, tag_b), stage, at, archived, company, name)| {
                let mut c =
                    CrmContact::new(hs(&id.to_string()), mail.map(|i| email(EMAILS[i])), t(at));
                if let Some(i) = alt {
                    c.alternate_email = Some(email(EMAILS[i]));
                }
                if tag_a {
                    c.tags.insert("Pago Anual".into());
                }
                if tag_b {
                    c.tags.insert("Other".into());
                }
                c.lifecycle_stage = stage.map(|s| ["lead", "customer", "subscriber"][s].to_owned());
                if let Some(i) = company {
                    c.properties.insert("company".into(), WORDS[i].into());
                }
                if let Some((f, l)) = name {
                    c.properties.insert("firstname".into(), WORDS[f].into());
                    c.properties.insert("lastname".into(), WORDS[l].into());
                }
                match archived {
                    Some(true) => c.merged_into(hs(&((id + 1) % 8).to_string())),
                    Some(false) => c.archived(),
                    None => c,
                }
            },
        )
}

fn arb_row(i: usize) -> impl Strategy<Value = Option<Mapping>> {
    (
        any::<bool>(),
        prop::option::of(0usize..8),
        any::<bool>(),
        prop::option::of(prop::bool::ANY),
        prop::option::of(prop::bool::ANY),
        prop::option::of(0usize..WORDS.len()),
        0i64..50,
    )
        .prop_map(
            move |(present, crm, has_user, premium, customer, company, at)| {
                if !present {
                    return None;
                }
                let mut m = Mapping::new(email(EMAILS[i]), t(0));
                m.crm_id = crm.map(|c| hs(&c.to_string()));
                if has_user {
                    m.cativa_user_id = Some(format!("u{i}").into());
                }
                let grant = |badge: &str, rule: &str, sync: bool| {
                    if sync {
                        sync_grant(badge, rule)
                    } else {
                        external_grant(badge)
                    }
                };
                if let Some(s) = premium {
                    m.badges.push(grant("Premium", "annual", s));
                }
                if let Some(s) = customer {
                    m.badges.push(grant("Customer", "customers", s));
                }
                let mut p = CommunityProfile::new().updated(t(at));
                if let Some(w) = company {
                    p = p.with_field("company", WORDS[w]);
                }
                m.profile = Some(p);
                Some(m)
            },
        )
}

fn arb_view() -> impl Strategy<Value = StateView> {
    (0..EMAILS.len())
        .map(arb_row)
        .collect::<Vec<_>>()
        .prop_map(|rows| {
            let mut view = StateView::default();
            for row in rows.into_iter().flatten() {
                view.put(row);
            }
            view
        })
}

fn arb_config() -> impl Strategy<Value = ValidatedConfig> {
    (0usize..4, any::<bool>(), any::<bool>()).prop_map(|(company_rule, invite, lifecycle)| {
        let mut raw = base_config();
        if invite {
            raw.missing_user = MissingUserPolicy::Invite;
        }
        if lifecycle {
            raw.duplicates = DuplicatePolicy::MostAdvancedLifecycleStage(vec![
                "subscriber".into(),
                "lead".into(),
                "customer".into(),
            ]);
        }
        let (rule, owner) = [
            (FieldRule::Bidirectional, FieldOwner::Shared),
            (FieldRule::FromCrm, FieldOwner::Crm),
            (FieldRule::ToCrm, FieldOwner::Community),
            (FieldRule::PreferCrmUnlessBlank, FieldOwner::Shared),
        ][company_rule]
            .clone();
        raw.fields = vec![
            FieldMapping::new("company", "company", rule, owner),
            FieldMapping::name(
                "name",
                "firstname",
                "lastname",
                FieldRule::FromCrm,
                FieldOwner::Crm,
            ),
            FieldMapping::new(
                "plan",
                "subscription_status",
                FieldRule::Never,
                FieldOwner::External("billing".into()),
            ),
        ];
        raw.validate().unwrap()
    })
}

fn arb_mode() -> impl Strategy<Value = PlanMode> {
    prop_oneof![
        Just(PlanMode::Delta),
        any::<bool>().prop_map(|scan_complete| PlanMode::FullReconcile { scan_complete })
    ]
}

/// Applies a plan's CRM writes as a CRM would: the record gets a new version, which the next
/// read returns (older re-read copies may still come along, as with a delta overlap).
fn apply_to_contacts(plan: &Plan, contacts: &mut Vec<CrmContact>, now: DateTime<Utc>) {
    for action in &plan.actions {
        if let ActionKind::UpdateCrmProperties {
            crm_id, properties, ..
        } = &action.kind
        {
            let empty = StateView::default();
            let latest = identity::dedupe_by_id(contacts, &empty)
                .get(crm_id)
                .copied();
            if let Some(i) = latest {
                let mut next = contacts[i as usize].clone();
                next.properties.extend(properties.clone());
                next.updated_at = now;
                contacts.push(next);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    // One contact per record and per email: duplicate emails inside one batch are resolved
    // by policy (see the duplicate tests) and may take a second run to settle when they
    // interact with renames and merges of the same rows.
    #[test]
    fn applying_a_plan_then_planning_again_yields_an_empty_plan(
        config in arb_config(), mut view in arb_view(), contacts in prop::collection::vec(arb_contact(), 0..12), mode in arb_mode()
    ) {
        let mut ids = BTreeSet::new();
        let mut emails = BTreeSet::new();
        let mut contacts: Vec<CrmContact> = contacts
            .into_iter()
            .filter(|c| ids.insert(c.id.clone()) && c.email.as_ref().is_none_or(|e| emails.insert(e.clone())))
            .collect();
        let tenant = TenantId::new("acme");
        let first = plan(&PlanInput::new(&tenant, &config, &view, t(1000)), &contacts, mode);
        apply_to_view(&first, &mut view, t(1000));
        apply_to_contacts(&first, &mut contacts, t(1000));
        let second = plan(&PlanInput::new(&tenant, &config, &view, t(2000)), &contacts, mode);
        prop_assert!(second.actions.is_empty(), "first:\n{}\nsecond:\n{}", first, second);
    }

    #[test]
    fn no_plan_removes_a_badge_the_sync_did_not_grant(
        config in arb_config(), view in arb_view(), contacts in prop::collection::vec(arb_contact(), 0..12), mode in arb_mode()
    ) {
        let tenant = TenantId::new("acme");
        let p = plan(&PlanInput::new(&tenant, &config, &view, t(1000)), &contacts, mode);
        for action in &p.actions {
            if let ActionKind::RemoveBadge { user, badge, .. } = &action.kind {
                let grant = view.by_user(user).and_then(|m| m.grant(badge));
                prop_assert!(grant.is_some_and(|g| g.provenance.is_sync()), "removes {badge} of {user}: {action}");
                prop_assert!(config.is_managed(badge));
            }
        }
    }

    #[test]
    fn no_action_writes_a_field_its_writer_does_not_own(
        config in arb_config(), view in arb_view(), contacts in prop::collection::vec(arb_contact(), 0..12), mode in arb_mode()
    ) {
        let tenant = TenantId::new("acme");
        let p = plan(&PlanInput::new(&tenant, &config, &view, t(1000)), &contacts, mode);
        let crm_writable: BTreeSet<&str> = config.fields().iter().filter(|f| f.writes_crm())
            .flat_map(|f| f.crm.names().iter().map(String::as_str)).collect();
        let community_writable: BTreeSet<&str> = config.fields().iter().filter(|f| f.writes_community())
            .map(|f| f.community.as_str()).collect();
        for action in &p.actions {
            match &action.kind {
                ActionKind::UpdateCrmProperties { properties, .. } => {
                    for (k, v) in properties {
                        prop_assert!(crm_writable.contains(k.as_str()), "writes CRM {k}");
                        prop_assert!(!v.trim().is_empty(), "clears CRM {k}");
                    }
                }
                ActionKind::UpdateCommunityFields { fields, .. } => {
                    for (k, v) in fields {
                        prop_assert!(community_writable.contains(k.as_str()), "writes community {k}");
                        prop_assert!(!v.trim().is_empty(), "clears community {k}");
                    }
                }
                _ => {}
            }
        }
    }

    #[test]
    fn the_plan_does_not_depend_on_the_order_of_contacts(
        config in arb_config(), view in arb_view(), contacts in prop::collection::vec(arb_contact(), 0..12),
        mode in arb_mode(), seed in any::<u64>()
    ) {
        let tenant = TenantId::new("acme");
        let a = plan(&PlanInput::new(&tenant, &config, &view, t(1000)), &contacts, mode);
        let mut shuffled = contacts.clone();
        // A deterministic Fisher-Yates driven by the seed.
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        let b = plan(&PlanInput::new(&tenant, &config, &view, t(1000)), &shuffled, mode);
        prop_assert_eq!(a, b);
    }
}
