//! The servers against hand-built packets: retransmissions and hostile input.

mod common;

use std::time::Duration;

use chrono::Duration as Span;
use common::*;
use isp_core::domain::{RouterId, TenantId, VoucherStatus};
use isp_radius::dict::{attr, code};
use isp_radius::wire;
use tokio::net::UdpSocket;

/// An Access-Request for `user` with PAP `password`, signed with `secret`.
fn access_request(id: u8, user: &str, password: &str, secret: &[u8]) -> Vec<u8> {
    let auth: [u8; 16] = rand::random();
    let hidden = wire::hide_user_password(password.as_bytes(), &auth, secret);
    let mut p = vec![code::ACCESS_REQUEST, id, 0, 0];
    p.extend(auth);
    for (t, v) in [
        (attr::USER_NAME, user.as_bytes().to_vec()),
        (attr::USER_PASSWORD, hidden),
    ] {
        p.push(t);
        p.push(u8::try_from(v.len() + 2).expect("short"));
        p.extend(v);
    }
    p.extend([attr::MESSAGE_AUTHENTICATOR, 18]);
    p.extend([0u8; 16]);
    let len = u16::try_from(p.len()).expect("short").to_be_bytes();
    p[2..4].copy_from_slice(&len);
    wire::sign_access_request(&mut p, secret);
    p
}

