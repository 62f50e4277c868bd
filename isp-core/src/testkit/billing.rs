//! Checks for plans, customers, services and the ledger.
//!
//! (Over 800 lines: conformance checks only, one function per rule, named as the
//! registry lists them; the file mirrors `ports/repos/billing.rs`.)

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::str::FromStr;

use rust_decimal::Decimal;

use chrono::NaiveDate;

use crate::domain::*;
use crate::error::{Error, Result};
use crate::policy::billing::charge_key;
use crate::ports::{
    ChargeItem, ChargeOutcome, DueCharges, LeaseRepoExt as _, PlanCharges, Repositories, RETRY_HOLDER,
};

use super::fixtures::*;

/// Plans ((tenant, name) unique, exact money) and customers.
pub(super) async fn plans_and_customers_round_trip(repos: Repositories) {
    for t in [tenant(T1, "alpha"), tenant(T2, "beta")] {
        repos.tenants.upsert(&t).await.expect("upsert tenant");
    }
    let plans = &repos.plans;
    let new = NewPlan {
        tenant_id: T1,
        name: ros("home-10m"),
        price: tzs("25000.5"),
        duration: Some(RosDuration::from_secs(30 * 86_400)),
        rate_limit: Some(RateLimit::parse("rate_limit", "10M/20M").expect("rate limit")),
    };
    let p1 = plans.insert(&new).await.expect("insert plan");
    assert_eq!(
        (p1.tenant_id, &p1.name, p1.price, p1.duration, p1.rate_limit),
        (T1, &new.name, new.price, new.duration, new.rate_limit)
    );
    assert_eq!(
        p1.price.amount,
        Decimal::from_str("25000.50").expect("decimal"),
        "money round-trips exactly"
    );
    assert_eq!(plans.get(p1.id).await.expect("get"), p1);

    expect_conflict(
        plans.insert(&new).await,
        "a second plan with the same tenant and name",
    );
    let p2 = plans
        .insert(&NewPlan {
            tenant_id: T2,
            ..new.clone()
        })
        .await
        .expect("same name, other tenant");
    let p3 = plans
        .insert(&NewPlan {
            tenant_id: T1,
            name: ros("home-20m"),
            price: tzs("0.0001"),
            duration: None,
            rate_limit: None,
        })
        .await
        .expect("insert plan");
    assert_eq!(plans.get(p3.id).await.expect("get").price, tzs("0.0001"));
    assert_eq!(
        plans.list(T1).await.expect("list"),
        vec![p1.clone(), p3],
        "by id, one tenant"
    );
    assert_eq!(plans.list(T2).await.expect("list"), vec![p2.clone()]);
    expect_not_found(
        plans.get(PlanId(p1.id.0.max(p2.id.0) + 1_000)).await,
        "plans.get(unknown)",
    );

    let customers = &repos.customers;
    let c1 = customers
        .insert(&NewCustomer {
            tenant_id: T1,
            name: "Amina Mwakyusa".into(),
            phone: Some(phone(1)),
        })
        .await
        .expect("insert customer");
    let c2 = customers
        .insert(&NewCustomer {
            tenant_id: T1,
            name: "Juma".into(),
            phone: None,
        })
        .await
        .expect("insert customer");
    assert_ne!(c1.id, c2.id);
    assert_eq!(
        (c1.tenant_id, c1.name.as_str(), c1.phone.clone()),
        (T1, "Amina Mwakyusa", Some(phone(1)))
    );
    assert_eq!(customers.get(c1.id).await.expect("get"), c1);
    assert_eq!(customers.get(c2.id).await.expect("get"), c2);
    expect_not_found(
        customers.get(CustomerId(c1.id.0.max(c2.id.0) + 1_000)).await,
        "customers.get(unknown)",
    );
}

/// Services: insert, get (the password round-trips), set_status,
/// set_next_billing_date, on_router; PPPoE username unique per router; `NotFound`.
pub(super) async fn services_round_trip(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.services;
    let new = fx.new_pppoe(T1, R1, "amina", ServiceStatus::Active, day(10), day(10));
    let s1 = r.insert(&new).await.expect("insert");
    assert_eq!(
        (s1.tenant_id, s1.customer_id, s1.router_id, s1.plan_id, s1.status),
        (T1, fx.customer.id, R1, fx.plan.id, ServiceStatus::Active)
    );
    assert_eq!(
        s1.connection, new.connection,
        "connection details incl. password round-trip"
    );
    assert_eq!(
        (s1.next_billing_date, s1.billing_day, s1.next_charge_on),
        (day(10), 10, day(10))
    );
    assert!(!s1.provisioned, "a new service is not provisioned");
    assert_eq!((s1.provisioned_at, s1.deprovisioned_at), (None, None));
    assert_eq!((s1.lease.clone(), s1.attempts), (None, 0));
    assert_eq!(r.get(s1.id).await.expect("get"), s1);

    let s2 = r
        .insert(&fx.new_static(R1, Ipv4Addr::new(10, 0, 0, 5)))
        .await
        .expect("insert static");
    assert_eq!(
        r.get(s2.id).await.expect("get").connection,
        Connection::StaticIp {
            address: Ipv4Addr::new(10, 0, 0, 5)
        }
    );
    expect_conflict(
        r.insert(&fx.new_pppoe(T1, R1, "amina", ServiceStatus::Pending, day(1), day(1)))
            .await,
        "a second PPPoE secret with the same name on one router",
    );
    let s3 = r
        .insert(&fx.new_pppoe(T1, R2, "amina", ServiceStatus::Active, day(1), day(1)))
        .await
        .expect("same username on another router");

    let changed = r
        .set_status(s1.id, ServiceStatus::Suspended)
        .await
        .expect("set_status");
    assert_eq!(changed.status, ServiceStatus::Suspended);
    assert_eq!(r.get(s1.id).await.expect("get"), changed);
    let moved = r
        .set_next_billing_date(s1.id, day(40))
        .await
        .expect("set_next_billing_date");
    assert_eq!(moved.next_billing_date, day(40));
    assert_eq!(moved.status, ServiceStatus::Suspended);
    assert_eq!(r.get(s1.id).await.expect("get"), moved);

    let id = |s: &Service| s.id;
    assert_eq!(
        sorted_ids(&r.on_router(R1).await.expect("on_router"), id),
        vec![s1.id, s2.id]
    );
    assert_eq!(ids(&r.on_router(R2).await.expect("on_router"), id), vec![s3.id]);
    assert!(r.on_router(R3).await.expect("on_router").is_empty());

    let unknown = ServiceId(s3.id.0 + 1_000);
    expect_not_found(r.get(unknown).await, "services.get(unknown)");
    expect_not_found(
        r.set_status(unknown, ServiceStatus::Active).await,
        "services.set_status(unknown)",
    );
    expect_not_found(
        r.set_next_billing_date(unknown, day(1)).await,
        "services.set_next_billing_date(unknown)",
    );
    expect_not_found(
        r.mark_provisioned(unknown, "a", t(0)).await,
        "services.mark_provisioned(unknown)",
    );
    expect_not_found(
        r.mark_deprovisioned(unknown, "a", t(0)).await,
        "services.mark_deprovisioned(unknown)",
    );
    assert!(
        !fx.repos
            .leases
            .retry_later(unknown, "a", t(0))
            .await
            .expect("retry_later(unknown)"),
        "services: a retry of an unknown id answers false"
    );
    expect_not_found(
        r.advance_billing(unknown, "a", day(0), day(1)).await,
        "services.advance_billing(unknown)",
    );
    assert!(
        !fx.repos
            .leases
            .release(unknown, "a")
            .await
            .expect("release(unknown)"),
        "services: a release of an unknown id answers false"
    );
}

