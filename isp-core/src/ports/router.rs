use std::fmt::Debug;
use std::net::Ipv4Addr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{
    Ipv4Cidr, MacAddress, OwnerTag, RateLimit, RosDuration, RosName, Router, RouterId, SecretPassword,
    TenantId,
};
use crate::error::{Error, Result};

/// The router menus a [`RouterDriver::snapshot`] can read (one `print` each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Menu {
    /// `/ip/hotspot/active`.
    HotspotActive,
    /// `/ip/hotspot/user`.
    HotspotUsers,
    /// `/ip/hotspot/ip-binding`.
    IpBindings,
    /// `/ppp/secret`.
    PppSecrets,
    /// `/ppp/active`.
    PppActive,
    /// `/ip/firewall/address-list`.
    AddressList,
    /// `/queue/simple`.
    Queues,
}

impl Menu {
    /// The RouterOS menu path (`/ip/hotspot/user`).
    pub fn path(self) -> &'static str {
        match self {
            Menu::HotspotActive => "/ip/hotspot/active",
            Menu::HotspotUsers => "/ip/hotspot/user",
            Menu::IpBindings => "/ip/hotspot/ip-binding",
            Menu::PppSecrets => "/ppp/secret",
            Menu::PppActive => "/ppp/active",
            Menu::AddressList => "/ip/firewall/address-list",
            Menu::Queues => "/queue/simple",
        }
    }

    /// Every menu.
    pub const ALL: [Menu; 7] = [
        Menu::HotspotActive,
        Menu::HotspotUsers,
        Menu::IpBindings,
        Menu::PppSecrets,
        Menu::PppActive,
        Menu::AddressList,
        Menu::Queues,
    ];
}

/// A live hotspot session (`/ip/hotspot/active`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotspotSession {
    /// Router item id (`*1A`).
    pub id: String,
    /// Hotspot user.
    pub user: Option<String>,
    /// Device MAC.
    pub mac: Option<MacAddress>,
    /// Device address.
    pub address: Option<Ipv4Addr>,
    /// Session uptime.
    pub uptime: Option<RosDuration>,
}

/// A hotspot user (`/ip/hotspot/user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotspotUser {
    /// Router item id.
    pub id: String,
    /// User name.
    pub name: String,
    /// Disabled flag.
    pub disabled: bool,
    /// Comment (ownership marker).
    pub comment: Option<String>,
    /// Consumed uptime.
    pub uptime: Option<RosDuration>,
    /// Uptime limit.
    pub limit_uptime: Option<RosDuration>,
}

/// The type of an ip-binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingType {
    /// Normal.
    Regular,
    /// Let through without login.
    Bypassed,
    /// Blocked.
    Blocked,
}

/// A hotspot ip-binding (`/ip/hotspot/ip-binding`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpBinding {
    /// Router item id.
    pub id: String,
    /// MAC.
    pub mac: Option<MacAddress>,
    /// Address.
    pub address: Option<Ipv4Addr>,
    /// Type.
    pub kind: BindingType,
    /// Comment.
    pub comment: Option<String>,
    /// Disabled flag.
    pub disabled: bool,
}

/// A PPP secret (`/ppp/secret`). The password is never read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PppSecret {
    /// Router item id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Profile.
    pub profile: Option<String>,
    /// Disabled flag.
    pub disabled: bool,
    /// Comment.
    pub comment: Option<String>,
}

/// A live PPP session (`/ppp/active`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PppSession {
    /// Router item id.
    pub id: String,
    /// Secret name.
    pub name: String,
    /// Assigned address.
    pub address: Option<Ipv4Addr>,
    /// Caller id (MAC for PPPoE).
    pub caller_id: Option<String>,
}

/// A firewall address-list entry (`/ip/firewall/address-list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressListEntry {
    /// Router item id.
    pub id: String,
    /// List name.
    pub list: String,
    /// Address (as the router shows it).
    pub address: String,
    /// Comment.
    pub comment: Option<String>,
    /// Disabled flag.
    pub disabled: bool,
}

