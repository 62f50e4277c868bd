//! The daemon side of rows 1, 2 and 6, in its own process so that its peak
//! RSS is its own (the simulated routers stay in the runner's process and are
//! reached over TCP, as real routers would be).
//!
//! The runner starts itself as `isp-bench __daemon`, writes a [`DaemonSpec`]
//! as JSON on its stdin and reads a [`DaemonOutcome`] as JSON from its stdout.
//! The daemon is wired as `ispd` wires itself: its SQLite storage
//! (`ispd::storage`), a static router directory, the RouterOS driver with
//! default settings behind `ispd`'s metering wrapper, the system clock, the
//! default engine configuration, and for scheduled runs `ispd`'s job runner
//! and scheduler. SMS go to an in-memory recording sender (no gateway).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use isp_core::domain::RouterId;
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, JobKind, RunOptions};
use isp_core::memory::{RecordingSms, StaticDirectory};
use isp_core::ports::RouterDriver;
use isp_core::runtime::{JobRunner, Schedule, SchedulerConfig, Shutdown};
use isp_routeros::driver::{DriverConfig, RouterOsDriver};
use ispd::config::{StorageConfig, StorageUrl};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::scenario::{DbLocation, RouterSpec};
use crate::BoxResult;

/// What the daemon process does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Mode {
    /// One `disconnect-expired` run through `Engine::run` (as `ispd once`).
    Sweep,
    /// `ispd`'s scheduler until `until_unix_ms`. `watcher`: the real-time
    /// watcher with every other job on its default schedule (the daemon as
    /// shipped). Otherwise only `disconnect_cron` runs disconnect-expired, every
    /// other job off: the seeds' polling watcher or cron.
    Schedule {
        watcher: bool,
        disconnect_cron: Option<String>,
        until_unix_ms: i64,
    },
}

/// Everything the daemon process needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DaemonSpec {
    pub(crate) db: DbLocation,
    pub(crate) routers: Vec<RouterSpec>,
    pub(crate) mode: Mode,
}

/// What the daemon process reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct DaemonOutcome {
    /// Wall clock (ms since the epoch) right before the work started and after it ended.
    pub(crate) started_unix_ms: f64,
    pub(crate) finished_unix_ms: f64,
    /// The job report's counts (sweep), or the last disconnect run's summary (scheduled).
    pub(crate) counts: BTreeMap<String, u64>,
    pub(crate) summary: String,
    pub(crate) failures: usize,
    pub(crate) failure_sample: Vec<String>,
    /// Peak RSS of the daemon process, kB.
    pub(crate) vm_hwm_kb: u64,
    /// Logins through the driver's pools, per router id.
    pub(crate) logins: BTreeMap<i64, u64>,
    /// SMS handed to the (recording) sender.
    pub(crate) sms: usize,
    /// CPU time of the daemon process, seconds.
    pub(crate) cpu_secs: f64,
    /// Scheduled runs: the closing line of each other job's last run, by job name.
    #[serde(default)]
    pub(crate) other_jobs: BTreeMap<String, String>,
}

