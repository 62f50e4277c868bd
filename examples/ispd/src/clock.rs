//! The system clock. `isp-core` never reads it; the daemon hands it in.

use chrono::{DateTime, Utc};
use isp_core::ports::Clock;

/// [`Clock`] on the operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_forward() {
        let a = SystemClock.now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(SystemClock.now() > a);
    }
}
