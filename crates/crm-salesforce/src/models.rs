//! Typed shapes of the Salesforce REST responses and request bodies this crate uses.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Number, Value};

use crate::error::ApiError;

/// A record as returned by SOQL: its fields by API name (plus `attributes`).
pub type Record = Map<String, Value>;

/// A field value of a [`RecordRef`], borrowed from the response body where it can be.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FieldValue<'a> {
    /// `null`.
    Null,
    /// A checkbox.
    Bool(bool),
    /// A number, as `serde_json` reads it.
    Number(Number),
    /// A string: borrowed unless it holds escapes.
    Str(Cow<'a, str>),
    /// A nested record (relationship) or a compound field (address), kept as JSON: rare,
    /// so its cost does not matter.
    Json(Value),
}

impl FieldValue<'_> {
    /// The value as text: strings as is, numbers and booleans printed, `null` as `None`,
    /// anything else as JSON text (the same text a [`Record`]'s value gives).
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Self::Null => None,
            Self::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Self::Number(n) => Some(Cow::Owned(n.to_string())),
            Self::Str(s) => Some(Cow::Borrowed(s)),
            Self::Json(v) => crate::contact::value_text(v).map(Cow::Owned),
        }
    }

    /// A string value, borrowed.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A checkbox value.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for FieldValue<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = FieldValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Salesforce field value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(FieldValue::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(FieldValue::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(FieldValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(FieldValue::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(FieldValue::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // As serde_json's `Value` does: a non-finite float is null.
        Ok(Number::from_f64(v).map_or(FieldValue::Null, FieldValue::Number))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(FieldValue::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(FieldValue::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(FieldValue::Str(Cow::Owned(v)))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let v = Vec::<Value>::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(FieldValue::Json(Value::Array(v)))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let m = Map::<String, Value>::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(FieldValue::Json(Value::Object(m)))
    }
}

/// A SOQL record read in place from a query page: its fields in the order of the body,
/// names and strings borrowed from the body, `attributes` skipped. Costs a fraction of a
/// [`Record`] (no map, no copies); see [`RawQueryPage`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RecordRef<'a> {
    /// The fields (API name, value), in the order Salesforce sent them.
    pub fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
}

impl<'a> RecordRef<'a> {
    /// The value of the top-level field `name` (the last one if repeated, as a map keeps).
    pub fn get(&self, name: &str) -> Option<&FieldValue<'a>> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RecordRef<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RecordVisitor)
    }
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = RecordRef<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Salesforce record")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16));
        fill_record(map, &mut fields)?;
        Ok(RecordRef { fields })
    }
}

/// The fields of a record `(name, value)`, borrowed from the body.
type Fields<'a> = Vec<(Cow<'a, str>, FieldValue<'a>)>;

/// Reads a record's fields into `fields` (cleared first), `attributes` skipped.
fn fill_record<'de, A: de::MapAccess<'de>>(
    mut map: A,
    fields: &mut Fields<'de>,
) -> Result<(), A::Error> {
    fields.clear();
    while let Some(key) = map.next_key::<Cow<'de, str>>()? {
        if key == "attributes" {
            // Type and URL: nothing the sync reads.
            map.next_value::<de::IgnoredAny>()?;
            continue;
        }
        let value = map.next_value::<FieldValue<'de>>()?;
        fields.push((key, value));
    }
    Ok(())
}

/// Reads one record into a reused field buffer: streaming a page costs no allocation per
/// record.
struct FillRecord<'b, 'de>(&'b mut Fields<'de>);

impl<'de> de::DeserializeSeed<'de> for FillRecord<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FillRecord<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Salesforce record")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        fill_record(map, self.0)
    }
}

/// A query page as received, decoded on demand into borrowed records
/// ([`records`](Self::records)): nothing is copied out of the body until a caller keeps it.
#[derive(Debug, Clone)]
pub struct RawQueryPage {
    body: Bytes,
}

