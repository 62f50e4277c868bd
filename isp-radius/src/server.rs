//! The authentication (UDP 1812) and accounting (UDP 1813) servers.
//!
//! Every datagram is framed and checked before anything else is read: wrong
//! lengths, unknown NASes, a missing or wrong Message-Authenticator (required
//! on Access-Requests) and a wrong accounting Request Authenticator are
//! dropped without an answer and counted. A retransmission (same source,
//! identifier and authenticator) within the duplicate window gets the cached
//! answer instead of a second decision, so a voucher is activated once.
//!
//! Accounting is recorded in a [`RadiusSessionRepo`] before it is answered: a
//! record the repositories could not take is left unanswered, so the router
//! sends it again. A housekeeping task closes sessions the routers stopped
//! reporting and deletes closed ones past their retention.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use isp_core::domain::{RadiusSession, RadiusSessionKind};
use isp_core::ports::RadiusSessionRepo;
use radius::core::avp::AVP;
use radius::core::code::Code;
use radius::core::packet::Packet;
use radius::core::{rfc2865, rfc2866, rfc2869};
use tokio::net::UdpSocket;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::auth::{interim_secs, Authorizer, Credentials, Decision};
use crate::dict::{acct_status, attr, code, mikrotik};
use crate::nas::{Nas, NasTable};
use crate::wire::{self, MessageAuth};

/// Where the servers listen and how they answer.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Authentication address (`0.0.0.0:1812`).
    pub auth_listen: SocketAddr,
    /// Accounting address (`0.0.0.0:1813`).
    pub acct_listen: SocketAddr,
    /// `Acct-Interim-Interval` sent in every Access-Accept.
    pub interim_interval: Duration,
    /// How long an answer is kept for retransmissions.
    pub duplicate_window: Duration,
    /// Requests decided at once (each may wait on the database).
    pub max_in_flight: usize,
    /// How long closed sessions are kept for history.
    pub session_retention: Duration,
}

impl ServerConfig {
    /// The standard ports on `ip` with the default interval (5 min) and window (30 s).
    pub fn on(ip: std::net::IpAddr) -> Self {
        ServerConfig {
            auth_listen: SocketAddr::new(ip, 1812),
            acct_listen: SocketAddr::new(ip, 1813),
            interim_interval: Duration::from_secs(300),
            duplicate_window: Duration::from_secs(30),
            max_in_flight: 256,
            session_retention: DEFAULT_SESSION_RETENTION,
        }
    }

    /// A live session with no record for this long is closed: the router
    /// sends one every `interim_interval`, so three missed ones mean it no
    /// longer holds it (or restarted without Accounting-On).
    pub fn stale_after(&self) -> Duration {
        self.interim_interval.saturating_mul(3)
    }
}

/// Default retention of closed sessions: 30 days.
pub const DEFAULT_SESSION_RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// What the servers did, counted since start.
#[derive(Debug, Default)]
struct Counters {
    accepts: AtomicU64,
    rejects: AtomicU64,
    accounting: AtomicU64,
    malformed: AtomicU64,
    unknown_nas: AtomicU64,
    bad_authenticator: AtomicU64,
    missing_message_authenticator: AtomicU64,
    duplicates: AtomicU64,
    unsupported: AtomicU64,
    errors: AtomicU64,
}

/// A snapshot of the servers' counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Access-Accepts sent.
    pub accepts: u64,
    /// Access-Rejects sent.
    pub rejects: u64,
    /// Accounting requests recorded.
    pub accounting: u64,
    /// Datagrams dropped for bad framing, lengths or attributes.
    pub malformed: u64,
    /// Datagrams from an address (or NAS-Identifier) that is no configured NAS.
    pub unknown_nas: u64,
    /// Requests dropped for a wrong Message-Authenticator or Request Authenticator.
    pub bad_authenticator: u64,
    /// Access-Requests dropped for lacking a Message-Authenticator.
    pub missing_message_authenticator: u64,
    /// Retransmissions answered from the cache (or dropped while the first was being decided).
    pub duplicates: u64,
    /// Packets of a code the port does not serve.
    pub unsupported: u64,
    /// Requests left unanswered because the repositories failed.
    pub errors: u64,
}

impl ServerStats {
    /// Every datagram dropped without an answer for what it was.
    pub fn dropped(&self) -> u64 {
        self.malformed
            + self.unknown_nas
            + self.bad_authenticator
            + self.missing_message_authenticator
            + self.unsupported
    }
}

