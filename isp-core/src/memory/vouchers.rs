//! Vouchers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    claim_lease, first_by_key, held_by_or_none, hotspot_name_taken, lease_is_free, next, MemoryStore,
};
use crate::domain::*;
use crate::error::{Error, Result};
use crate::ports::{self, VoucherRepo};

/// [`VoucherRepo`] over a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryVoucherRepo {
    pub(super) store: MemoryStore,
}

fn not_found(id: VoucherId) -> Error {
    Error::not_found("voucher", id)
}

#[async_trait]
impl VoucherRepo for MemoryVoucherRepo {
    async fn insert(&self, new: &NewVoucher) -> Result<Voucher> {
        let mut s = self.store.lock();
        if s.vouchers
            .values()
            .any(|v| v.tenant_id == new.tenant_id && v.code == new.code)
        {
            return Err(Error::conflict(
                "voucher",
                format!(
                    "tenant {} already has a voucher with code {}",
                    new.tenant_id, new.code
                ),
            ));
        }
        if hotspot_name_taken(&s, new.tenant_id, &new.code) {
            return Err(ports::hotspot_name_taken(
                "voucher",
                "code",
                new.tenant_id,
                new.code.as_str(),
            ));
        }
        let id = VoucherId(next(&mut s.seq.voucher));
        let v = Voucher {
            id,
            tenant_id: new.tenant_id,
            router_id: new.router_id,
            code: new.code.clone(),
            plan_id: new.plan_id,
            status: VoucherStatus::Unused,
            activation_deadline: new.activation_deadline,
            purchase_deadline: new.purchase_deadline,
            duration: new.duration,
            started_at: None,
            expected_end: None,
            expired_reason: None,
            expired_at: None,
            removed_from_router: false,
            lease: None,
            attempts: 0,
        };
        s.vouchers.insert(id, v.clone());
        Ok(v)
    }

    async fn get(&self, id: VoucherId) -> Result<Voucher> {
        self.store
            .lock()
            .vouchers
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    async fn find_by_code(&self, tenant: TenantId, code: &RosName) -> Result<Option<Voucher>> {
        Ok(self
            .store
            .lock()
            .vouchers
            .values()
            .find(|v| v.tenant_id == tenant && &v.code == code)
            .cloned())
    }

    async fn activate(&self, id: VoucherId, started_at: DateTime<Utc>) -> Result<Voucher> {
        let mut s = self.store.lock();
        let v = s.vouchers.get_mut(&id).ok_or_else(|| not_found(id))?;
        if v.status != VoucherStatus::Unused {
            return Err(Error::conflict(
                "voucher",
                format!("voucher {} is {}, not unused", v.code, v.status.as_str()),
            ));
        }
        v.status = VoucherStatus::Active;
        v.started_at = Some(started_at);
        v.expected_end = Some(started_at + v.duration.as_chrono());
        Ok(v.clone())
    }

    async fn list_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Voucher>> {
        let s = self.store.lock();
        let due = s
            .vouchers
            .values()
            .filter_map(|v| v.deadline().filter(|d| *d <= now).map(|d| (d, v.id)))
            .collect();
        Ok(first_by_key(due, limit)
            .into_iter()
            .filter_map(|id| s.vouchers.get(&id).cloned())
            .collect())
    }

    async fn claim_due(&self, claim: &Claim) -> Result<Vec<Voucher>> {
        let mut s = self.store.lock();
        let due = s
            .vouchers
            .values()
            .filter(|v| lease_is_free(v.lease.as_ref(), claim.now))
            .filter_map(|v| v.deadline().filter(|d| *d <= claim.now).map(|d| (d, v.id)))
            .collect();
        let mut out = Vec::new();
        for id in first_by_key(due, claim.limit) {
            if let Some(v) = s.vouchers.get_mut(&id) {
                v.lease = claim_lease(claim);
                out.push(v.clone());
            }
        }
        Ok(out)
    }

    async fn expire(
        &self,
        id: VoucherId,
        seen: VoucherStatus,
        reason: VoucherExpiryReason,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut s = self.store.lock();
        let v = s.vouchers.get_mut(&id).ok_or_else(|| not_found(id))?;
        if v.status != seen || v.status == VoucherStatus::Expired {
            return Ok(false);
        }
        v.status = VoucherStatus::Expired;
        v.expired_reason = Some(reason);
        v.expired_at = Some(at);
        Ok(true)
    }

    async fn mark_removed(&self, id: VoucherId, holder: &str) -> Result<bool> {
        let mut s = self.store.lock();
        let v = s.vouchers.get_mut(&id).ok_or_else(|| not_found(id))?;
        let finished = matches!(v.status, VoucherStatus::Expired | VoucherStatus::Revoked);
        if !finished || !held_by_or_none(v.lease.as_ref(), holder) {
            return Ok(false);
        }
        v.removed_from_router = true;
        v.lease = None;
        v.attempts = 0;
        Ok(true)
    }

    async fn on_router(&self, router: RouterId, statuses: &[VoucherStatus]) -> Result<Vec<Voucher>> {
        Ok(self
            .store
            .lock()
            .vouchers
            .values()
            .filter(|v| v.router_id == router && statuses.contains(&v.status))
            .cloned()
            .collect())
    }

    async fn next_deadline_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .store
            .lock()
            .vouchers
            .values()
            .filter_map(Voucher::deadline)
            .filter(|d| *d > now)
            .min())
    }
}
