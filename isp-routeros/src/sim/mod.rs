//! A RouterOS simulator that serves the API protocol over TCP and TLS, and the REST API over
//! HTTP and HTTPS, from one router state (feature `sim`).
//!
//! It behaves like a RouterOS 7 router as described in `isp-routeros/PROTOCOL.md`, so that
//! the clients, the driver, the daemon and third-party clients can be tested over real sockets.
//!
//! # Starting routers
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use isp_routeros::sim::{SimConfig, SimFleet, SimRouter};
//!
//! let router = SimRouter::start(SimConfig::new("admin", "secret"), "127.0.0.1:0".parse().unwrap()).await?;
//! let addr = router.addr(); // connect a client here
//! let handle = router.handle(); // control and inspect the router
//! handle.add_row("/ip/hotspot/user", &[("name", "alice"), ("password", "pw")]).unwrap();
//! let session = handle.hotspot_login("alice", "AA:BB:CC:DD:EE:01", "10.5.50.2").unwrap();
//! assert_eq!(handle.rows("/ip/hotspot/active")[0][".id"], session);
//! router.shutdown().await;
//!
//! // 50 routers on consecutive ports 18728..18777
//! let fleet = SimFleet::start(50, SimConfig::new("admin", "secret"), "127.0.0.1:18728".parse().unwrap()).await?;
//! assert_eq!(fleet.routers().len(), 50);
//! fleet.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # API (what client tests use)
//!
//! * [`SimConfig`]: `user`, `password`, `latency`, `cost_per_command` and `cost_per_item` (the
//!   cost model below), `tag_first` (position of `.tag` in replies),
//!   `tls` (a `rustls::ServerConfig`, see [`tls::self_signed`]), `empty_replies` (`!empty` for a
//!   `print` that found nothing, as RouterOS >= 7.18; default on), `dead_value` (`.dead=true`,
//!   or `yes` as older routers), `identity`, `version`, `clock` (start time of the router clock),
//!   `legacy_login` (also accept the pre-6.43 challenge login), `max_word_len`, `rest_listen`
//!   and `rest_tls` (serve REST too, over HTTP or HTTPS).
//! * [`SimRouter`]: `start(config, addr)` (`127.0.0.1:0` picks a port), `addr()`, `handle()`,
//!   `serve_rest(addr, tls)`, `rest_listeners()`, `rest_url()`, `shutdown().await`. Dropping a
//!   router also stops it.
//! * [`SimFleet`]: `start(n, config, base)` on consecutive ports from `base` (each router's identity
//!   gets a `-N` suffix when `n > 1`), `routers()`, `handles()`, `shutdown().await`.
//! * [`SimHandle`] (cheap to clone):
//!   * sessions: `hotspot_login(user, mac, ip) -> Result<id, String>` (user need not exist, as with
//!     RADIUS; a disabled or exhausted user is refused), `hotspot_logout(id_or_user) -> usize`,
//!     `ppp_login(name, caller_id, address) -> Result<id, String>`, `ppp_logout(id_or_name) -> usize`;
//!   * tables: `rows(menu) -> Vec<BTreeMap<String, String>>` (as `print` shows them, with `.id`),
//!     `add_row(menu, attrs) -> Result<id, String>` (an operator's item, validated like `add`);
//!   * observation: `command_log() -> Vec<LoggedCommand>` (every request, API or REST, with
//!     timestamps; `password`/`response` values redacted), `clear_command_log()`,
//!     `removals() -> Vec<Removal>` (every removed item with timestamps and reason),
//!     `logins() -> u64` (successful logins, API and REST), `rest_logins() -> u64`,
//!     `connections() -> usize` (open connections, API and REST);
//!   * clock: `clock()`, `set_clock(t)`, `advance_clock(d)` (limit-uptime, address-list timeouts
//!     and cookie expiry follow the router clock);
//!   * faults: `set_latency(d)` (before every reply), `refuse_logins(on)` (correct credentials get
//!     the login trap), `drop_connections()` (close every open connection now),
//!     `stall_mid_sentence(on)` (the next reply stops half way and the connection goes silent),
//!     `trap_on(command, message)` (`"/ppp/secret/add"` answers `!trap =message=...` then `!done`),
//!     `drop_on(command)` (the connection sending that command closes without an answer),
//!     `clear_faults()` (also ends an outage and restores the configured latency),
//!     `outage(d)` (drop all connections and refuse new ones for `d`), `http_error_on(command,
//!     status)` (REST only), `reboot(d)` (an outage of `d` that also loses every session, host,
//!     cookie and dynamic address-list entry; the configuration stays), `save_config()` and
//!     `reboot_to(saved, d)` (a reboot that comes back with an older configuration).
//!
//! # Cost model
//!
//! Latency stands for the network; [`SimConfig::cost_per_command`] and
//! [`SimConfig::cost_per_item`] stand for the router's own work, so that a client that batches is
//! not flattered by a router answering in zero time. A command waits `cost_per_command + items ×
//! cost_per_item` (a timer, not CPU), on the API, api-ssl and REST alike, where items are:
//!
//! * `print`/`getall`: the items it prints (`!re` replies, or REST array elements; none for
//!   `count-only`). The items are chosen when the command starts, the answer comes after the wait.
//! * `set`, `unset`, `remove`, `disable`, `enable`: the ids (or names) the command names in
//!   `.id`/`numbers`, comma-separated (a singleton `set`: one). The wait comes first, then the
//!   change: a removal is seen (in [`SimHandle::removals`], by `listen`) when the work is done.
//! * `add` and hotspot `login`: one item, waited before the change. API `/login`: the per-command
//!   cost only. `listen` and `follow` are not charged; `/cancel` and `/quit` neither.
//! * A command refused with a trap still costs what it named.
//!
//! A RouterOS API session is served by one process that executes one command at a time: on one
//! connection, tagged commands wait out their latency concurrently (as before, the network
//! overlaps), then execute one after another, each taking its cost, in the order their latency
//! ended; a `/cancel` stops a command still waiting for its turn, not one being executed. Separate
//! connections (and REST connections, one request at a time each) execute in parallel, as
//! a multi-core router's separate sessions do.
//!
//! # REST
//!
//! [`SimConfig::rest_listen`] (with [`SimConfig::rest_tls`] for HTTPS) or
//! [`SimRouter::serve_rest`] start REST listeners on the same router state; [`SimRouter::rest_url`]
//! gives `http://ADDR` / `https://ADDR` for a REST router's address. Each request becomes the API
//! command it stands for, and goes through the same command log (with [`Via::Rest`]), faults and
//! menus:
//!
//! * `GET /rest/<menu>?k=v&.proplist=a,b` is `print` with queries `k=v`: an array of objects
//!   (an object for single-item menus such as `/system/resource` *(unconfirmed: the REST manual's
//!   7.1beta4 example shows a one-element array)*); `GET /rest/<menu>/<id or name>` one object.
//! * `PUT /rest/<menu>` is `add`: `201` and the created object with its `.id` *(status
//!   unconfirmed)*. `PATCH /rest/<menu>/<id>` is `set`: the updated object. `DELETE
//!   /rest/<menu>/<id>` is `remove`: `204` with no body *(status unconfirmed)*; again (or a
//!   `PATCH`/`GET` of a missing id): `404 {"error":404,"message":"Not Found"}`.
//! * `POST /rest/<menu>/<command>` runs any command with the JSON body as attributes
//!   (`.proplist` as an array or text, `.query` as an array of query words, `.id` comma-separated):
//!   rows as an array for `print`, `{"ret":"*N"}` for `add`, `[]` otherwise.
//! * All values are strings in answers; strings, numbers and booleans are accepted.
//! * Errors: `{"error":<status>,"message":"<reason>","detail":"<trap text>"}`: a trap is 400
//!   (duplicates, bad values, `no such item` through a command), an unknown command of a known
//!   menu 406 (`no such command or directory (cmd)`), an unknown directory 400 with the router's
//!   text; missing or wrong Basic auth (or [`SimHandle::refuse_logins`]) `401` with
//!   `WWW-Authenticate: Basic realm="REST API"` and no detail; paths outside `/rest` 404.
//! * Logins: one per HTTP connection, counted at its first request with valid credentials
//!   ([`SimHandle::rest_logins`], also in [`SimHandle::logins`]) *(how real routers count REST
//!   sessions in `/user/active` is unconfirmed; per connection is modelled)*. A client that opens
//!   a connection per request logs in per request.
//! * Faults: latency, `trap_on` (as the HTTP error above), `drop_on` (the connection closes without
//!   an answer), `drop_connections`, `outage` (the REST ports close too), `stall_mid_sentence`
//!   (no answer at all on that connection), and [`SimHandle::http_error_on`] (a given status, e.g.
//!   503, REST only).
//!
//! # Protocol behaviour
//!
//! * Login (>= 6.43): `/login =name= =password=` gives `!done`; wrong credentials
//!   `!trap =message=invalid user name or password (6)` then `!done`, and the connection stays
//!   open. Any other command before login gets `!fatal not logged in` and the connection closes.
//!   `/quit` gets `!fatal session terminated on request` and the connection closes.
//! * Every reply of a tagged request carries its `.tag` (first or last, [`SimConfig::tag_first`]);
//!   `!fatal` never does. With latency, tagged commands run concurrently, untagged ones in order
//!   (with a cost, see the cost model: execution is one at a time per connection).
//! * `print`/`getall`: `.proplist`, `count-only` (`!done =ret=N`), queries (`?name`, `?-name`,
//!   `?name=x`, `?=name=x`, `?<name=x`, `?>name=x`, `?#` with `!`, `&`, `|`, `.`, indexes);
//!   `!empty` before `!done` when nothing matched (if enabled); `follow` / `follow-only`.
//! * `listen` (and `print =follow-only=`): `!re` for every added or changed item that matches the
//!   queries, `=.id=*N =.dead=true` for removed ones, until `/cancel`.
//! * `/cancel =tag=X`: `!trap =category=2 =message=interrupted` tagged X, `!done` for the cancel,
//!   `!done` tagged X. Without `=tag=` every running command of the connection is stopped.
//!   Cancelling a tag that is not running just gets `!done` *(unconfirmed)*. Only `listen`s and
//!   tagged commands still waiting out their latency can be cancelled.
//! * A protocol error (control byte, oversized word, malformed request) closes the connection.
//!
//! # Menus
//!
//! `/ip/hotspot` (server `hotspot1`), `/ip/hotspot/user`, `/ip/hotspot/user/profile` (`default`),
//! `/ip/hotspot/active` (print, remove, `login =user= =password= =mac-address= =ip=`),
//! `/ip/hotspot/host`, `/ip/hotspot/cookie`, `/ip/hotspot/ip-binding`, `/ppp/secret`,
//! `/ppp/profile` (`default`, `default-encryption`), `/ppp/active`, `/ip/firewall/address-list`,
//! `/queue/simple`, `/system/resource`, `/system/identity` (print, set), `/system/clock`
//! (print, set `time-zone-name`: `time`, `date` and `gmt-offset` follow that IANA zone; UTC by
//! default). Commands: `print`, `getall`, `listen`, and where the router has them `add`
//! (`!done =ret=*N`), `set`, `remove`, `disable`, `enable`, `unset =value-name=`; items are named by
//! `=.id=` or `=numbers=` (comma-separated, or the item's `name` where it has one).
//!
//! Ids are `*HEX`, per menu, never reused. Values are validated and normalised as a router does:
//! booleans print `true`/`false`, times in router form (`90m` -> `1h30m`), MACs upper case, a
//! `/32` address-list address without prefix, queue targets with one (`10.0.0.2/32`), queue
//! rates in bit/s (`10M/20M` -> `10000000/20000000`).
//!
//! Hotspot: an API `login` or [`SimHandle::hotspot_login`] creates an active session, an
//! authorized host and a MAC cookie (3 days). A session ends when its user's `limit-uptime` is
//! used up (router clock), when the user is removed, disabled or renamed, when its host is removed,
//! or when it is removed itself; its uptime is added to the user's `uptime`, and its host becomes
//! unauthorized. PPP: removing or disabling a secret keeps the live session, as real routers do;
//! removing `/ppp/active` ends it.
//!
//! Trap texts: `no such item`, `failure: already have user with this name for this server`,
//! `failure: secret with the same name already exists`, `failure: already have such entry`,
//! `input does not match any value of profile` (category 1, also for other references and
//! enumerations), `invalid time value for argument limit-uptime`,
//! `invalid value for argument remote-address` (category 1, for any malformed value),
//! `no such command or directory (xyz)` (category 0), `no such command prefix`,
//! `unknown parameter x` (category 1). *(Unconfirmed on a real router:)* duplicate queue name
//! `failure: already have queue with such name`; missing required values
//! `missing value(s) of argument(s) name`; hotspot login failures
//! `invalid username or password` and `user NAME has reached uptime limit`.

