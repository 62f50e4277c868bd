//! One logged-in API connection with many tagged commands in flight.
//!
//! (Over 800 lines with its tests: the reader task, the per-tag routing of
//! replies, `/cancel`, `listen` and the per-response byte budget all act on the
//! same in-flight table, and splitting them would expose that table.)

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use md5::Digest;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_rustls::TlsConnector;

use super::config::{ClientConfig, Credentials, Endpoint, Security};
use super::error::{ClientError, TrapKind};
use super::{parse_bool, tls, Response, Row};
use crate::proto::{encode_sentence, Decoder, ProtoError, Reply, ReplyKind, Request};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn proto_error(e: ProtoError) -> ClientError {
    match e {
        ProtoError::SentenceTooLong { max, .. } => ClientError::TooLarge {
            what: "a sentence from the router".into(),
            limit: max,
            setting: "max_sentence_bytes",
        },
        e => ClientError::Protocol {
            detail: e.to_string(),
        },
    }
}

/// What a command waiting for replies gets: a reply, or why it will get no more.
type Delivery = Result<Reply, ClientError>;

/// A command waiting for replies.
struct Pending {
    tx: mpsc::UnboundedSender<Delivery>,
    command: String,
    /// Bytes of its replies so far.
    bytes: usize,
    /// Whether [`ClientConfig::max_response_bytes`] applies (not to `listen`,
    /// whose replies are handed on one by one and never add up).
    bounded: bool,
}

/// State shared by a connection's handle, its reader, writer and keepalive tasks.
struct Shared {
    label: String,
    writer: mpsc::UnboundedSender<Vec<u8>>,
    /// Commands waiting for replies, by tag.
    pending: Mutex<HashMap<String, Pending>>,
    /// Why the connection closed (set once).
    closed: Mutex<Option<ClientError>>,
    tasks: Mutex<Vec<AbortHandle>>,
    next_tag: AtomicU64,
    last_reply: Mutex<Instant>,
    command_timeout: Duration,
    max_response_bytes: usize,
}

impl Shared {
    fn is_closed(&self) -> bool {
        lock(&self.closed).is_some()
    }

    fn closed_error(&self) -> ClientError {
        lock(&self.closed)
            .clone()
            .unwrap_or_else(|| ClientError::ConnectionLost {
                detail: "connection closed".into(),
            })
    }

    /// Closes the connection: records why, fails every waiting command, stops the tasks.
    fn close(&self, why: ClientError) {
        {
            let mut closed = lock(&self.closed);
            if closed.is_none() {
                tracing::debug!(router = %self.label, reason = %why, "routeros connection closed");
                *closed = Some(why);
            }
        }
        let waiting: Vec<_> = lock(&self.pending).drain().collect();
        drop(waiting);
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }

    fn add_task(&self, handle: AbortHandle) {
        let mut tasks = lock(&self.tasks);
        if self.is_closed() {
            handle.abort();
        } else {
            tasks.push(handle);
        }
    }

    fn new_tag(&self) -> String {
        self.next_tag.fetch_add(1, Ordering::Relaxed).to_string()
    }

