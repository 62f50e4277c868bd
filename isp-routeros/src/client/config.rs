//! Where a router is, how to log in, how to trust its certificate, and the
//! client's timeouts and pool limits.

use std::fmt;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use secrecy::{ExposeSecret, SecretString};

use super::error::ClientError;
use crate::proto::{DEFAULT_MAX_SENTENCE_BYTES, DEFAULT_MAX_WORD_LEN};

/// Default [`ClientConfig::max_response_bytes`]: 64 MiB, far above any real
/// router's table, far below what would hurt the daemon.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Default port of the plain API service.
pub const API_PORT: u16 = 8728;
/// Default port of the api-ssl service.
pub const API_SSL_PORT: u16 = 8729;

/// API login. `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    username: String,
    password: SecretString,
}

impl Credentials {
    /// Builds credentials.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: SecretString::from(password.into()),
        }
    }

    /// From a router's stored credentials.
    pub fn from_router(creds: &isp_core::domain::RouterCredentials) -> Self {
        Credentials {
            username: creds.username.clone(),
            password: creds.password.clone(),
        }
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password, for the login sentence only.
    pub(crate) fn expose_password(&self) -> &str {
        self.password.expose_secret()
    }

    /// True when both name and password are equal (used to notice changed credentials).
    pub(crate) fn same_as(&self, other: &Credentials) -> bool {
        self.username == other.username && self.password.expose_secret() == other.password.expose_secret()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

/// Which certificates to trust for api-ssl.
#[derive(Clone, PartialEq, Eq)]
pub enum TrustRoots {
    /// The Mozilla roots shipped in `webpki-roots`.
    WebPki,
    /// Only the given CA certificates (DER), e.g. the operator's own CA.
    Custom(Vec<CertificateDer<'static>>),
    /// The Mozilla roots and the given CA certificates.
    WebPkiAnd(Vec<CertificateDer<'static>>),
}

impl fmt::Debug for TrustRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustRoots::WebPki => f.write_str("WebPki"),
            TrustRoots::Custom(c) => write!(f, "Custom({} certificates)", c.len()),
            TrustRoots::WebPkiAnd(c) => write!(f, "WebPkiAnd({} certificates)", c.len()),
        }
    }
}

/// How to verify a router's TLS certificate.
///
/// Without a pin the certificate must chain to [`TlsOptions::roots`] and name
/// the host (or [`TlsOptions::server_name`]). With a pin
/// ([`TlsOptions::pinned_sha256`]) the end certificate's SHA-256 must equal the
/// pin and nothing else is checked: that is how self-signed router
/// certificates are trusted. The handshake signatures are verified either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// Trusted roots when no pin is set.
    pub roots: TrustRoots,
    /// The name to verify instead of the host of the address (and to send as SNI).
    pub server_name: Option<String>,
    /// SHA-256 of the router's certificate (DER) to accept instead of a chain.
    pub pinned_sha256: Option<[u8; 32]>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            roots: TrustRoots::WebPki,
            server_name: None,
            pinned_sha256: None,
        }
    }
}

impl TlsOptions {
    /// Verify against the Mozilla roots.
    pub fn webpki() -> Self {
        TlsOptions::default()
    }

    /// Verify against the CA certificates in a PEM file's contents only.
    pub fn with_ca_pem(pem: &[u8]) -> Result<Self, ClientError> {
        let mut reader = pem;
        let certs = rustls_pemfile::certs(&mut reader)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientError::Config {
                field: "tls_ca",
                value: "(PEM data)".into(),
                reason: format!("cannot read PEM certificates: {e}"),
            })?;
        if certs.is_empty() {
            return Err(ClientError::Config {
                field: "tls_ca",
                value: "(PEM data)".into(),
                reason: "no CERTIFICATE block found".into(),
            });
        }
        Ok(TlsOptions {
            roots: TrustRoots::Custom(certs),
            ..TlsOptions::default()
        })
    }

    /// Accept exactly the certificate with this SHA-256 fingerprint (hex, colons
    /// and spaces allowed, any case).
    pub fn pinned(fingerprint: &str) -> Result<Self, ClientError> {
        Ok(TlsOptions {
            pinned_sha256: Some(parse_fingerprint(fingerprint)?),
            ..TlsOptions::default()
        })
    }

    /// Adds a pin to these options.
    pub fn with_pin(mut self, fingerprint: &str) -> Result<Self, ClientError> {
        self.pinned_sha256 = Some(parse_fingerprint(fingerprint)?);
        Ok(self)
    }

    /// Sets the name to verify and send as SNI.
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }
}

