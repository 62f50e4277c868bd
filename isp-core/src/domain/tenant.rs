//! Tenants and their routers: how to reach a router, its login, its last known health.

use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{RosName, RouterId, TenantId};

/// An operator: owns routers, plans and customers; billing days are local dates in its zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    /// Id.
    pub id: TenantId,
    /// Short stable name (`hotel-abc`), used in logs.
    pub slug: RosName,
    /// Display name.
    pub name: String,
    /// Time zone for local dates (billing days, 09:00 reminders).
    pub time_zone: Tz,
}

string_enum! {
    /// How the engine talks to a router.
    pub enum Transport, field "transport" {
        /// RouterOS API over plain TCP (8728).
        Api = "api",
        /// RouterOS API over TLS (8729).
        ApiSsl = "api-ssl",
        /// RouterOS v7 REST over HTTPS.
        Rest = "rest",
        /// RADIUS mode: the router asks our RADIUS server at every login and
        /// the engine ends sessions with Disconnect-Requests (RFC 5176); no
        /// API login.
        Radius = "radius",
    }
}

/// Login for a router. `Debug` never shows the password.
#[derive(Clone)]
pub struct RouterCredentials {
    /// API user name.
    pub username: String,
    /// API password (a secret).
    pub password: SecretString,
}

impl RouterCredentials {
    /// Builds credentials.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        RouterCredentials {
            username: username.into(),
            password: SecretString::from(password.into()),
        }
    }

    /// The password, for the driver's login only.
    pub fn expose_password(&self) -> &str {
        self.password.expose_secret()
    }
}

impl fmt::Debug for RouterCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterCredentials")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

/// A MikroTik router of a tenant.
#[derive(Debug, Clone)]
pub struct Router {
    /// Id.
    pub id: RouterId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Name, used in logs and reports.
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// API, API-SSL, REST or RADIUS mode.
    pub transport: Transport,
    /// Login.
    pub credentials: RouterCredentials,
    /// SHA-256 fingerprint (hex) of a self-signed certificate to accept.
    pub tls_fingerprint: Option<String>,
    /// Disabled routers are skipped by every job.
    pub enabled: bool,
}

string_enum! {
    /// What kind of login a RADIUS session is.
    pub enum RadiusSessionKind, field "kind" {
        /// A hotspot login.
        Hotspot = "hotspot",
        /// A PPP (PPPoE) session (`Framed-Protocol = PPP`).
        Ppp = "ppp",
    }
}

/// A session a router in RADIUS mode reported in accounting (Start,
/// Interim-Update, Stop): who is online there, without logging in to it.
/// Keyed by (`router`, `session_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RadiusSession {
    /// The router (NAS).
    pub router: RouterId,
    /// The router's tenant (whose subscriber or voucher `user` is).
    pub tenant: TenantId,
    /// `Acct-Session-Id`.
    pub session_id: String,
    /// `User-Name`: a subscriber's username, a voucher code or a PPPoE username.
    pub user: String,
    /// Hotspot or PPP.
    pub kind: RadiusSessionKind,
    /// `Framed-IP-Address`.
    pub address: Option<std::net::Ipv4Addr>,
    /// `Calling-Station-Id` (the device's MAC).
    pub calling_station: Option<String>,
    /// When the Start (or the first record) arrived.
    pub started: DateTime<Utc>,
    /// When the last record arrived.
    pub updated: DateTime<Utc>,
    /// Octets from the device, as of the last record (with `Acct-Input-Gigawords`).
    pub input_octets: u64,
    /// Octets to the device, as of the last record (with `Acct-Output-Gigawords`).
    pub output_octets: u64,
    /// When it ended (Stop, a confirmed Disconnect, the router's
    /// Accounting-On/Off, or no record for too long); `None` while live.
    pub stopped: Option<DateTime<Utc>>,
}

impl RadiusSession {
    /// True while no end is recorded.
    pub fn is_live(&self) -> bool {
        self.stopped.is_none()
    }
}

/// Last known health of a router, kept to alert on changes only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouterStatus {
    /// Router.
    pub router_id: RouterId,
    /// Reachable at the last check.
    pub online: bool,
    /// Last check.
    pub checked_at: DateTime<Utc>,
    /// When `online` last changed.
    pub changed_at: DateTime<Utc>,
    /// Router clock minus our clock, seconds (when known).
    pub clock_skew_secs: Option<i64>,
    /// RouterOS version (when known).
    pub version: Option<String>,
    /// Last error (when offline).
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_not_debugged() {
        let c = RouterCredentials::new("admin", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
