//! The command line (clap).
//!
//! ```text
//! ispd demo [--duration-secs N]          the daemon on SQLite and simulated routers, no configuration
//! ispd run --config FILE                 the daemon: scheduler, real-time watcher, admin API
//! ispd once <job> [--dry-run] [--json]   one job now, then exit (for cron)
//! ispd migrate                           bring the database schema up to date
//! ispd check-routers [--json] [--fix]    each router's connection and clock skew, and the
//!                                        static-IP firewall rule where static-IP services are
//! ispd status [--json]                   the health summary, from the database
//! ispd grant --tenant T --phone P --plan NAME [--create] [--reference R --amount A --currency C]
//!                                        give paid time now, on every router of the tenant
//! ispd vouchers generate --tenant T --plan NAME --count N [--prefix P]
//!                                        vouchers for sale, pushed to the tenant's router
//! ```
//!
//! Exit codes: 0 ok; 1 a job had failures, or `status` needs attention;
//! 2 bad configuration or usage; 3 storage unavailable or incompatible;
//! 4 a router is unreachable, its clock is off or its static-IP firewall rule
//! is missing (`check-routers`).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use isp_core::jobs::{JobKind, RunOptions};

use crate::config::{self, Config, LogFormat, ProcessEnv};
use crate::daemon::{self, Daemon, DaemonError};
#[cfg(feature = "demo")]
use crate::demo;
use crate::{report, telemetry};
use isp_core::runtime::{check_router, JobRunner, SystemClock, Trigger};

/// Success.
pub const EXIT_OK: u8 = 0;
/// A job had failures, or the health summary needs attention.
pub const EXIT_FAILURES: u8 = 1;
/// Bad configuration or usage.
pub const EXIT_CONFIG: u8 = 2;
/// The storage is unavailable or its schema is newer than this build.
pub const EXIT_STORAGE: u8 = 3;
/// A router is unreachable, its clock is off, or its static-IP firewall rule is missing.
pub const EXIT_ROUTERS: u8 = 4;

/// `ispd`: keeps MikroTik routers in line with what customers paid for.
#[derive(Debug, Parser)]
#[command(name = "ispd", version, about, long_about = None)]
pub struct Cli {
    /// Log format: pretty (default on a terminal), compact or json. Logs go to stderr.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// The configuration file (TOML). Without it: built-in defaults (SQLite `ispd.db`
    /// in the working directory, no routers) plus `ISPD_...` environment variables.
    #[arg(long, short = 'c', env = "ISPD_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a demo: SQLite in a temp dir, simulated routers, subscribers expiring every few seconds.
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
    /// Run the daemon: every job on its schedule, the real-time expiry watcher, the admin API.
    Run {
        /// The configuration file (TOML).
        #[arg(long, short = 'c', env = "ISPD_CONFIG")]
        config: PathBuf,
    },
    /// Run one job now and print its report (for people who keep cron).
    Once {
        /// The job: disconnect-expired, warn-before-expiry, expire-vouchers, sync-routers,
        /// provision-services, monthly-billing, payment-reminders, router-health,
        /// device-cleanup or log-retention.
        #[arg(value_parser = parse_job)]
        job: JobKind,
        /// Report what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Configuration.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Bring the database schema up to date (SQL migrations, MongoDB indexes).
    Migrate {
        /// Configuration.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Log in to each configured router; show latency, version and clock skew.
    /// On each router with static-IP services (from the database), check the
    /// firewall rule that drops forwarded traffic from addresses not in the
    /// static-IP address list.
    CheckRouters {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Largest acceptable clock skew, seconds.
        #[arg(long, default_value_t = isp_core::jobs::MAX_CLOCK_SKEW_SECS)]
        max_skew_secs: i64,
        /// Add the static-IP firewall rule where it is missing (enable ours where disabled).
        #[arg(long)]
        fix: bool,
        /// The interface list the static-IP customers are behind (the rule's `in-interface-list`).
        #[arg(long, default_value = "LAN", value_parser = parse_interface_list)]
        lan_interface_list: isp_core::domain::RosName,
        /// Configuration.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Give a subscriber paid time now and enable it on every router of its tenant.
    Grant(crate::cli_access::GrantArgs),
    /// Vouchers for sale.
    #[command(subcommand)]
    Vouchers(crate::cli_access::VoucherCommand),
    /// Print the health summary (the admin API's /api/health) from the database.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Configuration.
        #[command(flatten)]
        config: ConfigArg,
    },
}

fn parse_interface_list(raw: &str) -> Result<isp_core::domain::RosName, String> {
    isp_core::domain::RosName::parse("lan_interface_list", raw).map_err(|e| e.to_string())
}

fn parse_job(raw: &str) -> Result<JobKind, String> {
    JobKind::parse(raw).map_err(|e| e.to_string())
}

/// The process entry point: parses arguments, runs, returns the exit code.
pub fn main() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => EXIT_OK,
                _ => EXIT_CONFIG,
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ispd: cannot start the async runtime: {e}");
            return EXIT_FAILURES;
        }
    };
    let mut out = std::io::stdout();
    runtime.block_on(run(cli, &mut out))
}

