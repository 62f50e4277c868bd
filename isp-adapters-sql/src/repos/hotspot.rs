//! Hotspot subscribers and their devices.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use sqlx::Row;

use isp_core::domain::*;
use isp_core::ports::*;
use isp_core::{Error, Result};

use super::*;
use crate::row::{self, Fields as _};

/// Expired, still active subscribers (read only).
pub(super) const LIST_EXPIRED: &str = concat!(
    "SELECT ",
    cols!(subscribers),
    " FROM subscribers WHERE active AND paid_until <= $1 ORDER BY paid_until, id LIMIT $2"
);

/// Claims expired, still active subscribers: $1 holder, $2 until, $3 now, $4 limit.
pub(super) static CLAIM_EXPIRED: LazyLock<String> = LazyLock::new(|| {
    claim_sql(
        "subscribers",
        "lease_holder = $1, lease_until = $2",
        concat!(
            "SELECT id FROM subscribers WHERE active AND paid_until <= $3 AND ",
            free!(3),
            " ORDER BY paid_until, id LIMIT $4"
        ),
        free!(3),
        cols!(subscribers),
    )
});

/// Active subscribers with `$1 < paid_until <= $2`, soonest first.
pub(super) const EXPIRING_BETWEEN: &str = concat!(
    "SELECT ",
    cols!(subscribers),
    " FROM subscribers WHERE active AND paid_until > $1 AND paid_until <= $2 \
     ORDER BY paid_until, id LIMIT $3"
);

/// The next `paid_until` after $1.
pub(super) const NEXT_EXPIRY: &str =
    "SELECT paid_until FROM subscribers WHERE active AND paid_until > $1 ORDER BY paid_until LIMIT 1";

/// Hotspot subscribers.
#[derive(Debug, Clone)]
pub(crate) struct Subscribers {
    pub(super) pool: DbPool,
}

impl Subscribers {
    fn one(row: Option<DbRow>, id: SubscriberId) -> Result<Subscriber> {
        let row = row.ok_or_else(|| Error::not_found("subscriber", id))?;
        row::subscriber(&Cols::new(&row, "subscribers"))
    }

    fn many(rows: Vec<DbRow>) -> Result<Vec<Subscriber>> {
        decode_all(rows, "subscribers", |c| row::subscriber(c))
    }
}

