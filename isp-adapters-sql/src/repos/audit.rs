//! Tenants, the audit log and router status.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use isp_core::domain::*;
use isp_core::ports::*;
use isp_core::{Error, Result};

use super::*;
use crate::row;

/// Tenants.
#[derive(Debug, Clone)]
pub(crate) struct Tenants {
    pub(super) pool: DbPool,
}

#[async_trait]
impl TenantRepo for Tenants {
    async fn upsert(&self, t: &Tenant) -> Result<()> {
        query(
            "INSERT INTO tenants (id, slug, name, time_zone) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, name = excluded.name, \
             time_zone = excluded.time_zone",
        )
        .bind(t.id.0)
        .bind(t.slug.as_str())
        .bind(t.name.as_str())
        .bind(t.time_zone.name())
        .execute(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("tenant", e))?;
        Ok(())
    }

    async fn get(&self, id: TenantId) -> Result<Tenant> {
        let row = query(concat!("SELECT ", cols!(tenants), " FROM tenants WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("tenant", e))?
            .ok_or_else(|| Error::not_found("tenant", id))?;
        row::tenant(&Cols::new(&row, "tenants"))
    }

    async fn list(&self) -> Result<Vec<Tenant>> {
        let rows = query(concat!("SELECT ", cols!(tenants), " FROM tenants ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("tenant", e))?;
        decode_all(rows, "tenants", |c| row::tenant(c))
    }
}

/// The activity and router logs.
#[derive(Debug, Clone)]
pub(crate) struct Audit {
    pub(super) pool: DbPool,
}

#[async_trait]
impl AuditRepo for Audit {
    async fn append(&self, events: &[AuditEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let map = |e| map_sqlx_error("audit event", e);
        let mut tx = begin_write(&self.pool).await.map_err(map)?;
        for chunk in events.chunks(1000) {
            let mut q = Builder::new(concat!("INSERT INTO audit_events (", cols!(audit_events), ") "));
            q.push_values(chunk, |mut b, e| {
                b.push_bind(ts(e.at))
                    .push_bind(e.tenant_id.map(|t| t.0))
                    .push_bind(e.action.as_str())
                    .push_bind(e.subject.as_str())
                    .push_bind(e.router_id.map(|r| r.0))
                    .push_bind(e.outcome.as_str())
                    .push_bind(e.reason.as_deref());
            });
            q.build().execute(&mut *tx).await.map_err(map)?;
        }
        tx.commit().await.map_err(map)?;
        Ok(())
    }

    async fn recent(&self, limit: usize) -> Result<Vec<AuditEvent>> {
        let rows = query(concat!(
            "SELECT ",
            cols!(audit_events),
            " FROM audit_events ORDER BY at DESC, id DESC LIMIT $1"
        ))
        .bind(row::limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("audit event", e))?;
        decode_all(rows, "audit_events", |c| row::audit_event(c))
    }

    async fn of_router(&self, router: RouterId, limit: usize) -> Result<Vec<AuditEvent>> {
        let rows = query(concat!(
            "SELECT ",
            cols!(audit_events),
            " FROM audit_events WHERE router_id = $1 ORDER BY at DESC, id DESC LIMIT $2"
        ))
        .bind(router.0)
        .bind(row::limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("audit event", e))?;
        decode_all(rows, "audit_events", |c| row::audit_event(c))
    }

    async fn delete_before(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let n = query("DELETE FROM audit_events WHERE at < $1")
            .bind(ts(cutoff))
            .execute(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("audit event", e))?
            .rows_affected();
        Ok(n)
    }
}

// ---------------------------------------------------------- router status

/// Last known router health.
#[derive(Debug, Clone)]
pub(crate) struct RouterStatuses {
    pub(super) pool: DbPool,
}

#[async_trait]
impl RouterStatusRepo for RouterStatuses {
    async fn get(&self, router: RouterId) -> Result<Option<RouterStatus>> {
        let row = query(concat!(
            "SELECT ",
            cols!(router_status),
            " FROM router_status WHERE router_id = $1"
        ))
        .bind(router.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("router status", e))?;
        row.map(|r| row::router_status(&Cols::new(&r, "router_status")))
            .transpose()
    }

    async fn put(&self, s: &RouterStatus) -> Result<()> {
        query(concat!(
            "INSERT INTO router_status (",
            cols!(router_status),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (router_id) DO UPDATE SET \
             online = excluded.online, checked_at = excluded.checked_at, changed_at = excluded.changed_at, \
             clock_skew_secs = excluded.clock_skew_secs, version = excluded.version, \
             last_error = excluded.last_error"
        ))
        .bind(s.router_id.0)
        .bind(s.online)
        .bind(ts(s.checked_at))
        .bind(ts(s.changed_at))
        .bind(s.clock_skew_secs)
        .bind(s.version.as_deref())
        .bind(s.last_error.as_deref())
        .execute(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("router status", e))?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<RouterStatus>> {
        let rows = query(concat!(
            "SELECT ",
            cols!(router_status),
            " FROM router_status ORDER BY router_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("router status", e))?;
        decode_all(rows, "router_status", |c| row::router_status(c))
    }
}
