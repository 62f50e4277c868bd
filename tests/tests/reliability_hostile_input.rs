//! Reliability scenario 4: hostile input (promise 5: bad input gets a clear
//! error naming the field and value; nothing half-written; no panic on any
//! input, including bytes from a router; bounded memory).
//!
//! - The RouterOS client and driver, and the engine above them, against a
//!   scripted router answering with a 4 GiB length prefix, oversized words,
//!   reserved control bytes, truncated sentences, garbage reply words and
//!   attributes, `!fatal`, and seeded random bytes.
//! - The configuration loader against seeded mutations of a valid file,
//!   wrong types, deep nesting, huge values and control characters.
//! - The admin API against malformed JSON, huge bodies, wrong types, unknown
//!   fields, unknown and malformed ids.
//! - Domain constructors against seeded hostile strings.
//! - The RADIUS servers (authentication and accounting) against truncated
//!   packets, lying lengths, bad authenticators, 4,096-byte attributes and
//!   seeded random datagrams; the simulator's `/radius incoming` against the
//!   same; the Disconnect-Request client against a router answering garbage.
//!
//! `ISP_SEED=<n>` replays another seed; `ISP_SOAK=1` multiplies the random cases.
#![allow(clippy::type_complexity, clippy::cloned_ref_to_slice_refs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use isp_adapters_sql::SqlStore;
use isp_core::domain::{
    parse_ipv4, Currency, Ipv4Cidr, MacAddress, Money, NewSubscriber, OwnerTag, PhoneNumber, RateLimit,
    RosDuration, RosName, Router, RouterCredentials, RouterId, SecretPassword, Tenant, TenantId, Transport,
};
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, JobKind, RunOptions};
use isp_core::memory::{RecordingSms, StaticDirectory};
use isp_core::ports::{FakeClock, HotspotTarget, Menu, PppoeSpec, RouterDriver};
use isp_core::Error;
use isp_tests::reliability::hostile::{
    done, proc_status_bytes, reset_rss_peak, sentences, Answer, HostileRouter, Script,
};
use isp_tests::reliability::{seed, soak};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Most the test process's resident memory may peak above where it was while
/// 16 hostile routers at a time feed it (the 100 MiB word and 4 GiB prefix
/// must be refused, not buffered).
const RSS_GROWTH_LIMIT: u64 = 256 * 1024 * 1024;

fn tagged(words: &[&str], tag: Option<&str>) -> Vec<String> {
    let mut w: Vec<String> = words.iter().map(|s| (*s).to_owned()).collect();
    if let Some(t) = tag {
        w.push(format!(".tag={t}"));
    }
    w
}

fn enc(words: Vec<String>) -> Vec<u8> {
    let mut out = Vec::new();
    isp_routeros::proto::encode_sentence(&words, &mut out);
    out
}

/// An answer to any command but `/login`, given its tag.
type TagAnswer = Arc<dyn Fn(Option<&str>) -> Answer + Send + Sync>;

