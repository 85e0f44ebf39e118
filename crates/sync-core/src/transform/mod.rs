//! Value transforms applied by field mappings: trim, lowercase, E.164 phones, value maps,
//! and name split/join.
//!
//! A chain of transforms is written in the community -> CRM direction. Going CRM ->
//! community, the `name` transform joins first, then the other transforms run in order, and a
//! value map is read backwards.

mod name;
mod phone;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use name::{join_name, split_name};
#[cfg(feature = "phone")]
pub use phone::normalize_phone;
pub use phone::{PhoneRegion, parse_region};

/// One transform step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Transform {
    /// Trim surrounding whitespace and collapse inner runs of whitespace to one space.
    Trim,
    /// Lowercase.
    Lowercase,
    /// Uppercase.
    Uppercase,
    /// Normalize a phone number to E.164, reading national numbers in the configuration's
    /// `default_phone_region`. Needs the `phone` feature: without it a configuration using
    /// this transform does not validate.
    PhoneE164,
    /// Map values community -> CRM (and back, inverted). Unmapped values pass through
    /// unchanged. TOML: `{ value_map = { gold = "Gold Member", silver = "Silver" } }`.
    ValueMap(BTreeMap<String, String>),
    /// Split a full name into the two CRM properties of the mapping (first, last); join them
    /// going back. Needs `crm = ["firstname", "lastname"]`.
    Name,
}

/// Why a transform could not produce a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransformError {
    /// The value is not a phone number the region rules accept.
    #[error(
        "{value:?} is not a valid phone number ({reason}): fix it in the source or set default_phone_region"
    )]
    InvalidPhone {
        /// The offending value.
        value: String,
        /// What the parser said.
        reason: String,
    },
    /// A `phone_e164` transform ran in a build without the `phone` feature.
    #[error(
        "the phone_e164 transform needs the `phone` feature: enable it (cativa-crm-sync features = [\"phone\"])"
    )]
    PhoneUnsupported,
    /// The mapping has the wrong number of CRM properties for its transforms.
    #[error("the mapping needs {expected} CRM properties for its transforms, it has {actual}")]
    Arity {
        /// Needed.
        expected: usize,
        /// Configured.
        actual: usize,
    },
}

#[cfg(feature = "phone")]
fn phone_e164(value: &str, ctx: &TransformContext) -> Result<String, TransformError> {
    normalize_phone(value, ctx.default_region)
}

#[cfg(not(feature = "phone"))]
fn phone_e164(_value: &str, _ctx: &TransformContext) -> Result<String, TransformError> {
    Err(TransformError::PhoneUnsupported)
}

/// Context a transform chain needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransformContext {
    /// Region for national phone numbers.
    pub default_region: Option<PhoneRegion>,
}

fn apply_scalar(
    step: &Transform,
    value: String,
    ctx: &TransformContext,
    to_crm: bool,
) -> Result<String, TransformError> {
    Ok(match step {
        Transform::Trim => {
            if value.trim().len() == value.len() && !value.contains("  ") {
                value
            } else {
                value.split_whitespace().collect::<Vec<_>>().join(" ")
            }
        }
        Transform::Lowercase => value.to_lowercase(),
        Transform::Uppercase => value.to_uppercase(),
        Transform::PhoneE164 => {
            if value.trim().is_empty() {
                value
            } else {
                phone_e164(&value, ctx)?
            }
        }
        Transform::ValueMap(map) => {
            if to_crm {
                map.get(&value).cloned().unwrap_or(value)
            } else {
                map.iter()
                    .find(|(_, crm)| **crm == value)
                    .map(|(community, _)| community.clone())
                    .unwrap_or(value)
            }
        }
        Transform::Name => value,
    })
}

/// Whether the chain contains the `name` transform (two CRM properties).
pub fn has_name(chain: &[Transform]) -> bool {
    chain.iter().any(|t| matches!(t, Transform::Name))
}

/// Runs the chain community -> CRM: one output value per CRM property of the mapping.
///
/// ```
/// use sync_core::transform::{Transform, TransformContext, to_crm};
/// let chain = [Transform::Trim, Transform::Name];
/// let out = to_crm(&chain, " Mary Jane  Watson ", &TransformContext::default()).unwrap();
/// assert_eq!(out, vec!["Mary Jane".to_string(), "Watson".to_string()]);
/// ```
pub fn to_crm(
    chain: &[Transform],
    value: &str,
    ctx: &TransformContext,
) -> Result<Vec<String>, TransformError> {
    let mut v = value.to_owned();
    for step in chain.iter().filter(|t| !matches!(t, Transform::Name)) {
        v = apply_scalar(step, v, ctx, true)?;
    }
    if has_name(chain) {
        let (first, last) = split_name(&v);
        Ok(vec![first, last])
    } else {
        Ok(vec![v])
    }
}

