//! Issue 17, the grant side, end to end over real TCP to simulated routers:
//! the engine (in-memory repositories; the storage contract is checked on
//! every backend by the conformance suite) with the RouterOS driver.
//!
//! - A grant enables our hotspot user on every router of the tenant before it
//!   returns (creating it with our owner tag), and a login then succeeds.
//! - A payment reference paid twice extends once.
//! - A router down during the grant gets a pending grant that `apply-grants`
//!   completes once it is back; a pending grant whose paid time ran out is
//!   dropped instead.
//! - A subscriber cut off at expiry, then paid: enabled again by the grant
//!   itself, not by the next sync.
//! - Revoke disables the user everywhere before it returns.
//! - A same-name user that is not ours is left alone, reported, and the grant
//!   stays pending there.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use isp_core::domain::*;
use isp_core::jobs::{EngineConfig, GrantOutcome, JobKind, RouterAccess};
use isp_core::memory::StaticDirectory;
use isp_core::ports::FakeClock;
use isp_routeros::sim::SimHandle;
use isp_tests::engine_world::{
    dead_address, engine_over, eventually_async as eventually, now, router, router_at, run, sim, users, world,
};

fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::parse("phone", &format!("+2557120{n:05}")).unwrap()
}

fn payment(reference: &str) -> NewPayment {
    NewPayment {
        reference: PaymentReference::parse("reference", reference).unwrap(),
        amount: Money::parse("amount", "1000", Currency::parse("currency", "TZS").unwrap()).unwrap(),
    }
}

/// Our enabled user for `sub` is on the router, and a device can log in.
fn assert_enabled(handle: &SimHandle, sub: &Subscriber, device: u8) {
    let found = users(handle, sub.username.as_str());
    assert_eq!(found.len(), 1, "one user named {}: {found:?}", sub.username);
    let u = &found[0];
    assert_eq!(
        u.get("comment").map(String::as_str),
        Some(OwnerTag::Subscriber(sub.id).comment().as_str()),
        "created with our owner tag"
    );
    assert_ne!(u.get("disabled").map(String::as_str), Some("true"), "enabled");
    handle
        .hotspot_login(
            sub.username.as_str(),
            &format!("02:00:00:00:00:{device:02x}"),
            &format!("10.5.50.{device}"),
        )
        .expect("the subscriber can log in");
}

