//! The results table, on the terminal and in BENCHMARKS.md.

use std::fmt::Write as _;

use crate::machine::Machine;
use crate::stats::{ms3, percentile, secs};

/// Whether a figure meets its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Met,
    Missed,
    /// A figure without a target (context).
    Info,
}

impl Verdict {
    pub(crate) fn of(met: bool) -> Verdict {
        if met {
            Verdict::Met
        } else {
            Verdict::Missed
        }
    }

    fn text(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "**MISSED**",
            Verdict::Info => "",
        }
    }
}

/// How a figure is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Seconds, as `12 ms`, `1.23 s` or `2 min 5 s`.
    Secs,
    /// Milliseconds, written as [`Unit::Secs`] writes them.
    Ms,
    /// Milliseconds with three decimals (query batches).
    MsFine,
    /// A ratio, as `47x`.
    Times,
    /// Megabytes.
    Mb,
    /// A plain number.
    Plain,
}

impl Unit {
    pub(crate) fn text(self, v: f64) -> String {
        match self {
            Unit::Secs => secs(v),
            Unit::Ms => secs(v / 1000.0),
            Unit::MsFine => ms3(v),
            Unit::Times => format!("{}x", crate::rows::num(v)),
            Unit::Mb => format!("{v:.0} MB"),
            Unit::Plain => crate::rows::num(v),
        }
    }
}

/// One number of one run (a p99, a time, a ratio), which the report
/// aggregates over runs into min / median / max.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    /// What it is within its line (`p99`), or empty.
    pub(crate) label: String,
    pub(crate) value: f64,
    pub(crate) unit: Unit,
}

/// What a judged figure must be to meet its target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Goal {
    Below(f64),
    AtLeast(f64),
}

impl Goal {
    pub(crate) fn met(self, v: f64) -> bool {
        match self {
            Goal::Below(t) => v < t,
            Goal::AtLeast(t) => v >= t,
        }
    }
}

/// One line of the table.
///
/// The texts are one run's; the figures (if any) are what several runs of the
/// row are aggregated by: see [`aggregate`].
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) metric: String,
    pub(crate) target: String,
    pub(crate) measured: String,
    pub(crate) baseline: String,
    pub(crate) ratio: String,
    pub(crate) verdict: Verdict,
    /// The measured numbers.
    pub(crate) figures: Vec<Figure>,
    /// The figure the verdict is taken on (an index into `figures`), and its goal.
    pub(crate) judged: Option<(usize, Goal)>,
    /// What the baseline is, without its numbers (for the aggregated text).
    pub(crate) baseline_what: String,
    pub(crate) baseline_figures: Vec<Figure>,
    pub(crate) ratio_figure: Option<Figure>,
}

impl Line {
    pub(crate) fn new(
        metric: impl Into<String>,
        target: impl Into<String>,
        measured: impl Into<String>,
    ) -> Line {
        Line {
            metric: metric.into(),
            target: target.into(),
            measured: measured.into(),
            baseline: String::new(),
            ratio: String::new(),
            verdict: Verdict::Info,
            figures: Vec::new(),
            judged: None,
            baseline_what: String::new(),
            baseline_figures: Vec::new(),
            ratio_figure: None,
        }
    }

    /// Adds a measured number (`label` such as `p99`, or empty).
    pub(crate) fn figure(mut self, label: impl Into<String>, value: f64, unit: Unit) -> Line {
        self.figures.push(Figure {
            label: label.into(),
            value,
            unit,
        });
        self
    }

    /// Judges the last added figure by `goal`: this run's verdict, and over
    /// several runs the verdict on their median.
    pub(crate) fn judge(mut self, goal: Goal) -> Line {
        if let Some(f) = self.figures.last() {
            self.verdict = Verdict::of(goal.met(f.value));
            self.judged = Some((self.figures.len() - 1, goal));
        }
        self
    }

