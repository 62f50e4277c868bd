//! Reliability scenario 6: time (promise 2, and promise 3's "right local
//! dates"). The engine on SQLite with simulated routers and a fake clock.
//!
//! - Hotspot expiry across both DST changes of New York and Lord Howe (a
//!   30-minute shift), with the routers' clocks set hours off and to another
//!   zone: stepping a minute at a time, each subscriber is cut off in the first
//!   step at or after `paid_until`, never before; the "expires soon" SMS goes
//!   out within its hour, never after the deadline.
//! - Monthly charges, due-date deprovisioning and 09:00 payment reminders in
//!   six zones (Auckland, Santiago whose DST switches at midnight, Lord Howe,
//!   New York, Kathmandu at +05:45, Dar es Salaam) for billing days 1, 29, 30
//!   and 31 over 14 months (month ends clamped, leap-free February): probed one
//!   second before and at the instant each local date begins (found by the
//!   test itself, by bisection), nothing happens early and everything happens
//!   on time, exactly once.
//!
//! `ISP_SEED=<n>` changes the random probes in between.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use isp_adapters_sql::SqlStore;
use isp_core::domain::{LedgerKind, ServiceStatus, TenantId};
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, JobKind, RunOptions};
use isp_core::memory::{RecordingSms, StaticDirectory};
use isp_core::ports::{Clock, FakeClock, Repositories};
use isp_tests::reliability::seed;
use isp_tests::reliability::world::{add_service, add_subscriber, fast_driver, sessions_of, Fleet, Layout};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The first whole second whose date in `tz` is `date` or later (bisection over
/// UTC seconds: independent of the engine's own local-time code).
fn first_instant_of(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    bisect(date.and_hms_opt(0, 0, 0).expect("midnight"), |t| {
        t.with_timezone(&tz).date_naive() >= date
    })
}

/// The first whole second whose wall-clock time in `tz` is `local` or later.
fn first_instant_at(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    bisect(local, |t| t.with_timezone(&tz).naive_local() >= local)
}

fn bisect(around: NaiveDateTime, reached: impl Fn(DateTime<Utc>) -> bool) -> DateTime<Utc> {
    let at = |s: i64| Utc.timestamp_opt(s, 0).single().expect("instant");
    let mut lo = around.and_utc().timestamp() - 2 * 86_400;
    let mut hi = lo + 4 * 86_400;
    assert!(!reached(at(lo)) && reached(at(hi)));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if reached(at(mid)) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    at(hi)
}

/// The period starts of a billing day from `from` on, up to `until`.
fn anchors(billing_day: u32, from: NaiveDate, until: NaiveDate) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let (mut y, mut m) = (from.year(), from.month());
    loop {
        let last = (28..=31)
            .rev()
            .find(|d| NaiveDate::from_ymd_opt(y, m, *d).is_some())
            .expect("month length");
        let d = NaiveDate::from_ymd_opt(y, m, billing_day.min(last)).expect("anchor");
        if d > until {
            return out;
        }
        if d >= from {
            out.push(d);
        }
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
}

struct World {
    fleet: Fleet,
    layout: Layout,
    repos: Repositories,
    store: SqlStore,
    clock: Arc<FakeClock>,
    sms: Arc<RecordingSms>,
    engine: Engine,
    _dir: tempfile::TempDir,
}

async fn world(zones: &[Tz], start: DateTime<Utc>) -> World {
    let fleet = Fleet::start(zones.len(), "time-pw", false, 6).await;
    let layout = Layout {
        tenants: zones
            .iter()
            .enumerate()
            .map(|(i, tz)| (TenantId(i as i64 + 1), *tz, vec![i]))
            .collect(),
    };
    let dir = tempfile::tempdir().expect("dir");
    let store = SqlStore::connect_sqlite(dir.path().join("time.db"))
        .await
        .expect("sqlite");
    store.migrate().await.expect("migrate");
    let repos = store.repositories();
    let clock = Arc::new(FakeClock::new(start));
    let sms = Arc::new(RecordingSms::new());
    let engine = Engine::new(
        EngineDeps {
            repos: repos.clone(),
            directory: Arc::new(StaticDirectory::new(layout.routers(&fleet))),
            driver: fast_driver(),
            sms: sms.clone(),
            clock: clock.clone(),
        },
        EngineConfig {
            retry_base: std::time::Duration::from_secs(1),
            retry_max: std::time::Duration::from_secs(1),
            ..EngineConfig::default()
        },
    );
    // The routers' clocks are hours off and in another zone: the engine must not care.
    for (i, h) in fleet.handles.iter().enumerate() {
        h.set_clock(start + Duration::hours(3 + i as i64));
    }
    World {
        fleet,
        layout,
        repos,
        store,
        clock,
        sms,
        engine,
        _dir: dir,
    }
}

async fn run(w: &World, job: JobKind) {
    let r = w
        .engine
        .run(job, RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{job}: {e}"));
    assert!(
        r.failures.is_empty(),
        "{job} at {}: {:?}",
        w.clock.now(),
        r.failures
    );
}

/// One DST day: subscribers expiring every 7 minutes through 00:00-04:00
/// local (the repeated and the skipped hour); returns (checked, warned).
async fn expiry_day(tz: Tz, day: NaiveDate) -> (usize, usize) {
    let t0 = first_instant_of(day, tz);
    let w = world(&[tz], t0).await;
    w.layout.seed(&w.repos).await;
    let mut subs = Vec::new();
    for n in 0..32 {
        let paid_until = t0 + Duration::minutes(7 * n as i64 + 3) + Duration::seconds(n as i64);
        subs.push(
            add_subscriber(
                &w.repos,
                &w.fleet,
                &w.layout,
                TenantId(1),
                n,
                paid_until,
                &[0],
                t0,
            )
            .await,
        );
    }
    let mut removed_at: BTreeMap<usize, DateTime<Utc>> = BTreeMap::new();
    let mut now = t0 - Duration::minutes(10);
    let end = t0 + Duration::minutes(7 * 32 + 10);
    while now <= end {
        w.clock.set(now);
        run(&w, JobKind::WarnBeforeExpiry).await;
        run(&w, JobKind::DisconnectExpired).await;
        run(&w, JobKind::SyncRouters).await;
        run(&w, JobKind::DeliverNotices).await;
        for (i, s) in subs.iter().enumerate() {
            let gone = sessions_of(&w.fleet.handles[0], &s.username) == 0;
            if gone && !removed_at.contains_key(&i) {
                assert!(
                    now >= s.paid_until,
                    "{tz} {day}: {} cut off at {} ({}), paid until {} ({})",
                    s.username,
                    now,
                    now.with_timezone(&tz),
                    s.paid_until,
                    s.paid_until.with_timezone(&tz)
                );
                assert!(
                    now - s.paid_until < Duration::minutes(1),
                    "late: {now} for {}",
                    s.paid_until
                );
                removed_at.insert(i, now);
            }
        }
        now += Duration::minutes(1);
    }
    let mut warned = 0;
    for (i, s) in subs.iter().enumerate() {
        assert!(
            removed_at.contains_key(&i),
            "{tz} {day}: {} never cut off",
            s.username
        );
        let db = w.repos.subscribers.get(s.id).await.expect("sub");
        assert!(
            !db.active && db.disconnected_at.is_some_and(|d| d >= s.paid_until),
            "{db:?}"
        );
        // The warning: within the hour before paid_until, never after it.
        let soon = w
            .repos
            .notices
            .find(
                &s.phone,
                isp_core::domain::NoticeKind::HotspotExpiresSoon,
                s.paid_until,
                "",
            )
            .await
            .expect("notice");
        if let Some(n) = soon {
            assert!(
                n.created_at < s.paid_until && s.paid_until - n.created_at <= Duration::hours(1),
                "warning at {} for {}",
                n.created_at,
                s.paid_until
            );
            warned += 1;
        }
    }
    w.store.close().await;
    w.fleet.sims.shutdown().await;
    (subs.len(), warned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hotspot_expiry_across_dst_changes_is_never_early() {
    let ny: Tz = chrono_tz::America::New_York;
    let lh: Tz = chrono_tz::Australia::Lord_Howe;
    let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
    // Spring forward and fall back in each zone (2026), concurrently.
    let results = futures::future::join_all([
        tokio::spawn(expiry_day(ny, d(2026, 3, 8))),
        tokio::spawn(expiry_day(ny, d(2026, 11, 1))),
        tokio::spawn(expiry_day(lh, d(2026, 4, 5))),
        tokio::spawn(expiry_day(lh, d(2026, 10, 4))),
    ])
    .await;
    let (mut checked, mut warned) = (0, 0);
    for r in results {
        let (c, w) = r.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        checked += c;
        warned += w;
    }
    assert!(warned >= checked / 2, "only {warned} of {checked} warned");
    eprintln!(
        "scenario 6 expiry: 4 DST changes (New York, Lord Howe), routers' clocks 3 h off: {checked} subscribers cut \
         off in the first minute at or after paid_until, none early; {warned} warned within the hour before"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charges_due_dates_and_reminders_follow_local_dates() {
    let seed = seed(0x5CE4_0006);
    let mut rng = StdRng::seed_from_u64(seed);
    let zones: Vec<Tz> = vec![
        chrono_tz::Pacific::Auckland,
        chrono_tz::America::Santiago,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::America::New_York,
        chrono_tz::Asia::Kathmandu,
        chrono_tz::Africa::Dar_es_Salaam,
    ];
    let start = Utc
        .with_ymd_and_hms(2026, 1, 20, 0, 0, 0)
        .single()
        .expect("start");
    let until = NaiveDate::from_ymd_opt(2027, 3, 10).expect("until");
    let w = world(&zones, start).await;
    let plans = w.layout.seed(&w.repos).await;

    // Billing: per zone, billing days 1, 29, 30, 31 from January 2026. Paid far
    // ahead (next_billing_date) so provisioning stays quiet.
    let mut billed = Vec::new(); // (service, tz, expected period starts)
    let far = NaiveDate::from_ymd_opt(2030, 1, 1).expect("far");
    for (t, (tenant, tz, routers)) in w.layout.tenants.iter().enumerate() {
        for (k, day) in [1u32, 29, 30, 31].into_iter().enumerate() {
            let first = anchors(day, NaiveDate::from_ymd_opt(2026, 1, 21).expect("d"), until)[0];
            let svc = add_service(
                &w.repos,
                *tenant,
                plans[tenant],
                routers[0],
                t * 100 + k * 2,
                ServiceStatus::Active,
                far,
                first,
            )
            .await;
            billed.push((svc, *tz, anchors(day, first, until)));
        }
    }
    // Due dates on DST and month-end days: active, unpaid past D; provisioned
    // before, deprovisioned when D ends locally; reminded at 09:00 three days before.
    let due_days = [
        "2026-01-31",
        "2026-02-28",
        "2026-03-07",
        "2026-04-04",
        "2026-04-05",
        "2026-09-05",
        "2026-09-06",
        "2026-10-03",
        "2026-10-31",
        "2026-12-31",
    ];
    let mut dues = Vec::new(); // (service, tz, D)
    for (t, (tenant, tz, routers)) in w.layout.tenants.iter().enumerate() {
        for (k, d) in due_days.iter().enumerate() {
            let d = NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("date");
            let svc = add_service(
                &w.repos,
                *tenant,
                plans[tenant],
                routers[0],
                t * 100 + 50 + k * 2, // even: PPPoE
                ServiceStatus::Active,
                d,
                far,
            )
            .await;
            dues.push((svc, *tz, d));
        }
    }

    // Probe instants: one second before and at each local date's first instant
    // (charges, deprovisioning) and each 09:00 (reminders), plus random ones.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Probe {
        Bill,
        Provision,
        Remind,
    }
    let mut probes: Vec<(DateTime<Utc>, Probe)> = vec![(start, Probe::Provision)];
    for (_, tz, periods) in &billed {
        for p in periods {
            let at = first_instant_of(*p, *tz);
            probes.push((at - Duration::seconds(1), Probe::Bill));
            probes.push((at, Probe::Bill));
        }
    }
    for (_, tz, d) in &dues {
        let end = first_instant_of(d.succ_opt().expect("next"), *tz);
        probes.push((end - Duration::seconds(1), Probe::Provision));
        probes.push((end, Probe::Provision));
        let nine = first_instant_at((*d - Duration::days(3)).and_hms_opt(9, 0, 0).expect("09:00"), *tz);
        probes.push((nine - Duration::seconds(1), Probe::Remind));
        probes.push((nine, Probe::Remind));
    }
    let span = (first_instant_of(until, chrono_tz::UTC) - start).num_seconds();
    for _ in 0..150 {
        let at = start + Duration::seconds(rng.gen_range(0..span));
        let kind = [Probe::Bill, Probe::Provision, Probe::Remind][rng.gen_range(0..3)];
        probes.push((at, kind));
    }
    probes.sort();
    probes.dedup();

    let mut checks = 0u64;
    for (at, probe) in &probes {
        w.clock.set(*at);
        match probe {
            Probe::Bill => {
                run(&w, JobKind::MonthlyBilling).await;
                for (svc, tz, periods) in &billed {
                    let charges: Vec<NaiveDate> = w
                        .repos
                        .ledger
                        .of_service(svc.id)
                        .await
                        .expect("ledger")
                        .into_iter()
                        .filter(|e| e.kind == LedgerKind::Charge)
                        .filter_map(|e| e.period_start)
                        .collect();
                    let want: Vec<NaiveDate> = periods
                        .iter()
                        .copied()
                        .filter(|p| first_instant_of(*p, *tz) <= *at)
                        .collect();
                    assert_eq!(
                        charges,
                        want,
                        "service {} ({tz}) at {at} = {} local",
                        svc.id,
                        at.with_timezone(tz)
                    );
                    checks += 1;
                }
            }
            Probe::Provision => {
                run(&w, JobKind::ProvisionServices).await;
                for (svc, tz, d) in &dues {
                    let db = w.repos.services.get(svc.id).await.expect("service");
                    let entitled = *at < first_instant_of(d.succ_opt().expect("next"), *tz);
                    assert_eq!(
                        db.provisioned,
                        entitled,
                        "service {} due {d} ({tz}) at {at} = {} local",
                        svc.id,
                        at.with_timezone(tz)
                    );
                    let on_router = w.fleet.handles[svc.router]
                        .rows("/ppp/secret")
                        .iter()
                        .any(|r| r.get("name") == Some(&svc.key));
                    assert_eq!(on_router, entitled, "router state of service {} at {at}", svc.id);
                    checks += 1;
                }
            }
            Probe::Remind => {
                run(&w, JobKind::PaymentReminders).await;
                run(&w, JobKind::DeliverNotices).await;
                for (svc, tz, d) in &dues {
                    let phone = isp_core::domain::PhoneNumber::parse(
                        "phone",
                        &format!("+2556{}{:07}", svc.tenant.0, svc_number(svc)),
                    )
                    .expect("phone");
                    let sent = w
                        .sms
                        .sent_to(&phone)
                        .iter()
                        .filter(|b| b.contains("is due on"))
                        .count();
                    let nine =
                        first_instant_at((*d - Duration::days(3)).and_hms_opt(9, 0, 0).expect("9"), *tz);
                    let due_start = first_instant_of(*d, *tz);
                    let want = usize::from(*at >= nine && nine < due_start);
                    // Once sent it stays sent (exactly once); a run after the window cannot send it late.
                    let want = if *at >= due_start { sent.min(1) } else { want };
                    assert_eq!(
                        sent, want,
                        "payment reminder for service {} due {d} ({tz}) at {at}",
                        svc.id
                    );
                    checks += 1;
                }
            }
        }
    }
    // Every reminder went out once (a probe at 09:00 each time), every period charged once.
    for (svc, _, d) in &dues {
        let phone = isp_core::domain::PhoneNumber::parse(
            "phone",
            &format!("+2556{}{:07}", svc.tenant.0, svc_number(svc)),
        )
        .expect("phone");
        let sent = w
            .sms
            .sent_to(&phone)
            .iter()
            .filter(|b| b.contains("is due on"))
            .count();
        assert_eq!(sent, 1, "payment reminders for service {} due {d}", svc.id);
    }
    let charges: usize = billed.iter().map(|(_, _, p)| p.len()).sum();
    assert_eq!(
        w.repos.ledger.count_charges().await.expect("count"),
        charges as u64
    );
    eprintln!(
        "scenario 6 dates (seed {seed:#x}): 6 zones, {} billed services, {charges} charges each at its local \
         midnight (none a second early), {} due dates on DST/month-end days deprovisioned at local midnight and \
         reminded at 09:00 local exactly once; {} probes, {checks} checks",
        billed.len(),
        dues.len(),
        probes.len()
    );
    w.store.close().await;
}

/// The `n` [`add_service`] was called with (its customer's phone is `+2556{tenant}{n:07}`).
fn svc_number(svc: &isp_tests::reliability::world::SvcPlan) -> usize {
    svc.key
        .strip_prefix("pppoe-")
        .and_then(|n| n.parse().ok())
        .expect("a PPPoE service")
}
