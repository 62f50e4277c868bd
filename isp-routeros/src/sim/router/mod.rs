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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use super::menus::{self, MenuSpec};
use super::query;
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

/// Stored properties every table indexes by value: the ones items are looked up by (`find_by`,
/// uniqueness, `print` equality queries), so that a lookup does not scan every item.
const INDEXED: [&str; 4] = ["name", "user", "mac-address", "address"];

/// The ids of the items with one indexed value, in id order; mostly one.
#[derive(Debug, Clone)]
enum Ids {
    One(u64),
    Many(Vec<u64>),
}

impl Ids {
    fn add(&mut self, id: u64) {
        match self {
            Ids::One(first) if *first == id => {}
            Ids::One(first) => {
                let mut ids = vec![*first, id];
                ids.sort_unstable();
                *self = Ids::Many(ids);
            }
            Ids::Many(ids) => {
                if let Err(at) = ids.binary_search(&id) {
                    ids.insert(at, id);
                }
            }
        }
    }

    /// Removes `id`; true when none is left.
    fn remove(&mut self, id: u64) -> bool {
        match self {
            Ids::One(first) => *first == id,
            Ids::Many(ids) => {
                if let Ok(at) = ids.binary_search(&id) {
                    ids.remove(at);
                }
                match ids[..] {
                    [] => true,
                    [only] => {
                        *self = Ids::One(only);
                        false
                    }
                    _ => false,
                }
            }
        }
    }

    fn as_slice(&self) -> &[u64] {
        match self {
            Ids::One(id) => std::slice::from_ref(id),
            Ids::Many(ids) => ids,
        }
    }
}

/// What an item is indexed under: its indexed values (as equality keys) and its expiry.
type IndexedValues = ([Option<String>; INDEXED.len()], Option<DateTime<Utc>>);

/// One menu's items; ids grow and are never reused.
///
/// `rows` is read freely; it changes only through [`Table::put`], [`Table::take`],
/// [`Table::update`] and [`Table::replace`], which keep the indexes.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) spec: &'static MenuSpec,
    next_id: u64,
    pub(crate) rows: BTreeMap<u64, Row>,
    /// For each of [`INDEXED`]: ids by the value's equality key (`query::equality_key`).
    index: [HashMap<String, Ids>; INDEXED.len()],
    /// Items that go away at a time (address-list timeouts, cookies), by that time.
    pub(crate) expiring: BTreeSet<(DateTime<Utc>, u64)>,
    /// Changes [`RouterState::tick`] has not looked at yet (hotspot users and sessions only):
    /// changed ids, and the `name` values they had before and after.
    track: bool,
    touched_ids: Vec<u64>,
    touched_names: Vec<String>,
}

impl Table {
    fn new(spec: &'static MenuSpec) -> Self {
        Self {
            spec,
            next_id: 1,
            rows: BTreeMap::new(),
            index: Default::default(),
            expiring: BTreeSet::new(),
            track: matches!(spec.path, "/ip/hotspot/user" | "/ip/hotspot/active"),
            touched_ids: Vec::new(),
            touched_names: Vec::new(),
        }
    }

    fn indexed(row: &Row) -> IndexedValues {
        let values = INDEXED.map(|f| row.get(f).map(|v| query::equality_key(v).into_owned()));
        (values, row.expires)
    }

    fn unindex(&mut self, id: u64, (values, expires): &IndexedValues) {
        for (map, value) in self.index.iter_mut().zip(values) {
            if let Some(v) = value {
                if map.get_mut(v).is_some_and(|ids| ids.remove(id)) {
                    map.remove(v);
                }
            }
        }
        if let Some(e) = expires {
            self.expiring.remove(&(*e, id));
        }
    }

    fn reindex(&mut self, id: u64, (values, expires): IndexedValues) {
        for (map, value) in self.index.iter_mut().zip(values) {
            if let Some(v) = value {
                match map.get_mut(&v) {
                    Some(ids) => ids.add(id),
                    None => {
                        map.insert(v, Ids::One(id));
                    }
                }
            }
        }
        if let Some(e) = expires {
            self.expiring.insert((e, id));
        }
    }

    fn touch(&mut self, id: u64, name: Option<&str>) {
        if self.track {
            self.touched_ids.push(id);
            if let Some(n) = name {
                self.touched_names.push(n.to_owned());
            }
        }
    }

