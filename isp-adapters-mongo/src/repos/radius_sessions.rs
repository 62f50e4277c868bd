//! RADIUS sessions: what the routers in RADIUS mode report in accounting.
//!
//! One document per (router, `Acct-Session-Id`), `_id` `"<router>/<session id>"`.
//! `live` says whether it is open and `stopped` is always a date (the epoch
//! while live), so that no filter tests a null (see the crate docs on
//! nx-27017). Every write is one conditional single-document update or insert.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use isp_core::domain::*;
use isp_core::ports::RadiusSessionRepo;
use isp_core::{Error, Result};
use mongodb::bson::{self, doc, Document};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::{find_vec, guarded, me, update_matched, within};
use crate::codec::*;
use crate::collections::RADIUS_SESSIONS;
use crate::error::is_duplicate_key;
use crate::Ctx;

const E: &str = "RADIUS session";

#[derive(Debug, Serialize, Deserialize)]
struct SessionDoc {
    #[serde(rename = "_id")]
    key: String,
    router_id: i64,
    session_id: String,
    tenant_id: i64,
    user: String,
    kind: String,
    address: Option<String>,
    calling_station: Option<String>,
    started: bson::DateTime,
    updated: bson::DateTime,
    input_octets: i64,
    output_octets: i64,
    live: bool,
    stopped: bson::DateTime,
}

fn key(router: RouterId, session_id: &str) -> String {
    format!("{}/{session_id}", router.0)
}

fn octets(field: &'static str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::invalid(field, v, "at most 9223372036854775807"))
}

impl SessionDoc {
    fn new(s: &RadiusSession, stopped: Option<DateTime<Utc>>) -> Result<Self> {
        Ok(SessionDoc {
            key: key(s.router, &s.session_id),
            router_id: s.router.0,
            session_id: s.session_id.clone(),
            tenant_id: s.tenant.0,
            user: s.user.clone(),
            kind: s.kind.as_str().to_owned(),
            address: s.address.map(|a| a.to_string()),
            calling_station: s.calling_station.clone(),
            started: to_bdate(s.started),
            updated: to_bdate(s.updated),
            input_octets: octets("input_octets", s.input_octets)?,
            output_octets: octets("output_octets", s.output_octets)?,
            live: stopped.is_none(),
            stopped: to_bdate(stopped.unwrap_or(DateTime::<Utc>::UNIX_EPOCH)),
        })
    }

    /// The fields a record sets on an existing session (not `started`,
    /// `live`, `stopped`).
    fn record_fields(&self) -> Document {
        doc! {
            "tenant_id": self.tenant_id,
            "user": &self.user,
            "kind": &self.kind,
            "address": self.address.clone(),
            "calling_station": self.calling_station.clone(),
            "updated": self.updated,
            "input_octets": self.input_octets,
            "output_octets": self.output_octets,
        }
    }

    fn into_domain(self) -> Result<RadiusSession> {
        let count =
            |field: &str, v: i64| u64::try_from(v).map_err(|_| stored(field, v, "must not be negative"));
        Ok(RadiusSession {
            router: RouterId(self.router_id),
            tenant: TenantId(self.tenant_id),
            user: self.user,
            kind: RadiusSessionKind::parse("radius_sessions.kind", &self.kind).map_err(stored_err)?,
            address: self
                .address
                .as_deref()
                .map(|a| parse_ipv4("radius_sessions.address", a))
                .transpose()
                .map_err(stored_err)?,
            calling_station: self.calling_station,
            started: from_bdate("started", self.started)?,
            updated: from_bdate("updated", self.updated)?,
            input_octets: count("input_octets", self.input_octets)?,
            output_octets: count("output_octets", self.output_octets)?,
            stopped: if self.live {
                None
            } else {
                Some(from_bdate("stopped", self.stopped)?)
            },
            session_id: self.session_id,
        })
    }
}

/// [`RadiusSessionRepo`] on the `radius_sessions` collection.
#[derive(Debug)]
pub(crate) struct MongoRadiusSessionRepo(pub(crate) Ctx);

impl MongoRadiusSessionRepo {
    fn coll(&self) -> Collection<SessionDoc> {
        self.0.coll(RADIUS_SESSIONS)
    }

    /// Inserts `d`; `false` when its key is already there.
    async fn insert_new(&self, d: &SessionDoc) -> Result<bool> {
        match self.coll().insert_one(d).await {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(me(E)(e)),
        }
    }

