//! The seven rows, and what they share: what the simulators recorded.

pub(crate) mod billing;
pub(crate) mod grant;
pub(crate) mod lag;
pub(crate) mod memory;
pub(crate) mod query;
pub(crate) mod reconcile;
pub(crate) mod sweep;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::daemon::unix_ms;
use crate::scenario::{sub_of_username, Fleet, RouterCost};

/// How big each row is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    pub(crate) quick: bool,
    /// Injected round-trip latency of every simulated router.
    pub(crate) latency: Duration,
    /// The simulated routers' own work per command and per item.
    pub(crate) router_cost: RouterCost,
    pub(crate) lag_subscribers: i64,
    pub(crate) lag_expiries: i64,
    pub(crate) lag_spread: Duration,
    pub(crate) sweep_expired: i64,
    pub(crate) naive_sample: i64,
    pub(crate) query_rows: i64,
    pub(crate) billing_services: i64,
    pub(crate) reconcile_sessions: i64,
    pub(crate) memory_subscribers: i64,
    pub(crate) grant_subscribers: i64,
    pub(crate) grant_count: i64,
    pub(crate) grant_spread: Duration,
    pub(crate) grant_naive_sample: i64,
}

impl Scale {
    pub(crate) fn full(latency: Duration) -> Scale {
        Scale {
            quick: false,
            latency,
            router_cost: RouterCost::DEFAULT,
            lag_subscribers: 100_000,
            lag_expiries: 1_000,
            lag_spread: Duration::from_secs(60),
            sweep_expired: 10_000,
            naive_sample: 1_000,
            query_rows: 1_000_000,
            billing_services: 100_000,
            reconcile_sessions: 1_000,
            memory_subscribers: 1_000_000,
            grant_subscribers: 10_000,
            grant_count: 1_000,
            grant_spread: Duration::from_secs(60),
            grant_naive_sample: 100,
        }
    }

    pub(crate) fn quick(latency: Duration) -> Scale {
        Scale {
            quick: true,
            latency,
            router_cost: RouterCost::DEFAULT,
            lag_subscribers: 10_000,
            lag_expiries: 100,
            lag_spread: Duration::from_secs(10),
            sweep_expired: 1_000,
            naive_sample: 50,
            query_rows: 100_000,
            billing_services: 10_000,
            reconcile_sessions: 100,
            memory_subscribers: 50_000,
            grant_subscribers: 2_000,
            grant_count: 100,
            grant_spread: Duration::from_secs(10),
            grant_naive_sample: 20,
        }
    }
}

/// A hotspot session of a subscriber removed on a simulated router.
#[derive(Debug, Clone)]
pub(crate) struct SessionRemoval {
    pub(crate) sub: i64,
    pub(crate) unix_ms: f64,
    /// The router's index in [`Fleet::handles`].
    pub(crate) router: usize,
}

/// Every `/ip/hotspot/active` removal on every router, for subscribers' users.
pub(crate) fn session_removals(fleet: &Fleet) -> Vec<SessionRemoval> {
    let mut out = Vec::new();
    for (router, h) in fleet.handles().iter().enumerate() {
        for r in h.removals() {
            if r.menu != "/ip/hotspot/active" {
                continue;
            }
            let Some(sub) = r.row.get("user").and_then(|u| sub_of_username(u)) else {
                continue;
            };
            out.push(SessionRemoval {
                sub,
                unix_ms: unix_ms(r.at),
                router,
            });
        }
    }
    out
}

/// Commands each router received (since its log was last cleared), by command,
/// without `/login`.
pub(crate) fn commands(fleet: &Fleet) -> Vec<BTreeMap<String, u64>> {
    fleet
        .handles()
        .iter()
        .map(|h| {
            let mut m = BTreeMap::new();
            for c in h.command_log() {
                if c.command != "/login" {
                    *m.entry(c.command).or_insert(0) += 1;
                }
            }
            m
        })
        .collect()
}

/// Sum of every count.
pub(crate) fn total(m: &[BTreeMap<String, u64>]) -> u64 {
    m.iter().flat_map(|r| r.values()).sum()
}

/// `1.5` as `1.5`, `2` as `2`.
pub(crate) fn num(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else if x.abs() >= 10.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// Logs progress on stderr.
pub(crate) fn progress(msg: impl AsRef<str>) {
    eprintln!("[{}] {}", chrono::Utc::now().format("%H:%M:%S"), msg.as_ref());
}

/// Time with router commands of a batched sweep in flight: each router's log
/// is cut into batches at its `/ip/hotspot/active/print` (the first read of a
/// `disconnect_hotspot` call); batch `k` spans from its first command on any
/// router to its last command on any router plus one round trip. Returns the
/// summed spans (seconds) and the number of batches.
pub(crate) fn router_busy(fleet: &Fleet, latency: Duration) -> (f64, usize) {
    let mut spans: Vec<(f64, f64)> = Vec::new();
    for h in fleet.handles() {
        let mut k: Option<usize> = None;
        for c in h.command_log() {
            if c.command == "/login" {
                continue;
            }
            let t = unix_ms(c.at);
            if c.command == "/ip/hotspot/active/print" {
                k = Some(k.map_or(0, |k| k + 1));
            }
            let Some(k) = k else { continue };
            if spans.len() <= k {
                spans.resize(k + 1, (f64::INFINITY, f64::NEG_INFINITY));
            }
            let s = &mut spans[k];
            s.0 = s.0.min(t);
            s.1 = s.1.max(t);
        }
    }
    let rtt = latency.as_secs_f64() * 1000.0;
    let busy: f64 = spans
        .iter()
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(a, b)| (b - a + rtt) / 1000.0)
        .sum();
    (busy, spans.len())
}

/// Session-remove commands beyond the first of each `disconnect_hotspot` call
/// (the driver's one-id retries after a batched remove trapped), over every router.
pub(crate) fn extra_session_removes(fleet: &Fleet) -> u64 {
    let mut extra = 0;
    for h in fleet.handles() {
        let mut in_call = 0_u64;
        for c in h.command_log() {
            match c.command.as_str() {
                "/ip/hotspot/active/print" => {
                    extra += in_call.saturating_sub(1);
                    in_call = 0;
                }
                "/ip/hotspot/active/remove" => in_call += 1,
                _ => {}
            }
        }
        extra += in_call.saturating_sub(1);
    }
    extra
}
