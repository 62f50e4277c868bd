//! MySQL / MariaDB: the conformance suite of isp-core, claims by two pools at
//! once, and what SQL adds (schema rules, exact storage, migrations, error
//! mapping).
//!
//! The server comes from `support::mariadb` (isp-testsupport): `ISP_TEST_MYSQL_URL`,
//! or a throwaway MariaDB started for this test binary (installed first when
//! missing) and stopped when it exits. Each test gets its own database. Without
//! MariaDB the tests fail, unless `ISP_TEST_SKIP=mariadb` (they then print a
//! SKIPPED line).

mod support;

use std::collections::HashSet;
use std::time::Duration;

use chrono::Duration as Span;
use isp_adapters_sql::{Backend, SqlOptions, SqlStore};
use isp_core::domain::*;

use support::{checks, mariadb};

/// A migrated store on a fresh database, or `None` when MariaDB is skipped.
async fn store() -> Option<SqlStore> {
    let url = mariadb::fresh_database().await?;
    Some(connect(&url).await)
}

async fn connect(url: &str) -> SqlStore {
    let options = SqlOptions {
        max_connections: 6,
        ..SqlOptions::default()
    };
    let store = SqlStore::connect_with(url, options)
        .await
        .expect("connect to MariaDB");
    store.migrate().await.expect("migrate");
    store
}

// The conformance suite of isp-core, one test per check, each on its own
// database. `return` skips that test only when ISP_TEST_SKIP names mariadb.
isp_core::repository_conformance_tests!(
    conformance,
    match store().await {
        Some(store) => std::future::ready(store.repositories()),
        None => return,
    }
);

#[tokio::test]
async fn urls_name_the_backend() {
    let Some(url) = mariadb::fresh_database().await else {
        return;
    };
    let store = SqlStore::connect(&url).await.expect("mysql://");
    assert_eq!(store.backend(), Backend::Mysql);
    let store = SqlStore::connect(&url.replacen("mysql://", "mariadb://", 1))
        .await
        .expect("mariadb://");
    assert_eq!(store.backend(), Backend::Mysql);
    store.migrate().await.expect("migrate");
    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(store.mysql_pool().expect("pool"))
        .await
        .expect("version");
    support::say(&format!("MariaDB under test: {version}"));
}

/// Two daemons (two pools) claiming the same due work at once: every item is
/// claimed exactly once, and a dead daemon's items come back when its lease ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pools_claim_each_item_exactly_once() {
    let Some(url) = mariadb::fresh_database().await else {
        return;
    };
    let a = connect(&url).await;
    let b = connect(&url).await;
    const N: i64 = 3_000;
    let now = checks::t0();
    let mut conn = a.mysql_pool().expect("pool").acquire().await.expect("connection");
    sqlx::query("SET SESSION max_recursive_iterations = 1000000")
        .execute(&mut *conn)
        .await
        .expect("allow a long sequence");
    sqlx::query(
        "INSERT INTO subscribers (tenant_id, phone, username, paid_until) \
         WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?) \
         SELECT 1, CONCAT('+2557', LPAD(i, 8, '0')), CONCAT('u', i), ? - INTERVAL i SECOND FROM seq",
    )
    .bind(N)
    .bind(now)
    .execute(&mut *conn)
    .await
    .expect("load subscribers");
    sqlx::query(
        "INSERT INTO notices (tenant_id, recipient, kind, deadline, body, created_at) \
         WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?) \
         SELECT 1, CONCAT('+2557', LPAD(i, 8, '0')), 'payment_due', ?, 'due', ? - INTERVAL i SECOND FROM seq",
    )
    .bind(N)
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await
    .expect("load notices");
    drop(conn);
    let mut tasks = Vec::new();
    for (d, store) in [&a, &b].into_iter().enumerate() {
        for t in 0..4 {
            let repos = store.repositories();
            tasks.push(tokio::spawn(async move {
                let holder = format!("daemon-{d}-task-{t}");
                let mut subs = Vec::new();
                let mut notices = Vec::new();
                loop {
                    let claim = Claim {
                        holder: holder.clone(),
                        now,
                        until: now + Span::minutes(5),
                        limit: 37,
                    };
                    let s = repos
                        .subscribers
                        .claim_expired(&claim)
                        .await
                        .expect("claim subscribers");
                    let n = repos.notices.claim_pending(&claim).await.expect("claim notices");
                    if s.is_empty() && n.is_empty() {
                        break;
                    }
                    assert!(s
                        .iter()
                        .all(|x| x.lease.as_ref().is_some_and(|l| l.holder == holder)));
                    assert!(n
                        .iter()
                        .all(|x| x.lease.as_ref().is_some_and(|l| l.holder == holder)));
                    subs.extend(s.into_iter().map(|x| x.id));
                    notices.extend(n.into_iter().map(|x| x.id));
                }
                (subs, notices)
            }));
        }
    }
    let mut subs = Vec::new();
    let mut notices = Vec::new();
    for t in tasks {
        let (s, n) = t.await.expect("claimer");
        subs.extend(s);
        notices.extend(n);
    }
    let unique: HashSet<_> = subs.iter().collect();
    assert_eq!(unique.len(), subs.len(), "a subscriber was claimed twice");
    assert_eq!(subs.len() as i64, N, "every due subscriber is claimed");
    let unique: HashSet<_> = notices.iter().collect();
    assert_eq!(unique.len(), notices.len(), "a notice was claimed twice");
    assert_eq!(notices.len() as i64, N, "every pending notice is claimed");

    // Nothing is free until the leases end; then another daemon takes over.
    let later = |minutes| Claim {
        holder: "daemon-2".to_owned(),
        now: now + Span::minutes(minutes),
        until: now + Span::minutes(minutes + 5),
        limit: 10_000,
    };
    let repos = b.repositories();
    assert!(repos
        .subscribers
        .claim_expired(&later(4))
        .await
        .expect("claim")
        .is_empty());
    assert_eq!(
        repos
            .subscribers
            .claim_expired(&later(5))
            .await
            .expect("claim")
            .len() as i64,
        N
    );
}

