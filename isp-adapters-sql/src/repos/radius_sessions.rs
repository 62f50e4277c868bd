//! RADIUS sessions: what the routers in RADIUS mode report in accounting.
//!
//! Every write is one guarded statement (or a short sequence of them, each
//! guarded), so concurrent accounting records of one session never leave a
//! half-written row: PostgreSQL re-checks a guard on the newest row version.

use crate::row::Fields as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;

const COLS: &str = "router_id, session_id, tenant_id, user_name, kind, address, calling_station, \
                    started_at, updated_at, input_octets, output_octets, stopped_at";

/// The columns a record sets, besides the key, `started_at` and `stopped_at`
/// (`$3` to `$10`, after the key `$1`, `$2`).
const SET_FIELDS: &str = "tenant_id = $3, user_name = $4, kind = $5, address = $6, calling_station = $7, \
                          updated_at = $8, input_octets = $9, output_octets = $10";

/// [`RadiusSessionRepo`] over the `radius_sessions` table.
#[derive(Debug, Clone)]
pub(crate) struct RadiusSessions {
    pub(super) pool: DbPool,
}

fn map(e: sqlx::Error) -> Error {
    map_sqlx_error("RADIUS session", e)
}

fn session(r: &DbRow) -> Result<RadiusSession> {
    let f = Cols::new(r, "radius_sessions");
    let octets = |col: &str| -> Result<u64> {
        let v = f.i64(col)?;
        u64::try_from(v).map_err(|_| Error::invalid(f.field(col), v, "must not be negative"))
    };
    Ok(RadiusSession {
        router: RouterId(f.i64("router_id")?),
        tenant: TenantId(f.i64("tenant_id")?),
        session_id: f.string("session_id")?,
        user: f.string("user_name")?,
        kind: f.parse("kind", RadiusSessionKind::parse)?,
        address: f.opt_parse("address", parse_ipv4)?,
        calling_station: f.opt_string("calling_station")?,
        started: f.ts("started_at")?,
        updated: f.ts("updated_at")?,
        input_octets: octets("input_octets")?,
        output_octets: octets("output_octets")?,
        stopped: f.opt_ts("stopped_at")?,
    })
}

/// A counter as the `BIGINT` column holds it; past `i64::MAX` is bad input.
fn octets(field: &'static str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::invalid(field, v, "at most 9223372036854775807"))
}

/// `query(sql)` with `$1` to `$10` bound to `s` (the key, then [`SET_FIELDS`]).
macro_rules! bind_fields {
    ($sql:expr, $s:expr) => {{
        let s: &RadiusSession = $s;
        let input = octets("input_octets", s.input_octets)?;
        let output = octets("output_octets", s.output_octets)?;
        query($sql)
            .bind(s.router.0)
            .bind(s.session_id.as_str())
            .bind(s.tenant.0)
            .bind(s.user.as_str())
            .bind(s.kind.as_str())
            .bind(s.address.map(|a| a.to_string()))
            .bind(s.calling_station.as_deref())
            .bind(ts(s.updated))
            .bind(input)
            .bind(output)
    }};
}

/// Inserts `s` with `started_at = $11`, `stopped_at = $12`.
fn insert_sql(on_conflict: &str) -> String {
    format!(
        "INSERT INTO radius_sessions ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $11, $8, $9, $10, $12) {on_conflict}"
    )
}

fn decode(rows: Vec<DbRow>) -> Result<Vec<RadiusSession>> {
    rows.iter().map(session).collect()
}

#[async_trait]
impl RadiusSessionRepo for RadiusSessions {
    async fn upsert(&self, s: &RadiusSession, start: bool) -> Result<bool> {
        let live = format!(
            "UPDATE radius_sessions SET {SET_FIELDS} WHERE router_id = $1 AND session_id = $2 AND stopped_at IS NULL"
        );
        let n = bind_fields!(&live, s)
            .execute(&self.pool)
            .await
            .map_err(map)?
            .rows_affected();
        if n > 0 {
            return Ok(true);
        }
        // Unknown, or closed: a Start replaces a closed one, an Interim-Update does not.
        let sql = if start {
            insert_sql(
                "ON CONFLICT (router_id, session_id) DO UPDATE SET tenant_id = excluded.tenant_id, \
                 user_name = excluded.user_name, kind = excluded.kind, address = excluded.address, \
                 calling_station = excluded.calling_station, started_at = excluded.started_at, \
                 updated_at = excluded.updated_at, input_octets = excluded.input_octets, \
                 output_octets = excluded.output_octets, stopped_at = NULL",
            )
        } else {
            insert_sql("ON CONFLICT DO NOTHING")
        };
        let n = bind_fields!(&sql, s)
            .bind(ts(s.started))
            .bind(None::<DateTime<Utc>>.map(ts))
            .execute(&self.pool)
            .await
            .map_err(map)?
            .rows_affected();
        Ok(n > 0)
    }

