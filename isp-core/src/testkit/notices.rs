//! Checks for notices.

use crate::domain::*;
use crate::ports::{LeaseRepoExt as _, NoticeRepoExt as _, Repositories, RETRY_HOLDER};

use super::fixtures::*;

/// Notices: (recipient, kind, deadline, subject) unique (also under
/// concurrency), get, find, count; `NotFound`.
pub(super) async fn notices_unique_key(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.notices;
    let new = fx.new_notice(1, NoticeKind::HotspotExpiresSoon, t(60), t(0));
    let n = r.reserve(&new).await.expect("reserve");
    assert_eq!(
        (
            n.tenant_id,
            &n.recipient,
            n.kind,
            n.deadline,
            n.body.as_str(),
            n.created_at
        ),
        (
            T1,
            &new.recipient,
            new.kind,
            new.deadline,
            new.body.as_str(),
            new.created_at
        )
    );
    assert_eq!(
        (n.status, n.attempts, n.sent_at, n.lease.clone()),
        (NoticeStatus::Pending, 0, None, None)
    );
    assert_eq!(r.get(n.id).await.expect("get"), n);
    assert_eq!(
        r.find(&phone(1), NoticeKind::HotspotExpiresSoon, t(60), "")
            .await
            .expect("find"),
        Some(n.clone())
    );
    assert_eq!(
        r.find(&phone(1), NoticeKind::HotspotExpired, t(60), "")
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        r.find(&phone(1), NoticeKind::HotspotExpiresSoon, t(61), "")
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        r.find(&phone(2), NoticeKind::HotspotExpiresSoon, t(60), "")
            .await
            .expect("find"),
        None
    );

    let mut dup = new.clone();
    dup.body = "another text".into();
    dup.tenant_id = T2;
    dup.created_at = t(5);
    expect_conflict(
        r.reserve(&dup).await,
        "a second notice with the same recipient, kind and deadline",
    );
    assert_eq!(
        r.get(n.id).await.expect("get"),
        n,
        "the refused reserve changed nothing"
    );
    r.reserve(&fx.new_notice(1, NoticeKind::HotspotExpired, t(60), t(1)))
        .await
        .expect("other kind");
    r.reserve(&fx.new_notice(1, NoticeKind::HotspotExpiresSoon, t(120), t(2)))
        .await
        .expect("other deadline");
    r.reserve(&fx.new_notice(2, NoticeKind::HotspotExpiresSoon, t(60), t(3)))
        .await
        .expect("other recipient");
    assert_eq!(r.count(NoticeStatus::Pending).await.expect("count"), 4);
    assert_eq!(r.count(NoticeStatus::Sent).await.expect("count"), 0);

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let notices = fx.repos.notices.clone();
        let new = fx.new_notice(3, NoticeKind::PaymentDue, t(600), t(4));
        tasks.push(tokio::spawn(async move { notices.reserve(&new).await }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => ok += 1,
            Err(e) => assert!(
                e.is_conflict(),
                "a losing concurrent reserve must be a Conflict, got {e:?}"
            ),
        }
    }
    assert_eq!(
        ok, 1,
        "exactly one of the concurrent reserves with one key succeeds"
    );
    assert_eq!(r.count(NoticeStatus::Pending).await.expect("count"), 5);

    let unknown = NoticeId(n.id.0 + 1_000);
    expect_not_found(r.get(unknown).await, "notices.get(unknown)");
    expect_not_found(
        r.mark_sent(unknown, "a", t(0)).await,
        "notices.mark_sent(unknown)",
    );
    assert!(
        !fx.repos
            .leases
            .retry_later(unknown, "a", t(0))
            .await
            .expect("retry_later(unknown)"),
        "notices: a retry of an unknown id answers false"
    );
    expect_not_found(r.abandon(unknown, "a").await, "notices.abandon(unknown)");
    expect_not_found(
        r.mark_unknown(unknown, "a").await,
        "notices.mark_unknown(unknown)",
    );
}

