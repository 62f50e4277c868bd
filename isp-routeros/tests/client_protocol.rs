//! The client against hand-scripted servers, for replies the simulator does
//! not send: the pre-6.43 challenge login, bytes that break the protocol,
//! replies for unknown tags and traps without a message.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::time::Duration;

use isp_routeros::client::{map_ros_error, ClientConfig, ClientError, Connection, Credentials, Endpoint};
use isp_routeros::proto::{Decoder, Reply, ReplyKind, Request, DEFAULT_MAX_WORD_LEN};
use md5::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PASSWORD: &str = "0ld-R0uter-Pw";

fn config() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(2),
        login_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(2),
        keepalive: None,
        ..ClientConfig::default()
    }
}

async fn read_request(sock: &mut TcpStream, decoder: &mut Decoder) -> Option<Request> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(words) = decoder.next_sentence().expect("client sends valid words") {
            return Some(Request::parse(&words).expect("client sends valid requests"));
        }
        let n = sock.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        decoder.push(&buf[..n]);
    }
}

async fn send(sock: &mut TcpStream, reply: Reply) {
    let mut out = Vec::new();
    reply.encode(false, &mut out);
    sock.write_all(&out).await.expect("write");
}

/// A server running `script` on the first accepted connection.
async fn serve<F, Fut>(script: F) -> (String, tokio::task::JoinHandle<()>)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        script(sock).await;
    });
    (addr, task)
}

/// Accepts the post-6.43 login.
async fn accept_login(sock: &mut TcpStream, decoder: &mut Decoder) {
    let login = read_request(sock, decoder).await.unwrap();
    assert_eq!(login.command, "/login");
    send(sock, Reply::done()).await;
}

async fn connect(addr: &str) -> Result<Connection, ClientError> {
    let endpoint = Endpoint::plain("router scripted", addr, Credentials::new("admin", PASSWORD)).unwrap();
    Connection::connect(&endpoint, &config()).await
}

#[tokio::test]
async fn answers_the_pre_643_challenge() {
    let challenge = [0x5Au8; 16];
    let (addr, server) = serve(move |mut sock| async move {
        let mut decoder = Decoder::new(DEFAULT_MAX_WORD_LEN);
        let first = read_request(&mut sock, &mut decoder).await.unwrap();
        assert_eq!(first.get("name"), Some("admin"));
        send(&mut sock, Reply::done().attr("ret", hex::encode(challenge))).await;
        let second = read_request(&mut sock, &mut decoder).await.unwrap();
        assert_eq!(second.command, "/login");
        assert_eq!(
            second.get("password"),
            None,
            "the second login carries only the response"
        );
        let mut md5 = md5::Md5::new();
        md5.update([0u8]);
        md5.update(PASSWORD.as_bytes());
        md5.update(challenge);
        let expected = format!("00{}", hex::encode(md5.finalize()));
        if second.get("response") == Some(expected.as_str()) {
            send(&mut sock, Reply::done()).await;
        } else {
            send(&mut sock, Reply::trap("invalid user name or password (6)", None)).await;
            send(&mut sock, Reply::done()).await;
        }
        let print = read_request(&mut sock, &mut decoder).await.unwrap();
        send(
            &mut sock,
            Reply::re([("name", "old-router")]).with_tag(print.tag.clone()),
        )
        .await;
        send(&mut sock, Reply::done().with_tag(print.tag)).await;
        let _ = read_request(&mut sock, &mut decoder).await;
    })
    .await;
    let conn = connect(&addr).await.expect("legacy login accepted");
    let response = conn.run(Request::new("/system/identity/print")).await.unwrap();
    assert_eq!(response.rows[0].get("name"), Some("old-router"));
    conn.close();
    server.await.unwrap();
}

