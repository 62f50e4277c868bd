//! Notices (SMS owed).

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use isp_core::domain::*;
use isp_core::ports::*;
use isp_core::{Error, Result};

use super::*;
use crate::row::{self, Fields as _};

/// Pending notices, unleased or whose retry back-off ($5) ended.
const PENDING_FREE: &str = "(lease_holder IS NULL OR (lease_holder = $5 AND lease_until <= $3))";

/// Claims pending notices: $1 holder, $2 until, $3 now, $4 limit, $5 the retry holder.
pub(super) static CLAIM_PENDING: LazyLock<String> = LazyLock::new(|| {
    claim_sql(
        "notices",
        "lease_holder = $1, lease_until = $2",
        &format!("SELECT id FROM notices WHERE status = 'pending' AND {PENDING_FREE} ORDER BY created_at, id LIMIT $4"),
        PENDING_FREE,
        cols!(notices),
    )
});

/// Notices (SMS owed).
#[derive(Debug, Clone)]
pub(crate) struct Notices {
    pub(super) pool: DbPool,
}

const NOTICE_EXISTS: &str = "SELECT 1 FROM notices WHERE id = $1";

impl Notices {
    /// Ends a pending notice held by `holder` (or unleased) with `status`.
    async fn end(&self, id: NoticeId, holder: &str, status: NoticeStatus) -> Result<bool> {
        let n = query(
            "UPDATE notices SET status = $3, lease_holder = NULL, lease_until = NULL \
             WHERE id = $1 AND status = 'pending' AND (lease_holder IS NULL OR lease_holder = $2)",
        )
        .bind(id.0)
        .bind(holder)
        .bind(status.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("notice", e))?
        .rows_affected();
        if n > 0 {
            return Ok(true);
        }
        guard_refused(&self.pool, "notice", NOTICE_EXISTS, id.0).await
    }
}

#[async_trait]
impl NoticeRepo for Notices {
    async fn reserve_all(&self, new: &[NewNotice]) -> Result<Vec<Option<NoticeId>>> {
        let map = |e| map_sqlx_error("notice", e);
        let mut out: Vec<Option<NoticeId>> = vec![None; new.len()];
        if new.is_empty() {
            return Ok(out);
        }
        // Returned rows are matched to the input by key; the stored
        // deadline may differ from the given one below a microsecond.
        let mut by_key: std::collections::HashMap<(&str, &str, &str), Vec<usize>> =
            std::collections::HashMap::new();
        for (i, n) in new.iter().enumerate() {
            by_key
                .entry((n.recipient.as_str(), n.kind.as_str(), n.subject.as_str()))
                .or_default()
                .push(i);
        }
        let mut tx = begin_write(&self.pool).await.map_err(map)?;
        for chunk in new.chunks(BATCH_CHUNK) {
            let mut q = Builder::new(
                "INSERT INTO notices (tenant_id, recipient, kind, deadline, subject, body, status, attempts, created_at) ",
            );
            q.push_values(chunk, |mut b, n| {
                b.push_bind(n.tenant_id.0)
                    .push_bind(n.recipient.as_str())
                    .push_bind(n.kind.as_str())
                    .push_bind(ts(n.deadline))
                    .push_bind(n.subject.as_str())
                    .push_bind(n.body.as_str())
                    .push_bind("pending")
                    .push_bind(0_i64)
                    .push_bind(ts(n.created_at));
            });
            q.push(" ON CONFLICT DO NOTHING RETURNING id, recipient, kind, subject, deadline");
            let rows = q.build().fetch_all(&mut *tx).await.map_err(map)?;
            for r in &rows {
                let c = Cols::new(r, "notices");
                let (id, recipient, kind, subject, deadline) = (
                    c.i64("id")?,
                    c.string("recipient")?,
                    c.string("kind")?,
                    c.string("subject")?,
                    c.ts("deadline")?,
                );
                let key = (recipient.as_str(), kind.as_str(), subject.as_str());
                let slot = by_key.get(&key).and_then(|idxs| {
                    idxs.iter().copied().find(|i| {
                        out[*i].is_none()
                            && (new[*i].deadline - deadline)
                                .num_microseconds()
                                .is_some_and(|d| d.abs() <= 1)
                    })
                });
                match slot {
                    Some(i) => out[i] = Some(NoticeId(id)),
                    None => {
                        return Err(Error::invalid(
                            "notices.recipient",
                            recipient,
                            "inserted but not among the notices to reserve",
                        ))
                    }
                }
            }
        }
        tx.commit().await.map_err(map)?;
        Ok(out)
    }

