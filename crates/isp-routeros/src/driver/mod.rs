//! [`RouterOsDriver`]: the engine's [`RouterDriver`] over the RouterOS API.
//!
//! One driver serves every router. It keeps one [`Client`] (a small
//! connection pool) per [`RouterId`], built lazily from the [`Router`]'s
//! address, transport, credentials and TLS fingerprint, and rebuilt when any
//! of those change. So the engine logs in once per router, not once per user.
//!
//! What it does on the router:
//!
//! | call | commands |
//! |---|---|
//! | `snapshot` | one `print` with `.proplist` per requested menu, concurrently |
//! | `disconnect_hotspot` | one `print` each of `/ip/hotspot/active`, `host`, `cookie`, `ip-binding`, `user` for all targets; then, back to back, `remove` of sessions, of cookies and of our non-blocking ip-bindings, `disable` of the users and `remove` of hosts, each one command with the ids comma-separated (one command per id only when the router refuses the batch because an item vanished) |
//! | `block_device` / `unblock_device` | print ip-bindings; add (or turn ours into) a `blocked` binding; remove our blocked ones |
//! | hotspot users | print by `?name=`; `add` with our comment, `disable`/`enable`, `remove` (and its sessions) |
//! | PPPoE | print `/ppp/secret` by name; `add`, or `set` ours; `remove` ours and its `/ppp/active` sessions |
//! | static IP | print `/ip/firewall/address-list` by list and address; `add` with our comment; `remove` ours |
//! | rate limits | print `/queue/simple` by name; `add`, or `set` ours; `remove` ours |
//! | `health` | print `/system/identity`, `/system/resource`, `/system/clock` |
//!
//! Objects it creates carry [`OwnerTag::comment`]; it only changes or
//! removes objects whose comment marks them as ours (a hotspot user named by
//! the caller is the exception the port allows). A `no such item` while
//! removing counts as already gone. [`Transport::Rest`] is refused with
//! [`Error::InvalidInput`]: REST is not this driver's protocol.

mod health;
mod hotspot;
mod isp;
mod ops;
mod rows;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use async_trait::async_trait;
use isp_core::domain::{MacAddress, OwnerTag, RosName, Router, RouterId, Transport};
use isp_core::ports::{
    DisconnectReport, HotspotTarget, HotspotUserSpec, Menu, PppoeSpec, QueueSpec, RouterDriver, RouterHealth,
    RouterSnapshot, StaticIpSpec,
};
use isp_core::{Error, Result};

use crate::client::{map_ros_error, Client, ClientConfig, Credentials, Endpoint, TlsOptions};
use ops::Ops;
use rows::{menu_spec, Reader};

/// Settings of a [`RouterOsDriver`].
#[derive(Debug, Clone, Default)]
pub struct DriverConfig {
    /// Timeouts, keepalive, reconnect back-off and pool limits for every router.
    pub client: ClientConfig,
    /// How api-ssl routers' certificates are verified. A router's own
    /// `tls_fingerprint` pins its certificate instead.
    pub tls: TlsOptions,
}

/// The [`RouterDriver`] for RouterOS routers over the API (`api`, `api-ssl`).
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
    clients: Mutex<HashMap<RouterId, Client>>,
}

impl std::fmt::Debug for RouterOsDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routers = self.clients.lock().map(|c| c.len()).unwrap_or_default();
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

/// The client endpoint for a router: its address, transport and credentials;
/// for api-ssl, `tls` with the router's fingerprint pinned when it has one.
pub fn endpoint_for(router: &Router, tls: &TlsOptions) -> Result<Endpoint> {
    let service = service_name(router);
    let credentials = Credentials::from_router(&router.credentials);
    let endpoint = match router.transport {
        Transport::Api => Endpoint::plain(service.clone(), &router.address, credentials),
        Transport::ApiSsl => {
            let options = match &router.tls_fingerprint {
                Some(fp) => tls.clone().with_pin(fp),
                None => Ok(tls.clone()),
            };
            options.and_then(|o| Endpoint::tls(service.clone(), &router.address, credentials, o))
        }
        Transport::Rest => {
            return Err(Error::invalid(
                "transport",
                "rest",
                format!(
                    "router {} uses REST, which the RouterOS API driver does not speak; use api or api-ssl",
                    router.name
                ),
            ))
        }
    };
    endpoint.map_err(|e| map_ros_error(&service, e))
}

