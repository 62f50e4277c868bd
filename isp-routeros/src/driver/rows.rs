//! Menu paths, the properties the driver reads from each, and rows turned
//! into domain values.

use std::net::Ipv4Addr;

use isp_core::domain::{MacAddress, OwnerTag, RosDuration};
use isp_core::ports::{
    AddressListEntry, BindingType, HotspotSession, HotspotUser, IpBinding, Menu, PppSecret, PppSession,
    SimpleQueue,
};
use isp_core::{Error, Result};

use super::ops::Ops;
use crate::client::Row;

pub(crate) const HOTSPOT_ACTIVE: &str = "/ip/hotspot/active";
pub(crate) const HOTSPOT_USER: &str = "/ip/hotspot/user";
pub(crate) const HOTSPOT_HOST: &str = "/ip/hotspot/host";
pub(crate) const HOTSPOT_COOKIE: &str = "/ip/hotspot/cookie";
pub(crate) const IP_BINDING: &str = "/ip/hotspot/ip-binding";
pub(crate) const PPP_SECRET: &str = "/ppp/secret";
pub(crate) const PPP_ACTIVE: &str = "/ppp/active";
pub(crate) const ADDRESS_LIST: &str = "/ip/firewall/address-list";
pub(crate) const QUEUE: &str = "/queue/simple";
pub(crate) const RESOURCE: &str = "/system/resource";
pub(crate) const IDENTITY: &str = "/system/identity";
pub(crate) const CLOCK: &str = "/system/clock";

pub(crate) const ACTIVE_PROPS: &[&str] = &[".id", "user", "mac-address", "address", "uptime"];
pub(crate) const USER_PROPS: &[&str] = &[".id", "name", "disabled", "comment", "uptime", "limit-uptime"];
pub(crate) const BINDING_PROPS: &[&str] = &[".id", "mac-address", "address", "type", "comment", "disabled"];
pub(crate) const SECRET_PROPS: &[&str] = &[".id", "name", "profile", "disabled", "comment"];
pub(crate) const PPP_ACTIVE_PROPS: &[&str] = &[".id", "name", "address", "caller-id"];
pub(crate) const ADDRESS_LIST_PROPS: &[&str] = &[".id", "list", "address", "comment", "disabled"];
pub(crate) const QUEUE_PROPS: &[&str] = &[".id", "name", "target", "max-limit", "comment", "disabled"];

