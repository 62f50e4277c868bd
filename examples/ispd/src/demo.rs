//! `ispd demo`: the whole daemon with no configuration.
//!
//! It starts simulated RouterOS routers in-process (real TCP, the real API
//! protocol), writes a configuration file for them into a temporary
//! directory (router password and admin token in files beside it), loads it
//! with the normal loader, opens an SQLite database there, seeds tenants,
//! plans, subscribers with devices logged in on the routers, vouchers and
//! services, and runs the daemon. New purchases arrive every few seconds and
//! expire a few seconds later; each removal on a simulated router is printed
//! as it happens, with how long after `paid_until` it came.
//!
//! A further simulated router, `HotelRadius1`, runs in RADIUS mode: the
//! written configuration has a `[radius]` section and the router a
//! `transport = "radius"` with a `secret_file`. Each purchase of the hotel
//! also logs in there over RADIUS; that router ends the session itself at the
//! `Session-Timeout` our server answered.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use isp_core::domain::{
    Connection, MacAddress, NewCustomer, NewService, NewVoucher, OwnerTag, PhoneNumber, RosDuration, RosName,
    SecretPassword, ServiceStatus, Subscriber, TenantId,
};
use isp_core::ports::Repositories;
use isp_routeros::sim::radius::RadiusClient;
use isp_routeros::sim::{SimConfig, SimFleet, SimHandle, SimRouter};

use crate::config::{self, AdminToken, ProcessEnv};
use crate::daemon::{self, Daemon};

/// Options of `ispd demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration_secs: Option<u64>,
    /// Simulated routers (2 to 8): the first tenant gets all but one.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=8))]
    pub routers: u8,
    /// Admin API address (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Keep the database and configuration in this directory (default: a temporary
    /// directory, deleted on exit).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seconds between two new purchases.
    #[arg(long, default_value_t = 4)]
    pub purchase_every_secs: u64,
}

struct TenantPlan {
    id: i64,
    slug: &'static str,
    name: &'static str,
    zone: &'static str,
    routers: Vec<usize>,
}

