//! Checks for vouchers.

use crate::domain::*;
use crate::ports::{LeaseRepoExt as _, Repositories, RETRY_HOLDER};

use super::fixtures::*;

/// Vouchers: insert, get, find_by_code; (tenant, code) unique; `NotFound`.
pub(super) async fn vouchers_round_trip_and_unique_code(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.vouchers;
    let v = fx.voucher(R1, "ABC123", Some(t(60)), Some(t(30)), 120).await;
    assert_eq!(v.tenant_id, T1);
    assert_eq!(v.router_id, R1);
    assert_eq!(v.code, ros("ABC123"));
    assert_eq!(v.plan_id, fx.plan.id);
    assert_eq!(v.status, VoucherStatus::Unused);
    assert_eq!(
        (v.activation_deadline, v.purchase_deadline),
        (Some(t(60)), Some(t(30)))
    );
    assert_eq!(v.duration, RosDuration::from_secs(7200));
    assert_eq!(
        (v.started_at, v.expected_end, v.expired_at, v.expired_reason),
        (None, None, None, None)
    );
    assert!(!v.removed_from_router);
    assert_eq!((v.lease.clone(), v.attempts), (None, 0));
    assert_eq!(r.get(v.id).await.expect("get"), v);
    assert_eq!(
        r.find_by_code(T1, &ros("ABC123")).await.expect("find"),
        Some(v.clone())
    );
    assert_eq!(r.find_by_code(T2, &ros("ABC123")).await.expect("find"), None);
    assert_eq!(r.find_by_code(T1, &ros("OTHER")).await.expect("find"), None);

    let dup = fx.new_voucher(T1, R2, "ABC123", None, None, 60);
    expect_conflict(
        r.insert(&dup).await,
        "a second voucher with the same tenant and code",
    );
    let other = r
        .insert(&fx.new_voucher(T2, R2, "ABC123", None, None, 60))
        .await
        .expect("same code in another tenant");
    assert_ne!(other.id, v.id);
    assert_eq!(
        r.get(v.id).await.expect("get"),
        v,
        "the refused insert changed nothing"
    );

    let unknown = VoucherId(v.id.0.max(other.id.0) + 1_000);
    expect_not_found(r.get(unknown).await, "vouchers.get(unknown)");
    expect_not_found(r.activate(unknown, t(0)).await, "vouchers.activate(unknown)");
    expect_not_found(
        r.expire(
            unknown,
            VoucherStatus::Unused,
            VoucherExpiryReason::UsageEnded,
            t(0),
        )
        .await,
        "vouchers.expire(unknown)",
    );
    expect_not_found(
        r.mark_removed(unknown, "a").await,
        "vouchers.mark_removed(unknown)",
    );
    assert!(
        !fx.repos
            .leases
            .retry_later(unknown, "a", t(0))
            .await
            .expect("retry_later(unknown)"),
        "vouchers: a retry of an unknown id answers false"
    );
}

/// `activate`: unused -> active with `expected_end = started_at + duration`;
/// `Conflict` unless unused.
pub(super) async fn vouchers_activate(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.vouchers;
    let v = fx.voucher(R1, "V1", Some(t(60)), None, 120).await;
    let a = r.activate(v.id, t(5)).await.expect("activate");
    assert_eq!(a.status, VoucherStatus::Active);
    assert_eq!(a.started_at, Some(t(5)));
    assert_eq!(a.expected_end, Some(t(125)));
    assert_eq!(r.get(v.id).await.expect("get"), a);
    expect_conflict(r.activate(v.id, t(6)).await, "activating an active voucher");
    assert_eq!(
        r.get(v.id).await.expect("get"),
        a,
        "the refused activation changed nothing"
    );

    let w = fx.voucher(R1, "V2", Some(t(0)), None, 60).await;
    assert!(r
        .expire(
            w.id,
            VoucherStatus::Unused,
            VoucherExpiryReason::ActivationDeadline,
            t(1)
        )
        .await
        .expect("expire"));
    expect_conflict(r.activate(w.id, t(2)).await, "activating an expired voucher");
}

