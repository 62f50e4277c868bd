//! RADIUS mode: routers that ask us at every hotspot or PPPoE login instead of
//! letting the engine log in to them.
//!
//! - [`RadiusServer`]: the authentication server (UDP 1812: PAP and CHAP for
//!   subscribers, vouchers and PPPoE services; `Session-Timeout` = whole
//!   seconds of paid time left, `Mikrotik-Rate-Limit` from the plan,
//!   `Acct-Interim-Interval`; rejects say why in `Reply-Message`) and the
//!   accounting server (UDP 1813: Start, Interim-Update and Stop recorded in
//!   the [`RadiusSessionRepo`] of the storage, so that a restarted daemon
//!   still knows who is online and on which router).
//! - [`RadiusDriver`]: a [`RouterDriver`](isp_core::ports::RouterDriver) that
//!   ends sessions with Disconnect-Request (RFC 5176, UDP 3799) to the router
//!   accounting says holds them, and retries with back-off; [`RoutedDriver`]
//!   sends routers with `transport = radius` to it and the others to the
//!   RouterOS driver.
//! - [`wire`] and [`dict`]: framing, authenticators and the attribute numbers
//!   (RFC 2865/2866/2869/5176 and MikroTik's vendor 14988).
//!
//! Per-NAS shared secrets ([`Nas`]) never appear in `Debug`, logs or errors.
//! The packet codec is the `radius` crate (MIT).

mod auth;
pub mod dict;
mod driver;
mod nas;
mod server;
pub mod wire;

pub use auth::{Authorizer, Credentials, Decision, UserKind};
pub use driver::{Answer, RadiusDriver, RequestRecord, RetryPolicy, RoutedDriver};
pub use isp_core::domain::{RadiusSession, RadiusSessionKind};
pub use isp_core::ports::RadiusSessionRepo;
pub use nas::{Nas, NasTable};
pub use server::{RadiusServer, ServerConfig, ServerStats, DEFAULT_SESSION_RETENTION};
