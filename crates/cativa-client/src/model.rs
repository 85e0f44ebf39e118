//! Request and response bodies of the Cativa API.
//!
//! Cativa serializes PascalCase (as its webhooks do); the response types also accept
//! camelCase, since the REST responses' casing is not published.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use sync_core::{BadgeId, CativaUserId, Email};

use crate::webhook::CustomerId;

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A Cativa user as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct CativaUser {
    /// The user id.
    #[serde(alias = "id", alias = "UserId", alias = "userId")]
    pub id: CativaUserId,
    /// The email (normalized).
    #[serde(alias = "email")]
    pub email: Email,
    /// First name.
    #[serde(default, alias = "firstName")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default, alias = "lastName")]
    pub last_name: Option<String>,
    /// Display name.
    #[serde(default, alias = "displayName")]
    pub display_name: Option<String>,
    /// Username.
    #[serde(default, alias = "username", alias = "userName")]
    pub username: Option<String>,
    /// The tenant, when returned.
    #[serde(default, alias = "customerId", alias = "TenantId", alias = "tenantId")]
    pub customer_id: Option<CustomerId>,
    /// Badges held, when returned.
    #[serde(default, alias = "badges", deserialize_with = "null_as_empty")]
    pub badges: Vec<BadgeId>,
}

/// `GET /social/v1/auth/me`: the user owning the API key and the tenant it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Me {
    /// The key's user.
    pub user: CativaUser,
    /// The tenant (customer) the key belongs to.
    pub customer_id: CustomerId,
}

impl Me {
    /// Reads the response leniently: the user is the body itself or its `User`/`user`
    /// object; the tenant is `CustomerId`/`customerId`/`TenantId`/`tenantId` at the top level
    /// or on the user.
    pub(crate) fn from_value(v: Value) -> Result<Self, String> {
        let customer = ["CustomerId", "customerId", "TenantId", "tenantId"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str))
            .map(CustomerId::new);
        let user_value = v
            .get("User")
            .or_else(|| v.get("user"))
            .filter(|u| u.is_object())
            .cloned()
            .unwrap_or(v);
        let user: CativaUser = serde_path_to_error::deserialize(user_value)
            .map_err(|e| format!("field {}: {}", e.path(), e.inner()))?;
        let customer_id = customer
            .or_else(|| user.customer_id.clone())
            .ok_or_else(|| "field CustomerId: missing".to_owned())?;
        Ok(Self { user, customer_id })
    }
}

/// A user to create (preview endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct NewUser {
    /// Email.
    pub email: Email,
    /// First name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Phone (E.164).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Badges to grant on creation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub badges: Vec<BadgeId>,
}

impl NewUser {
    /// A user with just an email.
    pub fn new(email: Email) -> Self {
        Self {
            email,
            first_name: None,
            last_name: None,
            phone_number: None,
            badges: Vec::new(),
        }
    }

    /// Sets the names.
    #[must_use]
    pub fn with_names(mut self, first: Option<String>, last: Option<String>) -> Self {
        self.first_name = first;
        self.last_name = last;
        self
    }
}

/// Profile fields to write on a user (preview endpoint): field name -> value.
pub type UserFields = BTreeMap<String, String>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn me_reads_pascal_camel_and_nested_shapes() {
        let shapes = [
            json!({"Id": "u1", "Email": "A@B.io", "CustomerId": "c1"}),
            json!({"id": "u1", "email": "a@b.io", "customerId": "c1"}),
            json!({"User": {"Id": "u1", "Email": "a@b.io"}, "CustomerId": "c1"}),
            json!({"user": {"userId": "u1", "email": "a@b.io", "tenantId": "c1"}}),
        ];
        for v in shapes {
            let me = Me::from_value(v.clone()).unwrap();
            assert_eq!(me.user.id.as_str(), "u1", "{v}");
            assert_eq!(me.user.email.as_str(), "a@b.io");
            assert_eq!(me.customer_id.as_str(), "c1");
        }
        let e = Me::from_value(json!({"Id": "u1", "Email": "a@b.io"})).unwrap_err();
        assert!(e.contains("CustomerId"), "{e}");
        let e =
            Me::from_value(json!({"Id": "u1", "Email": "nope", "CustomerId": "c"})).unwrap_err();
        assert!(e.contains("Email"), "{e}");
    }

    #[test]
    fn new_user_serializes_pascal_case_without_empty_fields() {
        let u = NewUser::new(Email::parse("a@b.io").unwrap()).with_names(Some("A".into()), None);
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            json!({"Email": "a@b.io", "FirstName": "A"})
        );
    }
}
