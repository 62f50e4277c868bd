//! Quickstart: embed isp in a few lines. Embedded SQLite (in memory here; a
//! file path in production), one simulated RouterOS router (the real API
//! protocol over TCP), a subscriber with two seconds of paid time left and a
//! device online, and the library's runtime on the system clock: the session
//! is removed the moment the time runs out, with no job started by hand.
//! Run it: `cargo run -p quickstart`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use isp_adapters_sql::SqlStore;
use isp_core::domain::*;
use isp_core::jobs::{Engine, EngineConfig, EngineDeps};
use isp_core::memory::{RecordingSms, StaticDirectory};
use isp_core::ports::Clock;
use isp_core::runtime::{Runtime, SchedulerConfig, SystemClock};
use isp_routeros::driver::{DriverConfig, RouterOsDriver};
use isp_routeros::sim::{SimConfig, SimRouter};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A simulated router on a free local port.
    let sim = SimRouter::start(SimConfig::new("isp", "router-pw"), "127.0.0.1:0".parse()?).await?;
    let router = Router {
        id: RouterId(1),
        tenant_id: TenantId(1),
        name: "Router1".into(),
        address: sim.addr().to_string(),
        transport: Transport::Api,
        credentials: RouterCredentials::new("isp", "router-pw"),
        tls_fingerprint: None,
        enabled: true,
    };

    // Storage: SQLite, migrated (the same `Repositories` exist for PostgreSQL and MongoDB).
    let store = SqlStore::connect_sqlite_memory().await?;
    store.migrate().await?;
    let repos = store.repositories();
    let tenant = Tenant {
        id: TenantId(1),
        slug: RosName::parse("slug", "hotel-abc")?,
        name: "Hotel ABC".into(),
        time_zone: chrono_tz::Africa::Dar_es_Salaam,
    };
    repos.tenants.upsert(&tenant).await?;

    // A subscriber with two seconds of paid time left; their phone is on the hotspot.
    let clock = Arc::new(SystemClock);
    let paid_until = clock.now() + chrono::Duration::seconds(2);
    let phone = PhoneNumber::parse("phone", "255712345678")?;
    let user = RosName::parse("username", phone.digits())?;
    let sub = repos
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: tenant.id,
            phone: phone.clone(),
            username: user.clone(),
            paid_until,
        })
        .await?;
    let mac = MacAddress::parse("mac", "AA:BB:CC:DD:EE:FF")?;
    repos
        .devices
        .record_seen(sub.id, mac, Some(router.id), clock.now())
        .await?;
    sim.handle()
        .add_row("/ip/hotspot/user", &[("name", user.as_str()), ("password", "x")])?;
    sim.handle()
        .hotspot_login(user.as_str(), &mac.to_string(), "10.5.50.2")?;
    println!(
        "sessions before: {}",
        sim.handle().rows("/ip/hotspot/active").len()
    );

    // The engine over its ports, and the runtime: cron jobs plus the real-time watcher.
    let sms = Arc::new(RecordingSms::new());
    let engine = Engine::new(
        EngineDeps {
            repos,
            directory: Arc::new(StaticDirectory::new([router])),
            driver: Arc::new(RouterOsDriver::new(DriverConfig::default())?),
            sms: sms.clone(),
            clock: clock.clone(),
        },
        EngineConfig::default(),
    );
    let runtime = Runtime::start(engine, SchedulerConfig::default());

    let waited = Instant::now();
    while !sim.handle().rows("/ip/hotspot/active").is_empty() && waited.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lag = clock.now() - paid_until;
    println!(
        "sessions after: {} (removed {} ms after the paid time ended)",
        sim.handle().rows("/ip/hotspot/active").len(),
        lag.num_milliseconds()
    );
    runtime.stop().await;
    println!("SMS to {phone}: {:?}", sms.sent_to(&phone));
    Ok(())
}