/// Provisioning claims: active + not provisioned + not past due; provisioned
/// + (not active or past due); ordered by due date, then id; one tenant only.
pub(super) async fn services_provisioning_conditions(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.services;
    use ServiceStatus::*;
    // Provisioned ones first: create them due for provisioning, provision them
    // through a claim, then give them their final state.
    let k = fx.service(T1, "k", Active, day(10), day(10)).await;
    let h = fx.service(T1, "h", Active, day(10), day(10)).await;
    let f = fx.service(T1, "f", Active, day(10), day(10)).await;
    let d = fx.service(T1, "d", Active, day(10), day(10)).await;
    let c = fx.service(T1, "c", Active, day(10), day(10)).await;
    let l = fx.service(T1, "l", Active, day(10), day(10)).await;
    let setup = r
        .claim_provisioning(T1, day(0), &claim("setup", t(-100), t(-90), 100))
        .await
        .expect("claim");
    assert_eq!(setup.len(), 6);
    for s in &setup {
        assert!(r
            .mark_provisioned(s.id, "setup", t(-99))
            .await
            .expect("mark_provisioned"));
    }
    r.set_next_billing_date(k.id, day(0)).await.expect("set"); // paid through today: nothing to do
    r.set_status(h.id, Terminated).await.expect("set"); // deprovision
    r.set_next_billing_date(h.id, day(30)).await.expect("set");
    r.set_next_billing_date(f.id, day(-1)).await.expect("set"); // past due: deprovision
    r.set_status(d.id, Suspended).await.expect("set"); // deprovision
    r.set_next_billing_date(d.id, day(5)).await.expect("set");
    r.set_next_billing_date(c.id, day(5)).await.expect("set"); // fine as it is
    r.set_status(l.id, Inactive).await.expect("set"); // deprovision, same date as d
    r.set_next_billing_date(l.id, day(5)).await.expect("set");

    let a = fx.service(T1, "a", Active, day(0), day(0)).await; // provision: due today still counts
    let _b = fx.service(T1, "b", Active, day(-1), day(0)).await; // past due, never provisioned: nothing
    let _e = fx.service(T1, "e", Suspended, day(5), day(0)).await; // off and not provisioned: nothing
    let g = fx.service(T2, "g", Active, day(1), day(0)).await; // another tenant
    let _i = fx.service(T1, "i", Pending, day(3), day(0)).await; // not started: nothing
    let j = fx.service(T1, "j", Active, day(3), day(0)).await; // provision

    let id = |s: &Service| s.id;
    let want = vec![f.id, a.id, j.id, d.id, l.id, h.id];
    assert_eq!(
        ids(&r.list_provisioning(T1, day(0), 100).await.expect("list"), id),
        want,
        "by next_billing_date, then id"
    );
    assert_eq!(
        ids(&r.list_provisioning(T1, day(0), 2).await.expect("list"), id),
        vec![f.id, a.id]
    );
    let claimed = r
        .claim_provisioning(T1, day(0), &claim("A", t(0), t(10), 100))
        .await
        .expect("claim");
    assert_eq!(ids(&claimed, id), want);
    assert!(claimed.iter().all(|s| s.lease == lease("A", t(10))));
    assert_eq!(
        ids(&r.list_provisioning(T1, day(0), 100).await.expect("list"), id),
        want,
        "list_provisioning is read only and ignores leases"
    );
    assert_eq!(
        ids(&r.list_provisioning(T2, day(0), 100).await.expect("list"), id),
        vec![g.id]
    );
    assert_eq!(
        ids(
            &r.claim_provisioning(T2, day(0), &claim("B", t(0), t(10), 100))
                .await
                .expect("claim"),
            id
        ),
        vec![g.id],
        "claims are per tenant"
    );
    let user = |s: &Service| match &s.connection {
        Connection::Pppoe { username, .. } => username.to_string(),
        Connection::StaticIp { address } => address.to_string(),
    };
    assert_eq!(
        ids(&r.list_provisioning(T1, day(-1), 100).await.expect("list"), user),
        vec!["b", "a", "j", "d", "l", "h"],
        "a day earlier: b is not past due yet, and neither are f and k"
    );
}