impl RouterOsDriver {
    /// A driver with these settings (checked here). No router is contacted
    /// until it is used.
    pub fn new(config: DriverConfig) -> Result<Self> {
        config
            .client
            .validate()
            .map_err(|e| map_ros_error("routeros driver", e))?;
        Ok(RouterOsDriver {
            config,
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// The settings.
    pub fn config(&self) -> &DriverConfig {
        &self.config
    }

    fn lock_clients(&self) -> std::sync::MutexGuard<'_, HashMap<RouterId, Client>> {
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The client (connection pool) of a router: the existing one, or a new
    /// one when the router is new or its address, transport, credentials or
    /// fingerprint changed.
    pub fn client_for(&self, router: &Router) -> Result<Client> {
        let endpoint = endpoint_for(router, &self.config.tls)?;
        let mut clients = self.lock_clients();
        if let Some(c) = clients.get(&router.id) {
            if c.endpoint().same_as(&endpoint) {
                return Ok(c.clone());
            }
            tracing::info!(router = %router.name, "router settings changed; new connection pool");
        }
        let client = Client::new(endpoint, self.config.client.clone())
            .map_err(|e| map_ros_error(&service_name(router), e))?;
        clients.insert(router.id, client.clone());
        Ok(client)
    }

    /// Successful logins to a router through this driver's current pool
    /// (0 for a router not used yet).
    pub fn logins(&self, router: RouterId) -> u64 {
        self.lock_clients().get(&router).map_or(0, Client::logins)
    }

    /// Drops a router's pool (its connections close once idle).
    pub fn forget(&self, router: RouterId) {
        self.lock_clients().remove(&router);
    }

    fn ops(&self, router: &Router) -> Result<Ops> {
        Ok(Ops {
            client: self.client_for(router)?,
            service: service_name(router),
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

    async fn set_hotspot_user_disabled(&self, router: &Router, name: &RosName, disabled: bool) -> Result<()> {
        hotspot::set_user_disabled(&self.ops(router)?, name, disabled).await
    }

    async fn add_hotspot_user(&self, router: &Router, spec: &HotspotUserSpec) -> Result<String> {
        hotspot::add_user(&self.ops(router)?, spec).await
    }

    async fn remove_hotspot_user(&self, router: &Router, name: &RosName) -> Result<bool> {
        hotspot::remove_user(&self.ops(router)?, name).await
    }

    async fn provision_pppoe(&self, router: &Router, spec: &PppoeSpec) -> Result<()> {
        isp::provision_pppoe(&self.ops(router)?, spec).await
    }

    async fn deprovision_pppoe(&self, router: &Router, username: &RosName) -> Result<()> {
        isp::deprovision_pppoe(&self.ops(router)?, username).await
    }

    async fn provision_static_ip(&self, router: &Router, spec: &StaticIpSpec) -> Result<()> {
        isp::provision_static_ip(&self.ops(router)?, spec).await
    }

    async fn deprovision_static_ip(&self, router: &Router, address: Ipv4Addr, list: &RosName) -> Result<()> {
        isp::deprovision_static_ip(&self.ops(router)?, address, list).await
    }

    async fn set_rate_limit(&self, router: &Router, spec: &QueueSpec) -> Result<()> {
        isp::set_rate_limit(&self.ops(router)?, spec).await
    }

    async fn remove_rate_limit(&self, router: &Router, name: &RosName) -> Result<()> {
        isp::remove_rate_limit(&self.ops(router)?, name).await
    }

    async fn health(&self, router: &Router) -> Result<RouterHealth> {
        health::health(&self.ops(router)?).await
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
    fn rest_is_refused_clearly() {
        let e = endpoint_for(&router(Transport::Rest, "10.0.0.1", None), &TlsOptions::default()).unwrap_err();
        assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
        assert!(e.to_string().contains("rest"), "{e}");
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
    }
}