    /// The baseline's numbers, with `what` it is (the aggregated line reads
    /// `what: p99 1 / 2 / 3 s`).
    pub(crate) fn baseline_figures(mut self, what: impl Into<String>, figures: Vec<Figure>) -> Line {
        self.baseline_what = what.into();
        self.baseline_figures = figures;
        self
    }

    /// The ratio of this run as a number (`Times`).
    pub(crate) fn ratio_figure(mut self, label: impl Into<String>, value: f64) -> Line {
        self.ratio_figure = Some(Figure {
            label: label.into(),
            value,
            unit: Unit::Times,
        });
        self
    }

    pub(crate) fn baseline(mut self, baseline: impl Into<String>, ratio: impl Into<String>) -> Line {
        self.baseline = baseline.into();
        self.ratio = ratio.into();
        self
    }

    pub(crate) fn verdict(mut self, met: bool) -> Line {
        self.verdict = Verdict::of(met);
        self
    }
}

/// The result of one row: its lines, and notes on method, misses and why.
#[derive(Debug, Clone)]
pub(crate) struct RowResult {
    pub(crate) number: u8,
    pub(crate) title: String,
    pub(crate) lines: Vec<Line>,
    pub(crate) notes: Vec<String>,
    pub(crate) seconds: f64,
    pub(crate) load_before: String,
    /// How many runs the lines are over (1 for a single run).
    pub(crate) runs: usize,
}

impl RowResult {
    pub(crate) fn new(number: u8, title: impl Into<String>) -> RowResult {
        RowResult {
            number,
            title: title.into(),
            lines: Vec::new(),
            notes: Vec::new(),
            seconds: 0.0,
            load_before: String::new(),
            runs: 1,
        }
    }

    pub(crate) fn line(&mut self, line: Line) {
        self.lines.push(line);
    }

    pub(crate) fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub(crate) fn missed(&self) -> Vec<&Line> {
        self.lines
            .iter()
            .filter(|l| l.verdict == Verdict::Missed)
            .collect()
    }
}

/// A [`Figure`] (for baselines).
pub(crate) fn fig(label: impl Into<String>, value: f64, unit: Unit) -> Figure {
    Figure {
        label: label.into(),
        value,
        unit,
    }
}

/// min / median / max (nearest rank) of `v`.
pub(crate) fn spread(v: &[f64]) -> (f64, f64, f64) {
    let min = v.iter().copied().fold(f64::NAN, f64::min);
    let max = v.iter().copied().fold(f64::NAN, f64::max);
    (min, percentile(v, 0.5), max)
}

/// `p99 12 ms / 15 ms / 30 ms` over the runs' values of one figure.
fn spread_text(first: &Figure, values: &[f64]) -> String {
    let (lo, med, hi) = spread(values);
    let body = format!(
        "{} / {} / {}",
        first.unit.text(lo),
        first.unit.text(med),
        first.unit.text(hi)
    );
    if first.label.is_empty() {
        body
    } else {
        format!("{} {body}", first.label)
    }
}

/// Each figure's min / median / max over `sets` (one figure list per run),
/// or `None` when the runs' figures do not line up.
fn figures_text(sets: &[&[Figure]]) -> Option<String> {
    let first = sets.first()?;
    if first.is_empty()
        || sets
            .iter()
            .any(|s| s.len() != first.len() || s.iter().zip(*first).any(|(a, b)| a.label != b.label))
    {
        return None;
    }
    let parts: Vec<String> = first
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let values: Vec<f64> = sets.iter().map(|s| s[i].value).collect();
            spread_text(f, &values)
        })
        .collect();
    Some(parts.join(", "))
}

/// The runs' texts: one when they agree, else each, in run order.
fn texts(all: &[&str]) -> String {
    match all.first() {
        Some(first) if all.iter().all(|t| t == first) => (*first).to_owned(),
        _ => all.join("; "),
    }
}