/// The hostile answers to every command after a good login, by name.
fn hostile_answers(seed: u64, random_cases: usize) -> Vec<(String, Script)> {
    let mut cases: Vec<(String, Script)> = Vec::new();
    let after_login = |f: TagAnswer| -> Script {
        Arc::new(move |cmd: &str, tag: Option<&str>| {
            if cmd == "/login" {
                Answer::Send(done(tag))
            } else {
                f(tag)
            }
        })
    };
    let fixed: Vec<(&str, TagAnswer)> = vec![
        (
            "4 GiB length prefix",
            Arc::new(|_| Answer::Send(vec![0xF0, 0xFF, 0xFF, 0xFF, 0xFF, b'!', b'r', b'e'])),
        ),
        (
            "4 GiB prefix then close",
            Arc::new(|_| Answer::SendAndClose(vec![0xF0, 0xFF, 0xFF, 0xFF, 0xFF])),
        ),
        (
            "100 MiB word",
            Arc::new(|_| Answer::Send(vec![0xE6, 0x40, 0x00, 0x00, b'x'])),
        ),
        (
            "reserved control byte",
            Arc::new(|_| Answer::Send(vec![0xF8, 0x01, 0x02])),
        ),
        (
            "truncated sentence then close",
            Arc::new(|t| {
                let mut b = enc(tagged(&["!re", "=.id=*1", "=user=abc"], t));
                b.truncate(b.len() / 2);
                Answer::SendAndClose(b)
            }),
        ),
        (
            "truncated sentence then silence",
            Arc::new(|t| {
                let mut b = enc(tagged(&["!re", "=.id=*1", "=user=abc"], t));
                b.truncate(b.len() - 3);
                Answer::SendAndStall(b)
            }),
        ),
        ("silence", Arc::new(|_| Answer::SendAndStall(Vec::new()))),
        (
            "unknown reply word",
            Arc::new(|t| Answer::Send(enc(tagged(&["!bogus", "=x=y"], t)))),
        ),
        (
            "word without =",
            Arc::new(|t| {
                let mut b = enc(tagged(&["!re", "garbage-word"], t));
                b.extend(enc(tagged(&["!done"], t)));
                Answer::Send(b)
            }),
        ),
        (
            "invalid UTF-8",
            Arc::new(|t| {
                let mut words: Vec<Vec<u8>> = vec![
                    b"!re".to_vec(),
                    b"=.id=*\xff\xfe".to_vec(),
                    b"=user=\xc3\x28".to_vec(),
                ];
                if let Some(t) = t {
                    words.push(format!(".tag={t}").into_bytes());
                }
                let mut b = Vec::new();
                isp_routeros::proto::encode_sentence(&words, &mut b);
                b.extend(enc(tagged(&["!done"], t)));
                Answer::Send(b)
            }),
        ),
        (
            "garbage attribute values",
            Arc::new(|t| {
                let mut b = enc(tagged(
                    &[
                        "!re",
                        "=.id=not-an-id",
                        "=user=\u{7}\u{1b}[31mred",
                        "=mac-address=ZZ:ZZ",
                        "=address=999.1.1.1",
                        "=uptime=forever",
                        "=disabled=maybe",
                        "=cpu-load=-7",
                        "=free-memory=18446744073709551616",
                        "=time=25:61:99",
                        "=date=feb/31/1900",
                        "=comment=isp:sub:99999999999999999999999",
                        "=limit-uptime=-1s",
                        "=max-limit=10Q/20Q",
                    ],
                    t,
                ));
                b.extend(enc(tagged(&["!done", "=ret=*"], t)));
                Answer::Send(b)
            }),
        ),
        (
            "!done with an unknown tag",
            Arc::new(|_| Answer::Send(enc(tagged(&["!done"], Some("no-such-tag"))))),
        ),
        (
            "untagged !done to a tagged command",
            Arc::new(|_| Answer::Send(sentences(&[&["!done"]]))),
        ),
        (
            "!fatal",
            Arc::new(|_| Answer::SendAndClose(sentences(&[&["!fatal", "out of memory"]]))),
        ),
        (
            "!trap without !done then close",
            Arc::new(|t| Answer::SendAndClose(enc(tagged(&["!trap", "=message=boom"], t)))),
        ),
        (
            "!empty forever",
            Arc::new(|t| {
                let mut b = Vec::new();
                for _ in 0..2000 {
                    b.extend(enc(tagged(&["!empty"], t)));
                }
                Answer::Send(b)
            }),
        ),
        (
            "70 000 words in one sentence",
            Arc::new(|t| {
                let mut words: Vec<String> = vec!["!re".into()];
                words.extend((0..70_000).map(|i| format!("=a{i}=b")));
                if let Some(t) = t {
                    words.push(format!(".tag={t}"));
                }
                Answer::Send(enc(words))
            }),
        ),
        (
            "20 000 rows",
            Arc::new(|t| {
                let mut b = Vec::new();
                for i in 0..20_000 {
                    b.extend(enc(tagged(
                        &["!re", &format!("=.id=*{i:X}"), "=user=x", "=name=x"],
                        t,
                    )));
                }
                b.extend(enc(tagged(&["!done"], t)));
                Answer::Send(b)
            }),
        ),
    ];
    for (name, f) in fixed {
        cases.push((name.to_owned(), after_login(f)));
    }
    // A hostile login reply.
    cases.push((
        "garbage login reply".into(),
        Arc::new(|_, _| Answer::SendAndClose(vec![0xF0, 0xFF, 0xFF, 0xFF, 0xFF])),
    ));
    cases.push((
        "login reply !re forever".into(),
        Arc::new(|_, t| {
            let mut b = Vec::new();
            for _ in 0..1000 {
                b.extend(enc(tagged(&["!re", "=ret=abc"], t)));
            }
            Answer::Send(b)
        }),
    ));
    // Seeded random bytes, and random mutations of a valid reply.
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..random_cases {
        let bytes: Vec<u8> = if i % 2 == 0 {
            let n = rng.gen_range(1..512);
            (0..n).map(|_| rng.gen()).collect()
        } else {
            let mut b = sentences(&[
                &[
                    "!re",
                    "=.id=*1",
                    "=user=0712000001",
                    "=mac-address=02:00:00:00:00:01",
                    "=address=10.0.0.2",
                ],
                &["!done"],
            ]);
            for _ in 0..rng.gen_range(1..6) {
                let at = rng.gen_range(0..b.len());
                match rng.gen_range(0..3) {
                    0 => b[at] = rng.gen(),
                    1 => b.insert(at, rng.gen()),
                    _ => {
                        b.remove(at);
                    }
                }
            }
            b
        };
        let close = rng.gen_bool(0.5);
        cases.push((
            format!("random #{i}"),
            after_login(Arc::new(move |_| {
                if close {
                    Answer::SendAndClose(bytes.clone())
                } else {
                    Answer::Send(bytes.clone())
                }
            })),
        ));
    }
    cases
}

/// True when the script's answer to an ordinary command is whole, well-formed
/// sentences ending with `!done` and nothing else: a router saying something
/// coherent (possibly "nothing of that user here"), which the driver may believe.
fn is_complete_answer(script: &Script) -> bool {
    let bytes = match script("/ip/hotspot/active/print", Some("1")) {
        Answer::Send(b) | Answer::SendAndClose(b) | Answer::SendAndStall(b) => b,
    };
    let mut d = isp_routeros::proto::Decoder::new(isp_routeros::proto::DEFAULT_MAX_WORD_LEN);
    d.push(&bytes);
    let mut last_done = false;
    loop {
        match d.next_sentence() {
            Ok(Some(words)) => match isp_routeros::proto::Reply::parse(&words) {
                Ok(r) => last_done = r.kind == isp_routeros::proto::ReplyKind::Done,
                Err(_) => return false,
            },
            Ok(None) => return last_done && d.is_idle(),
            Err(_) => return false,
        }
    }
}

fn router_at(address: String) -> Router {
    Router {
        id: RouterId(1),
        tenant_id: TenantId(1),
        name: "hostile".into(),
        address,
        transport: Transport::Api,
        credentials: RouterCredentials::new("isp", "hostile-pw"),
        tls_fingerprint: None,
        enabled: true,
    }
}

/// What one hostile case did.
#[derive(Debug, Default)]
struct CaseOutcome {
    ok_calls: usize,
    errors: Vec<&'static str>,
    engine_ran: bool,
    completed: bool,
}

