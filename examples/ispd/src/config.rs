//! Configuration: one TOML file plus `ISPD_...` environment overrides.
//!
//! [`load_file`] reads and validates a file; [`load_str`] does the same with
//! text (tests, the example config). Every mistake is reported as a
//! [`ConfigError`] that names the file, the line and column, the key path
//! (`tenants[0].routers[1].password_env`) and what is wrong. Secrets (router
//! passwords, the admin token, a database URL with a password) are never
//! printed: not in errors, not in `Debug`, not in logs.
//!
//! # Environment overrides
//! | variable | overrides |
//! |---|---|
//! | `ISPD_STORAGE_URL` | `storage.url` |
//! | `ISPD_ADMIN_LISTEN` | `admin.listen` |
//! | `ISPD_ADMIN_TOKEN` | the admin token (`admin.token`, `admin.token_env`, `admin.token_file`) |
//! | `ISPD_ENGINE_HOLDER` | `engine.holder` |
//! | `ISPD_LOG_FORMAT` | `log.format` (`pretty`, `json`, `compact`) |
//! | `ISPD_LOG_FILTER` | `log.filter` (an `EnvFilter` directive such as `info,ispd=debug`) |
//! | `ISPD_SCHEDULER_TIME_ZONE` | `scheduler.time_zone` |
//! | `ISPD_SCHEDULER_WATCHER` | `scheduler.watcher` (`true` / `false`) |
//! | `ISPD_SCHEDULE_<JOB>` | `schedules.<job>` (`ISPD_SCHEDULE_DISCONNECT_EXPIRED="*/30 * * * * *"`) |

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use isp_core::domain::{
    Currency, Money, NewPlan, PhoneNumber, RateLimit, RosDuration, RosName, Router, RouterCredentials,
    RouterId, Tenant, TenantId, Transport,
};
use isp_core::jobs::{EngineConfig, JobKind, Templates};
use isp_core::runtime::{Schedule, SchedulerConfig};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// Smallest accepted admin token, in bytes.
pub const MIN_TOKEN_LEN: usize = 16;

/// Default admin API address.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9080";

/// Default SQLite database file (relative to the working directory).
pub const DEFAULT_SQLITE_PATH: &str = "ispd.db";

/// A configuration mistake: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `environment`, or `<inline>`).
    pub origin: String,
    /// 1-based line, when the mistake is in the file.
    pub line: Option<usize>,
    /// 1-based column, when the mistake is in the file.
    pub column: Option<usize>,
    /// The key path (`tenants[0].time_zone`) or the environment variable.
    pub key: String,
    /// What is wrong (never a secret).
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if self.key.is_empty() || self.key == "." {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": `{}`: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Where environment variables come from (the process, or a map in tests).
pub trait Env {
    /// The variable's value, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Where the data lives.
#[derive(Clone)]
pub enum StorageUrl {
    /// An SQLite file (created if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (may hold a password: a secret).
    Postgres(SecretString),
    /// A MongoDB URL (may hold a password: a secret) and the database name.
    Mongo {
        /// The connection string.
        url: SecretString,
        /// The database.
        database: String,
    },
    /// In-process memory (tests and the quickstart; lost on exit).
    Memory,
}

impl StorageUrl {
    /// Parses `sqlite://PATH`, `sqlite:PATH`, a bare path, `postgres://...`,
    /// `postgresql://...`, `mongodb://...`, `mongodb+srv://...` or `memory`.
    pub fn parse(raw: &str, mongo_database: Option<&str>) -> Result<Self, String> {
        let t = raw.trim();
        if t.is_empty() {
            return Err("the storage URL is empty".into());
        }
        if t == "memory" || t == "memory:" {
            return Ok(StorageUrl::Memory);
        }
        if t.starts_with("postgres://") || t.starts_with("postgresql://") {
            return Ok(StorageUrl::Postgres(SecretString::from(t.to_owned())));
        }
        if t.starts_with("mongodb://") || t.starts_with("mongodb+srv://") {
            let database = match mongo_database {
                Some(d) => d.to_owned(),
                None => mongo_db_from_url(t).unwrap_or_else(|| "isp".to_owned()),
            };
            return Ok(StorageUrl::Mongo {
                url: SecretString::from(t.to_owned()),
                database,
            });
        }
        let path = if let Some(p) = t.strip_prefix("sqlite://") {
            p
        } else if let Some(p) = t.strip_prefix("sqlite:") {
            p
        } else if t.contains("://") {
            return Err(format!(
                "unknown storage scheme in {:?}: use sqlite://PATH, postgres://..., mongodb://... or memory",
                redact_url(t)
            ));
        } else {
            t
        };
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() {
            return Err("the SQLite path is empty".into());
        }
        Ok(StorageUrl::Sqlite(PathBuf::from(path)))
    }

    /// A form safe to print: passwords in URLs are replaced with `***`.
    pub fn redacted(&self) -> String {
        match self {
            StorageUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            StorageUrl::Postgres(u) => redact_url(u.expose_secret()),
            StorageUrl::Mongo { url, database } => {
                format!("{} (database {database})", redact_url(url.expose_secret()))
            }
            StorageUrl::Memory => "memory".into(),
        }
    }

    /// `sqlite`, `postgres`, `mongodb` or `memory`.
    pub fn kind(&self) -> &'static str {
        match self {
            StorageUrl::Sqlite(_) => "sqlite",
            StorageUrl::Postgres(_) => "postgres",
            StorageUrl::Mongo { .. } => "mongodb",
            StorageUrl::Memory => "memory",
        }
    }
}

impl fmt::Debug for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn mongo_db_from_url(url: &str) -> Option<String> {
    let after_scheme = url.split_once("://")?.1;
    let path = after_scheme.split_once('/')?.1;
    let db = path.split('?').next()?;
    (!db.is_empty()).then(|| db.to_owned())
}

/// Replaces the password of `scheme://user:password@host` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_owned(),
    }
}