/// One line over several runs (the same metric in each).
fn aggregate_line(lines: &[&Line], runs: usize) -> Line {
    let first = lines[0];
    let mut out = first.clone();
    let measured: Vec<&[Figure]> = lines.iter().map(|l| l.figures.as_slice()).collect();
    out.measured = figures_text(&measured)
        .unwrap_or_else(|| texts(&lines.iter().map(|l| l.measured.as_str()).collect::<Vec<_>>()));
    if lines.len() < runs {
        out.measured
            .push_str(&format!(" ({} of {runs} runs)", lines.len()));
    }
    let baselines: Vec<&[Figure]> = lines.iter().map(|l| l.baseline_figures.as_slice()).collect();
    out.baseline = match figures_text(&baselines) {
        Some(t) if first.baseline_what.is_empty() => t,
        Some(t) => format!("{}: {t}", first.baseline_what),
        None => texts(&lines.iter().map(|l| l.baseline.as_str()).collect::<Vec<_>>()),
    };
    let ratios: Option<Vec<&Figure>> = lines.iter().map(|l| l.ratio_figure.as_ref()).collect();
    out.ratio = match ratios {
        Some(r) if !r.is_empty() => {
            let values: Vec<f64> = r.iter().map(|f| f.value).collect();
            spread_text(r[0], &values)
        }
        _ => texts(&lines.iter().map(|l| l.ratio.as_str()).collect::<Vec<_>>()),
    };
    let judged_median = first.judged.and_then(|(i, goal)| {
        let values: Option<Vec<f64>> = lines.iter().map(|l| l.figures.get(i).map(|f| f.value)).collect();
        values.map(|v| (goal, percentile(&v, 0.5)))
    });
    out.verdict = match judged_median {
        Some((goal, median)) => Verdict::of(goal.met(median)),
        None if lines.iter().any(|l| l.verdict == Verdict::Missed) => Verdict::Missed,
        None if lines.iter().all(|l| l.verdict == Verdict::Info) => Verdict::Info,
        None => Verdict::Met,
    };
    out
}

/// Several runs of one row as one result: each line's figures become
/// min / median / max over the runs, a judged figure's verdict is taken on
/// its median, and any other line's verdict is met only if it was met in
/// every run (counts and correctness). Notes are the first run's, plus every
/// other run's notes on misses.
pub(crate) fn aggregate(runs: Vec<RowResult>) -> Option<RowResult> {
    let n = runs.len();
    if n <= 1 {
        return runs.into_iter().next();
    }
    let first = &runs[0];
    let mut out = RowResult::new(first.number, first.title.clone());
    out.runs = n;
    // Lines by metric, in the order they first appear.
    let mut metrics: Vec<&str> = Vec::new();
    for r in &runs {
        for l in &r.lines {
            if !metrics.contains(&l.metric.as_str()) {
                metrics.push(&l.metric);
            }
        }
    }
    for m in metrics {
        let lines: Vec<&Line> = runs
            .iter()
            .filter_map(|r| r.lines.iter().find(|l| l.metric == m))
            .collect();
        if !lines.is_empty() {
            out.lines.push(aggregate_line(&lines, n));
        }
    }
    out.notes.push(format!(
        "{n} runs: figures are min / median / max over them; a target is judged on the median, counts and \
         correctness on every run. The notes below are the first run's (and other runs' notes on misses)."
    ));
    out.notes.extend(first.notes.iter().cloned());
    for (k, r) in runs.iter().enumerate().skip(1) {
        for note in r
            .notes
            .iter()
            .filter(|t| t.contains("Missed") || t.contains("failed"))
        {
            out.notes.push(format!("Run {}: {note}", k + 1));
        }
    }
    out.seconds = runs.iter().map(|r| r.seconds).sum();
    out.load_before = runs
        .iter()
        .map(|r| r.load_before.as_str())
        .collect::<Vec<_>>()
        .join(" / ");
    Some(out)
}

