//! [`RestClient`]: one router's REST API over a small set of reused
//! keep-alive connections.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use reqwest::{Method, Url};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use super::endpoint::RestEndpoint;
use super::error::RestError;
use crate::client::backoff;
use crate::client::{ClientConfig, Row};

/// How long an unused connection stays open when no keepalive interval is configured.
const DEFAULT_IDLE: Duration = Duration::from_secs(60);

struct Cooldown {
    /// Calls whose connect attempts all failed, in a row.
    failures: u32,
    /// No new connect attempt before this instant.
    until: Option<Instant>,
    last: Option<RestError>,
}

struct Inner {
    endpoint: RestEndpoint,
    config: ClientConfig,
    http: reqwest::Client,
    base: Url,
    permits: Semaphore,
    connections: Arc<AtomicU64>,
    cooldown: Mutex<Cooldown>,
}

/// A RouterOS REST client for one router. Cheap to clone; clones share the
/// connections.
///
/// At most [`ClientConfig::max_connections`] requests are in flight at once
/// (others wait, within [`ClientConfig::command_timeout`]), and finished
/// connections are kept alive for the next request, so a burst of calls opens
/// at most about that many connections. Each request is limited by
/// [`ClientConfig::command_timeout`], each connect by
/// [`ClientConfig::connect_timeout`]. A request whose connection could not be
/// made is tried again ([`ClientConfig::connect_attempts`], with back-off): it
/// was never sent. A request that was sent is never repeated (a `PUT` may have
/// happened): the caller gets a transient error. After a call's connect
/// attempts all failed, calls fail at once with [`RestError::Backoff`] for a
/// cool-down that doubles per failed call.
#[derive(Clone)]
pub struct RestClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient")
            .field("endpoint", &self.inner.endpoint)
            .field("connections", &self.connections())
            .finish()
    }
}

/// A tower layer over reqwest's connector that counts connections made.
#[derive(Clone)]
struct CountConnections(Arc<AtomicU64>);

impl<S> tower_layer::Layer<S> for CountConnections {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            count: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct Counted<S> {
    inner: S,
    count: Arc<AtomicU64>,
}

impl<S, R> tower_service::Service<R> for Counted<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let connecting = self.inner.call(req);
        let count = self.count.clone();
        Box::pin(async move {
            let made = connecting.await;
            if made.is_ok() {
                count.fetch_add(1, Ordering::Relaxed);
            }
            made
        })
    }
}

/// Checks a menu path (`/ip/hotspot/active`).
fn check_menu(menu: &str) -> Result<(), RestError> {
    let ok = menu.starts_with('/')
        && menu.len() > 1
        && !menu.ends_with('/')
        && !menu.contains("//")
        && !menu
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#'));
    if ok {
        Ok(())
    } else {
        Err(RestError::Config {
            field: "menu",
            value: menu.to_owned(),
            reason: "a menu path looks like /ip/hotspot/active".into(),
        })
    }
}

/// Checks an item id (or name) used in a URL or an `.id` list.
fn check_id(id: &str) -> Result<(), RestError> {
    if id.is_empty() || id.contains([',', '/']) || id.chars().any(char::is_control) {
        return Err(RestError::Config {
            field: "id",
            value: id.to_owned(),
            reason: "an item id looks like *1A (no commas or slashes)".into(),
        });
    }
    Ok(())
}

fn join_ids(ids: &[&str]) -> Result<String, RestError> {
    if ids.is_empty() {
        return Err(RestError::Config {
            field: "ids",
            value: String::new(),
            reason: "at least one item id".into(),
        });
    }
    for id in ids {
        check_id(id)?;
    }
    Ok(ids.join(","))
}

/// A `k=v` API query that a `GET` filter expresses exactly.
fn simple_filter(query: &str) -> Option<(&str, &str)> {
    let (k, v) = query.split_once('=')?;
    let plain = !k.is_empty() && !k.starts_with(['-', '<', '>', '#', '=', '!']);
    plain.then_some((k, v))
}

fn object(attributes: &[(&str, &str)]) -> Map<String, Value> {
    attributes
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
        .collect()
}