/// Parses a SHA-256 fingerprint: 64 hex digits, optionally separated by `:`, `-` or spaces.
pub fn parse_fingerprint(raw: &str) -> Result<[u8; 32], ClientError> {
    let hex_digits: String = raw.chars().filter(|c| !matches!(c, ':' | '-' | ' ')).collect();
    let bad = |reason: &str| ClientError::Config {
        field: "tls_fingerprint",
        value: raw.to_owned(),
        reason: reason.to_owned(),
    };
    if hex_digits.len() != 64 {
        return Err(bad("a SHA-256 fingerprint is 64 hex digits"));
    }
    let bytes = hex::decode(&hex_digits).map_err(|_| bad("not hexadecimal"))?;
    let mut out = [0u8; 32];
    out.copy_from_slice(&bytes);
    Ok(out)
}

/// SHA-256 fingerprint of a DER certificate, as lowercase hex (what
/// [`TlsOptions::pinned`] accepts).
pub fn certificate_fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(der))
}

/// Plain TCP or TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    /// The `api` service (8728).
    Plain,
    /// The `api-ssl` service (8729).
    Tls(TlsOptions),
}

/// One router to talk to: where, how, as whom.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Name for logs and errors (`router main-office`).
    pub label: String,
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Plain or TLS.
    pub security: Security,
    /// Login.
    pub credentials: Credentials,
}

impl Endpoint {
    /// A plain-API endpoint. `address` is `host:port` or `host` (port 8728).
    pub fn plain(
        label: impl Into<String>,
        address: &str,
        credentials: Credentials,
    ) -> Result<Self, ClientError> {
        let (host, port) = parse_address(address, API_PORT)?;
        Ok(Endpoint {
            label: label.into(),
            host,
            port,
            security: Security::Plain,
            credentials,
        })
    }

    /// An api-ssl endpoint. `address` is `host:port` or `host` (port 8729).
    pub fn tls(
        label: impl Into<String>,
        address: &str,
        credentials: Credentials,
        tls: TlsOptions,
    ) -> Result<Self, ClientError> {
        let (host, port) = parse_address(address, API_SSL_PORT)?;
        Ok(Endpoint {
            label: label.into(),
            host,
            port,
            security: Security::Tls(tls),
            credentials,
        })
    }

    /// `host:port` (IPv6 hosts in brackets).
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// True when both endpoints reach the same router the same way as the same user.
    pub(crate) fn same_as(&self, other: &Endpoint) -> bool {
        self.host == other.host
            && self.port == other.port
            && self.security == other.security
            && self.credentials.same_as(&other.credentials)
    }
}

/// Splits `host:port`, `[v6]:port`, `host` or a bare IPv6 address.
pub fn parse_address(raw: &str, default_port: u16) -> Result<(String, u16), ClientError> {
    let bad = |reason: &str| ClientError::Config {
        field: "address",
        value: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let t = raw.trim();
    if t.is_empty() {
        return Err(bad("empty address"));
    }
    if t.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
        return Err(bad("an address is host:port without spaces or slashes"));
    }
    let parse_port = |p: &str| -> Result<u16, ClientError> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad("port is not a number from 1 to 65535")),
            Ok(n) => Ok(n),
        }
    };
    if let Some(rest) = t.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("missing ']' after an IPv6 address"))?;
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = match after {
            "" => default_port,
            p => parse_port(p.strip_prefix(':').ok_or_else(|| bad("expected ':' after ']'"))?)?,
        };
        return Ok((host.to_owned(), port));
    }
    match t.matches(':').count() {
        0 => Ok((t.to_owned(), default_port)),
        1 => {
            let (host, port) = t.split_once(':').ok_or_else(|| bad("expected host:port"))?;
            if host.is_empty() {
                return Err(bad("empty host"));
            }
            Ok((host.to_owned(), parse_port(port)?))
        }
        _ => match t.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok((t.to_owned(), default_port)),
            Err(_) => Err(bad("write IPv6 addresses with a port as [addr]:port")),
        },
    }
}

/// Timeouts, keepalive, reconnect back-off and pool limits.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// TCP connect (and TLS handshake) limit.
    pub connect_timeout: Duration,
    /// Login limit.
    pub login_timeout: Duration,
    /// Limit for one command (from sending it to its `!done`). A command that
    /// times out closes its connection: a router that stopped mid-reply cannot
    /// be trusted to resume.
    pub command_timeout: Duration,
    /// Ping an idle connection this often (`/system/identity/print`); a failed
    /// ping closes it. `None`: no keepalive.
    pub keepalive: Option<Duration>,
    /// Connections per router (each logs in once). Commands are multiplexed by
    /// tag, so one is usually enough.
    pub max_connections: usize,
    /// Open another connection (up to `max_connections`) when every open one has
    /// at least this many commands in flight.
    pub max_in_flight: usize,
    /// Connect attempts per call before giving up (at least 1).
    pub connect_attempts: usize,
    /// First delay between connect attempts (doubles up to `backoff_max`; each
    /// delay is drawn at random between half and all of its step).
    pub backoff_min: Duration,
    /// Longest delay between connect attempts.
    pub backoff_max: Duration,
    /// After a call's connect attempts all failed, further calls fail at once
    /// for about this long (doubling per failed call up to `cooldown_max`, each
    /// drawn between half and all of its step), so a dead router does not cost
    /// a connect timeout per user. Zero disables it.
    pub cooldown_min: Duration,
    /// Longest cool-down.
    pub cooldown_max: Duration,
    /// Longest word accepted from the router.
    pub max_word_len: usize,
    /// Byte budget of one sentence from the router (API), checked from each
    /// word's length prefix. Over it, the command fails with
    /// [`ClientError::TooLarge`] and the connection is dropped.
    pub max_sentence_bytes: usize,
    /// Byte budget of the whole reply to one command: all its sentences (API)
    /// or its body (REST, counted as it is read, whatever `Content-Length` or
    /// chunking says). Over it, the command fails naming the router and the
    /// limit, and the connection is dropped. `listen` streams are not bounded
    /// by it (their rows are handed on one by one).
    pub max_response_bytes: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(5),
            login_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(30),
            keepalive: Some(Duration::from_secs(60)),
            max_connections: 2,
            max_in_flight: 64,
            connect_attempts: 3,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            cooldown_min: Duration::from_millis(500),
            cooldown_max: Duration::from_secs(30),
            max_word_len: DEFAULT_MAX_WORD_LEN,
            max_sentence_bytes: DEFAULT_MAX_SENTENCE_BYTES,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

