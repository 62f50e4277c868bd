//! The repositories, written once for both databases.
//!
//! [`sql_repositories!`] is expanded inside each driver module (`sqlite`,
//! `postgres`), where these names resolve to the driver's own items:
//!
//! | name | what |
//! |---|---|
//! | `DbPool`, `DbRow` | the sqlx pool and row types |
//! | `ts(DateTime<Utc>)` | an instant as the driver binds it (micros / TIMESTAMPTZ) |
//! | `Cols::new(&row, table)` | the driver's [`Fields`](crate::row::Fields) over a row |
//! | `map_sqlx_error(entity, err)` | the driver's one error mapping |
//! | `begin_write(&pool)` | a write transaction (`BEGIN IMMEDIATE` on SQLite) |
//!
//! The SQL is shared: both databases take `$N` parameters, `RETURNING`,
//! `ON CONFLICT`, partial indexes and `TRUE`/`FALSE`. What differs is passed in:
//! `lock` is appended to every claim's inner `SELECT` (`FOR UPDATE SKIP LOCKED`
//! on PostgreSQL; nothing on SQLite, where one `UPDATE ... RETURNING` statement
//! holds the single write lock for its whole run), and `open`/`close` wrap that
//! inner `SELECT` (`IN (...)` on SQLite; `= ANY(ARRAY(...))` on PostgreSQL, which
//! runs the inner `SELECT` once and then fetches each row by primary key, where
//! `IN` may be planned as a hash join over the whole table).
//!
//! Every claim is one statement:
//! `UPDATE t SET lease = claimant WHERE id <open> SELECT id ... due and free ORDER BY
//! deadline, id LIMIT n <lock> <close> AND <free> RETURNING ...`. The repeated "free"
//! test in the outer `WHERE` is re-checked by PostgreSQL on the newest row
//! version if a concurrent claimant got there first, so an item is never leased
//! twice even without the lock; the lock just makes claimants skip each other's
//! rows instead of waiting for them.

/// Column lists, shared by every query of a table.
macro_rules! cols {
    (tenants) => {
        "id, slug, name, time_zone"
    };
    (subscribers) => {
        "id, tenant_id, phone, username, paid_until, active, disconnected_at, attempts, \
         lease_holder, lease_until"
    };
    (devices) => {
        "id, subscriber_id, mac, router_id, last_seen, active"
    };
    (vouchers) => {
        "id, tenant_id, router_id, code, plan_id, status, activation_deadline, purchase_deadline, \
         duration_ms, started_at, expected_end, expired_reason, expired_at, removed_from_router, \
         lease_holder, lease_until, attempts"
    };
    (plans) => {
        "id, tenant_id, name, price_micros, currency, duration_ms, rate_limit"
    };
    (customers) => {
        "id, tenant_id, name, phone"
    };
    (services) => {
        "id, tenant_id, customer_id, router_id, plan_id, status, connection_kind, pppoe_username, \
         pppoe_password, pppoe_profile, static_address, next_billing_date, billing_day, next_charge_on, \
         provisioned, provisioned_at, deprovisioned_at, lease_holder, lease_until, attempts"
    };
    (ledger) => {
        "id, customer_id, service_id, kind, amount_micros, currency, period_start, key, created_at"
    };
    (notices) => {
        "id, tenant_id, recipient, kind, deadline, body, status, attempts, created_at, sent_at, \
         lease_holder, lease_until"
    };
    (audit_events) => {
        "at, tenant_id, action, subject, router_id, outcome, reason"
    };
    (router_status) => {
        "router_id, online, checked_at, changed_at, clock_skew_secs, version, last_error"
    };
}

/// "The lease is free at `$n`."
macro_rules! free {
    ($n:literal) => {
        concat!("(lease_until IS NULL OR lease_until <= $", $n, ")")
    };
}

/// The services that need provisioning or deprovisioning for `today` ($2),
/// free at $3, first $4 by (next_billing_date, id): three index range scans
/// (not provisioned but should be; provisioned but not active; provisioned but
/// overdue) merged.
macro_rules! provisioning_ids {
    () => {
        concat!(
            "SELECT id FROM (",
            "SELECT id, next_billing_date FROM (SELECT id, next_billing_date FROM services ",
            "WHERE tenant_id = $1 AND provisioned = FALSE AND status = 'active' AND next_billing_date >= $2 AND ",
            free!(3),
            " ORDER BY next_billing_date, id LIMIT $4) AS a ",
            "UNION ALL ",
            "SELECT id, next_billing_date FROM (SELECT id, next_billing_date FROM services ",
            "WHERE tenant_id = $1 AND provisioned AND status <> 'active' AND ",
            free!(3),
            " ORDER BY next_billing_date, id LIMIT $4) AS b ",
            "UNION ALL ",
            "SELECT id, next_billing_date FROM (SELECT id, next_billing_date FROM services ",
            "WHERE tenant_id = $1 AND provisioned = TRUE AND status = 'active' AND next_billing_date < $2 AND ",
            free!(3),
            " ORDER BY next_billing_date, id LIMIT $4) AS c",
            ") AS due ORDER BY next_billing_date, id LIMIT $4"
        )
    };
}

