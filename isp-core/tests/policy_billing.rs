//! Billing policy: one charge per period, catch-up, clamped month ends without
//! drift, one idempotency key per period, reruns add nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod policy_fixtures;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, NaiveDate};
use isp_core::domain::*;
use isp_core::policy::billing::*;
use policy_fixtures::*;
use proptest::prelude::*;

fn billed(billing_day: u32, next_charge_on: NaiveDate) -> Service {
    let mut s = service(
        7,
        1,
        1,
        ServiceStatus::Active,
        pppoe("dave"),
        next_charge_on,
        true,
    );
    s.billing_day = billing_day;
    s.next_charge_on = next_charge_on;
    s
}

fn price() -> Money {
    Money::parse("price", "25000", tzs()).unwrap()
}

/// An independent model: the last day of a month by trial.
fn last_day(y: i32, m: u32) -> u32 {
    (28..=31)
        .rev()
        .find(|day| NaiveDate::from_ymd_opt(y, m, *day).is_some())
        .unwrap()
}

/// An independent model: every anchor date (billing day clamped) in a month range.
fn anchors_between(billing_day: u32, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let (mut y, mut m) = (from.year(), from.month());
    loop {
        let a = NaiveDate::from_ymd_opt(y, m, billing_day.min(last_day(y, m))).unwrap();
        if a > to {
            break;
        }
        if a >= from {
            out.push(a);
        }
        if m == 12 {
            y += 1;
            m = 1;
        } else {
            m += 1;
        }
    }
    out
}

#[test]
fn billing_day_31_keeps_its_anchor_through_february() {
    let s = billed(31, d(2024, 1, 31));
    let out = charges_owed(&s, price(), d(2024, 4, 30)).unwrap();
    let starts: Vec<NaiveDate> = out.charges.iter().map(|c| c.period_start).collect();
    assert_eq!(
        starts,
        vec![d(2024, 1, 31), d(2024, 2, 29), d(2024, 3, 31), d(2024, 4, 30)]
    );
    assert_eq!(out.next_charge_on, d(2024, 5, 31));
    assert_eq!(out.charges[0].period_end, d(2024, 2, 29));
    assert_eq!(out.charges[1].period_end, d(2024, 3, 31), "no drift to the 29th");
    assert_eq!(out.charges[0].key, "charge:svc:7:2024-01-31");
    assert_eq!(out.charges[0].amount, price());
    // Non-leap year.
    let s = billed(30, d(2023, 1, 30));
    let starts: Vec<NaiveDate> = charges_owed(&s, price(), d(2023, 3, 30))
        .unwrap()
        .charges
        .iter()
        .map(|c| c.period_start)
        .collect();
    assert_eq!(starts, vec![d(2023, 1, 30), d(2023, 2, 28), d(2023, 3, 30)]);
}

#[test]
fn nothing_owed_before_the_date_or_for_inactive_services() {
    let s = billed(5, d(2026, 3, 5));
    let out = charges_owed(&s, price(), d(2026, 3, 4)).unwrap();
    assert!(out.charges.is_empty());
    assert_eq!(out.next_charge_on, d(2026, 3, 5));
    let mut s = billed(5, d(2026, 1, 5));
    s.status = ServiceStatus::Suspended;
    assert!(charges_owed(&s, price(), d(2026, 3, 4))
        .unwrap()
        .charges
        .is_empty());
}

#[test]
fn a_bad_billing_day_names_the_field() {
    for bad in [0, 32, 99] {
        let e = charges_owed(&billed(bad, d(2026, 1, 1)), price(), d(2026, 2, 1)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("billing_day") && text.contains(&bad.to_string()),
            "{text}"
        );
    }
}

