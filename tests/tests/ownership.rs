//! Issue 16, holes 1 and 2, end to end over real TCP to simulated routers:
//! the engine (in-memory repositories) with the RouterOS driver.
//!
//! - Bypass bindings: expiry of a subscriber or a voucher, and a sync, remove
//!   every ip-binding tagged for the subject (bypassed and regular).
//! - Ownership: a same-name user or address-list entry that is not the
//!   subject's (untagged, or tagged for someone else) is left alone, and the
//!   job counts and audits it as foreign.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use isp_core::domain::{
    AuditOutcome, MacAddress, NewSubscriber, NewVoucher, OwnerTag, PhoneNumber, PlanId, RosDuration, RosName,
    Router, RouterCredentials, RouterId, ServiceId, Subscriber, Tenant, TenantId, Transport, Voucher,
};
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, JobKind, JobReport, RunOptions};
use isp_core::memory::{RecordingSms, StaticDirectory};
use isp_core::ports::{FakeClock, Repositories, RouterDriver, StaticIpSpec};
use isp_routeros::client::ClientConfig;
use isp_routeros::driver::{DriverConfig, RouterOsDriver};
use isp_routeros::sim::{SimConfig, SimHandle, SimRouter};

const USER: &str = "api";
const PASSWORD: &str = "Sup3r-S3cret-Pw!";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).single().expect("now")
}

fn mac(i: u8) -> MacAddress {
    MacAddress::from_octets([0x02, 0, 0, 0, 0, i])
}

fn name(s: &str) -> RosName {
    RosName::parse("name", s).unwrap()
}

async fn sim() -> SimRouter {
    SimRouter::start(SimConfig::new(USER, PASSWORD), "127.0.0.1:0".parse().unwrap())
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

/// The engine over fresh in-memory repositories (tenant 1 in UTC) and these routers.
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

async fn expired_subscriber(repos: &Repositories, phone: &str, user: &str) -> Subscriber {
    repos
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: TenantId(1),
            phone: PhoneNumber::parse("phone", phone).unwrap(),
            username: name(user),
            paid_until: now() - chrono::Duration::minutes(5),
        })
        .await
        .expect("subscriber")
}

/// A voucher never used by its activation deadline (already passed).
async fn lapsed_voucher(repos: &Repositories, router: RouterId, code: &str) -> Voucher {
    repos
        .vouchers
        .insert(&NewVoucher {
            tenant_id: TenantId(1),
            router_id: router,
            code: name(code),
            plan_id: PlanId(1),
            activation_deadline: Some(now() - chrono::Duration::minutes(1)),
            purchase_deadline: None,
            duration: RosDuration::from_secs(3600),
        })
        .await
        .expect("voucher")
}

fn rows_where(handle: &SimHandle, menu: &str, key: &str, value: &str) -> Vec<BTreeMap<String, String>> {
    handle
        .rows(menu)
        .into_iter()
        .filter(|r| r.get(key).map(String::as_str) == Some(value))
        .collect()
}

fn bindings_of(handle: &SimHandle, owner: OwnerTag) -> Vec<BTreeMap<String, String>> {
    rows_where(handle, "/ip/hotspot/ip-binding", "comment", &owner.comment())
}

fn add(handle: &SimHandle, menu: &str, attrs: &[(&str, &str)]) {
    handle.add_row(menu, attrs).expect("row added");
}

