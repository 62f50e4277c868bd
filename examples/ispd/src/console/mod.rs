//! The operator console: server-rendered HTML (maud) served by the daemon
//! beside the JSON API, with one stylesheet and one small script embedded in
//! the binary (no build toolchain, no CDN: it works on an offline LAN).
//!
//! `GET /` without a session shows a login form (one field, `token`: the
//! admin token). A right token sets an `HttpOnly`, `SameSite=Strict` session
//! cookie with an expiry (`Secure` when a proxy says the request came over
//! TLS); a wrong one is refused without saying why, and a client that sends
//! [`session::MAX_FAILURES`] wrong tokens within a minute is refused outright
//! for the rest of it. Every action is a POST carrying the session's CSRF
//! token.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | login, or the "Now" page: routers (with their RouterOS version), overdue and expiring subscribers, pending grants, foreign objects, jobs (last and next run), what needs attention, the last hour's removals and enforcement lag per minute |
//! | `GET /console/live` | the "Now" page's live part (the script polls it every second) |
//! | `GET /console/subscribers?q=` | find by phone, username or id |
//! | `GET /console/subscribers/{id}` | paid time, devices, routers, pending grants, last events; grant and revoke forms |
//! | `GET /console/vouchers` | a batch form; the POST answers a printable A4 sheet of cards |
//! | `GET /console/jobs` | jobs (dry run, then run) and routers (check) |
//! | `GET /console/audit` | the audit log, filtered by subject, router and action |
//!
//! Writes go through the same [`Engine`](isp_core::jobs::Engine) use cases and
//! [`JobRunner`](isp_core::runtime::JobRunner) as the JSON API.

mod pages;
pub(crate) mod session;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Form;
use maud::Markup;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::api::ApiState;
use session::{Session, Sessions};

/// What the console's handlers share.
pub(crate) struct Console {
    api: Arc<ApiState>,
    sessions: Sessions,
}

type St = State<Arc<Console>>;

/// The console's routes (outside the bearer-token layer: they have their own sessions).
pub(crate) fn routes(api: Arc<ApiState>, body_limit: usize) -> axum::Router {
    let console = Arc::new(Console {
        api,
        sessions: Sessions::default(),
    });
    axum::Router::new()
        .route("/", get(home))
        .route("/console/login", post(login))
        .route("/console/logout", post(logout))
        .route("/console/live", get(pages::live))
        .route("/console/subscribers", get(pages::subscribers))
        .route("/console/subscribers/{id}", get(pages::subscriber))
        .route("/console/subscribers/{id}/grant", post(pages::grant))
        .route("/console/subscribers/{id}/revoke", post(pages::revoke))
        .route(
            "/console/vouchers",
            get(pages::vouchers).post(pages::generate_vouchers),
        )
        .route("/console/jobs", get(pages::jobs))
        .route("/console/jobs/{job}", post(pages::run_job))
        .route("/console/routers/{id}/check", post(pages::check_router))
        .route("/console/audit", get(pages::audit))
        .route("/console/assets/app.css", get(css))
        .route("/console/assets/app.js", get(js))
        .route("/console/assets/icon.svg", get(icon))
        .route("/favicon.ico", get(icon))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(console)
}

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");
const ICON: &str = include_str!("assets/icon.svg");

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// An HTML page; never cached, never framed.
fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
            ),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// Where a request without a session goes.
fn to_login() -> Response {
    Redirect::to("/").into_response()
}

impl Console {
    /// The request's session, or a redirect to the login form.
    fn session(&self, headers: &HeaderMap) -> Result<Session, Box<Response>> {
        self.sessions.of(headers).ok_or_else(|| Box::new(to_login()))
    }

    /// The session, when the form's CSRF token is its own.
    fn guard(&self, headers: &HeaderMap, csrf: &str) -> Result<Session, Box<Response>> {
        let s = self.session(headers)?;
        if !s.csrf_ok(csrf) {
            return Err(Box::new(html(
                StatusCode::FORBIDDEN,
                views::message(
                    &s,
                    "Form expired",
                    "This form is from another session. Reload the page and try again.",
                ),
            )));
        }
        Ok(s)
    }
}

/// Who a request is from, for the login rate limit.
fn client_of(conn: Option<&ConnectInfo<SocketAddr>>) -> String {
    conn.map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

async fn home(State(c): St, headers: HeaderMap) -> Response {
    match c.sessions.of(&headers) {
        Some(s) => pages::now(&c, &s).await,
        None => html(StatusCode::OK, views::login(None)),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

async fn login(
    State(c): St,
    conn: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let client = client_of(conn.as_ref().map(|e| &e.0));
    if !c.sessions.may_try(&client) {
        tracing::warn!(%client, "console: login refused (too many wrong tokens)");
        return html(
            StatusCode::TOO_MANY_REQUESTS,
            views::login(Some("Login refused.")),
        );
    }
    let presented = form.map(|Form(f)| f.token).unwrap_or_default();
    let ok = !presented.is_empty()
        && bool::from(presented.trim().as_bytes().ct_eq(c.api.token.expose().as_bytes()));
    if !ok {
        c.sessions.failed(&client);
        tracing::warn!(%client, "console: login refused");
        return html(StatusCode::UNAUTHORIZED, views::login(Some("Login refused.")));
    }
    let (id, _) = c.sessions.create();
    tracing::info!(%client, "console: logged in");
    let mut resp = Redirect::to("/").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(&id, session::over_tls(&headers)),
    );
    resp
}

/// A form that carries nothing but the CSRF token.
#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(c): St,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if let Err(resp) = c.guard(&headers, &csrf) {
        return *resp;
    }
    c.sessions.end(&headers);
    let mut resp = Redirect::to("/").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    resp
}

/// A query string that could not be read: the page with its defaults.
fn query_or_default<T: Default>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> T {
    q.map(|Query(q)| q).unwrap_or_default()
}

#[cfg(test)]
mod tests;
