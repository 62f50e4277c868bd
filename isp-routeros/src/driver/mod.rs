//! [`RouterOsDriver`]: the engine's [`RouterDriver`] over the RouterOS API
//! or the RouterOS v7 REST API.
//!
//! One driver serves every router. It keeps one connection pool per
//! [`RouterId`], built lazily from the [`Router`]'s address, transport,
//! credentials and TLS fingerprint, and rebuilt when any of those change:
//! a [`Client`] for `api` / `api-ssl`, a [`RestClient`] for `rest`. So the
//! engine logs in once per router (REST: once per kept-alive connection, at
//! most [`ClientConfig::max_connections`]), not once per user.
//!
//! The menu-level logic is written once, over a small internal transport
//! trait (print / add / set / remove / other item commands) that both clients
//! implement, so both transports do the same thing on the router:
//!
//! | call | commands |
//! |---|---|
//! | `snapshot` | one `print` with `.proplist` per requested menu, concurrently |
//! | `disconnect_hotspot` | one `print` each of `/ip/hotspot/active`, `host`, `cookie`, `ip-binding`, `user` for all targets; then, back to back, `remove` of sessions, of cookies and of the owners' non-blocking ip-bindings, `disable` (or `remove`) of the owners' users and `remove` of hosts, each one command with the ids comma-separated (one command per id only when the router refuses the batch because an item vanished, at most [`DriverConfig::per_router_concurrency`] of them in flight) |
//! | `block_device` / `unblock_device` | print ip-bindings; add (or turn ours into) a `blocked` binding; remove our blocked ones |
//! | `remove_ip_bindings` | one `print` of the MACs' ip-bindings; one `remove` of each owner's non-blocking ones |
//! | hotspot users | print by `?name=`; `add` with our comment, `disable`/`enable`, `remove` (and its sessions) |
//! | PPPoE | print `/ppp/secret` by name; `add`, or `set` ours; `remove` ours and its `/ppp/active` sessions |
//! | static IP | print `/ip/firewall/address-list` by list and address; `add` with our comment; `remove` ours; entries of others are left alone and returned |
//! | static-IP filter rule | print `/ip/firewall/filter` by `chain=forward`; `add` the rule with comment `isp:rule:static-ip`, or `set disabled=no` on ours |
//! | rate limits | print `/queue/simple` by name; `add`, or `set` ours; `remove` ours |
//! | `health` | print `/system/identity`, `/system/resource`, `/system/clock` |
//!
//! Over REST, `print` is `GET /rest/<menu>?k=v&.proplist=...`, `add` is
//! `PUT`, `set` is `PATCH /rest/<menu>/<id>`, `remove` of one id is `DELETE`
//! (of several, `POST /rest/<menu>/remove` with `.id` comma-separated) and
//! `disable`/`enable` are `POST /rest/<menu>/<verb>` (see [`crate::rest`]).
//!
//! Objects it creates carry [`OwnerTag::comment`]; it only changes or
//! removes objects whose comment carries the tag of the subject it acts for. A `no such item` (API) or a
//! 404 (REST) while removing counts as already gone.
//!
//! A REST router's address is `host[:port]` (HTTPS, port 443), or
//! `https://host[:port]` / `http://host[:port]` (plain HTTP, RouterOS >= 7.9,
//! password in clear text as with the plain API).

mod health;
mod hotspot;
mod isp;
mod link;
mod ops;
mod rows;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use isp_core::domain::{MacAddress, OwnerTag, RosName, Router, RouterId, Transport};
use isp_core::ports::{
    DisconnectReport, ForeignObject, HotspotSession, HotspotTarget, HotspotUserSpec, Menu, PppoeSpec,
    QueueSpec, RouterDriver, RouterHealth, RouterSnapshot, RuleState, StaticIpRuleSpec, StaticIpSpec,
};
use isp_core::{Error, Result};

use crate::client::{map_ros_error, Client, ClientConfig, Credentials, Endpoint, TlsOptions};
use crate::rest::{map_rest_error, RestClient, RestEndpoint};
use link::RouterLink;
use ops::Ops;
use rows::{menu_spec, Reader};

/// Settings of a [`RouterOsDriver`].
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Timeouts, keepalive, reconnect back-off and pool limits for every
    /// router, over the API and over REST.
    pub client: ClientConfig,
    /// How api-ssl and HTTPS REST routers' certificates are verified. A
    /// router's own `tls_fingerprint` pins its certificate instead.
    pub tls: TlsOptions,
    /// Most commands one driver call has in flight on one router when it
    /// falls back from one batched command to one command per id (the
    /// router refused the batch). Give it the engine's
    /// `EngineConfig::per_router_concurrency` (default 4, as there), which
    /// also bounds how many driver calls run on one router at once.
    pub per_router_concurrency: usize,
}

