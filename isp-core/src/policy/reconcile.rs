//! Reconciliation: desired state (database + clock) vs one router's observed
//! state -> actions.
//!
//! - Hotspot users, ip-bindings, PPP secrets, address-list entries and queues
//!   whose comment carries our [`OwnerTag`] (`isp:...`) and whose owner is not
//!   entitled (unknown, expired, inactive) are disabled or removed, and live
//!   sessions of such users are removed.
//! - What an entitled, provisioned service is missing is restored: its PPPoE
//!   secret, its address-list entry, its rate-limit queue. An entitled
//!   subscriber's user we disabled is enabled again.
//! - Records whose router object is gone are expired: an active voucher whose
//!   hotspot user is gone from this router and from every other router of the
//!   tenant read in the same round, or whose uptime reached its limit
//!   ([`crate::policy::voucher::voucher_sync`]).
//! - A voucher's user is on every router of the tenant: the user of an unused
//!   voucher that this router lacks is created (a router that was down when
//!   the vouchers were generated gets them here), and so is the user of an
//!   active one that another router shows. A same-name user that is not ours
//!   blocks that and is left alone.
//!
//! Objects without our comment prefix are never touched, whatever their names.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::{
    Connection, MacAddress, OwnerTag, Plan, PlanId, RateLimit, RosName, Service, ServiceId, Subscriber,
    SubscriberId, Voucher, VoucherExpiryReason, VoucherId, VoucherStatus,
};
use crate::policy::hotspot::is_expired;
use crate::policy::provisioning::{is_entitled, pppoe_spec, queue_name, queue_spec, static_ip_spec};
use crate::policy::voucher::{voucher_sync, voucher_time_expiry, voucher_user_spec, VoucherAction};
use crate::ports::{BindingType, HotspotUserSpec, Menu, PppoeSpec, QueueSpec, RouterSnapshot, StaticIpSpec};

/// The menus a snapshot must hold for [`reconcile`]: a menu left out would
/// look empty, and everything in it would look missing.
pub const RECONCILE_MENUS: [Menu; 6] = [
    Menu::HotspotActive,
    Menu::HotspotUsers,
    Menu::IpBindings,
    Menu::PppSecrets,
    Menu::AddressList,
    Menu::Queues,
];

/// What the database and the clock say one router should hold.
#[derive(Debug, Clone, Copy)]
pub struct Desired<'a> {
    /// The current instant.
    pub now: DateTime<Utc>,
    /// When the router was read (its snapshot began). The records may be
    /// newer: a voucher activated since is not judged by its absence from
    /// the snapshot.
    pub observed_at: DateTime<Utc>,
    /// Today in the tenant's time zone.
    pub today: NaiveDate,
    /// The tenant's active subscribers (entitled or awaiting disconnect).
    pub subscribers: &'a [Subscriber],
    /// Every service on this router.
    pub services: &'a [Service],
    /// Plans of those services.
    pub plans: &'a BTreeMap<PlanId, Plan>,
    /// Every voucher of the router's tenant (its user belongs on every
    /// router of the tenant).
    pub vouchers: &'a [Voucher],
    /// The vouchers whose hotspot user (by name) another router of the tenant
    /// showed in the same round: an active voucher missing here is not gone,
    /// its user is created here instead.
    pub voucher_users_elsewhere: &'a HashSet<VoucherId>,
    /// The address list of static-IP services.
    pub static_ip_list: &'a RosName,
}

