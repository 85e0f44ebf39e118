//! The webhook receiver: an axum router with `POST /webhooks/cativa/{event}`,
//! `POST /webhooks/cativa` and `POST /webhooks/hubspot`, verifying each delivery on its raw
//! body and handing it to the engine.
//!
//! Cativa bodies do not name their event: each Console listener is subscribed to one event.
//! Point each listener at its event's route (`/webhooks/cativa/user_created`,
//! `/webhooks/cativa/user_received_badge`, `/webhooks/cativa/user_joined_group`), or
//! point them all at `/webhooks/cativa` and map each listener's `X-Cativa-Automation-Id`
//! to its event (`CATIVA_AUTOMATION_EVENTS`, see [`crate::settings`]). A delivery whose
//! event cannot be determined is refused with 422, never acknowledged.
//!
//! Answers:
//!
//! | Status | Body | When |
//! |---|---|---|
//! | 200 | `{"status":"accepted"}` | verified and processed |
//! | 200 | `{"status":"duplicate"}` | verified, already processed (a retry): nothing done |
//! | 409 | `{"status":"in_progress","error":"..."}` + `Retry-After` | another copy of this delivery is being processed: retry |
//! | 401 | `{"error":"...","code":"..."}` | missing, bad or stale signature |
//! | 400 | `{"error":"...","code":"..."}` | malformed body or headers: a header repeated, an id too long or not a GUID, an invisible character in an email, a key repeated in the body |
//! | 404 | `{"error":"..."}` | `/webhooks/cativa/{event}` with an unknown event |
//! | 413 | `{"error":"...","code":"..."}` | body over [`MAX_BODY_BYTES`] |
//! | 422 | `{"error":"...","code":"..."}` | event type undetermined (no route, no automation mapping), a body naming another event, or a field the event requires missing |
//! | 500 | `{"error":"..."}` | the engine failed: the sender retries later |
//!
//! A refusal by the connector carries its stable `code` (`signature_invalid`,
//! `timestamp_out_of_range`, `body_too_large`, `missing_field`, ...; the `cativa-client` and
//! `crm-hubspot` READMEs list them): the status and code come from the connector's
//! `WebhookError::http_status` and `WebhookError::code`.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use crm_hubspot::HubSpotSource;
use serde_json::json;
use sync_core::{DeliveryOutcome, TenantId};
use sync_engine::SyncEngine;
use tracing::warn;

/// The largest body accepted on either route (1 MiB; HubSpot sends at most 100 events).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the routes need.
pub struct ReceiverState {
    /// The engine (with a CRM source and sink for `user_created` provisioning).
    pub engine: SyncEngine,
    /// The tenant deliveries belong to.
    pub tenant: TenantId,
    /// Verifies Cativa deliveries (`CATIVA_WEBHOOK_SECRET`), with the automation id to
    /// event map for `/webhooks/cativa` (`CATIVA_AUTOMATION_EVENTS`); see
    /// [`crate::settings::Settings::cativa_webhook_receiver`].
    pub cativa: cativa_client::webhook::WebhookReceiver,
    /// Verifies HubSpot deliveries (`HUBSPOT_CLIENT_SECRET`, signed over
    /// `WEBHOOK_PUBLIC_URL`) and reads the contacts they name. `None`: the route answers 404.
    pub hubspot: Option<(crm_hubspot::webhook::WebhookReceiver, Arc<HubSpotSource>)>,
}

impl std::fmt::Debug for ReceiverState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverState")
            .field("tenant", &self.tenant)
            .field("hubspot", &self.hubspot.is_some())
            .finish_non_exhaustive()
    }
}

/// The routes, with the body limit applied.
pub fn router(state: Arc<ReceiverState>) -> Router {
    let mut router = Router::new()
        .route("/webhooks/cativa", post(cativa))
        .route("/webhooks/cativa/{event}", post(cativa_event));
    if state.hubspot.is_some() {
        router = router.route("/webhooks/hubspot", post(hubspot));
    }
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// A refused delivery: the status the connector chose, its message and its stable code.
fn refused(status: u16, code: &'static str, message: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        axum::Json(json!({ "error": message, "code": code })),
    )
        .into_response()
}

