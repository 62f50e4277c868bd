//! The runtime (feature `runtime`): what turns the [`Engine`]'s jobs into a
//! running service, so that an embedder gets the real-time behaviour of `ispd`
//! by calling the library.
//!
//! - [`JobRunner`]: one gate per job, so a job never overlaps itself whoever
//!   starts it (its schedule, the watcher, an API call, a CLI); logs and
//!   metrics ([`metrics`]) for every run; [`JobRunner::nudge`] after a write
//!   that moves a deadline; the status a console shows (last and next runs,
//!   the last hour minute by minute).
//! - [`spawn`]: one task per job on its cron [`Schedule`], and the real-time
//!   watcher that sleeps until the next deadline ([`Engine::next_wakeup`]) and
//!   runs the deadline-driven jobs the moment it passes.
//! - [`Runtime`]: both, started and stopped together with a grace period.
//! - [`SystemClock`]: the one reader of the system clock. Every sleep of the
//!   runtime goes through [`Clock::sleep_until`](crate::ports::Clock::sleep_until),
//!   so the same runtime runs on a [`FakeClock`](crate::ports::FakeClock) in
//!   tests with no real sleeping.
//! - [`MeteredDriver`]: a [`RouterDriver`](crate::ports::RouterDriver) layer
//!   that records the latency and errors of every router call, and
//!   [`check_router`] behind "check this router" in a CLI or an API.
//!
//! ```no_run
//! # async fn demo(engine: isp_core::jobs::Engine) {
//! use isp_core::runtime::{Runtime, SchedulerConfig};
//!
//! let runtime = Runtime::start(engine, SchedulerConfig::default());
//! // ... the engine now cuts off expired subscribers the moment their time ends.
//! runtime.stop().await;
//! # }
//! ```

mod clock;
pub mod metrics;
mod routers;
mod runner;
mod schedule;
mod scheduler;

use tokio::task::JoinSet;

pub use clock::SystemClock;
pub use routers::{check_router, MeteredDriver, RouterCheck};
pub use runner::{JobRunner, LastRun, NextRun, Trigger, WatcherState};
pub use schedule::{default_schedule, Schedule, SchedulerConfig};
pub use scheduler::{spawn, Shutdown, DEADLINE_JOBS};

use crate::jobs::Engine;

/// A running runtime: the cron tasks and the watcher over one [`JobRunner`].
#[derive(Debug)]
pub struct Runtime {
    runner: JobRunner,
    shutdown: Shutdown,
    tasks: JoinSet<()>,
    grace: std::time::Duration,
}

impl Runtime {
    /// Starts the scheduled jobs and (if enabled) the watcher on the current
    /// tokio runtime.
    pub fn start(engine: Engine, config: SchedulerConfig) -> Runtime {
        Self::start_with(JobRunner::new(engine), &config, Shutdown::new())
    }

    /// Starts on a runner and a shutdown signal the caller shares with its own
    /// tasks (an HTTP API that runs jobs through the same gates).
    pub fn start_with(runner: JobRunner, config: &SchedulerConfig, shutdown: Shutdown) -> Runtime {
        let tasks = spawn(&runner, config, &shutdown);
        Runtime {
            runner,
            shutdown,
            tasks,
            grace: config.shutdown_grace,
        }
    }

    /// The job runner (run a job now, nudge the watcher, last runs).
    pub fn runner(&self) -> &JobRunner {
        &self.runner
    }

    /// The shutdown signal (triggering it stops new runs).
    pub fn shutdown_signal(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Stops: no new runs start; runs in progress get the configured grace
    /// period to finish, then are cut off (their items stay leased and are
    /// retried later: nothing unconfirmed is ever marked done). Returns whether
    /// everything finished within the grace period.
    pub async fn stop(mut self) -> bool {
        self.shutdown.trigger();
        let grace = self.grace;
        let drained = tokio::time::timeout(grace, async { while self.tasks.join_next().await.is_some() {} })
            .await
            .is_ok();
        if !drained {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "shutdown grace period over; cutting off runs in progress (their items stay pending)"
            );
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        drained
    }
}
