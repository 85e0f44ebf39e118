//! The service's tuning: HTTP hardening, the drainer, the pull schedule, retention and
//! shutdown. Plain data with documented defaults; [`crate::ServiceConfig`] fills it from a
//! TOML file and the environment.

use std::time::Duration;

/// Limits and timeouts of the HTTP side. The defaults suit a receiver behind a load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpLimits {
    /// How long a client may take to send the request line and headers before its connection
    /// is closed (slow-header clients never hold a connection longer). Default 10 s.
    pub header_read_timeout: Duration,
    /// How long reading the body may take. Default 30 s.
    pub body_read_timeout: Duration,
    /// How long a whole request may take, processing included. Default 60 s.
    pub request_timeout: Duration,
    /// Requests processed at once; more are shed with 503 and `Retry-After`. Default 256.
    pub max_concurrency: usize,
    /// The largest body accepted, checked before any parsing. Default 1 MiB.
    pub max_body_bytes: usize,
    /// The largest total size of the request headers (names and values). Default 16 KiB.
    pub max_header_bytes: usize,
    /// The most header fields in one request. Default 100.
    pub max_headers: usize,
    /// The `Retry-After` (seconds) sent with 503 and 409 answers. Default 5.
    pub retry_after_secs: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            max_concurrency: 256,
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            retry_after_secs: 5,
        }
    }
}

/// The continuous outbox drainer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DrainOptions {
    /// Whether this instance drains at all. Default `true`: every instance drains.
    pub enabled: bool,
    /// How often an idle drainer looks for due work (retries coming due, leases expiring).
    /// Work enqueued by this process wakes it at once. Default 1 s.
    pub idle_interval: Duration,
}

impl Default for DrainOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            idle_interval: Duration::from_secs(1),
        }
    }
}

/// When a full reconcile runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FullReconcile {
    /// Never on a schedule (run it yourself).
    Never,
    /// Once a day, the first pull from this hour (UTC, 0-23) on.
    DailyAt {
        /// The hour, UTC.
        hour: u32,
    },
}

/// The pull schedule: deltas on an interval, a full reconcile on a schedule. With a shared
/// (PostgreSQL) store only the holder of the tenant's leader lease pulls; every instance
/// drains.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PullSchedule {
    /// The interval between delta pulls; `None` turns scheduled pulls off (a push-only
    /// service). Default 5 minutes.
    pub delta_interval: Option<Duration>,
    /// Up to this much is added at random to each wait, so instances and tenants do not pull
    /// in step. Default 30 s.
    pub jitter: Duration,
    /// The full reconcile. Default daily at 03:00 UTC.
    pub full_reconcile: FullReconcile,
    /// How long the leader lease lasts without renewal. Default 60 s.
    pub leader_lease: Duration,
}

impl Default for PullSchedule {
    fn default() -> Self {
        Self {
            delta_interval: Some(Duration::from_secs(300)),
            jitter: Duration::from_secs(30),
            full_reconcile: FullReconcile::DailyAt { hour: 3 },
            leader_lease: Duration::from_secs(60),
        }
    }
}

/// How long finished records are kept. Purges run in the background in bounded batches.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionOptions {
    /// Delivery ledger entries (webhook ids seen): older ones are forgotten, so a sender's
    /// retry after this long would be processed again. Default 30 days.
    pub deliveries: Duration,
    /// Applied outbox items. Default 7 days. Failed items are never purged.
    pub done_outbox: Duration,
    /// Audit rows. Default 90 days.
    pub audit: Duration,
    /// Webhook delivery counters (one per hour, outcome and reason). Default 7 days.
    pub webhook_counts: Duration,
    /// Operator actions (requeues, dismissals). Default 90 days.
    pub operator_actions: Duration,
    /// Rows deleted per statement. Default 1,000.
    pub batch: usize,
    /// How often the purge runs. Default 1 hour.
    pub interval: Duration,
}

impl Default for RetentionOptions {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        Self {
            deliveries: Duration::from_secs(30 * DAY),
            done_outbox: Duration::from_secs(7 * DAY),
            audit: Duration::from_secs(90 * DAY),
            webhook_counts: Duration::from_secs(7 * DAY),
            operator_actions: Duration::from_secs(90 * DAY),
            batch: 1000,
            interval: Duration::from_secs(3600),
        }
    }
}

/// Everything the service runs with, apart from its parts (engine, receivers).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceOptions {
    /// HTTP limits and timeouts.
    pub http: HttpLimits,
    /// The drainer.
    pub drain: DrainOptions,
    /// Scheduled pulls.
    pub schedule: PullSchedule,
    /// Retention.
    pub retention: RetentionOptions,
    /// How long a shutdown waits for in-flight requests before closing them. Default 30 s.
    pub shutdown_grace: Duration,
    /// How often the background health job computes each tenant's status and tells the
    /// observers of a change. Default 60 s.
    pub health_interval: Duration,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            http: HttpLimits::default(),
            drain: DrainOptions::default(),
            schedule: PullSchedule::default(),
            retention: RetentionOptions::default(),
            shutdown_grace: Duration::from_secs(30),
            health_interval: Duration::from_secs(60),
        }
    }
}
