//! Reliability scenario 2: crashes (promises 1, 3 and 4 across SIGKILL) and a
//! database that goes away.
//!
//! - The real `ispd` binary (`ispd run`), on one SQLite file, with simulated
//!   routers and a local SMS gateway, is killed with SIGKILL at seeded random
//!   moments (at least 20 times) while its sweeps, provisioning, billing
//!   catch-up and notices run every second, and restarted each time. Subscribers
//!   expire throughout; services with months of unbilled periods arrive
//!   between kills. Afterwards: every expired subscriber is off every router
//!   of its tenant and recorded so (no lost removal), none was cut off before
//!   `paid_until`, every period of every service is charged exactly once, every
//!   secret was added to its router at most once, and each subscriber's
//!   expiry notice and warning (per kind) reached the gateway exactly once,
//!   except a notice that was in flight at a kill (leased by the killed
//!   process, seen right after the kill), which reaches it at most once.
//! - `ispd run` on PostgreSQL: the server is stopped for five seconds while
//!   subscribers expire, then started again: the daemon keeps running, and
//!   every expiry due during the outage is enforced, recorded and notified
//!   after the database returned, each exactly once (one session removal,
//!   one SMS at the gateway).
//!
//! `ISP_SEED=<n>` replays other kill moments; `ISP_SOAK=1` kills 200 times.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use isp_adapters_sql::SqlStore;
use isp_core::domain::{LedgerKind, NoticeId, NoticeKind, NoticeStatus, ServiceStatus, TenantId};
use isp_core::policy::time::local_date;
use isp_core::ports::{Repositories, RETRY_HOLDER};
use isp_tests::reliability::pg::{skip_or_fail, Pg};
use isp_tests::reliability::process::{run_ispd, Ispd};
use isp_tests::reliability::sms_server::SmsGateway;
use isp_tests::reliability::world::{
    add_service, add_subscriber, period_starts, sessions_of, user_disabled, Fleet, Layout, SubPlan, SvcPlan,
};
use isp_tests::reliability::{seed, soak};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PASSWORD: &str = "crash-router-pw";
const SMS_KEY: &str = "crash-sms-key-1234";

fn config(db_url: &str, fleet: &Fleet, layout: &Layout, sms: &SmsGateway) -> String {
    let mut s = format!(
        r#"
[storage]
url = "{db_url}"
auto_migrate = true

[engine]
lease_ttl = "2s"
retry_base = "1s"
retry_max = "2s"
batch_size = 25

[scheduler]
watcher_max_sleep = "1s"
watcher_min_sleep = "200ms"
shutdown_grace = "2s"

[schedules]
disconnect-expired = "* * * * * *"
warn-before-expiry = "* * * * * *"
provision-services = "* * * * * *"
monthly-billing = "* * * * * *"
sync-routers = "*/2 * * * * *"
router-health = "*/5 * * * * *"
expire-vouchers = "off"
payment-reminders = "off"
device-cleanup = "off"
log-retention = "off"

{sms}
"#,
        sms = sms.config_toml("CRASH_SMS_KEY")
    );
    for (t, tz, routers) in &layout.tenants {
        s.push_str(&format!(
            "\n[[tenants]]\nid = {}\nslug = \"tenant-{}\"\ntime_zone = \"{}\"\n",
            t.0,
            t.0,
            tz.name()
        ));
        for &i in routers {
            s.push_str(&format!(
                "\n[[tenants.routers]]\nid = {}\nname = \"R{}\"\naddress = \"{}\"\nusername = \"isp\"\npassword_env = \"CRASH_ROUTER_PW\"\n",
                i + 1,
                i + 1,
                fleet.address(i)
            ));
        }
    }
    s
}

const ENV: [(&str, &str); 3] = [
    ("CRASH_SMS_KEY", SMS_KEY),
    ("CRASH_ROUTER_PW", PASSWORD),
    ("RUST_LOG", "info"),
];

