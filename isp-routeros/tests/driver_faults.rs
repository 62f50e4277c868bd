//! `RouterOsDriver` under faults, pooling and transports: one login per
//! router (REST: one per kept-alive connection), dropped connections, routers
//! down, refused logins, traps, stalls, TLS and pinning. The behaviour tests
//! run over the API and over REST (`name::api`, `name::rest`).
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod client_common;

use std::sync::Arc;
use std::time::Duration;

use client_common::{assert_logins, bounded, quick, router_for, sim_config, start, PASSWORD};
use isp_core::domain::{
    MacAddress, OwnerTag, RosName, SecretPassword, ServiceId, SubscriberId, Transport, VoucherId,
};
use isp_core::ports::{HotspotUserSpec, Menu, PppoeSpec, RouterDriver, StaticIpSpec};
use isp_core::Error;
use isp_routeros::client::certificate_fingerprint;
use isp_routeros::driver::{DriverConfig, RouterOsDriver};
use isp_routeros::sim::tls::self_signed;

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

fn static_ip() -> StaticIpSpec {
    StaticIpSpec {
        address: "10.0.0.9".parse().unwrap(),
        list: name("isp-allowed"),
        owner: OwnerTag::Service(ServiceId(9)),
    }
}

fn pppoe() -> PppoeSpec {
    PppoeSpec {
        username: name("cust-9"),
        password: SecretPassword::parse("password", "ppp-Pw-1234").unwrap(),
        profile: name("default"),
        owner: OwnerTag::Service(ServiceId(9)),
    }
}

fn voucher(code: &str) -> HotspotUserSpec {
    HotspotUserSpec {
        name: name(code),
        password: None,
        profile: None,
        limit_uptime: None,
        mac: None,
        owner: OwnerTag::Voucher(VoucherId(1)),
    }
}

async fn one_login_per_router_across_many_calls(transport: Transport) {
    let a = start(sim_config()).await;
    let b = start(sim_config()).await;
    let d = Arc::new(driver());
    let ra = router_for(1, &a, transport, None);
    let rb = router_for(2, &b, transport, None);

    let mut calls = Vec::new();
    for i in 0..40u8 {
        let (d, r) = (d.clone(), if i % 2 == 0 { ra.clone() } else { rb.clone() });
        calls.push(tokio::spawn(async move {
            match i % 4 {
                0 => d.snapshot(&r, &[Menu::HotspotActive]).await.map(|_| ()),
                1 => d.health(&r).await.map(|_| ()),
                2 => {
                    d.block_device(
                        &r,
                        MacAddress::from_octets([2, 0, 0, 0, 1, i]),
                        OwnerTag::Subscriber(SubscriberId(1)),
                    )
                    .await
                }
                _ => d
                    .add_hotspot_user(&r, &voucher(&format!("V{i}")))
                    .await
                    .map(|_| ()),
            }
        }));
    }
    for c in calls {
        bounded("driver call", c).await.unwrap().unwrap();
    }
    assert_logins(&a.handle(), transport, 1, 2);
    assert_logins(&b.handle(), transport, 1, 2);
    assert_eq!(d.logins(ra.id), a.handle().logins());
    assert_eq!(d.logins(rb.id), b.handle().logins());
}

