//! One repository per port, all on the same [`Ctx`].

mod audit;
mod billing;
mod hotspot;
mod notices;
mod vouchers;

use std::fmt;
use std::sync::Arc;

use futures::TryStreamExt;
use isp_core::domain::Claim;
use isp_core::ports::{Repositories, RETRY_HOLDER};
use isp_core::Result;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{lease_free, limit_i64, LeaseDoc};
use crate::error::map_mongo_error;
use crate::Ctx;
use isp_core::Error;

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx").field("database", &self.db.name()).finish()
    }
}

pub(crate) fn all(ctx: &Ctx) -> Repositories {
    let c = || ctx.clone();
    Repositories {
        tenants: Arc::new(audit::MongoTenantRepo(c())),
        subscribers: Arc::new(hotspot::MongoSubscriberRepo(c())),
        devices: Arc::new(hotspot::MongoDeviceRepo(c())),
        vouchers: Arc::new(vouchers::MongoVoucherRepo(c())),
        plans: Arc::new(billing::MongoPlanRepo(c())),
        customers: Arc::new(billing::MongoCustomerRepo(c())),
        services: Arc::new(billing::MongoServiceRepo(c())),
        ledger: Arc::new(billing::MongoLedgerRepo(c())),
        notices: Arc::new(notices::MongoNoticeRepo(c())),
        audit: Arc::new(audit::MongoAuditRepo(c())),
        router_status: Arc::new(audit::MongoRouterStatusRepo(c())),
        leases: Arc::new(audit::MongoLeaseRepo(c())),
    }
}

/// A field no document has: see [`guarded`].
const ABSENT_FIELD: &str = "_absent";

/// Adds `$pull: {_absent: null}` to an update. On MongoDB that is a no-op (no
/// document has the field). nx-27017 applies simple `$set`s on an SQL fast path
/// that stores a top-level date as text, which breaks every later range query on
/// it; a `$pull` of an absent field sends the update down its type-preserving
/// path. Every update that may set an instant goes through here.
pub(crate) fn guarded(mut update: Document) -> Document {
    update.insert("$pull", doc! { ABSENT_FIELD: Bson::Null });
    update
}

/// A stored document with an integer `_id`.
pub(crate) trait HasId {
    fn id(&self) -> i64;
}

/// Maps driver errors for `entity`.
pub(crate) fn me(entity: &'static str) -> impl Fn(mongodb::error::Error) -> isp_core::Error {
    move |e| map_mongo_error(e, entity)
}

/// Runs a find with a sort and an optional limit (`Some(0)` finds nothing).
pub(crate) async fn find_vec<T>(
    coll: &Collection<T>,
    entity: &'static str,
    filter: Document,
    sort: Document,
    limit: Option<usize>,
) -> Result<Vec<T>>
where
    T: DeserializeOwned + Send + Sync + Unpin,
{
    let mut find = coll.find(filter).sort(sort);
    if let Some(n) = limit {
        if n == 0 {
            return Ok(Vec::new());
        }
        find = find.limit(limit_i64(n));
    }
    let cursor = find.await.map_err(me(entity))?;
    cursor.try_collect().await.map_err(me(entity))
}

/// Claims up to `claim.limit` documents matching `due` whose lease is free, in
/// `sort` order: one atomic `find_one_and_update` per item (filter: due and
/// lease free; update: set the lease), until the limit or nothing is left.
/// Never a read-then-write: two claimants can never both get one document.
pub(crate) async fn claim_loop<T>(
    coll: &Collection<T>,
    entity: &'static str,
    due: Document,
    sort: Document,
    claim: &Claim,
) -> Result<Vec<T>>
where
    T: Serialize + DeserializeOwned + Send + Sync + HasId,
{
    if claim.holder.is_empty() || claim.holder == RETRY_HOLDER {
        return Err(Error::invalid(
            "holder",
            &claim.holder,
            "a claimant needs its own non-empty name",
        ));
    }
    let mut out: Vec<T> = Vec::new();
    let lease = LeaseDoc::new(&claim.holder, claim.until).to_bson();
    // A lease that is already expired when set leaves the item free: exclude what
    // this call took, or it would take the same item again.
    let exclude_taken = claim.until <= claim.now;
    let due = and_into(due, lease_free(claim.now));
    while out.len() < claim.limit {
        let filter = if exclude_taken && !out.is_empty() {
            let taken: Vec<i64> = out.iter().map(HasId::id).collect();
            and_into(due.clone(), doc! { "_id": { "$nin": taken } })
        } else {
            due.clone()
        };
        let got = coll
            .find_one_and_update(filter, guarded(doc! { "$set": { "lease": lease.clone() } }))
            .sort(sort.clone())
            .return_document(ReturnDocument::After)
            .await
            .map_err(me(entity))?;
        match got {
            Some(item) => out.push(item),
            None => break,
        }
    }
    Ok(out)
}

