//! The router driver for routers in RADIUS mode: Disconnect-Request and
//! CoA-Request (RFC 5176) to the router's `/radius incoming` port.
//!
//! A RADIUS router has no local users for the engine to disable: access is
//! refused at the next Access-Request, because the server answers from the
//! database. So ending a session is a Disconnect-Request to the router that
//! holds it (known from accounting, kept in the [`RadiusSessionRepo`]: a
//! restarted daemon still finds sessions started before the restart; by
//! `User-Name` when accounting has not reported one), and operations on local users, secrets, queues and
//! address lists change nothing on the router: they succeed when their
//! effect is already what the database says (removals, disables), and are
//! refused with a clear error when they cannot be done (blocking a MAC).

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use isp_core::domain::{
    Connection, MacAddress, OwnerTag, RadiusSession, RadiusSessionKind, RosName, Router, RouterId, Transport,
    VoucherStatus,
};
use isp_core::ports::{
    DisconnectReport, ForeignObject, HotspotSession, HotspotTarget, HotspotUser, HotspotUserSpec, Menu,
    PppSecret, PppSession, PppoeSpec, QueueSpec, RadiusSessionRepo, Repositories, RouterDriver, RouterHealth,
    RouterSnapshot, RuleState, StaticIpRuleSpec, StaticIpSpec,
};
use isp_core::{Error, Result};
use tokio::net::UdpSocket;

use crate::dict::{attr, code, error_cause};
use crate::nas::{Nas, NasTable};
use crate::wire;

/// How often and how patiently a request is sent.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Sends in all (the first included).
    pub attempts: u32,
    /// Wait for the first answer; doubled after each silent attempt.
    pub first_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_timeout: Duration::from_secs(1),
        }
    }
}

/// What a router answered to one Disconnect-Request or CoA-Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Disconnect-ACK / CoA-ACK.
    Ack,
    /// Disconnect-NAK / CoA-NAK, with its Error-Cause if it gave one.
    Nak(Option<u32>),
    /// No answer after every attempt.
    NoAnswer,
}

impl Answer {
    /// `ACK`, `NAK Session-Context-Not-Found (503)`, `no answer`.
    pub fn describe(&self) -> String {
        match self {
            Answer::Ack => "ACK".into(),
            Answer::Nak(Some(c)) => format!("NAK {} ({c})", error_cause::name(*c)),
            Answer::Nak(None) => "NAK".into(),
            Answer::NoAnswer => "no answer".into(),
        }
    }
}

/// One Disconnect-Request or CoA-Request and its answer, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// When the answer (or the last timeout) came.
    pub at: DateTime<Utc>,
    /// The router.
    pub router: RouterId,
    /// `Disconnect-Request` or `CoA-Request`.
    pub request: &'static str,
    /// `User-Name` sent.
    pub user: Option<String>,
    /// `Acct-Session-Id` sent.
    pub session_id: Option<String>,
    /// Sends it took.
    pub attempts: u32,
    /// The answer.
    pub answer: Answer,
}

const RECORDS_KEPT: usize = 1000;

/// The Disconnect/CoA driver for routers in RADIUS mode.
#[derive(Debug)]
pub struct RadiusDriver {
    nases: NasTable,
    sessions: Arc<dyn RadiusSessionRepo>,
    retry: RetryPolicy,
    records: Mutex<VecDeque<RequestRecord>>,
    repos: Option<Repositories>,
}

/// Who a Disconnect-Request is for.
#[derive(Debug, Clone, Default)]
struct Selector {
    user: Option<String>,
    session_id: Option<String>,
    address: Option<Ipv4Addr>,
}

impl RadiusDriver {
    /// A driver for these NASes, finding sessions in `sessions` (where the
    /// accounting server records them).
    pub fn new(nases: NasTable, sessions: Arc<dyn RadiusSessionRepo>, retry: RetryPolicy) -> Self {
        RadiusDriver {
            nases,
            sessions,
            retry,
            records: Mutex::new(VecDeque::new()),
            repos: None,
        }
    }

    /// Lets [`RouterDriver::snapshot`] show a RADIUS router's "local" users
    /// as what they are, the database: the unused and active vouchers of the
    /// router as hotspot users and its provisioned PPPoE services as PPP
    /// secrets, tagged as ours. Without it those menus read empty, and a
    /// sync would take every voucher's user for gone.
    pub fn with_repositories(mut self, repos: Repositories) -> Self {
        self.repos = Some(repos);
        self
    }

