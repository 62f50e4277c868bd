//! SQLite: the conformance suite of isp-core (in memory and on a WAL file),
//! and what SQL adds: schema rules, exact storage, migrations, error mapping,
//! query plans.

mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use isp_adapters_sql::{SqlOptions, SqlStore};
use isp_core::ports::Repositories;

use support::checks;

/// A migrated, private in-memory database.
async fn memory_store() -> SqlStore {
    let store = SqlStore::connect_sqlite_memory()
        .await
        .expect("open in-memory SQLite");
    store.migrate().await.expect("migrate");
    store
}

/// This process's scratch directory (stale ones of dead test processes are removed).
fn scratch_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::temp_dir();
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("isp-sql-test-") {
                    if !PathBuf::from(format!("/proc/{pid}")).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let dir = base.join(format!("isp-sql-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    })
}

/// A migrated database in a new file (WAL, a pool of several connections).
async fn file_store() -> SqlStore {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let path = scratch_dir().join(format!("db-{}.sqlite", SEQ.fetch_add(1, Ordering::Relaxed)));
    let store = SqlStore::connect_sqlite(&path).await.expect("open SQLite file");
    store.migrate().await.expect("migrate");
    store
}

async fn memory_repositories() -> Repositories {
    memory_store().await.repositories()
}

async fn file_repositories() -> Repositories {
    file_store().await.repositories()
}

isp_core::repository_conformance_tests!(conformance_memory, crate::memory_repositories());
isp_core::repository_conformance_tests!(conformance_file, crate::file_repositories());

#[tokio::test]
async fn migrations_idempotent_and_newer_schema_refused() {
    checks::migrations_idempotent_and_newer_schema_refused(file_store().await).await;
}

#[tokio::test]
async fn one_charge_per_service_and_period() {
    checks::one_charge_per_service_and_period(memory_store().await).await;
}

#[tokio::test]
async fn one_notice_per_recipient_kind_deadline() {
    checks::one_notice_per_recipient_kind_deadline(memory_store().await).await;
}

#[tokio::test]
async fn money_instants_and_dates_are_exact() {
    checks::money_instants_and_dates_are_exact(memory_store().await).await;
}

#[tokio::test]
async fn bad_stored_values_are_invalid_input() {
    checks::bad_stored_values_are_invalid_input(memory_store().await).await;
}

#[tokio::test]
async fn due_work_plans_use_their_indexes() {
    checks::due_work_plans_use_their_indexes(file_store().await, 20_000).await;
}

#[tokio::test]
async fn file_is_created_on_first_use_in_wal_mode() {
    let path = scratch_dir().join("created-on-first-use.sqlite");
    let _ = std::fs::remove_file(&path);
    let store = SqlStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("connect by URL");
    assert!(path.exists(), "the file is created");
    store.migrate().await.expect("migrate");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.sqlite_pool().expect("pool"))
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
    store.close().await;
    // Reopening finds the schema in place.
    let again = SqlStore::connect_sqlite(&path).await.expect("reopen");
    again.migrate().await.expect("migrate again");
    again.repositories().tenants.list().await.expect("list");
}

#[tokio::test]
async fn a_held_write_lock_is_a_transient_unavailable() {
    let path = scratch_dir().join("busy.sqlite");
    let _ = std::fs::remove_file(&path);
    let options = SqlOptions {
        busy_timeout: Duration::from_millis(100),
        ..SqlOptions::default()
    };
    let store = SqlStore::connect_sqlite_with(&path, options.clone())
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let other = SqlStore::connect_sqlite_with(&path, options)
        .await
        .expect("open again");
    let mut holder = other.sqlite_pool().expect("pool").acquire().await.expect("conn");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *holder)
        .await
        .expect("take the write lock");
    let e = store
        .repositories()
        .audit
        .delete_before(checks::t0())
        .await
        .expect_err("the write lock is held elsewhere");
    assert!(e.is_transient(), "{e:?}");
    sqlx::query("ROLLBACK")
        .execute(&mut *holder)
        .await
        .expect("release");
    assert_eq!(
        store
            .repositories()
            .audit
            .delete_before(checks::t0())
            .await
            .expect("free again"),
        0
    );
}

#[tokio::test]
async fn a_closed_store_is_unavailable_and_bad_urls_are_invalid_input() {
    let store = memory_store().await;
    store.close().await;
    let e = store.repositories().tenants.list().await.expect_err("closed");
    assert!(e.is_transient(), "{e:?}");

    let e = SqlStore::connect("oracle://root:hunter2@localhost/isp")
        .await
        .expect_err("unsupported scheme");
    assert!(
        matches!(e, isp_core::Error::InvalidInput { ref field, .. } if field == "database_url"),
        "{e:?}"
    );
    assert!(!checks::error_text(&e).contains("hunter2"), "{e:?}");

    let e = SqlStore::connect_sqlite("/nonexistent-dir/deeper/isp.sqlite")
        .await
        .expect_err("cannot create the file");
    assert!(e.is_transient(), "{e:?}");
}

/// Two processes starting on a new SQLite file migrate at once (here: eight
/// stores with their own pools): every one succeeds, the schema is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrations_of_a_new_file_all_succeed() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("race.sqlite");
    let mut stores = Vec::new();
    for _ in 0..8 {
        stores.push(SqlStore::connect_sqlite(&path).await.expect("connect"));
    }
    let runs = stores.iter().map(|s| s.migrate());
    for r in futures::future::join_all(runs).await {
        r.expect("every concurrent migration succeeds");
    }
    for s in &stores {
        s.migrate().await.expect("and again");
        s.repositories().tenants.list().await.expect("schema usable");
    }
}
