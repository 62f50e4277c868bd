//! Checks for hotspot subscribers and devices.

use crate::domain::*;
use crate::ports::{
    DeviceRepoExt as _, LeaseRepoExt as _, Repositories, SubscriberRepoExt as _, RETRY_HOLDER,
};

use super::fixtures::*;

/// Subscribers: insert, get, find_by_phone, extend; `NotFound` for every
/// method taking an unknown id.
pub(super) async fn subscribers_round_trip(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.subscribers;
    let s = fx.subscriber(T1, 1, t(30)).await;
    assert_eq!(s.tenant_id, T1);
    assert_eq!(s.phone, phone(1));
    assert_eq!(s.username, ros(phone(1).digits()));
    assert_eq!(s.paid_until, t(30));
    assert!(s.active, "a new subscriber is active");
    assert_eq!(s.disconnected_at, None);
    assert_eq!(s.attempts, 0);
    assert_eq!(s.lease, None);
    assert_eq!(r.get(s.id).await.expect("get"), s);

    assert_eq!(
        r.find_by_phone(T1, &phone(1)).await.expect("find"),
        Some(s.clone())
    );
    assert_eq!(
        r.find_by_phone(T2, &phone(1)).await.expect("find"),
        None,
        "other tenant"
    );
    assert_eq!(
        r.find_by_phone(T1, &phone(2)).await.expect("find"),
        None,
        "other phone"
    );

    let e = r.extend(s.id, t(90)).await.expect("extend");
    assert_eq!(e.paid_until, t(90));
    assert!(e.active);
    assert_eq!(r.get(s.id).await.expect("get"), e);

    let unknown = SubscriberId(s.id.0 + 1_000);
    expect_not_found(r.get(unknown).await, "subscribers.get(unknown)");
    expect_not_found(r.extend(unknown, t(5)).await, "subscribers.extend(unknown)");
    expect_not_found(
        r.complete_expiry(unknown, "a", t(0), t(0)).await,
        "subscribers.complete_expiry(unknown)",
    );
    assert!(
        !fx.repos
            .leases
            .retry_later(unknown, "a", t(5))
            .await
            .expect("retry_later(unknown)"),
        "subscribers: a retry of an unknown id answers false"
    );
}

/// (tenant, phone) is unique: `Conflict`, and no second row.
pub(super) async fn subscribers_unique_phone_per_tenant(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.subscribers;
    let first = fx.subscriber(T1, 1, t(10)).await;
    let again = NewSubscriber {
        tenant_id: T1,
        phone: phone(1),
        username: ros("someone-else"),
        paid_until: t(20),
    };
    expect_conflict(
        r.insert(&again).await,
        "second subscriber with the same tenant and phone",
    );
    let other_tenant = fx.subscriber(T2, 1, t(10)).await;
    assert_ne!(other_tenant.id, first.id);
    let of_t1 = r.active_of_tenant(T1).await.expect("active_of_tenant");
    assert_eq!(of_t1, vec![first.clone()], "the refused insert left no row");
    assert_eq!(
        r.get(first.id).await.expect("get"),
        first,
        "the refused insert changed nothing"
    );
}

