//! Notices (SMS owed).

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::error::{Error, Result};

/// Notices (SMS owed).
///
/// # Contract
/// - `reserve_all` reserves no second notice for the same (recipient, kind,
///   deadline, subject) (and [`NoticeRepoExt::reserve`] refuses it: `Conflict`).
///   Reserve before sending; that is what makes a notice at-most-once.
/// - Retries go through [`LeaseRepo`](super::LeaseRepo).
/// - `claim_pending` returns pending notices that are unleased or whose
///   [`RETRY_HOLDER`](super::RETRY_HOLDER) back-off ended, oldest first. A pending notice whose
///   sender's lease expired (a crash mid-send) is never returned: the outcome is
///   unknown, and `abandon_stale` marks it abandoned.
/// - `abandon` and `mark_unknown` end a notice for good: neither `abandoned`
///   nor `unknown` notices are ever claimed again.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NoticeRepo: Send + Sync + Debug {
    /// Reserves each notice that does not exist yet (pending): per item, in
    /// order, the new notice's id, or `None` where one with the same key
    /// existed (or came earlier in `new`). One write for the batch where the
    /// store can (SQL: one transaction).
    async fn reserve_all(&self, new: &[NewNotice]) -> Result<Vec<Option<NoticeId>>>;
    /// One notice (`NotFound`).
    async fn get(&self, id: NoticeId) -> Result<Notice>;
    /// Looks one up by its unique key.
    async fn find(
        &self,
        recipient: &PhoneNumber,
        kind: NoticeKind,
        deadline: DateTime<Utc>,
        subject: &str,
    ) -> Result<Option<Notice>>;
    /// Leases a just-reserved or retried notice for sending.
    async fn claim_pending(&self, claim: &Claim) -> Result<Vec<Notice>>;
    /// Records the gateway's acceptance of each notice and clears its lease,
    /// if it is pending and `holder` holds its lease or there is none: one
    /// answer per id, in order, `false` where refused or unknown.
    async fn mark_all_sent(&self, ids: &[NoticeId], holder: &str, at: DateTime<Utc>) -> Result<Vec<bool>>;
    /// Gives up on a notice.
    async fn abandon(&self, id: NoticeId, holder: &str) -> Result<bool>;
    /// Records that a send's outcome is unknown (it may have been delivered):
    /// status `unknown`, lease cleared, never sent again. Same conditions and
    /// answers as [`NoticeRepo::abandon`].
    async fn mark_unknown(&self, id: NoticeId, holder: &str) -> Result<bool>;
    /// Abandons pending notices whose non-retry lease expired before `now`; returns how many.
    async fn abandon_stale(&self, now: DateTime<Utc>) -> Result<u64>;
    /// Counts notices by status.
    async fn count(&self, status: NoticeStatus) -> Result<u64>;
}

/// Single-item forms of [`NoticeRepo`] (blanket impl).
#[async_trait]
pub trait NoticeRepoExt: NoticeRepo {
    /// Reserves one notice (pending); `Conflict` if one with the same
    /// recipient, kind, deadline and subject exists.
    async fn reserve(&self, new: &NewNotice) -> Result<Notice> {
        let ids = self.reserve_all(std::slice::from_ref(new)).await?;
        match ids.first().copied().flatten() {
            Some(id) => self.get(id).await,
            None => Err(Error::conflict(
                "notice",
                format!(
                    "a {} notice for this recipient with deadline {} exists",
                    new.kind.as_str(),
                    new.deadline
                ),
            )),
        }
    }
    /// [`NoticeRepo::mark_all_sent`] for one notice; `NotFound` if it does not exist.
    async fn mark_sent(&self, id: NoticeId, holder: &str, at: DateTime<Utc>) -> Result<bool> {
        let done = self.mark_all_sent(&[id], holder, at).await?;
        let done = done.first().copied().unwrap_or(false);
        if !done {
            self.get(id).await?;
        }
        Ok(done)
    }
}

impl<T: NoticeRepo + ?Sized> NoticeRepoExt for T {}
