//! The simulated router's state: tables, clock and the commands that change them.
//!
//! Everything here is synchronous and runs under one lock; the network side
//! (`server.rs`) turns requests into calls of [`RouterState::execute`].

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use super::duration;
use super::menus::{self, Field, Kind, MenuSpec};
use super::query::{self, Query};
use crate::proto::{Reply, Request};

/// A trap the router answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trap {
    pub(crate) message: String,
    pub(crate) category: Option<u8>,
}

impl Trap {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            category: None,
        }
    }

    pub(crate) fn cat(message: impl Into<String>, category: u8) -> Self {
        Self {
            message: message.into(),
            category: Some(category),
        }
    }

    pub(crate) fn reply(&self) -> Reply {
        Reply::trap(self.message.clone(), self.category)
    }
}

fn no_such_item() -> Trap {
    Trap::new("no such item")
}

fn invalid_value(field: &str) -> Trap {
    Trap::cat(format!("invalid value for argument {field}"), 1)
}

/// One stored item.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) id: u64,
    /// Stored properties (computed ones are added when printing).
    pub(crate) fields: BTreeMap<String, String>,
    /// Sessions and hosts: when they started (router clock).
    pub(crate) started: Option<DateTime<Utc>>,
    /// Address-list timeouts and cookies: when they go away (router clock).
    pub(crate) expires: Option<DateTime<Utc>>,
    /// Hotspot users: uptime consumed by ended sessions.
    pub(crate) used: Duration,
}

impl Row {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// One menu's items; ids grow and are never reused.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) spec: &'static MenuSpec,
    next_id: u64,
    pub(crate) rows: BTreeMap<u64, Row>,
}

/// A change seen by `listen`.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) menu: &'static str,
    pub(crate) id: u64,
    /// The printed item, `None` when it was removed.
    pub(crate) row: Option<Vec<(String, String)>>,
}

/// A removed item, for measuring how fast removals reach the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// Wall-clock time of the removal.
    pub at: SystemTime,
    /// Monotonic time of the removal.
    pub instant: Instant,
    /// The menu (`/ip/hotspot/active`).
    pub menu: String,
    /// The item as it was printed just before removal (with `.id`).
    pub row: BTreeMap<String, String>,
    /// Why: `api` (a `remove` command), `user-removed`, `user-disabled`, `limit-uptime`,
    /// `timeout`, `host-removed`, `logout` (control handle).
    pub reason: String,
}

/// The router clock: wall time that can be set, advancing with real time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SimClock {
    base: DateTime<Utc>,
    at: Instant,
}

impl SimClock {
    pub(crate) fn new(start: DateTime<Utc>) -> Self {
        Self {
            base: start,
            at: Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.at.elapsed()).unwrap_or(chrono::Duration::zero());
        self.base + elapsed
    }
}

fn since(now: DateTime<Utc>, then: Option<DateTime<Utc>>) -> Duration {
    then.and_then(|t| (now - t).to_std().ok())
        .unwrap_or(Duration::ZERO)
}

fn until(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (then - now).to_std().unwrap_or(Duration::ZERO)
}

/// The router clock in the `/system/clock` item's time zone (UTC when unset or `manual`).
fn local(row: &Row, now: DateTime<Utc>) -> chrono::DateTime<chrono::FixedOffset> {
    let tz = row
        .get("time-zone-name")
        .and_then(|n| n.parse::<chrono_tz::Tz>().ok())
        .unwrap_or(chrono_tz::UTC);
    now.with_timezone(&tz).fixed_offset()
}

/// Elapsed times print in whole seconds (rounded down), as on a router.
fn show_elapsed(d: Duration) -> String {
    duration::format(Duration::from_secs(d.as_secs()))
}

