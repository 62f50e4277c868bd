//! Row 4: a monthly billing run over 100,000 services, and an immediate rerun,
//! on SQLite and PostgreSQL, against the per-service path it replaced.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Datelike, NaiveDate, Utc};
use isp_adapters_sql::Backend;
use isp_core::domain::{
    AuditEvent, AuditOutcome, Claim, Currency, Money, NewPlan, PlanId, RosName, TenantId,
};
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, JobKind, RunOptions};
use isp_core::memory::{RecordingSms, StaticDirectory};
use isp_core::policy::billing::{anchor_date, charges_owed, next_anchor_after};
use isp_core::ports::Repositories;
use isp_routeros::driver::{DriverConfig, RouterOsDriver};

use crate::pg;
use crate::report::{Goal, Line, RowResult, Unit};
use crate::rows::{progress, Scale};
use crate::scenario::{Db, RouterSpec, Topology};
use crate::stats::{secs, thousands};
use crate::BoxResult;

/// Plans per tenant.
const PLANS: i64 = 3;

/// The last anchor date of `billing_day` on or before `today`.
fn last_anchor(today: NaiveDate, billing_day: u32) -> Option<NaiveDate> {
    let this = anchor_date(today.year(), today.month(), billing_day)?;
    if this <= today {
        return Some(this);
    }
    let prev = today.with_day(1)?.checked_sub_months(chrono::Months::new(1))?;
    anchor_date(prev.year(), prev.month(), billing_day)
}

/// Runs of each backend (the figures are min / median / max over them).
const RUNS: usize = 3;

/// Services the baseline bills per run (a tenth of the load; its time is
/// extrapolated to every billable service).
fn baseline_sample(n: i64) -> i64 {
    (n / 10).max(1)
}

/// Runs `sql` (no parameters) on the row's database.
async fn exec(db: &Db, sql: &str) -> BoxResult<()> {
    match db.store.postgres_pool() {
        Some(pg) => {
            sqlx::query(sql).execute(pg).await?;
        }
        None => {
            sqlx::query(sql).execute(db.pool()?).await?;
        }
    }
    Ok(())
}

/// One count from the row's database.
async fn count(db: &Db, sql: &str) -> BoxResult<i64> {
    Ok(match db.store.postgres_pool() {
        Some(pg) => sqlx::query_scalar(sql).fetch_one(pg).await?,
        None => sqlx::query_scalar(sql).fetch_one(db.pool()?).await?,
    })
}

