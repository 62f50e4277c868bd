//! Wiring and lifecycle: storage + routers + SMS + clock -> engine -> runner,
//! scheduler and admin API; graceful stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use isp_core::domain::{PlanId, TenantId};
use isp_core::jobs::{Engine, EngineDeps};
use isp_core::memory::StaticDirectory;
use isp_core::ports::{Clock, RadiusSessionRepo, Repositories, RouterDirectory, RouterDriver, SmsSender};
use isp_core::runtime::{JobRunner, MeteredDriver, Runtime, Shutdown, SystemClock};
use isp_radius::{Authorizer, NasTable, RadiusDriver, RadiusServer, RetryPolicy, RoutedDriver, ServerConfig};
use isp_routeros::driver::{DriverConfig, RouterOsDriver};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::{self, ApiState};
use crate::config::{AdminConfig, Config};
use crate::storage::Storage;
use crate::telemetry;

/// Why the daemon could not start or run. Each kind has its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is wrong (exit code 2).
    #[error("configuration: {0}")]
    Config(String),
    /// The storage cannot be reached or is incompatible (exit code 3).
    #[error("storage: {0}")]
    Storage(isp_core::Error),
    /// Anything else at run time (exit code 1).
    #[error("{0}")]
    Runtime(String),
}

impl DaemonError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::Config(_) => crate::cli::EXIT_CONFIG,
            DaemonError::Storage(_) => crate::cli::EXIT_STORAGE,
            DaemonError::Runtime(_) => crate::cli::EXIT_FAILURES,
        }
    }
}

/// The ports a daemon works through.
#[derive(Debug, Clone)]
pub struct Wiring {
    /// Storage.
    pub repos: Repositories,
    /// Routers.
    pub directory: Arc<dyn RouterDirectory>,
    /// Router driver (wrapped in a [`MeteredDriver`] by [`build_engine`]).
    pub driver: Arc<dyn RouterDriver>,
    /// SMS.
    pub sms: Arc<dyn SmsSender>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// RADIUS mode: the Disconnect-Request driver (`None` without `[radius]`).
    /// The sessions accounting reports are in `repos.radius_sessions`.
    pub radius: Option<RadiusParts>,
}

/// The RADIUS pieces the driver and the servers share.
#[derive(Debug, Clone)]
pub struct RadiusParts {
    /// The Disconnect/CoA driver of the RADIUS routers.
    pub driver: Arc<RadiusDriver>,
}

/// The driver for the configured routers: routers with `transport =
/// "radius"` go to the Disconnect-Request driver, the others to `routeros`.
///
/// The driver finds sessions in `repos.radius_sessions`, where the
/// accounting server records them, and shows a RADIUS router's vouchers and
/// PPPoE services as its users (they live in the database). Without `repos`
/// (router checks) it knows no session and reading those menus of a RADIUS
/// router is an error.
pub fn route_driver(
    config: &Config,
    routeros: Arc<dyn RouterDriver>,
    repos: Option<&Repositories>,
) -> (Arc<dyn RouterDriver>, Option<RadiusParts>) {
    let Some(radius) = &config.radius else {
        return (routeros, None);
    };
    let sessions: Arc<dyn RadiusSessionRepo> = match repos {
        Some(r) => r.radius_sessions.clone(),
        None => isp_core::memory::repositories().radius_sessions,
    };
    let mut driver = RadiusDriver::new(
        NasTable::new(radius.nases.iter().cloned()),
        sessions,
        RetryPolicy {
            attempts: radius.disconnect_attempts,
            first_timeout: radius.disconnect_timeout,
        },
    );
    if let Some(repos) = repos {
        driver = driver.with_repositories(repos.clone());
    }
    let driver = Arc::new(driver);
    let routed: Arc<dyn RouterDriver> = Arc::new(RoutedDriver::new(driver.clone(), routeros));
    (routed, Some(RadiusParts { driver }))
}

/// Builds the production wiring from a configuration: the configured
/// storage (migrated if `storage.auto_migrate` or `migrate`), a
/// [`StaticDirectory`] of the configured routers, the RouterOS driver, the
/// configured SMS gateway and the system clock.
pub async fn wire(config: &Config, migrate: bool) -> Result<(Wiring, Storage), DaemonError> {
    let sms = config
        .sms
        .build()
        .map_err(|e| DaemonError::Config(format!("[sms]: {e}")))?;
    let driver = RouterOsDriver::new(DriverConfig {
        per_router_concurrency: config.engine.per_router_concurrency.max(1),
        ..DriverConfig::default()
    })
    .map_err(|e| DaemonError::Config(format!("router driver: {e}")))?;
    let storage = Storage::open(&config.storage, migrate || config.storage.auto_migrate)
        .await
        .map_err(DaemonError::Storage)?;
    let (driver, radius) = route_driver(config, Arc::new(driver), Some(&storage.repos));
    let wiring = Wiring {
        repos: storage.repos.clone(),
        directory: Arc::new(StaticDirectory::new(config.routers())),
        driver,
        sms,
        clock: Arc::new(SystemClock),
        radius,
    };
    Ok((wiring, storage))
}

