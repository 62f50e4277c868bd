//! `SmsGatewayConfig`: choose and configure a gateway from a configuration file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use isp_core::ports::SmsSender;
use isp_core::{Error, Result};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::africas_talking::{AfricasTalkingSender, AfricasTalkingSettings};
use crate::http::{redact_url, HttpOptions};
use crate::log_only::LogSender;
use crate::twilio::{TwilioFrom, TwilioSender, TwilioSettings};
use crate::webhook::{WebhookSender, WebhookSettings};

/// Which SMS gateway to use and how, as written in the daemon's TOML (`[sms]`).
///
/// The variant is chosen by `kind`: `africas_talking`, `twilio`, `webhook` or
/// `log`. Unknown keys, and keys of another kind, are refused. (The table is
/// read as one flat struct, not as a serde-tagged enum, so that a TOML error
/// points at the line of the wrong value.) Each secret (`api_key`, `auth_token`) can
/// be given inline, as the name of an environment variable (`api_key_env`) or
/// as a file holding it (`api_key_file`); exactly one of the three.
///
/// ```
/// let config: isp_sms::SmsGatewayConfig = toml::from_str(r#"
///     kind = "twilio"
///     account_sid = "AC0123456789abcdef0123456789abcdef"
///     auth_token = "not-a-real-token"
///     from = "+15005550006"
/// "#).unwrap();
/// let sender = config.build().unwrap();
/// assert!(!format!("{sender:?}").contains("not-a-real-token"));
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawGatewayConfig")]
pub enum SmsGatewayConfig {
    /// Africa's Talking.
    AfricasTalking(AfricasTalkingConfig),
    /// Twilio.
    Twilio(TwilioConfig),
    /// Any HTTP endpoint, with a URL and body template.
    Webhook(WebhookConfig),
    /// Log messages instead of sending them.
    Log(LogConfig),
}

impl Default for SmsGatewayConfig {
    /// The log-only sender: nothing leaves the machine until a gateway is configured.
    fn default() -> Self {
        SmsGatewayConfig::Log(LogConfig::default())
    }
}

impl SmsGatewayConfig {
    /// The `kind` as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            SmsGatewayConfig::AfricasTalking(_) => "africas_talking",
            SmsGatewayConfig::Twilio(_) => "twilio",
            SmsGatewayConfig::Webhook(_) => "webhook",
            SmsGatewayConfig::Log(_) => "log",
        }
    }

    /// Validates the configuration, reads secrets from the environment or
    /// files, and builds the sender. Errors name the field (`sms.api_key_env`,
    /// `sms.http.timeout_secs`, ...) and its value, never a secret's value.
    pub fn build(&self) -> Result<Arc<dyn SmsSender>> {
        Ok(match self {
            SmsGatewayConfig::AfricasTalking(c) => Arc::new(AfricasTalkingSender::new(c.settings()?)?),
            SmsGatewayConfig::Twilio(c) => Arc::new(TwilioSender::new(c.settings()?)?),
            SmsGatewayConfig::Webhook(c) => Arc::new(WebhookSender::new(c.settings()?)?),
            SmsGatewayConfig::Log(LogConfig {}) => Arc::new(LogSender::new()),
        })
    }
}

/// `kind = "africas_talking"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AfricasTalkingConfig {
    /// Application username (`sandbox` selects the sandbox host).
    pub username: String,
    /// API key, inline.
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// Name of the environment variable holding the API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// File holding the API key.
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// Sender id or short code.
    #[serde(default)]
    pub from: Option<String>,
    /// API host (tests and proxies); the live or sandbox host by default.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpConfig,
}

impl AfricasTalkingConfig {
    /// The sender settings, with the API key resolved.
    pub fn settings(&self) -> Result<AfricasTalkingSettings> {
        Ok(AfricasTalkingSettings {
            username: self.username.clone(),
            api_key: resolve_secret(
                "api_key",
                self.api_key.as_ref(),
                self.api_key_env.as_deref(),
                self.api_key_file.as_ref(),
            )?,
            from: self.from.clone(),
            base_url: self.base_url.clone(),
            http: self.http.options()?,
        })
    }
}

