#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Salesforce sandbox against a real HTTP client.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::Mac;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use sync_sandbox::datagen::DataGenConfig;
use sync_sandbox::salesforce::{
    DEFAULT_ACCESS_TOKEN, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN,
    DEFAULT_USERNAME, JWT_BEARER_GRANT, SalesforceConfig, SalesforceSandbox,
};
use sync_sandbox::{Clock, ManualClock};

const V: &str = "v66.0";

async fn start(config: SalesforceConfig) -> (SalesforceSandbox, reqwest::Client) {
    (
        SalesforceSandbox::start(config).await.unwrap(),
        sync_http::tls::client().unwrap(),
    )
}

async fn get(c: &reqwest::Client, url: String) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let r = c
        .get(url)
        .bearer_auth(DEFAULT_ACCESS_TOKEN)
        .send()
        .await
        .unwrap();
    let s = r.status();
    let h = r.headers().clone();
    (s, r.json().await.unwrap_or(Value::Null), h)
}

async fn send(
    c: &reqwest::Client,
    m: reqwest::Method,
    url: String,
    body: Value,
) -> (StatusCode, Value) {
    let r = c
        .request(m, url)
        .bearer_auth(DEFAULT_ACCESS_TOKEN)
        .header("Sforce-Call-Options", "client=cativa-sync")
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn query_url(base: &str, q: &str) -> String {
    let mut u = url::Url::parse(&format!("{base}/services/data/{V}/query")).unwrap();
    u.query_pairs_mut().append_pair("q", q);
    u.to_string()
}

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn jwt(claims: Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{h}.{p}.c2lnbmF0dXJl")
}

#[tokio::test]
async fn oauth_flows_and_token_response_shape() {
    let (sf, c) = start(SalesforceConfig::default()).await;
    let url = format!("{}/services/oauth2/token", sf.base_url());
    let r = c
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let tok: Value = r.json().await.unwrap();
    assert_eq!(tok["instance_url"], sf.base_url());
    assert_eq!(tok["token_type"], "Bearer");
    assert!(tok.get("refresh_token").is_none());
    let issued_at = tok["issued_at"].as_str().unwrap();
    assert_eq!(issued_at.len(), 13);
    // signature = base64(HMAC-SHA256(client_secret, id + issued_at)), computed independently.
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(DEFAULT_CLIENT_SECRET.as_bytes()).unwrap();
    mac.update(format!("{}{}", tok["id"].as_str().unwrap(), issued_at).as_bytes());
    assert_eq!(
        tok["signature"],
        STANDARD.encode(mac.finalize().into_bytes())
    );
    let access = tok["access_token"].as_str().unwrap();
    let (s, _, _) = {
        let r = c
            .get(query_url(sf.base_url(), "SELECT Id FROM Contact"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        (r.status(), (), ())
    };
    assert_eq!(s, StatusCode::OK);

    // Basic auth for client credentials, and a refresh grant.
    let r = c
        .post(&url)
        .basic_auth(DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .post(&url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("refresh_token", DEFAULT_REFRESH_TOKEN),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // JWT bearer: claims checked (no public key configured, so not the signature).
    let now = chrono::Utc::now().timestamp();
    let good = jwt(
        json!({"iss": DEFAULT_CLIENT_ID, "sub": DEFAULT_USERNAME, "aud": "https://login.salesforce.com", "exp": now + 170}),
    );
    let r = c
        .post(&url)
        .form(&[("grant_type", JWT_BEARER_GRANT), ("assertion", &good)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for (bad, why) in [
        (
            jwt(
                json!({"iss": "other", "sub": DEFAULT_USERNAME, "aud": "https://login.salesforce.com", "exp": now + 60}),
            ),
            "invalid client credentials",
        ),
        (
            jwt(
                json!({"iss": DEFAULT_CLIENT_ID, "sub": DEFAULT_USERNAME, "aud": "https://evil.example", "exp": now + 60}),
            ),
            "audience is invalid",
        ),
        (
            jwt(
                json!({"iss": DEFAULT_CLIENT_ID, "sub": DEFAULT_USERNAME, "aud": "https://login.salesforce.com", "exp": now - 5}),
            ),
            "expired authorization code",
        ),
        (
            jwt(
                json!({"iss": DEFAULT_CLIENT_ID, "sub": DEFAULT_USERNAME, "aud": "https://login.salesforce.com", "exp": now + 3600}),
            ),
            "invalid assertion: exp is more than 3 minutes ahead",
        ),
        ("not-a-jwt".to_owned(), "invalid assertion: not a JWT"),
    ] {
        let r = c
            .post(&url)
            .form(&[("grant_type", JWT_BEARER_GRANT), ("assertion", &bad)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_description"], why);
    }
    let r = c
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", "nope"),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(sf.tokens_issued(), 4);
}

#[tokio::test]
async fn expired_sessions_get_invalid_session_id() {
    let (sf, c) = start(SalesforceConfig::default()).await;
    let tok: Value = c
        .post(format!("{}/services/oauth2/token", sf.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tok["access_token"].as_str().unwrap();
    let q = query_url(sf.base_url(), "SELECT Id FROM Contact");
    assert_eq!(
        c.get(&q).bearer_auth(access).send().await.unwrap().status(),
        StatusCode::OK
    );
    sf.expire_sessions();
    let r = c.get(&q).bearer_auth(access).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
    assert_eq!(
        c.get(&q).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn query_pages_with_next_records_url_until_done() {
    let (sf, c) = start(SalesforceConfig::default()).await;
    sf.seed_generated("Contact", &DataGenConfig::default().with_contacts(4_500))
        .unwrap();
    let mut url = query_url(sf.base_url(), "SELECT Id, Email FROM Contact ORDER BY Id");
    let mut sizes = Vec::new();
    let mut ids = Vec::new();
    loop {
        let (s, body, h) = get(&c, url.clone()).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            h["sforce-limit-info"]
                .to_str()
                .unwrap()
                .starts_with("api-usage=")
        );
        assert_eq!(body["totalSize"], 4_500);
        let records = body["records"].as_array().unwrap();
        sizes.push(records.len());
        for r in records {
            assert_eq!(r["attributes"]["type"], "Contact");
            ids.push(r["Id"].as_str().unwrap().to_owned());
        }
        if body["done"] == true {
            assert!(body.get("nextRecordsUrl").is_none());
            break;
        }
        let next = body["nextRecordsUrl"].as_str().unwrap();
        assert!(next.starts_with(&format!("/services/data/{V}/query/01g")));
        url = format!("{}{next}", sf.base_url());
    }
    assert_eq!(sizes, vec![2000, 2000, 500]);
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 4_500);
    assert_eq!(sorted, ids);

    // A smaller batch through Sforce-Query-Options.
    let r = c
        .get(query_url(sf.base_url(), "SELECT Id FROM Contact"))
        .bearer_auth(DEFAULT_ACCESS_TOKEN)
        .header("Sforce-Query-Options", "batchSize=500")
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["records"].as_array().unwrap().len(), 500);
    assert!(body["nextRecordsUrl"].as_str().unwrap().ends_with("-500"));
    assert_eq!(
        sf.requests()
            .count("GET /services/data/{version}/query/{locator}"),
        2
    );
}

#[tokio::test]
async fn soql_where_order_limit_and_errors() {
    let (sf, c) = start(SalesforceConfig::default()).await;
    let a = sf.insert_record("Contact", fields(json!({"LastName": "A", "Email": "o'brien@example.com", "Cativa_Tags__c": "VIP;Beta"}))).unwrap();
    let cutoff = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let b = sf
        .insert_record(
            "Contact",
            fields(json!({"LastName": "B", "Email": "b@example.com"})),
        )
        .unwrap();
    let cc = sf
        .insert_record(
            "Contact",
            fields(json!({"LastName": "C", "Email": "c@example.com"})),
        )
        .unwrap();
    let lead = sf
        .insert_record(
            "Lead",
            fields(json!({"LastName": "L", "Company": "Acme", "Email": "l@example.com"})),
        )
        .unwrap();
    let base = sf.base_url().to_owned();
    let ids = |body: &Value| -> Vec<String> {
        body["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["Id"].as_str().unwrap().to_owned())
            .collect()
    };

    let since = cutoff.format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let (_, body, _) = get(&c, query_url(&base, &format!("SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp > {since} ORDER BY SystemModstamp, Id"))).await;
    assert_eq!(ids(&body), vec![b.clone(), cc.clone()]);
    assert!(
        body["records"][0]["SystemModstamp"]
            .as_str()
            .unwrap()
            .ends_with("+0000")
    );
    let (_, body, _) = get(
        &c,
        query_url(
            &base,
            &format!("SELECT Id FROM Contact WHERE Id IN ('{a}', '{cc}') ORDER BY Id DESC"),
        ),
    )
    .await;
    assert_eq!(ids(&body), vec![cc.clone(), a.clone()]);
    let (_, body, _) = get(
        &c,
        query_url(
            &base,
            "SELECT Id, Email FROM Contact WHERE Email = 'O\\'Brien@Example.com'",
        ),
    )
    .await;
    assert_eq!(ids(&body), vec![a.clone()]);
    assert_eq!(body["records"][0]["Email"], "o'brien@example.com");
    let (_, body, _) = get(
        &c,
        query_url(
            &base,
            "SELECT Id FROM Contact WHERE Cativa_Tags__c INCLUDES ('vip') LIMIT 1",
        ),
    )
    .await;
    assert_eq!(ids(&body), vec![a.clone()]);
    let (_, body, _) = get(&c, query_url(&base, "SELECT Id, Company FROM Lead")).await;
    assert_eq!(ids(&body), vec![lead]);
    let (_, body, _) = get(&c, query_url(&base, "select id, email from contact where email like '%@example.com' and not lastname = 'A' order by lastname desc limit 1")).await;
    assert_eq!(ids(&body), vec![cc]);
    assert!(
        body["records"][0]
            .as_object()
            .unwrap()
            .contains_key("Email"),
        "canonical field names"
    );

    let (s, body, _) = get(
        &c,
        query_url(&base, "SELECT Id FROM Contact WHERE Email = 'unterminated"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY");
    let (s, body, _) = get(&c, query_url(&base, "SELECT Nope__c FROM Contact")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALID_FIELD");
    let (s, body, _) = get(&c, query_url(&base, "SELECT Id FROM Account__x")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALID_TYPE");
    let (s, body, _) = get(&c, format!("{base}/services/data/{V}/query")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY");
}

#[tokio::test]
async fn query_all_updated_deleted_and_merges() {
    let clock = ManualClock::shared();
    let sf = SalesforceSandbox::start_with_clock(SalesforceConfig::default(), clock.clone())
        .await
        .unwrap();
    let c = sync_http::tls::client().unwrap();
    let t0 = clock.now_utc();
    let start = t0 - chrono::Duration::minutes(5);
    let keep = sf
        .insert_record(
            "Contact",
            fields(json!({"LastName": "Keep", "Email": "k@example.com"})),
        )
        .unwrap();
    let gone = sf
        .insert_record(
            "Contact",
            fields(json!({"LastName": "Gone", "Email": "g@example.com"})),
        )
        .unwrap();
    let dup = sf
        .insert_record(
            "Contact",
            fields(json!({"LastName": "Dup", "Email": "K@example.com"})),
        )
        .unwrap();
    sf.delete_record(&gone).unwrap();
    sf.merge(&keep, &dup).unwrap();
    let base = sf.base_url().to_owned();

    let (_, body, _) = get(&c, query_url(&base, "SELECT Id FROM Contact")).await;
    assert_eq!(body["totalSize"], 1);
    let mut u = url::Url::parse(&format!("{base}/services/data/{V}/queryAll")).unwrap();
    u.query_pairs_mut().append_pair(
        "q",
        "SELECT Id, IsDeleted, MasterRecordId FROM Contact WHERE IsDeleted = true ORDER BY Id",
    );
    let (_, body, _) = get(&c, u.to_string()).await;
    assert_eq!(body["totalSize"], 2);
    assert_eq!(body["records"][1]["MasterRecordId"], keep.as_str());
    assert_eq!(body["records"][0]["MasterRecordId"], Value::Null);

    // Changes of the current minute are reported once the minute is over.
    clock.advance(std::time::Duration::from_secs(120));
    let end = t0 + chrono::Duration::minutes(3);
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string();
    let window = |kind: &str| {
        let mut u = url::Url::parse(&format!(
            "{base}/services/data/{V}/sobjects/Contact/{kind}/"
        ))
        .unwrap();
        u.query_pairs_mut()
            .append_pair("start", &fmt(start))
            .append_pair("end", &fmt(end));
        u.to_string()
    };
    let (s, body, _) = get(&c, window("deleted")).await;
    assert_eq!(s, StatusCode::OK);
    let deleted: Vec<&str> = body["deletedRecords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(deleted.len(), 2);
    assert!(deleted.contains(&gone.as_str()) && deleted.contains(&dup.as_str()));
    assert!(
        body["earliestDateAvailable"]
            .as_str()
            .unwrap()
            .ends_with("+0000")
    );
    let (s, body, _) = get(&c, window("updated")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["latestDateCovered"], "2026-01-01T00:02:00.000+0000");
    assert_eq!(body["ids"], json!([keep]));

    // A purged recycle bin moves earliestDateAvailable past the window start.
    let later = t0 + chrono::Duration::minutes(1);
    sf.set_earliest_deleted_available(later);
    let (_, body, _) = get(&c, window("deleted")).await;
    assert!(body["deletedRecords"].as_array().unwrap().is_empty());
    let too_old = format!(
        "{base}/services/data/{V}/sobjects/Contact/updated/?start=2020-01-01T00%3A00%3A00%2B00%3A00&end=2020-01-02T00%3A00%3A00%2B00%3A00"
    );
    let (s, body, _) = get(&c, too_old).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALID_REPLICATION_DATE");
}

#[tokio::test]
async fn collections_create_update_upsert_in_order_with_all_or_none() {
    let (sf, c) = start(SalesforceConfig::default()).await;
    let base = format!("{}/services/data/{V}/composite/sobjects", sf.base_url());
    let (s, body) = send(&c, reqwest::Method::POST, base.clone(), json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Contact"}, "LastName": "One", "Email": "one@example.com", "Cativa_Member_Id__c": "m-1"},
        {"attributes": {"type": "Contact"}, "FirstName": "NoLast"},
        {"attributes": {"type": "Contact"}, "LastName": "Three", "Cativa_Member_Id__c": "m-1"}
    ]})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body[0]["success"], true);
    let one = body[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(body[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(body[1]["errors"][0]["fields"], json!(["LastName"]));
    assert_eq!(body[2]["errors"][0]["statusCode"], "DUPLICATE_VALUE");
    assert_eq!(
        body[2]["errors"][0]["message"],
        format!(
            "duplicate value found: Cativa_Member_Id__c duplicates value on record with id: {one}"
        )
    );

    // allOrNone: one failure rolls back every record.
    let (_, body) = send(
        &c,
        reqwest::Method::POST,
        base.clone(),
        json!({"allOrNone": true, "records": [
            {"attributes": {"type": "Contact"}, "LastName": "Four"},
            {"attributes": {"type": "Contact"}, "Bogus__c": "x", "LastName": "Five"}
        ]}),
    )
    .await;
    assert_eq!(
        body[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(body[1]["errors"][0]["statusCode"], "INVALID_FIELD");
    assert_eq!(sf.records("Contact").len(), 1);

    let (_, body) = send(
        &c,
        reqwest::Method::PATCH,
        base.clone(),
        json!({"records": [
            {"attributes": {"type": "Contact"}, "id": one, "Title": "CTO"},
            {"attributes": {"type": "Contact"}, "id": "003SB9999999999AAA", "Title": "x"},
            {"attributes": {"type": "Contact"}, "id": "bad", "Title": "x"}
        ]}),
    )
    .await;
    assert_eq!(body[0]["success"], true);
    assert_eq!(
        body[1]["errors"][0]["statusCode"],
        "INVALID_CROSS_REFERENCE_KEY"
    );
    assert_eq!(body[2]["errors"][0]["statusCode"], "MALFORMED_ID");
    assert_eq!(sf.record(&one).unwrap().text("Title"), Some("CTO"));

    let (_, body) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{base}/Contact/Cativa_Member_Id__c"),
        json!({"allOrNone": false, "records": [
            {"attributes": {"type": "Contact"}, "Cativa_Member_Id__c": "m-1", "Title": "CEO"},
            {"attributes": {"type": "Contact"}, "Cativa_Member_Id__c": "m-2", "LastName": "Two"}
        ]}),
    )
    .await;
    assert_eq!(body[0]["created"], false);
    assert_eq!(body[0]["id"], one.as_str());
    assert_eq!(body[1]["created"], true);
    assert_eq!(sf.record(&one).unwrap().text("Title"), Some("CEO"));
    // Collections do not honour Sforce-Call-Options: nothing is stamped, the use is listed.
    assert_eq!(sf.record(&one).unwrap().last_write_client, None);
    assert!(sf.call_clients().is_empty());
    assert_eq!(sf.misplaced_call_options().len(), 4);

    let records: Vec<Value> = (0..201)
        .map(|i| json!({"attributes": {"type": "Contact"}, "LastName": format!("L{i}")}))
        .collect();
    let (s, body) = send(
        &c,
        reqwest::Method::POST,
        base.clone(),
        json!({"records": records}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "EXCEEDED_ID_LIMIT");
    let (s, _) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{base}/Contact/Nope__c"),
        json!({"records": []}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn single_upsert_by_external_id_201_200_300() {
    let (sf, c) = start(SalesforceConfig::default()).await;
    let base = format!("{}/services/data/{V}/sobjects/Contact", sf.base_url());
    let (s, body) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{base}/Cativa_Member_Id__c/m-9"),
        json!({"LastName": "Nine"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(body["created"], true);
    let id = body["id"].as_str().unwrap().to_owned();
    let (s, body) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{base}/Cativa_Member_Id__c/m-9"),
        json!({"Title": "Dev"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body,
        json!({"id": id, "success": true, "errors": [], "created": false})
    );
    let (s, body) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{base}/Cativa_Member_Id__c/m-9"),
        json!({"Id": id}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALID_FIELD");

    // Email is an idLookup field: two contacts with the same email give 300.
    sf.insert_record(
        "Contact",
        fields(json!({"LastName": "X", "Email": "same@example.com"})),
    )
    .unwrap();
    sf.insert_record(
        "Contact",
        fields(json!({"LastName": "Y", "Email": "SAME@example.com"})),
    )
    .unwrap();
    let (s, body) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{base}/Email/same@example.com"),
        json!({"Title": "x"}),
    )
    .await;
    assert_eq!(s, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert!(
        body[0]
            .as_str()
            .unwrap()
            .starts_with(&format!("/services/data/{V}/sobjects/Contact/003"))
    );
    let (s, _) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{base}/Title/x"),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Single create, read, update, delete, and a Task.
    let (s, body) = send(
        &c,
        reqwest::Method::POST,
        base.clone(),
        json!({"LastName": "Solo"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let solo = body["id"].as_str().unwrap().to_owned();
    let r = c
        .patch(format!("{base}/{solo}"))
        .bearer_auth(DEFAULT_ACCESS_TOKEN)
        .json(&json!({"Title": "Boss"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, body, _) = get(&c, format!("{base}/{solo}")).await;
    assert_eq!(body["Title"], "Boss");
    assert_eq!(body["attributes"]["type"], "Contact");
    let (s, body) = send(&c, reqwest::Method::POST, format!("{}/services/data/{V}/sobjects/Task", sf.base_url()),
        json!({"WhoId": solo, "Subject": "Received badge Premium", "Status": "Completed", "ActivityDate": "2026-05-01"})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(body["id"].as_str().unwrap().starts_with("00T"));
    assert_eq!(
        sf.tasks()[0].text("Subject"),
        Some("Received badge Premium")
    );
    let r = c
        .delete(format!("{base}/{solo}"))
        .bearer_auth(DEFAULT_ACCESS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(sf.record(&solo).unwrap().is_deleted());
}

#[tokio::test]
async fn limit_info_on_every_response_and_daily_budget() {
    let (sf, c) = start(SalesforceConfig::default().with_daily_budget(3)).await;
    let (_, limits, _) = get(&c, format!("{}/services/data/{V}/limits", sf.base_url())).await;
    assert_eq!(
        limits["DailyApiRequests"],
        json!({"Max": 3, "Remaining": 2})
    );
    let q = query_url(sf.base_url(), "SELECT Id FROM Contact");
    for n in 2..=3 {
        let (s, _, h) = get(&c, q.clone()).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["sforce-limit-info"], format!("api-usage={n}/3").as_str());
    }
    let (s, body, h) = get(&c, q).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
    assert_eq!(h["sforce-limit-info"], "api-usage=3/3");
    assert_eq!(sf.api_usage(), (3, Some(3)));
    let versions: Value = c
        .get(format!("{}/services/data/", sf.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        versions
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["url"] == "/services/data/v66.0")
    );
    // The token endpoint is outside the API budget.
    let r = c
        .post(format!("{}/services/oauth2/token", sf.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn tags_and_state_endpoint() {
    let (sf, c) = start(SalesforceConfig::default()).await;
    let id = sf
        .insert_record("Contact", fields(json!({"LastName": "T"})))
        .unwrap();
    sf.add_tag(&id, "VIP").unwrap();
    sf.add_tag(&id, "Pago Anual").unwrap();
    sf.remove_tag(&id, "VIP").unwrap();
    assert_eq!(
        sf.record(&id).unwrap().text("Cativa_Tags__c"),
        Some("Pago Anual")
    );
    let state: Value = c
        .get(format!("{}/__sandbox/state", sf.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["records"][0]["id"], id.as_str());
    assert_eq!(
        c.post(format!("{}/__sandbox/records/{id}/delete", sf.base_url()))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert!(sf.record(&id).unwrap().is_deleted());
}

#[tokio::test]
async fn custom_fields_can_be_added_to_the_schema() {
    use sync_sandbox::salesforce::FieldType;
    let config = SalesforceConfig::default()
        .with_field("Contact", "Stage__c", FieldType::Text)
        .with_field("Contact", "Annual__c", FieldType::Boolean)
        .with_field("Contact", "NumberOfEmployees__c", FieldType::Number);
    let (sf, c) = start(config).await;
    let big = sf
        .insert_record("Contact", fields(json!({"LastName": "Big", "Stage__c": "customer", "Annual__c": true, "NumberOfEmployees__c": 42})))
        .unwrap();
    sf.insert_record(
        "Contact",
        fields(json!({"LastName": "Small", "Annual__c": false, "NumberOfEmployees__c": 3})),
    )
    .unwrap();
    let (s, body, _) = get(
        &c,
        query_url(sf.base_url(), "SELECT Id, Stage__c, NumberOfEmployees__c FROM Contact WHERE Annual__c = true AND NumberOfEmployees__c >= 10"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["totalSize"], 1);
    assert_eq!(body["records"][0]["Id"], big.as_str());
    assert_eq!(body["records"][0]["NumberOfEmployees__c"], 42);
    assert!(
        sf.insert_record(
            "Contact",
            fields(json!({"LastName": "X", "Annual__c": "yes"}))
        )
        .is_err()
    );
}

#[tokio::test]
async fn jwt_signatures_are_verified_with_the_configured_public_key() {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::KeyPair as _;

    let pem = |label: &str, der: &[u8]| {
        let b64 = STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    };
    let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let private: Pkcs8V1Der<'static> = key.as_der().unwrap();
    let public: PublicKeyX509Der<'static> = key.public_key().as_der().unwrap();
    let other = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let other_private: Pkcs8V1Der<'static> = other.as_der().unwrap();

    let (sf, c) = start(
        SalesforceConfig::default().with_jwt_public_key_pem(pem("PUBLIC KEY", public.as_ref())),
    )
    .await;
    let claims = json!({"iss": DEFAULT_CLIENT_ID, "sub": DEFAULT_USERNAME, "aud": "https://login.salesforce.com",
                        "exp": chrono::Utc::now().timestamp() + 120});
    let sign = |der: &[u8]| {
        let k =
            jsonwebtoken::EncodingKey::from_rsa_pem(pem("PRIVATE KEY", der).as_bytes()).unwrap();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &k,
        )
        .unwrap()
    };
    let url = format!("{}/services/oauth2/token", sf.base_url());
    let r = c
        .post(&url)
        .form(&[
            ("grant_type", JWT_BEARER_GRANT),
            ("assertion", &sign(private.as_ref())),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .post(&url)
        .form(&[
            ("grant_type", JWT_BEARER_GRANT),
            ("assertion", &sign(other_private.as_ref())),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["error_description"],
        "invalid assertion: bad signature"
    );
}

#[tokio::test]
async fn a_request_uri_over_16384_encoded_bytes_is_414() {
    let (sf, c) = start(SalesforceConfig::default()).await;
    // 'é' encodes to 6 bytes (%C3%A9): 2,000 of them are short in characters, long encoded.
    let literal = "é".repeat(2_750);
    let long = query_url(
        sf.base_url(),
        &format!("SELECT Id FROM Contact WHERE Email = '{literal}'"),
    );
    assert!(literal.chars().count() < 16_384 && long.len() > 16_384);
    let (s, _, _) = get(&c, long).await;
    assert_eq!(s, StatusCode::URI_TOO_LONG);
    let fits = query_url(
        sf.base_url(),
        &format!(
            "SELECT Id FROM Contact WHERE Email = '{}'",
            "é".repeat(2_600)
        ),
    );
    let (s, _, _) = get(&c, fits).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn collections_upsert_below_v46_is_not_found() {
    let (sf, c) = start(SalesforceConfig::default()).await;
    let body = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Contact"}, "Cativa_Member_Id__c": "m-1", "LastName": "One"}
    ]});
    let url = |v: &str| {
        format!(
            "{}/services/data/{v}/composite/sobjects/Contact/Cativa_Member_Id__c",
            sf.base_url()
        )
    };
    let (s, _) = send(&c, reqwest::Method::PATCH, url("v45.0"), body.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(sf.records("Contact").is_empty());
    let (s, out) = send(&c, reqwest::Method::PATCH, url("v46.0"), body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(out[0]["created"], true);
}

#[tokio::test]
async fn upsert_path_values_salesforce_cannot_route_are_not_found() {
    let (sf, c) = start(SalesforceConfig::default()).await;
    let base = format!(
        "{}/services/data/{V}/sobjects/Contact/Cativa_Member_Id__c",
        sf.base_url()
    );
    for encoded in ["a%2Fb", "%2E", "%2E%2E", "x%40email.inc"] {
        let (s, _) = send(
            &c,
            reqwest::Method::PATCH,
            format!("{base}/{encoded}"),
            json!({"LastName": "X"}),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{encoded}");
    }
    assert!(sf.records("Contact").is_empty());
    // Non-ASCII values travel percent-encoded and work.
    let (s, _) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{base}/J%C3%BCrgen-1"),
        json!({"LastName": "X"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn call_options_count_only_where_salesforce_documents_them() {
    let (sf, c) = start(SalesforceConfig::default()).await;
    let data = format!("{}/services/data/{V}", sf.base_url());
    // Collections: ignored, listed as misplaced, nothing stamped.
    let (_, out) = send(
        &c,
        reqwest::Method::POST,
        format!("{data}/composite/sobjects"),
        json!({"records": [{"attributes": {"type": "Contact"}, "LastName": "A"}]}),
    )
    .await;
    let a = out[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(sf.record(&a).unwrap().last_write_client, None);
    assert_eq!(sf.misplaced_call_options(), vec!["POST composite/sobjects"]);
    assert!(sf.call_clients().is_empty());
    // A row update and a query: recorded, and the write stamped.
    let (s, _) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{data}/sobjects/Contact/{a}"),
        json!({"Title": "CTO"}),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        sf.record(&a).unwrap().last_write_client.as_deref(),
        Some("cativa-sync")
    );
    let r = c
        .get(query_url(sf.base_url(), "SELECT Id FROM Contact"))
        .bearer_auth(DEFAULT_ACCESS_TOKEN)
        .header("Sforce-Call-Options", "client=cativa-sync")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(sf.call_clients(), vec!["cativa-sync"; 2]);
    assert_eq!(sf.misplaced_call_options().len(), 1);
}

#[tokio::test]
async fn api_writes_are_last_modified_by_the_integration_user() {
    use sync_sandbox::salesforce::{ADMIN_USER_ID, INTEGRATION_USER_ID};
    let (sf, c) = start(SalesforceConfig::default()).await;
    let (_, out) = send(
        &c,
        reqwest::Method::POST,
        format!("{}/services/data/{V}/composite/sobjects", sf.base_url()),
        json!({"records": [{"attributes": {"type": "Contact"}, "LastName": "A"}]}),
    )
    .await;
    let a = out[0]["id"].as_str().unwrap().to_owned();
    let q = format!("SELECT Id, CreatedById, LastModifiedById FROM Contact WHERE Id = '{a}'");
    let (_, page, _) = get(&c, query_url(sf.base_url(), &q)).await;
    assert_eq!(page["records"][0]["CreatedById"], INTEGRATION_USER_ID);
    assert_eq!(page["records"][0]["LastModifiedById"], INTEGRATION_USER_ID);
    // An edit made as a person moves LastModifiedById.
    sf.set_field(&a, "Title", json!("CTO")).unwrap();
    let (_, page, _) = get(&c, query_url(sf.base_url(), &q)).await;
    assert_eq!(page["records"][0]["LastModifiedById"], ADMIN_USER_ID);
    assert_eq!(page["records"][0]["CreatedById"], INTEGRATION_USER_ID);
    // The token response's identity URL names the integration user.
    let r: Value = c
        .post(format!("{}/services/oauth2/token", sf.base_url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("refresh_token", DEFAULT_REFRESH_TOKEN),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        r["id"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{INTEGRATION_USER_ID}"))
    );
}
