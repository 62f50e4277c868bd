//! Checks for the uncapped counts behind the health summary.

use crate::ports::{Repositories, SubscriberRepoExt as _};

use super::fixtures::*;

/// `count_expired` and `count_expiring_between` count what `list_expired` and
/// `expiring_between` list (active only, same bounds), with no limit.
pub(super) async fn subscribers_counts_are_uncapped(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.subscribers;
    for n in 0..5 {
        fx.subscriber(T1, 100 + n, t(-10 - i64::from(n))).await;
    }
    let at_now = fx.subscriber(T2, 200, t(0)).await;
    for n in 0..3 {
        fx.subscriber(T1, 300 + n, t(10 + i64::from(n))).await;
    }
    let boundary = fx.subscriber(T1, 400, t(30)).await;
    fx.subscriber(T1, 500, t(90)).await;
    // Disconnected (no longer active): counted nowhere.
    let gone = fx.subscriber(T1, 600, t(-20)).await;
    assert!(r
        .complete_expiry(gone.id, "nobody", gone.paid_until, t(0))
        .await
        .expect("complete_expiry"));

    assert_eq!(r.count_expired(t(0)).await.expect("count_expired"), 6);
    assert_eq!(
        r.count_expired(t(0)).await.expect("count_expired"),
        r.list_expired(t(0), 1000).await.expect("list").len() as u64,
        "the count matches the uncapped list"
    );
    assert_eq!(r.list_expired(t(0), 2).await.expect("list").len(), 2);
    assert_eq!(
        r.count_expired(t(-11)).await.expect("count_expired"),
        4,
        "inclusive bound"
    );
    assert_eq!(r.count_expired(t(-100)).await.expect("count_expired"), 0);

    assert_eq!(
        r.count_expiring_between(t(0), t(30)).await.expect("count"),
        4,
        "from is exclusive ({} not counted), to inclusive ({} counted)",
        at_now.paid_until,
        boundary.paid_until
    );
    assert_eq!(
        r.count_expiring_between(t(0), t(30)).await.expect("count"),
        r.expiring_between(t(0), t(30), 1000).await.expect("list").len() as u64
    );
    assert_eq!(
        r.count_expiring_between(t(-1000), t(1000)).await.expect("count"),
        11
    );
    assert_eq!(r.count_expiring_between(t(100), t(1000)).await.expect("count"), 0);
}
