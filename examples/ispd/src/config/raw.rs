//! The configuration as written: serde's view of the TOML file, before validation.

use super::*;

/// A duration in RouterOS-like notation: `2s`, `500ms`, `1h30m`, `30d`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dur(pub(super) Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        RosDuration::parse("duration", &raw)
            .map(|r| Dur(r.as_std()))
            .map_err(serde::de::Error::custom)
    }
}

/// A cron expression or `off`.
#[derive(Debug, Clone)]
pub(super) struct CronSpec(pub(super) Schedule);

impl<'de> Deserialize<'de> for CronSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Schedule::parse(&raw)
            .map(CronSpec)
            .map_err(serde::de::Error::custom)
    }
}

/// A time zone name (`Africa/Dar_es_Salaam`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Zone(pub(super) Tz);

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        parse_zone(&raw).map(Zone).map_err(serde::de::Error::custom)
    }
}

pub(super) fn parse_zone(raw: &str) -> Result<Tz, String> {
    raw.trim().parse::<Tz>().map_err(|_| {
        format!("unknown time zone {raw:?}: use an IANA name such as \"Africa/Dar_es_Salaam\" or \"UTC\"")
    })
}

/// A price: a string (`"1500.50"`) or an integer; floats are refused (money is exact).
#[derive(Debug, Clone)]
pub(super) struct Price(pub(super) String);

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum P {
            S(String),
            I(i64),
            F(f64),
        }
        match P::deserialize(d)? {
            P::S(s) => Ok(Price(s)),
            P::I(i) => Ok(Price(i.to_string())),
            P::F(f) => Err(serde::de::Error::custom(format!(
                "write prices as strings (\"{f}\"), not floating-point numbers: money must be exact"
            ))),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) storage: RawStorage,
    pub(super) admin: Option<RawAdmin>,
    #[serde(default)]
    pub(super) engine: RawEngine,
    #[serde(default)]
    pub(super) scheduler: RawScheduler,
    #[serde(default)]
    pub(super) schedules: RawSchedules,
    #[serde(default)]
    pub(super) templates: RawTemplates,
    pub(super) sms: Option<isp_sms::SmsGatewayConfig>,
    #[serde(default)]
    pub(super) log: RawLog,
    pub(super) radius: Option<RawRadius>,
    #[serde(default)]
    pub(super) tenants: Vec<RawTenant>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRadius {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) interim_interval: Option<Dur>,
    pub(super) disconnect_timeout: Option<Dur>,
    pub(super) disconnect_attempts: Option<Spanned<u32>>,
    pub(super) session_retention: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    pub(super) url: Option<Spanned<String>>,
    pub(super) url_env: Option<Spanned<String>>,
    pub(super) mongo_database: Option<String>,
    pub(super) max_connections: Option<u32>,
    pub(super) auto_migrate: Option<bool>,
    pub(super) statement_timeout: Option<Dur>,
    pub(super) lock_timeout: Option<Dur>,
    pub(super) acquire_timeout: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) token: Option<Spanned<String>>,
    pub(super) token_env: Option<Spanned<String>>,
    pub(super) token_file: Option<Spanned<String>>,
    pub(super) body_limit_bytes: Option<usize>,
    pub(super) header_read_timeout: Option<Dur>,
    pub(super) request_timeout: Option<Dur>,
    pub(super) max_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEngine {
    pub(super) holder: Option<String>,
    pub(super) batch_size: Option<Spanned<usize>>,
    pub(super) lease_ttl: Option<Dur>,
    pub(super) per_router_concurrency: Option<Spanned<usize>>,
    pub(super) retry_base: Option<Dur>,
    pub(super) retry_max: Option<Dur>,
    pub(super) device_retention: Option<Dur>,
    pub(super) log_retention: Option<Dur>,
    pub(super) static_ip_list: Option<RosName>,
    pub(super) run_timeout: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScheduler {
    pub(super) time_zone: Option<Zone>,
    pub(super) watcher: Option<bool>,
    pub(super) watcher_max_sleep: Option<Spanned<Dur>>,
    pub(super) watcher_min_sleep: Option<Dur>,
    pub(super) shutdown_grace: Option<Dur>,
    pub(super) voucher_listen: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSchedules {
    pub(super) disconnect_expired: Option<CronSpec>,
    pub(super) warn_before_expiry: Option<CronSpec>,
    pub(super) expire_vouchers: Option<CronSpec>,
    pub(super) sync_routers: Option<CronSpec>,
    pub(super) provision_services: Option<CronSpec>,
    pub(super) monthly_billing: Option<CronSpec>,
    pub(super) payment_reminders: Option<CronSpec>,
    pub(super) router_health: Option<CronSpec>,
    pub(super) device_cleanup: Option<CronSpec>,
    pub(super) log_retention: Option<CronSpec>,
    pub(super) deliver_notices: Option<CronSpec>,
    pub(super) apply_grants: Option<CronSpec>,
    pub(super) activate_vouchers: Option<CronSpec>,
}

impl RawSchedules {
    pub(super) fn get(&self, job: JobKind) -> Option<&CronSpec> {
        match job {
            JobKind::DisconnectExpired => self.disconnect_expired.as_ref(),
            JobKind::WarnBeforeExpiry => self.warn_before_expiry.as_ref(),
            JobKind::ExpireVouchers => self.expire_vouchers.as_ref(),
            JobKind::SyncRouters => self.sync_routers.as_ref(),
            JobKind::ProvisionServices => self.provision_services.as_ref(),
            JobKind::MonthlyBilling => self.monthly_billing.as_ref(),
            JobKind::PaymentReminders => self.payment_reminders.as_ref(),
            JobKind::RouterHealth => self.router_health.as_ref(),
            JobKind::DeviceCleanup => self.device_cleanup.as_ref(),
            JobKind::LogRetention => self.log_retention.as_ref(),
            JobKind::DeliverNotices => self.deliver_notices.as_ref(),
            JobKind::ApplyGrants => self.apply_grants.as_ref(),
            JobKind::ActivateVouchers => self.activate_vouchers.as_ref(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTemplates {
    pub(super) hotspot_expires_soon: Option<Spanned<String>>,
    pub(super) hotspot_expired: Option<Spanned<String>>,
    pub(super) service_expires: Option<Spanned<String>>,
    pub(super) payment_due: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub(super) format: Option<LogFormat>,
    pub(super) filter: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenant {
    pub(super) id: Spanned<i64>,
    pub(super) slug: Spanned<RosName>,
    pub(super) name: Option<String>,
    pub(super) time_zone: Zone,
    #[serde(default)]
    pub(super) alert_phones: Vec<PhoneNumber>,
    #[serde(default)]
    pub(super) routers: Vec<RawRouter>,
    #[serde(default)]
    pub(super) plans: Vec<RawPlan>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRouter {
    pub(super) id: Spanned<i64>,
    pub(super) name: Spanned<RosName>,
    pub(super) address: Spanned<String>,
    #[serde(default)]
    pub(super) transport: Option<Spanned<Transport>>,
    pub(super) username: Option<Spanned<String>>,
    pub(super) password: Option<Spanned<String>>,
    pub(super) password_env: Option<Spanned<String>>,
    pub(super) password_file: Option<Spanned<String>>,
    pub(super) tls_fingerprint: Option<Spanned<String>>,
    pub(super) secret: Option<Spanned<String>>,
    pub(super) secret_file: Option<Spanned<String>>,
    #[serde(default = "yes")]
    pub(super) enabled: bool,
}

pub(super) fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlan {
    pub(super) name: Spanned<RosName>,
    pub(super) price: Spanned<Price>,
    pub(super) currency: Currency,
    pub(super) duration: Option<RosDuration>,
    pub(super) rate_limit: Option<RateLimit>,
}

// ---------------------------------------------------------------------------
