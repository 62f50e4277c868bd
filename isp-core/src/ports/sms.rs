use std::fmt::Debug;

use async_trait::async_trait;

use crate::domain::PhoneNumber;
use crate::error::Result;

/// What a gateway said when it accepted a message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SmsReceipt {
    /// The gateway's message id, when it gives one.
    pub provider_id: Option<String>,
}

/// Sends one SMS.
///
/// # Contract
/// `Ok` means the gateway accepted the message. A transient error
/// ([`crate::Error::is_transient`]) means the message certainly was not sent
/// and may be retried later. [`crate::Error::OutcomeUnknown`]
/// ([`crate::Error::is_outcome_unknown`]) means the request may have reached
/// the gateway and nothing says whether it was sent (a timeout or a broken
/// connection after the request was written, an HTTP 5xx other than 503): it
/// is not transient and must not be resent automatically, or the customer may
/// get the text twice; the gateway's logs or delivery reports tell. Any other
/// error means this message will not go through as it is. Implementations
/// retry only failures where the message certainly was not sent, and only
/// within a short, bounded budget.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SmsSender: Send + Sync + Debug {
    /// Sends `body` to `to`.
    async fn send(&self, to: &PhoneNumber, body: &str) -> Result<SmsReceipt>;
}
