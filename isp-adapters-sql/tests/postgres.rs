//! PostgreSQL: the conformance suite of isp-core, claims by two pools at once,
//! and what SQL adds (schema rules, exact storage, migrations, error mapping,
//! query plans).
//!
//! The server comes from `support::pg` (isp-testsupport): `ISP_TEST_POSTGRES_URL`,
//! or a throwaway PostgreSQL 15 cluster started for this test binary and stopped
//! when it exits. Each test gets its own database. Without PostgreSQL the tests
//! fail, unless `ISP_TEST_SKIP=postgres` (they then print a SKIPPED line).

mod support;

use std::collections::HashSet;
use std::time::Duration;

use chrono::Duration as Span;
use isp_adapters_sql::{SqlOptions, SqlStore};
use isp_core::domain::*;

use support::{checks, pg};

/// A migrated store on a fresh database, or `None` when PostgreSQL is unavailable.
async fn store() -> Option<SqlStore> {
    let url = pg::fresh_database().await?;
    Some(connect(&url).await)
}

async fn connect(url: &str) -> SqlStore {
    let options = SqlOptions {
        max_connections: 6,
        ..SqlOptions::default()
    };
    let store = SqlStore::connect_with(url, options)
        .await
        .expect("connect to PostgreSQL");
    store.migrate().await.expect("migrate");
    store
}

// The conformance suite of isp-core, one test per check, each on its own
// database. The factory runs inside each generated test: `return` skips that
// test when PostgreSQL is unavailable outside CI (`support::pg` says why; with
// CI=true it fails instead).
isp_core::repository_conformance_tests!(
    conformance,
    match store().await {
        Some(store) => std::future::ready(store.repositories()),
        None => return,
    }
);

/// Two daemons (two pools) claiming the same due work at once: every item is
/// claimed exactly once, and a dead daemon's items come back when its lease ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pools_claim_each_item_exactly_once() {
    let Some(url) = pg::fresh_database().await else {
        return;
    };
    let a = connect(&url).await;
    let b = connect(&url).await;
    const N: i64 = 3_000;
    let now = checks::t0();
    let pool = a.postgres_pool().expect("pool");
    sqlx::query(
        "INSERT INTO subscribers (tenant_id, phone, username, paid_until) \
         SELECT 1, '+2557' || lpad(i::text, 8, '0'), 'u' || i, $2 - i * interval '1 second' \
         FROM generate_series(1, $1) AS i",
    )
    .bind(N)
    .bind(now)
    .execute(pool)
    .await
    .expect("load subscribers");
    sqlx::query(
        "INSERT INTO notices (tenant_id, recipient, kind, deadline, body, created_at) \
         SELECT 1, '+2557' || lpad(i::text, 8, '0'), 'payment_due', $2, 'due', $2 - i * interval '1 second' \
         FROM generate_series(1, $1) AS i",
    )
    .bind(N)
    .bind(now)
    .execute(pool)
    .await
    .expect("load notices");
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
    let Some(url) = pg::fresh_database().await else {
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

#[tokio::test]
async fn unreachable_server_is_unavailable_without_the_password() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("postgres://isp:hunter2-secret@127.0.0.1:{port}/isp");
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

    let e = SqlStore::connect("postgres://isp:hunter2-secret@[::1/isp")
        .await
        .expect_err("bad URL");
    assert!(
        !checks::error_text(&e).contains("hunter2"),
        "{}",
        checks::error_text(&e)
    );
}

#[tokio::test]
async fn pool_exhaustion_is_unavailable_and_debug_hides_password() {
    let Some(url) = pg::fresh_database().await else {
        return;
    };
    // The same server with a password in the URL (trust auth ignores it).
    let with_password = url.replacen("postgres@", "postgres:hunter2-secret@", 1);
    let options = SqlOptions {
        max_connections: 1,
        // Long enough for a first connection on a loaded machine (300 ms was
        // not), short enough for the test.
        acquire_timeout: Duration::from_secs(3),
        ..SqlOptions::default()
    };
    let store = SqlStore::connect_with(&with_password, options)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    checks::debug_hides_password(&store, "hunter2");
    let _held = store
        .postgres_pool()
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
    assert!(!checks::error_text(&e).contains("hunter2"));
}

