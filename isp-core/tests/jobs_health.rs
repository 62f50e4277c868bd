//! Router health (alert on change only), the admin health summary, the next
//! wake-up, device clean-up and log retention.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jobs_support;
mod policy_fixtures;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use isp_core::domain::*;
use isp_core::jobs::{HealthState, JobKind, RunOptions};
use isp_core::ports::RouterHealth;
use isp_core::Error;
use jobs_support::*;
use policy_fixtures::*;

fn now() -> DateTime<Utc> {
    t("2025-12-15T12:25:00Z")
}

fn status(id: i64, online: bool, changed: DateTime<Utc>, skew: Option<i64>) -> RouterStatus {
    RouterStatus {
        router_id: RouterId(id),
        online,
        checked_at: changed,
        changed_at: changed,
        clock_skew_secs: skew,
        version: Some("7.15".into()),
        last_error: None,
    }
}

fn healthy(clock: DateTime<Utc>) -> RouterHealth {
    RouterHealth {
        identity: "r".into(),
        version: Some("7.16".into()),
        uptime: None,
        cpu_load: Some(3),
        free_memory: None,
        total_memory: None,
        clock: Some(clock),
    }
}

#[tokio::test]
async fn alerts_only_on_state_change_and_new_clock_skew() {
    let mut m = Mocks::new(now());
    m.with_tenants(vec![tenant(1, "UTC")]);
    m.with_routers(vec![
        router(1, 1, true),  // was online, now down: alert
        router(2, 1, true),  // was offline, still down: no alert
        router(3, 1, true),  // was offline, back: alert
        router(4, 1, true),  // never checked, online, clock 5 min ahead: skew alert
        router(5, 1, true),  // online, skew already known: no alert
        router(6, 1, false), // disabled: not probed
    ]);
    let earlier = now() - Duration::hours(1);
    m.router_status.expect_get().returning(move |id| {
        Ok(match id.0 {
            1 => Some(status(1, true, earlier, Some(0))),
            2 => Some(status(2, false, earlier, None)),
            3 => Some(status(3, false, earlier, None)),
            5 => Some(status(5, true, earlier, Some(400))),
            _ => None,
        })
    });
    m.driver.expect_health().times(5).returning(|r| match r.id.0 {
        1 | 2 => Err(Error::unavailable(
            format!("router {}", r.name),
            "connection refused",
        )),
        4 => Ok(healthy(now() + Duration::seconds(300))),
        5 => Ok(healthy(now() + Duration::seconds(400))),
        _ => Ok(healthy(now())),
    });
    let stored = Arc::new(Mutex::new(Vec::new()));
    let s = stored.clone();
    m.router_status.expect_put().times(5).returning(move |st| {
        s.lock().unwrap().push(st.clone());
        Ok(())
    });
    let audit = m.audit_log.clone();

    let report = m
        .engine()
        .run(JobKind::RouterHealth, RunOptions::default())
        .await
        .unwrap();

    assert_eq!(report.count("routers_online"), 3);
    assert_eq!(report.count("routers_offline"), 2);
    assert_eq!(report.count("alerts"), 3);
    assert_eq!(report.count("clock_skewed"), 2);
    let audit = audit.lock().unwrap();
    let mut alerts: Vec<(String, i64)> = audit
        .iter()
        .map(|e| (e.action.clone(), e.router_id.unwrap().0))
        .collect();
    alerts.sort();
    assert_eq!(
        alerts,
        vec![
            ("router_clock_skew".to_owned(), 4),
            ("router_offline".to_owned(), 1),
            ("router_online".to_owned(), 3)
        ]
    );
    let stored = stored.lock().unwrap();
    let by = |id: i64| {
        stored
            .iter()
            .find(|s| s.router_id == RouterId(id))
            .unwrap()
            .clone()
    };
    assert_eq!(by(1).changed_at, now());
    assert!(!by(1).online);
    assert!(by(1)
        .last_error
        .as_deref()
        .unwrap()
        .contains("connection refused"));
    assert_eq!(by(1).version.as_deref(), Some("7.15"), "last known version kept");
    assert_eq!(by(2).changed_at, earlier, "no change, no new changed_at");
    assert_eq!(by(3).changed_at, now());
    assert_eq!(by(4).clock_skew_secs, Some(300));
    assert_eq!(by(4).version.as_deref(), Some("7.16"));
}

