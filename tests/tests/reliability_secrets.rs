//! Reliability scenario 5: secrets (promise 6: router passwords, SMS API keys,
//! admin tokens and PPPoE passwords never appear in logs, `Debug` output,
//! errors, metrics or API responses) and pinned TLS.
//!
//! - `ispd demo` as a child process, with every log at `trace` (every crate):
//!   its router password and admin token must not appear in its logs, API
//!   responses or metrics (the token is printed once, on purpose, in the
//!   demo's banner on stdout, and nowhere else).
//! - `ispd run` with a configuration: routers with passwords from a file, the
//!   environment and inline; one with a wrong password; api-ssl routers with a
//!   pinned and a wrong fingerprint; an SMS gateway (webhook) whose API key
//!   comes from the environment and which, while failing, echoes that key in
//!   its error replies; faults on the routers (refused logins, an outage,
//!   dropped connections); logs at `trace`. Its logs, `ispd status`, `ispd
//!   once`, `ispd check-routers`, every API response, `/metrics`, the audit log
//!   and the router status table hold no secret. The api-ssl router with a
//!   wrong fingerprint is refused before the password is sent; the pinned one is
//!   accepted.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use isp_adapters_sql::SqlStore;
use isp_core::domain::{Connection, RosName, SecretPassword, ServiceStatus, TenantId};
use isp_routeros::client::certificate_fingerprint;
use isp_routeros::sim::tls::self_signed;
use isp_routeros::sim::{SimConfig, SimFleet, SimRouter};
use isp_tests::reliability::process::{run_ispd, Ispd};
use isp_tests::reliability::sms_server::{Mode, SmsGateway};
use isp_tests::reliability::world::{add_service, add_subscriber, sessions_of, Fleet, Layout};

/// The base64 characters that encode `secret` wherever it starts in a longer
/// base64 stream (as the password in `user:password` of a Basic auth header):
/// for each of the 3 alignments, the characters that depend on its bytes only.
fn base64_fragments(secret: &str, engine: &impl base64::Engine) -> Vec<String> {
    (0..3usize)
        .filter_map(|k| {
            let mut bytes = vec![0u8; k];
            bytes.extend_from_slice(secret.as_bytes());
            let text = engine.encode(&bytes);
            let first = (8 * k).div_ceil(6);
            let last = (8 * (k + secret.len())) / 6;
            (last > first + 4).then(|| text.get(first..last).unwrap_or_default().to_owned())
        })
        .filter(|f| !f.is_empty())
        .collect()
}

/// A secret as it could leak besides verbatim: base64 (standard and URL-safe,
/// alone or inside a longer value such as a Basic auth header), percent-encoded
/// with upper- or lower-case hex (in a URL or a form body), and JSON-escaped
/// (in a JSON log line or API reply).
fn encodings(secret: &str) -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    let percent: String = secret
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let json = serde_json::to_string(secret).unwrap_or_default();
    let mut all = vec![
        ("verbatim", secret.to_owned()),
        ("base64", base64::engine::general_purpose::STANDARD.encode(secret)),
        (
            "base64url",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
        ),
        ("percent-encoded, lower-case hex", percent.to_lowercase()),
        ("percent-encoded", percent),
        ("JSON-escaped", json.trim_matches('"').to_owned()),
    ];
    for f in base64_fragments(secret, &base64::engine::general_purpose::STANDARD) {
        all.push(("base64, inside a longer value", f));
    }
    for f in base64_fragments(secret, &base64::engine::general_purpose::URL_SAFE_NO_PAD) {
        all.push(("base64url, inside a longer value", f));
    }
    all
}

/// The checker itself: a Basic auth header carrying the password is caught.
#[test]
#[should_panic(expected = "base64, inside a longer value")]
fn a_password_inside_a_basic_auth_header_is_caught() {
    use base64::Engine as _;
    let header = format!(
        "authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode("root:Rou7er-pa55!word")
    );
    assert_clean(
        "a captured request",
        &header,
        &[("router password", "Rou7er-pa55!word")],
    );
}

