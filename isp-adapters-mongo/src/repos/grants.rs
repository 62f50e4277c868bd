//! Grants: paid time, the payment that bought it and the router work owed,
//! written without multi-document transactions.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use isp_core::domain::*;
use isp_core::ports::{GrantRepo, RETRY_HOLDER};
use isp_core::{Error, Result};
use mongodb::bson::{self, doc, oid::ObjectId, Bson, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::hotspot::SubscriberDoc;
use super::{and_into, find_vec, guarded, held, held_or_none, me, update_matched, within};
use crate::codec::*;
use crate::collections::{PAYMENTS, PENDING_GRANTS, SUBSCRIBERS};
use crate::error::is_duplicate_key;
use crate::Ctx;

const G: &str = "pending grant";
const P: &str = "payment";
const SUB: &str = "subscriber";

/// The subscriber field holding the payments applied to it, by reference.
const REFS: &str = "payment_refs";
/// A payment document reserved by a write that has not extended the subscriber (yet).
const INTENT: &str = "intent";
/// A payment document of an applied grant.
const RECORDED: &str = "recorded";

/// Pauses while another write holds the reference, before answering `Stale`
/// (about 0.6 s in all; such a write normally ends within milliseconds).
const WAITS: [u64; 6] = [10, 20, 40, 80, 160, 320];

/// The least age of a reservation before another write may take it over; see
/// [`MongoGrantRepo::takeover_after`].
const ORPHAN_AFTER: Duration = Duration::from_secs(60);

/// The `_id` of a payment document: `"<tenant>/<reference>"`.
fn payment_key(tenant: TenantId, reference: &PaymentReference) -> String {
    format!("{}/{}", tenant.0, reference.as_str())
}

/// The name of a reference inside `payment_refs`: `r` and the hex of its
/// bytes (a reference may contain `.` or `$`, which field names may not).
fn ref_name(reference: &PaymentReference) -> String {
    let hex: String = reference.as_str().bytes().map(|b| format!("{b:02x}")).collect();
    format!("r{hex}")
}

/// The dotted path of a reference in a subscriber document.
fn ref_path(reference: &PaymentReference) -> String {
    format!("{REFS}.{}", ref_name(reference))
}

/// A payment as its subscriber document records it (`payment_refs.<name>`):
/// the authority on whether the payment was applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AppliedPayment {
    amount_micros: i64,
    currency: String,
    paid_until: bson::DateTime,
    created_at: bson::DateTime,
}

impl AppliedPayment {
    fn new(grant: &GrantWrite, payment: &NewPayment) -> Result<Self> {
        Ok(AppliedPayment {
            amount_micros: payment.amount.to_micro_units()?,
            currency: payment.amount.currency.as_str().to_owned(),
            paid_until: to_bdate(grant.paid_until),
            created_at: to_bdate(grant.at),
        })
    }

    fn to_bson(&self) -> Bson {
        Bson::Document(doc! {
            "amount_micros": self.amount_micros,
            "currency": &self.currency,
            "paid_until": self.paid_until,
            "created_at": self.created_at,
        })
    }
}

/// A payment document, `_id` [`payment_key`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PaymentDoc {
    #[serde(rename = "_id")]
    key: String,
    tenant_id: i64,
    reference: String,
    subscriber_id: i64,
    amount_micros: i64,
    currency: String,
    paid_until: bson::DateTime,
    created_at: bson::DateTime,
    /// [`INTENT`] or [`RECORDED`].
    state: String,
    /// The write that reserved it (empty once recorded).
    token: String,
    /// When reserved (this host's clock; only compared with the takeover age).
    at: bson::DateTime,
}

impl PaymentDoc {
    fn into_domain(self) -> Result<Payment> {
        Ok(Payment {
            tenant_id: TenantId(self.tenant_id),
            reference: PaymentReference::parse("reference", &self.reference).map_err(stored_err)?,
            subscriber_id: SubscriberId(self.subscriber_id),
            amount: Money::from_micro_units(
                self.amount_micros,
                Currency::parse("currency", &self.currency).map_err(stored_err)?,
            ),
            paid_until: from_bdate("paid_until", self.paid_until)?,
            created_at: from_bdate("created_at", self.created_at)?,
        })
    }
}

