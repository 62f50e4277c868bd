//! SQLite: the embedded default. One file in WAL mode, created on first use.
//!
//! Instants are stored as INTEGER microseconds since the Unix epoch (UTC), the
//! same precision as PostgreSQL, so that range scans compare integers on the
//! index; dates as `YYYY-MM-DD` text. Claims are single `UPDATE ... RETURNING`
//! statements, and multi-statement writes start with `BEGIN IMMEDIATE`: SQLite
//! has one writer at a time, so claims are exact for one process and any
//! number of tasks (several processes on one file also stay correct, but
//! queue on the write lock; use PostgreSQL to spread work over machines).

use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection as _, Row, Sqlite, SqlitePool, Transaction};

use isp_core::{Error, Result};

use crate::SqlOptions;

pub(crate) type Db = Sqlite;
pub(crate) type DbPool = SqlitePool;
pub(crate) type DbRow = SqliteRow;

/// The embedded SQLite migrations.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// An instant as stored: microseconds since the epoch (sub-microsecond digits are dropped).
pub(crate) fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Starts a write transaction that takes the write lock at once, so that a read
/// inside it can never be invalidated by another writer (no `SQLITE_BUSY` upgrade).
pub(crate) async fn begin_write(pool: &DbPool) -> std::result::Result<Transaction<'static, Db>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Maps every SQLite / pool error onto the engine's error family (the one place
/// this is decided).
///
/// - unique or primary-key violation -> [`Error::Conflict`] naming the columns;
/// - `RowNotFound` -> [`Error::NotFound`];
/// - busy / locked database, disk I/O, pool timeout or closed, worker crash ->
///   transient [`Error::Unavailable`];
/// - an undecodable column -> [`Error::InvalidInput`] naming it;
/// - anything else (a broken query, a check constraint) -> [`Error::Internal`].
pub fn map_sqlx_error(entity: &'static str, err: sqlx::Error) -> Error {
    const SERVICE: &str = "database (sqlite)";
    match err {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let extended: i64 = code.parse().unwrap_or(-1);
            let primary = extended & 0xff;
            if db.is_unique_violation() || extended == 2067 || extended == 1555 {
                return Error::conflict(entity, db.message().to_owned());
            }
            match primary {
                // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_PROTOCOL
                5 | 6 | 10 | 13 | 14 | 15 => Error::unavailable_from(
                    SERVICE,
                    format!("{} (code {extended})", db.message()),
                    sqlx::Error::Database(db),
                ),
                _ => Error::Internal(format!("{entity}: sqlite error {extended}: {}", db.message())),
            }
        }
        sqlx::Error::RowNotFound => Error::not_found(entity, "(no row)"),
        sqlx::Error::ColumnDecode { index, source } => {
            Error::invalid(format!("{entity}.{index}"), "(undecodable)", source.to_string())
        }
        sqlx::Error::Decode(source) => Error::invalid(entity, "(undecodable)", source.to_string()),
        e @ (sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)) => Error::unavailable_from(SERVICE, e.to_string(), e),
        sqlx::Error::Configuration(e) => Error::invalid("database_url", "(sqlite)", e.to_string()),
        other => Error::Internal(format!("{entity}: {other}")),
    }
}

/// Columns of one SQLite row.
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

    fn micros(&self, col: &str, v: i64) -> Result<DateTime<Utc>> {
        DateTime::from_timestamp_micros(v).ok_or_else(|| {
            Error::invalid(
                format!("{}.{col}", self.table),
                v,
                "not an instant (microseconds since 1970)",
            )
        })
    }

    fn parse_date(&self, col: &str, raw: &str) -> Result<NaiveDate> {
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map_err(|_| Error::invalid(format!("{}.{col}", self.table), raw, "not a date (YYYY-MM-DD)"))
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
        match self.get::<i64>(col)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(Error::invalid(self.field(col), v, "not a boolean (0 or 1)")),
        }
    }
    fn ts(&self, col: &str) -> Result<DateTime<Utc>> {
        let v = self.get::<i64>(col)?;
        self.micros(col, v)
    }
    fn opt_ts(&self, col: &str) -> Result<Option<DateTime<Utc>>> {
        match self.get::<Option<i64>>(col)? {
            Some(v) => self.micros(col, v).map(Some),
            None => Ok(None),
        }
    }
    fn date(&self, col: &str) -> Result<NaiveDate> {
        let raw = self.get::<String>(col)?;
        self.parse_date(col, &raw)
    }
    fn opt_date(&self, col: &str) -> Result<Option<NaiveDate>> {
        match self.get::<Option<String>>(col)? {
            Some(raw) => self.parse_date(col, &raw).map(Some),
            None => Ok(None),
        }
    }
}

