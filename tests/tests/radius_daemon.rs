//! `ispd` with a router in RADIUS mode (issue 22), end to end: a hotspot login
//! over RADIUS is stored as a session, shown by `GET /api/routers/{id}`, the
//! subscriber detail and `/api/health`; after a restart of the daemon (same
//! SQLite file) the session is still known and a revoke through the API
//! disconnects it with a Disconnect-Request.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use isp_core::domain::{NewSubscriber, PhoneNumber, RosName, TenantId};
use isp_routeros::sim::radius::RadiusClient;
use isp_routeros::sim::{SimConfig, SimRouter};
use ispd::config;
use ispd::daemon::{self, Daemon};
use serde_json::Value;

const TOKEN: &str = "radius-e2e-token-0123456789";
const SECRET: &str = "radius-e2e-shared-secret";

async fn get(base: &str, path: &str) -> Value {
    let resp = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.expect("JSON answer")
}

async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut cond: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sessions(v: &Value) -> Vec<Value> {
    v["radius_sessions"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_radius_routers_sessions_are_shown_survive_a_restart_and_a_revoke_disconnects_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sim_config = SimConfig::new("nobody", "not-used");
    sim_config.identity = "HotelRadius1".into();
    let mut sim = SimRouter::start(sim_config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("simulated router");
    let incoming = sim
        .serve_radius_incoming(SocketAddr::from(([127, 0, 0, 1], 0)), SECRET)
        .await
        .expect("/radius incoming");
    let handle = sim.handle();
    std::fs::write(dir.path().join("admin.token"), TOKEN).expect("token");
    std::fs::write(dir.path().join("radius.secret"), SECRET).expect("secret");
    let text = format!(
        r#"
[storage]
url = "sqlite://{db}"

[admin]
listen = "127.0.0.1:0"
token_file = "admin.token"

[radius]
listen = "127.0.0.1:0"
interim_interval = "1m"
disconnect_timeout = "200ms"

[schedules]
disconnect-expired = "*/30 * * * * *"
sync-routers = "off"
router-health = "off"
monthly-billing = "off"
payment-reminders = "off"
device-cleanup = "off"
log-retention = "off"

[[tenants]]
id = 1
slug = "hotel-abc"
time_zone = "Africa/Dar_es_Salaam"

[[tenants.routers]]
id = 1
name = "HotelRadius1"
address = "{incoming}"
transport = "radius"
secret_file = "radius.secret"
"#,
        db = dir.path().join("isp.db").display(),
    );
    let path = dir.path().join("ispd.toml");
    std::fs::write(&path, &text).expect("config");
    let env: std::collections::HashMap<String, String> = Default::default();
    let config = config::load_file(&path, &env).expect("config loads");

    let (wiring, storage) = daemon::wire(&config, true).await.expect("wiring");
    daemon::apply_config(&config, &wiring.repos)
        .await
        .expect("apply config");
    let phone = PhoneNumber::parse("phone", "+255712000041").expect("phone");
    let sub = wiring
        .repos
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: TenantId(1),
            username: RosName::parse("username", phone.digits()).expect("name"),
            phone,
            paid_until: Utc::now() + chrono::Duration::hours(1),
        })
        .await
        .expect("subscriber");
    let name = sub.username.to_string();
    let d = Daemon::start(&config, wiring).await.expect("daemon starts");
    let base = format!("http://{}", d.api_addr().expect("API"));
    let (auth, acct) = d.radius_addrs().expect("RADIUS servers");
    let client = RadiusClient::new(auth, Some(acct), SECRET);
    let id = handle
        .hotspot_login_radius(&client, &name, &name, "AA:BB:CC:00:00:41", "10.5.50.41")
        .await
        .expect("accepted");
    let acct_id = handle.acct_session_id(&id).expect("Acct-Session-Id");
    eventually("the accounting Start", || async {
        sessions(&get(&base, "/api/routers/1").await).len() == 1
    })
    .await;
    let router = get(&base, "/api/routers/1").await;
    assert_eq!(router["transport"], "radius");
    let s = &sessions(&router)[0];
    assert_eq!(s["user"], name.as_str());
    assert_eq!(s["session_id"], acct_id.as_str());
    assert_eq!(s["address"], "10.5.50.41");
    assert_eq!(s["kind"], "hotspot");
    let health = get(&base, "/api/health").await;
    assert_eq!(health["routers"]["list"][0]["radius_online"], 1, "{health}");
    assert_eq!(sessions(&health).len(), 1, "{health}");
    let detail = get(&base, &format!("/api/subscribers/{}", sub.id.0)).await;
    assert_eq!(sessions(&detail).len(), 1, "{detail}");
    assert!(!text.contains(SECRET) && !router.to_string().contains(SECRET));

    // A restart: a new daemon over the same file still knows the session.
    assert!(d.stop().await, "stopped cleanly");
    storage.close().await;
    let (wiring, storage) = daemon::wire(&config, false).await.expect("wiring again");
    let d = Daemon::start(&config, wiring).await.expect("daemon restarts");
    let base = format!("http://{}", d.api_addr().expect("API"));
    let router = get(&base, "/api/routers/1").await;
    assert_eq!(sessions(&router).len(), 1, "{router}");
    assert_eq!(handle.rows("/ip/hotspot/active").len(), 1);

    // Revoke through the API: the RADIUS driver disconnects the stored session.
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/subscribers/{}/revoke", sub.id.0))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("revoke");
    assert!(resp.status().is_success(), "{}", resp.status());
    assert!(handle.rows("/ip/hotspot/active").is_empty(), "disconnected");
    let removal = handle.removals().pop().expect("a removal");
    assert_eq!(removal.reason, "radius-disconnect");
    let router = get(&base, "/api/routers/1").await;
    assert!(sessions(&router).is_empty(), "{router}");
    assert_eq!(
        get(&base, "/api/health").await["routers"]["list"][0]["radius_online"],
        0
    );
    d.stop().await;
    storage.close().await;
    sim.shutdown().await;
}