    /// True when `router` is in RADIUS mode (this driver serves it).
    pub fn serves(&self, router: RouterId) -> bool {
        self.nases.of_router(router).is_some()
    }

    /// The last requests sent and their answers, oldest first (at most 1000).
    pub fn records(&self) -> Vec<RequestRecord> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn nas(&self, router: &Router) -> Result<&Nas> {
        self.nases.of_router(router.id).ok_or_else(|| {
            Error::Internal(format!(
                "router {} ({}) is not configured for RADIUS",
                router.name, router.id
            ))
        })
    }

    fn record(&self, r: RequestRecord) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if records.len() >= RECORDS_KEPT {
            records.pop_front();
        }
        records.push_back(r);
    }

    /// Sends a Disconnect-Request for `selector` and waits (with retries) for the answer.
    async fn disconnect(&self, nas: &Nas, selector: &Selector) -> Result<Answer> {
        self.send(nas, code::DISCONNECT_REQUEST, selector, None).await
    }

    /// Sends a CoA-Request giving the session(s) a new `Session-Timeout`.
    pub async fn change_session_timeout(
        &self,
        router: &Router,
        user: &str,
        session_timeout: u32,
    ) -> Result<Answer> {
        let nas = self.nas(router)?;
        let selector = Selector {
            user: Some(user.to_owned()),
            ..Selector::default()
        };
        self.send(nas, code::COA_REQUEST, &selector, Some(session_timeout))
            .await
    }

    async fn send(&self, nas: &Nas, code: u8, selector: &Selector, timeout: Option<u32>) -> Result<Answer> {
        let identifier: u8 = rand::random();
        let mut attrs: Vec<(u8, Vec<u8>)> = Vec::new();
        if let Some(u) = &selector.user {
            attrs.push((attr::USER_NAME, u.as_bytes().to_vec()));
        }
        if let Some(s) = &selector.session_id {
            attrs.push((attr::ACCT_SESSION_ID, s.as_bytes().to_vec()));
        }
        if let Some(a) = selector.address {
            attrs.push((attr::FRAMED_IP_ADDRESS, a.octets().to_vec()));
        }
        if let Some(t) = timeout {
            attrs.push((attr::SESSION_TIMEOUT, t.to_be_bytes().to_vec()));
        }
        attrs.push((attr::MESSAGE_AUTHENTICATOR, vec![0u8; 16]));
        let mut packet = vec![code, identifier, 0, 0];
        packet.extend([0u8; 16]);
        for (t, v) in &attrs {
            if v.len() > 253 {
                return Err(Error::invalid("User-Name", "[too long]", "at most 253 bytes"));
            }
            packet.push(*t);
            packet.push(u8::try_from(v.len() + 2).unwrap_or(u8::MAX));
            packet.extend(v);
        }
        let len = u16::try_from(packet.len()).map_err(|_| Error::Internal("packet too long".into()))?;
        packet[2..4].copy_from_slice(&len.to_be_bytes());
        wire::sign_request(&mut packet, nas.secret());
        let request_auth = wire::authenticator(&packet);
        let bind = if nas.incoming.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let socket = UdpSocket::bind(bind)
            .await
            .map_err(|e| Error::unavailable(format!("RADIUS {}", nas.name), e.to_string()))?;
        socket
            .connect(nas.incoming)
            .await
            .map_err(|e| Error::unavailable(format!("RADIUS {}", nas.name), e.to_string()))?;
        let (ack, nak) = if code == code::COA_REQUEST {
            (code::COA_ACK, code::COA_NAK)
        } else {
            (code::DISCONNECT_ACK, code::DISCONNECT_NAK)
        };
        let name = if code == code::COA_REQUEST {
            "CoA-Request"
        } else {
            "Disconnect-Request"
        };
        let mut wait = self.retry.first_timeout;
        let mut buf = vec![0u8; wire::MAX_PACKET_LEN];
        let mut answer = Answer::NoAnswer;
        let mut attempts = 0;
        'attempts: for _ in 0..self.retry.attempts.max(1) {
            attempts += 1;
            if let Err(e) = socket.send(&packet).await {
                tracing::debug!(router = %nas.router, error = %e, "RADIUS send failed");
            }
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                    Err(_) => break,
                    // ICMP port unreachable shows up as an error: wait out the attempt.
                    Ok(Err(_)) => {
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                    Ok(Ok(n)) => n,
                };
                let Ok(resp) = wire::frame(&buf[..n]) else {
                    continue;
                };
                if resp[1] != identifier
                    || (resp[0] != ack && resp[0] != nak)
                    || !wire::response_authentic(resp, &request_auth, nas.secret())
                    || wire::check_message_authenticator(resp, &request_auth, nas.secret())
                        == wire::MessageAuth::Invalid
                {
                    continue;
                }
                answer = if resp[0] == ack {
                    Answer::Ack
                } else {
                    let cause = wire::attributes(resp)
                        .find(|(_, t, v)| *t == attr::ERROR_CAUSE && v.len() == 4)
                        .map(|(_, _, v)| u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
                    Answer::Nak(cause)
                };
                break 'attempts;
            }
            wait = wait.saturating_mul(2);
        }
        tracing::info!(
            router = %nas.router,
            request = name,
            user = selector.user.as_deref().unwrap_or(""),
            session = selector.session_id.as_deref().unwrap_or(""),
            attempts,
            answer = %answer.describe(),
            "RADIUS {name} answered"
        );
        let label = match answer {
            Answer::Ack => "ack",
            Answer::Nak(_) => "nak",
            Answer::NoAnswer => "no_answer",
        };
        metrics::counter!("isp_radius_disconnects_total", "request" => name, "answer" => label).increment(1);
        self.record(RequestRecord {
            at: Utc::now(),
            router: nas.router,
            request: name,
            user: selector.user.clone(),
            session_id: selector.session_id.clone(),
            attempts,
            answer,
        });
        Ok(answer)
    }

    /// Disconnects one session; `Ok(true)` when the router removed it,
    /// `Ok(false)` when it had no such session (NAK 503).
    async fn end_session(&self, nas: &Nas, selector: &Selector) -> Result<bool> {
        match self.disconnect(nas, selector).await? {
            Answer::Ack => Ok(true),
            Answer::Nak(Some(error_cause::SESSION_CONTEXT_NOT_FOUND)) => Ok(false),
            Answer::Nak(cause) => Err(Error::Rejected {
                service: format!("RADIUS {}", nas.name),
                detail: format!(
                    "Disconnect-NAK {}",
                    cause.map_or("without Error-Cause".to_owned(), |c| format!(
                        "{} ({c})",
                        error_cause::name(c)
                    ))
                ),
            }),
            Answer::NoAnswer => Err(Error::unavailable(
                format!("RADIUS {}", nas.name),
                format!(
                    "no answer to Disconnect-Request from {} after {} attempts",
                    nas.incoming, self.retry.attempts
                ),
            )),
        }
    }

    /// Records that the router no longer holds a session (ACK, or NAK 503).
    /// The router's own Stop records its final counters later; a failure to
    /// record is logged, not returned: the session did end.
    async fn close(&self, router: RouterId, session_id: &str) {
        if let Err(e) = self.sessions.close(router, session_id, Utc::now()).await {
            tracing::warn!(%router, session = session_id, error = %e, "RADIUS: a disconnected session could not be marked closed");
        }
    }

    /// Ends every session of `user` (and of `macs`) on the router: the ones
    /// accounting knows, or one request by `User-Name` when it knows none.
    async fn end_sessions_of(&self, nas: &Nas, user: Option<&str>, macs: &[MacAddress]) -> Result<u32> {
        let mac_texts: Vec<String> = macs.iter().map(|m| m.to_string()).collect();
        let known: Vec<RadiusSession> = self
            .sessions
            .live_on_router(nas.router)
            .await?
            .into_iter()
            .filter(|s| {
                user.is_some_and(|u| s.user == u)
                    || s.calling_station
                        .as_deref()
                        .is_some_and(|c| mac_texts.iter().any(|m| m.eq_ignore_ascii_case(c)))
            })
            .collect();
        let mut removed = 0;
        if known.is_empty() {
            if let Some(u) = user {
                let selector = Selector {
                    user: Some(u.to_owned()),
                    ..Selector::default()
                };
                removed += u32::from(self.end_session(nas, &selector).await?);
            }
            return Ok(removed);
        }
        for s in known {
            let selector = Selector {
                user: Some(s.user.clone()),
                session_id: Some(s.session_id.clone()),
                address: s.address,
            };
            if self.end_session(nas, &selector).await? {
                removed += 1;
            }
            self.close(nas.router, &s.session_id).await;
        }
        Ok(removed)
    }
}

