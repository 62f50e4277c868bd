//! Certificates for the simulator's api-ssl service.
//!
//! A real router without a certificate only offers anonymous Diffie-Hellman ciphers, which
//! rustls refuses; deployments set a (often self-signed) certificate. These helpers make one,
//! or load PEM files, and build the `rustls` server configuration with the `ring` provider
//! (chosen explicitly, so that no process-wide default provider is needed).

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

/// A freshly generated self-signed certificate and the server configuration using it.
#[derive(Clone)]
pub struct SelfSigned {
    /// The certificate (DER), for clients to trust or pin.
    pub cert_der: CertificateDer<'static>,
    /// The certificate in PEM.
    pub cert_pem: String,
    /// The private key in PEM (PKCS#8). Test material only.
    pub key_pem: String,
    /// A server configuration presenting the certificate.
    pub server_config: Arc<ServerConfig>,
}

impl std::fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfSigned")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Generates a self-signed certificate for `names` (DNS names or IP addresses, e.g.
/// `["localhost", "127.0.0.1"]`).
pub fn self_signed(names: &[&str]) -> io::Result<SelfSigned> {
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let certified = rcgen::generate_simple_self_signed(names).map_err(other)?;
    let cert_der = certified.cert.der().clone();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let server_config = server_config(vec![cert_der.clone()], key_der)?;
    Ok(SelfSigned {
        cert_der,
        cert_pem: certified.cert.pem(),
        key_pem: certified.key_pair.serialize_pem(),
        server_config,
    })
}

/// A server configuration from a certificate chain and key (ring provider, TLS 1.2 and 1.3).
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> io::Result<Arc<ServerConfig>> {
    let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(other)?;
    Ok(Arc::new(config))
}

/// A server configuration from PEM text (certificate chain, then private key).
pub fn server_config_from_pem(cert_pem: &[u8], key_pem: &[u8]) -> io::Result<Arc<ServerConfig>> {
    let chain = rustls_pemfile::certs(&mut &cert_pem[..]).collect::<io::Result<Vec<_>>>()?;
    if chain.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no certificate in the PEM input",
        ));
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])?
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no private key in the PEM input"))?;
    server_config(chain, key)
}

/// A server configuration from PEM files.
pub fn server_config_from_files(cert: &Path, key: &Path) -> io::Result<Arc<ServerConfig>> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", p.display())))
    };
    server_config_from_pem(&read(cert)?, &read(key)?)
}
