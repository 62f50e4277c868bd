//! Repository ports: the queries the jobs need, not generic CRUD.
//!
//! Due-work queries come in two forms: `list_*` (read only: dry runs, health)
//! and `claim_*` (take a [`Lease`](crate::domain::Lease) on each returned item so
//! that no other claimant gets it until the lease expires). Claims return items
//! in deadline order, at most `claim.limit` of them, and skip items whose lease
//! has not expired. A failed item is put back with
//! [`LeaseRepo::retry_later_all`], which leases it to [`RETRY_HOLDER`] until its
//! back-off ends; [`LeaseRepo`] is the one lease protocol of every leased
//! aggregate.
//!
//! Ports are batch-first: where a write has a batch form, the batch method is
//! the one an adapter implements (one transaction, one round trip), and the
//! single-item form is derived in an `...Ext` trait with a blanket impl
//! ([`SubscriberRepoExt`], [`DeviceRepoExt`], [`NoticeRepoExt`],
//! [`LeaseRepoExt`]), so a forwarding wrapper cannot lose the bulk path. A
//! wrapper that forwards a port (metrics, fault injection) carries
//! `#[deny(clippy::missing_trait_methods)]` on its impl, so that a method added
//! to the port later cannot silently fall back to a default.
//!
//! One file per aggregate group, named as in `memory`, `testkit` and every
//! adapter: `hotspot`, `grants`, `vouchers`, `billing`, `notices`, `audit`, `leases`,
//! `radius_sessions`.

mod audit;
mod billing;
mod grants;
mod hotspot;
mod leases;
mod notices;
mod radius_sessions;
mod vouchers;

use std::sync::Arc;

pub use audit::*;
pub use billing::*;
pub use grants::*;
pub use hotspot::*;
pub use leases::*;
pub use notices::*;
pub use radius_sessions::*;
pub use vouchers::*;

/// Lease holder name used for retry back-offs.
pub const RETRY_HOLDER: &str = "retry";

/// Every repository of one storage, for wiring.
#[derive(Debug, Clone)]
pub struct Repositories {
    /// Tenants.
    pub tenants: Arc<dyn TenantRepo>,
    /// Subscribers.
    pub subscribers: Arc<dyn SubscriberRepo>,
    /// Grants of paid time, payments and pending router grants.
    pub grants: Arc<dyn GrantRepo>,
    /// Devices.
    pub devices: Arc<dyn DeviceRepo>,
    /// Vouchers.
    pub vouchers: Arc<dyn VoucherRepo>,
    /// Plans.
    pub plans: Arc<dyn PlanRepo>,
    /// Customers.
    pub customers: Arc<dyn CustomerRepo>,
    /// Services.
    pub services: Arc<dyn ServiceRepo>,
    /// Ledger.
    pub ledger: Arc<dyn LedgerRepo>,
    /// Notices.
    pub notices: Arc<dyn NoticeRepo>,
    /// Audit log.
    pub audit: Arc<dyn AuditRepo>,
    /// Router status.
    pub router_status: Arc<dyn RouterStatusRepo>,
    /// The leases of subscribers, vouchers, services and notices.
    pub leases: Arc<dyn LeaseRepo>,
    /// Sessions the routers in RADIUS mode report in accounting.
    pub radius_sessions: Arc<dyn RadiusSessionRepo>,
}
