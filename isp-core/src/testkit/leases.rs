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

/// Batch `renew_all` on every leased aggregate: it extends a lease only for
/// its holder and only while it has not run out (`until > now`; an expired
/// lease, another holder's, one taken over, an unknown id or a cleared lease
/// answer `false` and stay as they are); one answer per id, in order; nothing
/// but the lease's end changes.
pub(super) async fn leases_renew_only_a_live_lease_of_its_holder(repos: Repositories) {
    let fx = fixture(repos).await;
    let l = &fx.repos.leases;

    let a = fx.subscriber(T1, 1, t(10)).await;
    let got = fx
        .repos
        .subscribers
        .claim_expired(&claim("A", t(100), t(105), 10))
        .await
        .expect("claim");
    assert_eq!(ids(&got, |s| s.id), vec![a.id]);
    let held = fx.repos.subscribers.get(a.id).await.expect("get");
    let unknown = a.id.raw() + 1_000;

    // The holder, before the lease runs out: extended, nothing else changed.
    let done = l
        .renew_all(Leased::Subscribers, &[unknown, a.id.raw()], "A", t(104), t(110))
        .await
        .expect("renew_all");
    assert_eq!(done, vec![false, true], "one answer per id, in order");
    let renewed = fx.repos.subscribers.get(a.id).await.expect("get");
    assert_eq!(
        renewed,
        Subscriber {
            lease: lease("A", t(110)),
            ..held.clone()
        },
        "renew changes nothing but the lease's end"
    );

    // Another holder: refused, the lease untouched.
    assert_eq!(
        l.renew_all(Leased::Subscribers, &[a.id.raw()], "B", t(104), t(120))
            .await
            .expect("renew B"),
        vec![false]
    );
    assert_eq!(
        fx.repos.subscribers.get(a.id).await.expect("get").lease,
        lease("A", t(110))
    );

    // The holder once the lease has run out (at its end, and after): refused.
    for at in [t(110), t(111)] {
        assert_eq!(
            l.renew_all(Leased::Subscribers, &[a.id.raw()], "A", at, t(130))
                .await
                .expect("renew expired"),
            vec![false],
            "an expired lease is not renewed at {at}"
        );
    }
    assert_eq!(
        fx.repos.subscribers.get(a.id).await.expect("get").lease,
        lease("A", t(110))
    );

    // Taken over by B: A's renewal fails even at a time A's old lease would
    // have covered by B's clock; B's succeeds.
    let got = fx
        .repos
        .subscribers
        .claim_expired(&claim("B", t(111), t(115), 10))
        .await
        .expect("claim B");
    assert_eq!(ids(&got, |s| s.id), vec![a.id]);
    assert_eq!(
        l.renew_all(Leased::Subscribers, &[a.id.raw()], "A", t(112), t(140))
            .await
            .expect("renew A after takeover"),
        vec![false]
    );
    assert_eq!(
        l.renew_all(Leased::Subscribers, &[a.id.raw()], "B", t(112), t(125))
            .await
            .expect("renew B after takeover"),
        vec![true]
    );
    assert_eq!(
        fx.repos.subscribers.get(a.id).await.expect("get").lease,
        lease("B", t(125))
    );
    // A released (cleared) lease is nobody's to renew.
    assert_eq!(
        l.release_all(Leased::Subscribers, &[a.id.raw()], "B")
            .await
            .expect("release"),
        vec![true]
    );
    assert_eq!(
        l.renew_all(Leased::Subscribers, &[a.id.raw()], "B", t(113), t(130))
            .await
            .expect("renew released"),
        vec![false]
    );
    assert_eq!(fx.repos.subscribers.get(a.id).await.expect("get").lease, None);

    // Vouchers, services and notices: the same protocol, each by its own id.
    let claims = claim("A", t(100), t(105), 10);
    let v = fx.voucher(R1, "v1", Some(t(10)), None, 60).await;
    assert_eq!(
        fx.repos.vouchers.claim_due(&claims).await.expect("claim").len(),
        1
    );
    let s = fx.service(T1, "u1", ServiceStatus::Active, day(5), day(5)).await;
    let got = fx
        .repos
        .services
        .claim_billable(T1, day(6), &claims)
        .await
        .expect("claim");
    assert_eq!(ids(&got, |s| s.id), vec![s.id]);
    let n = fx.notice(1, t(60), t(1)).await;
    assert_eq!(
        fx.repos
            .notices
            .claim_pending(&claims)
            .await
            .expect("claim")
            .len(),
        1
    );
    for (kind, id) in [
        (Leased::Vouchers, v.id.raw()),
        (Leased::Services, s.id.raw()),
        (Leased::Notices, n.id.raw()),
    ] {
        assert_eq!(
            l.renew_all(kind, &[id], "B", t(101), t(120))
                .await
                .expect("renew other"),
            vec![false],
            "{kind:?}: another holder"
        );
        assert_eq!(
            l.renew_all(kind, &[id], "A", t(105), t(120))
                .await
                .expect("renew expired"),
            vec![false],
            "{kind:?}: expired"
        );
    }
    for (kind, id) in [
        (Leased::Vouchers, v.id.raw()),
        (Leased::Services, s.id.raw()),
        (Leased::Notices, n.id.raw()),
    ] {
        assert_eq!(
            l.renew_all(kind, &[id], "A", t(104), t(120))
                .await
                .expect("renew"),
            vec![true],
            "{kind:?}: the holder, in time"
        );
    }
    assert_eq!(
        fx.repos.vouchers.get(v.id).await.expect("get").lease,
        lease("A", t(120))
    );
    assert_eq!(
        fx.repos.services.get(s.id).await.expect("get").lease,
        lease("A", t(120))
    );
    let n2 = fx.repos.notices.get(n.id).await.expect("get");
    assert_eq!(
        (n2.lease, n2.status, n2.attempts),
        (lease("A", t(120)), NoticeStatus::Pending, n.attempts)
    );

    // An empty batch is no write and no answer.
    for kind in Leased::ALL {
        assert!(l
            .renew_all(kind, &[], "A", t(1), t(2))
            .await
            .expect("empty")
            .is_empty());
    }
}
