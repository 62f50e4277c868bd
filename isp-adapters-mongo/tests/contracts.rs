//! This adapter's own checks of the repository contracts, against a real
//! MongoDB wire-protocol server (see `common`): what the shared conformance
//! suite does not cover, or covers in general terms only (concurrency across two
//! clients, exact money, the stored document shape, error mapping, indexes).

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use futures::TryStreamExt;
use isp_adapters_mongo::{index_models, map_mongo_error, MongoStore};
use isp_core::domain::*;
use isp_core::ports::{
    LeaseRepoExt as _, NoticeRepoExt as _, Repositories, SubscriberRepoExt as _, RETRY_HOLDER,
};
use mongodb::bson::{doc, Bson, Document};

macro_rules! store_or_skip {
    () => {
        match common::store().await {
            Some(s) => s,
            None => return,
        }
    };
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::parse("phone", &format!("+2557{n:08}")).unwrap()
}

fn name(s: &str) -> RosName {
    RosName::parse("name", s).unwrap()
}

fn claim(holder: &str, now: DateTime<Utc>, limit: usize) -> Claim {
    Claim {
        holder: holder.into(),
        now,
        until: now + Duration::minutes(5),
        limit,
    }
}

fn tzs() -> Currency {
    Currency::parse("currency", "TZS").unwrap()
}

async fn subscriber(r: &Repositories, n: u32, paid_until: DateTime<Utc>) -> Subscriber {
    r.subscribers
        .insert(&NewSubscriber {
            tenant_id: TenantId(1),
            phone: phone(n),
            username: name(&format!("u{n}")),
            paid_until,
        })
        .await
        .unwrap()
}

async fn raw(store: &MongoStore, coll: &str, id: i64) -> Document {
    store
        .database()
        .collection::<Document>(coll)
        .find_one(doc! { "_id": id })
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn documents_have_stable_fields_dates_and_exact_money() {
    let store = store_or_skip!();
    let r = store.repositories();
    let s = subscriber(&r, 1, t0()).await;
    let d = raw(&store, "subscribers", s.id.0).await;
    assert!(matches!(d.get("paid_until"), Some(Bson::DateTime(_))), "{d:?}");
    assert_eq!(d.get_str("phone").unwrap(), "+255700000001");
    assert!(d.get_bool("active").unwrap());
    let lease = d.get_document("lease").unwrap();
    assert_eq!(lease.get_str("holder").unwrap(), "", "no lease: empty holder");
    assert!(matches!(lease.get("until"), Some(Bson::DateTime(_))));

    for price in ["1500.5", "0.0001", "123456789.1234", "0"] {
        let plan = r
            .plans
            .insert(&NewPlan {
                tenant_id: TenantId(1),
                name: name(&format!("p{price}")),
                price: Money::parse("price", price, tzs()).unwrap(),
                duration: Some(RosDuration::parse("d", "1d2h").unwrap()),
                rate_limit: Some(RateLimit::parse("r", "2M/10M").unwrap()),
            })
            .await
            .unwrap();
        let back = r.plans.get(plan.id).await.unwrap();
        assert_eq!(back, plan);
        assert_eq!(
            back.price.amount.to_string(),
            Money::parse("p", price, tzs()).unwrap().amount.to_string()
        );
        let d = raw(&store, "plans", plan.id.0).await;
        let micros = d.get("price_micros").cloned().unwrap();
        assert!(
            matches!(micros, Bson::Int64(_) | Bson::Int32(_)),
            "money is an integer: {micros:?}"
        );
    }
    common::drop(&store).await;
}

#[tokio::test]
async fn ids_come_from_counters_and_are_distinct_across_clients() {
    let store = store_or_skip!();
    let url = common::server_url().unwrap();
    let other = MongoStore::connect(&url, store.database().name()).await.unwrap();
    let (a, b) = (store.repositories(), other.repositories());
    let mut tasks = Vec::new();
    for i in 0..40u32 {
        let r = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            r.customers
                .insert(&NewCustomer {
                    tenant_id: TenantId(1),
                    name: format!("c{i}"),
                    phone: None,
                })
                .await
                .unwrap()
                .id
        }));
    }
    let mut ids = BTreeSet::new();
    for t in tasks {
        assert!(ids.insert(t.await.unwrap()), "duplicate id");
    }
    assert_eq!(ids.len(), 40);
    assert_eq!(ids.iter().next().unwrap().0, 1);
    assert_eq!(ids.iter().last().unwrap().0, 40);
    common::drop(&store).await;
}

