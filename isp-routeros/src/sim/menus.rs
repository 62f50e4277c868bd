//! The menus the simulator serves: their properties, value kinds and commands.

/// How a property's value is checked and normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Any text.
    Text,
    /// `true`/`false`/`yes`/`no`, shown as `true`/`false`.
    Bool,
    /// A RouterOS time value, shown in router form (`1h30m`).
    Time,
    /// A non-negative integer.
    Int,
    /// A MAC address, shown in upper case.
    Mac,
    /// An IPv4 address.
    Ip,
    /// An address-list address: IPv4, prefix (`/32` shown bare), range or DNS name.
    ListAddress,
    /// Queue targets: comma-separated IPv4 addresses or prefixes, shown with a prefix length.
    Targets,
    /// `UP/DOWN` bit rates with `k`/`M`/`G` suffixes, shown in bit/s (`10000000/20000000`).
    Rate,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    /// The name of an item of another menu (`profile`).
    Ref(&'static str),
    /// Server names of `/ip/hotspot`, or `all`.
    HotspotServer,
    /// Computed or maintained by the router: cannot be written.
    ReadOnly,
}

/// One property of a menu.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    /// Shown when not set (`None`: absent until set).
    pub(crate) default: Option<&'static str>,
}

const fn f(name: &'static str, kind: Kind, default: Option<&'static str>) -> Field {
    Field { name, kind, default }
}

/// A menu: its path, commands and properties in the order a router prints them.
#[derive(Debug)]
pub(crate) struct MenuSpec {
    pub(crate) path: &'static str,
    /// Commands beyond `print`, `getall` and `listen`.
    pub(crate) commands: &'static [&'static str],
    pub(crate) fields: &'static [Field],
    /// A single item without `.id` (`/system/identity`).
    pub(crate) singleton: bool,
    /// Properties that must be given to `add`.
    pub(crate) required: &'static [&'static str],
}

impl MenuSpec {
    pub(crate) fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub(crate) fn has_command(&self, cmd: &str) -> bool {
        matches!(cmd, "print" | "getall" | "listen") || self.commands.contains(&cmd)
    }

    /// Items may be named in place of their id.
    pub(crate) fn named(&self) -> bool {
        self.field("name").is_some_and(|f| f.kind != Kind::ReadOnly)
    }
}

use Kind::*;

const EDIT: &[&str] = &["add", "set", "remove", "disable", "enable", "unset"];
const EDIT_NO_TOGGLE: &[&str] = &["add", "set", "remove", "unset"];

pub(crate) static HOTSPOT_SERVER: MenuSpec = MenuSpec {
    path: "/ip/hotspot",
    commands: &["set", "disable", "enable"],
    fields: &[
        f("name", Text, None),
        f("interface", Text, Some("bridge")),
        f("address-pool", Text, Some("none")),
        f("profile", Text, Some("default")),
        f("idle-timeout", Text, Some("5m")),
        f("keepalive-timeout", Text, Some("none")),
        f("addresses-per-mac", Text, Some("2")),
        f("invalid", ReadOnly, Some("false")),
        f("HTTPS", ReadOnly, Some("false")),
        f("disabled", Bool, Some("false")),
    ],
    singleton: false,
    required: &["name"],
};

pub(crate) static HOTSPOT_USER_PROFILE: MenuSpec = MenuSpec {
    path: "/ip/hotspot/user/profile",
    commands: EDIT_NO_TOGGLE,
    fields: &[
        f("name", Text, None),
        f("idle-timeout", Text, Some("none")),
        f("keepalive-timeout", Text, Some("2m")),
        f("status-autorefresh", Text, Some("1m")),
        f("shared-users", Text, Some("1")),
        f("rate-limit", Text, None),
        f("add-mac-cookie", Bool, Some("true")),
        f("mac-cookie-timeout", Time, Some("3d")),
        f("address-list", Text, None),
        f("transparent-proxy", Bool, Some("false")),
        f("default", ReadOnly, Some("false")),
    ],
    singleton: false,
    required: &["name"],
};

