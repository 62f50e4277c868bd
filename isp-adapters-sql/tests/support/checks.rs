//! Checks of what SQL adds beyond the port contracts (the conformance suite of
//! isp-core covers those): schema rules, exact storage, decoding of bad
//! values, migrations, query plans. Each takes a migrated, empty store.

#![allow(dead_code)]

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use isp_adapters_sql::{Backend, SqlStore};
use isp_core::domain::*;
use isp_core::ports::NoticeRepoExt as _;
use isp_core::Error;

use super::bulk;

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("valid instant")
}

pub(crate) fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).expect("valid date")
}

fn tzs() -> Currency {
    Currency::parse("currency", "TZS").expect("currency")
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse("phone", s).expect("phone")
}

fn name(s: &str) -> RosName {
    RosName::parse("name", s).expect("name")
}

/// Runs one statement of the test's own on the store's pool.
pub(crate) async fn exec(store: &SqlStore, sql: &str) {
    match store.backend() {
        #[cfg(not(feature = "sqlite"))]
        Backend::Sqlite => unreachable!("built without sqlite"),
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => {
            sqlx::query(sql)
                .execute(store.sqlite_pool().expect("pool"))
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        #[cfg(not(feature = "postgres"))]
        Backend::Postgres => unreachable!("built without postgres"),
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            sqlx::query(sql)
                .execute(store.postgres_pool().expect("pool"))
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        #[cfg(not(feature = "mysql"))]
        Backend::Mysql => unreachable!("built without mysql"),
        #[cfg(feature = "mysql")]
        Backend::Mysql => {
            sqlx::query(sql)
                .execute(store.mysql_pool().expect("pool"))
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
}

fn assert_invalid(e: Error, field: &str) {
    match &e {
        Error::InvalidInput { field: f, .. } => assert_eq!(f, field, "{e}"),
        other => panic!("expected InvalidInput naming {field}, got {other:?}"),
    }
}

/// `migrate` twice is fine; a schema with an unknown (newer) migration is refused.
pub(crate) async fn migrations_idempotent_and_newer_schema_refused(store: SqlStore) {
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    assert!(store.schema_version() >= 20260101000000);
    let future = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                  VALUES (99990101000000, 'from a newer build', TRUE, ";
    let sql = match store.backend() {
        Backend::Sqlite | Backend::Mysql => format!("{future}X'00', 0)"),
        Backend::Postgres => format!("{future}'\\x00'::bytea, 0)"),
    };
    exec(&store, &sql).await;
    let e = store.migrate().await.expect_err("a newer schema must be refused");
    assert!(e.is_conflict(), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("99990101000000") && text.contains("newer"),
        "{text}"
    );
    // The data is still there and usable.
    store.repositories().tenants.list().await.expect("still readable");
}

/// A second charge for the same (service, period) is a conflict even with another key.
pub(crate) async fn one_charge_per_service_and_period(store: SqlStore) {
    let repos = store.repositories();
    let entry = |key: &str, kind: LedgerKind| NewLedgerEntry {
        customer_id: CustomerId(1),
        service_id: Some(ServiceId(7)),
        kind,
        amount: Money::parse("amount", "30000", tzs()).expect("money"),
        period_start: Some(NaiveDate::from_ymd_opt(2026, 1, 31).expect("date")),
        key: key.to_owned(),
        created_at: t0(),
    };
    repos
        .ledger
        .record(&entry("charge:svc:7:2026-01-31", LedgerKind::Charge))
        .await
        .expect("first charge");
    let e = repos
        .ledger
        .record(&entry("charge:svc:7:2026-01-31:retry", LedgerKind::Charge))
        .await
        .expect_err("a second charge for the period");
    assert!(e.is_conflict(), "{e:?}");
    let e = repos
        .ledger
        .record(&entry("charge:svc:7:2026-01-31", LedgerKind::Payment))
        .await
        .expect_err("the same key again");
    assert!(e.is_conflict(), "{e:?}");
    // A payment for that period under its own key is fine.
    repos
        .ledger
        .record(&entry("payment:1", LedgerKind::Payment))
        .await
        .expect("payment");
    assert_eq!(repos.ledger.count_charges().await.expect("count"), 1);
    assert_eq!(
        repos
            .ledger
            .of_service(ServiceId(7))
            .await
            .expect("of_service")
            .len(),
        2
    );
}

/// A duplicate notice is a conflict and leaves one row.
pub(crate) async fn one_notice_per_recipient_kind_deadline(store: SqlStore) {
    let repos = store.repositories();
    let n = NewNotice {
        subject: String::new(),
        tenant_id: TenantId(1),
        recipient: phone("+255712345678"),
        kind: NoticeKind::HotspotExpiresSoon,
        deadline: t0(),
        body: "Your access ends in 1 hour".to_owned(),
        created_at: t0(),
    };
    repos.notices.reserve(&n).await.expect("first");
    let e = repos.notices.reserve(&n).await.expect_err("second");
    assert!(e.is_conflict(), "{e:?}");
    assert_eq!(
        repos.notices.count(NoticeStatus::Pending).await.expect("count"),
        1
    );
}

/// Amounts are exact to 1/10000 and instants to the microsecond; dates are dates.
pub(crate) async fn money_instants_and_dates_are_exact(store: SqlStore) {
    let repos = store.repositories();
    for (i, amount) in ["0", "0.0001", "1234.5678", "900000000000.9999"]
        .into_iter()
        .enumerate()
    {
        let plan = repos
            .plans
            .insert(&NewPlan {
                tenant_id: TenantId(1),
                name: name(&format!("plan-{i}")),
                price: Money::parse("price", amount, tzs()).expect("money"),
                duration: Some(RosDuration::parse("d", "1d2h3m4s").expect("duration")),
                rate_limit: Some(RateLimit::parse("rate", "512k/18446744073709551615").expect("rate")),
            })
            .await
            .expect("insert plan");
        let back = repos.plans.get(plan.id).await.expect("get plan");
        assert_eq!(back, plan);
        assert_eq!(back.price.amount.to_string(), amount);
    }
    let precise = t0() + Duration::microseconds(123_456);
    let sub = repos
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: TenantId(1),
            phone: phone("+255700000001"),
            username: name("alice"),
            paid_until: precise,
        })
        .await
        .expect("insert");
    assert_eq!(
        repos.subscribers.get(sub.id).await.expect("get").paid_until,
        precise
    );
    // Far dates and instants survive too.
    let far = Utc
        .with_ymd_and_hms(2199, 12, 31, 23, 59, 59)
        .single()
        .expect("far");
    repos.subscribers.extend(sub.id, far).await.expect("extend");
    assert_eq!(repos.subscribers.get(sub.id).await.expect("get").paid_until, far);
    let svc = repos
        .services
        .insert(&NewService {
            tenant_id: TenantId(1),
            customer_id: CustomerId(1),
            router_id: RouterId(1),
            plan_id: PlanId(1),
            status: ServiceStatus::Active,
            connection: Connection::StaticIp {
                address: "10.0.0.2".parse().expect("ip"),
            },
            next_billing_date: NaiveDate::from_ymd_opt(2099, 12, 31).expect("date"),
            billing_day: 31,
            next_charge_on: NaiveDate::from_ymd_opt(2024, 2, 29).expect("date"),
        })
        .await
        .expect("service");
    assert_eq!(repos.services.get(svc.id).await.expect("get"), svc);
}

/// A value in the database that the domain rejects gives InvalidInput naming
/// `table.column`, on single reads and on claims, never a panic.
pub(crate) async fn bad_stored_values_are_invalid_input(store: SqlStore) {
    let repos = store.repositories();
    let sub = repos
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: TenantId(1),
            phone: phone("+255700000002"),
            username: name("bob"),
            paid_until: t0() - Duration::hours(1),
        })
        .await
        .expect("insert");
    exec(
        &store,
        &format!(
            "UPDATE subscribers SET phone = '07-not-a-phone' WHERE id = {}",
            sub.id
        ),
    )
    .await;
    assert_invalid(
        repos.subscribers.get(sub.id).await.expect_err("bad phone"),
        "subscribers.phone",
    );
    let claim = Claim {
        holder: "d1".to_owned(),
        now: t0(),
        until: t0() + Duration::minutes(5),
        limit: 10,
    };
    assert_invalid(
        repos
            .subscribers
            .claim_expired(&claim)
            .await
            .expect_err("claim decodes too"),
        "subscribers.phone",
    );

    repos
        .tenants
        .upsert(&Tenant {
            id: TenantId(3),
            slug: name("hotel-abc"),
            name: "Hotel ABC".to_owned(),
            time_zone: chrono_tz::Africa::Dar_es_Salaam,
        })
        .await
        .expect("tenant");
    exec(
        &store,
        "UPDATE tenants SET time_zone = 'Mars/Olympus_Mons' WHERE id = 3",
    )
    .await;
    assert_invalid(
        repos.tenants.get(TenantId(3)).await.expect_err("bad zone"),
        "tenants.time_zone",
    );

    let svc = repos
        .services
        .insert(&NewService {
            tenant_id: TenantId(1),
            customer_id: CustomerId(1),
            router_id: RouterId(1),
            plan_id: PlanId(1),
            status: ServiceStatus::Active,
            connection: Connection::Pppoe {
                username: name("carol"),
                password: SecretPassword::parse("password", "pw").expect("pw"),
                profile: name("default"),
            },
            next_billing_date: today(),
            billing_day: 1,
            next_charge_on: today(),
        })
        .await
        .expect("service");
    exec(
        &store,
        &format!("UPDATE services SET billing_day = 40 WHERE id = {}", svc.id),
    )
    .await;
    assert_invalid(
        repos.services.get(svc.id).await.expect_err("bad day"),
        "services.billing_day",
    );
    exec(
        &store,
        &format!(
            "UPDATE services SET billing_day = 1, pppoe_profile = NULL WHERE id = {}",
            svc.id
        ),
    )
    .await;
    assert_invalid(
        repos.services.get(svc.id).await.expect_err("no profile"),
        "services.pppoe_profile",
    );

    if store.backend() == Backend::Sqlite {
        // SQLite keeps whatever it is given: a text instant, a text date, a bad boolean.
        exec(
            &store,
            &format!(
                "UPDATE subscribers SET phone = '+255700000002', paid_until = 'yesterday' WHERE id = {}",
                sub.id
            ),
        )
        .await;
        assert_invalid(
            repos.subscribers.get(sub.id).await.expect_err("bad instant"),
            "subscribers.paid_until",
        );
        exec(
            &store,
            &format!(
                "UPDATE subscribers SET paid_until = 0, active = 7 WHERE id = {}",
                sub.id
            ),
        )
        .await;
        assert_invalid(
            repos.subscribers.get(sub.id).await.expect_err("bad bool"),
            "subscribers.active",
        );
        exec(
            &store,
            &format!("UPDATE services SET pppoe_profile = 'default', next_billing_date = '31/01/2026' WHERE id = {}", svc.id),
        )
        .await;
        assert_invalid(
            repos.services.get(svc.id).await.expect_err("bad date"),
            "services.next_billing_date",
        );
    }
}

