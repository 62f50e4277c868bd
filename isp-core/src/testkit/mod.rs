//! The conformance suite every repository adapter runs (feature `testkit`).
//!
//! Each check is an async function, private to this module, that takes a
//! fresh, empty [`Repositories`] and panics when the adapter breaks a contract
//! of [`crate::ports`]. The one registry of checks is the list in
//! `__isp_conformance_checks!`: [`checks`] and
//! [`repository_conformance_tests!`](crate::repository_conformance_tests)
//! are both generated from it, so every backend runs every check. A check
//! function the list leaves out is dead code, a compile error here
//! (`deny(dead_code)`); a listed name without a function does not compile.
//!
//! An adapter runs the whole suite with one line in an integration test, giving
//! an expression that yields a future of a fresh `Repositories` (it is
//! evaluated once per check, so each check can get its own empty database):
//!
//! ```ignore
//! isp_core::repository_conformance_tests!(async { isp_core::memory::repositories() });
//! // or, for a crate with several backends, one module each:
//! isp_core::repository_conformance_tests!(sqlite, fresh_sqlite_repositories());
//! isp_core::repository_conformance_tests!(postgres, fresh_postgres_repositories());
//! ```
//!
//! The macro stamps out one `#[tokio::test]` (multi-thread runtime) per check
//! in a module (`repository_conformance` unless named), so the crate needs
//! `tokio` with the `macros` and `rt-multi-thread` features as a
//! dev-dependency. The factory may `return` to skip a test (a server that is
//! not there outside CI). [`run_all`] runs every check in one test instead, and
//! [`checks`] lists them for custom runners.
//!
//! Every check uses times from the fixed instant [`base_time`], whole seconds
//! only (so that stores with millisecond precision round-trip them), and creates
//! the tenants, plans, customers and subscribers its items refer to, so adapters
//! with foreign keys pass as well. Router ids are arbitrary (routers live in the
//! [`RouterDirectory`](crate::ports::RouterDirectory), not in storage).
//!
//! # What the suite checks, beyond each port's `# Contract`
//! - A lease is free when there is none or its `until <= now`; claims skip
//!   leased items, hand out items in deadline order (ties by id), at most
//!   `limit`, and never the same item to two concurrent claimants.
//! - `list_*` queries are read only and ignore leases.
//! - `LeaseRepo::retry_later_all` applies only if `holder` holds the lease; it
//!   counts an attempt and leases to [`RETRY_HOLDER`](crate::ports::RETRY_HOLDER)
//!   until the back-off ends; `release_all` clears only the holder's lease.
//!   Batch writes answer one `bool` per item, `false` for an unknown id.
//! - `mark_removed`, `mark_sent` and `NoticeRepo::abandon` apply only if
//!   `holder` holds the lease or there is none, and clear it.
//! - `mark_provisioned` and `mark_deprovisioned` are fenced: they apply only if
//!   `holder` holds the lease (expired or not), so a daemon whose lease was
//!   taken over cannot overwrite the newer result, even after the new holder
//!   marked and cleared the lease.
//! - A hotspot user name is unique per tenant across subscribers' usernames
//!   and vouchers' codes; a refused insert writes nothing.
//! - Deadlines are recomputed on every change: an activated voucher is due at
//!   its `expected_end`, not at its old activation deadline.
//! - `delete_before` / `delete_unseen_since` delete strictly before the cutoff;
//!   `abandon_stale` abandons pending notices whose non-retry lease ended
//!   strictly before `now`.
//! - Unknown ids give [`Error::NotFound`](crate::Error::NotFound) (batch writes: `false`); uniqueness
//!   rules give [`Error::Conflict`](crate::Error::Conflict), also when many
//!   writers race for the same key.

// A check function the registry does not list is never called: dead code,
// which this makes a compile error. A listed name without a function does not
// compile either.
#![deny(dead_code)]

mod audit;
mod billing;
mod counts;
mod fixtures;
mod grants;
mod hotspot;
mod leases;
mod notices;
mod radius_sessions;
mod vouchers;

use std::future::Future;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::ports::Repositories;

pub use fixtures::base_time;

use audit::*;
use billing::*;
use counts::*;
use grants::*;
use hotspot::*;
use leases::*;
use notices::*;
use radius_sessions::*;
use vouchers::*;

/// Longest a single check may run before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(120);

/// A check's entry point.
pub type CheckFn = fn(Repositories) -> BoxFuture<'static, ()>;

