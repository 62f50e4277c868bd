//! Router reads are bounded: a router (or something pretending to be one)
//! that sends an endless sentence, an endless reply, or an endless chunked
//! REST body gets a clear error naming the router and the limit; the client
//! stops reading there and drops the connection.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use isp_routeros::client::{map_ros_error, Client, ClientConfig, ClientError, Credentials, Endpoint};
use isp_routeros::proto::{encode_length, encode_word, Decoder, Reply, Request, DEFAULT_MAX_WORD_LEN};
use isp_routeros::rest::{map_rest_error, RestClient, RestEndpoint, RestError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Slack for what the kernel's socket buffers hold between the two ends.
const SOCKET_SLACK: usize = 16 * 1024 * 1024;

fn config(max_sentence_bytes: usize, max_response_bytes: usize) -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(2),
        login_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(20),
        keepalive: None,
        connect_attempts: 1,
        cooldown_min: Duration::ZERO,
        max_sentence_bytes,
        max_response_bytes,
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

/// Writes `chunk` until the peer stops reading and closes; returns the bytes written.
async fn flood(sock: &mut TcpStream, chunk: &[u8]) -> usize {
    let mut written = 0;
    while sock.write_all(chunk).await.is_ok() {
        written += chunk.len();
        // Not reading past the cap means the writes fail long before this.
        assert!(written < 1 << 30, "the client kept reading past its budget");
    }
    written
}

/// An API "router": the first connection logs in, takes one command and
/// answers it with `hostile`, reporting the bytes it wrote; later connections
/// answer every command with one small row.
async fn api_router<F, Fut>(hostile: F) -> (String, tokio::task::JoinHandle<usize>)
where
    F: FnOnce(TcpStream, String) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = usize> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut decoder = Decoder::new(DEFAULT_MAX_WORD_LEN);
        read_request(&mut sock, &mut decoder).await.unwrap();
        send(&mut sock, Reply::done()).await;
        let command = read_request(&mut sock, &mut decoder).await.unwrap();
        let tag = command.tag.clone().unwrap();
        let written = hostile(sock, tag).await;
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut decoder = Decoder::new(DEFAULT_MAX_WORD_LEN);
                    while let Some(request) = read_request(&mut sock, &mut decoder).await {
                        if request.command == "/login" {
                            send(&mut sock, Reply::done()).await;
                            continue;
                        }
                        send(
                            &mut sock,
                            Reply::re([("name", "calm")]).with_tag(request.tag.clone()),
                        )
                        .await;
                        send(&mut sock, Reply::done().with_tag(request.tag)).await;
                    }
                });
            }
        });
        written
    });
    (addr, task)
}

fn api_client(addr: &str, config: ClientConfig) -> Client {
    let endpoint = Endpoint::plain("router edge", addr, Credentials::new("admin", "pw")).unwrap();
    Client::new(endpoint, config).unwrap()
}

#[tokio::test]
async fn an_endless_sentence_stops_at_the_sentence_budget_and_drops_the_connection() {
    let (addr, server) = api_router(|mut sock, tag| async move {
        let mut head = Vec::new();
        encode_word(b"!re", &mut head);
        encode_word(format!(".tag={tag}").as_bytes(), &mut head);
        sock.write_all(&head).await.unwrap();
        // Words of 64 KiB, never the empty word that would end the sentence.
        let mut word = Vec::new();
        encode_length(64 * 1024, &mut word);
        word.extend(std::iter::repeat_n(b'a', 64 * 1024));
        flood(&mut sock, &word).await
    })
    .await;
    let client = api_client(&addr, config(1024 * 1024, 64 * 1024 * 1024));
    let err = client.print("/ip/hotspot/active", &[], &[]).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::TooLarge {
                limit: 1_048_576,
                setting: "max_sentence_bytes",
                ..
            }
        ),
        "{err:?}"
    );
    let mapped = map_ros_error("router edge", err).to_string();
    assert!(
        mapped.contains("router edge") && mapped.contains("1048576"),
        "{mapped}"
    );
    let written = tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .unwrap()
        .unwrap();
    assert!(written < 1024 * 1024 + SOCKET_SLACK, "{written} bytes written");
    // The connection was dropped, not reused: the next call logs in again.
    let rows = client.print("/system/identity", &[], &[]).await.unwrap();
    assert_eq!(rows[0].get("name"), Some("calm"));
    assert_eq!(client.logins(), 2);
}

