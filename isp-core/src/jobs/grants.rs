//! Access the moment it is paid for: create subscribers, grant paid time
//! (with an idempotent payment), revoke it, and the `apply-grants` job that
//! finishes the router work a grant could not do at once.
//!
//! A grant is written before any router is touched: the new `paid_until`, the
//! payment and one pending grant per enabled router of the tenant, in one
//! storage write, leased to this engine. The call then enables the
//! subscriber's hotspot user on every router at once and completes the pending
//! grants that worked; the others stay pending with a back-off and the
//! `apply-grants` job (woken by the watcher like any deadline) retries them. A
//! crash anywhere leaves pending grants whose lease runs out, so no grant is
//! lost; the router work is idempotent, so none is done twice in effect.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use serde::Serialize;
use tracing::Instrument;

use crate::domain::*;
use crate::error::{Error, Result};
use crate::jobs::common::{fresh, retry_at, router_span, RunCtx, Tally};
use crate::jobs::disconnect::record_foreign;
use crate::jobs::{Engine, JobKind, JobReport, RunOptions};
use crate::ports::{ForeignObject, HotspotUserSpec, SubscriberRepoExt as _};

/// Where a subscriber's access stands on one router after a grant or revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouterAccess {
    /// Our hotspot user exists and is enabled there.
    Enabled,
    /// Not done yet (router down, or a same-name user that is not ours):
    /// a pending grant retries it.
    Pending,
    /// Access is removed there (revoke).
    Removed,
    /// The router is disabled in the configuration: nothing was sent.
    Skipped,
}

/// One router's answer to a grant or revoke.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouterResult {
    /// The router.
    pub router_id: RouterId,
    /// Its name.
    pub router: String,
    /// What holds there now.
    pub state: RouterAccess,
    /// Why it is not done, if it is not.
    pub error: Option<String>,
}

/// What [`Engine::grant`] or [`Engine::revoke`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantOutcome {
    /// The subscriber as it is now.
    pub subscriber: Subscriber,
    /// The payment's reference was already recorded: nothing was extended.
    pub duplicate_payment: bool,
    /// Per router of the tenant.
    pub routers: Vec<RouterResult>,
}

/// How many times a grant write is recomputed when another writer changed
/// `paid_until` in between.
const WRITE_ATTEMPTS: usize = 8;

impl Engine {
    /// Adds a hotspot subscriber with no paid time yet.
    ///
    /// The hotspot user name is `username`, or the phone's digits. Usernames
    /// are unique per tenant across subscribers and vouchers: a taken one (or
    /// a second subscriber with the same phone) is `Conflict` naming the field
    /// and the value. Nothing is created on the routers until a
    /// [`grant`](Engine::grant).
    ///
    /// ```
    /// # use isp_core::domain::*;
    /// # async fn demo(engine: isp_core::jobs::Engine) -> isp_core::Result<()> {
    /// let phone = PhoneNumber::parse("phone", "+255712000001")?;
    /// let sub = engine.create_subscriber(TenantId(1), phone, None).await?;
    /// assert_eq!(sub.username.as_str(), "255712000001");
    /// # Ok(()) }
    /// ```
    pub async fn create_subscriber(
        &self,
        tenant: TenantId,
        phone: PhoneNumber,
        username: Option<RosName>,
    ) -> Result<Subscriber> {
        let repos = &self.deps.repos;
        repos.tenants.get(tenant).await?;
        let username = match username {
            Some(u) => u,
            None => RosName::parse("username", phone.digits())?,
        };
        let now = self.deps.clock.now();
        let sub = repos
            .subscribers
            .insert(&NewSubscriber {
                tenant_id: tenant,
                phone,
                username,
                paid_until: now,
            })
            .await?;
        // Never paid, so nothing to take away: recorded as disconnected at
        // once instead of leaving the expiry job a user that no router has.
        repos
            .subscribers
            .complete_expiry(sub.id, &self.config.holder, now, now)
            .await?;
        repos.subscribers.get(sub.id).await
    }

