//! The one lease protocol, for every leased aggregate.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{held_by, retry_lease, MemoryStore, State};
use crate::domain::*;
use crate::error::Result;
use crate::ports::{LeaseRepo, Leased};

/// [`LeaseRepo`] over a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryLeaseRepo {
    pub(super) store: MemoryStore,
}

/// The lease and attempt counter of one item, and whether it may be retried.
fn leased_mut(s: &mut State, kind: Leased, id: i64) -> Option<(&mut Option<Lease>, &mut u32, bool)> {
    match kind {
        Leased::Subscribers => s
            .subscribers
            .get_mut(&SubscriberId(id))
            .map(|x| (&mut x.lease, &mut x.attempts, true)),
        Leased::Vouchers => s
            .vouchers
            .get_mut(&VoucherId(id))
            .map(|x| (&mut x.lease, &mut x.attempts, true)),
        Leased::Services => s
            .services
            .get_mut(&ServiceId(id))
            .map(|x| (&mut x.lease, &mut x.attempts, true)),
        Leased::Notices => s.notices.get_mut(&NoticeId(id)).map(|x| {
            let pending = x.status == NoticeStatus::Pending;
            (&mut x.lease, &mut x.attempts, pending)
        }),
    }
}

#[async_trait]
impl LeaseRepo for MemoryLeaseRepo {
    async fn retry_later_all(
        &self,
        kind: Leased,
        ids: &[i64],
        holder: &str,
        until: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        let mut s = self.store.lock();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let done = match leased_mut(&mut s, kind, *id) {
                Some((lease, attempts, true)) if held_by(lease.as_ref(), holder) => {
                    *attempts = attempts.saturating_add(1);
                    *lease = retry_lease(until);
                    true
                }
                _ => false,
            };
            out.push(done);
        }
        Ok(out)
    }

    async fn release_all(&self, kind: Leased, ids: &[i64], holder: &str) -> Result<Vec<bool>> {
        let mut s = self.store.lock();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let done = match leased_mut(&mut s, kind, *id) {
                Some((lease, _, _)) if held_by(lease.as_ref(), holder) => {
                    *lease = None;
                    true
                }
                _ => false,
            };
            out.push(done);
        }
        Ok(out)
    }

    async fn renew_all(
        &self,
        kind: Leased,
        ids: &[i64],
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        let mut s = self.store.lock();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let done = match leased_mut(&mut s, kind, *id) {
                Some((Some(lease), _, _)) if lease.holder == holder && lease.until > now => {
                    lease.until = until;
                    true
                }
                _ => false,
            };
            out.push(done);
        }
        Ok(out)
    }
}
