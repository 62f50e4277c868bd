//! The repositories, written once for every SQL dialect.
//!
//! This module is compiled once inside each dialect module (`sqlite`,
//! `postgres`, `mysql`: `#[path = "repos/mod.rs"] mod repos;`), where `super` is that
//! dialect. The dialect seam is what these files import from `super`:
//!
//! | name | what |
//! |---|---|
//! | `Db`, `DbPool`, `DbRow` | the sqlx database, pool and row types |
//! | `query(sql)`, `Builder` | a statement, and one built piece by piece (sqlx's `query` and `QueryBuilder`; on MySQL a rewriting runner, see `mysql::emulate`) |
//! | `ts(DateTime<Utc>)` | an instant as the dialect binds it (micros / TIMESTAMPTZ) |
//! | `Cols::new(&row, table)` | the dialect's [`Fields`](crate::row::Fields) over a row |
//! | `map_sqlx_error(entity, err)` | the dialect's one error mapping |
//! | `begin_write(&pool)` | a write transaction (`BEGIN IMMEDIATE` on SQLite) |
//! | `CLAIM_LOCK`, `id_in(select)` | the claim's row lock, and "`id` is one of `select`" |
//! | `claimed_rows(select)` | the rows a claim leases, as a condition (by `ctid` on PostgreSQL) |
//! | `EXPLAIN_PREFIX`, `plan_text(rows)` | how to ask for and read a query plan |
//! | `UPDATE_FROM_VALUES` | whether `UPDATE t SET ... FROM (VALUES ...) AS v` (columns `v.column1`, ...) runs |
//!
//! Everything else is shared, in PostgreSQL's flavour: `$N` parameters,
//! `RETURNING`, `ON CONFLICT` and `TRUE`/`FALSE` (SQLite takes them as they
//! are; MySQL's runner rewrites them). Run every statement through `query` /
//! `Builder`, never `sqlx::query` directly, so that it runs on every dialect.
//!
//! Every claim is one statement (see [`claim_sql`]):
//! `UPDATE t SET lease = claimant WHERE <claimed_rows(SELECT id ... due and free
//! ORDER BY deadline, id LIMIT n <CLAIM_LOCK>)> AND <free> RETURNING ...`. The
//! repeated "free" test in the outer `WHERE` is re-checked by PostgreSQL on the
//! newest row version if a concurrent claimant got there first, so an item is
//! never leased twice even without the lock; the lock just makes claimants skip
//! each other's rows instead of waiting for them. On SQLite one `UPDATE ...
//! RETURNING` holds the single write lock for its whole run.

/// Column lists, shared by every query of a table (literals, for `concat!`).
macro_rules! cols {
    (tenants) => {
        "id, slug, name, time_zone"
    };
    (subscribers) => {
        "id, tenant_id, phone, username, paid_until, active, disconnected_at, attempts, \
         lease_holder, lease_until"
    };
    (devices) => {
        "id, subscriber_id, mac, router_id, last_seen, active"
    };
    (vouchers) => {
        "id, tenant_id, router_id, code, plan_id, status, activation_deadline, purchase_deadline, \
         duration_ms, started_at, expected_end, expired_reason, expired_at, removed_from_router, \
         lease_holder, lease_until, attempts"
    };
    (plans) => {
        "id, tenant_id, name, price_micros, currency, duration_ms, rate_limit"
    };
    (customers) => {
        "id, tenant_id, name, phone"
    };
    (services) => {
        "id, tenant_id, customer_id, router_id, plan_id, status, connection_kind, pppoe_username, \
         pppoe_password, pppoe_profile, static_address, next_billing_date, billing_day, next_charge_on, \
         provisioned, provisioned_at, deprovisioned_at, lease_holder, lease_until, attempts"
    };
    (ledger) => {
        "id, customer_id, service_id, kind, amount_micros, currency, period_start, key, created_at"
    };
    (notices) => {
        "id, tenant_id, recipient, kind, deadline, subject, body, status, attempts, created_at, sent_at, \
         lease_holder, lease_until"
    };
    (audit_events) => {
        "at, tenant_id, action, subject, router_id, outcome, reason"
    };
    (router_status) => {
        "router_id, online, checked_at, changed_at, clock_skew_secs, version, last_error"
    };
}

