//! The repository conformance suite against the in-memory adapters.
//!
//! Runs with `cargo test -p isp-core --features testkit` (CI uses
//! `--all-features`); without the feature this file compiles to nothing.
#![cfg(feature = "testkit")]

isp_core::repository_conformance_tests!(async { isp_core::memory::repositories() });

/// The same suite through [`isp_core::testkit::run_all`], over one store per check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_passes_on_memory() {
    isp_core::testkit::run_all(|| async { isp_core::memory::repositories() }).await;
}

/// Every check is stamped out by the macro and listed by `checks()` under a unique name.
#[test]
fn check_names_are_unique() {
    let mut names: Vec<&str> = isp_core::testkit::checks().iter().map(|c| c.name).collect();
    let total = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), total);
    assert!(total >= 30, "only {total} checks");
}
