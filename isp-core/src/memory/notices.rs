//! Notices (SMS owed).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{claim_lease, first_by_key, held_by_or_none, next, MemoryStore};
use crate::domain::*;
use crate::error::{Error, Result};
use crate::ports::{NoticeRepo, RETRY_HOLDER};

/// [`NoticeRepo`] over a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryNoticeRepo {
    pub(super) store: MemoryStore,
}

fn not_found(id: NoticeId) -> Error {
    Error::not_found("notice", id)
}

/// A pending notice that may be (re)sent now: never leased, or its retry back-off ended.
fn sendable(n: &Notice, now: DateTime<Utc>) -> bool {
    n.status == NoticeStatus::Pending
        && match &n.lease {
            None => true,
            Some(l) => l.holder == RETRY_HOLDER && l.until <= now,
        }
}

impl MemoryNoticeRepo {
    /// Ends a pending notice held by `holder` (or unleased) with `status`.
    fn end(&self, id: NoticeId, holder: &str, status: NoticeStatus) -> Result<bool> {
        let mut s = self.store.lock();
        let n = s.notices.get_mut(&id).ok_or_else(|| not_found(id))?;
        if n.status != NoticeStatus::Pending || !held_by_or_none(n.lease.as_ref(), holder) {
            return Ok(false);
        }
        n.status = status;
        n.lease = None;
        Ok(true)
    }
}

#[async_trait]
impl NoticeRepo for MemoryNoticeRepo {
    async fn reserve_all(&self, new: &[NewNotice]) -> Result<Vec<Option<NoticeId>>> {
        let mut s = self.store.lock();
        let mut out = Vec::with_capacity(new.len());
        for new in new {
            if s.notices.values().any(|n| {
                n.recipient == new.recipient
                    && n.kind == new.kind
                    && n.deadline == new.deadline
                    && n.subject == new.subject
            }) {
                out.push(None);
                continue;
            }
            let id = NoticeId(next(&mut s.seq.notice));
            let n = Notice {
                id,
                tenant_id: new.tenant_id,
                recipient: new.recipient.clone(),
                kind: new.kind,
                deadline: new.deadline,
                subject: new.subject.clone(),
                body: new.body.clone(),
                status: NoticeStatus::Pending,
                attempts: 0,
                created_at: new.created_at,
                sent_at: None,
                lease: None,
            };
            s.notices.insert(id, n);
            out.push(Some(id));
        }
        Ok(out)
    }

    async fn get(&self, id: NoticeId) -> Result<Notice> {
        self.store
            .lock()
            .notices
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    async fn find(
        &self,
        recipient: &PhoneNumber,
        kind: NoticeKind,
        deadline: DateTime<Utc>,
        subject: &str,
    ) -> Result<Option<Notice>> {
        Ok(self
            .store
            .lock()
            .notices
            .values()
            .find(|n| {
                &n.recipient == recipient && n.kind == kind && n.deadline == deadline && n.subject == subject
            })
            .cloned())
    }

    async fn claim_pending(&self, claim: &Claim) -> Result<Vec<Notice>> {
        let mut s = self.store.lock();
        let due = s
            .notices
            .values()
            .filter(|n| sendable(n, claim.now))
            .map(|n| (n.created_at, n.id))
            .collect();
        let mut out = Vec::new();
        for id in first_by_key(due, claim.limit) {
            if let Some(n) = s.notices.get_mut(&id) {
                n.lease = claim_lease(claim);
                out.push(n.clone());
            }
        }
        Ok(out)
    }

    async fn mark_all_sent(&self, ids: &[NoticeId], holder: &str, at: DateTime<Utc>) -> Result<Vec<bool>> {
        let mut s = self.store.lock();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let done = match s.notices.get_mut(id) {
                Some(n) if n.status == NoticeStatus::Pending && held_by_or_none(n.lease.as_ref(), holder) => {
                    n.status = NoticeStatus::Sent;
                    n.sent_at = Some(at);
                    n.lease = None;
                    true
                }
                _ => false,
            };
            out.push(done);
        }
        Ok(out)
    }

    async fn abandon(&self, id: NoticeId, holder: &str) -> Result<bool> {
        self.end(id, holder, NoticeStatus::Abandoned)
    }

    async fn mark_unknown(&self, id: NoticeId, holder: &str) -> Result<bool> {
        self.end(id, holder, NoticeStatus::Unknown)
    }

    async fn abandon_stale(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut s = self.store.lock();
        let mut count = 0;
        for n in s.notices.values_mut() {
            let stale = n.status == NoticeStatus::Pending
                && n.lease
                    .as_ref()
                    .is_some_and(|l| l.holder != RETRY_HOLDER && l.until < now);
            if stale {
                n.status = NoticeStatus::Abandoned;
                n.lease = None;
                count += 1;
            }
        }
        Ok(count)
    }

    async fn count(&self, status: NoticeStatus) -> Result<u64> {
        let n = self
            .store
            .lock()
            .notices
            .values()
            .filter(|n| n.status == status)
            .count();
        Ok(n as u64)
    }
}