/// One JSON object of a reply as a [`Row`]: strings as they are, numbers and
/// booleans as text, `null` left out.
fn to_row(what: &str, map: Map<String, Value>) -> Result<Row, RestError> {
    let mut row = std::collections::BTreeMap::new();
    for (k, v) in map {
        let text = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            Value::Array(_) | Value::Object(_) => {
                return Err(RestError::Protocol {
                    detail: format!("{what}: property {} is not a string", shown(&format!("{k:?}"))),
                })
            }
        };
        row.insert(k, text);
    }
    Ok(Row::from(row))
}

/// At most 200 characters of something a router sent, for an error message:
/// a hostile answer must not become a megabyte of error text.
fn shown(value: &impl std::fmt::Display) -> String {
    let text = value.to_string();
    let mut out: String = text.chars().take(200).collect();
    if out.len() < text.len() {
        out.push_str("...");
    }
    out
}

/// A reply as rows: an array of objects, one object (single-item menus such
/// as `/system/resource`), or nothing.
fn to_rows(what: &str, value: Value) -> Result<Vec<Row>, RestError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) => Ok(vec![to_row(what, map)?]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(map) => to_row(what, map),
                other => Err(RestError::Protocol {
                    detail: format!("{what}: expected objects, got {}", shown(&other)),
                }),
            })
            .collect(),
        other => Err(RestError::Protocol {
            detail: format!("{what}: expected an array of objects, got {}", shown(&other)),
        }),
    }
}

/// The rustls error inside a reqwest error, if any. io errors hide the error they wrap from
/// `source()` (and wrap each other), so they are opened with `get_ref`.
fn rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = match e.downcast_ref::<std::io::Error>() {
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => e.source(),
            },
            None => e.source(),
        };
    }
    None
}

/// The innermost message of an error chain (`Connection refused (os error 111)`).
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        last = e.to_string();
        current = e.source();
    }
    last
}

