//! Domain types: tenants, routers, subscribers and devices, vouchers,
//! services, plans, the ledger, notices and audit events.

mod values;

pub use values::{
    parse_ipv4, Currency, Ipv4Cidr, MacAddress, Money, PhoneNumber, RateLimit, RosDuration, RosName,
};

use std::fmt;
use std::net::Ipv4Addr;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident, $prefix:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "#{}"), self.0)
            }
        }
    };
}

id_type!(/// Tenant (operator) id.
    TenantId, "tenant");
id_type!(/// Router id.
    RouterId, "router");
id_type!(/// Hotspot subscriber id.
    SubscriberId, "subscriber");
id_type!(/// Device id.
    DeviceId, "device");
id_type!(/// Voucher id.
    VoucherId, "voucher");
id_type!(/// Plan id.
    PlanId, "plan");
id_type!(/// ISP customer id.
    CustomerId, "customer");
id_type!(/// ISP service id.
    ServiceId, "service");
id_type!(/// Ledger entry id.
    LedgerEntryId, "ledger");
id_type!(/// Notice id.
    NoticeId, "notice");

/// The comment prefix that marks router objects this engine created.
/// Reconciliation only ever touches objects whose comment starts with it.
pub const OWNER_COMMENT_PREFIX: &str = "isp:";

/// What an object on a router was created for; encoded in its comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerTag {
    /// A hotspot subscriber's object.
    Subscriber(SubscriberId),
    /// A voucher's hotspot user.
    Voucher(VoucherId),
    /// An ISP service's secret, address-list entry or queue.
    Service(ServiceId),
}

impl OwnerTag {
    /// The router comment: `isp:sub:42`, `isp:voucher:7`, `isp:svc:3`.
    pub fn comment(&self) -> String {
        match self {
            OwnerTag::Subscriber(id) => format!("{OWNER_COMMENT_PREFIX}sub:{id}"),
            OwnerTag::Voucher(id) => format!("{OWNER_COMMENT_PREFIX}voucher:{id}"),
            OwnerTag::Service(id) => format!("{OWNER_COMMENT_PREFIX}svc:{id}"),
        }
    }

    /// Reads a comment back; `None` for objects we do not own.
    pub fn from_comment(comment: &str) -> Option<Self> {
        let rest = comment.strip_prefix(OWNER_COMMENT_PREFIX)?;
        let (kind, id) = rest.split_once(':')?;
        let id: i64 = id.split_whitespace().next()?.parse().ok()?;
        match kind {
            "sub" => Some(OwnerTag::Subscriber(SubscriberId(id))),
            "voucher" => Some(OwnerTag::Voucher(VoucherId(id))),
            "svc" => Some(OwnerTag::Service(ServiceId(id))),
            _ => None,
        }
    }
}

/// An operator: owns routers, plans and customers; billing days are local dates in its zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    /// Id.
    pub id: TenantId,
    /// Short stable name (`hotel-abc`), used in logs.
    pub slug: RosName,
    /// Display name.
    pub name: String,
    /// Time zone for local dates (billing days, 09:00 reminders).
    pub time_zone: Tz,
}

/// How the engine talks to a router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// RouterOS API over plain TCP (8728).
    Api,
    /// RouterOS API over TLS (8729).
    ApiSsl,
    /// RouterOS v7 REST over HTTPS.
    Rest,
}

impl Transport {
    /// Parses `api`, `api-ssl` or `rest`.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        match raw.trim() {
            "api" => Ok(Transport::Api),
            "api-ssl" => Ok(Transport::ApiSsl),
            "rest" => Ok(Transport::Rest),
            _ => Err(Error::invalid(field, raw, "expected api, api-ssl or rest")),
        }
    }
}

/// Login for a router. `Debug` never shows the password.
#[derive(Clone)]
pub struct RouterCredentials {
    /// API user name.
    pub username: String,
    /// API password (a secret).
    pub password: SecretString,
}

impl RouterCredentials {
    /// Builds credentials.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        RouterCredentials {
            username: username.into(),
            password: SecretString::from(password.into()),
        }
    }

    /// The password, for the driver's login only.
    pub fn expose_password(&self) -> &str {
        self.password.expose_secret()
    }
}

impl fmt::Debug for RouterCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterCredentials")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

/// A MikroTik router of a tenant.
#[derive(Debug, Clone)]
pub struct Router {
    /// Id.
    pub id: RouterId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Name, used in logs and reports.
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// API, API-SSL or REST.
    pub transport: Transport,
    /// Login.
    pub credentials: RouterCredentials,
    /// SHA-256 fingerprint (hex) of a self-signed certificate to accept.
    pub tls_fingerprint: Option<String>,
    /// Disabled routers are skipped by every job.
    pub enabled: bool,
}

