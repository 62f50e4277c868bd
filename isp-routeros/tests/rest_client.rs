//! `RestClient` against the simulator's REST service: the same router state as the API,
//! errors, connection reuse, faults and HTTPS verification.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod client_common;

use std::time::Duration;

use client_common::{bounded, client, quick, rest_client, sim_config, start, PASSWORD, USER};
use isp_core::Error;
use isp_routeros::client::{certificate_fingerprint, ClientConfig, Credentials, TlsOptions};
use isp_routeros::rest::{map_rest_error, RestClient, RestEndpoint, RestError};
use isp_routeros::sim::tls::self_signed;
use isp_routeros::sim::Via;

#[tokio::test]
async fn rest_and_api_share_one_router_state() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let rest = rest_client(&sim, quick(), None);
    let api = client(&sim, quick());

    // PUT through REST, read through the API.
    let id = rest
        .add(
            "/ppp/secret",
            &[
                ("name", "cust-1"),
                ("password", "ppp-Pw-1"),
                ("service", "pppoe"),
                ("comment", "isp:svc:1"),
            ],
        )
        .await
        .unwrap();
    assert!(id.starts_with('*'), "{id}");
    let rows = api
        .print("/ppp/secret", &[".id", "name", "service"], &["name=cust-1"])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id(), Some(id.as_str()));
    assert_eq!(rows[0].get("service"), Some("pppoe"));

    // Add through the API, read through REST with a filter and a proplist.
    let entry = api
        .add(
            "/ip/firewall/address-list",
            &[("list", "isp-allowed"), ("address", "10.0.0.2")],
        )
        .await
        .unwrap();
    let rows = rest
        .print(
            "/ip/firewall/address-list",
            &[".id", "address"],
            &["list=isp-allowed"],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id(), Some(entry.as_str()));
    assert_eq!(rows[0].get("address"), Some("10.0.0.2"));
    assert_eq!(rows[0].get("list"), None, "not in the proplist");

    // PATCH, then GET one.
    rest.set("/ppp/secret", &id, &[("disabled", "yes"), ("profile", "default")])
        .await
        .unwrap();
    let one = rest.get("/ppp/secret", &id).await.unwrap();
    assert_eq!(one.get("disabled"), Some("true"));
    assert_eq!(one.get("name"), Some("cust-1"));
    // Names stand for ids where the menu has names.
    assert_eq!(
        rest.get("/ppp/secret", "cust-1").await.unwrap().id(),
        Some(id.as_str())
    );

    // DELETE, and DELETE again: 404.
    rest.remove("/ppp/secret", &[id.as_str()]).await.unwrap();
    assert!(api.print("/ppp/secret", &[], &[]).await.unwrap().is_empty());
    let again = rest.remove("/ppp/secret", &[id.as_str()]).await.unwrap_err();
    assert!(matches!(again, RestError::NotFound { .. }), "{again:?}");
    assert!(again.is_no_such_item());
    let gone = rest.get("/ppp/secret", &id).await.unwrap_err();
    assert!(gone.is_no_such_item(), "{gone:?}");

    // Every REST request is in the command log as the command it stands for, password redacted.
    let log = handle.command_log();
    let put = log
        .iter()
        .find(|c| c.command == "/ppp/secret/add")
        .expect("PUT logged as add");
    assert_eq!(
        put.via,
        Via::Rest {
            method: "PUT".into(),
            path: "/rest/ppp/secret".into()
        }
    );
    assert!(put
        .attributes
        .contains(&("password".to_owned(), "<redacted>".to_owned())));
    let deletes: Vec<_> = log.iter().filter(|c| c.command == "/ppp/secret/remove").collect();
    assert_eq!(deletes.len(), 2);
    assert!(matches!(&deletes[0].via, Via::Rest { method, .. } if method == "DELETE"));
    assert!(log
        .iter()
        .any(|c| c.via == Via::Api && c.command == "/ip/firewall/address-list/add"));
}

