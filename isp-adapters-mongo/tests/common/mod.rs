//! Test harness: a store on a fresh database of this test binary's server.
//!
//! The server comes from [`isp_testsupport::mongo`]: `MONGODB_URL` (a real MongoDB),
//! else nx-27017 from PyPI in a venv, started once per test binary and stopped when it
//! exits. When there is no server the tests fail with the reason, unless
//! `ISP_TEST_SKIP` names `mongo` (they then print a `SKIPPED` line and return).
//!
//! Each test gets a database `isp_t<unix seconds>_<pid>_<n>`; against a real MongoDB,
//! the first test of each binary drops such databases older than an hour (left by the
//! conformance checks of earlier runs, which cannot drop their own).

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, Ordering};

use isp_adapters_mongo::MongoStore;
use isp_testsupport::mongo;
use isp_testsupport::skip::say;

static CLEANED: AtomicBool = AtomicBool::new(false);

/// Test databases older than this are dropped (real MongoDB only).
const STALE_AFTER_SECS: u64 = 3600;

/// The server's URL; `None` when `ISP_TEST_SKIP` names `mongo`.
pub fn server_url() -> Option<String> {
    mongo::server_url()
}

/// True when the tests run against nx-27017 rather than a real MongoDB.
pub fn is_nx() -> bool {
    !mongo::is_external()
}

/// A fresh database name for one test.
pub fn fresh_db_name() -> String {
    mongo::fresh_db_name()
}

/// A connected store on a fresh database, indexes created; `None` = skipped.
pub async fn store() -> Option<MongoStore> {
    let url = server_url()?;
    let store = MongoStore::connect(&url, &fresh_db_name())
        .await
        .expect("connect to the test server");
    store.ensure_indexes().await.expect("ensure_indexes");
    if !is_nx() && !CLEANED.swap(true, Ordering::SeqCst) {
        drop_stale_databases(&store).await;
    }
    Some(store)
}

/// Drops test databases older than [`STALE_AFTER_SECS`].
async fn drop_stale_databases(store: &MongoStore) {
    let client = store.database().client();
    let names = match client.list_database_names().await {
        Ok(n) => n,
        Err(e) => {
            say(&format!(
                "isp-adapters-mongo tests: cannot list databases to clean up: {e}"
            ));
            return;
        }
    };
    for name in names {
        if mongo::is_stale_test_db(&name, STALE_AFTER_SECS) {
            if let Err(e) = client.database(&name).drop().await {
                say(&format!(
                    "isp-adapters-mongo tests: cannot drop stale {name}: {e}"
                ));
            }
        }
    }
}

/// Every repository on a fresh database; `None` = skipped.
pub async fn repositories() -> Option<isp_core::ports::Repositories> {
    Some(store().await?.repositories())
}

/// Drops the test's database (call at the end of a passing test).
pub async fn drop(store: &MongoStore) {
    store.database().drop().await.expect("drop the test database");
}
