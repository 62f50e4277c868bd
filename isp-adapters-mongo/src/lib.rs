#![doc = include_str!("../README.md")]

mod codec;
mod error;
mod indexes;
mod repos;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use isp_core::ports::Repositories;
use isp_core::{Error, Result};
use mongodb::bson::doc;
use mongodb::options::{ClientOptions, ReturnDocument};
use mongodb::{Client, Collection, Database};
use serde::{Deserialize, Serialize};

pub use error::map_mongo_error;
pub use indexes::index_models;

/// Collection names, one per aggregate.
pub mod collections {
    /// Id sequences: `{_id: <collection>, seq: <last id>}`.
    pub const COUNTERS: &str = "counters";
    /// Tenants.
    pub const TENANTS: &str = "tenants";
    /// Hotspot subscribers.
    pub const SUBSCRIBERS: &str = "subscribers";
    /// Devices of subscribers.
    pub const DEVICES: &str = "devices";
    /// Vouchers.
    pub const VOUCHERS: &str = "vouchers";
    /// Price plans.
    pub const PLANS: &str = "plans";
    /// ISP customers.
    pub const CUSTOMERS: &str = "customers";
    /// ISP services.
    pub const SERVICES: &str = "services";
    /// Charges and payments.
    pub const LEDGER: &str = "ledger";
    /// Notices (SMS owed).
    pub const NOTICES: &str = "notices";
    /// Activity and router log.
    pub const AUDIT: &str = "audit_events";
    /// Last known router health.
    pub const ROUTER_STATUS: &str = "router_status";
    /// Hotspot user names, one namespace per tenant shared by subscribers'
    /// usernames and vouchers' codes: `{_id: "<tenant>/<name>", tenant_id,
    /// name, kind, owner_id, at}` (uniqueness from `_id`, which every server
    /// enforces, see `repos::hotspot`).
    pub const HOTSPOT_NAMES: &str = "hotspot_names";
    /// Payments that bought grants, one per (tenant, reference):
    /// `{_id: "<tenant>/<reference>", .., state}` (see `repos::grants`).
    pub const PAYMENTS: &str = "payments";
    /// Router work grants still owe, one per (subscriber, router):
    /// `{_id: "<subscriber>:<router>", ..}`.
    pub const PENDING_GRANTS: &str = "pending_grants";
    /// Sessions the routers in RADIUS mode report in accounting, one per
    /// (router, `Acct-Session-Id`): `{_id: "<router>/<session id>", .., live}`.
    pub const RADIUS_SESSIONS: &str = "radius_sessions";
    /// Named leases of earlier versions (no longer written: every lease
    /// lives on its item, see `LeaseRepo`).
    pub const LEASES: &str = "leases";
}

/// Timeouts of a [`MongoStore`], so that a black-holed or stalled server frees
/// the job waiting on it with a transient `Unavailable` instead of holding it.
/// A value given in the connection string (`connectTimeoutMS`,
/// `serverSelectionTimeoutMS`) wins over the first two.
#[derive(Debug, Clone)]
pub struct MongoOptions {
    /// Longest wait for a new TCP (and TLS) connection. Default 10 s.
    pub connect_timeout: Duration,
    /// Longest an operation waits for a usable server (all unreachable: the
    /// driver's `ServerSelection` error). Default 10 s.
    pub server_selection_timeout: Duration,
    /// Longest one repository call may take, all its round trips included.
    /// Enforced on the client: the 3.x driver has neither `socketTimeoutMS`
    /// nor `timeoutMS`, so a server that accepted the request and then went
    /// silent would otherwise hold the call forever. Past it the call is
    /// dropped (a write may or may not have been applied, like any lost
    /// reply) and fails as transient `Unavailable`. Default 30 s.
    pub operation_timeout: Duration,
}

impl Default for MongoOptions {
    fn default() -> Self {
        MongoOptions {
            connect_timeout: Duration::from_secs(10),
            server_selection_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
        }
    }
}