/// Fenced marks: A claims, its lease expires, B claims and marks; A's late
/// mark (either kind) is refused and changes nothing, also once B's mark
/// cleared the lease. A mark without a claim is refused; a holder whose lease
/// expired with nobody taking over still marks.
pub(super) async fn services_late_mark_after_takeover_is_refused(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.services;
    let today = day(0);
    let a = fx.service(T1, "a", ServiceStatus::Active, day(5), day(5)).await;
    let id = |s: &Service| s.id;
    assert_eq!(
        ids(
            &r.claim_provisioning(T1, today, &claim("A", t(0), t(10), 5))
                .await
                .expect("claim"),
            id
        ),
        vec![a.id]
    );
    assert!(
        !r.mark_provisioned(a.id, "Z", t(1)).await.expect("mark"),
        "Z never claimed it"
    );
    assert_eq!(
        ids(
            &r.claim_provisioning(T1, today, &claim("B", t(11), t(20), 5))
                .await
                .expect("claim"),
            id
        ),
        vec![a.id],
        "A's lease ended: B takes the service over"
    );
    assert!(
        !r.mark_deprovisioned(a.id, "A", t(12)).await.expect("mark"),
        "A no longer holds the lease"
    );
    assert!(r.mark_provisioned(a.id, "B", t(13)).await.expect("mark"));
    let after_b = r.get(a.id).await.expect("get");
    assert!(after_b.provisioned);
    assert_eq!(
        (
            after_b.provisioned_at,
            after_b.deprovisioned_at,
            after_b.lease.clone()
        ),
        (Some(t(13)), None, None)
    );
    assert!(
        !r.mark_deprovisioned(a.id, "A", t(14)).await.expect("mark"),
        "A's late deprovision after B's mark is refused"
    );
    assert!(
        !r.mark_provisioned(a.id, "A", t(15)).await.expect("mark"),
        "A's late provision after B's mark is refused"
    );
    assert!(
        !r.mark_provisioned(a.id, "B", t(16)).await.expect("mark"),
        "B's lease ended with its mark"
    );
    assert_eq!(
        r.get(a.id).await.expect("get"),
        after_b,
        "the late marks changed nothing"
    );

    let b = fx.service(T1, "b", ServiceStatus::Active, day(6), day(6)).await;
    assert_eq!(
        ids(
            &r.claim_provisioning(T1, today, &claim("A", t(20), t(21), 5))
                .await
                .expect("claim"),
            id
        ),
        vec![b.id]
    );
    assert!(
        r.mark_provisioned(b.id, "A", t(30)).await.expect("mark"),
        "an expired lease nobody took over still belongs to A"
    );
    assert!(r.get(b.id).await.expect("get").provisioned);
}

/// Provisioning claims skip leased services; `mark_provisioned`,
/// `mark_deprovisioned`, `retry_later` and `release` behave.
pub(super) async fn services_provisioning_claims_and_marks(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.services;
    let a = fx.service(T1, "a", ServiceStatus::Active, day(0), day(0)).await;
    let b = fx.service(T1, "b", ServiceStatus::Active, day(2), day(0)).await;
    let id = |s: &Service| s.id;
    let today = day(0);

    assert_eq!(
        ids(
            &r.claim_provisioning(T1, today, &claim("A", t(0), t(10), 1))
                .await
                .expect("claim"),
            id
        ),
        vec![a.id]
    );
    assert_eq!(
        ids(
            &r.claim_provisioning(T1, today, &claim("B", t(1), t(10), 5))
                .await
                .expect("claim"),
            id
        ),
        vec![b.id]
    );
    assert!(r
        .claim_provisioning(T1, today, &claim("C", t(2), t(10), 5))
        .await
        .expect("claim")
        .is_empty());

    assert!(
        !r.mark_provisioned(a.id, "C", t(3)).await.expect("mark"),
        "C does not hold the lease"
    );
    assert!(!r.get(a.id).await.expect("get").provisioned);
    assert!(r.mark_provisioned(a.id, "A", t(3)).await.expect("mark"));
    let got = r.get(a.id).await.expect("get");
    assert!(got.provisioned);
    assert_eq!(
        (got.provisioned_at, got.lease, got.attempts),
        (Some(t(3)), None, 0)
    );
    assert!(!r
        .list_provisioning(T1, today, 10)
        .await
        .expect("list")
        .iter()
        .any(|s| s.id == a.id));

    assert!(
        !fx.repos
            .leases
            .retry_later(b.id, "A", t(30))
            .await
            .expect("retry"),
        "A does not hold b"
    );
    assert!(fx
        .repos
        .leases
        .retry_later(b.id, "B", t(30))
        .await
        .expect("retry"));
    let got = r.get(b.id).await.expect("get");
    assert_eq!((got.attempts, got.lease), (1, lease(RETRY_HOLDER, t(30))));
    assert!(r
        .claim_provisioning(T1, today, &claim("D", t(20), t(40), 5))
        .await
        .expect("claim")
        .is_empty());
    let d = r
        .claim_provisioning(T1, today, &claim("D", t(31), t(40), 5))
        .await
        .expect("claim");
    assert_eq!(ids(&d, id), vec![b.id]);
    assert!(r.mark_provisioned(b.id, "D", t(32)).await.expect("mark"));
    assert_eq!(
        r.get(b.id).await.expect("get").attempts,
        0,
        "a success clears attempts"
    );

    r.set_status(a.id, ServiceStatus::Suspended)
        .await
        .expect("set_status");
    let e = r
        .claim_provisioning(T1, today, &claim("E", t(40), t(50), 5))
        .await
        .expect("claim");
    assert_eq!(ids(&e, id), vec![a.id], "suspended but provisioned: deprovision");
    assert!(r.mark_deprovisioned(a.id, "E", t(41)).await.expect("mark"));
    let got = r.get(a.id).await.expect("get");
    assert!(!got.provisioned);
    assert_eq!(
        (got.deprovisioned_at, got.provisioned_at, got.lease),
        (Some(t(41)), Some(t(3)), None)
    );
    assert!(r.list_provisioning(T1, today, 10).await.expect("list").is_empty());

    r.set_status(b.id, ServiceStatus::Inactive)
        .await
        .expect("set_status");
    assert_eq!(
        ids(
            &r.claim_provisioning(T1, today, &claim("F", t(50), t(60), 5))
                .await
                .expect("claim"),
            id
        ),
        vec![b.id]
    );
    assert!(
        !fx.repos
            .leases
            .release(b.id, "G")
            .await
            .expect("release by a stranger"),
        "a stranger cannot release"
    );
    assert!(
        r.claim_provisioning(T1, today, &claim("G", t(51), t(60), 5))
            .await
            .expect("claim")
            .is_empty(),
        "release by someone else leaves the lease"
    );
    assert!(fx.repos.leases.release(b.id, "F").await.expect("release"));
    let got = r.get(b.id).await.expect("get");
    assert_eq!(
        (got.lease, got.provisioned),
        (None, true),
        "release changes nothing else"
    );
    assert_eq!(
        ids(
            &r.claim_provisioning(T1, today, &claim("G", t(52), t(60), 5))
                .await
                .expect("claim"),
            id
        ),
        vec![b.id]
    );
}

