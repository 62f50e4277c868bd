#![doc = include_str!("../README.md")]

pub mod domain;
pub mod error;
pub mod ports;

pub use error::{Error, Result};
