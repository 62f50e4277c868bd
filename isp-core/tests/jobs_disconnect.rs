//! Orchestration of the disconnect job against mocks: promise 1 (a removal is
//! done only when every enabled router of the tenant confirmed; otherwise it
//! stays pending with back-off), promise 4 (a failing SMS gateway never holds up
//! a disconnect), and reports that match what the mocks recorded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jobs_support;
mod policy_fixtures;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use isp_core::domain::*;
use isp_core::jobs::{Engine, JobKind, JobReport, RunOptions};
use isp_core::ports::*;
use isp_core::Error;
use jobs_support::*;
use policy_fixtures::*;

fn now() -> DateTime<Utc> {
    t("2026-01-14T12:00:00Z")
}

/// Hands `items` out on the first claim, nothing afterwards; records the claims.
fn claim_once<T: Clone + Send + 'static>(
    items: Vec<T>,
    seen: Arc<Mutex<Vec<Claim>>>,
) -> impl FnMut(&Claim) -> isp_core::Result<Vec<T>> + Send + 'static {
    let mut left = Some(items);
    move |c| {
        seen.lock().unwrap().push(c.clone());
        Ok(left.take().unwrap_or_default())
    }
}

/// Expired subscribers of tenant 1 (two routers; router 3 is another tenant's), one device each.
fn expired_world(m: &mut Mocks, subs: &[Subscriber]) -> Arc<Mutex<Vec<Claim>>> {
    expired_world_on(
        m,
        subs,
        vec![router(1, 1, true), router(2, 1, true), router(3, 2, true)],
    )
}

fn expired_world_on(m: &mut Mocks, subs: &[Subscriber], routers: Vec<Router>) -> Arc<Mutex<Vec<Claim>>> {
    m.with_tenants(vec![tenant(1, "Africa/Dar_es_Salaam")]);
    m.with_routers(routers);
    let claims = Arc::new(Mutex::new(Vec::new()));
    m.subscribers
        .expect_claim_expired()
        .returning(claim_once(subs.to_vec(), claims.clone()));
    let devs: Vec<Device> = subs
        .iter()
        .map(|s| device(s.id.0, s.id.0, s.id.0 as u8, Some(1), true, now()))
        .collect();
    m.devices.expect_active_of().returning(move |ids| {
        Ok(devs
            .iter()
            .filter(|d| ids.contains(&d.subscriber_id))
            .cloned()
            .collect())
    });
    claims
}

fn subs(n: i64) -> Vec<Subscriber> {
    (1..=n)
        .map(|i| subscriber(i, 1, now() - Duration::hours(i), true))
        .collect()
}

fn ok_reports(targets: &[HotspotTarget]) -> isp_core::Result<Vec<isp_core::Result<DisconnectReport>>> {
    Ok(targets
        .iter()
        .map(|_| {
            Ok(DisconnectReport {
                sessions_removed: 1,
                bindings_removed: 1,
                user_disabled: true,
                ..Default::default()
            })
        })
        .collect())
}

