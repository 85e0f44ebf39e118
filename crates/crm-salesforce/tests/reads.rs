//! Queries paged to `done`, the `updated` / `deleted` windows and their limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, TimeZone, Utc};
use common::*;
use crm_salesforce::Error;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn query_follows_next_records_url_until_done() {
    let (server, client) = setup().await;
    let soql = "SELECT Id, Email FROM Contact";
    let p2 = format!("{V}/query/01gRO0000016PIAYA2-2000");
    let p3 = format!("{V}/query/01gRO0000016PIAYA2-4000");
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .and(query_param("q", soql))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Sforce-Limit-Info", "api-usage=10/100000")
                .set_body_json(query_page(
                    vec![json!({"Id": "003A"}), json!({"Id": "003B"})],
                    Some(&p2),
                )),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p2.as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Sforce-Limit-Info", "api-usage=11/100000")
                .set_body_json(query_page(vec![json!({"Id": "003C"})], Some(&p3))),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p3.as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Sforce-Limit-Info", "api-usage=12/100000")
                .set_body_json(query_page(vec![json!({"Id": "003D"})], None)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let all: Vec<Value> = client.query_to_end(soql, false).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|r| r["Id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["003A", "003B", "003C", "003D"]);
    assert_eq!(
        client.last_api_usage().unwrap().used,
        12,
        "the latest figure wins"
    );
    // A foreign continuation link is refused before any request.
    assert!(matches!(
        client
            .query_more::<Value>("https://evil.example.com/steal")
            .await,
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn query_all_uses_its_own_resource() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/queryAll")))
        .and(query_param(
            "q",
            "SELECT Id FROM Contact WHERE IsDeleted = true",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(query_page(
            vec![json!({"Id": "003X", "IsDeleted": true})],
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let page = client
        .query_all::<Value>("SELECT Id FROM Contact WHERE IsDeleted = true")
        .await
        .unwrap();
    assert!(page.done && page.total_size == 1);
}

#[tokio::test]
async fn get_updated_and_deleted_windows_and_their_limits() {
    let (server, client) = setup().await;
    let start = fixed_now() - Duration::days(2);
    Mock::given(method("GET"))
        .and(path(format!("{V}/sobjects/Lead/updated/")))
        .and(query_param("start", "2026-11-21T12:00:00+00:00"))
        .and(query_param("end", "2026-11-23T12:00:00+00:00"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"ids": ["00QA", "00QB"], "latestDateCovered": "2026-11-23T11:59:00.000+0000"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let updated = client
        .get_updated("Lead", start, fixed_now())
        .await
        .unwrap();
    assert_eq!(updated.ids, vec!["00QA", "00QB"]);
    assert_eq!(
        updated.latest_date_covered,
        Utc.with_ymd_and_hms(2026, 11, 23, 11, 59, 0).unwrap()
    );
    // The raw query string encodes ':' and '+' as the docs require.
    let req = requests_to(&server, "GET", &format!("{V}/sobjects/Lead/updated/")).await;
    assert!(
        req[0]
            .url
            .query()
            .unwrap()
            .contains("start=2026-11-21T12%3A00%3A00%2B00%3A00"),
        "{:?}",
        req[0].url.query()
    );

    // Outside the windows: refused before any request, with the way out in the message.
    let too_old = client
        .get_updated("Lead", fixed_now() - Duration::days(31), fixed_now())
        .await
        .unwrap_err();
    assert!(
        matches!(&too_old, Error::Window(m) if m.contains("30 days") && m.contains("full reconcile"))
    );
    let too_old = client
        .get_deleted("Contact", fixed_now() - Duration::days(16), fixed_now())
        .await
        .unwrap_err();
    assert!(matches!(&too_old, Error::Window(m) if m.contains("15 days")));
    let backwards = client
        .get_deleted("Contact", fixed_now(), fixed_now() - Duration::hours(1))
        .await
        .unwrap_err();
    assert!(matches!(backwards, Error::Window(_)));
    assert!(matches!(
        client
            .get_updated("Contact; DROP", start, fixed_now())
            .await,
        Err(Error::Config(_))
    ));
    assert_eq!(
        requests_to(&server, "GET", &format!("{V}/sobjects/Contact/deleted/"))
            .await
            .len(),
        0
    );
}

#[tokio::test]
async fn exceeded_id_limit_is_an_invalid_request() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/sobjects/Contact/updated/")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!([{
            "message": "Too many ids were requested", "errorCode": "EXCEEDED_ID_LIMIT"
        }])))
        .mount(&server)
        .await;
    let err = client
        .get_updated("Contact", fixed_now() - Duration::days(1), fixed_now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("EXCEEDED_ID_LIMIT"));
    assert_eq!(err.remote_kind(), sync_core::RemoteErrorKind::Invalid);
}

#[tokio::test]
async fn query_batch_size_travels_in_sforce_query_options_on_every_page() {
    let server = wiremock::MockServer::start().await;
    mount_tokens(&server).await;
    let client = builder(&server).query_batch_size(500).build().unwrap();
    let next = format!("{V}/query/01gXX-500");
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .and(wiremock::matchers::header(
            "sforce-query-options",
            "batchSize=500",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(query_page(vec![json!({"Id": "003A"})], Some(&next))),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(next.as_str()))
        .and(wiremock::matchers::header(
            "sforce-query-options",
            "batchSize=500",
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(query_page(vec![json!({"Id": "003B"})], None)),
        )
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        client
            .query_to_end::<Value>("SELECT Id FROM Contact", false)
            .await
            .unwrap()
            .len(),
        2
    );
    for bad in [100, 2001] {
        assert!(matches!(
            builder(&server).query_batch_size(bad).build(),
            Err(Error::Config(_))
        ));
    }
}

#[tokio::test]
async fn org_limits() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/limits")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "DailyApiRequests": {"Max": 15000, "Remaining": 14998, "Cativa Sync": {"Max": 0, "Remaining": 0}},
            "DataStorageMB": {"Max": 5, "Remaining": 5}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let limits = client.limits().await.unwrap();
    let daily = limits["DailyApiRequests"];
    assert_eq!((daily.max, daily.remaining), (15000, 14998));
}

#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn crossing_90_percent_of_the_daily_allowance_logs_one_warning() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (server, client) = setup().await;
    for (i, used) in [8_000, 9_100, 9_200].iter().enumerate() {
        Mock::given(method("GET"))
            .and(path(format!("{V}/query")))
            .and(query_param(
                "q",
                format!("SELECT Id FROM Contact LIMIT {}", i + 1),
            ))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("Sforce-Limit-Info", format!("api-usage={used}/10000"))
                    .set_body_json(query_page(vec![], None)),
            )
            .mount(&server)
            .await;
        client
            .query::<Value>(&format!("SELECT Id FROM Contact LIMIT {}", i + 1))
            .await
            .unwrap();
    }
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text.matches("daily API usage passed 90%").count(),
        1,
        "{text}"
    );
    assert!(text.contains("used=9100"), "{text}");
}
