//! Quickstart: embed isp in a few lines. In-memory storage, one simulated
//! RouterOS router (the real API protocol over TCP), a subscriber whose time
//! ran out five minutes ago with a device still online, and one job run.
//! Run it: `cargo run -p quickstart`.

use std::sync::Arc;

use chrono::{Duration, Utc};
use isp_core::domain::*;
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, JobKind, RunOptions};
use isp_core::memory::{repositories, RecordingSms, StaticDirectory};
use isp_core::ports::FakeClock;
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

    // Storage: in memory (isp-adapters-sql gives the same `Repositories` on SQLite or PostgreSQL).
    let repos = repositories();
    let tenant = Tenant {
        id: TenantId(1),
        slug: RosName::parse("slug", "hotel-abc")?,
        name: "Hotel ABC".into(),
        time_zone: chrono_tz::Africa::Dar_es_Salaam,
    };
    repos.tenants.upsert(&tenant).await?;

    // A subscriber whose access ended 5 minutes ago; their phone is on the hotspot.
    let now = Utc::now(); // the core never reads the clock itself: we hand it one
    let phone = PhoneNumber::parse("phone", "255712345678")?;
    let user = RosName::parse("username", phone.digits())?;
    let sub = repos
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: tenant.id,
            phone: phone.clone(),
            username: user.clone(),
            paid_until: now - Duration::minutes(5),
        })
        .await?;
    let mac = MacAddress::parse("mac", "AA:BB:CC:DD:EE:FF")?;
    repos
        .devices
        .record_seen(sub.id, mac, Some(router.id), now)
        .await?;
    sim.handle()
        .add_row("/ip/hotspot/user", &[("name", user.as_str()), ("password", "x")])?;
    sim.handle()
        .hotspot_login(user.as_str(), &mac.to_string(), "10.5.50.2")?;
    println!(
        "sessions before: {}",
        sim.handle().rows("/ip/hotspot/active").len()
    );

    // The engine over its ports, and one job.
    let sms = Arc::new(RecordingSms::new());
    let engine = Engine::new(
        EngineDeps {
            repos,
            directory: Arc::new(StaticDirectory::new([router])),
            driver: Arc::new(RouterOsDriver::new(DriverConfig::default())?),
            sms: sms.clone(),
            clock: Arc::new(FakeClock::new(now)),
        },
        EngineConfig::default(),
    );
    let report = engine
        .run(JobKind::DisconnectExpired, RunOptions::default())
        .await?;
    println!("{report}");
    println!(
        "sessions after: {}",
        sim.handle().rows("/ip/hotspot/active").len()
    );
    println!("SMS to {phone}: {:?}", sms.sent_to(&phone));
    Ok(())
}
