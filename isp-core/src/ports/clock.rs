use std::fmt::Debug;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// The current time. The core never reads the system clock itself.
///
/// # Contract
/// `now()` never goes backwards by more than the system clock does.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync + Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// A clock that only moves when told to: for tests and simulations.
#[derive(Debug)]
pub struct FakeClock(Mutex<DateTime<Utc>>);

impl FakeClock {
    /// A clock reading `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        FakeClock(Mutex::new(start))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }

    /// Sets the clock.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