#[tokio::test]
async fn several_ids_and_queries_go_through_post_commands() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let rest = rest_client(&sim, quick(), None);
    let a = handle
        .add_row("/ip/hotspot/user", &[("name", "a"), ("comment", "x")])
        .unwrap();
    let b = handle.add_row("/ip/hotspot/user", &[("name", "b")]).unwrap();
    let c = handle.add_row("/ip/hotspot/user", &[("name", "c")]).unwrap();

    // A query a GET filter cannot say: POST print with .query.
    let rows = rest
        .print("/ip/hotspot/user", &["name"], &["name=a", "name=c", "#|"])
        .await
        .unwrap();
    let mut names: Vec<_> = rows.iter().filter_map(|r| r.get("name")).collect();
    names.sort_unstable();
    assert_eq!(names, ["a", "c"]);
    let print = handle
        .command_log()
        .into_iter()
        .find(|c| c.command == "/ip/hotspot/user/print")
        .unwrap();
    assert_eq!(print.queries, ["name=a", "name=c", "#|"]);
    assert!(matches!(&print.via, Via::Rest { method, .. } if method == "POST"));

    rest.command("/ip/hotspot/user", "disable", &[a.as_str(), b.as_str()], &[])
        .await
        .unwrap();
    let disabled: Vec<_> = handle
        .rows("/ip/hotspot/user")
        .into_iter()
        .filter(|r| r["disabled"] == "true")
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(disabled, ["a", "b"]);

    // Several ids: one POST remove. One of them gone: the router refuses the batch.
    rest.remove("/ip/hotspot/user", &[a.as_str(), b.as_str()])
        .await
        .unwrap();
    assert_eq!(handle.rows("/ip/hotspot/user").len(), 1);
    let err = rest
        .remove("/ip/hotspot/user", &[a.as_str(), c.as_str()])
        .await
        .unwrap_err();
    assert!(err.is_no_such_item(), "{err:?}");
    assert!(matches!(err, RestError::Router { status: 400, .. }), "{err:?}");

    // Any command with a JSON body, e.g. add through POST: `ret` is the new id.
    let mut body = serde_json::Map::new();
    body.insert("name".into(), "d".into());
    let reply = rest.call("/ip/hotspot/user", "add", body).await.unwrap();
    assert!(reply["ret"].as_str().unwrap().starts_with('*'), "{reply}");
    // A single-item menu reads as one row.
    let identity = rest.print("/system/identity", &["name"], &[]).await.unwrap();
    assert_eq!(identity.len(), 1);
    assert_eq!(identity[0].get("name"), Some("MikroTik"));
}

#[tokio::test]
async fn router_refusals_map_onto_the_error_family() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let rest = rest_client(&sim, quick(), None);
    let service = "router sim";

    rest.add("/ppp/secret", &[("name", "dup"), ("password", "x")])
        .await
        .unwrap();
    let err = rest
        .add("/ppp/secret", &[("name", "dup"), ("password", "x")])
        .await
        .unwrap_err();
    assert!(err.is_already_exists(), "{err:?}");
    assert!(
        err.to_string()
            .contains("secret with the same name already exists"),
        "{err}"
    );
    let mapped = map_rest_error(service, err);
    assert!(mapped.is_conflict(), "{mapped:?}");

    let err = rest
        .add(
            "/ip/firewall/address-list",
            &[("list", "l"), ("address", "not-an-ip!")],
        )
        .await
        .unwrap_err();
    let mapped = map_rest_error(service, err);
    assert!(matches!(mapped, Error::Rejected { .. }), "{mapped:?}");
    assert!(mapped.to_string().contains("address"), "{mapped}");

    // Unknown directory: 400 with the router's detail; unknown command of a menu: 406.
    let err = rest.print("/ip/frobnicate", &[], &[]).await.unwrap_err();
    assert!(
        matches!(&err, RestError::Router { status: 400, detail, .. } if detail == "no such command or directory (frobnicate)"),
        "{err:?}"
    );
    let err = rest
        .call("/ip/hotspot/user", "frobnicate", serde_json::Map::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RestError::Router { status: 406, detail, .. } if detail == "no such command or directory (frobnicate)"),
        "{err:?}"
    );
    assert!(matches!(map_rest_error(service, err), Error::Rejected { .. }));

    // A 5xx is transient.
    handle.http_error_on("/ip/hotspot/active/print", 503);
    let err = rest.print("/ip/hotspot/active", &[], &[]).await.unwrap_err();
    assert!(matches!(err, RestError::Server { status: 503, .. }), "{err:?}");
    let mapped = map_rest_error(service, err);
    assert!(mapped.is_transient(), "{mapped:?}");
    // An injected trap is the HTTP error it stands for.
    handle.clear_faults();
    handle.trap_on(
        "/ip/hotspot/user/add",
        "failure: already have user with this name for this server",
    );
    let err = rest.add("/ip/hotspot/user", &[("name", "z")]).await.unwrap_err();
    assert!(err.is_already_exists(), "{err:?}");
    assert_eq!(handle.rest_logins(), 1, "errors keep the connection");
}

