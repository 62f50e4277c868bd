//! Tenant-local dates and DST-safe local instants.
//!
//! Billing days, due dates and the 09:00 reminder are wall-clock notions of the
//! tenant's time zone. A wall-clock time may not exist (a DST gap: 02:30 on a
//! spring-forward night, or midnight in zones that switch at 00:00) or may exist
//! twice (fall-back). [`local_instant`] resolves both the same way everywhere:
//! the earliest instant at or after the wall-clock time.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Longest wall-clock gap searched: zones have skipped a whole day
/// (Pacific/Apia, 2011-12-30), so two days is ample.
const MAX_GAP_MINUTES: u32 = 2 * 24 * 60;

/// The tenant-local date at `now`.
pub fn local_date(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// The earliest instant whose wall-clock time in `tz` is at or after `local`.
///
/// - existing once: that instant;
/// - existing twice (fall-back): the earlier one;
/// - not existing (a gap): the first whole minute after the gap.
pub fn local_instant(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    let mut wall = local;
    for _ in 0..=MAX_GAP_MINUTES {
        if let Some(t) = tz.from_local_datetime(&wall).earliest() {
            return t.with_timezone(&Utc);
        }
        match wall.checked_add_signed(Duration::minutes(1)) {
            Some(next) => wall = next,
            None => break,
        }
    }
    // No zone has a gap this long; read the wall time as UTC rather than fail.
    Utc.from_utc_datetime(&local)
}

/// The instant `date` begins in `tz` (its local midnight, DST-safe).
pub fn start_of_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    local_instant(date.and_time(NaiveTime::MIN), tz)
}

/// The instant `date` ends in `tz`: the start of the next day
/// (`DateTime::<Utc>::MAX_UTC` for the last representable date).
pub fn end_of_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    match date.succ_opt() {
        Some(next) => start_of_day(next, tz),
        None => DateTime::<Utc>::MAX_UTC,
    }
}

/// The instant `time` o'clock on `date` in `tz` (DST-safe).
pub fn at_local_time(date: NaiveDate, time: NaiveTime, tz: Tz) -> DateTime<Utc> {
    local_instant(date.and_time(time), tz)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn midnight_in_a_gap_is_the_end_of_the_gap() {
        // America/Santiago springs forward at 00:00 -> 01:00 (2022-09-11).
        let tz: Tz = "America/Santiago".parse().unwrap();
        let t = start_of_day(d(2022, 9, 11), tz);
        let local = t.with_timezone(&tz);
        assert_eq!(local.date_naive(), d(2022, 9, 11));
        assert_eq!(local.time(), NaiveTime::from_hms_opt(1, 0, 0).unwrap());
    }

    #[test]
    fn ambiguous_time_is_the_earlier() {
        // Europe/Berlin falls back at 03:00 -> 02:00 (2024-10-27): 02:30 twice.
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let t = at_local_time(d(2024, 10, 27), NaiveTime::from_hms_opt(2, 30, 0).unwrap(), tz);
        assert_eq!(t.to_rfc3339(), "2024-10-27T00:30:00+00:00");
    }

    #[test]
    fn a_skipped_day_starts_on_the_next() {
        // Pacific/Apia skipped 2011-12-30 entirely.
        let tz: Tz = "Pacific/Apia".parse().unwrap();
        let t = start_of_day(d(2011, 12, 30), tz);
        assert_eq!(local_date(t, tz), d(2011, 12, 31));
        assert_eq!(t, start_of_day(d(2011, 12, 31), tz));
    }
}