#[async_trait]
impl SubscriberRepo for Subscribers {
    async fn insert(&self, new: &NewSubscriber) -> Result<Subscriber> {
        let row = query(concat!(
            "INSERT INTO subscribers (tenant_id, phone, username, paid_until, active, attempts) \
             VALUES ($1, $2, $3, $4, TRUE, 0) RETURNING ",
            cols!(subscribers)
        ))
        .bind(new.tenant_id.0)
        .bind(new.phone.as_str())
        .bind(new.username.as_str())
        .bind(ts(new.paid_until))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| map_insert_error(e, "subscriber", "username", new.tenant_id, new.username.as_str()))?;
        row::subscriber(&Cols::new(&row, "subscribers"))
    }

    async fn get(&self, id: SubscriberId) -> Result<Subscriber> {
        let row = query(concat!(
            "SELECT ",
            cols!(subscribers),
            " FROM subscribers WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("subscriber", e))?;
        Self::one(row, id)
    }

    async fn find_by_phone(&self, tenant: TenantId, phone: &PhoneNumber) -> Result<Option<Subscriber>> {
        let row = query(concat!(
            "SELECT ",
            cols!(subscribers),
            " FROM subscribers WHERE tenant_id = $1 AND phone = $2"
        ))
        .bind(tenant.0)
        .bind(phone.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("subscriber", e))?;
        row.map(|r| row::subscriber(&Cols::new(&r, "subscribers")))
            .transpose()
    }

    async fn extend(&self, id: SubscriberId, paid_until: DateTime<Utc>) -> Result<Subscriber> {
        let row = query(concat!(
            "UPDATE subscribers SET paid_until = $2, active = TRUE, disconnected_at = NULL, \
             attempts = 0, lease_holder = NULL, lease_until = NULL WHERE id = $1 RETURNING ",
            cols!(subscribers)
        ))
        .bind(id.0)
        .bind(ts(paid_until))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("subscriber", e))?;
        Self::one(row, id)
    }

    async fn list_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Subscriber>> {
        let rows = query(LIST_EXPIRED)
            .bind(ts(now))
            .bind(row::limit(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("subscriber", e))?;
        Self::many(rows)
    }

    async fn claim_expired(&self, claim: &Claim) -> Result<Vec<Subscriber>> {
        let rows = query(CLAIM_EXPIRED.as_str())
            .bind(claim.holder.as_str())
            .bind(ts(claim.until))
            .bind(ts(claim.now))
            .bind(row::limit(claim.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("subscriber", e))?;
        let mut out = Self::many(rows)?;
        out.sort_by(|a, b| a.paid_until.cmp(&b.paid_until).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn expiring_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Subscriber>> {
        let rows = query(EXPIRING_BETWEEN)
            .bind(ts(from))
            .bind(ts(to))
            .bind(row::limit(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("subscriber", e))?;
        Self::many(rows)
    }

    async fn complete_expiries(
        &self,
        items: &[ExpiryDone],
        holder: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let map = |e| map_sqlx_error("subscriber", e);
        let mut done = std::collections::HashSet::new();
        let mut tx = begin_write(&self.pool).await.map_err(map)?;
        for chunk in items.chunks(BATCH_CHUNK) {
            let mut q = Builder::new(
                "UPDATE subscribers SET lease_holder = NULL, lease_until = NULL WHERE lease_holder = ",
            );
            q.push_bind(holder).push(" AND id IN (");
            let mut list = q.separated(", ");
            for item in chunk {
                list.push_bind(item.id.0);
            }
            q.push(")");
            q.build().execute(&mut *tx).await.map_err(map)?;

            let mut q =
                Builder::new("UPDATE subscribers SET active = FALSE, attempts = 0, disconnected_at = ");
            q.push_bind(ts(at)).push(" WHERE active AND (");
            for (i, item) in chunk.iter().enumerate() {
                if i > 0 {
                    q.push(" OR ");
                }
                q.push("(id = ")
                    .push_bind(item.id.0)
                    .push(" AND paid_until = ")
                    .push_bind(ts(item.paid_until_seen))
                    .push(")");
            }
            q.push(") RETURNING id");
            let rows = q.build().fetch_all(&mut *tx).await.map_err(map)?;
            for r in &rows {
                let id: i64 = r
                    .try_get(0)
                    .map_err(|e| Error::invalid("subscribers.id", "(undecodable)", e.to_string()))?;
                done.insert(id);
            }
        }
        tx.commit().await.map_err(map)?;
        Ok(items.iter().map(|i| done.contains(&i.id.0)).collect())
    }

    async fn next_expiry_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let row = query(NEXT_EXPIRY)
            .bind(ts(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("subscriber", e))?;
        row.map(|r| Cols::new(&r, "subscribers").ts("paid_until"))
            .transpose()
    }

    async fn count_entitled(&self, now: DateTime<Utc>) -> Result<u64> {
        let row = query("SELECT COUNT(*) FROM subscribers WHERE active AND paid_until > $1")
            .bind(ts(now))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("subscriber", e))?;
        count_of(&row, "subscribers.count")
    }

    async fn active_of_tenant(&self, tenant: TenantId) -> Result<Vec<Subscriber>> {
        // Decoded row by row as they stream in: a tenant can have tens of
        // thousands, and holding every raw row besides the decoded ones
        // doubled the sync job's peak memory.
        let mut rows = query(concat!(
            "SELECT ",
            cols!(subscribers),
            " FROM subscribers WHERE tenant_id = $1 AND active ORDER BY id"
        ))
        .bind(tenant.0)
        .fetch(&self.pool);
        let mut out = Vec::new();
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(|e| map_sqlx_error("subscriber", e))?
        {
            out.push(row::subscriber(&Cols::new(&row, "subscribers"))?);
        }
        Ok(out)
    }

    // --- Counts for the health summary (issue 16). ---

    async fn count_expired(&self, now: DateTime<Utc>) -> Result<u64> {
        let row = query("SELECT COUNT(*) FROM subscribers WHERE active AND paid_until <= $1")
            .bind(ts(now))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("subscriber", e))?;
        count_of(&row, "subscribers.count")
    }

    async fn count_expiring_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<u64> {
        let row =
            query("SELECT COUNT(*) FROM subscribers WHERE active AND paid_until > $1 AND paid_until <= $2")
                .bind(ts(from))
                .bind(ts(to))
                .fetch_one(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("subscriber", e))?;
        count_of(&row, "subscribers.count")
    }
}

// ---------------------------------------------------------------- devices

/// Devices of hotspot subscribers.
#[derive(Debug, Clone)]
pub(crate) struct Devices {
    pub(super) pool: DbPool,
}

#[async_trait]
impl DeviceRepo for Devices {
    async fn record_seen(
        &self,
        subscriber: SubscriberId,
        mac: MacAddress,
        router: Option<RouterId>,
        at: DateTime<Utc>,
    ) -> Result<Device> {
        let row = query(concat!(
            "INSERT INTO devices (subscriber_id, mac, router_id, last_seen, active) \
             VALUES ($1, $2, $3, $4, TRUE) \
             ON CONFLICT (subscriber_id, mac) DO UPDATE SET router_id = excluded.router_id, \
             last_seen = excluded.last_seen, active = TRUE RETURNING ",
            cols!(devices)
        ))
        .bind(subscriber.0)
        .bind(mac.to_string())
        .bind(router.map(|r| r.0))
        .bind(ts(at))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("device", e))?;
        row::device(&Cols::new(&row, "devices"))
    }

    async fn active_of(&self, subscribers: &[SubscriberId]) -> Result<Vec<Device>> {
        let mut out = Vec::new();
        for chunk in subscribers.chunks(500) {
            let mut q = Builder::new(concat!(
                "SELECT ",
                cols!(devices),
                " FROM devices WHERE active AND subscriber_id IN ("
            ));
            let mut list = q.separated(", ");
            for s in chunk {
                list.push_bind(s.0);
            }
            q.push(") ORDER BY id");
            let rows = q
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("device", e))?;
            out.extend(decode_all(rows, "devices", |c| row::device(c))?);
        }
        out.sort_by_key(|d| d.id);
        Ok(out)
    }

    async fn deactivate_all_of(&self, subscribers: &[SubscriberId]) -> Result<u64> {
        if subscribers.is_empty() {
            return Ok(0);
        }
        let map = |e| map_sqlx_error("device", e);
        let mut n = 0;
        let mut tx = begin_write(&self.pool).await.map_err(map)?;
        for chunk in subscribers.chunks(BATCH_CHUNK) {
            let mut q = Builder::new("UPDATE devices SET active = FALSE WHERE active AND subscriber_id IN (");
            let mut list = q.separated(", ");
            for s in chunk {
                list.push_bind(s.0);
            }
            q.push(")");
            n += q.build().execute(&mut *tx).await.map_err(map)?.rows_affected();
        }
        tx.commit().await.map_err(map)?;
        Ok(n)
    }

    async fn delete_unseen_since(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let n = query("DELETE FROM devices WHERE last_seen < $1")
            .bind(ts(cutoff))
            .execute(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("device", e))?
            .rows_affected();
        Ok(n)
    }
}