/// Storage settings.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Where.
    pub url: StorageUrl,
    /// Pool size for SQL databases.
    pub max_connections: u32,
    /// Bring the schema up to date (SQL migrations, MongoDB indexes) when the
    /// daemon starts. Turn off to run `ispd migrate` by hand.
    pub auto_migrate: bool,
}

/// The admin token. `Debug` never shows it.
#[derive(Clone)]
pub struct AdminToken(SecretString);

impl AdminToken {
    /// Validates a token: at least [`MIN_TOKEN_LEN`] bytes, printable ASCII, no spaces.
    pub fn new(raw: &str) -> Result<Self, String> {
        let t = raw.trim();
        if t.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "the admin token is too short: use at least {MIN_TOKEN_LEN} characters (for example `openssl rand -hex 32`)"
            ));
        }
        if !t.chars().all(|c| c.is_ascii_graphic()) {
            return Err("the admin token must be printable ASCII without spaces".into());
        }
        Ok(AdminToken(SecretString::from(t.to_owned())))
    }

    /// A random 32-byte hex token (the demo's).
    pub fn random() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        AdminToken(SecretString::from(hex))
    }

    /// The token, for comparison and for printing once in the demo.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken([REDACTED])")
    }
}

/// The admin HTTP API.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Bearer token.
    pub token: AdminToken,
    /// Largest accepted request body, bytes.
    pub body_limit: usize,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    #[default]
    Pretty,
    /// One line per event.
    Compact,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    fn parse(raw: &str) -> Option<Self> {
        match raw.trim() {
            "pretty" => Some(LogFormat::Pretty),
            "compact" => Some(LogFormat::Compact),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Default)]
pub struct LogConfig {
    /// Format (the `--log-format` flag wins).
    pub format: Option<LogFormat>,
    /// `EnvFilter` directive (`RUST_LOG` wins).
    pub filter: Option<String>,
}

/// A tenant with its routers and plans.
#[derive(Debug, Clone)]
pub struct TenantConfig {
    /// The tenant.
    pub tenant: Tenant,
    /// Its routers.
    pub routers: Vec<Router>,
    /// Its plans (inserted when missing, by name).
    pub plans: Vec<NewPlan>,
    /// Who gets an SMS when one of the tenant's routers goes offline or comes back.
    pub alert_phones: Vec<PhoneNumber>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (`None` for built-in defaults).
    pub source: Option<PathBuf>,
    /// Storage.
    pub storage: StorageConfig,
    /// Admin API (`None`: disabled, because no token is configured).
    pub admin: Option<AdminConfig>,
    /// Engine tunables and templates.
    pub engine: EngineConfig,
    /// Scheduler.
    pub scheduler: SchedulerConfig,
    /// SMS gateway (`[sms]`, see `isp_sms::SmsGatewayConfig`; log-only by default).
    pub sms: isp_sms::SmsGatewayConfig,
    /// Logging.
    pub log: LogConfig,
    /// Tenants, routers, plans.
    pub tenants: Vec<TenantConfig>,
    /// Things that work but deserve a warning (inline secrets, ...). Never contain a secret.
    pub warnings: Vec<String>,
}

impl Config {
    /// Every router of every tenant.
    pub fn routers(&self) -> Vec<Router> {
        self.tenants
            .iter()
            .flat_map(|t| t.routers.iter().cloned())
            .collect()
    }

    /// Built-in defaults with no tenants (what `ispd migrate` needs when no file is given).
    pub fn defaults(env: &dyn Env) -> Result<Self, ConfigError> {
        load_str("", "<defaults>", None, env)
    }
}

