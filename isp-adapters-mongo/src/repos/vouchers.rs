//! Vouchers, with their deadline stored as an indexed field.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use isp_core::domain::*;
use isp_core::ports::VoucherRepo;
use isp_core::{Error, Result};
use mongodb::bson::{self, doc, Bson};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::hotspot::{release_name, reserve_name, NameOwner};
use super::within;
use super::{
    and_into, any_of, cas, claim_loop, exists, find_vec, guarded, held_or_none, me, update_matched, HasId,
};
use crate::codec::*;
use crate::collections::VOUCHERS;
use crate::error::is_duplicate_key;
use crate::Ctx;

const V: &str = "voucher";

/// A voucher as stored. `deadline` is [`Voucher::deadline`], kept up to date by
/// every write so that due vouchers are one indexed range.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct VoucherDoc {
    #[serde(rename = "_id")]
    id: i64,
    tenant_id: i64,
    router_id: i64,
    code: String,
    plan_id: i64,
    status: String,
    activation_deadline: Option<bson::DateTime>,
    purchase_deadline: Option<bson::DateTime>,
    duration_ms: i64,
    started_at: Option<bson::DateTime>,
    expected_end: Option<bson::DateTime>,
    expired_reason: Option<String>,
    expired_at: Option<bson::DateTime>,
    removed_from_router: bool,
    lease: LeaseDoc,
    attempts: i64,
    deadline: Option<bson::DateTime>,
}

impl HasId for VoucherDoc {
    fn id(&self) -> i64 {
        self.id
    }
}

impl VoucherDoc {
    fn into_domain(self) -> Result<Voucher> {
        let duration_ms = u64::try_from(self.duration_ms)
            .map_err(|_| stored("duration_ms", self.duration_ms, "negative"))?;
        Ok(Voucher {
            id: VoucherId(self.id),
            tenant_id: TenantId(self.tenant_id),
            router_id: RouterId(self.router_id),
            code: RosName::parse("code", &self.code).map_err(stored_err)?,
            plan_id: PlanId(self.plan_id),
            status: VoucherStatus::parse("status", &self.status).map_err(stored_err)?,
            activation_deadline: from_opt_bdate("activation_deadline", self.activation_deadline)?,
            purchase_deadline: from_opt_bdate("purchase_deadline", self.purchase_deadline)?,
            duration: RosDuration::from_std(Duration::from_millis(duration_ms)),
            started_at: from_opt_bdate("started_at", self.started_at)?,
            expected_end: from_opt_bdate("expected_end", self.expected_end)?,
            expired_reason: self
                .expired_reason
                .as_deref()
                .map(|r| VoucherExpiryReason::parse("expired_reason", r))
                .transpose()
                .map_err(stored_err)?,
            expired_at: from_opt_bdate("expired_at", self.expired_at)?,
            removed_from_router: self.removed_from_router,
            lease: self.lease.into_domain()?,
            attempts: to_u32("attempts", self.attempts)?,
        })
    }
}

fn vouchers(docs: Vec<VoucherDoc>) -> Result<Vec<Voucher>> {
    docs.into_iter().map(VoucherDoc::into_domain).collect()
}

fn by_deadline() -> bson::Document {
    doc! { "deadline": 1, "_id": 1 }
}

fn bdate_opt(at: Option<DateTime<Utc>>) -> Bson {
    at.map_or(Bson::Null, |a| Bson::DateTime(to_bdate(a)))
}

fn done_statuses() -> Vec<&'static str> {
    vec![VoucherStatus::Expired.as_str(), VoucherStatus::Revoked.as_str()]
}

/// [`VoucherRepo`] on the `vouchers` collection.
#[derive(Debug)]
pub(crate) struct MongoVoucherRepo(pub(crate) Ctx);

impl MongoVoucherRepo {
    fn coll(&self) -> Collection<VoucherDoc> {
        self.0.coll(VOUCHERS)
    }
}

#[async_trait]
impl VoucherRepo for MongoVoucherRepo {
    async fn insert(&self, new: &NewVoucher) -> Result<Voucher> {
        within(self.0.operation_timeout, async {
            let duration_ms = i64::try_from(new.duration.as_std().as_millis())
                .map_err(|_| Error::invalid("duration", new.duration, "too long"))?;
            let id = self.0.next_id(VOUCHERS).await?;
            let mut d = VoucherDoc {
                id,
                tenant_id: new.tenant_id.0,
                router_id: new.router_id.0,
                code: new.code.as_str().to_owned(),
                plan_id: new.plan_id.0,
                status: VoucherStatus::Unused.as_str().to_owned(),
                activation_deadline: new.activation_deadline.map(to_bdate),
                purchase_deadline: new.purchase_deadline.map(to_bdate),
                duration_ms,
                started_at: None,
                expected_end: None,
                expired_reason: None,
                expired_at: None,
                removed_from_router: false,
                lease: LeaseDoc::none(),
                attempts: 0,
                deadline: None,
            };
            let voucher = d.clone().into_domain()?;
            d.deadline = voucher.deadline().map(to_bdate);
            let name = new.code.as_str();
            reserve_name(&self.0, NameOwner::Voucher, new.tenant_id, name, id).await?;
            let written = self.coll().insert_one(&d).await;
            if written.is_err() {
                release_name(&self.0, NameOwner::Voucher, new.tenant_id, name, id).await?;
            }
            written.map_err(|e| {
                if is_duplicate_key(&e) {
                    Error::conflict(
                        V,
                        format!(
                            "tenant {} already has a voucher with code {}",
                            new.tenant_id, new.code
                        ),
                    )
                } else {
                    me(V)(e)
                }
            })?;
            Ok(voucher)
        })
        .await
    }

