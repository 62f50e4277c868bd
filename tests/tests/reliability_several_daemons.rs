//! Reliability scenario 3: several daemons on one database (promise 7, with
//! promises 3 and 4 as the measure).
//!
//! Three engines, each with its own connection pool, RouterOS driver and
//! claimant id, run the claim-based jobs (disconnect-expired,
//! warn-before-expiry, provision-services, monthly-billing) in loops at
//! jittered intervals on the same workload: once on one PostgreSQL, once on
//! one MariaDB (a throwaway server from isp-testsupport, or
//! `ISP_TEST_MYSQL_URL`), once on one MongoDB-protocol server (nx-27017, or
//! `MONGODB_URL`). Counted at the
//! simulated routers and at the SMS gateway: every hotspot user is disabled
//! exactly once per router, every secret and address-list entry added exactly
//! once, every period charged exactly once (and no engine even tried a period
//! another had charged), every SMS delivered exactly once; and the work was
//! shared (each engine did some).
//!
//! Router sync is left out on purpose: it is reconciliation, idempotent, and
//! not claim-based (every daemon reads and corrects every router; see
//! RELIABILITY.md).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use isp_core::domain::{LedgerKind, ServiceStatus, TenantId};
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, JobKind, RunOptions};
use isp_core::memory::StaticDirectory;
use isp_core::policy::time::local_date;
use isp_core::ports::{Repositories, SmsSender};
use isp_tests::reliability::pg::{skip_or_fail, Pg};
use isp_tests::reliability::sms_server::SmsGateway;
use isp_tests::reliability::world::{
    add_service, add_subscriber, fast_driver, period_starts, sessions_of, user_disabled, Fleet, Layout,
    SubPlan, SvcPlan,
};
use isp_tests::reliability::{mongo, seed, soak};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PASSWORD: &str = "several-router-pw";
const SMS_KEY: &str = "several-sms-key";
const DAEMONS: usize = 3;

fn sms_sender(gw: &SmsGateway) -> Arc<dyn SmsSender> {
    let config: isp_sms::SmsGatewayConfig = serde_json::from_value(serde_json::json!({
        "kind": "webhook",
        "url": gw.url(),
        "body": "{\"to\":\"{to}\",\"message\":\"{message}\"}",
        "headers": { "X-Api-Key": SMS_KEY },
        "http": { "timeout_secs": 5.0, "max_retries": 0 }
    }))
    .expect("sms config");
    config.build().expect("sms sender")
}

/// Whether every expiry is recorded, every service provisioned and charged,
/// and no expiry notice is still pending.
async fn all_done(repos: &Repositories, subs: &[SubPlan], services: &[(SvcPlan, Vec<NaiveDate>)]) -> bool {
    let now = Utc::now();
    for s in subs {
        if s.paid_until > now {
            return false;
        }
        match repos.subscribers.get(s.id).await {
            Ok(db) if !db.active && db.disconnected_at.is_some() => {}
            _ => return false,
        }
        let notice = repos
            .notices
            .find(
                &s.phone,
                isp_core::domain::NoticeKind::HotspotExpired,
                s.paid_until,
                "",
            )
            .await;
        if !matches!(notice, Ok(Some(n)) if n.status != isp_core::domain::NoticeStatus::Pending) {
            return false;
        }
    }
    for (svc, want) in services {
        match repos.services.get(svc.id).await {
            Ok(db) if db.provisioned => {}
            _ => return false,
        }
        match repos.ledger.of_service(svc.id).await {
            Ok(l) if l.iter().filter(|e| e.kind == LedgerKind::Charge).count() >= want.len() => {}
            _ => return false,
        }
    }
    true
}

/// How hard the daemons are pushed.
#[derive(Debug, Clone, Copy)]
struct Pace {
    /// The engines' claim lease (`None`: the default, 120 s).
    lease_ttl: Option<Duration>,
    /// Delay before every router reply.
    router_latency: Duration,
    /// Concurrent commands per router (`None`: the default).
    router_concurrency: Option<usize>,
    /// At least one lease must run out mid-work and be taken over.
    takeovers: bool,
}

/// The default pace: long leases, fast routers (no takeover).
const CALM: Pace = Pace {
    lease_ttl: None,
    router_latency: Duration::ZERO,
    router_concurrency: None,
    takeovers: false,
};

