//! Checks for the one lease protocol ([`LeaseRepo`](crate::ports::LeaseRepo)).

use crate::domain::*;
use crate::ports::{Leased, LeasedId, Repositories, RETRY_HOLDER};

use super::fixtures::*;

/// Batch `retry_later_all` / `release_all` on every leased aggregate: one
/// answer per id, in order; only the holder's items change (an expired lease
/// still counts as held); an unknown id answers `false`; a retried item counts
/// an attempt and is leased to [`RETRY_HOLDER`]; a released one is free and
/// otherwise unchanged; only a pending notice can be retried.
pub(super) async fn leases_batch_retry_and_release(repos: Repositories) {
    let fx = fixture(repos).await;
    let l = &fx.repos.leases;
    let claims = claim("A", t(100), t(105), 10);
    let others = claim("B", t(100), t(105), 10);

    // Subscribers: a held by A, b by B, plus an unknown id.
    let a = fx.subscriber(T1, 1, t(10)).await;
    let b = fx.subscriber(T1, 2, t(20)).await;
    let got = fx
        .repos
        .subscribers
        .claim_expired(&claim("A", t(100), t(105), 1))
        .await
        .expect("claim");
    assert_eq!(ids(&got, |s| s.id), vec![a.id]);
    let got = fx.repos.subscribers.claim_expired(&others).await.expect("claim");
    assert_eq!(ids(&got, |s| s.id), vec![b.id]);
    let unknown = SubscriberId(b.id.0 + 1_000);
    // At t(200) A's lease has expired: it still holds it.
    let done = l
        .retry_later_all(
            Leased::Subscribers,
            &[b.id.raw(), unknown.raw(), a.id.raw()],
            "A",
            t(200),
        )
        .await
        .expect("retry_later_all");
    assert_eq!(done, vec![false, false, true], "one answer per id, in order");
    let a2 = fx.repos.subscribers.get(a.id).await.expect("get");
    assert_eq!(
        (a2.attempts, a2.lease),
        (a.attempts + 1, lease(RETRY_HOLDER, t(200)))
    );
    let b2 = fx.repos.subscribers.get(b.id).await.expect("get");
    assert_eq!(
        (b2.attempts, b2.lease),
        (b.attempts, lease("B", t(105))),
        "B's item is untouched"
    );
    let done = l
        .release_all(Leased::Subscribers, &[a.id.raw(), b.id.raw()], "B")
        .await
        .expect("release_all");
    assert_eq!(done, vec![false, true]);
    let b3 = fx.repos.subscribers.get(b.id).await.expect("get");
    assert_eq!(
        b3,
        Subscriber { lease: None, ..b2 },
        "release changes nothing but the lease"
    );
    assert_eq!(
        fx.repos.subscribers.get(a.id).await.expect("get").lease,
        lease(RETRY_HOLDER, t(200))
    );

    // Vouchers and services: the same protocol, each by its own id.
    let v = fx.voucher(R1, "v1", Some(t(10)), None, 60).await;
    assert_eq!(
        fx.repos.vouchers.claim_due(&claims).await.expect("claim").len(),
        1
    );
    let done = l
        .retry_later_all(Leased::Vouchers, &[v.id.raw(), v.id.raw() + 1_000], "A", t(150))
        .await
        .expect("retry vouchers");
    assert_eq!(done, vec![true, false]);
    let v2 = fx.repos.vouchers.get(v.id).await.expect("get");
    assert_eq!(
        (v2.attempts, v2.lease),
        (v.attempts + 1, lease(RETRY_HOLDER, t(150)))
    );
    assert_eq!(
        l.release_all(Leased::Vouchers, &[v.id.raw()], RETRY_HOLDER)
            .await
            .expect("release"),
        vec![true]
    );
    assert_eq!(fx.repos.vouchers.get(v.id).await.expect("get").lease, None);

    let s = fx.service(T1, "u1", ServiceStatus::Active, day(5), day(5)).await;
    let got = fx
        .repos
        .services
        .claim_billable(T1, day(6), &claims)
        .await
        .expect("claim");
    assert_eq!(ids(&got, |s| s.id), vec![s.id]);
    assert_eq!(
        l.release_all(Leased::Services, &[s.id.raw()], "B")
            .await
            .expect("release"),
        vec![false]
    );
    assert_eq!(
        l.retry_later_all(Leased::Services, &[s.id.raw()], "A", t(150))
            .await
            .expect("retry"),
        vec![true]
    );
    assert_eq!(
        fx.repos.services.get(s.id).await.expect("get").lease,
        lease(RETRY_HOLDER, t(150))
    );

    // Notices: only a pending one is retried.
    let n1 = fx.notice(1, t(60), t(1)).await;
    let n2 = fx.notice(2, t(60), t(2)).await;
    assert_eq!(
        fx.repos
            .notices
            .claim_pending(&claims)
            .await
            .expect("claim")
            .len(),
        2
    );
    assert_eq!(
        fx.repos
            .notices
            .mark_all_sent(&[n1.id], "A", t(101))
            .await
            .expect("sent"),
        vec![true]
    );
    let done = l
        .retry_later_all(Leased::Notices, &[n1.id.raw(), n2.id.raw()], "A", t(130))
        .await
        .expect("retry notices");
    assert_eq!(done, vec![false, true], "a sent notice is not retried");
    let n2b = fx.repos.notices.get(n2.id).await.expect("get");
    assert_eq!(
        (n2b.attempts, n2b.lease),
        (n2.attempts + 1, lease(RETRY_HOLDER, t(130)))
    );

    // An empty batch is no write and no answer.
    for kind in Leased::ALL {
        assert!(l
            .retry_later_all(kind, &[], "A", t(1))
            .await
            .expect("empty")
            .is_empty());
        assert!(l.release_all(kind, &[], "A").await.expect("empty").is_empty());
    }
}
