//! Issue 17, vouchers on every router of the tenant, end to end over real TCP
//! to simulated routers (the engine on in-memory repositories with the
//! RouterOS driver):
//!
//! - generated vouchers are on every router of a tenant, tagged for each
//!   voucher, with the plan's `limit-uptime`;
//! - a router down during generation gets them from the `sync-routers` job
//!   once it is back;
//! - expiry removes the user from every router and records the removal only
//!   once all confirmed (a router down: retried, removed after it returns);
//! - a voucher logged in on two routers at once is reported (audit event
//!   `voucher_shared`) and its later session ended, found by the poll and by
//!   the listen path.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::time::Duration;

use isp_core::domain::*;
use isp_core::jobs::{JobKind, RouterAccess};
use isp_core::ports::Repositories;
use isp_routeros::sim::SimHandle;
use isp_tests::engine_world::{eventually_async as eventually, now, router, run, sim, users, world};

/// The live hotspot sessions of `user` on a router.
fn sessions(handle: &SimHandle, user: &str) -> usize {
    handle
        .rows("/ip/hotspot/active")
        .into_iter()
        .filter(|r| r.get("user").map(String::as_str) == Some(user))
        .count()
}

/// Exactly one user for the voucher on the router: ours, with the plan's limit.
fn assert_pushed(handle: &SimHandle, v: &Voucher, router: &str) {
    let u = users(handle, v.code.as_str());
    assert_eq!(u.len(), 1, "{} on {router}: {u:?}", v.code);
    assert_eq!(
        u[0].get("comment").map(String::as_str),
        Some(OwnerTag::Voucher(v.id).comment().as_str()),
        "{} on {router}",
        v.code
    );
    assert_eq!(u[0].get("limit-uptime").map(String::as_str), Some("1h"));
}

