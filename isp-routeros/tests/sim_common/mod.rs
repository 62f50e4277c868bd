//! A raw API client for simulator tests, built only on the crate's codec.
#![allow(dead_code, clippy::unwrap_used)] // shared by several test crates; unwrap = test failure

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use isp_routeros::proto::{encode_sentence, Decoder, Reply, ReplyKind, Request, DEFAULT_MAX_WORD_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Raw {
    stream: Pin<Box<dyn Stream>>,
    decoder: Decoder,
    /// Raw word lists of every sentence read, in order.
    pub(crate) seen: Vec<Vec<String>>,
}

impl Raw {
    pub(crate) async fn connect(addr: SocketAddr) -> Raw {
        let s = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        Raw::over(Box::pin(s))
    }

    pub(crate) fn over(stream: Pin<Box<dyn Stream>>) -> Raw {
        Raw {
            stream,
            decoder: Decoder::new(DEFAULT_MAX_WORD_LEN),
            seen: Vec::new(),
        }
    }

    pub(crate) async fn connect_tls(
        addr: SocketAddr,
        cert: rustls::pki_types::CertificateDer<'static>,
    ) -> Raw {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio::time::timeout(TIMEOUT, connector.connect(name, tcp))
            .await
            .unwrap()
            .unwrap();
        Raw::over(Box::pin(tls))
    }

    pub(crate) async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    pub(crate) async fn send(&mut self, words: &[&str]) {
        let mut out = Vec::new();
        encode_sentence(words, &mut out);
        self.send_bytes(&out).await;
    }

    pub(crate) async fn send_req(&mut self, req: &Request) {
        let mut out = Vec::new();
        req.encode(&mut out);
        self.send_bytes(&out).await;
    }

    /// Next sentence's raw words, `None` on EOF/error.
    pub(crate) async fn next_words(&mut self) -> Option<Vec<Vec<u8>>> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(words) = self
                .decoder
                .next_sentence()
                .expect("protocol error from simulator")
            {
                self.seen.push(
                    words
                        .iter()
                        .map(|w| String::from_utf8_lossy(w).into_owned())
                        .collect(),
                );
                return Some(words);
            }
            let n = tokio::time::timeout(TIMEOUT, self.stream.read(&mut buf))
                .await
                .expect("simulator did not answer in time")
                .ok()?;
            if n == 0 {
                return None;
            }
            self.decoder.push(&buf[..n]);
        }
    }

    pub(crate) async fn reply(&mut self) -> Reply {
        let words = self.next_words().await.expect("connection closed");
        Reply::parse(&words).expect("bad reply")
    }

    /// Replies up to and including `!done` (untagged requests, one at a time).
    pub(crate) async fn until_done(&mut self) -> Vec<Reply> {
        let mut out = Vec::new();
        loop {
            let r = self.reply().await;
            let done = r.kind == ReplyKind::Done;
            out.push(r);
            if done {
                return out;
            }
        }
    }

    pub(crate) async fn call(&mut self, words: &[&str]) -> Vec<Reply> {
        self.send(words).await;
        self.until_done().await
    }

    pub(crate) async fn login(&mut self, user: &str, password: &str) {
        let name = format!("=name={user}");
        let pw = format!("=password={password}");
        let r = self.call(&["/login", &name, &pw]).await;
        assert_eq!(r.len(), 1, "login failed: {r:?}");
        assert_eq!(r[0].kind, ReplyKind::Done);
    }

    /// True when the peer closes the connection within the timeout.
    pub(crate) async fn closed(&mut self) -> bool {
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(TIMEOUT, self.stream.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(n)) => self.decoder.push(&buf[..n]),
            }
        }
    }
}

pub(crate) fn trap_message(replies: &[Reply]) -> Option<String> {
    replies
        .iter()
        .find(|r| r.kind == ReplyKind::Trap)
        .and_then(|r| r.get("message").map(str::to_owned))
}

pub(crate) fn rows(replies: &[Reply]) -> Vec<&Reply> {
    replies.iter().filter(|r| r.kind == ReplyKind::Re).collect()
}