fn write_secret(path: &Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{value}\n"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

fn router_name(i: usize, tenants: &[TenantPlan]) -> String {
    let t = tenants
        .iter()
        .find(|t| t.routers.contains(&i))
        .map_or("x", |t| t.slug);
    let n = tenants
        .iter()
        .find(|t| t.routers.contains(&i))
        .and_then(|t| t.routers.iter().position(|r| *r == i))
        .unwrap_or(0);
    if t == "hotel-abc" {
        format!("HotelRouter{}", n + 1)
    } else {
        format!("CafeRouter{}", n + 1)
    }
}

/// The configuration the demo writes (and then loads like any other).
fn config_text(
    dir: &Path,
    addrs: &[SocketAddr],
    tenants: &[TenantPlan],
    listen: SocketAddr,
    radius_incoming: SocketAddr,
) -> String {
    let mut s = format!(
        r#"# Written by `ispd demo`. Try: ispd status --config {cfg}
[storage]
url = "sqlite://{db}"

[admin]
listen = "{listen}"
token_file = "admin.token"

[engine]
retry_base = "2s"
retry_max = "20s"

[scheduler]
watcher_max_sleep = "1s"
shutdown_grace = "10s"

# The demo runs its sweeps often so there is something to see.
[schedules]
disconnect-expired = "*/10 * * * * *"
warn-before-expiry = "*/15 * * * * *"
expire-vouchers = "*/10 * * * * *"
sync-routers = "*/30 * * * * *"
provision-services = "*/10 * * * * *"
router-health = "*/10 * * * * *"
monthly-billing = "0 * * * * *"
payment-reminders = "0 * * * * *"

[sms]
kind = "log"

# RADIUS mode: routers with transport = "radius" ask this server at every
# login (port 0: any free ports; the standard ones are 1812 and 1813).
[radius]
listen = "127.0.0.1:0"
interim_interval = "1m"
disconnect_timeout = "500ms"
"#,
        cfg = dir.join("ispd.toml").display(),
        db = dir.join("ispd.db").display(),
    );
    for t in tenants {
        s.push_str(&format!(
            r#"
[[tenants]]
id = {id}
slug = "{slug}"
name = "{name}"
time_zone = "{zone}"

[[tenants.plans]]
name = "1-hour"
price = "500"
currency = "TZS"
duration = "1h"
rate_limit = "2M/4M"

[[tenants.plans]]
name = "home-10M"
price = "45000"
currency = "TZS"
rate_limit = "5M/10M"
"#,
            id = t.id,
            slug = t.slug,
            name = t.name,
            zone = t.zone
        ));
        for &i in &t.routers {
            s.push_str(&format!(
                r#"
[[tenants.routers]]
id = {id}
name = "{name}"
address = "{addr}"
transport = "api"
username = "isp"
password_file = "router.password"
"#,
                id = i + 1,
                name = router_name(i, tenants),
                addr = addrs[i],
            ));
        }
        if t.id == 1 {
            s.push_str(&format!(
                r#"
[[tenants.routers]]
id = {id}
name = "{RADIUS_ROUTER}"
address = "{radius_incoming}"
transport = "radius"
secret_file = "radius.secret"
"#,
                id = addrs.len() + 1,
            ));
        }
    }
    s
}

/// The demo's router in RADIUS mode.
const RADIUS_ROUTER: &str = "HotelRadius1";

/// A demo purchase: who, until when, on which routers their device logged in.
#[derive(Debug, Clone)]
struct Purchase {
    phone: String,
    tenant: i64,
    paid_until: DateTime<Utc>,
}

/// The demo's client of the admin API (HTTP/1.1 over loopback).
struct ApiClient {
    addr: SocketAddr,
    token: String,
}

impl ApiClient {
    /// POSTs JSON; the answer's JSON, or the API's error as `Unavailable`.
    async fn post(&self, path: &str, body: serde_json::Value) -> isp_core::Result<serde_json::Value> {
        use http_body_util::BodyExt as _;
        let fail = |e: String| isp_core::Error::unavailable("demo admin API", e);
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(conn);
        let req = hyper::Request::post(path)
            .header("host", self.addr.to_string())
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(axum::body::Bytes::from(
                body.to_string(),
            )))
            .map_err(|e| fail(e.to_string()))?;
        let resp = send.send_request(req).await.map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_bytes();
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| fail(format!("{path}: {e}")))?;
        if !status.is_success() {
            return Err(fail(format!("{path}: {status} {json}")));
        }
        Ok(json)
    }
}

struct World {
    engine: isp_core::jobs::Engine,
    api: Option<ApiClient>,
    repos: Repositories,
    handles: Vec<SimHandle>,
    names: Vec<String>,
    tenants: Vec<TenantPlan>,
    purchases: HashMap<String, Purchase>,
    next: u32,
    seen_removals: Vec<usize>,
    lags: Vec<f64>,
    /// The RADIUS router's index in `handles` and how it reaches our server.
    radius: Option<(usize, RadiusClient)>,
}

