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
//!
//! Beside the recorder, each [`JobRunner`](super::JobRunner) keeps the last
//! hour minute by minute ([`LastHour`]: removals and enforcement lag), so a
//! console can chart it without a metrics store.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

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

/// Records one enforcement lag (a deadline to the watcher acting on it).
pub fn record_lag(lag: Duration) {
    metrics::histogram!("ispd_enforcement_lag_seconds").record(lag.as_secs_f64());
}

/// Minutes [`LastHour`] keeps.
pub const MINUTES: usize = 60;

/// Lag samples kept per minute for its percentiles; beyond that the count and
/// the maximum stay exact and the percentiles are those of the first samples.
const LAG_SAMPLES_PER_MINUTE: usize = 2_048;

/// The last hour of removals and enforcement lag, one bucket per minute (a
/// ring of [`MINUTES`] buckets, reused as the minutes pass).
#[derive(Debug, Clone)]
pub struct LastHour {
    buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    /// Minutes since the Unix epoch this bucket holds (`None`: never used).
    minute: Option<i64>,
    removals: u64,
    lag_count: u64,
    lag_max: f64,
    lags: Vec<f64>,
}

/// One minute of [`LastHour`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MinuteStats {
    /// The minute's start.
    pub start: DateTime<Utc>,
    /// Subscribers removed from routers (disconnect-expired's `users_disconnected`).
    pub removals: u64,
    /// Enforcement lag of the deadlines met in that minute (`None`: none met).
    pub lag: Option<LagStats>,
}

/// Enforcement lag over one minute, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LagStats {
    /// Deadlines met.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Longest.
    pub max: f64,
}

impl Default for LastHour {
    fn default() -> Self {
        LastHour {
            buckets: vec![Bucket::default(); MINUTES],
        }
    }
}

fn minute_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(60)
}

impl LastHour {
    /// The bucket of `at`'s minute, emptied first when it still holds an older minute.
    fn bucket(&mut self, at: DateTime<Utc>) -> &mut Bucket {
        let minute = minute_of(at);
        let b = &mut self.buckets[minute.rem_euclid(MINUTES as i64) as usize];
        if b.minute != Some(minute) {
            *b = Bucket {
                minute: Some(minute),
                ..Bucket::default()
            };
        }
        b
    }

    /// Counts `n` removals at `at`.
    pub fn record_removals(&mut self, at: DateTime<Utc>, n: u64) {
        if n > 0 {
            self.bucket(at).removals += n;
        }
    }

    /// Counts one enforcement lag at `at`.
    pub fn record_lag(&mut self, at: DateTime<Utc>, lag: Duration) {
        let secs = lag.as_secs_f64();
        let b = self.bucket(at);
        b.lag_count += 1;
        b.lag_max = b.lag_max.max(secs);
        if b.lags.len() < LAG_SAMPLES_PER_MINUTE {
            b.lags.push(secs);
        }
    }

    /// The [`MINUTES`] minutes up to and including `now`'s, oldest first
    /// (minutes with nothing recorded are zeros).
    pub fn minutes(&self, now: DateTime<Utc>) -> Vec<MinuteStats> {
        let current = minute_of(now);
        (current - MINUTES as i64 + 1..=current)
            .map(|minute| {
                let start = Utc
                    .timestamp_opt(minute * 60, 0)
                    .single()
                    .unwrap_or(DateTime::<Utc>::MIN_UTC);
                let b = &self.buckets[minute.rem_euclid(MINUTES as i64) as usize];
                if b.minute != Some(minute) {
                    return MinuteStats {
                        start,
                        removals: 0,
                        lag: None,
                    };
                }
                MinuteStats {
                    start,
                    removals: b.removals,
                    lag: lag_stats(b),
                }
            })
            .collect()
    }
}

fn lag_stats(b: &Bucket) -> Option<LagStats> {
    if b.lag_count == 0 || b.lags.is_empty() {
        return None;
    }
    let mut sorted = b.lags.clone();
    sorted.sort_by(f64::total_cmp);
    // Nearest rank: the smallest sample with at least q of them at or below it.
    let rank = |q: f64| {
        let i = (q * sorted.len() as f64).ceil() as usize;
        sorted[i.clamp(1, sorted.len()) - 1]
    };
    Some(LagStats {
        count: b.lag_count,
        p50: rank(0.50),
        p99: rank(0.99),
        max: b.lag_max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `min` minutes and `sec` seconds after a whole minute.
    fn at(min: i64, sec: i64) -> DateTime<Utc> {
        const WHOLE_MINUTE: i64 = 30_000_000 * 60;
        Utc.timestamp_opt(WHOLE_MINUTE + min * 60 + sec, 0).unwrap()
    }

    #[test]
    fn minutes_are_bucketed_and_percentiles_read() {
        let mut h = LastHour::default();
        h.record_removals(at(0, 5), 2);
        h.record_removals(at(0, 59), 1);
        h.record_removals(at(1, 0), 4);
        for ms in 1..=100 {
            h.record_lag(at(1, 30), Duration::from_millis(ms * 10));
        }
        let m = h.minutes(at(1, 40));
        assert_eq!(m.len(), MINUTES);
        assert_eq!(m[MINUTES - 1].start, at(1, 0));
        assert_eq!(m[MINUTES - 2].removals, 3);
        assert_eq!(m[MINUTES - 2].lag, None);
        assert_eq!(m[MINUTES - 1].removals, 4);
        let lag = m[MINUTES - 1].lag.expect("lag of minute 1");
        assert_eq!(lag.count, 100);
        assert!((lag.p50 - 0.5).abs() < 1e-9, "{lag:?}");
        assert!((lag.p99 - 0.99).abs() < 1e-9, "{lag:?}");
        assert!((lag.max - 1.0).abs() < 1e-9, "{lag:?}");
        assert_eq!(m[..MINUTES - 2].iter().map(|x| x.removals).sum::<u64>(), 0);
    }

    #[test]
    fn an_hour_later_the_old_minutes_are_gone() {
        let mut h = LastHour::default();
        h.record_removals(at(0, 0), 7);
        h.record_lag(at(0, 0), Duration::from_secs(3));
        // 59 minutes on, it is still there.
        assert_eq!(h.minutes(at(MINUTES as i64 - 1, 59))[0].removals, 7);
        let later = at(MINUTES as i64, 0);
        assert!(h
            .minutes(later)
            .iter()
            .all(|m| m.removals == 0 && m.lag.is_none()));
        // The reused bucket starts empty.
        h.record_removals(later, 1);
        let m = h.minutes(later);
        assert_eq!(m[MINUTES - 1].removals, 1);
        assert_eq!(m[MINUTES - 1].lag, None);
    }
}