impl RawQueryPage {
    /// A page from its JSON body.
    pub fn new(body: Bytes) -> Self {
        Self { body }
    }

    /// The JSON body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The page, its records borrowed from the body.
    ///
    /// # Errors
    /// [`crate::Error::Decode`] when the body is not a query page.
    pub fn records(&self) -> Result<QueryPage<RecordRef<'_>>, crate::Error> {
        self.decode()
    }

    /// The page with records of any type (owned types included).
    ///
    /// # Errors
    /// [`crate::Error::Decode`] when the body is not a query page of `T`.
    pub fn decode<'a, T: Deserialize<'a>>(&'a self) -> Result<QueryPage<T>, crate::Error> {
        serde_json::from_str(self.text()?).map_err(page_error)
    }

    /// Streams the records, borrowed from the body, through `f` in order, without
    /// collecting them: one field buffer serves every record, so reading a page allocates
    /// nothing per record. Returns the page's paging fields.
    ///
    /// ```
    /// use crm_salesforce::models::RawQueryPage;
    /// let raw = RawQueryPage::new(
    ///     br#"{"totalSize":2,"done":true,"records":[{"Id":"003A"},{"Id":"003B"}]}"#.to_vec().into(),
    /// );
    /// let mut ids = Vec::new();
    /// let info = raw.for_each_record(|r| {
    ///     ids.extend(r.get("Id").and_then(|v| v.as_str()).map(str::to_owned));
    ///     Ok(())
    /// })?;
    /// assert_eq!(ids, ["003A", "003B"]);
    /// assert!(info.done && info.next_records_url.is_none());
    /// # Ok::<(), crm_salesforce::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::Decode`] when the body is not a query page; the first error `f`
    /// returns, which stops the reading.
    pub fn for_each_record<'a, F>(&'a self, f: F) -> Result<PageInfo, crate::Error>
    where
        F: FnMut(&RecordRef<'a>) -> Result<(), crate::Error>,
    {
        self.stream(EachRef {
            buf: RecordRef::default(),
            f,
        })
    }

    /// [`for_each_record`](Self::for_each_record) with records of any type `T` (a typed
    /// struct borrowing its strings from the body is the cheapest way to read known fields).
    ///
    /// # Errors
    /// [`crate::Error::Decode`] when the body is not a query page of `T`; the first error
    /// `f` returns, which stops the reading.
    pub fn for_each<'a, T, F>(&'a self, f: F) -> Result<PageInfo, crate::Error>
    where
        T: Deserialize<'a>,
        F: FnMut(T) -> Result<(), crate::Error>,
    {
        self.stream(EachTyped {
            f,
            _t: std::marker::PhantomData,
        })
    }

    fn stream<'a, E: Each<'a>>(&'a self, each: E) -> Result<PageInfo, crate::Error> {
        let mut failed = None;
        let mut de = serde_json::Deserializer::from_str(self.text()?);
        let read = de::DeserializeSeed::deserialize(
            PageSeed {
                each,
                failed: &mut failed,
            },
            &mut de,
        )
        .and_then(|info| de.end().map(|()| info));
        match (read, failed) {
            // The callback's own error, not the abort it caused in the parser.
            (_, Some(e)) => Err(e),
            (Ok(info), None) => Ok(info),
            (Err(e), None) => Err(page_error(e)),
        }
    }

    /// The body as text, checked once: strings borrowed from it then need no check of
    /// their own (a check per string costs more than one over the body).
    fn text(&self) -> Result<&str, crate::Error> {
        std::str::from_utf8(&self.body).map_err(|e| crate::Error::Decode {
            what: "query page",
            message: format!("the body is not UTF-8: {e}"),
        })
    }
}

fn page_error(e: serde_json::Error) -> crate::Error {
    crate::Error::Decode {
        what: "query page",
        message: e.to_string(),
    }
}

