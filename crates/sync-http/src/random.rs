//! Random bytes from the operating system, through `ring`'s `SystemRandom` (`ring` is in
//! the graph already as the TLS crypto provider, so the SDK needs no `rand` crate of its own).

use ring::rand::{SecureRandom, SystemRandom};

/// Fills `buf` with cryptographically secure random bytes from the operating system.
///
/// # Panics
/// When the operating system cannot give random bytes at all (as `rand::fill` does): no
/// nonce, key or token may be made without them.
pub fn fill(buf: &mut [u8]) {
    SystemRandom::new()
        .fill(buf)
        .unwrap_or_else(|_| panic!("the operating system's random number generator failed"));
}

/// A random `u64`.
///
/// # Panics
/// As [`fill`].
pub fn u64() -> u64 {
    let mut bytes = [0u8; 8];
    fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// A random number in `[0, 1)`, for jitter.
///
/// # Panics
/// As [`fill`].
pub fn unit() -> f64 {
    // The top 53 bits fill an f64's mantissa exactly, evenly spaced in [0, 1).
    (u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A random number in `0..=max`.
///
/// # Panics
/// As [`fill`].
pub fn up_to(max: u64) -> u64 {
    match max.checked_add(1) {
        // Modulo bias is below 2^-40 for the jitter ranges this serves.
        Some(n) => u64() % n,
        None => u64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_differ_between_calls_and_ranges_hold() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill(&mut a);
        fill(&mut b);
        assert_ne!(a, b);
        for _ in 0..1000 {
            let u = unit();
            assert!((0.0..1.0).contains(&u));
            assert!(up_to(5) <= 5);
        }
        assert_eq!(up_to(0), 0);
    }
}
