//! Plans, customers, services and the ledger.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt as _;
use isp_core::domain::*;
use isp_core::ports::{
    check_charge_batch, plan_due, ChargeItem, ChargeOutcome, CustomerRepo, DueCharges, LedgerRepo,
    PlanCharges, PlanRepo, ServiceRepo,
};
use isp_core::{Error, Result};
use mongodb::bson::{self, doc, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::within;
use super::{and_into, cas, claim_loop, find_vec, guarded, held, me, update_matched, HasId, BATCH_CHUNK};
use crate::codec::*;
use crate::collections::{CUSTOMERS, LEDGER, PLANS, SERVICES};
use crate::error::is_duplicate_key;
use crate::Ctx;

const PLAN: &str = "plan";
const CUSTOMER: &str = "customer";
const SERVICE: &str = "service";
const LEDGER_ENTRY: &str = "ledger entry";

fn currency(raw: &str) -> Result<Currency> {
    Currency::parse("currency", raw).map_err(stored_err)
}

// ---------------------------------------------------------------- plans

/// A plan as stored: the price as integer 1/10 000 units (`price_micros`) and
/// its currency, never a float.
#[derive(Debug, Serialize, Deserialize)]
struct PlanDoc {
    #[serde(rename = "_id")]
    id: i64,
    tenant_id: i64,
    name: String,
    price_micros: i64,
    currency: String,
    duration_ms: Option<i64>,
    rate_limit: Option<String>,
}

impl PlanDoc {
    fn into_domain(self) -> Result<Plan> {
        Ok(Plan {
            id: PlanId(self.id),
            tenant_id: TenantId(self.tenant_id),
            name: RosName::parse("name", &self.name).map_err(stored_err)?,
            price: Money::from_micro_units(self.price_micros, currency(&self.currency)?),
            duration: self
                .duration_ms
                .map(|ms| {
                    u64::try_from(ms)
                        .map(|ms| RosDuration::from_std(Duration::from_millis(ms)))
                        .map_err(|_| stored("duration_ms", ms, "negative"))
                })
                .transpose()?,
            rate_limit: self
                .rate_limit
                .as_deref()
                .map(|r| RateLimit::parse("rate_limit", r))
                .transpose()
                .map_err(stored_err)?,
        })
    }
}

/// [`PlanRepo`] on the `plans` collection.
#[derive(Debug)]
pub(crate) struct MongoPlanRepo(pub(crate) Ctx);

impl MongoPlanRepo {
    fn coll(&self) -> Collection<PlanDoc> {
        self.0.coll(PLANS)
    }
}

#[async_trait]
impl PlanRepo for MongoPlanRepo {
    async fn insert(&self, new: &NewPlan) -> Result<Plan> {
        within(self.0.operation_timeout, async {
            let duration_ms = new
                .duration
                .map(|d| {
                    i64::try_from(d.as_std().as_millis())
                        .map_err(|_| Error::invalid("duration", d, "too long"))
                })
                .transpose()?;
            let d = PlanDoc {
                id: self.0.next_id(PLANS).await?,
                tenant_id: new.tenant_id.0,
                name: new.name.as_str().to_owned(),
                price_micros: new.price.to_micro_units()?,
                currency: new.price.currency.as_str().to_owned(),
                duration_ms,
                rate_limit: new.rate_limit.map(|r| r.to_string()),
            };
            self.coll().insert_one(&d).await.map_err(|e| {
                if is_duplicate_key(&e) {
                    Error::conflict(
                        PLAN,
                        format!("tenant {} already has a plan named {}", new.tenant_id, new.name),
                    )
                } else {
                    me(PLAN)(e)
                }
            })?;
            d.into_domain()
        })
        .await
    }

    async fn update(&self, id: PlanId, terms: &NewPlan) -> Result<Plan> {
        let plan = self.get(id).await?;
        if let Some(e) = isp_core::ports::plan_identity_change(&plan, terms) {
            return Err(e);
        }
        within(self.0.operation_timeout, async {
            let duration_ms = terms
                .duration
                .map(|d| {
                    i64::try_from(d.as_std().as_millis())
                        .map_err(|_| Error::invalid("duration", d, "too long"))
                })
                .transpose()?;
            let set = doc! {
                "price_micros": terms.price.to_micro_units()?,
                "currency": terms.price.currency.as_str(),
                "duration_ms": duration_ms,
                "rate_limit": terms.rate_limit.map(|r| r.to_string()),
            };
            self.coll()
                .find_one_and_update(doc! { "_id": id.0 }, doc! { "$set": set })
                .return_document(mongodb::options::ReturnDocument::After)
                .await
                .map_err(me(PLAN))?
                .ok_or_else(|| Error::not_found(PLAN, id))?
                .into_domain()
        })
        .await
    }

    async fn get(&self, id: PlanId) -> Result<Plan> {
        within(self.0.operation_timeout, async {
            self.coll()
                .find_one(doc! { "_id": id.0 })
                .await
                .map_err(me(PLAN))?
                .ok_or_else(|| Error::not_found(PLAN, id))?
                .into_domain()
        })
        .await
    }

    async fn list(&self, tenant: TenantId) -> Result<Vec<Plan>> {
        within(self.0.operation_timeout, async {
            find_vec(
                &self.coll(),
                PLAN,
                doc! { "tenant_id": tenant.0 },
                doc! { "_id": 1 },
                None,
            )
            .await?
            .into_iter()
            .map(PlanDoc::into_domain)
            .collect()
        })
        .await
    }
}

// ---------------------------------------------------------------- customers

#[derive(Debug, Serialize, Deserialize)]
struct CustomerDoc {
    #[serde(rename = "_id")]
    id: i64,
    tenant_id: i64,
    name: String,
    phone: Option<String>,
}

impl CustomerDoc {
    fn into_domain(self) -> Result<Customer> {
        Ok(Customer {
            id: CustomerId(self.id),
            tenant_id: TenantId(self.tenant_id),
            name: self.name,
            phone: self
                .phone
                .as_deref()
                .map(|p| PhoneNumber::parse("phone", p))
                .transpose()
                .map_err(stored_err)?,
        })
    }
}

/// [`CustomerRepo`] on the `customers` collection.
#[derive(Debug)]
pub(crate) struct MongoCustomerRepo(pub(crate) Ctx);

#[async_trait]
impl CustomerRepo for MongoCustomerRepo {
    async fn insert(&self, new: &NewCustomer) -> Result<Customer> {
        within(self.0.operation_timeout, async {
            let d = CustomerDoc {
                id: self.0.next_id(CUSTOMERS).await?,
                tenant_id: new.tenant_id.0,
                name: new.name.clone(),
                phone: new.phone.as_ref().map(|p| p.as_str().to_owned()),
            };
            self.0
                .coll::<CustomerDoc>(CUSTOMERS)
                .insert_one(&d)
                .await
                .map_err(me(CUSTOMER))?;
            d.into_domain()
        })
        .await
    }

    async fn get(&self, id: CustomerId) -> Result<Customer> {
        within(self.0.operation_timeout, async {
            self.0
                .coll::<CustomerDoc>(CUSTOMERS)
                .find_one(doc! { "_id": id.0 })
                .await
                .map_err(me(CUSTOMER))?
                .ok_or_else(|| Error::not_found(CUSTOMER, id))?
                .into_domain()
        })
        .await
    }
}

// ---------------------------------------------------------------- services

/// How a service connects, as stored: `{type: "pppoe", username, password,
/// profile}` or `{type: "static_ip", address}`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ConnectionDoc {
    Pppoe {
        username: String,
        password: String,
        profile: String,
    },
    StaticIp {
        address: String,
    },
}