async fn a_dropped_connection_is_transient_and_the_next_call_reconnects(transport: Transport) {
    let mut config = sim_config();
    config.latency = Duration::from_millis(400);
    let sim = start(config).await;
    let handle = sim.handle();
    let d = Arc::new(driver());
    let router = router_for(1, &sim, transport, None);
    d.health(&router).await.unwrap();
    handle.clear_command_log();

    let call = {
        let (d, r) = (d.clone(), router.clone());
        tokio::spawn(async move { d.snapshot(&r, &[Menu::HotspotActive, Menu::PppActive]).await })
    };
    // Drop once the snapshot has reached the router (its reply is 400 ms away).
    bounded("snapshot reaches the router", async {
        while !handle.command_log().iter().any(|c| c.command.contains("/active")) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    handle.drop_connections();
    let err = bounded("snapshot", call).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("router sim-1"), "{err}");

    handle.set_latency(Duration::ZERO);
    d.snapshot(&router, &[Menu::HotspotActive]).await.unwrap();
    assert_logins(&handle, transport, 2, 2);
}

async fn a_router_that_is_down_is_transient_and_comes_back(transport: Transport) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);
    d.health(&router).await.unwrap();
    handle.outage(Duration::from_millis(700));
    let err = bounded("outage", d.provision_static_ip(&router, &static_ip()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("router sim-1"), "{err}");
    assert!(handle.rows("/ip/firewall/address-list").is_empty());
    // Retry while the router is away; the first call after it is back succeeds.
    bounded("after outage", async {
        loop {
            match d.provision_static_ip(&router, &static_ip()).await {
                Ok(_) => break,
                Err(e) if e.is_transient() => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("{e:?}"),
            }
        }
    })
    .await;
    assert_eq!(handle.rows("/ip/firewall/address-list").len(), 1);
}

async fn a_refused_login_is_authentication_without_the_password(transport: Transport) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    handle.refuse_logins(true);
    let d = driver();
    let router = router_for(1, &sim, transport, None);
    let err = d.health(&router).await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert!(!err.is_transient());
    for shown in [
        err.to_string(),
        format!("{err:?}"),
        format!("{d:?}"),
        format!("{router:?}"),
    ] {
        assert!(!shown.contains(PASSWORD), "password leaked: {shown}");
    }
    let why = match transport {
        Transport::Rest => "401 Unauthorized",
        _ => "invalid user name or password",
    };
    assert!(err.to_string().contains(why), "{err}");

    handle.clear_faults();
    d.health(&router).await.unwrap();
}

async fn traps_map_onto_the_error_family(transport: Transport) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);

    handle.trap_on(
        "/ip/hotspot/user/add",
        "failure: already have user with this name for this server",
    );
    let err = d.add_hotspot_user(&router, &voucher("X1")).await.unwrap_err();
    assert!(err.is_conflict(), "{err:?}");

    handle.clear_faults();
    handle.trap_on(
        "/ip/hotspot/user/add",
        "invalid time value for argument limit-uptime",
    );
    let err = d.add_hotspot_user(&router, &voucher("X2")).await.unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    assert!(err.to_string().contains("limit-uptime"), "{err}");

    // `no such item` on remove: already gone is success.
    handle.clear_faults();
    let id = handle
        .hotspot_login("u", "02:00:00:00:00:01", "10.5.50.2")
        .unwrap();
    handle.trap_on("/ip/hotspot/active/remove", "no such item");
    assert_eq!(d.remove_hotspot_sessions(&router, &[id]).await.unwrap(), 1);

    // A print that traps fails the whole call.
    handle.trap_on("/ip/hotspot/cookie/print", "failure: cookie table locked");
    let err = d
        .disconnect_hotspot(
            &router,
            &[isp_core::ports::HotspotTarget {
                username: Some(name("u")),
                macs: vec![],
                owner: OwnerTag::Subscriber(SubscriberId(1)),
                remove_user: false,
            }],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    assert!(err.to_string().contains("cookie table locked"), "{err}");
    // A PPP secret name taken meanwhile is a conflict, over either transport.
    handle.trap_on(
        "/ppp/secret/add",
        "failure: secret with the same name already exists",
    );
    let err = d.provision_pppoe(&router, &pppoe()).await.unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("ppp-Pw-1234"), "{err}");
    // traps keep the connection(s)
    assert_logins(&handle, transport, 1, 2);
}

async fn a_stalled_router_times_out_transiently(transport: Transport) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = RouterOsDriver::new(DriverConfig {
        client: isp_routeros::client::ClientConfig {
            command_timeout: Duration::from_millis(400),
            ..quick()
        },
        ..DriverConfig::default()
    })
    .unwrap();
    let router = router_for(1, &sim, transport, None);
    d.health(&router).await.unwrap();
    handle.stall_mid_sentence(true);
    let err = bounded("stalled", d.snapshot(&router, &[Menu::Queues]))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
    handle.clear_faults();
    d.snapshot(&router, &[Menu::Queues]).await.unwrap();
}