    /// Gives a subscriber paid time and access on every router of its tenant.
    ///
    /// `extension` adds a plan's duration or seconds to the later of now and
    /// the current end, or sets the end to an instant (never earlier, unless
    /// it is [`Extension::Shorten`]). With a `payment`, its reference is the
    /// idempotency key: the same reference twice extends once, and the second
    /// call answers `duplicate_payment`.
    ///
    /// When it returns, our hotspot user (created with our owner tag if
    /// missing) is enabled and our block bindings of the subscriber's devices
    /// are gone on every enabled router that answered; the others are
    /// `Pending` and retried by the `apply-grants` job until they are done or
    /// the paid time is over.
    ///
    /// ```
    /// # use isp_core::domain::*;
    /// # async fn demo(engine: isp_core::jobs::Engine, sub: SubscriberId, plan: PlanId) -> isp_core::Result<()> {
    /// let currency = Currency::parse("currency", "TZS")?;
    /// let payment = NewPayment {
    ///     reference: PaymentReference::parse("reference", "MP123")?,
    ///     amount: Money::parse("amount", "1000", currency)?,
    /// };
    /// let outcome = engine.grant(sub, Extension::Plan(plan), Some(payment)).await?;
    /// for r in &outcome.routers {
    ///     println!("{}: {:?}", r.router, r.state);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn grant(
        &self,
        subscriber: SubscriberId,
        extension: Extension,
        payment: Option<NewPayment>,
    ) -> Result<GrantOutcome> {
        let span = tracing::info_span!("grant", subscriber = %subscriber);
        self.grant_in_span(subscriber, extension, payment)
            .instrument(span)
            .await
    }

    async fn grant_in_span(
        &self,
        subscriber: SubscriberId,
        extension: Extension,
        payment: Option<NewPayment>,
    ) -> Result<GrantOutcome> {
        let repos = &self.deps.repos;
        let mut ctx = RunCtx::new(self, JobKind::ApplyGrants, false);
        let mut sub = repos.subscribers.get(subscriber).await?;
        let plan = match extension {
            Extension::Plan(id) => {
                let plan = ctx.plan(id).await?;
                if plan.tenant_id != sub.tenant_id {
                    return Err(Error::not_found("plan", id));
                }
                Some(plan)
            }
            _ => None,
        };
        let routers = ctx.routers_of(sub.tenant_id).await?;
        let enabled: Vec<RouterId> = routers.iter().filter(|r| r.enabled).map(|r| r.id).collect();
        let mut written = None;
        for _ in 0..WRITE_ATTEMPTS {
            let now = ctx.now();
            let paid_until = new_paid_until(&sub, extension, plan.as_ref(), now)?;
            let entitled = paid_until > now;
            let claim = ctx.claim_at(now);
            let write = GrantWrite {
                subscriber_id: sub.id,
                paid_until_seen: sub.paid_until,
                paid_until,
                payment: payment.clone(),
                routers: if entitled { enabled.clone() } else { Vec::new() },
                holder: claim.holder,
                lease_until: claim.until,
                at: now,
            };
            match repos.grants.write(&write).await? {
                GrantWritten::Stale => sub = repos.subscribers.get(subscriber).await?,
                done => {
                    written = Some((done, now));
                    break;
                }
            }
        }
        let Some((written, now)) = written else {
            return Err(Error::conflict(
                "subscriber",
                format!("paid_until of {subscriber} kept changing under {WRITE_ATTEMPTS} grant attempts; try again"),
            ));
        };
        let subject = format!("subscriber:{subscriber}");
        let sub = match written {
            GrantWritten::Applied(s) => s,
            GrantWritten::DuplicatePayment(p) => {
                let sub = repos.subscribers.get(subscriber).await?;
                let pending = repos.grants.pending_of(subscriber).await?;
                ctx.tally.event(
                    now,
                    Some(sub.tenant_id),
                    "grant_duplicate_payment",
                    subject,
                    None,
                    AuditOutcome::Skipped,
                    Some(format!("payment {} already recorded", p.reference)),
                );
                ctx.flush_audit().await;
                let routers = routers
                    .iter()
                    .map(|r| {
                        let waiting = pending.iter().find(|g| g.router_id == r.id);
                        RouterResult {
                            router_id: r.id,
                            router: r.name.clone(),
                            state: if !r.enabled {
                                RouterAccess::Skipped
                            } else if waiting.is_some() {
                                RouterAccess::Pending
                            } else if sub.paid_until > now {
                                RouterAccess::Enabled
                            } else {
                                RouterAccess::Removed
                            },
                            error: waiting.and_then(|g| g.last_error.clone()),
                        }
                    })
                    .collect();
                return Ok(GrantOutcome {
                    subscriber: sub,
                    duplicate_payment: true,
                    routers,
                });
            }
            GrantWritten::Stale => unreachable!("a stale write is retried above"),
        };
        ctx.tally.event(
            now,
            Some(sub.tenant_id),
            "grant",
            subject,
            None,
            AuditOutcome::Success,
            Some(format!(
                "paid until {}{}",
                sub.paid_until.to_rfc3339(),
                payment
                    .as_ref()
                    .map(|p| format!(", payment {} {}", p.reference, p.amount))
                    .unwrap_or_default()
            )),
        );
        if sub.paid_until <= now {
            // Shortened into the past: the expiry path takes access away.
            ctx.flush_audit().await;
            return self.revoke_now(sub).await;
        }
        let work: Vec<(Router, PendingGrant)> = routers
            .iter()
            .filter(|r| r.enabled)
            .map(|r| {
                let g = PendingGrant {
                    subscriber_id: sub.id,
                    router_id: r.id,
                    created_at: now,
                    attempts: 0,
                    last_error: None,
                    lease: None,
                };
                (r.clone(), g)
            })
            .collect();
        let results = self.grant_on_routers(&mut ctx, &sub, work).await;
        ctx.flush_audit().await;
        let routers = routers
            .iter()
            .map(|r| match results.get(&r.id) {
                Some(Ok(())) => RouterResult {
                    router_id: r.id,
                    router: r.name.clone(),
                    state: RouterAccess::Enabled,
                    error: None,
                },
                Some(Err(e)) => RouterResult {
                    router_id: r.id,
                    router: r.name.clone(),
                    state: RouterAccess::Pending,
                    error: Some(e.clone()),
                },
                None => RouterResult {
                    router_id: r.id,
                    router: r.name.clone(),
                    state: RouterAccess::Skipped,
                    error: None,
                },
            })
            .collect();
        Ok(GrantOutcome {
            subscriber: sub,
            duplicate_payment: false,
            routers,
        })
    }

    /// Ends a subscriber's access now (a refund, abuse): `paid_until` becomes
    /// now, pending grants are dropped, and the expiry path removes sessions,
    /// our bindings and disables our user on every router of the tenant before
    /// this returns (routers that fail are retried by `disconnect-expired`).
    pub async fn revoke(&self, subscriber: SubscriberId) -> Result<GrantOutcome> {
        let now = self.deps.clock.now();
        let outcome = self.grant(subscriber, Extension::Shorten(now), None).await?;
        Ok(outcome)
    }

    async fn revoke_now(&self, sub: Subscriber) -> Result<GrantOutcome> {
        let repos = &self.deps.repos;
        repos.grants.cancel_of(sub.id).await?;
        let report = self
            .run(JobKind::DisconnectExpired, RunOptions::default())
            .await?;
        let after = repos.subscribers.get(sub.id).await?;
        let routers = self.deps.directory.routers_of(sub.tenant_id).await?;
        let subject = format!("subscriber:{}", sub.id);
        let results = routers
            .iter()
            .map(|r| {
                let failure = failure_on(&report, &subject, &r.name);
                RouterResult {
                    router_id: r.id,
                    router: r.name.clone(),
                    state: if !r.enabled {
                        RouterAccess::Skipped
                    } else if failure.is_none() && !after.active {
                        RouterAccess::Removed
                    } else {
                        RouterAccess::Pending
                    },
                    error: failure.or_else(|| {
                        after
                            .active
                            .then(|| "not yet confirmed; disconnect-expired retries it".to_owned())
                    }),
                }
            })
            .collect();
        Ok(GrantOutcome {
            subscriber: after,
            duplicate_payment: false,
            routers: results,
        })
    }

    /// The `apply-grants` job: claims pending grants whose lease ran out (a
    /// router that was down, a daemon that died mid-grant) and does their
    /// router work; a subscriber whose paid time is over meanwhile gets none.
    pub(crate) async fn apply_grants(&self, ctx: &mut RunCtx<'_>) -> Result<()> {
        let repos = &self.deps.repos;
        let mut seen = std::collections::HashSet::new();
        loop {
            let now = ctx.now();
            let batch = if ctx.dry_run {
                let (_, due) = repos.grants.count_pending(now).await?;
                ctx.tally.add("grants_due", due);
                return Ok(());
            } else {
                repos.grants.claim_pending(&ctx.claim_at(now)).await?
            };
            let batch = fresh(&mut seen, batch, |g| (g.subscriber_id, g.router_id));
            if batch.is_empty() {
                break;
            }
            let mut by_sub: BTreeMap<SubscriberId, Vec<PendingGrant>> = BTreeMap::new();
            for g in batch {
                by_sub.entry(g.subscriber_id).or_default().push(g);
            }
            for (id, grants) in by_sub {
                let keys: Vec<_> = grants.iter().map(|g| (g.subscriber_id, g.router_id)).collect();
                let sub = match repos.subscribers.get(id).await {
                    Ok(s) => s,
                    Err(e) if e.is_not_found() => {
                        repos.grants.complete(&keys, ctx.holder()).await?;
                        ctx.tally.add("grants_dropped", keys.len() as u64);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if !sub.active || sub.paid_until <= now {
                    repos.grants.complete(&keys, ctx.holder()).await?;
                    ctx.tally.add("grants_dropped", keys.len() as u64);
                    continue;
                }
                let mut work = Vec::new();
                for g in grants {
                    match ctx.router(g.router_id).await {
                        Ok(r) if r.enabled => work.push((r, g)),
                        Ok(_) | Err(_) => {
                            // Gone from the configuration or disabled: the
                            // sync restores it if it comes back.
                            repos
                                .grants
                                .complete(&[(g.subscriber_id, g.router_id)], ctx.holder())
                                .await?;
                            ctx.tally.add("grants_dropped", 1);
                        }
                    }
                }
                self.grant_on_routers(ctx, &sub, work).await;
            }
            ctx.flush_audit().await;
        }
        Ok(())
    }

    /// Enables `sub`'s hotspot user on each router (creating it with our tag
    /// when missing) and removes our block bindings of its devices, then
    /// completes each pending grant that worked and backs off the others.
    /// Per router: done, or why not.
    async fn grant_on_routers(
        &self,
        ctx: &mut RunCtx<'_>,
        sub: &Subscriber,
        work: Vec<(Router, PendingGrant)>,
    ) -> BTreeMap<RouterId, std::result::Result<(), String>> {
        let repos = &self.deps.repos;
        let now = ctx.now();
        let devices = match repos.devices.active_of(&[sub.id]).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "grant: cannot read the subscriber's devices; their blocks stay until the sync");
                Vec::new()
            }
        };
        let mut labelled = Vec::new();
        for (r, g) in work {
            let label = ctx.label(&r).await;
            labelled.push((r, g, label));
        }
        let tag = OwnerTag::Subscriber(sub.id);
        let subject = format!("subscriber:{}", sub.id);
        let tasks = labelled.into_iter().map(|(router, g, label)| {
            let span = router_span(&label);
            let devices = &devices;
            let subject = &subject;
            async move {
                let mut t = Tally::default();
                let done = self
                    .limits
                    .run(router.id, self.enable_on_router(&router, sub, tag, devices))
                    .await;
                let key = (g.subscriber_id, g.router_id);
                let answer = match done {
                    Ok(()) => {
                        t.add("users_enabled", 1);
                        t.add_router(&label, "users_enabled", 1);
                        t.event(
                            now,
                            Some(sub.tenant_id),
                            "grant_router",
                            subject.clone(),
                            Some(router.id),
                            AuditOutcome::Success,
                            None,
                        );
                        if let Err(e) = self.deps.repos.grants.complete(&[key], &self.config.holder).await {
                            // Left leased: the job redoes it (idempotent) after the lease.
                            tracing::warn!(error = %e, "grant done on the router but not recorded yet");
                        }
                        Ok(())
                    }
                    Err(e) => {
                        if e.is_conflict() {
                            let foreign = ForeignObject {
                                menu: crate::ports::Menu::HotspotUsers,
                                name: sub.username.to_string(),
                            };
                            record_foreign(&mut t, &[foreign], &label, now, sub.tenant_id, subject, router.id);
                        }
                        t.add("grants_pending", 1);
                        t.add_router(&label, "grants_pending", 1);
                        t.fail(subject.clone(), Some(&label), &e);
                        t.event(
                            now,
                            Some(sub.tenant_id),
                            "grant_router",
                            subject.clone(),
                            Some(router.id),
                            AuditOutcome::Retry,
                            Some(e.to_string()),
                        );
                        let until = retry_at(self, now, g.attempts);
                        let text = e.to_string();
                        if let Err(e) = self
                            .deps
                            .repos
                            .grants
                            .retry_later(&[key], &self.config.holder, until, &text)
                            .await
                        {
                            tracing::warn!(error = %e, "cannot back off a pending grant; its lease expires instead");
                        }
                        Err(text)
                    }
                };
                (router.id, answer, t)
            }
            .instrument(span)
        });
        let mut out = BTreeMap::new();
        for (id, answer, t) in join_all(tasks).await {
            ctx.tally.merge(t);
            out.insert(id, answer);
        }
        out
    }

    /// Our user enabled (created when missing), our block bindings of the
    /// devices removed, on one router.
    async fn enable_on_router(
        &self,
        router: &Router,
        sub: &Subscriber,
        tag: OwnerTag,
        devices: &[Device],
    ) -> Result<()> {
        let driver = &self.deps.driver;
        let change = [(sub.username.clone(), tag, false)];
        let answer = driver
            .set_hotspot_users_disabled(router, &change)
            .await?
            .pop()
            .unwrap_or_else(|| Err(Error::not_found("hotspot user", &sub.username)));
        match answer {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {
                let spec = HotspotUserSpec {
                    name: sub.username.clone(),
                    password: None,
                    profile: None,
                    limit_uptime: None,
                    mac: None,
                    owner: tag,
                };
                driver.add_hotspot_user(router, &spec).await?;
            }
            Err(e) => return Err(e),
        }
        for d in devices {
            driver.unblock_device(router, d.mac).await?;
        }
        Ok(())
    }
}

