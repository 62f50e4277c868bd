//! Driver-independent decoding: rows to domain values.
//!
//! Each driver module implements [`Fields`] over its row type (how it stores
//! instants and dates differs); everything else is shared here. A value that
//! does not decode gives [`Error::InvalidInput`] naming `table.column`, never a
//! panic.

use std::net::Ipv4Addr;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use isp_core::domain::*;
use isp_core::{Error, Result};

/// Typed access to the columns of one row of one table.
pub(crate) trait Fields {
    /// `table.column`, for errors.
    fn field(&self, col: &str) -> String;
    fn i64(&self, col: &str) -> Result<i64>;
    fn opt_i64(&self, col: &str) -> Result<Option<i64>>;
    fn string(&self, col: &str) -> Result<String>;
    fn opt_string(&self, col: &str) -> Result<Option<String>>;
    fn bool(&self, col: &str) -> Result<bool>;
    fn ts(&self, col: &str) -> Result<DateTime<Utc>>;
    fn opt_ts(&self, col: &str) -> Result<Option<DateTime<Utc>>>;
    fn date(&self, col: &str) -> Result<NaiveDate>;
    fn opt_date(&self, col: &str) -> Result<Option<NaiveDate>>;

    /// A text column parsed by a domain constructor (`parse(field, raw)`).
    fn parse<T>(&self, col: &str, parse: impl FnOnce(&str, &str) -> Result<T>) -> Result<T> {
        let raw = self.string(col)?;
        parse(&self.field(col), &raw)
    }

    /// A nullable text column parsed by a domain constructor.
    fn opt_parse<T>(&self, col: &str, parse: impl FnOnce(&str, &str) -> Result<T>) -> Result<Option<T>> {
        match self.opt_string(col)? {
            Some(raw) => parse(&self.field(col), &raw).map(Some),
            None => Ok(None),
        }
    }

    /// A non-negative counter.
    fn u32(&self, col: &str) -> Result<u32> {
        let v = self.i64(col)?;
        u32::try_from(v).map_err(|_| Error::invalid(self.field(col), v, "not a count (0 to 2^32-1)"))
    }

    /// A duration stored in milliseconds.
    fn duration_ms(&self, col: &str) -> Result<RosDuration> {
        let ms = self.i64(col)?;
        duration_from_ms(&self.field(col), ms)
    }

    /// A nullable duration stored in milliseconds.
    fn opt_duration_ms(&self, col: &str) -> Result<Option<RosDuration>> {
        match self.opt_i64(col)? {
            Some(ms) => duration_from_ms(&self.field(col), ms).map(Some),
            None => Ok(None),
        }
    }

    /// The `lease_holder` / `lease_until` pair.
    fn lease(&self) -> Result<Option<Lease>> {
        let holder = self.opt_string("lease_holder")?;
        let until = self.opt_ts("lease_until")?;
        Ok(match (holder, until) {
            (Some(holder), Some(until)) => Some(Lease { holder, until }),
            _ => None,
        })
    }
}

fn duration_from_ms(field: &str, ms: i64) -> Result<RosDuration> {
    let ms = u64::try_from(ms).map_err(|_| Error::invalid(field, ms, "a duration is not negative"))?;
    let d = std::time::Duration::from_millis(ms);
    if d > RosDuration::MAX {
        return Err(Error::invalid(field, ms, "longer than 100 years"));
    }
    Ok(RosDuration::from_std(d))
}

/// A duration as stored: milliseconds.
pub(crate) fn duration_to_ms(d: RosDuration) -> i64 {
    i64::try_from(d.as_std().as_millis()).unwrap_or(i64::MAX)
}

/// A row limit as SQL wants it.
pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Unsigned count from `COUNT(*)` or `rows_affected`.
pub(crate) fn count(field: &str, n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| Error::invalid(field, n, "a count is not negative"))
}

/// Money stored as 1/10000 units and a currency.
fn money<F: Fields + ?Sized>(f: &F, units_col: &str, currency_col: &str) -> Result<Money> {
    let units = f.i64(units_col)?;
    if units < 0 {
        return Err(Error::invalid(f.field(units_col), units, "must not be negative"));
    }
    let currency = f.parse(currency_col, Currency::parse)?;
    Ok(Money::from_micro_units(units, currency))
}

pub(crate) fn tenant<F: Fields>(f: &F) -> Result<Tenant> {
    Ok(Tenant {
        id: TenantId(f.i64("id")?),
        slug: f.parse("slug", RosName::parse)?,
        name: f.string("name")?,
        time_zone: f.parse("time_zone", |field, raw| {
            raw.parse::<Tz>()
                .map_err(|_| Error::invalid(field, raw, "not an IANA time zone"))
        })?,
    })
}