/// The checker itself: lower-case percent-encoding is caught.
#[test]
#[should_panic(expected = "percent-encoded, lower-case hex")]
fn a_lower_case_percent_encoded_secret_is_caught() {
    assert_clean(
        "a captured URL",
        "GET /send?key=k%2fey%3d1",
        &[("SMS key", "k/ey=1")],
    );
}

/// Fails with the first place a secret shows up, verbatim or encoded (a little
/// context around it, the secret itself masked).
fn assert_clean(what: &str, text: &str, secrets: &[(&str, &str)]) {
    for (name, plain) in secrets {
        for (how, secret) in encodings(plain) {
            let secret = secret.as_str();
            assert_clean_one(what, text, &format!("{name} ({how})"), secret);
        }
    }
}

fn assert_clean_one(what: &str, text: &str, name: &str, secret: &str) {
    {
        if let Some(at) = text.find(secret) {
            let from = text[..at].char_indices().rev().nth(120).map_or(0, |(i, _)| i);
            let to = (at + secret.len() + 120).min(text.len());
            let to = (to..=text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(text.len());
            let context = text[from..to].replace(secret, "<THE SECRET>");
            panic!(
                "{name} appears {} time(s) in {what}; first at byte {at}: ...{context}...",
                text.matches(secret).count()
            );
        }
    }
}

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

async fn get(url: &str, token: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn post(url: &str, token: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_no_secret_outside_its_banner() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("demo");
    let demo = Ispd::start(
        &[
            "--log-format",
            "json",
            "demo",
            "--duration-secs",
            "12",
            "--purchase-every-secs",
            "1",
            "--data-dir",
            data.to_str().expect("utf-8 path"),
        ],
        dir.path(),
        &[("RUST_LOG", "trace")],
    );
    let (api, token) = demo
        .wait_stdout(Duration::from_secs(60), |out| {
            out.lines().find(|l| l.contains("admin API")).and_then(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let api = w.iter().find(|x| x.starts_with("http://"))?.to_string();
                let token = w
                    .iter()
                    .position(|x| *x == "token:")
                    .and_then(|i| w.get(i + 1))?
                    .to_string();
                Some((api, token))
            })
        })
        .unwrap_or_else(|| panic!("no banner from the demo:\n{}", demo.stderr()));
    let router_password = std::fs::read_to_string(data.join("router.password"))
        .expect("router.password")
        .trim()
        .to_owned();
    assert_eq!(
        std::fs::read_to_string(data.join("admin.token"))
            .expect("token")
            .trim(),
        token
    );

    // Use the API while it runs.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut responses = String::new();
    for path in [
        "/api/health",
        "/metrics",
        "/api/routers/1/check",
        "/api/routers/2/check",
        "/nope",
    ] {
        let (status, body) = get(&format!("{api}{path}"), &token).await;
        responses.push_str(&format!("GET {path} {status}\n{body}\n"));
    }
    for path in [
        "/api/jobs/sync-routers",
        "/api/jobs/router-health",
        "/api/jobs/disconnect-expired",
    ] {
        let (status, body) = post(&format!("{api}{path}"), &token).await;
        assert_eq!(status, 200, "{path}: {body}");
        responses.push_str(&format!("POST {path} {status}\n{body}\n"));
    }
    // A wrong token that is itself a secret (someone pasted the router password).
    let (status, body) = get(&format!("{api}/api/health"), &router_password).await;
    assert_eq!(status, 401);
    responses.push_str(&body);
    let (_, metrics) = get(&format!("{api}/metrics"), &token).await;
    assert!(metrics.contains("ispd_job_runs_total"), "{metrics}");
    // The CLI against the demo's configuration.
    let cfg = data.join("ispd.toml");
    let cfg = cfg.to_str().expect("utf-8");
    let mut cli = String::new();
    for args in [
        vec!["status", "--json", "--config", cfg],
        vec!["check-routers", "--config", cfg],
        vec!["once", "sync-routers", "--json", "--config", cfg],
    ] {
        let (code, out, err) = run_ispd(
            &args,
            dir.path(),
            &[("RUST_LOG", "trace")],
            Duration::from_secs(60),
        );
        assert!(code.is_some(), "{args:?} did not finish");
        cli.push_str(&out);
        cli.push_str(&err);
    }

    let (status, stdout, stderr) = demo.wait(Duration::from_secs(60));
    assert!(
        status.is_some_and(|s| s.success()),
        "demo failed: {status:?}\n{stderr}"
    );
    assert!(
        stdout.contains("sessions removed"),
        "the demo did nothing: {stdout}"
    );
    let secrets = [
        ("the router password", router_password.as_str()),
        ("the admin token", token.as_str()),
    ];
    assert_clean("the demo's logs (stderr, trace)", &stderr, &secrets);
    assert_clean("API responses", &responses, &secrets);
    assert_clean("/metrics", &metrics, &secrets);
    assert_clean("CLI output and logs", &cli, &secrets);
    // Stdout: the token only in the banner, the password nowhere.
    assert_clean("the demo's stdout", &stdout, &secrets[..1]);
    let banner_end = stdout.find("Removals on the routers").expect("banner");
    assert_clean(
        "the demo's stdout after its banner",
        &stdout[banner_end..],
        &secrets[1..],
    );
    eprintln!(
        "scenario 5 demo: {} log lines at trace ({} KiB), {} KiB of API responses, {} KiB of metrics, {} KiB of \
         CLI output: 0 occurrences of the router password or the admin token (token printed once, in the banner)",
        stderr.lines().count(),
        stderr.len() / 1024,
        responses.len() / 1024,
        metrics.len() / 1024,
        cli.len() / 1024
    );
}

const PW_FILE: &str = "rtr-file-pw-0a7c41e9";
const PW_ENV: &str = "rtr-env-pw-b35d8812";
const PW_INLINE_WRONG: &str = "rtr-inline-pw-77e0c3aa";
const PW_TLS: &str = "rtr-tls-pw-5f19b2c4";
const SMS_KEY: &str = "sms-api-key-c0ffee1234abcd";
const ADMIN_TOKEN: &str = "admin-token-9d8c7b6a5f4e3d2c";
const PPP_PW: &str = "ppp-pw-300";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_daemon_under_faults_shows_no_secret_and_pins_tls() {
    let dir = tempfile::tempdir().expect("dir");
    // R1-R3 plain (R1 password from a file, R2 from the environment; R3 is
    // configured with a wrong inline password); R4 api-ssl pinned; R5 api-ssl
    // with a wrong pin.
    let fleet = Fleet::start(1, PW_FILE, false, 5).await;
    let r2 = SimRouter::start(
        SimConfig::new("isp", PW_ENV),
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("r2");
    let r3 = SimRouter::start(
        SimConfig::new("isp", "the-real-r3-pw"),
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("r3");
    let cert = self_signed(&["localhost", "127.0.0.1"]).expect("cert");
    let mut tls = SimConfig::new("isp", PW_TLS);
    tls.tls = Some(cert.server_config.clone());
    let tls_fleet = SimFleet::start(2, tls, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("tls");
    let pin = certificate_fingerprint(&cert.cert_der);
    let other = self_signed(&["localhost"]).expect("other cert");
    let wrong_pin = certificate_fingerprint(&other.cert_der);
    let (r4, r5) = (tls_fleet.routers()[0].handle(), tls_fleet.routers()[1].handle());

    let sms = SmsGateway::start(SMS_KEY).await;
    sms.set_mode(Mode::EchoKeyUnauthorized);
    std::fs::write(dir.path().join("r1.password"), PW_FILE).expect("write");
    let admin = free_addr();
    let db = dir.path().join("isp.db");
    let config = format!(
        r#"
[storage]
url = "sqlite://{db}"
auto_migrate = true

[admin]
listen = "{admin}"
token_env = "REL_ADMIN_TOKEN"

[engine]
retry_base = "1s"
retry_max = "2s"

[scheduler]
watcher_max_sleep = "1s"
shutdown_grace = "3s"

[schedules]
disconnect-expired = "*/2 * * * * *"
warn-before-expiry = "*/2 * * * * *"
sync-routers = "*/3 * * * * *"
provision-services = "*/2 * * * * *"
router-health = "*/2 * * * * *"

{sms}
[[tenants]]
id = 1
slug = "t1"
time_zone = "Africa/Dar_es_Salaam"
alert_phones = ["+255700000009"]

[[tenants.routers]]
id = 1
name = "R1"
address = "{a1}"
username = "isp"
password_file = "r1.password"

[[tenants.routers]]
id = 2
name = "R2"
address = "{a2}"
username = "isp"
password_env = "REL_R2_PASSWORD"

[[tenants.routers]]
id = 3
name = "R3"
address = "{a3}"
username = "isp"
password = "{PW_INLINE_WRONG}"

[[tenants.routers]]
id = 4
name = "R4"
address = "{a4}"
transport = "api-ssl"
username = "isp"
password_env = "REL_TLS_PASSWORD"
tls_fingerprint = "{pin}"

[[tenants.routers]]
id = 5
name = "R5"
address = "{a5}"
transport = "api-ssl"
username = "isp"
password_env = "REL_TLS_PASSWORD"
tls_fingerprint = "{wrong_pin}"

[[tenants.plans]]
name = "basic"
price = "1000"
currency = "TZS"
rate_limit = "5M/10M"
"#,
        db = db.display(),
        sms = sms.config_toml("REL_SMS_KEY"),
        a1 = fleet.address(0),
        a2 = r2.addr(),
        a3 = r3.addr(),
        a4 = tls_fleet.routers()[0].addr(),
        a5 = tls_fleet.routers()[1].addr(),
    );
    let cfg = dir.path().join("ispd.toml");
    std::fs::write(&cfg, &config).expect("config");
    let cfg = cfg.to_str().expect("utf-8").to_owned();
    let env = [
        ("REL_ADMIN_TOKEN", ADMIN_TOKEN),
        ("REL_R2_PASSWORD", PW_ENV),
        ("REL_TLS_PASSWORD", PW_TLS),
        ("REL_SMS_KEY", SMS_KEY),
        ("RUST_LOG", "trace"),
    ];
    let mut everything = String::new();
    let (code, out, err) = run_ispd(
        &["migrate", "--config", &cfg],
        dir.path(),
        &env,
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "migrate: {out}{err}");
    everything.push_str(&out);
    everything.push_str(&err);

    // Workload, written by the test: subscribers expiring in a few seconds on
    // R1, R2 and R4 (hotspot users with our comment), a PPPoE service.
    let store = SqlStore::connect_sqlite(&db).await.expect("sqlite");
    let repos = store.repositories();
    repos
        .tenants
        .upsert(&isp_core::domain::Tenant {
            id: TenantId(1),
            slug: RosName::parse("slug", "t1").expect("slug"),
            name: "t1".into(),
            time_zone: chrono_tz::Africa::Dar_es_Salaam,
        })
        .await
        .expect("tenant");
    let layout = Layout::even(1, 1, chrono_tz::Africa::Dar_es_Salaam);
    let now = Utc::now();
    let mut subs = Vec::new();
    for n in 0..6 {
        subs.push(
            add_subscriber(
                &repos,
                &fleet,
                &layout,
                TenantId(1),
                n,
                now + chrono::Duration::seconds(3 + n as i64),
                &[0],
                now,
            )
            .await,
        );
    }
    let plan = repos
        .plans
        .insert(&isp_core::domain::NewPlan {
            tenant_id: TenantId(1),
            name: RosName::parse("plan", "ppp").expect("plan"),
            price: isp_core::domain::Money::parse(
                "price",
                "1",
                isp_core::domain::Currency::parse("c", "TZS").expect("c"),
            )
            .expect("m"),
            duration: None,
            rate_limit: None,
        })
        .await
        .expect("plan")
        .id;
    let today = isp_core::policy::time::local_date(now, chrono_tz::Africa::Dar_es_Salaam);
    let svc = add_service(
        &repos,
        TenantId(1),
        plan,
        0,
        300,
        ServiceStatus::Active,
        today + chrono::Duration::days(9),
        today + chrono::Duration::days(9),
    )
    .await;
    let db_svc = repos.services.get(svc.id).await.expect("service");
    match &db_svc.connection {
        Connection::Pppoe { password, .. } => assert_eq!(password.expose(), PPP_PW),
        Connection::StaticIp { .. } => panic!("service 300 should be PPPoE"),
    }
    let _ = SecretPassword::parse("p", PPP_PW).expect("pw");

    // The daemon, with faults on the routers while it works.
    let daemon = Ispd::start(
        &["--log-format", "json", "run", "--config", &cfg],
        dir.path(),
        &env,
    );
    let api = format!("http://{admin}");
    let mut up = false;
    for _ in 0..100 {
        if reqwest::Client::new()
            .get(format!("{api}/api/health"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the daemon did not start:\n{}", daemon.stderr());
    fleet.handles[0].refuse_logins(true);
    fleet.handles[0].drop_connections();
    r2.handle().outage(Duration::from_secs(4));
    tokio::time::sleep(Duration::from_secs(3)).await;
    fleet.handles[0].refuse_logins(false);
    sms.set_mode(Mode::EchoKeyServerError);
    fleet.handles[0].drop_connections();
    tokio::time::sleep(Duration::from_secs(3)).await;
    sms.set_mode(Mode::Accept);

    let mut responses = String::new();
    for path in [
        "/api/health",
        "/api/routers/1/check",
        "/api/routers/2/check",
        "/api/routers/3/check",
        "/api/routers/4/check",
        "/api/routers/5/check",
        "/api/services/1/provision",
    ] {
        let (status, body) = if path.contains("provision") {
            post(&format!("{api}{path}"), ADMIN_TOKEN).await
        } else {
            get(&format!("{api}{path}"), ADMIN_TOKEN).await
        };
        responses.push_str(&format!("{path} {status}\n{body}\n"));
    }
    for job in [
        "router-health",
        "sync-routers",
        "disconnect-expired",
        "warn-before-expiry",
    ] {
        let (status, body) = post(&format!("{api}/api/jobs/{job}"), ADMIN_TOKEN).await;
        assert_eq!(status, 200, "{job}: {body}");
        responses.push_str(&body);
    }
    for wrong in [PW_FILE, SMS_KEY, &format!("{ADMIN_TOKEN}x")] {
        let (status, body) = get(&format!("{api}/api/health"), wrong).await;
        assert_eq!(status, 401);
        responses.push_str(&body);
    }
    let (_, metrics) = get(&format!("{api}/metrics"), ADMIN_TOKEN).await;
    assert!(metrics.contains("ispd_router_call_errors_total"), "{metrics}");

    // TLS: R4 (pinned) answered; R5 (wrong pin) was refused before any login.
    let (_, c4) = get(&format!("{api}/api/routers/4/check"), ADMIN_TOKEN).await;
    let (_, c5) = get(&format!("{api}/api/routers/5/check"), ADMIN_TOKEN).await;
    let c4: serde_json::Value = serde_json::from_str(&c4).expect("json");
    let c5: serde_json::Value = serde_json::from_str(&c5).expect("json");
    assert_eq!(c4["online"], true, "pinned api-ssl router: {c4}");
    assert_eq!(
        c5["online"], false,
        "wrongly pinned api-ssl router accepted: {c5}"
    );
    let e5 = c5["error"].as_str().unwrap_or("");
    assert!(e5.contains("pin") || e5.contains("certificate"), "{e5}");
    assert!(r4.logins() > 0, "no login on the pinned router");
    assert_eq!(
        r5.logins(),
        0,
        "the password went to a router with the wrong certificate"
    );
    // The wrong inline password is refused, and said so without the password.
    let (_, c3) = get(&format!("{api}/api/routers/3/check"), ADMIN_TOKEN).await;
    assert!(c3.contains("false"), "{c3}");

    // R1 got every removal despite the faults; but R3 (wrong password) and R5
    // (wrong pin) never confirm, so no subscriber is recorded disconnected.
    let mut removed = false;
    for _ in 0..100 {
        if subs
            .iter()
            .all(|s| sessions_of(&fleet.handles[0], &s.username) == 0)
        {
            removed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(removed, "R1 still holds sessions of expired subscribers");
    for s in &subs {
        let db = repos.subscribers.get(s.id).await.expect("sub");
        assert!(
            db.active,
            "recorded disconnected although R3 and R5 never confirmed: {db:?}"
        );
    }

    let (code, out, err) = run_ispd(
        &["status", "--json", "--config", &cfg],
        dir.path(),
        &env,
        Duration::from_secs(60),
    );
    assert!(code.is_some());
    everything.push_str(&out);
    everything.push_str(&err);
    let (code, out, err) = run_ispd(
        &["check-routers", "--config", &cfg],
        dir.path(),
        &env,
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(4), "R3 and R5 are unreachable: {out}{err}");
    assert!(out.contains("R4") && out.contains("online"), "{out}");
    everything.push_str(&out);
    everything.push_str(&err);
    let (code, out, err) = run_ispd(
        &["once", "sync-routers", "--json", "--config", &cfg],
        dir.path(),
        &env,
        Duration::from_secs(60),
    );
    assert!(code.is_some());
    everything.push_str(&out);
    everything.push_str(&err);

    let (stdout, stderr) = daemon.kill();
    everything.push_str(&stdout);
    // What the daemon stored: audit reasons, router errors, notices.
    let mut stored = String::new();
    for e in repos.audit.recent(100_000).await.expect("audit") {
        stored.push_str(&format!("{e:?}\n"));
    }
    for s in repos.router_status.list().await.expect("status") {
        stored.push_str(&format!("{s:?}\n"));
    }
    stored.push_str(&format!("{:?}", repos.services.get(svc.id).await.expect("svc")));
    store.close().await;

    let secrets = [
        ("R1's password (file)", PW_FILE),
        ("R2's password (env)", PW_ENV),
        ("R3's wrong password (inline)", PW_INLINE_WRONG),
        ("the api-ssl routers' password", PW_TLS),
        ("the SMS API key", SMS_KEY),
        ("the admin token", ADMIN_TOKEN),
        ("a PPPoE password", PPP_PW),
    ];
    assert!(sms.requests() > 0, "no SMS was attempted");
    assert!(
        stderr.contains("sms") || stderr.contains("notice"),
        "no SMS activity in the logs"
    );
    assert_clean("the daemon's logs (trace)", &stderr, &secrets);
    assert_clean("CLI output and logs", &everything, &secrets);
    assert_clean("API responses", &responses, &secrets);
    assert_clean("/metrics", &metrics, &secrets);
    assert_clean(
        "the audit log, router status and Debug of a service",
        &stored,
        &secrets,
    );
    eprintln!(
        "scenario 5 daemon: {} log lines at trace ({} KiB), {} KiB of CLI output, {} KiB of API responses, {} KiB of \
         metrics, {} KiB of stored audit/status: 0 occurrences of 7 secrets (4 router passwords, SMS key echoed by \
         the gateway in {} refused sends, admin token, PPPoE password); api-ssl: pinned accepted ({} logins), wrong \
         pin refused (0 logins)",
        stderr.lines().count(),
        stderr.len() / 1024,
        everything.len() / 1024,
        responses.len() / 1024,
        metrics.len() / 1024,
        stored.len() / 1024,
        sms.requests() as usize - sms.accepted().len(),
        r4.logins()
    );
    fleet.sims.shutdown().await;
    tls_fleet.shutdown().await;
}
