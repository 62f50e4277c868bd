//! The simulated router's state: tables, clock and the commands that change them.
//!
//! Everything here is synchronous and runs under one lock; the network side
//! (`server.rs`) turns requests into calls of [`RouterState::execute`].
//!
//! This file holds the state and its storage primitives; `dispatch` routes a request to
//! its command, `commands` has the generic menu commands, `values` the value rules,
//! `computed` how items print, and `sessions` logins, logouts and the passage of time.

mod commands;
mod computed;
mod dispatch;
mod reboot;
mod sessions;
mod values;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use super::menus::{self, MenuSpec};
use crate::proto::Reply;

pub(crate) use dispatch::resolve;
pub use reboot::SavedConfig;

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
    /// Session-Timeouts and accounting of RADIUS logins.
    pub(crate) radius: crate::sim::radius::RadiusState,
}

/// The menus whose items [`RouterState::tick`] ends with time.
const TIMED_MENUS: [&str; 4] = [
    "/ip/hotspot/user",
    "/ip/hotspot/active",
    "/ip/firewall/address-list",
    "/ip/hotspot/cookie",
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
            radius: crate::sim::radius::RadiusState::default(),
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

    fn row_field(&self, menu: &str, id: u64, name: &str) -> Option<String> {
        self.table(menu)?.rows.get(&id)?.get(name).map(str::to_owned)
    }
}

#[cfg(test)]
mod tests;