/// A pay-as-you-go hotspot subscriber (seeds 000, 001).
#[derive(Debug, Clone, PartialEq)]
pub struct Subscriber {
    /// Id.
    pub id: SubscriberId,
    /// Owning tenant: expiry removes the subscriber from every router of it.
    pub tenant_id: TenantId,
    /// Phone (also the hotspot user name in the seeds).
    pub phone: PhoneNumber,
    /// Hotspot user name on the routers.
    pub username: RosName,
    /// Paid access ends at this instant.
    pub paid_until: DateTime<Utc>,
    /// True while entitled or not yet confirmed disconnected.
    pub active: bool,
    /// When every router confirmed the disconnect.
    pub disconnected_at: Option<DateTime<Utc>>,
    /// Failed enforcement attempts since the last success.
    pub attempts: u32,
    /// The claim on this item (a daemon working on it, or a retry back-off).
    pub lease: Option<Lease>,
}

/// A new subscriber.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Phone.
    pub phone: PhoneNumber,
    /// Hotspot user name.
    pub username: RosName,
    /// Paid until.
    pub paid_until: DateTime<Utc>,
}

/// A device (MAC) a subscriber used.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// Id.
    pub id: DeviceId,
    /// Owner.
    pub subscriber_id: SubscriberId,
    /// MAC address.
    pub mac: MacAddress,
    /// Router it was last seen on.
    pub router_id: Option<RouterId>,
    /// When it was last seen.
    pub last_seen: DateTime<Utc>,
    /// False once disconnected or cleaned up.
    pub active: bool,
}

/// A claim on an item: who holds it and until when. An expired lease is free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Holder (a daemon id, or `retry` for a back-off).
    pub holder: String,
    /// Free again after this instant.
    pub until: DateTime<Utc>,
}

/// One expiry to record in a batch ([`SubscriberRepo::complete_expiries`](crate::ports::SubscriberRepo::complete_expiries)):
/// the subscriber and the `paid_until` the caller enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryDone {
    /// The subscriber.
    pub id: SubscriberId,
    /// The `paid_until` the caller saw; an extension meanwhile wins.
    pub paid_until_seen: DateTime<Utc>,
}

/// What a claimant asks for when it claims due work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Claimant id (unique per daemon).
    pub holder: String,
    /// The current time (from the `Clock`).
    pub now: DateTime<Utc>,
    /// Lease expiry: if the claimant dies, the item is free again after this.
    pub until: DateTime<Utc>,
    /// Most items to claim.
    pub limit: usize,
}

/// Voucher status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoucherStatus {
    /// Created, never used.
    Unused,
    /// In use: a session started.
    Active,
    /// Time is up (or a deadline passed).
    Expired,
    /// Revoked by an operator.
    Revoked,
}

impl VoucherStatus {
    /// `unused`, `active`, `expired`, `revoked`.
    pub fn as_str(&self) -> &'static str {
        match self {
            VoucherStatus::Unused => "unused",
            VoucherStatus::Active => "active",
            VoucherStatus::Expired => "expired",
            VoucherStatus::Revoked => "revoked",
        }
    }

    /// Inverse of [`VoucherStatus::as_str`].
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        match raw {
            "unused" => Ok(Self::Unused),
            "active" => Ok(Self::Active),
            "expired" => Ok(Self::Expired),
            "revoked" => Ok(Self::Revoked),
            _ => Err(Error::invalid(
                field,
                raw,
                "expected unused, active, expired or revoked",
            )),
        }
    }
}

/// Why a voucher expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoucherExpiryReason {
    /// Never used before its activation deadline.
    ActivationDeadline,
    /// Paid but never activated before its purchase deadline.
    PurchaseDeadline,
    /// Its duration ran out (`expected_end`).
    UsageEnded,
    /// The router's user is gone (sync).
    RouterUserGone,
    /// The router's consumed uptime reached the limit (sync).
    UptimeExhausted,
}

impl VoucherExpiryReason {
    /// Snake-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ActivationDeadline => "activation_deadline",
            Self::PurchaseDeadline => "purchase_deadline",
            Self::UsageEnded => "usage_ended",
            Self::RouterUserGone => "router_user_gone",
            Self::UptimeExhausted => "uptime_exhausted",
        }
    }

    /// Inverse of [`VoucherExpiryReason::as_str`].
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        [
            Self::ActivationDeadline,
            Self::PurchaseDeadline,
            Self::UsageEnded,
            Self::RouterUserGone,
            Self::UptimeExhausted,
        ]
        .into_iter()
        .find(|r| r.as_str() == raw)
        .ok_or_else(|| Error::invalid(field, raw, "unknown voucher expiry reason"))
    }
}

