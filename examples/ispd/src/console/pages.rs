//! The console's pages and actions.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use chrono::{Duration, Utc};
use isp_core::domain::{
    AuditEvent, Extension, PhoneNumber, PlanId, RouterId, Subscriber, SubscriberId, TenantId,
};
use isp_core::jobs::{JobKind, RunOptions};
use isp_core::runtime::metrics::{LagStats, MinuteStats};
use isp_core::runtime::{check_router as check, Trigger};
use isp_core::Error;
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::BTreeMap;

use super::session::Session;
use super::views::{chart, csrf, format_num, layout, message, when, when_opt, Bar};
use super::{html as page, query_or_default, Console, CsrfForm, St};

type FormOf<T> = Result<Form<T>, axum::extract::rejection::FormRejection>;

/// Audit events read for the pages that filter them (the audit port returns the newest N).
const AUDIT_SCAN: usize = 5_000;

/// Most vouchers one console batch makes.
const MAX_BATCH: u32 = 500;

fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::InvalidInput { .. } => StatusCode::BAD_REQUEST,
        Error::Conflict { .. } => StatusCode::CONFLICT,
        Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error page naming what went wrong.
fn failed(s: &Session, e: &Error) -> Response {
    page(status_of(e), message(s, "That did not work", &e.to_string()))
}

fn bad_input(s: &Session, text: &str) -> Response {
    page(StatusCode::BAD_REQUEST, message(s, "That did not work", text))
}

/// Runs `f` in its own task, so a browser that goes away does not cut a write off half way.
async fn detached<T: Send + 'static>(
    f: impl std::future::Future<Output = isp_core::Result<T>> + Send + 'static,
) -> isp_core::Result<T> {
    tokio::spawn(f)
        .await
        .map_err(|e| Error::unavailable("console task", e.to_string()))?
}

// ---------------------------------------------------------------- Now

/// The "Now" page: the live part, refreshed every second by the script.
pub(super) async fn now(c: &Console, s: &Session) -> Response {
    let live = match live_body(c).await {
        Ok(m) => m,
        Err(e) => return failed(s, &e),
    };
    page(
        StatusCode::OK,
        layout(
            Some(s),
            "Now",
            html! {
                div id="live" data-live="/console/live" { (live) }
            },
        ),
    )
}

/// `GET /console/live`: the "Now" page's live part alone.
pub(super) async fn live(State(c): St, headers: HeaderMap) -> Response {
    if c.sessions.of(&headers).is_none() {
        return page(StatusCode::UNAUTHORIZED, html! { p { "Logged out." } });
    }
    match live_body(&c).await {
        Ok(m) => page(StatusCode::OK, m),
        Err(e) => page(status_of(&e), html! { p.error role="alert" { (e.to_string()) } }),
    }
}

