//! Jittered back-off shared by the API pool and the REST client, so that
//! several daemons (or several routers' pools) that failed together do not
//! retry in lockstep.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Exponential delays with "equal jitter": the `n`-th delay is drawn in
/// `[d / 2, d]` where `d = min(min * 2^n, max)`. It never exceeds `max`, and
/// daemons that started together spread out even once the cap is reached.
#[derive(Debug, Clone)]
pub(crate) struct Jittered {
    next: Duration,
    max: Duration,
    left: usize,
    rng: Rng,
}

impl Jittered {
    /// At most `times` delays, starting near `min`; `seed` picks the jitter.
    pub(crate) fn new(min: Duration, max: Duration, times: usize, seed: u64) -> Self {
        let max = max.max(min);
        Jittered {
            next: min,
            max,
            left: times,
            rng: Rng(seed),
        }
    }
}

impl Iterator for Jittered {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let ceiling = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        Some(self.rng.upper_half(ceiling))
    }
}

/// splitmix64: small and good enough to spread retries (not for secrets).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator seeded differently per call and per process.
    pub(crate) fn random() -> Rng {
        Rng(random_seed())
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration drawn in `[d / 2, d]`.
    pub(crate) fn upper_half(&mut self, d: Duration) -> Duration {
        // 53 random bits: a fraction in [0, 1).
        let fraction = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        d.mul_f64(0.5 + 0.5 * fraction).min(d)
    }
}

/// A seed that differs per call and per process (std's random hash keys).
pub(crate) fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    static CALLS: AtomicU64 = AtomicU64::new(0);
    std::collections::hash_map::RandomState::new().hash_one(CALLS.fetch_add(1, Ordering::Relaxed))
}

/// A cool-down of `min * 2^(failures - 1)`, capped at `max`, jittered into its upper half.
pub(crate) fn cooldown(min: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    let base = min.saturating_mul(factor).min(max.max(min));
    Rng::random().upper_half(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_seeds_give_different_delays_within_bounds() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(2));
        let a: Vec<_> = Jittered::new(min, max, 10, 1).collect();
        let b: Vec<_> = Jittered::new(min, max, 10, 2).collect();
        assert_eq!(a.len(), 10);
        assert_ne!(a, b, "same delays for two seeds: daemons would retry in lockstep");
        for seq in [&a, &b] {
            let mut ceiling = min;
            for d in seq {
                assert!(
                    *d >= ceiling / 2 && *d <= ceiling,
                    "{d:?} outside [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
                ceiling = (ceiling * 2).min(max);
            }
        }
        // The same seed gives the same sequence (the jitter is the seed's only effect).
        assert_eq!(a, Jittered::new(min, max, 10, 1).collect::<Vec<_>>());
    }

    #[test]
    fn delays_at_the_cap_still_differ() {
        let max = Duration::from_millis(500);
        let capped: Vec<_> = Jittered::new(max, max, 6, 7).collect();
        assert!(capped.iter().all(|d| *d <= max && *d >= max / 2), "{capped:?}");
        assert!(capped.windows(2).any(|w| w[0] != w[1]), "{capped:?}");
    }

    #[test]
    fn cooldowns_double_stay_bounded_and_vary() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(1));
        for failures in 1..20 {
            let ceiling = (min * (1 << (failures - 1).min(16))).min(max);
            let d = cooldown(min, max, failures);
            assert!(d >= ceiling / 2 && d <= ceiling, "{failures}: {d:?}");
        }
        let many: std::collections::HashSet<_> = (0..20).map(|_| cooldown(min, max, 3)).collect();
        assert!(many.len() > 1, "cool-downs are not jittered");
        assert_ne!(random_seed(), random_seed());
    }
}