#[tokio::test]
async fn migrations_idempotent_and_newer_schema_refused() {
    if let Some(s) = store().await {
        checks::migrations_idempotent_and_newer_schema_refused(s).await;
    }
}

#[tokio::test]
async fn concurrent_migrations_are_serialized() {
    let Some(url) = mariadb::fresh_database().await else {
        return;
    };
    let stores = futures::future::join_all((0..3).map(|_| SqlStore::connect(&url))).await;
    let runs = futures::future::join_all(
        stores
            .iter()
            .map(|s| async { s.as_ref().expect("connect").migrate().await }),
    )
    .await;
    for r in runs {
        r.expect("every concurrent migrate succeeds");
    }
}

#[tokio::test]
async fn one_charge_per_service_and_period() {
    if let Some(s) = store().await {
        checks::one_charge_per_service_and_period(s).await;
    }
}

#[tokio::test]
async fn one_notice_per_recipient_kind_deadline() {
    if let Some(s) = store().await {
        checks::one_notice_per_recipient_kind_deadline(s).await;
    }
}

#[tokio::test]
async fn money_instants_and_dates_are_exact() {
    if let Some(s) = store().await {
        checks::money_instants_and_dates_are_exact(s).await;
    }
}

#[tokio::test]
async fn bad_stored_values_are_invalid_input() {
    if let Some(s) = store().await {
        checks::bad_stored_values_are_invalid_input(s).await;
    }
}

#[tokio::test]
async fn due_work_plans_use_their_indexes() {
    if let Some(s) = store().await {
        checks::due_work_plans_use_their_indexes(s, 50_000).await;
    }
}

/// Text is utf8mb4 (four-byte characters survive) and compares exactly.
#[tokio::test]
async fn text_is_utf8mb4_and_exact() {
    let Some(store) = store().await else {
        return;
    };
    let repos = store.repositories();
    let body = "Malipo yamepokelewa \u{1F4B8} asante";
    let created = checks::t0();
    let ids = repos
        .notices
        .reserve_all(&[NewNotice {
            tenant_id: TenantId(1),
            recipient: PhoneNumber::parse("phone", "+255700000009").expect("phone"),
            kind: NoticeKind::parse("kind", "payment_due").expect("kind"),
            deadline: created,
            subject: String::new(),
            body: body.to_owned(),
            created_at: created,
        }])
        .await
        .expect("reserve");
    let id = ids[0].expect("inserted");
    assert_eq!(repos.notices.get(id).await.expect("get").body, body);
    let sub = |username: &str, phone: &str| NewSubscriber {
        tenant_id: TenantId(1),
        phone: PhoneNumber::parse("phone", phone).expect("phone"),
        username: RosName::parse("username", username).expect("name"),
        paid_until: created,
    };
    repos
        .subscribers
        .insert(&sub("alice", "+255700000001"))
        .await
        .expect("alice");
    // Another case is another hotspot user, as on the router.
    repos
        .subscribers
        .insert(&sub("Alice", "+255700000002"))
        .await
        .expect("Alice is not alice");
    let e = repos
        .subscribers
        .insert(&sub("alice", "+255700000003"))
        .await
        .expect_err("alice is taken");
    assert!(e.is_conflict(), "{e:?}");
    assert!(e.to_string().contains("alice"), "{e}");
}

