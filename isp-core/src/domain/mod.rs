//! Domain types: tenants, routers, subscribers and devices, vouchers,
//! services, plans, the ledger, notices and audit events.
//!
//! One file per aggregate; everything is re-exported here, so paths are
//! `isp_core::domain::X` whatever file `X` lives in.

#[macro_use]
mod macros;

mod audit;
mod grant;
mod ids;
mod lease;
mod ledger;
mod notice;
mod service;
mod subscriber;
mod tenant;
mod values;
mod voucher;

#[cfg(test)]
mod enum_tests;

pub use audit::{AuditEvent, AuditOutcome};
pub use grant::{
    Extension, GrantWrite, GrantWritten, NewPayment, Payment, PaymentReference, PendingGrant,
    MAX_EXTENSION_SECS,
};
pub use ids::{
    CustomerId, DeviceId, LedgerEntryId, NoticeId, OwnerTag, PlanId, RouterId, ServiceId, SubscriberId,
    TenantId, VoucherId, OWNER_COMMENT_PREFIX,
};
pub use lease::{Claim, Lease};
pub use ledger::{LedgerEntry, LedgerKind, NewLedgerEntry};
pub use notice::{NewNotice, Notice, NoticeKind, NoticeStatus};
pub use service::{
    Connection, Customer, NewCustomer, NewPlan, NewService, Plan, SecretPassword, Service, ServiceStatus,
};
pub use subscriber::{Device, ExpiryDone, NewSubscriber, Subscriber};
pub use tenant::{
    RadiusSession, RadiusSessionKind, Router, RouterCredentials, RouterStatus, Tenant, Transport,
};
pub use values::{
    parse_ipv4, Currency, Ipv4Cidr, MacAddress, Money, PhoneNumber, RateLimit, RosDuration, RosName,
};
pub use voucher::{NewVoucher, Voucher, VoucherExpiryReason, VoucherStatus};