/// Billing claims (active, `next_charge_on <= today`, oldest first, per
/// tenant, leases) and `advance_billing`'s compare-and-set.
pub(super) async fn services_billing_claim_and_advance(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.services;
    use ServiceStatus::*;
    let today = day(0);
    let a = fx.service(T1, "a", Active, day(20), day(-31)).await;
    let b = fx.service(T1, "b", Active, day(20), day(0)).await;
    let _c = fx.service(T1, "c", Active, day(20), day(1)).await;
    let _d = fx.service(T1, "d", Suspended, day(20), day(-5)).await;
    let e = fx.service(T2, "e", Active, day(20), day(-2)).await;
    let f = fx.service(T1, "f", Active, day(20), day(-5)).await;
    let id = |s: &Service| s.id;

    let first = r
        .claim_billable(T1, today, &claim("A", t(0), t(10), 2))
        .await
        .expect("claim");
    assert_eq!(ids(&first, id), vec![a.id, f.id], "oldest next_charge_on first");
    assert!(first.iter().all(|s| s.lease == lease("A", t(10))));
    assert_eq!(
        ids(
            &r.claim_billable(T1, today, &claim("B", t(1), t(10), 10))
                .await
                .expect("claim"),
            id
        ),
        vec![b.id]
    );
    assert!(r
        .claim_billable(T1, today, &claim("C", t(2), t(10), 10))
        .await
        .expect("claim")
        .is_empty());
    assert_eq!(
        ids(
            &r.claim_billable(T2, today, &claim("C", t(2), t(10), 10))
                .await
                .expect("claim"),
            id
        ),
        vec![e.id]
    );

    assert!(
        !r.advance_billing(a.id, "A", day(-30), day(0))
            .await
            .expect("advance"),
        "wrong from: no move"
    );
    let got = r.get(a.id).await.expect("get");
    assert_eq!(got.next_charge_on, day(-31));
    assert_eq!(
        got.lease, None,
        "advance_billing clears the caller's lease either way"
    );
    assert_eq!(
        ids(
            &r.claim_billable(T1, today, &claim("D", t(3), t(10), 10))
                .await
                .expect("claim"),
            id
        ),
        vec![a.id]
    );
    assert!(r
        .advance_billing(a.id, "D", day(-31), day(-3))
        .await
        .expect("advance"));
    let got = r.get(a.id).await.expect("get");
    assert_eq!((got.next_charge_on, got.lease), (day(-3), None));
    assert_eq!(
        ids(
            &r.claim_billable(T1, today, &claim("E", t(4), t(10), 10))
                .await
                .expect("claim"),
            id
        ),
        vec![a.id]
    );
    assert!(r
        .advance_billing(a.id, "E", day(-3), day(28))
        .await
        .expect("advance"));
    assert!(r
        .claim_billable(T1, today, &claim("F", t(5), t(10), 10))
        .await
        .expect("claim")
        .is_empty());

    assert!(r
        .advance_billing(f.id, "A", day(-5), day(26))
        .await
        .expect("advance"));
    assert!(
        !r.advance_billing(f.id, "A", day(-5), day(26))
            .await
            .expect("advance"),
        "the same move twice: the second finds next_charge_on changed"
    );
    assert_eq!(r.get(f.id).await.expect("get").next_charge_on, day(26));

    // Many daemons advancing the same period: exactly one wins.
    let mut tasks = Vec::new();
    let bid = b.id;
    for n in 0..8 {
        let services = fx.repos.services.clone();
        tasks.push(tokio::spawn(async move {
            services
                .advance_billing(bid, &format!("daemon-{n}"), day(0), day(31))
                .await
                .expect("advance")
        }));
    }
    let mut won = 0;
    for task in tasks {
        if task.await.expect("task") {
            won += 1;
        }
    }
    assert_eq!(won, 1, "exactly one concurrent advance_billing moves the date");
    assert_eq!(r.get(b.id).await.expect("get").next_charge_on, day(31));
}