fn not_possible(router: &Router, what: &str) -> Error {
    Error::Rejected {
        service: format!("router {}", router.name),
        detail: format!(
            "{what} is not possible in RADIUS mode (the router has no local objects for the engine; access is refused at the next Access-Request)"
        ),
    }
}

#[async_trait]
impl RouterDriver for RadiusDriver {
    async fn snapshot(&self, router: &Router, menus: &[Menu]) -> Result<RouterSnapshot> {
        self.nas(router)?;
        let mut snap = RouterSnapshot::default();
        let wants_users = menus.contains(&Menu::HotspotUsers) || menus.contains(&Menu::PppSecrets);
        match (&self.repos, wants_users) {
            (Some(repos), true) => {
                if menus.contains(&Menu::HotspotUsers) {
                    let vouchers = repos
                        .vouchers
                        .on_router(router.id, &[VoucherStatus::Unused, VoucherStatus::Active])
                        .await?;
                    snap.hotspot_users = vouchers
                        .into_iter()
                        .map(|v| HotspotUser {
                            id: format!("radius:{}", v.code),
                            name: v.code.to_string(),
                            disabled: false,
                            comment: Some(OwnerTag::Voucher(v.id).comment()),
                            uptime: None,
                            limit_uptime: None,
                        })
                        .collect();
                }
                if menus.contains(&Menu::PppSecrets) {
                    let services = repos.services.on_router(router.id).await?;
                    snap.ppp_secrets = services
                        .into_iter()
                        .filter(|s| s.provisioned)
                        .filter_map(|s| match &s.connection {
                            Connection::Pppoe { username, profile, .. } => Some(PppSecret {
                                id: format!("radius:{username}"),
                                name: username.to_string(),
                                profile: Some(profile.to_string()),
                                disabled: false,
                                comment: Some(OwnerTag::Service(s.id).comment()),
                            }),
                            Connection::StaticIp { .. } => None,
                        })
                        .collect();
                }
            }
            (None, true) => {
                return Err(Error::Internal(format!(
                    "router {} is in RADIUS mode: its users are the database, and this driver was built without it",
                    router.name
                )))
            }
            _ => {}
        }
        for s in self.sessions.live_on_router(router.id).await? {
            match s.kind {
                RadiusSessionKind::Hotspot if menus.contains(&Menu::HotspotActive) => {
                    snap.hotspot_active.push(HotspotSession {
                        id: s.session_id.clone(),
                        user: Some(s.user.clone()),
                        mac: s
                            .calling_station
                            .as_deref()
                            .and_then(|m| MacAddress::parse("Calling-Station-Id", m).ok()),
                        address: s.address,
                        uptime: None,
                    })
                }
                RadiusSessionKind::Ppp if menus.contains(&Menu::PppActive) => {
                    snap.ppp_active.push(PppSession {
                        id: s.session_id.clone(),
                        name: s.user.clone(),
                        address: s.address,
                        caller_id: s.calling_station.clone(),
                    })
                }
                _ => {}
            }
        }
        Ok(snap)
    }