async fn live_body(c: &Console) -> isp_core::Result<Markup> {
    let api = &c.api;
    let health = crate::api::health_body(
        &api.runner,
        api.directory.as_ref(),
        Some(api.runner.watcher()),
        api.watcher_expected,
        &api.cleartext,
    )
    .await?;
    let repos = &api.runner.engine().deps().repos;
    let now = Utc::now();
    let (pending, due) = repos.grants.count_pending(now).await?;
    let events = repos.audit.recent(AUDIT_SCAN).await?;
    let versions: BTreeMap<i64, String> = repos
        .router_status
        .list()
        .await?
        .into_iter()
        .filter_map(|s| Some((s.router_id.0, s.version?)))
        .collect();
    let removals: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| e.action == "disconnect")
        .take(10)
        .collect();
    let foreign: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| e.action == "foreign_object")
        .take(10)
        .collect();
    let last_hour = api.runner.last_hour();
    Ok(html! {
        p.stamp { "As of " (when(health.timestamp)) " — "
            @if health.healthy { span.ok { "healthy" } } @else { span.bad { "needs attention" } } }
        @if !health.attention.is_empty() {
            section aria-labelledby="h-attention" {
                h2 id="h-attention" { "Needs attention" }
                ul.attention { @for a in &health.attention { li { (a) } } }
            }
        }
        section aria-labelledby="h-routers" {
            h2 id="h-routers" { "Routers" }
            p { (health.routers.online) " online, " (health.routers.offline) " offline, " (health.routers.unchecked) " not checked yet" }
            div.scroll { table id="routers" {
                thead { tr { th scope="col" { "Router" } th scope="col" { "Tenant" } th scope="col" { "State" } th scope="col" { "Last check" } th scope="col" { "Clock skew" } th scope="col" { "RouterOS" } th scope="col" { "Last error" } } }
                tbody { @for r in &health.routers.list {
                    tr data-router=(r.name) {
                        th scope="row" { (r.name) }
                        td { (r.tenant_id) }
                        td { @match (r.enabled, r.online) {
                            (false, _) => span.muted { "disabled" },
                            (true, Some(true)) => span.ok { "online" },
                            (true, Some(false)) => span.bad { "offline" },
                            (true, None) => span.muted { "not checked" },
                        } }
                        td { (when_opt(r.checked_at)) }
                        td { @if let Some(k) = r.clock_skew_secs { (k) " s" } @else { "—" } }
                        td.version { (versions.get(&r.id).map_or("—", String::as_str)) }
                        td { (r.last_error.as_deref().unwrap_or("")) }
                    }
                } }
            } }
        }
        @if health.routers.list.iter().any(|r| r.radius_online.is_some()) {
            section aria-labelledby="h-radius" {
                h2 id="h-radius" { "Online on RADIUS routers" }
                @if health.radius_sessions.is_empty() { p.muted { "Nobody." } } @else {
                    div.scroll { table id="radius-sessions" {
                        thead { tr { th scope="col" { "User" } th scope="col" { "Router" } th scope="col" { "Kind" } th scope="col" { "Address" } th scope="col" { "Device" } th scope="col" { "Since" } } }
                        tbody { @for s in &health.radius_sessions { tr {
                            th scope="row" { (s.user) }
                            td { (health.routers.list.iter().find(|r| r.id == s.router.0).map_or(String::new(), |r| r.name.clone())) }
                            td { (s.kind) }
                            td { (s.address.map(|a| a.to_string()).unwrap_or_default()) }
                            td { (s.calling_station.as_deref().unwrap_or("")) }
                            td { (when(s.started)) }
                        } } }
                    } }
                }
            }
        }
        section aria-labelledby="h-overdue" {
            h2 id="h-overdue" { "Time ran out, still connected" }
            @if health.expired_not_disconnected.is_empty() { p.muted { "None." } } @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Subscriber" } th scope="col" { "Expired" } th scope="col" { "Overdue" } th scope="col" { "Attempts" } } }
                    tbody { @for o in &health.expired_not_disconnected { tr {
                        th scope="row" { a href=(format!("/console/subscribers/{}", o.id.0)) { (o.phone_number) } }
                        td { (when(o.expired_at)) } td { (o.overdue_minutes) " min" } td { (o.attempts) }
                    } } }
                } }
            }
        }
        section aria-labelledby="h-expiring" {
            h2 id="h-expiring" { "Expiring in the next 30 minutes" }
            @if health.expiring_soon.is_empty() { p.muted { "None." } } @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Subscriber" } th scope="col" { "Expires" } th scope="col" { "Left" } } }
                    tbody { @for x in &health.expiring_soon { tr {
                        th scope="row" { a href=(format!("/console/subscribers/{}", x.id.0)) { (x.phone_number) } }
                        td { (when(x.expires_at)) } td { (x.remaining_minutes) " min" }
                    } } }
                } }
            }
        }
        section aria-labelledby="h-pending" {
            h2 id="h-pending" { "Pending grants and retries" }
            p id="pending" { (pending) " grant(s) waiting for a router, " (due) " due for a retry now" }
        }
        section aria-labelledby="h-removals" {
            h2 id="h-removals" { "Last removals" }
            @if removals.is_empty() { p.muted { "None yet." } } @else {
                ul id="removals" { @for e in &removals { li { (event_line(e)) } } }
            }
        }
        section aria-labelledby="h-foreign" {
            h2 id="h-foreign" { "Foreign objects on routers" }
            @if foreign.is_empty() { p.muted { "None found." } } @else {
                ul { @for e in &foreign { li { (event_line(e)) } } }
            }
        }
        section aria-labelledby="h-jobs" {
            h2 id="h-jobs" { "Jobs" }
            @if let Some(w) = &health.watcher {
                p id="watcher" { "Real-time expiry watcher: "
                    @if w.running { span.ok { "running" } } @else { span.bad { "stopped" } }
                    "; next deadline " (when_opt(w.next_wakeup))
                    "; last check " (when_opt(w.last_check_at))
                    @if let Some(e) = &w.last_error { "; " span.bad { (e) } } }
            }
            (jobs_table(c, None))
        }
        (charts(&last_hour))
    })
}

/// A lag as operators read it: milliseconds under a second, else seconds.
fn lag_text(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else {
        format!("{secs:.1} s")
    }
}

