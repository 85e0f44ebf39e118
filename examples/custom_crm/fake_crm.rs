//! The small JSON-over-HTTP CRM that `custom_crm` connects to, served by axum on 127.0.0.1.
//! It keeps contacts in memory with a clock a test can move, and can be told to fail.
//!
//! Its API:
//! - `GET /contacts/changed?since=<ms>&after=<offset>&limit=<n>`: contacts modified at or
//!   after `since` (deleted and merged ones included), oldest first, ties by id;
//! - `GET /contacts?after=<offset>&limit=<n>`: live contacts;
//! - `GET /contacts/search?email=<e>`: case-insensitive;
//! - `POST /contacts/get` `{"ids": [...]}`: the ones that exist;
//! - `POST /contacts/upsert` `{"contacts": [{"email", "properties"}]}`: per-record results.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cativa_crm_sync::chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// Contacts per page.
pub const PAGE: usize = 5;

/// Properties this CRM knows; any other is refused for that record.
const KNOWN: [&str; 4] = ["firstname", "lastname", "phone", "cativa_user_id"];

#[derive(Debug, Clone)]
struct Contact {
    id: u64,
    email: String,
    modified: DateTime<Utc>,
    deleted: bool,
    merged_into: Option<u64>,
    properties: BTreeMap<String, String>,
}

impl Contact {
    fn wire(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "email": self.email,
            "modified_ms": self.modified.timestamp_millis(),
            "deleted": self.deleted,
            "merged_into": self.merged_into.map(|m| m.to_string()),
            "properties": self.properties,
        })
    }
}

#[derive(Debug)]
struct Db {
    contacts: BTreeMap<u64, Contact>,
    next_id: u64,
    now: DateTime<Utc>,
    fail: Option<u16>,
}

type Shared = Arc<Mutex<Db>>;

fn lock(db: &Shared) -> MutexGuard<'_, Db> {
    db.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running CRM.
#[derive(Debug, Clone)]
pub struct FakeCrm {
    db: Shared,
    base_url: String,
}

/// What the conformance test holds.
#[derive(Debug)]
pub struct Harness {
    /// The CRM under test.
    pub crm: FakeCrm,
}

impl FakeCrm {
    /// Starts the CRM on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let db = Arc::new(Mutex::new(Db {
            contacts: BTreeMap::new(),
            next_id: 100,
            now: Utc::now(),
            fail: None,
        }));
        let app = Router::new()
            .route("/contacts/changed", get(changed))
            .route("/contacts", get(live))
            .route("/contacts/search", get(search))
            .route("/contacts/get", post(get_many))
            .route("/contacts/upsert", post(upsert))
            .with_state(db.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { db, base_url })
    }

    /// The API's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The CRM's clock.
    pub fn now(&self) -> DateTime<Utc> {
        lock(&self.db).now
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        lock(&self.db).now += by;
    }

    /// Creates a contact (duplicates allowed, as imported data has them); returns its id.
    pub fn create(&self, email: &str) -> String {
        let mut db = lock(&self.db);
        db.next_id += 1;
        let (id, now) = (db.next_id, db.now);
        db.contacts.insert(
            id,
            Contact {
                id,
                email: email.to_owned(),
                modified: now,
                deleted: false,
                merged_into: None,
                properties: BTreeMap::new(),
            },
        );
        id.to_string()
    }

    fn edit(&self, id: &str, f: impl FnOnce(&mut Contact)) -> Result<(), String> {
        let mut db = lock(&self.db);
        let now = db.now;
        let id: u64 = id.parse().map_err(|_| format!("bad id {id}"))?;
        let c = db.contacts.get_mut(&id).ok_or(format!("no contact {id}"))?;
        f(c);
        c.modified = now;
        Ok(())
    }

    /// Changes a contact.
    pub fn touch(&self, id: &str) -> Result<(), String> {
        self.edit(id, |c| {
            c.properties.insert("firstname".into(), "Touched".into());
        })
    }

    /// Deletes a contact.
    pub fn delete(&self, id: &str) -> Result<(), String> {
        self.edit(id, |c| c.deleted = true)
    }

    /// Merges `loser` into `winner`.
    pub fn merge(&self, winner: &str, loser: &str) -> Result<(), String> {
        let into: u64 = winner.parse().map_err(|_| format!("bad id {winner}"))?;
        self.edit(loser, |c| {
            c.deleted = true;
            c.merged_into = Some(into);
        })
    }

    /// Makes every request fail with `status` (429 with `Retry-After: 2`), or stops failing.
    pub fn fail_with(&self, status: Option<u16>) {
        lock(&self.db).fail = status;
    }
}