    fn register(
        &self,
        tag: &str,
        command: &str,
        bounded: bool,
    ) -> Result<mpsc::UnboundedReceiver<Delivery>, ClientError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut pending = lock(&self.pending);
        if let Some(why) = lock(&self.closed).clone() {
            return Err(why);
        }
        pending.insert(
            tag.to_owned(),
            Pending {
                tx,
                command: command.to_owned(),
                bytes: 0,
                bounded,
            },
        );
        Ok(rx)
    }

    fn unregister(&self, tag: &str) {
        lock(&self.pending).remove(tag);
    }

    fn send(&self, request: &Request) -> Result<(), ClientError> {
        let mut bytes = Vec::new();
        request.encode(&mut bytes);
        self.writer.send(bytes).map_err(|_| self.closed_error())
    }

    /// Asks the router to stop the command with `tag`; its replies are ignored.
    fn send_cancel(&self, tag: &str) {
        if self.is_closed() {
            return;
        }
        let cancel = Request::new("/cancel").attr("tag", tag).tag(self.new_tag());
        if self.send(&cancel).is_err() {
            tracing::debug!(router = %self.label, tag, "could not send /cancel: connection closed");
        }
    }

    /// Hands a reply (of `size` bytes on the wire) to the command it belongs
    /// to. Returns false when the connection is finished (`!fatal`, or a reply
    /// over [`ClientConfig::max_response_bytes`]: the rest of it would still be
    /// on the wire, so the connection cannot be reused).
    fn dispatch(&self, reply: Reply, size: usize) -> bool {
        *lock(&self.last_reply) = Instant::now();
        if reply.kind == ReplyKind::Fatal {
            self.close(ClientError::Fatal {
                reason: reply.message.unwrap_or_default(),
            });
            return false;
        }
        let Some(tag) = reply.tag.clone() else {
            tracing::debug!(router = %self.label, kind = ?reply.kind, "untagged reply ignored");
            return true;
        };
        let mut pending = lock(&self.pending);
        let Some(waiting) = pending.get_mut(&tag) else {
            return true;
        };
        waiting.bytes = waiting.bytes.saturating_add(size);
        if waiting.bounded && waiting.bytes > self.max_response_bytes {
            let err = ClientError::TooLarge {
                what: format!("the reply to {}", waiting.command),
                limit: self.max_response_bytes,
                setting: "max_response_bytes",
            };
            if let Some(waiting) = pending.remove(&tag) {
                let _ = waiting.tx.send(Err(err.clone()));
            }
            drop(pending);
            tracing::warn!(router = %self.label, error = %err, "reply too large, closing the connection");
            self.close(ClientError::ConnectionLost {
                detail: format!("closed after {err}"),
            });
            return false;
        }
        if reply.kind == ReplyKind::Done {
            if let Some(waiting) = pending.remove(&tag) {
                // The command may have given up waiting; nothing to do then.
                let _ = waiting.tx.send(Ok(reply));
            }
        } else {
            let _ = waiting.tx.send(Ok(reply));
        }
        true
    }

    async fn run(&self, mut request: Request) -> Result<Response, ClientError> {
        let command = request.command.clone();
        let tag = self.new_tag();
        request.tag = Some(tag.clone());
        let mut rx = self.register(&tag, &command, true)?;
        let mut guard = PendingGuard {
            shared: self,
            tag: &tag,
            armed: true,
        };
        self.send(&request)?;
        let result = tokio::time::timeout(self.command_timeout, collect(&mut rx, &command, self)).await;
        guard.armed = false;
        match result {
            Ok(r) => r,
            Err(_) => {
                let err = ClientError::Timeout {
                    what: command,
                    after: self.command_timeout,
                };
                self.close(err.clone());
                Err(err)
            }
        }
    }
}

/// Collects the replies of one command until its `!done`.
async fn collect(
    rx: &mut mpsc::UnboundedReceiver<Delivery>,
    command: &str,
    shared: &Shared,
) -> Result<Response, ClientError> {
    let mut response = Response::default();
    let mut trap: Option<ClientError> = None;
    loop {
        let Some(delivery) = rx.recv().await else {
            return Err(shared.closed_error());
        };
        let reply = delivery?;
        match reply.kind {
            ReplyKind::Re => response.rows.push(reply.attributes.into_iter().collect()),
            ReplyKind::Empty => response.empty = true,
            ReplyKind::Trap => {
                if trap.is_none() {
                    trap = Some(trap_error(command, &reply));
                }
            }
            ReplyKind::Done => {
                return match trap {
                    Some(t) => Err(t),
                    None => {
                        response.done = reply.attributes.into_iter().collect();
                        Ok(response)
                    }
                };
            }
            ReplyKind::Fatal => {
                return Err(ClientError::Fatal {
                    reason: reply.message.unwrap_or_default(),
                })
            }
        }
    }
}