/// The due set follows [`Voucher::deadline`] for every status, and is
/// recomputed on every change (an activated voucher is no longer due at its
/// activation deadline; an expired one is due until removed from its router).
pub(super) async fn vouchers_deadlines_by_status(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.vouchers;
    let ua = fx.voucher(R1, "UA", Some(t(30)), None, 60).await; // t+30
    let up = fx.voucher(R1, "UP", None, Some(t(20)), 60).await; // t+20
    let ub = fx.voucher(R1, "UB", Some(t(50)), Some(t(40)), 60).await; // the earlier: t+40
    let un = fx.voucher(R1, "UN", None, None, 60).await; // never
    let ac = fx.voucher(R1, "AC", Some(t(10)), None, 60).await;
    r.activate(ac.id, t(0)).await.expect("activate"); // expected_end t+60
    let ex = fx.voucher(R1, "EX", Some(t(100)), None, 60).await;
    assert!(r
        .expire(
            ex.id,
            VoucherStatus::Unused,
            VoucherExpiryReason::RouterUserGone,
            t(5)
        )
        .await
        .expect("expire")); // due at t+5 until removed
    let rm = fx.voucher(R1, "RM", Some(t(1)), None, 60).await;
    assert!(r
        .expire(
            rm.id,
            VoucherStatus::Unused,
            VoucherExpiryReason::ActivationDeadline,
            t(6)
        )
        .await
        .expect("expire"));
    assert!(r.mark_removed(rm.id, "setup").await.expect("mark_removed")); // never

    let id = |v: &Voucher| v.id;
    assert!(r.list_due(t(0), 10).await.expect("list").is_empty());
    assert_eq!(
        ids(&r.list_due(t(25), 10).await.expect("list"), id),
        vec![ex.id, up.id],
        "at t+25: the expired one (t+5) and the purchase deadline (t+20); not the activated \
         voucher's old activation deadline (t+10)"
    );
    assert_eq!(
        ids(&r.list_due(t(200), 10).await.expect("list"), id),
        vec![ex.id, up.id, ua.id, ub.id, ac.id],
        "deadline order; no deadline and removed vouchers are never due"
    );
    assert_eq!(
        ids(&r.list_due(t(200), 3).await.expect("list"), id),
        vec![ex.id, up.id, ua.id]
    );
    for v in [&ua, &up, &ub, &un, &ac, &ex, &rm] {
        let stored = r.get(v.id).await.expect("get");
        let due = r
            .list_due(t(200), 10)
            .await
            .expect("list")
            .iter()
            .any(|x| x.id == v.id);
        assert_eq!(
            due,
            stored.deadline().is_some(),
            "{}: due set agrees with Voucher::deadline",
            v.code
        );
    }
    assert_eq!(r.next_deadline_after(t(0)).await.expect("next"), Some(t(5)));
    assert_eq!(
        r.next_deadline_after(t(5)).await.expect("next"),
        Some(t(20)),
        "strictly after"
    );
    assert_eq!(r.next_deadline_after(t(40)).await.expect("next"), Some(t(60)));
    assert_eq!(r.next_deadline_after(t(60)).await.expect("next"), None);

    let claimed = r.claim_due(&claim("A", t(25), t(30), 10)).await.expect("claim");
    assert_eq!(ids(&claimed, id), vec![ex.id, up.id]);
}