/// A service as stored. Local dates are `YYYY-MM-DD` strings. `pppoe_key` is
/// `<router id>/<PPPoE username>` (absent for static IP), for the sparse unique
/// index that keeps a username unique per router.
#[derive(Serialize, Deserialize)]
struct ServiceDoc {
    #[serde(rename = "_id")]
    id: i64,
    tenant_id: i64,
    customer_id: i64,
    router_id: i64,
    plan_id: i64,
    status: String,
    connection: ConnectionDoc,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pppoe_key: Option<String>,
    next_billing_date: String,
    billing_day: i64,
    next_charge_on: String,
    provisioned: bool,
    provisioned_at: Option<bson::DateTime>,
    deprovisioned_at: Option<bson::DateTime>,
    lease: LeaseDoc,
    attempts: i64,
}

impl HasId for ServiceDoc {
    fn id(&self) -> i64 {
        self.id
    }
}

impl ServiceDoc {
    fn into_domain(self) -> Result<Service> {
        let connection = match self.connection {
            ConnectionDoc::Pppoe {
                username,
                password,
                profile,
            } => Connection::Pppoe {
                username: RosName::parse("connection.username", &username).map_err(stored_err)?,
                password: SecretPassword::parse("connection.password", &password).map_err(stored_err)?,
                profile: RosName::parse("connection.profile", &profile).map_err(stored_err)?,
            },
            ConnectionDoc::StaticIp { address } => Connection::StaticIp {
                address: parse_ipv4("connection.address", &address).map_err(stored_err)?,
            },
        };
        Ok(Service {
            id: ServiceId(self.id),
            tenant_id: TenantId(self.tenant_id),
            customer_id: CustomerId(self.customer_id),
            router_id: RouterId(self.router_id),
            plan_id: PlanId(self.plan_id),
            status: ServiceStatus::parse("status", &self.status).map_err(stored_err)?,
            connection,
            next_billing_date: from_bday("next_billing_date", &self.next_billing_date)?,
            billing_day: to_u32("billing_day", self.billing_day)?,
            next_charge_on: from_bday("next_charge_on", &self.next_charge_on)?,
            provisioned: self.provisioned,
            provisioned_at: from_opt_bdate("provisioned_at", self.provisioned_at)?,
            deprovisioned_at: from_opt_bdate("deprovisioned_at", self.deprovisioned_at)?,
            lease: self.lease.into_domain()?,
            attempts: to_u32("attempts", self.attempts)?,
        })
    }
}