    async fn disconnect_hotspot(
        &self,
        router: &Router,
        targets: &[HotspotTarget],
    ) -> Result<Vec<Result<DisconnectReport>>> {
        let nas = self.nas(router)?;
        let mut out = Vec::with_capacity(targets.len());
        for t in targets {
            let user = t.username.as_ref().map(RosName::as_str);
            out.push(
                self.end_sessions_of(nas, user, &t.macs)
                    .await
                    .map(|removed| DisconnectReport {
                        sessions_removed: removed,
                        ..DisconnectReport::default()
                    }),
            );
        }
        Ok(out)
    }

    async fn remove_hotspot_sessions(&self, router: &Router, ids: &[String]) -> Result<u32> {
        let nas = self.nas(router)?;
        let known = self.sessions.live_on_router(router.id).await?;
        for id in ids {
            let s = known.iter().find(|s| &s.session_id == id);
            let selector = Selector {
                user: s.map(|s| s.user.clone()),
                session_id: Some(id.clone()),
                address: s.and_then(|s| s.address),
            };
            self.end_session(nas, &selector).await?;
            self.close(router.id, id).await;
        }
        Ok(u32::try_from(ids.len()).unwrap_or(u32::MAX))
    }

    async fn block_device(&self, router: &Router, _mac: MacAddress, _owner: OwnerTag) -> Result<()> {
        Err(not_possible(router, "blocking a device (an ip-binding)"))
    }

