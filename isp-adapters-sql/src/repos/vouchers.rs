//! Vouchers.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use isp_core::domain::*;
use isp_core::ports::*;
use isp_core::{Error, Result};

use super::*;
use crate::row::{self, Fields as _};

/// Vouchers whose deadline passed (read only).
pub(super) const LIST_DUE: &str = concat!(
    "SELECT ",
    cols!(vouchers),
    " FROM vouchers WHERE deadline IS NOT NULL AND deadline <= $1 ORDER BY deadline, id LIMIT $2"
);

/// Claims vouchers whose deadline passed: $1 holder, $2 until, $3 now, $4 limit.
pub(super) static CLAIM_DUE: LazyLock<String> = LazyLock::new(|| {
    claim_sql(
        "vouchers",
        "lease_holder = $1, lease_until = $2",
        concat!(
            "SELECT id FROM vouchers WHERE deadline IS NOT NULL AND deadline <= $3 AND ",
            free!(3),
            " ORDER BY deadline, id LIMIT $4"
        ),
        free!(3),
        cols!(vouchers),
    )
});

/// The earliest deadline after $1.
pub(super) const NEXT_DEADLINE: &str =
    "SELECT deadline FROM vouchers WHERE deadline IS NOT NULL AND deadline > $1 ORDER BY deadline LIMIT 1";

/// Vouchers.
#[derive(Debug, Clone)]
pub(crate) struct Vouchers {
    pub(super) pool: DbPool,
}

const VOUCHER_EXISTS: &str = "SELECT 1 FROM vouchers WHERE id = $1";

impl Vouchers {
    fn many(rows: Vec<DbRow>) -> Result<Vec<Voucher>> {
        decode_all(rows, "vouchers", |c| row::voucher(c))
    }
}

#[async_trait]
impl VoucherRepo for Vouchers {
    async fn insert(&self, new: &NewVoucher) -> Result<Voucher> {
        let row = query(concat!(
            "INSERT INTO vouchers (tenant_id, router_id, code, plan_id, status, activation_deadline, \
             purchase_deadline, duration_ms, removed_from_router, attempts) \
             VALUES ($1, $2, $3, $4, 'unused', $5, $6, $7, FALSE, 0) RETURNING ",
            cols!(vouchers)
        ))
        .bind(new.tenant_id.0)
        .bind(new.router_id.0)
        .bind(new.code.as_str())
        .bind(new.plan_id.0)
        .bind(new.activation_deadline.map(ts))
        .bind(new.purchase_deadline.map(ts))
        .bind(row::duration_to_ms(new.duration))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| map_insert_error(e, "voucher", "code", new.tenant_id, new.code.as_str()))?;
        row::voucher(&Cols::new(&row, "vouchers"))
    }

    async fn get(&self, id: VoucherId) -> Result<Voucher> {
        let row = query(concat!(
            "SELECT ",
            cols!(vouchers),
            " FROM vouchers WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("voucher", e))?
        .ok_or_else(|| Error::not_found("voucher", id))?;
        row::voucher(&Cols::new(&row, "vouchers"))
    }

    async fn find_by_code(&self, tenant: TenantId, code: &RosName) -> Result<Option<Voucher>> {
        let row = query(concat!(
            "SELECT ",
            cols!(vouchers),
            " FROM vouchers WHERE tenant_id = $1 AND code = $2"
        ))
        .bind(tenant.0)
        .bind(code.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("voucher", e))?;
        row.map(|r| row::voucher(&Cols::new(&r, "vouchers"))).transpose()
    }

    async fn activate(&self, id: VoucherId, started_at: DateTime<Utc>) -> Result<Voucher> {
        // The end is computed here (exact, in Rust) from the stored duration; the
        // update is a compare-and-set on `unused`, so two first uses cannot both win.
        let current = self.get(id).await?;
        if current.status != VoucherStatus::Unused {
            return Err(Error::conflict(
                "voucher",
                format!(
                    "voucher {} is {}, not unused",
                    current.code,
                    current.status.as_str()
                ),
            ));
        }
        let expected_end = started_at + current.duration.as_chrono();
        let row = query(concat!(
            "UPDATE vouchers SET status = 'active', started_at = $2, expected_end = $3 \
             WHERE id = $1 AND status = 'unused' RETURNING ",
            cols!(vouchers)
        ))
        .bind(id.0)
        .bind(ts(started_at))
        .bind(ts(expected_end))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("voucher", e))?;
        match row {
            Some(row) => row::voucher(&Cols::new(&row, "vouchers")),
            None => {
                let now = self.get(id).await?;
                Err(Error::conflict(
                    "voucher",
                    format!("voucher {} is {}, not unused", now.code, now.status.as_str()),
                ))
            }
        }
    }

    async fn list_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Voucher>> {
        let rows = query(LIST_DUE)
            .bind(ts(now))
            .bind(row::limit(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("voucher", e))?;
        Self::many(rows)
    }

    async fn claim_due(&self, claim: &Claim) -> Result<Vec<Voucher>> {
        let rows = query(CLAIM_DUE.as_str())
            .bind(claim.holder.as_str())
            .bind(ts(claim.until))
            .bind(ts(claim.now))
            .bind(row::limit(claim.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("voucher", e))?;
        let mut out = Self::many(rows)?;
        out.sort_by(|a, b| a.deadline().cmp(&b.deadline()).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn expire(
        &self,
        id: VoucherId,
        seen: VoucherStatus,
        reason: VoucherExpiryReason,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let n = query(
            "UPDATE vouchers SET status = 'expired', expired_reason = $3, expired_at = $4 \
             WHERE id = $1 AND status = $2 AND status <> 'expired'",
        )
        .bind(id.0)
        .bind(seen.as_str())
        .bind(reason.as_str())
        .bind(ts(at))
        .execute(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("voucher", e))?
        .rows_affected();
        if n > 0 {
            return Ok(true);
        }
        guard_refused(&self.pool, "voucher", VOUCHER_EXISTS, id.0).await
    }

    async fn mark_removed(&self, id: VoucherId, holder: &str) -> Result<bool> {
        let n = query(
            "UPDATE vouchers SET removed_from_router = TRUE, lease_holder = NULL, lease_until = NULL, \
             attempts = 0 WHERE id = $1 AND status IN ('expired', 'revoked') \
             AND (lease_holder IS NULL OR lease_holder = $2)",
        )
        .bind(id.0)
        .bind(holder)
        .execute(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("voucher", e))?
        .rows_affected();
        if n > 0 {
            return Ok(true);
        }
        guard_refused(&self.pool, "voucher", VOUCHER_EXISTS, id.0).await
    }

    async fn on_router(&self, router: RouterId, statuses: &[VoucherStatus]) -> Result<Vec<Voucher>> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Builder::new(concat!(
            "SELECT ",
            cols!(vouchers),
            " FROM vouchers WHERE router_id = "
        ));
        q.push_bind(router.0);
        q.push(" AND status IN (");
        let mut list = q.separated(", ");
        for s in statuses {
            list.push_bind(s.as_str());
        }
        q.push(") ORDER BY id");
        let rows = q
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("voucher", e))?;
        Self::many(rows)
    }

    async fn next_deadline_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let row = query(NEXT_DEADLINE)
            .bind(ts(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("voucher", e))?;
        row.map(|r| Cols::new(&r, "vouchers").ts("deadline")).transpose()
    }
}
