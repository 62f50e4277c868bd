//! End-to-end: the daemon on SQLite enforces expiry on simulated routers over TCP.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use isp_core::jobs::{JobKind, Templates};
use isp_tests::{eventually, overdue_ids, sent_to, Options, TestDaemon};

/// Polls the async condition `f` every 50 ms until it holds or `timeout` passes.
async fn until<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// When the daemon's real-time watcher last checked the database.
fn last_check(t: &TestDaemon) -> Option<DateTime<Utc>> {
    t.daemon.as_ref()?.runner().watcher().last_check_at
}

/// Whether the subscriber is recorded as disconnected.
async fn disconnected(t: &TestDaemon, id: isp_core::domain::SubscriberId) -> bool {
    let s = t.repos.subscribers.get(id).await.expect("subscriber row");
    !s.active && s.disconnected_at.is_some()
}

/// A subscriber whose `paid_until` passes is gone from every router of the
/// tenant within 2 seconds (and not before), the expiry SMS goes out once,
/// and `/api/health` never lists them as expired-but-connected afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_subscriber_is_gone_from_every_router_of_the_tenant_within_two_seconds() {
    let t = TestDaemon::start(Options::default()).await;
    let paid_until = Utc::now() + chrono::Duration::seconds(3);
    // Tenant 1 has routers 0 and 1: the device is on both (roaming).
    let sub = t.subscriber(1, "+255712000001", paid_until, &[0, 1]).await;
    // Another subscriber of the same tenant, paid for longer: must stay.
    let other_until = Utc::now() + chrono::Duration::seconds(60);
    let other = t.subscriber(1, "+255712000002", other_until, &[0]).await;
    let user = sub.username.to_string();
    assert_eq!(t.sessions(0, &user) + t.sessions(1, &user), 2);

    // No early kick: checked below by each router's removal time, which must
    // not precede paid_until.
    let gone = eventually(Duration::from_secs(6), || {
        t.sessions(0, &user) == 0 && t.sessions(1, &user) == 0
    })
    .await;
    assert!(gone, "sessions still on the routers 3 s after paid_until");
    for r in [0, 1] {
        let at = t.removed_at(r, &user).expect("removal recorded by the router");
        let lag = at - paid_until;
        assert!(
            lag >= chrono::Duration::zero(),
            "router {r}: removed {lag} before paid_until"
        );
        assert!(
            lag <= chrono::Duration::seconds(2),
            "router {r}: removed {lag} after paid_until (> 2 s)"
        );
        assert_eq!(
            t.user_disabled(r, &user),
            Some(true),
            "router {r}: hotspot user not disabled"
        );
    }
    // The other subscriber is untouched.
    assert_eq!(t.sessions(0, other.username.as_str()), 1);

    // The database agrees, and health never lists the subscriber as overdue again.
    assert!(
        until(Duration::from_secs(2), || disconnected(&t, sub.id)).await,
        "subscriber not marked disconnected after the routers confirmed"
    );
    // Across three further checks of the watcher, health never lists them again.
    for _ in 0..3 {
        let h = t.health().await;
        assert!(
            !overdue_ids(&h).contains(&sub.id.0),
            "health lists the subscriber as overdue: {h}"
        );
        assert_eq!(h["health"], "healthy", "{h}");
        let seen = last_check(&t);
        assert!(
            eventually(Duration::from_secs(5), || last_check(&t) > seen).await,
            "the watcher stopped checking"
        );
    }

    // The expiry notice went out exactly once (the sweep ran several times meanwhile).
    let expired_text = Templates::default().hotspot_expired;
    let sent = sent_to(&t.sms, "+255712000001");
    assert_eq!(sent.get(&expired_text).copied(), Some(1), "expiry SMS: {sent:?}");
    assert!(
        sent.values().all(|n| *n == 1),
        "a message went out twice: {sent:?}"
    );
    t.stop().await;
}

