//! [`CsvSource`]: a [`CrmSource`] over a CRM's contact export file, for an initial backfill
//! without API calls.
//!
//! The file is parsed once, when the source is built (with the `csv` crate: quoting,
//! embedded separators and line breaks, a UTF-8 byte order mark). Rows that cannot be read
//! (a wrong number of fields, no record id, a repeated id, an unreadable time) are left out
//! and reported with their line numbers ([`CsvSource::issues`]); a blank or invalid email
//! is not an issue but a contact without email, as the CRM would serve it (the planner
//! skips it and counts it).
//!
//! Column layouts: [`CsvLayout::hubspot`] (an export from the HubSpot contacts index:
//! `Record ID`, `Email`, `Last Modified Date`) and [`CsvLayout::salesforce`] (a Data Loader
//! or data export of Contact: `Id`, `Email`, `LastModifiedDate`); every column name is
//! configurable, and headers match without regard to case or surrounding spaces.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{CrmContact, CrmKind, CrmRecordId, Cursor, Email, TenantId};
use crate::error::{Error, RemoteError, RemoteErrorKind};
use crate::ports::{ContactPage, CrmSource, PageToken};

/// Which columns of an export hold what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CsvLayout {
    /// The CRM the record ids belong to.
    pub crm: CrmKind,
    /// The record id column.
    pub id_column: String,
    /// The email column.
    pub email_column: String,
    /// The column holding tags (a multiple-checkbox property or multi-select picklist), if
    /// any.
    pub tags_column: Option<String>,
    /// What separates tags in the tags column (`;` in both CRMs' exports).
    pub tags_separator: char,
    /// The last-modified column, if any (without it every contact is dated at the Unix
    /// epoch, so any delta checkpoint is after them).
    pub updated_at_column: Option<String>,
    /// Columns read into [`CrmContact::properties`], under their header name. Empty: every
    /// column that is not the id, email, tags or time.
    pub properties: Vec<String>,
}

impl CsvLayout {
    /// A layout with the given record id and email columns, no tags, no time.
    pub fn new(
        crm: CrmKind,
        id_column: impl Into<String>,
        email_column: impl Into<String>,
    ) -> Self {
        Self {
            crm,
            id_column: id_column.into(),
            email_column: email_column.into(),
            tags_column: None,
            tags_separator: ';',
            updated_at_column: None,
            properties: Vec::new(),
        }
    }

    /// A HubSpot contacts export: `Record ID`, `Email`, `Last Modified Date`.
    pub fn hubspot() -> Self {
        Self::new(CrmKind::Hubspot, "Record ID", "Email").with_updated_at("Last Modified Date")
    }

    /// A Salesforce Contact export with API names as headers: `Id`, `Email`,
    /// `LastModifiedDate`.
    pub fn salesforce() -> Self {
        Self::new(CrmKind::Salesforce, "Id", "Email").with_updated_at("LastModifiedDate")
    }

    /// Reads tags from `column`, split on `separator` (builder style).
    #[must_use]
    pub fn with_tags(mut self, column: impl Into<String>, separator: char) -> Self {
        self.tags_column = Some(column.into());
        self.tags_separator = separator;
        self
    }

    /// Reads the last-modified time from `column` (builder style).
    #[must_use]
    pub fn with_updated_at(mut self, column: impl Into<String>) -> Self {
        self.updated_at_column = Some(column.into());
        self
    }

    /// Reads `column` into the contact's properties (builder style); once one is named,
    /// only the named ones are read.
    #[must_use]
    pub fn with_property(mut self, column: impl Into<String>) -> Self {
        self.properties.push(column.into());
        self
    }
}

/// A row left out of the source, with the line it starts on (1-based, the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RowIssue {
    /// The line the row starts on.
    pub line: u64,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for RowIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The export cannot be used at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsvError {
    /// The header row lacks a column the layout needs.
    #[error(
        "the export has no {column:?} column (headers: {headers}): set the layout's column names to the export's headers"
    )]
    MissingColumn {
        /// The column the layout names.
        column: String,
        /// The headers found.
        headers: String,
    },
    /// The header row could not be read.
    #[error("could not read the export's header row: {0}: check that the file is CSV")]
    Header(String),
}

