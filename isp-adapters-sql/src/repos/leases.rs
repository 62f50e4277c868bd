//! Named leases.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use isp_core::ports::*;
use isp_core::Result;

use super::*;

/// Named leases.
#[derive(Debug, Clone)]
pub(crate) struct Leases {
    pub(super) pool: DbPool,
}

#[async_trait]
impl LeaseRepo for Leases {
    async fn acquire(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        // One statement: insert, or take over when ours or expired. A refused
        // upsert returns no row.
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $4) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE leases.holder = excluded.holder OR leases.until <= $3 RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(ts(now))
        .bind(ts(until))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("lease", e))?;
        Ok(row.is_some())
    }

    async fn release(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("lease", e))?;
        Ok(())
    }
}
