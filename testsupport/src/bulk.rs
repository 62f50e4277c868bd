//! Bulk loading of realistic tables straight in SQL (for query-plan tests and the
//! benchmarks): `n` rows each of subscribers, vouchers, services and notices for
//! tenant 1, about 1% of them due at `now` / `today`, the rest in the future or done.
//! Then `ANALYZE`, so that planners see the real sizes.
//!
//! It works on sqlx pools, not on a store, so that this crate does not depend on the
//! SQL adapter whose tests use it.

use chrono::{DateTime, NaiveDate, Utc};

/// Where to load: a pool of the migrated schema.
#[derive(Debug, Clone, Copy)]
pub enum Pool<'a> {
    /// A SQLite pool.
    #[cfg(feature = "sqlite")]
    Sqlite(&'a sqlx::SqlitePool),
    /// A PostgreSQL pool.
    #[cfg(feature = "postgres")]
    Postgres(&'a sqlx::PgPool),
    /// A MySQL / MariaDB pool.
    #[cfg(feature = "mysql")]
    Mysql(&'a sqlx::MySqlPool),
}

/// Which SQL dialect a query plan is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite's `EXPLAIN QUERY PLAN`.
    Sqlite,
    /// PostgreSQL's `EXPLAIN`.
    Postgres,
    /// MySQL's `EXPLAIN`, as `isp_adapters_sql` prints it (`table type=... key=...`).
    Mysql,
}

/// Rows are due when `i % DUE_EVERY == 0` (subscribers, vouchers, notices).
pub const DUE_EVERY: i64 = 100;

/// How many of `n` rows are due.
pub fn due_count(n: i64) -> i64 {
    n / DUE_EVERY
}

#[cfg(feature = "sqlite")]
const SQLITE: [&str; 4] = [
    // Subscribers: 1% expired (paid_until in the past), the rest paid for days.
    "INSERT INTO subscribers (id, tenant_id, phone, username, paid_until, active, attempts) \
     SELECT i, 1, '+2557' || printf('%08d', i), 'u' || i, \
       CASE WHEN i % 100 = 0 THEN $2 - i * 1000000 ELSE $2 + 86400000000 + i * 1000000 END, 1, 0 \
     FROM (WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1) SELECT i FROM s)",
    // Vouchers: unused with an activation deadline, active with an end, or expired and removed.
    "INSERT INTO vouchers (id, tenant_id, router_id, code, plan_id, status, activation_deadline, duration_ms, \
       started_at, expected_end, expired_at, removed_from_router, attempts) \
     SELECT i, 1, 1 + i % 10, 'V' || i, 1, \
       CASE i % 4 WHEN 0 THEN 'active' WHEN 1 THEN 'expired' ELSE 'unused' END, \
       CASE WHEN i % 100 = 0 THEN $2 - i * 1000000 ELSE $2 + 86400000000 + i * 1000000 END, 3600000, \
       CASE i % 4 WHEN 0 THEN $2 - 3600000000 ELSE NULL END, \
       CASE WHEN i % 4 = 0 THEN (CASE WHEN i % 100 = 0 THEN $2 - i * 1000000 ELSE $2 + 86400000000 + i * 1000000 END) ELSE NULL END, \
       CASE i % 4 WHEN 1 THEN $2 - 86400000000 ELSE NULL END, \
       CASE i % 4 WHEN 1 THEN 1 ELSE 0 END, 0 \
     FROM (WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1) SELECT i FROM s)",
    // Services: ~3% need (de)provisioning, ~1% owe a charge.
    "INSERT INTO services (id, tenant_id, customer_id, router_id, plan_id, status, connection_kind, pppoe_username, \
       pppoe_password, pppoe_profile, next_billing_date, billing_day, next_charge_on, provisioned, attempts) \
     SELECT i, 1, i, 1 + i % 10, 1, CASE WHEN i % 100 = 2 THEN 'suspended' ELSE 'active' END, 'pppoe', 'p' || i, \
       'pw', 'default', \
       CASE WHEN i % 100 = 3 THEN date($3, '-1 days') ELSE date($3, '+' || (i % 30) || ' days') END, 1, \
       CASE WHEN i % 100 = 4 THEN date($3, '-1 days') ELSE date($3, '+' || (1 + i % 28) || ' days') END, \
       CASE WHEN i % 100 = 1 THEN 0 ELSE 1 END, 0 \
     FROM (WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1) SELECT i FROM s)",
    // Notices: 1% pending, the rest sent.
    "INSERT INTO notices (id, tenant_id, recipient, kind, deadline, body, status, attempts, created_at, sent_at) \
     SELECT i, 1, '+2557' || printf('%08d', i), 'payment_due', $2 + i * 1000000, 'Your payment is due', \
       CASE WHEN i % 100 = 0 THEN 'pending' ELSE 'sent' END, 0, $2 - ($1 - i) * 1000000, \
       CASE WHEN i % 100 = 0 THEN NULL ELSE $2 END \
     FROM (WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1) SELECT i FROM s)",
];

#[cfg(feature = "postgres")]
const POSTGRES: [&str; 4] = [
    "INSERT INTO subscribers (id, tenant_id, phone, username, paid_until, active, attempts) \
     SELECT i, 1, '+2557' || lpad(i::text, 8, '0'), 'u' || i, \
       CASE WHEN i % 100 = 0 THEN $2 - i * interval '1 second' \
            ELSE $2 + interval '1 day' + i * interval '1 second' END, TRUE, 0 \
     FROM generate_series(1, $1) AS i",
    "INSERT INTO vouchers (id, tenant_id, router_id, code, plan_id, status, activation_deadline, duration_ms, \
       started_at, expected_end, expired_at, removed_from_router, attempts) \
     SELECT i, 1, 1 + i % 10, 'V' || i, 1, \
       CASE i % 4 WHEN 0 THEN 'active' WHEN 1 THEN 'expired' ELSE 'unused' END, \
       CASE WHEN i % 100 = 0 THEN $2 - i * interval '1 second' ELSE $2 + interval '1 day' + i * interval '1 second' END, \
       3600000, \
       CASE i % 4 WHEN 0 THEN $2 - interval '1 hour' END, \
       CASE WHEN i % 4 = 0 THEN (CASE WHEN i % 100 = 0 THEN $2 - i * interval '1 second' \
            ELSE $2 + interval '1 day' + i * interval '1 second' END) END, \
       CASE i % 4 WHEN 1 THEN $2 - interval '1 day' END, \
       i % 4 = 1, 0 \
     FROM generate_series(1, $1) AS i",
    "INSERT INTO services (id, tenant_id, customer_id, router_id, plan_id, status, connection_kind, pppoe_username, \
       pppoe_password, pppoe_profile, next_billing_date, billing_day, next_charge_on, provisioned, attempts) \
     SELECT i, 1, i, 1 + i % 10, 1, CASE WHEN i % 100 = 2 THEN 'suspended' ELSE 'active' END, 'pppoe', 'p' || i, \
       'pw', 'default', \
       CASE WHEN i % 100 = 3 THEN $3::date - 1 ELSE $3::date + (i % 30)::int END, 1, \
       CASE WHEN i % 100 = 4 THEN $3::date - 1 ELSE $3::date + (1 + i % 28)::int END, \
       i % 100 <> 1, 0 \
     FROM generate_series(1, $1) AS i",
    "INSERT INTO notices (id, tenant_id, recipient, kind, deadline, body, status, attempts, created_at, sent_at) \
     SELECT i, 1, '+2557' || lpad(i::text, 8, '0'), 'payment_due', $2 + i * interval '1 second', \
       'Your payment is due', CASE WHEN i % 100 = 0 THEN 'pending' ELSE 'sent' END, 0, \
       $2 - ($1 - i) * interval '1 second', CASE WHEN i % 100 <> 0 THEN $2 END \
     FROM generate_series(1, $1) AS i",
];

/// MySQL takes each `?` once: the values are session variables (`@n`, `@now`, `@today`).
#[cfg(feature = "mysql")]
const MYSQL: [&str; 4] = [
    "INSERT INTO subscribers (id, tenant_id, phone, username, paid_until, active, attempts) \
     WITH RECURSIVE s (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < @n) \
     SELECT i, 1, CONCAT('+2557', LPAD(i, 8, '0')), CONCAT('u', i), \
       CASE WHEN i % 100 = 0 THEN @now - INTERVAL i SECOND \
            ELSE @now + INTERVAL 1 DAY + INTERVAL i SECOND END, TRUE, 0 FROM s",
    "INSERT INTO vouchers (id, tenant_id, router_id, code, plan_id, status, activation_deadline, duration_ms, \
       started_at, expected_end, expired_at, removed_from_router, attempts) \
     WITH RECURSIVE s (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < @n) \
     SELECT i, 1, 1 + i % 10, CONCAT('V', i), 1, \
       CASE i % 4 WHEN 0 THEN 'active' WHEN 1 THEN 'expired' ELSE 'unused' END, \
       CASE WHEN i % 100 = 0 THEN @now - INTERVAL i SECOND ELSE @now + INTERVAL 1 DAY + INTERVAL i SECOND END, \
       3600000, \
       CASE i % 4 WHEN 0 THEN @now - INTERVAL 1 HOUR END, \
       CASE WHEN i % 4 = 0 THEN (CASE WHEN i % 100 = 0 THEN @now - INTERVAL i SECOND \
            ELSE @now + INTERVAL 1 DAY + INTERVAL i SECOND END) END, \
       CASE i % 4 WHEN 1 THEN @now - INTERVAL 1 DAY END, \
       i % 4 = 1, 0 FROM s",
    "INSERT INTO services (id, tenant_id, customer_id, router_id, plan_id, status, connection_kind, pppoe_username, \
       pppoe_password, pppoe_profile, next_billing_date, billing_day, next_charge_on, provisioned, attempts) \
     WITH RECURSIVE s (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < @n) \
     SELECT i, 1, i, 1 + i % 10, 1, CASE WHEN i % 100 = 2 THEN 'suspended' ELSE 'active' END, 'pppoe', \
       CONCAT('p', i), 'pw', 'default', \
       CASE WHEN i % 100 = 3 THEN @today - INTERVAL 1 DAY ELSE @today + INTERVAL (i % 30) DAY END, 1, \
       CASE WHEN i % 100 = 4 THEN @today - INTERVAL 1 DAY ELSE @today + INTERVAL (1 + i % 28) DAY END, \
       i % 100 <> 1, 0 FROM s",
    "INSERT INTO notices (id, tenant_id, recipient, kind, deadline, body, status, attempts, created_at, sent_at) \
     WITH RECURSIVE s (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < @n) \
     SELECT i, 1, CONCAT('+2557', LPAD(i, 8, '0')), 'payment_due', @now + INTERVAL i SECOND, \
       'Your payment is due', CASE WHEN i % 100 = 0 THEN 'pending' ELSE 'sent' END, 0, \
       @now - INTERVAL (@n - i) SECOND, CASE WHEN i % 100 <> 0 THEN @now END FROM s",
];

/// Loads `n` rows into each of the four due-work tables, then `ANALYZE`.
///
/// # Panics
///
/// When a statement fails (this is test code: the failure names the statement).
pub async fn populate(pool: Pool<'_>, n: i64, now: DateTime<Utc>, today: NaiveDate) {
    match pool {
        #[cfg(feature = "sqlite")]
        Pool::Sqlite(pool) => {
            for sql in SQLITE {
                sqlx::query(sql)
                    .bind(n)
                    .bind(now.timestamp_micros())
                    .bind(today)
                    .execute(pool)
                    .await
                    .unwrap_or_else(|e| panic!("bulk load: {e}\n{sql}"));
            }
            sqlx::query("ANALYZE")
                .execute(pool)
                .await
                .unwrap_or_else(|e| panic!("ANALYZE: {e}"));
        }
        #[cfg(feature = "postgres")]
        Pool::Postgres(pool) => {
            for sql in POSTGRES {
                sqlx::query(sql)
                    .bind(n)
                    .bind(now)
                    .bind(today)
                    .execute(pool)
                    .await
                    .unwrap_or_else(|e| panic!("bulk load: {e}\n{sql}"));
            }
            for table in ["subscribers", "vouchers", "services", "notices"] {
                // Identities were given explicitly: move the sequences past them.
                sqlx::query(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
                ))
                .execute(pool)
                .await
                .unwrap_or_else(|e| panic!("setval on {table}: {e}"));
            }
            sqlx::query("VACUUM ANALYZE")
                .execute(pool)
                .await
                .unwrap_or_else(|e| panic!("VACUUM ANALYZE: {e}"));
        }
        #[cfg(feature = "mysql")]
        Pool::Mysql(pool) => {
            let mut conn = pool.acquire().await.unwrap_or_else(|e| panic!("bulk load: {e}"));
            // MariaDB stops a recursive CTE at max_recursive_iterations (1000 by default).
            sqlx::query("SET SESSION max_recursive_iterations = 4294967295")
                .execute(&mut *conn)
                .await
                .unwrap_or_else(|e| panic!("bulk load: {e}"));
            // A load takes longer than a daemon's statement limit (MariaDB's variable;
            // MySQL limits only SELECTs and has no such variable, hence the ignored error).
            let _ = sqlx::query("SET SESSION max_statement_time = 0")
                .execute(&mut *conn)
                .await;
            sqlx::query("SET @n = ?, @now = ?, @today = ?")
                .bind(n)
                .bind(now.naive_utc())
                .bind(today)
                .execute(&mut *conn)
                .await
                .unwrap_or_else(|e| panic!("bulk load: {e}"));
            for sql in MYSQL {
                sqlx::query(sql)
                    .execute(&mut *conn)
                    .await
                    .unwrap_or_else(|e| panic!("bulk load: {e}\n{sql}"));
            }
            sqlx::query("ANALYZE TABLE subscribers, vouchers, services, notices")
                .execute(&mut *conn)
                .await
                .unwrap_or_else(|e| panic!("ANALYZE TABLE: {e}"));
        }
    }
}