fn trap_error(command: &str, reply: &Reply) -> ClientError {
    ClientError::Trap {
        command: command.to_owned(),
        message: reply.get("message").unwrap_or("(no message)").to_owned(),
        category: reply.get("category").and_then(|c| c.parse().ok()),
    }
}

/// Cancels a command whose caller stopped waiting (its future was dropped).
struct PendingGuard<'a> {
    shared: &'a Shared,
    tag: &'a str,
    armed: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.unregister(self.tag);
            self.shared.send_cancel(self.tag);
        }
    }
}

struct Inner {
    shared: Arc<Shared>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.close(ClientError::ConnectionLost {
            detail: "closed by the client".into(),
        });
    }
}

/// One logged-in RouterOS API connection. Cheap to clone; the connection
/// closes when the last clone is dropped (or on [`Connection::close`]).
///
/// Commands are tagged, so any number may run at once from any task.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("router", &self.inner.shared.label)
            .field("closed", &self.is_closed())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl Connection {
    /// Connects, logs in and starts the reader (and keepalive) tasks.
    pub async fn connect(endpoint: &Endpoint, config: &ClientConfig) -> Result<Connection, ClientError> {
        config.validate()?;
        Self::open(endpoint, config, None).await
    }

    /// [`Connection::connect`] with a prepared TLS connector (the pool keeps one per router).
    pub(crate) async fn open(
        endpoint: &Endpoint,
        config: &ClientConfig,
        connector: Option<&TlsConnector>,
    ) -> Result<Connection, ClientError> {
        let addr = endpoint.addr();
        let tcp = match tokio::time::timeout(
            config.connect_timeout,
            TcpStream::connect((endpoint.host.as_str(), endpoint.port)),
        )
        .await
        {
            Err(_) => {
                return Err(ClientError::Timeout {
                    what: format!("connect to {addr}"),
                    after: config.connect_timeout,
                })
            }
            Ok(Err(e)) => {
                return Err(ClientError::Connect {
                    addr,
                    detail: e.to_string(),
                })
            }
            Ok(Ok(s)) => s,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(router = %endpoint.label, error = %e, "cannot set TCP_NODELAY");
        }
        match &endpoint.security {
            Security::Plain => Self::login_and_start(tcp, endpoint, config).await,
            Security::Tls(options) => {
                let owned;
                let connector = match connector {
                    Some(c) => c,
                    None => {
                        owned = tls::connector(options)?;
                        &owned
                    }
                };
                let name = tls::server_name(options, &endpoint.host)?;
                let stream =
                    match tokio::time::timeout(config.connect_timeout, connector.connect(name, tcp)).await {
                        Err(_) => {
                            return Err(ClientError::Timeout {
                                what: format!("TLS handshake with {addr}"),
                                after: config.connect_timeout,
                            })
                        }
                        Ok(Err(e)) => return Err(tls::classify_handshake_error(&addr, &e)),
                        Ok(Ok(s)) => s,
                    };
                Self::login_and_start(stream, endpoint, config).await
            }
        }
    }

    async fn login_and_start<S>(
        mut stream: S,
        endpoint: &Endpoint,
        config: &ClientConfig,
    ) -> Result<Connection, ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut decoder =
            Decoder::new(config.max_word_len).with_max_sentence_bytes(config.max_sentence_bytes);
        match tokio::time::timeout(
            config.login_timeout,
            login(&mut stream, &mut decoder, &endpoint.credentials),
        )
        .await
        {
            Err(_) => {
                return Err(ClientError::Timeout {
                    what: format!("login to {}", endpoint.addr()),
                    after: config.login_timeout,
                })
            }
            Ok(result) => result?,
        }
        tracing::debug!(router = %endpoint.label, addr = %endpoint.addr(), user = %endpoint.credentials.username(), "routeros login");
        Ok(Self::start(stream, decoder, endpoint.label.clone(), config))
    }

    fn start<S>(stream: S, decoder: Decoder, label: String, config: &ClientConfig) -> Connection
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            label,
            writer: tx,
            pending: Mutex::new(HashMap::new()),
            closed: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            next_tag: AtomicU64::new(1),
            last_reply: Mutex::new(Instant::now()),
            command_timeout: config.command_timeout,
            max_response_bytes: config.max_response_bytes,
        });
        let reader_task = tokio::spawn(reader(shared.clone(), read, decoder));
        shared.add_task(reader_task.abort_handle());
        let writer_task = tokio::spawn(writer(shared.clone(), write, rx));
        shared.add_task(writer_task.abort_handle());
        if let Some(interval) = config.keepalive {
            let keepalive_task = tokio::spawn(keepalive(shared.clone(), interval));
            shared.add_task(keepalive_task.abort_handle());
        }
        Connection {
            inner: Arc::new(Inner { shared }),
        }
    }

    /// Runs one command to its `!done`. A `!trap` is returned as
    /// [`ClientError::Trap`] (after its `!done`). Any `.tag` on the request is
    /// replaced by the connection's own.
    ///
    /// A command that exceeds the command timeout closes the connection. A
    /// caller that stops waiting (drops the future) cancels the command on the router.
    pub async fn run(&self, request: Request) -> Result<Response, ClientError> {
        self.inner.shared.run(request).await
    }

    /// Starts a `listen` command (or any command that streams `!re` until cancelled).
    pub async fn listen(&self, mut request: Request) -> Result<ListenStream, ClientError> {
        let shared = self.inner.shared.clone();
        let command = request.command.clone();
        let tag = shared.new_tag();
        request.tag = Some(tag.clone());
        let rx = shared.register(&tag, &command, false)?;
        let stream = ListenStream {
            _connection: self.clone(),
            shared,
            tag,
            command,
            rx,
            finished: false,
        };
        stream.shared.send(&request)?;
        Ok(stream)
    }

    /// `/cancel` without a tag: stops every command running on this connection
    /// (they end with an `interrupted` trap).
    pub async fn cancel_all(&self) -> Result<(), ClientError> {
        self.run(Request::new("/cancel")).await.map(|_| ())
    }

    /// True once the connection is closed (by either side, a timeout or `!fatal`).
    pub fn is_closed(&self) -> bool {
        self.inner.shared.is_closed()
    }

    /// Why the connection closed, if it did.
    pub fn close_reason(&self) -> Option<ClientError> {
        lock(&self.inner.shared.closed).clone()
    }

    /// Commands (and listens) waiting for replies.
    pub fn in_flight(&self) -> usize {
        lock(&self.inner.shared.pending).len()
    }

    /// Closes the connection now; waiting commands fail with [`ClientError::ConnectionLost`].
    pub fn close(&self) {
        self.inner.shared.close(ClientError::ConnectionLost {
            detail: "closed by the client".into(),
        });
    }

    /// The router's label.
    pub fn label(&self) -> &str {
        &self.inner.shared.label
    }
}

