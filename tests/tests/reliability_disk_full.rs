//! Reliability scenario 8: the disk under the SQLite database fills up, and
//! space comes back.
//!
//! The test mounts a 6 MiB tmpfs (it must run as root with the right to
//! mount: without it the test fails saying so, it never skips), puts the
//! daemon's SQLite database on it and runs the in-process daemon (real
//! watcher) with one simulated router. 6 subscribers expire before the disk
//! fills; then a file fills the disk to the last byte while 6 more expire; a
//! few seconds later the file is removed.
//!
//! Checked: the daemon keeps running; while the disk is full nothing is
//! recorded, and it says why: a warning naming the full disk is logged and
//! `/api/health` needs attention with the disconnect job's last run naming
//! it; what it had recorded before is all still there; once space returns,
//! every expiry that fell due meanwhile is carried out (user disabled, no
//! session) and recorded, none before its `paid_until`, and the file opens
//! again with every row.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use isp_core::domain::TenantId;
use isp_core::memory::RecordingSms;
use isp_core::ports::Repositories;
use isp_tests::eventually;
use isp_tests::reliability::world::{add_subscriber, sessions_of, user_disabled, Fleet, Layout, SubPlan};
use ispd::daemon::{self, Daemon};

const PASSWORD: &str = "disk-router-pw";
const TOKEN: &str = "disk-token-0123456789abcdef";

/// A tmpfs mounted for the test; unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// Writes zeros into `path` until the disk refuses (ENOSPC); returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).expect("filler file");
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) => {
                assert_eq!(
                    e.raw_os_error(),
                    Some(28),
                    "filling the disk failed otherwise than ENOSPC: {e}"
                );
                break;
            }
        }
    }
    let _ = f.sync_all();
    written
}

/// Log lines, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

async fn recorded(repos: &Repositories, s: &SubPlan) -> Option<DateTime<Utc>> {
    let db = repos.subscribers.get(s.id).await.expect("read subscriber");
    (!db.active).then_some(db.disconnected_at).flatten()
}