impl World {
    /// A subscriber buys `secs` seconds through the admin API when it is up
    /// (`POST /api/subscribers`, then `POST /api/subscribers/{id}/grant` with a
    /// payment), else through the same engine use cases directly; the grant
    /// creates and enables the hotspot user on every router of the tenant.
    /// Their device then logs in on one router of the tenant (and on a second
    /// one every third purchase: roaming devices).
    async fn purchase(&mut self, now: DateTime<Utc>, secs: i64) -> isp_core::Result<Subscriber> {
        self.next += 1;
        let n = self.next;
        let t = &self.tenants[(n as usize) % self.tenants.len()];
        let phone = PhoneNumber::parse("phone", &format!("+2557120{n:05}"))?;
        let username = RosName::parse("username", phone.digits())?;
        let reference = format!("DEMO-{n}");
        let sub = match &self.api {
            Some(api) => {
                let created = api
                    .post(
                        "/api/subscribers",
                        serde_json::json!({ "tenant": t.slug, "phone": phone.as_str() }),
                    )
                    .await?;
                let id = created["subscriber"]["id"].as_i64().ok_or_else(|| {
                    isp_core::Error::Internal(format!("demo: no subscriber id in {created}"))
                })?;
                api.post(
                    &format!("/api/subscribers/{id}/grant"),
                    serde_json::json!({
                        "seconds": secs,
                        "payment": { "reference": reference, "amount": "500", "currency": "TZS" },
                    }),
                )
                .await?;
                self.repos
                    .subscribers
                    .get(isp_core::domain::SubscriberId(id))
                    .await?
            }
            None => {
                let sub = self
                    .engine
                    .create_subscriber(TenantId(t.id), phone.clone(), Some(username.clone()))
                    .await?;
                let currency = isp_core::domain::Currency::parse("currency", "TZS")?;
                let payment = isp_core::domain::NewPayment {
                    reference: isp_core::domain::PaymentReference::parse("reference", &reference)?,
                    amount: isp_core::domain::Money::parse("amount", "500", currency)?,
                };
                let secs = u64::try_from(secs).unwrap_or(1);
                self.engine
                    .grant(sub.id, isp_core::domain::Extension::Seconds(secs), Some(payment))
                    .await?
                    .subscriber
            }
        };
        let paid_until = sub.paid_until;
        let mac = MacAddress::from_octets([0x02, 0, 0, t.id as u8, (n >> 8) as u8, n as u8]);
        let ip = format!("10.{}.{}.{}", t.id, (n >> 8) & 0xff, n & 0xff);
        let first = t.routers[(n as usize) % t.routers.len()];
        let mut on = vec![first];
        if n % 3 == 0 && t.routers.len() > 1 {
            on.push(t.routers[(n as usize + 1) % t.routers.len()]);
        }
        for &r in &on {
            let h = &self.handles[r];
            if let Err(e) = h.hotspot_login(username.as_str(), &mac.to_string(), &ip) {
                tracing::warn!(error = %e, "demo: hotspot login refused");
            }
            self.repos
                .devices
                .record_seen(sub.id, mac, Some(isp_core::domain::RouterId(r as i64 + 1)), now)
                .await?;
        }
        if let (1, Some((r, client))) = (t.id, &self.radius) {
            let mac = MacAddress::from_octets([0x02, 0, 1, t.id as u8, (n >> 8) as u8, n as u8]);
            let ip = format!("10.99.{}.{}", (n >> 8) & 0xff, n & 0xff);
            // Code-only login: the password is the user name.
            if let Err(e) = self.handles[*r]
                .hotspot_login_radius(
                    client,
                    username.as_str(),
                    username.as_str(),
                    &mac.to_string(),
                    &ip,
                )
                .await
            {
                tracing::warn!(error = %e, "demo: RADIUS login refused");
            }
        }
        self.purchases.insert(
            username.to_string(),
            Purchase {
                phone: phone.to_string(),
                tenant: t.id,
                paid_until,
            },
        );
        Ok(sub)
    }

    /// New removals of hotspot sessions on the simulated routers, as lines.
    fn new_removals(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        for (i, h) in self.handles.iter().enumerate() {
            let removals = h.removals();
            let seen = self.seen_removals[i];
            for r in removals.iter().skip(seen) {
                if r.menu != "/ip/hotspot/active" {
                    continue;
                }
                let user = r.row.get("user").cloned().unwrap_or_default();
                let mac = r.row.get("mac-address").cloned().unwrap_or_default();
                let at: DateTime<Utc> = DateTime::<Utc>::from(r.at);
                let (who, lag) = match self.purchases.get(&user) {
                    Some(p) => {
                        let lag = (at - p.paid_until).num_milliseconds() as f64 / 1000.0;
                        (p.phone.clone(), Some(lag))
                    }
                    None => (user.clone(), None),
                };
                if let Some(l) = lag {
                    self.lags.push(l);
                }
                lines.push(format!(
                    "  [{}] {:<13} session of {who} ({mac}) removed by {}{}",
                    at.format("%H:%M:%S%.3f"),
                    self.names[i],
                    r.reason,
                    lag.map(|l| format!(", {l:+.2} s after paid_until"))
                        .unwrap_or_default()
                ));
            }
            self.seen_removals[i] = removals.len();
        }
        lines
    }
}