/// `update_one` that reports whether a document matched.
pub(crate) async fn update_matched<T>(
    coll: &Collection<T>,
    entity: &'static str,
    filter: Document,
    update: Document,
) -> Result<bool>
where
    T: Send + Sync,
{
    let r = coll
        .update_one(filter, guarded(update))
        .await
        .map_err(me(entity))?;
    Ok(r.matched_count > 0)
}

/// Matches documents whose lease `holder` holds (expired or not). An empty
/// name holds nothing.
pub(crate) fn held(holder: &str) -> Document {
    if holder.is_empty() {
        return doc! { "lease.holder": { "$in": [] } };
    }
    doc! { "lease.holder": holder }
}

/// Matches documents whose lease `holder` holds, or that have none.
pub(crate) fn held_or_none(holder: &str) -> Document {
    doc! { "lease.holder": { "$in": ["", holder] } }
}

/// `base AND extra`, written without `$and` and without siblings of an `$or`:
/// an `$or` in `base` gets `extra` (and `base`'s other fields) copied into each
/// branch. MongoDB reads both forms alike; nx-27017 evaluates `$and`, and fields
/// next to an `$or`, wrongly (it drops parentheses), but plain conjunctions and a
/// top-level `$or` of plain conjunctions correctly.
pub(crate) fn and_into(mut base: Document, extra: Document) -> Document {
    fn merge(into: &mut Document, extra: &Document) {
        for (k, v) in extra {
            match (into.get_mut(k), v) {
                (Some(Bson::Document(have)), Bson::Document(more))
                    if have.keys().all(|k| k.starts_with('$')) && more.keys().all(|k| k.starts_with('$')) =>
                {
                    for (op, arg) in more {
                        have.insert(op.clone(), arg.clone());
                    }
                }
                (Some(have), _) => {
                    // Same field, two equalities: both must hold.
                    let have = have.clone();
                    into.insert(k.clone(), doc! { "$eq": have, "$in": [v.clone()] });
                }
                (None, _) => {
                    into.insert(k.clone(), v.clone());
                }
            }
        }
    }
    match base.remove("$or") {
        Some(Bson::Array(branches)) => {
            let rest = base;
            let branches: Vec<Bson> = branches
                .into_iter()
                .map(|b| {
                    let Bson::Document(mut branch) = b else {
                        // Not produced by this crate; keep it correct for MongoDB.
                        return Bson::Document(doc! { "$and": [b, rest.clone(), extra.clone()] });
                    };
                    merge(&mut branch, &rest);
                    merge(&mut branch, &extra);
                    Bson::Document(branch)
                })
                .collect();
            doc! { "$or": branches }
        }
        Some(other) => {
            base.insert("$or", other);
            merge(&mut base, &extra);
            base
        }
        None => {
            merge(&mut base, &extra);
            base
        }
    }
}

/// `NotFound` unless a document with this `_id` exists.
pub(crate) async fn exists<T>(coll: &Collection<T>, entity: &'static str, id: i64) -> Result<()>
where
    T: Send + Sync,
{
    let n = coll
        .count_documents(doc! { "_id": id })
        .limit(1)
        .await
        .map_err(me(entity))?;
    if n == 0 {
        return Err(isp_core::Error::not_found(entity, id));
    }
    Ok(())
}

/// A conditional single-document update: applies `update` to document `id` if it
/// matches `cond`. `Ok(false)` when it does not match, `NotFound` when there is
/// no such document.
pub(crate) async fn cas<T>(
    coll: &Collection<T>,
    entity: &'static str,
    id: i64,
    cond: Document,
    update: Document,
) -> Result<bool>
where
    T: Send + Sync,
{
    if update_matched(coll, entity, and_into(doc! { "_id": id }, cond), update).await? {
        return Ok(true);
    }
    exists(coll, entity, id).await.map(|()| false)
}
