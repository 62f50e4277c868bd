//! Hotspot: disconnects, sessions, ip-bindings and users.

use std::collections::{HashMap, HashSet};

use isp_core::domain::{MacAddress, OwnerTag, RosName};
use isp_core::ports::{DisconnectReport, ForeignObject, HotspotTarget, HotspotUserSpec, Menu};
use isp_core::{Error, Result};

use super::link::LinkError;
use super::ops::{Ops, Outcome};
use super::rows::{
    check_item_id, mac, owned, owner, Reader, HOTSPOT_ACTIVE, HOTSPOT_COOKIE, HOTSPOT_HOST, HOTSPOT_USER,
    IP_BINDING,
};
use crate::client::Row;

/// What to do for one target, as item ids per menu.
#[derive(Debug, Default)]
struct Plan {
    sessions: Vec<String>,
    hosts: Vec<String>,
    cookies: Vec<String>,
    bindings: Vec<String>,
    /// The owner's user: its id and whether it is disabled already.
    user: Option<(String, bool)>,
    /// Same-name users and same-MAC bindings that are not the owner's.
    foreign: Vec<ForeignObject>,
}

fn ids_where(reader: &Reader<'_>, rows: &[Row], keep: impl Fn(&Row) -> bool) -> Result<Vec<String>> {
    rows.iter()
        .filter(|r| keep(r))
        .map(|r| reader.id(r).map(str::to_owned))
        .collect()
}

/// Ids of the rows to keep, given each row with its MAC parsed once
/// (`macs[i]` is `rows[i]`'s): a batch filters each menu once per target.
fn ids_with_mac(
    reader: &Reader<'_>,
    rows: &[Row],
    macs: &[Option<MacAddress>],
    keep: impl Fn(&Row, Option<MacAddress>) -> bool,
) -> Result<Vec<String>> {
    rows.iter()
        .zip(macs)
        .filter(|(r, m)| keep(r, **m))
        .map(|(r, _)| reader.id(r).map(str::to_owned))
        .collect()
}

fn macs_of(rows: &[Row]) -> Vec<Option<MacAddress>> {
    rows.iter().map(mac).collect()
}

/// Most `prop=value` terms put into one `print` query. A batch with more
/// targets on one router reads the whole menu instead: the query would cost the
/// router more than the rows it saves.
const MAX_QUERY_TERMS: usize = 128;

/// Query words matching items whose `prop` equals any of the values (an OR on
/// the router's query stack: `?p=a ?p=b ?q=c ?#||`), so that a batch reads
/// only its own targets' rows, not the whole menu once per batch. No words
/// (every item) when there are no values or more than [`MAX_QUERY_TERMS`]; the
/// caller filters the rows either way.
fn any_of(terms: &[(&str, &[&str])]) -> Vec<String> {
    let count: usize = terms.iter().map(|(_, values)| values.len()).sum();
    if count == 0 || count > MAX_QUERY_TERMS {
        return Vec::new();
    }
    let mut words: Vec<String> = terms
        .iter()
        .flat_map(|(prop, values)| values.iter().map(move |v| format!("{prop}={v}")))
        .collect();
    if count > 1 {
        words.push(format!("#{}", "|".repeat(count - 1)));
    }
    words
}

fn words(query: &[String]) -> Vec<&str> {
    query.iter().map(String::as_str).collect()
}

fn first_failure<'a>(
    ids: &[String],
    outcomes: &'a HashMap<String, Outcome>,
    failure: &mut Option<&'a LinkError>,
) -> u32 {
    let mut confirmed = 0;
    for id in ids {
        match outcomes.get(id) {
            Some(Outcome::Done | Outcome::Gone) => confirmed += 1,
            Some(Outcome::Failed(e)) => {
                failure.get_or_insert(e);
            }
            None => {}
        }
    }
    confirmed
}