    async fn unblock_device(&self, router: &Router, _mac: MacAddress) -> Result<()> {
        self.nas(router).map(|_| ())
    }

    async fn remove_ip_bindings(
        &self,
        router: &Router,
        bindings: &[(MacAddress, OwnerTag)],
    ) -> Result<Vec<Result<u32>>> {
        self.nas(router)?;
        Ok(bindings.iter().map(|_| Ok(0)).collect())
    }

    async fn set_hotspot_user_disabled(
        &self,
        router: &Router,
        name: &RosName,
        _owner: OwnerTag,
        disabled: bool,
    ) -> Result<()> {
        let nas = self.nas(router)?;
        if disabled {
            self.end_sessions_of(nas, Some(name.as_str()), &[]).await?;
        }
        Ok(())
    }

    async fn set_hotspot_users_disabled(
        &self,
        router: &Router,
        changes: &[(RosName, OwnerTag, bool)],
    ) -> Result<Vec<Result<()>>> {
        let mut out = Vec::with_capacity(changes.len());
        for (name, owner, disabled) in changes {
            out.push(
                self.set_hotspot_user_disabled(router, name, *owner, *disabled)
                    .await,
            );
        }
        Ok(out)
    }

    async fn add_hotspot_user(&self, router: &Router, spec: &HotspotUserSpec) -> Result<String> {
        self.nas(router)?;
        // The database is the router's user table: the voucher can log in now.
        Ok(format!("radius:{}", spec.name))
    }

    async fn remove_hotspot_user(&self, router: &Router, name: &RosName, _owner: OwnerTag) -> Result<bool> {
        let nas = self.nas(router)?;
        self.end_sessions_of(nas, Some(name.as_str()), &[]).await?;
        Ok(false)
    }

    async fn provision_pppoe(&self, router: &Router, _spec: &PppoeSpec) -> Result<()> {
        self.nas(router).map(|_| ())
    }

    async fn deprovision_pppoe(&self, router: &Router, username: &RosName, _owner: OwnerTag) -> Result<()> {
        let nas = self.nas(router)?;
        self.end_sessions_of(nas, Some(username.as_str()), &[])
            .await
            .map(|_| ())
    }

    async fn provision_static_ip(&self, router: &Router, _spec: &StaticIpSpec) -> Result<Vec<ForeignObject>> {
        Err(not_possible(router, "a static-IP address-list entry"))
    }

    async fn deprovision_static_ip(
        &self,
        router: &Router,
        _address: Ipv4Addr,
        _list: &RosName,
        _owner: OwnerTag,
    ) -> Result<Vec<ForeignObject>> {
        self.nas(router).map(|_| Vec::new())
    }

    async fn check_static_ip_rule(&self, router: &Router, _spec: &StaticIpRuleSpec) -> Result<RuleState> {
        Err(not_possible(router, "a static-IP firewall rule"))
    }

    async fn add_static_ip_rule(&self, router: &Router, _spec: &StaticIpRuleSpec) -> Result<bool> {
        Err(not_possible(router, "a static-IP firewall rule"))
    }

    async fn set_rate_limit(&self, router: &Router, _spec: &QueueSpec) -> Result<()> {
        // Sent as Mikrotik-Rate-Limit in every Access-Accept.
        self.nas(router).map(|_| ())
    }

    async fn remove_rate_limit(&self, router: &Router, _name: &RosName, _owner: OwnerTag) -> Result<()> {
        self.nas(router).map(|_| ())
    }

    async fn health(&self, router: &Router) -> Result<RouterHealth> {
        self.nas(router)?;
        Ok(RouterHealth {
            identity: router.name.clone(),
            version: None,
            uptime: None,
            cpu_load: None,
            free_memory: None,
            total_memory: None,
            clock: None,
        })
    }
}

/// Sends each router to the RADIUS driver or to the other driver (the
/// RouterOS API/REST one), by its [`Transport`]: `radius` routers to the
/// RADIUS driver (which refuses a router it has no NAS for), the others to
/// the other driver.
#[derive(Debug)]
pub struct RoutedDriver {
    radius: Arc<RadiusDriver>,
    other: Arc<dyn RouterDriver>,
}

impl RoutedDriver {
    /// Routers with `transport = radius` go to `radius`, the rest to `other`.
    pub fn new(radius: Arc<RadiusDriver>, other: Arc<dyn RouterDriver>) -> Self {
        RoutedDriver { radius, other }
    }

