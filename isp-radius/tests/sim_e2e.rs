//! End to end with the simulated router in RADIUS mode: a hotspot login asks
//! our server, the router ends the session at the Session-Timeout, and our
//! Disconnect-Request client (the RADIUS router driver) revokes access through
//! `/radius incoming`; FreeRADIUS's `radclient` talks to that port too.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use chrono::Duration as Span;
use common::*;
use isp_core::domain::{OwnerTag, Router, RouterCredentials, Transport};
use isp_core::ports::{HotspotTarget, Menu, RouterDriver};
use isp_radius::{Answer, NasTable, RadiusDriver, RetryPolicy};
use isp_routeros::sim::radius::RadiusClient;
use isp_routeros::sim::{SimConfig, SimHandle, SimRouter};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Rig {
    w: World,
    sim: SimRouter,
    handle: SimHandle,
    incoming: SocketAddr,
    client: RadiusClient,
    driver: RadiusDriver,
    router: Router,
}

async fn rig() -> Rig {
    let mut config = SimConfig::new("admin", "not-used");
    config.identity = "hotel-radius".into();
    let mut sim = SimRouter::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim starts");
    let incoming = sim
        .serve_radius_incoming("127.0.0.1:0".parse().expect("addr"), SECRET)
        .await
        .expect("incoming");
    let w = world_with(LOCAL, incoming).await;
    let handle = sim.handle();
    let client = RadiusClient::new(w.server.auth_addr(), Some(w.server.acct_addr()), SECRET);
    let driver = RadiusDriver::new(
        NasTable::new([nas(LOCAL, incoming)]),
        w.sessions.clone(),
        RetryPolicy {
            attempts: 3,
            first_timeout: Duration::from_millis(200),
        },
    );
    let router = Router {
        id: ROUTER,
        tenant_id: TENANT,
        name: "hotel-radius".into(),
        address: incoming.to_string(),
        transport: Transport::Radius,
        credentials: RouterCredentials::new("radius", SECRET),
        tls_fingerprint: None,
        enabled: true,
    };
    Rig {
        w,
        sim,
        handle,
        incoming,
        client,
        driver,
        router,
    }
}