/// `claim_due`: deadline order, limit, lease skip, expired leases free again,
/// `retry_later` back-off.
pub(super) async fn vouchers_claim_order_lease_and_retry(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.vouchers;
    let v30 = fx.voucher(R1, "M30", Some(t(-30)), None, 60).await;
    let v10 = fx.voucher(R1, "M10", Some(t(-10)), None, 60).await;
    let v20 = fx.voucher(R2, "M20", Some(t(-20)), None, 60).await;
    let p10 = fx.voucher(R1, "P10", Some(t(10)), None, 60).await;
    let id = |v: &Voucher| v.id;

    let a = r.claim_due(&claim("A", t(0), t(5), 2)).await.expect("claim");
    assert_eq!(ids(&a, id), vec![v30.id, v20.id]);
    assert!(a.iter().all(|v| v.lease == lease("A", t(5))));
    let b = r.claim_due(&claim("B", t(1), t(6), 10)).await.expect("claim");
    assert_eq!(
        ids(&b, id),
        vec![v10.id],
        "leased items are skipped; t+10 is not due yet"
    );
    assert!(r
        .claim_due(&claim("C", t(2), t(7), 10))
        .await
        .expect("claim")
        .is_empty());

    assert!(
        !fx.repos
            .leases
            .retry_later(v30.id, "B", t(60))
            .await
            .expect("retry"),
        "B does not hold it"
    );
    assert!(fx
        .repos
        .leases
        .retry_later(v30.id, "A", t(60))
        .await
        .expect("retry"));
    let got = r.get(v30.id).await.expect("get");
    assert_eq!((got.attempts, got.lease), (1, lease(RETRY_HOLDER, t(60))));

    let d = r.claim_due(&claim("D", t(20), t(100), 10)).await.expect("claim");
    assert_eq!(
        ids(&d, id),
        vec![v20.id, v10.id, p10.id],
        "expired leases are free again; the back-off until t+60 is not"
    );
    let e = r.claim_due(&claim("E", t(61), t(70), 10)).await.expect("claim");
    assert_eq!(ids(&e, id), vec![v30.id], "due again after its back-off");
    assert_eq!(e[0].attempts, 1);
}

/// `expire` is a compare-and-set on the status the caller saw and keeps the
/// lease; `mark_removed` (by the lease holder) ends the voucher's due life.
pub(super) async fn vouchers_expire_is_compare_and_set_and_removal(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.vouchers;
    let v = fx.voucher(R1, "E1", Some(t(-5)), None, 60).await;
    assert_eq!(
        r.claim_due(&claim("A", t(0), t(10), 10))
            .await
            .expect("claim")
            .len(),
        1
    );
    assert!(!r
        .expire(v.id, VoucherStatus::Active, VoucherExpiryReason::UsageEnded, t(1))
        .await
        .expect("expire"));
    assert_eq!(
        r.get(v.id).await.expect("get").status,
        VoucherStatus::Unused,
        "wrong seen status: no change"
    );
    assert!(r
        .expire(
            v.id,
            VoucherStatus::Unused,
            VoucherExpiryReason::ActivationDeadline,
            t(1)
        )
        .await
        .expect("expire"));
    let got = r.get(v.id).await.expect("get");
    assert_eq!(got.status, VoucherStatus::Expired);
    assert_eq!(got.expired_reason, Some(VoucherExpiryReason::ActivationDeadline));
    assert_eq!(got.expired_at, Some(t(1)));
    assert_eq!(
        got.lease,
        lease("A", t(10)),
        "expire keeps the lease for the router removal"
    );
    assert!(!got.removed_from_router);
    assert!(!r
        .expire(
            v.id,
            VoucherStatus::Unused,
            VoucherExpiryReason::PurchaseDeadline,
            t(2)
        )
        .await
        .expect("expire"));
    assert_eq!(
        r.get(v.id).await.expect("get").expired_reason,
        Some(VoucherExpiryReason::ActivationDeadline),
        "a second expire with a stale status changes nothing"
    );
    assert!(
        r.claim_due(&claim("B", t(2), t(20), 10))
            .await
            .expect("claim")
            .is_empty(),
        "still leased to A"
    );
    assert_eq!(
        ids(&r.list_due(t(2), 10).await.expect("list"), |x| x.id),
        vec![v.id],
        "due until removed"
    );

    assert!(
        !r.mark_removed(v.id, "B").await.expect("mark_removed"),
        "B does not hold the lease"
    );
    assert!(!r.get(v.id).await.expect("get").removed_from_router);
    assert!(r.mark_removed(v.id, "A").await.expect("mark_removed"));
    let got = r.get(v.id).await.expect("get");
    assert!(got.removed_from_router);
    assert_eq!(got.lease, None);
    assert_eq!(got.deadline(), None);
    assert!(r.list_due(t(1000), 10).await.expect("list").is_empty());
    assert!(r
        .claim_due(&claim("C", t(1000), t(1010), 10))
        .await
        .expect("claim")
        .is_empty());

    // An active voucher whose time ran out; the router removal fails once.
    let w = fx.voucher(R1, "E2", None, None, 10).await;
    r.activate(w.id, t(0)).await.expect("activate");
    assert_eq!(
        r.claim_due(&claim("A", t(11), t(15), 10))
            .await
            .expect("claim")
            .len(),
        1
    );
    assert!(!r
        .expire(
            w.id,
            VoucherStatus::Unused,
            VoucherExpiryReason::UsageEnded,
            t(11)
        )
        .await
        .expect("expire"));
    assert!(r
        .expire(
            w.id,
            VoucherStatus::Active,
            VoucherExpiryReason::UsageEnded,
            t(11)
        )
        .await
        .expect("expire"));
    assert!(fx
        .repos
        .leases
        .retry_later(w.id, "A", t(20))
        .await
        .expect("retry"));
    assert!(r
        .claim_due(&claim("B", t(15), t(30), 10))
        .await
        .expect("claim")
        .is_empty());
    let again = r.claim_due(&claim("B", t(21), t(30), 10)).await.expect("claim");
    assert_eq!(
        ids(&again, |x| x.id),
        vec![w.id],
        "an expired voucher stays due until removed"
    );
    assert_eq!(again[0].status, VoucherStatus::Expired);
    assert!(r.mark_removed(w.id, "B").await.expect("mark_removed"));
    assert!(r
        .claim_due(&claim("C", t(100), t(110), 10))
        .await
        .expect("claim")
        .is_empty());
}

