//! The configuration loader rejects each kind of mistake with the file, the
//! line, the key and a clear message, and never prints a secret.

use std::collections::HashMap;

use ispd::config::{load_str, ConfigError};

const ROUTER_OK: &str = r#"
[[tenants]]
id = 1
slug = "hotel-abc"
time_zone = "Africa/Dar_es_Salaam"

[[tenants.routers]]
id = 1
name = "HotelRouter1"
address = "192.0.2.10"
username = "isp"
password_env = "R1_PASSWORD"
"#;

fn env() -> HashMap<String, String> {
    [("R1_PASSWORD".to_string(), "s3cret-router-pw".to_string())]
        .into_iter()
        .collect()
}

fn err(text: &str) -> ConfigError {
    match load_str(text, "ispd.toml", None, &env()) {
        Ok(_) => panic!("accepted a bad file:\n{text}"),
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with("ispd.toml"), "{shown}");
            assert!(!shown.contains("s3cret-router-pw"), "secret in error: {shown}");
            e
        }
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect("needle") + 1
}

#[test]
fn a_good_file_loads() {
    let c = load_str(ROUTER_OK, "ispd.toml", None, &env()).unwrap();
    assert_eq!(c.tenants[0].routers[0].address, "192.0.2.10:8728");
    assert_eq!(
        c.tenants[0].routers[0].credentials.expose_password(),
        "s3cret-router-pw"
    );
    assert!(!format!("{c:?}").contains("s3cret-router-pw"), "secret in Debug");
    // The router is on the plain API: that is said, without its password.
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("plain API"), "{}", c.warnings[0]);
    assert!(!c.warnings[0].contains("s3cret-router-pw"));
    assert_eq!(c.cleartext_notes().len(), 1);
}

#[test]
fn unknown_key() {
    let text = format!("{ROUTER_OK}passwrd = \"x\"\n");
    let e = err(&text);
    assert_eq!(e.key, "tenants[0].routers[0].passwrd");
    assert_eq!(e.line, Some(line_of(&text, "passwrd")));
    assert!(e.message.contains("unknown field `passwrd`"), "{e}");

    let e = err("[storage]\nurl = \"sqlite://x.db\"\npool = 3\n");
    assert_eq!((e.key.as_str(), e.line), ("storage.pool", Some(3)));

    let e = err("[schedules]\ndisconnect-expird = \"* * * * *\"\n");
    assert_eq!(e.key, "schedules.disconnect-expird");
    assert!(
        e.message.contains("disconnect-expired"),
        "names the valid keys: {e}"
    );
}

#[test]
fn wrong_type() {
    let e = err("[engine]\nbatch_size = \"many\"\n");
    assert_eq!(
        (e.key.as_str(), e.line, e.column),
        ("engine.batch_size", Some(2), Some(14))
    );
    assert!(e.message.contains("invalid type"), "{e}");

    let e = err(&ROUTER_OK.replace("id = 1\nname", "id = \"one\"\nname"));
    assert_eq!(e.key, "tenants[0].routers[0].id");
}

#[test]
fn bad_cron() {
    let e = err("[schedules]\nsync-routers = \"every 5 minutes\"\n");
    assert_eq!((e.key.as_str(), e.line), ("schedules.sync-routers", Some(2)));
    assert!(e.message.contains("not a cron expression"), "{e}");
    let e = err("[schedules]\nrouter-health = \"61 * * * *\"\n");
    assert!(e.message.contains("61 * * * *"), "{e}");
}

#[test]
fn bad_time_zone() {
    let text = ROUTER_OK.replace("Africa/Dar_es_Salaam", "Africa/Atlantis");
    let e = err(&text);
    assert_eq!(e.key, "tenants[0].time_zone");
    assert_eq!(e.line, Some(line_of(&text, "Atlantis")));
    assert!(e.message.contains("Africa/Atlantis"), "{e}");
    let e = err("[scheduler]\ntime_zone = \"Nowhere\"\n");
    assert_eq!(e.key, "scheduler.time_zone");
}

#[test]
fn bad_phone() {
    let text = ROUTER_OK.replace(
        "time_zone = \"Africa/Dar_es_Salaam\"",
        "time_zone = \"Africa/Dar_es_Salaam\"\nalert_phones = [\"0712345678\"]",
    );
    let e = err(&text);
    assert_eq!(e.key, "tenants[0].alert_phones[0]");
    assert_eq!(e.line, Some(line_of(&text, "alert_phones")));
    assert!(
        e.message.contains("0712345678") && e.message.contains("country code"),
        "{e}"
    );
}

