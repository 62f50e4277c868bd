//! A small pool of connections to one router, with reconnect back-off and
//! typed command helpers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::Retryable;
use tokio_rustls::TlsConnector;

use super::backoff;
use super::config::{ClientConfig, Endpoint, Security};
use super::conn::{Connection, ListenStream};
use super::error::ClientError;
use super::{tls, Response, Row};
use crate::proto::Request;

struct PoolState {
    connections: Vec<Connection>,
    /// Calls whose connect attempts all failed, in a row.
    failures: u32,
    /// No new connect attempt before this instant.
    cooldown_until: Option<Instant>,
    last_error: Option<ClientError>,
}

struct ClientInner {
    endpoint: Endpoint,
    config: ClientConfig,
    connector: Option<TlsConnector>,
    state: tokio::sync::Mutex<PoolState>,
    logins: AtomicU64,
}

/// A RouterOS API client for one router: a small pool of logged-in
/// [`Connection`]s shared by every caller. Cheap to clone.
///
/// * Connects lazily on first use, logs in once, and reuses the connection:
///   commands are multiplexed by tag. Another connection opens (up to
///   [`ClientConfig::max_connections`]) only when every open one has
///   [`ClientConfig::max_in_flight`] commands running.
/// * A broken connection is dropped from the pool; the next call reconnects,
///   trying [`ClientConfig::connect_attempts`] times with exponential back-off,
///   each delay drawn at random in the upper half of its step. Commands themselves are never retried (an `add` may have
///   happened): the caller gets a transient error.
/// * When a call's connect attempts all fail, calls fail at once with
///   [`ClientError::Backoff`] during a cool-down that doubles per failed call
///   (jittered the same way, so pools that failed together do not retry together).
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint)
            .field("logins", &self.logins())
            .finish()
    }
}

/// Checks a menu path (`/ip/hotspot/active`): starts with `/`, no spaces or control characters.
fn check_menu(menu: &str) -> Result<(), ClientError> {
    if !menu.starts_with('/')
        || menu.len() < 2
        || menu.ends_with('/')
        || menu.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ClientError::Config {
            field: "menu",
            value: menu.to_owned(),
            reason: "a menu path looks like /ip/hotspot/active".into(),
        });
    }
    Ok(())
}

/// Checks item ids (or names) for a comma-separated `=numbers=` list.
fn join_ids(ids: &[&str]) -> Result<String, ClientError> {
    if ids.is_empty() {
        return Err(ClientError::Config {
            field: "ids",
            value: String::new(),
            reason: "at least one item id".into(),
        });
    }
    for id in ids {
        if id.is_empty() || id.contains(',') || id.chars().any(char::is_control) {
            return Err(ClientError::Config {
                field: "id",
                value: (*id).to_owned(),
                reason: "an item id looks like *1A (no commas)".into(),
            });
        }
    }
    Ok(ids.join(","))
}

impl Client {
    /// A client for `endpoint`. No I/O happens until the first command.
    pub fn new(endpoint: Endpoint, config: ClientConfig) -> Result<Client, ClientError> {
        config.validate()?;
        let connector = match &endpoint.security {
            Security::Plain => None,
            Security::Tls(options) => Some(tls::connector(options)?),
        };
        Ok(Client {
            inner: Arc::new(ClientInner {
                endpoint,
                config,
                connector,
                state: tokio::sync::Mutex::new(PoolState {
                    connections: Vec::new(),
                    failures: 0,
                    cooldown_until: None,
                    last_error: None,
                }),
                logins: AtomicU64::new(0),
            }),
        })
    }

    /// The router this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Successful logins so far (one per connection opened).
    pub fn logins(&self) -> u64 {
        self.inner.logins.load(Ordering::Relaxed)
    }

    /// Open connections (closed ones are pruned on the next call).
    pub async fn open_connections(&self) -> usize {
        let state = self.inner.state.lock().await;
        state.connections.iter().filter(|c| !c.is_closed()).count()
    }

    /// Closes every connection; the next call reconnects.
    pub async fn close(&self) {
        let mut state = self.inner.state.lock().await;
        for c in state.connections.drain(..) {
            c.close();
        }
    }

    /// A live connection: an open one with room, or a new one.
    pub async fn connection(&self) -> Result<Connection, ClientError> {
        let config = &self.inner.config;
        let mut state = self.inner.state.lock().await;
        state.connections.retain(|c| !c.is_closed());
        let least_loaded = state.connections.iter().min_by_key(|c| c.in_flight()).cloned();
        if let Some(c) = &least_loaded {
            if c.in_flight() < config.max_in_flight || state.connections.len() >= config.max_connections {
                return Ok(c.clone());
            }
        }
        let now = Instant::now();
        if let Some(until) = state.cooldown_until.filter(|u| *u > now) {
            if let Some(c) = least_loaded {
                return Ok(c);
            }
            let last = state.last_error.clone().unwrap_or(ClientError::ConnectionLost {
                detail: "earlier connect attempts failed".into(),
            });
            return Err(ClientError::Backoff {
                retry_in: until - now,
                last: Box::new(last),
            });
        }
        match self.connect_with_retries().await {
            Ok(c) => {
                state.failures = 0;
                state.cooldown_until = None;
                state.last_error = None;
                state.connections.push(c.clone());
                Ok(c)
            }
            Err(e) => {
                state.failures = state.failures.saturating_add(1);
                if !config.cooldown_min.is_zero() {
                    let cooldown =
                        backoff::cooldown(config.cooldown_min, config.cooldown_max, state.failures);
                    state.cooldown_until = Some(Instant::now() + cooldown);
                }
                state.last_error = Some(e.clone());
                tracing::warn!(router = %self.inner.endpoint.label, error = %e, failures = state.failures, "cannot connect to router");
                match least_loaded {
                    Some(c) => Ok(c),
                    None => Err(e),
                }
            }
        }
    }

