//! Serving the router standalone: hyper connections with a header read timeout, and a
//! graceful shutdown that stops accepting, lets in-flight requests finish (up to the grace
//! period), then stops the background work and releases what this instance holds.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::{Error, Service};

impl Service {
    /// Serves the hardened [`crate::router`] on `listener`, with the background work
    /// (drainer, scheduled pulls, retention), until `shutdown` resolves (use
    /// [`crate::shutdown_signal`] for SIGTERM and Ctrl-C). Then it stops accepting, marks
    /// itself not ready, waits for in-flight deliveries (up to the shutdown grace), lets the
    /// drainer finish its batch, and releases its outbox claims and leader lease.
    ///
    /// Before accepting anything it registers its instance id with the store, taking back at
    /// once the claims its previous incarnation held (a restart after `kill -9` resumes that
    /// work without waiting out a lease); the drainer applies them right away.
    ///
    /// # Errors
    /// The store failed at registration.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        let registration = self.shared.engine.register(&self.shared.tenant).await?;
        if registration.taken_back > 0 {
            tracing::info!(
                taken_back = registration.taken_back,
                "took back the outbox claims of this instance's previous run"
            );
        }
        let background = self.spawn_background();
        let app = crate::router(&self);
        accept_loop(&self, listener, app, shutdown).await;
        background.shutdown().await;
        Ok(())
    }
}

async fn accept_loop(
    service: &Service,
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
) {
    let limits = &service.shared.options.http;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // The JSON 431 of the header limits middleware is reached before hyper's own.
        .max_headers(limits.max_headers.saturating_mul(2).max(100));
    let graceful = GracefulShutdown::new();
    let service_fn = TowerToHyperService::new(app);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let conn = http.serve_connection(TokioIo::new(stream), service_fn.clone());
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors, mostly: pause instead of spinning; the
                    // header timeout frees idle connections meanwhile.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    service.shared.shutting_down.store(true, Ordering::SeqCst);
    tracing::info!("shutdown requested: no new connections; finishing in-flight requests");
    let grace = service.shared.options.shutdown_grace;
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("in-flight requests finished"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(grace_secs = grace.as_secs(), "shutdown grace elapsed; closing the remaining connections");
        }
    }
}
