//! `ispd grant` and `ispd vouchers generate`: the access use cases of the
//! engine from the command line, on the configured storage and routers.
//!
//! ```text
//! ispd grant --tenant hotel-abc --phone +255712000001 --plan 1-hour [--create]
//!            [--reference MP123 --amount 1000 --currency TZS]
//! ispd grant --subscriber 42 --seconds 3600
//! ispd vouchers generate --tenant hotel-abc --plan 1-hour --count 20 [--prefix HOT]
//! ```

use std::io::Write;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use isp_core::domain::*;
use isp_core::jobs::{Engine, RouterResult};
use isp_core::Error;

use crate::cli::{ConfigArg, EXIT_FAILURES, EXIT_OK};
use crate::config::Config;
use crate::daemon::{self, DaemonError};

/// `ispd grant` arguments.
#[derive(Debug, Clone, Args)]
pub struct GrantArgs {
    /// The subscriber's id (or give --tenant and --phone).
    #[arg(long, conflicts_with_all = ["tenant", "phone"])]
    pub subscriber: Option<i64>,
    /// The tenant's slug.
    #[arg(long, requires = "phone")]
    pub tenant: Option<String>,
    /// The subscriber's phone (E.164).
    #[arg(long, requires = "tenant")]
    pub phone: Option<String>,
    /// Create the subscriber if the phone is new in the tenant.
    #[arg(long)]
    pub create: bool,
    /// Add a plan's duration.
    #[arg(long, group = "extension")]
    pub plan: Option<String>,
    /// Add this many seconds.
    #[arg(long, group = "extension")]
    pub seconds: Option<u64>,
    /// Set the end to this RFC 3339 instant (never earlier than now).
    #[arg(long, group = "extension")]
    pub until: Option<String>,
    /// The payment's reference (its idempotency key).
    #[arg(long, requires_all = ["amount", "currency"])]
    pub reference: Option<String>,
    /// The payment's amount (`1000`, `12.50`).
    #[arg(long, requires = "reference")]
    pub amount: Option<String>,
    /// The payment's currency (ISO 4217).
    #[arg(long, requires = "reference")]
    pub currency: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Configuration.
    #[command(flatten)]
    pub config: ConfigArg,
}

/// `ispd vouchers ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum VoucherCommand {
    /// Generate vouchers of a plan and push them to the tenant's router.
    Generate {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// The plan's name.
        #[arg(long)]
        plan: String,
        /// How many (1 to 1000).
        #[arg(long)]
        count: u32,
        /// A prefix for every code (A-Z, 0-9, -; at most 8).
        #[arg(long)]
        prefix: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Configuration.
        #[command(flatten)]
        config: ConfigArg,
    },
}

fn input(e: Error) -> DaemonError {
    match e {
        Error::InvalidInput { .. } | Error::NotFound { .. } | Error::Conflict { .. } => {
            DaemonError::Runtime(e.to_string())
        }
        e if e.is_transient() => DaemonError::Storage(e),
        e => DaemonError::Runtime(e.to_string()),
    }
}

async fn tenant_by_slug(engine: &Engine, slug: &str) -> Result<Tenant, Error> {
    engine
        .deps()
        .repos
        .tenants
        .list()
        .await?
        .into_iter()
        .find(|t| t.slug.as_str() == slug)
        .ok_or_else(|| Error::not_found("tenant", slug))
}

async fn plan_by_name(engine: &Engine, tenant: TenantId, name: &str) -> Result<Plan, Error> {
    engine
        .deps()
        .repos
        .plans
        .list(tenant)
        .await?
        .into_iter()
        .find(|p| p.name.as_str() == name)
        .ok_or_else(|| Error::not_found("plan", name))
}

fn print_routers(out: &mut dyn Write, routers: &[RouterResult]) {
    for r in routers {
        let _ = writeln!(
            out,
            "  {:<20} {:?}{}",
            r.router,
            r.state,
            r.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
        );
    }
}

/// Runs `f` with an engine on the configured storage and routers (the
/// configuration's tenants, plans and routers applied first).
async fn with_engine<T>(
    config: &Config,
    f: impl AsyncFnOnce(&Engine) -> Result<T, Error>,
) -> Result<T, DaemonError> {
    let (wiring, storage) = daemon::wire(config, false).await?;
    daemon::apply_config(config, &wiring.repos).await?;
    let engine = daemon::build_engine(config, &wiring);
    let r = f(&engine).await.map_err(input);
    storage.close().await;
    r
}

