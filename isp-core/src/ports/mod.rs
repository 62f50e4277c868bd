//! Ports: what the engine needs from storage, routers, SMS gateways and time.
//!
//! Every port is a small object-safe `async_trait` with `Send + Sync`, so that
//! adapters live in their own crates and jobs hold `Arc<dyn Port>`. With the
//! `mocks` feature each has a mockall mock (`MockRouterDriver`, ...).

mod clock;
mod repos;
mod router;
mod sms;

pub use clock::{Clock, FakeClock};
pub use repos::*;
pub use router::*;
pub use sms::{SmsReceipt, SmsSender};

#[cfg(any(test, feature = "mocks"))]
pub use clock::MockClock;
#[cfg(any(test, feature = "mocks"))]
pub use sms::MockSmsSender;