fn services(docs: Vec<ServiceDoc>) -> Result<Vec<Service>> {
    docs.into_iter().map(ServiceDoc::into_domain).collect()
}

/// [`ServiceRepo`] on the `services` collection.
#[derive(Debug)]
pub(crate) struct MongoServiceRepo(pub(crate) Ctx);

impl MongoServiceRepo {
    fn coll(&self) -> Collection<ServiceDoc> {
        self.0.coll(SERVICES)
    }

    async fn set_one(&self, id: ServiceId, set: Document) -> Result<Service> {
        self.coll()
            .find_one_and_update(doc! { "_id": id.0 }, guarded(doc! { "$set": set }))
            .return_document(ReturnDocument::After)
            .await
            .map_err(me(SERVICE))?
            .ok_or_else(|| Error::not_found(SERVICE, id))?
            .into_domain()
    }

    /// Active, not provisioned and paid up; or provisioned and (not active or
    /// overdue). Written as a top-level `$or` of plain conjunctions, each with the
    /// tenant (see [`and_into`]).
    fn provisioning_filter(tenant: TenantId, today: NaiveDate) -> Result<Document> {
        let today = to_bday("today", today)?;
        let active = ServiceStatus::Active.as_str();
        Ok(and_into(
            doc! {
                "tenant_id": tenant.0,
                "$or": [
                    { "status": active, "provisioned": false, "next_billing_date": { "$gte": &today } },
                    { "provisioned": true, "status": { "$ne": active } },
                    { "provisioned": true, "next_billing_date": { "$lt": &today } },
                ],
            },
            Document::new(),
        ))
    }

    fn by_next_billing_date() -> Document {
        doc! { "next_billing_date": 1, "_id": 1 }
    }

