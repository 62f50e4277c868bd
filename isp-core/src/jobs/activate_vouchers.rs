//! A voucher's usage time starts at its first login (seed 003): detected
//! from the routers, not from a portal. The `activate-vouchers` job polls the
//! active sessions of every enabled router of each tenant that has unused
//! vouchers (one `print` each); where the transport can stream, the runtime
//! also listens to new sessions and records an activation within a second
//! ([`Engine::record_hotspot_login`]). The first session on any router of
//! the tenant activates the voucher.
//!
//! # One voucher, two routers
//! A voucher's user is on every router of its tenant, so a code passed on
//! can be used at two places at once. Sessions of one voucher on two routers
//! at the same time (seen in one poll of a tenant with active or unused
//! vouchers, or a new session streamed from one router while another shows
//! one) are reported: a `voucher_shared` audit event (subject
//! `voucher:<code>`, naming the routers), the `vouchers_shared` count of the
//! poll and a warning in the log.
//!
//! The engine also ends the later session (the one that started last), so
//! the voucher serves one place at a time, as one paid for: only when the
//! user of that router is ours, tagged for the voucher; other objects are
//! never touched. A customer who moved between routers logs in again once
//! the old session has timed out.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use futures::future::join_all;

use crate::domain::*;
use crate::error::Result;
use crate::jobs::common::RunCtx;
use crate::jobs::Engine;
use crate::ports::{HotspotSession, Menu};

/// A streamed session up to this old is a new login (a stream also reports
/// changes of older sessions, which are not checked again).
const NEW_LOGIN_UPTIME_SECS: u64 = 60;

/// What was done about a voucher in use on two routers at once.
struct Shared {
    event: AuditEvent,
    ended: bool,
}