    async fn get(&self, id: NoticeId) -> Result<Notice> {
        let row = query(concat!("SELECT ", cols!(notices), " FROM notices WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("notice", e))?
            .ok_or_else(|| Error::not_found("notice", id))?;
        row::notice(&Cols::new(&row, "notices"))
    }

    async fn find(
        &self,
        recipient: &PhoneNumber,
        kind: NoticeKind,
        deadline: DateTime<Utc>,
        subject: &str,
    ) -> Result<Option<Notice>> {
        let row = query(concat!(
            "SELECT ",
            cols!(notices),
            " FROM notices WHERE recipient = $1 AND kind = $2 AND deadline = $3 AND subject = $4"
        ))
        .bind(recipient.as_str())
        .bind(kind.as_str())
        .bind(ts(deadline))
        .bind(subject)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("notice", e))?;
        row.map(|r| row::notice(&Cols::new(&r, "notices"))).transpose()
    }

    async fn claim_pending(&self, claim: &Claim) -> Result<Vec<Notice>> {
        let rows = query(CLAIM_PENDING.as_str())
            .bind(claim.holder.as_str())
            .bind(ts(claim.until))
            .bind(ts(claim.now))
            .bind(row::limit(claim.limit))
            .bind(RETRY_HOLDER)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("notice", e))?;
        let mut out = decode_all(rows, "notices", |c| row::notice(c))?;
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn mark_all_sent(&self, ids: &[NoticeId], holder: &str, at: DateTime<Utc>) -> Result<Vec<bool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let map = |e| map_sqlx_error("notice", e);
        let mut marked = std::collections::HashSet::new();
        let mut tx = begin_write(&self.pool).await.map_err(map)?;
        for chunk in ids.chunks(BATCH_CHUNK) {
            let mut q = Builder::new("UPDATE notices SET status = 'sent', sent_at = ");
            q.push_bind(ts(at))
                .push(", lease_holder = NULL, lease_until = NULL WHERE status = 'pending' AND (lease_holder IS NULL OR lease_holder = ")
                .push_bind(holder)
                .push(") AND id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id.0);
            }
            q.push(") RETURNING id");
            let rows = q.build().fetch_all(&mut *tx).await.map_err(map)?;
            for r in &rows {
                marked.insert(Cols::new(r, "notices").i64("id")?);
            }
        }
        tx.commit().await.map_err(map)?;
        Ok(ids.iter().map(|id| marked.contains(&id.0)).collect())
    }

    async fn abandon(&self, id: NoticeId, holder: &str) -> Result<bool> {
        self.end(id, holder, NoticeStatus::Abandoned).await
    }

    async fn mark_unknown(&self, id: NoticeId, holder: &str) -> Result<bool> {
        self.end(id, holder, NoticeStatus::Unknown).await
    }

    async fn abandon_stale(&self, now: DateTime<Utc>) -> Result<u64> {
        let n = query(
            "UPDATE notices SET status = 'abandoned', lease_holder = NULL, lease_until = NULL \
             WHERE status = 'pending' AND lease_holder IS NOT NULL AND lease_holder <> $2 \
             AND lease_until < $1",
        )
        .bind(ts(now))
        .bind(RETRY_HOLDER)
        .execute(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("notice", e))?
        .rows_affected();
        Ok(n)
    }

    async fn count(&self, status: NoticeStatus) -> Result<u64> {
        let row = query("SELECT COUNT(*) FROM notices WHERE status = $1")
            .bind(status.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("notice", e))?;
        count_of(&row, "notices.count")
    }
}