#[tokio::test]
async fn seed_000_three_users_two_routers_report_matches_the_mocks() {
    let mut m = Mocks::new(now());
    let subs = subs(3);
    let claims = expired_world(&mut m, &subs);

    // One call per router for the whole batch, each with all three targets.
    let calls = Arc::new(Mutex::new(Vec::<(RouterId, usize)>::new()));
    let c = calls.clone();
    m.driver
        .expect_disconnect_hotspot()
        .times(2)
        .returning(move |r, targets| {
            c.lock().unwrap().push((r.id, targets.len()));
            ok_reports(targets)
        });
    let completed = Arc::new(Mutex::new(Vec::new()));
    let c = completed.clone();
    // One write for the batch's expiries, one for their devices.
    m.subscribers
        .expect_complete_expiries()
        .times(1)
        .returning(move |items, holder, at| {
            for i in items {
                c.lock()
                    .unwrap()
                    .push((i.id, holder.to_owned(), i.paid_until_seen, at));
            }
            Ok(vec![true; items.len()])
        });
    m.leases
        .expect_retry_later_all()
        .withf(|kind, _, _, _| *kind == Leased::Subscribers)
        .never();
    m.devices
        .expect_deactivate_all_of()
        .times(1)
        .withf(|ids| ids == [SubscriberId(1), SubscriberId(2), SubscriberId(3)])
        .returning(|ids| Ok(ids.len() as u64));
    let notices = notice_store(&mut m);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let s = sent.clone();
    m.sms.expect_send().times(3).returning(move |to, body| {
        s.lock().unwrap().push((to.clone(), body.to_owned()));
        Ok(SmsReceipt::default())
    });
    let audit = m.audit_log.clone();

    let report = m.engine().run_then_deliver().await;

    let mut calls = calls.lock().unwrap().clone();
    calls.sort();
    assert_eq!(
        calls,
        vec![(RouterId(1), 3), (RouterId(2), 3)],
        "tenant routers only, once each"
    );
    let completed = completed.lock().unwrap();
    assert_eq!(completed.len(), 3);
    for (id, holder, seen, at) in completed.iter() {
        let s = subs.iter().find(|s| s.id == *id).unwrap();
        assert_eq!(holder, "daemon-a");
        assert_eq!(
            *seen, s.paid_until,
            "compare-and-set on the paid_until the job saw"
        );
        assert_eq!(*at, now());
    }
    // Claims: our holder, the clock, lease_ttl, batch_size.
    let claim = claims.lock().unwrap()[0].clone();
    assert_eq!(
        claim,
        Claim {
            holder: "daemon-a".into(),
            now: now(),
            until: now() + Duration::seconds(120),
            limit: 50
        }
    );
    let notices = notices.lock().unwrap();
    assert_eq!(notices.reserved.len(), 3);
    assert!(notices
        .reserved
        .iter()
        .all(|n| n.kind == NoticeKind::HotspotExpired));
    for n in &notices.reserved {
        let s = subs.iter().find(|s| s.phone == n.recipient).unwrap();
        assert_eq!(n.deadline, s.paid_until);
    }
    assert_eq!(notices.sent.len(), 3);
    assert_eq!(sent.lock().unwrap().len(), 3);
    assert!(sent.lock().unwrap()[0].1.contains("expired"));

    assert_eq!(report.count("users_disconnected"), completed.len() as u64);
    assert_eq!(report.count("devices_deactivated"), 3);
    assert_eq!(report.count("sms_sent"), sent.lock().unwrap().len() as u64);
    assert_eq!(report.count("sessions_removed"), 6);
    assert!(report.failures.is_empty());
    assert_eq!(report.per_router["tenant-1:Router1"]["users_disconnected"], 3);
    assert_eq!(report.per_router["tenant-1:Router2"]["users_disconnected"], 3);
    assert!(!report.per_router.contains_key("tenant-2:Router3"));
    let line = report.to_string();
    assert!(line.contains("3 users disconnected"), "{line}");
    assert!(line.contains("3 devices deactivated"), "{line}");
    assert!(line.contains("3 sms sent"), "{line}");
    assert!(line.ends_with("0 failures"), "{line}");

    let audit = audit.lock().unwrap();
    let done: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "disconnect" && e.outcome == AuditOutcome::Success)
        .collect();
    assert_eq!(done.len(), 6, "one router-log line per user per router");
    assert_eq!(audit.iter().filter(|e| e.action == "expire").count(), 3);
}