/// Runs the driver's calls, then (for `with_engine`) three jobs over an
/// expired subscriber, against one hostile script.
async fn run_case(name: String, script: Script, with_engine: bool) -> CaseOutcome {
    let wellformed = is_complete_answer(&script);
    let server = HostileRouter::start(script).await;
    let router = router_at(server.address());
    let driver = hostile_driver();
    let mut out = CaseOutcome::default();
    let target = HotspotTarget {
        username: Some(RosName::parse("username", "255712000001").expect("name")),
        macs: vec![MacAddress::parse("mac", "02:00:00:00:00:01").expect("mac")],
        owner: OwnerTag::Subscriber(isp_core::domain::SubscriberId(1)),
        remove_user: false,
    };
    let spec = PppoeSpec {
        username: RosName::parse("username", "pppoe-1").expect("name"),
        password: SecretPassword::parse("password", "pw").expect("pw"),
        profile: RosName::parse("profile", "default").expect("profile"),
        owner: OwnerTag::Service(isp_core::domain::ServiceId(1)),
    };
    let calls = async {
        let mut rs: Vec<Result<(), Error>> = Vec::new();
        rs.push(driver.snapshot(&router, &Menu::ALL).await.map(|_| ()));
        rs.push(
            driver
                .disconnect_hotspot(&router, std::slice::from_ref(&target))
                .await
                .and_then(|rs| rs.into_iter().collect::<Result<Vec<_>, _>>().map(|_| ())),
        );
        rs.push(driver.health(&router).await.map(|_| ()));
        rs.push(driver.provision_pppoe(&router, &spec).await);
        rs
    };
    let results = tokio::time::timeout(Duration::from_secs(20), calls)
        .await
        .unwrap_or_else(|_| panic!("case {name:?}: the driver hung on hostile replies"));
    for r in results {
        match r {
            Ok(()) => out.ok_calls += 1,
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.len() < 4096,
                    "case {name:?}: an error of {} bytes",
                    text.len()
                );
                out.errors.push(e.kind());
            }
        }
    }
    if !with_engine {
        return out;
    }
    // The engine above the driver: an expired subscriber whose router answers
    // with garbage stays pending (never recorded disconnected).
    let store = SqlStore::connect_sqlite_memory().await.expect("sqlite");
    store.migrate().await.expect("migrate");
    let repos = store.repositories();
    repos
        .tenants
        .upsert(&Tenant {
            id: TenantId(1),
            slug: RosName::parse("slug", "t1").expect("slug"),
            name: "T1".into(),
            time_zone: chrono_tz::UTC,
        })
        .await
        .expect("tenant");
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).single().expect("now");
    let sub = repos
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: TenantId(1),
            phone: PhoneNumber::parse("phone", "+255712000001").expect("phone"),
            username: RosName::parse("username", "255712000001").expect("username"),
            paid_until: now - chrono::Duration::minutes(5),
        })
        .await
        .expect("subscriber");
    let engine = Engine::new(
        EngineDeps {
            repos: repos.clone(),
            directory: Arc::new(StaticDirectory::new([router.clone()])),
            driver,
            sms: Arc::new(RecordingSms::new()),
            clock: Arc::new(FakeClock::new(now)),
        },
        EngineConfig::default(),
    );
    for job in [
        JobKind::DisconnectExpired,
        JobKind::SyncRouters,
        JobKind::RouterHealth,
    ] {
        tokio::time::timeout(Duration::from_secs(20), engine.run(job, RunOptions::default()))
            .await
            .unwrap_or_else(|_| panic!("case {name:?}: {job} hung"))
            .unwrap_or_else(|e| panic!("case {name:?}: {job} failed as a whole: {e}"));
    }
    let s = repos.subscribers.get(sub.id).await.expect("subscriber");
    // Only a router whose every answer is a complete, well-formed reply ("nothing
    // of that user here") may have confirmed the disconnect.
    assert!(
        s.active || wellformed,
        "case {name:?}: subscriber recorded disconnected on malformed replies: {s:?}"
    );
    out.engine_ran = true;
    out.completed = !s.active;
    store.close().await;
    out
}

