//! What every row starts from: simulated routers (one `SimFleet`, every router
//! with the injected round-trip latency and the router cost, [`RouterCost`]), tenants with several routers each,
//! and an SQLite database loaded with subscribers and their devices, some of
//! them online on the simulators. Row 1 also loads the same subscribers into
//! PostgreSQL (a throwaway cluster).
//!
//! Subscriber `i` (ids from 1) belongs to tenant `1 + (i - 1) % tenants`; its
//! home router is one of its tenant's routers, in turn. Every second subscriber
//! has two devices, the others one. An online subscriber has a hotspot user
//! `u<i>` (comment `isp:sub:<i>`) on its home router and one active session per
//! device there, made through `SimHandle::hotspot_login` as a device logging in
//! through the login page would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use isp_adapters_sql::SqlStore;
use isp_core::domain::{RosName, Router, RouterCredentials, RouterId, Tenant, TenantId, Transport};
use isp_routeros::sim::{SimConfig, SimFleet, SimHandle};
use serde::{Deserialize, Serialize};

use crate::BoxResult;

/// The API user of every simulated router.
pub(crate) const API_USER: &str = "api";
/// Its password (a simulator's; passed to the daemon process on its stdin, never logged).
pub(crate) const API_PASSWORD: &str = "bench-router-secret";

/// Tenants and routers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Topology {
    pub(crate) tenants: i64,
    pub(crate) routers_per_tenant: i64,
}

impl Topology {
    /// 25 tenants with 4 routers each: 100 routers.
    pub(crate) const DEFAULT: Topology = Topology {
        tenants: 25,
        routers_per_tenant: 4,
    };

    pub(crate) fn routers(&self) -> i64 {
        self.tenants * self.routers_per_tenant
    }

    pub(crate) fn tenant_of(&self, sub: i64) -> i64 {
        1 + (sub - 1) % self.tenants
    }

    pub(crate) fn tenant_of_router(&self, router: i64) -> i64 {
        1 + (router - 1) / self.routers_per_tenant
    }

    pub(crate) fn home_router(&self, sub: i64) -> i64 {
        (self.tenant_of(sub) - 1) * self.routers_per_tenant
            + ((sub - 1) / self.tenants) % self.routers_per_tenant
            + 1
    }

    /// The same mapping in SQL over a column `i`.
    fn home_router_sql(&self) -> String {
        format!(
            "(((i - 1) % {t}) * {r} + ((i - 1) / {t}) % {r} + 1)",
            t = self.tenants,
            r = self.routers_per_tenant
        )
    }
}

/// Devices of subscriber `sub`: two for every second one.
pub(crate) fn devices_of(sub: i64) -> i64 {
    if sub % 2 == 0 {
        2
    } else {
        1
    }
}

/// MAC of device `d` (1 or 2) of subscriber `sub`, as RouterOS prints it.
pub(crate) fn mac(sub: i64, d: i64) -> String {
    format!(
        "02:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
        (sub >> 24) & 255,
        (sub >> 16) & 255,
        (sub >> 8) & 255,
        sub & 255,
        d & 255
    )
}

fn ip(sub: i64, d: i64) -> String {
    format!(
        "10.{}.{}.{}",
        d * 64 + ((sub >> 16) & 63),
        (sub >> 8) & 255,
        sub & 255
    )
}

/// The hotspot user name of subscriber `sub`.
pub(crate) fn username(sub: i64) -> String {
    format!("u{sub}")
}

/// The subscriber a hotspot user name belongs to.
pub(crate) fn sub_of_username(name: &str) -> Option<i64> {
    name.strip_prefix('u')?.parse().ok()
}

/// A router as the daemon process is told about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RouterSpec {
    pub(crate) id: i64,
    pub(crate) tenant: i64,
    pub(crate) name: String,
    pub(crate) address: String,
}

