//! Identifier newtypes, so a badge id is never passed where a user id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a raw identifier. Surrounding whitespace is trimmed.
            pub fn new(raw: impl Into<String>) -> Self {
                let raw = raw.into();
                let trimmed = raw.trim();
                if trimmed.len() == raw.len() {
                    Self(raw)
                } else {
                    Self(trimmed.to_owned())
                }
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(raw: &str) -> Self {
                Self::new(raw)
            }
        }

        impl From<String> for $name {
            fn from(raw: String) -> Self {
                Self::new(raw)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A Cativa tenant (the `CustomerId` of webhook payloads). Every store row and every port
    /// call is scoped by it.
    TenantId
);
string_id!(
    /// A Cativa community user id (`User.Id`, a GUID).
    CativaUserId
);
string_id!(
    /// A community badge. Cativa badge ids are GUIDs; a configuration may also use the badge's
    /// name when the sink resolves names (the bulk-import sheet does).
    BadgeId
);
string_id!(
    /// The id of a badge rule in the configuration. It is recorded as the provenance of every
    /// badge the sync grants.
    RuleId
);

/// Which CRM a record id belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CrmKind {
    /// HubSpot (record ids are numeric strings).
    Hubspot,
    /// Salesforce (record ids are 15- or 18-character ids).
    Salesforce,
    /// Any other CRM, named by the connector.
    Other(String),
}

impl CrmKind {
    /// A short stable name, used in idempotency keys and store rows.
    pub fn as_str(&self) -> &str {
        match self {
            CrmKind::Hubspot => "hubspot",
            CrmKind::Salesforce => "salesforce",
            CrmKind::Other(name) => name,
        }
    }

    /// Parses the name written by [`CrmKind::as_str`].
    pub fn from_name(name: &str) -> Self {
        match name {
            "hubspot" => CrmKind::Hubspot,
            "salesforce" => CrmKind::Salesforce,
            other => CrmKind::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for CrmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CRM record: which CRM, plus its id there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CrmRecordId {
    /// The CRM the id belongs to.
    pub crm: CrmKind,
    /// The record id in that CRM.
    pub id: String,
}

impl CrmRecordId {
    /// Builds a record id.
    pub fn new(crm: CrmKind, id: impl Into<String>) -> Self {
        Self { crm, id: id.into() }
    }

    /// A HubSpot contact id.
    pub fn hubspot(id: impl Into<String>) -> Self {
        Self::new(CrmKind::Hubspot, id)
    }

    /// A Salesforce record id.
    pub fn salesforce(id: impl Into<String>) -> Self {
        Self::new(CrmKind::Salesforce, id)
    }
}

impl fmt::Display for CrmRecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.crm, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_trim_and_display() {
        assert_eq!(TenantId::new(" t1 ").as_str(), "t1");
        assert_eq!(CrmRecordId::hubspot("42").to_string(), "hubspot:42");
        assert_eq!(CrmKind::from_name("salesforce"), CrmKind::Salesforce);
        assert_eq!(CrmKind::from_name("pipedrive").as_str(), "pipedrive");
    }

    #[test]
    fn crm_record_id_serializes_as_struct() {
        let id = CrmRecordId::salesforce("003xx");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, r#"{"crm":"salesforce","id":"003xx"}"#);
        assert_eq!(serde_json::from_str::<CrmRecordId>(&json).unwrap(), id);
    }
}
