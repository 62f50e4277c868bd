//! Row 7: grant latency. A customer pays, `Engine::grant` runs, and the call
//! returns with the subscriber's hotspot user enabled on every router of its
//! tenant. 1,000 grants arrive evenly over a minute (each call started on its
//! own schedule, so calls overlap as payments would), 100 routers at the
//! injected round-trip latency, on SQLite and on PostgreSQL. Latency is from
//! the call to its return; afterwards the simulators are checked (not timed):
//! every granted subscriber's user exists, enabled, on every router of its
//! tenant.
//!
//! Half of the subscribers paid before (their user is on the routers,
//! disabled, as the expiry path leaves it); the other half never had a user.
//! The baseline, measured in the same run on the same simulators, is the
//! seeds' way: mark the subscriber paid in the database, then on each router
//! of the tenant in turn connect, log in, enable the user (add it where it
//! does not exist) and close.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use isp_adapters_sql::Backend;
use isp_core::domain::{Extension, SubscriberId};
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, RouterAccess};
use isp_core::memory::{RecordingSms, StaticDirectory};
use isp_core::ports::SubscriberRepoExt as _;
use isp_routeros::client::{ClientConfig, Connection, Credentials, Endpoint};
use isp_routeros::driver::{DriverConfig, RouterOsDriver};
use isp_routeros::proto::Request;

use crate::pg;
use crate::report::{fig, Figure, Goal, Line, RowResult, Unit};
use crate::rows::{progress, Scale};
use crate::scenario::{username, Db, Fleet, Population, RouterSpec, Topology, API_PASSWORD, API_USER};
use crate::stats::{secs, thousands, Summary};
use crate::BoxResult;

/// The target: p99 of call-to-return under this.
const TARGET_P99_MS: f64 = 100.0;

/// One backend's run.
#[derive(Debug)]
struct GrantRun {
    /// Call-to-return, milliseconds, one per grant.
    latencies_ms: Vec<f64>,
    /// Grants whose outcome named a router not `Enabled`, or that failed.
    not_enabled: u64,
    /// Granted subscribers whose user is missing or disabled on some router
    /// of the tenant (checked on the simulators afterwards).
    wrong_on_routers: u64,
    /// Routers checked in all (grants x routers of the tenant).
    checked: u64,
    /// Naive baseline (SQLite run only): call-to-return, milliseconds.
    naive_ms: Vec<f64>,
    naive_wrong: u64,
    elapsed: f64,
}