#[tokio::test]
async fn health_summary_flags_overdue_disconnects_like_seed_001() {
    let mut m = Mocks::new(now());
    m.subscribers.expect_count_entitled().returning(|_| Ok(15));
    m.subscribers
        .expect_expiring_between()
        .withf(|from, to, _| *from == now() && *to == now() + Duration::minutes(30))
        .returning(|_, _, _| Ok(vec![subscriber(42, 1, t("2025-12-15T12:30:00Z"), true)]));
    let mut overdue = subscriber(7, 1, now() - Duration::minutes(10), true);
    overdue.attempts = 2;
    m.subscribers
        .expect_list_expired()
        .returning(move |_, _| Ok(vec![overdue.clone()]));
    m.with_routers(vec![router(1, 1, true), router(2, 1, true), router(3, 1, false)]);
    m.router_status
        .expect_list()
        .returning(|| Ok(vec![status(1, true, now(), None), status(3, false, now(), None)]));
    let engine = m.engine();
    let s = engine.health_summary().await.unwrap();
    assert_eq!(s.total_active_users, 15);
    assert_eq!(s.expiring_in_30_min, 1);
    assert_eq!(s.expiring_soon[0].remaining_minutes, 5);
    assert_eq!(s.expired_not_disconnected.len(), 1);
    assert_eq!(s.expired_not_disconnected[0].overdue_minutes, 10);
    assert_eq!(
        (s.routers_online, s.routers_offline, s.routers_unchecked),
        (1, 0, 1)
    );
    assert_eq!(s.health, HealthState::NeedsAttention);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["health"], "needs_attention");
    assert_eq!(json["expiring_soon"][0]["id"], 42);
    assert_eq!(json["expiring_soon"][0]["phone_number"], phone(42).to_string());
    assert_eq!(json["expiring_soon"][0]["expires_at"], "2025-12-15T12:30:00Z");
}

#[tokio::test]
async fn health_is_healthy_within_the_grace_and_routers_online() {
    let mut m = Mocks::new(now());
    m.subscribers.expect_count_entitled().returning(|_| Ok(3));
    m.subscribers
        .expect_expiring_between()
        .returning(|_, _, _| Ok(vec![]));
    // Expired 30 s ago: the disconnect job's normal lag.
    m.subscribers
        .expect_list_expired()
        .returning(|_, _| Ok(vec![subscriber(7, 1, now() - Duration::seconds(30), true)]));
    m.with_routers(vec![router(1, 1, true)]);
    m.router_status
        .expect_list()
        .returning(|| Ok(vec![status(1, true, now(), None)]));
    let s = m.engine().health_summary().await.unwrap();
    assert_eq!(s.health, HealthState::Healthy);
    assert_eq!(s.expired_not_disconnected.len(), 1);
}

#[tokio::test]
async fn an_offline_router_needs_attention() {
    let mut m = Mocks::new(now());
    m.subscribers.expect_count_entitled().returning(|_| Ok(0));
    m.subscribers
        .expect_expiring_between()
        .returning(|_, _, _| Ok(vec![]));
    m.subscribers.expect_list_expired().returning(|_, _| Ok(vec![]));
    m.with_routers(vec![router(1, 1, true)]);
    m.router_status
        .expect_list()
        .returning(|| Ok(vec![status(1, false, now(), None)]));
    let s = m.engine().health_summary().await.unwrap();
    assert_eq!(s.health, HealthState::NeedsAttention);
}

