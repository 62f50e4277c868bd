//! Conversions between domain values and BSON: instants as BSON dates, local
//! dates as `YYYY-MM-DD` strings (they sort as dates), leases as
//! `{holder, until}` sub-documents.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use isp_core::domain::Lease;
use isp_core::{Error, Result};
use mongodb::bson::{self, doc, Bson, Document};
use serde::{Deserialize, Serialize};

/// An instant as a BSON date (millisecond precision: finer parts are dropped).
pub(crate) fn to_bdate(at: DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_millis(at.timestamp_millis())
}

/// A BSON date as an instant.
pub(crate) fn from_bdate(field: &str, at: bson::DateTime) -> Result<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(at.timestamp_millis())
        .ok_or_else(|| stored(field, at, "date out of range"))
}

/// An optional BSON date as an optional instant.
pub(crate) fn from_opt_bdate(field: &str, at: Option<bson::DateTime>) -> Result<Option<DateTime<Utc>>> {
    at.map(|d| from_bdate(field, d)).transpose()
}

/// A local date as `YYYY-MM-DD` (years 1 to 9999 so that the text sorts as the date).
pub(crate) fn to_bday(field: &str, day: NaiveDate) -> Result<String> {
    if !(1..=9999).contains(&day.year()) {
        return Err(Error::invalid(field, day, "year must be between 1 and 9999"));
    }
    Ok(day.format("%Y-%m-%d").to_string())
}

/// `YYYY-MM-DD` back to a local date.
pub(crate) fn from_bday(field: &str, raw: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| stored(field, raw, "not a YYYY-MM-DD date"))
}

/// An error for a stored value that does not decode (data written by someone else, or corrupted).
pub(crate) fn stored(field: &str, value: impl std::fmt::Display, why: &str) -> Error {
    Error::Internal(format!("stored {field} \"{value}\" is invalid: {why}"))
}

/// Re-labels a validation error of a stored value as an internal error.
pub(crate) fn stored_err(e: Error) -> Error {
    Error::Internal(format!("stored document is invalid: {e}"))
}

/// Converts a `u32` counter from its stored `i64`.
pub(crate) fn to_u32(field: &str, v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| stored(field, v, "not a count"))
}

/// A claim on a document, as stored: always present, `{holder: "", until:
/// 1970-01-01}` when there is none, so that "free at `now`" is the single
/// condition `lease.until <= now` (no `$or`, see the crate docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LeaseDoc {
    pub(crate) holder: String,
    pub(crate) until: bson::DateTime,
}

impl LeaseDoc {
    pub(crate) fn new(holder: &str, until: DateTime<Utc>) -> Self {
        LeaseDoc {
            holder: holder.to_owned(),
            until: to_bdate(until),
        }
    }

    /// No lease.
    pub(crate) fn none() -> Self {
        LeaseDoc {
            holder: String::new(),
            until: bson::DateTime::from_millis(0),
        }
    }

    pub(crate) fn into_domain(self) -> Result<Option<Lease>> {
        if self.holder.is_empty() {
            return Ok(None);
        }
        Ok(Some(Lease {
            holder: self.holder,
            until: from_bdate("lease.until", self.until)?,
        }))
    }

    pub(crate) fn to_bson(&self) -> Bson {
        Bson::Document(doc! { "holder": &self.holder, "until": self.until })
    }
}

/// The stored form of "no lease".
pub(crate) fn no_lease() -> Bson {
    LeaseDoc::none().to_bson()
}

/// Matches documents whose lease is free at `now`: none, or one that expired
/// (`until <= now`).
pub(crate) fn lease_free(now: DateTime<Utc>) -> Document {
    doc! { "lease.until": { "$lte": to_bdate(now) } }
}

/// Converts a `usize` limit for the driver (`0` means none, like an empty result).
pub(crate) fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_sort_as_text() {
        let a = to_bday("d", NaiveDate::from_ymd_opt(999, 12, 31).expect("date")).expect("ok");
        let b = to_bday("d", NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")).expect("ok");
        assert_eq!(a, "0999-12-31");
        assert!(a < b);
        assert_eq!(
            from_bday("d", &b).expect("ok"),
            NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")
        );
        assert!(
            to_bday("due", NaiveDate::from_ymd_opt(10_000, 1, 1).expect("date"))
                .unwrap_err()
                .to_string()
                .contains("due")
        );
        assert!(from_bday("d", "2026-13-01").is_err());
    }
}
