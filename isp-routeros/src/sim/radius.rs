//! RADIUS on the simulated router (feature `sim`), as a RouterOS hotspot with
//! `use-radius=yes` and `/radius incoming accept=yes` behaves:
//!
//! * [`SimHandle::hotspot_login_radius`]: a device logs in through the login
//!   page and the router asks the RADIUS server (PAP, with
//!   Message-Authenticator, `NAS-Identifier` = the router's identity,
//!   `Calling-Station-Id` = the MAC, `Framed-IP-Address`). An Access-Accept
//!   creates the session and its `Session-Timeout` ends it at that second of
//!   the router clock (removal reason `session-timeout`); an Access-Reject's
//!   `Reply-Message` is the error. With an accounting address the router
//!   sends Start, and Stop when the session ends, with `Acct-Session-Id` =
//!   the session's id as eight hex digits.
//! * [`SimRouter::serve_radius_incoming`]: `/radius incoming` on a UDP port
//!   (3799 on a real router): Disconnect-Request and CoA-Request (RFC 5176)
//!   signed with the router's secret (a wrong Request Authenticator or
//!   Message-Authenticator is dropped without an answer). Sessions are chosen
//!   by every given `User-Name`, `Acct-Session-Id`, `Framed-IP-Address` and
//!   `Calling-Station-Id`; a disconnect ends them (reason
//!   `radius-disconnect`) and answers Disconnect-ACK; a CoA with
//!   `Session-Timeout` sets a new one from now. No matching session:
//!   NAK with Error-Cause 503 (Session-Context-Not-Found); no selector: NAK
//!   402 (Missing-Attribute). Every request is kept ([`SimHandle::radius_incoming`]).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use tokio::net::UdpSocket;

use super::server::{self, lock, Shared};
use super::{SimHandle, SimRouter};

const USER_NAME: u8 = 1;
const USER_PASSWORD: u8 = 2;
const FRAMED_IP_ADDRESS: u8 = 8;
const REPLY_MESSAGE: u8 = 18;
const SESSION_TIMEOUT: u8 = 27;
const CALLING_STATION_ID: u8 = 31;
const NAS_IDENTIFIER: u8 = 32;
const ACCT_STATUS_TYPE: u8 = 40;
const ACCT_SESSION_ID: u8 = 44;
const ACCT_SESSION_TIME: u8 = 46;
const ACCT_TERMINATE_CAUSE: u8 = 49;
const MESSAGE_AUTHENTICATOR: u8 = 80;
const ERROR_CAUSE: u8 = 101;

/// The RADIUS server a simulated hotspot asks. `Debug` never shows the secret.
#[derive(Clone)]
pub struct RadiusClient {
    /// Authentication address.
    pub server: SocketAddr,
    /// Accounting address (`None`: no accounting).
    pub accounting: Option<SocketAddr>,
    /// Wait for an answer before sending again.
    pub timeout: Duration,
    /// Sends in all.
    pub attempts: u32,
    secret: String,
}

impl RadiusClient {
    /// A client of `server` (and `accounting`) with the shared `secret`;
    /// 3 attempts, 1 s apart.
    pub fn new(server: SocketAddr, accounting: Option<SocketAddr>, secret: impl Into<String>) -> Self {
        RadiusClient {
            server,
            accounting,
            timeout: Duration::from_secs(1),
            attempts: 3,
            secret: secret.into(),
        }
    }
}

impl std::fmt::Debug for RadiusClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RadiusClient")
            .field("server", &self.server)
            .field("accounting", &self.accounting)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// One Disconnect-Request or CoA-Request `/radius incoming` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRequest {
    /// 40 (Disconnect-Request) or 43 (CoA-Request).
    pub code: u8,
    /// `User-Name`, if given.
    pub user: Option<String>,
    /// `Acct-Session-Id`, if given.
    pub session_id: Option<String>,
    /// The answer's code (41/42 or 44/45).
    pub answer: u8,
    /// The NAK's Error-Cause.
    pub error_cause: Option<u32>,
    /// Sessions ended or changed.
    pub sessions: usize,
}

