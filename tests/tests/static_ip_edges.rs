//! Issue 16's static-IP edges, end to end over real TCP (API and REST) to
//! simulated routers: the engine (in-memory repositories) with the RouterOS
//! driver.
//!
//! - An address-list entry for a static-IP service's address that is not the
//!   service's (the operator's) is left alone on provisioning and
//!   deprovisioning, audited `foreign_object` and counted in `foreign_objects`.
//! - The `isp-allowed` forward drop rule: checked missing, added once, then
//!   present; a disabled one of ours is enabled again.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use isp_core::domain::{
    Connection, Money, NewCustomer, NewPlan, NewService, RosName, Router, RouterCredentials, RouterId,
    ServiceStatus, Tenant, TenantId, Transport,
};
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, JobKind, JobReport, RunOptions};
use isp_core::memory::{RecordingSms, StaticDirectory};
use isp_core::ports::{FakeClock, Repositories, RouterDriver, RuleState, StaticIpRuleSpec};
use isp_routeros::client::ClientConfig;
use isp_routeros::driver::{DriverConfig, RouterOsDriver};
use isp_routeros::sim::{SimConfig, SimHandle, SimRouter};

const USER: &str = "api";
const PASSWORD: &str = "Sup3r-S3cret-Pw!";
const LIST: &str = "/ip/firewall/address-list";
const FILTER: &str = "/ip/firewall/filter";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).single().expect("now")
}

fn name(s: &str) -> RosName {
    RosName::parse("name", s).unwrap()
}

async fn sim(rest: bool) -> SimRouter {
    let mut config = SimConfig::new(USER, PASSWORD);
    if rest {
        config.rest_listen = Some("127.0.0.1:0".parse().unwrap());
    }
    SimRouter::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts")
}

fn router(id: i64, sim: &SimRouter) -> Router {
    Router {
        id: RouterId(id),
        tenant_id: TenantId(1),
        name: format!("sim-{id}"),
        address: sim.addr().to_string(),
        transport: Transport::Api,
        credentials: RouterCredentials::new(USER, PASSWORD),
        tls_fingerprint: None,
        enabled: true,
    }
}

fn driver() -> Arc<RouterOsDriver> {
    Arc::new(
        RouterOsDriver::new(DriverConfig {
            client: ClientConfig {
                connect_timeout: Duration::from_secs(2),
                login_timeout: Duration::from_secs(2),
                command_timeout: Duration::from_secs(3),
                keepalive: None,
                ..ClientConfig::default()
            },
            ..DriverConfig::default()
        })
        .expect("driver"),
    )
}

async fn engine(routers: Vec<Router>) -> (Engine, Repositories) {
    let repos = isp_core::memory::repositories();
    repos
        .tenants
        .upsert(&Tenant {
            id: TenantId(1),
            slug: name("t1"),
            name: "T1".into(),
            time_zone: chrono_tz::UTC,
        })
        .await
        .expect("tenant");
    let engine = Engine::new(
        EngineDeps {
            repos: repos.clone(),
            directory: Arc::new(StaticDirectory::new(routers)),
            driver: driver(),
            sms: Arc::new(RecordingSms::new()),
            clock: Arc::new(FakeClock::new(now())),
        },
        EngineConfig::default(),
    );
    (engine, repos)
}

async fn run(engine: &Engine, job: JobKind) -> JobReport {
    tokio::time::timeout(Duration::from_secs(30), engine.run(job, RunOptions::default()))
        .await
        .unwrap_or_else(|_| panic!("{job} hung"))
        .unwrap_or_else(|e| panic!("{job} failed: {e}"))
}

fn rows_where(handle: &SimHandle, menu: &str, key: &str, value: &str) -> Vec<BTreeMap<String, String>> {
    handle
        .rows(menu)
        .into_iter()
        .filter(|r| r.get(key).map(String::as_str) == Some(value))
        .collect()
}

