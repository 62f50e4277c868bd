//! Tenants, the audit log and router status.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use isp_core::domain::*;
use isp_core::ports::{AuditRepo, RouterStatusRepo, TenantRepo};
use isp_core::{Error, Result};
use mongodb::bson::{self, doc};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::within;
use super::{find_vec, guarded, me};
use crate::codec::*;
use crate::collections::{AUDIT, ROUTER_STATUS, TENANTS};
use crate::Ctx;

/// Inserts or overwrites the document `id` with one upsert that `$set`s every
/// field (not a replacement: nx-27017 turns the `_id` of a replaced document into text).
async fn upsert_by_id<T: Serialize + Send + Sync>(
    coll: &Collection<T>,
    entity: &'static str,
    id: i64,
    doc: &T,
) -> Result<()> {
    let mut fields =
        bson::to_document(doc).map_err(|e| Error::Internal(format!("{entity} does not serialise: {e}")))?;
    fields.remove("_id");
    coll.update_one(doc! { "_id": id }, guarded(doc! { "$set": fields }))
        .upsert(true)
        .await
        .map_err(me(entity))?;
    Ok(())
}

// ---------------------------------------------------------------- tenants

#[derive(Debug, Serialize, Deserialize)]
struct TenantDoc {
    #[serde(rename = "_id")]
    id: i64,
    slug: String,
    name: String,
    time_zone: String,
}

impl TenantDoc {
    fn into_domain(self) -> Result<Tenant> {
        Ok(Tenant {
            id: TenantId(self.id),
            slug: RosName::parse("slug", &self.slug).map_err(stored_err)?,
            name: self.name,
            time_zone: Tz::from_str(&self.time_zone)
                .map_err(|_| stored("time_zone", &self.time_zone, "unknown time zone"))?,
        })
    }
}

/// [`TenantRepo`] on the `tenants` collection (ids come from configuration).
#[derive(Debug)]
pub(crate) struct MongoTenantRepo(pub(crate) Ctx);

impl MongoTenantRepo {
    fn coll(&self) -> Collection<TenantDoc> {
        self.0.coll(TENANTS)
    }
}

#[async_trait]
impl TenantRepo for MongoTenantRepo {
    async fn upsert(&self, tenant: &Tenant) -> Result<()> {
        within(self.0.operation_timeout, async {
            let d = TenantDoc {
                id: tenant.id.0,
                slug: tenant.slug.as_str().to_owned(),
                name: tenant.name.clone(),
                time_zone: tenant.time_zone.name().to_owned(),
            };
            upsert_by_id(&self.coll(), "tenant", tenant.id.0, &d).await
        })
        .await
    }

    async fn get(&self, id: TenantId) -> Result<Tenant> {
        within(self.0.operation_timeout, async {
            self.coll()
                .find_one(doc! { "_id": id.0 })
                .await
                .map_err(me("tenant"))?
                .ok_or_else(|| Error::not_found("tenant", id))?
                .into_domain()
        })
        .await
    }

    async fn list(&self) -> Result<Vec<Tenant>> {
        within(self.0.operation_timeout, async {
            find_vec(&self.coll(), "tenant", doc! {}, doc! { "_id": 1 }, None)
                .await?
                .into_iter()
                .map(TenantDoc::into_domain)
                .collect()
        })
        .await
    }
}

// ---------------------------------------------------------------- audit

/// An audit event as stored; `_id` is a sequence number that orders events
/// written at the same instant.
#[derive(Debug, Serialize, Deserialize)]
struct AuditDoc {
    #[serde(rename = "_id")]
    id: i64,
    at: bson::DateTime,
    tenant_id: Option<i64>,
    action: String,
    subject: String,
    router_id: Option<i64>,
    outcome: String,
    reason: Option<String>,
}

impl AuditDoc {
    fn into_domain(self) -> Result<AuditEvent> {
        Ok(AuditEvent {
            at: from_bdate("at", self.at)?,
            tenant_id: self.tenant_id.map(TenantId),
            action: self.action,
            subject: self.subject,
            router_id: self.router_id.map(RouterId),
            outcome: AuditOutcome::parse("outcome", &self.outcome).map_err(stored_err)?,
            reason: self.reason,
        })
    }
}

/// [`AuditRepo`] on the `audit_events` collection.
#[derive(Debug)]
pub(crate) struct MongoAuditRepo(pub(crate) Ctx);

impl MongoAuditRepo {
    fn coll(&self) -> Collection<AuditDoc> {
        self.0.coll(AUDIT)
    }