#[test]
fn bad_duration() {
    let e = err("[engine]\nretry_base = \"5 parsecs\"\n");
    assert_eq!((e.key.as_str(), e.line), ("engine.retry_base", Some(2)));
    assert!(e.message.contains("5 parsecs"), "{e}");
    let e = err("[scheduler]\nwatcher_max_sleep = \"10m\"\n");
    assert_eq!(e.key, "scheduler.watcher_max_sleep");
    assert!(e.message.contains("between"), "{e}");
}

#[test]
fn bad_values_in_plans_and_routers() {
    let plan = format!(
        "{ROUTER_OK}\n[[tenants.plans]]\nname = \"1h\"\nprice = 1.5\ncurrency = \"TZS\"\nrate_limit = \"2M\"\n"
    );
    let e = err(&plan);
    assert_eq!(e.key, "tenants[0].plans[0].price");
    assert!(e.message.contains("strings"), "{e}");
    let e = err(&plan.replace("price = 1.5", "price = \"1500\""));
    assert_eq!(e.key, "tenants[0].plans[0].rate_limit");
    assert!(e.message.contains("upload/download"), "{e}");
    let e = err(&plan
        .replace("price = 1.5", "price = \"-3\"")
        .replace("\"2M\"", "\"2M/4M\""));
    assert_eq!(e.key, "tenants[0].plans[0].price");
    assert!(e.message.contains("negative"), "{e}");

    let e = err(&ROUTER_OK.replace("192.0.2.10", "http://192.0.2.10/api"));
    assert_eq!(e.key, "tenants[0].routers[0].address");
    let e = err(&ROUTER_OK.replace("HotelRouter1", "Bad\\nName"));
    assert_eq!(e.key, "tenants[0].routers[0].name");
    let e = err(&format!("{ROUTER_OK}transport = \"telnet\"\n"));
    assert_eq!(e.key, "tenants[0].routers[0].transport");
}

#[test]
fn duplicate_ids() {
    let twice = format!(
        "{ROUTER_OK}\n[[tenants.routers]]\nid = 1\nname = \"R2\"\naddress = \"192.0.2.11\"\nusername = \"isp\"\npassword_env = \"R1_PASSWORD\"\n"
    );
    let e = err(&twice);
    assert_eq!(e.key, "tenants[0].routers[1].id");
    assert!(e.message.contains("used twice"), "{e}");
}

#[test]
fn missing_password_env_var() {
    let e = match load_str(ROUTER_OK, "ispd.toml", None, &HashMap::new()) {
        Ok(_) => panic!("accepted a router without its password"),
        Err(e) => e,
    };
    assert_eq!(e.key, "tenants[0].routers[0].password_env");
    assert_eq!(e.line, Some(line_of(ROUTER_OK, "password_env")));
    assert!(e.message.contains("R1_PASSWORD is not set"), "{e}");

    let e = err(&ROUTER_OK.replace("password_env = \"R1_PASSWORD\"\n", ""));
    assert!(e.message.contains("no password"), "{e}");

    let e = err(&ROUTER_OK.replace(
        "password_env = \"R1_PASSWORD\"",
        "password_file = \"/nonexistent/r1\"",
    ));
    assert_eq!(e.key, "tenants[0].routers[0].password_file");
    assert!(e.message.contains("/nonexistent/r1"), "{e}");
}

#[test]
fn inline_password_works_with_a_warning_that_hides_it() {
    let text = ROUTER_OK.replace("password_env = \"R1_PASSWORD\"", "password = \"inline-pw-123\"");
    let c = load_str(&text, "ispd.toml", None, &env()).unwrap();
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("tenants[0].routers[0].password"));
    assert!(c.warnings[1].contains("plain API"));
    assert!(c.warnings.iter().all(|w| !w.contains("inline-pw-123")));
}

