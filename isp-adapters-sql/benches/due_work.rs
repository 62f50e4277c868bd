//! Due-work queries at scale, on SQLite, PostgreSQL and MariaDB.
//!
//! Loads ISP_BENCH_ROWS (default 1,000,000) subscribers, vouchers, services and
//! notices (about 1% due), prints the plan of every due-work statement, then
//! claims batches of 500 through the repositories until the due set is empty,
//! completing each batch (not timed) the way a job would, and prints p50 / p99
//! per batch. Read-only lists are timed too.
//!
//! ```text
//! cargo bench -p isp-adapters-sql --all-features --bench due_work
//! ISP_BENCH_ROWS=100000 ISP_BENCH_ONLY=postgres cargo bench -p isp-adapters-sql --all-features --bench due_work
//! ```
//!
//! PostgreSQL is isp-testsupport's throwaway cluster (or ISP_TEST_POSTGRES_URL),
//! MariaDB its throwaway server (or ISP_TEST_MYSQL_URL); `ISP_TEST_SKIP=postgres`
//! or `mariadb` skips one.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use isp_adapters_sql::{Backend, SqlOptions, SqlStore};
use isp_core::domain::{Claim, TenantId};
use isp_testsupport::bulk::{self, Dialect, Pool};
use isp_testsupport::{mariadb, pg};

const BATCH: usize = 500;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("instant")
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).expect("date")
}

fn main() {
    let rows: i64 = std::env::var("ISP_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // ISP_BENCH_ONLY=sqlite, postgres or mariadb runs one of them.
    let only = std::env::var("ISP_BENCH_ONLY").unwrap_or_default();
    let run = |name: &str| only.is_empty() || only == name;
    rt.block_on(async {
        if run("sqlite") {
            sqlite(rows).await;
        }
        if run("postgres") {
            postgres(rows).await;
        }
        if run("mariadb") {
            mysql(rows).await;
        }
    });
}

async fn sqlite(rows: i64) {
    {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqlStore::connect_sqlite(dir.path().join("bench.sqlite"))
            .await
            .expect("sqlite");
        store.migrate().await.expect("migrate");
        bench(&store, rows).await;
        store.close().await;
    }
}

async fn postgres(rows: i64) {
    {
        match pg::fresh_database().await {
            Some(url) => {
                let options = SqlOptions {
                    max_connections: 4,
                    ..SqlOptions::default()
                };
                let store = SqlStore::connect_with(&url, options).await.expect("postgres");
                store.migrate().await.expect("migrate");
                bench(&store, rows).await;
                store.close().await;
            }
            None => println!("\nPostgreSQL skipped (ISP_TEST_SKIP)"),
        }
    }
}

async fn mysql(rows: i64) {
    match mariadb::fresh_database().await {
        Some(url) => {
            let options = SqlOptions {
                max_connections: 4,
                ..SqlOptions::default()
            };
            let store = SqlStore::connect_with(&url, options).await.expect("mariadb");
            store.migrate().await.expect("migrate");
            bench(&store, rows).await;
            store.close().await;
        }
        None => println!("\nMariaDB skipped (ISP_TEST_SKIP)"),
    }
}

struct Stats {
    name: String,
    samples: Vec<Duration>,
    items: usize,
}

impl Stats {
    fn new(name: &str) -> Self {
        Stats {
            name: name.to_owned(),
            samples: Vec::new(),
            items: 0,
        }
    }

    fn pct(&self, p: f64) -> Duration {
        let mut v = self.samples.clone();
        v.sort();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[i]
    }

    fn print(&self) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "| {:<34} | {:>7} | {:>7} | {:>8.3} | {:>8.3} |",
            self.name,
            self.samples.len(),
            self.items,
            ms(self.pct(0.5)),
            ms(self.pct(0.99)),
        );
    }
}

async fn exec(store: &SqlStore, sql: &str) {
    match store.backend() {
        Backend::Sqlite => {
            sqlx::query(sql)
                .execute(store.sqlite_pool().unwrap())
                .await
                .unwrap();
        }
        Backend::Postgres => {
            sqlx::query(sql)
                .execute(store.postgres_pool().unwrap())
                .await
                .unwrap();
        }
        Backend::Mysql => {
            sqlx::query(sql)
                .execute(store.mysql_pool().unwrap())
                .await
                .unwrap();
        }
    }
}

async fn due_ids(store: &SqlStore) -> usize {
    let sql =
        "SELECT id FROM subscribers WHERE active AND paid_until <= $1 ORDER BY paid_until, id LIMIT 500";
    match store.backend() {
        Backend::Sqlite => sqlx::query_scalar::<_, i64>(sql)
            .bind(now().timestamp_micros())
            .fetch_all(store.sqlite_pool().unwrap())
            .await
            .unwrap()
            .len(),
        Backend::Postgres => sqlx::query_scalar::<_, i64>(sql)
            .bind(now())
            .fetch_all(store.postgres_pool().unwrap())
            .await
            .unwrap()
            .len(),
        Backend::Mysql => sqlx::query_scalar::<_, i64>(&sql.replace("$1", "?"))
            .bind(now().naive_utc())
            .fetch_all(store.mysql_pool().unwrap())
            .await
            .unwrap()
            .len(),
    }
}

