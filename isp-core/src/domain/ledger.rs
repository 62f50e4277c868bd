//! The customer wallet: charges and payments.

use chrono::{DateTime, NaiveDate, Utc};

use super::{CustomerId, LedgerEntryId, Money, ServiceId};

string_enum! {
    /// A ledger entry kind.
    pub enum LedgerKind, field "ledger_kind" {
        /// A debit for a billing period.
        Charge = "charge",
        /// A payment received.
        Payment = "payment",
    }
}

/// A charge or payment in a customer's wallet.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    /// Id.
    pub id: LedgerEntryId,
    /// Customer.
    pub customer_id: CustomerId,
    /// Service (charges).
    pub service_id: Option<ServiceId>,
    /// Charge or payment.
    pub kind: LedgerKind,
    /// Amount (positive).
    pub amount: Money,
    /// Billing period start (charges).
    pub period_start: Option<NaiveDate>,
    /// Idempotency key (`charge:svc:3:2026-01-31`), unique.
    pub key: String,
    /// When recorded.
    pub created_at: DateTime<Utc>,
}

/// A new ledger entry.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLedgerEntry {
    /// Customer.
    pub customer_id: CustomerId,
    /// Service.
    pub service_id: Option<ServiceId>,
    /// Kind.
    pub kind: LedgerKind,
    /// Amount.
    pub amount: Money,
    /// Period start.
    pub period_start: Option<NaiveDate>,
    /// Idempotency key.
    pub key: String,
    /// When.
    pub created_at: DateTime<Utc>,
}