async fn foreign_events(repos: &Repositories) -> Vec<isp_core::domain::AuditEvent> {
    repos
        .audit
        .recent(1000)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "foreign_object")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_address_list_entry_is_left_alone_audited_and_counted() {
    let a = sim(false).await;
    let ha = a.handle();
    ha.add_row(
        LIST,
        &[
            ("list", "isp-allowed"),
            ("address", "10.0.0.2"),
            ("comment", "operator"),
        ],
    )
    .expect("row");
    let (engine, repos) = engine(vec![router(1, &a)]).await;
    let customer = repos
        .customers
        .insert(&NewCustomer {
            tenant_id: TenantId(1),
            name: "Asha".into(),
            phone: None,
        })
        .await
        .unwrap();
    let plan = repos
        .plans
        .insert(&NewPlan {
            tenant_id: TenantId(1),
            name: name("home"),
            price: Money::parse(
                "price",
                "30000",
                isp_core::domain::Currency::parse("currency", "TZS").unwrap(),
            )
            .unwrap(),
            duration: None,
            rate_limit: None,
        })
        .await
        .unwrap();
    let due = NaiveDate::from_ymd_opt(2026, 5, 20).unwrap();
    let service = repos
        .services
        .insert(&NewService {
            tenant_id: TenantId(1),
            customer_id: customer.id,
            router_id: RouterId(1),
            plan_id: plan.id,
            status: ServiceStatus::Active,
            connection: Connection::StaticIp {
                address: "10.0.0.2".parse().unwrap(),
            },
            next_billing_date: due,
            billing_day: 20,
            next_charge_on: due,
        })
        .await
        .unwrap();

    let r = run(&engine, JobKind::ProvisionServices).await;
    assert_eq!(r.count("services_provisioned"), 1, "{r:?}");
    assert_eq!(r.count("foreign_objects"), 1, "{r:?}");
    let per_router: Vec<u64> = r
        .per_router
        .values()
        .filter_map(|c| c.get("foreign_objects").copied())
        .collect();
    assert_eq!(per_router, vec![1], "counted on the router too: {r:?}");
    assert_eq!(
        rows_where(&ha, LIST, "comment", "operator").len(),
        1,
        "left alone"
    );
    let events = foreign_events(&repos).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let reason = events[0].reason.clone().unwrap_or_default();
    assert!(
        reason.contains("/ip/firewall/address-list 10.0.0.2")
            && events[0].subject == format!("service:{}", service.id),
        "{events:?}"
    );

    repos
        .services
        .set_status(service.id, ServiceStatus::Suspended)
        .await
        .unwrap();
    let r = run(&engine, JobKind::ProvisionServices).await;
    assert_eq!(r.count("services_deprovisioned"), 1, "{r:?}");
    assert_eq!(r.count("foreign_objects"), 1, "{r:?}");
    assert_eq!(
        rows_where(&ha, LIST, "comment", "operator").len(),
        1,
        "still left alone"
    );
    assert_eq!(foreign_events(&repos).await.len(), 2);
}

fn rule() -> StaticIpRuleSpec {
    StaticIpRuleSpec {
        list: name("isp-allowed"),
        in_interface_list: name("LAN"),
    }
}

async fn check_add_check(rest: bool) {
    let a = sim(rest).await;
    let ha = a.handle();
    let mut r = router(1, &a);
    if rest {
        r.transport = Transport::Rest;
        r.address = a.rest_url().expect("rest listener");
    }
    let d = driver();
    // An accept rule and a drop rule of another list do not count.
    ha.add_row(
        FILTER,
        &[
            ("chain", "forward"),
            ("action", "accept"),
            ("src-address-list", "!isp-allowed"),
        ],
    )
    .expect("row");
    ha.add_row(
        FILTER,
        &[
            ("chain", "forward"),
            ("action", "drop"),
            ("src-address-list", "!other"),
            ("in-interface-list", "LAN"),
        ],
    )
    .expect("row");
    assert_eq!(
        d.check_static_ip_rule(&r, &rule()).await.unwrap(),
        RuleState::Missing
    );
    assert!(d.add_static_ip_rule(&r, &rule()).await.unwrap(), "added");
    assert!(
        !d.add_static_ip_rule(&r, &rule()).await.unwrap(),
        "a rerun adds nothing"
    );
    let ours = rows_where(&ha, FILTER, "comment", StaticIpRuleSpec::COMMENT);
    assert_eq!(ours.len(), 1, "{ours:?}");
    for (k, v) in [
        ("chain", "forward"),
        ("action", "drop"),
        ("src-address-list", "!isp-allowed"),
        ("in-interface-list", "LAN"),
        ("disabled", "false"),
    ] {
        assert_eq!(ours[0].get(k).map(String::as_str), Some(v), "{k}: {ours:?}");
    }
    assert_eq!(
        d.check_static_ip_rule(&r, &rule()).await.unwrap(),
        RuleState::Present
    );
    assert_eq!(ha.rows(FILTER).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_static_ip_rule_is_checked_added_once_and_then_present_over_the_api() {
    check_add_check(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_static_ip_rule_is_checked_added_once_and_then_present_over_rest() {
    check_add_check(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_rule_of_ours_is_reported_and_enabled_again() {
    let a = sim(false).await;
    let ha = a.handle();
    let r = router(1, &a);
    let d = driver();
    let spec = rule();
    let mut attrs: Vec<(&str, String)> = spec.attributes();
    attrs.push(("disabled", "yes".into()));
    let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ha.add_row(FILTER, &attrs).expect("row");
    assert_eq!(
        d.check_static_ip_rule(&r, &spec).await.unwrap(),
        RuleState::Disabled
    );
    assert!(d.add_static_ip_rule(&r, &spec).await.unwrap());
    assert_eq!(
        d.check_static_ip_rule(&r, &spec).await.unwrap(),
        RuleState::Present
    );
    assert_eq!(ha.rows(FILTER).len(), 1, "enabled, not added beside");
}
