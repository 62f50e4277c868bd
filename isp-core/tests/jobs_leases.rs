//! A lost lease stops its old holder (promise 7): a job renews an item's lease
//! before each router step, so a daemon whose lease ran out while a router
//! call hung does not make its next router write, and the daemon that took
//! the item over does the work exactly once. In-memory store, fake clock, two
//! engines on one store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod policy_fixtures;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Datelike as _;
use isp_core::domain::*;
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, JobKind, JobReport, RunOptions};
use isp_core::memory::{self, RecordingSms, StaticDirectory};
use isp_core::ports::*;
use isp_core::{Error, Result};
use policy_fixtures::*;

/// Routers that log every write and can hold the first write of one kind
/// until the test lets it go.
#[derive(Debug)]
struct Routers {
    /// `(kind, what)`, in the order the writes reached the router.
    log: Mutex<Vec<(String, String)>>,
    /// Which write hangs the first time (`"static-ip"`).
    hang: &'static str,
    hanging: AtomicBool,
    entered: tokio::sync::Notify,
    release: tokio::sync::Semaphore,
}

impl Routers {
    fn new(hang: &'static str) -> Self {
        Routers {
            log: Mutex::new(Vec::new()),
            hang,
            hanging: AtomicBool::new(true),
            entered: tokio::sync::Notify::new(),
            release: tokio::sync::Semaphore::new(0),
        }
    }

    /// Logs a write; the first write of the hanging kind waits for
    /// `release`.
    async fn write(&self, kind: &str, what: String) {
        self.log.lock().unwrap().push((kind.to_owned(), what));
        if kind == self.hang && self.hanging.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            let _permit = self.release.acquire().await;
        }
    }

    fn count(&self, kind: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|(k, _)| k == kind).count()
    }
}

fn unused() -> Error {
    Error::Internal("not used by this test".into())
}

#[async_trait]
impl RouterDriver for Routers {
    async fn snapshot(&self, _: &Router, _: &[Menu]) -> Result<RouterSnapshot> {
        Err(unused())
    }
    async fn disconnect_hotspot(
        &self,
        _: &Router,
        _: &[HotspotTarget],
    ) -> Result<Vec<Result<DisconnectReport>>> {
        Err(unused())
    }
    async fn remove_hotspot_sessions(&self, _: &Router, _: &[String]) -> Result<u32> {
        Err(unused())
    }
    async fn block_device(&self, _: &Router, _: MacAddress, _: OwnerTag) -> Result<()> {
        Err(unused())
    }
    async fn unblock_device(&self, _: &Router, _: MacAddress) -> Result<()> {
        Err(unused())
    }
    async fn remove_ip_bindings(&self, _: &Router, _: &[(MacAddress, OwnerTag)]) -> Result<Vec<Result<u32>>> {
        Err(unused())
    }
    async fn set_hotspot_user_disabled(&self, _: &Router, _: &RosName, _: OwnerTag, _: bool) -> Result<()> {
        Err(unused())
    }
    async fn add_hotspot_user(&self, _: &Router, _: &HotspotUserSpec) -> Result<String> {
        Err(unused())
    }
    async fn remove_hotspot_user(&self, _: &Router, _: &RosName, _: OwnerTag) -> Result<bool> {
        Err(unused())
    }
    async fn provision_pppoe(&self, _: &Router, spec: &PppoeSpec) -> Result<()> {
        self.write("pppoe", spec.username.to_string()).await;
        Ok(())
    }
    async fn deprovision_pppoe(&self, _: &Router, _: &RosName, _: OwnerTag) -> Result<()> {
        Err(unused())
    }
    async fn provision_static_ip(&self, _: &Router, spec: &StaticIpSpec) -> Result<Vec<ForeignObject>> {
        self.write("static-ip", spec.address.to_string()).await;
        Ok(Vec::new())
    }
    async fn deprovision_static_ip(
        &self,
        _: &Router,
        _: Ipv4Addr,
        _: &RosName,
        _: OwnerTag,
    ) -> Result<Vec<ForeignObject>> {
        Err(unused())
    }
    async fn check_static_ip_rule(&self, _: &Router, _: &StaticIpRuleSpec) -> Result<RuleState> {
        Err(unused())
    }
    async fn add_static_ip_rule(&self, _: &Router, _: &StaticIpRuleSpec) -> Result<bool> {
        Err(unused())
    }
    async fn set_rate_limit(&self, _: &Router, spec: &QueueSpec) -> Result<()> {
        self.write("queue", spec.name.to_string()).await;
        Ok(())
    }
    async fn remove_rate_limit(&self, _: &Router, _: &RosName, _: OwnerTag) -> Result<()> {
        Err(unused())
    }
    async fn health(&self, _: &Router) -> Result<RouterHealth> {
        Err(unused())
    }
}

const TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Two engines (`daemon-a`, `daemon-b`) on one store, one clock, one set of routers.
struct Rig {
    a: Engine,
    b: Engine,
    repos: Repositories,
    routers: Arc<Routers>,
    clock: Arc<FakeClock>,
}

async fn rig(hang: &'static str) -> Rig {
    let repos = memory::repositories();
    repos
        .tenants
        .upsert(&tenant(1, "Africa/Dar_es_Salaam"))
        .await
        .unwrap();
    let routers = Arc::new(Routers::new(hang));
    let clock = Arc::new(FakeClock::new(t("2026-01-14T12:00:00Z")));
    let directory = Arc::new(StaticDirectory::new(vec![router(1, 1, true)]));
    let engine = |holder: &str| {
        Engine::new(
            EngineDeps {
                repos: repos.clone(),
                directory: directory.clone(),
                driver: routers.clone(),
                sms: Arc::new(RecordingSms::new()),
                clock: clock.clone(),
            },
            EngineConfig {
                holder: holder.into(),
                lease_ttl: TTL,
                ..EngineConfig::default()
            },
        )
    };
    Rig {
        a: engine("daemon-a"),
        b: engine("daemon-b"),
        repos,
        routers,
        clock,
    }
}

async fn run(engine: &Engine, job: JobKind) -> JobReport {
    engine.run(job, RunOptions::default()).await.expect("run")
}

/// Daemon A's lease on a static-IP service runs out while its first router
/// step (the address-list entry) hangs; daemon B claims the service and
/// provisions it. When A's step returns, A must not add the queue (its next
/// router write): one queue in all, added by B; A counts a superseded
/// provision and nothing provisioned. On the old code A added the queue a
/// second time (the router refused it as a conflict).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_stops_the_next_router_step_and_the_new_holder_provisions_once() {
    let rig = rig("static-ip").await;
    let repos = &rig.repos;
    let plan = repos
        .plans
        .insert(&NewPlan {
            tenant_id: TenantId(1),
            name: name("basic"),
            price: Money::parse("price", "1000", tzs()).unwrap(),
            duration: None,
            rate_limit: Some(RateLimit::parse("rate", "5M/10M").unwrap()),
        })
        .await
        .unwrap();
    let customer = repos
        .customers
        .insert(&NewCustomer {
            tenant_id: TenantId(1),
            name: "Customer".into(),
            phone: Some(phone(1)),
        })
        .await
        .unwrap();
    let due = d(2026, 2, 10);
    let svc = repos
        .services
        .insert(&NewService {
            tenant_id: TenantId(1),
            customer_id: customer.id,
            router_id: RouterId(1),
            plan_id: plan.id,
            status: ServiceStatus::Active,
            connection: static_ip(7),
            next_billing_date: due,
            billing_day: due.day(),
            next_charge_on: due,
        })
        .await
        .unwrap();

    let a = rig.a.clone();
    let entered = rig.routers.entered.notified();
    let first = tokio::spawn(async move { run(&a, JobKind::ProvisionServices).await });
    entered.await;
    assert_eq!(
        repos.services.get(svc.id).await.unwrap().lease.map(|l| l.holder),
        Some("daemon-a".to_owned())
    );

    // A's lease runs out while its router call hangs; B takes the service over.
    rig.clock
        .advance(chrono::Duration::from_std(TTL).unwrap() + chrono::Duration::seconds(1));
    let by_b = run(&rig.b, JobKind::ProvisionServices).await;
    assert_eq!(by_b.count("services_provisioned"), 1, "{by_b}");
    assert_eq!(
        (rig.routers.count("static-ip"), rig.routers.count("queue")),
        (2, 1)
    );

    // A's hung call returns: no further router write from A.
    rig.routers.release.add_permits(1);
    let by_a = first.await.expect("daemon a");
    assert_eq!(
        rig.routers.count("queue"),
        1,
        "the queue was added again by the daemon that lost its lease: {:?}",
        rig.routers.log.lock().unwrap()
    );
    assert_eq!(by_a.count("services_provisioned"), 0, "{by_a}");
    assert_eq!(by_a.count("provision_superseded"), 1, "{by_a}");
    assert!(by_a.failures.is_empty(), "{:?}", by_a.failures);
    let stored = repos.services.get(svc.id).await.unwrap();
    assert!(stored.provisioned && stored.lease.is_none(), "{stored:?}");
}