/// The subject is part of a notice's key: the same recipient, kind and
/// deadline for two subjects (two services of one customer due the same day)
/// are two notices, each found by its subject; each key still only once.
pub(super) async fn notices_subject_is_part_of_the_key(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.notices;
    let with = |subject: &str, body: &str| {
        let mut n = fx.new_notice(1, NoticeKind::PaymentDue, t(600), t(0));
        n.subject = subject.into();
        n.body = body.into();
        n
    };
    let plain = r.reserve(&with("", "legacy")).await.expect("no subject");
    let a = r.reserve(&with("service:1", "pay 10")).await.expect("service 1");
    let ids = r
        .reserve_all(&[
            with("service:2", "pay 20"),
            with("service:1", "again"),
            with("service:2", "again"),
        ])
        .await
        .expect("reserve_all");
    assert!(
        ids[0].is_some() && ids[1].is_none() && ids[2].is_none(),
        "{ids:?}"
    );
    let b = r.get(ids[0].expect("service 2")).await.expect("get");
    assert_eq!(
        (a.subject.as_str(), b.subject.as_str()),
        ("service:1", "service:2")
    );
    assert_eq!((a.body.as_str(), b.body.as_str()), ("pay 10", "pay 20"));
    expect_conflict(
        r.reserve(&with("service:2", "third")).await,
        "a second notice with the same subject",
    );
    let to = phone(1);
    let find = |subject: &'static str| r.find(&to, NoticeKind::PaymentDue, t(600), subject);
    assert_eq!(find("").await.expect("find"), Some(plain));
    assert_eq!(find("service:1").await.expect("find"), Some(a));
    assert_eq!(find("service:2").await.expect("find"), Some(b));
    assert_eq!(find("service:3").await.expect("find"), None);
    assert_eq!(r.count(NoticeStatus::Pending).await.expect("count"), 3);
}

/// `mark_unknown` (a send whose outcome is unknown) ends a notice with status
/// `unknown`, only for the lease holder (or an unleased notice), clears the
/// lease, is counted apart, and the notice is never claimed again.
pub(super) async fn notices_unknown_is_never_claimed_again(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.notices;
    let n1 = fx.notice(1, t(60), t(-2)).await;
    let n2 = fx.notice(2, t(60), t(-1)).await;
    let a = r.claim_pending(&claim("A", t(0), t(5), 10)).await.expect("claim");
    assert_eq!(a.len(), 2);
    assert!(
        !r.mark_unknown(n1.id, "B").await.expect("mark_unknown"),
        "B does not hold n1"
    );
    assert_eq!(r.get(n1.id).await.expect("get").status, NoticeStatus::Pending);
    assert!(r.mark_unknown(n1.id, "A").await.expect("mark_unknown"));
    let got = r.get(n1.id).await.expect("get");
    assert_eq!(
        (got.status, got.lease, got.sent_at),
        (NoticeStatus::Unknown, None, None)
    );
    assert!(
        !r.mark_unknown(n1.id, "A").await.expect("mark_unknown"),
        "already unknown"
    );
    assert!(
        !r.mark_sent(n1.id, "A", t(1)).await.expect("mark_sent"),
        "unknown is final"
    );
    assert!(!r.abandon(n1.id, "A").await.expect("abandon"), "unknown is final");
    assert!(
        !fx.repos
            .leases
            .retry_later(n1.id, "A", t(2))
            .await
            .expect("retry"),
        "unknown is final"
    );
    assert!(r.mark_unknown(n2.id, "A").await.expect("mark_unknown"));
    assert_eq!(r.abandon_stale(t(1000)).await.expect("abandon_stale"), 0);
    for (holder, at) in [("C", t(10)), ("D", t(1000))] {
        assert!(
            r.claim_pending(&claim(holder, at, at + chrono::Duration::seconds(5), 10))
                .await
                .expect("claim")
                .is_empty(),
            "an unknown notice is never claimed again"
        );
    }
    assert_eq!(r.count(NoticeStatus::Unknown).await.expect("count"), 2);
    assert_eq!(r.count(NoticeStatus::Abandoned).await.expect("count"), 0);
    assert_eq!(r.count(NoticeStatus::Pending).await.expect("count"), 0);
    assert_eq!(r.get(n1.id).await.expect("get").status, NoticeStatus::Unknown);
}