/// A pending grant, `_id` `"<subscriber>:<router>"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingDoc {
    #[serde(rename = "_id")]
    key: String,
    subscriber_id: i64,
    router_id: i64,
    created_at: bson::DateTime,
    attempts: i64,
    last_error: Option<String>,
    lease: LeaseDoc,
    /// The grant write that last wrote it (so that a write that did not apply
    /// deletes only its own).
    write_token: String,
}

fn pending_key(subscriber: SubscriberId, router: RouterId) -> String {
    format!("{}:{}", subscriber.0, router.0)
}

impl PendingDoc {
    fn new(grant: &GrantWrite, router: RouterId, token: &str) -> Self {
        PendingDoc {
            key: pending_key(grant.subscriber_id, router),
            subscriber_id: grant.subscriber_id.0,
            router_id: router.0,
            created_at: to_bdate(grant.at),
            attempts: 0,
            last_error: None,
            lease: LeaseDoc::new(&grant.holder, grant.lease_until),
            write_token: token.to_owned(),
        }
    }

    fn into_domain(self) -> Result<PendingGrant> {
        Ok(PendingGrant {
            subscriber_id: SubscriberId(self.subscriber_id),
            router_id: RouterId(self.router_id),
            created_at: from_bdate("created_at", self.created_at)?,
            attempts: to_u32("attempts", self.attempts)?,
            last_error: self.last_error,
            lease: self.lease.into_domain()?,
        })
    }
}

fn pendings(docs: Vec<PendingDoc>) -> Result<Vec<PendingGrant>> {
    docs.into_iter().map(PendingDoc::into_domain).collect()
}

/// Oldest first, ties by subscriber then router.
fn claim_order() -> Document {
    doc! { "created_at": 1, "subscriber_id": 1, "router_id": 1 }
}

/// What a grant write needs of its subscriber before writing.
#[derive(Debug, Deserialize)]
struct SubscriberHead {
    tenant_id: i64,
}

/// A writer or claimant needs its own non-empty name, not the retry holder's.
fn check_holder(holder: &str) -> Result<()> {
    if holder.is_empty() || holder == RETRY_HOLDER {
        return Err(Error::invalid(
            "holder",
            holder,
            "a writer or claimant needs its own non-empty name",
        ));
    }
    Ok(())
}

/// [`GrantRepo`] on `subscribers`, `payments` and `pending_grants`.
///
/// # A grant write without transactions
/// The subscriber document is the commit point: one `find_one_and_update`
/// filtered on `_id`, `paid_until == paid_until_seen` and, with a payment,
/// `payment_refs.<reference>` absent, sets the paid time as
/// [`SubscriberRepo::extend`](isp_core::ports::SubscriberRepo::extend) does
/// and records the payment under `payment_refs.<reference>` (`r` + hex of
/// the reference; amount, currency, `paid_until`, `created_at`). Whatever that
/// field says is the truth about the payment; the `payments` document is its
/// index by (tenant, reference), written around it:
///
/// 1. With a payment, the write reserves `payments/<tenant>/<reference>` by
///    inserting it as an `intent` with its own token (unique by `_id`, on
///    every server). A `recorded` one answers `DuplicatePayment`. An `intent`
///    of another write is resolved through its subscriber: if the payment is
///    in that subscriber's `payment_refs`, the writer died after applying it:
///    the document is marked `recorded` from there (rolled forward) and the
///    answer is `DuplicatePayment`. Otherwise the other write is in flight:
///    this one waits for it briefly (about 0.6 s, re-checking), then answers
///    `Stale` (read again; the retry then sees the outcome). A reservation
///    older than [`takeover_after`](Self::takeover_after) belongs to a write
///    that died before applying and is taken over. The reservation is what
///    makes a reference apply once per tenant, also across subscribers.
/// 2. One pending grant per router is inserted, leased to the writer (`_id`
///    `"<subscriber>:<router>"`). An existing one of the same (subscriber,
///    router) is left alone for now: it owes the same router work.
/// 3. The subscriber compare-and-set. If it does not apply, the write deletes
///    the pending grants it inserted (where still leased to it with its token)
///    and its reservation, and answers `Stale` (`NotFound` if the subscriber
///    is gone). If it applies, the payment document becomes `recorded`, and
///    the pending grants that already existed are replaced (attempts 0,
///    leased to the writer).
///
/// A crash after step 3 leaves the subscriber extended with a pending grant
/// for every router (durable router work, as promised); the payment is rolled
/// forward by the next write or [`payment`](GrantRepo::payment) lookup of the
/// reference. A crash before it leaves a reservation (taken over later) and
/// pending grants of a grant that never applied, leased to the dead writer
/// until `lease_until`: harmless router work (make the user exist and be
/// enabled), which the grant job and reconciliation square with the
/// subscriber's entitlement. `payment_refs` keeps every reference applied
/// to the subscriber (about a hundred bytes each).
#[derive(Debug)]
pub(crate) struct MongoGrantRepo(pub(crate) Ctx);

