//! Session, CSRF and login-limit behaviour through the whole router (`oneshot`).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use isp_core::jobs::{Engine, EngineConfig, EngineDeps};
use isp_core::memory::{RecordingSms, StaticDirectory};
use isp_core::runtime::{JobRunner, SystemClock};
use isp_routeros::driver::{DriverConfig, RouterOsDriver};
use tower::ServiceExt as _;

use super::session::{COOKIE, MAX_FAILURES};
use crate::api::{router, ApiState};
use crate::config::AdminToken;

const TOKEN: &str = "console-test-token-0123456789";

fn app() -> axum::Router {
    let (app, _) = app_and_runner();
    app
}

/// The console and the JSON API over memory repositories and no routers, and their runner.
fn app_and_runner() -> (axum::Router, JobRunner) {
    let directory = Arc::new(StaticDirectory::new(Vec::new()));
    let engine = Engine::new(
        EngineDeps {
            repos: isp_core::memory::repositories(),
            directory: directory.clone(),
            driver: Arc::new(RouterOsDriver::new(DriverConfig::default()).expect("driver")),
            sms: Arc::new(RecordingSms::new()),
            clock: Arc::new(SystemClock),
        },
        EngineConfig::default(),
    );
    let runner = JobRunner::new(engine);
    let state = ApiState {
        runner: runner.clone(),
        directory,
        token: AdminToken::new(TOKEN).expect("token"),
        metrics: None,
        watcher_expected: false,
        cleartext: Vec::new(),
    };
    (router(state, 64 * 1024), runner)
}

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, headers, String::from_utf8_lossy(&bytes).into_owned())
}

fn post_form(path: &str, body: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(body.to_owned())).expect("request")
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).expect("request")
}

