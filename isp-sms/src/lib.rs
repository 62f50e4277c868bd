#![doc = include_str!("../README.md")]

mod africas_talking;
mod config;
mod error;
mod http;
mod log_only;
mod twilio;
mod webhook;

pub use africas_talking::{
    AfricasTalkingSender, AfricasTalkingSettings, AFRICAS_TALKING_LIVE_URL, AFRICAS_TALKING_SANDBOX_URL,
};
pub use config::{
    AfricasTalkingConfig, HttpConfig, LogConfig, SmsGatewayConfig, TwilioConfig, WebhookConfig,
};
pub use http::HttpOptions;
pub use log_only::LogSender;
pub use twilio::{TwilioFrom, TwilioSender, TwilioSettings, TWILIO_URL};
pub use webhook::{WebhookSender, WebhookSettings};