    async fn close_many(&self, filter: Document, at: DateTime<Utc>) -> Result<u64> {
        let r = self
            .coll()
            .update_many(
                filter,
                guarded(doc! { "$set": { "live": false, "stopped": to_bdate(at) } }),
            )
            .await
            .map_err(me(E))?;
        Ok(r.modified_count)
    }

    async fn find(&self, filter: Document) -> Result<Vec<RadiusSession>> {
        find_vec(
            &self.coll(),
            E,
            filter,
            doc! { "started": 1, "session_id": 1 },
            None,
        )
        .await?
        .into_iter()
        .map(SessionDoc::into_domain)
        .collect()
    }
}

#[async_trait]
impl RadiusSessionRepo for MongoRadiusSessionRepo {
    async fn upsert(&self, session: &RadiusSession, start: bool) -> Result<bool> {
        let d = SessionDoc::new(session, None)?;
        within(self.0.operation_timeout, async {
            let live = doc! { "_id": &d.key, "live": true };
            if update_matched(&self.coll(), E, live, doc! { "$set": d.record_fields() }).await? {
                return Ok(true);
            }
            if self.insert_new(&d).await? {
                return Ok(true);
            }
            if !start {
                return Ok(false);
            }
            // A Start reusing the key of a closed session: a new session.
            let mut fields = d.record_fields();
            fields.insert("started", d.started);
            fields.insert("live", true);
            fields.insert("stopped", d.stopped);
            update_matched(&self.coll(), E, doc! { "_id": &d.key }, doc! { "$set": fields }).await
        })
        .await
    }

    async fn stop(&self, session: &RadiusSession) -> Result<bool> {
        let stopped = session.stopped.unwrap_or(session.updated);
        let d = SessionDoc::new(session, Some(stopped))?;
        within(self.0.operation_timeout, async {
            let mut closing = d.record_fields();
            closing.insert("live", false);
            closing.insert("stopped", d.stopped);
            let live = doc! { "_id": &d.key, "live": true };
            if update_matched(&self.coll(), E, live, doc! { "$set": closing }).await? {
                return Ok(true);
            }
            let any = doc! { "_id": &d.key };
            if !update_matched(&self.coll(), E, any, doc! { "$set": d.record_fields() }).await? {
                // Its Start was lost: kept, closed.
                self.insert_new(&d).await?;
            }
            Ok(false)
        })
        .await
    }

    async fn close(&self, router: RouterId, session_id: &str, at: DateTime<Utc>) -> Result<bool> {
        within(self.0.operation_timeout, async {
            update_matched(
                &self.coll(),
                E,
                doc! { "_id": key(router, session_id), "live": true },
                doc! { "$set": { "live": false, "stopped": to_bdate(at) } },
            )
            .await
        })
        .await
    }

    async fn close_router(&self, router: RouterId, at: DateTime<Utc>) -> Result<u64> {
        within(
            self.0.operation_timeout,
            self.close_many(doc! { "router_id": router.0, "live": true }, at),
        )
        .await
    }

    async fn close_stale(&self, cutoff: DateTime<Utc>, at: DateTime<Utc>) -> Result<u64> {
        within(
            self.0.operation_timeout,
            self.close_many(doc! { "live": true, "updated": { "$lt": to_bdate(cutoff) } }, at),
        )
        .await
    }

    async fn get(&self, router: RouterId, session_id: &str) -> Result<Option<RadiusSession>> {
        within(self.0.operation_timeout, async {
            self.coll()
                .find_one(doc! { "_id": key(router, session_id) })
                .await
                .map_err(me(E))?
                .map(SessionDoc::into_domain)
                .transpose()
        })
        .await
    }

    async fn live_on_router(&self, router: RouterId) -> Result<Vec<RadiusSession>> {
        within(
            self.0.operation_timeout,
            self.find(doc! { "router_id": router.0, "live": true }),
        )
        .await
    }

    async fn live_of_user(&self, tenant: TenantId, user: &str) -> Result<Vec<RadiusSession>> {
        within(
            self.0.operation_timeout,
            self.find(doc! { "tenant_id": tenant.0, "user": user, "live": true }),
        )
        .await
    }

    async fn delete_closed_before(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        within(self.0.operation_timeout, async {
            let r = self
                .coll()
                .delete_many(doc! { "live": false, "stopped": { "$lt": to_bdate(cutoff) } })
                .await
                .map_err(me(E))?;
            Ok(r.deleted_count)
        })
        .await
    }
}
