//! Reconcile the database with each router's live state: one read per menu
//! per router, then the actions of [`crate::policy::reconcile`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::future::join_all;
use tracing::Instrument;

use crate::domain::{
    AuditOutcome, MacAddress, OwnerTag, Plan, PlanId, RosName, Router, Service, Subscriber, TenantId,
    Voucher, VoucherId, VoucherStatus,
};
use crate::error::{Error, Result};
use crate::jobs::common::{duplicate, router_span, RunCtx, Tally};
use crate::jobs::Engine;
use crate::policy::reconcile::{reconcile, Desired, ReconcileAction, RECONCILE_MENUS};
use crate::policy::time::local_date;
use crate::ports::{HotspotUserSpec, RouterSnapshot};

const ALL_VOUCHER_STATUSES: [VoucherStatus; 4] = [
    VoucherStatus::Unused,
    VoucherStatus::Active,
    VoucherStatus::Expired,
    VoucherStatus::Revoked,
];

/// One router's live state and everything the database says about it.
struct RouterWork {
    router: Router,
    label: String,
    snapshot: RouterSnapshot,
    time_zone: Tz,
    subscribers: Arc<Vec<Subscriber>>,
    services: Vec<Service>,
    plans: BTreeMap<PlanId, Plan>,
    /// Every voucher of the tenant: each one's user belongs on every router.
    vouchers: Arc<Vec<Voucher>>,
    /// The tenant's vouchers whose user another router of this round shows.
    voucher_users_elsewhere: HashSet<VoucherId>,
}

/// Routers synced concurrently (whole tenants: a round may hold more).
const SYNC_ROUTERS_AT_ONCE: usize = 16;

impl Engine {
    pub(crate) async fn sync_routers(&self, ctx: &mut RunCtx<'_>) -> Result<()> {
        let mut by_tenant: BTreeMap<TenantId, Vec<Router>> = BTreeMap::new();
        for router in self.deps.directory.all_routers().await? {
            by_tenant.entry(router.tenant_id).or_default().push(router);
        }
        // Tenant by tenant, whole tenants together until a round has
        // SYNC_ROUTERS_AT_ONCE routers: a tenant's subscribers are in memory
        // only while its routers are synced (all tenants at once held every
        // subscriber of the database).
        let mut round = Vec::new();
        for routers in by_tenant.into_values() {
            for router in routers {
                let label = ctx.label(&router).await;
                if !router.enabled {
                    ctx.tally.add("routers_skipped_disabled", 1);
                    continue;
                }
                round.push((router, label));
            }
            if round.len() >= SYNC_ROUTERS_AT_ONCE {
                self.sync_round(ctx, std::mem::take(&mut round)).await;
            }
        }
        self.sync_round(ctx, round).await;
        Ok(())
    }