pub(crate) static HOTSPOT_USER: MenuSpec = MenuSpec {
    path: "/ip/hotspot/user",
    commands: EDIT,
    fields: &[
        f("server", HotspotServer, Some("all")),
        f("name", Text, None),
        f("password", Text, None),
        f("profile", Ref("/ip/hotspot/user/profile"), Some("default")),
        f("mac-address", Mac, None),
        f("address", Ip, None),
        f("email", Text, None),
        f("routes", Text, None),
        f("limit-uptime", Time, None),
        f("limit-bytes-in", Int, None),
        f("limit-bytes-out", Int, None),
        f("limit-bytes-total", Int, None),
        f("uptime", ReadOnly, Some("0s")),
        f("bytes-in", ReadOnly, Some("0")),
        f("bytes-out", ReadOnly, Some("0")),
        f("packets-in", ReadOnly, Some("0")),
        f("packets-out", ReadOnly, Some("0")),
        f("dynamic", ReadOnly, Some("false")),
        f("disabled", Bool, Some("false")),
        f("comment", Text, None),
    ],
    singleton: false,
    required: &["name"],
};

pub(crate) static HOTSPOT_ACTIVE: MenuSpec = MenuSpec {
    path: "/ip/hotspot/active",
    commands: &["remove", "login"],
    fields: &[
        f("server", ReadOnly, None),
        f("user", ReadOnly, None),
        f("domain", ReadOnly, None),
        f("address", ReadOnly, None),
        f("mac-address", ReadOnly, None),
        f("login-by", ReadOnly, None),
        f("uptime", ReadOnly, None),
        f("idle-time", ReadOnly, Some("0s")),
        f("session-time-left", ReadOnly, None),
        f("keepalive-timeout", ReadOnly, Some("2m")),
        f("bytes-in", ReadOnly, Some("0")),
        f("bytes-out", ReadOnly, Some("0")),
        f("packets-in", ReadOnly, Some("0")),
        f("packets-out", ReadOnly, Some("0")),
        f("radius", ReadOnly, Some("false")),
        f("blocked", ReadOnly, Some("false")),
    ],
    singleton: false,
    required: &[],
};

pub(crate) static HOTSPOT_HOST: MenuSpec = MenuSpec {
    path: "/ip/hotspot/host",
    commands: &["remove"],
    fields: &[
        f("mac-address", ReadOnly, None),
        f("address", ReadOnly, None),
        f("to-address", ReadOnly, None),
        f("server", ReadOnly, None),
        f("uptime", ReadOnly, None),
        f("idle-time", ReadOnly, Some("0s")),
        f("idle-timeout", ReadOnly, Some("5m")),
        f("host-dead-time", ReadOnly, Some("0s")),
        f("bytes-in", ReadOnly, Some("0")),
        f("bytes-out", ReadOnly, Some("0")),
        f("packets-in", ReadOnly, Some("0")),
        f("packets-out", ReadOnly, Some("0")),
        f("found-by", ReadOnly, None),
        f("authorized", ReadOnly, Some("false")),
        f("bypassed", ReadOnly, Some("false")),
        f("blocked", ReadOnly, Some("false")),
        f("dynamic", ReadOnly, Some("true")),
    ],
    singleton: false,
    required: &[],
};

pub(crate) static HOTSPOT_COOKIE: MenuSpec = MenuSpec {
    path: "/ip/hotspot/cookie",
    commands: &["remove"],
    fields: &[
        f("user", ReadOnly, None),
        f("domain", ReadOnly, None),
        f("mac-address", ReadOnly, None),
        f("expires-in", ReadOnly, None),
    ],
    singleton: false,
    required: &[],
};

pub(crate) static HOTSPOT_IP_BINDING: MenuSpec = MenuSpec {
    path: "/ip/hotspot/ip-binding",
    commands: EDIT,
    fields: &[
        f("mac-address", Mac, None),
        f("address", Ip, None),
        f("to-address", Ip, None),
        f("server", HotspotServer, Some("all")),
        f("type", Enum(&["regular", "bypassed", "blocked"]), Some("regular")),
        f("bypassed", ReadOnly, None),
        f("blocked", ReadOnly, None),
        f("disabled", Bool, Some("false")),
        f("comment", Text, None),
    ],
    singleton: false,
    required: &[],
};

