//! Test data and assertions shared by the checks.

use std::fmt::Debug;
use std::net::Ipv4Addr;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::domain::*;
use crate::error::{Error, Result};
use crate::ports::{NoticeRepoExt as _, Repositories};

/// The instant every check's times are relative to: 2026-03-10 08:00:00 UTC.
pub fn base_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_773_129_600, 0).expect("a valid fixed instant")
}

/// `base_time() + minutes`.
pub(super) fn t(minutes: i64) -> DateTime<Utc> {
    base_time() + Duration::minutes(minutes)
}

/// The base date (2026-03-10) plus `days`.
pub(super) fn day(days: i64) -> NaiveDate {
    base_time().date_naive() + Duration::days(days)
}

pub(super) const T1: TenantId = TenantId(1);
pub(super) const T2: TenantId = TenantId(2);
pub(super) const R1: RouterId = RouterId(1);
pub(super) const R2: RouterId = RouterId(2);
pub(super) const R3: RouterId = RouterId(3);

pub(super) fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::parse("phone", &format!("+2557120{n:05}")).expect("a valid test phone")
}

pub(super) fn ros(name: &str) -> RosName {
    RosName::parse("name", name).expect("a valid test name")
}

pub(super) fn tzs(amount: &str) -> Money {
    let currency = Currency::parse("currency", "TZS").expect("a valid currency");
    Money::parse("amount", amount, currency).expect("a valid test amount")
}

pub(super) fn claim(holder: &str, now: DateTime<Utc>, until: DateTime<Utc>, limit: usize) -> Claim {
    Claim {
        holder: holder.to_owned(),
        now,
        until,
        limit,
    }
}

pub(super) fn lease(holder: &str, until: DateTime<Utc>) -> Option<Lease> {
    Some(Lease {
        holder: holder.to_owned(),
        until,
    })
}

pub(super) fn tenant(id: TenantId, slug: &str) -> Tenant {
    Tenant {
        id,
        slug: ros(slug),
        name: format!("Tenant {slug}"),
        time_zone: chrono_tz::Africa::Dar_es_Salaam,
    }
}

/// Tenants 1 and 2, a plan and a customer of tenant 1, and a customer of tenant 2.
pub(super) struct Fx {
    pub(super) repos: Repositories,
    pub(super) plan: Plan,
    pub(super) customer: Customer,
    pub(super) customer2: Customer,
}

pub(super) async fn fixture(repos: Repositories) -> Fx {
    for t in [tenant(T1, "alpha"), tenant(T2, "beta")] {
        repos.tenants.upsert(&t).await.expect("upsert tenant");
    }
    let plan = repos
        .plans
        .insert(&NewPlan {
            tenant_id: T1,
            name: ros("day-pass"),
            price: tzs("1000"),
            duration: Some(RosDuration::from_secs(86_400)),
            rate_limit: None,
        })
        .await
        .expect("insert plan");
    let customer = repos
        .customers
        .insert(&NewCustomer {
            tenant_id: T1,
            name: "Amina".into(),
            phone: Some(phone(900)),
        })
        .await
        .expect("insert customer");
    let customer2 = repos
        .customers
        .insert(&NewCustomer {
            tenant_id: T2,
            name: "Baraka".into(),
            phone: None,
        })
        .await
        .expect("insert customer");
    Fx {
        repos,
        plan,
        customer,
        customer2,
    }
}

impl Fx {
    /// A subscriber with phone `n`.
    pub(super) async fn subscriber(&self, tenant: TenantId, n: u32, paid_until: DateTime<Utc>) -> Subscriber {
        let phone = phone(n);
        self.repos
            .subscribers
            .insert(&NewSubscriber {
                tenant_id: tenant,
                username: ros(phone.digits()),
                phone,
                paid_until,
            })
            .await
            .expect("insert subscriber")
    }

    /// An unused voucher of tenant 1.
    pub(super) async fn voucher(
        &self,
        router: RouterId,
        code: &str,
        activation: Option<DateTime<Utc>>,
        purchase: Option<DateTime<Utc>>,
        minutes: u64,
    ) -> Voucher {
        self.repos
            .vouchers
            .insert(&self.new_voucher(T1, router, code, activation, purchase, minutes))
            .await
            .expect("insert voucher")
    }

    pub(super) fn new_voucher(
        &self,
        tenant: TenantId,
        router: RouterId,
        code: &str,
        activation: Option<DateTime<Utc>>,
        purchase: Option<DateTime<Utc>>,
        minutes: u64,
    ) -> NewVoucher {
        NewVoucher {
            tenant_id: tenant,
            router_id: router,
            code: ros(code),
            plan_id: self.plan.id,
            activation_deadline: activation,
            purchase_deadline: purchase,
            duration: RosDuration::from_secs(minutes * 60),
        }
    }