/// `ispd grant`.
pub async fn grant(config: &Config, args: GrantArgs, out: &mut dyn Write) -> Result<u8, DaemonError> {
    let json = args.json;
    let outcome = with_engine(config, async |engine: &Engine| {
        let sub = match (args.subscriber, &args.tenant, &args.phone) {
            (Some(id), _, _) => engine.deps().repos.subscribers.get(SubscriberId(id)).await?,
            (None, Some(t), Some(p)) => {
                let tenant = tenant_by_slug(engine, t).await?;
                let phone = PhoneNumber::parse("phone", p)?;
                match engine
                    .deps()
                    .repos
                    .subscribers
                    .find_by_phone(tenant.id, &phone)
                    .await?
                {
                    Some(s) => s,
                    None if args.create => engine.create_subscriber(tenant.id, phone, None).await?,
                    None => {
                        return Err(Error::not_found(
                            "subscriber",
                            format!("{p} in {t} (add --create)"),
                        ))
                    }
                }
            }
            _ => {
                return Err(Error::invalid(
                    "subscriber",
                    "",
                    "give --subscriber, or --tenant and --phone",
                ))
            }
        };
        let extension = if let Some(name) = &args.plan {
            Extension::Plan(plan_by_name(engine, sub.tenant_id, name).await?.id)
        } else if let Some(secs) = args.seconds {
            Extension::Seconds(secs)
        } else if let Some(raw) = &args.until {
            let t: DateTime<Utc> = DateTime::parse_from_rfc3339(raw)
                .map_err(|_| Error::invalid("until", raw, "not an RFC 3339 instant"))?
                .with_timezone(&Utc);
            Extension::Until(t)
        } else {
            return Err(Error::invalid(
                "extension",
                "",
                "give one of --plan, --seconds or --until",
            ));
        };
        let payment = match (&args.reference, &args.amount, &args.currency) {
            (Some(r), Some(a), Some(c)) => {
                let currency = Currency::parse("currency", c)?;
                Some(NewPayment {
                    reference: PaymentReference::parse("reference", r)?,
                    amount: Money::parse("amount", a, currency)?,
                })
            }
            _ => None,
        };
        engine.grant(sub.id, extension, payment).await
    })
    .await?;
    if json {
        let body = serde_json::json!({
            "subscriber_id": outcome.subscriber.id.0,
            "paid_until": outcome.subscriber.paid_until,
            "duplicate_payment": outcome.duplicate_payment,
            "routers": outcome.routers,
        });
        let _ = writeln!(out, "{body:#}");
    } else {
        let _ = writeln!(
            out,
            "subscriber {} ({}): paid until {}{}",
            outcome.subscriber.id,
            outcome.subscriber.username,
            outcome.subscriber.paid_until.to_rfc3339(),
            if outcome.duplicate_payment {
                " (payment already recorded: not extended again)"
            } else {
                ""
            }
        );
        print_routers(out, &outcome.routers);
    }
    let pending = outcome
        .routers
        .iter()
        .any(|r| r.state == isp_core::jobs::RouterAccess::Pending);
    Ok(if pending { EXIT_FAILURES } else { EXIT_OK })
}

/// `ispd vouchers generate`.
pub async fn vouchers(
    config: &Config,
    command: VoucherCommand,
    out: &mut dyn Write,
) -> Result<u8, DaemonError> {
    let VoucherCommand::Generate {
        tenant,
        plan,
        count,
        prefix,
        json,
        ..
    } = command;
    let batch = with_engine(config, async |engine: &Engine| {
        let t = tenant_by_slug(engine, &tenant).await?;
        let p = plan_by_name(engine, t.id, &plan).await?;
        engine
            .generate_vouchers(t.id, p.id, count, prefix.as_deref())
            .await
    })
    .await?;
    if json {
        let codes: Vec<String> = batch.vouchers.iter().map(|v| v.code.to_string()).collect();
        let body = serde_json::json!({ "codes": codes, "routers": batch.routers });
        let _ = writeln!(out, "{body:#}");
    } else {
        for v in &batch.vouchers {
            let _ = writeln!(out, "{}", v.code);
        }
        print_routers(out, &batch.routers);
    }
    let pending = batch
        .routers
        .iter()
        .any(|r| r.state == isp_core::jobs::RouterAccess::Pending);
    Ok(if pending { EXIT_FAILURES } else { EXIT_OK })
}

/// The configuration argument of a command of this module.
pub fn config_of(command: &VoucherCommand) -> &ConfigArg {
    match command {
        VoucherCommand::Generate { config, .. } => config,
    }
}
