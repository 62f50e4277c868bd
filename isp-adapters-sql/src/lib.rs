#![doc = include_str!("../README.md")]

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!("isp-adapters-sql needs feature `sqlite`, `postgres` or `mysql` (or several)");

mod row;

#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::fmt;
use std::time::Duration;

use isp_core::ports::Repositories;
use isp_core::{Error, Result};

/// How many times a SQLite migration that lost a race with another process
/// is run again (200 ms apart).
#[cfg(feature = "sqlite")]
const SQLITE_MIGRATE_ATTEMPTS: u32 = 25;

/// The plan the database chose for one due-work statement.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    /// Repository and method (`subscribers.claim_expired`).
    pub name: &'static str,
    /// The statement.
    pub sql: &'static str,
    /// The plan as the database prints it (`EXPLAIN QUERY PLAN` on SQLite,
    /// `EXPLAIN` on PostgreSQL and MySQL).
    pub plan: String,
}

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (a file, or in memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL 8+ or MariaDB 10.6+.
    Mysql,
}

/// Pool settings. The defaults suit a daemon.
#[derive(Debug, Clone)]
pub struct SqlOptions {
    /// Most connections in the pool (SQLite in memory always uses one).
    pub max_connections: u32,
    /// How long a query waits for a free connection before a transient
    /// `Unavailable` error.
    pub acquire_timeout: Duration,
    /// SQLite: how long a writer waits for the write lock (SQLite's only
    /// wait; it has no statement timeout, and an embedded file cannot be
    /// black-holed by a network).
    pub busy_timeout: Duration,
    /// PostgreSQL: the server cancels any statement that runs longer
    /// (`statement_timeout`, set on every pooled connection), so a stalled
    /// query frees the job with a transient `Unavailable` instead of holding
    /// it; the server also ends a session left idle inside a transaction that
    /// long (`idle_in_transaction_session_timeout`), which frees the row locks
    /// of a client that went away mid-transaction. Neither reaches a client
    /// whose connection is black-holed: that is bounded by the engine's
    /// `run_timeout`, and a connection that does not answer a ping within
    /// this long when it goes back to the pool is closed (PostgreSQL and
    /// MySQL). Zero disables the server settings. Default 30 s.
    pub statement_timeout: Duration,
    /// PostgreSQL: the longest a statement waits for a row or table lock
    /// (`lock_timeout`, on every pooled connection) before it fails with a
    /// transient `Unavailable`. Zero disables it. Default 10 s.
    pub lock_timeout: Duration,
}

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Clone)]
enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "mysql")]
    Mysql(sqlx::MySqlPool),
}

/// A connection pool to SQLite, PostgreSQL or MySQL / MariaDB, with the schema's migrations and
/// every repository of [`isp_core::ports`].
///
/// ```no_run
/// # async fn demo() -> isp_core::Result<()> {
/// let store = isp_adapters_sql::SqlStore::connect("sqlite://isp.db").await?;
/// store.migrate().await?;
/// let repos = store.repositories();
/// # let _ = repos; Ok(()) }
/// ```
///
/// `Debug` shows the backend and the URL without its password.
#[derive(Clone)]
pub struct SqlStore {
    pool: Pool,
    /// The URL or path, password removed.
    description: String,
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend())
            .field("database", &self.description)
            .finish()
    }
}

