//! What every job shares: the run context (time, caches, tallies), claims,
//! back-off, per-router concurrency limits, template rendering and notice delivery.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;

use crate::domain::{
    AuditEvent, AuditOutcome, Claim, NewNotice, Notice, NoticeId, Plan, PlanId, Router, RouterId, Tenant,
    TenantId,
};
use crate::error::{Error, Result};
use crate::jobs::{router_label, Engine, JobFailure, JobKind, JobReport};
use crate::policy::retry::backoff;
use crate::policy::NoticeDue;
use crate::ports::{LeaseRepoExt as _, Leased, LeasedId, NoticeRepoExt as _};

/// Dry runs read due work with `list_*` queries up to this many items.
pub(crate) const DRY_RUN_LIMIT: usize = 100_000;
/// A notice refused this many times is abandoned.
pub(crate) const MAX_NOTICE_ATTEMPTS: u32 = 5;
/// SMS sent at once.
const SMS_CONCURRENCY: usize = 8;

/// A renewal request: the ids, and where its answer goes.
type RenewalRequest = (Vec<i64>, tokio::sync::oneshot::Sender<Result<Vec<bool>>>);

/// Lease renewals of one batch's router calls, grouped: each call still
/// renews its items' leases right before it starts (holding its router's
/// permit), but requests that arrive while a renewal is in flight are joined
/// into the next statement. A batch over 100 routers costs a few statements
/// instead of 100, which on SQLite's single writer was most of a sweep's time.
pub(crate) struct GroupRenewal<F> {
    /// One statement: per id, whether this daemon still holds its lease.
    renew_all: F,
    queue: Mutex<Vec<RenewalRequest>>,
    /// Held by the caller whose statement is in flight.
    gate: tokio::sync::Mutex<()>,
}

impl<F, Fut> GroupRenewal<F>
where
    F: Fn(Vec<i64>) -> Fut,
    Fut: Future<Output = Result<Vec<bool>>>,
{
    pub(crate) fn new(renew_all: F) -> Self {
        GroupRenewal {
            renew_all,
            queue: Mutex::new(Vec::new()),
            gate: tokio::sync::Mutex::new(()),
        }
    }

    /// Renews `ids`' leases: per id, whether this daemon still holds it.
    pub(crate) async fn renew(&self, ids: &[i64]) -> Result<Vec<bool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        self.lock_queue().push((ids.to_vec(), tx));
        let _gate = self.gate.lock().await;
        // An earlier caller's statement may have answered this request already.
        if let Ok(answer) = rx.try_recv() {
            return answer;
        }
        let requests = std::mem::take(&mut *self.lock_queue());
        self.serve(requests).await;
        rx.await.unwrap_or_else(|_| {
            Err(Error::Internal(
                "a grouped lease renewal was dropped before it answered".into(),
            ))
        })
    }

    /// One statement for every queued request; each gets its own answer.
    async fn serve(&self, requests: Vec<RenewalRequest>) {
        let mut all: Vec<i64> = requests.iter().flat_map(|(ids, _)| ids.iter().copied()).collect();
        all.sort_unstable();
        all.dedup();
        match (self.renew_all)(all.clone()).await {
            Ok(held) if held.len() == all.len() => {
                let held: HashMap<i64, bool> = all.into_iter().zip(held).collect();
                for (ids, tx) in requests {
                    let answer = ids
                        .iter()
                        .map(|id| held.get(id).copied().unwrap_or(false))
                        .collect();
                    // A caller that went away needs no answer.
                    let _ = tx.send(Ok(answer));
                }
            }
            answer => {
                let e = answer.err().unwrap_or_else(|| Error::Protocol {
                    service: "lease repository".into(),
                    detail: format!("renewals answered wrongly for {} items", all.len()),
                });
                for (_, tx) in requests {
                    let _ = tx.send(Err(duplicate(&e)));
                }
            }
        }
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<RenewalRequest>> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Per-router semaphores: at most `per_router_concurrency` commands in flight
/// to one router across every job of this engine.
#[derive(Debug)]
pub(crate) struct RouterLimits {
    permits: usize,
    map: Mutex<HashMap<RouterId, Arc<Semaphore>>>,
}

impl RouterLimits {
    pub(crate) fn new(permits: usize) -> Self {
        RouterLimits {
            permits: permits.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn semaphore(&self, router: RouterId) -> Arc<Semaphore> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(router)
            .or_insert_with(|| Arc::new(Semaphore::new(self.permits)))
            .clone()
    }

    /// Runs `fut` holding one of the router's permits.
    pub(crate) async fn run<T>(&self, router: RouterId, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let sem = self.semaphore(router);
        let _permit = sem
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("router concurrency limiter closed".into()))?;
        fut.await
    }
}

/// Counts, per-router counts, failures and audit events of (part of) a run.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) counts: BTreeMap<String, u64>,
    pub(crate) per_router: BTreeMap<String, BTreeMap<String, u64>>,
    pub(crate) failures: Vec<JobFailure>,
    pub(crate) audit: Vec<AuditEvent>,
    /// Why a service could not be changed on its router in this run (the
    /// provision-now use case answers with it).
    pub(crate) pending_services: BTreeMap<crate::domain::ServiceId, String>,
}