/// One hotspot user namespace per tenant: a subscriber's username and a
/// voucher's code may not be equal (the router would have one user for both),
/// nor two subscribers' usernames. The conflict names the field and the value;
/// a refused insert writes nothing (its name stays free); other tenants are
/// independent.
pub(super) async fn hotspot_names_unique_per_tenant(repos: Repositories) {
    let fx = fixture(repos).await;
    let subs = &fx.repos.subscribers;
    let vouchers = &fx.repos.vouchers;
    let new_sub = |tenant: TenantId, n: u32, username: &str| NewSubscriber {
        tenant_id: tenant,
        phone: phone(n),
        username: ros(username),
        paid_until: t(30),
    };
    let alice = subs.insert(&new_sub(T1, 1, "alice")).await.expect("insert alice");
    let code = fx.voucher(R1, "K7Q2", None, Some(t(60)), 60).await;

    expect_conflict_naming(
        vouchers
            .insert(&fx.new_voucher(T1, R2, "alice", None, Some(t(60)), 60))
            .await,
        "code",
        "alice",
        "a voucher whose code is a subscriber's username",
    );
    expect_conflict_naming(
        subs.insert(&new_sub(T1, 2, "K7Q2")).await,
        "username",
        "K7Q2",
        "a subscriber whose username is a voucher's code",
    );
    expect_conflict_naming(
        subs.insert(&new_sub(T1, 3, "alice")).await,
        "username",
        "alice",
        "a second subscriber with the same username",
    );
    assert_eq!(
        subs.active_of_tenant(T1).await.expect("active_of_tenant"),
        vec![alice.clone()],
        "the refused subscribers left no row"
    );
    assert_eq!(
        vouchers.find_by_code(T1, &ros("alice")).await.expect("find"),
        None,
        "the refused voucher left no row"
    );
    assert_eq!(vouchers.get(code.id).await.expect("get"), code);

    // Refused for its phone: its username must not stay reserved.
    expect_conflict(
        subs.insert(&new_sub(T1, 1, "fresh")).await,
        "a second subscriber with the same phone",
    );
    let fresh = vouchers
        .insert(&fx.new_voucher(T1, R1, "fresh", None, Some(t(60)), 60))
        .await
        .expect("the name of a refused insert is free");
    assert_eq!(fresh.code, ros("fresh"));
    // Refused for its code: the name is still the first voucher's only.
    expect_conflict(
        vouchers
            .insert(&fx.new_voucher(T1, R2, "K7Q2", None, None, 60))
            .await,
        "a second voucher with the same code",
    );

    // Another tenant has its own namespace, both ways.
    let other = subs
        .insert(&new_sub(T2, 4, "K7Q2"))
        .await
        .expect("a voucher code of tenant 1 is free in tenant 2");
    assert_eq!(other.username, ros("K7Q2"));
    vouchers
        .insert(&fx.new_voucher(T2, R2, "alice", None, Some(t(60)), 60))
        .await
        .expect("a username of tenant 1 is free as a code in tenant 2");
    expect_conflict_naming(
        vouchers
            .insert(&fx.new_voucher(T2, R2, "K7Q2", None, None, 60))
            .await,
        "code",
        "K7Q2",
        "tenant 2: a voucher code equal to its subscriber's username",
    );
}