async fn until<F: std::future::Future<Output = bool>>(what: &str, mut cond: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn target(name: &str, owner: OwnerTag) -> HotspotTarget {
    HotspotTarget {
        username: Some(ros(name)),
        macs: vec![],
        owner,
        remove_user: false,
    }
}

#[tokio::test]
async fn grant_login_over_radius_then_revoke_removes_the_session() {
    let r = rig().await;
    let s = r.w.subscriber(11, Span::seconds(3600)).await;
    let name = s.username.as_str();
    let before = r.handle.clock();
    let id = r
        .handle
        .hotspot_login_radius(&r.client, name, name, "AA:BB:CC:00:00:11", "10.5.50.11")
        .await
        .expect("accepted");
    let deadline = r.handle.session_deadline(&id).expect("a Session-Timeout");
    let secs = (deadline - before).num_seconds();
    assert!((3600..=3601).contains(&secs), "{secs}");
    until("the accounting Start", || async { r.w.online().await.len() == 1 }).await;
    let acct = r.handle.acct_session_id(&id).expect("id");
    assert_eq!(r.w.online().await[0].session_id, acct);

    let snap = r
        .driver
        .snapshot(&r.router, &[Menu::HotspotActive])
        .await
        .expect("snapshot");
    assert_eq!(snap.hotspot_active.len(), 1);
    assert_eq!(snap.hotspot_active[0].user.as_deref(), Some(name));

    let reports = r
        .driver
        .disconnect_hotspot(&r.router, &[target(name, OwnerTag::Subscriber(s.id))])
        .await
        .expect("sent");
    let report = reports[0].as_ref().expect("acknowledged");
    assert_eq!(report.sessions_removed, 1);
    assert!(r.handle.rows("/ip/hotspot/active").is_empty());
    let removal = r.handle.removals().pop().expect("a removal");
    assert_eq!(removal.reason, "radius-disconnect");
    let rec = r.driver.records().pop().expect("recorded");
    assert_eq!(rec.answer, Answer::Ack);
    assert_eq!(rec.session_id.as_deref(), Some(acct.as_str()));
    assert!(r.w.online().await.is_empty());

    // Nothing left: the router answers NAK Session-Context-Not-Found, which counts as gone.
    let reports = r
        .driver
        .disconnect_hotspot(&r.router, &[target(name, OwnerTag::Subscriber(s.id))])
        .await
        .expect("sent");
    assert_eq!(reports[0].as_ref().expect("gone").sessions_removed, 0);
    assert_eq!(
        r.driver.records().pop().expect("recorded").answer,
        Answer::Nak(Some(503))
    );

    // Once the paid time is over the next login is refused, with the reason.
    r.w.clock.advance(Span::seconds(3600));
    let e = r
        .handle
        .hotspot_login_radius(&r.client, name, name, "AA:BB:CC:00:00:11", "10.5.50.11")
        .await
        .expect_err("rejected");
    assert!(e.contains("expired"), "{e}");
    r.sim.shutdown().await;
}

#[tokio::test]
async fn the_router_ends_the_session_at_the_session_timeout_and_reports_the_stop() {
    let r = rig().await;
    let v = r.w.voucher("tmo555", 20).await;
    let id = r
        .handle
        .hotspot_login_radius(&r.client, "tmo555", "tmo555", "AA:BB:CC:00:00:12", "10.5.50.12")
        .await
        .expect("accepted");
    until("the accounting Start", || async { r.w.online().await.len() == 1 }).await;
    r.handle.advance_clock(Duration::from_secs(20 * 60 - 5));
    assert_eq!(
        r.handle.rows("/ip/hotspot/active").len(),
        1,
        "still inside the paid time"
    );
    r.handle.advance_clock(Duration::from_secs(5));
    assert!(
        r.handle.rows("/ip/hotspot/active").is_empty(),
        "ended at the second"
    );
    let removal = r.handle.removals().pop().expect("removal");
    assert_eq!(removal.reason, "session-timeout");
    assert_eq!(removal.row.get(".id"), Some(&id));
    until("the accounting Stop", || async { r.w.online().await.is_empty() }).await;
    let v = r.w.repos.vouchers.get(v.id).await.expect("voucher");
    assert_eq!(v.status, isp_core::domain::VoucherStatus::Active);
    r.sim.shutdown().await;
}

#[tokio::test]
async fn a_silent_router_is_retried_then_reported_unavailable() {
    let r = rig().await;
    // A port nobody answers on.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let driver = RadiusDriver::new(
        NasTable::new([nas(LOCAL, silent.local_addr().expect("addr"))]),
        r.w.sessions.clone(),
        RetryPolicy {
            attempts: 3,
            first_timeout: Duration::from_millis(50),
        },
    );
    let reports = driver
        .disconnect_hotspot(
            &r.router,
            &[target(
                "someone",
                OwnerTag::Subscriber(isp_core::domain::SubscriberId(1)),
            )],
        )
        .await
        .expect("sent");
    let e = reports[0].as_ref().expect_err("no answer");
    assert!(e.is_transient(), "{e}");
    let rec = driver.records().pop().expect("recorded");
    assert_eq!((rec.answer, rec.attempts), (Answer::NoAnswer, 3));
    let mut buf = [0u8; 4096];
    let mut got = 0;
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(50), silent.recv_from(&mut buf)).await {
        got += 1;
    }
    assert_eq!(got, 3, "the same request three times");
    // User operations on a RADIUS router report what they did: nothing to block there.
    assert!(driver
        .block_device(
            &r.router,
            isp_core::domain::MacAddress::parse("mac", "AA:BB:CC:00:00:01").expect("mac"),
            OwnerTag::Subscriber(isp_core::domain::SubscriberId(1))
        )
        .await
        .is_err());
    r.sim.shutdown().await;
}

#[tokio::test]
async fn radclient_disconnects_a_session_through_radius_incoming() {
    let Some(tool) = tools() else { return };
    let r = rig().await;
    let s = r.w.subscriber(13, Span::seconds(3600)).await;
    let name = s.username.as_str();
    r.handle
        .hotspot_login_radius(&r.client, name, name, "AA:BB:CC:00:00:13", "10.5.50.13")
        .await
        .expect("accepted");
    let attrs = format!("User-Name = \"{name}\"\n");
    let wrong = radclient(&tool, r.incoming, "disconnect", "wrong-secret", &attrs).await;
    assert!(
        !wrong.received("Disconnect-ACK") && !wrong.received("Disconnect-NAK"),
        "{}",
        wrong.out
    );
    assert_eq!(r.handle.rows("/ip/hotspot/active").len(), 1);

    let ok = radclient(&tool, r.incoming, "disconnect", SECRET, &attrs).await;
    assert!(ok.received("Disconnect-ACK"), "{}", ok.out);
    assert!(r.handle.rows("/ip/hotspot/active").is_empty());

    let again = radclient(&tool, r.incoming, "disconnect", SECRET, &attrs).await;
    assert!(again.received("Disconnect-NAK"), "{}", again.out);
    assert_eq!(
        again.attr("Error-Cause").as_deref(),
        Some("Session-Context-Not-Found"),
        "{}",
        again.out
    );
    assert_eq!(
        r.handle.radius_incoming().len(),
        2,
        "the wrong secret got no answer and no record"
    );
    r.sim.shutdown().await;
}

