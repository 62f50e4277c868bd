//! Africa's Talking: `POST {base}/version1/messaging`, form-encoded, `apiKey` header.

use std::fmt;

use async_trait::async_trait;
use isp_core::domain::PhoneNumber;
use isp_core::ports::{SmsReceipt, SmsSender};
use isp_core::{Error, Result};
use reqwest::header::{HeaderValue, ACCEPT};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::{map_error, Attempt, Failure, Scrubber};
use crate::http::{exchange, join_path, parse_base_url, with_retries, HttpOptions, Reply};

const SERVICE: &str = "africa's talking";

/// The live API host.
pub const AFRICAS_TALKING_LIVE_URL: &str = "https://api.africastalking.com";
/// The sandbox API host, used by default for the username `sandbox`.
pub const AFRICAS_TALKING_SANDBOX_URL: &str = "https://api.sandbox.africastalking.com";

/// What an [`AfricasTalkingSender`] needs.
#[derive(Debug, Clone)]
pub struct AfricasTalkingSettings {
    /// The application's username (`sandbox` for the sandbox).
    pub username: String,
    /// The application's API key.
    pub api_key: SecretString,
    /// Sender id or short code; the account's default when `None`.
    pub from: Option<String>,
    /// API host; [`AFRICAS_TALKING_LIVE_URL`] (or the sandbox for `sandbox`) when `None`.
    pub base_url: Option<String>,
    /// Timeouts and retries.
    pub http: HttpOptions,
}

/// Sends SMS through Africa's Talking.
///
/// A reply is read per recipient: status codes 100 (processed), 101 (sent) and
/// 102 (queued) are success; 500 (InternalServerError) and 501 (GatewayError)
/// per recipient are transient (the gateway reports it did not send that
/// message, so it is retried); every other status (InsufficientBalance, InvalidPhoneNumber,
/// InvalidSenderId, UserInBlacklist, DoNotDisturbRejection, ...) is
/// [`Error::Rejected`] with the gateway's status name. At the HTTP level, 429
/// and 503 are retried; other 5xx and a timeout after the request was sent are
/// [`Error::OutcomeUnknown`] and never sent again.
pub struct AfricasTalkingSender {
    client: reqwest::Client,
    endpoint: Url,
    username: String,
    api_key: SecretString,
    from: Option<String>,
    http: HttpOptions,
    scrubber: Scrubber,
}

impl fmt::Debug for AfricasTalkingSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AfricasTalkingSender")
            .field("endpoint", &self.endpoint.as_str())
            .field("username", &self.username)
            .field("api_key", &"[redacted]")
            .field("from", &self.from)
            .field("http", &self.http)
            .finish()
    }
}

