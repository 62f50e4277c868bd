//! Plans, ISP customers, their services and the ledger.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::{claim_lease, first_by_key, held_by, lease_is_free, next, release_if_held, MemoryStore, State};
use crate::domain::*;
use crate::error::{Error, Result};
use crate::ports::{
    check_charge_batch, plan_due, ChargeItem, ChargeOutcome, CustomerRepo, DueCharges, LedgerRepo,
    PlanCharges, PlanRepo, ServiceRepo,
};

/// [`PlanRepo`] over a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryPlanRepo {
    pub(super) store: MemoryStore,
}

#[async_trait]
impl PlanRepo for MemoryPlanRepo {
    async fn insert(&self, new: &NewPlan) -> Result<Plan> {
        let mut s = self.store.lock();
        if s.plans
            .values()
            .any(|p| p.tenant_id == new.tenant_id && p.name == new.name)
        {
            return Err(Error::conflict(
                "plan",
                format!("tenant {} already has a plan named {}", new.tenant_id, new.name),
            ));
        }
        let id = PlanId(next(&mut s.seq.plan));
        let plan = Plan {
            id,
            tenant_id: new.tenant_id,
            name: new.name.clone(),
            price: new.price,
            duration: new.duration,
            rate_limit: new.rate_limit,
        };
        s.plans.insert(id, plan.clone());
        Ok(plan)
    }

    async fn update(&self, id: PlanId, terms: &NewPlan) -> Result<Plan> {
        let mut s = self.store.lock();
        let plan = s.plans.get_mut(&id).ok_or_else(|| Error::not_found("plan", id))?;
        if let Some(e) = crate::ports::plan_identity_change(plan, terms) {
            return Err(e);
        }
        plan.price = terms.price;
        plan.duration = terms.duration;
        plan.rate_limit = terms.rate_limit;
        Ok(plan.clone())
    }

    async fn get(&self, id: PlanId) -> Result<Plan> {
        self.store
            .lock()
            .plans
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("plan", id))
    }

    async fn list(&self, tenant: TenantId) -> Result<Vec<Plan>> {
        Ok(self
            .store
            .lock()
            .plans
            .values()
            .filter(|p| p.tenant_id == tenant)
            .cloned()
            .collect())
    }
}

/// [`CustomerRepo`] over a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryCustomerRepo {
    pub(super) store: MemoryStore,
}

#[async_trait]
impl CustomerRepo for MemoryCustomerRepo {
    async fn insert(&self, new: &NewCustomer) -> Result<Customer> {
        let mut s = self.store.lock();
        let id = CustomerId(next(&mut s.seq.customer));
        let c = Customer {
            id,
            tenant_id: new.tenant_id,
            name: new.name.clone(),
            phone: new.phone.clone(),
        };
        s.customers.insert(id, c.clone());
        Ok(c)
    }

    async fn get(&self, id: CustomerId) -> Result<Customer> {
        self.store
            .lock()
            .customers
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("customer", id))
    }
}

/// [`ServiceRepo`] over a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryServiceRepo {
    pub(super) store: MemoryStore,
}

fn not_found(id: ServiceId) -> Error {
    Error::not_found("service", id)
}

/// The provisioning rule of the [`ServiceRepo`] contract.
fn needs_provisioning(s: &Service, today: NaiveDate) -> bool {
    let active = s.status == ServiceStatus::Active;
    if s.provisioned {
        !active || s.next_billing_date < today
    } else {
        active && s.next_billing_date >= today
    }
}

fn pppoe_username(c: &Connection) -> Option<&RosName> {
    match c {
        Connection::Pppoe { username, .. } => Some(username),
        Connection::StaticIp { .. } => None,
    }
}

fn service_mut(s: &mut State, id: ServiceId) -> Result<&mut Service> {
    s.services.get_mut(&id).ok_or_else(|| not_found(id))
}

#[async_trait]
impl ServiceRepo for MemoryServiceRepo {
    async fn insert(&self, new: &NewService) -> Result<Service> {
        let mut s = self.store.lock();
        if let Some(user) = pppoe_username(&new.connection) {
            if s.services
                .values()
                .any(|x| x.router_id == new.router_id && pppoe_username(&x.connection) == Some(user))
            {
                return Err(Error::conflict(
                    "service",
                    format!("router {} already has a PPPoE secret named {user}", new.router_id),
                ));
            }
        }
        let id = ServiceId(next(&mut s.seq.service));
        let svc = Service {
            id,
            tenant_id: new.tenant_id,
            customer_id: new.customer_id,
            router_id: new.router_id,
            plan_id: new.plan_id,
            status: new.status,
            connection: new.connection.clone(),
            next_billing_date: new.next_billing_date,
            billing_day: new.billing_day,
            next_charge_on: new.next_charge_on,
            provisioned: false,
            provisioned_at: None,
            deprovisioned_at: None,
            lease: None,
            attempts: 0,
        };
        s.services.insert(id, svc.clone());
        Ok(svc)
    }

