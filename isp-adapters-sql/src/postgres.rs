//! PostgreSQL: for several daemons sharing one database.
//!
//! Instants are `TIMESTAMPTZ`, dates `DATE`. Claims lock their rows with
//! `FOR UPDATE SKIP LOCKED` inside the claiming `UPDATE`, so concurrent
//! claimants take disjoint batches without waiting for each other, and each
//! claimed row carries a lease (holder, until): a daemon that dies leaves its
//! items to whoever claims after the lease ends.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, Transaction};

use isp_core::{Error, Result};

use crate::row::redact_url;
use crate::SqlOptions;

pub(crate) type Db = Postgres;
pub(crate) type DbPool = PgPool;
pub(crate) type DbRow = PgRow;

/// The embedded PostgreSQL migrations.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// An instant as bound: `TIMESTAMPTZ`.
pub(crate) fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    t
}

/// Starts a write transaction (READ COMMITTED; every statement in one re-checks
/// its guard on the newest row version).
pub(crate) async fn begin_write(pool: &DbPool) -> std::result::Result<Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

/// Maps every PostgreSQL / pool error onto the engine's error family (the one
/// place this is decided).
///
/// - `23505` unique violation -> [`Error::Conflict`] naming the constraint;
/// - `RowNotFound` -> [`Error::NotFound`];
/// - connection exceptions (`08*`), resource shortages (`53*`), shutdowns and
///   recovery (`57P*`), serialization failures and deadlocks (`40001`,
///   `40P01`), a lock wait past `lock_timeout` (`55P03`), a statement
///   cancelled by `statement_timeout` (`57014`), I/O, TLS, pool timeout or
///   closed -> transient
///   [`Error::Unavailable`];
/// - `28*` -> [`Error::Authentication`] (the server's message; never a password);
/// - an undecodable column -> [`Error::InvalidInput`] naming it;
/// - anything else -> [`Error::Internal`].
///
/// No message here contains the connection URL.
pub fn map_sqlx_error(entity: &'static str, err: sqlx::Error) -> Error {
    const SERVICE: &str = "database (postgres)";
    match err {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            if db.is_unique_violation() || code == "23505" {
                let detail = match db.constraint() {
                    Some(c) => format!("{} (constraint {c})", db.message()),
                    None => db.message().to_owned(),
                };
                return Error::conflict(entity, detail);
            }
            let transient = code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || code == "40001"
                || code == "40P01"
                || code == "55P03"
                || code == "57014";
            if transient {
                return Error::unavailable_from(
                    SERVICE,
                    format!("{} (SQLSTATE {code})", db.message()),
                    sqlx::Error::Database(db),
                );
            }
            if code.starts_with("28") {
                return Error::Authentication {
                    service: SERVICE.to_owned(),
                    detail: db.message().to_owned(),
                };
            }
            Error::Internal(format!("{entity}: SQLSTATE {code}: {}", db.message()))
        }
        sqlx::Error::RowNotFound => Error::not_found(entity, "(no row)"),
        sqlx::Error::ColumnDecode { index, source } => {
            Error::invalid(format!("{entity}.{index}"), "(undecodable)", source.to_string())
        }
        sqlx::Error::Decode(source) => Error::invalid(entity, "(undecodable)", source.to_string()),
        e @ (sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)) => Error::unavailable_from(SERVICE, e.to_string(), e),
        sqlx::Error::Configuration(e) => Error::invalid("database_url", "(postgres)", e.to_string()),
        other => Error::Internal(format!("{entity}: {other}")),
    }
}

/// Columns of one PostgreSQL row.
pub(crate) struct Cols<'r> {
    row: &'r DbRow,
    table: &'static str,
}

impl<'r> Cols<'r> {
    pub(crate) fn new(row: &'r DbRow, table: &'static str) -> Self {
        Cols { row, table }
    }

    fn get<T>(&self, col: &str) -> Result<T>
    where
        T: for<'a> sqlx::Decode<'a, Db> + sqlx::Type<Db>,
    {
        self.row
            .try_get::<T, _>(col)
            .map_err(|e| Error::invalid(format!("{}.{col}", self.table), "(undecodable)", e.to_string()))
    }
}

impl crate::row::Fields for Cols<'_> {
    fn field(&self, col: &str) -> String {
        format!("{}.{col}", self.table)
    }
    fn i64(&self, col: &str) -> Result<i64> {
        self.get(col)
    }
    fn opt_i64(&self, col: &str) -> Result<Option<i64>> {
        self.get(col)
    }
    fn string(&self, col: &str) -> Result<String> {
        self.get(col)
    }
    fn opt_string(&self, col: &str) -> Result<Option<String>> {
        self.get(col)
    }
    fn bool(&self, col: &str) -> Result<bool> {
        self.get(col)
    }
    fn ts(&self, col: &str) -> Result<DateTime<Utc>> {
        self.get(col)
    }
    fn opt_ts(&self, col: &str) -> Result<Option<DateTime<Utc>>> {
        self.get(col)
    }
    fn date(&self, col: &str) -> Result<NaiveDate> {
        self.get(col)
    }
    fn opt_date(&self, col: &str) -> Result<Option<NaiveDate>> {
        self.get(col)
    }
}

