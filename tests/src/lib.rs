//! End-to-end tests across the isp crates live in `tests/tests/`. This library
//! is their harness: a daemon (`ispd`) on a SQLite file, with simulated
//! RouterOS routers served over TCP, configured through a real TOML file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use isp_core::domain::{MacAddress, NewSubscriber, OwnerTag, PhoneNumber, RosName, Subscriber, TenantId};
use isp_core::memory::RecordingSms;
use isp_core::ports::Repositories;
use isp_routeros::sim::{SimConfig, SimFleet, SimHandle};
use ispd::config::{self, Config};
use ispd::daemon::{self, Daemon};
use ispd::storage::Storage;

pub mod engine_world;
pub mod reliability;

/// The admin token every test daemon uses.
pub const TOKEN: &str = "e2e-token-0123456789abcdef";

/// The router password of every simulated router.
pub const ROUTER_PASSWORD: &str = "e2e-router-pw";

/// A daemon on SQLite with simulated routers. Tenant 1 (`hotel-abc`) has
/// routers 1..=n-1, tenant 2 (`cafe-xyz`) has router n.
pub struct TestDaemon {
    /// The running daemon (stop it with [`TestDaemon::stop`]).
    pub daemon: Option<Daemon>,
    /// Its storage.
    pub storage: Storage,
    /// The repositories (same database).
    pub repos: Repositories,
    /// The simulated routers.
    pub fleet: Option<SimFleet>,
    /// Their handles, by router index (router id = index + 1).
    pub handles: Vec<SimHandle>,
    /// What the daemon sent by SMS.
    pub sms: Arc<RecordingSms>,
    /// The loaded configuration.
    pub config: Config,
    /// The admin API base URL.
    pub base: String,
    /// The temp dir (database, config, secrets).
    pub dir: tempfile::TempDir,
}

/// Options for [`TestDaemon::start`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Simulated routers (at least 2).
    pub routers: usize,
    /// Extra TOML appended to the generated configuration's `[schedules]` table.
    pub schedules: String,
    /// `alert_phones` of tenant 1.
    pub alert_phones: Vec<String>,
    /// `scheduler.shutdown_grace`.
    pub shutdown_grace: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            routers: 3,
            schedules: String::new(),
            alert_phones: Vec::new(),
            shutdown_grace: "5s",
        }
    }
}

impl TestDaemon {
    /// Starts the routers, writes the configuration, opens SQLite, starts the daemon.
    pub async fn start(opts: Options) -> TestDaemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let n = opts.routers.max(2);
        let fleet = SimFleet::start(
            n,
            SimConfig::new("isp", ROUTER_PASSWORD),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await
        .expect("simulated routers");
        let handles = fleet.handles();
        std::fs::write(dir.path().join("router.password"), ROUTER_PASSWORD).expect("write password");
        std::fs::write(dir.path().join("admin.token"), TOKEN).expect("write token");
        let mut text = format!(
            r#"
[storage]
url = "sqlite://{db}"

[admin]
listen = "127.0.0.1:0"
token_file = "admin.token"

[engine]
retry_base = "1s"
retry_max = "2s"
lease_ttl = "4s"

[scheduler]
watcher_max_sleep = "1s"
watcher_min_sleep = "200ms"
shutdown_grace = "{grace}"

[schedules]
# The safety sweep is slow on purpose: the real-time watcher must do the work.
disconnect-expired = "*/30 * * * * *"
sync-routers = "off"
router-health = "*/2 * * * * *"
monthly-billing = "off"
payment-reminders = "off"
device-cleanup = "off"
log-retention = "off"
{extra}
"#,
            db = dir.path().join("isp.db").display(),
            extra = opts.schedules,
            grace = opts.shutdown_grace,
        );
        for (tid, slug, routers) in [(1, "hotel-abc", 0..n - 1), (2, "cafe-xyz", n - 1..n)] {
            text.push_str(&format!(
                "\n[[tenants]]\nid = {tid}\nslug = \"{slug}\"\ntime_zone = \"Africa/Dar_es_Salaam\"\n"
            ));
            if tid == 1 && !opts.alert_phones.is_empty() {
                let list: Vec<String> = opts.alert_phones.iter().map(|p| format!("\"{p}\"")).collect();
                text.push_str(&format!("alert_phones = [{}]\n", list.join(", ")));
            }
            for i in routers {
                text.push_str(&format!(
                    "\n[[tenants.routers]]\nid = {}\nname = \"R{}\"\naddress = \"{}\"\nusername = \"isp\"\npassword_file = \"router.password\"\n",
                    i + 1,
                    i + 1,
                    fleet.routers()[i].addr()
                ));
            }
        }
        let path = dir.path().join("ispd.toml");
        std::fs::write(&path, &text).expect("write config");
        let env: std::collections::HashMap<String, String> = Default::default();
        let config = config::load_file(&path, &env).expect("config loads");
        let (mut wiring, storage) = daemon::wire(&config, true).await.expect("wiring");
        let sms = Arc::new(RecordingSms::new());
        wiring.sms = sms.clone();
        daemon::apply_config(&config, &wiring.repos)
            .await
            .expect("apply config");
        let repos = wiring.repos.clone();
        let d = Daemon::start(&config, wiring).await.expect("daemon starts");
        let base = format!("http://{}", d.api_addr().expect("API enabled"));
        TestDaemon {
            daemon: Some(d),
            storage,
            repos,
            fleet: Some(fleet),
            handles,
            sms,
            config,
            base,
            dir,
        }
    }