async fn audit_of(repos: &Repositories, action: &str) -> Vec<AuditEvent> {
    repos
        .audit
        .recent(1000)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == action)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_vouchers_are_on_every_router_of_the_tenant() {
    let sims = [sim().await, sim().await, sim().await];
    let w = world(vec![
        router(1, &sims[0]),
        router(2, &sims[1]),
        router(3, &sims[2]),
    ])
    .await;
    let batch = w
        .engine
        .generate_vouchers(TenantId(1), w.plan.id, 4, Some("HOT"))
        .await
        .expect("vouchers");
    assert_eq!(batch.vouchers.len(), 4);
    let mut states: Vec<_> = batch
        .routers
        .iter()
        .map(|r| (r.router_id, r.state, r.error.clone()))
        .collect();
    states.sort_by_key(|s| s.0);
    assert_eq!(
        states,
        vec![
            (RouterId(1), RouterAccess::Enabled, None),
            (RouterId(2), RouterAccess::Enabled, None),
            (RouterId(3), RouterAccess::Enabled, None),
        ]
    );
    for v in &batch.vouchers {
        assert_eq!(v.router_id, RouterId(1), "home: the first enabled router");
        for (i, s) in sims.iter().enumerate() {
            assert_pushed(&s.handle(), v, &format!("sim-{}", i + 1));
        }
    }
    // A login on the third router is the voucher's first: it activates it.
    let v = &batch.vouchers[0];
    sims[2]
        .handle()
        .hotspot_login(v.code.as_str(), "02:00:00:00:00:41", "10.5.50.41")
        .expect("login on the third router");
    let report = run(&w.engine, JobKind::ActivateVouchers).await;
    assert_eq!(report.counts.get("vouchers_activated"), Some(&1), "{report}");
    assert_eq!(report.counts.get("vouchers_shared"), None, "{report}");
    let active = w.repos.vouchers.get(v.id).await.expect("get");
    assert_eq!(active.status, VoucherStatus::Active);
    assert_eq!(active.started_at, Some(now()));
    // The sync leaves every voucher's users alone: nothing is missing.
    let report = run(&w.engine, JobKind::SyncRouters).await;
    assert_eq!(report.counts.get("voucher_users_added"), None, "{report}");
    assert_eq!(report.counts.get("users_disabled"), None, "{report}");
    assert_eq!(report.counts.get("vouchers_expired_by_sync"), None, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_down_during_generation_gets_the_vouchers_from_the_sync() {
    let a = sim().await;
    let b = sim().await;
    let w = world(vec![router(1, &a), router(2, &b)]).await;
    b.handle().outage(Duration::from_secs(600));
    let batch = w
        .engine
        .generate_vouchers(TenantId(1), w.plan.id, 3, None)
        .await
        .expect("vouchers are stored and pushed where possible");
    let by_id: BTreeMap<_, _> = batch.routers.iter().map(|r| (r.router_id, r)).collect();
    assert_eq!(by_id[&RouterId(1)].state, RouterAccess::Enabled);
    assert_eq!(by_id[&RouterId(2)].state, RouterAccess::Pending);
    assert!(by_id[&RouterId(2)].error.is_some());
    for v in &batch.vouchers {
        assert_pushed(&a.handle(), v, "sim-1");
        assert!(users(&b.handle(), v.code.as_str()).is_empty());
    }
    let generated = audit_of(&w.repos, "voucher_generate").await;
    assert_eq!(generated.len(), 3);
    assert!(generated.iter().all(
        |e| e.outcome == AuditOutcome::Retry && e.reason.as_deref().is_some_and(|r| r.contains("sim-2"))
    ));

    // Still down: the sync cannot push them yet, and changes nothing on sim-1.
    let report = run(&w.engine, JobKind::SyncRouters).await;
    assert_eq!(report.counts.get("routers_failed"), Some(&1), "{report}");
    assert_eq!(report.counts.get("voucher_users_added"), None, "{report}");

    // Back: the next sync creates them, tagged, and a login there works.
    b.handle().clear_faults();
    let report = run(&w.engine, JobKind::SyncRouters).await;
    assert_eq!(report.counts.get("voucher_users_added"), Some(&3), "{report}");
    assert_eq!(
        report
            .per_router
            .get("t1:sim-2")
            .and_then(|r| r.get("voucher_users_added")),
        Some(&3),
        "{report}"
    );
    for v in &batch.vouchers {
        assert_pushed(&b.handle(), v, "sim-2");
        assert_pushed(&a.handle(), v, "sim-1");
    }
    b.handle()
        .hotspot_login(batch.vouchers[0].code.as_str(), "02:00:00:00:00:51", "10.5.50.51")
        .expect("the voucher logs in on the router that was down");
    let again = run(&w.engine, JobKind::SyncRouters).await;
    assert_eq!(again.counts.get("voucher_users_added"), None, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_removes_from_every_router_and_is_recorded_once_all_confirmed() {
    let a = sim().await;
    let b = sim().await;
    let w = world(vec![router(1, &a), router(2, &b)]).await;
    let batch = w
        .engine
        .generate_vouchers(TenantId(1), w.plan.id, 2, None)
        .await
        .expect("vouchers");
    assert!(batch.routers.iter().all(|r| r.state == RouterAccess::Enabled));

    // Both reach their activation deadline while sim-2 is down.
    b.handle().outage(Duration::from_secs(600));
    w.clock.set(now() + chrono::Duration::days(7));
    let report = run(&w.engine, JobKind::ExpireVouchers).await;
    assert_eq!(
        report.counts.get("expired_activation_deadline"),
        Some(&2),
        "{report}"
    );
    assert_eq!(report.counts.get("removals_pending"), Some(&2), "{report}");
    for v in &batch.vouchers {
        assert!(
            users(&a.handle(), v.code.as_str()).is_empty(),
            "removed from sim-1"
        );
        let stored = w.repos.vouchers.get(v.id).await.expect("get");
        assert_eq!(stored.status, VoucherStatus::Expired);
        assert!(!stored.removed_from_router, "sim-2 has not confirmed");
    }

    // Back: after the back-off, the retry removes them there and records it.
    b.handle().clear_faults();
    w.clock.advance(chrono::Duration::minutes(5));
    let report = run(&w.engine, JobKind::ExpireVouchers).await;
    assert_eq!(report.counts.get("removals_pending"), None, "{report}");
    assert_eq!(
        report
            .per_router
            .get("t1:sim-2")
            .and_then(|r| r.get("users_removed")),
        Some(&2),
        "{report}"
    );
    assert_eq!(
        report
            .per_router
            .get("t1:sim-1")
            .and_then(|r| r.get("users_already_gone")),
        Some(&2),
        "{report}"
    );
    for v in &batch.vouchers {
        assert!(
            users(&b.handle(), v.code.as_str()).is_empty(),
            "removed from sim-2"
        );
        let stored = w.repos.vouchers.get(v.id).await.expect("get");
        assert!(stored.removed_from_router, "every router confirmed");
    }
    // Nothing is due any more.
    let report = run(&w.engine, JobKind::ExpireVouchers).await;
    assert_eq!(report.counts.get("users_removed"), None, "{report}");
    assert_eq!(report.counts.get("users_already_gone"), None, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voucher_in_use_on_two_routers_at_once_is_reported_by_the_poll() {
    let a = sim().await;
    let b = sim().await;
    let w = world(vec![router(1, &a), router(2, &b)]).await;
    let batch = w
        .engine
        .generate_vouchers(TenantId(1), w.plan.id, 2, None)
        .await
        .expect("vouchers");
    let v = &batch.vouchers[0];
    let alone = &batch.vouchers[1];
    a.handle()
        .hotspot_login(v.code.as_str(), "02:00:00:00:00:61", "10.5.50.61")
        .expect("login on sim-1");
    a.handle()
        .hotspot_login(alone.code.as_str(), "02:00:00:00:00:63", "10.5.50.63")
        .expect("another voucher on sim-1 only");
    // sim-1's session is five minutes old when the code is used on sim-2.
    a.handle().advance_clock(Duration::from_secs(300));
    b.handle()
        .hotspot_login(v.code.as_str(), "02:00:00:00:00:62", "10.5.50.62")
        .expect("login on sim-2");

    let report = run(&w.engine, JobKind::ActivateVouchers).await;
    assert_eq!(report.counts.get("vouchers_activated"), Some(&2), "{report}");
    assert_eq!(report.counts.get("vouchers_shared"), Some(&1), "{report}");
    assert_eq!(report.counts.get("shared_sessions_ended"), Some(&1), "{report}");
    let active = w.repos.vouchers.get(v.id).await.expect("get");
    assert_eq!(
        active.started_at,
        Some(now() - chrono::Duration::minutes(5)),
        "activated by the first session"
    );
    let shared = audit_of(&w.repos, "voucher_shared").await;
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert_eq!(shared[0].subject, format!("voucher:{}", v.code));
    assert_eq!(
        shared[0].router_id,
        Some(RouterId(2)),
        "the later session's router"
    );
    assert_eq!(shared[0].tenant_id, Some(TenantId(1)));
    let reason = shared[0].reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("sim-1") && reason.contains("sim-2") && reason.contains("ended on sim-2"),
        "{reason}"
    );
    assert_eq!(
        sessions(&a.handle(), v.code.as_str()),
        1,
        "the first session stays"
    );
    assert_eq!(
        sessions(&b.handle(), v.code.as_str()),
        0,
        "the later one is ended"
    );
    assert_pushed(&b.handle(), v, "sim-2");
    assert_eq!(sessions(&a.handle(), alone.code.as_str()), 1);

    // Over: the next poll reports nothing.
    let report = run(&w.engine, JobKind::ActivateVouchers).await;
    assert_eq!(report.counts.get("vouchers_shared"), None, "{report}");
    assert_eq!(audit_of(&w.repos, "voucher_shared").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voucher_in_use_on_two_routers_at_once_is_reported_by_the_listen_path() {
    let a = sim().await;
    let b = sim().await;
    let w = world(vec![router(1, &a), router(2, &b)]).await;
    let batch = w
        .engine
        .generate_vouchers(TenantId(1), w.plan.id, 1, None)
        .await
        .expect("vouchers");
    let v = &batch.vouchers[0];
    let mut cfg = isp_core::runtime::SchedulerConfig {
        watcher_enabled: false,
        ..Default::default()
    };
    for s in cfg.schedules.values_mut() {
        *s = isp_core::runtime::Schedule::Off;
    }
    let runtime = isp_core::runtime::Runtime::start(w.engine.clone(), cfg);
    let (ha, hb) = (a.handle(), b.handle());
    assert!(
        eventually(Duration::from_secs(5), async || {
            [&ha, &hb].iter().all(|h| {
                h.command_log()
                    .iter()
                    .any(|c| c.command == "/ip/hotspot/active/listen")
            })
        })
        .await,
        "the runtime listens to both routers"
    );
    a.handle()
        .hotspot_login(v.code.as_str(), "02:00:00:00:00:71", "10.5.50.71")
        .expect("login on sim-1");
    let repos = w.repos.clone();
    let id = v.id;
    assert!(
        eventually(Duration::from_secs(2), async || {
            repos.vouchers.get(id).await.expect("get").status == VoucherStatus::Active
        })
        .await,
        "activated by the listen path"
    );
    assert!(audit_of(&w.repos, "voucher_shared").await.is_empty());

    b.handle()
        .hotspot_login(v.code.as_str(), "02:00:00:00:00:72", "10.5.50.72")
        .expect("login on sim-2");
    let repos = w.repos.clone();
    assert!(
        eventually(Duration::from_secs(3), async || {
            !audit_of(&repos, "voucher_shared").await.is_empty()
        })
        .await,
        "reported within 3 s, with no job run"
    );
    let shared = audit_of(&w.repos, "voucher_shared").await;
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert_eq!(shared[0].subject, format!("voucher:{}", v.code));
    assert_eq!(shared[0].router_id, Some(RouterId(2)));
    let reason = shared[0].reason.as_deref().unwrap_or_default();
    assert!(reason.contains("sim-1") && reason.contains("sim-2"), "{reason}");
    let hb = b.handle();
    let code = v.code.to_string();
    assert!(
        eventually(Duration::from_secs(2), async || sessions(&hb, &code) == 0).await,
        "the later session (sim-2) is ended"
    );
    assert_eq!(
        sessions(&a.handle(), v.code.as_str()),
        1,
        "the first session stays"
    );
    runtime.stop().await;
}
