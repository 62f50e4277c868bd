//! Provision and deprovision ISP services (seed 004), per tenant-local date.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use tracing::Instrument;

use crate::domain::{
    AuditOutcome, Connection, Plan, Router, RouterId, Service, ServiceId, ServiceStatus, Tenant,
};
use crate::error::{Error, Result};
use crate::jobs::common::{fresh, retry_at, router_span, RunCtx, Tally, DRY_RUN_LIMIT};
use crate::jobs::disconnect::record_foreign;
use crate::jobs::{Engine, JobKind, JobReport};
use crate::policy::provisioning::{
    pppoe_spec, provisioning_decision, queue_name, queue_spec, static_ip_spec, DeprovisionReason,
    ProvisionDecision,
};
use crate::policy::time::local_date;
use crate::ports::{ForeignObject, LeaseRepoExt as _};

/// What [`Engine::set_service_status`] did.
#[derive(Debug, Clone)]
pub struct ServiceChange {
    /// The service as stored afterwards.
    pub service: Service,
    /// Why the router does not yet match the status (a router error, a
    /// retry pending, an unpaid due date); `None` when it does.
    pub pending: Option<String>,
    /// The provisioning run of the service's tenant that applied it.
    pub report: JobReport,
}

/// A service with its decision and (for provisioning) its plan.
struct Job {
    service: Service,
    decision: ProvisionDecision,
    plan: Option<Plan>,
}

impl Engine {
    /// Sets a service's status (`Active` to provision, `Suspended` or
    /// `Inactive` to deprovision) and applies it on its router now, instead
    /// of at the next provisioning sweep. The run covers the service's tenant
    /// only, through the same claims as the sweep, so it never does work that
    /// another daemon holds; what it could not do is retried by the sweep.
    ///
    /// A terminated service cannot be changed (`Conflict`).
    pub async fn set_service_status(&self, id: ServiceId, status: ServiceStatus) -> Result<ServiceChange> {
        let repo = &self.deps.repos.services;
        let before = repo.get(id).await?;
        if before.status == ServiceStatus::Terminated {
            return Err(Error::conflict(
                "service",
                format!("service {id} is terminated; it cannot be changed"),
            ));
        }
        if before.status != status {
            repo.set_status(id, status).await?;
            tracing::info!(service = %id, from = before.status.as_str(), to = status.as_str(), "service status changed");
        }
        let tenant = self.deps.repos.tenants.get(before.tenant_id).await?;
        let mut ctx = RunCtx::new(self, JobKind::ProvisionServices, false);
        let outcome = self.provision_tenant(&mut ctx, &tenant).await;
        ctx.flush_audit().await;
        outcome?;
        let failure = ctx.tally.pending_services.get(&id).cloned();
        let report = ctx.into_report();
        let service = repo.get(id).await?;
        let pending = match (status, service.provisioned) {
            (ServiceStatus::Active, false) => Some(format!(
                "not provisioned yet: {}",
                failure.unwrap_or_else(|| format!(
                    "the due date {} may have passed (unpaid), or a retry is pending",
                    service.next_billing_date
                ))
            )),
            (ServiceStatus::Suspended | ServiceStatus::Inactive, true) => Some(format!(
                "still provisioned: {}",
                failure.unwrap_or_else(|| "a retry is pending".into())
            )),
            _ => None,
        };
        Ok(ServiceChange {
            service,
            pending,
            report,
        })
    }

    pub(crate) async fn provision_services(&self, ctx: &mut RunCtx<'_>) -> Result<()> {
        let tenants = self.deps.repos.tenants.list().await?;
        for tenant in tenants {
            if let Err(e) = self.provision_tenant(ctx, &tenant).await {
                ctx.tally.fail(format!("tenant:{}", tenant.slug), None, &e);
            }
        }
        ctx.flush_audit().await;
        Ok(())
    }

    async fn provision_tenant(&self, ctx: &mut RunCtx<'_>, tenant: &Tenant) -> Result<()> {
        let repo = &self.deps.repos.services;
        if ctx.dry_run {
            let now = ctx.now();
            let today = local_date(now, tenant.time_zone);
            let batch = repo.list_provisioning(tenant.id, today, DRY_RUN_LIMIT).await?;
            self.provision_batch(ctx, batch, now).await;
            return Ok(());
        }
        let mut seen = HashSet::new();
        loop {
            let now = ctx.now();
            let today = local_date(now, tenant.time_zone);
            let batch = repo
                .claim_provisioning(tenant.id, today, &ctx.claim_at(now))
                .await?;
            let batch = fresh(&mut seen, batch, |s| s.id);
            if batch.is_empty() {
                break;
            }
            self.provision_batch(ctx, batch, now).await;
            ctx.flush_audit().await;
        }
        Ok(())
    }

