//! Monthly billing per tenant time zone: catch-up, exactly once per period.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::{AuditOutcome, Plan, PlanId, Service, ServiceId, ServiceStatus, Tenant, TenantId};
use crate::error::{Error, Result};
use crate::jobs::common::RunCtx;
use crate::jobs::Engine;
use crate::policy::billing::{charges_owed, BillingOutcome, ChargeDue};
use crate::policy::time::local_date;
use crate::ports::{ChargeItem, ChargeOutcome, PlanCharges};

impl Engine {
    pub(crate) async fn monthly_billing(&self, ctx: &mut RunCtx<'_>) -> Result<()> {
        let tenants = self.deps.repos.tenants.list().await?;
        for tenant in tenants {
            if let Err(e) = self.bill_tenant(ctx, &tenant).await {
                ctx.tally.fail(format!("tenant:{}", tenant.slug), None, &e);
            }
            ctx.flush_audit().await;
        }
        Ok(())
    }

    async fn bill_tenant(&self, ctx: &mut RunCtx<'_>, tenant: &Tenant) -> Result<()> {
        let repo = &self.deps.repos.services;
        if ctx.dry_run {
            // There is no read-only billable query; every service sits on a
            // router of its tenant, so read them there.
            let now = ctx.now();
            let today = local_date(now, tenant.time_zone);
            let mut services = BTreeMap::new();
            for r in ctx.routers_of(tenant.id).await? {
                for s in repo.on_router(r.id).await? {
                    if s.tenant_id == tenant.id
                        && s.status == ServiceStatus::Active
                        && s.next_charge_on <= today
                    {
                        services.insert(s.id, s);
                    }
                }
            }
            for s in services.into_values() {
                self.bill_service(ctx, &s, today).await;
            }
            return Ok(());
        }
        // The tenant's plans, read once: `plan_charges` runs inside the store's
        // write and cannot read.
        let plans: Arc<HashMap<PlanId, Plan>> = Arc::new(
            self.deps
                .repos
                .plans
                .list(tenant.id)
                .await?
                .into_iter()
                .map(|p| (p.id, p))
                .collect(),
        );
        let mut after = None;
        loop {
            let now = ctx.now();
            let today = local_date(now, tenant.time_zone);
            let planner = Planner {
                plans: Arc::clone(&plans),
                planned: Mutex::default(),
                today,
                now,
            };
            let due = repo
                .charge_due(tenant.id, today, &ctx.claim_at(now), after, &planner)
                .await;
            let planned = planner
                .planned
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner);
            for (id, e) in planned.failed {
                ctx.tally.fail(format!("service:{id}"), None, &e);
            }
            let due = match due {
                Ok(d) => d,
                Err(e) if planned.charges.is_empty() => return Err(e),
                Err(e) => {
                    // Not known which were read: the next run resumes them.
                    for id in planned.charges.keys() {
                        ctx.tally.fail(format!("service:{id}"), None, &e);
                    }
                    return Ok(());
                }
            };
            let Some(last) = due.last else {
                break;
            };
            after = Some(last);
            self.record_billed(ctx, tenant.id, due.charged, &planned.charges, now);
            ctx.flush_audit().await;
        }
        Ok(())
    }

    /// The charges `s` owes on `today`; `None` (the failure tallied) when its
    /// plan or billing day cannot be read.
    async fn owed(&self, ctx: &mut RunCtx<'_>, s: &Service, today: NaiveDate) -> Option<BillingOutcome> {
        let subject = format!("service:{}", s.id);
        let plan = match ctx.plan(s.plan_id).await {
            Ok(p) => p,
            Err(e) => {
                ctx.tally.fail(subject, None, &e);
                return None;
            }
        };
        match charges_owed(s, plan.price, today) {
            Ok(o) => Some(o),
            Err(e) => {
                ctx.tally.fail(subject, None, &e);
                None
            }
        }
    }

    /// What a dry run reports for one service.
    async fn bill_service(&self, ctx: &mut RunCtx<'_>, s: &Service, today: NaiveDate) {
        let Some(outcome) = self.owed(ctx, s, today).await else {
            return;
        };
        ctx.tally.add("charges_created", outcome.charges.len() as u64);
        if !outcome.charges.is_empty() {
            ctx.tally.add("services_billed", 1);
        }
    }

    /// Tallies and audits what one [`ServiceRepo::charge_due`] call billed:
    /// one `charge` event per charge it recorded.
    ///
    /// [`ServiceRepo::charge_due`]: crate::ports::ServiceRepo::charge_due
    fn record_billed(
        &self,
        ctx: &mut RunCtx<'_>,
        tenant: TenantId,
        charged: Vec<(ChargeItem, ChargeOutcome)>,
        planned: &HashMap<ServiceId, Vec<ChargeDue>>,
        now: DateTime<Utc>,
    ) {
        for (item, outcome) in charged {
            let subject = format!("service:{}", item.service_id);
            let charges = planned.get(&item.service_id).map_or(&[][..], Vec::as_slice);
            let created = match &outcome {
                ChargeOutcome::Billed { created } | ChargeOutcome::Superseded { created } => {
                    created.as_slice()
                }
                ChargeOutcome::NotFound => &[],
            };
            for (charge, created) in charges.iter().zip(created) {
                if !created {
                    continue;
                }
                ctx.tally.add("charges_created", 1);
                ctx.tally.event(
                    now,
                    Some(tenant),
                    "charge",
                    subject.clone(),
                    None,
                    AuditOutcome::Success,
                    Some(format!(
                        "{} for period {} to {}",
                        charge.amount, charge.period_start, charge.period_end
                    )),
                );
            }
            match outcome {
                ChargeOutcome::Billed { created } => {
                    // Recorded before (a crash before advancing): fine.
                    let already = created.iter().filter(|c| !**c).count();
                    ctx.tally.add("charges_already_recorded", already as u64);
                    ctx.tally.add("services_billed", 1);
                }
                ChargeOutcome::Superseded { .. } => ctx.tally.add("billing_superseded", 1),
                ChargeOutcome::NotFound => {
                    ctx.tally
                        .fail(subject, None, &Error::not_found("service", item.service_id))
                }
            }
        }
    }
}

