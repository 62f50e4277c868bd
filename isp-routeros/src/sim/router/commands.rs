//! The generic menu commands: `print`, `add`, `set`, `unset`, `remove`, `disable`/`enable`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use super::{no_such_item, to_chrono, RouterState, Row, Trap};
use crate::proto::{Reply, Request};
use crate::sim::duration;
use crate::sim::menus::{Field, Kind, MenuSpec};
use crate::sim::query::{self, Query};

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

    pub(super) fn print(&self, spec: &MenuSpec, req: &Request) -> Result<Vec<Reply>, Trap> {
        let (queries, proplist) = Self::print_filter(req)?;
        let table = self.table(spec.path).ok_or_else(no_such_item)?;
        let now = self.now();
        // Each property a query reads is computed once per item, not once per query word.
        let names: Vec<(&str, Option<&Field>)> = query::names(&queries)
            .into_iter()
            .map(|n| (n, spec.field(n)))
            .collect();
        // Only the items an index says can match, when it can tell (in id order either way).
        let narrowed = query::candidates(&queries, &|n, v| table.query_lookup(n, v));
        let rows: Box<dyn Iterator<Item = &Row>> = match &narrowed {
            Some(ids) => Box::new(ids.iter().filter_map(|id| table.rows.get(id))),
            None => Box::new(table.rows.values()),
        };
        let matching = rows.filter(|r| {
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

    pub(super) fn add(
        &mut self,
        spec: &'static MenuSpec,
        attrs: &[(String, String)],
    ) -> Result<String, Trap> {
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

    pub(super) fn set(&mut self, spec: &'static MenuSpec, req: &Request) -> Result<(), Trap> {
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
            let renamed = self.table_mut(spec.path).and_then(|t| {
                t.update(id, |row| {
                    let old = row
                        .get("name")
                        .filter(|old| changes.get("name").is_some_and(|new| new != old))
                        .map(str::to_owned);
                    row.fields.extend(changes.clone());
                    if let Some(t) = timeout {
                        row.expires = t.filter(|t| !t.is_zero()).map(|t| now + to_chrono(t));
                    }
                    old
                })
            });
            if spec.path == "/ip/hotspot/user" {
                renamed_users.extend(renamed.flatten());
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

    pub(super) fn unset(&mut self, spec: &'static MenuSpec, req: &Request) -> Result<(), Trap> {
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
            if let Some(t) = self.table_mut(spec.path) {
                t.update(id, |row| {
                    for n in &names {
                        row.fields.remove(n);
                        if n == "timeout" {
                            row.expires = None;
                        }
                    }
                });
            }
            self.notify(spec.path, id);
        }
        Ok(())
    }

    pub(super) fn remove(&mut self, spec: &'static MenuSpec, req: &Request) -> Result<(), Trap> {
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

    pub(super) fn toggle(
        &mut self,
        spec: &'static MenuSpec,
        req: &Request,
        disable: bool,
    ) -> Result<(), Trap> {
        let cmd = if disable { "disable" } else { "enable" };
        if !spec.has_command(cmd) {
            return Err(Trap::cat(format!("no such command or directory ({cmd})"), 0));
        }
        let ids = self.targets(spec, req)?;
        for &id in &ids {
            if let Some(t) = self.table_mut(spec.path) {
                t.update(id, |row| {
                    row.fields.insert("disabled".into(), disable.to_string())
                });
            }
            self.notify(spec.path, id);
            if disable && spec.path == "/ip/hotspot/user" {
                self.end_user_sessions(id, "user-disabled");
            }
        }
        Ok(())
    }
}
