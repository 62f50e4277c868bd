//! Expire vouchers by their deadlines and remove their router users, sessions
//! and the ip-bindings tagged for them, on every enabled router of the
//! voucher's tenant (each holds its user). A voucher's removal is recorded
//! only once every one of them confirmed; a router that failed puts the whole
//! removal off, and the retry runs every router again (removal is
//! idempotent: an already-gone user counts as removed).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use tracing::Instrument;

use crate::domain::{AuditOutcome, OwnerTag, Router, RouterId, TenantId, Voucher, VoucherId};
use crate::error::{Error, Result};
use crate::jobs::common::{duplicate, fresh, retry_at, router_span, RunCtx, Tally, DRY_RUN_LIMIT};
use crate::jobs::disconnect::record_foreign;
use crate::jobs::Engine;
use crate::policy::voucher::{voucher_time_expiry, VoucherAction};
use crate::ports::{DisconnectReport, HotspotTarget};
use crate::ports::{LeaseRepoExt as _, Leased, LeasedId as _};

impl Engine {
    pub(crate) async fn expire_vouchers(&self, ctx: &mut RunCtx<'_>) -> Result<()> {
        let repo = &self.deps.repos.vouchers;
        if ctx.dry_run {
            let now = ctx.now();
            let batch = repo.list_due(now, DRY_RUN_LIMIT).await?;
            self.voucher_batch(ctx, batch, now).await;
            return Ok(());
        }
        let mut seen = HashSet::new();
        loop {
            let now = ctx.now();
            let batch = repo.claim_due(&ctx.claim_at(now)).await?;
            let batch = fresh(&mut seen, batch, |v| v.id);
            if batch.is_empty() {
                break;
            }
            self.voucher_batch(ctx, batch, now).await;
            ctx.flush_audit().await;
        }
        Ok(())
    }

