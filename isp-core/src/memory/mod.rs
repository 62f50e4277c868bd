//! In-memory adapters for every port: for tests, the demo and embedding.
//!
//! One file per aggregate group, named as in `ports`, `testkit` and the
//! adapters: `hotspot`, `grants`, `vouchers`, `billing`, `notices`, `audit`, `leases`,
//! `radius_sessions`.
//!
//! [`repositories`] returns a [`Repositories`] whose repositories share
//! one [`MemoryStore`]: a single state behind a mutex, so every operation is
//! atomic and two concurrent claimants never get the same item. Nothing here
//! reads the system clock; every time comes from an argument.
//!
//! Besides the repositories: [`StaticDirectory`] (a [`RouterDirectory`](crate::ports::RouterDirectory)
//! over a list of routers you can change) and [`RecordingSms`] (an
//! [`SmsSender`](crate::ports::SmsSender) that records what it sent and can be
//! told to fail).
//!
//! # Semantics
//! These adapters implement the `# Contract` of each port in
//! [`crate::ports`], plus the following rules, which the conformance suite
//! (`isp_core::testkit`, feature `testkit`) checks for every adapter:
//!
//! - A lease is *free* when there is none or its `until <= now`.
//! - `claim_*` returns due items whose lease is free, in deadline order (ties by
//!   id), at most `limit`, and leases each to `claim.holder` until `claim.until`.
//!   `list_*` are read only and ignore leases.
//! - [`LeaseRepo`](crate::ports::LeaseRepo) (one implementation for every
//!   leased aggregate): `retry_later_all` applies only if `holder` holds the
//!   lease (expired or not): it counts a failed attempt and leases the item to
//!   [`RETRY_HOLDER`] until `until`; `release_all` clears `holder`'s lease.
//! - `mark_removed`, `mark_sent` and `NoticeRepo::abandon` apply only if
//!   `holder` holds the lease or there is none (a lease of someone else means
//!   another claimant owns the item now); they clear the lease.
//!   `mark_provisioned` / `mark_deprovisioned` apply only if `holder` holds the
//!   lease (expired or not): once another claimant took it over, and even after
//!   it marked and cleared it, a late mark is refused.
//! - Subscribers' usernames and vouchers' codes share one namespace per tenant
//!   (the hotspot user names on the router).
//! - An unknown id gives `Error::NotFound` (a batch write answers `false` for it); a uniqueness rule gives
//!   `Error::Conflict`.

mod audit;
mod billing;
mod directory;
mod grants;
mod hotspot;
mod leases;
mod notices;
mod radius_sessions;
mod sms;
mod vouchers;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::ports::{Repositories, RETRY_HOLDER};

pub use audit::{MemoryAuditRepo, MemoryRouterStatusRepo, MemoryTenantRepo};
pub use billing::{MemoryCustomerRepo, MemoryLedgerRepo, MemoryPlanRepo, MemoryServiceRepo};
pub use directory::StaticDirectory;
pub use grants::MemoryGrantRepo;
pub use hotspot::{MemoryDeviceRepo, MemorySubscriberRepo};
pub use leases::MemoryLeaseRepo;
pub use notices::MemoryNoticeRepo;
pub use radius_sessions::MemoryRadiusSessionRepo;
pub use sms::{RecordingSms, SentSms, SmsFailure};
pub use vouchers::MemoryVoucherRepo;

/// Every repository over one fresh, empty in-memory store.
pub fn repositories() -> Repositories {
    MemoryStore::new().repositories()
}

/// The shared state of the in-memory repositories. Cloning shares the state.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every repository, all over this store.
    pub fn repositories(&self) -> Repositories {
        let s = || self.clone();
        Repositories {
            tenants: Arc::new(MemoryTenantRepo { store: s() }),
            subscribers: Arc::new(MemorySubscriberRepo { store: s() }),
            grants: Arc::new(MemoryGrantRepo { store: s() }),
            devices: Arc::new(MemoryDeviceRepo { store: s() }),
            vouchers: Arc::new(MemoryVoucherRepo { store: s() }),
            plans: Arc::new(MemoryPlanRepo { store: s() }),
            customers: Arc::new(MemoryCustomerRepo { store: s() }),
            services: Arc::new(MemoryServiceRepo { store: s() }),
            ledger: Arc::new(MemoryLedgerRepo { store: s() }),
            notices: Arc::new(MemoryNoticeRepo { store: s() }),
            audit: Arc::new(MemoryAuditRepo { store: s() }),
            router_status: Arc::new(MemoryRouterStatusRepo { store: s() }),
            leases: Arc::new(MemoryLeaseRepo { store: s() }),
            radius_sessions: Arc::new(MemoryRadiusSessionRepo { store: s() }),
        }
    }

    /// Locks the state. A panic while holding the lock cannot leave a
    /// half-applied change (every operation validates before it writes), so a
    /// poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("MemoryStore")
            .field("tenants", &s.tenants.len())
            .field("subscribers", &s.subscribers.len())
            .field("devices", &s.devices.len())
            .field("vouchers", &s.vouchers.len())
            .field("services", &s.services.len())
            .field("ledger", &s.ledger.len())
            .field("notices", &s.notices.len())
            .field("audit", &s.audit.len())
            .finish_non_exhaustive()
    }
}

