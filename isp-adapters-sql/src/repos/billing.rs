//! Plans, customers, services and the ledger.

use std::collections::HashSet;
use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use isp_core::domain::*;
use isp_core::ports::*;
use isp_core::{Error, Result};

use super::*;
use crate::row::{self, Fields as _};

/// The services that need provisioning or deprovisioning for `today` ($2),
/// free at $3, first $4 by (next_billing_date, id): three index range scans
/// (not provisioned but should be; provisioned but not active; provisioned but
/// overdue) merged.
const PROVISIONING_IDS: &str = concat!(
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
);

/// Services needing (de)provisioning (read only): $1 tenant, $2 today, $3 free at, $4 limit.
pub(super) static LIST_PROVISIONING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM services WHERE id {} ORDER BY next_billing_date, id",
        cols!(services),
        id_in(PROVISIONING_IDS)
    )
});

/// Claims services needing (de)provisioning: as [`LIST_PROVISIONING`], $5 holder, $6 until.
pub(super) static CLAIM_PROVISIONING: LazyLock<String> = LazyLock::new(|| {
    let due = format!(
        "SELECT id FROM services WHERE id {} AND {} ORDER BY next_billing_date, id LIMIT $4",
        id_in(PROVISIONING_IDS),
        free!(3)
    );
    claim_sql(
        "services",
        "lease_holder = $5, lease_until = $6",
        &due,
        free!(3),
        cols!(services),
    )
});

/// Claims services owing a charge: $1 tenant, $2 today, $3 now, $4 limit, $5 holder, $6 until.
pub(super) static CLAIM_BILLABLE: LazyLock<String> = LazyLock::new(|| {
    claim_sql(
        "services",
        "lease_holder = $5, lease_until = $6",
        concat!(
            "SELECT id FROM services WHERE tenant_id = $1 AND status = 'active' AND next_charge_on <= $2 AND ",
            free!(3),
            " ORDER BY next_charge_on, id LIMIT $4"
        ),
        free!(3),
        cols!(services),
    )
});

/// The due services `charge_due` bills next, in id order, locked for its
/// transaction ([`CLAIM_LOCK`]; SQLite's write lock needs none): $1 tenant,
/// $2 today, $3 now (the lease free test), $4 limit, $5 the last id read
/// (the smallest `i64` at the start).
const DUE: &str = concat!(
    "SELECT ",
    cols!(services),
    " FROM services WHERE tenant_id = $1 AND status = 'active' AND next_charge_on <= $2 AND ",
    free!(3),
    " AND id > $5 ORDER BY id LIMIT $4"
);

/// [`DUE`] with the dialect's row lock.
pub(super) static CHARGE_DUE: LazyLock<String> = LazyLock::new(|| format!("{DUE}{CLAIM_LOCK}"));

/// Price plans.
#[derive(Debug, Clone)]
pub(crate) struct Plans {
    pub(super) pool: DbPool,
}