    async fn voucher_batch(&self, ctx: &mut RunCtx<'_>, batch: Vec<Voucher>, now: DateTime<Utc>) {
        let repo = &self.deps.repos.vouchers;
        let mut removals: Vec<Voucher> = Vec::new();
        for v in batch {
            let subject = format!("voucher:{}", v.code);
            match voucher_time_expiry(&v, now) {
                VoucherAction::Expire(reason) => {
                    let changed = if ctx.dry_run {
                        Ok(true)
                    } else {
                        repo.expire(v.id, v.status, reason, now).await
                    };
                    match changed {
                        Ok(true) => {
                            ctx.tally.add("vouchers_expired", 1);
                            ctx.tally.add(&format!("expired_{}", reason.as_str()), 1);
                            ctx.tally.event(
                                now,
                                Some(v.tenant_id),
                                "voucher_expire",
                                subject,
                                Some(v.router_id),
                                AuditOutcome::Success,
                                Some(reason.as_str().to_owned()),
                            );
                            removals.push(v);
                        }
                        Ok(false) => ctx.tally.add("vouchers_superseded", 1),
                        Err(e) => ctx.tally.fail(subject, None, &e),
                    }
                }
                VoucherAction::RemoveFromRouter => removals.push(v),
                VoucherAction::Keep => ctx.tally.add("skipped_not_due", 1),
            }
        }

        // Every router of the voucher's tenant holds its user: one batch per
        // router for all the vouchers of its tenant.
        let mut by_tenant: BTreeMap<TenantId, Vec<Voucher>> = BTreeMap::new();
        for v in removals {
            by_tenant.entry(v.tenant_id).or_default().push(v);
        }
        let mut routers = Vec::new();
        let mut wanted: HashMap<VoucherId, (Voucher, usize)> = HashMap::new();
        for (tenant, vs) in by_tenant {
            let enabled: Vec<Router> = match ctx.routers_of(tenant).await {
                Ok(rs) => rs.into_iter().filter(|r| r.enabled).collect(),
                Err(e) => {
                    for v in &vs {
                        self.voucher_failed(&mut ctx.tally, v, None, None, &e, now);
                        self.voucher_retry(&mut ctx.tally, v, now, ctx.dry_run).await;
                    }
                    continue;
                }
            };
            if enabled.is_empty() {
                let e = Error::unavailable(format!("tenant {tenant}"), "no enabled router");
                ctx.tally.add("router_disabled", vs.len() as u64);
                for v in &vs {
                    self.voucher_failed(&mut ctx.tally, v, None, None, &e, now);
                    self.voucher_retry(&mut ctx.tally, v, now, ctx.dry_run).await;
                }
                continue;
            }
            for r in enabled.iter() {
                let label = ctx.label(r).await;
                routers.push((r.clone(), label, vs.clone()));
            }
            for v in vs {
                wanted.insert(v.id, (v, enabled.len()));
            }
        }
        if ctx.dry_run {
            for (_, label, vs) in &routers {
                ctx.tally.add("users_removed", vs.len() as u64);
                ctx.tally.add_router(label, "users_removed", vs.len() as u64);
            }
            return;
        }

        let renewal = self.group_renewal(Leased::Vouchers);
        let renewal = &renewal;
        let tasks = routers.into_iter().map(|(router, label, vs)| {
            let span = router_span(&label);
            async move {
                let mut t = Tally::default();
                let mut confirmed = Vec::new();
                // One disconnect for the router's vouchers: each voucher's
                // user (only if tagged for it), its sessions and cookies, and
                // the bindings tagged for it, in one batch; made (holding the
                // router's permit) only for the vouchers whose lease it
                // renewed first. The others may be another daemon's now.
                let mut lost = Vec::new();
                let answer = self
                    .limits
                    .run(router.id, async {
                        let ids: Vec<i64> = vs.iter().map(|v| v.id.raw()).collect();
                        let held = renewal.renew(&ids).await?;
                        let (kept, gone): (Vec<_>, Vec<_>) = vs.iter().zip(held).partition(|(_, h)| *h);
                        lost = gone.into_iter().map(|(v, _)| v.id).collect();
                        let kept: Vec<&Voucher> = kept.into_iter().map(|(v, _)| v).collect();
                        let targets: Vec<HotspotTarget> = kept
                            .iter()
                            .map(|v| HotspotTarget {
                                username: Some(v.code.clone()),
                                macs: Vec::new(),
                                owner: OwnerTag::Voucher(v.id),
                                remove_user: true,
                            })
                            .collect();
                        if targets.is_empty() {
                            return Ok((kept, Vec::new()));
                        }
                        let rs = self.deps.driver.disconnect_hotspot(&router, &targets).await?;
                        Ok((kept, rs))
                    })
                    .await;
                let (vs, answer): (Vec<&Voucher>, Result<Vec<Result<DisconnectReport>>>) = match answer {
                    Ok((kept, rs)) => (kept, Ok(rs)),
                    Err(e) => (vs.iter().filter(|v| !lost.contains(&v.id)).collect(), Err(e)),
                };
                let results: Vec<Result<DisconnectReport>> = match answer {
                    Ok(rs) if rs.len() == vs.len() => rs,
                    Ok(rs) => {
                        let e = Error::Protocol {
                            service: format!("router {label}"),
                            detail: format!("{} results for {} vouchers", rs.len(), vs.len()),
                        };
                        vs.iter().map(|_| Err(duplicate(&e))).collect()
                    }
                    Err(e) => vs.iter().map(|_| Err(duplicate(&e))).collect(),
                };
                for (v, r) in vs.iter().zip(results) {
                    let subject = format!("voucher:{}", v.code);
                    match r {
                        Ok(report) => {
                            // A same-name user that is not the voucher's is
                            // not ours to remove: the voucher's part is done.
                            let key = if report.user_removed {
                                "users_removed"
                            } else {
                                "users_already_gone"
                            };
                            t.add(key, 1);
                            t.add_router(&label, key, 1);
                            t.add("sessions_removed", u64::from(report.sessions_removed));
                            t.add("bindings_removed", u64::from(report.bindings_removed));
                            record_foreign(
                                &mut t,
                                &report.foreign,
                                &label,
                                now,
                                v.tenant_id,
                                &subject,
                                router.id,
                            );
                            t.event(
                                now,
                                Some(v.tenant_id),
                                "voucher_remove_user",
                                subject,
                                Some(router.id),
                                AuditOutcome::Success,
                                None,
                            );
                            confirmed.push(v.id);
                        }
                        Err(e) => {
                            t.add_router(&label, "failures", 1);
                            self.voucher_failed(&mut t, v, Some(&label), Some(router.id), &e, now);
                        }
                    }
                }
                (t, confirmed, lost)
            }
            .instrument(span)
        });
        let mut confirmations: HashMap<VoucherId, usize> = HashMap::new();
        let mut lost: HashSet<VoucherId> = HashSet::new();
        for (t, confirmed, gone) in join_all(tasks).await {
            ctx.tally.merge(t);
            for id in confirmed {
                *confirmations.entry(id).or_default() += 1;
            }
            lost.extend(gone);
        }
        // Removed only once every enabled router of the tenant confirmed; a
        // later try runs all of them again (removal is idempotent).
        for (id, (v, routers)) in wanted {
            if lost.contains(&id) {
                // Its lease ran out before a router call: left to the daemon
                // that holds it now.
                ctx.tally.add("vouchers_superseded", 1);
                tracing::debug!(voucher = %v.code, "voucher removal left to another daemon (lease lost before a router call)");
                continue;
            }
            if confirmations.get(&id).copied().unwrap_or(0) < routers {
                self.voucher_retry(&mut ctx.tally, &v, now, false).await;
                continue;
            }
            if let Err(e) = self
                .deps
                .repos
                .vouchers
                .mark_removed(v.id, &self.config.holder)
                .await
            {
                ctx.tally.fail(format!("voucher:{}", v.code), None, &e);
            }
        }
    }

    /// Records a voucher's removal failing on one router (or before any).
    fn voucher_failed(
        &self,
        t: &mut Tally,
        v: &Voucher,
        label: Option<&str>,
        router: Option<RouterId>,
        e: &Error,
        now: DateTime<Utc>,
    ) {
        let subject = format!("voucher:{}", v.code);
        t.fail(subject.clone(), label, e);
        t.event(
            now,
            Some(v.tenant_id),
            "voucher_remove_user",
            subject,
            router.or(Some(v.router_id)),
            AuditOutcome::Retry,
            Some(e.to_string()),
        );
    }

    /// Backs a voucher's removal off: the job tries every router again later.
    async fn voucher_retry(&self, t: &mut Tally, v: &Voucher, now: DateTime<Utc>, dry_run: bool) {
        t.add("removals_pending", 1);
        if !dry_run {
            let until = retry_at(self, now, v.attempts);
            if let Err(e) = self
                .deps
                .repos
                .leases
                .retry_later(v.id, &self.config.holder, until)
                .await
            {
                t.fail(format!("voucher:{}", v.code), None, &e);
            }
        }
    }
}