/// The column positions of one file.
struct Columns {
    id: usize,
    email: usize,
    tags: Option<usize>,
    updated_at: Option<usize>,
    properties: Vec<(usize, String)>,
}

/// Contacts read from a CRM export. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct CsvSource {
    crm: CrmKind,
    /// In file order.
    contacts: Vec<CrmContact>,
    by_id: HashMap<String, usize>,
    issues: Vec<RowIssue>,
    page_size: usize,
}

impl CsvSource {
    /// Parses an export (a file: `std::fs::File::open(path)?`). Fails only when the header
    /// row is unreadable or lacks a needed column; bad rows are left out and listed in
    /// [`CsvSource::issues`].
    pub fn from_reader(layout: &CsvLayout, reader: impl Read) -> Result<Self, CsvError> {
        let mut csv = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(reader);
        let headers: Vec<String> = csv
            .headers()
            .map_err(|e| CsvError::Header(e.to_string()))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
            .collect();
        let columns = columns(layout, &headers)?;
        let mut source = Self {
            crm: layout.crm.clone(),
            contacts: Vec::new(),
            by_id: HashMap::new(),
            issues: Vec::new(),
            page_size: 500,
        };
        for (n, record) in csv.records().enumerate() {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map_or(n as u64 + 2, csv::Position::line);
                    source.issue(line, row_error(&e));
                    continue;
                }
            };
            let line = record.position().map_or(n as u64 + 2, csv::Position::line);
            match contact(layout, &columns, &record) {
                Ok(c) => source.push(line, c),
                Err(message) => source.issue(line, message),
            }
        }
        Ok(source)
    }

    /// Pages of `size` contacts (default 500).
    #[must_use]
    pub fn with_page_size(mut self, size: usize) -> Self {
        self.page_size = size.max(1);
        self
    }

    /// The rows left out, in file order.
    pub fn issues(&self) -> &[RowIssue] {
        &self.issues
    }

    /// The contacts read, in file order.
    pub fn contacts(&self) -> &[CrmContact] {
        &self.contacts
    }

    fn issue(&mut self, line: u64, message: String) {
        self.issues.push(RowIssue { line, message });
    }

    fn push(&mut self, line: u64, contact: CrmContact) {
        if self.by_id.contains_key(&contact.id.id) {
            let id = contact.id.id.clone();
            self.issue(
                line,
                format!("record id {id} appears again; the first row is kept"),
            );
            return;
        }
        self.by_id
            .insert(contact.id.id.clone(), self.contacts.len());
        self.contacts.push(contact);
    }

    /// One page of `items` from the offset in `page`.
    fn page_of(
        &self,
        items: Vec<CrmContact>,
        page: Option<&PageToken>,
    ) -> Result<ContactPage, Error> {
        let start = match page {
            Some(t) => t.0.parse::<usize>().map_err(|_| {
                Error::from(RemoteError::new(
                    "csv",
                    RemoteErrorKind::Invalid,
                    format!(
                        "{:?} is not a page token of a CSV source: pass the token its previous page returned",
                        t.0
                    ),
                ))
            })?,
            None => 0,
        };
        let end = start.saturating_add(self.page_size).min(items.len());
        let next = (end < items.len()).then(|| PageToken(end.to_string()));
        let contacts = items
            .get(start..end)
            .map(<[CrmContact]>::to_vec)
            .unwrap_or_default();
        Ok(ContactPage::new(contacts, next))
    }
}

fn row_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
        _ => e.to_string(),
    }
}

