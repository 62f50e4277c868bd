//! The runtime's metrics, through the `metrics` facade: whatever recorder the
//! embedder installs (Prometheus in `ispd`) receives them; with none installed
//! they cost next to nothing.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `ispd_job_runs_total` | `job`, `outcome` (`ok`, `failures`, `error`) | job runs |
//! | `ispd_job_items_total` | `job`, `item` (`users_disconnected`, ...) | items processed |
//! | `ispd_job_failures_total` | `job` | failed items |
//! | `ispd_job_duration_seconds` | `job` | run time |
//! | `ispd_router_call_duration_seconds` | `router`, `op` | router latency ([`MeteredDriver`](super::MeteredDriver)) |
//! | `ispd_router_call_errors_total` | `router`, `op`, `kind` | router errors |
//! | `ispd_enforcement_lag_seconds` | | deadline to the watcher acting on it |
//! | `ispd_watcher_next_wakeup_seconds` | | seconds until the watcher's next deadline |
//! | `ispd_expired_still_connected` | | expired subscribers not yet confirmed disconnected (at the last health summary) |
//! | `ispd_notices_outcome_unknown` | | notices whose send's outcome is unknown (at the last health summary) |
//!
//! The names keep the `ispd_` prefix they had when the runtime lived in the
//! daemon, so existing dashboards and alerts keep working.

use std::time::Duration;

use crate::jobs::{HealthSummary, JobReport};

/// Describes every metric above to the installed recorder (units, help texts).
pub fn describe() {
    metrics::describe_counter!("ispd_job_runs_total", "Job runs by outcome");
    metrics::describe_counter!("ispd_job_items_total", "Items processed by jobs, by kind");
    metrics::describe_counter!("ispd_job_failures_total", "Failed items in job runs");
    metrics::describe_histogram!(
        "ispd_job_duration_seconds",
        metrics::Unit::Seconds,
        "Job run time"
    );
    metrics::describe_histogram!(
        "ispd_router_call_duration_seconds",
        metrics::Unit::Seconds,
        "Router command latency"
    );
    metrics::describe_counter!("ispd_router_call_errors_total", "Router command errors");
    metrics::describe_histogram!(
        "ispd_enforcement_lag_seconds",
        metrics::Unit::Seconds,
        "Time from a deadline to the watcher acting on it"
    );
    metrics::describe_gauge!(
        "ispd_watcher_next_wakeup_seconds",
        "Seconds until the watcher's next deadline"
    );
    metrics::describe_gauge!(
        "ispd_notices_outcome_unknown",
        "Notices whose send's outcome is unknown (never resent)"
    );
}

/// Records the totals of a health summary as gauges.
pub fn record_health(summary: &HealthSummary) {
    metrics::gauge!("ispd_expired_still_connected").set(summary.expired_but_still_active as f64);
    metrics::gauge!("ispd_notices_outcome_unknown").set(summary.notices_outcome_unknown as f64);
}

/// Records a finished run.
pub fn record_report(report: &JobReport, elapsed: Duration) {
    let job = report.job.name();
    let outcome = if report.failures.is_empty() {
        "ok"
    } else {
        "failures"
    };
    metrics::counter!("ispd_job_runs_total", "job" => job, "outcome" => outcome).increment(1);
    metrics::histogram!("ispd_job_duration_seconds", "job" => job).record(elapsed.as_secs_f64());
    if !report.dry_run {
        for (k, v) in &report.counts {
            metrics::counter!("ispd_job_items_total", "job" => job, "item" => k.clone()).increment(*v);
        }
    }
    metrics::counter!("ispd_job_failures_total", "job" => job).increment(report.failures.len() as u64);
}

/// Records a run that failed as a whole (storage down, ...).
pub fn record_error(job: &'static str, elapsed: Duration) {
    metrics::counter!("ispd_job_runs_total", "job" => job, "outcome" => "error").increment(1);
    metrics::histogram!("ispd_job_duration_seconds", "job" => job).record(elapsed.as_secs_f64());
}
