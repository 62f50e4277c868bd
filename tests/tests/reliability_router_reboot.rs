//! Reliability scenario 11: a router reboots in the middle of a disconnect
//! batch, and comes back with the configuration it had saved before the run
//! (the changes since had not reached its flash, or a backup was restored).
//!
//! Two simulated routers of one tenant over real TCP, SQLite, a fake clock.
//! Before the run, R1's configuration is saved: 4 paying subscribers' users
//! are still disabled there (they paid after an earlier cut-off) and 4 PPPoE
//! services are not provisioned yet. A sync enables those users and
//! provision-services adds the secrets. Then disconnect-expired works through
//! 16 expired subscribers in batches of 4, and R1 reboots (down 600 ms) after
//! its second write of the run, coming back with the saved configuration:
//! every session is gone, the paying users are disabled again, the secrets
//! are gone, and the users of expired subscribers the run had already
//! disabled (and recorded) are enabled again.
//!
//! Checked: the reboot happened while the run was still going; afterwards
//! disconnect-expired and one sync restore what the database says on both
//! routers: every entitled subscriber's user is present and enabled and each
//! of them can log in again (nobody entitled stays out), every PPPoE secret
//! is back, every expired subscriber's user is disabled with no session, and
//! no entitled subscriber's session was ever removed by the engine (only by
//! the reboot).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use isp_adapters_sql::SqlStore;
use isp_core::domain::{OwnerTag, RosName, ServiceStatus, TenantId};
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, JobKind, RunOptions};
use isp_core::memory::{RecordingSms, StaticDirectory};
use isp_core::policy::time::local_date;
use isp_core::ports::{FakeClock, RouterDriver};
use isp_routeros::sim::SimHandle;
use isp_tests::reliability::world::{
    add_service, add_subscriber, fast_driver, service_present, sessions_of, user_disabled, Fleet, Layout,
    SubPlan, SvcPlan,
};

const PASSWORD: &str = "reboot-router-pw";

