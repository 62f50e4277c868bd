//! Twilio: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`, form-encoded,
//! HTTP Basic auth with the account sid and auth token.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use isp_core::domain::PhoneNumber;
use isp_core::ports::{SmsReceipt, SmsSender};
use isp_core::{Error, Result};
use reqwest::header::ACCEPT;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::africas_talking::{check_message, check_sender_id};
use crate::error::{map_error, Attempt, Failure, Scrubber};
use crate::http::{exchange, join_path, parse_base_url, with_retries, HttpOptions, Reply};

const SERVICE: &str = "twilio";

/// The Twilio REST API host.
pub const TWILIO_URL: &str = "https://api.twilio.com";

/// Who a Twilio message comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioFrom {
    /// A Twilio phone number (E.164), a short code, or an alphanumeric sender id (`From`).
    Number(String),
    /// A messaging service, which picks the number (`MessagingServiceSid`, `MG...`).
    MessagingService(String),
}

/// What a [`TwilioSender`] needs.
#[derive(Debug, Clone)]
pub struct TwilioSettings {
    /// The account sid (`AC` + 32 hex digits). Not a secret: it is in every URL.
    pub account_sid: String,
    /// The auth token (the secret).
    pub auth_token: SecretString,
    /// Sender.
    pub from: TwilioFrom,
    /// API host; [`TWILIO_URL`] when `None`.
    pub base_url: Option<String>,
    /// Timeouts and retries.
    pub http: HttpOptions,
}

/// Sends SMS through Twilio's Programmable Messaging API.
///
/// A 2xx reply with a message `sid` is success (the sid is the receipt); a
/// message already `failed`/`undelivered` in the reply is [`Error::Rejected`];
/// errors carry Twilio's error code and message (`Twilio error 21211: ...`).
/// HTTP 429 and 503, and Twilio errors 20429 (Too Many Requests) and 20503
/// (Service Unavailable), are retried: Twilio did not take the message. Other
/// 5xx and timeouts after the request was sent are [`Error::OutcomeUnknown`].
pub struct TwilioSender {
    client: reqwest::Client,
    endpoint: Url,
    account_sid: String,
    auth_token: SecretString,
    from: TwilioFrom,
    http: HttpOptions,
    scrubber: Scrubber,
}

impl fmt::Debug for TwilioSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSender")
            .field("endpoint", &self.endpoint.as_str())
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[redacted]")
            .field("from", &self.from)
            .field("http", &self.http)
            .finish()
    }
}

/// `prefix` followed by 32 hex digits, as Twilio's sids are.
fn check_sid(field: &str, raw: &str, prefix: &str) -> Result<String> {
    let value = raw.trim();
    let ok =
        value.len() == 34 && value.starts_with(prefix) && value[2..].chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Error::invalid(
            field,
            raw,
            format!("a Twilio sid is {prefix} followed by 32 hex digits"),
        ))
    }
}

impl TwilioSender {
    /// Checks `settings` and builds the sender. Errors name the field (`sms.account_sid`, ...).
    pub fn new(settings: TwilioSettings) -> Result<Self> {
        let TwilioSettings {
            account_sid,
            auth_token,
            from,
            base_url,
            http,
        } = settings;
        let account_sid = check_sid("sms.account_sid", &account_sid, "AC")?;
        if auth_token.expose_secret().trim().is_empty() {
            return Err(Error::invalid("sms.auth_token", "", "must not be empty"));
        }
        let from = match from {
            TwilioFrom::Number(n) => TwilioFrom::Number(check_sender_id("sms.from", &n)?),
            TwilioFrom::MessagingService(s) => {
                TwilioFrom::MessagingService(check_sid("sms.messaging_service_sid", &s, "MG")?)
            }
        };
        let base = parse_base_url("sms.base_url", base_url.as_deref().unwrap_or(TWILIO_URL))?;
        let endpoint = join_path(
            "sms.base_url",
            &base,
            &["2010-04-01", "Accounts", &account_sid, "Messages.json"],
        )?;
        http.validate("sms.http")?;
        Ok(TwilioSender {
            client: http.client(SERVICE)?,
            endpoint,
            account_sid,
            scrubber: Scrubber::new([auth_token.clone()]),
            auth_token,
            from,
            http,
        })
    }

    async fn attempt(&self, to: &PhoneNumber, body: &str) -> std::result::Result<SmsReceipt, Attempt> {
        let mut form = vec![("To", to.as_str()), ("Body", body)];
        match &self.from {
            TwilioFrom::Number(n) => form.push(("From", n.as_str())),
            TwilioFrom::MessagingService(s) => form.push(("MessagingServiceSid", s.as_str())),
        }
        let request = self
            .client
            .post(self.endpoint.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .header(ACCEPT, "application/json")
            .form(&form);
        let reply = exchange(request).await.map_err(|f| self.fail(f, None))?;
        self.read_reply(to, reply)
    }

    fn read_reply(&self, to: &PhoneNumber, reply: Reply) -> std::result::Result<SmsReceipt, Attempt> {
        if !reply.status.is_success() {
            let detail = match serde_json::from_str::<TwilioError>(&reply.body) {
                Ok(TwilioError {
                    code: Some(code @ (20429 | 20503)),
                    message,
                }) => {
                    // Documented "Too Many Requests" / "Service Unavailable":
                    // Twilio did not take the message, whatever the HTTP status.
                    return Err(self.fail(
                        Failure::Refused {
                            transient: true,
                            detail: format!(
                                "HTTP {}: Twilio error {code}: {}",
                                reply.status.as_u16(),
                                message.unwrap_or_default()
                            ),
                        },
                        reply.retry_after,
                    ));
                }
                Ok(TwilioError {
                    code: Some(code),
                    message,
                }) => format!("Twilio error {code}: {}", message.unwrap_or_default()),
                Ok(TwilioError {
                    code: None,
                    message: Some(message),
                }) => message,
                _ => reply.body,
            };
            return Err(self.fail(
                Failure::Status {
                    status: reply.status,
                    detail,
                },
                reply.retry_after,
            ));
        }
        let message: TwilioMessage = serde_json::from_str(&reply.body).map_err(|e| {
            self.fail(
                Failure::BadReply(format!("not a message resource ({e}): {}", reply.body)),
                None,
            )
        })?;
        if matches!(message.status.as_deref(), Some("failed" | "undelivered")) {
            return Err(self.fail(
                Failure::Refused {
                    transient: false,
                    detail: format!(
                        "message to {to} {}: error {} {}",
                        message.status.as_deref().unwrap_or_default(),
                        message.error_code.map(|c| c.to_string()).unwrap_or_default(),
                        message.error_message.unwrap_or_default()
                    ),
                },
                None,
            ));
        }
        tracing::debug!(gateway = SERVICE, to = %to, provider_id = %message.sid, status = ?message.status, "sms accepted");
        Ok(SmsReceipt {
            provider_id: Some(message.sid),
        })
    }

    fn fail(&self, failure: Failure, retry_after: Option<Duration>) -> Attempt {
        Attempt {
            error: map_error(SERVICE, failure, &self.scrubber),
            retry_after,
        }
    }
}

#[async_trait]
impl SmsSender for TwilioSender {
    async fn send(&self, to: &PhoneNumber, body: &str) -> Result<SmsReceipt> {
        check_message(body)?;
        with_retries(SERVICE, &self.http, || self.attempt(to, body)).await
    }
}

#[derive(Deserialize)]
struct TwilioMessage {
    sid: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    error_message: Option<String>,
}

#[derive(Deserialize)]
struct TwilioError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}
