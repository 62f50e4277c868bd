//! One repository per port, all on the same [`Ctx`].

mod audit;
mod billing;
mod grants;
mod hotspot;
mod leases;
mod notices;
mod radius_sessions;
mod vouchers;

pub(crate) use hotspot::backfill_names;
pub(crate) use notices::upgrade as upgrade_notices;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

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
        grants: Arc::new(grants::MongoGrantRepo(c())),
        vouchers: Arc::new(vouchers::MongoVoucherRepo(c())),
        plans: Arc::new(billing::MongoPlanRepo(c())),
        customers: Arc::new(billing::MongoCustomerRepo(c())),
        services: Arc::new(billing::MongoServiceRepo(c())),
        ledger: Arc::new(billing::MongoLedgerRepo(c())),
        notices: Arc::new(notices::MongoNoticeRepo(c())),
        audit: Arc::new(audit::MongoAuditRepo(c())),
        router_status: Arc::new(audit::MongoRouterStatusRepo(c())),
        leases: Arc::new(leases::MongoLeaseRepo(c())),
        radius_sessions: Arc::new(radius_sessions::MongoRadiusSessionRepo(c())),
    }
}

/// Items per write of a batch (keeps each filter's `$or` small).
pub(crate) const BATCH_CHUNK: usize = 500;

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
/// What a call past its deadline fails with.
pub(crate) trait TimedOut {
    /// The error of a call that got no answer within `limit`.
    fn timed_out(limit: Duration) -> Self;
}

impl TimedOut for mongodb::error::Error {
    fn timed_out(limit: Duration) -> Self {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {limit:?} (operation_timeout)"),
        )
        .into()
    }
}

impl TimedOut for isp_core::Error {
    fn timed_out(limit: Duration) -> Self {
        isp_core::Error::unavailable(
            crate::error::SERVICE,
            format!("no answer within {limit:?} (operation_timeout)"),
        )
    }
}

/// Runs `op` with a client-side deadline (see
/// [`MongoOptions::operation_timeout`](crate::MongoOptions::operation_timeout)):
/// past `limit` it is dropped and fails as transient.
pub(crate) async fn within<T, E: TimedOut>(
    limit: Duration,
    op: impl std::future::IntoFuture<Output = std::result::Result<T, E>>,
) -> std::result::Result<T, E> {
    match tokio::time::timeout(limit, op.into_future()).await {
        Ok(done) => done,
        Err(_) => Err(E::timed_out(limit)),
    }
}

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

/// Matches no document: `field > "" AND field < ""`. Written without `$in: []`
/// (see [`any_of`]).
pub(crate) fn never(field: &str) -> Document {
    doc! { field: { "$gt": "", "$lt": "" } }
}

/// Matches documents whose `field` equals one of `values`: a top-level `$or` of
/// equalities (combine it with [`and_into`]), [`never`] for no values.
///
/// Never `$in`/`$nin` on a field other than `_id` in a write's filter: nx-27017
/// cannot translate them to SQL, and its fallback then writes to the document
/// whose internal row number equals the found document's integer `_id`, which
/// is another document (or none) as soon as ids and insertion order differ
/// (concurrent inserts, an id burnt by a duplicate key). See the crate docs.
pub(crate) fn any_of<V: Into<Bson> + Clone>(field: &str, values: &[V]) -> Document {
    match values {
        [] => never(field),
        [one] => doc! { field: one.clone().into() },
        many => doc! {
            "$or": many.iter().map(|v| Bson::Document(doc! { field: v.clone().into() })).collect::<Vec<_>>()
        },
    }
}

/// Matches documents whose lease `holder` holds (expired or not). An empty
/// name holds nothing.
pub(crate) fn held(holder: &str) -> Document {
    if holder.is_empty() {
        return never("lease.holder");
    }
    doc! { "lease.holder": holder }
}

/// Matches documents whose lease `holder` holds, or that have none.
pub(crate) fn held_or_none(holder: &str) -> Document {
    if holder.is_empty() {
        return doc! { "lease.holder": "" };
    }
    any_of("lease.holder", &["", holder])
}

/// Splits off a top-level `$or`: (the other fields, its branches).
fn split_or(mut d: Document) -> (Document, Option<Vec<Bson>>) {
    match d.remove("$or") {
        Some(Bson::Array(branches)) => (d, Some(branches)),
        Some(other) => {
            // Not produced by this crate (MongoDB would refuse it anyway): keep it.
            d.insert("$or", other);
            (d, None)
        }
        None => (d, None),
    }
}

