//! A generic HTTP gateway: a URL, a method, headers and a body template.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use isp_core::domain::PhoneNumber;
use isp_core::ports::{SmsReceipt, SmsSender};
use isp_core::{Error, Result};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};

use crate::africas_talking::check_message;
use crate::error::{map_error, Attempt, Failure, Scrubber};
use crate::http::{exchange, redact_url, with_retries, HttpOptions, Reply};

const SERVICE: &str = "sms webhook";

/// What a [`WebhookSender`] needs.
///
/// `url` and `body` are templates: `{to}` becomes the recipient in E.164
/// (`+255712345678`), `{to_digits}` the same without `+`, and `{message}` the
/// text. In the URL the values are query-encoded; in the body they are
/// JSON-escaped when the content type is JSON (`application/json`, `...+json`;
/// write the quotes in the template: `{"to":"{to}"}`), form-encoded for
/// `application/x-www-form-urlencoded`, and inserted as they are otherwise.
#[derive(Clone)]
pub struct WebhookSettings {
    /// Where to send, e.g. `https://gw.example/send` or `http://kannel:13013/cgi-bin/sendsms?to={to}&text={message}`.
    pub url: String,
    /// `GET`, `POST`, `PUT` or `PATCH`.
    pub method: String,
    /// Extra headers (their values are treated as secrets: never shown).
    pub headers: Vec<(String, SecretString)>,
    /// The body's content type; `application/json` when a body is given and this is `None`.
    pub content_type: Option<String>,
    /// The body template; no body when `None`.
    pub body: Option<String>,
    /// A JSON pointer (`/messages/0/id`) to the gateway's message id in a JSON reply.
    pub response_id_pointer: Option<String>,
    /// Timeouts and retries.
    pub http: HttpOptions,
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &redact_url(&self.url))
            .field("method", &self.method)
            .field("headers", &header_names(&self.headers))
            .field("content_type", &self.content_type)
            .field(
                "body",
                &self.body.as_ref().map(|b| format!("[{} bytes]", b.len())),
            )
            .field("response_id_pointer", &self.response_id_pointer)
            .field("http", &self.http)
            .finish()
    }
}

fn header_names(headers: &[(String, SecretString)]) -> Vec<&str> {
    headers.iter().map(|(n, _)| n.as_str()).collect()
}

/// How placeholder values are encoded in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Json,
    Form,
    Plain,
}

/// Sends SMS by calling an HTTP endpoint of your choice. Any 2xx is success.
///
/// A connect failure, 429, 503 and 408 are retried; other 5xx and a timeout
/// after the request was sent are [`Error::OutcomeUnknown`] and never sent again.
pub struct WebhookSender {
    client: reqwest::Client,
    url_template: String,
    method: Method,
    headers: HeaderMap,
    header_names: Vec<String>,
    content_type: Option<HeaderValue>,
    body: Option<(String, Encoding)>,
    response_id_pointer: Option<String>,
    http: HttpOptions,
    scrubber: Scrubber,
}

impl fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSender")
            .field("url", &redact_url(&self.url_template))
            .field("method", &self.method)
            .field("headers", &self.header_names)
            .field("content_type", &self.content_type)
            .field(
                "body",
                &self
                    .body
                    .as_ref()
                    .map(|(b, e)| format!("[{} bytes, {e:?}]", b.len())),
            )
            .field("http", &self.http)
            .finish()
    }
}

/// Values that exercise every escaping rule, to check templates at start-up.
const SAMPLE_MESSAGE: &str = "He said \"hi\" & left\\ {to} 100% ✓\nbye";

fn sample_phone() -> Result<PhoneNumber> {
    PhoneNumber::parse("sample", "+255712345678")
}

