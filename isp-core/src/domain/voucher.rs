//! Hotspot vouchers: status, why one expired, and when time alone changes it.

use chrono::{DateTime, Utc};

use super::{Lease, PlanId, RosDuration, RosName, RouterId, TenantId, VoucherId};

string_enum! {
    /// Voucher status.
    pub enum VoucherStatus, field "voucher_status" {
        /// Created, never used.
        Unused = "unused",
        /// In use: a session started.
        Active = "active",
        /// Time is up (or a deadline passed).
        Expired = "expired",
        /// Revoked by an operator.
        Revoked = "revoked",
    }
}

string_enum! {
    /// Why a voucher expired.
    pub enum VoucherExpiryReason, field "expired_reason" {
        /// Never used before its activation deadline.
        ActivationDeadline = "activation_deadline",
        /// Paid but never activated before its purchase deadline.
        PurchaseDeadline = "purchase_deadline",
        /// Its duration ran out (`expected_end`).
        UsageEnded = "usage_ended",
        /// The router's user is gone (sync).
        RouterUserGone = "router_user_gone",
        /// The router's consumed uptime reached the limit (sync).
        UptimeExhausted = "uptime_exhausted",
    }
}

/// A hotspot voucher (seed 003).
#[derive(Debug, Clone, PartialEq)]
pub struct Voucher {
    /// Id.
    pub id: VoucherId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Its home router: the tenant's first enabled router when it was
    /// generated. Its hotspot user is on every router of the tenant, not
    /// only on this one.
    pub router_id: RouterId,
    /// Code (also the hotspot user name).
    pub code: RosName,
    /// Plan.
    pub plan_id: PlanId,
    /// Status.
    pub status: VoucherStatus,
    /// Expires if never used by then.
    pub activation_deadline: Option<DateTime<Utc>>,
    /// Expires if paid but not activated by then.
    pub purchase_deadline: Option<DateTime<Utc>>,
    /// Session length once started.
    pub duration: RosDuration,
    /// When the first session started.
    pub started_at: Option<DateTime<Utc>>,
    /// `started_at + duration`.
    pub expected_end: Option<DateTime<Utc>>,
    /// Why it expired.
    pub expired_reason: Option<VoucherExpiryReason>,
    /// When it expired.
    pub expired_at: Option<DateTime<Utc>>,
    /// True once the router confirmed its hotspot user is gone.
    pub removed_from_router: bool,
    /// Claim / retry back-off.
    pub lease: Option<Lease>,
    /// Failed attempts.
    pub attempts: u32,
}

impl Voucher {
    /// The next instant at which time alone changes this voucher, or `None`.
    ///
    /// Unused: the earlier of the activation and purchase deadlines; active:
    /// `expected_end`; expired but not yet removed from its router: its expiry
    /// (so the removal stays due). Adapters store this as an indexed column.
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        match self.status {
            VoucherStatus::Unused => match (self.activation_deadline, self.purchase_deadline) {
                (Some(a), Some(p)) => Some(a.min(p)),
                (a, p) => a.or(p),
            },
            VoucherStatus::Active => self.expected_end,
            VoucherStatus::Expired | VoucherStatus::Revoked => {
                if self.removed_from_router {
                    None
                } else {
                    self.expired_at.or(self.expected_end)
                }
            }
        }
    }
}

/// A new voucher.
#[derive(Debug, Clone)]
pub struct NewVoucher {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Home router (see [`Voucher::router_id`]).
    pub router_id: RouterId,
    /// Code.
    pub code: RosName,
    /// Plan.
    pub plan_id: PlanId,
    /// Activation deadline.
    pub activation_deadline: Option<DateTime<Utc>>,
    /// Purchase deadline.
    pub purchase_deadline: Option<DateTime<Utc>>,
    /// Session length.
    pub duration: RosDuration,
}
