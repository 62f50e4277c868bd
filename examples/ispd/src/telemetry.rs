//! Logs (tracing) and metrics (Prometheus).
//!
//! Logs are `tracing` events with fields; the subscriber prints them pretty on
//! a terminal, compact, or as one JSON object per line (`--log-format json`).
//! Metrics go through the `metrics` facade to a Prometheus recorder rendered
//! at `GET /metrics`:
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `ispd_job_runs_total` | `job`, `outcome` (`ok`, `failures`, `error`) | job runs |
//! | `ispd_job_items_total` | `job`, `item` (`users_disconnected`, ...) | items processed |
//! | `ispd_job_failures_total` | `job` | failed items |
//! | `ispd_job_duration_seconds` | `job` | run time |
//! | `ispd_router_call_duration_seconds` | `router`, `op` | router latency |
//! | `ispd_router_call_errors_total` | `router`, `op`, `kind` | router errors |
//! | `ispd_enforcement_lag_seconds` | | deadline to the watcher acting on it |
//! | `ispd_expired_still_connected` | | expired subscribers not yet confirmed disconnected |
//! | `ispd_notices_outcome_unknown` | | notices whose send's outcome is unknown |
//! | `ispd_watcher_next_wakeup_seconds` | | seconds until the watcher's next deadline |

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder (once per process) and returns its handle.
/// `None` when another recorder was installed first (metrics are then not served).
pub fn prometheus() -> Option<PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0,
                    ],
                )
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    isp_core::runtime::metrics::describe();
    metrics::describe_gauge!(
        "ispd_expired_still_connected",
        "Expired subscribers not yet confirmed disconnected"
    );
}

/// Installs the global tracing subscriber. `RUST_LOG` wins over `filter`.
/// Logs go to stderr so that `ispd once --json` keeps stdout for the report.
/// Returns false if a subscriber was already installed (tests).
pub fn init_logging(format: LogFormat, filter: Option<&str>) -> bool {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| filter.and_then(|f| EnvFilter::try_new(f).ok()))
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Compact => builder.compact().try_init(),
        LogFormat::Pretty => {
            use std::io::IsTerminal;
            builder.with_ansi(std::io::stderr().is_terminal()).try_init()
        }
    };
    result.is_ok()
}
