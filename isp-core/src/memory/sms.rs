//! An SMS sender that records what it sent.

use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::domain::PhoneNumber;
use crate::error::{Error, Result};
use crate::ports::{SmsReceipt, SmsSender};

/// One message handed to a [`RecordingSms`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    /// Recipient.
    pub to: PhoneNumber,
    /// Text.
    pub body: String,
}

/// How a [`RecordingSms`] fails when told to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsFailure {
    /// `Error::Unavailable` (retry later).
    Transient,
    /// `Error::Rejected` (this message will not go through).
    Permanent,
}

#[derive(Debug, Default)]
struct Inner {
    sent: Vec<SentSms>,
    failed: Vec<(SentSms, SmsFailure)>,
    failing: Option<(SmsFailure, usize)>,
}

/// An [`SmsSender`] that accepts every message and records it, or fails the
/// next N sends when told to ([`fail_next`](RecordingSms::fail_next)). Failed
/// sends are recorded separately and are not in [`sent`](RecordingSms::sent).
#[derive(Debug, Default)]
pub struct RecordingSms {
    inner: Mutex<Inner>,
}

impl RecordingSms {
    /// A sender that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `n` sends fail with `failure` (replacing any earlier setting).
    pub fn fail_next(&self, n: usize, failure: SmsFailure) {
        self.lock().failing = (n > 0).then_some((failure, n));
    }

    /// Makes every send fail with `failure` until [`stop_failing`](RecordingSms::stop_failing).
    pub fn fail_always(&self, failure: SmsFailure) {
        self.fail_next(usize::MAX, failure);
    }

    /// Accepts sends again.
    pub fn stop_failing(&self) {
        self.lock().failing = None;
    }

    /// Every accepted message, in order.
    pub fn sent(&self) -> Vec<SentSms> {
        self.lock().sent.clone()
    }

    /// The bodies of the accepted messages to `to`, in order.
    pub fn sent_to(&self, to: &PhoneNumber) -> Vec<String> {
        self.lock()
            .sent
            .iter()
            .filter(|m| &m.to == to)
            .map(|m| m.body.clone())
            .collect()
    }

    /// Every refused send, in order, with how it failed.
    pub fn failed(&self) -> Vec<(SentSms, SmsFailure)> {
        self.lock().failed.clone()
    }

    /// Number of sends attempted (accepted and refused).
    pub fn attempts(&self) -> usize {
        let s = self.lock();
        s.sent.len() + s.failed.len()
    }

    /// Forgets what was sent and refused (the failure setting stays).
    pub fn clear(&self) {
        let mut s = self.lock();
        s.sent.clear();
        s.failed.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl SmsSender for RecordingSms {
    async fn send(&self, to: &PhoneNumber, body: &str) -> Result<SmsReceipt> {
        let mut s = self.lock();
        let msg = SentSms {
            to: to.clone(),
            body: body.to_owned(),
        };
        if let Some((failure, left)) = s.failing {
            s.failing = (left > 1).then_some((failure, left.saturating_sub(1)));
            s.failed.push((msg, failure));
            return Err(match failure {
                SmsFailure::Transient => {
                    Error::unavailable("sms gateway", "recording sender told to fail transiently")
                }
                SmsFailure::Permanent => Error::Rejected {
                    service: "sms gateway".into(),
                    detail: "recording sender told to refuse the message".into(),
                },
            });
        }
        s.sent.push(msg);
        Ok(SmsReceipt {
            provider_id: Some(format!("recorded-{}", s.sent.len())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_and_fails_on_demand() {
        let sms = RecordingSms::new();
        let to = PhoneNumber::parse("to", "+255712000001").unwrap();
        let r = sms.send(&to, "one").await.unwrap();
        assert_eq!(r.provider_id.as_deref(), Some("recorded-1"));

        sms.fail_next(2, SmsFailure::Transient);
        assert!(sms.send(&to, "two").await.unwrap_err().is_transient());
        assert!(sms.send(&to, "three").await.unwrap_err().is_transient());
        sms.send(&to, "four").await.unwrap();

        sms.fail_next(1, SmsFailure::Permanent);
        let e = sms.send(&to, "five").await.unwrap_err();
        assert!(!e.is_transient());
        assert!(matches!(e, Error::Rejected { .. }));

        sms.fail_always(SmsFailure::Transient);
        for _ in 0..3 {
            assert!(sms.send(&to, "x").await.is_err());
        }
        sms.stop_failing();
        sms.send(&to, "six").await.unwrap();

        assert_eq!(sms.sent_to(&to), vec!["one", "four", "six"]);
        assert_eq!(sms.failed().len(), 6);
        assert_eq!(sms.attempts(), 9);
        sms.clear();
        assert!(sms.sent().is_empty());
    }
}
