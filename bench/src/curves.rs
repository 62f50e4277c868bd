//! Scaling curves (`--curves`): row 2's sweep over the number of expired
//! subscribers and over the number of routers, and row 1's lag over the
//! number of subscribers; one run per point. Written as the `## Scaling`
//! section of the `--write` file and drawn as a PNG.
//!
//! The plot is drawn by `plotters` into a bitmap (no system library). Its text
//! needs a TrueType font, which is looked for at run time (`ISP_BENCH_FONT`,
//! then the usual DejaVu and Liberation paths); without one the plot is drawn
//! without text and the Markdown section says what each panel shows.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use isp_adapters_sql::Backend;
use plotters::prelude::*;

use crate::report::SCALING_SECTION;
use crate::rows::lag::{self, Scheduling};
use crate::rows::{progress, sweep, Scale};
use crate::scenario::Topology;
use crate::stats::{secs, thousands, Summary};
use crate::BoxResult;

/// The points of each curve, by mode.
#[derive(Debug, Clone)]
struct Plan {
    expired: Vec<i64>,
    routers: Vec<i64>,
    routers_expired: i64,
    subscribers: Vec<i64>,
    lag_expiries: i64,
    lag_spread: Duration,
}

impl Plan {
    fn of(scale: &Scale) -> Plan {
        if scale.quick {
            Plan {
                expired: vec![100, 1_000, 5_000],
                routers: vec![10, 30, 100],
                routers_expired: 1_000,
                subscribers: vec![1_000, 10_000, 30_000],
                lag_expiries: 30,
                lag_spread: Duration::from_secs(3),
            }
        } else {
            Plan {
                expired: vec![1_000, 10_000, 100_000],
                routers: vec![10, 100, 1_000],
                routers_expired: 10_000,
                subscribers: vec![10_000, 100_000, 1_000_000],
                lag_expiries: scale.lag_expiries,
                lag_spread: scale.lag_spread,
            }
        }
    }
}

/// One sweep point.
#[derive(Debug, Clone)]
pub(crate) struct SweepPoint {
    pub(crate) x: i64,
    pub(crate) sessions: u64,
    pub(crate) removal_secs: f64,
    pub(crate) complete: bool,
}

/// One lag point.
#[derive(Debug, Clone)]
pub(crate) struct LagPoint {
    pub(crate) subscribers: i64,
    pub(crate) lag: Summary,
    pub(crate) cut_off: usize,
}

/// Every curve of one `--curves` run.
#[derive(Debug, Clone)]
pub(crate) struct Curves {
    quick: bool,
    rtt_ms: u128,
    plan: Plan,
    pub(crate) by_expired: Vec<SweepPoint>,
    pub(crate) by_routers: Vec<SweepPoint>,
    pub(crate) by_subscribers: Vec<LagPoint>,
    seconds: f64,
    date: String,
}

/// Two routers per tenant for the router curve: 10 routers are 5 tenants.
fn router_topology(routers: i64) -> Topology {
    Topology {
        tenants: (routers / 2).max(1),
        routers_per_tenant: 2,
    }
}

/// Runs every point, one run each.
pub(crate) async fn run(scale: &Scale) -> BoxResult<Curves> {
    let started = Instant::now();
    let plan = Plan::of(scale);
    let mut by_expired = Vec::new();
    for &n in &plan.expired {
        progress(format!("curves: sweep of {n} expired subscribers, 100 routers"));
        let run = sweep::measure(scale, n, n).await?;
        by_expired.push(point(n, &run));
    }
    let mut by_routers = Vec::new();
    for &routers in &plan.routers {
        let n = plan.routers_expired;
        progress(format!(
            "curves: sweep of {n} expired subscribers, {routers} routers"
        ));
        let run = sweep::measure_in(scale, router_topology(routers), n, n).await?;
        by_routers.push(point(routers, &run));
    }
    let mut by_subscribers = Vec::new();
    for &n in &plan.subscribers {
        progress(format!("curves: lag at {n} subscribers"));
        let run = lag::measure(
            scale,
            n,
            plan.lag_expiries,
            plan.lag_spread,
            Scheduling::Deadline,
            Backend::Sqlite,
        )
        .await?;
        by_subscribers.push(LagPoint {
            subscribers: n,
            lag: run.summary(),
            cut_off: run.lags.len(),
        });
    }
    Ok(Curves {
        quick: scale.quick,
        rtt_ms: scale.latency.as_millis(),
        plan,
        by_expired,
        by_routers,
        by_subscribers,
        seconds: started.elapsed().as_secs_f64(),
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
    })
}