    /// [`ServiceRepo::charge_batch`] for one chunk. Without transactions the
    /// order is what keeps a charge exactly-once: the charges of the services
    /// still at `from` are recorded first (one unordered `insert_many`, taken
    /// keys skipped), then each service is moved (compare-and-set). A crash in
    /// between leaves keys that the next run finds taken.
    async fn charge_chunk(
        &self,
        chunk: &[ChargeItem],
        holder: &str,
        out: &mut Vec<ChargeOutcome>,
    ) -> Result<()> {
        let ids: Vec<i64> = chunk.iter().map(|i| i.service_id.0).collect();
        let found: Vec<Document> = self
            .0
            .coll::<Document>(SERVICES)
            .find(doc! { "_id": { "$in": &ids } })
            .projection(doc! { "_id": 1, "next_charge_on": 1 })
            .await
            .map_err(me(SERVICE))?
            .try_collect()
            .await
            .map_err(me(SERVICE))?;
        let mut current = HashMap::with_capacity(found.len());
        for d in &found {
            let id = int_of(d, "_id")?;
            let at = d
                .get_str("next_charge_on")
                .map_err(|_| stored("next_charge_on", id, "not a YYYY-MM-DD date"))?;
            current.insert(id, from_bday("next_charge_on", at)?);
        }
        let due: Vec<&NewLedgerEntry> = chunk
            .iter()
            .filter(|i| current.get(&i.service_id.0) == Some(&i.from))
            .flat_map(|i| &i.charges)
            .collect();
        let created = record_charges(&self.0, &due).await?;
        let coll = self.coll();
        for item in chunk {
            let id = item.service_id.0;
            if !current.contains_key(&id) {
                out.push(ChargeOutcome::NotFound);
                continue;
            }
            let (from, to) = (to_bday("from", item.from)?, to_bday("to", item.to)?);
            let at_from = doc! { "_id": id, "next_charge_on": &from };
            // Usually the holder's claim is intact: one update moves and releases.
            let moved_and_released = update_matched(
                &coll,
                SERVICE,
                and_into(at_from.clone(), held(holder)),
                doc! { "$set": { "next_charge_on": &to, "lease": no_lease() } },
            )
            .await?;
            let moved = moved_and_released
                || update_matched(
                    &coll,
                    SERVICE,
                    at_from,
                    doc! { "$set": { "next_charge_on": &to } },
                )
                .await?;
            if !moved_and_released {
                update_matched(
                    &coll,
                    SERVICE,
                    and_into(doc! { "_id": id }, held(holder)),
                    doc! { "$set": { "lease": no_lease() } },
                )
                .await?;
            }
            let recorded = item.charges.iter().map(|c| created.contains(&c.key)).collect();
            out.push(if moved {
                ChargeOutcome::Billed { created: recorded }
            } else {
                ChargeOutcome::Superseded { created: recorded }
            });
        }
        Ok(())
    }

    /// Records an outcome if `holder` holds the lease or there is none.
    async fn finish(&self, id: ServiceId, holder: &str, set: Document) -> Result<bool> {
        cas(&self.coll(), SERVICE, id.0, held(holder), doc! { "$set": set }).await
    }
}

