//! Orchestration of monthly billing: the tenant's local date, catch-up, one
//! ledger key per period, reruns add nothing, compare-and-set advance.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jobs_support;
mod policy_fixtures;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use isp_core::domain::*;
use isp_core::jobs::{JobKind, RunOptions};
use isp_core::ports::{ChargeOutcome, DueCharges};
use isp_core::Error;
use jobs_support::*;
use policy_fixtures::*;

fn billed() -> Service {
    let mut s = service(
        7,
        1,
        1,
        ServiceStatus::Active,
        pppoe("alice"),
        d(2024, 4, 30),
        true,
    );
    s.billing_day = 31;
    s.next_charge_on = d(2024, 1, 31);
    s.plan_id = PlanId(3);
    s
}

type Ledger = Arc<Mutex<BTreeMap<String, NewLedgerEntry>>>;

/// A ledger mock with the store's unique key, and a service store with the CAS.
fn billing_world(m: &mut Mocks, zone: &str) -> (Ledger, Arc<Mutex<Service>>) {
    m.with_tenants(vec![tenant(1, zone)]);
    m.with_routers(vec![router(1, 1, true)]);
    m.plans
        .expect_get()
        .returning(|id| Ok(plan(id.0, 1, "25000", None)));
    m.plans
        .expect_list()
        .returning(|t| Ok(vec![plan(3, t.0, "25000", None)]));
    let ledger: Ledger = Arc::new(Mutex::new(BTreeMap::new()));
    let svc = Arc::new(Mutex::new(billed()));
    // The store: the due read after the cursor, the compare-and-set on
    // `next_charge_on` and the ledger's unique key, in one call.
    let (s, l) = (svc.clone(), ledger.clone());
    m.services
        .expect_charge_due()
        .returning(move |tenant, today, claim, after, plan| {
            assert_eq!(tenant, TenantId(1));
            assert_eq!(claim.holder, "daemon-a");
            let mut s = s.lock().unwrap();
            let mut l = l.lock().unwrap();
            if s.next_charge_on > today || after.is_some_and(|a| s.id <= a) {
                return Ok(DueCharges::default());
            }
            let mut due = DueCharges {
                last: Some(s.id),
                charged: vec![],
            };
            let Some(item) = plan.plan(&s) else {
                return Ok(due);
            };
            assert_eq!((item.service_id, item.from), (s.id, s.next_charge_on));
            s.next_charge_on = item.to;
            let created = item
                .charges
                .iter()
                .map(|new| {
                    if l.contains_key(&new.key) {
                        return false;
                    }
                    l.insert(new.key.clone(), new.clone());
                    true
                })
                .collect();
            due.charged.push((item, ChargeOutcome::Billed { created }));
            Ok(due)
        });
    m.leases
        .expect_release_all()
        .withf(|kind, _, _| *kind == isp_core::ports::Leased::Services)
        .returning(|_, ids, _| Ok(vec![true; ids.len()]));
    (ledger, svc)
}

