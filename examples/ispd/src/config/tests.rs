//! Unit tests of the configuration loader.

use super::validate::*;
use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn empty_file_gives_defaults() {
    let c = load_str("", "t.toml", None, &env(&[])).unwrap();
    assert!(matches!(c.storage.url, StorageUrl::Sqlite(ref p) if p == Path::new("ispd.db")));
    assert!(c.admin.is_none(), "no token, no API");
    assert_eq!(c.scheduler.schedules.len(), JobKind::ALL.len());
    assert_eq!(
        c.scheduler.schedules[&JobKind::DeviceCleanup].as_str(),
        "0 3 * * *"
    );
}

#[test]
fn storage_urls() {
    assert!(matches!(
        StorageUrl::parse("memory", None),
        Ok(StorageUrl::Memory)
    ));
    assert!(
        matches!(StorageUrl::parse("sqlite:///var/lib/x.db", None), Ok(StorageUrl::Sqlite(p)) if p == Path::new("/var/lib/x.db"))
    );
    assert!(
        matches!(StorageUrl::parse("sqlite:x.db?mode=rwc", None), Ok(StorageUrl::Sqlite(p)) if p == Path::new("x.db"))
    );
    let pg = StorageUrl::parse("postgres://isp:hunter2@db/isp", None).unwrap();
    assert_eq!(pg.redacted(), "postgres://isp:***@db/isp");
    assert!(!format!("{pg:?}").contains("hunter2"));
    match StorageUrl::parse("mongodb://u:p@h/billing?x=1", None).unwrap() {
        StorageUrl::Mongo { database, .. } => assert_eq!(database, "billing"),
        other => panic!("{other:?}"),
    }
    for url in ["mysql://isp:hunter2@db/isp", "mariadb://isp:hunter2@db/isp"] {
        let my = StorageUrl::parse(url, None).unwrap();
        assert!(matches!(my, StorageUrl::Mysql(_)), "{my:?}");
        assert_eq!(my.kind(), "mysql");
        assert_eq!(my.redacted(), url.replace("hunter2", "***"));
        assert!(!format!("{my:?}").contains("hunter2"));
    }
    let e = StorageUrl::parse("oracle://u:secretpw@h/db", None).unwrap_err();
    assert!(!e.contains("secretpw") && e.contains("oracle"), "{e}");
}

#[test]
fn addresses() {
    assert_eq!(
        normalize_address("10.0.0.1", Transport::Api).unwrap(),
        "10.0.0.1:8728"
    );
    assert_eq!(
        normalize_address("r1.lan:1234", Transport::Api).unwrap(),
        "r1.lan:1234"
    );
    assert_eq!(normalize_address("r1", Transport::ApiSsl).unwrap(), "r1:8729");
    assert_eq!(normalize_address("[::1]:99", Transport::Api).unwrap(), "[::1]:99");
    assert!(normalize_address("http://x", Transport::Api).is_err());
    assert!(normalize_address("x:0", Transport::Api).is_err());
    assert!(normalize_address("x:99999", Transport::Api).is_err());
}

#[test]
fn redaction() {
    assert_eq!(
        redact_url("postgres://a:b@h:5432/d?x=1"),
        "postgres://a:***@h:5432/d?x=1"
    );
    assert_eq!(redact_url("postgres://a@h/d"), "postgres://a@h/d");
    assert_eq!(redact_url("postgres://h/d"), "postgres://h/d");
}

#[test]
fn token_rules() {
    assert!(AdminToken::new("short").is_err());
    assert!(AdminToken::new("has a space in it....").is_err());
    let t = AdminToken::new("0123456789abcdef0123").unwrap();
    assert!(!format!("{t:?}").contains("0123456789"));
    assert_eq!(AdminToken::random().expose().len(), 64);
}

const RADIUS_TENANT: &str = r#"
[[tenants]]
id = 1
slug = "hotel-abc"
time_zone = "Africa/Dar_es_Salaam"

[[tenants.routers]]
id = 4
name = "HotelRadius1"
address = "192.0.2.40"
transport = "radius"
secret = "radius-shared-secret-1"
"#;

