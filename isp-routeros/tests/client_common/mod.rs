//! Helpers shared by the client and driver tests (simulated routers, quick settings).
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use isp_core::domain::{Router, RouterCredentials, RouterId, TenantId, Transport};
use isp_routeros::client::{Client, ClientConfig, Credentials, Endpoint};
use isp_routeros::rest::{RestClient, RestEndpoint};
use isp_routeros::sim::{SimConfig, SimHandle, SimRouter};

/// The API password of every simulated router in these tests.
pub const PASSWORD: &str = "Sup3r-S3cret-Pw!";
/// The API user.
pub const USER: &str = "api";

/// Simulator settings with the test credentials, serving the API and REST (plain HTTP, on a
/// free port).
pub fn sim_config() -> SimConfig {
    let mut config = SimConfig::new(USER, PASSWORD);
    config.rest_listen = Some("127.0.0.1:0".parse().expect("address"));
    config
}

/// Starts a simulated router on a free port.
pub async fn start(config: SimConfig) -> SimRouter {
    SimRouter::start(config, "127.0.0.1:0".parse().expect("address"))
        .await
        .expect("simulator starts")
}

/// Client settings for tests: short timeouts, no keepalive, no cool-down.
pub fn quick() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(2),
        login_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(3),
        keepalive: None,
        connect_attempts: 2,
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(50),
        cooldown_min: Duration::ZERO,
        ..ClientConfig::default()
    }
}

/// A plain-API client for a simulated router.
pub fn client(router: &SimRouter, config: ClientConfig) -> Client {
    let endpoint = Endpoint::plain(
        "router sim",
        &router.addr().to_string(),
        Credentials::new(USER, PASSWORD),
    )
    .expect("endpoint");
    Client::new(endpoint, config).expect("client")
}

/// A REST client for a simulated router's first REST listener (plain HTTP or pinned HTTPS).
pub fn rest_client(router: &SimRouter, config: ClientConfig, pin: Option<&str>) -> RestClient {
    let url = router.rest_url().expect("the simulator serves REST");
    let tls = match pin {
        Some(fp) => isp_routeros::client::TlsOptions::pinned(fp).expect("fingerprint"),
        None => isp_routeros::client::TlsOptions::default(),
    };
    let endpoint =
        RestEndpoint::parse("router sim", &url, Credentials::new(USER, PASSWORD), tls).expect("endpoint");
    RestClient::new(endpoint, config).expect("client")
}

/// An engine `Router` pointing at a simulated router: its API address, or for REST its first
/// REST listener's URL.
pub fn router_for(id: i64, sim: &SimRouter, transport: Transport, fingerprint: Option<String>) -> Router {
    let address = match transport {
        Transport::Rest => sim.rest_url().expect("the simulator serves REST"),
        Transport::Api | Transport::ApiSsl | Transport::Radius => sim.addr().to_string(),
    };
    Router {
        id: RouterId(id),
        tenant_id: TenantId(1),
        name: format!("sim-{id}"),
        address,
        transport,
        credentials: RouterCredentials::new(USER, PASSWORD),
        tls_fingerprint: fingerprint,
        enabled: true,
    }
}

/// How many logged commands are exactly `command`.
pub fn count(handle: &SimHandle, command: &str) -> usize {
    handle
        .command_log()
        .iter()
        .filter(|c| c.command == command)
        .count()
}

/// Logged commands whose path ends with `/verb` (`print`, `remove`, ...).
pub fn verbs(handle: &SimHandle, verb: &str) -> Vec<String> {
    let suffix = format!("/{verb}");
    handle
        .command_log()
        .into_iter()
        .filter(|c| c.command.ends_with(&suffix))
        .map(|c| c.command)
        .collect()
}

/// Runs a future with a bound, failing the test when it hangs.
pub async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 20 s"))
}

/// Both transports, for suites that run over each.
pub const TRANSPORTS: [Transport; 2] = [Transport::Api, Transport::Rest];

/// Logins a driver should have caused for `generations` rounds of connecting: exactly one per
/// round over the API (one multiplexed connection); over REST one per kept-alive connection, at
/// least one and at most `max_connections` per round.
pub fn assert_logins(handle: &SimHandle, transport: Transport, generations: u64, max_connections: u64) {
    let logins = handle.logins();
    match transport {
        Transport::Rest => assert!(
            (generations..=generations * max_connections).contains(&logins),
            "REST logins {logins} for {generations} round(s) of at most {max_connections} connections"
        ),
        _ => assert_eq!(logins, generations, "API logins"),
    }
}

/// Generates one `#[tokio::test]` per transport for an `async fn name(transport: Transport)`:
/// `name::api` and `name::rest`.
#[macro_export]
macro_rules! over_both {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn api() {
                    super::$name(isp_core::domain::Transport::Api).await
                }

                #[tokio::test]
                async fn rest() {
                    super::$name(isp_core::domain::Transport::Rest).await
                }
            }
        )+
    };
}
