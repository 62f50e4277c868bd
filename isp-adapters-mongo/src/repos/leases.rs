//! The one lease protocol, for every leased collection.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use isp_core::domain::NoticeStatus;
use isp_core::ports::{LeaseRepo, Leased, RETRY_HOLDER};
use isp_core::Result;
use mongodb::bson::{doc, Document};

use super::within;
use super::{and_into, held, update_matched};
use crate::codec::{no_lease, to_bdate, LeaseDoc};
use crate::collections::{NOTICES, SERVICES, SUBSCRIBERS, VOUCHERS};
use crate::Ctx;

/// [`LeaseRepo`] on the `lease` field of every leased collection.
#[derive(Debug)]
pub(crate) struct MongoLeaseRepo(pub(crate) Ctx);

/// The collection of a leased aggregate.
fn collection(kind: Leased) -> &'static str {
    match kind {
        Leased::Subscribers => SUBSCRIBERS,
        Leased::Vouchers => VOUCHERS,
        Leased::Services => SERVICES,
        Leased::Notices => NOTICES,
    }
}

/// What else must hold for an item to be retried (a notice: still pending).
fn retry_guard(kind: Leased) -> Document {
    match kind {
        Leased::Notices => doc! { "status": NoticeStatus::Pending.as_str() },
        Leased::Subscribers | Leased::Vouchers | Leased::Services => Document::new(),
    }
}

impl MongoLeaseRepo {
    /// Applies `update` to each item whose lease `holder` holds and that
    /// matches `guard`: one conditional single-document update per item (no
    /// `$in` on a write, see [`any_of`](super::any_of)), one answer per id.
    async fn fenced(
        &self,
        kind: Leased,
        ids: &[i64],
        holder: &str,
        guard: Document,
        update: Document,
    ) -> Result<Vec<bool>> {
        let coll = self.0.coll::<Document>(collection(kind));
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let filter = and_into(and_into(doc! { "_id": *id }, guard.clone()), held(holder));
            out.push(update_matched(&coll, kind.entity(), filter, update.clone()).await?);
        }
        Ok(out)
    }
}

#[async_trait]
impl LeaseRepo for MongoLeaseRepo {
    async fn retry_later_all(
        &self,
        kind: Leased,
        ids: &[i64],
        holder: &str,
        until: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        within(self.0.operation_timeout, async {
            let update = doc! {
                "$set": { "lease": LeaseDoc::new(RETRY_HOLDER, until).to_bson() },
                "$inc": { "attempts": 1_i64 },
            };
            self.fenced(kind, ids, holder, retry_guard(kind), update).await
        })
        .await
    }

    async fn release_all(&self, kind: Leased, ids: &[i64], holder: &str) -> Result<Vec<bool>> {
        within(self.0.operation_timeout, async {
            let update = doc! { "$set": { "lease": no_lease() } };
            self.fenced(kind, ids, holder, Document::new(), update).await
        })
        .await
    }

    async fn renew_all(
        &self,
        kind: Leased,
        ids: &[i64],
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        within(self.0.operation_timeout, async {
            let live = doc! { "lease.until": { "$gt": to_bdate(now) } };
            let update = doc! { "$set": { "lease.until": to_bdate(until) } };
            self.fenced(kind, ids, holder, live, update).await
        })
        .await
    }
}