fn status(outcome: &DeliveryOutcome) -> Response {
    let status = match outcome {
        DeliveryOutcome::Duplicate => "duplicate",
        DeliveryOutcome::InProgress => {
            // Another copy holds the delivery: the sender must retry (if that copy fails,
            // the retry processes it; if not, the retry is answered `duplicate`).
            return (
                StatusCode::CONFLICT,
                [(axum::http::header::RETRY_AFTER, "5")],
                axum::Json(json!({
                    "status": "in_progress",
                    "error": "this delivery is being processed by another request; retry later"
                })),
            )
                .into_response();
        }
        _ => "accepted",
    };
    (StatusCode::OK, axum::Json(json!({ "status": status }))).into_response()
}

fn accepted() -> Response {
    (StatusCode::OK, axum::Json(json!({ "status": "accepted" }))).into_response()
}

fn body_error(e: &BytesRejection) -> Response {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body exceeds the {MAX_BODY_BYTES}-byte limit"),
        )
    } else {
        error(
            e.status(),
            format!("cannot read the body: {}", e.body_text()),
        )
    }
}

fn engine_error(e: &dyn std::error::Error) -> Response {
    warn!(error = %e, "delivery failed; the sender will retry");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("processing failed, retry later: {e}"),
    )
}

async fn cativa(
    State(state): State<Arc<ReceiverState>>,
    parts: Parts,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_error(&e),
    };
    let delivery = state.cativa.receive_now(&parts, &body);
    cativa_delivery(&state, delivery).await
}

async fn cativa_event(
    State(state): State<Arc<ReceiverState>>,
    Path(event): Path<String>,
    parts: Parts,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let kind = match event.parse::<cativa_client::webhook::EventType>() {
        Ok(k) => k,
        Err(e) => return error(StatusCode::NOT_FOUND, e.to_string()),
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_error(&e),
    };
    let delivery = state
        .cativa
        .receive_event(kind, &parts, &body, std::time::SystemTime::now());
    cativa_delivery(&state, delivery).await
}

async fn cativa_delivery(
    state: &ReceiverState,
    delivery: Result<cativa_client::webhook::Delivery, cativa_client::webhook::WebhookError>,
) -> Response {
    let delivery = match delivery {
        Ok(d) => d,
        Err(e) => return refused(e.http_status(), e.code(), e.to_string()),
    };
    let Some(event) = delivery.to_community_event() else {
        // Only for an event type added to the client after this receiver was written:
        // refused so that it is retried once the receiver handles it.
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "event {} is not handled by this receiver",
                delivery.event.event_type()
            ),
        );
    };
    match state
        .engine
        .handle_community_event(&state.tenant, delivery.execution_id.as_str(), event)
        .await
    {
        Ok(outcome) => status(&outcome),
        Err(e) => engine_error(&e),
    }
}

