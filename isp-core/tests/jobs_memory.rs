//! The disconnect job over the in-memory store, a recording SMS sender and a
//! fake driver whose routers can go down: promise 1 across runs (pending
//! removals survive, wait for their back-off, complete when the router is
//! back), promise 2 (never early), promise 4 (notices once, SMS failures never
//! hold up a disconnect), and the health summary in between.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod policy_fixtures;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Duration;
use isp_core::domain::*;
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, HealthState, JobKind, RunOptions};
use isp_core::memory::{self, RecordingSms, SmsFailure, StaticDirectory};
use isp_core::ports::*;
use isp_core::{Error, Result};
use policy_fixtures::*;

/// Routers that hold the users still let in, and can be switched off.
#[derive(Debug, Default)]
struct FakeRouters {
    down: Mutex<BTreeSet<RouterId>>,
    /// Users cut off, per router.
    cut: Mutex<BTreeMap<RouterId, Vec<String>>>,
    /// Users enabled again, per router.
    enabled: Mutex<BTreeMap<RouterId, Vec<String>>>,
    /// A payment that lands while the routers cut off (the race of issue 16, hole 5):
    /// applied by the first disconnect call, before the engine records anything.
    pay_during_disconnect: Mutex<Option<(Repositories, SubscriberId, chrono::DateTime<chrono::Utc>)>>,
    /// Routers that refuse to enable users.
    refuse_enable: Mutex<BTreeSet<RouterId>>,
    /// Routers whose enables wait until `release` gets permits.
    hang_enable: Mutex<BTreeSet<RouterId>>,
    hung: std::sync::atomic::AtomicUsize,
    release: Gate,
    /// A clock and an instant: the first user enabled sets that clock to it.
    clock_on_enable: Mutex<Option<(Arc<FakeClock>, chrono::DateTime<chrono::Utc>)>>,
}

/// A semaphore that starts closed.
#[derive(Debug)]
struct Gate(tokio::sync::Semaphore);

impl Default for Gate {
    fn default() -> Self {
        Gate(tokio::sync::Semaphore::new(0))
    }
}

impl FakeRouters {
    fn set_down(&self, r: RouterId, down: bool) {
        let mut d = self.down.lock().unwrap();
        if down {
            d.insert(r);
        } else {
            d.remove(&r);
        }
    }

    fn cut_on(&self, r: RouterId) -> Vec<String> {
        self.cut.lock().unwrap().get(&r).cloned().unwrap_or_default()
    }
}

fn unused() -> Error {
    Error::Internal("not used by this test".into())
}

