use super::*;
use crate::domain::{CrmContact, CrmRecordId};
use chrono::Utc;

const FULL: &str = r#"
missing_user = "invite"
alternate_email_property = "community_email"
default_phone_region = "BR"
duplicates = { most_advanced_lifecycle_stage = ["subscriber", "lead", "customer"] }

[[badge_rules]]
id = "annual"
grant = "Premium"
when = { tag = "Pago Anual" }

[[badge_rules]]
id = "plan"
grant = "Premium"
when = { property_one_of = { property = "plan", values = ["gold", "platinum"] } }

[[badge_rules]]
id = "customers"
grant = "Customer"
when = { all = [{ lifecycle_stage_in = ["customer"] }, { property_equals = { property = "country", value = "BR" } }] }

[[fields]]
community = "name"
crm = ["firstname", "lastname"]
rule = "from_crm"
owner = "crm"
transforms = ["trim", "name"]

[[fields]]
community = "phone"
crm = "phone"
rule = "bidirectional"
owner = "shared"
transforms = ["phone_e164"]

[[fields]]
community = "plan"
crm = "subscription_status"
rule = "never"
owner = { external = "billing" }
"#;

#[cfg(not(feature = "phone"))]
#[test]
fn a_phone_transform_needs_the_phone_feature() {
    assert_eq!(issues(FULL), ["fields[1].transforms"]);
}

#[cfg(feature = "phone")]
#[test]
fn full_toml_config_loads_and_compiles() {
    let cfg = SyncConfig::from_toml_str(FULL).unwrap().validate().unwrap();
    assert_eq!(cfg.rules().len(), 3);
    let managed: Vec<_> = cfg
        .managed_badges()
        .iter()
        .map(|b| b.as_str().to_owned())
        .collect();
    assert_eq!(managed, ["Customer", "Premium"]);
    assert_eq!(cfg.badge_rules_by_badge()[0].1, vec![0, 1]);
    assert_eq!(cfg.missing_user(), MissingUserPolicy::Invite);
    assert_eq!(cfg.alternate_email_property(), Some("community_email"));
    assert!(cfg.transform_context().default_region.is_some());
    let props: Vec<_> = cfg.crm_properties().into_iter().collect();
    assert_eq!(
        props,
        [
            "community_email",
            "country",
            "firstname",
            "lastname",
            "phone",
            "plan",
            "subscription_status"
        ]
    );
}

