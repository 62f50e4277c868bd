//! Test support shared by the isp crates (never published).
//!
//! - [`pg`]: a throwaway PostgreSQL cluster (one per test binary, a fresh database per
//!   test), or one a test owns and can stop and start again.
//! - [`mariadb`]: a throwaway MariaDB server (one per test binary, a fresh database per
//!   test).
//! - [`mongo`]: a MongoDB-protocol server, `nx-27017` from PyPI in a Python venv.
//! - [`radius_tools`]: FreeRADIUS's `radclient` and `radtest` (Debian's
//!   `freeradius-utils`), installed with apt when missing.
//! - [`browser`]: headless Chromium under `chromedriver` (installed with apt-get when
//!   missing), for the console's browser tests.
//! - [`bulk`]: realistic due-work tables loaded straight in SQL, for query-plan tests and
//!   benchmarks.
//! - [`skip`]: no silent skips. A test that needs a server starts it, and fails with the
//!   reason when it cannot. Only an explicit `ISP_TEST_SKIP=postgres,mongo,browser` (a comma list)
//!   lets such tests pass without running; each one then writes
//!   `SKIPPED: <test> needs <suite> (ISP_TEST_SKIP)` to the process's stderr, which
//!   libtest does not capture (its capture only redirects the `print!` family).

pub mod browser;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub mod bulk;
pub mod mariadb;
pub mod mongo;
pub mod pg;
pub mod radius_tools;
pub mod skip;