// ---------------------------------------------------------------------------
// Raw (as written) configuration.

/// A duration in RouterOS-like notation: `2s`, `500ms`, `1h30m`, `30d`.
#[derive(Debug, Clone, Copy)]
struct Dur(Duration);

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
struct CronSpec(Schedule);

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
struct Zone(Tz);

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        parse_zone(&raw).map(Zone).map_err(serde::de::Error::custom)
    }
}

fn parse_zone(raw: &str) -> Result<Tz, String> {
    raw.trim().parse::<Tz>().map_err(|_| {
        format!("unknown time zone {raw:?}: use an IANA name such as \"Africa/Dar_es_Salaam\" or \"UTC\"")
    })
}

/// A price: a string (`"1500.50"`) or an integer; floats are refused (money is exact).
#[derive(Debug, Clone)]
struct Price(String);

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
struct RawFile {
    #[serde(default)]
    storage: RawStorage,
    admin: Option<RawAdmin>,
    #[serde(default)]
    engine: RawEngine,
    #[serde(default)]
    scheduler: RawScheduler,
    #[serde(default)]
    schedules: RawSchedules,
    #[serde(default)]
    templates: RawTemplates,
    sms: Option<isp_sms::SmsGatewayConfig>,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    tenants: Vec<RawTenant>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    url: Option<Spanned<String>>,
    url_env: Option<Spanned<String>>,
    mongo_database: Option<String>,
    max_connections: Option<u32>,
    auto_migrate: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
    token_env: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    body_limit_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    holder: Option<String>,
    batch_size: Option<Spanned<usize>>,
    lease_ttl: Option<Dur>,
    per_router_concurrency: Option<Spanned<usize>>,
    retry_base: Option<Dur>,
    retry_max: Option<Dur>,
    device_retention: Option<Dur>,
    log_retention: Option<Dur>,
    static_ip_list: Option<RosName>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScheduler {
    time_zone: Option<Zone>,
    watcher: Option<bool>,
    watcher_max_sleep: Option<Spanned<Dur>>,
    watcher_min_sleep: Option<Dur>,
    shutdown_grace: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSchedules {
    disconnect_expired: Option<CronSpec>,
    warn_before_expiry: Option<CronSpec>,
    expire_vouchers: Option<CronSpec>,
    sync_routers: Option<CronSpec>,
    provision_services: Option<CronSpec>,
    monthly_billing: Option<CronSpec>,
    payment_reminders: Option<CronSpec>,
    router_health: Option<CronSpec>,
    device_cleanup: Option<CronSpec>,
    log_retention: Option<CronSpec>,
}

impl RawSchedules {
    fn get(&self, job: JobKind) -> Option<&CronSpec> {
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
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplates {
    hotspot_expires_soon: Option<Spanned<String>>,
    hotspot_expired: Option<Spanned<String>>,
    service_expires: Option<Spanned<String>>,
    payment_due: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<LogFormat>,
    filter: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    id: Spanned<i64>,
    slug: Spanned<RosName>,
    name: Option<String>,
    time_zone: Zone,
    #[serde(default)]
    alert_phones: Vec<PhoneNumber>,
    #[serde(default)]
    routers: Vec<RawRouter>,
    #[serde(default)]
    plans: Vec<RawPlan>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouter {
    id: Spanned<i64>,
    name: Spanned<RosName>,
    address: Spanned<String>,
    #[serde(default)]
    transport: Option<Transport>,
    username: Spanned<String>,
    password: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    tls_fingerprint: Option<Spanned<String>>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    name: Spanned<RosName>,
    price: Spanned<Price>,
    currency: Currency,
    duration: Option<RosDuration>,
    rate_limit: Option<RateLimit>,
}

// ---------------------------------------------------------------------------
// Loading.

/// Reads and validates a configuration file.
pub fn load_file(path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        origin: path.display().to_string(),
        line: None,
        column: None,
        key: String::new(),
        message: format!("cannot read the configuration file: {e}"),
    })?;
    load_str(&text, &path.display().to_string(), path.parent(), env)
}

/// Validates configuration text. `origin` names it in errors; relative
/// `password_file` / `token_file` paths are read from `base_dir`.
pub fn load_str(
    text: &str,
    origin: &str,
    base_dir: Option<&Path>,
    env: &dyn Env,
) -> Result<Config, ConfigError> {
    let cx = Cx {
        text,
        origin,
        base_dir,
        env,
    };
    let raw: RawFile = serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        let (line, column) = e
            .inner()
            .span()
            .map(|s| line_col(text, s.start))
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        ConfigError {
            origin: origin.to_owned(),
            line,
            column,
            key: e
                .path()
                .to_string()
                .replace(".$__serde_spanned_private_value", "")
                .replace("$__serde_spanned_private_value", ""),
            message: e.inner().message().to_owned(),
        }
    })?;
    cx.validate(raw)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

struct Cx<'a> {
    text: &'a str,
    origin: &'a str,
    base_dir: Option<&'a Path>,
    env: &'a dyn Env,
}

impl Cx<'_> {
    fn at(
        &self,
        span: std::ops::Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = line_col(self.text, span.start);
        ConfigError {
            origin: self.origin.to_owned(),
            line: Some(line),
            column: Some(column),
            key: key.into(),
            message: message.into(),
        }
    }