#[async_trait]
impl ServiceRepo for MongoServiceRepo {
    async fn insert(&self, new: &NewService) -> Result<Service> {
        within(self.0.operation_timeout, async {
            let (connection, pppoe_key) = match &new.connection {
                Connection::Pppoe {
                    username,
                    password,
                    profile,
                } => (
                    ConnectionDoc::Pppoe {
                        username: username.as_str().to_owned(),
                        password: password.expose().to_owned(),
                        profile: profile.as_str().to_owned(),
                    },
                    Some(format!("{}/{}", new.router_id.0, username.as_str())),
                ),
                Connection::StaticIp { address } => (
                    ConnectionDoc::StaticIp {
                        address: address.to_string(),
                    },
                    None,
                ),
            };
            if !(1..=31).contains(&new.billing_day) {
                return Err(Error::invalid("billing_day", new.billing_day, "must be 1 to 31"));
            }
            let d = ServiceDoc {
                id: 0,
                tenant_id: new.tenant_id.0,
                customer_id: new.customer_id.0,
                router_id: new.router_id.0,
                plan_id: new.plan_id.0,
                status: new.status.as_str().to_owned(),
                connection,
                pppoe_key,
                next_billing_date: to_bday("next_billing_date", new.next_billing_date)?,
                billing_day: i64::from(new.billing_day),
                next_charge_on: to_bday("next_charge_on", new.next_charge_on)?,
                provisioned: false,
                provisioned_at: None,
                deprovisioned_at: None,
                lease: LeaseDoc::none(),
                attempts: 0,
            };
            let d = ServiceDoc {
                id: self.0.next_id(SERVICES).await?,
                ..d
            };
            self.coll().insert_one(&d).await.map_err(|e| {
                if is_duplicate_key(&e) {
                    Error::conflict(
                        SERVICE,
                        format!(
                            "router {} already has a PPPoE service named {}",
                            new.router_id,
                            d.pppoe_key
                                .as_deref()
                                .and_then(|k| k.split_once('/'))
                                .map_or("?", |k| k.1)
                        ),
                    )
                } else {
                    me(SERVICE)(e)
                }
            })?;
            d.into_domain()
        })
        .await
    }

    async fn get(&self, id: ServiceId) -> Result<Service> {
        within(self.0.operation_timeout, async {
            self.coll()
                .find_one(doc! { "_id": id.0 })
                .await
                .map_err(me(SERVICE))?
                .ok_or_else(|| Error::not_found(SERVICE, id))?
                .into_domain()
        })
        .await
    }

    async fn set_status(&self, id: ServiceId, status: ServiceStatus) -> Result<Service> {
        within(self.0.operation_timeout, async {
            self.set_one(id, doc! { "status": status.as_str() }).await
        })
        .await
    }

    async fn set_next_billing_date(&self, id: ServiceId, date: NaiveDate) -> Result<Service> {
        within(self.0.operation_timeout, async {
            self.set_one(
                id,
                doc! { "next_billing_date": to_bday("next_billing_date", date)? },
            )
            .await
        })
        .await
    }

    async fn list_provisioning(
        &self,
        tenant: TenantId,
        today: NaiveDate,
        limit: usize,
    ) -> Result<Vec<Service>> {
        within(self.0.operation_timeout, async {
            let filter = Self::provisioning_filter(tenant, today)?;
            services(
                find_vec(
                    &self.coll(),
                    SERVICE,
                    filter,
                    Self::by_next_billing_date(),
                    Some(limit),
                )
                .await?,
            )
        })
        .await
    }

    async fn claim_provisioning(
        &self,
        tenant: TenantId,
        today: NaiveDate,
        claim: &Claim,
    ) -> Result<Vec<Service>> {
        within(self.0.operation_timeout, async {
            let due = Self::provisioning_filter(tenant, today)?;
            services(claim_loop(&self.coll(), SERVICE, due, Self::by_next_billing_date(), claim).await?)
        })
        .await
    }

    async fn mark_provisioned(&self, id: ServiceId, holder: &str, at: DateTime<Utc>) -> Result<bool> {
        within(self.0.operation_timeout, async {
            self.finish(
                id,
                holder,
                doc! { "provisioned": true, "provisioned_at": to_bdate(at), "lease": no_lease(), "attempts": 0_i64 },
            )
            .await
        })
        .await
    }

    async fn mark_deprovisioned(&self, id: ServiceId, holder: &str, at: DateTime<Utc>) -> Result<bool> {
        within(self.0.operation_timeout, async {
            self.finish(
                id,
                holder,
                doc! { "provisioned": false, "deprovisioned_at": to_bdate(at), "lease": no_lease(), "attempts": 0_i64 },
            )
            .await
        })
        .await
    }

