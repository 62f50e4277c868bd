//! api-ssl: certificate verification, pinning and refusals, against the simulator over TLS.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod client_common;

use client_common::{quick, sim_config, start, PASSWORD, USER};
use isp_routeros::client::{
    certificate_fingerprint, map_ros_error, Client, ClientError, Credentials, Endpoint, TlsOptions,
    TrustRoots,
};
use isp_routeros::sim::tls::{self_signed, SelfSigned};
use isp_routeros::sim::SimRouter;

async fn tls_router() -> (SimRouter, SelfSigned) {
    let cert = self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let mut config = sim_config();
    config.tls = Some(cert.server_config.clone());
    (start(config).await, cert)
}

fn tls_client(sim: &SimRouter, options: TlsOptions) -> Client {
    let endpoint = Endpoint::tls(
        "router tls",
        &sim.addr().to_string(),
        Credentials::new(USER, PASSWORD),
        options,
    )
    .unwrap();
    Client::new(endpoint, quick()).unwrap()
}

#[tokio::test]
async fn a_pinned_fingerprint_is_accepted() {
    let (sim, cert) = tls_router().await;
    let fp = certificate_fingerprint(&cert.cert_der);
    let c = tls_client(&sim, TlsOptions::pinned(&fp).unwrap());
    let rows = c.print("/system/identity", &["name"], &[]).await.unwrap();
    assert_eq!(rows[0].get("name"), Some("MikroTik"));
    // Colon-separated upper case, as operators copy it from the router, works too.
    let colons = fp
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let c = tls_client(&sim, TlsOptions::pinned(&colons).unwrap());
    c.print("/system/identity", &[], &[]).await.unwrap();
    assert_eq!(sim.handle().logins(), 2);
}

#[tokio::test]
async fn a_wrong_pin_is_refused_and_not_retried() {
    let (sim, _cert) = tls_router().await;
    let other = self_signed(&["localhost"]).unwrap();
    let c = tls_client(
        &sim,
        TlsOptions::pinned(&certificate_fingerprint(&other.cert_der)).unwrap(),
    );
    let err = c.print("/system/identity", &[], &[]).await.unwrap_err();
    assert!(matches!(err, ClientError::Certificate { .. }), "{err:?}");
    assert!(err.to_string().contains("pinned"), "{err}");
    assert!(!err.is_transient());
    let mapped = map_ros_error("router tls", err);
    assert!(
        matches!(mapped, isp_core::Error::Authentication { .. }),
        "{mapped:?}"
    );
    assert!(!mapped.is_transient());
    assert_eq!(sim.handle().logins(), 0);
}

#[tokio::test]
async fn a_self_signed_certificate_is_refused_by_the_webpki_roots() {
    let (sim, _cert) = tls_router().await;
    let c = tls_client(&sim, TlsOptions::webpki());
    let err = c.print("/system/identity", &[], &[]).await.unwrap_err();
    assert!(matches!(err, ClientError::Certificate { .. }), "{err:?}");
    assert_eq!(sim.handle().logins(), 0);
}

#[tokio::test]
async fn a_configured_ca_is_trusted_for_its_names_only() {
    let (sim, cert) = tls_router().await;
    let ca = TlsOptions::with_ca_pem(cert.cert_pem.as_bytes()).unwrap();
    assert!(matches!(ca.roots, TrustRoots::Custom(ref c) if c.len() == 1));
    let c = tls_client(&sim, ca.clone());
    c.print("/system/identity", &[], &[]).await.unwrap();
    // The certificate names localhost and 127.0.0.1, not this:
    let c = tls_client(&sim, ca.with_server_name("router.example.net"));
    let err = c.print("/system/identity", &[], &[]).await.unwrap_err();
    assert!(matches!(err, ClientError::Certificate { .. }), "{err:?}");
    assert!(TlsOptions::with_ca_pem(b"not a certificate").is_err());
}

#[tokio::test]
async fn plain_api_against_api_ssl_fails_cleanly() {
    let (sim, _cert) = tls_router().await;
    let endpoint = Endpoint::plain(
        "router tls",
        &sim.addr().to_string(),
        Credentials::new(USER, PASSWORD),
    )
    .unwrap();
    let c = Client::new(endpoint, quick()).unwrap();
    let err = c.print("/system/identity", &[], &[]).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(!format!("{err:?}").contains(PASSWORD));
}
