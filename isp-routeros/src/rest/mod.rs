//! A RouterOS v7 REST client (`/rest` over `www-ssl`, or plain `www` from 7.9)
//! on reqwest with rustls.
//!
//! * [`RestEndpoint`]: where the router is (`https://host:port`, `http://host:port`
//!   or `host[:port]`, which means HTTPS on 443), the REST user and how to
//!   trust its certificate ([`TlsOptions`]: roots, or a pinned SHA-256
//!   fingerprint, verified by the same code as api-ssl).
//! * [`RestClient`]: one `reqwest::Client` per router with keep-alive
//!   connections. At most [`ClientConfig::max_connections`] requests run at
//!   once, so at most that many connections are open: some RouterOS 7
//!   versions leave every REST login in `/user/active`, so connections are
//!   reused, never opened per call. Connect failures are retried with back-off
//!   and then fail fast for a cool-down, as the API client does; requests
//!   themselves are never retried. [`RestClient::connections`] counts the
//!   connections opened (each is one REST login on the router).
//! * [`RestError`], [`RestError::from_response`] and [`map_rest_error`]: the one
//!   reading of `{"error":..,"message":..,"detail":..}` and the one mapping onto
//!   [`isp_core::Error`].
//!
//! | call | HTTP |
//! |---|---|
//! | [`RestClient::print`] | `GET /rest/<menu>?<k>=<v>&.proplist=a,b` for `k=v` queries; `POST /rest/<menu>/print` with `.query` otherwise |
//! | [`RestClient::get`] | `GET /rest/<menu>/<id>` |
//! | [`RestClient::add`] | `PUT /rest/<menu>` with a JSON object; the created object's `.id` comes back |
//! | [`RestClient::set`] | `PATCH /rest/<menu>/<id>` |
//! | [`RestClient::remove`] | `DELETE /rest/<menu>/<id>`; several ids: `POST /rest/<menu>/remove` with `.id` comma-separated |
//! | [`RestClient::command`], [`RestClient::call`] | `POST /rest/<menu>/<command>` |
//!
//! Every value sent is a JSON string; values read back are strings (numbers
//! and booleans are accepted and turned into text). Requests carry HTTP Basic
//! auth; the password is never logged or put into an error.
//!
//! ```no_run
//! # async fn demo() -> Result<(), isp_routeros::rest::RestError> {
//! use isp_routeros::client::{ClientConfig, Credentials, TlsOptions};
//! use isp_routeros::rest::{RestClient, RestEndpoint};
//!
//! let tls = TlsOptions::pinned("3f:a1:...").map_err(isp_routeros::rest::RestError::from)?;
//! let endpoint = RestEndpoint::parse("router r1", "10.0.0.1", Credentials::new("api", "secret"), tls)?;
//! let client = RestClient::new(endpoint, ClientConfig::default())?;
//! let id = client.add("/ip/firewall/address-list", &[("list", "isp-allowed"), ("address", "10.0.0.2")]).await?;
//! let rows = client.print("/ip/firewall/address-list", &[".id", "address"], &["list=isp-allowed"]).await?;
//! client.remove("/ip/firewall/address-list", &[id.as_str()]).await?;
//! # Ok(()) }
//! ```
//!
//! [`ClientConfig::max_connections`]: crate::client::ClientConfig::max_connections
//! [`TlsOptions`]: crate::client::TlsOptions

mod client;
mod endpoint;
mod error;

pub use client::RestClient;
pub use endpoint::{RestEndpoint, REST_HTTPS_PORT, REST_HTTP_PORT};
pub use error::{map_rest_error, RestError};

impl From<crate::client::ClientError> for RestError {
    fn from(err: crate::client::ClientError) -> Self {
        RestError::from_client(err)
    }
}
