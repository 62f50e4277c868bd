//! The RouterOS client against the simulator over real TCP: commands, tags,
//! listen and cancel, the pool, and faults.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod client_common;

use std::time::{Duration, Instant};

use client_common::{bounded, client, count, quick, sim_config, start, PASSWORD, USER};
use futures::StreamExt;
use isp_routeros::client::{
    map_ros_error, Client, ClientConfig, ClientError, Connection, Credentials, Endpoint, ListenEvent,
    TrapKind,
};
use isp_routeros::proto::Request;

const LIST: &str = "/ip/firewall/address-list";

#[tokio::test]
async fn add_print_set_remove_round_trip() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let c = client(&sim, quick());

    let id = c
        .add(
            LIST,
            &[
                ("list", "isp-allowed"),
                ("address", "10.0.0.2"),
                ("comment", "isp:svc:1"),
            ],
        )
        .await
        .unwrap();
    assert!(id.starts_with('*'), "{id}");
    c.add(LIST, &[("list", "other"), ("address", "10.0.0.3")])
        .await
        .unwrap();

    let rows = c
        .print(LIST, &[".id", "address", "comment"], &["list=isp-allowed"])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id(), Some(id.as_str()));
    assert_eq!(rows[0].get("address"), Some("10.0.0.2"));
    assert_eq!(rows[0].get("list"), None, ".proplist limits the properties");
    assert_eq!(c.count(LIST, &[]).await.unwrap(), 2);

    c.set(LIST, &[&id], &[("comment", "isp:svc:2")]).await.unwrap();
    assert_eq!(handle.rows(LIST)[0]["comment"], "isp:svc:2");
    c.disable(LIST, &[&id]).await.unwrap();
    let rows = c.print(LIST, &[".id", "disabled"], &[]).await.unwrap();
    assert_eq!(
        rows.iter()
            .find(|r| r.id() == Some(id.as_str()))
            .unwrap()
            .flag("disabled"),
        Some(true)
    );

    c.remove(LIST, &[&id]).await.unwrap();
    let again = c.remove(LIST, &[&id]).await.unwrap_err();
    assert!(again.is_no_such_item(), "{again:?}");
    assert!(map_ros_error("router sim", again).is_not_found());

    // A print that finds nothing (`!empty` then `!done`) is just no rows.
    let none = c.print(LIST, &[], &["list=nothing-here"]).await.unwrap();
    assert!(none.is_empty());
    assert_eq!(c.logins(), 1);
    assert_eq!(handle.logins(), 1);
}

#[tokio::test]
async fn many_tagged_commands_in_flight_on_one_connection() {
    let mut config = sim_config();
    let latency = Duration::from_millis(1500);
    config.latency = latency;
    let sim = start(config).await;
    let handle = sim.handle();
    let c = client(&sim, quick());
    c.print("/system/identity", &[], &[]).await.unwrap();
    handle.clear_command_log();

    let prints = (0..20).map(|_| c.print("/system/identity", &["name"], &[]));
    let results = bounded("20 prints", futures::future::join_all(prints)).await;
    for r in results {
        assert_eq!(r.unwrap()[0].get("name"), Some("MikroTik"));
    }
    // A client that waited for each reply could not send the next print before
    // the first reply (held back by the latency): all 20 arrive within it.
    let arrivals: Vec<Instant> = handle
        .command_log()
        .iter()
        .filter(|c| c.command == "/system/identity/print")
        .map(|c| c.instant)
        .collect();
    assert_eq!(arrivals.len(), 20);
    let spread = arrivals[arrivals.len() - 1] - arrivals[0];
    assert!(spread < latency, "prints sent one by one: {spread:?}");
    assert_eq!(handle.logins(), 1);
    let connections: std::collections::BTreeSet<u64> =
        handle.command_log().iter().map(|c| c.connection).collect();
    assert_eq!(connections.len(), 1, "{connections:?}");
    let tags: std::collections::BTreeSet<Option<String>> = handle
        .command_log()
        .iter()
        .filter(|c| c.command != "/login")
        .map(|c| c.tag.clone())
        .collect();
    assert_eq!(tags.len(), 20, "every command has its own tag");
    assert!(!tags.contains(&None));
}

#[tokio::test]
async fn tag_position_does_not_matter() {
    for tag_first in [false, true] {
        let mut config = sim_config();
        config.tag_first = tag_first;
        let sim = start(config).await;
        let c = client(&sim, quick());
        let id = c
            .add("/ip/hotspot/user", &[("name", "alice"), ("password", "pw")])
            .await
            .unwrap();
        let rows = c.print("/ip/hotspot/user", &[".id", "name"], &[]).await.unwrap();
        assert_eq!(rows[0].id(), Some(id.as_str()), "tag_first={tag_first}");
    }
}

