//! Helpers shared by the gateway tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use isp_core::domain::PhoneNumber;
use isp_sms::SmsGatewayConfig;
use wiremock::MockServer;

/// The secret every test uses; it must never show up anywhere.
pub(crate) const SECRET: &str = "sek-RET-9f8e7d6c5b4a3210";

/// `[http]` with a short timeout and tiny backoff, so retries are quick.
pub(crate) const FAST_HTTP: &str = r#"
[http]
timeout_secs = 0.5
connect_timeout_secs = 0.5
max_retries = 2
retry_initial_delay_ms = 10
retry_max_delay_ms = 40
"#;

pub(crate) fn phone() -> PhoneNumber {
    PhoneNumber::parse("to", "+255712345678").unwrap()
}

pub(crate) fn config(toml_text: &str) -> SmsGatewayConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("bad test config: {e}\n{toml_text}"))
}

/// How many requests the server has received.
pub(crate) async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

/// Form fields of the `n`-th request.
pub(crate) async fn form_of(server: &MockServer, n: usize) -> Vec<(String, String)> {
    let reqs = server.received_requests().await.unwrap();
    form_urlencoded::parse(&reqs[n].body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(crate) fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Fails if `text` contains the secret.
pub(crate) fn assert_no_secret(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "the secret leaked into {what}: {text}");
}

#[derive(Clone)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once per test binary) a subscriber that records every event at
/// TRACE level, and returns what was logged so far.
pub(crate) fn logs() -> String {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let buf = LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Buffer(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buf
    });
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

/// A port on 127.0.0.1 where nothing listens.
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