    async fn connect_once(&self) -> Result<Connection, ClientError> {
        let c = Connection::open(
            &self.inner.endpoint,
            &self.inner.config,
            self.inner.connector.as_ref(),
        )
        .await?;
        self.inner.logins.fetch_add(1, Ordering::Relaxed);
        Ok(c)
    }

    async fn connect_with_retries(&self) -> Result<Connection, ClientError> {
        let config = &self.inner.config;
        let delays = backoff::Jittered::new(
            config.backoff_min,
            config.backoff_max,
            config.connect_attempts.saturating_sub(1),
            backoff::random_seed(),
        );
        (|| self.connect_once())
            .retry(delays)
            .sleep(tokio::time::sleep)
            .when(ClientError::is_transient)
            .notify(|e: &ClientError, after: Duration| {
                tracing::debug!(router = %self.inner.endpoint.label, error = %e, retry_in = ?after, "router connect failed, retrying");
            })
            .await
    }

    /// Runs one command on a pooled connection (see [`Connection::run`]).
    pub async fn run(&self, request: Request) -> Result<Response, ClientError> {
        check_menu(&request.command)?;
        let c = self.connection().await?;
        c.run(request).await
    }

    /// Starts a `listen` on a pooled connection (see [`Connection::listen`]).
    pub async fn listen(&self, request: Request) -> Result<ListenStream, ClientError> {
        check_menu(&request.command)?;
        let c = self.connection().await?;
        c.listen(request).await
    }

    /// `print` of `menu` with `.proplist` (empty: every property) and queries
    /// (the text after `?`, e.g. `user=alice`, `#|`).
    pub async fn print(
        &self,
        menu: &str,
        proplist: &[&str],
        queries: &[&str],
    ) -> Result<Vec<Row>, ClientError> {
        check_menu(menu)?;
        let mut request = Request::new(format!("{menu}/print"));
        if !proplist.is_empty() {
            request = request.attr(".proplist", proplist.join(","));
        }
        for q in queries {
            request = request.query(*q);
        }
        Ok(self.run(request).await?.rows)
    }

    /// `print count-only`: the number of matching items.
    pub async fn count(&self, menu: &str, queries: &[&str]) -> Result<u64, ClientError> {
        check_menu(menu)?;
        let mut request = Request::new(format!("{menu}/print")).attr("count-only", "");
        for q in queries {
            request = request.query(*q);
        }
        let response = self.run(request).await?;
        let ret = response.ret().unwrap_or_default();
        ret.parse().map_err(|_| ClientError::Protocol {
            detail: format!("count-only of {menu} returned {ret:?}, not a number"),
        })
    }

    /// `add`: returns the new item's `.id` (`!done =ret=`).
    pub async fn add(&self, menu: &str, attributes: &[(&str, &str)]) -> Result<String, ClientError> {
        check_menu(menu)?;
        let mut request = Request::new(format!("{menu}/add"));
        for (k, v) in attributes {
            request = request.attr(*k, *v);
        }
        let response = self.run(request).await?;
        match response.ret() {
            Some(id) if !id.is_empty() => Ok(id.to_owned()),
            _ => Err(ClientError::Protocol {
                detail: format!("{menu}/add answered !done without =ret= (the new .id)"),
            }),
        }
    }

    /// `set` on one or more items.
    pub async fn set(
        &self,
        menu: &str,
        ids: &[&str],
        attributes: &[(&str, &str)],
    ) -> Result<(), ClientError> {
        self.on_items(menu, "set", ids, attributes).await
    }

    /// `remove` of one or more items (one command, ids comma-separated).
    pub async fn remove(&self, menu: &str, ids: &[&str]) -> Result<(), ClientError> {
        self.on_items(menu, "remove", ids, &[]).await
    }

    /// `disable` of one or more items.
    pub async fn disable(&self, menu: &str, ids: &[&str]) -> Result<(), ClientError> {
        self.on_items(menu, "disable", ids, &[]).await
    }

    /// `enable` of one or more items.
    pub async fn enable(&self, menu: &str, ids: &[&str]) -> Result<(), ClientError> {
        self.on_items(menu, "enable", ids, &[]).await
    }

    /// `<menu>/<verb> =numbers=<ids> <attributes>`.
    pub async fn on_items(
        &self,
        menu: &str,
        verb: &str,
        ids: &[&str],
        attributes: &[(&str, &str)],
    ) -> Result<(), ClientError> {
        check_menu(menu)?;
        let mut request = Request::new(format!("{menu}/{verb}")).attr("numbers", join_ids(ids)?);
        for (k, v) in attributes {
            request = request.attr(*k, *v);
        }
        self.run(request).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menus_and_ids_are_checked() {
        assert!(check_menu("/ip/hotspot/active").is_ok());
        for bad in ["", "/", "ip/hotspot", "/ip/hotspot/", "/ip hotspot"] {
            assert!(check_menu(bad).is_err(), "{bad}");
        }
        assert_eq!(join_ids(&["*1", "*A"]).unwrap(), "*1,*A");
        assert!(join_ids(&[]).is_err());
        assert!(join_ids(&["*1,*2"]).is_err());
        assert!(join_ids(&[""]).is_err());
    }
}
