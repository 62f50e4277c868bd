//! `ispd` on MariaDB (feature `mysql`): `ispd migrate` brings an empty database
//! up to date (again: nothing to do), then `once` and `status` work on it, and
//! no output shows the URL's password. The server is isp-testsupport's
//! throwaway MariaDB (or `ISP_TEST_MYSQL_URL`); `ISP_TEST_SKIP=mariadb` skips.

#![cfg(feature = "mysql")]

use std::process::{Command, Output, Stdio};

fn ispd(args: &[&str], cfg: &std::path::Path) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ispd"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ISPD_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    let Output {
        status,
        stdout,
        stderr,
    } = c
        .args(args)
        .arg("--config")
        .arg(cfg)
        .stdin(Stdio::null())
        .output()
        .expect("ispd runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[tokio::test]
async fn migrate_then_once_and_status_on_mariadb() {
    let Some(url) = isp_testsupport::mariadb::fresh_database().await else {
        return;
    };
    // The harness's user is isp:isp; a mariadb:// URL works the same.
    let url = url.replacen("mysql://", "mariadb://", 1);
    let secret = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(userinfo, _)| userinfo.to_owned())
        .expect("user:password in the URL");
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("ispd.toml");
    std::fs::write(
        &cfg,
        format!("[storage]\nurl = \"{url}\"\nauto_migrate = false\n"),
    )
    .expect("config");
    for _ in 0..2 {
        let (code, out, err) = ispd(&["migrate"], &cfg);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("schema up to date"), "{out}");
        assert!(!out.contains(&secret) && !err.contains(&secret), "{out}\n{err}");
    }
    let (code, out, err) = ispd(&["once", "disconnect-expired"], &cfg);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "disconnect-expired complete: 0 users disconnected, 0 devices deactivated, 0 SMS sent, 0 failures"
    );
    let (code, out, err) = ispd(&["status"], &cfg);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("health: healthy"), "{out}");
    assert!(!out.contains(&secret) && !err.contains(&secret), "{out}\n{err}");
}