/// One conformance check.
#[derive(Clone, Copy)]
pub struct Check {
    /// Its name (also the name of its test function).
    pub name: &'static str,
    /// Runs it against a fresh `Repositories`; panics on failure.
    pub run: CheckFn,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Every check, in a stable order.
pub fn checks() -> Vec<Check> {
    crate::__isp_conformance_checks!(__isp_conformance_check_list!())
}

/// Runs the check `name` with [`CHECK_TIMEOUT`]; panics if it fails, times
/// out, or is not in the registry. (What the generated tests call.)
pub async fn run_check(name: &str, repos: Repositories) {
    let Some(check) = checks().into_iter().find(|c| c.name == name) else {
        panic!("no conformance check named `{name}`");
    };
    if tokio::time::timeout(CHECK_TIMEOUT, (check.run)(repos))
        .await
        .is_err()
    {
        panic!("conformance check `{name}` did not finish within {CHECK_TIMEOUT:?}");
    }
}

/// Runs every check, each on a fresh `Repositories` from `factory`, and panics
/// at the end with the list of the checks that failed (with their messages).
/// Needs a Tokio runtime.
pub async fn run_all<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Repositories>,
{
    let mut failures = Vec::new();
    let all = checks();
    let total = all.len();
    for check in all {
        let repos = factory().await;
        let task = tokio::spawn(tokio::time::timeout(CHECK_TIMEOUT, (check.run)(repos)));
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => failures.push(format!("{}: did not finish within {CHECK_TIMEOUT:?}", check.name)),
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                let msg = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panicked".to_owned());
                failures.push(format!("{}: {msg}", check.name));
            }
            Err(e) => failures.push(format!("{}: {e}", check.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} conformance checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Stamps out one `#[tokio::test]` per conformance check, each running on a
/// fresh `Repositories` from the given expression (a future, evaluated once per
/// test). See [`testkit`](crate::testkit).
///
/// ```ignore
/// isp_core::repository_conformance_tests!(async { isp_core::memory::repositories() });
/// isp_core::repository_conformance_tests!(postgres, fresh_postgres_repositories());
/// ```
#[macro_export]
macro_rules! repository_conformance_tests {
    ($module:ident, $factory:expr $(,)?) => {
        $crate::__isp_conformance_checks!(__isp_conformance_stamp_tests!($module, $factory));
    };
    ($factory:expr $(,)?) => {
        $crate::repository_conformance_tests!(repository_conformance, $factory);
    };
}

/// Internal: stamps the tests (see [`repository_conformance_tests!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __isp_conformance_stamp_tests {
    (($module:ident, $factory:expr) $($name:ident)*) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let repos = $factory.await;
                    $crate::testkit::run_check(::core::stringify!($name), repos).await;
                }
            )*
        }
    };
}

/// Internal: the check list as `Vec<Check>`.
#[doc(hidden)]
#[macro_export]
macro_rules! __isp_conformance_check_list {
    (() $($name:ident)*) => {
        ::std::vec![$(
            $crate::testkit::Check {
                name: ::core::stringify!($name),
                run: |r| ::std::boxed::Box::pin($crate::testkit::$name(r)),
            }
        ),*]
    };
}

/// Internal: the one list of check names, handed to `$callback`.
#[doc(hidden)]
#[macro_export]
macro_rules! __isp_conformance_checks {
    ($callback:ident ! ( $($args:tt)* )) => {
        $crate::$callback! { ($($args)*)
            tenants_round_trip
            audit_append_recent_delete
            router_status_round_trip
            subscribers_round_trip
            subscribers_unique_phone_per_tenant
            hotspot_names_unique_per_tenant
            hotspot_names_race
            subscribers_claim_in_deadline_order
            subscribers_claim_skips_leased_and_frees_expired
            subscribers_retry_later_backs_off
            subscribers_complete_expiry_is_compare_and_set
            subscribers_batch_expiries_and_devices
            subscribers_queries
            subscribers_concurrent_claims_are_exclusive
            devices_round_trip
            vouchers_round_trip_and_unique_code
            vouchers_activate
            vouchers_deadlines_by_status
            vouchers_claim_order_lease_and_retry
            vouchers_expire_is_compare_and_set_and_removal
            vouchers_on_router
            vouchers_concurrent_claims_are_exclusive
            plans_and_customers_round_trip
            services_round_trip
            services_provisioning_conditions
            services_provisioning_claims_and_marks
            services_late_mark_after_takeover_is_refused
            services_billing_claim_and_advance
            services_due_between
            services_concurrent_claims_are_exclusive
            ledger_idempotent_charges
            notices_unique_key
            notices_reserve_all
            notices_mark_all_sent
            notices_claim_pending
            notices_crashed_send_is_abandoned_never_resent
            notices_concurrent_claims_are_exclusive
            leases_batch_retry_and_release
            leases_renew_only_a_live_lease_of_its_holder
            grants_write_is_atomic_and_idempotent
            grants_pending_claim_complete_retry
            grants_payment_race
            plans_update_terms
            notices_subject_is_part_of_the_key
            notices_unknown_is_never_claimed_again
            subscribers_counts_are_uncapped
            services_charge_batch_records_each_charge_once
            services_charge_batch_after_partial_billing
            services_charge_batch_reports_unknown_and_bad_input
            services_charge_due_bills_in_order_and_resumes
            services_charge_due_refuses_bad_plans
            services_concurrent_charge_due_bills_once
            radius_sessions_start_interim_stop
            radius_sessions_queries_close_and_retention
        }
    };
}