fn load(path: Option<&PathBuf>) -> Result<Config, DaemonError> {
    let mut c = match path {
        Some(p) => config::load_file(p, &ProcessEnv),
        None => Config::defaults(&ProcessEnv),
    }
    .map_err(|e| DaemonError::Config(e.to_string()))?;
    c.source = path.cloned();
    Ok(c)
}

fn init_logs(cli_format: Option<LogFormat>, config: Option<&Config>) {
    let format = cli_format
        .or_else(|| config.and_then(|c| c.log.format))
        .unwrap_or_default();
    telemetry::init_logging(format, config.and_then(|c| c.log.filter.as_deref()));
    if let Some(c) = config {
        for w in &c.warnings {
            tracing::warn!("{w}");
        }
    }
}

fn fail(out: &mut dyn Write, e: &DaemonError) -> u8 {
    let _ = out.flush();
    eprintln!("ispd: {e}");
    e.exit_code()
}

/// Runs a parsed command line, printing results to `out` (errors to stderr).
pub async fn run(cli: Cli, out: &mut dyn Write) -> u8 {
    match cli.command {
        #[cfg(feature = "demo")]
        Command::Demo(args) => {
            init_logs(cli.log_format, None);
            demo::run(args, out).await
        }
        Command::Run { config } => {
            let config = match load(Some(&config)) {
                Ok(c) => c,
                Err(e) => return fail(out, &e),
            };
            init_logs(cli.log_format, Some(&config));
            match run_daemon(&config).await {
                Ok(()) => EXIT_OK,
                Err(e) => fail(out, &e),
            }
        }
        Command::Once {
            job,
            dry_run,
            json,
            config,
        } => {
            let config = match load(config.config.as_ref()) {
                Ok(c) => c,
                Err(e) => return fail(out, &e),
            };
            init_logs(cli.log_format, Some(&config));
            once(&config, job, dry_run, json, out).await
        }
        Command::Migrate { config } => {
            let config = match load(config.config.as_ref()) {
                Ok(c) => c,
                Err(e) => return fail(out, &e),
            };
            init_logs(cli.log_format, Some(&config));
            match crate::storage::Storage::open(&config.storage, true).await {
                Ok(s) => {
                    let _ = match s.schema_version() {
                        Some(v) => writeln!(out, "{}: schema up to date (version {v})", s.description),
                        None => writeln!(out, "{}: indexes up to date", s.description),
                    };
                    s.close().await;
                    EXIT_OK
                }
                Err(e) => fail(out, &DaemonError::Storage(e)),
            }
        }
        Command::CheckRouters {
            json,
            max_skew_secs,
            fix,
            lan_interface_list,
            config,
        } => {
            let config = match load(config.config.as_ref()) {
                Ok(c) => c,
                Err(e) => return fail(out, &e),
            };
            init_logs(cli.log_format, Some(&config));
            let opts = CheckOptions {
                json,
                max_skew_secs,
                fix,
                lan_interface_list,
            };
            check_routers(&config, &opts, out).await
        }
        Command::Grant(args) => {
            let config = match load(args.config.config.as_ref()) {
                Ok(c) => c,
                Err(e) => return fail(out, &e),
            };
            init_logs(cli.log_format, Some(&config));
            crate::cli_access::grant(&config, args, out)
                .await
                .unwrap_or_else(|e| fail(out, &e))
        }
        Command::Vouchers(command) => {
            let config = match load(crate::cli_access::config_of(&command).config.as_ref()) {
                Ok(c) => c,
                Err(e) => return fail(out, &e),
            };
            init_logs(cli.log_format, Some(&config));
            crate::cli_access::vouchers(&config, command, out)
                .await
                .unwrap_or_else(|e| fail(out, &e))
        }
        Command::Status { json, config } => {
            let config = match load(config.config.as_ref()) {
                Ok(c) => c,
                Err(e) => return fail(out, &e),
            };
            init_logs(cli.log_format, Some(&config));
            status(&config, json, out).await
        }
    }
}