/// An accounted session, for its Stop.
#[derive(Debug, Clone)]
pub(crate) struct Accounted {
    user: String,
    session_id: String,
    address: Ipv4Addr,
    mac: String,
    identity: String,
    started: DateTime<Utc>,
    ended: Option<(DateTime<Utc>, String)>,
    client: Arc<RadiusClient>,
}

/// RADIUS state of a router: Session-Timeouts, accounted sessions, Stops to
/// send, and what `/radius incoming` answered.
#[derive(Debug, Default)]
pub(crate) struct RadiusState {
    pub(crate) timeouts: HashMap<u64, DateTime<Utc>>,
    accounted: HashMap<u64, Accounted>,
    pub(crate) stops: Vec<Accounted>,
    incoming: Vec<IncomingRequest>,
}

impl RadiusState {
    /// Hotspot session `id` ended: forget its timeout, queue its Stop.
    pub(crate) fn ended(&mut self, id: u64, reason: &str, now: DateTime<Utc>) {
        self.timeouts.remove(&id);
        if let Some(mut a) = self.accounted.remove(&id) {
            a.ended = Some((now, reason.to_owned()));
            self.stops.push(a);
        }
    }
}

fn acct_session_id(id: u64) -> String {
    format!("{id:08X}")
}

fn random16() -> [u8; 16] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = Md5::new();
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    h.update(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_be_bytes(),
    );
    h.update(std::process::id().to_be_bytes());
    h.finalize().into()
}

fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; 16] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..16].copy_from_slice(&Md5::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Md5::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(data);
    let inner = inner.finalize();
    let mut outer = Md5::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// The packet in a datagram if its lengths are sound.
fn frame(d: &[u8]) -> Option<&[u8]> {
    if d.len() < 20 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([d[2], d[3]]));
    if !(20..=4096).contains(&len) || len > d.len() {
        return None;
    }
    let p = &d[..len];
    let mut i = 20;
    while i < len {
        let alen = usize::from(*p.get(i + 1)?);
        if alen < 2 || i + alen > len {
            return None;
        }
        i += alen;
    }
    Some(p)
}

fn attrs(p: &[u8]) -> Vec<(usize, u8, &[u8])> {
    let mut out = Vec::new();
    let mut i = 20;
    while i + 2 <= p.len() {
        let alen = usize::from(p[i + 1]);
        if alen < 2 || i + alen > p.len() {
            break;
        }
        out.push((i, p[i], &p[i + 2..i + alen]));
        i += alen;
    }
    out
}

fn text(p: &[u8], typ: u8) -> Option<String> {
    attrs(p)
        .into_iter()
        .find(|(_, t, _)| *t == typ)
        .map(|(_, _, v)| String::from_utf8_lossy(v).into_owned())
}

fn int(p: &[u8], typ: u8) -> Option<u32> {
    attrs(p)
        .into_iter()
        .find(|(_, t, v)| *t == typ && v.len() == 4)
        .map(|(_, _, v)| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
}

/// Builds a packet; a zero Message-Authenticator is appended when `ma`.
fn build(code: u8, id: u8, auth: [u8; 16], attributes: &[(u8, Vec<u8>)], ma: bool) -> Vec<u8> {
    let mut p = vec![code, id, 0, 0];
    p.extend(auth);
    for (t, v) in attributes {
        let v = &v[..v.len().min(253)];
        p.push(*t);
        p.push(u8::try_from(v.len() + 2).unwrap_or(u8::MAX));
        p.extend(v);
    }
    if ma {
        p.extend([MESSAGE_AUTHENTICATOR, 18]);
        p.extend([0u8; 16]);
    }
    let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p
}

/// Fills the Message-Authenticator (if any) over the packet as it is.
fn fill_ma(p: &mut [u8], secret: &[u8]) {
    let Some(off) = attrs(p)
        .into_iter()
        .find(|(_, t, v)| *t == MESSAGE_AUTHENTICATOR && v.len() == 16)
        .map(|(o, _, _)| o)
    else {
        return;
    };
    p[off + 2..off + 18].fill(0);
    let mac = hmac_md5(secret, p);
    p[off + 2..off + 18].copy_from_slice(&mac);
}

/// MD5(packet with `auth` in the authenticator field, secret).
fn authenticator_over(p: &[u8], auth: &[u8], secret: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(&p[..4]);
    h.update(auth);
    h.update(&p[20..]);
    h.update(secret);
    h.finalize().into()
}

/// True when the Message-Authenticator is absent or right (with `auth` in the field).
fn ma_ok(p: &[u8], auth: &[u8], secret: &[u8]) -> bool {
    let Some((off, _, v)) = attrs(p).into_iter().find(|(_, t, _)| *t == MESSAGE_AUTHENTICATOR) else {
        return true;
    };
    if v.len() != 16 {
        return false;
    }
    let mut copy = p.to_vec();
    copy[4..20].copy_from_slice(auth);
    copy[off + 2..off + 18].fill(0);
    hmac_md5(secret, &copy) == p[off + 2..off + 18]
}

/// Sends `packet` until an answer with its identifier whose Response
/// Authenticator is right comes back.
async fn exchange(to: SocketAddr, packet: &[u8], client: &RadiusClient) -> Result<Vec<u8>, String> {
    let socket = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("RADIUS socket: {e}"))?;
    socket
        .connect(to)
        .await
        .map_err(|e| format!("RADIUS connect: {e}"))?;
    let mut buf = vec![0u8; 4096];
    for _ in 0..client.attempts.max(1) {
        let _ = socket.send(packet).await;
        let deadline = tokio::time::Instant::now() + client.timeout;
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            let Some(resp) = frame(&buf[..n]) else { continue };
            if resp[1] == packet[1]
                && resp[4..20] == authenticator_over(resp, &packet[4..20], client.secret.as_bytes())
            {
                return Ok(resp.to_vec());
            }
        }
    }
    Err(format!("RADIUS server {to} is not responding"))
}

