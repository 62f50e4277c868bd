//! Back-off for failed attempts (router removals, provisioning, notices).

use std::time::Duration;

/// How long to wait before retrying an item that has already failed
/// `attempts` times (0 for the first failure): `base * 2^attempts`, at most `max`.
pub fn backoff(attempts: u32, base: Duration, max: Duration) -> Duration {
    let factor = 1u32.checked_shl(attempts.min(31)).unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(max).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_caps() {
        let b = Duration::from_secs(5);
        let m = Duration::from_secs(600);
        assert_eq!(backoff(0, b, m), Duration::from_secs(5));
        assert_eq!(backoff(1, b, m), Duration::from_secs(10));
        assert_eq!(backoff(3, b, m), Duration::from_secs(40));
        assert_eq!(backoff(7, b, m), Duration::from_secs(600));
        assert_eq!(backoff(u32::MAX, b, m), Duration::from_secs(600));
    }
}