mod duration;
mod menus;
mod query;
pub mod radius;
mod rest;
mod router;
mod server;
pub mod tls;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use router::{Removal, SavedConfig};
use router::{RouterSettings, RouterState};
use server::{lock, Shared};

/// How a simulated router behaves.
#[derive(Clone)]
pub struct SimConfig {
    /// API user name.
    pub user: String,
    /// API password (never logged or shown by `Debug`).
    pub password: String,
    /// Delay before every reply (also settable at run time).
    pub latency: Duration,
    /// The router's work per command (cost model): a command waits this long on top of its
    /// latency. Zero by default.
    pub cost_per_command: Duration,
    /// The router's work per item a command prints or names (cost model): a `print` of N
    /// items, or a `remove` naming N ids, also waits N times this. Zero by default.
    pub cost_per_item: Duration,
    /// Put `.tag` right after the reply word (newer routers) instead of last.
    pub tag_first: bool,
    /// Serve api-ssl with this configuration instead of plain TCP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Answer a `print` that found nothing with `!empty` before `!done` (RouterOS >= 7.18).
    pub empty_replies: bool,
    /// The value of `.dead` in `listen` replies: `true` (newer) or `yes` (older).
    pub dead_value: String,
    /// `/system/identity` name.
    pub identity: String,
    /// `/system/resource` version.
    pub version: String,
    /// Start time of the router clock (default: now).
    pub clock: Option<DateTime<Utc>>,
    /// Also accept the pre-6.43 challenge/response login.
    pub legacy_login: bool,
    /// Bound on one received word.
    pub max_word_len: usize,
    /// Also serve the REST API (`/rest`) on this address (`127.0.0.1:0` picks a port), from the
    /// same router state. More listeners: [`SimRouter::serve_rest`].
    pub rest_listen: Option<SocketAddr>,
    /// Serve that REST listener over HTTPS (`www-ssl`) with this configuration; plain HTTP
    /// (`www`) when `None`.
    pub rest_tls: Option<Arc<rustls::ServerConfig>>,
}

