//! The scheduler: one task per job on its cron schedule, and the real-time
//! expiry watcher.
//!
//! - **Cron tasks.** Each job has its own task that sleeps until the next
//!   occurrence of its schedule and runs the job through the [`JobRunner`];
//!   a run that is still in progress when the next one is due makes that one
//!   skip, so a job never overlaps itself.
//! - **The watcher.** Instead of polling every 30 s (seed 001), it asks the
//!   engine for the next deadline ([`Engine::next_wakeup`]: a subscriber's
//!   `paid_until`, a warning lead time, a voucher deadline ...) and sleeps
//!   until then, but never longer than `watcher_max_sleep` (2 s by default),
//!   so that purchases and extensions written by other programs are seen
//!   within seconds; a [`JobRunner::nudge`] wakes it at once. When a deadline
//!   has passed, or claimable overdue work exists (an item created already
//!   expired, or whose retry back-off ended), it runs the deadline-driven jobs.
//!   It has two lanes, each its own loop: disconnect-expired, woken at the
//!   next `paid_until`; and apply-grants, expire-vouchers and
//!   warn-before-expiry, woken at their deadlines. An expiry never waits for
//!   a run of the other three.
//! - **Shutdown.** On [`Shutdown::trigger`] no new run starts; runs in
//!   progress finish (the caller bounds that with a grace period). A job that
//!   is cut off leaves its items leased, and they are retried when the lease
//!   expires: nothing is marked done that the router did not confirm.
//!
//! [`Engine::next_wakeup`]: crate::jobs::Engine::next_wakeup

use std::time::Duration;

use crate::domain::Lease;
use crate::jobs::{JobKind, RunOptions};
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::runner::{JobRunner, Trigger};
use super::schedule::{Schedule, SchedulerConfig};
use crate::ports::Clock;

/// The jobs the watcher runs when a deadline passes: the first in its expiry
/// lane, the others, in order, in its second lane.
pub const DEADLINE_JOBS: [JobKind; 4] = [
    JobKind::DisconnectExpired,
    JobKind::ApplyGrants,
    JobKind::ExpireVouchers,
    JobKind::WarnBeforeExpiry,
];

/// A shutdown signal shared by every task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: std::sync::Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A signal not yet triggered.
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            tx: std::sync::Arc::new(tx),
            rx,
        }
    }

    /// Tells every task to stop starting new work.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether it was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once triggered.
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        // An error means the sender is gone, which only happens when every clone is dropped.
        let _ = rx.wait_for(|v| *v).await;
    }
}

/// Starts one task per scheduled job and, if enabled, the watcher.
pub fn spawn(runner: &JobRunner, config: &SchedulerConfig, shutdown: &Shutdown) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for (job, schedule) in &config.schedules {
        if let Schedule::Off = schedule {
            tracing::info!(job = %job, "no schedule (off)");
            continue;
        }
        tracing::info!(job = %job, schedule = schedule.as_str(), time_zone = %config.time_zone, "scheduled");
        set.spawn(cron_task(
            runner.clone(),
            *job,
            schedule.clone(),
            config.time_zone,
            shutdown.clone(),
        ));
    }
    if config.voucher_listen {
        set.spawn(voucher_listeners(runner.clone(), shutdown.clone()));
    }
    if config.watcher_enabled {
        set.spawn(watcher_task(
            runner.clone(),
            config.watcher_max_sleep,
            config.watcher_min_sleep,
            shutdown.clone(),
        ));
    }
    set
}

/// `d` after `t`, saturating instead of overflowing.
fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Sleeps `d` on `clock`; false when the shutdown came first.
async fn sleep_or_shutdown(clock: &dyn Clock, d: Duration, shutdown: &Shutdown) -> bool {
    let until = later(clock.now(), d);
    tokio::select! {
        _ = clock.sleep_until(until) => true,
        _ = shutdown.wait() => false,
    }
}