/// A MongoDB database holding every repository of the engine.
///
/// `Debug` shows the database name only, never the connection string.
#[derive(Clone)]
pub struct MongoStore {
    ctx: Ctx,
}

impl fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoStore")
            .field("database", &self.ctx.db.name())
            .finish_non_exhaustive()
    }
}

impl MongoStore {
    /// Connects to `url` (a `mongodb://` or `mongodb+srv://` connection string) and
    /// uses the database `db_name`. Pings the server, so that a wrong address or
    /// refused credentials show here (`Unavailable`, `Authentication`). Errors
    /// never contain the password of the URL.
    pub async fn connect(url: &str, db_name: &str) -> Result<Self> {
        Self::connect_with(url, db_name, MongoOptions::default()).await
    }

    /// [`MongoStore::connect`] with timeouts.
    pub async fn connect_with(url: &str, db_name: &str, timeouts: MongoOptions) -> Result<Self> {
        validate_db_name(db_name)?;
        let secrets = url_password(url);
        let scrub = |e: mongodb::error::Error| -> Error {
            let mapped = map_mongo_error(e, "connection");
            scrub_error(mapped, &secrets)
        };
        let mut options = ClientOptions::parse(url).await.map_err(|e| {
            if matches!(e.kind.as_ref(), mongodb::error::ErrorKind::InvalidArgument { .. }) {
                Error::invalid(
                    "mongodb_url",
                    "[connection string]",
                    error::redact_secrets(&e.to_string(), &secrets),
                )
            } else {
                scrub(e)
            }
        })?;
        if options.app_name.is_none() {
            options.app_name = Some("isp".to_owned());
        }
        options.connect_timeout = options.connect_timeout.or(Some(timeouts.connect_timeout));
        options.server_selection_timeout = options
            .server_selection_timeout
            .or(Some(timeouts.server_selection_timeout));
        let client = Client::with_options(options).map_err(scrub)?;
        let db = client.database(db_name);
        let operation_timeout = timeouts.operation_timeout;
        repos::within(operation_timeout, db.run_command(doc! { "ping": 1 }))
            .await
            .map_err(scrub)?;
        Ok(MongoStore {
            ctx: Ctx {
                db: Arc::new(db),
                operation_timeout,
            },
        })
    }

    /// Uses an existing driver database handle (shares its client and pool),
    /// with the default [`MongoOptions::operation_timeout`].
    pub fn from_database(db: Database) -> Self {
        Self::from_database_with(db, MongoOptions::default().operation_timeout)
    }

    /// [`MongoStore::from_database`] with an operation timeout (the other
    /// timeouts belong to the client the handle came from).
    pub fn from_database_with(db: Database, operation_timeout: Duration) -> Self {
        MongoStore {
            ctx: Ctx {
                db: Arc::new(db),
                operation_timeout,
            },
        }
    }

    /// The driver's database handle.
    pub fn database(&self) -> &Database {
        &self.ctx.db
    }

    /// Creates every index the repositories rely on (see [`index_models`]); idempotent.
    ///
    /// The unique ones are part of correctness: (tenant, phone) of subscribers,
    /// (tenant, code) of vouchers, the ledger key and (service, period) of charges,
    /// (recipient, kind, deadline, subject) of notices. Call it once at start-up before
    /// any daemon writes.
    ///
    /// It also reserves in `hotspot_names` the name of every subscriber and
    /// voucher stored without one (data from before that collection; skipped
    /// when every item has one), and fails with `Conflict` if two stored items
    /// already share a hotspot user name.
    pub async fn ensure_indexes(&self) -> Result<()> {
        indexes::ensure(&self.ctx.db).await?;
        repos::backfill_names(&self.ctx).await
    }

    /// Every repository of this database, for wiring.
    pub fn repositories(&self) -> Repositories {
        repos::all(&self.ctx)
    }
}

fn validate_db_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 63
        || name.chars().any(|c| {
            matches!(
                c,
                '/' | '\\' | '.' | ' ' | '"' | '$' | '*' | '<' | '>' | ':' | '|' | '?'
            ) || c.is_control()
        });
    if bad {
        return Err(Error::invalid(
            "mongodb_database",
            name,
            "1 to 63 characters without / \\ . space \" $ * < > : | ?",
        ));
    }
    Ok(())
}