    /// Adds a subscriber of `tenant` paid until `paid_until`, with a hotspot user
    /// and a logged-in device on each router index in `routers`.
    pub async fn subscriber(
        &self,
        tenant: i64,
        phone: &str,
        paid_until: DateTime<Utc>,
        routers: &[usize],
    ) -> Subscriber {
        let phone = PhoneNumber::parse("phone", phone).expect("phone");
        let username = RosName::parse("username", phone.digits()).expect("username");
        let sub = self
            .repos
            .subscribers
            .insert(&NewSubscriber {
                tenant_id: TenantId(tenant),
                phone: phone.clone(),
                username: username.clone(),
                paid_until,
            })
            .await
            .expect("insert subscriber");
        let d = phone.digits();
        let tail = &d[d.len() - 4..];
        let mac =
            MacAddress::parse("mac", &format!("02:00:00:00:{}:{}", &tail[..2], &tail[2..])).expect("mac");
        for &r in routers {
            let h = &self.handles[r];
            h.add_row(
                "/ip/hotspot/user",
                &[
                    ("name", username.as_str()),
                    ("password", "x"),
                    ("comment", &OwnerTag::Subscriber(sub.id).comment()),
                ],
            )
            .expect("hotspot user");
            h.hotspot_login(
                username.as_str(),
                &mac.to_string(),
                &format!("10.0.{}.{}", r, &tail[2..].parse::<u8>().unwrap_or(2)),
            )
            .expect("login");
            self.repos
                .devices
                .record_seen(
                    sub.id,
                    mac,
                    Some(isp_core::domain::RouterId(r as i64 + 1)),
                    Utc::now(),
                )
                .await
                .expect("device");
        }
        if let Some(d) = &self.daemon {
            d.runner().nudge();
        }
        sub
    }

    /// Active hotspot sessions of `user` on router index `r`.
    pub fn sessions(&self, r: usize, user: &str) -> usize {
        self.handles[r]
            .rows("/ip/hotspot/active")
            .iter()
            .filter(|row| row.get("user").map(String::as_str) == Some(user))
            .count()
    }

    /// When `user`'s last session on router index `r` was removed, if it was.
    pub fn removed_at(&self, r: usize, user: &str) -> Option<DateTime<Utc>> {
        self.handles[r]
            .removals()
            .iter()
            .filter(|rm| {
                rm.menu == "/ip/hotspot/active" && rm.row.get("user").map(String::as_str) == Some(user)
            })
            .map(|rm| DateTime::<Utc>::from(rm.at))
            .max()
    }

    /// Whether `user` is disabled on router index `r`.
    pub fn user_disabled(&self, r: usize, user: &str) -> Option<bool> {
        self.handles[r]
            .rows("/ip/hotspot/user")
            .iter()
            .find(|row| row.get("name").map(String::as_str) == Some(user))
            .map(|row| row.get("disabled").map(String::as_str) == Some("true"))
    }

    /// `GET /api/health` with the token.
    pub async fn health(&self) -> serde_json::Value {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/health", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("health request");
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("health JSON")
    }

    /// Stops the daemon (gracefully, within `shutdown_grace`); returns whether
    /// every run in progress finished in time. The routers keep running.
    pub async fn stop_daemon(&mut self) -> bool {
        match self.daemon.take() {
            Some(d) => d.stop().await,
            None => true,
        }
    }

    /// Starts a new daemon on the same database, routers and SMS recorder.
    pub async fn restart_daemon(&mut self) {
        self.stop_daemon().await;
        let (mut wiring, storage) = daemon::wire(&self.config, false).await.expect("wiring");
        wiring.sms = self.sms.clone();
        let d = Daemon::start(&self.config, wiring)
            .await
            .expect("daemon restarts");
        self.base = format!("http://{}", d.api_addr().expect("API enabled"));
        self.storage = storage;
        self.daemon = Some(d);
    }

    /// Stops the daemon and the routers.
    pub async fn stop(mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop().await;
        }
        self.storage.close().await;
        if let Some(f) = self.fleet.take() {
            f.shutdown().await;
        }
    }
}

/// Polls `f` every 50 ms until it is true or `timeout` passes; returns whether it became true.
pub async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ids listed in `expired_not_disconnected` of a health body.
pub fn overdue_ids(health: &serde_json::Value) -> Vec<i64> {
    health["expired_not_disconnected"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o["id"].as_i64()).collect())
        .unwrap_or_default()
}

/// Per-message count of what was sent to `phone`.
pub fn sent_to(sms: &RecordingSms, phone: &str) -> BTreeMap<String, usize> {
    let phone = PhoneNumber::parse("phone", phone).expect("phone");
    let mut m = BTreeMap::new();
    for body in sms.sent_to(&phone) {
        *m.entry(body).or_insert(0) += 1;
    }
    m
}
