//! Conformance with `mikrotik-rs` 0.10 (AGPL, dev-dependency only), a client we did not write.
//!
//! Its known quirks (PROTOCOL.md section 4) shape the setup: it wants `.tag` right after the
//! reply word (so the simulator runs with `tag_first`), it drops `!done` attributes (the `.id`
//! from `add` is checked through the control handle), a `!trap` or `!empty` ends the command's
//! channel, and TLS needs a crypto provider installed first.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use isp_routeros::sim::{tls, SimConfig, SimHandle, SimRouter};
use mikrotik_rs::{CommandBuilder, Event, MikrotikDevice, QueryOperator};
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(5);

async fn router(tag_first: bool) -> SimRouter {
    let mut cfg = SimConfig::new("admin", "s3cret-pw");
    cfg.tag_first = tag_first;
    SimRouter::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// Collects events until the command ends (`Done`, `Empty`, `Trap` or `Fatal`).
async fn collect(mut rx: UnboundedReceiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        let ev = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("mikrotik-rs got no answer in time");
        let Some(ev) = ev else { return out };
        let end = matches!(
            ev,
            Event::Done { .. } | Event::Empty { .. } | Event::Trap { .. } | Event::Fatal { .. }
        );
        out.push(ev);
        if end {
            return out;
        }
    }
}

fn rows(events: &[Event]) -> Vec<HashMap<String, String>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Reply { response, .. } => Some(
                response
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn trap(events: &[Event]) -> Option<String> {
    events.iter().find_map(|e| match e {
        Event::Trap { response, .. } => Some(response.message.clone()),
        _ => None,
    })
}

async fn run(device: &MikrotikDevice, cmd: mikrotik_rs::Command) -> Vec<Event> {
    collect(device.send_command(cmd).await.unwrap()).await
}

#[tokio::test]
async fn login_add_print_set_remove_and_traps() {
    let r = router(true).await;
    let h: SimHandle = r.handle();
    let addr = r.addr().to_string();

    // refused login: an error, without the password in it
    let err = MikrotikDevice::connect(addr.as_str(), "admin", Some("wrong-pw"))
        .await
        .expect_err("a wrong password must not log in");
    assert!(!format!("{err} {err:?}").contains("wrong-pw"));
    assert_eq!(h.logins(), 0);

    let device = MikrotikDevice::connect(addr.as_str(), "admin", Some("s3cret-pw"))
        .await
        .unwrap();
    assert_eq!(h.logins(), 1);

    // add
    for (name, profile) in [
        ("alice", "default"),
        ("bob", "default-encryption"),
        ("carol", "default"),
    ] {
        let ev = run(
            &device,
            CommandBuilder::new()
                .command("/ppp/secret/add")
                .attribute("name", Some(name))
                .attribute("password", Some("pw"))
                .attribute("profile", Some(profile))
                .attribute("comment", Some("isp:test"))
                .build(),
        )
        .await;
        assert!(matches!(ev.last(), Some(Event::Done { .. })), "{ev:?}");
    }
    let secrets = h.rows("/ppp/secret");
    assert_eq!(
        secrets.iter().map(|r| r[".id"].as_str()).collect::<Vec<_>>(),
        ["*1", "*2", "*3"]
    );

    // print with a query and a proplist
    let ev = run(
        &device,
        CommandBuilder::new()
            .command("/ppp/secret/print")
            .attribute(".proplist", Some(".id,name"))
            .query_equal("profile", "default")
            .build(),
    )
    .await;
    let got = rows(&ev);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["name"], "alice");
    assert_eq!(got[1]["name"], "carol");
    assert!(got.iter().all(|r| r.len() == 2 && r.contains_key(".id")));

    // stack operations: name=alice OR name=bob
    let ev = run(
        &device,
        CommandBuilder::new()
            .command("/ppp/secret/print")
            .query_equal("name", "alice")
            .query_equal("name", "bob")
            .query_operations(&[QueryOperator::Or])
            .build(),
    )
    .await;
    let mut names: Vec<String> = rows(&ev).into_iter().map(|r| r["name"].clone()).collect();
    names.sort();
    assert_eq!(names, ["alice", "bob"]);

    // set
    let ev = run(
        &device,
        CommandBuilder::new()
            .command("/ppp/secret/set")
            .attribute(".id", Some("*2"))
            .attribute("disabled", Some("yes"))
            .build(),
    )
    .await;
    assert!(matches!(ev.last(), Some(Event::Done { .. })), "{ev:?}");
    assert_eq!(h.rows("/ppp/secret")[1]["disabled"], "true");

    // remove
    let ev = run(
        &device,
        CommandBuilder::new()
            .command("/ppp/secret/remove")
            .attribute(".id", Some("*3"))
            .build(),
    )
    .await;
    assert!(matches!(ev.last(), Some(Event::Done { .. })), "{ev:?}");
    assert_eq!(h.rows("/ppp/secret").len(), 2);

    // traps, verbatim
    let dup = run(
        &device,
        CommandBuilder::new()
            .command("/ppp/secret/add")
            .attribute("name", Some("alice"))
            .build(),
    )
    .await;
    assert_eq!(
        trap(&dup).as_deref(),
        Some("failure: secret with the same name already exists")
    );
    let gone = run(
        &device,
        CommandBuilder::new()
            .command("/ppp/secret/remove")
            .attribute(".id", Some("*3"))
            .build(),
    )
    .await;
    assert_eq!(trap(&gone).as_deref(), Some("no such item"));
    let path = run(&device, CommandBuilder::new().command("/ip/xyz/print").build()).await;
    assert_eq!(trap(&path).as_deref(), Some("no such command or directory (xyz)"));

    // !empty (RouterOS >= 7.18) on a print that finds nothing
    let empty = run(
        &device,
        CommandBuilder::new()
            .command("/ppp/secret/print")
            .query_equal("name", "nobody")
            .build(),
    )
    .await;
    assert!(matches!(empty.as_slice(), [Event::Empty { .. }]), "{empty:?}");

    // the connection still works after traps and !empty
    let ev = run(
        &device,
        CommandBuilder::new().command("/system/identity/print").build(),
    )
    .await;
    assert_eq!(rows(&ev)[0]["name"], "MikroTik");
}

