//! Jobs (use cases): load due work through the ports, apply a policy, act
//! through the router driver and the SMS sender, record audit events, and
//! return a [`JobReport`]. The same jobs run from the daemon's scheduler, from
//! `ispd once <job>` and from the admin API.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::time::Duration;
use tracing::Instrument;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{PhoneNumber, RosName, RouterId, TenantId};
use crate::error::{Error, Result};
use crate::ports::{Clock, Repositories, RouterDirectory, RouterDriver, SmsSender};

mod billing;
mod cleanup;
mod common;
mod disconnect;
mod grants;
pub use grants::{GrantOutcome, RouterAccess, RouterResult};
mod activate_vouchers;
mod health;
mod issue_vouchers;
pub use issue_vouchers::{
    voucher_code, VoucherBatch, MAX_PREFIX_LEN, MAX_VOUCHERS_PER_BATCH, VOUCHER_ALPHABET, VOUCHER_CODE_LEN,
};
mod provision;
pub use provision::ServiceChange;
mod reminders;
mod summary;
mod sync;
mod vouchers;
mod warn;

pub use health::MAX_CLOCK_SKEW_SECS;
pub use summary::{
    ExpiringSubscriber, HealthState, HealthSummary, OverdueSubscriber, DISCONNECT_GRACE, EXPIRING_SOON,
    SUMMARY_LIST_LIMIT,
};

use common::{RouterLimits, RunCtx};

/// The thirteen jobs (ARCHITECTURE.md, "Jobs").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// Disconnect expired hotspot subscribers from every router of their tenant.
    DisconnectExpired,
    /// SMS before hotspot expiry.
    WarnBeforeExpiry,
    /// Expire vouchers by their deadlines.
    ExpireVouchers,
    /// Reconcile the database with each router's live state.
    SyncRouters,
    /// Provision and deprovision ISP services.
    ProvisionServices,
    /// Monthly charges with catch-up, exactly once per period.
    MonthlyBilling,
    /// Payment and service-expiry reminders.
    PaymentReminders,
    /// Router health checks, alert on change.
    RouterHealth,
    /// Delete devices unseen for a while.
    DeviceCleanup,
    /// Delete old audit events.
    LogRetention,
    /// Send the SMS notices the other jobs reserved, within a time budget, so
    /// that a slow gateway never holds up enforcement.
    DeliverNotices,
    /// Finish the router work of grants that could not be done at once (a
    /// router down during the purchase, a daemon that died mid-grant).
    ApplyGrants,
    /// Record a voucher's first login (its usage time starts then), from a
    /// poll of the routers' active sessions.
    ActivateVouchers,
}

impl JobKind {
    /// Every job.
    pub const ALL: [JobKind; 13] = [
        JobKind::DisconnectExpired,
        JobKind::WarnBeforeExpiry,
        JobKind::ExpireVouchers,
        JobKind::SyncRouters,
        JobKind::ProvisionServices,
        JobKind::MonthlyBilling,
        JobKind::PaymentReminders,
        JobKind::RouterHealth,
        JobKind::DeviceCleanup,
        JobKind::LogRetention,
        JobKind::DeliverNotices,
        JobKind::ApplyGrants,
        JobKind::ActivateVouchers,
    ];

    /// The CLI / API name: `disconnect-expired`, ...
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::DisconnectExpired => "disconnect-expired",
            JobKind::WarnBeforeExpiry => "warn-before-expiry",
            JobKind::ExpireVouchers => "expire-vouchers",
            JobKind::SyncRouters => "sync-routers",
            JobKind::ProvisionServices => "provision-services",
            JobKind::MonthlyBilling => "monthly-billing",
            JobKind::PaymentReminders => "payment-reminders",
            JobKind::RouterHealth => "router-health",
            JobKind::DeviceCleanup => "device-cleanup",
            JobKind::LogRetention => "log-retention",
            JobKind::DeliverNotices => "deliver-notices",
            JobKind::ApplyGrants => "apply-grants",
            JobKind::ActivateVouchers => "activate-vouchers",
        }
    }

    /// The counts a reader expects in this job's closing line, zero or not
    /// ("0 users enabled" says the sync looked and found nothing to enable).
    pub fn headline_counts(&self) -> &'static [&'static str] {
        match self {
            JobKind::DisconnectExpired => &["users_disconnected", "devices_deactivated", "sms_sent"],
            JobKind::WarnBeforeExpiry => &["sms_sent"],
            JobKind::ExpireVouchers => &["vouchers_expired", "users_removed"],
            JobKind::SyncRouters => &["routers_synced", "users_enabled", "users_disabled"],
            JobKind::ProvisionServices => &["services_provisioned", "services_deprovisioned"],
            JobKind::MonthlyBilling => &["charges_created"],
            JobKind::PaymentReminders => &["sms_sent"],
            JobKind::RouterHealth => &["routers_online", "routers_offline"],
            JobKind::DeviceCleanup => &["devices_deleted"],
            JobKind::LogRetention => &["events_deleted"],
            JobKind::DeliverNotices => &["sms_sent", "sms_failed"],
            JobKind::ApplyGrants => &["users_enabled", "grants_pending"],
            JobKind::ActivateVouchers => &["vouchers_activated"],
        }
    }

    /// Inverse of [`JobKind::name`].
    pub fn parse(raw: &str) -> Result<Self> {
        JobKind::ALL.into_iter().find(|j| j.name() == raw).ok_or_else(|| {
            let names: Vec<&str> = JobKind::ALL.iter().map(|j| j.name()).collect();
            Error::invalid("job", raw, format!("expected one of {}", names.join(", ")))
        })
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to run a job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Report what would be done; change nothing (no router writes, no DB writes, no SMS).
    pub dry_run: bool,
}

