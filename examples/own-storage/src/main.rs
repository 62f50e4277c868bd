//! isp on storage of your own. The engine talks to storage only through the
//! repository ports (`isp_core::ports::Repositories`); a billing system with its
//! own database implements them (and runs `isp_core::testkit`'s conformance
//! suite against its implementation). This example uses the in-memory
//! repositories that ship with the core, which pass that suite, and shows
//! the two things an embedder does after a purchase: extend `paid_until`, then
//! nudge the runtime so the watcher re-plans at once.
//! Run it: `cargo run -p own-storage`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use isp_core::domain::*;
use isp_core::jobs::{Engine, EngineConfig, EngineDeps};
use isp_core::memory::{repositories, RecordingSms, StaticDirectory};
use isp_core::ports::Clock;
use isp_core::runtime::{Runtime, SchedulerConfig, SystemClock};
use isp_routeros::driver::{DriverConfig, RouterOsDriver};
use isp_routeros::sim::{SimConfig, SimRouter};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = SimRouter::start(SimConfig::new("isp", "router-pw"), "127.0.0.1:0".parse()?).await?;
    let router = Router {
        id: RouterId(1),
        tenant_id: TenantId(1),
        name: "Lobby".into(),
        address: sim.addr().to_string(),
        transport: Transport::Api,
        credentials: RouterCredentials::new("isp", "router-pw"),
        tls_fingerprint: None,
        enabled: true,
    };

    // Your storage: anything that implements the repository ports.
    let repos = repositories();
    repos
        .tenants
        .upsert(&Tenant {
            id: TenantId(1),
            slug: RosName::parse("slug", "cafe")?,
            name: "Cafe".into(),
            time_zone: chrono_tz::UTC,
        })
        .await?;
    let clock = Arc::new(SystemClock);
    let user = RosName::parse("username", "guest42")?;
    let sub = repos
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: TenantId(1),
            phone: PhoneNumber::parse("phone", "255712000042")?,
            username: user.clone(),
            paid_until: clock.now() + chrono::Duration::seconds(1),
        })
        .await?;
    let mac = MacAddress::parse("mac", "AA:BB:CC:00:00:42")?;
    repos
        .devices
        .record_seen(sub.id, mac, Some(router.id), clock.now())
        .await?;
    sim.handle()
        .add_row("/ip/hotspot/user", &[("name", user.as_str()), ("password", "x")])?;
    sim.handle()
        .hotspot_login(user.as_str(), &mac.to_string(), "10.5.50.9")?;

    let engine = Engine::new(
        EngineDeps {
            repos: repos.clone(),
            directory: Arc::new(StaticDirectory::new([router])),
            driver: Arc::new(RouterOsDriver::new(DriverConfig::default())?),
            sms: Arc::new(RecordingSms::new()),
            clock: clock.clone(),
        },
        EngineConfig::default(),
    );
    let runtime = Runtime::start(engine, SchedulerConfig::default());

    // The customer buys 30 more seconds before the first second is over.
    repos
        .subscribers
        .extend(sub.id, clock.now() + chrono::Duration::seconds(30))
        .await?;
    runtime.runner().nudge();
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "after the extension, sessions online: {}",
        sim.handle().rows("/ip/hotspot/active").len()
    );

    // Then the time is taken back (a refund): the watcher cuts the session off at once.
    repos.subscribers.extend(sub.id, clock.now()).await?;
    runtime.runner().nudge();
    let waited = Instant::now();
    while !sim.handle().rows("/ip/hotspot/active").is_empty() && waited.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "after the refund, sessions online: {} ({} ms after it)",
        sim.handle().rows("/ip/hotspot/active").len(),
        waited.elapsed().as_millis()
    );
    runtime.stop().await;
    Ok(())
}