    async fn newest(&self, filter: bson::Document, limit: usize) -> Result<Vec<AuditEvent>> {
        find_vec(
            &self.coll(),
            "audit event",
            filter,
            doc! { "at": -1, "_id": -1 },
            Some(limit),
        )
        .await?
        .into_iter()
        .map(AuditDoc::into_domain)
        .collect()
    }
}

#[async_trait]
impl AuditRepo for MongoAuditRepo {
    async fn append(&self, events: &[AuditEvent]) -> Result<()> {
        within(self.0.operation_timeout, async {
            if events.is_empty() {
                return Ok(());
            }
            let first = self.0.next_ids(AUDIT, events.len() as u64).await?;
            let docs: Vec<AuditDoc> = events
                .iter()
                .zip(first..)
                .map(|(e, id)| AuditDoc {
                    id,
                    at: to_bdate(e.at),
                    tenant_id: e.tenant_id.map(|t| t.0),
                    action: e.action.clone(),
                    subject: e.subject.clone(),
                    router_id: e.router_id.map(|r| r.0),
                    outcome: e.outcome.as_str().to_owned(),
                    reason: e.reason.clone(),
                })
                .collect();
            self.coll().insert_many(docs).await.map_err(me("audit event"))?;
            Ok(())
        })
        .await
    }

    async fn recent(&self, limit: usize) -> Result<Vec<AuditEvent>> {
        within(self.0.operation_timeout, async {
            self.newest(doc! {}, limit).await
        })
        .await
    }

    async fn of_router(&self, router: RouterId, limit: usize) -> Result<Vec<AuditEvent>> {
        within(self.0.operation_timeout, async {
            self.newest(doc! { "router_id": router.0 }, limit).await
        })
        .await
    }

    async fn delete_before(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        within(self.0.operation_timeout, async {
            let r = self
                .coll()
                .delete_many(doc! { "at": { "$lt": to_bdate(cutoff) } })
                .await
                .map_err(me("audit event"))?;
            Ok(r.deleted_count)
        })
        .await
    }
}

// ---------------------------------------------------------------- router status

#[derive(Debug, Serialize, Deserialize)]
struct RouterStatusDoc {
    #[serde(rename = "_id")]
    router_id: i64,
    online: bool,
    checked_at: bson::DateTime,
    changed_at: bson::DateTime,
    clock_skew_secs: Option<i64>,
    version: Option<String>,
    last_error: Option<String>,
}

impl RouterStatusDoc {
    fn into_domain(self) -> Result<RouterStatus> {
        Ok(RouterStatus {
            router_id: RouterId(self.router_id),
            online: self.online,
            checked_at: from_bdate("checked_at", self.checked_at)?,
            changed_at: from_bdate("changed_at", self.changed_at)?,
            clock_skew_secs: self.clock_skew_secs,
            version: self.version,
            last_error: self.last_error,
        })
    }
}

/// [`RouterStatusRepo`] on the `router_status` collection, one document per router.
#[derive(Debug)]
pub(crate) struct MongoRouterStatusRepo(pub(crate) Ctx);

impl MongoRouterStatusRepo {
    fn coll(&self) -> Collection<RouterStatusDoc> {
        self.0.coll(ROUTER_STATUS)
    }
}

#[async_trait]
impl RouterStatusRepo for MongoRouterStatusRepo {
    async fn get(&self, router: RouterId) -> Result<Option<RouterStatus>> {
        within(self.0.operation_timeout, async {
            self.coll()
                .find_one(doc! { "_id": router.0 })
                .await
                .map_err(me("router status"))?
                .map(RouterStatusDoc::into_domain)
                .transpose()
        })
        .await
    }

    async fn put(&self, status: &RouterStatus) -> Result<()> {
        within(self.0.operation_timeout, async {
            let d = RouterStatusDoc {
                router_id: status.router_id.0,
                online: status.online,
                checked_at: to_bdate(status.checked_at),
                changed_at: to_bdate(status.changed_at),
                clock_skew_secs: status.clock_skew_secs,
                version: status.version.clone(),
                last_error: status.last_error.clone(),
            };
            upsert_by_id(&self.coll(), "router status", status.router_id.0, &d).await
        })
        .await
    }

    async fn list(&self) -> Result<Vec<RouterStatus>> {
        within(self.0.operation_timeout, async {
            find_vec(&self.coll(), "router status", doc! {}, doc! { "_id": 1 }, None)
                .await?
                .into_iter()
                .map(RouterStatusDoc::into_domain)
                .collect()
        })
        .await
    }
}