#[tokio::test]
async fn unreachable_server_is_unavailable_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("mysql://isp:hunter2-secret@127.0.0.1:{port}/isp");
    let options = SqlOptions {
        acquire_timeout: Duration::from_secs(2),
        ..SqlOptions::default()
    };
    let e = SqlStore::connect_with(&url, options)
        .await
        .expect_err("nobody listens");
    assert!(e.is_transient(), "{e:?}");
    assert!(
        !checks::error_text(&e).contains("hunter2"),
        "{}",
        checks::error_text(&e)
    );

    let e = SqlStore::connect("mariadb://isp:hunter2-secret@[::1/isp")
        .await
        .expect_err("bad URL");
    assert!(
        !checks::error_text(&e).contains("hunter2"),
        "{}",
        checks::error_text(&e)
    );
}

#[tokio::test]
async fn wrong_password_is_authentication_without_the_password() {
    let Some(url) = mariadb::fresh_database().await else {
        return;
    };
    let wrong = url.replacen(":isp@", ":hunter2-secret@", 1);
    assert_ne!(wrong, url, "the harness URL carries the password");
    let e = SqlStore::connect(&wrong).await.expect_err("wrong password");
    assert!(matches!(e, isp_core::Error::Authentication { .. }), "{e:?}");
    assert!(!checks::error_text(&e).contains("hunter2"));
}

#[tokio::test]
async fn pool_exhaustion_is_unavailable_and_debug_hides_password() {
    let Some(url) = mariadb::fresh_database().await else {
        return;
    };
    let options = SqlOptions {
        max_connections: 1,
        acquire_timeout: Duration::from_secs(3),
        ..SqlOptions::default()
    };
    let store = SqlStore::connect_with(&url, options).await.expect("connect");
    store.migrate().await.expect("migrate");
    // The harness's password is `isp`: Debug must show `***` in its place.
    let debug = format!("{store:?}");
    assert!(debug.contains("isp:***@"), "{debug}");
    let _held = store
        .mysql_pool()
        .expect("pool")
        .acquire()
        .await
        .expect("take the only connection");
    let e = store
        .repositories()
        .tenants
        .list()
        .await
        .expect_err("no connection free");
    assert!(e.is_transient(), "{e:?}");
}

/// `SqlOptions::lock_timeout` is MySQL's `innodb_lock_wait_timeout` (whole
/// seconds): a write waiting on a row lock held elsewhere fails transient once
/// it passes, and goes through once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_timeout_frees_a_write_waiting_on_a_held_lock() {
    let Some(url) = mariadb::fresh_database().await else {
        return;
    };
    let options = SqlOptions {
        max_connections: 4,
        lock_timeout: Duration::from_secs(1),
        ..SqlOptions::default()
    };
    let store = SqlStore::connect_with(&url, options).await.expect("connect");
    store.migrate().await.expect("migrate");
    let repos = store.repositories();
    let sub = repos
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: TenantId(1),
            phone: PhoneNumber::parse("phone", "+255700000001").expect("phone"),
            username: RosName::parse("username", "locked").expect("name"),
            paid_until: checks::t0(),
        })
        .await
        .expect("insert subscriber");
    let other = sqlx::MySqlPool::connect(&url).await.expect("second pool");
    let mut lock = other.begin().await.expect("begin");
    sqlx::query("SELECT id FROM subscribers WHERE id = ? FOR UPDATE")
        .bind(sub.id.0)
        .fetch_one(&mut *lock)
        .await
        .expect("lock the row");
    let started = std::time::Instant::now();
    let write = repos.subscribers.extend(sub.id, checks::t0() + Span::days(1));
    let e = tokio::time::timeout(Duration::from_secs(20), write)
        .await
        .expect("the write must not hang on a held lock")
        .expect_err("a held row lock outlasts the timeout");
    assert!(e.is_transient(), "expected a transient error, got {e:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1) && started.elapsed() < Duration::from_secs(10),
        "failed after {:?}",
        started.elapsed()
    );
    lock.rollback().await.expect("release the lock");
    let got = repos
        .subscribers
        .extend(sub.id, checks::t0() + Span::days(1))
        .await
        .expect("the lock is gone: the write goes through");
    assert_eq!(got.paid_until, checks::t0() + Span::days(1));
}
