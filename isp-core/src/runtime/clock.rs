//! The operating system's clock: the one place the core reads it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ports::Clock;

/// [`Clock`] on the operating system's wall clock; `sleep_until` sleeps on
/// tokio's timer (the [`Clock`] default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one reader of the system clock
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn moves_forward_and_sleeps_until_a_deadline() {
        let a = SystemClock.now();
        SystemClock
            .sleep_until(a + chrono::Duration::milliseconds(5))
            .await;
        assert!(SystemClock.now() >= a + chrono::Duration::milliseconds(5));
    }
}
