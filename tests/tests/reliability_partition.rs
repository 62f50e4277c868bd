//! Reliability scenario 9: the network to PostgreSQL is partitioned in the
//! middle of a transaction, then heals.
//!
//! The in-process daemon (real watcher, disconnect-expired every second,
//! `[storage] statement_timeout = "2s"`, `lock_timeout = "1s"`) reaches a
//! throwaway PostgreSQL through [`PartitionProxy`], with two simulated
//! routers. The partition starts right after the daemon sends the statement
//! that records expiries (inside its transaction: the server has run it and
//! holds its row locks, the answer waits in the proxy), and lasts 6 s (three
//! statement timeouts) while more subscribers expire. Nothing is closed:
//! bytes wait, as TCP retransmits them, and flow again when it heals.
//!
//! Checked: while partitioned, a direct connection sees none of the
//! transaction's writes (nothing is done that the database did not commit)
//! and no expiry recorded; the daemon keeps running; after the heal every
//! expiry is recorded within `statement_timeout` + 3 s, none before its
//! `paid_until`; each session was removed exactly once on its router (no work
//! done twice) and every recorded subscriber is off its router.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use isp_adapters_sql::SqlStore;
use isp_core::domain::TenantId;
use isp_core::memory::RecordingSms;
use isp_core::ports::Repositories;
use isp_tests::reliability::partition::PartitionProxy;
use isp_tests::reliability::pg::{skip_or_fail, Pg};
use isp_tests::reliability::world::{add_subscriber, sessions_of, Fleet, Layout, SubPlan};
use ispd::daemon::{self, Daemon};

const PASSWORD: &str = "partition-router-pw";
const TOKEN: &str = "partition-token-0123456789abcdef";
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);

async fn recorded(repos: &Repositories, s: &SubPlan) -> Option<DateTime<Utc>> {
    let db = repos.subscribers.get(s.id).await.expect("read subscriber");
    (!db.active).then_some(db.disconnected_at).flatten()
}

fn session_removals(fleet: &Fleet, s: &SubPlan) -> Vec<DateTime<Utc>> {
    fleet.handles[s.routers[0]]
        .removals()
        .into_iter()
        .filter(|r| r.menu == "/ip/hotspot/active" && r.row.get("user") == Some(&s.username))
        .map(|r| r.at.into())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_mid_transaction_does_nothing_twice_and_the_daemon_recovers() {
    partition_mid_transaction(Heal::All).await;
}

/// The old connections stay black-holed after the partition (a firewall lost
/// their state): only the engine's `run_timeout` and the bounded ping on
/// release free the daemon, whose new connections work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_that_loses_the_old_connections_frees_the_daemon_after_its_run_timeout() {
    partition_mid_transaction(Heal::NewConnectionsOnly).await;
}

/// How the partition ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heal {
    /// Everything held flows again.
    All,
    /// New connections work; the old ones never answer again.
    NewConnectionsOnly,
}

/// The engine's `run_timeout` in the run that loses its connections.
const RUN_TIMEOUT: Duration = Duration::from_secs(4);
/// sqlx's `acquire_timeout` in these runs.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