    async fn claim_billable(
        &self,
        tenant: TenantId,
        today: NaiveDate,
        claim: &Claim,
    ) -> Result<Vec<Service>> {
        within(self.0.operation_timeout, async {
            let due = doc! {
                "tenant_id": tenant.0,
                "status": ServiceStatus::Active.as_str(),
                "next_charge_on": { "$lte": to_bday("today", today)? },
            };
            services(
                claim_loop(
                    &self.coll(),
                    SERVICE,
                    due,
                    doc! { "next_charge_on": 1, "_id": 1 },
                    claim,
                )
                .await?,
            )
        })
        .await
    }

    async fn advance_billing(
        &self,
        id: ServiceId,
        holder: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<bool> {
        within(self.0.operation_timeout, async {
            // Compare-and-set on `next_charge_on`, then the caller's lease goes either way.
            let moved = update_matched(
                &self.coll(),
                SERVICE,
                doc! { "_id": id.0, "next_charge_on": to_bday("from", from)? },
                doc! { "$set": { "next_charge_on": to_bday("to", to)? } },
            )
            .await?;
            // `NotFound` for an unknown id.
            cas(
                &self.coll(),
                SERVICE,
                id.0,
                held(holder),
                doc! { "$set": { "lease": no_lease() } },
            )
            .await?;
            Ok(moved)
        })
        .await
    }

    async fn charge_batch(&self, items: &[ChargeItem], holder: &str) -> Result<Vec<ChargeOutcome>> {
        check_charge_batch(items)?;
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(BATCH_CHUNK) {
            within(
                self.0.operation_timeout,
                self.charge_chunk(chunk, holder, &mut out),
            )
            .await?;
        }
        Ok(out)
    }

    async fn charge_due(
        &self,
        tenant: TenantId,
        today: NaiveDate,
        claim: &Claim,
        after: Option<ServiceId>,
        plan: &(dyn PlanCharges + 'static),
    ) -> Result<DueCharges> {
        // No transactions: the due services are claimed (the lease keeps other
        // billers off), billed with `charge_batch`, and the rest released.
        let mut due = doc! {
            "tenant_id": tenant.0,
            "status": ServiceStatus::Active.as_str(),
            "next_charge_on": { "$lte": to_bday("today", today)? },
        };
        if let Some(id) = after {
            due = and_into(due, doc! { "_id": { "$gt": id.0 } });
        }
        let mut claimed = within(self.0.operation_timeout, async {
            services(claim_loop(&self.coll(), SERVICE, due, doc! { "_id": 1 }, claim).await?)
        })
        .await?;
        claimed.sort_by_key(|s| s.id);
        let planned = plan_due(&claimed, plan);
        let billed: HashSet<ServiceId> = match &planned {
            Ok(items) => items.iter().map(|i| i.service_id).collect(),
            Err(_) => HashSet::new(),
        };
        let idle: Vec<i64> = claimed
            .iter()
            .filter(|s| !billed.contains(&s.id))
            .map(|s| s.id.0)
            .collect();
        if !idle.is_empty() {
            within(self.0.operation_timeout, async {
                self.coll()
                    .update_many(
                        and_into(doc! { "_id": { "$in": &idle } }, held(&claim.holder)),
                        doc! { "$set": { "lease": no_lease() } },
                    )
                    .await
                    .map_err(me(SERVICE))
            })
            .await?;
        }
        let items = planned?;
        let outcomes = self.charge_batch(&items, &claim.holder).await?;
        Ok(DueCharges {
            last: claimed.last().map(|s| s.id),
            charged: items.into_iter().zip(outcomes).collect(),
        })
    }

    async fn due_between(&self, tenant: TenantId, from: NaiveDate, to: NaiveDate) -> Result<Vec<Service>> {
        within(self.0.operation_timeout, async {
            let filter = doc! {
                "tenant_id": tenant.0,
                "status": ServiceStatus::Active.as_str(),
                "next_billing_date": { "$gte": to_bday("from", from)?, "$lte": to_bday("to", to)? },
            };
            services(find_vec(&self.coll(), SERVICE, filter, Self::by_next_billing_date(), None).await?)
        })
        .await
    }

    async fn on_router(&self, router: RouterId) -> Result<Vec<Service>> {
        within(self.0.operation_timeout, async {
            services(
                find_vec(
                    &self.coll(),
                    SERVICE,
                    doc! { "router_id": router.0 },
                    doc! { "_id": 1 },
                    None,
                )
                .await?,
            )
        })
        .await
    }
}

// ---------------------------------------------------------------- ledger

/// A ledger entry as stored: the amount as integer 1/10 000 units and its currency.
#[derive(Debug, Serialize, Deserialize)]
struct LedgerDoc {
    #[serde(rename = "_id")]
    id: i64,
    customer_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service_id: Option<i64>,
    kind: String,
    amount_micros: i64,
    currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    period_start: Option<String>,
    key: String,
    /// `<service id>/<period start>` for charges of a service and period (absent
    /// otherwise), for the sparse unique index: one charge per service and period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    charge_key: Option<String>,
    created_at: bson::DateTime,
}

fn ledger_kind(kind: LedgerKind) -> &'static str {
    match kind {
        LedgerKind::Charge => "charge",
        LedgerKind::Payment => "payment",
    }
}

impl LedgerDoc {
    /// The document of `new`, with id `id`.
    fn new(new: &NewLedgerEntry, id: i64) -> Result<LedgerDoc> {
        let period_start = new.period_start.map(|p| to_bday("period_start", p)).transpose()?;
        let charge_key = match (new.kind, new.service_id, &period_start) {
            (LedgerKind::Charge, Some(service), Some(period)) => Some(format!("{}/{period}", service.0)),
            _ => None,
        };
        Ok(LedgerDoc {
            id,
            customer_id: new.customer_id.0,
            service_id: new.service_id.map(|s| s.0),
            kind: ledger_kind(new.kind).to_owned(),
            amount_micros: new.amount.to_micro_units()?,
            currency: new.amount.currency.as_str().to_owned(),
            period_start,
            key: new.key.clone(),
            charge_key,
            created_at: to_bdate(new.created_at),
        })
    }