#[tokio::test]
async fn a_radius_routers_users_are_the_database_so_a_sync_keeps_its_vouchers() {
    let r = rig().await;
    let v = r.w.voucher("sync77", 30).await;
    r.handle
        .hotspot_login_radius(&r.client, "sync77", "sync77", "AA:BB:CC:00:00:14", "10.5.50.14")
        .await
        .expect("accepted");
    let v = r.w.repos.vouchers.get(v.id).await.expect("voucher");
    // Without the repositories the users cannot be read: an error, not an empty table.
    assert!(r
        .driver
        .snapshot(&r.router, &isp_core::policy::reconcile::RECONCILE_MENUS)
        .await
        .is_err());
    let driver = RadiusDriver::new(
        NasTable::new([nas(LOCAL, r.incoming)]),
        r.w.sessions.clone(),
        RetryPolicy::default(),
    )
    .with_repositories(r.w.repos.clone());
    let snap = driver
        .snapshot(&r.router, &isp_core::policy::reconcile::RECONCILE_MENUS)
        .await
        .expect("snapshot");
    assert_eq!(snap.hotspot_users.len(), 1);
    assert_eq!(
        snap.hotspot_users[0].comment.as_deref(),
        Some(OwnerTag::Voucher(v.id).comment().as_str())
    );
    assert_eq!(
        isp_core::policy::voucher::voucher_sync(&v, &snap.hotspot_users),
        None
    );
    r.sim.shutdown().await;
}

/// Sessions live in storage: a daemon restarted after the login (a new server
/// and a new driver over the same SQLite file) still finds the session's
/// router and `Acct-Session-Id` and disconnects it, and records the router's
/// Stop.
#[tokio::test]
async fn a_restarted_daemon_disconnects_a_session_started_before_the_restart() {
    use isp_adapters_sql::SqlStore;
    use isp_radius::{Authorizer, RadiusServer, ServerConfig};

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("isp.sqlite");
    let open = || async {
        let store = SqlStore::connect_sqlite(&path).await.expect("open SQLite file");
        store.migrate().await.expect("migrate");
        store
    };
    let mut config = SimConfig::new("admin", "not-used");
    config.identity = "hotel-radius".into();
    let mut sim = SimRouter::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim starts");
    let incoming = sim
        .serve_radius_incoming("127.0.0.1:0".parse().expect("addr"), SECRET)
        .await
        .expect("incoming");
    let handle = sim.handle();

    let first = open().await;
    let w = world_over(first.repositories(), LOCAL, incoming).await;
    let (auth, acct) = (w.server.auth_addr(), w.server.acct_addr());
    let client = RadiusClient::new(auth, Some(acct), SECRET);
    let s = w.subscriber(21, Span::seconds(3600)).await;
    let name = s.username.to_string();
    let id = handle
        .hotspot_login_radius(&client, &name, &name, "AA:BB:CC:00:00:21", "10.5.50.21")
        .await
        .expect("accepted");
    let acct_id = handle.acct_session_id(&id).expect("id");
    until("the accounting Start", || async { w.online().await.len() == 1 }).await;
    let (clock, World { server, .. }) = (w.clock.clone(), w);
    server.shutdown().await;
    first.close().await;

    // The restart: everything new but the file (and the ports the router knows).
    let second = open().await;
    let repos = second.repositories();
    let server = RadiusServer::start(
        ServerConfig {
            auth_listen: auth,
            acct_listen: acct,
            ..loopback_config()
        },
        NasTable::new([nas(LOCAL, incoming)]),
        Authorizer::new(repos.clone(), clock),
        repos.radius_sessions.clone(),
    )
    .await
    .expect("server restarts on the same ports");
    let driver = RadiusDriver::new(
        NasTable::new([nas(LOCAL, incoming)]),
        repos.radius_sessions.clone(),
        RetryPolicy {
            attempts: 3,
            first_timeout: Duration::from_millis(200),
        },
    );
    let router = Router {
        id: ROUTER,
        tenant_id: TENANT,
        name: "hotel-radius".into(),
        address: incoming.to_string(),
        transport: Transport::Radius,
        credentials: RouterCredentials::new("radius", ""),
        tls_fingerprint: None,
        enabled: true,
    };
    let online = repos
        .radius_sessions
        .live_of_user(TENANT, &name)
        .await
        .expect("of user");
    assert_eq!(online.len(), 1, "the session survived the restart: {online:?}");
    assert_eq!(
        (online[0].router, online[0].session_id.as_str()),
        (ROUTER, acct_id.as_str())
    );

    let reports = driver
        .disconnect_hotspot(&router, &[target(&name, OwnerTag::Subscriber(s.id))])
        .await
        .expect("sent");
    assert_eq!(reports[0].as_ref().expect("acknowledged").sessions_removed, 1);
    assert!(handle.rows("/ip/hotspot/active").is_empty());
    let rec = driver.records().pop().expect("recorded");
    assert_eq!(rec.answer, Answer::Ack);
    assert_eq!(
        rec.session_id.as_deref(),
        Some(acct_id.as_str()),
        "addressed by the stored Acct-Session-Id, not only by User-Name"
    );
    assert!(repos
        .radius_sessions
        .live_on_router(ROUTER)
        .await
        .expect("live")
        .is_empty());
    let closed = repos
        .radius_sessions
        .get(ROUTER, &acct_id)
        .await
        .expect("get")
        .expect("kept for history");
    assert!(closed.stopped.is_some());
    server.shutdown().await;
    second.close().await;
    sim.shutdown().await;
}
