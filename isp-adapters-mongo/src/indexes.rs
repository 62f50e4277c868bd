//! The indexes the jobs need, and the unique ones that carry the exactly-once rules.

use isp_core::Result;
use mongodb::bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::{Database, IndexModel};

use crate::collections as c;
use crate::error::map_mongo_error;

fn index(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(IndexOptions::builder().name(name.to_owned()).build())
        .build()
}

fn unique(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(IndexOptions::builder().name(name.to_owned()).unique(true).build())
        .build()
}

/// Unique among the documents that have the (single) field. Sparse rather than
/// partial: nx-27017 ignores `partialFilterExpression`, while a missing field
/// never collides there either (SQLite's NULLs are distinct).
fn unique_sparse(field: &str, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(doc! { field: 1 })
        .options(
            IndexOptions::builder()
                .name(name.to_owned())
                .unique(true)
                .sparse(true)
                .build(),
        )
        .build()
}

/// Every index [`MongoStore::ensure_indexes`](crate::MongoStore::ensure_indexes)
/// creates, as `(collection, index)`: for operators who manage indexes with
/// their own tooling.
///
/// Unique (correctness, not speed):
/// - `subscribers {tenant_id, phone}`: one subscriber per phone in a tenant;
/// - `devices {subscriber_id, mac}`: one device record per MAC of a subscriber;
/// - `vouchers {tenant_id, code}`;
/// - (no index) `hotspot_names` is unique by its `_id`, `"<tenant>/<name>"`:
///   subscribers' usernames and vouchers' codes share one namespace per tenant;
/// - `plans {tenant_id, name}`;
/// - `services {pppoe_key}` (`<router>/<username>`, PPPoE services only);
/// - `ledger {key}`, and `{charge_key}` (`<service>/<period>`, charges only): one
///   charge per service and period;
/// - `notices {recipient, kind, deadline, subject}`: at most one notice each
///   (the subject is `service:<id>` for a service's reminders, "" otherwise).
/// - (no index) `payments` is unique by its `_id`, `"<tenant>/<reference>"`,
///   and `pending_grants` by `"<subscriber>:<router>"` (see `repos::grants`).
///
/// For the jobs: subscribers by `{active, paid_until}`; vouchers by `deadline`
/// and the voucher portal's (seed 003) expiry and usage deadlines with status,
/// and router with status and usage; services by tenant with status and
/// billing dates; notices by status; audit events by time and router;
/// pending grants by subscriber and router, in claim order (age, subscriber,
/// router) and by lease expiry; RADIUS sessions live per router (in start
/// order) and per (tenant, user), and by last record and end (stale sessions,
/// retention).
pub fn index_models() -> Vec<(&'static str, IndexModel)> {
    vec![
        // Subscribers.
        (
            c::SUBSCRIBERS,
            unique(doc! { "tenant_id": 1, "phone": 1 }, "tenant_phone_unique"),
        ),
        (
            c::SUBSCRIBERS,
            index(doc! { "active": 1, "paid_until": 1 }, "active_paid_until"),
        ),
        (
            c::SUBSCRIBERS,
            index(doc! { "tenant_id": 1, "active": 1 }, "tenant_active"),
        ),
        // Devices.
        (
            c::DEVICES,
            unique(doc! { "subscriber_id": 1, "mac": 1 }, "subscriber_mac_unique"),
        ),
        (c::DEVICES, index(doc! { "last_seen": 1 }, "last_seen")),
        // Vouchers.
        (
            c::VOUCHERS,
            unique(doc! { "tenant_id": 1, "code": 1 }, "tenant_code_unique"),
        ),
        (c::VOUCHERS, index(doc! { "deadline": 1 }, "deadline")),
        (
            c::VOUCHERS,
            index(
                doc! { "activation_deadline": 1, "status": 1 },
                "activation_deadline_status",
            ),
        ),
        (
            c::VOUCHERS,
            index(
                doc! { "purchase_deadline": 1, "status": 1 },
                "purchase_deadline_status",
            ),
        ),
        (
            c::VOUCHERS,
            index(doc! { "expected_end": 1, "status": 1 }, "expected_end_status"),
        ),
        (
            c::VOUCHERS,
            index(
                doc! { "router_id": 1, "status": 1, "started_at": 1 },
                "router_status_usage",
            ),
        ),
        (
            c::VOUCHERS,
            index(
                doc! { "router_id": 1, "started_at": 1, "status": 1 },
                "router_usage_status",
            ),
        ),
        // Plans and customers.
        (
            c::PLANS,
            unique(doc! { "tenant_id": 1, "name": 1 }, "tenant_name_unique"),
        ),
        (c::CUSTOMERS, index(doc! { "tenant_id": 1 }, "tenant")),
        // Services.
        (c::SERVICES, unique_sparse("pppoe_key", "pppoe_key_unique")),
        (
            c::SERVICES,
            index(
                doc! { "tenant_id": 1, "status": 1, "next_charge_on": 1 },
                "tenant_status_next_charge_on",
            ),
        ),
        (
            c::SERVICES,
            index(
                doc! { "tenant_id": 1, "next_billing_date": 1 },
                "tenant_next_billing_date",
            ),
        ),
        (c::SERVICES, index(doc! { "router_id": 1 }, "router")),
        // Ledger.
        (c::LEDGER, unique(doc! { "key": 1 }, "key_unique")),
        (c::LEDGER, unique_sparse("charge_key", "charge_key_unique")),
        (
            c::LEDGER,
            index(doc! { "customer_id": 1, "created_at": 1 }, "customer_created_at"),
        ),
        (
            c::LEDGER,
            index(doc! { "service_id": 1, "created_at": 1 }, "service_created_at"),
        ),
        // Notices.
        (
            c::NOTICES,
            unique(
                doc! { "recipient": 1, "kind": 1, "deadline": 1, "subject": 1 },
                "recipient_kind_deadline_subject_unique",
            ),
        ),
        (
            c::NOTICES,
            index(doc! { "status": 1, "created_at": 1 }, "status_created_at"),
        ),
        // Grants.
        (
            c::PENDING_GRANTS,
            index(doc! { "subscriber_id": 1, "router_id": 1 }, "subscriber_router"),
        ),
        (
            c::PENDING_GRANTS,
            index(
                doc! { "created_at": 1, "subscriber_id": 1, "router_id": 1 },
                "claim_order",
            ),
        ),
        (c::PENDING_GRANTS, index(doc! { "lease.until": 1 }, "lease_until")),
        // RADIUS sessions (unique by `_id`, `"<router>/<session id>"`).
        (
            c::RADIUS_SESSIONS,
            index(
                doc! { "router_id": 1, "live": 1, "started": 1 },
                "router_live_started",
            ),
        ),
        (
            c::RADIUS_SESSIONS,
            index(doc! { "tenant_id": 1, "user": 1, "live": 1 }, "tenant_user_live"),
        ),
        (
            c::RADIUS_SESSIONS,
            index(doc! { "live": 1, "updated": 1 }, "live_updated"),
        ),
        (
            c::RADIUS_SESSIONS,
            index(doc! { "live": 1, "stopped": 1 }, "live_stopped"),
        ),
        // Audit log.
        (c::AUDIT, index(doc! { "at": 1 }, "at")),
        (c::AUDIT, index(doc! { "router_id": 1, "at": 1 }, "router_at")),
    ]
}

/// Creates every index; idempotent. Notices are first brought to their
/// current key (see `repos::upgrade_notices`).
pub(crate) async fn ensure(db: &Database) -> Result<()> {
    crate::repos::upgrade_notices(db).await?;
    let mut by_collection: Vec<(&'static str, Vec<IndexModel>)> = Vec::new();
    for (coll, model) in index_models() {
        match by_collection.iter_mut().find(|(c, _)| *c == coll) {
            Some((_, models)) => models.push(model),
            None => by_collection.push((coll, vec![model])),
        }
    }
    for (coll, models) in by_collection {
        db.collection::<Document>(coll)
            .create_indexes(models)
            .await
            .map_err(|e| map_mongo_error(e, "index"))?;
    }
    Ok(())
}