pub(crate) async fn row(scale: &Scale, also_rtt: &[Duration]) -> BoxResult<RowResult> {
    let started = Instant::now();
    let sqlite = run(scale, Backend::Sqlite).await?;
    let postgres = run(scale, Backend::Postgres).await;
    let mut r = RowResult::new(7, "Grant latency");
    let s = Summary::of(&sqlite.latencies_ms);
    let naive = Summary::of(&sqlite.naive_ms);
    let ratio = if s.p99 > 0.0 { naive.p99 / s.p99 } else { f64::NAN };
    let load = format!(
        "{} grants over {} s, {} routers at {} ms RTT",
        thousands(scale.grant_count as u64),
        scale.grant_spread.as_secs(),
        Topology::DEFAULT.routers(),
        scale.latency.as_millis()
    );
    r.line(
        latency_line(
            format!("call to return of `Engine::grant`, p50 / p99 / max: {load} (SQLite)"),
            true,
            &s,
        )
        .baseline(
            format!(
                "per-router sequential enable (measured, {} grants): {}",
                naive.n,
                fmt_summary(&naive)
            ),
            format!("p99 {ratio:.1}x"),
        )
        .baseline_figures(
            format!(
                "per-router sequential enable (measured, {} grants per run)",
                naive.n
            ),
            summary_figures(&naive),
        )
        .ratio_figure("p99", ratio),
    );
    match &postgres {
        Ok(pgrun) => {
            let p = Summary::of(&pgrun.latencies_ms);
            r.line(latency_line(
                "the same load on PostgreSQL: p50 / p99 / max",
                true,
                &p,
            ));
        }
        Err(e) => r.note(format!("PostgreSQL run failed: {e}")),
    }
    let mut checks = vec![("SQLite", &sqlite)];
    if let Ok(p) = &postgres {
        checks.push(("PostgreSQL", p));
    }
    for (name, run) in &checks {
        r.line(
            Line::new(
                format!(
                    "{name}: grants not enabled everywhere (outcome / simulators, {} router checks)",
                    thousands(run.checked)
                ),
                "0 / 0",
                format!("{} / {}", run.not_enabled, run.wrong_on_routers),
            )
            .verdict(run.not_enabled == 0 && run.wrong_on_routers == 0),
        );
    }
    r.note(format!(
        "Ours: `Engine::grant(subscriber, Extension::Seconds(30 days), None)` in the runner's process (the \
         simulators share its runtime), default engine and driver settings, one engine shared by all calls; \
         each of the {} calls is spawned at its own instant, evenly over {} s, so calls overlap. \
         {} subscribers loaded; the granted ones had run out (disconnected); every second one already has a \
         disabled user on each router of its tenant (4), the others none. Per call: the grant write (new \
         paid_until and one pending grant per router, one transaction), then every router of the tenant at once \
         (enable, or add where missing), then the pending grants completed. Checked afterwards on the \
         simulators, not timed. SQLite run {:.0} s; PostgreSQL (the throwaway local cluster of row 3, fsync off) \
         {}.",
        thousands(scale.grant_count as u64),
        scale.grant_spread.as_secs(),
        thousands(scale.grant_subscribers as u64),
        sqlite.elapsed,
        postgres
            .as_ref()
            .map(|p| format!("{:.0} s", p.elapsed))
            .unwrap_or_else(|e| format!("failed: {e}"))
    ));
    r.note(format!(
        "Baseline: the seeds' approach on the same simulators and SQLite file after our run, one grant after \
         the other: `UPDATE subscribers` (paid, active), then on each of the tenant's 4 routers in turn connect, \
         log in, `/ip/hotspot/user/enable` by name (`add` on `no such item`), close; {} grants, wrong afterwards: {}.",
        naive.n, sqlite.naive_wrong
    ));
    for rtt in also_rtt {
        at_rtt(&mut r, scale, *rtt).await?;
    }
    r.seconds = started.elapsed().as_secs_f64();
    Ok(r)
}

/// The SQLite run again at round trip `rtt`, with the sequential grants at that round trip.
async fn at_rtt(r: &mut RowResult, scale: &Scale, rtt: Duration) -> BoxResult<()> {
    let at = Scale {
        latency: rtt,
        ..*scale
    };
    let ms = rtt.as_millis();
    progress(format!("grant at {ms} ms round trip"));
    let run = run(&at, Backend::Sqlite).await?;
    let s = Summary::of(&run.latencies_ms);
    let naive = Summary::of(&run.naive_ms);
    let ratio = if s.p99 > 0.0 { naive.p99 / s.p99 } else { f64::NAN };
    r.line(
        latency_line(
            format!("at {ms} ms round trip: call to return, p50 / p99 / max (SQLite; context, no target)"),
            false,
            &s,
        )
        .baseline(
            format!(
                "per-router sequential enable at {ms} ms (measured, {} grants): {}",
                naive.n,
                fmt_summary(&naive)
            ),
            format!("p99 {ratio:.1}x"),
        )
        .baseline_figures(
            format!(
                "per-router sequential enable at {ms} ms ({} grants per run)",
                naive.n
            ),
            summary_figures(&naive),
        )
        .ratio_figure("p99", ratio),
    );
    r.line(
        Line::new(
            format!(
                "at {ms} ms round trip: grants not enabled everywhere (outcome / simulators, {} router checks)",
                thousands(run.checked)
            ),
            "0 / 0",
            format!("{} / {}", run.not_enabled, run.wrong_on_routers),
        )
        .verdict(run.not_enabled == 0 && run.wrong_on_routers == 0 && run.naive_wrong == 0),
    );
    r.note(format!(
        "At {ms} ms round trip (routers reached over a VPN or the internet): the SQLite run and its sequential \
         baseline again, every simulated router answering each command after {ms} ms ({:.0} s; baseline wrong \
         afterwards: {}).",
        run.elapsed, run.naive_wrong
    ));
    Ok(())
}

