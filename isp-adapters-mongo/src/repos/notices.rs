//! Notices (SMS owed), unique per (recipient, kind, deadline, subject).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use isp_core::domain::*;
use isp_core::ports::{NoticeRepo, RETRY_HOLDER};
use isp_core::{Error, Result};
use mongodb::bson::{self, doc};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::within;
use super::{and_into, any_of, cas, claim_loop, held, held_or_none, me, update_matched, HasId};
use crate::codec::*;
use crate::collections::NOTICES;
use crate::error::is_duplicate_key;
use crate::Ctx;

const N: &str = "notice";

#[derive(Debug, Serialize, Deserialize)]
struct NoticeDoc {
    #[serde(rename = "_id")]
    id: i64,
    tenant_id: i64,
    recipient: String,
    kind: String,
    deadline: bson::DateTime,
    /// Missing in documents from before the subject was part of the key
    /// ([`upgrade`] sets it to "").
    #[serde(default)]
    subject: String,
    body: String,
    status: String,
    attempts: i64,
    created_at: bson::DateTime,
    sent_at: Option<bson::DateTime>,
    lease: LeaseDoc,
}

impl HasId for NoticeDoc {
    fn id(&self) -> i64 {
        self.id
    }
}

impl NoticeDoc {
    fn into_domain(self) -> Result<Notice> {
        Ok(Notice {
            id: NoticeId(self.id),
            tenant_id: TenantId(self.tenant_id),
            recipient: PhoneNumber::parse("recipient", &self.recipient).map_err(stored_err)?,
            kind: NoticeKind::parse("kind", &self.kind).map_err(stored_err)?,
            deadline: from_bdate("deadline", self.deadline)?,
            subject: self.subject,
            body: self.body,
            status: NoticeStatus::parse("status", &self.status).map_err(stored_err)?,
            attempts: to_u32("attempts", self.attempts)?,
            created_at: from_bdate("created_at", self.created_at)?,
            sent_at: from_opt_bdate("sent_at", self.sent_at)?,
            lease: self.lease.into_domain()?,
        })
    }
}

/// [`NoticeRepo`] on the `notices` collection.
#[derive(Debug)]
pub(crate) struct MongoNoticeRepo(pub(crate) Ctx);

impl MongoNoticeRepo {
    fn coll(&self) -> Collection<NoticeDoc> {
        self.0.coll(NOTICES)
    }

    /// Pending, and the lease is `holder`'s (or, with `or_none`, there is none).
    fn pending_held(holder: &str, or_none: bool) -> bson::Document {
        let lease = if or_none {
            held_or_none(holder)
        } else {
            held(holder)
        };
        and_into(doc! { "status": NoticeStatus::Pending.as_str() }, lease)
    }

    /// Ends a pending notice held by `holder` (or unleased) with `status`.
    async fn end(&self, id: NoticeId, holder: &str, status: NoticeStatus) -> Result<bool> {
        within(self.0.operation_timeout, async {
            cas(
                &self.coll(),
                N,
                id.0,
                Self::pending_held(holder, true),
                doc! { "$set": { "status": status.as_str(), "lease": no_lease() } },
            )
            .await
        })
        .await
    }
}

/// The fields of the unique index of notices before the subject was part of their key.
const OLD_KEY_FIELDS: [&str; 3] = ["recipient", "kind", "deadline"];

/// Brings stored notices to the (recipient, kind, deadline, subject) key:
/// documents without a subject get "" (a missing field would index as null,
/// apart from ""), and the old (recipient, kind, deadline) unique index is
/// dropped. Idempotent; run before the indexes are created.
pub(crate) async fn upgrade(db: &mongodb::Database) -> Result<()> {
    let coll = db.collection::<bson::Document>(NOTICES);
    coll.update_many(
        doc! { "subject": { "$exists": false } },
        doc! { "$set": { "subject": "" } },
    )
    .await
    .map_err(me(N))?;
    // Found by its keys, not its name: servers such as nx-27017 name indexes
    // themselves, and an operator may have created it under another name.
    let mut indexes = coll.list_indexes().await.map_err(me(N))?;
    let mut old = Vec::new();
    while let Some(model) = indexes.try_next().await.map_err(me(N))? {
        let keys: Vec<&str> = model.keys.keys().map(String::as_str).collect();
        if keys == OLD_KEY_FIELDS {
            old.extend(model.options.and_then(|o| o.name));
        }
    }
    for name in old {
        coll.drop_index(name).await.map_err(me(N))?;
    }
    Ok(())
}