impl Tally {
    pub(crate) fn add(&mut self, key: &str, n: u64) {
        if n > 0 {
            *self.counts.entry(key.to_owned()).or_default() += n;
        }
    }

    pub(crate) fn add_router(&mut self, label: &str, key: &str, n: u64) {
        if n > 0 {
            *self
                .per_router
                .entry(label.to_owned())
                .or_default()
                .entry(key.to_owned())
                .or_default() += n;
        }
    }

    pub(crate) fn fail(&mut self, subject: impl Into<String>, router: Option<&str>, error: &Error) {
        let subject = subject.into();
        tracing::warn!(subject = %subject, router = router.unwrap_or("-"), error = %error, transient = error.is_transient(), "job item failed");
        self.failures.push(JobFailure {
            subject,
            router: router.map(str::to_owned),
            error: error.to_string(),
            transient: error.is_transient(),
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn event(
        &mut self,
        at: DateTime<Utc>,
        tenant: Option<TenantId>,
        action: &str,
        subject: impl Into<String>,
        router: Option<RouterId>,
        outcome: AuditOutcome,
        reason: Option<String>,
    ) {
        self.audit.push(AuditEvent {
            at,
            tenant_id: tenant,
            action: action.to_owned(),
            subject: subject.into(),
            router_id: router,
            outcome,
            reason,
        });
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        for (k, v) in other.counts {
            self.add(&k, v);
        }
        for (r, m) in other.per_router {
            for (k, v) in m {
                self.add_router(&r, &k, v);
            }
        }
        self.failures.extend(other.failures);
        self.audit.extend(other.audit);
        self.pending_services.extend(other.pending_services);
    }
}

/// The span of one router's share of a run (every line inside names the router;
/// the run's own span names the job and the run).
pub(crate) fn router_span(router: &str) -> tracing::Span {
    tracing::info_span!("router", router = %router)
}

/// One run of one job.
#[derive(Debug)]
pub(crate) struct RunCtx<'e> {
    pub(crate) engine: &'e Engine,
    pub(crate) job: JobKind,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) dry_run: bool,
    pub(crate) tally: Tally,
    tenants: HashMap<TenantId, Tenant>,
    tenant_routers: HashMap<TenantId, Vec<Router>>,
    routers: HashMap<RouterId, Router>,
    plans: HashMap<PlanId, Plan>,
}

impl<'e> RunCtx<'e> {
    pub(crate) fn new(engine: &'e Engine, job: JobKind, dry_run: bool) -> Self {
        RunCtx {
            engine,
            job,
            started_at: engine.deps.clock.now(),
            dry_run,
            tally: Tally::default(),
            tenants: HashMap::new(),
            tenant_routers: HashMap::new(),
            routers: HashMap::new(),
            plans: HashMap::new(),
        }
    }