impl MongoGrantRepo {
    fn subs(&self) -> Collection<SubscriberDoc> {
        self.0.coll(SUBSCRIBERS)
    }
    fn payments(&self) -> Collection<PaymentDoc> {
        self.0.coll(PAYMENTS)
    }
    fn pending(&self) -> Collection<PendingDoc> {
        self.0.coll(PENDING_GRANTS)
    }

    /// How old a reservation must be before another write takes it over: a
    /// minute, and at least twice the operation timeout, past which the
    /// reserving call has certainly been dropped (see
    /// [`MongoOptions::operation_timeout`](crate::MongoOptions::operation_timeout)).
    fn takeover_after(&self) -> Duration {
        ORPHAN_AFTER.max(self.0.operation_timeout.saturating_mul(2))
    }

    /// The payment `subscriber`'s document records under `reference`.
    async fn applied(&self, subscriber: i64, reference: &PaymentReference) -> Result<Option<AppliedPayment>> {
        let found = self
            .0
            .coll::<Document>(SUBSCRIBERS)
            .find_one(doc! { "_id": subscriber })
            .projection(doc! { REFS: 1 })
            .await
            .map_err(me(SUB))?;
        let Some(entry) = found
            .as_ref()
            .and_then(|d| d.get_document(REFS).ok())
            .and_then(|refs| refs.get(ref_name(reference)))
        else {
            return Ok(None);
        };
        bson::from_bson(entry.clone())
            .map(Some)
            .map_err(|e| stored(&ref_path(reference), subscriber, &e.to_string()))
    }

    /// Writes the payment document of an applied payment as `recorded`.
    async fn record(
        &self,
        tenant: TenantId,
        reference: &PaymentReference,
        subscriber: i64,
        applied: &AppliedPayment,
    ) -> Result<Payment> {
        let key = payment_key(tenant, reference);
        let update = guarded(doc! { "$set": {
            "tenant_id": tenant.0,
            "reference": reference.as_str(),
            "subscriber_id": subscriber,
            "amount_micros": applied.amount_micros,
            "currency": &applied.currency,
            "paid_until": applied.paid_until,
            "created_at": applied.created_at,
            "state": RECORDED,
            "token": "",
            "at": bson::DateTime::now(),
        } });
        // Two concurrent upserts of one `_id` may collide; the second then updates.
        let mut upsert = true;
        loop {
            match self
                .payments()
                .update_one(doc! { "_id": &key }, update.clone())
                .upsert(upsert)
                .await
            {
                Ok(_) => break,
                Err(e) if upsert && is_duplicate_key(&e) => upsert = false,
                Err(e) => return Err(me(P)(e)),
            }
        }
        PaymentDoc {
            key,
            tenant_id: tenant.0,
            reference: reference.as_str().to_owned(),
            subscriber_id: subscriber,
            amount_micros: applied.amount_micros,
            currency: applied.currency.clone(),
            paid_until: applied.paid_until,
            created_at: applied.created_at,
            state: RECORDED.to_owned(),
            token: String::new(),
            at: bson::DateTime::now(),
        }
        .into_domain()
    }

    /// A payment document, rolled forward if its reservation was applied;
    /// `None` for none or a reservation not applied.
    async fn resolve(&self, found: PaymentDoc) -> Result<Option<Payment>> {
        if found.state == RECORDED {
            return found.into_domain().map(Some);
        }
        let reference = PaymentReference::parse("reference", &found.reference).map_err(stored_err)?;
        match self.applied(found.subscriber_id, &reference).await? {
            Some(applied) => self
                .record(
                    TenantId(found.tenant_id),
                    &reference,
                    found.subscriber_id,
                    &applied,
                )
                .await
                .map(Some),
            None => Ok(None),
        }
    }

