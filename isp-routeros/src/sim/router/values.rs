//! Value rules: what each kind of property accepts and how it is normalised, and which
//! items may not share a name.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::{invalid_value, RouterState, Row, Trap};
use crate::sim::duration;
use crate::sim::menus::{Kind, MenuSpec};

impl RouterState {
    /// Validates and normalises a value for `field`.
    pub(super) fn validate(&self, spec: &MenuSpec, name: &str, value: &str) -> Result<String, Trap> {
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
    pub(super) fn check_unique(
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
        // Every rule needs this property equal: look the clashing items up by it.
        let key = if spec.path == "/ip/firewall/address-list" {
            "address"
        } else {
            "name"
        };
        let clashes = |r: &Row| Some(r.id) != except && clash(r);
        let found = match fields.get(key) {
            Some(value) => table
                .find(key, value)
                .iter()
                .filter_map(|id| table.rows.get(id))
                .any(clashes),
            None => table.rows.values().any(clashes),
        };
        if found {
            return Err(Trap::new(message));
        }
        Ok(())
    }
}

/// `aa:bb:cc:dd:ee:ff` (also with `-`) in upper case with `:`.
pub(super) fn normalize_mac(raw: &str) -> Option<String> {
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

pub(super) fn normalize_list_address(raw: &str) -> Option<String> {
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

pub(super) fn normalize_targets(raw: &str) -> Option<String> {
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

pub(super) fn normalize_rate(raw: &str) -> Option<String> {
    let (up, down) = raw.split_once('/').unwrap_or((raw, raw));
    Some(format!("{}/{}", parse_rate(up)?, parse_rate(down)?))
}
