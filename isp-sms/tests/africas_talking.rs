//! Africa's Talking against a local HTTP server.

mod common;

use std::time::Duration;

use common::*;
use isp_core::Error;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn at_config(base: &str) -> String {
    format!(
        r#"
kind = "africas_talking"
username = "myisp"
api_key = "{SECRET}"
from = "MYISP"
base_url = "{base}"
{FAST_HTTP}"#
    )
}

fn accepted(code: u16, status: &str, id: &str) -> serde_json::Value {
    json!({"SMSMessageData": {
        "Message": "Sent to 1/1 Total Cost: KES 0.8000",
        "Recipients": [{
            "statusCode": code, "number": "+255712345678", "status": status,
            "cost": "KES 0.8000", "messageId": id
        }]
    }})
}

#[tokio::test]
async fn sends_the_documented_request_and_reads_the_message_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/version1/messaging"))
        .and(header("apiKey", SECRET))
        .and(header("accept", "application/json"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(201).set_body_json(accepted(101, "Success", "ATXid_1")))
        .expect(1)
        .mount(&server)
        .await;
    let sender = config(&at_config(&server.uri())).build().unwrap();
    let receipt = sender
        .send(&phone(), "Your access expires in 10 minutes & more")
        .await
        .unwrap();
    assert_eq!(receipt.provider_id.as_deref(), Some("ATXid_1"));
    let form = form_of(&server, 0).await;
    assert_eq!(field(&form, "username"), Some("myisp"));
    assert_eq!(field(&form, "to"), Some("+255712345678"));
    assert_eq!(
        field(&form, "message"),
        Some("Your access expires in 10 minutes & more")
    );
    assert_eq!(field(&form, "from"), Some("MYISP"));
    assert_eq!(form.len(), 4, "{form:?}");
}

#[tokio::test]
async fn from_is_optional_and_base_url_keeps_a_prefix() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/proxy/version1/messaging"))
        .respond_with(ResponseTemplate::new(201).set_body_json(accepted(100, "Processed", "ATXid_2")))
        .expect(1)
        .mount(&server)
        .await;
    let text = format!(
        "kind = \"africas_talking\"\nusername = \"myisp\"\napi_key = \"{SECRET}\"\nbase_url = \"{}/proxy\"\n{FAST_HTTP}",
        server.uri()
    );
    let receipt = config(&text).build().unwrap().send(&phone(), "hi").await.unwrap();
    assert_eq!(receipt.provider_id.as_deref(), Some("ATXid_2"));
    let form = form_of(&server, 0).await;
    assert_eq!(field(&form, "from"), None);
}

#[tokio::test]
async fn a_server_error_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(accepted(101, "Success", "ATXid_3")))
        .mount(&server)
        .await;
    let sender = config(&at_config(&server.uri())).build().unwrap();
    let receipt = sender.send(&phone(), "hi").await.unwrap();
    assert_eq!(receipt.provider_id.as_deref(), Some("ATXid_3"));
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn a_client_error_is_rejected_and_sent_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_string("Request is missing required form field 'to'"),
        )
        .mount(&server)
        .await;
    let err = config(&at_config(&server.uri()))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert!(err.to_string().contains("400"), "{err}");
    assert!(err.to_string().contains("missing required form field"), "{err}");
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn unauthorized_is_an_authentication_error_without_the_key() {
    logs();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_string(format!("The supplied authentication is invalid: {SECRET}")),
        )
        .mount(&server)
        .await;
    let sender = config(&at_config(&server.uri())).build().unwrap();
    let err = sender.send(&phone(), "hi").await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert_eq!(requests(&server).await, 1);
    assert!(
        err.to_string().contains("supplied authentication is invalid"),
        "{err}"
    );
    assert_no_secret("error Display", &err.to_string());
    assert_no_secret("error Debug", &format!("{err:?}"));
    assert_no_secret("sender Debug", &format!("{sender:?}"));
    assert_no_secret(
        "config Debug",
        &format!("{:?}", config(&at_config(&server.uri()))),
    );
    assert_no_secret("logs", &logs());
}

