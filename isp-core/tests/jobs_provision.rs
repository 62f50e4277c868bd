//! Orchestration of the provisioning job (seed 004): provision, deprovision
//! with the reason, retry what the router refused, per tenant-local date.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jobs_support;
mod policy_fixtures;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use isp_core::domain::*;
use isp_core::jobs::{JobKind, RunOptions};
use isp_core::ports::Leased;
use isp_core::Error;
use jobs_support::*;
use policy_fixtures::*;

fn now() -> DateTime<Utc> {
    // 22:30 UTC = 01:30 on Feb 11 in Dar es Salaam (UTC+3).
    t("2026-02-10T22:30:00Z")
}

#[tokio::test]
async fn provisions_and_deprovisions_by_tenant_local_date() {
    let mut m = Mocks::new(now());
    m.with_tenants(vec![tenant(1, "Africa/Dar_es_Salaam")]);
    m.with_routers(vec![router(1, 1, true)]);
    let today = d(2026, 2, 11);
    let services = vec![
        service(1, 1, 1, ServiceStatus::Active, pppoe("alice"), today, false),
        service(2, 1, 1, ServiceStatus::Active, static_ip(2), d(2026, 3, 1), false),
        // Due Feb 10: past due in Dar es Salaam although it is still Feb 10 in UTC.
        service(
            3,
            1,
            1,
            ServiceStatus::Active,
            pppoe("carol"),
            d(2026, 2, 10),
            true,
        ),
        service(
            4,
            1,
            1,
            ServiceStatus::Suspended,
            static_ip(4),
            d(2026, 3, 1),
            true,
        ),
    ];
    let mut batches = vec![services].into_iter();
    m.services
        .expect_claim_provisioning()
        .returning(move |tenant, day, claim| {
            assert_eq!(
                (tenant, day),
                (TenantId(1), d(2026, 2, 11)),
                "the tenant's local date"
            );
            assert_eq!(claim.holder, "daemon-a");
            Ok(batches.next().unwrap_or_default())
        });
    m.plans
        .expect_get()
        .returning(|id| Ok(plan(id.0, 1, "30000", Some("10M/20M"))));
    let calls = Arc::new(Mutex::new(Vec::<String>::new()));
    let c = calls.clone();
    m.driver
        .expect_provision_pppoe()
        .times(1)
        .returning(move |_, spec| {
            c.lock()
                .unwrap()
                .push(format!("pppoe+ {} {}", spec.username, spec.owner.comment()));
            Ok(())
        });
    let c = calls.clone();
    m.driver
        .expect_provision_static_ip()
        .times(1)
        .returning(move |_, spec| {
            c.lock()
                .unwrap()
                .push(format!("ip+ {} {}", spec.address, spec.list));
            Ok(vec![])
        });
    let c = calls.clone();
    m.driver.expect_set_rate_limit().times(1).returning(move |_, q| {
        c.lock().unwrap().push(format!("queue+ {} {}", q.name, q.limit));
        Ok(())
    });
    let c = calls.clone();
    m.driver
        .expect_deprovision_pppoe()
        .times(1)
        .returning(move |_, name, owner| {
            c.lock()
                .unwrap()
                .push(format!("pppoe- {name} {}", owner.comment()));
            Ok(())
        });
    let c = calls.clone();
    m.driver
        .expect_deprovision_static_ip()
        .times(1)
        .returning(move |_, addr, _, owner| {
            c.lock().unwrap().push(format!("ip- {addr} {}", owner.comment()));
            Ok(vec![])
        });
    let c = calls.clone();
    m.driver
        .expect_remove_rate_limit()
        .times(1)
        .returning(move |_, name, owner| {
            c.lock()
                .unwrap()
                .push(format!("queue- {name} {}", owner.comment()));
            Ok(())
        });
    let marked = Arc::new(Mutex::new(Vec::new()));
    let mk = marked.clone();
    m.services
        .expect_mark_provisioned()
        .times(2)
        .returning(move |id, _, _| {
            mk.lock().unwrap().push(("provisioned", id));
            Ok(true)
        });
    let mk = marked.clone();
    m.services
        .expect_mark_deprovisioned()
        .times(2)
        .returning(move |id, _, _| {
            mk.lock().unwrap().push(("deprovisioned", id));
            Ok(true)
        });
    m.leases
        .expect_retry_later_all()
        .withf(|kind, _, _, _| *kind == Leased::Services)
        .never();
    let audit = m.audit_log.clone();

    let report = m
        .engine()
        .run(JobKind::ProvisionServices, RunOptions::default())
        .await
        .unwrap();

    let mut calls = calls.lock().unwrap().clone();
    calls.sort();
    assert_eq!(
        calls,
        vec![
            "ip+ 10.9.0.2 isp-allowed",
            "ip- 10.9.0.4 isp:svc:4",
            "pppoe+ alice isp:svc:1",
            "pppoe- carol isp:svc:3",
            "queue+ isp-svc-2 10M/20M",
            "queue- isp-svc-4 isp:svc:4",
        ]
    );
    let mut marked = marked.lock().unwrap().clone();
    marked.sort();
    assert_eq!(
        marked,
        vec![
            ("deprovisioned", ServiceId(3)),
            ("deprovisioned", ServiceId(4)),
            ("provisioned", ServiceId(1)),
            ("provisioned", ServiceId(2)),
        ]
    );
    assert_eq!(report.count("services_provisioned"), 2);
    assert_eq!(report.count("services_deprovisioned"), 2);
    assert_eq!(report.count("deprovisioned_past_due"), 1);
    assert_eq!(report.count("deprovisioned_status_suspended"), 1);
    assert_eq!(report.per_router["tenant-1:Router1"]["services_provisioned"], 2);
    let audit = audit.lock().unwrap();
    let reasons: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "deprovision")
        .filter_map(|e| e.reason.clone())
        .collect();
    assert!(
        reasons.contains(&"past due date 2026-02-10".to_owned()),
        "{reasons:?}"
    );
    assert!(reasons.contains(&"status suspended".to_owned()), "{reasons:?}");
}

