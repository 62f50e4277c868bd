//! The admin health summary (seed 001's expiry-watcher endpoint) and the
//! scheduler's next wake-up.

use chrono::{DateTime, Days, Duration, Utc};
use serde::Serialize;

use crate::domain::{NoticeStatus, PhoneNumber, SubscriberId};
use crate::error::Result;
use crate::jobs::common::ceil_div;
use crate::jobs::Engine;
use crate::policy::reminders::{service_slots, HOTSPOT_LEAD, PAYMENT_DUE_DAYS_BEFORE};
use crate::policy::time::{end_of_day, local_date};

/// Longest list in a summary; the counts beside the lists are true totals.
pub const SUMMARY_LIST_LIMIT: usize = 100;
/// "Expiring soon" means within this long.
pub const EXPIRING_SOON: Duration = Duration::minutes(30);
/// A subscriber expired for longer than this and still not confirmed
/// disconnected needs attention (shorter is the disconnect job's normal lag).
pub const DISCONNECT_GRACE: Duration = Duration::minutes(2);

/// Overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Nothing overdue, every checked router online.
    Healthy,
    /// Someone is overdue for disconnection, or a router is offline.
    NeedsAttention,
}

/// A subscriber whose access ends soon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiringSubscriber {
    /// Id.
    pub id: SubscriberId,
    /// Phone.
    pub phone_number: PhoneNumber,
    /// `paid_until`.
    pub expires_at: DateTime<Utc>,
    /// Whole minutes left, rounded up.
    pub remaining_minutes: i64,
}

/// A subscriber whose access ended but whose disconnect is not confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverdueSubscriber {
    /// Id.
    pub id: SubscriberId,
    /// Phone.
    pub phone_number: PhoneNumber,
    /// `paid_until`.
    pub expired_at: DateTime<Utc>,
    /// Whole minutes since, rounded down.
    pub overdue_minutes: i64,
    /// Failed disconnect attempts so far.
    pub attempts: u32,
}

/// What the admin API shows about enforcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthSummary {
    /// When computed.
    pub timestamp: DateTime<Utc>,
    /// Active subscribers with `paid_until` in the future.
    pub total_active_users: u64,
    /// Subscribers expiring within 30 minutes (all of them).
    pub expiring_in_30_min: u64,
    /// Those subscribers, soonest first (at most [`SUMMARY_LIST_LIMIT`]).
    pub expiring_soon: Vec<ExpiringSubscriber>,
    /// Expired, still active (all of them).
    pub expired_but_still_active: u64,
    /// Of those, the ones expired longer than [`DISCONNECT_GRACE`] ago.
    pub expired_beyond_grace: u64,
    /// Those subscribers, oldest first (at most [`SUMMARY_LIST_LIMIT`]).
    pub expired_not_disconnected: Vec<OverdueSubscriber>,
    /// Notices whose send's outcome is unknown (status `unknown`): the
    /// gateway may or may not have delivered them; never resent.
    pub notices_outcome_unknown: u64,
    /// Enabled routers online at their last check.
    pub routers_online: u64,
    /// Enabled routers offline at their last check.
    pub routers_offline: u64,
    /// Enabled routers never checked.
    pub routers_unchecked: u64,
    /// `needs_attention` when a subscriber is overdue beyond [`DISCONNECT_GRACE`]
    /// or a router is offline.
    pub health: HealthState,
}