    /// The current instant (read per batch, so long runs see time move).
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.engine.deps.clock.now()
    }

    /// A claim for the next batch, made at `now`.
    pub(crate) fn claim_at(&self, now: DateTime<Utc>) -> Claim {
        let cfg = &self.engine.config;
        let ttl = chrono::Duration::from_std(cfg.lease_ttl).unwrap_or(chrono::Duration::seconds(120));
        Claim {
            holder: cfg.holder.clone(),
            now,
            until: now.checked_add_signed(ttl).unwrap_or(now),
            limit: cfg.batch_size.max(1),
        }
    }

    /// When an item that has failed `attempts` times may be retried.
    pub(crate) fn retry_at(&self, now: DateTime<Utc>, attempts: u32) -> DateTime<Utc> {
        retry_at(self.engine, now, attempts)
    }

    pub(crate) fn holder(&self) -> &str {
        &self.engine.config.holder
    }

    pub(crate) async fn tenant(&mut self, id: TenantId) -> Result<Tenant> {
        if let Some(t) = self.tenants.get(&id) {
            return Ok(t.clone());
        }
        let t = self.engine.deps.repos.tenants.get(id).await?;
        self.tenants.insert(id, t.clone());
        Ok(t)
    }

    /// The tenant's time zone (UTC when the tenant cannot be read).
    pub(crate) async fn tz_of(&mut self, id: TenantId) -> Tz {
        self.tenant(id).await.map(|t| t.time_zone).unwrap_or(Tz::UTC)
    }

    pub(crate) async fn routers_of(&mut self, tenant: TenantId) -> Result<Vec<Router>> {
        if let Some(r) = self.tenant_routers.get(&tenant) {
            return Ok(r.clone());
        }
        let rs = self.engine.deps.directory.routers_of(tenant).await?;
        for r in &rs {
            self.routers.insert(r.id, r.clone());
        }
        self.tenant_routers.insert(tenant, rs.clone());
        Ok(rs)
    }

    pub(crate) async fn router(&mut self, id: RouterId) -> Result<Router> {
        if let Some(r) = self.routers.get(&id) {
            return Ok(r.clone());
        }
        let r = self.engine.deps.directory.router(id).await?;
        self.routers.insert(id, r.clone());
        Ok(r)
    }

    pub(crate) async fn plan(&mut self, id: PlanId) -> Result<Plan> {
        if let Some(p) = self.plans.get(&id) {
            return Ok(p.clone());
        }
        let p = self.engine.deps.repos.plans.get(id).await?;
        self.plans.insert(id, p.clone());
        Ok(p)
    }

    /// `tenant-slug:router-name`.
    pub(crate) async fn label(&mut self, router: &Router) -> String {
        let slug = self
            .tenant(router.tenant_id)
            .await
            .ok()
            .map(|t| t.slug.to_string());
        router_label(slug.as_deref(), &router.name)
    }

    /// Writes buffered audit events (one write); a failing audit store is
    /// counted, never fatal.
    pub(crate) async fn flush_audit(&mut self) {
        if self.dry_run || self.tally.audit.is_empty() {
            self.tally.audit.clear();
            return;
        }
        self.engine.append_audit(self.job, &mut self.tally).await;
    }

    pub(crate) fn into_report(self) -> JobReport {
        let finished = self.engine.deps.clock.now();
        let mut report = JobReport::new(self.job, self.started_at, self.dry_run);
        report.finished_at = finished;
        report.counts = self.tally.counts;
        report.per_router = self.tally.per_router;
        report.failures = self.tally.failures;
        report
    }
}

impl Engine {
    /// Writes the audit events buffered in `tally` (one write); a failing
    /// audit store is counted, never fatal.
    pub(crate) async fn append_audit(&self, job: JobKind, tally: &mut Tally) {
        if tally.audit.is_empty() {
            return;
        }
        let events = std::mem::take(&mut tally.audit);
        if let Err(e) = self.deps.repos.audit.append(&events).await {
            tracing::warn!(job = %job, error = %e, events = events.len(), "audit write failed");
            tally.add("audit_write_failures", 1);
        }
    }