    /// Stores a new item under the next id.
    fn put(
        &mut self,
        fields: BTreeMap<String, String>,
        started: Option<DateTime<Utc>>,
        expires: Option<DateTime<Utc>>,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let row = Row {
            id,
            fields,
            started,
            expires,
            used: Duration::ZERO,
        };
        self.reindex(id, Self::indexed(&row));
        self.touch(id, row.get("name"));
        self.rows.insert(id, row);
        id
    }

    fn take(&mut self, id: u64) -> Option<Row> {
        let row = self.rows.remove(&id)?;
        self.unindex(id, &Self::indexed(&row));
        self.touch(id, row.get("name"));
        Some(row)
    }

    /// Changes an item in place, keeping the indexes.
    pub(crate) fn update<R>(&mut self, id: u64, change: impl FnOnce(&mut Row) -> R) -> Option<R> {
        let row = self.rows.get_mut(&id)?;
        let before = Self::indexed(row);
        let name_before = row.get("name").map(str::to_owned);
        let out = change(row);
        let after = Self::indexed(row);
        let name_after = row.get("name").map(str::to_owned);
        if before != after {
            self.unindex(id, &before);
            self.reindex(id, after);
        }
        self.touch(id, name_before.as_deref());
        if name_after != name_before {
            self.touch(id, name_after.as_deref());
        }
        Some(out)
    }

    /// Replaces every item (a restored configuration).
    fn replace(&mut self, rows: BTreeMap<u64, Row>) {
        for id in self.rows.keys().copied().collect::<Vec<_>>() {
            self.take(id);
        }
        for (id, row) in rows {
            self.reindex(id, Self::indexed(&row));
            self.touch(id, row.get("name"));
            self.rows.insert(id, row);
        }
    }

    /// The ids (in order) whose `field` is exactly `value`.
    pub(crate) fn find(&self, field: &str, value: &str) -> Vec<u64> {
        match self.lookup(field, value) {
            Some(ids) => ids
                .iter()
                .copied()
                .filter(|id| self.rows.get(id).and_then(|r| r.get(field)) == Some(value))
                .collect(),
            None => self
                .rows
                .values()
                .filter(|r| r.get(field) == Some(value))
                .map(|r| r.id)
                .collect(),
        }
    }

    /// The ids whose `field` may equal `value` by the query rules (more may be given), or
    /// `None` when `field` is not indexed.
    fn lookup(&self, field: &str, value: &str) -> Option<&[u64]> {
        let at = INDEXED.iter().position(|f| *f == field)?;
        Some(
            self.index[at]
                .get(query::equality_key(value).as_ref())
                .map_or(&[][..], Ids::as_slice),
        )
    }

    /// For a `print` query word `field=value`: the ids that may match, or `None` when the index
    /// cannot tell (a field the menu prints a default or a computed value for).
    pub(crate) fn query_lookup(&self, field: &str, value: &str) -> Option<query::IdSet> {
        if field == ".id" {
            let id = value
                .strip_prefix('*')
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .filter(|id| !self.spec.singleton && format!("*{id:X}") == value);
            return Some(id.into_iter().collect());
        }
        if self.spec.field(field).is_some_and(|f| f.default.is_some()) {
            return None;
        }
        self.lookup(field, value).map(|ids| ids.iter().copied().collect())
    }

    /// Takes the changes [`RouterState::tick`] has not seen: ids, and `name` values.
    fn drain_touched(&mut self) -> (Vec<u64>, Vec<String>) {
        (
            std::mem::take(&mut self.touched_ids),
            std::mem::take(&mut self.touched_names),
        )
    }
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
    /// Hotspot sessions by the instant they reach their user's limit-uptime (router clock),
    /// kept up to date by [`tick`](Self::tick) from the tables' changes.
    session_ends: BTreeSet<(DateTime<Utc>, u64)>,
    /// The same, by session.
    session_end_of: HashMap<u64, DateTime<Utc>>,
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
            session_ends: BTreeSet::new(),
            session_end_of: HashMap::new(),
            radius: crate::sim::radius::RadiusState::default(),
        };
        for spec in menus::MENUS {
            state.tables.insert(spec.path, Table::new(spec));
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
        let id = table.put(fields, started, expires);
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
        let row = self.table_mut(menu)?.take(id)?;
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
        self.table(menu).map(|t| t.find(field, value)).unwrap_or_default()
    }

    fn user_row(&self, name: &str) -> Option<&Row> {
        let users = self.table("/ip/hotspot/user")?;
        users.find("name", name).first().and_then(|id| users.rows.get(id))
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