/// Stamps out the twelve repositories for the driver module it is expanded in.
macro_rules! sql_repositories {
    (lock = $lock:literal, open = $open:literal, close = $close:literal) => {
        /// The repositories of this driver.
        pub(crate) mod repos {
        use std::sync::Arc;

        use async_trait::async_trait;
        use chrono::{DateTime, NaiveDate, Utc};
        use futures::TryStreamExt as _;
        use sqlx::{QueryBuilder, Row};

        use isp_core::domain::*;
        use isp_core::ports::*;
        use isp_core::{Error, Result};

        use crate::row::{self, Fields as _};

        use super::{begin_write, map_sqlx_error, plan_text, ts, Cols, Db, DbPool, DbRow, EXPLAIN_PREFIX};

        // The due-work statements (explained by `explain_due_work`).
        pub(crate) const LIST_EXPIRED: &str = concat!(
                    "SELECT ",
                    cols!(subscribers),
                    " FROM subscribers WHERE active AND paid_until <= $1 ORDER BY paid_until, id LIMIT $2"
                );

        pub(crate) const CLAIM_EXPIRED: &str = concat!(
                    "UPDATE subscribers SET lease_holder = $1, lease_until = $2 WHERE id ",
            $open,
                    "SELECT id FROM subscribers WHERE active AND paid_until <= $3 AND ",
                    free!(3),
                    " ORDER BY paid_until, id LIMIT $4",
                    $lock,
                    $close,
                    " AND ",
                    free!(3),
                    " RETURNING ",
                    cols!(subscribers)
                );

        pub(crate) const EXPIRING_BETWEEN: &str = concat!(
                    "SELECT ",
                    cols!(subscribers),
                    " FROM subscribers WHERE active AND paid_until > $1 AND paid_until <= $2 \
                     ORDER BY paid_until, id LIMIT $3"
                );

        pub(crate) const LIST_DUE_VOUCHERS: &str = concat!(
                    "SELECT ",
                    cols!(vouchers),
                    " FROM vouchers WHERE deadline IS NOT NULL AND deadline <= $1 ORDER BY deadline, id LIMIT $2"
                );

        pub(crate) const CLAIM_DUE_VOUCHERS: &str = concat!(
                    "UPDATE vouchers SET lease_holder = $1, lease_until = $2 WHERE id ",
            $open,
                    "SELECT id FROM vouchers WHERE deadline IS NOT NULL AND deadline <= $3 AND ",
                    free!(3),
                    " ORDER BY deadline, id LIMIT $4",
                    $lock,
                    $close,
                    " AND ",
                    free!(3),
                    " RETURNING ",
                    cols!(vouchers)
                );

        pub(crate) const LIST_PROVISIONING: &str = concat!(
                    "SELECT ",
                    cols!(services),
                    " FROM services WHERE id ",
                    $open,
                    provisioning_ids!(),
                    $close,
                    " ORDER BY next_billing_date, id"
                );

        pub(crate) const CLAIM_PROVISIONING: &str = concat!(
                    "UPDATE services SET lease_holder = $5, lease_until = $6 WHERE id ",
            $open,
                    "SELECT id FROM services WHERE id ",
                    $open,
                    provisioning_ids!(),
                    $close,
                    " AND ",
                    free!(3),
                    " ORDER BY next_billing_date, id LIMIT $4",
                    $lock,
                    $close,
                    " AND ",
                    free!(3),
                    " RETURNING ",
                    cols!(services)
                );

        pub(crate) const CLAIM_BILLABLE: &str = concat!(
                    "UPDATE services SET lease_holder = $5, lease_until = $6 WHERE id ",
            $open,
                    "SELECT id FROM services WHERE tenant_id = $1 AND status = 'active' AND next_charge_on <= $2 AND ",
                    free!(3),
                    " ORDER BY next_charge_on, id LIMIT $4",
                    $lock,
                    $close,
                    " AND ",
                    free!(3),
                    " RETURNING ",
                    cols!(services)
                );

        pub(crate) const CLAIM_PENDING_NOTICES: &str = concat!(
                    "UPDATE notices SET lease_holder = $1, lease_until = $2 WHERE id ",
            $open,
                    "SELECT id FROM notices WHERE status = 'pending' AND (lease_holder IS NULL OR ",
                    "(lease_holder = $5 AND lease_until <= $3)) ORDER BY created_at, id LIMIT $4",
                    $lock,
                    $close,
                    " AND (lease_holder IS NULL OR (lease_holder = $5 AND lease_until <= $3)) RETURNING ",
                    cols!(notices)
                );

        pub(crate) const NEXT_EXPIRY: &str = "SELECT paid_until FROM subscribers WHERE active AND paid_until > $1 \
                     ORDER BY paid_until LIMIT 1";

        pub(crate) const NEXT_VOUCHER_DEADLINE: &str = "SELECT deadline FROM vouchers WHERE deadline IS NOT NULL AND deadline > $1 \
                     ORDER BY deadline LIMIT 1";


        /// Explains every due-work statement with the parameters a job would give.
        pub(crate) async fn explain_due_work(
            pool: &DbPool,
            now: DateTime<Utc>,
            tenant: TenantId,
            today: NaiveDate,
        ) -> Result<Vec<crate::QueryPlan>> {
            let map = |e| map_sqlx_error("query plan", e);
            let mut conn = pool.acquire().await.map_err(map)?;
            let holder = "explain";
            let until = now + chrono::Duration::minutes(5);
            let lim = 500_i64;
            let tenant = tenant.0;
            let mut out = Vec::new();
            let mut push = |name: &'static str, sql: &'static str, rows: Vec<DbRow>| -> Result<()> {
                out.push(crate::QueryPlan {
                    name,
                    sql,
                    plan: plan_text(&rows)?,
                });
                Ok(())
            };
            let q = |sql: &str| format!("{EXPLAIN_PREFIX}{sql}");

            let sql = q(LIST_EXPIRED);
            let rows = sqlx::query(&sql).bind(ts(now)).bind(lim).fetch_all(&mut *conn).await.map_err(map)?;
            push("subscribers.list_expired", LIST_EXPIRED, rows)?;
            let sql = q(CLAIM_EXPIRED);
            let rows = sqlx::query(&sql)
                .bind(holder)
                .bind(ts(until))
                .bind(ts(now))
                .bind(lim)
                .fetch_all(&mut *conn)
                .await
                .map_err(map)?;
            push("subscribers.claim_expired", CLAIM_EXPIRED, rows)?;
            let sql = q(EXPIRING_BETWEEN);
            let rows = sqlx::query(&sql)
                .bind(ts(now))
                .bind(ts(until))
                .bind(lim)
                .fetch_all(&mut *conn)
                .await
                .map_err(map)?;
            push("subscribers.expiring_between", EXPIRING_BETWEEN, rows)?;
            let sql = q(NEXT_EXPIRY);
            let rows = sqlx::query(&sql).bind(ts(now)).fetch_all(&mut *conn).await.map_err(map)?;
            push("subscribers.next_expiry_after", NEXT_EXPIRY, rows)?;

            let sql = q(LIST_DUE_VOUCHERS);
            let rows = sqlx::query(&sql).bind(ts(now)).bind(lim).fetch_all(&mut *conn).await.map_err(map)?;
            push("vouchers.list_due", LIST_DUE_VOUCHERS, rows)?;
            let sql = q(CLAIM_DUE_VOUCHERS);
            let rows = sqlx::query(&sql)
                .bind(holder)
                .bind(ts(until))
                .bind(ts(now))
                .bind(lim)
                .fetch_all(&mut *conn)
                .await
                .map_err(map)?;
            push("vouchers.claim_due", CLAIM_DUE_VOUCHERS, rows)?;
            let sql = q(NEXT_VOUCHER_DEADLINE);
            let rows = sqlx::query(&sql).bind(ts(now)).fetch_all(&mut *conn).await.map_err(map)?;
            push("vouchers.next_deadline_after", NEXT_VOUCHER_DEADLINE, rows)?;

            let sql = q(LIST_PROVISIONING);
            let rows = sqlx::query(&sql)
                .bind(tenant)
                .bind(today)
                .bind(ts(DateTime::<Utc>::MAX_UTC))
                .bind(lim)
                .fetch_all(&mut *conn)
                .await
                .map_err(map)?;
            push("services.list_provisioning", LIST_PROVISIONING, rows)?;
            let sql = q(CLAIM_PROVISIONING);
            let rows = sqlx::query(&sql)
                .bind(tenant)
                .bind(today)
                .bind(ts(now))
                .bind(lim)
                .bind(holder)
                .bind(ts(until))
                .fetch_all(&mut *conn)
                .await
                .map_err(map)?;
            push("services.claim_provisioning", CLAIM_PROVISIONING, rows)?;
            let sql = q(CLAIM_BILLABLE);
            let rows = sqlx::query(&sql)
                .bind(tenant)
                .bind(today)
                .bind(ts(now))
                .bind(lim)
                .bind(holder)
                .bind(ts(until))
                .fetch_all(&mut *conn)
                .await
                .map_err(map)?;
            push("services.claim_billable", CLAIM_BILLABLE, rows)?;

            let sql = q(CLAIM_PENDING_NOTICES);
            let rows = sqlx::query(&sql)
                .bind(holder)
                .bind(ts(until))
                .bind(ts(now))
                .bind(lim)
                .bind(RETRY_HOLDER)
                .fetch_all(&mut *conn)
                .await
                .map_err(map)?;
            push("notices.claim_pending", CLAIM_PENDING_NOTICES, rows)?;
            Ok(out)
        }

        /// Every repository over one pool.
        pub(crate) fn all(pool: &DbPool) -> Repositories {
            let p = || pool.clone();
            Repositories {
                tenants: Arc::new(Tenants { pool: p() }),
                subscribers: Arc::new(Subscribers { pool: p() }),
                devices: Arc::new(Devices { pool: p() }),
                vouchers: Arc::new(Vouchers { pool: p() }),
                plans: Arc::new(Plans { pool: p() }),
                customers: Arc::new(Customers { pool: p() }),
                services: Arc::new(Services { pool: p() }),
                ledger: Arc::new(Ledger { pool: p() }),
                notices: Arc::new(Notices { pool: p() }),
                audit: Arc::new(Audit { pool: p() }),
                router_status: Arc::new(RouterStatuses { pool: p() }),
                leases: Arc::new(Leases { pool: p() }),
            }
        }

        fn decode_all<T>(
            rows: Vec<DbRow>,
            table: &'static str,
            f: impl Fn(&Cols<'_>) -> Result<T>,
        ) -> Result<Vec<T>> {
            rows.iter().map(|r| f(&Cols::new(r, table))).collect()
        }

        /// `Ok(false)` when the row exists (a guard refused the change), else `NotFound`.
        async fn guard_refused(
            pool: &DbPool,
            entity: &'static str,
            exists_sql: &'static str,
            id: i64,
        ) -> Result<bool> {
            let found = sqlx::query(exists_sql)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(|e| map_sqlx_error(entity, e))?;
            match found {
                Some(_) => Ok(false),
                None => Err(Error::not_found(entity, id)),
            }
        }

        /// Items per statement of a batch write (bind parameters stay far
        /// below both databases' limits).
        const BATCH_CHUNK: usize = 500;

        fn count_of(row: &DbRow, field: &str) -> Result<u64> {
            let n: i64 = row
                .try_get(0)
                .map_err(|e| Error::invalid(field, "(undecodable)", e.to_string()))?;
            row::count(field, n)
        }

        // ---------------------------------------------------------------- tenants

        /// Tenants.
        #[derive(Debug, Clone)]
        pub(crate) struct Tenants {
            pool: DbPool,
        }

        #[async_trait]
        impl TenantRepo for Tenants {
            async fn upsert(&self, t: &Tenant) -> Result<()> {
                sqlx::query(
                    "INSERT INTO tenants (id, slug, name, time_zone) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, name = excluded.name, \
                     time_zone = excluded.time_zone",
                )
                .bind(t.id.0)
                .bind(t.slug.as_str())
                .bind(t.name.as_str())
                .bind(t.time_zone.name())
                .execute(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("tenant", e))?;
                Ok(())
            }

            async fn get(&self, id: TenantId) -> Result<Tenant> {
                let row = sqlx::query(concat!("SELECT ", cols!(tenants), " FROM tenants WHERE id = $1"))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error("tenant", e))?
                    .ok_or_else(|| Error::not_found("tenant", id))?;
                row::tenant(&Cols::new(&row, "tenants"))
            }

            async fn list(&self) -> Result<Vec<Tenant>> {
                let rows = sqlx::query(concat!("SELECT ", cols!(tenants), " FROM tenants ORDER BY id"))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error("tenant", e))?;
                decode_all(rows, "tenants", |c| row::tenant(c))
            }
        }

        // ------------------------------------------------------------ subscribers

        /// Hotspot subscribers.
        #[derive(Debug, Clone)]
        pub(crate) struct Subscribers {
            pool: DbPool,
        }

        const SUBSCRIBER_EXISTS: &str = "SELECT 1 FROM subscribers WHERE id = $1";

        impl Subscribers {
            fn one(row: Option<DbRow>, id: SubscriberId) -> Result<Subscriber> {
                let row = row.ok_or_else(|| Error::not_found("subscriber", id))?;
                row::subscriber(&Cols::new(&row, "subscribers"))
            }

            fn many(rows: Vec<DbRow>) -> Result<Vec<Subscriber>> {
                decode_all(rows, "subscribers", |c| row::subscriber(c))
            }
        }

        #[async_trait]
        impl SubscriberRepo for Subscribers {
            async fn insert(&self, new: &NewSubscriber) -> Result<Subscriber> {
                let row = sqlx::query(concat!(
                    "INSERT INTO subscribers (tenant_id, phone, username, paid_until, active, attempts) \
                     VALUES ($1, $2, $3, $4, TRUE, 0) RETURNING ",
                    cols!(subscribers)
                ))
                .bind(new.tenant_id.0)
                .bind(new.phone.as_str())
                .bind(new.username.as_str())
                .bind(ts(new.paid_until))
                .fetch_one(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("subscriber", e))?;
                row::subscriber(&Cols::new(&row, "subscribers"))
            }

            async fn get(&self, id: SubscriberId) -> Result<Subscriber> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    cols!(subscribers),
                    " FROM subscribers WHERE id = $1"
                ))
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("subscriber", e))?;
                Self::one(row, id)
            }

            async fn find_by_phone(&self, tenant: TenantId, phone: &PhoneNumber) -> Result<Option<Subscriber>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    cols!(subscribers),
                    " FROM subscribers WHERE tenant_id = $1 AND phone = $2"
                ))
                .bind(tenant.0)
                .bind(phone.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("subscriber", e))?;
                row.map(|r| row::subscriber(&Cols::new(&r, "subscribers"))).transpose()
            }

            async fn extend(&self, id: SubscriberId, paid_until: DateTime<Utc>) -> Result<Subscriber> {
                let row = sqlx::query(concat!(
                    "UPDATE subscribers SET paid_until = $2, active = TRUE, disconnected_at = NULL, \
                     attempts = 0, lease_holder = NULL, lease_until = NULL WHERE id = $1 RETURNING ",
                    cols!(subscribers)
                ))
                .bind(id.0)
                .bind(ts(paid_until))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("subscriber", e))?;
                Self::one(row, id)
            }

            async fn list_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Subscriber>> {
                let rows = sqlx::query(LIST_EXPIRED)
                .bind(ts(now))
                .bind(row::limit(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("subscriber", e))?;
                Self::many(rows)
            }

            async fn claim_expired(&self, claim: &Claim) -> Result<Vec<Subscriber>> {
                let rows = sqlx::query(CLAIM_EXPIRED)
                .bind(claim.holder.as_str())
                .bind(ts(claim.until))
                .bind(ts(claim.now))
                .bind(row::limit(claim.limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("subscriber", e))?;
                let mut out = Self::many(rows)?;
                out.sort_by(|a, b| a.paid_until.cmp(&b.paid_until).then(a.id.cmp(&b.id)));
                Ok(out)
            }

            async fn expiring_between(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
                limit: usize,
            ) -> Result<Vec<Subscriber>> {
                let rows = sqlx::query(EXPIRING_BETWEEN)
                .bind(ts(from))
                .bind(ts(to))
                .bind(row::limit(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("subscriber", e))?;
                Self::many(rows)
            }

            async fn complete_expiry(
                &self,
                id: SubscriberId,
                holder: &str,
                paid_until_seen: DateTime<Utc>,
                at: DateTime<Utc>,
            ) -> Result<bool> {
                let map = |e| map_sqlx_error("subscriber", e);
                let mut tx = begin_write(&self.pool).await.map_err(map)?;
                let released = sqlx::query(
                    "UPDATE subscribers SET lease_holder = NULL, lease_until = NULL \
                     WHERE id = $1 AND lease_holder = $2",
                )
                .bind(id.0)
                .bind(holder)
                .execute(&mut *tx)
                .await
                .map_err(map)?
                .rows_affected();
                let done = sqlx::query(
                    "UPDATE subscribers SET active = FALSE, disconnected_at = $3, attempts = 0 \
                     WHERE id = $1 AND active AND paid_until = $2",
                )
                .bind(id.0)
                .bind(ts(paid_until_seen))
                .bind(ts(at))
                .execute(&mut *tx)
                .await
                .map_err(map)?
                .rows_affected();
                tx.commit().await.map_err(map)?;
                if done > 0 {
                    Ok(true)
                } else if released > 0 {
                    Ok(false)
                } else {
                    guard_refused(&self.pool, "subscriber", SUBSCRIBER_EXISTS, id.0).await
                }
            }

            async fn complete_expiries(
                &self,
                items: &[ExpiryDone],
                holder: &str,
                at: DateTime<Utc>,
            ) -> Result<Vec<bool>> {
                if items.is_empty() {
                    return Ok(Vec::new());
                }
                let map = |e| map_sqlx_error("subscriber", e);
                let mut done = std::collections::HashSet::new();
                let mut tx = begin_write(&self.pool).await.map_err(map)?;
                for chunk in items.chunks(BATCH_CHUNK) {
                    let mut q = QueryBuilder::<Db>::new(
                        "UPDATE subscribers SET lease_holder = NULL, lease_until = NULL WHERE lease_holder = ",
                    );
                    q.push_bind(holder).push(" AND id IN (");
                    let mut list = q.separated(", ");
                    for item in chunk {
                        list.push_bind(item.id.0);
                    }
                    q.push(")");
                    q.build().execute(&mut *tx).await.map_err(map)?;

                    let mut q = QueryBuilder::<Db>::new(
                        "UPDATE subscribers SET active = FALSE, attempts = 0, disconnected_at = ",
                    );
                    q.push_bind(ts(at)).push(" WHERE active AND (");
                    for (i, item) in chunk.iter().enumerate() {
                        if i > 0 {
                            q.push(" OR ");
                        }
                        q.push("(id = ")
                            .push_bind(item.id.0)
                            .push(" AND paid_until = ")
                            .push_bind(ts(item.paid_until_seen))
                            .push(")");
                    }
                    q.push(") RETURNING id");
                    let rows = q.build().fetch_all(&mut *tx).await.map_err(map)?;
                    for r in &rows {
                        let id: i64 = r
                            .try_get(0)
                            .map_err(|e| Error::invalid("subscribers.id", "(undecodable)", e.to_string()))?;
                        done.insert(id);
                    }
                }
                tx.commit().await.map_err(map)?;
                Ok(items.iter().map(|i| done.contains(&i.id.0)).collect())
            }

            async fn retry_later(&self, id: SubscriberId, holder: &str, until: DateTime<Utc>) -> Result<bool> {
                let n = sqlx::query(
                    "UPDATE subscribers SET attempts = attempts + 1, lease_holder = $3, lease_until = $4 \
                     WHERE id = $1 AND lease_holder = $2",
                )
                .bind(id.0)
                .bind(holder)
                .bind(RETRY_HOLDER)
                .bind(ts(until))
                .execute(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("subscriber", e))?
                .rows_affected();
                if n > 0 {
                    return Ok(true);
                }
                guard_refused(&self.pool, "subscriber", SUBSCRIBER_EXISTS, id.0).await
            }

            async fn next_expiry_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
                let row = sqlx::query(NEXT_EXPIRY
                )
                .bind(ts(now))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("subscriber", e))?;
                row.map(|r| Cols::new(&r, "subscribers").ts("paid_until")).transpose()
            }

            async fn count_entitled(&self, now: DateTime<Utc>) -> Result<u64> {
                let row = sqlx::query("SELECT COUNT(*) FROM subscribers WHERE active AND paid_until > $1")
                    .bind(ts(now))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error("subscriber", e))?;
                count_of(&row, "subscribers.count")
            }

            async fn active_of_tenant(&self, tenant: TenantId) -> Result<Vec<Subscriber>> {
                // Decoded row by row as they stream in: a tenant can have tens of
                // thousands, and holding every raw row besides the decoded ones
                // doubled the sync job's peak memory.
                let mut rows = sqlx::query(concat!(
                    "SELECT ",
                    cols!(subscribers),
                    " FROM subscribers WHERE tenant_id = $1 AND active ORDER BY id"
                ))
                .bind(tenant.0)
                .fetch(&self.pool);
                let mut out = Vec::new();
                while let Some(row) = rows
                    .try_next()
                    .await
                    .map_err(|e| map_sqlx_error("subscriber", e))?
                {
                    out.push(row::subscriber(&Cols::new(&row, "subscribers"))?);
                }
                Ok(out)
            }
        }

        // ---------------------------------------------------------------- devices

        /// Devices of hotspot subscribers.
        #[derive(Debug, Clone)]
        pub(crate) struct Devices {
            pool: DbPool,
        }

        #[async_trait]
        impl DeviceRepo for Devices {
            async fn record_seen(
                &self,
                subscriber: SubscriberId,
                mac: MacAddress,
                router: Option<RouterId>,
                at: DateTime<Utc>,
            ) -> Result<Device> {
                let row = sqlx::query(concat!(
                    "INSERT INTO devices (subscriber_id, mac, router_id, last_seen, active) \
                     VALUES ($1, $2, $3, $4, TRUE) \
                     ON CONFLICT (subscriber_id, mac) DO UPDATE SET router_id = excluded.router_id, \
                     last_seen = excluded.last_seen, active = TRUE RETURNING ",
                    cols!(devices)
                ))
                .bind(subscriber.0)
                .bind(mac.to_string())
                .bind(router.map(|r| r.0))
                .bind(ts(at))
                .fetch_one(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("device", e))?;
                row::device(&Cols::new(&row, "devices"))
            }

            async fn active_of(&self, subscribers: &[SubscriberId]) -> Result<Vec<Device>> {
                let mut out = Vec::new();
                for chunk in subscribers.chunks(500) {
                    let mut q = QueryBuilder::<Db>::new(concat!(
                        "SELECT ",
                        cols!(devices),
                        " FROM devices WHERE active AND subscriber_id IN ("
                    ));
                    let mut list = q.separated(", ");
                    for s in chunk {
                        list.push_bind(s.0);
                    }
                    q.push(") ORDER BY id");
                    let rows = q
                        .build()
                        .fetch_all(&self.pool)
                        .await
                        .map_err(|e| map_sqlx_error("device", e))?;
                    out.extend(decode_all(rows, "devices", |c| row::device(c))?);
                }
                out.sort_by_key(|d| d.id);
                Ok(out)
            }

            async fn deactivate_all(&self, subscriber: SubscriberId) -> Result<u64> {
                let n = sqlx::query("UPDATE devices SET active = FALSE WHERE subscriber_id = $1 AND active")
                    .bind(subscriber.0)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error("device", e))?
                    .rows_affected();
                Ok(n)
            }

            async fn deactivate_all_of(&self, subscribers: &[SubscriberId]) -> Result<u64> {
                if subscribers.is_empty() {
                    return Ok(0);
                }
                let map = |e| map_sqlx_error("device", e);
                let mut n = 0;
                let mut tx = begin_write(&self.pool).await.map_err(map)?;
                for chunk in subscribers.chunks(BATCH_CHUNK) {
                    let mut q = QueryBuilder::<Db>::new("UPDATE devices SET active = FALSE WHERE active AND subscriber_id IN (");
                    let mut list = q.separated(", ");
                    for s in chunk {
                        list.push_bind(s.0);
                    }
                    q.push(")");
                    n += q.build().execute(&mut *tx).await.map_err(map)?.rows_affected();
                }
                tx.commit().await.map_err(map)?;
                Ok(n)
            }

            async fn delete_unseen_since(&self, cutoff: DateTime<Utc>) -> Result<u64> {
                let n = sqlx::query("DELETE FROM devices WHERE last_seen < $1")
                    .bind(ts(cutoff))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error("device", e))?
                    .rows_affected();
                Ok(n)
            }
        }

        // --------------------------------------------------------------- vouchers

        /// Vouchers.
        #[derive(Debug, Clone)]
        pub(crate) struct Vouchers {
            pool: DbPool,
        }

        const VOUCHER_EXISTS: &str = "SELECT 1 FROM vouchers WHERE id = $1";

        impl Vouchers {
            fn many(rows: Vec<DbRow>) -> Result<Vec<Voucher>> {
                decode_all(rows, "vouchers", |c| row::voucher(c))
            }
        }

        #[async_trait]
        impl VoucherRepo for Vouchers {
            async fn insert(&self, new: &NewVoucher) -> Result<Voucher> {
                let row = sqlx::query(concat!(
                    "INSERT INTO vouchers (tenant_id, router_id, code, plan_id, status, activation_deadline, \
                     purchase_deadline, duration_ms, removed_from_router, attempts) \
                     VALUES ($1, $2, $3, $4, 'unused', $5, $6, $7, FALSE, 0) RETURNING ",
                    cols!(vouchers)
                ))
                .bind(new.tenant_id.0)
                .bind(new.router_id.0)
                .bind(new.code.as_str())
                .bind(new.plan_id.0)
                .bind(new.activation_deadline.map(ts))
                .bind(new.purchase_deadline.map(ts))
                .bind(row::duration_to_ms(new.duration))
                .fetch_one(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("voucher", e))?;
                row::voucher(&Cols::new(&row, "vouchers"))
            }

            async fn get(&self, id: VoucherId) -> Result<Voucher> {
                let row = sqlx::query(concat!("SELECT ", cols!(vouchers), " FROM vouchers WHERE id = $1"))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error("voucher", e))?
                    .ok_or_else(|| Error::not_found("voucher", id))?;
                row::voucher(&Cols::new(&row, "vouchers"))
            }

            async fn find_by_code(&self, tenant: TenantId, code: &RosName) -> Result<Option<Voucher>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    cols!(vouchers),
                    " FROM vouchers WHERE tenant_id = $1 AND code = $2"
                ))
                .bind(tenant.0)
                .bind(code.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("voucher", e))?;
                row.map(|r| row::voucher(&Cols::new(&r, "vouchers"))).transpose()
            }

            async fn activate(&self, id: VoucherId, started_at: DateTime<Utc>) -> Result<Voucher> {
                // The end is computed here (exact, in Rust) from the stored duration; the
                // update is a compare-and-set on `unused`, so two first uses cannot both win.
                let current = self.get(id).await?;
                if current.status != VoucherStatus::Unused {
                    return Err(Error::conflict(
                        "voucher",
                        format!("voucher {} is {}, not unused", current.code, current.status.as_str()),
                    ));
                }
                let expected_end = started_at + current.duration.as_chrono();
                let row = sqlx::query(concat!(
                    "UPDATE vouchers SET status = 'active', started_at = $2, expected_end = $3 \
                     WHERE id = $1 AND status = 'unused' RETURNING ",
                    cols!(vouchers)
                ))
                .bind(id.0)
                .bind(ts(started_at))
                .bind(ts(expected_end))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("voucher", e))?;
                match row {
                    Some(row) => row::voucher(&Cols::new(&row, "vouchers")),
                    None => {
                        let now = self.get(id).await?;
                        Err(Error::conflict(
                            "voucher",
                            format!("voucher {} is {}, not unused", now.code, now.status.as_str()),
                        ))
                    }
                }
            }

            async fn list_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Voucher>> {
                let rows = sqlx::query(LIST_DUE_VOUCHERS)
                .bind(ts(now))
                .bind(row::limit(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("voucher", e))?;
                Self::many(rows)
            }

            async fn claim_due(&self, claim: &Claim) -> Result<Vec<Voucher>> {
                let rows = sqlx::query(CLAIM_DUE_VOUCHERS)
                .bind(claim.holder.as_str())
                .bind(ts(claim.until))
                .bind(ts(claim.now))
                .bind(row::limit(claim.limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("voucher", e))?;
                let mut out = Self::many(rows)?;
                out.sort_by(|a, b| a.deadline().cmp(&b.deadline()).then(a.id.cmp(&b.id)));
                Ok(out)
            }

            async fn expire(
                &self,
                id: VoucherId,
                seen: VoucherStatus,
                reason: VoucherExpiryReason,
                at: DateTime<Utc>,
            ) -> Result<bool> {
                let n = sqlx::query(
                    "UPDATE vouchers SET status = 'expired', expired_reason = $3, expired_at = $4 \
                     WHERE id = $1 AND status = $2 AND status <> 'expired'",
                )
                .bind(id.0)
                .bind(seen.as_str())
                .bind(reason.as_str())
                .bind(ts(at))
                .execute(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("voucher", e))?
                .rows_affected();
                if n > 0 {
                    return Ok(true);
                }
                guard_refused(&self.pool, "voucher", VOUCHER_EXISTS, id.0).await
            }

            async fn mark_removed(&self, id: VoucherId, holder: &str) -> Result<bool> {
                let n = sqlx::query(
                    "UPDATE vouchers SET removed_from_router = TRUE, lease_holder = NULL, lease_until = NULL, \
                     attempts = 0 WHERE id = $1 AND status IN ('expired', 'revoked') \
                     AND (lease_holder IS NULL OR lease_holder = $2)",
                )
                .bind(id.0)
                .bind(holder)
                .execute(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("voucher", e))?
                .rows_affected();
                if n > 0 {
                    return Ok(true);
                }
                guard_refused(&self.pool, "voucher", VOUCHER_EXISTS, id.0).await
            }

            async fn retry_later(&self, id: VoucherId, holder: &str, until: DateTime<Utc>) -> Result<bool> {
                let n = sqlx::query(
                    "UPDATE vouchers SET attempts = attempts + 1, lease_holder = $3, lease_until = $4 \
                     WHERE id = $1 AND lease_holder = $2",
                )
                .bind(id.0)
                .bind(holder)
                .bind(RETRY_HOLDER)
                .bind(ts(until))
                .execute(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("voucher", e))?
                .rows_affected();
                if n > 0 {
                    return Ok(true);
                }
                guard_refused(&self.pool, "voucher", VOUCHER_EXISTS, id.0).await
            }

            async fn on_router(&self, router: RouterId, statuses: &[VoucherStatus]) -> Result<Vec<Voucher>> {
                if statuses.is_empty() {
                    return Ok(Vec::new());
                }
                let mut q = QueryBuilder::<Db>::new(concat!(
                    "SELECT ",
                    cols!(vouchers),
                    " FROM vouchers WHERE router_id = "
                ));
                q.push_bind(router.0);
                q.push(" AND status IN (");
                let mut list = q.separated(", ");
                for s in statuses {
                    list.push_bind(s.as_str());
                }
                q.push(") ORDER BY id");
                let rows = q
                    .build()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error("voucher", e))?;
                Self::many(rows)
            }

            async fn next_deadline_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
                let row = sqlx::query(NEXT_VOUCHER_DEADLINE
                )
                .bind(ts(now))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("voucher", e))?;
                row.map(|r| Cols::new(&r, "vouchers").ts("deadline")).transpose()
            }
        }

        // ------------------------------------------------------------------ plans

        /// Price plans.
        #[derive(Debug, Clone)]
        pub(crate) struct Plans {
            pool: DbPool,
        }

        #[async_trait]
        impl PlanRepo for Plans {
            async fn insert(&self, new: &NewPlan) -> Result<Plan> {
                let row = sqlx::query(concat!(
                    "INSERT INTO plans (tenant_id, name, price_micros, currency, duration_ms, rate_limit) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
                    cols!(plans)
                ))
                .bind(new.tenant_id.0)
                .bind(new.name.as_str())
                .bind(new.price.to_micro_units()?)
                .bind(new.price.currency.as_str())
                .bind(new.duration.map(row::duration_to_ms))
                .bind(new.rate_limit.map(|r| r.to_string()))
                .fetch_one(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("plan", e))?;
                row::plan(&Cols::new(&row, "plans"))
            }

            async fn get(&self, id: PlanId) -> Result<Plan> {
                let row = sqlx::query(concat!("SELECT ", cols!(plans), " FROM plans WHERE id = $1"))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error("plan", e))?
                    .ok_or_else(|| Error::not_found("plan", id))?;
                row::plan(&Cols::new(&row, "plans"))
            }

            async fn list(&self, tenant: TenantId) -> Result<Vec<Plan>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    cols!(plans),
                    " FROM plans WHERE tenant_id = $1 ORDER BY id"
                ))
                .bind(tenant.0)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("plan", e))?;
                decode_all(rows, "plans", |c| row::plan(c))
            }
        }

        // -------------------------------------------------------------- customers

        /// ISP customers.
        #[derive(Debug, Clone)]
        pub(crate) struct Customers {
            pool: DbPool,
        }

        #[async_trait]
        impl CustomerRepo for Customers {
            async fn insert(&self, new: &NewCustomer) -> Result<Customer> {
                let row = sqlx::query(concat!(
                    "INSERT INTO customers (tenant_id, name, phone) VALUES ($1, $2, $3) RETURNING ",
                    cols!(customers)
                ))
                .bind(new.tenant_id.0)
                .bind(new.name.as_str())
                .bind(new.phone.as_ref().map(|p| p.as_str()))
                .fetch_one(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("customer", e))?;
                row::customer(&Cols::new(&row, "customers"))
            }

            async fn get(&self, id: CustomerId) -> Result<Customer> {
                let row = sqlx::query(concat!("SELECT ", cols!(customers), " FROM customers WHERE id = $1"))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error("customer", e))?
                    .ok_or_else(|| Error::not_found("customer", id))?;
                row::customer(&Cols::new(&row, "customers"))
            }
        }

        // --------------------------------------------------------------- services

        /// ISP services.
        #[derive(Debug, Clone)]
        pub(crate) struct Services {
            pool: DbPool,
        }

        const SERVICE_EXISTS: &str = "SELECT 1 FROM services WHERE id = $1";

        impl Services {
            fn one(row: Option<DbRow>, id: ServiceId) -> Result<Service> {
                let row = row.ok_or_else(|| Error::not_found("service", id))?;
                row::service(&Cols::new(&row, "services"))
            }

            fn many(rows: Vec<DbRow>) -> Result<Vec<Service>> {
                decode_all(rows, "services", |c| row::service(c))
            }

            /// `mark_provisioned` / `mark_deprovisioned`.
            async fn mark(&self, sql: &'static str, id: ServiceId, holder: &str, at: DateTime<Utc>) -> Result<bool> {
                let n = sqlx::query(sql)
                    .bind(id.0)
                    .bind(holder)
                    .bind(ts(at))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error("service", e))?
                    .rows_affected();
                if n > 0 {
                    return Ok(true);
                }
                guard_refused(&self.pool, "service", SERVICE_EXISTS, id.0).await
            }
        }

        #[async_trait]
        impl ServiceRepo for Services {
            async fn insert(&self, new: &NewService) -> Result<Service> {
                let c = row::connection_columns(&new.connection);
                let row = sqlx::query(concat!(
                    "INSERT INTO services (tenant_id, customer_id, router_id, plan_id, status, connection_kind, \
                     pppoe_username, pppoe_password, pppoe_profile, static_address, next_billing_date, \
                     billing_day, next_charge_on, provisioned, attempts) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, FALSE, 0) RETURNING ",
                    cols!(services)
                ))
                .bind(new.tenant_id.0)
                .bind(new.customer_id.0)
                .bind(new.router_id.0)
                .bind(new.plan_id.0)
                .bind(new.status.as_str())
                .bind(c.kind)
                .bind(c.pppoe_username)
                .bind(c.pppoe_password)
                .bind(c.pppoe_profile)
                .bind(c.static_address)
                .bind(new.next_billing_date)
                .bind(i64::from(new.billing_day))
                .bind(new.next_charge_on)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("service", e))?;
                row::service(&Cols::new(&row, "services"))
            }

            async fn get(&self, id: ServiceId) -> Result<Service> {
                let row = sqlx::query(concat!("SELECT ", cols!(services), " FROM services WHERE id = $1"))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error("service", e))?;
                Self::one(row, id)
            }

            async fn set_status(&self, id: ServiceId, status: ServiceStatus) -> Result<Service> {
                let row = sqlx::query(concat!(
                    "UPDATE services SET status = $2 WHERE id = $1 RETURNING ",
                    cols!(services)
                ))
                .bind(id.0)
                .bind(status.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("service", e))?;
                Self::one(row, id)
            }

            async fn set_next_billing_date(&self, id: ServiceId, date: NaiveDate) -> Result<Service> {
                let row = sqlx::query(concat!(
                    "UPDATE services SET next_billing_date = $2 WHERE id = $1 RETURNING ",
                    cols!(services)
                ))
                .bind(id.0)
                .bind(date)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("service", e))?;
                Self::one(row, id)
            }

            async fn list_provisioning(
                &self,
                tenant: TenantId,
                today: NaiveDate,
                limit: usize,
            ) -> Result<Vec<Service>> {
                // Read only: leases are ignored, so "free at" is the far past of every lease
                // ($3 = NULL would make the test unknown; a lease_until IS NULL OR <= max works).
                let rows = sqlx::query(LIST_PROVISIONING)
                .bind(tenant.0)
                .bind(today)
                .bind(ts(DateTime::<Utc>::MAX_UTC))
                .bind(row::limit(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("service", e))?;
                Self::many(rows)
            }

            async fn claim_provisioning(
                &self,
                tenant: TenantId,
                today: NaiveDate,
                claim: &Claim,
            ) -> Result<Vec<Service>> {
                let rows = sqlx::query(CLAIM_PROVISIONING)
                .bind(tenant.0)
                .bind(today)
                .bind(ts(claim.now))
                .bind(row::limit(claim.limit))
                .bind(claim.holder.as_str())
                .bind(ts(claim.until))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("service", e))?;
                let mut out = Self::many(rows)?;
                out.sort_by(|a, b| a.next_billing_date.cmp(&b.next_billing_date).then(a.id.cmp(&b.id)));
                Ok(out)
            }

            async fn mark_provisioned(&self, id: ServiceId, holder: &str, at: DateTime<Utc>) -> Result<bool> {
                self.mark(
                    "UPDATE services SET provisioned = TRUE, provisioned_at = $3, lease_holder = NULL, \
                     lease_until = NULL, attempts = 0 \
                     WHERE id = $1 AND (lease_holder IS NULL OR lease_holder = $2)",
                    id,
                    holder,
                    at,
                )
                .await
            }

            async fn mark_deprovisioned(&self, id: ServiceId, holder: &str, at: DateTime<Utc>) -> Result<bool> {
                self.mark(
                    "UPDATE services SET provisioned = FALSE, deprovisioned_at = $3, lease_holder = NULL, \
                     lease_until = NULL, attempts = 0 \
                     WHERE id = $1 AND (lease_holder IS NULL OR lease_holder = $2)",
                    id,
                    holder,
                    at,
                )
                .await
            }

            async fn retry_later(&self, id: ServiceId, holder: &str, until: DateTime<Utc>) -> Result<bool> {
                let n = sqlx::query(
                    "UPDATE services SET attempts = attempts + 1, lease_holder = $3, lease_until = $4 \
                     WHERE id = $1 AND lease_holder = $2",
                )
                .bind(id.0)
                .bind(holder)
                .bind(RETRY_HOLDER)
                .bind(ts(until))
                .execute(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("service", e))?
                .rows_affected();
                if n > 0 {
                    return Ok(true);
                }
                guard_refused(&self.pool, "service", SERVICE_EXISTS, id.0).await
            }

            async fn claim_billable(
                &self,
                tenant: TenantId,
                today: NaiveDate,
                claim: &Claim,
            ) -> Result<Vec<Service>> {
                let rows = sqlx::query(CLAIM_BILLABLE)
                .bind(tenant.0)
                .bind(today)
                .bind(ts(claim.now))
                .bind(row::limit(claim.limit))
                .bind(claim.holder.as_str())
                .bind(ts(claim.until))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("service", e))?;
                let mut out = Self::many(rows)?;
                out.sort_by(|a, b| a.next_charge_on.cmp(&b.next_charge_on).then(a.id.cmp(&b.id)));
                Ok(out)
            }

            async fn advance_billing(
                &self,
                id: ServiceId,
                holder: &str,
                from: NaiveDate,
                to: NaiveDate,
            ) -> Result<bool> {
                let map = |e| map_sqlx_error("service", e);
                let mut tx = begin_write(&self.pool).await.map_err(map)?;
                let moved = sqlx::query("UPDATE services SET next_charge_on = $3 WHERE id = $1 AND next_charge_on = $2")
                    .bind(id.0)
                    .bind(from)
                    .bind(to)
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?
                    .rows_affected();
                let released = sqlx::query(
                    "UPDATE services SET lease_holder = NULL, lease_until = NULL WHERE id = $1 AND lease_holder = $2",
                )
                .bind(id.0)
                .bind(holder)
                .execute(&mut *tx)
                .await
                .map_err(map)?
                .rows_affected();
                tx.commit().await.map_err(map)?;
                if moved > 0 {
                    Ok(true)
                } else if released > 0 {
                    Ok(false)
                } else {
                    guard_refused(&self.pool, "service", SERVICE_EXISTS, id.0).await
                }
            }

            async fn release(&self, id: ServiceId, holder: &str) -> Result<()> {
                let n = sqlx::query(
                    "UPDATE services SET lease_holder = NULL, lease_until = NULL WHERE id = $1 AND lease_holder = $2",
                )
                .bind(id.0)
                .bind(holder)
                .execute(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("service", e))?
                .rows_affected();
                if n == 0 {
                    guard_refused(&self.pool, "service", SERVICE_EXISTS, id.0).await?;
                }
                Ok(())
            }

            async fn due_between(&self, tenant: TenantId, from: NaiveDate, to: NaiveDate) -> Result<Vec<Service>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    cols!(services),
                    " FROM services WHERE tenant_id = $1 AND status = 'active' AND next_billing_date >= $2 \
                     AND next_billing_date <= $3 ORDER BY next_billing_date, id"
                ))
                .bind(tenant.0)
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("service", e))?;
                Self::many(rows)
            }

            async fn on_router(&self, router: RouterId) -> Result<Vec<Service>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    cols!(services),
                    " FROM services WHERE router_id = $1 ORDER BY id"
                ))
                .bind(router.0)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("service", e))?;
                Self::many(rows)
            }
        }

        // ----------------------------------------------------------------- ledger

        /// Charges and payments.
        #[derive(Debug, Clone)]
        pub(crate) struct Ledger {
            pool: DbPool,
        }

        #[async_trait]
        impl LedgerRepo for Ledger {
            async fn record(&self, new: &NewLedgerEntry) -> Result<LedgerEntry> {
                let row = sqlx::query(concat!(
                    "INSERT INTO ledger (customer_id, service_id, kind, amount_micros, currency, period_start, \
                     key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
                    cols!(ledger)
                ))
                .bind(new.customer_id.0)
                .bind(new.service_id.map(|s| s.0))
                .bind(row::ledger_kind_str(new.kind))
                .bind(new.amount.to_micro_units()?)
                .bind(new.amount.currency.as_str())
                .bind(new.period_start)
                .bind(new.key.as_str())
                .bind(ts(new.created_at))
                .fetch_one(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("ledger entry", e))?;
                row::ledger_entry(&Cols::new(&row, "ledger"))
            }

            async fn of_service(&self, service: ServiceId) -> Result<Vec<LedgerEntry>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    cols!(ledger),
                    " FROM ledger WHERE service_id = $1 ORDER BY created_at, id"
                ))
                .bind(service.0)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("ledger entry", e))?;
                decode_all(rows, "ledger", |c| row::ledger_entry(c))
            }

            async fn of_customer(&self, customer: CustomerId) -> Result<Vec<LedgerEntry>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    cols!(ledger),
                    " FROM ledger WHERE customer_id = $1 ORDER BY created_at, id"
                ))
                .bind(customer.0)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("ledger entry", e))?;
                decode_all(rows, "ledger", |c| row::ledger_entry(c))
            }

            async fn count_charges(&self) -> Result<u64> {
                let row = sqlx::query("SELECT COUNT(*) FROM ledger WHERE kind = 'charge'")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error("ledger entry", e))?;
                count_of(&row, "ledger.count")
            }
        }

        // ---------------------------------------------------------------- notices

        /// Notices (SMS owed).
        #[derive(Debug, Clone)]
        pub(crate) struct Notices {
            pool: DbPool,
        }

        const NOTICE_EXISTS: &str = "SELECT 1 FROM notices WHERE id = $1";

        #[async_trait]
        impl NoticeRepo for Notices {
            async fn reserve(&self, new: &NewNotice) -> Result<Notice> {
                let row = sqlx::query(concat!(
                    "INSERT INTO notices (tenant_id, recipient, kind, deadline, body, status, attempts, created_at) \
                     VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6) RETURNING ",
                    cols!(notices)
                ))
                .bind(new.tenant_id.0)
                .bind(new.recipient.as_str())
                .bind(new.kind.as_str())
                .bind(ts(new.deadline))
                .bind(new.body.as_str())
                .bind(ts(new.created_at))
                .fetch_one(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("notice", e))?;
                row::notice(&Cols::new(&row, "notices"))
            }

            async fn reserve_all(&self, new: &[NewNotice]) -> Result<Vec<Option<NoticeId>>> {
                let map = |e| map_sqlx_error("notice", e);
                let mut out: Vec<Option<NoticeId>> = vec![None; new.len()];
                if new.is_empty() {
                    return Ok(out);
                }
                // Returned rows are matched to the input by key; the stored
                // deadline may differ from the given one below a microsecond.
                let mut by_key: std::collections::HashMap<(&str, &str), Vec<usize>> =
                    std::collections::HashMap::new();
                for (i, n) in new.iter().enumerate() {
                    by_key.entry((n.recipient.as_str(), n.kind.as_str())).or_default().push(i);
                }
                let mut tx = begin_write(&self.pool).await.map_err(map)?;
                for chunk in new.chunks(BATCH_CHUNK) {
                    let mut q = QueryBuilder::<Db>::new(
                        "INSERT INTO notices (tenant_id, recipient, kind, deadline, body, status, attempts, created_at) ",
                    );
                    q.push_values(chunk, |mut b, n| {
                        b.push_bind(n.tenant_id.0)
                            .push_bind(n.recipient.as_str())
                            .push_bind(n.kind.as_str())
                            .push_bind(ts(n.deadline))
                            .push_bind(n.body.as_str())
                            .push_bind("pending")
                            .push_bind(0_i64)
                            .push_bind(ts(n.created_at));
                    });
                    q.push(" ON CONFLICT DO NOTHING RETURNING id, recipient, kind, deadline");
                    let rows = q.build().fetch_all(&mut *tx).await.map_err(map)?;
                    for r in &rows {
                        let c = Cols::new(r, "notices");
                        let (id, recipient, kind, deadline) =
                            (c.i64("id")?, c.string("recipient")?, c.string("kind")?, c.ts("deadline")?);
                        let slot = by_key.get(&(recipient.as_str(), kind.as_str())).and_then(|idxs| {
                            idxs.iter().copied().find(|i| {
                                out[*i].is_none()
                                    && (new[*i].deadline - deadline).num_microseconds().is_some_and(|d| d.abs() <= 1)
                            })
                        });
                        match slot {
                            Some(i) => out[i] = Some(NoticeId(id)),
                            None => {
                                return Err(Error::invalid(
                                    "notices.recipient",
                                    recipient,
                                    "inserted but not among the notices to reserve",
                                ))
                            }
                        }
                    }
                }
                tx.commit().await.map_err(map)?;
                Ok(out)
            }

            async fn get(&self, id: NoticeId) -> Result<Notice> {
                let row = sqlx::query(concat!("SELECT ", cols!(notices), " FROM notices WHERE id = $1"))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error("notice", e))?
                    .ok_or_else(|| Error::not_found("notice", id))?;
                row::notice(&Cols::new(&row, "notices"))
            }

            async fn find(
                &self,
                recipient: &PhoneNumber,
                kind: NoticeKind,
                deadline: DateTime<Utc>,
            ) -> Result<Option<Notice>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    cols!(notices),
                    " FROM notices WHERE recipient = $1 AND kind = $2 AND deadline = $3"
                ))
                .bind(recipient.as_str())
                .bind(kind.as_str())
                .bind(ts(deadline))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("notice", e))?;
                row.map(|r| row::notice(&Cols::new(&r, "notices"))).transpose()
            }

            async fn claim_pending(&self, claim: &Claim) -> Result<Vec<Notice>> {
                let rows = sqlx::query(CLAIM_PENDING_NOTICES)
                .bind(claim.holder.as_str())
                .bind(ts(claim.until))
                .bind(ts(claim.now))
                .bind(row::limit(claim.limit))
                .bind(RETRY_HOLDER)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("notice", e))?;
                let mut out = decode_all(rows, "notices", |c| row::notice(c))?;
                out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
                Ok(out)
            }

            async fn mark_sent(&self, id: NoticeId, holder: &str, at: DateTime<Utc>) -> Result<bool> {
                let n = sqlx::query(
                    "UPDATE notices SET status = 'sent', sent_at = $3, lease_holder = NULL, lease_until = NULL \
                     WHERE id = $1 AND status = 'pending' AND (lease_holder IS NULL OR lease_holder = $2)",
                )
                .bind(id.0)
                .bind(holder)
                .bind(ts(at))
                .execute(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("notice", e))?
                .rows_affected();
                if n > 0 {
                    return Ok(true);
                }
                guard_refused(&self.pool, "notice", NOTICE_EXISTS, id.0).await
            }

            async fn mark_all_sent(&self, ids: &[NoticeId], holder: &str, at: DateTime<Utc>) -> Result<Vec<bool>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let map = |e| map_sqlx_error("notice", e);
                let mut marked = std::collections::HashSet::new();
                let mut tx = begin_write(&self.pool).await.map_err(map)?;
                for chunk in ids.chunks(BATCH_CHUNK) {
                    let mut q = QueryBuilder::<Db>::new("UPDATE notices SET status = 'sent', sent_at = ");
                    q.push_bind(ts(at))
                        .push(", lease_holder = NULL, lease_until = NULL WHERE status = 'pending' AND (lease_holder IS NULL OR lease_holder = ")
                        .push_bind(holder)
                        .push(") AND id IN (");
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(id.0);
                    }
                    q.push(") RETURNING id");
                    let rows = q.build().fetch_all(&mut *tx).await.map_err(map)?;
                    for r in &rows {
                        marked.insert(Cols::new(r, "notices").i64("id")?);
                    }
                }
                tx.commit().await.map_err(map)?;
                Ok(ids.iter().map(|id| marked.contains(&id.0)).collect())
            }

            async fn retry_later(&self, id: NoticeId, holder: &str, until: DateTime<Utc>) -> Result<bool> {
                let n = sqlx::query(
                    "UPDATE notices SET attempts = attempts + 1, lease_holder = $3, lease_until = $4 \
                     WHERE id = $1 AND status = 'pending' AND lease_holder = $2",
                )
                .bind(id.0)
                .bind(holder)
                .bind(RETRY_HOLDER)
                .bind(ts(until))
                .execute(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("notice", e))?
                .rows_affected();
                if n > 0 {
                    return Ok(true);
                }
                guard_refused(&self.pool, "notice", NOTICE_EXISTS, id.0).await
            }

            async fn abandon(&self, id: NoticeId, holder: &str) -> Result<bool> {
                let n = sqlx::query(
                    "UPDATE notices SET status = 'abandoned', lease_holder = NULL, lease_until = NULL \
                     WHERE id = $1 AND status = 'pending' AND (lease_holder IS NULL OR lease_holder = $2)",
                )
                .bind(id.0)
                .bind(holder)
                .execute(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("notice", e))?
                .rows_affected();
                if n > 0 {
                    return Ok(true);
                }
                guard_refused(&self.pool, "notice", NOTICE_EXISTS, id.0).await
            }

            async fn abandon_stale(&self, now: DateTime<Utc>) -> Result<u64> {
                let n = sqlx::query(
                    "UPDATE notices SET status = 'abandoned', lease_holder = NULL, lease_until = NULL \
                     WHERE status = 'pending' AND lease_holder IS NOT NULL AND lease_holder <> $2 \
                     AND lease_until < $1",
                )
                .bind(ts(now))
                .bind(RETRY_HOLDER)
                .execute(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("notice", e))?
                .rows_affected();
                Ok(n)
            }

            async fn count(&self, status: NoticeStatus) -> Result<u64> {
                let row = sqlx::query("SELECT COUNT(*) FROM notices WHERE status = $1")
                    .bind(status.as_str())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error("notice", e))?;
                count_of(&row, "notices.count")
            }
        }

        // ------------------------------------------------------------------ audit

        /// The activity and router logs.
        #[derive(Debug, Clone)]
        pub(crate) struct Audit {
            pool: DbPool,
        }

        #[async_trait]
        impl AuditRepo for Audit {
            async fn append(&self, events: &[AuditEvent]) -> Result<()> {
                if events.is_empty() {
                    return Ok(());
                }
                let map = |e| map_sqlx_error("audit event", e);
                let mut tx = begin_write(&self.pool).await.map_err(map)?;
                for chunk in events.chunks(1000) {
                    let mut q = QueryBuilder::<Db>::new(concat!("INSERT INTO audit_events (", cols!(audit_events), ") "));
                    q.push_values(chunk, |mut b, e| {
                        b.push_bind(ts(e.at))
                            .push_bind(e.tenant_id.map(|t| t.0))
                            .push_bind(e.action.as_str())
                            .push_bind(e.subject.as_str())
                            .push_bind(e.router_id.map(|r| r.0))
                            .push_bind(e.outcome.as_str())
                            .push_bind(e.reason.as_deref());
                    });
                    q.build().execute(&mut *tx).await.map_err(map)?;
                }
                tx.commit().await.map_err(map)?;
                Ok(())
            }

            async fn recent(&self, limit: usize) -> Result<Vec<AuditEvent>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    cols!(audit_events),
                    " FROM audit_events ORDER BY at DESC, id DESC LIMIT $1"
                ))
                .bind(row::limit(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("audit event", e))?;
                decode_all(rows, "audit_events", |c| row::audit_event(c))
            }

            async fn of_router(&self, router: RouterId, limit: usize) -> Result<Vec<AuditEvent>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    cols!(audit_events),
                    " FROM audit_events WHERE router_id = $1 ORDER BY at DESC, id DESC LIMIT $2"
                ))
                .bind(router.0)
                .bind(row::limit(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("audit event", e))?;
                decode_all(rows, "audit_events", |c| row::audit_event(c))
            }

            async fn delete_before(&self, cutoff: DateTime<Utc>) -> Result<u64> {
                let n = sqlx::query("DELETE FROM audit_events WHERE at < $1")
                    .bind(ts(cutoff))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error("audit event", e))?
                    .rows_affected();
                Ok(n)
            }
        }

        // ---------------------------------------------------------- router status

        /// Last known router health.
        #[derive(Debug, Clone)]
        pub(crate) struct RouterStatuses {
            pool: DbPool,
        }

        #[async_trait]
        impl RouterStatusRepo for RouterStatuses {
            async fn get(&self, router: RouterId) -> Result<Option<RouterStatus>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    cols!(router_status),
                    " FROM router_status WHERE router_id = $1"
                ))
                .bind(router.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("router status", e))?;
                row.map(|r| row::router_status(&Cols::new(&r, "router_status"))).transpose()
            }

            async fn put(&self, s: &RouterStatus) -> Result<()> {
                sqlx::query(concat!(
                    "INSERT INTO router_status (",
                    cols!(router_status),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (router_id) DO UPDATE SET \
                     online = excluded.online, checked_at = excluded.checked_at, changed_at = excluded.changed_at, \
                     clock_skew_secs = excluded.clock_skew_secs, version = excluded.version, \
                     last_error = excluded.last_error"
                ))
                .bind(s.router_id.0)
                .bind(s.online)
                .bind(ts(s.checked_at))
                .bind(ts(s.changed_at))
                .bind(s.clock_skew_secs)
                .bind(s.version.as_deref())
                .bind(s.last_error.as_deref())
                .execute(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("router status", e))?;
                Ok(())
            }

            async fn list(&self) -> Result<Vec<RouterStatus>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    cols!(router_status),
                    " FROM router_status ORDER BY router_id"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("router status", e))?;
                decode_all(rows, "router_status", |c| row::router_status(c))
            }
        }

        // ----------------------------------------------------------------- leases

        /// Named leases.
        #[derive(Debug, Clone)]
        pub(crate) struct Leases {
            pool: DbPool,
        }

        #[async_trait]
        impl LeaseRepo for Leases {
            async fn acquire(
                &self,
                name: &str,
                holder: &str,
                now: DateTime<Utc>,
                until: DateTime<Utc>,
            ) -> Result<bool> {
                // One statement: insert, or take over when ours or expired. A refused
                // upsert returns no row.
                let row = sqlx::query(
                    "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $4) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
                     WHERE leases.holder = excluded.holder OR leases.until <= $3 RETURNING holder",
                )
                .bind(name)
                .bind(holder)
                .bind(ts(now))
                .bind(ts(until))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map_sqlx_error("lease", e))?;
                Ok(row.is_some())
            }

            async fn release(&self, name: &str, holder: &str) -> Result<()> {
                sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                    .bind(name)
                    .bind(holder)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_sqlx_error("lease", e))?;
                Ok(())
            }
        }
    }
    };
}
