//! Hotspot subscribers and their devices.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    claim_lease, first_by_key, hotspot_name_taken, lease_is_free, next, release_if_held, MemoryStore,
};
use crate::domain::*;
use crate::error::{Error, Result};
use crate::ports::{self, DeviceRepo, SubscriberRepo};

/// [`SubscriberRepo`] over a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemorySubscriberRepo {
    pub(super) store: MemoryStore,
}

fn not_found(id: SubscriberId) -> Error {
    Error::not_found("subscriber", id)
}

#[async_trait]
impl SubscriberRepo for MemorySubscriberRepo {
    async fn insert(&self, new: &NewSubscriber) -> Result<Subscriber> {
        let mut s = self.store.lock();
        if s.subscribers
            .values()
            .any(|x| x.tenant_id == new.tenant_id && x.phone == new.phone)
        {
            return Err(Error::conflict(
                "subscriber",
                format!(
                    "tenant {} already has a subscriber with phone {}",
                    new.tenant_id, new.phone
                ),
            ));
        }
        if hotspot_name_taken(&s, new.tenant_id, &new.username) {
            return Err(ports::hotspot_name_taken(
                "subscriber",
                "username",
                new.tenant_id,
                new.username.as_str(),
            ));
        }
        let id = SubscriberId(next(&mut s.seq.subscriber));
        let sub = Subscriber {
            id,
            tenant_id: new.tenant_id,
            phone: new.phone.clone(),
            username: new.username.clone(),
            paid_until: new.paid_until,
            active: true,
            disconnected_at: None,
            attempts: 0,
            lease: None,
        };
        s.subscribers.insert(id, sub.clone());
        Ok(sub)
    }

    async fn get(&self, id: SubscriberId) -> Result<Subscriber> {
        self.store
            .lock()
            .subscribers
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    async fn find_by_phone(&self, tenant: TenantId, phone: &PhoneNumber) -> Result<Option<Subscriber>> {
        Ok(self
            .store
            .lock()
            .subscribers
            .values()
            .find(|x| x.tenant_id == tenant && &x.phone == phone)
            .cloned())
    }

    async fn extend(&self, id: SubscriberId, paid_until: DateTime<Utc>) -> Result<Subscriber> {
        let mut s = self.store.lock();
        let sub = s.subscribers.get_mut(&id).ok_or_else(|| not_found(id))?;
        sub.paid_until = paid_until;
        sub.active = true;
        sub.disconnected_at = None;
        sub.attempts = 0;
        sub.lease = None;
        Ok(sub.clone())
    }

    async fn list_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Subscriber>> {
        let s = self.store.lock();
        let due = s
            .subscribers
            .values()
            .filter(|x| x.active && x.paid_until <= now)
            .map(|x| (x.paid_until, x.id))
            .collect();
        Ok(first_by_key(due, limit)
            .into_iter()
            .filter_map(|id| s.subscribers.get(&id).cloned())
            .collect())
    }

    async fn claim_expired(&self, claim: &Claim) -> Result<Vec<Subscriber>> {
        let mut s = self.store.lock();
        let due = s
            .subscribers
            .values()
            .filter(|x| x.active && x.paid_until <= claim.now && lease_is_free(x.lease.as_ref(), claim.now))
            .map(|x| (x.paid_until, x.id))
            .collect();
        let mut out = Vec::new();
        for id in first_by_key(due, claim.limit) {
            if let Some(x) = s.subscribers.get_mut(&id) {
                x.lease = claim_lease(claim);
                out.push(x.clone());
            }
        }
        Ok(out)
    }

    async fn expiring_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Subscriber>> {
        let s = self.store.lock();
        let found = s
            .subscribers
            .values()
            .filter(|x| x.active && from < x.paid_until && x.paid_until <= to)
            .map(|x| (x.paid_until, x.id))
            .collect();
        Ok(first_by_key(found, limit)
            .into_iter()
            .filter_map(|id| s.subscribers.get(&id).cloned())
            .collect())
    }

    async fn complete_expiries(
        &self,
        items: &[ExpiryDone],
        holder: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        let mut s = self.store.lock();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let Some(sub) = s.subscribers.get_mut(&item.id) else {
                out.push(false);
                continue;
            };
            release_if_held(&mut sub.lease, holder);
            let done = sub.active && sub.paid_until == item.paid_until_seen;
            if done {
                sub.active = false;
                sub.disconnected_at = Some(at);
                sub.attempts = 0;
            }
            out.push(done);
        }
        Ok(out)
    }

    async fn next_expiry_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .store
            .lock()
            .subscribers
            .values()
            .filter(|x| x.active && x.paid_until > now)
            .map(|x| x.paid_until)
            .min())
    }

    async fn count_entitled(&self, now: DateTime<Utc>) -> Result<u64> {
        let n = self
            .store
            .lock()
            .subscribers
            .values()
            .filter(|x| x.active && x.paid_until > now)
            .count();
        Ok(n as u64)
    }

    async fn active_of_tenant(&self, tenant: TenantId) -> Result<Vec<Subscriber>> {
        Ok(self
            .store
            .lock()
            .subscribers
            .values()
            .filter(|x| x.active && x.tenant_id == tenant)
            .cloned()
            .collect())
    }

    // --- Counts for the health summary (issue 16). ---

    async fn count_expired(&self, now: DateTime<Utc>) -> Result<u64> {
        let s = self.store.lock();
        let n = s
            .subscribers
            .values()
            .filter(|x| x.active && x.paid_until <= now)
            .count();
        Ok(n as u64)
    }

    async fn count_expiring_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<u64> {
        let s = self.store.lock();
        let n = s
            .subscribers
            .values()
            .filter(|x| x.active && from < x.paid_until && x.paid_until <= to)
            .count();
        Ok(n as u64)
    }
}

/// [`DeviceRepo`] over a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryDeviceRepo {
    pub(super) store: MemoryStore,
}

#[async_trait]
impl DeviceRepo for MemoryDeviceRepo {
    async fn record_seen(
        &self,
        subscriber: SubscriberId,
        mac: MacAddress,
        router: Option<RouterId>,
        at: DateTime<Utc>,
    ) -> Result<Device> {
        let mut s = self.store.lock();
        if let Some(d) = s
            .devices
            .values_mut()
            .find(|d| d.subscriber_id == subscriber && d.mac == mac)
        {
            d.router_id = router;
            d.last_seen = at;
            d.active = true;
            return Ok(d.clone());
        }
        let id = DeviceId(next(&mut s.seq.device));
        let d = Device {
            id,
            subscriber_id: subscriber,
            mac,
            router_id: router,
            last_seen: at,
            active: true,
        };
        s.devices.insert(id, d.clone());
        Ok(d)
    }

    async fn active_of(&self, subscribers: &[SubscriberId]) -> Result<Vec<Device>> {
        Ok(self
            .store
            .lock()
            .devices
            .values()
            .filter(|d| d.active && subscribers.contains(&d.subscriber_id))
            .cloned()
            .collect())
    }

    async fn deactivate_all_of(&self, subscribers: &[SubscriberId]) -> Result<u64> {
        let mut s = self.store.lock();
        let mut n = 0;
        for d in s.devices.values_mut() {
            if d.active && subscribers.contains(&d.subscriber_id) {
                d.active = false;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn delete_unseen_since(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let mut s = self.store.lock();
        let before = s.devices.len();
        s.devices.retain(|_, d| d.last_seen >= cutoff);
        Ok((before - s.devices.len()) as u64)
    }
}