/// Which MISSED verdicts make the runner fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// None: misses are results in the table.
    Off,
    /// Misses of lines without a judged figure: counts and correctness
    /// (subscribers cut off early, charges created twice, logins, commands),
    /// which do not depend on the machine's speed.
    Counts,
    /// Every miss, timings included.
    All,
}

/// The runner's exit code: 1 when a row could not run, or when a verdict
/// `check` covers is MISSED; 0 otherwise.
pub(crate) fn exit_code(rows: &[RowResult], failed: &[(u8, String)], check: Check) -> u8 {
    let missed = rows.iter().flat_map(|r| r.missed()).any(|l| match check {
        Check::Off => false,
        Check::Counts => l.judged.is_none(),
        Check::All => true,
    });
    u8::from(!failed.is_empty() || missed)
}

/// `2. Sweep throughput (3 runs)`.
fn title(r: &RowResult) -> String {
    if r.runs > 1 {
        format!("{}. {} ({} runs)", r.number, r.title, r.runs)
    } else {
        format!("{}. {}", r.number, r.title)
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// How the results were made: the header of the document.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    /// The command that reproduces the file.
    pub(crate) command: String,
    pub(crate) quick: bool,
    /// `--runs`.
    pub(crate) runs: usize,
    /// The base round trip of every router, and the extra ones of rows 1, 2 and 7.
    pub(crate) rtt_ms: u64,
    pub(crate) also_rtt_ms: Vec<u64>,
    pub(crate) total_seconds: f64,
    pub(crate) date: String,
}

/// The whole document (without the sections kept from the previous file).
pub(crate) fn markdown(
    machine: &Machine,
    info: &RunInfo,
    rows: &[RowResult],
    failed: &[(u8, String)],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Reproduce every row (three runs of each, about an hour; `--quick` for one smaller run of each, a few \
         minutes, which CI runs as a smoke test):\n"
    );
    let _ = writeln!(
        out,
        "```sh\n{}\ncargo run --release -p isp-bench -- --curves --write BENCHMARKS.md   # also the scaling curves\n```\n",
        info.command
    );
    let extra = if info.also_rtt_ms.is_empty() {
        String::new()
    } else {
        format!(
            " Rows 1, 2 and 7 also run at {} ms round trip (routers reached over a VPN or the internet), each \
             against its baseline measured in the same run at the same round trip; targets are judged at {} ms, \
             the slower network's lines are context.",
            info.also_rtt_ms
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" and "),
            info.rtt_ms
        )
    };
    let _ = writeln!(
        out,
        "Written by `isp-bench` (`bench/`), {}, {} mode, {} run(s) of each row (`--runs`), {:.0} s in all. \
         Machine: {machine}. The machine is shared with other builds: the 1-minute load average before each \
         run of a row is in its notes; ratios come from the same run.\n",
        info.date,
        if info.quick { "quick" } else { "full" },
        info.runs,
        info.total_seconds
    );
    let _ = writeln!(
        out,
        "How to read it: a figure over several runs is min / median / max of the runs; a target is judged on \
         the median, and a count or correctness line is met only if every run met it. Row 4 repeats itself \
         (three runs inside the row, min / median / max, judged on the median) and runs once per invocation. \
         `--check` makes the runner exit with status 1 when any verdict is MISSED (as it does when a row \
         cannot run).{extra}\n"
    );
    let _ = writeln!(
        out,
        "Routers are RouterOS simulators (`isp-routeros` feature `sim`) in the runner's process, reached over \
         TCP with an injected round-trip latency of {} ms, 25 tenants with 4 routers each. The daemon side of \
         rows 1, 2 and 6 runs in a separate process (so its peak RSS is its own), wired as `ispd` wires itself. \
         The baseline is the seeds' approach on the same simulators in the same run.\n",
        info.rtt_ms
    );
    let _ = writeln!(
        out,
        "| Row | Metric | Target | Measured | Baseline (seeds' approach) | Ratio | Verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for r in rows {
        for (i, l) in r.lines.iter().enumerate() {
            let row = if i == 0 { title(r) } else { String::new() };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                cell(&row),
                cell(&l.metric),
                cell(&l.target),
                cell(&l.measured),
                cell(&l.baseline),
                cell(&l.ratio),
                l.verdict.text()
            );
        }
    }
    for (n, e) in failed {
        let _ = writeln!(out, "| {n}. | could not run | | {} | | | **FAILED** |", cell(e));
    }
    let _ = writeln!(out);
    let missed: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.missed()
                .into_iter()
                .map(move |l| format!("row {} ({})", r.number, l.metric))
        })
        .collect();
    if missed.is_empty() && failed.is_empty() {
        let _ = writeln!(out, "Every target was met in this run.\n");
    } else {
        let _ = writeln!(
            out,
            "Missed: {}. Why is in the notes of each row.\n",
            if missed.is_empty() {
                "none".to_owned()
            } else {
                missed.join("; ")
            }
        );
    }
    let _ = writeln!(out, "## Notes\n");
    for r in rows {
        let _ = writeln!(
            out,
            "### {}\n\n_{:.0} s; load average before: {}_\n",
            title(r),
            r.seconds,
            r.load_before
        );
        for n in &r.notes {
            let _ = writeln!(out, "- {n}");
        }
        let _ = writeln!(out);
    }
    out
}