pub(crate) static PPP_PROFILE: MenuSpec = MenuSpec {
    path: "/ppp/profile",
    commands: EDIT_NO_TOGGLE,
    fields: &[
        f("name", Text, None),
        f("local-address", Text, None),
        f("remote-address", Text, None),
        f("rate-limit", Text, None),
        f("use-encryption", Text, Some("default")),
        f("only-one", Text, Some("default")),
        f("change-tcp-mss", Text, Some("default")),
        f("default", ReadOnly, Some("false")),
        f("comment", Text, None),
    ],
    singleton: false,
    required: &["name"],
};

pub(crate) static PPP_SECRET: MenuSpec = MenuSpec {
    path: "/ppp/secret",
    commands: EDIT,
    fields: &[
        f("name", Text, None),
        f(
            "service",
            Enum(&["any", "async", "l2tp", "ovpn", "pppoe", "pptp", "sstp"]),
            Some("any"),
        ),
        f("caller-id", Text, Some("")),
        f("password", Text, Some("")),
        f("profile", Ref("/ppp/profile"), Some("default")),
        f("local-address", Ip, None),
        f("remote-address", Ip, None),
        f("routes", Text, Some("")),
        f("limit-bytes-in", Int, Some("0")),
        f("limit-bytes-out", Int, Some("0")),
        f("ipv6-routes", Text, Some("")),
        f("last-logged-out", ReadOnly, None),
        f("last-caller-id", ReadOnly, None),
        f("last-disconnect-reason", ReadOnly, None),
        f("disabled", Bool, Some("false")),
        f("comment", Text, None),
    ],
    singleton: false,
    required: &["name"],
};

pub(crate) static PPP_ACTIVE: MenuSpec = MenuSpec {
    path: "/ppp/active",
    commands: &["remove"],
    fields: &[
        f("name", ReadOnly, None),
        f("service", ReadOnly, None),
        f("caller-id", ReadOnly, None),
        f("encoding", ReadOnly, Some("")),
        f("address", ReadOnly, None),
        f("uptime", ReadOnly, None),
        f("session-id", ReadOnly, None),
        f("limit-bytes-in", ReadOnly, Some("0")),
        f("limit-bytes-out", ReadOnly, Some("0")),
        f("radius", ReadOnly, Some("false")),
    ],
    singleton: false,
    required: &[],
};

pub(crate) static ADDRESS_LIST: MenuSpec = MenuSpec {
    path: "/ip/firewall/address-list",
    commands: EDIT,
    fields: &[
        f("list", Text, None),
        f("address", ListAddress, None),
        f("creation-time", ReadOnly, None),
        f("timeout", Time, None),
        f("dynamic", ReadOnly, Some("false")),
        f("disabled", Bool, Some("false")),
        f("comment", Text, None),
    ],
    singleton: false,
    required: &["list", "address"],
};

pub(crate) static FIREWALL_FILTER: MenuSpec = MenuSpec {
    path: "/ip/firewall/filter",
    commands: EDIT,
    fields: &[
        f("chain", Text, None),
        f(
            "action",
            Enum(&[
                "accept",
                "drop",
                "reject",
                "fasttrack-connection",
                "jump",
                "return",
                "passthrough",
                "log",
                "add-src-to-address-list",
                "add-dst-to-address-list",
                "tarpit",
            ]),
            Some("accept"),
        ),
        f("src-address", Text, None),
        f("dst-address", Text, None),
        f("src-address-list", Text, None),
        f("dst-address-list", Text, None),
        f("in-interface", Text, None),
        f("in-interface-list", Text, None),
        f("out-interface", Text, None),
        f("out-interface-list", Text, None),
        f("connection-state", Text, None),
        f("protocol", Text, None),
        f("bytes", ReadOnly, Some("0")),
        f("packets", ReadOnly, Some("0")),
        f("invalid", ReadOnly, Some("false")),
        f("dynamic", ReadOnly, Some("false")),
        f("disabled", Bool, Some("false")),
        f("comment", Text, None),
    ],
    singleton: false,
    required: &["chain"],
};