/// Default [`DriverConfig::per_router_concurrency`], the engine's default.
pub const DEFAULT_PER_ROUTER_CONCURRENCY: usize = 4;

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            client: ClientConfig::default(),
            tls: TlsOptions::default(),
            per_router_concurrency: DEFAULT_PER_ROUTER_CONCURRENCY,
        }
    }
}

/// One router's connections: API or REST.
#[derive(Debug, Clone)]
enum Pool {
    Api(Client),
    Rest(RestClient),
}

impl Pool {
    fn link(&self) -> Arc<dyn RouterLink> {
        match self {
            Pool::Api(c) => Arc::new(c.clone()),
            Pool::Rest(c) => Arc::new(c.clone()),
        }
    }

    fn logins(&self) -> u64 {
        match self {
            Pool::Api(c) => c.logins(),
            Pool::Rest(c) => c.connections(),
        }
    }
}

/// The [`RouterDriver`] for RouterOS routers over the API (`api`, `api-ssl`)
/// or REST (`rest`), as each router's [`Transport`] says.
///
/// ```no_run
/// # async fn demo(router: isp_core::domain::Router) -> isp_core::Result<()> {
/// use isp_core::ports::{Menu, RouterDriver};
/// use isp_routeros::driver::{DriverConfig, RouterOsDriver};
///
/// let driver = RouterOsDriver::new(DriverConfig::default())?;
/// let snapshot = driver.snapshot(&router, &[Menu::HotspotActive]).await?;
/// println!("{} sessions on {}", snapshot.hotspot_active.len(), router.name);
/// # Ok(()) }
/// ```
pub struct RouterOsDriver {
    config: DriverConfig,
    pools: Mutex<HashMap<RouterId, Pool>>,
}

impl std::fmt::Debug for RouterOsDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routers = self.pools.lock().map(|c| c.len()).unwrap_or_default();
        f.debug_struct("RouterOsDriver")
            .field("config", &self.config)
            .field("routers", &routers)
            .finish()
    }
}

/// The name of a router in errors and logs: `router <name>`.
pub fn service_name(router: &Router) -> String {
    format!("router {}", router.name)
}

fn router_tls(
    router: &Router,
    tls: &TlsOptions,
) -> std::result::Result<TlsOptions, crate::client::ClientError> {
    match &router.tls_fingerprint {
        Some(fp) => tls.clone().with_pin(fp),
        None => Ok(tls.clone()),
    }
}

/// The API client endpoint for an `api` or `api-ssl` router: its address,
/// transport and credentials; for api-ssl, `tls` with the router's
/// fingerprint pinned when it has one. A `rest` router has a
/// [`RestEndpoint`] instead ([`rest_endpoint_for`]).
pub fn endpoint_for(router: &Router, tls: &TlsOptions) -> Result<Endpoint> {
    let service = service_name(router);
    let credentials = Credentials::from_router(&router.credentials);
    let endpoint = match router.transport {
        Transport::Api => Endpoint::plain(service.clone(), &router.address, credentials),
        Transport::ApiSsl => router_tls(router, tls)
            .and_then(|o| Endpoint::tls(service.clone(), &router.address, credentials, o)),
        Transport::Rest => {
            return Err(Error::invalid(
                "transport",
                "rest",
                format!(
                    "router {} uses REST, which has a REST endpoint (rest_endpoint_for), not an API one",
                    router.name
                ),
            ))
        }
        Transport::Radius => return Err(radius_mode(router)),
    };
    endpoint.map_err(|e| map_ros_error(&service, e))
}

/// A router in RADIUS mode has no API or REST login: the RADIUS driver serves it.
fn radius_mode(router: &Router) -> Error {
    Error::invalid(
        "transport",
        "radius",
        format!(
            "router {} is in RADIUS mode: it has no API or REST login (the RADIUS driver serves it)",
            router.name
        ),
    )
}

