//! The routers (NASes) allowed to talk to us, each with its own shared secret.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use isp_core::domain::{RouterId, TenantId};
use secrecy::{ExposeSecret, SecretString};

/// A router in RADIUS mode. `Debug` never shows the secret.
#[derive(Clone)]
pub struct Nas {
    /// The router.
    pub router: RouterId,
    /// Its tenant: whose subscribers, vouchers and services it serves.
    pub tenant: TenantId,
    /// Its name (compared with `NAS-Identifier` when several NASes share an address).
    pub name: String,
    /// The address its requests come from.
    pub ip: IpAddr,
    /// Where it accepts Disconnect and CoA requests (`/radius incoming`, port 3799).
    pub incoming: SocketAddr,
    secret: SecretString,
}

impl Nas {
    /// A NAS with its shared secret.
    pub fn new(
        router: RouterId,
        tenant: TenantId,
        name: impl Into<String>,
        ip: IpAddr,
        incoming: SocketAddr,
        secret: impl Into<SecretString>,
    ) -> Self {
        Nas {
            router,
            tenant,
            name: name.into(),
            ip,
            incoming,
            secret: secret.into(),
        }
    }

    /// The shared secret, for signing and checking packets only.
    pub fn secret(&self) -> &[u8] {
        self.secret.expose_secret().as_bytes()
    }
}

impl fmt::Debug for Nas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nas")
            .field("router", &self.router)
            .field("tenant", &self.tenant)
            .field("name", &self.name)
            .field("ip", &self.ip)
            .field("incoming", &self.incoming)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

/// Every NAS, found by source address (and `NAS-Identifier`) or by router.
#[derive(Debug, Clone, Default)]
pub struct NasTable {
    by_ip: HashMap<IpAddr, Vec<Nas>>,
    by_router: HashMap<RouterId, Nas>,
}

impl NasTable {
    /// A table of these NASes.
    pub fn new(nases: impl IntoIterator<Item = Nas>) -> Self {
        let mut t = NasTable::default();
        for n in nases {
            t.by_ip.entry(n.ip).or_default().push(n.clone());
            t.by_router.insert(n.router, n);
        }
        t
    }

    /// The NAS a request from `ip` comes from. When several share the address
    /// (routers behind one NAT, or simulators on loopback), `NAS-Identifier`
    /// must name one of them.
    pub fn lookup(&self, ip: IpAddr, nas_identifier: Option<&str>) -> Option<&Nas> {
        let candidates = self.by_ip.get(&ip)?;
        match (candidates.as_slice(), nas_identifier) {
            ([only], None) => Some(only),
            (all, Some(id)) => all
                .iter()
                .find(|n| n.name == id)
                .or_else(|| (all.len() == 1).then(|| &all[0])),
            _ => None,
        }
    }

    /// The NAS of a router.
    pub fn of_router(&self, router: RouterId) -> Option<&Nas> {
        self.by_router.get(&router)
    }

    /// Number of NASes.
    pub fn len(&self) -> usize {
        self.by_router.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.by_router.is_empty()
    }
}
