//! The shared conformance suite of `isp-core` (one test per check), each check
//! on a fresh database of a real MongoDB wire-protocol server (see `common`).

mod common;

// The factory expression is evaluated inside each generated test function, so
// `return` there skips that test (after `common` printed a SKIPPED line) when
// ISP_TEST_SKIP names mongo; without it, no server fails the test.
isp_core::repository_conformance_tests!(
    mongodb,
    match common::repositories().await {
        Some(repos) => std::future::ready(repos),
        None => return,
    }
);