/// `kind = "twilio"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// Account sid (`AC...`).
    pub account_sid: String,
    /// Auth token, inline.
    #[serde(default)]
    pub auth_token: Option<SecretString>,
    /// Name of the environment variable holding the auth token.
    #[serde(default)]
    pub auth_token_env: Option<String>,
    /// File holding the auth token.
    #[serde(default)]
    pub auth_token_file: Option<PathBuf>,
    /// Sender number or alphanumeric id (exactly one of `from` and `messaging_service_sid`).
    #[serde(default)]
    pub from: Option<String>,
    /// Messaging service sid (`MG...`).
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// API host (tests and proxies); `https://api.twilio.com` by default.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpConfig,
}

impl TwilioConfig {
    /// The sender settings, with the auth token resolved.
    pub fn settings(&self) -> Result<TwilioSettings> {
        let from = match (&self.from, &self.messaging_service_sid) {
            (Some(n), None) => TwilioFrom::Number(n.clone()),
            (None, Some(s)) => TwilioFrom::MessagingService(s.clone()),
            (Some(n), Some(_)) => {
                return Err(Error::invalid(
                    "sms.from",
                    n,
                    "give either sms.from or sms.messaging_service_sid, not both",
                ))
            }
            (None, None) => {
                return Err(Error::invalid(
                    "sms.from",
                    "",
                    "missing: give sms.from (a Twilio number) or sms.messaging_service_sid",
                ))
            }
        };
        Ok(TwilioSettings {
            account_sid: self.account_sid.clone(),
            auth_token: resolve_secret(
                "auth_token",
                self.auth_token.as_ref(),
                self.auth_token_env.as_deref(),
                self.auth_token_file.as_ref(),
            )?,
            from,
            base_url: self.base_url.clone(),
            http: self.http.options()?,
        })
    }
}

/// `kind = "webhook"`. See [`WebhookSettings`] for the templates.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// URL template (`{to}`, `{to_digits}`, `{message}` are query-encoded).
    pub url: String,
    /// `GET`, `POST` (default), `PUT` or `PATCH`.
    #[serde(default)]
    pub method: Option<String>,
    /// Extra headers; values are secrets (never shown).
    #[serde(default)]
    pub headers: BTreeMap<String, SecretString>,
    /// Extra headers whose values come from environment variables (name -> variable).
    #[serde(default)]
    pub headers_from_env: BTreeMap<String, String>,
    /// Content type of the body; `application/json` by default when there is a body.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Body template.
    #[serde(default)]
    pub body: Option<String>,
    /// JSON pointer to the message id in the reply.
    #[serde(default)]
    pub response_id_pointer: Option<String>,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpConfig,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &redact_url(&self.url))
            .field("method", &self.method)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("headers_from_env", &self.headers_from_env)
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

impl WebhookConfig {
    /// The sender settings, with header values from the environment resolved.
    pub fn settings(&self) -> Result<WebhookSettings> {
        let mut headers: Vec<(String, SecretString)> =
            self.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (name, var) in &self.headers_from_env {
            if self.headers.keys().any(|k| k.eq_ignore_ascii_case(name)) {
                return Err(Error::invalid(
                    format!("sms.headers_from_env.{name}"),
                    var,
                    "this header is also set in sms.headers",
                ));
            }
            headers.push((
                name.clone(),
                secret_from_env(&format!("sms.headers_from_env.{name}"), var)?,
            ));
        }
        Ok(WebhookSettings {
            url: self.url.clone(),
            method: self.method.clone().unwrap_or_else(|| "POST".to_owned()),
            headers,
            content_type: self.content_type.clone(),
            body: self.body.clone(),
            response_id_pointer: self.response_id_pointer.clone(),
            http: self.http.options()?,
        })
    }
}

/// `kind = "log"`: no settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {}

/// `[sms.http]`: timeouts and the retry budget; every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Whole-request timeout in seconds (default 10; fractions allowed).
    #[serde(default)]
    pub timeout_secs: Option<f64>,
    /// Connection timeout in seconds (default 5).
    #[serde(default)]
    pub connect_timeout_secs: Option<f64>,
    /// Retries of transient failures after the first attempt (default 2, at most 10).
    #[serde(default)]
    pub max_retries: Option<usize>,
    /// First backoff delay in milliseconds (default 250).
    #[serde(default)]
    pub retry_initial_delay_ms: Option<u64>,
    /// Largest backoff delay in milliseconds (default 2000, at most 60000).
    #[serde(default)]
    pub retry_max_delay_ms: Option<u64>,
}