/// The table for a terminal.
pub(crate) fn terminal(rows: &[RowResult], failed: &[(u8, String)]) -> String {
    let headers = [
        "Row", "Metric", "Target", "Measured", "Baseline", "Ratio", "Verdict",
    ];
    let mut table: Vec<[String; 7]> = Vec::new();
    for r in rows {
        for (i, l) in r.lines.iter().enumerate() {
            table.push([
                if i == 0 {
                    r.number.to_string()
                } else {
                    String::new()
                },
                l.metric.clone(),
                l.target.clone(),
                l.measured.clone(),
                l.baseline.clone(),
                l.ratio.clone(),
                l.verdict.text().trim_matches('*').to_owned(),
            ]);
        }
    }
    for (n, e) in failed {
        table.push([
            n.to_string(),
            "could not run".into(),
            String::new(),
            e.clone(),
            String::new(),
            String::new(),
            "FAILED".into(),
        ]);
    }
    let mut widths = headers.map(str::len);
    for row in &table {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count()).min(60);
        }
    }
    let mut out = String::new();
    let fmt_row = |cells: Vec<&str>, out: &mut String| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", parts.join(" | ").trim_end());
    };
    fmt_row(headers.to_vec(), &mut out);
    let _ = writeln!(out, "{}", widths.map(|w| "-".repeat(w)).join("-+-"));
    for row in &table {
        fmt_row(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// The heading of the section that the sql crate's benchmark owns.
pub(crate) const KEPT_SECTION: &str = "## Due-work queries (isp-adapters-sql)";

/// The heading of the scaling curves (`--curves`), kept by runs without it.
pub(crate) const SCALING_SECTION: &str = "## Scaling";

/// The sections of an existing BENCHMARKS.md headed by one of `headings`,
/// verbatim, each up to the next heading of level one or two, in file order.
pub(crate) fn sections(existing: &str, headings: &[&str]) -> String {
    let mut out = String::new();
    let mut keeping = false;
    let mut in_code = false;
    for line in existing.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        // A `# comment` inside a code block is not a heading.
        if !in_code && (line.starts_with("## ") || line.starts_with("# ")) {
            keeping = headings.contains(&line.trim_end());
        }
        if keeping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The sections of an existing BENCHMARKS.md that this run does not write:
/// the sql crate's due-work section, and the scaling curves unless this run
/// draws them anew (`curves`).
pub(crate) fn kept_sections(existing: &str, curves: bool) -> String {
    if curves {
        sections(existing, &[KEPT_SECTION])
    } else {
        sections(existing, &[SCALING_SECTION, KEPT_SECTION])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RunInfo {
        RunInfo {
            command: "cargo run".into(),
            quick: false,
            runs: 1,
            rtt_ms: 5,
            also_rtt_ms: vec![30],
            total_seconds: 10.0,
            date: "today".into(),
        }
    }

    /// One run of a row: a judged p99, a baseline, a ratio and a count line.
    fn run(p99_ms: f64, cut_off: u64, note: &str) -> RowResult {
        let mut r = RowResult::new(1, "Lag");
        r.line(
            Line::new("lag", "p99 < 100 ms", format!("p99 {p99_ms} ms"))
                .figure("p50", p99_ms / 2.0, Unit::Ms)
                .figure("p99", p99_ms, Unit::Ms)
                .judge(Goal::Below(100.0))
                .baseline("poll: p99 30 s", "")
                .baseline_figures("poll", vec![fig("p99", 30.0, Unit::Secs)])
                .ratio_figure("p99", 30_000.0 / p99_ms),
        );
        r.line(Line::new("cut off", "1,000", cut_off.to_string()).verdict(cut_off == 1000));
        r.note(note);
        r.seconds = 10.0;
        r.load_before = format!("{p99_ms}");
        r
    }

    #[test]
    fn runs_aggregate_to_min_median_max_judged_on_the_median() {
        // Two of three runs miss the p99 target: the median misses.
        let agg = aggregate(vec![
            run(50.0, 1000, "first"),
            run(150.0, 1000, "Missed: slow"),
            run(120.0, 1000, "third"),
        ])
        .unwrap_or_else(|| RowResult::new(0, "none"));
        assert_eq!(agg.runs, 3);
        let lag = &agg.lines[0];
        assert_eq!(
            lag.measured,
            "p50 25 ms / 60 ms / 75 ms, p99 50 ms / 120 ms / 150 ms"
        );
        assert_eq!(lag.verdict, Verdict::Missed);
        assert_eq!(lag.baseline, "poll: p99 30.00 s / 30.00 s / 30.00 s");
        assert_eq!(lag.ratio, "p99 200x / 250x / 600x");
        assert_eq!(agg.lines[1].measured, "1000");
        assert_eq!(agg.lines[1].verdict, Verdict::Met);
        assert_eq!(agg.seconds, 30.0);
        assert_eq!(agg.load_before, "50 / 150 / 120");
        assert!(agg.notes.iter().any(|n| n == "first"));
        assert!(
            agg.notes.iter().any(|n| n == "Run 2: Missed: slow"),
            "{:?}",
            agg.notes
        );
        assert!(!agg.notes.iter().any(|n| n.contains("third")));
        // One slow run of three: the median meets the target.
        let agg = aggregate(vec![
            run(50.0, 1000, ""),
            run(150.0, 1000, ""),
            run(60.0, 1000, ""),
        ])
        .unwrap_or_else(|| RowResult::new(0, "none"));
        assert_eq!(agg.lines[0].verdict, Verdict::Met);
        let md = markdown(&Machine::describe(), &info(), &[agg], &[]);
        assert!(md.contains("| 1. Lag (3 runs) | lag |"), "{md}");
    }

    #[test]
    fn a_count_is_met_only_if_every_run_met_it() {
        let agg = aggregate(vec![run(50.0, 1000, ""), run(50.0, 999, ""), run(50.0, 1000, "")])
            .unwrap_or_else(|| RowResult::new(0, "none"));
        assert_eq!(agg.lines[0].verdict, Verdict::Met);
        assert_eq!(agg.lines[1].measured, "1000; 999; 1000");
        assert_eq!(agg.lines[1].verdict, Verdict::Missed);
        // A line only some runs had says so.
        let mut extra = run(50.0, 1000, "");
        extra.line(Line::new("only here", "", "1 s").verdict(true));
        let agg = aggregate(vec![extra, run(50.0, 1000, "")]).unwrap_or_else(|| RowResult::new(0, "none"));
        assert_eq!(agg.lines[2].measured, "1 s (1 of 2 runs)");
        // A single run is left as it is.
        let one = aggregate(vec![run(50.0, 1000, "")]).unwrap_or_else(|| RowResult::new(0, "none"));
        assert_eq!((one.runs, one.lines[0].measured.as_str()), (1, "p99 50 ms"));
        assert!(aggregate(Vec::new()).is_none());
    }

    #[test]
    fn check_exits_non_zero_on_a_miss_or_a_failure() {
        let met = run(50.0, 1000, "");
        let missed = run(150.0, 1000, "");
        assert_eq!(exit_code(std::slice::from_ref(&met), &[], Check::All), 0);
        assert_eq!(exit_code(std::slice::from_ref(&missed), &[], Check::Off), 0);
        assert_eq!(exit_code(&[met.clone(), missed.clone()], &[], Check::All), 1);
        assert_eq!(
            exit_code(std::slice::from_ref(&met), &[(3, "boom".into())], Check::Off),
            1
        );
        // `counts` fails on a missed count, not on a missed timing.
        assert_eq!(exit_code(std::slice::from_ref(&missed), &[], Check::Counts), 0);
        let mut wrong = met;
        wrong.line(Line::new("cut off early", "0", "1").verdict(false));
        assert_eq!(exit_code(&[wrong], &[], Check::Counts), 1);
    }

    #[test]
    fn scaling_is_kept_unless_drawn_anew() {
        let old =
            "# Benchmarks\n\n## Notes\n\nx\n\n## Scaling\n\n| n | s |\n\n![plot](bench-scaling.png)\n\n\
                   ## Due-work queries (isp-adapters-sql)\n\nsql\n\n## Rows rerun\n\ny\n";
        let kept = kept_sections(old, false);
        assert!(kept.starts_with("## Scaling\n"), "{kept}");
        assert!(
            kept.contains("![plot](bench-scaling.png)") && kept.contains("sql"),
            "{kept}"
        );
        assert!(!kept.contains("Rows rerun") && !kept.contains("\nx\n"), "{kept}");
        let kept = kept_sections(old, true);
        assert!(
            kept.starts_with(KEPT_SECTION) && !kept.contains("Scaling"),
            "{kept}"
        );
    }

    #[test]
    fn keeps_the_sql_section_only() {
        let old = "# Benchmarks\n\nold table\n\n## Notes\n\nold notes\n\n## Due-work queries (isp-adapters-sql)\n\n\
                   ```sh\ncargo bench\n# ISP_BENCH_ROWS=1000000\n```\n\n\
                   | q | p50 |\n|---|---|\n| a | 1 |\n\n## Something else\n\nx\n";
        let kept = kept_sections(old, false);
        assert!(kept.starts_with(KEPT_SECTION));
        assert!(kept.contains("| a | 1 |"), "{kept}");
        assert!(kept.contains("# ISP_BENCH_ROWS=1000000\n```"), "{kept}");
        assert!(!kept.contains("old notes"));
        assert!(!kept.contains("Something else"));
        assert_eq!(kept_sections("# Benchmarks\n\nnothing\n", false), "");
    }

    #[test]
    fn tables_show_targets_and_misses() {
        let mut r = RowResult::new(2, "Sweep");
        r.line(
            Line::new("time", "< 2 s", "3 s")
                .baseline("300 s", "100x")
                .verdict(false),
        );
        r.note("slow because");
        let m = Machine::describe();
        let md = markdown(&m, &info(), &[r.clone()], &[]);
        assert!(
            md.contains("| 2. Sweep | time | < 2 s | 3 s | 300 s | 100x | **MISSED** |"),
            "{md}"
        );
        assert!(md.contains("Missed: row 2 (time)"));
        assert!(md.contains("- slow because"));
        let t = terminal(&[r], &[(5, "boom".into())]);
        assert!(t.contains("MISSED") && t.contains("FAILED"), "{t}");
    }
}