#[tokio::test]
async fn a_refused_recipient_is_rejected_with_the_gateway_status() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"SMSMessageData": {
                "Message": "Sent to 0/1 Total Cost: 0",
                "Recipients": [{"statusCode": 405, "number": "+255712345678", "status": "InsufficientBalance",
                                "cost": "0", "messageId": "None"}]
            }})),
        )
        .mount(&server)
        .await;
    let err = config(&at_config(&server.uri()))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    assert!(err.to_string().contains("InsufficientBalance"), "{err}");
    assert!(err.to_string().contains("+255712345678"), "{err}");
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn do_not_disturb_comes_as_409_and_is_rejected() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(409).set_body_json(json!({"SMSMessageData": {
                "Message": "Sent to 0/1 Total Cost: 0",
                "Recipients": [{"statusCode": 409, "number": "+255712345678",
                                "status": "DoNotDisturbRejection", "cost": "0", "messageId": "None"}]
            }})),
        )
        .mount(&server)
        .await;
    let err = config(&at_config(&server.uri()))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    assert!(err.to_string().contains("DoNotDisturbRejection"), "{err}");
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn no_recipient_at_all_is_rejected_with_the_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}})),
        )
        .mount(&server)
        .await;
    let err = config(&at_config(&server.uri()))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    assert!(err.to_string().contains("InvalidSenderId"), "{err}");
}

#[tokio::test]
async fn a_gateway_error_per_recipient_is_transient_and_retried_within_budget() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(accepted(501, "GatewayError", "None")))
        .mount(&server)
        .await;
    let err = config(&at_config(&server.uri()))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("GatewayError"), "{err}");
    assert!(err.to_string().contains("gave up after 3 attempts"), "{err}");
    assert_eq!(requests(&server).await, 3, "1 try + max_retries = 2");
}

#[tokio::test]
async fn a_2xx_without_sms_message_data_is_a_protocol_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>captive portal</html>"))
        .mount(&server)
        .await;
    let err = config(&at_config(&server.uri()))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn a_timeout_after_the_request_is_sent_once_with_an_unknown_outcome() {
    logs();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(accepted(101, "Success", "late"))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let sender = config(&at_config(&server.uri())).build().unwrap();
    let started = std::time::Instant::now();
    let err = sender.send(&phone(), "hi").await.unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err:?}");
    assert!(!err.is_transient(), "a retry could send the SMS twice");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(requests(&server).await, 1, "the message was sent more than once");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_no_secret("timeout error", &format!("{err} {err:?}"));
    assert_no_secret("logs", &logs());
}

#[tokio::test]
async fn a_refused_connection_is_transient_unavailable() {
    let base = format!("http://127.0.0.1:{}", closed_port());
    let err = config(&at_config(&base))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    assert_no_secret("connect error", &format!("{err} {err:?}"));
}

#[tokio::test]
async fn too_many_requests_is_retried() {
    logs();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(accepted(102, "Queued", "ATXid_4")))
        .mount(&server)
        .await;
    let receipt = config(&at_config(&server.uri()))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap();
    assert_eq!(receipt.provider_id.as_deref(), Some("ATXid_4"));
    assert_eq!(requests(&server).await, 3);
    let logged = logs();
    assert!(logged.contains("retrying"), "{logged}");
    assert_no_secret("logs", &logged);
}

#[tokio::test]
async fn an_empty_message_is_refused_before_any_request() {
    let server = MockServer::start().await;
    let err = config(&at_config(&server.uri()))
        .build()
        .unwrap()
        .send(&phone(), "  ")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(requests(&server).await, 0);
}

#[test]
fn the_sandbox_username_selects_the_sandbox_host() {
    let sender = config(&format!(
        "kind = \"africas_talking\"\nusername = \"sandbox\"\napi_key = \"{SECRET}\""
    ))
    .build()
    .unwrap();
    let debug = format!("{sender:?}");
    assert!(
        debug.contains("api.sandbox.africastalking.com/version1/messaging"),
        "{debug}"
    );
    let sender = config(&format!(
        "kind = \"africas_talking\"\nusername = \"myisp\"\napi_key = \"{SECRET}\""
    ))
    .build()
    .unwrap();
    let debug = format!("{sender:?}");
    assert!(
        debug.contains("https://api.africastalking.com/version1/messaging"),
        "{debug}"
    );
    assert_no_secret("sender Debug", &debug);
}
