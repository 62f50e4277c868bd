//! Shared test support: the PostgreSQL harness and the bulk loader (both from
//! isp-testsupport), and the SQL checks.

#![allow(dead_code)]

pub(crate) mod checks;
/// Used by the MySQL tests only.
#[cfg(feature = "mysql")]
#[allow(unused_imports)]
pub(crate) use isp_testsupport::mariadb;
/// Used by the PostgreSQL tests only (the SQLite test binary includes this module too).
#[cfg(feature = "postgres")]
#[allow(unused_imports)]
pub(crate) use isp_testsupport::pg;

/// isp-testsupport's bulk loader, fed a store's pool.
pub(crate) mod bulk {
    use chrono::{DateTime, NaiveDate, Utc};
    use isp_adapters_sql::{Backend, SqlStore};
    use isp_testsupport::bulk::{self as shared, Dialect, Pool};

    pub(crate) use shared::due_count;

    /// Loads `n` rows into each due-work table of `store`, then `ANALYZE`.
    pub(crate) async fn populate(store: &SqlStore, n: i64, now: DateTime<Utc>, today: NaiveDate) {
        let pool = match store.backend() {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => Pool::Sqlite(store.sqlite_pool().expect("sqlite pool")),
            #[cfg(feature = "postgres")]
            Backend::Postgres => Pool::Postgres(store.postgres_pool().expect("postgres pool")),
            #[cfg(feature = "mysql")]
            Backend::Mysql => Pool::Mysql(store.mysql_pool().expect("mysql pool")),
            #[allow(unreachable_patterns)]
            other => unreachable!("built without {other:?}"),
        };
        shared::populate(pool, n, now, today).await;
    }

    /// Why `plan` is not an index range scan on its table, if it is not.
    pub(crate) fn plan_problem(backend: Backend, name: &str, plan: &str) -> Option<String> {
        let dialect = match backend {
            Backend::Sqlite => Dialect::Sqlite,
            Backend::Postgres => Dialect::Postgres,
            Backend::Mysql => Dialect::Mysql,
        };
        shared::plan_problem(dialect, name, plan)
    }
}

/// One line on stderr past libtest's capture (what a run used).
pub(crate) fn say(text: &str) {
    isp_testsupport::skip::say(text);
}
