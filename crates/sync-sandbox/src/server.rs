//! What every sandbox server shares: the request pipeline (counting, rate limits,
//! fault injection) and the accept loop that serves connections itself, so that an
//! injected fault can close a connection without answering.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

use crate::SandboxError;
use crate::clock::Clock;
use crate::faults::{Decision, Fault, FaultConfig, FaultInjector, Timing};
use crate::inspect::{RequestCounts, RequestLog};
use crate::lock;
use crate::ratelimit::{LimitKind, LimitOutcome, Limiter, RateLimit, RateLimits};

/// Largest request body the sandbox buffers (HubSpot batches of 100 fit easily).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// How long a graceful shutdown waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Rate-limit state reported to a flavor for its response headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LimitInfo {
    pub(crate) window: Option<(RateLimit, u32)>,
    pub(crate) used_today: u64,
    pub(crate) daily: Option<u64>,
}

/// How one API shapes the responses the pipeline produces itself.
pub(crate) trait Flavor: Send + Sync + 'static {
    /// Response to a request refused by a limit.
    fn rate_limited(&self, kind: LimitKind, correlation_id: &str) -> Response;
    /// Response for an injected 429.
    fn injected_429(&self, correlation_id: &str) -> Response {
        self.rate_limited(
            LimitKind::Rolling {
                limit: RateLimit::hubspot_free(),
            },
            correlation_id,
        )
    }
    /// Response for an injected 500 or 503 (502/504 are gateway pages for every API).
    fn server_error(&self, status: StatusCode, correlation_id: &str) -> Response;
    /// Whether a route is a search (own limit).
    fn is_search(&self, template: &str) -> bool {
        template.ends_with("/search")
    }
    /// Whether a route is outside the API budget (token endpoints).
    fn exempt_from_limits(&self, template: &str) -> bool {
        template.contains("token")
    }
    /// Adds per-API headers to every counted response.
    fn decorate(&self, _template: &str, _headers: &mut HeaderMap, _info: &LimitInfo) {}
}

/// Marker on a response telling the connection loop to drop the connection instead
/// (with a TCP reset when `reset`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection {
    reset: bool,
}

/// Error the connection service returns to make hyper close the connection unanswered.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by injected fault")]
struct DroppedByFault;

/// Pipeline state of one server.
pub(crate) struct Core {
    flavor: Box<dyn Flavor>,
    pub(crate) clock: Arc<dyn Clock>,
    faults: Mutex<FaultInjector>,
    limiter: Mutex<Limiter>,
    pub(crate) log: RequestLog,
    correlation: AtomicU64,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

impl Core {
    pub(crate) fn new(
        flavor: Box<dyn Flavor>,
        clock: Arc<dyn Clock>,
        faults: FaultConfig,
        limits: RateLimits,
    ) -> Self {
        Self {
            flavor,
            clock,
            faults: Mutex::new(FaultInjector::new(faults)),
            limiter: Mutex::new(Limiter::new(limits)),
            log: RequestLog::default(),
            correlation: AtomicU64::new(1),
        }
    }

    /// A fresh correlation id (GUID-shaped, deterministic per server).
    pub(crate) fn correlation_id(&self) -> String {
        let n = self.correlation.fetch_add(1, Ordering::Relaxed);
        format!("5a4d0b00-0000-4000-8000-{n:012x}")
    }

    pub(crate) fn set_faults(&self, config: FaultConfig) {
        lock(&self.faults).reconfigure(config);
    }

    pub(crate) fn set_limits(&self, limits: RateLimits) {
        lock(&self.limiter).reconfigure(limits);
    }

    pub(crate) fn requests(&self) -> RequestCounts {
        RequestCounts(self.log.snapshot())
    }

