//! `isp-bench`: the benchmark runner of issue 7.
//!
//! ```sh
//! cargo run --release -p isp-bench -- --write BENCHMARKS.md      # every row, three runs each (about an hour)
//! cargo run --release -p isp-bench -- --quick                    # one smaller run of each (CI's smoke test)
//! cargo run --release -p isp-bench -- 2 4                        # some rows (numbers or names)
//! cargo run --release -p isp-bench -- --curves --write BENCHMARKS.md   # also the scaling curves and their plot
//! ```
//!
//! Rows: 1 `lag` (enforcement lag), 2 `sweep` (sweep throughput against the
//! seeds' per-user loop), 3 `query` (due-work query cost), 4 `billing`,
//! 5 `reconcile`, 6 `memory` (peak RSS and router load), 7 `grant` (grant latency). Each prints its
//! figures beside its target and the seeds' approach measured in the same run;
//! `--write` puts the table, the machine and the notes into a Markdown file,
//! keeping its `## Due-work queries (isp-adapters-sql)` section (and its
//! `## Scaling` section unless `--curves` draws it anew).
//!
//! Each row runs `--runs` times (3 by default, 1 with `--quick`); its figures
//! are then min / median / max over the runs, a target is judged on the
//! median and a count or correctness line must hold in every run (row 4
//! repeats itself inside the row and runs once). Rows 1, 2 and 7 also run at
//! each round trip of `--also-rtt-ms` (30 ms by default, `none` for none)
//! against their baselines at that round trip. `--curves` adds the scaling
//! runs (row 2 over the number of expired subscribers and of routers, row 1
//! over the number of subscribers; one run each) as a `## Scaling` section and
//! a PNG plot. Exit status: 2 for bad arguments, 1 when a row could not run
//! or, with `--check`, when any verdict is MISSED (`--check=counts`: any
//! count or correctness verdict, not timings), else 0.
//!
//! The daemon side of rows 1, 2 and 6 runs in a child process; `ISP_BENCH_LOG`
//! sets its log filter (`warn` by default) and `ISP_BENCH_DAEMON_WRAPPER` a
//! program to run it under, e.g. a script that runs `heaptrack -o FILE "$@"`
//! (that is how the sync job's memory peak was found). `ISP_BENCH_RUNNER_LOG`
//! sets the runner's own log filter (off by default; billing runs in the
//! runner), e.g. `sqlx::query=debug` for every statement and its time.

mod curves;
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
use crate::report::{RowResult, RunInfo};
use crate::rows::{progress, Scale};

/// Errors of the runner (messages for the operator).
pub(crate) type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The command at the top of BENCHMARKS.md.
const REPRODUCE: &str = "cargo run --release -p isp-bench -- --write BENCHMARKS.md";

/// Runs of a row without `--runs`: full mode, and `--quick`.
const RUNS_FULL: usize = 3;
const RUNS_QUICK: usize = 1;

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
    /// `## Due-work queries (isp-adapters-sql)` section is kept, and its
    /// `## Scaling` section unless `--curves` is given).
    #[arg(long, value_name = "FILE")]
    write: Option<PathBuf>,
    /// Smaller loads and one run of each row (a few minutes in all).
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
    /// Runs of each row; figures are min / median / max over them, targets
    /// judged on the median [default: 3, 1 with --quick].
    #[arg(long, value_name = "N")]
    runs: Option<usize>,
    /// Exit with status 1 when a verdict is MISSED (after printing and
    /// writing): `--check` or `--check=all` for any, `--check=counts` for the
    /// count and correctness lines only (not timings; what CI checks).
    #[arg(long, value_name = "WHICH", num_args = 0..=1, default_missing_value = "all")]
    check: Option<String>,
    /// Further round trips (comma-separated milliseconds, or `none`) at which
    /// rows 1, 2 and 7 also run, each against its baseline at that round trip.
    #[arg(long, default_value = "30", value_name = "MS,...")]
    also_rtt_ms: String,
    /// Also run the scaling curves (one run each) and draw their plot.
    #[arg(long)]
    curves: bool,
    /// Where `--curves` writes its PNG [default: docs/bench-scaling.png next
    /// to the `--write` file, else in the current directory].
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
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

