//! Running jobs: one gate per job so that no job ever overlaps itself, whoever
//! starts it (its schedule, the real-time watcher, the admin API or the CLI),
//! with logs and metrics for every run.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use chrono::{DateTime, Utc};
use isp_core::domain::{NewNotice, NoticeKind, PhoneNumber, RouterStatus, TenantId};
use isp_core::jobs::{Engine, JobKind, JobReport, RunOptions};
use isp_core::ports::NoticeRepoExt as _;
use isp_core::Result;
use serde::Serialize;
use tokio::sync::Notify;

use crate::telemetry;

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

/// Runs jobs through an [`Engine`], one at a time per job. Cheap to clone.
#[derive(Debug, Clone)]
pub struct JobRunner {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    engine: Engine,
    alert_phones: BTreeMap<TenantId, Vec<PhoneNumber>>,
    gates: BTreeMap<JobKind, tokio::sync::Mutex<()>>,
    nudge: Notify,
    last: Mutex<BTreeMap<JobKind, LastRun>>,
    watcher: Mutex<WatcherState>,
}

impl JobRunner {
    /// A runner over `engine`.
    pub fn new(engine: Engine) -> Self {
        Self::with_alerts(engine, BTreeMap::new())
    }

    /// A runner that also sends router alerts: when `router-health` finds a
    /// router of a tenant went offline or came back, an SMS notice is reserved
    /// for each of the tenant's `alert_phones` (at most one per phone and
    /// change); it goes out with the next notice delivery (the next
    /// disconnect-expired, warn-before-expiry or payment-reminders run).
    pub fn with_alerts(engine: Engine, alert_phones: BTreeMap<TenantId, Vec<PhoneNumber>>) -> Self {
        JobRunner {
            inner: Arc::new(Inner {
                engine,
                alert_phones,
                gates: JobKind::ALL
                    .into_iter()
                    .map(|j| (j, tokio::sync::Mutex::new(())))
                    .collect(),
                nudge: Notify::new(),
                last: Mutex::new(BTreeMap::new()),
                watcher: Mutex::new(WatcherState::default()),
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

    fn gate(&self, job: JobKind) -> &tokio::sync::Mutex<()> {
        // Every JobKind has a gate (built from JobKind::ALL).
        self.inner
            .gates
            .get(&job)
            .unwrap_or_else(|| unreachable!("a gate exists for every job"))
    }

    async fn run_locked(&self, job: JobKind, opts: RunOptions, trigger: Trigger) -> Result<JobReport> {
        let alerting = job == JobKind::RouterHealth && !opts.dry_run && !self.inner.alert_phones.is_empty();
        let before = if alerting {
            self.inner.engine.deps().repos.router_status.list().await.ok()
        } else {
            None
        };
        if job == JobKind::DisconnectExpired {
            self.log_expired().await;
        }
        let start = Instant::now();
        let result = self.inner.engine.run(job, opts).await;
        if let (Some(before), Ok(_)) = (before, &result) {
            self.reserve_router_alerts(&before).await;
        }
        let elapsed = start.elapsed();
        let finished_at = self.inner.engine.deps().clock.now();
        match &result {
            Ok(report) => {
                telemetry::record_report(report, elapsed);
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
                telemetry::record_error(job.name(), elapsed);
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

    async fn reserve_router_alerts(&self, before: &[RouterStatus]) {
        let deps = self.inner.engine.deps();
        let after = match deps.repos.router_status.list().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "router alerts: cannot read router status");
                return;
            }
        };
        for status in &after {
            let prev = before.iter().find(|b| b.router_id == status.router_id);
            let changed = match prev {
                Some(p) => p.online != status.online,
                None => !status.online,
            };
            if !changed {
                continue;
            }
            let Ok(router) = deps.directory.router(status.router_id).await else {
                continue;
            };
            let Some(phones) = self.inner.alert_phones.get(&router.tenant_id) else {
                continue;
            };
            let tenant = deps
                .repos
                .tenants
                .get(router.tenant_id)
                .await
                .map(|t| t.slug.to_string())
                .unwrap_or_else(|_| router.tenant_id.to_string());
            let body = if status.online {
                format!("Router {tenant}:{} is back online.", router.name)
            } else {
                format!(
                    "Router {tenant}:{} is OFFLINE since {} UTC: {}",
                    router.name,
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
                    body: body.clone(),
                    created_at: deps.clock.now(),
                };
                match deps.repos.notices.reserve(&notice).await {
                    Ok(_) => {
                        tracing::info!(router = %router.name, to = %phone, online = status.online, "router alert queued")
                    }
                    Err(e) if e.is_conflict() => {}
                    Err(e) => {
                        tracing::warn!(router = %router.name, error = %e, "router alert: cannot queue the SMS")
                    }
                }
            }
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

    /// Wakes the real-time watcher now (a purchase, an extension, a service change).
    pub fn nudge(&self) {
        self.inner.nudge.notify_one();
    }

    /// Resolves at the next [`nudge`](Self::nudge) (or at once if one is pending).
    pub async fn nudged(&self) {
        self.inner.nudge.notified().await;
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
