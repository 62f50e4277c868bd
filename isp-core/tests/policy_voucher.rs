//! Voucher expiry policy: three deadlines, sync-driven expiry, logout keeps the voucher.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod policy_fixtures;

use chrono::Duration;
use isp_core::domain::*;
use isp_core::policy::voucher::{voucher_sync, voucher_time_expiry, VoucherAction};
use isp_core::ports::HotspotUser;
use policy_fixtures::*;
use proptest::prelude::*;

fn user(name: &str, uptime: Option<u64>, limit: Option<u64>) -> HotspotUser {
    HotspotUser {
        id: "*1".into(),
        name: name.into(),
        disabled: false,
        comment: Some("isp:voucher:1".into()),
        uptime: uptime.map(RosDuration::from_secs),
        limit_uptime: limit.map(RosDuration::from_secs),
    }
}

#[test]
fn seed_003_scenarios() {
    let now = t("2025-11-06T10:30:00Z");
    // Scenario 1: usage ended.
    let mut v = voucher(1, 1, "VOUCH123", VoucherStatus::Active);
    v.started_at = Some(now - Duration::hours(2));
    v.expected_end = Some(now - Duration::hours(1));
    assert_eq!(
        voucher_time_expiry(&v, now),
        VoucherAction::Expire(VoucherExpiryReason::UsageEnded)
    );
    // Still running.
    v.expected_end = Some(now + Duration::minutes(1));
    assert_eq!(voucher_time_expiry(&v, now), VoucherAction::Keep);

    // Scenario 3: paid but never activated.
    let mut u = voucher(2, 1, "VOUCH456", VoucherStatus::Unused);
    u.purchase_deadline = Some(now - Duration::days(1));
    u.activation_deadline = Some(now + Duration::days(3));
    assert_eq!(
        voucher_time_expiry(&u, now),
        VoucherAction::Expire(VoucherExpiryReason::PurchaseDeadline)
    );
    // Never used within its activation window.
    u.purchase_deadline = None;
    u.activation_deadline = Some(now);
    assert_eq!(
        voucher_time_expiry(&u, now),
        VoucherAction::Expire(VoucherExpiryReason::ActivationDeadline)
    );

    // Expired but its router user not yet confirmed removed.
    let mut x = voucher(3, 1, "VOUCH789", VoucherStatus::Expired);
    x.expired_at = Some(now - Duration::minutes(5));
    assert_eq!(voucher_time_expiry(&x, now), VoucherAction::RemoveFromRouter);
    x.removed_from_router = true;
    assert_eq!(voucher_time_expiry(&x, now), VoucherAction::Keep);
}

#[test]
fn logged_out_user_keeps_the_voucher_gone_or_used_up_user_expires_it() {
    let v = voucher(1, 1, "ABC", VoucherStatus::Active);
    // Logged out: user still there with time left (no session anywhere).
    assert_eq!(voucher_sync(&v, &[user("ABC", Some(600), Some(3600))]), None);
    assert_eq!(voucher_sync(&v, &[user("ABC", None, None)]), None);
    // Scenario 2/4: the router removed the user.
    assert_eq!(
        voucher_sync(&v, &[user("OTHER", None, None)]),
        Some(VoucherExpiryReason::RouterUserGone)
    );
    assert_eq!(voucher_sync(&v, &[]), Some(VoucherExpiryReason::RouterUserGone));
    // Uptime reached its limit.
    assert_eq!(
        voucher_sync(&v, &[user("ABC", Some(3600), Some(3600))]),
        Some(VoucherExpiryReason::UptimeExhausted)
    );
    // limit-uptime 0 means no limit on RouterOS.
    assert_eq!(voucher_sync(&v, &[user("ABC", Some(3600), Some(0))]), None);
    // Unused vouchers are not expired by sync.
    let u = voucher(2, 1, "DEF", VoucherStatus::Unused);
    assert_eq!(voucher_sync(&u, &[]), None);
}

fn arb_voucher() -> impl Strategy<Value = Voucher> {
    (
        prop_oneof![
            Just(VoucherStatus::Unused),
            Just(VoucherStatus::Active),
            Just(VoucherStatus::Expired),
            Just(VoucherStatus::Revoked)
        ],
        arb_instant(),
        proptest::option::of(arb_offset()),
        proptest::option::of(arb_offset()),
        1u64..86_400,
        any::<bool>(),
    )
        .prop_map(|(status, base, a, p, dur, removed)| {
            let mut v = voucher(1, 1, "CODE1", status);
            v.activation_deadline = a.map(|o| base + o);
            v.purchase_deadline = p.map(|o| base + o);
            v.duration = RosDuration::from_secs(dur);
            if status != VoucherStatus::Unused {
                let start = base - Duration::seconds(dur as i64 / 2);
                v.started_at = Some(start);
                v.expected_end = Some(start + Duration::seconds(dur as i64));
            }
            if matches!(status, VoucherStatus::Expired | VoucherStatus::Revoked) {
                v.expired_at = Some(base);
                v.removed_from_router = removed;
            }
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Time alone acts exactly when the voucher's stored deadline has passed:
    /// never before it, always at or after it.
    #[test]
    fn time_expiry_agrees_with_the_deadline(v in arb_voucher(), base in arb_instant(), off in arb_offset()) {
        let now = v.deadline().unwrap_or(base) + off;
        let action = voucher_time_expiry(&v, now);
        let due = v.deadline().is_some_and(|d| d <= now);
        prop_assert_eq!(action != VoucherAction::Keep, due, "action {:?} deadline {:?} now {}", action, v.deadline(), now);
        if let VoucherAction::Expire(reason) = action {
            let passed = match reason {
                VoucherExpiryReason::ActivationDeadline => v.activation_deadline,
                VoucherExpiryReason::PurchaseDeadline => v.purchase_deadline,
                VoucherExpiryReason::UsageEnded => v.expected_end,
                _ => None,
            };
            prop_assert!(passed.is_some_and(|d| d <= now), "reason {:?} names a deadline that has not passed", reason);
            // The reason is the deadline that passed first.
            prop_assert_eq!(passed, v.deadline());
        }
    }

    /// Sync never expires a voucher whose user is present with time left,
    /// whatever its sessions; and always expires one whose user is gone.
    #[test]
    fn sync_expires_only_gone_or_used_up_users(
        v in arb_voucher(),
        present in any::<bool>(),
        uptime in proptest::option::of(0u64..10_000),
        limit in proptest::option::of(0u64..10_000),
        others in proptest::collection::vec("[A-Z]{3,6}", 0..4),
    ) {
        let mut users: Vec<HotspotUser> = others.iter().filter(|n| n.as_str() != "CODE1").map(|n| user(n, None, None)).collect();
        if present {
            users.push(user("CODE1", uptime, limit));
        }
        let r = voucher_sync(&v, &users);
        if v.status != VoucherStatus::Active {
            prop_assert_eq!(r, None);
        } else if !present {
            prop_assert_eq!(r, Some(VoucherExpiryReason::RouterUserGone));
        } else {
            let used_up = matches!((uptime, limit), (Some(u), Some(l)) if l > 0 && u >= l);
            prop_assert_eq!(r, used_up.then_some(VoucherExpiryReason::UptimeExhausted));
        }
    }
}