#[async_trait]
impl NoticeRepo for MongoNoticeRepo {
    async fn reserve_all(&self, new: &[NewNotice]) -> Result<Vec<Option<NoticeId>>> {
        within(self.0.operation_timeout, async {
            let mut out = Vec::with_capacity(new.len());
            for new in new {
                let d = NoticeDoc {
                    id: self.0.next_id(NOTICES).await?,
                    tenant_id: new.tenant_id.0,
                    recipient: new.recipient.as_str().to_owned(),
                    kind: new.kind.as_str().to_owned(),
                    deadline: to_bdate(new.deadline),
                    subject: new.subject.clone(),
                    body: new.body.clone(),
                    status: NoticeStatus::Pending.as_str().to_owned(),
                    attempts: 0,
                    created_at: to_bdate(new.created_at),
                    sent_at: None,
                    lease: LeaseDoc::none(),
                };
                match self.coll().insert_one(&d).await {
                    Ok(_) => out.push(Some(NoticeId(d.id))),
                    // The unique (recipient, kind, deadline, subject) index: already reserved.
                    Err(e) if is_duplicate_key(&e) => out.push(None),
                    Err(e) => return Err(me(N)(e)),
                }
            }
            Ok(out)
        })
        .await
    }

    async fn get(&self, id: NoticeId) -> Result<Notice> {
        within(self.0.operation_timeout, async {
            self.coll()
                .find_one(doc! { "_id": id.0 })
                .await
                .map_err(me(N))?
                .ok_or_else(|| Error::not_found(N, id))?
                .into_domain()
        })
        .await
    }

    async fn find(
        &self,
        recipient: &PhoneNumber,
        kind: NoticeKind,
        deadline: DateTime<Utc>,
        subject: &str,
    ) -> Result<Option<Notice>> {
        within(self.0.operation_timeout, async {
            self.coll()
                .find_one(doc! {
                    "recipient": recipient.as_str(),
                    "kind": kind.as_str(),
                    "deadline": to_bdate(deadline),
                    "subject": subject,
                })
                .await
                .map_err(me(N))?
                .map(NoticeDoc::into_domain)
                .transpose()
        })
        .await
    }

    async fn claim_pending(&self, claim: &Claim) -> Result<Vec<Notice>> {
        within(self.0.operation_timeout, async {
            // Unleased, or a retry back-off that ended. A sender's expired lease is
            // not free here: that send's outcome is unknown (see `abandon_stale`).
            let due = and_into(
                doc! { "status": NoticeStatus::Pending.as_str() },
                any_of("lease.holder", &["", RETRY_HOLDER]),
            );
            claim_loop(&self.coll(), N, due, doc! { "created_at": 1, "_id": 1 }, claim)
                .await?
                .into_iter()
                .map(NoticeDoc::into_domain)
                .collect()
        })
        .await
    }

    async fn mark_all_sent(&self, ids: &[NoticeId], holder: &str, at: DateTime<Utc>) -> Result<Vec<bool>> {
        within(self.0.operation_timeout, async {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let done = update_matched(
                    &self.coll(),
                    N,
                    and_into(doc! { "_id": id.0 }, Self::pending_held(holder, true)),
                    doc! { "$set": {
                        "status": NoticeStatus::Sent.as_str(),
                        "sent_at": to_bdate(at),
                        "lease": no_lease(),
                    } },
                )
                .await?;
                out.push(done);
            }
            Ok(out)
        })
        .await
    }
    async fn abandon(&self, id: NoticeId, holder: &str) -> Result<bool> {
        self.end(id, holder, NoticeStatus::Abandoned).await
    }

    async fn mark_unknown(&self, id: NoticeId, holder: &str) -> Result<bool> {
        self.end(id, holder, NoticeStatus::Unknown).await
    }

    async fn abandon_stale(&self, now: DateTime<Utc>) -> Result<u64> {
        within(self.0.operation_timeout, async {
            let r = self
                .coll()
                .update_many(
                    doc! {
                        "status": NoticeStatus::Pending.as_str(),
                        // A sender's: neither none ("") nor a retry back-off; not
                        // `$nin` (see `any_of`).
                        "lease.holder": { "$gt": "", "$ne": RETRY_HOLDER },
                        "lease.until": { "$lt": to_bdate(now) },
                    },
                    doc! { "$set": { "status": NoticeStatus::Abandoned.as_str(), "lease": no_lease() } },
                )
                .await
                .map_err(me(N))?;
            // The filter only matches notices that change, so matched = changed.
            Ok(r.matched_count)
        })
        .await
    }

    async fn count(&self, status: NoticeStatus) -> Result<u64> {
        within(self.0.operation_timeout, async {
            self.coll()
                .count_documents(doc! { "status": status.as_str() })
                .await
                .map_err(me(N))
        })
        .await
    }
}