    async fn get(&self, id: ServiceId) -> Result<Service> {
        self.store
            .lock()
            .services
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    async fn set_status(&self, id: ServiceId, status: ServiceStatus) -> Result<Service> {
        let mut s = self.store.lock();
        let svc = service_mut(&mut s, id)?;
        svc.status = status;
        Ok(svc.clone())
    }

    async fn set_next_billing_date(&self, id: ServiceId, date: NaiveDate) -> Result<Service> {
        let mut s = self.store.lock();
        let svc = service_mut(&mut s, id)?;
        svc.next_billing_date = date;
        Ok(svc.clone())
    }

    async fn list_provisioning(
        &self,
        tenant: TenantId,
        today: NaiveDate,
        limit: usize,
    ) -> Result<Vec<Service>> {
        let s = self.store.lock();
        let due = s
            .services
            .values()
            .filter(|x| x.tenant_id == tenant && needs_provisioning(x, today))
            .map(|x| (x.next_billing_date, x.id))
            .collect();
        Ok(first_by_key(due, limit)
            .into_iter()
            .filter_map(|id| s.services.get(&id).cloned())
            .collect())
    }

    async fn claim_provisioning(
        &self,
        tenant: TenantId,
        today: NaiveDate,
        claim: &Claim,
    ) -> Result<Vec<Service>> {
        let mut s = self.store.lock();
        let due = s
            .services
            .values()
            .filter(|x| {
                x.tenant_id == tenant
                    && needs_provisioning(x, today)
                    && lease_is_free(x.lease.as_ref(), claim.now)
            })
            .map(|x| (x.next_billing_date, x.id))
            .collect();
        let mut out = Vec::new();
        for id in first_by_key(due, claim.limit) {
            if let Some(x) = s.services.get_mut(&id) {
                x.lease = claim_lease(claim);
                out.push(x.clone());
            }
        }
        Ok(out)
    }

    async fn mark_provisioned(&self, id: ServiceId, holder: &str, at: DateTime<Utc>) -> Result<bool> {
        let mut s = self.store.lock();
        let svc = service_mut(&mut s, id)?;
        if !held_by(svc.lease.as_ref(), holder) {
            return Ok(false);
        }
        svc.provisioned = true;
        svc.provisioned_at = Some(at);
        svc.lease = None;
        svc.attempts = 0;
        Ok(true)
    }

    async fn mark_deprovisioned(&self, id: ServiceId, holder: &str, at: DateTime<Utc>) -> Result<bool> {
        let mut s = self.store.lock();
        let svc = service_mut(&mut s, id)?;
        if !held_by(svc.lease.as_ref(), holder) {
            return Ok(false);
        }
        svc.provisioned = false;
        svc.deprovisioned_at = Some(at);
        svc.lease = None;
        svc.attempts = 0;
        Ok(true)
    }

    async fn claim_billable(
        &self,
        tenant: TenantId,
        today: NaiveDate,
        claim: &Claim,
    ) -> Result<Vec<Service>> {
        let mut s = self.store.lock();
        let due = s
            .services
            .values()
            .filter(|x| {
                x.tenant_id == tenant
                    && x.status == ServiceStatus::Active
                    && x.next_charge_on <= today
                    && lease_is_free(x.lease.as_ref(), claim.now)
            })
            .map(|x| (x.next_charge_on, x.id))
            .collect();
        let mut out = Vec::new();
        for id in first_by_key(due, claim.limit) {
            if let Some(x) = s.services.get_mut(&id) {
                x.lease = claim_lease(claim);
                out.push(x.clone());
            }
        }
        Ok(out)
    }

    async fn advance_billing(
        &self,
        id: ServiceId,
        holder: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<bool> {
        let mut s = self.store.lock();
        let svc = service_mut(&mut s, id)?;
        release_if_held(&mut svc.lease, holder);
        if svc.next_charge_on != from {
            return Ok(false);
        }
        svc.next_charge_on = to;
        Ok(true)
    }

    async fn charge_batch(&self, items: &[ChargeItem], holder: &str) -> Result<Vec<ChargeOutcome>> {
        check_charge_batch(items)?;
        let mut s = self.store.lock();
        let mut keys: HashSet<String> = s.ledger.values().map(|e| e.key.clone()).collect();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let Some(svc) = s.services.get_mut(&item.service_id) else {
                out.push(ChargeOutcome::NotFound);
                continue;
            };
            release_if_held(&mut svc.lease, holder);
            if svc.next_charge_on != item.from {
                out.push(ChargeOutcome::Superseded {
                    created: vec![false; item.charges.len()],
                });
                continue;
            }
            svc.next_charge_on = item.to;
            let mut created = Vec::with_capacity(item.charges.len());
            for new in &item.charges {
                let fresh = keys.insert(new.key.clone());
                if fresh {
                    insert_entry(&mut s, new);
                }
                created.push(fresh);
            }
            out.push(ChargeOutcome::Billed { created });
        }
        Ok(out)
    }

    async fn charge_due(
        &self,
        tenant: TenantId,
        today: NaiveDate,
        claim: &Claim,
        after: Option<ServiceId>,
        plan: &(dyn PlanCharges + 'static),
    ) -> Result<DueCharges> {
        // One lock for the whole call: nothing else reads or writes in between.
        let mut s = self.store.lock();
        let due = s
            .services
            .values()
            .filter(|x| {
                x.tenant_id == tenant
                    && x.status == ServiceStatus::Active
                    && x.next_charge_on <= today
                    && lease_is_free(x.lease.as_ref(), claim.now)
                    && after.is_none_or(|a| x.id > a)
            })
            .map(|x| (x.id, x.id))
            .collect();
        let due: Vec<Service> = first_by_key(due, claim.limit)
            .into_iter()
            .filter_map(|id| s.services.get(&id).cloned())
            .collect();
        let items = plan_due(&due, plan)?;
        let mut keys: HashSet<String> = s.ledger.values().map(|e| e.key.clone()).collect();
        let mut charged = Vec::with_capacity(items.len());
        for item in items {
            let Some(svc) = s.services.get_mut(&item.service_id) else {
                continue;
            };
            release_if_held(&mut svc.lease, &claim.holder);
            svc.next_charge_on = item.to;
            let mut created = Vec::with_capacity(item.charges.len());
            for new in &item.charges {
                let fresh = keys.insert(new.key.clone());
                if fresh {
                    insert_entry(&mut s, new);
                }
                created.push(fresh);
            }
            charged.push((item, ChargeOutcome::Billed { created }));
        }
        Ok(DueCharges {
            last: due.last().map(|x| x.id),
            charged,
        })
    }

    async fn due_between(&self, tenant: TenantId, from: NaiveDate, to: NaiveDate) -> Result<Vec<Service>> {
        let s = self.store.lock();
        let found = s
            .services
            .values()
            .filter(|x| {
                x.tenant_id == tenant
                    && x.status == ServiceStatus::Active
                    && from <= x.next_billing_date
                    && x.next_billing_date <= to
            })
            .map(|x| (x.next_billing_date, x.id))
            .collect();
        Ok(first_by_key(found, usize::MAX)
            .into_iter()
            .filter_map(|id| s.services.get(&id).cloned())
            .collect())
    }

    async fn on_router(&self, router: RouterId) -> Result<Vec<Service>> {
        Ok(self
            .store
            .lock()
            .services
            .values()
            .filter(|x| x.router_id == router)
            .cloned()
            .collect())
    }
}

/// [`LedgerRepo`] over a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryLedgerRepo {
    pub(super) store: MemoryStore,
}

fn oldest_first(mut entries: Vec<LedgerEntry>) -> Vec<LedgerEntry> {
    entries.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    entries
}

/// Appends an entry (its key checked by the caller).
fn insert_entry(s: &mut State, new: &NewLedgerEntry) -> LedgerEntry {
    let id = LedgerEntryId(next(&mut s.seq.ledger));
    let e = LedgerEntry {
        id,
        customer_id: new.customer_id,
        service_id: new.service_id,
        kind: new.kind,
        amount: new.amount,
        period_start: new.period_start,
        key: new.key.clone(),
        created_at: new.created_at,
    };
    s.ledger.insert(id, e.clone());
    e
}

#[async_trait]
impl LedgerRepo for MemoryLedgerRepo {
    async fn record(&self, new: &NewLedgerEntry) -> Result<LedgerEntry> {
        let mut s = self.store.lock();
        if s.ledger.values().any(|e| e.key == new.key) {
            return Err(Error::conflict(
                "ledger entry",
                format!("an entry with key {} already exists", new.key),
            ));
        }
        Ok(insert_entry(&mut s, new))
    }

    async fn of_service(&self, service: ServiceId) -> Result<Vec<LedgerEntry>> {
        let s = self.store.lock();
        Ok(oldest_first(
            s.ledger
                .values()
                .filter(|e| e.service_id == Some(service))
                .cloned()
                .collect(),
        ))
    }

    async fn of_customer(&self, customer: CustomerId) -> Result<Vec<LedgerEntry>> {
        let s = self.store.lock();
        Ok(oldest_first(
            s.ledger
                .values()
                .filter(|e| e.customer_id == customer)
                .cloned()
                .collect(),
        ))
    }

    async fn count_charges(&self) -> Result<u64> {
        let n = self
            .store
            .lock()
            .ledger
            .values()
            .filter(|e| e.kind == LedgerKind::Charge)
            .count();
        Ok(n as u64)
    }
}