/// A store on `url` with short PostgreSQL timeouts, and a subscriber in it.
async fn store_with_timeouts(url: &str, statement: Duration, lock: Duration) -> (SqlStore, Subscriber) {
    let options = SqlOptions {
        max_connections: 4,
        statement_timeout: statement,
        lock_timeout: lock,
        ..SqlOptions::default()
    };
    let store = SqlStore::connect_with(url, options).await.expect("connect");
    store.migrate().await.expect("migrate");
    let sub = store
        .repositories()
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: TenantId(1),
            phone: PhoneNumber::parse("phone", "+255700000001").expect("phone"),
            username: RosName::parse("username", "locked").expect("name"),
            paid_until: checks::t0(),
        })
        .await
        .expect("insert subscriber");
    (store, sub)
}

/// Holds a row lock on `sub` from another connection (not the store's pool)
/// until the returned transaction is dropped.
async fn lock_row(url: &str, sub: &Subscriber) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let other = sqlx::PgPool::connect(url).await.expect("second pool");
    let mut tx = other.begin().await.expect("begin");
    sqlx::query("SELECT id FROM subscribers WHERE id = $1 FOR UPDATE")
        .bind(sub.id.0)
        .fetch_one(&mut *tx)
        .await
        .expect("lock the row");
    tx
}

/// Runs a repository write on the locked row: it must fail with a transient
/// error soon after `timeout`, never hang.
async fn write_on_locked_row_fails_transient(store: &SqlStore, sub: &Subscriber, timeout: Duration) {
    let started = std::time::Instant::now();
    let repos = store.repositories();
    let write = repos.subscribers.extend(sub.id, checks::t0() + Span::days(1));
    let e = tokio::time::timeout(Duration::from_secs(20), write)
        .await
        .expect("the write must not hang on a held lock")
        .expect_err("a held row lock outlasts the timeout");
    assert!(e.is_transient(), "expected a transient error, got {e:?}");
    assert!(
        started.elapsed() >= timeout && started.elapsed() < Duration::from_secs(10),
        "failed after {:?}, the timeout is {timeout:?}",
        started.elapsed()
    );
}

/// `SqlOptions::statement_timeout` is set on every pooled connection: a write
/// waiting on a lock held elsewhere (lock timeout off) is cancelled by the
/// server (SQLSTATE 57014) and surfaces as transient `Unavailable`; so is a
/// plain slow statement on the store's pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_frees_a_stalled_statement() {
    let Some(url) = pg::fresh_database().await else {
        return;
    };
    let timeout = Duration::from_millis(500);
    let (store, sub) = store_with_timeouts(&url, timeout, Duration::ZERO).await;
    let _lock = lock_row(&url, &sub).await;
    write_on_locked_row_fails_transient(&store, &sub, timeout).await;

    let pool = store.postgres_pool().expect("pool");
    for _ in 0..4 {
        // Every connection of the pool, not only the first.
        let e = sqlx::query("SELECT pg_sleep(5)")
            .execute(pool)
            .await
            .expect_err("pg_sleep(5) outlasts a 500 ms statement timeout");
        let e = isp_adapters_sql::postgres::map_sqlx_error("database", e);
        assert!(e.is_transient(), "{e:?}");
    }
    let setting: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(pool)
        .await
        .expect("show");
    assert_eq!(setting, "500ms");
}

/// `SqlOptions::lock_timeout`: a write waiting on a row lock held elsewhere
/// fails (SQLSTATE 55P03, transient) once the lock timeout passes, well before
/// the statement timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_timeout_frees_a_write_waiting_on_a_held_lock() {
    let Some(url) = pg::fresh_database().await else {
        return;
    };
    let timeout = Duration::from_millis(400);
    let (store, sub) = store_with_timeouts(&url, Duration::from_secs(60), timeout).await;
    let lock = lock_row(&url, &sub).await;
    write_on_locked_row_fails_transient(&store, &sub, timeout).await;
    lock.rollback().await.expect("release the lock");
    let got = store
        .repositories()
        .subscribers
        .extend(sub.id, checks::t0() + Span::days(1))
        .await
        .expect("the lock is gone: the write goes through");
    assert_eq!(got.paid_until, checks::t0() + Span::days(1));
}

/// The defaults bound every statement (a daemon never waits forever).
#[test]
fn default_timeouts_are_set() {
    let o = SqlOptions::default();
    assert_eq!(o.statement_timeout, Duration::from_secs(30));
    assert_eq!(o.lock_timeout, Duration::from_secs(10));
}