/// `due_between`: active services of one tenant, both ends inclusive.
pub(super) async fn services_due_between(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.services;
    use ServiceStatus::*;
    let a = fx.service(T1, "a", Active, day(3), day(0)).await;
    let b = fx.service(T1, "b", Active, day(1), day(0)).await;
    let _c = fx.service(T1, "c", Suspended, day(2), day(0)).await;
    let _d = fx.service(T1, "d", Active, day(4), day(0)).await;
    let _e = fx.service(T2, "e", Active, day(2), day(0)).await;
    let _f = fx.service(T1, "f", Active, day(0), day(0)).await;
    let g = fx.service(T1, "g", Active, day(2), day(0)).await;
    let got = r.due_between(T1, day(1), day(3)).await.expect("due_between");
    assert_eq!(sorted_ids(&got, |s| s.id), {
        let mut v = vec![a.id, b.id, g.id];
        v.sort();
        v
    });
    assert!(r
        .due_between(T1, day(5), day(9))
        .await
        .expect("due_between")
        .is_empty());
}

/// Concurrent provisioning and billing claims: every due service exactly once.
pub(super) async fn services_concurrent_claims_are_exclusive(repos: Repositories) {
    let fx = fixture(repos).await;
    let mut expected = Vec::new();
    for n in 0..30 {
        let s = fx
            .service(T1, &format!("u{n}"), ServiceStatus::Active, day(n % 5), day(-n))
            .await;
        expected.push(s.id);
    }
    let services = fx.repos.services.clone();
    claim_concurrently(6, &expected, move |holder| {
        let services = services.clone();
        async move {
            let batch = services
                .claim_provisioning(T1, day(0), &claim(&holder, t(0), t(30), 4))
                .await
                .expect("claim_provisioning");
            batch.into_iter().map(|s| s.id).collect()
        }
    })
    .await;
    let services = fx.repos.services.clone();
    let got = claim_concurrently(6, &expected, move |holder| {
        let services = services.clone();
        async move {
            let batch = services
                .claim_billable(T1, day(0), &claim(&holder, t(31), t(60), 4))
                .await
                .expect("claim_billable");
            batch.into_iter().map(|s| s.id).collect()
        }
    })
    .await;
    for (holder, id) in got {
        assert_eq!(
            fx.repos.services.get(id).await.expect("get").lease,
            lease(&holder, t(60))
        );
    }
}

/// The ledger: a second entry with the same key is a `Conflict` (also under
/// concurrency) and leaves one row; listings oldest first; `count_charges`.
pub(super) async fn ledger_idempotent_charges(repos: Repositories) {
    let fx = fixture(repos).await;
    let s = fx.service(T1, "a", ServiceStatus::Active, day(10), day(0)).await;
    let other = fx.service(T1, "b", ServiceStatus::Active, day(10), day(0)).await;
    let r = &fx.repos.ledger;
    let charge = |key: &str, amount: &str, period: i64, at: i64| NewLedgerEntry {
        customer_id: fx.customer.id,
        service_id: Some(s.id),
        kind: LedgerKind::Charge,
        amount: tzs(amount),
        period_start: Some(day(period)),
        key: key.to_owned(),
        created_at: t(at),
    };
    let k1 = format!("charge:svc:{}:{}", s.id, day(0));
    let new1 = charge(&k1, "25000", 0, 0);
    let e1 = r.record(&new1).await.expect("record");
    assert_eq!(
        (
            e1.customer_id,
            e1.service_id,
            e1.kind,
            e1.amount,
            e1.period_start,
            e1.key.as_str(),
            e1.created_at
        ),
        (
            fx.customer.id,
            Some(s.id),
            LedgerKind::Charge,
            tzs("25000"),
            Some(day(0)),
            k1.as_str(),
            t(0)
        )
    );
    expect_conflict(
        r.record(&charge(&k1, "99999", 0, 1)).await,
        "a second entry with the same key",
    );
    assert_eq!(
        r.of_service(s.id).await.expect("of_service"),
        vec![e1.clone()],
        "one row per key"
    );
    assert_eq!(r.count_charges().await.expect("count"), 1);

    let k2 = format!("charge:svc:{}:{}", s.id, day(31));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let ledger = fx.repos.ledger.clone();
        let new = charge(&k2, "25000", 31, 1);
        tasks.push(tokio::spawn(async move { ledger.record(&new).await }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => ok += 1,
            Err(e) => assert!(
                e.is_conflict(),
                "a losing concurrent record must be a Conflict, got {e:?}"
            ),
        }
    }
    assert_eq!(
        ok, 1,
        "exactly one of the concurrent charges with one key is recorded"
    );

    let payment = r
        .record(&NewLedgerEntry {
            customer_id: fx.customer.id,
            service_id: None,
            kind: LedgerKind::Payment,
            amount: tzs("10000.25"),
            period_start: None,
            key: "payment:mpesa:QX81".into(),
            created_at: t(-10),
        })
        .await
        .expect("record payment");
    assert_eq!(payment.amount, tzs("10000.25"));
    let of_service = r.of_service(s.id).await.expect("of_service");
    assert_eq!(
        ids(&of_service, |e| e.key.clone()),
        vec![k1.clone(), k2.clone()],
        "oldest first"
    );
    let of_customer = r.of_customer(fx.customer.id).await.expect("of_customer");
    assert_eq!(
        ids(&of_customer, |e| e.key.clone()),
        vec!["payment:mpesa:QX81".to_owned(), k1, k2],
        "oldest first"
    );
    assert_eq!(
        r.count_charges().await.expect("count"),
        2,
        "payments are not charges"
    );
    assert!(r.of_service(other.id).await.expect("of_service").is_empty());
    assert!(r
        .of_customer(fx.customer2.id)
        .await
        .expect("of_customer")
        .is_empty());
}

