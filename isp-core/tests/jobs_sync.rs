//! Orchestration of router sync: one snapshot per router, actions only on
//! objects we own, a failing router does not stop the others.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jobs_support;
mod policy_fixtures;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use isp_core::domain::*;
use isp_core::jobs::{JobKind, RunOptions};
use isp_core::policy::reconcile::RECONCILE_MENUS;
use isp_core::ports::*;
use isp_core::Error;
use jobs_support::*;
use policy_fixtures::*;

fn now() -> DateTime<Utc> {
    t("2026-01-14T12:00:00Z")
}

fn user(name: &str, comment: Option<&str>) -> HotspotUser {
    HotspotUser {
        id: format!("*U{name}"),
        name: name.into(),
        disabled: false,
        comment: comment.map(str::to_owned),
        uptime: None,
        limit_uptime: None,
    }
}

fn session(id: &str, user: &str) -> HotspotSession {
    HotspotSession {
        id: id.into(),
        user: Some(user.into()),
        mac: None,
        address: None,
        uptime: None,
    }
}

fn world(m: &mut Mocks) {
    m.with_tenants(vec![tenant(1, "UTC")]);
    m.with_routers(vec![router(1, 1, true), router(2, 1, false), router(3, 1, true)]);
    m.subscribers.expect_active_of_tenant().times(1).returning(|_| {
        Ok(vec![
            subscriber(1, 1, now() - Duration::minutes(5), true),
            subscriber(2, 1, now() + Duration::hours(2), true),
        ])
    });
    m.services.expect_on_router().returning(|r| {
        Ok(if r == RouterId(1) {
            vec![service(
                5,
                1,
                1,
                ServiceStatus::Active,
                pppoe("alice"),
                d(2026, 2, 1),
                true,
            )]
        } else {
            vec![]
        })
    });
    m.vouchers.expect_on_router().returning(|r, statuses| {
        assert_eq!(statuses.len(), 4, "every status");
        let mut v = voucher(9, 1, "GONE1", VoucherStatus::Active);
        v.expected_end = Some(now() + Duration::hours(1));
        Ok(if r == RouterId(1) { vec![v] } else { vec![] })
    });
    m.plans.expect_get().returning(|id| Ok(plan(id.0, 1, "10", None)));
    m.driver.expect_snapshot().times(2).returning(|r, menus| {
        assert_eq!(menus, &RECONCILE_MENUS[..]);
        if r.id == RouterId(3) {
            return Err(Error::unavailable("router Router3", "no route to host"));
        }
        Ok(RouterSnapshot {
            hotspot_users: vec![
                user("expired", Some("isp:sub:1")),
                user("paid", Some("isp:sub:2")),
                user("guest", None),
            ],
            hotspot_active: vec![
                session("*A1", "expired"),
                session("*A2", "paid"),
                session("*A3", "guest"),
            ],
            ..Default::default()
        })
    });
}