    /// Reserves the payment's (tenant, reference) for the write `token`:
    /// `None` when reserved, else the answer of the write (see the type's docs).
    async fn reserve(
        &self,
        grant: &GrantWrite,
        tenant: TenantId,
        payment: &NewPayment,
        token: &str,
    ) -> Result<Option<GrantWritten>> {
        let applied = AppliedPayment::new(grant, payment)?;
        let mine = PaymentDoc {
            key: payment_key(tenant, &payment.reference),
            tenant_id: tenant.0,
            reference: payment.reference.as_str().to_owned(),
            subscriber_id: grant.subscriber_id.0,
            amount_micros: applied.amount_micros,
            currency: applied.currency,
            paid_until: applied.paid_until,
            created_at: applied.created_at,
            state: INTENT.to_owned(),
            token: token.to_owned(),
            at: bson::DateTime::now(),
        };
        let takeover_ms = i64::try_from(self.takeover_after().as_millis()).unwrap_or(i64::MAX);
        let mut waits = WAITS.iter();
        loop {
            match self.payments().insert_one(&mine).await {
                Ok(_) => return Ok(None),
                Err(e) if is_duplicate_key(&e) => {}
                Err(e) => return Err(me(P)(e)),
            }
            let Some(found) = self
                .payments()
                .find_one(doc! { "_id": &mine.key })
                .await
                .map_err(me(P))?
            else {
                // Released meanwhile: try again.
                continue;
            };
            let (their_token, their_at) = (found.token.clone(), found.at);
            if let Some(done) = self.resolve(found).await? {
                return Ok(Some(GrantWritten::DuplicatePayment(done)));
            }
            let age = bson::DateTime::now()
                .timestamp_millis()
                .saturating_sub(their_at.timestamp_millis());
            if age >= takeover_ms {
                let taken = update_matched(
                    &self.payments(),
                    P,
                    doc! { "_id": &mine.key, "state": INTENT, "token": &their_token },
                    doc! { "$set": {
                        "tenant_id": mine.tenant_id,
                        "reference": &mine.reference,
                        "subscriber_id": mine.subscriber_id,
                        "amount_micros": mine.amount_micros,
                        "currency": &mine.currency,
                        "paid_until": mine.paid_until,
                        "created_at": mine.created_at,
                        "token": token,
                        "at": mine.at,
                    } },
                )
                .await?;
                if taken {
                    return Ok(None);
                }
                continue;
            }
            match waits.next() {
                Some(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
                None => return Ok(Some(GrantWritten::Stale)),
            }
        }
    }

    /// Deletes the reservation of the write `token` (its grant did not apply).
    async fn release(&self, tenant: TenantId, reference: &PaymentReference, token: &str) -> Result<()> {
        self.payments()
            .delete_one(doc! { "_id": payment_key(tenant, reference), "state": INTENT, "token": token })
            .await
            .map_err(me(P))?;
        Ok(())
    }

    /// Deletes the pending grants a write inserted (its grant did not apply),
    /// where they are still leased to it with its token.
    async fn unwrite(&self, grant: &GrantWrite, routers: &[RouterId], token: &str) -> Result<()> {
        for router in routers {
            self.pending()
                .delete_one(doc! {
                    "_id": pending_key(grant.subscriber_id, *router),
                    "lease.holder": &grant.holder,
                    "write_token": token,
                })
                .await
                .map_err(me(G))?;
        }
        Ok(())
    }

    /// Steps 2 and 3 of a write (see the type's docs), the payment reserved.
    async fn apply(&self, grant: &GrantWrite, tenant: TenantId, token: &str) -> Result<GrantWritten> {
        let mut routers = grant.routers.clone();
        routers.sort();
        routers.dedup();
        let mut inserted = Vec::with_capacity(routers.len());
        let mut existing = Vec::new();
        for router in &routers {
            match self
                .pending()
                .insert_one(PendingDoc::new(grant, *router, token))
                .await
            {
                Ok(_) => inserted.push(*router),
                Err(e) if is_duplicate_key(&e) => existing.push(*router),
                Err(e) => {
                    // Best effort: the error is what the caller needs to see.
                    let _ = self.unwrite(grant, &inserted, token).await;
                    return Err(me(G)(e));
                }
            }
        }

        let mut filter = doc! { "_id": grant.subscriber_id.0, "paid_until": to_bdate(grant.paid_until_seen) };
        let mut set = doc! {
            "paid_until": to_bdate(grant.paid_until),
            "active": true,
            "disconnected_at": Bson::Null,
            "attempts": 0_i64,
            "lease": no_lease(),
        };
        let applied = match &grant.payment {
            Some(p) => {
                let applied = AppliedPayment::new(grant, p)?;
                filter.insert(ref_path(&p.reference), doc! { "$exists": false });
                set.insert(ref_path(&p.reference), applied.to_bson());
                Some((p, applied))
            }
            None => None,
        };
        let after = self
            .subs()
            .find_one_and_update(filter, guarded(doc! { "$set": set }))
            .return_document(ReturnDocument::After)
            .await
            .map_err(me(SUB))?;

        let Some(after) = after else {
            self.unwrite(grant, &inserted, token).await?;
            if let Some((p, _)) = &applied {
                // Applied by a write whose reservation this one took over.
                if let Some(theirs) = self.applied(grant.subscriber_id.0, &p.reference).await? {
                    let done = self
                        .record(tenant, &p.reference, grant.subscriber_id.0, &theirs)
                        .await?;
                    return Ok(GrantWritten::DuplicatePayment(done));
                }
                self.release(tenant, &p.reference, token).await?;
            }
            let exists = self
                .subs()
                .count_documents(doc! { "_id": grant.subscriber_id.0 })
                .limit(1)
                .await
                .map_err(me(SUB))?;
            if exists == 0 {
                return Err(Error::not_found(SUB, grant.subscriber_id));
            }
            return Ok(GrantWritten::Stale);
        };

        if let Some((p, applied)) = &applied {
            self.record(tenant, &p.reference, grant.subscriber_id.0, applied)
                .await?;
        }
        for router in existing {
            let d = PendingDoc::new(grant, router, token);
            self.pending()
                .update_one(
                    doc! { "_id": &d.key },
                    guarded(doc! { "$set": {
                        "subscriber_id": d.subscriber_id,
                        "router_id": d.router_id,
                        "created_at": d.created_at,
                        "attempts": 0_i64,
                        "last_error": Bson::Null,
                        "lease": d.lease.to_bson(),
                        "write_token": token,
                    } }),
                )
                // Completed meanwhile: this grant still owes the router.
                .upsert(true)
                .await
                .map_err(me(G))?;
        }
        after.into_domain().map(GrantWritten::Applied)
    }
}

#[async_trait]
impl GrantRepo for MongoGrantRepo {
    async fn write(&self, grant: &GrantWrite) -> Result<GrantWritten> {
        check_holder(&grant.holder)?;
        within(self.0.operation_timeout, async {
            let head = self
                .0
                .coll::<SubscriberHead>(SUBSCRIBERS)
                .find_one(doc! { "_id": grant.subscriber_id.0 })
                .projection(doc! { "tenant_id": 1 })
                .await
                .map_err(me(SUB))?
                .ok_or_else(|| Error::not_found(SUB, grant.subscriber_id))?;
            let tenant = TenantId(head.tenant_id);
            let token = ObjectId::new().to_hex();
            if let Some(p) = &grant.payment {
                if let Some(answer) = self.reserve(grant, tenant, p, &token).await? {
                    return Ok(answer);
                }
            }
            self.apply(grant, tenant, &token).await
        })
        .await
    }

