//! Monthly billing per tenant time zone: catch-up, exactly once per period.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::{AuditOutcome, Service, ServiceStatus, Tenant};
use crate::error::Result;
use crate::jobs::common::{fresh, RunCtx};
use crate::jobs::Engine;
use crate::policy::billing::charges_owed;
use crate::policy::time::local_date;
use crate::ports::LeaseRepoExt as _;

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
                self.bill_service(ctx, &s, today, now).await;
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
            for s in &batch {
                self.bill_service(ctx, s, today, now).await;
            }
            ctx.flush_audit().await;
        }
        Ok(())
    }

    /// Records each owed charge under its key, then moves `next_charge_on` past
    /// the recorded ones (compare-and-set). A failure leaves the claim to run
    /// out; the next run resumes at the first unrecorded period.
    async fn bill_service(&self, ctx: &mut RunCtx<'_>, s: &Service, today: NaiveDate, now: DateTime<Utc>) {
        let subject = format!("service:{}", s.id);
        let plan = match ctx.plan(s.plan_id).await {
            Ok(p) => p,
            Err(e) => return ctx.tally.fail(subject, None, &e),
        };
        let outcome = match charges_owed(s, plan.price, today) {
            Ok(o) => o,
            Err(e) => return ctx.tally.fail(subject, None, &e),
        };
        if ctx.dry_run {
            ctx.tally.add("charges_created", outcome.charges.len() as u64);
            if !outcome.charges.is_empty() {
                ctx.tally.add("services_billed", 1);
            }
            return;
        }
        let ledger = &self.deps.repos.ledger;
        let mut reached = s.next_charge_on;
        for charge in &outcome.charges {
            match ledger.record(&charge.to_ledger_entry(now)).await {
                Ok(_) => {
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
                // Recorded before (a rerun, or a crash before advancing): fine.
                Err(e) if e.is_conflict() => ctx.tally.add("charges_already_recorded", 1),
                Err(e) => {
                    ctx.tally.fail(subject.clone(), None, &e);
                    break;
                }
            }
            reached = charge.period_end;
        }
        if reached == s.next_charge_on {
            if let Err(e) = self.deps.repos.leases.release(s.id, ctx.holder()).await {
                tracing::warn!(service = %s.id, error = %e, "releasing a billing claim failed");
            }
            return;
        }
        match self
            .deps
            .repos
            .services
            .advance_billing(s.id, ctx.holder(), s.next_charge_on, reached)
            .await
        {
            Ok(true) => ctx.tally.add("services_billed", 1),
            Ok(false) => ctx.tally.add("billing_superseded", 1),
            Err(e) => ctx.tally.fail(subject, None, &e),
        }
    }
}