    async fn provision_batch(&self, ctx: &mut RunCtx<'_>, batch: Vec<Service>, now: DateTime<Utc>) {
        let leases = &self.deps.repos.leases;
        let mut by_router: BTreeMap<RouterId, Vec<Job>> = BTreeMap::new();
        for service in batch {
            let tz = ctx.tz_of(service.tenant_id).await;
            let today = local_date(now, tz);
            let decision = provisioning_decision(&service, today);
            if decision == ProvisionDecision::Nothing {
                ctx.tally.add("already_correct", 1);
                if !ctx.dry_run {
                    if let Err(e) = leases.release(service.id, ctx.holder()).await {
                        ctx.tally.fail(format!("service:{}", service.id), None, &e);
                    }
                }
                continue;
            }
            let plan = if decision == ProvisionDecision::Provision {
                match ctx.plan(service.plan_id).await {
                    Ok(p) => Some(p),
                    Err(e) => {
                        self.service_retry(&mut ctx.tally, &service, None, &e, now, ctx.dry_run, "provision")
                            .await;
                        continue;
                    }
                }
            } else {
                None
            };
            by_router.entry(service.router_id).or_default().push(Job {
                service,
                decision,
                plan,
            });
        }

        let mut groups = Vec::new();
        for (rid, jobs) in by_router {
            match ctx.router(rid).await {
                Ok(r) => {
                    let label = ctx.label(&r).await;
                    groups.push((r, label, jobs));
                }
                Err(e) => {
                    for j in jobs {
                        self.service_retry(
                            &mut ctx.tally,
                            &j.service,
                            None,
                            &e,
                            now,
                            ctx.dry_run,
                            action_of(j.decision),
                        )
                        .await;
                    }
                }
            }
        }
        let dry_run = ctx.dry_run;
        let tasks = groups.into_iter().map(|(router, label, jobs)| {
            let span = router_span(&label);
            self.provision_on_router(router, label, jobs, now, dry_run)
                .instrument(span)
        });
        for t in join_all(tasks).await {
            ctx.tally.merge(t);
        }
    }