async fn cron_task(
    runner: JobRunner,
    job: JobKind,
    schedule: Schedule,
    tz: chrono_tz::Tz,
    shutdown: Shutdown,
) {
    let clock = runner.engine().deps().clock.clone();
    let mut next = match schedule.next_after(clock.now(), tz) {
        Some(n) => n,
        None => return,
    };
    runner.update_next(job, |n| n.scheduled = Some(next));
    loop {
        // Sleep in steps of at most a minute so that a wall-clock jump is noticed.
        let now = clock.now();
        if now < next {
            let wait = (next - now)
                .to_std()
                .unwrap_or_default()
                .min(Duration::from_secs(60));
            if !sleep_or_shutdown(clock.as_ref(), wait, &shutdown).await {
                return;
            }
            continue;
        }
        if shutdown.is_triggered() {
            return;
        }
        if let Some(Err(e)) = runner
            .try_run(job, RunOptions::default(), Trigger::Schedule)
            .await
        {
            tracing::debug!(job = %job, error = %e, "scheduled run failed; next occurrence will retry");
        }
        next = match schedule.next_after(clock.now(), tz) {
            Some(n) => n,
            None => {
                runner.update_next(job, |n| n.scheduled = None);
                return;
            }
        };
        runner.update_next(job, |n| n.scheduled = Some(next));
    }
}

/// Listens to new hotspot sessions on every enabled router whose transport
/// can stream, so that a voucher's first login is recorded within a second.
async fn voucher_listeners(runner: JobRunner, shutdown: Shutdown) {
    let routers = match runner.engine().deps().directory.all_routers().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "voucher listener: cannot list the routers; the activate-vouchers poll covers them");
            return;
        }
    };
    let listens = routers
        .into_iter()
        .filter(|r| r.enabled)
        .map(|r| listen_router(runner.clone(), r, shutdown.clone()));
    futures::future::join_all(listens).await;
}

