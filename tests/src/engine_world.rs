//! An engine on in-memory repositories with the RouterOS driver, talking to
//! simulated routers over real TCP: the set-up shared by the use-case tests
//! (`grants.rs`, `vouchers_multi_router.rs`). Tenant 1 with a 1-hour plan and
//! a fake clock at [`now`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use isp_core::domain::*;
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, JobKind, JobReport, RunOptions};
use isp_core::memory::{RecordingSms, StaticDirectory};
use isp_core::ports::{FakeClock, Repositories};
use isp_routeros::client::ClientConfig;
use isp_routeros::driver::{DriverConfig, RouterOsDriver};
use isp_routeros::sim::{SimConfig, SimHandle, SimRouter};

/// The API user of every simulated router.
pub const USER: &str = "api";
/// Its password.
pub const PASSWORD: &str = "Sup3r-S3cret-Pw!";

/// The fake clock's start.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).single().expect("now")
}

/// A simulated router on a free local port.
pub async fn sim() -> SimRouter {
    SimRouter::start(
        SimConfig::new(USER, PASSWORD),
        "127.0.0.1:0".parse().expect("address"),
    )
    .await
    .expect("simulator starts")
}

/// Router `id` of tenant 1 at `address`.
pub fn router_at(id: i64, address: String) -> Router {
    Router {
        id: RouterId(id),
        tenant_id: TenantId(1),
        name: format!("sim-{id}"),
        address,
        transport: Transport::Api,
        credentials: RouterCredentials::new(USER, PASSWORD),
        tls_fingerprint: None,
        enabled: true,
    }
}

/// Router `id` of tenant 1 on `sim`.
pub fn router(id: i64, sim: &SimRouter) -> Router {
    router_at(id, sim.addr().to_string())
}

/// An address where nothing listens (connection refused).
pub fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    addr.to_string()
}

/// The driver with short timeouts, and no cool-down: a router that is back
/// is used at once.
pub fn driver() -> Arc<RouterOsDriver> {
    Arc::new(
        RouterOsDriver::new(DriverConfig {
            client: ClientConfig {
                connect_timeout: Duration::from_secs(2),
                login_timeout: Duration::from_secs(2),
                command_timeout: Duration::from_secs(3),
                keepalive: None,
                cooldown_min: Duration::ZERO,
                ..ClientConfig::default()
            },
            ..DriverConfig::default()
        })
        .expect("driver"),
    )
}

/// The engine and what a test reaches behind it.
pub struct World {
    /// The engine.
    pub engine: Engine,
    /// Its repositories.
    pub repos: Repositories,
    /// Its routers (tests change them).
    pub directory: Arc<StaticDirectory>,
    /// Its clock.
    pub clock: Arc<FakeClock>,
    /// Tenant 1's 1-hour plan.
    pub plan: Plan,
}

/// Tenant 1 with `routers` and a 1-hour plan, and an engine over them.
pub async fn world(routers: Vec<Router>) -> World {
    let repos = isp_core::memory::repositories();
    repos
        .tenants
        .upsert(&Tenant {
            id: TenantId(1),
            slug: RosName::parse("slug", "t1").expect("slug"),
            name: "T1".into(),
            time_zone: chrono_tz::UTC,
        })
        .await
        .expect("tenant");
    let currency = Currency::parse("currency", "TZS").expect("currency");
    let plan = repos
        .plans
        .insert(&NewPlan {
            tenant_id: TenantId(1),
            name: RosName::parse("plan", "1-hour").expect("plan name"),
            price: Money::parse("price", "1000", currency).expect("price"),
            duration: Some(RosDuration::from_secs(3600)),
            rate_limit: None,
        })
        .await
        .expect("plan");
    let directory = Arc::new(StaticDirectory::new(routers));
    let clock = Arc::new(FakeClock::new(now()));
    let engine = engine_over(
        repos.clone(),
        directory.clone(),
        clock.clone(),
        EngineConfig::default(),
    );
    World {
        engine,
        repos,
        directory,
        clock,
        plan,
    }
}

/// An engine over `repos` with [`driver`] and a recording SMS sender.
pub fn engine_over(
    repos: Repositories,
    directory: Arc<StaticDirectory>,
    clock: Arc<FakeClock>,
    config: EngineConfig,
) -> Engine {
    Engine::new(
        EngineDeps {
            repos,
            directory,
            driver: driver(),
            sms: Arc::new(RecordingSms::new()),
            clock,
        },
        config,
    )
}

/// Runs `job` once, failing the test when it fails or hangs for 30 s.
pub async fn run(engine: &Engine, job: JobKind) -> JobReport {
    tokio::time::timeout(Duration::from_secs(30), engine.run(job, RunOptions::default()))
        .await
        .unwrap_or_else(|_| panic!("{job} hung"))
        .unwrap_or_else(|e| panic!("{job} failed: {e}"))
}

/// Polls `f` every 20 ms until it is true or `timeout` passes.
pub async fn eventually_async(timeout: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The hotspot users named `name` on a router.
pub fn users(handle: &SimHandle, name: &str) -> Vec<BTreeMap<String, String>> {
    handle
        .rows("/ip/hotspot/user")
        .into_iter()
        .filter(|r| r.get("name").map(String::as_str) == Some(name))
        .collect()
}