    /// A PPPoE service (billing day 10) with the given state.
    pub(super) fn new_pppoe(
        &self,
        tenant: TenantId,
        router: RouterId,
        user: &str,
        status: ServiceStatus,
        next_billing_date: NaiveDate,
        next_charge_on: NaiveDate,
    ) -> NewService {
        NewService {
            tenant_id: tenant,
            customer_id: if tenant == T1 {
                self.customer.id
            } else {
                self.customer2.id
            },
            router_id: router,
            plan_id: self.plan.id,
            status,
            connection: Connection::Pppoe {
                username: ros(user),
                password: SecretPassword::parse("password", &format!("pw-{user}")).expect("a valid password"),
                profile: ros("home"),
            },
            next_billing_date,
            billing_day: 10,
            next_charge_on,
        }
    }

    /// A PPPoE service of `tenant` on router 1.
    pub(super) async fn service(
        &self,
        tenant: TenantId,
        user: &str,
        status: ServiceStatus,
        next_billing_date: NaiveDate,
        next_charge_on: NaiveDate,
    ) -> Service {
        self.repos
            .services
            .insert(&self.new_pppoe(tenant, R1, user, status, next_billing_date, next_charge_on))
            .await
            .expect("insert service")
    }

    /// A static-IP service of tenant 1.
    pub(super) fn new_static(&self, router: RouterId, address: Ipv4Addr) -> NewService {
        NewService {
            tenant_id: T1,
            customer_id: self.customer.id,
            router_id: router,
            plan_id: self.plan.id,
            status: ServiceStatus::Active,
            connection: Connection::StaticIp { address },
            next_billing_date: day(10),
            billing_day: 10,
            next_charge_on: day(10),
        }
    }

    /// A pending notice to phone `n`, created at `created`.
    pub(super) fn new_notice(
        &self,
        n: u32,
        kind: NoticeKind,
        deadline: DateTime<Utc>,
        created: DateTime<Utc>,
    ) -> NewNotice {
        NewNotice {
            tenant_id: T1,
            recipient: phone(n),
            kind,
            deadline,
            subject: String::new(),
            body: format!("Dear customer, your access ends at {deadline}."),
            created_at: created,
        }
    }

    pub(super) async fn notice(&self, n: u32, deadline: DateTime<Utc>, created: DateTime<Utc>) -> Notice {
        self.repos
            .notices
            .reserve(&self.new_notice(n, NoticeKind::HotspotExpiresSoon, deadline, created))
            .await
            .expect("reserve notice")
    }
}

/// Panics unless `r` is `Err(Error::NotFound)`.
pub(super) fn expect_not_found<T: Debug>(r: Result<T>, what: &str) {
    match r {
        Err(Error::NotFound { .. }) => {}
        other => panic!("{what}: expected Error::NotFound, got {other:?}"),
    }
}

/// Panics unless `r` is `Err(Error::Conflict)`.
pub(super) fn expect_conflict<T: Debug>(r: Result<T>, what: &str) {
    match r {
        Err(Error::Conflict { .. }) => {}
        other => panic!("{what}: expected Error::Conflict, got {other:?}"),
    }
}

/// Panics unless `r` is `Err(Error::Conflict)` whose message names `field`
/// and `value`.
pub(super) fn expect_conflict_naming<T: Debug>(r: Result<T>, field: &str, value: &str, what: &str) {
    match r {
        Err(e @ Error::Conflict { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(field) && msg.contains(value),
                "{what}: the conflict must name the field `{field}` and the value `{value}`, got: {msg}"
            );
        }
        other => panic!("{what}: expected Error::Conflict, got {other:?}"),
    }
}

/// The ids of `items`, in order.
pub(super) fn ids<T, I>(items: &[T], id: impl Fn(&T) -> I) -> Vec<I> {
    items.iter().map(id).collect()
}

/// The ids of `items`, sorted.
pub(super) fn sorted_ids<T, I: Ord>(items: &[T], id: impl Fn(&T) -> I) -> Vec<I> {
    let mut v = ids(items, id);
    v.sort();
    v
}

/// Runs `claimants` tasks that each claim repeatedly (with `claim_once`) until
/// nothing is left, and checks that every item was handed out exactly once.
/// Returns (holder, id) pairs.
pub(super) async fn claim_concurrently<I, F, Fut>(
    claimants: usize,
    expected: &[I],
    claim_once: F,
) -> Vec<(String, I)>
where
    I: Copy + Ord + Debug + Send + 'static,
    F: Fn(String) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Vec<I>> + Send,
{
    let max_rounds = expected.len() + 5;
    let mut tasks = Vec::new();
    for c in 0..claimants {
        let claim_once = claim_once.clone();
        tasks.push(tokio::spawn(async move {
            let holder = format!("claimant-{c}");
            let mut got = Vec::new();
            for _ in 0..max_rounds {
                let batch = claim_once(holder.clone()).await;
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|id| (holder.clone(), id)));
                tokio::task::yield_now().await;
            }
            panic!("{holder} was still handed items after {max_rounds} claims: items are handed out again");
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("a claimant task panicked"));
    }
    let mut claimed: Vec<I> = all.iter().map(|(_, id)| *id).collect();
    claimed.sort();
    let mut want = expected.to_vec();
    want.sort();
    assert_eq!(
        claimed, want,
        "concurrent claimants must get every due item exactly once"
    );
    all
}
