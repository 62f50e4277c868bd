//! `SmsGatewayConfig`: parsing, validation messages, secrets from the environment and files.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use isp_sms::SmsGatewayConfig;

fn parse(text: &str) -> Result<SmsGatewayConfig, String> {
    toml::from_str::<SmsGatewayConfig>(text).map_err(|e| e.to_string())
}

/// The `build()` error's text for a config that parses.
fn build_error(text: &str) -> String {
    let err = config(text).build().unwrap_err().to_string();
    assert_no_secret("build error", &err);
    err
}

fn assert_mentions(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "expected {p:?} in: {text}");
    }
}

#[test]
fn every_kind_parses_and_builds() {
    for (text, kind) in [
        (
            format!("kind = \"africas_talking\"\nusername = \"isp\"\napi_key = \"{SECRET}\""),
            "africas_talking",
        ),
        (
            format!(
                "kind = \"twilio\"\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token = \"{SECRET}\"\nfrom = \"ISP\""
            ),
            "twilio",
        ),
        (
            "kind = \"webhook\"\nurl = \"https://gw.example.net/send\"\nbody = '{\"to\":\"{to}\",\"text\":\"{message}\"}'".to_owned(),
            "webhook",
        ),
        ("kind = \"log\"".to_owned(), "log"),
    ] {
        let cfg = config(&text);
        assert_eq!(cfg.kind(), kind);
        let sender = cfg.build().unwrap();
        assert_no_secret("sender Debug", &format!("{sender:?}"));
        assert_no_secret("config Debug", &format!("{cfg:?}"));
    }
    assert_eq!(SmsGatewayConfig::default().kind(), "log");
}

#[test]
fn it_nests_under_sms_in_a_larger_file() {
    #[derive(serde::Deserialize)]
    struct Daemon {
        sms: SmsGatewayConfig,
    }
    let d: Daemon = toml::from_str(&format!(
        "[sms]\nkind = \"africas_talking\"\nusername = \"isp\"\napi_key = \"{SECRET}\"\n[sms.http]\ntimeout_secs = 3\nmax_retries = 1\n"
    ))
    .unwrap();
    d.sms.build().unwrap();
}

#[test]
fn a_wrong_value_in_a_file_points_at_its_line_and_key() {
    #[derive(Debug, serde::Deserialize)]
    struct Daemon {
        #[allow(dead_code)]
        sms: SmsGatewayConfig,
    }
    let text = "[storage]\n\n[sms]\nkind = \"twilio\"\naccount_sid = 5\n";
    let err = toml::from_str::<Daemon>(text).unwrap_err().to_string();
    assert_mentions(&err, &["line 5", "account_sid = 5", "expected a string"]);
    let text = "[sms]\nkind = \"africas_talking\"\nusername = \"isp\"\napi_key_env = \"X\"\n[sms.http]\ntimeout_secs = \"ten\"\n";
    let err = toml::from_str::<Daemon>(text).unwrap_err().to_string();
    assert_mentions(&err, &["line 6", "timeout_secs"]);
    let text = "[sms]\nkind = \"twillio\"\n";
    let err = toml::from_str::<Daemon>(text).unwrap_err().to_string();
    assert_mentions(&err, &["line 2", "twillio", "twilio"]);
}

#[test]
fn an_unknown_kind_is_named() {
    let err = parse("kind = \"carrier_pigeon\"").unwrap_err();
    assert_mentions(
        &err,
        &["carrier_pigeon", "africas_talking", "twilio", "webhook", "log"],
    );
}

#[test]
fn an_unknown_key_is_named() {
    let err = parse(&format!(
        "kind = \"africas_talking\"\nusername = \"isp\"\napikey = \"{SECRET}\""
    ))
    .unwrap_err();
    assert_mentions(&err, &["apikey"]);
    let err = parse("kind = \"log\"\nlevel = \"info\"").unwrap_err();
    assert_mentions(&err, &["level"]);
    // A key of another kind is named with the kind's own keys.
    let err = parse(&format!(
        "kind = \"africas_talking\"\nusername = \"isp\"\napi_key = \"{SECRET}\"\naccount_sid = \"AC1\""
    ))
    .unwrap_err();
    assert_mentions(&err, &["account_sid", "africas_talking", "username, api_key"]);
    assert_no_secret("parse error", &err);
    let err = parse("kind = \"log\"\nurl = \"https://x\"").unwrap_err();
    assert_mentions(&err, &["`url`", "log", "no other key"]);
    let err = parse("kind = \"webhook\"\nmethod = \"GET\"").unwrap_err();
    assert_mentions(&err, &["missing field `url`", "webhook"]);
    let err = parse(&format!(
        "kind = \"africas_talking\"\nusername = \"isp\"\napi_key = \"{SECRET}\"\n[http]\ntimeout = 3"
    ))
    .unwrap_err();
    assert_mentions(&err, &["timeout"]);
}