/// Opens (creating if missing) the database file at `path`.
pub(crate) async fn connect_file(path: &Path, opts: &SqlOptions) -> Result<DbPool> {
    let options = SqliteConnectOptions::new().filename(path).create_if_missing(true);
    open(options, opts, false).await
}

/// Opens a `sqlite:` URL (`sqlite://isp.db`, `sqlite::memory:`).
pub(crate) async fn connect_url(url: &str, opts: &SqlOptions) -> Result<DbPool> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| Error::invalid("database_url", crate::row::redact_url(url), e.to_string()))?;
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    open(options.create_if_missing(true), opts, memory).await
}

/// A fresh private in-memory database.
pub(crate) async fn connect_memory(opts: &SqlOptions) -> Result<DbPool> {
    let options = SqliteConnectOptions::from_str("sqlite::memory:")
        .map_err(|e| Error::invalid("database_url", "sqlite::memory:", e.to_string()))?;
    open(options, opts, true).await
}

async fn open(options: SqliteConnectOptions, opts: &SqlOptions, memory: bool) -> Result<DbPool> {
    let options = options
        .journal_mode(if memory {
            SqliteJournalMode::Memory
        } else {
            SqliteJournalMode::Wal
        })
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(opts.busy_timeout)
        // A claim or batch answers up to 500 rows: let the connection's worker
        // thread hand them all over without waiting on the reader every 50.
        .row_buffer_size(512);
    // An in-memory database lives as long as one connection to it: keep exactly
    // one, forever (its shared cache has table locks that busy_timeout does not
    // cover, so one connection is also the only safe size).
    let pool = if memory {
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        // A COMMIT that fails (a full disk: SQLITE_FULL) leaves the connection
        // inside its transaction, and every later `begin` on it fails: close
        // such a connection instead of pooling it again.
        SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .after_release(|conn, _meta| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
    };
    // No ping before each acquire: an embedded file has no peer that hangs up,
    // and sqlx still tests each connection as it is released.
    pool.acquire_timeout(opts.acquire_timeout)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|e| map_sqlx_error("database", e))
}

/// Versions recorded in `_sqlx_migrations` (empty before the first `migrate`).
pub(crate) async fn applied_versions(pool: &DbPool) -> Result<Vec<i64>> {
    let map = |e| map_sqlx_error("schema", e);
    let exists =
        sqlx::query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_optional(pool)
            .await
            .map_err(map)?;
    if exists.is_none() {
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

/// `EXPLAIN QUERY PLAN` runs nothing; it describes the plan.
pub(crate) const EXPLAIN_PREFIX: &str = "EXPLAIN QUERY PLAN ";

/// The `detail` lines of `EXPLAIN QUERY PLAN`, indented by depth.
pub(crate) fn plan_text(rows: &[DbRow]) -> Result<String> {
    let mut depth: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    let mut out = String::new();
    for r in rows {
        let bad = |e: sqlx::Error| Error::invalid("query plan", "(undecodable)", e.to_string());
        let id: i64 = r.try_get("id").map_err(bad)?;
        let parent: i64 = r.try_get("parent").map_err(bad)?;
        let detail: String = r.try_get("detail").map_err(bad)?;
        let d = depth.get(&parent).map_or(0, |d| d + 1);
        depth.insert(id, d);
        out.push_str(&"  ".repeat(d));
        out.push_str(&detail);
        out.push('\n');
    }
    Ok(out)
}

/// Closes every connection (the pool's background work included).
pub(crate) async fn close(pool: &DbPool) {
    pool.close().await;
}

/// SQLite has one writer at a time: a claim's single `UPDATE ... RETURNING`
/// holds the write lock for its whole run, so its inner `SELECT` needs no lock.
pub(crate) const CLAIM_LOCK: &str = "";

/// The rows a claim leases: those whose id `select` (a `SELECT id FROM ...`) returns.
pub(crate) fn claimed_rows(select: &str) -> String {
    format!("id {}", id_in(select))
}

/// `UPDATE ... FROM (VALUES ...)` (SQLite 3.33+; sqlx bundles a newer one).
pub(crate) const UPDATE_FROM_VALUES: bool = true;

/// "`id` is one of the ids `select` returns."
pub(crate) fn id_in(select: &str) -> String {
    format!("IN ({select})")
}

/// A statement (`$N` parameters, bound with `.bind`), as the repositories run it.
pub(crate) fn query(sql: &str) -> sqlx::query::Query<'_, Db, <Db as sqlx::Database>::Arguments<'_>> {
    sqlx::query(sql)
}

/// A statement built piece by piece, as the repositories build one.
pub(crate) type Builder<'a> = sqlx::QueryBuilder<'a, Db>;

/// The repositories, compiled for SQLite.
// Compiled once per dialect on purpose: `super` is the dialect seam.
#[allow(clippy::duplicate_mod)]
#[path = "repos/mod.rs"]
pub(crate) mod repos;
