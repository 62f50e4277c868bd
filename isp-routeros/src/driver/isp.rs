//! ISP services: PPPoE secrets, static-IP address-list entries (and the
//! firewall rule that makes their list matter), simple queues.

use std::net::Ipv4Addr;

use isp_core::domain::{OwnerTag, RateLimit, RosName};
use isp_core::ports::{ForeignObject, Menu, PppoeSpec, QueueSpec, RuleState, StaticIpRuleSpec, StaticIpSpec};
use isp_core::{Error, Result};

use super::ops::Ops;
use super::rows::{owner, Reader, ADDRESS_LIST, FIREWALL_FILTER, PPP_ACTIVE, PPP_SECRET, QUEUE};
use crate::client::Row;

fn not_ours(entity: &'static str, name: &str, row: &Row) -> Error {
    Error::conflict(
        entity,
        format!(
            "{name} exists on the router but was not created by this engine (comment {:?}); left untouched",
            row.get("comment").unwrap_or("")
        ),
    )
}

async fn find_by_name(
    ops: &Ops,
    menu: &'static str,
    props: &[&str],
    name: &RosName,
) -> Result<Option<(String, Row)>> {
    let query = format!("name={name}");
    let rows = ops.print(menu, props, &[&query]).await?;
    let reader = Reader { ops, menu };
    match rows.into_iter().find(|r| r.get("name") == Some(name.as_str())) {
        Some(r) => Ok(Some((reader.id(&r)?.to_owned(), r))),
        None => Ok(None),
    }
}

/// Creates the secret, or updates and enables ours.
pub(crate) async fn provision_pppoe(ops: &Ops, spec: &PppoeSpec) -> Result<()> {
    let existing = find_by_name(ops, PPP_SECRET, &[".id", "name", "comment"], &spec.username).await?;
    let comment = spec.owner.comment();
    match existing {
        None => ops
            .add(
                PPP_SECRET,
                &[
                    ("name", spec.username.as_str()),
                    ("password", spec.password.expose()),
                    ("profile", spec.profile.as_str()),
                    ("service", "pppoe"),
                    ("comment", &comment),
                ],
            )
            .await
            .map(|_| ()),
        Some((id, row)) if owner(&row) == Some(spec.owner) => {
            ops.set(
                PPP_SECRET,
                &id,
                &[
                    ("password", spec.password.expose()),
                    ("profile", spec.profile.as_str()),
                    ("disabled", "no"),
                ],
            )
            .await
        }
        Some((_, row)) => Err(not_ours("ppp secret", spec.username.as_str(), &row)),
    }
}

/// Removes `tag`'s secret, then the live sessions of that name. A secret
/// that is not `tag`'s is left alone (`Conflict`), and so are its sessions.
pub(crate) async fn deprovision_pppoe(ops: &Ops, username: &RosName, tag: OwnerTag) -> Result<()> {
    let secret_query = format!("name={username}");
    let queries = [secret_query.as_str()];
    let (secrets, sessions) = futures::try_join!(
        ops.print(PPP_SECRET, &[".id", "name", "comment"], &queries),
        ops.print(PPP_ACTIVE, &[".id", "name"], &queries),
    )?;
    let secret_reader = Reader {
        ops,
        menu: PPP_SECRET,
    };
    let mut remove = Vec::new();
    for row in secrets
        .iter()
        .filter(|r| r.get("name") == Some(username.as_str()))
    {
        if owner(row) != Some(tag) {
            return Err(not_ours("ppp secret", username.as_str(), row));
        }
        remove.push(secret_reader.id(row)?);
    }
    ops.apply_all(PPP_SECRET, "remove", remove).await?;
    let session_reader = Reader {
        ops,
        menu: PPP_ACTIVE,
    };
    let session_ids = sessions
        .iter()
        .filter(|r| r.get("name") == Some(username.as_str()))
        .map(|r| session_reader.id(r))
        .collect::<Result<Vec<_>>>()?;
    ops.apply_all(PPP_ACTIVE, "remove", session_ids).await.map(|_| ())
}

