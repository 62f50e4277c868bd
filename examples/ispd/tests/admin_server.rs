//! The admin HTTP server's limits (issue 16, item 6): a client that trickles
//! its headers is cut off, connections beyond the cap are closed at once, and
//! the connections it serves keep working.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use isp_core::runtime::Shutdown;
use ispd::api::{serve, ServeLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn server(limits: ServeLimits) -> (std::net::SocketAddr, Shutdown) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let shutdown = Shutdown::new();
    tokio::spawn(serve(listener, app, shutdown.clone(), limits));
    (addr, shutdown)
}

/// Reads until the server closes the connection; the bytes it sent.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open for {limit:?}"),
        }
    }
}

async fn get(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    String::from_utf8_lossy(&read_to_close(&mut s, Duration::from_secs(10)).await).into_owned()
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off() {
    let (addr, shutdown) = server(ServeLimits {
        header_read_timeout: Duration::from_millis(300),
        ..ServeLimits::default()
    })
    .await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").await.unwrap();
    // The headers never end: the server closes (it may answer 408 first).
    let answer = read_to_close(&mut slow, Duration::from_secs(10)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // A client that sends its request gets an answer.
    assert!(get(addr).await.ends_with("ok"));
    shutdown.trigger();
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_and_the_others_served() {
    let (addr, shutdown) = server(ServeLimits {
        max_connections: 2,
        ..ServeLimits::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // One complete request each, keep-alive: the connection stays open and counted.
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    // The third is closed without an answer.
    let mut third = TcpStream::connect(addr).await.unwrap();
    let _ = third.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert!(read_to_close(&mut third, Duration::from_secs(10))
        .await
        .is_empty());
    // Once one is closed, a new client is served again.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = get(addr).await;
        if answer.ends_with("ok") {
            break;
        }
        assert!(Instant::now() < deadline, "no slot freed: {answer:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.trigger();
}
