//! The admin HTTP API (axum): JSON, bearer token required on every route.
//!
//! | route | what |
//! |---|---|
//! | `GET /api/health` | watcher state, counts, `expiring_soon`, `expired_not_disconnected`, routers online/offline, `healthy` / `needs_attention` |
//! | `POST /api/jobs/{job}` | runs a job now (body `{"dry_run": true}` or `?dry_run=true` optional); returns its report |
//! | `POST /api/services/{id}/provision` | makes the service active and runs provisioning now |
//! | `POST /api/services/{id}/deprovision` | suspends the service and runs provisioning now |
//! | `GET /api/routers/{id}` | the router, its last known state and, in RADIUS mode, who is online there (from accounting) |
//! | `GET /api/routers/{id}/check` | logs in to the router, reads identity and clock |
//! | `GET /metrics` | Prometheus metrics |
//!
//! Subscribers, grants, revokes, vouchers and the audit log: see
//! [`api_access`](crate::api_access). `GET /` and `/console/*` are the
//! operator console (HTML, its own login and session cookie), outside the
//! bearer-token layer.
//!
//! A missing or wrong token gets `401` with `WWW-Authenticate: Bearer` and a
//! body that never contains what was sent. Tokens are compared in constant
//! time. Bodies are limited in size (`413`); malformed JSON gets `400` with a
//! clear message.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use isp_core::domain::{Connection, RadiusSession, RouterId, Service, ServiceId, ServiceStatus, Transport};
use isp_core::jobs::{HealthState, HealthSummary, JobKind, JobReport, RunOptions};
use isp_core::ports::RouterDirectory;
use isp_core::Error;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use crate::config::AdminToken;
use isp_core::runtime::{check_router, JobRunner, LastRun, RouterCheck, Shutdown, Trigger, WatcherState};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// Runs jobs.
    pub runner: JobRunner,
    /// Routers.
    pub directory: Arc<dyn RouterDirectory>,
    /// The bearer token.
    pub token: AdminToken,
    /// Prometheus handle (`None`: `/metrics` answers 503).
    pub metrics: Option<PrometheusHandle>,
    /// Whether the watcher is meant to run (a stopped watcher then needs attention).
    pub watcher_expected: bool,
    /// [`Config::cleartext_notes`](crate::config::Config::cleartext_notes), shown in `/api/health`.
    pub cleartext: Vec<String>,
}

/// The routes, with auth and the body limit.
pub fn router(state: ApiState, body_limit: usize) -> axum::Router {
    let state = Arc::new(state);
    axum::Router::new()
        .route("/api/health", get(health))
        .route("/api/jobs/{job}", post(run_job))
        .route("/api/services/{id}/provision", post(provision))
        .route("/api/services/{id}/deprovision", post(deprovision))
        .route("/api/routers/{id}", get(show_router))
        .route("/api/routers/{id}/check", get(check))
        .route("/metrics", get(metrics))
        .merge(crate::api_access::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state.clone())
        // The console has its own sessions: outside the bearer-token layer.
        .merge(crate::console::routes(state, body_limit))
}

