//! A slow SMS gateway must not stall enforcement (issue 16, hole 3): an SMS
//! gateway that accepts the connection, reads the request and never answers
//! keeps every send of a notice batch hanging; expiries that fall meanwhile
//! are still cut off by the runtime, and no notice is marked abandoned while
//! its send is still running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use isp_core::domain::*;
use isp_core::jobs::{Engine, EngineConfig, EngineDeps};
use isp_core::memory::{repositories, StaticDirectory};
use isp_core::ports::{Clock, NoticeRepoExt as _};
use isp_core::runtime::{Runtime, SchedulerConfig, SystemClock, Trigger};
use isp_routeros::driver::{DriverConfig, RouterOsDriver};
use isp_routeros::sim::{SimConfig, SimRouter};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// Accepts connections, reads what the client sends, never answers.
/// Counts the requests that arrived.
async fn black_hole_gateway() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = false;
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    if !seen && buf[..n].starts_with(b"POST") {
                        seen = true;
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    (url, requests)
}

async fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiries_are_enforced_while_every_sms_send_hangs() {
    let (url, requests) = black_hole_gateway().await;
    let sms: isp_sms::SmsGatewayConfig = serde_json::from_value(serde_json::json!({
        "kind": "webhook",
        "url": url,
        "body": "{\"to\":\"{to}\",\"message\":\"{message}\"}",
        "http": { "timeout_secs": 120.0, "max_retries": 0 }
    }))
    .unwrap();
    let sms = sms.build().unwrap();

    let sim = SimRouter::start(SimConfig::new("isp", "pw"), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let router = Router {
        id: RouterId(1),
        tenant_id: TenantId(1),
        name: "Lobby".into(),
        address: sim.addr().to_string(),
        transport: Transport::Api,
        credentials: RouterCredentials::new("isp", "pw"),
        tls_fingerprint: None,
        enabled: true,
    };
    let repos = repositories();
    repos
        .tenants
        .upsert(&Tenant {
            id: TenantId(1),
            slug: RosName::parse("slug", "cafe").unwrap(),
            name: "Cafe".into(),
            time_zone: chrono_tz::UTC,
        })
        .await
        .unwrap();
    let clock = Arc::new(SystemClock);
    let now = clock.now();

    // Twenty reminders already owed: the gateway will sit on every send.
    for i in 0..20 {
        repos
            .notices
            .reserve(&NewNotice {
                subject: String::new(),
                tenant_id: TenantId(1),
                recipient: PhoneNumber::parse("phone", &format!("2557120001{i:02}")).unwrap(),
                kind: NoticeKind::HotspotExpiresSoon,
                deadline: now + chrono::Duration::minutes(30),
                body: "Your access ends in 30 minutes.".into(),
                created_at: now,
            })
            .await
            .unwrap();
    }
    // Two subscribers online whose time ends in 1 s and in 3 s.
    let mut users = Vec::new();
    for (n, secs) in [(1u8, 1i64), (2, 3)] {
        let name = RosName::parse("username", &format!("guest{n}")).unwrap();
        let sub = repos
            .subscribers
            .insert(&NewSubscriber {
                tenant_id: TenantId(1),
                phone: PhoneNumber::parse("phone", &format!("25571200020{n}")).unwrap(),
                username: name.clone(),
                paid_until: now + chrono::Duration::seconds(secs),
            })
            .await
            .unwrap();
        let mac = MacAddress::parse("mac", &format!("AA:BB:CC:00:00:0{n}")).unwrap();
        repos
            .devices
            .record_seen(sub.id, mac, Some(router.id), now)
            .await
            .unwrap();
        sim.handle()
            .add_row("/ip/hotspot/user", &[("name", name.as_str()), ("password", "x")])
            .unwrap();
        sim.handle()
            .hotspot_login(name.as_str(), &mac.to_string(), &format!("10.5.50.{n}"))
            .unwrap();
        users.push(name.to_string());
    }

    let engine = Engine::new(
        EngineDeps {
            repos: repos.clone(),
            directory: Arc::new(StaticDirectory::new([router])),
            driver: Arc::new(RouterOsDriver::new(DriverConfig::default()).unwrap()),
            sms,
            clock: clock.clone(),
        },
        EngineConfig::default(),
    );
    let runtime = Runtime::start(engine, SchedulerConfig::default());
    runtime.runner().deliver_notices_soon(Trigger::Schedule);
    until("the gateway to hold sends", Duration::from_secs(10), || {
        requests.load(Ordering::SeqCst) >= 8
    })
    .await;

    // Both subscribers are cut off while the gateway still sits on its requests.
    let online = |user: &str| {
        sim.handle()
            .rows("/ip/hotspot/active")
            .iter()
            .any(|r| r.get("user").map(String::as_str) == Some(user))
    };
    for user in &users {
        until(&format!("{user} cut off"), Duration::from_secs(15), || {
            !online(user)
        })
        .await;
    }
    let hanging = requests.load(Ordering::SeqCst);
    assert!(
        hanging >= 8,
        "sends in flight when the expiries were enforced: {hanging}"
    );
    assert_eq!(
        repos.notices.count(NoticeStatus::Sent).await.unwrap(),
        0,
        "the gateway never answered, so nothing counts as sent"
    );
    assert_eq!(
        repos.notices.count(NoticeStatus::Abandoned).await.unwrap(),
        0,
        "no notice is abandoned while its send is still running"
    );
    runtime.stop().await;
}
