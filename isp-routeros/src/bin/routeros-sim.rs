//! `routeros-sim`: serve one or more simulated RouterOS routers until interrupted.
//!
//! ```text
//! routeros-sim --listen 127.0.0.1:8728 --user admin --password secret [--routers N]
//!              [--latency-ms MS] [--tls-cert FILE --tls-key FILE] [--rest-listen ADDR]
//! ```
//!
//! Prints one line `listening on ADDR` per router, then, with `--rest-listen`, one line
//! `rest on URL` per router (`https://ADDR` with `--tls-cert`/`--tls-key`, else `http://ADDR`),
//! then runs until SIGINT or SIGTERM. The REST API serves the same router state as the API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use isp_routeros::sim::{tls, SimConfig, SimFleet};

/// Serve simulated RouterOS routers over the API protocol (and the REST API).
#[derive(Parser)]
#[command(name = "routeros-sim", version, about)]
struct Args {
    /// Address of the first router (`127.0.0.1:8728`); further routers use the next ports.
    #[arg(long)]
    listen: SocketAddr,
    /// API user name.
    #[arg(long, env = "ROUTEROS_SIM_USER")]
    user: String,
    /// API password.
    #[arg(long, env = "ROUTEROS_SIM_PASSWORD", hide_env_values = true)]
    password: String,
    /// Number of routers, on consecutive ports.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    routers: u16,
    /// Delay before every reply, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Also serve the REST API (`/rest`) of the first router here (`127.0.0.1:8080`); further
    /// routers use the next ports. HTTPS with --tls-cert/--tls-key, plain HTTP without.
    #[arg(long)]
    rest_listen: Option<SocketAddr>,
    /// Serve api-ssl (and REST over HTTPS) with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Put `.tag` right after the reply word instead of last.
    #[arg(long)]
    tag_first: bool,
    /// Do not send `!empty` (behave like RouterOS before 7.18).
    #[arg(long)]
    no_empty: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_init();
    let args = Args::parse();
    let mut config = SimConfig::new(args.user, args.password);
    config.latency = Duration::from_millis(args.latency_ms);
    config.tag_first = args.tag_first;
    config.empty_replies = !args.no_empty;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        match tls::server_config_from_files(cert, key) {
            Ok(c) => {
                config.rest_tls = Some(c.clone());
                config.tls = Some(c);
            }
            Err(e) => {
                eprintln!("routeros-sim: TLS certificate or key: {e}");
                return ExitCode::from(2);
            }
        }
    }
    config.rest_listen = args.rest_listen;
    let fleet = match SimFleet::start(usize::from(args.routers), config, args.listen).await {
        Ok(f) => f,
        Err(e) => {
            match args.rest_listen {
                Some(rest) => eprintln!("routeros-sim: cannot listen on {} or {rest}: {e}", args.listen),
                None => eprintln!("routeros-sim: cannot listen on {}: {e}", args.listen),
            }
            return ExitCode::from(1);
        }
    };
    for r in fleet.routers() {
        println!("listening on {}", r.addr());
    }
    for url in fleet.routers().iter().filter_map(|r| r.rest_url()) {
        println!("rest on {url}");
    }
    wait_for_signal().await;
    fleet.shutdown().await;
    eprintln!("routeros-sim: stopped");
    ExitCode::SUCCESS
}

fn tracing_init() {
    // Quiet unless RUST_LOG asks; the binary prints its own lines.
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