fn hide_password(password: &[u8], auth: &[u8; 16], secret: &[u8]) -> Vec<u8> {
    let mut pw = password.to_vec();
    pw.resize((pw.len().div_ceil(16)).clamp(1, 8) * 16, 0);
    let mut out = Vec::with_capacity(pw.len());
    let mut prev = auth.to_vec();
    for block in pw.chunks(16) {
        let mut h = Md5::new();
        h.update(secret);
        h.update(&prev);
        let b: [u8; 16] = h.finalize().into();
        let c: Vec<u8> = block.iter().zip(b).map(|(x, y)| x ^ y).collect();
        out.extend(&c);
        prev = c;
    }
    out
}

async fn send_accounting(a: &Accounted, status: u32) {
    let Some(to) = a.client.accounting else { return };
    let mut list: Vec<(u8, Vec<u8>)> = vec![
        (ACCT_STATUS_TYPE, status.to_be_bytes().to_vec()),
        (USER_NAME, a.user.as_bytes().to_vec()),
        (ACCT_SESSION_ID, a.session_id.as_bytes().to_vec()),
        (FRAMED_IP_ADDRESS, a.address.octets().to_vec()),
        (CALLING_STATION_ID, a.mac.as_bytes().to_vec()),
        (NAS_IDENTIFIER, a.identity.as_bytes().to_vec()),
    ];
    if let Some((at, reason)) = &a.ended {
        let secs = u32::try_from((*at - a.started).num_seconds().max(0)).unwrap_or(u32::MAX);
        list.push((ACCT_SESSION_TIME, secs.to_be_bytes().to_vec()));
        // Acct-Terminate-Cause: Admin-Reset (6), Session-Timeout (5), User-Request (1).
        let cause: u32 = match reason.as_str() {
            "session-timeout" => 5,
            "radius-disconnect" | "api" => 6,
            _ => 1,
        };
        list.push((ACCT_TERMINATE_CAUSE, cause.to_be_bytes().to_vec()));
    }
    let id = random16()[0];
    let mut p = build(4, id, [0u8; 16], &list, false);
    let auth = authenticator_over(&p, &[0u8; 16], a.client.secret.as_bytes());
    p[4..20].copy_from_slice(&auth);
    if let Err(e) = exchange(to, &p, &a.client).await {
        tracing::debug!(error = %e, "simulated router: accounting unanswered");
    }
}

pub(crate) async fn send_stop(a: Accounted) {
    send_accounting(&a, 2).await;
}

