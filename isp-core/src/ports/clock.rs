use std::fmt::Debug;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

/// The current time, and waiting for a later one. The core never reads the
/// system clock itself.
///
/// # Contract
/// `now()` never goes backwards by more than the system clock does.
/// `sleep_until(t)` resolves once `now() >= t` (or a little later); it may be
/// cancelled by dropping it. The runtime sleeps in bounded steps and re-reads
/// `now()`, so a wall clock that jumps is noticed within a step.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Clock: Send + Sync + Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// Waits until `deadline`. The default sleeps on tokio's timer for the
    /// distance between `now()` and `deadline`, which suits any clock that
    /// moves with real time (the system clock, a clock with an offset).
    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        let wait = (deadline - self.now()).to_std().unwrap_or_default();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// A clock that only moves when told to: for tests and simulations.
/// [`Clock::sleep_until`] on it resolves when [`advance`](Self::advance) or
/// [`set`](Self::set) reaches the deadline, with no real sleeping.
#[derive(Debug)]
pub struct FakeClock {
    now: Mutex<DateTime<Utc>>,
    moved: Notify,
}

impl FakeClock {
    /// A clock reading `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        FakeClock {
            now: Mutex::new(start),
            moved: Notify::new(),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) += by;
        self.moved.notify_waiters();
    }

    /// Sets the clock.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
        self.moved.notify_waiters();
    }
}

#[async_trait]
impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        loop {
            let moved = self.moved.notified();
            tokio::pin!(moved);
            // Registered before reading the time, so a move in between is not missed.
            moved.as_mut().enable();
            if self.now() >= deadline {
                return;
            }
            moved.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn fake_sleep_resolves_when_the_clock_reaches_the_deadline() {
        let start = DateTime::<Utc>::UNIX_EPOCH;
        let clock = Arc::new(FakeClock::new(start));
        let c = clock.clone();
        let sleeper = tokio::spawn(async move { c.sleep_until(start + chrono::Duration::seconds(10)).await });
        tokio::task::yield_now().await;
        clock.advance(chrono::Duration::seconds(5));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke 5 s early");
        clock.advance(chrono::Duration::seconds(5));
        tokio::time::timeout(std::time::Duration::from_secs(5), sleeper)
            .await
            .expect("woke at the deadline")
            .expect("no panic");
    }

    #[tokio::test]
    async fn fake_sleep_in_the_past_returns_at_once() {
        let clock = FakeClock::new(DateTime::<Utc>::UNIX_EPOCH);
        clock.sleep_until(DateTime::<Utc>::UNIX_EPOCH).await;
    }
}