async fn hubspot(
    State(state): State<Arc<ReceiverState>>,
    parts: Parts,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some((receiver, source)) = &state.hubspot else {
        return error(StatusCode::NOT_FOUND, "HubSpot webhooks are not configured");
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_error(&e),
    };
    let delivery = match receiver.receive_now(&parts, &body) {
        Ok(d) => d,
        Err(e) => return refused(e.http_status(), e.code(), e.to_string()),
    };
    if delivery.events.is_empty() {
        // Only echoes of the SDK's own writes, or nothing at all.
        return accepted();
    }
    let contacts = match source
        .contacts_for(&state.tenant, &delivery.contact_signals())
        .await
    {
        Ok(c) => c,
        Err(e) => return engine_error(&e),
    };
    match state
        .engine
        .handle_crm_contacts(&state.tenant, &delivery.ledger_ids(), contacts)
        .await
    {
        Ok(outcome) => status(&outcome),
        Err(e) => engine_error(&e),
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting connections and
/// waits for the requests in flight (deliveries being processed) to finish before returning.
///
/// # Errors
/// Accepting connections failed.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The listen address: `--listen ADDR` in `args` (without the program name), else
/// `LISTEN_ADDR` through `lookup`, else `default` (e.g. `127.0.0.1:8080`).
///
/// # Errors
/// [`ExampleError::Usage`] for another argument or a bad address.
pub fn listen_addr(
    args: impl IntoIterator<Item = String>,
    lookup: impl Fn(&str) -> Option<String>,
    default: &str,
) -> Result<std::net::SocketAddr, crate::ExampleError> {
    let mut args = args.into_iter();
    let mut listen = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next(),
            other => match other.strip_prefix("--listen=") {
                Some(v) => listen = Some(v.to_owned()),
                None => {
                    return Err(crate::ExampleError::Usage(format!(
                        "unknown argument {other:?} (expected --listen ADDR)"
                    )));
                }
            },
        }
    }
    let raw = listen
        .or_else(|| lookup("LISTEN_ADDR").filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| default.to_owned());
    raw.trim().parse().map_err(|_| {
        crate::ExampleError::Usage(format!(
            "listen address {raw:?} is not host:port, e.g. 0.0.0.0:8080"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http::Request;
    use secrecy::SecretString;
    use sync_core::MemoryStore;
    use tower::ServiceExt;

    const SECRET: &str = "whsec_test";
    const HUBSPOT_URL: &str = "https://hooks.example.com/webhooks/hubspot";

    fn app() -> Router {
        let config = sync_core::SyncConfig::from_toml_str(crate::settings::DEFAULT_CONFIG)
            .unwrap()
            .validate()
            .unwrap();
        let engine = SyncEngine::builder(config, Arc::new(MemoryStore::new())).build();
        // Never called: every request here is refused before a contact is read.
        let client =
            crate::setup::hubspot_client("http://127.0.0.1:9", SecretString::from("t")).unwrap();
        router(Arc::new(ReceiverState {
            engine,
            tenant: TenantId::new("t"),
            cativa: cativa_client::webhook::WebhookReceiver::new(
                cativa_client::webhook::SignatureVerifier::new(SecretString::from(SECRET)).unwrap(),
            ),
            hubspot: Some((
                crm_hubspot::webhook::WebhookReceiver::new(
                    crm_hubspot::webhook::SignatureVerifier::new(SecretString::from(SECRET))
                        .with_public_url(HUBSPOT_URL),
                ),
                Arc::new(crate::setup::hubspot_source(client, "cativa_tags")),
            )),
        }))
    }

    async fn post(
        app: &Router,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = Request::post(path);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    /// The clock the routes read (they call `receive_now`), in milliseconds.
    fn now_ms() -> i64 {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        i64::try_from(since.as_millis()).unwrap()
    }

    fn now() -> i64 {
        now_ms() / 1000
    }

    fn cativa_signed(body: &[u8], t: i64) -> Vec<(&'static str, String)> {
        let secret = SecretString::from(SECRET);
        vec![
            (
                "x-cativa-signature",
                cativa_client::webhook::sign(&secret, t, body),
            ),
            ("x-cativa-execution-id", "exec-1".to_owned()),
        ]
    }

    const CUSTOMER: &str = "8c1f0b7e-1111-2222-3333-444455556666";

    fn user_body(user: &str, email: &str) -> Vec<u8> {
        format!(r#"{{"CustomerId":"{CUSTOMER}","User":{{"Id":"{user}","Email":"{email}"}}}}"#)
            .into_bytes()
    }

    #[tokio::test]
    async fn cativa_route_answers_each_failure_with_its_status_and_a_json_error() {
        let app = app();
        let route = "/webhooks/cativa/user_created";
        let user = user_body("0b7e8c1f-aaaa-4bbb-8ccc-000000000001", "jane@example.com");
        let (s, b) = post(&app, route, &cativa_signed(&user, now()), user.clone()).await;
        assert_eq!((s, b), (StatusCode::OK, json!({"status": "accepted"})));
        let (s, b) = post(&app, route, &cativa_signed(&user, now()), user.clone()).await;
        assert_eq!(
            (s, b),
            (StatusCode::OK, json!({"status": "duplicate"})),
            "same execution id"
        );

        let (s, b) = post(
            &app,
            route,
            &cativa_signed(&user, now() - 3_600),
            user.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(b["error"].as_str().unwrap().contains("stale"), "{b}");
        let (s, b) = post(&app, route, &[], user.clone()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");

        let broken = user_body("0b7e8c1f-aaaa-4bbb-8ccc-000000000002", "not an email");
        let (s, b) = post(&app, route, &cativa_signed(&broken, now()), broken.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(b["error"].as_str().unwrap().contains("User.Email"), "{b}");

        let big = vec![b' '; MAX_BODY_BYTES + 1];
        let (s, b) = post(&app, route, &cativa_signed(&big, now()), big.clone()).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(b["error"].as_str().unwrap().contains("limit"), "{b}");

        let (s, b) = post(
            &app,
            "/webhooks/cativa/user_deleted",
            &cativa_signed(&user, now()),
            user.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
        assert!(b["error"].as_str().unwrap().contains("user_created"), "{b}");
    }

    #[tokio::test]
    async fn an_undetermined_or_incomplete_delivery_is_422_and_never_accepted() {
        let app = app();
        // The documented payload on the shared route, from a listener nobody mapped.
        let user = user_body("0b7e8c1f-aaaa-4bbb-8ccc-000000000003", "ann@example.com");
        let (s, b) = post(
            &app,
            "/webhooks/cativa",
            &cativa_signed(&user, now()),
            user.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert!(
            b["error"].as_str().unwrap().contains("Automation-Id"),
            "{b}"
        );
        // Any JSON object is not a user_created.
        let hello = br#"{"hello":"world"}"#.to_vec();
        let (s, b) = post(
            &app,
            "/webhooks/cativa/user_created",
            &cativa_signed(&hello, now()),
            hello.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert!(b["error"].as_str().unwrap().contains("CustomerId"), "{b}");
        // A body naming another event than its route.
        let named = format!(
            r#"{{"Event":"user_joined_group","CustomerId":"{CUSTOMER}","User":{{"Id":"0b7e8c1f-aaaa-4bbb-8ccc-000000000004","Email":"bo@example.com"}}}}"#
        )
        .into_bytes();
        let (s, b) = post(
            &app,
            "/webhooks/cativa/user_created",
            &cativa_signed(&named, now()),
            named.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert!(b["error"].as_str().unwrap().contains("mismatch"), "{b}");
    }

    #[tokio::test]
    async fn shutdown_lets_the_delivery_in_flight_finish() {
        let app = Router::new().route(
            "/slow",
            axum::routing::post(|| async {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                "done"
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_until(listener, app, async {
            let _ = stopped.await;
        }));
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        stop.send(()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("done"), "{response}");
        server.await.unwrap().unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "no longer accepting"
        );
    }

    #[tokio::test]
    async fn hubspot_route_checks_the_v3_signature_over_the_public_url() {
        let app = app();
        let body = br#"[{"portalId":1,"occurredAt":1,"subscriptionType":"contact.creation","objectId":7}]"#;
        let ts = now_ms().to_string();
        let signed = |url: &str, body: &[u8]| {
            vec![
                (
                    "x-hubspot-signature-v3",
                    crm_hubspot::webhook::v3_signature(SECRET, "POST", url, body, &ts),
                ),
                ("x-hubspot-request-timestamp", ts.clone()),
            ]
        };
        let (s, b) = post(
            &app,
            "/webhooks/hubspot",
            &signed("http://internal:8080/webhooks/hubspot", body),
            body.to_vec(),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "signed over another URL: {b}");
        let (s, b) = post(&app, "/webhooks/hubspot", &[], body.to_vec()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
        let junk = b"{not json";
        let (s, b) = post(
            &app,
            "/webhooks/hubspot",
            &signed(HUBSPOT_URL, junk),
            junk.to_vec(),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert!(b["error"].is_string());
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        let (s, _) = post(
            &app,
            "/webhooks/hubspot",
            &signed(HUBSPOT_URL, &big),
            big.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn the_flag_wins_over_the_environment() {
        const D: &str = "127.0.0.1:8080";
        let env = |v: &str| (v == "LISTEN_ADDR").then(|| "0.0.0.0:9000".to_owned());
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            listen_addr(args(&["--listen", "127.0.0.1:7000"]), env, D).unwrap(),
            "127.0.0.1:7000".parse().unwrap()
        );
        assert_eq!(
            listen_addr(args(&[]), env, D).unwrap(),
            "0.0.0.0:9000".parse().unwrap()
        );
        assert_eq!(
            listen_addr(args(&[]), |_| None, D).unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert!(listen_addr(args(&["--listen", "nowhere"]), |_| None, D).is_err());
        assert!(listen_addr(args(&["--port"]), |_| None, D).is_err());
    }
}