impl SqlStore {
    /// Connects by URL: `sqlite://path/to/isp.db`, `sqlite:isp.db`,
    /// `sqlite::memory:`, `postgres://user:password@host:port/db`
    /// (`postgresql://` too), or `mysql://user:password@host:port/db`
    /// (`mariadb://` too). A SQLite file is created if missing.
    ///
    /// Errors name the URL without its password.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, SqlOptions::default()).await
    }

    /// [`SqlStore::connect`] with pool settings.
    pub async fn connect_with(url: &str, options: SqlOptions) -> Result<Self> {
        let scheme = url.split(':').next().unwrap_or("");
        match scheme {
            "sqlite" => {
                #[cfg(feature = "sqlite")]
                {
                    let pool = sqlite::connect_url(url, &options).await?;
                    Ok(SqlStore {
                        pool: Pool::Sqlite(pool),
                        description: row::redact_url(url),
                    })
                }
                #[cfg(not(feature = "sqlite"))]
                Err(Error::invalid(
                    "database_url",
                    row::redact_url(url),
                    "this build has no SQLite support (feature `sqlite`)",
                ))
            }
            "postgres" | "postgresql" => {
                #[cfg(feature = "postgres")]
                {
                    Self::connect_postgres_with(url, options).await
                }
                #[cfg(not(feature = "postgres"))]
                Err(Error::invalid(
                    "database_url",
                    row::redact_url(url),
                    "this build has no PostgreSQL support (feature `postgres`)",
                ))
            }
            "mysql" | "mariadb" => {
                #[cfg(feature = "mysql")]
                {
                    Self::connect_mysql_with(url, options).await
                }
                #[cfg(not(feature = "mysql"))]
                Err(Error::invalid(
                    "database_url",
                    row::redact_url(url),
                    "this build has no MySQL / MariaDB support (feature `mysql`)",
                ))
            }
            _ => Err(Error::invalid(
                "database_url",
                row::redact_url(url),
                "expected a sqlite://, postgres:// or mysql:// (mariadb://) URL",
            )),
        }
    }

    /// Opens (creating it if missing) the SQLite database file at `path`, in WAL mode.
    #[cfg(feature = "sqlite")]
    pub async fn connect_sqlite(path: impl AsRef<std::path::Path>) -> Result<Self> {
        Self::connect_sqlite_with(path, SqlOptions::default()).await
    }

    /// [`SqlStore::connect_sqlite`] with pool settings.
    #[cfg(feature = "sqlite")]
    pub async fn connect_sqlite_with(path: impl AsRef<std::path::Path>, options: SqlOptions) -> Result<Self> {
        let path = path.as_ref();
        let pool = sqlite::connect_file(path, &options).await?;
        Ok(SqlStore {
            pool: Pool::Sqlite(pool),
            description: path.display().to_string(),
        })
    }

    /// A fresh, private in-memory SQLite database (tests, demos). It lives as
    /// long as this store (and its clones).
    #[cfg(feature = "sqlite")]
    pub async fn connect_sqlite_memory() -> Result<Self> {
        let pool = sqlite::connect_memory(&SqlOptions::default()).await?;
        Ok(SqlStore {
            pool: Pool::Sqlite(pool),
            description: "sqlite::memory:".to_owned(),
        })
    }

    /// Connects to PostgreSQL (`postgres://user:password@host:port/db`).
    #[cfg(feature = "postgres")]
    pub async fn connect_postgres(url: &str) -> Result<Self> {
        Self::connect_postgres_with(url, SqlOptions::default()).await
    }

    /// [`SqlStore::connect_postgres`] with pool settings.
    #[cfg(feature = "postgres")]
    pub async fn connect_postgres_with(url: &str, options: SqlOptions) -> Result<Self> {
        let pool = postgres::connect_url(url, &options).await?;
        Ok(SqlStore {
            pool: Pool::Postgres(pool),
            description: row::redact_url(url),
        })
    }

    /// Connects to MySQL or MariaDB (`mysql://user:password@host:port/db`,
    /// `mariadb://` too).
    #[cfg(feature = "mysql")]
    pub async fn connect_mysql(url: &str) -> Result<Self> {
        Self::connect_mysql_with(url, SqlOptions::default()).await
    }

    /// [`SqlStore::connect_mysql`] with pool settings.
    #[cfg(feature = "mysql")]
    pub async fn connect_mysql_with(url: &str, options: SqlOptions) -> Result<Self> {
        let pool = mysql::connect_url(url, &options).await?;
        Ok(SqlStore {
            pool: Pool::Mysql(pool),
            description: row::redact_url(url),
        })
    }

    /// The database behind this store.
    pub fn backend(&self) -> Backend {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => Backend::Postgres,
            #[cfg(feature = "mysql")]
            Pool::Mysql(_) => Backend::Mysql,
        }
    }

    /// Brings the schema up to date with the migrations embedded in this build.
    ///
    /// Idempotent: running it again does nothing. A database that has
    /// migrations this build does not know (its schema is newer than the code)
    /// is refused with [`Error::Conflict`] and left untouched. On PostgreSQL
    /// (an advisory lock) and MySQL (`GET_LOCK`), concurrent callers serialize.
    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => {
                // SQLite has no advisory lock: two processes starting on a new
                // file both try the first migration, and the one that loses
                // fails on "table ... already exists". Each migration is its
                // own transaction, so running again after the other finished
                // applies only what is still missing.
                let mut attempt = 0;
                loop {
                    check_not_newer(&sqlite::MIGRATOR, sqlite::applied_versions(pool).await?)?;
                    match sqlite::MIGRATOR.run(pool).await {
                        Ok(()) => return Ok(()),
                        Err(e) if attempt < SQLITE_MIGRATE_ATTEMPTS => {
                            attempt += 1;
                            tracing::debug!(error = %e, attempt, "sqlite migration raced another process; again");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(e) => return Err(map_migrate_error(e)),
                    }
                }
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => {
                check_not_newer(&postgres::MIGRATOR, postgres::applied_versions(pool).await?)?;
                postgres::MIGRATOR.run(pool).await.map_err(map_migrate_error)
            }
            #[cfg(feature = "mysql")]
            Pool::Mysql(pool) => mysql::migrate(pool).await,
        }
    }

    /// The newest schema version this build knows.
    pub fn schema_version(&self) -> i64 {
        let migrator = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => &sqlite::MIGRATOR,
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => &postgres::MIGRATOR,
            #[cfg(feature = "mysql")]
            Pool::Mysql(_) => &mysql::MIGRATOR,
        };
        latest(migrator)
    }

    /// Explains every due-work statement (claims, read-only lists, next
    /// deadlines) with the parameters a job would pass at `now` for `tenant`
    /// (`today` is its local date). Runs nothing. For operators checking that
    /// each one is an index range scan, and for the tests and benchmarks that do.
    pub async fn explain_due_work(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        tenant: isp_core::domain::TenantId,
        today: chrono::NaiveDate,
    ) -> Result<Vec<QueryPlan>> {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => sqlite::repos::explain_due_work(pool, now, tenant, today).await,
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => postgres::repos::explain_due_work(pool, now, tenant, today).await,
            #[cfg(feature = "mysql")]
            Pool::Mysql(pool) => mysql::repos::explain_due_work(pool, now, tenant, today).await,
        }
    }

    /// Every repository, sharing this store's pool.
    pub fn repositories(&self) -> Repositories {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => sqlite::repos::all(pool),
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => postgres::repos::all(pool),
            #[cfg(feature = "mysql")]
            Pool::Mysql(pool) => mysql::repos::all(pool),
        }
    }

    /// The SQLite pool, for queries of your own (`None` on another database).
    #[cfg(feature = "sqlite")]
    pub fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        match &self.pool {
            Pool::Sqlite(p) => Some(p),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The PostgreSQL pool, for queries of your own (`None` on another database).
    #[cfg(feature = "postgres")]
    pub fn postgres_pool(&self) -> Option<&sqlx::PgPool> {
        match &self.pool {
            Pool::Postgres(p) => Some(p),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The MySQL / MariaDB pool, for queries of your own (`None` on another database).
    #[cfg(feature = "mysql")]
    pub fn mysql_pool(&self) -> Option<&sqlx::MySqlPool> {
        match &self.pool {
            Pool::Mysql(p) => Some(p),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Closes every connection; queries after this fail with `Unavailable`.
    pub async fn close(&self) {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => sqlite::close(p).await,
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => postgres::close(p).await,
            #[cfg(feature = "mysql")]
            Pool::Mysql(p) => mysql::close(p).await,
        }
    }
}

/// Pool options whose connections, on their way back to the pool, must
/// answer a ping within `limit` or be closed.
///
/// sqlx pings a released connection before reuse and waits without bound: a
/// connection whose call was dropped (a job run past the engine's
/// `run_timeout`) on a black-holed network would wait forever and keep its
/// pool slot, and a few of them would starve the pool.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn bounded_release<DB: sqlx::Database>(
    options: sqlx::pool::PoolOptions<DB>,
    limit: Duration,
) -> sqlx::pool::PoolOptions<DB> {
    use sqlx::Connection as _;
    let limit = if limit.is_zero() {
        Duration::from_secs(30)
    } else {
        limit
    };
    options.after_release(move |conn, _meta| {
        Box::pin(async move {
            let answered = tokio::time::timeout(limit, conn.ping()).await;
            if !matches!(answered, Ok(Ok(()))) {
                tracing::warn!(
                    limit_s = limit.as_secs_f64(),
                    "a database connection did not answer a ping on release; closed"
                );
                return Ok(false);
            }
            Ok(true)
        })
    })
}

fn latest(migrator: &sqlx::migrate::Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Refuses a database whose schema has migrations this build does not know.
fn check_not_newer(migrator: &sqlx::migrate::Migrator, applied: Vec<i64>) -> Result<()> {
    let unknown: Vec<String> = applied
        .into_iter()
        .filter(|v| !migrator.iter().any(|m| m.version == *v))
        .map(|v| v.to_string())
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(Error::conflict(
        "database schema",
        format!(
            "the database has migration(s) {} that this build does not know (it knows up to {}): \
             its schema is newer than this code; run a newer build of isp against it",
            unknown.join(", "),
            latest(migrator)
        ),
    ))
}

fn map_migrate_error(e: sqlx::migrate::MigrateError) -> Error {
    use sqlx::migrate::MigrateError as M;
    match e {
        M::Execute(inner) | M::ExecuteMigration(inner, _) => match inner {
            e @ (sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)) => {
                Error::unavailable_from("database", format!("migration failed: {e}"), e)
            }
            other => Error::Internal(format!("migration failed: {other}")),
        },
        M::VersionMissing(v) => Error::conflict(
            "database schema",
            format!("migration {v} was applied to the database but is not in this build"),
        ),
        M::VersionMismatch(v) => Error::conflict(
            "database schema",
            format!(
                "migration {v} in the database differs from the one in this build (edited after release?)"
            ),
        ),
        M::Dirty(v) => Error::conflict(
            "database schema",
            format!("migration {v} failed part-way earlier; repair the database by hand"),
        ),
        other => Error::Internal(format!("migration failed: {other}")),
    }
}