#[tokio::test]
async fn a_control_byte_is_a_protocol_error_not_a_panic() {
    let (addr, server) = serve(|mut sock| async move {
        let mut decoder = Decoder::new(DEFAULT_MAX_WORD_LEN);
        accept_login(&mut sock, &mut decoder).await;
        let _ = read_request(&mut sock, &mut decoder).await.unwrap();
        sock.write_all(&[0xF8, 0x01, 0x02]).await.unwrap();
        let _ = read_request(&mut sock, &mut decoder).await;
    })
    .await;
    let conn = connect(&addr).await.unwrap();
    let err = conn
        .run(Request::new("/system/identity/print"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("0xF8"), "{err}");
    assert!(matches!(
        map_ros_error("router scripted", err),
        isp_core::Error::Protocol { .. }
    ));
    assert!(conn.is_closed());
    server.await.unwrap();
}

#[tokio::test]
async fn an_oversized_word_is_refused_without_allocating_it() {
    let (addr, server) = serve(|mut sock| async move {
        let mut decoder = Decoder::new(DEFAULT_MAX_WORD_LEN);
        accept_login(&mut sock, &mut decoder).await;
        let _ = read_request(&mut sock, &mut decoder).await.unwrap();
        // A 5-byte length prefix announcing ~4 GiB.
        sock.write_all(&[0xF0, 0xFF, 0xFF, 0xFF, 0xF0]).await.unwrap();
        let _ = read_request(&mut sock, &mut decoder).await;
    })
    .await;
    let conn = connect(&addr).await.unwrap();
    let err = conn
        .run(Request::new("/system/identity/print"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Protocol { .. }), "{err:?}");
    server.await.unwrap();
}

#[tokio::test]
async fn replies_for_unknown_tags_and_untagged_replies_are_ignored() {
    let (addr, server) = serve(|mut sock| async move {
        let mut decoder = Decoder::new(DEFAULT_MAX_WORD_LEN);
        accept_login(&mut sock, &mut decoder).await;
        let req = read_request(&mut sock, &mut decoder).await.unwrap();
        send(
            &mut sock,
            Reply::re([("name", "stray")]).with_tag(Some("no-such-tag".into())),
        )
        .await;
        send(&mut sock, Reply::re([("name", "untagged")])).await;
        // `.tag` first, then `!trap` without a message, then its `!done`.
        let mut out = Vec::new();
        Reply::new(ReplyKind::Trap)
            .with_tag(req.tag.clone())
            .encode(true, &mut out);
        Reply::done().with_tag(req.tag).encode(true, &mut out);
        sock.write_all(&out).await.unwrap();
        let _ = read_request(&mut sock, &mut decoder).await;
    })
    .await;
    let conn = connect(&addr).await.unwrap();
    let err = conn
        .run(Request::new("/ip/hotspot/user/print"))
        .await
        .unwrap_err();
    match &err {
        ClientError::Trap {
            command,
            message,
            category,
        } => {
            assert_eq!(command, "/ip/hotspot/user/print");
            assert_eq!(message, "(no message)");
            assert_eq!(*category, None);
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(!conn.is_closed());
    conn.close();
    server.await.unwrap();
}

#[tokio::test]
async fn a_router_that_hangs_up_during_login_is_transient() {
    let (addr, server) = serve(|mut sock| async move {
        let mut decoder = Decoder::new(DEFAULT_MAX_WORD_LEN);
        let _ = read_request(&mut sock, &mut decoder).await;
        drop(sock);
    })
    .await;
    let err = connect(&addr).await.unwrap_err();
    assert!(matches!(err, ClientError::ConnectionLost { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(!format!("{err:?}").contains(PASSWORD));
    server.await.unwrap();
}

#[tokio::test]
async fn a_silent_router_times_out_the_login() {
    let (addr, server) = serve(|mut sock| async move {
        let mut buf = [0u8; 1024];
        // Read and never answer, until the client gives up.
        while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
    let endpoint = Endpoint::plain("router mute", &addr, Credentials::new("admin", PASSWORD)).unwrap();
    let cfg = ClientConfig {
        login_timeout: Duration::from_millis(300),
        ..config()
    };
    let err = Connection::connect(&endpoint, &cfg).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("login"), "{err}");
    assert!(err.is_transient());
    server.await.unwrap();
}