/// One failed item in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobFailure {
    /// `subscriber:42`, `service:3`, ...
    pub subject: String,
    /// Router name, for router failures.
    pub router: Option<String>,
    /// Error text (never a secret).
    pub error: String,
    /// Whether it will be retried.
    pub transient: bool,
}

/// What a job run did: counts per outcome, per router, and failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobReport {
    /// Which job.
    pub job: JobKind,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub finished_at: DateTime<Utc>,
    /// Nothing was changed.
    pub dry_run: bool,
    /// Counts per outcome (`users_disconnected`, `devices_deactivated`, `sms_sent`, ...).
    pub counts: BTreeMap<String, u64>,
    /// Counts per router (`tenant-slug:Router1` -> `users_disconnected` -> 3).
    pub per_router: BTreeMap<String, BTreeMap<String, u64>>,
    /// Failed items.
    pub failures: Vec<JobFailure>,
}

impl JobReport {
    /// An empty report started at `now`.
    pub fn new(job: JobKind, now: DateTime<Utc>, dry_run: bool) -> Self {
        JobReport {
            job,
            started_at: now,
            finished_at: now,
            dry_run,
            counts: BTreeMap::new(),
            per_router: BTreeMap::new(),
            failures: Vec::new(),
        }
    }

    /// Adds `n` to a count.
    pub fn add(&mut self, key: &str, n: u64) {
        *self.counts.entry(key.to_owned()).or_default() += n;
    }

    /// Adds `n` to a router's count.
    pub fn add_router(&mut self, router: &str, key: &str, n: u64) {
        *self
            .per_router
            .entry(router.to_owned())
            .or_default()
            .entry(key.to_owned())
            .or_default() += n;
    }

    /// A count (0 when absent).
    pub fn count(&self, key: &str) -> u64 {
        self.counts.get(key).copied().unwrap_or(0)
    }

    /// Records a failure.
    pub fn fail(&mut self, subject: impl Into<String>, router: Option<&str>, error: &Error) {
        self.failures.push(JobFailure {
            subject: subject.into(),
            router: router.map(str::to_owned),
            error: error.to_string(),
            transient: error.is_transient(),
        });
    }
}

impl fmt::Display for JobReport {
    /// The closing line: `disconnect-expired complete: 3 users disconnected,
    /// 3 devices deactivated, 3 sms sent, 2 sessions removed, 0 failures`: the
    /// job's [headline counts](JobKind::headline_counts) always, zero or not,
    /// then the other counts that are not zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} complete{}: ",
            self.job,
            if self.dry_run { " (dry run)" } else { "" }
        )?;
        let heads = self.job.headline_counts();
        for k in heads {
            write!(f, "{} {}, ", self.count(k), k.replace('_', " "))?;
        }
        for (k, v) in &self.counts {
            if *v > 0 && !heads.contains(&k.as_str()) {
                write!(f, "{v} {}, ", k.replace('_', " "))?;
            }
        }
        write!(f, "{} failures", self.failures.len())
    }
}

/// Message templates; `{placeholders}` are filled by the jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Templates {
    /// Hotspot: before expiry. `{minutes}`, `{expires_at}`.
    pub hotspot_expires_soon: String,
    /// Hotspot: at expiry.
    pub hotspot_expired: String,
    /// PPP/VPN: 24 h / 3 h before. `{hours}`, `{expires_at}`.
    pub service_expires: String,
    /// ISP due date. `{due_date}`, `{amount}`.
    pub payment_due: String,
}