impl HttpConfig {
    /// The options, checked.
    pub fn options(&self) -> Result<HttpOptions> {
        let defaults = HttpOptions::default();
        let secs = |name: &str, value: Option<f64>, default: Duration| -> Result<Duration> {
            match value {
                None => Ok(default),
                Some(v) => Duration::try_from_secs_f64(v)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        Error::invalid(format!("sms.http.{name}"), v, "a number of seconds more than 0")
                    }),
            }
        };
        let initial_backoff = self
            .retry_initial_delay_ms
            .map_or(defaults.initial_backoff, Duration::from_millis);
        let options = HttpOptions {
            timeout: secs("timeout_secs", self.timeout_secs, defaults.timeout)?,
            connect_timeout: secs(
                "connect_timeout_secs",
                self.connect_timeout_secs,
                defaults.connect_timeout,
            )?,
            max_retries: self.max_retries.unwrap_or(defaults.max_retries),
            initial_backoff,
            max_backoff: self
                .retry_max_delay_ms
                .map_or(defaults.max_backoff.max(initial_backoff), Duration::from_millis),
        };
        options.validate("sms.http")?;
        Ok(options)
    }
}

/// Exactly one of `{name}`, `{name}_env`, `{name}_file`, resolved.
fn resolve_secret(
    name: &str,
    inline: Option<&SecretString>,
    env: Option<&str>,
    file: Option<&PathBuf>,
) -> Result<SecretString> {
    let given = usize::from(inline.is_some()) + usize::from(env.is_some()) + usize::from(file.is_some());
    if given != 1 {
        return Err(Error::invalid(
            format!("sms.{name}"),
            if given == 0 { "<missing>" } else { "<several>" },
            format!("give exactly one of sms.{name}, sms.{name}_env or sms.{name}_file"),
        ));
    }
    if let Some(secret) = inline {
        if secret.expose_secret().trim().is_empty() {
            return Err(Error::invalid(format!("sms.{name}"), "", "must not be empty"));
        }
        return Ok(secret.clone());
    }
    if let Some(var) = env {
        return secret_from_env(&format!("sms.{name}_env"), var);
    }
    if let Some(path) = file {
        let field = format!("sms.{name}_file");
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid(&field, path.display(), format!("cannot read: {e}")))?;
        let value = text.trim();
        if value.is_empty() {
            return Err(Error::invalid(&field, path.display(), "the file is empty"));
        }
        return Ok(SecretString::from(value.to_owned()));
    }
    Err(Error::Internal(format!("no source for sms.{name}")))
}

fn secret_from_env(field: &str, var: &str) -> Result<SecretString> {
    if var.trim().is_empty() {
        return Err(Error::invalid(field, var, "the name of an environment variable"));
    }
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Ok(SecretString::from(value.trim().to_owned())),
        Ok(_) => Err(Error::invalid(field, var, "the environment variable is empty")),
        Err(std::env::VarError::NotPresent) => {
            Err(Error::invalid(field, var, "the environment variable is not set"))
        }
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::invalid(
            field,
            var,
            "the environment variable is not valid UTF-8",
        )),
    }
}

/// Which gateway, as written in `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    AfricasTalking,
    Twilio,
    Webhook,
    Log,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::AfricasTalking => "africas_talking",
            Kind::Twilio => "twilio",
            Kind::Webhook => "webhook",
            Kind::Log => "log",
        }
    }

    /// The keys this kind accepts besides `kind`.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::AfricasTalking => &[
                "username",
                "api_key",
                "api_key_env",
                "api_key_file",
                "from",
                "base_url",
                "http",
            ],
            Kind::Twilio => &[
                "account_sid",
                "auth_token",
                "auth_token_env",
                "auth_token_file",
                "from",
                "messaging_service_sid",
                "base_url",
                "http",
            ],
            Kind::Webhook => &[
                "url",
                "method",
                "headers",
                "headers_from_env",
                "content_type",
                "body",
                "response_id_pointer",
                "http",
            ],
            Kind::Log => &[],
        }
    }
}

