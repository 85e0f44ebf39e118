//! Fault injection: a configurable share of requests answered with 429 / 500 / 502 /
//! 503 / 504, delayed (timeouts), closed or reset (TCP RST) without a response, or
//! given a truncated JSON body.
//!
//! Decisions are reproducible: each request is identified by a hash of its method,
//! path, query and body, and the n-th time a given request arrives its fate is drawn
//! from an RNG seeded with `(seed, identity, n)`. The same seed therefore gives the
//! same faults for the same requests, whatever order concurrent requests arrive in,
//! and a retry of a faulted request is a fresh draw.

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// Shares of each fault, each in `0.0..=1.0`; together at most 1.0.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct FaultRates {
    /// 429 Too Many Requests (in the API's own 429 body shape).
    pub too_many_requests: f64,
    /// 500 Internal Server Error.
    pub internal_error: f64,
    /// 502 Bad Gateway (an HTML gateway page, not JSON, as real proxies send).
    pub bad_gateway: f64,
    /// 503 Service Unavailable.
    pub unavailable: f64,
    /// 504 Gateway Timeout (an HTML gateway page).
    pub gateway_timeout: f64,
    /// The connection is closed without any response (the client reads EOF).
    pub drop_connection: f64,
    /// The connection is reset (TCP RST) without any response.
    pub reset_connection: f64,
    /// A 2xx response whose JSON body is cut in half.
    pub truncated_body: f64,
    /// The request is answered normally but only after
    /// [`FaultConfig::slow_delay`] (use a delay longer than the client's timeout to
    /// simulate timeouts).
    pub slow: f64,
}

impl FaultRates {
    /// `share` of requests faulted, spread evenly over every kind of fault.
    pub fn mixed(share: f64) -> Self {
        let each = share / 9.0;
        Self {
            too_many_requests: each,
            internal_error: each,
            bad_gateway: each,
            unavailable: each,
            gateway_timeout: each,
            drop_connection: each,
            reset_connection: each,
            truncated_body: each,
            slow: each,
        }
    }

    /// Only `fault`, at `share` (e.g. `FaultRates::only(Fault::Status(503), 1.0)`).
    pub fn only(fault: Fault, share: f64) -> Self {
        Self::default().with(fault, share)
    }

    /// Sets the share of one fault; statuses other than 500/502/503/504 are ignored.
    pub fn with(mut self, fault: Fault, share: f64) -> Self {
        match fault {
            Fault::TooManyRequests => self.too_many_requests = share,
            Fault::Status(500) => self.internal_error = share,
            Fault::Status(502) => self.bad_gateway = share,
            Fault::Status(503) => self.unavailable = share,
            Fault::Status(504) => self.gateway_timeout = share,
            Fault::Status(_) => {}
            Fault::DropConnection => self.drop_connection = share,
            Fault::ResetConnection => self.reset_connection = share,
            Fault::TruncatedBody => self.truncated_body = share,
            Fault::Slow => self.slow = share,
        }
        self
    }

    fn total(&self) -> f64 {
        self.too_many_requests
            + self.internal_error
            + self.bad_gateway
            + self.unavailable
            + self.gateway_timeout
            + self.drop_connection
            + self.reset_connection
            + self.truncated_body
            + self.slow
    }

    fn ordered(&self) -> [(f64, Fault); 9] {
        [
            (self.too_many_requests, Fault::TooManyRequests),
            (self.internal_error, Fault::Status(500)),
            (self.bad_gateway, Fault::Status(502)),
            (self.unavailable, Fault::Status(503)),
            (self.gateway_timeout, Fault::Status(504)),
            (self.drop_connection, Fault::DropConnection),
            (self.reset_connection, Fault::ResetConnection),
            (self.truncated_body, Fault::TruncatedBody),
            (self.slow, Fault::Slow),
        ]
    }
}