async fn write_sentence<S: AsyncWrite + Unpin>(stream: &mut S, words: &[String]) -> Result<(), ClientError> {
    let mut bytes = Vec::new();
    encode_sentence(words, &mut bytes);
    let result = async {
        stream.write_all(&bytes).await?;
        stream.flush().await
    }
    .await;
    // The login sentence holds the password: do not leave it in freed memory.
    bytes.fill(0);
    result.map_err(|e| ClientError::ConnectionLost {
        detail: format!("write failed: {e}"),
    })
}

async fn read_reply<S: AsyncRead + Unpin>(
    stream: &mut S,
    decoder: &mut Decoder,
) -> Result<Reply, ClientError> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(words) = decoder.next_sentence().map_err(proto_error)? {
            return Reply::parse(&words).map_err(proto_error);
        }
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| ClientError::ConnectionLost {
                detail: format!("read failed during login: {e}"),
            })?;
        if n == 0 {
            return Err(ClientError::ConnectionLost {
                detail: "the router closed the connection during login".into(),
            });
        }
        decoder.push(&buf[..n]);
    }
}

/// Reads replies of an untagged command up to `!done`: `Ok(done)` or the trap message.
async fn read_untagged<S: AsyncRead + Unpin>(
    stream: &mut S,
    decoder: &mut Decoder,
) -> Result<Result<Reply, String>, ClientError> {
    let mut trap = None;
    loop {
        let reply = read_reply(stream, decoder).await?;
        match reply.kind {
            ReplyKind::Trap => {
                if trap.is_none() {
                    trap = Some(reply.get("message").unwrap_or("(no message)").to_owned());
                }
            }
            ReplyKind::Done => {
                return Ok(match trap {
                    Some(message) => Err(message),
                    None => Ok(reply),
                })
            }
            ReplyKind::Fatal => {
                return Err(ClientError::Fatal {
                    reason: reply.message.unwrap_or_default(),
                })
            }
            ReplyKind::Re | ReplyKind::Empty => {}
        }
    }
}