/// `claim_pending` hands out pending notices oldest first, skips leased ones,
/// returns retried ones after their back-off, never sent or abandoned ones.
pub(super) async fn notices_claim_pending(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.notices;
    let n1 = fx.notice(1, t(60), t(-3)).await;
    let n2 = fx.notice(2, t(60), t(-1)).await;
    let n3 = fx.notice(3, t(60), t(-2)).await;
    let id = |n: &Notice| n.id;

    let a = r.claim_pending(&claim("A", t(0), t(5), 2)).await.expect("claim");
    assert_eq!(ids(&a, id), vec![n1.id, n3.id], "oldest first, limit 2");
    assert!(a.iter().all(|n| n.lease == lease("A", t(5))));
    assert_eq!(
        ids(
            &r.claim_pending(&claim("B", t(1), t(6), 10)).await.expect("claim"),
            id
        ),
        vec![n2.id]
    );
    assert!(r
        .claim_pending(&claim("C", t(2), t(7), 10))
        .await
        .expect("claim")
        .is_empty());

    assert!(
        !r.mark_sent(n1.id, "B", t(1)).await.expect("mark_sent"),
        "B does not hold n1"
    );
    assert_eq!(r.get(n1.id).await.expect("get").status, NoticeStatus::Pending);
    assert!(r.mark_sent(n1.id, "A", t(1)).await.expect("mark_sent"));
    let got = r.get(n1.id).await.expect("get");
    assert_eq!(
        (got.status, got.sent_at, got.lease),
        (NoticeStatus::Sent, Some(t(1)), None)
    );
    assert!(
        !r.mark_sent(n1.id, "A", t(2)).await.expect("mark_sent"),
        "already sent"
    );
    assert_eq!(r.get(n1.id).await.expect("get").sent_at, Some(t(1)));

    assert!(
        !fx.repos
            .leases
            .retry_later(n3.id, "B", t(30))
            .await
            .expect("retry"),
        "B does not hold n3"
    );
    assert!(fx
        .repos
        .leases
        .retry_later(n3.id, "A", t(30))
        .await
        .expect("retry"));
    let got = r.get(n3.id).await.expect("get");
    assert_eq!(
        (got.status, got.attempts, got.lease),
        (NoticeStatus::Pending, 1, lease(RETRY_HOLDER, t(30)))
    );

    assert!(
        r.claim_pending(&claim("D", t(20), t(40), 10))
            .await
            .expect("claim")
            .is_empty(),
        "n3 is backing off; n2's sender lease expired, so its outcome is unknown: never resent"
    );
    let d = r
        .claim_pending(&claim("D", t(31), t(40), 10))
        .await
        .expect("claim");
    assert_eq!(ids(&d, id), vec![n3.id], "due again after the back-off");
    assert_eq!(d[0].attempts, 1);

    assert!(
        !r.abandon(n3.id, "X").await.expect("abandon"),
        "X does not hold n3"
    );
    assert!(r.abandon(n3.id, "D").await.expect("abandon"));
    let got = r.get(n3.id).await.expect("get");
    assert_eq!((got.status, got.lease), (NoticeStatus::Abandoned, None));
    assert!(r
        .claim_pending(&claim("E", t(1000), t(1010), 10))
        .await
        .expect("claim")
        .is_empty());

    assert_eq!(r.count(NoticeStatus::Pending).await.expect("count"), 1);
    assert_eq!(r.count(NoticeStatus::Sent).await.expect("count"), 1);
    assert_eq!(r.count(NoticeStatus::Abandoned).await.expect("count"), 1);
}