/// Cuts off every target: one `print` per menu for all of them, then one
/// batched command per menu, sent back to back: remove sessions, cookies and
/// the owner's non-blocking ip-bindings, disable (or remove) the owner's
/// users, remove hosts. A same-name user or same-MAC binding that is not the
/// target owner's is left alone and reported, and so are the sessions and
/// cookies of a user name that is not (only) the owner's.
pub(crate) async fn disconnect(
    ops: &Ops,
    targets: &[HotspotTarget],
) -> Result<Vec<Result<DisconnectReport>>> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let macs: HashSet<MacAddress> = targets.iter().flat_map(|t| t.macs.iter().copied()).collect();
    let users: HashSet<&str> = targets
        .iter()
        .filter_map(|t| t.username.as_ref().map(RosName::as_str))
        .collect();
    let comments: HashSet<String> = targets.iter().map(|t| t.owner.comment()).collect();
    let mac_texts: Vec<String> = macs.iter().map(MacAddress::to_string).collect();
    let mac_list: Vec<&str> = mac_texts.iter().map(String::as_str).collect();
    let user_list: Vec<&str> = users.iter().copied().collect();
    let comment_list: Vec<&str> = comments.iter().map(String::as_str).collect();
    let by_mac = any_of(&[("mac-address", &mac_list)]);
    let by_user_or_mac = any_of(&[("user", &user_list), ("mac-address", &mac_list)]);
    let by_name = any_of(&[("name", &user_list)]);
    // Bindings tagged for an owner whatever their MAC (a voucher's device is
    // known only by its binding), and every binding of the MACs.
    let by_mac_or_owner = any_of(&[("mac-address", &mac_list), ("comment", &comment_list)]);
    let (q_mac, q_user_or_mac, q_name, q_binding) = (
        words(&by_mac),
        words(&by_user_or_mac),
        words(&by_name),
        words(&by_mac_or_owner),
    );
    let (active, hosts, cookies, bindings, hotspot_users) = futures::try_join!(
        ops.print(HOTSPOT_ACTIVE, &[".id", "user", "mac-address"], &q_user_or_mac),
        ops.print_if(!macs.is_empty(), HOTSPOT_HOST, &[".id", "mac-address"], &q_mac),
        ops.print(HOTSPOT_COOKIE, &[".id", "user", "mac-address"], &q_user_or_mac),
        ops.print(IP_BINDING, &[".id", "mac-address", "type", "comment"], &q_binding),
        ops.print_if(
            !users.is_empty(),
            HOTSPOT_USER,
            &[".id", "name", "disabled", "comment"],
            &q_name
        ),
    )?;

    let (active_macs, host_macs, cookie_macs, binding_macs) = (
        macs_of(&active),
        macs_of(&hosts),
        macs_of(&cookies),
        macs_of(&bindings),
    );
    let reader = |menu| Reader { ops, menu };
    let user_reader = reader(HOTSPOT_USER);
    let mut plans = Vec::with_capacity(targets.len());
    for target in targets {
        let tag = Some(target.owner);
        let user = target.username.as_ref().map(RosName::as_str);
        let named: Vec<&Row> = match user {
            Some(u) => hotspot_users
                .iter()
                .filter(|r| r.get("name") == Some(u))
                .collect(),
            None => Vec::new(),
        };
        let mut foreign: Vec<ForeignObject> = named
            .iter()
            .filter(|r| owner(r) != tag)
            .map(|r| ForeignObject {
                menu: Menu::HotspotUsers,
                name: r.get("name").unwrap_or_default().to_owned(),
            })
            .collect();
        // Sessions and cookies go by user name only while no other user has it.
        let name_is_ours = foreign.is_empty();
        let has_mac = |m: Option<MacAddress>| m.is_some_and(|m| target.macs.contains(&m));
        let is_user = |row: &Row, prop: &str| name_is_ours && user.is_some_and(|u| row.get(prop) == Some(u));
        let user_row = named.iter().find(|r| owner(r) == tag);
        let not_blocked = |r: &Row| r.get("type") != Some("blocked");
        foreign.extend(
            bindings
                .iter()
                .zip(&binding_macs)
                .filter(|(r, m)| has_mac(**m) && not_blocked(r) && owner(r) != tag)
                .map(|(_, m)| ForeignObject {
                    menu: Menu::IpBindings,
                    name: m.map(|m| m.to_string()).unwrap_or_default(),
                }),
        );
        plans.push(Plan {
            sessions: ids_with_mac(&reader(HOTSPOT_ACTIVE), &active, &active_macs, |r, m| {
                has_mac(m) || is_user(r, "user")
            })?,
            hosts: ids_with_mac(&reader(HOTSPOT_HOST), &hosts, &host_macs, |_, m| has_mac(m))?,
            cookies: ids_with_mac(&reader(HOTSPOT_COOKIE), &cookies, &cookie_macs, |r, m| {
                has_mac(m) || is_user(r, "user")
            })?,
            // The owner's bindings (bypassed and regular), never a block:
            // disconnecting must not unblock.
            bindings: ids_where(&reader(IP_BINDING), &bindings, |r| {
                owner(r) == tag && not_blocked(r)
            })?,
            user: match user_row {
                Some(r) => Some((user_reader.id(r)?.to_owned(), r.flag("disabled").unwrap_or(false))),
                None => None,
            },
            foreign,
        });
    }

    let user_ids = |remove: bool| {
        plans
            .iter()
            .zip(targets)
            .filter(move |(_, t)| t.remove_user == remove)
            .filter_map(|(p, _)| p.user.as_ref())
            .filter(move |(_, disabled)| remove || !disabled)
            .map(|(id, _)| id.as_str())
    };
    // Sessions first, confirmed before anything else goes out: disabling a user
    // or removing its host ends its sessions, and a batched remove naming one
    // vanished session traps as a whole (then one command per id). Tagged
    // commands on one connection are not guaranteed to run in the order sent.
    // Then, back to back, what lets a device back in (cookies, bypass
    // bindings, the user) and the hosts.
    let each = |menu: &'static str, pick: fn(&Plan) -> &Vec<String>| {
        ops.apply_many(
            menu,
            "remove",
            plans.iter().flat_map(move |p| pick(p).iter().map(String::as_str)),
        )
    };
    let sessions_out = each(HOTSPOT_ACTIVE, |p| &p.sessions).await;
    let (cookies_out, bindings_out, disabled, removed, hosts_out) = futures::join!(
        each(HOTSPOT_COOKIE, |p| &p.cookies),
        each(IP_BINDING, |p| &p.bindings),
        ops.apply_many(HOTSPOT_USER, "disable", user_ids(false)),
        ops.apply_many(HOTSPOT_USER, "remove", user_ids(true)),
        each(HOTSPOT_HOST, |p| &p.hosts),
    );

    let results = plans
        .into_iter()
        .zip(targets)
        .map(|(plan, target)| {
            let mut failure = None;
            let mut report = DisconnectReport {
                sessions_removed: first_failure(&plan.sessions, &sessions_out, &mut failure),
                hosts_removed: first_failure(&plan.hosts, &hosts_out, &mut failure),
                cookies_removed: first_failure(&plan.cookies, &cookies_out, &mut failure),
                bindings_removed: first_failure(&plan.bindings, &bindings_out, &mut failure),
                user_disabled: false,
                user_removed: false,
                foreign: plan.foreign,
            };
            if let Some((id, already)) = &plan.user {
                let outcome = if target.remove_user {
                    removed.get(id)
                } else if *already {
                    Some(&Outcome::Done)
                } else {
                    disabled.get(id)
                };
                let done = match outcome {
                    Some(Outcome::Done) => true,
                    Some(Outcome::Failed(e)) => {
                        failure.get_or_insert(e);
                        false
                    }
                    // Removed meanwhile: nothing left to disable.
                    Some(Outcome::Gone) | None => false,
                };
                if target.remove_user {
                    report.user_removed = done;
                } else {
                    report.user_disabled = done;
                }
            }
            match failure {
                Some(e) => Err(ops.err(e.clone())),
                None => Ok(report),
            }
        })
        .collect();
    Ok(results)
}