/// The path and properties read for a snapshot menu.
pub(crate) fn menu_spec(menu: Menu) -> (&'static str, &'static [&'static str]) {
    match menu {
        Menu::HotspotActive => (HOTSPOT_ACTIVE, ACTIVE_PROPS),
        Menu::HotspotUsers => (HOTSPOT_USER, USER_PROPS),
        Menu::IpBindings => (IP_BINDING, BINDING_PROPS),
        Menu::PppSecrets => (PPP_SECRET, SECRET_PROPS),
        Menu::PppActive => (PPP_ACTIVE, PPP_ACTIVE_PROPS),
        Menu::AddressList => (ADDRESS_LIST, ADDRESS_LIST_PROPS),
        Menu::Queues => (QUEUE, QUEUE_PROPS),
    }
}

/// True when the comment marks an object this engine created.
pub(crate) fn owned(row: &Row) -> bool {
    row.get("comment").and_then(OwnerTag::from_comment).is_some()
}

/// The owner recorded in the row's comment.
pub(crate) fn owner(row: &Row) -> Option<OwnerTag> {
    row.get("comment").and_then(OwnerTag::from_comment)
}

/// The row's MAC, when it has a valid one.
pub(crate) fn mac(row: &Row) -> Option<MacAddress> {
    row.get("mac-address")
        .and_then(|m| MacAddress::parse("mac-address", m).ok())
}

fn ipv4(row: &Row, name: &str) -> Option<Ipv4Addr> {
    row.get(name).and_then(|a| a.parse().ok())
}

fn duration(row: &Row, name: &str) -> Option<RosDuration> {
    row.get(name)
        .filter(|d| !d.is_empty())
        .and_then(|d| RosDuration::parse(name, d).ok())
}

fn text(row: &Row, name: &str) -> Option<String> {
    row.get(name).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// A session from a `listen` reply, or `None` when it has no `.id` (a
/// reply we cannot act on).
pub(crate) fn listened_session(row: &Row) -> Option<HotspotSession> {
    Some(HotspotSession {
        id: text(row, ".id")?,
        user: text(row, "user"),
        mac: mac(row),
        address: ipv4(row, "address"),
        uptime: duration(row, "uptime"),
    })
}

/// Reads rows of one menu, naming the menu and property when one is missing.
pub(crate) struct Reader<'a> {
    pub(crate) ops: &'a Ops,
    pub(crate) menu: &'static str,
}

impl Reader<'_> {
    fn required<'r>(&self, row: &'r Row, name: &str) -> Result<&'r str> {
        row.get(name).ok_or_else(|| {
            self.ops
                .protocol(format!("a {} row has no {name:?} property", self.menu))
        })
    }

    pub(crate) fn id<'r>(&self, row: &'r Row) -> Result<&'r str> {
        self.required(row, ".id")
    }

    pub(crate) fn hotspot_session(&self, row: &Row) -> Result<HotspotSession> {
        Ok(HotspotSession {
            id: self.id(row)?.to_owned(),
            user: text(row, "user"),
            mac: mac(row),
            address: ipv4(row, "address"),
            uptime: duration(row, "uptime"),
        })
    }

    pub(crate) fn hotspot_user(&self, row: &Row) -> Result<HotspotUser> {
        Ok(HotspotUser {
            id: self.id(row)?.to_owned(),
            name: self.required(row, "name")?.to_owned(),
            disabled: row.flag("disabled").unwrap_or(false),
            comment: text(row, "comment"),
            uptime: duration(row, "uptime"),
            limit_uptime: duration(row, "limit-uptime"),
        })
    }

    pub(crate) fn ip_binding(&self, row: &Row) -> Result<IpBinding> {
        let kind = match row.get("type").unwrap_or("regular") {
            "regular" | "" => BindingType::Regular,
            "bypassed" => BindingType::Bypassed,
            "blocked" => BindingType::Blocked,
            other => {
                return Err(self
                    .ops
                    .protocol(format!("{} row has an unknown type {other:?}", self.menu)))
            }
        };
        Ok(IpBinding {
            id: self.id(row)?.to_owned(),
            mac: mac(row),
            address: ipv4(row, "address"),
            kind,
            comment: text(row, "comment"),
            disabled: row.flag("disabled").unwrap_or(false),
        })
    }

    pub(crate) fn ppp_secret(&self, row: &Row) -> Result<PppSecret> {
        Ok(PppSecret {
            id: self.id(row)?.to_owned(),
            name: self.required(row, "name")?.to_owned(),
            profile: text(row, "profile"),
            disabled: row.flag("disabled").unwrap_or(false),
            comment: text(row, "comment"),
        })
    }

    pub(crate) fn ppp_session(&self, row: &Row) -> Result<PppSession> {
        Ok(PppSession {
            id: self.id(row)?.to_owned(),
            name: self.required(row, "name")?.to_owned(),
            address: ipv4(row, "address"),
            caller_id: text(row, "caller-id"),
        })
    }

    pub(crate) fn address_list_entry(&self, row: &Row) -> Result<AddressListEntry> {
        Ok(AddressListEntry {
            id: self.id(row)?.to_owned(),
            list: self.required(row, "list")?.to_owned(),
            address: self.required(row, "address")?.to_owned(),
            comment: text(row, "comment"),
            disabled: row.flag("disabled").unwrap_or(false),
        })
    }

    pub(crate) fn simple_queue(&self, row: &Row) -> Result<SimpleQueue> {
        Ok(SimpleQueue {
            id: self.id(row)?.to_owned(),
            name: self.required(row, "name")?.to_owned(),
            target: self.required(row, "target")?.to_owned(),
            max_limit: text(row, "max-limit"),
            comment: text(row, "comment"),
            disabled: row.flag("disabled").unwrap_or(false),
        })
    }
}

/// Checks an item id given by a caller: `*` and hex digits.
pub(crate) fn check_item_id(field: &str, id: &str) -> Result<()> {
    let ok = id
        .strip_prefix('*')
        .is_some_and(|hex| !hex.is_empty() && hex.len() <= 16 && hex.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            id,
            "a router item id is * and hex digits, e.g. *1A",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_ids() {
        assert!(check_item_id("id", "*1A").is_ok());
        assert!(check_item_id("id", "*ff").is_ok());
        for bad in ["", "*", "1A", "*1A,*2", "*G", "*1 "] {
            let e = check_item_id("session_id", bad).unwrap_err();
            assert!(e.to_string().contains("session_id"), "{bad}: {e}");
        }
    }
}