pub(crate) static QUEUE_SIMPLE: MenuSpec = MenuSpec {
    path: "/queue/simple",
    commands: EDIT,
    fields: &[
        f("name", Text, None),
        f("target", Targets, None),
        f("parent", Text, Some("none")),
        f("packet-marks", Text, Some("")),
        f("priority", Text, Some("8/8")),
        f("queue", Text, Some("default-small/default-small")),
        f("limit-at", Rate, Some("0/0")),
        f("max-limit", Rate, Some("0/0")),
        f("burst-limit", Rate, Some("0/0")),
        f("burst-threshold", Rate, Some("0/0")),
        f("burst-time", Text, Some("0s/0s")),
        f("bucket-size", Text, Some("0.1/0.1")),
        f("dynamic", ReadOnly, Some("false")),
        f("invalid", ReadOnly, Some("false")),
        f("disabled", Bool, Some("false")),
        f("comment", Text, None),
    ],
    singleton: false,
    required: &["target"],
};

pub(crate) static SYSTEM_RESOURCE: MenuSpec = MenuSpec {
    path: "/system/resource",
    commands: &[],
    fields: &[
        f("uptime", ReadOnly, None),
        f("version", ReadOnly, None),
        f("build-time", ReadOnly, Some("2025-03-11 11:59:04")),
        f("factory-software", ReadOnly, Some("7.1")),
        f("free-memory", ReadOnly, Some("912162816")),
        f("total-memory", ReadOnly, Some("1073741824")),
        f("cpu", ReadOnly, Some("QEMU Virtual CPU")),
        f("cpu-count", ReadOnly, Some("1")),
        f("cpu-frequency", ReadOnly, Some("2400")),
        f("cpu-load", ReadOnly, Some("1")),
        f("free-hdd-space", ReadOnly, Some("83361792")),
        f("total-hdd-space", ReadOnly, Some("125566976")),
        f("architecture-name", ReadOnly, Some("x86_64")),
        f("board-name", ReadOnly, Some("CHR")),
        f("platform", ReadOnly, Some("MikroTik")),
    ],
    singleton: true,
    required: &[],
};

pub(crate) static SYSTEM_IDENTITY: MenuSpec = MenuSpec {
    path: "/system/identity",
    commands: &["set"],
    fields: &[f("name", Text, Some("MikroTik"))],
    singleton: true,
    required: &[],
};

pub(crate) static SYSTEM_CLOCK: MenuSpec = MenuSpec {
    path: "/system/clock",
    commands: &["set"],
    fields: &[
        f("time", ReadOnly, None),
        f("date", ReadOnly, None),
        f("time-zone-autodetect", Bool, Some("false")),
        f("time-zone-name", Text, Some("UTC")),
        f("gmt-offset", ReadOnly, Some("+00:00")),
        f("dst-active", ReadOnly, Some("false")),
    ],
    singleton: true,
    required: &[],
};

/// Every menu served.
pub(crate) static MENUS: &[&MenuSpec] = &[
    &HOTSPOT_SERVER,
    &HOTSPOT_USER_PROFILE,
    &HOTSPOT_USER,
    &HOTSPOT_ACTIVE,
    &HOTSPOT_HOST,
    &HOTSPOT_COOKIE,
    &HOTSPOT_IP_BINDING,
    &PPP_PROFILE,
    &PPP_SECRET,
    &PPP_ACTIVE,
    &ADDRESS_LIST,
    &FIREWALL_FILTER,
    &QUEUE_SIMPLE,
    &SYSTEM_RESOURCE,
    &SYSTEM_IDENTITY,
    &SYSTEM_CLOCK,
];

/// The menu at `path`.
pub(crate) fn menu(path: &str) -> Option<&'static MenuSpec> {
    MENUS.iter().copied().find(|m| m.path == path)
}

/// Whether `path` is a menu or a directory above one (`/ip`, `/ip/hotspot`).
pub(crate) fn is_dir(path: &str) -> bool {
    MENUS
        .iter()
        .any(|m| m.path == path || m.path.starts_with(&format!("{path}/")))
}
