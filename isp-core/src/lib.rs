#![doc = include_str!("../README.md")]

pub mod domain;
pub mod error;
pub mod jobs;
pub mod memory;
pub mod policy;
pub mod ports;
#[cfg(feature = "runtime")]
pub mod runtime;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use error::{Error, Result};