#[async_trait]
impl PlanRepo for Plans {
    async fn insert(&self, new: &NewPlan) -> Result<Plan> {
        let row = query(concat!(
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

    async fn update(&self, id: PlanId, terms: &NewPlan) -> Result<Plan> {
        let plan = self.get(id).await?;
        if let Some(e) = plan_identity_change(&plan, terms) {
            return Err(e);
        }
        let row = query(concat!(
            "UPDATE plans SET price_micros = $2, currency = $3, duration_ms = $4, rate_limit = $5 \
             WHERE id = $1 RETURNING ",
            cols!(plans)
        ))
        .bind(id.0)
        .bind(terms.price.to_micro_units()?)
        .bind(terms.price.currency.as_str())
        .bind(terms.duration.map(row::duration_to_ms))
        .bind(terms.rate_limit.map(|r| r.to_string()))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("plan", e))?
        .ok_or_else(|| Error::not_found("plan", id))?;
        row::plan(&Cols::new(&row, "plans"))
    }

    async fn get(&self, id: PlanId) -> Result<Plan> {
        let row = query(concat!("SELECT ", cols!(plans), " FROM plans WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("plan", e))?
            .ok_or_else(|| Error::not_found("plan", id))?;
        row::plan(&Cols::new(&row, "plans"))
    }

    async fn list(&self, tenant: TenantId) -> Result<Vec<Plan>> {
        let rows = query(concat!(
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
    pub(super) pool: DbPool,
}

#[async_trait]
impl CustomerRepo for Customers {
    async fn insert(&self, new: &NewCustomer) -> Result<Customer> {
        let row = query(concat!(
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
        let row = query(concat!(
            "SELECT ",
            cols!(customers),
            " FROM customers WHERE id = $1"
        ))
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
    pub(super) pool: DbPool,
}

const SERVICE_EXISTS: &str = "SELECT 1 FROM services WHERE id = $1";

/// One compare-and-set for a chunk of a charge batch: moves `next_charge_on`
/// of each service from `from` to `to` where it is still `from`, releases the
/// holder's leases of the services it moves, and returns their ids.
///
/// Where the dialect updates from a `VALUES` list ([`UPDATE_FROM_VALUES`]), the
/// new dates are joined by id (one primary-key probe per item); elsewhere
/// (MySQL / MariaDB, whose runner emulates `RETURNING` for one-table updates
/// only) two `CASE id WHEN ...` lists carry them.
fn charge_moves<'a>(chunk: &'a [ChargeItem], holder: &'a str) -> Builder<'a> {
    // `lease_until` first: MySQL assigns in order, each seeing the previous ones.
    let release = |q: &mut Builder<'a>| {
        q.push("lease_until = CASE WHEN lease_holder = ")
            .push_bind(holder)
            .push(" THEN NULL ELSE lease_until END, lease_holder = CASE WHEN lease_holder = ")
            .push_bind(holder)
            .push(" THEN NULL ELSE lease_holder END");
    };
    if UPDATE_FROM_VALUES {
        let mut q = Builder::new("UPDATE services SET next_charge_on = v.column3, ");
        release(&mut q);
        q.push(" FROM (");
        q.push_values(chunk, |mut b, item| {
            b.push_bind(item.service_id.0)
                .push_bind(item.from)
                .push_bind(item.to);
        });
        q.push(") AS v WHERE services.id = v.column1 AND services.next_charge_on = v.column2 RETURNING services.id");
        return q;
    }
    let mut q = Builder::new("UPDATE services SET next_charge_on = CASE id");
    for item in chunk {
        q.push(" WHEN ")
            .push_bind(item.service_id.0)
            .push(" THEN ")
            .push_bind(item.to);
    }
    q.push(" END, ");
    release(&mut q);
    q.push(" WHERE id IN (");
    let mut list = q.separated(", ");
    for item in chunk {
        list.push_bind(item.service_id.0);
    }
    q.push(") AND next_charge_on = CASE id");
    for item in chunk {
        q.push(" WHEN ")
            .push_bind(item.service_id.0)
            .push(" THEN ")
            .push_bind(item.from);
    }
    q.push(" END RETURNING id");
    q
}

impl Services {
    fn one(row: Option<DbRow>, id: ServiceId) -> Result<Service> {
        let row = row.ok_or_else(|| Error::not_found("service", id))?;
        row::service(&Cols::new(&row, "services"))
    }

    fn many(rows: Vec<DbRow>) -> Result<Vec<Service>> {
        decode_all(rows, "services", |c| row::service(c))
    }

    /// `mark_provisioned` / `mark_deprovisioned`: fenced on the holder (see the
    /// port's contract), so a late mark after a takeover changes nothing.
    async fn mark(&self, sql: &'static str, id: ServiceId, holder: &str, at: DateTime<Utc>) -> Result<bool> {
        let n = query(sql)
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

    /// One attempt of [`ServiceRepo::charge_batch`], in one transaction.
    async fn charge_batch_once(&self, items: &[ChargeItem], holder: &str) -> Result<Vec<ChargeOutcome>> {
        let map = |e| map_sqlx_error("service", e);
        let mut tx = begin_write(&self.pool).await.map_err(map)?;
        let (moved, created) = charge_in(&mut tx, items, holder).await?;
        // Services not moved: release the holder's leases; the rest are unknown
        // or have been billed by someone else.
        let rest: Vec<i64> = items
            .iter()
            .map(|i| i.service_id.0)
            .filter(|id| !moved.contains(id))
            .collect();
        let mut known = HashSet::new();
        for chunk in rest.chunks(BATCH_CHUNK) {
            let mut q = Builder::new(
                "UPDATE services SET lease_holder = NULL, lease_until = NULL WHERE lease_holder = ",
            );
            q.push_bind(holder).push(" AND id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            q.push(")");
            q.build().execute(&mut *tx).await.map_err(map)?;
            let mut q = Builder::new("SELECT id FROM services WHERE id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            q.push(")");
            for r in q.build().fetch_all(&mut *tx).await.map_err(map)? {
                known.insert(Cols::new(&r, "services").i64("id")?);
            }
        }
        tx.commit().await.map_err(map)?;
        Ok(items
            .iter()
            .map(|i| {
                let id = i.service_id.0;
                let recorded = || i.charges.iter().map(|c| created.contains(&c.key)).collect();
                if moved.contains(&id) {
                    ChargeOutcome::Billed { created: recorded() }
                } else if known.contains(&id) {
                    ChargeOutcome::Superseded { created: recorded() }
                } else {
                    ChargeOutcome::NotFound
                }
            })
            .collect())
    }

    /// One attempt of [`ServiceRepo::charge_due`]: the locking read, the plan
    /// and [`charge_in`], in one transaction.
    async fn charge_due_once(
        &self,
        tenant: TenantId,
        today: NaiveDate,
        claim: &Claim,
        after: Option<ServiceId>,
        plan: &(dyn PlanCharges + 'static),
    ) -> Result<DueCharges> {
        let map = |e| map_sqlx_error("service", e);
        let mut tx = begin_write(&self.pool).await.map_err(map)?;
        let written = async {
            let rows = query(CHARGE_DUE.as_str())
                .bind(tenant.0)
                .bind(today)
                .bind(ts(claim.now))
                .bind(row::limit(claim.limit))
                .bind(after.map_or(i64::MIN, |id| id.0))
                .fetch_all(&mut *tx)
                .await
                .map_err(map)?;
            let mut due = Self::many(rows)?;
            due.sort_by_key(|s| s.id);
            let items = plan_due(&due, plan)?;
            let (moved, created) = charge_in(&mut tx, &items, &claim.holder).await?;
            Ok::<_, Error>((due, items, moved, created))
        }
        .await;
        let (due, items, moved, created) = match written {
            Ok(w) => w,
            Err(e) => {
                // At once, not when the connection is next used: the rows stay
                // locked until then, and `SKIP LOCKED` would pass them over.
                if let Err(r) = tx.rollback().await {
                    tracing::warn!(error = %r, "rolling back charge_due failed");
                }
                return Err(e);
            }
        };
        tx.commit().await.map_err(map)?;
        let charged = items
            .into_iter()
            .map(|i| {
                let recorded = i.charges.iter().map(|c| created.contains(&c.key)).collect();
                // Locked since the read: only a foreign write outside the
                // lock protocol could have moved it.
                let outcome = if moved.contains(&i.service_id.0) {
                    ChargeOutcome::Billed { created: recorded }
                } else {
                    ChargeOutcome::Superseded { created: recorded }
                };
                (i, outcome)
            })
            .collect();
        Ok(DueCharges {
            last: due.last().map(|s| s.id),
            charged,
        })
    }
}

/// Runs `attempt` again (up to [`DEADLOCK_ATTEMPTS`] times) while the server
/// rolls its transaction back: daemons billing side by side on MySQL/MariaDB
/// can deadlock on the ledger's unique index, and the victim's transaction is
/// rolled back whole.
async fn retry_rolled_back<T, F, Fut>(what: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut n = 1;
    loop {
        match attempt().await {
            Err(e) if n < DEADLOCK_ATTEMPTS && is_rolled_back_by_the_server(&e) => {
                tracing::debug!(attempt = n, error = %e, "{what} rolled back by the server; running it again");
                tokio::time::sleep(std::time::Duration::from_millis(20 * u64::from(n))).await;
                n += 1;
            }
            outcome => return outcome,
        }
    }
}

/// The writes of a charge batch inside `tx`: the compare-and-set of every
/// item's `next_charge_on` (releasing `holder`'s leases of the moved ones),
/// then the charges of the moved services. Returns the ids moved and the keys
/// recorded.
async fn charge_in(
    tx: &mut sqlx::Transaction<'static, Db>,
    items: &[ChargeItem],
    holder: &str,
) -> Result<(HashSet<i64>, HashSet<String>)> {
    let map = |e| map_sqlx_error("service", e);
    let mut moved = HashSet::new();
    let mut created = HashSet::new();
    for chunk in items.chunks(BATCH_CHUNK) {
        let mut q = charge_moves(chunk, holder);
        for r in q.build().fetch_all(&mut **tx).await.map_err(map)? {
            moved.insert(Cols::new(&r, "services").i64("id")?);
        }
    }
    // The charges of the moved services, in the same transaction: a key
    // recorded before (a crash between recording and advancing) is skipped.
    let charges: Vec<&NewLedgerEntry> = items
        .iter()
        .filter(|i| moved.contains(&i.service_id.0))
        .flat_map(|i| &i.charges)
        .collect();
    for chunk in charges.chunks(BATCH_CHUNK) {
        let mut q = Builder::new(
            "INSERT INTO ledger (customer_id, service_id, kind, amount_micros, currency, period_start, \
                 key, created_at) ",
        );
        let micros = chunk
            .iter()
            .map(|c| c.amount.to_micro_units())
            .collect::<Result<Vec<i64>>>()?;
        q.push_values(chunk.iter().zip(micros), |mut b, (c, micros)| {
            b.push_bind(c.customer_id.0)
                .push_bind(c.service_id.map(|s| s.0))
                .push_bind(row::ledger_kind_str(c.kind))
                .push_bind(micros)
                .push_bind(c.amount.currency.as_str())
                .push_bind(c.period_start)
                .push_bind(c.key.as_str())
                .push_bind(ts(c.created_at));
        });
        q.push(" ON CONFLICT DO NOTHING RETURNING key");
        for r in q.build().fetch_all(&mut **tx).await.map_err(map)? {
            created.insert(Cols::new(&r, "ledger").string("key")?);
        }
    }
    Ok((moved, created))
}

#[async_trait]
impl ServiceRepo for Services {
    async fn insert(&self, new: &NewService) -> Result<Service> {
        let c = row::connection_columns(&new.connection);
        let row = query(concat!(
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
        let row = query(concat!(
            "SELECT ",
            cols!(services),
            " FROM services WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("service", e))?;
        Self::one(row, id)
    }

    async fn set_status(&self, id: ServiceId, status: ServiceStatus) -> Result<Service> {
        let row = query(concat!(
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
        let row = query(concat!(
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
        let rows = query(LIST_PROVISIONING.as_str())
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
        let rows = query(CLAIM_PROVISIONING.as_str())
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
        out.sort_by(|a, b| {
            a.next_billing_date
                .cmp(&b.next_billing_date)
                .then(a.id.cmp(&b.id))
        });
        Ok(out)
    }

    async fn mark_provisioned(&self, id: ServiceId, holder: &str, at: DateTime<Utc>) -> Result<bool> {
        self.mark(
            "UPDATE services SET provisioned = TRUE, provisioned_at = $3, lease_holder = NULL, \
             lease_until = NULL, attempts = 0 \
             WHERE id = $1 AND lease_holder = $2",
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
             WHERE id = $1 AND lease_holder = $2",
            id,
            holder,
            at,
        )
        .await
    }

    async fn claim_billable(
        &self,
        tenant: TenantId,
        today: NaiveDate,
        claim: &Claim,
    ) -> Result<Vec<Service>> {
        let rows = query(CLAIM_BILLABLE.as_str())
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
        let moved = query("UPDATE services SET next_charge_on = $3 WHERE id = $1 AND next_charge_on = $2")
            .bind(id.0)
            .bind(from)
            .bind(to)
            .execute(&mut *tx)
            .await
            .map_err(map)?
            .rows_affected();
        let released = query(
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

    async fn charge_batch(&self, items: &[ChargeItem], holder: &str) -> Result<Vec<ChargeOutcome>> {
        check_charge_batch(items)?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        retry_rolled_back("charge_batch", || self.charge_batch_once(items, holder)).await
    }

    async fn charge_due(
        &self,
        tenant: TenantId,
        today: NaiveDate,
        claim: &Claim,
        after: Option<ServiceId>,
        plan: &(dyn PlanCharges + 'static),
    ) -> Result<DueCharges> {
        retry_rolled_back("charge_due", || {
            self.charge_due_once(tenant, today, claim, after, plan)
        })
        .await
    }

    async fn due_between(&self, tenant: TenantId, from: NaiveDate, to: NaiveDate) -> Result<Vec<Service>> {
        let rows = query(concat!(
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
        let rows = query(concat!(
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
    pub(super) pool: DbPool,
}

#[async_trait]
impl LedgerRepo for Ledger {
    async fn record(&self, new: &NewLedgerEntry) -> Result<LedgerEntry> {
        let row = query(concat!(
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
        let rows = query(concat!(
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
        let rows = query(concat!(
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
        let row = query("SELECT COUNT(*) FROM ledger WHERE kind = 'charge'")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("ledger entry", e))?;
        count_of(&row, "ledger.count")
    }
}