async fn bench(store: &SqlStore, rows: i64) {
    let backend = store.backend();
    println!(
        "\n## {backend:?}: {rows} rows per table, {} due",
        bulk::due_count(rows)
    );
    let t = Instant::now();
    let pool = match backend {
        Backend::Sqlite => Pool::Sqlite(store.sqlite_pool().expect("sqlite pool")),
        Backend::Postgres => Pool::Postgres(store.postgres_pool().expect("postgres pool")),
        Backend::Mysql => Pool::Mysql(store.mysql_pool().expect("mysql pool")),
    };
    bulk::populate(pool, rows, now(), today()).await;
    println!("loaded in {:.1} s", t.elapsed().as_secs_f64());

    let dialect = match backend {
        Backend::Sqlite => Dialect::Sqlite,
        Backend::Postgres => Dialect::Postgres,
        Backend::Mysql => Dialect::Mysql,
    };
    for plan in store
        .explain_due_work(now(), TenantId(1), today())
        .await
        .expect("explain")
    {
        let verdict = match bulk::plan_problem(dialect, plan.name, &plan.plan) {
            Some(why) => format!("NOT AN INDEX RANGE SCAN: {why}"),
            None => format!("index range scan ({})", bulk::expected_index(plan.name)),
        };
        println!("\n### {} -- {verdict}\n{}", plan.name, plan.plan.trim_end());
    }

    let repos = store.repositories();
    let claim = || Claim {
        holder: "bench".to_owned(),
        now: now(),
        until: now() + chrono::Duration::minutes(5),
        limit: BATCH,
    };
    let mut all = Vec::new();

    // Read-only lists: the same first batch, again and again.
    let mut s = Stats::new("subscribers.list_expired (read)");
    for _ in 0..200 {
        let t = Instant::now();
        let got = repos.subscribers.list_expired(now(), BATCH).await.unwrap();
        s.samples.push(t.elapsed());
        s.items += got.len();
    }
    all.push(s);
    let mut s = Stats::new("vouchers.list_due (read)");
    for _ in 0..200 {
        let t = Instant::now();
        let got = repos.vouchers.list_due(now(), BATCH).await.unwrap();
        s.samples.push(t.elapsed());
        s.items += got.len();
    }
    all.push(s);

    // The same range scan, ids only, straight through sqlx: what the index scan
    // itself costs, without moving and decoding whole rows.
    let mut s = Stats::new("subscribers due ids (raw SQL, read)");
    for _ in 0..200 {
        let t = Instant::now();
        let n = due_ids(store).await;
        s.samples.push(t.elapsed());
        s.items += n;
    }
    all.push(s);

    // Claims until the due set is empty; each batch is then completed (untimed).
    let mut s = Stats::new("subscribers.claim_expired");
    for _round in 0..5 {
        loop {
            let t = Instant::now();
            let got = repos.subscribers.claim_expired(&claim()).await.unwrap();
            if got.is_empty() {
                break;
            }
            s.samples.push(t.elapsed());
            s.items += got.len();
            exec(
                store,
                "UPDATE subscribers SET active = FALSE, lease_holder = NULL, lease_until = NULL \
                 WHERE lease_holder = 'bench'",
            )
            .await;
        }
        // Put the expired subscribers back for the next round.
        exec(store, "UPDATE subscribers SET active = TRUE WHERE NOT active").await;
    }
    all.push(s);

    let mut s = Stats::new("vouchers.claim_due");
    loop {
        let t = Instant::now();
        let got = repos.vouchers.claim_due(&claim()).await.unwrap();
        if got.is_empty() {
            break;
        }
        s.samples.push(t.elapsed());
        s.items += got.len();
        exec(
            store,
            "UPDATE vouchers SET status = 'expired', removed_from_router = TRUE, lease_holder = NULL, \
             lease_until = NULL WHERE lease_holder = 'bench'",
        )
        .await;
    }
    all.push(s);

    let mut s = Stats::new("services.claim_provisioning");
    loop {
        let t = Instant::now();
        let got = repos
            .services
            .claim_provisioning(TenantId(1), today(), &claim())
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        s.samples.push(t.elapsed());
        s.items += got.len();
        let done = match backend {
            Backend::Sqlite => {
                "UPDATE services SET provisioned = (status = 'active' AND next_billing_date >= '2026-03-01'), \
                 lease_holder = NULL, lease_until = NULL WHERE lease_holder = 'bench'"
            }
            Backend::Postgres | Backend::Mysql => {
                "UPDATE services SET provisioned = (status = 'active' AND next_billing_date >= DATE '2026-03-01'), \
                 lease_holder = NULL, lease_until = NULL WHERE lease_holder = 'bench'"
            }
        };
        exec(store, done).await;
    }
    all.push(s);

    let mut s = Stats::new("services.claim_billable");
    loop {
        let t = Instant::now();
        let got = repos
            .services
            .claim_billable(TenantId(1), today(), &claim())
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        s.samples.push(t.elapsed());
        s.items += got.len();
        exec(
            store,
            "UPDATE services SET next_charge_on = '2026-04-01', lease_holder = NULL, lease_until = NULL \
             WHERE lease_holder = 'bench'",
        )
        .await;
    }
    all.push(s);

    let mut s = Stats::new("notices.claim_pending");
    for _round in 0..5 {
        loop {
            let t = Instant::now();
            let got = repos.notices.claim_pending(&claim()).await.unwrap();
            if got.is_empty() {
                break;
            }
            s.samples.push(t.elapsed());
            s.items += got.len();
            exec(
                store,
                "UPDATE notices SET status = 'abandoned', lease_holder = NULL, lease_until = NULL \
                 WHERE lease_holder = 'bench'",
            )
            .await;
        }
        exec(
            store,
            "UPDATE notices SET status = 'pending' WHERE status = 'abandoned'",
        )
        .await;
    }
    all.push(s);

    println!("\n{backend:?}, batches of {BATCH} (milliseconds per batch):\n");
    println!("| query                              | batches |   items |      p50 |      p99 |");
    println!("|------------------------------------|--------:|--------:|---------:|---------:|");
    for s in &all {
        s.print();
    }
}
