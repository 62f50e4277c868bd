//! Vouchers.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::error::Result;

/// Vouchers.
///
/// # Contract
/// - `(tenant, code)` is unique, also against subscribers' usernames (one
///   hotspot user namespace per tenant, see
///   [`hotspot_name_taken`](super::hotspot_name_taken)): `Conflict`, with
///   nothing written.
/// - The due set is every voucher whose [`Voucher::deadline`] is `<= now`;
///   `claim_due` returns it in deadline order.
/// - `expire` is a compare-and-set on the status the caller saw.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait VoucherRepo: Send + Sync + Debug {
    /// Adds an unused voucher.
    async fn insert(&self, new: &NewVoucher) -> Result<Voucher>;
    /// One voucher (`NotFound`).
    async fn get(&self, id: VoucherId) -> Result<Voucher>;
    /// By code within a tenant.
    async fn find_by_code(&self, tenant: TenantId, code: &RosName) -> Result<Option<Voucher>>;
    /// First use: unused -> active with `started_at` and `expected_end`.
    /// `Conflict` unless unused.
    async fn activate(&self, id: VoucherId, started_at: DateTime<Utc>) -> Result<Voucher>;
    /// Vouchers whose deadline passed (read only).
    async fn list_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Voucher>>;
    /// Claims vouchers whose deadline passed.
    async fn claim_due(&self, claim: &Claim) -> Result<Vec<Voucher>>;
    /// Marks expired (with reason) if its status is still `seen`; keeps the lease
    /// so that the caller can remove the router user. Returns whether it changed.
    async fn expire(
        &self,
        id: VoucherId,
        seen: VoucherStatus,
        reason: VoucherExpiryReason,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Records that the router confirmed the hotspot user is gone; clears the lease.
    async fn mark_removed(&self, id: VoucherId, holder: &str) -> Result<bool>;
    /// Vouchers on a router with one of these statuses (router sync).
    async fn on_router(&self, router: RouterId, statuses: &[VoucherStatus]) -> Result<Vec<Voucher>>;
    /// The earliest deadline after `now`.
    async fn next_deadline_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>>;
}