/// Fault injection settings of one server. `FaultConfig::default()` injects nothing.
///
/// ```
/// use std::time::Duration;
/// use sync_sandbox::faults::{FaultConfig, FaultRates};
///
/// // 20% of requests fail in some way, reproducibly for seed 7; a fault strikes a
/// // given request at most twice, so bounded retries always converge.
/// let faults = FaultConfig::seeded(7)
///     .with_rates(FaultRates::mixed(0.2))
///     .with_retry_after(Some(Duration::from_secs(1)))
///     .with_max_faults_per_request(Some(2));
/// assert!(faults.is_active());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FaultConfig {
    /// Seed of the decision RNG.
    pub seed: u64,
    /// Share of each fault.
    pub rates: FaultRates,
    /// Delay of a [`FaultRates::slow`] response.
    pub slow_delay: Duration,
    /// `Retry-After` sent with injected 429 and 503 responses.
    pub retry_after: Option<Duration>,
    /// Share of 5xx / dropped / truncated faults that strike *after* the handler ran,
    /// so the effect happened but the client never learns it (the case idempotency
    /// keys exist for). 429s always strike before.
    pub after_effect: f64,
    /// After this many faults on the same request (same method, path, query and
    /// body), later attempts pass untouched. `None`: no cap.
    pub max_faults_per_request: Option<u32>,
    /// Path prefixes never faulted (the `/__sandbox` inspection API never is).
    pub spared_paths: Vec<String>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            rates: FaultRates::default(),
            slow_delay: Duration::from_secs(2),
            retry_after: None,
            after_effect: 0.0,
            max_faults_per_request: None,
            spared_paths: Vec::new(),
        }
    }
}

impl FaultConfig {
    /// No faults, with the given seed ready for [`with_rates`](Self::with_rates).
    pub fn seeded(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    /// Sets the fault shares.
    pub fn with_rates(mut self, rates: FaultRates) -> Self {
        self.rates = rates;
        self
    }

    /// Sets the delay of slow responses.
    pub fn with_slow_delay(mut self, delay: Duration) -> Self {
        self.slow_delay = delay;
        self
    }

    /// Sets the `Retry-After` of injected 429/503s.
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Sets the share of faults that strike after the effect.
    pub fn with_after_effect(mut self, share: f64) -> Self {
        self.after_effect = share;
        self
    }

    /// Caps faults per identical request.
    pub fn with_max_faults_per_request(mut self, max: Option<u32>) -> Self {
        self.max_faults_per_request = max;
        self
    }

    /// Spares requests whose path starts with `prefix`.
    pub fn sparing(mut self, prefix: impl Into<String>) -> Self {
        self.spared_paths.push(prefix.into());
        self
    }

    /// Whether any fault can be injected.
    pub fn is_active(&self) -> bool {
        self.rates.total() > 0.0
    }

    /// Checks every share is in range and they add up to at most 1.
    pub fn validate(&self) -> Result<(), crate::SandboxError> {
        let shares = self.rates.ordered().map(|(s, _)| s);
        if shares
            .iter()
            .chain(std::iter::once(&self.after_effect))
            .any(|s| !(0.0..=1.0).contains(s))
        {
            return Err(crate::SandboxError::InvalidConfig(
                "fault shares must each be within 0.0..=1.0".into(),
            ));
        }
        if self.rates.total() > 1.0 + 1e-9 {
            return Err(crate::SandboxError::InvalidConfig(format!(
                "fault shares add up to {} (more than 1.0)",
                self.rates.total()
            )));
        }
        Ok(())
    }
}

/// One kind of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Fault {
    /// 429 in the API's rate-limit shape.
    TooManyRequests,
    /// A 5xx status.
    Status(u16),
    /// Connection closed without a response.
    DropConnection,
    /// Connection reset (RST) without a response.
    ResetConnection,
    /// JSON body cut short.
    TruncatedBody,
    /// Response delayed.
    Slow,
}

/// When a fault strikes relative to the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Instead of the handler: nothing happened.
    Before,
    /// After the handler ran: the effect happened, the response is lost or spoiled.
    After,
}

/// The fate of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The fault, if any.
    pub fault: Option<Fault>,
    /// When it strikes.
    pub timing: Timing,
}

impl Decision {
    const NONE: Self = Self {
        fault: None,
        timing: Timing::Before,
    };
}

/// Live fault state of one server.
#[derive(Debug)]
pub(crate) struct FaultInjector {
    pub(crate) config: FaultConfig,
    occurrences: HashMap<[u8; 32], u32>,
    faulted: HashMap<[u8; 32], u32>,
}

impl FaultInjector {
    pub(crate) fn new(config: FaultConfig) -> Self {
        Self {
            config,
            occurrences: HashMap::new(),
            faulted: HashMap::new(),
        }
    }

    pub(crate) fn reconfigure(&mut self, config: FaultConfig) {
        *self = Self::new(config);
    }