/// The paging fields of a query page read record by record
/// ([`RawQueryPage::for_each_record`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageInfo {
    /// Records matching the query in total (across pages).
    pub total_size: u64,
    /// `true` on the last page.
    pub done: bool,
    /// The path of the next page while `done` is false.
    pub next_records_url: Option<String>,
    /// Records on this page.
    pub records: usize,
}

/// What a streamed page does with each record.
trait Each<'de> {
    /// Reads the next record and hands it on; `false` at the end of the array. A
    /// callback error is kept in `failed` and aborts the parse.
    fn next<A: de::SeqAccess<'de>>(
        &mut self,
        seq: &mut A,
        failed: &mut Option<crate::Error>,
    ) -> Result<bool, A::Error>;
}

struct EachRef<'de, F> {
    buf: RecordRef<'de>,
    f: F,
}

impl<'de, F> Each<'de> for EachRef<'de, F>
where
    F: FnMut(&RecordRef<'de>) -> Result<(), crate::Error>,
{
    fn next<A: de::SeqAccess<'de>>(
        &mut self,
        seq: &mut A,
        failed: &mut Option<crate::Error>,
    ) -> Result<bool, A::Error> {
        if seq
            .next_element_seed(FillRecord(&mut self.buf.fields))?
            .is_none()
        {
            return Ok(false);
        }
        hand_on((self.f)(&self.buf), failed)
    }
}

struct EachTyped<T, F> {
    f: F,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<'de, T: Deserialize<'de>, F: FnMut(T) -> Result<(), crate::Error>> Each<'de>
    for EachTyped<T, F>
{
    fn next<A: de::SeqAccess<'de>>(
        &mut self,
        seq: &mut A,
        failed: &mut Option<crate::Error>,
    ) -> Result<bool, A::Error> {
        match seq.next_element::<T>()? {
            None => Ok(false),
            Some(t) => hand_on((self.f)(t), failed),
        }
    }
}

fn hand_on<E: de::Error>(
    r: Result<(), crate::Error>,
    failed: &mut Option<crate::Error>,
) -> Result<bool, E> {
    match r {
        Ok(()) => Ok(true),
        Err(e) => {
            *failed = Some(e);
            Err(E::custom("stopped by the record callback"))
        }
    }
}

/// A query page whose records go through an [`Each`] as they are parsed.
struct PageSeed<'f, E> {
    each: E,
    failed: &'f mut Option<crate::Error>,
}

impl<'de, E: Each<'de>> de::DeserializeSeed<'de> for PageSeed<'_, E> {
    type Value = PageInfo;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PageInfo, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, E: Each<'de>> Visitor<'de> for PageSeed<'_, E> {
    type Value = PageInfo;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Salesforce query page")
    }

    fn visit_map<A: de::MapAccess<'de>>(mut self, mut map: A) -> Result<PageInfo, A::Error> {
        let (mut total_size, mut done, mut next_records_url, mut records) =
            (None, None, None, None);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "totalSize" => total_size = Some(map.next_value::<u64>()?),
                "done" => done = Some(map.next_value::<bool>()?),
                "nextRecordsUrl" => next_records_url = map.next_value::<Option<String>>()?,
                "records" => {
                    records = Some(map.next_value_seed(RecordsSeed {
                        each: &mut self.each,
                        failed: &mut *self.failed,
                    })?);
                }
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(PageInfo {
            total_size: total_size.ok_or_else(|| de::Error::missing_field("totalSize"))?,
            done: done.ok_or_else(|| de::Error::missing_field("done"))?,
            next_records_url,
            records: records.ok_or_else(|| de::Error::missing_field("records"))?,
        })
    }
}

/// The `records` array of a streamed page; its value is the number of records.
struct RecordsSeed<'e, 'f, E> {
    each: &'e mut E,
    failed: &'f mut Option<crate::Error>,
}