    fn into_domain(self) -> Result<LedgerEntry> {
        let kind = match self.kind.as_str() {
            "charge" => LedgerKind::Charge,
            "payment" => LedgerKind::Payment,
            other => return Err(stored("kind", other, "expected charge or payment")),
        };
        Ok(LedgerEntry {
            id: LedgerEntryId(self.id),
            customer_id: CustomerId(self.customer_id),
            service_id: self.service_id.map(ServiceId),
            kind,
            amount: Money::from_micro_units(self.amount_micros, currency(&self.currency)?),
            period_start: self
                .period_start
                .as_deref()
                .map(|p| from_bday("period_start", p))
                .transpose()?,
            key: self.key,
            created_at: from_bdate("created_at", self.created_at)?,
        })
    }
}

/// Records `entries` with one unordered `insert_many`, an entry whose key (or
/// service and period) is taken skipped; returns the keys this call recorded.
/// After a duplicate key the outcome is read back from the ledger (the ids
/// this call allocated tell its entries apart), and an entry a server left out
/// for another reason is inserted on its own, so none is lost.
async fn record_charges(ctx: &Ctx, entries: &[&NewLedgerEntry]) -> Result<HashSet<String>> {
    if entries.is_empty() {
        return Ok(HashSet::new());
    }
    let first = ctx.next_ids(LEDGER, entries.len() as u64).await?;
    let docs = entries
        .iter()
        .zip(first..)
        .map(|(e, id)| LedgerDoc::new(e, id))
        .collect::<Result<Vec<_>>>()?;
    let coll: Collection<LedgerDoc> = ctx.coll(LEDGER);
    match coll.insert_many(&docs).ordered(false).await {
        Ok(_) => return Ok(docs.into_iter().map(|d| d.key).collect()),
        Err(e) if is_duplicate_key(&e) => {}
        Err(e) => return Err(me(LEDGER_ENTRY)(e)),
    }
    let keys: Vec<&str> = docs.iter().map(|d| d.key.as_str()).collect();
    let stored: Vec<Document> = ctx
        .coll::<Document>(LEDGER)
        .find(doc! { "key": { "$in": &keys } })
        .projection(doc! { "_id": 1, "key": 1 })
        .await
        .map_err(me(LEDGER_ENTRY))?
        .try_collect()
        .await
        .map_err(me(LEDGER_ENTRY))?;
    let mut owner = HashMap::with_capacity(stored.len());
    for d in &stored {
        let id = int_of(d, "_id")?;
        let key = d.get_str("key").map_err(|_| stored_doc("key", d))?;
        owner.insert(key.to_owned(), id);
    }
    let mut created = HashSet::with_capacity(docs.len());
    for d in docs {
        match owner.get(&d.key) {
            Some(id) if *id == d.id => {
                created.insert(d.key);
            }
            Some(_) => {}
            None => match coll.insert_one(&d).await {
                Ok(_) => {
                    created.insert(d.key);
                }
                Err(e) if is_duplicate_key(&e) => {}
                Err(e) => return Err(me(LEDGER_ENTRY)(e)),
            },
        }
    }
    Ok(created)
}

/// An integer field as any integer type (nx-27017 hands small ones back as int32).
fn int_of(d: &Document, field: &str) -> Result<i64> {
    match d.get(field) {
        Some(bson::Bson::Int64(n)) => Ok(*n),
        Some(bson::Bson::Int32(n)) => Ok(i64::from(*n)),
        _ => Err(stored_doc(field, d)),
    }
}

/// A stored document whose `field` does not decode.
fn stored_doc(field: &str, d: &Document) -> Error {
    stored(
        field,
        d.get("_id").map_or_else(|| "?".to_owned(), ToString::to_string),
        "does not decode",
    )
}

/// [`LedgerRepo`] on the `ledger` collection.
#[derive(Debug)]
pub(crate) struct MongoLedgerRepo(pub(crate) Ctx);

impl MongoLedgerRepo {
    fn coll(&self) -> Collection<LedgerDoc> {
        self.0.coll(LEDGER)
    }