impl WebhookSender {
    /// Checks `settings` and builds the sender. Errors name the field (`sms.url`,
    /// `sms.headers.X-Api-Key`, ...) and never show a header value or the body template.
    pub fn new(settings: WebhookSettings) -> Result<Self> {
        let WebhookSettings {
            url,
            method,
            headers: header_list,
            content_type,
            body,
            response_id_pointer,
            http,
        } = settings;
        let sample = sample_phone()?;

        let url_template = url.trim().to_owned();
        let rendered = render(&url_template, &sample, SAMPLE_MESSAGE, query_encode);
        let parsed = Url::parse(&rendered)
            .map_err(|e| Error::invalid("sms.url", redact_url(&url_template), format!("not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(Error::invalid(
                "sms.url",
                redact_url(&url_template),
                "must be an http:// or https:// URL with a host",
            ));
        }

        let method_name = method.trim().to_ascii_uppercase();
        let method = match method_name.as_str() {
            "GET" => Method::GET,
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            "PATCH" => Method::PATCH,
            _ => {
                return Err(Error::invalid(
                    "sms.method",
                    &method,
                    "one of GET, POST, PUT, PATCH",
                ))
            }
        };

        let mut headers = HeaderMap::new();
        let mut secrets = Vec::new();
        for (name, value) in &header_list {
            let field = format!("sms.headers.{name}");
            let header = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| Error::invalid(&field, name, "not a valid HTTP header name"))?;
            if header == CONTENT_TYPE {
                return Err(Error::invalid(
                    &field,
                    "[redacted]",
                    "set the content type with sms.content_type",
                ));
            }
            let mut v = HeaderValue::from_str(value.expose_secret())
                .map_err(|_| Error::invalid(&field, "[redacted]", "not a valid HTTP header value"))?;
            v.set_sensitive(true);
            headers.append(header, v);
            secrets.push(value.clone());
        }
        if let Some(password) = parsed.password() {
            secrets.push(SecretString::from(password.to_owned()));
        }
        // Query values written in the URL (not placeholders) are often keys.
        if let Ok(template_url) = Url::parse(&url_template) {
            for (_, v) in template_url.query_pairs() {
                if !v.contains('{') {
                    secrets.push(SecretString::from(v.into_owned()));
                }
            }
        }

        let body = match body {
            None => {
                if let Some(ct) = &content_type {
                    return Err(Error::invalid(
                        "sms.content_type",
                        ct,
                        "a content type needs a body template (sms.body)",
                    ));
                }
                None
            }
            Some(_) if method == Method::GET => {
                return Err(Error::invalid(
                    "sms.body",
                    "[body template]",
                    "a GET request has no body: put {to} and {message} in sms.url",
                ))
            }
            Some(template) => {
                let ct = content_type
                    .clone()
                    .unwrap_or_else(|| "application/json".to_owned());
                let encoding = encoding_of(&ct);
                if encoding == Encoding::Json {
                    let rendered = render(&template, &sample, SAMPLE_MESSAGE, encoder(encoding));
                    if let Err(e) = serde_json::from_str::<serde_json::Value>(&rendered) {
                        return Err(Error::invalid(
                            "sms.body",
                            "[body template]",
                            format!(
                                "not valid JSON once {{to}} and {{message}} are filled in ({e}); \
                                 write the quotes around placeholders: \"{{message}}\""
                            ),
                        ));
                    }
                }
                Some((template, encoding))
            }
        };
        let content_type =
            match (&body, content_type) {
                (None, _) => None,
                (Some(_), ct) => {
                    let ct = ct.unwrap_or_else(|| "application/json".to_owned());
                    Some(HeaderValue::from_str(ct.trim()).map_err(|_| {
                        Error::invalid("sms.content_type", &ct, "not a valid HTTP header value")
                    })?)
                }
            };