/// p50, p99 and max (milliseconds) as figures.
fn summary_figures(s: &Summary) -> Vec<Figure> {
    vec![
        fig("p50", s.p50, Unit::Ms),
        fig("p99", s.p99, Unit::Ms),
        fig("max", s.max, Unit::Ms),
    ]
}

/// A latency line (milliseconds), judged on p99 against the target if `judged`.
fn latency_line(metric: impl Into<String>, judged: bool, s: &Summary) -> Line {
    let target = if judged {
        format!("p99 < {TARGET_P99_MS:.0} ms")
    } else {
        String::new()
    };
    let mut line = Line::new(metric, target, fmt_summary(s))
        .figure("p50", s.p50, Unit::Ms)
        .figure("p99", s.p99, Unit::Ms);
    if judged {
        line = line.judge(Goal::Below(TARGET_P99_MS));
    }
    line.figure("max", s.max, Unit::Ms)
}

fn fmt_summary(s: &Summary) -> String {
    format!(
        "p50 {} / p99 {} / max {}",
        secs(s.p50 / 1000.0),
        secs(s.p99 / 1000.0),
        secs(s.max / 1000.0)
    )
}

async fn run(scale: &Scale, backend: Backend) -> BoxResult<GrantRun> {
    let run_started = Instant::now();
    let topo = Topology::DEFAULT;
    let dir = tempfile::tempdir()?;
    let grants = scale.grant_count;
    let naive_n = if backend == Backend::Sqlite {
        scale.grant_naive_sample
    } else {
        0
    };
    let lapsed = grants + naive_n;
    progress(format!(
        "grant ({backend:?}): {} subscribers, {grants} grants over {} s: loading",
        scale.grant_subscribers,
        scale.grant_spread.as_secs()
    ));
    let db = match backend {
        Backend::Sqlite => Db::create(dir.path(), "grant.sqlite", topo).await?,
        Backend::Postgres => {
            let url = pg::fresh_database()
                .await
                .ok_or("PostgreSQL is not available here (see the message above)")?;
            Db::create_postgres(url, topo).await?
        }
        Backend::Mysql => return Err("row 7 measures SQLite and PostgreSQL".into()),
    };
    let fleet = Fleet::start(topo, scale.latency, scale.router_cost).await?;
    let now = Utc::now();
    let pop = Population {
        total: scale.grant_subscribers.max(lapsed),
        expired: lapsed,
        expiring: 0,
        first_expiry: now,
        spread: Duration::from_secs(1),
        now,
    };
    pop.load(&db, topo).await?;
    // The lapsed ones were cut off already (as disconnect-expired leaves them).
    let repos = db.store.repositories();
    for id in 1..=lapsed {
        repos
            .subscribers
            .complete_expiry(SubscriberId(id), "bench-loader", pop.paid_until(id), now)
            .await?;
    }
    for id in (1..=lapsed).filter(|i| i % 2 == 0) {
        for spec in tenant_routers(&fleet, topo.tenant_of(id)) {
            let h = fleet.handle(spec.id).ok_or("no simulated router")?;
            h.add_row(
                "/ip/hotspot/user",
                &[
                    ("name", &username(id)),
                    ("comment", &format!("isp:sub:{id}")),
                    ("disabled", "yes"),
                ],
            )
            .map_err(|e| format!("disabled user: {e}"))?;
        }
    }
    let engine = Engine::new(
        EngineDeps {
            repos,
            directory: Arc::new(StaticDirectory::new(fleet.routers())),
            driver: Arc::new(RouterOsDriver::new(DriverConfig::default())?),
            sms: Arc::new(RecordingSms::new()),
            clock: Arc::new(isp_core::runtime::SystemClock),
        },
        EngineConfig::default(),
    );
    progress(format!("grant ({backend:?}): {grants} grants"));
    let step = scale.grant_spread.as_secs_f64() / grants.max(1) as f64;
    let t0 = tokio::time::Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::new();
    for k in 0..grants {
        let engine = engine.clone();
        let at = t0 + Duration::from_secs_f64(step * k as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let t = Instant::now();
            let out = engine
                .grant(SubscriberId(k + 1), Extension::Seconds(30 * 86_400), None)
                .await;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let ok = match out {
                Ok(o) => !o.routers.is_empty() && o.routers.iter().all(|r| r.state == RouterAccess::Enabled),
                Err(_) => false,
            };
            (ms, ok)
        }));
    }
    let mut latencies_ms = Vec::with_capacity(tasks.len());
    let mut not_enabled = 0;
    for t in tasks {
        let (ms, ok) = t.await?;
        latencies_ms.push(ms);
        if !ok {
            not_enabled += 1;
        }
    }
    let (wrong_on_routers, checked) = check(&fleet, topo, 1..=grants)?;

    let mut naive_ms = Vec::new();
    let mut naive_wrong = 0;
    if naive_n > 0 {
        progress(format!(
            "grant ({backend:?}): baseline, {naive_n} sequential grants"
        ));
        let pool = db.pool()?;
        for id in grants + 1..=lapsed {
            let t = Instant::now();
            sqlx::query(
                "UPDATE subscribers SET paid_until = $2, active = 1, disconnected_at = NULL WHERE id = $1",
            )
            .bind(id)
            .bind((Utc::now() + chrono::Duration::days(30)).timestamp_micros())
            .execute(pool)
            .await?;
            for spec in tenant_routers(&fleet, topo.tenant_of(id)) {
                naive_enable(spec, id).await?;
            }
            naive_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        naive_wrong = check(&fleet, topo, grants + 1..=lapsed)?.0;
    }
    fleet.shutdown().await;
    db.close().await;
    Ok(GrantRun {
        latencies_ms,
        not_enabled,
        wrong_on_routers,
        checked,
        naive_ms,
        naive_wrong,
        elapsed: run_started.elapsed().as_secs_f64(),
    })
}