impl Engine {
    /// The enforcement summary for the admin API, at the clock's `now`.
    pub async fn health_summary(&self) -> Result<HealthSummary> {
        let now = self.deps.clock.now();
        let repos = &self.deps.repos;
        let total_active_users = repos.subscribers.count_entitled(now).await?;
        let soon_end = now.checked_add_signed(EXPIRING_SOON).unwrap_or(now);
        let expiring_soon: Vec<ExpiringSubscriber> = repos
            .subscribers
            .expiring_between(now, soon_end, SUMMARY_LIST_LIMIT)
            .await?
            .into_iter()
            .map(|s| ExpiringSubscriber {
                id: s.id,
                phone_number: s.phone,
                expires_at: s.paid_until,
                remaining_minutes: ceil_div((s.paid_until - now).num_seconds(), 60),
            })
            .collect();
        let overdue: Vec<OverdueSubscriber> = repos
            .subscribers
            .list_expired(now, SUMMARY_LIST_LIMIT)
            .await?
            .into_iter()
            .map(|s| OverdueSubscriber {
                id: s.id,
                phone_number: s.phone,
                expired_at: s.paid_until,
                overdue_minutes: (now - s.paid_until).num_minutes().max(0),
                attempts: s.attempts,
            })
            .collect();

        let routers = self.deps.directory.all_routers().await?;
        let statuses = repos.router_status.list().await?;
        let (mut online, mut offline, mut unchecked) = (0u64, 0u64, 0u64);
        for r in routers.iter().filter(|r| r.enabled) {
            match statuses.iter().find(|s| s.router_id == r.id) {
                Some(s) if s.online => online += 1,
                Some(_) => offline += 1,
                None => unchecked += 1,
            }
        }
        let grace_line = now.checked_sub_signed(DISCONNECT_GRACE).unwrap_or(now);
        let expiring_in_30_min = repos.subscribers.count_expiring_between(now, soon_end).await?;
        let expired_but_still_active = repos.subscribers.count_expired(now).await?;
        // Expired strictly before the grace line.
        let expired_beyond_grace = match grace_line.checked_sub_signed(Duration::microseconds(1)) {
            Some(before) => repos.subscribers.count_expired(before).await?,
            None => 0,
        };
        let notices_outcome_unknown = repos.notices.count(NoticeStatus::Unknown).await?;
        let health = if expired_beyond_grace > 0 || offline > 0 {
            HealthState::NeedsAttention
        } else {
            HealthState::Healthy
        };
        let summary = HealthSummary {
            timestamp: now,
            total_active_users,
            expiring_in_30_min,
            expiring_soon,
            expired_but_still_active,
            expired_beyond_grace,
            expired_not_disconnected: overdue,
            notices_outcome_unknown,
            routers_online: online,
            routers_offline: offline,
            routers_unchecked: unchecked,
            health,
        };
        #[cfg(feature = "runtime")]
        crate::runtime::metrics::record_health(&summary);
        Ok(summary)
    }

    /// The next instant strictly after `now` at which deadline-driven work
    /// appears: a subscriber expiry, a hotspot warning, a voucher deadline, a
    /// service's reminder or expiry, or a tenant's local midnight (when billing
    /// and due dates move). It may be earlier than needed, never later.
    /// Retries wait on their back-off and are picked up by the scheduler's sweep.
    pub(crate) async fn compute_next_wakeup(&self) -> Result<Option<DateTime<Utc>>> {
        let now = self.deps.clock.now();
        let expiry = self.next_expiry_wakeup(now).await?;
        let other = self.next_other_wakeup(now).await?;
        Ok(expiry.into_iter().chain(other).min())
    }

    /// The next expiry strictly after `after` of a subscriber not yet cut
    /// off: the watcher's expiry lane.
    pub(crate) async fn next_expiry_wakeup(&self, after: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        self.deps.repos.subscribers.next_expiry_after(after).await
    }

    /// [`compute_next_wakeup`](Self::compute_next_wakeup) without subscriber
    /// expiries, strictly after `after`: the watcher's lane for the other
    /// deadline-driven jobs.
    pub(crate) async fn next_other_wakeup(&self, after: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let now = self.deps.clock.now();
        let repos = &self.deps.repos;
        let mut candidates: Vec<DateTime<Utc>> = Vec::new();
        if let Some(from) = after.checked_add_signed(HOTSPOT_LEAD) {
            let far = from
                .checked_add_signed(Duration::days(3660))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            if let Some(s) = repos.subscribers.expiring_between(from, far, 1).await?.first() {
                candidates.extend(s.paid_until.checked_sub_signed(HOTSPOT_LEAD));
            }
        }
        candidates.extend(repos.vouchers.next_deadline_after(after).await?);
        candidates.extend(repos.grants.next_due_after(after).await?);
        for tenant in repos.tenants.list().await? {
            let tz = tenant.time_zone;
            let today = local_date(now, tz);
            candidates.push(end_of_day(today, tz));
            // Events before the next local midnight concern due dates up to today + 3.
            let to = today
                .checked_add_days(Days::new(PAYMENT_DUE_DAYS_BEFORE))
                .unwrap_or(today);
            for s in repos.services.due_between(tenant.id, today, to).await? {
                candidates.push(end_of_day(s.next_billing_date, tz));
                candidates.extend(service_slots(&s, tz).iter().map(|slot| slot.send_at));
            }
        }
        Ok(candidates.into_iter().filter(|t| *t > after).min())
    }
}