    /// Syncs the routers of a round concurrently: their snapshots first, then
    /// the database records, then the actions.
    ///
    /// The records are read after the snapshots and judged at the time they
    /// were read, so the database is never older than the router state it is
    /// compared with: a subscriber whose paid time ended while the snapshot
    /// was taken (and whose user the watcher disabled) is not entitled, and
    /// its user is not enabled again; one who paid meanwhile is not cut off.
    /// A voucher activated after the snapshot began is not expired for the
    /// router user the snapshot could not yet show.
    async fn sync_round(&self, ctx: &mut RunCtx<'_>, round: Vec<(Router, String)>) {
        if round.is_empty() {
            return;
        }
        let observed_at = ctx.now();
        let snapshots = join_all(round.iter().map(|(router, label)| {
            self.limits
                .run(router.id, self.deps.driver.snapshot(router, &RECONCILE_MENUS))
                .instrument(router_span(label))
        }))
        .await;
        let mut subscribers: HashMap<TenantId, Arc<Vec<Subscriber>>> = HashMap::new();
        let mut vouchers: HashMap<TenantId, Arc<Vec<Voucher>>> = HashMap::new();
        let mut work = Vec::with_capacity(round.len());
        for ((router, label), snapshot) in round.into_iter().zip(snapshots) {
            let snapshot = match snapshot {
                Ok(s) => s,
                Err(e) => {
                    let failed_at = ctx.now();
                    let t = &mut ctx.tally;
                    t.add("routers_failed", 1);
                    t.add_router(&label, "failures", 1);
                    t.fail(format!("router:{label}"), Some(&label), &e);
                    t.event(
                        failed_at,
                        Some(router.tenant_id),
                        "sync",
                        format!("router:{}", router.name),
                        Some(router.id),
                        AuditOutcome::Retry,
                        Some(e.to_string()),
                    );
                    continue;
                }
            };
            match self
                .load_router_work(
                    ctx,
                    &mut subscribers,
                    &mut vouchers,
                    router,
                    label.clone(),
                    snapshot,
                )
                .await
            {
                Ok(w) => work.push(w),
                Err(e) => {
                    ctx.tally.add("routers_failed", 1);
                    ctx.tally.fail(format!("router:{label}"), Some(&label), &e);
                }
            }
        }
        drop(subscribers);
        drop(vouchers);
        mark_voucher_users_elsewhere(&mut work);
        let now = ctx.now();
        let dry_run = ctx.dry_run;
        let tallies = join_all(work.into_iter().map(|w| {
            let span = router_span(&w.label);
            self.sync_one(w, observed_at, now, dry_run).instrument(span)
        }))
        .await;
        for t in tallies {
            ctx.tally.merge(t);
        }
        ctx.flush_audit().await;
    }

