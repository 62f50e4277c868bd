//! Grants: the paid time, its payment and the pending router grants, written
//! in one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

use crate::row::Fields as _;

use super::*;

const PENDING_COLS: &str =
    "subscriber_id, router_id, created_at, attempts, last_error, lease_holder, lease_until";
const PAYMENT_COLS: &str =
    "tenant_id, reference, subscriber_id, amount_micros, currency, paid_until, created_at";

/// [`GrantRepo`] over the `hotspot_payments` and `pending_grants` tables.
#[derive(Debug, Clone)]
pub(crate) struct Grants {
    pub(super) pool: DbPool,
}

fn pending(r: &DbRow) -> Result<PendingGrant> {
    let f = Cols::new(r, "pending_grants");
    Ok(PendingGrant {
        subscriber_id: SubscriberId(f.i64("subscriber_id")?),
        router_id: RouterId(f.i64("router_id")?),
        created_at: f.ts("created_at")?,
        attempts: f.u32("attempts")?,
        last_error: f.opt_string("last_error")?,
        lease: f.lease()?,
    })
}

fn payment(r: &DbRow) -> Result<Payment> {
    let f = Cols::new(r, "hotspot_payments");
    let units = f.i64("amount_micros")?;
    if units < 0 {
        return Err(Error::invalid(
            f.field("amount_micros"),
            units,
            "must not be negative",
        ));
    }
    Ok(Payment {
        tenant_id: TenantId(f.i64("tenant_id")?),
        reference: f.parse("reference", PaymentReference::parse)?,
        subscriber_id: SubscriberId(f.i64("subscriber_id")?),
        amount: Money::from_micro_units(units, f.parse("currency", Currency::parse)?),
        paid_until: f.ts("paid_until")?,
        created_at: f.ts("created_at")?,
    })
}

/// `(subscriber_id, router_id) IN ((..), ..)` for a batch of keys.
fn push_keys(q: &mut QueryBuilder<'_, Db>, keys: &[(SubscriberId, RouterId)]) {
    q.push("(subscriber_id, router_id) IN (");
    let mut list = q.separated(", ");
    for (s, r) in keys {
        list.push("(")
            .push_bind_unseparated(s.0)
            .push_unseparated(", ")
            .push_bind_unseparated(r.0)
            .push_unseparated(")");
    }
    q.push(")");
}

