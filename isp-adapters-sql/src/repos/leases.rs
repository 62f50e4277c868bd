//! The one lease protocol, for every leased table.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use isp_core::ports::*;
use isp_core::Result;

use super::*;
use crate::row::Fields as _;

/// [`LeaseRepo`] over every leased table.
#[derive(Debug, Clone)]
pub(crate) struct Leases {
    pub(super) pool: DbPool,
}

/// What else must hold for an item to be retried (a notice: still pending).
fn retry_guard(kind: Leased) -> &'static str {
    match kind {
        Leased::Notices => " AND status = 'pending'",
        Leased::Subscribers | Leased::Vouchers | Leased::Services => "",
    }
}

impl Leases {
    /// Runs `UPDATE <table> SET <set> WHERE lease_holder = holder <guard> AND
    /// id IN (chunk) RETURNING id` (`guard` pushes ` AND ...` or nothing) for each chunk of `ids` (one transaction when
    /// there is more than one chunk), and answers whether each id was among
    /// the returned ones.
    async fn fenced(
        &self,
        kind: Leased,
        ids: &[i64],
        holder: &str,
        set: impl Fn(&mut Builder<'_>),
        guard: impl Fn(&mut Builder<'_>),
    ) -> Result<Vec<bool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let map = |e| map_sqlx_error(kind.entity(), e);
        let table = kind.table();
        let build = |chunk: &[i64]| {
            let mut q = Builder::new(format!("UPDATE {table} SET "));
            set(&mut q);
            q.push(" WHERE lease_holder = ").push_bind(holder);
            guard(&mut q);
            q.push(" AND id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            q.push(") RETURNING id");
            q
        };
        let mut changed = std::collections::HashSet::new();
        let mut collect = |rows: Vec<DbRow>| -> Result<()> {
            for r in &rows {
                changed.insert(Cols::new(r, table).i64("id")?);
            }
            Ok(())
        };
        if ids.len() <= BATCH_CHUNK {
            let rows = build(ids).build().fetch_all(&self.pool).await.map_err(map)?;
            collect(rows)?;
        } else {
            let mut tx = begin_write(&self.pool).await.map_err(map)?;
            for chunk in ids.chunks(BATCH_CHUNK) {
                let rows = build(chunk).build().fetch_all(&mut *tx).await.map_err(map)?;
                collect(rows)?;
            }
            tx.commit().await.map_err(map)?;
        }
        Ok(ids.iter().map(|id| changed.contains(id)).collect())
    }
}

#[async_trait]
impl LeaseRepo for Leases {
    async fn retry_later_all(
        &self,
        kind: Leased,
        ids: &[i64],
        holder: &str,
        until: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        let set = |q: &mut Builder<'_>| {
            q.push("attempts = attempts + 1, lease_holder = ")
                .push_bind(RETRY_HOLDER)
                .push(", lease_until = ")
                .push_bind(ts(until));
        };
        let guard = |q: &mut Builder<'_>| {
            q.push(retry_guard(kind));
        };
        self.fenced(kind, ids, holder, set, guard).await
    }

    async fn release_all(&self, kind: Leased, ids: &[i64], holder: &str) -> Result<Vec<bool>> {
        let set = |q: &mut Builder<'_>| {
            q.push("lease_holder = NULL, lease_until = NULL");
        };
        self.fenced(kind, ids, holder, set, |_: &mut Builder<'_>| {})
            .await
    }

    async fn renew_all(
        &self,
        kind: Leased,
        ids: &[i64],
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        let set = |q: &mut Builder<'_>| {
            q.push("lease_until = ").push_bind(ts(until));
        };
        let live = |q: &mut Builder<'_>| {
            q.push(" AND lease_until > ").push_bind(ts(now));
        };
        self.fenced(kind, ids, holder, set, live).await
    }
}
