//! Disconnect expired hotspot subscribers from every enabled router of their tenant.

use std::collections::hash_map::Entry;
use std::collections::{btree_map, BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures::future::{join_all, BoxFuture};
use futures::FutureExt as _;
use tracing::Instrument;

use crate::domain::{
    AuditOutcome, ExpiryDone, OwnerTag, Router, RouterId, Subscriber, SubscriberId, TenantId,
};
use crate::error::{Error, Result};
use crate::jobs::common::{
    duplicate, fresh, local_text, render, retry_at, router_span, RunCtx, Tally, DRY_RUN_LIMIT,
};
use crate::jobs::{Engine, JobKind};
use crate::policy::hotspot::{hotspot_expiry, HotspotExpiry};
use crate::ports::{DisconnectReport, ForeignObject, HotspotTarget};
use crate::ports::{LeaseRepoExt as _, Leased, LeasedId as _};

/// A subscriber every router confirmed, with where its user was disabled and
/// the text of its expiry SMS.
struct Confirmed {
    subscriber: Subscriber,
    expiry: HotspotExpiry,
    routers: BTreeSet<RouterId>,
    disabled: BTreeSet<RouterId>,
    body: String,
}

/// A claimed batch, planned: the subscribers to cut off (each with the text
/// of its expiry SMS) and their routers, as of `now`.
struct Planned {
    now: DateTime<Utc>,
    plans: Vec<(Subscriber, HotspotExpiry, String)>,
    routers: BTreeMap<RouterId, Router>,
    labels: BTreeMap<RouterId, String>,
}

/// A subscriber kept pending, with each router's error (router, its label).
type PendingItem = (Subscriber, Vec<(Option<RouterId>, Option<String>, Error)>);

/// What one batch's router work left to record. It owns all it needs, so that
/// it is recorded while the next batch is claimed and cut off.
struct CutOff {
    now: DateTime<Utc>,
    /// Every router confirmed these.
    done: Vec<Confirmed>,
    /// Not every router confirmed these: kept pending, with the errors.
    pending: Vec<PendingItem>,
    /// Lease lost before a router call, with the routers this batch had
    /// already disabled the user on: enabled again if paid again.
    lost: Vec<(Subscriber, BTreeSet<RouterId>)>,
    routers: BTreeMap<RouterId, Router>,
    labels: BTreeMap<RouterId, String>,
    /// The batch's audit events so far, written with its record.
    tally: Tally,
}

/// One router's answer for a batch: the plans whose lease was renewed and,
/// per plan, in order, the router's answer; or one error for all.
type RouterAnswer = Result<(Vec<usize>, Vec<Result<DisconnectReport>>)>;

impl Engine {
    /// Claims expired subscribers a batch at a time and cuts each batch off,
    /// in a pipeline: while batch N is at its routers, batch N-1 is recorded
    /// (notices, expiries, devices, audit) and batch N+1 is claimed and
    /// planned. At most one batch's writes are outstanding, and each
    /// subscriber is recorded only after its own routers confirmed.
    pub(crate) async fn disconnect_expired(&self, ctx: &mut RunCtx<'_>) -> Result<()> {
        if ctx.dry_run {
            let now = ctx.now();
            let batch = self
                .deps
                .repos
                .subscribers
                .list_expired(now, DRY_RUN_LIMIT)
                .await?;
            let planned = self.plan_batch(ctx, batch, now).await?;
            self.count_dry_run(ctx, &planned, now).await;
            return Ok(());
        }
        let mut seen = HashSet::new();
        let mut recording: Option<BoxFuture<'_, Tally>> = None;
        let mut next = self.claim_and_plan(ctx, &mut seen).await;
        loop {
            let planned = match next {
                Ok(Some(planned)) => planned,
                done => {
                    if let Some(record) = recording.take() {
                        ctx.tally.merge(record.await);
                    }
                    return done.map(|_| ());
                }
            };
            let previous = recording.take();
            let (cut, claimed, recorded) = futures::join!(
                self.cut_off(planned),
                self.claim_and_plan(ctx, &mut seen),
                async move {
                    match previous {
                        Some(record) => Some(record.await),
                        None => None,
                    }
                }
            );
            if let Some(tally) = recorded {
                ctx.tally.merge(tally);
            }
            let mut cut = cut;
            // The audit events of the planning so far go with this record.
            cut.tally.audit.append(&mut ctx.tally.audit);
            let record = self.record_batch(cut).boxed();
            next = match claimed {
                // Nothing was left when this batch went to its routers: claim
                // once more, for the expiries that fell meanwhile, while it is
                // recorded.
                Ok(None) => {
                    let (again, recorded) = futures::join!(self.claim_and_plan(ctx, &mut seen), record);
                    ctx.tally.merge(recorded);
                    again
                }
                claimed => {
                    recording = Some(record);
                    claimed
                }
            };
        }
    }

    /// Claims the next batch and plans it; `None` when nothing is left.
    async fn claim_and_plan(
        &self,
        ctx: &mut RunCtx<'_>,
        seen: &mut HashSet<SubscriberId>,
    ) -> Result<Option<Planned>> {
        let now = ctx.now();
        let claim = ctx.claim_at(now);
        let batch = self.deps.repos.subscribers.claim_expired(&claim).await?;
        let batch = fresh(seen, batch, |s| s.id);
        if batch.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.plan_batch(ctx, batch, now).await?))
    }

    /// Reads the batch's devices and routers and plans each subscriber's
    /// expiry; one that cannot be planned is kept pending (or left, when not
    /// due).
    async fn plan_batch(
        &self,
        ctx: &mut RunCtx<'_>,
        batch: Vec<Subscriber>,
        now: DateTime<Utc>,
    ) -> Result<Planned> {
        let repos = &self.deps.repos;
        let ids: Vec<_> = batch.iter().map(|s| s.id).collect();
        let devices = repos.devices.active_of(&ids).await?;

        // Routers per tenant; a tenant whose routers cannot be listed stays pending.
        let mut tenant_routers: HashMap<TenantId, Result<Vec<Router>>> = HashMap::new();
        for s in &batch {
            if let Entry::Vacant(slot) = tenant_routers.entry(s.tenant_id) {
                slot.insert(ctx.routers_of(s.tenant_id).await);
            }
        }
        let mut routers: BTreeMap<RouterId, Router> = BTreeMap::new();
        let mut labels: BTreeMap<RouterId, String> = BTreeMap::new();
        let mut plans: Vec<(Subscriber, HotspotExpiry, String)> = Vec::new();
        let mut without_routers: HashSet<TenantId> = HashSet::new();
        for s in batch {
            let tenant_rs = match tenant_routers.get(&s.tenant_id) {
                Some(Ok(rs)) => rs.clone(),
                Some(Err(e)) => {
                    let e = duplicate(e);
                    self.disconnect_pending(&mut ctx.tally, &s, now, &[(None, None, e)])
                        .await;
                    continue;
                }
                None => Vec::new(),
            };
            let Some(expiry) = hotspot_expiry(&s, &devices, &tenant_rs, now) else {
                // Claimed but not due by the policy (never before paid_until):
                // leave it; its lease runs out.
                ctx.tally.add("skipped_not_due", 1);
                continue;
            };
            if expiry.routers.is_empty() {
                // Nothing can cut this subscriber off: it stays pending (and
                // overdue in the health summary) until a router is enabled,
                // instead of being recorded as disconnected.
                if without_routers.insert(s.tenant_id) {
                    ctx.tally.add("tenants_without_routers", 1);
                    tracing::warn!(tenant = %s.tenant_id, "no enabled router for this tenant: its expired subscribers stay pending");
                }
                let e = Error::unavailable(
                    format!("tenant {}", s.tenant_id),
                    "no enabled router: nothing can cut this subscriber off",
                );
                self.disconnect_pending(&mut ctx.tally, &s, now, &[(None, None, e)])
                    .await;
                continue;
            }
            for r in tenant_rs.iter().filter(|r| expiry.routers.contains(&r.id)) {
                if let btree_map::Entry::Vacant(slot) = labels.entry(r.id) {
                    slot.insert(ctx.label(r).await);
                    routers.insert(r.id, r.clone());
                }
            }
            let body = self.expired_body(ctx, &s).await;
            plans.push((s, expiry, body));
        }
        Ok(Planned {
            now,
            plans,
            routers,
            labels,
        })
    }

    /// What a live run would do with a planned batch: counted, and each
    /// expiry notice checked for being new; nothing written.
    async fn count_dry_run(&self, ctx: &mut RunCtx<'_>, planned: &Planned, now: DateTime<Utc>) {
        for (_, e, body) in &planned.plans {
            ctx.tally.add("users_disconnected", 1);
            ctx.tally.add("devices_deactivated", e.devices.len() as u64);
            for r in &e.routers {
                if let Some(label) = planned.labels.get(r) {
                    ctx.tally.add_router(label, "users_disconnected", 1);
                }
            }
            self.reserve_notice(ctx, &e.notice, body.clone(), now).await;
        }
    }

    /// One disconnect call per router for the whole batch, each made only for
    /// the subscribers whose lease it renewed first (holding the router's
    /// permit; the routers' renewals grouped, see
    /// [`GroupRenewal`](crate::jobs::common::GroupRenewal)): a
    /// subscriber whose lease ran out, or was cleared by a payment, may be
    /// another daemon's now, and is left to it.
    async fn cut_off(&self, planned: Planned) -> CutOff {
        let Planned {
            now,
            plans,
            routers,
            labels,
        } = planned;
        let mut tally = Tally::default();
        let mut per_router: BTreeMap<RouterId, Vec<usize>> = BTreeMap::new();
        for (i, (_, e, _)) in plans.iter().enumerate() {
            for r in &e.routers {
                per_router.entry(*r).or_default().push(i);
            }
        }

        let driver = &self.deps.driver;
        let limits = &self.limits;
        let plans_ref = &plans;
        let renewal = self.group_renewal(Leased::Subscribers);
        let renewal = &renewal;
        let calls = per_router.iter().filter_map(|(rid, idxs)| {
            let router = routers.get(rid)?;
            let span = router_span(&router.name);
            Some(
                async move {
                    let answer: RouterAnswer = limits
                        .run(*rid, async {
                            let ids: Vec<i64> = idxs.iter().map(|i| plans_ref[*i].0.id.raw()).collect();
                            let held = renewal.renew(&ids).await?;
                            let kept: Vec<usize> = idxs
                                .iter()
                                .zip(held)
                                .filter(|(_, h)| *h)
                                .map(|(i, _)| *i)
                                .collect();
                            if kept.is_empty() {
                                return Ok((kept, Vec::new()));
                            }
                            let targets: Vec<HotspotTarget> =
                                kept.iter().map(|i| plans_ref[*i].1.target.clone()).collect();
                            let rs = driver.disconnect_hotspot(router, &targets).await?;
                            if rs.len() != targets.len() {
                                return Err(Error::Protocol {
                                    service: format!("router {}", router.name),
                                    detail: format!("{} results for {} targets", rs.len(), targets.len()),
                                });
                            }
                            Ok((kept, rs))
                        })
                        .await;
                    (*rid, answer)
                }
                .instrument(span),
            )
        });
        let answers: Vec<(RouterId, RouterAnswer)> = join_all(calls).await;

        let mut confirmed: Vec<BTreeSet<RouterId>> = vec![BTreeSet::new(); plans.len()];
        // Where the batch disabled the user: re-enabled if a payment wins the race.
        let mut disabled: Vec<BTreeSet<RouterId>> = vec![BTreeSet::new(); plans.len()];
        let mut errors: Vec<Vec<(RouterId, Error)>> = (0..plans.len()).map(|_| Vec::new()).collect();
        // Whose lease could not be renewed before a router call.
        let mut lost = vec![false; plans.len()];
        for (rid, answer) in answers {
            let label = labels.get(&rid).cloned().unwrap_or_else(|| rid.to_string());
            let idxs = per_router.get(&rid).cloned().unwrap_or_default();
            match answer {
                Ok((kept, results)) => {
                    for i in idxs.iter().filter(|i| !kept.contains(i)) {
                        lost[*i] = true;
                    }
                    for (i, r) in kept.iter().zip(results) {
                        match r {
                            Ok(rep) => {
                                confirmed[*i].insert(rid);
                                if rep.user_disabled {
                                    disabled[*i].insert(rid);
                                }
                                tally.add_router(&label, "users_disconnected", 1);
                                tally.add_router(&label, "sessions_removed", u64::from(rep.sessions_removed));
                                tally.add("sessions_removed", u64::from(rep.sessions_removed));
                                tally.add("bindings_removed", u64::from(rep.bindings_removed));
                                let s = &plans[*i].0;
                                record_foreign(
                                    &mut tally,
                                    &rep.foreign,
                                    &label,
                                    now,
                                    s.tenant_id,
                                    &format!("subscriber:{}", s.id),
                                    rid,
                                );
                            }
                            Err(e) => errors[*i].push((rid, e)),
                        }
                    }
                }
                Err(e) => {
                    tally.add_router(&label, "router_errors", 1);
                    for i in &idxs {
                        errors[*i].push((rid, duplicate(&e)));
                    }
                }
            }
        }
        // A router that was never called (no longer known) counts as unconfirmed.

        let mut cut = CutOff {
            now,
            done: Vec::new(),
            pending: Vec::new(),
            lost: Vec::new(),
            routers: BTreeMap::new(),
            labels: BTreeMap::new(),
            tally: Tally::default(),
        };
        for (i, (s, expiry, body)) in plans.into_iter().enumerate() {
            let disabled = std::mem::take(&mut disabled[i]);
            if lost[i] {
                // A payment clears the lease too; one still expired was taken
                // over by another daemon, which cuts it off: re-enabling it
                // here would undo and repeat that work.
                tally.add("expiry_superseded", 1);
                tracing::debug!(subscriber = %s.id, "expiry left to another daemon or a payment (lease lost before a router call)");
                if !disabled.is_empty() {
                    cut.lost.push((s, disabled));
                }
                continue;
            }
            let routers_confirmed = std::mem::take(&mut confirmed[i]);
            if expiry.is_complete(&routers_confirmed) {
                cut.done.push(Confirmed {
                    subscriber: s,
                    expiry,
                    routers: routers_confirmed,
                    disabled,
                    body,
                });
            } else {
                let mut errs: Vec<(Option<RouterId>, Option<String>, Error)> = errors[i]
                    .drain(..)
                    .map(|(rid, e)| (Some(rid), labels.get(&rid).cloned(), e))
                    .collect();
                if errs.is_empty() {
                    errs.push((
                        None,
                        None,
                        Error::unavailable("router", "not every router of the tenant confirmed"),
                    ));
                }
                cut.pending.push((s, errs));
            }
        }
        cut.routers = routers;
        cut.labels = labels;
        cut.tally = tally;
        cut
    }

    /// Records a cut-off batch: keeps the unconfirmed pending, records the
    /// confirmed ([`Self::disconnect_complete`]), enables again the users of
    /// those paid again meanwhile, and writes the batch's audit events.
    /// Answers the counts and failures of it, for the run's report.
    async fn record_batch(&self, cut: CutOff) -> Tally {
        let CutOff {
            now,
            done,
            pending,
            lost,
            routers,
            labels,
            mut tally,
        } = cut;
        let mut reenable = Vec::new();
        for (s, disabled) in lost {
            match self.deps.repos.subscribers.get(s.id).await {
                Ok(current) if paid_again(&current, now) => reenable.push((current, disabled)),
                Ok(_) => {}
                Err(e) => tally.fail(format!("subscriber:{}", s.id), None, &e),
            }
        }
        for (s, errs) in &pending {
            self.disconnect_pending(&mut tally, s, now, errs).await;
        }
        reenable.extend(self.disconnect_complete(&mut tally, &done, now).await);
        self.reenable_paid(&mut tally, reenable, &routers, &labels, now)
            .await;
        self.append_audit(JobKind::DisconnectExpired, &mut tally).await;
        tally
    }

    /// Enables again, on each router, the users this batch disabled for
    /// subscribers whose payment landed between the router work and the
    /// recording (the extension won): they must not wait for the next sync.
    async fn reenable_paid(
        &self,
        tally: &mut Tally,
        reenable: Vec<(Subscriber, BTreeSet<RouterId>)>,
        routers: &BTreeMap<RouterId, Router>,
        labels: &BTreeMap<RouterId, String>,
        now: DateTime<Utc>,
    ) {
        let mut per_router: BTreeMap<RouterId, Vec<&Subscriber>> = BTreeMap::new();
        for (s, rids) in &reenable {
            for rid in rids {
                per_router.entry(*rid).or_default().push(s);
            }
        }
        let driver = &self.deps.driver;
        let limits = &self.limits;
        let calls = per_router.iter().filter_map(|(rid, subs)| {
            let router = routers.get(rid)?;
            let changes: Vec<_> = subs
                .iter()
                .map(|s| (s.username.clone(), OwnerTag::Subscriber(s.id), false))
                .collect();
            let span = router_span(&router.name);
            Some(
                async move {
                    let answer = limits
                        .run(*rid, driver.set_hotspot_users_disabled(router, &changes))
                        .await;
                    (*rid, answer)
                }
                .instrument(span),
            )
        });
        for (rid, answer) in join_all(calls).await {
            let label = labels.get(&rid).cloned().unwrap_or_else(|| rid.to_string());
            let subs = per_router.get(&rid).cloned().unwrap_or_default();
            let answers: Vec<Result<()>> = match answer {
                Ok(rs) if rs.len() == subs.len() => rs,
                Ok(rs) => {
                    let e = Error::Protocol {
                        service: format!("router {label}"),
                        detail: format!("{} answers for {} users", rs.len(), subs.len()),
                    };
                    subs.iter().map(|_| Err(duplicate(&e))).collect()
                }
                Err(e) => subs.iter().map(|_| Err(duplicate(&e))).collect(),
            };
            for (s, r) in subs.iter().zip(answers) {
                let subject = format!("subscriber:{}", s.id);
                match r {
                    Ok(()) => {
                        tally.add("users_reenabled", 1);
                        tally.add_router(&label, "users_reenabled", 1);
                        tally.event(
                            now,
                            Some(s.tenant_id),
                            "reenable",
                            subject,
                            Some(rid),
                            AuditOutcome::Success,
                            Some("paid while being disconnected".into()),
                        );
                    }
                    // The next sync re-enables it; the failure is in the report.
                    Err(e) => tally.fail(subject, Some(&label), &e),
                }
            }
        }
    }

    /// Records the subscribers every router confirmed, a batch at a time: the
    /// expiry SMS reserved, then the expiries, then their devices (three
    /// repository calls, each one transaction on SQL).
    ///
    /// Returns the subscribers whose extension won the race with the routers
    /// they were disabled on, for [`Self::reenable_paid`].
    async fn disconnect_complete(
        &self,
        tally: &mut Tally,
        done: &[Confirmed],
        now: DateTime<Utc>,
    ) -> Vec<(Subscriber, BTreeSet<RouterId>)> {
        let mut reenable = Vec::new();
        if done.is_empty() {
            return reenable;
        }
        let repos = &self.deps.repos;
        // The expiry SMS is reserved before the expiry is recorded: once recorded,
        // the subscriber is no longer due, so a daemon killed in between would
        // lose the notice for good. Reserving is idempotent (one notice per
        // recipient, kind and deadline); it is withdrawn if an extension wins.
        let dues = done.iter().map(|c| (&c.expiry.notice, c.body.clone())).collect();
        let reserved = self.reserve_notices(tally, dues, now).await;

        let items: Vec<ExpiryDone> = done
            .iter()
            .map(|c| ExpiryDone {
                id: c.subscriber.id,
                paid_until_seen: c.expiry.paid_until,
            })
            .collect();
        let outcomes = match repos
            .subscribers
            .complete_expiries(&items, &self.config.holder, now)
            .await
        {
            Ok(o) if o.len() == items.len() => o,
            answer => {
                let e = answer.err().unwrap_or_else(|| Error::Protocol {
                    service: "subscriber repository".into(),
                    detail: format!("expiry answers for {} subscribers", items.len()),
                });
                // Nothing recorded: each stays leased and is claimed again when
                // its lease runs out (its notice is reserved and not sent twice).
                for c in done {
                    tally.fail(format!("subscriber:{}", c.subscriber.id), None, &e);
                }
                return reenable;
            }
        };

        let mut completed = Vec::new();
        for ((c, recorded), notice) in done.iter().zip(outcomes).zip(reserved) {
            let (s, expiry, confirmed) = (&c.subscriber, &c.expiry, &c.routers);
            let subject = format!("subscriber:{}", s.id);
            if recorded {
                completed.push(s.id);
                tally.add("users_disconnected", 1);
                for rid in confirmed.iter() {
                    tally.event(
                        now,
                        Some(s.tenant_id),
                        "disconnect",
                        subject.clone(),
                        Some(*rid),
                        AuditOutcome::Success,
                        None,
                    );
                }
                tally.event(
                    now,
                    Some(s.tenant_id),
                    "expire",
                    subject,
                    None,
                    AuditOutcome::Success,
                    Some(format!(
                        "paid until {}; {} routers confirmed",
                        expiry.paid_until.to_rfc3339(),
                        confirmed.len()
                    )),
                );
                tracing::info!(user = %s.phone, routers = confirmed.len(), "subscriber disconnected");
            } else {
                // Extended (or completed elsewhere) meanwhile: the extension wins.
                tally.add("expiry_superseded", 1);
                // Only a subscriber paid again (extended) gets its users back
                // and its new notice withdrawn; one completed elsewhere, or
                // still expired and taken over by another daemon, keeps both.
                match repos.subscribers.get(s.id).await {
                    Ok(current) if paid_again(&current, now) => {
                        if !c.disabled.is_empty() {
                            reenable.push((current, c.disabled.clone()));
                        }
                        if let Some(id) = notice {
                            match repos.notices.abandon(id, &self.config.holder).await {
                                Ok(_) => tally.add("notices_withdrawn", 1),
                                Err(e) => tally.fail(format!("notice:{id}"), None, &e),
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tally.fail(subject.clone(), None, &e),
                }
                tally.event(
                    now,
                    Some(s.tenant_id),
                    "expire",
                    subject,
                    None,
                    AuditOutcome::Skipped,
                    Some("paid_until changed meanwhile".into()),
                );
            }
        }
        if completed.is_empty() {
            return reenable;
        }
        match repos.devices.deactivate_all_of(&completed).await {
            Ok(n) => tally.add("devices_deactivated", n),
            Err(e) => {
                for id in &completed {
                    tally.fail(format!("subscriber:{id}"), None, &e);
                }
            }
        }
        reenable
    }

    /// Keeps the subscriber pending: retried after a back-off.
    async fn disconnect_pending(
        &self,
        tally: &mut Tally,
        s: &Subscriber,
        now: DateTime<Utc>,
        errors: &[(Option<RouterId>, Option<String>, Error)],
    ) {
        let subject = format!("subscriber:{}", s.id);
        tally.add("users_pending", 1);
        for (rid, label, e) in errors {
            tally.fail(subject.clone(), label.as_deref(), e);
            if let Some(l) = label {
                tally.add_router(l, "failures", 1);
            }
            tally.event(
                now,
                Some(s.tenant_id),
                "disconnect",
                subject.clone(),
                *rid,
                AuditOutcome::Retry,
                Some(e.to_string()),
            );
        }
        let until = retry_at(self, now, s.attempts);
        if let Err(e) = self
            .deps
            .repos
            .leases
            .retry_later(s.id, &self.config.holder, until)
            .await
        {
            tally.fail(subject, None, &e);
        }
    }

    async fn expired_body(&self, ctx: &mut RunCtx<'_>, s: &Subscriber) -> String {
        let tz = ctx.tz_of(s.tenant_id).await;
        render(
            &self.config.templates.hotspot_expired,
            &[
                ("expires_at", local_text(s.paid_until, tz)),
                ("phone", s.phone.to_string()),
            ],
        )
    }
}

/// Counts and audits the same-name objects a router showed that were not the
/// subject's: left alone, they are worth an operator's look.
pub(crate) fn record_foreign(
    tally: &mut Tally,
    foreign: &[ForeignObject],
    label: &str,
    now: DateTime<Utc>,
    tenant: TenantId,
    subject: &str,
    router: RouterId,
) {
    for f in foreign {
        tally.add("foreign_objects", 1);
        tally.add_router(label, "foreign_objects", 1);
        tally.event(
            now,
            Some(tenant),
            "foreign_object",
            subject.to_owned(),
            Some(router),
            AuditOutcome::Skipped,
            Some(format!("{} is not {subject}'s; left alone", f.describe())),
        );
    }
}

/// Whether `s`, found not recorded as expired by this run, was extended
/// meanwhile: active, with paid time ahead of `now`.
fn paid_again(s: &crate::domain::Subscriber, now: DateTime<Utc>) -> bool {
    s.active && s.paid_until > now
}
