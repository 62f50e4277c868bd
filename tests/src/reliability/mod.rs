//! The reliability suite's shared parts (the promises of ARCHITECTURE.md): a
//! fault-injecting RouterOS proxy, a throwaway PostgreSQL that can be stopped
//! and started, a TCP proxy that partitions the network, a MongoDB-protocol server, a counting SMS gateway, a log
//! capture, and the seeded random numbers every scenario uses.
//!
//! The scenarios are `tests/tests/reliability_*.rs`; `RELIABILITY.md` at the
//! repository root lists them with their figures and commands.

pub mod hostile;
pub mod mongo;
pub mod partition;
pub mod pg;
pub mod process;
pub mod proxy;
pub mod sms_server;
pub mod world;

/// The seed of a scenario: `ISP_SEED` when set (decimal or `0x` hex), else `default`.
/// Every scenario prints the seed it used, so a failure can be replayed.
pub fn seed(default: u64) -> u64 {
    std::env::var("ISP_SEED")
        .ok()
        .and_then(|s| {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => s.parse().ok(),
            }
        })
        .unwrap_or(default)
}

/// True when the long soaks should run (`ISP_SOAK=1`).
pub fn soak() -> bool {
    std::env::var("ISP_SOAK").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}
