//! Disconnect expired hotspot subscribers from every enabled router of their tenant.

use std::collections::hash_map::Entry;
use std::collections::{btree_map, BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures::future::join_all;

use crate::domain::{AuditOutcome, Router, RouterId, Subscriber, TenantId};
use crate::error::{Error, Result};
use crate::jobs::common::{duplicate, fresh, local_text, render, RunCtx, DRY_RUN_LIMIT};
use crate::jobs::Engine;
use crate::policy::hotspot::{hotspot_expiry, HotspotExpiry};
use crate::ports::{DisconnectReport, HotspotTarget};

/// One router's answer for a batch: per target, in order, or one error for all.
type RouterAnswer = Result<Vec<Result<DisconnectReport>>>;

impl Engine {
    pub(crate) async fn disconnect_expired(&self, ctx: &mut RunCtx<'_>) -> Result<()> {
        let subs = &self.deps.repos.subscribers;
        if ctx.dry_run {
            let now = ctx.now();
            let batch = subs.list_expired(now, DRY_RUN_LIMIT).await?;
            self.disconnect_batch(ctx, batch, now).await?;
            return Ok(());
        }
        let mut seen = HashSet::new();
        loop {
            let now = ctx.now();
            let claim = ctx.claim_at(now);
            let batch = subs.claim_expired(&claim).await?;
            let batch = fresh(&mut seen, batch, |s| s.id);
            if batch.is_empty() {
                break;
            }
            self.disconnect_batch(ctx, batch, now).await?;
            ctx.flush_audit().await;
        }
        // SMS only after the router work: a failing gateway never delays a disconnect.
        self.deliver_notices(ctx).await;
        Ok(())
    }

    async fn disconnect_batch(
        &self,
        ctx: &mut RunCtx<'_>,
        batch: Vec<Subscriber>,
        now: DateTime<Utc>,
    ) -> Result<()> {
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
        let mut plans: Vec<(Subscriber, HotspotExpiry)> = Vec::new();
        for s in batch {
            let tenant_rs = match tenant_routers.get(&s.tenant_id) {
                Some(Ok(rs)) => rs.clone(),
                Some(Err(e)) => {
                    let e = duplicate(e);
                    self.disconnect_pending(ctx, &s, now, &[(None, None, e)]).await;
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
            for r in tenant_rs.iter().filter(|r| expiry.routers.contains(&r.id)) {
                if let btree_map::Entry::Vacant(slot) = labels.entry(r.id) {
                    slot.insert(ctx.label(r).await);
                    routers.insert(r.id, r.clone());
                }
            }
            plans.push((s, expiry));
        }

        // One disconnect call per router for the whole batch.
        let mut per_router: BTreeMap<RouterId, Vec<usize>> = BTreeMap::new();
        for (i, (_, e)) in plans.iter().enumerate() {
            for r in &e.routers {
                per_router.entry(*r).or_default().push(i);
            }
        }

        if ctx.dry_run {
            for (s, e) in &plans {
                ctx.tally.add("users_disconnected", 1);
                ctx.tally.add("devices_deactivated", e.devices.len() as u64);
                for r in &e.routers {
                    if let Some(label) = labels.get(r) {
                        ctx.tally.add_router(label, "users_disconnected", 1);
                    }
                }
                let body = self.expired_body(ctx, s).await;
                self.reserve_notice(ctx, &e.notice, body, now).await;
            }
            return Ok(());
        }

        let driver = &self.deps.driver;
        let limits = &self.limits;
        let calls = per_router.iter().filter_map(|(rid, idxs)| {
            let router = routers.get(rid)?;
            let targets: Vec<HotspotTarget> = idxs.iter().map(|i| plans[*i].1.target.clone()).collect();
            Some(async move {
                let answer: RouterAnswer = limits
                    .run(*rid, driver.disconnect_hotspot(router, &targets))
                    .await;
                let answer = answer.and_then(|rs| {
                    if rs.len() == targets.len() {
                        Ok(rs)
                    } else {
                        Err(Error::Protocol {
                            service: format!("router {}", router.name),
                            detail: format!("{} results for {} targets", rs.len(), targets.len()),
                        })
                    }
                });
                (*rid, answer)
            })
        });
        let answers: Vec<(RouterId, RouterAnswer)> = join_all(calls).await;

        let mut confirmed: Vec<BTreeSet<RouterId>> = vec![BTreeSet::new(); plans.len()];
        let mut errors: Vec<Vec<(RouterId, Error)>> = (0..plans.len()).map(|_| Vec::new()).collect();
        for (rid, answer) in answers {
            let label = labels.get(&rid).cloned().unwrap_or_else(|| rid.to_string());
            let idxs = per_router.get(&rid).cloned().unwrap_or_default();
            match answer {
                Ok(results) => {
                    for (i, r) in idxs.iter().zip(results) {
                        match r {
                            Ok(rep) => {
                                confirmed[*i].insert(rid);
                                ctx.tally.add_router(&label, "users_disconnected", 1);
                                ctx.tally.add_router(
                                    &label,
                                    "sessions_removed",
                                    u64::from(rep.sessions_removed),
                                );
                                ctx.tally.add("sessions_removed", u64::from(rep.sessions_removed));
                                ctx.tally.add("bindings_removed", u64::from(rep.bindings_removed));
                            }
                            Err(e) => errors[*i].push((rid, e)),
                        }
                    }
                }
                Err(e) => {
                    ctx.tally.add_router(&label, "router_errors", 1);
                    for i in &idxs {
                        errors[*i].push((rid, duplicate(&e)));
                    }
                }
            }
        }
        // A router that was never called (no longer known) counts as unconfirmed.

        for (i, (s, expiry)) in plans.iter().enumerate() {
            if expiry.is_complete(&confirmed[i]) {
                self.disconnect_complete(ctx, s, expiry, &confirmed[i], now).await;
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
                self.disconnect_pending(ctx, s, now, &errs).await;
            }
        }
        Ok(())
    }

    async fn disconnect_complete(
        &self,
        ctx: &mut RunCtx<'_>,
        s: &Subscriber,
        expiry: &HotspotExpiry,
        confirmed: &BTreeSet<RouterId>,
        now: DateTime<Utc>,
    ) {
        let repos = &self.deps.repos;
        let subject = format!("subscriber:{}", s.id);
        // The expiry SMS is reserved before the expiry is recorded: once recorded,
        // the subscriber is no longer due, so a daemon killed in between would
        // lose the notice for good. Reserving is idempotent (one notice per
        // recipient, kind and deadline); it is withdrawn if an extension wins.
        let body = self.expired_body(ctx, s).await;
        let reserved = self.reserve_notice(ctx, &expiry.notice, body, now).await;
        match repos
            .subscribers
            .complete_expiry(s.id, ctx.holder(), expiry.paid_until, now)
            .await
        {
            Ok(true) => {
                ctx.tally.add("users_disconnected", 1);
                if expiry.routers.is_empty() {
                    ctx.tally.add("no_enabled_routers", 1);
                }
                for rid in confirmed {
                    ctx.tally.event(
                        now,
                        Some(s.tenant_id),
                        "disconnect",
                        subject.clone(),
                        Some(*rid),
                        AuditOutcome::Success,
                        None,
                    );
                }
                ctx.tally.event(
                    now,
                    Some(s.tenant_id),
                    "expire",
                    subject.clone(),
                    None,
                    AuditOutcome::Success,
                    Some(format!(
                        "paid until {}; {} routers confirmed",
                        expiry.paid_until.to_rfc3339(),
                        confirmed.len()
                    )),
                );
                tracing::info!(user = %s.phone, routers = confirmed.len(), "subscriber disconnected");
                match repos.devices.deactivate_all(s.id).await {
                    Ok(n) => ctx.tally.add("devices_deactivated", n),
                    Err(e) => ctx.tally.fail(subject.clone(), None, &e),
                }
            }
            Ok(false) => {
                // Extended (or completed elsewhere) meanwhile: the extension wins.
                ctx.tally.add("expiry_superseded", 1);
                // Our new notice is withdrawn only if the subscriber is still
                // active (extended); one completed elsewhere keeps its SMS.
                if let Some(id) = reserved {
                    match repos.subscribers.get(s.id).await {
                        Ok(now_s) if now_s.active => match repos.notices.abandon(id, ctx.holder()).await {
                            Ok(_) => ctx.tally.add("notices_withdrawn", 1),
                            Err(e) => ctx.tally.fail(format!("notice:{id}"), None, &e),
                        },
                        Ok(_) => {}
                        Err(e) => ctx.tally.fail(subject.clone(), None, &e),
                    }
                }
                ctx.tally.event(
                    now,
                    Some(s.tenant_id),
                    "expire",
                    subject,
                    None,
                    AuditOutcome::Skipped,
                    Some("paid_until changed meanwhile".into()),
                );
            }
            Err(e) => ctx.tally.fail(subject, None, &e),
        }
    }

    /// Keeps the subscriber pending: retried after a back-off.
    async fn disconnect_pending(
        &self,
        ctx: &mut RunCtx<'_>,
        s: &Subscriber,
        now: DateTime<Utc>,
        errors: &[(Option<RouterId>, Option<String>, Error)],
    ) {
        let subject = format!("subscriber:{}", s.id);
        ctx.tally.add("users_pending", 1);
        for (rid, label, e) in errors {
            ctx.tally.fail(subject.clone(), label.as_deref(), e);
            if let Some(l) = label {
                ctx.tally.add_router(l, "failures", 1);
            }
            ctx.tally.event(
                now,
                Some(s.tenant_id),
                "disconnect",
                subject.clone(),
                *rid,
                AuditOutcome::Retry,
                Some(e.to_string()),
            );
        }
        let until = ctx.retry_at(now, s.attempts);
        if let Err(e) = self
            .deps
            .repos
            .subscribers
            .retry_later(s.id, ctx.holder(), until)
            .await
        {
            ctx.tally.fail(subject, None, &e);
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