#[tokio::test]
async fn a_refused_provision_is_retried_not_marked() {
    let mut m = Mocks::new(now());
    m.with_tenants(vec![tenant(1, "UTC")]);
    m.with_routers(vec![router(1, 1, true)]);
    let mut s = service(
        1,
        1,
        1,
        ServiceStatus::Active,
        pppoe("alice"),
        d(2026, 3, 1),
        false,
    );
    s.attempts = 1;
    let mut batches = vec![vec![s]].into_iter();
    m.services
        .expect_claim_provisioning()
        .returning(move |_, _, _| Ok(batches.next().unwrap_or_default()));
    m.plans
        .expect_get()
        .returning(|id| Ok(plan(id.0, 1, "30000", None)));
    m.driver
        .expect_provision_pppoe()
        .times(1)
        .returning(|_, _| Err(Error::unavailable("router Router1", "timeout")));
    m.services.expect_mark_provisioned().never();
    m.leases
        .expect_retry_later_all()
        .times(1)
        .withf(|kind, ids, holder, until| {
            *kind == Leased::Services
                && ids == [1]
                && holder == "daemon-a"
                && *until == now() + Duration::seconds(10)
        })
        .returning(|_, ids, _, _| Ok(vec![true; ids.len()]));
    let audit = m.audit_log.clone();
    let report = m
        .engine()
        .run(JobKind::ProvisionServices, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.count("services_provisioned"), 0);
    assert_eq!(report.count("services_pending"), 1);
    assert_eq!(report.failures.len(), 1);
    assert!(audit
        .lock()
        .unwrap()
        .iter()
        .any(|e| e.action == "provision_failed" && e.outcome == AuditOutcome::Retry));
}

#[tokio::test]
async fn dry_run_lists_and_touches_nothing() {
    let mut m = Mocks::new(now());
    m.with_tenants(vec![tenant(1, "UTC")]);
    m.with_routers(vec![router(1, 1, true)]);
    m.services
        .expect_list_provisioning()
        .times(1)
        .returning(|_, _, _| {
            Ok(vec![service(
                1,
                1,
                1,
                ServiceStatus::Active,
                pppoe("alice"),
                d(2026, 3, 1),
                false,
            )])
        });
    m.services.expect_claim_provisioning().never();
    m.plans
        .expect_get()
        .returning(|id| Ok(plan(id.0, 1, "30000", None)));
    m.driver.expect_provision_pppoe().never();
    m.services.expect_mark_provisioned().never();
    let report = m
        .engine()
        .run(JobKind::ProvisionServices, RunOptions { dry_run: true })
        .await
        .unwrap();
    assert_eq!(report.count("services_provisioned"), 1);
}
