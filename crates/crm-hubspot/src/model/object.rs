//! CRM objects as HubSpot returns them, and cursor pages of them.

use std::collections::BTreeMap;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// A CRM object (`SimplePublicObject`): a contact, note, ... HubSpot sends property values
/// as strings or null; nulls are dropped here (an absent property and a null one mean the
/// same to the sync) and stray numbers or booleans are kept as their text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HubSpotObject {
    /// The record id (a numeric string).
    pub id: String,
    /// Internal property name -> value (non-null values only).
    #[serde(default, deserialize_with = "non_null_properties")]
    pub properties: BTreeMap<String, String>,
    /// ISO 8601 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// ISO 8601 last update time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Whether the record is archived.
    #[serde(default)]
    pub archived: bool,
    /// When it was archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<String>,
    /// Echo of the input's trace id (batch writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_write_trace_id: Option<String>,
    /// Batch upsert: whether the record was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<bool>,
}

impl HubSpotObject {
    /// A property value, `None` when absent or null.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }
}

/// The `after` cursor of the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NextPage {
    /// Pass it as `after` to get the next page.
    pub after: String,
    /// HubSpot's link to the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// Paging information; `next` is absent on the last page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Paging {
    /// The next page, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<NextPage>,
}

/// A page of results (list, search, memberships).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Page<T> {
    /// The results.
    #[serde(default = "Vec::new")]
    pub results: Vec<T>,
    /// Paging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paging: Option<Paging>,
    /// Total matches (search).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

impl<T> Page<T> {
    /// The cursor of the next page; `None` on the last page.
    pub fn next_after(&self) -> Option<&str> {
        self.paging
            .as_ref()?
            .next
            .as_ref()
            .map(|n| n.after.as_str())
    }
}

/// A property value: a string, or a number or boolean kept as text, or null.
struct Lenient(Option<String>);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lenient;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a property value (string, number, boolean or null)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Lenient, E> {
                Ok(Lenient(Some(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Lenient, E> {
                Ok(Lenient(Some(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Lenient, E> {
                Ok(Lenient(Some(v.to_string())))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Lenient, E> {
                Ok(Lenient(Some(v.to_string())))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Lenient, E> {
                Ok(Lenient(Some(v.to_string())))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Lenient, E> {
                Ok(Lenient(Some(v.to_string())))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
        }
        d.deserialize_any(V)
    }
}

fn non_null_properties<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of property values")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(k) = m.next_key::<String>()? {
                if let Lenient(Some(v)) = m.next_value()? {
                    out.insert(k, v);
                }
            }
            Ok(out)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_dropped_scalars_kept_as_text() {
        let o: HubSpotObject = serde_json::from_str(
            r#"{"id":"1","properties":{"a":"x","b":null,"c":5,"d":true,"e":1.5},"url":"u"}"#,
        )
        .unwrap();
        assert_eq!(o.property("a"), Some("x"));
        assert_eq!(o.property("b"), None);
        assert_eq!(o.property("c"), Some("5"));
        assert_eq!(o.property("d"), Some("true"));
        assert_eq!(o.property("e"), Some("1.5"));
        let empty: HubSpotObject = serde_json::from_str(r#"{"id":"2","properties":null}"#).unwrap();
        assert!(empty.properties.is_empty());
    }
}