/// Runs the scenario on `stores` (one `Repositories` per daemon, all on the same database).
async fn several_daemons(backend: &str, stores: Vec<Repositories>) {
    several_daemons_at(backend, stores, CALM).await;
}

/// Runs the scenario on `stores` at `pace`.
async fn several_daemons_at(backend: &str, stores: Vec<Repositories>, pace: Pace) {
    let seed = seed(0x5CE4_0003);
    let mut rng = StdRng::seed_from_u64(seed);
    let tz: Tz = chrono_tz::Africa::Dar_es_Salaam;
    let fleet = Fleet::start(6, PASSWORD, false, seed).await;
    for h in &fleet.handles {
        h.set_latency(pace.router_latency);
    }
    let layout = Layout::even(2, 3, tz);
    let gw = SmsGateway::start(SMS_KEY).await;
    let repos = stores[0].clone();
    let plans = layout.seed(&repos).await;

    let t0 = Utc::now();
    let n_subs = if soak() { 300 } else { 60 };
    let mut subs: Vec<SubPlan> = Vec::new();
    for n in 0..n_subs {
        let tenant = TenantId(1 + (n % 2) as i64);
        let routers = layout.routers_of(tenant).to_vec();
        let on = [routers[n % 3], routers[(n + 1) % 3]];
        // Whole seconds: nx-27017 compares dates at second granularity (a
        // `$lte` on a date matches up to a second early), see RELIABILITY.md.
        let whole = chrono::DateTime::<Utc>::from_timestamp(t0.timestamp(), 0).expect("t0");
        let paid_until = whole + chrono::Duration::seconds(rng.gen_range(3..10));
        subs.push(add_subscriber(&repos, &fleet, &layout, tenant, n, paid_until, &on, t0).await);
    }
    let today = local_date(t0, tz);
    let mut services: Vec<(SvcPlan, Vec<NaiveDate>)> = Vec::new();
    for n in 0..40 {
        let tenant = TenantId(1 + (n % 2) as i64);
        let router = layout.routers_of(tenant)[n % 3];
        let day = rng.gen_range(1..=28u32);
        let first = NaiveDate::from_ymd_opt(today.year(), today.month(), day)
            .expect("date")
            .checked_sub_months(chrono::Months::new(rng.gen_range(1..6)))
            .expect("months");
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

    // Three engines, started together, each looping over the claim-based jobs.
    let directory = Arc::new(StaticDirectory::new(layout.routers(&fleet)));
    let started = tokio::time::Instant::now();
    let run_for = Duration::from_secs(if soak() { 60 } else { 11 });
    // Slow routers may need longer: the daemons run at least `run_for`, then
    // until the work is done (bounded).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (i, repos) in stores.into_iter().enumerate() {
        let engine = Engine::new(
            EngineDeps {
                repos,
                directory: directory.clone(),
                driver: fast_driver(),
                sms: sms_sender(&gw),
                clock: Arc::new(isp_core::runtime::SystemClock),
            },
            EngineConfig {
                holder: format!("daemon-{}", (b'a' + i as u8) as char),
                batch_size: 7,
                lease_ttl: pace.lease_ttl.unwrap_or(EngineConfig::default().lease_ttl),
                retry_base: Duration::from_millis(200),
                retry_max: Duration::from_secs(1),
                per_router_concurrency: pace
                    .router_concurrency
                    .unwrap_or(EngineConfig::default().per_router_concurrency),
                ..EngineConfig::default()
            },
        );
        let jitter = seed.wrapping_add(i as u64);
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(jitter);
            let mut totals: BTreeMap<String, u64> = BTreeMap::new();
            let mut failures = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for job in [
                    JobKind::DisconnectExpired,
                    JobKind::WarnBeforeExpiry,
                    JobKind::ProvisionServices,
                    JobKind::MonthlyBilling,
                    JobKind::DeliverNotices,
                ] {
                    match engine.run(job, RunOptions::default()).await {
                        Ok(r) => {
                            for (k, v) in r.counts {
                                *totals.entry(k).or_default() += v;
                            }
                            failures.extend(r.failures.into_iter().map(|f| format!("{job}: {f:?}")));
                        }
                        Err(e) => failures.push(format!("{job}: {e}")),
                    }
                }
                tokio::time::sleep(Duration::from_millis(rng.gen_range(20..200))).await;
            }
            (totals, failures)
        }));
    }
    let limit = run_for + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let elapsed = started.elapsed();
        if elapsed >= limit || (elapsed >= run_for && all_done(&repos, &subs, &services).await) {
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut per_daemon = Vec::new();
    for t in tasks {
        let (totals, failures) = t.await.expect("daemon task");
        assert!(failures.is_empty(), "{backend}: failures: {failures:?}");
        per_daemon.push(totals);
    }

    // Removals: each expired subscriber off every router of its tenant; its user
    // disabled exactly once per router (counted at the router), nobody early.
    let mut disables = 0;
    for s in &subs {
        let db = repos.subscribers.get(s.id).await.expect("sub");
        assert!(!db.active && db.disconnected_at.is_some(), "{backend}: {db:?}");
        for &r in layout.routers_of(s.tenant) {
            let h = &fleet.handles[r];
            assert_eq!(sessions_of(h, &s.username), 0);
            assert_eq!(user_disabled(h, &s.username), Some(true));
            let id = h
                .rows("/ip/hotspot/user")
                .into_iter()
                .find(|row| row.get("name") == Some(&s.username))
                .and_then(|row| row.get(".id").cloned())
                .expect("user id");
            let n = h
                .command_log()
                .iter()
                .filter(|c| {
                    c.command == "/ip/hotspot/user/disable"
                        && c.attributes
                            .iter()
                            .any(|(k, v)| (k == ".id" || k == "numbers") && v.split(',').any(|x| x == id))
                })
                .count();
            assert_eq!(n, 1, "{backend}: {} disabled {n} times on R{}", s.username, r + 1);
            disables += n;
            for rm in h.removals() {
                if rm.menu == "/ip/hotspot/active" && rm.row.get("user") == Some(&s.username) {
                    let at: chrono::DateTime<Utc> = rm.at.into();
                    assert!(at >= s.paid_until, "{backend}: {} cut off early", s.username);
                }
            }
        }
    }
    // Provisioning and charges.
    let mut charged = 0;
    for (svc, want) in &services {
        let got: Vec<NaiveDate> = repos
            .ledger
            .of_service(svc.id)
            .await
            .expect("ledger")
            .into_iter()
            .filter(|e| e.kind == LedgerKind::Charge)
            .filter_map(|e| e.period_start)
            .collect();
        // Charges of one run share their creation time: compare as sets.
        let mut got = got;
        got.sort();
        assert_eq!(&got, want, "{backend}: charges of service {}", svc.id);
        charged += got.len();
        let (menu, attr) = if svc.static_ip {
            ("/ip/firewall/address-list/add", "address")
        } else {
            ("/ppp/secret/add", "name")
        };
        let adds = fleet.handles[svc.router]
            .command_log()
            .iter()
            .filter(|c| c.command == menu && c.attributes.iter().any(|(k, v)| k == attr && *v == svc.key))
            .count();
        assert_eq!(adds, 1, "{backend}: service {} added {adds} times", svc.id);
    }
    let sum = |k: &str| {
        per_daemon
            .iter()
            .map(|t| t.get(k).copied().unwrap_or(0))
            .sum::<u64>()
    };
    assert_eq!(
        sum("charges_created"),
        charged as u64,
        "{backend}: charges created by the engines"
    );
    // A lease that ran out mid-work and was taken over shows in the engine
    // that lost it: its expiry, billing or provision found recorded by
    // another, or a charge found recorded.
    let takeovers = sum("expiry_superseded")
        + sum("billing_superseded")
        + sum("provision_superseded")
        + sum("notices_superseded")
        + sum("charges_already_recorded");
    if pace.takeovers {
        assert!(
            takeovers >= 1,
            "{backend}: no lease was taken over mid-work (lease {:?}, router latency {:?}); engine counts {per_daemon:?}",
            pace.lease_ttl,
            pace.router_latency
        );
    } else {
        assert_eq!(
            sum("charges_already_recorded"),
            0,
            "{backend}: an engine retried a charge another had made"
        );
    }
    assert_eq!(
        sum("users_disconnected"),
        subs.len() as u64,
        "{backend}: disconnects recorded"
    );
    assert_eq!(
        sum("services_provisioned"),
        services.len() as u64,
        "{backend}: provisions recorded"
    );
    // SMS: each delivered once; one expiry notice per subscriber (the warning
    // too, unless its hour had already passed when a daemon first looked).
    let counts = gw.counts();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "{backend}: SMS not delivered exactly once: {twice:?}"
    );
    let expired_text = isp_core::jobs::Templates::default().hotspot_expired;
    let expired = counts.keys().filter(|(_, m)| *m == expired_text).count();
    if expired != subs.len() {
        let mut states = BTreeMap::new();
        for s in &subs {
            let n = repos
                .notices
                .find(
                    &s.phone,
                    isp_core::domain::NoticeKind::HotspotExpired,
                    s.paid_until,
                    "",
                )
                .await
                .expect("notice");
            *states
                .entry(n.map_or("not reserved".to_owned(), |n| {
                    format!("{:?} {:?}", n.status, n.lease)
                }))
                .or_insert(0) += 1;
        }
        panic!(
            "{backend}: {expired} expiry SMS delivered for {} subscribers ({} SMS in all); expiry notices: {states:?}; engine counts {per_daemon:?}",
            subs.len(),
            counts.len()
        );
    }
    assert!(counts.len() > subs.len(), "{backend}: no warnings delivered");
    // The work was shared.
    let shares: Vec<u64> = per_daemon
        .iter()
        .map(|t| {
            t.get("users_disconnected").copied().unwrap_or(0)
                + t.get("charges_created").copied().unwrap_or(0)
                + t.get("services_provisioned").copied().unwrap_or(0)
                + t.get("sms_sent").copied().unwrap_or(0)
        })
        .collect();
    assert!(
        shares.iter().all(|s| *s > 0),
        "{backend}: an engine did nothing: {shares:?}"
    );
    eprintln!(
        "scenario 3 {backend} (seed {seed:#x}, {pace:?}): {DAEMONS} engines, {takeovers} takeovers \
         (expiry {}, billing {}, provision {}, notice {}, charge {}), {:.1} s; {} expiries ({disables} user disables, each once \
         per router), {} services provisioned once, {charged} charges once (0 retried), {} SMS once; work items per \
         engine {shares:?}",
        sum("expiry_superseded"),
        sum("billing_superseded"),
        sum("provision_superseded"),
        sum("notices_superseded"),
        sum("charges_already_recorded"),
        started.elapsed().as_secs_f64(),
        subs.len(),
        services.len(),
        counts.len(),
    );
    fleet.sims.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_daemons_on_one_postgresql_do_everything_exactly_once() {
    let pg = match Pg::start() {
        Ok(pg) => pg,
        Err(reason) => return skip_or_fail(&reason),
    };
    let mut stores = Vec::new();
    for i in 0..DAEMONS {
        let s = isp_adapters_sql::SqlStore::connect_postgres(&pg.url())
            .await
            .expect("postgres");
        if i == 0 {
            s.migrate().await.expect("migrate");
        }
        stores.push(s.repositories());
    }
    several_daemons("PostgreSQL", stores).await;
}

