//! Orchestration of the reminder jobs: the hotspot warning an hour before, ISP
//! due-date and PPP/VPN expiry reminders in the tenant's zone, never twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jobs_support;
mod policy_fixtures;

use chrono::Duration;
use isp_core::domain::*;
use isp_core::jobs::JobKind;
use isp_core::ports::SmsReceipt;
use isp_core::Error;
use jobs_support::*;
use policy_fixtures::*;

#[tokio::test]
async fn hotspot_warning_goes_out_once_with_the_minutes_left() {
    let now = t("2025-12-15T12:25:00Z");
    let mut m = Mocks::new(now);
    m.with_tenants(vec![tenant(1, "Africa/Dar_es_Salaam")]);
    let soon = subscriber(42, 1, t("2025-12-15T12:30:00Z"), true);
    let s = soon.clone();
    m.subscribers
        .expect_expiring_between()
        .times(1)
        .withf(move |from, to, _| *from == now && *to == now + Duration::hours(1))
        .returning(move |_, _, _| Ok(vec![s.clone()]));
    let notices = notice_store(&mut m);
    m.sms
        .expect_send()
        .times(1)
        .withf(|to, body| to == &phone(42) && body.contains("5 minutes"))
        .returning(|_, _| Ok(SmsReceipt::default()));
    let engine = m.engine();
    let report = run_with_delivery(&engine, JobKind::WarnBeforeExpiry).await;
    assert_eq!(report.count("notices_reserved"), 1);
    assert_eq!(report.count("sms_sent"), 1);
    {
        let log = notices.lock().unwrap();
        assert_eq!(log.reserved[0].kind, NoticeKind::HotspotExpiresSoon);
        assert_eq!(log.reserved[0].deadline, soon.paid_until);
    }
}

#[tokio::test]
async fn a_second_run_reserves_nothing_new() {
    let now = t("2025-12-15T12:25:00Z");
    let mut m = Mocks::new(now);
    m.with_tenants(vec![tenant(1, "UTC")]);
    let soon = subscriber(42, 1, t("2025-12-15T12:30:00Z"), true);
    m.subscribers
        .expect_expiring_between()
        .times(2)
        .returning(move |_, _, _| Ok(vec![soon.clone()]));
    let notices = notice_store(&mut m);
    m.sms
        .expect_send()
        .times(1)
        .returning(|_, _| Ok(SmsReceipt::default()));
    let engine = m.engine();
    run_with_delivery(&engine, JobKind::WarnBeforeExpiry).await;
    let second = run_with_delivery(&engine, JobKind::WarnBeforeExpiry).await;
    assert_eq!(second.count("notices_duplicate"), 1);
    assert_eq!(second.count("sms_sent"), 0);
    assert_eq!(notices.lock().unwrap().reserved.len(), 1);
}

#[tokio::test]
async fn payment_and_ppp_reminders_in_the_tenant_zone() {
    // 06:00 UTC = 09:00 in Dar es Salaam on May 7.
    let now = t("2026-05-07T06:00:00Z");
    let mut m = Mocks::new(now);
    m.with_tenants(vec![tenant(1, "Africa/Dar_es_Salaam")]);
    m.plans
        .expect_get()
        .returning(|id| Ok(plan(id.0, 1, "30000", None)));
    let mut due_in_3 = service(1, 1, 1, ServiceStatus::Active, static_ip(2), d(2026, 5, 10), true);
    due_in_3.customer_id = CustomerId(1);
    // Due today: expires at local midnight tonight (21:00 UTC): the 24 h warning is owed.
    let mut ppp = service(2, 1, 1, ServiceStatus::Active, pppoe("bob"), d(2026, 5, 7), true);
    ppp.customer_id = CustomerId(2);
    let mut no_phone = service(3, 1, 1, ServiceStatus::Active, static_ip(3), d(2026, 5, 10), true);
    no_phone.customer_id = CustomerId(3);
    let list = vec![due_in_3, ppp, no_phone];
    m.services
        .expect_due_between()
        .times(1)
        .withf(|tenant, from, to| *tenant == TenantId(1) && *from == d(2026, 5, 7) && *to == d(2026, 5, 10))
        .returning(move |_, _, _| Ok(list.clone()));
    m.customers.expect_get().returning(|id| {
        Ok(Customer {
            id,
            tenant_id: TenantId(1),
            name: format!("Customer {id}"),
            phone: (id != CustomerId(3)).then(|| phone(id.0)),
        })
    });
    let notices = notice_store(&mut m);
    m.sms
        .expect_send()
        .times(2)
        .returning(|_, _| Ok(SmsReceipt::default()));
    let report = run_with_delivery(&m.engine(), JobKind::PaymentReminders).await;
    assert_eq!(report.count("skipped_no_phone"), 1);
    assert_eq!(report.count("sms_sent"), 2);
    let log = notices.lock().unwrap();
    let mut got: Vec<(NoticeKind, String, chrono::DateTime<chrono::Utc>)> = log
        .reserved
        .iter()
        .map(|n| (n.kind, n.recipient.to_string(), n.deadline))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                NoticeKind::ServiceExpires24h,
                phone(2).to_string(),
                t("2026-05-07T21:00:00Z")
            ),
            (
                NoticeKind::PaymentDue,
                phone(1).to_string(),
                t("2026-05-09T21:00:00Z")
            ),
        ]
    );
    let payment = log
        .reserved
        .iter()
        .find(|n| n.kind == NoticeKind::PaymentDue)
        .unwrap();
    assert!(
        payment.body.contains("30000 TZS") && payment.body.contains("2026-05-10"),
        "{}",
        payment.body
    );
    let warning = log
        .reserved
        .iter()
        .find(|n| n.kind == NoticeKind::ServiceExpires24h)
        .unwrap();
    assert!(warning.body.contains("15 hours"), "{}", warning.body);
}

#[tokio::test]
async fn a_permanent_gateway_refusal_abandons_the_notice() {
    let now = t("2025-12-15T12:25:00Z");
    let mut m = Mocks::new(now);
    m.with_tenants(vec![tenant(1, "UTC")]);
    let soon = subscriber(42, 1, t("2025-12-15T12:30:00Z"), true);
    m.subscribers
        .expect_expiring_between()
        .returning(move |_, _, _| Ok(vec![soon.clone()]));
    let notices = notice_store(&mut m);
    m.sms.expect_send().times(1).returning(|_, _| {
        Err(Error::Rejected {
            service: "sms gateway".into(),
            detail: "invalid recipient".into(),
        })
    });
    let report = run_with_delivery(&m.engine(), JobKind::WarnBeforeExpiry).await;
    assert_eq!(report.count("sms_failed"), 1);
    assert_eq!(report.count("sms_abandoned"), 1);
    let log = notices.lock().unwrap();
    assert_eq!(log.abandoned, vec![NoticeId(1)]);
    assert!(log.retried.is_empty());
}
