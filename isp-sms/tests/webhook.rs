//! The generic webhook against a local HTTP server.

mod common;

use std::time::Duration;

use common::*;
use isp_core::Error;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TRICKY: &str = "He said \"pay\" & go\\now\nline2 {to} 100% ✓";

fn json_config(base: &str) -> String {
    format!(
        r#"
kind = "webhook"
url = "{base}/api/send"
body = '{{"to": "{{to}}", "text": "{{message}}", "digits": "{{to_digits}}", "source": "isp"}}'
response_id_pointer = "/result/id"
{FAST_HTTP}
[headers]
Authorization = "Bearer {SECRET}"
X-Tenant = "t1"
"#
    )
}

#[tokio::test]
async fn a_json_template_is_filled_and_escaped() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/send"))
        .and(header("authorization", format!("Bearer {SECRET}").as_str()))
        .and(header("x-tenant", "t1"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "to": "+255712345678", "text": TRICKY, "digits": "255712345678", "source": "isp"
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"result": {"id": 4242}})))
        .expect(1)
        .mount(&server)
        .await;
    let sender = config(&json_config(&server.uri())).build().unwrap();
    let receipt = sender.send(&phone(), TRICKY).await.unwrap();
    assert_eq!(receipt.provider_id.as_deref(), Some("4242"));
}

#[tokio::test]
async fn a_form_template_is_form_encoded() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/sms"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    let text = format!(
        r#"
kind = "webhook"
method = "put"
url = "{}/sms"
content_type = "application/x-www-form-urlencoded"
body = "recipient={{to}}&text={{message}}&kind=notice"
{FAST_HTTP}"#,
        server.uri()
    );
    let receipt = config(&text)
        .build()
        .unwrap()
        .send(&phone(), TRICKY)
        .await
        .unwrap();
    assert_eq!(receipt.provider_id, None);
    let form = form_of(&server, 0).await;
    assert_eq!(field(&form, "recipient"), Some("+255712345678"));
    assert_eq!(field(&form, "text"), Some(TRICKY));
    assert_eq!(field(&form, "kind"), Some("notice"));
    assert_eq!(form.len(), 3, "{form:?}");
}

#[tokio::test]
async fn a_plain_template_is_sent_as_is() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("content-type", "text/plain"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let text = format!(
        "kind = \"webhook\"\nurl = \"{}/raw\"\ncontent_type = \"text/plain\"\nbody = \"TO {{to}}: {{message}}\"\n{FAST_HTTP}",
        server.uri()
    );
    config(&text)
        .build()
        .unwrap()
        .send(&phone(), "a & b")
        .await
        .unwrap();
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&reqs[0].body), "TO +255712345678: a & b");
}

#[tokio::test]
async fn a_get_gateway_gets_query_encoded_values() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/cgi-bin/sendsms"))
        .and(query_param("username", "isp"))
        .and(query_param("password", SECRET))
        .and(query_param("to", "+255712345678"))
        .and(query_param("text", TRICKY))
        .respond_with(ResponseTemplate::new(202).set_body_string("0: Accepted for delivery"))
        .expect(1)
        .mount(&server)
        .await;
    let text = format!(
        "kind = \"webhook\"\nmethod = \"GET\"\nurl = \"{}/cgi-bin/sendsms?username=isp&password={SECRET}&to={{to}}&text={{message}}\"\n{FAST_HTTP}",
        server.uri()
    );
    let cfg = config(&text);
    assert_no_secret("config Debug", &format!("{cfg:?}"));
    let sender = cfg.build().unwrap();
    assert_no_secret("sender Debug", &format!("{sender:?}"));
    sender.send(&phone(), TRICKY).await.unwrap();
}

#[tokio::test]
async fn a_secret_in_the_url_stays_out_of_errors() {
    logs();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).set_body_string(format!("bad password {SECRET}")))
        .mount(&server)
        .await;
    let text = format!(
        "kind = \"webhook\"\nmethod = \"GET\"\nurl = \"{}/send?password={SECRET}&to={{to}}&text={{message}}\"\n{FAST_HTTP}",
        server.uri()
    );
    let err = config(&text)
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("bad password [redacted]"), "{err}");
    assert_no_secret("error", &format!("{err} {err:?}"));
    assert_no_secret("logs", &logs());
    // Same for transport errors, whose reqwest text would carry the URL.
    let text = format!(
        "kind = \"webhook\"\nmethod = \"GET\"\nurl = \"http://127.0.0.1:{}/send?password={SECRET}&to={{to}}&text={{message}}\"\n{FAST_HTTP}",
        closed_port()
    );
    let err = config(&text)
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_no_secret("connect error", &format!("{err} {err:?}"));
    assert_no_secret("logs", &logs());
}

#[tokio::test]
async fn service_unavailable_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"result": {"id": "m-1"}})))
        .mount(&server)
        .await;
    let receipt = config(&json_config(&server.uri()))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap();
    assert_eq!(receipt.provider_id.as_deref(), Some("m-1"));
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn a_client_error_is_rejected_and_sent_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"error": "text too long"})))
        .mount(&server)
        .await;
    let err = config(&json_config(&server.uri()))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    assert!(err.to_string().contains("text too long"), "{err}");
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn unauthorized_is_an_authentication_error_without_the_token() {
    logs();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string(format!("invalid token Bearer {SECRET}")))
        .mount(&server)
        .await;
    let sender = config(&json_config(&server.uri())).build().unwrap();
    let err = sender.send(&phone(), "hi").await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert_eq!(requests(&server).await, 1);
    assert_no_secret("error Display", &err.to_string());
    assert_no_secret("error Debug", &format!("{err:?}"));
    assert_no_secret("sender Debug", &format!("{sender:?}"));
    assert_no_secret(
        "config Debug",
        &format!("{:?}", config(&json_config(&server.uri()))),
    );
    assert_no_secret("logs", &logs());
}

#[tokio::test]
async fn a_timeout_after_the_request_is_sent_once_with_an_unknown_outcome() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let err = config(&json_config(&server.uri()))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn a_bad_gateway_is_sent_once_with_an_unknown_outcome() {
    logs();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502).set_body_string("upstream failed"))
        .mount(&server)
        .await;
    let err = config(&json_config(&server.uri()))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert!(err.to_string().contains("502"), "{err}");
    assert_no_secret("error", &format!("{err} {err:?}"));
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "http://127.0.0.1:9/elsewhere"))
        .mount(&server)
        .await;
    let err = config(&json_config(&server.uri()))
        .build()
        .unwrap()
        .send(&phone(), "hi")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn headers_can_come_from_the_environment() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-api-key", SECRET))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    std::env::set_var("ISP_SMS_TEST_WEBHOOK_KEY", SECRET);
    let text = format!(
        "kind = \"webhook\"\nurl = \"{}/x\"\nbody = '{{\"to\":\"{{to}}\",\"m\":\"{{message}}\"}}'\n{FAST_HTTP}\n[headers_from_env]\nX-Api-Key = \"ISP_SMS_TEST_WEBHOOK_KEY\"\n",
        server.uri()
    );
    let sender = config(&text).build().unwrap();
    assert_no_secret("sender Debug", &format!("{sender:?}"));
    sender.send(&phone(), "hi").await.unwrap();
}