#[tokio::test]
async fn a_same_name_user_that_is_not_ours_is_reported_and_the_expiry_completes() {
    let mut m = Mocks::new(now());
    let subs = subs(1);
    expired_world(&mut m, &subs);
    // Router 2 holds a staff account with the subscriber's name: the driver
    // leaves it alone; nothing of ours was there to disable.
    m.driver
        .expect_disconnect_hotspot()
        .times(2)
        .returning(|r, targets| {
            assert_eq!(targets[0].owner, OwnerTag::Subscriber(SubscriberId(1)));
            assert!(!targets[0].remove_user);
            if r.id == RouterId(2) {
                let name = targets[0].username.as_ref().unwrap().to_string();
                Ok(vec![Ok(DisconnectReport {
                    foreign: vec![ForeignObject {
                        menu: Menu::HotspotUsers,
                        name,
                    }],
                    ..Default::default()
                })])
            } else {
                ok_reports(targets)
            }
        });
    m.subscribers
        .expect_complete_expiries()
        .times(1)
        .returning(|items, _, _| Ok(vec![true; items.len()]));
    m.devices
        .expect_deactivate_all_of()
        .times(1)
        .returning(|ids| Ok(ids.len() as u64));
    notice_store(&mut m);
    m.sms.expect_send().returning(|_, _| Ok(SmsReceipt::default()));
    let audit = m.audit_log.clone();

    let report = m.engine().run_then_deliver().await;

    assert_eq!(report.count("users_disconnected"), 1, "our part is done");
    assert_eq!(report.count("foreign_objects"), 1);
    assert_eq!(report.per_router["tenant-1:Router2"]["foreign_objects"], 1);
    assert!(!report.per_router["tenant-1:Router1"].contains_key("foreign_objects"));
    assert!(report.failures.is_empty());
    let audit = audit.lock().unwrap();
    let foreign: Vec<_> = audit.iter().filter(|e| e.action == "foreign_object").collect();
    assert_eq!(foreign.len(), 1, "{audit:?}");
    assert_eq!(foreign[0].outcome, AuditOutcome::Skipped);
    assert_eq!(foreign[0].subject, "subscriber:1");
    assert_eq!(foreign[0].router_id, Some(RouterId(2)));
    let reason = foreign[0].reason.as_deref().unwrap_or_default();
    let username = subs[0].username.to_string();
    assert!(
        reason.contains("/ip/hotspot/user") && reason.contains(&username),
        "{reason}"
    );
}

#[tokio::test]
async fn router_down_keeps_the_removal_pending_with_backoff() {
    let mut m = Mocks::new(now());
    let mut subs = subs(2);
    subs[1].attempts = 3;
    expired_world_on(&mut m, &subs, vec![router(1, 1, true), router(2, 1, false)]);
    m.driver
        .expect_disconnect_hotspot()
        .times(1)
        .returning(|_, _| Err(Error::unavailable("router Router1", "connection refused")));
    m.subscribers.expect_complete_expiries().never();
    let retries = Arc::new(Mutex::new(Vec::new()));
    let r = retries.clone();
    m.leases
        .expect_retry_later_all()
        .withf(|kind, _, _, _| *kind == Leased::Subscribers)
        .times(2)
        .returning(move |_, ids, holder, until| {
            let id = SubscriberId(ids[0]);
            r.lock().unwrap().push((id, holder.to_owned(), until));
            Ok(vec![true; ids.len()])
        });
    m.devices.expect_deactivate_all_of().never();
    m.notices.expect_reserve_all().never();
    m.notices.expect_abandon_stale().returning(|_| Ok(0));
    m.notices.expect_claim_pending().returning(|_| Ok(vec![]));
    m.sms.expect_send().never();

    let report = m
        .engine()
        .run(JobKind::DisconnectExpired, RunOptions::default())
        .await
        .unwrap();

    let mut retries = retries.lock().unwrap().clone();
    retries.sort_by_key(|r| r.0);
    assert_eq!(
        retries,
        vec![
            (
                SubscriberId(1),
                "daemon-a".to_owned(),
                now() + Duration::seconds(5)
            ),
            // Three failures before: 5 s * 2^3.
            (
                SubscriberId(2),
                "daemon-a".to_owned(),
                now() + Duration::seconds(40)
            ),
        ]
    );
    assert_eq!(report.count("users_disconnected"), 0);
    assert_eq!(report.count("users_pending"), 2);
    assert_eq!(report.failures.len(), 2);
    assert!(report
        .failures
        .iter()
        .all(|f| f.transient && f.router.as_deref() == Some("tenant-1:Router1")));
    assert_eq!(report.per_router["tenant-1:Router1"]["failures"], 2);
}