fn bypass(handle: &SimHandle, device: MacAddress, comment: &str) {
    add(
        handle,
        "/ip/hotspot/ip-binding",
        &[
            ("mac-address", &device.to_string()),
            ("type", "bypassed"),
            ("comment", comment),
        ],
    );
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

/// Hole 1 and 2 on subscriber expiry: the portal's bypass binding (for a
/// device the database does not even know) is removed with the user's
/// session; on the tenant's other router, a staff account with the
/// subscriber's name stays enabled and logged in, and is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_expiry_removes_its_bypass_bindings_and_leaves_a_same_name_staff_account() {
    let (a, b) = (sim().await, sim().await);
    let (ha, hb) = (a.handle(), b.handle());
    let (engine, repos) = engine(vec![router(1, &a), router(2, &b)]).await;
    let sub = expired_subscriber(&repos, "+255712000001", "255712000001").await;
    let other = expired_subscriber(&repos, "+255712000002", "255712000002").await;
    let tag = OwnerTag::Subscriber(sub.id);
    repos
        .devices
        .record_seen(sub.id, mac(1), Some(RouterId(1)), now())
        .await
        .expect("device");

    // Router A: our user, its session, the portal's bypass bindings for the
    // known device and for a second one, and another subscriber's binding
    // for the same device (not this subject's).
    add(
        &ha,
        "/ip/hotspot/user",
        &[("name", sub.username.as_str()), ("comment", &tag.comment())],
    );
    ha.hotspot_login(sub.username.as_str(), &mac(1).to_string(), "10.5.50.2")
        .unwrap();
    bypass(&ha, mac(1), &tag.comment());
    add(
        &ha,
        "/ip/hotspot/ip-binding",
        &[("mac-address", &mac(2).to_string()), ("comment", &tag.comment())],
    );
    // Router B: a staff account with the same name, logged in, untagged.
    add(&hb, "/ip/hotspot/user", &[("name", sub.username.as_str())]);
    hb.hotspot_login(sub.username.as_str(), &mac(9).to_string(), "10.5.50.9")
        .unwrap();
    // And the other expired subscriber's name is used by another subject's user.
    let stranger = OwnerTag::Voucher(isp_core::domain::VoucherId(77));
    add(
        &hb,
        "/ip/hotspot/user",
        &[
            ("name", other.username.as_str()),
            ("comment", &stranger.comment()),
        ],
    );

    let report = run(&engine, JobKind::DisconnectExpired).await;

    // Ours are gone: the device cannot get through again without logging in,
    // and the user cannot log in.
    assert!(
        bindings_of(&ha, tag).is_empty(),
        "{:?}",
        ha.rows("/ip/hotspot/ip-binding")
    );
    assert!(rows_where(&ha, "/ip/hotspot/active", "user", sub.username.as_str()).is_empty());
    let user_a = rows_where(&ha, "/ip/hotspot/user", "name", sub.username.as_str());
    assert_eq!(user_a[0]["disabled"], "true");
    assert!(ha
        .hotspot_login(sub.username.as_str(), &mac(1).to_string(), "10.5.50.2")
        .is_err());
    assert_eq!(report.count("bindings_removed"), 2);
    // Not ours: left alone.
    let staff = rows_where(&hb, "/ip/hotspot/user", "name", sub.username.as_str());
    assert_eq!(staff[0]["disabled"], "false", "the staff account was disabled");
    assert_eq!(
        rows_where(&hb, "/ip/hotspot/active", "user", sub.username.as_str()).len(),
        1,
        "the staff session was removed"
    );
    let stranger_user = rows_where(&hb, "/ip/hotspot/user", "name", other.username.as_str());
    assert_eq!(stranger_user[0]["disabled"], "false");
    // Reported, and our part is done: both expiries are recorded.
    assert_eq!(report.count("foreign_objects"), 2, "{report}");
    assert_eq!(report.count("users_disconnected"), 2, "{report}");
    for s in [&sub, &other] {
        let s = repos.subscribers.get(s.id).await.unwrap();
        assert!(!s.active && s.disconnected_at.is_some(), "{s:?}");
    }
    let events = foreign_events(&repos).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| e.outcome == AuditOutcome::Skipped
        && e.router_id == Some(RouterId(2))
        && e.reason
            .as_deref()
            .is_some_and(|r| r.contains("/ip/hotspot/user"))));
    assert!(events.iter().any(|e| e
        .reason
        .as_deref()
        .is_some_and(|r| r.contains(sub.username.as_str()))));
}

/// Hole 1 and 2 on voucher expiry: the voucher's user, its session and the
/// bypass binding tagged for it go in one batch; a voucher whose code names
/// a staff account removes nothing of the staff's and reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voucher_expiry_removes_its_bypass_binding_and_leaves_a_same_name_staff_account() {
    let a = sim().await;
    let ha = a.handle();
    let (engine, repos) = engine(vec![router(1, &a)]).await;
    let ours = lapsed_voucher(&repos, RouterId(1), "VOUCH1").await;
    let clash = lapsed_voucher(&repos, RouterId(1), "ADMIN").await;
    let tag = OwnerTag::Voucher(ours.id);

    add(
        &ha,
        "/ip/hotspot/user",
        &[("name", "VOUCH1"), ("comment", &tag.comment())],
    );
    ha.hotspot_login("VOUCH1", &mac(3).to_string(), "10.5.50.3")
        .unwrap();
    bypass(&ha, mac(3), &tag.comment());
    // The operator's bypass for the same device is theirs to keep.
    bypass(&ha, mac(4), "front desk");
    add(
        &ha,
        "/ip/hotspot/user",
        &[("name", "ADMIN"), ("comment", "staff")],
    );
    ha.hotspot_login("ADMIN", &mac(5).to_string(), "10.5.50.5")
        .unwrap();

    let report = run(&engine, JobKind::ExpireVouchers).await;

    assert!(rows_where(&ha, "/ip/hotspot/user", "name", "VOUCH1").is_empty());
    assert!(rows_where(&ha, "/ip/hotspot/active", "user", "VOUCH1").is_empty());
    assert!(
        bindings_of(&ha, tag).is_empty(),
        "{:?}",
        ha.rows("/ip/hotspot/ip-binding")
    );
    assert_eq!(
        rows_where(&ha, "/ip/hotspot/ip-binding", "comment", "front desk").len(),
        1
    );
    let admin = rows_where(&ha, "/ip/hotspot/user", "name", "ADMIN");
    assert_eq!(admin.len(), 1, "the staff account was removed");
    assert_eq!(admin[0]["disabled"], "false");
    assert_eq!(rows_where(&ha, "/ip/hotspot/active", "user", "ADMIN").len(), 1);

    assert_eq!(report.count("users_removed"), 1, "{report}");
    assert_eq!(report.count("bindings_removed"), 1, "{report}");
    assert_eq!(report.count("foreign_objects"), 1, "{report}");
    for v in [&ours, &clash] {
        let v = repos.vouchers.get(v.id).await.unwrap();
        assert!(v.removed_from_router, "{v:?}");
    }
    let events = foreign_events(&repos).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].subject, "voucher:ADMIN");
    assert_eq!(events[0].outcome, AuditOutcome::Skipped);
}

