//! Row 5: reconciliation of 100 routers with 1,000 sessions each and 1%
//! drift in both directions.
//!
//! Each router holds the hotspot users and sessions of its subscribers. 1%
//! of its sessions belong to subscribers the database says were disconnected
//! (the router kept them: a restore from backup, a manual re-enable), and 1%
//! more subscribers are entitled but their user is disabled on the router
//! (so they cannot log in). One `sync-routers` run must remove the first and
//! enable the second, touching nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use isp_core::jobs::{Engine, EngineConfig, EngineDeps, JobKind, RunOptions};
use isp_core::memory::{RecordingSms, StaticDirectory};
use isp_core::policy::reconcile::RECONCILE_MENUS;
use isp_routeros::driver::{DriverConfig, RouterOsDriver};

use crate::report::{Line, RowResult, Unit};
use crate::rows::{commands, num, progress, Scale};
use crate::scenario::{username, Db, Fleet, Population, Topology, Users};
use crate::stats::{secs, thousands};
use crate::BoxResult;

pub(crate) async fn row(scale: &Scale) -> BoxResult<RowResult> {
    let started = Instant::now();
    let topo = Topology::DEFAULT;
    let routers = topo.routers();
    let per_router = scale.reconcile_sessions;
    let drift = (per_router / 100).max(1);
    // Subscriber i is the (i - 1) / routers -th of its home router ("block").
    // Blocks [0, per_router - drift): entitled and online; [per_router - drift,
    // per_router): disconnected in the database, still online; [per_router,
    // per_router + drift): entitled, user disabled on the router.
    let total = routers * (per_router + drift);
    let block = |i: i64| (i - 1) / routers;
    let dir = tempfile::tempdir()?;
    progress(format!(
        "reconcile: {routers} routers x {per_router} sessions, {drift} drifted each way per router: loading"
    ));
    let fleet = Fleet::start(topo, scale.latency, scale.router_cost).await?;
    let db = Db::create(dir.path(), "reconcile.sqlite", topo).await?;
    let now = Utc::now();
    let pop = Population {
        total,
        expired: 0,
        expiring: 0,
        first_expiry: now,
        spread: std::time::Duration::from_secs(1),
        now,
    };
    pop.load(&db, topo).await?;
    sqlx::query("UPDATE subscribers SET active = 0, disconnected_at = $3 WHERE (id - 1) / $4 >= $1 AND (id - 1) / $4 < $2")
        .bind(per_router - drift)
        .bind(per_router)
        .bind(now.timestamp_micros())
        .bind(routers)
        .execute(db.pool()?)
        .await?;
    let entitled: Vec<i64> = (1..=total).filter(|i| block(*i) < per_router - drift).collect();
    let stray: Vec<i64> = (1..=total)
        .filter(|i| (per_router - drift..per_router).contains(&block(*i)))
        .collect();
    let sessions = crate::scenario::put_online(&fleet, topo, &entitled, 1, Users::Radius)?
        + crate::scenario::put_online(&fleet, topo, &stray, 1, Users::Local)?;
    for i in (1..=total).filter(|i| block(*i) >= per_router) {
        let h = fleet.handle(topo.home_router(i)).ok_or("no simulated router")?;
        h.add_row(
            "/ip/hotspot/user",
            &[
                ("name", &username(i)),
                ("comment", &format!("isp:sub:{i}")),
                ("disabled", "yes"),
            ],
        )
        .map_err(|e| format!("disabled user: {e}"))?;
    }
    fleet.clear_logs();
    let logins_before = fleet.logins();

    let engine = Engine::new(
        EngineDeps {
            repos: db.store.repositories(),
            directory: Arc::new(StaticDirectory::new(fleet.routers())),
            driver: Arc::new(RouterOsDriver::new(DriverConfig::default())?),
            sms: Arc::new(RecordingSms::new()),
            clock: Arc::new(isp_core::runtime::SystemClock),
        },
        EngineConfig::default(),
    );
    progress(format!("reconcile: {sessions} sessions online; sync-routers"));
    let t = Instant::now();
    let report = engine.run(JobKind::SyncRouters, RunOptions::default()).await?;
    let elapsed = t.elapsed().as_secs_f64();

    // What the routers received and hold now.
    let cmds = commands(&fleet);
    let logins: Vec<u64> = fleet
        .logins()
        .iter()
        .zip(&logins_before)
        .map(|(a, b)| a - b)
        .collect();
    let mut wrong = 0_u64;
    let mut sessions_left = 0_u64;
    for (h, router) in fleet.handles().iter().zip(1_i64..) {
        let active: BTreeMap<String, ()> = h
            .rows("/ip/hotspot/active")
            .into_iter()
            .filter_map(|r| r.get("user").cloned().map(|u| (u, ())))
            .collect();
        sessions_left += active.len() as u64;
        for u in h.rows("/ip/hotspot/user") {
            let Some(i) = u.get("name").and_then(|n| crate::scenario::sub_of_username(n)) else {
                continue;
            };
            debug_assert_eq!(topo.home_router(i), router);
            let disabled = u.get("disabled").map(String::as_str) == Some("true");
            let online = active.contains_key(&username(i));
            let fine = if block(i) < per_router - drift {
                !disabled && online
            } else if block(i) < per_router {
                disabled && !online
            } else {
                !disabled && !online
            };
            if !fine {
                wrong += 1;
            }
        }
    }
    let menus = RECONCILE_MENUS.len() as u64;
    let fixes_per_router = 3 * drift as u64; // sessions removed, users disabled, users enabled
    let per: Vec<u64> = cmds.iter().map(|m| m.values().sum()).collect();
    let max_cmds = per.iter().copied().max().unwrap_or(0);
    let mean_cmds = per.iter().sum::<u64>() as f64 / per.len().max(1) as f64;
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for m in &cmds {
        for (k, v) in m {
            *kinds.entry(k.clone()).or_default() += v;
        }
    }
    let kinds_text = kinds
        .iter()
        .map(|(k, v)| format!("{k} {}", num(*v as f64 / routers as f64)))
        .collect::<Vec<_>>()
        .join(", ");
    let prints_per_router = kinds
        .iter()
        .filter(|(k, _)| k.ends_with("/print"))
        .map(|(_, v)| *v)
        .sum::<u64>() as f64
        / routers as f64;
    // The snapshot (one print per menu), one print of just the users to
    // change, then one batched command per verb (remove, disable, enable)
    // however many items each names: the per-item way would be
    // `fixes_per_router` commands.
    let prints_target = menus + 1;
    let target = prints_target + 3;
    let expected_left = (routers * (per_router - drift)) as u64;

    let mut r = RowResult::new(5, "Reconciliation");
    r.line(
        Line::new(
            format!(
                "detect and fix: {} routers x {} sessions, {}% drift each way ({} stray sessions, {} users to enable)",
                routers,
                thousands(per_router as u64),
                num(drift as f64 * 100.0 / per_router as f64),
                thousands((routers * drift) as u64),
                thousands((routers * drift) as u64)
            ),
            "",
            secs(elapsed),
        )
        .figure("", elapsed, Unit::Secs)
        .baseline("seed 003: 10-30 s per sync run (its documentation; not measured here), hourly", ""),
    );
    r.line(
        Line::new(
            "commands per router (mean / max)",
            format!(
                "<= {prints_target} prints (one per menu, one of the users to change) + 3 batched fixes \
                 (one remove, one disable, one enable for {fixes_per_router} items) = {target}"
            ),
            format!(
                "{} / {} (prints: {})",
                num(mean_cmds),
                max_cmds,
                num(prints_per_router)
            ),
        )
        .verdict(max_cmds <= target),
    );
    r.line(
        Line::new(
            "routers in line afterwards: wrong users / sessions left",
            format!("0 / {}", thousands(expected_left)),
            format!("{wrong} / {}", thousands(sessions_left)),
        )
        .verdict(wrong == 0 && sessions_left == expected_left && report.failures.is_empty()),
    );
    r.note(format!(
        "`Engine::run(SyncRouters)` in the runner's process (the simulators share its runtime), SQLite, default \
         engine and driver settings: per router one snapshot of the {menus} reconciled menus, the reconcile policy, \
         then its actions (stray sessions in one batched remove; the users to disable or enable in one batch: one \
         print of just those users, one disable and one enable naming their ids). Commands per router by kind (mean): {kinds_text}. Logins: at most {} \
         per router. Report: {report}.",
        logins.iter().copied().max().unwrap_or(0)
    ));
    if max_cmds > target {
        r.note(format!(
            "Missed the command target: the snapshot is one print per menu, the stray sessions go in one \
             batched remove and the user changes in one print plus one command per verb; the commands above the \
             target are in the per-kind counts ({} prints per router beyond the snapshot and the print of \
             the users to change).",
            num(prints_per_router - prints_target as f64)
        ));
    }
    fleet.shutdown().await;
    db.close().await;
    r.seconds = started.elapsed().as_secs_f64();
    Ok(r)
}