/// A router that is down when the subscriber expires gets the removal when it
/// comes back; until then the subscriber is not marked disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_down_during_expiry_gets_the_removal_when_it_comes_back() {
    let t = TestDaemon::start(Options::default()).await;
    let paid_until = Utc::now() + chrono::Duration::seconds(2);
    let sub = t.subscriber(1, "+255712000011", paid_until, &[0, 1]).await;
    let user = sub.username.to_string();
    // Router index 1 goes down from now for 6 s.
    t.handles[1].outage(Duration::from_secs(6));
    let outage_end = tokio::time::Instant::now() + Duration::from_secs(6);

    // Router 0 gets the removal on time.
    assert!(
        eventually(Duration::from_secs(5), || t.sessions(0, &user) == 0).await,
        "the reachable router kept the session"
    );
    // While router 1 is down, the subscriber stays pending (no false "disconnected"):
    // checked once a disconnect run has finished with router 1 failing.
    let runner = t.daemon.as_ref().expect("daemon").runner().clone();
    assert!(
        eventually(Duration::from_secs(5), || {
            runner
                .last_runs()
                .get(&JobKind::DisconnectExpired)
                .is_some_and(|r| r.finished_at > paid_until && r.failures > 0)
        })
        .await,
        "no disconnect run reported the unreachable router"
    );
    assert!(
        tokio::time::Instant::now() < outage_end,
        "test too slow: outage already over"
    );
    let s = t.repos.subscribers.get(sub.id).await.unwrap();
    assert!(
        s.active && s.disconnected_at.is_none(),
        "marked disconnected while a router was down: {s:?}"
    );
    let h = t.health().await;
    assert!(
        overdue_ids(&h).contains(&sub.id.0),
        "health hides the pending disconnect: {h}"
    );
    assert_eq!(t.sessions(1, &user), 1);

    // When it comes back, it gets the removal.
    assert!(
        eventually(Duration::from_secs(18), || t.sessions(1, &user) == 0).await,
        "router came back but still holds the session"
    );
    let at = t.removed_at(1, &user).expect("removal on the recovered router");
    assert!(at > paid_until);
    assert!(
        until(Duration::from_secs(4), || disconnected(&t, sub.id)).await,
        "subscriber still pending after every router confirmed"
    );
    let h = t.health().await;
    assert!(!overdue_ids(&h).contains(&sub.id.0), "{h}");
    // The run sends its SMS after it has recorded the expiry: wait for the send.
    let expired_text = Templates::default().hotspot_expired;
    assert!(
        eventually(Duration::from_secs(5), || {
            sent_to(&t.sms, "+255712000011").contains_key(&expired_text)
        })
        .await,
        "no expiry SMS after the disconnect"
    );
    let sent = sent_to(&t.sms, "+255712000011");
    assert_eq!(sent.get(&expired_text).copied(), Some(1), "{sent:?}");
    t.stop().await;
}

/// A purchase extended before the deadline is not enforced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_before_the_deadline_wins() {
    let t = TestDaemon::start(Options::default()).await;
    let paid_until = Utc::now() + chrono::Duration::seconds(2);
    let sub = t.subscriber(2, "+255712000021", paid_until, &[2]).await;
    t.repos
        .subscribers
        .extend(sub.id, Utc::now() + chrono::Duration::seconds(60))
        .await
        .unwrap();
    t.daemon.as_ref().expect("daemon").runner().nudge();
    // Wait until the watcher has checked the database twice past the old
    // deadline: had it kept the old deadline, it would have cut the user by then.
    let past = paid_until + chrono::Duration::seconds(1);
    assert!(
        eventually(Duration::from_secs(10), || last_check(&t)
            .is_some_and(|at| at > past))
        .await,
        "the watcher did not check past the old deadline"
    );
    assert_eq!(
        t.sessions(2, sub.username.as_str()),
        1,
        "extended subscriber was kicked"
    );
    let s = t.repos.subscribers.get(sub.id).await.unwrap();
    assert!(s.active);
    t.stop().await;
}

/// A shutdown in the middle of a disconnect: the run is cut off after the
/// grace period, nothing is marked disconnected that the routers did not
/// confirm, and the next daemon on the same database finishes the work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_disconnect_leaves_the_work_pending_for_the_next_daemon() {
    let mut t = TestDaemon::start(Options {
        shutdown_grace: "1s",
        ..Options::default()
    })
    .await;
    let paid_until = Utc::now() + chrono::Duration::seconds(1);
    let sub = t.subscriber(1, "+255712000031", paid_until, &[0]).await;
    let user = sub.username.to_string();
    // Every reply of router 0 now takes 1.5 s: the disconnect is in flight for many seconds.
    t.handles[0].set_latency(Duration::from_millis(1500));
    t.handles[0].clear_command_log();
    // Stop once the removal has reached the router (its reply is still 1.5 s away).
    assert!(
        eventually(Duration::from_secs(10), || t.handles[0]
            .command_log()
            .iter()
            .any(|c| c.command.ends_with("/remove")))
        .await,
        "the disconnect never reached the router"
    );
    let drained = t.stop_daemon().await;
    assert!(!drained, "the slow disconnect should still have been running");
    let s = t.repos.subscribers.get(sub.id).await.unwrap();
    assert!(
        s.active && s.disconnected_at.is_none(),
        "marked disconnected although the run was cut off: {s:?}"
    );
    let expired_text = Templates::default().hotspot_expired;
    assert_eq!(sent_to(&t.sms, "+255712000031").get(&expired_text), None);

    // The router recovers; a new daemon picks the subscriber up once the claim expires.
    t.handles[0].clear_faults();
    t.restart_daemon().await;
    assert!(
        until(Duration::from_secs(15), || disconnected(&t, sub.id)).await,
        "the next daemon did not finish the pending disconnect"
    );
    assert_eq!(t.sessions(0, &user), 0);
    // The run sends its SMS after it has recorded the expiry: wait for the send.
    assert!(
        eventually(Duration::from_secs(5), || {
            sent_to(&t.sms, "+255712000031").contains_key(&expired_text)
        })
        .await,
        "no expiry SMS from the next daemon"
    );
    assert_eq!(
        sent_to(&t.sms, "+255712000031").get(&expired_text).copied(),
        Some(1)
    );
    t.stop().await;
}
