//! Pay-as-you-go hotspot subscribers and the devices they use.

use chrono::{DateTime, Utc};

use super::{DeviceId, Lease, MacAddress, PhoneNumber, RosName, RouterId, SubscriberId, TenantId};

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

/// One expiry to record in a batch ([`SubscriberRepo::complete_expiries`](crate::ports::SubscriberRepo::complete_expiries)):
/// the subscriber and the `paid_until` the caller enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryDone {
    /// The subscriber.
    pub id: SubscriberId,
    /// The `paid_until` the caller saw; an extension meanwhile wins.
    pub paid_until_seen: DateTime<Utc>,
}
