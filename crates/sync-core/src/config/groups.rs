//! Groups as lists: which community group goes to which HubSpot MANUAL list or Salesforce
//! campaign, and where the sync records the memberships it added (the `[groups]` table; off
//! unless present).

use serde::{Deserialize, Serialize};

use super::ConfigIssue;

/// The default contact property where the sync records the groups whose list membership it
/// added (HubSpot; a Salesforce org names a text field such as `Cativa_Groups__c`).
pub const DEFAULT_GROUPS_PROPERTY: &str = "cativa_groups";

/// One community group and the CRM list (HubSpot MANUAL list, Salesforce campaign) it maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GroupList {
    /// The community group's name, as the webhook listener of the group is configured with
    /// (`WebhookReceiver::with_group_automation` in the Cativa client).
    pub group: String,
    /// The HubSpot list name or the Salesforce campaign name.
    pub list: String,
}

impl GroupList {
    /// Maps `group` to `list`.
    pub fn new(group: impl Into<String>, list: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            list: list.into(),
        }
    }
}

/// The `[groups]` table: a user who joins a configured group is added to its list (HubSpot)
/// or campaign (Salesforce); a full reconcile with a known member list adds missing members
/// and removes the memberships the sync added for users who left.
///
/// The sync removes only memberships it added itself: the sink records the groups it added
/// in `provenance_property` (`;`-separated, as multiple-checkbox values are), and a member
/// the CRM owner added by hand is never removed.
///
/// ```
/// use sync_core::config::SyncConfig;
/// let config = SyncConfig::from_toml_str(r#"
///     [groups]
///     create_lists = true
///     [[groups.lists]]
///     group = "VIP"
///     list = "Cativa: VIP"
/// "#)?.validate()?;
/// let groups = config.groups().unwrap();
/// assert_eq!(groups.list_for("VIP"), Some("Cativa: VIP"));
/// assert_eq!(groups.provenance_property, "cativa_groups");
/// # Ok::<(), sync_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GroupsConfig {
    /// Create a missing list (HubSpot MANUAL list, Salesforce campaign) on first use
    /// (default true). Off: a membership for a missing list fails, saying to create it.
    #[serde(default = "default_true")]
    pub create_lists: bool,
    /// The contact property the sync owns, where it records the groups whose membership it
    /// added (default `cativa_groups`). The source must read it.
    #[serde(default = "default_property")]
    pub provenance_property: String,
    /// The groups and their lists.
    #[serde(default)]
    pub lists: Vec<GroupList>,
}

fn default_true() -> bool {
    true
}

fn default_property() -> String {
    DEFAULT_GROUPS_PROPERTY.to_owned()
}

impl Default for GroupsConfig {
    fn default() -> Self {
        Self {
            create_lists: true,
            provenance_property: default_property(),
            lists: Vec::new(),
        }
    }
}

impl GroupsConfig {
    /// Maps `group` to `list` (builder style).
    #[must_use]
    pub fn with_list(mut self, group: impl Into<String>, list: impl Into<String>) -> Self {
        self.lists.push(GroupList::new(group, list));
        self
    }

    /// Records provenance in `property` (builder style).
    #[must_use]
    pub fn with_provenance_property(mut self, property: impl Into<String>) -> Self {
        self.provenance_property = property.into();
        self
    }

    /// The list a group maps to; `None` for a group not configured. Names compare after
    /// trimming, case-insensitively, as people type them.
    pub fn list_for(&self, group: &str) -> Option<&str> {
        let group = group.trim();
        self.lists
            .iter()
            .find(|l| l.group.trim().eq_ignore_ascii_case(group))
            .map(|l| l.list.as_str())
    }

    pub(super) fn validate(&self, issues: &mut Vec<ConfigIssue>) {
        if self.provenance_property.trim().is_empty() {
            issues.push(ConfigIssue::new(
                "groups.provenance_property",
                "must name a CRM contact property where the sync records the groups it added",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, l) in self.lists.iter().enumerate() {
            if l.group.trim().is_empty() {
                issues.push(ConfigIssue::new(
                    format!("groups.lists[{i}].group"),
                    "must name the community group",
                ));
            } else if l.group.contains(';') {
                issues.push(ConfigIssue::new(
                    format!("groups.lists[{i}].group"),
                    "must not contain ';', which separates groups in the provenance property",
                ));
            } else if !seen.insert(l.group.trim().to_lowercase()) {
                issues.push(ConfigIssue::new(
                    format!("groups.lists[{i}].group"),
                    format!(
                        "group {:?} is mapped twice: map each group to one list",
                        l.group
                    ),
                ));
            }
            if l.list.trim().is_empty() {
                issues.push(ConfigIssue::new(
                    format!("groups.lists[{i}].list"),
                    "must name the HubSpot list or Salesforce campaign",
                ));
            }
        }
    }
}

/// The groups recorded in a provenance value (`VIP;Speakers`): trimmed, blanks dropped.
pub fn parse_group_provenance(raw: &str) -> Vec<String> {
    raw.split(';')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `raw` with `group` added (`add`) or removed, in the same `;`-separated form; groups
/// compare case-insensitively and the others are kept as they are.
pub fn edit_group_provenance(raw: &str, group: &str, add: bool) -> String {
    let mut groups: Vec<String> = parse_group_provenance(raw)
        .into_iter()
        .filter(|g| !g.eq_ignore_ascii_case(group.trim()))
        .collect();
    if add {
        groups.push(group.trim().to_owned());
    }
    groups.join(";")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SyncConfig;

    #[test]
    fn defaults_apply_and_lists_are_found_by_group() {
        let config = SyncConfig::from_toml_str(
            r#"
            [groups]
            [[groups.lists]]
            group = "VIP"
            list = "Cativa: VIP"
            "#,
        )
        .unwrap()
        .validate()
        .unwrap();
        let groups = config.groups().unwrap();
        assert!(groups.create_lists);
        assert_eq!(groups.provenance_property, DEFAULT_GROUPS_PROPERTY);
        assert_eq!(groups.list_for(" vip "), Some("Cativa: VIP"));
        assert_eq!(groups.list_for("Other"), None);
        assert!(config.crm_properties().contains("cativa_groups"));
        assert!(SyncConfig::default().validate().unwrap().groups().is_none());
    }

    #[test]
    fn duplicate_and_blank_names_are_refused_with_their_keys() {
        let err = SyncConfig::from_toml_str(
            r#"
            [groups]
            provenance_property = " "
            lists = [
                { group = "VIP", list = "A" },
                { group = "vip", list = "B" },
                { group = "", list = "C" },
                { group = "Speakers", list = "" },
            ]
            "#,
        )
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
        for key in [
            "groups.provenance_property",
            "groups.lists[1].group",
            "groups.lists[2].group",
            "groups.lists[3].list",
        ] {
            assert!(err.contains(key), "{key} missing from {err}");
        }
        assert!(!err.contains("groups.lists[0]"), "{err}");
    }

    #[test]
    fn provenance_values_are_edited_without_touching_other_groups() {
        assert_eq!(edit_group_provenance("", "VIP", true), "VIP");
        assert_eq!(
            edit_group_provenance("Speakers", "VIP", true),
            "Speakers;VIP"
        );
        assert_eq!(
            edit_group_provenance("Speakers;VIP", "vip", true),
            "Speakers;vip"
        );
        assert_eq!(
            edit_group_provenance("Speakers; VIP", "VIP", false),
            "Speakers"
        );
        assert_eq!(parse_group_provenance(" a ;; b"), vec!["a", "b"]);
    }
}
