//! Expire vouchers by their deadlines and remove their router users, sessions
//! and the ip-bindings tagged for them.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use tracing::Instrument;

use crate::domain::{AuditOutcome, OwnerTag, RouterId, Voucher};
use crate::error::{Error, Result};
use crate::jobs::common::{duplicate, fresh, retry_at, router_span, RunCtx, Tally, DRY_RUN_LIMIT};
use crate::jobs::disconnect::record_foreign;
use crate::jobs::Engine;
use crate::policy::voucher::{voucher_time_expiry, VoucherAction};
use crate::ports::LeaseRepoExt as _;
use crate::ports::{DisconnectReport, HotspotTarget};

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
        let mut removals: BTreeMap<RouterId, Vec<Voucher>> = BTreeMap::new();
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
                            removals.entry(v.router_id).or_default().push(v);
                        }
                        Ok(false) => ctx.tally.add("vouchers_superseded", 1),
                        Err(e) => ctx.tally.fail(subject, None, &e),
                    }
                }
                VoucherAction::RemoveFromRouter => removals.entry(v.router_id).or_default().push(v),
                VoucherAction::Keep => ctx.tally.add("skipped_not_due", 1),
            }
        }

        let mut routers = Vec::new();
        for (rid, vs) in removals {
            match ctx.router(rid).await {
                Ok(r) => {
                    let label = ctx.label(&r).await;
                    routers.push((r, label, vs));
                }
                Err(e) => {
                    for v in vs {
                        self.voucher_retry(&mut ctx.tally, &v, None, &e, now, ctx.dry_run)
                            .await;
                    }
                }
            }
        }
        if ctx.dry_run {
            for (r, label, vs) in &routers {
                if r.enabled {
                    ctx.tally.add("users_removed", vs.len() as u64);
                    ctx.tally.add_router(label, "users_removed", vs.len() as u64);
                }
            }
            return;
        }

        let tasks = routers.into_iter().map(|(router, label, vs)| {
            let span = router_span(&label);
            async move {
                let mut t = Tally::default();
                if !router.enabled {
                    let e = Error::unavailable(format!("router {label}"), "router is disabled");
                    t.add("router_disabled", vs.len() as u64);
                    for v in &vs {
                        self.voucher_retry(&mut t, v, Some(&label), &e, now, false).await;
                    }
                    return t;
                }
                // One disconnect for the router's vouchers: each voucher's
                // user (only if tagged for it), its sessions and cookies, and
                // the bindings tagged for it, in one batch.
                let targets: Vec<HotspotTarget> = vs
                    .iter()
                    .map(|v| HotspotTarget {
                        username: Some(v.code.clone()),
                        macs: Vec::new(),
                        owner: OwnerTag::Voucher(v.id),
                        remove_user: true,
                    })
                    .collect();
                let answer = self
                    .limits
                    .run(router.id, self.deps.driver.disconnect_hotspot(&router, &targets))
                    .await;
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
                            match self
                                .deps
                                .repos
                                .vouchers
                                .mark_removed(v.id, &self.config.holder)
                                .await
                            {
                                Ok(_) => t.event(
                                    now,
                                    Some(v.tenant_id),
                                    "voucher_remove_user",
                                    subject,
                                    Some(router.id),
                                    AuditOutcome::Success,
                                    None,
                                ),
                                Err(e) => t.fail(subject, Some(&label), &e),
                            }
                        }
                        Err(e) => {
                            t.add_router(&label, "failures", 1);
                            self.voucher_retry(&mut t, v, Some(&label), &e, now, false).await;
                        }
                    }
                }
                t
            }
            .instrument(span)
        });
        for t in join_all(tasks).await {
            ctx.tally.merge(t);
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn voucher_retry(
        &self,
        t: &mut Tally,
        v: &Voucher,
        label: Option<&str>,
        e: &Error,
        now: DateTime<Utc>,
        dry_run: bool,
    ) {
        let subject = format!("voucher:{}", v.code);
        t.add("removals_pending", 1);
        t.fail(subject.clone(), label, e);
        t.event(
            now,
            Some(v.tenant_id),
            "voucher_remove_user",
            subject.clone(),
            Some(v.router_id),
            AuditOutcome::Retry,
            Some(e.to_string()),
        );
        if !dry_run {
            let until = retry_at(self, now, v.attempts);
            if let Err(e) = self
                .deps
                .repos
                .leases
                .retry_later(v.id, &self.config.holder, until)
                .await
            {
                t.fail(subject, label, &e);
            }
        }
    }
}