fn failure(db: &Db) -> Option<Response> {
    let status = StatusCode::from_u16(db.fail?).ok()?;
    let mut headers = HeaderMap::new();
    if status == StatusCode::TOO_MANY_REQUESTS {
        headers.insert("retry-after", HeaderValue::from_static("2"));
    }
    Some(
        (
            status,
            headers,
            Json(json!({ "error": "injected failure" })),
        )
            .into_response(),
    )
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    since: Option<i64>,
    after: Option<usize>,
}

/// A page of `items` (already in order) from offset `after`.
fn page(items: Vec<&Contact>, after: Option<usize>) -> Response {
    let start = after.unwrap_or(0).min(items.len());
    let end = (start + PAGE).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    let contacts: Vec<Value> = items[start..end].iter().map(|c| c.wire()).collect();
    Json(json!({ "contacts": contacts, "next": next })).into_response()
}

async fn changed(State(db): State<Shared>, Query(q): Query<PageQuery>) -> Response {
    let db = lock(&db);
    if let Some(r) = failure(&db) {
        return r;
    }
    let since = q.since.unwrap_or(0);
    let mut items: Vec<&Contact> = db
        .contacts
        .values()
        .filter(|c| c.modified.timestamp_millis() >= since)
        .collect();
    items.sort_by_key(|c| (c.modified, c.id));
    page(items, q.after)
}

async fn live(State(db): State<Shared>, Query(q): Query<PageQuery>) -> Response {
    let db = lock(&db);
    if let Some(r) = failure(&db) {
        return r;
    }
    page(
        db.contacts.values().filter(|c| !c.deleted).collect(),
        q.after,
    )
}

#[derive(Debug, Deserialize)]
struct EmailQuery {
    email: String,
}

async fn search(State(db): State<Shared>, Query(q): Query<EmailQuery>) -> Response {
    let db = lock(&db);
    if let Some(r) = failure(&db) {
        return r;
    }
    let found: Vec<Value> = db
        .contacts
        .values()
        .filter(|c| !c.deleted && c.email.eq_ignore_ascii_case(&q.email))
        .map(Contact::wire)
        .collect();
    Json(json!({ "contacts": found })).into_response()
}

#[derive(Debug, Deserialize)]
struct Ids {
    ids: Vec<String>,
}

async fn get_many(State(db): State<Shared>, Json(body): Json<Ids>) -> Response {
    let db = lock(&db);
    if let Some(r) = failure(&db) {
        return r;
    }
    let found: Vec<Value> = body
        .ids
        .iter()
        .filter_map(|id| id.parse::<u64>().ok())
        .filter_map(|id| db.contacts.get(&id))
        .filter(|c| !c.deleted)
        .map(Contact::wire)
        .collect();
    Json(json!({ "contacts": found })).into_response()
}

#[derive(Debug, Deserialize)]
struct UpsertBody {
    contacts: Vec<UpsertContact>,
}

#[derive(Debug, Deserialize)]
struct UpsertContact {
    email: String,
    #[serde(default)]
    properties: BTreeMap<String, String>,
}

async fn upsert(State(db): State<Shared>, Json(body): Json<UpsertBody>) -> Response {
    let mut db = lock(&db);
    if let Some(r) = failure(&db) {
        return r;
    }
    let now = db.now;
    let mut results = Vec::new();
    for item in body.contacts {
        if let Some(bad) = item
            .properties
            .keys()
            .find(|k| !KNOWN.contains(&k.as_str()))
        {
            results.push(json!({ "error": format!("unknown property {bad}") }));
            continue;
        }
        let existing = db
            .contacts
            .values()
            .find(|c| !c.deleted && c.email.eq_ignore_ascii_case(&item.email))
            .map(|c| c.id);
        let (id, created) = match existing {
            Some(id) => (id, false),
            None => {
                db.next_id += 1;
                let id = db.next_id;
                db.contacts.insert(
                    id,
                    Contact {
                        id,
                        email: item.email.clone(),
                        modified: now,
                        deleted: false,
                        merged_into: None,
                        properties: BTreeMap::new(),
                    },
                );
                (id, true)
            }
        };
        if let Some(c) = db.contacts.get_mut(&id) {
            c.properties.extend(item.properties);
            c.modified = now;
        }
        results.push(json!({ "id": id.to_string(), "created": created }));
    }
    Json(json!({ "results": results })).into_response()
}
