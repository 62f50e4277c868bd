//! Opening the configured storage: SQLite (the embedded default), PostgreSQL,
//! MongoDB, or memory.

use std::time::Duration;

use isp_adapters_mongo::MongoStore;
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
    Sql(SqlStore),
    Mongo(MongoStore),
    Memory(#[allow(dead_code)] MemoryStore),
}

impl Storage {
    /// Connects. With `migrate`, brings the schema up to date first (SQL
    /// migrations, MongoDB indexes); without it, nothing is changed.
    ///
    /// A database that cannot be reached gives a transient
    /// [`isp_core::Error::Unavailable`]; a schema newer than this build gives
    /// [`isp_core::Error::Conflict`].
    pub async fn open(config: &StorageConfig, migrate: bool) -> Result<Self> {
        let options = SqlOptions {
            max_connections: config.max_connections,
            acquire_timeout: Duration::from_secs(10),
            ..SqlOptions::default()
        };
        let storage = match &config.url {
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
            StorageUrl::Postgres(url) => {
                let store = SqlStore::connect_postgres_with(url.expose_secret(), options).await?;
                Storage {
                    repos: store.repositories(),
                    description: config.url.redacted(),
                    backend: Backend::Sql(store),
                }
            }
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
            Backend::Sql(s) => s.migrate().await,
            Backend::Mongo(m) => m.ensure_indexes().await,
            Backend::Memory(_) => Ok(()),
        }
    }

    /// The schema version this build brings SQL databases to (`None` for others).
    pub fn schema_version(&self) -> Option<i64> {
        match &self.backend {
            Backend::Sql(s) => Some(s.schema_version()),
            _ => None,
        }
    }

    /// Closes connections (SQL pools; others close on drop).
    pub async fn close(&self) {
        if let Backend::Sql(s) = &self.backend {
            s.close().await;
        }
    }
}
