//! Issue 16's last enforcement edges over the in-memory store: a send whose
//! outcome is unknown gets status `unknown`; two services of one customer due
//! the same day get a reminder each; the health summary counts past its lists.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod policy_fixtures;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use isp_core::domain::*;
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, JobKind, RunOptions, SUMMARY_LIST_LIMIT};
use isp_core::memory::{self, RecordingSms, StaticDirectory};
use isp_core::ports::*;
use isp_core::{Error, Result};
use policy_fixtures::*;

/// A gateway that never tells whether it delivered.
#[derive(Debug)]
struct LostAnswers;

#[async_trait]
impl SmsSender for LostAnswers {
    async fn send(&self, _: &PhoneNumber, _: &str) -> Result<SmsReceipt> {
        Err(Error::outcome_unknown(
            "sms gateway",
            "connection reset after the request was sent",
        ))
    }
}

fn engine(repos: &Repositories, sms: Arc<dyn SmsSender>, now: chrono::DateTime<chrono::Utc>) -> Engine {
    Engine::new(
        EngineDeps {
            repos: repos.clone(),
            directory: Arc::new(StaticDirectory::new(vec![router(1, 1, true)])),
            driver: Arc::new(MockRouterDriver::new()),
            sms,
            clock: Arc::new(FakeClock::new(now)),
        },
        EngineConfig::default(),
    )
}

async fn run(engine: &Engine, job: JobKind) -> isp_core::jobs::JobReport {
    engine.run(job, RunOptions::default()).await.unwrap()
}

#[tokio::test]
async fn a_send_whose_outcome_is_unknown_is_marked_unknown_and_never_resent() {
    let now = t("2026-01-14T12:00:00Z");
    let repos = memory::repositories();
    repos.tenants.upsert(&tenant(1, "UTC")).await.unwrap();
    repos
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: TenantId(1),
            phone: phone(7),
            username: name("user7"),
            paid_until: now + Duration::minutes(30),
        })
        .await
        .unwrap();
    let e = engine(&repos, Arc::new(LostAnswers), now);
    let warn = run(&e, JobKind::WarnBeforeExpiry).await;
    assert_eq!(warn.count("notices_reserved"), 1);
    let r = run(&e, JobKind::DeliverNotices).await;
    assert_eq!(r.count("sms_outcome_unknown"), 1);
    assert_eq!(r.count("sms_abandoned"), 0, "not taken for a sure failure");
    assert_eq!(repos.notices.count(NoticeStatus::Unknown).await.unwrap(), 1);
    assert_eq!(repos.notices.count(NoticeStatus::Abandoned).await.unwrap(), 0);
    assert_eq!(repos.notices.count(NoticeStatus::Pending).await.unwrap(), 0);

    let again = run(&e, JobKind::DeliverNotices).await;
    assert_eq!(
        again.count("sms_sent") + again.count("sms_failed"),
        0,
        "never sent again"
    );
    let summary = e.health_summary().await.unwrap();
    assert_eq!(summary.notices_outcome_unknown, 1);
}

#[tokio::test]
async fn two_services_of_one_customer_due_the_same_day_get_a_reminder_each() {
    // 09:00 UTC three days before the due date: the payment-due reminder is owed.
    let now = t("2026-05-07T09:30:00Z");
    let repos = memory::repositories();
    repos.tenants.upsert(&tenant(1, "UTC")).await.unwrap();
    let customer = repos
        .customers
        .insert(&NewCustomer {
            tenant_id: TenantId(1),
            name: "Asha".into(),
            phone: Some(phone(9)),
        })
        .await
        .unwrap();
    let mut services = Vec::new();
    for (i, price) in [(1u8, "30000"), (2u8, "45000")] {
        let plan = repos
            .plans
            .insert(&NewPlan {
                tenant_id: TenantId(1),
                name: name(&format!("plan-{i}")),
                price: Money::parse("price", price, tzs()).unwrap(),
                duration: None,
                rate_limit: None,
            })
            .await
            .unwrap();
        let s = repos
            .services
            .insert(&NewService {
                tenant_id: TenantId(1),
                customer_id: customer.id,
                router_id: RouterId(1),
                plan_id: plan.id,
                status: ServiceStatus::Active,
                connection: static_ip(i),
                next_billing_date: d(2026, 5, 10),
                billing_day: 10,
                next_charge_on: d(2026, 5, 10),
            })
            .await
            .unwrap();
        services.push(s);
    }
    let sms = Arc::new(RecordingSms::new());
    let e = engine(&repos, sms.clone(), now);
    let first = run(&e, JobKind::PaymentReminders).await;
    assert_eq!(first.count("notices_reserved"), 2, "{first:?}");
    let deadline = t("2026-05-10T00:00:00Z");
    for (s, amount) in services.iter().zip(["30000 TZS", "45000 TZS"]) {
        let n = repos
            .notices
            .find(
                &phone(9),
                NoticeKind::PaymentDue,
                deadline,
                &format!("service:{}", s.id),
            )
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no reminder for service {}", s.id));
        assert!(n.body.contains(amount), "{}", n.body);
    }
    let again = run(&e, JobKind::PaymentReminders).await;
    assert_eq!(again.count("notices_reserved"), 0, "a rerun creates none");
    assert_eq!(again.count("notices_duplicate"), 2);
    run(&e, JobKind::DeliverNotices).await;
    let texts = sms.sent_to(&phone(9));
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts.iter().any(|b| b.contains("30000 TZS")) && texts.iter().any(|b| b.contains("45000 TZS")));
}