/// `on_router` filters by router and status.
pub(super) async fn vouchers_on_router(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.vouchers;
    let v1 = fx.voucher(R1, "O1", None, None, 60).await;
    let v2 = fx.voucher(R1, "O2", None, None, 60).await;
    r.activate(v2.id, t(0)).await.expect("activate");
    let v3 = fx.voucher(R2, "O3", None, None, 60).await;
    r.activate(v3.id, t(0)).await.expect("activate");
    let v4 = fx.voucher(R1, "O4", None, None, 60).await;
    assert!(r
        .expire(
            v4.id,
            VoucherStatus::Unused,
            VoucherExpiryReason::RouterUserGone,
            t(0)
        )
        .await
        .expect("expire"));

    let id = |v: &Voucher| v.id;
    let on = |router, statuses: &'static [VoucherStatus]| async move {
        sorted_ids(&r.on_router(router, statuses).await.expect("on_router"), id)
    };
    assert_eq!(on(R1, &[VoucherStatus::Active]).await, vec![v2.id]);
    assert_eq!(
        on(R1, &[VoucherStatus::Unused, VoucherStatus::Expired]).await,
        vec![v1.id, v4.id]
    );
    assert_eq!(
        on(R2, &[VoucherStatus::Active, VoucherStatus::Unused]).await,
        vec![v3.id]
    );
    assert_eq!(on(R1, &[]).await, Vec::<VoucherId>::new());
    assert_eq!(on(R3, &[VoucherStatus::Active]).await, Vec::<VoucherId>::new());
}

/// Concurrent `claim_due`: every due voucher exactly once.
pub(super) async fn vouchers_concurrent_claims_are_exclusive(repos: Repositories) {
    let fx = fixture(repos).await;
    let mut expected = Vec::new();
    for n in 0..30 {
        expected.push(
            fx.voucher(R1, &format!("C{n}"), Some(t(-60 + n)), None, 60)
                .await
                .id,
        );
    }
    let vouchers = fx.repos.vouchers.clone();
    let got = claim_concurrently(6, &expected, move |holder| {
        let vouchers = vouchers.clone();
        async move {
            let batch = vouchers
                .claim_due(&claim(&holder, t(0), t(30), 4))
                .await
                .expect("claim_due");
            batch.into_iter().map(|v| v.id).collect()
        }
    })
    .await;
    for (holder, id) in got {
        assert_eq!(
            fx.repos.vouchers.get(id).await.expect("get").lease,
            lease(&holder, t(30))
        );
    }
}
