//! Grants: paid time, the payment that bought it, and the router work owed.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::error::Result;

/// Grants of paid time to hotspot subscribers.
///
/// # Contract
/// - `write` is atomic: either everything of a [`GrantWrite`] is recorded or
///   nothing is. In order: a payment whose (tenant, reference) is already
///   recorded answers [`GrantWritten::DuplicatePayment`] with that payment and
///   changes nothing; a subscriber whose `paid_until` is no longer
///   `paid_until_seen` answers [`GrantWritten::Stale`] and changes nothing; an
///   unknown subscriber is `NotFound`. Otherwise it sets `paid_until` as
///   [`SubscriberRepo::extend`](super::SubscriberRepo::extend) does (active,
///   not disconnected, no attempts, no lease), records the payment with the new
///   `paid_until`, and writes one [`PendingGrant`] per router leased to
///   `holder` until `lease_until` (replacing an older one of the same
///   (subscriber, router), attempts 0).
/// - `claim_pending` returns pending grants whose lease is free, oldest first
///   (ties by subscriber then router), at most `claim.limit`, leasing each.
/// - `complete` deletes a pending grant only if `holder` holds its lease
///   (expired or not) or there is none: one answer per item, in order.
/// - `retry_later` applies only if `holder` holds the lease: attempts + 1,
///   the error kept, leased to [`RETRY_HOLDER`](super::RETRY_HOLDER) until `until`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait GrantRepo: Send + Sync + Debug {
    /// Writes a grant (see the contract).
    async fn write(&self, grant: &GrantWrite) -> Result<GrantWritten>;
    /// The payment recorded under this reference in the tenant.
    async fn payment(&self, tenant: TenantId, reference: &PaymentReference) -> Result<Option<Payment>>;
    /// Claims pending grants.
    async fn claim_pending(&self, claim: &Claim) -> Result<Vec<PendingGrant>>;
    /// Deletes done pending grants.
    async fn complete(&self, done: &[(SubscriberId, RouterId)], holder: &str) -> Result<Vec<bool>>;
    /// Puts failed pending grants back until `until`.
    async fn retry_later(
        &self,
        items: &[(SubscriberId, RouterId)],
        holder: &str,
        until: DateTime<Utc>,
        error: &str,
    ) -> Result<()>;
    /// Drops every pending grant of the subscriber (access revoked); how many.
    async fn cancel_of(&self, subscriber: SubscriberId) -> Result<u64>;
    /// The pending grants of a subscriber, by router.
    async fn pending_of(&self, subscriber: SubscriberId) -> Result<Vec<PendingGrant>>;
    /// The earliest lease expiry after `now` among pending grants: when the
    /// next one becomes claimable.
    async fn next_due_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>>;
    /// How many pending grants there are, and how many of them are claimable
    /// at `now`.
    async fn count_pending(&self, now: DateTime<Utc>) -> Result<(u64, u64)>;
}