/// An engine over `wiring` (the driver measured for `/metrics`).
pub fn build_engine(config: &Config, wiring: &Wiring) -> Engine {
    let mut engine_config = config.engine.clone();
    engine_config.alert_phones = alert_phones(config);
    Engine::new(
        EngineDeps {
            repos: wiring.repos.clone(),
            directory: wiring.directory.clone(),
            driver: Arc::new(MeteredDriver::new(wiring.driver.clone())),
            sms: wiring.sms.clone(),
            clock: wiring.clock.clone(),
        },
        engine_config,
    )
}

/// Writes the configured tenants (upsert) and plans: a missing plan is added;
/// a plan whose price, duration or rate limit changed in the configuration is
/// updated, so new grants, vouchers and charges use the new terms, and the
/// change is reported (a warning and an audit event `plan_changed`) with what
/// keeps the old terms: vouchers already generated keep their own duration.
pub async fn apply_config(config: &Config, repos: &Repositories) -> Result<(), DaemonError> {
    for t in &config.tenants {
        repos
            .tenants
            .upsert(&t.tenant)
            .await
            .map_err(DaemonError::Storage)?;
        let existing = repos
            .plans
            .list(t.tenant.id)
            .await
            .map_err(DaemonError::Storage)?;
        for p in &t.plans {
            match existing.iter().find(|e| e.name == p.name) {
                Some(e) if e.price != p.price || e.duration != p.duration || e.rate_limit != p.rate_limit => {
                    let updated = repos.plans.update(e.id, p).await.map_err(DaemonError::Storage)?;
                    let show = |d: Option<isp_core::domain::RosDuration>| {
                        d.map_or("none".to_owned(), |d| d.to_string())
                    };
                    let change = format!(
                        "price {} -> {}, duration {} -> {}, rate limit {} -> {}; new grants, vouchers and \
                         charges use the new terms, vouchers already generated keep their duration",
                        e.price,
                        updated.price,
                        show(e.duration),
                        show(updated.duration),
                        e.rate_limit.map_or("none".to_owned(), |r| r.to_string()),
                        updated.rate_limit.map_or("none".to_owned(), |r| r.to_string()),
                    );
                    tracing::warn!(tenant = %t.tenant.slug, plan = %p.name, change = %change, "plan changed by the configuration");
                    let event = isp_core::domain::AuditEvent {
                        at: chrono::Utc::now(),
                        tenant_id: Some(t.tenant.id),
                        action: "plan_changed".into(),
                        subject: format!("plan:{}", p.name),
                        router_id: None,
                        outcome: isp_core::domain::AuditOutcome::Success,
                        reason: Some(change),
                    };
                    repos.audit.append(&[event]).await.map_err(DaemonError::Storage)?;
                }
                Some(_) => {}
                None => {
                    let plan = repos.plans.insert(p).await.map_err(DaemonError::Storage)?;
                    tracing::info!(tenant = %t.tenant.slug, plan = %plan.name, id = plan.id.0, "plan added");
                }
            }
        }
    }
    Ok(())
}

/// A plan id by tenant and name (the demo and tests).
pub async fn plan_id(repos: &Repositories, tenant: TenantId, name: &str) -> isp_core::Result<PlanId> {
    repos
        .plans
        .list(tenant)
        .await?
        .into_iter()
        .find(|p| p.name.as_str() == name)
        .map(|p| p.id)
        .ok_or_else(|| isp_core::Error::not_found("plan", name))
}

/// Each tenant's `alert_phones`.
pub fn alert_phones(
    config: &Config,
) -> std::collections::BTreeMap<TenantId, Vec<isp_core::domain::PhoneNumber>> {
    config
        .tenants
        .iter()
        .filter(|t| !t.alert_phones.is_empty())
        .map(|t| (t.tenant.id, t.alert_phones.clone()))
        .collect()
}

/// A running daemon: scheduler tasks, the watcher and (optionally) the admin API.
#[derive(Debug)]
pub struct Daemon {
    runtime: Runtime,
    directory: Arc<dyn RouterDirectory>,
    api: Option<(SocketAddr, JoinHandle<std::io::Result<()>>)>,
    radius: Option<RadiusServer>,
    grace: Duration,
}

impl Daemon {
    /// Starts the scheduler, the watcher and, when `config.admin` is set, the
    /// admin API on `config.admin.listen` (port 0 picks a free port: see
    /// [`Daemon::api_addr`]).
    pub async fn start(config: &Config, wiring: Wiring) -> Result<Daemon, DaemonError> {
        let engine = build_engine(config, &wiring);
        let runner = JobRunner::new(engine);
        let shutdown = Shutdown::new();
        let api = match &config.admin {
            Some(admin) => Some(start_api(admin, &runner, &wiring, config, &shutdown).await?),
            None => {
                tracing::info!("admin API disabled: no admin token configured");
                None
            }
        };
        let radius = match (&config.radius, &wiring.radius) {
            (Some(rc), Some(_)) => Some(start_radius(rc, &wiring).await?),
            _ => None,
        };
        let runtime = Runtime::start_with(runner, &config.scheduler, shutdown);
        Ok(Daemon {
            runtime,
            directory: wiring.directory,
            api,
            radius,
            grace: config.scheduler.shutdown_grace,
        })
    }

