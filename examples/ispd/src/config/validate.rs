//! Validation: from the raw file and the environment to a [`Config`](super::Config),
//! every mistake a [`ConfigError`](super::ConfigError) that names where it is.

use super::raw::*;
use super::*;

pub(super) struct Cx<'a> {
    pub(super) text: &'a str,
    pub(super) origin: &'a str,
    pub(super) base_dir: Option<&'a Path>,
    pub(super) env: &'a dyn Env,
}

impl Cx<'_> {
    pub(super) fn at(
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

    pub(super) fn env_err(&self, var: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: "environment".to_owned(),
            line: None,
            column: None,
            key: var.to_owned(),
            message: message.into(),
        }
    }

    pub(super) fn nowhere(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: self.origin.to_owned(),
            line: None,
            column: None,
            key: key.into(),
            message: message.into(),
        }
    }

    pub(super) fn read_secret_file(&self, raw: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
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

    pub(super) fn read_secret_env(&self, raw: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
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

    pub(super) fn validate(&self, raw: RawFile) -> Result<Config, ConfigError> {
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
        let (tenants, nases) = self.tenants(&raw.tenants, &mut warnings)?;
        let radius = self.radius(raw.radius.as_ref(), nases, &mut warnings)?;
        let mut config = Config {
            source: None,
            storage,
            admin,
            engine,
            scheduler,
            sms,
            log,
            tenants,
            radius,
            warnings,
        };
        let cleartext = config.cleartext_notes();
        config.warnings.extend(cleartext);
        Ok(config)
    }

    pub(super) fn storage(&self, raw: &RawStorage) -> Result<StorageConfig, ConfigError> {
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
            statement_timeout: raw.statement_timeout.map_or(Duration::from_secs(30), |d| d.0),
            lock_timeout: raw.lock_timeout.map_or(Duration::from_secs(10), |d| d.0),
            acquire_timeout: match raw.acquire_timeout {
                Some(Dur(d)) if d.is_zero() => {
                    return Err(self.nowhere("storage.acquire_timeout", "must be longer than zero"))
                }
                Some(Dur(d)) => d,
                None => Duration::from_secs(10),
            },
        })
    }

    pub(super) fn admin(
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
        let header_read_timeout = raw.header_read_timeout.map_or(Duration::from_secs(10), |d| d.0);
        let request_timeout = raw.request_timeout.map_or(Duration::from_secs(300), |d| d.0);
        let max_connections = raw.max_connections.unwrap_or(256);
        if header_read_timeout.is_zero() {
            return Err(self.nowhere("admin.header_read_timeout", "must be more than 0s"));
        }
        if request_timeout.is_zero() {
            return Err(self.nowhere("admin.request_timeout", "must be more than 0s"));
        }
        if max_connections == 0 {
            return Err(self.nowhere("admin.max_connections", "must be at least 1"));
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
            header_read_timeout,
            request_timeout,
            max_connections,
        }))
    }

    pub(super) fn engine(
        &self,
        raw: &RawEngine,
        templates: &RawTemplates,
    ) -> Result<EngineConfig, ConfigError> {
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
        positive(raw.run_timeout, "engine.run_timeout", &mut e.run_timeout)?;
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

    pub(super) fn tenants(
        &self,
        raw: &[RawTenant],
        warnings: &mut Vec<String>,
    ) -> Result<(Vec<TenantConfig>, Vec<isp_radius::Nas>), ConfigError> {
        let mut nases = Vec::new();
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
                let transport = r.transport.as_ref().map_or(Transport::Api, |t| *t.get_ref());
                if transport == Transport::Radius {
                    let (router, nas) = self.radius_router(r, ti, ri, TenantId(id), warnings)?;
                    routers.push(router);
                    nases.push(nas);
                    continue;
                }
                if let Some(s) = r.secret.as_ref().or(r.secret_file.as_ref()) {
                    return Err(self.at(
                        s.span(),
                        format!("tenants[{ti}].routers[{ri}]"),
                        "secret and secret_file are for transport = \"radius\"",
                    ));
                }
                let address = normalize_address(r.address.get_ref(), transport)
                    .map_err(|m| self.at(r.address.span(), rkey("address"), m))?;
                let Some(username) = &r.username else {
                    return Err(self.at(
                        r.id.span(),
                        format!("tenants[{ti}].routers[{ri}]"),
                        "no username: set username (the router's API user), or transport = \"radius\"",
                    ));
                };
                let username_span = username.span();
                let username = username.get_ref().trim();
                if username.is_empty() {
                    return Err(self.at(username_span, rkey("username"), "must not be empty"));
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
        Ok((out, nases))
    }

    /// A router with `transport = "radius"`: its address is where its
    /// requests come from and its `/radius incoming` port; no API login.
    fn radius_router(
        &self,
        r: &RawRouter,
        ti: usize,
        ri: usize,
        tenant: TenantId,
        warnings: &mut Vec<String>,
    ) -> Result<(Router, isp_radius::Nas), ConfigError> {
        let whole = format!("tenants[{ti}].routers[{ri}]");
        let rkey = |k: &str| format!("{whole}.{k}");
        if r.username.is_some()
            || r.password.is_some()
            || r.password_env.is_some()
            || r.password_file.is_some()
            || r.tls_fingerprint.is_some()
        {
            return Err(self.at(
                r.id.span(),
                whole.clone(),
                "a router with transport = \"radius\" has no API login: remove username, password, password_env, password_file and tls_fingerprint, and set secret_file",
            ));
        }
        let address = normalize_address_port(r.address.get_ref(), DEFAULT_RADIUS_INCOMING_PORT)
            .map_err(|m| self.at(r.address.span(), rkey("address"), m))?;
        let incoming: SocketAddr = address.parse().map_err(|_| {
            self.at(
                r.address.span(),
                rkey("address"),
                format!(
                    "{:?}: a RADIUS router's address is the IP address its requests come from (with its /radius incoming port, 3799 by default), not a host name",
                    r.address.get_ref()
                ),
            )
        })?;
        let secret = match (&r.secret_file, &r.secret) {
            (Some(_), Some(s)) => {
                return Err(self.at(s.span(), whole.clone(), "set only one of secret_file and secret"))
            }
            (Some(f), None) => self.read_secret_file(f, &rkey("secret_file"))?,
            (None, Some(s)) => {
                warnings.push(format!(
                    "{}: {} is written in the configuration file; prefer secret_file",
                    self.origin,
                    rkey("secret")
                ));
                s.get_ref().clone()
            }
            (None, None) => {
                return Err(self.at(
                    r.id.span(),
                    whole.clone(),
                    "no RADIUS secret: set secret_file (a file holding the router's shared secret)",
                ))
            }
        };
        if secret.is_empty() || secret.len() > 128 || secret.chars().any(char::is_control) {
            return Err(self.at(
                r.id.span(),
                rkey("secret"),
                "the RADIUS secret must be 1 to 128 bytes without control characters",
            ));
        }
        let name = r.name.get_ref().to_string();
        let router = Router {
            id: RouterId(*r.id.get_ref()),
            tenant_id: tenant,
            name: name.clone(),
            address: incoming.to_string(),
            transport: Transport::Radius,
            credentials: RouterCredentials::new("radius", ""),
            tls_fingerprint: None,
            enabled: r.enabled,
        };
        let nas = isp_radius::Nas::new(
            router.id,
            tenant,
            name,
            incoming.ip(),
            incoming,
            SecretString::from(secret),
        );
        Ok((router, nas))
    }

    pub(super) fn radius(
        &self,
        raw: Option<&RawRadius>,
        nases: Vec<isp_radius::Nas>,
        warnings: &mut Vec<String>,
    ) -> Result<Option<RadiusConfig>, ConfigError> {
        let Some(raw) = raw else {
            if let Some(n) = nases.first() {
                return Err(self.nowhere(
                    "radius",
                    format!(
                        "router {} has transport = \"radius\" but there is no [radius] section (add [radius] with listen = \"0.0.0.0\")",
                        n.name
                    ),
                ));
            }
            return Ok(None);
        };
        if nases.is_empty() {
            warnings.push(format!(
                "{}: [radius] is configured but no router has transport = \"radius\"",
                self.origin
            ));
        }
        let (text, span) = match self.env.var("ISPD_RADIUS_LISTEN") {
            Some(v) => (v, None),
            None => match &raw.listen {
                Some(l) => (l.get_ref().clone(), Some(l.span())),
                None => ("0.0.0.0".to_owned(), None),
            },
        };
        let err = |m: String| match &span {
            Some(sp) => self.at(sp.clone(), "radius.listen", m),
            None if self.env.var("ISPD_RADIUS_LISTEN").is_some() => self.env_err("ISPD_RADIUS_LISTEN", m),
            None => self.nowhere("radius.listen", m),
        };
        let t = text.trim();
        let auth_listen: SocketAddr = match t.parse::<std::net::IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, DEFAULT_RADIUS_PORT),
            Err(_) => t.parse().map_err(|_| {
                err(format!(
                    "{t:?} is not an IP address or IP:port (for example \"0.0.0.0\" or \"127.0.0.1:1812\")"
                ))
            })?,
        };
        let acct_port = match auth_listen.port() {
            0 => 0,
            p => p.checked_add(1).ok_or_else(|| {
                err("the accounting port is the authentication port + 1: use a port below 65535".into())
            })?,
        };
        let acct_listen = SocketAddr::new(auth_listen.ip(), acct_port);
        let interim_interval = raw.interim_interval.map_or(Duration::from_secs(300), |d| d.0);
        if interim_interval < Duration::from_secs(1) {
            return Err(self.nowhere("radius.interim_interval", "must be at least 1s"));
        }
        let disconnect_timeout = raw.disconnect_timeout.map_or(Duration::from_secs(1), |d| d.0);
        if disconnect_timeout < Duration::from_millis(10) || disconnect_timeout > Duration::from_secs(60) {
            return Err(self.nowhere("radius.disconnect_timeout", "must be between 10ms and 60s"));
        }
        let disconnect_attempts = match &raw.disconnect_attempts {
            Some(a) if !(1..=10).contains(a.get_ref()) => {
                return Err(self.at(a.span(), "radius.disconnect_attempts", "must be 1 to 10"))
            }
            Some(a) => *a.get_ref(),
            None => 4,
        };
        let session_retention = raw
            .session_retention
            .map_or(isp_radius::DEFAULT_SESSION_RETENTION, |d| d.0);
        if session_retention < Duration::from_secs(3600) {
            return Err(self.nowhere("radius.session_retention", "must be at least 1h"));
        }
        Ok(Some(RadiusConfig {
            auth_listen,
            acct_listen,
            interim_interval,
            disconnect_timeout,
            disconnect_attempts,
            session_retention,
            nases,
        }))
    }
}

/// `host` or `host:port`; adds the transport's default port.
pub(super) fn normalize_address(raw: &str, transport: Transport) -> Result<String, String> {
    let default_port = match transport {
        Transport::Api => 8728,
        Transport::ApiSsl => 8729,
        Transport::Rest => 443,
        Transport::Radius => DEFAULT_RADIUS_INCOMING_PORT,
    };
    normalize_address_port(raw, default_port)
}

/// `host` or `host:port`; adds `default_port`.
pub(super) fn normalize_address_port(raw: &str, default_port: u16) -> Result<String, String> {
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

pub(super) fn parse_port(p: &str, whole: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{whole:?}: {p:?} is not a port number (1-65535)")),
    }
}

pub(super) fn default_holder() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.len() <= 60)
        .unwrap_or_else(|| "ispd".to_owned());
    format!("ispd-{host}-{}", std::process::id())
}
