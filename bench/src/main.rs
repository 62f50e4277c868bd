//! `isp-bench`: the benchmark runner of issue 7.
//!
//! ```sh
//! cargo run --release -p isp-bench -- --write BENCHMARKS.md      # every row (about ten minutes)
//! cargo run --release -p isp-bench -- --quick                    # smaller, under two minutes
//! cargo run --release -p isp-bench -- 2 4                        # some rows (numbers or names)
//! ```
//!
//! Rows: 1 `lag` (enforcement lag), 2 `sweep` (sweep throughput against the
//! seeds' per-user loop), 3 `query` (due-work query cost), 4 `billing`,
//! 5 `reconcile`, 6 `memory` (peak RSS and router load), 7 `grant` (grant latency). Each prints its
//! figures beside its target and the seeds' approach measured in the same run;
//! `--write` puts the table, the machine and the notes into a Markdown file,
//! keeping its `## Due-work queries (isp-adapters-sql)` section.
//!
//! The daemon side of rows 1, 2 and 6 runs in a child process; `ISP_BENCH_LOG`
//! sets its log filter (`warn` by default) and `ISP_BENCH_DAEMON_WRAPPER` a
//! program to run it under, e.g. a script that runs `heaptrack -o FILE "$@"`
//! (that is how the sync job's memory peak was found). `ISP_BENCH_RUNNER_LOG`
//! sets the runner's own log filter (off by default; billing runs in the
//! runner), e.g. `sqlx::query=debug` for every statement and its time.

mod daemon;
mod machine;
mod naive;
mod report;
mod rows;
mod scenario;
mod stats;

// The throwaway PostgreSQL cluster and the bulk loader of isp-testsupport, shared
// with the sql crate's tests and due-work benchmark, so that row 3 measures the same way.
use isp_testsupport::{mariadb, pg};

/// isp-testsupport's bulk loader, fed a store's pool.
mod bulk {
    use chrono::{DateTime, NaiveDate, Utc};
    use isp_adapters_sql::{Backend, SqlStore};
    use isp_testsupport::bulk::{self as shared, Dialect, Pool};

    pub(crate) use shared::due_count;

    /// Loads `n` rows into each due-work table of `store`, then `ANALYZE`.
    pub(crate) async fn populate(store: &SqlStore, n: i64, now: DateTime<Utc>, today: NaiveDate) {
        let pool = match store.backend() {
            Backend::Sqlite => Pool::Sqlite(store.sqlite_pool().expect("sqlite pool")),
            Backend::Postgres => Pool::Postgres(store.postgres_pool().expect("postgres pool")),
            Backend::Mysql => Pool::Mysql(store.mysql_pool().expect("mysql pool")),
        };
        shared::populate(pool, n, now, today).await;
    }

    /// Why `plan` is not an index range scan on its table, if it is not.
    pub(crate) fn plan_problem(backend: Backend, name: &str, plan: &str) -> Option<String> {
        let dialect = match backend {
            Backend::Sqlite => Dialect::Sqlite,
            Backend::Postgres => Dialect::Postgres,
            Backend::Mysql => Dialect::Mysql,
        };
        shared::plan_problem(dialect, name, plan)
    }
}

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::machine::Machine;
use crate::report::RowResult;
use crate::rows::{progress, Scale};

/// Errors of the runner (messages for the operator).
pub(crate) type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The command at the top of BENCHMARKS.md.
const REPRODUCE: &str = "cargo run --release -p isp-bench -- --write BENCHMARKS.md";

const ROW_NAMES: [(u8, &str); 7] = [
    (1, "lag"),
    (2, "sweep"),
    (3, "query"),
    (4, "billing"),
    (5, "reconcile"),
    (6, "memory"),
    (7, "grant"),
];

/// Benchmarks of the isp engine against the seeds' approach.
#[derive(Debug, Parser)]
#[command(name = "isp-bench", version, about)]
struct Args {
    /// Write the results table to this Markdown file (its
    /// `## Due-work queries (isp-adapters-sql)` section is kept).
    #[arg(long, value_name = "FILE")]
    write: Option<PathBuf>,
    /// Smaller loads (under two minutes in all).
    #[arg(long)]
    quick: bool,
    /// Round-trip latency injected into every simulated router, milliseconds.
    #[arg(long, default_value_t = 5, value_name = "MS")]
    latency_ms: u64,
    /// The simulated routers' work per command, microseconds (see `RouterCost`).
    #[arg(long, default_value_t = scenario::RouterCost::DEFAULT_PER_COMMAND_US, value_name = "US")]
    cost_per_command_us: u64,
    /// The simulated routers' work per item a command prints or names, microseconds.
    #[arg(long, default_value_t = scenario::RouterCost::DEFAULT_PER_ITEM_US, value_name = "US")]
    cost_per_item_us: u64,
    /// Rows to run, by number (1-7) or name (lag, sweep, query, billing,
    /// reconcile, memory, grant); all when none is given.
    rows: Vec<String>,
}

