//! The admin API's access routes: subscribers, grants, revokes, vouchers and
//! the audit log. Every route calls an [`isp_core::jobs::Engine`] use
//! case; nothing here writes storage itself.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /api/subscribers` | `{"tenant":"hotel-abc","phone":"+255712000001","username":null}` | `201`, the subscriber |
//! | `GET /api/subscribers/{id}` | | the subscriber, its devices, pending grants, last audit events |
//! | `POST /api/subscribers/{id}/grant` | one of `{"plan":"1-hour"}`, `{"seconds":3600}`, `{"until":"RFC 3339"}`, optional `"shorten":true`, `"payment":{"reference","amount","currency"}` | `paid_until`, `duplicate_payment`, per-router `routers` |
//! | `POST /api/subscribers/{id}/revoke` | `{}` | the per-router results |
//! | `POST /api/vouchers` | `{"tenant":"hotel-abc","plan":"1-hour","count":20,"prefix":null}` | `201`, the codes |
//! | `GET /api/vouchers/{code}?tenant=hotel-abc` | | the voucher |
//! | `GET /api/audit?since=RFC3339&limit=N` | | audit events, newest first |
//!
//! Bad input is `400` naming the field and the value; an unknown tenant, plan
//! or id `404`; a duplicate `409`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Json;
use chrono::{DateTime, Utc};
use isp_core::domain::*;
use isp_core::jobs::{Engine, GrantOutcome, RouterResult, VoucherBatch};
use isp_core::Error;
use serde::{Deserialize, Serialize};

use crate::api::{parse_body, parse_id, path_arg, ApiError, ApiState, PathArg};

/// The routes of this module (merged into [`crate::api::router`]).
pub(crate) fn routes() -> axum::Router<Arc<ApiState>> {
    axum::Router::new()
        .route("/api/subscribers", post(create_subscriber))
        .route("/api/subscribers/{id}", get(show_subscriber))
        .route("/api/subscribers/{id}/grant", post(grant))
        .route("/api/subscribers/{id}/revoke", post(revoke))
        .route("/api/vouchers", post(generate_vouchers))
        .route("/api/vouchers/{code}", get(show_voucher))
        .route("/api/audit", get(audit))
}

type Body = Result<Bytes, axum::extract::rejection::BytesRejection>;

fn body_bytes(body: Body) -> Result<Bytes, ApiError> {
    body.map_err(|e| ApiError::new(e.status(), e.body_text()))
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, format!("missing field {field:?}")))
}

/// A tenant by its slug (`404` naming it).
async fn tenant_by_slug(engine: &Engine, slug: &str) -> Result<Tenant, ApiError> {
    let tenants = engine.deps().repos.tenants.list().await?;
    tenants
        .into_iter()
        .find(|t| t.slug.as_str() == slug)
        .ok_or_else(|| Error::not_found("tenant", slug).into())
}

/// A plan of the tenant by its name (`404` naming it).
async fn plan_by_name(engine: &Engine, tenant: TenantId, name: &str) -> Result<Plan, ApiError> {
    let plans = engine.deps().repos.plans.list(tenant).await?;
    plans
        .into_iter()
        .find(|p| p.name.as_str() == name)
        .ok_or_else(|| Error::not_found("plan", name).into())
}

/// A subscriber as the API shows it.
#[derive(Debug, Serialize)]
pub struct SubscriberView {
    id: i64,
    tenant_id: i64,
    phone: String,
    username: String,
    paid_until: DateTime<Utc>,
    active: bool,
    disconnected_at: Option<DateTime<Utc>>,
}

