//! Hotspot subscribers and their devices.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::error::{Error, Result};

/// The [`Error::Conflict`] of a taken hotspot user name, the same text from
/// every adapter.
///
/// A user name on the router is a subscriber's `username` or a voucher's
/// `code`, so both share one namespace per tenant: `field` is the one the
/// refused insert carried (`"username"` or `"code"`).
pub fn hotspot_name_taken(entity: &'static str, field: &'static str, tenant: TenantId, name: &str) -> Error {
    Error::conflict(
        entity,
        format!(
            "{field} {name:?} is already a hotspot user name of tenant {tenant} \
             (subscriber usernames and voucher codes share one namespace)"
        ),
    )
}

/// Hotspot subscribers.
///
/// # Contract
/// - `insert` refuses a second subscriber with the same (tenant, phone), and a
///   `username` that is already a subscriber's username or a voucher's code in
///   the tenant (one hotspot user namespace, see [`hotspot_name_taken`]):
///   `Conflict`, with nothing written.
/// - `claim_expired` returns active subscribers with `paid_until <= claim.now`,
///   oldest `paid_until` first, whose lease is free, and leases them.
/// - `complete_expiries` marks each subscriber disconnected only if it is still
///   active with the same `paid_until` the caller saw (an extension meanwhile
///   wins): returns whether it did. It always clears the caller's lease.
/// - Retries and releases go through [`LeaseRepo`](super::LeaseRepo).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SubscriberRepo: Send + Sync + Debug {
    /// Adds a subscriber (active, no lease).
    async fn insert(&self, new: &NewSubscriber) -> Result<Subscriber>;
    /// One subscriber (`NotFound`).
    async fn get(&self, id: SubscriberId) -> Result<Subscriber>;
    /// By phone within a tenant.
    async fn find_by_phone(&self, tenant: TenantId, phone: &PhoneNumber) -> Result<Option<Subscriber>>;
    /// A purchase or extension: sets `paid_until`, makes the subscriber active,
    /// clears `disconnected_at`, attempts and any lease.
    async fn extend(&self, id: SubscriberId, paid_until: DateTime<Utc>) -> Result<Subscriber>;
    /// Expired but still active subscribers (read only), oldest first.
    async fn list_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Subscriber>>;
    /// Claims expired, still active subscribers.
    async fn claim_expired(&self, claim: &Claim) -> Result<Vec<Subscriber>>;
    /// Active subscribers with `from < paid_until <= to`, soonest first.
    async fn expiring_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Subscriber>>;
    /// Marks each subscriber disconnected (see the trait contract): one
    /// answer per item, in order (`false` also for an id that does not exist).
    /// One write for the batch where the store can (SQL: one transaction).
    async fn complete_expiries(
        &self,
        items: &[ExpiryDone],
        holder: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<bool>>;
    /// The earliest `paid_until` after `now` among active subscribers.
    async fn next_expiry_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>>;
    /// Number of active subscribers with `paid_until > now`.
    async fn count_entitled(&self, now: DateTime<Utc>) -> Result<u64>;
    /// Subscribers of a tenant that are active (entitled or awaiting disconnect).
    async fn active_of_tenant(&self, tenant: TenantId) -> Result<Vec<Subscriber>>;

    // --- Counts for the health summary (issue 16): true totals, uncapped. ---

    /// Number of active subscribers with `paid_until <= now`: what
    /// [`SubscriberRepo::list_expired`] lists, without a limit.
    async fn count_expired(&self, now: DateTime<Utc>) -> Result<u64>;
    /// Number of active subscribers with `from < paid_until <= to`: what
    /// [`SubscriberRepo::expiring_between`] lists, without a limit.
    async fn count_expiring_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<u64>;
}

/// Devices (MACs) of hotspot subscribers.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeviceRepo: Send + Sync + Debug {
    /// Records that a subscriber's device was seen on a router (creates or
    /// updates by (subscriber, mac); makes it active).
    async fn record_seen(
        &self,
        subscriber: SubscriberId,
        mac: MacAddress,
        router: Option<RouterId>,
        at: DateTime<Utc>,
    ) -> Result<Device>;
    /// Active devices of these subscribers (one query for a batch).
    async fn active_of(&self, subscribers: &[SubscriberId]) -> Result<Vec<Device>>;
    /// Marks every device of these subscribers inactive (one write for the
    /// batch where the store can); returns how many devices changed in all.
    async fn deactivate_all_of(&self, subscribers: &[SubscriberId]) -> Result<u64>;
    /// Deletes devices not seen since `cutoff`; returns how many.
    async fn delete_unseen_since(&self, cutoff: DateTime<Utc>) -> Result<u64>;
}

/// Single-item forms of [`SubscriberRepo`] (blanket impl).
#[async_trait]
pub trait SubscriberRepoExt: SubscriberRepo {
    /// [`SubscriberRepo::complete_expiries`] for one subscriber; `NotFound` if
    /// it does not exist.
    async fn complete_expiry(
        &self,
        id: SubscriberId,
        holder: &str,
        paid_until_seen: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let item = ExpiryDone { id, paid_until_seen };
        let done = self.complete_expiries(&[item], holder, at).await?;
        let done = done.first().copied().unwrap_or(false);
        if !done {
            self.get(id).await?;
        }
        Ok(done)
    }
}

impl<T: SubscriberRepo + ?Sized> SubscriberRepoExt for T {}

/// Single-item forms of [`DeviceRepo`] (blanket impl).
#[async_trait]
pub trait DeviceRepoExt: DeviceRepo {
    /// Marks every device of the subscriber inactive; returns how many changed.
    async fn deactivate_all(&self, subscriber: SubscriberId) -> Result<u64> {
        self.deactivate_all_of(&[subscriber]).await
    }
}

impl<T: DeviceRepo + ?Sized> DeviceRepoExt for T {}