/// Plans: `update` changes price, duration and rate limit, keeps tenant and
/// name (a change of either is `InvalidInput`, nothing written); `NotFound`
/// for an unknown id.
pub(super) async fn plans_update_terms(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.plans;
    let p = r
        .insert(&NewPlan {
            tenant_id: T1,
            name: ros("1-hour"),
            price: tzs("1000"),
            duration: Some(RosDuration::from_secs(3600)),
            rate_limit: None,
        })
        .await
        .expect("insert");
    let terms = NewPlan {
        tenant_id: T1,
        name: ros("1-hour"),
        price: tzs("1200"),
        duration: Some(RosDuration::from_secs(5400)),
        rate_limit: Some(RateLimit::parse("rate_limit", "2M/4M").expect("rate")),
    };
    let u = r.update(p.id, &terms).await.expect("update");
    assert_eq!((u.id, u.tenant_id, u.name.clone()), (p.id, T1, ros("1-hour")));
    assert_eq!(u.price, tzs("1200"));
    assert_eq!(u.duration, Some(RosDuration::from_secs(5400)));
    assert_eq!(u.rate_limit, terms.rate_limit);
    assert_eq!(r.get(p.id).await.expect("get"), u);
    let mut renamed = terms.clone();
    renamed.name = ros("2-hours");
    let e = r.update(p.id, &renamed).await.expect_err("rename");
    assert!(e.to_string().contains("plan"), "{e}");
    assert_eq!(r.get(p.id).await.expect("get"), u, "nothing written");
    let missing = r.update(PlanId(999_999), &terms).await.expect_err("unknown");
    assert!(missing.is_not_found(), "{missing}");
}

/// A charge item for `s`: one period starting at each of `periods` (days from
/// [`day`]), moving `next_charge_on` from `from` to `to`.
fn charge_item(fx: &Fx, s: &Service, from: i64, to: i64, periods: &[i64]) -> ChargeItem {
    ChargeItem {
        service_id: s.id,
        from: day(from),
        to: day(to),
        charges: periods
            .iter()
            .map(|p| NewLedgerEntry {
                customer_id: fx.customer.id,
                service_id: Some(s.id),
                kind: LedgerKind::Charge,
                amount: tzs("25000"),
                period_start: Some(day(*p)),
                key: charge_key(s.id, day(*p)),
                created_at: t(0),
            })
            .collect(),
    }
}

/// The period starts charged to `s`, oldest first.
async fn charged(fx: &Fx, s: &Service) -> Vec<Option<NaiveDate>> {
    let mut got: Vec<_> = fx
        .repos
        .ledger
        .of_service(s.id)
        .await
        .expect("of_service")
        .into_iter()
        .map(|e| e.period_start)
        .collect();
    got.sort();
    got
}

/// `charge_batch` records each charge of a batch once, moves each service and
/// clears the holder's leases; a rerun of the same batch records nothing.
pub(super) async fn services_charge_batch_records_each_charge_once(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.services;
    use ServiceStatus::*;
    let a = fx.service(T1, "a", Active, day(20), day(-62)).await;
    let b = fx.service(T1, "b", Active, day(20), day(-1)).await;
    let c = fx.service(T1, "c", Active, day(20), day(0)).await;
    let claimed = r
        .claim_billable(T1, day(0), &claim("A", t(0), t(10), 10))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 3);
    let batch = vec![
        charge_item(&fx, &a, -62, 28, &[-62, -31, 0]),
        charge_item(&fx, &b, -1, 30, &[-1]),
        charge_item(&fx, &c, 0, 31, &[0]),
    ];
    let out = r.charge_batch(&batch, "A").await.expect("charge_batch");
    assert_eq!(
        out,
        vec![
            ChargeOutcome::Billed {
                created: vec![true; 3]
            },
            ChargeOutcome::Billed { created: vec![true] },
            ChargeOutcome::Billed { created: vec![true] },
        ]
    );
    assert_eq!(
        charged(&fx, &a).await,
        vec![Some(day(-62)), Some(day(-31)), Some(day(0))],
        "catch-up: each period once"
    );
    assert_eq!(charged(&fx, &b).await, vec![Some(day(-1))]);
    assert_eq!(fx.repos.ledger.count_charges().await.expect("count"), 5);
    for (s, to) in [(&a, 28), (&b, 30), (&c, 31)] {
        let got = r.get(s.id).await.expect("get");
        assert_eq!(
            (got.next_charge_on, got.lease),
            (day(to), None),
            "moved, lease cleared"
        );
    }

    let again = r.charge_batch(&batch, "A").await.expect("rerun");
    assert_eq!(
        again,
        vec![
            ChargeOutcome::Superseded {
                created: vec![false; 3]
            },
            ChargeOutcome::Superseded { created: vec![false] },
            ChargeOutcome::Superseded { created: vec![false] },
        ],
        "a rerun of the same batch records nothing"
    );
    assert_eq!(fx.repos.ledger.count_charges().await.expect("count"), 5);
    assert_eq!(r.get(a.id).await.expect("get").next_charge_on, day(28));
    assert!(r.charge_batch(&[], "A").await.expect("empty batch").is_empty());
}

/// A batch where one service was charged for a period before: recorded but not
/// moved (a crash between the two) skips that key and moves on; already moved
/// is superseded; the rest are billed.
pub(super) async fn services_charge_batch_after_partial_billing(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.services;
    use ServiceStatus::*;
    let crashed = fx.service(T1, "a", Active, day(20), day(-31)).await;
    let done = fx.service(T1, "b", Active, day(20), day(0)).await;
    let fresh = fx.service(T1, "c", Active, day(20), day(0)).await;
    r.claim_billable(T1, day(0), &claim("A", t(0), t(10), 10))
        .await
        .expect("claim");
    let crashed_item = charge_item(&fx, &crashed, -31, 31, &[-31, 0]);
    fx.repos
        .ledger
        .record(&crashed_item.charges[0])
        .await
        .expect("recorded before the crash");
    let done_item = charge_item(&fx, &done, 0, 31, &[0]);
    fx.repos
        .ledger
        .record(&done_item.charges[0])
        .await
        .expect("charged before");
    assert!(r
        .advance_billing(done.id, "A", day(0), day(31))
        .await
        .expect("advanced before"));

    let out = r
        .charge_batch(
            &[crashed_item, done_item, charge_item(&fx, &fresh, 0, 31, &[0])],
            "A",
        )
        .await
        .expect("charge_batch");
    assert_eq!(
        out,
        vec![
            ChargeOutcome::Billed {
                created: vec![false, true]
            },
            ChargeOutcome::Superseded { created: vec![false] },
            ChargeOutcome::Billed { created: vec![true] },
        ]
    );
    assert_eq!(charged(&fx, &crashed).await, vec![Some(day(-31)), Some(day(0))]);
    assert_eq!(charged(&fx, &done).await, vec![Some(day(0))]);
    assert_eq!(charged(&fx, &fresh).await, vec![Some(day(0))]);
    assert_eq!(fx.repos.ledger.count_charges().await.expect("count"), 4);
    for s in [&crashed, &done, &fresh] {
        let got = r.get(s.id).await.expect("get");
        assert_eq!((got.next_charge_on, got.lease), (day(31), None));
    }
}