impl RestClient {
    /// A client for `endpoint`. No I/O happens until the first request.
    pub fn new(endpoint: RestEndpoint, config: ClientConfig) -> Result<RestClient, RestError> {
        config.validate()?;
        let connections = Arc::new(AtomicU64::new(0));
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.command_timeout)
            .pool_max_idle_per_host(config.max_connections)
            .pool_idle_timeout(config.keepalive.unwrap_or(DEFAULT_IDLE))
            .tcp_nodelay(true)
            .user_agent(concat!("isp-routeros/", env!("CARGO_PKG_VERSION")))
            .connector_layer(CountConnections(connections.clone()));
        if let Some(interval) = config.keepalive {
            builder = builder.tcp_keepalive(interval);
        }
        let mut host = endpoint.host.clone();
        if let Some(tls) = &endpoint.tls {
            let rustls_config = crate::client::tls::client_config(tls)?;
            builder = builder.use_preconfigured_tls(rustls_config).https_only(true);
            if let Some(name) = &tls.server_name {
                // Verify (and send as SNI) the configured name, connecting to the address.
                let ip: IpAddr = endpoint.host.parse().map_err(|_| RestError::Config {
                    field: "tls_server_name",
                    value: name.clone(),
                    reason: format!(
                        "over REST a verified name other than the host needs an IP address as host, not {:?}",
                        endpoint.host
                    ),
                })?;
                builder = builder.resolve(name, SocketAddr::new(ip, endpoint.port));
                host = name.clone();
            }
        }
        let http = builder.build().map_err(|e| RestError::Config {
            field: "rest",
            value: endpoint.label.clone(),
            reason: format!("cannot build the HTTP client: {}", root_cause(&e)),
        })?;
        let authority = if host.contains(':') {
            format!("[{host}]:{}", endpoint.port)
        } else {
            format!("{host}:{}", endpoint.port)
        };
        let base_text = format!("{}://{authority}/rest", endpoint.scheme());
        let base = Url::parse(&base_text).map_err(|e| RestError::Config {
            field: "address",
            value: endpoint.addr(),
            reason: format!("not usable in a URL: {e}"),
        })?;
        Ok(RestClient {
            inner: Arc::new(Inner {
                permits: Semaphore::new(config.max_connections),
                endpoint,
                config,
                http,
                base,
                connections,
                cooldown: Mutex::new(Cooldown {
                    failures: 0,
                    until: None,
                    last: None,
                }),
            }),
        })
    }

    /// The router this client talks to.
    pub fn endpoint(&self) -> &RestEndpoint {
        &self.inner.endpoint
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Connections opened so far (TCP and, for HTTPS, TLS done). Each is one
    /// REST login in the router's `/user/active`.
    pub fn connections(&self) -> u64 {
        self.inner.connections.load(Ordering::Relaxed)
    }

    fn url(&self, menu: &str, tail: &[&str]) -> Result<Url, RestError> {
        check_menu(menu)?;
        let mut url = self.inner.base.clone();
        {
            let mut segments = url.path_segments_mut().map_err(|()| RestError::Config {
                field: "address",
                value: self.inner.endpoint.addr(),
                reason: "cannot be a base URL".into(),
            })?;
            segments.extend(menu.split('/').filter(|s| !s.is_empty()));
            segments.extend(tail);
        }
        Ok(url)
    }

    fn cooldown(&self) -> std::sync::MutexGuard<'_, Cooldown> {
        self.inner.cooldown.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn check_cooldown(&self) -> Result<(), RestError> {
        let state = self.cooldown();
        let now = Instant::now();
        match state.until.filter(|u| *u > now) {
            Some(until) => Err(RestError::Backoff {
                retry_in: until - now,
                last: Box::new(state.last.clone().unwrap_or(RestError::Connect {
                    addr: self.inner.endpoint.addr(),
                    detail: "earlier connect attempts failed".into(),
                })),
            }),
            None => Ok(()),
        }
    }

    fn connect_succeeded(&self) {
        let mut state = self.cooldown();
        state.failures = 0;
        state.until = None;
        state.last = None;
    }

    fn connect_failed(&self, err: &RestError) {
        let config = &self.inner.config;
        let mut state = self.cooldown();
        state.failures = state.failures.saturating_add(1);
        if !config.cooldown_min.is_zero() {
            let cooldown = backoff::cooldown(config.cooldown_min, config.cooldown_max, state.failures);
            state.until = Some(Instant::now() + cooldown);
        }
        state.last = Some(err.clone());
        tracing::warn!(router = %self.inner.endpoint.label, error = %err, failures = state.failures, "cannot connect to router (REST)");
    }

    fn classify(&self, err: &reqwest::Error, what: &str) -> RestError {
        let addr = self.inner.endpoint.addr();
        if let Some(tls) = rustls_error(err) {
            return crate::client::tls::classify_rustls_error(&addr, tls).into();
        }
        if err.is_connect() {
            if err.is_timeout() {
                return RestError::Timeout {
                    what: format!("connect to {addr}"),
                    after: self.inner.config.connect_timeout,
                };
            }
            return RestError::Connect {
                addr,
                detail: root_cause(err),
            };
        }
        if err.is_timeout() {
            return RestError::Timeout {
                what: what.to_owned(),
                after: self.inner.config.command_timeout,
            };
        }
        RestError::ConnectionLost {
            command: what.to_owned(),
            detail: root_cause(err),
        }
    }

    /// Sends one request and reads its JSON answer (`Null` for an empty body).
    async fn send(&self, method: Method, url: Url, body: Option<Value>) -> Result<Value, RestError> {
        let what = format!("{method} {}", url.path());
        self.check_cooldown()?;
        let config = &self.inner.config;
        let _permit = tokio::time::timeout(config.command_timeout, self.inner.permits.acquire())
            .await
            .map_err(|_| RestError::Timeout {
                what: format!("{what} (waiting for a free connection)"),
                after: config.command_timeout,
            })?
            .map_err(|_| RestError::ConnectionLost {
                command: what.clone(),
                detail: "client closed".into(),
            })?;
        let credentials = &self.inner.endpoint.credentials;
        let mut delays = backoff::Jittered::new(
            config.backoff_min,
            config.backoff_max,
            config.connect_attempts.saturating_sub(1),
            backoff::random_seed(),
        );
        let response = loop {
            let mut request = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .basic_auth(credentials.username(), Some(credentials.expose_password()))
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(b) = &body {
                request = request.json(b);
            }
            match request.send().await {
                Ok(response) => {
                    self.connect_succeeded();
                    break response;
                }
                Err(e) if e.is_connect() => {
                    let err = self.classify(&e, &what);
                    match delays.next() {
                        Some(delay) if err.is_transient() => tokio::time::sleep(delay).await,
                        _ => {
                            self.connect_failed(&err);
                            return Err(err);
                        }
                    }
                }
                Err(e) => return Err(self.classify(&e, &what)),
            }
        };
        let status = response.status().as_u16();
        let bytes = self.read_body(response, &what).await?;
        if !(200..300).contains(&status) {
            return Err(RestError::from_response(
                &what,
                credentials.username(),
                status,
                &bytes,
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| RestError::Protocol {
            detail: format!("{what}: the answer is not JSON: {e}"),
        })
    }

    /// Reads a body chunk by chunk, stopping as soon as it passes
    /// [`ClientConfig::max_response_bytes`] whatever `Content-Length` or the
    /// chunked encoding announce. Dropping the unfinished response closes its
    /// connection instead of returning it to the pool.
    async fn read_body(&self, mut response: reqwest::Response, what: &str) -> Result<Vec<u8>, RestError> {
        let limit = self.inner.config.max_response_bytes;
        let too_large = || RestError::TooLarge {
            command: what.to_owned(),
            limit,
        };
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(&e, what))? {
            if body.len() + chunk.len() > limit {
                tracing::warn!(router = %self.inner.endpoint.label, request = what, limit, "REST response too large, connection dropped");
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// `print`: the items of `menu` matching the API-style `queries`, with only
    /// the `proplist` properties (all when empty). `k=v` queries become `GET`
    /// filters; any other query form (`-k`, `<k=v`, `#|`) sends
    /// `POST <menu>/print` with `.query`.
    pub async fn print(
        &self,
        menu: &str,
        proplist: &[&str],
        queries: &[&str],
    ) -> Result<Vec<Row>, RestError> {
        let filters: Option<Vec<(&str, &str)>> = queries.iter().map(|q| simple_filter(q)).collect();
        match filters {
            Some(filters) => {
                let mut url = self.url(menu, &[])?;
                {
                    let mut pairs = url.query_pairs_mut();
                    if !proplist.is_empty() {
                        pairs.append_pair(".proplist", &proplist.join(","));
                    }
                    for (k, v) in &filters {
                        pairs.append_pair(k, v);
                    }
                }
                if url.query() == Some("") {
                    url.set_query(None);
                }
                let what = format!("GET {}", url.path());
                to_rows(&what, self.send(Method::GET, url, None).await?)
            }
            None => {
                let mut body = Map::new();
                if !proplist.is_empty() {
                    body.insert(
                        ".proplist".into(),
                        Value::Array(proplist.iter().map(|p| Value::String((*p).to_owned())).collect()),
                    );
                }
                body.insert(
                    ".query".into(),
                    Value::Array(queries.iter().map(|q| Value::String((*q).to_owned())).collect()),
                );
                let url = self.url(menu, &["print"])?;
                let what = format!("POST {}", url.path());
                to_rows(
                    &what,
                    self.send(Method::POST, url, Some(Value::Object(body))).await?,
                )
            }
        }
    }

    /// One item by id (or name, where the menu allows): `GET <menu>/<id>`.
    /// A missing item is [`RestError::NotFound`].
    pub async fn get(&self, menu: &str, id: &str) -> Result<Row, RestError> {
        check_id(id)?;
        let url = self.url(menu, &[id])?;
        let what = format!("GET {}", url.path());
        let rows = to_rows(&what, self.send(Method::GET, url, None).await?)?;
        rows.into_iter().next().ok_or_else(|| RestError::Protocol {
            detail: format!("{what}: empty answer"),
        })
    }

    /// `add`: `PUT <menu>` with the attributes; returns the new item's `.id`.
    pub async fn add(&self, menu: &str, attributes: &[(&str, &str)]) -> Result<String, RestError> {
        let url = self.url(menu, &[])?;
        let what = format!("PUT {}", url.path());
        let reply = self
            .send(Method::PUT, url, Some(Value::Object(object(attributes))))
            .await?;
        let id = match &reply {
            Value::Object(map) => map.get(".id").or_else(|| map.get("ret")),
            _ => None,
        };
        match id {
            Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
            _ => Err(RestError::Protocol {
                detail: format!("{what}: the answer has no .id: {}", shown(&reply)),
            }),
        }
    }

    /// `set`: `PATCH <menu>/<id>` with the attributes.
    pub async fn set(&self, menu: &str, id: &str, attributes: &[(&str, &str)]) -> Result<(), RestError> {
        check_id(id)?;
        let url = self.url(menu, &[id])?;
        self.send(Method::PATCH, url, Some(Value::Object(object(attributes))))
            .await
            .map(|_| ())
    }

    /// `remove`: `DELETE <menu>/<id>` for one id (a second delete of the same
    /// id is [`RestError::NotFound`]); `POST <menu>/remove` with the ids
    /// comma-separated in `.id` for several.
    pub async fn remove(&self, menu: &str, ids: &[&str]) -> Result<(), RestError> {
        match ids {
            [id] => {
                check_id(id)?;
                let url = self.url(menu, &[id])?;
                self.send(Method::DELETE, url, None).await.map(|_| ())
            }
            _ => self.command(menu, "remove", ids, &[]).await.map(|_| ()),
        }
    }

    /// A command on items (`disable`, `enable`, `remove`):
    /// `POST <menu>/<verb>` with `.id` (comma-separated) and the attributes.
    pub async fn command(
        &self,
        menu: &str,
        verb: &str,
        ids: &[&str],
        attributes: &[(&str, &str)],
    ) -> Result<Value, RestError> {
        let mut body = object(attributes);
        body.insert(".id".into(), Value::String(join_ids(ids)?));
        self.call(menu, verb, body).await
    }

    /// Any command: `POST <menu>/<command>` with this JSON object; returns the
    /// answer (rows for `print`, `{"ret": ...}` for `add`, `[]` for most others).
    pub async fn call(
        &self,
        menu: &str,
        command: &str,
        body: Map<String, Value>,
    ) -> Result<Value, RestError> {
        if command.is_empty() || command.contains(['/', '?', '#']) || command.chars().any(char::is_whitespace)
        {
            return Err(RestError::Config {
                field: "command",
                value: command.to_owned(),
                reason: "a command is one word such as print or remove".into(),
            });
        }
        let url = self.url(menu, &[command])?;
        self.send(Method::POST, url, Some(Value::Object(body))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Credentials;

    fn client() -> RestClient {
        let endpoint =
            RestEndpoint::http("router r1", "127.0.0.1:1", Credentials::new("api", "pw-Secret-1")).unwrap();
        RestClient::new(endpoint, ClientConfig::default()).unwrap()
    }

    #[test]
    fn urls() {
        let c = client();
        assert_eq!(
            c.url("/ip/hotspot/active", &[]).unwrap().as_str(),
            "http://127.0.0.1:1/rest/ip/hotspot/active"
        );
        assert_eq!(
            c.url("/ppp/secret", &["*1A"]).unwrap().as_str(),
            "http://127.0.0.1:1/rest/ppp/secret/*1A"
        );
        assert_eq!(
            c.url("/ppp/secret", &["a b"]).unwrap().as_str(),
            "http://127.0.0.1:1/rest/ppp/secret/a%20b"
        );
        for bad in [
            "ppp/secret",
            "/",
            "/ppp/",
            "/ppp//secret",
            "/ppp/secret?x=1",
            "/a b",
        ] {
            let e = c.url(bad, &[]).unwrap_err();
            assert!(e.to_string().contains("menu"), "{bad}: {e}");
        }
        assert!(!format!("{c:?}").contains("pw-Secret-1"));
    }

    #[test]
    fn filters_and_rows() {
        assert_eq!(simple_filter("name=alice"), Some(("name", "alice")));
        assert_eq!(simple_filter("comment="), Some(("comment", "")));
        assert_eq!(simple_filter("name=a=b"), Some(("name", "a=b")));
        for complex in ["name", "-name", "<uptime=5", ">x=1", "#|", "=name=x"] {
            assert_eq!(simple_filter(complex), None, "{complex}");
        }
        let rows = to_rows(
            "GET x",
            serde_json::json!([{".id": "*1", "disabled": "false", "n": 5, "b": true, "z": null}]),
        )
        .unwrap();
        assert_eq!(rows[0].id(), Some("*1"));
        assert_eq!(rows[0].get("n"), Some("5"));
        assert_eq!(rows[0].flag("b"), Some(true));
        assert_eq!(rows[0].get("z"), None);
        let one = to_rows("GET x", serde_json::json!({"name": "MikroTik"})).unwrap();
        assert_eq!(one[0].get("name"), Some("MikroTik"));
        assert!(to_rows("GET x", Value::Null).unwrap().is_empty());
        assert!(to_rows("GET x", serde_json::json!("text")).is_err());
        assert!(to_rows("GET x", serde_json::json!([{"a": {"b": "c"}}])).is_err());
        assert!(join_ids(&[]).is_err());
        assert!(join_ids(&["*1", "*2,*3"]).is_err());
        assert_eq!(join_ids(&["*1", "*2"]).unwrap(), "*1,*2");
    }
}