/// The REST endpoint for a `rest` router: its address (`host[:port]` means
/// HTTPS on 443; `https://` or `http://` may be given), credentials, and
/// `tls` with the router's fingerprint pinned when it has one.
pub fn rest_endpoint_for(router: &Router, tls: &TlsOptions) -> Result<RestEndpoint> {
    let service = service_name(router);
    if router.transport == Transport::Radius {
        return Err(radius_mode(router));
    }
    if router.transport != Transport::Rest {
        return Err(Error::invalid(
            "transport",
            format!("{:?}", router.transport).to_lowercase(),
            format!("router {} uses the API, not REST (endpoint_for)", router.name),
        ));
    }
    let credentials = Credentials::from_router(&router.credentials);
    router_tls(router, tls)
        .map_err(Into::into)
        .and_then(|o| RestEndpoint::parse(service.clone(), &router.address, credentials, o))
        .map_err(|e| map_rest_error(&service, e))
}

impl RouterOsDriver {
    /// A driver with these settings (checked here). No router is contacted
    /// until it is used.
    pub fn new(config: DriverConfig) -> Result<Self> {
        config
            .client
            .validate()
            .map_err(|e| map_ros_error("routeros driver", e))?;
        if config.per_router_concurrency == 0 {
            return Err(Error::invalid(
                "per_router_concurrency",
                0,
                "at least one command in flight per router",
            ));
        }
        Ok(RouterOsDriver {
            config,
            pools: Mutex::new(HashMap::new()),
        })
    }

    /// The settings.
    pub fn config(&self) -> &DriverConfig {
        &self.config
    }

    fn lock_pools(&self) -> std::sync::MutexGuard<'_, HashMap<RouterId, Pool>> {
        self.pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The pool of a router: the existing one, or a new one when the router
    /// is new or its address, transport, credentials or fingerprint changed.
    fn pool_for(&self, router: &Router) -> Result<Pool> {
        let service = service_name(router);
        let fresh = match router.transport {
            Transport::Api | Transport::ApiSsl => {
                let endpoint = endpoint_for(router, &self.config.tls)?;
                let mut pools = self.lock_pools();
                if let Some(Pool::Api(c)) = pools.get(&router.id) {
                    if c.endpoint().same_as(&endpoint) {
                        return Ok(Pool::Api(c.clone()));
                    }
                }
                let client = Client::new(endpoint, self.config.client.clone())
                    .map_err(|e| map_ros_error(&service, e))?;
                let fresh = Pool::Api(client);
                if pools.insert(router.id, fresh.clone()).is_some() {
                    tracing::info!(router = %router.name, "router settings changed; new connection pool");
                }
                fresh
            }
            Transport::Rest => {
                let endpoint = rest_endpoint_for(router, &self.config.tls)?;
                let mut pools = self.lock_pools();
                if let Some(Pool::Rest(c)) = pools.get(&router.id) {
                    if c.endpoint().same_as(&endpoint) {
                        return Ok(Pool::Rest(c.clone()));
                    }
                }
                let client = RestClient::new(endpoint, self.config.client.clone())
                    .map_err(|e| map_rest_error(&service, e))?;
                let fresh = Pool::Rest(client);
                if pools.insert(router.id, fresh.clone()).is_some() {
                    tracing::info!(router = %router.name, "router settings changed; new connection pool");
                }
                fresh
            }
            Transport::Radius => return Err(radius_mode(router)),
        };
        Ok(fresh)
    }

    /// The API client (connection pool) of an `api` / `api-ssl` router: the
    /// existing one, or a new one when the router is new or its address,
    /// transport, credentials or fingerprint changed. A `rest` router is
    /// [`Error::InvalidInput`] ([`RouterOsDriver::rest_client_for`]).
    pub fn client_for(&self, router: &Router) -> Result<Client> {
        match self.pool_for(router)? {
            Pool::Api(c) => Ok(c),
            Pool::Rest(_) => Err(Error::invalid(
                "transport",
                "rest",
                format!("router {} uses REST (rest_client_for)", router.name),
            )),
        }
    }

    /// The REST client of a `rest` router, kept and renewed as
    /// [`RouterOsDriver::client_for`] does. An API router is [`Error::InvalidInput`].
    pub fn rest_client_for(&self, router: &Router) -> Result<RestClient> {
        match self.pool_for(router)? {
            Pool::Rest(c) => Ok(c),
            Pool::Api(_) => Err(Error::invalid(
                "transport",
                format!("{:?}", router.transport).to_lowercase(),
                format!("router {} uses the API (client_for)", router.name),
            )),
        }
    }

