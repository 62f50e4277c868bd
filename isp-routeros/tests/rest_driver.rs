//! The driver over REST gives the same results as over the API: the same router state and the
//! same commands, for the provisioning and deprovisioning the seed-004 system does (a PPPoE
//! secret, a static-IP address-list entry), and REST through one router state with the API.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod client_common;

use std::collections::BTreeMap;

use client_common::{quick, router_for, sim_config, start};
use isp_core::domain::{OwnerTag, RosName, SecretPassword, ServiceId, Transport};
use isp_core::ports::{Menu, PppoeSpec, RouterDriver, StaticIpSpec};
use isp_routeros::driver::{DriverConfig, RouterOsDriver};
use isp_routeros::sim::{SimHandle, Via};

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

fn pppoe(user: &str, service: i64) -> PppoeSpec {
    PppoeSpec {
        username: name(user),
        password: SecretPassword::parse("password", "Pppoe-Pw-42").unwrap(),
        profile: name("default"),
        owner: OwnerTag::Service(ServiceId(service)),
    }
}

fn static_ip(address: &str, service: i64) -> StaticIpSpec {
    StaticIpSpec {
        address: address.parse().unwrap(),
        list: name("isp-allowed"),
        owner: OwnerTag::Service(ServiceId(service)),
    }
}

/// A menu's rows without what depends on the moment (`creation-time`).
fn table(handle: &SimHandle, menu: &str) -> Vec<BTreeMap<String, String>> {
    handle
        .rows(menu)
        .into_iter()
        .map(|mut r| {
            r.remove("creation-time");
            r
        })
        .collect()
}

/// One logged command: name, sorted attributes, queries.
type Logged = (String, Vec<(String, String)>, Vec<String>);

/// The commands the router received, in order, with their attributes and queries, and which
/// service they came through. Concurrent reads may arrive in either order: callers sort.
fn commands(handle: &SimHandle) -> Vec<Logged> {
    handle
        .command_log()
        .into_iter()
        .map(|c| {
            let mut attributes = c.attributes;
            // `numbers` (API) and `.id` (REST) name the same items.
            for (k, _) in &mut attributes {
                if k == "numbers" {
                    *k = ".id".into();
                }
            }
            attributes.sort();
            (c.command, attributes, c.queries)
        })
        .collect()
}

/// The provisioning day of a seed-004 system: connect two services, reconnect one, disconnect
/// both (one of them twice), with a customer online on PPPoE.
async fn lifecycle(transport: Transport) -> (SimHandle, Vec<Logged>, String) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);
    d.health(&router).await.unwrap();
    handle.clear_command_log();

    // Connect: a PPPoE customer and a static-IP customer.
    d.provision_pppoe(&router, &pppoe("cust-1", 1)).await.unwrap();
    d.provision_static_ip(&router, &static_ip("10.0.0.2", 2))
        .await
        .unwrap();
    // The cron runs again: nothing new.
    d.provision_pppoe(&router, &pppoe("cust-1", 1)).await.unwrap();
    d.provision_static_ip(&router, &static_ip("10.0.0.2", 2))
        .await
        .unwrap();
    let mut snapshot = d
        .snapshot(&router, &[Menu::PppSecrets, Menu::AddressList])
        .await
        .unwrap();
    snapshot.ppp_secrets.sort_by(|a, b| a.name.cmp(&b.name));
    let provisioned = format!("{:?} {:?}", snapshot.ppp_secrets, snapshot.address_list);
    handle
        .ppp_login("cust-1", "AA:BB:CC:00:00:01", "10.0.0.50")
        .unwrap();

    // Disconnect both; again (already gone is fine).
    d.deprovision_pppoe(&router, &name("cust-1"), OwnerTag::Service(ServiceId(1)))
        .await
        .unwrap();
    d.deprovision_static_ip(
        &router,
        "10.0.0.2".parse().unwrap(),
        &name("isp-allowed"),
        OwnerTag::Service(ServiceId(2)),
    )
    .await
    .unwrap();
    d.deprovision_pppoe(&router, &name("cust-1"), OwnerTag::Service(ServiceId(1)))
        .await
        .unwrap();
    d.deprovision_static_ip(
        &router,
        "10.0.0.2".parse().unwrap(),
        &name("isp-allowed"),
        OwnerTag::Service(ServiceId(2)),
    )
    .await
    .unwrap();

    let log = handle.command_log();
    let expected_via = |v: &Via| match transport {
        Transport::Rest => matches!(v, Via::Rest { .. }),
        _ => *v == Via::Api,
    };
    assert!(log.iter().all(|c| expected_via(&c.via)), "{transport:?}: {log:?}");
    let cmds = commands(&handle);
    drop(d);
    (handle, cmds, provisioned)
}

