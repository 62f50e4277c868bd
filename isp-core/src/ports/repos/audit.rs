//! Tenants, the audit log and router status.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::error::Result;

/// Tenants.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TenantRepo: Send + Sync + Debug {
    /// Inserts or replaces a tenant by id (tenants come from configuration).
    async fn upsert(&self, tenant: &Tenant) -> Result<()>;
    /// One tenant (`NotFound`).
    async fn get(&self, id: TenantId) -> Result<Tenant>;
    /// All tenants, by id.
    async fn list(&self) -> Result<Vec<Tenant>>;
}

/// The activity and router logs.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AuditRepo: Send + Sync + Debug {
    /// Appends events (one write for a batch).
    async fn append(&self, events: &[AuditEvent]) -> Result<()>;
    /// Newest first.
    async fn recent(&self, limit: usize) -> Result<Vec<AuditEvent>>;
    /// Newest first, one router.
    async fn of_router(&self, router: RouterId, limit: usize) -> Result<Vec<AuditEvent>>;
    /// Deletes events before `cutoff`; returns how many.
    async fn delete_before(&self, cutoff: DateTime<Utc>) -> Result<u64>;
}

/// Last known router health.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RouterStatusRepo: Send + Sync + Debug {
    /// The last status (`None` if never checked).
    async fn get(&self, router: RouterId) -> Result<Option<RouterStatus>>;
    /// Stores the status.
    async fn put(&self, status: &RouterStatus) -> Result<()>;
    /// Every router's status.
    async fn list(&self) -> Result<Vec<RouterStatus>>;
}
