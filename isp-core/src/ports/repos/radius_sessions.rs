//! RADIUS sessions: what the routers in RADIUS mode reported in accounting.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::error::Result;

/// The sessions routers in RADIUS mode report (Start, Interim-Update, Stop),
/// kept in storage so that a restarted daemon still knows which router holds
/// a session (to send it a Disconnect-Request) and who is online where.
///
/// # Contract
/// Sessions are keyed by (`router`, `session_id`). Octet counters are at most
/// `i64::MAX`; larger values are `InvalidInput` naming the field.
/// - `upsert` records a Start or Interim-Update. An unknown key is inserted
///   as given (live). A live session is updated (user, kind, address, calling
///   station, `updated`, counters) and keeps its first `started`. A closed one
///   is left alone (`Ok(false)`: a late Interim-Update), unless `start` is
///   true: a Start reusing the key (the router restarted its counter)
///   replaces it as a new live session.
/// - `stop` records a Stop: a live session is closed at `session.stopped`
///   (or `updated` when `None`) with the Stop's fields and counters, keeping
///   its `started`; an unknown one is inserted closed (its Start was lost);
///   a closed one gets the Stop's counters and `updated` but keeps its
///   `stopped`. Returns whether it was live.
/// - `close` closes one live session at `at` (a confirmed Disconnect);
///   `close_router` every live session of a router (Accounting-On/Off);
///   `close_stale` every live session last updated strictly before `cutoff`
///   (the router stopped reporting it). They answer how many they closed.
/// - `live_on_router` and `live_of_user` return live sessions only, by
///   `started` then `session_id`; `get` returns one session, live or closed.
/// - `delete_closed_before` deletes closed sessions whose `stopped` is
///   strictly before `cutoff` (history retention); live ones are never deleted.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RadiusSessionRepo: Send + Sync + Debug {
    /// Records a Start (`start`) or an Interim-Update; whether it changed anything.
    async fn upsert(&self, session: &RadiusSession, start: bool) -> Result<bool>;
    /// Records a Stop; whether the session was live.
    async fn stop(&self, session: &RadiusSession) -> Result<bool>;
    /// Closes one live session; whether it was live.
    async fn close(&self, router: RouterId, session_id: &str, at: DateTime<Utc>) -> Result<bool>;
    /// Closes every live session of a router; how many.
    async fn close_router(&self, router: RouterId, at: DateTime<Utc>) -> Result<u64>;
    /// Closes every live session last updated before `cutoff`; how many.
    async fn close_stale(&self, cutoff: DateTime<Utc>, at: DateTime<Utc>) -> Result<u64>;
    /// One session, live or closed.
    async fn get(&self, router: RouterId, session_id: &str) -> Result<Option<RadiusSession>>;
    /// The live sessions of a router.
    async fn live_on_router(&self, router: RouterId) -> Result<Vec<RadiusSession>>;
    /// The live sessions of `user` (a username, voucher code or PPPoE
    /// username) on the tenant's routers.
    async fn live_of_user(&self, tenant: TenantId, user: &str) -> Result<Vec<RadiusSession>>;
    /// Deletes closed sessions that ended before `cutoff`; how many.
    async fn delete_closed_before(&self, cutoff: DateTime<Utc>) -> Result<u64>;
}
