//! Repository ports: the queries the jobs need, not generic CRUD.
//!
//! Due-work queries come in two forms: `list_*` (read only: dry runs, health)
//! and `claim_*` (take a [`Lease`](crate::domain::Lease) on each returned item so
//! that no other claimant gets it until the lease expires). Claims return items
//! in deadline order, at most `claim.limit` of them, and skip items whose lease
//! has not expired. A failed item is put back with `retry_later`, which leases it
//! to [`RETRY_HOLDER`] until its back-off ends.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::*;
use crate::error::Result;

/// Lease holder name used for retry back-offs.
pub const RETRY_HOLDER: &str = "retry";

/// Tenants.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TenantRepo: Send + Sync + Debug {
    /// Inserts or replaces a tenant by id (tenants come from configuration).
    async fn upsert(&self, tenant: &Tenant) -> Result<()>;
    /// One tenant (`NotFound`).
    async fn get(&self, id: TenantId) -> Result<Tenant>;
    /// All tenants, by id.
    async fn list(&self) -> Result<Vec<Tenant>>;
}

/// Hotspot subscribers.
///
/// # Contract
/// - `insert` refuses a second subscriber with the same (tenant, phone): `Conflict`.
/// - `claim_expired` returns active subscribers with `paid_until <= claim.now`,
///   oldest `paid_until` first, whose lease is free, and leases them.
/// - `complete_expiry` marks the subscriber disconnected only if it is still
///   active with the same `paid_until` the caller saw (an extension meanwhile
///   wins): returns whether it did. It always clears the caller's lease.
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
    /// Marks the subscriber disconnected (see the trait contract).
    async fn complete_expiry(
        &self,
        id: SubscriberId,
        holder: &str,
        paid_until_seen: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// [`complete_expiry`](Self::complete_expiry) for each item: one answer per
    /// item, in order (`false` also for an id that does not exist). Stores
    /// that can write them all at once override this (SQL: one transaction);
    /// this default records them one by one.
    async fn complete_expiries(
        &self,
        items: &[ExpiryDone],
        holder: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match self
                .complete_expiry(item.id, holder, item.paid_until_seen, at)
                .await
            {
                Ok(done) => out.push(done),
                Err(e) if e.is_not_found() => out.push(false),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
    /// Records a failed attempt and leases the subscriber to [`RETRY_HOLDER`] until `until`
    /// (only if `holder` holds the lease; returns whether it did).
    async fn retry_later(&self, id: SubscriberId, holder: &str, until: DateTime<Utc>) -> Result<bool>;
    /// The earliest `paid_until` after `now` among active subscribers.
    async fn next_expiry_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>>;
    /// Number of active subscribers with `paid_until > now`.
    async fn count_entitled(&self, now: DateTime<Utc>) -> Result<u64>;
    /// Subscribers of a tenant that are active (entitled or awaiting disconnect).
    async fn active_of_tenant(&self, tenant: TenantId) -> Result<Vec<Subscriber>>;
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
    /// Marks every device of the subscriber inactive; returns how many changed.
    async fn deactivate_all(&self, subscriber: SubscriberId) -> Result<u64>;
    /// [`deactivate_all`](Self::deactivate_all) for each of these subscribers;
    /// returns how many devices changed in all. SQL overrides it with one
    /// statement per chunk; this default goes one subscriber at a time.
    async fn deactivate_all_of(&self, subscribers: &[SubscriberId]) -> Result<u64> {
        let mut n = 0;
        for s in subscribers {
            n += self.deactivate_all(*s).await?;
        }
        Ok(n)
    }
    /// Deletes devices not seen since `cutoff`; returns how many.
    async fn delete_unseen_since(&self, cutoff: DateTime<Utc>) -> Result<u64>;
}

/// Vouchers.
///
/// # Contract
/// - `(tenant, code)` is unique: `Conflict`.
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
    /// Records a failed attempt; leases to [`RETRY_HOLDER`] until `until`.
    async fn retry_later(&self, id: VoucherId, holder: &str, until: DateTime<Utc>) -> Result<bool>;
    /// Vouchers on a router with one of these statuses (router sync).
    async fn on_router(&self, router: RouterId, statuses: &[VoucherStatus]) -> Result<Vec<Voucher>>;
    /// The earliest deadline after `now`.
    async fn next_deadline_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>>;
}

/// Price plans.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PlanRepo: Send + Sync + Debug {
    /// Adds a plan; (tenant, name) unique.
    async fn insert(&self, new: &NewPlan) -> Result<Plan>;
    /// One plan (`NotFound`).
    async fn get(&self, id: PlanId) -> Result<Plan>;
    /// Plans of a tenant, by id.
    async fn list(&self, tenant: TenantId) -> Result<Vec<Plan>>;
}