    async fn payment(&self, tenant: TenantId, reference: &PaymentReference) -> Result<Option<Payment>> {
        within(self.0.operation_timeout, async {
            match self
                .payments()
                .find_one(doc! { "_id": payment_key(tenant, reference) })
                .await
                .map_err(me(P))?
            {
                Some(found) => self.resolve(found).await,
                None => Ok(None),
            }
        })
        .await
    }

    async fn claim_pending(&self, claim: &Claim) -> Result<Vec<PendingGrant>> {
        check_holder(&claim.holder)?;
        within(self.0.operation_timeout, async {
            let lease = LeaseDoc::new(&claim.holder, claim.until).to_bson();
            // A lease already expired when set leaves the item free: exclude what
            // this call took, or it would take the same item again.
            let exclude_taken = claim.until <= claim.now;
            let mut out: Vec<PendingDoc> = Vec::new();
            while out.len() < claim.limit {
                let mut filter = lease_free(claim.now);
                if exclude_taken && !out.is_empty() {
                    let taken: Vec<&str> = out.iter().map(|d| d.key.as_str()).collect();
                    filter.insert("_id", doc! { "$nin": taken });
                }
                let got = self
                    .pending()
                    .find_one_and_update(filter, guarded(doc! { "$set": { "lease": lease.clone() } }))
                    .sort(claim_order())
                    .return_document(ReturnDocument::After)
                    .await
                    .map_err(me(G))?;
                match got {
                    Some(d) => out.push(d),
                    None => break,
                }
            }
            pendings(out)
        })
        .await
    }