/// The charges recorded for a service, by period start.
async fn charges(repos: &Repositories, svc: &SvcPlan) -> Vec<NaiveDate> {
    repos
        .ledger
        .of_service(svc.id)
        .await
        .expect("ledger")
        .into_iter()
        .filter(|e| e.kind == LedgerKind::Charge)
        .filter_map(|e| e.period_start)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_moments_loses_nothing_and_repeats_nothing() {
    let seed = seed(0x5CE4_0002);
    let mut rng = StdRng::seed_from_u64(seed);
    let kills: usize = if soak() { 200 } else { 22 };
    let tz: Tz = chrono_tz::Africa::Dar_es_Salaam;
    let fleet = Fleet::start(3, PASSWORD, false, seed).await;
    let layout = Layout {
        tenants: vec![(TenantId(1), tz, vec![0, 1]), (TenantId(2), tz, vec![2])],
    };
    let sms = SmsGateway::start(SMS_KEY).await;
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("crash.db");
    let cfg = dir.path().join("ispd.toml");
    std::fs::write(
        &cfg,
        config(&format!("sqlite://{}", db.display()), &fleet, &layout, &sms),
    )
    .expect("config");
    let cfg = cfg.to_str().expect("utf-8").to_owned();
    let (code, out, err) = run_ispd(
        &["migrate", "--config", &cfg],
        dir.path(),
        &ENV,
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "migrate: {out}{err}");

    let store = SqlStore::connect_sqlite(&db).await.expect("sqlite");
    let repos = store.repositories();
    let plans = layout.seed(&repos).await;
    let t0 = Utc::now();
    let spread_ms = (kills as i64 * 900).max(20_000);
    let mut subs: Vec<SubPlan> = Vec::new();
    for n in 0..48 {
        let tenant = TenantId(1 + (n % 2) as i64);
        let routers = layout.routers_of(tenant).to_vec();
        let on = [routers[n % routers.len()]];
        let paid_until = t0 + chrono::Duration::milliseconds(2_000 + spread_ms * n as i64 / 48);
        subs.push(add_subscriber(&repos, &fleet, &layout, tenant, n, paid_until, &on, t0).await);
    }
    // Services arrive in four batches, each owing 2 to 6 monthly periods.
    let today = local_date(t0, tz);
    let mut services: Vec<(SvcPlan, Vec<NaiveDate>)> = Vec::new();
    let mut batches: BTreeMap<usize, Vec<(TenantId, usize, usize, NaiveDate)>> = BTreeMap::new();
    for b in 0..4 {
        for j in 0..10 {
            let n = b * 10 + j;
            let tenant = TenantId(1 + (n % 2) as i64);
            let routers = layout.routers_of(tenant);
            let router = routers[n % routers.len()];
            let months = rng.gen_range(1..6);
            let day = rng.gen_range(1..=31u32).min(28);
            let first = NaiveDate::from_ymd_opt(today.year(), today.month(), day)
                .expect("date")
                .checked_sub_months(chrono::Months::new(months))
                .expect("months");
            batches
                .entry(b * (kills / 4))
                .or_default()
                .push((tenant, router, n, first));
        }
    }

    let mut log = String::new();
    let mut killed_at = Vec::new();
    let mut in_flight_at_kill: BTreeMap<NoticeId, usize> = BTreeMap::new();
    for k in 0..=kills {
        for (tenant, router, n, first) in batches.remove(&k).unwrap_or_default() {
            let svc = add_service(
                &repos,
                tenant,
                plans[&tenant],
                router,
                n,
                ServiceStatus::Active,
                today + chrono::Duration::days(20),
                first,
            )
            .await;
            services.push((svc, period_starts(first.day(), first, today)));
        }
        let d = Ispd::start(
            &["--log-format", "json", "run", "--config", &cfg],
            dir.path(),
            &ENV,
        );
        if k == kills {
            // The last one runs until everything is done.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let now = Utc::now();
                let mut waiting: Vec<String> = Vec::new();
                if now <= subs.iter().map(|s| s.paid_until).max().expect("subs") {
                    waiting.push("the last expiry is still ahead".to_owned());
                }
                for s in &subs {
                    let active = repos.subscribers.get(s.id).await.expect("sub").active;
                    if active != (s.paid_until > now) {
                        waiting.push(format!(
                            "subscriber {} active={active}, paid until {}",
                            s.username, s.paid_until
                        ));
                    }
                }
                for (svc, want) in &services {
                    let got = charges(&repos, svc).await;
                    if got.len() != want.len() {
                        waiting.push(format!(
                            "service {:?}: charged {got:?}, expected {want:?}",
                            svc.id
                        ));
                    }
                    if !repos.services.get(svc.id).await.expect("svc").provisioned {
                        waiting.push(format!("service {:?} not provisioned", svc.id));
                    }
                }
                for s in subs.iter().filter(|s| s.paid_until <= now) {
                    let n = repos
                        .notices
                        .find(&s.phone, NoticeKind::HotspotExpired, s.paid_until, "")
                        .await
                        .expect("notice");
                    if !n.as_ref().is_some_and(|n| n.status != NoticeStatus::Pending) {
                        waiting.push(format!("expiry notice of {}: {n:?}", s.username));
                    }
                    let w = repos
                        .notices
                        .find(&s.phone, NoticeKind::HotspotExpiresSoon, s.paid_until, "")
                        .await
                        .expect("notice");
                    if w.as_ref().is_some_and(|w| w.status == NoticeStatus::Pending) {
                        waiting.push(format!("warning of {}: {w:?}", s.username));
                    }
                }
                if waiting.is_empty() {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "not caught up 60 s after the last restart; waiting for:\n{}\nlast log lines:\n{}",
                    waiting.join("\n"),
                    d.stderr().lines().rev().take(30).collect::<Vec<_>>().join("\n")
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(150..1500))).await;
            killed_at.push(Utc::now());
        }
        let (_, stderr) = d.kill();
        log.push_str(&stderr);
        // The process is gone: a pending notice under a sender's lease now is
        // exactly one that was in flight at this kill.
        for s in &subs {
            for kind in [NoticeKind::HotspotExpired, NoticeKind::HotspotExpiresSoon] {
                if let Some(n) = repos
                    .notices
                    .find(&s.phone, kind, s.paid_until, "")
                    .await
                    .expect("notice")
                {
                    if n.status == NoticeStatus::Pending
                        && n.lease.as_ref().is_some_and(|l| l.holder != RETRY_HOLDER)
                    {
                        in_flight_at_kill.insert(n.id, k);
                    }
                }
            }
        }
    }
    assert!(
        log.contains("job finished"),
        "the daemons never finished a job:\n{log}"
    );

    // No lost removal, none early.
    let end = Utc::now();
    let mut removals = 0;
    for s in &subs {
        let db = repos.subscribers.get(s.id).await.expect("sub");
        assert!(
            !db.active && db.disconnected_at.is_some(),
            "not disconnected: {db:?}"
        );
        for &r in layout.routers_of(s.tenant) {
            let h = &fleet.handles[r];
            assert_eq!(
                sessions_of(h, &s.username),
                0,
                "R{} still has {}",
                r + 1,
                s.username
            );
            assert_eq!(
                user_disabled(h, &s.username),
                Some(true),
                "R{}: {} enabled",
                r + 1,
                s.username
            );
            for rm in h.removals() {
                if rm.menu == "/ip/hotspot/active" && rm.row.get("user") == Some(&s.username) {
                    let at: chrono::DateTime<Utc> = rm.at.into();
                    assert!(
                        at >= s.paid_until,
                        "{} cut off at {at}, paid until {}",
                        s.username,
                        s.paid_until
                    );
                    removals += 1;
                }
            }
        }
    }
    assert_eq!(removals, subs.len(), "one session per subscriber was removed");
    // Every period charged exactly once; every secret added at most once.
    let mut charged = 0;
    for (svc, want) in &services {
        let got = charges(&repos, svc).await;
        assert_eq!(&got, want, "charges of service {}", svc.id);
        charged += got.len();
        let h = &fleet.handles[svc.router];
        let (menu, attr) = if svc.static_ip {
            ("/ip/firewall/address-list/add", "address")
        } else {
            ("/ppp/secret/add", "name")
        };
        let adds = h
            .command_log()
            .iter()
            .filter(|c| c.command == menu && c.attributes.iter().any(|(k, v)| k == attr && *v == svc.key))
            .count();
        assert_eq!(
            adds,
            1,
            "service {} added {adds} times on R{}",
            svc.id,
            svc.router + 1
        );
    }
    // At most one SMS per message; every notice recorded sent reached the gateway.
    let counts = sms.counts();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "SMS delivered more than once: {twice:?}");
    // Per subscriber and per kind: sent and at the gateway once, or lost only
    // because it was the notice in flight at a kill (then at most once).
    let (mut sent, mut lost, mut warnings) = (0, Vec::new(), 0);
    for s in &subs {
        for kind in [NoticeKind::HotspotExpired, NoticeKind::HotspotExpiresSoon] {
            let n = repos
                .notices
                .find(&s.phone, kind, s.paid_until, "")
                .await
                .expect("notice");
            let Some(n) = n else {
                // A warning is skipped when its hour had passed at the first look.
                assert!(
                    kind == NoticeKind::HotspotExpiresSoon,
                    "{}: no expiry notice at all",
                    s.username
                );
                continue;
            };
            if kind == NoticeKind::HotspotExpiresSoon {
                warnings += 1;
            }
            let at_gateway = counts
                .get(&(n.recipient.to_string(), n.body.clone()))
                .copied()
                .unwrap_or(0);
            match n.status {
                NoticeStatus::Sent => {
                    sent += 1;
                    assert_eq!(
                        at_gateway, 1,
                        "notice {} ({kind:?} of {}) recorded sent, gateway got it {at_gateway} times",
                        n.id, s.username
                    );
                }
                NoticeStatus::Abandoned | NoticeStatus::Unknown => {
                    let Some(k) = in_flight_at_kill.get(&n.id) else {
                        panic!(
                            "{kind:?} notice of {} is {:?} but was not in flight at any kill \
                             (gateway got it {at_gateway} times): {n:?}",
                            s.username, n.status
                        );
                    };
                    assert!(
                        at_gateway <= 1,
                        "notice {} at the gateway {at_gateway} times",
                        n.id
                    );
                    lost.push(format!(
                        "{kind:?} of {} at kill {k} ({at_gateway} at gateway)",
                        s.username
                    ));
                }
                NoticeStatus::Pending => panic!("{kind:?} notice of {} still pending: {n:?}", s.username),
            }
        }
    }
    assert_eq!(
        sent + lost.len(),
        subs.len() + warnings,
        "every notice is accounted for"
    );
    eprintln!(
        "scenario 2 kills (seed {seed:#x}): {kills} SIGKILLs at random moments over {:.0} s, then one clean run; \
         {} subscribers expired and removed from every router ({removals} sessions, none early), {} services \
         provisioned once each, {charged} periods charged exactly once, {} SMS at the gateway (none twice; {sent} \
         notices sent, {} lost, each the one in flight at a kill: {lost:?})",
        (end - t0).num_milliseconds() as f64 / 1000.0,
        subs.len(),
        services.len(),
        counts.values().sum::<usize>(),
        lost.len(),
    );
    store.close().await;
    drop(killed_at);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_and_started_the_daemon_keeps_running_and_catches_up() {
    let pg = match Pg::start() {
        Ok(pg) => pg,
        Err(reason) => return skip_or_fail(&reason),
    };
    let tz: Tz = chrono_tz::Africa::Dar_es_Salaam;
    let fleet = Fleet::start(2, PASSWORD, false, 22).await;
    let layout = Layout::even(1, 2, tz);
    let sms = SmsGateway::start(SMS_KEY).await;
    let dir = tempfile::tempdir().expect("dir");
    let cfg = dir.path().join("ispd.toml");
    std::fs::write(&cfg, config(&pg.url(), &fleet, &layout, &sms)).expect("config");
    let cfg = cfg.to_str().expect("utf-8").to_owned();
    let (code, out, err) = run_ispd(
        &["migrate", "--config", &cfg],
        dir.path(),
        &ENV,
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "migrate: {out}{err}");
    let store = SqlStore::connect_postgres(&pg.url()).await.expect("postgres");
    let repos = store.repositories();
    layout.seed(&repos).await;
    let t0 = Utc::now();
    let mut subs = Vec::new();
    for n in 0..12 {
        let paid_until = t0 + chrono::Duration::milliseconds(3_000 + 700 * n as i64);
        subs.push(add_subscriber(&repos, &fleet, &layout, TenantId(1), n, paid_until, &[n % 2], t0).await);
    }
    let mut d = Ispd::start(
        &["--log-format", "json", "run", "--config", &cfg],
        dir.path(),
        &ENV,
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    pg.stop().expect("stop postgres");
    let stopped = Utc::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        d.running(),
        "the daemon exited while the database was down:\n{}",
        d.stderr()
    );
    // Subscribers expired meanwhile; the routers still hold them (no work without the database).
    let expired_meanwhile = subs
        .iter()
        .filter(|s| s.paid_until > stopped && s.paid_until < Utc::now())
        .count();
    // Before this call the database is certainly down; it may already take
    // connections before the call returns.
    let restarting = Utc::now();
    pg.start_again().expect("start postgres");
    let restarted = Utc::now();
    let mut caught_up = None;
    for _ in 0..150 {
        let now = Utc::now();
        let mut all = true;
        for s in &subs {
            let gone = sessions_of(&fleet.handles[s.routers[0]], &s.username) == 0;
            all &= gone == (s.paid_until <= now);
            if gone {
                let rm = fleet.handles[s.routers[0]]
                    .removals()
                    .into_iter()
                    .find(|r| r.row.get("user") == Some(&s.username))
                    .expect("removal");
                let at: chrono::DateTime<Utc> = rm.at.into();
                assert!(at >= s.paid_until, "{} cut off early", s.username);
            }
        }
        let mut recorded = true;
        for s in subs.iter().filter(|s| s.paid_until <= now) {
            recorded &= repos
                .subscribers
                .get(s.id)
                .await
                .is_ok_and(|db| !db.active && db.disconnected_at.is_some());
        }
        for s in subs.iter().filter(|s| s.paid_until <= now) {
            recorded &= repos
                .notices
                .find(&s.phone, NoticeKind::HotspotExpired, s.paid_until, "")
                .await
                .is_ok_and(|n| n.is_some_and(|n| n.status == NoticeStatus::Sent));
        }
        if all && recorded && now > subs.iter().map(|s| s.paid_until).max().expect("subs") {
            caught_up = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        d.running(),
        "the daemon exited after the database came back:\n{}",
        d.stderr()
    );
    let caught_up =
        caught_up.unwrap_or_else(|| panic!("not caught up 30 s after PostgreSQL came back:\n{}", d.stderr()));
    let _ = d.kill();
    // The work of the outage was done once the database was back, and once:
    // one session removal, one recorded disconnection and one SMS each.
    let counts = sms.counts();
    let mut due_in_outage = 0;
    for s in &subs {
        let removals: Vec<chrono::DateTime<Utc>> = fleet.handles[s.routers[0]]
            .removals()
            .into_iter()
            .filter(|r| r.menu == "/ip/hotspot/active" && r.row.get("user") == Some(&s.username))
            .map(|r| r.at.into())
            .collect();
        assert_eq!(
            removals.len(),
            1,
            "{}: session removed {} times",
            s.username,
            removals.len()
        );
        let db = repos.subscribers.get(s.id).await.expect("subscriber");
        let notice = repos
            .notices
            .find(&s.phone, NoticeKind::HotspotExpired, s.paid_until, "")
            .await
            .expect("notice")
            .expect("expiry notice");
        let at_gateway = counts
            .get(&(notice.recipient.to_string(), notice.body.clone()))
            .copied()
            .unwrap_or(0);
        assert_eq!(
            at_gateway, 1,
            "{}: expiry SMS reached the gateway {at_gateway} times",
            s.username
        );
        if s.paid_until > stopped && s.paid_until < restarting {
            due_in_outage += 1;
            assert!(
                removals[0] >= restarting,
                "{} was removed at {} while the database was down (it was started again at {restarting})",
                s.username,
                removals[0]
            );
            let recorded = db.disconnected_at.expect("recorded disconnected");
            assert!(
                recorded >= restarting,
                "{} recorded disconnected at {recorded}, before the database came back at {restarting}",
                s.username
            );
            let sent = notice.sent_at.expect("sent_at");
            assert!(
                sent >= restarting,
                "{}: expiry SMS sent at {sent}, before the database came back at {restarting}",
                s.username
            );
        }
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "SMS delivered more than once: {twice:?}");
    assert!(
        expired_meanwhile >= 3 && due_in_outage >= expired_meanwhile,
        "only {expired_meanwhile} expiries during the outage ({due_in_outage} before the restart)"
    );
    eprintln!(
        "scenario 2 database: PostgreSQL down 5 s; the daemon kept running; {expired_meanwhile} subscribers expired \
         during the outage; all {} expiries enforced and recorded {:.1} s after the database came back, none early",
        subs.len(),
        (caught_up - restarted).num_milliseconds() as f64 / 1000.0
    );
    store.close().await;
}
