//! Checks for tenants, the audit log and router status.

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

/// Tenants: upsert inserts and replaces by id, `get`, `list` by id, `NotFound`.
pub(super) async fn tenants_round_trip(repos: Repositories) {
    let a = tenant(T1, "alpha");
    let b = tenant(T2, "beta");
    repos.tenants.upsert(&b).await.expect("upsert");
    repos.tenants.upsert(&a).await.expect("upsert");
    assert_eq!(repos.tenants.get(T1).await.expect("get"), a);
    assert_eq!(
        repos.tenants.list().await.expect("list"),
        vec![a.clone(), b.clone()],
        "list is by id"
    );

    let mut a2 = a.clone();
    a2.name = "Alpha Hotels Ltd".into();
    a2.time_zone = chrono_tz::Europe::Berlin;
    repos.tenants.upsert(&a2).await.expect("upsert replaces");
    assert_eq!(repos.tenants.get(T1).await.expect("get"), a2);
    assert_eq!(repos.tenants.list().await.expect("list"), vec![a2, b]);
    expect_not_found(repos.tenants.get(TenantId(99)).await, "tenants.get(unknown)");
}

/// Audit: batches appended, `recent` and `of_router` newest first with a
/// limit, `delete_before` strictly before the cutoff.
pub(super) async fn audit_append_recent_delete(repos: Repositories) {
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
pub(super) async fn router_status_round_trip(repos: Repositories) {
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