/// Connects to a `postgres://` URL. Errors never contain the password.
pub(crate) async fn connect_url(url: &str, opts: &SqlOptions) -> Result<DbPool> {
    let options = PgConnectOptions::from_str(url).map_err(|e| {
        Error::invalid(
            "database_url",
            redact_url(url),
            // The parser's message names what is wrong, never the URL itself.
            e.to_string().replace(url, &redact_url(url)),
        )
    })?;
    // Startup parameters: every connection of the pool, also one that replaces
    // a broken one, carries them. `0` disables either.
    let options = options.options([
        ("statement_timeout", pg_millis(opts.statement_timeout)),
        ("lock_timeout", pg_millis(opts.lock_timeout)),
        (
            "idle_in_transaction_session_timeout",
            pg_millis(opts.statement_timeout),
        ),
    ]);
    let pool = PgPoolOptions::new()
        .max_connections(opts.max_connections.max(1))
        .acquire_timeout(opts.acquire_timeout);
    crate::bounded_release(pool, opts.statement_timeout)
        .connect_with(options)
        .await
        .map_err(|e| map_sqlx_error("database", e))
}

/// A duration as a PostgreSQL setting in milliseconds (at least 1 unless zero,
/// which disables the timeout).
fn pg_millis(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    let ms = if ms == 0 && !d.is_zero() { 1 } else { ms };
    format!("{ms}ms")
}

/// Versions recorded in `_sqlx_migrations` (empty before the first `migrate`).
pub(crate) async fn applied_versions(pool: &DbPool) -> Result<Vec<i64>> {
    let map = |e| map_sqlx_error("schema", e);
    let exists: bool = sqlx::query("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await
        .map_err(map)?
        .try_get(0)
        .map_err(map)?;
    if !exists {
        return Ok(Vec::new());
    }
    let rows = sqlx::query("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(pool)
        .await
        .map_err(map)?;
    rows.iter()
        .map(|r| {
            r.try_get::<i64, _>(0)
                .map_err(|e| Error::invalid("_sqlx_migrations.version", "(undecodable)", e.to_string()))
        })
        .collect()
}

/// `EXPLAIN` without `ANALYZE` runs nothing; it describes the plan.
pub(crate) const EXPLAIN_PREFIX: &str = "EXPLAIN ";

/// The lines of `EXPLAIN` (text format).
pub(crate) fn plan_text(rows: &[DbRow]) -> Result<String> {
    let mut out = String::new();
    for r in rows {
        let line: String = r
            .try_get(0)
            .map_err(|e| Error::invalid("query plan", "(undecodable)", e.to_string()))?;
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// Closes every connection.
pub(crate) async fn close(pool: &DbPool) {
    pool.close().await;
}

/// Concurrent claimants skip each other's rows instead of waiting for them.
pub(crate) const CLAIM_LOCK: &str = " FOR UPDATE SKIP LOCKED";

/// The rows a claim leases: those `select` (a `SELECT id FROM ...`) picks,
/// by their `ctid`. The select locks each row it returns, so no other
/// statement moves it before the update; the update then fetches the 500
/// rows straight by position (a TID scan) instead of probing the primary key
/// for each (2.4x faster per claim of 500 at 1M rows). A row that was updated
/// between the scan and its lock fails the `ctid` test and is left out of the
/// claim, never leased twice: the claim's outer "free" test still guards it.
pub(crate) fn claimed_rows(select: &str) -> String {
    match select.strip_prefix("SELECT id FROM ") {
        Some(rest) => format!("ctid = ANY(ARRAY(SELECT ctid FROM {rest}))"),
        None => format!("id {}", id_in(select)),
    }
}

/// `UPDATE ... FROM (VALUES ...)`.
pub(crate) const UPDATE_FROM_VALUES: bool = true;

/// "`id` is one of the ids `select` returns": PostgreSQL runs the inner
/// `SELECT` once and then fetches each row by primary key, where `IN` may be
/// planned as a hash join over the whole table.
pub(crate) fn id_in(select: &str) -> String {
    format!("= ANY(ARRAY({select}))")
}

/// A statement (`$N` parameters, bound with `.bind`), as the repositories run it.
pub(crate) fn query(sql: &str) -> sqlx::query::Query<'_, Db, <Db as sqlx::Database>::Arguments<'_>> {
    sqlx::query(sql)
}

/// A statement built piece by piece, as the repositories build one.
pub(crate) type Builder<'a> = sqlx::QueryBuilder<'a, Db>;

/// The repositories, compiled for PostgreSQL.
// Compiled once per dialect on purpose: `super` is the dialect seam.
#[allow(clippy::duplicate_mod)]
#[path = "repos/mod.rs"]
pub(crate) mod repos;
