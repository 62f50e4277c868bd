//! How `print` shows an item: stored properties, defaults and the values the router computes
//! (uptimes, time left, clock fields).

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{since, until, RouterState, Row};
use crate::sim::duration;
use crate::sim::menus::{Field, MenuSpec};

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

impl RouterState {
    /// The item as `print` shows it: `.id` first, then properties in the router's order.
    pub(crate) fn render(&self, spec: &MenuSpec, row: &Row) -> Vec<(String, String)> {
        self.render_only(spec, row, None, self.now())
    }

    /// [`RouterState::render`] restricted to `props` (a `.proplist`), computing only those.
    pub(super) fn render_only(
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
    pub(super) fn value_of<'r>(
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
}
