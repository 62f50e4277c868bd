//! The results table, on the terminal and in BENCHMARKS.md.

use std::fmt::Write as _;

use crate::machine::Machine;

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

/// One line of the table.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) metric: String,
    pub(crate) target: String,
    pub(crate) measured: String,
    pub(crate) baseline: String,
    pub(crate) ratio: String,
    pub(crate) verdict: Verdict,
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
        }
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

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The whole document (without the sections kept from the previous file).
pub(crate) fn markdown(
    machine: &Machine,
    command: &str,
    quick: bool,
    rows: &[RowResult],
    failed: &[(u8, String)],
    total_seconds: f64,
    date: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Reproduce every row (about ten minutes; `--quick` for a smaller run of under two):\n"
    );
    let _ = writeln!(out, "```sh\n{command}\n```\n");
    let _ = writeln!(
        out,
        "Written by `isp-bench` (`bench/`), {date}, {} mode, {:.0} s in all. Machine: {machine}. \
         The machine is shared with other builds: the 1-minute load average before each row is in its notes; \
         ratios come from the same run.\n",
        if quick { "quick" } else { "full" },
        total_seconds
    );
    let _ = writeln!(
        out,
        "Routers are RouterOS simulators (`isp-routeros` feature `sim`) in the runner's process, reached over \
         TCP with an injected round-trip latency, 25 tenants with 4 routers each. The daemon side of rows 1, 2 \
         and 6 runs in a separate process (so its peak RSS is its own), wired as `ispd` wires itself. The \
         baseline is the seeds' approach on the same simulators in the same run.\n"
    );
    let _ = writeln!(
        out,
        "| Row | Metric | Target | Measured | Baseline (seeds' approach) | Ratio | Verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for r in rows {
        for (i, l) in r.lines.iter().enumerate() {
            let row = if i == 0 {
                format!("{}. {}", r.number, r.title)
            } else {
                String::new()
            };
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
            "### {}. {}\n\n_{:.0} s; load average before: {}_\n",
            r.number, r.title, r.seconds, r.load_before
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

/// The sections of an existing BENCHMARKS.md that this runner does not write
/// (the sql crate's due-work section), verbatim, each up to the next `## `.
pub(crate) fn kept_sections(existing: &str) -> String {
    let mut out = String::new();
    let mut keeping = false;
    let mut in_code = false;
    for line in existing.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        // A `# comment` inside a code block is not a heading.
        if !in_code && (line.starts_with("## ") || line.starts_with("# ")) {
            keeping = line.trim_end() == KEPT_SECTION;
        }
        if keeping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_sql_section_only() {
        let old = "# Benchmarks\n\nold table\n\n## Notes\n\nold notes\n\n## Due-work queries (isp-adapters-sql)\n\n\
                   ```sh\ncargo bench\n# ISP_BENCH_ROWS=1000000\n```\n\n\
                   | q | p50 |\n|---|---|\n| a | 1 |\n\n## Something else\n\nx\n";
        let kept = kept_sections(old);
        assert!(kept.starts_with(KEPT_SECTION));
        assert!(kept.contains("| a | 1 |"), "{kept}");
        assert!(kept.contains("# ISP_BENCH_ROWS=1000000\n```"), "{kept}");
        assert!(!kept.contains("old notes"));
        assert!(!kept.contains("Something else"));
        assert_eq!(kept_sections("# Benchmarks\n\nnothing\n"), "");
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
        let md = markdown(&m, "cargo run", false, &[r.clone()], &[], 10.0, "today");
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
