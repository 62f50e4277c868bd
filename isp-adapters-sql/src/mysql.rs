//! MySQL and MariaDB: the databases of the hotspot systems isp replaces.
//!
//! Supported: **MariaDB 10.6+** and **MySQL 8.0+** (tested on MariaDB 10.11),
//! because claims need `FOR UPDATE SKIP LOCKED`, which older servers lack.
//! Tables are InnoDB, `utf8mb4` with the binary collation (names compare
//! exactly, as on PostgreSQL); instants are `DATETIME(6)` in UTC (every pooled
//! connection sets `time_zone = '+00:00'`), dates `DATE`. Connections run at
//! READ COMMITTED, like PostgreSQL, so locking reads take no gap locks.
//!
//! The repositories are the shared ones (`repos/`), written in PostgreSQL's
//! flavour; `mysql/emulate.rs` runs each statement on MySQL: `$N` parameters become `?`
//! (values re-bound in order of use), `ON CONFLICT` becomes `ON DUPLICATE KEY
//! UPDATE` (or a skipped duplicate), and `RETURNING`, which MySQL 8 lacks and
//! MariaDB has only for `INSERT` / `DELETE`, becomes a short transaction:
//! lock the matching rows (`SELECT id ... FOR UPDATE`), update them by id, read
//! them back. A claim locks its batch with `FOR UPDATE SKIP LOCKED` in that
//! first step, so concurrent claimants take disjoint batches without waiting.

mod emulate;

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlPoolOptions, MySqlRow};
use sqlx::{Executor as _, MySql, MySqlPool, Row, Transaction};

use isp_core::{Error, Result};

use crate::row::redact_url;
use crate::SqlOptions;

pub(crate) use emulate::{query, Builder};

pub(crate) type Db = MySql;
pub(crate) type DbPool = MySqlPool;
pub(crate) type DbRow = MySqlRow;

/// The embedded MySQL / MariaDB migrations.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

/// An instant as bound: `DATETIME(6)` in UTC, clamped to the column's range
/// (years 1000 to 9999), so "the far future" stays the far future.
pub(crate) fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    let min = DateTime::<Utc>::from_timestamp(-30_610_224_000, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
    let max =
        DateTime::<Utc>::from_timestamp(253_402_300_799, 999_999_000).unwrap_or(DateTime::<Utc>::MAX_UTC);
    t.clamp(min, max)
}

/// Starts a write transaction (READ COMMITTED, set on every pooled connection).
pub(crate) async fn begin_write(pool: &DbPool) -> std::result::Result<Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

/// Maps every MySQL / MariaDB / pool error onto the engine's error family (the
/// one place this is decided).
///
/// - a duplicate key (`1062` and kin) -> [`Error::Conflict`] naming the key;
/// - `RowNotFound` -> [`Error::NotFound`];
/// - a lock wait past `innodb_lock_wait_timeout` (`1205`), a deadlock (`1213`),
///   a statement stopped by its time limit (`1969` MariaDB, `3024` MySQL) or
///   interrupted (`1317`), too many connections (`1040`), a shutdown (`1053`),
///   a lost or killed connection (`2006`, `2013`, `1927`), SQLSTATE `08*`, I/O,
///   TLS, pool timeout or closed -> transient [`Error::Unavailable`];
/// - access denied (`1044`, `1045`, SQLSTATE `28*`) -> [`Error::Authentication`]
///   (the server's message; never a password);
/// - an undecodable column -> [`Error::InvalidInput`] naming it;
/// - anything else -> [`Error::Internal`].
///
/// No message here contains the connection URL.
pub fn map_sqlx_error(entity: &'static str, err: sqlx::Error) -> Error {
    const SERVICE: &str = "database (mysql)";
    match err {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let number = db
                .try_downcast_ref::<MySqlDatabaseError>()
                .map_or(0, MySqlDatabaseError::number);
            if db.is_unique_violation() {
                return Error::conflict(entity, db.message().to_owned());
            }
            let transient = matches!(
                number,
                1040 | 1053 | 1205 | 1213 | 1317 | 1927 | 1969 | 2006 | 2013 | 3024
            ) || code.starts_with("08");
            if transient {
                return Error::unavailable_from(
                    SERVICE,
                    format!("{} (error {number}, SQLSTATE {code})", db.message()),
                    sqlx::Error::Database(db),
                );
            }
            if matches!(number, 1044 | 1045) || code.starts_with("28") {
                return Error::Authentication {
                    service: SERVICE.to_owned(),
                    detail: db.message().to_owned(),
                };
            }
            Error::Internal(format!(
                "{entity}: error {number} (SQLSTATE {code}): {}",
                db.message()
            ))
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
        sqlx::Error::Configuration(e) => Error::invalid("database_url", "(mysql)", e.to_string()),
        other => Error::Internal(format!("{entity}: {other}")),
    }
}