/// Limits of the admin HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// A client that has not sent its request headers by then is disconnected.
    pub header_read_timeout: std::time::Duration,
    /// A request that takes longer gets `408`; a job run it started still finishes.
    pub request_timeout: std::time::Duration,
    /// Connections served at once; one more is closed at once.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_read_timeout: std::time::Duration::from_secs(10),
            request_timeout: std::time::Duration::from_secs(300),
            max_connections: 256,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` triggers, within `limits`:
/// HTTP/1.1 with a header read timeout (a slow client cannot hold a
/// connection open by trickling headers), a request timeout, and a cap on
/// open connections. On shutdown, connections finish their request in flight.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: Shutdown,
    limits: ServeLimits,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let app = app.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "admin API: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                max = limits.max_connections,
                "admin API: too many connections; one refused"
            );
            drop(stream);
            continue;
        };
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(
                TokioIo::new(stream),
                // The peer address, for the console's per-client login limit.
                TowerToHyperService::new(tower_http::add_extension::AddExtension::new(
                    app.clone(),
                    axum::extract::ConnectInfo(peer),
                )),
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "admin API: connection ended with an error");
            }
            drop(slot);
        });
    }
    graceful.shutdown().await;
    Ok(())
}

/// A JSON error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::InvalidInput { .. } => StatusCode::BAD_REQUEST,
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "success": false, "error": self.message })),
        )
            .into_response()
    }
}

async fn auth(State(state): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    let ok = match presented {
        Some(p) => bool::from(p.as_bytes().ct_eq(state.token.expose().as_bytes())),
        None => false,
    };
    if !ok {
        tracing::warn!(
            path = %req.uri().path(),
            reason = if presented.is_some() { "wrong token" } else { "no bearer token" },
            "admin API: refused"
        );
        let mut resp =
            ApiError::new(StatusCode::UNAUTHORIZED, "missing or invalid bearer token").into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"ispd\""),
        );
        return resp;
    }
    next.run(req).await
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}

/// The `/api/health` body (and `ispd status --json`).
#[derive(Debug, Clone, Serialize)]
pub struct HealthBody {
    /// The request worked.
    pub success: bool,
    /// `healthy` or `needs_attention`.
    pub health: HealthState,
    /// `health == healthy`.
    pub healthy: bool,
    /// The real-time watcher (`None` when read from the database by `ispd status`).
    pub watcher: Option<WatcherState>,
    /// Counts.
    pub statistics: Statistics,
    /// Subscribers expiring within 30 minutes.
    pub expiring_soon: Vec<isp_core::jobs::ExpiringSubscriber>,
    /// Expired but not yet confirmed disconnected.
    pub expired_not_disconnected: Vec<isp_core::jobs::OverdueSubscriber>,
    /// Routers.
    pub routers: RoutersBody,
    /// Who is online on the routers in RADIUS mode, as their accounting
    /// reported it (at most [`RADIUS_SESSIONS_SHOWN`], oldest first per router).
    pub radius_sessions: Vec<RadiusSession>,
    /// Last run of each job in this process.
    pub jobs: BTreeMap<JobKind, LastRun>,
    /// When each job runs next (its schedule or the watcher's next deadline;
    /// empty when no scheduler runs in this process).
    pub next_runs: BTreeMap<JobKind, isp_core::runtime::NextRun>,
    /// Removals and enforcement lag per minute over the last hour (this
    /// process's runs, oldest minute first).
    pub last_hour: Vec<isp_core::runtime::metrics::MinuteStats>,
    /// Why `needs_attention`, in words.
    pub attention: Vec<String>,
    /// What crosses the network in clear (routers on the plain API, an admin
    /// API beyond loopback without TLS).
    pub cleartext: Vec<String>,
    /// When computed.
    pub timestamp: DateTime<Utc>,
}

/// Counts, as seed 001 names them.
#[derive(Debug, Clone, Serialize)]
pub struct Statistics {
    /// Active subscribers with time left.
    pub total_active_users: u64,
    /// Expiring within 30 minutes.
    pub expiring_in_30_min: u64,
    /// Expired but still active (not yet confirmed disconnected).
    pub expired_but_still_active: u64,
    /// Notices whose send's outcome is unknown (the gateway may have delivered them; never resent).
    pub notices_outcome_unknown: u64,
}

/// Router counts and last known state.
#[derive(Debug, Clone, Serialize)]
pub struct RoutersBody {
    /// Online at the last check.
    pub online: u64,
    /// Offline at the last check.
    pub offline: u64,
    /// Never checked.
    pub unchecked: u64,
    /// Each router.
    pub list: Vec<RouterState>,
}

/// One router's last known state.
#[derive(Debug, Clone, Serialize)]
pub struct RouterState {
    /// Id.
    pub id: i64,
    /// Tenant.
    pub tenant_id: i64,
    /// Name.
    pub name: String,
    /// Enabled in the configuration.
    pub enabled: bool,
    /// How the engine reaches it (`api`, `api-ssl`, `rest`, `radius`).
    pub transport: Transport,
    /// In RADIUS mode: how many sessions its accounting reports live.
    pub radius_online: Option<u64>,
    /// Online at the last check (`None`: never checked).
    pub online: Option<bool>,
    /// Last check.
    pub checked_at: Option<DateTime<Utc>>,
    /// Router clock minus ours.
    pub clock_skew_secs: Option<i64>,
    /// RouterOS version at the last check.
    pub version: Option<String>,
    /// Last error.
    pub last_error: Option<String>,
}

/// Live RADIUS sessions listed in the health body (the counts cover all).
pub const RADIUS_SESSIONS_SHOWN: usize = 500;

/// Builds the health body from the engine's summary, the watcher and the last runs.
pub async fn health_body(
    runner: &JobRunner,
    directory: &dyn RouterDirectory,
    watcher: Option<WatcherState>,
    watcher_expected: bool,
    cleartext: &[String],
) -> isp_core::Result<HealthBody> {
    let engine = runner.engine();
    let s: HealthSummary = engine.health_summary().await?;
    let routers = directory.all_routers().await?;
    let statuses = engine.deps().repos.router_status.list().await?;
    let mut radius_sessions = Vec::new();
    let mut radius_online = BTreeMap::new();
    for r in routers.iter().filter(|r| r.transport == Transport::Radius) {
        let live = engine.deps().repos.radius_sessions.live_on_router(r.id).await?;
        radius_online.insert(r.id, live.len() as u64);
        let room = RADIUS_SESSIONS_SHOWN.saturating_sub(radius_sessions.len());
        radius_sessions.extend(live.into_iter().take(room));
    }
    let list: Vec<RouterState> = routers
        .iter()
        .map(|r| {
            let st = statuses.iter().find(|s| s.router_id == r.id);
            RouterState {
                id: r.id.0,
                tenant_id: r.tenant_id.0,
                name: r.name.clone(),
                enabled: r.enabled,
                transport: r.transport,
                radius_online: radius_online.get(&r.id).copied(),
                online: st.map(|s| s.online),
                checked_at: st.map(|s| s.checked_at),
                clock_skew_secs: st.and_then(|s| s.clock_skew_secs),
                version: st.and_then(|s| s.version.clone()),
                last_error: st.and_then(|s| s.last_error.clone()),
            }
        })
        .collect();
    let mut attention = Vec::new();
    let mut health = s.health;
    if s.health == HealthState::NeedsAttention {
        if s.routers_offline > 0 {
            attention.push(format!("{} router(s) offline", s.routers_offline));
        }
        let grace = isp_core::jobs::DISCONNECT_GRACE;
        let late = s.expired_beyond_grace;
        if late > 0 {
            attention.push(format!(
                "{late} subscriber(s) expired more than {} s ago and not confirmed disconnected",
                grace.num_seconds()
            ));
        }
    }
    let jobs = runner.last_runs();
    // A run that failed as a whole (storage unwritable, unreachable) did
    // nothing; say why, or health stays green while no expiry is recorded.
    for (job, run) in jobs.iter().filter(|(_, r)| !r.ok) {
        health = HealthState::NeedsAttention;
        attention.push(format!("the last {job} run failed: {}", run.summary));
    }
    if let Some(w) = &watcher {
        if watcher_expected && !w.running {
            health = HealthState::NeedsAttention;
            attention.push("the real-time expiry watcher is not running".into());
        }
        if let Some(e) = &w.last_error {
            health = HealthState::NeedsAttention;
            attention.push(format!("the watcher cannot read the database: {e}"));
        }
    }
    Ok(HealthBody {
        success: true,
        health,
        healthy: health == HealthState::Healthy,
        watcher,
        statistics: Statistics {
            total_active_users: s.total_active_users,
            expiring_in_30_min: s.expiring_in_30_min,
            expired_but_still_active: s.expired_but_still_active,
            notices_outcome_unknown: s.notices_outcome_unknown,
        },
        expiring_soon: s.expiring_soon,
        expired_not_disconnected: s.expired_not_disconnected,
        routers: RoutersBody {
            online: s.routers_online,
            offline: s.routers_offline,
            unchecked: s.routers_unchecked,
            list,
        },
        radius_sessions,
        jobs,
        next_runs: runner.next_runs(),
        last_hour: runner.last_hour(),
        attention,
        cleartext: cleartext.to_vec(),
        timestamp: s.timestamp,
    })
}

async fn health(State(state): State<Arc<ApiState>>) -> Result<Json<HealthBody>, ApiError> {
    let body = health_body(
        &state.runner,
        state.directory.as_ref(),
        Some(state.runner.watcher()),
        state.watcher_expected,
        &state.cleartext,
    )
    .await?;
    Ok(Json(body))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    #[serde(default)]
    dry_run: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunQuery {
    dry_run: Option<bool>,
}

/// A job run's answer.
#[derive(Debug, Serialize)]
struct RunResponse {
    success: bool,
    summary: String,
    report: JobReport,
}

pub(crate) fn parse_body<T: for<'de> Deserialize<'de> + Default>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct.starts_with("application/json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send JSON with Content-Type: application/json",
            ));
        }
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON body: {e}")))
}

/// A path segment, or why axum could not read it (invalid UTF-8, ...).
pub(crate) type PathArg = Result<Path<String>, axum::extract::rejection::PathRejection>;

/// The segment, or the same JSON error shape as every other refusal.
pub(crate) fn path_arg(arg: PathArg) -> Result<String, ApiError> {
    arg.map(|Path(p)| p)
        .map_err(|e| ApiError::new(e.status(), e.body_text()))
}

fn parse_job(raw: &str) -> Result<JobKind, ApiError> {
    JobKind::parse(raw).map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))
}

async fn run_job(
    State(state): State<Arc<ApiState>>,
    job: PathArg,
    query: Result<Query<RunQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<RunResponse>, ApiError> {
    let job = parse_job(&path_arg(job)?)?;
    // A body over the limit (413) or unreadable gets the same JSON error shape as every other refusal.
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let body: RunBody = parse_body(&headers, &body)?;
    let opts = RunOptions {
        dry_run: query.dry_run.unwrap_or(false) || body.dry_run,
    };
    // The run goes on in its own task: a client that hangs up (or times out)
    // does not cut it off half way.
    let runner = state.runner.clone();
    let report = tokio::spawn(async move { runner.run(job, opts, Trigger::Api).await })
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("job run task: {e}")))??;
    if !opts.dry_run {
        state.runner.nudge();
    }
    Ok(Json(RunResponse {
        success: true,
        summary: report.to_string(),
        report,
    }))
}

/// A service as the API shows it (never its PPPoE password).
#[derive(Debug, Serialize)]
struct ServiceView {
    id: i64,
    tenant_id: i64,
    customer_id: i64,
    router_id: i64,
    status: ServiceStatus,
    connection: &'static str,
    username: Option<String>,
    address: Option<String>,
    next_billing_date: NaiveDate,
    provisioned: bool,
    provisioned_at: Option<DateTime<Utc>>,
    deprovisioned_at: Option<DateTime<Utc>>,
    attempts: u32,
}

impl From<&Service> for ServiceView {
    fn from(s: &Service) -> Self {
        let (connection, username, address) = match &s.connection {
            Connection::Pppoe { username, .. } => ("pppoe", Some(username.to_string()), None),
            Connection::StaticIp { address } => ("static_ip", None, Some(address.to_string())),
        };
        ServiceView {
            id: s.id.0,
            tenant_id: s.tenant_id.0,
            customer_id: s.customer_id.0,
            router_id: s.router_id.0,
            status: s.status,
            connection,
            username,
            address,
            next_billing_date: s.next_billing_date,
            provisioned: s.provisioned,
            provisioned_at: s.provisioned_at,
            deprovisioned_at: s.deprovisioned_at,
            attempts: s.attempts,
        }
    }
}

#[derive(Debug, Serialize)]
struct ServiceResponse {
    success: bool,
    service: ServiceView,
    note: Option<String>,
    report: JobReport,
}

pub(crate) fn parse_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|i| *i > 0).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid {what} id {raw:?}: expected a positive integer"),
        )
    })
}

async fn service_action(
    state: &ApiState,
    raw_id: &str,
    want: ServiceStatus,
) -> Result<Json<ServiceResponse>, ApiError> {
    let id = ServiceId(parse_id(raw_id, "service")?);
    let runner = state.runner.clone();
    let change = tokio::spawn(async move { runner.set_service_status(id, want, Trigger::Api).await })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("service change task: {e}"),
            )
        })??;
    Ok(Json(ServiceResponse {
        success: change.pending.is_none(),
        service: ServiceView::from(&change.service),
        note: change.pending,
        report: change.report,
    }))
}

async fn provision(
    State(state): State<Arc<ApiState>>,
    id: PathArg,
) -> Result<Json<ServiceResponse>, ApiError> {
    service_action(&state, &path_arg(id)?, ServiceStatus::Active).await
}

async fn deprovision(
    State(state): State<Arc<ApiState>>,
    id: PathArg,
) -> Result<Json<ServiceResponse>, ApiError> {
    service_action(&state, &path_arg(id)?, ServiceStatus::Suspended).await
}

/// `GET /api/routers/{id}`.
#[derive(Debug, Serialize)]
struct RouterDetail {
    success: bool,
    id: i64,
    tenant_id: i64,
    name: String,
    address: String,
    transport: Transport,
    enabled: bool,
    status: Option<isp_core::domain::RouterStatus>,
    /// Live sessions from RADIUS accounting (empty unless in RADIUS mode).
    radius_sessions: Vec<RadiusSession>,
}

async fn show_router(
    State(state): State<Arc<ApiState>>,
    id: PathArg,
) -> Result<Json<RouterDetail>, ApiError> {
    let id = RouterId(parse_id(&path_arg(id)?, "router")?);
    let router = state.directory.router(id).await?;
    let repos = &state.runner.engine().deps().repos;
    let radius_sessions = if router.transport == Transport::Radius {
        repos.radius_sessions.live_on_router(id).await?
    } else {
        Vec::new()
    };
    Ok(Json(RouterDetail {
        success: true,
        id: router.id.0,
        tenant_id: router.tenant_id.0,
        name: router.name.clone(),
        address: router.address.clone(),
        transport: router.transport,
        enabled: router.enabled,
        status: repos.router_status.get(id).await?,
        radius_sessions,
    }))
}

async fn check(State(state): State<Arc<ApiState>>, id: PathArg) -> Result<Json<RouterCheck>, ApiError> {
    let id = RouterId(parse_id(&path_arg(id)?, "router")?);
    let router = state.directory.router(id).await?;
    let deps = state.runner.engine().deps();
    Ok(Json(
        check_router(deps.driver.as_ref(), deps.clock.as_ref(), &router).await,
    ))
}

async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    match &state.metrics {
        Some(h) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], h.render()).into_response(),
        None => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not enabled in this process",
        )
        .into_response(),
    }
}
