//! When each job runs: cron schedules read in a time zone, and the settings of
//! the scheduler and the real-time watcher.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::jobs::JobKind;

/// When a job runs.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A cron expression (5 fields, or 6 with seconds first).
    Cron {
        /// Parsed.
        cron: Box<croner::Cron>,
        /// As written.
        expr: String,
    },
    /// Never on a schedule (still runs when asked, and from the watcher).
    Off,
}

impl Schedule {
    /// Parses a cron expression or `off`; the error says what is wrong with it.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let t = raw.trim();
        if t == "off" || t == "never" {
            return Ok(Schedule::Off);
        }
        let fields = t.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(format!(
                "not a cron expression: {t:?} has {fields} fields; use 5 (`*/5 * * * *`) or 6 with seconds first (`*/30 * * * * *`), or `off`"
            ));
        }
        let cron = croner::Cron::new(t)
            .with_seconds_optional()
            .parse()
            .map_err(|e| format!("not a cron expression: {t:?} ({e})"))?;
        Ok(Schedule::Cron {
            cron: Box::new(cron),
            expr: t.to_owned(),
        })
    }

    /// The next run strictly after `after`, read in `tz`.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Off => None,
            Schedule::Cron { cron, .. } => {
                let local = tz.from_utc_datetime(&after.naive_utc());
                cron.find_next_occurrence(&local, false)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            }
        }
    }

    /// The expression, or `off`.
    pub fn as_str(&self) -> &str {
        match self {
            Schedule::Cron { expr, .. } => expr,
            Schedule::Off => "off",
        }
    }
}

/// The default schedule of each job.
///
/// The deadline-driven jobs (disconnect-expired, warn-before-expiry,
/// expire-vouchers) also run from the real-time watcher the moment a deadline
/// passes; their schedule is the safety sweep. Billing and payment reminders
/// run hourly so that each tenant's local midnight and 09:00 are met within the
/// hour whatever its time zone; the jobs themselves are exactly-once.
pub fn default_schedule(job: JobKind) -> &'static str {
    match job {
        JobKind::DisconnectExpired => "* * * * *",
        JobKind::WarnBeforeExpiry => "*/5 * * * *",
        JobKind::ExpireVouchers => "*/5 * * * *",
        JobKind::SyncRouters => "*/5 * * * *",
        JobKind::ProvisionServices => "* * * * *",
        JobKind::MonthlyBilling => "5 * * * *",
        JobKind::PaymentReminders => "5 * * * *",
        JobKind::RouterHealth => "* * * * *",
        JobKind::DeviceCleanup => "0 3 * * *",
        JobKind::LogRetention => "0 4 * * 0",
        // The sweep: runs are also started whenever a job reserves notices.
        JobKind::DeliverNotices => "* * * * *",
        // The sweep: the watcher also runs it whenever a pending grant's
        // back-off ends.
        JobKind::ApplyGrants => "* * * * *",
        // The poll for first logins of vouchers (a light `print` of the active
        // sessions of routers with unused vouchers).
        JobKind::ActivateVouchers => "*/10 * * * * *",
    }
}

/// Settings of the scheduler and the real-time watcher.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Zone the cron expressions are read in.
    pub time_zone: Tz,
    /// The real-time watcher re-checks the next deadline at least this often
    /// (picks up purchases made by other programs).
    pub watcher_max_sleep: Duration,
    /// Shortest sleep of the watcher between two runs when work stays due
    /// (items in retry back-off).
    pub watcher_min_sleep: Duration,
    /// How long runs in progress may take to finish when the runtime stops.
    pub shutdown_grace: Duration,
    /// Whether the real-time watcher runs at all.
    pub watcher_enabled: bool,
    /// Whether each router on the RouterOS API is asked to stream its new
    /// hotspot sessions, so that a voucher's first login is recorded within
    /// a second (the `activate-vouchers` poll catches the rest).
    pub voucher_listen: bool,
    /// Each job's schedule.
    pub schedules: BTreeMap<JobKind, Schedule>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            time_zone: Tz::UTC,
            watcher_max_sleep: Duration::from_secs(2),
            watcher_min_sleep: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(30),
            watcher_enabled: true,
            voucher_listen: true,
            schedules: JobKind::ALL
                .into_iter()
                .map(|j| {
                    let s = Schedule::parse(default_schedule(j))
                        .unwrap_or_else(|e| unreachable!("default schedule of {j}: {e}"));
                    (j, s)
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_is_read_in_the_zone() {
        let s = Schedule::parse("0 9 * * *").unwrap();
        let tz: Tz = "Africa/Dar_es_Salaam".parse().unwrap();
        let after = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        // 09:00 in UTC+3 is 06:00 UTC.
        assert_eq!(
            s.next_after(after, tz),
            Some(Utc.with_ymd_and_hms(2026, 3, 1, 6, 0, 0).unwrap())
        );
    }

    #[test]
    fn seconds_field_and_off() {
        let secs = Schedule::parse("*/30 * * * * *").unwrap();
        let after = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 10).unwrap();
        assert_eq!(
            secs.next_after(after, Tz::UTC),
            Some(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 30).unwrap())
        );
        assert!(Schedule::parse("off")
            .unwrap()
            .next_after(after, Tz::UTC)
            .is_none());
        let e = Schedule::parse("every minute").unwrap_err();
        assert!(e.contains("every minute"), "{e}");
    }

    #[test]
    fn every_default_parses() {
        assert_eq!(SchedulerConfig::default().schedules.len(), JobKind::ALL.len());
    }
}
