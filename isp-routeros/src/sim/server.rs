//! The network side of a simulated router: listener, connections, login, tags, cancel, listen
//! and fault injection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, watch, Notify};
use tokio::task::AbortHandle;
use tokio_rustls::TlsAcceptor;

use super::router::{resolve, RouterState, Trap};
use super::{LoggedCommand, SimConfig, Via};
use crate::proto::{encode_sentence, Decoder, Reply, ReplyKind, Request};

/// Locks, ignoring poisoning (a panicking test thread must not wedge the simulator).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Faults injected through the control handle.
#[derive(Debug, Default, Clone)]
pub(crate) struct Faults {
    pub(crate) latency: Duration,
    pub(crate) refuse_logins: bool,
    pub(crate) stall: bool,
    pub(crate) traps: Vec<(String, String)>,
    pub(crate) drop_on: Vec<String>,
    pub(crate) outage_until: Option<Instant>,
    /// REST only: answer these commands with this HTTP status.
    pub(crate) http_errors: Vec<(String, u16)>,
}

/// State shared by the listener, its connections and the control handle.
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    pub(crate) state: Mutex<RouterState>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) log: Mutex<Vec<LoggedCommand>>,
    pub(crate) logins: AtomicU64,
    pub(crate) rest_logins: AtomicU64,
    pub(crate) connections: AtomicUsize,
    pub(crate) next_conn: AtomicU64,
    pub(crate) drop_tx: watch::Sender<u64>,
    pub(crate) outage_wake: Notify,
    pub(crate) shutdown: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn new(config: SimConfig, state: RouterState) -> Self {
        let faults = Faults {
            latency: config.latency,
            ..Faults::default()
        };
        Self {
            config,
            state: Mutex::new(state),
            faults: Mutex::new(faults),
            log: Mutex::new(Vec::new()),
            logins: AtomicU64::new(0),
            rest_logins: AtomicU64::new(0),
            connections: AtomicUsize::new(0),
            next_conn: AtomicU64::new(1),
            drop_tx: watch::channel(0).0,
            outage_wake: Notify::new(),
            shutdown: watch::channel(false).0,
        }
    }

    pub(crate) fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    fn outage_until(&self) -> Option<Instant> {
        lock(&self.faults).outage_until.filter(|u| *u > Instant::now())
    }

    /// Runs a one-shot command (print/add/...) on the router state and returns its replies,
    /// or the trap injected for it.
    pub(crate) fn run(&self, req: &Request) -> Vec<Reply> {
        let injected = lock(&self.faults)
            .traps
            .iter()
            .find(|(c, _)| *c == req.command)
            .map(|(_, m)| m.clone());
        if let Some(message) = injected {
            return vec![Reply::trap(message, None), Reply::done()];
        }
        match lock(&self.state).execute(req) {
            Ok(replies) => replies,
            Err(trap) => vec![trap.reply(), Reply::done()],
        }
    }

    /// True when the cost model charges anything.
    pub(crate) fn costed(&self) -> bool {
        !self.config.cost_per_command.is_zero() || !self.config.cost_per_item.is_zero()
    }

    /// What the router's work on a command with `items` items takes.
    pub(crate) fn cost(&self, items: usize) -> Duration {
        let per_item = u32::try_from(items).unwrap_or(u32::MAX);
        self.config
            .cost_per_command
            .saturating_add(self.config.cost_per_item.saturating_mul(per_item))
    }

    /// [`Shared::run`] taking the router's time for it (see the cost model in the module doc
    /// of `sim`): a `print` is evaluated first and answered after the cost of the items it
    /// prints; any other command waits the cost of the items it names, then runs.
    pub(crate) async fn run_charged(&self, req: &Request) -> Vec<Reply> {
        if !self.costed() {
            return self.run(req);
        }
        match charged_items(req) {
            None => {
                let replies = self.run(req);
                let printed = replies.iter().filter(|r| r.kind == ReplyKind::Re).count();
                tokio::time::sleep(self.cost(printed)).await;
                replies
            }
            Some(items) => {
                tokio::time::sleep(self.cost(items)).await;
                self.run(req)
            }
        }
    }

    pub(crate) fn log_command(&self, connection: u64, req: &Request, via: Via) {
        let attributes = req
            .attributes
            .iter()
            .map(|(k, v)| {
                let secret = matches!(k.as_str(), "password" | "response");
                (
                    k.clone(),
                    if secret {
                        "<redacted>".to_owned()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect();
        lock(&self.log).push(LoggedCommand {
            at: SystemTime::now(),
            instant: Instant::now(),
            connection,
            command: req.command.clone(),
            attributes,
            queries: req.queries.clone(),
            tag: req.tag.clone(),
            via,
        });
    }
}

/// The items a command names, known before it runs; `None` for a `print`/`getall`, whose
/// items are the ones it prints.
pub(crate) fn charged_items(req: &Request) -> Option<usize> {
    let cmd = req.command.rsplit('/').next().unwrap_or("");
    match cmd {
        "print" | "getall" => None,
        "add" | "login" => Some(1),
        "set" | "unset" | "remove" | "disable" | "enable" => Some(
            req.get(".id")
                .or_else(|| req.get("numbers"))
                .map_or(1, |raw| raw.split(',').filter(|p| !p.trim().is_empty()).count()),
        ),
        _ => Some(0),
    }
}

/// Resolves once the router is shutting down.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Binds, retrying for a moment when the port is still held (re-binding after an outage).
async fn bind(addr: SocketAddr, shared: &Shared) -> Option<TcpListener> {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return Some(l),
            Err(e) => {
                tracing::debug!(%addr, error = %e, "simulator re-bind failed, retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = stopped(&mut shutdown) => return None,
                }
            }
        }
    }
}

/// Accepts API connections until shutdown; closes the port for the length of an outage.
pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, addr: SocketAddr) {
    let acceptor = shared.config.tls.clone().map(TlsAcceptor::from);
    accept_with(shared, listener, addr, move |shared, sock, peer| {
        connection(shared, sock, peer, acceptor.clone())
    })
    .await;
}