async fn ask(socket: &UdpSocket, packet: &[u8]) -> Option<Vec<u8>> {
    socket.send(packet).await.expect("send");
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(Duration::from_millis(700), socket.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

#[tokio::test]
async fn a_retransmission_gets_the_same_answer_and_activates_a_voucher_once() {
    let w = world().await;
    let v = w.voucher("dup123", 30).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.connect(w.server.auth_addr()).await.expect("connect");
    let req = access_request(9, "dup123", "dup123", SECRET.as_bytes());
    let first = ask(&socket, &req).await.expect("an answer");
    assert_eq!(first[0], code::ACCESS_ACCEPT);
    assert!(wire::response_authentic(
        &first,
        &wire::authenticator(&req),
        SECRET.as_bytes()
    ));
    assert_eq!(
        wire::check_message_authenticator(&first, &wire::authenticator(&req), SECRET.as_bytes()),
        wire::MessageAuth::Valid
    );
    w.clock.advance(Span::seconds(5));
    let again = ask(&socket, &req).await.expect("an answer");
    assert_eq!(first, again, "the cached answer, not a new decision");
    assert_eq!(w.server.stats().duplicates, 1);
    assert_eq!(w.server.stats().accepts, 1);
    let v = w.repos.vouchers.get(v.id).await.expect("voucher");
    assert_eq!(v.status, VoucherStatus::Active);
}

#[tokio::test]
async fn hostile_datagrams_are_dropped_counted_and_the_server_keeps_answering() {
    let w = world().await;
    let s = w.subscriber(8, Span::seconds(120)).await;
    let name = s.username.as_str().to_owned();
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.connect(w.server.auth_addr()).await.expect("connect");
    let good = access_request(1, &name, &name, SECRET.as_bytes());

    let mut hostile: Vec<Vec<u8>> = vec![
        good[..12].to_vec(),             // truncated header
        good[..good.len() - 5].to_vec(), // truncated body
    ];
    let mut long_len = good.clone();
    long_len[2..4].copy_from_slice(&4000u16.to_be_bytes()); // length past the datagram
    hostile.push(long_len);
    let mut short_len = good.clone();
    short_len[2..4].copy_from_slice(&19u16.to_be_bytes()); // below the header
    hostile.push(short_len);
    let mut bad_attr = good.clone();
    bad_attr[21] = 1; // an attribute of length 1
    hostile.push(bad_attr);
    let mut zero_attr = good.clone();
    zero_attr[21] = 0;
    hostile.push(zero_attr);
    let mut huge = good.clone(); // 4,096 bytes of attributes: past the maximum
    while huge.len() < 4096 + 64 {
        huge.extend([attr::REPLY_MESSAGE, 255]);
        huge.extend([b'x'; 253]);
    }
    let len = u16::try_from(huge.len()).expect("fits").to_be_bytes();
    huge[2..4].copy_from_slice(&len);
    hostile.push(huge);
    let mut tampered = good.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff; // wrong Message-Authenticator
    hostile.push(tampered);
    hostile.push(access_request(2, &name, &name, b"not-the-secret"));
    for (i, h) in hostile.iter().enumerate() {
        socket.send(h).await.expect("send");
        let want = u64::try_from(i + 1).expect("small");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while w.server.stats().dropped() < want {
            assert!(
                tokio::time::Instant::now() < deadline,
                "datagram {i} not counted: {:?}",
                w.server.stats()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let stats = w.server.stats();
    assert_eq!(
        stats.dropped(),
        u64::try_from(hostile.len()).expect("small"),
        "{stats:?}"
    );
    assert_eq!(stats.bad_authenticator, 2, "{stats:?}");
    assert_eq!(stats.accepts + stats.rejects, 0, "{stats:?}");
    // Had any hostile datagram been answered, that answer would arrive first.
    let answer = ask(&socket, &good).await.expect("still answering");
    assert_eq!(answer[0], code::ACCESS_ACCEPT);
    assert_eq!(answer[1], 1, "the answer to the good request");
}

/// An Accounting-Request with `attrs`, signed with `secret`.
fn accounting_request(id: u8, attrs: &[(u8, Vec<u8>)], secret: &[u8]) -> Vec<u8> {
    let mut p = vec![code::ACCOUNTING_REQUEST, id, 0, 0];
    p.extend([0u8; 16]);
    for (t, v) in attrs {
        p.push(*t);
        p.push(u8::try_from(v.len() + 2).expect("short"));
        p.extend(v);
    }
    let len = u16::try_from(p.len()).expect("short").to_be_bytes();
    p[2..4].copy_from_slice(&len);
    wire::sign_request(&mut p, secret);
    p
}

fn status(s: u32) -> (u8, Vec<u8>) {
    (attr::ACCT_STATUS_TYPE, s.to_be_bytes().to_vec())
}

fn session_id(s: &str) -> (u8, Vec<u8>) {
    (attr::ACCT_SESSION_ID, s.as_bytes().to_vec())
}

async fn until<F: std::future::Future<Output = bool>>(what: &str, mut cond: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Counters with gigawords; Accounting-On closes the router's sessions; a
/// session the router stops reporting is closed as stale (only once the
/// server has been up for three interim intervals), and closed sessions are
/// deleted after the retention.
#[tokio::test]
async fn accounting_counters_restarts_stale_sessions_and_retention() {
    use isp_core::ports::Clock as _;
    let repos = isp_core::memory::repositories();
    let sessions = repos.radius_sessions.clone();
    let config = isp_radius::ServerConfig {
        interim_interval: Duration::from_secs(1),
        session_retention: Duration::from_secs(3600),
        ..loopback_config()
    };
    let local = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    let w = world_configured(
        repos,
        sessions,
        local,
        "127.0.0.1:3799".parse().expect("addr"),
        config,
    )
    .await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.connect(w.server.acct_addr()).await.expect("connect");
    let secret = SECRET.as_bytes();
    let user = (attr::USER_NAME, b"255712000031".to_vec());

    let start = accounting_request(1, &[status(1), session_id("s-1"), user.clone()], secret);
    assert_eq!(
        ask(&socket, &start).await.expect("answered")[0],
        code::ACCOUNTING_RESPONSE
    );
    let interim = accounting_request(
        2,
        &[
            status(3),
            session_id("s-1"),
            user.clone(),
            (attr::ACCT_INPUT_OCTETS, 5u32.to_be_bytes().to_vec()),
            (52, 1u32.to_be_bytes().to_vec()),
            (attr::ACCT_OUTPUT_OCTETS, 7u32.to_be_bytes().to_vec()),
        ],
        secret,
    );
    assert_eq!(
        ask(&socket, &interim).await.expect("answered")[0],
        code::ACCOUNTING_RESPONSE
    );
    let live = w.online().await;
    assert_eq!(live.len(), 1);
    assert_eq!((live[0].input_octets, live[0].output_octets), ((1 << 32) + 5, 7));

    // The router restarted: its sessions are over.
    let on = accounting_request(3, &[status(7)], secret);
    assert_eq!(
        ask(&socket, &on).await.expect("answered")[0],
        code::ACCOUNTING_RESPONSE
    );
    assert!(w.online().await.is_empty());
    let ended = w.sessions.get(ROUTER, "s-1").await.expect("get").expect("kept");
    assert_eq!(ended.stopped, Some(w.clock.now()));

    // A session nobody reports any more is closed once three intervals passed.
    let start = accounting_request(4, &[status(1), session_id("s-2"), user.clone()], secret);
    assert_eq!(
        ask(&socket, &start).await.expect("answered")[0],
        code::ACCOUNTING_RESPONSE
    );
    assert_eq!(w.online().await.len(), 1);
    w.clock.advance(Span::seconds(10));
    until("the stale session closed", || async {
        w.online().await.is_empty()
    })
    .await;
    let stale = w.sessions.get(ROUTER, "s-2").await.expect("get").expect("kept");
    assert!(stale.stopped.is_some_and(|t| t > stale.updated), "{stale:?}");

    // Past the retention both are deleted.
    w.clock.advance(Span::hours(2));
    until("the old sessions deleted", || async {
        w.sessions.get(ROUTER, "s-1").await.expect("get").is_none()
            && w.sessions.get(ROUTER, "s-2").await.expect("get").is_none()
    })
    .await;
}

/// Storage that fails every call.
#[derive(Debug)]
struct Down;

fn down() -> isp_core::Error {
    isp_core::Error::unavailable("database", "down for the test")
}

#[async_trait::async_trait]
impl isp_radius::RadiusSessionRepo for Down {
    async fn upsert(&self, _: &isp_radius::RadiusSession, _: bool) -> isp_core::Result<bool> {
        Err(down())
    }
    async fn stop(&self, _: &isp_radius::RadiusSession) -> isp_core::Result<bool> {
        Err(down())
    }
    async fn close(&self, _: RouterId, _: &str, _: chrono::DateTime<chrono::Utc>) -> isp_core::Result<bool> {
        Err(down())
    }
    async fn close_router(&self, _: RouterId, _: chrono::DateTime<chrono::Utc>) -> isp_core::Result<u64> {
        Err(down())
    }
    async fn close_stale(
        &self,
        _: chrono::DateTime<chrono::Utc>,
        _: chrono::DateTime<chrono::Utc>,
    ) -> isp_core::Result<u64> {
        Err(down())
    }
    async fn get(&self, _: RouterId, _: &str) -> isp_core::Result<Option<isp_radius::RadiusSession>> {
        Err(down())
    }
    async fn live_on_router(&self, _: RouterId) -> isp_core::Result<Vec<isp_radius::RadiusSession>> {
        Err(down())
    }
    async fn live_of_user(&self, _: TenantId, _: &str) -> isp_core::Result<Vec<isp_radius::RadiusSession>> {
        Err(down())
    }
    async fn delete_closed_before(&self, _: chrono::DateTime<chrono::Utc>) -> isp_core::Result<u64> {
        Err(down())
    }
}

/// An accounting record the storage did not take is left unanswered (the
/// router sends it again) and counted as an error.
#[tokio::test]
async fn accounting_the_storage_refuses_is_left_unanswered() {
    let local = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    let w = world_configured(
        isp_core::memory::repositories(),
        std::sync::Arc::new(Down),
        local,
        "127.0.0.1:3799".parse().expect("addr"),
        loopback_config(),
    )
    .await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.connect(w.server.acct_addr()).await.expect("connect");
    let start = accounting_request(1, &[status(1), session_id("s-9")], SECRET.as_bytes());
    assert_eq!(ask(&socket, &start).await, None, "no Accounting-Response");
    assert_eq!(w.server.stats().errors, 1);
    assert_eq!(w.server.stats().accounting, 0);
}
