//! Subscribers and their devices.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use isp_core::domain::*;
use isp_core::ports::{DeviceRepo, SubscriberRepo};
use isp_core::{Error, Result};
use mongodb::bson::{self, doc, Bson};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::{and_into, any_of, claim_loop, find_vec, guarded, me, update_matched, HasId, BATCH_CHUNK};
use crate::codec::*;
use crate::collections::{DEVICES, SUBSCRIBERS};
use crate::error::is_duplicate_key;
use crate::Ctx;

const SUB: &str = "subscriber";
const DEV: &str = "device";

#[derive(Debug, Serialize, Deserialize)]
struct SubscriberDoc {
    #[serde(rename = "_id")]
    id: i64,
    tenant_id: i64,
    phone: String,
    username: String,
    paid_until: bson::DateTime,
    active: bool,
    disconnected_at: Option<bson::DateTime>,
    attempts: i64,
    lease: LeaseDoc,
}

impl HasId for SubscriberDoc {
    fn id(&self) -> i64 {
        self.id
    }
}

impl SubscriberDoc {
    fn into_domain(self) -> Result<Subscriber> {
        Ok(Subscriber {
            id: SubscriberId(self.id),
            tenant_id: TenantId(self.tenant_id),
            phone: PhoneNumber::parse("phone", &self.phone).map_err(stored_err)?,
            username: RosName::parse("username", &self.username).map_err(stored_err)?,
            paid_until: from_bdate("paid_until", self.paid_until)?,
            active: self.active,
            disconnected_at: from_opt_bdate("disconnected_at", self.disconnected_at)?,
            attempts: to_u32("attempts", self.attempts)?,
            lease: self.lease.into_domain()?,
        })
    }
}

fn subs(docs: Vec<SubscriberDoc>) -> Result<Vec<Subscriber>> {
    docs.into_iter().map(SubscriberDoc::into_domain).collect()
}

/// [`SubscriberRepo`] on the `subscribers` collection.
#[derive(Debug)]
pub(crate) struct MongoSubscriberRepo(pub(crate) Ctx);

impl MongoSubscriberRepo {
    fn coll(&self) -> Collection<SubscriberDoc> {
        self.0.coll(SUBSCRIBERS)
    }
}

fn by_paid_until() -> bson::Document {
    doc! { "paid_until": 1, "_id": 1 }
}

#[async_trait]
impl SubscriberRepo for MongoSubscriberRepo {
    async fn insert(&self, new: &NewSubscriber) -> Result<Subscriber> {
        let id = self.0.next_id(SUBSCRIBERS).await?;
        let d = SubscriberDoc {
            id,
            tenant_id: new.tenant_id.0,
            phone: new.phone.as_str().to_owned(),
            username: new.username.as_str().to_owned(),
            paid_until: to_bdate(new.paid_until),
            active: true,
            disconnected_at: None,
            attempts: 0,
            lease: LeaseDoc::none(),
        };
        self.coll().insert_one(&d).await.map_err(|e| {
            if is_duplicate_key(&e) {
                Error::conflict(
                    SUB,
                    format!(
                        "tenant {} already has a subscriber with phone {}",
                        new.tenant_id, new.phone
                    ),
                )
            } else {
                me(SUB)(e)
            }
        })?;
        d.into_domain()
    }

    async fn get(&self, id: SubscriberId) -> Result<Subscriber> {
        self.coll()
            .find_one(doc! { "_id": id.0 })
            .await
            .map_err(me(SUB))?
            .ok_or_else(|| Error::not_found(SUB, id))?
            .into_domain()
    }

    async fn find_by_phone(&self, tenant: TenantId, phone: &PhoneNumber) -> Result<Option<Subscriber>> {
        self.coll()
            .find_one(doc! { "tenant_id": tenant.0, "phone": phone.as_str() })
            .await
            .map_err(me(SUB))?
            .map(SubscriberDoc::into_domain)
            .transpose()
    }

