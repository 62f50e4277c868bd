//! Checks for grants, payments and pending router grants.

use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::ports::{Repositories, RETRY_HOLDER};

use super::fixtures::*;

fn reference(text: &str) -> PaymentReference {
    PaymentReference::parse("reference", text).expect("a valid test reference")
}

fn write(
    sub: &Subscriber,
    paid_until: DateTime<Utc>,
    payment: Option<&str>,
    routers: &[RouterId],
    holder: &str,
) -> GrantWrite {
    GrantWrite {
        subscriber_id: sub.id,
        paid_until_seen: sub.paid_until,
        paid_until,
        payment: payment.map(|r| NewPayment {
            reference: reference(r),
            amount: tzs("1000"),
        }),
        routers: routers.to_vec(),
        holder: holder.to_owned(),
        lease_until: t(2),
        at: t(0),
    }
}

/// A grant writes the new paid time (as `extend` does), its payment and one
/// pending grant per router leased to the writer; a second write with the
/// same payment reference changes nothing and returns the first payment; a
/// stale `paid_until_seen` changes nothing; an unknown subscriber is `NotFound`.
pub(super) async fn grants_write_is_atomic_and_idempotent(repos: Repositories) {
    let fx = fixture(repos).await;
    let g = &fx.repos.grants;
    let s = fx.subscriber(T1, 1, t(-10)).await;

    let applied = g
        .write(&write(&s, t(60), Some("MP1"), &[R1, R2], "a"))
        .await
        .expect("write");
    let GrantWritten::Applied(after) = applied else {
        panic!("a first grant is applied, got {applied:?}");
    };
    assert_eq!(after.paid_until, t(60));
    assert!(after.active && after.disconnected_at.is_none() && after.lease.is_none());
    assert_eq!(fx.repos.subscribers.get(s.id).await.expect("get"), after);

    let payment = g.payment(T1, &reference("MP1")).await.expect("payment");
    let payment = payment.expect("the payment is recorded");
    assert_eq!(payment.subscriber_id, s.id);
    assert_eq!(payment.paid_until, t(60));
    assert_eq!(payment.amount, tzs("1000"));
    assert_eq!(
        g.payment(T2, &reference("MP1")).await.expect("payment"),
        None,
        "per tenant"
    );

    let mut pending = g.pending_of(s.id).await.expect("pending");
    pending.sort_by_key(|p| p.router_id);
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].router_id, R1);
    assert_eq!(pending[1].router_id, R2);
    for p in &pending {
        assert_eq!(p.lease, lease("a", t(2)));
        assert_eq!(p.attempts, 0);
        assert_eq!(p.created_at, t(0));
    }

    // The same reference again, even computed from the new paid time: nothing.
    let again = g
        .write(&write(&after, t(120), Some("MP1"), &[R3], "b"))
        .await
        .expect("write");
    assert_eq!(again, GrantWritten::DuplicatePayment(payment.clone()));
    assert_eq!(
        fx.repos.subscribers.get(s.id).await.expect("get").paid_until,
        t(60)
    );
    assert_eq!(
        g.pending_of(s.id).await.expect("pending").len(),
        2,
        "no pending grant added"
    );

    // Stale: computed from the old paid time.
    let stale = g
        .write(&write(&s, t(90), Some("MP2"), &[R3], "b"))
        .await
        .expect("write");
    assert_eq!(stale, GrantWritten::Stale);
    assert_eq!(
        fx.repos.subscribers.get(s.id).await.expect("get").paid_until,
        t(60)
    );
    assert_eq!(
        g.payment(T1, &reference("MP2")).await.expect("payment"),
        None,
        "nothing half-written"
    );

    let mut ghost = s.clone();
    ghost.id = SubscriberId(999_999);
    let missing = g.write(&write(&ghost, t(90), None, &[R1], "a")).await;
    assert!(
        matches!(missing, Err(e) if e.is_not_found()),
        "unknown subscriber"
    );

    // Without a payment; an older pending grant of the same router is replaced.
    let GrantWritten::Applied(later) = g
        .write(&write(&after, t(90), None, &[R1], "c"))
        .await
        .expect("write")
    else {
        panic!("applied");
    };
    assert_eq!(later.paid_until, t(90));
    let p1: Vec<_> = g
        .pending_of(s.id)
        .await
        .expect("pending")
        .into_iter()
        .filter(|p| p.router_id == R1)
        .collect();
    assert_eq!(p1.len(), 1, "one pending grant per (subscriber, router)");
    assert_eq!(p1[0].lease, lease("c", t(2)));
}