    /// Renews this engine's leases on `ids` for another lease TTL from now,
    /// just before router work or an SMS send on them, and answers per id, in
    /// order, whether the item is still ours. An item whose lease ran out
    /// (another daemon may have claimed it since) answers `false` and must
    /// not be acted on: its new holder does the work, once.
    ///
    /// This holds only while one router call (or SMS send) ends within a lease
    /// TTL: router and SMS timeouts must stay below `lease_ttl`
    /// ([`EngineConfig::check_timeouts`](crate::jobs::EngineConfig::check_timeouts)).
    pub(crate) async fn renew_leases(&self, kind: Leased, ids: &[i64]) -> Result<Vec<bool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.deps.clock.now();
        let ttl = chrono::Duration::from_std(self.config.lease_ttl).unwrap_or(chrono::Duration::seconds(120));
        let until = now.checked_add_signed(ttl).unwrap_or(now);
        let held = self
            .deps
            .repos
            .leases
            .renew_all(kind, ids, &self.config.holder, now, until)
            .await?;
        if held.len() != ids.len() {
            return Err(Error::Protocol {
                service: "lease repository".into(),
                detail: format!(
                    "{} renewals answered for {} {}s",
                    held.len(),
                    ids.len(),
                    kind.entity()
                ),
            });
        }
        Ok(held)
    }

    /// A [`GroupRenewal`] of `kind`'s leases for the router calls of one batch.
    pub(crate) fn group_renewal<'e>(
        &'e self,
        kind: Leased,
    ) -> GroupRenewal<impl Fn(Vec<i64>) -> futures::future::BoxFuture<'e, Result<Vec<bool>>> + 'e> {
        GroupRenewal::new(move |ids: Vec<i64>| {
            use futures::FutureExt as _;
            async move { self.renew_leases(kind, &ids).await }.boxed()
        })
    }

    /// Runs one router step on behalf of leased item `id`, holding one of the
    /// router's permits, only once its lease is renewed (so the step starts
    /// with a whole lease TTL ahead); `Ok(None)` when the lease was lost and
    /// the step was not run.
    pub(crate) async fn leased_step<Id: LeasedId, T>(
        &self,
        router: RouterId,
        id: Id,
        step: impl Future<Output = Result<T>>,
    ) -> Result<Option<T>> {
        self.limits
            .run(router, async {
                let held = self.renew_leases(Id::KIND, &[id.raw()]).await?;
                if held.first().copied().unwrap_or(false) {
                    step.await.map(Some)
                } else {
                    Ok(None)
                }
            })
            .await
    }
}

/// Notices per claimed batch: as many as [`SMS_CONCURRENCY`] sends finish in
/// half a lease even if every send takes its whole timeout, so a batch is
/// recorded before its lease can run out (no delivered SMS is ever taken for
/// abandoned), and never more than the engine's batch size.
pub(crate) fn notice_batch_size(
    batch_size: usize,
    lease_ttl: std::time::Duration,
    send_timeout: std::time::Duration,
) -> usize {
    let rounds = (lease_ttl.as_secs_f64() / 2.0 / send_timeout.as_secs_f64().max(0.001)).floor() as usize;
    (SMS_CONCURRENCY * rounds.max(1)).min(batch_size.max(1))
}

/// `now + backoff(attempts)`.
pub(crate) fn retry_at(engine: &Engine, now: DateTime<Utc>, attempts: u32) -> DateTime<Utc> {
    let cfg = &engine.config;
    let wait = backoff(attempts, cfg.retry_base, cfg.retry_max);
    let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(600));
    now.checked_add_signed(wait).unwrap_or(now)
}

/// Items of `batch` not seen before in this run (and marks them seen): a
/// guard against a store handing the same items back within one run.
pub(crate) fn fresh<T, K: Eq + Hash>(seen: &mut HashSet<K>, batch: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    batch.into_iter().filter(|x| seen.insert(key(x))).collect()
}

