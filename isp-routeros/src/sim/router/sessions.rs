//! Sessions and time: hotspot and PPP logins and logouts, and the clock ending
//! sessions, address-list entries and cookies.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use chrono::{DateTime, Utc};

use super::values::normalize_mac;
use super::{invalid_value, since, RouterState, Trap};
use crate::sim::duration;

impl RouterState {
    /// Applies the passage of time: ends hotspot sessions past their user's limit-uptime,
    /// drops timed-out address-list entries and expired cookies.
    ///
    /// Sessions' ends and items' expiries are kept in order (the tables' `expiring`,
    /// `session_ends`), brought up to date from the changes since the last tick: a tick costs
    /// what changed and what is due, not a scan of every user.
    pub(crate) fn tick(&mut self) {
        let now = self.now();
        if self.quiet_until.is_some_and(|q| now < q) {
            return;
        }
        self.refresh_session_ends();
        let due = (now, u64::MAX);
        let mut over: Vec<u64> = self.session_ends.range(..=due).map(|(_, id)| *id).collect();
        over.sort_unstable();
        let mut timed_out: Vec<u64> = Vec::new();
        // The earliest instant something not due now will be: the next scan.
        let mut next = DateTime::<Utc>::MAX_UTC;
        for (id, deadline) in &self.radius.timeouts {
            if *deadline <= now {
                timed_out.push(*id);
            } else {
                next = next.min(*deadline);
            }
        }
        let mut ended = !over.is_empty() || !timed_out.is_empty();
        for id in over {
            self.end_hotspot_session(id, "limit-uptime");
        }
        for id in timed_out {
            self.end_hotspot_session(id, "session-timeout");
        }
        for menu in ["/ip/firewall/address-list", "/ip/hotspot/cookie"] {
            let Some(table) = self.table(menu) else { continue };
            let mut expired: Vec<u64> = table.expiring.range(..=due).map(|(_, id)| *id).collect();
            expired.sort_unstable();
            if let Some((e, _)) = table.expiring.range((now, u64::MAX)..).next() {
                next = next.min(*e);
            }
            ended |= !expired.is_empty();
            for id in expired {
                self.remove_row(menu, id, "timeout");
            }
        }
        if let Some((e, _)) = self.session_ends.first() {
            next = next.min(*e);
        }
        // Ending sessions changed users' uptime: the next tick looks again.
        self.quiet_until = (!ended).then_some(next);
    }

    /// Brings `session_ends` up to date with the hotspot users and sessions changed since.
    fn refresh_session_ends(&mut self) {
        let mut sessions: BTreeSet<u64> = BTreeSet::new();
        if let Some(t) = self.tables.get_mut("/ip/hotspot/active") {
            sessions.extend(t.drain_touched().0);
        }
        let names = self
            .tables
            .get_mut("/ip/hotspot/user")
            .map(|t| t.drain_touched().1)
            .unwrap_or_default();
        for name in names.iter().collect::<BTreeSet<_>>() {
            sessions.extend(self.find_by("/ip/hotspot/active", "user", name));
        }
        for id in sessions {
            if let Some(end) = self.session_end_of.remove(&id) {
                self.session_ends.remove(&(end, id));
            }
            if let Some(end) = self.session_end(id) {
                self.session_ends.insert((end, id));
                self.session_end_of.insert(id, end);
            }
        }
    }

    /// When hotspot session `id` reaches its user's limit-uptime (the first user of that name
    /// with a limit): `MIN_UTC` when already, `None` when never.
    fn session_end(&self, id: u64) -> Option<DateTime<Utc>> {
        let session = self.table("/ip/hotspot/active")?.rows.get(&id)?;
        let users = self.table("/ip/hotspot/user")?;
        let (limit, used) = users.find("name", session.get("user")?).iter().find_map(|uid| {
            let u = users.rows.get(uid)?;
            u.get("limit-uptime")
                .and_then(duration::parse)
                .map(|limit| (limit, u.used))
        })?;
        if used >= limit {
            return Some(DateTime::<Utc>::MIN_UTC);
        }
        let left = chrono::Duration::from_std(limit - used).ok()?;
        session.started?.checked_add_signed(left)
    }

    /// Ends a hotspot session: the user's uptime grows, the host is no longer authorized.
    pub(crate) fn end_hotspot_session(&mut self, id: u64, reason: &str) -> bool {
        let now = self.now();
        let Some(row) = self.remove_row("/ip/hotspot/active", id, reason) else {
            return false;
        };
        self.radius.ended(id, reason, now);
        let session = since(now, row.started);
        if let Some(user) = row.get("user") {
            if let Some(uid) = self.find_by("/ip/hotspot/user", "name", user).first().copied() {
                if let Some(t) = self.table_mut("/ip/hotspot/user") {
                    t.update(uid, |u| u.used += session);
                }
                self.notify("/ip/hotspot/user", uid);
            }
        }
        if let Some(mac) = row.get("mac-address") {
            for hid in self.find_by("/ip/hotspot/host", "mac-address", mac) {
                if let Some(t) = self.table_mut("/ip/hotspot/host") {
                    t.update(hid, |h| h.fields.insert("authorized".into(), "false".into()));
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
                if let Some(t) = self.table_mut("/ip/hotspot/host") {
                    t.update(hid, |h| h.fields.extend(host_fields));
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

    /// Ends hotspot session `id` at `deadline` (router clock): a RADIUS `Session-Timeout`.
    pub(crate) fn set_session_timeout(&mut self, id: u64, deadline: DateTime<Utc>) {
        self.radius.timeouts.insert(id, deadline);
        self.quiet_until = None;
    }

    /// True when `menu` still has item `id`.
    pub(crate) fn table_rows_contain(&self, menu: &str, id: u64) -> bool {
        self.table(menu).is_some_and(|t| t.rows.contains_key(&id))
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

    pub(super) fn end_user_sessions(&mut self, user_id: u64, reason: &str) {
        let Some(name) = self.row_field("/ip/hotspot/user", user_id, "name") else {
            return;
        };
        for sid in self.find_by("/ip/hotspot/active", "user", &name) {
            self.end_hotspot_session(sid, reason);
        }
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
