//! A local SMS gateway for the webhook sender (`[sms] kind = "webhook"`):
//! `POST /sms` with `{"to": ..., "message": ...}` and an `X-Api-Key` header.
//! It counts what it accepted, and can refuse on purpose, even echoing the
//! key it was sent in its error body, as careless gateways do.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use tokio::task::JoinHandle;

/// How the gateway answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Accept every message with the right key.
    Accept,
    /// Refuse with 401 and a body that quotes the key it was given.
    EchoKeyUnauthorized,
    /// Fail with 500 and a body that quotes the key.
    EchoKeyServerError,
}

#[derive(Debug)]
struct Inner {
    key: String,
    mode: Mutex<Mode>,
    accepted: Mutex<Vec<(String, String)>>,
    requests: AtomicU64,
}

/// A running gateway.
#[derive(Debug)]
pub struct SmsGateway {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: JoinHandle<()>,
}

impl Drop for SmsGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn sms(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    inner.requests.fetch_add(1, Ordering::Relaxed);
    let given = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mode = *inner.mode.lock().unwrap_or_else(|p| p.into_inner());
    match mode {
        Mode::EchoKeyUnauthorized => {
            return (
                StatusCode::UNAUTHORIZED,
                format!("{{\"error\":\"invalid api key '{given}'\"}}"),
            )
                .into_response()
        }
        Mode::EchoKeyServerError => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("upstream failure for key {given}"),
            )
                .into_response()
        }
        Mode::Accept => {}
    }
    if given != inner.key {
        return (StatusCode::UNAUTHORIZED, "{\"error\":\"bad key\"}").into_response();
    }
    let v: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{{\"error\":\"{e}\"}}")).into_response(),
    };
    let to = v["to"].as_str().unwrap_or("").to_owned();
    let message = v["message"].as_str().unwrap_or("").to_owned();
    let id = {
        let mut a = inner.accepted.lock().unwrap_or_else(|p| p.into_inner());
        a.push((to, message));
        a.len()
    };
    Json(serde_json::json!({ "id": format!("msg-{id}") })).into_response()
}

impl SmsGateway {
    /// Starts on a free loopback port; messages need `X-Api-Key: key`.
    pub async fn start(key: &str) -> SmsGateway {
        let inner = Arc::new(Inner {
            key: key.to_owned(),
            mode: Mutex::new(Mode::Accept),
            accepted: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .route("/sms", post(sms))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        SmsGateway { addr, inner, task }
    }

    /// `http://127.0.0.1:PORT/sms`.
    pub fn url(&self) -> String {
        format!("http://{}/sms", self.addr)
    }

    /// The `[sms]` table of an ispd configuration for this gateway, with the key
    /// read from the environment variable `key_env`.
    pub fn config_toml(&self, key_env: &str) -> String {
        format!(
            "[sms]\nkind = \"webhook\"\nurl = \"{}\"\nbody = '{{\"to\":\"{{to}}\",\"message\":\"{{message}}\"}}'\n\
             headers_from_env = {{ \"X-Api-Key\" = \"{key_env}\" }}\n\n[sms.http]\ntimeout_secs = 3\nmax_retries = 0\n",
            self.url()
        )
    }

    /// Changes how it answers.
    pub fn set_mode(&self, mode: Mode) {
        *self.inner.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
    }

    /// Accepted messages, in order: (to, message).
    pub fn accepted(&self) -> Vec<(String, String)> {
        self.inner
            .accepted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many times each (to, message) was accepted.
    pub fn counts(&self) -> BTreeMap<(String, String), usize> {
        let mut m = BTreeMap::new();
        for k in self.accepted() {
            *m.entry(k).or_default() += 1;
        }
        m
    }

    /// Requests received (accepted or not).
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }
}