    pub(crate) fn api_usage(&self) -> (u64, Option<u64>) {
        let l = lock(&self.limiter);
        (l.used_today, l.config.daily)
    }
}

/// Adds the inspection routes every server has, the pipeline, and the shared state.
pub(crate) fn finish(api: Router, core: Arc<Core>) -> Router {
    let inspection = Router::new()
        .route("/__sandbox/requests", get(requests_json))
        .route("/__sandbox/requests/reset", post(reset_requests))
        .with_state(core.clone());
    api.merge(inspection)
        .layer(middleware::from_fn_with_state(core, pipeline))
}

async fn requests_json(State(core): State<Arc<Core>>) -> Response {
    axum::Json(core.requests()).into_response()
}

async fn reset_requests(State(core): State<Arc<Core>>) -> StatusCode {
    core.log.reset();
    StatusCode::NO_CONTENT
}

async fn pipeline(State(core): State<Arc<Core>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path.starts_with("/__sandbox") {
        return next.run(req).await;
    }
    let method = req.method().as_str().to_owned();
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let key = match &template {
        Some(t) => format!("{method} {t}"),
        None => format!("{method} {path} (unmatched)"),
    };
    let template = template.unwrap_or(path);

    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            core.log.record(&key, Some(413), false, None);
            return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
        }
    };

    // Limits first, as an API gateway would.
    let limit_info = match check_limits(&core, &template) {
        Ok(info) => info,
        Err(resp) => {
            core.log
                .record(&key, Some(resp.status().as_u16()), true, None);
            return *resp;
        }
    };

    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let (decision, fault_config) = {
        let mut faults = lock(&core.faults);
        let d = faults.decide(&method, &path_and_query, &bytes);
        (d, faults.config.clone())
    };

    let request = Request::from_parts(parts, Body::from(bytes));
    let mut resp = respond(&core, decision, &fault_config, request, next).await;
    let dropped = resp.extensions().get::<DropConnection>().is_some();
    if !dropped {
        core.flavor
            .decorate(&template, resp.headers_mut(), &limit_info);
    }
    tracing::debug!(
        endpoint = %key,
        status = resp.status().as_u16(),
        fault = ?decision.fault,
        dropped,
        "sandbox request"
    );
    core.log.record(
        &key,
        (!dropped).then(|| resp.status().as_u16()),
        false,
        decision.fault,
    );
    resp
}

/// The rate limits' verdict on one request: the headers' figures when allowed, the refusal
/// (decorated like a real one) otherwise.
fn check_limits(core: &Core, template: &str) -> Result<LimitInfo, Box<Response>> {
    if core.flavor.exempt_from_limits(template) {
        let (used, daily) = core.api_usage();
        return Ok(LimitInfo {
            window: None,
            used_today: used,
            daily,
        });
    }
    let now = core.clock.elapsed();
    let mut limiter = lock(&core.limiter);
    let outcome = limiter.check(core.flavor.is_search(template), now);
    let send_retry_after = limiter.config.send_retry_after;
    let info = LimitInfo {
        window: None,
        used_today: limiter.used_today,
        daily: limiter.config.daily,
    };
    drop(limiter);
    match outcome {
        LimitOutcome::Allowed { window } => Ok(LimitInfo { window, ..info }),
        LimitOutcome::Refused { kind, retry_in } => {
            let mut resp = core.flavor.rate_limited(kind, &core.correlation_id());
            if send_retry_after && let Some(wait) = retry_in {
                set_retry_after(resp.headers_mut(), wait);
            }
            core.flavor.decorate(template, resp.headers_mut(), &info);
            Err(Box::new(resp))
        }
    }
}

/// Serves the request through the API, or injects the fault decided for it (before the
/// API runs, or after, replacing its answer).
async fn respond(
    core: &Core,
    decision: Decision,
    fault_config: &FaultConfig,
    request: Request,
    next: Next,
) -> Response {
    match decision {
        Decision {
            fault: Some(Fault::Slow),
            ..
        } => {
            tokio::time::sleep(fault_config.slow_delay).await;
            next.run(request).await
        }
        Decision {
            fault: Some(fault),
            timing: Timing::Before,
        } => injected(core, fault, fault_config),
        Decision {
            fault: Some(fault),
            timing: Timing::After,
        } => {
            let real = next.run(request).await;
            if fault == Fault::TruncatedBody {
                truncate(real).await
            } else {
                injected(core, fault, fault_config)
            }
        }
        Decision { fault: None, .. } => next.run(request).await,
    }
}