impl ClientConfig {
    /// Checks the limits (non-zero timeouts, at least one connection and attempt).
    pub fn validate(&self) -> Result<(), ClientError> {
        let bad = |field: &'static str, value: String, reason: &str| ClientError::Config {
            field,
            value,
            reason: reason.to_owned(),
        };
        for (field, d) in [
            ("connect_timeout", self.connect_timeout),
            ("login_timeout", self.login_timeout),
            ("command_timeout", self.command_timeout),
        ] {
            if d.is_zero() {
                return Err(bad(field, format!("{d:?}"), "must be above zero"));
            }
        }
        if self.keepalive.is_some_and(|d| d.is_zero()) {
            return Err(bad("keepalive", "0s".into(), "must be above zero (or off)"));
        }
        if self.max_connections == 0 {
            return Err(bad("max_connections", "0".into(), "at least one connection"));
        }
        if self.max_in_flight == 0 {
            return Err(bad("max_in_flight", "0".into(), "at least one command"));
        }
        if self.connect_attempts == 0 {
            return Err(bad("connect_attempts", "0".into(), "at least one attempt"));
        }
        for (field, value) in [
            ("max_word_len", self.max_word_len),
            ("max_sentence_bytes", self.max_sentence_bytes),
            ("max_response_bytes", self.max_response_bytes),
        ] {
            if value < 1024 {
                return Err(bad(field, value.to_string(), "at least 1024 bytes"));
            }
        }
        if self.max_response_bytes < self.max_sentence_bytes {
            return Err(bad(
                "max_response_bytes",
                self.max_response_bytes.to_string(),
                "at least max_sentence_bytes: a reply holds at least one sentence",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("10.0.0.1:8729", 1).unwrap(),
            ("10.0.0.1".into(), 8729)
        );
        assert_eq!(
            parse_address("router.lan", 8728).unwrap(),
            ("router.lan".into(), 8728)
        );
        assert_eq!(parse_address("[::1]:9000", 1).unwrap(), ("::1".into(), 9000));
        assert_eq!(parse_address("[::1]", 8728).unwrap(), ("::1".into(), 8728));
        assert_eq!(parse_address("fe80::1", 8728).unwrap(), ("fe80::1".into(), 8728));
        for bad in [
            "",
            "host:",
            ":80",
            "host:0",
            "host:99999",
            "a b:1",
            "[::1",
            "a:b:c",
            "[::1]x",
        ] {
            let e = parse_address(bad, 8728).unwrap_err();
            assert!(e.to_string().contains("address"), "{bad}: {e}");
        }
    }

    #[test]
    fn fingerprints() {
        let fp = "AB:".repeat(31) + "AB";
        assert_eq!(parse_fingerprint(&fp).unwrap(), [0xAB; 32]);
        assert_eq!(parse_fingerprint(&"ab".repeat(32)).unwrap(), [0xAB; 32]);
        assert!(parse_fingerprint("abcd").is_err());
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
        let hexed = certificate_fingerprint(b"hello");
        assert_eq!(hexed.len(), 64);
        assert!(parse_fingerprint(&hexed).is_ok());
    }

    #[test]
    fn credentials_debug_hides_password() {
        let c = Credentials::new("api", "hunter2-secret");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("api"));
        let e = Endpoint::plain("router r1", "127.0.0.1:8728", c).unwrap();
        assert!(!format!("{e:?}").contains("hunter2-secret"));
    }

    #[test]
    fn config_validation() {
        assert!(ClientConfig::default().validate().is_ok());
        let c = ClientConfig {
            max_connections: 0,
            ..ClientConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("max_connections"));
        let c = ClientConfig {
            command_timeout: Duration::ZERO,
            ..ClientConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("command_timeout"));
    }
}