    /// Successful logins to a router through this driver's current pool (0
    /// for a router not used yet). Over REST: connections opened, each one
    /// REST login on the router.
    pub fn logins(&self, router: RouterId) -> u64 {
        self.lock_pools().get(&router).map_or(0, Pool::logins)
    }

    /// Drops a router's pool (its connections close once idle).
    pub fn forget(&self, router: RouterId) {
        self.lock_pools().remove(&router);
    }

    fn ops(&self, router: &Router) -> Result<Ops> {
        Ok(Ops {
            link: self.pool_for(router)?.link(),
            service: service_name(router),
            concurrency: self.config.per_router_concurrency,
        })
    }
}

async fn snapshot(ops: &Ops, menus: &[Menu]) -> Result<RouterSnapshot> {
    let mut wanted: Vec<Menu> = menus.to_vec();
    wanted.sort();
    wanted.dedup();
    let reads = wanted.iter().map(|menu| async move {
        let (path, props) = menu_spec(*menu);
        ops.print(path, props, &[]).await.map(|rows| (*menu, path, rows))
    });
    let mut snapshot = RouterSnapshot::default();
    for (menu, path, rows) in futures::future::try_join_all(reads).await? {
        let reader = Reader { ops, menu: path };
        match menu {
            Menu::HotspotActive => {
                snapshot.hotspot_active = rows
                    .iter()
                    .map(|r| reader.hotspot_session(r))
                    .collect::<Result<_>>()?
            }
            Menu::HotspotUsers => {
                snapshot.hotspot_users = rows
                    .iter()
                    .map(|r| reader.hotspot_user(r))
                    .collect::<Result<_>>()?
            }
            Menu::IpBindings => {
                snapshot.ip_bindings = rows.iter().map(|r| reader.ip_binding(r)).collect::<Result<_>>()?
            }
            Menu::PppSecrets => {
                snapshot.ppp_secrets = rows.iter().map(|r| reader.ppp_secret(r)).collect::<Result<_>>()?
            }
            Menu::PppActive => {
                snapshot.ppp_active = rows
                    .iter()
                    .map(|r| reader.ppp_session(r))
                    .collect::<Result<_>>()?
            }
            Menu::AddressList => {
                snapshot.address_list = rows
                    .iter()
                    .map(|r| reader.address_list_entry(r))
                    .collect::<Result<_>>()?
            }
            Menu::Queues => {
                snapshot.queues = rows
                    .iter()
                    .map(|r| reader.simple_queue(r))
                    .collect::<Result<_>>()?
            }
        }
    }
    Ok(snapshot)
}

#[async_trait]
impl RouterDriver for RouterOsDriver {
    async fn snapshot(&self, router: &Router, menus: &[Menu]) -> Result<RouterSnapshot> {
        snapshot(&self.ops(router)?, menus).await
    }

    async fn disconnect_hotspot(
        &self,
        router: &Router,
        targets: &[HotspotTarget],
    ) -> Result<Vec<Result<DisconnectReport>>> {
        hotspot::disconnect(&self.ops(router)?, targets).await
    }

    async fn remove_hotspot_sessions(&self, router: &Router, ids: &[String]) -> Result<u32> {
        hotspot::remove_sessions(&self.ops(router)?, ids).await
    }

    async fn block_device(&self, router: &Router, mac: MacAddress, owner: OwnerTag) -> Result<()> {
        hotspot::block_device(&self.ops(router)?, mac, owner).await
    }

    async fn unblock_device(&self, router: &Router, mac: MacAddress) -> Result<()> {
        hotspot::unblock_device(&self.ops(router)?, mac).await
    }

    async fn remove_ip_bindings(
        &self,
        router: &Router,
        bindings: &[(MacAddress, OwnerTag)],
    ) -> Result<Vec<Result<u32>>> {
        hotspot::remove_bindings(&self.ops(router)?, bindings).await
    }

    async fn set_hotspot_user_disabled(
        &self,
        router: &Router,
        name: &RosName,
        owner: OwnerTag,
        disabled: bool,
    ) -> Result<()> {
        hotspot::set_user_disabled(&self.ops(router)?, name, owner, disabled).await
    }

    async fn set_hotspot_users_disabled(
        &self,
        router: &Router,
        changes: &[(RosName, OwnerTag, bool)],
    ) -> Result<Vec<Result<()>>> {
        hotspot::set_users_disabled(&self.ops(router)?, changes).await
    }

    async fn add_hotspot_user(&self, router: &Router, spec: &HotspotUserSpec) -> Result<String> {
        hotspot::add_user(&self.ops(router)?, spec).await
    }

