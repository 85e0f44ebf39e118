//! The CRM search request (`POST /crm/v3/objects/contacts/search`).

use serde::{Deserialize, Serialize};

/// Largest search page HubSpot serves.
pub const MAX_SEARCH_PAGE: u32 = 200;
/// HubSpot stops a search query at this many results; paging past it gives 400.
pub const SEARCH_RESULT_CAP: u64 = 10_000;

/// A filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Operator {
    /// Equal.
    Eq,
    /// Not equal.
    Neq,
    /// Less than.
    Lt,
    /// Less or equal.
    Lte,
    /// Greater than.
    Gt,
    /// Greater or equal.
    Gte,
    /// Between `value` and `highValue`.
    Between,
    /// One of `values` (lowercase for string properties).
    In,
    /// None of `values`.
    NotIn,
    /// The property has a value.
    HasProperty,
    /// The property has no value.
    NotHasProperty,
    /// Contains a token (`*` wildcard allowed).
    ContainsToken,
    /// Does not contain a token.
    NotContainsToken,
}

/// One filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Filter {
    /// The property.
    pub property_name: String,
    /// The operator.
    pub operator: Operator,
    /// The value (dates as epoch-millisecond strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Upper bound for `BETWEEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_value: Option<String>,
    /// Values for `IN` / `NOT_IN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

impl Filter {
    /// `property operator value`.
    pub fn new(property: impl Into<String>, operator: Operator, value: impl Into<String>) -> Self {
        Self {
            property_name: property.into(),
            operator,
            value: Some(value.into()),
            high_value: None,
            values: None,
        }
    }

    /// `property HAS_PROPERTY` (or another operator without a value).
    pub fn unary(property: impl Into<String>, operator: Operator) -> Self {
        Self {
            property_name: property.into(),
            operator,
            value: None,
            high_value: None,
            values: None,
        }
    }

    /// `property IN values`.
    pub fn in_values(property: impl Into<String>, values: Vec<String>) -> Self {
        Self {
            property_name: property.into(),
            operator: Operator::In,
            value: None,
            high_value: None,
            values: Some(values),
        }
    }
}

/// Filters ANDed together; groups are ORed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FilterGroup {
    /// The filters.
    pub filters: Vec<Filter>,
}

impl FilterGroup {
    /// A group of filters.
    pub fn new(filters: Vec<Filter>) -> Self {
        Self { filters }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Direction {
    /// Oldest / smallest first.
    Ascending,
    /// Newest / largest first.
    Descending,
}

/// The one sort a search allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Sort {
    /// The property.
    pub property_name: String,
    /// The direction.
    pub direction: Direction,
}

/// A search request body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SearchRequest {
    /// Up to 5 groups, 6 filters each, 18 in total.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter_groups: Vec<FilterGroup>,
    /// At most one sort.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sorts: Vec<Sort>,
    /// Properties to return.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<String>,
    /// Page size (max 200).
    pub limit: u32,
    /// Offset (an integer string), for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl SearchRequest {
    /// A request with these filter groups and page size (capped at 200).
    pub fn new(filter_groups: Vec<FilterGroup>, limit: u32) -> Self {
        Self {
            filter_groups,
            sorts: Vec::new(),
            properties: Vec::new(),
            limit: limit.clamp(1, MAX_SEARCH_PAGE),
            after: None,
        }
    }

    /// Sets the single sort (replacing any other: HubSpot allows one).
    #[must_use]
    pub fn sorted_by(mut self, property: impl Into<String>, direction: Direction) -> Self {
        self.sorts = vec![Sort {
            property_name: property.into(),
            direction,
        }];
        self
    }

    /// Sets the properties to return.
    #[must_use]
    pub fn with_properties(mut self, properties: Vec<String>) -> Self {
        self.properties = properties;
        self
    }

    /// Checks HubSpot's documented limits so a bad query costs no call.
    pub fn validate(&self) -> Result<(), String> {
        if self.filter_groups.len() > 5 {
            return Err(format!(
                "{} filter groups; HubSpot allows 5",
                self.filter_groups.len()
            ));
        }
        if let Some(g) = self.filter_groups.iter().find(|g| g.filters.len() > 6) {
            return Err(format!(
                "{} filters in one group; HubSpot allows 6",
                g.filters.len()
            ));
        }
        let total: usize = self.filter_groups.iter().map(|g| g.filters.len()).sum();
        if total > 18 {
            return Err(format!("{total} filters in total; HubSpot allows 18"));
        }
        if self.sorts.len() > 1 {
            return Err("HubSpot allows only one sort per search".into());
        }
        if self.limit == 0 || self.limit > MAX_SEARCH_PAGE {
            return Err(format!("limit {} outside 1..=200", self.limit));
        }
        Ok(())
    }
}
