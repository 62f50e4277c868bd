//! A RADIUS server over in-memory repositories and a fake clock, and
//! FreeRADIUS's `radclient`/`radtest` to talk to it.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use isp_core::domain::*;
use isp_core::memory;
use isp_core::ports::{FakeClock, Repositories};
use isp_radius::{Authorizer, Nas, NasTable, RadiusServer, RadiusSession, RadiusSessionRepo, ServerConfig};
use secrecy::SecretString;

pub const SECRET: &str = "testing123-not-a-real-secret";
pub const TENANT: TenantId = TenantId(1);
pub const ROUTER: RouterId = RouterId(7);

pub fn base_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_773_129_600, 0).expect("a valid instant")
}

pub fn ros(s: &str) -> RosName {
    RosName::parse("name", s).expect("a valid name")
}

pub fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::parse("phone", &format!("+2557120{n:05}")).expect("a valid phone")
}

pub struct World {
    pub repos: Repositories,
    pub clock: Arc<FakeClock>,
    pub server: RadiusServer,
    pub sessions: Arc<dyn RadiusSessionRepo>,
    pub plan: Plan,
}

pub fn nas(ip: IpAddr, incoming: SocketAddr) -> Nas {
    Nas::new(
        ROUTER,
        TENANT,
        "hotel-radius",
        ip,
        incoming,
        SecretString::from(SECRET.to_owned()),
    )
}

/// A server on loopback ports serving one NAS at `nas_ip`.
pub async fn world_with_nas(nas_ip: IpAddr) -> World {
    world_with(nas_ip, "127.0.0.1:3799".parse().expect("addr")).await
}

/// A server on loopback ports serving one NAS at `nas_ip` whose
/// `/radius incoming` is `incoming`.
pub async fn world_with(nas_ip: IpAddr, incoming: SocketAddr) -> World {
    world_over(memory::repositories(), nas_ip, incoming).await
}

/// The servers listening on loopback (ports picked by the system), as in `world_with`.
pub fn loopback_config() -> ServerConfig {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    ServerConfig {
        auth_listen: SocketAddr::new(loopback, 0),
        acct_listen: SocketAddr::new(loopback, 0),
        interim_interval: Duration::from_secs(300),
        duplicate_window: Duration::from_secs(30),
        max_in_flight: 16,
        session_retention: isp_radius::DEFAULT_SESSION_RETENTION,
    }
}

/// As `world_with`, over `repos` (empty: the tenant and plan are added).
pub async fn world_over(repos: Repositories, nas_ip: IpAddr, incoming: SocketAddr) -> World {
    let sessions = repos.radius_sessions.clone();
    world_configured(repos, sessions, nas_ip, incoming, loopback_config()).await
}

/// A server with `config`, recording accounting into `sessions`.
pub async fn world_configured(
    repos: Repositories,
    sessions: Arc<dyn RadiusSessionRepo>,
    nas_ip: IpAddr,
    incoming: SocketAddr,
    config: ServerConfig,
) -> World {
    repos
        .tenants
        .upsert(&Tenant {
            id: TENANT,
            slug: ros("hotel"),
            name: "Hotel".into(),
            time_zone: chrono_tz::Africa::Dar_es_Salaam,
        })
        .await
        .expect("tenant");
    let plan = repos
        .plans
        .insert(&NewPlan {
            tenant_id: TENANT,
            name: ros("day-pass"),
            price: Money::parse("price", "1000", Currency::parse("currency", "TZS").expect("TZS"))
                .expect("price"),
            duration: Some(RosDuration::from_secs(86_400)),
            rate_limit: Some(RateLimit::parse("rate_limit", "2M/5M").expect("rate")),
        })
        .await
        .expect("plan");
    let clock = Arc::new(FakeClock::new(base_time()));
    let server = RadiusServer::start(
        config,
        NasTable::new([nas(nas_ip, incoming)]),
        Authorizer::new(repos.clone(), clock.clone()),
        sessions.clone(),
    )
    .await
    .expect("server starts");
    World {
        repos,
        clock,
        server,
        sessions,
        plan,
    }
}

