//! Orchestration of the expire-vouchers job: expire by deadline, remove the
//! voucher's user from every enabled router of its tenant, record removal
//! only when every one of them confirmed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jobs_support;
mod policy_fixtures;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use isp_core::domain::*;
use isp_core::jobs::{JobKind, RunOptions};
use isp_core::ports::{DisconnectReport, ForeignObject, HotspotTarget, Leased, Menu};
use isp_core::Error;
use jobs_support::*;
use policy_fixtures::*;

fn now() -> DateTime<Utc> {
    t("2025-11-06T10:30:00Z")
}

fn due_vouchers() -> Vec<Voucher> {
    let mut unused = voucher(1, 1, "NEVERUSED", VoucherStatus::Unused);
    unused.activation_deadline = Some(now() - Duration::days(1));
    let mut ended = voucher(2, 1, "TIMEUP", VoucherStatus::Active);
    ended.started_at = Some(now() - Duration::hours(2));
    ended.expected_end = Some(now() - Duration::hours(1));
    let mut leftover = voucher(3, 2, "LEFTOVER", VoucherStatus::Expired);
    leftover.expired_at = Some(now() - Duration::minutes(30));
    leftover.attempts = 2;
    vec![unused, ended, leftover]
}

/// The voucher's user removed (LEFTOVER's was already gone), after checking
/// the target asks for the voucher's own objects only.
fn removed_unless_leftover(target: &HotspotTarget) -> isp_core::Result<DisconnectReport> {
    let code = target.username.as_ref().expect("a voucher target names its user");
    let id = due_vouchers()
        .into_iter()
        .find(|v| v.code == *code)
        .expect("a due voucher")
        .id;
    assert_eq!(target.owner, OwnerTag::Voucher(id));
    assert!(target.remove_user);
    assert!(target.macs.is_empty());
    Ok(DisconnectReport {
        user_removed: code.as_str() != "LEFTOVER",
        ..Default::default()
    })
}

fn setup(m: &mut Mocks) {
    m.with_tenants(vec![tenant(1, "UTC")]);
    m.with_routers(vec![router(1, 1, true), router(2, 1, true)]);
    let mut batches = vec![due_vouchers()].into_iter();
    m.vouchers.expect_claim_due().returning(move |c| {
        assert_eq!(c.holder, "daemon-a");
        Ok(batches.next().unwrap_or_default())
    });
}

#[tokio::test]
async fn expires_by_deadline_and_removes_router_users() {
    let mut m = Mocks::new(now());
    setup(&mut m);
    let expired = Arc::new(Mutex::new(Vec::new()));
    let e = expired.clone();
    m.vouchers
        .expect_expire()
        .times(2)
        .returning(move |id, seen, reason, at| {
            e.lock().unwrap().push((id, seen, reason, at));
            Ok(true)
        });
    // One disconnect per router of the tenant, for all its vouchers: each
    // voucher's own user (by its tag) goes from every router.
    m.driver
        .expect_disconnect_hotspot()
        .times(2)
        .returning(|_, targets| {
            assert_eq!(targets.len(), 3, "every voucher of the tenant on each router");
            Ok(targets.iter().map(removed_unless_leftover).collect())
        });
    let removed = Arc::new(Mutex::new(Vec::new()));
    let r = removed.clone();
    m.vouchers
        .expect_mark_removed()
        .times(3)
        .returning(move |id, holder| {
            assert_eq!(holder, "daemon-a");
            r.lock().unwrap().push(id);
            Ok(true)
        });
    m.leases
        .expect_retry_later_all()
        .withf(|kind, _, _, _| *kind == Leased::Vouchers)
        .never();

    let report = m
        .engine()
        .run(JobKind::ExpireVouchers, RunOptions::default())
        .await
        .unwrap();

    let mut expired = expired.lock().unwrap().clone();
    expired.sort_by_key(|e| e.0);
    assert_eq!(
        expired,
        vec![
            (
                VoucherId(1),
                VoucherStatus::Unused,
                VoucherExpiryReason::ActivationDeadline,
                now()
            ),
            (
                VoucherId(2),
                VoucherStatus::Active,
                VoucherExpiryReason::UsageEnded,
                now()
            ),
        ]
    );
    let mut removed = removed.lock().unwrap().clone();
    removed.sort();
    assert_eq!(removed, vec![VoucherId(1), VoucherId(2), VoucherId(3)]);
    assert_eq!(report.count("vouchers_expired"), 2);
    assert_eq!(report.count("expired_activation_deadline"), 1);
    assert_eq!(report.count("expired_usage_ended"), 1);
    assert_eq!(report.count("users_removed"), 4);
    assert_eq!(report.count("users_already_gone"), 2);
    assert_eq!(report.per_router["tenant-1:Router1"]["users_removed"], 2);
    assert_eq!(report.per_router["tenant-1:Router2"]["users_removed"], 2);
    assert_eq!(report.per_router["tenant-1:Router2"]["users_already_gone"], 1);
    assert!(report.failures.is_empty());
}