#[tokio::test]
async fn api_ssl_with_a_pinned_fingerprint() {
    let cert = self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let mut config = sim_config();
    config.tls = Some(cert.server_config.clone());
    let sim = start(config).await;
    let d = driver();
    let fp = certificate_fingerprint(&cert.cert_der);
    let router = router_for(1, &sim, Transport::ApiSsl, Some(fp));
    let health = d.health(&router).await.unwrap();
    assert_eq!(health.identity, "MikroTik");

    let wrong = self_signed(&["localhost"]).unwrap();
    let bad = router_for(
        2,
        &sim,
        Transport::ApiSsl,
        Some(certificate_fingerprint(&wrong.cert_der)),
    );
    let err = d.health(&bad).await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");

    // Without a pin the default roots do not know a self-signed certificate.
    let unpinned = router_for(3, &sim, Transport::ApiSsl, None);
    let err = d.health(&unpinned).await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert_eq!(sim.handle().logins(), 1);
}

#[tokio::test]
async fn rest_https_with_a_pinned_fingerprint() {
    let cert = self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let mut config = sim_config();
    config.rest_tls = Some(cert.server_config.clone());
    let sim = start(config).await;
    let handle = sim.handle();
    let d = driver();
    let fp = certificate_fingerprint(&cert.cert_der);
    let router = router_for(1, &sim, Transport::Rest, Some(fp));
    assert!(router.address.starts_with("https://"), "{}", router.address);
    let health = d.health(&router).await.unwrap();
    assert_eq!(health.identity, "MikroTik");
    d.provision_static_ip(&router, &static_ip()).await.unwrap();
    assert_eq!(handle.rows("/ip/firewall/address-list").len(), 1);

    // Another certificate's fingerprint: refused before any request is made.
    let logged_in = handle.rest_logins();
    let wrong = self_signed(&["localhost"]).unwrap();
    let bad = router_for(
        2,
        &sim,
        Transport::Rest,
        Some(certificate_fingerprint(&wrong.cert_der)),
    );
    handle.clear_command_log();
    let err = d.health(&bad).await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(!err.is_transient());
    let err = d
        .deprovision_static_ip(&bad, static_ip().address, &static_ip().list, static_ip().owner)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert_eq!(handle.rows("/ip/firewall/address-list").len(), 1);

    // Without a pin the default roots do not know a self-signed certificate.
    let unpinned = router_for(3, &sim, Transport::Rest, None);
    let err = d.health(&unpinned).await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert!(handle.command_log().is_empty(), "no request got through");
    assert_eq!(
        handle.rest_logins(),
        logged_in,
        "only the pinned router logged in"
    );
}

#[tokio::test]
async fn a_bad_rest_address_is_invalid_input_without_traffic() {
    let sim = start(sim_config()).await;
    let d = driver();
    let mut router = router_for(1, &sim, Transport::Rest, None);
    router.address = format!("ftp://{}", sim.addr());
    let err = d.health(&router).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(err.to_string().contains("address"), "{err}");
    assert!(sim.handle().command_log().is_empty());
    assert_eq!(sim.handle().connections(), 0);
}

async fn changed_credentials_get_a_new_pool(transport: Transport) {
    let sim = start(sim_config()).await;
    let d = driver();
    let mut router = router_for(1, &sim, transport, None);
    d.health(&router).await.unwrap();
    router.credentials = isp_core::domain::RouterCredentials::new("api", "rotated-Pw-1");
    let err = d.health(&router).await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("rotated-Pw-1"));
}

over_both!(
    one_login_per_router_across_many_calls,
    a_dropped_connection_is_transient_and_the_next_call_reconnects,
    a_router_that_is_down_is_transient_and_comes_back,
    a_refused_login_is_authentication_without_the_password,
    traps_map_onto_the_error_family,
    a_stalled_router_times_out_transiently,
    changed_credentials_get_a_new_pool,
);