const FULL: &str = "database or disk is full";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_stops_recording_loses_nothing_and_the_daemon_catches_up() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .expect("log capture");

    let dir = tempfile::tempdir().expect("dir");
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).expect("mount point");
    let _mounted = Tmpfs::mount(&disk, "6m").unwrap_or_else(|e| {
        panic!(
            "scenario 8 (disk full) needs a small tmpfs for the database and could not mount one \
             (run as root with CAP_SYS_ADMIN): {e}"
        )
    });

    let tz: Tz = chrono_tz::Africa::Dar_es_Salaam;
    let fleet = Fleet::start(1, PASSWORD, false, 8).await;
    let h = fleet.handles[0].clone();
    let layout = Layout {
        tenants: vec![(TenantId(1), tz, vec![0])],
    };
    std::fs::write(dir.path().join("router.password"), PASSWORD).expect("password");
    std::fs::write(dir.path().join("admin.token"), TOKEN).expect("token");
    let text = format!(
        r#"
[storage]
url = "sqlite://{db}"

[admin]
listen = "127.0.0.1:0"
token_file = "admin.token"

[engine]
retry_base = "1s"
retry_max = "2s"
lease_ttl = "3s"

[scheduler]
watcher_max_sleep = "1s"
watcher_min_sleep = "200ms"
shutdown_grace = "5s"

[schedules]
disconnect-expired = "* * * * * *"
warn-before-expiry = "off"
expire-vouchers = "off"
sync-routers = "off"
provision-services = "off"
router-health = "off"
monthly-billing = "off"
payment-reminders = "off"
device-cleanup = "off"
log-retention = "off"

[[tenants]]
id = 1
slug = "tenant-1"
time_zone = "{tz}"

[[tenants.routers]]
id = 1
name = "R1"
address = "{addr}"
username = "isp"
password_file = "router.password"
"#,
        db = disk.join("isp.db").display(),
        tz = tz.name(),
        addr = fleet.address(0),
    );
    let path = dir.path().join("ispd.toml");
    std::fs::write(&path, &text).expect("config");
    let config = ispd::config::load_file(&path, &HashMap::new()).expect("config loads");
    let (mut wiring, storage) = daemon::wire(&config, true).await.expect("wiring");
    wiring.sms = Arc::new(RecordingSms::new());
    daemon::apply_config(&config, &wiring.repos)
        .await
        .expect("apply config");
    let repos = wiring.repos.clone();
    layout.seed(&repos).await;

    // 6 expire before the disk fills, 6 while it is full (from 6 s on).
    let t0 = Utc::now();
    let mut early = Vec::new();
    let mut during = Vec::new();
    for n in 0..12 {
        let paid_until = if n < 6 {
            t0 + chrono::Duration::milliseconds(1_000 + 300 * n as i64)
        } else {
            t0 + chrono::Duration::milliseconds(6_000 + 400 * n as i64)
        };
        let s = add_subscriber(&repos, &fleet, &layout, TenantId(1), n, paid_until, &[0], t0).await;
        if n < 6 {
            early.push(s);
        } else {
            during.push(s);
        }
    }
    let d = Daemon::start(&config, wiring).await.expect("daemon starts");
    let base = format!("http://{}", d.api_addr().expect("API"));
    let health = || {
        let base = base.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{base}/api/health"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("health request")
                .json::<serde_json::Value>()
                .await
                .expect("health JSON")
        }
    };

    // Before: the first 6 are cut off and recorded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut before = Vec::new();
    loop {
        before.clear();
        for s in &early {
            before.push(recorded(&repos, s).await);
        }
        if before.iter().all(Option::is_some) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first expiries were not recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The disk fills before the next expiry.
    assert!(
        Utc::now() < during[0].paid_until,
        "too slow: the disk filled after an expiry"
    );
    let filler = disk.join("filler");
    let filled = fill(&filler);
    let full_from = Utc::now();
    let last_due = during.iter().map(|s| s.paid_until).max().expect("subs");
    // Full until every one of them is due, and 3 s more.
    let health_full = loop {
        let body = health().await;
        let named = body["jobs"]["disconnect-expired"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains(FULL));
        if named && Utc::now() > last_due + chrono::Duration::seconds(3) {
            break body;
        }
        assert!(
            Utc::now() < last_due + chrono::Duration::seconds(15),
            "health never named the full disk: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut recorded_while_full = Vec::new();
    for s in &during {
        if let Some(at) = recorded(&repos, s).await {
            recorded_while_full.push(format!("{} at {at}", s.username));
        }
    }
    assert!(
        recorded_while_full.is_empty(),
        "recorded while the disk was full: {recorded_while_full:?}"
    );
    assert_ne!(
        health_full["health"], "healthy",
        "health while the disk is full: {health_full}"
    );
    let warned = logs.text().lines().filter(|l| l.contains(FULL)).count();
    assert!(warned > 0, "no log line names the full disk:\n{}", logs.text());
    for (s, was) in early.iter().zip(&before) {
        assert_eq!(
            &recorded(&repos, s).await,
            was,
            "{}'s recorded expiry changed",
            s.username
        );
    }
    let full_for = Utc::now() - full_from;

    // Space returns.
    std::fs::remove_file(&filler).expect("remove the filler");
    let freed = Utc::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let caught_up_at = loop {
        let mut all = true;
        for s in &during {
            all &= recorded(&repos, s).await.is_some();
        }
        if all {
            break Utc::now();
        }
        if tokio::time::Instant::now() >= deadline {
            let text = logs.text();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            panic!(
                "the expiries of the full disk were not recorded 20 s after space returned; health: {}\nlast log lines (newest first):\n{}",
                health().await,
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        eventually(Duration::from_secs(5), || during.iter().chain(&early).all(
            |s| sessions_of(&h, &s.username) == 0 && user_disabled(&h, &s.username) == Some(true)
        ))
        .await,
        "an expired subscriber still has access on the router"
    );
    for s in during.iter().chain(&early) {
        let at = recorded(&repos, s).await.expect("recorded");
        assert!(at >= s.paid_until, "{} recorded before paid_until", s.username);
        for rm in h.removals() {
            if rm.menu == "/ip/hotspot/active" && rm.row.get("user") == Some(&s.username) {
                let at: DateTime<Utc> = rm.at.into();
                assert!(at >= s.paid_until, "{} cut off early", s.username);
            }
        }
    }
    // A second connection opens the file and reads every row back.
    let reopened = isp_adapters_sql::SqlStore::connect_sqlite(disk.join("isp.db"))
        .await
        .expect("reopen the database");
    for s in during.iter().chain(&early) {
        let db = reopened
            .repositories()
            .subscribers
            .get(s.id)
            .await
            .expect("read back");
        assert!(!db.active, "{} not recorded in the reopened database", s.username);
    }
    reopened.close().await;
    eprintln!(
        "scenario 8: tmpfs of 6 MiB filled ({} KiB of filler) for {:.1} s while 6 subscribers expired: \
         nothing recorded meanwhile, {warned} log line(s) and /api/health named \"{FULL}\", the 6 earlier \
         expiries intact; space back: all 6 recorded {:.1} s later, none early; the file reopens with every row",
        filled / 1024,
        full_for.num_milliseconds() as f64 / 1000.0,
        (caught_up_at - freed).num_milliseconds() as f64 / 1000.0,
    );
    d.stop().await;
    storage.close().await;
}