fn injected(core: &Core, fault: Fault, config: &FaultConfig) -> Response {
    let cid = core.correlation_id();
    match fault {
        Fault::TooManyRequests => {
            let mut r = core.flavor.injected_429(&cid);
            if let Some(wait) = config.retry_after {
                set_retry_after(r.headers_mut(), wait);
            }
            r
        }
        Fault::Status(s) if s == 502 || s == 504 => gateway_page(s),
        Fault::Status(s) => {
            let status = StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut r = core.flavor.server_error(status, &cid);
            if s == 503
                && let Some(wait) = config.retry_after
            {
                set_retry_after(r.headers_mut(), wait);
            }
            r
        }
        Fault::DropConnection | Fault::ResetConnection => {
            let mut r = Response::new(Body::empty());
            r.extensions_mut().insert(DropConnection {
                reset: fault == Fault::ResetConnection,
            });
            r
        }
        // Truncation needs the real response; slow is handled by the caller.
        Fault::TruncatedBody | Fault::Slow => core
            .flavor
            .server_error(StatusCode::INTERNAL_SERVER_ERROR, &cid),
    }
}

fn set_retry_after(headers: &mut HeaderMap, wait: Duration) {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        headers.insert(header::RETRY_AFTER, v);
    }
}

/// A proxy's error page: HTML, not the API's JSON, as real gateways answer.
fn gateway_page(status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let reason = code.canonical_reason().unwrap_or("Gateway Error");
    let body = format!(
        "<html><head><title>{status} {reason}</title></head><body><center><h1>{status} {reason}</h1></center><hr><center>sandbox-gateway</center></body></html>\n"
    );
    (
        code,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn truncate(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let cut = if bytes.len() >= 2 {
        bytes.slice(0..bytes.len() / 2)
    } else {
        bytes::Bytes::from_static(b"{")
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(cut))
}

/// A running listener.
#[derive(Debug)]
pub(crate) struct Listener {
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Listener {
    /// Binds 127.0.0.1:`port` (0 for any free port).
    pub(crate) async fn bind(port: u16) -> Result<(TcpListener, SocketAddr), SandboxError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SandboxError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SandboxError::Bind { addr, source })?;
        Ok((listener, addr))
    }

    /// Serves `router` on a bound listener.
    pub(crate) fn serve(listener: TcpListener, router: Router) -> Self {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, router, rx));
        Self {
            shutdown: tx,
            task: Some(task),
        }
    }

    /// Stops accepting, lets in-flight requests finish (bounded), and waits.
    pub(crate) async fn shutdown(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

async fn accept_loop(listener: TcpListener, router: Router, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(stream, router.clone(), stop.clone()));
                }
            }
            _ = stop.changed() => break,
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}

/// A TCP stream that is reset (zero linger, so the close sends RST) instead of closed
/// when a fault asked for it.
struct ResettableStream {
    inner: tokio::net::TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl tokio::io::AsyncRead for ResettableStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    mut stop: watch::Receiver<bool>,
) {
    let reset = Arc::new(AtomicBool::new(false));
    let flag = reset.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let router = router.clone();
        let flag = flag.clone();
        async move {
            let resp: Response = match router.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            if let Some(drop) = resp.extensions().get::<DropConnection>() {
                if drop.reset {
                    flag.store(true, Ordering::SeqCst);
                }
                return Err(DroppedByFault);
            }
            Ok::<_, DroppedByFault>(resp)
        }
    });
    let io = TokioIo::new(ResettableStream {
        inner: stream,
        reset,
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}
