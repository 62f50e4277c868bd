//! Reliability, promise 8 across a crash: a grant made while one router of
//! the tenant is down is pending there; the daemon is killed with SIGKILL while
//! its `apply-grants` retries it; the router comes back and a new daemon
//! enables the user there. Nothing is lost, and the payment is not applied
//! twice (the same reference again answers "already recorded").
//!
//! The real `ispd` binary on one SQLite file and simulated routers over TCP.

use std::time::Duration;

use isp_routeros::sim::{SimConfig, SimRouter};
use isp_tests::reliability::process::{run_ispd, Ispd};
use isp_tests::reliability::world::user_disabled;

const PASSWORD: &str = "grant-router-pw";

fn config(db: &std::path::Path, r1: &str, r2: &str) -> String {
    format!(
        r#"
[storage]
url = "sqlite://{db}"
auto_migrate = true

[engine]
lease_ttl = "2s"
retry_base = "1s"
retry_max = "2s"

[scheduler]
watcher_max_sleep = "1s"
watcher_min_sleep = "200ms"
shutdown_grace = "2s"

[schedules]
apply-grants = "* * * * * *"
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
name = "R1"
address = "{r1}"
username = "isp"
password_env = "GRANT_ROUTER_PW"

[[tenants.routers]]
id = 2
name = "R2"
address = "{r2}"
username = "isp"
password_env = "GRANT_ROUTER_PW"
"#,
        db = db.display()
    )
}

const ENV: [(&str, &str); 2] = [("GRANT_ROUTER_PW", PASSWORD), ("RUST_LOG", "info")];

/// An address where nothing listens.
fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr").to_string();
    drop(l);
    a
}

fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_grant_survives_a_sigkill_and_is_done_when_the_router_returns() {
    let r1 = SimRouter::start(SimConfig::new("isp", PASSWORD), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("router 1");
    let r2 = SimRouter::start(SimConfig::new("isp", PASSWORD), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("router 2");
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("isp.db");
    let cfg = dir.path().join("ispd.toml");
    std::fs::write(&cfg, config(&db, &r1.addr().to_string(), &dead_address())).expect("config");
    let cfg_arg = cfg.to_string_lossy().into_owned();

    // The daemon runs while router 2 is down.
    let daemon = Ispd::start(&["run", "--config", &cfg_arg], dir.path(), &ENV);

    // A purchase: enabled on router 1 at once, pending on router 2 (exit 1).
    let grant = [
        "grant",
        "--tenant",
        "hotel-abc",
        "--phone",
        "+255712000001",
        "--create",
        "--seconds",
        "3600",
        "--reference",
        "MP-1",
        "--amount",
        "1000",
        "--currency",
        "TZS",
        "--json",
        "--config",
        &cfg_arg,
    ];
    let (code, out, err) = run_ispd(&grant, dir.path(), &ENV, Duration::from_secs(60));
    assert_eq!(code, Some(1), "pending somewhere: exit 1\n{out}\n{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let states: Vec<&str> = answer["routers"]
        .as_array()
        .expect("routers")
        .iter()
        .filter_map(|r| r["state"].as_str())
        .collect();
    assert_eq!(states, vec!["enabled", "pending"], "{answer}");
    let paid_until = answer["paid_until"].clone();
    assert_eq!(user_disabled(&r1.handle(), "255712000001"), Some(false));

    // The daemon is killed while it retries router 2.
    let (_, stderr) = daemon.kill();
    assert!(!stderr.contains(PASSWORD), "no router password in the logs");

    // Router 2 is back (its address in the configuration); a new daemon
    // finishes the grant there.
    std::fs::write(&cfg, config(&db, &r1.addr().to_string(), &r2.addr().to_string())).expect("config");
    let daemon = Ispd::start(&["run", "--config", &cfg_arg], dir.path(), &ENV);
    let h2 = r2.handle();
    let done = wait_for(Duration::from_secs(20), || {
        user_disabled(&h2, "255712000001") == Some(false)
    });
    // The router shows the user enabled a moment before the daemon records
    // the grant done: wait for the record too before the daemon is killed.
    let store = isp_adapters_sql::SqlStore::connect_sqlite(&db)
        .await
        .expect("the daemon's database");
    let grants = store.repositories().grants;
    let end = std::time::Instant::now() + Duration::from_secs(20);
    let recorded = loop {
        match grants.count_pending(chrono::Utc::now()).await {
            Ok((0, _)) => break true,
            _ if std::time::Instant::now() > end => break false,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    drop(grants);
    store.close().await;
    let (_, stderr) = daemon.kill();
    assert!(
        done && recorded,
        "the pending grant was done on router 2 after the restart (router: {done}, recorded: {recorded})\n{stderr}"
    );

    // The same payment again: recorded once, not extended again, exit 0.
    let (code, out, err) = run_ispd(&grant, dir.path(), &ENV, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{out}\n{err}");
    let again: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(again["duplicate_payment"], true, "{again}");
    assert_eq!(again["paid_until"], paid_until, "not extended twice");
}