/// What a [`Planner`] decided for the services of one call.
#[derive(Default)]
struct Planned {
    /// The charges of each service planned, for the audit.
    charges: HashMap<ServiceId, Vec<ChargeDue>>,
    /// Services whose charges could not be computed.
    failed: HashMap<ServiceId, Error>,
}

/// Plans the charges of one [`ServiceRepo::charge_due`] call.
///
/// [`ServiceRepo::charge_due`]: crate::ports::ServiceRepo::charge_due
struct Planner {
    plans: Arc<HashMap<PlanId, Plan>>,
    planned: Mutex<Planned>,
    today: NaiveDate,
    now: DateTime<Utc>,
}

impl PlanCharges for Planner {
    /// The [`ChargeItem`] of a due service, as [`charges_owed`] computes it at
    /// its plan's price; `None` when it owes nothing or its plan or billing
    /// day cannot be read (noted in `planned.failed`). A store may ask again
    /// for the same service (a transaction run again): the notes are keyed by
    /// service.
    fn plan(&self, s: &Service) -> Option<ChargeItem> {
        let mut planned = self.planned.lock().unwrap_or_else(PoisonError::into_inner);
        let owed = match self.plans.get(&s.plan_id) {
            Some(plan) => charges_owed(s, plan.price, self.today),
            None => Err(Error::not_found("plan", s.plan_id)),
        };
        let outcome = match owed {
            Ok(o) => o,
            Err(e) => {
                planned.failed.insert(s.id, e);
                return None;
            }
        };
        if outcome.charges.is_empty() {
            return None;
        }
        let item = ChargeItem {
            service_id: s.id,
            from: s.next_charge_on,
            to: outcome.next_charge_on,
            charges: outcome
                .charges
                .iter()
                .map(|c| c.to_ledger_entry(self.now))
                .collect(),
        };
        planned.charges.insert(s.id, outcome.charges);
        Some(item)
    }
}
