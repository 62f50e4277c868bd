//! Reliability scenario 1: router faults (promises 1, 2 and 4 under stress).
//!
//! 20 simulated routers over real TCP, each behind a fault proxy; 4 tenants of
//! 5 routers; SQLite; a fake clock moved 10 minutes per step. Every step runs
//! disconnect-expired, provision-services and sync-routers while, seeded:
//! 20% of the routers go fully down for a while, 5% of commands trap, 1% of
//! replies are cut mid-sentence (the connection drops), some routers refuse
//! logins for a period and some stall mid-sentence. Then the faults stop and
//! the engine drains.
//!
//! Checked after every step: nobody is cut off before `paid_until`, every
//! subscriber entitled at that moment is enabled on every router of its tenant
//! and still has its sessions (read on the simulators), no entitled service
//! loses its router objects, and whatever the database calls
//! disconnected or deprovisioned really is gone from every router. At the end:
//! every router equals the desired state, every removal that an outage delayed
//! was applied after its router came back (and not recorded before), the
//! audit log shows the retries, and each expiry notice went out once.
//!
//! `ISP_SEED=<n>` replays another seed; `ISP_SOAK=1` runs 200 fault steps.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use isp_adapters_sql::SqlStore;
use isp_core::domain::{AuditOutcome, ServiceStatus, TenantId};
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, JobKind, JobReport, RunOptions, Templates};
use isp_core::memory::{RecordingSms, StaticDirectory};
use isp_core::policy::provisioning::is_entitled;
use isp_core::policy::time::local_date;
use isp_core::ports::FakeClock;
use isp_tests::reliability::world::{
    add_service, add_subscriber, fast_driver, service_absent, service_present, sessions_of, user_disabled,
    Fleet, Layout, SubPlan, SvcPlan,
};
use isp_tests::reliability::{seed, soak};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const PASSWORD: &str = "rel-router-pw-5d1e9a";
const ROUTERS: usize = 20;
const STEP_MINUTES: i64 = 10;
const DRAIN_STEPS: usize = 10;

/// A fault window on one router: steps `from..to`.
#[derive(Debug, Clone, Copy)]
struct Window {
    router: usize,
    from: usize,
    to: usize,
}

