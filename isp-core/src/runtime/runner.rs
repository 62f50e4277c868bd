//! Running jobs: one gate per job so that no job ever overlaps itself, whoever
//! starts it (its schedule, the real-time watcher, the admin API or the CLI),
//! with logs and metrics for every run.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::domain::{ServiceId, ServiceStatus, TenantId};
use crate::jobs::{Engine, JobKind, JobReport, RunOptions, ServiceChange};
use crate::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Notify;

use super::metrics::{self, LastHour, MinuteStats};

/// Who started a run (a log field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Its cron schedule.
    Schedule,
    /// The real-time watcher (a deadline passed).
    Watcher,
    /// `POST /api/jobs/{job}` or a service action.
    Api,
    /// `ispd once`.
    Cli,
    /// The demo's narration.
    Demo,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Watcher => "watcher",
            Trigger::Api => "api",
            Trigger::Cli => "cli",
            Trigger::Demo => "demo",
        }
    }
}

/// The last run of a job, for `/api/health`.
#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    /// When it finished.
    pub finished_at: DateTime<Utc>,
    /// Who started it.
    pub trigger: Trigger,
    /// Whether it ran (`false`: it failed as a whole).
    pub ok: bool,
    /// Failed items.
    pub failures: usize,
    /// The closing line, or the error.
    pub summary: String,
}

/// What the real-time watcher is doing, for `/api/health`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WatcherState {
    /// The watcher task is running.
    pub running: bool,
    /// Longest sleep between two checks, seconds.
    pub check_interval_seconds: f64,
    /// The next deadline it will wake at.
    pub next_wakeup: Option<DateTime<Utc>>,
    /// Its last check of the database.
    pub last_check_at: Option<DateTime<Utc>>,
    /// The last error it met (storage), cleared by the next good check.
    pub last_error: Option<String>,
}

/// When a job runs next, as the scheduler knows it (for a status page).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NextRun {
    /// The next occurrence of its cron schedule (`None`: no schedule, or
    /// the scheduler is not running).
    pub scheduled: Option<DateTime<Utc>>,
    /// The real-time watcher's next deadline for it (`None`: not a deadline
    /// job, or no deadline ahead).
    pub deadline: Option<DateTime<Utc>>,
}