fn tenant_routers(fleet: &Fleet, tenant: i64) -> impl Iterator<Item = &RouterSpec> {
    fleet.specs.iter().filter(move |r| r.tenant == tenant)
}

/// Subscribers of `ids` whose user is missing or disabled on some router of
/// their tenant, and the number of (subscriber, router) pairs checked.
fn check(fleet: &Fleet, topo: Topology, ids: std::ops::RangeInclusive<i64>) -> BoxResult<(u64, u64)> {
    let mut enabled: std::collections::HashSet<(i64, String)> = std::collections::HashSet::new();
    for spec in &fleet.specs {
        let h = fleet.handle(spec.id).ok_or("no simulated router")?;
        for u in h.rows("/ip/hotspot/user") {
            let disabled = matches!(u.get("disabled").map(String::as_str), Some("true" | "yes"));
            if let (false, Some(name)) = (disabled, u.get("name")) {
                enabled.insert((spec.id, name.clone()));
            }
        }
    }
    let mut wrong = 0;
    let mut checked = 0;
    for id in ids {
        let name = username(id);
        let mut fine = true;
        for spec in tenant_routers(fleet, topo.tenant_of(id)) {
            checked += 1;
            fine &= enabled.contains(&(spec.id, name.clone()));
        }
        if !fine {
            wrong += 1;
        }
    }
    Ok((wrong, checked))
}

/// The seeds' enable on one router: connect, log in, enable by name (add it
/// where it does not exist), close.
async fn naive_enable(spec: &RouterSpec, id: i64) -> BoxResult<()> {
    let endpoint = Endpoint::plain(
        spec.name.clone(),
        &spec.address,
        Credentials::new(API_USER, API_PASSWORD),
    )?;
    let conn = Connection::connect(&endpoint, &ClientConfig::default()).await?;
    let user = username(id);
    match conn
        .run(Request::new("/ip/hotspot/user/enable").attr("numbers", &user))
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_no_such_item() => {
            conn.run(
                Request::new("/ip/hotspot/user/add")
                    .attr("name", &user)
                    .attr("comment", format!("isp:sub:{id}")),
            )
            .await?;
        }
        Err(e) => return Err(e.into()),
    }
    conn.close();
    Ok(())
}
