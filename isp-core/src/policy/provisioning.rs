//! Provisioning (seed 004): whether a service's router state must change.
//!
//! A service is *entitled* when its status is active and it is paid up to
//! today (`next_billing_date >= today`, tenant-local). Then:
//!
//! | entitled | provisioned | decision |
//! |---|---|---|
//! | yes | no | provision |
//! | no | yes | deprovision, with the reason |
//! | otherwise | | nothing |
//!
//! Connection details are validated types ([`Connection`]), so a service
//! always has usable ones.

use std::fmt;

use chrono::NaiveDate;

use crate::domain::Ipv4Cidr;
use crate::domain::{Connection, OwnerTag, Plan, RosName, Service, ServiceId, ServiceStatus};
use crate::error::Result;
use crate::ports::{PppoeSpec, QueueSpec, StaticIpSpec};

/// Why a service loses its router access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeprovisionReason {
    /// Its status is not active.
    Status(ServiceStatus),
    /// It is past its due date.
    PastDue {
        /// The due date that passed.
        due: NaiveDate,
    },
}

impl fmt::Display for DeprovisionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeprovisionReason::Status(s) => write!(f, "status {}", s.as_str()),
            DeprovisionReason::PastDue { due } => write!(f, "past due date {due}"),
        }
    }
}

impl DeprovisionReason {
    /// A short key for report counts: `status_suspended`, `past_due`.
    pub fn key(&self) -> String {
        match self {
            DeprovisionReason::Status(s) => format!("status_{}", s.as_str()),
            DeprovisionReason::PastDue { .. } => "past_due".to_owned(),
        }
    }
}

/// What to do with a service's router state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionDecision {
    /// Create the PPPoE secret or address-list entry (and queue).
    Provision,
    /// Remove them.
    Deprovision(DeprovisionReason),
    /// The router state is right.
    Nothing,
}

/// Active and paid up to `today` (tenant-local).
pub fn is_entitled(service: &Service, today: NaiveDate) -> bool {
    service.status == ServiceStatus::Active && service.next_billing_date >= today
}

/// Why a service is not entitled on `today`, or `None` when it is.
pub fn not_entitled_reason(service: &Service, today: NaiveDate) -> Option<DeprovisionReason> {
    if service.status != ServiceStatus::Active {
        Some(DeprovisionReason::Status(service.status))
    } else if service.next_billing_date < today {
        Some(DeprovisionReason::PastDue {
            due: service.next_billing_date,
        })
    } else {
        None
    }
}

/// The provisioning decision for `service` on `today` (tenant-local).
pub fn provisioning_decision(service: &Service, today: NaiveDate) -> ProvisionDecision {
    match (not_entitled_reason(service, today), service.provisioned) {
        (None, false) => ProvisionDecision::Provision,
        (Some(reason), true) => ProvisionDecision::Deprovision(reason),
        _ => ProvisionDecision::Nothing,
    }
}

/// The PPPoE secret of a PPPoE service.
pub fn pppoe_spec(service: &Service) -> Option<PppoeSpec> {
    match &service.connection {
        Connection::Pppoe {
            username,
            password,
            profile,
        } => Some(PppoeSpec {
            username: username.clone(),
            password: password.clone(),
            profile: profile.clone(),
            owner: OwnerTag::Service(service.id),
        }),
        Connection::StaticIp { .. } => None,
    }
}

/// The address-list entry of a static-IP service.
pub fn static_ip_spec(service: &Service, list: &RosName) -> Option<StaticIpSpec> {
    match &service.connection {
        Connection::StaticIp { address } => Some(StaticIpSpec {
            address: *address,
            list: list.clone(),
            owner: OwnerTag::Service(service.id),
        }),
        Connection::Pppoe { .. } => None,
    }
}

/// The simple-queue name of a service: `isp-svc-{id}`.
pub fn queue_name(service: ServiceId) -> Result<RosName> {
    RosName::parse("queue_name", &format!("isp-svc-{service}"))
}

/// The rate-limit queue of a static-IP service whose plan has a rate limit.
/// PPPoE services are limited by their PPP profile, so they get no queue.
pub fn queue_spec(service: &Service, plan: &Plan) -> Result<Option<QueueSpec>> {
    let (Connection::StaticIp { address }, Some(limit)) = (&service.connection, plan.rate_limit) else {
        return Ok(None);
    };
    Ok(Some(QueueSpec {
        name: queue_name(service.id)?,
        target: Ipv4Cidr::host(*address),
        limit,
        owner: OwnerTag::Service(service.id),
    }))
}
