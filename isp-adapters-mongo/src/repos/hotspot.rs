//! Subscribers and their devices.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use isp_core::domain::*;
use isp_core::ports::{hotspot_name_taken, DeviceRepo, SubscriberRepo};
use isp_core::{Error, Result};
use mongodb::bson::{self, doc, Bson};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::within;
use super::{and_into, any_of, claim_loop, find_vec, guarded, me, update_matched, HasId, BATCH_CHUNK};
use crate::codec::*;
use crate::collections::{DEVICES, HOTSPOT_NAMES, SUBSCRIBERS, VOUCHERS};
use crate::error::is_duplicate_key;
use crate::Ctx;

const SUB: &str = "subscriber";
const DEV: &str = "device";

/// A reservation of a hotspot user name in `hotspot_names`.
///
/// One namespace per tenant for subscribers' usernames and vouchers' codes.
/// Its key is the document `_id` (`"<tenant>/<name>"`), unique on every
/// server without a secondary index: a compound unique index across two
/// collections does not exist in MongoDB, and nx-27017 ignores partial
/// indexes. There are no multi-document transactions either (nx-27017 has
/// none), so an insert reserves the name first, then writes its item, and
/// deletes the reservation again if that write fails: a crash in between can
/// leave a reservation without its item, never an item without its
/// reservation. Such an orphan (owner missing, older than [`ORPHAN_AFTER`]) is
/// taken over by the next insert of that name.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct NameDoc {
    #[serde(rename = "_id")]
    key: String,
    tenant_id: i64,
    name: String,
    /// `subscriber` or `voucher`.
    kind: String,
    owner_id: i64,
    /// When it was reserved (this host's clock; only compared with
    /// [`ORPHAN_AFTER`]).
    at: bson::DateTime,
}

/// How old a reservation whose item does not exist must be before another
/// insert takes it over (an insert in flight writes its item within
/// milliseconds of reserving).
const ORPHAN_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// The key of a hotspot user name.
fn name_key(tenant: TenantId, name: &str) -> String {
    format!("{}/{name}", tenant.0)
}

/// The item kinds that own hotspot user names.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NameOwner {
    /// A subscriber's `username`.
    Subscriber,
    /// A voucher's `code`.
    Voucher,
}

impl NameOwner {
    fn kind(self) -> &'static str {
        match self {
            NameOwner::Subscriber => "subscriber",
            NameOwner::Voucher => "voucher",
        }
    }
    fn field(self) -> &'static str {
        match self {
            NameOwner::Subscriber => "username",
            NameOwner::Voucher => "code",
        }
    }
    fn collection(kind: &str) -> &'static str {
        if kind == "voucher" {
            VOUCHERS
        } else {
            SUBSCRIBERS
        }
    }
}

/// Reserves `name` in `tenant` for the item `owner_id` (not yet written), or
/// gives the [`hotspot_name_taken`] conflict. Release it with
/// [`release_name`] if the item is then not written.
pub(crate) async fn reserve_name(
    ctx: &Ctx,
    owner: NameOwner,
    tenant: TenantId,
    name: &str,
    owner_id: i64,
) -> Result<()> {
    let entity = owner.kind();
    let coll: Collection<NameDoc> = ctx.coll(HOTSPOT_NAMES);
    let new = NameDoc {
        key: name_key(tenant, name),
        tenant_id: tenant.0,
        name: name.to_owned(),
        kind: entity.to_owned(),
        owner_id,
        at: bson::DateTime::now(),
    };
    let taken = || hotspot_name_taken(entity, owner.field(), tenant, name);
    match coll.insert_one(&new).await {
        Ok(_) => return Ok(()),
        Err(e) if is_duplicate_key(&e) => {}
        Err(e) => return Err(me(entity)(e)),
    }
    let Some(old) = coll
        .find_one(doc! { "_id": &new.key })
        .await
        .map_err(me(entity))?
    else {
        return Err(taken());
    };
    let owner_exists = ctx
        .db
        .collection::<bson::Document>(NameOwner::collection(&old.kind))
        .find_one(doc! { "_id": old.owner_id })
        .await
        .map_err(me(entity))?
        .is_some();
    let age = bson::DateTime::now()
        .timestamp_millis()
        .saturating_sub(old.at.timestamp_millis());
    let orphan_age = i64::try_from(ORPHAN_AFTER.as_millis()).unwrap_or(i64::MAX);
    if owner_exists || age < orphan_age {
        return Err(taken());
    }
    let replaced = coll
        .replace_one(
            doc! { "_id": &new.key, "kind": &old.kind, "owner_id": old.owner_id },
            &new,
        )
        .await
        .map_err(me(entity))?;
    if replaced.matched_count == 1 {
        Ok(())
    } else {
        Err(taken())
    }
}