/// Write commands (`set`, `remove`, `add`, `enable`, `disable`) in a router's log.
fn writes(h: &SimHandle) -> usize {
    h.command_log()
        .iter()
        .filter(|c| {
            let cmd = c.command.rsplit('/').next().unwrap_or("");
            matches!(cmd, "set" | "remove" | "add" | "enable" | "disable")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_router_rebooted_mid_batch_gets_what_the_database_says_and_nobody_entitled_stays_out() {
    let tz: Tz = chrono_tz::Africa::Dar_es_Salaam;
    let start = Utc::now();
    let clock = Arc::new(FakeClock::new(start));
    let fleet = Fleet::start(2, PASSWORD, false, 11).await;
    let layout = Layout::even(1, 2, tz);
    let tenant = TenantId(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqlStore::connect_sqlite(dir.path().join("reboot.db"))
        .await
        .expect("sqlite");
    store.migrate().await.expect("migrate");
    let repos = store.repositories();
    let plans = layout.seed(&repos).await;
    let driver = fast_driver();
    let routers = layout.routers(&fleet);
    let engine = Engine::new(
        EngineDeps {
            repos: repos.clone(),
            directory: Arc::new(StaticDirectory::new(routers.clone())),
            driver: driver.clone(),
            sms: Arc::new(RecordingSms::new()),
            clock: clock.clone(),
        },
        EngineConfig {
            holder: "reboot-1".into(),
            batch_size: 4,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(2),
            ..EngineConfig::default()
        },
    );
    let r1 = &fleet.handles[0];

    // 12 paying subscribers, 4 who paid after an earlier cut-off (their users
    // still disabled on R1), 16 expired; every one with a session on R1.
    let mut entitled: Vec<SubPlan> = Vec::new();
    let mut expired: Vec<SubPlan> = Vec::new();
    for n in 0..32 {
        let paid_until = if n < 16 {
            start + chrono::Duration::days(3)
        } else {
            start - chrono::Duration::minutes(n as i64)
        };
        let s = add_subscriber(&repos, &fleet, &layout, tenant, n, paid_until, &[0], start).await;
        if n < 16 {
            entitled.push(s);
        } else {
            expired.push(s);
        }
    }
    for s in &entitled[12..] {
        let name = RosName::parse("username", &s.username).expect("name");
        driver
            .set_hotspot_user_disabled(&routers[0], &name, OwnerTag::Subscriber(s.id), true)
            .await
            .expect("disable a paying user (the earlier cut-off)");
        r1.hotspot_logout(&s.username);
    }
    let today = local_date(start, tz);
    let mut services: Vec<SvcPlan> = Vec::new();
    for n in 0..4 {
        // Even numbers: PPPoE.
        services.push(
            add_service(
                &repos,
                tenant,
                plans[&tenant],
                0,
                n * 2,
                ServiceStatus::Active,
                today + chrono::Duration::days(10),
                today + chrono::Duration::days(10),
            )
            .await,
        );
    }
    let saved = r1.save_config();

    // The changes the reboot will lose: paying users enabled, services added.
    let sync = engine
        .run(JobKind::SyncRouters, RunOptions::default())
        .await
        .expect("sync");
    assert!(sync.failures.is_empty(), "{:?}", sync.failures);
    let prov = engine
        .run(JobKind::ProvisionServices, RunOptions::default())
        .await
        .expect("provision");
    assert!(prov.failures.is_empty(), "{:?}", prov.failures);
    for s in &entitled {
        assert_eq!(
            user_disabled(r1, &s.username),
            Some(false),
            "{} before the run",
            s.username
        );
    }
    for svc in &services {
        assert!(service_present(r1, svc), "service {} before the run", svc.id.0);
    }

    // Reboot R1 after its second write of the disconnect run.
    r1.clear_command_log();
    let removals_before = r1.removals().len();
    let run_done = Arc::new(AtomicBool::new(false));
    let rebooter = {
        let r1 = r1.clone();
        let saved = saved.clone();
        let run_done = run_done.clone();
        tokio::spawn(async move {
            loop {
                if writes(&r1) >= 2 {
                    let mid_run = !run_done.load(Ordering::SeqCst);
                    let lost = r1.reboot_to(&saved, Duration::from_millis(600));
                    return (mid_run, lost);
                }
                if run_done.load(Ordering::SeqCst) {
                    return (false, 0);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let first = engine
        .run(JobKind::DisconnectExpired, RunOptions::default())
        .await
        .expect("disconnect");
    run_done.store(true, Ordering::SeqCst);
    let (mid_run, lost) = rebooter.await.expect("rebooter");
    assert!(mid_run, "R1 was not rebooted during the run: {first:?}");
    let recorded_before: Vec<&SubPlan> = {
        let mut v = Vec::new();
        for s in &expired {
            if !repos.subscribers.get(s.id).await.expect("get").active {
                v.push(s);
            }
        }
        v
    };
    let undone = recorded_before
        .iter()
        .filter(|s| user_disabled(r1, &s.username) == Some(false))
        .count();

    // Carry on: disconnect until every expiry is recorded, then sync until a
    // run finds R1 reachable and leaves nothing to do.
    let mut runs = 1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut pending = 0;
        for s in &expired {
            pending += usize::from(repos.subscribers.get(s.id).await.expect("get").active);
        }
        if pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{pending} expiries still pending a minute after the reboot"
        );
        clock.advance(chrono::Duration::seconds(5));
        engine
            .run(JobKind::DisconnectExpired, RunOptions::default())
            .await
            .expect("disconnect");
        runs += 1;
    }
    let mut syncs = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        clock.advance(chrono::Duration::seconds(5));
        let report = engine
            .run(JobKind::SyncRouters, RunOptions::default())
            .await
            .expect("sync");
        syncs += 1;
        if report.failures.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "R1 still failing a minute after the reboot: {:?}",
            report.failures
        );
    }

    // What the database says, on both routers.
    let mut problems = Vec::new();
    for (r, h) in fleet.handles.iter().enumerate() {
        for s in &entitled {
            if user_disabled(h, &s.username) != Some(false) {
                problems.push(format!(
                    "R{}: entitled {} user disabled={:?}",
                    r + 1,
                    s.username,
                    user_disabled(h, &s.username)
                ));
            }
        }
        for s in &expired {
            if user_disabled(h, &s.username) != Some(true) || sessions_of(h, &s.username) != 0 {
                problems.push(format!(
                    "R{}: expired {} user disabled={:?}, {} session(s)",
                    r + 1,
                    s.username,
                    user_disabled(h, &s.username),
                    sessions_of(h, &s.username)
                ));
            }
        }
    }
    for svc in &services {
        if !service_present(r1, svc) {
            problems.push(format!("R1: service {} ({}) missing", svc.id.0, svc.key));
        }
    }
    for s in &expired {
        if repos.subscribers.get(s.id).await.expect("get").active {
            problems.push(format!("{} not recorded disconnected", s.username));
        }
    }
    // The engine never removed an entitled session; only the reboot did.
    for rm in r1.removals().into_iter().skip(removals_before) {
        let user = rm.row.get("user").cloned().unwrap_or_default();
        if rm.menu == "/ip/hotspot/active"
            && rm.reason != "reboot"
            && entitled.iter().any(|s| s.username == user)
        {
            problems.push(format!("entitled {user}'s session removed ({})", rm.reason));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // Nobody entitled stays out: each logs in again on the rebooted router.
    for (i, s) in entitled.iter().enumerate() {
        r1.hotspot_login(
            &s.username,
            &format!("02:01:00:00:00:{i:02x}"),
            &format!("10.9.0.{}", i + 2),
        )
        .unwrap_or_else(|e| panic!("entitled {} cannot log in after the reboot: {e}", s.username));
    }
    eprintln!(
        "scenario 11: R1 rebooted to its saved configuration mid-run ({} items lost, {} of {} expiries \
         recorded before the reboot undone by it); caught up in {} more disconnect runs and {} sync(s): \
         {} entitled users enabled and logged in again, {} PPPoE secrets restored, {} expired users \
         disabled with no session, 0 entitled sessions removed by the engine",
        lost,
        undone,
        recorded_before.len(),
        runs - 1,
        syncs,
        entitled.len(),
        services.len(),
        expired.len(),
    );
    store.close().await;
}
