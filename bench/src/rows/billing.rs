//! Row 4: a monthly billing run over 100,000 services, and an immediate rerun.

use std::sync::Arc;
use std::time::Instant;

use chrono::{Datelike, NaiveDate, Utc};
use isp_core::domain::{Currency, Money, NewPlan, RosName, TenantId};
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, JobKind, RunOptions};
use isp_core::memory::{RecordingSms, StaticDirectory};
use isp_core::policy::billing::{anchor_date, next_anchor_after};
use isp_routeros::driver::{DriverConfig, RouterOsDriver};

use crate::report::{Line, RowResult};
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
         SELECT i, 1 + (i - 1) % {t}, i, {home}, ((i - 1) % {t}) * {plans} + i % {plans} + 1, \
           CASE WHEN i % 50 = 0 THEN 'suspended' ELSE 'active' END, 'pppoe', 'p' || i, 'pw' || i, 'default', \
           $2, 1 + i % 28, '', 1, 0 FROM {series}",
        t = topo.tenants,
        plans = PLANS,
        home = format_args!(
            "(((i - 1) % {t}) * {r} + ((i - 1) / {t}) % {r} + 1)",
            t = topo.tenants,
            r = topo.routers_per_tenant
        ),
    ))
    .bind(n)
    .bind((today + chrono::Duration::days(10)).to_string())
    .execute(pool)
    .await?;
    for day in 1..=28_u32 {
        let owed = last_anchor(today, day).ok_or("no anchor date")?;
        let ahead = next_anchor_after(owed, day).ok_or("no anchor date")?;
        sqlx::query(
            "UPDATE services SET next_charge_on = CASE WHEN id % 10 = 5 THEN $2 ELSE $1 END WHERE billing_day = $3",
        )
        .bind(owed.to_string())
        .bind(ahead.to_string())
        .bind(i64::from(day))
        .execute(pool)
        .await?;
    }
    Ok(())
}

pub(crate) async fn row(scale: &Scale) -> BoxResult<RowResult> {
    let started = Instant::now();
    let topo = Topology::DEFAULT;
    let n = scale.billing_services;
    let dir = tempfile::tempdir()?;
    let db = Db::create(dir.path(), "billing.sqlite", topo).await?;
    let tz = chrono_tz::Africa::Dar_es_Salaam;
    let today = Utc::now().with_timezone(&tz).date_naive();
    progress(format!("billing: loading {n} services"));
    load(&db, topo, n, today).await?;
    let billable = db
        .scalar(&format!(
            "SELECT COUNT(*) FROM services WHERE status = 'active' AND next_charge_on <= '{today}'"
        ))
        .await?;
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
    progress(format!("billing: {billable} billable services; monthly run"));
    let t = Instant::now();
    let first = engine.run(JobKind::MonthlyBilling, RunOptions::default()).await?;
    let first_secs = t.elapsed().as_secs_f64();
    let in_ledger = db
        .scalar("SELECT COUNT(*) FROM ledger WHERE kind = 'charge'")
        .await?;
    let t = Instant::now();
    let rerun = engine.run(JobKind::MonthlyBilling, RunOptions::default()).await?;
    let rerun_secs = t.elapsed().as_secs_f64();
    let in_ledger_after = db
        .scalar("SELECT COUNT(*) FROM ledger WHERE kind = 'charge'")
        .await?;
    db.close().await;

    let created = first.count("charges_created");
    let mut r = RowResult::new(4, "Billing run");
    r.line(Line::new(
        format!(
            "monthly run over {} services ({} billable), SQLite",
            thousands(n as u64),
            thousands(billable as u64)
        ),
        "",
        format!("{} ({:.0} services/s)", secs(first_secs), n as f64 / first_secs),
    ));
    r.line(
        Line::new(
            "charges created (report / ledger)",
            format!("= billable: {}", thousands(billable as u64)),
            format!("{} / {}", thousands(created), thousands(in_ledger as u64)),
        )
        .verdict(created == billable as u64 && in_ledger == billable && first.failures.is_empty()),
    );
    r.line(
        Line::new(
            "immediate rerun: charges created (report / new in ledger)",
            "0",
            format!(
                "{} / {} in {}",
                rerun.count("charges_created"),
                in_ledger_after - in_ledger,
                secs(rerun_secs)
            ),
        )
        .verdict(
            rerun.count("charges_created") == 0 && in_ledger_after == in_ledger && rerun.failures.is_empty(),
        ),
    );
    r.note(format!(
        "`Engine::run(MonthlyBilling)` in the runner's process on an SQLite file, default engine settings: per \
         tenant, claims of 500 billable services, one ledger insert (unique key per service and period) and one \
         compare-and-set of `next_charge_on` per service. Services: {} tenants, 3 plans each, billing days 1-28; \
         every 50th suspended and every tenth already charged for its current period, the rest owe exactly one \
         period (billable counted in SQL, independently of the engine). First run: {}. Rerun: {}.",
        topo.tenants, first, rerun
    ));
    r.note(
        "Baseline: seed 002 generates charges with a nightly script that must catch up after downtime; it \
         publishes no timing, so there is no figure to set beside ours.",
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