impl SimConfig {
    /// A RouterOS 7.18 router with these credentials, plain TCP, no latency, `.tag` last.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
            latency: Duration::ZERO,
            cost_per_command: Duration::ZERO,
            cost_per_item: Duration::ZERO,
            tag_first: false,
            tls: None,
            empty_replies: true,
            dead_value: "true".to_owned(),
            identity: "MikroTik".to_owned(),
            version: "7.18.2 (stable)".to_owned(),
            clock: None,
            legacy_login: false,
            max_word_len: 1024 * 1024,
            rest_listen: None,
            rest_tls: None,
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self::new("admin", "")
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("latency", &self.latency)
            .field("cost_per_command", &self.cost_per_command)
            .field("cost_per_item", &self.cost_per_item)
            .field("tag_first", &self.tag_first)
            .field("tls", &self.tls.is_some())
            .field("empty_replies", &self.empty_replies)
            .field("dead_value", &self.dead_value)
            .field("identity", &self.identity)
            .field("version", &self.version)
            .field("clock", &self.clock)
            .field("legacy_login", &self.legacy_login)
            .field("max_word_len", &self.max_word_len)
            .field("rest_listen", &self.rest_listen)
            .field("rest_tls", &self.rest_tls.is_some())
            .finish()
    }
}

/// One request the router received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedCommand {
    /// Wall-clock time of arrival.
    pub at: SystemTime,
    /// Monotonic time of arrival.
    pub instant: Instant,
    /// Which connection (1, 2, ... in order of acceptance).
    pub connection: u64,
    /// The command (`/ip/hotspot/active/print`).
    pub command: String,
    /// Attributes in order; `password` and `response` values are `<redacted>`.
    pub attributes: Vec<(String, String)>,
    /// Queries (text after `?`).
    pub queries: Vec<String>,
    /// The `.tag`.
    pub tag: Option<String>,
    /// Which service received it.
    pub via: Via,
}