/// "The lease is free at `$n`."
macro_rules! free {
    ($n:literal) => {
        concat!("(lease_until IS NULL OR lease_until <= $", $n, ")")
    };
}

mod audit;
mod billing;
mod grants;
mod hotspot;
mod leases;
mod notices;
mod radius_sessions;
mod vouchers;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;

use isp_core::domain::*;
use isp_core::ports::*;
use isp_core::{Error, Result};

use crate::row;

#[allow(unused_imports)]
use super::{
    begin_write, claimed_rows, id_in, map_sqlx_error, plan_text, query, ts, Builder, Cols, Db, DbPool, DbRow,
    CLAIM_LOCK, EXPLAIN_PREFIX, UPDATE_FROM_VALUES,
};

/// Maps an insert's error, turning a unique violation on `hotspot_names` (the
/// one hotspot user namespace per tenant, kept by triggers) into the
/// [`hotspot_name_taken`] conflict naming `field` and the value.
fn map_insert_error(
    e: sqlx::Error,
    entity: &'static str,
    field: &'static str,
    tenant: TenantId,
    name: &str,
) -> Error {
    match map_sqlx_error(entity, e) {
        Error::Conflict { detail, .. } if detail.contains("hotspot_names") => {
            hotspot_name_taken(entity, field, tenant, name)
        }
        other => other,
    }
}

/// One claim statement: leases (`set`) the rows of `table` whose ids `due`
/// selects (in deadline order, at most the limit), if they are still `free`,
/// and returns them with `cols`.
fn claim_sql(table: &str, set: &str, due: &str, free: &str, cols: &str) -> String {
    let rows = claimed_rows(&format!("{due}{CLAIM_LOCK}"));
    format!("UPDATE {table} SET {set} WHERE {rows} AND {free} RETURNING {cols}")
}

/// Explains every due-work statement with the parameters a job would give.
pub(crate) async fn explain_due_work(
    pool: &DbPool,
    now: DateTime<Utc>,
    tenant: TenantId,
    today: NaiveDate,
) -> Result<Vec<crate::QueryPlan>> {
    let map = |e| map_sqlx_error("query plan", e);
    let mut conn = pool.acquire().await.map_err(map)?;
    let holder = "explain";
    let until = now + chrono::Duration::minutes(5);
    let lim = 500_i64;
    let tenant = tenant.0;
    let mut out = Vec::new();
    let mut push = |name: &'static str, sql: &'static str, rows: Vec<DbRow>| -> Result<()> {
        out.push(crate::QueryPlan {
            name,
            sql,
            plan: plan_text(&rows)?,
        });
        Ok(())
    };
    let q = |sql: &str| format!("{EXPLAIN_PREFIX}{sql}");

    let sql = q(hotspot::LIST_EXPIRED);
    let rows = query(&sql)
        .bind(ts(now))
        .bind(lim)
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
    push("subscribers.list_expired", hotspot::LIST_EXPIRED, rows)?;
    let claim_expired = hotspot::CLAIM_EXPIRED.as_str();
    let rows = query(&q(claim_expired))
        .bind(holder)
        .bind(ts(until))
        .bind(ts(now))
        .bind(lim)
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
    push("subscribers.claim_expired", claim_expired, rows)?;
    let sql = q(hotspot::EXPIRING_BETWEEN);
    let rows = query(&sql)
        .bind(ts(now))
        .bind(ts(until))
        .bind(lim)
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
    push("subscribers.expiring_between", hotspot::EXPIRING_BETWEEN, rows)?;
    let sql = q(hotspot::NEXT_EXPIRY);
    let rows = query(&sql)
        .bind(ts(now))
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
    push("subscribers.next_expiry_after", hotspot::NEXT_EXPIRY, rows)?;

    let sql = q(vouchers::LIST_DUE);
    let rows = query(&sql)
        .bind(ts(now))
        .bind(lim)
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
    push("vouchers.list_due", vouchers::LIST_DUE, rows)?;
    let claim_due = vouchers::CLAIM_DUE.as_str();
    let rows = query(&q(claim_due))
        .bind(holder)
        .bind(ts(until))
        .bind(ts(now))
        .bind(lim)
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
    push("vouchers.claim_due", claim_due, rows)?;
    let sql = q(vouchers::NEXT_DEADLINE);
    let rows = query(&sql)
        .bind(ts(now))
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
    push("vouchers.next_deadline_after", vouchers::NEXT_DEADLINE, rows)?;

    let list_provisioning = billing::LIST_PROVISIONING.as_str();
    let rows = query(&q(list_provisioning))
        .bind(tenant)
        .bind(today)
        .bind(ts(DateTime::<Utc>::MAX_UTC))
        .bind(lim)
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
    push("services.list_provisioning", list_provisioning, rows)?;
    for (name, sql) in [
        (
            "services.claim_provisioning",
            billing::CLAIM_PROVISIONING.as_str(),
        ),
        ("services.claim_billable", billing::CLAIM_BILLABLE.as_str()),
    ] {
        let rows = query(&q(sql))
            .bind(tenant)
            .bind(today)
            .bind(ts(now))
            .bind(lim)
            .bind(holder)
            .bind(ts(until))
            .fetch_all(&mut *conn)
            .await
            .map_err(map)?;
        push(name, sql, rows)?;
    }

    let claim_pending = notices::CLAIM_PENDING.as_str();
    let rows = query(&q(claim_pending))
        .bind(holder)
        .bind(ts(until))
        .bind(ts(now))
        .bind(lim)
        .bind(RETRY_HOLDER)
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
    push("notices.claim_pending", claim_pending, rows)?;
    Ok(out)
}