/// Deletes the reservation of `name` by `owner_id` (its item was not written).
pub(crate) async fn release_name(
    ctx: &Ctx,
    owner: NameOwner,
    tenant: TenantId,
    name: &str,
    owner_id: i64,
) -> Result<()> {
    ctx.coll::<NameDoc>(HOTSPOT_NAMES)
        .delete_one(doc! { "_id": name_key(tenant, name), "kind": owner.kind(), "owner_id": owner_id })
        .await
        .map_err(me(owner.kind()))?;
    Ok(())
}

/// Reserves the name of every subscriber and voucher written before
/// `hotspot_names` existed (or by another tool). Skipped when there are at
/// least as many reservations as items. A name already reserved by its own
/// item is fine; one reserved by another item means two stored items share a
/// hotspot user name: `Conflict` naming both, to be resolved by hand.
pub(crate) async fn backfill_names(ctx: &Ctx) -> Result<()> {
    let names: Collection<NameDoc> = ctx.coll(HOTSPOT_NAMES);
    let count = |c: &'static str| {
        let coll = ctx.db.collection::<bson::Document>(c);
        async move { coll.estimated_document_count().await.map_err(me("hotspot name")) }
    };
    if count(HOTSPOT_NAMES).await? >= count(SUBSCRIBERS).await? + count(VOUCHERS).await? {
        return Ok(());
    }
    for (owner, coll, field) in [
        (NameOwner::Subscriber, SUBSCRIBERS, "username"),
        (NameOwner::Voucher, VOUCHERS, "code"),
    ] {
        let mut cursor = ctx
            .db
            .collection::<bson::Document>(coll)
            .find(doc! {})
            .projection(doc! { "_id": 1, "tenant_id": 1, field: 1 })
            .await
            .map_err(me(owner.kind()))?;
        while let Some(item) = cursor.try_next().await.map_err(me(owner.kind()))? {
            // Integers as any integer type: nx-27017 hands small ones back as int32.
            let int = |key: &str| match item.get(key) {
                Some(Bson::Int64(n)) => Some(*n),
                Some(Bson::Int32(n)) => Some(i64::from(*n)),
                _ => None,
            };
            let (Some(id), Some(tenant), Ok(name)) = (int("_id"), int("tenant_id"), item.get_str(field))
            else {
                return Err(Error::invalid(
                    format!("{coll}.{field}"),
                    item.get("_id").map(ToString::to_string).unwrap_or_default(),
                    "a stored item without an integer _id and tenant_id and a string name",
                ));
            };
            let tenant = TenantId(tenant);
            let new = NameDoc {
                key: name_key(tenant, name),
                tenant_id: tenant.0,
                name: name.to_owned(),
                kind: owner.kind().to_owned(),
                owner_id: id,
                at: bson::DateTime::now(),
            };
            match names.insert_one(&new).await {
                Ok(_) => continue,
                Err(e) if is_duplicate_key(&e) => {}
                Err(e) => return Err(me(owner.kind())(e)),
            }
            let held = names
                .find_one(doc! { "_id": &new.key })
                .await
                .map_err(me(owner.kind()))?;
            if let Some(held) = held.filter(|h| h.kind != new.kind || h.owner_id != id) {
                return Err(Error::conflict(
                    owner.kind(),
                    format!(
                        "{} {name:?} of {} {id} is also the hotspot user name of {} {} in tenant {tenant}; \
                         rename one of them",
                        owner.field(),
                        owner.kind(),
                        held.kind,
                        held.owner_id
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A subscriber as stored (`repos::grants` extends it with the same fields as
/// [`SubscriberRepo::extend`]).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SubscriberDoc {
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
    pub(super) fn into_domain(self) -> Result<Subscriber> {
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
        within(self.0.operation_timeout, async {
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
            let name = new.username.as_str();
            reserve_name(&self.0, NameOwner::Subscriber, new.tenant_id, name, id).await?;
            let written = self.coll().insert_one(&d).await;
            if written.is_err() {
                release_name(&self.0, NameOwner::Subscriber, new.tenant_id, name, id).await?;
            }
            written.map_err(|e| {
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
        })
        .await
    }

    async fn get(&self, id: SubscriberId) -> Result<Subscriber> {
        within(self.0.operation_timeout, async {
            self.coll()
                .find_one(doc! { "_id": id.0 })
                .await
                .map_err(me(SUB))?
                .ok_or_else(|| Error::not_found(SUB, id))?
                .into_domain()
        })
        .await
    }

    async fn find_by_phone(&self, tenant: TenantId, phone: &PhoneNumber) -> Result<Option<Subscriber>> {
        within(self.0.operation_timeout, async {
            self.coll()
                .find_one(doc! { "tenant_id": tenant.0, "phone": phone.as_str() })
                .await
                .map_err(me(SUB))?
                .map(SubscriberDoc::into_domain)
                .transpose()
        })
        .await
    }

    async fn extend(&self, id: SubscriberId, paid_until: DateTime<Utc>) -> Result<Subscriber> {
        within(self.0.operation_timeout, async {
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
        })
        .await
    }

    async fn list_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Subscriber>> {
        within(self.0.operation_timeout, async {
            let filter = doc! { "active": true, "paid_until": { "$lte": to_bdate(now) } };
            subs(find_vec(&self.coll(), SUB, filter, by_paid_until(), Some(limit)).await?)
        })
        .await
    }

    async fn claim_expired(&self, claim: &Claim) -> Result<Vec<Subscriber>> {
        within(self.0.operation_timeout, async {
            let due = doc! { "active": true, "paid_until": { "$lte": to_bdate(claim.now) } };
            subs(claim_loop(&self.coll(), SUB, due, by_paid_until(), claim).await?)
        })
        .await
    }

    async fn expiring_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Subscriber>> {
        within(self.0.operation_timeout, async {
            let filter = doc! {
                "active": true,
                "paid_until": { "$gt": to_bdate(from), "$lte": to_bdate(to) },
            };
            subs(find_vec(&self.coll(), SUB, filter, by_paid_until(), Some(limit)).await?)
        })
        .await
    }

    async fn complete_expiries(
        &self,
        items: &[ExpiryDone],
        holder: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        within(self.0.operation_timeout, async {
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
        })
        .await
    }
    async fn next_expiry_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        within(self.0.operation_timeout, async {
            let filter = doc! { "active": true, "paid_until": { "$gt": to_bdate(now) } };
            let first = find_vec(&self.coll(), SUB, filter, by_paid_until(), Some(1)).await?;
            first
                .into_iter()
                .next()
                .map(|d| from_bdate("paid_until", d.paid_until))
                .transpose()
        })
        .await
    }

    async fn count_entitled(&self, now: DateTime<Utc>) -> Result<u64> {
        within(self.0.operation_timeout, async {
            self.coll()
                .count_documents(doc! { "active": true, "paid_until": { "$gt": to_bdate(now) } })
                .await
                .map_err(me(SUB))
        })
        .await
    }

    async fn active_of_tenant(&self, tenant: TenantId) -> Result<Vec<Subscriber>> {
        within(self.0.operation_timeout, async {
            let filter = doc! { "tenant_id": tenant.0, "active": true };
            subs(find_vec(&self.coll(), SUB, filter, doc! { "_id": 1 }, None).await?)
        })
        .await
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
        within(self.0.operation_timeout, async {
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
        })
        .await
    }

    async fn active_of(&self, subscribers: &[SubscriberId]) -> Result<Vec<Device>> {
        within(self.0.operation_timeout, async {
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
        })
        .await
    }

    async fn deactivate_all_of(&self, subscribers: &[SubscriberId]) -> Result<u64> {
        within(self.0.operation_timeout, async {
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
        })
        .await
    }

    async fn delete_unseen_since(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        within(self.0.operation_timeout, async {
            let r = self
                .coll()
                .delete_many(doc! { "last_seen": { "$lt": to_bdate(cutoff) } })
                .await
                .map_err(me(DEV))?;
            Ok(r.deleted_count)
        })
        .await
    }
}
