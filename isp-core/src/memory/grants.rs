//! Grants, payments and pending router grants.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{claim_lease, held_by, held_by_or_none, lease_is_free, retry_lease, MemoryStore};
use crate::domain::*;
use crate::error::{Error, Result};
use crate::ports::GrantRepo;

/// [`GrantRepo`] over a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryGrantRepo {
    pub(super) store: MemoryStore,
}

#[async_trait]
impl GrantRepo for MemoryGrantRepo {
    async fn write(&self, grant: &GrantWrite) -> Result<GrantWritten> {
        let mut s = self.store.lock();
        let sub = s
            .subscribers
            .get(&grant.subscriber_id)
            .cloned()
            .ok_or_else(|| Error::not_found("subscriber", grant.subscriber_id))?;
        if let Some(p) = &grant.payment {
            if let Some(done) = s.payments.get(&(sub.tenant_id, p.reference.clone())) {
                return Ok(GrantWritten::DuplicatePayment(done.clone()));
            }
        }
        if sub.paid_until != grant.paid_until_seen {
            return Ok(GrantWritten::Stale);
        }
        let mut sub = sub;
        sub.paid_until = grant.paid_until;
        sub.active = true;
        sub.disconnected_at = None;
        sub.attempts = 0;
        sub.lease = None;
        s.subscribers.insert(sub.id, sub.clone());
        if let Some(p) = &grant.payment {
            let payment = Payment {
                tenant_id: sub.tenant_id,
                reference: p.reference.clone(),
                subscriber_id: sub.id,
                amount: p.amount,
                paid_until: grant.paid_until,
                created_at: grant.at,
            };
            s.payments.insert((sub.tenant_id, p.reference.clone()), payment);
        }
        for router in &grant.routers {
            let pending = PendingGrant {
                subscriber_id: sub.id,
                router_id: *router,
                created_at: grant.at,
                attempts: 0,
                last_error: None,
                lease: Some(Lease {
                    holder: grant.holder.clone(),
                    until: grant.lease_until,
                }),
            };
            s.pending_grants.insert((sub.id, *router), pending);
        }
        Ok(GrantWritten::Applied(sub))
    }

    async fn payment(&self, tenant: TenantId, reference: &PaymentReference) -> Result<Option<Payment>> {
        let s = self.store.lock();
        Ok(s.payments.get(&(tenant, reference.clone())).cloned())
    }

    async fn claim_pending(&self, claim: &Claim) -> Result<Vec<PendingGrant>> {
        let mut s = self.store.lock();
        let mut due: Vec<(DateTime<Utc>, (SubscriberId, RouterId))> = s
            .pending_grants
            .values()
            .filter(|g| lease_is_free(g.lease.as_ref(), claim.now))
            .map(|g| (g.created_at, (g.subscriber_id, g.router_id)))
            .collect();
        due.sort();
        due.truncate(claim.limit);
        let mut out = Vec::with_capacity(due.len());
        for (_, key) in due {
            if let Some(g) = s.pending_grants.get_mut(&key) {
                g.lease = claim_lease(claim);
                out.push(g.clone());
            }
        }
        Ok(out)
    }

    async fn complete(&self, done: &[(SubscriberId, RouterId)], holder: &str) -> Result<Vec<bool>> {
        let mut s = self.store.lock();
        Ok(done
            .iter()
            .map(|key| {
                let mine = s
                    .pending_grants
                    .get(key)
                    .is_some_and(|g| held_by_or_none(g.lease.as_ref(), holder));
                if mine {
                    s.pending_grants.remove(key);
                }
                mine
            })
            .collect())
    }

    async fn retry_later(
        &self,
        items: &[(SubscriberId, RouterId)],
        holder: &str,
        until: DateTime<Utc>,
        error: &str,
    ) -> Result<()> {
        let mut s = self.store.lock();
        for key in items {
            if let Some(g) = s.pending_grants.get_mut(key) {
                if held_by(g.lease.as_ref(), holder) {
                    g.attempts += 1;
                    g.last_error = Some(error.to_owned());
                    g.lease = retry_lease(until);
                }
            }
        }
        Ok(())
    }

    async fn cancel_of(&self, subscriber: SubscriberId) -> Result<u64> {
        let mut s = self.store.lock();
        let before = s.pending_grants.len();
        s.pending_grants.retain(|(sub, _), _| *sub != subscriber);
        Ok((before - s.pending_grants.len()) as u64)
    }

    async fn pending_of(&self, subscriber: SubscriberId) -> Result<Vec<PendingGrant>> {
        let s = self.store.lock();
        Ok(s.pending_grants
            .values()
            .filter(|g| g.subscriber_id == subscriber)
            .cloned()
            .collect())
    }

    async fn next_due_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let s = self.store.lock();
        Ok(s.pending_grants
            .values()
            .filter_map(|g| g.lease.as_ref().map(|l| l.until))
            .filter(|until| *until > now)
            .min())
    }

    async fn count_pending(&self, now: DateTime<Utc>) -> Result<(u64, u64)> {
        let s = self.store.lock();
        let all = s.pending_grants.len() as u64;
        let due = s
            .pending_grants
            .values()
            .filter(|g| lease_is_free(g.lease.as_ref(), now))
            .count() as u64;
        Ok((all, due))
    }
}