impl RouterSpec {
    pub(crate) fn to_router(&self) -> Router {
        Router {
            id: RouterId(self.id),
            tenant_id: TenantId(self.tenant),
            name: self.name.clone(),
            address: self.address.clone(),
            transport: Transport::Api,
            credentials: RouterCredentials::new(API_USER, API_PASSWORD),
            tls_fingerprint: None,
            enabled: true,
        }
    }
}

/// The simulated routers' own work (the simulator's cost model): a command waits
/// `per_command + items × per_item` before its answer, on top of the latency,
/// where items are the items it prints or names (`isp_routeros::sim`, "Cost
/// model"). Commands on one connection execute one at a time.
///
/// The defaults, from public figures (none is a clean per-command measurement,
/// so the choice leans against batching, which is what the rows measure):
///
/// * per item, 250 µs: a Terraform provider refreshing 16 routes read the whole
///   table of ~22,000 routes each time, 16 `/ip/route/print` in ~90 s on
///   RouterOS 7.19.1, router CPU ~35 %
///   (<https://github.com/terraform-routeros/terraform-provider-routeros/issues/943>):
///   ~256 µs per printed item end to end. Hotspot sessions print about as many
///   properties as routes. This is on the high side (the figure includes
///   transfer and the client's parsing), so a big batch is not free.
/// * per command, 2 ms: published whole-call figures are far higher (~1.3 s for
///   one connect, login and command on an RB1000 or CCR1036,
///   <https://github.com/pincioc/fail2ban_mikrotik/issues/2>; integrations
///   throttle bulk changes to 3-5 calls a second to spare the router's CPU,
///   <https://github.com/Zilleali/mikrotik-laravel/wiki/Rate%E2%80%90Limiting>),
///   but they include connection set-up. A small per-command cost favours the
///   seeds' one-command-per-user baseline, not our batches; the round trip is
///   the separate `--latency-ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RouterCost {
    /// Work per command.
    pub(crate) per_command: Duration,
    /// Work per item printed or named.
    pub(crate) per_item: Duration,
}

impl RouterCost {
    /// `--cost-per-command-us` by default.
    pub(crate) const DEFAULT_PER_COMMAND_US: u64 = 2_000;
    /// `--cost-per-item-us` by default.
    pub(crate) const DEFAULT_PER_ITEM_US: u64 = 250;
    /// The defaults (see the type's documentation for why).
    pub(crate) const DEFAULT: RouterCost = RouterCost {
        per_command: Duration::from_micros(Self::DEFAULT_PER_COMMAND_US),
        per_item: Duration::from_micros(Self::DEFAULT_PER_ITEM_US),
    };
}

/// Simulated routers, router `id` at index `id - 1`.
#[derive(Debug)]
pub(crate) struct Fleet {
    pub(crate) sims: SimFleet,
    pub(crate) specs: Vec<RouterSpec>,
}

impl Fleet {
    /// Starts one simulator per router of `topo`, each answering after `latency`
    /// plus the router's own work, `cost`.
    pub(crate) async fn start(topo: Topology, latency: Duration, cost: RouterCost) -> BoxResult<Fleet> {
        let mut config = SimConfig::new(API_USER, API_PASSWORD);
        config.latency = latency;
        config.cost_per_command = cost.per_command;
        config.cost_per_item = cost.per_item;
        config.identity = "bench".to_owned();
        let n = usize::try_from(topo.routers())?;
        let addr = "127.0.0.1:0".parse().map_err(|e| format!("address: {e}"))?;
        let sims = SimFleet::start(n, config, addr).await?;
        let specs = sims
            .routers()
            .iter()
            .zip(1_i64..)
            .map(|(r, id)| RouterSpec {
                id,
                tenant: topo.tenant_of_router(id),
                name: format!("r{id:03}"),
                address: r.addr().to_string(),
            })
            .collect();
        Ok(Fleet { sims, specs })
    }

    pub(crate) fn handles(&self) -> Vec<SimHandle> {
        self.sims.handles()
    }

    pub(crate) fn handle(&self, router: i64) -> Option<SimHandle> {
        let i = usize::try_from(router - 1).ok()?;
        self.sims.routers().get(i).map(|r| r.handle())
    }