pub async fn world() -> World {
    world_with_nas(IpAddr::V4(Ipv4Addr::LOCALHOST)).await
}

impl World {
    /// The live sessions accounting recorded for the router.
    pub async fn online(&self) -> Vec<RadiusSession> {
        self.sessions.live_on_router(ROUTER).await.expect("live sessions")
    }

    pub async fn subscriber(&self, n: u32, paid_for: chrono::Duration) -> Subscriber {
        let phone = phone(n);
        self.repos
            .subscribers
            .insert(&NewSubscriber {
                tenant_id: TENANT,
                username: ros(phone.digits()),
                phone,
                paid_until: self.clock.now() + paid_for,
            })
            .await
            .expect("subscriber")
    }

    pub async fn voucher(&self, code: &str, minutes: u64) -> Voucher {
        self.repos
            .vouchers
            .insert(&NewVoucher {
                tenant_id: TENANT,
                router_id: ROUTER,
                code: ros(code),
                plan_id: self.plan.id,
                activation_deadline: None,
                purchase_deadline: None,
                duration: RosDuration::from_secs(minutes * 60),
            })
            .await
            .expect("voucher")
    }

    pub async fn pppoe_service(&self, username: &str, password: &str, status: ServiceStatus) -> Service {
        let customer = self
            .repos
            .customers
            .insert(&NewCustomer {
                tenant_id: TENANT,
                name: "Amina".into(),
                phone: None,
            })
            .await
            .expect("customer");
        let today = self.clock.now().date_naive();
        self.repos
            .services
            .insert(&NewService {
                tenant_id: TENANT,
                customer_id: customer.id,
                router_id: ROUTER,
                plan_id: self.plan.id,
                status,
                connection: Connection::Pppoe {
                    username: ros(username),
                    password: SecretPassword::parse("password", password).expect("password"),
                    profile: ros("default"),
                },
                next_billing_date: today + chrono::Duration::days(3),
                billing_day: 1,
                next_charge_on: today + chrono::Duration::days(3),
            })
            .await
            .expect("service")
    }
}

use isp_core::ports::Clock as _;

/// `radclient`'s directory, or `None` when `ISP_TEST_SKIP=radius`.
pub fn tools() -> Option<PathBuf> {
    isp_testsupport::radius_tools::radclient()
}

/// What radclient printed and whether it got an answer.
#[derive(Debug)]
pub struct Reply {
    pub ok: bool,
    pub out: String,
}

impl Reply {
    pub fn received(&self, code: &str) -> bool {
        self.out.contains(&format!("Received {code}"))
    }

    /// The value radclient printed for `attr` in the answer.
    pub fn attr(&self, attr: &str) -> Option<String> {
        let recv = self.out.find("Received ")?;
        self.out[recv..]
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(&format!("{attr} = ")))
            .map(|v| v.trim_matches('"').to_owned())
    }
}

/// Runs `radclient -x` sending `attrs` (one per line) as `command` (`auth`,
/// `acct`, `disconnect`, `coa`) to `server`, the secret read from a file.
pub async fn radclient(tool: &Path, server: SocketAddr, command: &str, secret: &str, attrs: &str) -> Reply {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, secret).expect("secret file");
    let mut child = tokio::process::Command::new(tool)
        .args(["-x", "-r", "2", "-t", "1", "-S"])
        .arg(&secret_file)
        .arg(server.to_string())
        .arg(command)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("radclient runs");
    {
        use tokio::io::AsyncWriteExt as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(attrs.as_bytes()).await.expect("write attrs");
    }
    let out = child.wait_with_output().await.expect("radclient finishes");
    Reply {
        ok: out.status.success(),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Runs `radtest [-t chap] user password server 0 secret`.
pub async fn radtest(tool: &Path, chap: bool, user: &str, password: &str, server: SocketAddr) -> Reply {
    let mut cmd = tokio::process::Command::new(isp_testsupport::radius_tools::radtest(tool));
    if chap {
        cmd.args(["-t", "chap"]);
    }
    let out = cmd
        .args([user, password, &server.to_string(), "0", SECRET])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("radtest runs");
    Reply {
        ok: out.status.success(),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}
