//! Tenants, the audit log, router status and named leases.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::MemoryStore;
use crate::domain::*;
use crate::error::{Error, Result};
use crate::ports::{AuditRepo, RouterStatusRepo, TenantRepo};

/// [`TenantRepo`] over a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryTenantRepo {
    pub(super) store: MemoryStore,
}

#[async_trait]
impl TenantRepo for MemoryTenantRepo {
    async fn upsert(&self, tenant: &Tenant) -> Result<()> {
        self.store.lock().tenants.insert(tenant.id, tenant.clone());
        Ok(())
    }

    async fn get(&self, id: TenantId) -> Result<Tenant> {
        self.store
            .lock()
            .tenants
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("tenant", id))
    }

    async fn list(&self) -> Result<Vec<Tenant>> {
        Ok(self.store.lock().tenants.values().cloned().collect())
    }
}

/// [`AuditRepo`] over a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryAuditRepo {
    pub(super) store: MemoryStore,
}

/// Newest first; among equal times, the later appended first.
fn newest_first<'a>(
    events: impl DoubleEndedIterator<Item = &'a AuditEvent>,
    limit: usize,
) -> Vec<AuditEvent> {
    let mut v: Vec<&AuditEvent> = events.rev().collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.at));
    v.into_iter().take(limit).cloned().collect()
}

#[async_trait]
impl AuditRepo for MemoryAuditRepo {
    async fn append(&self, events: &[AuditEvent]) -> Result<()> {
        self.store.lock().audit.extend_from_slice(events);
        Ok(())
    }

    async fn recent(&self, limit: usize) -> Result<Vec<AuditEvent>> {
        Ok(newest_first(self.store.lock().audit.iter(), limit))
    }

    async fn of_router(&self, router: RouterId, limit: usize) -> Result<Vec<AuditEvent>> {
        let s = self.store.lock();
        let mine: Vec<&AuditEvent> = s.audit.iter().filter(|e| e.router_id == Some(router)).collect();
        Ok(newest_first(mine.into_iter(), limit))
    }

    async fn delete_before(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let mut s = self.store.lock();
        let before = s.audit.len();
        s.audit.retain(|e| e.at >= cutoff);
        Ok((before - s.audit.len()) as u64)
    }
}

/// [`RouterStatusRepo`] over a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryRouterStatusRepo {
    pub(super) store: MemoryStore,
}

#[async_trait]
impl RouterStatusRepo for MemoryRouterStatusRepo {
    async fn get(&self, router: RouterId) -> Result<Option<RouterStatus>> {
        Ok(self.store.lock().router_status.get(&router).cloned())
    }

    async fn put(&self, status: &RouterStatus) -> Result<()> {
        self.store
            .lock()
            .router_status
            .insert(status.router_id, status.clone());
        Ok(())
    }

    async fn list(&self) -> Result<Vec<RouterStatus>> {
        Ok(self.store.lock().router_status.values().cloned().collect())
    }
}