#[tokio::test]
async fn one_of_two_routers_failing_is_not_done() {
    let mut m = Mocks::new(now());
    let subs = subs(1);
    expired_world(&mut m, &subs);
    m.driver
        .expect_disconnect_hotspot()
        .times(2)
        .returning(|r, targets| {
            if r.id == RouterId(2) {
                Err(Error::unavailable("router Router2", "timeout"))
            } else {
                ok_reports(targets)
            }
        });
    m.subscribers.expect_complete_expiries().never();
    m.leases
        .expect_retry_later_all()
        .times(1)
        .withf(|kind, ids, holder, until| {
            *kind == Leased::Subscribers
                && ids == [1]
                && holder == "daemon-a"
                && *until == now() + Duration::seconds(5)
        })
        .returning(|_, ids, _, _| Ok(vec![true; ids.len()]));
    m.devices.expect_deactivate_all_of().never();
    m.notices.expect_reserve_all().never();
    m.notices.expect_abandon_stale().returning(|_| Ok(0));
    m.notices.expect_claim_pending().returning(|_| Ok(vec![]));
    let audit = m.audit_log.clone();

    let report = m
        .engine()
        .run(JobKind::DisconnectExpired, RunOptions::default())
        .await
        .unwrap();

    assert_eq!(report.count("users_disconnected"), 0);
    assert_eq!(report.count("users_pending"), 1);
    assert_eq!(report.per_router["tenant-1:Router1"]["users_disconnected"], 1);
    assert_eq!(report.per_router["tenant-1:Router2"]["failures"], 1);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].router.as_deref(), Some("tenant-1:Router2"));
    assert_eq!(report.failures[0].subject, "subscriber:1");
    let audit = audit.lock().unwrap();
    assert!(audit
        .iter()
        .any(|e| e.outcome == AuditOutcome::Retry && e.router_id == Some(RouterId(2))));
    assert!(!audit.iter().any(|e| e.action == "expire"));
}

#[tokio::test]
async fn a_failure_for_one_target_holds_only_that_subscriber() {
    let mut m = Mocks::new(now());
    let subs = subs(2);
    expired_world(&mut m, &subs);
    // Router 2 refuses the second target (in order), confirms the first.
    m.driver
        .expect_disconnect_hotspot()
        .times(2)
        .returning(|r, targets| {
            let mut out = ok_reports(targets).unwrap();
            if r.id == RouterId(2) {
                out[1] = Err(Error::Rejected {
                    service: "router Router2".into(),
                    detail: "failure: item is busy".into(),
                });
            }
            Ok(out)
        });
    m.subscribers
        .expect_complete_expiries()
        .times(1)
        .withf(|items, _, _| items.iter().map(|i| i.id).eq([SubscriberId(1)]))
        .returning(|items, _, _| Ok(vec![true; items.len()]));
    m.leases
        .expect_retry_later_all()
        .times(1)
        .withf(|kind, ids, _, _| *kind == Leased::Subscribers && ids == [2])
        .returning(|_, ids, _, _| Ok(vec![true; ids.len()]));
    m.devices
        .expect_deactivate_all_of()
        .times(1)
        .withf(|ids| ids == [SubscriberId(1)])
        .returning(|_| Ok(1));
    let notices = notice_store(&mut m);
    m.sms
        .expect_send()
        .times(1)
        .returning(|_, _| Ok(SmsReceipt::default()));

    let report = m.engine().run_then_deliver().await;

    assert_eq!(report.count("users_disconnected"), 1);
    assert_eq!(report.count("users_pending"), 1);
    assert_eq!(report.failures.len(), 1);
    assert!(!report.failures[0].transient);
    assert_eq!(notices.lock().unwrap().reserved.len(), 1);
}

