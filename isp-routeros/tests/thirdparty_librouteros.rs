//! Conformance with the Python client `librouteros`, installed by this test into a throwaway
//! virtual environment under the cargo target directory.
//!
//! Needs `python3` with the `venv` module and access to PyPI (or a pip configured mirror). If
//! either is missing the test FAILS with the reason: it never passes without having run.
#![cfg(all(feature = "sim", unix))]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use isp_routeros::sim::{tls, SimConfig, SimRouter};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/thirdparty_librouteros.py");
const REQUIREMENT: &str = "librouteros>=4,<5";

/// Runs a command with a time limit, returning its output.
fn run(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn must_succeed(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A venv with librouteros: reused when a previous run left a working one, rebuilt otherwise.
fn venv() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("librouteros-venv");
    let python = dir.join("bin").join("python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import librouteros"])
            .output()
            .is_ok_and(|o| o.status.success());
    if ready {
        return python;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let created = run(
        Command::new("python3").args(["-m", "venv", dir.to_str().unwrap()]),
        Duration::from_secs(120),
    );
    must_succeed("python3 -m venv (is python3 with venv installed?)", &created);
    let installed = run(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            REQUIREMENT,
        ]),
        Duration::from_secs(240),
    );
    must_succeed("pip install librouteros (can pip reach PyPI?)", &installed);
    python
}

async fn run_script(python: PathBuf, args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        run(
            Command::new(python).arg(SCRIPT).args(args),
            Duration::from_secs(60),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn librouteros_against_the_simulator() {
    let python = tokio::task::spawn_blocking(venv).await.unwrap();

    // plain TCP
    let r = SimRouter::start(
        SimConfig::new("admin", "py-secret"),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let args = vec![
        "127.0.0.1".to_owned(),
        r.addr().port().to_string(),
        "admin".to_owned(),
        "py-secret".to_owned(),
    ];
    let out = run_script(python.clone(), args).await;
    must_succeed("librouteros script", &out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("librouteros: all checks passed"));
    // what the router saw
    let h = r.handle();
    assert_eq!(h.logins(), 1);
    let users: Vec<String> = h
        .rows("/ip/hotspot/user")
        .into_iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(users, ["alice", "bob"]);
    assert_eq!(h.rows("/ip/hotspot/active").len(), 1);
    let log = h.command_log();
    assert!(log.iter().any(|l| l.command == "/ip/hotspot/user/set"));
    assert!(log.iter().any(|l| l.queries.iter().any(|q| q == "#|")));
    assert!(log
        .iter()
        .all(|l| l.attributes.iter().all(|(_, v)| v != "py-secret")));
    r.shutdown().await;

    // api-ssl
    let cert = tls::self_signed(&["localhost"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert.cert_pem).unwrap();
    let mut cfg = SimConfig::new("admin", "py-secret");
    cfg.tls = Some(cert.server_config.clone());
    let r = SimRouter::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let args = vec![
        "127.0.0.1".to_owned(),
        r.addr().port().to_string(),
        "admin".to_owned(),
        "py-secret".to_owned(),
        ca.to_str().unwrap().to_owned(),
    ];
    let out = run_script(python, args).await;
    must_succeed("librouteros script over TLS", &out);
    r.shutdown().await;
}
