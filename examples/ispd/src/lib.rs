//! `ispd`: the isp daemon.
//!
//! Wires the engine of `isp-core` to storage (SQLite, PostgreSQL or MongoDB),
//! RouterOS routers and an SMS gateway; runs the ten jobs on their schedules
//! with a real-time expiry watcher; serves an admin HTTP API with Prometheus
//! metrics; and has a one-command demo on simulated routers.
//!
//! The binary is a thin wrapper around the `cli` module; the modules are public
//! so that the end-to-end tests (`isp-tests`) can start a daemon in-process.

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod report;
pub mod routers;
pub mod runner;
pub mod scheduler;
pub mod storage;
pub mod telemetry;