async fn address_entries(ops: &Ops, address: Ipv4Addr, list: &RosName) -> Result<Vec<(String, Row)>> {
    let list_query = format!("list={list}");
    let address_query = format!("address={address}");
    let rows = ops
        .print(
            ADDRESS_LIST,
            &[".id", "list", "address", "comment", "disabled"],
            &[&list_query, &address_query],
        )
        .await?;
    let reader = Reader {
        ops,
        menu: ADDRESS_LIST,
    };
    let plain = address.to_string();
    let host = format!("{address}/32");
    rows.into_iter()
        .filter(|r| {
            r.get("list") == Some(list.as_str())
                && matches!(r.get("address"), Some(a) if a == plain || a == host)
        })
        .map(|r| Ok((reader.id(&r)?.to_owned(), r)))
        .collect()
}

/// The entries among `entries` that are not `tag`'s, as foreign objects.
fn foreign_entries(entries: &[(String, Row)], tag: OwnerTag) -> Vec<ForeignObject> {
    entries
        .iter()
        .filter(|(_, r)| owner(r) != Some(tag))
        .map(|(_, r)| ForeignObject {
            menu: Menu::AddressList,
            name: r.get("address").unwrap_or("").to_owned(),
        })
        .collect()
}

/// Adds the entry unless an enabled one is there; enables ours if disabled.
/// Returns the entries for the address that are not ours (left alone).
pub(crate) async fn provision_static_ip(ops: &Ops, spec: &StaticIpSpec) -> Result<Vec<ForeignObject>> {
    let entries = address_entries(ops, spec.address, &spec.list).await?;
    let foreign = foreign_entries(&entries, spec.owner);
    if !foreign.is_empty() {
        tracing::warn!(router = %ops.name(), list = %spec.list, address = %spec.address, "address-list entry not made for this service found; left alone");
    }
    if entries.iter().any(|(_, r)| !r.flag("disabled").unwrap_or(false)) {
        return Ok(foreign);
    }
    if let Some((id, _)) = entries.iter().find(|(_, r)| owner(r) == Some(spec.owner)) {
        ops.set(ADDRESS_LIST, id, &[("disabled", "no")]).await?;
        return Ok(foreign);
    }
    let comment = spec.owner.comment();
    let address = spec.address.to_string();
    match ops
        .link
        .add(
            ADDRESS_LIST,
            &[
                ("list", spec.list.as_str()),
                ("address", &address),
                ("comment", &comment),
            ],
        )
        .await
    {
        Ok(id) => {
            tracing::info!(router = %ops.name(), list = %spec.list, address = %address, id = %id, "address-list entry added");
            Ok(foreign)
        }
        // Added meanwhile: present is what we want.
        Err(e) if e.is_already_exists() => Ok(foreign),
        Err(e) => Err(ops.err(e)),
    }
}

/// Removes `tag`'s entries for the address in the list; the operator's and
/// other owners' stay and are returned.
pub(crate) async fn deprovision_static_ip(
    ops: &Ops,
    address: Ipv4Addr,
    list: &RosName,
    tag: OwnerTag,
) -> Result<Vec<ForeignObject>> {
    let entries = address_entries(ops, address, list).await?;
    let foreign = foreign_entries(&entries, tag);
    if !foreign.is_empty() {
        tracing::warn!(router = %ops.name(), list = %list, address = %address, "address-list entry not made for this service left in place");
    }
    let ours = entries
        .iter()
        .filter(|(_, r)| owner(r) == Some(tag))
        .map(|(id, _)| id.as_str());
    ops.apply_all(ADDRESS_LIST, "remove", ours).await?;
    Ok(foreign)
}

/// The filter rules that match `spec` (chain, action and matchers), with ids.
async fn static_ip_rules(ops: &Ops, spec: &StaticIpRuleSpec) -> Result<Vec<(String, Row)>> {
    let chain = format!("chain={}", StaticIpRuleSpec::CHAIN);
    let rows = ops
        .print(
            FIREWALL_FILTER,
            &[
                ".id",
                "chain",
                "action",
                "src-address-list",
                "in-interface-list",
                "disabled",
                "comment",
            ],
            &[&chain],
        )
        .await?;
    let reader = Reader {
        ops,
        menu: FIREWALL_FILTER,
    };
    let src = spec.src_address_list();
    rows.into_iter()
        .filter(|r| {
            r.get("chain") == Some(StaticIpRuleSpec::CHAIN)
                && r.get("action") == Some(StaticIpRuleSpec::ACTION)
                && r.get("src-address-list") == Some(src.as_str())
                && r.get("in-interface-list") == Some(spec.in_interface_list.as_str())
        })
        .map(|r| Ok((reader.id(&r)?.to_owned(), r)))
        .collect()
}