async fn run_daemon(config: &Config) -> Result<(), DaemonError> {
    let (wiring, storage) = daemon::wire(config, false).await?;
    daemon::apply_config(config, &wiring.repos).await?;
    tracing::info!(
        storage = %storage.description,
        tenants = config.tenants.len(),
        routers = config.routers().len(),
        sms = config.sms.kind(),
        "ispd starting"
    );
    let signals = daemon::listen_for_signals();
    let d = Daemon::start(config, wiring).await?;
    let clean = d.run_until(signals).await;
    storage.close().await;
    tracing::info!(clean, "ispd stopped");
    Ok(())
}

/// `ispd once`: runs one job against the configured storage and routers.
pub async fn once(config: &Config, job: JobKind, dry_run: bool, json: bool, out: &mut dyn Write) -> u8 {
    let result = async {
        let (wiring, storage) = daemon::wire(config, false).await?;
        if !dry_run {
            daemon::apply_config(config, &wiring.repos).await?;
        }
        let runner = JobRunner::without_auto_delivery(daemon::build_engine(config, &wiring));
        // People who keep cron expect the SMS of a run to go out with it.
        let r = runner
            .run_then_deliver(job, RunOptions { dry_run }, Trigger::Cli)
            .await
            .map_err(|e| {
                if e.is_transient() {
                    DaemonError::Storage(e)
                } else {
                    DaemonError::Runtime(format!("{job}: {e}"))
                }
            });
        storage.close().await;
        r
    }
    .await;
    match result {
        Ok(report) => {
            let _ = if json {
                serde_json::to_string_pretty(&report)
                    .map(|s| writeln!(out, "{s}"))
                    .unwrap_or_else(|e| writeln!(out, "{{\"error\": \"{e}\"}}"))
            } else {
                write!(out, "{}", report::render_text(&report))
            };
            if report.failures.is_empty() {
                EXIT_OK
            } else {
                EXIT_FAILURES
            }
        }
        Err(e) => fail(out, &e),
    }
}

/// What `ispd check-routers` does.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Print JSON.
    pub json: bool,
    /// Largest acceptable clock skew, seconds.
    pub max_skew_secs: i64,
    /// Add the static-IP firewall rule where it is missing.
    pub fix: bool,
    /// The rule's `in-interface-list`.
    pub lan_interface_list: isp_core::domain::RosName,
}

/// The static-IP firewall rule on one router, as `check-routers` found (and fixed) it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleCheck {
    /// `present`, `disabled` or `missing` (after `--fix`: as it is now).
    pub state: Option<isp_core::ports::RuleState>,
    /// `--fix` added (or enabled) it.
    pub fixed: bool,
    /// The RouterOS command that adds it.
    pub command: String,
    /// Why it could not be checked or fixed.
    pub error: Option<String>,
}

impl RuleCheck {
    fn text(&self) -> String {
        use isp_core::ports::RuleState;
        match (&self.error, self.state) {
            (Some(e), _) => format!("NOT CHECKED: {e}"),
            (None, Some(RuleState::Present)) if self.fixed => "added (ok)".to_owned(),
            (None, Some(RuleState::Present)) => "ok".to_owned(),
            (None, Some(RuleState::Disabled)) => {
                format!("DISABLED; enable it, or add it with: {}", self.command)
            }
            (None, _) => format!("MISSING; add it with: {}", self.command),
        }
    }

    fn is_good(&self) -> bool {
        self.error.is_none() && self.state == Some(isp_core::ports::RuleState::Present)
    }
}