async fn seed_isp(
    repos: &Repositories,
    now: DateTime<Utc>,
    tenant: i64,
    router: i64,
) -> isp_core::Result<()> {
    let plan = daemon::plan_id(repos, TenantId(tenant), "home-10M").await?;
    let today = now.date_naive();
    for (i, (name, paid)) in [("Amina Juma", true), ("Baraka Ltd", false)]
        .into_iter()
        .enumerate()
    {
        let c = repos
            .customers
            .insert(&NewCustomer {
                tenant_id: TenantId(tenant),
                name: name.into(),
                phone: Some(PhoneNumber::parse("phone", &format!("+25578800{tenant}{i:03}"))?),
            })
            .await?;
        let connection = if i == 0 {
            Connection::Pppoe {
                username: RosName::parse("username", &format!("amina-{tenant}"))?,
                password: SecretPassword::parse("password", "demo-ppp-secret")?,
                profile: RosName::parse("profile", "default")?,
            }
        } else {
            Connection::StaticIp {
                address: std::net::Ipv4Addr::new(192, 168, 88, 10 + tenant as u8),
            }
        };
        let due = if paid {
            today + chrono::Days::new(30)
        } else {
            today - chrono::Days::new(1)
        };
        repos
            .services
            .insert(&NewService {
                tenant_id: TenantId(tenant),
                customer_id: c.id,
                router_id: isp_core::domain::RouterId(router),
                plan_id: plan,
                status: ServiceStatus::Active,
                connection,
                next_billing_date: due,
                billing_day: 1,
                next_charge_on: due,
            })
            .await?;
    }
    Ok(())
}

async fn seed_vouchers(
    repos: &Repositories,
    handles: &[SimHandle],
    now: DateTime<Utc>,
    tenant: i64,
    router: usize,
) -> isp_core::Result<()> {
    let plan = daemon::plan_id(repos, TenantId(tenant), "1-hour").await?;
    for i in 0..2 {
        let code = RosName::parse("code", &format!("V{tenant}{i:04}"))?;
        let v = repos
            .vouchers
            .insert(&NewVoucher {
                tenant_id: TenantId(tenant),
                router_id: isp_core::domain::RouterId(router as i64 + 1),
                code: code.clone(),
                plan_id: plan,
                activation_deadline: Some(now + chrono::Duration::seconds(20 + 10 * i)),
                purchase_deadline: None,
                duration: RosDuration::parse("duration", "1h")?,
            })
            .await?;
        let comment = OwnerTag::Voucher(v.id).comment();
        let _ = handles[router].add_row(
            "/ip/hotspot/user",
            &[
                ("name", code.as_str()),
                ("comment", &comment),
                ("limit-uptime", "1h"),
            ],
        );
    }
    Ok(())
}

/// Runs the demo; prints to `out`. Returns the exit code.
pub async fn run(args: DemoArgs, out: &mut dyn Write) -> u8 {
    match run_inner(args, out).await {
        Ok(()) => crate::cli::EXIT_OK,
        Err(e) => {
            let _ = out.flush();
            eprintln!("ispd demo: {e}");
            e.exit_code()
        }
    }
}