/// Every due-work statement is an index range scan on its table, with enough
/// rows for the planner to care (and `ANALYZE` statistics).
pub(crate) async fn due_work_plans_use_their_indexes(store: SqlStore, rows: i64) {
    bulk::populate(&store, rows, t0(), today()).await;
    let plans = store
        .explain_due_work(t0(), TenantId(1), today())
        .await
        .expect("explain");
    assert!(plans.len() >= 11, "{plans:?}");
    let mut problems = Vec::new();
    for p in &plans {
        if let Some(why) = bulk::plan_problem(store.backend(), p.name, &p.plan) {
            problems.push(format!("{why}\n{}", p.plan));
        }
    }
    assert!(
        problems.is_empty(),
        "plans that are not index range scans:\n{}",
        problems.join("\n")
    );
    // And the claims really return what is due, in order.
    let repos = store.repositories();
    let claim = Claim {
        holder: "d1".to_owned(),
        now: t0(),
        until: t0() + Duration::minutes(5),
        limit: 500,
    };
    let subs = repos.subscribers.claim_expired(&claim).await.expect("claim");
    assert_eq!(subs.len() as i64, bulk::due_count(rows).min(500));
    assert!(subs.windows(2).all(|w| w[0].paid_until <= w[1].paid_until));
    assert!(subs.iter().all(|s| s.paid_until <= t0()));
    let vouchers = repos.vouchers.claim_due(&claim).await.expect("claim vouchers");
    assert!(!vouchers.is_empty());
    assert!(vouchers.iter().all(|v| v.deadline().is_some_and(|d| d <= t0())));
    let services = repos
        .services
        .claim_provisioning(TenantId(1), today(), &claim)
        .await
        .expect("claim services");
    assert!(!services.is_empty());
    assert!(services
        .windows(2)
        .all(|w| (w[0].next_billing_date, w[0].id) < (w[1].next_billing_date, w[1].id)));
    let notices = repos.notices.claim_pending(&claim).await.expect("claim notices");
    assert_eq!(notices.len() as i64, bulk::due_count(rows).min(500));
}

/// The store's `Debug` never shows a password.
pub(crate) fn debug_hides_password(store: &SqlStore, password: &str) {
    let shown = format!("{store:?}");
    assert!(!shown.contains(password), "{shown}");
}

/// An error and its whole source chain, as text.
pub(crate) fn error_text(e: &Error) -> String {
    let mut text = format!("{e} / {e:?}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(" / {s} / {s:?}"));
        source = s.source();
    }
    text
}
