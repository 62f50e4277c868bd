//! The seeds' way of disconnecting expired users (seed 000's
//! `disconnect_expired_users`, seed 001's watcher), with the isp-routeros client:
//! one query for the expired users, then for each user, on every router of
//! its tenant, one after the other: connect and log in, print that user's
//! active sessions, remove them, disable the user, close; then mark the user
//! inactive in the database.

use std::time::{Duration, Instant};

use isp_routeros::client::{ClientConfig, Connection, Credentials, Endpoint};
use isp_routeros::proto::Request;

use crate::scenario::{username, Db, Fleet, RouterSpec, Topology, API_PASSWORD, API_USER};
use crate::BoxResult;

/// What the naive loop did.
#[derive(Debug, Clone, Default)]
pub(crate) struct NaiveRun {
    pub(crate) users: u64,
    pub(crate) sessions_removed: u64,
    pub(crate) elapsed: Duration,
    pub(crate) logins: u64,
    pub(crate) commands: u64,
}

async fn one_router(spec: &RouterSpec, user: &str, run: &mut NaiveRun) -> BoxResult<()> {
    let endpoint = Endpoint::plain(
        spec.name.clone(),
        &spec.address,
        Credentials::new(API_USER, API_PASSWORD),
    )?;
    let conn = Connection::connect(&endpoint, &ClientConfig::default()).await?;
    run.logins += 1;
    let sessions = conn
        .run(
            Request::new("/ip/hotspot/active/print")
                .attr(".proplist", ".id,user")
                .query(format!("user={user}")),
        )
        .await?;
    run.commands += 1;
    let ids: Vec<&str> = sessions.rows.iter().filter_map(|r| r.id()).collect();
    if !ids.is_empty() {
        conn.run(Request::new("/ip/hotspot/active/remove").attr("numbers", ids.join(",")))
            .await?;
        run.commands += 1;
        run.sessions_removed += ids.len() as u64;
    }
    // Disable by name; on a router where the user does not exist this traps
    // with `no such item`, which the seeds log and ignore.
    match conn
        .run(Request::new("/ip/hotspot/user/disable").attr("numbers", user))
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_no_such_item() => {}
        Err(e) => return Err(e.into()),
    }
    run.commands += 1;
    conn.close();
    Ok(())
}

/// Disconnects the first `sample` expired users (in `paid_until` order) the
/// naive way; returns what it did and how long it took.
pub(crate) async fn disconnect(db: &Db, fleet: &Fleet, topo: Topology, sample: i64) -> BoxResult<NaiveRun> {
    let mut run = NaiveRun::default();
    let start = Instant::now();
    let pool = db.pool()?;
    let now = chrono::Utc::now().timestamp_micros();
    let expired: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT id, tenant_id FROM subscribers WHERE active AND paid_until <= $1 ORDER BY paid_until LIMIT $2",
    )
    .bind(now)
    .bind(sample)
    .fetch_all(pool)
    .await?;
    for (id, tenant) in expired {
        let user = username(id);
        for spec in fleet.specs.iter().filter(|r| r.tenant == tenant) {
            one_router(spec, &user, &mut run).await?;
        }
        debug_assert_eq!(tenant, topo.tenant_of(id));
        sqlx::query("UPDATE subscribers SET active = 0, disconnected_at = $2 WHERE id = $1")
            .bind(id)
            .bind(chrono::Utc::now().timestamp_micros())
            .execute(pool)
            .await?;
        run.users += 1;
    }
    run.elapsed = start.elapsed();
    Ok(run)
}