impl From<&Subscriber> for SubscriberView {
    fn from(s: &Subscriber) -> Self {
        SubscriberView {
            id: s.id.0,
            tenant_id: s.tenant_id.0,
            phone: s.phone.to_string(),
            username: s.username.to_string(),
            paid_until: s.paid_until,
            active: s.active,
            disconnected_at: s.disconnected_at,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSubscriberBody {
    tenant: Option<String>,
    phone: Option<String>,
    username: Option<String>,
}

#[derive(Debug, Serialize)]
struct SubscriberResponse {
    success: bool,
    subscriber: SubscriberView,
}

async fn create_subscriber(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<SubscriberResponse>), ApiError> {
    let body: NewSubscriberBody = parse_body(&headers, &body_bytes(body)?)?;
    let engine = state.runner.engine();
    let tenant = tenant_by_slug(engine, &required(body.tenant, "tenant")?).await?;
    let phone = PhoneNumber::parse("phone", &required(body.phone, "phone")?)?;
    let username = body
        .username
        .map(|u| RosName::parse("username", &u))
        .transpose()?;
    let engine = engine.clone();
    let sub = tokio::spawn(async move { engine.create_subscriber(tenant.id, phone, username).await })
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("task: {e}")))??;
    Ok((
        StatusCode::CREATED,
        Json(SubscriberResponse {
            success: true,
            subscriber: SubscriberView::from(&sub),
        }),
    ))
}

#[derive(Debug, Serialize)]
struct DeviceView {
    mac: String,
    router_id: Option<i64>,
    last_seen: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
struct PendingView {
    router_id: i64,
    since: DateTime<Utc>,
    attempts: u32,
    last_error: Option<String>,
    next_attempt: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
struct SubscriberDetail {
    success: bool,
    subscriber: SubscriberView,
    devices: Vec<DeviceView>,
    pending_grants: Vec<PendingView>,
    /// Where the subscriber is online on routers in RADIUS mode (accounting).
    radius_sessions: Vec<isp_core::domain::RadiusSession>,
    events: Vec<AuditEvent>,
}

/// Audit events read to find one subscriber's last ones (the audit port has
/// no per-subject query yet).
const AUDIT_SCAN: usize = 2_000;

async fn show_subscriber(
    State(state): State<Arc<ApiState>>,
    id: PathArg,
) -> Result<Json<SubscriberDetail>, ApiError> {
    let id = SubscriberId(parse_id(&path_arg(id)?, "subscriber")?);
    let repos = &state.runner.engine().deps().repos;
    let sub = repos.subscribers.get(id).await?;
    let devices = repos.devices.active_of(&[id]).await?;
    let pending = repos.grants.pending_of(id).await?;
    let radius_sessions = repos
        .radius_sessions
        .live_of_user(sub.tenant_id, sub.username.as_str())
        .await?;
    let subject = format!("subscriber:{id}");
    let events: Vec<AuditEvent> = repos
        .audit
        .recent(AUDIT_SCAN)
        .await?
        .into_iter()
        .filter(|e| e.subject == subject)
        .take(20)
        .collect();
    Ok(Json(SubscriberDetail {
        success: true,
        subscriber: SubscriberView::from(&sub),
        devices: devices
            .iter()
            .map(|d| DeviceView {
                mac: d.mac.to_string(),
                router_id: d.router_id.map(|r| r.0),
                last_seen: d.last_seen,
            })
            .collect(),
        pending_grants: pending
            .iter()
            .map(|g| PendingView {
                router_id: g.router_id.0,
                since: g.created_at,
                attempts: g.attempts,
                last_error: g.last_error.clone(),
                next_attempt: g.lease.as_ref().map(|l| l.until),
            })
            .collect(),
        radius_sessions,
        events,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentBody {
    reference: Option<String>,
    amount: Option<String>,
    currency: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    plan: Option<String>,
    seconds: Option<u64>,
    until: Option<String>,
    #[serde(default)]
    shorten: bool,
    payment: Option<PaymentBody>,
}

#[derive(Debug, Serialize)]
struct GrantResponse {
    success: bool,
    subscriber_id: i64,
    paid_until: DateTime<Utc>,
    duplicate_payment: bool,
    routers: Vec<RouterResult>,
}

impl From<GrantOutcome> for GrantResponse {
    fn from(o: GrantOutcome) -> Self {
        GrantResponse {
            success: true,
            subscriber_id: o.subscriber.id.0,
            paid_until: o.subscriber.paid_until,
            duplicate_payment: o.duplicate_payment,
            routers: o.routers,
        }
    }
}

/// The extension a grant body asks for: exactly one of plan, seconds, until.
async fn extension(engine: &Engine, sub: &Subscriber, body: &GrantBody) -> Result<Extension, ApiError> {
    let given = [body.plan.is_some(), body.seconds.is_some(), body.until.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given != 1 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "give exactly one of \"plan\", \"seconds\" or \"until\"",
        ));
    }
    if body.shorten && body.until.is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "\"shorten\" goes with \"until\" only",
        ));
    }
    if let Some(name) = &body.plan {
        let plan = plan_by_name(engine, sub.tenant_id, name).await?;
        return Ok(Extension::Plan(plan.id));
    }
    if let Some(secs) = body.seconds {
        return Ok(Extension::Seconds(secs));
    }
    let raw = body.until.as_deref().unwrap_or_default();
    let until = DateTime::parse_from_rfc3339(raw)
        .map_err(|_| Error::invalid("until", raw, "not an RFC 3339 instant (2026-12-31T23:59:59Z)"))?
        .with_timezone(&Utc);
    Ok(if body.shorten {
        Extension::Shorten(until)
    } else {
        Extension::Until(until)
    })
}

fn payment(body: Option<PaymentBody>) -> Result<Option<NewPayment>, ApiError> {
    let Some(p) = body else {
        return Ok(None);
    };
    let reference =
        PaymentReference::parse("payment.reference", &required(p.reference, "payment.reference")?)?;
    let currency = Currency::parse("payment.currency", &required(p.currency, "payment.currency")?)?;
    let amount = Money::parse("payment.amount", &required(p.amount, "payment.amount")?, currency)?;
    Ok(Some(NewPayment { reference, amount }))
}

async fn grant(
    State(state): State<Arc<ApiState>>,
    id: PathArg,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<GrantResponse>, ApiError> {
    let id = SubscriberId(parse_id(&path_arg(id)?, "subscriber")?);
    let body: GrantBody = parse_body(&headers, &body_bytes(body)?)?;
    let engine = state.runner.engine().clone();
    let sub = engine.deps().repos.subscribers.get(id).await?;
    let ext = extension(&engine, &sub, &body).await?;
    let payment = payment(body.payment)?;
    // In its own task: a client that hangs up does not cut the grant off half way.
    let outcome = tokio::spawn(async move { engine.grant(id, ext, payment).await })
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("grant task: {e}")))??;
    state.runner.nudge();
    Ok(Json(outcome.into()))
}

async fn revoke(
    State(state): State<Arc<ApiState>>,
    id: PathArg,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<GrantResponse>, ApiError> {
    let id = SubscriberId(parse_id(&path_arg(id)?, "subscriber")?);
    let _: serde_json::Map<String, serde_json::Value> = parse_body(&headers, &body_bytes(body)?)?;
    let engine = state.runner.engine().clone();
    let outcome = tokio::spawn(async move { engine.revoke(id).await })
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("revoke task: {e}")))??;
    state.runner.nudge();
    Ok(Json(outcome.into()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VoucherBody {
    tenant: Option<String>,
    plan: Option<String>,
    count: Option<u32>,
    prefix: Option<String>,
}

/// A voucher as the API shows it.
#[derive(Debug, Serialize)]
pub struct VoucherView {
    id: i64,
    code: String,
    plan_id: i64,
    status: VoucherStatus,
    activation_deadline: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    expected_end: Option<DateTime<Utc>>,
    expired_reason: Option<VoucherExpiryReason>,
    expired_at: Option<DateTime<Utc>>,
}

impl From<&Voucher> for VoucherView {
    fn from(v: &Voucher) -> Self {
        VoucherView {
            id: v.id.0,
            code: v.code.to_string(),
            plan_id: v.plan_id.0,
            status: v.status,
            activation_deadline: v.activation_deadline,
            started_at: v.started_at,
            expected_end: v.expected_end,
            expired_reason: v.expired_reason,
            expired_at: v.expired_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct VoucherBatchResponse {
    success: bool,
    tenant: String,
    plan: String,
    codes: Vec<String>,
    vouchers: Vec<VoucherView>,
    routers: Vec<RouterResult>,
}

async fn generate_vouchers(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<VoucherBatchResponse>), ApiError> {
    let body: VoucherBody = parse_body(&headers, &body_bytes(body)?)?;
    let engine = state.runner.engine().clone();
    let tenant = tenant_by_slug(&engine, &required(body.tenant, "tenant")?).await?;
    let plan = plan_by_name(&engine, tenant.id, &required(body.plan, "plan")?).await?;
    let count = required(body.count, "count")?;
    let prefix = body.prefix;
    let plan_id = plan.id;
    let batch: VoucherBatch = tokio::spawn(async move {
        engine
            .generate_vouchers(tenant.id, plan_id, count, prefix.as_deref())
            .await
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("voucher task: {e}")))??;
    state.runner.nudge();
    Ok((
        StatusCode::CREATED,
        Json(VoucherBatchResponse {
            success: true,
            tenant: tenant.slug.to_string(),
            plan: plan.name.to_string(),
            codes: batch.vouchers.iter().map(|v| v.code.to_string()).collect(),
            vouchers: batch.vouchers.iter().map(VoucherView::from).collect(),
            routers: batch.routers,
        }),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantQuery {
    tenant: Option<String>,
}

#[derive(Debug, Serialize)]
struct VoucherResponse {
    success: bool,
    voucher: VoucherView,
}

async fn show_voucher(
    State(state): State<Arc<ApiState>>,
    code: PathArg,
    query: Result<Query<TenantQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<VoucherResponse>, ApiError> {
    let raw = path_arg(code)?;
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let engine = state.runner.engine();
    let tenant = tenant_by_slug(engine, &required(query.tenant, "tenant")?).await?;
    let code = RosName::parse("code", &raw)?;
    let voucher = engine
        .deps()
        .repos
        .vouchers
        .find_by_code(tenant.id, &code)
        .await?
        .ok_or_else(|| Error::not_found("voucher", &code))?;
    Ok(Json(VoucherResponse {
        success: true,
        voucher: VoucherView::from(&voucher),
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    since: Option<String>,
    limit: Option<usize>,
}

#[derive(Debug, Serialize)]
struct AuditResponse {
    success: bool,
    events: Vec<AuditEvent>,
}

/// Most events one audit request returns.
const AUDIT_MAX: usize = 1_000;

async fn audit(
    State(state): State<Arc<ApiState>>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditResponse>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > AUDIT_MAX {
        return Err(Error::invalid("limit", limit, format!("must be between 1 and {AUDIT_MAX}")).into());
    }
    let since = query
        .since
        .as_deref()
        .map(|raw| {
            DateTime::parse_from_rfc3339(raw)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| Error::invalid("since", raw, "not an RFC 3339 instant"))
        })
        .transpose()?;
    let events = state
        .runner
        .engine()
        .deps()
        .repos
        .audit
        .recent(limit)
        .await?
        .into_iter()
        .filter(|e| since.is_none_or(|s| e.at >= s))
        .collect();
    Ok(Json(AuditResponse {
        success: true,
        events,
    }))
}