impl Counters {
    fn snapshot(&self) -> ServerStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServerStats {
            accepts: g(&self.accepts),
            rejects: g(&self.rejects),
            accounting: g(&self.accounting),
            malformed: g(&self.malformed),
            unknown_nas: g(&self.unknown_nas),
            bad_authenticator: g(&self.bad_authenticator),
            missing_message_authenticator: g(&self.missing_message_authenticator),
            duplicates: g(&self.duplicates),
            unsupported: g(&self.unsupported),
            errors: g(&self.errors),
        }
    }

    fn drop_as(&self, counter: &AtomicU64, port: &'static str, reason: &'static str, from: SocketAddr) {
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("isp_radius_dropped_total", "port" => port, "reason" => reason).increment(1);
        tracing::debug!(%from, port, reason, "RADIUS datagram dropped");
    }
}

type DupKey = (SocketAddr, u8, [u8; 16]);

/// When a request was first seen, and its answer once there is one.
type DupEntry = (Instant, Option<Vec<u8>>);

/// Answers kept for retransmissions; `None` while the first copy is being decided.
#[derive(Debug, Default)]
struct DupCache {
    entries: Mutex<HashMap<DupKey, DupEntry>>,
}

enum Seen {
    New,
    Pending,
    Answered(Vec<u8>),
}

impl DupCache {
    fn check(&self, key: DupKey, window: Duration) -> Seen {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if e.len() > 1024 {
            e.retain(|_, (at, _)| now.duration_since(*at) < window);
        }
        match e.get(&key) {
            Some((at, answer)) if now.duration_since(*at) < window => match answer {
                Some(a) => Seen::Answered(a.clone()),
                None => Seen::Pending,
            },
            _ => {
                e.insert(key, (now, None));
                Seen::New
            }
        }
    }

    fn answer(&self, key: DupKey, answer: Option<Vec<u8>>) {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match answer {
            Some(a) => {
                e.insert(key, (Instant::now(), Some(a)));
            }
            None => {
                e.remove(&key);
            }
        }
    }
}

struct Shared {
    config: ServerConfig,
    nases: NasTable,
    authorizer: Authorizer,
    sessions: Arc<dyn RadiusSessionRepo>,
    counters: Counters,
    dups: DupCache,
    in_flight: Semaphore,
}

/// The running authentication and accounting servers.
#[derive(Debug)]
pub struct RadiusServer {
    auth_addr: SocketAddr,
    acct_addr: SocketAddr,
    shared: Arc<SharedHandle>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// `Shared` without a `Debug` of its innards (the NAS table is debug-safe, but short is better).
struct SharedHandle(Arc<Shared>);

impl std::fmt::Debug for SharedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RadiusServer")
            .field("nases", &self.0.nases.len())
            .finish_non_exhaustive()
    }
}

impl RadiusServer {
    /// Binds both ports and starts serving `nases`, deciding with
    /// `authorizer` and recording accounting into `sessions`.
    pub async fn start(
        config: ServerConfig,
        nases: NasTable,
        authorizer: Authorizer,
        sessions: Arc<dyn RadiusSessionRepo>,
    ) -> std::io::Result<RadiusServer> {
        let auth = Arc::new(UdpSocket::bind(config.auth_listen).await?);
        let acct = Arc::new(UdpSocket::bind(config.acct_listen).await?);
        let (auth_addr, acct_addr) = (auth.local_addr()?, acct.local_addr()?);
        let shared = Arc::new(Shared {
            in_flight: Semaphore::new(config.max_in_flight.max(1)),
            config,
            nases,
            authorizer,
            sessions,
            counters: Counters::default(),
            dups: DupCache::default(),
        });
        let (shutdown, rx) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(serve(shared.clone(), auth, Port::Auth, rx.clone())),
            tokio::spawn(serve(shared.clone(), acct, Port::Acct, rx.clone())),
            tokio::spawn(housekeeping(shared.clone(), rx)),
        ];
        tracing::info!(%auth_addr, %acct_addr, nases = shared.nases.len(), "RADIUS servers listening");
        Ok(RadiusServer {
            auth_addr,
            acct_addr,
            shared: Arc::new(SharedHandle(shared)),
            shutdown,
            tasks,
        })
    }

    /// The authentication address.
    pub fn auth_addr(&self) -> SocketAddr {
        self.auth_addr
    }

    /// The accounting address.
    pub fn acct_addr(&self) -> SocketAddr {
        self.acct_addr
    }

    /// The counters.
    pub fn stats(&self) -> ServerStats {
        self.shared.0.counters.snapshot()
    }

    /// Where accounting records sessions.
    pub fn sessions(&self) -> Arc<dyn RadiusSessionRepo> {
        self.shared.0.sessions.clone()
    }

    /// Stops both servers and waits for them.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for RadiusServer {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

