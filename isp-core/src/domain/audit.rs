//! The activity log: what the engine did, to what, and how it went.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{RouterId, TenantId};

string_enum! {
    /// Outcome recorded in an audit event.
    pub enum AuditOutcome, field "outcome" {
        /// Done and confirmed.
        Success = "success",
        /// Failed; will be retried.
        Retry = "retry",
        /// Failed for good.
        Failure = "failure",
        /// Nothing to do.
        Skipped = "skipped",
    }
}

/// One line of the activity log (and, with a router, of that router's log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// Tenant, when known.
    pub tenant_id: Option<TenantId>,
    /// Action (`disconnect`, `provision`, `deprovision`, `charge`, `notice`, `router_offline`...).
    pub action: String,
    /// Subject (`subscriber:42`, `service:3`, `voucher:ABC`).
    pub subject: String,
    /// Router, for router actions.
    pub router_id: Option<RouterId>,
    /// Outcome.
    pub outcome: AuditOutcome,
    /// Reason or error text (never a secret).
    pub reason: Option<String>,
}