#[test]
fn a_missing_secret_names_the_three_ways() {
    let err = build_error("kind = \"africas_talking\"\nusername = \"isp\"");
    assert_mentions(&err, &["sms.api_key", "sms.api_key_env", "sms.api_key_file"]);
}

#[test]
fn two_sources_for_one_secret_are_refused() {
    let err = build_error(&format!(
        "kind = \"twilio\"\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token = \"{SECRET}\"\nauth_token_env = \"X\"\nfrom = \"ISP\""
    ));
    assert_mentions(&err, &["sms.auth_token", "exactly one"]);
}

#[test]
fn secrets_come_from_the_environment() {
    std::env::set_var("ISP_SMS_TEST_AT_KEY", SECRET);
    config("kind = \"africas_talking\"\nusername = \"isp\"\napi_key_env = \"ISP_SMS_TEST_AT_KEY\"")
        .build()
        .unwrap();
    let err = build_error(
        "kind = \"africas_talking\"\nusername = \"isp\"\napi_key_env = \"ISP_SMS_TEST_UNSET_VAR\"",
    );
    assert_mentions(&err, &["sms.api_key_env", "ISP_SMS_TEST_UNSET_VAR", "not set"]);
}

#[test]
fn secrets_come_from_files() {
    let dir = std::env::temp_dir().join(format!("isp-sms-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let text = format!(
        "kind = \"twilio\"\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token_file = '{}'\nfrom = \"+15005550006\"",
        file.display()
    );
    let sender = config(&text).build().unwrap();
    assert_no_secret("sender Debug", &format!("{sender:?}"));
    let missing = dir.join("nope");
    let err = build_error(&text.replace(&file.display().to_string(), &missing.display().to_string()));
    assert_mentions(&err, &["sms.auth_token_file", "nope", "cannot read"]);
    std::fs::write(&file, "\n").unwrap();
    let err = build_error(&text);
    assert_mentions(&err, &["sms.auth_token_file", "empty"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bad_twilio_sid_is_named_with_its_value() {
    let err = build_error(&format!(
        "kind = \"twilio\"\naccount_sid = \"XX12\"\nauth_token = \"{SECRET}\"\nfrom = \"+15005550006\""
    ));
    assert_mentions(&err, &["sms.account_sid", "XX12", "AC"]);
    let err = build_error(&format!(
        "kind = \"twilio\"\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token = \"{SECRET}\"\nmessaging_service_sid = \"AC0123456789abcdef0123456789abcdef\""
    ));
    assert_mentions(&err, &["sms.messaging_service_sid", "MG"]);
}

#[test]
fn twilio_needs_exactly_one_sender() {
    let base = format!("kind = \"twilio\"\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token = \"{SECRET}\"\n");
    let err = build_error(&base);
    assert_mentions(&err, &["sms.from", "messaging_service_sid"]);
    let err = build_error(&format!(
        "{base}from = \"+15005550006\"\nmessaging_service_sid = \"MG0123456789abcdef0123456789abcdef\""
    ));
    assert_mentions(&err, &["sms.from", "not both"]);
    let err = build_error(&format!("{base}from = \"0712345678\""));
    assert_mentions(&err, &["sms.from", "0712345678"]);
}

#[test]
fn africas_talking_fields_are_checked() {
    let err = build_error(&format!(
        "kind = \"africas_talking\"\nusername = \"my isp\"\napi_key = \"{SECRET}\""
    ));
    assert_mentions(&err, &["sms.username", "my isp"]);
    let err = build_error(&format!(
        "kind = \"africas_talking\"\nusername = \"isp\"\napi_key = \"{SECRET}\"\nfrom = \"A-NAME-FAR-TOO-LONG\""
    ));
    assert_mentions(&err, &["sms.from", "A-NAME-FAR-TOO-LONG"]);
    let err = build_error(&format!(
        "kind = \"africas_talking\"\nusername = \"isp\"\napi_key = \"{SECRET}\"\nbase_url = \"ftp://x\""
    ));
    assert_mentions(&err, &["sms.base_url", "ftp://x"]);
    let err = build_error("kind = \"africas_talking\"\nusername = \"isp\"\napi_key = \"bad\\nkey\"");
    assert_mentions(&err, &["sms.api_key", "[redacted]"]);
}

#[test]
fn http_options_are_checked() {
    let base = format!("kind = \"africas_talking\"\nusername = \"isp\"\napi_key = \"{SECRET}\"\n[http]\n");
    let err = build_error(&format!("{base}timeout_secs = 0"));
    assert_mentions(&err, &["sms.http.timeout_secs", "0"]);
    let err = build_error(&format!("{base}connect_timeout_secs = -1.5"));
    assert_mentions(&err, &["sms.http.connect_timeout_secs", "-1.5"]);
    let err = build_error(&format!("{base}timeout_secs = 1000"));
    assert_mentions(&err, &["sms.http.timeout_secs", "1000"]);
    let err = build_error(&format!("{base}max_retries = 99"));
    assert_mentions(&err, &["sms.http.max_retries", "99"]);
    let err = build_error(&format!(
        "{base}retry_initial_delay_ms = 5000\nretry_max_delay_ms = 100"
    ));
    assert_mentions(&err, &["sms.http.retry_initial_delay_ms", "5000"]);
}

#[test]
fn webhook_templates_are_checked_at_start_up() {
    let err = build_error("kind = \"webhook\"\nurl = \"https://gw.example.net/send\"\nbody = '{\"to\": {to}, \"text\": \"{message}\"}'");
    assert_mentions(&err, &["sms.body", "not valid JSON", "\"{message}\""]);
    let err =
        build_error("kind = \"webhook\"\nurl = \"https://gw.example.net/send\"\nbody = '{\"to\": \"{to}\"}'");
    assert_mentions(&err, &["{message}"]);
    let err = build_error(
        "kind = \"webhook\"\nurl = \"https://gw.example.net/send\"\nbody = '{\"text\": \"{message}\"}'",
    );
    assert_mentions(&err, &["{to}"]);
    let err = build_error(
        "kind = \"webhook\"\nurl = \"gw.example.net/send?to={to}&m={message}\"\nmethod = \"GET\"",
    );
    assert_mentions(&err, &["sms.url", "not a URL"]);
    let err = build_error(
        "kind = \"webhook\"\nurl = \"https://gw.example.net/?to={to}&m={message}\"\nmethod = \"DELETE\"",
    );
    assert_mentions(&err, &["sms.method", "DELETE"]);
    let err = build_error("kind = \"webhook\"\nurl = \"https://gw.example.net/?to={to}\"\nmethod = \"GET\"\nbody = \"{message}\"");
    assert_mentions(&err, &["sms.body", "GET"]);
    let err = build_error("kind = \"webhook\"\nurl = \"https://gw.example.net/?to={to}&m={message}\"\ncontent_type = \"text/plain\"");
    assert_mentions(&err, &["sms.content_type", "text/plain"]);
    let err = build_error(&format!(
        "kind = \"webhook\"\nurl = \"https://gw.example.net/?to={{to}}&m={{message}}\"\n[headers]\n\"Content-Type\" = \"{SECRET}\""
    ));
    assert_mentions(&err, &["sms.headers.Content-Type", "sms.content_type"]);
    let err = build_error(&format!(
        "kind = \"webhook\"\nurl = \"https://gw.example.net/?to={{to}}&m={{message}}\"\n[headers]\n\"Bad Header\" = \"{SECRET}\""
    ));
    assert_mentions(&err, &["sms.headers.Bad Header"]);
    let err = build_error(
        "kind = \"webhook\"\nurl = \"https://gw.example.net/?to={to}&m={message}\"\n[headers_from_env]\nX-Key = \"ISP_SMS_TEST_UNSET_HEADER\"",
    );
    assert_mentions(&err, &["sms.headers_from_env.X-Key", "ISP_SMS_TEST_UNSET_HEADER"]);
    let err = build_error(
        "kind = \"webhook\"\nurl = \"https://gw.example.net/?to={to}&m={message}\"\nresponse_id_pointer = \"id\"",
    );
    assert_mentions(&err, &["sms.response_id_pointer", "/"]);
}

#[test]
fn webhook_debug_hides_the_query_and_the_body() {
    let cfg = config(&format!(
        "kind = \"webhook\"\nurl = \"https://user:{SECRET}@gw.example.net/send?key={SECRET}&to={{to}}\"\nbody = '{{\"key\": \"{SECRET}\", \"m\": \"{{message}}\"}}'"
    ));
    let debug = format!("{cfg:?}");
    assert_no_secret("config Debug", &debug);
    assert_mentions(&debug, &["gw.example.net/send?[redacted]"]);
    let sender = cfg.build().unwrap();
    assert_no_secret("sender Debug", &format!("{sender:?}"));
}