async fn partition_mid_transaction(heal: Heal) {
    let pg = match Pg::start() {
        Ok(pg) => pg,
        Err(reason) => return skip_or_fail(&reason),
    };
    let direct_url = pg.url();
    let port: u16 = direct_url
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("the cluster's port");
    let proxy = PartitionProxy::start(([127, 0, 0, 1], port).into())
        .await
        .expect("proxy starts");
    let proxied_url = format!("postgres://postgres@{}/postgres", proxy.addr());

    let tz: Tz = chrono_tz::Africa::Dar_es_Salaam;
    let fleet = Fleet::start(2, PASSWORD, false, 9).await;
    let layout = Layout::even(1, 2, tz);
    let store = SqlStore::connect_postgres(&direct_url).await.expect("postgres");
    store.migrate().await.expect("migrate");
    let repos = store.repositories();

    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("router.password"), PASSWORD).expect("password");
    std::fs::write(dir.path().join("admin.token"), TOKEN).expect("token");
    let mut text = format!(
        r#"
[storage]
url = "{proxied_url}"
max_connections = 4
acquire_timeout = "{acq}s"
auto_migrate = false
statement_timeout = "{st}s"
lock_timeout = "1s"

[admin]
listen = "127.0.0.1:0"
token_file = "admin.token"

[engine]
retry_base = "1s"
retry_max = "2s"
lease_ttl = "3s"
run_timeout = "{rt}"

[scheduler]
watcher_max_sleep = "1s"
watcher_min_sleep = "200ms"
shutdown_grace = "2s"

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
"#,
        st = STATEMENT_TIMEOUT.as_secs(),
        acq = ACQUIRE_TIMEOUT.as_secs(),
        rt = match heal {
            Heal::All => "5m".to_owned(),
            Heal::NewConnectionsOnly => format!("{}s", RUN_TIMEOUT.as_secs()),
        },
        tz = tz.name(),
    );
    for i in 0..2 {
        text.push_str(&format!(
            "\n[[tenants.routers]]\nid = {}\nname = \"R{}\"\naddress = \"{}\"\nusername = \"isp\"\npassword_file = \"router.password\"\n",
            i + 1,
            i + 1,
            fleet.address(i)
        ));
    }
    let path = dir.path().join("ispd.toml");
    std::fs::write(&path, &text).expect("config");
    let config = ispd::config::load_file(&path, &HashMap::new()).expect("config loads");
    assert_eq!(config.storage.statement_timeout, STATEMENT_TIMEOUT);
    let (mut wiring, storage) = daemon::wire(&config, false).await.expect("wiring");
    wiring.sms = Arc::new(RecordingSms::new());
    daemon::apply_config(&config, &wiring.repos)
        .await
        .expect("apply config");
    layout.seed(&repos).await;

    let t0 = Utc::now();
    let mut subs = Vec::new();
    for n in 0..12 {
        let paid_until = t0 + chrono::Duration::milliseconds(2_500 + 600 * n as i64);
        subs.push(add_subscriber(&repos, &fleet, &layout, TenantId(1), n, paid_until, &[n % 2], t0).await);
    }
    // The first statement recording expiries starts the partition.
    proxy.partition_after(b"UPDATE subscribers SET active = FALSE");
    let d = Daemon::start(&config, wiring).await.expect("daemon starts");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !proxy.partitioned() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no expiry was recorded through the proxy in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let partitioned_at = Utc::now();
    // Mid-transaction: the server ran the statement; nothing is committed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seen_done = Vec::new();
    let partition_for = STATEMENT_TIMEOUT * 3;
    let partition_end = tokio::time::Instant::now() + partition_for;
    while tokio::time::Instant::now() < partition_end {
        for s in &subs {
            if let Some(at) = recorded(&repos, s).await {
                seen_done.push(format!("{} at {at}", s.username));
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        seen_done.is_empty(),
        "recorded while the network was partitioned (not committed by the daemon): {seen_done:?}"
    );
    let expired_meanwhile = subs
        .iter()
        .filter(|s| s.paid_until > partitioned_at && s.paid_until < Utc::now())
        .count();
    let api = format!("http://{}/metrics", d.api_addr().expect("API"));
    // /metrics reads no database: the daemon itself answers.
    let alive = reqwest::Client::new()
        .get(&api)
        .bearer_auth(TOKEN)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .is_ok();
    assert!(alive, "the daemon's API did not answer during the partition");
    let connections_before_heal = proxy.connections();
    match heal {
        Heal::All => proxy.heal(),
        Heal::NewConnectionsOnly => proxy.heal_losing_old_connections(),
    }
    let healed = tokio::time::Instant::now();
    let healed_at = Utc::now();

    let last_due = subs.iter().map(|s| s.paid_until).max().expect("subs");
    // Losing its connections, the daemon waits out its stuck run
    // (`run_timeout`), then each lost connection costs at most a bounded ping
    // on release or an `acquire_timeout` before new ones are made.
    let allowed = match heal {
        Heal::All => STATEMENT_TIMEOUT + Duration::from_secs(3),
        Heal::NewConnectionsOnly => {
            RUN_TIMEOUT + (STATEMENT_TIMEOUT + ACQUIRE_TIMEOUT) * 4 + Duration::from_secs(3)
        }
    };
    let deadline = healed + allowed;
    let recovered_in = loop {
        let mut all = true;
        for s in &subs {
            all &= recorded(&repos, s).await.is_some();
        }
        let off = subs
            .iter()
            .all(|s| sessions_of(&fleet.handles[s.routers[0]], &s.username) == 0);
        if all && off {
            break healed.elapsed();
        }
        if tokio::time::Instant::now() > deadline && Utc::now() > last_due + chrono::Duration::seconds(3) {
            let mut pending = Vec::new();
            for s in &subs {
                if recorded(&repos, s).await.is_none() {
                    pending.push(s.username.clone());
                }
            }
            panic!(
                "not recovered {:.1} s after the partition healed ({heal:?}; statement_timeout {} s, allowed {} s): \
                 pending {pending:?}",
                healed.elapsed().as_secs_f64(),
                STATEMENT_TIMEOUT.as_secs(),
                allowed.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for s in &subs {
        let removals = session_removals(&fleet, s);
        assert_eq!(
            removals.len(),
            1,
            "{}: session removed {} times",
            s.username,
            removals.len()
        );
        assert!(removals[0] >= s.paid_until, "{} cut off early", s.username);
        let at = recorded(&repos, s).await.expect("recorded");
        assert!(at >= s.paid_until, "{} recorded before paid_until", s.username);
    }
    if heal == Heal::NewConnectionsOnly {
        assert!(
            proxy.connections() > connections_before_heal,
            "recovered without a new connection, yet every old one was black-holed"
        );
    }
    eprintln!(
        "scenario 9 ({heal:?}): partitioned mid-transaction for {:.1} s ({} statement timeouts) while \
         {expired_meanwhile} subscribers expired: nothing recorded meanwhile, the daemon answered; healed at \
         {healed_at}: all {} expiries recorded and off their routers {:.1} s later, each session removed once, \
         none early; {} connections through the proxy ({connections_before_heal} before the heal)",
        partition_for.as_secs_f64(),
        partition_for.as_secs() / STATEMENT_TIMEOUT.as_secs(),
        subs.len(),
        recovered_in.as_secs_f64(),
        proxy.connections(),
    );
    d.stop().await;
    storage.close().await;
    store.close().await;
}