#[tokio::test]
async fn reconciles_each_router_touching_only_our_objects() {
    let mut m = Mocks::new(now());
    world(&mut m);
    let calls = Arc::new(Mutex::new(Vec::<String>::new()));
    let c = calls.clone();
    m.driver
        .expect_remove_hotspot_sessions()
        .times(1)
        .returning(move |r, ids| {
            c.lock()
                .unwrap()
                .push(format!("{} remove {}", r.name, ids.join(",")));
            Ok(ids.len() as u32)
        });
    let c = calls.clone();
    m.driver.expect_set_hotspot_user_disabled().never();
    m.driver
        .expect_set_hotspot_users_disabled()
        .times(1)
        .returning(move |r, changes| {
            for (name, owner, disabled) in changes {
                assert!(matches!(owner, OwnerTag::Subscriber(_)), "{owner:?}");
                c.lock()
                    .unwrap()
                    .push(format!("{} disable={disabled} {name}", r.name));
            }
            Ok(changes.iter().map(|_| Ok(())).collect())
        });
    let c = calls.clone();
    m.driver
        .expect_provision_pppoe()
        .times(1)
        .returning(move |r, spec| {
            c.lock()
                .unwrap()
                .push(format!("{} restore {}", r.name, spec.username));
            Ok(())
        });
    m.vouchers
        .expect_expire()
        .times(1)
        .withf(|id, seen, reason, at| {
            *id == VoucherId(9)
                && *seen == VoucherStatus::Active
                && *reason == VoucherExpiryReason::RouterUserGone
                && *at == now()
        })
        .returning(|_, _, _, _| Ok(true));

    let report = m
        .engine()
        .run(JobKind::SyncRouters, RunOptions::default())
        .await
        .unwrap();

    let mut calls = calls.lock().unwrap().clone();
    calls.sort();
    assert_eq!(
        calls,
        vec![
            "Router1 disable=true expired",
            "Router1 remove *A1",
            "Router1 restore alice"
        ]
    );
    assert_eq!(report.count("routers_synced"), 1);
    assert_eq!(report.count("routers_failed"), 1);
    assert_eq!(report.count("routers_skipped_disabled"), 1);
    assert_eq!(report.count("sessions_removed"), 1);
    assert_eq!(report.count("users_disabled"), 1);
    assert_eq!(report.count("secrets_restored"), 1);
    assert_eq!(report.count("vouchers_expired_by_sync"), 1);
    assert_eq!(report.per_router["tenant-1:Router1"]["sessions_removed"], 1);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].router.as_deref(), Some("tenant-1:Router3"));
}

#[tokio::test]
async fn dry_run_reads_routers_but_changes_nothing() {
    let mut m = Mocks::new(now());
    world(&mut m);
    m.driver.expect_remove_hotspot_sessions().never();
    m.driver.expect_set_hotspot_user_disabled().never();
    m.driver.expect_set_hotspot_users_disabled().never();
    m.driver.expect_provision_pppoe().never();
    m.vouchers.expect_expire().never();
    let report = m
        .engine()
        .run(JobKind::SyncRouters, RunOptions { dry_run: true })
        .await
        .unwrap();
    assert_eq!(report.count("sessions_removed"), 1);
    assert_eq!(report.count("users_disabled"), 1);
    assert_eq!(report.count("secrets_restored"), 1);
    assert_eq!(report.count("vouchers_expired_by_sync"), 1);
}

#[tokio::test]
async fn user_changes_go_to_the_router_in_one_call() {
    let mut m = Mocks::new(now());
    m.with_tenants(vec![tenant(1, "UTC")]);
    m.with_routers(vec![router(1, 1, true)]);
    m.subscribers.expect_active_of_tenant().returning(|_| {
        Ok(vec![
            subscriber(1, 1, now() - Duration::minutes(5), true),
            subscriber(2, 1, now() + Duration::hours(2), true),
            subscriber(3, 1, now() - Duration::minutes(1), true),
        ])
    });
    m.services.expect_on_router().returning(|_| Ok(vec![]));
    m.vouchers.expect_on_router().returning(|_, _| Ok(vec![]));
    m.driver.expect_snapshot().times(1).returning(|_, _| {
        let mut paid = user("paid", Some("isp:sub:2"));
        paid.disabled = true;
        Ok(RouterSnapshot {
            hotspot_users: vec![
                user("expired", Some("isp:sub:1")),
                paid,
                user("gone", Some("isp:sub:3")),
            ],
            ..Default::default()
        })
    });
    m.driver.expect_set_hotspot_user_disabled().never();
    m.driver
        .expect_set_hotspot_users_disabled()
        .times(1)
        .returning(|_, changes| {
            let mut seen: Vec<String> = changes
                .iter()
                .map(|(n, o, d)| format!("{n}={d} ({})", o.comment()))
                .collect();
            seen.sort();
            assert_eq!(
                seen,
                vec![
                    "expired=true (isp:sub:1)",
                    "gone=true (isp:sub:3)",
                    "paid=false (isp:sub:2)"
                ]
            );
            Ok(changes
                .iter()
                .map(|(n, _, _)| {
                    if n.as_str() == "gone" {
                        Err(Error::not_found("hotspot user", n))
                    } else {
                        Ok(())
                    }
                })
                .collect())
        });
    let report = m
        .engine()
        .run(JobKind::SyncRouters, RunOptions::default())
        .await
        .unwrap();
    // The user that vanished meanwhile is not counted and not a failure.
    assert_eq!(report.count("users_disabled"), 1);
    assert_eq!(report.count("users_enabled"), 1);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
}