#[derive(Debug, Clone, Copy)]
enum Port {
    Auth,
    Acct,
}

impl Port {
    fn label(self) -> &'static str {
        match self {
            Port::Auth => "auth",
            Port::Acct => "acct",
        }
    }
}

async fn serve(shared: Arc<Shared>, socket: Arc<UdpSocket>, port: Port, mut stop: watch::Receiver<bool>) {
    // One byte more than the largest packet, to tell an oversized datagram.
    let mut buf = vec![0u8; wire::MAX_PACKET_LEN + 1];
    loop {
        let (n, from) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "RADIUS receive failed");
                    continue;
                }
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        let datagram = buf[..n].to_vec();
        let Some(request) = admit(&shared, &datagram, from, port) else {
            continue;
        };
        let key = (from, datagram[1], wire::authenticator(&request.packet));
        match shared.dups.check(key, shared.config.duplicate_window) {
            Seen::New => {}
            Seen::Pending => {
                shared.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Seen::Answered(answer) => {
                shared.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                let _ = socket.send_to(&answer, from).await;
                continue;
            }
        }
        let (shared2, socket2) = (shared.clone(), socket.clone());
        let Ok(permit) = shared.in_flight.try_acquire() else {
            // Too busy: unanswered, the router retransmits.
            shared.dups.answer(key, None);
            shared.counters.errors.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        permit.forget();
        tokio::spawn(async move {
            let answer = match port {
                Port::Auth => authenticate(&shared2, &request).await,
                Port::Acct => account(&shared2, &request).await,
            };
            shared2.in_flight.add_permits(1);
            if let Some(a) = &answer {
                let _ = socket2.send_to(a, from).await;
            }
            shared2.dups.answer(key, answer);
        });
    }
}

/// Every `interim_interval`: closes sessions with no record for
/// [`ServerConfig::stale_after`] (only once the server has been up that long,
/// so that the routers had their chance to report after a restart), and
/// deletes closed sessions older than the retention.
async fn housekeeping(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let started = Instant::now();
    let stale_after = shared.config.stale_after();
    let every = shared.config.interim_interval.max(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = shared.authorizer.now();
        let stale_cutoff = chrono::Duration::from_std(stale_after)
            .ok()
            .and_then(|d| now.checked_sub_signed(d));
        if let (true, Some(cutoff)) = (started.elapsed() >= stale_after, stale_cutoff) {
            match shared.sessions.close_stale(cutoff, now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    sessions = n,
                    "RADIUS sessions closed: no accounting record for {stale_after:?}"
                ),
                Err(e) => tracing::warn!(error = %e, "RADIUS: closing stale sessions failed"),
            }
        }
        let retention_cutoff = chrono::Duration::from_std(shared.config.session_retention)
            .ok()
            .and_then(|d| now.checked_sub_signed(d));
        if let Some(cutoff) = retention_cutoff {
            if let Err(e) = shared.sessions.delete_closed_before(cutoff).await {
                tracing::warn!(error = %e, "RADIUS: deleting old sessions failed");
            }
        }
    }
}

/// A framed request from a known NAS whose authenticators check out.
struct Admitted {
    packet: Vec<u8>,
    nas: Nas,
    from: SocketAddr,
}

