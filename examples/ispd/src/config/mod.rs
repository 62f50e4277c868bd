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
//! | `ISPD_RADIUS_LISTEN` | `radius.listen` |
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

mod raw;
mod schedules;
#[cfg(test)]
mod tests;
mod validate;

use raw::RawFile;
use validate::Cx;

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
    /// A MySQL / MariaDB URL, `mysql://` or `mariadb://` (may hold a password: a secret).
    Mysql(SecretString),
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
    /// `postgresql://...`, `mysql://...`, `mariadb://...`, `mongodb://...`,
    /// `mongodb+srv://...` or `memory`.
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
        if t.starts_with("mysql://") || t.starts_with("mariadb://") {
            return Ok(StorageUrl::Mysql(SecretString::from(t.to_owned())));
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
                "unknown storage scheme in {:?}: use sqlite://PATH, postgres://..., mysql://..., mongodb://... or memory",
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
            StorageUrl::Postgres(u) | StorageUrl::Mysql(u) => redact_url(u.expose_secret()),
            StorageUrl::Mongo { url, database } => {
                format!("{} (database {database})", redact_url(url.expose_secret()))
            }
            StorageUrl::Memory => "memory".into(),
        }
    }

    /// `sqlite`, `postgres`, `mysql`, `mongodb` or `memory`.
    pub fn kind(&self) -> &'static str {
        match self {
            StorageUrl::Sqlite(_) => "sqlite",
            StorageUrl::Postgres(_) => "postgres",
            StorageUrl::Mysql(_) => "mysql",
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
    /// PostgreSQL and MySQL: the server cancels a statement that runs longer,
    /// so a stalled database frees the job with a transient error (default
    /// 30 s; `0s` disables it). SQLite has none.
    pub statement_timeout: Duration,
    /// PostgreSQL and MySQL: the longest a statement waits for a lock
    /// (default 10 s; `0s` disables it).
    pub lock_timeout: Duration,
    /// How long a call waits for a pooled connection (also one that is
    /// tested or made first) before it fails with a transient error (default 10 s).
    pub acquire_timeout: Duration,
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
    /// Longest a client may take to send a request's headers (slow-loris guard).
    pub header_read_timeout: Duration,
    /// Longest a request may take; a job run it started still finishes.
    pub request_timeout: Duration,
    /// Most connections served at once; more are closed at once.
    pub max_connections: usize,
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
    /// RADIUS mode (`[radius]` and the routers with `transport = "radius"`).
    pub radius: Option<RadiusConfig>,
    /// Things that work but deserve a warning (inline secrets, ...). Never contain a secret.
    pub warnings: Vec<String>,
}

/// Default RADIUS authentication port (accounting is the next one).
pub const DEFAULT_RADIUS_PORT: u16 = 1812;

/// Default `/radius incoming` port of a router (RFC 5176).
pub const DEFAULT_RADIUS_INCOMING_PORT: u16 = 3799;

/// RADIUS mode: where our servers listen and the routers (NASes) in it.
#[derive(Debug, Clone)]
pub struct RadiusConfig {
    /// Authentication address; accounting listens on the next port (both
    /// pick a free port each when this port is 0).
    pub auth_listen: SocketAddr,
    /// Accounting address.
    pub acct_listen: SocketAddr,
    /// `Acct-Interim-Interval` sent to the routers.
    pub interim_interval: Duration,
    /// Wait for a Disconnect-ACK/NAK before sending again (doubled each time).
    pub disconnect_timeout: Duration,
    /// Disconnect-Request sends in all.
    pub disconnect_attempts: u32,
    /// How long closed RADIUS sessions are kept for history (`30d` by default).
    pub session_retention: Duration,
    /// The routers with `transport = "radius"`, with their secrets (`Debug` redacts them).
    pub nases: Vec<isp_radius::Nas>,
}

impl RadiusConfig {
    /// True when `router` is in RADIUS mode.
    pub fn serves(&self, router: RouterId) -> bool {
        self.nases.iter().any(|n| n.router == router)
    }
}

impl Config {
    /// Every router of every tenant.
    pub fn routers(&self) -> Vec<Router> {
        self.tenants
            .iter()
            .flat_map(|t| t.routers.iter().cloned())
            .collect()
    }

    /// What crosses the network in clear: routers on the plain API (their
    /// password and every command), and an admin API listening beyond
    /// loopback (it has no TLS of its own, so the bearer token travels in
    /// clear unless a TLS proxy fronts it). Logged at start-up and shown by
    /// `ispd status` and `/api/health`; cleartext is a choice, not a default
    /// nobody notices.
    pub fn cleartext_notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = self
            .tenants
            .iter()
            .flat_map(|t| t.routers.iter().map(move |r| (t, r)))
            .filter(|(_, r)| r.transport == Transport::Api && r.enabled)
            .map(|(t, r)| {
                format!(
                    "router {}:{} uses the plain API: its password crosses the network in clear; use transport = \"api-ssl\" with tls_fingerprint",
                    t.tenant.slug, r.name
                )
            })
            .collect();
        if let Some(admin) = &self.admin {
            if !admin.listen.ip().is_loopback() {
                notes.push(format!(
                    "the admin API listens on {} without TLS: its bearer token crosses the network in clear; listen on 127.0.0.1 behind a TLS proxy",
                    admin.listen
                ));
            }
        }
        notes
    }

    /// Built-in defaults with no tenants (what `ispd migrate` needs when no file is given).
    pub fn defaults(env: &dyn Env) -> Result<Self, ConfigError> {
        load_str("", "<defaults>", None, env)
    }
}

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
