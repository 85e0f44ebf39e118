//! The golden plan: a fixed input mixing every path of the planner (linked rows on the fast
//! path, new contacts, rows found by email, changed emails, duplicates, archived and merged
//! contacts, field mappings) whose serialized plans must not change. Optimizations of the
//! planner keep this hash; a deliberate change of the planner's output updates it.

#![allow(clippy::field_reassign_with_default)]

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::config::{BadgeRule, Condition, FieldMapping, FieldOwner, FieldRule, SyncConfig};
use crate::domain::{BadgeGrant, CommunityProfile, Mapping, Provenance};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).single().unwrap()
}

fn config() -> ValidatedConfig {
    let mut c = SyncConfig::default();
    c.badge_rules = vec![
        BadgeRule::new("annual", "Premium", Condition::Tag("Pago Anual".into())),
        BadgeRule::new(
            "customers",
            "Customer",
            Condition::LifecycleStageIn(vec!["customer".into()]),
        ),
    ];
    c.fields = vec![
        FieldMapping::new("company", "company", FieldRule::FromCrm, FieldOwner::Crm),
        FieldMapping::new(
            "phone",
            "phone",
            FieldRule::Bidirectional,
            FieldOwner::Shared,
        ),
    ];
    c.validate().unwrap()
}

/// A small deterministic generator (a 64-bit LCG), so the input never depends on a crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn world() -> (Vec<CrmContact>, StateView) {
    let mut rng = Lcg(42);
    let mut contacts = Vec::new();
    let mut rows = Vec::new();
    for i in 0..3_000u64 {
        let mail = Email::parse(&format!("user{i}@example.com")).unwrap();
        let id = CrmRecordId::hubspot((10_000 + i).to_string());
        let mut c = CrmContact::new(id.clone(), Some(mail.clone()), t(rng.next(100) as i64))
            .with_property("company", format!("Co{}", rng.next(5)))
            .with_property("phone", format!("+1415555{:04}", rng.next(3)))
            .with_tag(if rng.next(2) == 0 {
                "Pago Anual"
            } else {
                "Pago Mensal"
            })
            .with_lifecycle_stage(if rng.next(3) == 0 { "customer" } else { "lead" });
        let mut row = Mapping::new(mail.clone(), t(0)).with_user(format!("u-{i}").into());
        match rng.next(12) {
            // Linked rows: the fast path.
            0..=5 => row = row.with_crm(id.clone()),
            // Found by email only.
            6 => {}
            // No row: a new contact.
            7 => {}
            // The CRM email changed.
            8 => {
                row = row.with_crm(id.clone());
                c.email = Some(Email::parse(&format!("moved{i}@example.com")).unwrap());
            }
            // Archived.
            9 => {
                row = row.with_crm(id.clone());
                c.archived = true;
            }
            // Merged into the previous contact.
            10 if i > 0 => {
                row = row.with_crm(id.clone());
                c.merged_into = Some(CrmRecordId::hubspot((10_000 + i - 1).to_string()));
            }
            // The same email as the previous contact: a duplicate.
            _ => {
                c.email = Some(
                    Email::parse(&format!("user{}@example.com", i.saturating_sub(1))).unwrap(),
                );
            }
        }
        if rng.next(2) == 0 {
            row = row.with_badge(BadgeGrant::new("Premium", Provenance::sync("annual"), t(1)));
        }
        if rng.next(4) == 0 {
            row = row.with_badge(BadgeGrant::new(
                "Customer",
                Provenance::external("paywall"),
                t(1),
            ));
        }
        if rng.next(3) == 0 {
            row = row.with_profile(
                CommunityProfile::new()
                    .with_field("phone", format!("+1415555{:04}", rng.next(3)))
                    .updated(t(rng.next(200) as i64)),
            );
        }
        if rng.next(12) != 7 {
            rows.push(row);
        }
        // Some contacts are missing from the scan: their rows are absent on a complete one.
        if rng.next(20) != 0 {
            contacts.push(c);
        }
    }
    (contacts, StateView::new(rows))
}

/// FNV-1a, 64 bits: stable across platforms and Rust versions.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn plan_hash(mode: PlanMode) -> (usize, u64) {
    let (contacts, view) = world();
    let config = config();
    let tenant = TenantId::new("golden");
    let p = plan(
        &PlanInput::new(&tenant, &config, &view, t(10_000)),
        &contacts,
        mode,
    );
    let json = serde_json::to_vec(&p).unwrap();
    (p.actions.len(), fnv(&json))
}

#[test]
fn the_golden_plans_are_unchanged() {
    let modes = [
        (PlanMode::Delta, (5180, 17_925_251_551_709_291_496)),
        (
            PlanMode::FullReconcile {
                scan_complete: true,
            },
            (5242, 8_982_373_195_905_166_486),
        ),
        (
            PlanMode::FullReconcile {
                scan_complete: false,
            },
            (5180, 3_246_727_265_353_212_358),
        ),
    ];
    let mut actual = Vec::new();
    for (mode, _) in &modes {
        actual.push(plan_hash(*mode));
    }
    let expected: Vec<(usize, u64)> = modes.iter().map(|(_, e)| *e).collect();
    assert_eq!(
        actual, expected,
        "the planner's output changed: (actions, hash) per mode; update the constants only for a deliberate change"
    );
}