impl AfricasTalkingSender {
    /// Checks `settings` and builds the sender. Errors name the field (`sms.username`, ...).
    pub fn new(settings: AfricasTalkingSettings) -> Result<Self> {
        let AfricasTalkingSettings {
            username,
            api_key,
            from,
            base_url,
            http,
        } = settings;
        let username = username.trim().to_owned();
        if username.is_empty() || username.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid(
                "sms.username",
                &username,
                "the Africa's Talking application username, without spaces",
            ));
        }
        check_api_key(&api_key)?;
        let from = match from {
            Some(f) => Some(check_sender_id("sms.from", &f)?),
            None => None,
        };
        let base = match base_url.as_deref() {
            Some(raw) => parse_base_url("sms.base_url", raw)?,
            None if username == "sandbox" => parse_base_url("sms.base_url", AFRICAS_TALKING_SANDBOX_URL)?,
            None => parse_base_url("sms.base_url", AFRICAS_TALKING_LIVE_URL)?,
        };
        let endpoint = join_path("sms.base_url", &base, &["version1", "messaging"])?;
        http.validate("sms.http")?;
        Ok(AfricasTalkingSender {
            client: http.client(SERVICE)?,
            endpoint,
            username,
            scrubber: Scrubber::new([api_key.clone()]),
            api_key,
            from,
            http,
        })
    }

    async fn attempt(&self, to: &PhoneNumber, body: &str) -> std::result::Result<SmsReceipt, Attempt> {
        let mut key = HeaderValue::from_str(self.api_key.expose_secret())
            .map_err(|_| Error::invalid("sms.api_key", "[redacted]", "not a valid header value"))?;
        key.set_sensitive(true);
        let mut form = vec![
            ("username", self.username.as_str()),
            ("to", to.as_str()),
            ("message", body),
        ];
        if let Some(from) = &self.from {
            form.push(("from", from.as_str()));
        }
        let request = self
            .client
            .post(self.endpoint.clone())
            .header("apiKey", key)
            .header(ACCEPT, "application/json")
            .form(&form);
        let reply = exchange(request).await.map_err(|f| self.fail(f, None))?;
        self.read_reply(to, reply)
    }

    fn read_reply(&self, to: &PhoneNumber, reply: Reply) -> std::result::Result<SmsReceipt, Attempt> {
        let parsed = serde_json::from_str::<AtReply>(&reply.body);
        // A refusal per recipient can come with a 4xx (DoNotDisturbRejection is a 409):
        // the per-recipient status says more than the HTTP status.
        let data = match parsed {
            Ok(AtReply { data: Some(data) })
                if reply.status.is_success() || reply.status.is_client_error() =>
            {
                data
            }
            _ if !reply.status.is_success() => {
                return Err(self.fail(
                    Failure::Status {
                        status: reply.status,
                        detail: reply.body,
                    },
                    reply.retry_after,
                ));
            }
            _ => {
                return Err(self.fail(
                    Failure::BadReply(format!(
                        "HTTP {} without SMSMessageData: {}",
                        reply.status.as_u16(),
                        reply.body
                    )),
                    None,
                ));
            }
        };
        let recipient = data
            .recipients
            .iter()
            .find(|r| r.number.trim_start_matches('+') == to.digits())
            .or_else(|| data.recipients.first());
        let Some(recipient) = recipient else {
            // No recipient at all: the message as a whole was refused
            // ("InvalidSenderId", "Sent to 0/1 Total Cost: 0", ...).
            return Err(self.fail(
                Failure::Refused {
                    transient: false,
                    detail: format!("no recipient accepted: {}", data.message),
                },
                None,
            ));
        };
        match recipient.status_code {
            100..=102 => {
                let provider_id = recipient
                    .message_id
                    .as_deref()
                    .filter(|id| !id.is_empty() && *id != "None")
                    .map(str::to_owned);
                tracing::debug!(gateway = SERVICE, to = %to, provider_id = ?provider_id, status = %recipient.status, "sms accepted");
                Ok(SmsReceipt { provider_id })
            }
            code => Err(self.fail(
                Failure::Refused {
                    transient: matches!(code, 500 | 501),
                    detail: format!("recipient {} refused: {} ({code})", to, recipient.status),
                },
                None,
            )),
        }
    }

    fn fail(&self, failure: Failure, retry_after: Option<std::time::Duration>) -> Attempt {
        Attempt {
            error: map_error(SERVICE, failure, &self.scrubber),
            retry_after,
        }
    }
}

#[async_trait]
impl SmsSender for AfricasTalkingSender {
    async fn send(&self, to: &PhoneNumber, body: &str) -> Result<SmsReceipt> {
        check_message(body)?;
        with_retries(SERVICE, &self.http, || self.attempt(to, body)).await
    }
}

#[derive(Deserialize)]
struct AtReply {
    #[serde(rename = "SMSMessageData")]
    data: Option<AtMessageData>,
}

#[derive(Deserialize)]
struct AtMessageData {
    #[serde(rename = "Message", default)]
    message: String,
    #[serde(rename = "Recipients", default)]
    recipients: Vec<AtRecipient>,
}

#[derive(Deserialize)]
struct AtRecipient {
    #[serde(rename = "statusCode")]
    status_code: u16,
    #[serde(default)]
    number: String,
    #[serde(default)]
    status: String,
    #[serde(rename = "messageId", default)]
    message_id: Option<String>,
}

/// An API key must be present and usable as a header value. Never echoes it.
pub(crate) fn check_api_key(key: &SecretString) -> Result<()> {
    let value = key.expose_secret();
    if value.trim().is_empty() {
        return Err(Error::invalid("sms.api_key", "", "must not be empty"));
    }
    if HeaderValue::from_str(value).is_err() {
        return Err(Error::invalid(
            "sms.api_key",
            "[redacted]",
            "contains characters not allowed in an HTTP header",
        ));
    }
    Ok(())
}

/// A sender id: a phone number, a short code or an alphanumeric name of at most 11 characters.
pub(crate) fn check_sender_id(field: &str, raw: &str) -> Result<String> {
    let value = raw.trim();
    if value.starts_with('+') {
        return PhoneNumber::parse(field, value).map(|p| p.as_str().to_owned());
    }
    let all_digits = !value.is_empty() && value.chars().all(|c| c.is_ascii_digit());
    let ok = if all_digits {
        // A short code; longer numbers must be written in E.164, with '+'.
        (3..=8).contains(&value.len())
    } else {
        !value.is_empty()
            && value.len() <= 11
            && value.chars().any(|c| c.is_ascii_alphabetic())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'))
    };
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Error::invalid(
            field,
            raw,
            "a sender id is a +E.164 number, a short code of 3 to 8 digits, \
             or a name of at most 11 letters and digits",
        ))
    }
}

/// An SMS needs some text.
pub(crate) fn check_message(body: &str) -> Result<()> {
    if body.trim().is_empty() {
        return Err(Error::invalid("message", body, "an SMS needs some text"));
    }
    Ok(())
}