fn admit(shared: &Shared, datagram: &[u8], from: SocketAddr, port: Port) -> Option<Admitted> {
    let c = &shared.counters;
    let label = port.label();
    if datagram.len() > wire::MAX_PACKET_LEN {
        c.drop_as(&c.malformed, label, "too_long", from);
        return None;
    }
    let packet = match wire::frame(datagram) {
        Ok(p) => p,
        Err(m) => {
            c.drop_as(&c.malformed, label, m.label(), from);
            return None;
        }
    };
    let expected = match port {
        Port::Auth => code::ACCESS_REQUEST,
        Port::Acct => code::ACCOUNTING_REQUEST,
    };
    if packet[0] != expected {
        c.drop_as(&c.unsupported, label, "unsupported_code", from);
        return None;
    }
    let nas_id = wire::attributes(packet)
        .find(|(_, t, _)| *t == attr::NAS_IDENTIFIER)
        .and_then(|(_, _, v)| std::str::from_utf8(v).ok());
    let Some(nas) = shared.nases.lookup(from.ip(), nas_id) else {
        c.drop_as(&c.unknown_nas, label, "unknown_nas", from);
        return None;
    };
    match port {
        Port::Auth => {
            match wire::check_message_authenticator(packet, &wire::authenticator(packet), nas.secret()) {
                MessageAuth::Valid => {}
                MessageAuth::Absent => {
                    c.drop_as(
                        &c.missing_message_authenticator,
                        label,
                        "no_message_authenticator",
                        from,
                    );
                    return None;
                }
                MessageAuth::Invalid => {
                    c.drop_as(&c.bad_authenticator, label, "bad_message_authenticator", from);
                    return None;
                }
            }
        }
        Port::Acct => {
            let ma = wire::check_message_authenticator(packet, &[0; 16], nas.secret());
            if !wire::request_authentic(packet, nas.secret()) || ma == MessageAuth::Invalid {
                c.drop_as(&c.bad_authenticator, label, "bad_authenticator", from);
                return None;
            }
        }
    }
    Some(Admitted {
        packet: packet.to_vec(),
        nas: nas.clone(),
        from,
    })
}

fn copy_proxy_state(request: &Packet, response: &mut Packet) {
    for state in rfc2865::lookup_all_proxy_state(request) {
        rfc2865::add_proxy_state(response, &state);
    }
}

fn finish(mut response: Packet, request_auth: &[u8; 16], secret: &[u8]) -> Option<Vec<u8>> {
    rfc2869::add_message_authenticator(&mut response, &[0u8; 16]);
    let mut bytes = response.encode().ok()?;
    wire::sign_response(&mut bytes, request_auth, secret);
    Some(bytes)
}

async fn authenticate(shared: &Shared, request: &Admitted) -> Option<Vec<u8>> {
    let c = &shared.counters;
    let nas = &request.nas;
    let Ok(packet) = Packet::decode(&request.packet, nas.secret()) else {
        c.drop_as(&c.malformed, "auth", "undecodable", request.from);
        return None;
    };
    let request_auth = wire::authenticator(&request.packet);
    let user = match rfc2865::lookup_user_name(&packet) {
        Some(Ok(u)) => u,
        _ => String::new(),
    };
    let credentials = if let Some(chap) = rfc2865::lookup_chap_password(&packet) {
        let challenge = rfc2865::lookup_chap_challenge(&packet).unwrap_or_else(|| request_auth.to_vec());
        Some(Credentials::Chap {
            response: chap,
            challenge,
        })
    } else {
        match rfc2865::lookup_user_password(&packet) {
            Some(Ok(mut p)) => {
                while p.last() == Some(&0) {
                    p.pop();
                }
                Some(Credentials::Pap(p))
            }
            Some(Err(_)) => {
                c.drop_as(&c.malformed, "auth", "bad_user_password", request.from);
                return None;
            }
            None => None,
        }
    };
    let decision = match (&credentials, user.is_empty()) {
        (_, true) => Decision::Reject("no User-Name".into()),
        (None, false) => Decision::Reject("no password (PAP or CHAP required)".into()),
        (Some(creds), false) => match shared.authorizer.decide(nas, &user, creds).await {
            Ok(d) => d,
            Err(e) => {
                c.errors.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("isp_radius_errors_total").increment(1);
                tracing::warn!(router = %nas.router, user = %user, error = %e, "RADIUS request left unanswered: the repositories failed");
                return None;
            }
        },
    };
    let mut response;
    match &decision {
        Decision::Accept {
            session_timeout,
            rate_limit,
            kind,
        } => {
            c.accepts.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("isp_radius_requests_total", "answer" => "accept").increment(1);
            tracing::info!(router = %nas.router, user = %user, ?kind, session_timeout, "RADIUS Access-Accept");
            response = packet.make_response_packet(Code::AccessAccept);
            rfc2865::add_session_timeout(&mut response, *session_timeout);
            rfc2869::add_acct_interim_interval(&mut response, interim_secs(shared.config.interim_interval));
            if let Some(rate) = rate_limit {
                let vsa = wire::vendor_attribute(
                    mikrotik::VENDOR_ID,
                    mikrotik::RATE_LIMIT,
                    rate.to_string().as_bytes(),
                );
                response.add(AVP::from_bytes(attr::VENDOR_SPECIFIC, &vsa));
            }
        }
        Decision::Reject(reason) => {
            c.rejects.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("isp_radius_requests_total", "answer" => "reject").increment(1);
            tracing::info!(router = %nas.router, user = %user, reason = %reason, "RADIUS Access-Reject");
            response = packet.make_response_packet(Code::AccessReject);
            rfc2865::add_reply_message(&mut response, reason);
        }
    }
    copy_proxy_state(&packet, &mut response);
    finish(response, &request_auth, nas.secret())
}

