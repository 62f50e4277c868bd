//! Who gets in: the decision for one Access-Request, from the repositories
//! and the clock.
//!
//! A user name is looked up, in this order, as a voucher code of the NAS's
//! tenant, the PPPoE username of a service on the NAS, and a hotspot
//! subscriber's username (or phone). A subscriber's and a voucher's password
//! is the name itself (code-only login, as MikroTik's login page sends it);
//! a PPPoE service's is its stored secret.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use isp_core::domain::{Connection, PhoneNumber, RateLimit, RosName, Service, ServiceStatus, VoucherStatus};
use isp_core::policy::time::{end_of_day, local_date};
use isp_core::ports::{Clock, Repositories};
use isp_core::{Error, Result};

use crate::nas::Nas;
use crate::wire;

/// The proof of password an Access-Request carries.
#[derive(Clone)]
pub enum Credentials {
    /// PAP: the decrypted User-Password (trailing NULs removed).
    Pap(Vec<u8>),
    /// CHAP: the CHAP-Password attribute and the challenge it answers.
    Chap {
        /// The CHAP-Password attribute (ident and 16-byte response).
        response: Vec<u8>,
        /// CHAP-Challenge, or the request authenticator.
        challenge: Vec<u8>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Pap(_) => f.write_str("Pap([REDACTED])"),
            Credentials::Chap { .. } => f.write_str("Chap([REDACTED])"),
        }
    }
}

impl Credentials {
    /// True when these credentials prove `password`.
    pub fn proves(&self, password: &str) -> bool {
        match self {
            Credentials::Pap(given) => {
                subtle::ConstantTimeEq::ct_eq(given.as_slice(), password.as_bytes()).into()
            }
            Credentials::Chap { response, challenge } => {
                wire::chap_matches(response, challenge, password.as_bytes())
            }
        }
    }
}

/// What kind of user was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    /// A hotspot subscriber.
    Subscriber,
    /// A voucher.
    Voucher,
    /// A PPPoE service.
    Service,
}

/// The answer to one Access-Request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Let in for `session_timeout` seconds (the paid time left).
    Accept {
        /// Seconds of paid time left: the router ends the session then.
        session_timeout: u32,
        /// The plan's rate limit, if it has one.
        rate_limit: Option<RateLimit>,
        /// Who was let in.
        kind: UserKind,
    },
    /// Refused, with the reason for `Reply-Message`.
    Reject(String),
}

/// Decides Access-Requests.
#[derive(Debug, Clone)]
pub struct Authorizer {
    repos: Repositories,
    clock: Arc<dyn Clock>,
}

fn reject(reason: impl Into<String>) -> Result<Decision> {
    Ok(Decision::Reject(reason.into()))
}

/// Whole seconds from `now` to `end`, or `None` when less than one is left.
fn seconds_left(now: DateTime<Utc>, end: DateTime<Utc>) -> Option<u32> {
    let secs = (end - now).num_seconds();
    (secs >= 1).then(|| u32::try_from(secs).unwrap_or(u32::MAX))
}

impl Authorizer {
    /// An authorizer over these repositories and clock.
    pub fn new(repos: Repositories, clock: Arc<dyn Clock>) -> Self {
        Authorizer { repos, clock }
    }

