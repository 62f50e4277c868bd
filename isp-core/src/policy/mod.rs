//! Pure policies: functions of their inputs and `now` / `today`, property-tested.
//!
//! Nothing here reads a clock, touches storage or talks to a router: the jobs
//! ([`crate::jobs`]) load the inputs through the ports, call these functions and
//! act on what they return. That keeps every rule (ARCHITECTURE.md, "Policies") in one
//! place where a property test can exercise it over any input.
//!
//! | module | rule |
//! |---|---|
//! | [`hotspot`] | expired subscriber -> what to remove on which router, and the notice owed |
//! | [`voucher`] | activation, purchase and usage deadlines; sync-driven expiry |
//! | [`provisioning`] | service status x due date x provisioned flag -> provision / deprovision / nothing |
//! | [`billing`] | monthly charges with catch-up, clamped month ends, one key per period |
//! | [`reminders`] | when each notice is owed, never after its deadline |
//! | [`reconcile`] | desired vs observed router state -> actions on objects we own |
//! | [`retry`] | back-off for failed attempts |
//! | [`time`] | tenant-local dates and DST-safe local instants |

pub mod billing;
pub mod hotspot;
pub mod provisioning;
pub mod reconcile;
pub mod reminders;
pub mod retry;
pub mod time;
pub mod voucher;

use chrono::{DateTime, Utc};

use crate::domain::{NoticeKind, PhoneNumber, TenantId};

/// A notice a policy says is owed: who, what, for which deadline, from when.
///
/// `(recipient, kind, deadline, subject)` is the notice's unique key
/// ([`crate::ports::NoticeRepoExt::reserve`]); the job renders the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeDue {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Recipient.
    pub recipient: PhoneNumber,
    /// Kind.
    pub kind: NoticeKind,
    /// The instant the notice refers to (an expiry, a due date's local midnight).
    pub deadline: DateTime<Utc>,
    /// What it is about ([`crate::domain::NewNotice::subject`]).
    pub subject: String,
    /// The earliest instant at which it may be sent.
    pub send_at: DateTime<Utc>,
}