/// Whether the static-IP filter rule is there (enabled, only disabled, or not).
pub(crate) async fn check_static_ip_rule(ops: &Ops, spec: &StaticIpRuleSpec) -> Result<RuleState> {
    let rules = static_ip_rules(ops, spec).await?;
    Ok(
        if rules.iter().any(|(_, r)| !r.flag("disabled").unwrap_or(false)) {
            RuleState::Present
        } else if rules.is_empty() {
            RuleState::Missing
        } else {
            RuleState::Disabled
        },
    )
}

/// Makes the static-IP filter rule present: enables ours if disabled, or
/// adds it; `false` when an enabled one was already there.
pub(crate) async fn add_static_ip_rule(ops: &Ops, spec: &StaticIpRuleSpec) -> Result<bool> {
    let rules = static_ip_rules(ops, spec).await?;
    if rules.iter().any(|(_, r)| !r.flag("disabled").unwrap_or(false)) {
        return Ok(false);
    }
    let ours = rules
        .iter()
        .find(|(_, r)| r.get("comment") == Some(StaticIpRuleSpec::COMMENT));
    if let Some((id, _)) = ours {
        ops.set(FIREWALL_FILTER, id, &[("disabled", "no")]).await?;
        return Ok(true);
    }
    let attributes = spec.attributes();
    let attributes: Vec<(&str, &str)> = attributes.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let id = ops.add(FIREWALL_FILTER, &attributes).await?;
    tracing::info!(router = %ops.name(), id = %id, list = %spec.list, "static-ip filter rule added");
    Ok(true)
}

/// Creates the queue, or updates ours when its target, limit or state differ.
pub(crate) async fn set_rate_limit(ops: &Ops, spec: &QueueSpec) -> Result<()> {
    let existing = find_by_name(
        ops,
        QUEUE,
        &[".id", "name", "target", "max-limit", "comment", "disabled"],
        &spec.name,
    )
    .await?;
    let target = spec.target.to_string();
    let limit = spec.limit.to_string();
    let comment = spec.owner.comment();
    match existing {
        None => ops
            .add(
                QUEUE,
                &[
                    ("name", spec.name.as_str()),
                    ("target", &target),
                    ("max-limit", &limit),
                    ("comment", &comment),
                ],
            )
            .await
            .map(|_| ()),
        Some((id, row)) if owner(&row) == Some(spec.owner) => {
            let same_target = row.get("target") == Some(target.as_str())
                || (spec.target.prefix() == 32
                    && row.get("target") == Some(spec.target.address().to_string().as_str()));
            let same_limit = row
                .get("max-limit")
                .and_then(|l| RateLimit::parse("max-limit", l).ok())
                == Some(spec.limit);
            let enabled = !row.flag("disabled").unwrap_or(false);
            if same_target && same_limit && enabled {
                return Ok(());
            }
            ops.set(
                QUEUE,
                &id,
                &[("target", &target), ("max-limit", &limit), ("disabled", "no")],
            )
            .await
        }
        Some((_, row)) => Err(not_ours("simple queue", spec.name.as_str(), &row)),
    }
}

/// Removes `tag`'s queue `name`; absent is fine; not `tag`'s is a `Conflict`.
pub(crate) async fn remove_rate_limit(ops: &Ops, name: &RosName, tag: OwnerTag) -> Result<()> {
    match find_by_name(ops, QUEUE, &[".id", "name", "comment"], name).await? {
        None => Ok(()),
        Some((id, row)) if owner(&row) == Some(tag) => {
            ops.apply_all(QUEUE, "remove", [id.as_str()]).await.map(|_| ())
        }
        Some((_, row)) => Err(not_ours("simple queue", name.as_str(), &row)),
    }
}
