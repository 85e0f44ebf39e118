//! Tracing output of a request. Alone in its own test binary: tracing caches per-callsite
//! interest process-wide, so a test running on another thread without a subscriber could
//! hide this test's events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use serde_json::json;
use sync_http::HttpClient;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "test-key-0123456789";

fn client(server: &MockServer) -> HttpClient {
    HttpClient::builder(server.uri())
        .bearer(SecretString::from(KEY))
        .without_timeouts()
        .build()
        .unwrap()
}

#[tokio::test]
async fn tracing_output_has_the_span_fields_and_no_secret() {
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    let buf = Buf::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(buf.clone())
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"message": format!("Bearer {KEY}")})),
        )
        .mount(&server)
        .await;
    let _ = client(&server).get("/v1/users?api_key=zzz").send().await;
    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(out.contains("http.request"), "{out}");
    assert!(out.contains("path=/v1/users"), "{out}");
    assert!(out.contains("status=404"), "{out}");
    assert!(out.contains("attempt=1"), "{out}");
    assert!(out.contains("latency_ms="), "{out}");
    assert!(!out.contains(KEY), "{out}");
    assert!(!out.contains("zzz"), "{out}");
}