impl SimHandle {
    /// A device logs in through the hotspot login page and the router asks
    /// `client`'s RADIUS server (see the [module](self) docs). Returns the
    /// session's `.id`, or the Access-Reject's `Reply-Message` (or why there
    /// was no answer).
    pub async fn hotspot_login_radius(
        &self,
        client: &RadiusClient,
        user: &str,
        password: &str,
        mac: &str,
        ip: &str,
    ) -> Result<String, String> {
        let address: Ipv4Addr = ip.parse().map_err(|_| format!("invalid ip {ip:?}"))?;
        let identity = self.state().settings.identity.clone();
        let auth = random16();
        let secret = client.secret.as_bytes();
        let list = vec![
            (USER_NAME, user.as_bytes().to_vec()),
            (USER_PASSWORD, hide_password(password.as_bytes(), &auth, secret)),
            (NAS_IDENTIFIER, identity.as_bytes().to_vec()),
            (CALLING_STATION_ID, mac.as_bytes().to_vec()),
            (FRAMED_IP_ADDRESS, address.octets().to_vec()),
        ];
        let mut req = build(1, auth[1], auth, &list, true);
        fill_ma(&mut req, secret);
        let resp = exchange(client.server, &req, client).await?;
        match resp[0] {
            2 => {}
            3 => return Err(text(&resp, REPLY_MESSAGE).unwrap_or_else(|| "RADIUS server rejected".into())),
            other => return Err(format!("unexpected RADIUS answer code {other}")),
        }
        let timeout = int(&resp, SESSION_TIMEOUT);
        let (id, now) = {
            let mut state = self.state();
            let id = state
                .hotspot_login(user, None, mac, ip, "http-pap")
                .map_err(|t| t.message)?;
            let now = state.now();
            if let Some(t) = timeout {
                state.set_session_timeout(id, now + chrono::Duration::seconds(i64::from(t)));
            }
            (id, now)
        };
        if client.accounting.is_some() {
            let mac = self
                .rows("/ip/hotspot/active")
                .into_iter()
                .find(|r| r.get(".id").map(String::as_str) == Some(format!("*{id:X}").as_str()))
                .and_then(|r| r.get("mac-address").cloned())
                .unwrap_or_else(|| mac.to_owned());
            let accounted = Accounted {
                user: user.to_owned(),
                session_id: acct_session_id(id),
                address,
                mac,
                identity,
                started: now,
                ended: None,
                client: Arc::new(client.clone()),
            };
            send_accounting(&accounted, 1).await;
            let mut state = self.state();
            let live = state.table_rows_contain("/ip/hotspot/active", id);
            if live {
                state.radius.accounted.insert(id, accounted);
            } else {
                // Ended while the Start was in flight.
                let mut a = accounted;
                a.ended = Some((state.now(), "logout".into()));
                state.radius.stops.push(a);
            }
        }
        Ok(format!("*{id:X}"))
    }

    /// When the RADIUS `Session-Timeout` of hotspot session `id` (`*1A`) ends it (router clock).
    pub fn session_deadline(&self, id: &str) -> Option<DateTime<Utc>> {
        let n = u64::from_str_radix(id.strip_prefix('*')?, 16).ok()?;
        self.state().radius.timeouts.get(&n).copied()
    }

    /// The Acct-Session-Id the router reports for hotspot session `id` (`*1A`).
    pub fn acct_session_id(&self, id: &str) -> Option<String> {
        let n = u64::from_str_radix(id.strip_prefix('*')?, 16).ok()?;
        Some(acct_session_id(n))
    }

    /// Every Disconnect-Request and CoA-Request `/radius incoming` answered, in order.
    pub fn radius_incoming(&self) -> Vec<IncomingRequest> {
        self.state().radius.incoming.clone()
    }
}

impl SimRouter {
    /// Serves `/radius incoming` (Disconnect-Request, CoA-Request) on UDP
    /// `listen` (`127.0.0.1:0` picks a port) with the shared `secret`.
    /// Returns the address; it stops with the router.
    pub async fn serve_radius_incoming(
        &mut self,
        listen: SocketAddr,
        secret: &str,
    ) -> std::io::Result<SocketAddr> {
        let socket = UdpSocket::bind(listen).await?;
        let addr = socket.local_addr()?;
        let shared = self.handle.shared.clone();
        let secret = secret.to_owned();
        self.rest_tasks
            .push(tokio::spawn(incoming_loop(shared, socket, secret)));
        Ok(addr)
    }
}