/// One router's listen, reconnected with a back-off until shutdown.
async fn listen_router(runner: JobRunner, router: crate::domain::Router, shutdown: Shutdown) {
    use futures::StreamExt as _;
    let engine = runner.engine().clone();
    let clock = engine.deps().clock.clone();
    let mut backoff = Duration::from_secs(1);
    while !shutdown.is_triggered() {
        let stream = tokio::select! {
            s = engine.deps().driver.watch_hotspot_sessions(&router) => s,
            _ = shutdown.wait() => return,
        };
        match stream {
            Err(crate::Error::Rejected { detail, .. }) => {
                tracing::debug!(router = %router.name, reason = %detail, "voucher listener: not streaming; polled instead");
                return;
            }
            Err(e) => {
                tracing::debug!(router = %router.name, error = %e, retry_in = ?backoff, "voucher listener: cannot listen");
            }
            Ok(mut stream) => {
                backoff = Duration::from_secs(1);
                loop {
                    let item = tokio::select! {
                        item = stream.next() => item,
                        _ = shutdown.wait() => return,
                    };
                    match item {
                        Some(Ok(session)) => {
                            if let Err(e) = engine.record_hotspot_login(&router, &session).await {
                                tracing::warn!(router = %router.name, error = %e, "voucher listener: cannot record a login; the poll retries");
                            }
                        }
                        Some(Err(e)) => {
                            tracing::debug!(router = %router.name, error = %e, "voucher listener: stream ended");
                            break;
                        }
                        None => break,
                    }
                }
            }
        }
        if !sleep_or_shutdown(clock.as_ref(), backoff, &shutdown).await {
            return;
        }
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

fn lease_free(lease: &Option<Lease>, now: DateTime<Utc>) -> bool {
    lease.as_ref().is_none_or(|l| l.until <= now)
}

/// The watcher's two lanes. Each has its own loop, so that an expiry never
/// waits behind a run of the other deadline jobs, and those never wait behind
/// a long disconnect run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// disconnect-expired, woken at the next `paid_until`.
    Expiry,
    /// apply-grants, expire-vouchers and warn-before-expiry, woken at the
    /// other deadlines.
    Other,
}

impl Lane {
    fn name(self) -> &'static str {
        match self {
            Lane::Expiry => "expiry",
            Lane::Other => "deadlines",
        }
    }

    fn jobs(self) -> &'static [JobKind] {
        match self {
            Lane::Expiry => &DEADLINE_JOBS[..1],
            Lane::Other => &DEADLINE_JOBS[1..],
        }
    }

    /// Is there overdue work of this lane that a claim would get right now?
    async fn claimable_overdue(self, runner: &JobRunner, now: DateTime<Utc>) -> crate::Result<bool> {
        let repos = &runner.engine().deps().repos;
        match self {
            Lane::Expiry => {
                let subs = repos.subscribers.list_expired(now, 50).await?;
                Ok(subs.iter().any(|s| lease_free(&s.lease, now)))
            }
            Lane::Other => {
                let vouchers = repos.vouchers.list_due(now, 50).await?;
                if vouchers.iter().any(|v| lease_free(&v.lease, now)) {
                    return Ok(true);
                }
                let (_, grants_due) = repos.grants.count_pending(now).await?;
                Ok(grants_due > 0)
            }
        }
    }

    /// The lane's next deadline strictly after `after`.
    async fn next_wakeup(
        self,
        runner: &JobRunner,
        after: DateTime<Utc>,
    ) -> crate::Result<Option<DateTime<Utc>>> {
        match self {
            Lane::Expiry => runner.engine().next_expiry_wakeup(after).await,
            Lane::Other => runner.engine().next_other_wakeup(after).await,
        }
    }

    /// `read` of this lane, dropped after the engine's `run_timeout`.
    async fn bounded<T>(
        self,
        runner: &JobRunner,
        read: impl std::future::Future<Output = crate::Result<T>>,
    ) -> crate::Result<T> {
        let limit = runner.engine().config().run_timeout;
        tokio::time::timeout(limit, read).await.unwrap_or_else(|_| {
            Err(crate::jobs::run_timed_out(
                &format!("watcher lane {}", self.name()),
                limit,
            ))
        })
    }

    async fn nudged(self, runner: &JobRunner) {
        match self {
            Lane::Expiry => runner.expiry_nudged().await,
            Lane::Other => runner.nudged().await,
        }
    }
}

async fn watcher_task(runner: JobRunner, max_sleep: Duration, min_sleep: Duration, shutdown: Shutdown) {
    runner.update_watcher(|w| {
        w.running = true;
        w.check_interval_seconds = max_sleep.as_secs_f64();
    });
    tracing::info!(
        max_sleep_ms = max_sleep.as_millis() as u64,
        "real-time expiry watcher started"
    );
    let nexts = std::sync::Mutex::new([None, None]);
    tokio::join!(
        lane_task(&runner, Lane::Expiry, &nexts, max_sleep, min_sleep, &shutdown),
        lane_task(&runner, Lane::Other, &nexts, max_sleep, min_sleep, &shutdown),
    );
    runner.update_watcher(|w| w.running = false);
    tracing::info!("real-time expiry watcher stopped");
}