/// The last hour's charts (removals, enforcement lag), each with its numbers
/// in a table for screen readers and for reading exact values.
fn charts(minutes: &[MinuteStats]) -> Markup {
    let total: u64 = minutes.iter().map(|m| m.removals).sum();
    let busiest = minutes
        .iter()
        .filter(|m| m.removals > 0)
        .max_by_key(|m| m.removals);
    let removals_summary = match busiest {
        None => "Removals per minute, last hour: none".to_owned(),
        Some(b) => format!(
            "Removals per minute, last hour: {total} in all, at most {} in one minute ({})",
            b.removals,
            b.start.format("%H:%M UTC")
        ),
    };
    let removals: Vec<Bar> = minutes
        .iter()
        .map(|m| Bar {
            value: m.removals as f64,
            inner: None,
            title: format!("{}: {} removed", m.start.format("%H:%M"), m.removals),
        })
        .collect();
    let lags: Vec<(&MinuteStats, LagStats)> = minutes.iter().filter_map(|m| Some((m, m.lag?))).collect();
    let met: u64 = lags.iter().map(|(_, l)| l.count).sum();
    let worst = lags.iter().map(|(_, l)| l.max).fold(0.0_f64, f64::max);
    let lag_summary = if met == 0 {
        "Enforcement lag per minute (p50 inside p99), last hour: no deadline met".to_owned()
    } else {
        format!(
            "Enforcement lag per minute (p50 inside p99), last hour: {met} deadline(s) met, longest {}",
            lag_text(worst)
        )
    };
    let lag_bars: Vec<Bar> = minutes
        .iter()
        .map(|m| match m.lag {
            Some(l) => Bar {
                value: l.p99,
                inner: Some(l.p50),
                title: format!(
                    "{}: p50 {}, p99 {}, max {} ({} deadlines)",
                    m.start.format("%H:%M"),
                    lag_text(l.p50),
                    lag_text(l.p99),
                    lag_text(l.max),
                    l.count
                ),
            },
            None => Bar {
                value: 0.0,
                inner: None,
                title: format!("{}: no deadline", m.start.format("%H:%M")),
            },
        })
        .collect();
    let busy: Vec<&MinuteStats> = minutes
        .iter()
        .filter(|m| m.removals > 0 || m.lag.is_some())
        .collect();
    html! {
        section aria-labelledby="h-charts" {
            h2 id="h-charts" { "Last hour" }
            p.small { "From this daemon's own metrics, minute by minute (since it started, at most an hour)." }
            div.charts {
                (chart("chart-removals", &removals_summary, &removals, |v| format!("{} removed", format_num(v))))
                (chart("chart-lag", &lag_summary, &lag_bars, lag_text))
            }
            details id="chart-data" {
                summary { "The charts' numbers" }
                @if busy.is_empty() { p.muted { "Nothing happened in the last hour." } } @else {
                    div.scroll { table {
                        caption.small { "Minutes not listed had no removal and no deadline." }
                        thead { tr { th scope="col" { "Minute (UTC)" } th scope="col" { "Removed" } th scope="col" { "Deadlines met" }
                            th scope="col" { "Lag p50" } th scope="col" { "Lag p99" } th scope="col" { "Lag max" } } }
                        tbody { @for m in &busy { tr {
                            th scope="row" { (m.start.format("%H:%M")) }
                            td { (m.removals) }
                            @if let Some(l) = m.lag {
                                td { (l.count) } td { (lag_text(l.p50)) } td { (lag_text(l.p99)) } td { (lag_text(l.max)) }
                            } @else { td { "0" } td { "—" } td { "—" } td { "—" } }
                        } } }
                    } }
                }
            }
        }
    }
}

fn event_line(e: &AuditEvent) -> Markup {
    html! {
        time datetime=(e.at.to_rfc3339()) { (when(e.at)) } " · " (e.action) " · "
        (subject_link(&e.subject))
        @if let Some(r) = e.router_id { " · router " (r.0) }
        " · " (format!("{:?}", e.outcome).to_lowercase())
        @if let Some(reason) = &e.reason { " · " (reason) }
    }
}

fn subject_link(subject: &str) -> Markup {
    match subject.strip_prefix("subscriber:") {
        Some(id) if id.parse::<i64>().is_ok() => {
            html! { a href=(format!("/console/subscribers/{id}")) { (subject) } }
        }
        _ => html! { (subject) },
    }
}

/// The jobs with their last and next run; with forms (dry run) when `s` is given.
fn jobs_table(c: &Console, s: Option<&Session>) -> Markup {
    let last = c.api.runner.last_runs();
    let next = c.api.runner.next_runs();
    html! {
        div.scroll { table id="jobs" {
            thead { tr { th scope="col" { "Job" } th scope="col" { "Last run" } th scope="col" { "By" } th scope="col" { "Result" } th scope="col" { "Next run" }
                @if s.is_some() { th scope="col" { "Action" } } } }
            tbody { @for job in JobKind::ALL {
                @let run = last.get(&job);
                @let upcoming = next.get(&job).copied().unwrap_or_default();
                tr data-job=(job.name()) {
                    th scope="row" { (job.name()) }
                    td { (when_opt(run.map(|r| r.finished_at))) }
                    td { @if let Some(r) = run { (format!("{:?}", r.trigger).to_lowercase()) } }
                    td { @if let Some(r) = run {
                        @if r.ok && r.failures == 0 { span.ok { "ok" } } @else if r.ok { span.bad { (r.failures) " failed" } } @else { span.bad { "failed" } }
                        " " span.small { (r.summary) }
                    } }
                    td.next { @match (upcoming.at(), upcoming.deadline) {
                        (None, _) => span.muted { "not scheduled" },
                        (Some(at), Some(d)) if d == at => { (when(at)) " " span.small { "(deadline)" } },
                        (Some(at), _) => { (when(at)) " " span.small { "(schedule)" } },
                    } }
                    @if let Some(s) = s { td {
                        form method="post" action=(format!("/console/jobs/{}", job.name())) {
                            (csrf(s))
                            input type="hidden" name="dry_run" value="true";
                            button type="submit" aria-label=(format!("Dry run {}", job.name())) { "Dry run" }
                        }
                    } }
                }
            } }
        } }
    }
}