/// Finds the layout's columns among `headers` (case and spaces ignored).
fn columns(layout: &CsvLayout, headers: &[String]) -> Result<Columns, CsvError> {
    let find = |name: &str| {
        headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| CsvError::MissingColumn {
                column: name.to_owned(),
                headers: headers.join(", "),
            })
    };
    let id = find(&layout.id_column)?;
    let email = find(&layout.email_column)?;
    let tags = layout.tags_column.as_deref().map(find).transpose()?;
    let updated_at = layout.updated_at_column.as_deref().map(find).transpose()?;
    let properties = if layout.properties.is_empty() {
        let taken = [Some(id), Some(email), tags, updated_at];
        (0..headers.len())
            .filter(|i| !taken.contains(&Some(*i)))
            .map(|i| (i, headers[i].clone()))
            .collect()
    } else {
        layout
            .properties
            .iter()
            .map(|p| find(p).map(|i| (i, headers[i].clone())))
            .collect::<Result<_, _>>()?
    };
    Ok(Columns {
        id,
        email,
        tags,
        updated_at,
        properties,
    })
}

/// One row as a contact, or why it cannot be one.
fn contact(
    layout: &CsvLayout,
    columns: &Columns,
    record: &csv::StringRecord,
) -> Result<CrmContact, String> {
    let field = |i: usize| record.get(i).map(str::trim).unwrap_or_default();
    let id = field(columns.id);
    if id.is_empty() {
        return Err(format!("no record id in column {:?}", layout.id_column));
    }
    let updated_at = match columns.updated_at.map(field) {
        None | Some("") => DateTime::<Utc>::UNIX_EPOCH,
        Some(text) => parse_time(text).ok_or_else(|| {
            format!(
                "{text:?} in column {:?} is not a date and time",
                layout.updated_at_column.as_deref().unwrap_or_default()
            )
        })?,
    };
    let email = Email::parse(field(columns.email)).ok();
    let mut c = CrmContact::new(CrmRecordId::new(layout.crm.clone(), id), email, updated_at);
    if let Some(i) = columns.tags {
        c.tags = field(i)
            .split(layout.tags_separator)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect::<BTreeSet<_>>();
    }
    c.properties = columns
        .properties
        .iter()
        .filter(|(i, _)| !field(*i).is_empty())
        .map(|(i, name)| (name.clone(), field(*i).to_owned()))
        .collect::<BTreeMap<_, _>>();
    Ok(c)
}

/// The time formats of CRM exports: RFC 3339, Salesforce's `2026-11-20T13:45:10.000+0000`,
/// HubSpot's `2026-11-20 13:45` (with or without seconds; UTC), a bare date, or Unix
/// milliseconds.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| Utc.from_utc_datetime(&t));
    }
    text.parse::<i64>()
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

#[async_trait]
impl CrmSource for CsvSource {
    fn crm(&self) -> CrmKind {
        self.crm.clone()
    }

    /// Contacts modified at or after the cursor, in modification order (ties by id).
    async fn changed_since(
        &self,
        _tenant: &TenantId,
        since: &Cursor,
        page: Option<&PageToken>,
    ) -> Result<ContactPage, Error> {
        let mut changed: Vec<CrmContact> = self
            .contacts
            .iter()
            .filter(|c| c.updated_at >= since.modified_at)
            .cloned()
            .collect();
        changed.sort_by(|a, b| (a.updated_at, &a.id.id).cmp(&(b.updated_at, &b.id.id)));
        self.page_of(changed, page)
    }

    async fn scan(
        &self,
        _tenant: &TenantId,
        page: Option<&PageToken>,
    ) -> Result<ContactPage, Error> {
        self.page_of(self.contacts.clone(), page)
    }

    async fn get_by_ids(
        &self,
        _tenant: &TenantId,
        ids: &[CrmRecordId],
    ) -> Result<Vec<CrmContact>, Error> {
        Ok(ids
            .iter()
            .filter(|id| id.crm == self.crm)
            .filter_map(|id| self.by_id.get(&id.id))
            .filter_map(|&i| self.contacts.get(i).cloned())
            .collect())
    }

    async fn find_by_email(
        &self,
        _tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<CrmContact>, Error> {
        Ok(self
            .contacts
            .iter()
            .filter(|c| c.email.as_ref() == Some(email))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
#[path = "csv_source_tests.rs"]
mod tests;
