//! Provisioning policy: status x due date x provisioned flag (seed 004).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod policy_fixtures;

use isp_core::domain::*;
use isp_core::policy::provisioning::*;
use policy_fixtures::*;
use proptest::prelude::*;

const STATUSES: [ServiceStatus; 5] = [
    ServiceStatus::Active,
    ServiceStatus::Suspended,
    ServiceStatus::Inactive,
    ServiceStatus::Terminated,
    ServiceStatus::Pending,
];

#[test]
fn seed_004_table() {
    let today = d(2026, 2, 10);
    let svc = |status, due, provisioned| service(1, 1, 1, status, pppoe("alice"), due, provisioned);
    // Active, not past due, not provisioned: provision.
    assert_eq!(
        provisioning_decision(&svc(ServiceStatus::Active, today, false), today),
        ProvisionDecision::Provision
    );
    // Due date today is still paid (next_billing_date >= CURRENT_DATE).
    assert_eq!(
        provisioning_decision(&svc(ServiceStatus::Active, today, true), today),
        ProvisionDecision::Nothing
    );
    // Past due: deprovision with the reason.
    assert_eq!(
        provisioning_decision(&svc(ServiceStatus::Active, d(2026, 2, 9), true), today),
        ProvisionDecision::Deprovision(DeprovisionReason::PastDue { due: d(2026, 2, 9) })
    );
    // Status changes deprovision, naming the status.
    for status in [
        ServiceStatus::Suspended,
        ServiceStatus::Inactive,
        ServiceStatus::Terminated,
        ServiceStatus::Pending,
    ] {
        let dec = provisioning_decision(&svc(status, d(2027, 1, 1), true), today);
        assert_eq!(
            dec,
            ProvisionDecision::Deprovision(DeprovisionReason::Status(status))
        );
        // ... and are never provisioned.
        assert_eq!(
            provisioning_decision(&svc(status, d(2027, 1, 1), false), today),
            ProvisionDecision::Nothing
        );
    }
    let r = DeprovisionReason::Status(ServiceStatus::Suspended);
    assert_eq!(r.key(), "status_suspended");
    assert_eq!(r.to_string(), "status suspended");
    assert_eq!(
        DeprovisionReason::PastDue { due: d(2026, 2, 9) }.to_string(),
        "past due date 2026-02-09"
    );
}

#[test]
fn specs_carry_our_owner_tag_and_queues_only_for_limited_static_ips() {
    let list = name("isp-allowed");
    let p = service(3, 1, 1, ServiceStatus::Active, pppoe("bob"), d(2026, 1, 1), false);
    let spec = pppoe_spec(&p).unwrap();
    assert_eq!(spec.username.as_str(), "bob");
    assert_eq!(spec.owner.comment(), "isp:svc:3");
    assert!(static_ip_spec(&p, &list).is_none());
    assert_eq!(queue_spec(&p, &plan(1, 1, "10", Some("5M/10M"))).unwrap(), None);

    let s = service(4, 1, 1, ServiceStatus::Active, static_ip(7), d(2026, 1, 1), false);
    let ip = static_ip_spec(&s, &list).unwrap();
    assert_eq!(ip.address.to_string(), "10.9.0.7");
    assert_eq!(ip.owner, OwnerTag::Service(ServiceId(4)));
    let q = queue_spec(&s, &plan(1, 1, "10", Some("5M/10M")))
        .unwrap()
        .unwrap();
    assert_eq!(q.name.as_str(), "isp-svc-4");
    assert_eq!(q.target.to_string(), "10.9.0.7/32");
    assert_eq!(q.limit.to_string(), "5M/10M");
    assert_eq!(queue_spec(&s, &plan(1, 1, "10", None)).unwrap(), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn decision_matches_entitlement(
        status in proptest::sample::select(STATUSES.to_vec()),
        due in arb_date(),
        today in arb_date(),
        provisioned in any::<bool>(),
        static_conn in any::<bool>(),
    ) {
        let conn = if static_conn { static_ip(9) } else { pppoe("carol") };
        let svc = service(1, 1, 1, status, conn, due, provisioned);
        let entitled = status == ServiceStatus::Active && due >= today;
        prop_assert_eq!(is_entitled(&svc, today), entitled);
        match provisioning_decision(&svc, today) {
            ProvisionDecision::Provision => prop_assert!(entitled && !provisioned),
            ProvisionDecision::Deprovision(reason) => {
                prop_assert!(!entitled && provisioned);
                match reason {
                    DeprovisionReason::Status(s) => prop_assert!(s == status && s != ServiceStatus::Active),
                    DeprovisionReason::PastDue { due: d } => prop_assert!(status == ServiceStatus::Active && d == due && d < today),
                }
            }
            ProvisionDecision::Nothing => prop_assert_eq!(entitled, provisioned),
        }
    }
}
