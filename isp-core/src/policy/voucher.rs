//! Voucher expiry (seed 003): three time deadlines, and expiry driven by what
//! the router shows.
//!
//! - unused: the activation deadline (never used) and the purchase deadline
//!   (paid but never activated), whichever passes first;
//! - active: `expected_end` (`started_at + duration`);
//! - expired or revoked but still on the router: the router user must go.
//!
//! Sync: an active voucher whose router user is gone, or whose consumed uptime
//! reached its limit, is expired. A user who merely logged out (no live session,
//! user still there with time left) keeps the voucher; seed 003 expires those,
//! which takes paid time from customers.

use chrono::{DateTime, Utc};

use crate::domain::{OwnerTag, Voucher, VoucherExpiryReason, VoucherStatus};
use crate::ports::{HotspotUser, HotspotUserSpec};

/// A voucher's hotspot user, the same on every router of its tenant: its
/// code, tagged for it, with its duration as `limit-uptime`.
pub fn voucher_user_spec(voucher: &Voucher) -> HotspotUserSpec {
    HotspotUserSpec {
        name: voucher.code.clone(),
        password: None,
        profile: None,
        limit_uptime: Some(voucher.duration),
        mac: None,
        owner: OwnerTag::Voucher(voucher.id),
    }
}

/// What time alone asks of a voucher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoucherAction {
    /// Mark it expired (then remove its router user).
    Expire(VoucherExpiryReason),
    /// Already expired or revoked: its router user still has to be removed.
    RemoveFromRouter,
    /// Nothing is due.
    Keep,
}

/// When an active voucher's time is up: `expected_end`, or `started_at +
/// duration` when `expected_end` was not stored.
pub fn usage_end(voucher: &Voucher) -> Option<DateTime<Utc>> {
    voucher.expected_end.or_else(|| {
        voucher
            .started_at
            .and_then(|s| s.checked_add_signed(voucher.duration.as_chrono()))
    })
}

/// The time-driven decision for `voucher` at `now`. Deadlines are inclusive:
/// a deadline equal to `now` has passed.
pub fn voucher_time_expiry(voucher: &Voucher, now: DateTime<Utc>) -> VoucherAction {
    match voucher.status {
        VoucherStatus::Unused => {
            let activation = voucher
                .activation_deadline
                .filter(|d| *d <= now)
                .map(|d| (d, VoucherExpiryReason::ActivationDeadline));
            let purchase = voucher
                .purchase_deadline
                .filter(|d| *d <= now)
                .map(|d| (d, VoucherExpiryReason::PurchaseDeadline));
            // The deadline that passed first names the reason (activation on a tie).
            match (activation, purchase) {
                (Some(a), Some(p)) => VoucherAction::Expire(if p.0 < a.0 { p.1 } else { a.1 }),
                (Some(a), None) => VoucherAction::Expire(a.1),
                (None, Some(p)) => VoucherAction::Expire(p.1),
                (None, None) => VoucherAction::Keep,
            }
        }
        VoucherStatus::Active => match usage_end(voucher) {
            Some(end) if end <= now => VoucherAction::Expire(VoucherExpiryReason::UsageEnded),
            _ => VoucherAction::Keep,
        },
        VoucherStatus::Expired | VoucherStatus::Revoked => {
            // Due from its expiry on (the stored deadline), until the router confirmed.
            if !voucher.removed_from_router && voucher.deadline().is_some_and(|d| d <= now) {
                VoucherAction::RemoveFromRouter
            } else {
                VoucherAction::Keep
            }
        }
    }
}

/// The sync-driven decision for an active voucher given the router's hotspot
/// users (a full `/ip/hotspot/user` read): `Some(reason)` to expire it.
///
/// Live sessions do not matter: a user who logged out still has time left.
pub fn voucher_sync(voucher: &Voucher, users: &[HotspotUser]) -> Option<VoucherExpiryReason> {
    if voucher.status != VoucherStatus::Active {
        return None;
    }
    let Some(user) = users.iter().find(|u| u.name == voucher.code.as_str()) else {
        return Some(VoucherExpiryReason::RouterUserGone);
    };
    match (user.uptime, user.limit_uptime) {
        (Some(used), Some(limit)) if limit.as_secs() > 0 && used.as_secs() >= limit.as_secs() => {
            Some(VoucherExpiryReason::UptimeExhausted)
        }
        _ => None,
    }
}