#[test]
fn admin_api_needs_a_token() {
    let e = err("[admin]\nlisten = \"127.0.0.1:9080\"\n");
    assert_eq!((e.key.as_str(), e.line), ("admin.listen", Some(2)));
    assert!(e.message.contains("no default token"), "{e}");

    let e = err("[admin]\ntoken = \"short\"\n");
    assert!(e.message.contains("too short"), "{e}");
    assert!(!e.to_string().contains("\"short\""), "token echoed: {e}");

    let mut vars = env();
    vars.insert("ISPD_ADMIN_TOKEN".into(), "0123456789abcdef-from-env".into());
    let c = load_str("", "ispd.toml", None, &vars).unwrap();
    let admin = c.admin.expect("API enabled by the env token");
    assert_eq!(admin.listen.to_string(), "127.0.0.1:9080");
    assert!(!format!("{admin:?}").contains("from-env"));
}

#[test]
fn environment_overrides_are_checked_too() {
    let mut vars = env();
    vars.insert("ISPD_STORAGE_URL".into(), "postgres://isp:pw@db/isp".into());
    vars.insert("ISPD_SCHEDULE_DISCONNECT_EXPIRED".into(), "*/10 * * * * *".into());
    let c = load_str("[storage]\nurl = \"sqlite://a.db\"\n", "ispd.toml", None, &vars).unwrap();
    assert_eq!(c.storage.url.kind(), "postgres");
    assert_eq!(
        c.scheduler.schedules[&isp_core::jobs::JobKind::DisconnectExpired].as_str(),
        "*/10 * * * * *"
    );

    vars.insert("ISPD_SCHEDULE_DISCONNECT_EXPIRED".into(), "soon".into());
    let e = load_str("", "ispd.toml", None, &vars).unwrap_err();
    assert_eq!(
        (e.origin.as_str(), e.key.as_str()),
        ("environment", "ISPD_SCHEDULE_DISCONNECT_EXPIRED")
    );
}

#[test]
fn syntax_error_has_a_line() {
    let e = err("[storage]\nurl = \"sqlite://x.db\n");
    assert_eq!(e.line, Some(2));
}

#[test]
fn the_example_config_parses() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ispd.example.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(
        dir.path().join("secrets/hotel-abc-router2.password"),
        "pw-from-file\n",
    )
    .unwrap();
    let path = dir.path().join("ispd.toml");
    std::fs::write(&path, text).unwrap();
    let env: HashMap<String, String> = [
        ("ISPD_ADMIN_TOKEN", "0123456789abcdef0123456789abcdef"),
        ("HOTEL_ABC_ROUTER1_PASSWORD", "pw-from-env"),
        ("CAFE_XYZ_ROUTER1_PASSWORD", "pw-cafe"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let c = ispd::config::load_file(&path, &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.tenants.len(), 2);
    let routers = c.routers();
    assert_eq!(routers.len(), 3);
    assert_eq!(routers[0].credentials.expose_password(), "pw-from-env");
    assert_eq!(routers[1].credentials.expose_password(), "pw-from-file");
    assert_eq!(routers[1].address, "192.0.2.11:8729");
    assert_eq!(routers[2].address, "198.51.100.7:8728");
    assert_eq!(c.sms.kind(), "africas_talking");
    assert_eq!(c.admin.as_ref().unwrap().listen.to_string(), "127.0.0.1:9080");
    assert_eq!(c.storage.url.kind(), "sqlite");
    assert_eq!(c.tenants[0].plans.len(), 2);
    // The only warnings are the cleartext notes of the routers on the plain API.
    assert!(
        c.warnings.iter().all(|w| w.contains("plain API")),
        "{:?}",
        c.warnings
    );
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    // The defaults written in the example are the built-in defaults.
    let d = ispd::config::Config::defaults(&HashMap::new()).unwrap();
    for (job, s) in &c.scheduler.schedules {
        assert_eq!(s.as_str(), d.scheduler.schedules[job].as_str(), "{job}");
    }
    assert_eq!(c.engine.templates, d.engine.templates);
    assert_eq!(c.engine.retry_base, d.engine.retry_base);
    assert_eq!(c.scheduler.watcher_max_sleep, d.scheduler.watcher_max_sleep);
}

#[test]
fn bad_sms_gateway() {
    let e = err("[sms]\nkind = \"carrier-pigeon\"\n");
    assert!(e.key.starts_with("sms"), "{e}");
    assert!(
        e.message.contains("carrier-pigeon") || e.message.contains("variant"),
        "{e}"
    );
    assert!(e.line.is_some(), "{e}");
}
