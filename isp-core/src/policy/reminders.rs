//! Reminder schedules: when each notice is owed.
//!
//! | kind | deadline | sent from |
//! |---|---|---|
//! | hotspot expires soon | `paid_until` | 1 h before |
//! | PPP/VPN expires (PPPoE services) | local midnight after `next_billing_date` | 24 h and 3 h before |
//! | ISP payment due | local midnight starting `next_billing_date` | 09:00 local, 3 days before the due date |
//!
//! A reminder is owed from its send time until the next, later reminder of the
//! same deadline (the 3 h one replaces the 24 h one) or the deadline: never
//! after the deadline. "Never twice" is the notice store's unique key
//! (recipient, kind, deadline, subject); the jobs reserve before sending. A
//! service's reminders have the service as subject ([`service_subject`]), so a
//! customer with two services due the same day gets a reminder for each.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::domain::{Connection, NoticeKind, PhoneNumber, Service, ServiceId, ServiceStatus, Subscriber};
use crate::policy::time::{at_local_time, end_of_day, local_date, start_of_day};
use crate::policy::NoticeDue;

/// Hotspot: how long before `paid_until` the warning goes out.
pub const HOTSPOT_LEAD: Duration = Duration::hours(1);
/// PPP/VPN: the leads before service expiry, earliest first.
pub const SERVICE_LEADS: [(NoticeKind, Duration); 2] = [
    (NoticeKind::ServiceExpires24h, Duration::hours(24)),
    (NoticeKind::ServiceExpires3h, Duration::hours(3)),
];
/// ISP due date: how many days before.
pub const PAYMENT_DUE_DAYS_BEFORE: u64 = 3;
/// ISP due date: local wall-clock hour of the reminder.
pub const PAYMENT_DUE_HOUR: u32 = 9;

/// A reminder and the end of the window in which it is owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    /// The notice.
    pub notice: NoticeDue,
    /// Owed while `notice.send_at <= now < window_end`; `window_end <= notice.deadline`.
    pub window_end: DateTime<Utc>,
}

impl Reminder {
    /// Whether it is owed at `now`.
    pub fn is_owed(&self, now: DateTime<Utc>) -> bool {
        self.notice.send_at <= now && now < self.window_end
    }
}

/// When a PPP/VPN service expires: the local midnight after its due date
/// (DST-safe, see [`crate::policy::time`]).
pub fn service_expires_at(next_billing_date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    end_of_day(next_billing_date, tz)
}

/// When an ISP due-date reminder is sent: 09:00 local, 3 days before.
pub fn payment_due_send_at(due: NaiveDate, tz: Tz) -> Option<DateTime<Utc>> {
    let mut day = due.checked_sub_days(chrono::Days::new(PAYMENT_DUE_DAYS_BEFORE))?;
    // A day the zone skipped (Pacific/Apia's 2011-12-30): the same hour on the
    // next day, not the first minute after the gap (its midnight).
    if local_date(start_of_day(day, tz), tz) != day {
        day = day.succ_opt()?;
    }
    let nine = NaiveTime::from_hms_opt(PAYMENT_DUE_HOUR, 0, 0)?;
    Some(at_local_time(day, nine, tz))
}

/// The hotspot warning of an active subscriber (whether owed now or not).
pub fn hotspot_schedule(subscriber: &Subscriber) -> Option<Reminder> {
    if !subscriber.active {
        return None;
    }
    let deadline = subscriber.paid_until;
    Some(Reminder {
        notice: NoticeDue {
            tenant_id: subscriber.tenant_id,
            recipient: subscriber.phone.clone(),
            kind: NoticeKind::HotspotExpiresSoon,
            deadline,
            subject: String::new(),
            send_at: deadline.checked_sub_signed(HOTSPOT_LEAD).unwrap_or(deadline),
        },
        window_end: deadline,
    })
}

/// The hotspot warning owed at `now`, if any.
pub fn hotspot_reminder(subscriber: &Subscriber, now: DateTime<Utc>) -> Option<NoticeDue> {
    hotspot_schedule(subscriber)
        .filter(|r| r.is_owed(now))
        .map(|r| r.notice)
}

/// One reminder slot of a service, independent of who receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Kind.
    pub kind: NoticeKind,
    /// The deadline the reminder refers to.
    pub deadline: DateTime<Utc>,
    /// When it is first owed.
    pub send_at: DateTime<Utc>,
    /// When it stops being owed (`<= deadline`).
    pub window_end: DateTime<Utc>,
}

/// The reminder slots of an active service for its current due date, in send
/// order: the payment-due reminder, and for PPPoE services the 24 h and 3 h
/// warnings. Inactive services have none.
pub fn service_slots(service: &Service, tz: Tz) -> Vec<Slot> {
    let mut out = Vec::new();
    if service.status != ServiceStatus::Active {
        return out;
    }
    let due = service.next_billing_date;
    let due_midnight = start_of_day(due, tz);
    if let Some(send_at) = payment_due_send_at(due, tz).filter(|s| *s < due_midnight) {
        out.push(Slot {
            kind: NoticeKind::PaymentDue,
            deadline: due_midnight,
            send_at,
            window_end: due_midnight,
        });
    }
    if matches!(service.connection, Connection::Pppoe { .. }) {
        let expires = service_expires_at(due, tz);
        let sends: Vec<(NoticeKind, DateTime<Utc>)> = SERVICE_LEADS
            .iter()
            .filter_map(|(kind, lead)| Some((*kind, expires.checked_sub_signed(*lead)?)))
            .collect();
        for (i, (kind, send_at)) in sends.iter().enumerate() {
            // Owed until the next, later warning takes over, or until expiry.
            let window_end = sends.get(i + 1).map(|(_, next)| *next).unwrap_or(expires);
            out.push(Slot {
                kind: *kind,
                deadline: expires,
                send_at: *send_at,
                window_end,
            });
        }
    }
    out
}

/// The notice subject of a service's reminders: `service:<id>`.
pub fn service_subject(id: ServiceId) -> String {
    format!("service:{id}")
}

/// [`service_slots`] addressed to `recipient`.
pub fn service_schedule(service: &Service, recipient: &PhoneNumber, tz: Tz) -> Vec<Reminder> {
    service_slots(service, tz)
        .into_iter()
        .map(|slot| Reminder {
            notice: NoticeDue {
                tenant_id: service.tenant_id,
                recipient: recipient.clone(),
                kind: slot.kind,
                deadline: slot.deadline,
                subject: service_subject(service.id),
                send_at: slot.send_at,
            },
            window_end: slot.window_end,
        })
        .collect()
}

/// The service reminders owed at `now`.
pub fn service_reminders(
    service: &Service,
    recipient: &PhoneNumber,
    tz: Tz,
    now: DateTime<Utc>,
) -> Vec<NoticeDue> {
    service_schedule(service, recipient, tz)
        .into_iter()
        .filter(|r| r.is_owed(now))
        .map(|r| r.notice)
        .collect()
}

/// The earliest send time after `now` among `schedule`.
pub fn next_send_after(schedule: &[Reminder], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule
        .iter()
        .map(|r| r.notice.send_at)
        .filter(|t| *t > now)
        .min()
}