impl Engine {
    /// Records a hotspot session seen on `router`: if its user is an unused
    /// voucher of the router's tenant, the voucher becomes active from the
    /// session's start (now minus its uptime), so its usage deadline counts
    /// from the first login. A new session of an active voucher is checked
    /// against the tenant's other routers: in use on two at once is
    /// reported, and the later session ended (see the module doc). Returns
    /// the voucher it activated, if any.
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
        match v.status {
            VoucherStatus::Unused => {
                if let Some(active) = self.activate_at_login(router, &v, session).await? {
                    return Ok(Some(active));
                }
                // Activated meanwhile, by a session here or elsewhere.
            }
            VoucherStatus::Active => {}
            VoucherStatus::Expired | VoucherStatus::Revoked => return Ok(None),
        }
        let new_login = session
            .uptime
            .is_none_or(|u| u.as_secs() <= NEW_LOGIN_UPTIME_SECS);
        if new_login {
            if let Some(shared) = self.shared_elsewhere(router, &v, session).await? {
                if let Err(e) = repos.audit.append(&[shared.event]).await {
                    tracing::warn!(error = %e, "voucher audit write failed");
                }
            }
        }
        Ok(None)
    }

    /// Activates an unused voucher from a session's start; `None` when
    /// another daemon (or the poll) got there first.
    async fn activate_at_login(
        &self,
        router: &Router,
        v: &Voucher,
        session: &HotspotSession,
    ) -> Result<Option<Voucher>> {
        let repos = &self.deps.repos;
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
            Err(e) if e.is_conflict() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Looks for a session of `v` on the tenant's other enabled routers
    /// (one `print` each) while `session` is new on `router`.
    async fn shared_elsewhere(
        &self,
        router: &Router,
        v: &Voucher,
        session: &HotspotSession,
    ) -> Result<Option<Shared>> {
        let others: Vec<Router> = self
            .deps
            .directory
            .routers_of(router.tenant_id)
            .await?
            .into_iter()
            .filter(|r| r.enabled && r.id != router.id)
            .collect();
        let snapshots = join_all(others.iter().map(|r| {
            self.limits
                .run(r.id, self.deps.driver.snapshot(r, &[Menu::HotspotActive]))
        }))
        .await;
        let mut seen = vec![(router.clone(), session.clone())];
        for (r, snapshot) in others.iter().zip(snapshots) {
            match snapshot {
                Ok(s) => seen.extend(
                    s.hotspot_active
                        .into_iter()
                        .filter(|s| s.user.as_deref() == Some(v.code.as_str()))
                        .map(|s| (r.clone(), s)),
                ),
                Err(e) => {
                    tracing::debug!(router = %r.name, error = %e, "cannot read sessions; the poll checks this router");
                }
            }
        }
        let now = self.deps.clock.now();
        Ok(self.voucher_shared(v, seen, now, false).await)
    }

    /// Sessions of one voucher on two or more routers at once: reports it
    /// and (unless `dry_run`) ends the sessions on every router but the one
    /// whose session started first. `None` when all are on one router.
    async fn voucher_shared(
        &self,
        v: &Voucher,
        sessions: Vec<(Router, HotspotSession)>,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Option<Shared> {
        let first = sessions
            .iter()
            .map(|(r, s)| (started_at(now, s), r.id))
            .min()
            .map(|(_, id)| id)?;
        let mut names: Vec<String> = sessions.iter().map(|(r, _)| r.name.clone()).collect();
        let later: Vec<(Router, HotspotSession)> =
            sessions.into_iter().filter(|(r, _)| r.id != first).collect();
        let last_router = later
            .iter()
            .map(|(r, s)| (started_at(now, s), r.id))
            .max()
            .map(|(_, id)| id)?;
        let mut ended = Vec::new();
        let mut kept = Vec::new();
        for (r, s) in later {
            if dry_run {
                continue;
            }
            match self.end_voucher_session(&r, v, &s).await {
                Ok(true) => ended.push(r.name),
                Ok(false) => kept.push(format!("{} (its user is not the voucher's)", r.name)),
                Err(e) => kept.push(format!("{} ({e})", r.name)),
            }
        }
        names.sort_unstable();
        names.dedup();
        ended.dedup();
        let mut reason = format!("in use on {} at once", names.join(" and "));
        if !ended.is_empty() {
            reason.push_str(&format!("; the later session ended on {}", ended.join(", ")));
        }
        if !kept.is_empty() {
            reason.push_str(&format!("; not ended on {}", kept.join(", ")));
        }
        tracing::warn!(voucher = %v.code, routers = %names.join(","), ended = ended.len(), "voucher used on two routers at once");
        Some(Shared {
            event: AuditEvent {
                at: now,
                tenant_id: Some(v.tenant_id),
                action: "voucher_shared".into(),
                subject: format!("voucher:{}", v.code),
                router_id: Some(last_router),
                outcome: if kept.is_empty() {
                    AuditOutcome::Success
                } else {
                    AuditOutcome::Skipped
                },
                reason: Some(reason),
            },
            ended: !ended.is_empty(),
        })
    }

    /// Ends one session of `v` on `router` if the router's user of that name
    /// is ours, tagged for `v`: `Ok(false)` when it is not.
    async fn end_voucher_session(
        &self,
        router: &Router,
        v: &Voucher,
        session: &HotspotSession,
    ) -> Result<bool> {
        let users = self
            .limits
            .run(
                router.id,
                self.deps.driver.snapshot(router, &[Menu::HotspotUsers]),
            )
            .await?
            .hotspot_users;
        let tag = OwnerTag::Voucher(v.id);
        if !is_ours(&users, v.code.as_str(), tag) {
            return Ok(false);
        }
        self.limits
            .run(
                router.id,
                self.deps
                    .driver
                    .remove_hotspot_sessions(router, std::slice::from_ref(&session.id)),
            )
            .await?;
        Ok(true)
    }

    pub(crate) async fn activate_vouchers(&self, ctx: &mut RunCtx<'_>) -> Result<()> {
        let mut by_tenant: BTreeMap<TenantId, Vec<Router>> = BTreeMap::new();
        for router in self.deps.directory.all_routers().await? {
            by_tenant.entry(router.tenant_id).or_default().push(router);
        }
        for routers in by_tenant.into_values() {
            // Stored per home router (disabled ones too): the tenant's are those of all.
            let mut live = Vec::new();
            for r in &routers {
                live.extend(
                    self.deps
                        .repos
                        .vouchers
                        .on_router(r.id, &[VoucherStatus::Unused, VoucherStatus::Active])
                        .await?,
                );
            }
            let enabled: Vec<Router> = routers.into_iter().filter(|r| r.enabled).collect();
            let any_unused = live.iter().any(|v| v.status == VoucherStatus::Unused);
            let any_active = live.iter().any(|v| v.status == VoucherStatus::Active);
            if !(any_unused || (any_active && enabled.len() > 1)) {
                continue;
            }
            self.poll_tenant(ctx, &enabled, &live).await;
        }
        Ok(())
    }

    /// One poll of a tenant's routers: activations, then vouchers in use on
    /// two routers at once.
    async fn poll_tenant(&self, ctx: &mut RunCtx<'_>, routers: &[Router], live: &[Voucher]) {
        let snapshots = join_all(routers.iter().map(|r| {
            self.limits
                .run(r.id, self.deps.driver.snapshot(r, &[Menu::HotspotActive]))
        }))
        .await;
        let by_code: HashMap<&str, &Voucher> = live.iter().map(|v| (v.code.as_str(), v)).collect();
        let mut seen: BTreeMap<String, Vec<(Router, HotspotSession)>> = BTreeMap::new();
        for (router, snapshot) in routers.iter().zip(snapshots) {
            let label = ctx.label(router).await;
            let sessions = match snapshot {
                Ok(s) => s.hotspot_active,
                Err(e) => {
                    ctx.tally.fail(format!("router:{}", router.id), Some(&label), &e);
                    continue;
                }
            };
            ctx.tally.add("routers_polled", 1);
            for s in sessions {
                let Some(v) = s.user.as_deref().and_then(|u| by_code.get(u)) else {
                    continue;
                };
                if v.status == VoucherStatus::Unused {
                    if ctx.dry_run {
                        ctx.tally.add("vouchers_activated", 1);
                    } else {
                        match self.activate_at_login(router, v, &s).await {
                            Ok(Some(_)) => {
                                ctx.tally.add("vouchers_activated", 1);
                                ctx.tally.add_router(&label, "vouchers_activated", 1);
                            }
                            Ok(None) => {}
                            Err(e) => ctx.tally.fail(format!("voucher:{}", v.code), Some(&label), &e),
                        }
                    }
                }
                seen.entry(v.code.to_string())
                    .or_default()
                    .push((router.clone(), s));
            }
        }
        let now = ctx.now();
        for (code, sessions) in seen {
            let Some(v) = by_code.get(code.as_str()) else {
                continue;
            };
            if let Some(shared) = self.voucher_shared(v, sessions, now, ctx.dry_run).await {
                ctx.tally.add("vouchers_shared", 1);
                if shared.ended {
                    ctx.tally.add("shared_sessions_ended", 1);
                }
                let e = shared.event;
                ctx.tally.event(
                    e.at,
                    e.tenant_id,
                    &e.action,
                    e.subject,
                    e.router_id,
                    e.outcome,
                    e.reason,
                );
            }
        }
    }
}

/// Whether the users named `name` are all ours, tagged `tag` (and there is one).
fn is_ours(users: &[crate::ports::HotspotUser], name: &str, tag: OwnerTag) -> bool {
    let mut same = users.iter().filter(|u| u.name == name).peekable();
    same.peek().is_some() && same.all(|u| u.comment.as_deref().and_then(OwnerTag::from_comment) == Some(tag))
}

/// When a session started: now minus its uptime (now when unknown).
fn started_at(now: DateTime<Utc>, session: &HotspotSession) -> DateTime<Utc> {
    session
        .uptime
        .and_then(|u| chrono::Duration::from_std(u.as_std()).ok())
        .and_then(|u| now.checked_sub_signed(u))
        .unwrap_or(now)
}