#[tokio::test]
async fn a_failing_sms_gateway_never_blocks_the_disconnect() {
    let mut m = Mocks::new(now());
    let subs = subs(1);
    expired_world(&mut m, &subs);
    let order = Arc::new(Mutex::new(Vec::<&'static str>::new()));
    let o = order.clone();
    m.driver
        .expect_disconnect_hotspot()
        .times(2)
        .returning(move |_, targets| {
            o.lock().unwrap().push("router");
            ok_reports(targets)
        });
    let o = order.clone();
    m.subscribers
        .expect_complete_expiries()
        .times(1)
        .returning(move |items, _, _| {
            o.lock().unwrap().push("complete");
            Ok(vec![true; items.len()])
        });
    m.leases
        .expect_retry_later_all()
        .withf(|kind, _, _, _| *kind == Leased::Subscribers)
        .never();
    m.devices.expect_deactivate_all_of().times(1).returning(|_| Ok(1));
    let notices = notice_store(&mut m);
    let o = order.clone();
    m.sms.expect_send().times(1).returning(move |_, _| {
        o.lock().unwrap().push("sms");
        Err(Error::unavailable("sms gateway", "503"))
    });

    let report = m.engine().run_then_deliver().await;

    assert_eq!(
        *order.lock().unwrap(),
        vec!["router", "router", "complete", "sms"]
    );
    assert_eq!(report.count("users_disconnected"), 1);
    assert_eq!(report.count("devices_deactivated"), 1);
    assert_eq!(report.count("sms_sent"), 0);
    assert_eq!(report.count("sms_failed"), 1);
    assert!(
        report.failures.is_empty(),
        "SMS errors are counted, not failures of the disconnect"
    );
    let log = notices.lock().unwrap();
    assert!(log.sent.is_empty());
    assert_eq!(
        log.retried,
        vec![(NoticeId(1), now() + Duration::seconds(5))],
        "transient: retried later"
    );
}

#[tokio::test]
async fn an_extension_meanwhile_wins() {
    let mut m = Mocks::new(now());
    let subs = subs(1);
    expired_world(&mut m, &subs);
    m.driver
        .expect_disconnect_hotspot()
        .times(2)
        .returning(|_, t| ok_reports(t));
    m.subscribers
        .expect_complete_expiries()
        .times(1)
        .returning(|items, _, _| Ok(vec![false; items.len()]));
    // Read back: paid again meanwhile, still active.
    let extended = subscriber(1, 1, now() + Duration::days(1), true);
    m.subscribers
        .expect_get()
        .times(1)
        .returning(move |_| Ok(extended.clone()));
    m.devices.expect_deactivate_all_of().never();
    // The batch disabled the user on both routers: enabled again on both, in this run.
    m.driver
        .expect_set_hotspot_users_disabled()
        .times(2)
        .withf(|_, changes| {
            changes.len() == 1 && changes[0].1 == OwnerTag::Subscriber(SubscriberId(1)) && !changes[0].2
        })
        .returning(|_, changes| Ok(changes.iter().map(|_| Ok(())).collect()));
    // The expiry SMS reserved before the record is withdrawn (an abandoned
    // notice is never claimed for sending).
    let reserved = Arc::new(Mutex::new(Vec::new()));
    let r = reserved.clone();
    m.notices.expect_reserve_all().times(1).returning(move |new| {
        r.lock().unwrap().extend(new.iter().cloned());
        Ok(vec![Some(NoticeId(7)); new.len()])
    });
    m.notices
        .expect_abandon()
        .times(1)
        .withf(|id, holder| *id == NoticeId(7) && !holder.is_empty())
        .returning(|_, _| Ok(true));
    m.notices.expect_abandon_stale().returning(|_| Ok(0));
    m.notices.expect_claim_pending().returning(|_| Ok(vec![]));
    m.sms.expect_send().never();

    let report = m
        .engine()
        .run(JobKind::DisconnectExpired, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.count("users_disconnected"), 0);
    assert_eq!(report.count("expiry_superseded"), 1);
    assert_eq!(report.count("notices_withdrawn"), 1);
    assert_eq!(report.count("users_reenabled"), 2);
    let reserved = reserved.lock().unwrap();
    assert_eq!(reserved.len(), 1);
    assert_eq!(reserved[0].kind, NoticeKind::HotspotExpired);
    assert_eq!(reserved[0].deadline, subs[0].paid_until);
}

#[tokio::test]
async fn an_expiry_completed_elsewhere_keeps_its_notice() {
    let mut m = Mocks::new(now());
    let subs = subs(1);
    expired_world(&mut m, &subs);
    m.driver
        .expect_disconnect_hotspot()
        .times(2)
        .returning(|_, t| ok_reports(t));
    m.subscribers
        .expect_complete_expiries()
        .times(1)
        .returning(|items, _, _| Ok(vec![false; items.len()]));
    let done = subscriber(1, 1, subs[0].paid_until, false);
    m.subscribers.expect_get().returning(move |_| Ok(done.clone()));
    m.devices.expect_deactivate_all_of().never();
    let notices = notice_store(&mut m);
    m.notices.expect_abandon().never();
    m.notices.expect_abandon_stale().returning(|_| Ok(0));
    m.sms
        .expect_send()
        .times(1)
        .returning(|_, _| Ok(SmsReceipt::default()));

    let report = m.engine().run_then_deliver().await;
    assert_eq!(report.count("expiry_superseded"), 1);
    assert_eq!(report.count("notices_withdrawn"), 0);
    assert_eq!(notices.lock().unwrap().reserved.len(), 1);
}

/// The expiry SMS is reserved before the expiry is recorded, so a daemon that
/// dies right after recording it has not lost the notice.
#[tokio::test]
async fn the_expiry_notice_is_reserved_before_the_expiry_is_recorded() {
    let mut m = Mocks::new(now());
    let subs = subs(1);
    expired_world(&mut m, &subs);
    m.driver
        .expect_disconnect_hotspot()
        .times(2)
        .returning(|_, t| ok_reports(t));
    let notices = notice_store(&mut m);
    let n = notices.clone();
    m.subscribers
        .expect_complete_expiries()
        .times(1)
        .returning(move |items, _, _| {
            assert_eq!(
                n.lock().unwrap().reserved.len(),
                1,
                "no notice reserved before the record"
            );
            Ok(vec![true; items.len()])
        });
    m.devices.expect_deactivate_all_of().returning(|_| Ok(1));
    m.notices.expect_abandon_stale().returning(|_| Ok(0));
    m.sms
        .expect_send()
        .times(1)
        .returning(|_, _| Ok(SmsReceipt::default()));

    let report = m.engine().run_then_deliver().await;
    assert_eq!(report.count("users_disconnected"), 1);
    assert_eq!(report.count("notices_reserved"), 1);
}

#[tokio::test]
async fn dry_run_reads_and_counts_but_writes_nothing() {
    let mut m = Mocks::new(now());
    m.with_tenants(vec![tenant(1, "UTC")]);
    m.with_routers(vec![router(1, 1, true), router(2, 1, true)]);
    let subs = subs(2);
    let s2 = subs.clone();
    m.subscribers
        .expect_list_expired()
        .times(1)
        .returning(move |_, _| Ok(s2.clone()));
    m.subscribers.expect_claim_expired().never();
    m.subscribers.expect_complete_expiries().never();
    m.leases
        .expect_retry_later_all()
        .withf(|kind, _, _, _| *kind == Leased::Subscribers)
        .never();
    m.devices
        .expect_active_of()
        .returning(|_| Ok(vec![device(1, 1, 1, Some(1), true, now())]));
    m.devices.expect_deactivate_all_of().never();
    m.driver.expect_disconnect_hotspot().never();
    m.notices.expect_reserve_all().never();
    m.notices.expect_claim_pending().never();
    // The second subscriber was already told.
    m.notices.expect_find().returning(|to, _, _, _| {
        Ok((to == &phone(2)).then(|| Notice {
            id: NoticeId(9),
            tenant_id: TenantId(1),
            recipient: to.clone(),
            kind: NoticeKind::HotspotExpired,
            deadline: now(),
            subject: String::new(),
            body: String::new(),
            status: NoticeStatus::Sent,
            attempts: 0,
            created_at: now(),
            sent_at: Some(now()),
            lease: None,
        }))
    });
    m.sms.expect_send().never();
    m.audit = MockAuditRepo::new();
    m.audit.expect_append().never();

    let report = m
        .engine()
        .run(JobKind::DisconnectExpired, RunOptions { dry_run: true })
        .await
        .unwrap();
    assert!(report.dry_run);
    assert_eq!(report.count("users_disconnected"), 2);
    assert_eq!(report.count("devices_deactivated"), 1);
    assert_eq!(report.count("sms_sent"), 1);
    assert_eq!(report.count("notices_duplicate"), 1);
    assert_eq!(report.per_router["tenant-1:Router2"]["users_disconnected"], 2);
    assert!(report.to_string().contains("(dry run)"));
}

#[tokio::test]
async fn claims_batches_until_none_are_left() {
    let mut m = Mocks::new(now());
    m.with_tenants(vec![tenant(1, "UTC")]);
    m.with_routers(vec![router(1, 1, true)]);
    let all = subs(5);
    let mut batches = vec![
        all[..2].to_vec(),
        all[2..4].to_vec(),
        all[4..].to_vec(),
        vec![],
        vec![],
    ]
    .into_iter();
    // Each batch is claimed while the one before is at its routers; the empty
    // claim made beside the last batch is made once more after it (for the
    // expiries that fell meanwhile): five claims.
    m.subscribers.expect_claim_expired().times(5).returning(move |c| {
        assert_eq!(c.limit, 2);
        Ok(batches.next().unwrap_or_default())
    });
    m.devices.expect_active_of().returning(|_| Ok(vec![]));
    m.driver
        .expect_disconnect_hotspot()
        .times(3)
        .returning(|_, t| ok_reports(t));
    // One write per batch (2 + 2 + 1 subscribers).
    m.subscribers
        .expect_complete_expiries()
        .times(3)
        .returning(|items, _, _| Ok(vec![true; items.len()]));
    m.devices.expect_deactivate_all_of().times(3).returning(|_| Ok(0));
    notice_store(&mut m);
    m.sms
        .expect_send()
        .times(5)
        .returning(|_, _| Ok(SmsReceipt::default()));
    let mut cfg = config();
    cfg.batch_size = 2;
    let report = m.engine_with(cfg).run_then_deliver().await;
    assert_eq!(report.count("users_disconnected"), 5);
    assert_eq!(report.count("sms_sent"), 5);
    assert_eq!(report.count("devices_deactivated"), 0);
}

/// The batch's expiry write fails as a whole: every subscriber of the batch is
/// a failure, none is counted as disconnected, no device is touched, and each
/// stays leased (claimed again when the lease runs out).
#[tokio::test]
async fn a_failed_expiry_write_fails_each_subscriber_of_the_batch() {
    let mut m = Mocks::new(now());
    let subs = subs(2);
    expired_world(&mut m, &subs);
    m.driver
        .expect_disconnect_hotspot()
        .times(2)
        .returning(|_, t| ok_reports(t));
    m.subscribers
        .expect_complete_expiries()
        .times(1)
        .returning(|_, _, _| Err(Error::unavailable("database", "disk I/O error")));
    m.leases
        .expect_retry_later_all()
        .withf(|kind, _, _, _| *kind == Leased::Subscribers)
        .never();
    m.devices.expect_deactivate_all_of().never();
    let notices = notice_store(&mut m);
    m.sms
        .expect_send()
        .times(2)
        .returning(|_, _| Ok(SmsReceipt::default()));

    let report = m.engine().run_then_deliver().await;

    assert_eq!(report.count("users_disconnected"), 0);
    assert_eq!(report.count("devices_deactivated"), 0);
    let mut subjects: Vec<_> = report.failures.iter().map(|f| f.subject.as_str()).collect();
    subjects.sort();
    assert_eq!(subjects, vec!["subscriber:1", "subscriber:2"]);
    assert!(report.failures.iter().all(|f| f.transient));
    assert_eq!(
        notices.lock().unwrap().reserved.len(),
        2,
        "the routers removed them: the expiry SMS stays owed"
    );
}

/// Disconnect-expired, then deliver-notices as the runtime starts it after a
/// run that reserved notices (the disconnect itself never waits on the SMS
/// gateway); one report with the counts and failures of both.
trait RunThenDeliver {
    async fn run_then_deliver(&self) -> JobReport;
}

impl RunThenDeliver for Engine {
    async fn run_then_deliver(&self) -> JobReport {
        let mut report = self
            .run(JobKind::DisconnectExpired, RunOptions::default())
            .await
            .unwrap();
        assert_eq!(
            report.count("sms_sent"),
            0,
            "the disconnect run sends nothing itself"
        );
        let delivery = self
            .run(JobKind::DeliverNotices, RunOptions::default())
            .await
            .unwrap();
        for (k, v) in delivery.counts {
            *report.counts.entry(k).or_default() += v;
        }
        report.failures.extend(delivery.failures);
        report
    }
}