#[tokio::test]
async fn wrong_password_is_unauthorized_without_the_password() {
    let sim = start(sim_config()).await;
    let url = sim.rest_url().unwrap();
    let endpoint = RestEndpoint::parse(
        "router sim",
        &url,
        Credentials::new(USER, "Wr0ng-Passw0rd!"),
        TlsOptions::default(),
    )
    .unwrap();
    let rest = RestClient::new(endpoint, quick()).unwrap();
    let err = rest.print("/system/identity", &[], &[]).await.unwrap_err();
    assert!(matches!(err, RestError::Unauthorized { .. }), "{err:?}");
    assert!(!err.is_transient());
    let mapped = map_rest_error("router sim", err.clone());
    assert!(matches!(mapped, Error::Authentication { .. }), "{mapped:?}");
    for shown in [
        err.to_string(),
        format!("{err:?}"),
        mapped.to_string(),
        format!("{mapped:?}"),
        format!("{rest:?}"),
    ] {
        assert!(!shown.contains("Wr0ng-Passw0rd!"), "password leaked: {shown}");
        assert!(!shown.contains(PASSWORD), "password leaked: {shown}");
    }
    assert_eq!(sim.handle().rest_logins(), 0);

    // Right password, but the router refuses logins: 401 as well.
    sim.handle().refuse_logins(true);
    let good = rest_client(&sim, quick(), None);
    let err = good.print("/system/identity", &[], &[]).await.unwrap_err();
    assert!(matches!(err, RestError::Unauthorized { .. }), "{err:?}");
    sim.handle().clear_faults();
    good.print("/system/identity", &[], &[]).await.unwrap();
}

#[tokio::test]
async fn connections_are_kept_alive_and_bounded() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let rest = rest_client(&sim, quick(), None);
    for i in 0..30 {
        rest.add("/ip/hotspot/user", &[("name", &format!("u{i}"))])
            .await
            .unwrap();
        rest.print("/ip/hotspot/user", &[".id"], &[]).await.unwrap();
    }
    assert_eq!(handle.rest_logins(), 1, "sequential calls share one connection");
    assert_eq!(rest.connections(), 1);

    // A burst of concurrent calls: at most max_connections (2) requests at once, and the
    // connections stay open for the next burst.
    let before = handle.rest_logins();
    for _round in 0..3 {
        let calls = (0..40).map(|_| {
            let rest = rest.clone();
            async move { rest.print("/ip/hotspot/user", &[".id"], &[]).await }
        });
        for r in bounded("burst", futures::future::join_all(calls)).await {
            r.unwrap();
        }
    }
    let opened = handle.rest_logins() - before;
    eprintln!("120 concurrent calls opened {opened} more connection(s)");
    // max_connections is 2; one more is tolerated for a pool race (a connection returning to
    // reqwest's pool just after the next request started connecting). One per call would be 120.
    assert!(
        handle.rest_logins() <= 3,
        "120 concurrent calls opened {opened} more connections (limit 2 at a time)"
    );
    assert_eq!(rest.connections(), handle.rest_logins());
    assert!(
        handle.connections() <= 1 + 2 + 1,
        "API idle + REST: {}",
        handle.connections()
    );
}

#[tokio::test]
async fn router_down_is_transient_and_recovers() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let config = ClientConfig {
        connect_attempts: 1,
        ..quick()
    };
    let rest = rest_client(&sim, config, None);
    rest.print("/system/identity", &[], &[]).await.unwrap();
    handle.outage(Duration::from_millis(600));
    let err = bounded("outage", rest.print("/system/identity", &[], &[]))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let mapped = map_rest_error("router sim", err);
    assert!(matches!(mapped, Error::Unavailable { .. }), "{mapped:?}");
    tokio::time::sleep(Duration::from_millis(900)).await;
    bounded("after outage", rest.print("/system/identity", &[], &[]))
        .await
        .unwrap();

    // Nothing listening at all: a connect error, retried, then a cool-down fails fast.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let endpoint = RestEndpoint::http(
        "router gone",
        &closed.to_string(),
        Credentials::new(USER, PASSWORD),
    )
    .unwrap();
    let config = ClientConfig {
        cooldown_min: Duration::from_secs(30),
        ..quick()
    };
    let dead = RestClient::new(endpoint, config).unwrap();
    let err = dead.print("/system/identity", &[], &[]).await.unwrap_err();
    assert!(matches!(err, RestError::Connect { .. }), "{err:?}");
    let started = std::time::Instant::now();
    let err = dead.print("/system/identity", &[], &[]).await.unwrap_err();
    assert!(matches!(err, RestError::Backoff { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(100));
    assert!(map_rest_error("router gone", err).is_transient());
}

#[tokio::test]
async fn a_stalled_or_dropping_router_fails_transiently() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let rest = rest_client(
        &sim,
        ClientConfig {
            command_timeout: Duration::from_millis(400),
            ..quick()
        },
        None,
    );
    rest.print("/system/identity", &[], &[]).await.unwrap();
    handle.stall_mid_sentence(true);
    let err = bounded("stalled", rest.print("/queue/simple", &[], &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, RestError::Timeout { .. }), "{err:?}");
    assert!(err.is_transient());
    handle.clear_faults();
    rest.print("/queue/simple", &[], &[]).await.unwrap();

    handle.drop_on("/ip/hotspot/user/add");
    let err = bounded("dropped", rest.add("/ip/hotspot/user", &[("name", "x")]))
        .await
        .unwrap_err();
    assert!(matches!(err, RestError::ConnectionLost { .. }), "{err:?}");
    assert!(map_rest_error("router sim", err).is_transient());
    handle.clear_faults();
    rest.add("/ip/hotspot/user", &[("name", "x")]).await.unwrap();
}

