//! Fault injection and TLS over real sockets.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod sim_common;

use std::time::{Duration, Instant};

use isp_routeros::proto::ReplyKind;
use isp_routeros::sim::{tls, SimConfig, SimRouter};
use sim_common::{trap_message, Raw};
use tokio::io::AsyncReadExt;

async fn router(config: SimConfig) -> SimRouter {
    SimRouter::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn config() -> SimConfig {
    SimConfig::new("admin", "secret")
}

async fn logged_in(r: &SimRouter) -> Raw {
    let mut c = Raw::connect(r.addr()).await;
    c.login("admin", "secret").await;
    c
}

#[tokio::test]
async fn latency_is_added_and_cleared() {
    let r = router(config()).await;
    let h = r.handle();
    let mut c = logged_in(&r).await;
    h.set_latency(Duration::from_millis(300));
    let start = Instant::now();
    c.call(&["/system/resource/print"]).await;
    assert!(start.elapsed() >= Duration::from_millis(300));
    h.clear_faults();
    let start = Instant::now();
    c.call(&["/system/resource/print"]).await;
    assert!(start.elapsed() < Duration::from_millis(250));
}

#[tokio::test]
async fn refused_logins() {
    let r = router(config()).await;
    let h = r.handle();
    h.refuse_logins(true);
    let mut c = Raw::connect(r.addr()).await;
    let replies = c.call(&["/login", "=name=admin", "=password=secret"]).await;
    assert_eq!(
        trap_message(&replies).as_deref(),
        Some("invalid user name or password (6)")
    );
    h.refuse_logins(false);
    c.login("admin", "secret").await;
    assert_eq!(h.logins(), 1);
}

#[tokio::test]
async fn dropped_connections_close_now_and_reconnect_works() {
    let r = router(config()).await;
    let h = r.handle();
    let mut a = logged_in(&r).await;
    let mut b = logged_in(&r).await;
    // a listen in flight on one of them
    a.send(&["/ip/hotspot/active/listen", ".tag=1"]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.connections(), 2);
    h.drop_connections();
    assert!(a.closed().await);
    assert!(b.closed().await);
    let mut c = logged_in(&r).await;
    let r2 = c.call(&["/system/identity/print"]).await;
    assert_eq!(r2[0].kind, ReplyKind::Re);
    assert_eq!(h.logins(), 3);
}

#[tokio::test]
async fn stall_mid_sentence() {
    let r = router(config()).await;
    let h = r.handle();
    let mut c = logged_in(&r).await;
    h.stall_mid_sentence(true);
    c.send(&["/system/resource/print"]).await;
    // part of a sentence arrives, then nothing: no whole sentence within a second
    let got = tokio::time::timeout(Duration::from_secs(1), c.next_words()).await;
    assert!(got.is_err(), "a whole sentence arrived: {got:?}");
    h.stall_mid_sentence(false);
    // the stalled connection stays silent; new connections work
    let mut d = logged_in(&r).await;
    d.call(&["/system/identity/print"]).await;
}

#[tokio::test]
async fn traps_on_chosen_commands() {
    let r = router(config()).await;
    let h = r.handle();
    h.trap_on("/ppp/secret/add", "failure: out of memory");
    let mut c = logged_in(&r).await;
    let replies = c.call(&["/ppp/secret/add", "=name=a"]).await;
    assert_eq!(trap_message(&replies).as_deref(), Some("failure: out of memory"));
    assert!(h.rows("/ppp/secret").is_empty());
    // other commands are unaffected
    let ok = c.call(&["/ppp/secret/print"]).await;
    assert_eq!(trap_message(&ok), None);
    h.clear_faults();
    let added = c.call(&["/ppp/secret/add", "=name=a"]).await;
    assert_eq!(added[0].get("ret"), Some("*1"));
}

#[tokio::test]
async fn outage_refuses_then_recovers() {
    let r = router(config()).await;
    let h = r.handle();
    let mut c = logged_in(&r).await;
    h.outage(Duration::from_millis(700));
    assert!(c.closed().await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = tokio::net::TcpStream::connect(r.addr()).await;
    match refused {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        Ok(mut s) => {
            // accepted in the instant before the port closed: it must be closed at once
            let mut buf = [0u8; 1];
            let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
            assert!(
                matches!(n, Ok(Ok(0)) | Ok(Err(_))),
                "connection served during outage"
            );
        }
    }
    tokio::time::sleep(Duration::from_millis(900)).await;
    let mut c = logged_in(&r).await;
    c.call(&["/system/identity/print"]).await;
}

#[tokio::test]
async fn tls_api_ssl() {
    let cert = tls::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let mut cfg = config();
    cfg.tls = Some(cert.server_config.clone());
    let r = router(cfg).await;
    let mut c = Raw::connect_tls(r.addr(), cert.cert_der.clone()).await;
    c.login("admin", "secret").await;
    let added = c
        .call(&["/ppp/secret/add", "=name=tls-user", "=password=x"])
        .await;
    assert_eq!(added[0].get("ret"), Some("*1"));
    let listed = c.call(&["/ppp/secret/print", "?name=tls-user"]).await;
    assert_eq!(listed[0].get("name"), Some("tls-user"));
    // a plain-TCP client gets no API service from a TLS port
    let mut plain = Raw::connect(r.addr()).await;
    plain.send(&["/login", "=name=admin", "=password=secret"]).await;
    assert!(plain.closed().await);
    // PEM round trip: the files the binary takes
    let pem = tls::server_config_from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes());
    assert!(pem.is_ok());
    let bad = tls::server_config_from_pem(b"not a pem", cert.key_pem.as_bytes());
    assert!(bad.unwrap_err().to_string().contains("no certificate"));
}

#[tokio::test]
async fn drop_on_a_command_loses_the_connection_mid_command() {
    let r = router(config()).await;
    let h = r.handle();
    h.drop_on("/ppp/secret/remove");
    let mut c = logged_in(&r).await;
    c.call(&["/ppp/secret/add", "=name=a"]).await;
    c.send(&["/ppp/secret/remove", "=.id=*1", ".tag=9"]).await;
    assert!(c.closed().await, "no answer, then the connection closes");
    assert_eq!(h.rows("/ppp/secret").len(), 1, "the command was not executed");
    h.clear_faults();
    let mut c = logged_in(&r).await;
    let removed = c.call(&["/ppp/secret/remove", "=.id=*1"]).await;
    assert_eq!(removed.len(), 1);
    assert!(h.rows("/ppp/secret").is_empty());
}

#[tokio::test]
async fn reboot_loses_sessions_and_dynamic_entries_and_keeps_the_configuration() {
    let r = router(config()).await;
    let h = r.handle();
    h.add_row("/ip/hotspot/user", &[("name", "alice"), ("password", "pw")])
        .unwrap();
    h.add_row("/ppp/secret", &[("name", "bob"), ("password", "pw")])
        .unwrap();
    h.add_row(
        "/ip/firewall/address-list",
        &[("list", "a"), ("address", "10.0.0.1")],
    )
    .unwrap();
    h.add_row(
        "/ip/firewall/address-list",
        &[("list", "a"), ("address", "10.0.0.2"), ("timeout", "1h")],
    )
    .unwrap();
    h.hotspot_login("alice", "02:00:00:00:00:01", "10.5.50.2")
        .unwrap();
    h.ppp_login("bob", "02:00:00:00:00:02", "10.6.0.2").unwrap();
    let mut c = logged_in(&r).await;
    let lost = h.reboot(Duration::from_millis(300));
    assert!(c.closed().await);
    // session, host, cookie, PPP session, dynamic entry
    assert_eq!(lost, 5, "{:?}", h.removals());
    for menu in [
        "/ip/hotspot/active",
        "/ip/hotspot/host",
        "/ip/hotspot/cookie",
        "/ppp/active",
    ] {
        assert!(h.rows(menu).is_empty(), "{menu} survived the reboot");
    }
    assert_eq!(h.rows("/ip/hotspot/user").len(), 1);
    assert_eq!(h.rows("/ppp/secret").len(), 1);
    let entries = h.rows("/ip/firewall/address-list");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["address"], "10.0.0.1");
    assert!(h
        .removals()
        .iter()
        .any(|rm| rm.menu == "/ip/hotspot/active" && rm.reason == "reboot"));
    // Down for a while, then serving again.
    let mut c = loop {
        if let Ok(s) = tokio::net::TcpStream::connect(r.addr()).await {
            drop(s);
            if h.connections() == 0 {
                let mut c = Raw::connect(r.addr()).await;
                c.login("admin", "secret").await;
                break c;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let uptime = c.call(&["/system/resource/print"]).await;
    assert_eq!(uptime[0].kind, ReplyKind::Re);
    h.hotspot_login("alice", "02:00:00:00:00:01", "10.5.50.2")
        .unwrap();
}

#[tokio::test]
async fn reboot_to_a_saved_configuration_restores_it_and_never_reuses_ids() {
    let r = router(config()).await;
    let h = r.handle();
    let first = h
        .add_row("/ip/hotspot/user", &[("name", "alice"), ("password", "pw")])
        .unwrap();
    let saved = h.save_config();
    assert!(!saved.is_empty());
    h.add_row("/ip/hotspot/user", &[("name", "carol"), ("password", "pw")])
        .unwrap();
    let mut c = logged_in(&r).await;
    c.call(&["/ip/hotspot/user/set", &format!("=.id={first}"), "=disabled=yes"])
        .await;
    assert_eq!(h.rows("/ip/hotspot/user").len(), 2);
    h.reboot_to(&saved, Duration::ZERO);
    let users = h.rows("/ip/hotspot/user");
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["name"], "alice");
    assert_eq!(users[0]["disabled"], "false");
    let again = h
        .add_row("/ip/hotspot/user", &[("name", "dave"), ("password", "pw")])
        .unwrap();
    assert_eq!(again, "*3", "an id was reused after the restore");
}

/// A router charging `per_command` and `per_item`, with `users` hotspot users `u1`, `u2`, ...
async fn costed(
    per_command: Duration,
    per_item: Duration,
    users: usize,
    tls: Option<&tls::SelfSigned>,
) -> SimRouter {
    let mut cfg = config();
    cfg.cost_per_command = per_command;
    cfg.cost_per_item = per_item;
    cfg.tls = tls.map(|t| t.server_config.clone());
    let r = router(cfg).await;
    for i in 1..=users {
        r.handle()
            .add_row("/ip/hotspot/user", &[("name", &format!("u{i}"))])
            .unwrap();
    }
    r
}

#[tokio::test]
async fn cost_grows_with_the_items_printed_and_named() {
    let item = Duration::from_millis(20);
    let r = costed(Duration::from_millis(30), item, 40, None).await;
    let h = r.handle();
    let mut c = logged_in(&r).await;

    let start = Instant::now();
    let all = c.call(&["/ip/hotspot/user/print"]).await;
    let forty = start.elapsed();
    assert_eq!(sim_common::rows(&all).len(), 40);
    assert!(forty >= Duration::from_millis(30) + item * 40, "{forty:?}");

    let start = Instant::now();
    let one = c.call(&["/ip/hotspot/user/print", "?name=u7"]).await;
    let single = start.elapsed();
    assert_eq!(sim_common::rows(&one).len(), 1);
    assert!(single >= Duration::from_millis(30) + item, "{single:?}");
    assert!(
        single < forty,
        "one item ({single:?}) costs less than forty ({forty:?})"
    );

    // A remove naming 20 items waits for all of them before the items go.
    let names: Vec<String> = (1..=20).map(|i| format!("u{i}")).collect();
    let numbers = format!("=numbers={}", names.join(","));
    let start = Instant::now();
    let done = c.call(&["/ip/hotspot/user/remove", &numbers]).await;
    let twenty = start.elapsed();
    assert_eq!(done.last().unwrap().kind, ReplyKind::Done);
    assert!(twenty >= Duration::from_millis(30) + item * 20, "{twenty:?}");
    let removed = h.removals();
    assert_eq!(removed.len(), 20);
    assert!(
        removed[0].instant >= start + Duration::from_millis(30) + item * 20,
        "the items go when the work is done"
    );
    assert_eq!(h.rows("/ip/hotspot/user").len(), 20);
}

#[tokio::test]
async fn tagged_commands_overlap_latency_but_execute_one_at_a_time() {
    let per_command = Duration::from_millis(200);
    let mut cfg = config();
    cfg.latency = Duration::from_millis(100);
    cfg.cost_per_command = per_command;
    let r = router(cfg).await;
    let mut a = logged_in(&r).await;
    let mut b = logged_in(&r).await;

    let start = Instant::now();
    for tag in ["1", "2", "3"] {
        a.send(&["/system/identity/print", &format!(".tag={tag}")]).await;
    }
    b.send(&["/system/identity/print"]).await;
    let b_replies = b.until_done().await;
    let b_took = start.elapsed();
    assert_eq!(b_replies.len(), 2);
    let mut done = 0;
    while done < 3 {
        if a.reply().await.kind == ReplyKind::Done {
            done += 1;
        }
    }
    let a_took = start.elapsed();
    // One connection: 100 ms latency together, then 3 x 200 ms one after another.
    assert!(
        a_took >= Duration::from_millis(100) + per_command * 3,
        "{a_took:?}"
    );
    // Another connection does not wait for it.
    assert!(b_took < a_took, "b {b_took:?}, a {a_took:?}");
}

#[tokio::test]
async fn cost_applies_over_api_ssl() {
    let cert = tls::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let item = Duration::from_millis(20);
    let r = costed(Duration::ZERO, item, 30, Some(&cert)).await;
    let mut c = Raw::connect_tls(r.addr(), cert.cert_der.clone()).await;
    c.login("admin", "secret").await;
    let start = Instant::now();
    let all = c.call(&["/ip/hotspot/user/print"]).await;
    assert_eq!(sim_common::rows(&all).len(), 30);
    assert!(start.elapsed() >= item * 30, "{:?}", start.elapsed());
}