#[tokio::test]
async fn a_failed_user_batch_fails_each_change_and_the_rest_goes_on() {
    let mut m = Mocks::new(now());
    m.with_tenants(vec![tenant(1, "UTC")]);
    m.with_routers(vec![router(1, 1, true)]);
    m.subscribers.expect_active_of_tenant().returning(|_| {
        Ok(vec![
            subscriber(1, 1, now() - Duration::minutes(5), true),
            subscriber(3, 1, now() - Duration::minutes(1), true),
        ])
    });
    m.services.expect_on_router().returning(|_| Ok(vec![]));
    m.vouchers.expect_on_router().returning(|_, _| Ok(vec![]));
    m.driver.expect_snapshot().times(1).returning(|_, _| {
        Ok(RouterSnapshot {
            hotspot_users: vec![
                user("expired", Some("isp:sub:1")),
                user("late", Some("isp:sub:3")),
            ],
            hotspot_active: vec![session("*A1", "expired")],
            ..Default::default()
        })
    });
    m.driver
        .expect_set_hotspot_users_disabled()
        .times(1)
        .returning(|_, _| Err(Error::unavailable("router Router1", "connection reset")));
    m.driver
        .expect_remove_hotspot_sessions()
        .times(1)
        .returning(|_, ids| Ok(ids.len() as u32));
    let report = m
        .engine()
        .run(JobKind::SyncRouters, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.count("sessions_removed"), 1);
    assert_eq!(report.count("users_disabled"), 0);
    assert_eq!(report.failures.len(), 2, "{:?}", report.failures);
    assert!(report
        .failures
        .iter()
        .all(|f| f.router.as_deref() == Some("tenant-1:Router1")));
}

#[tokio::test]
async fn tenants_are_synced_in_rounds_so_not_every_subscriber_is_in_memory_at_once() {
    let mut m = Mocks::new(now());
    m.with_tenants(vec![tenant(1, "UTC"), tenant(2, "UTC"), tenant(3, "UTC")]);
    // Eight routers per tenant: tenants 1 and 2 fill the first round of 16.
    m.with_routers((1..=24).map(|i| router(i, (i - 1) / 8 + 1, true)).collect());
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let l = log.clone();
    m.subscribers
        .expect_active_of_tenant()
        .times(3)
        .returning(move |t| {
            l.lock().unwrap().push(format!("load {}", t.0));
            Ok(vec![])
        });
    m.services.expect_on_router().returning(|_| Ok(vec![]));
    m.vouchers.expect_on_router().returning(|_, _| Ok(vec![]));
    let l = log.clone();
    m.driver.expect_snapshot().times(24).returning(move |r, _| {
        l.lock().unwrap().push(format!("snapshot {}", r.tenant_id.0));
        Ok(RouterSnapshot::default())
    });
    let report = m
        .engine()
        .run(JobKind::SyncRouters, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.count("routers_synced"), 24);
    let log = log.lock().unwrap().clone();
    let at = |entry: &str| log.iter().position(|e| e == entry).unwrap();
    let last_snapshot_of = |t: i64| log.iter().rposition(|e| *e == format!("snapshot {t}")).unwrap();
    assert!(
        at("load 1") > last_snapshot_of(1) && at("load 1") > last_snapshot_of(2),
        "records are read after the round's snapshots: {log:?}"
    );
    assert!(
        at("load 2") < at("snapshot 3"),
        "tenants 1 and 2 share a round: {log:?}"
    );
    assert!(
        at("load 3") > last_snapshot_of(3),
        "tenant 3 has a round of its own: {log:?}"
    );
}

