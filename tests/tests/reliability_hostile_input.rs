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
//!
//! `ISP_SEED=<n>` replays another seed; `ISP_SOAK=1` multiplies the random cases.

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
use isp_tests::reliability::hostile::{done, sentences, vm_peak, Answer, HostileRouter, Script};
use isp_tests::reliability::world::fast_driver;
use isp_tests::reliability::{seed, soak};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Most the process may grow (virtual peak) while being fed hostile replies.
const GROWTH_LIMIT: u64 = 1024 * 1024 * 1024;

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

/// The hostile answers to every command after a good login, by name.
fn hostile_answers(seed: u64, random_cases: usize) -> Vec<(String, Script)> {
    let mut cases: Vec<(String, Script)> = Vec::new();
    let after_login = |f: Arc<dyn Fn(Option<&str>) -> Answer + Send + Sync>| -> Script {
        Arc::new(move |cmd: &str, tag: Option<&str>| {
            if cmd == "/login" {
                Answer::Send(done(tag))
            } else {
                f(tag)
            }
        })
    };
    let fixed: Vec<(&str, Arc<dyn Fn(Option<&str>) -> Answer + Send + Sync>)> = vec![
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_router_bytes_fail_cleanly_with_bounded_memory_and_nothing_written() {
    let seed = seed(0x5CE4_0004);
    let random_cases = if soak() { 2000 } else { 120 };
    let cases = hostile_answers(seed, random_cases);
    let peak_before = vm_peak();
    let mut ok_calls = 0;
    let mut err_calls = 0;
    let mut kinds: HashMap<&'static str, usize> = HashMap::new();
    let mut kept_pending = 0;
    let mut completed_on_wellformed = 0;

    // The engine above the driver: an expired subscriber on the hostile router
    // must stay pending (never recorded disconnected on garbage).
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

    for (i, (name, script)) in cases.into_iter().enumerate() {
        let wellformed = is_complete_answer(&script);
        let server = HostileRouter::start(script).await;
        let router = router_at(server.address());
        let driver = fast_driver();
        let target = HotspotTarget {
            username: Some(RosName::parse("username", "255712000001").expect("name")),
            macs: vec![MacAddress::parse("mac", "02:00:00:00:00:01").expect("mac")],
        };
        let spec = PppoeSpec {
            username: RosName::parse("username", "pppoe-1").expect("name"),
            password: SecretPassword::parse("password", "pw").expect("pw"),
            profile: RosName::parse("profile", "default").expect("profile"),
            owner: OwnerTag::Service(isp_core::domain::ServiceId(1)),
        };
        let calls = async {
            let mut out: Vec<Result<(), Error>> = Vec::new();
            out.push(driver.snapshot(&router, &Menu::ALL).await.map(|_| ()));
            out.push(
                driver
                    .disconnect_hotspot(&router, &[target.clone()])
                    .await
                    .and_then(|rs| rs.into_iter().collect::<Result<Vec<_>, _>>().map(|_| ())),
            );
            out.push(driver.health(&router).await.map(|_| ()));
            out.push(driver.provision_pppoe(&router, &spec).await);
            out
        };
        let results = tokio::time::timeout(Duration::from_secs(20), calls)
            .await
            .unwrap_or_else(|_| panic!("case {name:?}: the driver hung on hostile replies"));
        for r in results {
            match r {
                Ok(()) => ok_calls += 1,
                Err(e) => {
                    err_calls += 1;
                    *kinds.entry(e.kind()).or_default() += 1;
                    let text = e.to_string();
                    assert!(text.len() < 4096, "case {name:?}: error of {} bytes", text.len());
                }
            }
        }
        // The engine: every 8th case, and every fixed case (they come first).
        if i < 24 || i % 8 == 0 {
            // Pending again (a well-formed answer may have completed it in an earlier case).
            repos
                .subscribers
                .extend(sub.id, now - chrono::Duration::minutes(5))
                .await
                .expect("reset the subscriber");
            let clock = Arc::new(FakeClock::new(now + chrono::Duration::minutes(i as i64)));
            let engine = Engine::new(
                EngineDeps {
                    repos: repos.clone(),
                    directory: Arc::new(StaticDirectory::new([router.clone()])),
                    driver: driver.clone(),
                    sms: Arc::new(RecordingSms::new()),
                    clock,
                },
                EngineConfig {
                    retry_base: Duration::from_millis(1),
                    retry_max: Duration::from_millis(1),
                    ..EngineConfig::default()
                },
            );
            for job in [
                JobKind::DisconnectExpired,
                JobKind::SyncRouters,
                JobKind::RouterHealth,
            ] {
                let run =
                    tokio::time::timeout(Duration::from_secs(20), engine.run(job, RunOptions::default()))
                        .await
                        .unwrap_or_else(|_| panic!("case {name:?}: {job} hung"));
                run.unwrap_or_else(|e| panic!("case {name:?}: {job} failed as a whole: {e}"));
            }
            let s = repos.subscribers.get(sub.id).await.expect("subscriber");
            if !s.active {
                // Only a router whose every answer is a complete, well-formed reply
                // ("nothing of that user here") may have confirmed the disconnect.
                assert!(
                    wellformed,
                    "case {name:?}: subscriber recorded disconnected on malformed replies: {s:?}"
                );
                completed_on_wellformed += 1;
            } else {
                kept_pending += 1;
            }
        }
        let grown = vm_peak().saturating_sub(peak_before);
        assert!(
            grown < GROWTH_LIMIT,
            "case {name:?}: peak virtual memory grew by {} MiB",
            grown / (1024 * 1024)
        );
        drop(server);
    }
    assert!(err_calls > 0);
    eprintln!(
        "scenario 4 router (seed {seed:#x}): {} hostile scripts ({random_cases} random), {} driver calls \
         ({ok_calls} ok, {err_calls} errors by kind {kinds:?}), peak memory growth {} MiB; engine runs: \
         subscriber kept pending {kept_pending} times, completed {completed_on_wellformed} times and only on \
         well-formed \"nothing here\" answers",
        24 + random_cases,
        ok_calls + err_calls,
        vm_peak().saturating_sub(peak_before) / (1024 * 1024)
    );
    store.close().await;
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
