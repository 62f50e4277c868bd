//! Orchestration of the expire-vouchers job: expire by deadline, remove the
//! router user, record removal only when the router confirmed.
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
    // One disconnect per router: each voucher's own user (by its tag) goes.
    m.driver
        .expect_disconnect_hotspot()
        .times(2)
        .returning(|_, targets| Ok(targets.iter().map(removed_unless_leftover).collect()));
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
    assert_eq!(report.count("users_removed"), 2);
    assert_eq!(report.count("users_already_gone"), 1);
    assert_eq!(report.per_router["tenant-1:Router1"]["users_removed"], 2);
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
    m.vouchers
        .expect_mark_removed()
        .times(2)
        .withf(|id, _| *id != VoucherId(3))
        .returning(|_, _| Ok(true));
    m.leases
        .expect_retry_later_all()
        .times(1)
        .withf(|kind, ids, holder, until| {
            // Two failures before: 5 s * 2^2.
            *kind == Leased::Vouchers
                && ids == [3]
                && holder == "daemon-a"
                && *until == now() + Duration::seconds(20)
        })
        .returning(|_, ids, _, _| Ok(vec![true; ids.len()]));

    let report = m
        .engine()
        .run(JobKind::ExpireVouchers, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.count("users_removed"), 2);
    assert_eq!(report.count("removals_pending"), 1);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].subject, "voucher:LEFTOVER");
    assert!(report.failures[0].transient);
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
    assert_eq!(report.count("users_removed"), 3);
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
    assert_eq!(report.count("foreign_objects"), 1);
    assert_eq!(report.per_router["tenant-1:Router1"]["foreign_objects"], 1);
    assert_eq!(report.count("users_removed"), 2);
    assert_eq!(report.count("users_already_gone"), 1);
    assert!(report.failures.is_empty());
    let audit = audit.lock().unwrap();
    let foreign: Vec<_> = audit.iter().filter(|e| e.action == "foreign_object").collect();
    assert_eq!(foreign.len(), 1, "{audit:?}");
    assert_eq!(foreign[0].outcome, AuditOutcome::Skipped);
    assert_eq!(foreign[0].subject, "voucher:TIMEUP");
    assert_eq!(foreign[0].router_id, Some(RouterId(1)));
    let reason = foreign[0].reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("/ip/hotspot/user") && reason.contains("TIMEUP"),
        "{reason}"
    );
}
