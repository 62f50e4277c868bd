//! An SMS is never sent twice: every gateway against a raw TCP server that
//! counts the requests it has read in full, then answers as scripted.
//!
//! A request that may have reached the gateway is repeated only when the
//! gateway says it did not take it (503, 429); otherwise the outcome is
//! `Error::OutcomeUnknown` after exactly one request.

mod common;
mod raw_server;

use common::*;
use isp_core::Error;
use raw_server::{RawServer, Script};

const SID: &str = "AC0123456789abcdef0123456789abcdef";

/// One gateway: its configuration for a base URL and its success reply.
struct Gateway {
    name: &'static str,
    config: fn(&str) -> String,
    accepted: Script,
}

fn gateways() -> Vec<Gateway> {
    vec![
        Gateway {
            name: "africa's talking",
            config: |base| {
                format!(
                    "kind = \"africas_talking\"\nusername = \"myisp\"\napi_key = \"{SECRET}\"\nbase_url = \"{base}\"\n{FAST_HTTP}"
                )
            },
            accepted: Script::reply(
                201,
                &[],
                r#"{"SMSMessageData":{"Message":"Sent to 1/1","Recipients":[{"statusCode":101,"number":"+255712345678","status":"Success","cost":"KES 0.8","messageId":"ATXid_1"}]}}"#,
            ),
        },
        Gateway {
            name: "twilio",
            config: |base| {
                format!(
                    "kind = \"twilio\"\naccount_sid = \"{SID}\"\nauth_token = \"{SECRET}\"\nfrom = \"+15005550006\"\nbase_url = \"{base}\"\n{FAST_HTTP}"
                )
            },
            accepted: Script::reply(
                201,
                &[],
                r#"{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued"}"#,
            ),
        },
        Gateway {
            name: "webhook",
            config: |base| {
                format!(
                    "kind = \"webhook\"\nurl = \"{base}/send\"\nbody = '{{\"to\": \"{{to}}\", \"text\": \"{{message}}\"}}'\nresponse_id_pointer = \"/id\"\n{FAST_HTTP}\n[headers]\nAuthorization = \"Bearer {SECRET}\"\n"
                )
            },
            accepted: Script::reply(200, &[], r#"{"id":"wh-1"}"#),
        },
    ]
}

/// Sends one message through `gateway` against a server playing `script`.
async fn send(gateway: &Gateway, script: Vec<Script>) -> (Result<(), Error>, RawServer) {
    let server = RawServer::start(script).await;
    let sender = config(&(gateway.config)(&server.base()))
        .build()
        .expect("gateway config");
    let result = sender
        .send(&phone(), "Your access expires soon")
        .await
        .map(|_| ());
    (result, server)
}

#[tokio::test]
async fn a_request_read_in_full_and_never_answered_is_sent_once_and_unknown() {
    for gateway in gateways() {
        let (result, server) = send(&gateway, vec![Script::Silent]).await;
        let err = result.unwrap_err();
        assert!(err.is_outcome_unknown(), "{}: {err:?}", gateway.name);
        assert!(!err.is_transient(), "{}: {err:?}", gateway.name);
        assert!(err.to_string().contains("timed out"), "{}: {err}", gateway.name);
        assert_no_secret("unknown outcome", &format!("{err} {err:?}"));
        assert_eq!(
            server.requests(),
            1,
            "{}: the message went out more than once",
            gateway.name
        );
    }
}

#[tokio::test]
async fn a_500_is_sent_once_and_unknown() {
    for gateway in gateways() {
        let (result, server) = send(
            &gateway,
            vec![Script::reply(500, &[], r#"{"message":"Internal Server Error"}"#)],
        )
        .await;
        let err = result.unwrap_err();
        assert!(err.is_outcome_unknown(), "{}: {err:?}", gateway.name);
        assert!(err.to_string().contains("500"), "{}: {err}", gateway.name);
        assert_eq!(server.requests(), 1, "{}", gateway.name);
    }
}

#[tokio::test]
async fn a_503_with_or_without_retry_after_is_retried_and_succeeds() {
    for retry_after in [None, Some("0")] {
        for gateway in gateways() {
            let headers: Vec<(&str, &str)> = retry_after.map(|v| ("Retry-After", v)).into_iter().collect();
            let (result, server) = send(
                &gateway,
                vec![Script::reply(503, &headers, "busy"), gateway.accepted.clone()],
            )
            .await;
            assert!(result.is_ok(), "{} ({retry_after:?}): {result:?}", gateway.name);
            assert_eq!(server.requests(), 2, "{} ({retry_after:?})", gateway.name);
        }
    }
}

#[tokio::test]
async fn a_refused_connection_is_retried_within_the_budget() {
    for gateway in gateways() {
        let base = format!("http://127.0.0.1:{}", closed_port());
        let sender = config(&(gateway.config)(&base)).build().unwrap();
        let err = sender.send(&phone(), "hi").await.unwrap_err();
        assert!(err.is_transient(), "{}: {err:?}", gateway.name);
        assert!(
            err.to_string().contains("cannot connect"),
            "{}: {err}",
            gateway.name
        );
        // FAST_HTTP: max_retries = 2.
        assert!(
            err.to_string().contains("gave up after 3 attempts"),
            "{}: {err}",
            gateway.name
        );
    }
}

#[tokio::test]
async fn a_connection_reset_after_the_request_is_sent_once_and_unknown() {
    for gateway in gateways() {
        let (result, server) = send(&gateway, vec![Script::Close]).await;
        let err = result.unwrap_err();
        assert!(err.is_outcome_unknown(), "{}: {err:?}", gateway.name);
        assert_eq!(server.requests(), 1, "{}", gateway.name);
    }
}

#[tokio::test]
async fn too_many_requests_then_accepted_is_sent_twice_at_most() {
    for gateway in gateways() {
        let (result, server) = send(
            &gateway,
            vec![
                Script::reply(429, &[("Retry-After", "0")], "slow down"),
                gateway.accepted.clone(),
            ],
        )
        .await;
        assert!(result.is_ok(), "{}: {result:?}", gateway.name);
        assert_eq!(server.requests(), 2, "{}", gateway.name);
    }
}