async fn run_inner(args: DemoArgs, out: &mut dyn Write) -> Result<(), daemon::DaemonError> {
    use daemon::DaemonError as E;
    let io = |what: &str| {
        let what = what.to_owned();
        move |e: std::io::Error| E::Runtime(format!("{what}: {e}"))
    };
    let (temp, dir) = match &args.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(io("creating the data directory"))?;
            let d = std::fs::canonicalize(d).map_err(io("data directory"))?;
            (None, d)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("ispd-demo-")
                .tempdir()
                .map_err(io("creating a temporary directory"))?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let n = usize::from(args.routers);
    let tenants = vec![
        TenantPlan {
            id: 1,
            slug: "hotel-abc",
            name: "Hotel ABC",
            zone: "Africa/Dar_es_Salaam",
            routers: (0..n - 1).collect(),
        },
        TenantPlan {
            id: 2,
            slug: "cafe-xyz",
            name: "Cafe XYZ",
            zone: "Africa/Nairobi",
            routers: vec![n - 1],
        },
    ];

    // Simulated routers.
    let router_password = AdminToken::random().expose()[..24].to_owned();
    let mut sim = SimConfig::new("isp", router_password.clone());
    sim.identity = "MikroTik".into();
    let fleet = SimFleet::start(n, sim, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(io("starting the simulated routers"))?;
    let addrs: Vec<SocketAddr> = fleet.routers().iter().map(|r| r.addr()).collect();
    let mut handles = fleet.handles();
    let mut names: Vec<String> = (0..n).map(|i| router_name(i, &tenants)).collect();
    // The router in RADIUS mode: no API login, only /radius incoming.
    let radius_secret = AdminToken::random().expose()[..24].to_owned();
    let mut radius_sim = SimConfig::new("nobody", AdminToken::random().expose());
    radius_sim.identity = RADIUS_ROUTER.into();
    let mut radius_router = SimRouter::start(radius_sim, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(io("starting the simulated RADIUS router"))?;
    let radius_incoming = radius_router
        .serve_radius_incoming(SocketAddr::from(([127, 0, 0, 1], 0)), &radius_secret)
        .await
        .map_err(io("starting /radius incoming"))?;
    handles.push(radius_router.handle());
    names.push(RADIUS_ROUTER.to_owned());

    // Configuration, written and loaded like any other.
    let token = AdminToken::random();
    write_secret(&dir.join("router.password"), &router_password).map_err(io("writing router.password"))?;
    write_secret(&dir.join("admin.token"), token.expose()).map_err(io("writing admin.token"))?;
    write_secret(&dir.join("radius.secret"), &radius_secret).map_err(io("writing radius.secret"))?;
    let config_path = dir.join("ispd.toml");
    std::fs::write(
        &config_path,
        config_text(&dir, &addrs, &tenants, args.listen, radius_incoming),
    )
    .map_err(io("writing ispd.toml"))?;
    let mut config = config::load_file(&config_path, &ProcessEnv).map_err(|e| E::Config(e.to_string()))?;
    config.source = Some(config_path.clone());

    let (wiring, storage) = daemon::wire(&config, true).await?;
    daemon::apply_config(&config, &wiring.repos).await?;
    let clock = wiring.clock.clone();
    let now = clock.now();

    let mut world = World {
        engine: daemon::build_engine(&config, &wiring),
        api: None,
        repos: wiring.repos.clone(),
        handles: handles.clone(),
        names: names.clone(),
        tenants,
        purchases: HashMap::new(),
        next: 0,
        seen_removals: vec![0; n + 1],
        lags: Vec::new(),
        radius: None,
    };
    let seed = async {
        // The first purchases: expiring 6, 9, 12, ... seconds from now.
        for i in 0..6 {
            world.purchase(now, 6 + 3 * i).await?;
        }
        seed_isp(&world.repos, now, 1, 1).await?;
        seed_vouchers(&world.repos, &handles, now, 2, n - 1).await?;
        Ok::<_, isp_core::Error>(())
    };
    seed.await.map_err(E::Storage)?;

    let daemon = Daemon::start(&config, wiring).await?;
    world.api = daemon.api_addr().map(|addr| ApiClient {
        addr,
        token: token.expose().to_owned(),
    });
    let radius_line = match daemon.radius_addrs() {
        Some((auth, acct)) => {
            world.radius = Some((n, RadiusClient::new(auth, Some(acct), radius_secret.clone())));
            format!("auth {auth}, accounting {acct}; {RADIUS_ROUTER} asks it at every login")
        }
        None => "(not configured)".to_owned(),
    };
    let api = daemon
        .api_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|| "(disabled)".into());
    let exe = std::env::args().next().unwrap_or_else(|| "ispd".into());
    let _ = writeln!(
        out,
        r#"
ispd console    http://{api}/   (open it in a browser; log in with the admin token below)

ispd demo: the daemon on SQLite and {n} simulated RouterOS routers
  database        {db}
  configuration   {cfg}
  routers         {routers}
  RADIUS          {radius_line}
  admin API       http://{api}   token: {tok}
                  (printed once; also in {tokfile})

Try, while it runs:
  curl -s -H "Authorization: Bearer {tok}" http://{api}/api/health
  curl -s -H "Authorization: Bearer {tok}" -X POST http://{api}/api/jobs/sync-routers
  curl -s -H "Authorization: Bearer {tok}" -H "Content-Type: application/json" \\
       -d '{{"seconds":3600}}' http://{api}/api/subscribers/1/grant
  curl -s -H "Authorization: Bearer {tok}" http://{api}/metrics | grep ispd_
  {exe} status --config {cfg}
  {exe} once disconnect-expired --config {cfg}

A subscriber buys a few seconds of access every {every} s through the admin API
(POST /api/subscribers, then POST /api/subscribers/{{id}}/grant): the grant enables
their hotspot user on every router of the tenant at once; each expiry is enforced
the moment it passes, on every router of the tenant. Removals on the routers:
"#,
        db = dir.join("ispd.db").display(),
        cfg = config_path.display(),
        routers = names
            .iter()
            .zip(&addrs)
            .map(|(n, a)| format!("{n}@{a}"))
            .chain(std::iter::once(format!(
                "{RADIUS_ROUTER}@{radius_incoming} (RADIUS)"
            )))
            .collect::<Vec<_>>()
            .join(", "),
        tok = token.expose(),
        tokfile = dir.join("admin.token").display(),
        every = args.purchase_every_secs,
    );
    let _ = out.flush();

    let deadline = args
        .duration_secs
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut next_purchase =
        tokio::time::Instant::now() + Duration::from_secs(args.purchase_every_secs.max(1));
    let ctrl_c = daemon::wait_for_signal();
    tokio::pin!(ctrl_c);
    let mut purchases_made = 0u32;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut ctrl_c => break,
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break;
        }
        for line in world.new_removals() {
            let _ = writeln!(out, "{line}");
        }
        if tokio::time::Instant::now() >= next_purchase {
            next_purchase += Duration::from_secs(args.purchase_every_secs.max(1));
            let secs = 5 + i64::from(purchases_made % 4) * 2;
            purchases_made += 1;
            match world.purchase(clock.now(), secs).await {
                Ok(s) => {
                    let _ = writeln!(
                        out,
                        "  [{}] purchase: {} (tenant {}) paid until {} (+{secs} s)",
                        clock.now().format("%H:%M:%S%.3f"),
                        s.phone,
                        world.purchases.get(s.username.as_str()).map_or(0, |p| p.tenant),
                        s.paid_until.format("%H:%M:%S%.3f"),
                    );
                    daemon.runner().nudge();
                }
                Err(e) => tracing::warn!(error = %e, "demo: purchase failed"),
            }
        }
        let _ = out.flush();
    }
    let _ = writeln!(out, "\nstopping...");
    daemon.stop().await;
    for line in world.new_removals() {
        let _ = writeln!(out, "{line}");
    }
    let lags = &world.lags;
    if !lags.is_empty() {
        let max = lags.iter().cloned().fold(f64::MIN, f64::max);
        let avg = lags.iter().sum::<f64>() / lags.len() as f64;
        let _ = writeln!(
            out,
            "{} sessions removed; after paid_until by {avg:.2} s on average, {max:.2} s at most",
            lags.len()
        );
    }
    let by_router: BTreeMap<&str, usize> = handles
        .iter()
        .zip(&names)
        .map(|(h, n)| (n.as_str(), h.rows("/ip/hotspot/active").len()))
        .collect();
    let _ = writeln!(out, "sessions left on the routers: {by_router:?}");
    storage.close().await;
    fleet.shutdown().await;
    radius_router.shutdown().await;
    match temp {
        Some(t) => {
            let _ = t.close();
            let _ = writeln!(out, "demo data removed (use --data-dir DIR to keep it)");
        }
        None => {
            let _ = writeln!(out, "demo data kept in {}", dir.display());
        }
    }
    Ok(())
}