pub(crate) fn subscriber<F: Fields>(f: &F) -> Result<Subscriber> {
    Ok(Subscriber {
        id: SubscriberId(f.i64("id")?),
        tenant_id: TenantId(f.i64("tenant_id")?),
        phone: f.parse("phone", PhoneNumber::parse)?,
        username: f.parse("username", RosName::parse)?,
        paid_until: f.ts("paid_until")?,
        active: f.bool("active")?,
        disconnected_at: f.opt_ts("disconnected_at")?,
        attempts: f.u32("attempts")?,
        lease: f.lease()?,
    })
}

pub(crate) fn device<F: Fields>(f: &F) -> Result<Device> {
    Ok(Device {
        id: DeviceId(f.i64("id")?),
        subscriber_id: SubscriberId(f.i64("subscriber_id")?),
        mac: f.parse("mac", MacAddress::parse)?,
        router_id: f.opt_i64("router_id")?.map(RouterId),
        last_seen: f.ts("last_seen")?,
        active: f.bool("active")?,
    })
}

pub(crate) fn voucher<F: Fields>(f: &F) -> Result<Voucher> {
    Ok(Voucher {
        id: VoucherId(f.i64("id")?),
        tenant_id: TenantId(f.i64("tenant_id")?),
        router_id: RouterId(f.i64("router_id")?),
        code: f.parse("code", RosName::parse)?,
        plan_id: PlanId(f.i64("plan_id")?),
        status: f.parse("status", VoucherStatus::parse)?,
        activation_deadline: f.opt_ts("activation_deadline")?,
        purchase_deadline: f.opt_ts("purchase_deadline")?,
        duration: f.duration_ms("duration_ms")?,
        started_at: f.opt_ts("started_at")?,
        expected_end: f.opt_ts("expected_end")?,
        expired_reason: f.opt_parse("expired_reason", VoucherExpiryReason::parse)?,
        expired_at: f.opt_ts("expired_at")?,
        removed_from_router: f.bool("removed_from_router")?,
        lease: f.lease()?,
        attempts: f.u32("attempts")?,
    })
}

pub(crate) fn plan<F: Fields>(f: &F) -> Result<Plan> {
    Ok(Plan {
        id: PlanId(f.i64("id")?),
        tenant_id: TenantId(f.i64("tenant_id")?),
        name: f.parse("name", RosName::parse)?,
        price: money(f, "price_micros", "currency")?,
        duration: f.opt_duration_ms("duration_ms")?,
        rate_limit: f.opt_parse("rate_limit", RateLimit::parse)?,
    })
}

pub(crate) fn customer<F: Fields>(f: &F) -> Result<Customer> {
    Ok(Customer {
        id: CustomerId(f.i64("id")?),
        tenant_id: TenantId(f.i64("tenant_id")?),
        name: f.string("name")?,
        phone: f.opt_parse("phone", PhoneNumber::parse)?,
    })
}

/// How a connection is stored: kind, PPPoE username / password / profile, static address.
pub(crate) struct ConnectionColumns<'a> {
    pub(crate) kind: &'static str,
    pub(crate) pppoe_username: Option<&'a str>,
    pub(crate) pppoe_password: Option<&'a str>,
    pub(crate) pppoe_profile: Option<&'a str>,
    pub(crate) static_address: Option<String>,
}

pub(crate) fn connection_columns(c: &Connection) -> ConnectionColumns<'_> {
    match c {
        Connection::Pppoe {
            username,
            password,
            profile,
        } => ConnectionColumns {
            kind: "pppoe",
            pppoe_username: Some(username.as_str()),
            pppoe_password: Some(password.expose()),
            pppoe_profile: Some(profile.as_str()),
            static_address: None,
        },
        Connection::StaticIp { address } => ConnectionColumns {
            kind: "static_ip",
            pppoe_username: None,
            pppoe_password: None,
            pppoe_profile: None,
            static_address: Some(address.to_string()),
        },
    }
}

fn connection<F: Fields>(f: &F) -> Result<Connection> {
    let kind = f.string("connection_kind")?;
    let required = |col: &str| -> Result<String> {
        f.opt_string(col)?
            .ok_or_else(|| Error::invalid(f.field(col), "NULL", format!("required for a {kind} connection")))
    };
    match kind.as_str() {
        "pppoe" => {
            let username = required("pppoe_username")?;
            let password = required("pppoe_password")?;
            let profile = required("pppoe_profile")?;
            Ok(Connection::Pppoe {
                username: RosName::parse(&f.field("pppoe_username"), &username)?,
                password: SecretPassword::parse(&f.field("pppoe_password"), &password)?,
                profile: RosName::parse(&f.field("pppoe_profile"), &profile)?,
            })
        }
        "static_ip" => {
            let raw = required("static_address")?;
            let address: Ipv4Addr = parse_ipv4(&f.field("static_address"), &raw)?;
            Ok(Connection::StaticIp { address })
        }
        other => Err(Error::invalid(
            f.field("connection_kind"),
            other,
            "expected pppoe or static_ip",
        )),
    }
}