    async fn remove_hotspot_user(&self, router: &Router, name: &RosName, owner: OwnerTag) -> Result<bool> {
        hotspot::remove_user(&self.ops(router)?, name, owner).await
    }

    async fn provision_pppoe(&self, router: &Router, spec: &PppoeSpec) -> Result<()> {
        isp::provision_pppoe(&self.ops(router)?, spec).await
    }

    async fn deprovision_pppoe(&self, router: &Router, username: &RosName, owner: OwnerTag) -> Result<()> {
        isp::deprovision_pppoe(&self.ops(router)?, username, owner).await
    }

    async fn provision_static_ip(&self, router: &Router, spec: &StaticIpSpec) -> Result<Vec<ForeignObject>> {
        isp::provision_static_ip(&self.ops(router)?, spec).await
    }

    async fn deprovision_static_ip(
        &self,
        router: &Router,
        address: Ipv4Addr,
        list: &RosName,
        owner: OwnerTag,
    ) -> Result<Vec<ForeignObject>> {
        isp::deprovision_static_ip(&self.ops(router)?, address, list, owner).await
    }

    async fn check_static_ip_rule(&self, router: &Router, spec: &StaticIpRuleSpec) -> Result<RuleState> {
        isp::check_static_ip_rule(&self.ops(router)?, spec).await
    }

    async fn add_static_ip_rule(&self, router: &Router, spec: &StaticIpRuleSpec) -> Result<bool> {
        isp::add_static_ip_rule(&self.ops(router)?, spec).await
    }

    async fn set_rate_limit(&self, router: &Router, spec: &QueueSpec) -> Result<()> {
        isp::set_rate_limit(&self.ops(router)?, spec).await
    }

    async fn remove_rate_limit(&self, router: &Router, name: &RosName, owner: OwnerTag) -> Result<()> {
        isp::remove_rate_limit(&self.ops(router)?, name, owner).await
    }

    async fn health(&self, router: &Router) -> Result<RouterHealth> {
        health::health(&self.ops(router)?).await
    }