#[test]
fn json_config_is_equivalent_to_toml() {
    let toml_cfg = SyncConfig::from_toml_str(FULL).unwrap();
    let json = serde_json::to_string(&toml_cfg).unwrap();
    let json_cfg = SyncConfig::from_json_str(&json).unwrap();
    assert_eq!(toml_cfg, json_cfg);
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let err = SyncConfig::from_toml_str("missing_usr = \"invite\"").unwrap_err();
    assert!(err.to_string().contains("missing_usr"), "{err}");
    let err = SyncConfig::from_json_str(
        r#"{"badge_rules":[{"id":"a","grant":"b","when":{"tag":"x"},"extra":1}]}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("extra"), "{err}");
}

fn issues(text: &str) -> Vec<String> {
    match SyncConfig::from_toml_str(text).unwrap().validate() {
        Err(Error::InvalidConfig(issues)) => issues.into_iter().map(|i| i.key).collect(),
        other => panic!("expected validation errors, got {other:?}"),
    }
}

#[test]
fn validation_names_every_bad_key() {
    let keys = issues(
        r#"
default_phone_region = "Narnia"
alternate_email_property = " "
duplicates = { most_advanced_lifecycle_stage = [] }
[[badge_rules]]
id = "a"
grant = ""
when = { tag = "" }
[[badge_rules]]
id = "a"
grant = "B"
when = { any = [] }
[[fields]]
community = "phone"
crm = "phone"
rule = "to_crm"
[[fields]]
community = "name"
crm = "firstname"
rule = "from_crm"
owner = "crm"
transforms = ["name"]
[[fields]]
community = "x"
crm = "x"
rule = "bidirectional"
owner = "crm"
"#,
    );
    for expected in [
        "default_phone_region",
        "alternate_email_property",
        "duplicates.most_advanced_lifecycle_stage",
        "badge_rules[0].grant",
        "badge_rules[0].when.tag",
        "badge_rules[1].id",
        "badge_rules[1].when.any",
        "fields[0].owner",
        "fields[1].crm",
        "fields[2].owner",
    ] {
        assert!(
            keys.iter().any(|k| k == expected),
            "missing {expected} in {keys:?}"
        );
    }
}

#[test]
fn two_writers_of_one_property_are_rejected() {
    let keys = issues(
        r#"
[[fields]]
community = "a"
crm = "phone"
rule = "to_crm"
owner = "community"
[[fields]]
community = "b"
crm = "phone"
rule = "to_crm"
owner = "community"
"#,
    );
    assert_eq!(keys, ["fields[1].crm"]);
}

#[test]
fn ambiguous_value_map_is_rejected_only_when_read_back() {
    let base = |rule: &str| {
        format!(
            "[[fields]]\ncommunity = \"tier\"\ncrm = \"tier\"\nrule = \"{rule}\"\nowner = \"{}\"\ntransforms = [{{ value_map = {{ a = \"X\", b = \"X\" }} }}]\n",
            if rule == "to_crm" {
                "community"
            } else {
                "shared"
            }
        )
    };
    assert_eq!(
        issues(&base("bidirectional")),
        ["fields[0].transforms[0].value_map"]
    );
    assert!(
        SyncConfig::from_toml_str(&base("to_crm"))
            .unwrap()
            .validate()
            .is_ok()
    );
}

#[cfg(feature = "phone")] // FULL maps a phone with phone_e164
#[test]
fn conditions_evaluate_against_contacts() {
    let cfg = SyncConfig::from_toml_str(FULL).unwrap().validate().unwrap();
    let c = CrmContact::new(CrmRecordId::hubspot("1"), None, Utc::now())
        .with_tag("Pago Anual")
        .with_property("country", "BR")
        .with_lifecycle_stage("customer");
    assert!(cfg.rules()[0].when.holds(&c));
    assert!(!cfg.rules()[1].when.holds(&c));
    assert!(cfg.rules()[2].when.holds(&c));
    let archived = c.clone().archived();
    assert!(cfg.rules().iter().all(|r| !r.when.holds(&archived)));
    let gold = CrmContact::new(CrmRecordId::hubspot("2"), None, Utc::now())
        .with_property("plan", " gold ");
    assert!(cfg.rules()[1].when.holds(&gold));
    assert_eq!(cfg.rules()[0].when.describe(), "tag \"Pago Anual\"");
}

#[test]
fn from_path_reads_toml_and_json() {
    let dir = std::env::temp_dir().join(format!("sync-core-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml_path = dir.join("sync.toml");
    std::fs::write(&toml_path, FULL).unwrap();
    let cfg = SyncConfig::from_path(&toml_path).unwrap();
    let json_path = dir.join("sync.json");
    std::fs::write(&json_path, serde_json::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(SyncConfig::from_path(&json_path).unwrap(), cfg);
    assert!(matches!(
        SyncConfig::from_path(dir.join("missing.toml")),
        Err(Error::ConfigParse { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

const NAMED: &str = r#"
[badges]
Premium = "b0000000-0000-4000-8000-000000000001"
Customer = "b0000000-0000-4000-8000-000000000002"

[[badge_rules]]
id = "annual"
grant = "Premium"
when = { tag = "Pago Anual" }

[[badge_rules]]
id = "by-id"
grant = "b0000000-0000-4000-8000-000000000002"
when = { tag = "Cliente" }
"#;

#[test]
fn rules_grant_badges_by_name_resolved_to_their_ids() {
    let cfg = SyncConfig::from_toml_str(NAMED)
        .unwrap()
        .validate()
        .unwrap();
    let premium = BadgeId::from("b0000000-0000-4000-8000-000000000001");
    let customer = BadgeId::from("b0000000-0000-4000-8000-000000000002");
    assert_eq!(cfg.rules()[0].grant, premium);
    assert_eq!(
        cfg.rules()[1].grant,
        customer,
        "an id listed in [badges] is accepted too"
    );
    assert!(cfg.is_managed(&premium));
    assert!(!cfg.is_managed(&BadgeId::from("Premium")));
    assert_eq!(cfg.badge_name(&premium), Some("Premium"));
    assert_eq!(
        cfg.badge_label(&premium),
        "Premium (b0000000-0000-4000-8000-000000000001)"
    );
    assert_eq!(
        cfg.badge_label(&BadgeId::from("x")),
        "x",
        "an unnamed badge shows as its id"
    );
}

#[test]
fn unknown_badge_name_is_a_validation_error_naming_the_key() {
    let text = NAMED.replace("grant = \"Premium\"", "grant = \"Premiun\"");
    let err = SyncConfig::from_toml_str(&text)
        .unwrap()
        .validate()
        .unwrap_err();
    let Error::InvalidConfig(issues) = err else {
        panic!("expected InvalidConfig, got {err:?}");
    };
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].key, "badge_rules[0].grant");
    assert!(
        issues[0].message.contains("Premiun"),
        "{}",
        issues[0].message
    );
    assert!(
        issues[0].message.contains("Customer, Premium"),
        "{}",
        issues[0].message
    );
}

#[test]
fn badges_table_refuses_blank_ids_and_one_id_under_two_names() {
    let text = r#"
[badges]
Premium = "b1"
Gold = "b1"
Empty = ""
"#;
    let err = SyncConfig::from_toml_str(text)
        .unwrap()
        .validate()
        .unwrap_err();
    let Error::InvalidConfig(issues) = err else {
        panic!("expected InvalidConfig, got {err:?}");
    };
    let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
    assert!(keys.contains(&"badges.Empty"), "{keys:?}");
    assert!(keys.contains(&"badges.Premium"), "{keys:?}");
}

#[cfg(feature = "phone")] // FULL maps a phone with phone_e164
#[test]
fn without_a_badges_table_grant_is_a_badge_id() {
    let cfg = SyncConfig::from_toml_str(FULL).unwrap().validate().unwrap();
    assert!(cfg.is_managed(&BadgeId::from("Premium")));
    assert_eq!(cfg.badge_name(&BadgeId::from("Premium")), None);
}

#[test]
fn plans_show_badges_by_name_as_text_and_json() {
    use crate::domain::{Mapping, TenantId};
    use crate::plan::PlanMode;
    use crate::planner::{PlanInput, StateView, plan};
    let cfg = SyncConfig::from_toml_str(NAMED)
        .unwrap()
        .validate()
        .unwrap();
    let at = Utc::now();
    let email = crate::domain::Email::parse("ana@example.com").unwrap();
    let view = StateView::new(vec![
        Mapping::new(email.clone(), at)
            .with_user("u1".into())
            .with_crm(CrmRecordId::hubspot("1")),
    ]);
    let contact =
        CrmContact::new(CrmRecordId::hubspot("1"), Some(email), at).with_tag("Pago Anual");
    let tenant = TenantId::new("acme");
    let plan = plan(
        &PlanInput::new(&tenant, &cfg, &view, at),
        &[contact],
        PlanMode::Delta,
    );
    let text = plan.to_string();
    assert!(
        text.contains("+ badge Premium (b0000000-0000-4000-8000-000000000001) -> ana@example.com"),
        "{text}"
    );
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        json["badge_names"]["b0000000-0000-4000-8000-000000000001"],
        "Premium"
    );
    assert!(
        json["badge_names"]
            .get("b0000000-0000-4000-8000-000000000002")
            .is_none(),
        "only badges the plan mentions are named"
    );
}
