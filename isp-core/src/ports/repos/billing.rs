//! Plans, customers, services and the ledger.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::*;
use crate::error::Result;

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
    /// Changes a plan's price, duration and rate limit (its tenant and name
    /// stay: `InvalidInput` if `terms` names others). New grants, vouchers and
    /// charges use the new terms; vouchers already generated keep their own
    /// duration. `NotFound` for an unknown id.
    async fn update(&self, id: PlanId, terms: &NewPlan) -> Result<Plan>;
}

/// The `InvalidInput` of a plan update that would move a plan to another
/// tenant or name.
pub fn plan_identity_change(plan: &Plan, terms: &NewPlan) -> Option<crate::Error> {
    if plan.tenant_id != terms.tenant_id || plan.name != terms.name {
        return Some(crate::Error::invalid(
            "plan",
            &terms.name,
            format!(
                "an update keeps the plan's tenant ({}) and name ({})",
                plan.tenant_id, plan.name
            ),
        ));
    }
    None
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
/// - `charge_batch` is that compare-and-set and the charges' records for a
///   batch: a charge is recorded only with its service's move (a rerun of the
///   same batch records nothing), never twice (the ledger's unique key), and an
///   unknown id is answered `NotFound`, not dropped.
/// - `mark_provisioned` / `mark_deprovisioned` are fenced: they apply only if
///   `holder` still holds the service's lease (expired or not), and answer
///   `false` otherwise. A daemon whose lease was taken over (and perhaps
///   already marked and cleared by the new holder) cannot overwrite the newer
///   result; a mark without a claim is refused too.
/// - Retries and releases go through [`LeaseRepo`](super::LeaseRepo).
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
    /// Records a confirmed provision (`provisioned = true`, time, clears lease
    /// and attempts) if `holder` holds the lease; returns whether it did.
    async fn mark_provisioned(&self, id: ServiceId, holder: &str, at: DateTime<Utc>) -> Result<bool>;
    /// Records a confirmed deprovision (fenced like `mark_provisioned`).
    async fn mark_deprovisioned(&self, id: ServiceId, holder: &str, at: DateTime<Utc>) -> Result<bool>;
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
    /// Bills a claimed batch in one write where the store can (SQL: one
    /// transaction): per item, if `next_charge_on` still is `from`, moves it to
    /// `to` and records the item's charges (a charge whose key exists is not
    /// recorded again); clears `holder`'s lease on every item either way. One
    /// outcome per item, in order. `InvalidInput` (nothing written) for a
    /// malformed batch: see [`check_charge_batch`].
    async fn charge_batch(&self, items: &[ChargeItem], holder: &str) -> Result<Vec<ChargeOutcome>>;
    /// Bills the tenant's next due services in one write where the store can
    /// (SQL: one transaction, no lease written): reads up to `claim.limit`
    /// active services with `next_charge_on <= today`, lease free at
    /// `claim.now`, with ids above `after`, in id order (a batch's writes then
    /// fall on neighbouring index pages); asks `plan`
    /// for each one's [`ChargeItem`] (`None`: nothing to charge) and records
    /// them as `charge_batch` does (compare-and-set, the ledger's unique key).
    /// Rows are locked against concurrent billers for the transaction (SQLite's
    /// write lock, `FOR UPDATE SKIP LOCKED` elsewhere); a store without
    /// transactions claims them with `claim` and releases them. `InvalidInput`
    /// (nothing written) if an item is malformed ([`check_charge_batch`]) or
    /// names another service or `from` than the row it was planned for.
    #[allow(unused_parens)] // mockall's expansion of the `'static` trait object
    async fn charge_due(
        &self,
        tenant: TenantId,
        today: NaiveDate,
        claim: &Claim,
        after: Option<ServiceId>,
        plan: &(dyn PlanCharges + 'static),
    ) -> Result<DueCharges>;
    /// Active services of a tenant with `from <= next_billing_date <= to`.
    async fn due_between(&self, tenant: TenantId, from: NaiveDate, to: NaiveDate) -> Result<Vec<Service>>;
    /// Every service on a router (reconciliation).
    async fn on_router(&self, router: RouterId) -> Result<Vec<Service>>;
}

/// One service's part of [`ServiceRepo::charge_batch`]: the charges of the
/// periods from `from` up to `to` (exclusive), oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargeItem {
    /// The service billed.
    pub service_id: ServiceId,
    /// Its `next_charge_on` as claimed (the compare-and-set's expected value).
    pub from: NaiveDate,
    /// Its new `next_charge_on`: the start of the first period not charged.
    pub to: NaiveDate,
    /// One ledger entry per period, each of kind charge and for this service.
    pub charges: Vec<NewLedgerEntry>,
}