    fn env_err(&self, var: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: "environment".to_owned(),
            line: None,
            column: None,
            key: var.to_owned(),
            message: message.into(),
        }
    }

    fn nowhere(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: self.origin.to_owned(),
            line: None,
            column: None,
            key: key.into(),
            message: message.into(),
        }
    }

    fn read_secret_file(&self, raw: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
        let p = PathBuf::from(raw.get_ref());
        let path = match (p.is_relative(), self.base_dir) {
            (true, Some(dir)) => dir.join(p),
            _ => p,
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| self.at(raw.span(), key, format!("cannot read {}: {e}", path.display())))?;
        let value = text.trim_end_matches(['\n', '\r']).to_owned();
        if value.is_empty() {
            return Err(self.at(raw.span(), key, format!("{} is empty", path.display())));
        }
        Ok(value)
    }

    fn read_secret_env(&self, raw: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
        let name = raw.get_ref().trim();
        if name.is_empty() {
            return Err(self.at(raw.span(), key, "the environment variable name is empty"));
        }
        match self.env.var(name) {
            Some(v) if !v.is_empty() => Ok(v),
            Some(_) => Err(self.at(raw.span(), key, format!("environment variable {name} is empty"))),
            None => Err(self.at(raw.span(), key, format!("environment variable {name} is not set"))),
        }
    }

    fn validate(&self, raw: RawFile) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        let storage = self.storage(&raw.storage)?;
        let admin = self.admin(raw.admin.as_ref(), &mut warnings)?;
        let engine = self.engine(&raw.engine, &raw.templates)?;
        let scheduler = self.scheduler(&raw.scheduler, &raw.schedules)?;
        let log = LogConfig {
            format: match self.env.var("ISPD_LOG_FORMAT") {
                Some(v) => Some(LogFormat::parse(&v).ok_or_else(|| {
                    self.env_err("ISPD_LOG_FORMAT", format!("{v:?} is not pretty, compact or json"))
                })?),
                None => raw.log.format,
            },
            filter: self.env.var("ISPD_LOG_FILTER").or(raw.log.filter.clone()),
        };
        let sms = raw.sms.unwrap_or_default();
        let tenants = self.tenants(&raw.tenants, &mut warnings)?;
        Ok(Config {
            source: None,
            storage,
            admin,
            engine,
            scheduler,
            sms,
            log,
            tenants,
            warnings,
        })
    }

    fn storage(&self, raw: &RawStorage) -> Result<StorageConfig, ConfigError> {
        let max_connections = raw.max_connections.unwrap_or(5);
        if max_connections == 0 {
            return Err(self.nowhere("storage.max_connections", "must be at least 1"));
        }
        let url = if let Some(v) = self.env.var("ISPD_STORAGE_URL") {
            StorageUrl::parse(&v, raw.mongo_database.as_deref())
                .map_err(|m| self.env_err("ISPD_STORAGE_URL", m))?
        } else if let (Some(_), Some(_)) = (&raw.url, &raw.url_env) {
            let s = raw.url_env.as_ref().map_or(0..0, |u| u.span());
            return Err(self.at(
                s,
                "storage.url_env",
                "set storage.url or storage.url_env, not both",
            ));
        } else if let Some(u) = &raw.url_env {
            let v = self.read_secret_env(u, "storage.url_env")?;
            StorageUrl::parse(&v, raw.mongo_database.as_deref())
                .map_err(|m| self.at(u.span(), "storage.url_env", m))?
        } else if let Some(u) = &raw.url {
            StorageUrl::parse(u.get_ref(), raw.mongo_database.as_deref())
                .map_err(|m| self.at(u.span(), "storage.url", m))?
        } else {
            StorageUrl::Sqlite(PathBuf::from(DEFAULT_SQLITE_PATH))
        };
        Ok(StorageConfig {
            url,
            max_connections,
            auto_migrate: raw.auto_migrate.unwrap_or(true),
        })
    }

    fn admin(
        &self,
        raw: Option<&RawAdmin>,
        warnings: &mut Vec<String>,
    ) -> Result<Option<AdminConfig>, ConfigError> {
        let empty = RawAdmin::default();
        let raw = raw.unwrap_or(&empty);
        let listen_text: Option<(String, Option<std::ops::Range<usize>>, &str)> =
            if let Some(v) = self.env.var("ISPD_ADMIN_LISTEN") {
                Some((v, None, "ISPD_ADMIN_LISTEN"))
            } else {
                raw.listen
                    .as_ref()
                    .map(|l| (l.get_ref().clone(), Some(l.span()), "admin.listen"))
            };
        let token_sources = [
            raw.token.is_some(),
            raw.token_env.is_some(),
            raw.token_file.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if token_sources > 1 {
            return Err(self.nowhere(
                "admin",
                "set only one of admin.token, admin.token_env and admin.token_file",
            ));
        }
        let token = if let Some(v) = self.env.var("ISPD_ADMIN_TOKEN") {
            Some(AdminToken::new(&v).map_err(|m| self.env_err("ISPD_ADMIN_TOKEN", m))?)
        } else if let Some(t) = &raw.token_env {
            let v = self.read_secret_env(t, "admin.token_env")?;
            Some(AdminToken::new(&v).map_err(|m| self.at(t.span(), "admin.token_env", m))?)
        } else if let Some(t) = &raw.token_file {
            let v = self.read_secret_file(t, "admin.token_file")?;
            Some(AdminToken::new(&v).map_err(|m| self.at(t.span(), "admin.token_file", m))?)
        } else if let Some(t) = &raw.token {
            warnings.push(format!(
                "{}: admin.token is written in the configuration file; prefer admin.token_env or admin.token_file",
                self.origin
            ));
            Some(AdminToken::new(t.get_ref()).map_err(|m| self.at(t.span(), "admin.token", m))?)
        } else {
            None
        };
        let body_limit = raw.body_limit_bytes.unwrap_or(64 * 1024);
        if body_limit < 1024 {
            return Err(self.nowhere("admin.body_limit_bytes", "must be at least 1024"));
        }
        let Some(token) = token else {
            if let Some((_, span, key)) = listen_text {
                let msg = "the admin API needs a token: set admin.token_env, admin.token_file or ISPD_ADMIN_TOKEN (there is no default token)";
                return Err(match span {
                    Some(s) => self.at(s, key, msg),
                    None => self.env_err(key, msg),
                });
            }
            return Ok(None);
        };
        let listen = match listen_text {
            Some((text, span, key)) => text.trim().parse::<SocketAddr>().map_err(|_| {
                let msg = format!("{text:?} is not an address:port such as \"127.0.0.1:9080\"");
                match span {
                    Some(s) => self.at(s, key, msg),
                    None => self.env_err(key, msg),
                }
            })?,
            None => DEFAULT_ADMIN_LISTEN
                .parse()
                .unwrap_or_else(|_| unreachable!("default admin address")),
        };
        Ok(Some(AdminConfig {
            listen,
            token,
            body_limit,
        }))
    }

    fn engine(&self, raw: &RawEngine, templates: &RawTemplates) -> Result<EngineConfig, ConfigError> {
        let mut e = EngineConfig {
            holder: default_holder(),
            ..EngineConfig::default()
        };
        if let Some(h) = self.env.var("ISPD_ENGINE_HOLDER").or(raw.holder.clone()) {
            let h = h.trim().to_owned();
            if h.is_empty() || h.len() > 100 || h == isp_core::ports::RETRY_HOLDER {
                return Err(self.nowhere(
                    "engine.holder",
                    format!("{h:?} is not a usable claimant id (1 to 100 characters, not \"retry\")"),
                ));
            }
            e.holder = h;
        }
        if let Some(b) = &raw.batch_size {
            if !(1..=100_000).contains(b.get_ref()) {
                return Err(self.at(b.span(), "engine.batch_size", "must be between 1 and 100000"));
            }
            e.batch_size = *b.get_ref();
        }
        if let Some(c) = &raw.per_router_concurrency {
            if !(1..=64).contains(c.get_ref()) {
                return Err(self.at(
                    c.span(),
                    "engine.per_router_concurrency",
                    "must be between 1 and 64",
                ));
            }
            e.per_router_concurrency = *c.get_ref();
        }
        let positive = |d: Option<Dur>, key: &str, into: &mut Duration| -> Result<(), ConfigError> {
            if let Some(Dur(d)) = d {
                if d.is_zero() {
                    return Err(self.nowhere(key, "must be longer than zero"));
                }
                *into = d;
            }
            Ok(())
        };
        positive(raw.lease_ttl, "engine.lease_ttl", &mut e.lease_ttl)?;
        positive(raw.retry_base, "engine.retry_base", &mut e.retry_base)?;
        positive(raw.retry_max, "engine.retry_max", &mut e.retry_max)?;
        positive(
            raw.device_retention,
            "engine.device_retention",
            &mut e.device_retention,
        )?;
        positive(raw.log_retention, "engine.log_retention", &mut e.log_retention)?;
        if e.retry_max < e.retry_base {
            return Err(self.nowhere("engine.retry_max", "must not be shorter than engine.retry_base"));
        }
        if let Some(l) = &raw.static_ip_list {
            e.static_ip_list = l.clone();
        }
        let mut t = Templates::default();
        for (slot, raw, key) in [
            (
                &mut t.hotspot_expires_soon,
                &templates.hotspot_expires_soon,
                "templates.hotspot_expires_soon",
            ),
            (
                &mut t.hotspot_expired,
                &templates.hotspot_expired,
                "templates.hotspot_expired",
            ),
            (
                &mut t.service_expires,
                &templates.service_expires,
                "templates.service_expires",
            ),
            (
                &mut t.payment_due,
                &templates.payment_due,
                "templates.payment_due",
            ),
        ] {
            if let Some(v) = raw {
                let text = v.get_ref().trim();
                if text.is_empty() {
                    return Err(self.at(v.span(), key, "a message template must not be empty"));
                }
                if text.matches('{').count() != text.matches('}').count() {
                    return Err(self.at(v.span(), key, "unbalanced `{` `}` in the template"));
                }
                *slot = text.to_owned();
            }
        }
        e.templates = t;
        Ok(e)
    }

    fn scheduler(
        &self,
        raw: &RawScheduler,
        schedules: &RawSchedules,
    ) -> Result<SchedulerConfig, ConfigError> {
        let mut s = SchedulerConfig::default();
        if let Some(v) = self.env.var("ISPD_SCHEDULER_TIME_ZONE") {
            s.time_zone = parse_zone(&v).map_err(|m| self.env_err("ISPD_SCHEDULER_TIME_ZONE", m))?;
        } else if let Some(Zone(z)) = raw.time_zone {
            s.time_zone = z;
        }
        if let Some(v) = self.env.var("ISPD_SCHEDULER_WATCHER") {
            s.watcher_enabled = match v.trim() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    return Err(self.env_err("ISPD_SCHEDULER_WATCHER", format!("{v:?} is not true or false")))
                }
            };
        } else if let Some(w) = raw.watcher {
            s.watcher_enabled = w;
        }
        if let Some(m) = &raw.watcher_max_sleep {
            let d = m.get_ref().0;
            if d < Duration::from_millis(100) || d > Duration::from_secs(60) {
                return Err(self.at(
                    m.span(),
                    "scheduler.watcher_max_sleep",
                    "must be between 100ms and 60s: the watcher must notice new purchases within seconds",
                ));
            }
            s.watcher_max_sleep = d;
        }
        if let Some(Dur(d)) = raw.watcher_min_sleep {
            s.watcher_min_sleep = d;
        }
        if s.watcher_min_sleep > s.watcher_max_sleep {
            return Err(self.nowhere(
                "scheduler.watcher_min_sleep",
                "must not be longer than scheduler.watcher_max_sleep",
            ));
        }
        if let Some(Dur(d)) = raw.shutdown_grace {
            s.shutdown_grace = d;
        }
        for job in JobKind::ALL {
            let var = format!(
                "ISPD_SCHEDULE_{}",
                job.name().replace('-', "_").to_ascii_uppercase()
            );
            if let Some(v) = self.env.var(&var) {
                let sch = Schedule::parse(&v).map_err(|m| self.env_err(&var, m))?;
                s.schedules.insert(job, sch);
            } else if let Some(CronSpec(sch)) = schedules.get(job) {
                s.schedules.insert(job, sch.clone());
            }
        }
        Ok(s)
    }

    fn tenants(
        &self,
        raw: &[RawTenant],
        warnings: &mut Vec<String>,
    ) -> Result<Vec<TenantConfig>, ConfigError> {
        let mut tenant_ids = BTreeSet::new();
        let mut slugs = BTreeSet::new();
        let mut router_ids = BTreeSet::new();
        let mut out = Vec::new();
        for (ti, t) in raw.iter().enumerate() {
            let key = |k: &str| format!("tenants[{ti}].{k}");
            let id = *t.id.get_ref();
            if id <= 0 {
                return Err(self.at(t.id.span(), key("id"), "ids are positive integers"));
            }
            if !tenant_ids.insert(id) {
                return Err(self.at(t.id.span(), key("id"), format!("tenant id {id} is used twice")));
            }
            if !slugs.insert(t.slug.get_ref().as_str().to_owned()) {
                return Err(self.at(
                    t.slug.span(),
                    key("slug"),
                    format!("tenant slug {:?} is used twice", t.slug.get_ref().as_str()),
                ));
            }
            let tenant = Tenant {
                id: TenantId(id),
                slug: t.slug.get_ref().clone(),
                name: t.name.clone().unwrap_or_else(|| t.slug.get_ref().to_string()),
                time_zone: t.time_zone.0,
            };
            let mut routers = Vec::new();
            let mut names = BTreeSet::new();
            for (ri, r) in t.routers.iter().enumerate() {
                let rkey = |k: &str| format!("tenants[{ti}].routers[{ri}].{k}");
                let rid = *r.id.get_ref();
                if rid <= 0 {
                    return Err(self.at(r.id.span(), rkey("id"), "ids are positive integers"));
                }
                if !router_ids.insert(rid) {
                    return Err(self.at(
                        r.id.span(),
                        rkey("id"),
                        format!("router id {rid} is used twice (router ids are unique across tenants)"),
                    ));
                }
                if !names.insert(r.name.get_ref().as_str().to_owned()) {
                    return Err(self.at(
                        r.name.span(),
                        rkey("name"),
                        format!(
                            "router name {:?} is used twice in this tenant",
                            r.name.get_ref().as_str()
                        ),
                    ));
                }
                let transport = r.transport.unwrap_or(Transport::Api);
                let address = normalize_address(r.address.get_ref(), transport)
                    .map_err(|m| self.at(r.address.span(), rkey("address"), m))?;
                let username = r.username.get_ref().trim();
                if username.is_empty() {
                    return Err(self.at(r.username.span(), rkey("username"), "must not be empty"));
                }
                let sources = [
                    r.password.is_some(),
                    r.password_env.is_some(),
                    r.password_file.is_some(),
                ]
                .iter()
                .filter(|b| **b)
                .count();
                let password = match (&r.password_env, &r.password_file, &r.password) {
                    _ if sources > 1 => {
                        return Err(self.at(
                            r.id.span(),
                            format!("tenants[{ti}].routers[{ri}]"),
                            "set only one of password_env, password_file and password",
                        ))
                    }
                    (Some(e), _, _) => self.read_secret_env(e, &rkey("password_env"))?,
                    (_, Some(f), _) => self.read_secret_file(f, &rkey("password_file"))?,
                    (_, _, Some(p)) => {
                        warnings.push(format!(
                            "{}: {} is written in the configuration file; prefer password_env or password_file",
                            self.origin,
                            rkey("password")
                        ));
                        p.get_ref().clone()
                    }
                    (None, None, None) => {
                        return Err(self.at(
                            r.id.span(),
                            format!("tenants[{ti}].routers[{ri}]"),
                            "no password: set password_env (an environment variable name) or password_file",
                        ))
                    }
                };
                let tls_fingerprint = match &r.tls_fingerprint {
                    Some(fp) => {
                        let hex: String = fp.get_ref().chars().filter(|c| *c != ':').collect();
                        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                            return Err(self.at(
                                fp.span(),
                                rkey("tls_fingerprint"),
                                "expected a SHA-256 fingerprint: 64 hex digits (colons allowed)",
                            ));
                        }
                        if transport == Transport::Api {
                            return Err(self.at(
                                fp.span(),
                                rkey("tls_fingerprint"),
                                "a TLS fingerprint needs transport = \"api-ssl\"",
                            ));
                        }
                        Some(hex.to_ascii_lowercase())
                    }
                    None => None,
                };
                routers.push(Router {
                    id: RouterId(rid),
                    tenant_id: TenantId(id),
                    name: r.name.get_ref().to_string(),
                    address,
                    transport,
                    credentials: RouterCredentials::new(username, password),
                    tls_fingerprint,
                    enabled: r.enabled,
                });
            }
            let mut plan_names = BTreeSet::new();
            let mut plans = Vec::new();
            for (pi, p) in t.plans.iter().enumerate() {
                let pkey = |k: &str| format!("tenants[{ti}].plans[{pi}].{k}");
                if !plan_names.insert(p.name.get_ref().as_str().to_owned()) {
                    return Err(self.at(
                        p.name.span(),
                        pkey("name"),
                        format!("plan {:?} is defined twice", p.name.get_ref().as_str()),
                    ));
                }
                let price = Money::parse("price", &p.price.get_ref().0, p.currency)
                    .map_err(|e| self.at(p.price.span(), pkey("price"), e.to_string()))?;
                plans.push(NewPlan {
                    tenant_id: TenantId(id),
                    name: p.name.get_ref().clone(),
                    price,
                    duration: p.duration,
                    rate_limit: p.rate_limit,
                });
            }
            out.push(TenantConfig {
                tenant,
                routers,
                plans,
                alert_phones: t.alert_phones.clone(),
            });
        }
        Ok(out)
    }
}