/// Runs the chain CRM -> community: joins the CRM values (for `name`) and applies the other
/// steps in order, value maps inverted.
pub fn from_crm(
    chain: &[Transform],
    values: &[&str],
    ctx: &TransformContext,
) -> Result<String, TransformError> {
    let expected = if has_name(chain) { 2 } else { 1 };
    if values.len() != expected {
        return Err(TransformError::Arity {
            expected,
            actual: values.len(),
        });
    }
    let mut v = if expected == 2 {
        join_name(values[0], values[1])
    } else {
        values[0].to_owned()
    };
    for step in chain.iter().filter(|t| !matches!(t, Transform::Name)) {
        v = apply_scalar(step, v, ctx, false)?;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> TransformContext {
        TransformContext {
            default_region: parse_region("BR"),
        }
    }

    #[test]
    fn trim_collapses_inner_whitespace() {
        assert_eq!(
            to_crm(&[Transform::Trim], "  a   b ", &ctx()).unwrap(),
            vec!["a b"]
        );
        assert_eq!(to_crm(&[Transform::Trim], "", &ctx()).unwrap(), vec![""]);
    }

    #[test]
    fn case_transforms() {
        assert_eq!(
            to_crm(&[Transform::Lowercase], "ÁbC", &ctx()).unwrap(),
            vec!["ábc"]
        );
        assert_eq!(
            to_crm(&[Transform::Uppercase], "ábc", &ctx()).unwrap(),
            vec!["ÁBC"]
        );
    }

    #[cfg(not(feature = "phone"))]
    #[test]
    fn phone_without_the_feature_is_an_error_not_a_pass_through() {
        let chain = [Transform::PhoneE164];
        assert_eq!(
            to_crm(&chain, "(11) 98765-4321", &ctx()),
            Err(TransformError::PhoneUnsupported)
        );
    }

    #[cfg(feature = "phone")]
    #[test]
    fn phone_in_both_directions() {
        let chain = [Transform::PhoneE164];
        assert_eq!(
            to_crm(&chain, "(11) 98765-4321", &ctx()).unwrap(),
            vec!["+5511987654321"]
        );
        assert_eq!(
            from_crm(&chain, &["+55 11 98765-4321"], &ctx()).unwrap(),
            "+5511987654321"
        );
        assert!(to_crm(&chain, "n/a", &ctx()).is_err());
        assert_eq!(to_crm(&chain, "  ", &ctx()).unwrap(), vec!["  "]);
    }

    #[test]
    fn value_map_forward_backward_and_unmapped() {
        let map: BTreeMap<_, _> = [("gold".to_owned(), "Gold Member".to_owned())].into();
        let chain = [Transform::ValueMap(map)];
        assert_eq!(to_crm(&chain, "gold", &ctx()).unwrap(), vec!["Gold Member"]);
        assert_eq!(from_crm(&chain, &["Gold Member"], &ctx()).unwrap(), "gold");
        assert_eq!(to_crm(&chain, "bronze", &ctx()).unwrap(), vec!["bronze"]);
        assert_eq!(from_crm(&chain, &["Other"], &ctx()).unwrap(), "Other");
    }

    #[test]
    fn name_split_and_join() {
        let chain = [Transform::Name];
        assert_eq!(
            to_crm(&chain, "Jane Smith", &ctx()).unwrap(),
            vec!["Jane", "Smith"]
        );
        assert_eq!(
            from_crm(&chain, &["Mary Jane", "Watson"], &ctx()).unwrap(),
            "Mary Jane Watson"
        );
        assert_eq!(from_crm(&chain, &["Cher", ""], &ctx()).unwrap(), "Cher");
        assert_eq!(
            from_crm(&chain, &["only one"], &ctx()),
            Err(TransformError::Arity {
                expected: 2,
                actual: 1
            })
        );
    }

    #[test]
    fn chains_run_in_order() {
        let chain = [Transform::Trim, Transform::Lowercase];
        assert_eq!(
            to_crm(&chain, "  JANE  DOE ", &ctx()).unwrap(),
            vec!["jane doe"]
        );
    }
}
