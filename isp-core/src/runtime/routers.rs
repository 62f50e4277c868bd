//! Router plumbing: a driver decorator that measures every call, and the
//! connection/clock check behind `ispd check-routers` and
//! `GET /api/routers/{id}/check`.

use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use crate::domain::{MacAddress, OwnerTag, RosName, Router};
use crate::ports::{
    Clock, DisconnectReport, HotspotTarget, HotspotUserSpec, Menu, PppoeSpec, QueueSpec, RouterDriver,
    RouterHealth, RouterSnapshot, StaticIpSpec,
};
use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A [`RouterDriver`] that records the latency and errors of every call of
/// the driver it wraps (`ispd_router_call_duration_seconds`,
/// `ispd_router_call_errors_total`), labelled with the router's name.
#[derive(Debug, Clone)]
pub struct MeteredDriver {
    inner: Arc<dyn RouterDriver>,
}

impl MeteredDriver {
    /// Wraps a driver.
    pub fn new(inner: Arc<dyn RouterDriver>) -> Self {
        MeteredDriver { inner }
    }
}

async fn timed<T>(router: &Router, op: &'static str, fut: impl Future<Output = Result<T>>) -> Result<T> {
    let start = Instant::now();
    let out = fut.await;
    let name = router.name.clone();
    metrics::histogram!("ispd_router_call_duration_seconds", "router" => name.clone(), "op" => op)
        .record(start.elapsed().as_secs_f64());
    if let Err(e) = &out {
        metrics::counter!("ispd_router_call_errors_total", "router" => name, "op" => op, "kind" => e.kind())
            .increment(1);
    }
    out
}

/// A forwarding layer: every method is forwarded (clippy checks that none is
/// left to its default), so a batch path can never be lost to a per-item default.
#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl RouterDriver for MeteredDriver {
    async fn snapshot(&self, router: &Router, menus: &[Menu]) -> Result<RouterSnapshot> {
        timed(router, "snapshot", self.inner.snapshot(router, menus)).await
    }
    async fn disconnect_hotspot(
        &self,
        router: &Router,
        targets: &[HotspotTarget],
    ) -> Result<Vec<Result<DisconnectReport>>> {
        timed(
            router,
            "disconnect_hotspot",
            self.inner.disconnect_hotspot(router, targets),
        )
        .await
    }
    async fn remove_hotspot_sessions(&self, router: &Router, ids: &[String]) -> Result<u32> {
        timed(
            router,
            "remove_hotspot_sessions",
            self.inner.remove_hotspot_sessions(router, ids),
        )
        .await
    }
    async fn block_device(&self, router: &Router, mac: MacAddress, owner: OwnerTag) -> Result<()> {
        timed(
            router,
            "block_device",
            self.inner.block_device(router, mac, owner),
        )
        .await
    }
    async fn unblock_device(&self, router: &Router, mac: MacAddress) -> Result<()> {
        timed(router, "unblock_device", self.inner.unblock_device(router, mac)).await
    }
    async fn remove_ip_bindings(
        &self,
        router: &Router,
        bindings: &[(MacAddress, OwnerTag)],
    ) -> Result<Vec<Result<u32>>> {
        timed(
            router,
            "remove_ip_bindings",
            self.inner.remove_ip_bindings(router, bindings),
        )
        .await
    }
    async fn set_hotspot_user_disabled(
        &self,
        router: &Router,
        name: &RosName,
        owner: OwnerTag,
        disabled: bool,
    ) -> Result<()> {
        timed(
            router,
            "set_hotspot_user_disabled",
            self.inner
                .set_hotspot_user_disabled(router, name, owner, disabled),
        )
        .await
    }
    async fn set_hotspot_users_disabled(
        &self,
        router: &Router,
        changes: &[(RosName, OwnerTag, bool)],
    ) -> Result<Vec<Result<()>>> {
        timed(
            router,
            "set_hotspot_users_disabled",
            self.inner.set_hotspot_users_disabled(router, changes),
        )
        .await
    }
    async fn add_hotspot_user(&self, router: &Router, spec: &HotspotUserSpec) -> Result<String> {
        timed(
            router,
            "add_hotspot_user",
            self.inner.add_hotspot_user(router, spec),
        )
        .await
    }
    async fn remove_hotspot_user(&self, router: &Router, name: &RosName, owner: OwnerTag) -> Result<bool> {
        timed(
            router,
            "remove_hotspot_user",
            self.inner.remove_hotspot_user(router, name, owner),
        )
        .await
    }
    async fn provision_pppoe(&self, router: &Router, spec: &PppoeSpec) -> Result<()> {
        timed(
            router,
            "provision_pppoe",
            self.inner.provision_pppoe(router, spec),
        )
        .await
    }
    async fn deprovision_pppoe(&self, router: &Router, username: &RosName, owner: OwnerTag) -> Result<()> {
        timed(
            router,
            "deprovision_pppoe",
            self.inner.deprovision_pppoe(router, username, owner),
        )
        .await
    }
    async fn provision_static_ip(&self, router: &Router, spec: &StaticIpSpec) -> Result<()> {
        timed(
            router,
            "provision_static_ip",
            self.inner.provision_static_ip(router, spec),
        )
        .await
    }
    async fn deprovision_static_ip(
        &self,
        router: &Router,
        address: Ipv4Addr,
        list: &RosName,
        owner: OwnerTag,
    ) -> Result<()> {
        timed(
            router,
            "deprovision_static_ip",
            self.inner.deprovision_static_ip(router, address, list, owner),
        )
        .await
    }
    async fn set_rate_limit(&self, router: &Router, spec: &QueueSpec) -> Result<()> {
        timed(router, "set_rate_limit", self.inner.set_rate_limit(router, spec)).await
    }
    async fn remove_rate_limit(&self, router: &Router, name: &RosName, owner: OwnerTag) -> Result<()> {
        timed(
            router,
            "remove_rate_limit",
            self.inner.remove_rate_limit(router, name, owner),
        )
        .await
    }
    async fn health(&self, router: &Router) -> Result<RouterHealth> {
        timed(router, "health", self.inner.health(router)).await
    }
    async fn watch_hotspot_sessions(
        &self,
        router: &Router,
    ) -> Result<futures::stream::BoxStream<'static, Result<crate::ports::HotspotSession>>> {
        timed(
            router,
            "watch_hotspot_sessions",
            self.inner.watch_hotspot_sessions(router),
        )
        .await
    }
}