/// What [`ServiceRepo::charge_batch`] did with one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// `next_charge_on` moved from `from` to `to`. Per charge, in order: whether
    /// this call recorded it (`false`: an entry with its key existed, e.g. after
    /// a crash between recording and advancing).
    Billed {
        /// Recorded by this call, per charge.
        created: Vec<bool>,
    },
    /// `next_charge_on` was no longer `from` (someone else billed it). Per
    /// charge: whether this call recorded it anyway (only stores without
    /// transactions can; SQL and memory record nothing here).
    Superseded {
        /// Recorded by this call, per charge.
        created: Vec<bool>,
    },
    /// No such service: nothing recorded.
    NotFound,
}

/// Decides, inside [`ServiceRepo::charge_due`], what one due service is
/// charged. Called with the store's lock held: no I/O.
pub trait PlanCharges: Send + Sync {
    /// The item to charge for `service` (`None`: nothing).
    fn plan(&self, service: &Service) -> Option<ChargeItem>;
}

impl<F: Fn(&Service) -> Option<ChargeItem> + Send + Sync> PlanCharges for F {
    fn plan(&self, service: &Service) -> Option<ChargeItem> {
        self(service)
    }
}

/// What one [`ServiceRepo::charge_due`] call did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DueCharges {
    /// The id of the last due service read, to pass as `after` next; `None`:
    /// none was due.
    pub last: Option<ServiceId>,
    /// Each charged service's item and outcome, in id order.
    pub charged: Vec<(ChargeItem, ChargeOutcome)>,
}

/// Asks `plan` for the items of `due` (read in order) and checks them: each
/// for the service and `from` it was planned for, and the batch as
/// [`check_charge_batch`] wants it.
pub fn plan_due(due: &[Service], plan: &dyn PlanCharges) -> Result<Vec<ChargeItem>> {
    let mut items = Vec::new();
    for s in due {
        let Some(item) = plan.plan(s) else { continue };
        if item.service_id != s.id || item.from != s.next_charge_on {
            return Err(crate::Error::invalid(
                "service_id",
                item.service_id,
                format!(
                    "planned for service {} due on {}, the item names service {} from {}",
                    s.id, s.next_charge_on, item.service_id, item.from
                ),
            ));
        }
        items.push(item);
    }
    check_charge_batch(&items)?;
    Ok(items)
}

/// Checks a [`ServiceRepo::charge_batch`] batch: every service at most once,
/// `from < to`, and every charge of kind charge, for the item's service, with
/// a period start in `[from, to)` and a non-empty key. The error names the
/// field and the value.
pub fn check_charge_batch(items: &[ChargeItem]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    for item in items {
        let id = item.service_id;
        if !seen.insert(id) {
            return Err(crate::Error::invalid(
                "service_id",
                id,
                "a service appears twice in one charge batch",
            ));
        }
        if item.from >= item.to {
            return Err(crate::Error::invalid(
                "to",
                item.to,
                format!(
                    "service {id}: next_charge_on must move forward from {}",
                    item.from
                ),
            ));
        }
        for c in &item.charges {
            if c.kind != LedgerKind::Charge || c.service_id != Some(id) {
                return Err(crate::Error::invalid(
                    "charges",
                    &c.key,
                    format!("service {id}: every entry must be a charge of this service"),
                ));
            }
            if c.key.is_empty() {
                return Err(crate::Error::invalid(
                    "key",
                    "",
                    format!("service {id}: an idempotency key is required"),
                ));
            }
            match c.period_start {
                Some(p) if item.from <= p && p < item.to => {}
                other => {
                    return Err(crate::Error::invalid(
                        "period_start",
                        other.map_or_else(|| "(none)".to_owned(), |p| p.to_string()),
                        format!(
                            "service {id}: a charge's period must start in [{}, {})",
                            item.from, item.to
                        ),
                    ))
                }
            }
        }
    }
    Ok(())
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
