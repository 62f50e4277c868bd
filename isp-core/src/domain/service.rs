//! ISP customers, plans and services: a PPPoE or static-IP connection billed monthly.

use std::fmt;
use std::net::Ipv4Addr;

use chrono::{DateTime, NaiveDate, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::{
    CustomerId, Lease, Money, PhoneNumber, PlanId, RateLimit, RosDuration, RosName, RouterId, ServiceId,
    TenantId,
};
use crate::error::{Error, Result};

/// A price plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Id.
    pub id: PlanId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Name (also the PPP profile when none is given).
    pub name: RosName,
    /// Price per period.
    pub price: Money,
    /// Access length for hotspot and voucher plans.
    pub duration: Option<RosDuration>,
    /// Rate limit applied with a simple queue.
    pub rate_limit: Option<RateLimit>,
}

/// A new plan.
#[derive(Debug, Clone)]
pub struct NewPlan {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Name.
    pub name: RosName,
    /// Price.
    pub price: Money,
    /// Duration.
    pub duration: Option<RosDuration>,
    /// Rate limit.
    pub rate_limit: Option<RateLimit>,
}

/// An ISP customer (wallet owner).
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    /// Id.
    pub id: CustomerId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Name.
    pub name: String,
    /// Phone for reminders.
    pub phone: Option<PhoneNumber>,
}

/// A new customer.
#[derive(Debug, Clone)]
pub struct NewCustomer {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Name.
    pub name: String,
    /// Phone.
    pub phone: Option<PhoneNumber>,
}

string_enum! {
    /// Status of an ISP service (seed 004).
    pub enum ServiceStatus, field "service_status" {
        /// Should be online.
        Active = "active",
        /// Temporarily off.
        Suspended = "suspended",
        /// Off.
        Inactive = "inactive",
        /// Ended for good.
        Terminated = "terminated",
        /// Not started yet.
        Pending = "pending",
    }
}

/// How a service reaches the customer.
#[derive(Clone, PartialEq)]
pub enum Connection {
    /// A PPPoE secret.
    Pppoe {
        /// Secret name.
        username: RosName,
        /// Secret password (never logged).
        password: SecretPassword,
        /// PPP profile.
        profile: RosName,
    },
    /// A static address allowed through an address list.
    StaticIp {
        /// The customer's address.
        address: Ipv4Addr,
    },
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Connection::Pppoe {
                username, profile, ..
            } => f
                .debug_struct("Pppoe")
                .field("username", username)
                .field("password", &"[REDACTED]")
                .field("profile", profile)
                .finish(),
            Connection::StaticIp { address } => f.debug_struct("StaticIp").field("address", address).finish(),
        }
    }
}

/// A password stored with a service; compared by value, never shown by `Debug` or `Display`.
#[derive(Clone)]
pub struct SecretPassword(SecretString);

impl SecretPassword {
    /// Validates a PPP password: 1 to 128 bytes, no control characters.
    /// The error never includes the value.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        if raw.is_empty() || raw.len() > 128 || raw.chars().any(char::is_control) {
            return Err(Error::invalid(
                field,
                "[REDACTED]",
                "1 to 128 bytes without control characters",
            ));
        }
        Ok(SecretPassword(SecretString::from(raw.to_owned())))
    }

    /// The password, for the router driver and storage only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for SecretPassword {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl fmt::Debug for SecretPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// An ISP service: a PPPoE or static-IP connection on one router, billed monthly.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Id.
    pub id: ServiceId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Customer (wallet).
    pub customer_id: CustomerId,
    /// Router it is provisioned on.
    pub router_id: RouterId,
    /// Plan (price, rate limit).
    pub plan_id: PlanId,
    /// Status.
    pub status: ServiceStatus,
    /// Connection details.
    pub connection: Connection,
    /// Due date (tenant-local): paid up to and including this day.
    pub next_billing_date: NaiveDate,
    /// Day of month the billing period starts on (1..=31; clamped in short months).
    pub billing_day: u32,
    /// Start of the next period to charge (tenant-local date).
    pub next_charge_on: NaiveDate,
    /// True once the router confirmed the secret / address-list entry exists.
    pub provisioned: bool,
    /// When last provisioned.
    pub provisioned_at: Option<DateTime<Utc>>,
    /// When last deprovisioned.
    pub deprovisioned_at: Option<DateTime<Utc>>,
    /// Claim / retry back-off.
    pub lease: Option<Lease>,
    /// Failed attempts since the last success.
    pub attempts: u32,
}

/// A new service.
#[derive(Debug, Clone)]
pub struct NewService {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Customer.
    pub customer_id: CustomerId,
    /// Router.
    pub router_id: RouterId,
    /// Plan.
    pub plan_id: PlanId,
    /// Status.
    pub status: ServiceStatus,
    /// Connection.
    pub connection: Connection,
    /// Due date.
    pub next_billing_date: NaiveDate,
    /// Billing day of month.
    pub billing_day: u32,
    /// First period to charge.
    pub next_charge_on: NaiveDate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_not_debugged() {
        let conn = Connection::Pppoe {
            username: RosName::parse("u", "bob").unwrap(),
            password: SecretPassword::parse("p", "s3cret").unwrap(),
            profile: RosName::parse("p", "default").unwrap(),
        };
        assert!(!format!("{conn:?}").contains("s3cret"));
        let e = SecretPassword::parse("password", "bad\npass").unwrap_err();
        assert!(!e.to_string().contains("bad"));
    }
}