/// The service a request came through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The API (`api`, `api-ssl`).
    Api,
    /// The REST API (`www`, `www-ssl`); the logged command is the one the request stands for
    /// (`PUT /rest/ppp/secret` is `/ppp/secret/add`).
    Rest {
        /// `GET`, `PUT`, `PATCH`, `DELETE`, `POST`.
        method: String,
        /// The URL path (`/rest/ppp/secret/*1`).
        path: String,
    },
}

/// One REST listener of a router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestListener {
    /// Where it listens.
    pub addr: SocketAddr,
    /// HTTPS (`true`) or plain HTTP.
    pub tls: bool,
}

impl RestListener {
    /// `https://127.0.0.1:1234` or `http://...`: a REST router address for the driver.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }
}

/// One simulated router listening on a socket (and on REST listeners, if any).
#[derive(Debug)]
pub struct SimRouter {
    addr: SocketAddr,
    handle: SimHandle,
    task: Option<JoinHandle<()>>,
    ticker: Option<JoinHandle<()>>,
    rest: Vec<RestListener>,
    rest_tasks: Vec<JoinHandle<()>>,
}

impl SimRouter {
    /// Starts a router on `listen` (`127.0.0.1:0` picks a free port).
    pub async fn start(config: SimConfig, listen: SocketAddr) -> std::io::Result<SimRouter> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let settings = RouterSettings {
            version: config.version.clone(),
            identity: config.identity.clone(),
            empty_replies: config.empty_replies,
        };
        let state = RouterState::new(settings, config.clock.unwrap_or_else(Utc::now));
        let shared = Arc::new(Shared::new(config, state));
        let task = tokio::spawn(server::accept_loop(shared.clone(), listener, addr));
        let ticker = {
            let shared = shared.clone();
            let mut shutdown = shared.shutdown.subscribe();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tokio::select! {
                        _ = interval.tick() => {
                            let stops = {
                                let mut state = lock(&shared.state);
                                state.tick();
                                std::mem::take(&mut state.radius.stops)
                            };
                            for stop in stops {
                                tokio::spawn(radius::send_stop(stop));
                            }
                        }
                        _ = server::stopped(&mut shutdown) => return,
                    }
                }
            })
        };
        tracing::debug!(%addr, tls = shared.config.tls.is_some(), "simulated router listening");
        let (rest_listen, rest_tls) = (shared.config.rest_listen, shared.config.rest_tls.clone());
        let mut router = SimRouter {
            addr,
            handle: SimHandle { shared },
            task: Some(task),
            ticker: Some(ticker),
            rest: Vec::new(),
            rest_tasks: Vec::new(),
        };
        if let Some(listen) = rest_listen {
            router.serve_rest(listen, rest_tls).await?;
        }
        Ok(router)
    }

    /// Starts another REST listener on `listen` (`127.0.0.1:0` picks a port): HTTPS with `tls`,
    /// plain HTTP without. It serves the same router state as the API. Returns its address.
    pub async fn serve_rest(
        &mut self,
        listen: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        self.rest.push(RestListener {
            addr,
            tls: tls.is_some(),
        });
        tracing::debug!(%addr, tls = tls.is_some(), "simulated router serving REST");
        self.rest_tasks.push(tokio::spawn(rest::accept_loop(
            self.handle.shared.clone(),
            listener,
            addr,
            tls,
        )));
        Ok(addr)
    }

    /// The address it listens on (API).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its REST listeners, in the order they were started.
    pub fn rest_listeners(&self) -> &[RestListener] {
        &self.rest
    }

    /// The first REST listener's URL (`https://127.0.0.1:1234` or `http://...`), usable as a
    /// REST router's address.
    pub fn rest_url(&self) -> Option<String> {
        self.rest.first().map(RestListener::url)
    }

    /// The control handle.
    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    /// Stops listening, closes every connection and waits for the listener task.
    pub async fn shutdown(mut self) {
        self.handle.shared.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.await;
        }
        for task in self.rest_tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for SimRouter {
    fn drop(&mut self) {
        self.handle.shared.shutdown.send_replace(true);
    }
}

