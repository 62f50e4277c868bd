//! End-to-end: the daemon on SQLite enforces expiry on simulated routers over TCP.

use std::time::Duration;

use chrono::Utc;
use isp_core::jobs::Templates;
use isp_tests::{eventually, overdue_ids, sent_to, Options, TestDaemon};

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

    // Before the deadline nothing is removed (no early kick).
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(t.sessions(0, &user), 1, "kicked before paid_until");
    assert_eq!(t.sessions(1, &user), 1, "kicked before paid_until");

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
    let mut confirmed = false;
    for _ in 0..20 {
        let s = t.repos.subscribers.get(sub.id).await.unwrap();
        if !s.active && s.disconnected_at.is_some() {
            confirmed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        confirmed,
        "subscriber not marked disconnected after the routers confirmed"
    );
    for _ in 0..6 {
        let h = t.health().await;
        assert!(
            !overdue_ids(&h).contains(&sub.id.0),
            "health lists the subscriber as overdue: {h}"
        );
        assert_eq!(h["health"], "healthy", "{h}");
        tokio::time::sleep(Duration::from_millis(500)).await;
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
    // While router 1 is down, the subscriber stays pending (no false "disconnected").
    tokio::time::sleep(Duration::from_millis(500)).await;
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
    tokio::time::sleep_until(outage_end).await;
    assert!(
        eventually(Duration::from_secs(12), || t.sessions(1, &user) == 0).await,
        "router came back but still holds the session"
    );
    let at = t.removed_at(1, &user).expect("removal on the recovered router");
    assert!(at > paid_until);
    let mut done = false;
    for _ in 0..40 {
        let s = t.repos.subscribers.get(sub.id).await.unwrap();
        if !s.active && s.disconnected_at.is_some() {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(done, "subscriber still pending after every router confirmed");
    let h = t.health().await;
    assert!(!overdue_ids(&h).contains(&sub.id.0), "{h}");
    // The run sends its SMS after it has recorded the expiry: wait for the send.
    let expired_text = Templates::default().hotspot_expired;
    eventually(Duration::from_secs(5), || {
        sent_to(&t.sms, "+255712000011").contains_key(&expired_text)
    })
    .await;
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
    t.daemon.as_ref().unwrap().runner().nudge();
    tokio::time::sleep(Duration::from_secs(4)).await;
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
    tokio::time::sleep(Duration::from_millis(2500)).await;
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
    let mut done = false;
    for _ in 0..150 {
        let s = t.repos.subscribers.get(sub.id).await.unwrap();
        if !s.active && s.disconnected_at.is_some() {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(done, "the next daemon did not finish the pending disconnect");
    assert_eq!(t.sessions(0, &user), 0);
    // The run sends its SMS after it has recorded the expiry: wait for the send.
    eventually(Duration::from_secs(5), || {
        sent_to(&t.sms, "+255712000031").contains_key(&expired_text)
    })
    .await;
    assert_eq!(
        sent_to(&t.sms, "+255712000031").get(&expired_text).copied(),
        Some(1)
    );
    t.stop().await;
}