/// Many writers racing for one hotspot user name (half as subscribers, half as
/// vouchers): exactly one wins, every other gets `Conflict`.
pub(super) async fn hotspot_names_race(repos: Repositories) {
    let fx = std::sync::Arc::new(fixture(repos).await);
    let mut tasks = Vec::new();
    for i in 0..8_u32 {
        let fx = fx.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                fx.repos
                    .subscribers
                    .insert(&NewSubscriber {
                        tenant_id: T1,
                        phone: phone(100 + i),
                        username: ros("contested"),
                        paid_until: t(30),
                    })
                    .await
                    .map(|_| ())
            } else {
                fx.repos
                    .vouchers
                    .insert(&fx.new_voucher(T1, R1, "contested", None, Some(t(60)), 60))
                    .await
                    .map(|_| ())
            }
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.expect("an insert task panicked") {
            Ok(()) => won += 1,
            Err(e) => assert!(e.is_conflict(), "a losing insert must be Conflict, got {e:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one writer gets the name");
    let subs = fx
        .repos
        .subscribers
        .active_of_tenant(T1)
        .await
        .expect("active_of_tenant")
        .len();
    let vouchers = usize::from(
        fx.repos
            .vouchers
            .find_by_code(T1, &ros("contested"))
            .await
            .expect("find")
            .is_some(),
    );
    assert_eq!(subs + vouchers, 1, "one row holds the name");
}

/// `claim_expired`: active subscribers with `paid_until <= now`, oldest first,
/// at most `limit`, leased to the claimant; `list_expired` is read only.
pub(super) async fn subscribers_claim_in_deadline_order(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.subscribers;
    let a = fx.subscriber(T1, 1, t(-10)).await;
    let b = fx.subscriber(T1, 2, t(-30)).await;
    let c = fx.subscriber(T1, 3, t(0)).await; // exactly now: due
    let d = fx.subscriber(T1, 4, t(-20)).await;
    let e = fx.subscriber(T2, 5, t(-40)).await; // another tenant: claims span tenants
    let _future = fx.subscriber(T1, 6, t(1)).await;
    let gone = fx.subscriber(T1, 7, t(-50)).await;
    assert!(r
        .complete_expiry(gone.id, "setup", t(-50), t(-49))
        .await
        .expect("complete"));

    let order = vec![e.id, b.id, d.id, a.id, c.id];
    let id = |s: &Subscriber| s.id;
    assert_eq!(ids(&r.list_expired(t(0), 10).await.expect("list"), id), order);
    assert_eq!(
        ids(&r.list_expired(t(0), 2).await.expect("list"), id),
        vec![e.id, b.id]
    );

    let first = r.claim_expired(&claim("A", t(0), t(5), 2)).await.expect("claim");
    assert_eq!(
        ids(&first, id),
        vec![e.id, b.id],
        "oldest paid_until first, limit 2"
    );
    for s in &first {
        assert_eq!(s.lease, lease("A", t(5)), "returned items carry the new lease");
        assert_eq!(
            r.get(s.id).await.expect("get").lease,
            lease("A", t(5)),
            "the lease is stored"
        );
    }
    let second = r.claim_expired(&claim("B", t(0), t(5), 2)).await.expect("claim");
    assert_eq!(
        ids(&second, id),
        vec![d.id, a.id],
        "the next claimant gets the next items"
    );
    let third = r.claim_expired(&claim("C", t(0), t(5), 10)).await.expect("claim");
    assert_eq!(ids(&third, id), vec![c.id], "paid_until == now is due");
    assert!(r
        .claim_expired(&claim("D", t(0), t(5), 10))
        .await
        .expect("claim")
        .is_empty());
    assert_eq!(
        ids(&r.list_expired(t(0), 10).await.expect("list"), id),
        order,
        "list_expired is read only and ignores leases"
    );
}

/// A leased subscriber is skipped until its lease expires; then it is free again.
pub(super) async fn subscribers_claim_skips_leased_and_frees_expired(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.subscribers;
    let mut all = Vec::new();
    for n in 0..3 {
        all.push(fx.subscriber(T1, n, t(-10 - i64::from(n))).await.id);
    }
    all.sort();
    let got = r
        .claim_expired(&claim("A", t(0), t(10), 10))
        .await
        .expect("claim");
    assert_eq!(sorted_ids(&got, |s| s.id), all);
    assert!(
        r.claim_expired(&claim("B", t(5), t(15), 10))
            .await
            .expect("claim")
            .is_empty(),
        "items leased until t+10 must not be claimed at t+5"
    );
    let again = r
        .claim_expired(&claim("B", t(11), t(20), 10))
        .await
        .expect("claim");
    assert_eq!(
        sorted_ids(&again, |s| s.id),
        all,
        "an expired lease is free again"
    );
    for s in &again {
        assert_eq!(r.get(s.id).await.expect("get").lease, lease("B", t(20)));
    }
    assert!(r
        .claim_expired(&claim("A", t(12), t(20), 10))
        .await
        .expect("claim")
        .is_empty());
}

/// `retry_later` needs the caller's lease, counts the attempt and holds the
/// subscriber back until the back-off ends; `extend` clears both.
pub(super) async fn subscribers_retry_later_backs_off(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.subscribers;
    let s = fx.subscriber(T1, 1, t(-1)).await;
    assert_eq!(
        r.claim_expired(&claim("A", t(0), t(10), 10))
            .await
            .expect("claim")
            .len(),
        1
    );
    assert!(
        !fx.repos
            .leases
            .retry_later(s.id, "B", t(30))
            .await
            .expect("retry"),
        "B does not hold the lease"
    );
    assert_eq!(
        r.get(s.id).await.expect("get").lease,
        lease("A", t(10)),
        "refused retry changed nothing"
    );
    assert!(fx
        .repos
        .leases
        .retry_later(s.id, "A", t(30))
        .await
        .expect("retry"));
    let got = r.get(s.id).await.expect("get");
    assert_eq!(got.attempts, 1);
    assert_eq!(got.lease, lease(RETRY_HOLDER, t(30)));
    assert!(got.active);
    assert!(
        r.claim_expired(&claim("C", t(20), t(40), 10))
            .await
            .expect("claim")
            .is_empty(),
        "the back-off (until t+30) outlasts A's lease (t+10)"
    );
    let back = r
        .claim_expired(&claim("C", t(31), t(40), 10))
        .await
        .expect("claim");
    assert_eq!(
        ids(&back, |x| x.id),
        vec![s.id],
        "due again once the back-off ended"
    );
    assert_eq!(back[0].attempts, 1);
    assert!(fx
        .repos
        .leases
        .retry_later(s.id, "C", t(60))
        .await
        .expect("retry"));
    assert_eq!(r.get(s.id).await.expect("get").attempts, 2);

    let e = r.extend(s.id, t(100)).await.expect("extend");
    assert_eq!(
        (e.attempts, e.lease),
        (0, None),
        "extend clears attempts and lease"
    );
}

/// `complete_expiry` only disconnects a subscriber still active with the
/// `paid_until` the caller saw; it always clears the caller's lease.
pub(super) async fn subscribers_complete_expiry_is_compare_and_set(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.subscribers;

    // Normal completion.
    let s1 = fx.subscriber(T1, 1, t(-5)).await;
    assert_eq!(
        r.claim_expired(&claim("A", t(0), t(10), 1))
            .await
            .expect("claim")
            .len(),
        1
    );
    assert!(r
        .complete_expiry(s1.id, "A", t(-5), t(1))
        .await
        .expect("complete"));
    let got = r.get(s1.id).await.expect("get");
    assert!(!got.active);
    assert_eq!(got.disconnected_at, Some(t(1)));
    assert_eq!(got.lease, None);
    assert!(r.list_expired(t(100), 10).await.expect("list").is_empty());
    assert!(r
        .claim_expired(&claim("B", t(100), t(110), 10))
        .await
        .expect("claim")
        .is_empty());
    assert!(
        !r.complete_expiry(s1.id, "A", t(-5), t(2))
            .await
            .expect("complete"),
        "a second completion changes nothing"
    );
    assert_eq!(r.get(s1.id).await.expect("get").disconnected_at, Some(t(1)));

    // An extension between claim and completion wins.
    let s2 = fx.subscriber(T1, 2, t(-5)).await;
    assert_eq!(
        r.claim_expired(&claim("A", t(0), t(10), 1))
            .await
            .expect("claim")
            .len(),
        1
    );
    r.extend(s2.id, t(60)).await.expect("extend");
    assert!(!r
        .complete_expiry(s2.id, "A", t(-5), t(1))
        .await
        .expect("complete"));
    let got = r.get(s2.id).await.expect("get");
    assert!(got.active, "an extension between claim and completion wins");
    assert_eq!(got.paid_until, t(60));
    assert_eq!(got.disconnected_at, None);

    // A refused completion still clears the caller's lease, and only the caller's.
    let s3 = fx.subscriber(T1, 3, t(-5)).await;
    assert_eq!(
        r.claim_expired(&claim("A", t(0), t(10), 1))
            .await
            .expect("claim")
            .len(),
        1
    );
    assert!(!r
        .complete_expiry(s3.id, "A", t(-4), t(1))
        .await
        .expect("complete"));
    let got = r.get(s3.id).await.expect("get");
    assert!(got.active);
    assert_eq!(
        got.lease, None,
        "complete_expiry always clears the caller's lease"
    );
    let again = r
        .claim_expired(&claim("B", t(2), t(20), 10))
        .await
        .expect("claim");
    assert_eq!(ids(&again, |x| x.id), vec![s3.id]);
    assert!(!r
        .complete_expiry(s3.id, "X", t(-4), t(3))
        .await
        .expect("complete"));
    assert_eq!(
        r.get(s3.id).await.expect("get").lease,
        lease("B", t(20)),
        "another holder's lease stays"
    );

    // Renewal after a disconnect reactivates.
    let back = r.extend(s1.id, t(120)).await.expect("extend");
    assert!(back.active);
    assert_eq!(back.disconnected_at, None);
}

/// `complete_expiries` answers like `complete_expiry` item by item (extension
/// wins, lease cleared, unknown id `false`), and `deactivate_all_of` like
/// `deactivate_all` over the subscribers.
pub(super) async fn subscribers_batch_expiries_and_devices(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.subscribers;
    let d = &fx.repos.devices;
    let done = fx.subscriber(T1, 1, t(-5)).await;
    let extended = fx.subscriber(T1, 2, t(-4)).await;
    let stale = fx.subscriber(T1, 3, t(-3)).await;
    let other = fx.subscriber(T1, 4, t(-2)).await;
    let claimed = r.claim_expired(&claim("A", t(0), t(10), 4)).await.expect("claim");
    assert_eq!(claimed.len(), 4);
    r.extend(extended.id, t(60)).await.expect("extend");

    let item = |id: SubscriberId, paid_until_seen| ExpiryDone { id, paid_until_seen };
    assert!(r
        .complete_expiries(&[], "A", t(1))
        .await
        .expect("empty batch")
        .is_empty());
    let answers = r
        .complete_expiries(
            &[
                item(done.id, t(-5)),
                item(extended.id, t(-4)),
                item(stale.id, t(-30)),
                item(SubscriberId(999_999), t(-5)),
            ],
            "A",
            t(1),
        )
        .await
        .expect("complete_expiries");
    assert_eq!(
        answers,
        vec![true, false, false, false],
        "one answer per item, in order"
    );

    let got = r.get(done.id).await.expect("get");
    assert_eq!(
        (got.active, got.disconnected_at, got.lease),
        (false, Some(t(1)), None)
    );
    let got = r.get(extended.id).await.expect("get");
    assert_eq!(
        (got.active, got.paid_until, got.disconnected_at),
        (true, t(60), None),
        "the extension wins"
    );
    let got = r.get(stale.id).await.expect("get");
    assert!(got.active, "a different paid_until is not completed");
    assert_eq!(got.lease, None, "the caller's lease is cleared either way");
    assert_eq!(
        r.get(other.id).await.expect("get").lease,
        lease("A", t(10)),
        "a subscriber not in the batch keeps its lease"
    );
    assert_eq!(
        r.complete_expiries(&[item(done.id, t(-5))], "A", t(2))
            .await
            .expect("again"),
        vec![false],
        "a second completion changes nothing"
    );
    assert_eq!(r.get(done.id).await.expect("get").disconnected_at, Some(t(1)));

    let mac = |n: u8| MacAddress::parse("mac", &format!("AA:BB:CC:00:00:{n:02X}")).expect("mac");
    d.record_seen(done.id, mac(1), Some(R1), t(0))
        .await
        .expect("seen");
    d.record_seen(done.id, mac(2), Some(R1), t(0))
        .await
        .expect("seen");
    d.record_seen(stale.id, mac(3), None, t(0)).await.expect("seen");
    let kept = d.record_seen(other.id, mac(4), None, t(0)).await.expect("seen");
    assert_eq!(d.deactivate_all_of(&[]).await.expect("empty"), 0);
    assert_eq!(
        d.deactivate_all_of(&[done.id, stale.id, SubscriberId(999_999)])
            .await
            .expect("deactivate_all_of"),
        3
    );
    assert_eq!(
        d.deactivate_all_of(&[done.id, stale.id]).await.expect("again"),
        0,
        "counts only changed devices"
    );
    let left = d
        .active_of(&[done.id, stale.id, other.id])
        .await
        .expect("active_of");
    assert_eq!(ids(&left, |x| x.id), vec![kept.id]);
}

/// `expiring_between`, `next_expiry_after`, `count_entitled`, `active_of_tenant`.
pub(super) async fn subscribers_queries(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.subscribers;
    let a = fx.subscriber(T1, 1, t(10)).await;
    let b = fx.subscriber(T1, 2, t(30)).await;
    let c = fx.subscriber(T2, 3, t(60)).await;
    let d = fx.subscriber(T1, 4, t(0)).await;
    let e = fx.subscriber(T1, 5, t(5)).await;
    assert!(r
        .complete_expiry(e.id, "setup", t(5), t(0))
        .await
        .expect("complete"));

    let id = |s: &Subscriber| s.id;
    assert_eq!(
        ids(&r.expiring_between(t(0), t(30), 10).await.expect("between"), id),
        vec![a.id, b.id],
        "from is exclusive, to inclusive, only active, soonest first"
    );
    assert_eq!(
        ids(&r.expiring_between(t(-1), t(60), 2).await.expect("between"), id),
        vec![d.id, a.id]
    );
    assert_eq!(
        ids(&r.expiring_between(t(10), t(60), 10).await.expect("between"), id),
        vec![b.id, c.id]
    );

    assert_eq!(
        r.next_expiry_after(t(0)).await.expect("next"),
        Some(t(10)),
        "strictly after, only active"
    );
    assert_eq!(r.next_expiry_after(t(10)).await.expect("next"), Some(t(30)));
    assert_eq!(r.next_expiry_after(t(60)).await.expect("next"), None);

    assert_eq!(
        r.count_entitled(t(0)).await.expect("count"),
        3,
        "paid_until > now and active"
    );
    assert_eq!(r.count_entitled(t(30)).await.expect("count"), 1);

    assert_eq!(
        sorted_ids(&r.active_of_tenant(T1).await.expect("active_of_tenant"), id),
        vec![a.id, b.id, d.id]
    );
    assert_eq!(
        ids(&r.active_of_tenant(T2).await.expect("active_of_tenant"), id),
        vec![c.id]
    );
}

/// Many concurrent claimants on one store: every expired subscriber is
/// claimed exactly once, and by the claimant whose lease it carries.
pub(super) async fn subscribers_concurrent_claims_are_exclusive(repos: Repositories) {
    let fx = fixture(repos).await;
    let mut expected = Vec::new();
    for n in 0..40 {
        expected.push(fx.subscriber(T1, n, t(-100 + i64::from(n))).await.id);
    }
    let subs = fx.repos.subscribers.clone();
    let got = claim_concurrently(8, &expected, move |holder| {
        let subs = subs.clone();
        async move {
            let batch = subs
                .claim_expired(&claim(&holder, t(0), t(30), 3))
                .await
                .expect("claim_expired");
            batch.into_iter().map(|s| s.id).collect()
        }
    })
    .await;
    for (holder, id) in got {
        assert_eq!(
            fx.repos.subscribers.get(id).await.expect("get").lease,
            lease(&holder, t(30))
        );
    }
}

/// Devices: record_seen creates or updates by (subscriber, mac); active_of,
/// deactivate_all, delete_unseen_since.
pub(super) async fn devices_round_trip(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.devices;
    let s1 = fx.subscriber(T1, 1, t(60)).await.id;
    let s2 = fx.subscriber(T1, 2, t(60)).await.id;
    let mac1 = MacAddress::parse("mac", "AA:BB:CC:00:00:01").expect("mac");
    let mac2 = MacAddress::parse("mac", "AA:BB:CC:00:00:02").expect("mac");

    let d1 = r
        .record_seen(s1, mac1, Some(R1), t(0))
        .await
        .expect("record_seen");
    assert_eq!(
        (d1.subscriber_id, d1.mac, d1.router_id, d1.last_seen, d1.active),
        (s1, mac1, Some(R1), t(0), true)
    );
    let d1b = r
        .record_seen(s1, mac1, Some(R2), t(5))
        .await
        .expect("record_seen");
    assert_eq!(d1b.id, d1.id, "same (subscriber, mac) updates the device");
    assert_eq!((d1b.router_id, d1b.last_seen, d1b.active), (Some(R2), t(5), true));
    let d2 = r.record_seen(s1, mac2, None, t(1)).await.expect("record_seen");
    let d3 = r
        .record_seen(s2, mac1, Some(R1), t(2))
        .await
        .expect("record_seen");
    assert_ne!(d3.id, d1.id, "a device is per subscriber");

    let id = |d: &Device| d.id;
    assert_eq!(sorted_ids(&r.active_of(&[s1]).await.expect("active_of"), id), {
        let mut v = vec![d1.id, d2.id];
        v.sort();
        v
    });
    let both = r.active_of(&[s1, s2]).await.expect("active_of");
    assert_eq!(both.len(), 3);
    assert!(both.contains(&d1b), "active_of returns the stored device");
    assert!(r.active_of(&[]).await.expect("active_of").is_empty());

    assert_eq!(r.deactivate_all(s1).await.expect("deactivate"), 2);
    assert!(r.active_of(&[s1]).await.expect("active_of").is_empty());
    assert_eq!(
        r.deactivate_all(s1).await.expect("deactivate"),
        0,
        "counts only changed devices"
    );
    assert_eq!(
        ids(&r.active_of(&[s2]).await.expect("active_of"), id),
        vec![d3.id]
    );

    let back = r
        .record_seen(s1, mac1, Some(R1), t(10))
        .await
        .expect("record_seen");
    assert_eq!(back.id, d1.id);
    assert!(back.active, "seeing a device again reactivates it");

    assert_eq!(
        r.delete_unseen_since(t(2)).await.expect("delete"),
        1,
        "strictly before the cutoff"
    );
    assert_eq!(
        sorted_ids(&r.active_of(&[s1, s2]).await.expect("active_of"), id),
        {
            let mut v = vec![d1.id, d3.id];
            v.sort();
            v
        }
    );
    assert_eq!(r.delete_unseen_since(t(11)).await.expect("delete"), 2);
    assert!(r.active_of(&[s1, s2]).await.expect("active_of").is_empty());
}
