//! Grants: paid time given to a hotspot subscriber, the payment that bought
//! it, and the router work it still owes.

use chrono::{DateTime, Utc};

use super::{Lease, Money, PlanId, RouterId, SubscriberId, TenantId};
use crate::error::{Error, Result};

/// How a grant changes a subscriber's paid time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    /// Adds a plan's duration, from the later of now and the current end.
    Plan(PlanId),
    /// Adds this many seconds, from the later of now and the current end.
    Seconds(u64),
    /// Sets the end to this instant; never earlier than the current end
    /// unless [`Extension::Shorten`] is used.
    Until(DateTime<Utc>),
    /// Sets the end to this instant even when it is earlier (a refund or
    /// abuse): access ends when the instant passes, by the expiry path.
    Shorten(DateTime<Utc>),
}

/// Longest single extension accepted (ten years): a typo, not a purchase.
pub const MAX_EXTENSION_SECS: u64 = 10 * 366 * 86_400;

/// A payment reference: the caller's idempotency key, unique per tenant.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PaymentReference(String);

impl PaymentReference {
    /// Most characters accepted.
    pub const MAX_LEN: usize = 100;

    /// 1 to 100 printable characters, no surrounding space.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(Error::invalid(
                field,
                format!("{raw:?}"),
                "must be 1 to 100 characters",
            ));
        }
        if raw.trim() != raw || raw.chars().any(char::is_control) {
            return Err(Error::invalid(
                field,
                format!("{raw:?}"),
                "must not contain control characters or surrounding spaces",
            ));
        }
        Ok(PaymentReference(raw.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PaymentReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for PaymentReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// A payment that bought a grant (recorded once per tenant and reference).
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    /// Tenant.
    pub tenant_id: TenantId,
    /// The caller's reference (`MP123`), unique per tenant.
    pub reference: PaymentReference,
    /// Who paid.
    pub subscriber_id: SubscriberId,
    /// How much.
    pub amount: Money,
    /// The subscriber's `paid_until` after this payment.
    pub paid_until: DateTime<Utc>,
    /// When recorded.
    pub created_at: DateTime<Utc>,
}

/// A payment to record with a grant.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPayment {
    /// The caller's reference.
    pub reference: PaymentReference,
    /// How much.
    pub amount: Money,
}

/// Router work a grant still owes: make the subscriber's hotspot user exist
/// and be enabled on one router. Unique per (subscriber, router).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingGrant {
    /// The subscriber.
    pub subscriber_id: SubscriberId,
    /// The router.
    pub router_id: RouterId,
    /// When the grant that owes it was written.
    pub created_at: DateTime<Utc>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The last failure, for operators.
    pub last_error: Option<String>,
    /// The caller working on it, or a retry back-off.
    pub lease: Option<Lease>,
}

/// One grant to write atomically: the new paid time, its payment, and a
/// pending grant per router, leased to the writer.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantWrite {
    /// The subscriber.
    pub subscriber_id: SubscriberId,
    /// The `paid_until` the caller computed from (compare-and-set).
    pub paid_until_seen: DateTime<Utc>,
    /// The new `paid_until`.
    pub paid_until: DateTime<Utc>,
    /// The payment, if any.
    pub payment: Option<NewPayment>,
    /// Routers owed the grant (each becomes a [`PendingGrant`], replacing an
    /// older one for the same router).
    pub routers: Vec<RouterId>,
    /// Who writes (the pending grants are leased to it).
    pub holder: String,
    /// The pending grants' lease expiry: if the writer dies, the grant job
    /// takes them after this.
    pub lease_until: DateTime<Utc>,
    /// Now.
    pub at: DateTime<Utc>,
}

/// What writing a grant did.
#[derive(Debug, Clone, PartialEq)]
pub enum GrantWritten {
    /// Written; the subscriber as it is now.
    Applied(super::Subscriber),
    /// The payment reference was already recorded: nothing changed.
    DuplicatePayment(Payment),
    /// `paid_until` is no longer what the caller saw: nothing changed; read
    /// again and recompute.
    Stale,
}