/// Short leases and slow routers: leases run out mid-work and other daemons
/// take the work over; still everything exactly once, because a job renews
/// an item's lease before each router write or SMS send and leaves an item
/// whose lease ran out to its new holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_daemons_on_one_postgresql_with_takeovers_do_everything_exactly_once() {
    let pg = match Pg::start() {
        Ok(pg) => pg,
        Err(reason) => return skip_or_fail(&reason),
    };
    let mut stores = Vec::new();
    for i in 0..DAEMONS {
        let s = isp_adapters_sql::SqlStore::connect_postgres(&pg.url())
            .await
            .expect("postgres");
        if i == 0 {
            s.migrate().await.expect("migrate");
        }
        stores.push(s.repositories());
    }
    several_daemons_at("PostgreSQL (takeovers)", stores, TAKEOVERS).await;
}

/// Leases shorter than a batch of work on slowed routers (one command at a
/// time per router), but longer than one router call: the rule
/// `EngineConfig::check_timeouts` states, under which "exactly once" is
/// promised. Claimed items wait longer than the lease for their turn on a
/// router, so their leases run out and other daemons take them over.
const TAKEOVERS: Pace = Pace {
    lease_ttl: Some(Duration::from_secs(2)),
    router_latency: Duration::from_millis(350),
    router_concurrency: Some(1),
    takeovers: true,
};