// ---------------------------------------------------------------- Subscribers

#[derive(Debug, Default, Deserialize)]
pub(super) struct SearchQuery {
    q: Option<String>,
}

/// Subscribers whose phone, username or id is `q`.
async fn find(c: &Console, q: &str) -> isp_core::Result<Vec<Subscriber>> {
    let repos = &c.api.runner.engine().deps().repos;
    let tenants = repos.tenants.list().await?;
    let mut found: BTreeMap<i64, Subscriber> = BTreeMap::new();
    if let Ok(id) = q.parse::<i64>() {
        if id > 0 {
            if let Ok(s) = repos.subscribers.get(SubscriberId(id)).await {
                found.insert(s.id.0, s);
            }
        }
    }
    if let Ok(phone) = PhoneNumber::parse("phone", q) {
        for t in &tenants {
            if let Some(s) = repos.subscribers.find_by_phone(t.id, &phone).await? {
                found.insert(s.id.0, s);
            }
        }
    }
    let needle = q.to_ascii_lowercase();
    for t in &tenants {
        for s in repos.subscribers.active_of_tenant(t.id).await? {
            if s.username.as_str().to_ascii_lowercase().contains(&needle) || s.phone.to_string().contains(q) {
                found.insert(s.id.0, s);
            }
        }
    }
    Ok(found.into_values().collect())
}

