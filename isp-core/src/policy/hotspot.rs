//! Hotspot expiry (seeds 000, 001): an expired subscriber is cut off on every
//! enabled router of its tenant, not only on the router its device was last
//! seen on, and is owed one "access expired" notice.
//!
//! Promise 2: nobody is cut off before `paid_until` (`paid_until <= now`, minus
//! nothing). Promise 1: the expiry is complete only when every router listed in
//! [`HotspotExpiry::routers`] confirmed ([`HotspotExpiry::is_complete`]).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::domain::{
    Device, DeviceId, MacAddress, NoticeKind, OwnerTag, Router, RouterId, Subscriber, SubscriberId, TenantId,
};
use crate::policy::NoticeDue;
use crate::ports::HotspotTarget;

/// True when access paid until `paid_until` has ended at `now`.
/// The boundary instant itself is expired: access is paid *until* it.
pub fn is_expired(paid_until: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    paid_until <= now
}

/// What to do for one expired subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotspotExpiry {
    /// The subscriber.
    pub subscriber_id: SubscriberId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The `paid_until` this decision was made for (the compare-and-set guard of
    /// [`crate::ports::SubscriberRepoExt::complete_expiry`]).
    pub paid_until: DateTime<Utc>,
    /// Who to cut off: the hotspot user and the MACs of the subscriber's active devices.
    pub target: HotspotTarget,
    /// Every enabled router of the tenant, each of which must confirm (sorted, unique).
    pub routers: Vec<RouterId>,
    /// Active devices to mark inactive once complete.
    pub devices: Vec<DeviceId>,
    /// The "access expired" notice owed (deadline = `paid_until`).
    pub notice: NoticeDue,
}

impl HotspotExpiry {
    /// True when every required router is in `confirmed`. With no enabled
    /// router there is nothing left to cut off, so the expiry is complete.
    pub fn is_complete(&self, confirmed: &BTreeSet<RouterId>) -> bool {
        self.routers.iter().all(|r| confirmed.contains(r))
    }
}

/// Decides what an expiry removes where, or `None` when the subscriber is
/// not due (inactive, or `paid_until` still in the future).
///
/// `devices` may hold devices of other subscribers and `routers` routers of
/// other tenants (a batch's worth): only the subscriber's active devices and
/// the enabled routers of its tenant are used.
pub fn hotspot_expiry(
    subscriber: &Subscriber,
    devices: &[Device],
    routers: &[Router],
    now: DateTime<Utc>,
) -> Option<HotspotExpiry> {
    if !subscriber.active || !is_expired(subscriber.paid_until, now) {
        return None;
    }
    let mine: Vec<&Device> = devices
        .iter()
        .filter(|d| d.subscriber_id == subscriber.id && d.active)
        .collect();
    let macs: BTreeSet<MacAddress> = mine.iter().map(|d| d.mac).collect();
    let device_ids: BTreeSet<DeviceId> = mine.iter().map(|d| d.id).collect();
    let routers: BTreeSet<RouterId> = routers
        .iter()
        .filter(|r| r.enabled && r.tenant_id == subscriber.tenant_id)
        .map(|r| r.id)
        .collect();
    Some(HotspotExpiry {
        subscriber_id: subscriber.id,
        tenant_id: subscriber.tenant_id,
        paid_until: subscriber.paid_until,
        target: HotspotTarget {
            username: Some(subscriber.username.clone()),
            macs: macs.into_iter().collect(),
            owner: OwnerTag::Subscriber(subscriber.id),
            remove_user: false,
        },
        routers: routers.into_iter().collect(),
        devices: device_ids.into_iter().collect(),
        notice: NoticeDue {
            tenant_id: subscriber.tenant_id,
            recipient: subscriber.phone.clone(),
            kind: NoticeKind::HotspotExpired,
            deadline: subscriber.paid_until,
            subject: String::new(),
            send_at: subscriber.paid_until,
        },
    })
}
