//! Twilio against a local HTTP server.

mod common;

use std::time::Duration;

use common::*;
use isp_core::Error;
use serde_json::json;
use wiremock::matchers::{basic_auth, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const MESSAGES: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";

fn twilio_config(base: &str, from: &str) -> String {
    format!(
        r#"
kind = "twilio"
account_sid = "{SID}"
auth_token = "{SECRET}"
{from}
base_url = "{base}"
{FAST_HTTP}"#
    )
}

fn created(sid: &str) -> serde_json::Value {
    json!({"sid": sid, "status": "queued", "to": "+255712345678", "error_code": null, "error_message": null})
}

#[tokio::test]
async fn sends_the_documented_request_with_basic_auth() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(basic_auth(SID, SECRET))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created("SM1")))
        .expect(1)
        .mount(&server)
        .await;
    let sender = config(&twilio_config(&server.uri(), r#"from = "+15005550006""#))
        .build()
        .unwrap();
    let receipt = sender.send(&phone(), "Läuft ab: 10 min").await.unwrap();
    assert_eq!(receipt.provider_id.as_deref(), Some("SM1"));
    let form = form_of(&server, 0).await;
    assert_eq!(field(&form, "To"), Some("+255712345678"));
    assert_eq!(field(&form, "From"), Some("+15005550006"));
    assert_eq!(field(&form, "Body"), Some("Läuft ab: 10 min"));
    assert_eq!(field(&form, "MessagingServiceSid"), None);
    // The token travels only in the Authorization header, never in the URL.
    let reqs = server.received_requests().await.unwrap();
    assert_no_secret("request URL", reqs[0].url.as_str());
}

#[tokio::test]
async fn a_messaging_service_replaces_from() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(ResponseTemplate::new(201).set_body_json(created("SM2")))
        .mount(&server)
        .await;
    let sender = config(&twilio_config(
        &server.uri(),
        r#"messaging_service_sid = "MG0123456789abcdef0123456789abcdef""#,
    ))
    .build()
    .unwrap();
    sender.send(&phone(), "hi").await.unwrap();
    let form = form_of(&server, 0).await;
    assert_eq!(
        field(&form, "MessagingServiceSid"),
        Some("MG0123456789abcdef0123456789abcdef")
    );
    assert_eq!(field(&form, "From"), None);
}

#[tokio::test]
async fn service_unavailable_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"code": 20503, "message": "Service Unavailable", "status": 503})),
        )
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created("SM3")))
        .mount(&server)
        .await;
    let receipt = config(&twilio_config(&server.uri(), r#"from = "+15005550006""#))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap();
    assert_eq!(receipt.provider_id.as_deref(), Some("SM3"));
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test]
async fn a_client_error_is_rejected_with_twilios_code_and_sent_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 21211,
            "message": "The 'To' number +255712345678 is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400
        })))
        .mount(&server)
        .await;
    let err = config(&twilio_config(&server.uri(), r#"from = "+15005550006""#))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    assert!(err.to_string().contains("21211"), "{err}");
    assert!(err.to_string().contains("not a valid phone number"), "{err}");
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn unauthorized_and_forbidden_are_authentication_errors() {
    for status in [401u16, 403] {
        logs();
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({
                "code": 20003, "message": format!("Authenticate {SECRET}"), "status": status
            })))
            .mount(&server)
            .await;
        let sender = config(&twilio_config(&server.uri(), r#"from = "+15005550006""#))
            .build()
            .unwrap();
        let err = sender.send(&phone(), "hi").await.unwrap_err();
        assert!(matches!(err, Error::Authentication { .. }), "{status}: {err:?}");
        assert!(err.to_string().contains("20003"), "{err}");
        assert_eq!(requests(&server).await, 1, "{status} must not be retried");
        assert_no_secret("error Display", &err.to_string());
        assert_no_secret("error Debug", &format!("{err:?}"));
        assert_no_secret("sender Debug", &format!("{sender:?}"));
        assert_no_secret("logs", &logs());
    }
}

#[tokio::test]
async fn a_message_failed_at_once_is_rejected() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "sid": "SM4", "status": "failed", "error_code": 30006, "error_message": "Landline or unreachable carrier"
        })))
        .mount(&server)
        .await;
    let err = config(&twilio_config(&server.uri(), r#"from = "+15005550006""#))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    assert!(err.to_string().contains("30006"), "{err}");
}

#[tokio::test]
async fn a_2xx_without_a_sid_is_a_protocol_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"ok": true})))
        .mount(&server)
        .await;
    let err = config(&twilio_config(&server.uri(), r#"from = "+15005550006""#))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn an_internal_error_is_sent_once_with_an_unknown_outcome() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"code": 20500, "message": "Internal Server Error", "status": 500})),
        )
        .mount(&server)
        .await;
    let err = config(&twilio_config(&server.uri(), r#"from = "+15005550006""#))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert!(err.to_string().contains("Twilio error 20500"), "{err}");
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn a_documented_rate_limit_code_is_retried_whatever_the_status() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": 20429, "message": "Too Many Requests", "status": 400})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created("SM4")))
        .mount(&server)
        .await;
    let receipt = config(&twilio_config(&server.uri(), r#"from = "+15005550006""#))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap();
    assert_eq!(receipt.provider_id.as_deref(), Some("SM4"));
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn a_timeout_after_the_request_is_sent_once_with_an_unknown_outcome() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(created("late"))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let err = config(&twilio_config(&server.uri(), r#"from = "+15005550006""#))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(requests(&server).await, 1);
    assert_no_secret("timeout error", &format!("{err} {err:?}"));
}

#[tokio::test]
async fn a_refused_connection_is_transient_unavailable() {
    let base = format!("http://127.0.0.1:{}", closed_port());
    let err = config(&twilio_config(&base, r#"from = "+15005550006""#))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_no_secret("connect error", &format!("{err} {err:?}"));
}