/// `ispd check-routers`: each router's connection and clock; on each enabled,
/// online router that has static-IP services (read from the database), the
/// static-IP firewall rule, added with `fix`.
pub async fn check_routers(config: &Config, opts: &CheckOptions, out: &mut dyn Write) -> u8 {
    let driver = match isp_routeros::driver::RouterOsDriver::new(Default::default()) {
        Ok(d) => d,
        Err(e) => return fail(out, &DaemonError::Config(e.to_string())),
    };
    let max_skew = opts.max_skew_secs;
    let (driver, _) = daemon::route_driver(config, std::sync::Arc::new(driver), None);
    let clock = SystemClock;
    let routers = config.routers();
    if routers.is_empty() {
        let _ = writeln!(out, "no routers configured");
        return EXIT_OK;
    }
    let checks =
        futures::future::join_all(routers.iter().map(|r| check_router(driver.as_ref(), &clock, r))).await;
    let good = checks.iter().all(|c| c.is_good(max_skew));
    let (rules, storage_error) = static_ip_rules(config, opts, driver.as_ref(), &routers, &checks).await;
    let rules_good = rules.values().all(RuleCheck::is_good);
    if opts.json {
        let list: Vec<serde_json::Value> = checks
            .iter()
            .map(|c| {
                let mut v = serde_json::to_value(c).unwrap_or_default();
                if let (Some(obj), Some(rule)) = (v.as_object_mut(), rules.get(&c.id)) {
                    obj.insert(
                        "static_ip_rule".into(),
                        serde_json::to_value(rule).unwrap_or_default(),
                    );
                }
                v
            })
            .collect();
        let _ = serde_json::to_string_pretty(&list).map(|s| writeln!(out, "{s}"));
    } else {
        for c in &checks {
            let tenant = config
                .tenants
                .iter()
                .find(|t| t.tenant.id.0 == c.tenant_id)
                .map(|t| t.tenant.slug.to_string())
                .unwrap_or_default();
            let line = if !c.enabled {
                "disabled".to_owned()
            } else if c.online {
                let skew = match c.clock_skew_secs {
                    Some(s) if s.abs() > max_skew => format!("clock skew {s:+} s (more than {max_skew} s!)"),
                    Some(s) => format!("clock skew {s:+} s"),
                    None => "clock unknown".to_owned(),
                };
                format!(
                    "online, {} ms, {} {}, {skew}",
                    c.latency_ms.unwrap_or(0),
                    c.identity.as_deref().unwrap_or("?"),
                    c.version.as_deref().unwrap_or("")
                )
            } else {
                format!("OFFLINE: {}", c.error.as_deref().unwrap_or("unknown error"))
            };
            let _ = writeln!(out, "{tenant}:{} ({}): {line}", c.name, c.address);
            if let Some(rule) = rules.get(&c.id) {
                let _ = writeln!(out, "  static-ip rule: {}", rule.text());
            }
        }
    }
    if let Some(e) = &storage_error {
        let _ = writeln!(out, "static-ip rules not checked: {e}");
    }
    if !good || !rules_good {
        EXIT_ROUTERS
    } else if storage_error.is_some() {
        EXIT_STORAGE
    } else {
        EXIT_OK
    }
}

/// The static-IP rule of every enabled, online router with a static-IP
/// service that is not terminated, by router id; or why the database could
/// not tell which routers those are.
async fn static_ip_rules(
    config: &Config,
    opts: &CheckOptions,
    driver: &dyn isp_core::ports::RouterDriver,
    routers: &[isp_core::domain::Router],
    checks: &[isp_core::runtime::RouterCheck],
) -> (std::collections::BTreeMap<i64, RuleCheck>, Option<String>) {
    use isp_core::domain::{Connection, ServiceStatus};
    let mut out = std::collections::BTreeMap::new();
    let storage = match crate::storage::Storage::open(&config.storage, false).await {
        Ok(s) => s,
        Err(e) => return (out, Some(format!("storage: {e}"))),
    };
    let spec = isp_core::ports::StaticIpRuleSpec {
        list: config.engine.static_ip_list.clone(),
        in_interface_list: opts.lan_interface_list.clone(),
    };
    let mut storage_error = None;
    for router in routers {
        let reachable = checks
            .iter()
            .any(|c| c.id == router.id.0 && c.enabled && c.online);
        if !reachable {
            continue;
        }
        let services = match storage.repos.services.on_router(router.id).await {
            Ok(s) => s,
            Err(e) => {
                storage_error = Some(format!("services of router {}: {e}", router.name));
                continue;
            }
        };
        let static_ip = services.iter().any(|s| {
            matches!(s.connection, Connection::StaticIp { .. }) && s.status != ServiceStatus::Terminated
        });
        if !static_ip {
            continue;
        }
        let mut check = RuleCheck {
            state: None,
            fixed: false,
            command: spec.command(),
            error: None,
        };
        match driver.check_static_ip_rule(router, &spec).await {
            Ok(state) => check.state = Some(state),
            Err(e) => check.error = Some(e.to_string()),
        }
        if opts.fix && check.error.is_none() && check.state != Some(isp_core::ports::RuleState::Present) {
            match driver.add_static_ip_rule(router, &spec).await {
                Ok(fixed) => {
                    check.fixed = fixed;
                    match driver.check_static_ip_rule(router, &spec).await {
                        Ok(state) => check.state = Some(state),
                        Err(e) => check.error = Some(e.to_string()),
                    }
                }
                Err(e) => check.error = Some(e.to_string()),
            }
        }
        out.insert(router.id.0, check);
    }
    storage.close().await;
    (out, storage_error)
}

