//! Reminder schedules: lead times, tenant-local 09:00, DST-safe expiry
//! instants, never after the deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod policy_fixtures;

use chrono::{Duration, NaiveTime, Timelike};
use isp_core::domain::*;
use isp_core::policy::reminders::*;
use isp_core::policy::time::{local_date, start_of_day};
use policy_fixtures::*;
use proptest::prelude::*;

#[test]
fn hotspot_warning_one_hour_before() {
    let paid = t("2025-12-15T12:30:00Z");
    let sub = subscriber(42, 1, paid, true);
    assert_eq!(hotspot_reminder(&sub, t("2025-12-15T11:29:59Z")), None);
    let n = hotspot_reminder(&sub, t("2025-12-15T11:30:00Z")).unwrap();
    assert_eq!(n.kind, NoticeKind::HotspotExpiresSoon);
    assert_eq!(n.deadline, paid);
    assert_eq!(n.send_at, t("2025-12-15T11:30:00Z"));
    assert!(hotspot_reminder(&sub, t("2025-12-15T12:29:59Z")).is_some());
    assert_eq!(
        hotspot_reminder(&sub, paid),
        None,
        "never at or after the deadline"
    );
    let gone = subscriber(42, 1, paid, false);
    assert_eq!(hotspot_reminder(&gone, t("2025-12-15T12:00:00Z")), None);
}

#[test]
fn isp_due_date_reminder_three_days_before_at_nine_local() {
    // Dar es Salaam is UTC+3 all year.
    let zone = tz("Africa/Dar_es_Salaam");
    let s = service(1, 1, 1, ServiceStatus::Active, static_ip(2), d(2026, 5, 10), true);
    let slots = service_slots(&s, zone);
    assert_eq!(slots.len(), 1, "static-IP services get only the payment reminder");
    assert_eq!(slots[0].kind, NoticeKind::PaymentDue);
    assert_eq!(slots[0].send_at, t("2026-05-07T06:00:00Z"));
    assert_eq!(
        slots[0].deadline,
        t("2026-05-09T21:00:00Z"),
        "the due date's local midnight"
    );
    let p = phone(5);
    assert!(service_reminders(&s, &p, zone, t("2026-05-07T05:59:59Z")).is_empty());
    let owed = service_reminders(&s, &p, zone, t("2026-05-07T06:00:00Z"));
    assert_eq!(owed.len(), 1);
    assert_eq!(owed[0].recipient, p);
}

#[test]
fn ppp_expiry_warnings_24h_and_3h_before_local_midnight_after_the_due_date() {
    let zone = tz("Europe/Berlin");
    // Due 2024-03-30; expires at the start of 2024-03-31 (still CET, UTC+1).
    let s = service(
        1,
        1,
        1,
        ServiceStatus::Active,
        pppoe("erin"),
        d(2024, 3, 30),
        true,
    );
    assert_eq!(
        service_expires_at(d(2024, 3, 30), zone),
        t("2024-03-30T23:00:00Z")
    );
    let slots = service_slots(&s, zone);
    let kinds: Vec<NoticeKind> = slots.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        vec![
            NoticeKind::PaymentDue,
            NoticeKind::ServiceExpires24h,
            NoticeKind::ServiceExpires3h
        ]
    );
    assert_eq!(slots[1].send_at, t("2024-03-29T23:00:00Z"));
    assert_eq!(
        slots[1].window_end,
        t("2024-03-30T20:00:00Z"),
        "the 3 h warning takes over"
    );
    assert_eq!(slots[2].send_at, t("2024-03-30T20:00:00Z"));
    assert_eq!(slots[2].window_end, t("2024-03-30T23:00:00Z"));

    // Across the spring-forward night: due 2024-03-31 expires at 00:00 CEST on April 1st.
    assert_eq!(
        service_expires_at(d(2024, 3, 31), zone),
        t("2024-03-31T22:00:00Z")
    );
}