/// `host` or `host:port`; adds the transport's default port.
fn normalize_address(raw: &str, transport: Transport) -> Result<String, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Err("the router address is empty".into());
    }
    // A DNS name has at most 253 bytes; with brackets and a port, 261.
    if t.len() > 261 {
        return Err(format!(
            "the router address is {} bytes long; a host name has at most 253",
            t.len()
        ));
    }
    if t.contains("://") || t.contains('/') || t.contains(char::is_whitespace) {
        return Err(format!("{t:?} is not host or host:port (no scheme, no path)"));
    }
    let default_port = match transport {
        Transport::Api => 8728,
        Transport::ApiSsl => 8729,
        Transport::Rest => 443,
    };
    // [v6]:port, v6 without port, host:port, host.
    if let Some(rest) = t.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{t:?}: missing `]` after the IPv6 address"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => parse_port(p, t)?,
            None if after.is_empty() => default_port,
            None => return Err(format!("{t:?} is not host or host:port")),
        };
        return Ok(format!("[{host}]:{port}"));
    }
    match t.matches(':').count() {
        0 => Ok(format!("{t}:{default_port}")),
        1 => {
            let (host, port) = t.split_once(':').unwrap_or((t, ""));
            if host.is_empty() {
                return Err(format!("{t:?} has no host"));
            }
            Ok(format!("{host}:{}", parse_port(port, t)?))
        }
        _ => Ok(format!("[{t}]:{default_port}")),
    }
}