    async fn get(&self, id: VoucherId) -> Result<Voucher> {
        within(self.0.operation_timeout, async {
            self.coll()
                .find_one(doc! { "_id": id.0 })
                .await
                .map_err(me(V))?
                .ok_or_else(|| Error::not_found(V, id))?
                .into_domain()
        })
        .await
    }

    async fn find_by_code(&self, tenant: TenantId, code: &RosName) -> Result<Option<Voucher>> {
        within(self.0.operation_timeout, async {
            self.coll()
                .find_one(doc! { "tenant_id": tenant.0, "code": code.as_str() })
                .await
                .map_err(me(V))?
                .map(VoucherDoc::into_domain)
                .transpose()
        })
        .await
    }

    async fn activate(&self, id: VoucherId, started_at: DateTime<Utc>) -> Result<Voucher> {
        within(self.0.operation_timeout, async {
            let current = self.get(id).await?;
            if current.status != VoucherStatus::Unused {
                return Err(Error::conflict(
                    V,
                    format!("voucher {id} is {}, not unused", current.status.as_str()),
                ));
            }
            let expected_end = started_at + current.duration.as_chrono();
            // Compare-and-set on the status: of two concurrent first uses, one wins.
            self.coll()
                .find_one_and_update(
                    doc! { "_id": id.0, "status": VoucherStatus::Unused.as_str() },
                    guarded(doc! { "$set": {
                        "status": VoucherStatus::Active.as_str(),
                        "started_at": to_bdate(started_at),
                        "expected_end": to_bdate(expected_end),
                        "deadline": to_bdate(expected_end),
                    } }),
                )
                .return_document(ReturnDocument::After)
                .await
                .map_err(me(V))?
                .ok_or_else(|| Error::conflict(V, format!("voucher {id} was used meanwhile")))?
                .into_domain()
        })
        .await
    }

    async fn list_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Voucher>> {
        within(self.0.operation_timeout, async {
            let filter = doc! { "deadline": { "$lte": to_bdate(now) } };
            vouchers(find_vec(&self.coll(), V, filter, by_deadline(), Some(limit)).await?)
        })
        .await
    }

    async fn claim_due(&self, claim: &Claim) -> Result<Vec<Voucher>> {
        within(self.0.operation_timeout, async {
            let due = doc! { "deadline": { "$lte": to_bdate(claim.now) } };
            vouchers(claim_loop(&self.coll(), V, due, by_deadline(), claim).await?)
        })
        .await
    }

    async fn expire(
        &self,
        id: VoucherId,
        seen: VoucherStatus,
        reason: VoucherExpiryReason,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        within(self.0.operation_timeout, async {
            if seen == VoucherStatus::Expired {
                // Already expired: nothing changes.
                exists(&self.coll(), V, id.0).await?;
                return Ok(false);
            }
            // Compare-and-set on the status the caller saw. The new deadline depends
            // on whether the router user is already gone, so each case is its own
            // conditional single-document update; at most one of them can match.
            let set = |deadline: Option<DateTime<Utc>>| {
                doc! { "$set": {
                    "status": VoucherStatus::Expired.as_str(),
                    "expired_reason": reason.as_str(),
                    "expired_at": to_bdate(at),
                    "deadline": bdate_opt(deadline),
                } }
            };
            let live = doc! { "_id": id.0, "status": seen.as_str(), "removed_from_router": false };
            if update_matched(&self.coll(), V, live, set(Some(at))).await? {
                return Ok(true);
            }
            cas(
                &self.coll(),
                V,
                id.0,
                doc! { "status": seen.as_str(), "removed_from_router": true },
                set(None),
            )
            .await
        })
        .await
    }
    async fn mark_removed(&self, id: VoucherId, holder: &str) -> Result<bool> {
        within(self.0.operation_timeout, async {
            // Only a finished (expired or revoked) voucher's user is removed; after
            // that nothing about it is due any more.
            cas(
                &self.coll(),
                V,
                id.0,
                and_into(any_of("status", &done_statuses()), held_or_none(holder)),
                doc! { "$set": {
                    "removed_from_router": true,
                    "lease": no_lease(),
                    "attempts": 0_i64,
                    "deadline": Bson::Null,
                } },
            )
            .await
        })
        .await
    }
    async fn on_router(&self, router: RouterId, statuses: &[VoucherStatus]) -> Result<Vec<Voucher>> {
        within(self.0.operation_timeout, async {
            if statuses.is_empty() {
                return Ok(Vec::new());
            }
            let statuses: Vec<&str> = statuses.iter().map(VoucherStatus::as_str).collect();
            let filter = doc! { "router_id": router.0, "status": { "$in": statuses } };
            vouchers(find_vec(&self.coll(), V, filter, doc! { "_id": 1 }, None).await?)
        })
        .await
    }

    async fn next_deadline_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        within(self.0.operation_timeout, async {
            let filter = doc! { "deadline": { "$gt": to_bdate(now) } };
            let first = find_vec(&self.coll(), V, filter, by_deadline(), Some(1)).await?;
            match first.into_iter().next().and_then(|d| d.deadline) {
                Some(d) => Ok(Some(from_bdate("deadline", d)?)),
                None => Ok(None),
            }
        })
        .await
    }
}