    async fn load_router_work(
        &self,
        ctx: &mut RunCtx<'_>,
        subscribers: &mut HashMap<TenantId, Arc<Vec<Subscriber>>>,
        vouchers: &mut HashMap<TenantId, Arc<Vec<Voucher>>>,
        router: Router,
        label: String,
        snapshot: RouterSnapshot,
    ) -> Result<RouterWork> {
        let repos = &self.deps.repos;
        let tenant = ctx.tenant(router.tenant_id).await?;
        let subs = match subscribers.get(&tenant.id) {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(repos.subscribers.active_of_tenant(tenant.id).await?);
                subscribers.insert(tenant.id, s.clone());
                s
            }
        };
        let services = repos.services.on_router(router.id).await?;
        let vouchers = match vouchers.get(&tenant.id) {
            Some(v) => v.clone(),
            None => {
                // Stored per home router: the tenant's are those of all its routers.
                let mut all = Vec::new();
                for r in ctx.routers_of(tenant.id).await? {
                    all.extend(repos.vouchers.on_router(r.id, &ALL_VOUCHER_STATUSES).await?);
                }
                let all = Arc::new(all);
                vouchers.insert(tenant.id, all.clone());
                all
            }
        };
        let mut plans = BTreeMap::new();
        for s in &services {
            if let std::collections::btree_map::Entry::Vacant(slot) = plans.entry(s.plan_id) {
                slot.insert(ctx.plan(s.plan_id).await?);
            }
        }
        Ok(RouterWork {
            router,
            label,
            snapshot,
            time_zone: tenant.time_zone,
            subscribers: subs,
            services,
            plans,
            vouchers,
            voucher_users_elsewhere: HashSet::new(),
        })
    }

    async fn sync_one(
        &self,
        w: RouterWork,
        observed_at: DateTime<Utc>,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Tally {
        let mut t = Tally::default();
        let router = &w.router;
        let label = &w.label;
        let desired = Desired {
            now,
            observed_at,
            today: local_date(now, w.time_zone),
            subscribers: &w.subscribers,
            services: &w.services,
            plans: &w.plans,
            vouchers: &w.vouchers,
            voucher_users_elsewhere: &w.voucher_users_elsewhere,
            static_ip_list: &self.config.static_ip_list,
        };
        let actions = reconcile(&desired, &w.snapshot);
        t.add("routers_synced", 1);
        // Hotspot users to disable or enable go to the router as one batch,
        // at the place of the first of them.
        let mut user_changes: Option<HashMap<usize, Result<u64>>> = None;
        // Likewise the ip-bindings to remove, and the voucher users to add.
        let mut binding_removals: Option<HashMap<usize, Result<u64>>> = None;
        let mut voucher_users: Option<HashMap<usize, Result<u64>>> = None;
        for (i, action) in actions.iter().enumerate() {
            let key = action.key();
            let n = match action {
                ReconcileAction::RemoveHotspotSessions { ids } => ids.len() as u64,
                _ => 1,
            };
            if dry_run {
                t.add(key, n);
                t.add_router(label, key, n);
                continue;
            }
            let subject = subject_of(action);
            let outcome = match action {
                ReconcileAction::DisableHotspotUser { .. } | ReconcileAction::EnableHotspotUser { .. } => {
                    if user_changes.is_none() {
                        user_changes = Some(self.apply_user_changes(router, &actions).await);
                    }
                    user_changes.as_mut().and_then(|m| m.remove(&i)).unwrap_or(Ok(0))
                }
                ReconcileAction::RemoveIpBinding { .. } => {
                    if binding_removals.is_none() {
                        binding_removals = Some(self.apply_binding_removals(router, &actions).await);
                    }
                    binding_removals
                        .as_mut()
                        .and_then(|m| m.remove(&i))
                        .unwrap_or(Ok(0))
                }
                ReconcileAction::AddVoucherUser(_) => {
                    if voucher_users.is_none() {
                        voucher_users = Some(self.apply_voucher_users(router, &actions).await);
                    }
                    voucher_users.as_mut().and_then(|m| m.remove(&i)).unwrap_or(Ok(0))
                }
                _ => self.apply(router, action, now).await,
            };
            match outcome {
                Ok(done) => {
                    t.add(key, done);
                    t.add_router(label, key, done);
                    if done > 0 {
                        t.event(
                            now,
                            Some(router.tenant_id),
                            key,
                            subject,
                            Some(router.id),
                            AuditOutcome::Success,
                            None,
                        );
                    }
                }
                Err(e) => {
                    t.add_router(label, "failures", 1);
                    t.fail(subject.clone(), Some(label), &e);
                    t.event(
                        now,
                        Some(router.tenant_id),
                        key,
                        subject,
                        Some(router.id),
                        AuditOutcome::Retry,
                        Some(e.to_string()),
                    );
                }
            }
        }
        t
    }

    /// The hotspot-user actions among `actions`, in one driver call: per
    /// action index, 1 once the user is as wanted, 0 if it is gone, or the error.
    async fn apply_user_changes(
        &self,
        router: &Router,
        actions: &[ReconcileAction],
    ) -> HashMap<usize, Result<u64>> {
        let (indexes, changes): (Vec<usize>, Vec<(RosName, OwnerTag, bool)>) = actions
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                ReconcileAction::DisableHotspotUser { name, owner } => {
                    Some((i, (name.clone(), *owner, true)))
                }
                ReconcileAction::EnableHotspotUser { name, owner } => {
                    Some((i, (name.clone(), *owner, false)))
                }
                _ => None,
            })
            .unzip();
        let answers = self
            .limits
            .run(
                router.id,
                self.deps.driver.set_hotspot_users_disabled(router, &changes),
            )
            .await;
        let mut out = HashMap::with_capacity(indexes.len());
        match answers {
            Ok(answers) if answers.len() == indexes.len() => {
                for (i, answer) in indexes.into_iter().zip(answers) {
                    out.insert(
                        i,
                        match answer {
                            Ok(()) => Ok(1),
                            // Gone meanwhile: nothing left to change.
                            Err(e) if e.is_not_found() => Ok(0),
                            Err(e) => Err(e),
                        },
                    );
                }
            }
            Ok(answers) => {
                for i in indexes {
                    out.insert(
                        i,
                        Err(Error::Internal(format!(
                            "router driver answered {} of {} hotspot-user changes",
                            answers.len(),
                            changes.len()
                        ))),
                    );
                }
            }
            Err(e) => {
                // One error for the batch: each action is retried at the next sync.
                let (kind, text) = (e.is_transient(), e.to_string());
                for i in indexes {
                    out.insert(
                        i,
                        Err(if kind {
                            Error::unavailable(router.name.to_string(), text.clone())
                        } else {
                            Error::Internal(text.clone())
                        }),
                    );
                }
            }
        }
        out
    }

    /// The ip-binding removals among `actions`, in one driver call: per
    /// action index, how many bindings the router removed, or the error.
    async fn apply_binding_removals(
        &self,
        router: &Router,
        actions: &[ReconcileAction],
    ) -> HashMap<usize, Result<u64>> {
        let (indexes, pairs): (Vec<usize>, Vec<(MacAddress, OwnerTag)>) = actions
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                ReconcileAction::RemoveIpBinding { mac, owner } => Some((i, (*mac, *owner))),
                _ => None,
            })
            .unzip();
        let answers = self
            .limits
            .run(router.id, self.deps.driver.remove_ip_bindings(router, &pairs))
            .await;
        let answers: Vec<Result<u64>> = match answers {
            Ok(answers) if answers.len() == indexes.len() => {
                answers.into_iter().map(|a| a.map(u64::from)).collect()
            }
            Ok(answers) => {
                let text = format!(
                    "router driver answered {} of {} ip-binding removals",
                    answers.len(),
                    pairs.len()
                );
                indexes
                    .iter()
                    .map(|_| Err(Error::Internal(text.clone())))
                    .collect()
            }
            Err(e) => indexes.iter().map(|_| Err(duplicate(&e))).collect(),
        };
        indexes.into_iter().zip(answers).collect()
    }

    /// The voucher users to add among `actions`, in one batch on the router:
    /// per action index, 1 once added, or the error.
    async fn apply_voucher_users(
        &self,
        router: &Router,
        actions: &[ReconcileAction],
    ) -> HashMap<usize, Result<u64>> {
        let (indexes, specs): (Vec<usize>, Vec<HotspotUserSpec>) = actions
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                ReconcileAction::AddVoucherUser(spec) => Some((i, spec.clone())),
                _ => None,
            })
            .unzip();
        let answers = self.add_voucher_users(router, &specs).await;
        indexes
            .into_iter()
            .zip(answers)
            .map(|(i, a)| (i, a.map(|()| 1)))
            .collect()
    }

    /// Performs one action; returns how many objects or records it changed.
    async fn apply(&self, router: &Router, action: &ReconcileAction, now: DateTime<Utc>) -> Result<u64> {
        let d = &self.deps.driver;
        let l = &self.limits;
        let id = router.id;
        match action {
            ReconcileAction::RemoveHotspotSessions { ids } => Ok(u64::from(
                l.run(id, d.remove_hotspot_sessions(router, ids)).await?,
            )),
            ReconcileAction::DisableHotspotUser { name, owner }
            | ReconcileAction::EnableHotspotUser { name, owner } => {
                let disable = matches!(action, ReconcileAction::DisableHotspotUser { .. });
                match l
                    .run(id, d.set_hotspot_user_disabled(router, name, *owner, disable))
                    .await
                {
                    Ok(()) => Ok(1),
                    // Gone meanwhile: nothing left to change.
                    Err(e) if e.is_not_found() => Ok(0),
                    Err(e) => Err(e),
                }
            }
            ReconcileAction::RemoveIpBinding { mac, owner } => {
                let answers = l.run(id, d.remove_ip_bindings(router, &[(*mac, *owner)])).await?;
                match answers.into_iter().next() {
                    Some(answer) => answer.map(u64::from),
                    None => Err(Error::Internal(
                        "router driver answered no ip-binding removal".into(),
                    )),
                }
            }
            ReconcileAction::RestorePppoe(spec) => {
                l.run(id, d.provision_pppoe(router, spec)).await.map(|()| 1)
            }
            ReconcileAction::RestoreStaticIp(spec) => {
                // Foreign entries are the reconcile policy's concern, not this action's.
                l.run(id, d.provision_static_ip(router, spec))
                    .await
                    .map(|_foreign| 1)
            }
            ReconcileAction::RestoreQueue(spec) => {
                l.run(id, d.set_rate_limit(router, spec)).await.map(|()| 1)
            }
            ReconcileAction::RemovePppoe { name, owner } => l
                .run(id, d.deprovision_pppoe(router, name, *owner))
                .await
                .map(|()| 1),
            ReconcileAction::RemoveStaticIp { address, list, owner } => l
                .run(id, d.deprovision_static_ip(router, *address, list, *owner))
                .await
                .map(|_foreign| 1),
            ReconcileAction::RemoveQueue { name, owner } => l
                .run(id, d.remove_rate_limit(router, name, *owner))
                .await
                .map(|()| 1),
            ReconcileAction::AddVoucherUser(spec) => {
                let mut answers = self.add_voucher_users(router, std::slice::from_ref(spec)).await;
                answers.pop().unwrap_or(Ok(())).map(|()| 1)
            }
            ReconcileAction::ExpireVoucher { voucher, reason } => {
                // The expire-vouchers job then removes the router user (or
                // confirms it is gone) and records that.
                let changed = self
                    .deps
                    .repos
                    .vouchers
                    .expire(*voucher, VoucherStatus::Active, *reason, now)
                    .await?;
                Ok(u64::from(changed))
            }
        }
    }
}

