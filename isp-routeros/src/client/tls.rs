//! TLS for api-ssl: rustls with the ring provider, chain verification against
//! configured roots, or a pinned certificate fingerprint.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::Digest;
use subtle::ConstantTimeEq;
use tokio_rustls::TlsConnector;

use super::config::{TlsOptions, TrustRoots};
use super::error::ClientError;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(reason: String) -> ClientError {
    ClientError::Config {
        field: "tls",
        value: "(TLS settings)".into(),
        reason,
    }
}

/// Accepts exactly one certificate, by SHA-256, and still checks that the
/// server holds its private key (the handshake signature).
#[derive(Debug)]
struct PinnedVerifier {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = sha2::Sha256::digest(end_entity.as_ref());
        if bool::from(got.as_slice().ct_eq(&self.pin)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Builds the connector for these options (once per router).
pub(crate) fn connector(options: &TlsOptions) -> Result<TlsConnector, ClientError> {
    Ok(TlsConnector::from(Arc::new(client_config(options)?)))
}

/// The rustls client configuration for these options: chain verification
/// against the roots, or the pinned fingerprint. Shared by api-ssl and REST.
pub(crate) fn client_config(options: &TlsOptions) -> Result<rustls::ClientConfig, ClientError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(format!("TLS versions: {e}")))?;
    let config = match options.pinned_sha256 {
        Some(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier { pin, provider }))
            .with_no_client_auth(),
        None => {
            let mut roots = RootCertStore::empty();
            let extra: &[CertificateDer<'static>] = match &options.roots {
                TrustRoots::WebPki => &[],
                TrustRoots::Custom(c) | TrustRoots::WebPkiAnd(c) => c,
            };
            if matches!(options.roots, TrustRoots::WebPki | TrustRoots::WebPkiAnd(_)) {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            for cert in extra {
                roots
                    .add(cert.clone())
                    .map_err(|e| config_error(format!("unusable CA certificate: {e}")))?;
            }
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| config_error(format!("certificate verifier: {e}")))?;
            builder.with_webpki_verifier(verifier).with_no_client_auth()
        }
    };
    Ok(config)
}

/// The name to verify: the configured server name, else the host.
pub(crate) fn server_name(options: &TlsOptions, host: &str) -> Result<ServerName<'static>, ClientError> {
    let name = options.server_name.as_deref().unwrap_or(host);
    ServerName::try_from(name.to_owned()).map_err(|_| ClientError::Config {
        field: "tls_server_name",
        value: name.to_owned(),
        reason: "not a DNS name or IP address".into(),
    })
}

/// Sorts a failed handshake: an untrusted certificate is permanent
/// ([`ClientError::Certificate`]), anything else is transient ([`ClientError::Tls`]).
pub(crate) fn classify_handshake_error(addr: &str, err: &std::io::Error) -> ClientError {
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
    match inner {
        Some(e) => classify_rustls_error(addr, e),
        None => ClientError::Tls {
            addr: addr.to_owned(),
            detail: err.to_string(),
        },
    }
}

/// Sorts a rustls error: an untrusted certificate is permanent
/// ([`ClientError::Certificate`]), anything else is transient ([`ClientError::Tls`]).
pub(crate) fn classify_rustls_error(addr: &str, err: &rustls::Error) -> ClientError {
    match err {
        rustls::Error::InvalidCertificate(cert_err) => ClientError::Certificate {
            addr: addr.to_owned(),
            detail: match cert_err {
                CertificateError::ApplicationVerificationFailure => {
                    "certificate does not match the pinned SHA-256 fingerprint".to_owned()
                }
                other => format!("{other:?}"),
            },
        },
        other => ClientError::Tls {
            addr: addr.to_owned(),
            detail: other.to_string(),
        },
    }
}