#[async_trait]
impl RouterDriver for FakeRouters {
    async fn snapshot(&self, _: &Router, _: &[Menu]) -> Result<RouterSnapshot> {
        Err(unused())
    }
    async fn disconnect_hotspot(
        &self,
        router: &Router,
        targets: &[HotspotTarget],
    ) -> Result<Vec<Result<DisconnectReport>>> {
        if self.down.lock().unwrap().contains(&router.id) {
            return Err(Error::unavailable(
                format!("router {}", router.name),
                "connection refused",
            ));
        }
        let payment = self.pay_during_disconnect.lock().unwrap().take();
        if let Some((repos, id, until)) = payment {
            repos.subscribers.extend(id, until).await?;
        }
        let mut cut = self.cut.lock().unwrap();
        Ok(targets
            .iter()
            .map(|t| {
                cut.entry(router.id)
                    .or_default()
                    .push(t.username.as_ref().map(|u| u.to_string()).unwrap_or_default());
                Ok(DisconnectReport {
                    sessions_removed: 1,
                    user_disabled: true,
                    ..Default::default()
                })
            })
            .collect())
    }
    async fn remove_hotspot_sessions(&self, _: &Router, _: &[String]) -> Result<u32> {
        Err(unused())
    }
    async fn block_device(&self, _: &Router, _: MacAddress, _: OwnerTag) -> Result<()> {
        Err(unused())
    }
    async fn unblock_device(&self, _: &Router, _: MacAddress) -> Result<()> {
        Err(unused())
    }
    async fn remove_ip_bindings(&self, _: &Router, _: &[(MacAddress, OwnerTag)]) -> Result<Vec<Result<u32>>> {
        Err(unused())
    }
    async fn set_hotspot_user_disabled(
        &self,
        router: &Router,
        name: &RosName,
        _: OwnerTag,
        disabled: bool,
    ) -> Result<()> {
        if disabled {
            return Err(unused());
        }
        if self.refuse_enable.lock().unwrap().contains(&router.id) {
            return Err(Error::unavailable(
                format!("router {}", router.name),
                "connection refused",
            ));
        }
        if self.hang_enable.lock().unwrap().contains(&router.id) {
            self.hung.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _permit = self.release.0.acquire().await;
        }
        if let Some((clock, to)) = self.clock_on_enable.lock().unwrap().take() {
            clock.set(to);
        }
        self.enabled
            .lock()
            .unwrap()
            .entry(router.id)
            .or_default()
            .push(name.to_string());
        Ok(())
    }
    async fn add_hotspot_user(&self, _: &Router, _: &HotspotUserSpec) -> Result<String> {
        Err(unused())
    }
    async fn remove_hotspot_user(&self, _: &Router, _: &RosName, _: OwnerTag) -> Result<bool> {
        Err(unused())
    }
    async fn provision_pppoe(&self, _: &Router, _: &PppoeSpec) -> Result<()> {
        Err(unused())
    }
    async fn deprovision_pppoe(&self, _: &Router, _: &RosName, _: OwnerTag) -> Result<()> {
        Err(unused())
    }
    async fn provision_static_ip(&self, _: &Router, _: &StaticIpSpec) -> Result<Vec<ForeignObject>> {
        Err(unused())
    }
    async fn deprovision_static_ip(
        &self,
        _: &Router,
        _: Ipv4Addr,
        _: &RosName,
        _: OwnerTag,
    ) -> Result<Vec<ForeignObject>> {
        Err(unused())
    }
    async fn check_static_ip_rule(&self, _: &Router, _: &StaticIpRuleSpec) -> Result<RuleState> {
        Err(unused())
    }
    async fn add_static_ip_rule(&self, _: &Router, _: &StaticIpRuleSpec) -> Result<bool> {
        Err(unused())
    }
    async fn set_rate_limit(&self, _: &Router, _: &QueueSpec) -> Result<()> {
        Err(unused())
    }
    async fn remove_rate_limit(&self, _: &Router, _: &RosName, _: OwnerTag) -> Result<()> {
        Err(unused())
    }
    async fn health(&self, _: &Router) -> Result<RouterHealth> {
        Err(unused())
    }
}

struct Rig {
    engine: Engine,
    repos: Repositories,
    routers: Arc<FakeRouters>,
    sms: Arc<RecordingSms>,
    clock: Arc<FakeClock>,
}

async fn rig() -> Rig {
    let start = t("2026-01-14T12:00:00Z");
    let repos = memory::repositories();
    repos
        .tenants
        .upsert(&tenant(1, "Africa/Dar_es_Salaam"))
        .await
        .unwrap();
    let directory = Arc::new(StaticDirectory::new(vec![router(1, 1, true), router(2, 1, true)]));
    let routers = Arc::new(FakeRouters::default());
    let sms = Arc::new(RecordingSms::new());
    let clock = Arc::new(FakeClock::new(start));
    let config = EngineConfig {
        holder: "daemon-a".into(),
        retry_base: std::time::Duration::from_secs(5),
        ..EngineConfig::default()
    };
    let engine = Engine::new(
        EngineDeps {
            repos: repos.clone(),
            directory,
            driver: routers.clone(),
            sms: sms.clone(),
            clock: clock.clone(),
        },
        config,
    );
    Rig {
        engine,
        repos,
        routers,
        sms,
        clock,
    }
}

async fn add_sub(rig: &Rig, n: i64, paid_until: chrono::DateTime<chrono::Utc>) -> Subscriber {
    let s = rig
        .repos
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: TenantId(1),
            phone: phone(n),
            username: name(&format!("user{n}")),
            paid_until,
        })
        .await
        .unwrap();
    rig.repos
        .devices
        .record_seen(
            s.id,
            mac(n as u8),
            Some(RouterId(1)),
            paid_until - Duration::hours(1),
        )
        .await
        .unwrap();
    s
}

/// Disconnect-expired, then deliver-notices as the runtime starts it after a
/// run that reserved notices: one report with the counts of both.
async fn run(rig: &Rig) -> isp_core::jobs::JobReport {
    let mut report = rig
        .engine
        .run(JobKind::DisconnectExpired, RunOptions::default())
        .await
        .unwrap();
    let delivery = rig
        .engine
        .run(JobKind::DeliverNotices, RunOptions::default())
        .await
        .unwrap();
    for (k, v) in delivery.counts {
        *report.counts.entry(k).or_default() += v;
    }
    report.failures.extend(delivery.failures);
    report
}