#[tokio::test]
async fn next_wakeup_is_the_earliest_deadline_driven_event() {
    let now = t("2026-05-07T06:00:00Z");
    let mut m = Mocks::new(now);
    m.with_tenants(vec![tenant(1, "Africa/Dar_es_Salaam")]);
    m.subscribers
        .expect_next_expiry_after()
        .returning(move |_| Ok(Some(now + Duration::minutes(50))));
    // The next subscriber past the one-hour horizon expires in 70 minutes: warn in 10.
    m.subscribers
        .expect_expiring_between()
        .withf(move |from, _, limit| *from == now + Duration::hours(1) && *limit == 1)
        .returning(move |_, _, _| Ok(vec![subscriber(1, 1, now + Duration::minutes(70), true)]));
    m.vouchers
        .expect_next_deadline_after()
        .returning(move |_| Ok(Some(now + Duration::minutes(20))));
    // A pending grant's back-off ends in 5 minutes: the earliest.
    m.grants
        .expect_next_due_after()
        .returning(move |_| Ok(Some(now + Duration::minutes(5))));
    m.services.expect_due_between().returning(|_, _, _| Ok(vec![]));
    let engine = m.engine();
    assert_eq!(
        engine.next_wakeup().await.unwrap(),
        Some(now + Duration::minutes(5))
    );
}

fn wakeup_engine(services: Vec<Service>) -> isp_core::jobs::Engine {
    let now = t("2026-05-07T06:00:00Z"); // 09:00 in Dar es Salaam
    let mut m = Mocks::new(now);
    m.with_tenants(vec![tenant(1, "Africa/Dar_es_Salaam")]);
    m.subscribers.expect_next_expiry_after().returning(|_| Ok(None));
    m.subscribers
        .expect_expiring_between()
        .returning(|_, _, _| Ok(vec![]));
    m.vouchers.expect_next_deadline_after().returning(|_| Ok(None));
    m.grants.expect_next_due_after().returning(|_| Ok(None));
    m.services
        .expect_due_between()
        .withf(|_, from, to| *from == d(2026, 5, 7) && *to == d(2026, 5, 10))
        .returning(move |_, _, _| Ok(services.clone()));
    m.engine()
}

#[tokio::test]
async fn next_wakeup_sees_service_reminders_and_local_midnight() {
    // Nothing due: the tenant's next local midnight (billing and due dates move).
    assert_eq!(
        wakeup_engine(vec![]).next_wakeup().await.unwrap(),
        Some(t("2026-05-07T21:00:00Z"))
    );
    // A PPPoE service due today expires at local midnight; its 3 h warning is at 21:00 local.
    let ppp = service(1, 1, 1, ServiceStatus::Active, pppoe("a"), d(2026, 5, 7), true);
    assert_eq!(
        wakeup_engine(vec![ppp]).next_wakeup().await.unwrap(),
        Some(t("2026-05-07T18:00:00Z"))
    );
    // Due in three days, static IP: the payment reminder at 09:00 local today has passed;
    // nothing earlier than midnight.
    let later = service(2, 1, 1, ServiceStatus::Active, static_ip(2), d(2026, 5, 10), true);
    assert_eq!(
        wakeup_engine(vec![later]).next_wakeup().await.unwrap(),
        Some(t("2026-05-07T21:00:00Z"))
    );
}

#[tokio::test]
async fn cleanup_jobs_use_the_configured_retention() {
    let mut m = Mocks::new(now());
    m.devices
        .expect_delete_unseen_since()
        .times(1)
        .withf(|cutoff| *cutoff == now() - Duration::days(30))
        .returning(|_| Ok(4));
    m.audit
        .expect_delete_before()
        .times(1)
        .withf(|cutoff| *cutoff == now() - Duration::days(180))
        .returning(|_| Ok(1000));
    let engine = m.engine();
    let r = engine
        .run(JobKind::DeviceCleanup, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(r.count("devices_deleted"), 4);
    let r = engine
        .run(JobKind::LogRetention, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(r.count("events_deleted"), 1000);
    // Dry runs delete nothing (the expectations above allow one call each).
    engine
        .run(JobKind::DeviceCleanup, RunOptions { dry_run: true })
        .await
        .unwrap();
    engine
        .run(JobKind::LogRetention, RunOptions { dry_run: true })
        .await
        .unwrap();
}
