//! A small SOQL builder that cannot be injected into.
//!
//! Values are rendered as literals by [`Value`]: strings are quoted and escaped with the
//! escape sequences SOQL defines (`\'`, `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`), date-times
//! are unquoted UTC literals (`2026-01-01T00:00:00Z`), so a value taken from a CRM record or a
//! webhook can never end the literal and add a clause. Field and object names are checked
//! against the identifier grammar (letters, digits, `_`, and `.` for relationship paths).
//!
//! ```
//! use crm_salesforce::soql::{Condition, Soql, Value};
//!
//! let q = Soql::select(["Id", "Email"])
//!     .from("Contact")
//!     .filter(Condition::eq("Email", Value::from("o'brien@example.com")))
//!     .limit(10)
//!     .build()?;
//! assert_eq!(q, r"SELECT Id, Email FROM Contact WHERE Email = 'o\'brien@example.com' LIMIT 10");
//! # Ok::<(), crm_salesforce::soql::SoqlError>(())
//! ```

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// Why a query could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SoqlError {
    /// A field or object name is not a SOQL identifier.
    #[error(
        "{0:?} is not a valid SOQL field or object name: use the API name (letters, digits, '_', '.')"
    )]
    InvalidIdentifier(String),
    /// The query selects no field.
    #[error("a SOQL query must select at least one field")]
    NoFields,
    /// The query has no `FROM` object.
    #[error("a SOQL query needs an object: call `.from(\"Contact\")`")]
    NoObject,
    /// An `IN` list is empty (SOQL rejects `IN ()`).
    #[error("the IN list for {0} is empty: skip the query instead")]
    EmptyInList(String),
}

/// Whether `name` is a SOQL identifier or relationship path (`Account.Name`, `Cativa_Member_Id__c`).
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn check_identifier(name: &str) -> Result<(), SoqlError> {
    if is_identifier(name) {
        Ok(())
    } else {
        Err(SoqlError::InvalidIdentifier(name.to_owned()))
    }
}

/// Escapes `raw` for use inside a single-quoted SOQL string literal (without the quotes).
pub fn escape_string(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 2);
    push_escaped(&mut out, raw);
    out
}

fn push_escaped(out: &mut String, raw: &str) {
    for c in raw.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            other => out.push(other),
        }
    }
}

/// A quoted, escaped SOQL string literal: `'it\'s'`.
pub fn string_literal(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 2);
    out.push('\'');
    push_escaped(&mut out, raw);
    out.push('\'');
    out
}

/// A SOQL dateTime literal in UTC, unquoted, to the second: `2026-01-01T00:00:00Z`.
///
/// Sub-second parts are truncated; callers that need "at or after" semantics must compare
/// with `>=` on the truncated value (as [`SalesforceSource::delta_soql`](crate::SalesforceSource::delta_soql) does).
pub fn datetime_literal(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A literal value in a condition.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A string, quoted and escaped.
    String(String),
    /// A dateTime, rendered unquoted in UTC to the second.
    DateTime(DateTime<Utc>),
    /// A date, rendered `YYYY-MM-DD`.
    Date(NaiveDate),
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// `null`.
    Null,
}