#[tokio::test]
async fn pending_removals_survive_a_router_outage_and_complete_when_it_returns() {
    let rig = rig().await;
    let now = rig.clock.now();
    let a = add_sub(&rig, 1, now - Duration::minutes(1)).await;
    let b = add_sub(&rig, 2, now + Duration::minutes(10)).await;
    let c = add_sub(&rig, 3, now - Duration::minutes(5)).await;

    // Router 2 is down: nobody is recorded disconnected, nobody is told.
    rig.routers.set_down(RouterId(2), true);
    let r = run(&rig).await;
    assert_eq!((r.count("users_disconnected"), r.count("users_pending")), (0, 2));
    assert_eq!(r.failures.len(), 2);
    for s in [&a, &c] {
        let s = rig.repos.subscribers.get(s.id).await.unwrap();
        assert!(s.active && s.disconnected_at.is_none(), "no false 'disconnected'");
        assert_eq!(s.attempts, 1);
    }
    assert!(rig.sms.sent().is_empty());
    assert_eq!(rig.routers.cut_on(RouterId(1)).len(), 2, "router 1 did its part");

    let summary = rig.engine.health_summary().await.unwrap();
    assert_eq!(summary.expired_not_disconnected.len(), 2);
    assert_eq!(summary.total_active_users, 1);
    // C expired five minutes ago and is still let in by router 2.
    assert_eq!(summary.health, HealthState::NeedsAttention);

    // Back-off: an immediate rerun would hammer the router; the items wait.
    rig.clock.set(now + Duration::seconds(1));
    let r = run(&rig).await;
    assert_eq!(r.count("users_pending") + r.count("users_disconnected"), 0);

    // Router 2 is back and the back-off has passed: both complete.
    rig.routers.set_down(RouterId(2), false);
    rig.clock.set(now + Duration::seconds(6));
    let r = run(&rig).await;
    assert_eq!(r.count("users_disconnected"), 2);
    assert_eq!(r.count("devices_deactivated"), 2);
    assert_eq!(r.count("sms_sent"), 2);
    assert!(r.failures.is_empty());
    assert_eq!(r.per_router["tenant-1:Router2"]["users_disconnected"], 2);
    for s in [&a, &c] {
        let s = rig.repos.subscribers.get(s.id).await.unwrap();
        assert!(!s.active && s.disconnected_at.is_some());
    }
    // B is untouched: its time has not come (promise 2).
    assert!(rig.repos.subscribers.get(b.id).await.unwrap().active);
    assert!(!rig.routers.cut_on(RouterId(1)).contains(&"user2".to_owned()));

    // B expires exactly at paid_until, not a second before.
    rig.clock.set(b.paid_until - Duration::seconds(1));
    assert_eq!(run(&rig).await.count("users_disconnected"), 0);
    rig.clock.set(b.paid_until);
    assert_eq!(run(&rig).await.count("users_disconnected"), 1);

    // Reruns add nothing, and nobody gets a second SMS.
    let r = run(&rig).await;
    assert_eq!(r.count("users_disconnected") + r.count("sms_sent"), 0);
    assert_eq!(rig.sms.sent().len(), 3);
    assert_eq!(rig.sms.sent_to(&phone(1)).len(), 1);
}

#[tokio::test]
async fn a_failing_gateway_does_not_hold_the_disconnect_and_the_notice_is_retried_once() {
    let rig = rig().await;
    let now = rig.clock.now();
    let a = add_sub(&rig, 1, now - Duration::minutes(1)).await;
    rig.sms.fail_next(1, SmsFailure::Transient);
    let r = run(&rig).await;
    assert_eq!(r.count("users_disconnected"), 1);
    assert_eq!(r.count("sms_failed"), 1);
    assert!(!rig.repos.subscribers.get(a.id).await.unwrap().active);
    assert!(rig.sms.sent().is_empty());

    // The notice waits for its back-off, then goes out exactly once.
    let r = run(&rig).await;
    assert_eq!(r.count("sms_sent"), 0);
    rig.clock.advance(Duration::seconds(6));
    let r = run(&rig).await;
    assert_eq!(r.count("sms_sent"), 1);
    rig.clock.advance(Duration::minutes(30));
    run(&rig).await;
    assert_eq!(rig.sms.sent_to(&phone(1)).len(), 1);
    assert_eq!(rig.repos.notices.count(NoticeStatus::Sent).await.unwrap(), 1);
}