impl Grants {
    async fn find_payment<'e, E>(
        exec: E,
        tenant: TenantId,
        reference: &PaymentReference,
    ) -> Result<Option<Payment>>
    where
        E: sqlx::Executor<'e, Database = Db>,
    {
        let row = sqlx::query(&format!(
            "SELECT {PAYMENT_COLS} FROM hotspot_payments WHERE tenant_id = $1 AND reference = $2"
        ))
        .bind(tenant.0)
        .bind(reference.as_str())
        .fetch_optional(exec)
        .await
        .map_err(|e| map_sqlx_error("payment", e))?;
        row.as_ref().map(payment).transpose()
    }

    /// The transaction of [`GrantRepo::write`]; `Ok(None)` when the payment
    /// insert met a concurrent writer's (the caller then reads that one).
    async fn write_tx(&self, g: &GrantWrite) -> Result<Option<GrantWritten>> {
        let map = |e| map_sqlx_error("grant", e);
        let mut tx = begin_write(&self.pool).await.map_err(map)?;
        let tenant: Option<i64> = sqlx::query_scalar("SELECT tenant_id FROM subscribers WHERE id = $1")
            .bind(g.subscriber_id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map)?;
        let tenant = TenantId(tenant.ok_or_else(|| Error::not_found("subscriber", g.subscriber_id))?);
        if let Some(p) = &g.payment {
            if let Some(done) = Self::find_payment(&mut *tx, tenant, &p.reference).await? {
                return Ok(Some(GrantWritten::DuplicatePayment(done)));
            }
        }
        let row = sqlx::query(concat!(
            "UPDATE subscribers SET paid_until = $3, active = TRUE, disconnected_at = NULL, \
             attempts = 0, lease_holder = NULL, lease_until = NULL \
             WHERE id = $1 AND paid_until = $2 RETURNING ",
            cols!(subscribers)
        ))
        .bind(g.subscriber_id.0)
        .bind(ts(g.paid_until_seen))
        .bind(ts(g.paid_until))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        let Some(row) = row else {
            return Ok(Some(GrantWritten::Stale));
        };
        let sub = row::subscriber(&Cols::new(&row, "subscribers"))?;
        if let Some(p) = &g.payment {
            let inserted = sqlx::query(
                "INSERT INTO hotspot_payments (tenant_id, reference, subscriber_id, amount_micros, \
                 currency, paid_until, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(tenant.0)
            .bind(p.reference.as_str())
            .bind(sub.id.0)
            .bind(p.amount.to_micro_units()?)
            .bind(p.amount.currency.as_str())
            .bind(ts(g.paid_until))
            .bind(ts(g.at))
            .execute(&mut *tx)
            .await;
            match inserted.map_err(|e| map_sqlx_error("payment", e)) {
                Ok(_) => {}
                Err(e) if e.is_conflict() => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        for chunk in g.routers.chunks(BATCH_CHUNK) {
            let mut q = QueryBuilder::<Db>::new(
                "INSERT INTO pending_grants (subscriber_id, router_id, created_at, attempts, last_error, \
                 lease_holder, lease_until) ",
            );
            q.push_values(chunk, |mut b, router| {
                b.push_bind(sub.id.0)
                    .push_bind(router.0)
                    .push_bind(ts(g.at))
                    .push("0")
                    .push("NULL")
                    .push_bind(g.holder.as_str())
                    .push_bind(ts(g.lease_until));
            });
            q.push(
                " ON CONFLICT (subscriber_id, router_id) DO UPDATE SET created_at = excluded.created_at, \
                 attempts = 0, last_error = NULL, lease_holder = excluded.lease_holder, \
                 lease_until = excluded.lease_until",
            );
            q.build().execute(&mut *tx).await.map_err(map)?;
        }
        tx.commit().await.map_err(map)?;
        Ok(Some(GrantWritten::Applied(sub)))
    }
}

#[async_trait]
impl GrantRepo for Grants {
    async fn write(&self, grant: &GrantWrite) -> Result<GrantWritten> {
        if let Some(done) = self.write_tx(grant).await? {
            return Ok(done);
        }
        // A concurrent writer recorded the same reference first (PostgreSQL:
        // its insert committed between our read and ours); ours rolled back.
        let sub = row_tenant(&self.pool, grant.subscriber_id).await?;
        let reference = grant
            .payment
            .as_ref()
            .map(|p| &p.reference)
            .ok_or_else(|| Error::Internal("a payment conflict without a payment".into()))?;
        match Self::find_payment(&self.pool, sub, reference).await? {
            Some(p) => Ok(GrantWritten::DuplicatePayment(p)),
            None => Ok(GrantWritten::Stale),
        }
    }

    async fn payment(&self, tenant: TenantId, reference: &PaymentReference) -> Result<Option<Payment>> {
        Self::find_payment(&self.pool, tenant, reference).await
    }

    async fn claim_pending(&self, claim: &Claim) -> Result<Vec<PendingGrant>> {
        let sql = format!(
            "UPDATE pending_grants SET lease_holder = $1, lease_until = $2 \
             WHERE (subscriber_id, router_id) IN (SELECT subscriber_id, router_id FROM pending_grants \
             WHERE {free} ORDER BY created_at, subscriber_id, router_id LIMIT $4{CLAIM_LOCK}) AND {free} \
             RETURNING {PENDING_COLS}",
            free = free!(3),
        );
        let rows = sqlx::query(&sql)
            .bind(claim.holder.as_str())
            .bind(ts(claim.until))
            .bind(ts(claim.now))
            .bind(row::limit(claim.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("pending grant", e))?;
        let mut out = rows.iter().map(pending).collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| {
            (a.created_at, a.subscriber_id, a.router_id).cmp(&(b.created_at, b.subscriber_id, b.router_id))
        });
        Ok(out)
    }

    async fn complete(&self, done: &[(SubscriberId, RouterId)], holder: &str) -> Result<Vec<bool>> {
        let map = |e| map_sqlx_error("pending grant", e);
        let mut deleted = std::collections::HashSet::new();
        for chunk in done.chunks(BATCH_CHUNK) {
            let mut q = QueryBuilder::<Db>::new("DELETE FROM pending_grants WHERE ");
            push_keys(&mut q, chunk);
            q.push(" AND (lease_holder IS NULL OR lease_holder = ")
                .push_bind(holder)
                .push(") RETURNING subscriber_id, router_id");
            for r in q.build().fetch_all(&self.pool).await.map_err(map)? {
                let f = Cols::new(&r, "pending_grants");
                deleted.insert((
                    SubscriberId(f.i64("subscriber_id")?),
                    RouterId(f.i64("router_id")?),
                ));
            }
        }
        Ok(done.iter().map(|k| deleted.contains(k)).collect())
    }

    async fn retry_later(
        &self,
        items: &[(SubscriberId, RouterId)],
        holder: &str,
        until: DateTime<Utc>,
        error: &str,
    ) -> Result<()> {
        let map = |e| map_sqlx_error("pending grant", e);
        for chunk in items.chunks(BATCH_CHUNK) {
            let mut q =
                QueryBuilder::<Db>::new("UPDATE pending_grants SET attempts = attempts + 1, last_error = ");
            q.push_bind(error)
                .push(", lease_holder = ")
                .push_bind(RETRY_HOLDER)
                .push(", lease_until = ")
                .push_bind(ts(until))
                .push(" WHERE lease_holder = ")
                .push_bind(holder)
                .push(" AND ");
            push_keys(&mut q, chunk);
            q.build().execute(&self.pool).await.map_err(map)?;
        }
        Ok(())
    }

    async fn cancel_of(&self, subscriber: SubscriberId) -> Result<u64> {
        let done = sqlx::query("DELETE FROM pending_grants WHERE subscriber_id = $1")
            .bind(subscriber.0)
            .execute(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("pending grant", e))?;
        Ok(done.rows_affected())
    }

    async fn pending_of(&self, subscriber: SubscriberId) -> Result<Vec<PendingGrant>> {
        let rows = sqlx::query(&format!(
            "SELECT {PENDING_COLS} FROM pending_grants WHERE subscriber_id = $1 ORDER BY router_id"
        ))
        .bind(subscriber.0)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("pending grant", e))?;
        rows.iter().map(pending).collect()
    }

    async fn next_due_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let row = sqlx::query(
            "SELECT lease_until FROM pending_grants WHERE lease_until > $1 ORDER BY lease_until LIMIT 1",
        )
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("pending grant", e))?;
        row.map(|r| Cols::new(&r, "pending_grants").ts("lease_until"))
            .transpose()
    }

    async fn count_pending(&self, now: DateTime<Utc>) -> Result<(u64, u64)> {
        let row = sqlx::query(concat!(
            "SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN ",
            free!(1),
            " THEN 1 ELSE 0 END), 0) AS due FROM pending_grants"
        ))
        .bind(ts(now))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("pending grant", e))?;
        let f = Cols::new(&row, "pending_grants");
        Ok((
            row::count("total", f.i64("total")?)?,
            row::count("due", f.i64("due")?)?,
        ))
    }
}

/// The tenant of a subscriber (`NotFound`).
async fn row_tenant(pool: &DbPool, id: SubscriberId) -> Result<TenantId> {
    let tenant: Option<i64> = sqlx::query_scalar("SELECT tenant_id FROM subscribers WHERE id = $1")
        .bind(id.0)
        .fetch_optional(pool)
        .await
        .map_err(|e| map_sqlx_error("subscriber", e))?;
    tenant
        .map(TenantId)
        .ok_or_else(|| Error::not_found("subscriber", id))
}
