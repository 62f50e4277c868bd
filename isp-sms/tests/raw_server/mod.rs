//! A plain TCP server on 127.0.0.1 that speaks just enough HTTP/1.1 to count
//! requests read in full and to answer (or not) as scripted.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with the `n`-th request (the last one repeats).
#[derive(Debug, Clone)]
pub(crate) enum Script {
    /// Reads the request and never answers, keeping the connection open.
    Silent,
    /// Reads the request and closes the connection without a word.
    Close,
    /// Answers these bytes and closes the connection.
    Reply(Vec<u8>),
}

impl Script {
    /// An HTTP/1.1 answer with `status`, extra `headers` and a JSON or text `body`.
    pub(crate) fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Script {
        let mut text = format!(
            "HTTP/1.1 {status} Scripted\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        text.push_str(body);
        Script::Reply(text.into_bytes())
    }
}

/// The running server; stops with the test's runtime.
pub(crate) struct RawServer {
    port: u16,
    requests: Arc<AtomicUsize>,
}

impl RawServer {
    /// Listens on a free port of 127.0.0.1 and plays `script`.
    pub(crate) async fn start(script: Vec<Script>) -> RawServer {
        assert!(!script.is_empty());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let script = script.clone();
                let counter = counter.clone();
                tokio::spawn(async move { serve(stream, &script, &counter).await });
            }
        });
        RawServer { port, requests }
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests read in full so far.
    pub(crate) fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: TcpStream, script: &[Script], counter: &AtomicUsize) {
    while read_request(&mut stream).await {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        match &script[n.min(script.len() - 1)] {
            Script::Silent => {
                // Hold the connection open, never answering.
                std::future::pending::<()>().await;
            }
            Script::Close => return,
            Script::Reply(bytes) => {
                let _ = stream.write_all(bytes).await;
                let _ = stream.shutdown().await;
                return;
            }
        }
    }
}

/// Reads one request head and its `Content-Length` body; false at end of stream.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while data.len() < head_end + length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    true
}
