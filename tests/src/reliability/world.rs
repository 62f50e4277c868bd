//! A world for engine-level scenarios: simulated routers (optionally behind
//! fault proxies), tenants, subscribers with devices logged in on the routers,
//! PPPoE and static-IP services, and checks of router state against the
//! database.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use isp_core::domain::{
    Connection, Currency, CustomerId, MacAddress, Money, NewCustomer, NewPlan, NewService, NewSubscriber,
    OwnerTag, PhoneNumber, PlanId, RateLimit, RosName, Router, RouterCredentials, RouterId, SecretPassword,
    Service, ServiceId, ServiceStatus, Subscriber, SubscriberId, Tenant, TenantId, Transport,
};
use isp_core::ports::Repositories;
use isp_routeros::client::ClientConfig;
use isp_routeros::driver::{DriverConfig, RouterOsDriver};
use isp_routeros::sim::{SimConfig, SimFleet, SimHandle};

use super::proxy::FaultProxy;

/// The API user of every simulated router.
pub const ROUTER_USER: &str = "isp";

/// Simulated routers, each optionally behind a [`FaultProxy`].
pub struct Fleet {
    /// The routers.
    pub sims: SimFleet,
    /// Their control handles, by index (router id = index + 1).
    pub handles: Vec<SimHandle>,
    /// One proxy per router (empty when started without proxies).
    pub proxies: Vec<FaultProxy>,
    password: String,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("routers", &self.handles.len())
            .field("proxies", &self.proxies.len())
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Starts `n` routers with `password`; with `proxies`, a fault proxy in front of each
    /// (seeded from `seed`).
    pub async fn start(n: usize, password: &str, proxies: bool, seed: u64) -> Fleet {
        let sims = SimFleet::start(
            n,
            SimConfig::new(ROUTER_USER, password),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await
        .expect("simulated routers start");
        let handles = sims.handles();
        let mut px = Vec::new();
        if proxies {
            for (i, r) in sims.routers().iter().enumerate() {
                px.push(
                    FaultProxy::start(r.addr(), seed.wrapping_mul(1_000_003).wrapping_add(i as u64))
                        .await
                        .expect("proxy starts"),
                );
            }
        }
        Fleet {
            sims,
            handles,
            proxies: px,
            password: password.to_owned(),
        }
    }

    /// Where the engine connects for router index `i` (its proxy when there is one).
    pub fn address(&self, i: usize) -> String {
        match self.proxies.get(i) {
            Some(p) => p.addr().to_string(),
            None => self.sims.routers()[i].addr().to_string(),
        }
    }

    /// The engine's view of router index `i` of `tenant`.
    pub fn router(&self, i: usize, tenant: TenantId) -> Router {
        Router {
            id: RouterId(i as i64 + 1),
            tenant_id: tenant,
            name: format!("R{}", i + 1),
            address: self.address(i),
            transport: Transport::Api,
            credentials: RouterCredentials::new(ROUTER_USER, self.password.clone()),
            tls_fingerprint: None,
            enabled: true,
        }
    }

    /// Sets trap and cut rates on every proxy.
    pub fn set_rates(&self, trap: f64, cut: f64) {
        for p in &self.proxies {
            p.set_trap_rate(trap);
            p.set_cut_rate(cut);
        }
    }

    /// Injected traps and cuts so far, and commands seen, summed over the proxies.
    pub fn proxy_totals(&self) -> (u64, u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.proxies.iter().fold((0, 0, 0), |(t, c, n), p| {
            let s = p.stats();
            (
                t + s.traps.load(Relaxed),
                c + s.cuts.load(Relaxed),
                n + s.commands.load(Relaxed),
            )
        })
    }
}

/// A driver with short timeouts and back-offs, so that faults cost little wall time.
pub fn fast_driver() -> Arc<RouterOsDriver> {
    let client = ClientConfig {
        connect_timeout: Duration::from_millis(500),
        login_timeout: Duration::from_millis(800),
        command_timeout: Duration::from_millis(800),
        keepalive: None,
        connect_attempts: 1,
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        cooldown_min: Duration::from_millis(10),
        cooldown_max: Duration::from_millis(100),
        ..ClientConfig::default()
    };
    Arc::new(
        RouterOsDriver::new(DriverConfig {
            client,
            ..DriverConfig::default()
        })
        .expect("driver config"),
    )
}

/// Which router indexes belong to which tenant.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `(tenant, zone, router indexes)`.
    pub tenants: Vec<(TenantId, Tz, Vec<usize>)>,
}

impl Layout {
    /// `tenants` tenants with `per` consecutive routers each, all in `tz`.
    pub fn even(tenants: usize, per: usize, tz: Tz) -> Layout {
        Layout {
            tenants: (0..tenants)
                .map(|t| (TenantId(t as i64 + 1), tz, (t * per..(t + 1) * per).collect()))
                .collect(),
        }
    }