/// A sync that starts while a subscriber is still paid and reads the router
/// after the watcher disabled the subscriber's user at expiry.
fn expiry_during_snapshot(m: &mut Mocks, paid_until: DateTime<Utc>, loaded_paid_until: DateTime<Utc>) {
    m.with_tenants(vec![tenant(1, "UTC")]);
    m.with_routers(vec![router(1, 1, true)]);
    let clock = m.clock.clone();
    m.driver.expect_snapshot().times(1).returning(move |_, _| {
        // The snapshot takes a while; the paid time ends meanwhile.
        clock.set(paid_until + Duration::seconds(5));
        let mut u = user("u1", Some("isp:sub:1"));
        u.disabled = true;
        Ok(RouterSnapshot {
            hotspot_users: vec![u],
            ..Default::default()
        })
    });
    m.subscribers
        .expect_active_of_tenant()
        .times(1)
        .returning(move |_| Ok(vec![subscriber(1, 1, loaded_paid_until, true)]));
    m.services.expect_on_router().returning(|_| Ok(vec![]));
    m.vouchers.expect_on_router().returning(|_, _| Ok(vec![]));
}

#[tokio::test]
async fn a_user_disabled_at_expiry_during_the_sync_is_not_enabled_again() {
    let mut m = Mocks::new(now());
    let paid_until = now() + Duration::seconds(30);
    expiry_during_snapshot(&mut m, paid_until, paid_until);
    // No expectation on set_hotspot_users_disabled: a call fails the test.
    let report = m
        .engine()
        .run(JobKind::SyncRouters, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.count("routers_synced"), 1);
    assert_eq!(report.count("users_enabled"), 0);
}

#[tokio::test]
async fn a_subscriber_who_paid_while_the_router_was_read_is_enabled() {
    let mut m = Mocks::new(now());
    let paid_until = now() + Duration::seconds(30);
    // Renewed between the snapshot and the read of the records.
    expiry_during_snapshot(&mut m, paid_until, paid_until + Duration::days(1));
    let changes = Arc::new(Mutex::new(Vec::new()));
    let c = changes.clone();
    m.driver
        .expect_set_hotspot_users_disabled()
        .times(1)
        .returning(move |_, batch| {
            c.lock()
                .unwrap()
                .extend(batch.iter().map(|(n, o, d)| (n.to_string(), o.comment(), *d)));
            Ok(batch.iter().map(|_| Ok(())).collect())
        });
    let report = m
        .engine()
        .run(JobKind::SyncRouters, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.count("users_enabled"), 1);
    assert_eq!(
        *changes.lock().unwrap(),
        vec![("u1".to_owned(), "isp:sub:1".to_owned(), false)]
    );
}

fn binding(i: u8, kind: BindingType, comment: Option<&str>) -> IpBinding {
    IpBinding {
        id: format!("*B{i}"),
        mac: Some(MacAddress::from_octets([2, 0, 0, 0, 0, i])),
        address: None,
        kind,
        comment: comment.map(str::to_owned),
        disabled: false,
    }
}

#[tokio::test]
async fn bypass_bindings_no_entitlement_backs_are_removed_and_counted_as_the_router_confirms() {
    let mut m = Mocks::new(now());
    m.with_tenants(vec![tenant(1, "UTC")]);
    m.with_routers(vec![router(1, 1, true)]);
    m.subscribers.expect_active_of_tenant().times(1).returning(|_| {
        Ok(vec![
            subscriber(1, 1, now() - Duration::minutes(5), true),
            subscriber(2, 1, now() + Duration::hours(2), true),
        ])
    });
    m.services.expect_on_router().returning(|_| Ok(vec![]));
    m.vouchers.expect_on_router().returning(|_, _| Ok(vec![]));
    m.driver.expect_snapshot().times(1).returning(|_, _| {
        Ok(RouterSnapshot {
            ip_bindings: vec![
                // Expired subscriber 1's portal bypass, and its regular binding.
                binding(1, BindingType::Bypassed, Some("isp:sub:1")),
                binding(2, BindingType::Regular, Some("isp:sub:1")),
                // Paid subscriber 2's, and the operator's: they stay.
                binding(3, BindingType::Bypassed, Some("isp:sub:2")),
                binding(4, BindingType::Bypassed, Some("front desk")),
            ],
            ..Default::default()
        })
    });
    // The old path: a no-op on bypass bindings that still counted them.
    m.driver.expect_unblock_device().never();
    let sub1 = OwnerTag::Subscriber(SubscriberId(1));
    m.driver
        .expect_remove_ip_bindings()
        .times(1)
        .withf(move |r, pairs| {
            r.id == RouterId(1)
                && pairs
                    == [
                        (MacAddress::from_octets([2, 0, 0, 0, 0, 1]), sub1),
                        (MacAddress::from_octets([2, 0, 0, 0, 0, 2]), sub1),
                    ]
        })
        // The second was gone meanwhile: it is not counted.
        .returning(|_, _| Ok(vec![Ok(1), Ok(0)]));
    let audit = m.audit_log.clone();

    let report = m
        .engine()
        .run(JobKind::SyncRouters, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.count("bindings_removed"), 1);
    assert_eq!(report.per_router["tenant-1:Router1"]["bindings_removed"], 1);
    assert!(report.failures.is_empty());
    let audit = audit.lock().unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "bindings_removed" && e.outcome == AuditOutcome::Success)
            .count(),
        1
    );
}