impl Value {
    fn render(&self, out: &mut String) {
        match self {
            Value::String(s) => {
                out.push('\'');
                push_escaped(out, s);
                out.push('\'');
            }
            Value::DateTime(at) => out.push_str(&datetime_literal(*at)),
            Value::Date(d) => {
                let _ = write!(out, "{}", d.format("%Y-%m-%d"));
            }
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Null => out.push_str("null"),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<DateTime<Utc>> for Value {
    fn from(at: DateTime<Utc>) -> Self {
        Value::DateTime(at)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `LIKE` (the value's `%` and `_` are wildcards).
    Like,
    /// `INCLUDES` (multi-select picklists).
    Includes,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Like => "LIKE",
            Op::Includes => "INCLUDES",
        }
    }
}

/// A `WHERE` condition.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Condition {
    /// `field op value`.
    Compare {
        /// The field.
        field: String,
        /// The operator.
        op: Op,
        /// The value.
        value: Value,
    },
    /// `field IN (v1, v2, ...)`.
    In {
        /// The field.
        field: String,
        /// The values (at least one).
        values: Vec<Value>,
    },
    /// All of these.
    And(Vec<Condition>),
    /// Any of these.
    Or(Vec<Condition>),
    /// `NOT (...)`.
    Not(Box<Condition>),
    /// A predicate written by the integrator in configuration, inserted verbatim in
    /// parentheses. **Trusted input only**: never build one from record or webhook data.
    Raw(String),
}

impl Condition {
    /// `field = value`.
    pub fn eq(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::cmp(field, Op::Eq, value)
    }

    /// `field op value`.
    pub fn cmp(field: impl Into<String>, op: Op, value: impl Into<Value>) -> Self {
        Condition::Compare {
            field: field.into(),
            op,
            value: value.into(),
        }
    }

    /// `field IN (values)`.
    pub fn in_list<V: Into<Value>>(
        field: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        Condition::In {
            field: field.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    fn render(&self, out: &mut String) -> Result<(), SoqlError> {
        match self {
            Condition::Compare { field, op, value } => {
                check_identifier(field)?;
                out.push_str(field);
                out.push(' ');
                out.push_str(op.as_str());
                out.push(' ');
                if *op == Op::Includes {
                    out.push('(');
                    value.render(out);
                    out.push(')');
                } else {
                    value.render(out);
                }
            }
            Condition::In { field, values } => {
                check_identifier(field)?;
                if values.is_empty() {
                    return Err(SoqlError::EmptyInList(field.clone()));
                }
                out.push_str(field);
                out.push_str(" IN (");
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.render(out);
                }
                out.push(')');
            }
            Condition::And(parts) => render_joined(out, parts, " AND ")?,
            Condition::Or(parts) => render_joined(out, parts, " OR ")?,
            Condition::Not(inner) => {
                out.push_str("NOT (");
                inner.render(out)?;
                out.push(')');
            }
            Condition::Raw(text) => {
                out.push('(');
                out.push_str(text);
                out.push(')');
            }
        }
        Ok(())
    }
}

fn render_joined(out: &mut String, parts: &[Condition], sep: &str) -> Result<(), SoqlError> {
    match parts {
        [] => out.push_str(if sep == " AND " {
            "Id != null"
        } else {
            "Id = null"
        }),
        [one] => one.render(out)?,
        many => {
            for (i, part) in many.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                let nested = matches!(part, Condition::And(_) | Condition::Or(_));
                if nested {
                    out.push('(');
                }
                part.render(out)?;
                if nested {
                    out.push(')');
                }
            }
        }
    }
    Ok(())
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// A `SELECT` query under construction. [`Soql::build`] validates names and renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct Soql {
    fields: Vec<String>,
    object: Option<String>,
    filter: Option<Condition>,
    order_by: Vec<(String, Order)>,
    limit: Option<u32>,
}

impl Soql {
    /// Starts `SELECT fields`. Duplicate names are dropped (SOQL rejects them).
    pub fn select<S: Into<String>>(fields: impl IntoIterator<Item = S>) -> Self {
        let mut unique: Vec<String> = Vec::new();
        for f in fields {
            let f = f.into();
            if !unique.iter().any(|u| u.eq_ignore_ascii_case(&f)) {
                unique.push(f);
            }
        }
        Self {
            fields: unique,
            object: None,
            filter: None,
            order_by: Vec::new(),
            limit: None,
        }
    }

    /// `FROM object`.
    pub fn from(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }

    /// `WHERE condition` (a second call ANDs the conditions).
    pub fn filter(mut self, condition: Condition) -> Self {
        self.filter = Some(match self.filter.take() {
            None => condition,
            Some(Condition::And(mut parts)) => {
                parts.push(condition);
                Condition::And(parts)
            }
            Some(prev) => Condition::And(vec![prev, condition]),
        });
        self
    }

    /// Adds an `ORDER BY` key.
    pub fn order_by(mut self, field: impl Into<String>, order: Order) -> Self {
        self.order_by.push((field.into(), order));
        self
    }

    /// `LIMIT n`.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }

    /// Renders the query text.
    pub fn build(&self) -> Result<String, SoqlError> {
        if self.fields.is_empty() {
            return Err(SoqlError::NoFields);
        }
        let object = self.object.as_deref().ok_or(SoqlError::NoObject)?;
        check_identifier(object)?;
        let mut out = String::with_capacity(128);
        out.push_str("SELECT ");
        for (i, f) in self.fields.iter().enumerate() {
            check_identifier(f)?;
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(f);
        }
        out.push_str(" FROM ");
        out.push_str(object);
        if let Some(filter) = &self.filter {
            out.push_str(" WHERE ");
            filter.render(&mut out)?;
        }
        for (i, (field, order)) in self.order_by.iter().enumerate() {
            check_identifier(field)?;
            out.push_str(if i == 0 { " ORDER BY " } else { ", " });
            out.push_str(field);
            if *order == Order::Desc {
                out.push_str(" DESC");
            }
        }
        if let Some(n) = self.limit {
            let _ = write!(out, " LIMIT {n}");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn escapes_quotes_backslashes_and_control_characters() {
        assert_eq!(escape_string("o'brien"), r"o\'brien");
        assert_eq!(escape_string(r"back\slash"), r"back\\slash");
        assert_eq!(escape_string("say \"hi\""), r#"say \"hi\""#);
        assert_eq!(escape_string("a\nb\rc\td\u{8}e\u{c}f"), r"a\nb\rc\td\be\ff");
        assert_eq!(escape_string("ünïcødé ✓"), "ünïcødé ✓");
    }

    #[test]
    fn injection_attempts_stay_inside_the_literal() {
        let attacks = [
            "x' OR Name != '",
            "x\\' OR Id != null OR Name = '",
            "x\\\\' OR Id != null --",
            "') OR (Id != null",
            "x'\nOR Id != null",
        ];
        for attack in attacks {
            let lit = string_literal(attack);
            // Walk the literal as SOQL's lexer would: it must end exactly at the last char.
            let chars: Vec<char> = lit.chars().collect();
            assert_eq!(chars[0], '\'');
            let mut i = 1;
            let mut decoded = String::new();
            let mut closed_at = None;
            while i < chars.len() {
                match chars[i] {
                    '\\' => {
                        let next = chars[i + 1];
                        decoded.push(match next {
                            'n' => '\n',
                            'r' => '\r',
                            't' => '\t',
                            'b' => '\u{8}',
                            'f' => '\u{c}',
                            other => other,
                        });
                        i += 2;
                    }
                    '\'' => {
                        closed_at = Some(i);
                        break;
                    }
                    c => {
                        decoded.push(c);
                        i += 1;
                    }
                }
            }
            assert_eq!(closed_at, Some(chars.len() - 1), "literal {lit} ends early");
            assert_eq!(decoded, attack, "round trip of {attack:?}");
            assert!(!lit.contains('\n'), "raw newline in {lit}");
        }
    }

    #[test]
    fn datetime_literals_are_unquoted_utc_seconds() {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
            + chrono::Duration::milliseconds(678);
        assert_eq!(datetime_literal(at), "2026-01-02T03:04:05Z");
        let q = Soql::select(["Id"])
            .from("Contact")
            .filter(Condition::cmp("SystemModstamp", Op::Gt, at))
            .build()
            .unwrap();
        assert_eq!(
            q,
            "SELECT Id FROM Contact WHERE SystemModstamp > 2026-01-02T03:04:05Z"
        );
    }

    #[test]
    fn in_lists_and_nested_conditions() {
        let q = Soql::select(["Id", "Email", "id"])
            .from("Contact")
            .filter(Condition::in_list("Email", ["a@x.com", "b'c@x.com"]))
            .filter(Condition::Or(vec![
                Condition::eq("HasOptedOutOfEmail", false),
                Condition::Not(Box::new(Condition::eq("LeadSource", Value::Null))),
            ]))
            .order_by("SystemModstamp", Order::Asc)
            .order_by("Id", Order::Desc)
            .limit(200)
            .build()
            .unwrap();
        assert_eq!(
            q,
            "SELECT Id, Email FROM Contact WHERE Email IN ('a@x.com', 'b\\'c@x.com') AND \
             (HasOptedOutOfEmail = false OR NOT (LeadSource = null)) ORDER BY SystemModstamp, Id DESC LIMIT 200"
        );
    }

    #[test]
    fn includes_dates_ints_and_raw() {
        let q = Soql::select(["Id"])
            .from("Lead")
            .filter(Condition::cmp("Tags__c", Op::Includes, "Pago Anual"))
            .filter(Condition::cmp("NumberOfEmployees", Op::Ge, 10i64))
            .filter(Condition::cmp(
                "Birthdate",
                Op::Lt,
                Value::Date(NaiveDate::from_ymd_opt(2000, 1, 31).unwrap()),
            ))
            .filter(Condition::Raw("Rating = 'Hot'".into()))
            .build()
            .unwrap();
        assert_eq!(
            q,
            "SELECT Id FROM Lead WHERE Tags__c INCLUDES ('Pago Anual') AND NumberOfEmployees >= 10 AND \
             Birthdate < 2000-01-31 AND (Rating = 'Hot')"
        );
    }

    #[test]
    fn rejects_bad_identifiers_and_empty_lists() {
        let bad = Soql::select(["Id, (SELECT Id FROM Cases)"])
            .from("Contact")
            .build();
        assert!(matches!(bad, Err(SoqlError::InvalidIdentifier(_))));
        let bad_field = Soql::select(["Id"])
            .from("Contact")
            .filter(Condition::eq("Email = '' OR Id", "x"))
            .build();
        assert!(matches!(bad_field, Err(SoqlError::InvalidIdentifier(_))));
        assert!(matches!(
            Soql::select(["Id"]).from("Contact WHERE").build(),
            Err(SoqlError::InvalidIdentifier(_))
        ));
        assert_eq!(
            Soql::select(["Id"])
                .from("Contact")
                .filter(Condition::in_list::<&str>("Id", []))
                .build(),
            Err(SoqlError::EmptyInList("Id".into()))
        );
        assert_eq!(
            Soql::select(Vec::<String>::new()).from("Contact").build(),
            Err(SoqlError::NoFields)
        );
        assert_eq!(Soql::select(["Id"]).build(), Err(SoqlError::NoObject));
        assert!(is_identifier("Account.Owner.Name") && is_identifier("Cativa_Member_Id__c"));
        assert!(!is_identifier("1abc") && !is_identifier("a..b") && !is_identifier(""));
    }
}