pub(crate) fn service<F: Fields>(f: &F) -> Result<Service> {
    let billing_day = f.i64("billing_day")?;
    Ok(Service {
        id: ServiceId(f.i64("id")?),
        tenant_id: TenantId(f.i64("tenant_id")?),
        customer_id: CustomerId(f.i64("customer_id")?),
        router_id: RouterId(f.i64("router_id")?),
        plan_id: PlanId(f.i64("plan_id")?),
        status: f.parse("status", ServiceStatus::parse)?,
        connection: connection(f)?,
        next_billing_date: f.date("next_billing_date")?,
        billing_day: u32::try_from(billing_day)
            .ok()
            .filter(|d| (1..=31).contains(d))
            .ok_or_else(|| Error::invalid(f.field("billing_day"), billing_day, "expected 1 to 31"))?,
        next_charge_on: f.date("next_charge_on")?,
        provisioned: f.bool("provisioned")?,
        provisioned_at: f.opt_ts("provisioned_at")?,
        deprovisioned_at: f.opt_ts("deprovisioned_at")?,
        lease: f.lease()?,
        attempts: f.u32("attempts")?,
    })
}

pub(crate) fn ledger_kind_str(k: LedgerKind) -> &'static str {
    match k {
        LedgerKind::Charge => "charge",
        LedgerKind::Payment => "payment",
    }
}

pub(crate) fn ledger_entry<F: Fields>(f: &F) -> Result<LedgerEntry> {
    Ok(LedgerEntry {
        id: LedgerEntryId(f.i64("id")?),
        customer_id: CustomerId(f.i64("customer_id")?),
        service_id: f.opt_i64("service_id")?.map(ServiceId),
        kind: f.parse("kind", |field, raw| match raw {
            "charge" => Ok(LedgerKind::Charge),
            "payment" => Ok(LedgerKind::Payment),
            _ => Err(Error::invalid(field, raw, "expected charge or payment")),
        })?,
        amount: money(f, "amount_micros", "currency")?,
        period_start: f.opt_date("period_start")?,
        key: f.string("key")?,
        created_at: f.ts("created_at")?,
    })
}

pub(crate) fn notice<F: Fields>(f: &F) -> Result<Notice> {
    Ok(Notice {
        id: NoticeId(f.i64("id")?),
        tenant_id: TenantId(f.i64("tenant_id")?),
        recipient: f.parse("recipient", PhoneNumber::parse)?,
        kind: f.parse("kind", NoticeKind::parse)?,
        deadline: f.ts("deadline")?,
        subject: f.string("subject")?,
        body: f.string("body")?,
        status: f.parse("status", NoticeStatus::parse)?,
        attempts: f.u32("attempts")?,
        created_at: f.ts("created_at")?,
        sent_at: f.opt_ts("sent_at")?,
        lease: f.lease()?,
    })
}

pub(crate) fn audit_event<F: Fields>(f: &F) -> Result<AuditEvent> {
    Ok(AuditEvent {
        at: f.ts("at")?,
        tenant_id: f.opt_i64("tenant_id")?.map(TenantId),
        action: f.string("action")?,
        subject: f.string("subject")?,
        router_id: f.opt_i64("router_id")?.map(RouterId),
        outcome: f.parse("outcome", AuditOutcome::parse)?,
        reason: f.opt_string("reason")?,
    })
}

pub(crate) fn router_status<F: Fields>(f: &F) -> Result<RouterStatus> {
    Ok(RouterStatus {
        router_id: RouterId(f.i64("router_id")?),
        online: f.bool("online")?,
        checked_at: f.ts("checked_at")?,
        changed_at: f.ts("changed_at")?,
        clock_skew_secs: f.opt_i64("clock_skew_secs")?,
        version: f.opt_string("version")?,
        last_error: f.opt_string("last_error")?,
    })
}

/// Removes the password (and any query string, which may carry one) from a
/// database URL, for logs, `Debug` and errors.
pub(crate) fn redact_url(url: &str) -> String {
    let url = url.split_once('?').map_or(url, |(base, _)| base);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => format!("{scheme}://{authority}{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://isp:s3cret@db.example:5432/isp?sslmode=require&password=x"),
            "postgres://isp:***@db.example:5432/isp"
        );
        assert_eq!(redact_url("postgres://db/isp"), "postgres://db/isp");
        assert_eq!(redact_url("postgres://u:p@ss@h/d"), "postgres://u:***@h/d");
        assert_eq!(redact_url("sqlite://isp.db"), "sqlite://isp.db");
    }
}