pub(crate) fn unix_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Entry point of `isp-bench __daemon`.
pub(crate) fn child_main() -> ExitCode {
    let result = (|| -> BoxResult<DaemonOutcome> {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input)?;
        let spec: DaemonSpec = serde_json::from_str(&input)?;
        let filter = std::env::var("ISP_BENCH_LOG").unwrap_or_else(|_| "warn".to_owned());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
        // As ispd's own main: a multi-threaded runtime on every core.
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        rt.block_on(run(spec))
    })();
    match result {
        Ok(outcome) => match serde_json::to_string(&outcome) {
            Ok(json) => {
                let mut out = std::io::stdout().lock();
                if writeln!(out, "{json}").is_err() {
                    return ExitCode::FAILURE;
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("daemon: cannot encode the outcome: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("daemon: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(spec: DaemonSpec) -> BoxResult<DaemonOutcome> {
    let storage = ispd::storage::Storage::open(
        &StorageConfig {
            url: match &spec.db {
                DbLocation::Sqlite(path) => StorageUrl::Sqlite(path.clone()),
                DbLocation::Postgres(url) => StorageUrl::Postgres(url.clone().into()),
                DbLocation::Mysql(url) => StorageUrl::Mysql(url.clone().into()),
            },
            max_connections: 5,
            auto_migrate: false,
            statement_timeout: std::time::Duration::from_secs(30),
            lock_timeout: std::time::Duration::from_secs(10),
            acquire_timeout: std::time::Duration::from_secs(10),
        },
        false,
    )
    .await?;
    let routers: Vec<_> = spec.routers.iter().map(RouterSpec::to_router).collect();
    let ids: Vec<RouterId> = routers.iter().map(|r| r.id).collect();
    let ros = Arc::new(RouterOsDriver::new(DriverConfig::default())?);
    let driver: Arc<dyn RouterDriver> = Arc::new(isp_core::runtime::MeteredDriver::new(ros.clone()));
    let sms = Arc::new(RecordingSms::new());
    let engine = Engine::new(
        EngineDeps {
            repos: storage.repos.clone(),
            directory: Arc::new(StaticDirectory::new(routers)),
            driver,
            sms: sms.clone(),
            clock: Arc::new(isp_core::runtime::SystemClock),
        },
        EngineConfig {
            holder: format!("isp-bench-{}", std::process::id()),
            ..EngineConfig::default()
        },
    );
    let mut outcome = DaemonOutcome::default();
    match spec.mode {
        Mode::Sweep => {
            outcome.started_unix_ms = unix_ms(SystemTime::now());
            let report = engine
                .run(JobKind::DisconnectExpired, RunOptions::default())
                .await?;
            outcome.finished_unix_ms = unix_ms(SystemTime::now());
            outcome.summary = report.to_string();
            outcome.counts = report.counts.clone();
            outcome.failures = report.failures.len();
            outcome.failure_sample = report
                .failures
                .iter()
                .take(5)
                .map(|f| format!("{}: {}", f.subject, f.error))
                .collect();
        }
        Mode::Schedule {
            watcher,
            disconnect_cron,
            until_unix_ms,
        } => {
            let mut config = SchedulerConfig::default();
            if watcher {
                // Every other job at each minute boundary instead of its default
                // (mostly every 5 minutes): a run of about a minute then always
                // includes each of them (sync-routers reads every subscriber), in
                // its memory and CPU figures, whatever the wall-clock minute.
                let each_minute = Schedule::parse("0 * * * * *")?;
                for (job, schedule) in config.schedules.iter_mut() {
                    if *job != JobKind::DisconnectExpired && !matches!(schedule, Schedule::Off) {
                        *schedule = each_minute.clone();
                    }
                }
            } else {
                config.watcher_enabled = false;
                for schedule in config.schedules.values_mut() {
                    *schedule = Schedule::Off;
                }
                let cron = disconnect_cron.ok_or("a scheduled run without the watcher needs a cron")?;
                config
                    .schedules
                    .insert(JobKind::DisconnectExpired, Schedule::parse(&cron)?);
            }
            let runner = JobRunner::new(engine);
            let shutdown = Shutdown::new();
            outcome.started_unix_ms = unix_ms(SystemTime::now());
            let mut tasks = isp_core::runtime::spawn(&runner, &config, &shutdown);
            let left = (until_unix_ms as f64 - unix_ms(SystemTime::now())).max(0.0);
            tokio::time::sleep(Duration::from_secs_f64(left / 1000.0)).await;
            shutdown.trigger();
            let drained = tokio::time::timeout(config.shutdown_grace, async {
                while tasks.join_next().await.is_some() {}
            })
            .await
            .is_ok();
            if !drained {
                tasks.abort_all();
            }
            outcome.finished_unix_ms = unix_ms(SystemTime::now());
            for (job, last) in runner.last_runs() {
                if job == JobKind::DisconnectExpired {
                    outcome.summary = last.summary;
                    outcome.failures = last.failures;
                } else {
                    outcome.other_jobs.insert(job.name().to_owned(), last.summary);
                }
            }
        }
    }
    outcome.sms = sms.sent().len();
    outcome.logins = ids.iter().map(|id| (id.0, ros.logins(*id))).collect();
    outcome.vm_hwm_kb = crate::machine::vm_hwm_kb();
    outcome.cpu_secs = crate::machine::cpu_secs();
    Ok(outcome)
}

/// CPU seconds used while a daemon process ran: by the simulators (this
/// process) and by the daemon, and the simulators' share when idle before.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuSplit {
    pub(crate) idle_sims_share: f64,
    pub(crate) sims_secs: f64,
    pub(crate) daemon_secs: f64,
    pub(crate) wall_secs: f64,
}

impl CpuSplit {
    pub(crate) fn text(&self) -> String {
        format!(
            "CPU while the daemon process ran ({:.1} s): simulators {:.1} CPU-s, daemon {:.1} CPU-s, on {} cores \
             shared with other builds; idle simulators alone used {:.0}% of a core",
            self.wall_secs,
            self.sims_secs,
            self.daemon_secs,
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            self.idle_sims_share * 100.0
        )
    }
}

/// [`run_daemon`], measuring the CPU split.
pub(crate) async fn run_daemon_measured(spec: &DaemonSpec) -> BoxResult<(DaemonOutcome, CpuSplit)> {
    let idle_sims_share = crate::machine::idle_cpu_share(Duration::from_secs(1)).await;
    let before = crate::machine::cpu_secs();
    let t = std::time::Instant::now();
    let outcome = run_daemon(spec).await?;
    let split = CpuSplit {
        idle_sims_share,
        sims_secs: crate::machine::cpu_secs() - before,
        daemon_secs: outcome.cpu_secs,
        wall_secs: t.elapsed().as_secs_f64(),
    };
    Ok((outcome, split))
}

/// Runs the daemon process on `spec` and waits for its outcome. The caller's
/// runtime keeps serving the simulated routers meanwhile.
pub(crate) async fn run_daemon(spec: &DaemonSpec) -> BoxResult<DaemonOutcome> {
    let exe = std::env::current_exe()?;
    // A profiler to run the daemon under, e.g. `ISP_BENCH_DAEMON_WRAPPER="heaptrack -o /tmp/ispd"`.
    let wrapper = std::env::var("ISP_BENCH_DAEMON_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut c = tokio::process::Command::new(program);
            c.args(words).arg(exe);
            c
        }
        None => tokio::process::Command::new(exe),
    };
    let mut child = command
        .arg("__daemon")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let input = serde_json::to_vec(spec)?;
    let mut stdin = child.stdin.take().ok_or("daemon process without stdin")?;
    stdin.write_all(&input).await?;
    drop(stdin);
    let output = child.wait_with_output().await?;
    if !output.status.success() {
        return Err(format!("the daemon process failed ({})", output.status).into());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or("the daemon process printed no outcome")?;
    Ok(serde_json::from_str(line)?)
}