    fn pick(&self, router: &Router) -> &dyn RouterDriver {
        if router.transport == Transport::Radius {
            self.radius.as_ref()
        } else {
            self.other.as_ref()
        }
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl RouterDriver for RoutedDriver {
    async fn snapshot(&self, router: &Router, menus: &[Menu]) -> Result<RouterSnapshot> {
        self.pick(router).snapshot(router, menus).await
    }
    async fn disconnect_hotspot(
        &self,
        router: &Router,
        targets: &[HotspotTarget],
    ) -> Result<Vec<Result<DisconnectReport>>> {
        self.pick(router).disconnect_hotspot(router, targets).await
    }
    async fn remove_hotspot_sessions(&self, router: &Router, ids: &[String]) -> Result<u32> {
        self.pick(router).remove_hotspot_sessions(router, ids).await
    }
    async fn block_device(&self, router: &Router, mac: MacAddress, owner: OwnerTag) -> Result<()> {
        self.pick(router).block_device(router, mac, owner).await
    }
    async fn unblock_device(&self, router: &Router, mac: MacAddress) -> Result<()> {
        self.pick(router).unblock_device(router, mac).await
    }
    async fn remove_ip_bindings(
        &self,
        router: &Router,
        bindings: &[(MacAddress, OwnerTag)],
    ) -> Result<Vec<Result<u32>>> {
        self.pick(router).remove_ip_bindings(router, bindings).await
    }
    async fn set_hotspot_user_disabled(
        &self,
        router: &Router,
        name: &RosName,
        owner: OwnerTag,
        disabled: bool,
    ) -> Result<()> {
        self.pick(router)
            .set_hotspot_user_disabled(router, name, owner, disabled)
            .await
    }
    async fn set_hotspot_users_disabled(
        &self,
        router: &Router,
        changes: &[(RosName, OwnerTag, bool)],
    ) -> Result<Vec<Result<()>>> {
        self.pick(router)
            .set_hotspot_users_disabled(router, changes)
            .await
    }
    async fn add_hotspot_user(&self, router: &Router, spec: &HotspotUserSpec) -> Result<String> {
        self.pick(router).add_hotspot_user(router, spec).await
    }
    async fn remove_hotspot_user(&self, router: &Router, name: &RosName, owner: OwnerTag) -> Result<bool> {
        self.pick(router).remove_hotspot_user(router, name, owner).await
    }
    async fn provision_pppoe(&self, router: &Router, spec: &PppoeSpec) -> Result<()> {
        self.pick(router).provision_pppoe(router, spec).await
    }
    async fn deprovision_pppoe(&self, router: &Router, username: &RosName, owner: OwnerTag) -> Result<()> {
        self.pick(router).deprovision_pppoe(router, username, owner).await
    }
    async fn provision_static_ip(&self, router: &Router, spec: &StaticIpSpec) -> Result<Vec<ForeignObject>> {
        self.pick(router).provision_static_ip(router, spec).await
    }
    async fn deprovision_static_ip(
        &self,
        router: &Router,
        address: Ipv4Addr,
        list: &RosName,
        owner: OwnerTag,
    ) -> Result<Vec<ForeignObject>> {
        self.pick(router)
            .deprovision_static_ip(router, address, list, owner)
            .await
    }
    async fn check_static_ip_rule(&self, router: &Router, spec: &StaticIpRuleSpec) -> Result<RuleState> {
        self.pick(router).check_static_ip_rule(router, spec).await
    }
    async fn add_static_ip_rule(&self, router: &Router, spec: &StaticIpRuleSpec) -> Result<bool> {
        self.pick(router).add_static_ip_rule(router, spec).await
    }
    async fn set_rate_limit(&self, router: &Router, spec: &QueueSpec) -> Result<()> {
        self.pick(router).set_rate_limit(router, spec).await
    }
    async fn remove_rate_limit(&self, router: &Router, name: &RosName, owner: OwnerTag) -> Result<()> {
        self.pick(router).remove_rate_limit(router, name, owner).await
    }
    async fn health(&self, router: &Router) -> Result<RouterHealth> {
        self.pick(router).health(router).await
    }
    async fn watch_hotspot_sessions(
        &self,
        router: &Router,
    ) -> Result<futures::stream::BoxStream<'static, Result<HotspotSession>>> {
        self.pick(router).watch_hotspot_sessions(router).await
    }
}