fn parse_port(p: &str, whole: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{whole:?}: {p:?} is not a port number (1-65535)")),
    }
}

fn default_holder() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.len() <= 60)
        .unwrap_or_else(|| "ispd".to_owned());
    format!("ispd-{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = load_str("", "t.toml", None, &env(&[])).unwrap();
        assert!(matches!(c.storage.url, StorageUrl::Sqlite(ref p) if p == Path::new("ispd.db")));
        assert!(c.admin.is_none(), "no token, no API");
        assert_eq!(c.scheduler.schedules.len(), 10);
        assert_eq!(
            c.scheduler.schedules[&JobKind::DeviceCleanup].as_str(),
            "0 3 * * *"
        );
    }

    #[test]
    fn storage_urls() {
        assert!(matches!(
            StorageUrl::parse("memory", None),
            Ok(StorageUrl::Memory)
        ));
        assert!(
            matches!(StorageUrl::parse("sqlite:///var/lib/x.db", None), Ok(StorageUrl::Sqlite(p)) if p == Path::new("/var/lib/x.db"))
        );
        assert!(
            matches!(StorageUrl::parse("sqlite:x.db?mode=rwc", None), Ok(StorageUrl::Sqlite(p)) if p == Path::new("x.db"))
        );
        let pg = StorageUrl::parse("postgres://isp:hunter2@db/isp", None).unwrap();
        assert_eq!(pg.redacted(), "postgres://isp:***@db/isp");
        assert!(!format!("{pg:?}").contains("hunter2"));
        match StorageUrl::parse("mongodb://u:p@h/billing?x=1", None).unwrap() {
            StorageUrl::Mongo { database, .. } => assert_eq!(database, "billing"),
            other => panic!("{other:?}"),
        }
        let e = StorageUrl::parse("mysql://u:secretpw@h/db", None).unwrap_err();
        assert!(!e.contains("secretpw") && e.contains("mysql"), "{e}");
    }

    #[test]
    fn addresses() {
        assert_eq!(
            normalize_address("10.0.0.1", Transport::Api).unwrap(),
            "10.0.0.1:8728"
        );
        assert_eq!(
            normalize_address("r1.lan:1234", Transport::Api).unwrap(),
            "r1.lan:1234"
        );
        assert_eq!(normalize_address("r1", Transport::ApiSsl).unwrap(), "r1:8729");
        assert_eq!(normalize_address("[::1]:99", Transport::Api).unwrap(), "[::1]:99");
        assert!(normalize_address("http://x", Transport::Api).is_err());
        assert!(normalize_address("x:0", Transport::Api).is_err());
        assert!(normalize_address("x:99999", Transport::Api).is_err());
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("postgres://a:b@h:5432/d?x=1"),
            "postgres://a:***@h:5432/d?x=1"
        );
        assert_eq!(redact_url("postgres://a@h/d"), "postgres://a@h/d");
        assert_eq!(redact_url("postgres://h/d"), "postgres://h/d");
    }

    #[test]
    fn token_rules() {
        assert!(AdminToken::new("short").is_err());
        assert!(AdminToken::new("has a space in it....").is_err());
        let t = AdminToken::new("0123456789abcdef0123").unwrap();
        assert!(!format!("{t:?}").contains("0123456789"));
        assert_eq!(AdminToken::random().expose().len(), 64);
    }
}