#[test]
fn a_start_between_anchors_runs_to_the_next_anchor() {
    let s = billed(15, d(2026, 1, 20));
    let out = charges_owed(&s, price(), d(2026, 2, 15)).unwrap();
    let periods: Vec<(NaiveDate, NaiveDate)> = out
        .charges
        .iter()
        .map(|c| (c.period_start, c.period_end))
        .collect();
    assert_eq!(
        periods,
        vec![(d(2026, 1, 20), d(2026, 2, 15)), (d(2026, 2, 15), d(2026, 3, 15))]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Billing over any run dates (gaps, repeats, crashes between recording and
    /// advancing) yields exactly one charge per period from the first to the
    /// last run date, with no gaps, and reruns add nothing.
    #[test]
    fn exactly_one_charge_per_period(
        billing_day in 1u32..=31,
        start_offset in 0i64..(30 * 366),
        steps in proptest::collection::vec((0i64..100, any::<bool>()), 1..25),
    ) {
        let start = d(2000, 1, 1) + Duration::days(start_offset);
        let mut svc = billed(billing_day, start);
        let mut ledger: BTreeMap<String, ChargeDue> = BTreeMap::new();
        let mut today = start - Duration::days(3);
        for (gap, crash) in steps {
            today += Duration::days(gap);
            let out = charges_owed(&svc, price(), today).unwrap();
            for c in &out.charges {
                // The ledger's unique key: a second record is a conflict, not a charge.
                ledger.entry(c.key.clone()).or_insert_with(|| c.clone());
            }
            if !crash {
                svc.next_charge_on = out.next_charge_on;
                // A rerun the same day adds nothing.
                let again = charges_owed(&svc, price(), today).unwrap();
                prop_assert!(again.charges.is_empty());
                prop_assert_eq!(again.next_charge_on, svc.next_charge_on);
            }
        }
        // Finish without a crash.
        let out = charges_owed(&svc, price(), today).unwrap();
        for c in &out.charges {
            ledger.entry(c.key.clone()).or_insert_with(|| c.clone());
        }
        svc.next_charge_on = out.next_charge_on;

        let charges: Vec<&ChargeDue> = ledger.values().collect();
        let mut starts: Vec<NaiveDate> = charges.iter().map(|c| c.period_start).collect();
        starts.sort();
        let unique: BTreeSet<NaiveDate> = starts.iter().copied().collect();
        prop_assert_eq!(unique.len(), starts.len(), "one charge per period");

        // Expected periods: the start, then every anchor after it up to today.
        let mut want = Vec::new();
        if start <= today {
            want.push(start);
            want.extend(anchors_between(billing_day, start + Duration::days(1), today));
        }
        prop_assert_eq!(&starts, &want);

        // No gaps: each period ends where the next begins; no drift: every
        // period after the first starts on the clamped billing day.
        let mut by_start: Vec<&ChargeDue> = charges.clone();
        by_start.sort_by_key(|c| c.period_start);
        for w in by_start.windows(2) {
            prop_assert_eq!(w[0].period_end, w[1].period_start);
        }
        for c in by_start.iter().skip(1) {
            let (y, m) = (c.period_start.year(), c.period_start.month());
            prop_assert_eq!(c.period_start.day(), billing_day.min(last_day(y, m)));
        }
        for c in &by_start {
            prop_assert!(c.period_end > c.period_start);
            prop_assert!(c.period_end - c.period_start <= Duration::days(31));
            prop_assert_eq!(&c.key, &charge_key(ServiceId(7), c.period_start));
        }
        // Billing continues after today.
        prop_assert!(svc.next_charge_on > today || start > today);
    }

    #[test]
    fn anchors_are_clamped_month_days(billing_day in 1u32..=31, y in 1990i32..2040, m in 1u32..=12) {
        let a = anchor_date(y, m, billing_day).unwrap();
        prop_assert_eq!((a.year(), a.month()), (y, m));
        prop_assert_eq!(a.day(), billing_day.min(last_day(y, m)));
        let next = next_anchor_after(a, billing_day).unwrap();
        prop_assert!(next > a);
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        prop_assert_eq!((next.year(), next.month()), (ny, nm));
    }
}
