//! The simulator's REST service: `/rest` over plain HTTP (`www`) or HTTPS (`www-ssl`), served
//! from the same router state, command log, faults and login counter as the API service.
//!
//! Each HTTP request becomes the API command it stands for (`GET /rest/ppp/secret?name=a` is
//! `/ppp/secret/print ?name=a`, `PUT` is `add`, `PATCH` is `set`, `DELETE` is `remove`,
//! `POST /rest/<menu>/<command>` is that command), runs through [`Shared::run`], and its replies
//! become JSON.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request as HttpRequest, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

use super::menus::{self, MenuSpec};
use super::router::resolve;
use super::server::{accept_with, charged_items, stopped, ConnCount, Shared};
use super::Via;
use crate::proto::{Reply, ReplyKind, Request};

/// Largest request body accepted.
const MAX_BODY: usize = 1024 * 1024;

type Body = Full<Bytes>;

/// Accepts REST connections until shutdown (HTTPS with `tls`, else plain HTTP); closes the port
/// during an outage, as the API service does.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    accept_with(shared, listener, addr, move |shared, sock, peer| {
        connection(shared, sock, peer, acceptor.clone())
    })
    .await;
}

async fn connection(shared: Arc<Shared>, sock: TcpStream, peer: SocketAddr, acceptor: Option<TlsAcceptor>) {
    let _ = sock.set_nodelay(true);
    match acceptor {
        None => serve(shared, sock).await,
        Some(acceptor) => match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(sock)).await {
            Ok(Ok(tls)) => serve(shared, tls).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "simulator REST TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "simulator REST TLS handshake timed out"),
        },
    }
}

/// One HTTP connection.
struct Conn {
    id: u64,
    /// A request on it authenticated already (its REST login was counted).
    logged_in: AtomicBool,
    /// Close the connection now, without an answer.
    kill: Notify,
}

async fn serve<S>(shared: Arc<Shared>, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    shared.connections.fetch_add(1, Ordering::Relaxed);
    let _count = ConnCount(shared.clone());
    let conn = Arc::new(Conn {
        id: shared.next_conn.fetch_add(1, Ordering::Relaxed),
        logged_in: AtomicBool::new(false),
        kill: Notify::new(),
    });
    let mut drop_rx = shared.drop_tx.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let service = {
        let (shared, conn) = (shared.clone(), conn.clone());
        hyper::service::service_fn(move |req| {
            let (shared, conn) = (shared.clone(), conn.clone());
            async move { Ok::<_, Infallible>(handle(&shared, &conn, req).await) }
        })
    };
    let http = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        res = http => if let Err(e) = res {
            tracing::debug!(error = %e, "simulator REST connection ended with an error");
        },
        _ = drop_rx.changed() => {}
        _ = stopped(&mut shutdown) => {}
        _ = conn.kill.notified() => {}
    }
}

fn json(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `{"error":<code>,"message":"<reason>","detail":"<RouterOS message>"}` (no `detail` when `None`).
fn error(status: StatusCode, detail: Option<&str>) -> Response<Body> {
    let mut body = Map::new();
    body.insert("error".into(), Value::from(status.as_u16()));
    body.insert(
        "message".into(),
        Value::from(status.canonical_reason().unwrap_or("Error")),
    );
    if let Some(d) = detail {
        body.insert("detail".into(), Value::from(d));
    }
    json(status, &Value::Object(body))
}

fn unauthorized() -> Response<Body> {
    let mut response = error(StatusCode::UNAUTHORIZED, None);
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"REST API\""),
    );
    response
}

fn no_content() -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// `%XX` decoding (and `+` as space in query strings); `None` for invalid UTF-8 or escapes.
fn percent_decode(raw: &str, plus_is_space: bool) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = raw.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// What the response looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `GET <menu>`: an array (an object for single-item menus).
    List { singleton: bool },
    /// `GET <menu>/<id>`: the object, or 404.
    One,
    /// `PUT <menu>`: the created object.
    Created,
    /// `PATCH <menu>/<id>`: the updated object, or 404.
    Updated,
    /// `DELETE <menu>/<id>`: 204, or 404.
    Deleted,
    /// `POST <menu>/<command>`: rows as an array, `{"ret":..}`, or `[]`.
    Command,
}

/// A request turned into an API command.
struct Plan {
    req: Request,
    shape: Shape,
    spec: &'static MenuSpec,
    /// The id or name in the path, for `One`, `Updated`, `Deleted`.
    item: Option<String>,
}

/// A request that cannot become a command: the name to log and the answer.
struct Refusal {
    command: String,
    status: StatusCode,
    detail: String,
}

impl Refusal {
    fn new(command: impl Into<String>, status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            status,
            detail: detail.into(),
        }
    }
}

