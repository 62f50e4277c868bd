//! Shared test support: the PostgreSQL harness, bulk loading, SQL checks.

#![allow(dead_code)]

pub(crate) mod bulk;
pub(crate) mod checks;
#[cfg(feature = "postgres")]
pub(crate) mod pg;
