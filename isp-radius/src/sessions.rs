//! Sessions the routers reported in accounting (Start, Interim-Update, Stop):
//! who is online on a RADIUS router, without logging in to it.
//!
//! Kept in memory per router: the repositories have no port for sessions, and
//! the routers repeat every live session in their next Interim-Update, so a
//! restarted daemon knows them again within one interval.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use isp_core::domain::RouterId;

/// Hotspot or PPP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A hotspot login.
    Hotspot,
    /// A PPP (PPPoE) session (`Framed-Protocol = PPP`).
    Ppp,
}

/// One session a router reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusSession {
    /// The router.
    pub router: RouterId,
    /// `Acct-Session-Id`.
    pub session_id: String,
    /// `User-Name`.
    pub user: String,
    /// Hotspot or PPP.
    pub kind: SessionKind,
    /// `Framed-IP-Address`.
    pub address: Option<Ipv4Addr>,
    /// `Calling-Station-Id` (the device's MAC).
    pub calling_station: Option<String>,
    /// When the Start (or first record) arrived.
    pub started: DateTime<Utc>,
    /// When the last record arrived.
    pub updated: DateTime<Utc>,
    /// `Acct-Input-Octets` of the last record.
    pub input_octets: u64,
    /// `Acct-Output-Octets` of the last record.
    pub output_octets: u64,
}

/// The live sessions of every RADIUS router.
#[derive(Debug, Default)]
pub struct SessionStore {
    live: Mutex<BTreeMap<(RouterId, String), RadiusSession>>,
}

impl SessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(RouterId, String), RadiusSession>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a Start or Interim-Update (keeps the first `started`).
    pub fn upsert(&self, mut session: RadiusSession) {
        let mut live = self.lock();
        let key = (session.router, session.session_id.clone());
        if let Some(old) = live.get(&key) {
            session.started = old.started;
        }
        live.insert(key, session);
    }

    /// Records a Stop (or a confirmed disconnect); returns the session if it was live.
    pub fn stop(&self, router: RouterId, session_id: &str) -> Option<RadiusSession> {
        self.lock().remove(&(router, session_id.to_owned()))
    }

    /// Forgets every session of a router (Accounting-On/Off: it restarted).
    pub fn clear_router(&self, router: RouterId) -> usize {
        let mut live = self.lock();
        let before = live.len();
        live.retain(|(r, _), _| *r != router);
        before - live.len()
    }

    /// Live sessions of a router.
    pub fn online(&self, router: RouterId) -> Vec<RadiusSession> {
        self.lock()
            .values()
            .filter(|s| s.router == router)
            .cloned()
            .collect()
    }

    /// Every live session.
    pub fn all(&self) -> Vec<RadiusSession> {
        self.lock().values().cloned().collect()
    }
}
