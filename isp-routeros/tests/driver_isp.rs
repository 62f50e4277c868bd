//! `RouterOsDriver` PPPoE, static-IP, rate-limit and health calls against the simulator, each
//! over the API and over REST (`name::api`, `name::rest`).
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod client_common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use client_common::{assert_logins, client, count, quick, router_for, sim_config, start, verbs};
use isp_core::domain::{Ipv4Cidr, OwnerTag, RateLimit, RosName, SecretPassword, ServiceId, Transport};
use isp_core::ports::{PppoeSpec, QueueSpec, RouterDriver, StaticIpSpec};
use isp_core::Error;
use isp_routeros::driver::{DriverConfig, RouterOsDriver};
use isp_routeros::sim::SimHandle;

fn driver() -> RouterOsDriver {
    RouterOsDriver::new(DriverConfig {
        client: quick(),
        ..DriverConfig::default()
    })
    .unwrap()
}

fn name(s: &str) -> RosName {
    RosName::parse("name", s).unwrap()
}

fn find(handle: &SimHandle, menu: &str, key: &str, value: &str) -> Vec<BTreeMap<String, String>> {
    handle
        .rows(menu)
        .into_iter()
        .filter(|r| r.get(key).map(String::as_str) == Some(value))
        .collect()
}

fn pppoe(user: &str, profile: &str, service: i64) -> PppoeSpec {
    PppoeSpec {
        username: name(user),
        password: SecretPassword::parse("password", "ppp-Secret-77").unwrap(),
        profile: name(profile),
        owner: OwnerTag::Service(ServiceId(service)),
    }
}

async fn pppoe_provision_update_conflict_and_deprovision(transport: Transport) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);

    d.provision_pppoe(&router, &pppoe("cust-1", "default", 3))
        .await
        .unwrap();
    let secret = find(&handle, "/ppp/secret", "name", "cust-1").remove(0);
    assert_eq!(secret["comment"], "isp:svc:3");
    assert_eq!(secret["service"], "pppoe");
    assert_eq!(secret["profile"], "default");
    assert_eq!(secret["password"], "ppp-Secret-77");

    // Provisioning again updates ours in place (and enables it).
    handle.add_row("/ppp/profile", &[("name", "10mbit")]).unwrap();
    let id = secret[".id"].clone();
    let mut changed = pppoe("cust-1", "10mbit", 3);
    changed.password = SecretPassword::parse("password", "new-Pass-88").unwrap();
    d.provision_pppoe(&router, &changed).await.unwrap();
    let secret = find(&handle, "/ppp/secret", "name", "cust-1").remove(0);
    assert_eq!(secret[".id"], id);
    assert_eq!(secret["profile"], "10mbit");
    assert_eq!(secret["password"], "new-Pass-88");
    assert_eq!(secret["disabled"], "false");
    assert_eq!(count(&handle, "/ppp/secret/add"), 1);

    // A secret the operator made by hand is not taken over.
    handle
        .add_row(
            "/ppp/secret",
            &[("name", "manual"), ("password", "x"), ("comment", "made by hand")],
        )
        .unwrap();
    let err = d
        .provision_pppoe(&router, &pppoe("manual", "default", 4))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert!(!err.to_string().contains("ppp-Secret-77"), "{err}");
    let err = d
        .deprovision_pppoe(&router, &name("manual"), OwnerTag::Service(ServiceId(4)))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(find(&handle, "/ppp/secret", "name", "manual").len(), 1);

    // A profile the router lacks is the router's refusal.
    let err = d
        .provision_pppoe(&router, &pppoe("cust-2", "no-such-profile", 5))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("input does not match any value of profile"),
        "{err}"
    );

    // Deprovision removes the secret and drops the live session.
    handle
        .ppp_login("cust-1", "AA:BB:CC:00:00:01", "10.0.0.50")
        .unwrap();
    handle
        .ppp_login("someone-else", "AA:BB:CC:00:00:02", "10.0.0.51")
        .unwrap();
    d.deprovision_pppoe(&router, &name("cust-1"), OwnerTag::Service(ServiceId(3)))
        .await
        .unwrap();
    assert!(find(&handle, "/ppp/secret", "name", "cust-1").is_empty());
    assert!(find(&handle, "/ppp/active", "name", "cust-1").is_empty());
    assert_eq!(find(&handle, "/ppp/active", "name", "someone-else").len(), 1);
    d.deprovision_pppoe(&router, &name("cust-1"), OwnerTag::Service(ServiceId(3)))
        .await
        .unwrap();

    // Passwords never reach the command log in clear (the simulator redacts), nor our errors.
    assert!(handle
        .command_log()
        .iter()
        .flat_map(|c| c.attributes.iter())
        .all(|(_, v)| !v.contains("ppp-Secret-77") && !v.contains("new-Pass-88")));
    assert_logins(&handle, transport, 1, 2);
}