/// Removes active sessions by id; already-gone ids count as removed.
pub(crate) async fn remove_sessions(ops: &Ops, ids: &[String]) -> Result<u32> {
    for id in ids {
        check_item_id("session_id", id)?;
    }
    ops.apply_all(HOTSPOT_ACTIVE, "remove", ids.iter().map(String::as_str))
        .await
}

fn bindings_of(ops: &Ops, rows: &[Row], device: MacAddress) -> Result<Vec<(String, Row)>> {
    let reader = Reader {
        ops,
        menu: IP_BINDING,
    };
    rows.iter()
        .filter(|r| mac(r) == Some(device))
        .map(|r| Ok((reader.id(r)?.to_owned(), r.clone())))
        .collect()
}

/// Adds (or turns one of ours into) a blocked ip-binding for the MAC.
pub(crate) async fn block_device(ops: &Ops, device: MacAddress, owner: OwnerTag) -> Result<()> {
    let rows = ops
        .print(
            IP_BINDING,
            &[".id", "mac-address", "type", "comment", "disabled"],
            &[],
        )
        .await?;
    let bindings = bindings_of(ops, &rows, device)?;
    let blocking = |r: &Row| r.get("type") == Some("blocked") && !r.flag("disabled").unwrap_or(false);
    if bindings.iter().any(|(_, r)| blocking(r)) {
        return Ok(());
    }
    let comment = owner.comment();
    if let Some((id, _)) = bindings.iter().find(|(_, r)| owned(r)) {
        return ops
            .set(
                IP_BINDING,
                id,
                &[("type", "blocked"), ("disabled", "no"), ("comment", &comment)],
            )
            .await;
    }
    let mac_text = device.to_string();
    ops.add(
        IP_BINDING,
        &[
            ("mac-address", &mac_text),
            ("type", "blocked"),
            ("comment", &comment),
        ],
    )
    .await
    .map(|_| ())
}