/// One change to bring a router (or a record) in line.
#[derive(Debug, Clone, PartialEq)]
pub enum ReconcileAction {
    /// Remove live hotspot sessions (by item id) of users we own that are not entitled.
    RemoveHotspotSessions {
        /// Session item ids.
        ids: Vec<String>,
    },
    /// Disable a hotspot user we own whose owner is not entitled.
    DisableHotspotUser {
        /// User name.
        name: RosName,
        /// Its owner.
        owner: OwnerTag,
    },
    /// Enable a hotspot user we own whose subscriber is entitled again.
    EnableHotspotUser {
        /// User name.
        name: RosName,
        /// Its owner.
        owner: OwnerTag,
    },
    /// Remove the owner's non-blocking (regular, bypassed) ip-bindings of a
    /// MAC: the owner is not entitled.
    RemoveIpBinding {
        /// Device MAC.
        mac: MacAddress,
        /// Its owner.
        owner: OwnerTag,
    },
    /// Re-create an entitled, provisioned service's missing or disabled secret.
    RestorePppoe(PppoeSpec),
    /// Re-create an entitled, provisioned service's missing address-list entry.
    RestoreStaticIp(StaticIpSpec),
    /// Re-create or correct an entitled, provisioned service's queue.
    RestoreQueue(QueueSpec),
    /// Remove a PPP secret we own whose service is not entitled.
    RemovePppoe {
        /// Secret name.
        name: RosName,
        /// Its owner.
        owner: OwnerTag,
    },
    /// Remove an address-list entry we own whose service is not entitled.
    RemoveStaticIp {
        /// Address.
        address: Ipv4Addr,
        /// List.
        list: RosName,
        /// Its owner.
        owner: OwnerTag,
    },
    /// Remove a queue we own whose service is not entitled.
    RemoveQueue {
        /// Queue name.
        name: RosName,
        /// Its owner.
        owner: OwnerTag,
    },
    /// Create our missing hotspot user of a live voucher.
    AddVoucherUser(HotspotUserSpec),
    /// Expire an active voucher by what the router shows.
    ExpireVoucher {
        /// Voucher.
        voucher: VoucherId,
        /// Why.
        reason: VoucherExpiryReason,
    },
}

impl ReconcileAction {
    /// A short key for report counts (`sessions_removed`, `users_disabled`, ...).
    pub fn key(&self) -> &'static str {
        match self {
            ReconcileAction::RemoveHotspotSessions { .. } => "sessions_removed",
            ReconcileAction::DisableHotspotUser { .. } => "users_disabled",
            ReconcileAction::EnableHotspotUser { .. } => "users_enabled",
            ReconcileAction::RemoveIpBinding { .. } => "bindings_removed",
            ReconcileAction::RestorePppoe(_) => "secrets_restored",
            ReconcileAction::RestoreStaticIp(_) => "static_ips_restored",
            ReconcileAction::RestoreQueue(_) => "queues_restored",
            ReconcileAction::RemovePppoe { .. } => "secrets_removed",
            ReconcileAction::RemoveStaticIp { .. } => "static_ips_removed",
            ReconcileAction::RemoveQueue { .. } => "queues_removed",
            ReconcileAction::AddVoucherUser(_) => "voucher_users_added",
            ReconcileAction::ExpireVoucher { .. } => "vouchers_expired_by_sync",
        }
    }
}

/// Parses an address as RouterOS shows it in an address list (`10.0.0.2` or `10.0.0.2/32`).
fn list_address(raw: &str) -> Option<Ipv4Addr> {
    let host = raw.strip_suffix("/32").unwrap_or(raw);
    host.parse().ok()
}

fn owner_of(comment: Option<&String>) -> Option<OwnerTag> {
    comment.and_then(|c| OwnerTag::from_comment(c))
}

struct Entitlement<'a> {
    now: DateTime<Utc>,
    today: NaiveDate,
    subscribers: HashMap<SubscriberId, &'a Subscriber>,
    services: HashMap<ServiceId, &'a Service>,
    vouchers: HashMap<VoucherId, bool>,
}

impl Entitlement<'_> {
    fn entitled(&self, owner: OwnerTag) -> bool {
        match owner {
            OwnerTag::Subscriber(id) => self
                .subscribers
                .get(&id)
                .is_some_and(|s| s.active && !is_expired(s.paid_until, self.now)),
            OwnerTag::Service(id) => self.services.get(&id).is_some_and(|s| is_entitled(s, self.today)),
            OwnerTag::Voucher(id) => self.vouchers.get(&id).copied().unwrap_or(false),
        }
    }
}