fn point(x: i64, run: &sweep::SweepRun) -> SweepPoint {
    SweepPoint {
        x,
        sessions: run.sessions,
        removal_secs: run.removal_secs,
        complete: run.removed == run.sessions
            && run.left_online == 0
            && run.still_active_in_db == 0
            && run.outcome.failures == 0,
    }
}

fn yes_no(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}

/// One of row 2's curves as a Markdown table, its first column `x`.
fn sweep_table(out: &mut String, x: &str, points: &[SweepPoint]) {
    let _ = writeln!(
        out,
        "| {x} | sessions | time to the last removal | sessions per second | all removed |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---|");
    for p in points {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} |",
            thousands(p.x as u64),
            thousands(p.sessions),
            secs(p.removal_secs),
            p.sessions as f64 / p.removal_secs,
            yes_no(p.complete)
        );
    }
}

impl Curves {
    /// The `## Scaling` section; `plot` is the image's link and how it was
    /// drawn, when it was.
    pub(crate) fn markdown(&self, plot: Option<(&str, &str)>) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{SCALING_SECTION}\n");
        let _ = writeln!(
            out,
            "```sh\ncargo run --release -p isp-bench -- {}--curves --write BENCHMARKS.md\n```\n",
            if self.quick { "--quick " } else { "" }
        );
        let _ = writeln!(
            out,
            "Written {}, {} mode, {:.0} s in all: **one run per point** (the rows above are the repeated \
             measurements), SQLite, {} ms round trip to every simulated router, the daemon in its own process as \
             in rows 1 and 2. A sweep's time is from the start of the disconnect run to the last session removal \
             on any router (row 2's measure); lag is from `paid_until` to the removal of the subscriber's last \
             session (row 1's).\n",
            self.date, if self.quick { "quick" } else { "full" }, self.seconds, self.rtt_ms
        );
        match plot {
            Some((link, how)) => {
                let _ = writeln!(
                    out,
                    "![Scaling curves: sweep time over expired subscribers, sweep time over routers, lag over \
                     subscribers]({link})\n\n_The plot ({how}): left, row 2's sweep time (seconds) over the number \
                     of expired subscribers; middle, the same over the number of routers; right, row 1's lag p50 \
                     (blue) and p99 (red), milliseconds, over the number of subscribers. Horizontal axes are \
                     logarithmic, vertical ones start at zero._\n"
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "_No plot: it could not be drawn (see the runner's output)._\n"
                );
            }
        }
        let _ = writeln!(
            out,
            "Row 2 over the number of expired subscribers (100 routers: 25 tenants of 4, as row 2):\n"
        );
        sweep_table(&mut out, "expired subscribers", &self.by_expired);
        let _ = writeln!(
            out,
            "\nRow 2 over the number of routers ({} expired subscribers; 2 routers per tenant, so 10 routers are \
             5 tenants: each subscriber's sessions are on one router, and it is cut off on both of its tenant's):\n",
            thousands(self.plan.routers_expired as u64)
        );
        sweep_table(&mut out, "routers", &self.by_routers);
        let _ = writeln!(
            out,
            "\nRow 1 over the number of subscribers ({} expiries over {} s, 100 routers, every other job each \
             minute, as row 1):\n",
            thousands(self.plan.lag_expiries as u64),
            self.plan.lag_spread.as_secs()
        );
        let _ = writeln!(out, "| subscribers | lag p50 | lag p99 | lag max | cut off |");
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|");
        for p in &self.by_subscribers {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} of {} |",
                thousands(p.subscribers as u64),
                secs(p.lag.p50),
                secs(p.lag.p99),
                secs(p.lag.max),
                thousands(p.cut_off as u64),
                thousands(self.plan.lag_expiries as u64)
            );
        }
        let _ = writeln!(out);
        out
    }

    /// The curves on a terminal.
    pub(crate) fn terminal(&self) -> String {
        let mut out = String::from("Scaling (one run per point)\n");
        for p in &self.by_expired {
            let _ = writeln!(
                out,
                "  sweep, {:>9} expired, 100 routers: {}",
                thousands(p.x as u64),
                secs(p.removal_secs)
            );
        }
        for p in &self.by_routers {
            let _ = writeln!(
                out,
                "  sweep, {:>9} expired, {} routers: {}",
                thousands(self.plan.routers_expired as u64),
                p.x,
                secs(p.removal_secs)
            );
        }
        for p in &self.by_subscribers {
            let _ = writeln!(
                out,
                "  lag, {:>9} subscribers: p50 {} / p99 {} / max {}",
                thousands(p.subscribers as u64),
                secs(p.lag.p50),
                secs(p.lag.p99),
                secs(p.lag.max)
            );
        }
        out
    }
}