/// A 64-bit counter from its octets and gigawords attributes.
fn counter(octets: Option<u32>, gigawords: Option<u32>) -> u64 {
    (u64::from(gigawords.unwrap_or(0)) << 32) | u64::from(octets.unwrap_or(0))
}

/// The session an accounting record describes.
fn session_of(nas: &Nas, packet: &Packet, raw: &[u8], id: String, now: DateTime<Utc>) -> RadiusSession {
    let ppp = wire::attributes(raw).any(|(_, t, v)| t == attr::FRAMED_PROTOCOL && v == [0, 0, 0, 1]);
    let int = |o: Option<Result<u32, radius::core::avp::AVPError>>| o.and_then(Result::ok);
    RadiusSession {
        router: nas.router,
        tenant: nas.tenant,
        session_id: id,
        user: rfc2865::lookup_user_name(packet)
            .and_then(Result::ok)
            .unwrap_or_default(),
        kind: if ppp {
            RadiusSessionKind::Ppp
        } else {
            RadiusSessionKind::Hotspot
        },
        address: rfc2865::lookup_framed_ip_address(packet).and_then(Result::ok),
        calling_station: rfc2865::lookup_calling_station_id(packet).and_then(Result::ok),
        started: now,
        updated: now,
        input_octets: counter(
            int(rfc2866::lookup_acct_input_octets(packet)),
            int(rfc2869::lookup_acct_input_gigawords(packet)),
        )
        .min(i64::MAX as u64),
        output_octets: counter(
            int(rfc2866::lookup_acct_output_octets(packet)),
            int(rfc2869::lookup_acct_output_gigawords(packet)),
        )
        .min(i64::MAX as u64),
        stopped: None,
    }
}

/// Records one accounting request; `Err` when the repositories failed.
async fn record(shared: &Shared, nas: &Nas, packet: &Packet, raw: &[u8]) -> isp_core::Result<()> {
    let status = rfc2866::lookup_acct_status_type(packet).and_then(Result::ok);
    let session_id = rfc2866::lookup_acct_session_id(packet).and_then(Result::ok);
    let now = shared.authorizer.now();
    match (status, session_id) {
        (Some(acct_status::ACCOUNTING_ON | acct_status::ACCOUNTING_OFF), _) => {
            let gone = shared.sessions.close_router(nas.router, now).await?;
            tracing::info!(router = %nas.router, sessions = gone, "RADIUS router restarted its accounting");
        }
        (Some(acct_status::STOP), Some(id)) => {
            let mut session = session_of(nas, packet, raw, id, now);
            session.stopped = Some(now);
            shared.sessions.stop(&session).await?;
        }
        (Some(s @ (acct_status::START | acct_status::INTERIM_UPDATE)), Some(id)) => {
            let session = session_of(nas, packet, raw, id, now);
            let recorded = shared.sessions.upsert(&session, s == acct_status::START).await?;
            if !recorded {
                tracing::debug!(router = %nas.router, session = %session.session_id, "RADIUS Interim-Update of a closed session ignored");
            }
        }
        // Answered (the router must not retransmit forever) but not recorded.
        _ => {
            tracing::debug!(router = %nas.router, "RADIUS accounting request without a status or session id")
        }
    }
    Ok(())
}

async fn account(shared: &Shared, request: &Admitted) -> Option<Vec<u8>> {
    let c = &shared.counters;
    let nas = &request.nas;
    let Ok(packet) = Packet::decode(&request.packet, nas.secret()) else {
        c.drop_as(&c.malformed, "acct", "undecodable", request.from);
        return None;
    };
    if let Err(e) = record(shared, nas, &packet, &request.packet).await {
        c.errors.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("isp_radius_errors_total").increment(1);
        tracing::warn!(router = %nas.router, error = %e, "RADIUS accounting left unanswered: the repositories failed");
        return None;
    }
    c.accounting.fetch_add(1, Ordering::Relaxed);
    metrics::counter!("isp_radius_accounting_total").increment(1);
    let mut response = packet.make_response_packet(Code::AccountingResponse);
    copy_proxy_state(&packet, &mut response);
    let mut bytes = response.encode().ok()?;
    wire::sign_response(&mut bytes, &wire::authenticator(&request.packet), nas.secret());
    Some(bytes)
}