    /// The tenant of router index `i`.
    pub fn tenant_of(&self, i: usize) -> TenantId {
        self.tenants
            .iter()
            .find(|(_, _, rs)| rs.contains(&i))
            .map(|(t, _, _)| *t)
            .expect("router in the layout")
    }

    /// Router indexes of `tenant`.
    pub fn routers_of(&self, tenant: TenantId) -> &[usize] {
        self.tenants
            .iter()
            .find(|(t, _, _)| *t == tenant)
            .map(|(_, _, rs)| rs.as_slice())
            .unwrap_or(&[])
    }

    /// Every router, as the engine sees them.
    pub fn routers(&self, fleet: &Fleet) -> Vec<Router> {
        self.tenants
            .iter()
            .flat_map(|(t, _, rs)| rs.iter().map(move |i| fleet.router(*i, *t)))
            .collect()
    }

    /// Writes the tenants, and one plan per tenant (`basic`, 1000 TZS, 5M/10M);
    /// returns the plan ids by tenant.
    pub async fn seed(&self, repos: &Repositories) -> BTreeMap<TenantId, PlanId> {
        let mut plans = BTreeMap::new();
        for (t, tz, _) in &self.tenants {
            repos
                .tenants
                .upsert(&Tenant {
                    id: *t,
                    slug: RosName::parse("slug", &format!("tenant-{}", t.0)).expect("slug"),
                    name: format!("Tenant {}", t.0),
                    time_zone: *tz,
                })
                .await
                .expect("tenant");
            let currency = Currency::parse("currency", "TZS").expect("currency");
            let plan = repos
                .plans
                .insert(&NewPlan {
                    tenant_id: *t,
                    name: RosName::parse("plan", "basic").expect("plan name"),
                    price: Money::parse("price", "1000", currency).expect("price"),
                    duration: None,
                    rate_limit: Some(RateLimit::parse("rate_limit", "5M/10M").expect("rate")),
                })
                .await
                .expect("plan");
            plans.insert(*t, plan.id);
        }
        plans
    }
}

/// A subscriber of the workload and where its devices are logged in.
#[derive(Debug, Clone)]
pub struct SubPlan {
    /// Id.
    pub id: SubscriberId,
    /// Tenant.
    pub tenant: TenantId,
    /// Phone.
    pub phone: PhoneNumber,
    /// Hotspot user name.
    pub username: String,
    /// Router indexes with a session.
    pub routers: Vec<usize>,
    /// Paid until (as last written).
    pub paid_until: DateTime<Utc>,
}

/// Adds subscriber number `n` of `tenant` (phone `+2557{tenant}{n:07}`), with a hotspot
/// user (our comment) on every router of the tenant and a device logged in on `on`.
#[allow(clippy::too_many_arguments)] // test fixture: one call per seeded subscriber
pub async fn add_subscriber(
    repos: &Repositories,
    fleet: &Fleet,
    layout: &Layout,
    tenant: TenantId,
    n: usize,
    paid_until: DateTime<Utc>,
    on: &[usize],
    seen_at: DateTime<Utc>,
) -> SubPlan {
    let phone = PhoneNumber::parse("phone", &format!("+2557{}{:07}", tenant.0, n)).expect("phone");
    let username = phone.digits().to_owned();
    let sub: Subscriber = repos
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: tenant,
            phone: phone.clone(),
            username: RosName::parse("username", &username).expect("username"),
            paid_until,
        })
        .await
        .expect("insert subscriber");
    let mac = MacAddress::from_octets([
        0x02,
        tenant.0 as u8,
        (n >> 16) as u8,
        (n >> 8) as u8,
        n as u8,
        0x01,
    ]);
    for &r in layout.routers_of(tenant) {
        fleet.handles[r]
            .add_row(
                "/ip/hotspot/user",
                &[
                    ("name", username.as_str()),
                    ("password", "x"),
                    ("comment", &OwnerTag::Subscriber(sub.id).comment()),
                ],
            )
            .expect("hotspot user");
    }
    for &r in on {
        let ip = Ipv4Addr::new(10, (r % 250) as u8 + 1, (n >> 8) as u8, (n % 250) as u8 + 2);
        fleet.handles[r]
            .hotspot_login(&username, &mac.to_string(), &ip.to_string())
            .expect("hotspot login");
        repos
            .devices
            .record_seen(sub.id, mac, Some(RouterId(r as i64 + 1)), seen_at)
            .await
            .expect("device");
    }
    SubPlan {
        id: sub.id,
        tenant,
        phone,
        username,
        routers: on.to_vec(),
        paid_until,
    }
}

/// A service of the workload.
#[derive(Debug, Clone)]
pub struct SvcPlan {
    /// Id.
    pub id: ServiceId,
    /// Tenant.
    pub tenant: TenantId,
    /// Router index.
    pub router: usize,
    /// PPPoE user name, or the static address.
    pub key: String,
    /// Static IP (else PPPoE).
    pub static_ip: bool,
}

