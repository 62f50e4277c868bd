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
