//! Properties of the pure retry decision, over arbitrary policies and outcomes (inside the
//! crate: `decide` is not public).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::retry::{Decision, Failure, Outcome, RetryPolicy, decide, is_retryable_status};
use http::StatusCode;
use proptest::prelude::*;

fn policy() -> impl Strategy<Value = RetryPolicy> {
    (
        1u32..10,
        1u64..5_000,
        1u64..60_000,
        1u64..600_000,
        0u64..300_000,
    )
        .prop_map(|(attempts, base, max, elapsed, cap)| {
            RetryPolicy::default()
                .with_max_attempts(attempts)
                .with_delays(Duration::from_millis(base), Duration::from_millis(max))
                .with_max_elapsed(Duration::from_millis(elapsed))
                .with_max_retry_after(Duration::from_millis(cap))
        })
}

fn failure() -> impl Strategy<Value = Failure> {
    prop_oneof![
        (
            100u16..600,
            proptest::option::of(0u64..1_000_000),
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(code, wait, retryable)| Failure::Status {
                status: StatusCode::from_u16(code).unwrap(),
                retry_after: wait.map(Duration::from_millis),
                retryable,
            }),
        Just(Failure::Connect),
        Just(Failure::Network),
        Just(Failure::Timeout),
        Just(Failure::Fatal),
    ]
}

proptest! {
    #[test]
    fn decisions_respect_the_policy(
        p in policy(),
        attempt in 1u32..20,
        elapsed_ms in 0u64..700_000,
        f in failure(),
        idempotent in any::<bool>(),
    ) {
        let elapsed = Duration::from_millis(elapsed_ms);
        let d = decide(&p, attempt, elapsed, &Outcome::new(f, idempotent));
        if let Decision::Retry { after, server_directed } = d {
            // Bounded attempts and total time.
            prop_assert!(attempt < p.max_attempts);
            prop_assert!(elapsed + after <= p.max_elapsed);
            // Waits never exceed what the policy allows.
            if server_directed {
                prop_assert!(after <= p.max_retry_after);
            } else {
                prop_assert!(after <= p.max_delay);
            }
            match f {
                Failure::Status { status, retryable, .. } => {
                    // Only retryable statuses (or the decoder's say-so), only idempotent requests.
                    prop_assert!(retryable.unwrap_or_else(|| is_retryable_status(status)));
                    prop_assert!(idempotent);
                }
                Failure::Network | Failure::Timeout => prop_assert!(idempotent),
                Failure::Connect => {}
                _ => prop_assert!(false, "fatal failures are never retried"),
            }
        }
    }

    #[test]
    fn plain_client_errors_are_never_retried(
        p in policy(),
        code in prop_oneof![400u16..429, 430u16..500],
        idempotent in any::<bool>(),
    ) {
        let f = Failure::Status { status: StatusCode::from_u16(code).unwrap(), retry_after: None, retryable: None };
        prop_assert!(matches!(decide(&p, 1, Duration::ZERO, &Outcome::new(f, idempotent)), Decision::GiveUp(_)));
    }
}