/// ISP customers.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CustomerRepo: Send + Sync + Debug {
    /// Adds a customer.
    async fn insert(&self, new: &NewCustomer) -> Result<Customer>;
    /// One customer (`NotFound`).
    async fn get(&self, id: CustomerId) -> Result<Customer>;
}

/// ISP services (PPPoE / static IP).
///
/// # Contract
/// - `claim_provisioning` returns services of the tenant whose router state is
///   wrong for `today` (tenant-local): active, not provisioned and
///   `next_billing_date >= today`; or provisioned and (not active or
///   `next_billing_date < today`). Ordered by `next_billing_date`, then id.
/// - `claim_billable` returns active services of the tenant with
///   `next_charge_on <= today`, oldest first.
/// - `advance_billing` is a compare-and-set on `next_charge_on`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ServiceRepo: Send + Sync + Debug {
    /// Adds a service (not provisioned); PPPoE username unique per router: `Conflict`.
    async fn insert(&self, new: &NewService) -> Result<Service>;
    /// One service (`NotFound`).
    async fn get(&self, id: ServiceId) -> Result<Service>;
    /// Changes the status (operator action).
    async fn set_status(&self, id: ServiceId, status: ServiceStatus) -> Result<Service>;
    /// Changes the due date (a payment).
    async fn set_next_billing_date(&self, id: ServiceId, date: NaiveDate) -> Result<Service>;
    /// Services needing provisioning or deprovisioning (read only).
    async fn list_provisioning(
        &self,
        tenant: TenantId,
        today: NaiveDate,
        limit: usize,
    ) -> Result<Vec<Service>>;
    /// Claims services needing provisioning or deprovisioning.
    async fn claim_provisioning(
        &self,
        tenant: TenantId,
        today: NaiveDate,
        claim: &Claim,
    ) -> Result<Vec<Service>>;
    /// Records a confirmed provision (`provisioned = true`, time, clears lease and attempts).
    async fn mark_provisioned(&self, id: ServiceId, holder: &str, at: DateTime<Utc>) -> Result<bool>;
    /// Records a confirmed deprovision.
    async fn mark_deprovisioned(&self, id: ServiceId, holder: &str, at: DateTime<Utc>) -> Result<bool>;
    /// Records a failed attempt; leases to [`RETRY_HOLDER`] until `until`.
    async fn retry_later(&self, id: ServiceId, holder: &str, until: DateTime<Utc>) -> Result<bool>;
    /// Claims services owing a charge.
    async fn claim_billable(&self, tenant: TenantId, today: NaiveDate, claim: &Claim)
        -> Result<Vec<Service>>;
    /// Moves `next_charge_on` from `from` to `to` if it still is `from`; clears the
    /// caller's lease either way. Returns whether it moved.
    async fn advance_billing(
        &self,
        id: ServiceId,
        holder: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<bool>;
    /// Releases a lease without other changes.
    async fn release(&self, id: ServiceId, holder: &str) -> Result<()>;
    /// Active services of a tenant with `from <= next_billing_date <= to`.
    async fn due_between(&self, tenant: TenantId, from: NaiveDate, to: NaiveDate) -> Result<Vec<Service>>;
    /// Every service on a router (reconciliation).
    async fn on_router(&self, router: RouterId) -> Result<Vec<Service>>;
}

/// Charges and payments.
///
/// # Contract
/// `record` refuses a second entry with the same `key`: `Conflict`. That key is
/// what makes a charge exactly-once per (service, period).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LedgerRepo: Send + Sync + Debug {
    /// Appends an entry.
    async fn record(&self, new: &NewLedgerEntry) -> Result<LedgerEntry>;
    /// Entries of a service, oldest first.
    async fn of_service(&self, service: ServiceId) -> Result<Vec<LedgerEntry>>;
    /// Entries of a customer, oldest first.
    async fn of_customer(&self, customer: CustomerId) -> Result<Vec<LedgerEntry>>;
    /// Number of charges in total (reports, benchmarks).
    async fn count_charges(&self) -> Result<u64>;
}