/// Post-6.43 login (`/login =name= =password=`); answers a legacy challenge
/// (`!done =ret=<hex>`) with the MD5 response.
async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    decoder: &mut Decoder,
    credentials: &Credentials,
) -> Result<(), ClientError> {
    let user = credentials.username();
    let refused = |message: String| ClientError::LoginRefused {
        user: user.to_owned(),
        message,
    };
    write_sentence(
        stream,
        &[
            "/login".to_owned(),
            format!("=name={user}"),
            format!("=password={}", credentials.expose_password()),
        ],
    )
    .await?;
    let done = read_untagged(stream, decoder).await?.map_err(refused)?;
    let Some(challenge) = done.get("ret") else {
        return Ok(());
    };
    // RouterOS < 6.43: `=ret=` is a challenge to answer.
    let challenge = hex::decode(challenge).map_err(|_| ClientError::Protocol {
        detail: format!("login challenge is not hexadecimal: {challenge:?}"),
    })?;
    let mut md5 = md5::Md5::new();
    md5.update([0u8]);
    md5.update(credentials.expose_password().as_bytes());
    md5.update(&challenge);
    let response = format!("00{}", hex::encode(md5.finalize()));
    write_sentence(
        stream,
        &[
            "/login".to_owned(),
            format!("=name={user}"),
            format!("=response={response}"),
        ],
    )
    .await?;
    read_untagged(stream, decoder).await?.map_err(refused)?;
    Ok(())
}

async fn reader<R: AsyncRead + Unpin>(shared: Arc<Shared>, mut read: R, mut decoder: Decoder) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        loop {
            match decoder.next_sentence() {
                Ok(Some(words)) => match Reply::parse(&words) {
                    Ok(reply) => {
                        let size = words.iter().map(Vec::len).sum();
                        if !shared.dispatch(reply, size) {
                            return;
                        }
                    }
                    Err(e) => {
                        shared.close(proto_error(e));
                        return;
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    shared.close(proto_error(e));
                    return;
                }
            }
        }
        match read.read(&mut buf).await {
            Ok(0) => {
                shared.close(ClientError::ConnectionLost {
                    detail: "the router closed the connection".into(),
                });
                return;
            }
            Ok(n) => decoder.push(&buf[..n]),
            Err(e) => {
                shared.close(ClientError::ConnectionLost {
                    detail: format!("read failed: {e}"),
                });
                return;
            }
        }
    }
}

async fn writer<W: AsyncWrite + Unpin>(
    shared: Arc<Shared>,
    mut write: W,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    while let Some(bytes) = rx.recv().await {
        let result = async {
            write.write_all(&bytes).await?;
            // Send whatever else is queued before flushing (TLS records).
            while let Ok(more) = rx.try_recv() {
                write.write_all(&more).await?;
            }
            write.flush().await
        }
        .await;
        if let Err(e) = result {
            shared.close(ClientError::ConnectionLost {
                detail: format!("write failed: {e}"),
            });
            return;
        }
    }
}