    /// Decides the fate of a request, identified by method, path with query, and body.
    pub(crate) fn decide(&mut self, method: &str, path_and_query: &str, body: &[u8]) -> Decision {
        if !self.config.is_active()
            || self
                .config
                .spared_paths
                .iter()
                .any(|p| path_and_query.starts_with(p.as_str()))
        {
            return Decision::NONE;
        }
        let identity = request_identity(method, path_and_query, body);
        let n = self.occurrences.entry(identity).or_insert(0);
        let occurrence = *n;
        *n += 1;
        if let Some(max) = self.config.max_faults_per_request
            && self.faulted.get(&identity).copied().unwrap_or(0) >= max
        {
            return Decision::NONE;
        }
        let decision = draw(&self.config, &identity, occurrence);
        if decision.fault.is_some() {
            *self.faulted.entry(identity).or_insert(0) += 1;
        }
        decision
    }
}

fn request_identity(method: &str, path_and_query: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path_and_query.as_bytes());
    h.update([0]);
    h.update(body);
    h.finalize().into()
}

/// Pure: the decision for the `occurrence`-th arrival of a request.
fn draw(config: &FaultConfig, identity: &[u8; 32], occurrence: u32) -> Decision {
    let mut h = Sha256::new();
    h.update(config.seed.to_le_bytes());
    h.update(identity);
    h.update(occurrence.to_le_bytes());
    let seed: [u8; 32] = h.finalize().into();
    let mut rng = StdRng::from_seed(seed);
    let roll: f64 = rng.random();
    let timing_roll: f64 = rng.random();
    let mut acc = 0.0;
    for (share, fault) in config.rates.ordered() {
        acc += share;
        if roll < acc {
            let timing = match fault {
                Fault::TooManyRequests | Fault::Slow => Timing::Before,
                Fault::TruncatedBody => Timing::After,
                _ if timing_roll < config.after_effect => Timing::After,
                _ => Timing::Before,
            };
            return Decision {
                fault: Some(fault),
                timing,
            };
        }
    }
    Decision::NONE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_decisions_regardless_of_interleaving() {
        let cfg = FaultConfig::seeded(42).with_rates(FaultRates::mixed(0.5));
        let mut a = FaultInjector::new(cfg.clone());
        let mut b = FaultInjector::new(cfg);
        let reqs: Vec<String> = (0..200).map(|i| format!("/x/{i}")).collect();
        let da: Vec<_> = reqs.iter().map(|p| a.decide("GET", p, b"")).collect();
        // b sees the same requests in reverse order.
        let mut db: Vec<_> = reqs.iter().rev().map(|p| b.decide("GET", p, b"")).collect();
        db.reverse();
        assert_eq!(da, db);
        let faulted = da.iter().filter(|d| d.fault.is_some()).count();
        assert!(
            (60..=140).contains(&faulted),
            "about half faulted, got {faulted}"
        );
    }

    #[test]
    fn different_seeds_differ_and_no_rates_means_no_faults() {
        let mut a = FaultInjector::new(FaultConfig::seeded(1).with_rates(FaultRates::mixed(0.5)));
        let mut b = FaultInjector::new(FaultConfig::seeded(2).with_rates(FaultRates::mixed(0.5)));
        let da: Vec<_> = (0..100)
            .map(|i| a.decide("GET", &format!("/{i}"), b""))
            .collect();
        let db: Vec<_> = (0..100)
            .map(|i| b.decide("GET", &format!("/{i}"), b""))
            .collect();
        assert_ne!(da, db);
        let mut none = FaultInjector::new(FaultConfig::seeded(1));
        assert!((0..100).all(|i| none.decide("GET", &format!("/{i}"), b"").fault.is_none()));
    }

    #[test]
    fn cap_per_request_lets_retries_through() {
        let mut f = FaultInjector::new(
            FaultConfig::seeded(3)
                .with_rates(FaultRates {
                    internal_error: 1.0,
                    ..FaultRates::default()
                })
                .with_max_faults_per_request(Some(2)),
        );
        let fates: Vec<_> = (0..4)
            .map(|_| f.decide("POST", "/a", b"{}").fault)
            .collect();
        assert_eq!(
            fates,
            vec![
                Some(Fault::Status(500)),
                Some(Fault::Status(500)),
                None,
                None
            ]
        );
    }

    #[test]
    fn spared_paths_and_validation() {
        let mut f = FaultInjector::new(
            FaultConfig::seeded(3)
                .with_rates(FaultRates::mixed(1.0))
                .sparing("/oauth"),
        );
        assert_eq!(f.decide("POST", "/oauth/v1/token", b"").fault, None);
        assert!(
            FaultConfig::seeded(0)
                .with_rates(FaultRates::mixed(1.5))
                .validate()
                .is_err()
        );
        assert!(
            FaultConfig::seeded(0)
                .with_rates(FaultRates::mixed(0.3))
                .validate()
                .is_ok()
        );
    }
}