/// Pending grants: claims skip leased ones and take them in age order; only
/// the holder (or nobody) completes one; `retry_later` counts an attempt,
/// keeps the error and leases to the retry holder; `cancel_of` drops a
/// subscriber's; the counts and the next due time follow.
pub(super) async fn grants_pending_claim_complete_retry(repos: Repositories) {
    let fx = fixture(repos).await;
    let g = &fx.repos.grants;
    let s1 = fx.subscriber(T1, 1, t(-10)).await;
    let s2 = fx.subscriber(T1, 2, t(-10)).await;
    let mut w1 = write(&s1, t(60), None, &[R1, R2], "a");
    w1.at = t(0);
    w1.lease_until = t(1);
    g.write(&w1).await.expect("write");
    let mut w2 = write(&s2, t(60), None, &[R1], "a");
    w2.at = t(1);
    w2.lease_until = t(5);
    g.write(&w2).await.expect("write");

    assert_eq!(g.count_pending(t(0)).await.expect("count"), (3, 0));
    assert_eq!(g.next_due_after(t(0)).await.expect("next"), Some(t(1)));
    assert!(
        g.claim_pending(&claim("b", t(0), t(10), 10))
            .await
            .expect("claim")
            .is_empty(),
        "all leased"
    );

    // At t(1) the two grants of s1 are free (lease until t(1)); s2's is not.
    assert_eq!(g.count_pending(t(1)).await.expect("count"), (3, 2));
    let got = g
        .claim_pending(&claim("b", t(1), t(10), 10))
        .await
        .expect("claim");
    let mut keys: Vec<_> = got.iter().map(|p| (p.subscriber_id, p.router_id)).collect();
    keys.sort();
    assert_eq!(keys, vec![(s1.id, R1), (s1.id, R2)]);
    assert!(got.iter().all(|p| p.lease == lease("b", t(10))));
    assert_eq!(g.next_due_after(t(1)).await.expect("next"), Some(t(5)));

    // "a" lost them: its completion is refused; "b" completes one.
    let done = g.complete(&[(s1.id, R1)], "a").await.expect("complete");
    assert_eq!(done, vec![false]);
    let done = g
        .complete(&[(s1.id, R1), (s2.id, R2)], "b")
        .await
        .expect("complete");
    assert_eq!(done, vec![true, false], "unknown key answers false");

    // "b" puts the other back for a retry.
    g.retry_later(&[(s1.id, R2)], "b", t(20), "router down")
        .await
        .expect("retry");
    g.retry_later(&[(s2.id, R1)], "b", t(30), "not mine")
        .await
        .expect("retry");
    let pending = g.pending_of(s1.id).await.expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].router_id, R2);
    assert_eq!(pending[0].attempts, 1);
    assert_eq!(pending[0].last_error.as_deref(), Some("router down"));
    assert_eq!(pending[0].lease, lease(RETRY_HOLDER, t(20)));
    let other = g.pending_of(s2.id).await.expect("pending");
    assert_eq!(
        other[0].lease,
        lease("a", t(5)),
        "a retry by a non-holder changes nothing"
    );
    assert_eq!(other[0].attempts, 0);

    // Oldest first, at most `limit`.
    let got = g
        .claim_pending(&claim("c", t(40), t(50), 1))
        .await
        .expect("claim");
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].subscriber_id, got[0].router_id), (s1.id, R2));
    assert_eq!(got[0].attempts, 1);

    assert_eq!(g.cancel_of(s1.id).await.expect("cancel"), 1);
    assert!(g.pending_of(s1.id).await.expect("pending").is_empty());
    assert_eq!(g.count_pending(t(40)).await.expect("count"), (1, 1));
    assert_eq!(g.next_due_after(t(40)).await.expect("next"), None);
}

/// Many writers race to record the same payment reference: exactly one
/// extends, every other answers `DuplicatePayment` (or `Stale`).
pub(super) async fn grants_payment_race(repos: Repositories) {
    let fx = fixture(repos).await;
    let s = fx.subscriber(T1, 1, t(-10)).await;
    let tasks = (0..8).map(|i| {
        let g = fx.repos.grants.clone();
        let w = write(&s, t(60 + i), Some("RACE-1"), &[R1], &format!("w{i}"));
        tokio::spawn(async move { g.write(&w).await })
    });
    let mut applied = 0;
    for task in futures::future::join_all(tasks).await {
        match task.expect("task").expect("write") {
            GrantWritten::Applied(_) => applied += 1,
            GrantWritten::DuplicatePayment(_) | GrantWritten::Stale => {}
        }
    }
    assert_eq!(applied, 1, "exactly one writer extends for one reference");
    let p = fx
        .repos
        .grants
        .payment(T1, &reference("RACE-1"))
        .await
        .expect("payment")
        .expect("recorded");
    let now = fx.repos.subscribers.get(s.id).await.expect("get");
    assert_eq!(now.paid_until, p.paid_until);
}