/// A voucher's user belongs on every router of its tenant: an active one
/// missing on one router while another shows it is created there (not
/// expired as gone); an unused one missing anywhere is created too.
#[tokio::test]
async fn a_voucher_user_missing_on_one_router_of_the_tenant_is_created_there() {
    let mut m = Mocks::new(now());
    m.with_tenants(vec![tenant(1, "UTC")]);
    m.with_routers(vec![router(1, 1, true), router(3, 1, true)]);
    m.subscribers.expect_active_of_tenant().returning(|_| Ok(vec![]));
    m.services.expect_on_router().returning(|_| Ok(vec![]));
    // Both are stored with home router 1.
    m.vouchers.expect_on_router().returning(|r, _| {
        let mut roams = voucher(9, 1, "ROAMS9", VoucherStatus::Active);
        roams.started_at = Some(now() - Duration::minutes(10));
        roams.expected_end = Some(now() + Duration::hours(1));
        let mut unused = voucher(10, 1, "UNUSED10", VoucherStatus::Unused);
        unused.activation_deadline = Some(now() + Duration::days(7));
        Ok(if r == RouterId(1) {
            vec![roams, unused]
        } else {
            vec![]
        })
    });
    m.driver.expect_snapshot().times(2).returning(|r, _| {
        Ok(RouterSnapshot {
            hotspot_users: if r.id == RouterId(3) {
                vec![
                    user("ROAMS9", Some("isp:voucher:9")),
                    user("UNUSED10", Some("isp:voucher:10")),
                ]
            } else {
                vec![]
            },
            ..Default::default()
        })
    });
    m.vouchers.expect_expire().never();
    let added = Arc::new(Mutex::new(Vec::new()));
    let a = added.clone();
    m.driver
        .expect_add_hotspot_user()
        .times(2)
        .returning(move |r, spec| {
            assert_eq!(spec.limit_uptime, Some(RosDuration::from_secs(3600)));
            a.lock().unwrap().push((r.id, spec.name.to_string(), spec.owner));
            Ok("*1".into())
        });

    let report = m
        .engine()
        .run(JobKind::SyncRouters, RunOptions::default())
        .await
        .unwrap();

    let mut added = added.lock().unwrap().clone();
    added.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(
        added,
        vec![
            (RouterId(1), "ROAMS9".to_owned(), OwnerTag::Voucher(VoucherId(9))),
            (
                RouterId(1),
                "UNUSED10".to_owned(),
                OwnerTag::Voucher(VoucherId(10))
            ),
        ]
    );
    assert_eq!(report.count("voucher_users_added"), 2);
    assert_eq!(report.per_router["tenant-1:Router1"]["voucher_users_added"], 2);
    assert_eq!(report.count("vouchers_expired_by_sync"), 0);
    assert_eq!(
        report.count("users_disabled"),
        0,
        "router 3's voucher users are entitled"
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
}