#[tokio::test]
async fn an_endless_reply_stops_at_the_response_budget_and_drops_the_connection() {
    let (addr, server) = api_router(|mut sock, tag| async move {
        let mut row = Vec::new();
        Reply::re([("comment", "x".repeat(8 * 1024))])
            .with_tag(Some(tag))
            .encode(false, &mut row);
        flood(&mut sock, &row).await
    })
    .await;
    let limit = 256 * 1024;
    let client = api_client(&addr, config(64 * 1024, limit));
    let err = client.print("/ip/hotspot/host", &[], &[]).await.unwrap_err();
    match &err {
        ClientError::TooLarge {
            what,
            limit: l,
            setting,
        } => {
            assert_eq!((*l, *setting), (limit, "max_response_bytes"));
            assert!(what.contains("/ip/hotspot/host/print"), "{what}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_transient(), "the same read would fail again");
    let mapped = map_ros_error("router edge", err).to_string();
    assert!(
        mapped.contains("router edge") && mapped.contains("262144"),
        "{mapped}"
    );
    let written = tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .unwrap()
        .unwrap();
    assert!(written < limit + SOCKET_SLACK, "{written} bytes written");
    client.print("/system/identity", &[], &[]).await.unwrap();
    assert_eq!(client.logins(), 2);
}

/// A REST "router" on plain HTTP whose first answer is an endless chunked
/// body; later answers are `[]`. Counts connections; reports bytes written.
async fn rest_router() -> (String, tokio::task::JoinHandle<usize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        count.fetch_add(1, Ordering::SeqCst);
        read_head(&mut sock).await;
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        sock.write_all(head.as_bytes()).await.unwrap();
        sock.write_all(b"1\r\n[\r\n").await.unwrap();
        let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
        chunk.extend(std::iter::repeat_n(b' ', 64 * 1024));
        chunk.extend_from_slice(b"\r\n");
        let written = flood(&mut sock, &chunk).await;
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    while read_head(&mut sock).await {
                        let ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]";
                        if sock.write_all(ok.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        written
    });
    (addr, task, accepted)
}

/// Reads a request head (our GETs have no body); false at end of stream.
async fn read_head(sock: &mut TcpStream) -> bool {
    let mut data = Vec::new();
    let mut buf = [0u8; 1024];
    while !data.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    true
}

#[tokio::test]
async fn an_endless_chunked_rest_body_stops_at_the_cap_and_drops_the_connection() {
    let (addr, server, accepted) = rest_router().await;
    let limit = 1024 * 1024;
    let endpoint = RestEndpoint::http("router edge", &addr, Credentials::new("admin", "pw")).unwrap();
    let client = RestClient::new(endpoint, config(64 * 1024, limit)).unwrap();
    let err = client.print("/ip/hotspot/active", &[], &[]).await.unwrap_err();
    assert!(
        matches!(err, RestError::TooLarge { limit: l, .. } if l == limit),
        "{err:?}"
    );
    let mapped = map_rest_error("router edge", err).to_string();
    assert!(
        mapped.contains("router edge") && mapped.contains("1048576"),
        "{mapped}"
    );
    let written = tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .unwrap()
        .unwrap();
    assert!(written < limit + SOCKET_SLACK, "{written} bytes written");
    // The unfinished connection went away with its response: a new one serves the next call.
    let rows = client.print("/ip/hotspot/active", &[], &[]).await.unwrap();
    assert!(rows.is_empty());
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[test]
fn budgets_are_validated() {
    let err = config(512, 64 * 1024 * 1024).validate().unwrap_err();
    assert!(err.to_string().contains("max_sentence_bytes"), "{err}");
    let err = config(1024 * 1024, 4096).validate().unwrap_err();
    assert!(err.to_string().contains("max_response_bytes"), "{err}");
    let defaults = ClientConfig::default();
    assert_eq!(defaults.max_sentence_bytes, 1024 * 1024);
    assert_eq!(defaults.max_response_bytes, 64 * 1024 * 1024);
}