/// Many routers in one process, on consecutive ports.
#[derive(Debug)]
pub struct SimFleet {
    routers: Vec<SimRouter>,
}

impl SimFleet {
    /// Starts `n` routers on `base`, `base + 1`, ... (with port 0, each on a free port).
    /// Each identity gets a `-1`, `-2`, ... suffix when `n > 1`. A [`SimConfig::rest_listen`]
    /// port is counted up the same way.
    pub async fn start(n: usize, config: SimConfig, base: SocketAddr) -> std::io::Result<SimFleet> {
        let mut routers = Vec::with_capacity(n);
        for i in 0..n {
            let nth = |base: SocketAddr| -> std::io::Result<SocketAddr> {
                let mut addr = base;
                if base.port() != 0 {
                    let port = u16::try_from(usize::from(base.port()) + i).map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::InvalidInput, "fleet ports go past 65535")
                    })?;
                    addr.set_port(port);
                }
                Ok(addr)
            };
            let addr = nth(base)?;
            let mut c = config.clone();
            c.rest_listen = config.rest_listen.map(nth).transpose()?;
            if n > 1 {
                c.identity = format!("{}-{}", config.identity, i + 1);
            }
            routers.push(SimRouter::start(c, addr).await?);
        }
        Ok(SimFleet { routers })
    }

    /// The routers, in port order.
    pub fn routers(&self) -> &[SimRouter] {
        &self.routers
    }

    /// Their control handles.
    pub fn handles(&self) -> Vec<SimHandle> {
        self.routers.iter().map(SimRouter::handle).collect()
    }

    /// Stops every router.
    pub async fn shutdown(self) {
        for r in self.routers {
            r.shutdown().await;
        }
    }
}