#[tokio::test]
async fn second_connection_only_when_the_first_is_busy() {
    let mut config = sim_config();
    config.latency = Duration::from_millis(300);
    let sim = start(config).await;
    let handle = sim.handle();
    let c = client(
        &sim,
        ClientConfig {
            max_connections: 2,
            max_in_flight: 3,
            ..quick()
        },
    );
    let prints = (0..10).map(|_| c.print("/system/identity", &["name"], &[]));
    for r in bounded("10 prints", futures::future::join_all(prints)).await {
        r.unwrap();
    }
    assert_eq!(handle.logins(), 2);
    assert_eq!(c.logins(), 2);
    // Idle again: the pool reuses what it has.
    for _ in 0..5 {
        c.print("/system/identity", &["name"], &[]).await.unwrap();
    }
    assert_eq!(handle.logins(), 2);
}

#[tokio::test]
async fn listen_reports_changes_and_cancel_ends_it() {
    // Newer routers mark removed items `.dead=true`, older ones `.dead=yes`.
    for dead_value in ["true", "yes"] {
        let mut config = sim_config();
        config.dead_value = dead_value.into();
        let sim = start(config).await;
        let handle = sim.handle();
        let c = client(&sim, quick());
        let mut stream = c.listen(Request::new(format!("{LIST}/listen"))).await.unwrap();
        // The router answers in order on the connection: once a later print is
        // answered, the listen is registered.
        c.print("/system/identity", &[], &[]).await.unwrap();
        let id = handle
            .add_row(LIST, &[("list", "watch"), ("address", "10.9.9.9")])
            .unwrap();
        match bounded("listen add", stream.next()).await {
            Some(Ok(ListenEvent::Row(row))) => {
                assert_eq!(row.id(), Some(id.as_str()));
                assert_eq!(row.get("address"), Some("10.9.9.9"));
            }
            other => panic!("expected a row, got {other:?}"),
        }
        // Other commands share the connection meanwhile.
        c.remove(LIST, &[&id]).await.unwrap();
        match bounded("listen remove", stream.next()).await {
            Some(Ok(ListenEvent::Dead(dead))) => assert_eq!(dead, id, ".dead={dead_value}"),
            other => panic!("expected a dead item (.dead={dead_value}), got {other:?}"),
        }
        bounded("cancel", stream.cancel()).await.unwrap();
        assert_eq!(count(&handle, "/cancel"), 1);
        assert_eq!(handle.logins(), 1);
        c.print(LIST, &[], &[]).await.unwrap();
    }
}

#[tokio::test]
async fn cancel_all_stops_every_listen_on_the_connection() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let c = client(&sim, quick());
    let conn = c.connection().await.unwrap();
    let mut a = conn
        .listen(Request::new("/ip/hotspot/active/listen"))
        .await
        .unwrap();
    let mut b = conn.listen(Request::new(format!("{LIST}/listen"))).await.unwrap();
    // A later command answered on the same connection: both listens are registered.
    conn.run(Request::new("/system/identity/print")).await.unwrap();
    assert_eq!(conn.in_flight(), 2);
    bounded("cancel all", conn.cancel_all()).await.unwrap();
    assert!(bounded("first listen ends", a.next()).await.is_none());
    assert!(bounded("second listen ends", b.next()).await.is_none());
    assert_eq!(conn.in_flight(), 0);
    let cancel = handle
        .command_log()
        .into_iter()
        .find(|c| c.command == "/cancel")
        .unwrap();
    assert!(cancel.attributes.is_empty(), "no =tag=: {cancel:?}");
    c.print("/system/identity", &[], &[]).await.unwrap();
}

#[tokio::test]
async fn a_listen_outlives_the_client_handle_and_ends_when_the_connection_drops() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let mut stream = {
        let c = client(&sim, quick());
        let stream = c.listen(Request::new("/ip/hotspot/active/listen")).await.unwrap();
        // A later print answered on the same connection: the listen is registered.
        c.print("/system/identity", &[], &[]).await.unwrap();
        stream
    };
    let id = handle
        .hotspot_login("alice", "02:00:00:00:00:01", "10.5.50.2")
        .unwrap();
    match bounded("listen login", stream.next()).await {
        Some(Ok(ListenEvent::Row(row))) => assert_eq!(row.id(), Some(id.as_str())),
        other => panic!("expected a row, got {other:?}"),
    }
    handle.drop_connections();
    match bounded("listen end", stream.next()).await {
        Some(Err(e)) => assert!(e.is_transient(), "{e:?}"),
        other => panic!("expected a connection error, got {other:?}"),
    }
    assert!(bounded("after end", stream.next()).await.is_none());
}