    pub(crate) fn routers(&self) -> Vec<Router> {
        self.specs.iter().map(RouterSpec::to_router).collect()
    }

    /// Total successful logins on every router so far.
    pub(crate) fn logins(&self) -> Vec<u64> {
        self.handles().iter().map(SimHandle::logins).collect()
    }

    pub(crate) fn clear_logs(&self) {
        for h in self.handles() {
            h.clear_command_log();
        }
    }

    pub(crate) async fn shutdown(self) {
        self.sims.shutdown().await;
    }
}

/// How an online subscriber authenticates on its router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Users {
    /// A local hotspot user `u<i>` with our comment (the subscribers the row acts on).
    Local,
    /// No local user: the router asks a RADIUS server (the simulator lets any
    /// user name log in). Used for the crowd of entitled subscribers that only
    /// fill the routers' session tables (see the notes on simulator CPU).
    Radius,
}

/// Puts subscribers online: one session per device (at most `max_devices`) on
/// the home router, with a local hotspot user or not. Routers are filled on two
/// threads. Returns the number of sessions.
pub(crate) fn put_online(
    fleet: &Fleet,
    topo: Topology,
    subs: &[i64],
    max_devices: i64,
    users: Users,
) -> BoxResult<u64> {
    let mut per_router: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for &s in subs {
        per_router.entry(topo.home_router(s)).or_default().push(s);
    }
    let work: Vec<(SimHandle, Vec<i64>)> = per_router
        .into_iter()
        .map(|(r, subs)| {
            fleet
                .handle(r)
                .map(|h| (h, subs))
                .ok_or_else(|| format!("no simulated router {r}"))
        })
        .collect::<Result<_, _>>()?;
    let halves: Vec<Vec<(SimHandle, Vec<i64>)>> = {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for (i, w) in work.into_iter().enumerate() {
            if i % 2 == 0 {
                a.push(w);
            } else {
                b.push(w);
            }
        }
        vec![a, b]
    };
    let results: Vec<Result<u64, String>> = std::thread::scope(|scope| {
        let threads: Vec<_> = halves
            .into_iter()
            .map(|half| {
                scope.spawn(move || -> Result<u64, String> {
                    let mut sessions = 0;
                    for (h, subs) in half {
                        for s in subs {
                            let name = username(s);
                            let comment = format!("isp:sub:{s}");
                            if users == Users::Local {
                                h.add_row("/ip/hotspot/user", &[("name", &name), ("comment", &comment)])
                                    .map_err(|e| format!("adding hotspot user {name}: {e}"))?;
                            }
                            for d in 1..=devices_of(s).min(max_devices) {
                                h.hotspot_login(&name, &mac(s, d), &ip(s, d))
                                    .map_err(|e| format!("hotspot login of {name}: {e}"))?;
                                sessions += 1;
                            }
                        }
                    }
                    Ok(sessions)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err("a fill thread panicked".to_owned()))
            })
            .collect()
    });
    let mut total = 0;
    for r in results {
        total += r?;
    }
    Ok(total)
}

/// Where a row's database is, as the daemon process is told.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum DbLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A database on the throwaway PostgreSQL cluster (trust auth: the URL
    /// holds no password).
    Postgres(String),
    /// A database on the throwaway MariaDB server (no password either).
    Mysql(String),
}

/// A row's database: an SQLite file in a temporary directory, or PostgreSQL.
#[derive(Debug)]
pub(crate) struct Db {
    pub(crate) store: SqlStore,
    pub(crate) location: DbLocation,
}

impl Db {
    /// Creates and migrates an SQLite database; adds the tenants of `topo`.
    pub(crate) async fn create(dir: &Path, name: &str, topo: Topology) -> BoxResult<Db> {
        let path = dir.join(name);
        let store = SqlStore::connect_sqlite(&path).await?;
        Self::prepare(store, DbLocation::Sqlite(path), topo).await
    }