/// The query that finds an item named in a path: by `.id`, or by `name` where the menu has names.
fn item_query(spec: &MenuSpec, item: &str) -> String {
    if !item.starts_with('*') && spec.named() {
        format!("name={item}")
    } else {
        format!(".id={item}")
    }
}

/// A JSON body as attributes (values as text), `.proplist` (array or text) and `.query` (array).
fn body_words(command: &str, body: &Bytes, req: &mut Request) -> Result<(), Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let bad = |detail: String| Refusal::new(command, StatusCode::BAD_REQUEST, detail);
    let value: Value = serde_json::from_slice(body).map_err(|e| bad(format!("JSON parse error: {e}")))?;
    let Value::Object(map) = value else {
        return Err(bad("JSON object expected".into()));
    };
    for (k, v) in map {
        match (k.as_str(), v) {
            (".query", Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::String(q) => req.queries.push(q),
                        _ => return Err(bad("invalid value for argument .query".into())),
                    }
                }
            }
            (".proplist", Value::Array(items)) => {
                let mut names = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(p) => names.push(p),
                        _ => return Err(bad("invalid value for argument .proplist".into())),
                    }
                }
                req.attributes.push((k, names.join(",")));
            }
            (_, Value::String(s)) => req.attributes.push((k, s)),
            (_, Value::Number(n)) => req.attributes.push((k, n.to_string())),
            (_, Value::Bool(b)) => req.attributes.push((k, b.to_string())),
            (name, _) => return Err(bad(format!("invalid value for argument {name}"))),
        }
    }
    Ok(())
}

/// Turns method, path, query string and body into the API command they stand for.
fn plan(method: &Method, path: &str, query: Option<&str>, body: &Bytes) -> Result<Plan, Refusal> {
    let mut segments = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let seg = percent_decode(raw, false)
            .ok_or_else(|| Refusal::new(path, StatusCode::BAD_REQUEST, "invalid URL encoding"))?;
        segments.push(seg);
    }
    let full = format!("/{}", segments.join("/"));
    if segments.is_empty() {
        return Err(Refusal::new(
            "/",
            StatusCode::BAD_REQUEST,
            "no such command prefix",
        ));
    }
    if let Some(spec) = menus::menu(&full) {
        let (verb, shape) = match *method {
            Method::GET => (
                "print",
                Shape::List {
                    singleton: spec.singleton,
                },
            ),
            Method::PUT => ("add", Shape::Created),
            _ => {
                return Err(Refusal::new(
                    full,
                    StatusCode::BAD_REQUEST,
                    "no such command or directory ()",
                ))
            }
        };
        let mut req = Request::new(format!("{full}/{verb}"));
        if shape == Shape::Created {
            body_words(&req.command.clone(), body, &mut req)?;
        } else {
            for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let decode = |s: &str| {
                    percent_decode(s, true).ok_or_else(|| {
                        Refusal::new(full.clone(), StatusCode::BAD_REQUEST, "invalid URL encoding")
                    })
                };
                let (k, v) = (decode(k)?, decode(v)?);
                if k == ".proplist" {
                    req.attributes.push((k, v));
                } else {
                    req.queries.push(format!("{k}={v}"));
                }
            }
        }
        return Ok(Plan {
            req,
            shape,
            spec,
            item: None,
        });
    }
    let (parent, last) = full.rsplit_once('/').unwrap_or(("", &full));
    let Some(spec) = menus::menu(parent) else {
        let detail = match resolve(&full) {
            Err(trap) => trap.message,
            Ok(_) => "no such command prefix".to_owned(),
        };
        return Err(Refusal::new(full, StatusCode::BAD_REQUEST, detail));
    };
    let item = last.to_owned();
    let (mut req, shape) = match *method {
        Method::GET => (
            Request::new(format!("{parent}/print")).query(item_query(spec, &item)),
            Shape::One,
        ),
        Method::PATCH => (
            Request::new(format!("{parent}/set")).attr(".id", item.clone()),
            Shape::Updated,
        ),
        Method::DELETE => (
            Request::new(format!("{parent}/remove")).attr(".id", item.clone()),
            Shape::Deleted,
        ),
        Method::POST => {
            let mut req = Request::new(full.clone());
            body_words(&full, body, &mut req)?;
            return Ok(Plan {
                req,
                shape: Shape::Command,
                spec,
                item: None,
            });
        }
        _ => {
            return Err(Refusal::new(
                full,
                StatusCode::BAD_REQUEST,
                "no such command or directory ()",
            ))
        }
    };
    if shape == Shape::Updated {
        let command = req.command.clone();
        body_words(&command, body, &mut req)?;
    }
    Ok(Plan {
        req,
        shape,
        spec,
        item: Some(item),
    })
}