impl NextRun {
    /// The earlier of the two.
    pub fn at(&self) -> Option<DateTime<Utc>> {
        match (self.scheduled, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Runs jobs through an [`Engine`], one at a time per job. Cheap to clone.
#[derive(Debug, Clone)]
pub struct JobRunner {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    engine: Engine,
    gates: BTreeMap<JobKind, tokio::sync::Mutex<()>>,
    /// One per watcher lane ([`crate::runtime::scheduler`]): a nudge wakes both.
    nudge: [Notify; 2],
    last: Mutex<BTreeMap<JobKind, LastRun>>,
    watcher: Mutex<WatcherState>,
    next: Mutex<BTreeMap<JobKind, NextRun>>,
    last_hour: Mutex<LastHour>,
    /// A `deliver-notices` run is queued behind the one in progress.
    delivery_queued: AtomicBool,
    /// Start `deliver-notices` after a run that reserved notices.
    auto_delivery: bool,
}

impl JobRunner {
    /// A runner over `engine`. Router alerts (an SMS to the tenant's
    /// `alert_phones` when a router goes offline or comes back) are part of the
    /// `router-health` job: see [`EngineConfig::alert_phones`](crate::jobs::EngineConfig::alert_phones).
    pub fn new(engine: Engine) -> Self {
        Self::build(engine, true)
    }

    /// A runner that never starts `deliver-notices` by itself: for a one-shot
    /// command that runs the delivery in line and reports it with its job.
    pub fn without_auto_delivery(engine: Engine) -> Self {
        Self::build(engine, false)
    }

    fn build(engine: Engine, auto_delivery: bool) -> Self {
        JobRunner {
            inner: Arc::new(Inner {
                engine,
                gates: JobKind::ALL
                    .into_iter()
                    .map(|j| (j, tokio::sync::Mutex::new(())))
                    .collect(),
                nudge: [Notify::new(), Notify::new()],
                last: Mutex::new(BTreeMap::new()),
                watcher: Mutex::new(WatcherState::default()),
                next: Mutex::new(BTreeMap::new()),
                last_hour: Mutex::new(LastHour::default()),
                delivery_queued: AtomicBool::new(false),
                auto_delivery,
            }),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Runs `job`, waiting for a run of the same job that is in progress to finish first.
    pub async fn run(&self, job: JobKind, opts: RunOptions, trigger: Trigger) -> Result<JobReport> {
        let gate = self.gate(job);
        let _guard = gate.lock().await;
        self.run_locked(job, opts, trigger).await
    }

    /// Runs `job` unless a run of it is in progress; `None` when it was skipped.
    pub async fn try_run(
        &self,
        job: JobKind,
        opts: RunOptions,
        trigger: Trigger,
    ) -> Option<Result<JobReport>> {
        let gate = self.gate(job);
        let Ok(_guard) = gate.try_lock() else {
            tracing::debug!(job = %job, trigger = trigger.as_str(), "still running; this run is skipped");
            return None;
        };
        Some(self.run_locked(job, opts, trigger).await)
    }

    /// Runs `job`, then (if it reserved notices) `deliver-notices` in line,
    /// and reports both in one report: the SMS of a run go out with it, as
    /// people who run jobs from cron expect. Errors of either run are returned.
    /// Meant for a [`without_auto_delivery`](Self::without_auto_delivery)
    /// runner; on one that delivers by itself, a task may take the notices first.
    pub async fn run_then_deliver(
        &self,
        job: JobKind,
        opts: RunOptions,
        trigger: Trigger,
    ) -> Result<JobReport> {
        let mut report = self.run(job, opts, trigger).await?;
        let reserved = report.count("notices_reserved") + report.count("alerts_queued");
        if opts.dry_run || job == JobKind::DeliverNotices || reserved == 0 {
            return Ok(report);
        }
        let delivery = self
            .run(JobKind::DeliverNotices, RunOptions::default(), trigger)
            .await?;
        for (k, v) in delivery.counts {
            *report.counts.entry(k).or_default() += v;
        }
        report.failures.extend(delivery.failures);
        Ok(report)
    }

    /// Sets a service's status and applies it on its router now
    /// ([`Engine::set_service_status`]), inside the provisioning job's gate so
    /// that it never overlaps a provisioning sweep.
    pub async fn set_service_status(
        &self,
        id: ServiceId,
        status: ServiceStatus,
        trigger: Trigger,
    ) -> Result<ServiceChange> {
        let _guard = self.gate(JobKind::ProvisionServices).lock().await;
        let start = Instant::now();
        let change = self.inner.engine.set_service_status(id, status).await?;
        metrics::record_report(&change.report, start.elapsed());
        log_report(&change.report, trigger, start.elapsed());
        Ok(change)
    }

    /// Starts a `deliver-notices` run in its own task, so that whoever
    /// reserved the notices (an expiry, a reminder, a router alert) never waits
    /// on the SMS gateway. At most one run is queued behind the one in
    /// progress; the queued run claims whatever is pending when it starts.
    pub fn deliver_notices_soon(&self, trigger: Trigger) {
        if self.inner.delivery_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let runner = self.clone();
        tokio::spawn(async move {
            let gate = runner.gate(JobKind::DeliverNotices);
            let _guard = gate.lock().await;
            runner.inner.delivery_queued.store(false, Ordering::Release);
            // Errors are logged and counted by run_locked; the next trigger retries.
            let _ = runner
                .run_locked(JobKind::DeliverNotices, RunOptions::default(), trigger)
                .await;
        });
    }

    fn gate(&self, job: JobKind) -> &tokio::sync::Mutex<()> {
        // Every JobKind has a gate (built from JobKind::ALL).
        self.inner
            .gates
            .get(&job)
            .unwrap_or_else(|| unreachable!("a gate exists for every job"))
    }

    async fn run_locked(&self, job: JobKind, opts: RunOptions, trigger: Trigger) -> Result<JobReport> {
        if job == JobKind::DisconnectExpired {
            self.log_expired().await;
        }
        let start = Instant::now();
        let result = self.inner.engine.run(job, opts).await;
        if let Ok(report) = &result {
            let reserved = report.count("notices_reserved") + report.count("alerts_queued");
            if self.inner.auto_delivery && job != JobKind::DeliverNotices && !report.dry_run && reserved > 0 {
                self.deliver_notices_soon(trigger);
            }
        }
        let elapsed = start.elapsed();
        let finished_at = self.inner.engine.deps().clock.now();
        match &result {
            Ok(report) => {
                metrics::record_report(report, elapsed);
                if job == JobKind::DisconnectExpired && !report.dry_run {
                    self.lock_last_hour()
                        .record_removals(finished_at, report.count("users_disconnected"));
                }
                log_report(report, trigger, elapsed);
                if !opts.dry_run {
                    self.set_last(
                        job,
                        LastRun {
                            finished_at,
                            trigger,
                            ok: true,
                            failures: report.failures.len(),
                            summary: report.to_string(),
                        },
                    );
                }
            }
            Err(e) => {
                metrics::record_error(job.name(), elapsed);
                tracing::error!(job = %job, trigger = trigger.as_str(), error = %e, transient = e.is_transient(), "job could not run");
                self.set_last(
                    job,
                    LastRun {
                        finished_at,
                        trigger,
                        ok: false,
                        failures: 0,
                        summary: e.to_string(),
                    },
                );
            }
        }
        result
    }

    /// The seeds' opening lines: how many expired subscribers there are, and for
    /// each (up to 20) its tenant, `paid_until`, and the routers it is removed from.
    async fn log_expired(&self) {
        const SHOWN: usize = 20;
        let deps = self.inner.engine.deps();
        let now = deps.clock.now();
        let limit = self.inner.engine.config().batch_size;
        let expired = match deps.repos.subscribers.list_expired(now, limit).await {
            Ok(e) if !e.is_empty() => e,
            _ => return,
        };
        tracing::info!(count = expired.len(), "found expired subscribers to disconnect");
        let mut tenants: BTreeMap<TenantId, (String, Vec<String>)> = BTreeMap::new();
        for s in expired.iter().take(SHOWN) {
            if let std::collections::btree_map::Entry::Vacant(slot) = tenants.entry(s.tenant_id) {
                let slug = deps
                    .repos
                    .tenants
                    .get(s.tenant_id)
                    .await
                    .map(|t| t.slug.to_string())
                    .unwrap_or_else(|_| s.tenant_id.to_string());
                let routers = deps
                    .directory
                    .routers_of(s.tenant_id)
                    .await
                    .map(|rs| rs.into_iter().filter(|r| r.enabled).map(|r| r.name).collect())
                    .unwrap_or_default();
                slot.insert((slug, routers));
            }
            let (slug, routers) = &tenants[&s.tenant_id];
            let ago = (now - s.paid_until).num_seconds();
            tracing::info!(
                user = %s.phone,
                tenant = %slug,
                paid_until = %s.paid_until,
                expired_secs_ago = ago,
                attempts = s.attempts,
                routers = ?routers,
                "disconnecting expired subscriber from the tenant's routers"
            );
        }
        if expired.len() > SHOWN {
            tracing::info!(
                more = expired.len() - SHOWN,
                "more expired subscribers not listed"
            );
        }
    }

    fn set_last(&self, job: JobKind, run: LastRun) {
        self.inner
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(job, run);
    }

    /// The last finished run of each job.
    pub fn last_runs(&self) -> BTreeMap<JobKind, LastRun> {
        self.inner
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// When each job runs next: the jobs the scheduler has a schedule or a
    /// deadline for (empty when no scheduler runs on this runner).
    pub fn next_runs(&self) -> BTreeMap<JobKind, NextRun> {
        self.inner
            .next
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Changes what [`next_runs`](Self::next_runs) says of `job`.
    pub(crate) fn update_next(&self, job: JobKind, f: impl FnOnce(&mut NextRun)) {
        f(self
            .inner
            .next
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(job)
            .or_default());
    }

    /// Records an enforcement lag (the watcher met a deadline `lag` after it):
    /// the metric, and the minute of [`last_hour`](Self::last_hour).
    pub(crate) fn record_lag(&self, lag: std::time::Duration) {
        metrics::record_lag(lag);
        let now = self.inner.engine.deps().clock.now();
        self.lock_last_hour().record_lag(now, lag);
    }

    /// Removals and enforcement lag per minute over the last hour, oldest
    /// minute first (this runner's runs, on its engine's clock).
    pub fn last_hour(&self) -> Vec<MinuteStats> {
        let now = self.inner.engine.deps().clock.now();
        self.lock_last_hour().minutes(now)
    }

    fn lock_last_hour(&self) -> std::sync::MutexGuard<'_, LastHour> {
        self.inner
            .last_hour
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the real-time watcher now (a purchase, an extension, a service change).
    pub fn nudge(&self) {
        for n in &self.inner.nudge {
            n.notify_one();
        }
    }

    /// Resolves at the next [`nudge`](Self::nudge) (or at once if one is
    /// pending) of the watcher's lane for the jobs other than disconnect-expired.
    pub async fn nudged(&self) {
        self.inner.nudge[1].notified().await;
    }

    /// Like [`nudged`](Self::nudged), for the expiry lane.
    pub(crate) async fn expiry_nudged(&self) {
        self.inner.nudge[0].notified().await;
    }

    /// The watcher's state.
    pub fn watcher(&self) -> WatcherState {
        self.inner
            .watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Changes the watcher's state.
    pub fn update_watcher(&self, f: impl FnOnce(&mut WatcherState)) {
        f(&mut self.inner.watcher.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// The per-router statistics and failures of a report, as events (the
/// closing line itself is logged by the engine).
fn log_report(report: &JobReport, trigger: Trigger, elapsed: std::time::Duration) {
    let busy = report.counts.values().any(|v| *v > 0) || !report.failures.is_empty();
    for (router, counts) in &report.per_router {
        let text = counts
            .iter()
            .map(|(k, v)| format!("{v} {}", k.replace('_', " ")))
            .collect::<Vec<_>>()
            .join(", ");
        tracing::info!(job = %report.job, router = %router, counts = %text, "router statistics");
    }
    for f in &report.failures {
        tracing::warn!(
            job = %report.job,
            subject = %f.subject,
            router = f.router.as_deref().unwrap_or("-"),
            error = %f.error,
            will_retry = f.transient,
            "item failed"
        );
    }
    tracing::debug!(
        job = %report.job,
        trigger = trigger.as_str(),
        elapsed_ms = elapsed.as_millis() as u64,
        busy,
        "run complete"
    );
}
