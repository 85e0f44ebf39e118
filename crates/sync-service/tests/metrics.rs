//! `GET /metrics` (feature `prometheus`): the Prometheus text of what the service counted.
#![cfg(feature = "prometheus")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use http::Request;
use sync_core::{MemoryStore, SyncConfig, TenantId};
use sync_engine::SyncEngine;
use sync_service::Service;
use tower::ServiceExt;

#[tokio::test]
async fn metrics_are_served_as_prometheus_text() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let config = SyncConfig::default().validate().unwrap();
    let engine = SyncEngine::builder(config, Arc::new(MemoryStore::new())).build();
    let service = Service::builder(engine, TenantId::new("t"))
        .prometheus(handle)
        .build();
    let app = sync_service::router(&service);
    // Something to count: a load-shed or not, every refusal by a layer is counted; a
    // delivery counter is emitted by the engine. Count one directly so the text is not empty.
    metrics::counter!("cativa_sync_http_shed_total").increment(1);
    let response = app
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains("cativa_sync_http_shed_total 1"), "{text}");
}