/// Adds service number `n` on router index `router`: PPPoE `pppoe-{n}` when `n` is
/// even, static IP `172.16.x.y` when odd. Its billing day is the day of `next_charge_on`.
#[allow(clippy::too_many_arguments)]
pub async fn add_service(
    repos: &Repositories,
    tenant: TenantId,
    plan: PlanId,
    router: usize,
    n: usize,
    status: ServiceStatus,
    next_billing_date: NaiveDate,
    next_charge_on: NaiveDate,
) -> SvcPlan {
    let customer: CustomerId = repos
        .customers
        .insert(&NewCustomer {
            tenant_id: tenant,
            name: format!("Customer {n}"),
            phone: Some(PhoneNumber::parse("phone", &format!("+2556{}{:07}", tenant.0, n)).expect("phone")),
        })
        .await
        .expect("customer")
        .id;
    let static_ip = n % 2 == 1;
    let (connection, key) = if static_ip {
        let a = Ipv4Addr::new(172, 16, (n >> 8) as u8, (n % 250) as u8 + 2);
        (Connection::StaticIp { address: a }, a.to_string())
    } else {
        let name = format!("pppoe-{n}");
        (
            Connection::Pppoe {
                username: RosName::parse("username", &name).expect("name"),
                password: SecretPassword::parse("password", &format!("ppp-pw-{n}")).expect("pw"),
                profile: RosName::parse("profile", "default").expect("profile"),
            },
            name,
        )
    };
    let svc: Service = repos
        .services
        .insert(&NewService {
            tenant_id: tenant,
            customer_id: customer,
            router_id: RouterId(router as i64 + 1),
            plan_id: plan,
            status,
            connection,
            next_billing_date,
            billing_day: next_charge_on.day(),
            next_charge_on,
        })
        .await
        .expect("insert service");
    SvcPlan {
        id: svc.id,
        tenant,
        router,
        key,
        static_ip,
    }
}

/// Live hotspot sessions of `user` on a router.
pub fn sessions_of(h: &SimHandle, user: &str) -> usize {
    h.rows("/ip/hotspot/active")
        .iter()
        .filter(|r| r.get("user").map(String::as_str) == Some(user))
        .count()
}

/// Whether hotspot user `user` is disabled on a router (`None`: no such user).
pub fn user_disabled(h: &SimHandle, user: &str) -> Option<bool> {
    h.rows("/ip/hotspot/user")
        .iter()
        .find(|r| r.get("name").map(String::as_str) == Some(user))
        .map(|r| r.get("disabled").map(String::as_str) == Some("true"))
}

/// Whether the router holds the service's PPPoE secret (enabled) or address-list entry,
/// and (static IP) its queue.
pub fn service_present(h: &SimHandle, svc: &SvcPlan) -> bool {
    if svc.static_ip {
        let entry = h
            .rows("/ip/firewall/address-list")
            .iter()
            .any(|r| r.get("address").map(|a| a.trim_end_matches("/32")) == Some(svc.key.as_str()));
        let queue = h
            .rows("/queue/simple")
            .iter()
            .any(|r| r.get("name").map(String::as_str) == Some(&format!("isp-svc-{}", svc.id)));
        entry && queue
    } else {
        h.rows("/ppp/secret").iter().any(|r| {
            r.get("name").map(String::as_str) == Some(svc.key.as_str())
                && r.get("disabled").map(String::as_str) != Some("true")
        })
    }
}

/// Whether the router holds nothing of the service (no secret, entry or queue).
pub fn service_absent(h: &SimHandle, svc: &SvcPlan) -> bool {
    if svc.static_ip {
        !h.rows("/ip/firewall/address-list")
            .iter()
            .any(|r| r.get("address").map(|a| a.trim_end_matches("/32")) == Some(svc.key.as_str()))
            && !h
                .rows("/queue/simple")
                .iter()
                .any(|r| r.get("name").map(String::as_str) == Some(&format!("isp-svc-{}", svc.id)))
    } else {
        !h.rows("/ppp/secret")
            .iter()
            .any(|r| r.get("name").map(String::as_str) == Some(svc.key.as_str()))
    }
}

/// Period starts of a monthly billing day from `from` (inclusive) up to `until`
/// (inclusive): day `billing_day` of each month, clamped to the month's end.
/// Written independently of `isp_core::policy::billing`, as the test's oracle.
pub fn period_starts(billing_day: u32, from: NaiveDate, until: NaiveDate) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let (mut y, mut m) = (from.year(), from.month());
    loop {
        let last = (28..=31)
            .rev()
            .find(|d| NaiveDate::from_ymd_opt(y, m, *d).is_some())
            .unwrap_or(28);
        let Some(d) = NaiveDate::from_ymd_opt(y, m, billing_day.min(last)) else {
            return out;
        };
        if d > until {
            return out;
        }
        if d >= from {
            out.push(d);
        }
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
}
