//! `ispd`: the isp daemon.
//!
//! Wires the engine and runtime of `isp-core` (the jobs, the cron scheduler,
//! the real-time expiry watcher) to storage (SQLite, PostgreSQL or MongoDB),
//! RouterOS routers and an SMS gateway; serves an admin HTTP API with
//! Prometheus metrics; and has a one-command demo on simulated routers. It
//! holds configuration, wiring, HTTP, CLI, telemetry and the demo; no
//! scheduling or business logic.
//!
//! The binary is a thin wrapper around the `cli` module; the modules are public
//! so that the end-to-end tests (`isp-tests`) can start a daemon in-process.

pub mod api;
pub mod api_access;
pub mod cli;
pub mod cli_access;
pub mod config;
pub(crate) mod console;
pub mod daemon;
#[cfg(feature = "demo")]
pub mod demo;
pub mod report;
pub mod storage;
pub mod telemetry;