/// `--also-rtt-ms`: `30`, `30,80`, `none` or empty.
fn parse_rtts(raw: &str) -> Result<Vec<u64>, String> {
    let raw = raw.trim();
    if raw.is_empty() || raw == "none" {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in raw.split(',') {
        let ms = part.trim().parse::<u64>().ok().filter(|ms| *ms <= 10_000).ok_or_else(|| {
            format!("also-rtt-ms: {part:?} is not a round trip in milliseconds (0-10000); give e.g. 30 or 30,80 or none")
        })?;
        if !out.contains(&ms) {
            out.push(ms);
        }
    }
    Ok(out)
}

/// `--runs`, or its default for the mode.
fn runs_of(runs: Option<usize>, quick: bool) -> Result<usize, String> {
    match runs {
        None if quick => Ok(RUNS_QUICK),
        None => Ok(RUNS_FULL),
        Some(n @ 1..=50) => Ok(n),
        Some(n) => Err(format!("runs: {n} is not between 1 and 50")),
    }
}

/// How often row `n` runs: row 4 repeats itself inside the row.
fn runs_of_row(n: u8, runs: usize) -> usize {
    if n == 4 {
        1
    } else {
        runs
    }
}

async fn run_row(n: u8, scale: &Scale, also_rtt: &[Duration]) -> BoxResult<RowResult> {
    match n {
        1 => rows::lag::row(scale, also_rtt).await,
        2 => rows::sweep::row(scale, also_rtt).await,
        3 => rows::query::row(scale).await,
        4 => rows::billing::row(scale).await,
        5 => rows::reconcile::row(scale).await,
        6 => rows::memory::row(scale).await,
        7 => rows::grant::row(scale, also_rtt).await,
        _ => Err(format!("no row {n}").into()),
    }
}

/// The plot's path, and how the Markdown file links it.
fn plot_path(plot: Option<&PathBuf>, write: Option<&PathBuf>) -> (PathBuf, String) {
    let dir = write
        .and_then(|w| w.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    let path = plot
        .cloned()
        .unwrap_or_else(|| dir.join("docs").join("bench-scaling.png"));
    let link = path
        .strip_prefix(&dir)
        .ok()
        .filter(|_| !dir.as_os_str().is_empty() || path.is_relative())
        .unwrap_or(&path)
        .display()
        .to_string();
    (path, link)
}

/// `--check`'s value.
fn check_of(raw: Option<&str>) -> Result<report::Check, String> {
    match raw {
        None => Ok(report::Check::Off),
        Some("all") => Ok(report::Check::All),
        Some("counts") => Ok(report::Check::Counts),
        Some(other) => Err(format!("check: unknown value {other:?}; expected all or counts")),
    }
}

/// mimalloc, as `ispd` uses: glibc's allocator was a fifth of the daemon's CPU in a sweep.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let parsed = parse_rows(&args.rows).and_then(|rows| {
        Ok((
            rows,
            parse_rtts(&args.also_rtt_ms)?,
            runs_of(args.runs, args.quick)?,
            check_of(args.check.as_deref())?,
        ))
    });
    let (selected, also_rtt_ms, runs, check) = match parsed {
        Ok(p) => p,
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
    let also_rtt: Vec<Duration> = also_rtt_ms
        .iter()
        .filter(|ms| **ms != args.latency_ms)
        .map(|ms| Duration::from_millis(*ms))
        .collect();
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
        let of = runs_of_row(n, runs);
        let mut done = Vec::new();
        for k in 1..=of {
            let load = machine::load_now();
            progress(format!("row {n}: run {k} of {of}: start (load average {load})"));
            match runtime.block_on(run_row(n, &scale, &also_rtt)) {
                Ok(mut r) => {
                    r.load_before = load;
                    eprintln!("{}", report::terminal(std::slice::from_ref(&r), &[]));
                    done.push(r);
                }
                Err(e) => {
                    eprintln!("isp-bench: row {n} (run {k} of {of}) failed: {e}");
                    failed.push((n, format!("run {k} of {of}: {e}")));
                    break;
                }
            }
        }
        if let Some(r) = report::aggregate(done) {
            results.push(r);
        }
    }
    let scaling = if args.curves {
        let plot = plot_path(args.plot.as_ref(), args.write.as_ref());
        match runtime.block_on(curves::run(&scale)) {
            Ok(c) => {
                let drawn = curves::plot(&c, &plot.0);
                match &drawn {
                    Ok(how) => eprintln!("isp-bench: plot written to {} ({how})", plot.0.display()),
                    Err(e) => eprintln!("isp-bench: cannot draw {}: {e}", plot.0.display()),
                }
                println!("{}", c.terminal());
                Some(c.markdown(drawn.as_ref().ok().map(|how| (plot.1.as_str(), how.as_str()))))
            }
            Err(e) => {
                eprintln!("isp-bench: the scaling curves failed: {e}");
                failed.push((0, format!("scaling curves: {e}")));
                None
            }
        }
    } else {
        None
    };
    let total = started.elapsed().as_secs_f64();
    println!("{}", report::terminal(&results, &failed));
    println!("{machine}; {total:.0} s in all");
    if let Some(path) = &args.write {
        let existing = std::fs::read_to_string(path).unwrap_or_default();
        let kept = report::kept_sections(&existing, scaling.is_some());
        let info = RunInfo {
            command: REPRODUCE.to_owned(),
            quick: args.quick,
            runs,
            rtt_ms: args.latency_ms,
            also_rtt_ms: also_rtt.iter().map(|d| d.as_millis() as u64).collect(),
            total_seconds: total,
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        };
        let mut doc = report::markdown(&machine, &info, &results, &failed);
        if let Some(section) = &scaling {
            doc.push_str(section);
        }
        doc.push_str(&kept);
        if let Err(e) = std::fs::write(path, doc) {
            eprintln!("isp-bench: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("isp-bench: wrote {}", path.display());
    }
    let code = report::exit_code(&results, &failed, check);
    if code != 0 && failed.is_empty() {
        eprintln!("isp-bench: --check: a verdict is MISSED (see the table)");
    }
    ExitCode::from(code)
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

    #[test]
    fn round_trips_and_runs() {
        assert_eq!(parse_rtts("30"), Ok(vec![30]));
        assert_eq!(parse_rtts(" 30, 80,30 "), Ok(vec![30, 80]));
        assert_eq!(parse_rtts("none"), Ok(vec![]));
        assert_eq!(parse_rtts(""), Ok(vec![]));
        let e = parse_rtts("30,fast").unwrap_err();
        assert!(e.contains("also-rtt-ms") && e.contains("\"fast\""), "{e}");
        assert_eq!(runs_of(None, false), Ok(3));
        assert_eq!(runs_of(None, true), Ok(1));
        assert_eq!(runs_of(Some(5), true), Ok(5));
        assert!(runs_of(Some(0), false).is_err_and(|e| e.contains("runs: 0")));
        assert_eq!((runs_of_row(4, 3), runs_of_row(2, 3)), (1, 3));
    }

    #[test]
    fn the_plot_goes_next_to_the_written_file() {
        let w = PathBuf::from("/tmp/x/b.md");
        let (path, link) = plot_path(None, Some(&w));
        assert_eq!(path, PathBuf::from("/tmp/x/docs/bench-scaling.png"));
        assert_eq!(link, "docs/bench-scaling.png");
        let (path, link) = plot_path(None, Some(&PathBuf::from("BENCHMARKS.md")));
        assert_eq!(
            (path.display().to_string(), link.as_str()),
            ("docs/bench-scaling.png".into(), "docs/bench-scaling.png")
        );
        let (_, link) = plot_path(Some(&PathBuf::from("/elsewhere/p.png")), Some(&w));
        assert_eq!(link, "/elsewhere/p.png");
    }
}