/// Three stores on one SQLite file, each with its own pool and file handles:
/// SQLite's locking protocol between them is the one between processes (the
/// unix VFS shares one lock per file inside a process and takes the same
/// POSIX locks across processes), so this is the two-processes-on-one-file
/// case without a process harness.
async fn sqlite_file_stores(dir: &std::path::Path) -> Vec<Repositories> {
    let path = dir.join("isp.db");
    let mut stores = Vec::new();
    for i in 0..DAEMONS {
        let s = isp_adapters_sql::SqlStore::connect_sqlite(&path)
            .await
            .expect("sqlite file");
        if i == 0 {
            s.migrate().await.expect("migrate");
        }
        stores.push(s.repositories());
    }
    stores
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_daemons_on_one_sqlite_file_do_everything_exactly_once() {
    let dir = tempfile::tempdir().expect("dir");
    several_daemons(
        "SQLite (one file, three pools)",
        sqlite_file_stores(dir.path()).await,
    )
    .await;
}

/// As on PostgreSQL: leases run out mid-work and are taken over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_daemons_on_one_sqlite_file_with_takeovers_do_everything_exactly_once() {
    let dir = tempfile::tempdir().expect("dir");
    several_daemons_at(
        "SQLite (one file, three pools, takeovers)",
        sqlite_file_stores(dir.path()).await,
        TAKEOVERS,
    )
    .await;
}