    async fn extend(&self, id: SubscriberId, paid_until: DateTime<Utc>) -> Result<Subscriber> {
        self.coll()
            .find_one_and_update(
                doc! { "_id": id.0 },
                guarded(doc! { "$set": {
                    "paid_until": to_bdate(paid_until),
                    "active": true,
                    "disconnected_at": Bson::Null,
                    "attempts": 0_i64,
                    "lease": no_lease(),
                } }),
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(me(SUB))?
            .ok_or_else(|| Error::not_found(SUB, id))?
            .into_domain()
    }

    async fn list_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Subscriber>> {
        let filter = doc! { "active": true, "paid_until": { "$lte": to_bdate(now) } };
        subs(find_vec(&self.coll(), SUB, filter, by_paid_until(), Some(limit)).await?)
    }

    async fn claim_expired(&self, claim: &Claim) -> Result<Vec<Subscriber>> {
        let due = doc! { "active": true, "paid_until": { "$lte": to_bdate(claim.now) } };
        subs(claim_loop(&self.coll(), SUB, due, by_paid_until(), claim).await?)
    }

    async fn expiring_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Subscriber>> {
        let filter = doc! {
            "active": true,
            "paid_until": { "$gt": to_bdate(from), "$lte": to_bdate(to) },
        };
        subs(find_vec(&self.coll(), SUB, filter, by_paid_until(), Some(limit)).await?)
    }

    async fn complete_expiries(
        &self,
        items: &[ExpiryDone],
        holder: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            // Compare-and-set: only the entitlement the caller saw is ended; an
            // extension meanwhile changed `paid_until` (or cleared `active`) and wins.
            let done = update_matched(
                &self.coll(),
                SUB,
                doc! { "_id": item.id.0, "active": true, "paid_until": to_bdate(item.paid_until_seen) },
                doc! { "$set": { "active": false, "disconnected_at": to_bdate(at), "attempts": 0_i64 } },
            )
            .await?;
            // The caller's lease goes either way (and only the caller's).
            update_matched(
                &self.coll(),
                SUB,
                doc! { "_id": item.id.0, "lease.holder": holder },
                doc! { "$set": { "lease": no_lease() } },
            )
            .await?;
            out.push(done);
        }
        Ok(out)
    }
    async fn next_expiry_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let filter = doc! { "active": true, "paid_until": { "$gt": to_bdate(now) } };
        let first = find_vec(&self.coll(), SUB, filter, by_paid_until(), Some(1)).await?;
        first
            .into_iter()
            .next()
            .map(|d| from_bdate("paid_until", d.paid_until))
            .transpose()
    }

    async fn count_entitled(&self, now: DateTime<Utc>) -> Result<u64> {
        self.coll()
            .count_documents(doc! { "active": true, "paid_until": { "$gt": to_bdate(now) } })
            .await
            .map_err(me(SUB))
    }

    async fn active_of_tenant(&self, tenant: TenantId) -> Result<Vec<Subscriber>> {
        let filter = doc! { "tenant_id": tenant.0, "active": true };
        subs(find_vec(&self.coll(), SUB, filter, doc! { "_id": 1 }, None).await?)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct DeviceDoc {
    #[serde(rename = "_id")]
    id: i64,
    subscriber_id: i64,
    mac: String,
    router_id: Option<i64>,
    last_seen: bson::DateTime,
    active: bool,
}

impl DeviceDoc {
    fn into_domain(self) -> Result<Device> {
        Ok(Device {
            id: DeviceId(self.id),
            subscriber_id: SubscriberId(self.subscriber_id),
            mac: MacAddress::parse("mac", &self.mac).map_err(stored_err)?,
            router_id: self.router_id.map(RouterId),
            last_seen: from_bdate("last_seen", self.last_seen)?,
            active: self.active,
        })
    }
}

/// [`DeviceRepo`] on the `devices` collection.
#[derive(Debug)]
pub(crate) struct MongoDeviceRepo(pub(crate) Ctx);

impl MongoDeviceRepo {
    fn coll(&self) -> Collection<DeviceDoc> {
        self.0.coll(DEVICES)
    }
}

#[async_trait]
impl DeviceRepo for MongoDeviceRepo {
    async fn record_seen(
        &self,
        subscriber: SubscriberId,
        mac: MacAddress,
        router: Option<RouterId>,
        at: DateTime<Utc>,
    ) -> Result<Device> {
        let key = doc! { "subscriber_id": subscriber.0, "mac": mac.to_string() };
        let update = doc! { "$set": {
            "router_id": router.map(|r| r.0),
            "last_seen": to_bdate(at),
            "active": true,
        } };
        // Update the existing record; else insert one. The unique index on
        // (subscriber, mac) turns a concurrent insert into a duplicate key, after
        // which the update finds the winner's record.
        for _ in 0..3 {
            let found = self
                .coll()
                .find_one_and_update(key.clone(), guarded(update.clone()))
                .return_document(ReturnDocument::After)
                .await
                .map_err(me(DEV))?;
            if let Some(d) = found {
                return d.into_domain();
            }
            let d = DeviceDoc {
                id: self.0.next_id(DEVICES).await?,
                subscriber_id: subscriber.0,
                mac: mac.to_string(),
                router_id: router.map(|r| r.0),
                last_seen: to_bdate(at),
                active: true,
            };
            match self.coll().insert_one(&d).await {
                Ok(_) => return d.into_domain(),
                Err(e) if is_duplicate_key(&e) => continue,
                Err(e) => return Err(me(DEV)(e)),
            }
        }
        Err(Error::conflict(
            DEV,
            format!("device {mac} of subscriber {subscriber} kept changing"),
        ))
    }

    async fn active_of(&self, subscribers: &[SubscriberId]) -> Result<Vec<Device>> {
        if subscribers.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = subscribers.iter().map(|s| s.0).collect();
        let filter = doc! { "subscriber_id": { "$in": ids }, "active": true };
        find_vec(
            &self.coll(),
            DEV,
            filter,
            doc! { "subscriber_id": 1, "_id": 1 },
            None,
        )
        .await?
        .into_iter()
        .map(DeviceDoc::into_domain)
        .collect()
    }

    async fn deactivate_all_of(&self, subscribers: &[SubscriberId]) -> Result<u64> {
        let mut n = 0;
        for chunk in subscribers.chunks(BATCH_CHUNK) {
            let ids: Vec<i64> = chunk.iter().map(|s| s.0).collect();
            let r = self
                .coll()
                .update_many(
                    and_into(doc! { "active": true }, any_of("subscriber_id", &ids)),
                    doc! { "$set": { "active": false } },
                )
                .await
                .map_err(me(DEV))?;
            // The filter only matches devices that change, so matched = changed.
            n += r.matched_count;
        }
        Ok(n)
    }

    async fn delete_unseen_since(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let r = self
            .coll()
            .delete_many(doc! { "last_seen": { "$lt": to_bdate(cutoff) } })
            .await
            .map_err(me(DEV))?;
        Ok(r.deleted_count)
    }
}
