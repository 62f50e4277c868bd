//! Monthly billing (seed 002): charges owed, one per period, with catch-up.
//!
//! A service's periods start on its *anchor* dates: day `billing_day` of each
//! month, clamped to the month's last day (billing day 31 gives Jan 31, Feb 28
//! or 29, Mar 31: the anchor day is kept, so dates never drift). A period runs
//! from one anchor to the next. `next_charge_on` is the start of the first
//! period not yet charged; every period starting on or before `today`
//! (tenant-local) is owed, so a run after downtime catches up all of them.
//!
//! Each charge carries the idempotency key `charge:svc:{id}:{period_start}`;
//! the ledger refuses a second entry with the same key, so recording is
//! exactly-once whatever reruns, crashes or other daemons do.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};

use crate::domain::{CustomerId, LedgerKind, Money, NewLedgerEntry, Service, ServiceId, ServiceStatus};
use crate::error::{Error, Result};

/// The idempotency key of a service's charge for the period starting `period_start`.
pub fn charge_key(service: ServiceId, period_start: NaiveDate) -> String {
    format!("charge:svc:{service}:{period_start}")
}

/// Checks a billing day (1..=31).
pub fn validate_billing_day(billing_day: u32) -> Result<u32> {
    if (1..=31).contains(&billing_day) {
        Ok(billing_day)
    } else {
        Err(Error::invalid(
            "billing_day",
            billing_day,
            "a billing day is a day of the month, 1 to 31",
        ))
    }
}

/// Number of days in a month.
fn days_in_month(year: i32, month: u32) -> Option<u32> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = first.checked_add_months(Months::new(1))?;
    u32::try_from(next.signed_duration_since(first).num_days()).ok()
}

/// The anchor date of `year`-`month`: day `billing_day`, clamped to the
/// month's last day. `None` outside chrono's date range or for a bad day.
pub fn anchor_date(year: i32, month: u32, billing_day: u32) -> Option<NaiveDate> {
    if !(1..=31).contains(&billing_day) {
        return None;
    }
    let last = days_in_month(year, month)?;
    NaiveDate::from_ymd_opt(year, month, billing_day.min(last))
}

/// The first anchor date strictly after `date`.
pub fn next_anchor_after(date: NaiveDate, billing_day: u32) -> Option<NaiveDate> {
    let this_month = anchor_date(date.year(), date.month(), billing_day)?;
    if this_month > date {
        return Some(this_month);
    }
    let next = NaiveDate::from_ymd_opt(date.year(), date.month(), 1)?.checked_add_months(Months::new(1))?;
    anchor_date(next.year(), next.month(), billing_day)
}

/// One period's charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeDue {
    /// Service.
    pub service_id: ServiceId,
    /// Wallet.
    pub customer_id: CustomerId,
    /// First day of the period.
    pub period_start: NaiveDate,
    /// First day of the next period (exclusive end).
    pub period_end: NaiveDate,
    /// Price.
    pub amount: Money,
    /// Idempotency key ([`charge_key`]).
    pub key: String,
}

impl ChargeDue {
    /// The ledger entry to record for this charge.
    pub fn to_ledger_entry(&self, at: DateTime<Utc>) -> NewLedgerEntry {
        NewLedgerEntry {
            customer_id: self.customer_id,
            service_id: Some(self.service_id),
            kind: LedgerKind::Charge,
            amount: self.amount,
            period_start: Some(self.period_start),
            key: self.key.clone(),
            created_at: at,
        }
    }
}

/// The charges owed and where billing continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingOutcome {
    /// One charge per owed period, oldest first, without gaps.
    pub charges: Vec<ChargeDue>,
    /// The new `next_charge_on`: the start of the first period not charged
    /// (unchanged when nothing is owed).
    pub next_charge_on: NaiveDate,
}

/// The charges owed by `service` at price `price` on `today` (tenant-local):
/// one per period starting on or before `today`, from `next_charge_on` on.
///
/// Services that are not active owe nothing. A bad `billing_day` is an
/// [`Error::InvalidInput`] naming it.
pub fn charges_owed(service: &Service, price: Money, today: NaiveDate) -> Result<BillingOutcome> {
    let billing_day = validate_billing_day(service.billing_day)?;
    let mut charges = Vec::new();
    let mut start = service.next_charge_on;
    if service.status == ServiceStatus::Active {
        while start <= today {
            let end = next_anchor_after(start, billing_day).ok_or_else(|| {
                Error::invalid("next_charge_on", start, "no billing period after this date")
            })?;
            charges.push(ChargeDue {
                service_id: service.id,
                customer_id: service.customer_id,
                period_start: start,
                period_end: end,
                amount: price,
                key: charge_key(service.id, start),
            });
            start = end;
        }
    }
    Ok(BillingOutcome {
        charges,
        next_charge_on: start,
    })
}