async fn status(config: &Config, json: bool, out: &mut dyn Write) -> u8 {
    let result = async {
        let storage = crate::storage::Storage::open(&config.storage, false)
            .await
            .map_err(DaemonError::Storage)?;
        let (driver, radius) = daemon::route_driver(
            config,
            std::sync::Arc::new(
                isp_routeros::driver::RouterOsDriver::new(Default::default())
                    .map_err(|e| DaemonError::Config(e.to_string()))?,
            ),
            Some(&storage.repos),
        );
        let wiring = daemon::Wiring {
            repos: storage.repos.clone(),
            directory: std::sync::Arc::new(isp_core::memory::StaticDirectory::new(config.routers())),
            driver,
            sms: std::sync::Arc::new(isp_sms::LogSender::new()),
            clock: std::sync::Arc::new(SystemClock),
            radius,
        };
        let runner = JobRunner::new(daemon::build_engine(config, &wiring));
        let body = crate::api::health_body(
            &runner,
            wiring.directory.as_ref(),
            None,
            false,
            &config.cleartext_notes(),
        )
        .await
        .map_err(DaemonError::Storage)?;
        storage.close().await;
        Ok::<_, DaemonError>(body)
    }
    .await;
    let body = match result {
        Ok(b) => b,
        Err(e) => return fail(out, &e),
    };
    if json {
        let _ = serde_json::to_string_pretty(&body).map(|s| writeln!(out, "{s}"));
    } else {
        let _ = write!(out, "{}", render_status(&body));
    }
    if body.healthy {
        EXIT_OK
    } else {
        EXIT_FAILURES
    }
}

/// The health summary as text.
pub fn render_status(b: &crate::api::HealthBody) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "health: {}",
        if b.healthy { "healthy" } else { "NEEDS ATTENTION" }
    );
    for a in &b.attention {
        let _ = writeln!(s, "  ! {a}");
    }
    for c in &b.cleartext {
        let _ = writeln!(s, "  cleartext: {c}");
    }
    let _ = writeln!(
        s,
        "subscribers: {} active, {} expiring in 30 min, {} expired but still connected",
        b.statistics.total_active_users,
        b.statistics.expiring_in_30_min,
        b.statistics.expired_but_still_active
    );
    let _ = writeln!(
        s,
        "notices: {} with an unknown outcome (may have been delivered; never resent)",
        b.statistics.notices_outcome_unknown
    );
    for e in &b.expiring_soon {
        let _ = writeln!(
            s,
            "  expiring: {} at {} ({} min left)",
            e.phone_number, e.expires_at, e.remaining_minutes
        );
    }
    for o in &b.expired_not_disconnected {
        let _ = writeln!(
            s,
            "  NOT DISCONNECTED: {} expired {} ({} min ago, {} attempts)",
            o.phone_number, o.expired_at, o.overdue_minutes, o.attempts
        );
    }
    let _ = writeln!(
        s,
        "routers: {} online, {} offline, {} never checked",
        b.routers.online, b.routers.offline, b.routers.unchecked
    );
    for r in &b.routers.list {
        let state = match (r.enabled, r.online) {
            (false, _) => "disabled".to_owned(),
            (true, Some(true)) => "online".to_owned(),
            (true, Some(false)) => format!("OFFLINE ({})", r.last_error.as_deref().unwrap_or("?")),
            (true, None) => "never checked".to_owned(),
        };
        let _ = writeln!(s, "  {} (id {}): {state}", r.name, r.id);
    }
    s
}