/// Every repository over one pool.
pub(crate) fn all(pool: &DbPool) -> Repositories {
    let p = || pool.clone();
    Repositories {
        tenants: Arc::new(audit::Tenants { pool: p() }),
        subscribers: Arc::new(hotspot::Subscribers { pool: p() }),
        grants: Arc::new(grants::Grants { pool: p() }),
        devices: Arc::new(hotspot::Devices { pool: p() }),
        vouchers: Arc::new(vouchers::Vouchers { pool: p() }),
        plans: Arc::new(billing::Plans { pool: p() }),
        customers: Arc::new(billing::Customers { pool: p() }),
        services: Arc::new(billing::Services { pool: p() }),
        ledger: Arc::new(billing::Ledger { pool: p() }),
        notices: Arc::new(notices::Notices { pool: p() }),
        audit: Arc::new(audit::Audit { pool: p() }),
        router_status: Arc::new(audit::RouterStatuses { pool: p() }),
        leases: Arc::new(leases::Leases { pool: p() }),
        radius_sessions: Arc::new(radius_sessions::RadiusSessions { pool: p() }),
    }
}

fn decode_all<T>(
    rows: Vec<DbRow>,
    table: &'static str,
    f: impl Fn(&Cols<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    rows.iter().map(|r| f(&Cols::new(r, table))).collect()
}

/// `Ok(false)` when the row exists (a guard refused the change), else `NotFound`.
async fn guard_refused(
    pool: &DbPool,
    entity: &'static str,
    exists_sql: &'static str,
    id: i64,
) -> Result<bool> {
    let found = query(exists_sql)
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(|e| map_sqlx_error(entity, e))?;
    match found {
        Some(_) => Ok(false),
        None => Err(Error::not_found(entity, id)),
    }
}

/// Whether `e` is a deadlock or serialization failure (SQLSTATE `40001`,
/// `40P01`): the database rolled the whole transaction back, so running it
/// again is safe, and is what both servers' manuals ask of their clients.
pub(crate) fn is_rolled_back_by_the_server(e: &Error) -> bool {
    let Error::Unavailable {
        source: Some(source), ..
    } = e
    else {
        return false;
    };
    match source.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) => matches!(db.code().as_deref(), Some("40001" | "40P01")),
        _ => false,
    }
}

/// Attempts of a transaction the server rolled back as a deadlock victim.
const DEADLOCK_ATTEMPTS: u32 = 4;

/// Items per statement of a batch write (bind parameters stay far below both
/// databases' limits).
const BATCH_CHUNK: usize = 500;

fn count_of(row: &DbRow, field: &str) -> Result<u64> {
    let n: i64 = row
        .try_get(0)
        .map_err(|e| Error::invalid(field, "(undecodable)", e.to_string()))?;
    row::count(field, n)
}
