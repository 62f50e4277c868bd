//! Opening the configured storage: SQLite (the embedded default), PostgreSQL,
//! MySQL / MariaDB, MongoDB, or memory.

#[cfg(feature = "mongodb")]
use isp_adapters_mongo::MongoStore;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use isp_adapters_sql::{SqlOptions, SqlStore};
use isp_core::memory::MemoryStore;
use isp_core::ports::Repositories;
use isp_core::Result;
use secrecy::ExposeSecret;

use crate::config::{StorageConfig, StorageUrl};

/// An open storage and its repositories. Keep it alive while the repositories are used.
#[derive(Debug, Clone)]
pub struct Storage {
    /// Every repository.
    pub repos: Repositories,
    /// What it is, safe to print (`sqlite:///var/lib/ispd/ispd.db`).
    pub description: String,
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    Sql(SqlStore),
    #[cfg(feature = "mongodb")]
    Mongo(MongoStore),
    Memory(#[allow(dead_code)] MemoryStore),
}

/// The error for a URL whose backend this build left out.
#[allow(dead_code)] // unused when every backend is built in
fn left_out(config: &StorageConfig, feature: &str) -> isp_core::Error {
    isp_core::Error::invalid(
        "storage.url",
        config.url.redacted(),
        format!(
            "this ispd was built without the `{feature}` feature; rebuild it with `--features {feature}` or use another storage URL"
        ),
    )
}

impl Storage {
    /// Connects. With `migrate`, brings the schema up to date first (SQL
    /// migrations, MongoDB indexes); without it, nothing is changed.
    ///
    /// A database that cannot be reached gives a transient
    /// [`isp_core::Error::Unavailable`]; a schema newer than this build gives
    /// [`isp_core::Error::Conflict`].
    pub async fn open(config: &StorageConfig, migrate: bool) -> Result<Self> {
        #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
        let options = SqlOptions {
            max_connections: config.max_connections,
            acquire_timeout: config.acquire_timeout,
            statement_timeout: config.statement_timeout,
            lock_timeout: config.lock_timeout,
            ..SqlOptions::default()
        };
        let storage = match &config.url {
            #[cfg(not(feature = "sqlite"))]
            StorageUrl::Sqlite(_) => return Err(left_out(config, "sqlite")),
            #[cfg(feature = "sqlite")]
            StorageUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    if !dir.exists() {
                        return Err(isp_core::Error::unavailable(
                            "database",
                            format!(
                                "the directory {} of the SQLite database does not exist",
                                dir.display()
                            ),
                        ));
                    }
                }
                let store = SqlStore::connect_sqlite_with(path, options).await?;
                Storage {
                    repos: store.repositories(),
                    description: config.url.redacted(),
                    backend: Backend::Sql(store),
                }
            }
            #[cfg(not(feature = "postgres"))]
            StorageUrl::Postgres(_) => return Err(left_out(config, "postgres")),
            #[cfg(feature = "postgres")]
            StorageUrl::Postgres(url) => {
                let store = SqlStore::connect_postgres_with(url.expose_secret(), options).await?;
                Storage {
                    repos: store.repositories(),
                    description: config.url.redacted(),
                    backend: Backend::Sql(store),
                }
            }
            #[cfg(not(feature = "mysql"))]
            StorageUrl::Mysql(_) => return Err(left_out(config, "mysql")),
            #[cfg(feature = "mysql")]
            StorageUrl::Mysql(url) => {
                let store = SqlStore::connect_mysql_with(url.expose_secret(), options).await?;
                Storage {
                    repos: store.repositories(),
                    description: config.url.redacted(),
                    backend: Backend::Sql(store),
                }
            }
            #[cfg(not(feature = "mongodb"))]
            StorageUrl::Mongo { .. } => return Err(left_out(config, "mongodb")),
            #[cfg(feature = "mongodb")]
            StorageUrl::Mongo { url, database } => {
                let store = MongoStore::connect(url.expose_secret(), database).await?;
                Storage {
                    repos: store.repositories(),
                    description: config.url.redacted(),
                    backend: Backend::Mongo(store),
                }
            }
            StorageUrl::Memory => {
                let store = MemoryStore::new();
                Storage {
                    repos: store.repositories(),
                    description: "memory".into(),
                    backend: Backend::Memory(store),
                }
            }
        };
        if migrate {
            storage.migrate().await?;
        }
        Ok(storage)
    }

    /// Brings the schema up to date (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        match &self.backend {
            #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
            Backend::Sql(s) => s.migrate().await,
            #[cfg(feature = "mongodb")]
            Backend::Mongo(m) => m.ensure_indexes().await,
            Backend::Memory(_) => Ok(()),
        }
    }

    /// The schema version this build brings SQL databases to (`None` for others).
    pub fn schema_version(&self) -> Option<i64> {
        match &self.backend {
            #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
            Backend::Sql(s) => Some(s.schema_version()),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Closes connections (SQL pools; others close on drop).
    pub async fn close(&self) {
        #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
        if let Backend::Sql(s) = &self.backend {
            s.close().await;
        }
    }
}