#[tokio::test]
async fn concurrent_commands_and_cancel_on_drop() {
    let r = router(true).await;
    let h = r.handle();
    h.set_latency(Duration::from_millis(200));
    h.add_row("/ip/hotspot/user", &[("name", "u")]).unwrap();
    let device = MikrotikDevice::connect(r.addr().to_string().as_str(), "admin", Some("s3cret-pw"))
        .await
        .unwrap();
    let start = std::time::Instant::now();
    let mut pending = Vec::new();
    for _ in 0..10 {
        let d = device.clone();
        pending.push(tokio::spawn(async move {
            run(
                &d,
                CommandBuilder::new().command("/ip/hotspot/user/print").build(),
            )
            .await
        }));
    }
    for p in pending {
        let ev = p.await.unwrap();
        assert_eq!(rows(&ev)[0]["name"], "u");
    }
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    h.set_latency(Duration::ZERO);

    // a listen: changes arrive; dropping the receiver makes mikrotik-rs send /cancel
    let mut rx = device
        .send_command(CommandBuilder::new().command("/ip/hotspot/active/listen").build())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.hotspot_login("u", "AA:BB:CC:DD:EE:01", "10.5.50.9").unwrap();
    let ev = tokio::time::timeout(WAIT, rx.recv()).await.unwrap().unwrap();
    let Event::Reply { response, .. } = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(response.attributes["user"].as_deref(), Some("u"));
    drop(rx);
    h.hotspot_logout("u"); // the next reply finds the receiver gone
    let deadline = std::time::Instant::now() + WAIT;
    while !h.command_log().iter().any(|l| l.command == "/cancel") {
        assert!(
            std::time::Instant::now() < deadline,
            "mikrotik-rs never cancelled the listen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // the device still works
    let ev = run(
        &device,
        CommandBuilder::new().command("/system/identity/print").build(),
    )
    .await;
    assert_eq!(rows(&ev).len(), 1);
}

#[tokio::test]
async fn tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = tls::self_signed(&["localhost"]).unwrap();
    let mut cfg = SimConfig::new("admin", "s3cret-pw");
    cfg.tag_first = true;
    cfg.tls = Some(cert.server_config.clone());
    let r = SimRouter::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert_der.clone()).unwrap();
    let client =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let device = MikrotikDevice::builder(r.addr())
        .credentials("admin", Some("s3cret-pw"))
        .tls_config(
            Arc::new(client),
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
        )
        .connect()
        .await
        .unwrap();
    let ev = run(
        &device,
        CommandBuilder::new().command("/system/resource/print").build(),
    )
    .await;
    assert_eq!(rows(&ev)[0]["board-name"], "CHR");
}

/// With `.tag` last (MikroTik's documented examples), mikrotik-rs 0.10 reads rows and a bare
/// `!done`, but not `!done =ret=*1 .tag=N`: the reason the simulator makes the position an option.
#[tokio::test]
async fn tag_last_after_ret_trips_mikrotik_rs_quirk() {
    let r = router(false).await;
    let device = MikrotikDevice::connect(r.addr().to_string().as_str(), "admin", Some("s3cret-pw"))
        .await
        .unwrap();
    let ev = run(
        &device,
        CommandBuilder::new().command("/system/identity/print").build(),
    )
    .await;
    assert_eq!(rows(&ev)[0]["name"], "MikroTik");
    let ev = run(
        &device,
        CommandBuilder::new()
            .command("/ppp/secret/add")
            .attribute("name", Some("x"))
            .build(),
    )
    .await;
    let message = trap(&ev).unwrap_or_default();
    assert!(
        message.starts_with("Protocol error"),
        "mikrotik-rs read `!done =ret= .tag=`: the quirk is gone, update PROTOCOL.md: {ev:?}"
    );
    // the router did add it
    assert_eq!(r.handle().rows("/ppp/secret").len(), 1);
}