/// Adds the conditions of `extra` to `into` (a conjunction of plain fields).
fn merge(into: &mut Document, extra: &Document) {
    fn is_ops(d: &Document) -> bool {
        !d.is_empty() && d.keys().all(|k| k.starts_with('$'))
    }
    for (k, v) in extra {
        let Some(have) = into.get(k).cloned() else {
            into.insert(k.clone(), v.clone());
            continue;
        };
        let combined = match (have, v.clone()) {
            // Two sets of operators: all must hold.
            (Bson::Document(mut have), Bson::Document(more)) if is_ops(&have) && is_ops(&more) => {
                for (op, arg) in more {
                    have.insert(op, arg);
                }
                Bson::Document(have)
            }
            // An equality and operators.
            (Bson::Document(mut ops), value) | (value, Bson::Document(mut ops))
                if is_ops(&ops) && !matches!(&value, Bson::Document(d) if is_ops(d)) =>
            {
                ops.insert("$eq", value);
                Bson::Document(ops)
            }
            // Two equalities: the same, or nothing matches.
            (have, value) if have == value => have,
            (have, _) => Bson::Document(doc! { "$eq": have.clone(), "$ne": have }),
        };
        into.insert(k.clone(), combined);
    }
}

/// One branch of an `$or` and more conditions.
fn branch_and(branch: &Bson, extra: &Document) -> Bson {
    match branch {
        Bson::Document(b) => {
            let mut b = b.clone();
            merge(&mut b, extra);
            Bson::Document(b)
        }
        // Not produced by this crate; keep it correct for MongoDB.
        other => Bson::Document(doc! { "$and": [other.clone(), extra.clone()] }),
    }
}

/// `base AND extra`, written without `$and` and without siblings of an `$or`:
/// a top-level `$or` (in either) gets the other conditions copied into each
/// branch (two `$or`s: every pair of branches). MongoDB reads both forms alike;
/// nx-27017 evaluates `$and`, and fields next to an `$or`, wrongly (it drops
/// parentheses), but plain conjunctions and a top-level `$or` of plain
/// conjunctions correctly.
pub(crate) fn and_into(base: Document, extra: Document) -> Document {
    let (mut common, base_or) = split_or(base);
    let (extra_rest, extra_or) = split_or(extra);
    merge(&mut common, &extra_rest);
    let branches: Vec<Bson> = match (base_or, extra_or) {
        (None, None) => return common,
        (Some(one), None) | (None, Some(one)) => one,
        (Some(a), Some(b)) => a
            .iter()
            .flat_map(|x| {
                b.iter().map(move |y| match y {
                    Bson::Document(y) => branch_and(x, y),
                    other => Bson::Document(doc! { "$and": [x.clone(), other.clone()] }),
                })
            })
            .collect(),
    };
    doc! { "$or": branches.iter().map(|b| branch_and(b, &common)).collect::<Vec<_>>() }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_filters_are_or_of_plain_conjunctions_without_in() {
        let f = and_into(
            and_into(doc! { "_id": 7_i64 }, any_of("status", &["expired", "revoked"])),
            held_or_none("d"),
        );
        let Some(Bson::Array(branches)) = f.get("$or") else {
            panic!("a top-level $or: {f}");
        };
        assert_eq!(f.len(), 1, "nothing next to the $or: {f}");
        assert_eq!(branches.len(), 4, "every pair of branches: {f}");
        assert!(branches.contains(&Bson::Document(
            doc! { "status": "revoked", "lease.holder": "", "_id": 7_i64 }
        )));
        assert!(
            !f.to_string().contains("$in") && !f.to_string().contains("$and"),
            "{f}"
        );

        assert_eq!(held_or_none(""), doc! { "lease.holder": "" });
        assert_eq!(held(""), never("lease.holder"));
        assert_eq!(any_of::<&str>("status", &[]), never("status"));
        // Same field twice: one equality, nothing, or an equality with operators.
        assert_eq!(and_into(doc! { "a": 1 }, doc! { "a": 1 }), doc! { "a": 1 });
        assert_eq!(
            and_into(doc! { "a": 1 }, doc! { "a": 2 }),
            doc! { "a": { "$eq": 1, "$ne": 1 } }
        );
        assert_eq!(
            and_into(doc! { "a": 1 }, doc! { "a": { "$lt": 5 } }),
            doc! { "a": { "$lt": 5, "$eq": 1 } }
        );
    }
}