/// Columns of one MySQL row.
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
        self.opt_string(col)?
            .ok_or_else(|| Error::invalid(self.field(col), "NULL", "must not be NULL"))
    }
    fn opt_string(&self, col: &str) -> Result<Option<String>> {
        // sqlx reads a column of a binary collation (utf8mb4_bin) as bytes.
        match self.row.try_get::<Option<String>, _>(col) {
            Ok(v) => Ok(v),
            Err(_) => match self.get::<Option<Vec<u8>>>(col)? {
                Some(bytes) => String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| Error::invalid(self.field(col), "(bytes)", "not UTF-8 text")),
                None => Ok(None),
            },
        }
    }
    fn bool(&self, col: &str) -> Result<bool> {
        match self.get::<i8>(col)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(Error::invalid(self.field(col), v, "not a boolean (0 or 1)")),
        }
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

/// Connects to a `mysql://` or `mariadb://` URL. Errors never contain the password.
pub(crate) async fn connect_url(url: &str, opts: &SqlOptions) -> Result<DbPool> {
    let mysql_url = match url.strip_prefix("mariadb:") {
        Some(rest) => format!("mysql:{rest}"),
        None => url.to_owned(),
    };
    let options = MySqlConnectOptions::from_str(&mysql_url)
        .map_err(|e| {
            Error::invalid(
                "database_url",
                redact_url(url),
                // The parser's message names what is wrong, never the URL itself.
                e.to_string()
                    .replace(&mysql_url, &redact_url(url))
                    .replace(url, &redact_url(url)),
            )
        })?
        .charset("utf8mb4")
        .timezone(Some("+00:00".to_owned()));
    let settings = session_settings(opts);
    let pool = MySqlPoolOptions::new()
        .max_connections(opts.max_connections.max(1))
        .acquire_timeout(opts.acquire_timeout);
    crate::bounded_release(pool, opts.statement_timeout)
        .after_connect(move |conn, _meta| {
            let settings = settings.clone();
            Box::pin(async move {
                let version: String = conn.fetch_one("SELECT VERSION()").await?.try_get(0)?;
                let statement_limit = if version.contains("MariaDB") {
                    &settings.mariadb
                } else {
                    &settings.mysql
                };
                conn.execute(&*format!("{}, {statement_limit}", settings.common))
                    .await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(|e| map_sqlx_error("database", e))
}

/// The `SET SESSION` every pooled connection runs (also one that replaces a
/// broken one): isolation, the lock wait and the statement time limit.
#[derive(Clone)]
struct Settings {
    common: String,
    mariadb: String,
    mysql: String,
}

fn session_settings(opts: &SqlOptions) -> Settings {
    // innodb_lock_wait_timeout is whole seconds, at least 1; zero means "as
    // long as the server allows" (its maximum, about a year).
    let lock = if opts.lock_timeout.is_zero() {
        1_073_741_824
    } else {
        opts.lock_timeout.as_secs().max(1)
    };
    let stmt = opts.statement_timeout;
    let ms = if stmt.is_zero() {
        0
    } else {
        stmt.as_millis().max(1)
    };
    Settings {
        common: format!(
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; \
             SET SESSION innodb_lock_wait_timeout = {lock}"
        ),
        // Seconds (fractional) on MariaDB; milliseconds, SELECT only, on MySQL.
        mariadb: format!("max_statement_time = {}.{:03}", ms / 1000, ms % 1000),
        mysql: format!("max_execution_time = {ms}"),
    }
}

/// Runs the migrations under a named lock (`GET_LOCK`, per database), so that
/// concurrent callers run them one after the other; the check for a newer
/// schema runs under it too.
pub(crate) async fn migrate(pool: &DbPool) -> Result<()> {
    let map = |e| map_sqlx_error("schema", e);
    let mut conn = pool.acquire().await.map_err(map)?;
    let got: Option<i64> = sqlx::query("SELECT GET_LOCK(CONCAT('isp_migrate:', DATABASE()), 600)")
        .fetch_one(&mut *conn)
        .await
        .map_err(map)?
        .try_get(0)
        .map_err(map)?;
    if got != Some(1) {
        return Err(Error::unavailable(
            "database (mysql)",
            "another migration held the schema lock for 10 minutes",
        ));
    }
    let result = async {
        crate::check_not_newer(&MIGRATOR, applied_versions(&mut conn).await?)?;
        MIGRATOR
            .run_direct(&mut *conn)
            .await
            .map_err(crate::map_migrate_error)
    }
    .await;
    let released = sqlx::query("SELECT RELEASE_LOCK(CONCAT('isp_migrate:', DATABASE()))")
        .execute(&mut *conn)
        .await;
    result?;
    released.map(|_| ()).map_err(map)
}

/// Versions recorded in `_sqlx_migrations` (empty before the first `migrate`).
async fn applied_versions(conn: &mut sqlx::MySqlConnection) -> Result<Vec<i64>> {
    let map = |e| map_sqlx_error("schema", e);
    let exists = sqlx::query(
        "SELECT 1 FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name = '_sqlx_migrations'",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(map)?;
    if exists.is_none() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut *conn)
        .await
        .map_err(map)?;
    rows.iter()
        .map(|r| {
            r.try_get::<i64, _>(0)
                .map_err(|e| Error::invalid("_sqlx_migrations.version", "(undecodable)", e.to_string()))
        })
        .collect()
}

/// `EXPLAIN` describes the plan and runs nothing (a claim is explained by its
/// locking `SELECT`, the statement that chooses the rows).
pub(crate) const EXPLAIN_PREFIX: &str = "EXPLAIN ";

/// One line per row of `EXPLAIN`: `table type=... key=... rows=... extra`.
pub(crate) fn plan_text(rows: &[DbRow]) -> Result<String> {
    let mut out = String::new();
    for r in rows {
        let text = |col: &str| -> String {
            if let Ok(Some(s)) = r.try_get::<Option<String>, _>(col) {
                return s;
            }
            if let Ok(Some(n)) = r.try_get::<Option<i64>, _>(col) {
                return n.to_string();
            }
            if let Ok(Some(n)) = r.try_get::<Option<u64>, _>(col) {
                return n.to_string();
            }
            "NULL".to_owned()
        };
        out.push_str(&format!(
            "{} {} type={} key={} rows={} {}\n",
            text("select_type"),
            text("table"),
            text("type"),
            text("key"),
            text("rows"),
            text("Extra")
        ));
    }
    Ok(out)
}

/// Closes every connection.
pub(crate) async fn close(pool: &DbPool) {
    pool.close().await;
}

/// Concurrent claimants skip each other's rows instead of waiting for them.
pub(crate) const CLAIM_LOCK: &str = " FOR UPDATE SKIP LOCKED";

/// The rows a claim leases: those whose id `select` (a `SELECT id FROM ...`) returns.
pub(crate) fn claimed_rows(select: &str) -> String {
    format!("id {}", id_in(select))
}

/// No `UPDATE ... FROM`: a multi-table `UPDATE` has no `RETURNING` to emulate.
pub(crate) const UPDATE_FROM_VALUES: bool = false;

/// "`id` is one of the ids `select` returns". Wrapped in a derived table: MySQL
/// allows no `LIMIT` in an `IN` subquery, nor the updated table in one.
pub(crate) fn id_in(select: &str) -> String {
    format!("IN (SELECT id FROM ({select}) AS ids_)")
}

/// The repositories, compiled for MySQL / MariaDB.
// Compiled once per dialect on purpose: `super` is the dialect seam.
#[allow(clippy::duplicate_mod)]
#[path = "repos/mod.rs"]
pub(crate) mod repos;
