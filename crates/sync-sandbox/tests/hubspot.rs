#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The HubSpot sandbox against a real HTTP client.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sync_sandbox::ManualClock;
use sync_sandbox::datagen::DataGenConfig;
use sync_sandbox::faults::{Fault, FaultConfig, FaultRates};
use sync_sandbox::hubspot::{DEFAULT_ACCESS_TOKEN, HubSpotConfig, HubSpotSandbox};
use sync_sandbox::ratelimit::{RateLimit, RateLimits};

const TOKEN: &str = DEFAULT_ACCESS_TOKEN;

fn unlimited() -> HubSpotConfig {
    HubSpotConfig::default().with_rate_limits(RateLimits::unlimited())
}

async fn start(config: HubSpotConfig) -> (HubSpotSandbox, reqwest::Client) {
    (
        HubSpotSandbox::start(config).await.unwrap(),
        sync_http::tls::client().unwrap(),
    )
}

async fn get(c: &reqwest::Client, url: String) -> (StatusCode, Value) {
    let r = c.get(url).bearer_auth(TOKEN).send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn send(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Value,
) -> (StatusCode, Value) {
    let r = c
        .request(method, url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn post(c: &reqwest::Client, url: String, body: Value) -> (StatusCode, Value) {
    send(c, reqwest::Method::POST, url, body).await
}

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn list_pages_to_the_end_and_counts_requests() {
    let (hs, c) = start(unlimited()).await;
    hs.seed_generated(&DataGenConfig::default().with_contacts(250))
        .unwrap();
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let mut url = format!(
            "{}/crm/v3/objects/contacts?limit=100&properties=email,cativa_tags",
            hs.base_url()
        );
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let (s, body) = get(&c, url).await;
        assert_eq!(s, StatusCode::OK);
        pages += 1;
        for r in body["results"].as_array().unwrap() {
            assert!(r["id"].is_string());
            assert!(
                r["properties"]
                    .as_object()
                    .unwrap()
                    .contains_key("cativa_tags")
            );
            assert_eq!(r["properties"]["hs_object_id"], r["id"]);
            seen.push(r["id"].as_str().unwrap().to_owned());
        }
        match body["paging"]["next"]["after"].as_str() {
            Some(a) => after = Some(a.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250);
    let mut dedup = seen.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), 250);
    assert_eq!(hs.requests().count("GET /crm/v3/objects/contacts"), 3);

    let (s, body) = get(
        &c,
        format!("{}/crm/v3/objects/contacts?limit=101", hs.base_url()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["category"], "VALIDATION_ERROR");
}

#[tokio::test]
async fn archived_contacts_are_listed_only_with_archived_true() {
    let (hs, c) = start(unlimited()).await;
    let a = hs
        .insert_contact(props(&[("email", "a@example.com")]))
        .unwrap();
    let b = hs
        .insert_contact(props(&[("email", "b@example.com")]))
        .unwrap();
    hs.archive_contact(a).unwrap();
    let (_, live) = get(&c, format!("{}/crm/v3/objects/contacts", hs.base_url())).await;
    let ids: Vec<&str> = live["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![b.to_string()]);
    let (_, archived) = get(
        &c,
        format!("{}/crm/v3/objects/contacts?archived=true", hs.base_url()),
    )
    .await;
    assert_eq!(archived["results"][0]["id"], a.to_string());
    assert_eq!(archived["results"][0]["archived"], true);
    assert!(archived["results"][0]["archivedAt"].is_string());
}

#[tokio::test]
async fn get_by_id_and_by_email_case_insensitive_and_not_found_shape() {
    let (hs, c) = start(unlimited()).await;
    let id = hs
        .insert_contact(props(&[
            ("email", "Jane@Example.com"),
            ("firstname", "Jane"),
        ]))
        .unwrap();
    let (s, body) = get(
        &c,
        format!("{}/crm/v3/objects/contacts/{id}", hs.base_url()),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["properties"]["firstname"], "Jane");
    assert!(body["properties"]["lastname"].is_null());
    let (s, body) = get(
        &c,
        format!(
            "{}/crm/v3/objects/contacts/jane@example.COM?idProperty=email",
            hs.base_url()
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["id"], id.to_string());
    let (s, body) = get(
        &c,
        format!("{}/crm/v3/objects/contacts/999999", hs.base_url()),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["status"], "error");
    assert_eq!(body["category"], "OBJECT_NOT_FOUND");
    assert!(body["correlationId"].is_string());
}

#[tokio::test]
async fn create_update_and_duplicate_conflict() {
    let (hs, c) = start(unlimited()).await;
    let url = format!("{}/crm/v3/objects/contacts", hs.base_url());
    let (s, created) = post(
        &c,
        url.clone(),
        json!({"properties": {"email": "new@example.com", "firstname": "New"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(created["properties"]["lastmodifieddate"].is_string());

    let (s, dup) = post(
        &c,
        url.clone(),
        json!({"properties": {"email": "NEW@example.com"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(dup["category"], "CONFLICT");
    assert_eq!(
        dup["message"],
        format!("Contact already exists. Existing ID: {id}")
    );

    let before = hs.contact(id.parse().unwrap()).unwrap().updated_at;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (s, upd) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{url}/{id}"),
        json!({"properties": {"lastname": "Person"}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(upd["properties"]["lastname"], "Person");
    let after = hs.contact(id.parse().unwrap()).unwrap();
    assert!(after.updated_at > before);
    assert_eq!(
        after.properties["lastmodifieddate"],
        upd["updatedAt"].as_str().unwrap()
    );

    // Update by email, unknown property, bad enum option, read-only property.
    let (s, _) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{url}/new@example.com?idProperty=email"),
        json!({"properties": {"jobtitle": "CTO"}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, err) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{url}/{id}"),
        json!({"properties": {"nope": "x"}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(err["errors"][0]["code"], "PROPERTY_DOESNT_EXIST");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("Property values were not valid: ")
    );
    let (s, err) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{url}/{id}"),
        json!({"properties": {"cativa_tags": "Nope"}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("was not one of the allowed options")
    );
    let (s, err) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{url}/{id}"),
        json!({"properties": {"hs_object_id": "1"}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(err["errors"][0]["code"], "READ_ONLY_VALUE");

    // Email collision through update names the holder second.
    let (_, other) = post(
        &c,
        url.clone(),
        json!({"properties": {"email": "other@example.com"}}),
    )
    .await;
    let other_id = other["id"].as_str().unwrap();
    let (s, err) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{url}/{other_id}"),
        json!({"properties": {"email": "new@example.com"}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .ends_with(&format!("on {other_id}. {id} already has that value."))
    );
}

#[tokio::test]
async fn multi_checkbox_tags_append_and_replace() {
    let (hs, c) = start(unlimited()).await;
    let id = hs
        .insert_contact(props(&[("email", "t@example.com"), ("cativa_tags", "VIP")]))
        .unwrap();
    let url = format!("{}/crm/v3/objects/contacts/{id}", hs.base_url());
    send(
        &c,
        reqwest::Method::PATCH,
        url.clone(),
        json!({"properties": {"cativa_tags": ";Speaker;Beta"}}),
    )
    .await;
    assert_eq!(
        hs.contact(id).unwrap().tags("cativa_tags"),
        vec!["VIP", "Speaker", "Beta"]
    );
    send(
        &c,
        reqwest::Method::PATCH,
        url.clone(),
        json!({"properties": {"cativa_tags": "Pago Anual"}}),
    )
    .await;
    assert_eq!(
        hs.contact(id).unwrap().tags("cativa_tags"),
        vec!["Pago Anual"]
    );
    hs.add_tag(id, "Brand New").unwrap();
    hs.remove_tag(id, "Pago Anual").unwrap();
    assert_eq!(
        hs.contact(id).unwrap().property("cativa_tags"),
        Some("Brand New")
    );
}

#[tokio::test]
async fn oauth_refresh_expiry_on_demand_and_auth_errors() {
    let (hs, c) = start(unlimited().with_access_token_ttl(Duration::from_secs(1800))).await;
    let list = format!("{}/crm/v3/objects/contacts", hs.base_url());
    let r = c.get(&list).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["category"], "INVALID_AUTHENTICATION");
    let r = c.get(&list).bearer_auth("pat-wrong").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let token_url = format!("{}/oauth/v1/token", hs.base_url());
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", sync_sandbox::hubspot::DEFAULT_CLIENT_ID),
        (
            "client_secret",
            sync_sandbox::hubspot::DEFAULT_CLIENT_SECRET,
        ),
        (
            "refresh_token",
            sync_sandbox::hubspot::DEFAULT_REFRESH_TOKEN,
        ),
    ];
    let tok: Value = c
        .post(&token_url)
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tok["expires_in"], 1800);
    assert_eq!(tok["token_type"], "bearer");
    let access = tok["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        c.get(&list)
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    hs.expire_tokens();
    let r = c.get(&list).bearer_auth(&access).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["category"], "EXPIRED_AUTHENTICATION");
    // Static tokens are unaffected; a refresh gives a working token again.
    assert_eq!(
        c.get(&list)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let tok: Value = c
        .post(&token_url)
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fresh = tok["access_token"].as_str().unwrap();
    assert_ne!(fresh, access);
    assert_eq!(
        c.get(&list)
            .bearer_auth(fresh)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(hs.tokens_issued(), 2);

    let bad = [
        ("grant_type", "refresh_token"),
        ("client_id", "x"),
        ("client_secret", "y"),
        ("refresh_token", "z"),
    ];
    let r = c.post(&token_url).form(&bad).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "BAD_CLIENT_ID");
}

#[tokio::test]
async fn tokens_expire_on_the_sandbox_clock() {
    let clock = ManualClock::shared();
    let hs = HubSpotSandbox::start_with_clock(
        unlimited().with_access_token_ttl(Duration::from_secs(60)),
        clock.clone(),
    )
    .await
    .unwrap();
    let c = sync_http::tls::client().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", sync_sandbox::hubspot::DEFAULT_CLIENT_ID),
        (
            "client_secret",
            sync_sandbox::hubspot::DEFAULT_CLIENT_SECRET,
        ),
        (
            "refresh_token",
            sync_sandbox::hubspot::DEFAULT_REFRESH_TOKEN,
        ),
    ];
    let tok: Value = c
        .post(format!("{}/oauth/v1/token", hs.base_url()))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tok["access_token"].as_str().unwrap();
    let list = format!("{}/crm/v3/objects/contacts", hs.base_url());
    assert_eq!(
        c.get(&list)
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    clock.advance(Duration::from_secs(61));
    let body: Value = c
        .get(&list)
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["category"], "EXPIRED_AUTHENTICATION");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("expired 1 second(s) ago")
    );
}

#[tokio::test]
async fn search_filters_sort_paging_and_archived_never_returned() {
    let (hs, c) = start(unlimited()).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let tags = if i % 3 == 0 { "Pago Anual;VIP" } else { "Beta" };
        let stage = if i % 2 == 0 { "customer" } else { "lead" };
        let mut p = props(&[
            ("email", &format!("u{i}@example.com")),
            ("cativa_tags", tags),
            ("lifecyclestage", stage),
        ]);
        if i % 5 == 0 {
            p.insert("phone".into(), "+55 11 91234-5678".into());
        }
        ids.push(hs.insert_contact(p).unwrap());
    }
    hs.archive_contact(ids[0]).unwrap();
    let url = format!("{}/crm/v3/objects/contacts/search", hs.base_url());

    // Tag token, IN on an enumeration, HAS_PROPERTY; archived ids[0] never appears.
    let (s, body) = post(
        &c,
        url.clone(),
        json!({
            "filterGroups": [{"filters": [
                {"propertyName": "cativa_tags", "operator": "EQ", "value": "Pago Anual"},
                {"propertyName": "lifecyclestage", "operator": "IN", "values": ["customer"]}
            ]}],
            "properties": ["email", "cativa_tags"], "limit": 100
        }),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // i % 6 == 0, minus the archived i = 0: 6, 12, 18, 24.
    assert_eq!(body["total"], 4);
    assert!(body.get("paging").is_none());
    let (_, body) = post(&c, url.clone(), json!({"filterGroups": [{"filters": [{"propertyName": "phone", "operator": "HAS_PROPERTY"}]}]})).await;
    assert_eq!(body["total"], 5); // 5, 10, 15, 20, 25

    // OR of groups, GT on the id, descending sort and offset paging.
    let (_, body) = post(&c, url.clone(), json!({
        "filterGroups": [
            {"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": ids[25].to_string()}]},
            {"filters": [{"propertyName": "email", "operator": "EQ", "value": "U1@EXAMPLE.COM"}]}
        ],
        "sorts": [{"propertyName": "hs_object_id", "direction": "DESCENDING"}],
        "limit": 2
    })).await;
    assert_eq!(body["total"], 5);
    let first: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(first, vec![ids[29].to_string(), ids[28].to_string()]);
    assert_eq!(body["paging"]["next"]["after"], "2");

    // lastmodifieddate GTE with epoch ms, ascending.
    let since = hs.contact(ids[10]).unwrap().updated_at.timestamp_millis();
    let (_, body) = post(&c, url.clone(), json!({
        "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": since.to_string()}]}],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}], "limit": 200
    })).await;
    assert!(body["total"].as_u64().unwrap() >= 19);

    // Validation: two sorts, limit 201, unknown operator, unknown property.
    for bad in [
        json!({"sorts": [{"propertyName": "email"}, {"propertyName": "firstname"}]}),
        json!({"limit": 201}),
        json!({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "LIKE", "value": "x"}]}]}),
        json!({"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "x"}]}]}),
    ] {
        let (s, body) = post(&c, url.clone(), bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(body["category"], "VALIDATION_ERROR");
    }
}

#[tokio::test]
async fn search_stops_at_ten_thousand_results() {
    let (hs, c) = start(unlimited()).await;
    hs.seed_generated(&DataGenConfig::default().with_contacts(10_050))
        .unwrap();
    let url = format!("{}/crm/v3/objects/contacts/search", hs.base_url());
    let (s, body) = post(&c, url.clone(), json!({"limit": 200, "after": "9800"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["total"], 10_050);
    assert_eq!(body["results"].as_array().unwrap().len(), 200);
    assert_eq!(body["paging"]["next"]["after"], "10000");
    let (s, body) = post(&c, url, json!({"limit": 200, "after": "10000"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["category"], "VALIDATION_ERROR");
}

#[tokio::test]
async fn batch_endpoints_upsert_create_update_read_archive() {
    let (hs, c) = start(unlimited()).await;
    let base = format!("{}/crm/v3/objects/contacts/batch", hs.base_url());
    let existing = hs
        .insert_contact(props(&[("email", "Old@Example.com")]))
        .unwrap();

    let (s, body) = post(
        &c,
        format!("{base}/upsert"),
        json!({"inputs": [
            {"id": "old@example.com", "idProperty": "email", "properties": {"firstname": "Old"}},
            {"id": "fresh@example.com", "idProperty": "email", "properties": {"firstname": "Fresh"}}
        ]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["status"], "COMPLETE");
    let results = body["results"].as_array().unwrap();
    let existing_id = existing.to_string();
    let old = results
        .iter()
        .find(|r| r["id"].as_str() == Some(&existing_id))
        .unwrap();
    assert_eq!(old["new"], false);
    let fresh = results
        .iter()
        .find(|r| r["id"].as_str() != Some(&existing_id))
        .unwrap();
    assert_eq!(fresh["new"], true);
    assert_eq!(hs.contacts_by_email("fresh@example.com").len(), 1);

    // Upsert by email fails whole on one bad input.
    let (s, _) = post(&c, format!("{base}/upsert"), json!({"inputs": [
        {"id": "x1@example.com", "idProperty": "email", "properties": {"firstname": "A"}, "objectWriteTraceId": "a"},
        {"id": "x2@example.com", "idProperty": "email", "properties": {"nope": "B"}, "objectWriteTraceId": "b"}
    ]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(hs.contacts_by_email("x1@example.com").is_empty());
    // Duplicate ids in one batch.
    let (s, body) = post(
        &c,
        format!("{base}/upsert"),
        json!({"inputs": [
            {"id": "d@example.com", "idProperty": "email", "properties": {}},
            {"id": "D@example.com", "idProperty": "email", "properties": {}}
        ]}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("Duplicate IDs"));

    // Create with trace ids: 207 with the error matched to its trace id.
    let (s, body) = post(
        &c,
        format!("{base}/create"),
        json!({"inputs": [
            {"properties": {"email": "c1@example.com"}, "objectWriteTraceId": "t1"},
            {"properties": {"email": "old@example.com"}, "objectWriteTraceId": "t2"},
            {"properties": {"email": "c3@example.com", "missing": "x"}, "objectWriteTraceId": "t3"}
        ]}),
    )
    .await;
    assert_eq!(s, StatusCode::MULTI_STATUS);
    assert_eq!(body["numErrors"], 2);
    assert_eq!(body["results"].as_array().unwrap().len(), 1);
    let errs = body["errors"].as_array().unwrap();
    assert_eq!(errs[0]["context"]["objectWriteTraceId"][0], "t2");
    assert_eq!(errs[0]["category"], "CONFLICT");
    assert_eq!(errs[1]["context"]["objectWriteTraceId"][0], "t3");
    assert_eq!(errs[1]["category"], "VALIDATION_ERROR");
    // Without trace ids the batch fails as a whole and writes nothing.
    let (s, body) = post(
        &c,
        format!("{base}/create"),
        json!({"inputs": [
            {"properties": {"email": "c9@example.com"}},
            {"properties": {"email": "old@example.com"}}
        ]}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        body["message"],
        format!("Contact already exists. Existing ID: {existing}")
    );
    assert!(hs.contacts_by_email("c9@example.com").is_empty());

    // Update: a missing id is a per-input error.
    let (s, body) = post(
        &c,
        format!("{base}/update"),
        json!({"inputs": [
            {"id": existing.to_string(), "properties": {"lastname": "Timer"}},
            {"id": "424242", "properties": {"lastname": "Ghost"}}
        ]}),
    )
    .await;
    assert_eq!(s, StatusCode::MULTI_STATUS);
    assert_eq!(body["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(
        hs.contact(existing).unwrap().property("lastname"),
        Some("Timer")
    );

    // Read by email with one missing, then archive.
    let (s, body) = post(
        &c,
        format!("{base}/read"),
        json!({"idProperty": "email", "properties": ["email", "lastname"],
        "inputs": [{"id": "OLD@example.com"}, {"id": "ghost@example.com"}]}),
    )
    .await;
    assert_eq!(s, StatusCode::MULTI_STATUS);
    assert_eq!(body["results"][0]["properties"]["lastname"], "Timer");
    assert_eq!(body["errors"][0]["context"]["ids"][0], "ghost@example.com");
    let r = c
        .post(format!("{base}/archive"))
        .bearer_auth(TOKEN)
        .json(&json!({"inputs": [{"id": existing.to_string()}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(hs.contact(existing).unwrap().archived);

    // More than 100 inputs is refused.
    let inputs: Vec<Value> = (0..101)
        .map(
            |i| json!({"id": format!("m{i}@example.com"), "idProperty": "email", "properties": {}}),
        )
        .collect();
    let (s, _) = post(&c, format!("{base}/upsert"), json!({ "inputs": inputs })).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        hs.requests()
            .count("POST /crm/v3/objects/contacts/batch/upsert"),
        4
    );
}

#[tokio::test]
async fn upsert_by_unique_custom_property_allows_partial_success() {
    let (hs, c) = start(unlimited()).await;
    let (s, _) = post(&c, format!("{}/crm/v3/properties/contacts", hs.base_url()), json!({
        "name": "cativa_member_id", "label": "Cativa member id", "type": "string", "fieldType": "text",
        "groupName": "cativa", "hasUniqueValue": true
    })).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, body) = post(&c, format!("{}/crm/v3/objects/contacts/batch/upsert", hs.base_url()), json!({"inputs": [
        {"id": "m-1", "idProperty": "cativa_member_id", "properties": {"email": "m1@example.com"}, "objectWriteTraceId": "1"},
        {"id": "m-2", "idProperty": "cativa_member_id", "properties": {"cativa_tags": "Bogus"}, "objectWriteTraceId": "2"}
    ]})).await;
    assert_eq!(s, StatusCode::MULTI_STATUS);
    assert_eq!(body["results"][0]["new"], true);
    assert_eq!(body["errors"][0]["context"]["objectWriteTraceId"][0], "2");
    let c1 = &hs.contacts_by_email("m1@example.com")[0];
    assert_eq!(c1.property("cativa_member_id"), Some("m-1"));
}

#[tokio::test]
async fn properties_notes_and_lists() {
    let (hs, c) = start(unlimited()).await;
    let base = hs.base_url().to_owned();
    let (s, body) = get(&c, format!("{base}/crm/v3/properties/contacts")).await;
    assert_eq!(s, StatusCode::OK);
    let tags = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cativa_tags")
        .unwrap();
    assert_eq!(tags["type"], "enumeration");
    assert_eq!(tags["fieldType"], "checkbox");
    let (s, _) = post(
        &c,
        format!("{base}/crm/v3/properties/contacts"),
        json!({"name": "cativa_tags", "label": "x", "type": "string", "fieldType": "text"}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, patched) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{base}/crm/v3/properties/contacts/cativa_tags"),
        json!({"options": [{"label": "Gold", "value": "gold"}, {"label": "VIP", "value": "VIP"}]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(patched["options"].as_array().unwrap().len(), 2);

    let id = hs
        .insert_contact(props(&[("email", "n@example.com")]))
        .unwrap();
    let (s, note) = post(&c, format!("{base}/crm/v3/objects/notes"), json!({
        "properties": {"hs_timestamp": "2026-05-01T12:00:00Z", "hs_note_body": "<p>Got badge Premium</p>"},
        "associations": [{"to": {"id": id.to_string()}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}]}]
    })).await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(note["id"].is_string());
    assert_eq!(hs.notes()[0].associations, vec![(id, 202)]);
    let (s, _) = post(
        &c,
        format!("{base}/crm/v3/objects/notes"),
        json!({"properties": {"hs_note_body": "no timestamp"}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let list = hs.create_list("Pago Anual");
    let r = c
        .put(format!("{base}/crm/v3/lists/{list}/memberships/add"))
        .bearer_auth(TOKEN)
        .json(&json!([id.to_string(), "777"]))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["recordsIdsAdded"], json!([id.to_string()]));
    assert_eq!(body["recordIdsMissing"], json!(["777"]));
    let (_, members) = get(&c, format!("{base}/crm/v3/lists/{list}/memberships")).await;
    assert_eq!(members["results"][0]["recordId"], id.to_string());
    let (_, found) = get(
        &c,
        format!("{base}/crm/v3/lists/object-type-id/0-1/name/Pago%20Anual"),
    )
    .await;
    assert_eq!(found["list"]["listId"], list.to_string());
    let r = c
        .put(format!("{base}/crm/v3/lists/{list}/memberships/remove"))
        .bearer_auth(TOKEN)
        .json(&json!([id.to_string()]))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["recordIdsRemoved"], json!([id.to_string()]));
    assert!(hs.lists()[0].members.is_empty());
}

#[tokio::test]
async fn date_versioned_paths_reach_the_same_handlers() {
    let (hs, c) = start(unlimited()).await;
    let (s, created) = post(
        &c,
        format!("{}/crm/objects/2026-03/contacts", hs.base_url()),
        json!({"properties": {"email": "v@example.com"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap();
    let (s, body) = get(
        &c,
        format!("{}/crm/objects/2026-03/contacts/{id}", hs.base_url()),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["properties"]["email"], "v@example.com");
    let (s, body) = post(
        &c,
        format!("{}/crm/objects/2026-03/contacts/search", hs.base_url()),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["total"], 1);
    let (s, _) = get(
        &c,
        format!("{}/crm/properties/2026-03/contacts", hs.base_url()),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        hs.requests()
            .count("GET /crm/objects/{version}/contacts/{contactId}"),
        1
    );
    assert_eq!(hs.requests().count_matching("/contacts/search"), 1);
}

#[tokio::test]
async fn rate_limit_rolling_window_with_injectable_clock() {
    let clock = ManualClock::shared();
    let limits = RateLimits::unlimited()
        .with_general(Some(RateLimit::new(5, Duration::from_secs(10))))
        .with_retry_after(true);
    let hs = HubSpotSandbox::start_with_clock(
        HubSpotConfig::default().with_rate_limits(limits),
        clock.clone(),
    )
    .await
    .unwrap();
    let c = sync_http::tls::client().unwrap();
    let url = format!("{}/crm/v3/objects/contacts", hs.base_url());
    for i in 0..5u32 {
        let r = c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-hubspot-ratelimit-max"], "5");
        assert_eq!(
            r.headers()["x-hubspot-ratelimit-remaining"],
            (4 - i).to_string().as_str()
        );
        assert_eq!(
            r.headers()["x-hubspot-ratelimit-interval-milliseconds"],
            "10000"
        );
        clock.advance(Duration::from_secs(1));
    }
    let r = c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "5");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(body["errorType"], "RATE_LIMIT");
    // The first request leaves the window 10 s after it was made.
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        c.get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        c.get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let stats = hs.requests();
    assert_eq!(
        stats
            .get("GET /crm/v3/objects/contacts")
            .unwrap()
            .rate_limited,
        2
    );
}

#[tokio::test]
async fn search_has_its_own_five_per_second_limit_and_no_headers() {
    let clock = ManualClock::shared();
    let hs = HubSpotSandbox::start_with_clock(HubSpotConfig::default(), clock.clone())
        .await
        .unwrap();
    let c = sync_http::tls::client().unwrap();
    let url = format!("{}/crm/v3/objects/contacts/search", hs.base_url());
    for _ in 0..5 {
        let r = c
            .post(&url)
            .bearer_auth(TOKEN)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get("x-hubspot-ratelimit-remaining").is_none());
    }
    let r = c
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "You have reached your secondly limit.");
    assert!(r_retry_after_absent(&hs));
    // The general budget was untouched by search.
    let r = c
        .get(format!("{}/crm/v3/objects/contacts", hs.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-hubspot-ratelimit-remaining"], "99");
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        c.post(&url)
            .bearer_auth(TOKEN)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

fn r_retry_after_absent(hs: &HubSpotSandbox) -> bool {
    hs.requests()
        .get("POST /crm/v3/objects/contacts/search")
        .unwrap()
        .rate_limited
        == 1
}

#[tokio::test]
async fn daily_limit_answers_429_daily() {
    let hs = HubSpotSandbox::start(
        HubSpotConfig::default().with_rate_limits(RateLimits::unlimited().with_daily(Some(2))),
    )
    .await
    .unwrap();
    let c = sync_http::tls::client().unwrap();
    let url = format!("{}/crm/v3/objects/contacts", hs.base_url());
    for _ in 0..2 {
        assert_eq!(
            c.get(&url)
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
    let body: Value = c
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["policyName"], "DAILY");
}

async fn statuses_for_seed(seed: u64) -> Vec<String> {
    let faults = FaultConfig::seeded(seed)
        .with_rates(FaultRates::mixed(0.6))
        .with_slow_delay(Duration::from_millis(1));
    let hs = HubSpotSandbox::start(unlimited().with_faults(faults))
        .await
        .unwrap();
    hs.seed_generated(&DataGenConfig::default().with_contacts(5))
        .unwrap();
    let c = sync_http::tls::client().unwrap();
    let mut out = Vec::new();
    for i in 0..40 {
        let url = format!(
            "{}/crm/v3/objects/contacts?limit={}",
            hs.base_url(),
            i % 10 + 1
        );
        let outcome = match c.get(&url).bearer_auth(TOKEN).send().await {
            Err(_) => "dropped".to_owned(),
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                let json_ok = serde_json::from_str::<Value>(&text).is_ok();
                format!("{status}:{json_ok}")
            }
        };
        out.push(outcome);
    }
    out
}

#[tokio::test]
async fn faults_are_reproducible_by_seed_and_cover_every_kind() {
    let a = statuses_for_seed(9).await;
    let b = statuses_for_seed(9).await;
    assert_eq!(a, b);
    let other = statuses_for_seed(10).await;
    assert_ne!(a, other);
    let all: Vec<String> = a.iter().chain(&other).cloned().collect();
    for expected in [
        "200:true",
        "429:true",
        "500:true",
        "502:false",
        "503:true",
        "504:false",
        "200:false",
        "dropped",
    ] {
        assert!(
            all.iter().any(|s| s == expected),
            "no {expected} in {all:?}"
        );
    }
}

#[tokio::test]
async fn fault_after_effect_applies_the_write_but_loses_the_response() {
    let faults = FaultConfig::seeded(1)
        .with_rates(FaultRates::only(Fault::Status(500), 1.0))
        .with_after_effect(1.0)
        .with_max_faults_per_request(Some(1));
    let (hs, c) = start(unlimited().with_faults(faults)).await;
    let url = format!("{}/crm/v3/objects/contacts/batch/upsert", hs.base_url());
    let body = json!({"inputs": [{"id": "e@example.com", "idProperty": "email", "properties": {"firstname": "E"}}]});
    let (s, _) = post(&c, url.clone(), body.clone()).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        hs.contacts_by_email("e@example.com").len(),
        1,
        "effect applied"
    );
    let (s, again) = post(&c, url, body).await;
    assert_eq!(s, StatusCode::OK, "a retry passes once the cap is reached");
    assert_eq!(again["results"][0]["new"], false);
    assert_eq!(
        hs.contacts_by_email("e@example.com").len(),
        1,
        "idempotent by email"
    );
    let stats = hs.requests();
    let s = stats
        .get("POST /crm/v3/objects/contacts/batch/upsert")
        .unwrap();
    assert_eq!(s.faults.get("500"), Some(&1));
    assert_eq!(s.by_status.get(&200), Some(&1));
}

#[tokio::test]
async fn faults_can_be_switched_on_after_seeding() {
    let (hs, c) = start(unlimited()).await;
    let url = format!("{}/crm/v3/objects/contacts", hs.base_url());
    assert_eq!(get(&c, url.clone()).await.0, StatusCode::OK);
    hs.set_faults(
        FaultConfig::seeded(5)
            .with_rates(FaultRates::only(Fault::Status(503), 1.0))
            .with_retry_after(Some(Duration::from_secs(2))),
    )
    .unwrap();
    let r = c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "2");
    hs.set_faults(FaultConfig::default()).unwrap();
    assert_eq!(get(&c, url).await.0, StatusCode::OK);
    assert!(
        hs.set_faults(FaultConfig::seeded(0).with_rates(FaultRates::mixed(2.0)))
            .is_err()
    );
}

#[tokio::test]
async fn inspection_endpoints_expose_counts_state_and_mutations() {
    let (hs, c) = start(unlimited()).await;
    let base = hs.base_url().to_owned();
    let seeded: Value = c
        .post(format!("{base}/__sandbox/seed"))
        .json(&json!({"contacts": 3, "seed": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = seeded["ids"][0].as_u64().unwrap();
    get(&c, format!("{base}/crm/v3/objects/contacts")).await;
    let counts: Value = c
        .get(format!("{base}/__sandbox/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts["GET /crm/v3/objects/contacts"]["requests"], 1);
    assert_eq!(
        counts["GET /crm/v3/objects/contacts"]["by_status"]["200"],
        1
    );
    assert!(
        counts.get("GET /__sandbox/requests").is_none(),
        "inspection is not counted"
    );

    assert_eq!(
        c.post(format!("{base}/__sandbox/contacts/{id}/tags/VIP"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert!(
        hs.contact(id)
            .unwrap()
            .tags("cativa_tags")
            .contains(&"VIP".to_owned())
    );
    c.delete(format!("{base}/__sandbox/contacts/{id}/tags/VIP"))
        .send()
        .await
        .unwrap();
    assert!(
        !hs.contact(id)
            .unwrap()
            .tags("cativa_tags")
            .contains(&"VIP".to_owned())
    );
    c.put(format!("{base}/__sandbox/contacts/{id}/properties/email"))
        .body("changed@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(hs.contact(id).unwrap().email(), Some("changed@example.com"));
    c.post(format!("{base}/__sandbox/contacts/{id}/archive"))
        .send()
        .await
        .unwrap();
    let state: Value = c
        .get(format!("{base}/__sandbox/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let archived = state["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id)
        .unwrap();
    assert_eq!(archived["archived"], true);
    assert_eq!(
        c.post(format!("{base}/__sandbox/contacts/1/archive"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    c.post(format!("{base}/__sandbox/requests/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(hs.requests().total(), 0);
}

#[tokio::test]
async fn shutdown_stops_the_listener() {
    let (hs, c) = start(unlimited()).await;
    let url = format!("{}/crm/v3/objects/contacts", hs.base_url());
    assert_eq!(get(&c, url.clone()).await.0, StatusCode::OK);
    hs.shutdown().await;
    let fresh = sync_http::tls::client().unwrap();
    assert!(fresh.get(&url).bearer_auth(TOKEN).send().await.is_err());
    let _ = Arc::new(());
}

#[tokio::test]
async fn merge_moves_identity_to_the_primary() {
    let (hs, c) = start(unlimited()).await;
    let a = hs
        .insert_contact(props(&[("email", "a@example.com"), ("firstname", "Ann")]))
        .unwrap();
    let b = hs
        .insert_contact(props(&[("email", "b@example.com"), ("jobtitle", "CTO")]))
        .unwrap();
    let (s, body) = post(
        &c,
        format!("{}/crm/v3/objects/contacts/merge", hs.base_url()),
        json!({"primaryObjectId": a.to_string(), "objectIdToMerge": b.to_string()}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["id"], a.to_string());
    let primary = hs.contact(a).unwrap();
    assert_eq!(primary.property("jobtitle"), Some("CTO"));
    assert_eq!(
        primary.property("hs_merged_object_ids"),
        Some(b.to_string().as_str())
    );
    assert_eq!(
        primary.property("hs_additional_emails"),
        Some("b@example.com")
    );
    let loser = hs.contact(b).unwrap();
    assert!(loser.archived);
    assert_eq!(loser.merged_into, Some(a));
    // The merged-away id answers with the survivor.
    let (s, body) = get(&c, format!("{}/crm/v3/objects/contacts/{b}", hs.base_url())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["id"], a.to_string());
    let (s, _) = post(
        &c,
        format!("{}/crm/v3/objects/contacts/merge", hs.base_url()),
        json!({"primaryObjectId": a.to_string(), "objectIdToMerge": a.to_string()}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn writes_are_recorded_as_webhook_events_and_delivered_signed() {
    use base64::Engine;
    use hmac::Mac;
    use sha2::Digest;

    let (hs, c) = start(unlimited()).await;
    hs.seed_generated(&DataGenConfig::default().with_contacts(5))
        .unwrap();
    assert!(hs.webhook_events().is_empty(), "seeding records no events");
    let (_, created) = post(
        &c,
        format!("{}/crm/v3/objects/contacts", hs.base_url()),
        json!({"properties": {"email": "w@example.com"}}),
    )
    .await;
    let id: u64 = created["id"].as_str().unwrap().parse().unwrap();
    send(
        &c,
        reqwest::Method::PATCH,
        format!("{}/crm/v3/objects/contacts/{id}", hs.base_url()),
        json!({"properties": {"firstname": "W"}}),
    )
    .await;
    hs.add_tag(id, "VIP").unwrap();
    hs.archive_contact(id).unwrap();
    let events = hs.webhook_events();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.subscription_type.as_str(), e.change_source.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("contact.creation", "API"),
            ("contact.propertyChange", "API"),
            ("contact.propertyChange", "CRM"),
            ("contact.deletion", "CRM"),
        ]
    );
    assert_eq!(events[1].property_name.as_deref(), Some("firstname"));
    assert_eq!(events[2].property_value.as_deref(), Some("VIP"));

    // 150 events go out as two signed batches (100 + 50).
    for i in 0..146 {
        hs.insert_contact(props(&[("email", &format!("e{i}@example.com"))]))
            .unwrap();
    }
    let events = hs.take_webhook_events();
    assert_eq!(events.len(), 150);
    assert!(hs.webhook_events().is_empty());

    let got: Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
    let store = got.clone();
    let app = axum::Router::new().route(
        "/webhooks/hubspot",
        axum::routing::post(move |h: axum::http::HeaderMap, body: String| {
            let store = store.clone();
            async move {
                store.lock().unwrap().push((h, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/hubspot", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let secret = "app-client-secret";
    let out = hs
        .deliver_webhooks(&url, secret, &events, true)
        .await
        .unwrap();
    assert_eq!(
        out.iter().map(|r| r.events).collect::<Vec<_>>(),
        vec![100, 50]
    );
    assert!(out.iter().all(|r| r.status == 200));
    let got = got.lock().unwrap().clone();
    let (h, body) = &got[0];
    let batch: Value = serde_json::from_str(body).unwrap();
    assert_eq!(batch.as_array().unwrap().len(), 100);
    assert_eq!(batch[0]["subscriptionType"], "contact.creation");
    assert_eq!(batch[0]["changeFlag"], "NEW");
    assert!(batch[0]["objectId"].is_u64() && batch[0]["occurredAt"].is_i64());
    let ts = h["x-hubspot-request-timestamp"].to_str().unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("POST{url}{body}{ts}").as_bytes());
    let expected_v3 = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(h["x-hubspot-signature-v3"].to_str().unwrap(), expected_v3);
    let expected_v1 = hex::encode(sha2::Sha256::digest(format!("{secret}{body}").as_bytes()));
    assert_eq!(h["x-hubspot-signature"].to_str().unwrap(), expected_v1);
    assert_eq!(h["x-hubspot-signature-version"], "v1");

    let bad = hs
        .deliver_webhooks(&url, secret, &events[..1], false)
        .await
        .unwrap();
    assert_eq!(bad.len(), 1);
}

#[tokio::test]
async fn email_lookups_follow_changes_and_archiving() {
    let (hs, c) = start(unlimited()).await;
    let url = format!("{}/crm/v3/objects/contacts", hs.base_url());
    let (_, created) = post(
        &c,
        url.clone(),
        json!({"properties": {"email": "Old@Example.com"}}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    send(
        &c,
        reqwest::Method::PATCH,
        format!("{url}/{id}"),
        json!({"properties": {"email": "New@Example.com"}}),
    )
    .await;
    let (s, _) = get(&c, format!("{url}/old@example.com?idProperty=email")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = get(&c, format!("{url}/NEW@example.com?idProperty=email")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["id"], id.as_str());
    // The old address is free again; archiving frees the new one too.
    let (s, _) = post(
        &c,
        url.clone(),
        json!({"properties": {"email": "old@example.com"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let r = c
        .delete(format!("{url}/{id}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (s, again) = post(
        &c,
        url.clone(),
        json!({"properties": {"email": "new@example.com"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_ne!(again["id"], id.as_str());
}

#[tokio::test]
async fn batch_notes_and_record_list_memberships() {
    let (hs, c) = start(unlimited()).await;
    let base = hs.base_url().to_owned();
    let id = hs
        .insert_contact(props(&[("email", "bn@example.com")]))
        .unwrap();
    let note = |body: &str| {
        json!({"properties": {"hs_timestamp": "2026-05-01T12:00:00Z", "hs_note_body": body},
               "associations": [{"to": {"id": id.to_string()}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}]}]})
    };
    let (s, body) = post(
        &c,
        format!("{base}/crm/v3/objects/notes/batch/create"),
        json!({"inputs": [note("one"), note("two")]}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(body["results"].as_array().unwrap().len(), 2);
    assert_eq!(hs.notes().len(), 2);
    let (s, _) = post(
        &c,
        format!("{base}/crm/v3/objects/notes/batch/create"),
        json!({"inputs": [note("three"), {"properties": {}}]}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(hs.notes().len(), 2, "all or nothing");

    let vip = hs.create_list("VIP");
    let beta = hs.create_list("Beta");
    hs.add_to_list(vip, id).unwrap();
    hs.add_to_list(beta, id).unwrap();
    let (s, body) = get(
        &c,
        format!("{base}/crm/v3/lists/records/0-1/{id}/memberships"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["listId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![vip.to_string(), beta.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_upserts_by_email_never_duplicate() {
    let (hs, c) = start(unlimited()).await;
    let url = format!("{}/crm/v3/objects/contacts/batch/upsert", hs.base_url());
    let tasks: Vec<_> = (0..20)
        .map(|t| {
            let c = c.clone();
            let url = url.clone();
            tokio::spawn(async move {
                // Every task upserts the same 50 people, with its own casing.
                let inputs: Vec<Value> = (0..50)
                    .map(|i| {
                        let email = if t % 2 == 0 { format!("p{i}@example.com") } else { format!("P{i}@Example.COM") };
                        json!({"id": email, "idProperty": "email", "properties": {"jobtitle": format!("t{t}")}})
                    })
                    .collect();
                c.post(&url).bearer_auth(TOKEN).json(&json!({ "inputs": inputs })).send().await.unwrap().status()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(hs.contacts().len(), 50);
    for i in 0..50 {
        assert_eq!(hs.contacts_by_email(&format!("p{i}@example.com")).len(), 1);
    }
}