impl Default for Templates {
    fn default() -> Self {
        Templates {
            hotspot_expires_soon: "Your internet access expires in {minutes} minutes. Buy a new package to stay connected.".into(),
            hotspot_expired: "Your internet access has expired. Buy a new package to reconnect.".into(),
            service_expires: "Your internet service expires in {hours} hours ({expires_at}). Please renew to avoid disconnection.".into(),
            payment_due: "Your internet payment of {amount} is due on {due_date}. Please pay to stay connected.".into(),
        }
    }
}

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This daemon's claimant id (unique per process).
    pub holder: String,
    /// Items per claimed batch.
    pub batch_size: usize,
    /// How long a claim lasts if the claimant dies.
    pub lease_ttl: Duration,
    /// Concurrent commands per router.
    pub per_router_concurrency: usize,
    /// First retry back-off; doubles per attempt.
    pub retry_base: Duration,
    /// Longest back-off.
    pub retry_max: Duration,
    /// Devices unseen this long are deleted.
    pub device_retention: Duration,
    /// Audit events older than this are deleted.
    pub log_retention: Duration,
    /// The longest one SMS send may take; a send still running then is
    /// given up with status `unknown` (never resent). Notice batches are sized
    /// so that a batch finishes inside its lease.
    pub sms_send_timeout: Duration,
    /// How long one `deliver-notices` run keeps claiming new batches; what is
    /// left goes to the next run.
    pub notice_run_budget: Duration,
    /// Address list for static-IP services.
    pub static_ip_list: RosName,
    /// Message templates.
    pub templates: Templates,
    /// Who gets an SMS when a router of the tenant goes offline or comes back
    /// (reserved by `router-health`, at most one per phone and change; it goes
    /// out with the next notice delivery).
    pub alert_phones: BTreeMap<TenantId, Vec<PhoneNumber>>,
    /// How long a generated voucher may wait for its first login before it
    /// expires unused (seed 003: 7 days).
    pub voucher_activation_window: Duration,
    /// The longest one job run (or one read of the watcher) may take. A run
    /// still going then is dropped and fails as `unavailable`, which frees its
    /// job for the next run; its leases run out and its work is taken up
    /// again, as after a crash. This is the client-side bound on a database
    /// or router call that never answers (a connection black-holed by a
    /// firewall that lost its state): the server's `statement_timeout` cannot
    /// reach such a client, and the SQL driver has no per-call deadline.
    pub run_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            holder: "isp".into(),
            batch_size: 500,
            lease_ttl: Duration::from_secs(120),
            per_router_concurrency: 4,
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            sms_send_timeout: Duration::from_secs(30),
            notice_run_budget: Duration::from_secs(60),
            device_retention: Duration::from_secs(30 * 86_400),
            log_retention: Duration::from_secs(180 * 86_400),
            static_ip_list: RosName::parse("static_ip_list", "isp-allowed")
                .unwrap_or_else(|_| unreachable!()),
            templates: Templates::default(),
            alert_phones: BTreeMap::new(),
            voucher_activation_window: Duration::from_secs(7 * 86_400),
            run_timeout: Duration::from_secs(300),
        }
    }
}

