//! Health: identity, resources and the router's clock.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use isp_core::domain::RosDuration;
use isp_core::ports::RouterHealth;
use isp_core::Result;

use super::ops::Ops;
use super::rows::{CLOCK, IDENTITY, RESOURCE};
use crate::client::Row;

/// Reads `/system/identity`, `/system/resource` and `/system/clock` (concurrently, one print each).
pub(crate) async fn health(ops: &Ops) -> Result<RouterHealth> {
    let (identity, resource, clock) = futures::try_join!(
        ops.print(IDENTITY, &["name"], &[]),
        ops.print(
            RESOURCE,
            &["uptime", "version", "cpu-load", "free-memory", "total-memory"],
            &[]
        ),
        ops.print(CLOCK, &["date", "time", "time-zone-name", "gmt-offset"], &[]),
    )?;
    let identity = identity
        .first()
        .and_then(|r| r.get("name"))
        .ok_or_else(|| ops.protocol("/system/identity print returned no name"))?
        .to_owned();
    let empty = Row::default();
    let resource = resource.first().unwrap_or(&empty);
    Ok(RouterHealth {
        identity,
        version: resource.get("version").map(str::to_owned),
        uptime: resource
            .get("uptime")
            .and_then(|u| RosDuration::parse("uptime", u).ok()),
        cpu_load: resource
            .get("cpu-load")
            .and_then(|c| c.trim_end_matches('%').parse().ok()),
        free_memory: resource.get("free-memory").and_then(parse_bytes),
        total_memory: resource.get("total-memory").and_then(parse_bytes),
        clock: clock.first().and_then(router_clock),
    })
}

/// Bytes as the API gives them (`912162816`), or with a unit (`869.9MiB`, `1024KiB`).
pub(crate) fn parse_bytes(raw: &str) -> Option<u64> {
    let t = raw.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Some(n);
    }
    let (number, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic())?);
    let factor: f64 = match unit {
        "B" => 1.0,
        "KiB" | "KB" | "k" => 1024.0,
        "MiB" | "MB" | "M" => 1024.0 * 1024.0,
        "GiB" | "GB" | "G" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let value: f64 = number.trim().parse().ok()?;
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let bytes = (value * factor).round();
    if bytes > u64::MAX as f64 {
        return None;
    }
    Some(bytes as u64)
}

/// `2024-01-02` (RouterOS >= 7.10) or `jan/02/2024` (older).
fn parse_date(raw: &str) -> Option<NaiveDate> {
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Some(d);
    }
    let mut chars = raw.chars();
    let first = chars.next()?.to_ascii_uppercase();
    let capitalised: String = std::iter::once(first).chain(chars).collect();
    NaiveDate::parse_from_str(&capitalised, "%b/%d/%Y").ok()
}

/// `+03:00`, `-05:30`, or seconds (`10800`).
fn parse_offset(raw: &str) -> Option<FixedOffset> {
    let t = raw.trim();
    if let Ok(secs) = t.parse::<i32>() {
        return FixedOffset::east_opt(secs);
    }
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => (1, t),
    };
    let (h, m) = rest.split_once(':')?;
    let secs = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
    FixedOffset::east_opt(sign * secs)
}

/// The router's clock as UTC, when its zone is known (a zone name, or a GMT offset).
pub(crate) fn router_clock(row: &Row) -> Option<DateTime<Utc>> {
    let local =
        parse_date(row.get("date")?)?.and_time(NaiveTime::parse_from_str(row.get("time")?, "%H:%M:%S").ok()?);
    if let Some(tz) = row.get("time-zone-name").and_then(|z| z.parse::<Tz>().ok()) {
        return tz
            .from_local_datetime(&local)
            .earliest()
            .map(|t| t.with_timezone(&Utc));
    }
    let offset = row.get("gmt-offset").and_then(parse_offset)?;
    offset
        .from_local_datetime(&local)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> Row {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn clocks() {
        let utc = Utc.with_ymd_and_hms(2024, 1, 2, 9, 30, 0).unwrap();
        assert_eq!(
            router_clock(&row(&[
                ("date", "2024-01-02"),
                ("time", "09:30:00"),
                ("time-zone-name", "UTC")
            ])),
            Some(utc)
        );
        assert_eq!(
            router_clock(&row(&[
                ("date", "jan/02/2024"),
                ("time", "12:30:00"),
                ("time-zone-name", "Africa/Dar_es_Salaam")
            ])),
            Some(utc)
        );
        assert_eq!(
            router_clock(&row(&[
                ("date", "2024-01-02"),
                ("time", "12:30:00"),
                ("time-zone-name", "manual"),
                ("gmt-offset", "+03:00")
            ])),
            Some(utc)
        );
        assert_eq!(
            router_clock(&row(&[
                ("date", "2024-01-02"),
                ("time", "06:30:00"),
                ("gmt-offset", "-10800")
            ])),
            Some(utc)
        );
        assert_eq!(
            router_clock(&row(&[
                ("date", "2024-01-02"),
                ("time", "09:30:00"),
                ("time-zone-name", "manual")
            ])),
            None
        );
        assert_eq!(
            router_clock(&row(&[("date", "garbage"), ("time", "09:30:00")])),
            None
        );
    }

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("912162816"), Some(912_162_816));
        assert_eq!(parse_bytes("1KiB"), Some(1024));
        assert_eq!(parse_bytes("1.5MiB"), Some(1_572_864));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("-1MiB"), None);
    }
}