/// Sets every service's `next_charge_on` as the load wants it (every tenth,
/// offset 5, already charged for its current period) and clears leases.
async fn set_charge_dates(db: &Db, today: NaiveDate) -> BoxResult<()> {
    let sql = "UPDATE services SET next_charge_on = CASE WHEN id % 10 = 5 THEN $2 ELSE $1 END, \
               lease_holder = NULL, lease_until = NULL WHERE billing_day = $3";
    for day in 1..=28_u32 {
        let owed = last_anchor(today, day).ok_or("no anchor date")?;
        let ahead = next_anchor_after(owed, day).ok_or("no anchor date")?;
        match db.store.postgres_pool() {
            Some(pg) => {
                sqlx::query(sql)
                    .bind(owed)
                    .bind(ahead)
                    .bind(i64::from(day))
                    .execute(pg)
                    .await?;
            }
            None => {
                sqlx::query(sql)
                    .bind(owed)
                    .bind(ahead)
                    .bind(i64::from(day))
                    .execute(db.pool()?)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Loads `n` PPPoE services: billing day `1 + i % 28`; every 50th suspended;
/// every tenth (offset 5) already charged for the current period (its next
/// period starts after today); the rest owe exactly the current period.
async fn load(db: &Db, topo: Topology, n: i64, today: NaiveDate) -> BoxResult<()> {
    let repos = db.store.repositories();
    let tzs = Currency::parse("currency", "TZS")?;
    for t in 1..=topo.tenants {
        for (k, price) in ["30000", "50000", "85000.50"].iter().enumerate() {
            repos
                .plans
                .insert(&NewPlan {
                    tenant_id: TenantId(t),
                    name: RosName::parse("plan", &format!("home-{k}"))?,
                    price: Money::parse("price", price, tzs)?,
                    duration: None,
                    rate_limit: None,
                })
                .await?;
        }
    }
    let home = format!(
        "(((i - 1) % {t}) * {r} + ((i - 1) / {t}) % {r} + 1)",
        t = topo.tenants,
        r = topo.routers_per_tenant
    );
    let plan = format!(
        "((i - 1) % {t}) * {plans} + i % {plans} + 1",
        t = topo.tenants,
        plans = PLANS
    );
    let due = today + chrono::Duration::days(10);
    match db.store.postgres_pool() {
        Some(pg) => {
            sqlx::query(&format!(
                "INSERT INTO customers (id, tenant_id, name, phone) \
                 SELECT i, 1 + (i - 1) % {t}, 'Customer ' || i, '+2556' || lpad(i::text, 8, '0') \
                 FROM generate_series(1::bigint, $1) AS s(i)",
                t = topo.tenants
            ))
            .bind(n)
            .execute(pg)
            .await?;
            sqlx::query(&format!(
                "INSERT INTO services (id, tenant_id, customer_id, router_id, plan_id, status, connection_kind, \
                   pppoe_username, pppoe_password, pppoe_profile, next_billing_date, billing_day, next_charge_on, \
                   provisioned, attempts) \
                 SELECT i, 1 + (i - 1) % {t}, i, {home}, {plan}, \
                   CASE WHEN i % 50 = 0 THEN 'suspended' ELSE 'active' END, 'pppoe', 'p' || i, 'pw' || i, \
                   'default', $2, 1 + i % 28, $2, TRUE, 0 FROM generate_series(1::bigint, $1) AS s(i)",
                t = topo.tenants,
            ))
            .bind(n)
            .bind(due)
            .execute(pg)
            .await?;
        }
        None => {
            let pool = db.pool()?;
            let series =
                "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1) SELECT i FROM s)";
            sqlx::query(&format!(
                "INSERT INTO customers (id, tenant_id, name, phone) \
                 SELECT i, 1 + (i - 1) % {t}, 'Customer ' || i, '+2556' || printf('%08d', i) FROM {series}",
                t = topo.tenants
            ))
            .bind(n)
            .execute(pool)
            .await?;
            sqlx::query(&format!(
                "INSERT INTO services (id, tenant_id, customer_id, router_id, plan_id, status, connection_kind, \
                   pppoe_username, pppoe_password, pppoe_profile, next_billing_date, billing_day, next_charge_on, \
                   provisioned, attempts) \
                 SELECT i, 1 + (i - 1) % {t}, i, {home}, {plan}, \
                   CASE WHEN i % 50 = 0 THEN 'suspended' ELSE 'active' END, 'pppoe', 'p' || i, 'pw' || i, \
                   'default', $2, 1 + i % 28, $2, 1, 0 FROM {series}",
                t = topo.tenants,
            ))
            .bind(n)
            .bind(due)
            .execute(pool)
            .await?;
        }
    }
    set_charge_dates(db, today).await?;
    if db.store.postgres_pool().is_some() {
        exec(db, "ANALYZE").await?;
    }
    Ok(())
}

/// The per-service path this row replaced (the job before issue 18), kept as
/// the baseline: per tenant, claims of 500; per service one ledger insert per
/// owed period and one compare-and-set of `next_charge_on`; the batch's audit
/// events in one append. Stops after the claim that reaches `sample` services.
async fn per_service(repos: &Repositories, topo: Topology, today: NaiveDate, sample: i64) -> BoxResult<u64> {
    let holder = "bench-baseline";
    let mut plans: HashMap<PlanId, Money> = HashMap::new();
    let mut billed = 0_u64;
    for t in 1..=topo.tenants {
        loop {
            if billed >= sample as u64 {
                return Ok(billed);
            }
            let now = Utc::now();
            let claim = Claim {
                holder: holder.to_owned(),
                now,
                until: now + chrono::Duration::minutes(2),
                limit: 500,
            };
            let batch = repos.services.claim_billable(TenantId(t), today, &claim).await?;
            if batch.is_empty() {
                break;
            }
            let mut events = Vec::new();
            for s in &batch {
                let price = match plans.get(&s.plan_id) {
                    Some(p) => *p,
                    None => {
                        let p = repos.plans.get(s.plan_id).await?.price;
                        plans.insert(s.plan_id, p);
                        p
                    }
                };
                let owed = charges_owed(s, price, today)?;
                let mut reached = s.next_charge_on;
                for c in &owed.charges {
                    match repos.ledger.record(&c.to_ledger_entry(now)).await {
                        Ok(_) => events.push(AuditEvent {
                            at: now,
                            tenant_id: Some(s.tenant_id),
                            action: "charge".into(),
                            subject: format!("service:{}", s.id),
                            router_id: None,
                            outcome: AuditOutcome::Success,
                            reason: Some(format!(
                                "{} for period {} to {}",
                                c.amount, c.period_start, c.period_end
                            )),
                        }),
                        Err(e) if e.is_conflict() => {}
                        Err(e) => return Err(e.into()),
                    }
                    reached = c.period_end;
                }
                if repos
                    .services
                    .advance_billing(s.id, holder, s.next_charge_on, reached)
                    .await?
                {
                    billed += 1;
                }
            }
            repos.audit.append(&events).await?;
        }
    }
    Ok(billed)
}

/// What one run measured.
struct Run {
    billable: i64,
    first_secs: f64,
    created: u64,
    in_ledger: i64,
    first_ok: bool,
    rerun_secs: f64,
    rerun_created: u64,
    rerun_new: i64,
    rerun_ok: bool,
    first_report: String,
    rerun_report: String,
    baseline_services: u64,
    baseline_secs: f64,
}

impl Run {
    /// The baseline's time extrapolated to every billable service.
    fn baseline_full(&self) -> f64 {
        self.baseline_secs * self.billable as f64 / self.baseline_services.max(1) as f64
    }
}

async fn run(scale: &Scale, backend: Backend, k: usize) -> BoxResult<Run> {
    let topo = Topology::DEFAULT;
    let n = scale.billing_services;
    let dir = tempfile::tempdir()?;
    let db = match backend {
        Backend::Sqlite => Db::create(dir.path(), "billing.sqlite", topo).await?,
        Backend::Postgres => {
            let url = pg::fresh_database()
                .await
                .ok_or("PostgreSQL is not available here (see the message above)")?;
            Db::create_postgres(url, topo).await?
        }
        Backend::Mysql => return Err("row 4 measures SQLite and PostgreSQL".into()),
    };
    let tz = chrono_tz::Africa::Dar_es_Salaam;
    let today = Utc::now().with_timezone(&tz).date_naive();
    progress(format!("billing ({backend:?}, run {k}): loading {n} services"));
    load(&db, topo, n, today).await?;
    let billable_sql =
        format!("SELECT COUNT(*) FROM services WHERE status = 'active' AND next_charge_on <= '{today}'");
    let billable = count(&db, &billable_sql).await?;
    // No router is contacted by billing; the directory lists them anyway, as in a daemon.
    let routers: Vec<_> = (1..=topo.routers())
        .map(|id| {
            RouterSpec {
                id,
                tenant: topo.tenant_of_router(id),
                name: format!("r{id:03}"),
                address: format!("127.0.0.1:{}", 20_000 + id),
            }
            .to_router()
        })
        .collect();
    let engine = Engine::new(
        EngineDeps {
            repos: db.store.repositories(),
            directory: Arc::new(StaticDirectory::new(routers)),
            driver: Arc::new(RouterOsDriver::new(DriverConfig::default())?),
            sms: Arc::new(RecordingSms::new()),
            clock: Arc::new(isp_core::runtime::SystemClock),
        },
        EngineConfig::default(),
    );
    progress(format!(
        "billing ({backend:?}, run {k}): {billable} billable services; monthly run"
    ));
    let charges_sql = "SELECT COUNT(*) FROM ledger WHERE kind = 'charge'";
    let t = Instant::now();
    let first = engine.run(JobKind::MonthlyBilling, RunOptions::default()).await?;
    let first_secs = t.elapsed().as_secs_f64();
    let in_ledger = count(&db, charges_sql).await?;
    let t = Instant::now();
    let rerun = engine.run(JobKind::MonthlyBilling, RunOptions::default()).await?;
    let rerun_secs = t.elapsed().as_secs_f64();
    let in_ledger_after = count(&db, charges_sql).await?;
    let created = first.count("charges_created");

    // The baseline on the same services, reset to owe their period again.
    exec(&db, "DELETE FROM ledger").await?;
    exec(&db, "DELETE FROM audit_events").await?;
    set_charge_dates(&db, today).await?;
    if backend == Backend::Postgres {
        exec(&db, "VACUUM ANALYZE").await?;
    }
    let sample = baseline_sample(n);
    progress(format!(
        "billing ({backend:?}, run {k}): baseline (per-service path), {sample} services"
    ));
    let t = Instant::now();
    let baseline_services = per_service(&db.store.repositories(), topo, today, sample).await?;
    let baseline_secs = t.elapsed().as_secs_f64();
    db.close().await;
    Ok(Run {
        billable,
        first_secs,
        created,
        in_ledger,
        first_ok: created == billable as u64 && in_ledger == billable && first.failures.is_empty(),
        rerun_secs,
        rerun_created: rerun.count("charges_created"),
        rerun_new: in_ledger_after - in_ledger,
        rerun_ok: rerun.count("charges_created") == 0
            && in_ledger_after == in_ledger
            && rerun.failures.is_empty(),
        first_report: first.to_string(),
        rerun_report: rerun.to_string(),
        baseline_services,
        baseline_secs,
    })
}

/// min / median / max of `v`, as seconds.
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |i: usize| v.get(i).copied().unwrap_or(f64::NAN);
    (at(0), at(v.len() / 2), at(v.len().saturating_sub(1)))
}

fn lines(r: &mut RowResult, name: &str, n: i64, runs: &[Run]) {
    let Some(one) = runs.first() else {
        return;
    };
    let ours: Vec<f64> = runs.iter().map(|x| x.first_secs).collect();
    let base: Vec<f64> = runs.iter().map(Run::baseline_full).collect();
    let (lo, med, hi) = spread(&ours);
    let (blo, bmed, bhi) = spread(&base);
    r.line(
        Line::new(
            format!(
                "monthly run over {} services ({} billable), {name}: min / median / max of {} runs",
                thousands(n as u64),
                thousands(one.billable as u64),
                runs.len()
            ),
            "< 5 s",
            format!(
                "{} / {} / {} ({:.0} services/s at the median)",
                secs(lo),
                secs(med),
                secs(hi),
                n as f64 / med
            ),
        )
        .baseline(
            format!(
                "per-service path (the job before issue 18; {} services measured per run, extrapolated linearly): \
                 {} / {} / {}",
                thousands(one.baseline_services),
                secs(blo),
                secs(bmed),
                secs(bhi)
            ),
            format!("{:.1}x (medians)", bmed / med),
        )
        .figure("median", med, Unit::Secs)
        .judge(Goal::Below(5.0)),
    );
    r.line(
        Line::new(
            format!("{name}: charges created (report / ledger), every run"),
            format!("= billable: {}", thousands(one.billable as u64)),
            runs.iter()
                .map(|x| format!("{} / {}", thousands(x.created), thousands(x.in_ledger as u64)))
                .collect::<Vec<_>>()
                .join("; "),
        )
        .verdict(runs.iter().all(|x| x.first_ok)),
    );
    r.line(
        Line::new(
            format!("{name}: immediate rerun: charges created (report / new in ledger), every run"),
            "0",
            runs.iter()
                .map(|x| format!("{} / {} in {}", x.rerun_created, x.rerun_new, secs(x.rerun_secs)))
                .collect::<Vec<_>>()
                .join("; "),
        )
        .verdict(runs.iter().all(|x| x.rerun_ok)),
    );
}

pub(crate) async fn row(scale: &Scale) -> BoxResult<RowResult> {
    let started = Instant::now();
    let topo = Topology::DEFAULT;
    let n = scale.billing_services;
    let mut sqlite = Vec::new();
    let mut postgres = Vec::new();
    for k in 1..=RUNS {
        sqlite.push(run(scale, Backend::Sqlite, k).await?);
        postgres.push(run(scale, Backend::Postgres, k).await?);
    }
    let mut r = RowResult::new(4, "Billing run");
    lines(&mut r, "SQLite", n, &sqlite);
    lines(&mut r, "PostgreSQL", n, &postgres);
    if let (Some(s), Some(p)) = (sqlite.first(), postgres.first()) {
        r.note(format!(
            "`Engine::run(MonthlyBilling)` in the runner's process, default engine settings: per tenant, batches of \
             500 billed with one `ServiceRepo::charge_due` call each (one transaction, no lease written: a locking \
             read of the next 500 due services after the previous batch's last, their charges computed in Rust by \
             the billing policy, one compare-and-set `UPDATE` of `next_charge_on` for the batch, one multi-row \
             ledger `INSERT ... ON CONFLICT DO NOTHING` under the unique key per service and period), then the \
             batch's audit events in one append. Services: {} tenants, 3 plans each, billing days 1-28; every 50th \
             suspended and every tenth already charged for its current period, the rest owe exactly one period \
             (billable counted in SQL, independently of the engine). SQLite: a file in a temporary directory; \
             PostgreSQL: a fresh database on the throwaway local cluster (PostgreSQL 15, fsync off). Runs \
             alternate SQLite and PostgreSQL, each on a fresh load. First SQLite run: {}. Rerun: {}. First \
             PostgreSQL run: {}. Rerun: {}.",
            topo.tenants, s.first_report, s.rerun_report, p.first_report, p.rerun_report
        ));
    }
    r.note(
        "Baseline, in the same run on the same database (ledger emptied and `next_charge_on` reset after our \
         run and its rerun; PostgreSQL vacuumed): the per-service path the job used before issue 18, kept in \
         the runner: claims of 500, then per service one `LedgerRepo::record` per owed period and one \
         `ServiceRepo::advance_billing`, and the batch's audit events in one append. It bills the first tenth \
         of the services (whole claims) and its time is extrapolated linearly to every billable service. Seed \
         002's nightly script publishes no timing.",
    );
    r.seconds = started.elapsed().as_secs_f64();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_anchor_is_on_or_before_today() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap_or_default();
        assert_eq!(last_anchor(d(2026, 3, 15), 10), Some(d(2026, 3, 10)));
        assert_eq!(last_anchor(d(2026, 3, 15), 15), Some(d(2026, 3, 15)));
        assert_eq!(last_anchor(d(2026, 3, 15), 20), Some(d(2026, 2, 20)));
        assert_eq!(last_anchor(d(2026, 1, 5), 28), Some(d(2025, 12, 28)));
    }
}