/// `GET /console/subscribers?q=`.
pub(super) async fn subscribers(
    State(c): St,
    headers: HeaderMap,
    q: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = match c.session(&headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let q = query_or_default(q).q.unwrap_or_default();
    let q = q.trim();
    let results = if q.is_empty() {
        None
    } else {
        match find(&c, q).await {
            Ok(r) => Some(r),
            Err(e) => return failed(&s, &e),
        }
    };
    let now = Utc::now();
    page(
        StatusCode::OK,
        layout(
            Some(&s),
            "Subscribers",
            html! {
                form.search method="get" action="/console/subscribers" role="search" {
                    label for="q" { "Phone, username or id" }
                    input type="search" id="q" name="q" value=(q) required;
                    button type="submit" { "Find" }
                }
                @if let Some(results) = results {
                    @if results.is_empty() { p role="status" { "No subscriber matches " (q) "." } } @else {
                        div.scroll { table id="results" {
                            thead { tr { th scope="col" { "Subscriber" } th scope="col" { "Username" } th scope="col" { "Tenant" } th scope="col" { "Paid until" } } }
                            tbody { @for r in &results { tr {
                                th scope="row" { a href=(format!("/console/subscribers/{}", r.id.0)) { (r.phone) } }
                                td { (r.username.as_str()) } td { (r.tenant_id.0) }
                                td { (when(r.paid_until)) @if r.paid_until <= now { " " span.bad { "(ran out)" } } }
                            } } }
                        } }
                    }
                }
            },
        ),
    )
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct DetailQuery {
    done: Option<String>,
}

fn sub_id(raw: &str) -> Result<SubscriberId, Error> {
    raw.parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .map(SubscriberId)
        .ok_or_else(|| Error::invalid("subscriber id", raw, "expected a positive integer"))
}

/// `GET /console/subscribers/{id}`.
pub(super) async fn subscriber(
    State(c): St,
    headers: HeaderMap,
    Path(raw): Path<String>,
    q: Result<Query<DetailQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = match c.session(&headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let done = query_or_default(q).done;
    match subscriber_page(&c, &s, &raw, done.as_deref()).await {
        Ok(m) => page(StatusCode::OK, m),
        Err(e) => failed(&s, &e),
    }
}

async fn subscriber_page(
    c: &Console,
    s: &Session,
    raw: &str,
    done: Option<&str>,
) -> isp_core::Result<Markup> {
    let id = sub_id(raw)?;
    let repos = &c.api.runner.engine().deps().repos;
    let sub = repos.subscribers.get(id).await?;
    let devices = repos.devices.active_of(&[id]).await?;
    let pending = repos.grants.pending_of(id).await?;
    let plans = repos.plans.list(sub.tenant_id).await?;
    let routers: Vec<_> = c
        .api
        .directory
        .all_routers()
        .await?
        .into_iter()
        .filter(|r| r.tenant_id == sub.tenant_id)
        .collect();
    let subject = format!("subscriber:{id}");
    let events: Vec<AuditEvent> = repos
        .audit
        .recent(AUDIT_SCAN)
        .await?
        .into_iter()
        .filter(|e| e.subject == subject)
        .take(20)
        .collect();
    let now = Utc::now();
    let left = sub.paid_until - now;
    let note = match done {
        Some("granted") => Some("Time granted."),
        Some("revoked") => Some("Access revoked."),
        _ => None,
    };
    Ok(layout(
        Some(s),
        &format!("Subscriber {}", sub.phone),
        html! {
            @if let Some(n) = note { p.note role="status" { (n) } }
            dl.facts {
                dt { "Username" } dd id="username" { (sub.username.as_str()) }
                dt { "Tenant" } dd { (sub.tenant_id.0) }
                dt { "Paid until" } dd id="paid-until" { (when(sub.paid_until)) }
                dt { "Time left" } dd id="time-left" { @if left.num_seconds() > 0 { (format_left(left)) } @else { span.bad { "none" } } }
                dt { "Disconnected" } dd { (when_opt(sub.disconnected_at)) }
            }
            section aria-labelledby="h-grant" {
                h2 id="h-grant" { "Grant time" }
                form.grant method="post" action=(format!("/console/subscribers/{}/grant", id.0)) {
                    (csrf(s))
                    label for="plan" { "Plan" }
                    select id="plan" name="plan" {
                        option value="" { "— by minutes instead —" }
                        @for p in &plans {
                            option value=(p.id.0) { (p.name.as_str()) " · " (p.price) @if let Some(d) = &p.duration { " · " (d) } }
                        }
                    }
                    label for="minutes" { "or minutes" }
                    input type="number" id="minutes" name="minutes" min="1" max="525600" inputmode="numeric";
                    button type="submit" id="grant" { "Grant" }
                }
                form.revoke method="post" action=(format!("/console/subscribers/{}/revoke", id.0)) {
                    (csrf(s))
                    button.danger type="submit" id="revoke" { "Revoke access now" }
                }
            }
            section aria-labelledby="h-devices" {
                h2 id="h-devices" { "Devices" }
                @if devices.is_empty() { p.muted { "None seen." } } @else {
                    ul { @for d in &devices { li { (d.mac) @if let Some(r) = d.router_id { " on router " (r.0) } " · last seen " (when(d.last_seen)) } } }
                }
            }
            section aria-labelledby="h-subrouters" {
                h2 id="h-subrouters" { "Routers of the tenant" }
                ul { @for r in &routers {
                    @let p = pending.iter().find(|g| g.router_id == r.id);
                    li { (r.name) " · " @if let Some(p) = p {
                        span.bad { "grant pending" } " (" (p.attempts) " attempt(s)" @if let Some(e) = &p.last_error { ": " (e) } ")"
                    } @else { span.ok { "in step" } } }
                } }
            }
            section aria-labelledby="h-events" {
                h2 id="h-events" { "Last events" }
                @if events.is_empty() { p.muted { "None." } } @else {
                    ul { @for e in &events { li { (event_line(e)) } } }
                }
            }
        },
    ))
}

fn format_left(d: Duration) -> String {
    let m = d.num_minutes();
    if m >= 60 * 24 {
        format!("{} d {} h", m / (60 * 24), (m / 60) % 24)
    } else if m >= 60 {
        format!("{} h {} min", m / 60, m % 60)
    } else {
        format!("{} min {} s", m, d.num_seconds() % 60)
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct GrantForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    minutes: String,
}

/// `POST /console/subscribers/{id}/grant`: a plan's time, or minutes.
pub(super) async fn grant(
    State(c): St,
    headers: HeaderMap,
    Path(raw): Path<String>,
    form: FormOf<GrantForm>,
) -> Response {
    let Ok(Form(f)) = form else {
        return match c.session(&headers) {
            Ok(s) => bad_input(&s, "The form could not be read."),
            Err(r) => *r,
        };
    };
    let s = match c.guard(&headers, &f.csrf) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let result = async {
        let id = sub_id(&raw)?;
        let engine = c.api.runner.engine().clone();
        let sub = engine.deps().repos.subscribers.get(id).await?;
        let ext = match (f.plan.trim(), f.minutes.trim()) {
            ("", "") => return Err(Error::invalid("plan", "", "choose a plan or give minutes")),
            (p, "") => {
                let pid = p
                    .parse::<i64>()
                    .map_err(|_| Error::invalid("plan", p, "not a plan id"))?;
                let plans = engine.deps().repos.plans.list(sub.tenant_id).await?;
                let plan = plans
                    .into_iter()
                    .find(|x| x.id == PlanId(pid))
                    .ok_or_else(|| Error::not_found("plan", p))?;
                Extension::Plan(plan.id)
            }
            ("", m) => {
                let mins = m
                    .parse::<u64>()
                    .ok()
                    .filter(|m| (1..=525_600).contains(m))
                    .ok_or_else(|| Error::invalid("minutes", m, "a whole number from 1 to 525600"))?;
                Extension::Seconds(mins * 60)
            }
            (_, _) => {
                return Err(Error::invalid(
                    "plan",
                    &f.plan,
                    "choose a plan or give minutes, not both",
                ))
            }
        };
        detached(async move { engine.grant(id, ext, None).await }).await
    }
    .await;
    match result {
        Ok(outcome) => {
            c.api.runner.nudge();
            grant_result(&s, "Time granted", &outcome)
        }
        Err(e) => failed(&s, &e),
    }
}

/// `POST /console/subscribers/{id}/revoke`.
pub(super) async fn revoke(
    State(c): St,
    headers: HeaderMap,
    Path(raw): Path<String>,
    form: FormOf<CsrfForm>,
) -> Response {
    let csrf_value = form.map(|Form(f)| f.csrf).unwrap_or_default();
    let s = match c.guard(&headers, &csrf_value) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let result = async {
        let id = sub_id(&raw)?;
        let engine = c.api.runner.engine().clone();
        detached(async move { engine.revoke(id).await }).await
    }
    .await;
    match result {
        Ok(outcome) => {
            c.api.runner.nudge();
            grant_result(&s, "Access revoked", &outcome)
        }
        Err(e) => failed(&s, &e),
    }
}

fn grant_result(s: &Session, title: &str, o: &isp_core::jobs::GrantOutcome) -> Response {
    page(
        StatusCode::OK,
        layout(
            Some(s),
            title,
            html! {
                p role="status" { "Subscriber " (o.subscriber.phone) " is paid until " strong id="paid-until" { (when(o.subscriber.paid_until)) } "." }
                @if o.duplicate_payment { p.note { "This payment was already counted." } }
                div.scroll { table id="router-results" {
                    thead { tr { th scope="col" { "Router" } th scope="col" { "State" } th scope="col" { "Error" } } }
                    tbody { @for r in &o.routers { tr {
                        th scope="row" { (r.router) } td { (format!("{:?}", r.state).to_lowercase()) } td { (r.error.as_deref().unwrap_or("")) }
                    } } }
                } }
                p { a href=(format!("/console/subscribers/{}", o.subscriber.id.0)) { "Back to the subscriber" } }
            },
        ),
    )
}

// ---------------------------------------------------------------- Vouchers

/// `GET /console/vouchers`: the batch form.
pub(super) async fn vouchers(State(c): St, headers: HeaderMap) -> Response {
    let s = match c.session(&headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let repos = &c.api.runner.engine().deps().repos;
    let mut choices = Vec::new();
    let tenants = match repos.tenants.list().await {
        Ok(t) => t,
        Err(e) => return failed(&s, &e),
    };
    for t in &tenants {
        match repos.plans.list(t.id).await {
            Ok(plans) => choices.extend(plans.into_iter().map(|p| (t.clone(), p))),
            Err(e) => return failed(&s, &e),
        }
    }
    page(
        StatusCode::OK,
        layout(
            Some(&s),
            "Vouchers",
            html! {
                form.vouchers method="post" action="/console/vouchers" {
                    (csrf(&s))
                    label for="voucher-plan" { "Plan" }
                    select id="voucher-plan" name="plan" required {
                        @for (t, p) in &choices {
                            option value=(format!("{}:{}", t.id.0, p.id.0)) { (t.name) " · " (p.name.as_str()) " · " (p.price) }
                        }
                    }
                    label for="count" { "How many" }
                    input type="number" id="count" name="count" min="1" max=(MAX_BATCH) value="20" required inputmode="numeric";
                    label for="prefix" { "Code prefix (optional)" }
                    input type="text" id="prefix" name="prefix" maxlength="8" autocomplete="off";
                    button type="submit" id="generate" { "Generate and print" }
                }
            },
        ),
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct VoucherForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    count: String,
    #[serde(default)]
    prefix: String,
}

/// `POST /console/vouchers`: generates the batch and answers its print sheet.
pub(super) async fn generate_vouchers(
    State(c): St,
    headers: HeaderMap,
    form: FormOf<VoucherForm>,
) -> Response {
    let Ok(Form(f)) = form else {
        return match c.session(&headers) {
            Ok(s) => bad_input(&s, "The form could not be read."),
            Err(r) => *r,
        };
    };
    let s = match c.guard(&headers, &f.csrf) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let result = async {
        let engine = c.api.runner.engine().clone();
        let (t, p) = f
            .plan
            .split_once(':')
            .and_then(|(t, p)| Some((t.parse::<i64>().ok()?, p.parse::<i64>().ok()?)))
            .ok_or_else(|| Error::invalid("plan", &f.plan, "not a plan of the list"))?;
        let tenant = engine
            .deps()
            .repos
            .tenants
            .list()
            .await?
            .into_iter()
            .find(|x| x.id == TenantId(t))
            .ok_or_else(|| Error::not_found("tenant", t))?;
        let plan = engine
            .deps()
            .repos
            .plans
            .list(tenant.id)
            .await?
            .into_iter()
            .find(|x| x.id == PlanId(p))
            .ok_or_else(|| Error::not_found("plan", p))?;
        let count = f
            .count
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_BATCH).contains(n))
            .ok_or_else(|| {
                Error::invalid("count", &f.count, format!("a whole number from 1 to {MAX_BATCH}"))
            })?;
        let prefix = Some(f.prefix.trim().to_owned()).filter(|x| !x.is_empty());
        let (tid, pid) = (tenant.id, plan.id);
        let batch =
            detached(async move { engine.generate_vouchers(tid, pid, count, prefix.as_deref()).await })
                .await?;
        Ok::<_, Error>((tenant, plan, batch))
    }
    .await;
    let (tenant, plan, batch) = match result {
        Ok(x) => x,
        Err(e) => return failed(&s, &e),
    };
    c.api.runner.nudge();
    let validity = plan
        .duration
        .as_ref()
        .map(|d| d.to_string())
        .unwrap_or_else(|| "no time limit".into());
    page(
        StatusCode::CREATED,
        layout(
            Some(&s),
            &format!("{} vouchers · {}", batch.vouchers.len(), plan.name.as_str()),
            html! {
                p.noprint {
                    button type="button" id="print" data-print { "Print" }
                    " Cards are laid out for an A4 sheet; cut along the dashed lines."
                }
                div.sheet id="sheet" {
                    @for v in &batch.vouchers {
                        div.card {
                            p.tenant { (tenant.name) }
                            p.code { (v.code.as_str()) }
                            p.plan { (plan.name.as_str()) " · " (plan.price) }
                            p.validity { "Valid for " (validity) }
                            @if let Some(d) = v.activation_deadline { p.deadline { "Use by " (d.format("%Y-%m-%d")) } }
                        }
                    }
                }
            },
        ),
    )
}

// ---------------------------------------------------------------- Jobs and routers

/// `GET /console/jobs`: jobs (dry run, then run) and routers (check).
pub(super) async fn jobs(State(c): St, headers: HeaderMap) -> Response {
    let s = match c.session(&headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let routers = match c.api.directory.all_routers().await {
        Ok(r) => r,
        Err(e) => return failed(&s, &e),
    };
    page(
        StatusCode::OK,
        layout(
            Some(&s),
            "Jobs & routers",
            html! {
                section aria-labelledby="h-jobs" {
                    h2 id="h-jobs" { "Jobs" }
                    p { "A dry run shows what a job would do; the page it answers can then run it for real." }
                    (jobs_table(&c, Some(&s)))
                }
                section aria-labelledby="h-routers" {
                    h2 id="h-routers" { "Routers" }
                    div.scroll { table {
                        thead { tr { th scope="col" { "Router" } th scope="col" { "Tenant" } th scope="col" { "Address" } th scope="col" { "Action" } } }
                        tbody { @for r in &routers { tr {
                            th scope="row" { (r.name) } td { (r.tenant_id.0) } td { (r.address) }
                            td { form method="post" action=(format!("/console/routers/{}/check", r.id.0)) {
                                (csrf(&s))
                                button type="submit" aria-label=(format!("Check {}", r.name)) { "Check" }
                            } }
                        } } }
                    } }
                }
            },
        ),
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct RunForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    dry_run: String,
}

/// `POST /console/jobs/{job}`: a dry run (with a button to run for real) or a run.
pub(super) async fn run_job(
    State(c): St,
    headers: HeaderMap,
    Path(raw): Path<String>,
    form: FormOf<RunForm>,
) -> Response {
    let (csrf_value, dry) = form
        .map(|Form(f)| (f.csrf, f.dry_run != "false"))
        .unwrap_or_default();
    let s = match c.guard(&headers, &csrf_value) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let job = match JobKind::parse(&raw) {
        Ok(j) => j,
        Err(e) => return failed(&s, &e),
    };
    let runner = c.api.runner.clone();
    let opts = RunOptions { dry_run: dry };
    let report = detached(async move { runner.run(job, opts, Trigger::Api).await }).await;
    let report = match report {
        Ok(r) => r,
        Err(e) => return failed(&s, &e),
    };
    if !dry {
        c.api.runner.nudge();
    }
    page(
        StatusCode::OK,
        layout(
            Some(&s),
            &format!("{} {}", job.name(), if dry { "(dry run)" } else { "(ran)" }),
            html! {
                pre id="report" { (report.to_string()) }
                @if dry {
                    form method="post" action=(format!("/console/jobs/{}", job.name())) {
                        (csrf(&s))
                        input type="hidden" name="dry_run" value="false";
                        button type="submit" id="run-for-real" { "Run " (job.name()) " for real" }
                    }
                }
                p { a href="/console/jobs" { "Back to the jobs" } }
            },
        ),
    )
}

/// `POST /console/routers/{id}/check`.
pub(super) async fn check_router(
    State(c): St,
    headers: HeaderMap,
    Path(raw): Path<String>,
    form: FormOf<CsrfForm>,
) -> Response {
    let csrf_value = form.map(|Form(f)| f.csrf).unwrap_or_default();
    let s = match c.guard(&headers, &csrf_value) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let result = async {
        let id = raw
            .parse::<i64>()
            .ok()
            .filter(|i| *i > 0)
            .ok_or_else(|| Error::invalid("router id", &raw, "expected a positive integer"))?;
        let router = c.api.directory.router(RouterId(id)).await?;
        let deps = c.api.runner.engine().deps();
        Ok::<_, Error>(check(deps.driver.as_ref(), deps.clock.as_ref(), &router).await)
    }
    .await;
    let r = match result {
        Ok(r) => r,
        Err(e) => return failed(&s, &e),
    };
    page(
        StatusCode::OK,
        layout(
            Some(&s),
            &format!("Router {}", r.name),
            html! {
                dl.facts id="check" {
                    dt { "State" } dd { @if r.online { span.ok { "online" } } @else { span.bad { "offline" } } }
                    dt { "Address" } dd { (r.address) }
                    dt { "Identity" } dd { (r.identity.as_deref().unwrap_or("—")) }
                    dt { "RouterOS version" } dd { (r.version.as_deref().unwrap_or("—")) }
                    dt { "Latency" } dd { @if let Some(l) = r.latency_ms { (l) " ms" } @else { "—" } }
                    dt { "Router clock" } dd { (when_opt(r.router_clock)) }
                }
                p { a href="/console/jobs" { "Back to jobs and routers" } }
            },
        ),
    )
}

// ---------------------------------------------------------------- Audit

#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditQuery {
    subject: Option<String>,
    router: Option<String>,
    action: Option<String>,
}

/// Events shown at most on the audit page.
const AUDIT_SHOWN: usize = 200;

/// `GET /console/audit`: the audit log, newest first, filtered.
pub(super) async fn audit(
    State(c): St,
    headers: HeaderMap,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = match c.session(&headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let q = query_or_default(q);
    let subject = q.subject.unwrap_or_default();
    let router = q.router.unwrap_or_default();
    let action = q.action.unwrap_or_default();
    let router_id = match router.trim() {
        "" => None,
        raw => match raw.parse::<i64>() {
            Ok(i) => Some(i),
            Err(_) => return failed(&s, &Error::invalid("router", raw, "expected a router id")),
        },
    };
    let events = match c.api.runner.engine().deps().repos.audit.recent(AUDIT_SCAN).await {
        Ok(e) => e,
        Err(e) => return failed(&s, &e),
    };
    let shown: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| subject.trim().is_empty() || e.subject.contains(subject.trim()))
        .filter(|e| router_id.is_none_or(|r| e.router_id.map(|x| x.0) == Some(r)))
        .filter(|e| action.trim().is_empty() || e.action.contains(action.trim()))
        .take(AUDIT_SHOWN)
        .collect();
    page(
        StatusCode::OK,
        layout(
            Some(&s),
            "Audit log",
            html! {
                form.filters method="get" action="/console/audit" {
                    label for="f-subject" { "Subject" }
                    input type="text" id="f-subject" name="subject" value=(subject) placeholder="subscriber:42";
                    label for="f-router" { "Router id" }
                    input type="text" id="f-router" name="router" value=(router) inputmode="numeric";
                    label for="f-action" { "Action or job" }
                    input type="text" id="f-action" name="action" value=(action) placeholder="disconnect";
                    button type="submit" { "Filter" }
                }
                p.small { "Newest first; at most " (AUDIT_SHOWN) " of the last " (AUDIT_SCAN) " events." }
                div.scroll { table id="audit" {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Action" } th scope="col" { "Subject" } th scope="col" { "Router" } th scope="col" { "Outcome" } th scope="col" { "Reason" } } }
                    tbody { @for e in &shown { tr {
                        td { (when(e.at)) } td { (e.action) } td { (subject_link(&e.subject)) }
                        td { @if let Some(r) = e.router_id { (r.0) } }
                        td { (format!("{:?}", e.outcome).to_lowercase()) } td { (e.reason.as_deref().unwrap_or("")) }
                    } } }
                } }
            },
        ),
    )
}
