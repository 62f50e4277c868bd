//! Monthly billing per tenant time zone: catch-up, exactly once per period.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::{AuditOutcome, Service, ServiceStatus, Tenant};
use crate::error::{Error, Result};
use crate::jobs::common::{fresh, RunCtx};
use crate::jobs::Engine;
use crate::policy::billing::{charges_owed, BillingOutcome};
use crate::policy::time::local_date;
use crate::ports::{ChargeItem, ChargeOutcome, LeaseRepoExt as _};

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
        let mut seen = HashSet::new();
        loop {
            let now = ctx.now();
            let today = local_date(now, tenant.time_zone);
            let batch = repo.claim_billable(tenant.id, today, &ctx.claim_at(now)).await?;
            let batch = fresh(&mut seen, batch, |s| s.id);
            if batch.is_empty() {
                break;
            }
            self.bill_batch(ctx, &batch, today, now).await;
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

    /// Bills a claimed batch with one [`ServiceRepo::charge_batch`] call: each
    /// owed charge recorded under its key and `next_charge_on` moved past them
    /// (compare-and-set), atomically where the store can. A failure leaves the
    /// claims to run out; the next run resumes at the first unrecorded period.
    ///
    /// [`ServiceRepo::charge_batch`]: crate::ports::ServiceRepo::charge_batch
    async fn bill_batch(
        &self,
        ctx: &mut RunCtx<'_>,
        batch: &[Service],
        today: NaiveDate,
        now: DateTime<Utc>,
    ) {
        let mut items = Vec::with_capacity(batch.len());
        let mut billed = Vec::with_capacity(batch.len());
        let mut idle = Vec::new();
        for s in batch {
            let Some(outcome) = self.owed(ctx, s, today).await else {
                continue;
            };
            if outcome.charges.is_empty() {
                idle.push(s.id);
                continue;
            }
            items.push(ChargeItem {
                service_id: s.id,
                from: s.next_charge_on,
                to: outcome.next_charge_on,
                charges: outcome.charges.iter().map(|c| c.to_ledger_entry(now)).collect(),
            });
            billed.push((s, outcome.charges));
        }
        for id in idle {
            if let Err(e) = self.deps.repos.leases.release(id, ctx.holder()).await {
                tracing::warn!(service = %id, error = %e, "releasing a billing claim failed");
            }
        }
        if items.is_empty() {
            return;
        }
        let outcomes = match self.deps.repos.services.charge_batch(&items, ctx.holder()).await {
            Ok(o) if o.len() == items.len() => o,
            Ok(o) => {
                let e = Error::Internal(format!(
                    "charge_batch answered {} outcomes for {} services",
                    o.len(),
                    items.len()
                ));
                for (s, _) in &billed {
                    ctx.tally.fail(format!("service:{}", s.id), None, &e);
                }
                return;
            }
            Err(e) => {
                for (s, _) in &billed {
                    ctx.tally.fail(format!("service:{}", s.id), None, &e);
                }
                return;
            }
        };
        for ((s, charges), outcome) in billed.into_iter().zip(outcomes) {
            let subject = format!("service:{}", s.id);
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
                    Some(s.tenant_id),
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
                ChargeOutcome::NotFound => ctx.tally.fail(subject, None, &Error::not_found("service", s.id)),
            }
        }
    }
}