    /// The same on PostgreSQL, in a fresh database at `url`.
    pub(crate) async fn create_postgres(url: String, topo: Topology) -> BoxResult<Db> {
        let store = SqlStore::connect_postgres(&url).await?;
        Self::prepare(store, DbLocation::Postgres(url), topo).await
    }

    /// The same on MariaDB, in a fresh database at `url`.
    pub(crate) async fn create_mysql(url: String, topo: Topology) -> BoxResult<Db> {
        let store = SqlStore::connect_mysql(&url).await?;
        Self::prepare(store, DbLocation::Mysql(url), topo).await
    }

    async fn prepare(store: SqlStore, location: DbLocation, topo: Topology) -> BoxResult<Db> {
        store.migrate().await?;
        let repos = store.repositories();
        for t in 1..=topo.tenants {
            repos
                .tenants
                .upsert(&Tenant {
                    id: TenantId(t),
                    slug: RosName::parse("slug", &format!("t{t:02}"))?,
                    name: format!("Tenant {t}"),
                    time_zone: chrono_tz::Africa::Dar_es_Salaam,
                })
                .await?;
        }
        Ok(Db { store, location })
    }

    /// The SQLite file (rows that only run on SQLite).
    pub(crate) fn path(&self) -> BoxResult<&Path> {
        match &self.location {
            DbLocation::Sqlite(p) => Ok(p),
            DbLocation::Postgres(_) | DbLocation::Mysql(_) => Err("not an SQLite database".into()),
        }
    }

    pub(crate) fn pool(&self) -> BoxResult<&sqlx::SqlitePool> {
        Ok(self.store.sqlite_pool().ok_or("not an SQLite store")?)
    }

    pub(crate) async fn scalar(&self, sql: &str) -> BoxResult<i64> {
        let v: i64 = sqlx::query_scalar(sql).fetch_one(self.pool()?).await?;
        Ok(v)
    }

    /// Closes the pool (the daemon process opens the file itself).
    pub(crate) async fn close(&self) {
        self.store.close().await;
    }
}

/// PostgreSQL's instant for microsecond 0 (times are loaded as microseconds
/// since the epoch, exactly, as SQLite stores them).
const MICROS_EPOCH: &str = "TIMESTAMPTZ '1970-01-01 00:00:00+00'";

/// Who is in the subscribers table and when their access ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Population {
    /// Subscribers in total.
    pub(crate) total: i64,
    /// Ids `1..=expired` expired an hour ago and are still active (awaiting disconnect).
    pub(crate) expired: i64,
    /// The next `expiring` ids expire one after the other, evenly over `spread`
    /// from `first_expiry` (each at a pseudo-random point of its slot).
    pub(crate) expiring: i64,
    pub(crate) first_expiry: DateTime<Utc>,
    pub(crate) spread: Duration,
    /// The rest are paid for two days or more from `now`.
    pub(crate) now: DateTime<Utc>,
}

impl Population {
    /// The entitled ids (neither expired nor expiring during the run).
    pub(crate) fn entitled(&self) -> std::ops::RangeInclusive<i64> {
        (self.expired + self.expiring + 1)..=self.total
    }

    pub(crate) fn expiring_ids(&self) -> std::ops::RangeInclusive<i64> {
        (self.expired + 1)..=(self.expired + self.expiring)
    }