#[tokio::test]
async fn a_router_failure_leaves_the_removal_pending() {
    let mut m = Mocks::new(now());
    setup(&mut m);
    m.vouchers
        .expect_expire()
        .times(2)
        .returning(|_, _, _, _| Ok(true));
    m.driver
        .expect_disconnect_hotspot()
        .times(2)
        .returning(|r, targets| {
            if r.id == RouterId(2) {
                Err(Error::unavailable("router Router2", "connection reset"))
            } else {
                Ok(targets.iter().map(removed_unless_leftover).collect())
            }
        });
    // Router1 confirmed every voucher, Router2 none: none is recorded removed.
    m.vouchers.expect_mark_removed().never();
    let retried = Arc::new(Mutex::new(Vec::new()));
    let r = retried.clone();
    m.leases
        .expect_retry_later_all()
        .times(3)
        .withf(|kind, ids, holder, _| *kind == Leased::Vouchers && ids.len() == 1 && holder == "daemon-a")
        .returning(move |_, ids, _, until| {
            r.lock().unwrap().push((ids[0], until));
            Ok(vec![true; ids.len()])
        });

    let report = m
        .engine()
        .run(JobKind::ExpireVouchers, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.count("users_removed"), 2);
    assert_eq!(report.per_router["tenant-1:Router1"]["users_removed"], 2);
    assert_eq!(report.count("removals_pending"), 3);
    let mut retried = retried.lock().unwrap().clone();
    retried.sort();
    // Backed off by each voucher's own attempts: 5 s * 2^attempts.
    assert_eq!(
        retried,
        vec![
            (1, now() + Duration::seconds(5)),
            (2, now() + Duration::seconds(5)),
            (3, now() + Duration::seconds(20)),
        ]
    );
    let mut failed: Vec<_> = report.failures.iter().map(|f| f.subject.as_str()).collect();
    failed.sort();
    assert_eq!(
        failed,
        vec!["voucher:LEFTOVER", "voucher:NEVERUSED", "voucher:TIMEUP"]
    );
    for f in &report.failures {
        assert!(f.transient, "{f:?}");
        assert_eq!(f.router.as_deref(), Some("tenant-1:Router2"));
    }
}

#[tokio::test]
async fn dry_run_lists_and_writes_nothing() {
    let mut m = Mocks::new(now());
    m.with_tenants(vec![tenant(1, "UTC")]);
    m.with_routers(vec![router(1, 1, true), router(2, 1, true)]);
    m.vouchers
        .expect_list_due()
        .times(1)
        .returning(|_, _| Ok(due_vouchers()));
    m.vouchers.expect_claim_due().never();
    m.vouchers.expect_expire().never();
    m.vouchers.expect_mark_removed().never();
    m.driver.expect_disconnect_hotspot().never();
    let report = m
        .engine()
        .run(JobKind::ExpireVouchers, RunOptions { dry_run: true })
        .await
        .unwrap();
    assert_eq!(report.count("vouchers_expired"), 2);
    // Three vouchers, each on both routers of the tenant.
    assert_eq!(report.count("users_removed"), 6);
    assert_eq!(report.per_router["tenant-1:Router1"]["users_removed"], 3);
    assert_eq!(report.per_router["tenant-1:Router2"]["users_removed"], 3);
}

#[tokio::test]
async fn a_same_name_user_that_is_not_the_vouchers_is_left_alone_and_reported() {
    let mut m = Mocks::new(now());
    setup(&mut m);
    m.vouchers
        .expect_expire()
        .times(2)
        .returning(|_, _, _, _| Ok(true));
    // TIMEUP's name belongs to a staff account: the driver left it alone.
    m.driver
        .expect_disconnect_hotspot()
        .times(2)
        .returning(|_, targets| {
            Ok(targets
                .iter()
                .map(|t| {
                    let code = t.username.as_ref().unwrap().as_str();
                    Ok(DisconnectReport {
                        user_removed: code != "TIMEUP",
                        foreign: if code == "TIMEUP" {
                            vec![ForeignObject {
                                menu: Menu::HotspotUsers,
                                name: code.to_owned(),
                            }]
                        } else {
                            Vec::new()
                        },
                        ..Default::default()
                    })
                })
                .collect())
        });
    // Nothing of the voucher's is left: its removal is recorded.
    m.vouchers
        .expect_mark_removed()
        .times(3)
        .returning(|_, _| Ok(true));
    let audit = m.audit_log.clone();

    let report = m
        .engine()
        .run(JobKind::ExpireVouchers, RunOptions::default())
        .await
        .unwrap();
    // The staff account is on both routers: reported on each.
    assert_eq!(report.count("foreign_objects"), 2);
    assert_eq!(report.per_router["tenant-1:Router1"]["foreign_objects"], 1);
    assert_eq!(report.per_router["tenant-1:Router2"]["foreign_objects"], 1);
    assert_eq!(report.count("users_removed"), 4);
    assert_eq!(report.count("users_already_gone"), 2);
    assert!(report.failures.is_empty());
    let audit = audit.lock().unwrap();
    let foreign: Vec<_> = audit.iter().filter(|e| e.action == "foreign_object").collect();
    assert_eq!(foreign.len(), 2, "{audit:?}");
    let mut routers: Vec<_> = foreign.iter().map(|e| e.router_id).collect();
    routers.sort();
    assert_eq!(routers, vec![Some(RouterId(1)), Some(RouterId(2))]);
    for f in foreign {
        assert_eq!(f.outcome, AuditOutcome::Skipped);
        assert_eq!(f.subject, "voucher:TIMEUP");
        let reason = f.reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains("/ip/hotspot/user") && reason.contains("TIMEUP"),
            "{reason}"
        );
    }
}