#[test]
fn a_midnight_that_does_not_exist_is_the_end_of_the_gap() {
    // Chile springs forward at 00:00 -> 01:00 on 2022-09-11.
    let zone = tz("America/Santiago");
    let exp = service_expires_at(d(2022, 9, 10), zone);
    assert_eq!(exp, t("2022-09-11T04:00:00Z"));
    let local = exp.with_timezone(&zone);
    assert_eq!((local.date_naive(), local.hour()), (d(2022, 9, 11), 1));
}

#[test]
fn inactive_services_get_no_reminders() {
    let s = service(
        1,
        1,
        1,
        ServiceStatus::Suspended,
        pppoe("f"),
        d(2026, 1, 10),
        true,
    );
    assert!(service_slots(&s, tz("UTC")).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Whatever the zone, due date and moment: a reminder is owed only between
    /// its send time and its deadline, leads are exact durations, at most one
    /// expiry warning is owed at a time, and local times land where they should.
    #[test]
    fn reminders_never_after_their_deadline(
        zone in arb_tz(),
        due in arb_date(),
        pppoe_conn in any::<bool>(),
        probe_hours in -100i64..=30,
        probe_secs in 0i64..3600,
    ) {
        let conn = if pppoe_conn { pppoe("gina") } else { static_ip(3) };
        let s = service(1, 1, 1, ServiceStatus::Active, conn, due, true);
        let slots = service_slots(&s, zone);
        let expires = service_expires_at(due, zone);
        // The expiry is the first instant of a later local day; just before it is still on or before the due date.
        prop_assert!(local_date(expires, zone) > due);
        prop_assert!(local_date(expires - Duration::nanoseconds(1), zone) <= due);
        for slot in &slots {
            prop_assert!(slot.send_at < slot.window_end);
            prop_assert!(slot.window_end <= slot.deadline);
            match slot.kind {
                NoticeKind::PaymentDue => {
                    prop_assert_eq!(slot.deadline, start_of_day(due, zone));
                    let local = slot.send_at.with_timezone(&zone);
                    // Three days before; a day the zone skipped (Apia's
                    // 2011-12-30) sends on the next day instead.
                    let day = due - Duration::days(3);
                    let existed = local_date(start_of_day(day, zone), zone) == day;
                    let expected = if existed { day } else { day + Duration::days(1) };
                    prop_assert_eq!(local.date_naive(), expected);
                    prop_assert!(local.time() >= NaiveTime::from_hms_opt(9, 0, 0).unwrap());
                    prop_assert!(local.time() < NaiveTime::from_hms_opt(11, 0, 0).unwrap());
                }
                NoticeKind::ServiceExpires24h => {
                    prop_assert!(pppoe_conn);
                    prop_assert_eq!(slot.deadline, expires);
                    prop_assert_eq!(expires - slot.send_at, Duration::hours(24));
                }
                NoticeKind::ServiceExpires3h => {
                    prop_assert!(pppoe_conn);
                    prop_assert_eq!(slot.deadline, expires);
                    prop_assert_eq!(expires - slot.send_at, Duration::hours(3));
                }
                other => prop_assert!(false, "unexpected kind {:?}", other),
            }
        }
        let now = expires + Duration::hours(probe_hours) + Duration::seconds(probe_secs);
        let owed = service_reminders(&s, &phone(1), zone, now);
        for n in &owed {
            prop_assert!(n.send_at <= now && now < n.deadline, "{:?} owed at {}", n, now);
        }
        let warnings = owed.iter().filter(|n| n.kind != NoticeKind::PaymentDue).count();
        prop_assert!(warnings <= 1);
        if now >= expires {
            prop_assert!(owed.is_empty());
        }
    }

    #[test]
    fn hotspot_warning_window(paid in arb_instant(), off in arb_offset(), active in any::<bool>()) {
        let sub = subscriber(1, 1, paid, active);
        let now = paid + off;
        let owed = hotspot_reminder(&sub, now);
        let want = active && paid - Duration::hours(1) <= now && now < paid;
        prop_assert_eq!(owed.is_some(), want);
        if let Some(n) = owed {
            prop_assert_eq!(n.deadline, paid);
            prop_assert!(now < n.deadline);
        }
    }
}
