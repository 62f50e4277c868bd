//! Notices (SMS) the engine owes, and their delivery state.

use chrono::{DateTime, Utc};

use super::{Lease, NoticeId, PhoneNumber, TenantId};

string_enum! {
    /// Kinds of notice (SMS) the engine owes.
    #[derive(PartialOrd, Ord)]
    pub enum NoticeKind, field "notice_kind" {
        /// Hotspot access ends in about an hour.
        HotspotExpiresSoon = "hotspot_expires_soon",
        /// Hotspot access ended.
        HotspotExpired = "hotspot_expired",
        /// PPP/VPN service ends in 24 h.
        ServiceExpires24h = "service_expires_24h",
        /// PPP/VPN service ends in 3 h.
        ServiceExpires3h = "service_expires_3h",
        /// ISP payment due in 3 days.
        PaymentDue = "payment_due",
        /// A router went offline or came back.
        RouterStateChanged = "router_state_changed",
    }
}

string_enum! {
    /// Delivery state of a notice.
    pub enum NoticeStatus, field "notice_status" {
        /// Not yet handed to the gateway (or the gateway refused it; retried).
        Pending = "pending",
        /// The gateway accepted it.
        Sent = "sent",
        /// Given up (too many failures, a permanent refusal, or a send whose
        /// sender crashed mid-send): never resent, so nobody gets it twice.
        Abandoned = "abandoned",
        /// The gateway may or may not have delivered it (a timeout, a lost
        /// answer): never resent, so nobody gets it twice; counted apart from
        /// `abandoned` because the customer may well have it.
        Unknown = "unknown",
    }
}

/// A message owed to someone, unique per (recipient, kind, deadline, subject).
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
    /// What it is about, part of the key: see [`NewNotice::subject`].
    pub subject: String,
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
    /// What it is about, part of the key: `service:<id>` for a service's
    /// reminders (so a customer with two services due the same day gets one
    /// each); empty where the recipient already tells (a hotspot subscriber's
    /// own notices, router alerts).
    pub subject: String,
    /// Text.
    pub body: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}