#[tokio::test]
async fn catch_up_in_the_tenant_zone_exactly_once_across_reruns() {
    // 2024-03-30 21:30 UTC is already March 31 in Dar es Salaam (UTC+3).
    let mut m = Mocks::new(t("2024-03-30T21:30:00Z"));
    let clock = m.clock.clone();
    let (ledger, svc) = billing_world(&mut m, "Africa/Dar_es_Salaam");
    let engine = m.engine();

    let report = engine
        .run(JobKind::MonthlyBilling, RunOptions::default())
        .await
        .unwrap();
    let keys: Vec<String> = ledger.lock().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        vec![
            "charge:svc:7:2024-01-31",
            "charge:svc:7:2024-02-29",
            "charge:svc:7:2024-03-31"
        ]
    );
    assert_eq!(report.count("charges_created"), 3);
    assert_eq!(report.count("services_billed"), 1);
    assert_eq!(svc.lock().unwrap().next_charge_on, d(2024, 4, 30));
    let entry = ledger.lock().unwrap()["charge:svc:7:2024-02-29"].clone();
    assert_eq!(entry.kind, LedgerKind::Charge);
    assert_eq!(entry.customer_id, CustomerId(7));
    assert_eq!(entry.amount.to_string(), "25000 TZS");
    assert_eq!(entry.period_start, Some(d(2024, 2, 29)));

    // A rerun the same day adds nothing.
    let again = engine
        .run(JobKind::MonthlyBilling, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(again.count("charges_created"), 0);
    assert_eq!(ledger.lock().unwrap().len(), 3);

    // A crash after recording but before advancing: the next run finds the keys taken.
    svc.lock().unwrap().next_charge_on = d(2024, 2, 29);
    let after_crash = engine
        .run(JobKind::MonthlyBilling, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(after_crash.count("charges_created"), 0);
    assert_eq!(after_crash.count("charges_already_recorded"), 2);
    assert_eq!(ledger.lock().unwrap().len(), 3);
    assert_eq!(svc.lock().unwrap().next_charge_on, d(2024, 4, 30));

    // A month later: exactly the April period.
    clock.set(t("2024-04-30T06:00:00Z"));
    let april = engine
        .run(JobKind::MonthlyBilling, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(april.count("charges_created"), 1);
    assert!(ledger.lock().unwrap().contains_key("charge:svc:7:2024-04-30"));
}

#[tokio::test]
async fn in_utc_the_same_instant_is_still_march_30() {
    let mut m = Mocks::new(t("2024-03-30T21:30:00Z"));
    let (ledger, _) = billing_world(&mut m, "UTC");
    let report = m
        .engine()
        .run(JobKind::MonthlyBilling, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.count("charges_created"), 2);
    assert!(!ledger.lock().unwrap().contains_key("charge:svc:7:2024-03-31"));
}

#[tokio::test]
async fn a_store_failure_leaves_the_service_at_its_first_unrecorded_period() {
    let mut m = Mocks::new(t("2024-03-31T12:00:00Z"));
    m.with_tenants(vec![tenant(1, "UTC")]);
    m.plans
        .expect_get()
        .returning(|id| Ok(plan(id.0, 1, "25000", None)));
    m.plans
        .expect_list()
        .returning(|t| Ok(vec![plan(3, t.0, "25000", None)]));
    // The batch's one write fails after the service was read and planned:
    // nothing is recorded or advanced (the store rolls the batch back).
    m.services
        .expect_charge_due()
        .times(1)
        .returning(|_, _, _, _, plan| {
            let item = plan.plan(&billed()).expect("owes");
            assert_eq!(
                (item.service_id, item.from, item.to, item.charges.len()),
                (ServiceId(7), d(2024, 1, 31), d(2024, 4, 30), 3)
            );
            Err(Error::unavailable("database", "connection lost"))
        });
    m.services.expect_claim_billable().never();
    m.services.expect_charge_batch().never();
    m.ledger.expect_record().never();
    m.services.expect_advance_billing().never();
    let report = m
        .engine()
        .run(JobKind::MonthlyBilling, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.count("charges_created"), 0);
    assert_eq!(report.count("services_billed"), 0);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].subject, "service:7");
    assert!(report.failures[0].transient);
}

#[tokio::test]
async fn dry_run_claims_and_records_nothing() {
    let mut m = Mocks::new(t("2024-03-31T12:00:00Z"));
    m.with_tenants(vec![tenant(1, "UTC")]);
    m.with_routers(vec![router(1, 1, true)]);
    m.plans
        .expect_get()
        .returning(|id| Ok(plan(id.0, 1, "25000", None)));
    m.services.expect_on_router().returning(|_| Ok(vec![billed()]));
    m.services.expect_claim_billable().never();
    m.ledger.expect_record().never();
    m.services.expect_advance_billing().never();
    m.services.expect_charge_batch().never();
    m.services.expect_charge_due().never();
    let report = m
        .engine()
        .run(JobKind::MonthlyBilling, RunOptions { dry_run: true })
        .await
        .unwrap();
    assert_eq!(report.count("charges_created"), 3);
}