/// Waits (real time, bounded) until `cond` holds; the runtime under test sleeps
/// only on the fake clock.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_cuts_off_at_the_deadline_on_a_fake_clock() {
    use isp_core::runtime::{Runtime, Schedule, SchedulerConfig};
    let rig = rig().await;
    let start = rig.clock.now();
    let s = add_sub(&rig, 1, start + Duration::minutes(10)).await;
    let mut config = SchedulerConfig::default();
    for schedule in config.schedules.values_mut() {
        *schedule = Schedule::Off;
    }
    let runtime = Runtime::start(rig.engine.clone(), config);
    let checked_at = |rt: &Runtime, t| rt.runner().watcher().last_check_at.is_some_and(|c| c >= t);
    until("the watcher's first check", || checked_at(&runtime, start)).await;
    assert_eq!(
        runtime.runner().watcher().next_wakeup,
        Some(s.paid_until),
        "it sleeps towards the expiry"
    );

    // A minute before: the watcher wakes (its longest sleep is 2 s of clock time), nobody is cut.
    let before = start + Duration::minutes(9);
    rig.clock.set(before);
    until("the check at 9 minutes", || checked_at(&runtime, before)).await;
    assert!(rig.routers.cut_on(RouterId(1)).is_empty(), "never early");

    // At the deadline it runs disconnect-expired at once.
    rig.clock.set(s.paid_until);
    until("the cut-off", || rig.routers.cut_on(RouterId(1)).len() == 1).await;
    assert_eq!(rig.routers.cut_on(RouterId(2)), vec!["user1".to_string()]);
    assert!(runtime.stop().await, "stopped within the grace period");
}

/// An expiry that falls after a disconnect run's last claim, before the run
/// ends, is met as soon as the run ends: the watcher does not hold it back
/// for the overdue back-off (`watcher_min_sleep`), which it did when its
/// deadline was no longer "after now" (that cost the benchmark's lag p99
/// ~0.5 s). Here the clock stands still after the run, so a watcher that
/// waits for it never meets the second expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_that_falls_during_a_run_is_met_when_the_run_ends() {
    use isp_core::runtime::{Runtime, Schedule, SchedulerConfig};
    let rig = rig().await;
    let start = rig.clock.now();
    let first = add_sub(&rig, 1, start + Duration::seconds(1)).await;
    let second = add_sub(&rig, 2, start + Duration::milliseconds(1500)).await;
    // The first subscriber pays while its routers cut it off; the run enables
    // it again after its last claim, and the second expires right then.
    *rig.routers.pay_during_disconnect.lock().unwrap() =
        Some((rig.repos.clone(), first.id, start + Duration::hours(1)));
    *rig.routers.clock_on_enable.lock().unwrap() = Some((rig.clock.clone(), second.paid_until));

    let mut config = SchedulerConfig::default();
    for schedule in config.schedules.values_mut() {
        *schedule = Schedule::Off;
    }
    let runtime = Runtime::start(rig.engine.clone(), config);
    let checked_at = |rt: &Runtime, t| rt.runner().watcher().last_check_at.is_some_and(|c| c >= t);
    until("the watcher's first check", || checked_at(&runtime, start)).await;
    rig.clock.set(first.paid_until);
    until("the first user enabled again", || {
        rig.routers
            .enabled
            .lock()
            .unwrap()
            .get(&RouterId(1))
            .is_some_and(|e| e.contains(&"user1".to_string()))
    })
    .await;
    assert_eq!(rig.clock.now(), second.paid_until);
    until("the second cut off, the clock standing at its deadline", || {
        rig.routers.cut_on(RouterId(2)).contains(&"user2".to_string())
    })
    .await;
    assert_eq!(
        rig.routers.cut_on(RouterId(1)),
        vec!["user1".to_string(), "user2".to_string()]
    );
    assert!(runtime.stop().await, "stopped within the grace period");
}