/// Remaining times print in whole seconds (rounded up).
fn show_remaining(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    duration::format(Duration::from_secs(secs))
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Settings of the router that do not change while it runs.
#[derive(Debug, Clone)]
pub(crate) struct RouterSettings {
    pub(crate) version: String,
    pub(crate) identity: String,
    pub(crate) empty_replies: bool,
}

/// Everything a router stores.
#[derive(Debug)]
pub(crate) struct RouterState {
    pub(crate) tables: BTreeMap<&'static str, Table>,
    pub(crate) clock: SimClock,
    boot: DateTime<Utc>,
    pub(crate) settings: RouterSettings,
    events: broadcast::Sender<Change>,
    pub(crate) removals: Vec<Removal>,
    next_session: u64,
    /// Router-clock instant before which [`tick`](Self::tick) has nothing to
    /// end; `None` once a menu it watches changed (or the clock was set), so
    /// the next tick scans again. Without it every command scanned every user.
    quiet_until: Option<DateTime<Utc>>,
}

/// The menus whose items [`RouterState::tick`] ends with time.
const TIMED_MENUS: [&str; 4] = [
    "/ip/hotspot/user",
    "/ip/hotspot/active",
    "/ip/firewall/address-list",
    "/ip/hotspot/cookie",
];

/// Properties a `print` accepts besides queries.
const PRINT_OPTIONS: &[&str] = &[
    ".proplist",
    "count-only",
    "detail",
    "stats",
    "without-paging",
    "terse",
    "brief",
    "follow",
    "follow-only",
    "interval",
    "as-value",
    "value-list",
    "show-ids",
    "where",
];

impl RouterState {
    pub(crate) fn new(settings: RouterSettings, now: DateTime<Utc>) -> Self {
        let (events, _) = broadcast::channel(4096);
        let mut state = Self {
            tables: BTreeMap::new(),
            clock: SimClock::new(now),
            boot: now,
            settings,
            events,
            removals: Vec::new(),
            next_session: 0x8100_0000,
            quiet_until: None,
        };
        for spec in menus::MENUS {
            state.tables.insert(
                spec.path,
                Table {
                    spec,
                    next_id: 1,
                    rows: BTreeMap::new(),
                },
            );
        }
        // Items every router has.
        let defaults: &[(&str, &[(&str, &str)])] = &[
            ("/ip/hotspot", &[("name", "hotspot1")]),
            (
                "/ip/hotspot/user/profile",
                &[("name", "default"), ("default", "true")],
            ),
            ("/ppp/profile", &[("name", "default"), ("default", "true")]),
            (
                "/ppp/profile",
                &[
                    ("name", "default-encryption"),
                    ("use-encryption", "yes"),
                    ("default", "true"),
                ],
            ),
        ];
        for (menu, attrs) in defaults {
            let fields = attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            state.insert(menu, fields, None, None);
        }
        let id = state.settings.identity.clone();
        state.insert(
            "/system/identity",
            BTreeMap::from([("name".to_owned(), id)]),
            None,
            None,
        );
        state.insert("/system/resource", BTreeMap::new(), None, None);
        state.insert("/system/clock", BTreeMap::new(), None, None);
        state
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.events.subscribe()
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn set_clock(&mut self, t: DateTime<Utc>) {
        self.clock = SimClock::new(t);
        self.quiet_until = None;
        self.tick();
    }

    fn table(&self, menu: &str) -> Option<&Table> {
        self.tables.get(menu)
    }

    fn table_mut(&mut self, menu: &str) -> Option<&mut Table> {
        if TIMED_MENUS.contains(&menu) {
            self.quiet_until = None;
        }
        self.tables.get_mut(menu)
    }

    fn insert(
        &mut self,
        menu: &str,
        fields: BTreeMap<String, String>,
        started: Option<DateTime<Utc>>,
        expires: Option<DateTime<Utc>>,
    ) -> u64 {
        let Some(table) = self.table_mut(menu) else {
            return 0;
        };
        let id = table.next_id;
        table.next_id += 1;
        table.rows.insert(
            id,
            Row {
                id,
                fields,
                started,
                expires,
                used: Duration::ZERO,
            },
        );
        self.notify(menu, id);
        id
    }

    /// Sends the current form of an item (or its removal) to listeners.
    fn notify(&self, menu: &str, id: u64) {
        // Nobody listening: nothing to render.
        if self.events.receiver_count() == 0 {
            return;
        }
        let Some(table) = self.table(menu) else { return };
        let row = table.rows.get(&id).map(|r| self.render(table.spec, r));
        let _ = self.events.send(Change {
            menu: table.spec.path,
            id,
            row,
        });
    }

    fn remove_row(&mut self, menu: &str, id: u64, reason: &str) -> Option<Row> {
        let spec = self.table(menu)?.spec;
        let printed = {
            let row = self.table(menu)?.rows.get(&id)?;
            self.render(spec, row)
        };
        let row = self.table_mut(menu)?.rows.remove(&id)?;
        self.removals.push(Removal {
            at: SystemTime::now(),
            instant: Instant::now(),
            menu: spec.path.to_owned(),
            row: printed.into_iter().collect(),
            reason: reason.to_owned(),
        });
        self.notify(menu, id);
        Some(row)
    }

    /// The item as `print` shows it: `.id` first, then properties in the router's order.
    pub(crate) fn render(&self, spec: &MenuSpec, row: &Row) -> Vec<(String, String)> {
        self.render_only(spec, row, None, self.now())
    }

    /// [`RouterState::render`] restricted to `props` (a `.proplist`), computing only those.
    fn render_only(
        &self,
        spec: &MenuSpec,
        row: &Row,
        props: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> Vec<(String, String)> {
        let wanted = |name: &str| props.is_none_or(|p| p.iter().any(|w| w == name));
        let mut out: Vec<(String, String)> = Vec::with_capacity(spec.fields.len() + 1);
        if !spec.singleton && wanted(".id") {
            out.push((".id".to_owned(), format!("*{:X}", row.id)));
        }
        for field in spec.fields {
            if !wanted(field.name) {
                continue;
            }
            if let Some(v) = self.field_value(spec, row, field, now) {
                out.push((field.name.to_owned(), v.into_owned()));
            }
        }
        for (k, v) in &row.fields {
            if spec.field(k).is_none() && wanted(k) {
                out.push((k.clone(), v.clone()));
            }
        }
        out
    }

    /// One property of an item as `print` shows it, computed only when asked
    /// for (queries are evaluated without rendering whole items).
    /// `field` is `spec.field(name)`, looked up once per `print`.
    fn value_of<'r>(
        &self,
        spec: &MenuSpec,
        row: &'r Row,
        name: &str,
        field: Option<&Field>,
        now: DateTime<Utc>,
    ) -> Option<Cow<'r, str>> {
        if name == ".id" {
            return (!spec.singleton).then(|| Cow::Owned(format!("*{:X}", row.id)));
        }
        match field {
            Some(field) => self.field_value(spec, row, field, now),
            None => row.get(name).map(Cow::Borrowed),
        }
    }

    /// Borrowed unless computed: queries read it for every item of a `print`.
    fn field_value<'r>(
        &self,
        spec: &MenuSpec,
        row: &'r Row,
        field: &Field,
        now: DateTime<Utc>,
    ) -> Option<Cow<'r, str>> {
        self.computed(spec, row, field, now)
            .map(Cow::Owned)
            .or_else(|| row.get(field.name).map(Cow::Borrowed))
            .or_else(|| field.default.map(Cow::Borrowed))
    }

    /// Values the router computes rather than stores. Matched on the field's
    /// name first: most fields are stored, and this runs for every property
    /// of every item a `print` reads.
    fn computed(&self, spec: &MenuSpec, row: &Row, field: &Field, now: DateTime<Utc>) -> Option<String> {
        match field.name {
            "uptime" => match spec.path {
                "/ip/hotspot/active" | "/ip/hotspot/host" | "/ppp/active" => {
                    Some(show_elapsed(since(now, row.started)))
                }
                "/ip/hotspot/user" => Some(show_elapsed(row.used)),
                "/system/resource" => Some(show_elapsed(since(now, Some(self.boot)))),
                _ => None,
            },
            "session-time-left" if spec.path == "/ip/hotspot/active" => {
                let user = self.user_row(row.get("user")?)?;
                let limit = user.get("limit-uptime").and_then(duration::parse)?;
                let used = user.used + since(now, row.started);
                Some(show_remaining(limit.saturating_sub(used)))
            }
            "expires-in" if spec.path == "/ip/hotspot/cookie" => {
                Some(show_remaining(until(now, row.expires?)))
            }
            "timeout" if spec.path == "/ip/firewall/address-list" => {
                row.expires.map(|e| show_remaining(until(now, e)))
            }
            "dynamic" if spec.path == "/ip/firewall/address-list" => Some(row.expires.is_some().to_string()),
            "bypassed" | "blocked" if spec.path == "/ip/hotspot/ip-binding" => {
                (row.get("type") == Some(field.name)).then(|| "true".to_owned())
            }
            "version" if spec.path == "/system/resource" => Some(self.settings.version.clone()),
            "time" if spec.path == "/system/clock" => Some(local(row, now).format("%H:%M:%S").to_string()),
            "date" if spec.path == "/system/clock" => Some(local(row, now).format("%Y-%m-%d").to_string()),
            "gmt-offset" if spec.path == "/system/clock" => Some(local(row, now).format("%:z").to_string()),
            _ => None,
        }
    }

    fn find_by(&self, menu: &str, field: &str, value: &str) -> Vec<u64> {
        self.table(menu)
            .map(|t| {
                t.rows
                    .values()
                    .filter(|r| r.get(field) == Some(value))
                    .map(|r| r.id)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn user_row(&self, name: &str) -> Option<&Row> {
        self.table("/ip/hotspot/user")?
            .rows
            .values()
            .find(|r| r.get("name") == Some(name))
    }

    /// Applies the passage of time: ends hotspot sessions past their user's limit-uptime,
    /// drops timed-out address-list entries and expired cookies.
    pub(crate) fn tick(&mut self) {
        let now = self.now();
        if self.quiet_until.is_some_and(|q| now < q) {
            return;
        }
        // Users by name once per scan: a scan per session made every command
        // cost sessions x users.
        let mut limits: HashMap<&str, (Duration, Duration)> = HashMap::new();
        if let Some(users) = self.table("/ip/hotspot/user") {
            for u in users.rows.values() {
                if let (Some(name), Some(limit)) =
                    (u.get("name"), u.get("limit-uptime").and_then(duration::parse))
                {
                    limits.entry(name).or_insert((limit, u.used));
                }
            }
        }
        // The earliest instant something not due now will be: the next scan.
        let mut next = DateTime::<Utc>::MAX_UTC;
        let mut over: Vec<u64> = Vec::new();
        if !limits.is_empty() {
            for r in self
                .table("/ip/hotspot/active")
                .map(|t| t.rows.values())
                .into_iter()
                .flatten()
            {
                let Some((limit, used)) = r.get("user").and_then(|u| limits.get(u)) else {
                    continue;
                };
                if *used + since(now, r.started) >= *limit {
                    over.push(r.id);
                } else if let Some(end) = r.started.and_then(|t| {
                    chrono::Duration::from_std(limit.saturating_sub(*used))
                        .ok()
                        .and_then(|left| t.checked_add_signed(left))
                }) {
                    next = next.min(end);
                }
            }
        }
        let mut ended = !over.is_empty();
        for id in over {
            self.end_hotspot_session(id, "limit-uptime");
        }
        for menu in ["/ip/firewall/address-list", "/ip/hotspot/cookie"] {
            let mut expired: Vec<u64> = Vec::new();
            for r in self.table(menu).map(|t| t.rows.values()).into_iter().flatten() {
                match r.expires {
                    Some(e) if e <= now => expired.push(r.id),
                    Some(e) => next = next.min(e),
                    None => {}
                }
            }
            ended |= !expired.is_empty();
            for id in expired {
                self.remove_row(menu, id, "timeout");
            }
        }
        // Ending sessions changed users' uptime: the next tick scans again.
        self.quiet_until = (!ended).then_some(next);
    }

    /// Ends a hotspot session: the user's uptime grows, the host is no longer authorized.
    pub(crate) fn end_hotspot_session(&mut self, id: u64, reason: &str) -> bool {
        let now = self.now();
        let Some(row) = self.remove_row("/ip/hotspot/active", id, reason) else {
            return false;
        };
        let session = since(now, row.started);
        if let Some(user) = row.get("user") {
            if let Some(uid) = self.find_by("/ip/hotspot/user", "name", user).first().copied() {
                if let Some(u) = self
                    .table_mut("/ip/hotspot/user")
                    .and_then(|t| t.rows.get_mut(&uid))
                {
                    u.used += session;
                }
                self.notify("/ip/hotspot/user", uid);
            }
        }
        if let Some(mac) = row.get("mac-address") {
            for hid in self.find_by("/ip/hotspot/host", "mac-address", mac) {
                if let Some(h) = self
                    .table_mut("/ip/hotspot/host")
                    .and_then(|t| t.rows.get_mut(&hid))
                {
                    h.fields.insert("authorized".into(), "false".into());
                }
                self.notify("/ip/hotspot/host", hid);
            }
        }
        true
    }

    /// Logs a device in to the hotspot. With `password` the user must exist, be enabled and
    /// have that password (an API `login`); without it (control handle) unknown users are let
    /// in as a RADIUS-authenticated router would.
    pub(crate) fn hotspot_login(
        &mut self,
        user: &str,
        password: Option<&str>,
        mac: &str,
        ip: &str,
        login_by: &str,
    ) -> Result<u64, Trap> {
        let mac = normalize_mac(mac).ok_or_else(|| invalid_value("mac-address"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| invalid_value("ip"))?;
        let now = self.now();
        let user_row = self.user_row(user).cloned();
        match (&user_row, password) {
            (None, Some(_)) => return Err(Trap::new("invalid username or password")),
            (Some(u), Some(p)) if u.get("password").unwrap_or("") != p => {
                return Err(Trap::new("invalid username or password"))
            }
            _ => {}
        }
        let mut server = "hotspot1".to_owned();
        if let Some(u) = &user_row {
            if u.get("disabled") == Some("true") {
                return Err(Trap::new("invalid username or password"));
            }
            if let Some(limit) = u.get("limit-uptime").and_then(duration::parse) {
                if u.used >= limit {
                    return Err(Trap::new(format!("user {user} has reached uptime limit")));
                }
            }
            if let Some(s) = u.get("server").filter(|s| *s != "all") {
                server = s.to_owned();
            }
        }
        let fields: BTreeMap<String, String> = [
            ("server", server.as_str()),
            ("user", user),
            ("domain", ""),
            ("address", &ip.to_string()),
            ("mac-address", &mac),
            ("login-by", login_by),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let id = self.insert("/ip/hotspot/active", fields, Some(now), None);
        // The device's host entry.
        let host_fields: BTreeMap<String, String> = [
            ("mac-address", mac.as_str()),
            ("address", &ip.to_string()),
            ("to-address", &ip.to_string()),
            ("server", server.as_str()),
            ("found-by", "DHCP"),
            ("authorized", "true"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        match self
            .find_by("/ip/hotspot/host", "mac-address", &mac)
            .first()
            .copied()
        {
            Some(hid) => {
                if let Some(h) = self
                    .table_mut("/ip/hotspot/host")
                    .and_then(|t| t.rows.get_mut(&hid))
                {
                    h.fields.extend(host_fields);
                }
                self.notify("/ip/hotspot/host", hid);
            }
            None => {
                self.insert("/ip/hotspot/host", host_fields, Some(now), None);
            }
        }
        // A MAC cookie, as the default user profile enables them (3 days).
        if self
            .find_by("/ip/hotspot/cookie", "mac-address", &mac)
            .into_iter()
            .all(|c| {
                self.table("/ip/hotspot/cookie")
                    .and_then(|t| t.rows.get(&c))
                    .and_then(|r| r.get("user"))
                    != Some(user)
            })
        {
            let cookie: BTreeMap<String, String> = [("user", user), ("domain", ""), ("mac-address", &mac)]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            self.insert(
                "/ip/hotspot/cookie",
                cookie,
                Some(now),
                Some(now + chrono::Duration::days(3)),
            );
        }
        Ok(id)
    }

    /// Starts a PPP session. A disabled secret refuses it; unknown names are let in (RADIUS).
    pub(crate) fn ppp_login(&mut self, name: &str, caller_id: &str, address: &str) -> Result<u64, Trap> {
        let ip: Ipv4Addr = address.parse().map_err(|_| invalid_value("address"))?;
        let mut service = "pppoe".to_owned();
        if let Some(sid) = self.find_by("/ppp/secret", "name", name).first().copied() {
            let secret = self.table("/ppp/secret").and_then(|t| t.rows.get(&sid));
            if secret.and_then(|s| s.get("disabled")) == Some("true") {
                return Err(Trap::new(format!("secret {name} is disabled")));
            }
            if let Some(s) = secret.and_then(|s| s.get("service")).filter(|s| *s != "any") {
                service = s.to_owned();
            }
        }
        self.next_session += 1;
        let fields: BTreeMap<String, String> = [
            ("name", name.to_owned()),
            ("service", service),
            ("caller-id", caller_id.to_owned()),
            ("address", ip.to_string()),
            ("session-id", format!("0x{:X}", self.next_session)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let now = self.now();
        Ok(self.insert("/ppp/active", fields, Some(now), None))
    }

    /// All printed items of a menu (for the control handle).
    pub(crate) fn rows(&self, menu: &str) -> Vec<BTreeMap<String, String>> {
        let Some(table) = self.table(menu) else {
            return Vec::new();
        };
        table
            .rows
            .values()
            .map(|r| self.render(table.spec, r).into_iter().collect())
            .collect()
    }

    /// Executes a non-streaming command on a menu.
    pub(crate) fn execute(&mut self, req: &Request) -> Result<Vec<Reply>, Trap> {
        self.tick();
        let (spec, cmd) = resolve(&req.command)?;
        match cmd {
            "print" | "getall" => self.print(spec, req),
            "add" => self
                .add(spec, &req.attributes)
                .map(|id| vec![Reply::done().attr("ret", id)]),
            "set" => self.set(spec, req).map(|()| vec![Reply::done()]),
            "unset" => self.unset(spec, req).map(|()| vec![Reply::done()]),
            "remove" => self.remove(spec, req).map(|()| vec![Reply::done()]),
            "disable" | "enable" => self
                .toggle(spec, req, cmd == "disable")
                .map(|()| vec![Reply::done()]),
            "login" => {
                let user = req.get("user").unwrap_or("");
                let password = req.get("password").unwrap_or("");
                let mac = req.get("mac-address").unwrap_or("");
                let ip = req.get("ip").unwrap_or("");
                self.hotspot_login(user, Some(password), mac, ip, "http-pap")
                    .map(|_| vec![Reply::done()])
            }
            other => Err(Trap::cat(format!("no such command or directory ({other})"), 0)),
        }
    }

    /// Parsed queries and proplist of a `print`/`listen`.
    pub(crate) fn print_filter(req: &Request) -> Result<(Vec<Query>, Option<Vec<String>>), Trap> {
        let queries = req
            .queries
            .iter()
            .map(|q| Query::parse(q).map_err(|e| Trap::cat(e, 1)))
            .collect::<Result<Vec<_>, _>>()?;
        for (k, _) in &req.attributes {
            if !PRINT_OPTIONS.contains(&k.as_str()) {
                return Err(Trap::cat(format!("unknown parameter {k}"), 1));
            }
        }
        let proplist = req.get(".proplist").map(|p| {
            p.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        });
        Ok((queries, proplist))
    }

    /// Whether a printed item matches the queries.
    pub(crate) fn row_matches(row: &[(String, String)], queries: &[Query]) -> bool {
        query::matches(queries, &|n| {
            row.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str())
        })
    }

    /// Keeps only the listed properties.
    pub(crate) fn project(
        row: Vec<(String, String)>,
        proplist: &Option<Vec<String>>,
    ) -> Vec<(String, String)> {
        match proplist {
            None => row,
            Some(props) => row
                .into_iter()
                .filter(|(k, _)| props.iter().any(|p| p == k))
                .collect(),
        }
    }

    fn print(&self, spec: &MenuSpec, req: &Request) -> Result<Vec<Reply>, Trap> {
        let (queries, proplist) = Self::print_filter(req)?;
        let table = self.table(spec.path).ok_or_else(no_such_item)?;
        let now = self.now();
        // Each property a query reads is computed once per item, not once per query word.
        let names: Vec<(&str, Option<&Field>)> = query::names(&queries)
            .into_iter()
            .map(|n| (n, spec.field(n)))
            .collect();
        let matching = table.rows.values().filter(|r| {
            let values: Vec<(&str, Option<Cow<'_, str>>)> = names
                .iter()
                .map(|(n, field)| (*n, self.value_of(spec, r, n, *field, now)))
                .collect();
            query::matches(&queries, &|n| {
                values
                    .iter()
                    .find(|(k, _)| *k == n)
                    .and_then(|(_, v)| v.as_deref())
            })
        });
        if req.get("count-only").is_some() {
            return Ok(vec![Reply::done().attr("ret", matching.count().to_string())]);
        }
        let mut out: Vec<Reply> = matching
            .map(|r| Reply::re(self.render_only(spec, r, proplist.as_deref(), now)))
            .collect();
        if out.is_empty() && self.settings.empty_replies {
            out.push(Reply::new(crate::proto::ReplyKind::Empty));
        }
        out.push(Reply::done());
        Ok(out)
    }

    /// Validates and normalises a value for `field`.
    fn validate(&self, spec: &MenuSpec, name: &str, value: &str) -> Result<String, Trap> {
        let field = spec
            .field(name)
            .filter(|f| f.kind != Kind::ReadOnly)
            .ok_or_else(|| Trap::cat(format!("unknown parameter {name}"), 1))?;
        let ok = |v: String| Ok(v);
        match field.kind {
            Kind::Text if spec.path == "/system/clock" && name == "time-zone-name" => {
                if value == "manual" || value.parse::<chrono_tz::Tz>().is_ok() {
                    ok(value.to_owned())
                } else {
                    Err(Trap::cat(format!("input does not match any value of {name}"), 1))
                }
            }
            Kind::Text => ok(value.to_owned()),
            Kind::Bool => match value {
                "true" | "yes" => ok("true".into()),
                "false" | "no" => ok("false".into()),
                _ => Err(invalid_value(name)),
            },
            Kind::Time => duration::parse(value)
                .map(duration::format)
                .ok_or_else(|| Trap::cat(format!("invalid time value for argument {name}"), 1)),
            Kind::Int => value
                .parse::<u64>()
                .map(|n| n.to_string())
                .map_err(|_| invalid_value(name)),
            Kind::Mac => normalize_mac(value).ok_or_else(|| invalid_value(name)),
            Kind::Ip => value
                .parse::<Ipv4Addr>()
                .map(|a| a.to_string())
                .map_err(|_| invalid_value(name)),
            Kind::ListAddress => normalize_list_address(value).ok_or_else(|| invalid_value(name)),
            Kind::Targets => normalize_targets(value).ok_or_else(|| invalid_value(name)),
            Kind::Rate => normalize_rate(value).ok_or_else(|| invalid_value(name)),
            Kind::Enum(words) => {
                if words.contains(&value) {
                    ok(value.to_owned())
                } else {
                    Err(Trap::cat(format!("input does not match any value of {name}"), 1))
                }
            }
            Kind::Ref(menu) => {
                if self.find_by(menu, "name", value).is_empty() {
                    Err(Trap::cat(format!("input does not match any value of {name}"), 1))
                } else {
                    ok(value.to_owned())
                }
            }
            Kind::HotspotServer => {
                if value == "all" || !self.find_by("/ip/hotspot", "name", value).is_empty() {
                    ok(value.to_owned())
                } else {
                    Err(Trap::cat(format!("input does not match any value of {name}"), 1))
                }
            }
            Kind::ReadOnly => Err(Trap::cat(format!("unknown parameter {name}"), 1)),
        }
    }

    /// Checks the uniqueness rules of a menu for an item with `fields` (excluding item `except`).
    fn check_unique(
        &self,
        spec: &MenuSpec,
        fields: &BTreeMap<String, String>,
        except: Option<u64>,
    ) -> Result<(), Trap> {
        let Some(table) = self.table(spec.path) else {
            return Ok(());
        };
        let same = |r: &Row, k: &str| r.get(k) == fields.get(k).map(String::as_str);
        let server = |v: Option<&str>| v.unwrap_or("all").to_owned();
        // (the properties that must differ, the trap when they do not)
        let (clash, message): (&dyn Fn(&Row) -> bool, &str) = match spec.path {
            "/ip/hotspot/user" => (
                &|r: &Row| {
                    same(r, "name")
                        && server(r.get("server")) == server(fields.get("server").map(String::as_str))
                },
                "failure: already have user with this name for this server",
            ),
            "/ppp/secret" => (
                &|r: &Row| same(r, "name"),
                "failure: secret with the same name already exists",
            ),
            "/ip/firewall/address-list" => (
                &|r: &Row| same(r, "list") && same(r, "address"),
                "failure: already have such entry",
            ),
            "/queue/simple" => (
                &|r: &Row| same(r, "name"),
                "failure: already have queue with such name",
            ),
            "/ip/hotspot/user/profile" | "/ppp/profile" | "/ip/hotspot" => {
                (&|r: &Row| same(r, "name"), "failure: already have such name")
            }
            _ => return Ok(()),
        };
        if table.rows.values().any(|r| Some(r.id) != except && clash(r)) {
            return Err(Trap::new(message));
        }
        Ok(())
    }

    fn add(&mut self, spec: &'static MenuSpec, attrs: &[(String, String)]) -> Result<String, Trap> {
        if !spec.has_command("add") {
            return Err(Trap::cat("no such command or directory (add)", 0));
        }
        let mut fields = BTreeMap::new();
        let mut timeout = None;
        for (k, v) in attrs {
            let value = self.validate(spec, k, v)?;
            if spec.path == "/ip/firewall/address-list" && k == "timeout" {
                timeout = duration::parse(&value);
                continue;
            }
            fields.insert(k.clone(), value);
        }
        let missing: Vec<&str> = spec
            .required
            .iter()
            .copied()
            .filter(|r| !fields.contains_key(*r))
            .collect();
        if spec.path == "/queue/simple" && !fields.contains_key("name") {
            let mut n = 1;
            while !self.find_by(spec.path, "name", &format!("queue{n}")).is_empty() {
                n += 1;
            }
            fields.insert("name".into(), format!("queue{n}"));
        }
        if !missing.is_empty() {
            return Err(Trap::cat(
                format!("missing value(s) of argument(s) {}", missing.join(", ")),
                1,
            ));
        }
        self.check_unique(spec, &fields, None)?;
        let now = self.now();
        let mut expires = None;
        if spec.path == "/ip/firewall/address-list" {
            fields.insert(
                "creation-time".into(),
                now.format("%Y-%m-%d %H:%M:%S").to_string(),
            );
            expires = timeout.filter(|t| !t.is_zero()).map(|t| now + to_chrono(t));
        }
        let id = self.insert(spec.path, fields, Some(now), expires);
        Ok(format!("*{id:X}"))
    }

    /// The items named by `.id` / `numbers` (comma-separated ids, or names where allowed).
    fn targets(&self, spec: &MenuSpec, req: &Request) -> Result<Vec<u64>, Trap> {
        let raw = req
            .get(".id")
            .or_else(|| req.get("numbers"))
            .ok_or_else(|| Trap::cat("missing value(s) of argument(s) numbers", 1))?;
        let table = self.table(spec.path).ok_or_else(no_such_item)?;
        let mut ids = Vec::new();
        for part in raw.split(',').map(str::trim) {
            let by_id = part
                .strip_prefix('*')
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .filter(|id| table.rows.contains_key(id));
            let id = match by_id {
                Some(id) => id,
                None if spec.named() => *self
                    .find_by(spec.path, "name", part)
                    .first()
                    .ok_or_else(no_such_item)?,
                None => return Err(no_such_item()),
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    fn set(&mut self, spec: &'static MenuSpec, req: &Request) -> Result<(), Trap> {
        if !spec.has_command("set") {
            return Err(Trap::cat("no such command or directory (set)", 0));
        }
        let ids = if spec.singleton {
            self.table(spec.path)
                .map(|t| t.rows.keys().copied().collect())
                .unwrap_or_default()
        } else {
            self.targets(spec, req)?
        };
        let mut changes = BTreeMap::new();
        let mut timeout: Option<Option<Duration>> = None;
        for (k, v) in &req.attributes {
            if k == ".id" || k == "numbers" {
                continue;
            }
            let value = self.validate(spec, k, v)?;
            if spec.path == "/ip/firewall/address-list" && k == "timeout" {
                timeout = Some(duration::parse(&value));
                continue;
            }
            changes.insert(k.clone(), value);
        }
        for &id in &ids {
            let Some(row) = self.table(spec.path).and_then(|t| t.rows.get(&id)) else {
                return Err(no_such_item());
            };
            let mut merged = row.fields.clone();
            merged.extend(changes.clone());
            self.check_unique(spec, &merged, Some(id))?;
        }
        let now = self.now();
        let mut renamed_users = Vec::new();
        for &id in &ids {
            if let Some(row) = self.table_mut(spec.path).and_then(|t| t.rows.get_mut(&id)) {
                if spec.path == "/ip/hotspot/user" {
                    if let (Some(old), Some(new)) = (row.get("name"), changes.get("name")) {
                        if old != new {
                            renamed_users.push(old.to_owned());
                        }
                    }
                }
                row.fields.extend(changes.clone());
                if let Some(t) = timeout {
                    row.expires = t.filter(|t| !t.is_zero()).map(|t| now + to_chrono(t));
                }
            }
            self.notify(spec.path, id);
        }
        if spec.path == "/system/identity" {
            if let Some(name) = changes.get("name") {
                self.settings.identity = name.clone();
            }
        }
        if spec.path == "/ip/hotspot/user" {
            // A changed limit-uptime may end sessions now; disabling through `set` ends them too.
            for &id in &ids {
                if self.row_field(spec.path, id, "disabled").as_deref() == Some("true") {
                    self.end_user_sessions(id, "user-disabled");
                }
            }
            for old in renamed_users {
                for sid in self.find_by("/ip/hotspot/active", "user", &old) {
                    self.end_hotspot_session(sid, "user-removed");
                }
            }
            self.tick();
        }
        Ok(())
    }

    fn row_field(&self, menu: &str, id: u64, name: &str) -> Option<String> {
        self.table(menu)?.rows.get(&id)?.get(name).map(str::to_owned)
    }

    fn unset(&mut self, spec: &'static MenuSpec, req: &Request) -> Result<(), Trap> {
        if !spec.has_command("unset") {
            return Err(Trap::cat("no such command or directory (unset)", 0));
        }
        let ids = self.targets(spec, req)?;
        let names: Vec<String> = req
            .get("value-name")
            .ok_or_else(|| Trap::cat("missing value(s) of argument(s) value-name", 1))?
            .split(',')
            .map(str::to_owned)
            .collect();
        for n in &names {
            if spec
                .field(n)
                .is_none_or(|f| f.kind == Kind::ReadOnly || spec.required.contains(&f.name))
            {
                return Err(Trap::cat(format!("unknown parameter {n}"), 1));
            }
        }
        for &id in &ids {
            if let Some(row) = self.table_mut(spec.path).and_then(|t| t.rows.get_mut(&id)) {
                for n in &names {
                    row.fields.remove(n);
                    if n == "timeout" {
                        row.expires = None;
                    }
                }
            }
            self.notify(spec.path, id);
        }
        Ok(())
    }

    fn end_user_sessions(&mut self, user_id: u64, reason: &str) {
        let Some(name) = self.row_field("/ip/hotspot/user", user_id, "name") else {
            return;
        };
        for sid in self.find_by("/ip/hotspot/active", "user", &name) {
            self.end_hotspot_session(sid, reason);
        }
    }

    fn remove(&mut self, spec: &'static MenuSpec, req: &Request) -> Result<(), Trap> {
        if !spec.has_command("remove") {
            return Err(Trap::cat("no such command or directory (remove)", 0));
        }
        let ids = self.targets(spec, req)?;
        for id in ids {
            match spec.path {
                "/ip/hotspot/active" => {
                    self.end_hotspot_session(id, "api");
                }
                "/ip/hotspot/user" => {
                    self.end_user_sessions(id, "user-removed");
                    self.remove_row(spec.path, id, "api");
                }
                "/ip/hotspot/host" => {
                    if let Some(mac) = self.row_field(spec.path, id, "mac-address") {
                        for sid in self.find_by("/ip/hotspot/active", "mac-address", &mac) {
                            self.end_hotspot_session(sid, "host-removed");
                        }
                    }
                    self.remove_row(spec.path, id, "api");
                }
                _ => {
                    // A removed PPP secret keeps its live session, as on a real router.
                    self.remove_row(spec.path, id, "api");
                }
            }
        }
        Ok(())
    }

    fn toggle(&mut self, spec: &'static MenuSpec, req: &Request, disable: bool) -> Result<(), Trap> {
        let cmd = if disable { "disable" } else { "enable" };
        if !spec.has_command(cmd) {
            return Err(Trap::cat(format!("no such command or directory ({cmd})"), 0));
        }
        let ids = self.targets(spec, req)?;
        for &id in &ids {
            if let Some(row) = self.table_mut(spec.path).and_then(|t| t.rows.get_mut(&id)) {
                row.fields.insert("disabled".into(), disable.to_string());
            }
            self.notify(spec.path, id);
            if disable && spec.path == "/ip/hotspot/user" {
                self.end_user_sessions(id, "user-disabled");
            }
        }
        Ok(())
    }

    /// Adds an item as an operator would (control handle): same validation as `add`.
    pub(crate) fn add_row(&mut self, menu: &str, attrs: &[(&str, &str)]) -> Result<String, Trap> {
        let spec = menus::menu(menu).ok_or_else(|| Trap::cat(format!("no such menu {menu}"), 0))?;
        let attrs: Vec<(String, String)> = attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.add(spec, &attrs)
    }

    /// Logs out hotspot sessions by id (`*1`) or user name; returns how many ended.
    pub(crate) fn hotspot_logout(&mut self, id_or_user: &str) -> usize {
        let mut ids = self.find_by("/ip/hotspot/active", "user", id_or_user);
        if let Some(id) = id_or_user
            .strip_prefix('*')
            .and_then(|h| u64::from_str_radix(h, 16).ok())
        {
            if self
                .table("/ip/hotspot/active")
                .is_some_and(|t| t.rows.contains_key(&id))
            {
                ids.push(id);
            }
        }
        ids.into_iter()
            .filter(|&id| self.end_hotspot_session(id, "logout"))
            .count()
    }

    /// Ends PPP sessions by id or name; returns how many ended.
    pub(crate) fn ppp_logout(&mut self, id_or_name: &str) -> usize {
        let mut ids = self.find_by("/ppp/active", "name", id_or_name);
        if let Some(id) = id_or_name
            .strip_prefix('*')
            .and_then(|h| u64::from_str_radix(h, 16).ok())
        {
            if self
                .table("/ppp/active")
                .is_some_and(|t| t.rows.contains_key(&id))
            {
                ids.push(id);
            }
        }
        ids.into_iter()
            .filter(|&id| self.remove_row("/ppp/active", id, "logout").is_some())
            .count()
    }
}

/// Splits `/menu/path/command` and finds the menu, with the router's trap texts for unknown
/// paths.
pub(crate) fn resolve(command: &str) -> Result<(&'static MenuSpec, &str), Trap> {
    let (path, cmd) = command.rsplit_once('/').unwrap_or(("", command));
    if let Some(spec) = menus::menu(path) {
        if spec.has_command(cmd) {
            return Ok((spec, cmd));
        }
        return Err(Trap::cat(format!("no such command or directory ({cmd})"), 0));
    }
    if menus::is_dir(command) {
        return Err(Trap::cat("no such command prefix", 0));
    }
    // The first segment that is not a known directory.
    let mut prefix = String::new();
    for seg in command.split('/').filter(|s| !s.is_empty()) {
        prefix.push('/');
        prefix.push_str(seg);
        if !menus::is_dir(&prefix) {
            return Err(Trap::cat(format!("no such command or directory ({seg})"), 0));
        }
    }
    Err(Trap::cat("no such command prefix", 0))
}

/// `aa:bb:cc:dd:ee:ff` (also with `-`) in upper case with `:`.
pub(crate) fn normalize_mac(raw: &str) -> Option<String> {
    let parts: Vec<&str> = raw.split([':', '-']).collect();
    if parts.len() != 6
        || !parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return None;
    }
    Some(parts.join(":").to_ascii_uppercase())
}

fn parse_prefix(raw: &str) -> Option<(Ipv4Addr, u8)> {
    match raw.split_once('/') {
        Some((a, p)) => {
            let len: u8 = p.parse().ok().filter(|l| *l <= 32)?;
            Some((a.parse().ok()?, len))
        }
        None => Some((raw.parse().ok()?, 32)),
    }
}

fn normalize_list_address(raw: &str) -> Option<String> {
    if let Some((a, b)) = raw.split_once('-') {
        let (a, b): (Ipv4Addr, Ipv4Addr) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        return (a <= b).then(|| format!("{a}-{b}"));
    }
    if let Some((a, len)) = parse_prefix(raw) {
        return Some(if len == 32 {
            a.to_string()
        } else {
            format!("{a}/{len}")
        });
    }
    // A DNS name (RouterOS 7 resolves it).
    let dns = raw.len() <= 253
        && raw.contains('.')
        && raw.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && raw.bytes().any(|b| b.is_ascii_alphabetic());
    dns.then(|| raw.to_ascii_lowercase())
}

fn normalize_targets(raw: &str) -> Option<String> {
    let mut out = Vec::new();
    for part in raw.split(',') {
        let (a, len) = parse_prefix(part.trim())?;
        out.push(format!("{a}/{len}"));
    }
    (!out.is_empty()).then(|| out.join(","))
}

fn parse_rate(raw: &str) -> Option<u64> {
    let (num, mult) = match raw.as_bytes().last()? {
        b'k' | b'K' => (&raw[..raw.len() - 1], 1_000u64),
        b'M' => (&raw[..raw.len() - 1], 1_000_000),
        b'G' => (&raw[..raw.len() - 1], 1_000_000_000),
        _ => (raw, 1),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) || num.len() > 12 {
        return None;
    }
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn normalize_rate(raw: &str) -> Option<String> {
    let (up, down) = raw.split_once('/').unwrap_or((raw, raw));
    Some(format!("{}/{}", parse_rate(up)?, parse_rate(down)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> RouterState {
        RouterState::new(
            RouterSettings {
                version: "7.18.2 (stable)".into(),
                identity: "sim".into(),
                empty_replies: true,
            },
            Utc::now(),
        )
    }

    fn req(cmd: &str, attrs: &[(&str, &str)]) -> Request {
        attrs.iter().fold(Request::new(cmd), |r, (k, v)| r.attr(*k, *v))
    }

    #[test]
    fn ids_are_never_reused() {
        let mut s = state();
        let a = s.add_row("/ppp/secret", &[("name", "a")]).unwrap();
        s.execute(&req("/ppp/secret/remove", &[(".id", &a)])).unwrap();
        let b = s.add_row("/ppp/secret", &[("name", "a")]).unwrap();
        assert_ne!(a, b);
        assert_eq!(a, "*1");
        assert_eq!(b, "*2");
    }

    #[test]
    fn validation_traps() {
        let mut s = state();
        let e = s
            .execute(&req(
                "/ip/hotspot/user/add",
                &[("name", "u"), ("limit-uptime", "")],
            ))
            .unwrap_err();
        assert_eq!(e.message, "invalid time value for argument limit-uptime");
        let e = s
            .execute(&req(
                "/ppp/secret/add",
                &[("name", "u"), ("remote-address", "10.0.0.300")],
            ))
            .unwrap_err();
        assert_eq!(e.message, "invalid value for argument remote-address");
        let e = s
            .execute(&req("/ppp/secret/add", &[("name", "u"), ("profile", "gold")]))
            .unwrap_err();
        assert_eq!(e.message, "input does not match any value of profile");
        assert_eq!(e.category, Some(1));
        let e = s.execute(&req("/ip/xyz/print", &[])).unwrap_err();
        assert_eq!(e.message, "no such command or directory (xyz)");
        assert_eq!(e.category, Some(0));
        let e = s.execute(&req("/ip/hotspot/active/add", &[])).unwrap_err();
        assert_eq!(e.message, "no such command or directory (add)");
    }

    #[test]
    fn normalisations() {
        assert_eq!(normalize_rate("10M/20M").as_deref(), Some("10000000/20000000"));
        assert_eq!(normalize_rate("512k").as_deref(), Some("512000/512000"));
        assert_eq!(normalize_rate("x/1"), None);
        assert_eq!(normalize_targets("10.0.0.2").as_deref(), Some("10.0.0.2/32"));
        assert_eq!(normalize_list_address("10.0.0.2/32").as_deref(), Some("10.0.0.2"));
        assert_eq!(
            normalize_list_address("10.0.0.0/24").as_deref(),
            Some("10.0.0.0/24")
        );
        assert_eq!(
            normalize_list_address("example.com").as_deref(),
            Some("example.com")
        );
        assert_eq!(normalize_list_address("not an address"), None);
        assert_eq!(
            normalize_mac("aa-bb-cc-dd-ee-ff").as_deref(),
            Some("AA:BB:CC:DD:EE:FF")
        );
    }

    #[test]
    fn limit_uptime_ends_session_on_sim_clock() {
        let mut s = state();
        s.add_row(
            "/ip/hotspot/user",
            &[("name", "alice"), ("password", "pw"), ("limit-uptime", "1h")],
        )
        .unwrap();
        s.hotspot_login("alice", Some("pw"), "aa:bb:cc:dd:ee:01", "10.5.50.2", "http-pap")
            .unwrap();
        assert_eq!(s.rows("/ip/hotspot/active").len(), 1);
        let later = s.now() + chrono::Duration::minutes(61);
        s.set_clock(later);
        assert!(s.rows("/ip/hotspot/active").is_empty());
        assert_eq!(s.removals.last().unwrap().reason, "limit-uptime");
        let user = &s.rows("/ip/hotspot/user")[0];
        assert_eq!(user["uptime"], "1h1m");
        let host = &s.rows("/ip/hotspot/host")[0];
        assert_eq!(host["authorized"], "false");
        let e = s
            .hotspot_login("alice", Some("pw"), "aa:bb:cc:dd:ee:01", "10.5.50.2", "http-pap")
            .unwrap_err();
        assert_eq!(e.message, "user alice has reached uptime limit");
    }

    #[test]
    fn tick_rests_until_the_earliest_timed_end_and_rescans_after_a_change() {
        let mut s = state();
        s.add_row(
            "/ip/hotspot/user",
            &[("name", "alice"), ("password", "pw"), ("limit-uptime", "1h")],
        )
        .unwrap();
        s.hotspot_login("alice", Some("pw"), "aa:bb:cc:dd:ee:01", "10.5.50.2", "http-pap")
            .unwrap();
        assert_eq!(s.quiet_until, None, "a change makes the next tick scan");
        s.tick();
        let started = s
            .table("/ip/hotspot/active")
            .unwrap()
            .rows
            .values()
            .next()
            .unwrap()
            .started
            .unwrap();
        assert_eq!(s.quiet_until, Some(started + chrono::Duration::hours(1)));

        let before = s.now();
        s.add_row(
            "/ip/firewall/address-list",
            &[("list", "blocked"), ("address", "10.0.0.1"), ("timeout", "10m")],
        )
        .unwrap();
        let after = s.now();
        assert_eq!(s.quiet_until, None);
        s.tick();
        let quiet = s.quiet_until.unwrap();
        let ten = chrono::Duration::minutes(10);
        assert!(
            quiet >= before + ten && quiet <= after + ten,
            "the entry's timeout comes first"
        );

        // Past the quiet instant the entry goes, and the session is still there.
        s.set_clock(quiet);
        assert!(s.rows("/ip/firewall/address-list").is_empty());
        assert_eq!(s.rows("/ip/hotspot/active").len(), 1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, ..Default::default() })]

        /// Any sequence of requests, with odd values, never panics; ids stay unique and growing.
        #[test]
        fn random_requests_never_panic(
            ops in proptest::collection::vec(
                (
                    proptest::sample::select(menus::MENUS.iter().map(|m| m.path).collect::<Vec<_>>()),
                    proptest::sample::select(vec!["print", "add", "set", "remove", "disable", "enable", "unset", "login", "listen", "bogus"]),
                    proptest::collection::vec(
                        (
                            proptest::sample::select(vec![
                                "name", ".id", "numbers", "limit-uptime", "mac-address", "address", "target",
                                "max-limit", "list", "timeout", "type", "profile", "server", "disabled",
                                "value-name", "user", "password", "ip", "count-only", ".proplist", "remote-address",
                            ]),
                            proptest::prop_oneof![
                                proptest::strategy::Just("*1".to_owned()),
                                proptest::strategy::Just("10.0.0.1".to_owned()),
                                proptest::strategy::Just("1h".to_owned()),
                                "[ -~]{0,12}",
                                proptest::prelude::any::<String>(),
                            ],
                        ),
                        0..5,
                    ),
                    proptest::collection::vec("[ -~]{0,10}", 0..3),
                ),
                1..40,
            ),
            advance in 0u64..100_000,
        ) {
            let mut s = state();
            for (menu, cmd, attrs, queries) in ops {
                let mut r = Request::new(format!("{menu}/{cmd}"));
                for (k, v) in attrs {
                    r = r.attr(k, v);
                }
                for q in queries {
                    r = r.query(q);
                }
                let _ = s.execute(&r);
                let _ = s.hotspot_login("u", None, "AA:BB:CC:DD:EE:01", "10.0.0.9", "x");
                let t = s.now() + chrono::Duration::seconds(i64::try_from(advance).unwrap_or(0));
                s.set_clock(t);
            }
            for table in s.tables.values() {
                let ids: Vec<u64> = table.rows.keys().copied().collect();
                proptest::prop_assert!(ids.iter().all(|id| *id < table.next_id));
            }
        }
    }
}