#[tokio::test]
async fn https_verifies_the_certificate_or_the_pin() {
    let cert = self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let mut config = sim_config();
    config.rest_tls = Some(cert.server_config.clone());
    let sim = start(config).await;
    let handle = sim.handle();
    let url = sim.rest_url().unwrap();
    assert!(url.starts_with("https://"), "{url}");
    let fp = certificate_fingerprint(&cert.cert_der);

    let pinned = rest_client(&sim, quick(), Some(&fp));
    let rows = pinned.print("/system/identity", &["name"], &[]).await.unwrap();
    assert_eq!(rows[0].get("name"), Some("MikroTik"));

    // Another certificate's fingerprint: refused, permanently.
    let wrong = self_signed(&["localhost"]).unwrap();
    let bad = rest_client(&sim, quick(), Some(&certificate_fingerprint(&wrong.cert_der)));
    let err = bad.print("/system/identity", &[], &[]).await.unwrap_err();
    assert!(matches!(err, RestError::Certificate { .. }), "{err:?}");
    assert!(err.to_string().contains("pinned"), "{err}");
    let mapped = map_rest_error("router sim", err);
    assert!(matches!(mapped, Error::Authentication { .. }), "{mapped:?}");

    // No pin: the default roots do not know a self-signed certificate.
    let unpinned = rest_client(&sim, quick(), None);
    let err = unpinned.print("/system/identity", &[], &[]).await.unwrap_err();
    assert!(matches!(err, RestError::Certificate { .. }), "{err:?}");

    // Trusting it as a CA works, by IP address and by a verified name.
    let ca = TlsOptions::with_ca_pem(cert.cert_pem.as_bytes()).unwrap();
    let endpoint =
        RestEndpoint::parse("router sim", &url, Credentials::new(USER, PASSWORD), ca.clone()).unwrap();
    RestClient::new(endpoint, quick())
        .unwrap()
        .print("/system/identity", &[], &[])
        .await
        .unwrap();
    let named = ca.clone().with_server_name("localhost");
    let endpoint = RestEndpoint::parse("router sim", &url, Credentials::new(USER, PASSWORD), named).unwrap();
    RestClient::new(endpoint, quick())
        .unwrap()
        .print("/system/identity", &[], &[])
        .await
        .unwrap();
    let other_name = ca.with_server_name("router.example");
    let endpoint =
        RestEndpoint::parse("router sim", &url, Credentials::new(USER, PASSWORD), other_name).unwrap();
    let err = RestClient::new(endpoint, quick())
        .unwrap()
        .print("/system/identity", &[], &[])
        .await
        .unwrap_err();
    assert!(matches!(err, RestError::Certificate { .. }), "{err:?}");

    // Plain HTTP to the HTTPS port is not a REST answer.
    let plain_url = url.replacen("https://", "http://", 1);
    let endpoint = RestEndpoint::parse(
        "router sim",
        &plain_url,
        Credentials::new(USER, PASSWORD),
        TlsOptions::default(),
    )
    .unwrap();
    let err = RestClient::new(endpoint, quick())
        .unwrap()
        .print("/system/identity", &[], &[])
        .await
        .unwrap_err();
    assert!(
        err.is_transient() || matches!(err, RestError::Protocol { .. }),
        "{err:?}"
    );

    // Only verified connections logged in: the pinned one and the CA ones.
    assert_eq!(handle.rest_logins(), 3);
}
