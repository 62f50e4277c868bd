//! Router health: probe every enabled router, store its status, alert (an
//! audit event and a count) only when its state changes or its clock drifts.

use chrono::{DateTime, Utc};
use futures::future::join_all;
use tracing::Instrument;

use crate::domain::{AuditOutcome, NewNotice, NoticeKind, Router, RouterStatus};
use crate::error::Result;
use crate::jobs::common::{router_span, RunCtx};
use crate::jobs::Engine;
use crate::ports::{NoticeRepoExt as _, RouterHealth};

/// A router clock further than this from ours is reported.
pub const MAX_CLOCK_SKEW_SECS: i64 = 60;

/// The status a probe result gives, relative to the previous one.
fn next_status(
    router: &Router,
    previous: Option<&RouterStatus>,
    probe: &Result<RouterHealth>,
    now: DateTime<Utc>,
) -> RouterStatus {
    let online = probe.is_ok();
    let changed_at = match previous {
        Some(p) if p.online == online => p.changed_at,
        _ => now,
    };
    let (clock_skew_secs, version, last_error) = match probe {
        Ok(h) => (h.clock.map(|c| (c - now).num_seconds()), h.version.clone(), None),
        Err(e) => (
            None,
            previous.and_then(|p| p.version.clone()),
            Some(e.to_string()),
        ),
    };
    RouterStatus {
        router_id: router.id,
        online,
        checked_at: now,
        changed_at,
        clock_skew_secs,
        version,
        last_error,
    }
}

fn skewed(s: Option<i64>) -> bool {
    s.is_some_and(|x| x.abs() > MAX_CLOCK_SKEW_SECS)
}

impl Engine {
    pub(crate) async fn router_health(&self, ctx: &mut RunCtx<'_>) -> Result<()> {
        let routers: Vec<Router> = self
            .deps
            .directory
            .all_routers()
            .await?
            .into_iter()
            .filter(|r| r.enabled)
            .collect();
        let probes = join_all(routers.iter().map(|r| {
            async move { self.limits.run(r.id, self.deps.driver.health(r)).await }
                .instrument(router_span(&r.name))
        }))
        .await;
        let now = ctx.now();
        let store = &self.deps.repos.router_status;
        for (router, probe) in routers.iter().zip(probes) {
            let label = ctx.label(router).await;
            let subject = format!("router:{}", router.name);
            let previous = match store.get(router.id).await {
                Ok(p) => p,
                Err(e) => {
                    ctx.tally.fail(subject.clone(), Some(&label), &e);
                    None
                }
            };
            let status = next_status(router, previous.as_ref(), &probe, now);
            if status.online {
                ctx.tally.add("routers_online", 1);
                ctx.tally.add_router(&label, "online", 1);
            } else {
                ctx.tally.add("routers_offline", 1);
                ctx.tally.add_router(&label, "offline", 1);
            }
            if let Err(e) = &probe {
                ctx.tally.fail(subject.clone(), Some(&label), e);
            }
            // Alert on a change; a router first seen offline is a change too.
            let changed = match &previous {
                Some(p) => p.online != status.online,
                None => !status.online,
            };
            if changed {
                ctx.tally.add("alerts", 1);
                let (action, outcome) = if status.online {
                    ("router_online", AuditOutcome::Success)
                } else {
                    ("router_offline", AuditOutcome::Failure)
                };
                tracing::warn!(router = %label, online = status.online, "router state changed");
                ctx.tally.event(
                    now,
                    Some(router.tenant_id),
                    action,
                    subject.clone(),
                    Some(router.id),
                    outcome,
                    status.last_error.clone(),
                );
                if !ctx.dry_run {
                    self.reserve_router_alerts(ctx, router, &label, &status).await;
                }
            }
            if skewed(status.clock_skew_secs) {
                ctx.tally.add("clock_skewed", 1);
                if !skewed(previous.as_ref().and_then(|p| p.clock_skew_secs)) {
                    ctx.tally.add("alerts", 1);
                    let skew = status.clock_skew_secs.unwrap_or_default();
                    tracing::warn!(router = %label, skew_secs = skew, "router clock skew");
                    ctx.tally.event(
                        now,
                        Some(router.tenant_id),
                        "router_clock_skew",
                        subject.clone(),
                        Some(router.id),
                        AuditOutcome::Failure,
                        Some(format!("router clock is {skew} s off")),
                    );
                }
            }
            if !ctx.dry_run {
                if let Err(e) = store.put(&status).await {
                    ctx.tally.fail(subject, Some(&label), &e);
                }
            }
        }
        ctx.flush_audit().await;
        Ok(())
    }

    /// Reserves an SMS to each of the tenant's alert phones about a router's
    /// change of state; the notice key (phone, kind, change time) makes a
    /// second reservation of the same change a no-op.
    async fn reserve_router_alerts(
        &self,
        ctx: &mut RunCtx<'_>,
        router: &Router,
        label: &str,
        status: &RouterStatus,
    ) {
        let Some(phones) = self.config.alert_phones.get(&router.tenant_id) else {
            return;
        };
        let body = if status.online {
            format!("Router {label} is back online.")
        } else {
            format!(
                "Router {label} is OFFLINE since {} UTC: {}",
                status.changed_at.format("%Y-%m-%d %H:%M"),
                status.last_error.as_deref().unwrap_or("no answer")
            )
        };
        for phone in phones {
            let notice = NewNotice {
                tenant_id: router.tenant_id,
                recipient: phone.clone(),
                kind: NoticeKind::RouterStateChanged,
                deadline: status.changed_at,
                subject: String::new(),
                body: body.clone(),
                created_at: ctx.now(),
            };
            match self.deps.repos.notices.reserve(&notice).await {
                Ok(_) => {
                    ctx.tally.add("alerts_queued", 1);
                    tracing::info!(router = %label, to = %phone, online = status.online, "router alert queued");
                }
                Err(e) if e.is_conflict() => {}
                Err(e) => ctx.tally.fail(format!("router:{}", router.name), Some(label), &e),
            }
        }
    }
}
