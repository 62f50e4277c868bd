#![doc = include_str!("../README.md")]

pub mod proto;
#[cfg(feature = "sim")]
pub mod sim;