/// A simple queue (`/queue/simple`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleQueue {
    /// Router item id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Target (`10.0.0.2/32`).
    pub target: String,
    /// `max-limit` (`10M/20M`).
    pub max_limit: Option<String>,
    /// Comment.
    pub comment: Option<String>,
    /// Disabled flag.
    pub disabled: bool,
}

/// What a router holds, read with one `print` per requested menu.
/// Menus not requested stay empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterSnapshot {
    /// Active hotspot sessions.
    pub hotspot_active: Vec<HotspotSession>,
    /// Hotspot users.
    pub hotspot_users: Vec<HotspotUser>,
    /// ip-bindings.
    pub ip_bindings: Vec<IpBinding>,
    /// PPP secrets.
    pub ppp_secrets: Vec<PppSecret>,
    /// PPP sessions.
    pub ppp_active: Vec<PppSession>,
    /// Address-list entries.
    pub address_list: Vec<AddressListEntry>,
    /// Simple queues.
    pub queues: Vec<SimpleQueue>,
}

/// Who to cut off a hotspot: a user name and/or the MACs of their devices,
/// and the subject whose router objects these are.
///
/// Only a user and ip-bindings whose comment carries `owner`'s tag are
/// disabled or removed; a same-name user or a binding of the MACs that is not
/// `owner`'s is left alone and reported in [`DisconnectReport::foreign`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotspotTarget {
    /// Hotspot user to disable or remove (and whose sessions to remove).
    pub username: Option<RosName>,
    /// Devices whose sessions, hosts, cookies and ip-bindings to remove.
    pub macs: Vec<MacAddress>,
    /// The subject: only objects tagged for it are changed; its tagged
    /// ip-bindings go whatever their MAC.
    pub owner: OwnerTag,
    /// Remove the user (a voucher's) instead of disabling it (a subscriber's).
    pub remove_user: bool,
}

/// A router object a job would have acted on by name or MAC, left alone
/// because its comment does not carry the subject's owner tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignObject {
    /// The menu it is in.
    pub menu: Menu,
    /// Its name (a user's name, a binding's MAC, an entry's address).
    pub name: String,
}

impl ForeignObject {
    /// `"/ip/hotspot/user alice"`: the menu and the name, for reports.
    pub fn describe(&self) -> String {
        format!("{} {}", self.menu.path(), self.name)
    }
}

/// What a disconnect did on one router. All counts may be zero: the router
/// confirmed there was nothing left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisconnectReport {
    /// Active sessions removed.
    pub sessions_removed: u32,
    /// ip-bindings removed.
    pub bindings_removed: u32,
    /// Hosts removed.
    pub hosts_removed: u32,
    /// Cookies removed.
    pub cookies_removed: u32,
    /// True when the hotspot user existed and is now disabled.
    pub user_disabled: bool,
    /// True when the hotspot user existed and is now removed ([`HotspotTarget::remove_user`]).
    pub user_removed: bool,
    /// Same-name users and same-MAC bindings that are not the subject's, left alone.
    pub foreign: Vec<ForeignObject>,
}

/// A hotspot user to create (vouchers).
#[derive(Debug, Clone, PartialEq)]
pub struct HotspotUserSpec {
    /// Name.
    pub name: RosName,
    /// Password (none: the name is the code).
    pub password: Option<SecretPassword>,
    /// Profile.
    pub profile: Option<RosName>,
    /// Uptime limit.
    pub limit_uptime: Option<RosDuration>,
    /// Bind to a MAC.
    pub mac: Option<MacAddress>,
    /// Owner, written into the comment.
    pub owner: OwnerTag,
}

/// A PPPoE secret to create or update.
#[derive(Debug, Clone, PartialEq)]
pub struct PppoeSpec {
    /// Secret name.
    pub username: RosName,
    /// Password.
    pub password: SecretPassword,
    /// Profile.
    pub profile: RosName,
    /// Owner, written into the comment.
    pub owner: OwnerTag,
}

