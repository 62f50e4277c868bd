//! The log-only sender.

mod common;

use common::*;
use isp_core::ports::SmsSender;
use isp_core::Error;
use isp_sms::LogSender;

#[tokio::test]
async fn logs_recipient_and_length_but_not_the_text() {
    logs();
    let sender = LogSender::new();
    let r1 = sender.send(&phone(), "code 999111 expires soon").await.unwrap();
    let r2 = sender.send(&phone(), "ok").await.unwrap();
    assert_eq!(r1.provider_id.as_deref(), Some("log-1"));
    assert_eq!(r2.provider_id.as_deref(), Some("log-2"));
    assert_eq!(sender.sent(), 2);
    let logged = logs();
    assert!(logged.contains("+255712345678"), "{logged}");
    assert!(logged.contains("chars=24"), "{logged}");
    assert!(
        !logged.contains("999111"),
        "the text must not be logged: {logged}"
    );
}

#[tokio::test]
async fn an_empty_message_is_invalid() {
    let err = LogSender::new().send(&phone(), "").await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
}