/// The watcher's lanes: an expiry is cut off at its deadline while an
/// apply-grants run hangs on a router (before the lanes, the watcher ran the
/// deadline jobs one after another, and the expiry waited for the grant).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_does_not_wait_for_a_hanging_grant() {
    use isp_core::runtime::{Runtime, Schedule, SchedulerConfig};
    let rig = rig().await;
    let start = rig.clock.now();
    let expiring = add_sub(&rig, 1, start + Duration::minutes(10)).await;
    let payer = rig
        .repos
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: TenantId(1),
            phone: phone(2),
            username: name("payer"),
            paid_until: start,
        })
        .await
        .unwrap();
    rig.routers.refuse_enable.lock().unwrap().insert(RouterId(2));
    let outcome = rig
        .engine
        .grant(payer.id, Extension::Seconds(3600), None)
        .await
        .unwrap();
    assert_eq!(
        rig.repos.grants.count_pending(start).await.unwrap().0,
        1,
        "{outcome:?}"
    );
    rig.routers.refuse_enable.lock().unwrap().clear();
    rig.routers.hang_enable.lock().unwrap().insert(RouterId(2));

    let mut config = SchedulerConfig::default();
    for schedule in config.schedules.values_mut() {
        *schedule = Schedule::Off;
    }
    let runtime = Runtime::start(rig.engine.clone(), config);
    // The grant's back-off ends: apply-grants runs and hangs on router 2.
    rig.clock.set(start + Duration::minutes(5));
    until("apply-grants at router 2", || {
        rig.routers.hung.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    // The expiry is cut off at its deadline all the same.
    rig.clock.set(expiring.paid_until);
    until("the cut-off", || rig.routers.cut_on(RouterId(1)).len() == 1).await;
    assert_eq!(rig.routers.cut_on(RouterId(2)), vec!["user1".to_string()]);
    // Released, the grant completes on router 2.
    rig.routers.release.0.add_permits(1);
    until("the grant on router 2", || {
        rig.routers
            .enabled
            .lock()
            .unwrap()
            .get(&RouterId(2))
            .is_some_and(|e| e.contains(&"payer".to_string()))
    })
    .await;
    assert!(runtime.stop().await, "stopped within the grace period");
}

#[tokio::test]
async fn a_payment_during_the_disconnect_gets_the_users_enabled_again_in_the_same_run() {
    let rig = rig().await;
    let now = rig.clock.now();
    let s = add_sub(&rig, 1, now - Duration::minutes(1)).await;
    let paid = now + Duration::hours(1);
    *rig.routers.pay_during_disconnect.lock().unwrap() = Some((rig.repos.clone(), s.id, paid));

    let r = run(&rig).await;

    // The first router cut the user off; the payment (which clears the
    // expiry's lease) landed during that call, so the second router's call,
    // made only after a lease renewal, left the payer alone. The payment won
    // the recording.
    assert_eq!(rig.routers.cut_on(RouterId(1)), vec!["user1".to_string()]);
    assert_eq!(rig.routers.cut_on(RouterId(2)), Vec::<String>::new());
    assert_eq!(r.count("users_disconnected"), 0);
    assert_eq!(r.count("expiry_superseded"), 1);
    let now_s = rig.repos.subscribers.get(s.id).await.unwrap();
    assert!(now_s.active && now_s.paid_until == paid, "the payment stands");
    // And in the same run, the user is enabled again on every router that disabled it.
    assert_eq!(r.count("users_reenabled"), 1, "{r}");
    let enabled = rig.routers.enabled.lock().unwrap().clone();
    assert_eq!(
        enabled,
        BTreeMap::from([(RouterId(1), vec!["user1".to_string()])]),
        "enabled again where it was disabled, and only there"
    );
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert!(rig.sms.sent().is_empty(), "no expiry SMS for a payer");
}

#[tokio::test]
async fn a_tenant_without_an_enabled_router_keeps_its_expired_subscribers_pending() {
    let rig = rig().await;
    rig.repos.tenants.upsert(&tenant(2, "UTC")).await.unwrap();
    let now = rig.clock.now();
    let s = rig
        .repos
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: TenantId(2),
            phone: phone(9),
            username: name("user9"),
            paid_until: now - Duration::minutes(1),
        })
        .await
        .unwrap();

    let r = run(&rig).await;

    assert_eq!(r.count("tenants_without_routers"), 1, "{r}");
    assert_eq!(r.count("users_pending"), 1, "{r}");
    assert_eq!(r.count("users_disconnected"), 0, "{r}");
    let s = rig.repos.subscribers.get(s.id).await.unwrap();
    assert!(
        s.active && s.disconnected_at.is_none(),
        "not recorded as disconnected"
    );
    assert!(
        rig.sms.sent().is_empty(),
        "no expiry SMS for a cut-off that did not happen"
    );
}
