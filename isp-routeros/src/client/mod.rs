//! An async RouterOS API client on tokio.
//!
//! * [`Connection`]: one logged-in connection (plain TCP or TLS). Many tagged
//!   commands run on it at once: a reader task hands each reply to the command
//!   with its `.tag`. `listen` commands give a [`ListenStream`]; dropping it (or
//!   a command future) sends `/cancel` for its tag. A keepalive pings idle
//!   connections.
//! * [`Client`]: a small pool of connections to one router. It logs in once
//!   and reuses the connection for every caller, reconnects with back-off when
//!   the connection broke, and fails fast for a while after a router could not
//!   be reached (see [`ClientConfig`]).
//! * [`ClientError`] and [`map_ros_error`]: the one mapping onto [`isp_core::Error`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), isp_routeros::client::ClientError> {
//! use isp_routeros::client::{Client, ClientConfig, Credentials, Endpoint};
//!
//! let endpoint = Endpoint::plain("router r1", "127.0.0.1:8728", Credentials::new("admin", "secret"))?;
//! let client = Client::new(endpoint, ClientConfig::default())?;
//! let rows = client
//!     .print("/ip/hotspot/active", &[".id", "user", "mac-address"], &[])
//!     .await?;
//! for row in &rows {
//!     println!("{:?} {:?}", row.id(), row.get("user"));
//! }
//! let id = client.add("/ip/firewall/address-list", &[("list", "isp-allowed"), ("address", "10.0.0.2")]).await?;
//! client.remove("/ip/firewall/address-list", &[id.as_str()]).await?;
//! # Ok(()) }
//! ```

pub(crate) mod backoff;
mod config;
mod conn;
mod error;
mod pool;
pub(crate) mod tls;

use std::collections::BTreeMap;

pub use config::{
    certificate_fingerprint, parse_address, parse_fingerprint, ClientConfig, Credentials, Endpoint, Security,
    TlsOptions, TrustRoots, API_PORT, API_SSL_PORT, DEFAULT_MAX_RESPONSE_BYTES,
};
pub use conn::{Connection, ListenEvent, ListenStream};
pub(crate) use error::entity_of;
pub use error::{map_ros_error, ClientError, TrapKind};
pub use pool::Client;

/// One `!re` row of a `print`: attribute name to value (`.id` included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row(BTreeMap<String, String>);

impl Row {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The item id (`.id`, `*1A`).
    pub fn id(&self) -> Option<&str> {
        self.get(".id")
    }

    /// A boolean attribute (`true`/`false`, `yes`/`no`); `None` when absent or
    /// not a boolean.
    pub fn flag(&self, name: &str) -> Option<bool> {
        parse_bool(self.get(name)?)
    }

    /// The attributes.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The attributes, owned.
    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }

    /// True when the row has no attributes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<BTreeMap<String, String>> for Row {
    fn from(map: BTreeMap<String, String>) -> Self {
        Row(map)
    }
}

impl FromIterator<(String, String)> for Row {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Row(iter.into_iter().collect())
    }
}

/// Parses a RouterOS boolean (`true`, `false`, `yes`, `no`).
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

/// The result of one command: its `!re` rows and its `!done` attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The `!re` rows, in order.
    pub rows: Vec<Row>,
    /// The attributes of `!done` (`ret`).
    pub done: Row,
    /// True when the router answered `!empty` (a `print` that found nothing, RouterOS >= 7.18).
    pub empty: bool,
}

impl Response {
    /// `!done =ret=`: the new `.id` after `add`, the count after `count-only`.
    pub fn ret(&self) -> Option<&str> {
        self.done.get("ret")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_flags_and_ids() {
        let row: Row = [
            (".id".to_owned(), "*1A".to_owned()),
            ("disabled".to_owned(), "yes".to_owned()),
            ("dynamic".to_owned(), "false".to_owned()),
            ("comment".to_owned(), "x".to_owned()),
        ]
        .into_iter()
        .collect();
        assert_eq!(row.id(), Some("*1A"));
        assert_eq!(row.flag("disabled"), Some(true));
        assert_eq!(row.flag("dynamic"), Some(false));
        assert_eq!(row.flag("comment"), None);
        assert_eq!(row.flag("missing"), None);
        let response = Response {
            done: [("ret".to_owned(), "*2".to_owned())].into_iter().collect(),
            ..Response::default()
        };
        assert_eq!(response.ret(), Some("*2"));
    }
}