fn states(outcome: &GrantOutcome) -> Vec<RouterAccess> {
    outcome.routers.iter().map(|r| r.state).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_enables_our_user_on_every_router_before_it_returns_and_a_reference_pays_once() {
    let (a, b, c) = (sim().await, sim().await, sim().await);
    let w = world(vec![router(1, &a), router(2, &b), router(3, &c)]).await;
    let sub = w
        .engine
        .create_subscriber(TenantId(1), phone(1), None)
        .await
        .expect("subscriber");
    assert_eq!(sub.username.as_str(), "255712000001");
    assert!(!sub.active, "a new subscriber has nothing to enforce yet");
    for h in [a.handle(), b.handle(), c.handle()] {
        assert!(
            users(&h, sub.username.as_str()).is_empty(),
            "nothing on the routers before a grant"
        );
    }

    let outcome = w
        .engine
        .grant(sub.id, Extension::Plan(w.plan.id), Some(payment("MP123")))
        .await
        .expect("grant");
    assert!(!outcome.duplicate_payment);
    assert_eq!(states(&outcome), vec![RouterAccess::Enabled; 3], "{outcome:?}");
    assert_eq!(outcome.subscriber.paid_until, now() + chrono::Duration::hours(1));
    assert!(outcome.subscriber.active);
    for (i, h) in [a.handle(), b.handle(), c.handle()].iter().enumerate() {
        assert_enabled(h, &outcome.subscriber, i as u8 + 1);
    }
    assert!(w
        .repos
        .grants
        .pending_of(sub.id)
        .await
        .expect("pending")
        .is_empty());

    // The same reference again (a client retry): nothing extended, said so.
    w.clock.advance(chrono::Duration::minutes(1));
    let again = w
        .engine
        .grant(sub.id, Extension::Plan(w.plan.id), Some(payment("MP123")))
        .await
        .expect("grant again");
    assert!(again.duplicate_payment);
    assert_eq!(again.subscriber.paid_until, now() + chrono::Duration::hours(1));
    assert_eq!(states(&again), vec![RouterAccess::Enabled; 3]);
    let events = w.repos.audit.recent(100).await.expect("audit");
    assert!(events.iter().any(|e| e.action == "grant_duplicate_payment"));

    // A new reference extends from the current end, not from now.
    let more = w
        .engine
        .grant(sub.id, Extension::Seconds(600), Some(payment("MP124")))
        .await
        .expect("grant");
    assert_eq!(
        more.subscriber.paid_until,
        now() + chrono::Duration::hours(1) + chrono::Duration::minutes(10)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_down_during_the_grant_is_enabled_by_apply_grants_once_it_is_back() {
    let (a, b) = (sim().await, sim().await);
    let down = router_at(2, dead_address());
    let w = world(vec![router(1, &a), down]).await;
    let sub = w
        .engine
        .create_subscriber(TenantId(1), phone(2), None)
        .await
        .expect("subscriber");
    let outcome = w
        .engine
        .grant(sub.id, Extension::Seconds(3600), None)
        .await
        .expect("grant");
    assert_eq!(
        states(&outcome),
        vec![RouterAccess::Enabled, RouterAccess::Pending]
    );
    assert!(outcome.routers[1].error.is_some(), "the pending router says why");
    assert_enabled(&a.handle(), &outcome.subscriber, 1);
    let pending = w.repos.grants.pending_of(sub.id).await.expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].router_id, RouterId(2));
    assert_eq!(pending[0].attempts, 1);

    // Still down when the back-off ends: another attempt, still pending.
    w.clock.advance(chrono::Duration::minutes(1));
    let report = run(&w.engine, JobKind::ApplyGrants).await;
    assert_eq!(report.counts.get("grants_pending"), Some(&1), "{report}");
    assert_eq!(
        w.repos.grants.pending_of(sub.id).await.expect("pending")[0].attempts,
        2
    );

    // The router is back: the next run enables the user there.
    w.directory.upsert(router(2, &b));
    w.clock.advance(chrono::Duration::minutes(5));
    let report = run(&w.engine, JobKind::ApplyGrants).await;
    assert_eq!(report.counts.get("users_enabled"), Some(&1), "{report}");
    assert_enabled(&b.handle(), &outcome.subscriber, 2);
    assert!(w
        .repos
        .grants
        .pending_of(sub.id)
        .await
        .expect("pending")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_grant_whose_time_ran_out_is_dropped_without_router_work() {
    let a = sim().await;
    let w = world(vec![router(1, &a), router_at(2, dead_address())]).await;
    let sub = w
        .engine
        .create_subscriber(TenantId(1), phone(3), None)
        .await
        .expect("subscriber");
    w.engine
        .grant(sub.id, Extension::Seconds(60), None)
        .await
        .expect("grant");
    w.directory.upsert(router(2, &a));
    w.clock.advance(chrono::Duration::minutes(10));
    let report = run(&w.engine, JobKind::ApplyGrants).await;
    assert_eq!(report.counts.get("grants_dropped"), Some(&1), "{report}");
    assert_eq!(report.counts.get("users_enabled"), None, "{report}");
    assert!(w
        .repos
        .grants
        .pending_of(sub.id)
        .await
        .expect("pending")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_at_expiry_then_paid_is_back_online_at_once_and_revoke_removes_access() {
    let (a, b) = (sim().await, sim().await);
    let w = world(vec![router(1, &a), router(2, &b)]).await;
    let sub = w
        .engine
        .create_subscriber(TenantId(1), phone(4), None)
        .await
        .expect("subscriber");
    let granted = w
        .engine
        .grant(sub.id, Extension::Seconds(600), Some(payment("P-1")))
        .await
        .expect("grant");
    a.handle()
        .hotspot_login(sub.username.as_str(), "02:00:00:00:00:04", "10.5.50.4")
        .expect("login");

    // Paid time ends: cut off on both routers.
    w.clock.advance(chrono::Duration::minutes(11));
    let report = run(&w.engine, JobKind::DisconnectExpired).await;
    assert_eq!(report.counts.get("users_disconnected"), Some(&1), "{report}");
    for h in [a.handle(), b.handle()] {
        let u = users(&h, sub.username.as_str());
        assert_eq!(u[0].get("disabled").map(String::as_str), Some("true"), "cut off");
    }

    // Paid again: enabled on both routers by the grant, no sync run.
    let back = w
        .engine
        .grant(sub.id, Extension::Plan(w.plan.id), Some(payment("P-2")))
        .await
        .expect("grant");
    assert_eq!(states(&back), vec![RouterAccess::Enabled; 2]);
    assert!(back.subscriber.paid_until > granted.subscriber.paid_until);
    assert_enabled(&a.handle(), &back.subscriber, 5);
    assert_enabled(&b.handle(), &back.subscriber, 6);

    // Revoked: disabled on both before the call returns, sessions gone.
    let revoked = w.engine.revoke(sub.id).await.expect("revoke");
    assert_eq!(states(&revoked), vec![RouterAccess::Removed; 2], "{revoked:?}");
    assert!(!revoked.subscriber.active);
    for h in [a.handle(), b.handle()] {
        let u = users(&h, sub.username.as_str());
        assert_eq!(u[0].get("disabled").map(String::as_str), Some("true"), "revoked");
        let sessions: Vec<_> = h
            .rows("/ip/hotspot/active")
            .into_iter()
            .filter(|r| r.get("user").map(String::as_str) == Some(sub.username.as_str()))
            .collect();
        assert!(sessions.is_empty(), "sessions removed: {sessions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_name_user_that_is_not_ours_is_left_alone_and_the_grant_stays_pending() {
    let (a, b) = (sim().await, sim().await);
    let w = world(vec![router(1, &a), router(2, &b)]).await;
    let sub = w
        .engine
        .create_subscriber(TenantId(1), phone(5), None)
        .await
        .expect("subscriber");
    b.handle()
        .add_row(
            "/ip/hotspot/user",
            &[
                ("name", sub.username.as_str()),
                ("comment", "staff"),
                ("disabled", "true"),
            ],
        )
        .expect("staff account");
    let outcome = w
        .engine
        .grant(sub.id, Extension::Seconds(3600), None)
        .await
        .expect("grant");
    assert_eq!(
        states(&outcome),
        vec![RouterAccess::Enabled, RouterAccess::Pending]
    );
    let staff = users(&b.handle(), sub.username.as_str());
    assert_eq!(staff.len(), 1);
    assert_eq!(staff[0].get("comment").map(String::as_str), Some("staff"));
    assert_eq!(
        staff[0].get("disabled").map(String::as_str),
        Some("true"),
        "not touched"
    );
    let events = w.repos.audit.recent(100).await.expect("audit");
    assert!(
        events
            .iter()
            .any(|e| e.action == "foreign_object" && e.router_id == Some(RouterId(2))),
        "reported: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_grants_name_the_field_and_change_nothing() {
    let a = sim().await;
    let w = world(vec![router(1, &a)]).await;
    let sub = w
        .engine
        .create_subscriber(TenantId(1), phone(6), None)
        .await
        .expect("subscriber");
    let e = w
        .engine
        .grant(sub.id, Extension::Seconds(0), None)
        .await
        .expect_err("zero seconds");
    assert!(e.to_string().contains("seconds"), "{e}");
    let e = w
        .engine
        .grant(sub.id, Extension::Until(now() - chrono::Duration::hours(1)), None)
        .await
        .expect_err("past");
    assert!(e.to_string().contains("until"), "{e}");
    let e = w
        .engine
        .grant(sub.id, Extension::Plan(PlanId(999)), None)
        .await
        .expect_err("unknown plan");
    assert!(e.is_not_found(), "{e}");
    let e = w
        .engine
        .create_subscriber(TenantId(1), phone(6), None)
        .await
        .expect_err("same phone");
    assert!(e.is_conflict(), "{e}");
    let e = w
        .engine
        .create_subscriber(TenantId(9), phone(7), None)
        .await
        .expect_err("unknown tenant");
    assert!(e.is_not_found(), "{e}");
    assert!(users(&a.handle(), sub.username.as_str()).is_empty());
    assert_eq!(w.repos.subscribers.get(sub.id).await.expect("get"), sub);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vouchers_are_pushed_and_activated_at_their_first_login_by_listen_and_by_poll() {
    let a = sim().await;
    let w = world(vec![router(1, &a)]).await;
    let batch = w
        .engine
        .generate_vouchers(TenantId(1), w.plan.id, 3, Some("HOT"))
        .await
        .expect("vouchers");
    assert_eq!(batch.vouchers.len(), 3);
    assert_eq!(batch.routers[0].state, RouterAccess::Enabled);
    for v in &batch.vouchers {
        assert!(v.code.as_str().starts_with("HOT"));
        assert_eq!(v.status, VoucherStatus::Unused);
        assert_eq!(
            v.activation_deadline,
            Some(now() + chrono::Duration::days(7)),
            "seed 003: 7 days"
        );
        let u = users(&a.handle(), v.code.as_str());
        assert_eq!(u.len(), 1, "pushed");
        assert_eq!(
            u[0].get("comment").map(String::as_str),
            Some(OwnerTag::Voucher(v.id).comment().as_str())
        );
        assert_eq!(u[0].get("limit-uptime").map(String::as_str), Some("1h"));
    }

    // The listen path: the runtime streams new sessions from the router; the
    // first login activates the voucher within 2 s, with no job run.
    let mut cfg = isp_core::runtime::SchedulerConfig {
        watcher_enabled: false,
        ..Default::default()
    };
    for s in cfg.schedules.values_mut() {
        *s = isp_core::runtime::Schedule::Off;
    }
    let runtime = isp_core::runtime::Runtime::start(w.engine.clone(), cfg);
    let listened = &batch.vouchers[0];
    let handle = a.handle();
    assert!(
        eventually(Duration::from_secs(5), async || {
            handle
                .command_log()
                .iter()
                .any(|c| c.command == "/ip/hotspot/active/listen")
        })
        .await,
        "the runtime listens to the router's hotspot sessions"
    );
    w.clock.advance(chrono::Duration::minutes(30));
    a.handle()
        .hotspot_login(listened.code.as_str(), "02:00:00:00:00:31", "10.5.50.31")
        .expect("login");
    let repos = w.repos.clone();
    let id = listened.id;
    assert!(
        eventually(Duration::from_secs(2), async || {
            repos.vouchers.get(id).await.expect("get").status == VoucherStatus::Active
        })
        .await,
        "activated within 2 s by the listen path"
    );
    let active = w.repos.vouchers.get(id).await.expect("get");
    assert_eq!(active.started_at, Some(now() + chrono::Duration::minutes(30)));
    assert_eq!(
        active.expected_end,
        Some(now() + chrono::Duration::minutes(90)),
        "usage counted from the first login"
    );
    runtime.stop().await;

    // The poll path: a login while nobody listens is found by the next poll.
    let polled = &batch.vouchers[1];
    a.handle()
        .hotspot_login(polled.code.as_str(), "02:00:00:00:00:32", "10.5.50.32")
        .expect("login");
    let report = run(&w.engine, JobKind::ActivateVouchers).await;
    assert_eq!(report.counts.get("vouchers_activated"), Some(&1), "{report}");
    let p = w.repos.vouchers.get(polled.id).await.expect("get");
    assert_eq!(p.status, VoucherStatus::Active);
    assert_eq!(p.started_at, Some(now() + chrono::Duration::minutes(30)));

    // Usage expiry counts from activation: at activation + 1 h the first
    // voucher expires (usage ended) and its user is removed; the unused one
    // stays until its activation deadline.
    w.clock.advance(chrono::Duration::minutes(61));
    let report = run(&w.engine, JobKind::ExpireVouchers).await;
    assert_eq!(report.counts.get("expired_usage_ended"), Some(&2), "{report}");
    assert!(
        users(&a.handle(), listened.code.as_str()).is_empty(),
        "user removed"
    );
    let unused = &batch.vouchers[2];
    assert_eq!(
        w.repos.vouchers.get(unused.id).await.expect("get").status,
        VoucherStatus::Unused
    );
    w.clock.set(now() + chrono::Duration::days(7));
    let report = run(&w.engine, JobKind::ExpireVouchers).await;
    assert_eq!(
        report.counts.get("expired_activation_deadline"),
        Some(&1),
        "{report}"
    );
    assert!(
        users(&a.handle(), unused.code.as_str()).is_empty(),
        "user removed"
    );
}

/// Two daemons (two engines, each with its own pool and holder) on one
/// PostgreSQL database get the same payments at once, as a payment provider
/// that calls both back would: every reference extends its subscriber once,
/// and every other call answers `duplicate_payment`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_reference_extends_once_across_two_daemons_on_postgres() {
    let Some(url) = isp_testsupport::pg::fresh_database().await else {
        return;
    };
    let a = sim().await;
    let mut engines = Vec::new();
    let mut first_repos = None;
    for holder in ["daemon-a", "daemon-b"] {
        let store = isp_adapters_sql::SqlStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let repos = store.repositories();
        let engine = engine_over(
            repos.clone(),
            Arc::new(StaticDirectory::new(vec![router(1, &a)])),
            Arc::new(FakeClock::new(now())),
            EngineConfig {
                holder: holder.into(),
                ..EngineConfig::default()
            },
        );
        first_repos.get_or_insert(repos);
        engines.push(engine);
    }
    let repos = first_repos.expect("repos");
    repos
        .tenants
        .upsert(&Tenant {
            id: TenantId(1),
            slug: RosName::parse("slug", "t1").unwrap(),
            name: "T1".into(),
            time_zone: chrono_tz::UTC,
        })
        .await
        .expect("tenant");
    let mut subs = Vec::new();
    for n in 0..10 {
        subs.push(
            engines[0]
                .create_subscriber(TenantId(1), phone(100 + n), None)
                .await
                .expect("subscriber"),
        );
    }
    let calls = subs.iter().flat_map(|s| {
        engines.iter().map(move |e| {
            let e = e.clone();
            let id = s.id;
            let reference = format!("PAY-{}", s.id);
            tokio::spawn(async move {
                e.grant(id, Extension::Seconds(3600), Some(payment(&reference)))
                    .await
            })
        })
    });
    let outcomes: Vec<GrantOutcome> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("task").expect("grant"))
        .collect();
    for s in &subs {
        let mine: Vec<&GrantOutcome> = outcomes.iter().filter(|o| o.subscriber.id == s.id).collect();
        assert_eq!(mine.len(), 2);
        let applied = mine.iter().filter(|o| !o.duplicate_payment).count();
        assert_eq!(applied, 1, "exactly one daemon extends for {}: {mine:?}", s.id);
        let now_paid = repos.subscribers.get(s.id).await.expect("get").paid_until;
        assert_eq!(now_paid, now() + chrono::Duration::hours(1), "extended once");
        let users_named = users(&a.handle(), s.username.as_str());
        assert_eq!(users_named.len(), 1, "one hotspot user, enabled");
        assert_ne!(users_named[0].get("disabled").map(String::as_str), Some("true"));
    }
}