async fn incoming_loop(shared: Arc<Shared>, socket: UdpSocket, secret: String) {
    let mut shutdown = shared.shutdown.subscribe();
    let handle = SimHandle {
        shared: shared.clone(),
    };
    let mut buf = vec![0u8; 4097];
    loop {
        let (n, from) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(_) => continue,
            },
            _ = server::stopped(&mut shutdown) => return,
        };
        let Some(p) = frame(&buf[..n]) else { continue };
        if let Some(answer) = incoming(&handle, p, secret.as_bytes()) {
            let _ = socket.send_to(&answer, from).await;
        }
    }
}

fn incoming(handle: &SimHandle, p: &[u8], secret: &[u8]) -> Option<Vec<u8>> {
    let code = p[0];
    if code != 40 && code != 43 {
        return None;
    }
    if p[4..20] != authenticator_over(p, &[0u8; 16], secret) || !ma_ok(p, &[0u8; 16], secret) {
        return None;
    }
    let user = text(p, USER_NAME);
    let session_id = text(p, ACCT_SESSION_ID);
    let mac = text(p, CALLING_STATION_ID);
    let address = attrs(p)
        .into_iter()
        .find(|(_, t, v)| *t == FRAMED_IP_ADDRESS && v.len() == 4)
        .map(|(_, _, v)| Ipv4Addr::new(v[0], v[1], v[2], v[3]).to_string());
    let (ack, nak) = if code == 40 { (41u8, 42u8) } else { (44, 45) };
    let mut error_cause = None;
    let mut count = 0;
    if user.is_none() && session_id.is_none() && mac.is_none() && address.is_none() {
        error_cause = Some(402u32);
    } else {
        let matches = |r: &std::collections::BTreeMap<String, String>, name_field: &str, id: u64| {
            user.as_ref().is_none_or(|u| r.get(name_field) == Some(u))
                && session_id.as_ref().is_none_or(|s| *s == acct_session_id(id))
                && address.as_ref().is_none_or(|a| r.get("address") == Some(a))
                && mac.as_ref().is_none_or(|m| {
                    r.get("mac-address")
                        .or(r.get("caller-id"))
                        .is_some_and(|x| x.eq_ignore_ascii_case(m))
                })
        };
        let id_of = |r: &std::collections::BTreeMap<String, String>| {
            r.get(".id")
                .and_then(|i| i.strip_prefix('*'))
                .and_then(|h| u64::from_str_radix(h, 16).ok())
        };
        let hotspot: Vec<u64> = handle
            .rows("/ip/hotspot/active")
            .iter()
            .filter_map(|r| id_of(r).filter(|id| matches(r, "user", *id)))
            .collect();
        let ppp: Vec<u64> = handle
            .rows("/ppp/active")
            .iter()
            .filter_map(|r| id_of(r).filter(|id| matches(r, "name", *id)))
            .collect();
        count = hotspot.len() + ppp.len();
        if count == 0 {
            error_cause = Some(503);
        } else if code == 40 {
            let mut state = lock(&handle.shared.state);
            for id in hotspot {
                state.end_hotspot_session(id, "radius-disconnect");
            }
            for id in ppp {
                state.ppp_logout(&format!("*{id:X}"));
            }
        } else if let Some(t) = int(p, SESSION_TIMEOUT) {
            let mut state = lock(&handle.shared.state);
            let deadline = state.now() + chrono::Duration::seconds(i64::from(t));
            for id in hotspot {
                state.set_session_timeout(id, deadline);
            }
        }
    }
    let answer = if error_cause.is_some() { nak } else { ack };
    let list: Vec<(u8, Vec<u8>)> = error_cause
        .map(|c| vec![(ERROR_CAUSE, c.to_be_bytes().to_vec())])
        .unwrap_or_default();
    let mut resp = build(answer, p[1], [0u8; 16], &list, false);
    let auth = authenticator_over(&resp, &p[4..20], secret);
    resp[4..20].copy_from_slice(&auth);
    lock(&handle.shared.state).radius.incoming.push(IncomingRequest {
        code,
        user,
        session_id,
        answer,
        error_cause,
        sessions: count,
    });
    Some(resp)
}