#[test]
fn radius_routers_and_the_radius_section() {
    let text = format!("[radius]\nlisten = \"127.0.0.1:11812\"\ninterim_interval = \"1m\"\n{RADIUS_TENANT}");
    let c = load_str(&text, "t.toml", None, &env(&[])).unwrap();
    let r = c.radius.as_ref().expect("[radius]");
    assert_eq!(r.auth_listen.to_string(), "127.0.0.1:11812");
    assert_eq!(r.acct_listen.to_string(), "127.0.0.1:11813");
    assert_eq!(r.interim_interval, Duration::from_secs(60));
    assert_eq!(r.nases.len(), 1);
    assert_eq!(r.nases[0].incoming.to_string(), "192.0.2.40:3799");
    assert_eq!(r.nases[0].secret(), b"radius-shared-secret-1");
    assert!(r.serves(RouterId(4)));
    assert_eq!(r.session_retention, isp_radius::DEFAULT_SESSION_RETENTION);
    assert_eq!(c.routers()[0].address, "192.0.2.40:3799");
    assert_eq!(
        c.routers()[0].transport,
        Transport::Radius,
        "stored on the router"
    );
    // An inline secret works, with a warning; no cleartext note about the API.
    assert!(
        c.warnings.iter().any(|w| w.contains("secret")),
        "{:?}",
        c.warnings
    );
    assert!(!c.cleartext_notes().iter().any(|n| n.contains("HotelRadius1")));
    let shown = format!("{c:?}");
    assert!(!shown.contains("radius-shared-secret-1"), "secret in Debug");

    // Defaults: all addresses, 1812/1813.
    let c = load_str(&format!("[radius]\n{RADIUS_TENANT}"), "t.toml", None, &env(&[])).unwrap();
    let r = c.radius.expect("[radius]");
    assert_eq!(r.auth_listen.to_string(), "0.0.0.0:1812");
    assert_eq!(r.acct_listen.to_string(), "0.0.0.0:1813");
    let c = load_str(
        &format!("[radius]\n{RADIUS_TENANT}"),
        "t.toml",
        None,
        &env(&[("ISPD_RADIUS_LISTEN", "127.0.0.1:0")]),
    )
    .unwrap();
    assert_eq!(c.radius.expect("[radius]").acct_listen.port(), 0);
    let c = load_str(
        &format!("[radius]\nsession_retention = \"7d\"\n{RADIUS_TENANT}"),
        "t.toml",
        None,
        &env(&[]),
    )
    .unwrap();
    assert_eq!(
        c.radius.expect("[radius]").session_retention,
        Duration::from_secs(7 * 86_400)
    );
    let e = load_str(
        &format!("[radius]\nsession_retention = \"10m\"\n{RADIUS_TENANT}"),
        "t.toml",
        None,
        &env(&[]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("radius.session_retention"), "{e}");
}

#[test]
fn radius_mistakes_are_named() {
    let e = load_str(RADIUS_TENANT, "t.toml", None, &env(&[])).unwrap_err();
    assert!(e.message.contains("[radius]"), "{e}");
    let no_secret = RADIUS_TENANT.replace("secret = \"radius-shared-secret-1\"\n", "");
    let e = load_str(&format!("[radius]\n{no_secret}"), "t.toml", None, &env(&[])).unwrap_err();
    assert!(e.message.contains("secret_file"), "{e}");
    let named = RADIUS_TENANT.replace("192.0.2.40", "router.lan");
    let e = load_str(&format!("[radius]\n{named}"), "t.toml", None, &env(&[])).unwrap_err();
    assert!(
        e.key.ends_with("address") && e.message.contains("IP address"),
        "{e}"
    );
    let with_login = RADIUS_TENANT.replace(
        "transport = \"radius\"",
        "transport = \"radius\"\nusername = \"isp\"",
    );
    let e = load_str(&format!("[radius]\n{with_login}"), "t.toml", None, &env(&[])).unwrap_err();
    assert!(e.message.contains("no API login"), "{e}");
    let e = load_str(
        &format!("[radius]\nlisten = \"nowhere\"\n{RADIUS_TENANT}"),
        "t.toml",
        None,
        &env(&[]),
    )
    .unwrap_err();
    assert_eq!(e.key, "radius.listen");
    let api_with_secret = RADIUS_TENANT.replace(
        "transport = \"radius\"",
        "username = \"isp\"\npassword = \"pw-123\"",
    );
    let e = load_str(&api_with_secret, "t.toml", None, &env(&[])).unwrap_err();
    assert!(e.message.contains("transport = \"radius\""), "{e}");
    let bad = RADIUS_TENANT.replace("\"radius\"", "\"radios\"");
    let e = load_str(&bad, "t.toml", None, &env(&[])).unwrap_err();
    assert!(
        e.message.contains("radius") && e.message.contains("radios"),
        "{e}"
    );
    assert!(!e.to_string().contains("radius-shared-secret-1"), "{e}");
}

#[test]
fn a_radius_secret_file_is_read_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("radius.secret"), "from-a-file-secret\n").unwrap();
    let text = format!(
        "[radius]\n{}",
        RADIUS_TENANT.replace(
            "secret = \"radius-shared-secret-1\"",
            "secret_file = \"radius.secret\""
        )
    );
    let c = load_str(&text, "t.toml", Some(dir.path()), &env(&[])).unwrap();
    let r = c.radius.as_ref().expect("[radius]");
    assert_eq!(r.nases[0].secret(), b"from-a-file-secret");
    assert!(
        c.warnings.iter().all(|w| !w.contains("secret is written")),
        "{:?}",
        c.warnings
    );
    assert!(!format!("{c:?}").contains("from-a-file-secret"));
}