    /// `paid_until` of subscriber `sub`, as loaded.
    pub(crate) fn paid_until(&self, sub: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.paid_until_micros(sub)).unwrap_or(self.now)
    }

    fn step_micros(&self) -> i64 {
        let spread = i64::try_from(self.spread.as_micros()).unwrap_or(i64::MAX);
        (spread / self.expiring.max(1)).max(1)
    }

    fn paid_until_micros(&self, sub: i64) -> i64 {
        let now = self.now.timestamp_micros();
        if sub <= self.expired {
            now - 3_600_000_000 - sub * 1000
        } else if sub <= self.expired + self.expiring {
            let k = sub - self.expired - 1;
            let step = self.step_micros();
            self.first_expiry.timestamp_micros() + k * step + (k * 7919) % step
        } else {
            now + 172_800_000_000 + (sub % 86_400) * 1_000_000
        }
    }

    /// Loads the subscribers and their devices (every device last seen on the
    /// home router), in two statements.
    pub(crate) async fn load(&self, db: &Db, topo: Topology) -> BoxResult<()> {
        if let Some(pg) = db.store.postgres_pool() {
            return self.load_postgres(pg, topo).await;
        }
        if let Some(my) = db.store.mysql_pool() {
            return self.load_mysql(my, topo).await;
        }
        let pool = db.pool()?;
        let series =
            "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1) SELECT i FROM s)";
        let subs = format!(
            "INSERT INTO subscribers (id, tenant_id, phone, username, paid_until, active, attempts) \
             SELECT i, 1 + (i - 1) % {tenants}, '+2557' || printf('%08d', i), 'u' || i, \
               CASE WHEN i <= $2 THEN $4 - 3600000000 - i * 1000 \
                    WHEN i <= $2 + $3 THEN $5 + (i - $2 - 1) * $6 + ((i - $2 - 1) * 7919) % $6 \
                    ELSE $4 + 172800000000 + (i % 86400) * 1000000 END, 1, 0 \
             FROM {series}",
            tenants = topo.tenants
        );
        sqlx::query(&subs)
            .bind(self.total)
            .bind(self.expired)
            .bind(self.expiring)
            .bind(self.now.timestamp_micros())
            .bind(self.first_expiry.timestamp_micros())
            .bind(self.step_micros())
            .execute(pool)
            .await?;
        let devices = format!(
            "INSERT INTO devices (subscriber_id, mac, router_id, last_seen, active) \
             SELECT i, printf('02:%02X:%02X:%02X:%02X:%02X', (i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, \
               i & 255, d), {home}, $2, 1 \
             FROM {series} JOIN (SELECT 1 AS d UNION ALL SELECT 2) WHERE d = 1 OR i % 2 = 0",
            home = topo.home_router_sql()
        );
        sqlx::query(&devices)
            .bind(self.total)
            .bind(self.now.timestamp_micros())
            .execute(pool)
            .await?;
        Ok(())
    }

    /// [`load`](Self::load) in PostgreSQL's dialect: the same rows.
    async fn load_postgres(&self, pool: &sqlx::PgPool, topo: Topology) -> BoxResult<()> {
        let subs = format!(
            "INSERT INTO subscribers (id, tenant_id, phone, username, paid_until, active, attempts) \
             SELECT i, 1 + (i - 1) % {tenants}, '+2557' || lpad(i::text, 8, '0'), 'u' || i, \
               {MICROS_EPOCH} + (CASE WHEN i <= $2 THEN $4 - 3600000000 - i * 1000 \
                    WHEN i <= $2 + $3 THEN $5 + (i - $2 - 1) * $6 + ((i - $2 - 1) * 7919) % $6 \
                    ELSE $4 + 172800000000 + (i % 86400) * 1000000 END) * INTERVAL '1 microsecond', TRUE, 0 \
             FROM generate_series(1::bigint, $1) AS s(i)",
            tenants = topo.tenants
        );
        sqlx::query(&subs)
            .bind(self.total)
            .bind(self.expired)
            .bind(self.expiring)
            .bind(self.now.timestamp_micros())
            .bind(self.first_expiry.timestamp_micros())
            .bind(self.step_micros())
            .execute(pool)
            .await?;
        let hex = |shift: u32| format!("upper(lpad(to_hex((i >> {shift}) & 255), 2, '0'))");
        let devices = format!(
            "INSERT INTO devices (subscriber_id, mac, router_id, last_seen, active) \
             SELECT i, '02:' || {a} || ':' || {b} || ':' || {c} || ':' || {d} || ':' || upper(lpad(to_hex(d), 2, '0')), \
               {home}, $2, TRUE \
             FROM generate_series(1::bigint, $1) AS s(i) JOIN (VALUES (1), (2)) AS k(d) ON d = 1 OR i % 2 = 0",
            a = hex(24),
            b = hex(16),
            c = hex(8),
            d = hex(0),
            home = topo.home_router_sql()
        );
        sqlx::query(&devices)
            .bind(self.total)
            .bind(self.now)
            .execute(pool)
            .await?;
        sqlx::query("ANALYZE").execute(pool).await?;
        Ok(())
    }

    /// [`load`](Self::load) in MySQL's dialect: the same rows. The series is a
    /// cross join of digit tables (a recursive CTE stops at MariaDB's
    /// `max_recursive_iterations`, 1,000 by default); times are microseconds
    /// after the epoch as `DATETIME(6)` in UTC, as the repositories store them.
    async fn load_mysql(&self, pool: &sqlx::MySqlPool, topo: Topology) -> BoxResult<()> {
        let digits = self.total.max(1).to_string().len();
        let mut series = String::from("(SELECT ");
        series.push_str(
            &(0..digits)
                .map(|k| format!("d{k}.n * {}", 10_i64.pow(k as u32)))
                .collect::<Vec<_>>()
                .join(" + "),
        );
        series.push_str(" + 1 AS i FROM ");
        series.push_str(
            &(0..digits)
                .map(|k| {
                    format!(
                        "(SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 \
                         UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) AS d{k}"
                    )
                })
                .collect::<Vec<_>>()
                .join(" CROSS JOIN "),
        );
        series.push_str(") AS s");
        let at =
            |micros: &str| format!("TIMESTAMPADD(MICROSECOND, {micros}, TIMESTAMP '1970-01-01 00:00:00')");
        let subs = format!(
            "INSERT INTO subscribers (id, tenant_id, phone, username, paid_until, active, attempts) \
             SELECT i, 1 + (i - 1) % {tenants}, CONCAT('+2557', LPAD(i, 8, '0')), CONCAT('u', i), {paid_until}, TRUE, 0 \
             FROM {series} WHERE i <= ?",
            tenants = topo.tenants,
            paid_until = at("CASE WHEN i <= ? THEN ? - 3600000000 - i * 1000 \
                    WHEN i <= ? + ? THEN ? + (i - ? - 1) * ? + ((i - ? - 1) * 7919) % ? \
                    ELSE ? + 172800000000 + (i % 86400) * 1000000 END"),
        );
        let (expired, expiring, now, first, step) = (
            self.expired,
            self.expiring,
            self.now.timestamp_micros(),
            self.first_expiry.timestamp_micros(),
            self.step_micros(),
        );
        sqlx::query(&subs)
            .bind(expired)
            .bind(now)
            .bind(expired)
            .bind(expiring)
            .bind(first)
            .bind(expired)
            .bind(step)
            .bind(expired)
            .bind(step)
            .bind(now)
            .bind(self.total)
            .execute(pool)
            .await?;
        let hex = |shift: u32| format!("LPAD(HEX((i >> {shift}) & 255), 2, '0')");
        let home = format!(
            "(((i - 1) % {t}) * {r} + ((i - 1) DIV {t}) % {r} + 1)",
            t = topo.tenants,
            r = topo.routers_per_tenant
        );
        let devices = format!(
            "INSERT INTO devices (subscriber_id, mac, router_id, last_seen, active) \
             SELECT i, CONCAT('02:', {a}, ':', {b}, ':', {c}, ':', {d}, ':', LPAD(HEX(k.d), 2, '0')), {home}, {seen}, TRUE \
             FROM {series} JOIN (SELECT 1 AS d UNION ALL SELECT 2) AS k ON k.d = 1 OR i % 2 = 0 WHERE i <= ?",
            a = hex(24),
            b = hex(16),
            c = hex(8),
            d = hex(0),
            seen = at("?"),
        );
        sqlx::query(&devices)
            .bind(now)
            .bind(self.total)
            .execute(pool)
            .await?;
        sqlx::query("ANALYZE TABLE subscribers, devices")
            .execute(pool)
            .await?;
        Ok(())
    }

    /// Moves the expiring subscribers' `paid_until` so that the first expires at
    /// `first_expiry` (loading a million rows takes a while; the clock starts after).
    pub(crate) async fn retime(&mut self, db: &Db, first_expiry: DateTime<Utc>) -> BoxResult<()> {
        self.first_expiry = first_expiry;
        if let Some(pg) = db.store.postgres_pool() {
            sqlx::query(&format!(
                "UPDATE subscribers SET paid_until = {MICROS_EPOCH} + \
                   ($3 + (id - $1 - 1) * $4 + ((id - $1 - 1) * 7919) % $4) * INTERVAL '1 microsecond' \
                 WHERE id > $1 AND id <= $1 + $2"
            ))
            .bind(self.expired)
            .bind(self.expiring)
            .bind(first_expiry.timestamp_micros())
            .bind(self.step_micros())
            .execute(pg)
            .await?;
            return Ok(());
        }
        if let Some(my) = db.store.mysql_pool() {
            sqlx::query(
                "UPDATE subscribers SET paid_until = TIMESTAMPADD(MICROSECOND, \
                   ? + (id - ? - 1) * ? + ((id - ? - 1) * 7919) % ?, TIMESTAMP '1970-01-01 00:00:00') \
                 WHERE id > ? AND id <= ? + ?",
            )
            .bind(first_expiry.timestamp_micros())
            .bind(self.expired)
            .bind(self.step_micros())
            .bind(self.expired)
            .bind(self.step_micros())
            .bind(self.expired)
            .bind(self.expired)
            .bind(self.expiring)
            .execute(my)
            .await?;
            return Ok(());
        }
        sqlx::query(
            "UPDATE subscribers SET paid_until = $3 + (id - $1 - 1) * $4 + ((id - $1 - 1) * 7919) % $4 \
             WHERE id > $1 AND id <= $1 + $2",
        )
        .bind(self.expired)
        .bind(self.expiring)
        .bind(first_expiry.timestamp_micros())
        .bind(self.step_micros())
        .execute(db.pool()?)
        .await?;
        Ok(())
    }

    /// Entitled subscribers that are online too: one in ten, at most `cap` per
    /// router (a router with a thousand users online is a busy site). Every block
    /// of `topo.routers()` consecutive ids has one subscriber per router; block
    /// `b` gives the ones at offsets `b % 10`, `b % 10 + 10`, ..., so that over ten
    /// blocks every router has its share (every tenth id would sit on a tenth of
    /// the routers: ids and routers share the factor of the tenant count).
    pub(crate) fn background_online(&self, topo: Topology, cap: usize) -> Vec<i64> {
        let mut per_router: BTreeMap<i64, usize> = BTreeMap::new();
        let block = topo.routers().max(1);
        self.entitled()
            .filter(|i| (i - 1) % 10 == ((i - 1) / block) % 10)
            .filter(|i| {
                let n = per_router.entry(topo.home_router(*i)).or_default();
                *n += 1;
                *n <= cap
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_spread_over_tenants_and_their_routers() {
        let t = Topology::DEFAULT;
        assert_eq!(t.routers(), 100);
        let mut count = BTreeMap::new();
        for i in 1..=10_000 {
            let r = t.home_router(i);
            assert_eq!(t.tenant_of_router(r), t.tenant_of(i), "sub {i} router {r}");
            *count.entry(r).or_insert(0) += 1;
        }
        assert_eq!(count.len(), 100);
        assert!(count.values().all(|n| *n == 100));
        assert_eq!(devices_of(2) + devices_of(3), 3);

        // Background sessions: one in ten, on every router alike.
        let pop = Population {
            total: 100_000,
            expired: 100,
            expiring: 900,
            first_expiry: Utc::now(),
            spread: Duration::from_secs(60),
            now: Utc::now(),
        };
        let online = pop.background_online(t, 1_000);
        let mut per_router: BTreeMap<i64, usize> = BTreeMap::new();
        for i in &online {
            assert!(pop.entitled().contains(i));
            *per_router.entry(t.home_router(*i)).or_default() += 1;
        }
        assert_eq!(online.len(), 9_900);
        assert_eq!(per_router.len(), 100, "every router has background sessions");
        assert!(
            per_router.values().all(|n| (98..=100).contains(n)),
            "{per_router:?}"
        );
        let capped = pop.background_online(t, 10);
        assert_eq!(capped.len(), 1_000);
        assert_eq!(mac(258, 2), "02:00:00:01:02:02");
        assert_eq!(sub_of_username(&username(42)), Some(42));
        assert_eq!(sub_of_username("admin"), None);
    }

    #[tokio::test]
    async fn the_sql_load_matches_the_rust_mapping() -> BoxResult<()> {
        let dir = tempfile::tempdir()?;
        let db = Db::create(dir.path(), "t.sqlite", SMALL).await?;
        load_matches_the_rust_mapping(&db).await
    }

    #[tokio::test]
    async fn the_postgres_load_matches_the_rust_mapping() -> BoxResult<()> {
        let Some(url) = crate::pg::fresh_database().await else {
            return Ok(());
        };
        let db = Db::create_postgres(url, SMALL).await?;
        assert!(matches!(db.location, DbLocation::Postgres(_)));
        load_matches_the_rust_mapping(&db).await
    }

    #[tokio::test]
    async fn the_mariadb_load_matches_the_rust_mapping() -> BoxResult<()> {
        let Some(url) = crate::mariadb::fresh_database().await else {
            return Ok(());
        };
        let db = Db::create_mysql(url, SMALL).await?;
        assert!(matches!(db.location, DbLocation::Mysql(_)));
        load_matches_the_rust_mapping(&db).await
    }

    const SMALL: Topology = Topology {
        tenants: 3,
        routers_per_tenant: 2,
    };

    async fn load_matches_the_rust_mapping(db: &Db) -> BoxResult<()> {
        let topo = SMALL;
        // The database keeps microseconds; `Utc::now()` may carry nanoseconds.
        let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
        let mut pop = Population {
            total: 50,
            expired: 5,
            expiring: 10,
            first_expiry: now + chrono::Duration::seconds(10),
            spread: Duration::from_secs(10),
            now,
        };
        pop.load(db, topo).await?;
        let repos = db.store.repositories();
        for i in [1_i64, 5, 6, 15, 16, 50] {
            let s = repos.subscribers.get(isp_core::domain::SubscriberId(i)).await?;
            assert_eq!(s.tenant_id, TenantId(topo.tenant_of(i)));
            assert_eq!(s.paid_until, pop.paid_until(i), "sub {i}");
            assert_eq!(s.username.as_str(), username(i));
            let devices = repos.devices.active_of(&[s.id]).await?;
            assert_eq!(devices.len() as i64, devices_of(i));
            for d in devices {
                assert_eq!(d.router_id, Some(RouterId(topo.home_router(i))));
                assert_eq!(d.last_seen, now);
                assert!((1..=2).any(|k| d.mac.to_string().eq_ignore_ascii_case(&mac(i, k))));
            }
        }
        assert_eq!(repos.subscribers.list_expired(now, 100).await?.len(), 5);
        let expiring: Vec<_> = pop.expiring_ids().map(|i| pop.paid_until(i)).collect();
        assert!(expiring.windows(2).all(|w| w[0] < w[1]));
        assert!(expiring
            .iter()
            .all(|t| *t >= pop.first_expiry && *t < pop.first_expiry + chrono::Duration::seconds(10)));

        pop.retime(db, now + chrono::Duration::seconds(100)).await?;
        for i in pop.expiring_ids() {
            let s = repos.subscribers.get(isp_core::domain::SubscriberId(i)).await?;
            assert_eq!(s.paid_until, pop.paid_until(i), "sub {i} after retime");
        }
        db.close().await;
        Ok(())
    }
}