fn subject_of(action: &ReconcileAction) -> String {
    match action {
        ReconcileAction::RemoveHotspotSessions { ids } => format!("sessions:{}", ids.join(",")),
        ReconcileAction::DisableHotspotUser { name, owner }
        | ReconcileAction::EnableHotspotUser { name, owner } => {
            format!("hotspot_user:{name} ({})", owner.comment())
        }
        ReconcileAction::RemoveIpBinding { mac, owner } => format!("ip_binding:{mac} ({})", owner.comment()),
        ReconcileAction::RestorePppoe(spec) => {
            format!("ppp_secret:{} ({})", spec.username, spec.owner.comment())
        }
        ReconcileAction::RestoreStaticIp(spec) => {
            format!("address_list:{} ({})", spec.address, spec.owner.comment())
        }
        ReconcileAction::RestoreQueue(spec) => format!("queue:{} ({})", spec.name, spec.owner.comment()),
        ReconcileAction::RemovePppoe { name, owner } => format!("ppp_secret:{name} ({})", owner.comment()),
        ReconcileAction::RemoveStaticIp { address, owner, .. } => {
            format!("address_list:{address} ({})", owner.comment())
        }
        ReconcileAction::RemoveQueue { name, owner } => format!("queue:{name} ({})", owner.comment()),
        ReconcileAction::AddVoucherUser(spec) => {
            format!("hotspot_user:{} ({})", spec.name, spec.owner.comment())
        }
        ReconcileAction::ExpireVoucher { voucher, reason } => {
            format!("voucher:{voucher} ({})", reason.as_str())
        }
    }
}