    async fn watch_hotspot_sessions(
        &self,
        router: &Router,
    ) -> Result<futures::stream::BoxStream<'static, Result<HotspotSession>>> {
        use futures::StreamExt as _;
        let service = service_name(router);
        let Pool::Api(client) = self.pool_for(router)? else {
            return Err(Error::Rejected {
                service,
                detail: "REST cannot stream hotspot sessions; they are polled".into(),
            });
        };
        let request = crate::proto::Request::new("/ip/hotspot/active/listen")
            .attr(".proplist", ".id,user,mac-address,address,uptime");
        let stream = client
            .listen(request)
            .await
            .map_err(|e| map_ros_error(&service, e))?;
        Ok(stream
            .filter_map(move |event| {
                let service = service.clone();
                async move {
                    match event {
                        Ok(crate::client::ListenEvent::Row(row)) => rows::listened_session(&row).map(Ok),
                        Ok(crate::client::ListenEvent::Dead(_)) => None,
                        Err(e) => Some(Err(map_ros_error(&service, e))),
                    }
                }
            })
            .boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isp_core::domain::{RouterCredentials, TenantId};

    fn router(transport: Transport, address: &str, fp: Option<&str>) -> Router {
        Router {
            id: RouterId(1),
            tenant_id: TenantId(1),
            name: "main".into(),
            address: address.into(),
            transport,
            credentials: RouterCredentials::new("api", "s3cret-pass"),
            tls_fingerprint: fp.map(str::to_owned),
            enabled: true,
        }
    }

    #[test]
    fn the_fallback_concurrency_defaults_to_the_engines_and_is_checked() {
        let driver = RouterOsDriver::new(DriverConfig::default()).unwrap();
        assert_eq!(driver.config().per_router_concurrency, 4);
        let e = RouterOsDriver::new(DriverConfig {
            per_router_concurrency: 0,
            ..DriverConfig::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("per_router_concurrency"), "{e}");
    }

    #[test]
    fn api_and_rest_endpoints_are_kept_apart() {
        let e = endpoint_for(&router(Transport::Rest, "10.0.0.1", None), &TlsOptions::default()).unwrap_err();
        assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
        assert!(e.to_string().contains("rest"), "{e}");
        let e =
            rest_endpoint_for(&router(Transport::Api, "10.0.0.1", None), &TlsOptions::default()).unwrap_err();
        assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
        assert!(e.to_string().contains("api"), "{e}");
        for e in [
            endpoint_for(
                &router(Transport::Radius, "10.0.0.1", None),
                &TlsOptions::default(),
            )
            .unwrap_err(),
            rest_endpoint_for(
                &router(Transport::Radius, "10.0.0.1", None),
                &TlsOptions::default(),
            )
            .unwrap_err(),
        ] {
            assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
            assert!(e.to_string().contains("RADIUS mode"), "{e}");
        }
    }

    #[test]
    fn rest_endpoints_from_routers() {
        let e =
            rest_endpoint_for(&router(Transport::Rest, "10.0.0.1", None), &TlsOptions::default()).unwrap();
        assert_eq!(e.base_url(), "https://10.0.0.1:443/rest");
        let fp = "cd".repeat(32);
        let e = rest_endpoint_for(
            &router(Transport::Rest, "https://10.0.0.1:8443", Some(&fp)),
            &TlsOptions::default(),
        )
        .unwrap();
        assert_eq!(e.tls.as_ref().and_then(|t| t.pinned_sha256), Some([0xCD; 32]));
        let e = rest_endpoint_for(
            &router(Transport::Rest, "http://10.0.0.1:8080", None),
            &TlsOptions::default(),
        )
        .unwrap();
        assert_eq!(e.base_url(), "http://10.0.0.1:8080/rest");
        assert!(!format!("{e:?}").contains("s3cret-pass"));
        let bad = rest_endpoint_for(
            &router(Transport::Rest, "10.0.0.1", Some("xyz")),
            &TlsOptions::default(),
        )
        .unwrap_err();
        assert!(bad.to_string().contains("tls_fingerprint"), "{bad}");
        let bad = rest_endpoint_for(
            &router(Transport::Rest, "ftp://10.0.0.1", None),
            &TlsOptions::default(),
        )
        .unwrap_err();
        assert!(bad.to_string().contains("address"), "{bad}");
    }

    #[test]
    fn endpoints_from_routers() {
        let e = endpoint_for(&router(Transport::Api, "10.0.0.1", None), &TlsOptions::default()).unwrap();
        assert_eq!(e.addr(), "10.0.0.1:8728");
        let fp = "ab".repeat(32);
        let e = endpoint_for(
            &router(Transport::ApiSsl, "10.0.0.1", Some(&fp)),
            &TlsOptions::default(),
        )
        .unwrap();
        assert_eq!(e.addr(), "10.0.0.1:8729");
        match &e.security {
            crate::client::Security::Tls(o) => assert_eq!(o.pinned_sha256, Some([0xAB; 32])),
            other => panic!("expected TLS, got {other:?}"),
        }
        assert!(!format!("{e:?}").contains("s3cret-pass"));
        let bad = endpoint_for(
            &router(Transport::ApiSsl, "10.0.0.1", Some("xyz")),
            &TlsOptions::default(),
        )
        .unwrap_err();
        assert!(bad.to_string().contains("tls_fingerprint"), "{bad}");
        let bad = endpoint_for(
            &router(Transport::Api, "10.0.0.1:0", None),
            &TlsOptions::default(),
        )
        .unwrap_err();
        assert!(bad.to_string().contains("address"), "{bad}");
    }

    #[test]
    fn pools_are_reused_until_settings_change() {
        let driver = RouterOsDriver::new(DriverConfig::default()).unwrap();
        let r = router(Transport::Api, "127.0.0.1:1", None);
        let a = driver.client_for(&r).unwrap();
        let b = driver.client_for(&r).unwrap();
        assert!(std::ptr::eq(a.endpoint(), b.endpoint()));
        let mut changed = r.clone();
        changed.credentials = RouterCredentials::new("api", "other");
        let c = driver.client_for(&changed).unwrap();
        assert!(!std::ptr::eq(a.endpoint(), c.endpoint()));
        assert!(!format!("{driver:?}").contains("s3cret-pass"));

        // Switching the router to REST replaces the pool with a REST client.
        let mut rest = changed.clone();
        rest.transport = Transport::Rest;
        rest.address = "http://127.0.0.1:1".into();
        assert!(driver.client_for(&rest).is_err());
        let r1 = driver.rest_client_for(&rest).unwrap();
        let r2 = driver.rest_client_for(&rest).unwrap();
        assert!(std::ptr::eq(r1.endpoint(), r2.endpoint()));
        assert!(driver.rest_client_for(&r).is_err());
        assert_eq!(driver.logins(r.id), 0);
    }
}