/// Every key of every kind, read without buffering so that errors keep their
/// position in the file; [`SmsGatewayConfig`] is built from it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGatewayConfig {
    kind: Kind,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    api_key: Option<SecretString>,
    #[serde(default)]
    api_key_env: Option<String>,
    #[serde(default)]
    api_key_file: Option<PathBuf>,
    #[serde(default)]
    account_sid: Option<String>,
    #[serde(default)]
    auth_token: Option<SecretString>,
    #[serde(default)]
    auth_token_env: Option<String>,
    #[serde(default)]
    auth_token_file: Option<PathBuf>,
    #[serde(default)]
    messaging_service_sid: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: Option<BTreeMap<String, SecretString>>,
    #[serde(default)]
    headers_from_env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    response_id_pointer: Option<String>,
    #[serde(default)]
    http: Option<HttpConfig>,
}

impl TryFrom<RawGatewayConfig> for SmsGatewayConfig {
    type Error = String;

    fn try_from(raw: RawGatewayConfig) -> std::result::Result<Self, String> {
        let kind = raw.kind;
        let present = [
            ("username", raw.username.is_some()),
            ("api_key", raw.api_key.is_some()),
            ("api_key_env", raw.api_key_env.is_some()),
            ("api_key_file", raw.api_key_file.is_some()),
            ("account_sid", raw.account_sid.is_some()),
            ("auth_token", raw.auth_token.is_some()),
            ("auth_token_env", raw.auth_token_env.is_some()),
            ("auth_token_file", raw.auth_token_file.is_some()),
            ("messaging_service_sid", raw.messaging_service_sid.is_some()),
            ("from", raw.from.is_some()),
            ("base_url", raw.base_url.is_some()),
            ("url", raw.url.is_some()),
            ("method", raw.method.is_some()),
            ("headers", raw.headers.is_some()),
            ("headers_from_env", raw.headers_from_env.is_some()),
            ("content_type", raw.content_type.is_some()),
            ("body", raw.body.is_some()),
            ("response_id_pointer", raw.response_id_pointer.is_some()),
            ("http", raw.http.is_some()),
        ];
        for (key, set) in present {
            if set && !kind.keys().contains(&key) {
                let accepted = if kind.keys().is_empty() {
                    "it takes no other key".to_owned()
                } else {
                    format!("its keys: {}", kind.keys().join(", "))
                };
                return Err(format!(
                    "`{key}` is not a setting of kind = \"{}\" ({accepted})",
                    kind.name()
                ));
            }
        }
        let required = |value: Option<String>, key: &str| {
            value.ok_or_else(|| format!("missing field `{key}` (required for kind = \"{}\")", kind.name()))
        };
        Ok(match kind {
            Kind::AfricasTalking => SmsGatewayConfig::AfricasTalking(AfricasTalkingConfig {
                username: required(raw.username, "username")?,
                api_key: raw.api_key,
                api_key_env: raw.api_key_env,
                api_key_file: raw.api_key_file,
                from: raw.from,
                base_url: raw.base_url,
                http: raw.http.unwrap_or_default(),
            }),
            Kind::Twilio => SmsGatewayConfig::Twilio(TwilioConfig {
                account_sid: required(raw.account_sid, "account_sid")?,
                auth_token: raw.auth_token,
                auth_token_env: raw.auth_token_env,
                auth_token_file: raw.auth_token_file,
                from: raw.from,
                messaging_service_sid: raw.messaging_service_sid,
                base_url: raw.base_url,
                http: raw.http.unwrap_or_default(),
            }),
            Kind::Webhook => SmsGatewayConfig::Webhook(WebhookConfig {
                url: required(raw.url, "url")?,
                method: raw.method,
                headers: raw.headers.unwrap_or_default(),
                headers_from_env: raw.headers_from_env.unwrap_or_default(),
                content_type: raw.content_type,
                body: raw.body,
                response_id_pointer: raw.response_id_pointer,
                http: raw.http.unwrap_or_default(),
            }),
            Kind::Log => SmsGatewayConfig::Log(LogConfig {}),
        })
    }
}