/// Controls and inspects one simulated router (cheap to clone, usable from any thread).
#[derive(Clone)]
pub struct SimHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("identity", &lock(&self.shared.state).settings.identity)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    fn state(&self) -> std::sync::MutexGuard<'_, RouterState> {
        let mut state = lock(&self.shared.state);
        state.tick();
        state
    }

    /// A device logs in to the hotspot (as through the login page): creates an active session,
    /// an authorized host and a cookie. Returns the session's `.id`.
    pub fn hotspot_login(&self, user: &str, mac: &str, ip: &str) -> Result<String, String> {
        self.state()
            .hotspot_login(user, None, mac, ip, "http-chap")
            .map(|id| format!("*{id:X}"))
            .map_err(|t| t.message)
    }

    /// Ends hotspot sessions by `.id` or user name; returns how many ended.
    pub fn hotspot_logout(&self, id_or_user: &str) -> usize {
        self.state().hotspot_logout(id_or_user)
    }

    /// A PPP client connects. Returns the `/ppp/active` `.id`.
    pub fn ppp_login(&self, name: &str, caller_id: &str, address: &str) -> Result<String, String> {
        self.state()
            .ppp_login(name, caller_id, address)
            .map(|id| format!("*{id:X}"))
            .map_err(|t| t.message)
    }

    /// Ends PPP sessions by `.id` or name; returns how many ended.
    pub fn ppp_logout(&self, id_or_name: &str) -> usize {
        self.state().ppp_logout(id_or_name)
    }

    /// The items of a menu (`"/ip/hotspot/active"`) as `print` shows them, with `.id`.
    /// An unknown menu has none.
    pub fn rows(&self, menu: &str) -> Vec<BTreeMap<String, String>> {
        self.state().rows(menu)
    }

    /// Adds an item as an operator would, validated like an API `add`. Returns its `.id`, or the
    /// trap message.
    pub fn add_row(&self, menu: &str, attrs: &[(&str, &str)]) -> Result<String, String> {
        self.state().add_row(menu, attrs).map_err(|t| t.message)
    }

    /// Every request received so far, in order of arrival.
    pub fn command_log(&self) -> Vec<LoggedCommand> {
        lock(&self.shared.log).clone()
    }

    /// Forgets the requests logged so far.
    pub fn clear_command_log(&self) {
        lock(&self.shared.log).clear();
    }

    /// Every item removed so far (by command, cascade, expiry or logout), in order.
    pub fn removals(&self) -> Vec<Removal> {
        self.state().removals.clone()
    }

    /// Successful logins so far: API logins and REST logins.
    pub fn logins(&self) -> u64 {
        self.shared.logins.load(Ordering::Relaxed)
    }

    /// Successful REST logins so far: one per HTTP connection, counted at its first request with
    /// valid Basic auth (a REST session in `/user/active`), however many requests follow on it.
    pub fn rest_logins(&self) -> u64 {
        self.shared.rest_logins.load(Ordering::Relaxed)
    }

    /// Connections open now (API and REST).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// The router clock.
    pub fn clock(&self) -> DateTime<Utc> {
        self.state().now()
    }

    /// Sets the router clock (it keeps running from there); sessions past their limit end.
    pub fn set_clock(&self, t: DateTime<Utc>) {
        lock(&self.shared.state).set_clock(t);
    }

    /// Moves the router clock forward.
    pub fn advance_clock(&self, d: Duration) {
        let mut state = lock(&self.shared.state);
        let t = state.now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
        state.set_clock(t);
    }

    /// Delay before every reply from now on.
    pub fn set_latency(&self, d: Duration) {
        lock(&self.shared.faults).latency = d;
    }

    /// While on, every login is refused with the router's login trap.
    pub fn refuse_logins(&self, on: bool) {
        lock(&self.shared.faults).refuse_logins = on;
    }

    /// Closes every open connection now.
    pub fn drop_connections(&self) {
        self.shared.drop_tx.send_modify(|g| *g += 1);
    }

    /// While on, the next reply sentence on each connection is cut half way and nothing more is
    /// sent on that connection.
    pub fn stall_mid_sentence(&self, on: bool) {
        lock(&self.shared.faults).stall = on;
    }

    /// Every `command` (`"/ppp/secret/add"`) answers `!trap =message=<message>` then `!done`;
    /// over REST, the HTTP error the trap stands for (400 with the message as `detail`; 404 for
    /// `no such item` on an item URL).
    pub fn trap_on(&self, command: &str, message: &str) {
        lock(&self.shared.faults)
            .traps
            .push((command.to_owned(), message.to_owned()));
    }

    /// The connection that sends `command` (`"/ppp/secret/remove"`) is closed at once, without an
    /// answer: a connection lost mid-command. Applies to every such command until cleared.
    pub fn drop_on(&self, command: &str) {
        lock(&self.shared.faults).drop_on.push(command.to_owned());
    }

    /// REST requests for `command` (`"/ppp/secret/add"`, i.e. `PUT /rest/ppp/secret`) are answered
    /// with HTTP `status` (e.g. 503) and a RouterOS error body, without running. The API is not
    /// affected.
    pub fn http_error_on(&self, command: &str, status: u16) {
        lock(&self.shared.faults)
            .http_errors
            .push((command.to_owned(), status));
    }

    /// Removes every fault: latency back to the configured one, logins accepted, no stalls,
    /// no injected traps or drops, outage over.
    pub fn clear_faults(&self) {
        {
            let mut f = lock(&self.shared.faults);
            f.latency = self.shared.config.latency;
            f.refuse_logins = false;
            f.stall = false;
            f.traps.clear();
            f.drop_on.clear();
            f.http_errors.clear();
            f.outage_until = None;
        }
        self.shared.outage_wake.notify_one();
    }

    /// The configuration as it is now (every item but sessions, hosts, cookies, PPP sessions
    /// and dynamic address-list entries), for [`SimHandle::reboot_to`].
    pub fn save_config(&self) -> SavedConfig {
        self.state().save_config()
    }

    /// The router restarts: every connection drops and the ports refuse connections for
    /// `down`; every hotspot and PPP session (removal reason `reboot`), host, cookie and dynamic
    /// address-list entry is gone and uptime starts again. The configuration is kept. Returns
    /// how many runtime items were lost.
    pub fn reboot(&self, down: Duration) -> usize {
        let lost = self.state().reboot(None);
        self.outage(down);
        lost
    }

    /// [`SimHandle::reboot`], coming back with `config` (taken by [`SimHandle::save_config`])
    /// instead of the configuration it had: a restored backup, or changes not yet written to
    /// flash when the power went.
    pub fn reboot_to(&self, config: &SavedConfig, down: Duration) -> usize {
        let lost = self.state().reboot(Some(config));
        self.outage(down);
        lost
    }

    /// A full outage: every connection drops and the port refuses connections for `d`.
    pub fn outage(&self, d: Duration) {
        lock(&self.shared.faults).outage_until = Some(Instant::now() + d);
        self.drop_connections();
        self.shared.outage_wake.notify_one();
    }
}
