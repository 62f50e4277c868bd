//! The `routeros-sim` binary as a child process.
#![cfg(all(feature = "sim", unix))]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod sim_common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use isp_routeros::sim::tls;
use sim_common::Raw;

const BIN: &str = env!("CARGO_BIN_EXE_routeros-sim");

/// Starts the binary and reads `n` lines `listening on ADDR`.
fn spawn(args: &[&str], n: usize) -> (Child, Vec<SocketAddr>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn routeros-sim");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut addrs = Vec::new();
    while addrs.len() < n {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("routeros-sim did not print its addresses");
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        addrs.push(addr.parse().unwrap());
    }
    (child, addrs)
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("routeros-sim did not stop on a signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn serves_routers_and_stops_on_sigterm() {
    let (mut child, addrs) = spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--user",
            "admin",
            "--password",
            "pw",
            "--routers",
            "3",
            "--latency-ms",
            "50",
        ],
        3,
    );
    assert_eq!(addrs.len(), 3);
    for addr in &addrs {
        let mut c = Raw::connect(*addr).await;
        let start = Instant::now();
        c.login("admin", "pw").await;
        assert!(start.elapsed() >= Duration::from_millis(50));
        let added = c.call(&["/ppp/secret/add", "=name=x"]).await;
        assert_eq!(added[0].get("ret"), Some("*1"));
    }
    signal(&child, "-TERM");
    let status = wait_exit(&mut child);
    assert!(status.success(), "{status:?}");
    assert!(tokio::net::TcpStream::connect(addrs[0]).await.is_err());
}

#[tokio::test]
async fn serves_tls_and_stops_on_sigint() {
    let cert = tls::self_signed(&["localhost"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert.cert_pem).unwrap();
    std::fs::write(&key_path, &cert.key_pem).unwrap();
    let (mut child, addrs) = spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--user",
            "admin",
            "--password",
            "pw",
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
        1,
    );
    let mut c = Raw::connect_tls(addrs[0], cert.cert_der.clone()).await;
    c.login("admin", "pw").await;
    signal(&child, "-INT");
    let status = wait_exit(&mut child);
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_arguments_fail_clearly() {
    let out = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--user",
            "a",
            "--password",
            "p",
            "--tls-cert",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--user",
            "a",
            "--password",
            "p",
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    let out = Command::new(BIN)
        .args(["--listen", "not-an-address", "--user", "a", "--password", "p"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
}