/// Notices (SMS owed).
///
/// # Contract
/// - `reserve` refuses a second notice for the same (recipient, kind, deadline):
///   `Conflict`. Reserve before sending; that is what makes a notice at-most-once.
/// - `claim_pending` returns pending notices that are unleased or whose
///   [`RETRY_HOLDER`] back-off ended, oldest first. A pending notice whose
///   sender's lease expired (a crash mid-send) is never returned: the outcome is
///   unknown, and `abandon_stale` marks it abandoned.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NoticeRepo: Send + Sync + Debug {
    /// Reserves a notice (pending); `Conflict` if one with the same recipient,
    /// kind and deadline exists.
    async fn reserve(&self, new: &NewNotice) -> Result<Notice>;
    /// Reserves each notice that does not exist yet: per item, in order, the
    /// new notice's id, or `None` where one with the same key existed (or came
    /// earlier in `new`). SQL overrides it with one transaction; this default
    /// reserves them one by one.
    async fn reserve_all(&self, new: &[NewNotice]) -> Result<Vec<Option<NoticeId>>> {
        let mut out = Vec::with_capacity(new.len());
        for n in new {
            match self.reserve(n).await {
                Ok(notice) => out.push(Some(notice.id)),
                Err(e) if e.is_conflict() => out.push(None),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
    /// One notice (`NotFound`).
    async fn get(&self, id: NoticeId) -> Result<Notice>;
    /// Looks one up by its unique key.
    async fn find(
        &self,
        recipient: &PhoneNumber,
        kind: NoticeKind,
        deadline: DateTime<Utc>,
    ) -> Result<Option<Notice>>;
    /// Leases a just-reserved or retried notice for sending.
    async fn claim_pending(&self, claim: &Claim) -> Result<Vec<Notice>>;
    /// Records the gateway's acceptance; clears the lease.
    async fn mark_sent(&self, id: NoticeId, holder: &str, at: DateTime<Utc>) -> Result<bool>;
    /// [`NoticeRepo::mark_sent`] for many: one answer per id, in order, `false`
    /// where refused or unknown. SQL overrides it with one transaction; this
    /// default marks them one by one.
    async fn mark_all_sent(&self, ids: &[NoticeId], holder: &str, at: DateTime<Utc>) -> Result<Vec<bool>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.mark_sent(*id, holder, at).await {
                Ok(done) => out.push(done),
                Err(e) if e.is_not_found() => out.push(false),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
    /// Records a refused send; leases to [`RETRY_HOLDER`] until `until`.
    async fn retry_later(&self, id: NoticeId, holder: &str, until: DateTime<Utc>) -> Result<bool>;
    /// Gives up on a notice.
    async fn abandon(&self, id: NoticeId, holder: &str) -> Result<bool>;
    /// Abandons pending notices whose non-retry lease expired before `now`; returns how many.
    async fn abandon_stale(&self, now: DateTime<Utc>) -> Result<u64>;
    /// Counts notices by status.
    async fn count(&self, status: NoticeStatus) -> Result<u64>;
}

/// The activity and router logs.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AuditRepo: Send + Sync + Debug {
    /// Appends events (one write for a batch).
    async fn append(&self, events: &[AuditEvent]) -> Result<()>;
    /// Newest first.
    async fn recent(&self, limit: usize) -> Result<Vec<AuditEvent>>;
    /// Newest first, one router.
    async fn of_router(&self, router: RouterId, limit: usize) -> Result<Vec<AuditEvent>>;
    /// Deletes events before `cutoff`; returns how many.
    async fn delete_before(&self, cutoff: DateTime<Utc>) -> Result<u64>;
}

/// Last known router health.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RouterStatusRepo: Send + Sync + Debug {
    /// The last status (`None` if never checked).
    async fn get(&self, router: RouterId) -> Result<Option<RouterStatus>>;
    /// Stores the status.
    async fn put(&self, status: &RouterStatus) -> Result<()>;
    /// Every router's status.
    async fn list(&self) -> Result<Vec<RouterStatus>>;
}

/// Named leases: one daemon at a time runs a singleton job (billing of a day).
///
/// # Contract
/// `acquire` succeeds when the name is free, expired, or already held by
/// `holder` (then it extends). Two holders never hold the same name at once.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LeaseRepo: Send + Sync + Debug {
    /// Takes or renews the lease `name` until `until`.
    async fn acquire(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool>;
    /// Releases it (only if `holder` holds it).
    async fn release(&self, name: &str, holder: &str) -> Result<()>;
}

/// Every repository of one storage, for wiring.
#[derive(Debug, Clone)]
pub struct Repositories {
    /// Tenants.
    pub tenants: std::sync::Arc<dyn TenantRepo>,
    /// Subscribers.
    pub subscribers: std::sync::Arc<dyn SubscriberRepo>,
    /// Devices.
    pub devices: std::sync::Arc<dyn DeviceRepo>,
    /// Vouchers.
    pub vouchers: std::sync::Arc<dyn VoucherRepo>,
    /// Plans.
    pub plans: std::sync::Arc<dyn PlanRepo>,
    /// Customers.
    pub customers: std::sync::Arc<dyn CustomerRepo>,
    /// Services.
    pub services: std::sync::Arc<dyn ServiceRepo>,
    /// Ledger.
    pub ledger: std::sync::Arc<dyn LedgerRepo>,
    /// Notices.
    pub notices: std::sync::Arc<dyn NoticeRepo>,
    /// Audit log.
    pub audit: std::sync::Arc<dyn AuditRepo>,
    /// Router status.
    pub router_status: std::sync::Arc<dyn RouterStatusRepo>,
    /// Named leases.
    pub leases: std::sync::Arc<dyn LeaseRepo>,
}