/// Indexes each due-work statement must use, by statement name.
pub fn expected_index(name: &str) -> &'static str {
    match name.split('.').next() {
        Some("subscribers") => "subscribers_due",
        Some("vouchers") => "vouchers_due",
        Some("notices") => "notices_by_status",
        _ if name == "services.claim_billable" => "services_billable",
        _ => "services_provisioning",
    }
}

/// The table a statement works on.
pub fn table_of(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// Why `plan` is not an index range scan on its table, if it is not.
pub fn plan_problem(dialect: Dialect, name: &str, plan: &str) -> Option<String> {
    let table = table_of(name);
    let index = expected_index(name);
    if !plan.contains(index) {
        return Some(format!("{name}: index {index} not used"));
    }
    for line in plan.lines() {
        let l = line.trim();
        let full_scan = match dialect {
            // `SCAN t` (or `SCAN t USING INDEX i`, a whole index) is a full scan; a range is `SEARCH`.
            Dialect::Sqlite => l == format!("SCAN {table}") || l.starts_with(&format!("SCAN {table} ")),
            Dialect::Postgres => l.contains(&format!("Seq Scan on {table}")),
            // `type=ALL` reads every row.
            Dialect::Mysql => l.contains(&format!(" {table} type=ALL")),
        };
        if full_scan {
            return Some(format!("{name}: full scan of {table}: {l}"));
        }
    }
    None
}