/// Paths where a TrueType font is looked for, after `ISP_BENCH_FONT`.
const FONT_PATHS: [&str; 5] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
];

/// Registers the first font found as plotters' `sans-serif`; its path, if any.
fn find_font() -> Option<String> {
    let from_env = std::env::var("ISP_BENCH_FONT").ok();
    for path in from_env.iter().map(String::as_str).chain(FONT_PATHS) {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        // plotters keeps registered fonts for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
            return Some(path.to_owned());
        }
    }
    None
}

/// Draws the three curves into a PNG at `path` (creating its directory);
/// returns how (with text and which font, or without text).
pub(crate) fn plot(c: &Curves, path: &Path) -> BoxResult<String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let font = find_font();
    draw(c, path, font.is_some()).map_err(|e| format!("plot: {e}"))?;
    Ok(match font {
        Some(f) => format!("labelled with the font {f}"),
        None => "drawn without text: no font was found; ISP_BENCH_FONT names a .ttf file".to_owned(),
    })
}

/// One panel: `series` of (x, y) on a logarithmic x axis.
struct Panel<'a> {
    title: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    series: Vec<(RGBColor, Vec<(f64, f64)>)>,
}

fn draw(c: &Curves, path: &Path, text: bool) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (1500, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let sweep = |points: &[SweepPoint]| points.iter().map(|p| (p.x as f64, p.removal_secs)).collect();
    let panels = [
        Panel {
            title: "Row 2: sweep over expired subscribers",
            x_desc: "expired subscribers (100 routers)",
            y_desc: "time to the last removal, s",
            series: vec![(BLUE, sweep(&c.by_expired))],
        },
        Panel {
            title: "Row 2: sweep over routers",
            x_desc: "routers",
            y_desc: "time to the last removal, s",
            series: vec![(BLUE, sweep(&c.by_routers))],
        },
        Panel {
            title: "Row 1: lag p50 (blue), p99 (red)",
            x_desc: "subscribers",
            y_desc: "lag, ms",
            series: vec![
                (
                    BLUE,
                    c.by_subscribers
                        .iter()
                        .map(|p| (p.subscribers as f64, p.lag.p50 * 1000.0))
                        .collect(),
                ),
                (
                    RED,
                    c.by_subscribers
                        .iter()
                        .map(|p| (p.subscribers as f64, p.lag.p99 * 1000.0))
                        .collect(),
                ),
            ],
        },
    ];
    for (area, panel) in root.split_evenly((1, 3)).iter().zip(&panels) {
        let xs = panel.series.iter().flat_map(|(_, s)| s.iter().map(|p| p.0));
        let (lo, hi) = xs.fold((f64::INFINITY, 0.0_f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo / 1.5, hi * 1.5)
        } else {
            (1.0, 10.0)
        };
        let ymax = panel
            .series
            .iter()
            .flat_map(|(_, s)| s.iter().map(|p| p.1))
            .filter(|y| y.is_finite())
            .fold(0.0_f64, f64::max)
            .max(1e-3)
            * 1.15;
        let mut builder = ChartBuilder::on(area);
        builder.margin(20);
        if text {
            builder
                .caption(panel.title, ("sans-serif", 20))
                .x_label_area_size(45)
                .y_label_area_size(60);
        }
        let mut chart = builder.build_cartesian_2d((lo..hi).log_scale(), 0.0..ymax)?;
        if text {
            chart
                .configure_mesh()
                .x_desc(panel.x_desc)
                .y_desc(panel.y_desc)
                .x_labels(4)
                .x_label_formatter(&|x| thousands(x.round() as u64))
                .y_label_formatter(&|y| crate::rows::num(*y))
                .label_style(("sans-serif", 13))
                .draw()?;
        } else {
            chart.plotting_area().draw(&Rectangle::new(
                [(lo, 0.0), (hi, ymax)],
                ShapeStyle::from(&BLACK).stroke_width(1),
            ))?;
        }
        for (color, points) in &panel.series {
            chart.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?;
            chart.draw_series(PointSeries::of_element(
                points.iter().copied(),
                4,
                color.filled(),
                &|p, size, style| EmptyElement::at(p) + Circle::new((0, 0), size, style),
            ))?;
        }
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curves() -> Curves {
        let sweep = |x, s| SweepPoint {
            x,
            sessions: x as u64 * 3 / 2,
            removal_secs: s,
            complete: true,
        };
        let lag = |n, p99| LagPoint {
            subscribers: n,
            lag: Summary {
                n: 10,
                p50: p99 / 2.0,
                p99,
                max: p99 * 1.2,
                min: 0.01,
            },
            cut_off: 30,
        };
        let scale = Scale::quick(Duration::from_millis(5));
        Curves {
            quick: true,
            rtt_ms: 5,
            plan: Plan::of(&scale),
            by_expired: vec![sweep(100, 0.2), sweep(1_000, 0.5), sweep(5_000, 2.0)],
            by_routers: vec![sweep(10, 0.4), sweep(30, 0.45), sweep(100, 0.6)],
            by_subscribers: vec![lag(1_000, 0.05), lag(10_000, 0.06), lag(30_000, 0.07)],
            seconds: 42.0,
            date: "today".into(),
        }
    }

    #[test]
    fn the_section_has_every_point_and_links_the_plot() {
        let md = curves().markdown(Some(("docs/bench-scaling.png", "labelled")));
        assert!(md.starts_with("## Scaling\n"), "{md}");
        assert!(md.contains("](docs/bench-scaling.png)"), "{md}");
        assert!(md.contains("| 5,000 | 7,500 | 2.00 s | 3750 | yes |"), "{md}");
        assert!(md.contains("| 100 | 150 | 600 ms | 250 | yes |"), "{md}");
        assert!(
            md.contains("| 30,000 | 35 ms | 70 ms | 84 ms | 30 of 30 |"),
            "{md}"
        );
        assert!(md.contains("one run per point"));
        // Kept by the next run without --curves.
        let kept = crate::report::kept_sections(&format!("# Benchmarks\n\n{md}"), false);
        assert_eq!(kept, md);
        let md = curves().markdown(None);
        assert!(md.contains("No plot") && !md.contains("!["), "{md}");
    }

    #[test]
    fn the_plot_is_a_png_with_or_without_text() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        for text in [false, true] {
            if text && find_font().is_none() {
                continue;
            }
            let path = dir.path().join(format!("p{text}.png"));
            draw(&curves(), &path, text).unwrap_or_else(|e| panic!("draw (text {text}): {e}"));
            let bytes = std::fs::read(&path).unwrap_or_default();
            assert!(bytes.starts_with(b"\x89PNG"), "not a PNG: {} bytes", bytes.len());
        }
    }
}