fn parse_rows(raw: &[String]) -> Result<Vec<u8>, String> {
    if raw.is_empty() {
        return Ok(ROW_NAMES.iter().map(|(n, _)| *n).collect());
    }
    let mut out = Vec::new();
    for r in raw {
        let n = ROW_NAMES
            .iter()
            .find(|(n, name)| r == name || r.parse::<u8>().ok() == Some(*n))
            .map(|(n, _)| *n)
            .ok_or_else(|| {
                format!(
                    "row: unknown row {r:?}; expected 1-7 or lag, sweep, query, billing, reconcile, memory, grant"
                )
            })?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

async fn run_row(n: u8, scale: &Scale) -> BoxResult<RowResult> {
    match n {
        1 => rows::lag::row(scale).await,
        2 => rows::sweep::row(scale).await,
        3 => rows::query::row(scale).await,
        4 => rows::billing::row(scale).await,
        5 => rows::reconcile::row(scale).await,
        6 => rows::memory::row(scale).await,
        7 => rows::grant::row(scale).await,
        _ => Err(format!("no row {n}").into()),
    }
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("__daemon") {
        return daemon::child_main();
    }
    let args = Args::parse();
    // The runner's own log (billing runs in this process), for profiling:
    // e.g. `ISP_BENCH_RUNNER_LOG=sqlx::query=debug` prints every statement's time.
    if let Ok(filter) = std::env::var("ISP_BENCH_RUNNER_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let selected = match parse_rows(&args.rows) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("isp-bench: {e}");
            return ExitCode::from(2);
        }
    };
    if args.latency_ms > 10_000 {
        eprintln!(
            "isp-bench: latency-ms: {} is more than 10000 ms; give the round trip of one router command",
            args.latency_ms
        );
        return ExitCode::from(2);
    }
    for (flag, us) in [
        ("cost-per-command-us", args.cost_per_command_us),
        ("cost-per-item-us", args.cost_per_item_us),
    ] {
        if us > 1_000_000 {
            eprintln!(
                "isp-bench: {flag}: {us} is more than 1000000 µs; give the router's work in microseconds"
            );
            return ExitCode::from(2);
        }
    }
    if cfg!(debug_assertions) {
        eprintln!("isp-bench: this is a debug build; figures are only meaningful with --release");
    }
    let latency = Duration::from_millis(args.latency_ms);
    let scale = if args.quick {
        Scale::quick(latency)
    } else {
        Scale::full(latency)
    };
    let scale = Scale {
        router_cost: scenario::RouterCost {
            per_command: Duration::from_micros(args.cost_per_command_us),
            per_item: Duration::from_micros(args.cost_per_item_us),
        },
        ..scale
    };
    let machine = Machine::describe();
    eprintln!("isp-bench: {machine}");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("isp-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for n in selected {
        let load = machine::load_now();
        progress(format!("row {n}: start (load average {load})"));
        match runtime.block_on(run_row(n, &scale)) {
            Ok(mut r) => {
                r.load_before = load;
                eprintln!("{}", report::terminal(std::slice::from_ref(&r), &[]));
                results.push(r);
            }
            Err(e) => {
                eprintln!("isp-bench: row {n} failed: {e}");
                failed.push((n, e.to_string()));
            }
        }
    }
    let total = started.elapsed().as_secs_f64();
    println!("{}", report::terminal(&results, &failed));
    println!("{machine}; {total:.0} s in all");
    if let Some(path) = &args.write {
        let existing = std::fs::read_to_string(path).unwrap_or_default();
        let kept = report::kept_sections(&existing);
        let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
        let mut doc = report::markdown(&machine, REPRODUCE, args.quick, &results, &failed, total, &date);
        if !kept.is_empty() {
            doc.push_str(&kept);
        }
        if let Err(e) = std::fs::write(path, doc) {
            eprintln!("isp-bench: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("isp-bench: wrote {}", path.display());
    }
    // Missed targets are results (in the table), not failures of the runner.
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_by_number_or_name() {
        assert_eq!(parse_rows(&[]).unwrap_or_default(), vec![1, 2, 3, 4, 5, 6, 7]);
        let r = parse_rows(&["sweep".into(), "4".into(), "2".into()]).unwrap_or_default();
        assert_eq!(r, vec![2, 4]);
        let e = parse_rows(&["8".into()]).unwrap_err();
        assert!(e.contains("\"8\""), "{e}");
    }
}