/// A hotspot voucher (seed 003).
#[derive(Debug, Clone, PartialEq)]
pub struct Voucher {
    /// Id.
    pub id: VoucherId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// The router its hotspot user lives on.
    pub router_id: RouterId,
    /// Code (also the hotspot user name).
    pub code: RosName,
    /// Plan.
    pub plan_id: PlanId,
    /// Status.
    pub status: VoucherStatus,
    /// Expires if never used by then.
    pub activation_deadline: Option<DateTime<Utc>>,
    /// Expires if paid but not activated by then.
    pub purchase_deadline: Option<DateTime<Utc>>,
    /// Session length once started.
    pub duration: RosDuration,
    /// When the first session started.
    pub started_at: Option<DateTime<Utc>>,
    /// `started_at + duration`.
    pub expected_end: Option<DateTime<Utc>>,
    /// Why it expired.
    pub expired_reason: Option<VoucherExpiryReason>,
    /// When it expired.
    pub expired_at: Option<DateTime<Utc>>,
    /// True once the router confirmed its hotspot user is gone.
    pub removed_from_router: bool,
    /// Claim / retry back-off.
    pub lease: Option<Lease>,
    /// Failed attempts.
    pub attempts: u32,
}

impl Voucher {
    /// The next instant at which time alone changes this voucher, or `None`.
    ///
    /// Unused: the earlier of the activation and purchase deadlines; active:
    /// `expected_end`; expired but not yet removed from its router: its expiry
    /// (so the removal stays due). Adapters store this as an indexed column.
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        match self.status {
            VoucherStatus::Unused => match (self.activation_deadline, self.purchase_deadline) {
                (Some(a), Some(p)) => Some(a.min(p)),
                (a, p) => a.or(p),
            },
            VoucherStatus::Active => self.expected_end,
            VoucherStatus::Expired | VoucherStatus::Revoked => {
                if self.removed_from_router {
                    None
                } else {
                    self.expired_at.or(self.expected_end)
                }
            }
        }
    }
}

/// A new voucher.
#[derive(Debug, Clone)]
pub struct NewVoucher {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Router.
    pub router_id: RouterId,
    /// Code.
    pub code: RosName,
    /// Plan.
    pub plan_id: PlanId,
    /// Activation deadline.
    pub activation_deadline: Option<DateTime<Utc>>,
    /// Purchase deadline.
    pub purchase_deadline: Option<DateTime<Utc>>,
    /// Session length.
    pub duration: RosDuration,
}

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

/// Status of an ISP service (seed 004).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceStatus {
    /// Should be online.
    Active,
    /// Temporarily off.
    Suspended,
    /// Off.
    Inactive,
    /// Ended for good.
    Terminated,
    /// Not started yet.
    Pending,
}

impl ServiceStatus {
    /// Snake-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Inactive => "inactive",
            Self::Terminated => "terminated",
            Self::Pending => "pending",
        }
    }

    /// Inverse of [`ServiceStatus::as_str`].
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        [
            Self::Active,
            Self::Suspended,
            Self::Inactive,
            Self::Terminated,
            Self::Pending,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
        .ok_or_else(|| {
            Error::invalid(
                field,
                raw,
                "expected active, suspended, inactive, terminated or pending",
            )
        })
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

/// A ledger entry kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    /// A debit for a billing period.
    Charge,
    /// A payment received.
    Payment,
}

/// A charge or payment in a customer's wallet.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    /// Id.
    pub id: LedgerEntryId,
    /// Customer.
    pub customer_id: CustomerId,
    /// Service (charges).
    pub service_id: Option<ServiceId>,
    /// Charge or payment.
    pub kind: LedgerKind,
    /// Amount (positive).
    pub amount: Money,
    /// Billing period start (charges).
    pub period_start: Option<NaiveDate>,
    /// Idempotency key (`charge:svc:3:2026-01-31`), unique.
    pub key: String,
    /// When recorded.
    pub created_at: DateTime<Utc>,
}

/// A new ledger entry.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLedgerEntry {
    /// Customer.
    pub customer_id: CustomerId,
    /// Service.
    pub service_id: Option<ServiceId>,
    /// Kind.
    pub kind: LedgerKind,
    /// Amount.
    pub amount: Money,
    /// Period start.
    pub period_start: Option<NaiveDate>,
    /// Idempotency key.
    pub key: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Kinds of notice (SMS) the engine owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// Hotspot access ends in about an hour.
    HotspotExpiresSoon,
    /// Hotspot access ended.
    HotspotExpired,
    /// PPP/VPN service ends in 24 h.
    ServiceExpires24h,
    /// PPP/VPN service ends in 3 h.
    ServiceExpires3h,
    /// ISP payment due in 3 days.
    PaymentDue,
    /// A router went offline or came back.
    RouterStateChanged,
}