/// A static-IP allow rule (an address-list entry).
#[derive(Debug, Clone, PartialEq)]
pub struct StaticIpSpec {
    /// Customer address.
    pub address: Ipv4Addr,
    /// Address list (`isp-allowed`).
    pub list: RosName,
    /// Owner, written into the comment.
    pub owner: OwnerTag,
}

/// A plan's rate limit as a simple queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    /// Queue name.
    pub name: RosName,
    /// Target.
    pub target: Ipv4Cidr,
    /// `max-limit`.
    pub limit: RateLimit,
    /// Owner, written into the comment.
    pub owner: OwnerTag,
}

/// A router's health, from `/system/resource`, `/system/identity`, `/system/clock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterHealth {
    /// `/system/identity` name.
    pub identity: String,
    /// RouterOS version.
    pub version: Option<String>,
    /// Uptime.
    pub uptime: Option<RosDuration>,
    /// CPU load percent.
    pub cpu_load: Option<u8>,
    /// Free memory, bytes.
    pub free_memory: Option<u64>,
    /// Total memory, bytes.
    pub total_memory: Option<u64>,
    /// The router's clock, as UTC when its zone is known.
    pub clock: Option<DateTime<Utc>>,
}

/// What the engine needs from a router, in domain words.
///
/// One driver serves every router; it keeps a small connection pool per router,
/// so it logs in once per router, not once per user.
///
/// # Contract
/// - `Ok` means the router confirmed: the object was removed, or is confirmed
///   absent (a `no such item` on remove counts as already gone).
/// - Objects the driver creates carry [`OwnerTag::comment`] in their comment;
///   removals and changes by name, MAC or address only touch objects whose
///   comment carries the subject's tag.
/// - Connection loss and timeouts are transient ([`crate::Error::Unavailable`]);
///   refused logins are [`crate::Error::Authentication`] without the password;
///   `already have ...` on add is [`crate::Error::Conflict`].
/// - Reads use one `print` per menu per call, not one per user.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RouterDriver: Send + Sync + Debug {
    /// Reads the requested menus.
    async fn snapshot(&self, router: &Router, menus: &[Menu]) -> Result<RouterSnapshot>;

    /// Cuts off each target on this router: removes active sessions (by user or
    /// MAC), hosts, cookies, the non-blocking ip-bindings tagged for the
    /// target's owner, and disables (or removes) the user if it is the owner's.
    /// Objects that are not the owner's are left alone and reported.
    /// Reads each menu once for all targets. Returns one result per target, in order.
    async fn disconnect_hotspot(
        &self,
        router: &Router,
        targets: &[HotspotTarget],
    ) -> Result<Vec<Result<DisconnectReport>>>;

    /// Removes active hotspot sessions by item id; already-gone ids count as removed.
    async fn remove_hotspot_sessions(&self, router: &Router, ids: &[String]) -> Result<u32>;

    /// Adds a blocked ip-binding for a MAC (idempotent).
    async fn block_device(&self, router: &Router, mac: MacAddress, owner: OwnerTag) -> Result<()>;

    /// Removes our blocked ip-bindings of a MAC (idempotent).
    async fn unblock_device(&self, router: &Router, mac: MacAddress) -> Result<()>;

    /// Removes, per `(mac, owner)`, the non-blocking (regular and bypassed)
    /// ip-bindings of the MAC whose comment carries that owner's tag: one
    /// answer per pair, in order, with how many were removed (0: none left),
    /// or one error for all. Blocks and other owners' bindings stay. Drivers
    /// read the menu once and remove with one command for the whole list.
    async fn remove_ip_bindings(
        &self,
        router: &Router,
        bindings: &[(MacAddress, OwnerTag)],
    ) -> Result<Vec<Result<u32>>>;

    /// Disables or enables `owner`'s hotspot user by name. Absent user:
    /// `NotFound`; a same-name user that is not `owner`'s is left alone
    /// (`Conflict`).
    async fn set_hotspot_user_disabled(
        &self,
        router: &Router,
        name: &RosName,
        owner: OwnerTag,
        disabled: bool,
    ) -> Result<()>;

    /// Disables (`true`) or enables (`false`) several owners' hotspot users
    /// by name: one answer per change, in order (absent user: `NotFound`;
    /// not the owner's: `Conflict`, left alone), or one error for all.
    /// Drivers should read and write each menu once for the whole list; the
    /// default calls [`RouterDriver::set_hotspot_user_disabled`] per user.
    async fn set_hotspot_users_disabled(
        &self,
        router: &Router,
        changes: &[(RosName, OwnerTag, bool)],
    ) -> Result<Vec<Result<()>>> {
        let mut out = Vec::with_capacity(changes.len());
        for (name, owner, disabled) in changes {
            out.push(
                self.set_hotspot_user_disabled(router, name, *owner, *disabled)
                    .await,
            );
        }
        Ok(out)
    }

    /// Adds a hotspot user; returns its item id. Name taken: `Conflict`.
    async fn add_hotspot_user(&self, router: &Router, spec: &HotspotUserSpec) -> Result<String>;

    /// Removes `owner`'s hotspot user and its active sessions. `Ok(false)`
    /// when it was already gone; a same-name user that is not `owner`'s is
    /// left alone (`Conflict`).
    async fn remove_hotspot_user(&self, router: &Router, name: &RosName, owner: OwnerTag) -> Result<bool>;

    /// Creates the PPPoE secret, or updates and enables ours if it exists.
    async fn provision_pppoe(&self, router: &Router, spec: &PppoeSpec) -> Result<()>;

    /// Removes `owner`'s PPPoE secret and drops its active sessions (absent:
    /// `Ok`; a same-name secret that is not `owner`'s: `Conflict`, left alone
    /// with its sessions).
    async fn deprovision_pppoe(&self, router: &Router, username: &RosName, owner: OwnerTag) -> Result<()>;

    /// Adds the address-list entry (present: `Ok`).
    async fn provision_static_ip(&self, router: &Router, spec: &StaticIpSpec) -> Result<()>;

    /// Removes `owner`'s address-list entries for `address` in `list`
    /// (absent: `Ok`); entries of other owners and the operator's stay.
    async fn deprovision_static_ip(
        &self,
        router: &Router,
        address: Ipv4Addr,
        list: &RosName,
        owner: OwnerTag,
    ) -> Result<()>;

    /// Creates or updates the simple queue named in `spec`.
    async fn set_rate_limit(&self, router: &Router, spec: &QueueSpec) -> Result<()>;

    /// Removes `owner`'s simple queue `name` (absent: `Ok`; not `owner`'s:
    /// `Conflict`, left alone).
    async fn remove_rate_limit(&self, router: &Router, name: &RosName, owner: OwnerTag) -> Result<()>;

    /// Identity, resources and clock.
    async fn health(&self, router: &Router) -> Result<RouterHealth>;

    /// New and changed hotspot sessions as the router reports them (the
    /// RouterOS API's `listen` on `/ip/hotspot/active`), so that a voucher's
    /// first login is seen within a second. Sessions that exist when the
    /// stream starts are not replayed: poll them with [`RouterDriver::snapshot`].
    /// The stream ends with an error when the connection drops. A transport
    /// that cannot stream (REST) answers `Rejected`; the caller then polls.
    async fn watch_hotspot_sessions(
        &self,
        router: &Router,
    ) -> Result<futures::stream::BoxStream<'static, Result<HotspotSession>>> {
        Err(Error::Rejected {
            service: format!("router {}", router.name),
            detail: "this transport cannot stream hotspot sessions; they are polled".into(),
        })
    }
}

/// Where routers and their credentials come from (configuration or a table).
///
/// # Contract
/// `routers_of` returns enabled and disabled routers; jobs skip disabled ones.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RouterDirectory: Send + Sync + Debug {
    /// Every router of a tenant.
    async fn routers_of(&self, tenant: TenantId) -> Result<Vec<Router>>;
    /// One router (`NotFound` if unknown).
    async fn router(&self, id: RouterId) -> Result<Router>;
    /// Every router.
    async fn all_routers(&self) -> Result<Vec<Router>>;
}
