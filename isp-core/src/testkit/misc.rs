//! Checks for the audit log, router status and named leases.

use crate::domain::*;
use crate::ports::Repositories;

use super::fixtures::*;

fn event(at: i64, router: Option<RouterId>, action: &str) -> AuditEvent {
    AuditEvent {
        at: t(at),
        tenant_id: Some(T1),
        action: action.to_owned(),
        subject: format!("subscriber:{at}"),
        router_id: router,
        outcome: AuditOutcome::Retry,
        reason: Some("router unreachable: connection refused".into()),
    }
}

/// Audit: batches appended, `recent` and `of_router` newest first with a
/// limit, `delete_before` strictly before the cutoff.
pub async fn audit_append_recent_delete(repos: Repositories) {
    let r = &repos.audit;
    let e1 = event(-50, Some(R1), "disconnect");
    let e2 = AuditEvent {
        tenant_id: None,
        outcome: AuditOutcome::Success,
        reason: None,
        ..event(-40, None, "charge")
    };
    let e3 = event(-30, Some(R2), "provision");
    let e4 = event(-20, Some(R1), "disconnect");
    let e5 = event(-10, None, "notice");
    r.append(&[e3.clone(), e1.clone(), e5.clone()])
        .await
        .expect("append");
    r.append(&[]).await.expect("append nothing");
    r.append(&[e2.clone(), e4.clone()]).await.expect("append");

    assert_eq!(
        r.recent(10).await.expect("recent"),
        vec![e5.clone(), e4.clone(), e3.clone(), e2.clone(), e1.clone()],
        "newest first, whatever the append order"
    );
    assert_eq!(r.recent(2).await.expect("recent"), vec![e5.clone(), e4.clone()]);
    assert_eq!(
        r.of_router(R1, 10).await.expect("of_router"),
        vec![e4.clone(), e1.clone()]
    );
    assert_eq!(r.of_router(R1, 1).await.expect("of_router"), vec![e4.clone()]);
    assert!(r.of_router(R3, 10).await.expect("of_router").is_empty());

    assert_eq!(
        r.delete_before(t(-30)).await.expect("delete_before"),
        2,
        "strictly before the cutoff"
    );
    assert_eq!(r.recent(10).await.expect("recent"), vec![e5, e4.clone(), e3]);
    assert_eq!(r.delete_before(t(-30)).await.expect("delete_before"), 0);
    assert_eq!(r.of_router(R1, 10).await.expect("of_router"), vec![e4]);
}

/// Router status: `None` before the first check, `put` replaces, `list` by router id.
pub async fn router_status_round_trip(repos: Repositories) {
    let r = &repos.router_status;
    assert_eq!(r.get(R1).await.expect("get"), None);
    let s2 = RouterStatus {
        router_id: R2,
        online: true,
        checked_at: t(0),
        changed_at: t(-60),
        clock_skew_secs: Some(-3),
        version: Some("7.16.2".into()),
        last_error: None,
    };
    let s1 = RouterStatus {
        router_id: R1,
        ..s2.clone()
    };
    r.put(&s2).await.expect("put");
    r.put(&s1).await.expect("put");
    assert_eq!(r.get(R1).await.expect("get"), Some(s1.clone()));
    let s1b = RouterStatus {
        online: false,
        checked_at: t(1),
        changed_at: t(1),
        clock_skew_secs: None,
        version: None,
        last_error: Some("connection refused".into()),
        ..s1
    };
    r.put(&s1b).await.expect("put replaces");
    assert_eq!(r.get(R1).await.expect("get"), Some(s1b.clone()));
    assert_eq!(r.list().await.expect("list"), vec![s1b, s2]);
}

/// Named leases: two holders never hold one name at once; the holder renews;
/// an expired lease is free; release only by the holder.
pub async fn leases_exclusive_and_expiring(repos: Repositories) {
    let r = &repos.leases;
    assert!(r.acquire("billing", "A", t(0), t(10)).await.expect("acquire"));
    assert!(
        !r.acquire("billing", "B", t(5), t(15)).await.expect("acquire"),
        "held by A"
    );
    assert!(
        r.acquire("billing", "A", t(5), t(20)).await.expect("acquire"),
        "A renews"
    );
    assert!(
        !r.acquire("billing", "B", t(15), t(25)).await.expect("acquire"),
        "A renewed until t+20"
    );
    assert!(
        r.acquire("billing", "B", t(21), t(30)).await.expect("acquire"),
        "expired: free"
    );
    assert!(
        !r.acquire("billing", "A", t(22), t(40)).await.expect("acquire"),
        "now B holds it"
    );
    assert!(
        r.acquire("reminders", "A", t(22), t(40)).await.expect("acquire"),
        "names are independent"
    );

    r.release("billing", "A").await.expect("release by a non-holder");
    assert!(
        !r.acquire("billing", "A", t(23), t(40)).await.expect("acquire"),
        "a non-holder cannot release"
    );
    r.release("billing", "B").await.expect("release");
    assert!(
        r.acquire("billing", "A", t(23), t(40)).await.expect("acquire"),
        "released: free"
    );
    r.release("never-taken", "A")
        .await
        .expect("release of an unknown name");
}

/// Many daemons racing for one lease: exactly one gets it, also after it expired.
pub async fn leases_concurrent_acquire(repos: Repositories) {
    for (now, until) in [(t(0), t(10)), (t(11), t(20))] {
        let mut tasks = Vec::new();
        for n in 0..16 {
            let leases = repos.leases.clone();
            tasks.push(tokio::spawn(async move {
                leases
                    .acquire("singleton", &format!("daemon-{n}"), now, until)
                    .await
                    .expect("acquire")
            }));
        }
        let mut won = 0;
        for task in tasks {
            if task.await.expect("task") {
                won += 1;
            }
        }
        assert_eq!(
            won, 1,
            "exactly one of 16 concurrent acquirers holds the lease at {now}"
        );
    }
}