    async fn complete(&self, done: &[(SubscriberId, RouterId)], holder: &str) -> Result<Vec<bool>> {
        within(self.0.operation_timeout, async {
            let mut out = Vec::with_capacity(done.len());
            for (subscriber, router) in done {
                let filter = and_into(
                    doc! { "_id": pending_key(*subscriber, *router) },
                    held_or_none(holder),
                );
                let r = self.pending().delete_one(filter).await.map_err(me(G))?;
                out.push(r.deleted_count > 0);
            }
            Ok(out)
        })
        .await
    }

    async fn retry_later(
        &self,
        items: &[(SubscriberId, RouterId)],
        holder: &str,
        until: DateTime<Utc>,
        error: &str,
    ) -> Result<()> {
        within(self.0.operation_timeout, async {
            let update = doc! {
                "$set": {
                    "lease": LeaseDoc::new(RETRY_HOLDER, until).to_bson(),
                    "last_error": error,
                },
                "$inc": { "attempts": 1_i64 },
            };
            for (subscriber, router) in items {
                let filter = and_into(doc! { "_id": pending_key(*subscriber, *router) }, held(holder));
                update_matched(&self.pending(), G, filter, update.clone()).await?;
            }
            Ok(())
        })
        .await
    }

    async fn cancel_of(&self, subscriber: SubscriberId) -> Result<u64> {
        within(self.0.operation_timeout, async {
            let r = self
                .pending()
                .delete_many(doc! { "subscriber_id": subscriber.0 })
                .await
                .map_err(me(G))?;
            Ok(r.deleted_count)
        })
        .await
    }

    async fn pending_of(&self, subscriber: SubscriberId) -> Result<Vec<PendingGrant>> {
        within(self.0.operation_timeout, async {
            let filter = doc! { "subscriber_id": subscriber.0 };
            pendings(find_vec(&self.pending(), G, filter, doc! { "router_id": 1 }, None).await?)
        })
        .await
    }

    async fn next_due_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        within(self.0.operation_timeout, async {
            let filter = doc! {
                "lease.holder": { "$gt": "" },
                "lease.until": { "$gt": to_bdate(now) },
            };
            let first = find_vec(&self.pending(), G, filter, doc! { "lease.until": 1 }, Some(1)).await?;
            first
                .into_iter()
                .next()
                .map(|d| from_bdate("lease.until", d.lease.until))
                .transpose()
        })
        .await
    }

    async fn count_pending(&self, now: DateTime<Utc>) -> Result<(u64, u64)> {
        within(self.0.operation_timeout, async {
            let all = self.pending().count_documents(doc! {}).await.map_err(me(G))?;
            let due = self
                .pending()
                .count_documents(lease_free(now))
                .await
                .map_err(me(G))?;
            Ok((all, due))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_become_safe_field_names() {
        let r = PaymentReference::parse("reference", "MP.1$x").expect("valid");
        assert_eq!(ref_path(&r), "payment_refs.r4d502e312478");
        assert_eq!(payment_key(TenantId(7), &r), "7/MP.1$x");
        assert_eq!(pending_key(SubscriberId(3), RouterId(12)), "3:12");
    }

    #[test]
    fn writers_need_a_name() {
        assert!(check_holder("").is_err());
        let e = check_holder(RETRY_HOLDER).expect_err("the retry holder is not a writer");
        assert!(e.to_string().contains("holder"), "{e}");
        assert!(check_holder("ispd-1").is_ok());
    }
}