/// Accepts connections until shutdown, serving each with `serve` on its own task; closes the
/// port for the length of an outage.
pub(crate) async fn accept_with<F, Fut>(
    shared: Arc<Shared>,
    listener: TcpListener,
    addr: SocketAddr,
    serve: F,
) where
    F: Fn(Arc<Shared>, TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut shutdown = shared.shutdown.subscribe();
    let mut listener = Some(listener);
    loop {
        let Some(l) = listener.as_ref() else { return };
        let mut outage = false;
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = shared.outage_wake.notified() => outage = shared.outage_until().is_some(),
            res = l.accept() => match res {
                Ok((sock, _)) if shared.outage_until().is_some() => drop(sock),
                Ok((sock, peer)) => {
                    tokio::spawn(serve(shared.clone(), sock, peer));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "simulator accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
        if outage {
            drop(listener.take()); // the port refuses connections
            while let Some(until) = shared.outage_until() {
                tokio::select! {
                    _ = tokio::time::sleep_until(until.into()) => {}
                    _ = shared.outage_wake.notified() => {}
                    _ = stopped(&mut shutdown) => return,
                }
            }
            listener = bind(addr, &shared).await;
        }
    }
}

async fn connection(shared: Arc<Shared>, sock: TcpStream, peer: SocketAddr, acceptor: Option<TlsAcceptor>) {
    let _ = sock.set_nodelay(true);
    match acceptor {
        None => serve(shared, sock).await,
        Some(acceptor) => match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(sock)).await {
            Ok(Ok(tls)) => serve(shared, tls).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "simulator TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "simulator TLS handshake timed out"),
        },
    }
}

enum Out {
    Data(Vec<u8>),
    Close,
}

/// Commands running on one connection (tagged commands delayed by latency, listens), by key.
#[derive(Default)]
struct Running {
    next: u64,
    tasks: HashMap<u64, (Option<String>, AbortHandle)>,
}

#[derive(Clone)]
struct Conn {
    shared: Arc<Shared>,
    id: u64,
    tx: mpsc::UnboundedSender<Out>,
    running: Arc<Mutex<Running>>,
    /// Held while a command executes under the cost model: one at a time per connection.
    exec: Arc<tokio::sync::Mutex<()>>,
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    /// Flush what was queued, then close.
    Close,
    /// Close at once, sending nothing more (a connection lost mid-command).
    Drop,
}

impl Conn {
    fn send(&self, reply: Reply, tag: &Option<String>) {
        let reply = if reply.kind == ReplyKind::Fatal {
            reply
        } else {
            reply.with_tag(tag.clone())
        };
        let mut out = Vec::new();
        encode_sentence(&reply.to_words(self.shared.config.tag_first), &mut out);
        let _ = self.tx.send(Out::Data(out));
    }

    fn fatal(&self, message: &str) -> Flow {
        self.send(Reply::fatal(message), &None);
        let _ = self.tx.send(Out::Close);
        Flow::Close
    }

    fn trap_done(&self, trap: &Trap, tag: &Option<String>) {
        self.send(trap.reply(), tag);
        self.send(Reply::done(), tag);
    }

    /// Runs a one-shot command (print/add/...) and returns its replies.
    fn run(&self, req: &Request) -> Vec<Reply> {
        self.shared.run(req)
    }

    async fn handle(
        &mut self,
        words: Vec<Vec<u8>>,
        logged_in: &mut bool,
        challenge: &mut Option<[u8; 16]>,
    ) -> Flow {
        let req = match Request::parse(&words) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "simulator received a malformed request");
                return self.fatal(&format!("malformed request: {e}"));
            }
        };
        self.shared.log_command(self.id, &req, Via::Api);
        if lock(&self.shared.faults).drop_on.contains(&req.command) {
            return Flow::Drop;
        }
        match req.command.as_str() {
            "/quit" => return self.fatal("session terminated on request"),
            "/login" => return self.login(&req, logged_in, challenge).await,
            _ if !*logged_in => return self.fatal("not logged in"),
            "/cancel" => {
                self.cancel(&req);
                return Flow::Continue;
            }
            _ => {}
        }
        let latency = self.shared.faults().latency;
        let cmd = req.command.rsplit('/').next().unwrap_or("");
        let streaming = cmd == "listen"
            || (matches!(cmd, "print" | "getall")
                && (req.get("follow").is_some() || req.get("follow-only").is_some()));
        if streaming {
            self.start_listen(req, latency);
        } else if req.tag.is_some() && !latency.is_zero() {
            self.start_delayed(req, latency);
        } else {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let tag = req.tag.clone();
            let replies = if self.shared.costed() {
                let _turn = self.exec.lock().await;
                self.shared.run_charged(&req).await
            } else {
                self.run(&req)
            };
            for reply in replies {
                self.send(reply, &tag);
            }
        }
        Flow::Continue
    }

    async fn login(&mut self, req: &Request, logged_in: &mut bool, challenge: &mut Option<[u8; 16]>) -> Flow {
        let faults = self.shared.faults();
        if !faults.latency.is_zero() {
            tokio::time::sleep(faults.latency).await;
        }
        if self.shared.costed() {
            let _turn = self.exec.lock().await;
            tokio::time::sleep(self.shared.cost(0)).await;
        }
        let tag = req.tag.clone();
        let config = &self.shared.config;
        let name = req.get("name");
        let ok = match (name, req.get("password"), req.get("response")) {
            (None, None, None) if config.legacy_login => {
                // Pre-6.43: hand out a challenge.
                let seed = format!("{:?}{}", SystemTime::now(), self.id);
                let c: [u8; 16] = Md5::digest(seed.as_bytes()).into();
                *challenge = Some(c);
                self.send(Reply::done().attr("ret", hex::encode(c)), &tag);
                return Flow::Continue;
            }
            (Some(n), Some(p), _) => n == config.user && p == config.password,
            (Some(n), None, Some(resp)) if config.legacy_login => match challenge.take() {
                Some(c) => {
                    let mut h = Md5::new();
                    h.update([0u8]);
                    h.update(config.password.as_bytes());
                    h.update(c);
                    n == config.user && resp.eq_ignore_ascii_case(&format!("00{}", hex::encode(h.finalize())))
                }
                None => false,
            },
            _ => false,
        };
        if ok && !faults.refuse_logins {
            *logged_in = true;
            self.shared.logins.fetch_add(1, Ordering::Relaxed);
            self.send(Reply::done(), &tag);
        } else {
            self.trap_done(&Trap::new("invalid user name or password (6)"), &tag);
        }
        Flow::Continue
    }

    /// Registers a task; `make` receives its key. The task cannot check the registry before
    /// the registration is complete, as both happen under the registry lock.
    fn register<F>(&self, tag: Option<String>, make: impl FnOnce(u64) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut running = lock(&self.running);
        running.next += 1;
        let key = running.next;
        let handle = tokio::spawn(make(key));
        running.tasks.insert(key, (tag, handle.abort_handle()));
    }

    fn start_delayed(&self, req: Request, latency: Duration) {
        let conn = self.clone();
        self.register(req.tag.clone(), move |key| async move {
            tokio::time::sleep(latency).await;
            if conn.shared.costed() {
                // Its turn on the connection; cancellable until then.
                let _turn = conn.exec.lock().await;
                if lock(&conn.running).tasks.remove(&key).is_none() {
                    return;
                }
                let tag = req.tag.clone();
                for reply in conn.shared.run_charged(&req).await {
                    conn.send(reply, &tag);
                }
                return;
            }
            let mut running = lock(&conn.running);
            if running.tasks.remove(&key).is_none() {
                return; // cancelled meanwhile
            }
            let tag = req.tag.clone();
            for reply in conn.run(&req) {
                conn.send(reply, &tag);
            }
            drop(running);
        });
    }

    fn start_listen(&self, req: Request, latency: Duration) {
        let tag = req.tag.clone();
        let injected = lock(&self.shared.faults)
            .traps
            .iter()
            .find(|(c, _)| *c == req.command)
            .map(|(_, m)| m.clone());
        if let Some(message) = injected {
            self.trap_done(&Trap::new(message), &tag);
            return;
        }
        let (spec, filter) = match resolve(&req.command)
            .and_then(|(spec, _)| RouterState::print_filter(&req).map(|f| (spec, f)))
        {
            Ok(v) => v,
            Err(trap) => {
                self.trap_done(&trap, &tag);
                return;
            }
        };
        let (queries, proplist) = filter;
        let dead_value = self.shared.config.dead_value.clone();
        // Subscribe (and take the current items for `follow`) before anything can change.
        let (mut rx, initial) = {
            let mut state = lock(&self.shared.state);
            state.tick();
            let initial: Vec<Vec<(String, String)>> = if req.get("follow").is_some() {
                state
                    .tables
                    .get(spec.path)
                    .map(|t| t.rows.values().map(|r| state.render(spec, r)).collect())
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            (state.subscribe(), initial)
        };
        let conn = self.clone();
        self.register(tag.clone(), move |key| async move {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let emit = |row: Vec<(String, String)>| {
                let running = lock(&conn.running);
                if !running.tasks.contains_key(&key) {
                    return false;
                }
                conn.send(Reply::re(row), &tag);
                true
            };
            for row in initial {
                if RouterState::row_matches(&row, &queries) && !emit(RouterState::project(row, &proplist)) {
                    return;
                }
            }
            loop {
                match rx.recv().await {
                    Ok(change) if change.menu == spec.path => {
                        let row = match change.row {
                            Some(row) if RouterState::row_matches(&row, &queries) => {
                                RouterState::project(row, &proplist)
                            }
                            Some(_) => continue,
                            None => vec![
                                (".id".to_owned(), format!("*{:X}", change.id)),
                                (".dead".to_owned(), dead_value.clone()),
                            ],
                        };
                        if !emit(row) {
                            return;
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// `/cancel [=tag=X]`: `!trap =category=2 =message=interrupted` for each stopped command,
    /// `!done` for the cancel itself, then `!done` for each stopped command.
    fn cancel(&self, req: &Request) {
        let mut running = lock(&self.running);
        let target = req.get("tag");
        let keys: Vec<u64> = running
            .tasks
            .iter()
            .filter(|(_, (tag, _))| target.is_none_or(|t| tag.as_deref() == Some(t)))
            .map(|(k, _)| *k)
            .collect();
        let mut stopped = Vec::new();
        for key in keys {
            if let Some((tag, handle)) = running.tasks.remove(&key) {
                handle.abort();
                self.send(Reply::trap("interrupted", Some(2)), &tag);
                stopped.push(tag);
            }
        }
        self.send(Reply::done(), &req.tag);
        for tag in stopped {
            self.send(Reply::done(), &tag);
        }
        drop(running);
    }

    fn abort_all(&self) {
        let mut running = lock(&self.running);
        for (_, (_, handle)) in running.tasks.drain() {
            handle.abort();
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::UnboundedReceiver<Out>,
    shared: Arc<Shared>,
) {
    let mut batch: Vec<u8> = Vec::new();
    while let Some(first) = rx.recv().await {
        // Everything already queued goes out in one write.
        let mut next = Some(first);
        let mut close = false;
        while let Some(out) = next.take() {
            match out {
                Out::Data(bytes) => {
                    if lock(&shared.faults).stall {
                        // Half a sentence, then nothing more: the client sees a stalled router.
                        batch.extend_from_slice(&bytes[..(bytes.len() / 2).max(1)]);
                        let _ = wr.write_all(&batch).await;
                        let _ = wr.flush().await;
                        std::future::pending::<()>().await;
                    }
                    batch.extend_from_slice(&bytes);
                }
                Out::Close => {
                    close = true;
                    break;
                }
            }
            if batch.len() < 64 * 1024 {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() && (wr.write_all(&batch).await.is_err() || wr.flush().await.is_err()) {
            return;
        }
        batch.clear();
        if close {
            let _ = wr.shutdown().await;
            return;
        }
    }
}

pub(crate) struct ConnCount(pub(crate) Arc<Shared>);

impl Drop for ConnCount {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve<S>(shared: Arc<Shared>, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    shared.connections.fetch_add(1, Ordering::Relaxed);
    let _count = ConnCount(shared.clone());
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (mut rd, wr) = tokio::io::split(stream);
    let (tx, rx) = mpsc::unbounded_channel();
    let mut writer = tokio::spawn(write_loop(wr, rx, shared.clone()));
    let mut conn = Conn {
        shared: shared.clone(),
        id,
        tx,
        running: Arc::new(Mutex::new(Running::default())),
        exec: Arc::new(tokio::sync::Mutex::new(())),
    };
    let mut drop_rx = shared.drop_tx.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let mut decoder = Decoder::new(shared.config.max_word_len);
    let mut buf = vec![0u8; 16 * 1024];
    let mut logged_in = false;
    let mut challenge = None;
    'conn: loop {
        let n = tokio::select! {
            _ = drop_rx.changed() => break 'conn,
            _ = stopped(&mut shutdown) => break 'conn,
            n = rd.read(&mut buf) => match n {
                Ok(0) | Err(_) => break 'conn,
                Ok(n) => n,
            },
        };
        decoder.push(&buf[..n]);
        loop {
            match decoder.next_sentence() {
                Ok(Some(words)) => {
                    let flow = tokio::select! {
                        f = conn.handle(words, &mut logged_in, &mut challenge) => f,
                        _ = drop_rx.changed() => break 'conn,
                        _ = stopped(&mut shutdown) => break 'conn,
                    };
                    if flow == Flow::Drop {
                        break 'conn;
                    }
                    if flow == Flow::Close {
                        // Let the writer flush the `!fatal`, then close.
                        conn.abort_all();
                        let _ = tokio::time::timeout(Duration::from_secs(2), &mut writer).await;
                        writer.abort();
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "simulator closes a connection on a protocol error");
                    break 'conn;
                }
            }
        }
    }
    conn.abort_all();
    writer.abort();
}