    /// The authorizer's clock reading.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The decision for `user` with `credentials` asking on `nas`. `Err` only
    /// when the repositories failed (the request then goes unanswered, and the
    /// router asks again or tries its next server).
    pub async fn decide(&self, nas: &Nas, user: &str, credentials: &Credentials) -> Result<Decision> {
        let Ok(name) = RosName::parse("User-Name", user) else {
            return reject(format!("unknown user {user:?}"));
        };
        if let Some(v) = self.repos.vouchers.find_by_code(nas.tenant, &name).await? {
            if v.router_id != nas.router {
                return reject(format!("voucher {user} is for another router"));
            }
            if !credentials.proves(user) {
                return reject("wrong password");
            }
            let now = self.clock.now();
            let end = match v.status {
                VoucherStatus::Revoked => return reject(format!("voucher {user} was revoked")),
                VoucherStatus::Expired => return reject(format!("voucher {user} has expired")),
                VoucherStatus::Unused => {
                    if v.activation_deadline.is_some_and(|d| d <= now)
                        || v.purchase_deadline.is_some_and(|d| d <= now)
                    {
                        return reject(format!("voucher {user} has expired (not used in time)"));
                    }
                    let active = match self.repos.vouchers.activate(v.id, now).await {
                        Ok(a) => a,
                        // Another request activated it meanwhile: read it again.
                        Err(e) if e.is_conflict() => self.repos.vouchers.get(v.id).await?,
                        Err(e) => return Err(e),
                    };
                    tracing::info!(voucher = %v.id, router = %nas.router, "voucher activated by its first RADIUS login");
                    active.expected_end
                }
                VoucherStatus::Active => v.expected_end,
            };
            let end = end.unwrap_or_else(|| now + v.duration.as_chrono());
            let Some(left) = seconds_left(now, end) else {
                return reject(format!("voucher {user} has expired"));
            };
            let plan = self.repos.plans.get(v.plan_id).await?;
            return Ok(Decision::Accept {
                session_timeout: left,
                rate_limit: plan.rate_limit,
                kind: UserKind::Voucher,
            });
        }
        if let Some(service) = self.service_named(nas, user).await? {
            return self.decide_service(nas, user, &service, credentials).await;
        }
        let mut subscriber = self
            .repos
            .subscribers
            .active_of_tenant(nas.tenant)
            .await?
            .into_iter()
            .find(|s| s.username.as_str() == user);
        if subscriber.is_none() {
            if let Ok(phone) = PhoneNumber::parse("User-Name", user) {
                subscriber = self.repos.subscribers.find_by_phone(nas.tenant, &phone).await?;
            }
        }
        let Some(s) = subscriber else {
            return reject(format!("unknown user {user}"));
        };
        if !credentials.proves(s.username.as_str()) && !credentials.proves(user) {
            return reject("wrong password");
        }
        let now = self.clock.now();
        if !s.active {
            return reject(format!(
                "access of {user} ended on {}",
                s.paid_until.format("%Y-%m-%d %H:%M:%S UTC")
            ));
        }
        let Some(left) = seconds_left(now, s.paid_until) else {
            return reject(format!(
                "paid time of {user} expired at {}",
                s.paid_until.format("%Y-%m-%d %H:%M:%S UTC")
            ));
        };
        Ok(Decision::Accept {
            session_timeout: left,
            rate_limit: None,
            kind: UserKind::Subscriber,
        })
    }

    async fn service_named(&self, nas: &Nas, user: &str) -> Result<Option<Service>> {
        Ok(self.repos.services.on_router(nas.router).await?.into_iter().find(
            |s| matches!(&s.connection, Connection::Pppoe { username, .. } if username.as_str() == user),
        ))
    }

    async fn decide_service(
        &self,
        nas: &Nas,
        user: &str,
        service: &Service,
        credentials: &Credentials,
    ) -> Result<Decision> {
        let Connection::Pppoe { password, .. } = &service.connection else {
            return Err(Error::Internal(
                "service_named returns PPPoE services only".into(),
            ));
        };
        if !credentials.proves(password.expose()) {
            return reject("wrong password");
        }
        match service.status {
            ServiceStatus::Active => {}
            ServiceStatus::Suspended => return reject(format!("service of {user} is suspended")),
            other => return reject(format!("service of {user} is disabled ({})", other.as_str())),
        }
        let tenant = self.repos.tenants.get(nas.tenant).await?;
        let now = self.clock.now();
        let today = local_date(now, tenant.time_zone);
        if service.next_billing_date < today {
            return reject(format!(
                "service of {user} expired: paid until {}",
                service.next_billing_date
            ));
        }
        let end = end_of_day(service.next_billing_date, tenant.time_zone);
        let Some(left) = seconds_left(now, end) else {
            return reject(format!(
                "service of {user} expired: paid until {}",
                service.next_billing_date
            ));
        };
        let plan = self.repos.plans.get(service.plan_id).await?;
        Ok(Decision::Accept {
            session_timeout: left,
            rate_limit: plan.rate_limit,
            kind: UserKind::Service,
        })
    }
}

/// Seconds a router should wait between Interim-Updates, as sent in
/// `Acct-Interim-Interval` (at least one).
pub(crate) fn interim_secs(interval: Duration) -> u32 {
    u32::try_from(interval.as_secs()).unwrap_or(u32::MAX).max(1)
}