/// One lane's loop; `nexts` holds each lane's next deadline for the status.
async fn lane_task(
    runner: &JobRunner,
    lane: Lane,
    nexts: &std::sync::Mutex<[Option<DateTime<Utc>>; 2]>,
    max_sleep: Duration,
    min_sleep: Duration,
    shutdown: &Shutdown,
) {
    let clock = runner.engine().deps().clock.clone();
    // The deadline we are sleeping towards.
    let mut armed: Option<DateTime<Utc>> = None;
    // Whether `armed` was found after a run, as one that passed during it.
    let mut armed_by_run = false;
    let mut last_overdue_run: Option<DateTime<Utc>> = None;
    while !shutdown.is_triggered() {
        let now = clock.now();
        let deadline_passed = armed.filter(|a| *a <= now);
        // When the lane ran, when that run began.
        let mut ran_from: Option<DateTime<Utc>> = None;
        // A deadline that passed runs the lane anyway: no need to look for
        // overdue work first (one read less before the claim).
        let overdue = if deadline_passed.is_some() {
            Ok(false)
        } else {
            lane.bounded(runner, lane.claimable_overdue(runner, now)).await
        };
        let overdue = match overdue {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(lane = lane.name(), error = %e, "watcher: cannot read due work; retrying");
                runner.update_watcher(|w| w.last_error = Some(e.to_string()));
                if !sleep_or_shutdown(clock.as_ref(), max_sleep, shutdown).await {
                    break;
                }
                continue;
            }
        };
        let overdue_ready =
            overdue && last_overdue_run.is_none_or(|t| (now - t).to_std().unwrap_or_default() >= max_sleep);
        if deadline_passed.is_some() || overdue_ready {
            if let Some(d) = deadline_passed {
                let lag = (now - d).to_std().unwrap_or_default();
                // After a run, the other lane's deadline may be one that run
                // already met (a warning sent): not a lag. The expiry lane's is
                // a subscriber still not cut off.
                if !armed_by_run || lane == Lane::Expiry {
                    runner.record_lag(lag);
                }
                tracing::debug!(lane = lane.name(), deadline = %d, lag_ms = lag.as_millis() as u64, "watcher: deadline reached");
            }
            if overdue {
                last_overdue_run = Some(now);
            }
            for job in lane.jobs() {
                if shutdown.is_triggered() {
                    break;
                }
                // Errors are logged and counted by the runner; the next wake retries.
                let _ = runner.run(*job, RunOptions::default(), Trigger::Watcher).await;
            }
            armed = None;
            ran_from = Some(now);
        }
        let now = clock.now();
        // After a run, the next deadline after the run began: one that passed
        // while the jobs ran is met at once, not after the overdue back-off.
        let after = ran_from.unwrap_or(now);
        let next = match lane.bounded(runner, lane.next_wakeup(runner, after)).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(lane = lane.name(), error = %e, "watcher: cannot compute the next deadline; retrying");
                runner.update_watcher(|w| w.last_error = Some(e.to_string()));
                if !sleep_or_shutdown(clock.as_ref(), max_sleep, shutdown).await {
                    break;
                }
                continue;
            }
        };
        armed = next;
        armed_by_run = ran_from.is_some();
        if next.is_some_and(|n| n <= now) {
            continue;
        }
        for job in lane.jobs() {
            runner.update_next(*job, |n| n.deadline = next);
        }
        let earliest = {
            let mut n = nexts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            n[lane as usize] = next;
            n.iter().flatten().min().copied()
        };
        runner.update_watcher(|w| {
            w.next_wakeup = earliest;
            w.last_check_at = Some(now);
            w.last_error = None;
        });
        if let Some(e) = earliest {
            ::metrics::gauge!("ispd_watcher_next_wakeup_seconds")
                .set((e - now).to_std().unwrap_or_default().as_secs_f64());
        }
        let until_next = next.map(|n| (n - now).to_std().unwrap_or_default());
        let sleep = until_next.map_or(max_sleep, |d| d.min(max_sleep));
        // Never spin: at least a few milliseconds, and `min_sleep` when overdue
        // work was left waiting for its back-off. After a run, the next check
        // tells whether any is left: the run's own work was overdue, and
        // holding the lane for it delayed every expiry behind it by `min_sleep`.
        let sleep = if overdue && ran_from.is_none() {
            sleep.max(min_sleep)
        } else {
            sleep.max(Duration::from_millis(5))
        };
        let wake_at = later(now, sleep);
        tokio::select! {
            _ = clock.sleep_until(wake_at) => {}
            _ = lane.nudged(runner) => { tracing::debug!(lane = lane.name(), "watcher: nudged"); }
            _ = shutdown.wait() => break,
        }
    }
}