#[tokio::test]
async fn a_reminder_reserved_before_notices_had_a_subject_is_not_sent_again() {
    let now = t("2026-05-07T09:30:00Z");
    let repos = memory::repositories();
    repos.tenants.upsert(&tenant(1, "UTC")).await.unwrap();
    let customer = repos
        .customers
        .insert(&NewCustomer {
            tenant_id: TenantId(1),
            name: "Asha".into(),
            phone: Some(phone(9)),
        })
        .await
        .unwrap();
    let plan = repos
        .plans
        .insert(&NewPlan {
            tenant_id: TenantId(1),
            name: name("plan-1"),
            price: Money::parse("price", "30000", tzs()).unwrap(),
            duration: None,
            rate_limit: None,
        })
        .await
        .unwrap();
    repos
        .services
        .insert(&NewService {
            tenant_id: TenantId(1),
            customer_id: customer.id,
            router_id: RouterId(1),
            plan_id: plan.id,
            status: ServiceStatus::Active,
            connection: static_ip(1),
            next_billing_date: d(2026, 5, 10),
            billing_day: 10,
            next_charge_on: d(2026, 5, 10),
        })
        .await
        .unwrap();
    // What an older version reserved: no subject.
    repos
        .notices
        .reserve(&NewNotice {
            tenant_id: TenantId(1),
            recipient: phone(9),
            kind: NoticeKind::PaymentDue,
            deadline: t("2026-05-10T00:00:00Z"),
            subject: String::new(),
            body: "old".into(),
            created_at: now - Duration::minutes(20),
        })
        .await
        .unwrap();
    let e = engine(&repos, Arc::new(RecordingSms::new()), now);
    let r = run(&e, JobKind::PaymentReminders).await;
    assert_eq!(
        (r.count("notices_reserved"), r.count("notices_duplicate")),
        (0, 1)
    );
}

#[tokio::test]
async fn health_counts_are_true_totals_past_the_list_limit() {
    let now = t("2026-01-14T12:00:00Z");
    let repos = memory::repositories();
    repos.tenants.upsert(&tenant(1, "UTC")).await.unwrap();
    for n in 0..150 {
        repos
            .subscribers
            .insert(&NewSubscriber {
                tenant_id: TenantId(1),
                phone: phone(1000 + n),
                username: name(&format!("late{n}")),
                paid_until: now - Duration::minutes(10 + n),
            })
            .await
            .unwrap();
    }
    for n in 0..120 {
        repos
            .subscribers
            .insert(&NewSubscriber {
                tenant_id: TenantId(1),
                phone: phone(5000 + n),
                username: name(&format!("soon{n}")),
                paid_until: now + Duration::seconds(60 + n),
            })
            .await
            .unwrap();
    }
    let e = engine(&repos, Arc::new(RecordingSms::new()), now);
    let s = e.health_summary().await.unwrap();
    assert_eq!(s.expired_but_still_active, 150);
    assert_eq!(s.expired_beyond_grace, 150);
    assert_eq!(s.expired_not_disconnected.len(), SUMMARY_LIST_LIMIT);
    assert_eq!(s.expiring_in_30_min, 120);
    assert_eq!(s.expiring_soon.len(), SUMMARY_LIST_LIMIT);
    assert_eq!(s.total_active_users, 120);
}