/// Fills `{name}` placeholders.
pub(crate) fn render(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = template.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// A local time for messages: `2026-01-14 10:00`.
pub(crate) fn local_text(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

impl Engine {
    /// Reserves a notice (or, in a dry run, checks whether it would be new).
    /// Counts `notices_reserved` / `notices_duplicate`; the SMS goes out in
    /// [`Engine::deliver_notices`]. Returns the id of a notice this call
    /// reserved (not of a duplicate).
    pub(crate) async fn reserve_notice(
        &self,
        ctx: &mut RunCtx<'_>,
        due: &NoticeDue,
        body: String,
        now: DateTime<Utc>,
    ) -> Option<NoticeId> {
        let notices = &self.deps.repos.notices;
        if ctx.dry_run {
            match notices
                .find(&due.recipient, due.kind, due.deadline, &due.subject)
                .await
            {
                Ok(None) => ctx.tally.add("sms_sent", 1),
                Ok(Some(_)) => ctx.tally.add("notices_duplicate", 1),
                Err(e) => ctx.tally.fail(format!("notice:{}", due.kind.as_str()), None, &e),
            }
            return None;
        }
        let new = NewNotice {
            tenant_id: due.tenant_id,
            recipient: due.recipient.clone(),
            kind: due.kind,
            deadline: due.deadline,
            subject: due.subject.clone(),
            body,
            created_at: now,
        };
        match notices.reserve(&new).await {
            Ok(n) => {
                ctx.tally.add("notices_reserved", 1);
                return Some(n.id);
            }
            Err(e) if e.is_conflict() => ctx.tally.add("notices_duplicate", 1),
            Err(e) => {
                tracing::warn!(kind = due.kind.as_str(), error = %e, "notice reservation failed");
                ctx.tally.add("sms_failed", 1);
            }
        }
        None
    }

    /// [`reserve_notice`](Self::reserve_notice) for a batch, in one repository
    /// call: per item, in order, the new notice's id (`None`: a duplicate, or
    /// the reservation failed and is counted in `sms_failed`).
    pub(crate) async fn reserve_notices(
        &self,
        tally: &mut Tally,
        dues: Vec<(&NoticeDue, String)>,
        now: DateTime<Utc>,
    ) -> Vec<Option<NoticeId>> {
        if dues.is_empty() {
            return Vec::new();
        }
        let count = dues.len();
        let new: Vec<NewNotice> = dues
            .into_iter()
            .map(|(due, body)| NewNotice {
                tenant_id: due.tenant_id,
                recipient: due.recipient.clone(),
                kind: due.kind,
                deadline: due.deadline,
                subject: due.subject.clone(),
                body,
                created_at: now,
            })
            .collect();
        match self.deps.repos.notices.reserve_all(&new).await {
            Ok(ids) if ids.len() == count => {
                for id in &ids {
                    if id.is_some() {
                        tally.add("notices_reserved", 1);
                    } else {
                        tally.add("notices_duplicate", 1);
                    }
                }
                ids
            }
            Ok(ids) => {
                tracing::warn!(
                    answers = ids.len(),
                    notices = count,
                    "notice reservation answered for a different number of notices"
                );
                tally.add("sms_failed", count as u64);
                vec![None; count]
            }
            Err(e) => {
                tracing::warn!(notices = count, error = %e, "notice reservation failed");
                tally.add("sms_failed", count as u64);
                vec![None; count]
            }
        }
    }

    /// Sends every pending notice this engine can claim. Gateway failures are
    /// counted (`sms_failed`), retried with back-off while transient, and
    /// abandoned when permanent or after [`MAX_NOTICE_ATTEMPTS`]; they never
    /// fail the job.
    pub(crate) async fn deliver_notices(&self, ctx: &mut RunCtx<'_>) {
        if ctx.dry_run {
            return;
        }
        let notices = &self.deps.repos.notices;
        match notices.abandon_stale(ctx.now()).await {
            Ok(n) => ctx.tally.add("sms_abandoned", n),
            Err(e) => tracing::warn!(error = %e, "abandoning stale notices failed"),
        }
        let cfg = &self.config;
        let send_timeout = cfg
            .sms_send_timeout
            .min(cfg.lease_ttl / 2)
            .max(std::time::Duration::from_millis(1));
        let budget_end = ctx.now()
            + chrono::Duration::from_std(cfg.notice_run_budget).unwrap_or(chrono::Duration::seconds(60));
        let mut seen = HashSet::new();
        loop {
            let now = ctx.now();
            if now >= budget_end {
                ctx.tally.add("runs_out_of_budget", 1);
                break;
            }
            let mut claim = ctx.claim_at(now);
            claim.limit = notice_batch_size(cfg.batch_size, cfg.lease_ttl, send_timeout);
            let batch = match notices.claim_pending(&claim).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming notices failed");
                    ctx.tally.add("sms_failed", 1);
                    break;
                }
            };
            let batch = fresh(&mut seen, batch, |n| n.id);
            if batch.is_empty() {
                break;
            }
            let sms = &self.deps.sms;
            // Each send starts only once its notice's lease is renewed: a
            // notice whose lease ran out may be another daemon's now.
            let results: Vec<(Notice, Result<()>)> = stream::iter(batch)
                .map(|n| async move {
                    match self.renew_leases(Leased::Notices, &[n.id.raw()]).await {
                        Ok(held) if held.first().copied().unwrap_or(false) => {}
                        Ok(_) => return (n, None),
                        Err(e) => return (n, Some(Err(e))),
                    }
                    let r = match tokio::time::timeout(send_timeout, sms.send(&n.recipient, &n.body)).await {
                        Ok(r) => r.map(|_| ()),
                        Err(_) => Err(Error::outcome_unknown(
                            "sms gateway",
                            format!("no answer within {} s", send_timeout.as_secs_f64()),
                        )),
                    };
                    (n, Some(r))
                })
                .buffer_unordered(SMS_CONCURRENCY)
                .collect::<Vec<(Notice, Option<Result<()>>)>>()
                .await
                .into_iter()
                .filter_map(|(n, r)| {
                    if r.is_none() {
                        ctx.tally.add("notices_superseded", 1);
                        tracing::debug!(notice = %n.id, "notice left to another daemon (lease lost before the send)");
                    }
                    r.map(|r| (n, r))
                })
                .collect();
            // Every send of the batch has finished before any is recorded, so
            // recording them in one write widens no window for a second send.
            let sent: Vec<NoticeId> = results
                .iter()
                .filter(|(_, r)| r.is_ok())
                .map(|(n, _)| n.id)
                .collect();
            if !sent.is_empty() {
                match notices.mark_all_sent(&sent, ctx.holder(), now).await {
                    Ok(marked) => {
                        for (id, _) in sent.iter().zip(marked).filter(|(_, m)| !m) {
                            tracing::warn!(notice = %id, "a sent notice was not recorded: its lease was lost");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(notices = sent.len(), error = %e, "recording sent notices failed");
                    }
                }
            }
            for (n, r) in results {
                let subject = format!("notice:{}", n.id);
                match r {
                    Ok(()) => {
                        ctx.tally.add("sms_sent", 1);
                        ctx.tally.event(
                            now,
                            Some(n.tenant_id),
                            "notice",
                            subject,
                            None,
                            AuditOutcome::Success,
                            Some(n.kind.as_str().to_owned()),
                        );
                    }
                    Err(e) => {
                        ctx.tally.add("sms_failed", 1);
                        tracing::warn!(notice = %n.id, kind = n.kind.as_str(), error = %e, "sms send failed");
                        let give_up = !e.is_transient() || n.attempts + 1 >= MAX_NOTICE_ATTEMPTS;
                        let outcome = if e.is_outcome_unknown() {
                            // It may have reached the phone: never sent again,
                            // and told apart from the ones that surely did not.
                            ctx.tally.add("sms_outcome_unknown", 1);
                            let _ = notices.mark_unknown(n.id, ctx.holder()).await;
                            AuditOutcome::Failure
                        } else if give_up {
                            ctx.tally.add("sms_abandoned", 1);
                            let _ = notices.abandon(n.id, ctx.holder()).await;
                            AuditOutcome::Failure
                        } else {
                            let until = ctx.retry_at(now, n.attempts);
                            let _ = self
                                .deps
                                .repos
                                .leases
                                .retry_later(n.id, ctx.holder(), until)
                                .await;
                            AuditOutcome::Retry
                        };
                        ctx.tally.event(
                            now,
                            Some(n.tenant_id),
                            "notice",
                            subject,
                            None,
                            outcome,
                            Some(e.to_string()),
                        );
                    }
                }
            }
            ctx.flush_audit().await;
        }
    }
}

/// A copy of an error for reporting it against several items (same variant,
/// so the same retry verdict; the source chain is not copied).
pub(crate) fn duplicate(e: &Error) -> Error {
    match e {
        Error::InvalidInput { field, value, reason } => Error::InvalidInput {
            field: field.clone(),
            value: value.clone(),
            reason: reason.clone(),
        },
        Error::NotFound { entity, id } => Error::NotFound {
            entity,
            id: id.clone(),
        },
        Error::Conflict { entity, detail } => Error::Conflict {
            entity,
            detail: detail.clone(),
        },
        Error::Unavailable { service, detail, .. } => Error::unavailable(service.clone(), detail.clone()),
        Error::Authentication { service, detail } => Error::Authentication {
            service: service.clone(),
            detail: detail.clone(),
        },
        Error::Rejected { service, detail } => Error::Rejected {
            service: service.clone(),
            detail: detail.clone(),
        },
        Error::Protocol { service, detail } => Error::Protocol {
            service: service.clone(),
            detail: detail.clone(),
        },
        Error::OutcomeUnknown { service, reason } => Error::outcome_unknown(service.clone(), reason.clone()),
        Error::Internal(m) => Error::Internal(m.clone()),
    }
}

/// `ceil(x / d)` for a non-negative result (negative `x` counts as 0).
pub(crate) fn ceil_div(x: i64, d: i64) -> i64 {
    let x = x.max(0);
    let d = d.max(1);
    x / d + i64::from(x % d != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Fifty router calls renewing at once cost two statements (the first
    /// caller's, then one for everyone who queued behind it), and each call
    /// gets the answer for its own ids, lost leases included.
    #[tokio::test]
    async fn concurrent_renewals_are_grouped_and_each_gets_its_own_answer() {
        let statements = AtomicUsize::new(0);
        let lost = 7_i64;
        let renewal = GroupRenewal::new(|ids: Vec<i64>| {
            statements.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::task::yield_now().await;
                Ok(ids.iter().map(|id| *id != lost).collect())
            }
        });
        let calls = (0..50_i64).map(|i| {
            let renewal = &renewal;
            async move { (i, renewal.renew(&[i * 10, lost, i * 10 + 1]).await) }
        });
        for (i, answer) in futures::future::join_all(calls).await {
            let expected = vec![i * 10 != lost, false, i * 10 + 1 != lost];
            assert_eq!(answer.expect("renewed"), expected, "call {i}");
        }
        assert_eq!(statements.load(Ordering::SeqCst), 2);
    }

    /// A failed statement fails every call it served; a wrong count of
    /// answers is an error, not a guess.
    #[tokio::test]
    async fn a_failed_grouped_renewal_fails_every_call_it_served() {
        let renewal =
            GroupRenewal::new(|_ids: Vec<i64>| async { Err(Error::unavailable("database", "gone")) });
        let (a, b) = futures::join!(renewal.renew(&[1, 2]), renewal.renew(&[3]));
        assert!(a.is_err() && b.is_err(), "{a:?} {b:?}");
        let short = GroupRenewal::new(|_ids: Vec<i64>| async { Ok(vec![true]) });
        let e = short.renew(&[1, 2]).await.expect_err("two ids, one answer");
        assert!(e.to_string().contains("renewals"), "{e}");
    }
}