impl Window {
    fn covers(&self, step: usize) -> bool {
        (self.from..self.to).contains(&step)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct FaultState {
    down: bool,
    refuse: bool,
    stall: bool,
}

fn windows(
    rng: &mut StdRng,
    routers: &[usize],
    first: usize,
    last: usize,
    len: (usize, usize),
) -> Vec<Window> {
    routers
        .iter()
        .map(|&router| {
            let l = rng.gen_range(len.0..=len.1);
            let from = rng.gen_range(first..=last.saturating_sub(l).max(first));
            Window {
                router,
                from,
                to: from + l,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn router_faults_lose_nothing_and_cut_off_nobody_early() {
    let seed = seed(0x5CE4_0001);
    let mut rng = StdRng::seed_from_u64(seed);
    let fault_steps: usize = if soak() { 200 } else { 30 };
    let wall = std::time::Instant::now();

    // 17:00 UTC = 20:00 in Dar es Salaam: the tenants' midnight comes at step 24,
    // while the faults are still on (past-due services are deprovisioned then).
    let tz: Tz = chrono_tz::Africa::Dar_es_Salaam;
    let start = Utc
        .with_ymd_and_hms(2026, 3, 10, 17, 0, 0)
        .single()
        .expect("start");
    let at = |step: usize| start + Duration::minutes(STEP_MINUTES * step as i64);
    let clock = Arc::new(FakeClock::new(start));

    let fleet = Fleet::start(ROUTERS, PASSWORD, true, seed).await;
    let layout = Layout::even(4, 5, tz);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqlStore::connect_sqlite(dir.path().join("reliability.db"))
        .await
        .expect("sqlite");
    store.migrate().await.expect("migrate");
    let repos = store.repositories();
    let plans = layout.seed(&repos).await;
    let directory = Arc::new(StaticDirectory::new(layout.routers(&fleet)));
    let sms = Arc::new(RecordingSms::new());
    let engine = Engine::new(
        EngineDeps {
            repos: repos.clone(),
            directory,
            driver: fast_driver(),
            sms: sms.clone(),
            clock: clock.clone(),
        },
        EngineConfig {
            holder: "reliability-1".into(),
            batch_size: 40,
            retry_base: std::time::Duration::from_secs(60),
            retry_max: std::time::Duration::from_secs(300),
            ..EngineConfig::default()
        },
    );

    // Workload: 16 subscribers per tenant; two thirds expire during the fault
    // steps, the rest are paid for days. Some are extended before they expire.
    let horizon = (fault_steps as i64 - 2) * STEP_MINUTES;
    let mut subs: Vec<SubPlan> = Vec::new();
    let mut extensions: BTreeMap<usize, Vec<usize>> = BTreeMap::new(); // step -> sub index
    for (tenant, _, routers) in layout.tenants.clone() {
        for n in 0..16 {
            let paid_until = if n % 3 == 2 {
                start + Duration::days(3)
            } else {
                start
                    + Duration::minutes(rng.gen_range(5..horizon))
                    + Duration::seconds(rng.gen_range(0..600))
            };
            let k = rng.gen_range(1..=3);
            let on: Vec<usize> = routers.choose_multiple(&mut rng, k).copied().collect();
            let sub = add_subscriber(&repos, &fleet, &layout, tenant, n, paid_until, &on, start).await;
            if n % 3 != 2 && rng.gen_bool(0.15) {
                let expiry_step = ((paid_until - start).num_minutes() / STEP_MINUTES) as usize;
                if expiry_step >= 1 {
                    extensions
                        .entry(rng.gen_range(0..expiry_step))
                        .or_default()
                        .push(subs.len());
                }
            }
            subs.push(sub);
        }
    }
    // Services: half paid for days, a quarter due today (past due at midnight),
    // a quarter suspended during the run (half of those reactivated later).
    let today = local_date(start, tz);
    let mut services: Vec<SvcPlan> = Vec::new();
    let mut status_changes: BTreeMap<usize, Vec<(usize, ServiceStatus)>> = BTreeMap::new();
    for (tenant, _, routers) in layout.tenants.clone() {
        for n in 0..8 {
            let router = *routers.choose(&mut rng).expect("router");
            let kind = n % 4;
            let nbd: NaiveDate = if kind == 1 {
                today
            } else {
                today + Duration::days(5)
            };
            let svc = add_service(
                &repos,
                tenant,
                plans[&tenant],
                router,
                (tenant.0 as usize) * 100 + n,
                ServiceStatus::Active,
                nbd,
                nbd,
            )
            .await;
            if kind == 3 {
                let off = rng.gen_range(4..14);
                status_changes
                    .entry(off)
                    .or_default()
                    .push((services.len(), ServiceStatus::Suspended));
                if n % 8 == 3 {
                    status_changes
                        .entry(off + rng.gen_range(4..10))
                        .or_default()
                        .push((services.len(), ServiceStatus::Active));
                }
            }
            services.push(svc);
        }
    }

    // Faults: 4 routers (20%) down for 4-8 steps; 3 refuse logins for 2-4 steps;
    // 2 stall mid-sentence for 1-2 steps; 5% traps and 1% cut replies throughout.
    let mut order: Vec<usize> = (0..ROUTERS).collect();
    order.shuffle(&mut rng);
    let last = fault_steps.saturating_sub(4).max(6);
    let outages = windows(&mut rng, &order[0..4], 2, last, (4, 8));
    let refusals = windows(&mut rng, &order[4..7], 2, last, (2, 4));
    let stalls = windows(&mut rng, &order[7..9], 2, last, (1, 2));
    // Later outages in a soak.
    let mut outages = outages;
    if soak() {
        for _ in 0..fault_steps / 30 {
            let r: Vec<usize> = order.choose_multiple(&mut rng, 4).copied().collect();
            outages.extend(windows(&mut rng, &r, 2, last, (4, 8)));
        }
    }
    let mut state = [FaultState::default(); ROUTERS];

    // Per-step bookkeeping.
    let user_index: BTreeMap<String, usize> = subs
        .iter()
        .enumerate()
        .map(|(i, s)| (s.username.clone(), i))
        .collect();
    let mut removal_step: BTreeMap<(usize, String), usize> = BTreeMap::new(); // (router, user) -> first step
    let mut seen_removals = [0usize; ROUTERS];
    let mut violations: Vec<String> = Vec::new();
    let mut checks = 0u64;
    let mut reports: Vec<JobReport> = Vec::new();
    let total_steps = fault_steps + DRAIN_STEPS;
    let mut drained_at = None;

    for step in 0..total_steps {
        let now = at(step);
        clock.set(now);
        let faulty = step < fault_steps;
        fleet.set_rates(if faulty { 0.05 } else { 0.0 }, if faulty { 0.01 } else { 0.0 });
        for (r, st) in state.iter_mut().enumerate() {
            let want = FaultState {
                down: faulty && outages.iter().any(|w| w.router == r && w.covers(step)),
                refuse: faulty && refusals.iter().any(|w| w.router == r && w.covers(step)),
                stall: faulty && stalls.iter().any(|w| w.router == r && w.covers(step)),
            };
            if want != *st {
                let h = &fleet.handles[r];
                h.clear_faults();
                if want.down {
                    h.outage(std::time::Duration::from_secs(3600));
                }
                if want.refuse {
                    h.refuse_logins(true);
                    h.drop_connections();
                }
                if want.stall {
                    h.stall_mid_sentence(true);
                }
                *st = want;
            }
        }
        for &i in extensions.get(&step).into_iter().flatten() {
            let s = &mut subs[i];
            assert!(s.paid_until > now, "extension scheduled after expiry");
            s.paid_until = now + Duration::days(2);
            repos
                .subscribers
                .extend(s.id, s.paid_until)
                .await
                .expect("extend");
        }
        for &(i, status) in status_changes.get(&step).into_iter().flatten() {
            repos
                .services
                .set_status(services[i].id, status)
                .await
                .expect("set status");
        }

        let mut step_failures = 0;
        for job in [
            JobKind::DisconnectExpired,
            JobKind::ProvisionServices,
            JobKind::SyncRouters,
            JobKind::DeliverNotices,
        ] {
            let report = engine
                .run(job, RunOptions::default())
                .await
                .unwrap_or_else(|e| panic!("step {step}: {job} could not run: {e}"));
            step_failures += report.failures.len();
            reports.push(report);
        }

        // Promise 2: removals made during this step hit nobody entitled now.
        for (r, h) in fleet.handles.iter().enumerate() {
            let all = h.removals();
            for rm in &all[seen_removals[r]..] {
                checks += 1;
                let name = |k: &str| rm.row.get(k).cloned().unwrap_or_default();
                match rm.menu.as_str() {
                    "/ip/hotspot/active" => {
                        let user = name("user");
                        removal_step.entry((r, user.clone())).or_insert(step);
                        if let Some(&i) = user_index.get(&user) {
                            if subs[i].paid_until > now {
                                violations.push(format!(
                                    "step {step}: R{} removed a session of {user}, paid until {} (now {now})",
                                    r + 1,
                                    subs[i].paid_until
                                ));
                            }
                        }
                    }
                    "/ppp/secret" | "/ip/firewall/address-list" | "/queue/simple" => {
                        let key = match rm.menu.as_str() {
                            "/ppp/secret" => name("name"),
                            "/ip/firewall/address-list" => name("address").trim_end_matches("/32").to_owned(),
                            _ => name("name"),
                        };
                        for svc in services.iter().filter(|s| s.router == r) {
                            let hit = svc.key == key || key == format!("isp-svc-{}", svc.id);
                            if !hit {
                                continue;
                            }
                            let db = repos.services.get(svc.id).await.expect("service");
                            if is_entitled(&db, local_date(now, tz)) {
                                violations.push(format!(
                                    "step {step}: R{} removed {} of entitled service {}",
                                    r + 1,
                                    rm.menu,
                                    svc.id
                                ));
                            }
                        }
                    }
                    _ => {}
                }
            }
            seen_removals[r] = all.len();
        }

        // Promise 2: every subscriber entitled now is enabled on every router of
        // its tenant and keeps its session, on the simulators themselves.
        for s in subs.iter().filter(|s| s.paid_until > now) {
            for &r in layout.routers_of(s.tenant) {
                checks += 1;
                let h = &fleet.handles[r];
                let disabled = user_disabled(h, &s.username);
                if disabled != Some(false) {
                    violations.push(format!(
                        "step {step}: R{}: entitled {} (paid until {}, now {now}) is disabled={disabled:?}",
                        r + 1,
                        s.username,
                        s.paid_until
                    ));
                }
                let want = usize::from(s.routers.contains(&r));
                let got = sessions_of(h, &s.username);
                if got != want {
                    violations.push(format!(
                        "step {step}: R{}: entitled {} (paid until {}, now {now}) has {got} sessions, expected {want}",
                        r + 1,
                        s.username,
                        s.paid_until
                    ));
                }
            }
        }

        // Promise 1: what the database calls done is done on every router.
        for s in &subs {
            let db = repos.subscribers.get(s.id).await.expect("subscriber");
            if db.active {
                continue;
            }
            for &r in layout.routers_of(s.tenant) {
                checks += 1;
                let h = &fleet.handles[r];
                if sessions_of(h, &s.username) != 0 || user_disabled(h, &s.username) != Some(true) {
                    violations.push(format!(
                        "step {step}: subscriber {} recorded disconnected but R{} still has {} sessions, user disabled={:?}",
                        s.id,
                        r + 1,
                        sessions_of(h, &s.username),
                        user_disabled(h, &s.username)
                    ));
                }
            }
        }
        for svc in &services {
            let db = repos.services.get(svc.id).await.expect("service");
            if !db.provisioned && db.deprovisioned_at.is_some() && !is_entitled(&db, local_date(now, tz)) {
                checks += 1;
                if !service_absent(&fleet.handles[svc.router], svc) {
                    violations.push(format!(
                        "step {step}: service {} recorded deprovisioned but R{} still holds it",
                        svc.id,
                        svc.router + 1
                    ));
                }
            }
        }
        if !faulty && step_failures == 0 && drained_at.is_none() {
            drained_at = Some(step);
            break;
        }
    }
    assert!(
        violations.is_empty(),
        "{} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
    let drained_at = drained_at.unwrap_or_else(|| {
        let last: Vec<_> = reports
            .iter()
            .rev()
            .take(3)
            .flat_map(|r| r.failures.clone())
            .collect();
        panic!("still failing {DRAIN_STEPS} steps after the faults stopped: {last:?}")
    });
    let end = at(drained_at);
    let end_date = local_date(end, tz);

    // The routers equal the desired state.
    let mut expired = 0;
    let mut entitled = 0;
    for s in &subs {
        let db = repos.subscribers.get(s.id).await.expect("subscriber");
        let is_expired = s.paid_until <= end;
        if is_expired {
            expired += 1;
            assert!(
                !db.active && db.disconnected_at.is_some(),
                "expired but still active: {db:?}"
            );
        } else {
            entitled += 1;
            assert!(db.active, "entitled but inactive: {db:?}");
        }
        for &r in layout.routers_of(s.tenant) {
            let h = &fleet.handles[r];
            let want_sessions = usize::from(!is_expired && s.routers.contains(&r));
            assert_eq!(
                sessions_of(h, &s.username),
                want_sessions,
                "R{}: sessions of {} (expired {is_expired})",
                r + 1,
                s.username
            );
            assert_eq!(
                user_disabled(h, &s.username),
                Some(is_expired),
                "R{}: hotspot user {} disabled?",
                r + 1,
                s.username
            );
        }
    }
    let mut svc_on = 0;
    let mut svc_off = 0;
    for svc in &services {
        let db = repos.services.get(svc.id).await.expect("service");
        let h = &fleet.handles[svc.router];
        if is_entitled(&db, end_date) {
            svc_on += 1;
            assert!(db.provisioned, "entitled service {} not provisioned", svc.id);
            assert!(
                service_present(h, svc),
                "entitled service {} missing on R{}",
                svc.id,
                svc.router + 1
            );
        } else {
            svc_off += 1;
            assert!(!db.provisioned, "service {} still provisioned", svc.id);
            assert!(
                service_absent(h, svc),
                "service {} still on R{}",
                svc.id,
                svc.router + 1
            );
        }
    }
    assert!(
        svc_off >= 4 && svc_on >= 4,
        "workload too small: {svc_on} on, {svc_off} off"
    );
    // A dry-run sync finds nothing left to do.
    let dry = engine
        .run(JobKind::SyncRouters, RunOptions { dry_run: true })
        .await
        .expect("dry sync");
    assert!(dry.failures.is_empty(), "{dry:?}");
    let leftover: BTreeMap<_, _> = dry
        .counts
        .iter()
        .filter(|(k, v)| *k != "routers_synced" && **v > 0)
        .collect();
    assert!(leftover.is_empty(), "sync still wants to act: {leftover:?}");
    assert_eq!(dry.count("routers_synced"), ROUTERS as u64);

    // Removals an outage delayed were applied after the router came back, and
    // the database recorded the disconnect only then.
    let audit = repos.audit.recent(1_000_000).await.expect("audit");
    let mut delayed = 0;
    for w in &outages {
        let tenant: TenantId = layout.tenant_of(w.router);
        for s in subs.iter().filter(|s| s.tenant == tenant && s.paid_until <= end) {
            let due_step = (0..total_steps)
                .find(|&k| at(k) >= s.paid_until)
                .expect("due step");
            if !w.covers(due_step) {
                continue;
            }
            delayed += 1;
            let db = repos.subscribers.get(s.id).await.expect("subscriber");
            let done = db.disconnected_at.expect("disconnected");
            assert!(
                done >= at(w.to),
                "subscriber {} recorded disconnected at {done} while R{} was down until {}",
                s.id,
                w.router + 1,
                at(w.to)
            );
            if s.routers.contains(&w.router) {
                let k = removal_step[&(w.router, s.username.clone())];
                assert!(
                    k >= w.to,
                    "removal on R{} at step {k}, during its outage",
                    w.router + 1
                );
            }
            let subject = format!("subscriber:{}", s.id);
            let retried = audit.iter().any(|e| {
                e.subject == subject
                    && e.outcome == AuditOutcome::Retry
                    && e.router_id.map(|r| r.0) == Some(w.router as i64 + 1)
            });
            assert!(
                retried,
                "no retry in the audit log for {subject} on R{}",
                w.router + 1
            );
            assert!(
                audit.iter().any(|e| e.subject == subject
                    && e.action == "expire"
                    && e.outcome == AuditOutcome::Success),
                "no completed expiry in the audit log for {subject}"
            );
        }
    }
    assert!(
        delayed >= 3,
        "the outages delayed only {delayed} expiries: too few to mean anything"
    );
    let retries = audit.iter().filter(|e| e.outcome == AuditOutcome::Retry).count();

    // Promise 4: one expiry notice per expired subscriber.
    let text = Templates::default().hotspot_expired;
    for s in &subs {
        let n = sms.sent_to(&s.phone).iter().filter(|b| **b == text).count();
        assert_eq!(
            n,
            usize::from(s.paid_until <= end),
            "expiry notices to {}",
            s.phone
        );
    }

    let (traps, cuts, commands) = fleet.proxy_totals();
    assert!(
        traps > 0 && cuts > 0,
        "no protocol faults were injected ({traps} traps, {cuts} cuts)"
    );
    eprintln!(
        "scenario 1 (seed {seed:#x}): {fault_steps} fault steps + {} drain, {:.1} s; faults: {} outages, {} refused-login \
         periods, {} stalls, {traps} injected traps and {cuts} cut replies in {commands} commands; \
         {expired} expiries ({delayed} delayed by outages), {entitled} entitled subscribers untouched, \
         {svc_on} services on, {svc_off} off; {checks} checks, {retries} retries audited; 0 violations",
        drained_at + 1 - fault_steps,
        wall.elapsed().as_secs_f64(),
        outages.len(),
        refusals.len(),
        stalls.len(),
    );
    store.close().await;
}