    async fn of(&self, filter: Document) -> Result<Vec<LedgerEntry>> {
        find_vec(
            &self.coll(),
            LEDGER_ENTRY,
            filter,
            doc! { "created_at": 1, "_id": 1 },
            None,
        )
        .await?
        .into_iter()
        .map(LedgerDoc::into_domain)
        .collect()
    }
}

#[async_trait]
impl LedgerRepo for MongoLedgerRepo {
    async fn record(&self, new: &NewLedgerEntry) -> Result<LedgerEntry> {
        within(self.0.operation_timeout, async {
            if new.key.is_empty() {
                return Err(Error::invalid("key", "", "an idempotency key is required"));
            }
            let d = LedgerDoc::new(new, 0)?;
            let d = LedgerDoc {
                id: self.0.next_id(LEDGER).await?,
                ..d
            };
            self.coll().insert_one(&d).await.map_err(|e| {
                if is_duplicate_key(&e) {
                    Error::conflict(
                        LEDGER_ENTRY,
                        format!(
                            "an entry with key {} (or a charge of the same service and period) exists",
                            new.key
                        ),
                    )
                } else {
                    me(LEDGER_ENTRY)(e)
                }
            })?;
            d.into_domain()
        })
        .await
    }

    async fn of_service(&self, service: ServiceId) -> Result<Vec<LedgerEntry>> {
        within(self.0.operation_timeout, async {
            self.of(doc! { "service_id": service.0 }).await
        })
        .await
    }

    async fn of_customer(&self, customer: CustomerId) -> Result<Vec<LedgerEntry>> {
        within(self.0.operation_timeout, async {
            self.of(doc! { "customer_id": customer.0 }).await
        })
        .await
    }

    async fn count_charges(&self) -> Result<u64> {
        within(self.0.operation_timeout, async {
            self.coll()
                .count_documents(doc! { "kind": ledger_kind(LedgerKind::Charge) })
                .await
                .map_err(me(LEDGER_ENTRY))
        })
        .await
    }
}
