//! A voucher's usage time starts at its first login (seed 003): detected
//! from the routers, not from a portal. The `activate-vouchers` job polls the
//! active sessions of each router that has unused vouchers (one `print`
//! each); where the transport can stream, the runtime also listens to new
//! sessions and records an activation within a second
//! ([`Engine::record_hotspot_login`]).

use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::error::Result;
use crate::jobs::common::RunCtx;
use crate::jobs::Engine;
use crate::ports::{HotspotSession, Menu};

impl Engine {
    /// Records a hotspot session seen on `router`: if its user is an unused
    /// voucher of the router's tenant, the voucher becomes active from the
    /// session's start (now minus its uptime), so its usage deadline counts
    /// from the first login. Returns the voucher it activated, if any.
    pub async fn record_hotspot_login(
        &self,
        router: &Router,
        session: &HotspotSession,
    ) -> Result<Option<Voucher>> {
        let Some(user) = session.user.as_deref() else {
            return Ok(None);
        };
        let Ok(code) = RosName::parse("user", user) else {
            return Ok(None);
        };
        let repos = &self.deps.repos;
        let Some(v) = repos.vouchers.find_by_code(router.tenant_id, &code).await? else {
            return Ok(None);
        };
        if v.status != VoucherStatus::Unused {
            return Ok(None);
        }
        let now = self.deps.clock.now();
        let started = started_at(now, session);
        match repos.vouchers.activate(v.id, started).await {
            Ok(active) => {
                tracing::info!(voucher = %active.code, router = %router.name, started_at = %started, "voucher activated at its first login");
                let event = AuditEvent {
                    at: now,
                    tenant_id: Some(router.tenant_id),
                    action: "voucher_activate".into(),
                    subject: format!("voucher:{}", active.code),
                    router_id: Some(router.id),
                    outcome: AuditOutcome::Success,
                    reason: active
                        .expected_end
                        .map(|e| format!("first login; usage ends {}", e.to_rfc3339())),
                };
                if let Err(e) = repos.audit.append(&[event]).await {
                    tracing::warn!(error = %e, "voucher audit write failed");
                }
                Ok(Some(active))
            }
            // Another daemon (or the poll) got there first.
            Err(e) if e.is_conflict() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn activate_vouchers(&self, ctx: &mut RunCtx<'_>) -> Result<()> {
        let routers = self.deps.directory.all_routers().await?;
        for router in routers.into_iter().filter(|r| r.enabled) {
            let unused = self
                .deps
                .repos
                .vouchers
                .on_router(router.id, &[VoucherStatus::Unused])
                .await?;
            if unused.is_empty() {
                continue;
            }
            let label = ctx.label(&router).await;
            let snapshot = self
                .limits
                .run(
                    router.id,
                    self.deps.driver.snapshot(&router, &[Menu::HotspotActive]),
                )
                .await;
            let sessions = match snapshot {
                Ok(s) => s.hotspot_active,
                Err(e) => {
                    ctx.tally.fail(format!("router:{}", router.id), Some(&label), &e);
                    continue;
                }
            };
            ctx.tally.add("routers_polled", 1);
            let codes: std::collections::HashSet<&str> = unused.iter().map(|v| v.code.as_str()).collect();
            for s in sessions
                .iter()
                .filter(|s| s.user.as_deref().is_some_and(|u| codes.contains(u)))
            {
                if ctx.dry_run {
                    ctx.tally.add("vouchers_activated", 1);
                    continue;
                }
                match self.record_hotspot_login(&router, s).await {
                    Ok(Some(_)) => {
                        ctx.tally.add("vouchers_activated", 1);
                        ctx.tally.add_router(&label, "vouchers_activated", 1);
                    }
                    Ok(None) => {}
                    Err(e) => ctx.tally.fail(
                        format!("voucher:{}", s.user.as_deref().unwrap_or("")),
                        Some(&label),
                        &e,
                    ),
                }
            }
        }
        Ok(())
    }
}

/// When a session started: now minus its uptime (now when unknown).
fn started_at(now: DateTime<Utc>, session: &HotspotSession) -> DateTime<Utc> {
    session
        .uptime
        .and_then(|u| chrono::Duration::from_std(u.as_std()).ok())
        .and_then(|u| now.checked_sub_signed(u))
        .unwrap_or(now)
}