/// The actions that bring `observed` in line with `desired`. `observed` must
/// hold every menu of [`RECONCILE_MENUS`].
pub fn reconcile(desired: &Desired<'_>, observed: &RouterSnapshot) -> Vec<ReconcileAction> {
    let mut actions = Vec::new();

    // Records whose router object is gone (or used up).
    let mut voucher_ok = HashMap::new();
    let user_names: HashSet<&str> = observed.hotspot_users.iter().map(|u| u.name.as_str()).collect();
    for v in desired.vouchers {
        let activated_since = v.started_at.is_some_and(|at| at >= desired.observed_at);
        let elsewhere = desired.voucher_users_elsewhere.contains(&v.id);
        let synced = match voucher_sync(v, &observed.hotspot_users) {
            _ if activated_since => None,
            Some(VoucherExpiryReason::RouterUserGone) if elsewhere => None,
            other => other,
        };
        if let Some(reason) = synced {
            actions.push(ReconcileAction::ExpireVoucher {
                voucher: v.id,
                reason,
            });
        }
        let live = matches!(v.status, VoucherStatus::Unused | VoucherStatus::Active)
            && voucher_time_expiry(v, desired.now) == VoucherAction::Keep
            && synced.is_none();
        voucher_ok.insert(v.id, live);
        let wanted_here = v.status == VoucherStatus::Unused || (elsewhere && !activated_since);
        if live && wanted_here && !user_names.contains(v.code.as_str()) {
            actions.push(ReconcileAction::AddVoucherUser(voucher_user_spec(v)));
        }
    }
    let ent = Entitlement {
        now: desired.now,
        today: desired.today,
        subscribers: desired.subscribers.iter().map(|s| (s.id, s)).collect(),
        services: desired.services.iter().map(|s| (s.id, s)).collect(),
        vouchers: voucher_ok,
    };

    // Hotspot users and their sessions.
    let mut users_by_name: HashMap<&str, Vec<Option<OwnerTag>>> = HashMap::new();
    for u in &observed.hotspot_users {
        users_by_name
            .entry(u.name.as_str())
            .or_default()
            .push(owner_of(u.comment.as_ref()));
    }
    let mut session_ids = Vec::new();
    for s in &observed.hotspot_active {
        let Some(owners) = s.user.as_deref().and_then(|u| users_by_name.get(u)) else {
            continue;
        };
        // Ours only if every user of that name is ours, and none is entitled.
        let ours_and_unentitled = owners.iter().all(|o| o.is_some_and(|tag| !ent.entitled(tag)));
        if ours_and_unentitled {
            session_ids.push(s.id.clone());
        }
    }
    if !session_ids.is_empty() {
        actions.push(ReconcileAction::RemoveHotspotSessions { ids: session_ids });
    }
    for u in &observed.hotspot_users {
        let Some(owner) = owner_of(u.comment.as_ref()) else {
            continue;
        };
        // Act by name only when the name is unambiguous.
        if users_by_name.get(u.name.as_str()).map_or(0, Vec::len) != 1 {
            continue;
        }
        let Ok(name) = RosName::parse("hotspot_user", &u.name) else {
            continue;
        };
        let entitled = ent.entitled(owner);
        if !entitled && !u.disabled {
            actions.push(ReconcileAction::DisableHotspotUser { name, owner });
        } else if entitled && u.disabled && matches!(owner, OwnerTag::Subscriber(_)) {
            actions.push(ReconcileAction::EnableHotspotUser { name, owner });
        }
    }

    // ip-bindings: remove our bypass/regular bindings of unentitled owners,
    // unless the MAC also has one of ours that must stay (entitled or blocking).
    // One action per (MAC, owner): the driver removes only that owner's bindings.
    let mut keep_macs = BTreeSet::new();
    let mut drop_macs: BTreeMap<MacAddress, Vec<OwnerTag>> = BTreeMap::new();
    for b in &observed.ip_bindings {
        let (Some(owner), Some(mac)) = (owner_of(b.comment.as_ref()), b.mac) else {
            continue;
        };
        if b.kind == BindingType::Blocked || ent.entitled(owner) {
            keep_macs.insert(mac);
        } else {
            let owners = drop_macs.entry(mac).or_default();
            if !owners.contains(&owner) {
                owners.push(owner);
            }
        }
    }
    for (mac, owners) in drop_macs {
        if !keep_macs.contains(&mac) {
            actions.extend(
                owners
                    .into_iter()
                    .map(|owner| ReconcileAction::RemoveIpBinding { mac, owner }),
            );
        }
    }

    // Owned service objects of unentitled owners.
    // By name only when every object of that name is ours (names are unique on
    // RouterOS, but a driver removing "ours by name" must never meet a twin).
    let all_ours = |names: &mut dyn Iterator<Item = (&String, Option<&String>)>, name: &str| {
        names
            .filter(|(n, _)| n.as_str() == name)
            .all(|(_, c)| owner_of(c).is_some())
    };
    for s in &observed.ppp_secrets {
        let Some(owner) = owner_of(s.comment.as_ref()) else {
            continue;
        };
        let mut names = observed.ppp_secrets.iter().map(|x| (&x.name, x.comment.as_ref()));
        if !ent.entitled(owner) && all_ours(&mut names, &s.name) {
            if let Ok(name) = RosName::parse("ppp_secret", &s.name) {
                actions.push(ReconcileAction::RemovePppoe { name, owner });
            }
        }
    }
    for e in &observed.address_list {
        let Some(owner) = owner_of(e.comment.as_ref()) else {
            continue;
        };
        if !ent.entitled(owner) {
            if let (Some(address), Ok(list)) =
                (list_address(&e.address), RosName::parse("address_list", &e.list))
            {
                actions.push(ReconcileAction::RemoveStaticIp { address, list, owner });
            }
        }
    }
    for q in &observed.queues {
        let Some(owner) = owner_of(q.comment.as_ref()) else {
            continue;
        };
        let mut names = observed.queues.iter().map(|x| (&x.name, x.comment.as_ref()));
        if !ent.entitled(owner) && all_ours(&mut names, &q.name) {
            if let Ok(name) = RosName::parse("queue", &q.name) {
                actions.push(ReconcileAction::RemoveQueue { name, owner });
            }
        }
    }

    // What entitled, provisioned services are missing.
    for svc in desired.services {
        if !svc.provisioned || !is_entitled(svc, desired.today) {
            continue;
        }
        let mine = OwnerTag::Service(svc.id);
        match &svc.connection {
            Connection::Pppoe { username, .. } => {
                let same: Vec<_> = observed
                    .ppp_secrets
                    .iter()
                    .filter(|s| s.name == username.as_str())
                    .collect();
                // Missing, or ours and disabled; a secret of that name that is
                // not ours belongs to the operator.
                let restore = same.is_empty()
                    || (same.iter().all(|s| owner_of(s.comment.as_ref()) == Some(mine))
                        && same.iter().any(|s| s.disabled));
                if restore {
                    if let Some(spec) = pppoe_spec(svc) {
                        actions.push(ReconcileAction::RestorePppoe(spec));
                    }
                }
            }
            Connection::StaticIp { address } => {
                let present = observed.address_list.iter().any(|e| {
                    e.list == desired.static_ip_list.as_str() && list_address(&e.address) == Some(*address)
                });
                if !present {
                    if let Some(spec) = static_ip_spec(svc, desired.static_ip_list) {
                        actions.push(ReconcileAction::RestoreStaticIp(spec));
                    }
                }
            }
        }
        let Some(plan) = desired.plans.get(&svc.plan_id) else {
            continue;
        };
        let Ok(Some(spec)) = queue_spec(svc, plan) else {
            continue;
        };
        let Ok(name) = queue_name(svc.id) else {
            continue;
        };
        let same: Vec<_> = observed
            .queues
            .iter()
            .filter(|q| q.name == name.as_str())
            .collect();
        let restore = same.is_empty()
            || (same.iter().all(|q| owner_of(q.comment.as_ref()) == Some(mine))
                && same.iter().any(|q| {
                    q.max_limit
                        .as_deref()
                        .and_then(|m| RateLimit::parse("max_limit", m).ok())
                        != Some(spec.limit)
                }));
        if restore {
            actions.push(ReconcileAction::RestoreQueue(spec));
        }
    }
    actions
}