impl<'de, E: Each<'de>> de::DeserializeSeed<'de> for RecordsSeed<'_, '_, E> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, E: Each<'de>> Visitor<'de> for RecordsSeed<'_, '_, E> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut n = 0;
        while self.each.next(&mut seq, self.failed)? {
            n += 1;
        }
        Ok(n)
    }
}

/// One page of a `query` / `queryAll` result.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct QueryPage<T> {
    /// Records matching the query in total (across pages).
    pub total_size: u64,
    /// `true` on the last page.
    pub done: bool,
    /// The path of the next page (`/services/data/v66.0/query/01g...-2000`) while `done` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_records_url: Option<String>,
    /// The records of this page.
    pub records: Vec<T>,
}

/// The `attributes` of a record: its type and REST URL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct Attributes {
    /// The sObject type (`Contact`).
    #[serde(rename = "type")]
    pub sobject_type: String,
    /// The record URL, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The answer of `sobjects/{Object}/updated`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UpdatedResponse {
    /// Ids of records created or updated in the window.
    pub ids: Vec<String>,
    /// Start the next window here.
    #[serde(with = "sf_datetime")]
    pub latest_date_covered: DateTime<Utc>,
}

/// One entry of `deletedRecords`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeletedRecord {
    /// The record id.
    pub id: String,
    /// When it was deleted.
    #[serde(with = "sf_datetime")]
    pub deleted_date: DateTime<Utc>,
}

/// The answer of `sobjects/{Object}/deleted`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeletedResponse {
    /// Records deleted in the window.
    pub deleted_records: Vec<DeletedRecord>,
    /// The oldest deletion Salesforce still knows about. If it is after your last sync
    /// point, deletions may have been missed: run a full reconcile.
    #[serde(with = "sf_datetime")]
    pub earliest_date_available: DateTime<Utc>,
    /// Start the next window here.
    #[serde(with = "sf_datetime")]
    pub latest_date_covered: DateTime<Utc>,
}

/// The result for one record of a collections call (or a single create / upsert).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct SaveResult {
    /// The record id (absent on failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Whether this record was written.
    pub success: bool,
    /// Why not (`statusCode`, `message`, `fields`).
    #[serde(default)]
    pub errors: Vec<ApiError>,
    /// Upserts: whether the record was created (`false`: an existing one was updated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
}

impl SaveResult {
    /// A failed result with these errors (used when a whole call failed).
    pub fn failed(errors: Vec<ApiError>) -> Self {
        Self {
            id: None,
            success: false,
            errors,
            created: None,
        }
    }

    /// Whether this record failed only because another transaction held a lock, or because
    /// an all-or-none call rolled it back: worth resending as is.
    pub fn is_transient_failure(&self) -> bool {
        !self.success
            && !self.errors.is_empty()
            && self.errors.iter().all(|e| {
                e.code == "UNABLE_TO_LOCK_ROW" || e.code == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
            })
    }
}

/// The outcome of a single upsert by external ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UpsertOutcome {
    /// The record id (`None` for a 204 from an old API version, which names no id).
    pub id: Option<String>,
    /// Whether the record was created (201) or updated (200 / 204).
    pub created: bool,
}

/// One entry of the `limits` resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct OrgLimit {
    /// The allowance.
    pub max: i64,
    /// What is left of it.
    pub remaining: i64,
}

/// The body of a collections create / update / upsert call.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CollectionBody<'a> {
    pub(crate) all_or_none: bool,
    pub(crate) records: &'a [Record],
}

/// Serde for Salesforce date-times: `2013-05-08T21:20:00.000+0000` (also RFC 3339).
pub mod sf_datetime {
    use super::*;
    use serde::{Deserializer, Serializer};

    /// Parses `2013-05-08T21:20:00.000+0000`, `...Z`, or RFC 3339 with a colon offset.
    pub fn parse(s: &str) -> Option<DateTime<Utc>> {
        fast(s).or_else(|| general(s))
    }

