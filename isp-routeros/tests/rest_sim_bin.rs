//! `routeros-sim --rest-listen` as a child process: REST over plain HTTP, and over HTTPS with
//! `--tls-cert`/`--tls-key`, driven by the driver.
#![cfg(all(feature = "sim", unix))]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use isp_core::domain::{
    OwnerTag, RosName, Router, RouterCredentials, RouterId, ServiceId, TenantId, Transport,
};
use isp_core::ports::{RouterDriver, StaticIpSpec};
use isp_routeros::client::certificate_fingerprint;
use isp_routeros::driver::{DriverConfig, RouterOsDriver};
use isp_routeros::sim::tls;

const BIN: &str = env!("CARGO_BIN_EXE_routeros-sim");

/// A child that is killed when the test ends, however it ends.
struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary and reads its lines: `n` `listening on ADDR`, then `n` `rest on URL`.
fn spawn(args: &[&str], n: usize) -> (Sim, Vec<String>, Vec<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn routeros-sim");
    let stdout = child.stdout.take().unwrap();
    let sim = Sim(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let (mut api, mut rest) = (Vec::new(), Vec::new());
    while api.len() + rest.len() < 2 * n {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("routeros-sim did not print its addresses");
        if let Some(addr) = line.strip_prefix("listening on ") {
            assert!(rest.is_empty(), "API lines come first: {line}");
            api.push(addr.to_owned());
        } else if let Some(url) = line.strip_prefix("rest on ") {
            rest.push(url.to_owned());
        } else {
            panic!("unexpected line {line:?}");
        }
    }
    (sim, api, rest)
}

fn router(id: i64, address: &str, fingerprint: Option<String>) -> Router {
    Router {
        id: RouterId(id),
        tenant_id: TenantId(1),
        name: format!("bin-{id}"),
        address: address.to_owned(),
        transport: Transport::Rest,
        credentials: RouterCredentials::new("admin", "pw"),
        tls_fingerprint: fingerprint,
        enabled: true,
    }
}

fn spec() -> StaticIpSpec {
    StaticIpSpec {
        address: "10.0.0.2".parse().unwrap(),
        list: RosName::parse("list", "isp-allowed").unwrap(),
        owner: OwnerTag::Service(ServiceId(1)),
    }
}

#[tokio::test]
async fn rest_over_http_for_every_router() {
    let (_sim, api, rest) = spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--rest-listen",
            "127.0.0.1:0",
            "--user",
            "admin",
            "--password",
            "pw",
            "--routers",
            "2",
        ],
        2,
    );
    assert_eq!(api.len(), 2);
    let d = RouterOsDriver::new(DriverConfig::default()).unwrap();
    for (i, url) in rest.iter().enumerate() {
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let r = router(i as i64 + 1, url, None);
        let health = d.health(&r).await.unwrap();
        assert_eq!(health.identity, format!("MikroTik-{}", i + 1));
        d.provision_static_ip(&r, &spec()).await.unwrap();
        let snapshot = d
            .snapshot(&r, &[isp_core::ports::Menu::AddressList])
            .await
            .unwrap();
        assert_eq!(snapshot.address_list.len(), 1);
        d.deprovision_static_ip(&r, spec().address, &spec().list, spec().owner)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn rest_over_https_with_the_certificate_files() {
    let cert = tls::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert.cert_pem).unwrap();
    std::fs::write(&key_path, &cert.key_pem).unwrap();
    let (mut sim, _api, rest) = spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--rest-listen",
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
    assert!(rest[0].starts_with("https://127.0.0.1:"), "{}", rest[0]);
    let d = RouterOsDriver::new(DriverConfig::default()).unwrap();
    let pinned = router(1, &rest[0], Some(certificate_fingerprint(&cert.cert_der)));
    d.provision_static_ip(&pinned, &spec()).await.unwrap();
    let wrong = tls::self_signed(&["localhost"]).unwrap();
    let refused = router(2, &rest[0], Some(certificate_fingerprint(&wrong.cert_der)));
    let err = d.health(&refused).await.unwrap_err();
    assert!(matches!(err, isp_core::Error::Authentication { .. }), "{err:?}");

    let status = Command::new("kill")
        .args(["-TERM", &sim.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = sim.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "routeros-sim did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
}