/// Unknown ids are answered `NotFound` (the rest billed); a malformed batch is
/// `InvalidInput` naming the field, and writes nothing; another holder's
/// lease stays.
pub(super) async fn services_charge_batch_reports_unknown_and_bad_input(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.services;
    use ServiceStatus::*;
    let a = fx.service(T1, "a", Active, day(20), day(0)).await;
    let b = fx.service(T1, "b", Active, day(20), day(0)).await;
    let mut ghost = a.clone();
    ghost.id = ServiceId(a.id.0.max(b.id.0) + 1_000);

    let invalid = |res: Result<Vec<ChargeOutcome>>, field: &str, what: &str| match res {
        Err(e @ Error::InvalidInput { .. }) => {
            assert!(e.to_string().contains(field), "{what}: names {field}: {e}")
        }
        other => panic!("{what}: expected InvalidInput, got {other:?}"),
    };
    let item_a = charge_item(&fx, &a, 0, 31, &[0]);
    invalid(
        r.charge_batch(&[item_a.clone(), item_a.clone()], "A").await,
        "service_id",
        "a service twice",
    );
    let mut foreign = item_a.clone();
    foreign.charges[0].service_id = Some(b.id);
    invalid(
        r.charge_batch(&[foreign], "A").await,
        "charges",
        "a charge of another service",
    );
    invalid(
        r.charge_batch(&[charge_item(&fx, &a, 0, 0, &[])], "A").await,
        "to",
        "no move",
    );
    invalid(
        r.charge_batch(&[charge_item(&fx, &a, 0, 31, &[31])], "A").await,
        "period_start",
        "a period outside the move",
    );
    assert_eq!(
        fx.repos.ledger.count_charges().await.expect("count"),
        0,
        "a refused batch writes nothing"
    );
    assert_eq!(r.get(a.id).await.expect("get").next_charge_on, day(0));

    // b is leased to another holder: moved (the compare-and-set is on
    // next_charge_on), its lease left alone.
    r.claim_billable(T1, day(0), &claim("B", t(0), t(10), 10))
        .await
        .expect("claim");
    let out = r
        .charge_batch(
            &[
                charge_item(&fx, &ghost, 0, 31, &[0]),
                item_a,
                charge_item(&fx, &b, 0, 31, &[0]),
            ],
            "A",
        )
        .await
        .expect("charge_batch");
    assert_eq!(
        out,
        vec![
            ChargeOutcome::NotFound,
            ChargeOutcome::Billed { created: vec![true] },
            ChargeOutcome::Billed { created: vec![true] },
        ]
    );
    assert!(
        charged(&fx, &ghost).await.is_empty(),
        "nothing recorded for an unknown service"
    );
    assert_eq!(fx.repos.ledger.count_charges().await.expect("count"), 2);
    let got = r.get(b.id).await.expect("get");
    assert_eq!((got.next_charge_on, got.lease), (day(31), lease("B", t(10))));
}

/// A planner for `charge_due` that answers the prepared item of each service
/// (`None` for the others).
fn planner(items: Vec<ChargeItem>) -> impl PlanCharges + 'static {
    let items: HashMap<ServiceId, ChargeItem> = items.into_iter().map(|i| (i.service_id, i)).collect();
    move |s: &Service| items.get(&s.id).cloned()
}