async fn mariadb_stores() -> Option<Vec<Repositories>> {
    let url = isp_testsupport::mariadb::fresh_database().await?;
    let mut stores = Vec::new();
    for i in 0..DAEMONS {
        let s = isp_adapters_sql::SqlStore::connect_mysql(&url)
            .await
            .expect("mariadb");
        if i == 0 {
            s.migrate().await.expect("migrate");
        }
        stores.push(s.repositories());
    }
    Some(stores)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_daemons_on_one_mariadb_do_everything_exactly_once() {
    let Some(stores) = mariadb_stores().await else {
        return;
    };
    several_daemons("MariaDB", stores).await;
}

/// As on PostgreSQL: leases run out mid-work and are taken over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_daemons_on_one_mariadb_with_takeovers_do_everything_exactly_once() {
    let Some(stores) = mariadb_stores().await else {
        return;
    };
    several_daemons_at("MariaDB (takeovers)", stores, TAKEOVERS).await;
}

/// `DAEMONS` stores on one MongoDB-protocol server (nx-27017 unless
/// `MONGODB_URL`), and the backend's name; `None` when skipped.
async fn mongo_stores(
    dir: &std::path::Path,
) -> Option<(mongo::MongoServer, Vec<Repositories>, &'static str)> {
    let server = match mongo::start(dir) {
        Ok(s) => s,
        Err(reason) => {
            mongo::skip_or_fail(&reason);
            return None;
        }
    };
    let db = format!("isp_rel_{}", std::process::id());
    let mut stores = Vec::new();
    for i in 0..DAEMONS {
        let s = isp_adapters_mongo::MongoStore::connect(&server.url, &db)
            .await
            .expect("mongo");
        if i == 0 {
            s.ensure_indexes().await.expect("indexes");
        }
        stores.push(s.repositories());
    }
    let external = std::env::var("MONGODB_URL").is_ok_and(|u| !u.trim().is_empty());
    let backend = if external {
        "MongoDB (MONGODB_URL)"
    } else {
        "MongoDB (nx-27017)"
    };
    Some((server, stores, backend))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_daemons_on_one_mongodb_do_everything_exactly_once() {
    let Some((_server, stores, backend)) =
        mongo_stores(std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))).await
    else {
        return;
    };
    several_daemons(backend, stores).await;
}

/// As on PostgreSQL: leases run out mid-work and are taken over.
#[ignore = "nx-27017 compares dates at whole seconds, so a 2 s lease can look run out to another daemon's \
            claim up to a second early, while its holder's renewed router call may still be in flight (passed \
            3 of 3 here, with margins too thin for a loaded CI); see RELIABILITY.md section 3; run with \
            --ignored (or MONGODB_URL for a real MongoDB)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_daemons_on_one_mongodb_with_takeovers_do_everything_exactly_once() {
    let Some((_server, stores, backend)) =
        mongo_stores(std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))).await
    else {
        return;
    };
    several_daemons_at(&format!("{backend} (takeovers)"), stores, TAKEOVERS).await;
}