    /// The exact shape Salesforce sends (`2013-05-08T21:20:00.000+0000`, UTC), read by
    /// position: every record of a page carries one, and a format-string parse costs
    /// several times more. `None` sends anything else to [`general`].
    pub(crate) fn fast(s: &str) -> Option<DateTime<Utc>> {
        let b = s.as_bytes();
        if b.len() != 28
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
            || b[19] != b'.'
            || &b[23..] != b"+0000"
        {
            return None;
        }
        let num = |from: usize, to: usize| -> Option<u32> {
            b[from..to].iter().try_fold(0u32, |n, &d| {
                d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
            })
        };
        let year = i32::try_from(num(0, 4)?).ok()?;
        let date = chrono::NaiveDate::from_ymd_opt(year, num(5, 7)?, num(8, 10)?)?;
        let second = num(17, 19)?;
        // A leap second (60) takes the general path, which knows its rules.
        if second > 59 {
            return None;
        }
        let time = chrono::NaiveTime::from_hms_milli_opt(
            num(11, 13)?,
            num(14, 16)?,
            second,
            num(20, 23)?,
        )?;
        Some(date.and_time(time).and_utc())
    }

    pub(crate) fn general(s: &str) -> Option<DateTime<Utc>> {
        DateTime::<FixedOffset>::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
            .or_else(|_| DateTime::parse_from_rfc3339(s))
            .map(|d| d.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
                    .ok()
                    .map(|n| n.and_utc())
            })
    }

    /// Formats as Salesforce does: `2013-05-08T21:20:00.000+0000`.
    pub fn format(at: &DateTime<Utc>) -> String {
        at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
    }

    /// Serde `serialize_with`.
    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(at))
    }

    /// Serde `deserialize_with`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid Salesforce date-time {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn parses_salesforce_datetimes() {
        let want = Utc.with_ymd_and_hms(2013, 5, 8, 21, 20, 0).unwrap();
        assert_eq!(
            sf_datetime::parse("2013-05-08T21:20:00.000+0000"),
            Some(want)
        );
        assert_eq!(sf_datetime::parse("2013-05-08T21:20:00Z"), Some(want));
        assert_eq!(
            sf_datetime::parse("2013-05-08T23:20:00.000+02:00"),
            Some(want)
        );
        assert_eq!(sf_datetime::parse("yesterday"), None);
        assert_eq!(sf_datetime::format(&want), "2013-05-08T21:20:00.000+0000");
    }

    #[test]
    fn the_fast_path_reads_what_the_general_parser_reads() {
        for s in [
            "2013-05-08T21:20:00.000+0000",
            "2026-12-31T23:59:59.999+0000",
            "2024-02-29T00:00:00.001+0000",
            "2023-02-29T00:00:00.000+0000",
            "2013-13-08T21:20:00.000+0000",
            "2013-05-08T24:20:00.000+0000",
            "2013-05-08T21:60:00.000+0000",
            "2013-05-08T21:20:60.000+0000",
            "2013-05-08T21:20:00.000+0100",
            "2013-05-08 21:20:00.000+0000",
            "2013-05-0xT21:20:00.000+0000",
            "+013-05-08T21:20:00.000+0000",
            "2013-05-08T21:20:00.0000+000",
        ] {
            assert_eq!(sf_datetime::parse(s), sf_datetime::general(s), "{s}");
        }
        assert!(sf_datetime::fast("2013-05-08T21:20:00.123+0000").is_some());
        assert_eq!(
            sf_datetime::parse("2013-05-08T21:20:00.123+0000"),
            Some(
                Utc.with_ymd_and_hms(2013, 5, 8, 21, 20, 0).unwrap()
                    + chrono::Duration::milliseconds(123)
            )
        );
    }

    const PAGE: &str = r#"{"totalSize": 5, "done": false, "extra": {"a": [1]},
        "nextRecordsUrl": "/services/data/v66.0/query/01g-2",
        "records": [
            {"attributes": {"type": "Contact"}, "Id": "003A", "Email": "a\u00e9@x.com", "N": 1.5},
            {"Id": "003B", "Email": null, "Account": {"Name": "Acme"}, "Flag": true}
        ]}"#;

    #[test]
    fn streamed_records_are_the_collected_ones() {
        let raw = RawQueryPage::new(PAGE.as_bytes().to_vec().into());
        let want = raw.records().unwrap();
        let mut got = Vec::new();
        let info = raw
            .for_each_record(|r| {
                got.push(r.clone());
                Ok(())
            })
            .unwrap();
        assert_eq!(got, want.records);
        assert_eq!(
            info,
            PageInfo {
                total_size: 5,
                done: false,
                next_records_url: want.next_records_url.clone(),
                records: 2,
            }
        );
        #[derive(Deserialize)]
        struct Id<'a> {
            #[serde(rename = "Id", borrow)]
            id: Cow<'a, str>,
        }
        let mut ids = Vec::new();
        raw.for_each(|r: Id<'_>| {
            ids.push(r.id.into_owned());
            Ok(())
        })
        .unwrap();
        assert_eq!(ids, ["003A", "003B"]);
    }

    #[test]
    fn streaming_stops_at_the_first_callback_error_and_refuses_bad_pages() {
        let raw = RawQueryPage::new(PAGE.as_bytes().to_vec().into());
        let mut seen = 0;
        let err = raw
            .for_each_record(|_| {
                seen += 1;
                Err(crate::Error::Config("stop here".into()))
            })
            .unwrap_err();
        assert_eq!(seen, 1);
        assert!(err.to_string().contains("stop here"), "{err}");
        for bad in [
            &br#"{"done": true, "records": []}"#[..],
            br#"{"totalSize": 0, "records": []}"#,
            br#"{"totalSize": 0, "done": true}"#,
            br#"{"totalSize": 0, "done": true, "records": [1]}"#,
            br#"{"totalSize": 0, "done": true, "records": []} x"#,
            b"{\"totalSize\": 0, \"done\": true, \"records\": [{\"Id\": \"\xff\"}]}",
        ] {
            let raw = RawQueryPage::new(bad.to_vec().into());
            let err = raw.for_each_record(|_| Ok(())).unwrap_err();
            assert!(matches!(err, crate::Error::Decode { .. }), "{err}");
            assert!(raw.records().is_err());
        }
    }

    #[test]
    fn decodes_deleted_and_updated_windows() {
        let d: DeletedResponse = serde_json::from_str(
            r#"{"deletedRecords":[{"id":"003A","deletedDate":"2013-05-07T22:07:19.000+0000"}],
                "earliestDateAvailable":"2013-05-03T15:57:00.000+0000","latestDateCovered":"2013-05-08T21:20:00.000+0000"}"#,
        )
        .unwrap();
        assert_eq!(d.deleted_records[0].id, "003A");
        let u: UpdatedResponse = serde_json::from_str(
            r#"{"ids":["003A","003B"],"latestDateCovered":"2013-05-08T21:20:00.000+0000"}"#,
        )
        .unwrap();
        assert_eq!(u.ids.len(), 2);
    }

    #[test]
    fn save_results_with_status_code_errors() {
        let r: Vec<SaveResult> = serde_json::from_str(
            r#"[{"id":"001A","success":true,"errors":[]},
                {"success":false,"errors":[{"statusCode":"UNABLE_TO_LOCK_ROW","message":"unable to obtain exclusive access to this record","fields":[]}]},
                {"success":false,"errors":[{"statusCode":"MALFORMED_ID","message":"bad id","fields":["Id"]}]}]"#,
        )
        .unwrap();
        assert!(r[0].success && r[0].id.as_deref() == Some("001A"));
        assert!(r[1].is_transient_failure());
        assert!(!r[2].is_transient_failure());
        assert_eq!(r[2].errors[0].fields, vec!["Id"]);
    }
}
