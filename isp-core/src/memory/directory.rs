//! A router directory over a list you can change at run time.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use crate::domain::{Router, RouterId, TenantId};
use crate::error::{Error, Result};
use crate::ports::RouterDirectory;

/// A [`RouterDirectory`] over a fixed set of routers (from configuration, or a
/// test), with [`upsert`](StaticDirectory::upsert) and
/// [`remove`](StaticDirectory::remove) to change it. Lists are ordered by id and
/// include disabled routers (jobs skip those themselves).
#[derive(Debug, Default)]
pub struct StaticDirectory {
    routers: RwLock<BTreeMap<RouterId, Router>>,
}

impl StaticDirectory {
    /// A directory of `routers` (a later router with the same id replaces an earlier one).
    pub fn new(routers: impl IntoIterator<Item = Router>) -> Self {
        StaticDirectory {
            routers: RwLock::new(routers.into_iter().map(|r| (r.id, r)).collect()),
        }
    }

    /// Adds a router, or replaces the one with the same id.
    pub fn upsert(&self, router: Router) {
        self.write().insert(router.id, router);
    }

    /// Removes a router; returns it if it was there.
    pub fn remove(&self, id: RouterId) -> Option<Router> {
        self.write().remove(&id)
    }

    /// Enables or disables a router (`NotFound` if unknown).
    pub fn set_enabled(&self, id: RouterId, enabled: bool) -> Result<()> {
        let mut routers = self.write();
        let r = routers
            .get_mut(&id)
            .ok_or_else(|| Error::not_found("router", id))?;
        r.enabled = enabled;
        Ok(())
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<RouterId, Router>> {
        self.routers.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<RouterId, Router>> {
        self.routers.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl RouterDirectory for StaticDirectory {
    async fn routers_of(&self, tenant: TenantId) -> Result<Vec<Router>> {
        Ok(self
            .read()
            .values()
            .filter(|r| r.tenant_id == tenant)
            .cloned()
            .collect())
    }

    async fn router(&self, id: RouterId) -> Result<Router> {
        self.read()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("router", id))
    }

    async fn all_routers(&self) -> Result<Vec<Router>> {
        Ok(self.read().values().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{RouterCredentials, Transport};

    fn router(id: i64, tenant: i64) -> Router {
        Router {
            id: RouterId(id),
            tenant_id: TenantId(tenant),
            name: format!("r{id}"),
            address: format!("10.0.0.{id}:8728"),
            transport: Transport::Api,
            credentials: RouterCredentials::new("admin", "pw"),
            tls_fingerprint: None,
            enabled: true,
        }
    }

    #[tokio::test]
    async fn lists_by_tenant_and_changes() {
        let d = StaticDirectory::new([router(2, 1), router(1, 1), router(3, 2)]);
        let ids = |v: Vec<Router>| v.into_iter().map(|r| r.id.0).collect::<Vec<_>>();
        assert_eq!(ids(d.routers_of(TenantId(1)).await.unwrap()), vec![1, 2]);
        assert_eq!(ids(d.all_routers().await.unwrap()), vec![1, 2, 3]);
        assert!(d.router(RouterId(9)).await.unwrap_err().is_not_found());

        let mut moved = router(3, 1);
        moved.name = "renamed".into();
        d.upsert(moved);
        assert_eq!(ids(d.routers_of(TenantId(1)).await.unwrap()), vec![1, 2, 3]);
        assert_eq!(d.router(RouterId(3)).await.unwrap().name, "renamed");

        d.set_enabled(RouterId(1), false).unwrap();
        assert!(!d.router(RouterId(1)).await.unwrap().enabled);
        assert!(d.set_enabled(RouterId(9), false).unwrap_err().is_not_found());

        assert!(d.remove(RouterId(2)).is_some());
        assert!(d.remove(RouterId(2)).is_none());
        assert_eq!(ids(d.all_routers().await.unwrap()), vec![1, 3]);
    }
}