/// The password of a connection string, raw and percent-decoded, to scrub from errors.
fn url_password(url: &str) -> Vec<String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return Vec::new();
    };
    let Some((_, password)) = authority[..at].split_once(':') else {
        return Vec::new();
    };
    let mut out = vec![password.to_owned()];
    let decoded = percent_decode(password);
    if decoded != password {
        out.push(decoded);
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn scrub_error(e: Error, secrets: &[String]) -> Error {
    let s = |t: String| error::redact_secrets(&t, secrets);
    match e {
        Error::Unavailable { service, detail, .. } => Error::Unavailable {
            service,
            detail: s(detail),
            source: None,
        },
        Error::Authentication { service, detail } => Error::Authentication {
            service,
            detail: s(detail),
        },
        Error::Conflict { entity, detail } => Error::Conflict {
            entity,
            detail: s(detail),
        },
        Error::Rejected { service, detail } => Error::Rejected {
            service,
            detail: s(detail),
        },
        Error::Protocol { service, detail } => Error::Protocol {
            service,
            detail: s(detail),
        },
        Error::Internal(d) => Error::Internal(s(d)),
        other => other,
    }
}

/// What every repository shares: the database handle.
#[derive(Clone)]
pub(crate) struct Ctx {
    db: Arc<Database>,
    /// [`MongoOptions::operation_timeout`].
    operation_timeout: Duration,
}

/// One id sequence per collection.
#[derive(Debug, Serialize, Deserialize)]
struct Counter {
    #[serde(rename = "_id")]
    id: String,
    seq: i64,
}

impl Ctx {
    pub(crate) fn coll<T: Send + Sync>(&self, name: &str) -> Collection<T> {
        self.db.collection(name)
    }

    /// Allocates `n` consecutive ids of `sequence` atomically and returns the first.
    pub(crate) async fn next_ids(&self, sequence: &'static str, n: u64) -> Result<i64> {
        let n = i64::try_from(n).map_err(|_| Error::invalid("count", n, "too many ids at once"))?;
        let counters: Collection<Counter> = self.coll(collections::COUNTERS);
        // Two concurrent first upserts may collide on `_id`; the loser retries once
        // and then finds the document.
        let mut last_err = None;
        for _ in 0..3 {
            let res = counters
                .find_one_and_update(doc! { "_id": sequence }, doc! { "$inc": { "seq": n } })
                .upsert(true)
                .return_document(ReturnDocument::After)
                .await;
            match res {
                Ok(Some(c)) => return Ok(c.seq - n + 1),
                // Some wire-compatible servers answer a failed upsert with no document.
                Ok(None) => {
                    last_err = Some(Error::Internal(format!(
                        "counter {sequence}: no document returned"
                    )))
                }
                Err(e) if error::is_duplicate_key(&e) => last_err = Some(map_mongo_error(e, "counter")),
                Err(e) => return Err(map_mongo_error(e, "counter")),
            }
        }
        Err(last_err.unwrap_or_else(|| Error::Internal(format!("counter {sequence} failed"))))
    }

    /// Allocates one id of `sequence`.
    pub(crate) async fn next_id(&self, sequence: &'static str) -> Result<i64> {
        self.next_ids(sequence, 1).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_found_for_scrubbing() {
        assert_eq!(url_password("mongodb://u:p%40ss@h:1/db"), vec!["p%40ss", "p@ss"]);
        assert_eq!(url_password("mongodb://h:1/db"), Vec::<String>::new());
        assert_eq!(url_password("mongodb://u@h"), Vec::<String>::new());
        assert_eq!(percent_decode("a%2"), "a%2");
    }

    #[test]
    fn database_names_are_checked() {
        assert!(validate_db_name("isp").is_ok());
        let e = validate_db_name("a/b").unwrap_err();
        assert!(e.to_string().contains("mongodb_database"));
        assert!(validate_db_name("").is_err());
    }
}
