//! Where a REST router is and how to reach it.

use crate::client::{parse_address, Credentials, TlsOptions};

use super::error::RestError;

/// Default port of `www-ssl` (HTTPS).
pub const REST_HTTPS_PORT: u16 = 443;
/// Default port of `www` (plain HTTP; REST over it from RouterOS 7.9).
pub const REST_HTTP_PORT: u16 = 80;

/// One router's REST service: where, how, as whom. `Debug` never shows the password.
#[derive(Debug, Clone)]
pub struct RestEndpoint {
    /// Name for logs and errors (`router main-office`).
    pub label: String,
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `Some`: HTTPS verified with these options; `None`: plain HTTP.
    pub tls: Option<TlsOptions>,
    /// HTTP Basic auth user and password.
    pub credentials: Credentials,
}

impl RestEndpoint {
    /// An HTTPS (`www-ssl`) endpoint. `address` is `host:port` or `host` (port 443).
    pub fn https(
        label: impl Into<String>,
        address: &str,
        credentials: Credentials,
        tls: TlsOptions,
    ) -> Result<Self, RestError> {
        let (host, port) = parse_address(address, REST_HTTPS_PORT)?;
        Ok(RestEndpoint {
            label: label.into(),
            host,
            port,
            tls: Some(tls),
            credentials,
        })
    }

    /// A plain-HTTP (`www`) endpoint. `address` is `host:port` or `host` (port 80).
    /// The password crosses the network in clear text, as with the plain API.
    pub fn http(
        label: impl Into<String>,
        address: &str,
        credentials: Credentials,
    ) -> Result<Self, RestError> {
        let (host, port) = parse_address(address, REST_HTTP_PORT)?;
        Ok(RestEndpoint {
            label: label.into(),
            host,
            port,
            tls: None,
            credentials,
        })
    }

    /// From a router address: `https://host[:port]`, `http://host[:port]`, or
    /// `host[:port]` (HTTPS). No path: the client adds `/rest`.
    pub fn parse(
        label: impl Into<String>,
        address: &str,
        credentials: Credentials,
        tls: TlsOptions,
    ) -> Result<Self, RestError> {
        let t = address.trim();
        let lower = t.to_ascii_lowercase();
        if lower.starts_with("http://") {
            RestEndpoint::http(label, &t["http://".len()..], credentials)
        } else if lower.starts_with("https://") {
            RestEndpoint::https(label, &t["https://".len()..], credentials, tls)
        } else if t.contains("://") {
            Err(RestError::Config {
                field: "address",
                value: address.to_owned(),
                reason: "a REST address is host[:port], https://host[:port] or http://host[:port]".into(),
            })
        } else {
            RestEndpoint::https(label, t, credentials, tls)
        }
    }

    /// `host:port` (IPv6 hosts in brackets).
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// `https://host:port/rest`.
    pub fn base_url(&self) -> String {
        format!("{}://{}/rest", self.scheme(), self.addr())
    }

    /// True when both endpoints reach the same router the same way as the same user.
    pub(crate) fn same_as(&self, other: &RestEndpoint) -> bool {
        self.host == other.host
            && self.port == other.port
            && self.tls == other.tls
            && self.credentials.same_as(&other.credentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new("api", "pw-Secret-1")
    }

    #[test]
    fn addresses_and_schemes() {
        let e = RestEndpoint::parse("r", "10.0.0.1", creds(), TlsOptions::default()).unwrap();
        assert_eq!(e.base_url(), "https://10.0.0.1:443/rest");
        let e = RestEndpoint::parse("r", "HTTPS://r1.lan:8443", creds(), TlsOptions::default()).unwrap();
        assert_eq!(e.base_url(), "https://r1.lan:8443/rest");
        let e = RestEndpoint::parse("r", "http://10.0.0.1", creds(), TlsOptions::default()).unwrap();
        assert_eq!(e.base_url(), "http://10.0.0.1:80/rest");
        assert!(e.tls.is_none());
        let e = RestEndpoint::parse("r", "[::1]:8080", creds(), TlsOptions::default()).unwrap();
        assert_eq!(e.base_url(), "https://[::1]:8080/rest");
        for bad in ["", "ftp://x", "https://x/rest", "http://", "x:0", "a b"] {
            let err = RestEndpoint::parse("r", bad, creds(), TlsOptions::default()).unwrap_err();
            assert!(err.to_string().contains("address"), "{bad}: {err}");
        }
        assert!(!format!("{e:?}").contains("pw-Secret-1"));
    }

    #[test]
    fn sameness() {
        let a = RestEndpoint::parse("r", "10.0.0.1", creds(), TlsOptions::default()).unwrap();
        let b = RestEndpoint::parse(
            "other label",
            "https://10.0.0.1:443",
            creds(),
            TlsOptions::default(),
        )
        .unwrap();
        assert!(a.same_as(&b));
        let c = RestEndpoint::parse("r", "http://10.0.0.1:443", creds(), TlsOptions::default()).unwrap();
        assert!(!a.same_as(&c));
        let d = RestEndpoint::parse(
            "r",
            "10.0.0.1",
            Credentials::new("api", "x"),
            TlsOptions::default(),
        )
        .unwrap();
        assert!(!a.same_as(&d));
    }
}