#[tokio::test]
async fn provisioning_over_rest_matches_the_api() {
    let (api, api_cmds, api_state) = lifecycle(Transport::Api).await;
    let (rest, rest_cmds, rest_state) = lifecycle(Transport::Rest).await;

    // What the engine saw after provisioning, and what the routers hold at the end.
    assert_eq!(api_state, rest_state);
    assert!(
        api_state.contains("cust-1") && api_state.contains("10.0.0.2"),
        "{api_state}"
    );
    for menu in ["/ppp/secret", "/ppp/active", "/ip/firewall/address-list"] {
        assert_eq!(table(&api, menu), table(&rest, menu), "{menu}");
    }
    assert!(table(&rest, "/ppp/secret").is_empty());
    assert!(
        table(&rest, "/ppp/active").is_empty(),
        "the live session was dropped"
    );
    assert!(table(&rest, "/ip/firewall/address-list").is_empty());
    // Every removal the same, item for item.
    let removed = |h: &SimHandle| -> Vec<(String, String)> {
        h.removals()
            .into_iter()
            .map(|r| {
                (
                    r.menu,
                    r.row
                        .get("name")
                        .or(r.row.get("address"))
                        .cloned()
                        .unwrap_or_default(),
                )
            })
            .collect()
    };
    assert_eq!(removed(&api), removed(&rest));
    assert_eq!(removed(&rest).len(), 3, "secret, session, entry");

    // The same commands with the same arguments (reads issued together may arrive in either
    // order, so compare sorted), passwords redacted in both logs.
    let (mut a, mut r) = (api_cmds.clone(), rest_cmds.clone());
    a.sort();
    r.sort();
    assert_eq!(a, r);
    let adds: Vec<_> = rest_cmds
        .iter()
        .filter(|c| c.0.ends_with("/add"))
        .map(|c| c.0.as_str())
        .collect();
    assert_eq!(adds, ["/ppp/secret/add", "/ip/firewall/address-list/add"]);
    assert!(rest_cmds
        .iter()
        .flat_map(|c| c.1.iter())
        .all(|(_, v)| !v.contains("Pppoe-Pw-42")));
}

#[tokio::test]
async fn rest_provisions_what_the_api_reads_and_back() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let over_rest = router_for(1, &sim, Transport::Rest, None);
    let over_api = router_for(2, &sim, Transport::Api, None);

    d.provision_pppoe(&over_rest, &pppoe("cust-7", 7)).await.unwrap();
    d.provision_static_ip(&over_api, &static_ip("10.0.0.7", 7))
        .await
        .unwrap();
    let via_api = d
        .snapshot(&over_api, &[Menu::PppSecrets, Menu::AddressList])
        .await
        .unwrap();
    let via_rest = d
        .snapshot(&over_rest, &[Menu::PppSecrets, Menu::AddressList])
        .await
        .unwrap();
    assert_eq!(via_api, via_rest);
    assert_eq!(via_rest.ppp_secrets.len(), 1);
    assert_eq!(via_rest.ppp_secrets[0].comment.as_deref(), Some("isp:svc:7"));
    assert_eq!(via_rest.address_list.len(), 1);

    // Provisioning the same secret over the API finds REST's and keeps it.
    d.provision_pppoe(&over_api, &pppoe("cust-7", 7)).await.unwrap();
    assert_eq!(handle.rows("/ppp/secret").len(), 1);
    // Deprovision over the other transport each.
    d.deprovision_pppoe(&over_api, &name("cust-7"), OwnerTag::Service(ServiceId(7)))
        .await
        .unwrap();
    d.deprovision_static_ip(
        &over_rest,
        "10.0.0.7".parse().unwrap(),
        &name("isp-allowed"),
        OwnerTag::Service(ServiceId(7)),
    )
    .await
    .unwrap();
    assert!(handle.rows("/ppp/secret").is_empty());
    assert!(handle.rows("/ip/firewall/address-list").is_empty());
    assert!(handle.rest_logins() >= 1);
    assert_eq!(handle.logins(), handle.rest_logins() + 1, "one API login");
}