/// The outcome of checking one router's connection and clock.
#[derive(Debug, Clone, Serialize)]
pub struct RouterCheck {
    /// Router id.
    pub id: i64,
    /// Tenant id.
    pub tenant_id: i64,
    /// Name.
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// `api`, `api-ssl` or `rest`.
    pub transport: crate::domain::Transport,
    /// Disabled routers are not contacted.
    pub enabled: bool,
    /// Login and `/system/...` reads worked.
    pub online: bool,
    /// Round trip of the check, milliseconds.
    pub latency_ms: Option<u64>,
    /// `/system/identity`.
    pub identity: Option<String>,
    /// RouterOS version.
    pub version: Option<String>,
    /// The router's clock (UTC).
    pub router_clock: Option<DateTime<Utc>>,
    /// Router clock minus ours, seconds.
    pub clock_skew_secs: Option<i64>,
    /// What went wrong (never a password).
    pub error: Option<String>,
}

impl RouterCheck {
    /// True when the router answered and its clock is within `max_skew_secs` of ours (or unknown).
    pub fn is_good(&self, max_skew_secs: i64) -> bool {
        !self.enabled || (self.online && self.clock_skew_secs.is_none_or(|s| s.abs() <= max_skew_secs))
    }
}

/// Logs in to `router`, reads identity, resources and clock, and compares the clock with ours.
pub async fn check_router(driver: &dyn RouterDriver, clock: &dyn Clock, router: &Router) -> RouterCheck {
    let mut check = RouterCheck {
        id: router.id.0,
        tenant_id: router.tenant_id.0,
        name: router.name.clone(),
        address: router.address.clone(),
        transport: router.transport,
        enabled: router.enabled,
        online: false,
        latency_ms: None,
        identity: None,
        version: None,
        router_clock: None,
        clock_skew_secs: None,
        error: None,
    };
    if !router.enabled {
        check.error = Some("disabled in the configuration".into());
        return check;
    }
    let start = Instant::now();
    let before = clock.now();
    match driver.health(router).await {
        Ok(h) => {
            let elapsed = start.elapsed();
            check.online = true;
            check.latency_ms = Some(elapsed.as_millis() as u64);
            check.identity = Some(h.identity);
            check.version = h.version;
            check.router_clock = h.clock;
            // Compare with our clock at the middle of the round trip.
            let mid = before + chrono::Duration::from_std(elapsed / 2).unwrap_or_default();
            check.clock_skew_secs = h.clock.map(|c| (c - mid).num_seconds());
        }
        Err(e) => {
            check.latency_ms = Some(start.elapsed().as_millis() as u64);
            check.error = Some(e.to_string());
        }
    }
    check
}
