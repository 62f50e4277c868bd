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
use isp_core::ports::Repositories;
use isp_core::Result;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{lease_free, limit_i64, LeaseDoc};
use crate::error::map_mongo_error;
use crate::Ctx;

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
    let mut out: Vec<T> = Vec::new();
    let lease = LeaseDoc::new(&claim.holder, claim.until).to_bson();
    // A lease that is already expired when set leaves the item free: exclude what
    // this call took, or it would take the same item again.
    let exclude_taken = claim.until <= claim.now;
    while out.len() < claim.limit {
        let mut parts = vec![Bson::Document(due.clone()), Bson::Document(lease_free(claim.now))];
        if exclude_taken && !out.is_empty() {
            let taken: Vec<i64> = out.iter().map(HasId::id).collect();
            parts.push(Bson::Document(doc! { "_id": { "$nin": taken } }));
        }
        let got = coll
            .find_one_and_update(
                doc! { "$and": parts },
                doc! { "$set": { "lease": lease.clone() } },
            )
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
    let r = coll.update_one(filter, update).await.map_err(me(entity))?;
    Ok(r.matched_count > 0)
}