/// Hole 1 on sync: a bypass binding that no entitlement backs is removed for
/// real, and counted only because it went; the operator's and an entitled
/// subscriber's stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_removes_bypass_bindings_no_entitlement_backs() {
    let a = sim().await;
    let ha = a.handle();
    let (engine, repos) = engine(vec![router(1, &a)]).await;
    let paid = repos
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: TenantId(1),
            phone: PhoneNumber::parse("phone", "+255712000003").unwrap(),
            username: name("255712000003"),
            paid_until: now() + chrono::Duration::hours(1),
        })
        .await
        .unwrap();
    let unknown = OwnerTag::Subscriber(isp_core::domain::SubscriberId(4242));
    bypass(&ha, mac(1), &unknown.comment());
    bypass(&ha, mac(2), &OwnerTag::Subscriber(paid.id).comment());
    bypass(&ha, mac(3), "front desk");

    let report = run(&engine, JobKind::SyncRouters).await;

    assert!(
        bindings_of(&ha, unknown).is_empty(),
        "{:?}",
        ha.rows("/ip/hotspot/ip-binding")
    );
    assert_eq!(ha.rows("/ip/hotspot/ip-binding").len(), 2);
    assert_eq!(report.count("bindings_removed"), 1, "{report}");
    // Nothing left: the next sync removes and counts nothing.
    let again = run(&engine, JobKind::SyncRouters).await;
    assert_eq!(again.count("bindings_removed"), 0, "{again}");
}

/// Hole 2 on static-IP deprovision: only the service's own entry goes; an
/// entry for the same address tagged for another service, or the
/// operator's, stays (RouterOS keeps one entry per address and list).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_ip_deprovision_removes_only_that_services_entry() {
    let a = sim().await;
    let ha = a.handle();
    let r = router(1, &a);
    let d = driver();
    let spec = StaticIpSpec {
        address: "10.0.0.2".parse().unwrap(),
        list: name("isp-allowed"),
        owner: OwnerTag::Service(ServiceId(1)),
    };
    let entries = |comment: &str| rows_where(&ha, "/ip/firewall/address-list", "comment", comment).len();
    for (address, comment) in [("10.0.0.2", "isp:svc:2"), ("10.0.0.3", "operator")] {
        add(
            &ha,
            "/ip/firewall/address-list",
            &[
                ("list", "isp-allowed"),
                ("address", address),
                ("comment", comment),
            ],
        );
        d.deprovision_static_ip(&r, address.parse().unwrap(), &spec.list, spec.owner)
            .await
            .unwrap();
        assert_eq!(entries(comment), 1, "service 1 removed the entry of {comment:?}");
    }
    // Service 2's own entry goes with its deprovision.
    d.deprovision_static_ip(&r, spec.address, &spec.list, OwnerTag::Service(ServiceId(2)))
        .await
        .unwrap();
    assert_eq!(entries("isp:svc:2"), 0);
    // And service 1's.
    d.provision_static_ip(&r, &spec).await.unwrap();
    assert_eq!(entries("isp:svc:1"), 1);
    d.deprovision_static_ip(&r, spec.address, &spec.list, spec.owner)
        .await
        .unwrap();
    assert_eq!(entries("isp:svc:1"), 0);
    assert_eq!(entries("operator"), 1);
}