    async fn provision_on_router(
        &self,
        router: Router,
        label: String,
        jobs: Vec<Job>,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Tally {
        let mut t = Tally::default();
        if !router.enabled {
            let e = Error::unavailable(format!("router {label}"), "router is disabled");
            t.add("router_disabled", jobs.len() as u64);
            for j in &jobs {
                self.service_retry(
                    &mut t,
                    &j.service,
                    Some(&label),
                    &e,
                    now,
                    dry_run,
                    action_of(j.decision),
                )
                .await;
            }
            return t;
        }
        if dry_run {
            for j in &jobs {
                count_done(&mut t, &label, j.decision);
            }
            return t;
        }
        let router = &router;
        let results = join_all(jobs.iter().map(|j| async move {
            let r = match j.decision {
                ProvisionDecision::Provision => self.provision_one(router, &j.service, j.plan.as_ref()).await,
                ProvisionDecision::Deprovision(_) => self.deprovision_one(router, &j.service).await,
                ProvisionDecision::Nothing => Ok(Some(Vec::new())),
            };
            (j, r)
        }))
        .await;
        let repo = &self.deps.repos.services;
        let holder = &self.config.holder;
        for (j, r) in results {
            let subject = format!("service:{}", j.service.id);
            let action = action_of(j.decision);
            match r {
                // The lease ran out before a router step: another daemon may
                // hold the service now, and does (or did) the work once.
                Ok(None) => {
                    t.add("provision_superseded", 1);
                    tracing::info!(router = %label, service = %j.service.id, action, "service change left to another daemon (lease lost before a router step)");
                }
                Ok(Some(foreign)) => {
                    record_foreign(
                        &mut t,
                        &foreign,
                        &label,
                        now,
                        j.service.tenant_id,
                        &subject,
                        router.id,
                    );
                    let recorded = match j.decision {
                        ProvisionDecision::Provision => {
                            repo.mark_provisioned(j.service.id, holder, now).await
                        }
                        _ => repo.mark_deprovisioned(j.service.id, holder, now).await,
                    };
                    match recorded {
                        // The lease ran out and another daemon took the service over:
                        // its change is counted by whoever records it.
                        Ok(false) => {
                            t.add("provision_superseded", 1);
                            tracing::info!(router = %label, service = %j.service.id, action, "service change recorded by another daemon (lease lost)");
                        }
                        Ok(true) => {
                            count_done(&mut t, &label, j.decision);
                            let reason = match j.decision {
                                ProvisionDecision::Deprovision(reason) => Some(reason.to_string()),
                                _ => None,
                            };
                            tracing::info!(router = %label, service = %j.service.id, action, reason = reason.as_deref().unwrap_or("-"), "service changed on router");
                            t.event(
                                now,
                                Some(j.service.tenant_id),
                                action,
                                subject,
                                Some(router.id),
                                AuditOutcome::Success,
                                reason,
                            );
                        }
                        Err(e) => t.fail(subject, Some(&label), &e),
                    }
                }
                Err(e) => {
                    t.add_router(&label, "failures", 1);
                    self.service_retry(&mut t, &j.service, Some(&label), &e, now, false, action)
                        .await;
                }
            }
        }
        t
    }

    /// Provisions one service; returns the router objects in its way that
    /// are not its own (left alone), or `None` when the service's lease was
    /// lost before a step (each router step starts only after a renewal).
    async fn provision_one(
        &self,
        router: &Router,
        service: &Service,
        plan: Option<&Plan>,
    ) -> Result<Option<Vec<ForeignObject>>> {
        let d = &self.deps.driver;
        let (rid, sid) = (router.id, service.id);
        let mut foreign = Vec::new();
        match &service.connection {
            Connection::Pppoe { .. } => {
                let spec = pppoe_spec(service)
                    .ok_or_else(|| Error::Internal("pppoe spec of a pppoe service".into()))?;
                if self
                    .leased_step(rid, sid, d.provision_pppoe(router, &spec))
                    .await?
                    .is_none()
                {
                    return Ok(None);
                }
            }
            Connection::StaticIp { .. } => {
                let spec = static_ip_spec(service, &self.config.static_ip_list)
                    .ok_or_else(|| Error::Internal("static-ip spec of a static-ip service".into()))?;
                match self
                    .leased_step(rid, sid, d.provision_static_ip(router, &spec))
                    .await?
                {
                    Some(f) => foreign = f,
                    None => return Ok(None),
                }
            }
        }
        if let Some(plan) = plan {
            if let Some(q) = queue_spec(service, plan)? {
                if self
                    .leased_step(rid, sid, d.set_rate_limit(router, &q))
                    .await?
                    .is_none()
                {
                    return Ok(None);
                }
            }
        }
        Ok(Some(foreign))
    }

    /// Deprovisions one service; returns the router objects in its way that
    /// are not its own (left alone), or `None` when the service's lease was
    /// lost before a step.
    async fn deprovision_one(
        &self,
        router: &Router,
        service: &Service,
    ) -> Result<Option<Vec<ForeignObject>>> {
        let d = &self.deps.driver;
        let (rid, sid) = (router.id, service.id);
        let tag = crate::domain::OwnerTag::Service(service.id);
        match &service.connection {
            Connection::Pppoe { username, .. } => Ok(self
                .leased_step(rid, sid, d.deprovision_pppoe(router, username, tag))
                .await?
                .map(|()| Vec::new())),
            Connection::StaticIp { address } => {
                let step = d.deprovision_static_ip(router, *address, &self.config.static_ip_list, tag);
                let Some(foreign) = self.leased_step(rid, sid, step).await? else {
                    return Ok(None);
                };
                let q = queue_name(service.id)?;
                Ok(self
                    .leased_step(rid, sid, d.remove_rate_limit(router, &q, tag))
                    .await?
                    .map(|()| foreign))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn service_retry(
        &self,
        t: &mut Tally,
        service: &Service,
        label: Option<&str>,
        e: &Error,
        now: DateTime<Utc>,
        dry_run: bool,
        action: &str,
    ) {
        let subject = format!("service:{}", service.id);
        t.pending_services.insert(service.id, e.to_string());
        t.add("services_pending", 1);
        t.fail(subject.clone(), label, e);
        t.event(
            now,
            Some(service.tenant_id),
            &format!("{action}_failed"),
            subject.clone(),
            Some(service.router_id),
            AuditOutcome::Retry,
            Some(e.to_string()),
        );
        if !dry_run {
            let until = retry_at(self, now, service.attempts);
            if let Err(e) = self
                .deps
                .repos
                .leases
                .retry_later(service.id, &self.config.holder, until)
                .await
            {
                t.fail(subject, label, &e);
            }
        }
    }
}

fn action_of(d: ProvisionDecision) -> &'static str {
    match d {
        ProvisionDecision::Deprovision(_) => "deprovision",
        _ => "provision",
    }
}

fn count_done(t: &mut Tally, label: &str, d: ProvisionDecision) {
    match d {
        ProvisionDecision::Provision => {
            t.add("services_provisioned", 1);
            t.add_router(label, "services_provisioned", 1);
        }
        ProvisionDecision::Deprovision(reason) => {
            t.add("services_deprovisioned", 1);
            t.add(&format!("deprovisioned_{}", DeprovisionReason::key(&reason)), 1);
            t.add_router(label, "services_deprovisioned", 1);
        }
        ProvisionDecision::Nothing => {}
    }
}