    async fn stop(&self, s: &RadiusSession) -> Result<bool> {
        let stopped = s.stopped.unwrap_or(s.updated);
        let live = format!(
            "UPDATE radius_sessions SET {SET_FIELDS}, stopped_at = $11 \
             WHERE router_id = $1 AND session_id = $2 AND stopped_at IS NULL"
        );
        let n = bind_fields!(&live, s)
            .bind(ts(stopped))
            .execute(&self.pool)
            .await
            .map_err(map)?
            .rows_affected();
        if n > 0 {
            return Ok(true);
        }
        let closed =
            format!("UPDATE radius_sessions SET {SET_FIELDS} WHERE router_id = $1 AND session_id = $2");
        let n = bind_fields!(&closed, s)
            .execute(&self.pool)
            .await
            .map_err(map)?
            .rows_affected();
        if n == 0 {
            // Its Start was lost: kept, closed.
            bind_fields!(&insert_sql("ON CONFLICT DO NOTHING"), s)
                .bind(ts(s.started))
                .bind(Some(ts(stopped)))
                .execute(&self.pool)
                .await
                .map_err(map)?;
        }
        Ok(false)
    }

    async fn close(&self, router: RouterId, session_id: &str, at: DateTime<Utc>) -> Result<bool> {
        let n = query(
            "UPDATE radius_sessions SET stopped_at = $3 \
             WHERE router_id = $1 AND session_id = $2 AND stopped_at IS NULL",
        )
        .bind(router.0)
        .bind(session_id)
        .bind(ts(at))
        .execute(&self.pool)
        .await
        .map_err(map)?
        .rows_affected();
        Ok(n > 0)
    }

    async fn close_router(&self, router: RouterId, at: DateTime<Utc>) -> Result<u64> {
        Ok(
            query("UPDATE radius_sessions SET stopped_at = $2 WHERE router_id = $1 AND stopped_at IS NULL")
                .bind(router.0)
                .bind(ts(at))
                .execute(&self.pool)
                .await
                .map_err(map)?
                .rows_affected(),
        )
    }

    async fn close_stale(&self, cutoff: DateTime<Utc>, at: DateTime<Utc>) -> Result<u64> {
        Ok(
            query("UPDATE radius_sessions SET stopped_at = $2 WHERE stopped_at IS NULL AND updated_at < $1")
                .bind(ts(cutoff))
                .bind(ts(at))
                .execute(&self.pool)
                .await
                .map_err(map)?
                .rows_affected(),
        )
    }

    async fn get(&self, router: RouterId, session_id: &str) -> Result<Option<RadiusSession>> {
        let sql = format!("SELECT {COLS} FROM radius_sessions WHERE router_id = $1 AND session_id = $2");
        let rows = query(&sql)
            .bind(router.0)
            .bind(session_id)
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        Ok(decode(rows)?.pop())
    }

    async fn live_on_router(&self, router: RouterId) -> Result<Vec<RadiusSession>> {
        let sql = format!(
            "SELECT {COLS} FROM radius_sessions WHERE router_id = $1 AND stopped_at IS NULL \
             ORDER BY started_at, session_id"
        );
        decode(
            query(&sql)
                .bind(router.0)
                .fetch_all(&self.pool)
                .await
                .map_err(map)?,
        )
    }

    async fn live_of_user(&self, tenant: TenantId, user: &str) -> Result<Vec<RadiusSession>> {
        let sql = format!(
            "SELECT {COLS} FROM radius_sessions WHERE tenant_id = $1 AND user_name = $2 \
             AND stopped_at IS NULL ORDER BY started_at, session_id"
        );
        decode(
            query(&sql)
                .bind(tenant.0)
                .bind(user)
                .fetch_all(&self.pool)
                .await
                .map_err(map)?,
        )
    }

    async fn delete_closed_before(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        Ok(
            query("DELETE FROM radius_sessions WHERE stopped_at IS NOT NULL AND stopped_at < $1")
                .bind(ts(cutoff))
                .execute(&self.pool)
                .await
                .map_err(map)?
                .rows_affected(),
        )
    }
}