/// A send that crashed (its sender's lease expired, the outcome unknown) is
/// never handed out again; `abandon_stale` abandons it, and leaves retry
/// back-offs, live sends and unclaimed notices alone.
pub(super) async fn notices_crashed_send_is_abandoned_never_resent(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.notices;
    let n1 = fx.notice(1, t(60), t(-5)).await; // sender A crashes
    let n2 = fx.notice(2, t(60), t(-4)).await; // refused by the gateway: retried
    let n4 = fx.notice(4, t(60), t(-3)).await; // sender B still working (long lease)
    let id = |n: &Notice| n.id;
    assert_eq!(
        ids(
            &r.claim_pending(&claim("A", t(0), t(5), 2)).await.expect("claim"),
            id
        ),
        vec![n1.id, n2.id]
    );
    assert!(fx
        .repos
        .leases
        .retry_later(n2.id, "A", t(10))
        .await
        .expect("retry"));
    assert_eq!(
        ids(
            &r.claim_pending(&claim("B", t(0), t(100), 1))
                .await
                .expect("claim"),
            id
        ),
        vec![n4.id]
    );
    assert!(
        r.claim_pending(&claim("C", t(6), t(20), 10))
            .await
            .expect("claim")
            .is_empty(),
        "a notice whose sender's lease expired is never returned"
    );
    let n3 = fx.notice(3, t(60), t(-2)).await; // never claimed

    assert_eq!(r.abandon_stale(t(7)).await.expect("abandon_stale"), 1);
    assert_eq!(r.get(n1.id).await.expect("get").status, NoticeStatus::Abandoned);
    for n in [&n2, &n3, &n4] {
        assert_eq!(r.get(n.id).await.expect("get").status, NoticeStatus::Pending);
    }
    assert_eq!(
        r.abandon_stale(t(50)).await.expect("abandon_stale"),
        0,
        "an ended retry back-off is not a crashed send; a live lease is not stale"
    );

    let c = r
        .claim_pending(&claim("C", t(50), t(55), 10))
        .await
        .expect("claim");
    assert_eq!(
        ids(&c, id),
        vec![n2.id, n3.id],
        "the retried and the unclaimed notice; not n1, not n4"
    );
    assert_eq!(
        r.abandon_stale(t(101)).await.expect("abandon_stale"),
        3,
        "C and B crashed too"
    );
    assert_eq!(r.count(NoticeStatus::Abandoned).await.expect("count"), 4);
    assert_eq!(r.count(NoticeStatus::Pending).await.expect("count"), 0);
    assert!(r
        .claim_pending(&claim("D", t(200), t(210), 10))
        .await
        .expect("claim")
        .is_empty());
}

/// Concurrent `claim_pending`: every pending notice exactly once.
pub(super) async fn notices_concurrent_claims_are_exclusive(repos: Repositories) {
    let fx = fixture(repos).await;
    let mut expected = Vec::new();
    for n in 0..30 {
        expected.push(fx.notice(n, t(60), t(-60 + i64::from(n))).await.id);
    }
    let notices = fx.repos.notices.clone();
    let got = claim_concurrently(6, &expected, move |holder| {
        let notices = notices.clone();
        async move {
            let batch = notices
                .claim_pending(&claim(&holder, t(0), t(30), 4))
                .await
                .expect("claim_pending");
            batch.into_iter().map(|n| n.id).collect()
        }
    })
    .await;
    for (holder, id) in got {
        assert_eq!(
            fx.repos.notices.get(id).await.expect("get").lease,
            lease(&holder, t(30))
        );
    }
}

