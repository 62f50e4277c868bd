//! Reboots: what a router keeps (its configuration) and what it loses (every
//! session, host, cookie and dynamic address-list entry; its uptime).

use std::collections::BTreeMap;

use super::{RouterState, Row};

/// Menus whose items exist only while the router runs.
const RUNTIME_MENUS: [&str; 4] = [
    "/ip/hotspot/active",
    "/ip/hotspot/host",
    "/ip/hotspot/cookie",
    "/ppp/active",
];

/// A router's configuration at one moment: every item of every menu but the
/// runtime ones, without dynamic (timed) address-list entries.
#[derive(Debug, Clone, Default)]
pub struct SavedConfig {
    tables: BTreeMap<&'static str, BTreeMap<u64, Row>>,
}

impl SavedConfig {
    /// Items saved, over all menus.
    pub fn len(&self) -> usize {
        self.tables.values().map(BTreeMap::len).sum()
    }

    /// Nothing saved.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RouterState {
    /// The configuration as it is now.
    pub(crate) fn save_config(&self) -> SavedConfig {
        let tables = self
            .tables
            .iter()
            .filter(|(menu, _)| !RUNTIME_MENUS.contains(menu))
            .map(|(menu, t)| {
                let rows = t
                    .rows
                    .iter()
                    .filter(|(_, r)| r.expires.is_none())
                    .map(|(id, r)| (*id, r.clone()))
                    .collect();
                (*menu, rows)
            })
            .collect();
        SavedConfig { tables }
    }

    /// Restarts the router: every session ends (reason `reboot`, in
    /// [`removals`](Self::removals)), hosts, cookies, PPP sessions and dynamic
    /// address-list entries are gone, uptime starts again. With `config`, the
    /// configuration menus hold exactly the saved items afterwards (a restored
    /// backup, or changes the router had not written to flash yet); item ids
    /// are still never reused. Returns how many runtime items were lost.
    pub(crate) fn reboot(&mut self, config: Option<&SavedConfig>) -> usize {
        let mut lost = 0;
        let sessions: Vec<u64> = self
            .table("/ip/hotspot/active")
            .map(|t| t.rows.keys().copied().collect())
            .unwrap_or_default();
        for id in sessions {
            lost += usize::from(self.end_hotspot_session(id, "reboot"));
        }
        for menu in RUNTIME_MENUS {
            let ids: Vec<u64> = self
                .table(menu)
                .map(|t| t.rows.keys().copied().collect())
                .unwrap_or_default();
            for id in ids {
                lost += usize::from(self.remove_row(menu, id, "reboot").is_some());
            }
        }
        let dynamic: Vec<u64> = self
            .table("/ip/firewall/address-list")
            .map(|t| {
                t.rows
                    .values()
                    .filter(|r| r.expires.is_some())
                    .map(|r| r.id)
                    .collect()
            })
            .unwrap_or_default();
        for id in dynamic {
            lost += usize::from(
                self.remove_row("/ip/firewall/address-list", id, "reboot")
                    .is_some(),
            );
        }
        if let Some(saved) = config {
            for (menu, rows) in &saved.tables {
                if let Some(table) = self.table_mut(menu) {
                    let top = rows.keys().next_back().map_or(0, |id| id + 1);
                    table.next_id = table.next_id.max(top);
                    table.replace(rows.clone());
                }
            }
        }
        // A rebooted router sends no accounting Stop for what it lost.
        self.radius = crate::sim::radius::RadiusState::default();
        self.boot = self.now();
        self.quiet_until = None;
        lost
    }
}