/// The first failure of `subject` on `router` in a report.
fn failure_on(report: &JobReport, subject: &str, router: &str) -> Option<String> {
    report
        .failures
        .iter()
        .find(|f| f.subject == subject && f.router.as_deref().is_none_or(|r| r.ends_with(router)))
        .map(|f| f.error.clone())
}

/// The `paid_until` an extension gives `sub` at `now`.
pub(crate) fn new_paid_until(
    sub: &Subscriber,
    extension: Extension,
    plan: Option<&Plan>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>> {
    let from = sub.paid_until.max(now);
    let add = |field: &str, secs: u64| -> Result<DateTime<Utc>> {
        if secs == 0 || secs > MAX_EXTENSION_SECS {
            return Err(Error::invalid(
                field,
                secs,
                format!("must be between 1 and {MAX_EXTENSION_SECS} seconds"),
            ));
        }
        i64::try_from(secs)
            .ok()
            .and_then(|s| from.checked_add_signed(chrono::Duration::seconds(s)))
            .ok_or_else(|| Error::invalid(field, secs, "out of range"))
    };
    match extension {
        Extension::Plan(_) => {
            let plan = plan.ok_or_else(|| Error::Internal("a plan extension without its plan".into()))?;
            let secs = plan
                .duration
                .map(|d| d.as_std().as_secs())
                .ok_or_else(|| Error::invalid("plan", &plan.name, "has no duration (a monthly plan?)"))?;
            add("plan", secs)
        }
        Extension::Seconds(secs) => add("seconds", secs),
        Extension::Until(t) => {
            if t < sub.paid_until {
                return Err(Error::invalid(
                    "until",
                    t.to_rfc3339(),
                    format!(
                        "is earlier than the current paid_until {} (shortening must be asked for explicitly)",
                        sub.paid_until.to_rfc3339()
                    ),
                ));
            }
            if t <= now {
                return Err(Error::invalid("until", t.to_rfc3339(), "is not in the future"));
            }
            Ok(t)
        }
        Extension::Shorten(t) => Ok(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid")
            .with_timezone(&Utc)
    }

    fn sub(paid_until: DateTime<Utc>) -> Subscriber {
        Subscriber {
            id: SubscriberId(1),
            tenant_id: TenantId(1),
            phone: PhoneNumber::parse("phone", "+255712000001").expect("phone"),
            username: RosName::parse("username", "u1").expect("name"),
            paid_until,
            active: true,
            disconnected_at: None,
            attempts: 0,
            lease: None,
        }
    }

    #[test]
    fn extensions_add_from_the_later_of_now_and_the_end() {
        let now = at("2026-12-01T10:00:00Z");
        let lapsed = sub(at("2026-11-30T10:00:00Z"));
        let running = sub(at("2026-12-01T12:00:00Z"));
        let ext = Extension::Seconds(3600);
        assert_eq!(
            new_paid_until(&lapsed, ext, None, now).expect("ok"),
            at("2026-12-01T11:00:00Z")
        );
        assert_eq!(
            new_paid_until(&running, ext, None, now).expect("ok"),
            at("2026-12-01T13:00:00Z")
        );
    }

    #[test]
    fn until_never_shortens_unless_asked_and_bad_values_name_the_field() {
        let now = at("2026-12-01T10:00:00Z");
        let running = sub(at("2026-12-01T12:00:00Z"));
        let e = new_paid_until(&running, Extension::Until(at("2026-12-01T11:00:00Z")), None, now)
            .expect_err("shorter");
        assert!(e.to_string().contains("until"), "{e}");
        assert_eq!(
            new_paid_until(&running, Extension::Shorten(now), None, now).expect("ok"),
            now
        );
        let e = new_paid_until(&running, Extension::Seconds(0), None, now).expect_err("zero");
        assert!(e.to_string().contains("seconds"), "{e}");
        let e = new_paid_until(&running, Extension::Seconds(MAX_EXTENSION_SECS + 1), None, now)
            .expect_err("too long");
        assert!(e.to_string().contains("seconds"), "{e}");
    }
}