/// A driver with short timeouts (a silent router costs 300 ms per command).
fn hostile_driver() -> Arc<isp_routeros::driver::RouterOsDriver> {
    let client = isp_routeros::client::ClientConfig {
        connect_timeout: Duration::from_millis(300),
        login_timeout: Duration::from_millis(300),
        command_timeout: Duration::from_millis(300),
        keepalive: None,
        connect_attempts: 1,
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(10),
        cooldown_min: Duration::from_millis(5),
        cooldown_max: Duration::from_millis(10),
        ..isp_routeros::client::ClientConfig::default()
    };
    Arc::new(
        isp_routeros::driver::RouterOsDriver::new(isp_routeros::driver::DriverConfig {
            client,
            ..Default::default()
        })
        .expect("driver"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_router_bytes_fail_cleanly_with_bounded_memory_and_nothing_written() {
    use futures::stream::{self, StreamExt};
    let seed = seed(0x5CE4_0004);
    let random_cases = if soak() { 2000 } else { 120 };
    let cases = hostile_answers(seed, random_cases);
    let fixed = cases.len() - random_cases;
    let total = cases.len();
    // Resident memory, not address space: reset the peak RSS to the current
    // RSS, then the peak afterwards bounds what the hostile replies cost.
    reset_rss_peak().unwrap_or_else(|e| panic!("cannot measure memory: {e}"));
    let rss_before = proc_status_bytes("VmRSS").unwrap_or_else(|e| panic!("cannot measure memory: {e}"));
    let outcomes: Vec<CaseOutcome> = stream::iter(cases.into_iter().enumerate())
        .map(|(i, (name, script))| run_case(name, script, i < fixed || i % 4 == 0))
        .buffer_unordered(16)
        .collect()
        .await;
    let rss_peak = proc_status_bytes("VmHWM").unwrap_or_else(|e| panic!("cannot measure memory: {e}"));
    let grown = rss_peak.saturating_sub(rss_before);
    assert!(
        grown < RSS_GROWTH_LIMIT,
        "peak resident memory grew by {} MiB on hostile replies (limit {} MiB; {} MiB before, peak {} MiB)",
        grown / (1024 * 1024),
        RSS_GROWTH_LIMIT / (1024 * 1024),
        rss_before / (1024 * 1024),
        rss_peak / (1024 * 1024)
    );
    let ok_calls: usize = outcomes.iter().map(|o| o.ok_calls).sum();
    let mut kinds: HashMap<&'static str, usize> = HashMap::new();
    for k in outcomes.iter().flat_map(|o| o.errors.iter()) {
        *kinds.entry(k).or_default() += 1;
    }
    let err_calls: usize = kinds.values().sum();
    let engine_runs = outcomes.iter().filter(|o| o.engine_ran).count();
    let completed = outcomes.iter().filter(|o| o.completed).count();
    assert!(err_calls > ok_calls, "{err_calls} errors, {ok_calls} ok");
    eprintln!(
        "scenario 4 router (seed {seed:#x}): {total} hostile scripts ({random_cases} random), {} driver calls \
         ({ok_calls} ok, {err_calls} errors by kind {kinds:?}), peak RSS growth {} MiB; {engine_runs} engine \
         runs: subscriber kept pending {} times, completed {completed} times, only on well-formed \
         \"nothing here\" answers",
        ok_calls + err_calls,
        grown / (1024 * 1024),
        engine_runs - completed,
    );
}

/// Every constructor refuses every hostile value with `InvalidInput` naming the
/// field, a message of bounded size, and control characters escaped.
#[test]
fn domain_constructors_refuse_hostile_values_naming_the_field() {
    let seed = seed(0x5CE4_0044);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut hostile: Vec<String> = vec![
        String::new(),
        " ".into(),
        "\0".into(),
        "a\nb".into(),
        "\u{1b}[31m".into(),
        "x".repeat(1 << 20),
        "9".repeat(1 << 20),
        "+".repeat(100),
        "\u{202e}evil".into(),
        "１２３４５６７８９".into(),
        "0x7fffffff".into(),
        "-1".into(),
        "NaN".into(),
        "1e309".into(),
        "99999999999999999999999999999999".into(),
        "∞".into(),
        "\u{feff}".into(),
        "%00".into(),
        "';DROP TABLE subscribers;--".into(),
    ];
    let n = if soak() { 20_000 } else { 2_000 };
    for _ in 0..n {
        let len = rng.gen_range(0..40);
        let s: String = (0..len)
            .map(|_| match rng.gen_range(0..4) {
                0 => char::from(rng.gen_range(0u8..32)),
                1 => char::from_u32(rng.gen_range(0x80..0x3000)).unwrap_or('?'),
                _ => char::from(rng.gen_range(32u8..127)),
            })
            .collect();
        hostile.push(s);
    }
    type Check = (&'static str, fn(&str, &str) -> Result<(), Error>);
    let checks: Vec<Check> = vec![
        ("phone", |f, v| PhoneNumber::parse(f, v).map(|_| ())),
        ("mac", |f, v| MacAddress::parse(f, v).map(|_| ())),
        ("ipv4", |f, v| parse_ipv4(f, v).map(|_| ())),
        ("cidr", |f, v| Ipv4Cidr::parse(f, v).map(|_| ())),
        ("name", |f, v| RosName::parse(f, v).map(|_| ())),
        ("duration", |f, v| RosDuration::parse(f, v).map(|_| ())),
        ("currency", |f, v| Currency::parse(f, v).map(|_| ())),
        ("money", |f, v| {
            Money::parse(f, v, Currency::parse("currency", "TZS").expect("TZS")).map(|_| ())
        }),
        ("rate_limit", |f, v| RateLimit::parse(f, v).map(|_| ())),
        ("password", |f, v| SecretPassword::parse(f, v).map(|_| ())),
    ];
    let mut refused = 0;
    let mut accepted = 0;
    for (what, check) in &checks {
        let field = format!("hostile.{what}");
        for v in &hostile {
            let r = std::panic::catch_unwind(|| check(&field, v)).unwrap_or_else(|_| {
                panic!("{what}: panicked on {:?}", v.chars().take(60).collect::<String>())
            });
            match r {
                Ok(()) => {
                    accepted += 1;
                    // Whatever is accepted has no control characters (it ends up on routers and in logs).
                    assert!(
                        !v.chars().any(|c| c.is_control()),
                        "{what}: accepted a value with control characters: {v:?}"
                    );
                }
                Err(e) => {
                    refused += 1;
                    match &e {
                        Error::InvalidInput { field: f, .. } => assert_eq!(f, &field, "{what}: {e}"),
                        other => panic!("{what}: not InvalidInput: {other:?}"),
                    }
                    let text = e.to_string();
                    assert!(
                        text.contains(&field),
                        "{what}: the error does not name the field: {text}"
                    );
                    assert!(
                        text.len() <= 512,
                        "{what}: an error of {} bytes for a value of {} bytes",
                        text.len(),
                        v.len()
                    );
                    assert!(
                        !text.chars().any(|c| c.is_control()),
                        "{what}: control characters in the error text: {text:?}"
                    );
                    if *what == "password" {
                        assert!(
                            v.len() < 4 || !text.contains(v.as_str()),
                            "password echoed: {text}"
                        );
                    }
                }
            }
        }
    }
    assert!(refused > accepted, "{refused} refused, {accepted} accepted");
    eprintln!(
        "scenario 4 domain (seed {seed:#x}): {} constructors x {} hostile values: {refused} refused with the \
         field named, {accepted} accepted, 0 panics",
        checks.len(),
        hostile.len()
    );
}

const GOOD_CONFIG: &str = r#"
[storage]
url = "sqlite://isp.db"

[admin]
listen = "127.0.0.1:0"
token_env = "ADMIN_TOKEN"

[engine]
batch_size = 100
retry_base = "2s"

[schedules]
disconnect-expired = "*/30 * * * * *"

[[tenants]]
id = 1
slug = "hotel-abc"
time_zone = "Africa/Dar_es_Salaam"

[[tenants.routers]]
id = 1
name = "HotelRouter1"
address = "192.0.2.10"
username = "isp"
password_env = "R1_PASSWORD"

[[tenants.plans]]
name = "daily"
price = "1000"
currency = "TZS"
duration = "1d"
rate_limit = "5M/10M"
"#;

const CONFIG_SECRETS: [&str; 2] = ["cfg-router-pw-91ab27", "cfg-admin-token-5a8e3c0d9f"];

fn config_env() -> HashMap<String, String> {
    [
        ("R1_PASSWORD".to_string(), CONFIG_SECRETS[0].to_string()),
        ("ADMIN_TOKEN".to_string(), CONFIG_SECRETS[1].to_string()),
    ]
    .into_iter()
    .collect()
}

/// Loads `text`; never panics; an error names where and what, is bounded and
/// carries no secret.
fn load(text: &str) -> Result<ispd::config::Config, ispd::config::ConfigError> {
    let env = config_env();
    let r = std::panic::catch_unwind(|| ispd::config::load_str(text, "hostile.toml", None, &env))
        .unwrap_or_else(|_| {
            panic!(
                "the loader panicked on:\n{}",
                text.chars().take(400).collect::<String>()
            )
        });
    if let Err(e) = &r {
        let shown = e.to_string();
        assert!(shown.starts_with("hostile.toml"), "{shown}");
        assert!(!e.message.is_empty(), "empty message: {e:?}");
        assert!(shown.len() < 4096, "an error of {} bytes", shown.len());
        for s in CONFIG_SECRETS {
            assert!(!shown.contains(s), "secret in a config error: {shown}");
        }
    }
    r
}

#[test]
fn config_loader_refuses_hostile_files_clearly() {
    let seed = seed(0x5CE4_0041);
    let mut rng = StdRng::seed_from_u64(seed);
    load(GOOD_CONFIG).expect("the base file loads");

    // Wrong types and bad values: the error names the key and the line.
    let wrong: &[(&str, &str, &str)] = &[
        ("batch_size = 100", "batch_size = \"many\"", "engine.batch_size"),
        ("batch_size = 100", "batch_size = -1", "engine.batch_size"),
        ("batch_size = 100", "batch_size = 1e400", "engine.batch_size"),
        ("retry_base = \"2s\"", "retry_base = 2", "engine.retry_base"),
        (
            "retry_base = \"2s\"",
            "retry_base = \"2 fortnights\"",
            "engine.retry_base",
        ),
        ("id = 1\nslug", "id = \"one\"\nslug", "tenants[0].id"),
        (
            "slug = \"hotel-abc\"",
            "slug = \"hotel\\u0001abc\"",
            "tenants[0].slug",
        ),
        ("slug = \"hotel-abc\"", "slug = \"\"", "tenants[0].slug"),
        (
            "time_zone = \"Africa/Dar_es_Salaam\"",
            "time_zone = \"Mars/Olympus\"",
            "tenants[0].time_zone",
        ),
        (
            "name = \"HotelRouter1\"",
            "name = [1, 2]",
            "tenants[0].routers[0].name",
        ),
        (
            "address = \"192.0.2.10\"",
            "address = \"192.0.2.10:99999\"",
            "tenants[0].routers[0].address",
        ),
        (
            "address = \"192.0.2.10\"",
            "address = \"a b\\n c\"",
            "tenants[0].routers[0].address",
        ),
        ("price = \"1000\"", "price = 10.5", "tenants[0].plans[0].price"),
        ("price = \"1000\"", "price = \"-5\"", "tenants[0].plans[0].price"),
        (
            "currency = \"TZS\"",
            "currency = \"TZSX\"",
            "tenants[0].plans[0].currency",
        ),
        (
            "rate_limit = \"5M/10M\"",
            "rate_limit = \"fast\"",
            "tenants[0].plans[0].rate_limit",
        ),
        (
            "disconnect-expired = \"*/30 * * * * *\"",
            "disconnect-expired = \"every now and then\"",
            "schedules.disconnect-expired",
        ),
        (
            "url = \"sqlite://isp.db\"",
            "url = \"ftp://isp.db\"",
            "storage.url",
        ),
        (
            "listen = \"127.0.0.1:0\"",
            "listen = \"localhost:http\"",
            "admin.listen",
        ),
    ];
    for (from, to, key) in wrong {
        assert!(GOOD_CONFIG.contains(from), "{from}");
        let text = GOOD_CONFIG.replacen(from, to, 1);
        let e = load(&text).err().unwrap_or_else(|| panic!("accepted {to:?}"));
        // A value error names the key; a syntax error (`1e400`) names the line and column.
        let line = text
            .lines()
            .position(|l| l.contains(to.lines().next().unwrap_or(to)))
            .map(|l| l + 1);
        assert!(
            e.key.contains(key) || e.to_string().contains(key) || (e.line == line && e.column.is_some()),
            "{to:?}: the error names neither {key} nor line {line:?}: {e}"
        );
        if !e.key.starts_with("storage") && !e.key.starts_with("admin") {
            assert!(e.line.is_some(), "{to:?}: no line in {e}");
        }
    }

    // Structure: deep nesting, huge values, NUL bytes, binary junk.
    let deep = format!("x = {}1{}\n", "[".repeat(50_000), "]".repeat(50_000));
    let deep_tables = "[a".to_string() + &".b".repeat(50_000) + "]\n";
    let huge_string = format!(
        "[[tenants]]\nid = 1\nslug = \"{}\"\ntime_zone = \"UTC\"\n",
        "s".repeat(8 << 20)
    );
    let huge_address = GOOD_CONFIG.replacen("192.0.2.10", &"9".repeat(8 << 20), 1);
    let many_tenants: String = (0..20_000)
        .map(|i| format!("[[tenants]]\nid = 1\nslug = \"t{i}\"\ntime_zone = \"UTC\"\n"))
        .collect();
    for (what, text) in [
        ("deep arrays", deep),
        ("deep tables", deep_tables),
        ("8 MiB slug", huge_string),
        ("8 MiB address", huge_address),
        ("20 000 tenants with one id", many_tenants),
        ("NUL byte", GOOD_CONFIG.replacen("isp", "i\0sp", 1)),
        (
            "binary",
            String::from_utf8_lossy(&(0..4096).map(|_| rng.gen::<u8>()).collect::<Vec<u8>>()).into_owned(),
        ),
    ] {
        let t = text.clone();
        // In a thread of its own: a stack overflow would abort the process (and fail the test).
        let r = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || load(&t).map(|_| ()))
            .expect("thread")
            .join()
            .unwrap_or_else(|_| panic!("{what}: panicked"));
        assert!(r.is_err(), "{what}: accepted");
    }

    // Seeded mutations of the good file.
    let n = if soak() { 20_000 } else { 3_000 };
    let mut refused = 0;
    let alphabet: Vec<char> = "[]{}=\"'\\#.,\n\t \0\u{1}\u{7f}azAZ09-_:/+*é€\u{202e}"
        .chars()
        .collect();
    for _ in 0..n {
        let mut chars: Vec<char> = GOOD_CONFIG.chars().collect();
        for _ in 0..rng.gen_range(1..5) {
            let at = rng.gen_range(0..chars.len());
            match rng.gen_range(0..3) {
                0 => chars[at] = alphabet[rng.gen_range(0..alphabet.len())],
                1 => chars.insert(at, alphabet[rng.gen_range(0..alphabet.len())]),
                _ => {
                    chars.remove(at);
                }
            }
        }
        let text: String = chars.into_iter().collect();
        if load(&text).is_err() {
            refused += 1;
        }
    }
    eprintln!(
        "scenario 4 config (seed {seed:#x}): {} wrong-type files named their key and line, 7 structural attacks \
         refused, {n} mutations ({refused} refused, {} accepted), 0 panics, no secret in any error",
        wrong.len(),
        n - refused
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_answers_bad_requests_with_clear_4xx_and_writes_nothing() {
    use isp_tests::{Options, TestDaemon, TOKEN};
    let t = TestDaemon::start(Options::default()).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", t.base);
    let audit_before = t.repos.audit.recent(100_000).await.expect("audit").len();

    enum Body {
        None,
        Json(Vec<u8>),
        Typed(&'static str, Vec<u8>),
    }
    let mut cases: Vec<(&str, String, Body, u16)> = vec![
        (
            "POST",
            "/api/jobs/sync-routers".into(),
            Body::Json(b"{".to_vec()),
            400,
        ),
        (
            "POST",
            "/api/jobs/sync-routers".into(),
            Body::Json(b"{\"dry_run\": \"yes\"}".to_vec()),
            400,
        ),
        (
            "POST",
            "/api/jobs/sync-routers".into(),
            Body::Json(b"{\"dry_run\": 1}".to_vec()),
            400,
        ),
        (
            "POST",
            "/api/jobs/sync-routers".into(),
            Body::Json(b"{\"dry_runn\": true}".to_vec()),
            400,
        ),
        (
            "POST",
            "/api/jobs/sync-routers".into(),
            Body::Json(b"[1,2,3]".to_vec()),
            400,
        ),
        (
            "POST",
            "/api/jobs/sync-routers".into(),
            Body::Json(b"null".to_vec()),
            400,
        ),
        (
            "POST",
            "/api/jobs/sync-routers".into(),
            Body::Json(b"1e999".to_vec()),
            400,
        ),
        (
            "POST",
            "/api/jobs/sync-routers".into(),
            Body::Json(vec![0xff, 0xfe, b'{']),
            400,
        ),
        (
            "POST",
            "/api/jobs/sync-routers".into(),
            Body::Json(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes()),
            413,
        ),
        (
            "POST",
            "/api/jobs/sync-routers".into(),
            Body::Json(vec![b' '; 10 << 20]),
            413,
        ),
        (
            "POST",
            "/api/jobs/sync-routers".into(),
            Body::Typed("text/plain", b"dry_run=true".to_vec()),
            415,
        ),
        (
            "POST",
            "/api/jobs/sync-routers?dry_run=maybe".into(),
            Body::None,
            400,
        ),
        (
            "POST",
            "/api/jobs/sync-routers?dry_run=true&dry_run=false".into(),
            Body::None,
            400,
        ),
        ("POST", "/api/jobs/no-such-job".into(), Body::None, 404),
        ("POST", "/api/jobs/%00".into(), Body::None, 404),
        ("POST", "/api/services/abc/provision".into(), Body::None, 400),
        ("POST", "/api/services/0/provision".into(), Body::None, 400),
        ("POST", "/api/services/-1/deprovision".into(), Body::None, 400),
        (
            "POST",
            "/api/services/99999999999999999999/provision".into(),
            Body::None,
            400,
        ),
        ("POST", "/api/services/1e3/provision".into(), Body::None, 400),
        (
            "POST",
            "/api/services/%E2%80%AE1/provision".into(),
            Body::None,
            400,
        ),
        ("POST", "/api/services/%FF/provision".into(), Body::None, 400),
        ("POST", "/api/services/424242/provision".into(), Body::None, 404),
        ("POST", "/api/services/424242/deprovision".into(), Body::None, 404),
        ("GET", "/api/routers/424242/check".into(), Body::None, 404),
        ("GET", "/api/routers/%00/check".into(), Body::None, 400),
        ("GET", "/api/routers/1;DROP/check".into(), Body::None, 400),
        ("GET", "/api/jobs/sync-routers".into(), Body::None, 405),
        ("DELETE", "/api/health".into(), Body::None, 405),
        ("GET", format!("/api/{}", "a".repeat(16_000)), Body::None, 404),
        ("GET", "/api/../../etc/passwd".into(), Body::None, 404),
    ];
    // Seeded random JSON-ish bodies.
    let seed = seed(0x5CE4_0042);
    let mut rng = StdRng::seed_from_u64(seed);
    let n = if soak() { 2_000 } else { 150 };
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        "\"dry_run\"",
        ":",
        ",",
        "true",
        "null",
        "1",
        "\"x\"",
        "\\u0000",
        " ",
    ];
    for _ in 0..n {
        let body: String = (0..rng.gen_range(1..12))
            .map(|_| pieces[rng.gen_range(0..pieces.len())])
            .collect();
        cases.push((
            "POST",
            "/api/jobs/sync-routers?dry_run=true".into(),
            Body::Json(body.into_bytes()),
            0,
        ));
    }
    let mut by_status: std::collections::BTreeMap<u16, usize> = std::collections::BTreeMap::new();
    for (method, path, body, want) in cases {
        let mut req = match method {
            "GET" => http.get(url(&path)),
            "DELETE" => http.delete(url(&path)),
            _ => http.post(url(&path)),
        }
        .bearer_auth(TOKEN);
        req = match body {
            Body::None => req,
            Body::Json(b) => req.header("content-type", "application/json").body(b),
            Body::Typed(ct, b) => req.header("content-type", ct).body(b),
        };
        let resp = match req.send().await {
            Ok(r) => r,
            // A server may close the connection on a huge body before reading it.
            Err(_) if want == 413 => {
                *by_status.entry(413).or_default() += 1;
                continue;
            }
            Err(e) => panic!(
                "{method} {}: {}",
                &path[..path.len().min(60)],
                e.to_string().chars().take(200).collect::<String>()
            ),
        };
        let status = resp.status().as_u16();
        *by_status.entry(status).or_default() += 1;
        let text = resp.text().await.unwrap_or_default();
        let shown = &path[..path.len().min(60)];
        if want == 0 {
            // A random body: a dry run when it happens to be valid, else a clear 400.
            assert!(
                status == 200 || status == 400,
                "{method} {shown}: {status} {text}"
            );
        } else {
            assert_eq!(status, want, "{method} {shown}: {text}");
        }
        assert!(status < 500, "{method} {shown}: {status} {text}");
        assert!(!text.contains(TOKEN), "token echoed");
        if (400..500).contains(&status) && !text.is_empty() && status != 405 {
            let v: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {shown}: {status} not JSON ({e}): {text}"));
            let msg = v["error"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {shown}: no error text: {v}"));
            assert!(!msg.is_empty() && msg.len() < 2048, "{method} {shown}: {msg}");
        }
    }
    // Still alive and healthy, and nothing ran or changed.
    let h = t.health().await;
    assert_eq!(h["success"], true, "{h}");
    let runs = t.daemon.as_ref().expect("daemon").runner().last_runs();
    assert!(
        !runs.contains_key(&JobKind::SyncRouters) && !runs.contains_key(&JobKind::ProvisionServices),
        "a bad request ran a job: {runs:?}"
    );
    let audit_after = t.repos.audit.recent(100_000).await.expect("audit");
    let new: Vec<_> = audit_after
        .iter()
        .take(audit_after.len().saturating_sub(audit_before))
        .filter(|e| {
            e.action != "router_online" && e.action != "router_offline" && e.action != "router_health"
        })
        .collect();
    assert!(new.is_empty(), "bad requests wrote audit events: {new:?}");
    assert_eq!(t.repos.ledger.count_charges().await.expect("count"), 0);
    eprintln!("scenario 4 API (seed {seed:#x}): responses by status {by_status:?}; no 5xx, nothing written");
    t.stop().await;
}

// RADIUS.

mod radius_hostile {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::Utc;
    use isp_core::domain::OwnerTag;
    use isp_core::domain::{
        NewSubscriber, PhoneNumber, RosName, Router, RouterCredentials, RouterId, Tenant, TenantId, Transport,
    };
    use isp_core::ports::{FakeClock, HotspotTarget, RouterDriver};
    use isp_radius::dict::{attr, code};
    use isp_radius::{
        wire, Answer, Authorizer, Nas, NasTable, RadiusDriver, RadiusServer, RetryPolicy, ServerConfig,
    };
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use tokio::net::UdpSocket;

    const SECRET: &str = "hostile-test-secret";
    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn nas(incoming: SocketAddr) -> Nas {
        Nas::new(RouterId(1), TenantId(1), "r1", LOCAL, incoming, SECRET.to_owned())
    }

    fn packet(code: u8, id: u8, auth: [u8; 16], attrs: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut p = vec![code, id, 0, 0];
        p.extend(auth);
        for (t, v) in attrs {
            p.push(*t);
            p.push(u8::try_from(v.len() + 2).expect("short attribute"));
            p.extend(v);
        }
        let len = u16::try_from(p.len()).expect("fits").to_be_bytes();
        p[2..4].copy_from_slice(&len);
        p
    }

    /// A PAP Access-Request with a Message-Authenticator.
    fn access_request(id: u8, user: &str, secret: &[u8]) -> Vec<u8> {
        let auth: [u8; 16] = rand::random();
        let mut p = packet(
            code::ACCESS_REQUEST,
            id,
            auth,
            &[
                (attr::USER_NAME, user.as_bytes().to_vec()),
                (
                    attr::USER_PASSWORD,
                    wire::hide_user_password(user.as_bytes(), &auth, secret),
                ),
                (attr::MESSAGE_AUTHENTICATOR, vec![0; 16]),
            ],
        );
        wire::sign_access_request(&mut p, secret);
        p
    }

    fn hostile_datagrams(good: &[u8], seed: u64, random: usize) -> Vec<Vec<u8>> {
        let mut out = vec![
            Vec::new(),
            good[..1].to_vec(),
            good[..19].to_vec(),
            good[..good.len() - 3].to_vec(),
        ];
        for len in [
            0u16,
            19,
            4097,
            65535,
            u16::try_from(good.len() + 1).expect("fits"),
        ] {
            let mut p = good.to_vec();
            p[2..4].copy_from_slice(&len.to_be_bytes());
            out.push(p);
        }
        for bad in [0u8, 1, 255] {
            let mut p = good.to_vec();
            p[21] = bad;
            out.push(p);
        }
        let mut tampered = good.to_vec();
        tampered[good.len() - 1] ^= 1;
        out.push(tampered);
        // 4,096 bytes of attributes (past the 4,096-byte packet limit), and exactly 4,096 bytes in all.
        for total in [4096 + 20, 4096] {
            let mut p = good.to_vec();
            while p.len() + 255 <= total {
                p.extend([attr::REPLY_MESSAGE, 255]);
                p.extend([b'A'; 253]);
            }
            let len = u16::try_from(p.len()).expect("fits").to_be_bytes();
            p[2..4].copy_from_slice(&len);
            out.push(p);
        }
        let mut rng = StdRng::seed_from_u64(seed);
        for _ in 0..random {
            let n = rng.gen_range(0..600);
            let mut p: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            if p.len() >= 4 && rng.gen_bool(0.5) {
                // A plausible header over random attributes.
                p[0] = *[1u8, 4, 40, 43].get(rng.gen_range(0..4)).unwrap_or(&1);
                let len = u16::try_from(p.len()).expect("fits").to_be_bytes();
                p[2..4].copy_from_slice(&len);
            }
            out.push(p);
        }
        out
    }

    async fn no_answer_and_counted(socket: &UdpSocket, datagrams: &[Vec<u8>], dropped: impl Fn() -> u64) {
        for (i, d) in datagrams.iter().enumerate() {
            let before = dropped();
            socket.send(d).await.expect("send");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while dropped() == before {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "datagram {i} ({} bytes) not dropped",
                    d.len()
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }

    #[tokio::test]
    async fn radius_servers_drop_hostile_datagrams_count_them_and_keep_answering() {
        let repos = isp_core::memory::repositories();
        let clock = Arc::new(FakeClock::new(Utc::now()));
        repos
            .tenants
            .upsert(&Tenant {
                id: TenantId(1),
                slug: RosName::parse("slug", "t1").expect("slug"),
                name: "T1".into(),
                time_zone: chrono_tz::UTC,
            })
            .await
            .expect("tenant");
        let phone = PhoneNumber::parse("phone", "+255712000001").expect("phone");
        repos
            .subscribers
            .insert(&NewSubscriber {
                tenant_id: TenantId(1),
                username: RosName::parse("username", phone.digits()).expect("name"),
                phone,
                paid_until: Utc::now() + chrono::Duration::hours(1),
            })
            .await
            .expect("subscriber");
        let server = RadiusServer::start(
            ServerConfig {
                auth_listen: SocketAddr::new(LOCAL, 0),
                acct_listen: SocketAddr::new(LOCAL, 0),
                interim_interval: Duration::from_secs(60),
                duplicate_window: Duration::from_secs(5),
                max_in_flight: 8,
                session_retention: isp_radius::DEFAULT_SESSION_RETENTION,
            },
            NasTable::new([nas("127.0.0.1:3799".parse().expect("addr"))]),
            Authorizer::new(repos.clone(), clock),
            repos.radius_sessions.clone(),
        )
        .await
        .expect("server");
        let seed = super::seed(0x5AD1);
        let random = if super::soak() { 2000 } else { 200 };
        let good = access_request(7, "255712000001", SECRET.as_bytes());
        let auth = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        auth.connect(server.auth_addr()).await.expect("connect");
        let mut hostile = hostile_datagrams(&good, seed, random);
        hostile.push(access_request(8, "255712000001", b"wrong-secret"));
        no_answer_and_counted(&auth, &hostile, || server.stats().dropped()).await;
        let stats = server.stats();
        assert_eq!(stats.accepts + stats.rejects, 0, "{stats:?}");

        let acct = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        acct.connect(server.acct_addr()).await.expect("connect");
        let mut start = packet(
            code::ACCOUNTING_REQUEST,
            3,
            [0; 16],
            &[
                (attr::ACCT_STATUS_TYPE, 1u32.to_be_bytes().to_vec()),
                (attr::ACCT_SESSION_ID, b"s1".to_vec()),
            ],
        );
        wire::sign_request(&mut start, SECRET.as_bytes());
        let mut acct_hostile = hostile_datagrams(&start, seed ^ 1, random);
        let mut forged = start.clone();
        forged[10] ^= 1;
        acct_hostile.push(forged);
        no_answer_and_counted(&acct, &acct_hostile, || server.stats().dropped()).await;
        assert!(
            server
                .sessions()
                .live_on_router(RouterId(1))
                .await
                .expect("sessions")
                .is_empty(),
            "nothing recorded from hostile accounting"
        );

        // Still answering, correctly signed.
        auth.send(&good).await.expect("send");
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), auth.recv(&mut buf))
            .await
            .expect("an answer")
            .expect("recv");
        assert_eq!((buf[0], buf[1]), (code::ACCESS_ACCEPT, 7));
        assert!(wire::response_authentic(
            &buf[..n],
            &wire::authenticator(&good),
            SECRET.as_bytes()
        ));
        server.shutdown().await;
    }

    #[tokio::test]
    async fn radius_incoming_and_the_disconnect_client_survive_hostile_bytes() {
        use isp_routeros::sim::{SimConfig, SimRouter};
        let mut sim = SimRouter::start(SimConfig::new("admin", "x"), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("sim");
        let incoming = sim
            .serve_radius_incoming("127.0.0.1:0".parse().expect("addr"), SECRET)
            .await
            .expect("incoming");
        let mut good = packet(
            code::DISCONNECT_REQUEST,
            1,
            [0; 16],
            &[(attr::USER_NAME, b"nobody".to_vec())],
        );
        wire::sign_request(&mut good, SECRET.as_bytes());
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        socket.connect(incoming).await.expect("connect");
        for d in hostile_datagrams(&good, super::seed(0x5AD2), if super::soak() { 2000 } else { 200 }) {
            socket.send(&d).await.expect("send");
        }
        // The router still answers a good request after all of them: NAK, no such session.
        let sessions = isp_core::memory::repositories().radius_sessions;
        let driver = RadiusDriver::new(
            NasTable::new([nas(incoming)]),
            sessions.clone(),
            RetryPolicy {
                attempts: 3,
                first_timeout: Duration::from_millis(500),
            },
        );
        let router = Router {
            id: RouterId(1),
            tenant_id: TenantId(1),
            name: "r1".into(),
            address: incoming.to_string(),
            transport: Transport::Radius,
            credentials: RouterCredentials::new("radius", ""),
            tls_fingerprint: None,
            enabled: true,
        };
        let target = HotspotTarget {
            username: Some(RosName::parse("name", "nobody").expect("name")),
            macs: vec![],
            owner: OwnerTag::Subscriber(isp_core::domain::SubscriberId(1)),
            remove_user: false,
        };
        let out = driver
            .disconnect_hotspot(&router, std::slice::from_ref(&target))
            .await
            .expect("sent");
        assert_eq!(out[0].as_ref().expect("NAK 503 is gone").sessions_removed, 0);
        assert_eq!(
            driver.records().pop().expect("record").answer,
            Answer::Nak(Some(503))
        );
        assert!(sim
            .handle()
            .radius_incoming()
            .iter()
            .all(|r| r.user.as_deref() == Some("nobody")));

        // A "router" answering garbage, forged and truncated answers: no answer counted, no panic.
        let liar = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let liar_addr = liar.local_addr().expect("addr");
        let seed = super::seed(0x5AD3);
        let garbage = tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut buf = vec![0u8; 4096];
            while let Ok((n, from)) = liar.recv_from(&mut buf).await {
                let req = buf[..n].to_vec();
                let mut answers: Vec<Vec<u8>> = vec![
                    req[..10.min(req.len())].to_vec(),
                    packet(code::DISCONNECT_ACK, req[1].wrapping_add(1), [0; 16], &[]),
                    packet(code::DISCONNECT_ACK, req[1], [7; 16], &[]),
                ];
                answers.push((0..rng.gen_range(0..300)).map(|_| rng.gen()).collect());
                for a in answers {
                    let _ = liar.send_to(&a, from).await;
                }
            }
        });
        let lying = RadiusDriver::new(
            NasTable::new([nas(liar_addr)]),
            sessions,
            RetryPolicy {
                attempts: 2,
                first_timeout: Duration::from_millis(100),
            },
        );
        let out = lying.disconnect_hotspot(&router, &[target]).await.expect("sent");
        let e = out[0].as_ref().expect_err("no valid answer");
        assert!(e.is_transient(), "{e}");
        assert_eq!(lying.records().pop().expect("record").answer, Answer::NoAnswer);
        garbage.abort();
        sim.shutdown().await;
    }
}
