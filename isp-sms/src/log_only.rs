//! A sender that only logs: for the demo and for trying things out.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use isp_core::domain::PhoneNumber;
use isp_core::ports::{SmsReceipt, SmsSender};
use isp_core::Result;

use crate::africas_talking::check_message;

/// Logs each message as a `tracing` event (recipient and length, not the
/// text) and accepts it. Receipts are `log-1`, `log-2`, ...
#[derive(Debug, Default)]
pub struct LogSender {
    sent: AtomicU64,
}

impl LogSender {
    /// A new sender that has sent nothing.
    pub fn new() -> Self {
        LogSender::default()
    }

    /// How many messages it has accepted.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl SmsSender for LogSender {
    async fn send(&self, to: &PhoneNumber, body: &str) -> Result<SmsReceipt> {
        check_message(body)?;
        let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(
            gateway = "log",
            to = %to,
            chars = body.chars().count(),
            provider_id = %format!("log-{n}"),
            "sms (log only, not sent)"
        );
        Ok(SmsReceipt {
            provider_id: Some(format!("log-{n}")),
        })
    }
}