impl NoticeKind {
    /// Snake-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::HotspotExpiresSoon => "hotspot_expires_soon",
            Self::HotspotExpired => "hotspot_expired",
            Self::ServiceExpires24h => "service_expires_24h",
            Self::ServiceExpires3h => "service_expires_3h",
            Self::PaymentDue => "payment_due",
            Self::RouterStateChanged => "router_state_changed",
        }
    }

    /// Inverse of [`NoticeKind::as_str`].
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        [
            Self::HotspotExpiresSoon,
            Self::HotspotExpired,
            Self::ServiceExpires24h,
            Self::ServiceExpires3h,
            Self::PaymentDue,
            Self::RouterStateChanged,
        ]
        .into_iter()
        .find(|k| k.as_str() == raw)
        .ok_or_else(|| Error::invalid(field, raw, "unknown notice kind"))
    }
}

/// Delivery state of a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeStatus {
    /// Not yet handed to the gateway (or the gateway refused it; retried).
    Pending,
    /// The gateway accepted it.
    Sent,
    /// Given up (too many failures, or a send whose outcome is unknown after a crash:
    /// never resent, so nobody gets it twice).
    Abandoned,
}

impl NoticeStatus {
    /// Snake-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Abandoned => "abandoned",
        }
    }

    /// Inverse of [`NoticeStatus::as_str`].
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        match raw {
            "pending" => Ok(Self::Pending),
            "sent" => Ok(Self::Sent),
            "abandoned" => Ok(Self::Abandoned),
            _ => Err(Error::invalid(field, raw, "expected pending, sent or abandoned")),
        }
    }
}

/// A message owed to someone, unique per (recipient, kind, deadline).
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Id.
    pub id: NoticeId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Recipient.
    pub recipient: PhoneNumber,
    /// Kind.
    pub kind: NoticeKind,
    /// The deadline it refers to (expiry instant, due date at local midnight).
    pub deadline: DateTime<Utc>,
    /// Text.
    pub body: String,
    /// Status.
    pub status: NoticeStatus,
    /// Failed sends.
    pub attempts: u32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// When the gateway accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// Claim while sending / retry back-off.
    pub lease: Option<Lease>,
}

/// A new notice.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotice {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Recipient.
    pub recipient: PhoneNumber,
    /// Kind.
    pub kind: NoticeKind,
    /// Deadline.
    pub deadline: DateTime<Utc>,
    /// Text.
    pub body: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// Outcome recorded in an audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// Done and confirmed.
    Success,
    /// Failed; will be retried.
    Retry,
    /// Failed for good.
    Failure,
    /// Nothing to do.
    Skipped,
}

impl AuditOutcome {
    /// Snake-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Retry => "retry",
            Self::Failure => "failure",
            Self::Skipped => "skipped",
        }
    }

    /// Inverse of [`AuditOutcome::as_str`].
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        [Self::Success, Self::Retry, Self::Failure, Self::Skipped]
            .into_iter()
            .find(|o| o.as_str() == raw)
            .ok_or_else(|| Error::invalid(field, raw, "expected success, retry, failure or skipped"))
    }
}

/// One line of the activity log (and, with a router, of that router's log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// Tenant, when known.
    pub tenant_id: Option<TenantId>,
    /// Action (`disconnect`, `provision`, `deprovision`, `charge`, `notice`, `router_offline`...).
    pub action: String,
    /// Subject (`subscriber:42`, `service:3`, `voucher:ABC`).
    pub subject: String,
    /// Router, for router actions.
    pub router_id: Option<RouterId>,
    /// Outcome.
    pub outcome: AuditOutcome,
    /// Reason or error text (never a secret).
    pub reason: Option<String>,
}

/// Last known health of a router, kept to alert on changes only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouterStatus {
    /// Router.
    pub router_id: RouterId,
    /// Reachable at the last check.
    pub online: bool,
    /// Last check.
    pub checked_at: DateTime<Utc>,
    /// When `online` last changed.
    pub changed_at: DateTime<Utc>,
    /// Router clock minus our clock, seconds (when known).
    pub clock_skew_secs: Option<i64>,
    /// RouterOS version (when known).
    pub version: Option<String>,
    /// Last error (when offline).
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_tags_round_trip() {
        for t in [
            OwnerTag::Subscriber(SubscriberId(42)),
            OwnerTag::Voucher(VoucherId(7)),
            OwnerTag::Service(ServiceId(3)),
        ] {
            assert_eq!(OwnerTag::from_comment(&t.comment()), Some(t));
        }
        assert_eq!(OwnerTag::from_comment("made by hand"), None);
        assert_eq!(OwnerTag::from_comment("isp:other:1"), None);
    }

    #[test]
    fn secrets_are_not_debugged() {
        let c = RouterCredentials::new("admin", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
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