/// `charge_due` reads the due, lease-free services of the tenant in id order,
/// at most the limit, after the cursor; records what the planner answers
/// (catch-up: every period once; a key recorded before is skipped), moves
/// them, leaves no lease; a service the planner skips stays as it is and the
/// cursor moves past it.
pub(super) async fn services_charge_due_bills_in_order_and_resumes(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.services;
    use ServiceStatus::*;
    let leased = fx.service(T1, "f", Active, day(20), day(-100)).await;
    let a = fx.service(T1, "a", Active, day(20), day(-62)).await;
    let b = fx.service(T1, "b", Active, day(20), day(-1)).await;
    let idle = fx.service(T1, "c", Active, day(20), day(0)).await;
    let later = fx.service(T1, "d", Active, day(20), day(1)).await;
    let off = fx.service(T1, "e", Suspended, day(20), day(0)).await;
    let other = fx.service(T2, "g", Active, day(20), day(-5)).await;
    let held = r
        .claim_billable(T1, day(0), &claim("B", t(0), t(10), 1))
        .await
        .expect("claim");
    assert_eq!(held.iter().map(|s| s.id).collect::<Vec<_>>(), vec![leased.id]);
    let items = vec![
        charge_item(&fx, &leased, -100, 28, &[-100]),
        charge_item(&fx, &a, -62, 28, &[-62, -31, 0]),
        charge_item(&fx, &b, -1, 30, &[-1]),
        charge_item(&fx, &later, 1, 31, &[1]),
        charge_item(&fx, &off, 0, 31, &[0]),
        charge_item(&fx, &other, -5, 26, &[-5]),
    ];
    fx.repos
        .ledger
        .record(&items[2].charges[0])
        .await
        .expect("recorded before a crash");
    let plan = planner(items.clone());

    let first = r
        .charge_due(T1, day(0), &claim("A", t(1), t(10), 2), None, &plan)
        .await
        .expect("charge_due");
    assert_eq!(first.last, Some(b.id), "the first two free ones");
    assert_eq!(
        first.charged,
        vec![
            (
                items[1].clone(),
                ChargeOutcome::Billed {
                    created: vec![true; 3]
                }
            ),
            (items[2].clone(), ChargeOutcome::Billed { created: vec![false] }),
        ]
    );
    let second = r
        .charge_due(T1, day(0), &claim("A", t(1), t(10), 2), first.last, &plan)
        .await
        .expect("charge_due after");
    assert_eq!(
        (second.last, second.charged),
        (Some(idle.id), vec![]),
        "the skipped service is read, not charged"
    );
    let third = r
        .charge_due(T1, day(0), &claim("A", t(1), t(10), 2), second.last, &plan)
        .await
        .expect("charge_due at the end");
    assert_eq!(third, DueCharges::default(), "nothing more is due");

    assert_eq!(
        charged(&fx, &a).await,
        vec![Some(day(-62)), Some(day(-31)), Some(day(0))],
        "catch-up: each period once"
    );
    assert_eq!(charged(&fx, &b).await, vec![Some(day(-1))]);
    assert_eq!(fx.repos.ledger.count_charges().await.expect("count"), 4);
    for (s, on, l) in [
        (&a, day(28), None),
        (&b, day(30), None),
        (&idle, day(0), None),
        (&later, day(1), None),
        (&off, day(0), None),
        (&other, day(-5), None),
        (&leased, day(-100), lease("B", t(10))),
    ] {
        let got = r.get(s.id).await.expect("get");
        assert_eq!((got.next_charge_on, got.lease), (on, l), "service {}", s.id);
    }

    // A rerun from the start reads only what is still due and records nothing.
    let rerun = r
        .charge_due(T1, day(0), &claim("A", t(2), t(10), 10), None, &plan)
        .await
        .expect("rerun");
    assert_eq!((rerun.last, rerun.charged), (Some(idle.id), vec![]));
    // Once the lease has run out, the leased service is billed too.
    let expired = r
        .charge_due(T1, day(0), &claim("A", t(10), t(20), 10), None, &plan)
        .await
        .expect("after the lease");
    assert_eq!(
        expired.charged,
        vec![(items[0].clone(), ChargeOutcome::Billed { created: vec![true] })]
    );
    assert_eq!(fx.repos.ledger.count_charges().await.expect("count"), 5);
}

/// `charge_due` refuses an item planned for another service or another
/// `from`, and a malformed one, with `InvalidInput` naming the field: nothing
/// written.
pub(super) async fn services_charge_due_refuses_bad_plans(repos: Repositories) {
    let fx = fixture(repos).await;
    let r = &fx.repos.services;
    let a = fx.service(T1, "a", ServiceStatus::Active, day(20), day(0)).await;
    let b = fx.service(T1, "b", ServiceStatus::Active, day(20), day(5)).await;
    let cases = [
        ("service_id", charge_item(&fx, &b, 0, 31, &[0]), "another service"),
        ("service_id", charge_item(&fx, &a, -1, 31, &[0]), "another from"),
        (
            "period_start",
            charge_item(&fx, &a, 0, 31, &[31]),
            "a period outside the move",
        ),
        ("to", charge_item(&fx, &a, 0, 0, &[]), "no move"),
    ];
    for (field, item, what) in cases {
        let plan = move |_: &Service| Some(item.clone());
        match r
            .charge_due(T1, day(0), &claim("A", t(0), t(10), 10), None, &plan)
            .await
        {
            Err(e @ Error::InvalidInput { .. }) => {
                assert!(e.to_string().contains(field), "{what}: names {field}: {e}")
            }
            other => panic!("{what}: expected InvalidInput, got {other:?}"),
        }
    }
    assert_eq!(fx.repos.ledger.count_charges().await.expect("count"), 0);
    for (s, on) in [(&a, day(0)), (&b, day(5))] {
        let got = r.get(s.id).await.expect("get");
        assert_eq!((got.next_charge_on, got.lease), (on, None), "nothing written");
    }
}

/// Billers running `charge_due` side by side charge every due service exactly
/// once.
pub(super) async fn services_concurrent_charge_due_bills_once(repos: Repositories) {
    let fx = fixture(repos).await;
    let mut expected = Vec::new();
    for n in 0..24 {
        let s = fx
            .service(
                T1,
                &format!("u{n}"),
                ServiceStatus::Active,
                day(20),
                day(-(n % 3)),
            )
            .await;
        expected.push(s.id);
    }
    let customer = fx.customer.id;
    let services = fx.repos.services.clone();
    claim_concurrently(4, &expected, move |holder| {
        let services = services.clone();
        async move {
            let plan = move |s: &Service| {
                let start = s.next_charge_on;
                Some(ChargeItem {
                    service_id: s.id,
                    from: start,
                    to: day(31),
                    charges: vec![NewLedgerEntry {
                        customer_id: customer,
                        service_id: Some(s.id),
                        kind: LedgerKind::Charge,
                        amount: tzs("25000"),
                        period_start: Some(start),
                        key: charge_key(s.id, start),
                        created_at: t(0),
                    }],
                })
            };
            let due = services
                .charge_due(T1, day(0), &claim(&holder, t(0), t(30), 5), None, &plan)
                .await
                .expect("charge_due");
            due.charged
                .into_iter()
                .filter(|(_, o)| matches!(o, ChargeOutcome::Billed { created } if created == &[true]))
                .map(|(i, _)| i.service_id)
                .collect()
        }
    })
    .await;
    assert_eq!(
        fx.repos.ledger.count_charges().await.expect("count"),
        expected.len() as u64
    );
}