/// `reserve_all`: one answer per item, in order; a notice that exists (or came
/// earlier in the same call) answers `None` and is left as it was.
pub(super) async fn notices_reserve_all(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.notices;
    assert!(r.reserve_all(&[]).await.expect("empty").is_empty());
    let old = r
        .reserve(&fx.new_notice(1, NoticeKind::HotspotExpired, t(60), t(0)))
        .await
        .expect("reserve");
    let mut twin = fx.new_notice(3, NoticeKind::HotspotExpired, t(61), t(1));
    twin.body = "second of the same key".into();
    let batch = vec![
        fx.new_notice(1, NoticeKind::HotspotExpired, t(60), t(1)),
        fx.new_notice(2, NoticeKind::HotspotExpired, t(60), t(1)),
        fx.new_notice(3, NoticeKind::HotspotExpired, t(61), t(1)),
        twin,
        fx.new_notice(1, NoticeKind::HotspotExpiresSoon, t(60), t(1)),
        fx.new_notice(1, NoticeKind::HotspotExpired, t(62), t(1)),
    ];
    let got = r.reserve_all(&batch).await.expect("reserve_all");
    assert_eq!(got.len(), batch.len(), "one answer per item");
    assert_eq!(got[0], None, "an existing notice is not reserved again");
    assert_eq!(got[3], None, "the second of one key in a call is a duplicate");
    for i in [1, 2, 4, 5] {
        let id = got[i].unwrap_or_else(|| panic!("item {i} reserved"));
        let n = r.get(id).await.expect("get");
        assert_eq!(
            (
                &n.recipient,
                n.kind,
                n.deadline,
                n.body.as_str(),
                n.status,
                n.created_at
            ),
            (
                &batch[i].recipient,
                batch[i].kind,
                batch[i].deadline,
                batch[i].body.as_str(),
                NoticeStatus::Pending,
                t(1)
            ),
            "item {i} is stored as given"
        );
    }
    let distinct: std::collections::BTreeSet<_> = got.iter().flatten().collect();
    assert_eq!(distinct.len(), 4, "every new notice has its own id");
    assert_eq!(
        r.get(old.id).await.expect("get"),
        old,
        "the existing notice is unchanged"
    );
    assert_eq!(r.count(NoticeStatus::Pending).await.expect("count"), 5);
}

/// `mark_all_sent`: one answer per id, in order; only notices pending and
/// unleased or leased to the holder are marked, the rest (another holder's,
/// already sent, unknown) answer `false` and are left as they were.
pub(super) async fn notices_mark_all_sent(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.notices;
    assert!(r.mark_all_sent(&[], "A", t(1)).await.expect("empty").is_empty());
    let n1 = fx.notice(1, t(60), t(-4)).await;
    let n2 = fx.notice(2, t(60), t(-3)).await;
    let n3 = fx.notice(3, t(60), t(-2)).await;
    let n4 = fx.notice(4, t(60), t(-1)).await;
    let a = r.claim_pending(&claim("A", t(0), t(5), 2)).await.expect("claim");
    assert_eq!(ids(&a, |n: &Notice| n.id), vec![n1.id, n2.id]);
    let b = r.claim_pending(&claim("B", t(0), t(5), 1)).await.expect("claim");
    assert_eq!(ids(&b, |n: &Notice| n.id), vec![n3.id]);
    assert!(r.mark_sent(n2.id, "A", t(1)).await.expect("mark_sent"));

    let unknown = NoticeId(n4.id.0 + 1000);
    let got = r
        .mark_all_sent(&[n1.id, n2.id, n3.id, unknown, n4.id], "A", t(2))
        .await
        .expect("mark_all_sent");
    assert_eq!(got, vec![true, false, false, false, true]);
    for (n, sent_at) in [(&n1, t(2)), (&n2, t(1)), (&n4, t(2))] {
        let got = r.get(n.id).await.expect("get");
        assert_eq!(
            (got.status, got.sent_at, got.lease),
            (NoticeStatus::Sent, Some(sent_at), None),
            "notice {}",
            n.id
        );
    }
    let got = r.get(n3.id).await.expect("get");
    assert_eq!(
        (got.status, got.sent_at, got.lease),
        (NoticeStatus::Pending, None, lease("B", t(5))),
        "B's notice is left to B"
    );
    assert_eq!(r.count(NoticeStatus::Sent).await.expect("count"), 3);
}