impl EngineConfig {
    /// Checks that one router call (`router_timeout`: the longest a router
    /// command may take) and one SMS send (`sms_send_timeout`) end within a
    /// lease (`lease_ttl`). A job renews an item's lease just before each
    /// router write or SMS send on it, and that keeps another daemon off the
    /// item only while the write ends before the renewed lease does.
    pub fn check_timeouts(&self, router_timeout: Duration) -> Result<()> {
        for (name, timeout) in [
            ("router command timeout", router_timeout),
            ("sms_send_timeout", self.sms_send_timeout),
        ] {
            if timeout >= self.lease_ttl {
                return Err(Error::invalid(
                    "lease_ttl",
                    format!("{} s", self.lease_ttl.as_secs_f64()),
                    format!(
                        "must be longer than the {name} ({} s): a lease must outlast one router call or SMS send",
                        timeout.as_secs_f64()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The ports an engine works through.
#[derive(Debug, Clone)]
pub struct EngineDeps {
    /// Storage.
    pub repos: Repositories,
    /// Routers and credentials.
    pub directory: Arc<dyn RouterDirectory>,
    /// Router driver.
    pub driver: Arc<dyn RouterDriver>,
    /// SMS sender.
    pub sms: Arc<dyn SmsSender>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Runs jobs. Cheap to clone; share one per process (clones share the
/// per-router concurrency limits).
#[derive(Debug, Clone)]
pub struct Engine {
    deps: EngineDeps,
    config: Arc<EngineConfig>,
    limits: Arc<RouterLimits>,
    runs: Arc<AtomicU64>,
}

impl Engine {
    /// An engine over these ports.
    pub fn new(deps: EngineDeps, config: EngineConfig) -> Self {
        let limits = Arc::new(RouterLimits::new(config.per_router_concurrency));
        Engine {
            deps,
            config: Arc::new(config),
            limits,
            runs: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The ports.
    pub fn deps(&self) -> &EngineDeps {
        &self.deps
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Runs one job to completion and reports what it did.
    ///
    /// Item failures (a router down, an SMS refused) are in the report and
    /// retried later; `Err` means the job could not run at all (its storage
    /// failed), and whatever it had claimed is retried when the claims expire.
    ///
    /// Every line the run logs is inside a `job` span with the job's name and
    /// a run number unique in this process, and each router's share of it in a
    /// `router` span.
    pub async fn run(&self, job: JobKind, opts: RunOptions) -> Result<JobReport> {
        let run = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        let span = tracing::info_span!("job", job = %job, run);
        let limit = self.config.run_timeout;
        match tokio::time::timeout(limit, self.run_in_span(job, opts).instrument(span)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                let e = run_timed_out(&job.to_string(), limit);
                tracing::error!(job = %job, run, error = %e, "job run dropped");
                Err(e)
            }
        }
    }

    async fn run_in_span(&self, job: JobKind, opts: RunOptions) -> Result<JobReport> {
        let mut ctx = RunCtx::new(self, job, opts.dry_run);
        let outcome = match job {
            JobKind::DisconnectExpired => self.disconnect_expired(&mut ctx).await,
            JobKind::WarnBeforeExpiry => self.warn_before_expiry(&mut ctx).await,
            JobKind::ExpireVouchers => self.expire_vouchers(&mut ctx).await,
            JobKind::SyncRouters => self.sync_routers(&mut ctx).await,
            JobKind::ProvisionServices => self.provision_services(&mut ctx).await,
            JobKind::MonthlyBilling => self.monthly_billing(&mut ctx).await,
            JobKind::PaymentReminders => self.payment_reminders(&mut ctx).await,
            JobKind::RouterHealth => self.router_health(&mut ctx).await,
            JobKind::DeviceCleanup => self.device_cleanup(&mut ctx).await,
            JobKind::LogRetention => self.log_retention(&mut ctx).await,
            JobKind::DeliverNotices => {
                self.deliver_notices(&mut ctx).await;
                Ok(())
            }
            JobKind::ApplyGrants => self.apply_grants(&mut ctx).await,
            JobKind::ActivateVouchers => self.activate_vouchers(&mut ctx).await,
        };
        // Whatever was done before a storage failure is still on record.
        ctx.flush_audit().await;
        if let Err(e) = outcome {
            tracing::error!(job = %job, error = %e, "job failed");
            return Err(e);
        }
        let report = ctx.into_report();
        if report.counts.is_empty() && report.failures.is_empty() {
            // The real-time watcher runs the deadline-driven jobs on every
            // wake-up (every few seconds): a run that found nothing to do is
            // not worth a line at info.
            tracing::debug!(job = %job, dry_run = report.dry_run, summary = %report, "job finished");
        } else {
            tracing::info!(job = %job, dry_run = report.dry_run, failures = report.failures.len(), summary = %report, "job finished");
        }
        Ok(report)
    }

    /// The earliest instant after now at which a deadline-driven job has work:
    /// the next subscriber expiry, hotspot warning, voucher deadline, service
    /// reminder or expiry, or a tenant's local midnight (billing and due dates
    /// move then). It may be earlier than needed, never later; items waiting on
    /// a retry back-off are left to the scheduler's periodic sweep.
    pub async fn next_wakeup(&self) -> Result<Option<DateTime<Utc>>> {
        self.compute_next_wakeup().await
    }
}

/// Router name for reports: `tenant-slug:router-name` when the tenant is known.
pub fn router_label(tenant_slug: Option<&str>, router_name: &str) -> String {
    match tenant_slug {
        Some(t) => format!("{t}:{router_name}"),
        None => router_name.to_owned(),
    }
}

/// Keeps the `RouterId` import meaningful for implementors of per-router maps.
pub type PerRouter<T> = BTreeMap<RouterId, T>;

/// The error of a run (or a watcher read) that outlived
/// [`EngineConfig::run_timeout`].
pub(crate) fn run_timed_out(what: &str, limit: Duration) -> Error {
    Error::unavailable(
        what,
        format!(
            "did not finish within {} s (run_timeout): a database or router call did not answer; \
             dropped, its work is taken up again when its leases run out",
            limit.as_secs_f64()
        ),
    )
}