        let in_templates =
            |p: &str| url_template.contains(p) || body.as_ref().is_some_and(|(b, _)| b.contains(p));
        if !in_templates("{message}") {
            return Err(Error::invalid(
                "sms.body",
                "[body template]",
                "neither sms.url nor sms.body contains the {message} placeholder",
            ));
        }
        if !in_templates("{to}") && !in_templates("{to_digits}") {
            return Err(Error::invalid(
                "sms.body",
                "[body template]",
                "neither sms.url nor sms.body contains the {to} (or {to_digits}) placeholder",
            ));
        }
        if let Some(p) = &response_id_pointer {
            if !p.starts_with('/') {
                return Err(Error::invalid(
                    "sms.response_id_pointer",
                    p,
                    "a JSON pointer starts with '/', e.g. /messages/0/id",
                ));
            }
        }
        http.validate("sms.http")?;
        Ok(WebhookSender {
            client: http.client(SERVICE)?,
            url_template,
            method,
            headers,
            header_names: header_list.iter().map(|(n, _)| n.clone()).collect(),
            content_type,
            body,
            response_id_pointer,
            http,
            scrubber: Scrubber::new(secrets),
        })
    }

    async fn attempt(&self, to: &PhoneNumber, message: &str) -> std::result::Result<SmsReceipt, Attempt> {
        let url = render(&self.url_template, to, message, query_encode);
        // Checked at start-up with sample values; the URL itself is never shown.
        let url = Url::parse(&url).map_err(|e| {
            Attempt::from(Error::Internal(format!(
                "{SERVICE}: the URL template stopped parsing once filled in: {e}"
            )))
        })?;
        let mut request = self
            .client
            .request(self.method.clone(), url)
            .headers(self.headers.clone());
        if let (Some((template, encoding)), Some(ct)) = (&self.body, &self.content_type) {
            let body = render(template, to, message, encoder(*encoding));
            request = request.header(CONTENT_TYPE, ct.clone()).body(body);
        }
        let reply = exchange(request).await.map_err(|f| self.fail(f, None))?;
        self.read_reply(to, reply)
    }

    fn read_reply(&self, to: &PhoneNumber, reply: Reply) -> std::result::Result<SmsReceipt, Attempt> {
        if !reply.status.is_success() {
            return Err(self.fail(
                Failure::Status {
                    status: reply.status,
                    detail: reply.body,
                },
                reply.retry_after,
            ));
        }
        let provider_id = self.response_id_pointer.as_deref().and_then(|pointer| {
            let value: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
            match value.pointer(pointer)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        });
        if self.response_id_pointer.is_some() && provider_id.is_none() {
            tracing::debug!(
                gateway = SERVICE,
                "sms accepted, but the reply has no message id at the configured pointer"
            );
        }
        tracing::debug!(gateway = SERVICE, to = %to, provider_id = ?provider_id, "sms accepted");
        Ok(SmsReceipt { provider_id })
    }

    fn fail(&self, failure: Failure, retry_after: Option<Duration>) -> Attempt {
        Attempt {
            error: map_error(SERVICE, failure, &self.scrubber),
            retry_after,
        }
    }
}

#[async_trait]
impl SmsSender for WebhookSender {
    async fn send(&self, to: &PhoneNumber, body: &str) -> Result<SmsReceipt> {
        check_message(body)?;
        with_retries(SERVICE, &self.http, || self.attempt(to, body)).await
    }
}

fn encoding_of(content_type: &str) -> Encoding {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Encoding::Json
    } else if essence == "application/x-www-form-urlencoded" {
        Encoding::Form
    } else {
        Encoding::Plain
    }
}

fn encoder(encoding: Encoding) -> fn(&str) -> String {
    match encoding {
        Encoding::Json => json_escape,
        Encoding::Form => query_encode,
        Encoding::Plain => str::to_owned,
    }
}

/// The inside of a JSON string literal (no surrounding quotes).
fn json_escape(value: &str) -> String {
    let quoted = serde_json::Value::String(value.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// `application/x-www-form-urlencoded` encoding (also used in URL queries).
fn query_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Fills `{to}`, `{to_digits}` and `{message}` in one pass, so text inside the
/// message that looks like a placeholder is left alone.
fn render(template: &str, to: &PhoneNumber, message: &str, encode: fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + message.len() * 2);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{to}") {
            out.push_str(&encode(to.as_str()));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{to_digits}") {
            out.push_str(&encode(to.digits()));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{message}") {
            out.push_str(&encode(message));
            rest = after;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> PhoneNumber {
        PhoneNumber::parse("to", "+255712345678").unwrap()
    }

    #[test]
    fn json_rendering_escapes_and_stays_valid() {
        let out = render(
            r#"{"to":"{to}","text":"{message}","n":"{to_digits}"}"#,
            &phone(),
            SAMPLE_MESSAGE,
            json_escape,
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["to"], "+255712345678");
        assert_eq!(v["n"], "255712345678");
        assert_eq!(v["text"], SAMPLE_MESSAGE);
    }

    #[test]
    fn placeholders_in_the_message_are_not_expanded() {
        let out = render("{message}|{to}", &phone(), "{to}", str::to_owned);
        assert_eq!(out, "{to}|+255712345678");
    }

    #[test]
    fn form_rendering_encodes() {
        let out = render("to={to}&text={message}", &phone(), "a&b=c d", query_encode);
        assert_eq!(out, "to=%2B255712345678&text=a%26b%3Dc+d");
    }

    #[test]
    fn content_types() {
        assert_eq!(encoding_of("application/json; charset=utf-8"), Encoding::Json);
        assert_eq!(encoding_of("application/vnd.api+json"), Encoding::Json);
        assert_eq!(encoding_of("application/x-www-form-urlencoded"), Encoding::Form);
        assert_eq!(encoding_of("text/plain"), Encoding::Plain);
    }
}