/// Two clients, many tasks claiming the same due subscribers: every item is
/// claimed exactly once while the leases hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_take_every_item_exactly_once() {
    let store = store_or_skip!();
    let url = common::server_url().unwrap();
    let other = MongoStore::connect(&url, store.database().name()).await.unwrap();
    let a = store.repositories();
    let b = other.repositories();
    const N: u32 = 120;
    for i in 0..N {
        subscriber(&a, i, t0() - Duration::seconds(i64::from(i))).await;
    }
    // A few that are not due and must never be claimed.
    for i in N..N + 5 {
        subscriber(&a, i, t0() + Duration::hours(1)).await;
    }
    let mut tasks = Vec::new();
    for t in 0..8 {
        let r = if t % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let holder = format!("daemon-{t}");
            let mut got = Vec::new();
            loop {
                let batch = r
                    .subscribers
                    .claim_expired(&claim(&holder, t0(), 7))
                    .await
                    .unwrap();
                if batch.is_empty() {
                    break;
                }
                for s in batch {
                    assert_eq!(s.lease.as_ref().unwrap().holder, holder);
                    got.push(s.id);
                }
            }
            got
        }));
    }
    let mut seen: HashMap<SubscriberId, usize> = HashMap::new();
    for t in tasks {
        for id in t.await.unwrap() {
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), N as usize, "every due item claimed");
    assert!(seen.values().all(|&n| n == 1), "an item was claimed twice");
    assert!(
        seen.keys().all(|id| id.0 <= i64::from(N)),
        "a not-due item was claimed"
    );

    // Same for vouchers and notices, through the other repositories' claims.
    for i in 0..30 {
        a.notices
            .reserve(&NewNotice {
                tenant_id: TenantId(1),
                recipient: phone(i),
                kind: NoticeKind::HotspotExpired,
                deadline: t0(),
                body: "bye".into(),
                created_at: t0() + Duration::seconds(i64::from(i)),
            })
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for t in 0..6 {
        let r = if t % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = r
                    .notices
                    .claim_pending(&claim(&format!("s{t}"), t0(), 4))
                    .await
                    .unwrap();
                if batch.is_empty() {
                    break got;
                }
                got.extend(batch.into_iter().map(|n| n.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: BTreeSet<_> = all.iter().collect();
    assert_eq!((all.len(), distinct.len()), (30, 30));
    common::drop(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_once_rules_hold_under_concurrency() {
    let store = store_or_skip!();
    let url = common::server_url().unwrap();
    let other = MongoStore::connect(&url, store.database().name()).await.unwrap();
    let (a, b) = (store.repositories(), other.repositories());
    let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();

    // The same charge recorded by many tasks on two clients: one wins.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let r = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            r.ledger
                .record(&NewLedgerEntry {
                    customer_id: CustomerId(1),
                    service_id: Some(ServiceId(3)),
                    kind: LedgerKind::Charge,
                    amount: Money::parse("amount", "30000", tzs()).unwrap(),
                    period_start: Some(day),
                    key: "charge:svc:3:2026-03-01".into(),
                    created_at: t0(),
                })
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert!(e.is_conflict(), "{e}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(a.ledger.count_charges().await.unwrap(), 1);

    // A second charge for the same service and period under another key is refused
    // by the (service, period) index; a payment is not a charge.
    let e = a
        .ledger
        .record(&NewLedgerEntry {
            customer_id: CustomerId(1),
            service_id: Some(ServiceId(3)),
            kind: LedgerKind::Charge,
            amount: Money::parse("amount", "30000", tzs()).unwrap(),
            period_start: Some(day),
            key: "other-key".into(),
            created_at: t0(),
        })
        .await
        .unwrap_err();
    assert!(e.is_conflict(), "{e}");
    for key in ["pay-1", "pay-2"] {
        a.ledger
            .record(&NewLedgerEntry {
                customer_id: CustomerId(1),
                service_id: Some(ServiceId(3)),
                kind: LedgerKind::Payment,
                amount: Money::parse("amount", "10.25", tzs()).unwrap(),
                period_start: Some(day),
                key: key.into(),
                created_at: t0() + Duration::seconds(1),
            })
            .await
            .unwrap();
    }
    let entries = a.ledger.of_service(ServiceId(3)).await.unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].kind, LedgerKind::Charge);
    assert_eq!(entries[1].amount.amount.to_string(), "10.25");

    // Notices: one per (recipient, kind, deadline).
    let new = NewNotice {
        tenant_id: TenantId(1),
        recipient: phone(9),
        kind: NoticeKind::PaymentDue,
        deadline: t0(),
        body: "pay".into(),
        created_at: t0(),
    };
    let mut tasks = Vec::new();
    for i in 0..10 {
        let r = if i % 2 == 0 { a.clone() } else { b.clone() };
        let new = new.clone();
        tasks.push(tokio::spawn(async move { r.notices.reserve(&new).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert!(e.is_conflict(), "{e}"),
        }
    }
    assert_eq!(ok, 1);
    common::drop(&store).await;
}

#[tokio::test]
async fn claims_lease_in_deadline_order_and_cas_updates_guard_state() {
    let store = store_or_skip!();
    let r = store.repositories();
    let a = subscriber(&r, 1, t0() - Duration::minutes(1)).await;
    let b = subscriber(&r, 2, t0() - Duration::minutes(3)).await;
    let c = subscriber(&r, 3, t0() - Duration::minutes(2)).await;
    let got = r.subscribers.claim_expired(&claim("d1", t0(), 2)).await.unwrap();
    assert_eq!(got.iter().map(|s| s.id).collect::<Vec<_>>(), vec![b.id, c.id]);
    // Leased items are skipped by others until the lease expires.
    let got = r.subscribers.claim_expired(&claim("d2", t0(), 10)).await.unwrap();
    assert_eq!(got.iter().map(|s| s.id).collect::<Vec<_>>(), vec![a.id]);
    let later = t0() + Duration::minutes(5); // until <= now: free again
    let got = r
        .subscribers
        .claim_expired(&claim("d3", later, 10))
        .await
        .unwrap();
    assert_eq!(got.len(), 3);

    // An extension meanwhile wins over the disconnect; the lease goes either way.
    r.subscribers
        .extend(b.id, t0() + Duration::hours(1))
        .await
        .unwrap();
    assert!(!r
        .subscribers
        .complete_expiry(b.id, "d3", b.paid_until, t0())
        .await
        .unwrap());
    assert!(r.subscribers.get(b.id).await.unwrap().active);
    assert!(r
        .subscribers
        .complete_expiry(c.id, "d3", c.paid_until, t0())
        .await
        .unwrap());
    let c2 = r.subscribers.get(c.id).await.unwrap();
    assert!(!c2.active && c2.lease.is_none() && c2.disconnected_at == Some(t0()));
    // A lease expired by its own `until` (a zero-length claim) never loops.
    let zt = later + Duration::minutes(5);
    let z = Claim {
        holder: "z".into(),
        now: zt,
        until: zt,
        limit: 10,
    };
    assert_eq!(r.subscribers.claim_expired(&z).await.unwrap().len(), 1);
    // Retries need the lease; an unknown id answers false.
    assert!(!r.leases.retry_later(a.id, "nobody", later).await.unwrap());
    assert!(r
        .leases
        .retry_later(a.id, "z", later + Duration::minutes(1))
        .await
        .unwrap());
    let a2 = r.subscribers.get(a.id).await.unwrap();
    assert_eq!(
        (a2.attempts, a2.lease.unwrap().holder.as_str()),
        (1, RETRY_HOLDER)
    );
    assert!(!r.leases.retry_later(SubscriberId(999), "z", later).await.unwrap());

    // Services: provisioning filter with nested conditions, billing CAS.
    let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let mk = |n: u32, status: ServiceStatus, due: NaiveDate| NewService {
        tenant_id: TenantId(1),
        customer_id: CustomerId(1),
        router_id: RouterId(1),
        plan_id: PlanId(1),
        status,
        connection: Connection::Pppoe {
            username: name(&format!("ppp{n}")),
            password: SecretPassword::parse("p", "pw").unwrap(),
            profile: name("default"),
        },
        next_billing_date: due,
        billing_day: 1,
        next_charge_on: due,
    };
    let paid = r
        .services
        .insert(&mk(1, ServiceStatus::Active, day + Duration::days(3)))
        .await
        .unwrap();
    let overdue = r
        .services
        .insert(&mk(2, ServiceStatus::Active, day - Duration::days(1)))
        .await
        .unwrap();
    let suspended = r
        .services
        .insert(&mk(3, ServiceStatus::Suspended, day))
        .await
        .unwrap();
    let e = r
        .services
        .insert(&mk(1, ServiceStatus::Active, day))
        .await
        .unwrap_err();
    assert!(e.is_conflict(), "PPPoE username unique per router: {e}");
    let mut static_ip = mk(9, ServiceStatus::Active, day);
    static_ip.connection = Connection::StaticIp {
        address: "10.0.0.9".parse().unwrap(),
    };
    let s1 = r.services.insert(&static_ip).await.unwrap();
    let s2 = r.services.insert(&static_ip).await.unwrap();
    assert_ne!(
        s1.id, s2.id,
        "static-IP services have no PPPoE username to collide on"
    );
    let got = r
        .services
        .claim_provisioning(TenantId(1), day, &claim("p", t0(), 10))
        .await
        .unwrap();
    let ids: Vec<_> = got.iter().map(|s| s.id).collect();
    assert_eq!(
        ids,
        vec![s1.id, s2.id, paid.id],
        "active, unprovisioned, paid up; by due date then id"
    );
    // Provision `overdue` and `suspended` as a daemon would: marks are fenced
    // on the lease holder, so make them due, claim them, mark, then restore.
    for s in [overdue.id, suspended.id] {
        r.services.set_status(s, ServiceStatus::Active).await.unwrap();
        r.services
            .set_next_billing_date(s, day + Duration::days(10))
            .await
            .unwrap();
    }
    let setup = r
        .services
        .claim_provisioning(TenantId(1), day, &claim("setup", t0(), 10))
        .await
        .unwrap();
    let ids: Vec<_> = setup.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![overdue.id, suspended.id], "the others are leased to p");
    assert!(
        !r.services.mark_provisioned(overdue.id, "p", t0()).await.unwrap(),
        "p does not hold the lease"
    );
    assert!(r
        .services
        .mark_provisioned(overdue.id, "setup", t0())
        .await
        .unwrap());
    assert!(r
        .services
        .mark_provisioned(suspended.id, "setup", t0())
        .await
        .unwrap());
    r.services
        .set_next_billing_date(overdue.id, day - Duration::days(1))
        .await
        .unwrap();
    r.services
        .set_status(suspended.id, ServiceStatus::Suspended)
        .await
        .unwrap();
    r.services.set_next_billing_date(suspended.id, day).await.unwrap();
    let got = r.services.list_provisioning(TenantId(1), day, 10).await.unwrap();
    let ids: Vec<_> = got.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![overdue.id, suspended.id, s1.id, s2.id, paid.id]);
    let billable = r
        .services
        .claim_billable(TenantId(1), day, &claim("b", t0(), 10))
        .await
        .unwrap();
    assert!(billable.iter().all(|s| s.next_charge_on <= day));
    assert!(r
        .services
        .advance_billing(overdue.id, "b", overdue.next_charge_on, day)
        .await
        .unwrap());
    assert!(!r
        .services
        .advance_billing(overdue.id, "b", overdue.next_charge_on, day)
        .await
        .unwrap());
    assert_eq!(r.services.get(overdue.id).await.unwrap().next_charge_on, day);
    assert!(r.services.get(overdue.id).await.unwrap().lease.is_none());

    // Vouchers: the stored deadline follows every write.
    let v = r
        .vouchers
        .insert(&NewVoucher {
            tenant_id: TenantId(1),
            router_id: RouterId(1),
            code: name("ABC"),
            plan_id: PlanId(1),
            activation_deadline: Some(t0() + Duration::hours(2)),
            purchase_deadline: Some(t0() + Duration::hours(1)),
            duration: RosDuration::parse("d", "3h").unwrap(),
        })
        .await
        .unwrap();
    assert_eq!(
        r.vouchers.next_deadline_after(t0()).await.unwrap(),
        Some(t0() + Duration::hours(1))
    );
    let v = r.vouchers.activate(v.id, t0()).await.unwrap();
    assert_eq!(v.expected_end, Some(t0() + Duration::hours(3)));
    assert!(r.vouchers.activate(v.id, t0()).await.unwrap_err().is_conflict());
    assert_eq!(r.vouchers.next_deadline_after(t0()).await.unwrap(), v.deadline());
    let end = t0() + Duration::hours(3);
    let due = r.vouchers.claim_due(&claim("v", end, 10)).await.unwrap();
    assert_eq!(due.len(), 1);
    assert!(!r
        .vouchers
        .expire(v.id, VoucherStatus::Unused, VoucherExpiryReason::UsageEnded, end)
        .await
        .unwrap());
    assert!(r
        .vouchers
        .expire(v.id, VoucherStatus::Active, VoucherExpiryReason::UsageEnded, end)
        .await
        .unwrap());
    let v2 = r.vouchers.get(v.id).await.unwrap();
    assert_eq!(v2.lease.as_ref().unwrap().holder, "v", "expire keeps the lease");
    assert_eq!(
        r.vouchers.list_due(end, 10).await.unwrap().len(),
        1,
        "removal stays due"
    );
    assert!(r.vouchers.mark_removed(v.id, "v").await.unwrap());
    assert!(r
        .vouchers
        .list_due(end + Duration::days(1), 10)
        .await
        .unwrap()
        .is_empty());
    let d = raw(&store, "vouchers", v.id.0).await;
    assert_eq!(d.get("deadline"), Some(&Bson::Null));
    common::drop(&store).await;
}

#[tokio::test]
async fn indexes_exist_and_ensure_is_idempotent() {
    let store = store_or_skip!();
    store.ensure_indexes().await.unwrap();
    for (coll, model) in index_models() {
        let have: Vec<Document> = store
            .database()
            .collection::<Document>(coll)
            .list_indexes()
            .await
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.keys)
            .collect();
        assert!(
            have.contains(&model.keys),
            "{coll}: missing index {:?} (have {have:?})",
            model.keys
        );
    }
    common::drop(&store).await;
}

#[tokio::test]
async fn unreachable_server_is_transient_and_never_shows_the_password() {
    let url = "mongodb://alice:hunter2secret@127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300";
    let e = MongoStore::connect(url, "isp").await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("hunter2secret"), "{shown}");

    let e = MongoStore::connect("mongodb://u:pw@host:notaport", "isp")
        .await
        .unwrap_err();
    assert!(!e.is_transient(), "{e}");
    assert!(!format!("{e} {e:?}").contains(":pw@"), "{e}");
    let e = MongoStore::connect("mongodb://127.0.0.1:1", "bad/name")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("mongodb_database"), "{e}");
}

#[tokio::test]
async fn duplicate_keys_map_to_conflict_wherever_they_appear() {
    let store = store_or_skip!();
    let coll = store.database().collection::<Document>("scratch");
    coll.insert_one(doc! { "_id": 1 }).await.unwrap();
    let e = coll.insert_one(doc! { "_id": 1 }).await.unwrap_err();
    assert!(map_mongo_error(e, "scratch").is_conflict());
    let e = coll
        .insert_many(vec![doc! { "_id": 2 }, doc! { "_id": 1 }])
        .await
        .unwrap_err();
    assert!(map_mongo_error(e, "scratch").is_conflict());
    let dbg = format!("{store:?}");
    assert!(
        dbg.contains(store.database().name()) && !dbg.contains("mongodb://"),
        "{dbg}"
    );
    common::drop(&store).await;
}

#[tokio::test]
async fn audit_log_is_newest_first_with_stable_ties() {
    let store = store_or_skip!();
    let r = store.repositories();
    let ev = |i: i64, router: Option<i64>| AuditEvent {
        at: t0() + Duration::seconds(i / 2),
        tenant_id: Some(TenantId(1)),
        action: "disconnect".into(),
        subject: format!("subscriber:{i}"),
        router_id: router.map(RouterId),
        outcome: AuditOutcome::Success,
        reason: None,
    };
    let batch: Vec<_> = (0..6)
        .map(|i| ev(i, if i % 2 == 0 { Some(1) } else { None }))
        .collect();
    r.audit.append(&batch).await.unwrap();
    r.audit.append(&[]).await.unwrap();
    let recent = r.audit.recent(4).await.unwrap();
    let subjects: Vec<_> = recent.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(
        subjects,
        ["subscriber:5", "subscriber:4", "subscriber:3", "subscriber:2"]
    );
    assert_eq!(r.audit.of_router(RouterId(1), 10).await.unwrap().len(), 3);
    assert!(r.audit.recent(0).await.unwrap().is_empty());
    assert_eq!(
        r.audit.delete_before(t0() + Duration::seconds(1)).await.unwrap(),
        2
    );
    common::drop(&store).await;
}

#[tokio::test]
async fn many_tasks_share_one_store() {
    // Arc'd repositories work from many tasks of a multi-thread runtime.
    let Some(store) = common::store().await else {
        return;
    };
    let r = Arc::new(store.repositories());
    let mut tasks = Vec::new();
    for i in 0..10u32 {
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            let s = subscriber(&r, i, t0()).await;
            r.devices
                .record_seen(
                    s.id,
                    MacAddress::parse("mac", &format!("AA:BB:CC:DD:EE:{i:02X}")).unwrap(),
                    None,
                    t0(),
                )
                .await
                .unwrap();
            s.id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    assert_eq!(r.devices.active_of(&ids).await.unwrap().len(), 10);
    common::drop(&store).await;
}

/// Regression (nx-27017 0.8.1): ids that do not follow the insertion order (here
/// an id burnt by a duplicate reservation, as when several daemons reserve the
/// same notice) must not send a write to another document. nx-27017 falls back
/// to Python for filters it cannot translate to SQL (`$in`/`$nin` on a field
/// other than `_id`) and then writes to the row whose internal number equals the
/// integer `_id`: the claim of notice B overwrote notice C (or failed on the
/// unique index and answered "no document"), so no notice was ever delivered.
#[tokio::test]
async fn writes_reach_their_own_document_when_ids_skip() {
    let store = store_or_skip!();
    let r = store.repositories();
    let new = |n: u32| NewNotice {
        tenant_id: TenantId(1),
        recipient: phone(n),
        kind: NoticeKind::HotspotExpired,
        deadline: t0(),
        body: format!("bye {n}"),
        created_at: t0() + Duration::seconds(i64::from(n)),
    };
    let a = r.notices.reserve(&new(1)).await.unwrap();
    assert!(r.notices.reserve(&new(1)).await.unwrap_err().is_conflict());
    let mut ids = vec![a.id];
    for n in 2..=5 {
        ids.push(r.notices.reserve(&new(n)).await.unwrap().id);
    }
    assert!(ids[1].0 > ids[0].0 + 1, "the duplicate burnt an id: {ids:?}");

    // Every pending notice is claimed, each leased in its own document.
    let now = t0() + Duration::minutes(1);
    let got: Vec<NoticeId> = r
        .notices
        .claim_pending(&claim("s", now, 10))
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(got, ids, "claimed in creation order, each once");
    for (i, id) in ids.iter().enumerate() {
        let n = r.notices.get(*id).await.unwrap();
        assert_eq!(n.recipient, phone(i as u32 + 1), "notice {id} kept its own data");
        assert_eq!(
            n.lease.map(|l| l.holder).as_deref(),
            Some("s"),
            "notice {id} is leased"
        );
    }

    // Outcomes land on their own notice and on no other.
    assert!(r.notices.mark_sent(ids[1], "s", now).await.unwrap());
    assert!(r.notices.abandon(ids[2], "s").await.unwrap());
    assert!(r
        .leases
        .retry_later(ids[3], "s", now + Duration::seconds(30))
        .await
        .unwrap());
    let status = |n: &Notice| {
        (
            n.recipient.clone(),
            n.status,
            n.lease.as_ref().map(|l| l.holder.clone()),
        )
    };
    let mut states = Vec::new();
    for id in &ids {
        states.push(status(&r.notices.get(*id).await.unwrap()));
    }
    assert_eq!(
        states,
        vec![
            (phone(1), NoticeStatus::Pending, Some("s".to_owned())),
            (phone(2), NoticeStatus::Sent, None),
            (phone(3), NoticeStatus::Abandoned, None),
            (phone(4), NoticeStatus::Pending, Some(RETRY_HOLDER.to_owned())),
            (phone(5), NoticeStatus::Pending, Some("s".to_owned())),
        ]
    );
    // A sender's expired lease is abandoned; the retry back-off is not.
    let later = now + Duration::minutes(6);
    assert_eq!(r.notices.abandon_stale(later).await.unwrap(), 2);
    assert_eq!(r.notices.count(NoticeStatus::Abandoned).await.unwrap(), 3);
    assert_eq!(r.notices.count(NoticeStatus::Pending).await.unwrap(), 1);
    let retried = r.notices.claim_pending(&claim("t", later, 10)).await.unwrap();
    assert_eq!(retried.iter().map(|n| n.id).collect::<Vec<_>>(), vec![ids[3]]);
    assert_eq!(retried[0].recipient, phone(4));
    common::drop(&store).await;
}

/// Items stored without a `hotspot_names` reservation (data from before it)
/// get one from `ensure_indexes`, so the shared namespace holds for them too;
/// two stored items that already share a name make it fail with `Conflict`.
#[tokio::test]
async fn ensure_indexes_reserves_names_of_older_items() {
    let store = store_or_skip!();
    let r = store.repositories();
    let names = store.database().collection::<Document>("hotspot_names");
    let sub = subscriber(&r, 1, t0()).await;
    assert_eq!(names.count_documents(doc! {}).await.unwrap(), 1);
    names.delete_many(doc! {}).await.unwrap(); // as if stored before
    store.ensure_indexes().await.unwrap();
    let held = names.find_one(doc! { "_id": "1/u1" }).await.unwrap().unwrap();
    let owner = match held.get("owner_id") {
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Int32(n)) => i64::from(*n),
        other => panic!("owner_id: {other:?}"),
    };
    assert_eq!(owner, sub.id.0);
    let v = NewVoucher {
        tenant_id: TenantId(1),
        router_id: RouterId(1),
        code: name("u1"),
        plan_id: PlanId(1),
        activation_deadline: None,
        purchase_deadline: None,
        duration: RosDuration::from_secs(3600),
    };
    let e = r.vouchers.insert(&v).await.unwrap_err();
    assert!(e.is_conflict() && e.to_string().contains("code"), "{e}");
    store.ensure_indexes().await.unwrap(); // idempotent

    // A second stored item with the same name, written around the adapter.
    let mut twin = raw(&store, "subscribers", sub.id.0).await;
    twin.insert("_id", sub.id.0 + 100);
    twin.insert("phone", "+255700009999");
    store
        .database()
        .collection::<Document>("subscribers")
        .insert_one(twin)
        .await
        .unwrap();
    names.delete_many(doc! {}).await.unwrap();
    let e = store.ensure_indexes().await.unwrap_err();
    assert!(e.is_conflict() && e.to_string().contains("\"u1\""), "{e}");
    common::drop(&store).await;
}

fn grant(s: &Subscriber, minutes: i64, reference: Option<&str>, routers: &[i64], holder: &str) -> GrantWrite {
    GrantWrite {
        subscriber_id: s.id,
        paid_until_seen: s.paid_until,
        paid_until: t0() + Duration::minutes(minutes),
        payment: reference.map(|r| NewPayment {
            reference: PaymentReference::parse("reference", r).unwrap(),
            amount: Money::parse("amount", "1000.5", tzs()).unwrap(),
        }),
        routers: routers.iter().map(|r| RouterId(*r)).collect(),
        holder: holder.to_owned(),
        lease_until: t0() + Duration::minutes(2),
        at: t0(),
    }
}

fn bdate(at: DateTime<Utc>) -> mongodb::bson::DateTime {
    mongodb::bson::DateTime::from_millis(at.timestamp_millis())
}

fn reference(r: &str) -> PaymentReference {
    PaymentReference::parse("reference", r).unwrap()
}

/// The payment document of a reference, raw.
async fn raw_payment(store: &MongoStore, key: &str) -> Option<Document> {
    store
        .database()
        .collection::<Document>("payments")
        .find_one(doc! { "_id": key })
        .await
        .unwrap()
}

/// A grant write records its payment on the subscriber document (the commit
/// point, under a field name safe for any reference) and in `payments`; a
/// writer that died after its subscriber update left only a reservation, which
/// the next lookup or write rolls forward; one that died before it left a
/// reservation that blocks the reference only until it is old enough to take
/// over; one still in flight makes the same reference answer `Stale`.
#[tokio::test]
async fn grant_payments_survive_writers_that_die_between_steps() {
    let store = store_or_skip!();
    let r = store.repositories();
    let payments = store.database().collection::<Document>("payments");
    let s = subscriber(&r, 1, t0()).await;

    // Stored shape; a reference with characters no field name may hold.
    let GrantWritten::Applied(after) = r
        .grants
        .write(&grant(&s, 60, Some("MP.1$x"), &[1], "a"))
        .await
        .unwrap()
    else {
        panic!("applied");
    };
    let d = raw(&store, "subscribers", s.id.0).await;
    let entry = d
        .get_document("payment_refs")
        .unwrap()
        .get_document("r4d502e312478")
        .unwrap();
    assert!(
        matches!(entry.get("paid_until"), Some(Bson::DateTime(_))),
        "{entry:?}"
    );
    // Exact money; nx-27017 hands small integers back as int32.
    assert!(
        matches!(
            entry.get("amount_micros"),
            Some(Bson::Int64(10_005_000) | Bson::Int32(10_005_000))
        ),
        "{entry:?}"
    );
    let p = raw_payment(&store, "1/MP.1$x").await.unwrap();
    assert_eq!(p.get_str("state").unwrap(), "recorded");

    // Died after the subscriber update: the payment document is still an intent.
    payments
        .update_one(
            doc! { "_id": "1/MP.1$x" },
            // The `$pull` keeps nx-27017 from storing the date as text (see the README).
            doc! {
                "$set": { "state": "intent", "token": "dead", "paid_until": bdate(t0()) },
                "$pull": { "_absent": null },
            },
        )
        .await
        .unwrap();
    let got = r
        .grants
        .payment(TenantId(1), &reference("MP.1$x"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got.paid_until,
        t0() + Duration::minutes(60),
        "from the subscriber"
    );
    assert_eq!(got.amount, Money::parse("a", "1000.5", tzs()).unwrap());
    let p = raw_payment(&store, "1/MP.1$x").await.unwrap();
    assert_eq!(p.get_str("state").unwrap(), "recorded", "rolled forward");
    let again = r
        .grants
        .write(&grant(&after, 90, Some("MP.1$x"), &[2], "b"))
        .await
        .unwrap();
    assert_eq!(again, GrantWritten::DuplicatePayment(got.clone()));

    // Died before it, long ago: nothing recorded; the next write takes it over.
    let orphan = |reference: &str, age: Duration| {
        doc! {
            "_id": format!("1/{reference}"), "tenant_id": 1_i64, "reference": reference,
            "subscriber_id": s.id.0, "amount_micros": 1_i64, "currency": "TZS",
            "paid_until": bdate(t0()), "created_at": bdate(t0()), "state": "intent", "token": "dead",
            "at": bdate(Utc::now() - age),
        }
    };
    payments
        .insert_one(orphan("MP2", Duration::minutes(5)))
        .await
        .unwrap();
    assert_eq!(
        r.grants.payment(TenantId(1), &reference("MP2")).await.unwrap(),
        None
    );
    let GrantWritten::Applied(later) = r
        .grants
        .write(&grant(&after, 120, Some("MP2"), &[], "b"))
        .await
        .unwrap()
    else {
        panic!("an orphaned reservation is taken over");
    };
    let p2 = r
        .grants
        .payment(TenantId(1), &reference("MP2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((p2.paid_until, p2.subscriber_id), (later.paid_until, s.id));

    // In flight (young): the same reference answers Stale and changes nothing.
    payments
        .insert_one(orphan("MP3", Duration::zero()))
        .await
        .unwrap();
    let stale = r
        .grants
        .write(&grant(&later, 150, Some("MP3"), &[3], "c"))
        .await
        .unwrap();
    assert_eq!(stale, GrantWritten::Stale);
    assert_eq!(
        r.subscribers.get(s.id).await.unwrap().paid_until,
        later.paid_until
    );
    assert!(r
        .grants
        .pending_of(s.id)
        .await
        .unwrap()
        .iter()
        .all(|p| p.router_id != RouterId(3)));
    assert_eq!(
        raw_payment(&store, "1/MP3")
            .await
            .unwrap()
            .get_str("token")
            .unwrap(),
        "dead"
    );
    common::drop(&store).await;
}

/// A reference is unique in its tenant across subscribers; a write that does
/// not apply removes the pending grants and the reservation it wrote, and
/// leaves an older pending grant of the same router as it was.
#[tokio::test]
async fn grant_writes_that_do_not_apply_leave_nothing_behind() {
    let store = store_or_skip!();
    let r = store.repositories();
    let s1 = subscriber(&r, 1, t0()).await;
    let s2 = subscriber(&r, 2, t0()).await;
    let GrantWritten::Applied(after) = r
        .grants
        .write(&grant(&s1, 60, Some("MP1"), &[1], "a"))
        .await
        .unwrap()
    else {
        panic!("applied");
    };
    let first = r
        .grants
        .payment(TenantId(1), &reference("MP1"))
        .await
        .unwrap()
        .unwrap();
    let other = r
        .grants
        .write(&grant(&s2, 60, Some("MP1"), &[1], "b"))
        .await
        .unwrap();
    assert_eq!(other, GrantWritten::DuplicatePayment(first));
    assert_eq!(r.subscribers.get(s2.id).await.unwrap().paid_until, t0());
    assert!(r.grants.pending_of(s2.id).await.unwrap().is_empty());

    // Stale (computed from the old paid time), with a payment and two routers.
    let stale = r
        .grants
        .write(&grant(&s1, 90, Some("MP2"), &[1, 2], "b"))
        .await
        .unwrap();
    assert_eq!(stale, GrantWritten::Stale);
    let pending = r.grants.pending_of(s1.id).await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(
        (pending[0].router_id, pending[0].lease.clone().unwrap().holder),
        (RouterId(1), "a".to_owned())
    );
    assert_eq!(raw_payment(&store, "1/MP2").await, None, "reservation released");
    let GrantWritten::Applied(_) = r
        .grants
        .write(&grant(&after, 90, Some("MP2"), &[2], "b"))
        .await
        .unwrap()
    else {
        panic!("the reference is free again");
    };

    // Without a name the write is refused, naming the field.
    let e = r
        .grants
        .write(&grant(&after, 100, None, &[1], ""))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("holder"), "{e}");
    common::drop(&store).await;
}