#[tokio::test]
async fn dropping_a_listen_cancels_it_on_the_router() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let c = client(&sim, quick());
    let stream = c.listen(Request::new("/ip/hotspot/active/listen")).await.unwrap();
    c.print("/system/identity", &[], &[]).await.unwrap();
    drop(stream);
    bounded("cancel arrives", async {
        while count(&handle, "/cancel") == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let listen_tag = handle
        .command_log()
        .into_iter()
        .find(|c| c.command == "/ip/hotspot/active/listen")
        .and_then(|c| c.tag)
        .unwrap();
    let cancel = handle
        .command_log()
        .into_iter()
        .find(|c| c.command == "/cancel")
        .unwrap();
    assert!(
        cancel.attributes.contains(&("tag".to_owned(), listen_tag)),
        "{cancel:?}"
    );
    // The connection is still good.
    c.print("/system/identity", &[], &[]).await.unwrap();
    assert_eq!(handle.logins(), 1);
}

#[tokio::test]
async fn a_dropped_connection_mid_command_is_transient_and_the_next_call_reconnects() {
    let mut config = sim_config();
    config.latency = Duration::from_millis(500);
    let sim = start(config).await;
    let handle = sim.handle();
    let c = client(&sim, quick());
    c.print("/system/identity", &[], &[]).await.unwrap();
    assert_eq!(handle.logins(), 1);

    let pending = {
        let c = c.clone();
        tokio::spawn(async move { c.print("/ip/hotspot/active", &[], &[]).await })
    };
    // Drop once the print has reached the router (its reply is 500 ms away).
    bounded("print reaches the router", async {
        while count(&handle, "/ip/hotspot/active/print") == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    handle.drop_connections();
    let err = bounded("interrupted print", pending).await.unwrap().unwrap_err();
    assert!(matches!(err, ClientError::ConnectionLost { .. }), "{err:?}");
    assert!(err.is_transient());
    let mapped = map_ros_error("router sim", err);
    assert!(mapped.is_transient(), "{mapped:?}");

    handle.set_latency(Duration::ZERO);
    let rows = c.print("/system/identity", &["name"], &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(handle.logins(), 2, "the next call logged in again");
    assert_eq!(c.logins(), 2);
}

#[tokio::test]
async fn a_stalled_reply_times_out_and_the_connection_is_replaced() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let c = client(
        &sim,
        ClientConfig {
            command_timeout: Duration::from_millis(400),
            ..quick()
        },
    );
    c.print("/system/identity", &[], &[]).await.unwrap();
    handle.stall_mid_sentence(true);
    let err = bounded("stalled print", c.print("/system/resource", &[], &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    assert!(err.is_transient());
    handle.clear_faults();
    c.print("/system/resource", &[], &[]).await.unwrap();
    assert_eq!(handle.logins(), 2);
}

#[tokio::test]
async fn a_refused_login_is_clear_and_never_shows_the_password() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    handle.refuse_logins(true);
    let c = client(&sim, quick());
    let err = c.print("/system/identity", &[], &[]).await.unwrap_err();
    assert!(matches!(err, ClientError::LoginRefused { .. }), "{err:?}");
    assert!(!err.is_transient(), "a refused login is not retried");
    let text = format!("{err} {err:?} {c:?}");
    assert!(text.contains("invalid user name or password"), "{text}");
    assert!(!text.contains(PASSWORD), "password leaked: {text}");
    let mapped = map_ros_error("router sim", err);
    assert!(
        matches!(mapped, isp_core::Error::Authentication { .. }),
        "{mapped:?}"
    );
    let text = format!("{mapped} {mapped:?}");
    assert!(!text.contains(PASSWORD), "password leaked: {text}");
    assert!(text.contains("router sim"), "{text}");
    // Refused logins are not retried within a call.
    let logins_tried = handle
        .command_log()
        .iter()
        .filter(|c| c.command == "/login")
        .count();
    assert_eq!(logins_tried, 1);

    // A wrong password, the other way to be refused.
    let wrong = Client::new(
        Endpoint::plain(
            "router sim",
            &sim.addr().to_string(),
            Credentials::new(USER, "wrong-Pa55word"),
        )
        .unwrap(),
        quick(),
    )
    .unwrap();
    handle.clear_faults();
    let err = wrong.print("/system/identity", &[], &[]).await.unwrap_err();
    assert!(matches!(err, ClientError::LoginRefused { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("wrong-Pa55word"));
}

#[tokio::test]
async fn an_unreachable_router_fails_fast_during_cool_down_and_recovers() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let c = client(
        &sim,
        ClientConfig {
            cooldown_min: Duration::from_millis(300),
            cooldown_max: Duration::from_millis(300),
            ..quick()
        },
    );
    c.print("/system/identity", &[], &[]).await.unwrap();
    handle.outage(Duration::from_millis(800));

    // Calls fail (transient) until a failed connect starts the cool-down; during
    // it the client answers without touching the router.
    let fast = bounded("cool-down starts", async {
        loop {
            let before = (handle.command_log().len(), handle.logins());
            let err = c.print("/system/identity", &[], &[]).await.unwrap_err();
            assert!(err.is_transient(), "{err:?}");
            if matches!(err, ClientError::Backoff { .. }) {
                let after = (handle.command_log().len(), handle.logins());
                assert_eq!(after, before, "cool-down reached the router");
                break err;
            }
        }
    })
    .await;
    assert!(map_ros_error("router sim", fast).is_transient());

    bounded("print after outage", async {
        loop {
            match c.print("/system/identity", &[], &[]).await {
                Ok(_) => break,
                Err(e) if e.is_transient() => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("{e:?}"),
            }
        }
    })
    .await;
    assert_eq!(handle.logins(), 2);
}

#[tokio::test]
async fn keepalive_pings_an_idle_connection() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let c = client(
        &sim,
        ClientConfig {
            keepalive: Some(Duration::from_millis(150)),
            ..quick()
        },
    );
    c.print("/ip/hotspot/active", &[], &[]).await.unwrap();
    bounded("two keepalive pings", async {
        while count(&handle, "/system/identity/print") < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(handle.logins(), 1, "pings keep the one connection");
    assert_eq!(c.open_connections().await, 1);
}

#[tokio::test]
async fn keepalive_closes_a_connection_that_stopped_answering() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let c = client(
        &sim,
        ClientConfig {
            keepalive: Some(Duration::from_millis(150)),
            command_timeout: Duration::from_millis(300),
            ..quick()
        },
    );
    c.print("/system/identity", &[], &[]).await.unwrap();
    handle.stall_mid_sentence(true);
    bounded("keepalive gives up on the silent connection", async {
        while c.open_connections().await > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    handle.clear_faults();
    c.print("/system/identity", &[], &[]).await.unwrap();
    assert_eq!(handle.logins(), 2);
}

#[tokio::test]
async fn traps_map_to_the_right_variants() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let c = client(&sim, quick());

    let err = c.print("/ip/nothing", &[], &[]).await.unwrap_err();
    match &err {
        ClientError::Trap { command, message, .. } => {
            assert_eq!(command, "/ip/nothing/print");
            assert!(message.contains("no such command"), "{message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(matches!(
        map_ros_error("router sim", err),
        isp_core::Error::Rejected { .. }
    ));

    c.add("/ppp/secret", &[("name", "bob"), ("password", "x")])
        .await
        .unwrap();
    let dup = c
        .add("/ppp/secret", &[("name", "bob"), ("password", "x")])
        .await
        .unwrap_err();
    assert_eq!(dup.trap_kind(), Some(TrapKind::AlreadyExists), "{dup:?}");
    assert!(map_ros_error("router sim", dup).is_conflict());

    handle.trap_on("/queue/simple/print", "failure: something broke");
    let err = c.print("/queue/simple", &[], &[]).await.unwrap_err();
    assert!(err.to_string().contains("something broke"), "{err}");
    assert!(matches!(
        map_ros_error("router sim", err),
        isp_core::Error::Rejected { .. }
    ));
    // A trap leaves the connection usable.
    c.print("/system/identity", &[], &[]).await.unwrap();
    assert_eq!(handle.logins(), 1);
}

#[tokio::test]
async fn fatal_closes_the_connection_and_the_pool_reconnects() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let c = client(&sim, quick());
    let conn: Connection = c.connection().await.unwrap();
    let err = conn.run(Request::new("/quit")).await.unwrap_err();
    assert!(matches!(err, ClientError::Fatal { .. }), "{err:?}");
    assert!(err.is_transient());
    bounded("close noticed", async {
        while !conn.is_closed() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(matches!(conn.close_reason(), Some(ClientError::Fatal { .. })));
    c.print("/system/identity", &[], &[]).await.unwrap();
    assert_eq!(handle.logins(), 2);
}

#[tokio::test]
async fn connection_refused_is_transient() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let endpoint = Endpoint::plain(
        "router gone",
        &format!("127.0.0.1:{port}"),
        Credentials::new(USER, PASSWORD),
    )
    .unwrap();
    let c = Client::new(endpoint, quick()).unwrap();
    let err = c.print("/system/identity", &[], &[]).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    let mapped = map_ros_error("router gone", err);
    assert!(mapped.is_transient());
    assert!(mapped.to_string().contains("router gone"), "{mapped}");
}