async fn static_ip_entries_are_added_once_and_only_ours_removed(transport: Transport) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);
    let spec = StaticIpSpec {
        address: "10.0.0.2".parse().unwrap(),
        list: name("isp-allowed"),
        owner: OwnerTag::Service(ServiceId(9)),
    };
    d.provision_static_ip(&router, &spec).await.unwrap();
    d.provision_static_ip(&router, &spec).await.unwrap();
    let entries = find(&handle, "/ip/firewall/address-list", "list", "isp-allowed");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["address"], "10.0.0.2");
    assert_eq!(entries[0]["comment"], "isp:svc:9");
    assert_eq!(count(&handle, "/ip/firewall/address-list/add"), 1);

    d.deprovision_static_ip(&router, spec.address, &spec.list, spec.owner)
        .await
        .unwrap();
    assert!(find(&handle, "/ip/firewall/address-list", "list", "isp-allowed").is_empty());
    d.deprovision_static_ip(&router, spec.address, &spec.list, spec.owner)
        .await
        .unwrap();

    // The operator's entry for the same address: provisioning finds it present,
    // deprovisioning leaves it.
    handle
        .add_row(
            "/ip/firewall/address-list",
            &[("list", "isp-allowed"), ("address", "10.0.0.3")],
        )
        .unwrap();
    let other = StaticIpSpec {
        address: "10.0.0.3".parse().unwrap(),
        ..spec.clone()
    };
    d.provision_static_ip(&router, &other).await.unwrap();
    d.deprovision_static_ip(&router, other.address, &other.list, other.owner)
        .await
        .unwrap();
    assert_eq!(
        find(&handle, "/ip/firewall/address-list", "address", "10.0.0.3").len(),
        1
    );
    assert_eq!(count(&handle, "/ip/firewall/address-list/add"), 1);

    // A disabled entry of ours is enabled again.
    d.provision_static_ip(&router, &spec).await.unwrap();
    let id = find(&handle, "/ip/firewall/address-list", "address", "10.0.0.2")[0][".id"].clone();
    // The operator disables it (over the API, whatever the driver uses).
    client(&sim, quick())
        .disable("/ip/firewall/address-list", &[&id])
        .await
        .unwrap();
    d.provision_static_ip(&router, &spec).await.unwrap();
    assert_eq!(
        find(&handle, "/ip/firewall/address-list", "address", "10.0.0.2")[0]["disabled"],
        "false"
    );
}

async fn rate_limits_create_update_only_when_changed_and_remove_ours(transport: Transport) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);
    let mut spec = QueueSpec {
        name: name("svc-3"),
        target: Ipv4Cidr::parse("target", "10.0.0.2").unwrap(),
        limit: RateLimit::parse("limit", "10M/20M").unwrap(),
        owner: OwnerTag::Service(ServiceId(3)),
    };
    d.set_rate_limit(&router, &spec).await.unwrap();
    let q = find(&handle, "/queue/simple", "name", "svc-3").remove(0);
    assert_eq!(q["target"], "10.0.0.2/32");
    assert_eq!(
        RateLimit::parse("max-limit", &q["max-limit"]).unwrap(),
        spec.limit
    );
    assert_eq!(q["comment"], "isp:svc:3");

    handle.clear_command_log();
    d.set_rate_limit(&router, &spec).await.unwrap();
    assert!(verbs(&handle, "set").is_empty(), "nothing changed, nothing sent");
    assert!(verbs(&handle, "add").is_empty());

    spec.limit = RateLimit::parse("limit", "5M/10M").unwrap();
    d.set_rate_limit(&router, &spec).await.unwrap();
    assert_eq!(verbs(&handle, "set"), ["/queue/simple/set"]);
    let q = find(&handle, "/queue/simple", "name", "svc-3").remove(0);
    assert_eq!(
        RateLimit::parse("max-limit", &q["max-limit"]).unwrap(),
        spec.limit
    );

    handle
        .add_row(
            "/queue/simple",
            &[
                ("name", "office"),
                ("target", "10.0.1.0/24"),
                ("max-limit", "1M/1M"),
            ],
        )
        .unwrap();
    let theirs = QueueSpec {
        name: name("office"),
        ..spec.clone()
    };
    assert!(d
        .set_rate_limit(&router, &theirs)
        .await
        .unwrap_err()
        .is_conflict());
    assert!(d
        .remove_rate_limit(&router, &name("office"), spec.owner)
        .await
        .unwrap_err()
        .is_conflict());
    assert_eq!(find(&handle, "/queue/simple", "name", "office").len(), 1);

    d.remove_rate_limit(&router, &spec.name, spec.owner)
        .await
        .unwrap();
    assert!(find(&handle, "/queue/simple", "name", "svc-3").is_empty());
    d.remove_rate_limit(&router, &spec.name, spec.owner)
        .await
        .unwrap();
}

async fn health_reads_identity_resources_and_the_router_clock(transport: Transport) {
    let mut config = sim_config();
    config.identity = "main-office".into();
    let sim = start(config).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);
    let t = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
    handle.set_clock(t);

    let health = d.health(&router).await.unwrap();
    assert_eq!(health.identity, "main-office");
    assert!(
        health.version.as_deref().unwrap_or_default().starts_with("7."),
        "{health:?}"
    );
    assert!(health.uptime.is_some());
    assert!(health.cpu_load.is_some());
    assert!(health.free_memory.unwrap_or(0) > 0);
    assert!(health.total_memory.unwrap_or(0) >= health.free_memory.unwrap_or(0));
    let clock = health.clock.expect("the simulator's zone is UTC");
    let skew = (clock - t).num_seconds().abs();
    assert!(skew <= 2, "router clock {clock} vs set {t}");
    assert_eq!(verbs(&handle, "print").len(), 3);

    handle.advance_clock(Duration::from_secs(3600));
    let later = d.health(&router).await.unwrap().clock.unwrap();
    assert!((later - t).num_seconds() >= 3600);
    assert_logins(&handle, transport, 1, 2);
}

over_both!(
    pppoe_provision_update_conflict_and_deprovision,
    static_ip_entries_are_added_once_and_only_ours_removed,
    rate_limits_create_update_only_when_changed_and_remove_ours,
    health_reads_identity_resources_and_the_router_clock,
);