fn row_object(attributes: &[(String, String)]) -> Value {
    Value::Object(
        attributes
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// The replies of one command: rows, the trap message, `!done =ret=`.
struct Outcome {
    rows: Vec<Value>,
    trap: Option<String>,
    ret: Option<String>,
}

fn outcome(replies: Vec<Reply>) -> Outcome {
    let mut out = Outcome {
        rows: Vec::new(),
        trap: None,
        ret: None,
    };
    for reply in replies {
        match reply.kind {
            ReplyKind::Re => out.rows.push(row_object(&reply.attributes)),
            ReplyKind::Trap => {
                out.trap
                    .get_or_insert_with(|| reply.get("message").unwrap_or("failure").to_owned());
            }
            ReplyKind::Done => out.ret = reply.get("ret").map(str::to_owned),
            ReplyKind::Empty | ReplyKind::Fatal => {}
        }
    }
    out
}

/// A trap as an HTTP answer: unknown commands of a known menu are 406 (as routers answer),
/// anything else 400, both with the trap text as `detail`.
fn trap_response(message: &str) -> Response<Body> {
    if message.starts_with("no such command") {
        error(StatusCode::NOT_ACCEPTABLE, Some(message))
    } else {
        error(StatusCode::BAD_REQUEST, Some(message))
    }
}

/// The item as `print` shows it, by the query that names it.
fn fetch(shared: &Shared, spec: &MenuSpec, query: String) -> Option<Value> {
    let req = Request::new(format!("{}/print", spec.path)).query(query);
    outcome(shared.run(&req)).rows.into_iter().next()
}

/// Answers a planned request and says how many items it printed (for the cost model).
fn respond(shared: &Shared, plan: &Plan) -> (Response<Body>, usize) {
    let item = plan.item.as_deref().unwrap_or("");
    // The id of a PATCHed item, looked up before a rename could hide it.
    let patched_id = (plan.shape == Shape::Updated).then(|| {
        fetch(shared, plan.spec, item_query(plan.spec, item))
            .and_then(|row| row.get(".id").and_then(Value::as_str).map(str::to_owned))
    });
    let result = outcome(shared.run(&plan.req));
    let printed = result.rows.len();
    if let Some(message) = &result.trap {
        let gone = message == "no such item";
        let response = match plan.shape {
            Shape::One | Shape::Updated | Shape::Deleted if gone => error(StatusCode::NOT_FOUND, None),
            _ => trap_response(message),
        };
        return (response, printed);
    }
    let response = match plan.shape {
        Shape::List { singleton: true } => json(
            StatusCode::OK,
            &result
                .rows
                .into_iter()
                .next()
                .unwrap_or(Value::Object(Map::new())),
        ),
        Shape::List { singleton: false } => json(StatusCode::OK, &Value::Array(result.rows)),
        Shape::One => match result.rows.into_iter().next() {
            Some(row) => json(StatusCode::OK, &row),
            None => error(StatusCode::NOT_FOUND, None),
        },
        Shape::Created => {
            let id = result.ret.unwrap_or_default();
            let row = fetch(shared, plan.spec, format!(".id={id}")).unwrap_or_else(|| {
                let mut map = Map::new();
                map.insert(".id".into(), Value::String(id));
                Value::Object(map)
            });
            json(StatusCode::CREATED, &row)
        }
        Shape::Updated => {
            let query = match patched_id.flatten() {
                Some(id) => format!(".id={id}"),
                None => item_query(plan.spec, item),
            };
            match fetch(shared, plan.spec, query) {
                Some(row) => json(StatusCode::OK, &row),
                None => error(StatusCode::NOT_FOUND, None),
            }
        }
        Shape::Deleted => no_content(),
        Shape::Command => {
            if !result.rows.is_empty() || plan.req.command.ends_with("/print") {
                json(StatusCode::OK, &Value::Array(result.rows))
            } else if let Some(ret) = result.ret {
                let mut map = Map::new();
                map.insert("ret".into(), Value::String(ret));
                json(StatusCode::OK, &Value::Object(map))
            } else {
                json(StatusCode::OK, &Value::Array(Vec::new()))
            }
        }
    };
    (response, printed)
}

/// True when the `Authorization` header carries the router's user and password.
fn authorized(shared: &Shared, header: Option<&HeaderValue>) -> bool {
    let Some(encoded) = header
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return false;
    };
    let config = &shared.config;
    text.split_once(':')
        .is_some_and(|(user, password)| user == config.user && password == config.password)
}

async fn handle(shared: &Arc<Shared>, conn: &Conn, req: HttpRequest<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let auth = req.headers().get(AUTHORIZATION).cloned();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, Some("request body too large")),
    };
    let Some(rest_path) = path
        .strip_prefix("/rest")
        .filter(|p| p.is_empty() || p.starts_with('/'))
    else {
        return error(StatusCode::NOT_FOUND, None);
    };
    let planned = plan(&method, rest_path, query.as_deref(), &body);
    let logged = match &planned {
        Ok(p) => p.req.clone(),
        Err(refusal) => Request::new(refusal.command.clone()),
    };
    shared.log_command(
        conn.id,
        &logged,
        Via::Rest {
            method: method.to_string(),
            path: path.clone(),
        },
    );
    let faults = shared.faults();
    if faults.refuse_logins || !authorized(shared, auth.as_ref()) {
        return unauthorized();
    }
    if !conn.logged_in.swap(true, Ordering::Relaxed) {
        shared.logins.fetch_add(1, Ordering::Relaxed);
        shared.rest_logins.fetch_add(1, Ordering::Relaxed);
    }
    if faults.drop_on.contains(&logged.command) {
        conn.kill.notify_one();
        return std::future::pending().await;
    }
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    if shared.faults().stall {
        // A router that stopped answering: nothing more on this connection.
        return std::future::pending().await;
    }
    if let Some((_, status)) = faults.http_errors.iter().find(|(c, _)| *c == logged.command) {
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, Some("injected failure"));
    }
    match planned {
        Ok(plan) if shared.costed() => match charged_items(&plan.req) {
            None => {
                let (response, printed) = respond(shared, &plan);
                tokio::time::sleep(shared.cost(printed)).await;
                response
            }
            Some(items) => {
                tokio::time::sleep(shared.cost(items)).await;
                respond(shared, &plan).0
            }
        },
        Ok(plan) => respond(shared, &plan).0,
        Err(refusal) => error(refusal.status, Some(&refusal.detail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("%2A1A", false).as_deref(), Some("*1A"));
        assert_eq!(percent_decode("a+b%20c", true).as_deref(), Some("a b c"));
        assert_eq!(percent_decode("a+b", false).as_deref(), Some("a+b"));
        assert_eq!(percent_decode("%zz", false), None);
        assert_eq!(percent_decode("%4", false), None);
        assert_eq!(percent_decode("%FF", false), None);
    }

    #[test]
    fn plans() {
        let empty = Bytes::new();
        let p = plan(
            &Method::GET,
            "/ppp/secret",
            Some("name=a%20b&.proplist=.id,name"),
            &empty,
        )
        .ok()
        .unwrap();
        assert_eq!(p.req.command, "/ppp/secret/print");
        assert_eq!(p.req.queries, vec!["name=a b".to_owned()]);
        assert_eq!(p.req.get(".proplist"), Some(".id,name"));
        assert_eq!(p.shape, Shape::List { singleton: false });
        let p = plan(&Method::GET, "/system/resource", None, &empty).ok().unwrap();
        assert_eq!(p.shape, Shape::List { singleton: true });
        let p = plan(&Method::DELETE, "/ppp/secret/%2A1", None, &empty)
            .ok()
            .unwrap();
        assert_eq!(p.req.command, "/ppp/secret/remove");
        assert_eq!(p.req.get(".id"), Some("*1"));
        let body = Bytes::from_static(br##"{".proplist":[".id","name"],".query":["name=a","name=b","#|"]}"##);
        let p = plan(&Method::POST, "/ppp/secret/print", None, &body)
            .ok()
            .unwrap();
        assert_eq!(p.req.command, "/ppp/secret/print");
        assert_eq!(p.req.queries.len(), 3);
        assert_eq!(p.req.get(".proplist"), Some(".id,name"));
        let body = Bytes::from_static(br#"{"name":"a","disabled":true,"limit-bytes-in":5}"#);
        let p = plan(&Method::PUT, "/ip/hotspot/user", None, &body).ok().unwrap();
        assert_eq!(p.req.get("disabled"), Some("true"));
        assert_eq!(p.req.get("limit-bytes-in"), Some("5"));
        for (method, path) in [
            (Method::GET, "/ip/frob"),
            (Method::GET, "/frob/x/y"),
            (Method::GET, "/"),
        ] {
            let r = plan(&method, path, None, &empty).err().unwrap();
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
            assert!(r.detail.starts_with("no such command"), "{path}: {}", r.detail);
        }
        let bad = Bytes::from_static(b"[1,2]");
        assert!(plan(&Method::PUT, "/ppp/secret", None, &bad).is_err());
        let bad = Bytes::from_static(br#"{"name":{"x":1}}"#);
        assert!(plan(&Method::PUT, "/ppp/secret", None, &bad).is_err());
    }
}