/// Id counters, one per table.
#[derive(Debug, Default)]
struct Sequences {
    subscriber: i64,
    device: i64,
    voucher: i64,
    plan: i64,
    customer: i64,
    service: i64,
    ledger: i64,
    notice: i64,
}

fn next(counter: &mut i64) -> i64 {
    *counter += 1;
    *counter
}

#[derive(Debug, Default)]
struct State {
    seq: Sequences,
    tenants: BTreeMap<TenantId, Tenant>,
    subscribers: BTreeMap<SubscriberId, Subscriber>,
    devices: BTreeMap<DeviceId, Device>,
    vouchers: BTreeMap<VoucherId, Voucher>,
    plans: BTreeMap<PlanId, Plan>,
    customers: BTreeMap<CustomerId, Customer>,
    services: BTreeMap<ServiceId, Service>,
    ledger: BTreeMap<LedgerEntryId, LedgerEntry>,
    notices: BTreeMap<NoticeId, Notice>,
    /// Audit events in append order.
    audit: Vec<AuditEvent>,
    router_status: BTreeMap<RouterId, RouterStatus>,
    payments: BTreeMap<(TenantId, PaymentReference), Payment>,
    pending_grants: BTreeMap<(SubscriberId, RouterId), PendingGrant>,
    radius_sessions: BTreeMap<(RouterId, String), RadiusSession>,
}

/// True when nobody holds `lease` at `now`.
fn lease_is_free(lease: Option<&Lease>, now: DateTime<Utc>) -> bool {
    lease.is_none_or(|l| l.until <= now)
}

/// True when `holder` holds `lease` (expired or not).
fn held_by(lease: Option<&Lease>, holder: &str) -> bool {
    lease.is_some_and(|l| l.holder == holder)
}

/// True when a subscriber of `tenant` has the username `name` or a voucher of
/// `tenant` has the code `name`.
fn hotspot_name_taken(s: &State, tenant: TenantId, name: &RosName) -> bool {
    s.subscribers
        .values()
        .any(|x| x.tenant_id == tenant && &x.username == name)
        || s.vouchers
            .values()
            .any(|v| v.tenant_id == tenant && &v.code == name)
}

/// True when `holder` holds `lease` or there is none.
fn held_by_or_none(lease: Option<&Lease>, holder: &str) -> bool {
    lease.is_none_or(|l| l.holder == holder)
}

/// Clears `lease` if `holder` holds it.
fn release_if_held(lease: &mut Option<Lease>, holder: &str) {
    if held_by(lease.as_ref(), holder) {
        *lease = None;
    }
}

/// The lease a claim takes.
fn claim_lease(claim: &Claim) -> Option<Lease> {
    Some(Lease {
        holder: claim.holder.clone(),
        until: claim.until,
    })
}

/// The lease of a retry back-off.
fn retry_lease(until: DateTime<Utc>) -> Option<Lease> {
    Some(Lease {
        holder: RETRY_HOLDER.to_owned(),
        until,
    })
}

/// Ids of `candidates` sorted by their key (then id), at most `limit`.
fn first_by_key<I, K>(mut candidates: Vec<(K, I)>, limit: usize) -> Vec<I>
where
    K: Ord,
    I: Ord + Copy,
{
    candidates.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    candidates.into_iter().take(limit).map(|(_, id)| id).collect()
}

/// The conformance suite as unit tests, so that a plain `cargo test -p isp-core`
/// runs it too (`tests/conformance_memory.rs` runs it from outside the crate,
/// as adapters do, with the `testkit` feature).
#[cfg(test)]
mod conformance {
    crate::repository_conformance_tests!(in_memory, async { crate::memory::repositories() });
}