    /// Where the RADIUS servers listen (authentication, accounting).
    pub fn radius_addrs(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.radius.as_ref().map(|r| (r.auth_addr(), r.acct_addr()))
    }

    /// The RADIUS servers (counters, sessions), when configured.
    pub fn radius(&self) -> Option<&RadiusServer> {
        self.radius.as_ref()
    }

    /// The job runner (run a job, nudge the watcher).
    pub fn runner(&self) -> &JobRunner {
        self.runtime.runner()
    }

    /// The router directory.
    pub fn directory(&self) -> &Arc<dyn RouterDirectory> {
        &self.directory
    }

    /// Where the admin API listens.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api.as_ref().map(|(a, _)| *a)
    }

    /// The shutdown signal (trigger it to stop).
    pub fn shutdown_signal(&self) -> Shutdown {
        self.runtime.shutdown_signal()
    }

    /// Stops: no new runs start; runs in progress get `shutdown_grace` to
    /// finish, then are cut off (their items stay leased and are retried later:
    /// nothing unconfirmed is ever marked done). Returns whether everything
    /// finished within the grace period.
    pub async fn stop(mut self) -> bool {
        let api = self.api.take();
        if let Some(radius) = self.radius.take() {
            radius.shutdown().await;
        }
        let drained = self.runtime.stop().await;
        let api_done = match api {
            Some((_, task)) => tokio::time::timeout(self.grace, task).await.is_ok(),
            None => true,
        };
        drained && api_done
    }

    /// Runs until SIGINT or SIGTERM, then stops gracefully.
    pub async fn run_until_signal(self) -> bool {
        self.run_until(wait_for_signal()).await
    }

    /// Runs until `signal` resolves (e.g. [`listen_for_signals`], installed
    /// before the daemon started), then stops gracefully.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) -> bool {
        signal.await;
        tracing::info!(
            grace_secs = self.grace.as_secs(),
            "shutting down: finishing runs in progress"
        );
        self.stop().await
    }
}

async fn start_radius(
    config: &crate::config::RadiusConfig,
    wiring: &Wiring,
) -> Result<RadiusServer, DaemonError> {
    let server_config = ServerConfig {
        auth_listen: config.auth_listen,
        acct_listen: config.acct_listen,
        interim_interval: config.interim_interval,
        duplicate_window: Duration::from_secs(30),
        max_in_flight: 256,
        session_retention: config.session_retention,
    };
    RadiusServer::start(
        server_config,
        NasTable::new(config.nases.iter().cloned()),
        Authorizer::new(wiring.repos.clone(), wiring.clock.clone()),
        wiring.repos.radius_sessions.clone(),
    )
    .await
    .map_err(|e| {
        DaemonError::Runtime(format!(
            "RADIUS: cannot listen on {} and {}: {e}",
            config.auth_listen, config.acct_listen
        ))
    })
}

async fn start_api(
    admin: &AdminConfig,
    runner: &JobRunner,
    wiring: &Wiring,
    config: &Config,
    shutdown: &Shutdown,
) -> Result<(SocketAddr, JoinHandle<std::io::Result<()>>), DaemonError> {
    let listener = TcpListener::bind(admin.listen)
        .await
        .map_err(|e| DaemonError::Runtime(format!("admin API: cannot listen on {}: {e}", admin.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| DaemonError::Runtime(format!("admin API: {e}")))?;
    let state = ApiState {
        runner: runner.clone(),
        directory: wiring.directory.clone(),
        token: admin.token.clone(),
        metrics: telemetry::prometheus(),
        watcher_expected: config.scheduler.watcher_enabled,
        cleartext: config.cleartext_notes(),
    };
    let app = api::router(state, admin.body_limit);
    let limits = api::ServeLimits {
        header_read_timeout: admin.header_read_timeout,
        request_timeout: admin.request_timeout,
        max_connections: admin.max_connections,
    };
    let task = tokio::spawn(api::serve(listener, app, shutdown.clone(), limits));
    tracing::info!(%addr, "admin API listening (bearer token required)");
    Ok((addr, task))
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn wait_for_signal() {
    listen_for_signals().await;
}

/// Installs the SIGINT and SIGTERM handlers now, and returns what resolves on
/// either. Call it before starting the daemon, so that a signal that arrives
/// while it starts stops it gracefully instead of killing the process.
pub fn listen_for_signals() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                (term, int) => {
                    let e = term
                        .err()
                        .or(int.err())
                        .map(|e| e.to_string())
                        .unwrap_or_default();
                    tracing::warn!(error = %e, "cannot listen for SIGTERM or SIGINT; falling back to Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
