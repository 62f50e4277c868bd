//! Row 6: the daemon's peak memory with a million subscribers, and the load
//! it puts on routers.

use std::time::Instant;

use crate::report::{fig, Goal, Line, RowResult, Unit};
use crate::rows::lag::{lag_line, Scheduling};
use crate::rows::{lag, num, sweep, Scale};
use crate::scenario::devices_of;
use crate::stats::thousands;
use crate::BoxResult;
use isp_adapters_sql::Backend;

const TARGET_MB: u64 = 200;

pub(crate) async fn row(scale: &Scale) -> BoxResult<RowResult> {
    let started = Instant::now();
    let n = scale.memory_subscribers;
    let lag = lag::measure(
        scale,
        n,
        scale.lag_expiries,
        scale.lag_spread,
        Scheduling::Deadline,
        Backend::Sqlite,
    )
    .await?;
    let sweep = sweep::measure(scale, n, scale.sweep_expired).await?;
    let sample = if scale.quick { 20 } else { 100 };
    let naive_scale = Scale {
        naive_sample: sample,
        ..*scale
    };
    let (naive, naive_cmds) = sweep::measure_naive(&naive_scale, sample).await?;

    let lag_mb = lag.outcome.vm_hwm_kb / 1024;
    let sweep_mb = sweep.outcome.vm_hwm_kb / 1024;
    let subs = thousands(n as u64);
    let mut r = RowResult::new(6, "Memory and router load");
    r.line(
        Line::new(
            format!(
                "daemon peak RSS, row 1's load at {subs} subscribers ({} expiries in {} s)",
                thousands(lag.expiries as u64),
                scale.lag_spread.as_secs()
            ),
            format!("< {TARGET_MB} MB"),
            format!("{lag_mb} MB"),
        )
        .figure("", lag_mb as f64, Unit::Mb)
        .judge(Goal::Below(TARGET_MB as f64)),
    );
    r.line(
        Line::new(
            format!(
                "daemon peak RSS, row 2's load at {subs} subscribers ({} expired)",
                thousands(sweep.expired as u64)
            ),
            format!("< {TARGET_MB} MB"),
            format!("{sweep_mb} MB"),
        )
        .figure("", sweep_mb as f64, Unit::Mb)
        .judge(Goal::Below(TARGET_MB as f64)),
    );
    let naive_logins_per_user_router = naive.logins as f64 / (naive.users.max(1) * 4) as f64;
    r.line(
        Line::new(
            "logins per router (most on any router: lag run / sweep)",
            "1 (unless the connection broke)",
            format!("{} / {}", lag.logins_max, sweep.logins_max),
        )
        .baseline(
            format!(
                "{} per user per router ({} logins for {} users)",
                num(naive_logins_per_user_router),
                naive.logins,
                naive.users
            ),
            "",
        )
        .verdict(lag.logins_max <= 1 && sweep.logins_max <= 1),
    );
    let devices: i64 = (1..=sweep.expired).map(devices_of).sum();
    let naive_devices: i64 = (1..=naive.users as i64).map(devices_of).sum();
    let ours_per_device = sweep.commands as f64 / devices as f64;
    let naive_per_device = naive_cmds as f64 / naive_devices.max(1) as f64;
    r.line(
        Line::new(
            format!(
                "router commands per removed device (sweep of {} devices)",
                thousands(devices as u64)
            ),
            "",
            num(ours_per_device),
        )
        .figure("", ours_per_device, Unit::Plain)
        .baseline(
            format!(
                "{} (per-user loop, {} devices)",
                num(naive_per_device),
                naive_devices
            ),
            format!("{}x fewer", num(naive_per_device / ours_per_device)),
        )
        .baseline_figures(
            format!("per-user loop, {naive_devices} devices"),
            vec![fig("", naive_per_device, Unit::Plain)],
        )
        .ratio_figure("", naive_per_device / ours_per_device),
    );
    let lag_target = format!("{} (row 1's)", lag::TARGET_TEXT);
    r.line(lag_line(
        format!("lag at {subs} subscribers (as row 1, every other job running), p50 / p99 / max"),
        Some((&lag_target, lag::TARGET_P99)),
        &lag.summary(),
    ));
    r.line(
        Line::new(
            format!("sweep at {subs} subscribers (as row 2): time to the last removal"),
            format!("{} (row 2's)", sweep::TARGET_TEXT),
            crate::stats::secs(sweep.removal_secs),
        )
        .figure("", sweep.removal_secs, Unit::Secs)
        .judge(Goal::Below(sweep::TARGET_SECS)),
    );
    r.note(format!(
        "Peak RSS is `VmHWM` of the daemon process (`ispd`'s storage, driver, engine and, for the lag run, its \
         scheduler), which holds no simulator: the {} routers' sessions live in the runner's process. Both runs \
         load {subs} subscribers ({} devices) into SQLite; of the entitled ones every tenth is online, at most \
         1,000 per router ({} and {} sessions online).",
        100,
        thousands((1..=n).map(devices_of).sum::<i64>() as u64),
        thousands(lag.background_sessions + lag.sessions),
        thousands(sweep.background_sessions + sweep.sessions),
    ));
    let others = &lag.outcome.other_jobs;
    r.note(match others.get("sync-routers") {
        Some(_) => format!(
            "The lag run's figure includes a router sync (it reads each tenant's active subscribers), since every \
             other job ran on the minute; their last runs: {}.",
            others
                .iter()
                .map(|(job, summary)| format!("{job}: \"{summary}\""))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        None => "The lag run's daemon did not run sync-routers, the job that reads every active subscriber: its \
                 memory is not in the lag run's figure."
            .to_owned(),
    });
    r.note(format!(
        "Commands per removed device: every command the simulators received during the sweep except logins \
         ({} for {} devices), against the per-user loop's commands for {} users on fresh simulators ({}: a print, \
         a remove where there are sessions and a disable, on each of the tenant's 4 routers). {} Lag run: {}. \
         Sweep: {}.",
        thousands(sweep.commands),
        thousands(devices as u64),
        naive.users,
        naive_cmds,
        sweep::breakdown(&sweep),
        lag.cpu.text(),
        sweep.cpu.text()
    ));
    if scale.quick {
        r.note(format!(
            "Quick run: {subs} subscribers instead of 1,000,000; the targets are for a million."
        ));
    }
    r.seconds = started.elapsed().as_secs_f64();
    Ok(r)
}
