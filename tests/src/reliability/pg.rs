//! A throwaway PostgreSQL cluster that a test can stop and start again (the
//! "database briefly unavailable" scenarios): isp-testsupport's [`Cluster`](Pg).
//!
//! [`Pg::start`] returns the reason when PostgreSQL cannot start (at once when
//! `ISP_TEST_SKIP` names `postgres`); [`skip_or_fail`] then fails the scenario, or
//! skips it with a visible `SKIPPED` line when the runner opted out.

pub use isp_testsupport::pg::{skip_or_fail, Cluster as Pg};