async fn keepalive(shared: Arc<Shared>, interval: Duration) {
    loop {
        let idle = lock(&shared.last_reply).elapsed();
        if idle < interval {
            tokio::time::sleep(interval - idle).await;
            continue;
        }
        if shared.is_closed() {
            return;
        }
        let ping = Request::new("/system/identity/print").attr(".proplist", "name");
        match shared.run(ping).await {
            Ok(_) => {}
            Err(e) if e.breaks_connection() => {
                shared.close(ClientError::ConnectionLost {
                    detail: format!("keepalive failed: {e}"),
                });
                return;
            }
            // A trap still proves the router answers.
            Err(_) => *lock(&shared.last_reply) = Instant::now(),
        }
    }
}

/// What a `listen` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenEvent {
    /// An item was added or changed (its current attributes).
    Row(Row),
    /// An item was removed (`=.dead=yes` / `=.dead=true`): its `.id`.
    Dead(String),
}

/// The replies of a `listen` command as a [`Stream`].
///
/// The stream ends after [`ListenStream::cancel`], or yields an error when
/// the connection closes or the command traps. Dropping it cancels the
/// command on the router.
pub struct ListenStream {
    /// Keeps the connection open while the stream lives.
    _connection: Connection,
    shared: Arc<Shared>,
    tag: String,
    command: String,
    rx: mpsc::UnboundedReceiver<Delivery>,
    finished: bool,
}

impl std::fmt::Debug for ListenStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenStream")
            .field("command", &self.command)
            .field("tag", &self.tag)
            .field("finished", &self.finished)
            .finish()
    }
}

impl ListenStream {
    /// Sends `/cancel` for this command and waits (up to the command timeout)
    /// for the router to end it.
    pub async fn cancel(mut self) -> Result<(), ClientError> {
        if self.finished {
            return Ok(());
        }
        let cancel = Request::new("/cancel").attr("tag", self.tag.clone());
        let shared = self.shared.clone();
        let timeout = shared.command_timeout;
        shared.run(cancel).await?;
        let drain = async {
            while let Some(item) = self.next().await {
                if let Err(e) = item {
                    if e.trap_kind() != Some(TrapKind::Interrupted) {
                        return Err(e);
                    }
                }
            }
            Ok(())
        };
        match tokio::time::timeout(timeout, drain).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout {
                what: format!("/cancel of {}", self.command),
                after: timeout,
            }),
        }
    }
}

impl Stream for ListenStream {
    type Item = Result<ListenEvent, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.finished {
                return Poll::Ready(None);
            }
            let Some(delivery) = futures::ready!(self.rx.poll_recv(cx)) else {
                self.finished = true;
                return Poll::Ready(Some(Err(self.shared.closed_error())));
            };
            let reply = match delivery {
                Ok(reply) => reply,
                Err(e) => {
                    self.finished = true;
                    return Poll::Ready(Some(Err(e)));
                }
            };
            match reply.kind {
                ReplyKind::Re => {
                    let dead = reply.get(".dead").and_then(parse_bool).unwrap_or(false);
                    let event = if dead {
                        ListenEvent::Dead(reply.get(".id").unwrap_or_default().to_owned())
                    } else {
                        ListenEvent::Row(reply.attributes.into_iter().collect())
                    };
                    return Poll::Ready(Some(Ok(event)));
                }
                ReplyKind::Trap => {
                    let err = trap_error(&self.command, &reply);
                    if err.trap_kind() == Some(TrapKind::Interrupted) {
                        continue;
                    }
                    return Poll::Ready(Some(Err(err)));
                }
                ReplyKind::Empty => continue,
                ReplyKind::Done => {
                    self.finished = true;
                    return Poll::Ready(None);
                }
                ReplyKind::Fatal => {
                    self.finished = true;
                    return Poll::Ready(Some(Err(ClientError::Fatal {
                        reason: reply.message.unwrap_or_default(),
                    })));
                }
            }
        }
    }
}

impl Drop for ListenStream {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.unregister(&self.tag);
            self.shared.send_cancel(&self.tag);
        }
    }
}