/// Removes our blocked ip-bindings of the MAC (bindings we made for other
/// purposes, and the operator's, stay).
pub(crate) async fn unblock_device(ops: &Ops, device: MacAddress) -> Result<()> {
    let rows = ops
        .print(IP_BINDING, &[".id", "mac-address", "type", "comment"], &[])
        .await?;
    let bindings = bindings_of(ops, &rows, device)?;
    let ours = bindings
        .iter()
        .filter(|(_, r)| owned(r) && r.get("type") == Some("blocked"))
        .map(|(id, _)| id.as_str());
    ops.apply_all(IP_BINDING, "remove", ours).await.map(|_| ())
}

/// Removes, per `(mac, owner)`, that owner's non-blocking bindings of the
/// MAC: one `print` of those MACs, one `remove` for all. Per pair, how many
/// the router confirmed removed.
pub(crate) async fn remove_bindings(
    ops: &Ops,
    requests: &[(MacAddress, OwnerTag)],
) -> Result<Vec<Result<u32>>> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let mac_texts: Vec<String> = requests
        .iter()
        .map(|(m, _)| m.to_string())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mac_list: Vec<&str> = mac_texts.iter().map(String::as_str).collect();
    let by_mac = any_of(&[("mac-address", &mac_list)]);
    let rows = ops
        .print(
            IP_BINDING,
            &[".id", "mac-address", "type", "comment"],
            &words(&by_mac),
        )
        .await?;
    let macs = macs_of(&rows);
    let reader = Reader {
        ops,
        menu: IP_BINDING,
    };
    let plans = requests
        .iter()
        .map(|(device, tag)| {
            ids_with_mac(&reader, &rows, &macs, |r, m| {
                m == Some(*device) && owner(r) == Some(*tag) && r.get("type") != Some("blocked")
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let outcomes = ops
        .apply_many(IP_BINDING, "remove", plans.iter().flatten().map(String::as_str))
        .await;
    Ok(plans
        .iter()
        .map(|ids| {
            let mut failure = None;
            let removed = first_failure(ids, &outcomes, &mut failure);
            match failure {
                Some(e) => Err(ops.err(e.clone())),
                None => Ok(removed),
            }
        })
        .collect())
}

fn not_owners(name: &str, tag: OwnerTag, row: &Row) -> Error {
    Error::conflict(
        "hotspot user",
        format!(
            "{name} exists on the router but is not {} (comment {:?}); left untouched",
            tag.comment(),
            row.get("comment").unwrap_or("")
        ),
    )
}

/// Disables or enables `tag`'s hotspot user by name.
pub(crate) async fn set_user_disabled(
    ops: &Ops,
    name: &RosName,
    tag: OwnerTag,
    disabled: bool,
) -> Result<()> {
    let change = [(name.clone(), tag, disabled)];
    let mut answers = set_users_disabled(ops, &change).await?;
    answers
        .pop()
        .unwrap_or_else(|| Err(Error::not_found("hotspot user", name)))
}

/// Disables (`true`) or enables (`false`) several owners' hotspot users: one
/// `print` of just those names, then at most one `disable` and one `enable`
/// with the ids comma-separated. Users already as wanted are left alone, and
/// so is a same-name user that is not the change's owner (`Conflict`).
pub(crate) async fn set_users_disabled(
    ops: &Ops,
    changes: &[(RosName, OwnerTag, bool)],
) -> Result<Vec<Result<()>>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = changes.iter().map(|(n, _, _)| n.as_str()).collect();
    let by_name = any_of(&[("name", &names)]);
    let rows = ops
        .print(
            HOTSPOT_USER,
            &[".id", "name", "disabled", "comment"],
            &words(&by_name),
        )
        .await?;
    let reader = Reader {
        ops,
        menu: HOTSPOT_USER,
    };
    let mut found: HashMap<&str, Vec<(&str, bool, &Row)>> = HashMap::new();
    for r in &rows {
        if let Some(name) = r.get("name") {
            found
                .entry(name)
                .or_default()
                .push((reader.id(r)?, r.flag("disabled").unwrap_or(false), r));
        }
    }
    /// What a change finds: the owner's user (id, disabled), or why not.
    enum Found<'r> {
        Ours(&'r str, bool),
        Missing,
        Foreign(&'r Row),
    }
    let look = |name: &RosName, tag: OwnerTag| match found.get(name.as_str()) {
        None => Found::Missing,
        Some(users) => match users.iter().find(|(_, _, r)| owner(r) != Some(tag)) {
            Some((_, _, r)) => Found::Foreign(r),
            None => match users.first() {
                Some((id, is, _)) => Found::Ours(id, *is),
                None => Found::Missing,
            },
        },
    };
    let to = |want: bool| {
        changes
            .iter()
            .filter(move |(_, _, d)| *d == want)
            .filter_map(move |(n, t, _)| match look(n, *t) {
                Found::Ours(id, is) if is != want => Some(id),
                _ => None,
            })
    };
    let (disabled, enabled) = futures::join!(
        ops.apply_many(HOTSPOT_USER, "disable", to(true)),
        ops.apply_many(HOTSPOT_USER, "enable", to(false)),
    );
    Ok(changes
        .iter()
        .map(|(name, tag, want)| match look(name, *tag) {
            Found::Missing => Err(Error::not_found("hotspot user", name)),
            Found::Foreign(row) => Err(not_owners(name.as_str(), *tag, row)),
            Found::Ours(_, is) if is == *want => Ok(()),
            Found::Ours(id, _) => match if *want { &disabled } else { &enabled }.get(id) {
                Some(Outcome::Done) => {
                    tracing::info!(router = %ops.name(), user = %name, disabled = *want, "hotspot user");
                    Ok(())
                }
                Some(Outcome::Gone) | None => Err(Error::not_found("hotspot user", name)),
                Some(Outcome::Failed(e)) => Err(ops.err(e.clone())),
            },
        })
        .collect())
}

/// Adds a hotspot user with our comment; returns its id.
pub(crate) async fn add_user(ops: &Ops, spec: &HotspotUserSpec) -> Result<String> {
    let comment = spec.owner.comment();
    let limit = spec.limit_uptime.map(|d| d.to_string());
    let mac_text = spec.mac.map(|m| m.to_string());
    let mut attributes: Vec<(&str, &str)> = vec![("name", spec.name.as_str()), ("comment", &comment)];
    if let Some(p) = &spec.password {
        attributes.push(("password", p.expose()));
    }
    if let Some(p) = &spec.profile {
        attributes.push(("profile", p.as_str()));
    }
    if let Some(l) = &limit {
        attributes.push(("limit-uptime", l));
    }
    if let Some(m) = &mac_text {
        attributes.push(("mac-address", m));
    }
    ops.add(HOTSPOT_USER, &attributes).await
}

/// Removes `tag`'s user of that name, then its active sessions. `Ok(false)`
/// when it was already gone (its sessions are still removed). A same-name
/// user that is not `tag`'s is left alone, and so are its sessions
/// (`Conflict`).
pub(crate) async fn remove_user(ops: &Ops, name: &RosName, tag: OwnerTag) -> Result<bool> {
    let query = format!("name={name}");
    let session_query = format!("user={name}");
    let (user_queries, session_queries) = ([query.as_str()], [session_query.as_str()]);
    let (users, sessions) = futures::try_join!(
        ops.print(HOTSPOT_USER, &[".id", "name", "comment"], &user_queries),
        ops.print(HOTSPOT_ACTIVE, &[".id", "user"], &session_queries),
    )?;
    let named = |r: &Row| r.get("name") == Some(name.as_str());
    if let Some(other) = users.iter().find(|r| named(r) && owner(r) != Some(tag)) {
        return Err(not_owners(name.as_str(), tag, other));
    }
    let user_reader = Reader {
        ops,
        menu: HOTSPOT_USER,
    };
    let user_ids = ids_where(&user_reader, &users, named)?;
    let removed = ops
        .apply_many(HOTSPOT_USER, "remove", user_ids.iter().map(String::as_str))
        .await;
    let mut existed = false;
    for outcome in removed.into_values() {
        match outcome {
            Outcome::Done => existed = true,
            Outcome::Gone => {}
            Outcome::Failed(e) => return Err(ops.err(e)),
        }
    }
    let session_reader = Reader {
        ops,
        menu: HOTSPOT_ACTIVE,
    };
    let session_ids = ids_where(&session_reader, &sessions, |r| {
        r.get("user") == Some(name.as_str())
    })?;
    ops.apply_all(HOTSPOT_ACTIVE, "remove", session_ids.iter().map(String::as_str))
        .await?;
    Ok(existed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_of_ors_every_term_on_the_stack() {
        let users = ["u1", "u2"];
        let macs = ["02:00:00:00:00:01"];
        assert_eq!(
            any_of(&[("user", &users[..]), ("mac-address", &macs[..])]),
            ["user=u1", "user=u2", "mac-address=02:00:00:00:00:01", "#||"]
        );
        assert_eq!(any_of(&[("name", &["alice"][..])]), ["name=alice"]);
    }

    #[test]
    fn any_of_reads_the_whole_menu_when_empty_or_too_long() {
        assert!(any_of(&[("name", &[][..])]).is_empty());
        let names: Vec<String> = (0..=MAX_QUERY_TERMS).map(|i| format!("u{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert!(any_of(&[("name", &names[..])]).is_empty());
        let most = &names[..MAX_QUERY_TERMS];
        assert_eq!(any_of(&[("name", most)]).len(), MAX_QUERY_TERMS + 1);
    }
}
