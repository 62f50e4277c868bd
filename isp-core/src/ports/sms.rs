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
/// ([`crate::Error::is_transient`]) may be retried later; any other error means
/// this message will not go through as it is. Implementations retry transient
/// failures themselves only within a short, bounded budget.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SmsSender: Send + Sync + Debug {
    /// Sends `body` to `to`.
    async fn send(&self, to: &PhoneNumber, body: &str) -> Result<SmsReceipt>;
}