/// Notes, for each router's work, the tenant's vouchers whose user (by name)
/// another router of the tenant in this round shows.
fn mark_voucher_users_elsewhere(work: &mut [RouterWork]) {
    let mut by_tenant: BTreeMap<TenantId, Vec<usize>> = BTreeMap::new();
    for (i, w) in work.iter().enumerate() {
        by_tenant.entry(w.router.tenant_id).or_default().push(i);
    }
    for indexes in by_tenant.into_values() {
        if indexes.len() < 2 {
            continue;
        }
        let names: Vec<HashSet<&str>> = indexes
            .iter()
            .map(|&i| {
                work[i]
                    .snapshot
                    .hotspot_users
                    .iter()
                    .map(|u| u.name.as_str())
                    .collect()
            })
            .collect();
        let mut marks: Vec<HashSet<VoucherId>> = vec![HashSet::new(); indexes.len()];
        for v in work[indexes[0]].vouchers.iter() {
            let shown: Vec<bool> = names.iter().map(|n| n.contains(v.code.as_str())).collect();
            let count = shown.iter().filter(|s| **s).count();
            for (k, here) in shown.iter().enumerate() {
                if count > usize::from(*here) {
                    marks[k].insert(v.id);
                }
            }
        }
        for (&i, m) in indexes.iter().zip(marks) {
            work[i].voucher_users_elsewhere = m;
        }
    }
}