/// Logs in; returns the `Cookie` header value and the `Set-Cookie` it came from.
async fn log_in(app: &axum::Router) -> (String, String) {
    let (status, headers, _) = send(app, post_form("/console/login", &format!("token={TOKEN}"), None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set = headers
        .get(header::SET_COOKIE)
        .expect("Set-Cookie")
        .to_str()
        .expect("ascii")
        .to_owned();
    let pair = set.split(';').next().expect("pair").to_owned();
    (pair, set)
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("csrf field") + "name=\"csrf\" value=\"".len();
    page[at..at + 64].to_owned()
}

#[tokio::test]
async fn without_a_session_the_root_is_a_login_form_and_pages_redirect_to_it() {
    let app = app();
    let (status, _, body) = send(&app, get("/", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("name=\"token\"") && body.contains("<label for=\"token\""),
        "{body}"
    );
    for path in [
        "/console/subscribers",
        "/console/jobs",
        "/console/audit",
        "/console/vouchers",
    ] {
        let (status, headers, _) = send(&app, get(path, None)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(headers.get(header::LOCATION).expect("location"), "/");
    }
    let (status, _, _) = send(&app, get("/console/live", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_right_token_sets_a_strict_http_only_expiring_cookie() {
    let app = app();
    let (cookie, set) = log_in(&app).await;
    assert!(cookie.starts_with(&format!("{COOKIE}=")), "{set}");
    for part in ["HttpOnly", "SameSite=Strict", "Max-Age=", "Path=/"] {
        assert!(set.contains(part), "{part} missing in {set}");
    }
    assert!(!set.contains("Secure"), "{set}");
    let (status, _, body) = send(&app, get("/", Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("<h1>Now</h1>") && body.contains("id=\"live\""),
        "{body}"
    );
    let (status, _, body) = send(&app, get("/console/live", Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Routers") && !body.contains("<html"), "{body}");

    let tls = Request::post("/console/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", "https")
        .body(Body::from(format!("token={TOKEN}")))
        .expect("request");
    let (_, headers, _) = send(&app, tls).await;
    let set = headers
        .get(header::SET_COOKIE)
        .expect("cookie")
        .to_str()
        .expect("ascii");
    assert!(set.ends_with("; Secure"), "{set}");
}

#[tokio::test]
async fn a_wrong_token_is_refused_without_a_reason_and_the_client_is_limited() {
    let app = app();
    let sent = "wrong-token-that-must-not-echo";
    for _ in 0..MAX_FAILURES {
        let (status, headers, body) =
            send(&app, post_form("/console/login", &format!("token={sent}"), None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(headers.get(header::SET_COOKIE).is_none());
        assert!(body.contains("Login refused.") && !body.contains(sent), "{body}");
    }
    // Past the limit even the right token is refused.
    let (status, headers, body) =
        send(&app, post_form("/console/login", &format!("token={TOKEN}"), None)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.get(header::SET_COOKIE).is_none());
    assert!(body.contains("Login refused."));
}

#[tokio::test]
async fn actions_need_the_sessions_csrf_token_and_logout_ends_the_session() {
    let app = app();
    let (cookie, _) = log_in(&app).await;
    let (_, _, page) = send(&app, get("/console/jobs", Some(&cookie))).await;
    let csrf = csrf_of(&page);

    let (status, _, _) = send(&app, post_form("/console/logout", "csrf=forged", Some(&cookie))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send(
        &app,
        post_form("/console/jobs/sync-routers", "dry_run=true", Some(&cookie)),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Another session's token does not do either.
    let (other, _) = log_in(&app).await;
    let (status, _, _) = send(
        &app,
        post_form("/console/logout", &format!("csrf={csrf}"), Some(&other)),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // No session at all: back to the login form.
    let (status, _, _) = send(&app, post_form("/console/logout", &format!("csrf={csrf}"), None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    let (status, _, body) = send(
        &app,
        post_form(
            "/console/jobs/sync-routers",
            &format!("csrf={csrf}&dry_run=true"),
            Some(&cookie),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("(dry run)") && body.contains("id=\"run-for-real\""),
        "{body}"
    );

    let (status, headers, _) = send(
        &app,
        post_form("/console/logout", &format!("csrf={csrf}"), Some(&cookie)),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cleared = headers
        .get(header::SET_COOKIE)
        .expect("cookie")
        .to_str()
        .expect("ascii");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let (status, _, _) = send(&app, get("/console/live", Some(&cookie))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = send(&app, get("/", Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("name=\"token\""));
}

#[tokio::test]
async fn the_json_api_still_wants_the_bearer_token_and_a_session_is_not_one() {
    let app = app();
    let (cookie, _) = log_in(&app).await;
    let (status, _, _) = send(&app, get("/api/health", Some(&cookie))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let req = Request::get("/api/health")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("request");
    let (status, _, _) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = send(&app, get("/no/such/route", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[test]
fn a_chart_has_one_bar_per_minute_and_a_text_alternative() {
    use super::views::{chart, Bar};
    let bars: Vec<Bar> = (0..60)
        .map(|i| Bar {
            value: if i == 59 { 4.0 } else { 0.0 },
            inner: (i == 59).then_some(1.5),
            title: format!("minute {i}"),
        })
        .collect();
    let html = chart("c", "Removals: 4 in all", &bars, |v| format!("{v} removed")).into_string();
    // 60 bars and the one inner bar.
    assert_eq!(html.matches("<rect").count(), 61, "{html}");
    assert!(
        html.contains(r#"role="img" aria-labelledby="c-caption""#),
        "{html}"
    );
    assert!(
        html.contains(r#"<figcaption id="c-caption">Removals: 4 in all</figcaption>"#),
        "{html}"
    );
    // The tallest bar fills the height (58 of 60); an empty minute draws nothing.
    assert!(html.contains(r#"y="2" width="5" height="58""#), "{html}");
    assert!(html.contains(r#"height="0""#), "{html}");
    assert!(html.contains("top: 4 removed"), "{html}");
}

#[tokio::test]
async fn the_now_page_shows_next_runs_versions_and_the_last_hour() {
    use isp_core::jobs::JobKind;
    use isp_core::runtime::{Runtime, SchedulerConfig, Shutdown};
    let (app, runner) = app_and_runner();
    let (cookie, _) = log_in(&app).await;
    // Without a scheduler, no job has a next run.
    let (_, _, body) = send(&app, get("/console/live", Some(&cookie))).await;
    assert!(body.contains("<th scope=\"col\">Next run</th>"), "{body}");
    assert!(body.contains("<th scope=\"col\">RouterOS</th>"), "{body}");
    assert!(body.contains("not scheduled"), "{body}");
    assert!(
        body.contains("id=\"chart-removals\"") && body.contains("id=\"chart-lag\""),
        "{body}"
    );
    assert!(body.contains("Removals per minute, last hour: none"), "{body}");
    assert_eq!(body.matches("<rect").count(), 120, "{body}");

    let config = SchedulerConfig {
        watcher_enabled: false,
        voucher_listen: false,
        ..SchedulerConfig::default()
    };
    let runtime = Runtime::start_with(runner.clone(), &config, Shutdown::new());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while runner.next_runs().len() < JobKind::ALL.len() {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", runner.next_runs());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let next = runner.next_runs()[&JobKind::DeviceCleanup];
    let at = next.scheduled.expect("device-cleanup is on a schedule");
    let (_, _, body) = send(&app, get("/console/live", Some(&cookie))).await;
    let row = body
        .split("<tr data-job=\"device-cleanup\">")
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("device-cleanup's row");
    assert!(
        row.contains(&format!(
            "{} <span class=\"small\">(schedule)</span>",
            super::views::when(at)
        )),
        "{row}"
    );
    runtime.stop().await;
}
