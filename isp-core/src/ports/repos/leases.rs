//! The one lease protocol of every leased aggregate.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::error::Result;

/// The aggregates whose items are claimed with a lease (`claim_*`), one table or
/// collection each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leased {
    /// Hotspot subscribers ([`SubscriberId`]).
    Subscribers,
    /// Vouchers ([`VoucherId`]).
    Vouchers,
    /// ISP services ([`ServiceId`]).
    Services,
    /// Notices ([`NoticeId`]); only a pending notice can be retried.
    Notices,
}

impl Leased {
    /// Every leased aggregate.
    pub const ALL: [Leased; 4] = [
        Leased::Subscribers,
        Leased::Vouchers,
        Leased::Services,
        Leased::Notices,
    ];

    /// The table (SQL) or collection (MongoDB) name.
    pub fn table(self) -> &'static str {
        match self {
            Leased::Subscribers => "subscribers",
            Leased::Vouchers => "vouchers",
            Leased::Services => "services",
            Leased::Notices => "notices",
        }
    }

    /// The entity name errors use.
    pub fn entity(self) -> &'static str {
        match self {
            Leased::Subscribers => "subscriber",
            Leased::Vouchers => "voucher",
            Leased::Services => "service",
            Leased::Notices => "notice",
        }
    }
}

/// The id of an item of a [`Leased`] aggregate.
pub trait LeasedId: Copy + Send + Sync + 'static {
    /// Its aggregate.
    const KIND: Leased;
    /// The stored id.
    fn raw(self) -> i64;
}

macro_rules! leased_id {
    ($($id:ident => $kind:ident),* $(,)?) => {$(
        impl LeasedId for $id {
            const KIND: Leased = Leased::$kind;
            fn raw(self) -> i64 {
                self.0
            }
        }
    )*};
}

leased_id!(
    SubscriberId => Subscribers,
    VoucherId => Vouchers,
    ServiceId => Services,
    NoticeId => Notices,
);

/// The lease protocol, written once per adapter for every leased aggregate.
///
/// # Contract
/// Every method is fenced and batch-first: it changes an item only if
/// `holder` holds its lease (for `retry_later_all` and `release_all`, expired
/// or not; for `renew_all`, only while it has not run out), and answers one
/// `bool` per id, in order: whether `holder` held it (`false` also for an
/// unknown id). A batch is one transaction where the store has them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LeaseRepo: Send + Sync + Debug {
    /// Records a failed attempt on each item and leases it to
    /// [`RETRY_HOLDER`](super::RETRY_HOLDER) until `until` (notices: only a
    /// pending one).
    async fn retry_later_all(
        &self,
        kind: Leased,
        ids: &[i64],
        holder: &str,
        until: DateTime<Utc>,
    ) -> Result<Vec<bool>>;
    /// Clears the lease on each item, nothing else.
    async fn release_all(&self, kind: Leased, ids: &[i64], holder: &str) -> Result<Vec<bool>>;
    /// Extends the lease on each item to `until`, only where `holder` holds it
    /// and it has not run out at `now` (`lease_until > now`): a job renews the
    /// items it is about to act on before each router write or SMS send, so
    /// that an item another daemon may have claimed since (its lease ran out)
    /// is never acted on twice. Nothing else changes.
    async fn renew_all(
        &self,
        kind: Leased,
        ids: &[i64],
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<bool>>;
}

/// Typed, single-item forms of [`LeaseRepo`] (blanket impl).
#[async_trait]
pub trait LeaseRepoExt: LeaseRepo {
    /// [`LeaseRepo::retry_later_all`] for one item.
    async fn retry_later<Id: LeasedId>(&self, id: Id, holder: &str, until: DateTime<Utc>) -> Result<bool> {
        let done = self.retry_later_all(Id::KIND, &[id.raw()], holder, until).await?;
        Ok(done.first().copied().unwrap_or(false))
    }
    /// [`LeaseRepo::release_all`] for one item.
    async fn release<Id: LeasedId>(&self, id: Id, holder: &str) -> Result<bool> {
        let done = self.release_all(Id::KIND, &[id.raw()], holder).await?;
        Ok(done.first().copied().unwrap_or(false))
    }
    /// [`LeaseRepo::renew_all`] for one item.
    async fn renew<Id: LeasedId>(
        &self,
        id: Id,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let done = self.renew_all(Id::KIND, &[id.raw()], holder, now, until).await?;
        Ok(done.first().copied().unwrap_or(false))
    }
}

impl<T: LeaseRepo + ?Sized> LeaseRepoExt for T {}
